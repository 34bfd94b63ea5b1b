"""Canned replies (issue 17 item 6): stored answers with placeholders — the customer's name in the right order
for a Vietnamese name, the order, the agent, the case — in the variant of the customer's language, through the
service, the CLI (``canned add|list|show``, ``cases reply --canned``) and the API; bad templates refused by field."""

from __future__ import annotations

import json

import pytest

import crmkit
from crmkit.testing import add_user, api_client

pytestmark = pytest.mark.crmkit_plugins("service")

VI = "Dạ chào {customer_name}, em là {agent_name}. Yêu cầu #{case_number} về đơn {order_number} đã được ghi nhận ạ."
EN = "Dear {customer_name}, I am {agent_name}. Request #{case_number} (order {order_number}) is logged."


def _replies(crm):
    crm.service.canned.add("received", VI, title="Đã nhận yêu cầu")
    crm.service.canned.add("received", EN, language="en", title="Request received")
    crm.service.canned.add("thanks", "Cảm ơn {given_name} ạ!")


def test_a_canned_reply_speaks_the_customers_language_with_the_name_in_its_order(crm):
    add_user(crm, "hoa", roles=["support"])
    crm.users.update("hoa", display_name="Lê Thị Hoa")
    _replies(crm)
    an = crm.customers.add(given_name="An", family_name="Nguyễn Văn", country="VN")
    john = crm.customers.add(given_name="John", family_name="Smith", country="GB")
    vi_case = crm.service.open(an.id, "Giao thiếu hàng", order_id=1042)
    en_case = crm.service.open(john.id, "Missing item", order_id=2001)
    hoa = crm.as_user("hoa")
    sent = hoa.service.canned.reply(vi_case.id, "received")
    assert sent.body == (
        f"Dạ chào Nguyễn Văn An, em là Lê Thị Hoa. Yêu cầu #{vi_case.id} về đơn 1042 đã được ghi nhận ạ."
    )
    assert (sent.direction, sent.author) == ("outbound", "hoa")
    assert crm.service.get(vi_case.id).first_responded_at is not None
    assert hoa.service.canned.render(en_case.id, "received") == (
        f"Dear John Smith, I am Lê Thị Hoa. Request #{en_case.id} (order 2001) is logged."
    )
    assert crm.service.canned.render(vi_case.id, "thanks") == "Cảm ơn An ạ!"
    binh = crm.customers.add(name="Trần Thị Bình")  # no parts: the last word is what an agent calls her
    assert crm.service.canned.render(crm.service.open(binh.id, "Hỏi").id, "thanks") == "Cảm ơn Bình ạ!"
    # an English customer with only a Vietnamese variant gets it rather than nothing
    assert crm.service.canned.render(en_case.id, "thanks") == "Cảm ơn John ạ!"


def test_a_reply_needing_an_order_on_a_case_without_one_is_refused_and_nothing_sent(crm):
    _replies(crm)
    an = crm.customers.add(name="Nguyễn Văn An")
    case = crm.service.open(an.id, "Hỏi giá")
    with pytest.raises(crmkit.ValidationError) as refused:
        crm.service.canned.reply(case.id, "received")
    assert refused.value.errors == {
        "canned": [f"case {case.id} names no order, and reply 'received' uses {{order_number}}"]
    }
    with pytest.raises(crmkit.ValidationError) as refused:
        crm.service.canned.reply(case.id, "khong-co")
    assert list(refused.value.errors) == ["canned"]
    assert crm.service.conversation(case.id) == []


@pytest.mark.parametrize(
    ("key", "body", "language", "field"),
    [
        ("Chào Hỏi", "Chào", "vi", "key"),
        ("chao", "", "vi", "body"),
        ("chao", "Chào {ten_khach}", "vi", "body"),
        ("chao", "Chào {", "vi", "body"),
        ("chao", "Chào\x00", "vi", "body"),
        ("chao", "Chào", "fr", "language"),
    ],
)
def test_a_bad_canned_reply_is_refused_naming_the_field(crm, key, body, language, field):
    with pytest.raises(crmkit.ValidationError) as refused:
        crm.service.canned.add(key, body, language=language)
    assert list(refused.value.errors) == [field]
    assert crm.service.canned.list() == []


def test_canned_replies_through_the_cli_and_the_api(crm, run):
    an = crm.customers.add(name="Nguyễn Văn An")
    case = crm.service.open(an.id, "Giao trễ", order_id=7)
    added = run("--format", "json", "service", "canned", "add", "received", VI, "--title", "Đã nhận")
    assert added.exit_code == 0, added.stderr
    assert json.loads(added.stdout)["title"] == "Đã nhận"
    assert run("service", "canned", "add", "received", EN, "--language", "en").exit_code == 0
    assert [
        r["language"] for r in json.loads(run("--format", "json", "service", "canned", "show", "received").stdout)
    ] == ["en", "vi"]
    assert "received" in run("service", "canned", "list").stdout
    bad = run("service", "canned", "add", "x", "Chào {ten}")
    assert bad.exit_code == 1 and bad.stderr.startswith("error: body: unknown placeholder {ten}")
    sent = run("--format", "json", "service", "cases", "reply", str(case.id), "--canned", "received")
    assert sent.exit_code == 0, sent.stderr
    assert "Dạ chào Nguyễn Văn An" in sent.stdout
    assert run("service", "cases", "reply", str(case.id), "hi", "--canned", "received").exit_code == 2
    agent = api_client(crm, "hoa", roles=["support"])
    admin = api_client(crm, "boss", roles=["administrator"])
    assert admin.put("/service/canned/thanks/vi", json={"body": "Cảm ơn {given_name}"}).status_code == 200
    assert agent.put("/service/canned/thanks/vi", json={"body": "x"}).status_code == 403
    assert {r["key"] for r in agent.get("/service/canned").json} == {"received", "thanks"}
    replied = agent.post(f"/service/cases/{case.id}/canned-replies", json={"key": "thanks"})
    assert replied.status_code == 201 and replied.json["body"] == "Cảm ơn An"
