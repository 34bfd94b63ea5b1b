"""Loyalty ledger at scale: 1,000,000 ledger entries for 100,000 members (``--size full``), on SQLite.

Generates the data in bulk (a year and a half of purchases and redemptions per member, never
expired, so the first ``expire`` has a realistic backlog), then measures:

* ``crm.loyalty.balance(id)`` over 10,000 random members: wall-clock p99 against the target (< 2 ms),
  with the CPU-time p99 beside it (on a shared machine the wall p99 is mostly waiting for a core);
  the peer is the same primary-key lookup with the raw ``sqlite3`` driver;
* ``crm.loyalty.jobs.expire()`` + ``crm.loyalty.jobs.evaluate_tiers()`` over every member (target < 30 s),
  followed by ``crm.loyalty.jobs.verify()``, whose mismatch count must be 0.

The targets are SQLite's (the default database); the PostgreSQL figures of the same operations
come from ``bench_loyalty_concurrency.py``'s database, so this one runs on SQLite only.

    python bench/bench_loyalty_ledger.py --size full
"""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import datagen
from bench._report import parse_args, peak_rss_mib, percentile, report, scale, timed

BALANCE_TARGET_MS = 2.0
BATCH_TARGET_S = 30.0
WARMUP = 200
EXPIRY_DAYS = 365
HISTORY_DAYS = 540


def stamp(moment: datetime) -> str:
    """A UTC time as SQLAlchemy stores it on SQLite."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def member_history(
    rng: random.Random, customer_id: int, count: int, now: datetime, next_id: int
) -> tuple[list[tuple[Any, ...]], int, int]:
    """One member's ledger rows (purchases, some redemptions paid FIFO from earlier lots, each purchase with what
    is left of its lot) and how many lots are open."""
    times = sorted(now - timedelta(seconds=rng.randrange(HISTORY_DAYS * 86_400)) for _ in range(count))
    entries, lots, balance = [], [], 0
    for moment in times:
        entry_id = next_id
        next_id += 1
        cost = rng.choice((100, 200))
        if balance >= cost and rng.random() < 0.2:
            entries.append(
                (
                    entry_id,
                    1,
                    customer_id,
                    -cost,
                    "redeem",
                    "redeem",
                    "redemption",
                    str(entry_id),
                    None,
                    None,
                    0,
                    stamp(moment),
                    None,
                    None,
                    "bench",
                )
            )
            balance -= cost
            left = cost
            while left:
                take = min(left, lots[0][3])
                lots[0][3] -= take
                left -= take
                if not lots[0][3]:
                    lots.pop(0)
        else:
            points = rng.randint(5, 300)
            expires = stamp(moment + timedelta(days=EXPIRY_DAYS))
            entries.append(
                (
                    entry_id,
                    1,
                    customer_id,
                    points,
                    "earn",
                    "purchase",
                    "order",
                    str(entry_id),
                    str(entry_id),
                    points * 10_000 + rng.randrange(10_000),
                    1,
                    stamp(moment),
                    expires,
                    None,
                    "bench",
                )
            )
            balance += points
            lots.append([entry_id, 1, customer_id, points, expires])
    remaining = {lot[0]: lot[3] for lot in lots}
    return [(*row, remaining.get(row[0], 0)) for row in entries], len(lots), next_id


def generate(path: Path, members: int, entries: int, seed: int) -> tuple[int, int]:
    """Bulk-load members and ledger entries (with their open lots) with raw ``executemany`` (one transaction per
    10,000 members)."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    per_member = max(1, entries // members)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    indexes = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
        "AND tbl_name IN ('loyalty_ledger', 'loyalty_members')"
    ).fetchall()
    for (ddl,) in indexes:  # secondary indexes are built once, after the load
        conn.execute("DROP INDEX " + ddl.split()[2])
    next_id, written, open_lots = 1, 0, 0
    for first in range(1, members + 1, 10_000):
        ledger_rows, member_rows = [], []
        for customer_id in range(first, min(first + 10_000, members + 1)):
            count = rng.randint(1, 2 * per_member - 1)
            rows, lots, next_id = member_history(rng, customer_id, count, now, next_id)
            ledger_rows.extend(rows)
            open_lots += lots
            member_rows.append((customer_id, 1, sum(r[3] for r in rows), "member", stamp(now), stamp(now)))
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO loyalty_ledger VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", ledger_rows)
        conn.executemany("INSERT INTO loyalty_members VALUES (?,?,?,?,?,?)", member_rows)
        conn.execute("COMMIT")
        written += len(ledger_rows)
    for (ddl,) in indexes:
        conn.execute(ddl)
    conn.execute("ANALYZE")
    conn.close()
    return written, open_lots


def prepare(workdir: str | None, members: int, entries: int, seed: int) -> tuple[Path, int, int]:
    """A fresh database: the cached customers of ``datagen``, the loyalty schema, a program, then the ledger."""
    from crmkit import CRM

    customers = datagen.sqlite_database(datagen.Spec(members, 0, seed), workdir, progress=False)
    path = customers.with_name(f"loyalty_{members}_{entries}.db")
    for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        leftover.unlink(missing_ok=True)
    shutil.copyfile(customers, path)
    with CRM(f"sqlite:///{path}", plugins=["sales", "loyalty"], upgrade=True) as crm:
        crm.loyalty.programs.create(
            "default", "Khách hàng thân thiết", point_value_minor=500, expiry_days=EXPIRY_DAYS, auto_enroll=False
        )
    written, open_lots = generate(path, members, entries, seed)
    return path, written, open_lots


def raw_balance(path: Path) -> Any:
    """The peer: the same primary-key lookup with the ``sqlite3`` module in a read transaction."""
    conn = sqlite3.connect(path, isolation_level=None)

    def lookup(customer_id: int) -> Any:
        conn.execute("BEGIN")
        try:
            return conn.execute(
                "SELECT points FROM loyalty_members WHERE customer_id = ? AND program_id = 1", (customer_id,)
            ).fetchone()
        finally:
            conn.execute("COMMIT")

    return lookup


def latencies(lookups: Sequence[Any], ids: Sequence[int]) -> tuple[list[list[float]], list[list[float]]]:
    """Wall and CPU (this thread) milliseconds per call of each lookup, taking turns on the same random members.

    The CPU time tells the code's own cost apart from waiting for a core on a busy machine.
    """
    wall: list[list[float]] = [[] for _ in lookups]
    cpu: list[list[float]] = [[] for _ in lookups]
    for n, customer_id in enumerate(ids):
        turn = n % len(lookups)
        start, start_cpu = time.perf_counter(), time.thread_time()
        lookups[turn](customer_id)
        if n >= WARMUP:
            wall[turn].append((time.perf_counter() - start) * 1000)
            cpu[turn].append((time.thread_time() - start_cpu) * 1000)
    return wall, cpu


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(__doc__.split("\n\n")[0], argv)
    members = scale(args.size, tiny=200, small=10_000, full=100_000)
    entries = 10 * members
    lookups = scale(args.size, tiny=300, small=5_000, full=10_000)
    seed = 20261123
    with timed() as took:
        path, written, open_lots = prepare(args.workdir, members, entries, seed)
    print(
        f"generated {written:,} ledger entries ({open_lots:,} open lots) for {members:,} members in {took[0]:.1f} s",
        flush=True,
    )

    from crmkit import CRM

    with CRM(f"sqlite:///{path}", plugins=["sales", "loyalty"]) as crm:
        rng = random.Random(seed)
        ids = [rng.randint(1, members) for _ in range(2 * lookups + WARMUP)]
        (mine, peer), (mine_cpu, _) = latencies((crm.loyalty.balance, raw_balance(path)), ids)
        p99, peer_p99 = percentile(mine, 99), percentile(peer, 99)
        report(
            f"balance lookup p99 (SQLite, {members:,} members, {written:,} entries)",
            p99,
            "ms",
            target=f"< {BALANCE_TARGET_MS:g} ms",
            ok=p99 < BALANCE_TARGET_MS,
            peer=f"peer raw sqlite3: p99 {peer_p99:.3f} ms",
            p50=f"{percentile(mine, 50):.3f} ms",
            cpu_p99=f"{percentile(mine_cpu, 99):.3f} ms",
            lookups=f"{len(mine):,}",
            load_average=f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores",
        )
        with timed() as expiry:
            (expired,) = crm.loyalty.jobs.expire()
        with timed() as tiers:
            (moved,) = crm.loyalty.jobs.evaluate_tiers()
        with timed() as check:
            mismatches = crm.loyalty.jobs.verify()
        total = expiry[0] + tiers[0]
        report(
            f"expire + evaluate-tiers over all members (SQLite, {members:,} members, {written:,} entries)",
            total,
            "s",
            target=f"< {BATCH_TARGET_S:g} s",
            ok=total < BATCH_TARGET_S and not mismatches,
            expire=f"{expiry[0]:.1f} s ({expired.changed:,} lots, {expired.points:,} points)",
            evaluate_tiers=f"{tiers[0]:.1f} s ({moved.changed:,} members moved)",
            verify=f"{check[0]:.1f} s, {len(mismatches)} mismatches",
            peak_rss=f"{peak_rss_mib():.0f} MiB",
        )
        with timed() as again:
            (second,) = crm.loyalty.jobs.expire()
        print(f"expire again: {second.changed} lots in {again[0]:.2f} s (must be 0)", flush=True)
    return 1 if mismatches or second.changed else 0


if __name__ == "__main__":
    sys.exit(main())
