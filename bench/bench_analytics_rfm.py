"""RFM with quintile scores over 1,000,000 customers and 10,000,000 orders, against DuckDB from scratch.

The same generated orders (seeded) go into SQLite, PostgreSQL (with ``--postgres``) and an
in-memory DuckDB. crmkit is timed on what a user runs: ``crm.analytics.rebuild()`` (the full
aggregate rebuild, one INSERT … SELECT … GROUP BY over every order) and ``crm.analytics.rfm()``
(cut points read from indexes, scores and segments written to the snapshot, segment sizes). DuckDB,
the reference, computes the same RFM table from the raw orders in one statement (GROUP BY, NTILE(5)
three times, the segment grid) — in the same run, on the same machine, taking turns with crmkit
(best of three each, after a warm-up), so a busy machine slows both alike.
Target: crmkit's RFM within 3× of DuckDB on each database. Also printed: the cost the aggregates add
to one order transaction (the per-customer refresh, p50).

    python bench/bench_analytics_rfm.py --size full [--postgres postgresql://crmkit:crmkit@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import shutil
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._report import parse_args, percentile, report, scale, timed

AS_OF = datetime(2026, 1, 1, tzinfo=UTC)
DAYS = 730
TARGET_RATIO = 3.0


def generate(customers: int, orders: int, seed: int = 6) -> dict[str, np.ndarray]:
    """Orders of ``customers`` customers (skewed: some buy often), spread over two years before AS_OF."""
    rng = np.random.default_rng(seed)
    weight = rng.gamma(0.7, 1.0, customers)
    customer_id = rng.choice(np.arange(1, customers + 1), size=orders, p=weight / weight.sum())
    seconds = rng.integers(0, DAYS * 86400, orders) * 1_000_000 + rng.integers(0, 1_000_000, orders)
    amount = (rng.lognormal(12.5, 0.8, orders) // 1000 * 1000).astype(np.int64)  # VND, whole thousands
    return {"customer_id": customer_id.astype(np.int64), "us": seconds.astype(np.int64), "amount": amount}


def iso(us_after_start: np.ndarray) -> np.ndarray:
    """Microseconds after the window start as SQLAlchemy's SQLite text (``YYYY-MM-DD HH:MM:SS.ffffff``)."""
    start = np.datetime64((AS_OF - timedelta(days=DAYS)).replace(tzinfo=None), "us")
    text = np.datetime_as_string(start + us_after_start.astype("timedelta64[us]"), unit="us")
    return np.char.replace(text, "T", " ")


def customer_rows(customers: int) -> list[tuple[Any, ...]]:
    now = AS_OF.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    return [
        (i, "person", f"Khách hàng {i}", f"khach hang {i}", "customer", "{}", "active", now, now)
        for i in range(1, customers + 1)
    ]


CUSTOMER_COLUMNS = "id, kind, name, name_key, lifecycle_stage, attributes, status, created_at, updated_at"
ORDER_COLUMNS = "customer_id, occurred_at, amount_minor, currency"


def load_sqlite(path: Path, data: dict[str, np.ndarray], customers: int) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    conn.executemany(f"INSERT INTO customers ({CUSTOMER_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)", customer_rows(customers))
    conn.execute("DROP INDEX IF EXISTS ix_crmkit_test_purchases_customer_id")
    step = 1_000_000
    for start in range(0, len(data["amount"]), step):
        part = slice(start, start + step)
        conn.executemany(
            f"INSERT INTO crmkit_test_purchases ({ORDER_COLUMNS}) VALUES (?,?,?,'VND')",
            zip(data["customer_id"][part].tolist(), iso(data["us"][part]).tolist(), data["amount"][part].tolist()),
        )
    conn.execute("CREATE INDEX ix_crmkit_test_purchases_customer_id ON crmkit_test_purchases (customer_id)")
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()


def load_postgres(url: str, data: dict[str, np.ndarray], customers: int) -> None:
    import psycopg

    from bench.datagen import libpq_url

    with psycopg.connect(libpq_url(url)) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY customers ({CUSTOMER_COLUMNS}) FROM STDIN") as copy:
            for row in customer_rows(customers):
                copy.write_row(row)
        cur.execute("DROP INDEX IF EXISTS ix_crmkit_test_purchases_customer_id")
        step = 1_000_000
        for start in range(0, len(data["amount"]), step):
            part = slice(start, start + step)
            with cur.copy(f"COPY crmkit_test_purchases ({ORDER_COLUMNS}) FROM STDIN") as copy:
                for row in zip(
                    data["customer_id"][part].tolist(), iso(data["us"][part]).tolist(), data["amount"][part].tolist()
                ):
                    copy.write_row((*row, "VND"))
        cur.execute("CREATE INDEX ix_crmkit_test_purchases_customer_id ON crmkit_test_purchases (customer_id)")
        cur.execute(f"SELECT setval('customers_id_seq', {customers})")
        conn.commit()
        conn.autocommit = True
        cur.execute("VACUUM ANALYZE")


class DuckDBReference:
    """DuckDB computing RFM from the raw orders in one statement (the orders loaded once, in memory)."""

    def __init__(self, data: dict[str, np.ndarray]) -> None:
        import duckdb

        self.con = duckdb.connect()
        orders = {"customer_id": data["customer_id"], "us": data["us"], "amount_minor": data["amount"]}  # noqa: F841
        start = (AS_OF - timedelta(days=DAYS)).replace(tzinfo=None).isoformat(sep=" ")
        self.con.execute(
            f"CREATE TABLE orders AS SELECT customer_id, TIMESTAMP '{start}' + to_microseconds(us) "
            "AS occurred_at, amount_minor, 'VND' AS currency FROM orders"
        )
        grid = " ".join(
            f"WHEN r = {r} AND fm = {fm} THEN '{name}'"
            for r, row in _grid().items()
            for fm, name in enumerate(row, start=1)
        )
        as_of = AS_OF.replace(tzinfo=None).isoformat(sep=" ")
        self.sql = f"""
            CREATE OR REPLACE TABLE rfm AS
            WITH agg AS (SELECT customer_id, max(occurred_at) AS last_at, count(*) AS frequency,
                                sum(amount_minor) AS monetary
                         FROM orders WHERE currency = 'VND' AND amount_minor > 0 GROUP BY customer_id),
                 scored AS (SELECT *, date_diff('day', last_at, TIMESTAMP '{as_of}') AS recency_days,
                                   ntile(5) OVER (ORDER BY last_at) AS r, ntile(5) OVER (ORDER BY frequency) AS f,
                                   ntile(5) OVER (ORDER BY monetary) AS m FROM agg)
            SELECT customer_id, recency_days, frequency, monetary, r, f, m,
                   CAST(r AS VARCHAR) || CAST(f AS VARCHAR) || CAST(m AS VARCHAR) AS score,
                   CASE {grid} END AS segment
            FROM (SELECT *, (f + m + 1) // 2 AS fm FROM scored)"""

    def seconds(self) -> float:
        """One run: the RFM table and its segment sizes."""
        with timed() as t:
            self.con.execute(self.sql)
            self.con.execute("SELECT segment, count(*) FROM rfm GROUP BY segment").fetchall()
        return t[0]


def reference(data: dict[str, np.ndarray]) -> DuckDBReference | None:
    """The DuckDB reference, or None (said clearly) when duckdb is not installed."""
    try:
        return DuckDBReference(data)
    except ImportError:
        print("duckdb is not installed: `pip install duckdb` (or crmkit-analytics[bench]) for the reference figure")
        return None


def _grid() -> dict[int, tuple[str, ...]]:
    from crmkit_analytics.rfm import GRID

    return GRID


def measure(crm: Any, label: str, duck: DuckDBReference | None, size: str) -> None:
    """Time the rebuild, RFM (turn about with DuckDB, best of three each) and the per-order refresh."""
    from crmkit_analytics import aggregates

    with timed() as t:
        rows = crm.analytics.rebuild()
    report(
        f"analytics aggregate rebuild ({label})",
        t[0],
        "s",
        target="(no target: one full pass over every order)",
        ok=True,
        rows=rows,
    )
    crm.analytics.rfm(as_of=AS_OF)  # warm the cache as DuckDB's in-memory table is
    ours, theirs = float("inf"), float("inf")
    for _ in range(3):  # taking turns, so a busy machine slows both alike
        if duck is not None:
            theirs = min(theirs, duck.seconds())
        with timed() as t:
            run = crm.analytics.rfm(as_of=AS_OF)
        ours = min(ours, t[0])
    ratio = ours / theirs if duck is not None else None
    report(
        f"analytics RFM with quintile scores ({label})",
        ours,
        "s",
        target=f"≤ {TARGET_RATIO:.0f}× DuckDB from scratch",
        peer=f"DuckDB {theirs:.3f} s, ratio {ratio:.2f}×" if ratio is not None else "DuckDB not installed",
        ok=bool(ratio is not None and ratio <= TARGET_RATIO),
        customers=run.summary["customers"],
        size=size,
    )
    ids = np.random.default_rng(1).integers(1, run.summary["customers"] + 1, 300).tolist()
    samples = []
    for customer_id in ids:
        with crm.transaction() as session:
            start = time.perf_counter()
            aggregates.refresh(crm, session.connection(), [customer_id])
            samples.append((time.perf_counter() - start) * 1000)
    report(
        f"analytics per-order aggregate refresh ({label}) p50",
        percentile(samples, 50),
        "ms",
        target="(no target: added to each order transaction)",
        ok=True,
        p99=f"{percentile(samples, 99):.2f} ms",
    )


def main() -> None:
    args = parse_args(
        __doc__.splitlines()[0],
        extra=lambda p: p.add_argument("--only", choices=("sqlite", "postgresql"), help="measure one database only"),
    )
    customers = scale(args.size, tiny=2_000, small=100_000, full=1_000_000)
    orders = customers * 10
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="crmkit-bench-rfm-"))
    workdir.mkdir(parents=True, exist_ok=True)
    from crmkit import CRM
    from crmkit_analytics.testing import SOURCE

    data = generate(customers, orders)
    duck = reference(data)

    if args.only != "postgresql":
        path = workdir / f"rfm-{args.size}.db"
        path.unlink(missing_ok=True)
        crm = CRM(f"sqlite:///{path}", plugins=["analytics", SOURCE], upgrade=True)
        crm.close()
        with timed() as t:
            load_sqlite(path, data, customers)
        print(f"loaded {customers:,} customers and {orders:,} orders into SQLite in {t[0]:.0f} s", flush=True)
        crm = CRM(f"sqlite:///{path}", plugins=["analytics", SOURCE])
        measure(crm, "SQLite", duck, args.size)
        crm.close()

    if args.postgres and args.only != "sqlite":
        from crmkit.storage import create_engine

        name = f"crmkit_bench_rfm_{args.size}"
        admin = create_engine(args.postgres, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        from sqlalchemy.engine import make_url

        url = make_url(args.postgres).set(database=name).render_as_string(hide_password=False)
        crm = CRM(url, plugins=["analytics", SOURCE], upgrade=True)
        crm.close()
        with timed() as t:
            load_postgres(url, data, customers)
        print(f"loaded {customers:,} customers and {orders:,} orders into PostgreSQL in {t[0]:.0f} s", flush=True)
        crm = CRM(url, plugins=["analytics", SOURCE])
        measure(crm, "PostgreSQL", duck, args.size)
        crm.close()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
    if not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
