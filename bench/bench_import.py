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
  cost before any Python work;
* with ``--postgres URL`` (or $CRMKIT_BENCH_POSTGRES_URL): the same import into a fresh
  PostgreSQL database (crmkit writes through ``COPY``) against ``COPY`` of the raw file into
  a plain table of the same database.

The import validates in ``--jobs`` processes (default: automatic, one per core but the writer's).
Targets: rows/s ≥ 1/5 of the peer; peak memory for the file ≤ 1.25x the peak for a tenth of it.

    python bench/bench_import.py --size full
"""

from __future__ import annotations

import argparse
import csv
import json
import os
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


def raw_copy(csv_path: Path, url: str) -> float:
    """Rows/s of ``COPY … FROM STDIN (FORMAT csv)`` of the file into a plain table, in one transaction."""
    import psycopg
    from sqlalchemy.engine import make_url

    with psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)) as conn:
        conn.execute(f"CREATE TABLE customers_raw ({', '.join(c + ' text' for c in HEADER)})")
        start = time.perf_counter()
        with (
            conn.cursor() as cursor,
            cursor.copy("COPY customers_raw FROM STDIN WITH (FORMAT csv, HEADER true)") as copy,
            open(csv_path, "rb") as source,
        ):
            while block := source.read(1 << 20):
                copy.write(block)
        conn.commit()
        seconds = time.perf_counter() - start
        rows = conn.execute("SELECT count(*) FROM customers_raw").fetchone()
    return (rows[0] if rows else 0) / seconds


def crmkit_import(csv_path: Path, url: str, jobs: int | None) -> dict[str, float]:
    """Run the import in a fresh interpreter; its figures and peak memory (this process and its largest child)."""
    command = [sys.executable, __file__, "--child", str(csv_path), url]
    result = subprocess.run(
        [*command, *(("--jobs", str(jobs)) if jobs is not None else ())], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"the import failed:\n{result.stdout}\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def child(csv_path: str, url: str, jobs: int | None) -> None:
    """The import itself (``--child``): prints one JSON line."""
    import resource

    from crmkit import CRM
    from crmkit.core.transfer import import_customers

    crm = CRM(url, plugins=[])
    start = time.perf_counter()
    summary = import_customers(crm, csv_path, jobs=jobs)
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


def floor(imported: Path, folder: Path, batch: int) -> tuple[float, dict[str, float]]:
    """Rows/s of raw ``executemany`` of the rows the import wrote, into an empty crmkit schema, batch by batch;
    and the share of that time each table took (its inserts, then the commit)."""
    from crmkit import CRM
    from crmkit.core.transfer.writing import SQLITE_BULK

    target = folder / "floor.db"
    CRM(f"sqlite:///{target}", plugins=[]).close()
    source, conn = sqlite3.connect(imported), sqlite_connect(target)
    for name, value in SQLITE_BULK.items():  # the settings the import gives its connection
        conn.execute(f"PRAGMA {name}={value}")
    last = source.execute("SELECT max(id) FROM customers").fetchone()[0] or 0
    spent = 0.0
    shares = dict.fromkeys([*WRITTEN, "commit"], 0.0)
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
            began = time.perf_counter()
            conn.executemany(
                f"INSERT INTO {table} ({', '.join(map(quote, columns))}) VALUES ({', '.join('?' * len(columns))})",
                rows[table],
            )
            shares[table] += time.perf_counter() - began
        began = time.perf_counter()
        conn.execute("COMMIT")
        shares["commit"] += time.perf_counter() - began
        spent += time.perf_counter() - start
    source.close()
    conn.close()
    return last / spent, {part: seconds / spent for part, seconds in shares.items()}


def main(argv: Sequence[str] | None = None) -> int:
    """Generate the file, measure the peer, the import (whole file and a tenth) and the floor; report."""

    def extra(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--child", nargs=2, metavar=("CSV", "URL"), help=argparse.SUPPRESS)
        parser.add_argument("--jobs", type=int, default=None, help="validating processes (default: automatic)")

    args = parse_args(__doc__.split("\n\n")[0], argv, extra)
    if args.child:
        child(*args.child, args.jobs)
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
        small = crmkit_import(tenth, f"sqlite:///{folder / 'tenth.db'}", args.jobs)
        full = crmkit_import(big, f"sqlite:///{folder / 'crm.db'}", args.jobs)
        rate = full["rows"] / full["seconds"]
        assert full["inserted"] + full["rejected"] == count and 0.005 * count <= full["rejected"] <= 0.02 * count, full
        print(
            f"crmkit import: {full['inserted']:,} inserted, {full['rejected']:,} rejected in {full['seconds']:,.1f} s",
            flush=True,
        )
        floor_rate, floor_shares = floor(folder / "crm.db", folder, batch)
        report(
            f"import {count:,} customers from CSV into SQLite (validated, E.164 phones)",
            rate,
            "rows/s",
            target=f">= 1/{TARGET_SHARE} of raw executemany ({raw / TARGET_SHARE:,.0f} rows/s)",
            ok=rate * TARGET_SHARE >= raw,
            peer=f"raw sqlite3 executemany {raw:,.0f} rows/s (crmkit = 1/{raw / rate:.1f} of it)",
            floor=f"{floor_rate:,.0f} rows/s for executemany of the rows crmkit wrote (crmkit = {rate / floor_rate:.0%} of it)",
            batch=batch,
            floor_time=", ".join(f"{part} {share:.0%}" for part, share in floor_shares.items()),
        )
        peak, peak_small = max(full["rss"], full["reader_rss"]), max(small["rss"], small["reader_rss"])
        report(
            "import peak memory (largest process)",
            peak,
            "MiB",
            target=f"flat in file size: <= {FLAT}x the peak for a tenth of the rows ({peak_small:,.0f} MiB)",
            ok=peak <= FLAT * peak_small,
            ratio=f"{peak / peak_small:.2f}x the tenth's peak",
            writer=f"{full['rss']:,.0f} MiB",
            reader=f"{full['reader_rss']:,.0f} MiB",
            file=f"{big.stat().st_size / 2**20:,.0f} MiB",
        )
        if args.postgres:
            postgres(args.postgres, big, count, args.jobs)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


def postgres(server_url: str, csv_path: Path, count: int, jobs: int | None) -> None:
    """The PostgreSQL half: crmkit's import (through ``COPY``) against ``COPY`` of the raw file, in a fresh database."""
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    from crmkit import CRM

    name = f"bench_import_{os.getpid()}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
        CRM(url, plugins=[]).close()
        raw = raw_copy(csv_path, url)
        print(f"raw COPY: {raw:,.0f} rows/s", flush=True)
        full = crmkit_import(csv_path, url, jobs)
        rate = full["rows"] / full["seconds"]
        assert full["inserted"] + full["rejected"] == count, full
        report(
            f"import {count:,} customers from CSV into PostgreSQL (validated, E.164 phones, written by COPY)",
            rate,
            "rows/s",
            target=f">= 1/{TARGET_SHARE} of raw COPY ({raw / TARGET_SHARE:,.0f} rows/s)",
            ok=rate * TARGET_SHARE >= raw,
            peer=f"raw COPY of the file {raw:,.0f} rows/s (crmkit = 1/{raw / rate:.1f} of it)",
        )
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


if __name__ == "__main__":
    sys.exit(main())
