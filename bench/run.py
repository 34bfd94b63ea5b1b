"""Run crmkit's benchmarks and print a summary of every figure against its target.

    python bench/run.py                       every bench/bench_*.py at --size full
    python bench/run.py search hooks          only bench_search.py and bench_hooks.py
    python bench/run.py --size small --postgres postgresql://crmkit:crmkit@127.0.0.1:5432/postgres

Each benchmark runs in its own process (so one's memory or imports never colour
another's figures); its output is shown as it comes. Exit status: 0 when every target
was met, 1 when a benchmark failed to run, 3 when one ran but missed its target.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

BENCH = Path(__file__).resolve().parent
MARK = "[bench] "


def benchmarks(names: Sequence[str]) -> list[Path]:
    """``bench/bench_*.py``, or the ones named (``search``, ``bench_search`` or ``bench_search.py``)."""
    found = sorted(BENCH.glob("bench_*.py"))
    if not names:
        return found
    by_name = {p.stem.removeprefix("bench_"): p for p in found}
    chosen = []
    for name in names:
        key = Path(name).stem.removeprefix("bench_")
        if key not in by_name:
            raise SystemExit(f"no benchmark {name!r}; there are: {', '.join(sorted(by_name))}")
        chosen.append(by_name[key])
    return chosen


def run(script: Path, forwarded: list[str]) -> tuple[int, list[str], float]:
    """Run one benchmark, echoing its output; returns its exit status, its [bench] lines and its wall time."""
    print(f"\n=== {script.name} {' '.join(forwarded)}", flush=True)
    start = time.perf_counter()
    lines: list[str] = []
    with subprocess.Popen(
        [sys.executable, str(script), *forwarded], stdout=subprocess.PIPE, text=True, cwd=BENCH.parent
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            print(line, end="", flush=True)
            if line.startswith(MARK):
                lines.append(line.rstrip("\n"))
    return proc.returncode, lines, time.perf_counter() - start


def summary(results: list[tuple[Path, int, list[str], float]]) -> str:
    """One row per figure: status, benchmark, what was measured, figure and target."""
    rows = [("status", "benchmark", "measure", "figure", "target")]
    for script, code, lines, _ in results:
        if code != 0:
            rows.append(("FAILED", script.stem, f"exit status {code}", "", ""))
        elif not lines:
            rows.append(("FAILED", script.stem, "printed no [bench] line", "", ""))
        for line in lines:
            parts = [p.strip() for p in line.removeprefix(MARK).split(" | ")]
            measure, _, figure = parts[0].rpartition(": ")
            target = next((p.removeprefix("target ") for p in parts if p.startswith("target ")), "")
            rows.append((parts[-1], script.stem, measure, figure, target))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the options, run the chosen benchmarks one after another, print the summary."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    parser.add_argument("--size", choices=("tiny", "small", "full"), default="full")
    parser.add_argument(
        "--postgres",
        help="PostgreSQL server URL for the PostgreSQL halves "
        "(default: $CRMKIT_BENCH_POSTGRES_URL, read by each benchmark)",
    )
    parser.add_argument("--workdir", help="where benchmarks put generated data (default: bench/out)")
    args = parser.parse_args(argv)
    forwarded = ["--size", args.size]
    if args.postgres:
        forwarded += ["--postgres", args.postgres]
    if args.workdir:
        forwarded += ["--workdir", args.workdir]
    results = [(script, *run(script, forwarded)) for script in benchmarks(args.names)]
    print("\n=== summary\n" + summary(results), flush=True)
    total = sum(seconds for *_, seconds in results)
    print(f"{len(results)} benchmark(s) in {total:.0f} s", flush=True)
    if any(code != 0 or not lines for _, code, lines, _ in results):
        return 1
    if any(not line.endswith("| MET") for _, _, lines, _ in results for line in lines):
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
