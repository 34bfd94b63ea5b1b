"""Segment count over 1,000,000 customers with a 3-condition filter (SQLite): target under 500 ms.

The expression is typed as a marketer would, without accents —
``city = "ha noi" and age between 25 and 40 and has consent "email"`` — so the city is matched
accent- and case-insensitively in the database (a GLOB of letter classes), the age becomes a
birth-date range, and consent an ``EXISTS`` on its primary key. The peer, run in the same process
on the same file, is the hand-written exact SQL (``city = 'Hà Nội'``) with the raw ``sqlite3``
module: the price of accent-insensitivity and of building the query through the service.
With ``--postgres URL`` the same count runs on a PostgreSQL copy as well (reported, no target).

    python bench/bench_campaigns_segment.py --size full
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import datagen
from bench._report import parse_args, report, scale
from crmkit.core.types import utcnow

TARGET_MS = 500.0
EXPRESSION = 'city = "ha noi" and age between 25 and 40 and has consent "email"'
PEER_SQL = (
    "SELECT count(*) FROM customers c WHERE c.status = 'active' AND c.city = 'Hà Nội' "
    "AND c.birth_date >= ? AND c.birth_date < ? AND EXISTS (SELECT 1 FROM customer_consents k "
    "WHERE k.customer_id = c.id AND k.channel = 'email' AND k.granted)"
)


def campaigns_copy(customers: int, workdir: str | None, name: str) -> Path:
    """A fresh copy of the cached ``datagen`` database of ``customers`` customers, with the campaigns schema."""
    from crmkit import CRM

    source = datagen.sqlite_database(datagen.Spec(customers, 0), workdir, progress=True)
    target = source.with_name(f"{name}_{customers}.db")
    for leftover in (target, Path(f"{target}-wal"), Path(f"{target}-shm")):
        leftover.unlink(missing_ok=True)
    shutil.copyfile(source, target)
    CRM(f"sqlite:///{target}", plugins=["campaigns"], upgrade=True).close()
    return target


def postgres_copy(customers: int, server_url: str, name: str) -> str | None:
    """A PostgreSQL database copied from the cached ``datagen`` one, with the campaigns schema (None if busy)."""
    import psycopg
    from sqlalchemy.engine import make_url

    from crmkit import CRM

    source = datagen.postgres_database(datagen.Spec(customers, 0), server_url)
    template = make_url(source).database
    target = f"{name}_{customers}"
    with psycopg.connect(datagen.libpq_url(server_url), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)')
        try:
            admin.execute(f'CREATE DATABASE "{target}" TEMPLATE "{template}"')
        except psycopg.errors.ObjectInUse:
            print(f"PostgreSQL: {template} is in use by another run; skipped", flush=True)
            return None
    url = make_url(server_url).set(database=target).render_as_string(hide_password=False)
    CRM(url, plugins=["campaigns"], upgrade=True).close()
    return url


def timings_ms(run: Callable[[], Any], runs: int) -> tuple[list[float], list[float], Any]:
    """Wall and CPU (this thread: SQLite works in it) milliseconds of ``runs`` calls after a warm-up, and the result.

    The CPU time tells the code's own cost apart from waiting for a core on a busy machine.
    """
    result = run()
    wall, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.thread_time()
        result = run()
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.thread_time() - start_cpu) * 1000)
    return wall, cpu, result


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(__doc__.split("\n\n")[0], argv)
    customers = scale(args.size, tiny=2_000, small=100_000, full=1_000_000)
    runs = scale(args.size, tiny=3, small=7, full=9)
    path = campaigns_copy(customers, args.workdir, "campaigns_segment")
    print(f"SQLite: {datagen.warm(f'sqlite:///{path}')}", flush=True)

    from crmkit import CRM
    from crmkit_campaigns.segment_sql import shift

    failed = False
    with CRM(f"sqlite:///{path}", plugins=["campaigns"]) as crm:
        today = utcnow().astimezone(crm.campaigns.settings.zone).date()
        ours, ours_cpu, count = timings_ms(lambda: crm.campaigns.segments.count(expression=EXPRESSION), runs)
        # 25 <= age <= 40  <=>  born in [today - 41 years + 1 day, today - 25 years + 1 day)
        born = (shift(today, months=-12 * 41) + timedelta(days=1), shift(today, months=-12 * 25) + timedelta(days=1))
        raw = sqlite3.connect(path)
        theirs, theirs_cpu, (peer_count,) = timings_ms(lambda: raw.execute(PEER_SQL, born).fetchone(), runs)
        median, peer = statistics.median(ours), statistics.median(theirs)
        failed = count != peer_count or median >= TARGET_MS
        report(
            f"segment count, 3 conditions (SQLite, {customers:,} customers)",
            median,
            "ms",
            target=f"< {TARGET_MS:g} ms",
            ok=not failed,
            peer=f"peer raw sqlite3, exact city = 'Hà Nội': {peer:.1f} ms ({median / peer:.2f}x)",
            customers_matched=f"{count:,}",
            same_as_peer=count == peer_count,
            runs=runs,
            min=f"{min(ours):.1f} ms",
            cpu=f"{statistics.median(ours_cpu):.1f} ms",
            peer_cpu=f"{statistics.median(theirs_cpu):.1f} ms",
            load=f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores",
            expression=repr(EXPRESSION),
        )
    if args.postgres and args.size != "tiny":
        url = postgres_copy(customers, args.postgres, "crmkit_bench_campaigns_segment")
        if url:
            with CRM(url, plugins=["campaigns"]) as crm:
                pg, _, pg_count = timings_ms(lambda: crm.campaigns.segments.count(expression=EXPRESSION), runs)
            report(
                f"segment count, 3 conditions (PostgreSQL, {customers:,} customers)",
                statistics.median(pg),
                "ms",
                target="reported only",
                ok=pg_count == count,
                customers_matched=f"{pg_count:,}",
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
