"""Concurrent redemptions with 8 worker processes (each its own CRM and connections): redemptions/s and anomalies.

``--size tiny`` (the test suite's smoke run) uses 2 workers; ``small`` and ``full`` use 8.

Two phases against one database:

* **throughput** — 8 workers redeem a 50-point reward for random members of a pool (more attempts
  than the pool's points can pay for, so refusals happen too);
* **hot spot** — all of them redeem a 7-point reward from the *same* member holding 1,000 points at once:
  exactly ⌊1000 / 7⌋ = 142 may succeed.

Anomalies (target: 0): a negative balance, a member whose points taken differ from 50 × the
successful redemptions the workers saw, a hot-spot success count other than 142, a balance
that disagrees with its ledger (``crm.loyalty.jobs.verify()``), and any error other than the
clean "not enough points" refusal. Runs on PostgreSQL when a server URL is given (the point of
the benchmark: row locks under real concurrency); otherwise on SQLite, and says so.

    python bench/bench_loyalty_concurrency.py --size full --postgres postgresql://crmkit:crmkit@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import multiprocessing
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._report import parse_args, report, scale

WORKERS = 8
PLUGINS = ["sales", "loyalty"]
BALANCE, COST, HOT_COST, HOT_BALANCE = 1_000, 50, 7, 1_000
DATABASE = f"crmkit_bench_loyalty_{os.getpid()}"


def worker(
    url: str,
    customer_ids: Sequence[int],
    hot: int,
    attempts: int,
    hot_attempts: int,
    seed: int,
    start: Any,
    results: Any,
) -> None:
    """Phase 1: redeem the voucher for random members; phase 2: the hot-spot reward for one member."""
    from crmkit import CRM

    rng = random.Random(seed)
    with CRM(url, plugins=PLUGINS) as crm:
        start.wait()
        results.put(_attempts(crm, [rng.choice(customer_ids) for _ in range(attempts)], "voucher-50"))
        start.wait()
        results.put(_attempts(crm, [hot] * hot_attempts, "tra-da"))


def _attempts(crm: Any, customer_ids: Sequence[int], reward: str) -> tuple[dict[int, int], int, list[str]]:
    from crmkit import ValidationError

    won: Counter[int] = Counter()
    refused, errors = 0, []
    for customer_id in customer_ids:
        try:
            crm.loyalty.redeem(customer_id, reward)
            won[customer_id] += 1
        except ValidationError:
            refused += 1
        except Exception as exc:  # noqa: BLE001 - counted as an anomaly by the parent
            errors.append(f"{type(exc).__name__}: {exc}"[:200])
    return dict(won), refused, errors


Outcome = tuple[Counter[int], int, list[str], float]


def run_phases(
    url: str, workers: int, customer_ids: Sequence[int], hot: int, attempts: int, hot_attempts: int
) -> tuple[Outcome, Outcome]:
    """Start the workers; release them together for each phase; returns each phase's successes, refusals, errors, time."""
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(workers + 1)
    results = context.Queue()
    processes = [
        context.Process(target=worker, args=(url, list(customer_ids), hot, attempts, hot_attempts, n, start, results))
        for n in range(workers)
    ]
    for process in processes:
        process.start()
    phases = []
    for _ in range(2):
        start.wait()
        began = time.perf_counter()
        won: Counter[int] = Counter()
        refused, errors = 0, []
        for _ in processes:
            their_wins, their_refusals, their_errors = results.get(timeout=3600)
            won.update(their_wins)
            refused += their_refusals
            errors.extend(their_errors)
        phases.append((won, refused, errors, time.perf_counter() - began))
    for process in processes:
        process.join()
    return phases[0], phases[1]


def _admin(server_url: str, statement: str) -> None:
    """Run CREATE/DROP DATABASE on the server's maintenance database."""
    import sqlalchemy as sa

    from crmkit.storage import create_engine

    admin = create_engine(sa.make_url(server_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(statement)
    admin.dispose()


def database(args: Any) -> tuple[str, str]:
    """A fresh database: on the PostgreSQL server given (dropped again at the end), else a SQLite file."""
    if args.postgres:
        import sqlalchemy as sa

        _admin(args.postgres, f'CREATE DATABASE "{DATABASE}"')
        return "PostgreSQL", sa.make_url(args.postgres).set(database=DATABASE).render_as_string(hide_password=False)
    folder = Path(args.workdir or Path(__file__).resolve().parent / "out")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "loyalty_concurrency.db"
    for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        leftover.unlink(missing_ok=True)
    print(
        "no PostgreSQL URL given (--postgres or CRMKIT_BENCH_POSTGRES_URL): running on SQLite, where write "
        "transactions are serialized by BEGIN IMMEDIATE",
        flush=True,
    )
    return "SQLite", f"sqlite:///{path}"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(__doc__.split("\n\n")[0], argv)
    workers = scale(args.size, tiny=2, small=WORKERS, full=WORKERS)  # tiny only checks that it runs
    members = scale(args.size, tiny=20, small=200, full=500)
    attempts = scale(args.size, tiny=10, small=300, full=1_500)  # per worker
    hot_attempts = scale(args.size, tiny=100, small=40, full=40)  # per worker: always more than 142 in all
    backend, url = database(args)
    try:
        return measure(backend, url, workers, members, attempts, hot_attempts)
    finally:
        if args.postgres:
            _admin(args.postgres, f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')


def measure(backend: str, url: str, workers: int, members: int, attempts: int, hot_attempts: int) -> int:
    """Set up the members and rewards, run both phases, count the anomalies and report."""
    from crmkit import CRM

    with CRM(url, plugins=PLUGINS, upgrade=True) as crm:
        crm.loyalty.programs.create("default", "Khách hàng thân thiết", auto_enroll=False)
        crm.loyalty.programs.add_reward("voucher-50", "Voucher 25.000 ₫", COST, kind="discount")
        crm.loyalty.programs.add_reward("tra-da", "Ly trà đá", HOT_COST)
        ids = [crm.customers.add(name=f"Thành viên {n}").id for n in range(members)]
        hot = crm.customers.add(name="Khách quen").id
        for customer_id in ids:
            crm.loyalty.grant(customer_id, BALANCE, "số dư ban đầu")
        crm.loyalty.grant(hot, HOT_BALANCE, "số dư ban đầu")

        (won, refused, errors, elapsed), (hot_won, _, hot_errors, _) = run_phases(
            url, workers, ids, hot, attempts, hot_attempts
        )

        balances = {cid: crm.loyalty.balance(cid) for cid in [*ids, hot]}
        negative = sum(1 for points in balances.values() if points < 0)
        wrong = sum(1 for cid in ids if BALANCE - balances[cid] != COST * won[cid])
        hot_expected = HOT_BALANCE // HOT_COST
        hot_wrong = int(hot_won[hot] != hot_expected or balances[hot] != HOT_BALANCE - hot_expected * HOT_COST)
        mismatches = len(crm.loyalty.jobs.verify())
    anomalies = negative + wrong + hot_wrong + mismatches + len(errors) + len(hot_errors)
    successes = sum(won.values())
    report(
        f"concurrent redemptions ({backend}, {workers} worker processes, {members:,} members)",
        successes / elapsed,
        "redemptions/s",
        target="0 anomalies",
        ok=anomalies == 0,
        anomalies=anomalies,
        attempts=f"{workers * attempts:,}",
        succeeded=f"{successes:,}",
        refused=f"{refused:,}",
        seconds=f"{elapsed:.1f}",
        hot_spot=f"{hot_won[hot]}/{workers * hot_attempts} succeeded (expected {hot_expected})",
        negative_balances=negative,
        ledger_mismatches=mismatches,
        load_average=f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores",
    )
    for message in (errors + hot_errors)[:5]:
        print(f"  unexpected error: {message}", flush=True)
    return 0 if anomalies == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
