"""Accent-insensitive search: ``crm.customers.find(q, limit=20)`` over 1,000,000 customers (SQLite).

Three kinds of query, typed without accents as people do: a Vietnamese name
(``nguyen van an`` finds ``Nguyễn Văn An``), the last digits of a phone number, the
start of an e-mail address. Prints p99 of each against the target (< 50 ms). The peer,
measured in the same run on the same database, is the naive way: a ``LIKE '%…%'`` scan
over the folded name (names) or the stored contact values (phones, e-mails).

    python bench/bench_search.py --size full
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
from crmkit.core.text import fold

TARGET_MS = 50.0
LIMIT = 20
PEER_SQL = {
    "name": "SELECT id FROM customers WHERE name_key LIKE ? LIMIT 20",
    "phone suffix": "SELECT customer_id FROM customer_contact_points WHERE kind = 'phone' AND value LIKE ? LIMIT 20",
    "e-mail prefix": "SELECT customer_id FROM customer_contact_points WHERE kind = 'email' AND value LIKE ? LIMIT 20",
}


def name_queries(rng: random.Random, count: int) -> list[str]:
    """``nguyen van an`` and other common Vietnamese full names, without accents."""
    queries = ["nguyen van an"]
    while len(queries) < count:
        gender = rng.choice(("male", "female"))
        parts = (
            rng.choice(datagen.VN_FAMILY[:8]),
            rng.choice(datagen.VN_MIDDLE[gender]),
            rng.choice(datagen.VN_GIVEN[gender]),
        )
        queries.append(fold(" ".join(parts)))
    return queries


def contact_queries(conn: sqlite3.Connection, rng: random.Random, kind: str, count: int) -> list[str]:
    """Phone suffixes (last 4–7 digits) or e-mail prefixes (the local part, cut) of existing customers."""
    (last,) = conn.execute("SELECT max(id) FROM customer_contact_points").fetchone()
    queries: list[str] = []
    while len(queries) < count:
        ids = [rng.randint(1, last) for _ in range(count * 3)]
        marks = ",".join("?" * len(ids))
        for (value,) in conn.execute(
            f"SELECT value FROM customer_contact_points WHERE kind = ? AND id IN ({marks})", (kind, *ids)
        ):
            if kind == "phone":
                suffix = value[-rng.randint(4, 7) :]
                if not suffix.startswith("0"):  # as typed: "…5678"; a leading 0 reads as a national prefix
                    queries.append(suffix)
            else:
                local = value.split("@")[0]
                queries.append(local[: rng.randint(min(4, len(local)), len(local))])
    return queries[:count]


def latencies_ms(run: Callable[[str], Any], queries: Sequence[str]) -> tuple[list[float], int]:
    """Milliseconds per query, and how many queries found nothing."""
    samples, empty = [], 0
    for query in queries:
        start = time.perf_counter()
        found = run(query)
        samples.append((time.perf_counter() - start) * 1000)
        empty += not found
    return samples, empty


def main(argv: Sequence[str] | None = None) -> int:
    """Time each kind of query through crmkit, then the LIKE scan on a few of the same queries."""
    args = parse_args(__doc__.split("\n\n")[0], argv)
    spec = datagen.Spec.for_size(args.size)
    per_kind = scale(args.size, tiny=100, small=500, full=1_000)
    peer_runs = scale(args.size, tiny=5, small=10, full=10)
    path = datagen.sqlite_database(spec, args.workdir)
    rng = random.Random(spec.seed)
    raw = sqlite3.connect(path)
    queries = {
        "name": name_queries(rng, per_kind),
        "phone suffix": contact_queries(raw, rng, "phone", per_kind),
        "e-mail prefix": contact_queries(raw, rng, "email", per_kind),
    }
    from crmkit import CRM

    print(f"SQLite: {datagen.warm(f'sqlite:///{path}')}", flush=True)
    with CRM(f"sqlite:///{path}", plugins=[]) as crm:
        find = crm.customers.find
        for kind, batch in queries.items():
            latencies_ms(lambda q: find(q, limit=LIMIT).items, batch[:20])  # warm-up
            ours, empty = latencies_ms(lambda q: find(q, limit=LIMIT).items, batch)
            if kind != "name" and empty:
                raise SystemExit(f"{kind}: {empty} searches for existing customers found nothing")
            peer_sql = PEER_SQL[kind]
            pattern = "%{}" if kind == "phone suffix" else "%{}%"
            theirs, _ = latencies_ms(
                lambda q, sql=peer_sql, like=pattern: raw.execute(sql, (like.format(q),)).fetchall(), batch[:peer_runs]
            )
            p50, p99, peer_p50 = percentile(ours, 50), percentile(ours, 99), percentile(theirs, 50)
            report(
                f"search p99 ({kind}, SQLite, {spec.customers:,} customers)",
                p99,
                "ms",
                target=f"< {TARGET_MS:g} ms",
                ok=p99 < TARGET_MS,
                peer=f"peer LIKE '%…%' scan: p50 {peer_p50:.2f} ms over {len(theirs)} queries "
                f"(LIKE/crmkit p50 = {peer_p50 / p50:.1f}x)",
                p50=f"{p50:.3f} ms",
                queries=len(ours),
                example=repr(batch[-1]),
                load=f"{os.getloadavg()[0]:.1f}",
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
