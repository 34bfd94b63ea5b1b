"""crmkit-notes over HTTP: a customer's notes listed, added, read and deleted, as a token's user."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from openapi_spec_validator import validate

from crmkit.testing import api_client

pytestmark = pytest.mark.crmkit_plugins("notes")


def test_a_salesperson_adds_lists_reads_and_deletes_notes_of_her_customer(crm: Any) -> None:
    lan = api_client(crm, "lan", roles=["sales"])
    an = crm.customers.add(name="Nguyễn Văn An", owner="lan")
    added = lan.post(f"/notes/customers/{an.id}", json={"text": "  Khách hẹn gọi lại thứ Hai "})
    assert added.status_code == 201, added.json
    note = added.json
    assert added.headers["Location"] == f"/notes/{note['id']}"
    assert (note["customer_id"], note["text"], note["author"]) == (an.id, "Khách hẹn gọi lại thứ Hai", "lan")
    older = lan.post(
        f"/notes/customers/{an.id}", json={"text": "Gặp ở hội chợ", "created_at": "2025-05-01T08:00:00+07:00"}
    )
    assert datetime.fromisoformat(older.json["created_at"]) == datetime(2025, 5, 1, 1, tzinfo=UTC)

    listed = lan.get(f"/notes/customers/{an.id}")
    assert [n["id"] for n in listed.json] == [note["id"], older.json["id"]]
    assert [n["id"] for n in lan.get(f"/notes/customers/{an.id}?limit=1").json] == [note["id"]]
    assert lan.get(f"/notes/{note['id']}").json == note

    deleted = lan.delete(f"/notes/{note['id']}")
    assert deleted.status_code == 204 and deleted.data == b""
    assert lan.get(f"/notes/{note['id']}").status_code == 404
    assert [n.id for n in crm.notes.list(an.id)] == [older.json["id"]]
    assert crm.audit.entries(entity="note", limit=5).items[0].action == "delete"


def test_another_salespersons_customer_and_notes_answer_404(crm: Any) -> None:
    lan = api_client(crm, "lan", roles=["sales"])
    api_client(crm, "minh", roles=["sales"])
    theirs = crm.customers.add(name="Trần Thị Bình", owner="minh")
    kept = crm.notes.add(theirs.id, "Khách của Minh")
    assert lan.get(f"/notes/customers/{theirs.id}").status_code == 404
    assert lan.post(f"/notes/customers/{theirs.id}", json={"text": "not mine"}).status_code == 404
    assert lan.get(f"/notes/{kept.id}").status_code == 404
    hidden = lan.delete(f"/notes/{kept.id}")
    assert hidden.status_code == 404 and hidden.headers["Content-Type"] == "application/problem+json"
    assert crm.notes.get(kept.id) == kept


def test_a_bad_note_answers_422_naming_the_field(crm: Any) -> None:
    lan = api_client(crm, "lan", roles=["sales"])
    an = crm.customers.add(name="Lê Văn Cường", owner="lan")
    for body in ({"text": "   "}, {"text": "x" * 5001}, {}, {"text": "ok", "pinned": True}):
        refused = lan.post(f"/notes/customers/{an.id}", json=body)
        assert refused.status_code == 422, body
        assert set(refused.json["errors"]) == ({"pinned"} if "pinned" in body else {"text"})
    assert crm.notes.list(an.id) == []


def test_a_missing_permission_answers_403_naming_it(crm: Any) -> None:
    auditor = api_client(crm, "doc", roles=["read-only"])  # reads notes, writes none
    an = crm.customers.add(name="Võ Thị Hoa")
    note = crm.notes.add(an.id, "Thích hoa lan")
    assert auditor.get(f"/notes/{note.id}").status_code == 200
    refused = auditor.delete(f"/notes/{note.id}")
    assert refused.status_code == 403 and refused.json["permission"] == "notes.write"
    assert auditor.post(f"/notes/customers/{an.id}", json={"text": "hi"}).json["permission"] == "notes.write"
    assert crm.notes.list(an.id) == [note]


def test_the_openapi_document_validates_and_lists_the_notes_routes(crm: Any) -> None:
    document = api_client(crm).get("/openapi.json").json
    validate(document)
    ours = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method, op in item.items()
        if op["tags"] == ["notes"]
    }
    assert ours == {
        ("GET", "/notes/customers/{customer_id}"),
        ("POST", "/notes/customers/{customer_id}"),
        ("GET", "/notes/{note_id}"),
        ("DELETE", "/notes/{note_id}"),
    }
    assert {"name": "notes", "description": "Free-text notes about customers"} in document["tags"]
