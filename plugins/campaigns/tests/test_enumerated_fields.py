"""Enumerated segment fields (``crmkit.core.segments.SegmentField`` with choices): an unknown value is refused
with the closest suggested instead of matching nobody — core fields, analytics' and loyalty's, a plugin's own."""

from __future__ import annotations

import campaigns_testkit as kit
import pytest
import sqlalchemy as sa

from crmkit import Plugin, ValidationError, hookimpl
from crmkit.core.segments import SegmentField, match_choice
from crmkit.core.tables import customers

pytestmark = pytest.mark.crmkit_plugins("campaigns")


def refused(crm, expression: str) -> str:
    with pytest.raises(ValidationError) as caught:
        crm.campaigns.segments.count(expression=expression)
    return str(caught.value)


def test_customer_type_loyl_is_refused_suggesting_loyal(crm_factory):
    crm = crm_factory(plugins=["sales", "analytics", "campaigns"])
    kit.people(crm, 3)  # no purchases: prospects
    crm.analytics.customer_types()
    segments = crm.campaigns.segments
    message = refused(crm, 'customer_type = "loyl"')
    assert "column 17: unknown customer_type 'loyl' (did you mean 'loyal'?)" in message
    assert "customer_type is one of: loyal, potential, new, prospect, at_risk, lost" in message
    assert segments.count(expression='customer_type = "prospect"') == 3
    assert segments.count(expression='customer_type in ("At risk", "Prospect")') == 3  # case, space for _
    assert segments.count(expression='customer_type != "loyal"') == 3
    assert "did you mean 'champions'?" in refused(crm, 'rfm_segment = "champion"')
    assert "unknown customer_type 'atrisk2' (did you mean 'at_risk'?)" in refused(
        crm, 'not customer_type in ("new", "at risk", "atrisk2")'
    )
    listed = {f.name: f for f in segments.fields().values()}
    assert listed["customer_type"].type == "choice" and listed["customer_type"].source == "plugin"


def test_loyalty_tier_takes_the_default_program_s_tier_codes(crm_factory):
    crm = crm_factory(plugins=["sales", "loyalty", "campaigns"])
    crm.loyalty.programs.create("default", "Khách hàng thân thiết", point_value_minor=500)
    codes = [tier.code for tier in crm.loyalty.programs.tiers()]
    assert "silver" in codes
    member, _ = kit.people(crm, 2)
    crm.loyalty.grant(member.id, 10, "chào mừng")  # a member, in the lowest tier (new customers may be enrolled too)
    message = refused(crm, 'loyalty_tier = "silvr"')
    assert "unknown loyalty_tier 'silvr' (did you mean 'silver'?)" in message
    assert f"loyalty_tier is one of: {', '.join(codes)}" in message
    lowest = crm.campaigns.segments.count(expression=f'loyalty_tier = "{codes[0]}"')
    assert lowest >= 1 and crm.campaigns.segments.count(expression=f'loyalty_tier = "{codes[0].upper()}"') == lowest
    # consumers that only need SQL still get a bare expression
    assert not isinstance(crm.hooks.segment_fields()["loyalty_tier"], SegmentField)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ('lifecycle_stage = "custmer"', "unknown lifecycle_stage 'custmer' (did you mean 'customer'?)"),
        ('kind = "persn"', "unknown kind 'persn' (did you mean 'person'?)"),
        ('gender in ("male", "femal")', "column 20: unknown gender 'femal' (did you mean 'female'?)"),
        ('gender = "xyz"', "unknown gender 'xyz'; gender is one of: female, male, other"),
    ],
)
def test_core_enumerated_fields_suggest_the_closest_value(crm, expression, message):
    assert message in refused(crm, expression)


class _Favourites:
    @hookimpl
    def crmkit_segment_fields(self):
        return {
            "favourite": SegmentField(
                sa.case((customers.c.id % 2 == 0, "cà phê"), else_="trà"), choices=("cà phê", "trà")
            ),
            "shelf": SegmentField(sa.literal("A1"), choices=lambda: ["A1", "B2"]),
        }


def test_a_plugin_declares_its_own_choices_fixed_or_read_when_used(crm_factory):
    crm = crm_factory(plugins=["campaigns", Plugin(name="favourites", hooks=(_Favourites(),))])
    kit.people(crm, 4)
    segments = crm.campaigns.segments
    assert segments.count(expression='favourite = "Ca Phe"') == 2  # accents and case aside, SQL gets 'cà phê'
    assert "(did you mean 'cà phê'?)" in refused(crm, 'favourite = "ca fe"')
    assert segments.count(expression='shelf = "a1"') == 4
    assert "unknown shelf 'C3'; shelf is one of: A1, B2" in refused(crm, 'shelf = "C3"')
    assert segments.fields()["shelf"].values() == ("A1", "B2")


def test_match_choice_is_the_core_s_matching_for_any_consumer():
    assert match_choice("customer_type", "At-Risk", ("loyal", "at_risk")) == "at_risk"
    with pytest.raises(ValidationError) as caught:
        match_choice("customer_type", "loyl", ("loyal", "at_risk"))
    assert caught.value.errors == {
        "customer_type": [
            "unknown customer_type 'loyl' (did you mean 'loyal'?); customer_type is one of: loyal, at_risk"
        ]
    }
    with pytest.raises(TypeError):
        SegmentField(sa.literal(1), choices="abc")
