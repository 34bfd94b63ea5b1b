"""Analytics' months are the business's months, as sales' are: an order at 00:30 on 1 November in Hà Nội is
November in `crmkit sales report revenue` and in `crmkit analytics kpis` alike (it was October in analytics)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from click.testing import CliRunner, Result

from crmkit.cli.context import CLIContext
from crmkit.cli.main import cli
from crmkit.testing import FrozenClock

#: 00:30 on 1 November 2026 in Hà Nội (UTC+7) is still 31 October in UTC.
HANOI_NOVEMBER_FIRST = datetime(2026, 10, 31, 17, 30, tzinfo=UTC)


def run(crm: Any, *args: str) -> Result:
    url = crm.engine.url.render_as_string(hide_password=False)
    return CliRunner().invoke(cli, ["--db", url, *args], obj=CLIContext(plugins=["sales", "analytics"]))


@pytest.fixture
def shop(crm_factory: Any) -> Any:
    """Sales and analytics on a CRM whose clock stands at 00:30 on 1 November in Hà Nội."""
    crm = crm_factory(plugins=["sales", "analytics"], clock=FrozenClock(HANOI_NOVEMBER_FIRST))
    crm.sales.products.add(sku="TRA-SEN", name="Trà sen Tây Hồ", price_minor=250_000, currency="VND", tax_rate="0")
    return crm


def test_an_order_at_half_past_midnight_local_is_november_in_both_reports(shop: Any) -> None:
    crm = shop
    lan = crm.customers.add(name="Đỗ Thị Lan", province="Hà Nội").id
    october = crm.sales.orders.place(
        customer_id=lan, lines=[{"sku": "TRA-SEN", "quantity": 1}], placed_at=datetime(2026, 10, 31, 16, 0, tzinfo=UTC)
    )  # 23:00 on 31 October in Hà Nội
    november = crm.sales.orders.place(customer_id=lan, lines=[{"sku": "TRA-SEN", "quantity": 2}])
    assert november.placed_at == HANOI_NOVEMBER_FIRST and october.placed_at.month == 10  # the CRM's clock

    revenue = run(
        crm, "--format", "json", "sales", "report", "revenue", "--since", "2026-10-01", "--until", "2026-11-30"
    )
    assert revenue.exit_code == 0, revenue.output
    by_month = {row["month"]: (row["orders"], row["revenue_minor"]) for row in json.loads(revenue.output)}
    assert by_month == {"2026-10": (1, 250_000), "2026-11": (1, 500_000)}

    kpis = run(crm, "--format", "json", "analytics", "kpis", "--as-of", "2026-11-30", "--months", "2")
    assert kpis.exit_code == 0, kpis.output
    months = {row["month"]: (row["orders"], row["revenue_minor"]) for row in json.loads(kpis.output)}
    assert months == {"2026-10": (1, 250_000), "2026-11": (1, 500_000)}

    as_of = datetime(2026, 11, 30, 12, tzinfo=UTC)
    periods = crm.analytics.breakdown("period", as_of=as_of, months=2)
    assert [(r["period"], r["orders"]) for r in periods] == [("2026-10", 1), ("2026-11", 1)]
    assert crm.analytics.cohorts(as_of=as_of, months=2) == [
        {"cohort": "2026-10", "customers": 1, "retention": [1.0, 1.0]}
    ]


def test_an_as_of_date_ends_at_local_midnight(shop: Any) -> None:
    """`--as-of 2026-10-31` ends at 24:00 on 31 October in Hà Nội: the order at 00:30 on 1 November is after it."""
    crm = shop
    lan = crm.customers.add(name="Đỗ Thị Lan").id
    crm.sales.orders.place(customer_id=lan, lines=[{"sku": "TRA-SEN", "quantity": 1}])
    assert crm.analytics.kpis(as_of="2026-10-31", months=1)["overview"]["orders"] == 0
    assert crm.analytics.kpis(as_of="2026-11-01", months=1)["overview"]["orders"] == 1
    latest = crm.analytics.kpis()["months"][-1]  # as of crm.now(): the frozen 00:30 on 1 November
    assert (latest["month"], latest["orders"]) == ("2026-11", 1)
