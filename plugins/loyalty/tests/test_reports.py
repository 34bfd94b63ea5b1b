"""Reports: liability, earn vs burn by month, members per tier, redemption rate, repeat purchases."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import loyalty_testkit as kit
from loyalty_testkit import days_ago

from crmkit.testing import FrozenClock


def test_points_liability_counts_only_positive_balances_and_values_them(loyal):
    loyal.loyalty.programs.add_reward("gift", "Quà", 150)
    an, binh, cuong = (loyal.customers.add(name=n) for n in ("Nguyễn Văn An", "Trần Thị Bình", "Lê Văn Cường"))
    loyal.sales.place(an.id, 3_000_000, placed_at=days_ago(350))  # 300 points, expiring in about 15 days
    loyal.loyalty.grant(binh.id, 20, "quà")
    order = loyal.sales.place(cuong.id, 2_000_000)
    loyal.loyalty.redeem(cuong.id, "gift")
    loyal.sales.cancel(order)  # Cường owes 150: not a liability
    (liability,) = loyal.loyalty.reports.liability()
    assert (liability.program, liability.members, liability.outstanding) == ("default", 3, 320)
    assert str(liability.value) == "160.000 ₫"
    assert liability.expiring_30_days == 300


def test_earn_and_burn_by_local_month(crm_factory):
    clock = FrozenClock("2026-08-31T17:30:00+00:00")  # the redemption falls at 00:30 on 1 September in Hà Nội
    loyal = kit.make(crm_factory, clock=clock)
    loyal.loyalty.programs.create("default", "Khách hàng thân thiết", point_value_minor=500)
    loyal.loyalty.programs.add_reward("gift", "Quà", 30)
    an = loyal.customers.add(name="Nguyễn Văn An")
    loyal.sales.place(an.id, 1_000_000, placed_at=datetime(2026, 5, 31, 16, 30, tzinfo=UTC))  # 23:30 in Hanoi
    loyal.sales.place(an.id, 2_000_000, placed_at=datetime(2026, 5, 31, 17, 30, tzinfo=UTC))  # 1 June 00:30
    loyal.loyalty.redeem(an.id, "gift")
    loyal.loyalty.jobs.expire(now=clock() + timedelta(days=800))
    rows = {row.month: row for row in loyal.loyalty.reports.earn_burn()}
    assert (rows["2026-05"].earned, rows["2026-06"].earned) == (100, 200)
    assert rows["2026-09"].redeemed == 30 and "2026-08" not in rows
    assert sum(row.expired for row in rows.values()) == 270
    assert sum(row.net for row in rows.values()) == loyal.loyalty.balance(an.id) == 0
    assert [row.month for row in loyal.loyalty.reports.earn_burn(start=date(2026, 6, 1), end=date(2026, 6, 30))] == [
        "2026-06"
    ]


def test_earn_and_burn_months_follow_the_business_time_zone(loyal):
    loyal.set_setting("timezone", "America/New_York")  # UTC-4 in summer
    an = loyal.customers.add(name="Nguyễn Văn An")
    loyal.sales.place(an.id, 1_000_000, placed_at=datetime(2026, 7, 1, 2, 0, tzinfo=UTC))  # 30 June, 22:00
    loyal.sales.place(an.id, 2_000_000, placed_at=datetime(2026, 7, 1, 5, 0, tzinfo=UTC))  # 1 July, 01:00
    assert [(row.month, row.earned) for row in loyal.loyalty.reports.earn_burn()] == [
        ("2026-06", 100),
        ("2026-07", 200),
    ]
    assert [row.month for row in loyal.loyalty.reports.earn_burn(end=date(2026, 6, 30))] == ["2026-06"]
    assert [row.month for row in loyal.loyalty.reports.earn_burn(start=date(2026, 7, 1), end=date(2026, 7, 1))] == [
        "2026-07"
    ]
    assert loyal.loyalty.reports.earn_burn(start=date(2026, 7, 2)) == []


def test_members_per_tier(loyal):
    for n, spent in enumerate((6_000_000, 0, 25_000_000, 7_000_000)):
        customer = loyal.customers.add(name=f"Khách {n}")
        if spent:
            loyal.sales.place(customer.id, spent)
    counts = [(row.tier, row.members) for row in loyal.loyalty.reports.tier_counts()]
    assert counts == [("member", 1), ("silver", 2), ("gold", 1), ("diamond", 0)]


def test_redemption_rate(loyal):
    loyal.loyalty.programs.add_reward("gift", "Quà", 50)
    an, binh = (loyal.customers.add(name=n) for n in ("Nguyễn Văn An", "Trần Thị Bình"))
    loyal.sales.place(an.id, 1_000_000)
    loyal.sales.place(binh.id, 1_000_000)
    loyal.loyalty.redeem(an.id, "gift")
    cancelled = loyal.loyalty.redeem(binh.id, "gift")
    loyal.loyalty.cancel_redemption(cancelled.id)
    (rate,) = loyal.loyalty.reports.redemption_rate()
    assert (rate.earned, rate.redeemed, rate.rate) == (200, 50, Decimal("0.25"))
    assert (rate.members, rate.redeeming_members, rate.member_rate) == (2, 1, Decimal("0.5"))


def test_repeat_purchase_rate_of_members_and_non_members(loyal):
    loyal.loyalty.programs.update("default", auto_enroll=False)
    people = [loyal.customers.add(name=f"Khách {n}") for n in range(5)]
    for person in people[:2]:
        loyal.loyalty.enroll(person.id)
    for person, orders in zip(people, (2, 1, 3, 1, 0)):
        for _ in range(orders):
            loyal.sales.place(person.id, 200_000)
    refunded = loyal.sales.place(people[3].id, 200_000)
    loyal.sales.refund(refunded, 200_000)  # fully refunded: not a purchase
    rates = {row.group: (row.buyers, row.repeat_buyers, row.rate) for row in loyal.loyalty.reports.repeat_purchase()}
    assert rates == {"members": (2, 1, Decimal("0.5")), "non-members": (2, 1, Decimal("0.5"))}
