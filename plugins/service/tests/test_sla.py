"""SLAs, the rest of issue 17 item 4: rules per customer group (the group from a hook; loyalty's tier when
installed), working hours with a lunch break, warnings before a breach and escalation on it, and open cases
re-timed when a day off is added or the week changes — all-or-nothing under kill -9, and ordered against a case
being opened at the same moment."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

import crmkit
from crmkit import Plugin, hookimpl
from crmkit.testing import add_user, kill_when_ready
from crmkit_service.businesshours import WorkingCalendar, check_week

pytestmark = pytest.mark.crmkit_plugins("service")


class Groups:
    """A plugin telling the service which group a customer is in (as loyalty does with tiers)."""

    def __init__(self) -> None:
        self.groups: dict[int, str] = {}

    @hookimpl
    def crmkit_service_customer_group(self, customer_id: int) -> str | None:
        return self.groups.get(customer_id)


class Escalations:
    """Records the warning and escalation hooks."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    @hookimpl
    def crmkit_service_sla_warning(self, case: Any, target: str, due_at: datetime) -> None:
        self.calls.append(("warning", case.id, target, due_at))

    @hookimpl
    def crmkit_service_case_escalated(self, case: Any, target: str, actions: dict[str, Any]) -> None:
        self.calls.append(("escalated", case.id, target, actions, case.assignee, case.priority))


@pytest.fixture
def groups() -> Groups:
    return Groups()


@pytest.fixture
def escalations() -> Escalations:
    return Escalations()


@pytest.fixture
def gcrm(crm_factory: Any, groups: Groups, escalations: Escalations) -> Any:
    plugins = [Plugin("groups", hooks=groups, requires=("service",)), Plugin("esc", hooks=escalations)]
    return crm_factory(plugins=["service", *plugins])


def test_diamond_members_get_their_own_targets_and_others_the_priority_policy(gcrm, groups, clock):
    kim = gcrm.customers.add(name="Phạm Thị Kim")
    groups.groups[kim.id] = "diamond"
    lan = gcrm.customers.add(name="Đỗ Văn Lân")
    gcrm.service.sla.set_rule("normal", customer_group="diamond", first_response_minutes=60, resolution_minutes=480)
    vip = gcrm.service.open(kim.id, "Thẻ kim cương bị khoá")
    plain = gcrm.service.open(lan.id, "Hỏi giờ mở cửa")
    # Monday 09:00: diamond answers within 1 working hour, resolves within 8; normal stays 4 h / 24 h
    assert vip.customer_group == "diamond" and plain.customer_group is None
    assert vip.first_response_due_at == datetime(2026, 12, 7, 3, 0, tzinfo=UTC)  # 10:00 local
    assert vip.resolution_due_at == datetime(2026, 12, 7, 10, 0, tzinfo=UTC)  # 17:00 local
    assert plain.first_response_due_at == datetime(2026, 12, 7, 6, 0, tzinfo=UTC)  # 13:00 local
    # a rule for every group only with actions keeps the priority's targets
    gcrm.service.sla.set_rule("high", warn_minutes=15)
    assert gcrm.service.open(lan.id, "Gấp", priority="high").first_response_due_at == datetime(
        2026, 12, 7, 4, 0, tzinfo=UTC
    )
    assert [(r.customer_group, r.priority) for r in gcrm.service.sla.rules()] == [(None, "high"), ("diamond", "normal")]
    with pytest.raises(crmkit.ValidationError) as bad:
        gcrm.service.sla.set_rule("normal", first_response_minutes=0)
    assert "first_response_minutes" in bad.value.errors
    with pytest.raises(crmkit.ValidationError) as bad:
        gcrm.service.sla.set_rule("normal", escalate_to="nobody")
    assert "escalate_to" in bad.value.errors
    with pytest.raises(crmkit.ValidationError) as bad:
        gcrm.service.sla.set_rule("vip")
    assert "priority" in bad.value.errors


def test_loyalty_tiers_are_the_service_groups(crm_factory, clock):
    crm = crm_factory(plugins=["sales", "loyalty", "service"])
    crm.loyalty.programs.create("default", "Khách hàng thân thiết", point_value_minor=500)
    kim, lan = crm.customers.add(name="Phạm Thị Kim"), crm.customers.add(name="Đỗ Văn Lân")
    tier = crm.loyalty.enroll(kim.id).tier
    assert tier
    crm.service.sla.set_rule("normal", customer_group=tier, first_response_minutes=60)
    member = crm.service.open(kim.id, "Điểm thưởng chưa cộng")
    assert (member.customer_group, member.first_response_due_at) == (tier, datetime(2026, 12, 7, 3, 0, tzinfo=UTC))
    assert crm.service.open(lan.id, "Hỏi điểm").customer_group == crm.loyalty.member(lan.id).tier  # auto-enrolled


def test_a_lunch_break_is_not_working_time(crm, clock):
    week = dict.fromkeys(range(5), (480, 720, 780, 1020))  # 08:00–12:00 and 13:00–17:00
    assert crm.service.set_week(week)[0] == (480, 720, 780, 1020)
    an = crm.customers.add(name="Nguyễn Văn An")
    clock.at(2026, 12, 7, 11, 45)
    case = crm.service.open(an.id, "Máy giặt kêu to", priority="urgent")  # 30 working minutes
    assert case.first_response_due_at == datetime(2026, 12, 7, 6, 15, tzinfo=UTC)  # 13:15 local, not 12:15
    assert crm.service.week()[0] == (480, 720, 780, 1020)
    calendar = crm.service.calendar()
    assert calendar.between(clock.now, clock.now + timedelta(hours=3)) == timedelta(hours=2)
    with pytest.raises(crmkit.ValidationError) as bad:
        crm.service.set_week({0: (480, 780, 720, 1020)})
    assert "overlap" in bad.value.errors["hours"][0]
    with pytest.raises(crmkit.ValidationError) as bad:
        crm.service.set_week({0: None, 1: None})
    assert "at least one day" in bad.value.errors["hours"][0]


def test_a_warning_comes_once_before_the_breach_and_the_breach_escalates(gcrm, escalations, clock):
    add_user(gcrm, "minh", roles=["support"])
    add_user(gcrm, "lan", roles=["manager"])
    gcrm.service.sla.set_rule("high", warn_minutes=30, escalate_to="minh", notify="lan", raise_priority=True)
    an = gcrm.customers.add(name="Trần Thị Bình")
    case = gcrm.service.open(an.id, "Mất điện thoại bảo hành", priority="high")  # first response due 11:00
    assert gcrm.service.run_due(now=case.first_response_due_at - timedelta(minutes=45)) == []
    assert escalations.calls == []
    soon = case.first_response_due_at - timedelta(minutes=20)
    gcrm.service.run_due(now=soon)
    gcrm.service.run_due(now=soon + timedelta(minutes=5))
    assert escalations.calls == [("warning", case.id, "first_response", case.first_response_due_at)]
    warned = gcrm.service.get(case.id)
    assert warned.first_response_warned_at == soon and warned.resolution_warned_at is None
    breaches = gcrm.service.run_due(now=case.first_response_due_at + timedelta(minutes=1))
    assert [b.target for b in breaches] == ["first_response"]
    escalated = gcrm.service.get(case.id)
    assert (escalated.assignee, escalated.priority, escalated.watchers) == ("minh", "urgent", ("lan",))
    assert escalations.calls[1] == (
        "escalated",
        case.id,
        "first_response",
        {"assignee": "minh", "priority": "urgent", "notify": "lan"},
        "minh",
        "urgent",
    )
    assert "escalate" in [e.action for e in gcrm.audit.entries(entity="case", limit=20).items]


def _loop(calendars: tuple[WorkingCalendar, WorkingCalendar], now: datetime, due: datetime) -> datetime:
    old, new = calendars
    return new.add(now, old.between(now, due))


def test_an_escalation_to_another_team_retimes_the_targets_still_to_come_on_its_calendar(gcrm, escalations, clock):
    gcrm.teams.add("Ca chiều")
    gcrm.service.set_week(dict.fromkeys(range(5), (780, 1020)), team="Ca chiều")  # weekday afternoons only
    gcrm.service.sla.set_rule("high", escalate_team="Ca chiều")
    an = gcrm.customers.add(name="Hoàng Thị Mai")
    case = gcrm.service.open(an.id, "Máy giặt không vắt", priority="high")  # Monday 09:00, company hours
    company, afternoons = gcrm.service.calendar(), gcrm.service.calendar("Ca chiều")
    breach = case.first_response_due_at + timedelta(minutes=1)
    assert [b.target for b in gcrm.service.run_due(now=breach)] == ["first_response"]
    escalated = gcrm.service.get(case.id)
    assert escalated.team == "Ca chiều"
    assert escalated.first_response_due_at == case.first_response_due_at  # missed: it stays
    # the working time the resolution had left on the company's hours now runs on the afternoon shift's
    assert escalated.resolution_due_at == _loop((company, afternoons), breach, case.resolution_due_at)
    assert escalated.resolution_due_at > case.resolution_due_at
    assert escalations.calls[-1][:4] == ("escalated", case.id, "first_response", {"team": "Ca chiều"})


def test_a_day_off_retimes_open_cases_as_the_plain_loop_would(crm, clock):
    crm.teams.add("Kỹ thuật")
    an = crm.customers.add(name="Lê Văn Cường")
    opened = [crm.service.open(an.id, f"Yêu cầu {n}", priority=p) for n, p in enumerate(("low", "normal", "high"))]
    tech = crm.service.open(an.id, "Sửa tủ lạnh", team="Kỹ thuật")
    crm.service.set_status(opened[0].id, "waiting_on_customer")
    crm.service.reply(opened[2].id, "Dạ em nhận")  # first response met: it stays
    clock.at(2026, 12, 7, 14, 0)
    before = crm.service.calendar()
    crm.service.add_day_off(date(2026, 12, 8), "Tổng vệ sinh")
    after = crm.service.calendar()
    low, normal, high = (crm.service.get(c.id) for c in opened)
    # low paused at 09:00: its working time left counts from the pause
    assert low.resolution_due_at == _loop((before, after), opened[0].created_at, opened[0].resolution_due_at)
    assert normal.resolution_due_at == _loop((before, after), clock.now, opened[1].resolution_due_at)
    assert normal.resolution_due_at == datetime(2026, 12, 10, 8, 0, tzinfo=UTC)  # Wed 15:00 → Thu 15:00
    assert normal.first_response_due_at == opened[1].first_response_due_at  # 13:00 today: already past, stays
    assert high.first_response_due_at == opened[2].first_response_due_at  # met: stays
    assert high.resolution_due_at == _loop((before, after), clock.now, opened[2].resolution_due_at)
    # the whole company's day off reaches the team's cases too; a team's day off only the team's
    assert crm.service.get(tech.id).resolution_due_at > tech.resolution_due_at
    moved = crm.service.get(tech.id).resolution_due_at
    crm.service.add_day_off(date(2026, 12, 9), "Tập huấn", team="Kỹ thuật")
    assert crm.service.get(tech.id).resolution_due_at == moved + timedelta(days=1)
    assert crm.service.get(opened[1].id).resolution_due_at == normal.resolution_due_at
    # changing the week re-times too: Saturday mornings added bring due times closer
    crm.service.set_week({**dict.fromkeys(range(5), (480, 1020)), 5: (480, 720)})
    assert crm.service.get(opened[1].id).resolution_due_at == normal.resolution_due_at  # Wed: no Saturday between


def test_check_week_keeps_single_intervals_as_they_were():
    assert check_week({0: (480, 1020)})[0] == (480, 1020)


#: Adds a day off (re-timing every open case) in one transaction, then waits to be killed.
WORKER = """
import sys, time
from datetime import date
from pathlib import Path
import crmkit
url, ready = sys.argv[1], Path(sys.argv[2])
crm = crmkit.CRM(url, plugins=["service"])
with crm.transaction():
    crm.service.add_day_off(date(2026, 12, 9), "never committed")
    ready.touch()
    time.sleep(120)
"""


def test_a_killed_retiming_leaves_every_case_as_it_was(crm, tmp_path, clock):
    an = crm.customers.add(name="Võ Thị Hoa")
    opened = [crm.service.open(an.id, f"Yêu cầu {n}") for n in range(20)]
    ready = tmp_path / "ready"
    url = crm.engine.url.render_as_string(hide_password=False)
    kill_when_ready(WORKER, url, str(ready), ready=ready)
    assert [crm.service.get(c.id) for c in opened] == opened
    assert crm.service.days_off() == []
    crm.service.add_day_off(date(2026, 12, 9), "Tập huấn")  # nothing was left locked
    assert all(crm.service.get(c.id).resolution_due_at > c.resolution_due_at for c in opened)


def test_retiming_racing_case_openings_times_every_case_on_the_final_calendar(crm, clock, together):
    an = crm.customers.add(name="Hoàng Thị Mai")
    crm.service.open(an.id, "Trước")
    clock.at(2026, 12, 7, 16, 0)

    def open_some() -> list[int]:
        return [crm.service.open(an.id, f"Đồng thời {n}").id for n in range(8)]

    results = together(lambda: crm.service.add_day_off(date(2026, 12, 8), "Nghỉ đột xuất"), open_some)
    assert not any(isinstance(r, Exception) for r in results), results
    calendar = crm.service.calendar()
    for case in crm.service.list(limit=100):
        assert case.resolution_due_at == calendar.add(case.created_at, timedelta(minutes=1440)), case.subject


def test_rules_and_a_lunch_break_from_the_command_line(crm, run):
    add_user(crm, "minh", roles=["support"])
    set_rule = run(
        "--format", "json", "service", "sla", "set-rule", "high", "--group", "diamond", "--first-response", "60",
        "--warn", "15", "--escalate-to", "minh", "--raise-priority",
    )  # fmt: skip
    assert set_rule.exit_code == 0, set_rule.stderr
    assert json.loads(run("--format", "json", "service", "sla", "rules").stdout) == [
        {
            "customer_group": "diamond",
            "priority": "high",
            "first_response_minutes": 60,
            "resolution_minutes": None,
            "warn_minutes": 15,
            "escalate_to": "minh",
            "escalate_team": None,
            "notify": None,
            "raise_priority": True,
        }
    ]
    bad = run("service", "sla", "set-rule", "high", "--escalate-to", "nobody")
    assert bad.exit_code != 0 and "escalate_to" in bad.stderr
    week = run("--format", "json", "service", "sla", "week", "mon=08:00-12:00,13:00-17:30", "sat=08:00-11:00")
    assert week.exit_code == 0, week.stderr
    assert [d["hours"] for d in json.loads(week.stdout)] == ["08:00-12:00,13:00-17:30"] + ["closed"] * 4 + [
        "08:00-11:00",
        "closed",
    ]
    assert crm.service.week()[0] == (480, 720, 780, 1050)
    bad = run("service", "sla", "week", "mon=08:00-12:00,11:00-17:00")
    assert bad.exit_code != 0 and "overlap" in bad.stderr
    assert run("service", "sla", "remove-rule", "high", "--group", "diamond").exit_code == 0
    assert crm.service.sla.rules() == []
