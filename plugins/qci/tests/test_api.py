"""QCI over HTTP: the bank, assessments, the scorecard and the plan, as a token's user, with the API's errors."""

from __future__ import annotations

from typing import Any

import pytest
from openapi_spec_validator import validate

from crmkit.testing import ApiClient, api_client
from crmkit_qci.areas import AREA_KEYS

from .test_plan import WEAK

pytestmark = pytest.mark.crmkit_plugins("qci")


@pytest.fixture
def hoa(crm: Any) -> ApiClient:
    """Hoa, a manager of team HN (assesses and plans; reads her team's KPIs), with a token."""
    return api_client(crm, "hoa", teams=["HN"], roles=["manager"])


def test_an_assessment_is_recorded_listed_and_read(crm: Any, hoa: ApiClient) -> None:
    bank = hoa.get("/qci/bank")
    assert bank.status_code == 200
    assert [a["key"] for a in bank.json["areas"]] == list(AREA_KEYS)
    asked = {q["id"] for a in bank.json["areas"] for q in a["questions"]}
    assert set(WEAK) <= asked

    created = hoa.post(
        "/qci/assessments", json={"answers": {**WEAK, "AQ3": None}, "label": "Quý 4", "assessed_on": "2026-01-15"}
    )
    assert created.status_code == 201, created.json
    body = created.json
    assert created.headers["Location"] == f"/qci/assessments/{body['id']}"
    assert (body["assessor"], body["label"], body["assessed_on"]) == ("hoa", "Quý 4", "2026-01-15")
    assert body["areas"]["retention"]["answered"] == 5 and body["areas"]["penetration"]["score"] is None
    assert hoa.get(f"/qci/assessments/{body['id']}").json == body
    assert [a["id"] for a in hoa.get("/qci/assessments?limit=5").json] == [body["id"]]


def test_the_scorecard_counts_the_readers_scope(crm: Any, hoa: ApiClient) -> None:
    crm.customers.add(name="Nguyễn Văn An", owner="hoa")
    card = hoa.get("/qci/scorecard?period=2026-10")
    assert card.status_code == 200, card.json
    assert card.json["period"]["year"] == 2026 and card.json["period"]["number"] == 10
    assert card.json["coverage"] == {"scope": "team", "user": "hoa"}
    rows = {row["measure"]["key"]: row for row in card.json["rows"]}
    assert rows and all(row["light"] in ("green", "amber", "red", "none") for row in rows.values())
    auditor = api_client(crm, "doc", roles=["read-only"])
    assert auditor.get("/qci/scorecard?period=2026-10").json["coverage"]["scope"] == "all"


def test_the_plan_is_generated_assigned_and_tracked_to_done(crm: Any, hoa: ApiClient) -> None:
    crm.users.add("huong.le")
    crm.qci.assessments.record(WEAK)
    generated = hoa.post("/qci/plan/generate", json={"areas": 1})
    assert generated.status_code == 200, generated.json
    assert [s["area"] for s in generated.json["chosen"]] == ["retention"]
    created = generated.json["created"]
    assert created and all(a["owner"] == "hoa" and a["status"] == "open" for a in created)
    first = created[0]["id"]
    assert [a["id"] for a in hoa.get("/qci/plan?status=open").json] == [a["id"] for a in created]
    assert hoa.get(f"/qci/plan/{first}").json["rule_id"] == created[0]["rule_id"]

    assigned = hoa.put(f"/qci/plan/{first}/owner", json={"owner": "huong.le"})
    assert assigned.status_code == 200 and assigned.json["owner"] == "huong.le"
    assert hoa.post(f"/qci/plan/{first}/start").json["status"] == "in_progress"
    assert hoa.post(f"/qci/plan/{first}/done").json["status"] == "done"
    assert hoa.post(f"/qci/plan/{first}/done").status_code == 409
    assert hoa.get("/qci/plan/progress").json == {"open": len(created) - 1, "in_progress": 0, "done": 1, "overdue": 0}
    again = hoa.post("/qci/plan/generate", json={"areas": 1}).json  # only the done rule is proposed again
    assert [a["rule_id"] for a in again["created"]] == [created[0]["rule_id"]]
    assert set(again["skipped"]) == {a["rule_id"] for a in created[1:]}


def test_bad_answers_answer_422_naming_the_question(crm: Any, hoa: ApiClient) -> None:
    refused = hoa.post("/qci/assessments", json={"answers": {**WEAK, "RE2": 7}})
    assert refused.status_code == 422
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert list(refused.json["errors"]) == ["answers.RE2"]
    assert hoa.get("/qci/assessments").json == []
    assert "owner" in hoa.put("/qci/plan/1/owner", json={}).json["errors"]
    assert "period" in hoa.get("/qci/scorecard?period=2026-13").json["errors"]


def test_an_unknown_action_or_assessment_answers_404(crm: Any, hoa: ApiClient) -> None:
    assert hoa.get("/qci/plan/999").status_code == 404
    assert hoa.post("/qci/plan/999/start").status_code == 404
    assert hoa.get("/qci/assessments/999").status_code == 404


def test_a_missing_permission_answers_403_naming_it(crm: Any) -> None:
    lan = api_client(crm, "lan", roles=["sales"])
    refused = lan.get("/qci/scorecard")
    assert refused.status_code == 403 and refused.json["permission"] == "qci.read"
    auditor = api_client(crm, "doc", roles=["read-only"])
    assert auditor.post("/qci/assessments", json={"answers": WEAK}).json["permission"] == "qci.assess"
    assert auditor.post("/qci/plan/generate", json={}).json["permission"] == "qci.plan"
    assert crm.qci.assessments.latest() is None


def test_the_openapi_document_validates_and_lists_qcis_operations(crm: Any) -> None:
    document = api_client(crm).get("/openapi.json").json
    validate(document)
    ours = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method, op in item.items()
        if op["tags"] == ["qci"]
    }
    assert ours == {
        ("GET", "/qci/bank"),
        ("POST", "/qci/assessments"),
        ("GET", "/qci/assessments"),
        ("GET", "/qci/assessments/{assessment_id}"),
        ("GET", "/qci/scorecard"),
        ("GET", "/qci/plan"),
        ("GET", "/qci/plan/progress"),
        ("POST", "/qci/plan/generate"),
        ("GET", "/qci/plan/{action_id}"),
        ("POST", "/qci/plan/{action_id}/start"),
        ("POST", "/qci/plan/{action_id}/done"),
        ("PUT", "/qci/plan/{action_id}/owner"),
    }
    assert "qci" in {tag["name"] for tag in document["tags"]}
