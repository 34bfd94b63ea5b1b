"""Reports on hand-made data: funnel, weighted forecast, performance, top products, days to close, revenue."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from .conftest import Shop, ensure_users

pytestmark = pytest.mark.crmkit_plugins("sales")

T0 = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)


def test_funnel_forecast_performance_and_days_to_close(shop: Shop) -> None:
    sales = shop.crm.sales
    ensure_users(shop.crm, "lan", "minh")
    sales.pipelines.add(
        "B2B",
        [{"name": "A", "probability": "0.1"}, {"name": "B", "probability": "0.5"}, {"name": "C", "probability": "0.8"}],
    )

    def deal(
        path: list[str], owner: str, amount: int, close: date | None = None, currency: str = "VND", days: int = 1
    ) -> int:
        made = sales.deals.add(
            customer_id=shop.dist.id,
            pipeline="B2B",
            title="x",
            owner=owner,
            amount_minor=amount,
            currency=currency,
            expected_close=close,
            opened_at=T0,
        )
        for n, stage in enumerate(path, 1):
            sales.deals.move(
                made.id, stage, reason="lý do" if stage == "Lost" else None, at=T0 + timedelta(days=days * n)
            )
        return made.id

    deal([], "lan", 10_000_000, date(2026, 4, 10))
    deal(["B"], "lan", 20_000_000, date(2026, 4, 20))
    deal(["B", "C"], "minh", 33_333_333, date(2026, 5, 5))
    deal([], "minh", 100_005, date(2026, 4, 30), currency="USD")
    deal(["B", "Lost"], "lan", 1)
    deal(["B", "C", "Won"], "lan", 7_000_000, days=5)  # won after 15 days
    deal(["Won"], "lan", 3_000_000, days=21)  # won after 21 days
    deal(["Lost"], "minh", 1)

    funnel = {row.stage: row for row in sales.reports.funnel("B2B")}
    # a deal that skipped stages on its way to winning has reached them
    assert [(r.reached, r.current) for r in funnel.values()] == [(8, 2), (5, 1), (3, 1), (2, 2), (2, 2)]
    assert [funnel[s].conversion_to_next for s in "ABC"] == [Decimal("62.5"), Decimal("60.0"), Decimal("66.7")]
    assert funnel["Won"].conversion_from_start == Decimal("25.0") and funnel["Lost"].conversion_from_start == Decimal(
        "25.0"
    )
    assert [r.reached for r in sales.reports.funnel("B2B", since=date(2026, 1, 6))] == [0, 0, 0, 0, 0]

    forecast = [(r.month, r.currency, r.deals, r.amount_minor, r.weighted_minor) for r in sales.reports.forecast()]
    assert forecast == [
        ("2026-04", "USD", 1, 100_005, 10_000),  # 10.000,5 cents: half-to-even
        ("2026-04", "VND", 2, 30_000_000, 11_000_000),  # 1.000.000 + 10.000.000
        ("2026-05", "VND", 1, 33_333_333, 26_666_666),  # 26.666.666,4
    ]
    assert [r.month for r in sales.reports.forecast(since=date(2026, 5, 1))] == ["2026-05"]

    closing = sales.reports.days_to_close()
    assert [(r.pipeline, r.deals, r.average_days, r.min_days, r.max_days) for r in closing] == [
        ("B2B", 2, Decimal("18.0"), Decimal("15.0"), Decimal("21.0"))
    ]
    assert {r.owner for r in sales.reports.days_to_close(per_owner=True)} == {"lan"}

    sales.orders.place(customer_id=shop.dist.id, owner="lan", lines=[{"sku": "DV-BT-GIO", "quantity": 1}])
    performance = {(r.owner, r.currency): r for r in sales.reports.performance()}
    lan, minh = performance[("lan", "VND")], performance[("minh", "VND")]
    assert (lan.won, lan.lost, lan.win_rate, lan.won_amount_minor, lan.orders, lan.revenue_minor) == (
        2,
        1,
        Decimal("66.7"),
        10_000_000,
        1,
        378_000,
    )
    assert (minh.won, minh.lost, minh.win_rate, minh.orders) == (0, 1, Decimal("0.0"), 0)
    assert ("minh", "USD") not in performance  # an open USD deal is neither won nor revenue


def test_revenue_and_top_products_by_month_in_the_business_time_zone(shop: Shop) -> None:
    sales = shop.crm.sales
    january = datetime(2026, 1, 15, 3, 0, tzinfo=UTC)
    late_january = datetime(2026, 1, 31, 20, 0, tzinfo=UTC)  # 1 February, 03:00 in Hồ Chí Minh City
    first = sales.orders.place(customer_id=shop.an.id, placed_at=january, lines=[{"sku": "CF-ROB-500", "quantity": 10}])
    second = sales.orders.place(
        customer_id=shop.dist.id,
        placed_at=late_january,
        lines=[{"sku": "GAO-ST25-5", "quantity": 2}, {"sku": "CF-ROB-500", "quantity": 1}],
    )
    cancelled = sales.orders.place(
        customer_id=shop.an.id, placed_at=january, lines=[{"sku": "DV-BT-GIO", "quantity": 10}]
    )
    sales.orders.cancel(cancelled.id)
    sales.payments.record(first.id, first.total_minor)
    sales.orders.refund(first.id, 45_000)

    revenue = [(r.month, r.orders, r.revenue_minor) for r in sales.reports.revenue_by_month()]
    assert revenue == [("2026-01", 1, first.total_minor - 45_000), ("2026-02", 1, second.total_minor)]
    assert [r.month for r in sales.reports.revenue_by_month(since=date(2026, 2, 1))] == ["2026-02"]

    top = [(r.rank, r.sku, r.quantity, r.orders, r.revenue_minor) for r in sales.reports.top_products()]
    assert top == [(1, "CF-ROB-500", Decimal(11), 2, 1_045_000), (2, "GAO-ST25-5", Decimal(2), 1, 370_000)]
    monthly = [(r.period, r.rank, r.sku, r.revenue_minor) for r in sales.reports.top_products(per_month=True, limit=1)]
    assert monthly == [("2026-01", 1, "CF-ROB-500", 950_000), ("2026-02", 1, "GAO-ST25-5", 370_000)]
    assert sales.reports.top_products(until=date(2026, 1, 14)) == []
