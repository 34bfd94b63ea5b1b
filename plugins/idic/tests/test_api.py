"""IDIC over HTTP: runs, status, the review queue and the agenda, as a token's user, with the API's errors."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from openapi_spec_validator import validate

from crmkit.testing import ApiClient, add_user, api_client

pytestmark = pytest.mark.crmkit_plugins("idic")
LATER = date(2100, 1, 1).isoformat()


@pytest.fixture
def hoa(crm: Any) -> ApiClient:
    """Team HN (manager Hoa, salespeople Lan and Minh) and team HCM (salesman Tuấn); Hoa's client."""
    add_user(crm, "hoa", teams=["HN"], roles=["manager"])
    add_user(crm, "lan", teams=["HN"], roles=["sales"])
    add_user(crm, "minh", teams=["HN"], roles=["sales"])
    add_user(crm, "tuan", teams=["HCM"], roles=["sales"])
    return api_client(crm, "hoa")


def test_a_manager_runs_idic_reads_the_run_and_the_status(crm: Any, hoa: ApiClient) -> None:
    kept = crm.customers.add(name="Nguyễn Văn An", email="an@example.vn", owner="lan")
    crm.customers.add(name="Nguyen Van An", email="an@example.vn", owner="minh")
    started = hoa.post("/idic/runs", json={})
    assert started.status_code == 201, started.json
    run = started.json
    assert started.headers["Location"] == f"/idic/runs/{run['id']}"
    assert run["status"] == "done" and run["actor"] == "hoa"
    assert [r["step"] for r in run["results"]] == ["identify", "differentiate", "interact", "customize"]
    assert run["results"][0]["counts"]["merged"] == 1

    assert hoa.get(f"/idic/runs/{run['id']}").json["id"] == run["id"]
    assert [r["id"] for r in hoa.get("/idic/runs?limit=5").json] == [run["id"]]
    status = hoa.get("/idic/status").json
    assert status["last_run"] == run["id"] and status["status"] == "done" and status["scoped"] is True
    assert (
        sum(status[f"tier_{t}"] for t in ("most_valuable", "most_growable", "maintain", "below_zero", "unknown")) == 1
    )
    assert crm.customers.get(kept.id).status == "active"


def test_a_run_repeated_with_its_idempotency_key_answers_the_first_run(crm: Any, hoa: ApiClient) -> None:
    crm.customers.add(name="Lê Minh Châu", owner="lan")
    first = hoa.post("/idic/runs", json={"steps": ["differentiate"]}, headers={"Idempotency-Key": "run-1"})
    again = hoa.post("/idic/runs", json={"steps": ["differentiate"]}, headers={"Idempotency-Key": "run-1"})
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true" and again.json["id"] == first.json["id"]
    assert len(crm.idic.runs()) == 1


def test_a_failed_run_answers_500_and_resumes(crm: Any, hoa: ApiClient, monkeypatch: Any) -> None:
    from crmkit_idic import runs

    crm.customers.add(name="Hoàng Thu Hà", owner="lan")

    def crash(*args: Any) -> Any:
        raise RuntimeError("power cut")

    monkeypatch.setitem(runs.STEP_FUNCTIONS, "interact", crash)
    failed = hoa.post("/idic/runs", json={"steps": ["differentiate", "interact"]})
    assert failed.status_code == 500 and "power cut" not in failed.text
    monkeypatch.undo()
    run = crm.idic.last_run()
    assert run.status == "failed" and run.next_step == "interact"
    resumed = hoa.post(f"/idic/runs/{run.id}/resume")
    assert resumed.status_code == 200 and resumed.json["status"] == "done"
    assert hoa.post(f"/idic/runs/{run.id}/resume").status_code == 409  # already complete


def test_the_review_queue_lists_accepts_and_rejects_pairs_in_scope_only(crm: Any, hoa: ApiClient) -> None:
    a = crm.customers.add(name="Trần Thị Bình", phone="0912345678", owner="lan")
    b = crm.customers.add(name="Lê Minh Châu", phone="0912345678", owner="minh")
    c = crm.customers.add(name="Phạm Thu Hà", phone="0987111222", owner="lan")
    d = crm.customers.add(name="Đỗ Minh Khang", phone="0987111222", owner="minh")
    e = crm.customers.add(name="Vũ Đức Hải", phone="0933444555", owner="lan")
    f = crm.customers.add(name="Ngô Văn Tâm", phone="0933444555", owner="tuan")  # in HCM: not Hoa's
    crm.idic.run(steps=["identify"])
    queue = hoa.get("/idic/reviews").json
    assert {(r["customer_id"], r["other_id"]) for r in queue} == {(a.id, b.id), (c.id, d.id)}
    assert queue[0]["reason"].startswith("same phone")
    by_pair = {(r["customer_id"], r["other_id"]): r["id"] for r in queue}

    accepted = hoa.post(f"/idic/reviews/{by_pair[a.id, b.id]}/accept")
    assert accepted.status_code == 200, accepted.json
    assert accepted.json["kept"] == a.id and crm.customers.get(b.id).id == a.id
    rejected = hoa.post(f"/idic/reviews/{by_pair[c.id, d.id]}/reject", json={"reason": "hai chị em"})
    assert rejected.status_code == 204 and rejected.data == b""
    assert hoa.get("/idic/reviews").json == []
    assert {r["status"] for r in hoa.get("/idic/reviews?status=rejected").json} == {"rejected"}
    assert hoa.post(f"/idic/reviews/{by_pair[c.id, d.id]}/reject").status_code == 409

    hidden = next(r["id"] for r in crm.idic.reviews() if r["other_id"] == f.id)
    missing = hoa.post(f"/idic/reviews/{hidden}/accept")
    assert missing.status_code == 404 and missing.headers["Content-Type"] == "application/problem+json"
    assert crm.customers.get(f.id).status == "active" and crm.customers.get(e.id).status == "active"


def test_the_agenda_shows_a_salespersons_own_customers(crm: Any, hoa: ApiClient) -> None:
    mine = crm.customers.add(name="Đặng Thu Trang", owner="lan", consents={"sms": True})
    crm.customers.add(name="Ngô Văn Tâm", owner="minh", consents={"email": True})
    crm.idic.run()
    lan = api_client(crm, "lan")
    agenda = lan.get(f"/idic/agenda?date={LATER}")
    assert agenda.status_code == 200
    assert [(a["customer_id"], a["owner"], a["name"]) for a in agenda.json] == [(mine.id, "lan", "Đặng Thu Trang")]
    assert lan.get(f"/idic/agenda?employee=minh&date={LATER}").json == []
    assert len(hoa.get(f"/idic/agenda?date={LATER}").json) == 2


def test_bad_input_answers_422_naming_the_field(crm: Any, hoa: ApiClient) -> None:
    bad_date = hoa.get("/idic/agenda?date=2026-13-45")
    assert bad_date.status_code == 422 and "date" in bad_date.json["errors"]
    bad_step = hoa.post("/idic/runs", json={"steps": ["identify", "guess"]})
    assert bad_step.status_code == 422 and "step" in bad_step.json["errors"]
    unknown = hoa.post("/idic/runs", json={"step": "identify"})
    assert unknown.status_code == 422 and "step" in unknown.json["errors"]


def test_a_missing_permission_answers_403_naming_it(crm: Any, hoa: ApiClient) -> None:
    lan = api_client(crm, "lan")
    refused = lan.post("/idic/runs", json={"steps": ["differentiate"]})
    assert refused.status_code == 403 and refused.json["permission"] == "idic.run"
    assert lan.get("/idic/reviews").json["permission"] == "idic.review"
    assert crm.idic.runs() == []
    assert api_client(crm).get("/idic/status").status_code == 401


def test_the_openapi_document_validates_and_lists_idics_operations(crm: Any) -> None:
    document = api_client(crm).get("/openapi.json").json
    validate(document)
    ours = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method, op in item.items()
        if op["tags"] == ["idic"]
    }
    assert ours == {
        ("POST", "/idic/runs"),
        ("POST", "/idic/runs/{run_id}/resume"),
        ("GET", "/idic/runs"),
        ("GET", "/idic/runs/{run_id}"),
        ("GET", "/idic/status"),
        ("GET", "/idic/reviews"),
        ("POST", "/idic/reviews/{review_id}/accept"),
        ("POST", "/idic/reviews/{review_id}/reject"),
        ("GET", "/idic/agenda"),
    }
    assert "idic" in {tag["name"] for tag in document["tags"]}
    assert "Needs permission `idic.run`." in document["paths"]["/idic/runs"]["post"]["description"]
