"""The plan: the weakest areas become actions with owners and due dates, tracked to done."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from crmkit import Conflict, NotFound, ValidationError
from crmkit_qci.areas import AREA_KEYS
from crmkit_qci.plan import AreaStanding, rules, weakest

from .conftest import ok, run, staff

#: Retention and measuring the effect answered worst, acquisition best.
WEAK = {
    "RE1": 1,
    "RE2": 1,
    "RE3": 2,
    "RE4": 1,
    "RE5": 1,
    "ME1": 2,
    "ME2": 1,
    "ME3": 2,
    "ME4": 2,
    "AQ1": 5,
    "AQ2": 4,
    "AQ3": 5,
    "AQ4": 4,
}


def test_the_rule_bank_proposes_actions_for_every_area() -> None:
    bank = rules()
    assert {r["area"] for r in bank} == set(AREA_KEYS)
    with_campaign = {r["area"] for r in bank if r["campaign"] is not None}
    assert with_campaign == {"acquisition", "penetration", "retention"}
    assert len({r["id"] for r in bank}) == len(bank)


def test_weakest_orders_by_combined_score_and_skips_unscored() -> None:
    standings = [
        AreaStanding("retention", 20.0, 40.0),
        AreaStanding("acquisition", 50.0, None),
        AreaStanding("efficiency", None, None),
        AreaStanding("penetration", 90.0, 0.0),
    ]
    assert [(s.area, s.combined) for s in weakest(standings, count=3, threshold=60)] == [
        ("retention", 30.0),
        ("penetration", 45.0),
        ("acquisition", 50.0),
    ]
    assert [s.area for s in weakest(standings, count=3, threshold=40)] == ["retention"]


def test_generate_assigns_owners_and_due_dates_then_tracks_to_done(qci_crm: Any) -> None:
    crm = qci_crm
    staff(crm, "huong.le", "lan.nguyen")
    crm.qci.assessments.record(WEAK)
    crm.qci.set_owner("retention", "huong.le")
    with crm.acting_as("lan.nguyen"):
        made = crm.qci.generate_plan(areas=2)
    assert [s.area for s in made.chosen] == ["retention", "measuring_effect"]
    today = crm.qci.today()
    by_rule = {a.rule_id: a for a in made.created}
    assert set(by_rule) == {"ret-win-back", "ret-exit-survey", "me-holdouts", "me-review"}
    win_back = by_rule["ret-win-back"]
    assert (win_back.owner, win_back.due_on, win_back.status, win_back.created_by) == (
        "huong.le",
        today + timedelta(days=30),
        "open",
        "lan.nguyen",
    )
    assert by_rule["me-holdouts"].owner == "lan.nguyen"  # no owner set for the area: whoever generated it
    assert win_back.reason == "Retention: assessment 5.4 → 5.4"
    assert win_back.handoff == "not handed off: install crmkit-campaigns to create the segment and draft campaign"
    assert by_rule["me-holdouts"].handoff is None  # not a campaign action

    again = crm.qci.generate_plan(areas=2)
    assert again.created == () and set(again.skipped) == set(by_rule)  # open actions are not proposed twice

    assert crm.qci.plan.start(win_back.id).status == "in_progress"
    done = crm.qci.plan.done(win_back.id)
    assert done.status == "done" and done.done_at is not None and done.started_at is not None
    with pytest.raises(Conflict, match=f"action {win_back.id} is already done"):
        crm.qci.plan.done(win_back.id)
    with pytest.raises(NotFound):
        crm.qci.plan.done(9999)
    assert crm.qci.plan.progress() == {"open": 3, "in_progress": 0, "done": 1, "overdue": 0}
    assert [a.rule_id for a in crm.qci.generate_plan(areas=2).created] == ["ret-win-back"]  # done: proposed anew


def test_nothing_to_plan_from_is_a_clear_error(qci_crm: Any) -> None:
    with pytest.raises(
        ValidationError, match="scores: nothing to plan from: no area has an assessment score or a lit KPI"
    ):
        qci_crm.qci.generate_plan()
    with pytest.raises(ValidationError, match="areas: between 1 and 11"):
        qci_crm.qci.generate_plan(areas=0)
    qci_crm.qci.assessments.record({"AQ1": 5, "AQ2": 5, "AQ3": 5, "AQ4": 5})
    assert qci_crm.qci.generate_plan().chosen == ()  # nothing below 60: nothing to do


def test_plan_command(qci_crm: Any) -> None:
    staff(qci_crm, "thao.vo")
    qci_crm.qci.assessments.record(WEAK)
    generated = ok(qci_crm, "qci", "plan", "--generate", "--areas", "1", "--owner", "thao.vo")
    assert "weakest areas: retention (assessment 5.4 → 5.4)" in generated.stderr
    assert "QCI plan: 0 done, 0 in progress, 2 open, 0 overdue" in generated.stdout
    listed = json.loads(ok(qci_crm, "--format", "json", "qci", "plan").stdout)
    assert {a["owner"] for a in listed} == {"thao.vo"}
    first = str(listed[0]["id"])
    ok(qci_crm, "qci", "plan", "--start", first)
    assert "1 done, 0 in progress, 1 open" in ok(qci_crm, "qci", "plan", "--done", first).stdout
    again = run(qci_crm, "qci", "plan", "--done", first)
    assert again.exit_code == 1 and again.stderr.strip() == f"error: action {first} is already done"
    only_done = json.loads(ok(qci_crm, "--format", "json", "qci", "plan", "--status", "done").stdout)
    assert [a["id"] for a in only_done] == [int(first)]
