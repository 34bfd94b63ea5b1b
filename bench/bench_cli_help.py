"""``crmkit --help`` start-up: every installed plugin listed, without importing SQLAlchemy or plugin commands.

Runs the installed ``crmkit`` console script with ``--help`` in a fresh process N times,
taking turns with the peer — ``python -c "import click"`` — so both see the same machine
load, and prints the median wall times and their ratio against the target (≤ 3x).
It also checks, with ``python -X importtime``, which heavy modules the help imported.

    python bench/bench_cli_help.py --size full
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._report import parse_args, report, scale

TARGET_RATIO = 3.0
HEAVY = ("sqlalchemy", "marshmallow", "alembic", "psycopg", "stevedore")


def wall_seconds(command: list[str]) -> float:
    """Wall time of one run of ``command`` (its output discarded); fails loudly if it fails."""
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def plugin_command_modules() -> set[str]:
    """The modules holding installed plugins' commands (``Plugin.cli``), which help must not import."""
    modules = set()
    for entry_point in entry_points(group="crmkit.plugins"):
        try:
            cli = getattr(entry_point.load(), "cli", None)
        except Exception:  # noqa: BLE001 - a plugin that cannot load has no commands to import
            continue
        if isinstance(cli, str):
            modules.add(cli.partition(":")[0])
    return modules


def heavy_imports(command: list[str]) -> list[str]:
    """Heavy packages and plugin command modules ``command`` imports (read from ``-X importtime``)."""
    result = subprocess.run([command[0], "-X", "importtime", *command[1:]], capture_output=True, text=True, check=True)
    names = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    return sorted({n for n in names if n.split(".")[0] in HEAVY} | (names & plugin_command_modules()))


def main() -> int:
    args = parse_args(__doc__.splitlines()[0])
    runs = scale(args.size, tiny=3, small=15, full=41)
    script = Path(sys.executable).with_name("crmkit")
    help_command = [sys.executable, str(script), "--help"]
    peer_command = [sys.executable, "-c", "import click"]
    plugins = sorted(ep.name for ep in entry_points(group="crmkit.plugins"))
    for command in (help_command, peer_command):  # warm the file cache once
        wall_seconds(command)
    helps, peers = [], []
    for _ in range(runs):
        helps.append(wall_seconds(help_command))
        peers.append(wall_seconds(peer_command))
    help_ms, peer_ms = statistics.median(helps) * 1000, statistics.median(peers) * 1000
    ratio = help_ms / peer_ms
    imported = heavy_imports(help_command)
    report(
        f"crmkit --help wall time vs `python -c 'import click'` (median of {runs}, {len(plugins)} plugins installed)",
        ratio,
        "x",
        target=f"≤ {TARGET_RATIO:g}x, no SQLAlchemy/marshmallow/plugin commands imported",
        ok=ratio <= TARGET_RATIO and not imported,
        peer=f"peer import click: {peer_ms:.1f} ms",
        crmkit_help=f"{help_ms:.1f} ms",
        plugins=",".join(plugins) or "none",
        heavy_imports=",".join(imported) or "none",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
