"""Earning from orders through the sales hooks: idempotency, tiers, birthdays, enrolment, referrals, the hook."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from loyalty_testkit import PLUGINS, days_ago, ledger_count

from crmkit import CRM, ValidationError
from crmkit_loyalty.models import ledger


def test_order_earns_points_floored_dated_at_the_purchase(loyal):
    an = loyal.customers.add(name="Nguyễn Văn An")
    placed = days_ago(30)
    loyal.sales.place(an.id, 1_555_000, placed_at=placed)
    assert loyal.loyalty.balance(an.id) == 155
    (entry,) = loyal.loyalty.history(an.id)
    assert (entry.reason, entry.kind, entry.amount_minor, entry.qualifying) == ("purchase", "earn", 1_555_000, True)
    assert (entry.created_at, entry.expires_at - entry.created_at) == (placed, timedelta(days=365))
    assert entry.note == "1.555.000 ₫ at 1 per 10.000 ₫, floor"


def test_redelivered_order_event_earns_once(loyal):
    an = loyal.customers.add(name="Nguyễn Văn An")
    order = loyal.sales.place(an.id, 800_000)
    entries = ledger_count(loyal)
    loyal.sales.deliver_again(order)
    loyal.sales.deliver_again(order)
    assert loyal.loyalty.balance(an.id) == 80
    assert ledger_count(loyal) == entries
    assert loyal.loyalty.jobs.verify() == []


def test_idempotency_is_a_unique_constraint_not_just_a_check(loyal):
    an = loyal.customers.add(name="Nguyễn Văn An")
    loyal.sales.place(an.id, 800_000)
    with loyal.reading() as conn:
        row = dict(conn.execute(sa.select(ledger)).mappings().one())
    row.pop("id")
    with pytest.raises(sa.exc.IntegrityError):
        with loyal.transaction() as session:
            session.connection().execute(ledger.insert().values(row))


def test_minimum_order_amount(loyal):
    loyal.loyalty.programs.add_rule("min_order", amount_minor=200_000)
    an = loyal.customers.add(name="Lê Văn Cường")
    loyal.sales.place(an.id, 150_000)
    assert loyal.loyalty.balance(an.id) == 0
    assert "below the minimum order of 200.000 ₫" in loyal.loyalty.history(an.id)[0].note
    loyal.sales.place(an.id, 250_000)
    assert loyal.loyalty.balance(an.id) == 25


def test_tier_multiplier_applies_to_earning_after_promotion(loyal):
    loyal.loyalty.programs.set_tiers(
        [
            {"code": "member", "name": "Member", "threshold": 0},
            {"code": "silver", "name": "Silver", "threshold": 100, "multiplier": "1.5"},
        ]
    )
    an = loyal.customers.add(name="Võ Minh Khoa")
    loyal.sales.place(an.id, 1_000_000)
    assert loyal.loyalty.member(an.id).tier == "silver"
    loyal.sales.place(an.id, 1_000_000)
    assert loyal.loyalty.balance(an.id) == 100 + 150
    assert "tier Silver ×1.5" in loyal.loyalty.history(an.id)[0].note


def test_birthday_doubles_purchases_and_pays_its_bonus_once_a_year(loyal):
    loyal.loyalty.programs.add_rule("birthday", multiplier=2, bonus_points=50)
    an = loyal.customers.add(name="Đặng Thị Mai", birth_date="1990-03-15")
    on_birthday = datetime(2026, 3, 14, 18, 0, tzinfo=UTC)  # 15/03 01:00 in Vietnam
    loyal.sales.place(an.id, 1_000_000, placed_at=on_birthday)
    assert loyal.loyalty.balance(an.id) == 200 + 50
    loyal.sales.place(an.id, 1_000_000, placed_at=on_birthday.replace(hour=20))
    assert loyal.loyalty.balance(an.id) == 250 + 200
    loyal.sales.place(an.id, 1_000_000, placed_at=datetime(2026, 3, 15, 18, 0, tzinfo=UTC))  # 16/03 local
    assert loyal.loyalty.balance(an.id) == 450 + 100
    assert [e.reason for e in loyal.loyalty.history(an.id)].count("birthday:2026") == 1


def test_fractional_points_program(loyal):
    loyal.loyalty.programs.create("cents", "Điểm lẻ", point_decimals=2)
    an = loyal.customers.add(name="Ngô Bảo Châu")
    loyal.sales.place(an.id, 15_555)
    assert loyal.loyalty.balance(an.id, program="cents") == Decimal("1.55")
    assert loyal.loyalty.balance(an.id) == 1  # the default program: whole points
    loyal.loyalty.grant(an.id, "0.45", "bù điểm lẻ", program="cents")
    assert loyal.loyalty.balance(an.id, program="cents") == Decimal("2.00")
    with pytest.raises(ValidationError, match="at most 2 decimal places"):
        loyal.loyalty.grant(an.id, "0.125", "quá lẻ", program="cents")


def test_quote_tells_what_an_order_would_earn(loyal):
    loyal.loyalty.programs.add_rule("birthday", bonus_points=50)
    an = loyal.customers.add(name="Đặng Thị Mai", birth_date="1990-03-15")
    order = loyal.sales.place(an.id, 1_234_567, placed_at=datetime(2026, 3, 15, 3, 0, tzinfo=UTC), fire=False)
    quoted = [(line.reason, line.points) for line in loyal.loyalty.orders.quote(order)]
    assert quoted == [("purchase", 123), ("birthday:2026", 50)]
    loyal.sales.deliver_again(order)
    assert loyal.loyalty.balance(an.id) == 173
    assert [(line.reason, line.points) for line in loyal.loyalty.orders.quote(order)] == [("purchase", 123)]


def test_orders_in_another_currency_earn_nothing(loyal):
    an = loyal.customers.add(name="John Smith")
    loyal.sales.place(an.id, 10_000, currency="USD")
    assert loyal.loyalty.balance(an.id) == 0 and loyal.loyalty.history(an.id) == []


def test_only_members_earn_when_the_program_does_not_enroll_automatically(loyal):
    loyal.loyalty.programs.update("default", auto_enroll=False)
    guest = loyal.customers.add(name="Khách vãng lai")
    loyal.sales.place(guest.id, 500_000)
    assert loyal.loyalty.member(guest.id) is None and loyal.loyalty.balance(guest.id) == 0
    loyal.loyalty.enroll(guest.id)
    loyal.sales.place(guest.id, 500_000)
    assert loyal.loyalty.balance(guest.id) == 50


def test_sign_up_bonus_on_customer_creation(loyal):
    loyal.loyalty.programs.add_rule("signup", bonus_points=50)
    an = loyal.customers.add(name="Nguyễn Văn An")
    assert loyal.loyalty.balance(an.id) == 50
    assert [e.reason for e in loyal.loyalty.history(an.id)] == ["signup"]
    loyal.loyalty.enroll(an.id)  # already a member: no second bonus
    assert loyal.loyalty.balance(an.id) == 50


def test_referral_bonus_is_paid_once_on_the_referred_customers_first_order(loyal):
    loyal.loyalty.programs.add_rule("referral", bonus_points=100)
    an = loyal.customers.add(name="Nguyễn Văn An")
    binh = loyal.customers.add(name="Trần Thị Bình", attributes={"referred_by": an.id})
    assert loyal.loyalty.balance(an.id) == 0
    first = loyal.sales.place(binh.id, 300_000)
    loyal.sales.place(binh.id, 300_000)
    assert loyal.loyalty.balance(an.id) == 100
    assert loyal.loyalty.history(an.id)[0].source_id == str(binh.id)
    loyal.sales.cancel(first)  # the referral stays with An; Bình loses only her own points
    assert (loyal.loyalty.balance(an.id), loyal.loyalty.balance(binh.id)) == (100, 30)
    assert loyal.loyalty.jobs.verify() == []


def test_a_referral_is_paid_when_the_referred_customer_is_not_a_member_and_owed_to_a_referrer_who_is_not(loyal):
    loyal.loyalty.programs.update("default", auto_enroll=False)
    loyal.loyalty.programs.add_rule("referral", bonus_points=100)
    an = loyal.customers.add(name="Nguyễn Văn An")
    loyal.loyalty.enroll(an.id)
    binh = loyal.customers.add(name="Trần Thị Bình", attributes={"referred_by": an.id})  # never joins the program
    first = loyal.sales.place(binh.id, 300_000)
    loyal.sales.place(binh.id, 300_000)
    assert (loyal.loyalty.balance(an.id), loyal.loyalty.member(binh.id)) == (100, None)
    (paid,) = [e for e in loyal.loyalty.history(an.id) if e.reason == "referral"]
    assert (paid.points, paid.source_id, paid.order_id) == (100, str(binh.id), str(first.id))

    cuong = loyal.customers.add(name="Lê Văn Cường")  # not a member either
    dung = loyal.customers.add(name="Phạm Thị Dung", attributes={"referred_by": cuong.id})
    order = loyal.sales.place(dung.id, 300_000)
    (owed,) = loyal.loyalty.history(cuong.id)  # not skipped silently: the ledger says why, without points
    assert (owed.points, owed.kind, owed.reason, owed.order_id) == (0, "earn", "referral_owed", str(order.id))
    assert owed.note == (
        f"referral bonus of 100 points for customer {dung.id}'s first order not paid yet: customer "
        f"{cuong.id} is not a member of program 'default' (it does not enrol automatically); "
        "paid when they enrol"
    )
    assert loyal.loyalty.balance(cuong.id) == 0
    loyal.loyalty.enroll(cuong.id)
    assert loyal.loyalty.balance(cuong.id) == 100
    assert [(e.reason, e.points) for e in loyal.loyalty.history(cuong.id)] == [("referral", 100), ("referral_owed", 0)]
    loyal.sales.place(dung.id, 300_000)
    loyal.loyalty.enroll(cuong.id)  # already a member: nothing more
    assert loyal.loyalty.balance(cuong.id) == 100
    assert loyal.loyalty.jobs.verify() == []


def test_referred_by_must_name_an_existing_customer(loyal):
    with pytest.raises(ValidationError) as caught:
        loyal.customers.add(name="Trần Thị Bình", attributes={"referred_by": 999_999})
    assert caught.value.errors == {"attributes": {"referred_by": ["no active customer 999999"]}}
    with pytest.raises(ValidationError, match="referred_by"):
        loyal.customers.add(name="Trần Thị Bình", attributes={"referred_by": "an"})


def test_points_changed_hook_sees_every_entry_with_the_new_balance(listening):
    crm, listener = listening
    an = crm.customers.add(name="Nguyễn Văn An")
    order = crm.sales.place(an.id, 500_000)
    crm.sales.deliver_again(order)
    crm.loyalty.grant(an.id, 10, "quà tặng")
    assert listener.points == [(an.id, "purchase", 50, 50), (an.id, "grant", 10, 60)]
    assert listener.tiers == [(an.id, None, "member")]


def test_a_customer_cannot_refer_themself_and_a_kept_referrer_is_not_checked_again(loyal):
    an = loyal.customers.add(name="Nguyễn Văn An")
    with pytest.raises(ValidationError, match="cannot refer themself"):
        loyal.customers.update(an.id, attributes={"referred_by": an.id})
    binh = loyal.customers.add(name="Trần Thị Bình", attributes={"referred_by": an.id})
    loyal.customers.erase(an.id)
    loyal.customers.update(binh.id, attributes={"zalo": "0912345678"})  # the referral stays as it was
    assert loyal.customers.get(binh.id).attributes == {"referred_by": an.id, "zalo": "0912345678"}


def test_configuration_changed_by_another_process_applies_to_the_next_order(loyal):
    """Rules and tiers are kept between orders; a change made through another CRM on the database still counts."""
    other = CRM(loyal.engine.url.render_as_string(hide_password=False), plugins=PLUGINS, strict=True)
    try:
        an = loyal.customers.add(name="Phan Thị Hoa")
        loyal.sales.place(an.id, 1_000_000)
        assert loyal.loyalty.balance(an.id) == 100
        rule = other.loyalty.programs.add_rule("min_order", amount_minor=2_000_000)
        loyal.sales.place(an.id, 1_000_000)
        assert loyal.loyalty.balance(an.id) == 100  # below the new minimum
        other.loyalty.programs.deactivate_rule(rule.id)
        other.loyalty.programs.set_tiers([{"code": "member", "name": "Member", "threshold": 0, "multiplier": 2}])
        loyal.sales.place(an.id, 1_000_000)
        assert loyal.loyalty.balance(an.id) == 100 + 200
        assert "tier Member ×2" in loyal.loyalty.history(an.id)[0].note
    finally:
        other.close()


def test_founding_day_and_lunar_occasion_rules_through_the_service(loyal):
    """The CRM's founding_day setting (the one campaigns configures) and Trung thu, from crmkit.vncalendar."""
    with pytest.raises(ValidationError, match="founding_day setting"):
        loyal.loyalty.programs.add_rule("occasion", target="founding_day", bonus_points=30)
    loyal.set_setting("founding_day", "15/09")
    loyal.loyalty.programs.add_rule("occasion", target="ngày thành lập", bonus_points=30)
    loyal.loyalty.programs.add_rule("occasion", target="15/8 âm lịch", multiplier=2)
    an = loyal.customers.add(name="Nguyễn Văn An")
    loyal.sales.place(an.id, 100_000, placed_at=datetime(2026, 9, 15, 3, 0, tzinfo=UTC))
    loyal.sales.place(an.id, 100_000, placed_at=datetime(2026, 9, 25, 3, 0, tzinfo=UTC))  # Trung thu
    assert sorted((e.reason, int(e.points)) for e in loyal.loyalty.history(an.id)) == [
        ("occasion:founding_day:2026", 30),
        ("purchase", 10),
        ("purchase", 20),
    ]
