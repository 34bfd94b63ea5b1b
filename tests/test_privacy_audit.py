"""Right of access (``export_data``), right to erasure (``erase``) and the audit log."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa

import crmkit
from crmkit import Plugin, hookimpl
from crmkit.core import tables as t
from crmkit.testing import add_user

ICT = timezone(timedelta(hours=7))
PERSONAL = [
    "Nguyễn Văn An",
    "Nguyen Van An",
    "an@example.vn",
    "an.work@hoanglong.vn",
    "912345678",
    "987654321",
    "12 Hàng Bài",
    "1990-08-15",
    "LC123456",
    "Gọi về bảo hành",
    "máy giặt",
]


class _Notes:
    """A plugin that keeps notes in memory, exports and erases them, and checks it runs in the transaction."""

    def __init__(self) -> None:
        self.notes: dict[int, list[str]] = {}
        self.erased: list[tuple[int, int]] = []
        self.fail_erase = False

    @hookimpl
    def crmkit_customer_export(self, customer: Any) -> dict[str, Any]:
        return {"probe": {"notes": self.notes.get(customer.id, [])}}

    @hookimpl
    def crmkit_customer_erase(self, crm: Any, customer: Any, session: Any) -> None:
        if self.fail_erase:
            raise RuntimeError("notes store unavailable")
        # still inside the erase transaction: the core has not yet removed the contact points
        with crm.reading() as conn:
            emails = conn.execute(
                sa.select(sa.func.count())
                .select_from(t.contact_points)
                .where(t.contact_points.c.customer_id == customer.id)
            ).scalar_one()
        self.erased.append((customer.id, emails))
        self.notes.pop(customer.id, None)
        crm.audit.record(session, "erase", "probe_notes", customer.id, customer_id=customer.id)


@pytest.fixture
def notes() -> _Notes:
    return _Notes()


@pytest.fixture
def crm_notes(crm_factory: Any, notes: _Notes) -> Any:
    return crm_factory(plugins=[Plugin("probe", hooks=notes)], actor="lan")


def _customer_with_history(crm: Any, notes: _Notes) -> Any:
    add_user(crm, "minh")
    hoang_long = crm.customers.add(name="Công ty Hoàng Long", kind="organization")
    an = crm.customers.add(
        name="Nguyễn Văn An",
        emails=["an@example.vn"],
        phone="0912 345 678",
        birth_date="15/08/1990",
        gender="nam",
        tags=["vip"],
        addresses=[{"line1": "12 Hàng Bài", "province": "Hà Nội"}],
        attributes={"card": "LC123456"},
        consents={"email": True},
        organizations=[{"organization_id": hoang_long.id, "role": "buyer"}],
    )
    crm.customers.update(an.id, owner="minh")
    crm.interactions.log(
        an.id,
        "phone",
        subject="Gọi về bảo hành",
        summary="máy giặt kêu to",
        sender="+84912345678",
        occurred_at=datetime(2024, 5, 1, 9, tzinfo=ICT),
        rating=4,
        employee="minh",
    )
    twin = crm.customers.add(name="Nguyen Van An", emails=["an.work@hoanglong.vn"], phone="0987654321")
    crm.interactions.log(twin.id, "email", subject="Báo giá", occurred_at=datetime(2024, 4, 1, tzinfo=ICT))
    crm.customers.merge(an.id, twin.id)
    notes.notes[an.id] = ["thích được gọi buổi sáng"]
    return crm.customers.get(an.id), twin


def test_export_data_returns_everything_about_the_person(crm_notes: Any, notes: _Notes) -> None:
    an, twin = _customer_with_history(crm_notes, notes)
    data = crm_notes.customers.export_data(an.id)
    json.dumps(data)  # JSON as it is
    customer = data["customer"]
    assert (customer["name"], customer["birth_date"], customer["gender"]) == ("Nguyễn Văn An", "1990-08-15", "male")
    assert set(customer["emails"]) == {"an@example.vn", "an.work@hoanglong.vn"}
    assert customer["consents"]["email"]["granted"] is True
    assert customer["attributes"] == {"card": "LC123456"}
    assert [i["subject"] for i in data["interactions"]] == ["Báo giá", "Gọi về bảo hành"]
    actions = [(e["action"], e["customer_id"]) for e in data["audit_log"]]
    assert ("create", an.id) in actions and ("create", twin.id) in actions  # the merged record's trail too
    assert ("update", an.id) in actions and ("merge", an.id) in actions
    assert [m["merged_id"] for m in data["merged_records"]] == [twin.id]
    assert data["merged_records"][0]["snapshot"]["name"] == "Nguyen Van An"
    assert data["probe"] == {"notes": ["thích được gọi buổi sáng"]}
    assert crm_notes.customers.export_data(twin.id) == data  # the old id gives the same person


def test_erase_removes_or_anonymizes_the_person_everywhere(crm_notes: Any, notes: _Notes) -> None:
    an, twin = _customer_with_history(crm_notes, notes)
    crm_notes.customers.erase(twin.id, reason="khách yêu cầu xoá dữ liệu")  # the old id erases the person

    gone = crm_notes.customers.get(an.id)
    assert gone.status == "erased" and gone.name == f"Erased customer {an.id}"
    assert (gone.emails, gone.phones, gone.addresses, gone.tags, gone.consents, gone.organizations) == (
        (),
        (),
        (),
        (),
        {},
        (),
    )
    assert (gone.birth_date, gone.gender, gone.owner, gone.attributes) == (None, None, None, {})
    tombstone = crm_notes.customers.get(twin.id, follow_merges=False)
    assert tombstone.name == f"Erased customer {twin.id}" and tombstone.birth_date is None
    # interactions stay as anonymous facts (channel, time, rating), their content removed
    kept = crm_notes.interactions.timeline(an.id)
    assert [(i.channel, i.rating, i.subject, i.summary, i.sender) for i in kept] == [
        ("phone", 4, None, None, None),
        ("email", None, None, None, None),
    ]
    for query in ("nguyen van an", "an@example", "an.work", "345678", "654321"):
        assert crm_notes.customers.find(query).items == [], query
    # the plugin erased its part, in the same transaction, before the core removed contact points
    assert notes.erased == [(an.id, len(an.emails) + len(an.phones))] and an.id not in notes.notes
    # the erasure itself is on record; nothing personal is left anywhere the person could ask about
    trail = crm_notes.audit.entries(customer_id=an.id).items
    assert (trail[0].action, trail[0].actor, trail[0].changes) == (
        "erase",
        "lan",
        {"reason": "khách yêu cầu xoá dữ liệu"},
    )
    assert [e.entity for e in trail[:2]] == ["customer", "probe_notes"]
    everything = json.dumps([crm_notes.customers.export_data(an.id), crmkit_dump(crm_notes)], ensure_ascii=False)
    leaked = [p for p in PERSONAL if p in everything]
    assert not leaked
    crm_notes.customers.erase(an.id)  # erasing twice is harmless
    assert [e.action for e in crm_notes.audit.entries(customer_id=an.id, limit=2)] == ["erase", "erase"]


def crmkit_dump(crm: Any) -> list[Any]:
    """Every row of the core's tables, as text (what a database dump would show)."""
    with crm.reading() as conn:
        return [[str(tuple(row)) for row in conn.execute(sa.select(table))] for table in t.metadata.sorted_tables]


def test_a_failing_erase_hook_rolls_the_erasure_back(crm_notes: Any, notes: _Notes) -> None:
    an, _ = _customer_with_history(crm_notes, notes)
    notes.fail_erase = True
    with pytest.raises(crmkit.PluginError, match="probe.*crmkit_customer_erase.*notes store unavailable"):
        crm_notes.customers.erase(an.id)
    assert crm_notes.customers.get(an.id) == an
    assert [c.id for c in crm_notes.customers.find("an@example")] == [an.id]
    assert crm_notes.customers.export_data(an.id)["interactions"][1]["subject"] == "Gọi về bảo hành"


def test_export_and_erase_of_an_unknown_customer(crm: Any) -> None:
    with pytest.raises(crmkit.NotFound):
        crm.customers.export_data(404)
    with pytest.raises(crmkit.NotFound):
        crm.customers.erase(404)


# -- audit ------------------------------------------------------------------------------------


def test_audit_records_the_actor_given_to_the_crm_and_acting_as(crm_factory: Any) -> None:
    crm = crm_factory(actor="lan")
    add_user(crm, "minh")
    an = crm.customers.add(name="Nguyễn Văn An")
    with crm.acting_as("minh"):
        crm.customers.update(an.id, owner="minh")
        crm.customers.set_consent(an.id, "sms", True, source="phone call")
    crm.customers.add_tags(an.id, "vip")
    entries = crm.audit.entries(customer_id=an.id).items
    assert [(e.action, e.actor) for e in entries] == [
        ("update", "lan"),
        ("consent", "minh"),
        ("update", "minh"),
        ("create", "lan"),
    ]
    assert all(e.at.tzinfo == UTC for e in entries)
    assert [e.action for e in crm.audit.entries(actor="minh")] == ["consent", "update"]


def test_audit_actor_from_the_environment_or_system(crm_factory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMKIT_USER", "hoa")
    from_env = crm_factory()
    from_env.customers.add(name="Trần Thị Bích")
    assert [e.actor for e in from_env.audit.entries()] == ["hoa"]
    monkeypatch.delenv("CRMKIT_USER")
    default = crm_factory()
    default.customers.add(name="Lê Hoa")
    assert [e.actor for e in default.audit.entries()] == ["system"]


def test_audit_entries_page_by_keyset(crm: Any) -> None:
    for username in ("lan", "minh", "hoa", "tuan"):
        add_user(crm, username)
    an = crm.customers.add(name="Nguyễn Văn An")
    for owner in ("lan", "minh", "hoa", "tuan", "lan"):
        crm.customers.update(an.id, owner=owner)
    seen, after = [], None
    while True:
        page = crm.audit.entries(customer_id=an.id, after=after, limit=2)
        seen += [e.id for e in page]
        if page.next_cursor is None:
            break
        after = page.next_cursor
    assert len(seen) == 6 and seen == sorted(seen, reverse=True)
    for bad in ({"after": "nonsense"}, {"limit": 0}):
        with pytest.raises(crmkit.ValidationError):
            crm.audit.entries(**bad)
