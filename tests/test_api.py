"""The HTTP API as an integrator meets it: tokens, JSON, problems, paging, ETags, idempotency, limits, CORS."""

from __future__ import annotations

import json
import threading
from datetime import UTC
from typing import Any

import pytest
import sqlalchemy as sa
from werkzeug.test import Client

from crmkit import Plugin, hookimpl
from crmkit.errors import PluginError
from crmkit.testing import add_user, api_client
from crmkit.web import ApiSettings, Operation, create_app

PROBLEM = "application/problem+json"


def test_a_token_holder_creates_finds_and_reads_customers(crm: Any) -> None:
    lan = api_client(crm, "lan", roles=["sales"])
    made = lan.post("/customers", json={"name": "Nguyễn Thị Lan", "phone": "0912 345 678", "tags": ["vip"]})
    assert made.status_code == 201 and made.headers["Location"] == f"/customers/{made.json['id']}"
    assert (made.json["name"], made.json["phones"], made.json["owner"]) == ("Nguyễn Thị Lan", ["+84912345678"], "lan")
    found = lan.get("/customers", query_string={"q": "nguyen thi"})
    assert found.status_code == 200 and [c["id"] for c in found.json["items"]] == [made.json["id"]]
    read = lan.get(f"/customers/{made.json['id']}")
    assert read.json == made.json and read.headers["ETag"].startswith('"')
    assert read.headers["X-Request-Id"]


def test_lists_page_by_keyset_with_next_links_until_the_last_page(crm: Any) -> None:
    for n in range(5):
        crm.customers.add(name=f"Khách {n}")
    client = api_client(crm, "admin", roles=["administrator"])
    seen, page = [], client.get("/customers", query_string={"limit": 2})
    while True:
        seen += [c["name"] for c in page.json["items"]]
        if page.json["next"] is None:
            assert "Link" not in page.headers
            break
        assert page.headers["Link"] == f'<{page.json["next"]}>; rel="next"'
        page = client.get(page.json["next"].removeprefix("http://localhost"))
    assert seen == [f"Khách {n}" for n in range(5)]


def test_missing_forged_and_revoked_tokens_answer_401_problems(crm: Any) -> None:
    add_user(crm, "lan", roles=["sales"])
    token = crm.users.create_token("lan", "shop")
    anonymous = api_client(crm)
    for headers in ({}, {"Authorization": "Basic bGFuOng="}, {"Authorization": "Bearer crmkit_0000_forged"}):
        answer = anonymous.get("/customers", headers=headers)
        assert answer.status_code == 401 and answer.mimetype == PROBLEM
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    crm.users.revoke_token(token.id)
    assert anonymous.get("/customers", headers={"Authorization": f"Bearer {token.secret}"}).status_code == 401


def test_a_record_outside_the_scope_is_404_and_a_missing_permission_403(crm: Any) -> None:
    add_user(crm, "binh", roles=["sales"])
    theirs = crm.customers.add(name="Trần Văn Bình", owner="binh")
    lan = api_client(crm, "lan", roles=["sales"])
    assert lan.get(f"/customers/{theirs.id}").status_code == 404
    assert lan.get("/customers/999999").status_code == 404
    assert lan.patch(f"/customers/{theirs.id}", json={"city": "Huế"}).status_code == 404
    reader = api_client(crm, "xem", roles=["read-only"])
    denied = reader.post("/customers", json={"name": "Lê Văn C"})
    assert denied.status_code == 403 and denied.json["permission"] == "customers.create"


def test_bad_input_answers_a_problem_naming_the_field_and_writes_nothing(crm: Any) -> None:
    client = api_client(crm, "admin", roles=["administrator"])
    cases = [
        ({"data": b"{not json", "content_type": "application/json"}, 400, None),
        ({"json": {"name": "An", "email": "not-an-email"}}, 422, "email"),
        ({"json": {"name": "An", "shoe_size": 42}}, 422, "shoe_size"),
        ({"json": {"name": 12}}, 422, "name"),
        ({"json": ["a", "list"]}, 422, "body"),
        ({"data": "name=An", "content_type": "application/x-www-form-urlencoded"}, 415, None),
    ]
    for kwargs, status, field in cases:
        answer = client.post("/customers", **kwargs)
        assert (answer.status_code, answer.mimetype) == (status, PROBLEM), (kwargs, answer.json)
        if field:
            assert field in answer.json["errors"], answer.json
    assert client.get("/customers", query_string={"limit": 5000}).json["errors"] == {
        "limit": ["Must be greater than or equal to 1 and less than or equal to 1000."]
    }
    assert client.get("/customers", query_string={"after": "%%%"}).status_code == 422
    assert client.get("/customers", query_string={"colour": "red"}).json["errors"] == {"colour": ["Unknown field."]}
    assert crm.customers.find().items == []


def test_oversized_and_lying_bodies_are_refused_before_they_are_read(crm: Any) -> None:
    client = api_client(crm, "admin", roles=["administrator"], app=create_app(crm, settings=ApiSettings(max_body=1000)))
    big = client.post("/customers", json={"name": "An", "notes": "x" * 2000})
    assert big.status_code == 413 and big.mimetype == PROBLEM
    negative = client.post(
        "/customers", data=b"{}", environ_overrides={"CONTENT_LENGTH": "-1"}, content_type="application/json"
    )
    assert negative.status_code == 400
    assert crm.customers.find().items == []


def test_an_update_with_a_stale_etag_is_refused_412_and_a_fresh_one_applies(crm: Any) -> None:
    customer = crm.customers.add(name="Phạm Minh")
    client = api_client(crm, "admin", roles=["administrator"])
    etag = client.get(f"/customers/{customer.id}").headers["ETag"]
    crm.customers.update(customer.id, city="Đà Nẵng")  # someone else changes it meanwhile
    stale = client.patch(f"/customers/{customer.id}", json={"city": "Huế"}, headers={"If-Match": etag})
    assert stale.status_code == 412 and stale.headers["ETag"] != etag
    assert crm.customers.get(customer.id).city == "Đà Nẵng"
    fresh = client.patch(f"/customers/{customer.id}", json={"city": "Huế"}, headers={"If-Match": stale.headers["ETag"]})
    assert fresh.status_code == 200 and fresh.json["city"] == "Huế"
    assert client.get(f"/customers/{customer.id}").headers["ETag"] not in (etag, stale.headers["ETag"])


def test_an_idempotency_key_replays_the_first_answer_and_refuses_another_body(crm: Any) -> None:
    client = api_client(crm, "admin", roles=["administrator"])
    first = client.post("/customers", json={"name": "Đỗ Hà"}, headers={"Idempotency-Key": "k-1"})
    again = client.post("/customers", json={"name": "Đỗ Hà"}, headers={"Idempotency-Key": "k-1"})
    assert (again.status_code, again.json, again.headers["Idempotent-Replayed"]) == (201, first.json, "true")
    other = client.post("/customers", json={"name": "Đỗ Hải"}, headers={"Idempotency-Key": "k-1"})
    assert other.status_code == 422 and "Idempotency-Key" in other.json["errors"]
    assert [c.name for c in crm.customers.find().items] == ["Đỗ Hà"]


def test_concurrent_posts_with_one_idempotency_key_create_once(crm: Any) -> None:
    client = api_client(crm, "admin", roles=["administrator"])
    answers: list[Any] = []

    def post() -> None:
        answers.append(client.post("/customers", json={"name": "Vũ Lan"}, headers={"Idempotency-Key": "same"}))

    threads = [threading.Thread(target=post) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {a.status_code for a in answers} == {201} and len({a.json["id"] for a in answers}) == 1
    assert len(crm.customers.find().items) == 1


def test_a_token_over_its_rate_limit_gets_429_with_retry_after(crm: Any) -> None:
    client = api_client(crm, "admin", roles=["administrator"], app=create_app(crm, settings=ApiSettings(rate_limit=3)))
    statuses = [client.get("/customers").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = client.get("/customers")
    assert limited.mimetype == PROBLEM and int(limited.headers["Retry-After"]) >= 1


def test_cors_answers_preflights_and_exposes_headers_only_to_allowed_origins(crm: Any) -> None:
    app = create_app(crm, settings=ApiSettings(cors_origins=("https://shop.example",)))
    client = api_client(crm, "admin", roles=["administrator"], app=app)
    preflight = Client(app).open("/customers", method="OPTIONS", headers={"Origin": "https://shop.example"})
    assert preflight.status_code == 204 and "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert "Idempotency-Key" in preflight.headers["Access-Control-Allow-Headers"]
    allowed = client.get("/customers", headers={"Origin": "https://shop.example"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    assert (
        "Access-Control-Allow-Origin"
        not in client.get("/customers", headers={"Origin": "https://evil.example"}).headers
    )


def test_request_ids_are_echoed_and_a_crash_leaks_nothing_but_the_id(crm_factory: Any, caplog: Any) -> None:
    def explode(request: Any) -> Any:
        raise RuntimeError("password=hunter2 in a stack trace")

    @hookimpl
    def crmkit_api_operations(crm: Any) -> list[Operation]:
        return [Operation("GET", "/boom/now", explode, "Fails")]

    crm = crm_factory(
        plugins=[
            Plugin(name="boom", hooks=[type("H", (), {"crmkit_api_operations": staticmethod(crmkit_api_operations)})()])
        ]
    )
    client = api_client(crm, "admin", roles=["administrator"])
    assert client.get("/health", headers={"X-Request-Id": "abc-123"}).headers["X-Request-Id"] == "abc-123"
    assert client.get("/health", headers={"X-Request-Id": "bad id;<x>"}).headers["X-Request-Id"] != "bad id;<x>"
    crashed = client.get("/boom/now", headers={"X-Request-Id": "req-9"})
    assert crashed.status_code == 500 and crashed.json["request_id"] == "req-9"
    assert "hunter2" not in crashed.get_data(as_text=True)
    assert "hunter2" in caplog.text and "req-9" in caplog.text


def test_a_plugin_route_outside_its_prefix_fails_the_app_naming_the_plugin(crm_factory: Any) -> None:
    @hookimpl
    def crmkit_api_operations(crm: Any) -> list[Operation]:
        return [Operation("GET", "/customers/steal", lambda r: {}, "Shadows the core")]

    crm = crm_factory(
        plugins=[
            Plugin(
                name="rogue", hooks=[type("H", (), {"crmkit_api_operations": staticmethod(crmkit_api_operations)})()]
            )
        ]
    )
    with pytest.raises(PluginError, match="rogue.*must live under /rogue/"):
        create_app(crm)


def test_unknown_routes_and_methods_answer_problems_and_trace_is_refused(crm: Any) -> None:
    client = api_client(crm, "admin", roles=["administrator"])
    assert client.get("/nowhere").status_code == 404
    for method in ("TRACE", "PUT"):
        refused = client.open(method, "/health")
        assert refused.status_code == 405 and "GET" in refused.headers["Allow"]
    head = client.open("HEAD", "/health")
    assert head.status_code == 200 and head.data == b""


def test_the_openapi_document_validates_and_the_docs_page_is_served_without_a_cdn(crm: Any) -> None:
    from openapi_spec_validator import validate

    client = api_client(crm)
    document = client.get("/openapi.json").json
    validate(document)
    assert document["openapi"] == "3.1.0"
    assert {"/customers", "/customers/{customer_id}", "/interactions", "/users", "/webhooks"} <= document[
        "paths"
    ].keys()
    create = document["paths"]["/customers"]["post"]
    assert create["tags"] == ["customers"] and "Idempotency-Key" in json.dumps(create["parameters"])
    page = client.get("/docs")
    assert page.status_code == 200 and b"docs/docs.js" in page.data and b"http" not in page.data.split(b"<body")[1]
    assert client.get("/docs/docs.js").status_code == 200
    assert client.get("/docs/..%2fapp.py").status_code == 404


def test_interactions_are_logged_and_read_on_the_timeline(crm: Any) -> None:
    customer = crm.customers.add(name="Hoàng Yến")
    client = api_client(crm, "admin", roles=["administrator"])
    logged = client.post(
        "/interactions",
        json={
            "customer_id": customer.id,
            "channel": "phone",
            "subject": "Hỏi giá",
            "occurred_at": "2026-12-01T09:00:00+07:00",
        },
    )
    assert logged.status_code == 201 and logged.json["occurred_at"] == "2026-12-01T02:00:00+00:00"
    timeline = client.get(f"/customers/{customer.id}/interactions", query_string={"channel": "phone"})
    assert [i["subject"] for i in timeline.json["items"]] == ["Hỏi giá"]
    bad = client.post("/interactions", json={"customer_id": customer.id, "channel": "pigeon"})
    assert bad.status_code == 422 and "channel" in bad.json["errors"]


def test_the_app_mounts_inside_another_wsgi_app_under_a_prefix(crm: Any) -> None:
    from werkzeug.middleware.dispatcher import DispatcherMiddleware
    from werkzeug.wrappers import Response

    host = DispatcherMiddleware(Response("the shop"), {"/crm": create_app(crm)})
    client = Client(host)
    assert client.get("/crm/health").json == {"status": "ok"}
    assert client.get("/").data == b"the shop"


def test_every_core_route_shows_exactly_the_callers_scope(crm: Any) -> None:
    from crmkit.testing import api_scope_calls, check_scopes

    calls = api_scope_calls(crm)
    assert {
        "GET /customers",
        "GET /customers/{customer_id}",
        "GET /customers/{customer_id}/interactions",
        "GET /customers/{customer_id}/export",
        "GET /audit",
    } <= calls.keys()

    def populate(crm: Any, customer_id: int) -> None:
        crm.interactions.log(customer_id, "phone", subject="Gọi lại")
        crm.customers.add_tags(customer_id, "vip")

    check_scopes(crm, calls, populate, examples=4)


def test_an_expired_idempotency_key_may_be_used_again(crm: Any) -> None:
    from datetime import datetime, timedelta

    from crmkit.core import tables as t

    client = api_client(crm, "admin", roles=["administrator"])
    first = client.post("/customers", json={"name": "Mai Anh"}, headers={"Idempotency-Key": "daily"})
    with crm.transaction() as session:  # two days pass: past the 24 hours a key is kept
        session.connection().execute(
            t.idempotency_keys.update().values(created_at=datetime.now(UTC) - timedelta(days=2))
        )
    later = client.post("/customers", json={"name": "Mai Anh"}, headers={"Idempotency-Key": "daily"})
    assert later.status_code == 201 and later.json["id"] != first.json["id"]


def test_the_worker_purges_answers_older_than_the_keeping_time(crm: Any) -> None:
    from datetime import datetime, timedelta

    from crmkit.core import tables as t
    from crmkit.worker import Worker

    client = api_client(crm, "admin", roles=["administrator"])
    for key in ("old", "new"):
        client.post("/customers", json={"name": f"Khách {key}"}, headers={"Idempotency-Key": key})
    with crm.transaction() as session:
        session.connection().execute(
            t.idempotency_keys.update()
            .where(t.idempotency_keys.c.key == "old")
            .values(created_at=datetime.now(UTC) - timedelta(hours=25))
        )
    Worker(crm).run(once=True)
    with crm.reading() as conn:
        assert list(conn.execute(sa.select(t.idempotency_keys.c.key)).scalars()) == ["new"]


def test_an_erasure_replaces_the_stored_answers_about_the_person_and_a_retry_is_not_run_again(crm: Any) -> None:
    from crmkit.core import tables as t

    client = api_client(crm, "admin", roles=["administrator"])
    nhung = {"name": "Phạm Bảo Nhung", "email": "nhung@example.vn", "phone": "0398 613 804"}
    created = client.post("/customers", json=nhung, headers={"Idempotency-Key": "signup-nhung"})
    call = {"customer_id": created.json["id"], "channel": "phone", "summary": "hỏi giá máy lạnh"}
    logged = client.post("/interactions", json=call, headers={"Idempotency-Key": "call-1"})
    binh = client.post("/customers", json={"name": "Trần Văn Bình"}, headers={"Idempotency-Key": "signup-binh"})
    assert logged.status_code == 201 and binh.status_code == 201

    crm.customers.erase(created.json["id"])

    with crm.reading() as conn:
        bodies = dict(conn.execute(sa.select(t.idempotency_keys.c.key, t.idempotency_keys.c.body)).all())
    assert not any(b"Nhung" in bytes(body) or b"613804" in bytes(body) for body in bodies.values())
    retried = client.post("/customers", json=nhung, headers={"Idempotency-Key": "signup-nhung"})
    assert retried.status_code == 410 and "erased" in retried.json["title"]
    assert client.post("/interactions", json=call, headers={"Idempotency-Key": "call-1"}).status_code == 410
    again = client.post("/customers", json={"name": "Trần Văn Bình"}, headers={"Idempotency-Key": "signup-binh"})
    assert again.status_code == 201 and again.json == binh.json  # another person's answer is kept
    assert list(crm.customers.find("Phạm Bảo Nhung").items) == []  # the retry did not sign her up again


def test_a_non_atomic_handler_claims_its_key_and_a_failure_frees_it(crm_factory: Any) -> None:
    calls: list[int] = []

    def run(request: Any) -> Any:
        calls.append(1)
        if request.body.get("fail"):
            raise RuntimeError("step 2 crashed")
        return {"run": len(calls)}

    @hookimpl
    def crmkit_api_operations(crm: Any) -> list[Operation]:
        from marshmallow import fields

        from crmkit.web import query_schema

        return [
            Operation(
                "POST",
                "/runner/runs",
                run,
                "A resumable run",
                atomic=False,
                body=query_schema("RunBody", fail=fields.Boolean()),
            )
        ]

    crm = crm_factory(
        plugins=[
            Plugin(
                name="runner", hooks=[type("H", (), {"crmkit_api_operations": staticmethod(crmkit_api_operations)})()]
            )
        ]
    )
    client = api_client(crm, "admin", roles=["administrator"])
    assert client.post("/runner/runs", json={"fail": True}, headers={"Idempotency-Key": "r"}).status_code == 500
    done = client.post("/runner/runs", json={"fail": True}, headers={"Idempotency-Key": "r2"})
    assert done.status_code == 500
    ok = client.post("/runner/runs", json={}, headers={"Idempotency-Key": "r3"})
    again = client.post("/runner/runs", json={}, headers={"Idempotency-Key": "r3"})
    assert (ok.json, again.json, again.headers["Idempotent-Replayed"]) == ({"run": 3}, {"run": 3}, "true")
    retried = client.post("/runner/runs", json={"fail": True}, headers={"Idempotency-Key": "r"})
    assert retried.status_code == 500 and len(calls) == 4  # the failed first attempt left its key free


def test_crmkit_serve_runs_the_api_on_gunicorn_workers_and_stops_on_sigterm(crm_factory: Any) -> None:
    import http.client
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    crm = crm_factory(plugins=None)  # the command loads every installed plugin
    add_user(crm, "lan", roles=["sales"])
    token = crm.users.create_token("lan", "serve test").secret
    crm.customers.add(name="Lý Thu", owner="lan")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = crm.engine.url.render_as_string(hide_password=False)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "crmkit.cli.main",
            "--db",
            url,
            "serve",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--threads",
            "2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/customers?q=ly%20thu", headers={"Authorization": f"Bearer {token}"})
                answer = conn.getresponse()
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "crmkit serve did not start"
                time.sleep(0.2)
        assert answer.status == 200 and [c["name"] for c in json.loads(answer.read())["items"]] == ["Lý Thu"]
        assert answer.getheader("Server") == "gunicorn"
    finally:
        server.send_signal(signal.SIGTERM)
        output = server.communicate(timeout=60)[0]
    assert server.returncode == 0, output
    assert "2 worker(s)" in output and "Booting worker" in output and os.linesep in output
