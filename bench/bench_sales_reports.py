"""Sales reports at scale: the funnel (every pipeline) and the weighted forecast over 1,000,000 deals, with
5,000,000 orders in the same database, on SQLite (and PostgreSQL with ``--postgres``). Target: < 5 s on SQLite.

The data is generated in bulk with explicit ids (customers by ``bench/datagen.py``, then pipelines,
deals and orders written straight into the tables, indexes built afterwards, ``ANALYZE``d), never
through the API, and cached in ``--workdir`` (SQLite) or on the server (PostgreSQL) for later runs.
Each report runs three times; the figure is the median (the first, cold run is printed too).
Revenue by month and performance per employee (over the 5,000,000 orders) are printed for information.

    python bench/bench_sales_reports.py --size full [--postgres postgresql://crmkit:crmkit@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import hashlib
import random
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import datagen
from bench._report import report, run_sized, scale, timed_runs
from crmkit import CRM

TARGET_SECONDS = 5.0
BATCH = 50_000
TODAY = datetime(2026, 6, 1, tzinfo=UTC)
PIPELINES = (
    ("Bán hàng B2B", ("Tiếp cận", "Đánh giá nhu cầu", "Báo giá", "Đàm phán")),
    ("Dịch vụ bảo trì", ("Liên hệ", "Khảo sát", "Đề xuất", "Thương lượng")),
)
PROBABILITIES = (1000, 2500, 5000, 7500)  # basis points (the Rate column's scale)
OWNERS = tuple(f"nv{n:02d}" for n in range(1, 41))
DEAL_COLUMNS = (
    "id",
    "customer_id",
    "pipeline_id",
    "stage_id",
    "reached_position",
    "title",
    "owner",
    "amount_minor",
    "currency",
    "expected_close",
    "source",
    "status",
    "close_reason",
    "opened_at",
    "closed_at",
    "updated_at",
)
ORDER_COLUMNS = (
    "id",
    "customer_id",
    "owner",
    "currency",
    "status",
    "placed_at",
    "delivered_at",
    "cancelled_at",
    "subtotal_minor",
    "discount_minor",
    "tax_minor",
    "total_minor",
    "margin_minor",
    "paid_minor",
    "refunded_minor",
    "updated_at",
)
#: The tables the benchmark fills (the first two small, the last two big).
SALES_TABLES = ("sales_pipelines", "sales_stages", "sales_deals", "sales_orders")
GENERATOR = "1"  # bump when the generated rows change, so cached data sets are built again


def version() -> str:
    """Names cached databases: this generator's version, the core data generator's and the sales schema's."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256(GENERATOR.encode())
    for path in sorted((root / "plugins/sales/crmkit_sales/migrations").glob("*.py")):
        digest.update(path.read_bytes())
    return f"{datagen.fingerprint()[:6]}{digest.hexdigest()[:6]}"


def _stamp(moment: datetime) -> str:
    """How SQLAlchemy stores a UTC time on SQLite (PostgreSQL reads it as UTC: the session zone is UTC)."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def stage_rows() -> list[tuple[Any, ...]]:
    """``(id, pipeline_id, name, position, probability, outcome)``: 4 open stages, won, lost per pipeline."""
    rows = []
    for p, (_, names) in enumerate(PIPELINES, 1):
        stages = [(name, bp, None) for name, bp in zip(names, PROBABILITIES, strict=True)] + [
            ("Thắng", 10000, "won"),
            ("Thua", 0, "lost"),
        ]
        rows += [((p - 1) * 6 + n, p, name, n, bp, outcome) for n, (name, bp, outcome) in enumerate(stages, 1)]
    return rows


def deal_batches(count: int, customers: int, seed: int) -> Iterator[list[tuple[Any, ...]]]:
    """Deals: 40% open across the open stages, 35% won, 25% lost (having reached some stage first)."""
    rng = random.Random(seed)
    batch: list[tuple[Any, ...]] = []
    for deal_id in range(1, count + 1):
        pipeline = 1 + deal_id % len(PIPELINES)
        roll = rng.random()
        opened = TODAY - timedelta(days=rng.randint(0, 730), minutes=rng.randint(0, 1439))
        if roll < 0.40:
            position = reached = rng.randint(1, 4)
            status, closed = "open", None
        elif roll < 0.75:
            position, reached, status = 5, 5, "won"
            closed = opened + timedelta(days=rng.randint(3, 120))
        else:
            position, reached, status = 6, rng.randint(1, 4), "lost"
            closed = opened + timedelta(days=rng.randint(3, 120))
        expected = (TODAY + timedelta(days=rng.randint(-180, 365))).date().isoformat()
        batch.append(
            (
                deal_id,
                rng.randint(1, customers),
                pipeline,
                (pipeline - 1) * 6 + position,
                reached,
                "Cơ hội bán hàng",
                OWNERS[deal_id % len(OWNERS)],
                rng.randrange(1_000_000, 500_000_000, 100_000),
                "VND",
                expected,
                "Website",
                status,
                "Giá cao" if status == "lost" else None,
                _stamp(opened),
                _stamp(closed) if closed else None,
                _stamp(closed or opened),
            )
        )
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def order_batches(count: int, customers: int, seed: int) -> Iterator[list[tuple[Any, ...]]]:
    """Orders over two years: mostly delivered and paid; some placed, cancelled or (partly) refunded."""
    rng = random.Random(seed + 1)
    batch: list[tuple[Any, ...]] = []
    for order_id in range(1, count + 1):
        placed = TODAY - timedelta(days=rng.randint(0, 730), seconds=rng.randint(0, 86_399))
        subtotal = rng.randrange(50_000, 20_000_000, 1_000)
        discount = subtotal // 20 if rng.random() < 0.2 else 0
        tax = (subtotal - discount) // 10
        total = subtotal - discount + tax
        roll = rng.random()
        status, paid, refunded = "delivered", total, 0
        delivered, cancelled = placed + timedelta(days=2), None
        if roll < 0.08:
            status, paid, delivered = "placed", 0, None
        elif roll < 0.12:
            status, paid, delivered, cancelled = "cancelled", 0, None, placed + timedelta(hours=3)
        elif roll < 0.15:
            refunded = total // 4
        elif roll < 0.16:
            status, refunded = "refunded", total
        batch.append(
            (
                order_id,
                rng.randint(1, customers),
                OWNERS[order_id % len(OWNERS)],
                "VND",
                status,
                _stamp(placed),
                _stamp(delivered) if delivered else None,
                _stamp(cancelled) if cancelled else None,
                subtotal,
                discount,
                tax,
                total,
                (subtotal - discount) // 4,
                paid,
                refunded,
                _stamp(placed),
            )
        )
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


class Sizes:
    """How much to generate for a ``--size``."""

    def __init__(self, size: str) -> None:
        self.size = size
        self.customers = scale(size, tiny=1_000, small=20_000, full=100_000)
        self.deals = scale(size, tiny=2_000, small=100_000, full=1_000_000)
        self.orders = scale(size, tiny=10_000, small=500_000, full=5_000_000)
        self.seed = 5

    @property
    def key(self) -> str:
        return f"{self.size}_{version()}"


def _fill(write: Callable[[str, Sequence[str], list[tuple[Any, ...]]], None], sizes: Sizes) -> None:
    now = _stamp(TODAY)
    write(
        "sales_pipelines",
        ("id", "name", "created_at", "updated_at"),
        [(n, name, now, now) for n, (name, _) in enumerate(PIPELINES, 1)],
    )
    write("sales_stages", ("id", "pipeline_id", "name", "position", "probability", "outcome"), stage_rows())
    for batch in deal_batches(sizes.deals, sizes.customers, sizes.seed):
        write("sales_deals", DEAL_COLUMNS, batch)
    for batch in order_batches(sizes.orders, sizes.customers, sizes.seed):
        write("sales_orders", ORDER_COLUMNS, batch)


def sqlite_database(sizes: Sizes, folder: Path) -> Path:
    """A SQLite file with the customers, deals and orders of ``sizes`` (built once, then reused)."""
    spec = datagen.Spec(sizes.customers, 0, sizes.seed)
    path = folder / f"sales_reports_{sizes.key}.db"
    return datagen.plugin_sqlite_database(path, spec, "sales", SALES_TABLES, lambda write: _fill(write, sizes))


def postgres_database(sizes: Sizes, server_url: str) -> str:
    """A PostgreSQL database with the data of ``sizes`` on the server of ``server_url`` (built once, then reused)."""
    spec = datagen.Spec(sizes.customers, 0, sizes.seed)
    name = f"crmkit_bench_sales_{sizes.key}"
    return datagen.plugin_postgres_database(
        name, server_url, spec, "sales", SALES_TABLES, lambda write: _fill(write, sizes)
    )


def measure(url: str, backend: str, sizes: Sizes) -> None:
    """Time the reports on one database and print the figures."""
    with CRM(url, plugins=["sales"]) as crm:
        reports = crm.sales.reports
        pipelines = crm.sales.pipelines.list()
        funnel_median, funnel_cold, funnels = timed_runs(lambda: [reports.funnel(p.id) for p in pipelines])
        forecast_median, forecast_cold, forecast = timed_runs(reports.forecast)
        revenue_median, _, revenue = timed_runs(lambda: reports.revenue_by_month(since=date(2024, 6, 1)))
        performance_median, _, _ = timed_runs(reports.performance)
    deals = sum(row.reached for funnel in funnels for row in funnel if row.position == 1)
    if deals != sizes.deals:
        raise SystemExit(f"the funnel counted {deals} deals, expected {sizes.deals}")
    limit = TARGET_SECONDS if backend == "SQLite" else None
    for what, median, cold, detail in (
        ("funnel, every pipeline", funnel_median, funnel_cold, f"{len(pipelines)} pipelines"),
        ("weighted forecast by month", forecast_median, forecast_cold, f"{len(forecast)} month×currency rows"),
    ):
        report(
            f"sales report {what} ({sizes.deals:,} deals, {sizes.orders:,} orders, {backend})",
            median,
            "s",
            target=f"< {TARGET_SECONDS:g} s on SQLite" if limit else "none (SQLite's is < 5 s)",
            ok=median < limit if limit else True,
            peer=f"cold first run {cold:.3f} s",
            detail=detail,
        )
    print(
        f"also on {backend}: revenue by month over {sizes.orders:,} orders {revenue_median:.3f} s "
        f"({len(revenue)} months); performance per employee {performance_median:.3f} s",
        flush=True,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Build (or reuse) the data sets, then time the reports on SQLite and, when asked, PostgreSQL."""
    return run_sized(__doc__, argv, Sizes, sqlite_database, postgres_database, measure)


if __name__ == "__main__":
    sys.exit(main())
