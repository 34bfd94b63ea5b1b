"""Segments evaluated in the database (SQLite and PostgreSQL): every kind of field, saved segments, sample, export."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta

import campaigns_testkit as kit
import pytest
import sqlalchemy as sa

from crmkit import Conflict, NotFound, Plugin, ValidationError, hookimpl
from crmkit.core.tables import customers
from crmkit.testing import add_user
from crmkit_campaigns.segment_sql import shift

pytestmark = pytest.mark.crmkit_plugins("campaigns")


class _TierHooks:
    @hookimpl
    def crmkit_segment_fields(self):
        spend = (
            sa.select(sa.func.coalesce(sa.func.sum(kit.purchases.c.amount_minor), 0))
            .where(kit.purchases.c.customer_id == customers.c.id)
            .scalar_subquery()
        )
        return {"tier": sa.case((customers.c.id % 2 == 0, "Vàng"), else_="Bạc"), "spend": spend}


TIERS = Plugin(name="tiers", hooks=(_TierHooks(),))


@pytest.fixture
def town(crm):
    """Customers spread over spellings, ages, tags and consents; one owned by the employee lan.nguyen."""
    add_user(crm, "lan.nguyen", roles=["sales"])
    today = crm.today()
    add = crm.customers.add
    made = {
        "an": add(
            name="Nguyễn Văn An",
            email="an@example.vn",
            city="Hà Nội",
            gender="male",
            birth_date=shift(today, months=-12 * 30),
            tags=["vip", "Tết-2025"],
            consents={"email": True},
        ),
        "binh": add(
            name="Trần Thị Bình",
            email="binh@example.vn",
            city="HÀ NỘI",
            gender="female",
            birth_date=shift(today, months=-12 * 40),
            consents={"email": False, "sms": True},
        ),
        "john": add(
            name="John Smith",
            phone="0912345678",
            city="Ha Noi",
            lifecycle_stage="customer",
            birth_date=shift(today, months=-12 * 41),
            tags=["tet-2025"],
        ),  # 41 today
        "dung": add(
            name="Lê Dũng",
            email="dung@example.vn",
            city="Đà Nẵng",
            province="Đà Nẵng",
            birth_date=date(1990, 2, 14),
            consents={"email": True},
        ),
        "org": add(name="Công ty TNHH Sao Mai", kind="organization", city="Huế", owner="lan.nguyen"),
    }
    crm.interactions.log(made["an"].id, "phone", occurred_at=datetime.now(UTC) - timedelta(days=3))
    crm.interactions.log(made["dung"].id, "email", occurred_at=datetime.now(UTC) - timedelta(days=200))
    return crm, made


def ids(crm, expression):
    """Names of the customers an expression selects (through the real count, sample and export paths)."""
    segments = crm.campaigns.segments
    out = io.StringIO()
    exported = segments.export(out, expression=expression, format="jsonl")
    names = sorted(json.loads(line)["name"] for line in out.getvalue().splitlines())
    assert segments.count(expression=expression) == exported == len(names)
    return names


CASES = [
    ('city = "ha noi"', ["John Smith", "Nguyễn Văn An", "Trần Thị Bình"]),
    ('city = "HÀ NỘI" and has consent "email"', ["Nguyễn Văn An"]),
    ('city != "Hà Nội"', ["Công ty TNHH Sao Mai", "Lê Dũng"]),
    ('city in ("da nang", "HUE")', ["Công ty TNHH Sao Mai", "Lê Dũng"]),
    ('province is null and city contains "noi"', ["John Smith", "Nguyễn Văn An", "Trần Thị Bình"]),
    ('name = "nguyen van an"', ["Nguyễn Văn An"]),
    ('name contains "thi"', ["Trần Thị Bình"]),
    ('name starts with "le"', ["Lê Dũng"]),
    ('tag "TET-2025"', ["John Smith", "Nguyễn Văn An"]),
    ('not tag "vip" and kind = "person"', ["John Smith", "Lê Dũng", "Trần Thị Bình"]),
    ('has consent "sms" or has phone', ["John Smith", "Trần Thị Bình"]),
    ("age between 30 and 40", ["Lê Dũng", "Nguyễn Văn An", "Trần Thị Bình"]),
    ("age = 40", ["Trần Thị Bình"]),
    ("age > 40", ["John Smith"]),
    ("age <= 30", ["Nguyễn Văn An"]),
    ("not age >= 35", ["Công ty TNHH Sao Mai", "Nguyễn Văn An"]),
    ("birth_month = 2 and birth_date < 1991-01-01", ["Lê Dũng"]),
    ('gender = "Female" or gender is null', ["Công ty TNHH Sao Mai", "John Smith", "Lê Dũng", "Trần Thị Bình"]),
    ('lifecycle_stage in ("customer", "churned")', ["John Smith"]),
    ('owner = "lan.nguyen"', ["Công ty TNHH Sao Mai"]),
    ('owner = "LAN.NGUYEN"', ["Công ty TNHH Sao Mai"]),  # usernames are lower case; what is typed need not be
    ('owner is null and kind = "organization"', []),
    ("last_interaction_at >= 30 days ago", ["Nguyễn Văn An"]),
    ("last_interaction_at < 30 days ago", ["Lê Dũng"]),
    ("interaction_count = 0", ["Công ty TNHH Sao Mai", "John Smith", "Trần Thị Bình"]),
    (
        "created_at = today and created_at <= now",
        ["Công ty TNHH Sao Mai", "John Smith", "Lê Dũng", "Nguyễn Văn An", "Trần Thị Bình"],
    ),
    ("created_at > today", []),
]


def test_expressions_select_the_right_customers(town):
    crm, _ = town
    for expression, expected in CASES:  # one database for all cases: they only read
        assert ids(crm, expression) == expected, expression


def test_merged_and_erased_customers_are_never_in_a_segment(town):
    crm, made = town
    crm.customers.merge(made["an"].id, made["john"].id)
    crm.customers.erase(made["binh"].id)
    assert ids(crm, 'city = "ha noi"') == ["Nguyễn Văn An"]


BAD = [
    ('provnce = "Hà Nội"', 1, "unknown field 'provnce' (did you mean 'province'?); known fields: age, birth_date"),
    ('age = "ba mươi"', 7, 'age takes a number, but "ba mươi" is text'),
    ("city = 12", 8, 'city takes text, but 12 is a number (quote it: "12")'),
    ('city > "Huế"', 6, "operator '>' does not apply to city (text)"),
    ("birth_date > 2025-01-01T10:00", 14, "birth_date takes a date or a relative date"),
    ("created_at contains 2025-01-01", 12, "operator 'contains' does not apply to created_at (datetime)"),
    ('gender = "femal"', 10, "unknown gender 'femal' (did you mean 'female'?); gender is one of: female, male, other"),
    ('has consent "emial"', 13, "unknown channel 'emial' (known: email, phone"),
    ("age = 30.5", 7, "age is a whole number of years"),
]


def test_bad_expressions_are_refused_with_the_column(town):
    crm, _ = town
    for expression, column, message in BAD:
        with pytest.raises(ValidationError) as caught:
            crm.campaigns.segments.count(expression=expression)
        assert f"column {column}: " in str(caught.value) and message in str(caught.value), expression


def test_plugin_fields_are_typed_from_their_sql(crm_factory):
    crm = crm_factory(plugins=["campaigns", TIERS, kit.PURCHASES])
    a, b, c = (crm.customers.add(name=n) for n in ("An", "Bình", "Chi"))
    kit.buy(crm, a.id, 2_000_000, datetime.now(UTC))
    kit.buy(crm, c.id, 900_000, datetime.now(UTC))
    segments = crm.campaigns.segments
    assert segments.count(expression="spend >= 1000000") == 1
    assert segments.count(expression="spend between 1 and 3000000 and not spend > 1000000") == 1
    assert segments.count(expression='tier = "vang"') == 1  # text: accent- and case-insensitive
    assert {segments.fields()["spend"].type, segments.fields()["tier"].type} == {"number", "text"}
    with pytest.raises(ValidationError, match=r'column 9: spend takes a number, but "nhiều" is text'):
        segments.count(expression='spend > "nhiều"')
    assert "spend" in str(pytest.raises(ValidationError, segments.count, expression="spnd > 1").value)
    assert b.id not in [r["id"] for r in segments.sample(expression="spend > 0")]


def test_saved_segments_are_checked_listed_updated_and_deleted(town):
    crm, _ = town
    segments = crm.campaigns.segments
    with pytest.raises(ValidationError, match="column 8: expected a value after '='"):
        segments.create("Hỏng", "city = ")
    assert segments.list() == []  # nothing half-written
    saved = segments.create("Khách Hà Nội", '  city = "Hà Nội"  ', description="Thủ đô")
    assert segments.count("Khách Hà Nội") == segments.count(saved.id) == 3
    with pytest.raises(Conflict):
        segments.create("Khách Hà Nội", 'city = "Huế"')
    updated = segments.update("Khách Hà Nội", expression='city = "Hà Nội" and has consent "email"')
    assert segments.count(updated.id) == 1 and updated.description == "Thủ đô"
    crm.campaigns.set_channel("email", "file", directory="/tmp/unused-outbox")
    crm.campaigns.create("Dùng", channel="email", segment=saved.id, body="Chào {{ first_name }}")
    with pytest.raises(Conflict, match="audience of campaign"):
        segments.delete(saved.id)
    other = segments.create("Huế", 'city = "hue"')
    segments.delete("Huế")
    with pytest.raises(NotFound):
        segments.get(other.id)
    assert [s.name for s in segments.list()] == ["Khách Hà Nội"]


def test_sample_and_export(town):
    crm, made = town
    segments = crm.campaigns.segments
    sample = segments.sample(expression='city = "ha noi"', limit=2)
    assert len(sample) == 2 and {r["city"] for r in sample} <= {"Hà Nội", "HÀ NỘI", "Ha Noi"}
    out = io.StringIO()
    assert segments.export(out, expression='city = "ha noi"') == 3
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert list(rows[0]) == ["id", "name", "email", "phone", "city", "province"]
    john = next(r for r in rows if r["name"] == "John Smith")
    assert (
        john["phone"] == "'+84912345678" and john["email"] == ""
    )  # quoted: Excel reads a leading + as a formula and int(john["id"]) == made["john"].id
    with pytest.raises(ValidationError, match="format"):
        segments.export(io.StringIO(), format="xlsx")
    with pytest.raises(ValidationError, match="limit"):
        segments.sample(limit=0)
