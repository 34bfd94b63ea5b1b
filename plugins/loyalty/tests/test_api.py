"""Loyalty over HTTP: balances, history, grants (once per Idempotency-Key), redemptions and the catalogue."""

from __future__ import annotations

import pytest
from openapi_spec_validator import validate
from werkzeug.test import Client

from crmkit.testing import add_user
from crmkit.web import create_app


@pytest.fixture
def api(loyal):
    """The app over ``loyal`` with a reward; Hoa manages Hà Nội, Lan sells there, Tâm in Sài Gòn; each
    salesperson owns a member (300 and 500 points). Returns (crm, client, members, headers per user)."""
    crm = loyal
    add_user(crm, "hoa", teams=["Hà Nội"], roles=["manager"])
    add_user(crm, "lan", teams=["Hà Nội"], roles=["sales"])
    add_user(crm, "tam", teams=["Sài Gòn"], roles=["sales"])
    crm.loyalty.programs.add_reward(
        "voucher-50k", "Voucher 50.000 ₫", 100, kind="discount", value_minor=50_000, stock=5
    )
    members = {}
    for owner, spent in (("lan", 3_000_000), ("tam", 5_000_000)):
        customer = crm.customers.add(name=f"Khách của {owner}", owner=owner)
        crm.sales.place(customer.id, spent)
        members[owner] = customer.id
    headers = {
        name: {"Authorization": f"Bearer {crm.users.create_token(name, 'test').secret}"} for name in ("hoa", "lan")
    }
    return crm, Client(create_app(crm)), members, headers


def test_balance_history_and_statement(api):
    crm, client, members, headers = api
    lan = members["lan"]
    answer = client.get(f"/loyalty/customers/{lan}", headers=headers["hoa"])
    assert answer.status_code == 200
    assert answer.json == {
        "customer_id": lan,
        "program": "default",
        "member": True,
        "points": 300,
        "tier": "member",
        "tier_since": answer.json["tier_since"],
        "value": {"currency": "VND", "minor": 150_000},
    }
    for note in ("một", "hai"):
        crm.loyalty.grant(lan, 10, note)
    first = client.get(f"/loyalty/customers/{lan}/history?limit=2", headers=headers["hoa"])
    assert first.status_code == 200
    assert [e["note"] for e in first.json["items"]] == ["hai", "một"]
    assert first.json["next"] and first.headers["Link"].endswith('rel="next"')
    rest = client.get(first.json["next"], headers=headers["hoa"])
    assert [e["points"] for e in rest.json["items"]] == [300] and rest.json["next"] is None
    today = crm.today().isoformat()
    statement = client.get(f"/loyalty/customers/{lan}/statement?start={today}&end={today}", headers=headers["hoa"])
    assert statement.status_code == 200
    assert (statement.json["earned"], statement.json["adjusted"], statement.json["closing"]) == (300, 20, 320)


def test_grant_deduct_redeem_and_cancel(api):
    crm, client, members, headers = api
    lan = members["lan"]
    granted = client.post(
        f"/loyalty/customers/{lan}/grants", json={"points": 50, "note": "bù giao hàng chậm"}, headers=headers["hoa"]
    )
    assert granted.status_code == 201
    assert (granted.json["points"], granted.json["reason"]) == (50, "grant")
    taken = client.post(
        f"/loyalty/customers/{lan}/deductions", json={"points": "20", "note": "trừ nhầm"}, headers=headers["hoa"]
    )
    assert taken.status_code == 201 and taken.json["points"] == -20
    redeemed = client.post(
        f"/loyalty/customers/{lan}/redemptions", json={"reward": "voucher-50k", "quantity": 2}, headers=headers["lan"]
    )
    assert redeemed.status_code == 201
    assert (redeemed.json["points"], redeemed.json["status"]) == (200, "completed")
    assert redeemed.json["code"].startswith("LY")
    assert crm.loyalty.balance(lan) == 130
    listed = client.get(f"/loyalty/customers/{lan}/redemptions", headers=headers["lan"])
    assert [r["id"] for r in listed.json] == [redeemed.json["id"]]
    cancelled = client.post(
        f"/loyalty/redemptions/{redeemed.json['id']}/cancel", json={"note": "khách đổi ý"}, headers=headers["lan"]
    )
    assert cancelled.status_code == 200 and cancelled.json["status"] == "cancelled"
    again = client.post(f"/loyalty/redemptions/{redeemed.json['id']}/cancel", headers=headers["lan"])
    assert again.status_code == 409
    assert crm.loyalty.balance(lan) == 330


def test_the_catalogue(api):
    _, client, _, headers = api
    rewards = client.get("/loyalty/rewards", headers=headers["lan"])
    assert rewards.status_code == 200
    assert [(r["code"], r["points_cost"], r["stock"], r["value"]) for r in rewards.json] == [
        ("voucher-50k", 100, 5, {"currency": "VND", "minor": 50_000})
    ]
    programs = client.get("/loyalty/programs", headers=headers["lan"])
    assert [p["code"] for p in programs.json] == ["default"]
    tiers = client.get("/loyalty/tiers?program=default", headers=headers["lan"])
    assert [t["code"] for t in tiers.json] == ["member", "silver", "gold", "diamond"]


def test_a_replayed_grant_grants_once(api):
    crm, client, members, headers = api
    lan, url = members["lan"], f"/loyalty/customers/{members['lan']}/grants"
    key = {**headers["hoa"], "Idempotency-Key": "grant-lan-1"}
    first = client.post(url, json={"points": 40, "note": "sinh nhật"}, headers=key)
    replay = client.post(url, json={"points": 40, "note": "sinh nhật"}, headers=key)
    assert (first.status_code, replay.status_code) == (201, 201)
    assert replay.json == first.json and replay.headers["Idempotent-Replayed"] == "true"
    assert crm.loyalty.balance(lan) == 340
    other = client.post(url, json={"points": 400, "note": "sinh nhật"}, headers=key)
    assert other.status_code == 422 and "Idempotency-Key" in other.json["errors"]
    assert crm.loyalty.balance(lan) == 340


def test_bad_input_names_the_field(api):
    crm, client, members, headers = api
    url = f"/loyalty/customers/{members['lan']}/grants"
    missing = client.post(url, json={"points": 10}, headers=headers["hoa"])
    assert missing.status_code == 422 and "note" in missing.json["errors"]
    fractional = client.post(url, json={"points": "1.5", "note": "x"}, headers=headers["hoa"])
    assert fractional.status_code == 422 and "points" in fractional.json["errors"]
    floating = client.post(url, json={"points": 1.0, "note": "x"}, headers=headers["hoa"])
    assert floating.status_code == 422 and "points" in floating.json["errors"]
    assert crm.loyalty.balance(members["lan"]) == 300


def test_out_of_scope_is_404_and_a_missing_permission_403(api):
    crm, client, members, headers = api
    tam = members["tam"]
    for path in ("", "/history", "/redemptions"):
        assert client.get(f"/loyalty/customers/{tam}{path}", headers=headers["lan"]).status_code == 404
    redeem = client.post(
        f"/loyalty/customers/{tam}/redemptions", json={"reward": "voucher-50k"}, headers=headers["lan"]
    )
    assert redeem.status_code == 404
    refused = client.post(
        f"/loyalty/customers/{members['lan']}/grants", json={"points": 10, "note": "x"}, headers=headers["lan"]
    )
    assert refused.status_code == 403 and refused.json["permission"] == "loyalty.points.grant"
    assert crm.loyalty.balance(tam) == 500


def test_openapi_lists_loyalty_operations(api):
    _, client, _, _ = api
    document = client.get("/openapi.json").json
    validate(document)
    tagged = {
        f"{method.upper()} {path}"
        for path, item in document["paths"].items()
        for method, op in item.items()
        if op.get("tags") == ["loyalty"]
    }
    assert {
        "GET /loyalty/customers/{customer_id}",
        "GET /loyalty/customers/{customer_id}/history",
        "POST /loyalty/customers/{customer_id}/grants",
        "POST /loyalty/customers/{customer_id}/redemptions",
        "GET /loyalty/rewards",
    } <= tagged
    assert all(path.startswith("/loyalty/") for path in (t.split(" ", 1)[1] for t in tagged))
