"""Campaigns from draft to done: templates, statuses, runs (consent, suppression, frequency cap, quiet hours,
holdout, A/B split), budgets and the errors that leave nothing half-written."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import campaigns_testkit as kit
import pytest
import sqlalchemy as sa

from crmkit import Conflict, NotFound, ValidationError
from crmkit_campaigns import models as m
from crmkit_campaigns.sqlparts import bucket

pytestmark = pytest.mark.crmkit_plugins("campaigns")


def statuses(crm, campaign_id):
    with crm.reading() as conn:
        rows = conn.execute(
            sa.select(m.messages.c.status, m.messages.c.reason, sa.func.count())
            .where(m.messages.c.campaign_id == campaign_id)
            .group_by(m.messages.c.status, m.messages.c.reason)
        ).all()
    return {(status if reason is None else f"{status}:{reason}"): n for status, reason, n in rows}


def test_templates_are_checked_at_create_time(shop):
    create = shop.campaigns.create
    with pytest.raises(ValidationError) as caught:
        create("Tết", channel="email", subject="Chúc {{ first_nam }}", body="Xin chào")
    assert str(caught.value).startswith(
        "subject: line 1, column 6: unknown placeholder {{ first_nam }} (did you mean 'first_name'?); known: "
    )
    bad_bodies = {
        "Chào {{ name }},\nSố dư {{ total_spend | money }}": "body: line 2, column 7: unknown placeholder {{ total_spend }}",
        "Chào {{ name | money }}": "filter 'money' needs number, but name is text",
        "Chào {{ name | shout }}": "unknown filter 'shout'",
        "Chào {{ name ": "'{{' is never closed",
        "Chào }} bạn": "'}}' without an opening '{{'",
        "Chào {{ name | default }}": "default needs the text to use",
    }
    for body, message in bad_bodies.items():
        with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace("|", r"\|")):
            create("Tết", channel="email", body=body)
    assert shop.campaigns.list() == []  # nothing was written
    with pytest.raises(ValidationError, match="unknown channel 'pigeon'"):
        create("Tết", channel="pigeon", body="x")
    with pytest.raises(ValidationError, match="no saved segment 'Không có'"):
        create("Tết", channel="email", body="x", segment="Không có")
    with pytest.raises(ValidationError, match="holdout_percent"):
        create("Tết", channel="email", body="x", holdout_percent=80)


def test_preview_renders_placeholders_money_and_an_unsubscribe_link(shop):
    an = shop.customers.add(
        name="Nguyễn Văn An",
        given_name="An",
        email="an@example.vn",
        city="Hà Nội",
        birth_date=date(1990, 1, 29),
        consents={"email": True},
    )
    nobody = shop.customers.add(name="Lê Thị Hoa", email="hoa@example.vn")
    campaign = shop.campaigns.create(
        "Tết",
        channel="email",
        subject="{{ first_name | upper }} ơi, chúc mừng năm mới",
        body='Chào {{ first_name }} ({{ city | default("chưa rõ") }}), sinh nhật {{ birth_date | date("%d/%m") }}.\n'
        "Quà {{ customer_id | money }} tại https://shop.vn/tet, số {{ customer_id | number }}.",
    )
    preview = shop.campaigns.preview(campaign.id, an.id)
    assert preview.subject == "AN ơi, chúc mừng năm mới"
    assert preview.text.startswith(
        f"Chào An (Hà Nội), sinh nhật 29/01.\nQuà {an.id} ₫ tại http://127.0.0.1:8000/campaigns/t/c/"
    )
    assert (
        "shop.vn" in preview.text and "https://shop.vn/tet" not in preview.text.split("?u=")[0]
    )  # the link is tracked
    assert (
        "Unsubscribe: http://127.0.0.1:8000/campaigns/t/u/" in preview.text
    )  # added: the template had no unsubscribe_url
    assert preview.html and 'width="1" height="1"' in preview.html  # the open pixel
    assert (preview.eligible, preview.to) == (True, "an@example.vn")
    other = shop.campaigns.preview(campaign.id, nobody.id)
    assert "Chào Lê Thị Hoa (chưa rõ)" in other.text and (other.eligible, other.reason) == (False, "no_consent")
    with pytest.raises(NotFound):
        shop.campaigns.preview(campaign.id, 999_999)


def test_statuses_move_only_along_legal_transitions(shop):
    kit.people(shop, 3)
    campaign = shop.campaigns.create("Tết", channel="email", body="Chào {{ first_name }}")
    with pytest.raises(Conflict, match=r"'Tết' is draft: it cannot become draft \(from draft: scheduled, cancelled\)"):
        shop.campaigns.unschedule(campaign.id)
    scheduled = shop.campaigns.schedule(campaign.id, datetime(2026, 1, 20, 9, 0, tzinfo=timezone(timedelta(hours=7))))
    assert scheduled.status == "scheduled" and scheduled.scheduled_at == datetime(2026, 1, 20, 2, 0, tzinfo=UTC)
    with pytest.raises(Conflict, match="only a draft campaign can be changed"):
        shop.campaigns.set_variant(campaign.id, "B", body="x")
    assert shop.campaigns.unschedule(campaign.id).status == "draft"
    shop.campaigns.run(campaign.id, now=kit.NOON)
    assert shop.campaigns.get(campaign.id).status == "running"
    with pytest.raises(Conflict, match="running: it cannot become scheduled"):
        shop.campaigns.schedule(campaign.id)
    shop.campaigns.dispatch(now=kit.NOON)
    assert shop.campaigns.get(campaign.id).status == "done"
    with pytest.raises(Conflict, match="done: it cannot run again"):
        shop.campaigns.run(campaign.id)
    with pytest.raises(Conflict, match=r"done: it cannot become cancelled \(from done: none: it is final\)"):
        shop.campaigns.cancel(campaign.id)


def test_a_run_queues_consented_customers_and_counts_the_excluded_by_reason(shop):
    ok = kit.people(shop, 4, prefix="Có")
    refused = kit.people(shop, 2, prefix="Không", consent=False)
    silent = shop.customers.add(name="Chưa hỏi", email="chua@example.vn")  # never asked: no consent
    phone_only = shop.customers.add(name="Chỉ có số", phone="0912345678", consents={"email": True})
    blocked = kit.people(shop, 1, prefix="Chặn")[0]
    by_address = kit.people(shop, 1, prefix="Địa chỉ")[0]
    shop.campaigns.suppress(customer_id=blocked.id, reason="yêu cầu qua điện thoại")
    shop.campaigns.suppress(address=by_address.email.upper(), channel="email", reason="hộp thư đầy")
    campaign = shop.campaigns.create("Tết", channel="email", body="Chào {{ first_name }}")
    result = shop.campaigns.run(campaign.id, now=kit.NOON)
    assert (result.audience, result.queued, result.holdout) == (10, 4, 0)
    assert result.excluded == {"suppressed": 2, "no_consent": 3, "no_address": 1}
    assert statuses(shop, campaign.id) == {
        "queued": 4,
        "excluded:suppressed": 2,
        "excluded:no_consent": 3,
        "excluded:no_address": 1,
    }
    report = shop.campaigns.dispatch(now=kit.NOON)
    assert report.sent == 4
    sent_to = {row["address"] for row in shop.campaigns.messages(campaign.id, status="sent")}
    assert sent_to == {c.email for c in ok}
    assert not {c.email for c in refused} & sent_to and phone_only.phone is not None and silent.id


def test_no_consented_recipient_is_an_error_and_writes_nothing(shop):
    kit.people(shop, 3, consent=False)
    campaign = shop.campaigns.create("Tết", channel="email", body="Chào")
    with pytest.raises(
        ValidationError,
        match=r"audience: no customer can receive campaign 'Tết': all 3 in the "
        r"audience are excluded \(no_consent 3\); nothing was queued",
    ):
        shop.campaigns.run(campaign.id, now=kit.NOON)
    assert statuses(shop, campaign.id) == {} and shop.campaigns.get(campaign.id).status == "draft"
    with pytest.raises(ValidationError, match="no adapter delivers channel 'sms'"):
        shop.campaigns.run(shop.campaigns.create("SMS", channel="sms", body="x").id)


def test_the_frequency_cap_counts_messages_of_every_campaign(shop):
    shop.campaigns.configure("frequency_cap", "2/7d")
    customers = kit.people(shop, 3)
    first, second, third = (shop.campaigns.create(f"Đợt {n}", channel="email", body="Chào").id for n in range(3))
    shop.campaigns.run(first, now=kit.NOON)
    shop.campaigns.run(second, now=kit.NOON + timedelta(days=1))
    with pytest.raises(ValidationError, match=r"frequency_cap 3"):
        shop.campaigns.run(third, now=kit.NOON + timedelta(days=2))
    later = shop.campaigns.run(third, now=kit.NOON + timedelta(days=7, hours=1))  # the first run left the window
    assert later.queued == len(customers)


def test_quiet_hours_delay_the_send(shop):
    shop.campaigns.configure("quiet_hours", "21:00-08:00")
    kit.people(shop, 2)
    campaign = shop.campaigns.create("Tối", channel="email", body="Chào")
    night = datetime(2026, 3, 4, 16, 0, tzinfo=UTC)  # 23:00 in Hà Nội
    result = shop.campaigns.run(campaign.id, now=night)
    assert result.send_at == datetime(2026, 3, 5, 1, 0, tzinfo=UTC)  # 08:00 next morning, local
    quiet = shop.campaigns.dispatch(now=night + timedelta(hours=1))
    assert quiet.sent == 0 and quiet.quiet_until == datetime(2026, 3, 5, 1, 0, tzinfo=UTC)
    assert shop.campaigns.dispatch(now=result.send_at).sent == 2
    with pytest.raises(ValidationError, match="HH:MM-HH:MM"):
        shop.campaigns.configure("quiet_hours", "late")


def test_quiet_hours_follow_the_business_time_zone_unless_campaigns_have_their_own(shop):
    shop.campaigns.configure("quiet_hours", "21:00-08:00")
    kit.people(shop, 1)
    night_in_hanoi = datetime(2026, 3, 4, 16, 0, tzinfo=UTC)  # 23:00 in Hà Nội, 11:00 in New York
    shop.set_setting("timezone", "America/New_York")
    assert shop.campaigns.settings.zone.key == "America/New_York"
    assert (
        shop.campaigns.run(shop.campaigns.create("Trưa", channel="email", body="Chào").id, now=night_in_hanoi).send_at
        == night_in_hanoi
    )  # midday there: no delay
    shop.campaigns.configure("timezone", "Asia/Ho_Chi_Minh")
    assert shop.campaigns.settings.zone.key == "Asia/Ho_Chi_Minh"


def test_holdout_and_ab_split_are_deterministic_and_proportional(shop):
    kit.bulk_people(shop, 2000)
    campaign = shop.campaigns.create("A/B", channel="email", body="A", holdout_percent=10)
    shop.campaigns.set_variant(campaign.id, "B", body="B", weight=3)
    result = shop.campaigns.run(campaign.id, now=kit.NOON)
    assert 150 <= result.holdout <= 250 and result.queued == 2000 - result.holdout
    campaign = shop.campaigns.get(campaign.id)
    with shop.reading() as conn:
        rows = conn.execute(
            sa.select(m.messages.c.customer_id, m.messages.c.status, m.messages.c.variant_id).where(
                m.messages.c.campaign_id == campaign.id
            )
        ).all()
    variant_a, variant_b = (v.id for v in campaign.variants)
    share_b = sum(1 for _, status, v in rows if v == variant_b) / result.queued
    assert 0.70 <= share_b <= 0.80  # weights 1:3
    for customer_id, status, variant in rows:  # SQL and Python draw the same buckets
        assert (status == "holdout") == (bucket(customer_id, campaign.id, "holdout") < 1000)
        if status == "queued":
            assert shop.campaigns._variant_of(campaign, customer_id, None).id == variant
    assert shop.campaigns.preview(campaign.id, rows[0][0]).variant in ("A", "B")


def test_a_second_run_adds_only_newcomers(shop):
    first = kit.people(shop, 3, prefix="Cũ")
    campaign = shop.campaigns.create("Tết", channel="email", body="Chào")
    assert shop.campaigns.run(campaign.id, now=kit.NOON).queued == 3
    late = kit.people(shop, 2, prefix="Mới")
    shop.customers.set_consent(kit.people(shop, 1, prefix="Đổi ý", consent=False)[0].id, "email", True, source="form")
    again = shop.campaigns.run(campaign.id, now=kit.NOON + timedelta(hours=1))
    assert (again.queued, again.audience) == (3, 3)
    assert shop.campaigns.run(campaign.id, now=kit.NOON + timedelta(hours=2)).queued == 0  # nothing new: no error
    assert shop.campaigns.dispatch(now=kit.NOON + timedelta(hours=3)).sent == 6
    assert len(first) + len(late) == 5


def test_budget_caps_the_run(shop):
    kit.people(shop, 5)
    campaign = shop.campaigns.create(
        "Đắt",
        channel="email",
        body="Chào",
        budget_minor=1_000_000,
        cost_fixed_minor=600_000,
        cost_per_message_minor=100_000,
    )
    with pytest.raises(
        ValidationError,
        match=r"budget: over budget: 5 messages cost 1.100.000 ₫, the budget of "
        r"1.000.000 ₫ covers 4",
    ):
        shop.campaigns.run(campaign.id, now=kit.NOON)
    assert statuses(shop, campaign.id) == {}
    cheaper = shop.campaigns.update(campaign.id, cost_per_message_minor=80_000)
    assert cheaper.cost_per_message_minor == 80_000 and shop.campaigns.run(campaign.id, now=kit.NOON).queued == 5


def test_cancel_drops_messages_not_yet_sent(shop):
    kit.people(shop, 3)
    campaign = shop.campaigns.create("Huỷ", channel="email", body="Chào")
    shop.campaigns.run(campaign.id, now=kit.NOON)
    assert shop.campaigns.cancel(campaign.id).status == "cancelled"
    assert statuses(shop, campaign.id) == {"cancelled:campaign_cancelled": 3}
    assert shop.campaigns.dispatch(now=kit.NOON).sent == 0


def test_update_and_variants(shop):
    campaign = shop.campaigns.create("Tết", channel="email", body="A", holdout_percent=Decimal("12.5"))
    assert shop.campaigns.get("Tết").holdout_percent == Decimal("12.5")
    with pytest.raises(ValidationError, match="cannot change body"):
        shop.campaigns.update(campaign.id, body="x")
    shop.campaigns.set_variant(campaign.id, "B", body="B {{ name }}", weight=2)
    shop.campaigns.set_variant(campaign.id, "B", body="B2", weight=1)
    assert [(v.name, v.body) for v in shop.campaigns.get(campaign.id).variants] == [("A", "A"), ("B", "B2")]
    assert [v.name for v in shop.campaigns.remove_variant(campaign.id, "A").variants] == ["B"]
    with pytest.raises(Conflict, match="at least one variant"):
        shop.campaigns.remove_variant(campaign.id, "B")
    with pytest.raises(ValidationError, match="name"):
        shop.campaigns.set_variant(campaign.id, "có dấu", body="x")
    with pytest.raises(Conflict, match="already exists"):
        shop.campaigns.create("Tết", channel="email", body="x")
