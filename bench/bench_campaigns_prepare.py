"""Preparing a 1,000,000-recipient campaign run (SQLite): target under 60 s.

``crm.campaigns.run`` evaluates the audience (a saved segment), consent, the suppression list,
the frequency cap against messages already sent, the holdout and an A/B split, and writes one
outbox row per customer with a single ``INSERT … SELECT`` in one transaction. Before it, untimed:
every customer gets an e-mail address and e-mail consent (so the audience really is 1,000,000),
1,000 addresses go on the suppression list, and half the customers already received an earlier
campaign this week (so the frequency cap has messages to count). Prints seconds and rows/s.
With ``--postgres URL`` the same run is timed on a PostgreSQL copy as well (reported, no target).

    python bench/bench_campaigns_prepare.py --size full
"""

from __future__ import annotations

import os
import sqlite3
import sys
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._report import parse_args, peak_rss_mib, report, scale, timed
from bench.bench_campaigns_segment import campaigns_copy, postgres_copy
from crmkit.core.types import utcnow

TARGET_S = 60.0
SUPPRESSED = 1_000
REACHABLE_SQL = (
    "INSERT INTO customer_contact_points (customer_id, kind, value, position) "
    "SELECT c.id, 'email', 'c' || c.id || '@bench.example.vn', 9 FROM customers c WHERE NOT EXISTS "
    "(SELECT 1 FROM customer_contact_points p WHERE p.customer_id = c.id AND p.kind = 'email')",
    "DELETE FROM customer_consents WHERE channel = 'email'",
    "INSERT INTO customer_consents (customer_id, channel, granted, at, source) "
    "SELECT id, 'email', TRUE, created_at, 'bench' FROM customers",
)


def make_reachable(crm: Any, customers: int) -> None:
    """Give every customer an e-mail address and e-mail consent, and suppress 1 % of them (at most 1,000; untimed)."""
    import sqlalchemy as sa

    with crm.transaction() as session:
        conn = session.connection()
        for statement in REACHABLE_SQL:
            conn.execute(sa.text(statement))
    with crm.reading() as conn:
        addresses = (
            conn.execute(
                sa.text("SELECT value FROM customer_contact_points WHERE kind = 'email' ORDER BY customer_id LIMIT :n"),
                {"n": min(SUPPRESSED, customers // 100)},
            )
            .scalars()
            .all()
        )
    for address in addresses:
        crm.campaigns.suppress(address=address, reason="bench: hộp thư không tồn tại")


def earlier_campaign(crm: Any, customers: int) -> None:
    """Half the customers already got a campaign two days ago (their rows count against the frequency cap)."""
    from crmkit_campaigns import models as m

    crm.campaigns.segments.create("Nửa đầu", f"id <= {customers // 2}")
    earlier = crm.campaigns.create("Tuần trước", channel="email", segment="Nửa đầu", body="Chào {{ first_name }}")
    crm.campaigns.run(earlier.id, now=utcnow() - timedelta(days=2))
    with crm.transaction() as session:
        session.connection().execute(
            m.messages.update()
            .where(m.messages.c.campaign_id == earlier.id, m.messages.c.status == "queued")
            .values(status="sent", sent_at=utcnow() - timedelta(days=2))
        )


def timed_run(crm: Any) -> tuple[float, float, Any]:
    """Create the 1M campaign (A/B, 10 % holdout) and time its run: wall and CPU seconds (SQLite works in this thread)."""
    crm.campaigns.segments.create("Tất cả khách cá nhân và tổ chức", 'kind in ("person", "organization")')
    campaign = crm.campaigns.create(
        "Tết toàn quốc",
        channel="email",
        segment="Tất cả khách cá nhân và tổ chức",
        subject="Chúc mừng năm mới {{ first_name }}",
        holdout_percent=10,
        body="Chào {{ first_name }}, quà Tết: https://shop.example.vn/tet",
    )
    crm.campaigns.set_variant(
        campaign.id, "B", body="{{ first_name }} ơi, lì xì đầu năm: https://shop.example.vn/li-xi"
    )
    start_cpu = time.thread_time()
    with timed() as took:
        result = crm.campaigns.run(campaign.id)
    return took[0], time.thread_time() - start_cpu, result


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(__doc__.split("\n\n")[0], argv)
    customers = scale(args.size, tiny=2_000, small=100_000, full=1_000_000)
    path = campaigns_copy(customers, args.workdir, "campaigns_prepare")

    from crmkit import CRM

    failed = False
    with CRM(f"sqlite:///{path}", plugins=["campaigns"]) as crm:
        crm.campaigns.set_channel("email", "file", directory=str(path.parent / "campaigns_prepare_outbox"))
        crm.campaigns.configure("frequency_cap", "2/7d")
        make_reachable(crm, customers)
        earlier_campaign(crm, customers)
        raw = sqlite3.connect(path)
        raw.execute("ANALYZE")
        raw.close()
        seconds, cpu, result = timed_run(crm)
    written = result.audience
    failed = (
        written != customers
        or result.queued + result.holdout + sum(result.excluded.values()) != customers
        or seconds >= TARGET_S
    )
    report(
        f"prepare a run (SQLite, {customers:,} recipients)",
        seconds,
        "s",
        target=f"< {TARGET_S:g} s",
        ok=not failed,
        rows_per_s=f"{written / seconds:,.0f}",
        queued=f"{result.queued:,}",
        holdout=f"{result.holdout:,}",
        excluded=dict(result.excluded),
        cpu=f"{cpu:.1f} s",
        peak_rss=f"{peak_rss_mib():.0f} MiB",
        load=f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores",
    )
    if args.postgres and args.size != "tiny":
        url = postgres_copy(customers, args.postgres, "crmkit_bench_campaigns_prepare")
        if url:
            with CRM(url, plugins=["campaigns"]) as crm:
                crm.campaigns.set_channel("email", "file", directory=str(path.parent / "campaigns_prepare_outbox"))
                crm.campaigns.configure("frequency_cap", "2/7d")
                make_reachable(crm, customers)
                earlier_campaign(crm, customers)
                seconds, _, pg = timed_run(crm)
            report(
                f"prepare a run (PostgreSQL, {customers:,} recipients)",
                seconds,
                "s",
                target="reported only",
                ok=pg.audience == customers,
                rows_per_s=f"{pg.audience / seconds:,.0f}",
                queued=f"{pg.queued:,}",
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
