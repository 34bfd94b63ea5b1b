"""Intake (issue 17 item 2): a web form and an inbound e-mail/chat message become cases for the customer found by
e-mail or phone (created when unknown), replies thread onto the open case by ``[#id]`` or message ids, duplicates
within minutes fold; a malformed payload is refused naming the field with nothing written but its raw text kept,
exported and erased with the matching customer and purged later — through the service and the API with an
intake-only token, with two identical messages racing and a kill -9 in the middle of one."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

import crmkit
from crmkit.testing import FrozenClock, add_user, api_client, kill_when_ready
from crmkit_service.models import cases, rejected_payloads

pytestmark = pytest.mark.crmkit_plugins("service")


@pytest.fixture
def clocked(crm_factory: Any) -> tuple[Any, FrozenClock]:
    clock = FrozenClock()
    return crm_factory(plugins=["service"], clock=clock), clock


def _count(crm: Any, table: sa.Table) -> int:
    with crm.reading() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def test_a_web_form_opens_a_case_for_the_customer_found_by_email_or_phone(crm):
    an = crm.customers.add(name="Nguyễn Văn An", email="an@example.vn", phone="0912 345 678")
    by_email = crm.service.intake.web_form(
        {"email": " An@Example.VN ", "subject": "Máy lạnh không lạnh", "message": "Lắp 3 ngày\nchỉ thổi gió"}
    )
    assert (by_email.action, by_email.customer_id, by_email.customer_created) == ("opened", an.id, False)
    case = crm.service.get(by_email.case_id)
    assert (case.channel, case.subject, case.description) == ("web", "Máy lạnh không lạnh", "Lắp 3 ngày\nchỉ thổi gió")
    by_phone = crm.service.intake.web_form({"phone": "+84 912 345 678", "subject": "Hỏi bảo hành", "message": "?"})
    assert (by_phone.action, by_phone.customer_id) == ("opened", an.id)


def test_an_unknown_sender_becomes_a_customer(crm):
    got = crm.service.intake.inbound_message(
        {"channel": "chat", "from_email": "binh@example.vn", "from_name": "Trần Thị Bình", "body": "Đơn hàng\ngiao trễ"}
    )
    assert got.action == "opened" and got.customer_created
    binh = crm.customers.get(got.customer_id)
    assert (binh.name, binh.emails) == ("Trần Thị Bình", ("binh@example.vn",))
    case = crm.service.get(got.case_id)
    assert (case.channel, case.subject, case.description) == ("chat", "Đơn hàng", "Đơn hàng\ngiao trễ")


def test_replies_thread_by_the_subject_reference_or_the_message_ids(crm):
    an = crm.customers.add(name="Nguyễn Văn An", email="an@example.vn")
    first = crm.service.intake.inbound_message(
        {"from_email": "an@example.vn", "subject": "Máy giặt kêu", "body": "Kêu to khi vắt", "message_id": "<m1@mail>"}
    )
    crm.service.reply(first.case_id, "Dạ, anh gửi giúp em video ạ")
    by_header = crm.service.intake.inbound_message(
        {
            "from_email": "an@example.vn",
            "subject": "Re: Máy giặt kêu",
            "body": "Video đây",
            "message_id": "<m2@mail>",
            "in_reply_to": "<reply-from-agent@shop>",
            "references": "<m1@mail> <reply-from-agent@shop>",
        }
    )
    by_subject = crm.service.intake.inbound_message(
        {"from_email": "an@example.vn", "subject": f"Re: [#{first.case_id}] Máy giặt kêu", "body": "Còn đó không?"}
    )
    by_second_id = crm.service.intake.inbound_message(
        {"from_email": "an@example.vn", "subject": "Re: Re: Máy giặt kêu", "body": "Ok", "references": ["<m2@mail>"]}
    )
    assert [r.action for r in (by_header, by_subject, by_second_id)] == ["threaded"] * 3
    assert {r.case_id for r in (by_header, by_subject, by_second_id)} == {first.case_id}
    conversation = crm.service.conversation(first.case_id)
    assert [(m.direction, m.body) for m in conversation] == [
        ("outbound", "Dạ, anh gửi giúp em video ạ"),
        ("inbound", "Video đây"),
        ("inbound", "Còn đó không?"),
        ("inbound", "Ok"),
    ]
    assert [m.external_id for m in conversation] == [None, "<m2@mail>", None, None]
    # Another customer naming An's case opens their own; so does a reference to a closed case.
    other = crm.service.intake.inbound_message(
        {"from_email": "cuong@example.vn", "subject": f"[#{first.case_id}] hi", "body": "?"}
    )
    assert other.action == "opened" and other.case_id != first.case_id
    crm.service.set_status(first.case_id, "closed", resolution="Đã sửa")
    again = crm.service.intake.inbound_message(
        {"from_email": "an@example.vn", "subject": f"Re: [#{first.case_id}] Máy giặt kêu", "body": "Lại kêu"}
    )
    assert again.action == "opened" and again.customer_id == an.id


def test_a_reply_to_a_merged_duplicate_lands_on_the_kept_case(crm):
    crm.customers.add(name="Nguyễn Văn An", email="an@example.vn")
    kept = crm.service.intake.web_form({"email": "an@example.vn", "subject": "Hỏng", "message": "1"})
    dup = crm.service.intake.web_form({"email": "an@example.vn", "subject": "Hỏng nữa", "message": "2"})
    crm.service.merge(kept.case_id, dup.case_id)
    got = crm.service.intake.web_form({"email": "an@example.vn", "subject": f"[#{dup.case_id}]", "message": "3"})
    assert (got.action, got.case_id) == ("threaded", kept.case_id)


def test_the_same_message_within_minutes_is_folded(clocked):
    crm, clock = clocked
    message = {"from_email": "an@example.vn", "subject": "Giao hàng trễ", "body": "Đơn 1042 chưa tới"}
    first = crm.service.intake.inbound_message(message)
    clock.advance(timedelta(minutes=3))
    twice = crm.service.intake.inbound_message({**message, "body": "Đơn  1042 chưa tới "})
    assert (twice.action, twice.case_id, twice.customer_created) == ("folded", first.case_id, False)
    assert _count(crm, cases) == 1 and crm.service.conversation(first.case_id) == []
    clock.advance(timedelta(minutes=30))
    later = crm.service.intake.inbound_message(message)
    assert later.action == "opened" and later.case_id != first.case_id


@pytest.mark.parametrize(
    ("door", "payload", "field"),
    [
        ("web_form", {"subject": "Hỏi", "message": "?"}, "email"),
        ("web_form", {"email": "an@example.vn", "message": "?"}, "subject"),
        ("web_form", {"email": "an@example.vn", "subject": "x", "message": "?", "colour": "red"}, "colour"),
        ("web_form", {"email": "an@example", "subject": "x", "message": "?"}, "email"),
        ("web_form", {"phone": "12", "subject": "x", "message": "?"}, "phone"),
        ("inbound_message", {"from_email": "an@example.vn", "subject": "x\x00", "body": "?"}, "subject"),
        ("inbound_message", {"from_email": "an@example.vn", "body": ""}, "body"),
        ("inbound_message", {"from_email": "an@example.vn", "body": "?", "channel": "pigeon"}, "channel"),
        ("inbound_message", {"from_email": "an@example.vn", "body": "?", "references": [1, 2]}, "references"),
        ("inbound_message", ["not", "an", "object"], "payload"),
    ],
)
def test_a_malformed_payload_is_refused_naming_the_field_and_kept(crm, door, payload, field):
    with pytest.raises(crmkit.ValidationError) as refused:
        getattr(crm.service.intake, door)(payload)
    assert field in refused.value.errors
    assert _count(crm, cases) == 0 and crm.customers.find().items == []
    [kept] = crm.service.intake.rejected()
    assert (kept.source, kept.field) == ("form" if door == "web_form" else "message", field)
    assert kept.reason.startswith(f"{field}: ")


def test_a_rejected_payload_goes_with_its_customer_and_is_purged_after_the_kept_days(clocked):
    crm, clock = clocked
    an = crm.customers.add(name="Nguyễn Văn An", email="an@example.vn")
    with pytest.raises(crmkit.ValidationError):
        crm.service.intake.web_form({"email": "an@example.vn", "subject": "", "message": "Máy lạnh hỏng"})
    [kept] = crm.service.intake.rejected()
    assert kept.customer_id == an.id and "Máy lạnh hỏng" in kept.payload
    exported = crm.customers.export_data(an.id)["service"]["service_rejected_payloads"]
    assert [row["field"] for row in exported] == ["subject"]
    with pytest.raises(crmkit.ValidationError):
        crm.service.intake.web_form({"email": "nobody@example.vn", "subject": "", "message": "?"})
    clock.advance(timedelta(days=31))
    with pytest.raises(crmkit.ValidationError):
        crm.service.intake.web_form({"email": "new@example.vn", "message": "?"})
    assert crm.service.intake.purge_rejected() == 2
    assert [r.payload for r in crm.service.intake.rejected()] == ['{"email": "new@example.vn", "message": "?"}']
    crm.customers.erase(an.id)
    assert _count(crm, rejected_payloads) == 1


def test_the_intake_endpoints_take_an_intake_token_only(crm):
    crm.roles.add("intake", "web forms and mail webhooks", grants={"service.intake": "all"})
    add_user(crm, "webform", roles=["intake"])
    token = crm.users.create_token("webform", "contact form", permissions=["service.intake"]).secret
    from crmkit.testing import ApiClient
    from crmkit.web import create_app

    app = create_app(crm)
    webform, anonymous = ApiClient(app, token), ApiClient(app, None)
    agent = api_client(crm, "hoa", app=app, roles=["support"])
    form = {"name": "Lê Văn Cường", "email": "cuong@example.vn", "subject": "Đổi trả", "message": "Muốn đổi size"}
    opened = webform.post("/service/intake/form", json=form)
    assert opened.status_code == 201, opened.json
    assert opened.json["action"] == "opened" and opened.json["customer_created"] is True
    assert webform.post("/service/intake/form", json=form).json["action"] == "folded"
    threaded = webform.post(
        "/service/intake/messages",
        json={"from_email": "cuong@example.vn", "subject": f"Re: [#{opened.json['case_id']}]", "body": "Size M"},
    )
    assert threaded.status_code == 200 and threaded.json["action"] == "threaded"
    assert crm.audit.entries(entity="case_reply", limit=1).items[0].actor == "webform"
    bad = webform.post("/service/intake/messages", data=b'{"from_email": "x@y.vn", "body": 5}')
    assert bad.status_code == 422 and list(bad.json["errors"]) == ["body"]
    assert crm.service.intake.rejected()[0].payload == '{"from_email": "x@y.vn", "body": 5}'
    assert anonymous.post("/service/intake/form", json=form).status_code == 401
    assert agent.post("/service/intake/form", json=form).status_code == 403  # an agent's token is not intake's
    assert webform.get("/service/cases").status_code == 403  # and intake's reads no cases
    assert agent.get("/service/intake/rejected").status_code == 403


def test_two_identical_messages_at_once_open_one_case(crm, together):
    message = {
        "from_email": "moi@example.vn",
        "from_name": "Phan Văn Mới",
        "subject": "Lỗi",
        "body": "Không đăng nhập được",
    }
    results = together(*(lambda: crm.service.intake.inbound_message(message) for _ in range(3)))
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sorted(r.action for r in results) == ["folded", "folded", "opened"]
    assert len({r.case_id for r in results}) == 1 and _count(crm, cases) == 1
    assert len(crm.customers.find("moi@example.vn").items) == 1


#: Takes an inbound message in an open transaction, then waits to be killed.
RECEIVER = """
import sys, time
from pathlib import Path
import crmkit
url, ready = sys.argv[1], Path(sys.argv[2])
crm = crmkit.CRM(url, plugins=["service"])
with crm.transaction():
    crm.service.intake.inbound_message({"from_email": "kill@example.vn", "subject": "Lỗi", "body": "Treo máy"})
    ready.touch()
    time.sleep(120)
"""


def test_a_killed_intake_leaves_nothing_and_the_message_can_come_again(crm, tmp_path):
    ready = tmp_path / "ready"
    url = crm.engine.url.render_as_string(hide_password=False)
    kill_when_ready(RECEIVER, url, str(ready), ready=ready)
    assert _count(crm, cases) == 0 and crm.customers.find().items == []
    again = crm.service.intake.inbound_message({"from_email": "kill@example.vn", "subject": "Lỗi", "body": "Treo máy"})
    assert again.action == "opened" and again.customer_created


def test_refused_payloads_through_the_cli(crm, run):
    with pytest.raises(crmkit.ValidationError):
        crm.service.intake.web_form({"email": "an@example.vn", "subject": "Hỏi"})
    shown = run("--locale", "vi", "service", "intake", "rejected")
    assert shown.exit_code == 0 and "Nội dung gốc" in shown.stdout and "message: Missing data" in shown.stdout
    assert run("service", "intake", "purge", "--days", "0").stdout.strip() == "1"
    assert json.loads(run("--format", "json", "service", "intake", "rejected").stdout) == []
