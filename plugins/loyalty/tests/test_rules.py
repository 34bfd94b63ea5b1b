"""The earn rules in their documented order, on the pure calculation (no database): what an order earns."""

from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import attrs
from loyalty_testkit import Line, Order

from crmkit_loyalty.earning import order_earnings, refund_share
from crmkit_loyalty.records import Program, Rule, Tier

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")

PROGRAM = Program(
    id=1,
    code="default",
    name="Khách hàng thân thiết",
    currency="VND",
    earn_points=Decimal(1),
    earn_amount_minor=10_000,
    rounding="floor",
    point_decimals=0,
    include_tax=True,
    expiry_days=365,
    tier_basis="points",
    tier_window_days=365,
    point_value_minor=500,
    auto_enroll=True,
    active=True,
    created_at=datetime(2026, 1, 1, tzinfo=UTC),
)
MEMBER = Tier("member", "Member", 0, 0, Decimal(1))
AN_ORDINARY_DAY = datetime(2026, 4, 14, 3, 0, tzinfo=UTC)


def rule(kind, **settings):
    fields = {
        "id": 1,
        "program": "default",
        "kind": kind,
        "target": None,
        "multiplier": None,
        "bonus_points": None,
        "amount_minor": None,
        "starts_on": None,
        "ends_on": None,
        "active": True,
    }
    return Rule(**{**fields, **settings})


def earned(
    total, *, rules=(), program=PROGRAM, tier=MEMBER, birth_date=None, placed_at=AN_ORDINARY_DAY, zone=HANOI, **order
):
    result = order_earnings(program, rules, tier, Order(1, 1, total, placed_at, **order), birth_date, zone)
    return [(e.reason, e.units) for e in result]


def test_tax_is_included_unless_the_program_excludes_it():
    assert earned(1_100_000, tax_minor=100_000) == [("purchase", 110)]
    assert earned(1_100_000, tax_minor=100_000, program=attrs.evolve(PROGRAM, include_tax=False)) == [("purchase", 100)]


def test_below_the_minimum_order_nothing_is_earned_and_no_bonus_paid():
    rules = (rule("min_order", amount_minor=200_000), rule("birthday", bonus_points=50))
    assert earned(199_999, rules=rules, birth_date=date(1990, 4, 14)) == [("purchase", 0)]
    assert earned(200_000, rules=rules, birth_date=date(1990, 4, 14)) == [("purchase", 20), ("birthday:2026", 50)]


def test_product_rule_beats_category_rule_and_lines_are_weighted_by_their_share():
    rules = (
        rule("category", target="Cà phê", multiplier=Decimal(2)),
        rule("product", target="CF-ARA-250", multiplier=Decimal(3)),
    )
    mixed = (Line("CF-ROB-500", 600_000, category="cà phê"), Line("GAO-ST25-5", 400_000, category="Gạo"))
    assert earned(1_000_000, rules=rules, lines=mixed) == [("purchase", 120 + 40)]
    arabica = (Line("CF-ARA-250", 500_000, category="Cà phê"),)
    assert earned(500_000, rules=rules, lines=arabica) == [("purchase", 150)]
    by_id = (rule("product", target="42", multiplier=Decimal(2)),)
    assert earned(500_000, rules=by_id, lines=(Line("X", 500_000, product_id=42),)) == [("purchase", 100)]


def test_an_order_discount_is_spread_over_the_lines():
    rules = (rule("category", target="Cà phê", multiplier=Decimal(2)),)
    lines = (Line("CF-ROB-500", 500_000, category="Cà phê"), Line("GAO-ST25-5", 500_000, category="Gạo"))
    assert earned(800_000, rules=rules, lines=lines) == [("purchase", 120)]  # 80 base points × 1.5


def test_tier_and_day_multipliers_apply_in_order_and_days_do_not_stack():
    gold = Tier("gold", "Gold", 2, 2000, Decimal("1.25"))
    rules = (rule("occasion", target="tet", multiplier=Decimal(3)), rule("birthday", multiplier=Decimal(2)))
    first_day_of_tet = datetime(2026, 2, 17, 3, 0, tzinfo=UTC)
    assert earned(100_000, rules=rules, tier=gold, placed_at=first_day_of_tet, birth_date=date(1988, 2, 17)) == [
        ("purchase", 37)
    ]  # 10 × 1.25 × 3 = 37.5, floored; not × 2 more for the birthday
    assert earned(100_000, rules=rules, tier=gold, birth_date=date(1988, 2, 17)) == [("purchase", 12)]


def test_occasion_bonuses_are_named_by_year():
    rules = (
        rule("occasion", target="womens_day", multiplier=Decimal("1.5"), bonus_points=20),
        rule("occasion", target="10-20", bonus_points=15),
    )
    assert earned(100_000, rules=rules, placed_at=datetime(2026, 3, 7, 18, 0, tzinfo=UTC)) == [
        ("purchase", 15),
        ("occasion:womens_day:2026", 20),
    ]
    assert earned(100_000, rules=rules, placed_at=datetime(2027, 10, 20, 3, 0, tzinfo=UTC)) == [
        ("purchase", 10),
        ("occasion:10-20:2027", 15),
    ]


def test_the_day_of_an_order_is_the_business_s_day():
    """18:00 UTC on 7 March is already 8/3 in Hà Nội, but still 7 March for a business in New York."""
    rules = (rule("occasion", target="womens_day", multiplier=Decimal(2)),)
    evening = datetime(2026, 3, 7, 18, 0, tzinfo=UTC)
    assert earned(100_000, rules=rules, placed_at=evening) == [("purchase", 20)]
    assert earned(100_000, rules=rules, placed_at=evening, zone=ZoneInfo("America/New_York")) == [("purchase", 10)]


def test_rules_apply_only_inside_their_dates_and_while_active():
    rules = (
        rule("category", target="Gạo", multiplier=Decimal(2), starts_on=date(2026, 1, 1), ends_on=date(2026, 1, 31)),
        rule("category", target="Gạo", multiplier=Decimal(5), active=False),
    )
    rice = (Line("GAO-ST25-5", 100_000, category="Gạo"),)
    assert earned(100_000, rules=rules, lines=rice, placed_at=datetime(2026, 1, 31, 12, 0, tzinfo=UTC)) == [
        ("purchase", 20)
    ]
    assert earned(100_000, rules=rules, lines=rice, placed_at=datetime(2026, 1, 31, 17, 0, tzinfo=UTC)) == [
        ("purchase", 10)
    ]  # 1 February 00:00 in Vietnam


def test_rounding_rules():
    for rounding, expected in (("floor", [1, 1]), ("round", [2, 1]), ("ceil", [2, 2])):
        program = attrs.evolve(PROGRAM, rounding=rounding)
        assert [earned(total, program=program)[0][1] for total in (15_500, 14_999)] == expected, rounding


def test_fractional_points_are_kept_to_the_programs_decimals():
    program = attrs.evolve(PROGRAM, point_decimals=2)
    assert earned(15_555, program=program) == [("purchase", 155)]  # units: 1.55 points
    assert program.points(155) == Decimal("1.55")


def test_free_orders_earn_nothing():
    assert earned(0) == []


def test_refund_share_is_proportional_on_the_running_total():
    assert refund_share(PROGRAM, 155, 1_555_000, 1_555_000, 500_000) == (49, 500_000)
    assert refund_share(PROGRAM, 155, 1_555_000, 1_555_000, 1_000_000) == (99, 1_000_000)
    assert refund_share(PROGRAM, 155, 1_555_000, 1_555_000, 2_000_000) == (155, 1_555_000)


def test_lunar_and_founding_day_occasions_come_from_the_core_calendar():
    """Trung thu 2026 is 25/9/2026 (15/8 âm lịch); the founding day is the CRM's setting."""
    from crmkit_loyalty.catalog import RuleSchema

    target = RuleSchema().load({"kind": "occasion", "target": "Tết Trung Thu", "multiplier": "2"})["target"]
    assert target == "trung_thu"
    rules = (
        rule("occasion", target=target, multiplier=Decimal(2)),
        rule("occasion", target="founding_day", bonus_points=30),
        rule(
            "occasion",
            target=RuleSchema().load({"kind": "occasion", "target": "30/4", "bonus_points": 5})["target"],
            bonus_points=5,
        ),
    )
    mid_autumn = datetime(2026, 9, 25, 3, 0, tzinfo=UTC)
    assert earned(100_000, rules=rules, placed_at=mid_autumn) == [("purchase", 20)]
    assert earned(100_000, rules=rules, placed_at=datetime(2026, 9, 26, 3, 0, tzinfo=UTC)) == [("purchase", 10)]
    founded = datetime(2026, 9, 15, 3, 0, tzinfo=UTC)
    assert earned(100_000, rules=rules, placed_at=founded) == [("purchase", 10)]  # no founding day set
    with_founding = order_earnings(PROGRAM, rules, MEMBER, Order(1, 1, 100_000, founded), None, HANOI, founding=(15, 9))
    assert [(e.reason, e.units) for e in with_founding] == [("purchase", 10), ("occasion:founding_day:2026", 30)]
    assert earned(100_000, rules=rules, placed_at=datetime(2026, 4, 30, 3, 0, tzinfo=UTC)) == [
        ("purchase", 10),
        ("occasion:04-30:2026", 5),
    ]
