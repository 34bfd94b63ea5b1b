"""Sales obeys identity: each role sees the deals, orders and reports of its own scope, owners are users,
refunds are for managers, and contact details stay masked in what sales shows."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from crmkit import NotFound, PermissionDenied, ValidationError, migrations
from crmkit.core import tables as core
from crmkit.core.types import utcnow
from crmkit.testing import add_user
from crmkit_sales import models as m

from .conftest import make_shop

pytestmark = pytest.mark.crmkit_plugins("sales")

LINE = [{"sku": "CF-ROB-500", "quantity": 2}]  # 209.000 ₫
SELLERS = ("lan", "minh", "tuan")


@pytest.fixture
def branch(crm: Any) -> dict[str, Any]:
    """Hà Nội (manager Hằng, sales Lan and Minh) and Sài Gòn (sales Tuấn); a customer of each salesperson with
    a deal and a paid order, made by the system."""
    make_shop(crm)
    add_user(crm, "hang", teams=["HN"], roles=["manager"])
    add_user(crm, "lan", teams=["HN"], roles=["sales"])
    add_user(crm, "minh", teams=["HN"], roles=["sales"])
    add_user(crm, "tuan", teams=["SG"], roles=["sales"])
    crm.sales.pipelines.add("B2B", [{"name": "Tiếp cận", "probability": "0.5"}])
    made: dict[str, Any] = {}
    for seller in SELLERS:
        customer = crm.customers.add(name=f"Khách của {seller}", phone=f"+8490{len(made)}123456", owner=seller)
        deal = crm.sales.deals.add(
            customer_id=customer.id, pipeline="B2B", title=f"Deal {seller}", owner=seller, amount_minor=1_000_000
        )
        order = crm.sales.orders.place(
            customer_id=customer.id,
            lines=LINE,
            owner=seller,
            shipping_phone="0912 345 678",
            shipping_address="5 Nguyễn Huệ, Quận 1",
        )
        crm.sales.payments.record(order.id, order.total_minor)
        made[seller] = {"customer": customer, "deal": deal, "order": order}
    return made


def _customers(items: Any) -> set[int]:
    return {item.customer_id for item in items}


def test_a_salesperson_sees_own_customers_a_manager_the_team(crm: Any, branch: dict[str, Any]) -> None:
    ids = {seller: branch[seller]["customer"].id for seller in SELLERS}
    lan, hang = crm.as_user("lan"), crm.as_user("hang")
    assert _customers(lan.sales.deals.list()) == {ids["lan"]}
    assert _customers(lan.sales.orders.list()) == {ids["lan"]}
    assert _customers(lan.sales.payments.list()) == {ids["lan"]}
    assert _customers(hang.sales.deals.list()) == {ids["lan"], ids["minh"]}
    assert _customers(hang.sales.orders.list()) == {ids["lan"], ids["minh"]}
    assert _customers(crm.sales.orders.list()) == set(ids.values())  # the plain crm is the system: everything

    # another's records look absent, whether read, written or filtered for
    minh = branch["minh"]
    for attempt in (
        lambda: lan.sales.orders.get(minh["order"].id),
        lambda: lan.sales.deals.get(minh["deal"].id),
        lambda: lan.sales.deals.move(minh["deal"].id, "Won"),
        lambda: lan.sales.orders.place(customer_id=ids["minh"], lines=LINE),
        lambda: lan.sales.payments.outstanding(ids["minh"]),
        lambda: hang.sales.orders.get(branch["tuan"]["order"].id),
    ):
        with pytest.raises(NotFound):
            attempt()
    assert lan.sales.orders.list(customer_id=ids["minh"]) == []

    # a report counts only the orders in scope, and says so
    mine = lan.sales.reports.revenue_by_month()
    assert [(r.orders, r.revenue_minor) for r in mine] == [(1, 209_000)]
    assert (mine.scoped, mine.user) == (True, "lan")
    team = hang.sales.reports.revenue_by_month()
    assert [(r.orders, r.revenue_minor) for r in team] == [(2, 418_000)] and team.scoped
    everything = crm.sales.reports.revenue_by_month()
    assert [r.orders for r in everything] == [3] and (everything.scoped, everything.user) == (False, None)
    assert [(r.owner, r.orders) for r in hang.sales.reports.performance()] == [("lan", 1), ("minh", 1)]
    assert sum(r.current for r in lan.sales.reports.funnel("B2B")) == 1


def test_owners_are_users_and_default_to_whoever_acts(crm: Any, branch: dict[str, Any]) -> None:
    customer = branch["lan"]["customer"].id
    lan, hang = crm.as_user("lan"), crm.as_user("hang")
    deal = lan.sales.deals.add(customer_id=customer, pipeline="B2B", title="Thêm gạo")
    task = lan.sales.tasks.add(customer_id=customer, title="Gọi lại", due_at=utcnow() + timedelta(days=1))
    order = lan.sales.orders.place(customer_id=customer, lines=LINE)
    assert (deal.owner, task.employee, order.owner) == ("lan", "lan", "lan")
    assert [t.id for t in lan.sales.tasks.list()] == [task.id]
    assert [t.id for t in lan.sales.appointments.agenda(on=task.due_at.astimezone(crm.timezone).date()).tasks] == [
        task.id
    ]

    with pytest.raises(ValidationError) as refused:  # a salesperson cannot give a deal to a colleague …
        lan.sales.deals.update(deal.id, owner="minh")
    assert "owner" in refused.value.errors and "outside your scope" in str(refused.value)
    assert hang.sales.deals.update(deal.id, owner="minh").owner == "minh"  # … her manager can
    with pytest.raises(ValidationError, match="no user 'tuan.pham'") as refused:
        crm.sales.deals.add(customer_id=customer, pipeline="B2B", title="x", owner="tuan.pham")
    assert "owner" in refused.value.errors
    crm.users.disable("minh")
    with pytest.raises(ValidationError, match="disabled") as refused:
        crm.sales.tasks.add(customer_id=customer, employee="minh", title="x", due_at=utcnow())
    assert "employee" in refused.value.errors
    assert crm.sales.deals.add(customer_id=customer, pipeline="B2B", title="Hệ thống").owner is None


def test_refunds_are_for_managers(crm: Any, branch: dict[str, Any]) -> None:
    order = branch["lan"]["order"]
    with pytest.raises(PermissionDenied) as denied:
        crm.as_user("lan").sales.orders.refund(order.id, 9_000, reason="Thiếu hàng")
    assert denied.value.permission == "sales.orders.refund"
    assert crm.sales.orders.get(order.id).refunded_minor == 0
    refund = crm.as_user("hang").sales.orders.refund(order.id, 9_000, reason="Thiếu hàng")
    assert (refund.amount_minor, refund.customer_id) == (9_000, order.customer_id)
    with pytest.raises(NotFound):  # Tuấn's order is in Sài Gòn, outside Hằng's team
        crm.as_user("hang").sales.orders.refund(branch["tuan"]["order"].id, 1_000)


def test_contact_details_are_masked_in_quotes_orders_exports_and_labels(crm: Any, branch: dict[str, Any]) -> None:
    customer = crm.customers.add(
        name="Trần Thị Hoa",
        email="hoa@example.vn",
        phone="+84912345678",
        owner="minh",
        addresses=[
            {
                "line1": "12 Lý Thường Kiệt",
                "ward": "Phường Hàng Bài",
                "district": "Quận Hoàn Kiếm",
                "province": "Hà Nội",
            }
        ],
    )
    quote = crm.sales.quotes.create(customer_id=customer.id, lines=LINE)
    order = crm.sales.orders.place(
        customer_id=customer.id, lines=LINE, shipping_phone="+84912345678", shipping_address="12 Lý Thường Kiệt"
    )
    # Mai reads every quote, order and customer but not their contact details
    add_user(
        crm,
        "mai",
        grants={
            "sales.quotes.read": "all",
            "sales.orders.read": "all",
            "customers.read": "all",
            "customers.export": "all",
            "sales.labels.print": "all",
        },
    )
    mai = crm.as_user("mai")
    html = mai.sales.quotes.render_html(quote.id)
    assert "+84 9** *** 678" in html and "+84912345678" not in html
    assert "h***@example.vn" in html and "hoa@example.vn" not in html
    assert "Lý Thường Kiệt" not in html and "Trần Thị Hoa" in html and "Quận Hoàn Kiếm" in html
    clear = crm.as_user("minh").sales.quotes.render_html(quote.id)  # the owner sees them (sales: own)
    assert "+84912345678" in clear and "hoa@example.vn" in clear and "12 Lý Thường Kiệt" in clear

    shown = mai.sales.orders.get(order.id)
    assert (shown.shipping_phone, shown.shipping_address) == ("+84 9** *** 678", "***")
    assert crm.sales.orders.get(order.id).shipping_phone == "+84912345678"
    exported = mai.customers.export_data(customer.id)["sales"]["sales_orders"]
    assert {row["shipping_phone"] for row in exported} == {"+84 9** *** 678"}
    sheet = mai.sales.labels.render(customer_ids=[customer.id])
    assert (sheet.count, sheet.skipped) == (0, (customer.id,))  # no label from an address she may not see


def test_customer_360_shows_only_the_sales_parts_one_may_read(crm: Any, branch: dict[str, Any]) -> None:
    customer = branch["minh"]["customer"].id
    add_user(crm, "thu", grants={"customers.read": "all", "sales.orders.read": "all", "sales.deals.read": "own"})
    section = crm.as_user("thu").customers.profile(customer).sections["sales"]
    assert set(section) == {"last_orders", "orders", "total_spend", "outstanding"}
    assert section["last_orders"][0]["id"] == branch["minh"]["order"].id
    assert set(crm.customers.profile(customer).sections["sales"]) >= {
        "open_deals",
        "last_orders",
        "active_contracts",
        "next_appointment",
    }


def test_the_migration_turns_owner_names_into_users(crm: Any) -> None:
    shop = make_shop(crm)
    lineage = next(lin for lin in crm.lineages() if lin.name == "sales")
    migrations.downgrade(crm.engine, lineage, "sales_0001")
    now = utcnow()
    with crm.engine.begin() as conn:  # rows as sales wrote them before owners were users (same columns then)
        pipeline = conn.execute(
            m.pipelines.insert().values(name="P", created_at=now, updated_at=now).returning(m.pipelines.c.id)
        ).scalar_one()
        stage = conn.execute(
            m.stages.insert().values(pipeline_id=pipeline, name="S", position=1, probability=1).returning(m.stages.c.id)
        ).scalar_one()
        conn.execute(
            m.deals.insert(),
            [
                {
                    "customer_id": shop.an.id,
                    "pipeline_id": pipeline,
                    "stage_id": stage,
                    "reached_position": 1,
                    "title": "x",
                    "owner": owner,
                    "amount_minor": 0,
                    "currency": "VND",
                    "status": "open",
                    "opened_at": now,
                    "updated_at": now,
                }
                for owner in ("thao.vo", "system", "lan.nguyen")
            ],
        )
        conn.execute(
            m.tasks.insert().values(
                customer_id=shop.an.id,
                employee="quang.pham",
                title="x",
                due_at=now,
                priority="normal",
                created_at=now,
                updated_at=now,
            )
        )
    migrations.upgrade(crm.engine, [lineage])
    with crm.reading() as conn:
        users = dict(conn.execute(sa.select(core.users.c.username, core.users.c.active)).all())
        owners = set(conn.execute(sa.select(m.deals.c.owner).distinct()).scalars())
    assert {"thao.vo": True, "quang.pham": True, "lan.nguyen": True}.items() <= users.items()
    assert "system" not in users and owners == {"thao.vo", "lan.nguyen", None}
    assert [d.owner for d in crm.sales.deals.list(owner="thao.vo")] == ["thao.vo"]
