"""The campaigns plugin's HTTP API: segments with live counts, campaigns from create to report, as users with
tokens — their scope, their permissions, the refusals — and the OpenAPI document listing it all."""

from __future__ import annotations

import campaigns_testkit as kit
import pytest
from openapi_spec_validator import validate

from crmkit.testing import api_client
from crmkit.web import create_app
from crmkit_campaigns.permissions import PERMISSIONS

pytestmark = pytest.mark.crmkit_plugins("campaigns")

#: Every campaigns permission over the marketer's team, and the team's customers to read.
TEAM_MARKETING = {**{p.name: ("team" if p.scoped else "all") for p in PERMISSIONS}, "customers.read": "team"}


@pytest.fixture
def branches(shop):
    """Mai markets for Hà Nội (Lan's three customers); Hoa's two customers in Sài Gòn are outside her scope."""
    from crmkit.testing import add_user

    add_user(shop, "lan", teams=["HN"], roles=["sales"])
    add_user(shop, "hoa", teams=["SG"], roles=["sales"])
    people = {
        "lan": kit.people(shop, 3, prefix="Lan", owner="lan"),
        "hoa": kit.people(shop, 2, prefix="Hoa", owner="hoa"),
    }
    app = create_app(shop)
    return shop, people, app, api_client(shop, "mai", app=app, teams=["HN"], grants=TEAM_MARKETING)


def test_segments_list_create_read_and_count_live_in_the_callers_scope(branches):
    crm, people, _, mai = branches
    made = mai.post(
        "/campaigns/segments", json={"name": "Hà Nội", "expression": 'city = "ha noi"', "description": "Thủ đô"}
    )
    assert made.status_code == 201, made.json
    segment = made.json
    assert made.headers["Location"] == f"/campaigns/segments/{segment['id']}"
    assert (segment["name"], segment["created_by"]) == ("Hà Nội", "mai")
    assert mai.get(made.headers["Location"]).json == segment
    assert [s["name"] for s in mai.get("/campaigns/segments").json] == ["Hà Nội"]
    assert mai.get(f"/campaigns/segments/{segment['id']}/count").json == {"customers": 3}  # Lan's, not Hoa's
    assert crm.campaigns.segments.count(segment["id"]) == 5
    counted = mai.get("/campaigns/segments/count", query_string={"expression": 'name starts with "Lan"'})
    assert counted.json == {"customers": 3}
    assert mai.get("/campaigns/segments/count").json == {"customers": 3}  # no expression: everyone in scope
    kit.people(crm, 1, prefix="Lan moi", owner="lan")
    assert mai.get(f"/campaigns/segments/{segment['id']}/count").json == {"customers": 4}  # live, not cached


def test_campaigns_list_create_read_run_preview_and_report(branches):
    crm, people, _, mai = branches
    made = mai.post(
        "/campaigns/",
        json={
            "name": "Tết",
            "channel": "email",
            "subject": "Chúc Tết {{ given_name }}",
            "body": "Ưu đãi Tết cho {{ name }}",
            "cost_per_message_minor": 500,
            "holdout_percent": "0",
            "budget_minor": 5_000_000,
        },
    )
    assert made.status_code == 201, made.json
    campaign = made.json
    assert made.headers["Location"] == f"/campaigns/{campaign['id']}"
    assert (campaign["status"], campaign["owner"], campaign["currency"]) == ("draft", "mai", "VND")
    assert (campaign["budget_minor"], campaign["holdout_percent"]) == (5_000_000, "0")  # minor units; Decimal text
    assert [v["name"] for v in campaign["variants"]] == ["A"]
    assert mai.get(made.headers["Location"]).json == campaign
    assert [c["name"] for c in mai.get("/campaigns/").json] == ["Tết"]
    assert mai.get("/campaigns", query_string={"status": "running"}).json == []
    lan = people["lan"][0]
    preview = mai.get(f"/campaigns/{campaign['id']}/preview/{lan.id}").json
    assert (preview["eligible"], preview["subject"], preview["to"]) == (True, "Chúc Tết Lan0", "l***@example.vn")
    run = mai.post(f"/campaigns/{campaign['id']}/run")
    assert run.status_code == 200, run.json
    assert (run.json["audience"], run.json["queued"]) == (3, 3)  # Mai's team's customers only
    crm.campaigns.dispatch()
    report = mai.get(f"/campaigns/{campaign['id']}/report").json
    assert (report["campaign"]["status"], report["audience"], report["scoped_to"]) == ("done", 3, "mai")
    assert report["cost_minor"] == 1500 and {g["name"] for g in report["groups"]} >= {"A", "all"}
    assert mai.get("/campaigns/", query_string={"status": "done"}).json[0]["id"] == campaign["id"]


def test_bad_input_answers_422_naming_the_field(branches):
    _, _, _, mai = branches
    bad = mai.post("/campaigns/segments", json={"name": "Sai", "expression": 'city = "Huế" and'})
    assert bad.status_code == 422 and "expression" in bad.json["errors"], bad.json
    assert bad.headers["Content-Type"] == "application/problem+json"
    unknown = mai.post("/campaigns/", json={"name": "X", "channel": "email", "body": "x", "budget": 5})
    assert unknown.status_code == 422 and unknown.json["errors"] == {"budget": ["Unknown field."]}
    missing = mai.post("/campaigns/", json={"name": "X", "body": "x", "holdout_percent": 90})
    assert missing.status_code == 422 and {"channel", "holdout_percent"} <= set(missing.json["errors"]), missing.json
    assert mai.get("/campaigns/", query_string={"status": "paused"}).json["errors"] == {
        "status": ["Must be one of: draft, scheduled, running, done, cancelled, transactional."]
    }


def test_a_customer_outside_the_scope_is_404_and_a_missing_permission_403(branches):
    crm, people, app, mai = branches
    campaign = crm.campaigns.create("Tết", channel="email", body="x")
    outside = mai.get(f"/campaigns/{campaign.id}/preview/{people['hoa'][0].id}")
    assert outside.status_code == 404, outside.json
    assert mai.get("/campaigns/999999").status_code == 404
    reader = api_client(crm, "an", app=app, roles=["read-only"])
    assert reader.get(f"/campaigns/{campaign.id}").status_code == 200
    refused = reader.post("/campaigns/", json={"name": "Của An", "channel": "email", "body": "x"})
    assert refused.status_code == 403 and refused.json["permission"] == "campaigns.manage"
    assert reader.post(f"/campaigns/{campaign.id}/run").json["permission"] == "campaigns.send"
    assert api_client(crm, app=app).get("/campaigns/segments").status_code == 401  # no token


def test_the_openapi_document_validates_and_lists_the_campaigns_operations(branches):
    _, _, app, _ = branches
    document = api_client(branches[0], app=app).get("/openapi.json").json
    validate(document)
    tagged = {
        (method.upper(), path): op
        for path, ops in document["paths"].items()
        for method, op in ops.items()
        if op.get("tags") == ["campaigns"]
    }
    assert set(tagged) == {
        ("GET", "/campaigns/segments"),
        ("POST", "/campaigns/segments"),
        ("GET", "/campaigns/segments/{segment_id}"),
        ("GET", "/campaigns/segments/{segment_id}/count"),
        ("GET", "/campaigns/segments/count"),
        ("GET", "/campaigns/"),
        ("POST", "/campaigns/"),
        ("GET", "/campaigns/{campaign_id}"),
        ("POST", "/campaigns/{campaign_id}/run"),
        ("GET", "/campaigns/{campaign_id}/preview/{customer_id}"),
        ("GET", "/campaigns/{campaign_id}/report"),
        ("GET", "/campaigns/t/o/{token}"),
        ("GET", "/campaigns/t/c/{token}"),
        ("GET", "/campaigns/t/u/{token}"),
        ("POST", "/campaigns/t/u/{token}"),
        ("POST", "/campaigns/t/events"),
        ("GET", "/campaigns/t/health"),
    }
    public = {key for key, op in tagged.items() if op["security"] == []}
    assert public == {key for key in tagged if key[1].startswith("/campaigns/t/")}
    assert "campaigns" in {tag["name"] for tag in document["tags"]}
