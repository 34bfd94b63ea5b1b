"""Service reports at scale: the backlog (active cases by status and age) and SLA compliance per team and agent over
1,000,000 cases, on SQLite (and PostgreSQL with ``--postgres``). Target: < 1 s each on both.

The cases are generated in bulk (customers by ``bench/datagen.py``, cases written straight into ``service_cases``
with executemany / COPY, indexes built afterwards, ``ANALYZE``d), never through the service, and cached in
``--workdir`` (SQLite) or on the server (PostgreSQL). Each report runs three times; the figure is the median, the
cold first run printed beside it, and the peer is the same counts done by a plain ``SELECT`` of every row with the
grouping in Python.

    python bench/bench_service_reports.py --size full [--postgres postgresql://crmkit:crmkit@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import hashlib
import random
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa

from bench import datagen
from bench._report import report, run_sized, scale, timed_runs
from crmkit import CRM

TARGET_SECONDS = 1.0
BATCH = 50_000
NOW = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
TEAMS = ("CSKH Hà Nội", "CSKH Sài Gòn", "Kỹ thuật", "Bảo hành", "Thanh toán", "Giao hàng")
AGENTS = tuple(f"cskh{n:02d}" for n in range(1, 41))
ACTIVE = ("new", "open", "waiting_on_customer", "waiting_on_third_party", "reopened")
COLUMNS = (
    "id",
    "customer_id",
    "subject",
    "channel",
    "category",
    "priority",
    "status",
    "assignee",
    "team",
    "created_by",
    "created_at",
    "updated_at",
    "first_response_due_at",
    "resolution_due_at",
    "resolved_at",
    "first_response_breached_at",
    "resolution_breached_at",
    "reopen_count",
    "csat_score",
)
GENERATOR = "1"


def version() -> str:
    """Names cached data sets: this generator's version, the core generator's and the service schema's."""
    digest = hashlib.sha256(GENERATOR.encode())
    for path in sorted(
        (Path(__file__).resolve().parents[1] / "plugins/service/crmkit_service/migrations").glob("*.py")
    ):
        digest.update(path.read_bytes())
    return f"{datagen.fingerprint()[:6]}{digest.hexdigest()[:6]}"


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def case_batches(count: int, customers: int, seed: int) -> Iterator[list[tuple[Any, ...]]]:
    """Cases over a year: 8% still active, the rest resolved or closed; some targets missed, some rated."""
    rng = random.Random(seed)
    batch: list[tuple[Any, ...]] = []
    for case_id in range(1, count + 1):
        created = NOW - timedelta(days=rng.randint(0, 364), minutes=rng.randint(0, 1439))
        active = rng.random() < 0.08
        status = rng.choice(ACTIVE) if active else rng.choice(("resolved", "closed"))
        resolved = None if active else created + timedelta(hours=rng.randint(1, 96))
        first_due, resolution_due = created + timedelta(hours=4), created + timedelta(hours=24)
        team = TEAMS[case_id % len(TEAMS)]
        batch.append(
            (
                case_id,
                rng.randint(1, customers),
                "Máy lạnh không lạnh" if case_id % 2 else "Delivery is late",
                rng.choice(("phone", "email", "chat")),
                rng.choice(("repair", "billing", "delivery", "complaint")),
                rng.choice(("low", "normal", "normal", "high", "urgent")),
                status,
                AGENTS[case_id % len(AGENTS)],
                team,
                "system",
                _stamp(created),
                _stamp(resolved or created),
                _stamp(first_due),
                _stamp(resolution_due),
                _stamp(resolved) if resolved else None,
                _stamp(first_due) if rng.random() < 0.08 else None,
                _stamp(resolution_due) if rng.random() < 0.12 else None,
                1 if rng.random() < 0.05 else 0,
                rng.randint(1, 5) if resolved and rng.random() < 0.3 else None,
            )
        )
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


class Sizes:
    def __init__(self, size: str) -> None:
        self.size = size
        self.customers = scale(size, tiny=1_000, small=20_000, full=100_000)
        self.cases = scale(size, tiny=5_000, small=100_000, full=1_000_000)
        self.seed = 17

    @property
    def key(self) -> str:
        return f"{self.size}_{version()}"


def _fill(write: datagen.Write, sizes: Sizes) -> None:
    for batch in case_batches(sizes.cases, sizes.customers, sizes.seed):
        write("service_cases", COLUMNS, batch)


def sqlite_database(sizes: Sizes, folder: Path) -> Path:
    """A SQLite file with the customers and cases of ``sizes`` (built once, then reused)."""
    spec = datagen.Spec(sizes.customers, 0, sizes.seed)
    path = folder / f"service_reports_{sizes.key}.db"
    return datagen.plugin_sqlite_database(path, spec, "service", ["service_cases"], lambda write: _fill(write, sizes))


def postgres_database(sizes: Sizes, server_url: str) -> str:
    """A PostgreSQL database with the data of ``sizes`` (built once, then reused), filled with COPY."""
    spec = datagen.Spec(sizes.customers, 0, sizes.seed)
    name = f"crmkit_bench_service_{sizes.key}"
    return datagen.plugin_postgres_database(
        name, server_url, spec, "service", ["service_cases"], lambda write: _fill(write, sizes)
    )


def measure(url: str, backend: str, sizes: Sizes) -> None:
    """Time the two reports (and the plain-Python peer) on one database and print the figures."""
    with CRM(url, plugins=["service"]) as crm:
        reports = crm.service.reports
        since = NOW - timedelta(days=400)
        backlog_median, backlog_cold, backlog = timed_runs(lambda: reports.backlog(now=NOW))
        sla_median, sla_cold, sla = timed_runs(
            lambda: reports.sla_compliance(since=since, until=NOW + timedelta(days=1))
        )
        with crm.reading() as conn:
            start = time.perf_counter()
            peer = Counter(
                (team, assignee) for team, assignee in conn.execute(sa.text("SELECT team, assignee FROM service_cases"))
            )
            peer_seconds = time.perf_counter() - start
    counted = sum(row["cases"] for row in sla)
    if counted != sizes.cases or counted != sum(peer.values()):
        raise SystemExit(f"SLA compliance counted {counted} cases, expected {sizes.cases}")
    for what, median, cold, detail in (
        ("backlog by status and age", backlog_median, backlog_cold, f"{sum(r['cases'] for r in backlog):,} active"),
        ("SLA compliance per team and agent", sla_median, sla_cold, f"{len(sla)} team×agent rows"),
    ):
        report(
            f"service report {what} ({sizes.cases:,} cases, {backend})",
            median,
            "s",
            target=f"< {TARGET_SECONDS:g} s",
            ok=median < TARGET_SECONDS,
            peer=f"cold first run {cold:.3f} s; every row read and grouped in Python {peer_seconds:.3f} s",
            detail=detail,
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Build (or reuse) the data sets, then time the reports on SQLite and, when asked, PostgreSQL."""
    return run_sized(__doc__, argv, Sizes, sqlite_database, postgres_database, measure)


if __name__ == "__main__":
    sys.exit(main())
