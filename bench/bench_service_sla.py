"""Re-timing open cases when a holiday is added: the SLA due times of 100,000 open cases recomputed by
``crm.service.add_day_off`` (one transaction: the day off, a read of the cases, a bisection per due time on the old
and new calendars' timelines, one batched update in the table's order) on SQLite (and PostgreSQL with
``--postgres``). Target: < 10 s on SQLite. The peer, printed beside it, is the plain-Python loop over the same cases
— ``WorkingCalendar.between`` then ``add`` per due time, computing only — whose results must be the same.

The cases are bulk-written (executemany / COPY) straight into ``service_cases``, open, due over the next weeks.

    python bench/bench_service_sla.py --size full [--postgres postgresql://crmkit:crmkit@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import os
import random
import sys
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from datetime import time as day_time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa

from bench import datagen
from bench._report import parse_args, report, scale
from crmkit import CRM

TARGET_SECONDS = 10.0
ICT = ZoneInfo("Asia/Ho_Chi_Minh")  # the business's zone by default
ACTIVE = ("new", "open", "waiting_on_customer", "waiting_on_third_party", "reopened")


def _working(now: datetime, rng: random.Random, days: int) -> datetime:
    """A moment within the working hours (Monday–Friday 08:00–17:00 in Hồ Chí Minh City) of the next ``days``
    days — where a computed due time lies (strictly inside the hours, so no closing/opening ambiguity)."""
    day = now.astimezone(ICT).date() + timedelta(days=rng.randint(1, days))
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return datetime.combine(day, day_time(8), tzinfo=ICT) + timedelta(minutes=rng.randint(1, 539))


def case_rows(count: int, customers: int, now: datetime, seed: int) -> list[dict[str, Any]]:
    """Open cases opened in the last days, due within the next weeks (in working hours, as computed due times are);
    one in ten waiting on the customer."""
    rng = random.Random(seed)
    rows = []
    for case_id in range(1, count + 1):
        created = now - timedelta(minutes=rng.randint(10, 5 * 1440))
        status = "waiting_on_customer" if case_id % 10 == 0 else rng.choice(ACTIVE[:2])
        rows.append(
            {
                "id": case_id,
                "customer_id": rng.randint(1, customers),
                "subject": "Máy lạnh không lạnh",
                "channel": "phone",
                "priority": "normal",
                "status": status,
                "created_by": "system",
                "created_at": created,
                "updated_at": created,
                "first_response_due_at": _working(now, rng, 3),
                "resolution_due_at": _working(now, rng, 30),
                "paused_at": now - timedelta(minutes=rng.randint(1, 600)) if status == "waiting_on_customer" else None,
                "reopen_count": 0,
            }
        )
    return rows


def measure(url: str, backend: str, count: int, customers: int) -> None:
    """Fill the cases, add a holiday (timed), and time the plain loop over the same cases as the peer."""
    from crmkit_service.models import cases

    with CRM(url, plugins=["service"], upgrade=True) as crm:
        now = datetime.now(UTC)
        with crm.engine.begin() as conn:
            conn.execute(cases.delete())
            conn.execute(sa.insert(cases), case_rows(count, customers, now, seed=11))
        holiday = now.astimezone(crm.timezone).date() + timedelta(days=7)
        while holiday.weekday() >= 5:
            holiday += timedelta(days=1)
        before = crm.service.calendar()
        with crm.reading() as conn:
            rows = conn.execute(
                sa.select(cases.c.id, cases.c.paused_at, cases.c.resolution_due_at).where(cases.c.status.in_(ACTIVE))
            ).all()
        started = time.perf_counter()
        crm.service.add_day_off(holiday, "Nghỉ bù (bench)")
        seconds = time.perf_counter() - started
        after = crm.service.calendar()
        started = time.perf_counter()
        now = datetime.now(UTC)
        expected = {}
        for case_id, paused_at, due in rows:
            anchor = paused_at or now
            if due > anchor:
                expected[case_id] = after.add(anchor, before.between(anchor, due))
        loop_seconds = time.perf_counter() - started
        with crm.reading() as conn:
            got = dict(conn.execute(sa.select(cases.c.id, cases.c.resolution_due_at)).all())
    wrong = sum(1 for case_id, due in expected.items() if abs(got[case_id] - due) > timedelta(seconds=5))
    if wrong:
        raise SystemExit(f"{wrong} re-timed due times differ from the plain loop's")
    report(
        f"service SLA re-timing after a holiday is added ({count:,} open cases, {backend})",
        seconds,
        "s",
        target=f"< {TARGET_SECONDS:g} s on SQLite" if backend == "SQLite" else "none (SQLite's is < 10 s)",
        ok=seconds < TARGET_SECONDS if backend == "SQLite" else True,
        peer=f"plain-Python loop over the same cases {loop_seconds:.3f} s (computing only, no writes)",
        holiday=date.isoformat(holiday),
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(__doc__.split("\n\n")[0], argv)
    count = scale(args.size, tiny=2_000, small=20_000, full=100_000)
    customers = scale(args.size, tiny=500, small=5_000, full=10_000)
    folder = Path(args.workdir or datagen.DEFAULT_CACHE)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"service_sla_{args.size}.{os.getpid()}.db"
    try:
        datagen.build_sqlite(path, datagen.Spec(customers, 0, 11))
        measure(f"sqlite:///{path}", "SQLite", count, customers)
    finally:
        path.unlink(missing_ok=True)
    if args.postgres:
        import psycopg
        from sqlalchemy.engine import make_url

        name = f"crmkit_bench_service_sla_{os.getpid()}"
        with psycopg.connect(datagen.libpq_url(args.postgres), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
            try:
                url = make_url(args.postgres).set(database=name).render_as_string(hide_password=False)
                datagen.build_postgres(url, datagen.Spec(customers, 0, 11))
                measure(url, "PostgreSQL", count, customers)
            finally:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    sys.exit(main())
