"""Unmerge at scale: a customer with 1,000 orders, 5,000 loyalty ledger entries and 500 campaign messages
(``--size full``) merged into another, then unmerged, every bundled plugin enabled, on SQLite (and PostgreSQL
with ``--postgres URL``).

The orders are placed through ``crm.sales.orders`` (each earns its ledger entry); the other ledger entries and
the messages are copies of a real one (a grant, a campaign's message) written in bulk. Measured: the merge of
the pair, then ``crm.customers.unmerge`` of it (target < 1 s), printed beside the merge; then the restored
customer must hold exactly its orders, entries and messages again, and loyalty's balances must verify.

    python bench/bench_unmerge.py --size full
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._report import parse_args, report, scale, timed

TARGET_S = 1.0
PRICE = 50_000


def build(crm: Any, orders: int, entries: int, messages: int, outbox: Path) -> tuple[int, int]:
    """Two records of one person; the second with ``orders`` orders, ``entries`` ledger entries in all and
    ``messages`` campaign messages. Returns (kept id, merged id)."""
    from crmkit_campaigns import models as campaigns
    from crmkit_loyalty.models import ledger, members

    crm.sales.products.add(sku="CF-500", name="Cà phê Robusta 500g", price_minor=PRICE, currency="VND", tax_rate="0%")
    crm.loyalty.programs.create("default", "Khách hàng thân thiết", point_value_minor=500)
    kept = crm.customers.add(name="Nguyễn Văn An", email="an@example.vn", phone="0912345678")
    merged = crm.customers.add(name="Nguyen Van An", email="an.nguyen@example.vn", phone="0987654321")
    for customer in (kept, merged):
        crm.customers.set_consent(customer.id, "email", True, source="bench")
    crm.sales.orders.place(customer_id=kept.id, lines=[{"sku": "CF-500", "quantity": 1}])
    for n in range(orders):
        crm.sales.orders.place(customer_id=merged.id, lines=[{"sku": "CF-500", "quantity": 1 + n % 3}])
    crm.loyalty.grant(merged.id, 10, "bench")
    crm.campaigns.set_channel("email", "file", directory=str(outbox), address_kind="email")
    crm.campaigns.configure("quiet_hours", "")
    campaign = crm.campaigns.create("Tết", channel="email", body="Chúc mừng năm mới")
    crm.campaigns.run(campaign.id)
    with crm.transaction() as session:
        conn = session.connection()
        (grant,) = conn.execute(
            sa.select(ledger).where(ledger.c.customer_id == merged.id, ledger.c.source_kind == "manual")
        ).mappings()
        have = conn.execute(sa.select(sa.func.count()).where(ledger.c.customer_id == merged.id)).scalar_one()
        copies = [
            {**grant, "id": None, "source_id": f"bench-{n}", "points": 1, "remaining": 1}
            for n in range(max(0, entries - have))
        ]
        conn.execute(ledger.insert(), [{k: v for k, v in row.items() if k != "id"} for row in copies])
        total = conn.execute(sa.select(sa.func.sum(ledger.c.points)).where(ledger.c.customer_id == merged.id))
        conn.execute(members.update().where(members.c.customer_id == merged.id).values(points=total.scalar_one()))
        msg = campaigns.messages.c
        (message,) = conn.execute(sa.select(campaigns.messages).where(msg.customer_id == merged.id)).mappings()
        conn.execute(
            campaigns.messages.insert(),
            [
                {k: v for k, v in {**message, "period": f"b{n}"}.items() if k != "id"}
                for n in range(max(0, messages - 1))
            ],
        )
    return kept.id, merged.id


def holdings(crm: Any, customer_id: int) -> tuple[int, int, int]:
    """(orders, ledger entries, messages) of the customer."""
    from crmkit_campaigns import models as campaigns
    from crmkit_loyalty.models import ledger
    from crmkit_sales import models as sales

    with crm.reading() as conn:
        return tuple(  # type: ignore[return-value]
            conn.execute(sa.select(sa.func.count()).where(table.c.customer_id == customer_id)).scalar_one()
            for table in (sales.orders, ledger, campaigns.messages)
        )


def measure(label: str, url: str, orders: int, entries: int, messages: int, outbox: Path) -> bool:
    """Build, merge, unmerge on one database; print the figures; True when the target is met and all is back."""
    from crmkit import CRM

    crm = CRM(url, upgrade=True)
    try:
        kept, merged = build(crm, orders, entries, messages, outbox)
        before = holdings(crm, kept), holdings(crm, merged)
        with timed() as merge_time:
            (merge,) = crm.customers.merge_many([(kept, merged)])
        with timed() as unmerge_time:
            done = crm.customers.unmerge(merge.id)
        back = (holdings(crm, kept), holdings(crm, merged)) == before and crm.loyalty.jobs.verify() == []
        moved = sum(done.rows_moved_back.values())
        report(
            f"unmerge {orders:,} orders, {entries:,} ledger entries, {messages:,} messages ({label})",
            unmerge_time[0],
            "s",
            target=f"< {TARGET_S:g} s",
            ok=unmerge_time[0] < TARGET_S and back,
            peer=f"merge of the same pair {merge_time[0]:.3f} s",
            rows_moved_back=moved,
            all_back=back,
        )
        return back
    finally:
        crm.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__ or "", argv)
    orders = scale(args.size, tiny=20, small=200, full=1_000)
    entries = scale(args.size, tiny=100, small=1_000, full=5_000)
    messages = scale(args.size, tiny=10, small=100, full=500)
    workdir = Path(args.workdir or ".bench")
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"unmerge_{args.size}.db"
    path.unlink(missing_ok=True)
    ok = measure("SQLite", f"sqlite:///{path}", orders, entries, messages, workdir / "outbox")
    if args.postgres:
        from crmkit.storage import create_engine

        name = f"crmkit_bench_unmerge_{args.size}"
        admin = create_engine(args.postgres, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        url = sa.make_url(args.postgres).set(database=name).render_as_string(hide_password=False)
        try:
            ok = measure("PostgreSQL", url, orders, entries, messages, workdir / "outbox") and ok
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.dispose()
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
