"""What scopes and permission checks cost: a team-scoped user against the unscoped system, SQLite.

With 1,000,000 customers owned by 1,000 users in 100 teams (``datagen``'s organisation), a team
lead whose role has team scope — about 11 colleagues, under 1% of the customers — searches
(accent-free names, phone suffixes, e-mail prefixes) and opens customer 360s. Each is timed
against the same calls made as the system in the same run, taking turns; the targets are
p99 ≤ 1.2x the unscoped p99. ``customers.add`` as that user against the system adding the
same customers (owner given, so both validate it) shows the permission check's overhead
(target ≤ 1.1x).

    python bench/bench_permissions.py --size full
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
from bench.bench_search import contact_queries, name_queries

SEARCH_TARGET = CUSTOMER360_TARGET = 1.2
ADD_TARGET = 1.1
LEAD = "lan.nguyen"  # a team lead: the role "team lead" below, on their own team and its members' customers


def turns(calls: Sequence[Callable[[Any], Any]], items: Sequence[Any], warmup: int) -> list[list[float]]:
    """Milliseconds of each call on every item, the calls taking turns per item (the first ``warmup`` untimed)."""
    samples: list[list[float]] = [[] for _ in calls]
    for n, item in enumerate(items):
        for turn, call in enumerate(calls):
            start = time.perf_counter()
            call(item)
            if n >= warmup:
                samples[turn].append((time.perf_counter() - start) * 1000)
    return samples


def ensure_lead(crm: Any) -> None:
    """The lead holds a role granting customer reads with team scope (made once; the database is a cached one)."""
    if "team lead" not in {role.name for role in crm.roles.list()}:
        crm.roles.add(
            "team lead",
            "reads and serves the team's customers",
            grants={
                "customers.read": "team",
                "customers.create": "team",
                "customers.update": "team",
                "customers.contact_details": "team",
                "interactions.read": "team",
                "interactions.log": "team",
            },
        )
    if "team lead" not in crm.users.get(LEAD).roles:
        crm.roles.assign(LEAD, "team lead")


def reads(path: Path, spec: datagen.Spec, size: str) -> None:
    from crmkit import CRM

    rng = random.Random(spec.seed)
    raw = sqlite3.connect(path)
    per_kind = scale(size, tiny=60, small=300, full=1_000)
    queries = {
        "name": name_queries(rng, per_kind),
        "phone suffix": contact_queries(raw, rng, "phone", per_kind),
        "e-mail prefix": contact_queries(raw, rng, "email", per_kind),
    }
    print(f"SQLite: {datagen.warm(f'sqlite:///{path}')}", flush=True)
    with CRM(f"sqlite:///{path}", plugins=[]) as crm:
        ensure_lead(crm)
        lead = crm.as_user(LEAD)
        reach = lead.principal.team_owners
        marks = ",".join("?" * len(reach))
        owned = [cid for (cid,) in raw.execute(f"SELECT id FROM customers WHERE owner IN ({marks})", sorted(reach))]
        share = len(owned) / spec.customers
        system_find, lead_find = crm.customers.find, lead.customers.find
        for kind, batch in queries.items():
            ours, theirs = turns(
                [lambda q: system_find(q, limit=20), lambda q: lead_find(q, limit=20)],
                batch,
                warmup=min(20, len(batch) // 5),
            )
            unscoped, scoped = percentile(ours, 99), percentile(theirs, 99)
            report(
                f"team-scoped search p99 ({kind}, SQLite, {spec.customers:,} customers)",
                scoped,
                "ms",
                target=f"<= {SEARCH_TARGET}x unscoped",
                ok=scoped <= SEARCH_TARGET * unscoped,
                peer=f"unscoped p99 {unscoped:.3f} ms in the same run ({scoped / unscoped:.2f}x)",
                p50=f"{percentile(theirs, 50):.3f} ms vs {percentile(ours, 50):.3f} ms",
                scope=f"{len(reach)} owners, {share:.2%} of customers",
                queries=len(theirs),
                load=f"{os.getloadavg()[0]:.1f}",
            )
        ids = random.Random(spec.seed + 1).sample(
            owned, min(len(owned), scale(size, tiny=100, small=1_000, full=4_000))
        )
        ours, theirs = turns([crm.customers.profile, lead.customers.profile], ids, warmup=min(100, len(ids) // 5))
        unscoped, scoped = percentile(ours, 99), percentile(theirs, 99)
        report(
            f"team-scoped customer 360 p99 (SQLite, {spec.customers:,} customers)",
            scoped,
            "ms",
            target=f"<= {CUSTOMER360_TARGET}x unscoped",
            ok=scoped <= CUSTOMER360_TARGET * unscoped,
            peer=f"unscoped p99 {unscoped:.3f} ms on the same customers ({scoped / unscoped:.2f}x)",
            p50=f"{percentile(theirs, 50):.3f} ms vs {percentile(ours, 50):.3f} ms",
            lookups=len(theirs),
            load=f"{os.getloadavg()[0]:.1f}",
        )


def adds(workdir: Path, size: str) -> None:
    """``customers.add`` as the lead against the system, on a database of its own (the cached one stays as built)."""
    from crmkit import CRM

    path = workdir / "permissions_add.db"
    for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        leftover.unlink(missing_ok=True)
    count = scale(size, tiny=150, small=1_500, full=6_000)
    with CRM(f"sqlite:///{path}", plugins=[]) as crm:
        datagen.add_staff(crm)
        ensure_lead(crm)
        lead = crm.as_user(LEAD)
        people = [{"name": f"Khách {n}", "phone": f"09{n:08d}", "email": f"khach{n}@example.vn"} for n in range(count)]
        ours, theirs = turns(
            [lambda p: crm.customers.add(p, owner=LEAD), lambda p: lead.customers.add(p)], people, warmup=count // 10
        )
        system, user = percentile(ours, 50), percentile(theirs, 50)
        report(
            "customers.add as a team-scoped user, p50 (SQLite)",
            user,
            "ms",
            target=f"<= {ADD_TARGET}x the system",
            ok=user <= ADD_TARGET * system,
            peer=f"system p50 {system:.3f} ms ({user / system:.2f}x)",
            p99=f"{percentile(theirs, 99):.3f} ms vs {percentile(ours, 99):.3f} ms",
            adds=len(theirs),
            load=f"{os.getloadavg()[0]:.1f}",
        )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(__doc__.split("\n\n")[0], argv)
    spec = datagen.Spec.for_size(args.size)
    path = datagen.sqlite_database(spec, args.workdir)
    reads(path, spec, args.size)
    adds(path.parent, args.size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
