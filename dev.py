#!/usr/bin/env python3
"""Set up crmkit in ./.venv and run its main jobs — the only commands a newcomer needs.

    python3 dev.py demo     build a demo CRM (SQLite) with every bundled plugin and show it
    python3 dev.py test     run the checks of ``lint``, then the whole test suite on SQLite and, when
                            available, PostgreSQL (in parallel on every core; extra arguments go to
                            pytest); installs Debian's chromium for the browser tests when it is missing
    python3 dev.py lint     the checks alone: ruff (lint and format), mypy, the import contracts, the
                            documentation site (sphinx-build -W: a renamed function or a broken docstring
                            fails it), and pip-audit (known vulnerabilities in the installed dependencies)
    python3 dev.py bench    run the benchmarks at full size (``bench NAME`` for one)

Needs only Python 3.11+ and git; everything else is installed into .venv, at the versions
constraints.txt pins.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
CONSTRAINTS = ROOT / "constraints.txt"
PG_URL = "postgresql://crmkit:crmkit@127.0.0.1:5432/postgres"
CHROMIUM = "/usr/bin/chromium"  # Debian's package, driven by Playwright in tests/test_browser.py


def packages() -> list[Path]:
    """The core, every bundled plugin and every example distribution (editable installs)."""
    found = [ROOT]
    for folder in ("plugins", "examples"):
        found += sorted(p.parent for p in (ROOT / folder).glob("*/pyproject.toml"))
    return found


def setup() -> None:
    """Create .venv and (re)install the packages, at constraints.txt's versions, when it or a pyproject.toml changed."""
    if not PY.exists():
        print("• creating .venv", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    digest = hashlib.sha256()
    for pkg in packages():
        digest.update((pkg / "pyproject.toml").read_bytes())
    digest.update(CONSTRAINTS.read_bytes())
    stamp = VENV / ".crmkit-installed"
    if stamp.exists() and stamp.read_text() == digest.hexdigest():
        return
    print("• installing crmkit, its plugins and test tools into .venv (first run takes a minute)", flush=True)
    pip = [str(PY), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run(pip + ["--upgrade", "pip"], check=True)
    # Each package with its test, bench and lint extras (test data, reference engines, checkers); pip ignores
    # absent extras. Every dependency at the version constraints.txt pins, so a new release breaks no one's run.
    editable = [arg for pkg in packages() for arg in ("-e", f"{pkg}[test,bench,lint]")]
    subprocess.run(pip + ["--constraint", str(CONSTRAINTS), *editable], check=True)
    stamp.write_text(digest.hexdigest())


def start_postgres() -> str | None:
    """A PostgreSQL URL for the tests: $CRMKIT_TEST_POSTGRES_URL, or the local PostgreSQL 15 started here."""
    if os.environ.get("CRMKIT_TEST_POSTGRES_URL"):
        return os.environ["CRMKIT_TEST_POSTGRES_URL"]
    if not shutil.which("pg_ctlcluster") or not hasattr(os, "geteuid") or os.geteuid() != 0:
        return None
    listed = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True).stdout.split()
    if len(listed) < 2:
        return None
    version, cluster = listed[0], listed[1]
    subprocess.run(["pg_ctlcluster", version, cluster, "start"], capture_output=True)
    sql = (
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'crmkit') THEN "
        "CREATE ROLE crmkit LOGIN SUPERUSER PASSWORD 'crmkit'; END IF; END $$;"
    )
    result = subprocess.run(
        ["runuser", "-u", "postgres", "--", "psql", "-q", "-c", sql], capture_output=True, text=True
    )
    if result.returncode != 0:
        print(f"• PostgreSQL {version}/{cluster} did not start: {result.stderr.strip()}", flush=True)
        return None
    return PG_URL


def ensure_chromium() -> None:
    """Install Debian's chromium for the browser tests when it is missing (as root on Debian; never a download)."""
    if Path(CHROMIUM).exists():
        return
    if not Path("/etc/debian_version").exists() or not hasattr(os, "geteuid") or os.geteuid() != 0:
        print(
            f"• {CHROMIUM} is missing and cannot be installed here (needs root on Debian: "
            "apt-get install chromium): the browser tests will fail",
            flush=True,
        )
        return
    print("• installing Debian's chromium for the browser tests (apt-get, once)", flush=True)
    quiet = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium"]
    for step in (["apt-get", "update", "-q"], install):
        result = subprocess.run(step, capture_output=True, text=True, env=quiet)
        if result.returncode != 0:
            reason = (result.stderr.strip().splitlines() or [f"exit code {result.returncode}"])[-1]
            print(f"• {' '.join(step[:2])} failed ({reason}): the browser tests will fail", flush=True)
            return


def run(args: list[str], env: dict[str, str] | None = None) -> int:
    """Run a command in the project's folder; its exit code."""
    return subprocess.run(args, cwd=ROOT, env={**os.environ, **(env or {})}).returncode


def lint() -> int:
    """Run every check (configured in pyproject.toml), then pip-audit; 1 when any of them failed."""
    checks = {
        "ruff check": [str(BIN / "ruff"), "check", "."],
        "ruff format --check": [str(BIN / "ruff"), "format", "--check", "."],
        "mypy": [str(BIN / "mypy")],
        "lint-imports": [str(BIN / "lint-imports"), "--no-cache"],
        "sphinx-build -W": [str(BIN / "sphinx-build"), "-W", "--keep-going", "-q", "docs", "docs/_build/html"],
    }
    failed = []
    for name, args in checks.items():
        print(f"• {name}", flush=True)
        if run(args) != 0:
            failed.append(name)
    if not audit():
        failed.append("pip-audit")
    if failed:
        print(f"• failed: {', '.join(failed)}", flush=True)
        return 1
    return 0


def audit() -> bool:
    """Whether pip-audit finds no known vulnerability in the installed dependencies.

    An advisory service that cannot be reached is said in one line and passes: the network never fails a run.
    """
    args = [str(BIN / "pip-audit"), "--skip-editable", "--progress-spinner", "off", "--format", "json"]
    try:
        done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return not_audited("no answer in 2 minutes")
    try:
        dependencies = json.loads(done.stdout)["dependencies"]
    except (ValueError, KeyError, TypeError):
        return not_audited((done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1])
    vulnerable = [dep for dep in dependencies if dep.get("vulns")]
    for dep in vulnerable:
        found = "; ".join(
            vuln["id"] + (f" (fixed in {', '.join(vuln['fix_versions'])})" if vuln.get("fix_versions") else "")
            for vuln in dep["vulns"]
        )
        print(f"• pip-audit: {dep['name']} {dep['version']} has a known vulnerability: {found}", flush=True)
    audited = [dep for dep in dependencies if "skip_reason" not in dep]
    if not vulnerable and not audited:
        return not_audited("it knows none of the dependencies")
    if not vulnerable:
        print(f"• pip-audit: no known vulnerability in {len(audited)} dependencies", flush=True)
    return not vulnerable


def not_audited(reason: str) -> bool:
    """Say in one line that the dependencies were not audited, and why; the run goes on."""
    print(f"• pip-audit: the advisory service cannot be reached ({reason[:200]}): dependencies not audited", flush=True)
    return True


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "help"
    if command not in ("demo", "test", "bench", "lint"):
        print(__doc__)
        return 0 if command in ("help", "-h", "--help") else 2
    setup()
    if command == "demo":
        (ROOT / "demo").mkdir(exist_ok=True)
        db = f"sqlite:///{ROOT / 'demo' / 'crm.db'}"
        return run([str(BIN / "crmkit"), "--db", db, "demo", "--reset", *argv[1:]])
    if command == "bench":
        return run([str(PY), str(ROOT / "bench" / "run.py"), *argv[1:]])
    if lint() != 0:
        print("• the checks failed (`python3 dev.py lint` runs them alone): the tests did not run", flush=True)
        return 1
    if command == "lint":
        return 0
    ensure_chromium()
    url = start_postgres()
    env = {"CRMKIT_STRICT_PLUGINS": "1"}
    if url:
        env["CRMKIT_TEST_POSTGRES_URL"] = url
        print(f"• running the suite on SQLite and PostgreSQL ({url.rsplit('@', 1)[-1]})", flush=True)
    else:
        print("• no PostgreSQL server found: running the suite on SQLite only", flush=True)
    workers = [] if any(a == "-n" or a.startswith("--numprocesses") for a in argv[1:]) else ["-n", "auto"]
    slowest = [] if any(a.startswith("--durations") for a in argv[1:]) else ["--durations=25"]  # where the time goes
    return run([str(PY), "-m", "pytest", *workers, *slowest, *argv[1:]], env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
