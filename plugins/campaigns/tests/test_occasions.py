"""Occasions through ``run_due``: each once per customer per year, in the customer's local date."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import campaigns_testkit as kit
import pytest

from crmkit import Conflict, ValidationError
from crmkit.vncalendar import tet

pytestmark = pytest.mark.crmkit_plugins("campaigns")
HANOI = ZoneInfo("Asia/Ho_Chi_Minh")


def at(day: date, hour: int = 9) -> datetime:
    """``hour`` o'clock local time in Hà Nội on ``day``, as UTC."""
    return datetime.combine(day, time(hour), HANOI).astimezone(UTC)


def occasion(crm, kind, start, **options):
    campaign = crm.campaigns.create(
        f"Dịp {kind}", channel="email", occasion=kind, body="Chúc mừng {{ first_name }}", **options
    )
    crm.campaigns.schedule(campaign.id, at(start, 0))
    return campaign


def queued_names(crm, due):
    names = []
    for run in due.runs:
        rows = crm.campaigns.messages(run.campaign_id, status="queued", limit=1000)
        names.extend(crm.customers.get(r["customer_id"]).name for r in rows if r["customer_id"])
    return sorted(set(names))


def test_birthdays_once_per_customer_per_year_in_local_time(shop):
    today = date(2026, 5, 20)
    lan = shop.customers.add(name="Lan", email="lan@example.vn", birth_date=date(1990, 5, 20), consents={"email": True})
    shop.customers.add(name="Minh", email="minh@example.vn", birth_date=date(1985, 5, 21), consents={"email": True})
    shop.customers.add(name="Hoa", email="hoa@example.vn", birth_date=date(1992, 5, 20), consents={"email": False})
    campaign = occasion(shop, "birthday", today)
    late_evening_utc = datetime(2026, 5, 19, 18, 30, tzinfo=UTC)  # already 01:30 on the 20th in Hà Nội
    due = shop.campaigns.run_due(now=late_evening_utc)
    assert [(r.period, r.occasion_date, r.queued, r.excluded) for r in due.runs] == [
        ("2026", today, 1, {"no_consent": 1})
    ]
    assert shop.campaigns.get(campaign.id).status == "running"
    assert shop.campaigns.run_due(now=at(today, 20)).runs == []  # cron again the same day: nothing new
    assert shop.campaigns.dispatch(now=at(today, 20)).sent == 1
    assert shop.campaigns.get(campaign.id).status == "running"  # occasion campaigns keep going
    next_day = shop.campaigns.run_due(now=at(today + timedelta(days=1)))
    assert queued_names(shop, next_day) == ["Minh"]
    next_year = shop.campaigns.run_due(now=at(date(2027, 5, 20)))
    assert [(r.period, r.queued) for r in next_year.runs] == [("2027", 1)]
    sent = shop.campaigns.messages(campaign.id, limit=100)
    assert sorted((m["customer_id"], m["status"]) for m in sent if m["customer_id"] == lan.id) == [
        (lan.id, "queued"),
        (lan.id, "sent"),
    ]


def test_missed_days_are_caught_up_for_a_week_and_days_before_shifts_the_date(shop):
    start = date(2026, 7, 1)
    for n in range(10):  # birthdays on 1–10 July
        shop.customers.add(
            name=f"Khách {n + 1}", email=f"k{n}@example.vn", birth_date=date(1990, 7, n + 1), consents={"email": True}
        )
    campaign = occasion(shop, "birthday", start, days_before=2)
    first = shop.campaigns.run_due(now=at(start))
    assert [r.occasion_date for r in first.runs] == [date(2026, 7, 3)]  # two days ahead
    later = shop.campaigns.run_due(now=at(start + timedelta(days=5)))  # cron was down for four days
    assert [r.occasion_date for r in later.runs] == [date(2026, 7, d) for d in (4, 5, 6, 7, 8)]
    shop.campaigns.cancel(campaign.id)
    assert shop.campaigns.run_due(now=at(start + timedelta(days=6))).runs == []


def test_a_29_february_birthday_is_celebrated_on_the_28th_in_other_years(shop):
    shop.customers.add(name="Nhuận", email="n@example.vn", birth_date=date(2000, 2, 29), consents={"email": True})
    occasion(shop, "birthday", date(2027, 2, 28))
    assert [r.queued for r in shop.campaigns.run_due(now=at(date(2027, 2, 28))).runs] == [1]


def test_tet_and_fixed_dates_reach_the_whole_audience_on_their_day(shop):
    kit.people(shop, 3)
    first_day = tet(2027)
    tet_campaign = occasion(shop, "tet", first_day - timedelta(days=10), days_before=1)
    womens = occasion(shop, "womens_day", date(2027, 1, 1))
    quiet = shop.campaigns.run_due(now=at(first_day - timedelta(days=3)))
    assert quiet.runs == [] and quiet.errors == {}
    eve = shop.campaigns.run_due(now=at(first_day - timedelta(days=1)))
    assert [(r.campaign_id, r.occasion_date, r.queued) for r in eve.runs] == [(tet_campaign.id, first_day, 3)]
    assert shop.campaigns.run_due(now=at(first_day)).runs == []
    march = shop.campaigns.run_due(now=at(date(2027, 3, 8)))
    assert [(r.campaign_id, r.occasion_date, r.queued) for r in march.runs] == [(womens.id, date(2027, 3, 8), 3)]


def test_founding_day_needs_the_setting(shop):
    kit.people(shop, 2)
    with pytest.raises(ValidationError, match="founding_day DD/MM"):
        occasion(shop, "founding_day", date(2026, 1, 1))
    shop.campaigns.configure("founding_day", "15/09")
    occasion(shop, "founding_day", date(2026, 1, 1))
    assert [r.queued for r in shop.campaigns.run_due(now=at(date(2026, 9, 15))).runs] == [2]
    with pytest.raises(ValidationError, match="DD/MM"):
        shop.campaigns.configure("founding_day", "31/02")


def test_first_purchase_anniversaries(crm_factory, tmp_path):
    crm = crm_factory(plugins=["campaigns", kit.PURCHASES])
    kit.outbox(crm, tmp_path)
    old, new, other = kit.people(crm, 3)
    kit.buy(crm, old.id, 500_000, at(date(2024, 4, 10), 23))  # 23:00 local: still the 10th in Hà Nội
    kit.buy(crm, old.id, 800_000, at(date(2025, 4, 10)))  # a later purchase on the same day is not the first
    kit.buy(crm, new.id, 300_000, at(date(2026, 4, 10)))  # first purchase this year: no anniversary yet
    kit.buy(crm, other.id, 300_000, at(date(2024, 4, 11), 1))
    occasion(crm, "first_purchase", date(2026, 4, 1))
    due = crm.campaigns.run_due(now=at(date(2026, 4, 10), 12))
    assert [(r.queued, r.occasion_date) for r in due.runs] == [(1, date(2026, 4, 10))]
    assert queued_names(crm, due) == [old.name]


def test_first_purchase_needs_purchase_data_and_occasions_run_only_through_run_due(shop):
    with pytest.raises(ValidationError, match="first-purchase anniversaries need purchase data"):
        shop.campaigns.create("Kỷ niệm", channel="email", occasion="first_purchase", body="x")
    campaign = shop.campaigns.create("Sinh nhật", channel="email", occasion="birthday", body="x")
    with pytest.raises(Conflict, match="occasion campaign"):
        shop.campaigns.run(campaign.id)


def test_solar_and_lunar_days_as_loyalty_spells_them(shop):
    """`--occasion 04-30` (refused before: loyalty accepted it) and the lunar days of crmkit.vncalendar."""
    kit.people(shop, 2)
    reunification = occasion(shop, "04-30", date(2026, 4, 1))
    assert reunification.occasion == "04-30"
    assert shop.campaigns.create("Quốc khánh", channel="email", occasion="2/9", body="x").occasion == "09-02"
    mid_autumn = occasion(shop, "Tết Trung Thu", date(2026, 9, 1), days_before=2)
    assert mid_autumn.occasion == "trung_thu"
    vu_lan = occasion(shop, "15/7 âm lịch", date(2026, 8, 1))
    assert vu_lan.occasion == "lunar-07-15"
    april = shop.campaigns.run_due(now=at(date(2026, 4, 30)))
    assert [(r.campaign_id, r.occasion_date, r.queued) for r in april.runs] == [
        (reunification.id, date(2026, 4, 30), 2)
    ]
    august = shop.campaigns.run_due(now=at(date(2026, 8, 27)))  # Vu Lan 2026: 27/8
    assert [(r.campaign_id, r.occasion_date, r.queued) for r in august.runs] == [(vu_lan.id, date(2026, 8, 27), 2)]
    eve = shop.campaigns.run_due(now=at(date(2026, 9, 23)))  # two days before Trung thu (25/9/2026)
    assert [(r.campaign_id, r.occasion_date, r.queued) for r in eve.runs] == [(mid_autumn.id, date(2026, 9, 25), 2)]
    with pytest.raises(ValidationError, match="unknown occasion '31/4'.*birthday, first_purchase"):
        shop.campaigns.create("Sai", channel="email", occasion="31/4", body="x")


def test_the_founding_day_is_the_crm_s_one_setting(shop):
    shop.campaigns.configure("founding_day", "15/09")
    assert shop.settings["founding_day"] == "15/09"  # what loyalty's founding_day rules read too
    with pytest.raises(ValidationError, match="DD/MM"):
        shop.set_setting("founding_day", "32/01")
