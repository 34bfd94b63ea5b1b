"""The sales HTTP API as an integrator meets it: every route answers through the service, as the caller, within
their scope; creating answers 201 with a Location; money-moving POSTs replay safely with an Idempotency-Key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
from openapi_spec_validator import validate

from crmkit.testing import ApiClient, api_client
from crmkit.web import create_app
from crmkit_sales import models as m
from crmkit_sales.api import crmkit_api_operations

from .conftest import count, make_shop

pytestmark = pytest.mark.crmkit_plugins("sales")

PROBLEM = "application/problem+json"
LINES = [{"sku": "CF-ROB-500", "quantity": 2}]  # 2 × 95.000 ₫ + 10% VAT = 209.000 ₫


@attrs.frozen
class Branch:
    """Hà Nội (manager Hằng, salesperson Lan) and Sài Gòn (salesperson Tuấn), each seller with a customer."""

    crm: Any
    hang: ApiClient
    lan: ApiClient
    tuan: ApiClient
    mine: Any  # Lan's customer
    theirs: Any  # Tuấn's customer


@pytest.fixture
def branch(crm: Any) -> Branch:
    make_shop(crm)
    app = create_app(crm)
    hang = api_client(crm, "hang", app=app, teams=["HN"], roles=["manager"])
    lan = api_client(crm, "lan", app=app, teams=["HN"], roles=["sales"])
    tuan = api_client(crm, "tuan", app=app, teams=["SG"], roles=["sales"])
    mine = crm.customers.add(name="Phạm Thị Mai", tags=["vip"], owner="lan", lifecycle_stage="lead")
    theirs = crm.customers.add(name="Võ Văn Sơn", owner="tuan")
    crm.sales.pipelines.add(
        "B2B", [{"name": "Tiếp cận", "probability": "0.2"}, {"name": "Đàm phán", "probability": "0.6"}]
    )
    return Branch(crm, hang, lan, tuan, mine, theirs)


def _ok(answer: Any, status: int = 200) -> Any:
    """The JSON of an answer that must have ``status``."""
    assert answer.status_code == status, answer.get_data(as_text=True)
    return answer.json


def test_the_catalogue_price_lists_and_pipelines(branch: Branch) -> None:
    hang, lan = branch.hang, branch.lan
    made = hang.post(
        "/sales/products",
        json={
            "sku": "TRA-OLONG",
            "name": "Trà Ô long 200g",
            "price_minor": 120_000,
            "currency": "vnd",
            "tax_rate": "10%",
            "category": "Trà",
        },
    )
    product = _ok(made, 201)
    assert made.headers["Location"] == f"/sales/products/{product['id']}"
    assert (product["currency"], product["tax_rate"], product["active"]) == ("VND", "0.1", True)
    read = lan.get("/sales/products/TRA-OLONG")
    assert _ok(read) == product and _ok(lan.get(f"/sales/products/{product['id']}")) == product
    changed = hang.patch(
        "/sales/products/TRA-OLONG", json={"price_minor": 125_000}, headers={"If-Match": read.headers["ETag"]}
    )
    assert _ok(changed)["price_minor"] == 125_000
    stale = hang.patch("/sales/products/TRA-OLONG", json={"active": False}, headers={"If-Match": read.headers["ETag"]})
    assert stale.status_code == 412 and _ok(lan.get("/sales/products/TRA-OLONG"))["active"] is True
    assert [p["sku"] for p in _ok(lan.get("/sales/products", query_string={"search": "tra o"}))] == ["TRA-OLONG"]
    _ok(hang.patch("/sales/products/TRA-OLONG", json={"active": False}))
    assert "TRA-OLONG" not in {p["sku"] for p in _ok(lan.get("/sales/products"))}
    assert "TRA-OLONG" in {p["sku"] for p in _ok(lan.get("/sales/products", query_string={"active": "all"}))}

    made = hang.post(
        "/sales/pricelists", json={"name": "Khách VIP", "currency": "VND", "group_tag": "vip", "group_condition": None}
    )
    vip = _ok(made, 201)
    assert made.headers["Location"] == f"/sales/pricelists/{vip['id']}"
    priced = _ok(hang.put(f"/sales/pricelists/{vip['id']}/prices/CF-ROB-500", json={"price_minor": 85_000}))
    assert [(i["sku"], i["min_quantity"], i["price_minor"]) for i in priced["items"]] == [("CF-ROB-500", "1", 85_000)]
    _ok(hang.put("/sales/pricelists/Khách VIP/prices/CF-ROB-500", json={"price_minor": 80_000, "min_quantity": "10"}))
    assert len(_ok(lan.get("/sales/pricelists/Khách VIP"))["items"]) == 2
    assert [p["name"] for p in _ok(lan.get("/sales/pricelists"))] == ["Khách VIP"]
    price = _ok(
        lan.get(
            "/sales/prices", query_string={"customer_id": branch.mine.id, "product": "CF-ROB-500", "quantity": "12"}
        )
    )
    assert (price["unit_price_minor"], price["price_list_id"], price["currency"]) == (80_000, vip["id"], "VND")
    left = _ok(hang.delete(f"/sales/pricelists/{vip['id']}/prices/CF-ROB-500", query_string={"min_quantity": "10"}))
    assert [i["min_quantity"] for i in left["items"]] == ["1"]
    renamed = _ok(hang.patch(f"/sales/pricelists/{vip['id']}", json={"name": "VIP", "valid_from": "2026-01-01"}))
    assert (renamed["name"], renamed["valid_from"]) == ("VIP", "2026-01-01")
    trade = _ok(
        hang.post(
            "/sales/pricelists",
            json={"name": "Đại lý", "currency": "VND", "group_condition": {"field": "kind", "value": "organization"}},
        ),
        201,
    )
    moved = _ok(hang.patch(f"/sales/pricelists/{trade['id']}", json={"group_tag": "đại lý"}))
    assert (moved["group_tag"], moved["group_condition"]) == ("đại lý", None)

    stages = [{"name": "Mới", "probability": "0.1"}]
    made = hang.post("/sales/pipelines", json={"name": "Bán lẻ", "stages": stages})
    pipeline = _ok(made, 201)
    assert [s["name"] for s in pipeline["stages"]] == ["Mới", "Won", "Lost"]
    assert _ok(lan.get("/sales/pipelines/Bán lẻ")) == pipeline
    assert [p["name"] for p in _ok(lan.get("/sales/pipelines"))] == ["B2B", "Bán lẻ"]
    stage_id = pipeline["stages"][0]["id"]
    stage = _ok(hang.patch(f"/sales/stages/{stage_id}", json={"name": "Liên hệ", "probability": "0.15"}))
    assert (stage["name"], stage["probability"]) == ("Liên hệ", "0.15")


def test_deals_open_change_and_move_through_their_stages(branch: Branch) -> None:
    lan = branch.lan
    made = lan.post(
        "/sales/deals",
        json={"customer_id": branch.mine.id, "pipeline": "B2B", "title": "Cà phê văn phòng", "amount_minor": 5_000_000},
    )
    deal = _ok(made, 201)
    assert made.headers["Location"] == f"/sales/deals/{deal['id']}"
    assert (deal["owner"], deal["currency"], deal["status"]) == ("lan", "VND", "open")
    read = lan.get(f"/sales/deals/{deal['id']}")
    assert _ok(read) == deal
    changed = _ok(
        lan.patch(
            f"/sales/deals/{deal['id']}",
            headers={"If-Match": read.headers["ETag"]},
            json={"amount_minor": 6_000_000, "expected_close": "2027-01-31"},
        )
    )
    assert (changed["amount_minor"], changed["expected_close"]) == (6_000_000, "2027-01-31")
    moved = _ok(lan.post(f"/sales/deals/{deal['id']}/move", json={"stage": "Đàm phán", "reason": "gửi báo giá"}))
    assert moved["stage_id"] != deal["stage_id"] and moved["status"] == "open"
    refused = lan.post(f"/sales/deals/{deal['id']}/lose", json={"reason": ""})
    assert refused.status_code == 422 and "reason" in refused.json["errors"]
    lost = _ok(lan.post(f"/sales/deals/{deal['id']}/lose", json={"reason": "giá cao"}))
    assert (lost["status"], lost["close_reason"]) == ("lost", "giá cao")
    won = _ok(lan.post(f"/sales/deals/{deal['id']}/win", json={}))
    assert won["status"] == "won" and won["closed_at"] is not None
    history = _ok(lan.get(f"/sales/deals/{deal['id']}/history"))
    assert [h["reason"] for h in history] == [None, "gửi báo giá", "giá cao", None]
    assert [d["id"] for d in _ok(lan.get("/sales/deals", query_string={"customer_id": branch.mine.id}))] == [deal["id"]]
    assert _ok(lan.get("/sales/deals", query_string={"status": "open"})) == []
    bad = lan.post("/sales/deals", json={"customer_id": branch.mine.id, "pipeline": {"id": 1}, "title": "X"})
    assert bad.status_code == 422 and "pipeline" in bad.json["errors"]


def test_quotes_move_through_their_workflow_and_become_an_order(branch: Branch) -> None:
    lan = branch.lan
    made = lan.post("/sales/quotes", json={"customer_id": branch.mine.id, "lines": LINES, "valid_days": 15})
    quote = _ok(made, 201)
    assert made.headers["Location"] == f"/sales/quotes/{quote['id']}"
    assert (quote["status"], quote["total_minor"], len(quote["lines"])) == ("draft", 209_000, 1)
    assert quote["lines"][0]["quantity"] == "2" and quote["lines"][0]["tax_rate"] == "0.1"
    rice = [{"sku": "GAO-ST25-5", "quantity": 1}]
    edited = _ok(lan.post(f"/sales/quotes/{quote['id']}/revise", json={"lines": rice}))
    assert (edited["id"], edited["version"], edited["total_minor"]) == (quote["id"], 1, 194_250)
    assert _ok(lan.post(f"/sales/quotes/{quote['id']}/send"))["status"] == "sent"
    second = _ok(lan.post(f"/sales/quotes/{quote['id']}/revise", json={"notes": "giao trước Tết"}))
    assert (second["version"], second["root_id"], second["status"]) == (2, quote["id"], "draft")
    assert [v["version"] for v in _ok(lan.get(f"/sales/quotes/{second['id']}/versions"))] == [1, 2]
    for step in ("send", "decline"):
        _ok(lan.post(f"/sales/quotes/{second['id']}/{step}"))
    third = _ok(lan.post(f"/sales/quotes/{second['id']}/revise", json={}))
    for step in ("send", "accept"):
        assert _ok(lan.post(f"/sales/quotes/{third['id']}/{step}"))["status"] == {"send": "sent"}.get(step, "accepted")
    other = _ok(lan.post("/sales/quotes", json={"customer_id": branch.mine.id, "lines": LINES}), 201)
    _ok(lan.post(f"/sales/quotes/{other['id']}/send"))
    assert _ok(lan.post(f"/sales/quotes/{other['id']}/expire"))["status"] == "expired"
    document = lan.get(f"/sales/quotes/{third['id']}/document", query_string={"printable": "true"})
    assert document.status_code == 200 and document.mimetype == "text/html" and "Q-000001-v3" in document.text
    made = lan.post(f"/sales/quotes/{third['id']}/order", json={"shipping_name": "Chị Mai"})
    order = _ok(made, 201)
    assert made.headers["Location"] == f"/sales/orders/{order['id']}"
    assert (order["quote_id"], order["total_minor"], order["shipping_name"]) == (third["id"], 194_250, "Chị Mai")
    assert _ok(lan.get(f"/sales/quotes/{third['id']}"))["order_id"] == order["id"]
    latest = _ok(lan.get("/sales/quotes", query_string={"customer_id": branch.mine.id}))
    assert [q["id"] for q in latest] == [other["id"], third["id"]]
    assert len(_ok(lan.get("/sales/quotes", query_string={"latest": "false"}))) == 4


def test_orders_are_placed_paid_fulfilled_refunded_and_cancelled(branch: Branch) -> None:
    lan, hang, crm = branch.lan, branch.hang, branch.crm
    made = lan.post(
        "/sales/orders", json={"customer_id": branch.mine.id, "lines": LINES, "shipping_phone": "0912 345 678"}
    )
    order = _ok(made, 201)
    assert made.headers["Location"] == f"/sales/orders/{order['id']}"
    assert (order["status"], order["total_minor"], order["paid_minor"], order["owner"]) == ("placed", 209_000, 0, "lan")
    assert crm.customers.get(branch.mine.id).lifecycle_stage == "customer"
    assert _ok(lan.get(f"/sales/orders/{order['id']}")) == order
    paid = _ok(
        lan.post(
            f"/sales/orders/{order['id']}/payments",
            json={"amount_minor": 100_000, "method": "momo", "reference": "MM-1"},
        ),
        201,
    )
    assert (paid["amount_minor"], paid["method"], paid["recorded_by"]) == (100_000, "momo", "lan")
    owed = _ok(lan.get(f"/sales/customers/{branch.mine.id}/outstanding"))
    assert owed == {"customer_id": branch.mine.id, "outstanding_minor": {"VND": 109_000}}
    assert _ok(lan.post(f"/sales/orders/{order['id']}/ship", json={}))["status"] == "shipped"
    delivered = _ok(lan.post(f"/sales/orders/{order['id']}/deliver", json={"at": "2026-12-01T09:00:00+07:00"}))
    assert (delivered["status"], delivered["delivered_at"]) == ("delivered", "2026-12-01T02:00:00+00:00")
    refund = _ok(hang.post(f"/sales/orders/{order['id']}/refunds", json={"amount_minor": 40_000, "reason": "vỡ"}), 201)
    assert (refund["amount_minor"], refund["recorded_by"], refund["customer_id"]) == (40_000, "hang", branch.mine.id)
    assert [r["id"] for r in _ok(lan.get(f"/sales/orders/{order['id']}/refunds"))] == [refund["id"]]
    assert [p["id"] for p in _ok(lan.get("/sales/payments", query_string={"order_id": order["id"]}))] == [paid["id"]]
    second = _ok(lan.post("/sales/orders", json={"customer_id": branch.mine.id, "lines": LINES}), 201)
    cancelled = _ok(lan.post(f"/sales/orders/{second['id']}/cancel", json={"reason": "khách đổi ý"}))
    assert (cancelled["status"], cancelled["cancel_reason"]) == ("cancelled", "khách đổi ý")
    listed = _ok(lan.get("/sales/orders", query_string={"customer_id": branch.mine.id}))
    assert [o["id"] for o in listed] == [second["id"], order["id"]]
    assert [o["id"] for o in _ok(lan.get("/sales/orders", query_string={"status": "cancelled"}))] == [second["id"]]


def test_replaying_an_order_or_a_payment_with_its_key_places_nothing_twice(branch: Branch) -> None:
    lan, crm = branch.lan, branch.crm
    body = {"customer_id": branch.mine.id, "lines": LINES}
    first = lan.post("/sales/orders", json=body, headers={"Idempotency-Key": "till-7-0001"})
    again = lan.post("/sales/orders", json=body, headers={"Idempotency-Key": "till-7-0001"})
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json == first.json and again.headers["Location"] == first.headers["Location"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert count(crm, m.orders) == 1 and count(crm, m.order_lines) == 1
    other = lan.post("/sales/orders", json={**body, "notes": "khác"}, headers={"Idempotency-Key": "till-7-0001"})
    assert other.status_code == 422 and "Idempotency-Key" in other.json["errors"] and count(crm, m.orders) == 1
    pay = {"amount_minor": 209_000, "method": "cash"}
    order_id = first.json["id"]
    for _ in range(2):
        _ok(lan.post(f"/sales/orders/{order_id}/payments", json=pay, headers={"Idempotency-Key": "pay-1"}), 201)
    assert count(crm, m.payments) == 1 and _ok(lan.get(f"/sales/orders/{order_id}"))["paid_minor"] == 209_000


def test_tasks_appointments_and_the_agenda(branch: Branch) -> None:
    lan, crm = branch.lan, branch.crm
    due = datetime.now(UTC) - timedelta(hours=1)
    made = lan.post(
        "/sales/tasks",
        json={"customer_id": branch.mine.id, "title": "Gọi lại", "due_at": due.isoformat(), "priority": "high"},
    )
    task = _ok(made, 201)
    assert made.headers["Location"] == f"/sales/tasks/{task['id']}" and task["employee"] == "lan"
    assert _ok(lan.get(f"/sales/tasks/{task['id']}")) == task
    assert [t["id"] for t in _ok(lan.get("/sales/tasks", query_string={"customer_id": branch.mine.id}))] == [task["id"]]
    assert [t["id"] for t in _ok(lan.get("/sales/tasks/overdue"))] == [task["id"]]
    done = _ok(lan.post(f"/sales/tasks/{task['id']}/complete", json={"outcome": "đã đặt hàng"}))
    assert done["done_at"] is not None and done["outcome"] == "đã đặt hàng"
    assert _ok(lan.get("/sales/tasks")) == []
    assert len(_ok(lan.get("/sales/tasks", query_string={"open_only": "false"}))) == 1

    today = crm.today()
    starts = datetime(today.year, today.month, today.day, 9, tzinfo=crm.timezone)
    made = lan.post(
        "/sales/appointments",
        json={
            "customer_id": branch.mine.id,
            "subject": "Nếm thử cà phê",
            "starts_at": starts.isoformat(),
            "place": "Quán 12",
        },
    )
    meeting = _ok(made, 201)
    assert made.headers["Location"] == f"/sales/appointments/{meeting['id']}"
    assert _ok(lan.get(f"/sales/appointments/{meeting['id']}")) == meeting
    later = _ok(
        lan.post(
            f"/sales/appointments/{meeting['id']}/reschedule",
            json={"starts_at": (starts + timedelta(hours=2)).isoformat()},
        )
    )
    assert datetime.fromisoformat(later["ends_at"]) - datetime.fromisoformat(later["starts_at"]) == timedelta(hours=1)
    agenda = _ok(lan.get("/sales/agenda", query_string={"on": today.isoformat()}))
    assert (agenda["employee"], [a["id"] for a in agenda["appointments"]]) == ("lan", [meeting["id"]])
    ics = lan.get("/sales/agenda.ics", query_string={"on": today.isoformat()})
    assert ics.status_code == 200 and ics.mimetype == "text/calendar" and "BEGIN:VEVENT" in ics.text
    held = _ok(lan.post(f"/sales/appointments/{meeting['id']}/outcome", json={"outcome": "mua 10 gói"}))
    assert (held["status"], held["outcome"]) == ("done", "mua 10 gói")
    other = _ok(
        lan.post(
            "/sales/appointments",
            json={
                "customer_id": branch.mine.id,
                "subject": "Gọi video",
                "starts_at": starts.isoformat(),
                "channel": "video",
            },
        ),
        201,
    )
    assert _ok(lan.post(f"/sales/appointments/{other['id']}/cancel"))["status"] == "cancelled"
    listed = _ok(lan.get("/sales/appointments", query_string={"customer_id": branch.mine.id}))
    assert {a["id"] for a in listed} == {meeting["id"], other["id"]}


def test_bad_input_names_the_field_and_writes_nothing(branch: Branch) -> None:
    lan, crm = branch.lan, branch.crm
    half = [{"sku": "CF-ROB-500", "quantity": 0.5}]  # a float: quantities are exact
    bad = lan.post("/sales/orders", json={"customer_id": branch.mine.id, "lines": half})
    assert (bad.status_code, bad.mimetype) == (422, PROBLEM)
    assert list(bad.json["errors"]) == ["lines.1.quantity"]
    unknown = lan.post(f"/sales/orders/{1}/payments", json={"amount_minor": 1, "tip": 5})
    assert unknown.status_code == 422 and unknown.json["errors"] == {"tip": ["Unknown field."]}
    assert lan.get("/sales/orders", query_string={"status": "lost"}).json["errors"].keys() == {"status"}
    out_of_range = [  # each would have reached the database (or a date's arithmetic) and failed there
        ("/sales/orders", {"customer_id": 2**64, "lines": LINES}, "customer_id"),
        (
            "/sales/orders",
            {"customer_id": branch.mine.id, "lines": [{"sku": "CF-ROB-500", "quantity": 10**12}]},
            "lines.1.quantity",
        ),
        ("/sales/quotes", {"customer_id": branch.mine.id, "lines": LINES, "issued_on": "9999-12-31"}, "issued_on"),
        (
            "/sales/appointments",
            {"customer_id": branch.mine.id, "subject": "x", "starts_at": "9999-12-31T23:30:00Z"},
            "starts_at",
        ),
        ("/sales/orders/1/payments", {"amount_minor": 2**70}, "amount_minor"),
    ]
    for path, body, field in out_of_range:
        answer = lan.post(path, json=body)
        assert answer.status_code == 422 and field in answer.json["errors"], (path, answer.json)
    assert lan.get("/sales/agenda", query_string={"on": "1906-05-01"}).json["errors"].keys() == {"on"}
    huge = lan.get(
        "/sales/prices",
        query_string={"customer_id": branch.mine.id, "product": "CF-ROB-500", "quantity": "-1.7976931348623157e+308"},
    )
    assert huge.status_code == 422 and huge.json["errors"].keys() == {"quantity"}
    for ref in ("²", str(2**64)):  # digits that are no id: the SKU or name is looked up, and nothing else
        assert lan.get(f"/sales/products/{ref}").status_code == 404
    deal = {"customer_id": branch.mine.id, "pipeline": 2**64, "title": "X"}
    assert lan.post("/sales/deals", json=deal).json["errors"].keys() == {"pipeline"}
    assert count(crm, m.orders) == 0 and count(crm, m.payments) == 0


def test_another_sellers_records_are_404_and_a_missing_permission_403(branch: Branch) -> None:
    crm, lan, tuan = branch.crm, branch.lan, branch.tuan
    theirs = branch.theirs.id
    deal = _ok(tuan.post("/sales/deals", json={"customer_id": theirs, "pipeline": "B2B", "title": "Gạo"}), 201)
    quote = _ok(tuan.post("/sales/quotes", json={"customer_id": theirs, "lines": LINES}), 201)
    order = _ok(tuan.post("/sales/orders", json={"customer_id": theirs, "lines": LINES}), 201)
    soon = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    task = _ok(tuan.post("/sales/tasks", json={"customer_id": theirs, "title": "Gọi", "due_at": soon}), 201)
    meeting = _ok(
        tuan.post("/sales/appointments", json={"customer_id": theirs, "subject": "Gặp", "starts_at": soon}), 201
    )
    for path in (
        f"/sales/deals/{deal['id']}",
        f"/sales/quotes/{quote['id']}",
        f"/sales/orders/{order['id']}",
        f"/sales/tasks/{task['id']}",
        f"/sales/appointments/{meeting['id']}",
        f"/sales/customers/{theirs}/outstanding",
        "/sales/orders/999999",
    ):
        answer = lan.get(path)
        assert (answer.status_code, answer.mimetype) == (404, PROBLEM), path
    assert lan.post(f"/sales/orders/{order['id']}/payments", json={"amount_minor": 1}).status_code == 404
    assert lan.post("/sales/orders", json={"customer_id": theirs, "lines": LINES}).status_code == 404
    assert _ok(lan.get("/sales/orders")) == [] and _ok(lan.get("/sales/deals")) == []
    denied = lan.post("/sales/products", json={"sku": "X-1", "name": "X", "price_minor": 1, "currency": "VND"})
    assert denied.status_code == 403 and denied.json["permission"] == "sales.products.manage"
    mine = _ok(lan.post("/sales/orders", json={"customer_id": branch.mine.id, "lines": LINES}), 201)
    _ok(lan.post(f"/sales/orders/{mine['id']}/payments", json={"amount_minor": 1_000}), 201)
    denied = lan.post(f"/sales/orders/{mine['id']}/refunds", json={"amount_minor": 1_000})
    assert denied.status_code == 403 and denied.json["permission"] == "sales.orders.refund"
    assert count(crm, m.refunds) == 0


def test_the_openapi_document_validates_and_lists_the_sales_operations(branch: Branch) -> None:
    document = _ok(branch.lan.get("/openapi.json"))
    validate(document)
    tagged = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method, op in item.items()
        if op["tags"] == ["sales"]
    }
    declared = {(op.method, op.openapi_path) for op in crmkit_api_operations(branch.crm)}
    assert tagged == declared and len(declared) > 50
    assert "sales" in {tag["name"] for tag in document["tags"]}
    place = document["paths"]["/sales/orders"]["post"]
    assert "Idempotency-Key" in {p["name"] for p in place["parameters"]}
    assert "vouchers" in document["components"]["schemas"]["OrderPlacementInput"]["properties"]
