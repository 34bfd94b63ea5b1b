"""The plugin contract, and the sales side of customer 360, export, erasure and merge."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date, timedelta
from typing import Any

import pytest

from crmkit.testing import PluginContract
from crmkit_sales import models as m

from .conftest import Shop, make_shop

pytestmark = pytest.mark.crmkit_plugins("sales")


def _fill(crm: Any, customer_id: int) -> dict[str, Any]:
    """One row about the customer in every sales table (with personal free text where a table has some)."""
    sales = crm.sales
    if not sales.products.list():
        make_shop(crm)  # with the staff: the appointment and the task below are Lan's
    if not sales.pipelines.list():
        sales.pipelines.add("B2B", [{"name": "Tiếp cận", "probability": "0.1"}])
    deal = sales.deals.add(
        customer_id=customer_id,
        pipeline="B2B",
        title="Cà phê văn phòng",
        amount_minor=20_000_000,
        expected_close=crm.today() + timedelta(days=20),
    )
    sales.deals.move(deal.id, "Won")
    quote = sales.quotes.create(customer_id=customer_id, deal_id=deal.id, lines=[{"sku": "CF-ROB-500", "quantity": 2}])
    sales.quotes.accept(sales.quotes.send(quote.id).id)
    order = sales.quotes.place_order(
        quote.id,
        shipping_name="Chị Hoa",
        shipping_phone="0912 345 678",
        shipping_address="5 Nguyễn Huệ, Quận 1",
        notes="Gọi trước khi giao",
    )
    sales.payments.record(order.id, order.total_minor, reference="CK Nguyen Thi Hoa")
    sales.orders.refund(order.id, 10_000, reason="Chị Hoa báo thiếu hàng")
    contract = sales.contracts.add(
        customer_id=customer_id,
        order_id=order.id,
        number=f"HĐ-{customer_id}",
        title="Hợp đồng với chị Hoa",
        start_date=crm.today() - timedelta(days=10),
        end_date=crm.today() + timedelta(days=355),
        value_minor=order.total_minor,
        currency="VND",
        notes="Chị Hoa thích giao buổi sáng",
    )
    appointment = sales.appointments.add(
        customer_id=customer_id, employee="lan.nguyen", subject="Thử cà phê", starts_at=crm.now() + timedelta(days=2)
    )
    sales.tasks.add(
        customer_id=customer_id, employee="lan.nguyen", title="Gọi lại", due_at=crm.now() + timedelta(days=1)
    )
    open_deal = sales.deals.add(customer_id=customer_id, pipeline="B2B", title="Gạo cho bếp ăn", amount_minor=5_000_000)
    return {"deal": deal, "order": order, "contract": contract, "appointment": appointment, "open_deal": open_deal}


LINE = [{"sku": "CF-ROB-500", "quantity": 1}]


def _system(crm: Any) -> Any:
    """The CRM behind a handle acting as a user (to map what a user's call returned back to customers)."""
    return getattr(crm, "_crm", crm)


def _order_of(crm: Any, customer_id: int) -> int:
    return int(crm.sales.orders.list(customer_id=customer_id)[0].id)


def _soon(crm: Any, days: int) -> date:
    """The business day ``days`` from now (when ``_fill``'s appointment and task fall)."""
    return (_system(crm).now() + timedelta(days=days)).astimezone(crm.sales.appointments.timezone).date()


def _agendas(crm: Any, customer_id: int) -> list[Any]:
    return [crm.sales.appointments.agenda("lan.nguyen", on=_soon(crm, days)) for days in (1, 2)]


def _calendar(crm: Any, customer_id: int) -> list[int]:
    """The customers of the appointments and tasks in Lan's iCalendar export (told apart by their UIDs)."""
    system = _system(crm)
    text = "".join(crm.sales.appointments.ics("lan.nguyen", on=_soon(crm, days), span="day") for days in (1, 2))
    found = {system.sales.appointments.get(int(n)).customer_id for n in re.findall(r"sales-appointment-(\d+)@", text)}
    found |= {system.sales.tasks.get(int(n)).customer_id for n in re.findall(r"sales-task-(\d+)@", text)}
    return sorted(found)


def _quote_documents(crm: Any, customer_id: int) -> list[dict[str, Any]]:
    return [
        {"customer_id": q.customer_id, "html": crm.sales.quotes.render_html(q.id)}
        for q in crm.sales.quotes.list(customer_id=customer_id)
    ]


def _counted(report: Callable[..., Any]) -> Callable[[Any, int], list[int]]:
    """A report narrowed to one customer: that customer when it counts anything of theirs (a report holds no ids)."""

    def call(crm: Any, customer_id: int) -> list[int]:
        return [customer_id] if any(_counts(row) for row in report(crm.sales.reports, customer_id)) else []

    return call


def _counts(row: Any) -> bool:
    """Whether a report row counts something (funnel rows exist for every stage; performance rows per owner)."""
    if hasattr(row, "reached"):
        return bool(row.reached)
    if hasattr(row, "won"):
        return bool(row.won or row.lost or row.orders)
    return True


class TestSalesContract(PluginContract):
    plugin = "sales"

    def populate(self, crm: Any, customer_id: int) -> None:
        _fill(crm, customer_id)

    def permission_calls(self) -> Mapping[str, Callable[[Any, int], Any]]:
        return {
            "sales.products.read": lambda crm, cid: crm.sales.products.list(),
            "sales.products.manage": lambda crm, cid: crm.sales.products.add(
                sku="X-1", name="x", price_minor=1, currency="VND"
            ),
            "sales.deals.read": lambda crm, cid: crm.sales.deals.list(customer_id=cid),
            "sales.deals.update": lambda crm, cid: crm.sales.deals.add(customer_id=cid, pipeline="B2B", title="x"),
            "sales.quotes.read": lambda crm, cid: crm.sales.quotes.list(customer_id=cid),
            "sales.quotes.manage": lambda crm, cid: crm.sales.quotes.create(customer_id=cid, lines=LINE),
            "sales.orders.read": lambda crm, cid: crm.sales.orders.list(customer_id=cid),
            "sales.orders.place": lambda crm, cid: crm.sales.orders.place(customer_id=cid, lines=LINE),
            "sales.orders.refund": lambda crm, cid: crm.sales.orders.refund(_order_of(crm, cid), 1),
            "sales.payments.record": lambda crm, cid: crm.sales.payments.record(_order_of(crm, cid), 1),
            "sales.contracts.read": lambda crm, cid: crm.sales.contracts.list(customer_id=cid),
            "sales.contracts.manage": lambda crm, cid: crm.sales.contracts.add(
                customer_id=cid, number="HĐ-X", title="x", start_date=crm.today(), value_minor=1, currency="VND"
            ),
            "sales.agenda.read": lambda crm, cid: crm.sales.tasks.list(customer_id=cid),
            "sales.appointments.manage": lambda crm, cid: crm.sales.appointments.add(
                customer_id=cid, subject="x", starts_at=crm.now() + timedelta(days=1)
            ),
            "sales.tasks.manage": lambda crm, cid: crm.sales.tasks.add(
                customer_id=cid, title="x", due_at=crm.now() + timedelta(days=1)
            ),
            "sales.reports.read": lambda crm, cid: crm.sales.reports.revenue_by_month(),
            "sales.labels.print": lambda crm, cid: crm.sales.labels.render(customer_ids=[cid]),
        }

    def scoped_calls(self) -> Mapping[str, Callable[[Any, int], Any]]:
        return {
            "deals.list": lambda crm, cid: crm.sales.deals.list(),
            "deals.list(customer)": lambda crm, cid: crm.sales.deals.list(customer_id=cid),
            "quotes.list": lambda crm, cid: crm.sales.quotes.list(latest=False),
            "quotes.render_html": _quote_documents,
            "orders.list": lambda crm, cid: crm.sales.orders.list(),
            "payments.list": lambda crm, cid: crm.sales.payments.list(),
            "payments.outstanding": lambda crm, cid: {"customer_id": cid, "owed": crm.sales.payments.outstanding(cid)},
            "contracts.list": lambda crm, cid: crm.sales.contracts.list(),
            "contracts.up_for_renewal": lambda crm, cid: crm.sales.contracts.up_for_renewal(400),
            "appointments.list": lambda crm, cid: crm.sales.appointments.list(),
            "appointments.agenda": _agendas,
            "appointments.ics": _calendar,
            "tasks.list": lambda crm, cid: crm.sales.tasks.list(open_only=False),
            "tasks.overdue": lambda crm, cid: crm.sales.tasks.overdue(now=crm.now() + timedelta(days=30)),
            "reports.funnel": _counted(lambda reports, cid: reports.funnel("B2B", customer_id=cid)),
            "reports.forecast": _counted(lambda reports, cid: reports.forecast(customer_id=cid)),
            "reports.performance": _counted(lambda reports, cid: reports.performance(customer_id=cid)),
            "reports.top_products": _counted(lambda reports, cid: reports.top_products(customer_id=cid)),
            "reports.days_to_close": _counted(lambda reports, cid: reports.days_to_close(customer_id=cid)),
            "reports.revenue_by_month": _counted(lambda reports, cid: reports.revenue_by_month(customer_id=cid)),
            "labels.render(ids)": lambda crm, cid: crm.sales.labels.render(customer_ids=[cid]),
            "labels.render(everyone)": lambda crm, cid: crm.sales.labels.render(everyone=True).labelled,
            "customer 360": lambda crm, cid: [cid]
            if crm.customers.profile(cid).sections["sales"].get("last_orders")
            else [],
            "export_data": lambda crm, cid: crm.customers.export_data(cid)["sales"],
        }


def test_profile_export_erase_and_merge(shop: Shop) -> None:
    crm = shop.crm
    made = _fill(crm, shop.an.id)
    sections = crm.customers.profile(shop.an.id).sections["sales"]
    assert [d["title"] for d in sections["open_deals"]] == ["Gạo cho bếp ăn"]
    assert sections["last_orders"][0]["number"] == made["order"].number
    assert sections["outstanding"] == {} and sections["total_spend"] == {"VND": "199.000 ₫"}
    assert [c["number"] for c in sections["active_contracts"]] == [made["contract"].number]
    assert sections["next_appointment"]["id"] == made["appointment"].id

    exported = crm.customers.export_data(shop.an.id)["sales"]
    for table in m.metadata.sorted_tables:
        if table.name in (
            "sales_products",
            "sales_price_lists",
            "sales_price_list_items",
            "sales_pipelines",
            "sales_stages",
        ):
            assert table.name not in exported
        else:
            assert exported[table.name], f"export misses {table.name}"
    assert exported["sales_payments"][0]["reference"] == "CK Nguyen Thi Hoa"

    other = crm.customers.add(name="Nguyễn Văn An", email="an.nguyen@example.com")
    _fill(crm, other.id)
    crm.customers.merge(shop.an.id, other.id)
    assert len(crm.sales.orders.list(customer_id=shop.an.id)) == 2
    assert crm.sales.orders.list(customer_id=other.id) == []
    assert len(crm.sales.deals.list(customer_id=shop.an.id)) == 4
    assert len(crm.sales.contracts.list(customer_id=shop.an.id)) == 2

    crm.customers.erase(shop.an.id)
    after = crm.customers.export_data(shop.an.id)["sales"]
    for gone in (
        "sales_deals",
        "sales_deal_history",
        "sales_quotes",
        "sales_quote_lines",
        "sales_appointments",
        "sales_tasks",
    ):
        assert after[gone] == [], gone
    assert len(after["sales_orders"]) == 2 and len(after["sales_order_lines"]) == 2
    kept = after["sales_orders"][0]
    assert (kept["total_minor"], kept["paid_minor"], kept["refunded_minor"]) == (209_000, 209_000, 10_000)
    assert all(
        kept[f] is None for f in ("shipping_name", "shipping_phone", "shipping_address", "notes", "quote_id", "deal_id")
    )
    assert all(p["reference"] is None for p in after["sales_payments"])
    assert all(r["reason"] is None for r in after["sales_refunds"])
    assert all(c["notes"] is None and "Hoa" not in c["title"] for c in after["sales_contracts"])
    assert "Hoa" not in repr(after)
    assert set(crm.registry.infos["sales"].plugin.retained_tables) >= {"sales_orders", "sales_contracts"}
