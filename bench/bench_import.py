"""Import of customers from CSV into SQLite, with full validation and phone normalization.

Generates a CSV (Vietnamese and English names, VN mobile numbers in national format,
e-mails, cities, birth dates; 1% bad rows; deterministic seed), then, in the same run:

* the peer: raw ``sqlite3`` ``executemany`` of the same rows (``csv.reader`` straight into a
  plain table, one transaction, WAL as crmkit uses);
* crmkit: ``import_customers`` (schema validation, E.164 phones, the external-id lookup,
  every core table and the search keys, one transaction per batch of the default size),
  in a subprocess that reports its peak memory, once for the file and once for a tenth
  of it (memory must not grow with the file);
* the floor: raw ``executemany`` of exactly the table rows crmkit wrote, in the same
  batches with the same SQLite settings: what the schema's indexes and per-batch commits
  cost before any Python work.

Targets: rows/s ≥ 1/5 of the peer; peak memory flat in the file size.

    python bench/bench_import.py --size full
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import datagen
from bench._report import parse_args, peak_rss_mib, report, scale
from crmkit.core.text import fold

HEADER = ["external_id", "name", "email", "phone", "city", "birth_date"]
TARGET_SHARE = 5  # crmkit's rows/s must be at least 1/5 of raw executemany
FLAT = 1.25  # peak memory for the whole file may be at most this times the peak for a tenth of it
SEED = 20261123
#: The tables an import writes, with the columns the floor copies (ids included).
WRITTEN = {
    "customers": datagen.CUSTOMER_COLUMNS,
    "customer_contact_points": ("id", "customer_id", "kind", "value", "label", "position"),
    "customer_search_keys": ("key", "customer_id", "owner"),
}


def generate(path: Path, rows: int, seed: int = SEED) -> Path:
    """A client's customer file: 75% Vietnamese names, national-format phones, 1% bad rows."""
    rng = random.Random(seed)
    family_weights = datagen.VN_FAMILY_WEIGHTS
    places = [*datagen.VN_CITIES, *(city for _, city in datagen.EN_PLACES)]
    with open(path, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(HEADER)
        for n in range(1, rows + 1):
            gender = rng.choice(("male", "female"))
            if rng.random() < 0.75:
                family = rng.choices(datagen.VN_FAMILY, family_weights)[0]
                name = f"{family} {rng.choice(datagen.VN_MIDDLE[gender])} {rng.choice(datagen.VN_GIVEN[gender])}"
            else:
                name = f"{rng.choice(datagen.EN_GIVEN[gender])} {rng.choice(datagen.EN_FAMILY)}"
            local = "".join(ch for ch in fold(name).replace(" ", ".") if ch.isalnum() or ch == ".")
            email = f"{local}{n}@{rng.choice(datagen.MAIL_DOMAINS)}"
            digits = f"0{rng.choice(datagen.MOBILE_PREFIXES)}{rng.randrange(10_000_000):07d}"
            phone = rng.choice(
                (f"{digits[:4]} {digits[4:7]} {digits[7:]}", digits, f"{digits[:4]}.{digits[4:7]}.{digits[7:]}")
            )
            born = date(rng.randint(1950, 2005), rng.randint(1, 12), rng.randint(1, 28))
            birth = rng.choice((born.isoformat(), born.isoformat(), born.strftime("%d/%m/%Y"), ""))
            bad = rng.random()
            if bad < 0.004:
                email = email.replace("@", " at ")
            elif bad < 0.007:
                phone = phone[:5]
            elif bad < 0.01:
                birth = f"{date.today().year + 1}-01-01"
            writer.writerow(
                [f"KH{n:08d}", name, email, "" if rng.random() < 0.05 else phone, rng.choice(places), birth]
            )
    return path


def quote(column: str) -> str:
    return f'"{column}"'


def sqlite_connect(path: Path) -> sqlite3.Connection:
    """A connection set up the way crmkit sets up its own (WAL, synchronous=NORMAL, foreign keys)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def raw_peer(csv_path: Path, folder: Path) -> float:
    """Rows/s of csv.reader → ``executemany`` into a plain table, in one transaction."""
    conn = sqlite_connect(folder / "raw.db")
    conn.execute(f"CREATE TABLE customers_raw ({', '.join(c + ' TEXT' for c in HEADER)})")
    with open(csv_path, encoding="utf-8", newline="") as source:
        reader = csv.reader(source)
        next(reader)
        start = time.perf_counter()
        conn.execute("BEGIN")
        conn.executemany(f"INSERT INTO customers_raw VALUES ({', '.join('?' * len(HEADER))})", reader)
        conn.execute("COMMIT")
        seconds = time.perf_counter() - start
    rows = conn.execute("SELECT count(*) FROM customers_raw").fetchone()[0]
    conn.close()
    return rows / seconds


def crmkit_import(csv_path: Path, db: Path) -> dict[str, float]:
    """Run the import in a fresh interpreter; its figures and peak memory (this process and the reader's)."""
    result = subprocess.run(
        [sys.executable, __file__, "--child", str(csv_path), str(db)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"the import failed:\n{result.stdout}\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def child(csv_path: str, db: str) -> None:
    """The import itself (``--child``): prints one JSON line."""
    import resource

    from crmkit import CRM
    from crmkit.core.transfer import import_customers

    crm = CRM(f"sqlite:///{db}", plugins=[])
    start = time.perf_counter()
    summary = import_customers(crm, csv_path)
    seconds = time.perf_counter() - start
    crm.close()
    reader = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "seconds": seconds,
                "rows": summary.rows,
                "inserted": summary.inserted,
                "rejected": summary.rejected,
                "rss": peak_rss_mib(),
                "reader_rss": reader,
            }
        )
    )


def floor(imported: Path, folder: Path, batch: int) -> float:
    """Rows/s of raw ``executemany`` of the rows the import wrote, into an empty crmkit schema, batch by batch."""
    from crmkit import CRM
    from crmkit.core.transfer import _SQLITE_BULK

    target = folder / "floor.db"
    CRM(f"sqlite:///{target}", plugins=[]).close()
    source, conn = sqlite3.connect(imported), sqlite_connect(target)
    for name, value in _SQLITE_BULK.items():  # the settings the import gives its connection
        conn.execute(f"PRAGMA {name}={value}")
    last = source.execute("SELECT max(id) FROM customers").fetchone()[0] or 0
    spent = 0.0
    for low in range(1, last + 1, batch):
        rows = {}
        for table, columns in WRITTEN.items():
            key = "id" if table == "customers" else "customer_id"
            rows[table] = source.execute(
                f"SELECT {', '.join(map(quote, columns))} FROM {table} WHERE {key} BETWEEN ? AND ?",
                (low, low + batch - 1),
            ).fetchall()
        start = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        for table, columns in WRITTEN.items():
            conn.executemany(
                f"INSERT INTO {table} ({', '.join(map(quote, columns))}) VALUES ({', '.join('?' * len(columns))})",
                rows[table],
            )
        conn.execute("COMMIT")
        spent += time.perf_counter() - start
    source.close()
    conn.close()
    return last / spent


def main(argv: Sequence[str] | None = None) -> int:
    """Generate the file, measure the peer, the import (whole file and a tenth) and the floor; report."""

    def extra(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--child", nargs=2, metavar=("CSV", "DB"), help=argparse.SUPPRESS)

    args = parse_args(__doc__.split("\n\n")[0], argv, extra)
    if args.child:
        child(*args.child)
        return 0
    from crmkit.core.transfer import import_customers

    batch = import_customers.__kwdefaults__["batch_size"]
    count = scale(args.size, tiny=2_000, small=100_000, full=1_000_000)
    folder = Path(tempfile.mkdtemp(prefix="bench_import_", dir=args.workdir))
    try:
        big = generate(folder / "customers.csv", count)
        tenth = generate(folder / "customers_tenth.csv", count // 10, seed=SEED + 1)
        print(f"generated {count:,} rows ({big.stat().st_size / 2**20:,.0f} MiB) and {count // 10:,}", flush=True)
        raw = raw_peer(big, folder)
        print(f"raw executemany: {raw:,.0f} rows/s", flush=True)
        small = crmkit_import(tenth, folder / "tenth.db")
        full = crmkit_import(big, folder / "crm.db")
        rate = full["rows"] / full["seconds"]
        assert full["inserted"] + full["rejected"] == count and 0.005 * count <= full["rejected"] <= 0.02 * count, full
        print(
            f"crmkit import: {full['inserted']:,} inserted, {full['rejected']:,} rejected in {full['seconds']:,.1f} s",
            flush=True,
        )
        floor_rate = floor(folder / "crm.db", folder, batch)
        report(
            f"import {count:,} customers from CSV into SQLite (validated, E.164 phones)",
            rate,
            "rows/s",
            target=f">= 1/{TARGET_SHARE} of raw executemany ({raw / TARGET_SHARE:,.0f} rows/s)",
            ok=rate * TARGET_SHARE >= raw,
            peer=f"raw sqlite3 executemany {raw:,.0f} rows/s (crmkit = 1/{raw / rate:.1f} of it)",
            floor=f"{floor_rate:,.0f} rows/s for executemany of the rows crmkit wrote (crmkit = {rate / floor_rate:.0%} of it)",
            batch=batch,
        )
        peak, peak_small = max(full["rss"], full["reader_rss"]), max(small["rss"], small["reader_rss"])
        report(
            "import peak memory (largest process)",
            peak,
            "MiB",
            target=f"flat in file size: <= {FLAT}x the peak for a tenth of the rows ({peak_small:,.0f} MiB)",
            ok=peak <= FLAT * peak_small,
            writer=f"{full['rss']:,.0f} MiB",
            reader=f"{full['reader_rss']:,.0f} MiB",
            file=f"{big.stat().st_size / 2**20:,.0f} MiB",
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
