"""Import of order history: 100,000 past orders from CSV through ``crm.sales.orders.import_history`` on SQLite.

Generates a CSV (reference, customer_external_id, placed_at as a local day or an offset time, VND
or USD, a total or one free line; deterministic seed) for 10,000 customers, then, in the same run:

* the peer: raw ``sqlite3`` ``executemany`` of the same rows (``csv.reader`` straight into a
  plain table, one transaction, WAL as crmkit uses): the cost of the rows alone;
* crmkit: the import (each row checked, amounts parsed as decimals, customers and references
  looked up per batch, one INSERT for a batch's orders and one for their lines, the audit
  row, one transaction per batch of the default size), then a re-run of the same file (all
  skipped: the idempotency check).

Target: the 100,000 rows import in under 30 s ("well under a minute"); the peer shows what share is crmkit's work.

    python bench/bench_sales_import.py --size full
"""

from __future__ import annotations

import csv
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._report import parse_args, report, scale
from crmkit import CRM
from crmkit.core.transfer import import_customers

HEADER = [
    "reference",
    "customer_external_id",
    "placed_at",
    "currency",
    "total",
    "description",
    "quantity",
    "unit_price",
]
TARGET_SECONDS_PER_100K = 30.0
SEED = 20261207


def generate(path: Path, rows: int, customers: int, seed: int = SEED) -> Path:
    """Past orders: two thirds a VND total, one third one free USD line; days or times with an offset."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(HEADER)
        for n in range(rows):
            day = f"{2015 + n % 10}-{1 + rng.randrange(12):02d}-{1 + rng.randrange(28):02d}"
            customer = f"KH-{rng.randrange(customers):06d}"
            if n % 3:
                writer.writerow([f"HD-{n:08d}", customer, day, "VND", str(rng.randrange(0, 5_000) * 1_000), "", "", ""])
            else:
                writer.writerow(
                    [
                        f"HD-{n:08d}",
                        customer,
                        f"{day}T{rng.randrange(24):02d}:15:00+07:00",
                        "USD",
                        "",
                        "Cà phê Robusta 500g",
                        str(1 + rng.randrange(5)),
                        f"{rng.randrange(100, 5_000) / 100:.2f}",
                    ]
                )
    return path


def peer(path: Path, db: Path) -> float:
    """Seconds for raw executemany of the file's rows into a plain table (one transaction)."""
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"CREATE TABLE orders ({', '.join(f'{c} TEXT' for c in HEADER)})")
    start = time.perf_counter()
    with path.open(encoding="utf-8", newline="") as source:
        reader = csv.reader(source)
        next(reader)
        conn.executemany(f"INSERT INTO orders VALUES ({', '.join('?' * len(HEADER))})", reader)
    conn.commit()
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def main(argv: Sequence[str] | None = None) -> int:
    """Import the generated history into a fresh SQLite CRM, re-run it, and compare with the peer."""
    args = parse_args(__doc__.split("\n\n")[0], argv)
    rows = scale(args.size, tiny=500, small=20_000, full=100_000)
    customers = max(10, rows // 10)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-sales-import-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        people = work / "customers.csv"
        with people.open("w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["external_id", "name"])
            writer.writerows([f"KH-{n:06d}", f"Khách {n}"] for n in range(customers))
        orders = generate(work / "orders.csv", rows, customers)
        peer_seconds = peer(orders, work / "peer.db")
        crm = CRM(f"sqlite:///{work / 'crm.db'}", plugins=["sales"], upgrade=True, strict=True)
        import_customers(crm, people)
        start = time.perf_counter()
        summary = crm.sales.orders.import_history(orders)
        seconds = time.perf_counter() - start
        start = time.perf_counter()
        again = crm.sales.orders.import_history(orders)
        rerun = time.perf_counter() - start
        crm.close()
        if summary.inserted != rows or again.unchanged != rows:
            raise SystemExit(f"expected {rows} orders once: {summary} then {again}")
        per_100k = seconds * 100_000 / rows
        report(
            "sales orders import (SQLite)",
            rows / seconds,
            "rows/s",
            target=f"100,000 rows < {TARGET_SECONDS_PER_100K:.0f} s",
            ok=per_100k < TARGET_SECONDS_PER_100K,
            peer=f"raw sqlite3 executemany {rows / peer_seconds:,.0f} rows/s",
            rows=rows,
            seconds=f"{seconds:.2f}",
            per_100k=f"{per_100k:.1f}s",
            rerun=f"{rerun:.2f}s",
        )
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
