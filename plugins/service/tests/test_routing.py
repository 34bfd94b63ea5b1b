"""Routing (issue 17 item 3): rules by category, channel, customer group and language give a new case its team
and an agent — round-robin or least-loaded among the members on shift — when opened and on intake; the rules
through the CLI and the API; two processes opening 40 cases at once share them out evenly."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from typing import Any

import pytest

import crmkit
from crmkit import Plugin, hookimpl
from crmkit.testing import add_user, api_client

pytestmark = pytest.mark.crmkit_plugins("service")


def _team(crm: Any, name: str, *agents: str) -> None:
    for agent in agents:
        add_user(crm, agent, teams=[name], roles=["support"])


def test_round_robin_by_category_within_the_team(crm, clock):
    _team(crm, "Kỹ thuật", "an", "binh", "cuong")
    _team(crm, "Kế toán", "dung")
    crm.service.routing.add("Kế toán", category="billing")
    crm.service.routing.add("Kỹ thuật", category="repair")
    an = crm.customers.add(name="Nguyễn Văn An")
    repairs = [crm.service.open(an.id, f"Sửa {n}", category="repair") for n in range(6)]
    assert [(c.team, c.assignee) for c in repairs] == [("Kỹ thuật", a) for a in ["an", "binh", "cuong"] * 2]
    bill = crm.service.open(an.id, "Hoá đơn", category="billing")
    assert (bill.team, bill.assignee) == ("Kế toán", "dung")
    other = crm.service.open(an.id, "Hỏi giá", category="sales")
    assert (other.team, other.assignee) == (None, None)  # no rule matches
    named = crm.service.open(an.id, "Sửa gấp", category="repair", assignee="dung")
    assert (named.team, named.assignee) == (None, "dung")  # the caller's choice stands


def test_an_agent_off_shift_or_disabled_is_skipped_and_nobody_on_shift_leaves_the_queue(crm, clock):
    _team(crm, "CSKH", "hoa", "lan", "minh")
    crm.service.routing.add("CSKH")
    crm.service.routing.set_shift("lan", {5: (480, 720), 6: (480, 720)})  # weekends only
    crm.users.disable("minh")
    an = crm.customers.add(name="Nguyễn Văn An")
    clock.at(2026, 12, 7, 9, 0)  # Monday morning: only Hoa works
    assert {crm.service.open(an.id, f"Hỏi {n}").assignee for n in range(3)} == {"hoa"}
    clock.at(2026, 12, 12, 9, 0)  # Saturday morning: the team is off, Lan's shift is on
    assert crm.service.open(an.id, "Cuối tuần").assignee == "lan"
    clock.at(2026, 12, 7, 20, 0)  # Monday evening: nobody, the case waits in the team's queue
    late = crm.service.open(an.id, "Tối")
    assert (late.team, late.assignee) == ("CSKH", None)
    with pytest.raises(crmkit.ValidationError) as refused:
        crm.service.routing.set_shift("lan", {0: (480, 720, 780, 1020)})
    assert list(refused.value.errors) == ["hours"]


def test_least_loaded_gives_the_case_to_the_agent_with_fewest_active_cases(crm, clock):
    _team(crm, "CSKH", "hoa", "lan")
    an = crm.customers.add(name="Nguyễn Văn An")
    busy = [crm.service.open(an.id, f"Cũ {n}", assignee="hoa", team="CSKH") for n in range(3)]
    crm.service.routing.add("CSKH", channel="chat", strategy="least_loaded")
    assert [crm.service.open(an.id, f"Chat {n}", channel="chat").assignee for n in range(3)] == ["lan"] * 3
    crm.service.set_status(busy[0].id, "resolved", resolution="Xong")
    crm.service.set_status(busy[1].id, "resolved", resolution="Xong")
    assert crm.service.open(an.id, "Chat 4", channel="chat").assignee == "hoa"


class Tiers:
    """A stand-in for loyalty answering ``crmkit_service_customer_group`` from a customer tag."""

    @hookimpl
    def crmkit_service_customer_group(self, crm: Any, customer_id: int) -> str | None:
        return "diamond" if "kim-cuong" in crm.customers.get(customer_id).tags else None


def test_rules_by_customer_group_and_language(crm_factory, clock):
    crm = crm_factory(plugins=["service", Plugin("tiers", hooks=Tiers(), requires=("service",))])
    _team(crm, "VIP", "vy")
    _team(crm, "English desk", "emma")
    _team(crm, "CSKH", "hoa")
    crm.service.routing.add("VIP", customer_group="diamond")
    crm.service.routing.add("English desk", language="en")
    crm.service.routing.add("CSKH")
    vip = crm.customers.add(name="Trần Thị Kim", tags=["kim-cuong"])
    tourist = crm.customers.add(name="John Smith", country="GB")
    local = crm.customers.add(name="Lê Văn Cường", country="VN")
    expat = crm.customers.add(name="Anna Müller", country="VN", attributes={"language": "en"})
    assert crm.service.open(vip.id, "Quà tặng").assignee == "vy"
    assert crm.service.open(tourist.id, "Refund").assignee == "emma"
    assert crm.service.open(expat.id, "Delivery").assignee == "emma"
    assert crm.service.open(local.id, "Đổi hàng").assignee == "hoa"
    assert [r.team for r in crm.service.routing.list()] == ["VIP", "English desk", "CSKH"]


def test_a_rule_added_at_a_position_is_tried_there_and_the_rest_move_down(crm, clock):
    _team(crm, "Kỹ thuật", "minh")
    _team(crm, "CSKH VIP", "vy")
    crm.service.routing.add("Kỹ thuật", category="repair")
    crm.service.routing.add("Kỹ thuật", language="en")
    first = crm.service.routing.add("CSKH VIP", category="repair", position=1)
    assert first.position == 1
    assert [(r.position, r.team, r.category, r.language) for r in crm.service.routing.list()] == [
        (1, "CSKH VIP", "repair", None),
        (2, "Kỹ thuật", "repair", None),
        (3, "Kỹ thuật", None, "en"),
    ]
    an = crm.customers.add(name="Vũ Thị Hạnh")
    assert crm.service.open(an.id, "Tủ lạnh không lạnh", category="repair").assignee == "vy"
    assert crm.service.routing.add("CSKH VIP", position=99).position == 4  # past the end: last


def test_intake_is_routed_too(crm, clock):
    _team(crm, "Web", "hoa")
    crm.service.routing.add("Web", channel="web")
    got = crm.service.intake.web_form({"email": "an@example.vn", "subject": "Hỏi", "message": "?"})
    assert crm.service.get(got.case_id).assignee == "hoa"


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"team": "Không có"}, "team"),
        ({"team": "CSKH", "strategy": "random"}, "strategy"),
        ({"team": "CSKH", "channel": "pigeon"}, "channel"),
        ({"team": "CSKH", "language": "fr"}, "language"),
        ({"team": "CSKH", "category": "a\x00"}, "category"),
        ({"team": "CSKH", "position": 0}, "position"),
    ],
)
def test_a_bad_rule_is_refused_naming_the_field(crm, values, field):
    crm.teams.add("CSKH")
    criteria = {key: value for key, value in values.items() if key != "team"}
    with pytest.raises(crmkit.ValidationError) as refused:
        crm.service.routing.add(values["team"], **criteria)
    assert list(refused.value.errors) == [field]
    assert crm.service.routing.list() == []


def test_rules_through_the_cli_and_the_api(crm, run):
    crm.teams.add("CSKH")
    added = json.loads(
        run(
            "--format",
            "json",
            "service",
            "routing",
            "add",
            "CSKH",
            "--category",
            "repair",
            "--strategy",
            "least_loaded",
        ).stdout
    )
    assert (added["team"], added["category"], added["strategy"]) == ("CSKH", "repair", "least_loaded")
    assert "CSKH" in run("service", "routing", "list").stdout
    bad = run("service", "routing", "add", "CSKH", "--strategy", "random")
    assert bad.exit_code == 1 and bad.stderr.startswith("error: strategy: must be one of")
    assert run("service", "routing", "remove", str(added["id"])).exit_code == 0
    assert json.loads(run("--format", "json", "service", "routing", "list").stdout) == []
    admin = api_client(crm, "boss", roles=["administrator"])
    agent = api_client(crm, "hoa", roles=["support"])
    made = admin.post("/service/routing/rules", json={"team": "CSKH", "channel": "chat"})
    assert made.status_code == 201 and made.json["channel"] == "chat"
    assert [r["id"] for r in agent.get("/service/routing/rules").json] == [made.json["id"]]
    assert agent.post("/service/routing/rules", json={"team": "CSKH"}).status_code == 403
    assert admin.post("/service/routing/rules", json={"team": "Nope"}).json["errors"] == {"team": ["no team 'Nope'"]}
    assert admin.delete(f"/service/routing/rules/{made.json['id']}").status_code == 204
    shift = admin.put("/service/routing/shifts/hoa", json={"days": ["sat", "sun"], "opens": "08:00", "closes": "12:00"})
    assert shift.status_code == 200 and shift.json["days"] == ["sat", "sun"]
    bad_shift = admin.put("/service/routing/shifts/hoa", json={"days": ["sat"], "opens": "08:00"})
    assert bad_shift.status_code == 422 and list(bad_shift.json["errors"]) == ["hours"]
    assert run("service", "routing", "shift", "hoa", "--day", "sat", "--from", "08:00", "--to", "12:00").exit_code == 0
    assert admin.put("/service/routing/shifts/hoa", json={"days": []}).status_code == 200


#: Opens 20 cases routed round-robin at a frozen Monday morning, printing nothing; run twice at once.
OPENER = """
import sys
from datetime import datetime
from zoneinfo import ZoneInfo
import crmkit, crmkit_service.service as service
service.utcnow = lambda: datetime(2026, 12, 7, 9, 0, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"))
crm = crmkit.CRM(sys.argv[1], plugins=["service"])
for n in range(20):
    crm.service.open(int(sys.argv[2]), f"Yêu cầu {sys.argv[3]}-{n}", category="repair")
"""


def test_two_processes_opening_40_cases_share_them_evenly(crm):
    _team(crm, "Kỹ thuật", "an", "binh", "cuong", "dung")
    crm.service.routing.add("Kỹ thuật", category="repair")
    customer = crm.customers.add(name="Nguyễn Văn An")
    url = crm.engine.url.render_as_string(hide_password=False)
    workers = [
        subprocess.Popen([sys.executable, "-c", OPENER, url, str(customer.id), tag], stderr=subprocess.PIPE, text=True)
        for tag in "ab"
    ]
    for worker in workers:
        assert worker.wait(timeout=300) == 0, worker.stderr.read() if worker.stderr else ""
    opened = crm.service.list(limit=100)
    assert len(opened) == 40
    assert Counter(c.assignee for c in opened) == {"an": 10, "binh": 10, "cuong": 10, "dung": 10}
    assert {c.team for c in opened} == {"Kỹ thuật"}


def test_with_loyalty_the_members_tier_is_the_group_rules_match(crm_factory, clock):
    crm = crm_factory(plugins=["sales", "loyalty", "service"])
    crm.loyalty.programs.create("default", "Khách hàng thân thiết", point_value_minor=500)
    _team(crm, "Kim cương", "vy")
    _team(crm, "CSKH", "hoa")
    kim = crm.customers.add(name="Phạm Thị Kim")
    tier = crm.loyalty.enroll(kim.id).tier
    crm.service.routing.add("Kim cương", customer_group="a-tier-nobody-has")
    crm.service.routing.add("CSKH", customer_group=tier)
    assert (crm.service.open(kim.id, "Điểm thưởng chưa cộng").team, tier) == ("CSKH", crm.loyalty.member(kim.id).tier)
