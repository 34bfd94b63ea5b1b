"""Differentiate, Interact and Customize, with and without purchase history."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from crmkit import ValidationError
from crmkit.core import tables as core


def _buyers(crm: Any, buy: Any) -> list[int]:
    """Ten buyers spending 1..10 million đồng, one with net refunds, one who never bought."""
    ids = []
    for n in range(1, 11):
        customer = crm.customers.add(name=f"Khách hàng {n}", email=f"kh{n}@example.vn", owner="lan")
        buy(crm, customer.id, n * 1_000_000, category="Điện thoại" if n % 2 else "Phụ kiện")
        ids.append(customer.id)
    refunder = crm.customers.add(name="Khách trả hàng", email="tra@example.vn")
    buy(crm, refunder.id, 2_000_000)
    buy(crm, refunder.id, -3_000_000)
    browser = crm.customers.add(name="Khách xem hàng", email="xem@example.vn", tags=["needs:gia-dinh"])
    return [*ids, refunder.id, browser.id]


def test_differentiate_ranks_by_net_purchases_and_names_the_below_zero_group(shop_crm: Any, buy: Any, at: Any) -> None:
    ids = _buyers(shop_crm, buy)
    result = shop_crm.idic.run(steps=["differentiate"]).result("differentiate")
    assert result.counts == {
        "customers": 12,
        "tier_below_zero": 1,
        "tier_maintain": 5,
        "tier_most_growable": 3,
        "tier_most_valuable": 2,
        "tier_unknown": 1,
    }
    section = shop_crm.customers.profile(ids[9]).sections["idic"]
    assert (section["tier"], section["needs"]) == ("most_valuable", "Phụ kiện")
    assert shop_crm.customers.profile(ids[10]).sections["idic"]["tier"] == "below_zero"
    browser = shop_crm.customers.profile(ids[11]).sections["idic"]
    assert (browser["tier"], browser["needs"]) == ("unknown", "gia-dinh")
    cell = next(r for r in result.report["matrix"] if r["tier"] == "most_valuable" and r["needs"] == "Phụ kiện")
    assert (cell["customers"], cell["value"]) == (1, "10.000.000 ₫")


def test_differentiate_ranks_by_the_rfm_score_once_analytics_computed_it(shop_crm: Any, buy: Any, at: Any) -> None:
    ids = _buyers(shop_crm, buy)
    shop_crm.analytics.rfm()
    result = shop_crm.idic.run(steps=["differentiate"]).result("differentiate")
    assert result.report["note"] == "ranked by rfm"
    tiers = {i: shop_crm.customers.profile(i).sections["idic"]["tier"] for i in ids}
    assert tiers[ids[9]] == "most_valuable" and tiers[ids[11]] == "unknown"  # the biggest buyer; one who never bought
    assert "most_valuable" not in {tiers[i] for i in ids[:3]}  # the smallest buyers rank below the biggest


def test_differentiate_before_any_transaction_falls_back_to_unknown_value(shop_crm: Any, buy: Any, at: Any) -> None:
    shop_crm.customers.add(name="Lê Thị Hoa", tags=["needs:van-phong"])
    other = shop_crm.customers.add(name="Vũ Đức Hải")
    shop_crm.interactions.log(other.id, "phone", subject="Hỏi về BẢO HÀNH máy lọc nước")
    result = shop_crm.idic.run(steps=["differentiate"]).result("differentiate")
    assert result.counts == {"customers": 2, "tier_unknown": 2}
    assert "no purchase history (no transaction yet)" in result.report["note"]
    assert {(r["tier"], r["needs"]) for r in result.report["matrix"]} == {
        ("unknown", "van-phong"),
        ("unknown", "service"),
    }


def test_interact_plans_contacts_on_the_consented_channel_they_answer_and_logging_closes_them(
    shop_crm: Any, buy: Any, at: Any
) -> None:
    crm = shop_crm
    vip = crm.customers.add(name="Đặng Thu Trang", owner="lan", consents={"email": True, "sms": True})
    buy(crm, vip.id, 50_000_000)
    silent = crm.customers.add(name="Ngô Văn Tâm", owner="lan")
    buy(crm, silent.id, 1_000_000)
    # Trang answers by SMS at 20:00 Hà Nội time (13:00 UTC), on Tuesdays.
    crm.interactions.log(vip.id, "sms", direction="inbound", occurred_at=at("2026-06-02", 13))
    crm.interactions.log(vip.id, "sms", direction="inbound", occurred_at=at("2026-06-09", 13))
    run = crm.idic.run()
    interact = run.result("interact")
    assert interact.counts["planned"] == 1 and interact.counts["no_consented_channel"] == 1
    section = crm.customers.profile(vip.id).sections["idic"]
    assert (section["channel"], section["best_hour"], section["best_weekday"], section["rhythm_days"]) == (
        "sms",
        20,
        1,
        14,
    )
    today = crm.today()
    agenda = crm.idic.agenda("lan", today + timedelta(days=1))
    assert [(a["customer_id"], a["channel"]) for a in agenda] == [(vip.id, "sms")]
    assert crm.idic.agenda("lan", date(2020, 1, 1)) == []
    crm.interactions.log(vip.id, "sms", direction="outbound", employee="lan", summary="Đã nhắn tin chúc mừng")
    assert crm.idic.agenda("lan", today + timedelta(days=1)) == []
    with pytest.raises(ValidationError) as info:
        crm.idic.agenda("lan", "24/11/2026")
    assert "date" in info.value.errors


def test_best_contact_time_is_read_on_the_business_clock_across_daylight_saving(
    shop_crm: Any, buy: Any, at: Any
) -> None:
    crm = shop_crm
    crm.set_setting("timezone", "America/New_York")
    client = crm.customers.add(name="Mary Tran", owner="lan", consents={"sms": True})
    buy(crm, client.id, 50_000_000)
    # Mary answers on Tuesdays at 21:00 New York time: 02:00 UTC on Wednesday in winter, 01:00 UTC in summer.
    crm.interactions.log(client.id, "sms", direction="inbound", occurred_at=at("2026-01-14", 2))
    crm.interactions.log(client.id, "sms", direction="inbound", occurred_at=at("2026-06-03", 1))
    crm.idic.run()
    section = crm.customers.profile(client.id).sections["idic"]
    assert (section["best_hour"], section["best_weekday"]) == (21, 1)
    agenda = crm.idic.agenda("lan")  # today in New York; her rhythm since June has run out: due today, at 21:00
    assert [(item["due_on"], item["hour"]) for item in agenda] == [(crm.today(), 21)]


def test_customize_gives_each_customer_a_next_best_action_with_its_reason(shop_crm: Any, buy: Any, at: Any) -> None:
    crm = shop_crm
    ids = _buyers(crm, buy)
    crm.customers.update(ids[8], city="Hà Nội")
    crm.idic.add_treatment(
        "VIP Hà Nội",
        tier="most_valuable",
        condition_='city = "Hà Nội"',
        message="Mời dự sự kiện tri ân tại Hà Nội",
        service_level="gold",
        priority=1,
    )
    crm.idic.add_treatment("VIP", tier="most_valuable", offer="Giảm 15%", price_list="vip", priority=5)
    run = crm.idic.run(steps=["differentiate", "customize"])
    assert run.result("customize").report["treatments"] == [
        {"treatment": "VIP Hà Nội", "customers": 1},
        {"treatment": "VIP", "customers": 1},
    ]
    hanoi = crm.customers.profile(ids[8]).sections["idic"]
    assert hanoi["next_action"] == "Mời dự sự kiện tri ân tại Hà Nội; service level gold"
    assert hanoi["reason"] == 'rule “VIP Hà Nội” (priority 1), tier most_valuable, condition city = "Hà Nội"'
    assert crm.customers.profile(ids[9]).sections["idic"]["next_action"] == "Giảm 15%; price list vip"
    below = crm.customers.profile(ids[10]).sections["idic"]
    assert below["reason"] == "no treatment rule matched: default for tier below_zero"


def test_treatment_rules_with_an_unknown_field_or_tier_are_refused_at_creation(
    shop_crm: Any, buy: Any, at: Any, crm_factory: Any
) -> None:
    with pytest.raises(ValidationError) as info:
        shop_crm.idic.add_treatment("Sai", condition_='favourite_colour = "đỏ"', message="x")
    assert "unknown field 'favourite_colour'" in info.value.errors["condition"][0]
    with pytest.raises(ValidationError) as info:
        shop_crm.idic.add_treatment("Sai", tier="gold", message="x")
    assert "tier" in info.value.errors
    with pytest.raises(ValidationError) as info:
        shop_crm.idic.add_treatment("Trống")
    assert "message" in info.value.errors
    assert shop_crm.idic.treatments() == []
    alone = crm_factory(plugins=["idic"])
    with pytest.raises(ValidationError, match="crmkit-campaigns"):
        alone.idic.add_treatment("VIP", condition_='city = "Huế"', message="x")


def test_handoff_creates_a_segment_and_a_draft_campaign(shop_crm: Any, buy: Any, at: Any) -> None:
    ids = _buyers(shop_crm, buy)
    shop_crm.idic.add_treatment("Tiềm năng", tier="most_growable", offer="Giảm 10% đơn tiếp theo")
    shop_crm.idic.run(steps=["differentiate", "customize"])
    result = shop_crm.idic.handoff("Tiềm năng")
    assert result["campaign_status"] == "draft"
    segments = shop_crm.campaigns.segments
    assert segments.created == [("IDIC: Tiềm năng", 'idic_treatment = "Tiềm năng"')]
    assert shop_crm.campaigns.drafts[0]["segment"] == result["segment_id"]
    with shop_crm.reading() as conn:
        audience = conn.execute(sa.select(core.customers.c.id).where(segments.audience(1))).scalars().all()
    assert sorted(audience) == sorted(ids[5:8])  # the 3rd to 5th biggest buyers


def test_control_characters_in_a_treatment_are_refused_by_field_and_only_the_message_takes_lines(shop_crm: Any) -> None:
    idic = shop_crm.idic
    for field, attempt in (
        ("name", {"name": "VIP\x00", "message": "x"}),
        ("offer", {"name": "VIP", "offer": "Giảm\n15%"}),
        ("message", {"name": "VIP", "message": "Chào\x1b[2J"}),
        ("needs", {"name": "VIP", "needs": "gia-dinh\t", "message": "x"}),
    ):
        with pytest.raises(ValidationError, match=f"^{field}: contains a control character \\(U\\+00"):
            idic.add_treatment(**attempt)
    assert idic.treatments() == []
    added = idic.add_treatment(
        "VIP Hà Nội", condition_='city =\n  "Hà Nội"', message="Chào anh/chị,\n\tcảm ơn đã mua hàng"
    )
    assert [t["message"] for t in idic.treatments()] == [added["message"]] == ["Chào anh/chị,\n\tcảm ơn đã mua hàng"]
