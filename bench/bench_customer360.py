"""Customer 360: ``crm.customers.profile(id)`` — the customer, the last 50 interactions, counts per channel.

With 1,000,000 customers and 10,000,000 interactions (skewed: a few big accounts hold
thousands), times 10,000 lookups of random customers and prints p50/p99 against the
target (p99 < 5 ms on SQLite, < 10 ms on PostgreSQL). The peer, measured in the same
run on the same database, is the same lookup written by hand with the raw driver
(``sqlite3`` / ``psycopg``): what crmkit's layers cost on top of the database.

    python bench/bench_customer360.py --size full [--postgres postgresql://…/postgres]
"""

from __future__ import annotations

import os
import random
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import datagen
from bench._report import parse_args, percentile, report, scale

TARGET_MS = {"SQLite": 5.0, "PostgreSQL": 10.0}

#: The lookup as a developer would write it by hand: one read transaction, the same rows crmkit reads.
PEER_QUERIES = (
    "SELECT * FROM customers WHERE id = {p}",
    "SELECT kind, value FROM customer_contact_points WHERE customer_id = {p} ORDER BY position, id",
    "SELECT * FROM customer_addresses WHERE customer_id = {p} ORDER BY position, id",
    "SELECT tag FROM customer_tags WHERE customer_id = {p} ORDER BY tag",
    "SELECT * FROM customer_consents WHERE customer_id = {p}",
    "SELECT organization_id, role FROM customer_memberships WHERE person_id = {p} ORDER BY organization_id",
    "SELECT * FROM interactions WHERE customer_id = {p} ORDER BY occurred_at DESC, id DESC LIMIT 50",
    "SELECT channel, count(*) FROM interactions WHERE customer_id = {p} GROUP BY channel",
)


def latencies_ms(lookups: Sequence[Callable[[int], Any]], ids: Sequence[int], warmup: int) -> list[list[float]]:
    """Milliseconds per lookup for each of ``lookups``, taking turns on consecutive ids (the first ``warmup`` untimed).

    Taking turns puts both through the same machine and page-cache conditions; each still
    reads customers the other has not touched.
    """
    samples: list[list[float]] = [[] for _ in lookups]
    for n, customer_id in enumerate(ids):
        turn = n % len(lookups)
        start = time.perf_counter()
        lookups[turn](customer_id)
        if n >= warmup:
            samples[turn].append((time.perf_counter() - start) * 1000)
    return samples


def raw_sqlite(path: Path) -> Callable[[int], Any]:
    """The peer on SQLite: the same reads with the ``sqlite3`` module, nothing else."""
    conn = sqlite3.connect(path, isolation_level=None)
    queries = [q.format(p="?") for q in PEER_QUERIES]

    def lookup(customer_id: int) -> list[list[Any]]:
        conn.execute("BEGIN")
        try:
            return [conn.execute(q, (customer_id,)).fetchall() for q in queries]
        finally:
            conn.execute("COMMIT")

    return lookup


def raw_postgres(url: str) -> Callable[[int], Any]:
    """The peer on PostgreSQL: the same reads with ``psycopg`` (prepared statements), nothing else."""
    import psycopg

    conn = psycopg.connect(datagen.libpq_url(url))
    queries = [q.format(p="%s") for q in PEER_QUERIES]

    def lookup(customer_id: int) -> list[list[Any]]:
        with conn.transaction(), conn.cursor() as cur:
            return [cur.execute(q, (customer_id,), prepare=True).fetchall() for q in queries]

    return lookup


def measure(backend: str, url: str, peer: Callable[[int], Any], spec: datagen.Spec, lookups: int) -> None:
    """Time crmkit's profile and the raw peer on the same database, taking turns on random customers."""
    from crmkit import CRM

    rng = random.Random(spec.seed)
    warmup = lookups // 10
    ids = [rng.randint(1, spec.customers) for _ in range(2 * lookups + warmup)]
    print(f"{backend}: {datagen.warm(url)}", flush=True)
    with CRM(url, plugins=[]) as crm:
        profile = crm.customers.profile
        sample = profile(ids[0])
        if sample.customer.id != ids[0]:
            raise SystemExit(f"profile({ids[0]}) returned customer {sample.customer.id}")
        crmkit_ms, peer_ms = latencies_ms((profile, peer), ids, warmup)
    p50, p99 = percentile(crmkit_ms, 50), percentile(crmkit_ms, 99)
    peer_p50, peer_p99 = percentile(peer_ms, 50), percentile(peer_ms, 99)
    target = TARGET_MS[backend]
    driver = "sqlite3" if backend == "SQLite" else "psycopg"
    report(
        f"customer 360 p99 ({backend}, {spec.customers:,} customers, {spec.interactions:,} interactions)",
        p99,
        "ms",
        target=f"< {target:g} ms",
        ok=p99 < target,
        peer=f"peer raw {driver}: p99 {peer_p99:.3f} ms, p50 {peer_p50:.3f} ms (crmkit/raw p99 = {p99 / peer_p99:.1f}x)",
        p50=f"{p50:.3f} ms",
        max=f"{max(crmkit_ms):.1f} ms",
        lookups=f"{len(crmkit_ms):,}",
        load=f"{os.getloadavg()[0]:.1f}",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the SQLite half, and the PostgreSQL half when a server URL is given."""
    args = parse_args(__doc__.split("\n\n")[0], argv)
    spec = datagen.Spec.for_size(args.size)
    lookups = scale(args.size, tiny=100, small=2_000, full=10_000)
    path = datagen.sqlite_database(spec, args.workdir)
    measure("SQLite", f"sqlite:///{path}", raw_sqlite(path), spec, lookups)
    if args.postgres:
        url = datagen.postgres_database(spec, args.postgres)
        measure("PostgreSQL", url, raw_postgres(url), spec, lookups)
    else:
        print("PostgreSQL half skipped: give --postgres URL or set CRMKIT_BENCH_POSTGRES_URL", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
