"""``crm.customers``: what an embedding developer or integrator sees when creating and changing customers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import attrs
import pytest
import sqlalchemy as sa
from marshmallow import fields, validate

import crmkit
from crmkit import Plugin, hookimpl
from crmkit.core import tables as t
from crmkit.testing import FrozenClock, add_user

ICT = timezone(timedelta(hours=7))


def count(crm: Any, table: sa.Table) -> int:
    with crm.reading() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def everything(crm: Any) -> dict[str, int]:
    """Row counts of every core table a customer write touches."""
    return {
        table.name: count(crm, table)
        for table in (
            t.customers,
            t.contact_points,
            t.addresses,
            t.tags,
            t.consents,
            t.memberships,
            t.search_keys,
            t.audit_log,
        )
    }


# -- creating ------------------------------------------------------------------------------


def test_add_person_normalizes_what_it_stores(crm: Any) -> None:
    add_user(crm, "lan")
    an = crm.customers.add(
        name="  Nguyễn   Văn An ",
        email="An.Nguyen@Example.VN",
        phones=["0912 345 678", "+84 24 3825 1234"],
        birth_date="15/08/1990",
        gender="Nam",
        tags=["vip", "hanoi", "vip"],
        owner="lan",
        lifecycle_stage="customer",
        addresses=[
            {
                "line1": "12 Hàng Bài",
                "ward": "Tràng Tiền",
                "district": "Hoàn Kiếm",
                "province": "Hà Nội",
                "country": "VN",
            }
        ],
        city="Hà Nội",
        country="vn",
    )
    assert an.name == "Nguyễn Văn An"
    assert an.emails == ("an.nguyen@example.vn",)
    assert an.phones == ("+84912345678", "+842438251234")
    assert an.phone == "+84912345678"
    assert an.birth_date == date(1990, 8, 15)
    assert an.gender == "male"
    assert an.tags == ("hanoi", "vip")
    assert (an.owner, an.lifecycle_stage, an.kind, an.country) == ("lan", "customer", "person", "VN")
    assert an.addresses[0].district == "Hoàn Kiếm"
    assert crm.customers.get(an.id) == an


def test_defaults_and_timestamps_are_aware_utc(crm_factory: Any, frozen_clock: FrozenClock) -> None:
    crm = crm_factory(clock=frozen_clock)
    add_user(crm, "minh")
    bich = crm.customers.add(name="Trần Thị Bích")
    assert (bich.kind, bich.lifecycle_stage, bich.status) == ("person", "lead", "active")
    assert bich.created_at.utcoffset() == timedelta(0) and bich.updated_at.utcoffset() == timedelta(0)
    assert bich.created_at == bich.updated_at == frozen_clock()
    frozen_clock.advance(minutes=5)
    later = crm.customers.update(bich.id, owner="minh")
    assert later.created_at == bich.created_at
    assert later.updated_at == bich.updated_at + timedelta(minutes=5)


def test_name_is_built_from_its_parts_in_the_countrys_order(crm_factory: Any) -> None:
    vn = crm_factory()
    assert vn.customers.add(family_name="Lê", given_name="Hoa").name == "Lê Hoa"
    gb = crm_factory(default_country="GB")
    assert gb.customers.add(family_name="Smith", given_name="Jane").name == "Jane Smith"


def test_changing_a_name_part_updates_a_built_name_but_not_a_typed_one(crm: Any) -> None:
    built = crm.customers.add(family_name="Lê", given_name="Hoa")
    assert crm.customers.update(built.id, given_name="Hồng").name == "Lê Hồng"
    typed = crm.customers.add(name="Nguyễn Văn An", family_name="Nguyễn", given_name="An")
    changed = crm.customers.update(typed.id, given_name="Bình")
    assert (changed.name, changed.given_name, changed.family_name) == ("Nguyễn Văn An", "Bình", "Nguyễn")


@pytest.mark.parametrize(
    ("alias", "gender"),
    [
        ("Nữ", "female"),
        ("NỮ", "female"),
        ("nu", "female"),
        ("F", "female"),
        ("nam", "male"),
        ("Male", "male"),
        ("Khác", "other"),
    ],
)
def test_gender_accepts_vietnamese_and_english_spellings(crm: Any, alias: str, gender: str) -> None:
    assert crm.customers.add(name="Khách", gender=alias).gender == gender


def test_birth_date_accepts_iso_day_first_and_date_objects(crm: Any) -> None:
    assert crm.customers.add(name="A", birth_date="1990-08-15").birth_date == date(1990, 8, 15)
    assert crm.customers.add(name="B", birth_date="05/01/1985").birth_date == date(1985, 1, 5)
    assert crm.customers.add(name="C", birth_date=date(2001, 12, 31)).birth_date == date(2001, 12, 31)


def test_a_birth_date_is_refused_only_when_that_day_has_begun_nowhere(crm_factory: Any) -> None:
    crm = crm_factory(clock=FrozenClock("2026-10-31T10:30:00+00:00"))  # 00:30 on 1 November at UTC+14
    first_today = date(2026, 11, 1)  # where a day begins first (UTC+14), while it is still 31 October in UTC
    assert crm.customers.add(name="Bé Na", birth_date=first_today).birth_date == first_today
    with pytest.raises(crmkit.ValidationError) as info:
        crm.customers.add(name="Chưa sinh", birth_date=first_today + timedelta(days=1))
    assert "birth_date" in info.value.errors


def test_the_business_time_zone_is_a_checked_crm_setting(crm_factory: Any) -> None:
    crm = crm_factory(clock=FrozenClock("2026-10-31T16:30:00+00:00"))  # 23:30 in Hà Nội, 06:30 on 1/11 at UTC+14
    assert (crm.timezone.key, crm.today()) == ("Asia/Ho_Chi_Minh", date(2026, 10, 31))
    with pytest.raises(crmkit.ValidationError) as info:
        crm.set_setting("timezone", "Asia/Saigon_City")
    assert "timezone" in info.value.errors and crm.timezone.key == "Asia/Ho_Chi_Minh"
    crm.set_setting("timezone", "Pacific/Kiritimati")
    assert (crm.timezone.key, crm.today()) == ("Pacific/Kiritimati", date(2026, 11, 1))


def test_phones_take_the_crms_default_country(crm_factory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    assert crm_factory().customers.add(name="VN", phone="0912 345 678").phone == "+84912345678"
    assert crm_factory(default_country="GB").customers.add(name="GB", phone="020 7946 0123").phone == "+442079460123"
    monkeypatch.setenv("CRMKIT_DEFAULT_COUNTRY", "us")
    us = crm_factory()
    assert us.default_country == "US"
    assert us.customers.add(name="US", phone="(201) 555-0123").phone == "+12015550123"


def test_organizations_and_memberships(crm: Any) -> None:
    acme = crm.customers.add(name="Công ty TNHH Hoàng Long", kind="organization", lifecycle_stage="distributor")
    shop = crm.customers.add(name="Tạp hoá Minh Châu", kind="organization", lifecycle_stage="retailer")
    an = crm.customers.add(name="Nguyễn Văn An", organizations=[{"organization_id": acme.id, "role": "buyer"}])
    an = crm.customers.update(
        an.id, organizations=[{"organization_id": acme.id, "role": "buyer"}, {"organization_id": shop.id}]
    )
    assert [(m.organization_id, m.role) for m in an.organizations] == [(acme.id, "buyer"), (shop.id, None)]
    assert [p.name for p in crm.customers.members(acme.id)] == ["Nguyễn Văn An"]
    assert crm.customers.get(acme.id).kind == "organization"


def test_an_organization_listed_twice_is_one_membership(crm: Any) -> None:
    acme = crm.customers.add(name="Công ty Hoàng Long", kind="organization")
    an = crm.customers.add(
        name="Nguyễn Văn An",
        organizations=[{"organization_id": acme.id, "role": "buyer"}, {"organization_id": acme.id, "role": "owner"}],
    )
    assert [(m.organization_id, m.role) for m in an.organizations] == [(acme.id, "buyer")]


def test_a_membership_needs_an_organization(crm: Any) -> None:
    bich = crm.customers.add(name="Trần Thị Bích")
    before = everything(crm)
    with pytest.raises(crmkit.ValidationError) as exc:
        crm.customers.add(name="Nguyễn Văn An", organizations=[{"organization_id": bich.id}])
    assert "organizations" in exc.value.errors and "not an organization" in str(exc.value)
    with pytest.raises(crmkit.ValidationError, match="no customer 9999"):
        crm.customers.add(name="Nguyễn Văn An", organizations=[{"organization_id": 9999}])
    assert everything(crm) == before


def test_external_id_is_unique(crm: Any) -> None:
    first = crm.customers.add(name="Lê Hoa", external_id="KH-0001")
    other = crm.customers.add(name="Phạm Minh", external_id="KH-0002")
    before = everything(crm)
    with pytest.raises(crmkit.Conflict, match="KH-0001"):
        crm.customers.add(name="Lê Hoa (copy)", external_id="KH-0001")
    with pytest.raises(crmkit.Conflict, match="KH-0001"):
        crm.customers.update(other.id, external_id="KH-0001")
    assert everything(crm) == before
    assert crm.customers.get_by_external_id("KH-0001") == first
    with pytest.raises(crmkit.NotFound):
        crm.customers.get_by_external_id("KH-9999")


def test_unknown_customer_is_not_found(crm: Any) -> None:
    with pytest.raises(crmkit.NotFound, match="customer 404"):
        crm.customers.get(404)
    with pytest.raises(crmkit.NotFound):
        crm.customers.update(404, owner="lan")


# -- bad input -----------------------------------------------------------------------------

BAD_INPUT = [
    ("email", {"email": "an.nguyen@"}),
    ("emails", {"emails": ["an@example.vn", "not an email"]}),
    ("phone", {"phone": "12"}),
    ("phone", {"phone": "gọi tôi"}),
    ("phones", {"phones": ["0912345678", "0912"]}),
    ("birth_date", {"birth_date": "31/02/1990"}),
    ("birth_date", {"birth_date": "2999-01-01"}),
    ("birth_date", {"birth_date": "15/08/2999"}),
    ("birth_date", {"birth_date": "last spring"}),
    ("gender", {"gender": "robot"}),
    ("kind", {"kind": "robot"}),
    ("lifecycle_stage", {"lifecycle_stage": "vip"}),
    ("country", {"country": "Vietnam"}),
    ("tags", {"tags": ["vip", ""]}),
    ("consents", {"consents": {"pigeon": True}}),
    ("organizations", {"organizations": [{"organization_id": "acme"}]}),
    ("addresses", {"addresses": [{"city": "Hà Nội"}]}),
    ("nickname", {"nickname": "Bé"}),
    ("email", {"email": "an" * 130 + "@example.vn"}),
    ("city", {"city": "Thành phố " * 11}),
    ("owner", {"owner": "x" * 101}),
    ("addresses", {"addresses": [{"line1": "12 Hàng Bài", "district": "Quận " * 21}]}),
    ("organizations", {"organizations": [{"organization_id": 1, "role": "r" * 101}]}),
    ("name", {"name": "   "}),
]


def test_bad_input_names_the_field_and_writes_nothing(crm: Any) -> None:
    existing = crm.customers.add(name="Đặng Thu Hà", email="ha@example.vn")
    before = everything(crm)
    for field, data in BAD_INPUT:
        with pytest.raises(crmkit.ValidationError) as created:
            crm.customers.add({"name": "Nguyễn Văn An", **data})
        assert field in created.value.errors and field in str(created.value), (data, created.value.errors)
        with pytest.raises(crmkit.ValidationError) as updated:
            crm.customers.update(existing.id, data)
        assert field in updated.value.errors, (data, updated.value.errors)
    assert everything(crm) == before
    assert crm.customers.get(existing.id) == existing


def test_a_customer_needs_a_name(crm: Any) -> None:
    with pytest.raises(crmkit.ValidationError) as exc:
        crm.customers.add(email="an@example.vn")
    assert list(exc.value.errors) == ["name"]
    assert count(crm, t.customers) == 0


# -- changing ------------------------------------------------------------------------------


def test_update_records_before_and_after_in_the_audit_log(crm: Any) -> None:
    add_user(crm, "lan")
    add_user(crm, "minh")
    an = crm.customers.add(name="Nguyễn Văn An", email="an@example.vn", owner="lan")
    updated = crm.customers.update(an.id, owner="minh", email="an.nguyen@example.vn", lifecycle_stage="customer")
    assert (updated.owner, updated.emails, updated.lifecycle_stage) == ("minh", ("an.nguyen@example.vn",), "customer")
    entry = crm.audit.entries(customer_id=an.id).items[0]
    assert entry.action == "update"
    assert entry.changes["before"] == {"owner": "lan", "emails": ["an@example.vn"], "lifecycle_stage": "lead"}
    assert entry.changes["after"] == {
        "owner": "minh",
        "emails": ["an.nguyen@example.vn"],
        "lifecycle_stage": "customer",
    }


def test_an_update_that_changes_nothing_writes_nothing(crm: Any) -> None:
    an = crm.customers.add(
        name="Nguyễn Văn An",
        email="an@example.vn",
        phone="0912345678",
        tags=["vip"],
        consents={"email": True},
        attributes={"zalo": "an.nguyen"},
    )
    before = everything(crm)
    same = crm.customers.update(
        an.id,
        name="Nguyễn Văn An",
        email="AN@example.vn",
        phone="+84 912 345 678",
        tags=["vip"],
        consents={"email": True},
        attributes={"zalo": "an.nguyen"},
    )
    assert same == an
    assert everything(crm) == before
    assert crm.customers.get(an.id).updated_at == an.updated_at


def test_add_and_remove_tags(crm: Any) -> None:
    an = crm.customers.add(name="Nguyễn Văn An", tags=["hanoi"])
    assert crm.customers.add_tags(an.id, "vip", "hanoi", "b2b").tags == ("b2b", "hanoi", "vip")
    assert crm.customers.remove_tags(an.id, "hanoi", "absent").tags == ("b2b", "vip")
    assert crm.customers.get(an.id).tags == ("b2b", "vip")


# -- consent -------------------------------------------------------------------------------


def test_consent_per_channel_with_time_and_source(crm: Any) -> None:
    an = crm.customers.add(name="Nguyễn Văn An", consents={"email": True, "sms": False}, source="shop form")
    assert an.has_consent("email") and not an.has_consent("sms") and not an.has_consent("phone")
    assert an.consents["email"].source == "shop form"
    assert an.consents["email"].at.utcoffset() == timedelta(0)

    given = datetime(2024, 3, 8, 9, 30, tzinfo=ICT)
    consent = crm.customers.set_consent(an.id, "sms", True, source="hotline call", at=given)
    assert consent.granted and consent.at == given
    withdrawn = datetime(2024, 6, 1, 14, 0, tzinfo=ICT)
    crm.customers.set_consent(an.id, "sms", False, source="reply STOP", at=withdrawn)
    now = crm.customers.get(an.id)
    assert not now.has_consent("sms")
    assert (now.consents["sms"].at, now.consents["sms"].source) == (withdrawn, "reply STOP")
    assert now.consents["sms"].at.tzinfo == UTC
    assert now.consents["email"] == an.consents["email"]  # the other channel keeps its time and source

    history = [e.changes for e in reversed(crm.audit.entries(customer_id=an.id).items) if e.action == "consent"]
    assert [(h["channel"], h["granted"], h["source"]) for h in history] == [
        ("sms", True, "hotline call"),
        ("sms", False, "reply STOP"),
    ]
    assert history[0]["at"] == given.astimezone(UTC).isoformat()


def test_consent_update_keeps_the_time_of_unchanged_channels(crm: Any) -> None:
    an = crm.customers.add(name="Nguyễn Văn An", consents={"email": True})
    later = crm.customers.update(an.id, consents={"email": True, "sms": True})
    assert later.consents["email"] == an.consents["email"]
    assert later.has_consent("sms")


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("pigeon", True), "channel"),
        (("email", True, ""), "source"),
        (("email", True, "web", datetime(2024, 3, 8, 9, 30)), "at"),
    ],
)
def test_bad_consent_names_the_field(crm: Any, args: tuple[Any, ...], field: str) -> None:
    an = crm.customers.add(name="Nguyễn Văn An")
    channel, granted, *rest = args
    source = rest[0] if rest else "web"
    at = rest[1] if len(rest) > 1 else None
    with pytest.raises(crmkit.ValidationError) as exc:
        crm.customers.set_consent(an.id, channel, granted, source=source, at=at)
    assert field in exc.value.errors
    assert crm.customers.get(an.id).consents == {}


# -- attributes ------------------------------------------------------------------------------


class _LoyaltyFields:
    @hookimpl
    def crmkit_customer_fields(self) -> dict[str, fields.Field]:
        return {
            "card": fields.String(validate=validate.Regexp(r"^LC\d{6}$")),
            "joined_on": fields.Date(),
            "points": fields.Integer(validate=validate.Range(min=0)),
        }


ATTRIBUTE_PLUGIN = Plugin("probe", hooks=_LoyaltyFields())


def test_attributes_are_validated_by_plugin_fields_and_free_keys_kept(crm_factory: Any) -> None:
    crm = crm_factory(plugins=[ATTRIBUTE_PLUGIN])
    an = crm.customers.add(
        name="Nguyễn Văn An",
        attributes={"card": "LC123456", "joined_on": "2023-11-20", "points": "150", "zalo": "an.ng"},
    )
    assert an.attributes == {"card": "LC123456", "joined_on": "2023-11-20", "points": 150, "zalo": "an.ng"}
    merged = crm.customers.update(an.id, attributes={"points": 200, "zalo": None, "facebook": "an.nguyen"})
    assert merged.attributes == {"card": "LC123456", "joined_on": "2023-11-20", "points": 200, "facebook": "an.nguyen"}
    before = everything(crm)
    for bad in ({"card": "123"}, {"points": -5}, {"joined_on": "someday"}):
        with pytest.raises(crmkit.ValidationError) as exc:
            crm.customers.add(name="Trần Thị Bích", attributes=bad)
        assert set(exc.value.errors) == {"attributes"} and list(bad)[0] in str(exc.value)
    assert everything(crm) == before


def test_without_the_plugin_attributes_are_free(crm: Any) -> None:
    assert crm.customers.add(name="A", attributes={"card": "whatever"}).attributes == {"card": "whatever"}


class _Veto:
    @hookimpl
    def crmkit_customer_before_save(self, customer: Any, changes: dict[str, Any]) -> None:
        if "test" in changes.get("tags", ()):
            raise crmkit.ValidationError("test customers are not allowed here", field="tags")


def test_a_plugin_can_veto_a_save_and_nothing_is_written(crm_factory: Any) -> None:
    crm = crm_factory(plugins=[Plugin("probe", hooks=_Veto())])
    an = crm.customers.add(name="Nguyễn Văn An")
    before = everything(crm)
    with pytest.raises(crmkit.ValidationError, match="tags: test customers"):
        crm.customers.add(name="Test", tags=["test"])
    with pytest.raises(crmkit.ValidationError):
        crm.customers.add_tags(an.id, "test")
    assert everything(crm) == before


# -- customer 360 ----------------------------------------------------------------------------


class _ProfileSection:
    @hookimpl
    def crmkit_customer_profile(self, customer: Any) -> dict[str, Any]:
        return {"probe": {"greeting": f"Xin chào {customer.name}"}}


def test_profile_shows_recent_interactions_counts_and_plugin_sections(crm_factory: Any) -> None:
    crm = crm_factory(plugins=[Plugin("probe", hooks=_ProfileSection())])
    an = crm.customers.add(name="Nguyễn Văn An")
    twin = crm.customers.add(name="Nguyen Van An")
    start = datetime(2024, 1, 1, tzinfo=ICT)
    with crm.transaction():  # one commit for the lot: nested writes join it
        for n in range(53):
            crm.interactions.log(an.id, ("email", "phone", "chat")[n % 3], occurred_at=start + timedelta(hours=n))
    crm.interactions.log(twin.id, "sms", occurred_at=start - timedelta(days=1))
    crm.customers.merge(an.id, twin.id)
    profile = crm.customers.profile(twin.id)  # the merged id shows the kept customer
    assert profile.customer.id == an.id
    assert len(profile.interactions) == 50
    assert profile.interactions[0].occurred_at == start + timedelta(hours=52)
    assert dict(profile.interaction_counts) == {"email": 18, "phone": 18, "chat": 17, "sms": 1}
    assert profile.sections == {"probe": {"greeting": "Xin chào Nguyễn Văn An"}}


# -- duplicates ------------------------------------------------------------------------------


def test_duplicates_by_email_phone_and_near_identical_name(crm: Any) -> None:
    an = crm.customers.add(name="Nguyễn Văn An", email="an@example.vn", phone="0912 345 678", birth_date="1990-08-15")
    same_email = crm.customers.add(name="A. Nguyen", email="AN@EXAMPLE.VN")
    same_phone = crm.customers.add(name="Anh An", phone="+84 912 345 678")
    no_accents = crm.customers.add(name="Nguyen Van An", birth_date="15/08/1990")
    typo = crm.customers.add(name="Nguyễn Văn Ann")
    crm.customers.add(name="Nguyễn Thị Bích", email="bich@example.vn")
    crm.customers.add(name="Công ty Nguyễn Văn An", kind="organization")
    found = {d.other_id: d for d in crm.customers.duplicates(an.id)}
    assert set(found) == {same_email.id, same_phone.id, no_accents.id, typo.id}
    assert "email" in found[same_email.id].reason and "phone" in found[same_phone.id].reason
    assert found[no_accents.id].reason == "same name and birth date"
    assert "similar name" in found[typo.id].reason
    assert found[same_email.id].score > found[no_accents.id].score > found[typo.id].score
    assert all(d.customer_id == an.id for d in found.values())


def test_duplicate_pairs_across_the_database(crm: Any) -> None:
    an = crm.customers.add(name="Nguyễn Văn An", email="an@example.vn", phone="0912345678", birth_date="1990-08-15")
    twin = crm.customers.add(name="Nguyen Van An", email="an@example.vn", phone="0912 345 678")
    ha = crm.customers.add(name="Đặng Thu Hà", birth_date="1988-01-02")
    ha2 = crm.customers.add(name="DANG THU HA", birth_date="02/01/1988")
    crm.customers.add(name="Đặng Thu Hà", birth_date="1990-01-01")  # same name, another person
    other = crm.customers.add(name="Lê Hoa", phone="0912345678")
    pairs = {(d.customer_id, d.other_id): d for d in crm.customers.duplicate_pairs()}
    assert set(pairs) == {(an.id, twin.id), (an.id, other.id), (twin.id, other.id), (ha.id, ha2.id)}
    assert "email" in pairs[an.id, twin.id].reason
    assert "birth date" in pairs[ha.id, ha2.id].reason
    crm.customers.merge(an.id, twin.id)
    assert {(d.customer_id, d.other_id) for d in crm.customers.duplicate_pairs()} == {
        (an.id, other.id),
        (ha.id, ha2.id),
    }


def test_duplicates_are_found_among_thousands_of_similar_names(crm: Any) -> None:
    """A common family name fills the name block; the near-identical neighbour is still found."""
    now = datetime.now(UTC)
    with crm.transaction() as session:
        session.connection().execute(
            t.customers.insert(),
            [
                {
                    "kind": "person",
                    "name": f"Nguyễn A {i:04d}",
                    "name_key": f"nguyen a {i:04d}",
                    "lifecycle_stage": "lead",
                    "attributes": {},
                    "status": "active",
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(2100)
            ],
        )
    an = crm.customers.add(name="Nguyễn Văn An")
    twin = crm.customers.add(name="Nguyen Van An")
    assert [d.other_id for d in crm.customers.duplicates(an.id)] == [twin.id]


# -- merge -----------------------------------------------------------------------------------


class _MergeWatcher:
    def __init__(self) -> None:
        self.seen: list[tuple[int, int, int]] = []

    @hookimpl
    def crmkit_customers_merged(self, crm: Any, kept: Any, merged: Any, session: Any) -> None:
        # Inside the merge transaction: the core already moved the rows.
        moved = crm.interactions.timeline(kept.id, limit=100)
        self.seen.append((kept.id, merged.id, len(moved)))
        crm.audit.record(session, "repoint", "probe", merged.id, customer_id=kept.id)


class _MergeBreaker:
    @hookimpl
    def crmkit_customers_merged(self) -> None:
        raise RuntimeError("probe storage is down")


def _two_records_of_one_person(crm: Any) -> tuple[Any, Any, Any, Any]:
    add_user(crm, "lan")
    hoang_long = crm.customers.add(name="Công ty Hoàng Long", kind="organization")
    minh_chau = crm.customers.add(name="Tạp hoá Minh Châu", kind="organization")
    kept = crm.customers.add(
        name="Nguyễn Văn An",
        email="an@example.vn",
        phone="0912345678",
        tags=["vip"],
        organizations=[{"organization_id": hoang_long.id, "role": "buyer"}],
        addresses=[{"line1": "12 Hàng Bài", "province": "Hà Nội"}],
    )
    merged = crm.customers.add(
        name="Nguyen Van An",
        emails=["an@example.vn", "an.work@hoanglong.vn"],
        phone="0987 654 321",
        tags=["vip", "hanoi"],
        birth_date="1990-08-15",
        owner="lan",
        organizations=[{"organization_id": hoang_long.id}, {"organization_id": minh_chau.id}],
        addresses=[{"line1": "5 Lý Thường Kiệt", "province": "Hà Nội"}],
    )
    crm.customers.set_consent(kept.id, "email", True, source="web form", at=datetime(2024, 1, 5, tzinfo=ICT))
    crm.customers.set_consent(merged.id, "email", False, source="unsubscribe link", at=datetime(2024, 6, 1, tzinfo=ICT))
    crm.customers.set_consent(kept.id, "sms", True, source="shop", at=datetime(2024, 7, 1, tzinfo=ICT))
    crm.customers.set_consent(merged.id, "sms", False, source="old form", at=datetime(2023, 1, 1, tzinfo=ICT))
    crm.customers.set_consent(
        merged.id,
        "zalo" if "zalo" in crm.channels else "chat",
        True,
        source="chat",
        at=datetime(2024, 2, 1, tzinfo=ICT),
    )
    for channel in ("email", "phone"):
        crm.interactions.log(kept.id, channel, subject="kept")
    for channel in ("sms", "chat", "in_person"):
        crm.interactions.log(merged.id, channel, subject="merged")
    return kept, merged, hoang_long, minh_chau


def test_merge_keeps_everything_of_both_records(crm_factory: Any) -> None:
    watcher = _MergeWatcher()
    crm = crm_factory(plugins=[Plugin("probe", hooks=watcher)])
    kept, merged, hoang_long, minh_chau = _two_records_of_one_person(crm)
    result = crm.customers.merge(kept.id, merged.id)

    assert result.id == kept.id and result.name == "Nguyễn Văn An"
    assert set(result.emails) == {"an@example.vn", "an.work@hoanglong.vn"} and result.email == "an@example.vn"
    assert set(result.phones) == {"+84912345678", "+84987654321"} and result.phone == "+84912345678"
    assert result.tags == ("hanoi", "vip")
    assert {a.line1 for a in result.addresses} == {"12 Hàng Bài", "5 Lý Thường Kiệt"}
    assert {m.organization_id: m.role for m in result.organizations} == {hoang_long.id: "buyer", minh_chau.id: None}
    assert (result.birth_date, result.owner) == (date(1990, 8, 15), "lan")  # gaps filled from the merged record
    # consent: the most recent decision per channel wins
    assert (result.has_consent("email"), result.consents["email"].source) == (False, "unsubscribe link")
    assert (result.has_consent("sms"), result.consents["sms"].source) == (True, "shop")
    assert result.has_consent("chat")
    timeline = crm.interactions.timeline(kept.id)
    assert sorted(i.subject for i in timeline) == ["kept", "kept", "merged", "merged", "merged"]
    # the old id resolves to the kept customer
    assert crm.customers.get(merged.id) == result
    tombstone = crm.customers.get(merged.id, follow_merges=False)
    assert (tombstone.status, tombstone.merged_into_id) == ("merged", kept.id)
    assert [p.id for p in crm.customers.members(hoang_long.id)] == [kept.id]
    # the plugin hook ran in the merge transaction, after the core moved the rows
    assert watcher.seen == [(kept.id, merged.id, 5)]
    assert [e.action for e in crm.audit.entries(customer_id=kept.id, limit=2)] == ["repoint", "merge"]


def test_merge_chains_resolve_to_the_last_kept_customer(crm: Any) -> None:
    a, b, c = (crm.customers.add(name=f"Lê Hoa {i}") for i in range(3))
    crm.customers.merge(b.id, c.id)
    crm.customers.merge(a.id, b.id)
    assert crm.customers.get(c.id).id == a.id
    assert crm.interactions.log(c.id, "phone").customer_id == a.id


def test_merge_refuses_what_cannot_be_merged(crm: Any) -> None:
    an = crm.customers.add(name="Nguyễn Văn An")
    twin = crm.customers.add(name="Nguyen Van An")
    org = crm.customers.add(name="Công ty Hoàng Long", kind="organization")
    third = crm.customers.add(name="Nguyễn Văn An (3)")
    with pytest.raises(crmkit.Conflict, match="itself"):
        crm.customers.merge(an.id, an.id)
    with pytest.raises(crmkit.Conflict, match="person into a organization|organization"):
        crm.customers.merge(org.id, an.id)
    crm.customers.merge(an.id, twin.id)
    before = everything(crm)
    with pytest.raises(crmkit.Conflict, match="merged"):
        crm.customers.merge(an.id, twin.id)
    with pytest.raises(crmkit.Conflict, match="merged"):
        crm.customers.merge(twin.id, third.id)
    with pytest.raises(crmkit.NotFound):
        crm.customers.merge(an.id, 9999)
    assert everything(crm) == before


def test_a_failing_merge_hook_rolls_the_whole_merge_back(crm_factory: Any) -> None:
    crm = crm_factory(plugins=[Plugin("probe", hooks=_MergeBreaker())])
    kept, merged, _, _ = _two_records_of_one_person(crm)
    kept_before, merged_before = crm.customers.get(kept.id), crm.customers.get(merged.id)
    rows_before = everything(crm)
    with pytest.raises(crmkit.PluginError, match="probe.*crmkit_customers_merged.*storage is down"):
        crm.customers.merge(kept.id, merged.id)
    assert crm.customers.get(kept.id) == kept_before
    assert crm.customers.get(merged.id) == merged_before
    assert everything(crm) == rows_before
    assert len(crm.interactions.timeline(merged.id)) == 3
    assert names_found(crm, "0987654321") == ["Nguyen Van An"]


def _records_to_merge_in_one_batch(crm: Any) -> list[tuple[int, int]]:
    add_user(crm, "lan")
    """A person taking in two records (overlapping e-mails, tags, consents, memberships), one of which took in an
    older record, and in between an organization merge touching both records' memberships."""
    at = lambda *ymd: datetime(*ymd, tzinfo=ICT)  # noqa: E731
    o1 = crm.customers.add(name="Công ty Hoàng Long", kind="organization")
    o2 = crm.customers.add(name="Tạp hoá Minh Châu", kind="organization")
    o3 = crm.customers.add(name="Hoang Long JSC", kind="organization", city="Hà Nội")
    kept = crm.customers.add(
        name="Nguyễn Văn An",
        email="an@example.vn",
        phone="0912345678",
        tags=["vip"],
        organizations=[{"organization_id": o1.id, "role": "buyer"}],
        attributes={"a": 1},
    )
    first = crm.customers.add(
        name="Nguyen Van An",
        emails=["an@example.vn", "an1@example.vn", "shared@example.vn"],
        phone="0987654321",
        tags=["vip", "hanoi"],
        birth_date="1990-08-15",
        attributes={"a": 2, "b": 1},
        addresses=[{"line1": "5 Lý Thường Kiệt"}],
        organizations=[
            {"organization_id": o1.id},
            {"organization_id": o2.id, "role": "owner"},
            {"organization_id": o3.id, "role": "director"},
        ],
    )
    second = crm.customers.add(
        name="An Nguyen",
        emails=["shared@example.vn", "an2@example.vn"],
        phone="0987654321",
        tags=["hanoi", "zalo"],
        birth_date="1985-01-01",
        owner="lan",
        attributes={"b": 2, "c": 3},
        organizations=[{"organization_id": o3.id, "role": "buyer"}],
    )
    other = crm.customers.add(name="Trần Thị Bình", organizations=[{"organization_id": o3.id, "role": "accountant"}])
    older = crm.customers.add(name="Nguyễn V. An", email="old@example.vn")
    crm.customers.merge(first.id, older.id)
    crm.customers.set_consent(kept.id, "email", True, source="web form", at=at(2024, 1, 5))
    crm.customers.set_consent(first.id, "email", False, source="unsubscribe link", at=at(2024, 6, 1))
    crm.customers.set_consent(first.id, "sms", True, source="shop", at=at(2023, 1, 1))
    crm.customers.set_consent(second.id, "email", True, source="old form", at=at(2024, 3, 1))
    crm.customers.set_consent(second.id, "sms", False, source="call", at=at(2024, 2, 1))
    for customer, channel in ((kept, "email"), (first, "phone"), (second, "sms"), (older, "chat"), (other, "phone")):
        crm.interactions.log(customer.id, channel, subject=customer.name)
    return [(kept.id, first.id), (o1.id, o3.id), (kept.id, second.id)]


def _merge_state(crm: Any) -> dict[str, Any]:
    """Every core row a merge writes, without the times it was written at."""
    rows: dict[str, Any] = {}
    with crm.reading() as conn:
        ids = conn.execute(sa.select(t.customers.c.id).order_by(t.customers.c.id)).scalars().all()
        people = [
            attrs.evolve(crm.customers.get(c, follow_merges=False), created_at=None, updated_at=None) for c in ids
        ]
        for table, drop in (
            (t.contact_points, ()),
            (t.addresses, ()),
            (t.tags, ()),
            (t.consents, ()),
            (t.memberships, ()),
            (t.search_keys, ()),
            (t.interactions, ("created_at", "occurred_at")),
            (t.merges, ("at", "filled", "undone_at", "undone_by")),  # snapshot last (the journal: tests/test_unmerge)
            (t.audit_log, ("at",)),
        ):
            columns = [c for c in table.c if c.name not in drop]
            rows[table.name] = [tuple(r) for r in conn.execute(sa.select(*columns).order_by(*columns))]
    for n, (*head, snapshot) in enumerate(rows[t.merges.name]):
        rows[t.merges.name][n] = (*head, {k: v for k, v in snapshot.items() if k not in ("created_at", "updated_at")})
    return {"customers": people, **rows}


def test_merge_many_gives_what_merging_pair_by_pair_gives(crm_factory: Any) -> None:
    one_by_one, batch = crm_factory(), crm_factory()
    pairs = _records_to_merge_in_one_batch(one_by_one)
    assert _records_to_merge_in_one_batch(batch) == pairs
    expected = [one_by_one.customers.merge(kept_id, merged_id) for kept_id, merged_id in pairs]
    result = batch.customers.merge_many(pairs)

    assert [(m.kept_id, m.merged_id) for m in result] == pairs
    assert _merge_state(batch) == _merge_state(one_by_one)
    with batch.reading() as conn:  # each Merge names its snapshot row
        rows = conn.execute(sa.select(t.merges.c.id, t.merges.c.kept_id, t.merges.c.merged_id)).all()
    assert sorted((m.id, m.kept_id, m.merged_id) for m in result) == sorted(rows)[1:]
    kept = batch.customers.get(pairs[0][0])
    assert kept == attrs.evolve(expected[2], created_at=kept.created_at, updated_at=kept.updated_at)
    # what the batch did, as a user sees it
    assert kept.emails == ("an@example.vn", "an1@example.vn", "an2@example.vn", "shared@example.vn", "old@example.vn")
    assert kept.tags == ("hanoi", "vip", "zalo")
    assert (kept.birth_date, kept.owner, kept.attributes) == (date(1990, 8, 15), "lan", {"a": 1, "b": 1, "c": 3})
    assert {ch: (c.granted, c.source) for ch, c in kept.consents.items()} == {
        "email": (False, "unsubscribe link"),
        "sms": (False, "call"),
    }
    with batch.reading() as conn:
        id_of = dict(conn.execute(sa.select(t.customers.c.name, t.customers.c.id)).all())
    assert {m.organization_id: m.role for m in kept.organizations} == {
        pairs[1][0]: "buyer",
        id_of["Tạp hoá Minh Châu"]: "owner",
    }
    assert sorted(p.name for p in batch.customers.members(pairs[1][0])) == ["Nguyễn Văn An", "Trần Thị Bình"]
    assert batch.customers.get(id_of["Nguyễn V. An"]).id == kept.id  # the record merged into a merged one follows it
    assert names_found(batch, "an2@example") == ["Nguyễn Văn An"]
    assert len(batch.interactions.timeline(kept.id)) == 4


def test_merge_many_of_a_large_batch(crm: Any) -> None:
    from crmkit.core.customers import BULK_LOAD

    pairs = []
    for n in range(BULK_LOAD // 2 + 10):  # more customers than a small load binds one by one
        kept = crm.customers.add(name=f"Khách {n}", email=f"k{n}@example.vn", tags=["a"])
        dup = crm.customers.add(name=f"Khach {n}", email=f"dup{n}@example.vn", phone=f"0903{n:06d}", tags=["a", "b"])
        crm.interactions.log(dup.id, "phone")
        pairs.append((kept.id, dup.id))
    merges = crm.customers.merge_many(pairs)
    assert [(m.kept_id, m.merged_id) for m in merges] == pairs and len({m.id for m in merges}) == len(pairs)
    last = crm.customers.get(pairs[-1][1])
    n = len(pairs) - 1
    assert (last.id, last.emails, last.phones, last.tags) == (
        pairs[-1][0],
        (f"k{n}@example.vn", f"dup{n}@example.vn"),
        (f"+84903{n:06d}",),
        ("a", "b"),
    )
    assert names_found(crm, f"dup{n}@example") == [f"Khách {n}"]
    assert len(crm.interactions.timeline(pairs[0][0]).items) == 1
    assert {e.changes["merged_id"] for e in crm.audit.entries(limit=1000) if e.action == "merge"} == {
        m for _, m in pairs
    }


def test_merge_many_refuses_a_batch_that_is_not_independent_merges(crm: Any) -> None:
    a, b, c = (crm.customers.add(name=f"Lê Hoa {i}") for i in range(3))
    with pytest.raises(crmkit.ValidationError, match=f"row 2: merged_id: customer {c.id} is merged twice"):
        crm.customers.merge_many([(a.id, c.id), (b.id, c.id)])
    with pytest.raises(crmkit.ValidationError, match=f"customer {b.id} is both kept and merged"):
        crm.customers.merge_many([(b.id, c.id), (a.id, b.id)])
    with pytest.raises(crmkit.Conflict, match=f"itself \\(merging {b.id} into {b.id}\\)"):
        crm.customers.merge_many([(a.id, c.id), (b.id, b.id)])
    crm.customers.merge(a.id, c.id)
    with pytest.raises(
        crmkit.Conflict, match=f"customer {c.id} is merged into {a.id} \\(merging {c.id} into {b.id}\\)"
    ):
        crm.customers.merge_many([(b.id, c.id)])
    assert crm.customers.merge_many([]) == []
    assert count(crm, t.merges) == 1 and crm.customers.get(b.id).status == "active"
    assert [crm.customers.get(x.id, follow_merges=False).status for x in (a, b, c)] == ["active", "active", "merged"]


def names_found(crm: Any, query: str) -> list[str]:
    return [c.name for c in crm.customers.find(query)]
