"""Per-customer aggregates kept inside order transactions, and RFM scores and segments against hand-worked cases."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from crmkit import ValidationError
from crmkit.core.tables import customers
from crmkit_analytics.models import customer_value, rfm
from crmkit_analytics.testing import AS_OF


def aggregates(crm: Any) -> list[tuple[Any, ...]]:
    cv = customer_value.c
    with crm.reading() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                sa.select(
                    cv.customer_id,
                    cv.currency,
                    cv.first_purchase_at,
                    cv.last_purchase_at,
                    cv.purchase_count,
                    cv.total_minor,
                ).order_by(cv.customer_id, cv.currency)
            )
        ]


def test_orders_keep_aggregates_current_and_refunds_net_out(analytics_crm: Any, shop: Any, people: Any) -> None:
    an, binh = people(2)
    first = shop.buy(an, days_ago=30, amount=200_000)
    shop.buy(an, days_ago=10, amount=50_000)
    shop.buy(binh, days_ago=5, amount=1_000, currency="USD")
    assert aggregates(analytics_crm) == [
        (an, "VND", AS_OF - timedelta(days=30), AS_OF - timedelta(days=10), 2, 250_000),
        (binh, "USD", AS_OF - timedelta(days=5), AS_OF - timedelta(days=5), 1, 1_000),
    ]
    shop.refund(first, 50_000)  # partial: still a purchase, worth less
    assert aggregates(analytics_crm)[0][4:] == (2, 200_000)
    shop.refund(first, 150_000)  # fully refunded: no longer a purchase
    assert aggregates(analytics_crm)[0][2:] == (AS_OF - timedelta(days=10), AS_OF - timedelta(days=10), 1, 50_000)


def test_redelivered_order_hook_does_not_double_count(analytics_crm: Any, shop: Any, people: Any) -> None:
    from crmkit.testing import SalesOrder

    (an,) = people(1)
    shop.buy(an, days_ago=3, amount=70_000)
    with analytics_crm.transaction() as session:
        order = SalesOrder(1, an, 70_000, AS_OF - timedelta(days=3))
        analytics_crm.hooks.call("crmkit_order_placed", crm=analytics_crm, order=order, session=session)
    assert aggregates(analytics_crm)[0][4:] == (1, 70_000)


def test_rebuild_equals_incremental_and_sees_imports(analytics_crm: Any, shop: Any, people: Any) -> None:
    ids = people(4)
    for n, cid in enumerate(ids):
        for k in range(n + 1):
            shop.buy(cid, days_ago=7 * k + n, amount=10_000 * (k + 1))
    incremental = aggregates(analytics_crm)
    assert analytics_crm.analytics.rebuild() == 4
    assert aggregates(analytics_crm) == incremental
    shop.insert_quietly([{"customer_id": ids[0], "occurred_at": AS_OF, "amount_minor": 5, "currency": "VND"}])
    assert aggregates(analytics_crm) == incremental  # an import bypasses the order hooks …
    analytics_crm.analytics.rebuild()
    assert aggregates(analytics_crm)[0][3:] == (AS_OF, 2, 10_005)  # … until the rebuild


def test_merge_combines_and_erase_removes_aggregates(analytics_crm: Any, shop: Any, people: Any) -> None:
    kept, merged = people(2)
    shop.buy(kept, days_ago=20, amount=100)
    shop.buy(merged, days_ago=40, amount=300)
    shop.buy(merged, days_ago=2, amount=1, currency="USD")
    analytics_crm.analytics.rfm(as_of=AS_OF, currency="VND")
    analytics_crm.customers.merge(kept, merged)
    assert aggregates(analytics_crm) == [
        (kept, "USD", AS_OF - timedelta(days=2), AS_OF - timedelta(days=2), 1, 1),
        (kept, "VND", AS_OF - timedelta(days=40), AS_OF - timedelta(days=20), 2, 400),
    ]
    exported = analytics_crm.customers.export_data(kept)["analytics"]
    assert len(exported["analytics_customer_value"]) == 2 and len(exported["analytics_rfm"]) == 1
    analytics_crm.customers.erase(kept)
    assert aggregates(analytics_crm) == []
    with analytics_crm.reading() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(rfm)).scalar_one() == 0


def test_a_batch_merge_combines_the_aggregates_of_every_record_of_one_customer(
    analytics_crm: Any, shop: Any, people: Any
) -> None:
    kept, first, second, other, other_dup = people(5)
    shop.buy(first, days_ago=40, amount=300)
    shop.buy(second, days_ago=5, amount=7)
    shop.buy(second, days_ago=2, amount=1, currency="USD")
    shop.buy(other, days_ago=10, amount=50)
    analytics_crm.customers.merge_many([(kept, first), (other, other_dup), (kept, second)])
    assert aggregates(analytics_crm) == [  # the kept customer bought nothing itself: it takes both records' history
        (kept, "USD", AS_OF - timedelta(days=2), AS_OF - timedelta(days=2), 1, 1),
        (kept, "VND", AS_OF - timedelta(days=40), AS_OF - timedelta(days=5), 2, 307),
        (other, "VND", AS_OF - timedelta(days=10), AS_OF - timedelta(days=10), 1, 50),
    ]


def ladder(shop: Any, people: Any) -> list[int]:
    """Customer i (1…10): i purchases of 100,000 ₫, the last one 10·i days before AS_OF."""
    ids = people(10)
    for i, cid in enumerate(ids, start=1):
        for k in range(i):
            shop.buy(cid, days_ago=10 * i + 3 * k, amount=100_000)
    return ids


def test_rfm_scores_and_segments_by_hand(analytics_crm: Any, shop: Any, people: Any) -> None:
    ids = ladder(shop, people)
    run = analytics_crm.analytics.rfm(as_of=AS_OF)
    # n = 10: cut points are the 2nd, 4th, 6th and 8th smallest values of each measure
    assert run.parameters["cut_points"] == {
        "recency_days": [90, 70, 50, 30],
        "frequency": [2, 4, 6, 8],
        "monetary_minor": [200_000, 400_000, 600_000, 800_000],
    }
    rows = {r["customer_id"]: r for r in analytics_crm.analytics.customers("rfm")}
    expected_r = [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]
    expected_f = [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    segments = [
        "new",
        "new",
        "potential_loyalists",
        "potential_loyalists",
        "need_attention",
        "need_attention",
        "at_risk",
        "at_risk",
        "cant_lose",
        "cant_lose",
    ]
    for i, cid in enumerate(ids):
        row = rows[cid]
        assert (row["recency_days"], row["frequency"], row["monetary_minor"]) == (
            10 * (i + 1),
            i + 1,
            100_000 * (i + 1),
        )
        assert (row["r"], row["f"], row["m"]) == (expected_r[i], expected_f[i], expected_f[i])
        assert row["score"] == f"{expected_r[i]}{expected_f[i]}{expected_f[i]}"
        assert row["segment"] == segments[i]
    assert run.summary["grid"][4][0] == 2 and run.summary["segments"]["cant_lose"]["customers"] == 2
    assert run.summary["segments"]["cant_lose"]["monetary_minor"] == 1_900_000


def test_ties_get_equal_scores(analytics_crm: Any, shop: Any, people: Any) -> None:
    ids = people(6)
    for n, cid in enumerate(ids):
        shop.buy(cid, days_ago=5, amount=100_000 if n < 5 else 900_000)  # same day, one purchase each
    analytics_crm.analytics.rfm(as_of=AS_OF)
    rows = analytics_crm.analytics.customers("rfm")
    assert {(r["r"], r["f"]) for r in rows} == {(1, 1)}
    assert [r["m"] for r in rows] == [1, 1, 1, 1, 1, 5]


def test_window_and_past_date_rescan_transactions(analytics_crm: Any, shop: Any, people: Any) -> None:
    (an,) = people(1)
    for days in (400, 200, 100, 20):
        shop.buy(an, days_ago=days, amount=10_000)
    windowed = analytics_crm.analytics.rfm(as_of=AS_OF, window_days=150)
    assert analytics_crm.analytics.customers("rfm")[0]["frequency"] == 2
    assert windowed.parameters["window_days"] == 150
    analytics_crm.analytics.rfm(as_of=AS_OF - timedelta(days=150))
    row = analytics_crm.analytics.customers("rfm")[0]
    assert (row["recency_days"], row["frequency"], row["monetary_minor"]) == (50, 2, 20_000)


def test_no_transactions_give_an_empty_documented_result(analytics_crm: Any, people: Any) -> None:
    people(3)
    run = analytics_crm.analytics.rfm(as_of=AS_OF)
    assert run.summary["customers"] == 0 and run.summary["grid"] == [[0] * 5] * 5
    assert analytics_crm.analytics.customers("rfm") == []


def test_several_currencies_are_never_added(analytics_crm: Any, shop: Any, people: Any) -> None:
    an, binh = people(2)
    shop.buy(an, days_ago=3, amount=500_000)
    shop.buy(binh, days_ago=3, amount=2_000, currency="USD")
    with pytest.raises(ValidationError, match=r"currency: purchases are in several currencies \(USD, VND\)"):
        analytics_crm.analytics.rfm(as_of=AS_OF)
    analytics_crm.analytics.rfm(as_of=AS_OF, currency="vnd")
    usd = analytics_crm.analytics.rfm(as_of=AS_OF, currency="USD")
    assert usd.currency == "USD" and usd.summary["customers"] == 1
    with analytics_crm.reading() as conn:  # each currency keeps its own latest snapshot
        assert conn.execute(sa.select(sa.func.count()).select_from(rfm)).scalar_one() == 2
    analytics_crm.analytics.configure(currency="VND")
    assert analytics_crm.analytics.rfm(as_of=AS_OF).currency == "VND"
    with pytest.raises(ValidationError, match="currency: not a currency code"):
        analytics_crm.analytics.rfm(currency="đồng")


def test_rerun_replaces_the_snapshot(analytics_crm: Any, shop: Any, people: Any) -> None:
    ladder(shop, people)
    first = analytics_crm.analytics.rfm(as_of=AS_OF)
    second = analytics_crm.analytics.rfm(as_of=AS_OF + timedelta(days=1))
    with analytics_crm.reading() as conn:
        assert set(conn.execute(sa.select(rfm.c.run_id).distinct()).scalars()) == {second.id}
    assert [r.id for r in analytics_crm.analytics.history("rfm")] == [second.id, first.id]


def test_segment_fields_filter_in_sql(analytics_crm: Any, shop: Any, people: Any) -> None:
    ids = ladder(shop, people)
    analytics_crm.analytics.rfm(as_of=AS_OF)
    fields = analytics_crm.hooks.segment_fields()
    with analytics_crm.reading() as conn:
        at_risk = list(
            conn.execute(
                sa.select(customers.c.id).where(fields["rfm_segment"] == "cant_lose").order_by(customers.c.id)
            ).scalars()
        )
        scores = dict(conn.execute(sa.select(customers.c.id, fields["rfm_score"])).all())
    assert at_risk == ids[8:]
    assert scores[ids[0]] == "511"


def monetary_shop(shop: Any, people: Any) -> dict[str, int]:
    """A: one purchase of 900,000 ₫; B: ten of 100,001 ₫; C: 150,001 ₫ and 150,000 ₫."""
    a, b, c = people(3)
    shop.buy(a, days_ago=5, amount=900_000)
    for k in range(10):
        shop.buy(b, days_ago=5 + k, amount=100_001)
    shop.buy(c, days_ago=5, amount=150_001)
    shop.buy(c, days_ago=6, amount=150_000)
    return {"A": a, "B": b, "C": c}


@pytest.mark.parametrize("window_days", [None, 3650])  # the aggregates, and a rescan of the transactions
def test_rfm_monetary_average_per_purchase_as_kumar_reinartz(
    analytics_crm: Any, shop: Any, people: Any, window_days: int | None
) -> None:
    ids = monetary_shop(shop, people)
    total = analytics_crm.analytics.rfm(as_of=AS_OF, window_days=window_days)
    assert total.parameters["monetary"] == "total"
    rows = {r["customer_id"]: r for r in analytics_crm.analytics.customers("rfm")}
    assert [(rows[ids[k]]["monetary_minor"], rows[ids[k]]["m"]) for k in "ABC"] == [
        (900_000, 2),
        (1_000_010, 4),
        (300_001, 1),
    ]

    average = analytics_crm.analytics.rfm(as_of=AS_OF, window_days=window_days, monetary="average")
    assert average.parameters["monetary"] == "average"
    assert average.parameters["cut_points"]["monetary_minor"] == [100_001, 150_001, 150_001, 900_000]
    rows = {r["customer_id"]: r for r in analytics_crm.analytics.customers("rfm")}
    # C: 300,001 / 2 = 150,000.5 → 150,001 (half up, whole đồng: money never float)
    assert [(rows[ids[k]]["monetary_minor"], rows[ids[k]]["m"]) for k in "ABC"] == [
        (900_000, 4),
        (100_001, 1),
        (150_001, 2),
    ]
    assert analytics_crm.analytics.latest("rfm").parameters["monetary"] == "average"


def test_rfm_monetary_setting_and_bad_values(analytics_crm: Any, shop: Any, people: Any) -> None:
    monetary_shop(shop, people)
    analytics_crm.analytics.configure(rfm_monetary="average")
    assert analytics_crm.analytics.rfm(as_of=AS_OF).parameters["monetary"] == "average"
    assert analytics_crm.analytics.rfm(as_of=AS_OF, monetary="total").parameters["monetary"] == "total"
    with pytest.raises(ValidationError) as bad:
        analytics_crm.analytics.rfm(as_of=AS_OF, monetary="mean")
    assert "monetary" in bad.value.errors and "total, average" in str(bad.value)
    with pytest.raises(ValidationError) as bad:
        analytics_crm.analytics.configure(rfm_monetary="median")
    assert "monetary" in bad.value.errors


def test_a_control_character_in_any_analytics_setting_is_refused_naming_it_and_nothing_is_stored(
    analytics_crm: Any,
) -> None:
    before = analytics_crm.analytics.settings()
    for name, value in (
        ("currency", "VN\x00"),
        ("rfm_monetary", "total\x00"),
        ("clv_model", "bgnbd\x1b"),
        ("clv_occasions", "day\x00"),
        ("discount_rate", "0.1\x00"),
        ("sow_low_share", "0.5\x7f"),
        ("category_spend_estimates", {"new\x00": 1}),
        ("loyal_purchases", "3\x00"),
    ):
        with pytest.raises(ValidationError) as refused:
            analytics_crm.analytics.configure(**{"currency": "USD", name: value})  # all or nothing
        field = {"rfm_monetary": "monetary", "sow_low_share": "low_share"}.get(name, name)  # as the measure's option
        assert list(refused.value.errors) == [field] and "\x00" not in str(refused.value), name
    assert analytics_crm.analytics.settings() == before
