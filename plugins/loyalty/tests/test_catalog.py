"""Configuring programs, rules, rewards: validation, fixed settings, deactivation."""

import pytest
from loyalty_testkit import ledger_count

from crmkit import Conflict, NotFound, ValidationError


def test_program_settings_are_validated_and_some_are_fixed(loyal):
    with pytest.raises(Conflict, match="already exists"):
        loyal.loyalty.programs.create("default", "Lần nữa")
    with pytest.raises(ValidationError) as caught:
        loyal.loyalty.programs.create(
            "Bad Code!", "", currency="đồng", rounding="bankers", point_decimals=5, earn_amount_minor=0
        )
    assert set(caught.value.errors) == {"code", "name", "currency", "rounding", "point_decimals", "earn_amount_minor"}
    with pytest.raises(ValidationError) as caught:
        loyal.loyalty.programs.update("default", currency="USD", point_decimals=2)
    assert caught.value.errors == {
        "currency": ["cannot be changed once the program exists"],
        "point_decimals": ["cannot be changed once the program exists"],
    }
    updated = loyal.loyalty.programs.update("default", expiry_days=None, name="Thành viên thân thiết")
    assert (updated.expiry_days, updated.name) == (None, "Thành viên thân thiết")
    with pytest.raises(NotFound, match="loyalty program 'vip'"):
        loyal.loyalty.programs.update("vip", name="?")


def test_without_any_program_the_service_says_how_to_create_one(crm_factory):
    from loyalty_testkit import make

    crm = make(crm_factory)
    an = crm.customers.add(name="Nguyễn Văn An")
    with pytest.raises(NotFound, match="crmkit loyalty programs add"):
        crm.loyalty.balance(an.id)
    crm.sales.place(an.id, 500_000)  # no program: the sale goes through, nothing is earned
    assert ledger_count(crm) == 0


def test_rules_are_validated_by_kind(loyal):
    cases = [
        ({"kind": "product", "multiplier": 2}, {"target"}),
        ({"kind": "category", "target": "Gạo"}, {"multiplier"}),
        ({"kind": "min_order"}, {"amount_minor"}),
        ({"kind": "birthday"}, {"multiplier"}),
        ({"kind": "occasion", "target": "13-45", "bonus_points": 5}, {"target"}),
        ({"kind": "signup", "bonus_points": -5}, {"bonus_points"}),
        ({"kind": "lottery", "bonus_points": 5}, {"kind"}),
        (
            {"kind": "category", "target": "Gạo", "multiplier": 2, "starts_on": "2026-03-01", "ends_on": "2026-02-01"},
            {"ends_on"},
        ),
    ]
    for settings, fields in cases:
        with pytest.raises(ValidationError) as caught:
            loyal.loyalty.programs.add_rule(settings.pop("kind"), **settings)
        assert set(caught.value.errors) == fields, settings
    with pytest.raises(ValidationError, match="fractional points are not allowed"):
        loyal.loyalty.programs.add_rule("signup", bonus_points="2.5")
    assert loyal.loyalty.programs.rules() == []


def test_a_deactivated_rule_stops_applying_but_stays_listed(loyal):
    rule = loyal.loyalty.programs.add_rule("signup", bonus_points=50)
    with pytest.raises(Conflict, match="already has an active signup rule"):
        loyal.loyalty.programs.add_rule("signup", bonus_points=80)
    assert loyal.loyalty.programs.deactivate_rule(rule.id).active is False
    assert loyal.loyalty.programs.rules() == [] and [
        r.id for r in loyal.loyalty.programs.rules(include_inactive=True)
    ] == [rule.id]
    an = loyal.customers.add(name="Nguyễn Văn An")
    assert loyal.loyalty.balance(an.id) == 0
    with pytest.raises(NotFound, match="loyalty rule 999"):
        loyal.loyalty.programs.deactivate_rule(999)


def test_rewards_can_be_changed(loyal):
    loyal.loyalty.programs.add_reward("arabica-250", "Cà phê Arabica 250g", 240, stock=5, value_minor=120_000)
    changed = loyal.loyalty.programs.update_reward(
        "arabica-250", points_cost=220, stock=None, name="Cà phê Arabica Cầu Đất 250g"
    )
    assert (changed.points_cost, changed.stock, changed.name, str(changed.value)) == (
        220,
        None,
        "Cà phê Arabica Cầu Đất 250g",
        "120.000 ₫",
    )
    with pytest.raises(ValidationError, match="stock"):
        loyal.loyalty.programs.update_reward("arabica-250", stock=-1)
    with pytest.raises(NotFound, match="reward 'xe-may'"):
        loyal.loyalty.programs.update_reward("xe-may", stock=1)
    with pytest.raises(NotFound, match="redemption 77"):
        loyal.loyalty.cancel_redemption(77)


def test_control_characters_are_refused_by_field_and_only_descriptions_and_notes_take_lines(loyal):
    for settings, field in (
        ({"name": "Ly\x00 sứ"}, "name"),
        ({"name": "Ly\nsứ"}, "name"),
        ({"description": "Ly sứ\x1b[2J"}, "description"),
        ({"kind": "product\x7f"}, "kind"),
    ):
        with pytest.raises(ValidationError, match=f"^{field}: contains a control character \\(U\\+00"):
            loyal.loyalty.programs.add_reward("ly-su", **{"name": "Ly sứ", "points_cost": 100, **settings})
    assert loyal.loyalty.programs.rewards() == []
    with pytest.raises(ValidationError, match="^name: contains a control character \\(U\\+2028"):
        loyal.loyalty.programs.create("vip", "Khách\u2028VIP")
    reward = loyal.loyalty.programs.add_reward(
        "ly-su", "Ly sứ Bát Tràng", 100, description="Men lam.\n\tDung tích 350 ml"
    )
    assert reward.description == "Men lam.\n\tDung tích 350 ml"
    assert [p.code for p in loyal.loyalty.programs.list()] == ["default"]
    an = loyal.customers.add(name="Nguyễn Văn An")
    with pytest.raises(ValidationError, match="^note: contains a control character \\(U\\+0000"):
        loyal.loyalty.grant(an.id, 10, "Khiếu nại\x00 đơn SO-000042")
    assert ledger_count(loyal) == 0
