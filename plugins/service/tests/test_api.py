"""The service plugin over HTTP: a support agent opens, answers and resolves a case with a token; refusals are
404 outside the scope, 403 naming a missing permission, 422 naming the field, 409 for a closed case."""

from __future__ import annotations

from typing import Any

import pytest
from openapi_spec_validator import validate

from crmkit.testing import api_client

pytestmark = pytest.mark.crmkit_plugins("service")


def test_a_support_agent_opens_answers_and_resolves_a_case(crm: Any) -> None:
    hoa = api_client(crm, "hoa", roles=["support"])
    an = crm.customers.add(name="Nguyễn Văn An")
    opened = hoa.post(
        "/service/cases",
        json={
            "customer_id": an.id,
            "subject": "Máy lạnh không lạnh",
            "channel": "phone",
            "priority": "urgent",
            "assignee": "hoa",
        },
    )
    assert opened.status_code == 201, opened.json
    case = opened.json
    assert opened.headers["Location"] == f"/service/cases/{case['id']}"
    assert (case["status"], case["assignee"], case["created_by"]) == ("new", "hoa", "hoa")
    reply = hoa.post(f"/service/cases/{case['id']}/replies", json={"body": "Kỹ thuật viên đến lúc 14h"})
    assert reply.status_code == 201 and reply.json["direction"] == "outbound"
    assert hoa.post(f"/service/cases/{case['id']}/notes", json={"body": "Mang theo tụ"}).status_code == 201
    done = hoa.post(f"/service/cases/{case['id']}/status", json={"status": "resolved", "resolution": "Đã thay tụ"})
    assert done.status_code == 200 and done.json["status"] == "resolved"
    conversation = hoa.get(f"/service/cases/{case['id']}/messages").json
    assert [(m["kind"], m["body"]) for m in conversation] == [
        ("reply", "Kỹ thuật viên đến lúc 14h"),
        ("note", "Mang theo tụ"),
    ]
    assert [c["id"] for c in hoa.get("/service/cases?status=resolved").json] == [case["id"]]
    assert hoa.get("/service/cases?status=active").json == []
    assert [c["id"] for c in hoa.get(f"/service/customers/{an.id}/cases").json] == [case["id"]]
    assert hoa.post(f"/service/cases/{case['id']}/assign", json={"assignee": None}).json["assignee"] is None


def test_refusals_name_the_field_the_permission_or_the_state(crm: Any) -> None:
    lan = api_client(crm, "lan", roles=["sales"])
    api_client(crm, "minh", roles=["sales"])
    auditor = api_client(crm, "doc", roles=["read-only"])
    mine = crm.customers.add(name="Trần Thị Bình", owner="lan")
    theirs = crm.customers.add(name="Lê Văn Cường", owner="minh")
    hidden = crm.service.open(theirs.id, "Khách của Minh")
    assert lan.get(f"/service/cases/{hidden.id}").status_code == 404
    assert lan.post(f"/service/cases/{hidden.id}/replies", json={"body": "hi"}).status_code == 404
    bad = lan.post("/service/cases", json={"customer_id": mine.id, "subject": "x", "priority": "asap"})
    assert bad.status_code == 422 and set(bad.json["errors"]) == {"priority"}
    case = crm.service.open(mine.id, "Đổi hàng")
    wrong = lan.post(f"/service/cases/{case.id}/status", json={"status": "reopened"})
    assert wrong.status_code == 422 and "cannot become reopened" in wrong.json["errors"]["status"][0]
    crm.service.set_status(case.id, "closed", resolution="Khách huỷ")
    assert lan.post(f"/service/cases/{case.id}/notes", json={"body": "late"}).status_code == 409
    refused = auditor.post(f"/service/cases/{case.id}/notes", json={"body": "hi"})
    assert refused.status_code == 403 and refused.json["permission"] == "service.write"
    assert auditor.get(f"/service/cases/{case.id}").status_code == 200
    policy = lan.put("/service/sla/policies/urgent", json={"first_response_minutes": 15, "resolution_minutes": 60})
    assert policy.status_code == 403 and policy.json["permission"] == "service.admin"
    assert {p["priority"] for p in lan.get("/service/sla/policies").json} == {"low", "normal", "high", "urgent"}


def test_the_openapi_document_validates_and_lists_the_service_routes(crm: Any) -> None:
    document = api_client(crm).get("/openapi.json").json
    validate(document)
    ours = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method, op in item.items()
        if op["tags"] == ["service"]
    }
    assert ("POST", "/service/cases/{case_id}/replies") in ours and ("GET", "/service/cases") in ours
    assert {
        ("POST", "/service/cases/{case_id}/merge"),
        ("POST", "/service/cases/{case_id}/attachments"),
        ("POST", "/service/cases/{case_id}/canned-replies"),
        ("POST", "/service/intake/form"),
        ("POST", "/service/intake/messages"),
        ("GET", "/service/intake/rejected"),
        ("POST", "/service/routing/rules"),
        ("PUT", "/service/routing/shifts/{username}"),
        ("PUT", "/service/canned/{key}/{language}"),
    } <= ours
