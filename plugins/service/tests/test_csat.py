"""Satisfaction (issue 17 item 5) and the reply-to-a-resolved-case setting: resolving a case makes its survey due
with a one-time link (offered to a sending plugin through ``crmkit_service_csat_requested``); the customer answers through
the link (public API) or staff record it (CLI, API); the score is on the case and as the rating of a core
interaction; a low score reopens the case when configured; a customer's reply to a resolved or closed case reopens
it or is refused, per setting."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa

import crmkit
from crmkit import Plugin, hookimpl
from crmkit.core.tables import interactions
from crmkit.testing import api_client

pytestmark = pytest.mark.crmkit_plugins("service")


class Sender:
    """A plugin sending surveys (as campaigns would): keeps the links it was given."""

    def __init__(self) -> None:
        self.links: dict[int, str] = {}

    @hookimpl
    def crmkit_service_csat_requested(self, case: Any, link: str) -> bool:
        self.links[case.id] = link
        return True


@pytest.fixture
def sender() -> Sender:
    return Sender()


@pytest.fixture
def ccrm(crm_factory: Any, sender: Sender) -> Any:
    return crm_factory(plugins=["service", Plugin("sender", hooks=sender, requires=("service",))])


def _resolved(crm: Any, subject: str = "Máy lọc nước rò rỉ") -> Any:
    an = crm.customers.add(name="Nguyễn Thị Ánh")
    case = crm.service.open(an.id, subject, channel="chat", assignee=None)
    crm.service.set_status(case.id, "resolved", resolution="Thay gioăng")
    return crm.service.get(case.id)


def test_the_customer_answers_through_the_link_once_and_the_rating_is_on_the_timeline(ccrm, sender):
    case = _resolved(ccrm)
    assert case.csat_requested_at is not None and case.csat_score is None
    link = sender.links[case.id]
    assert link.startswith(f"/service/csat/{case.id}.")
    shown = api_client(ccrm, "hoa", roles=["support"]).get(f"/service/cases/{case.id}")
    assert shown.status_code == 200 and "csat_requested_at" in shown.json
    assert not any("token" in key for key in shown.json)  # staff see that a survey is due, never its link's hash
    public = api_client(ccrm)
    forged = public.post(f"/service/csat/{case.id}.not-the-secret", json={"score": 5})
    assert forged.status_code == 404
    bad = public.post(link, json={"score": 9})
    assert bad.status_code == 422 and set(bad.json["errors"]) == {"score"}
    answered = public.post(link, json={"score": 4, "comment": "Kỹ thuật viên đến đúng giờ\nCảm ơn"})
    assert answered.status_code == 200, answered.json
    stored = ccrm.service.get(case.id)
    assert (stored.csat_score, stored.csat_comment) == (4, "Kỹ thuật viên đến đúng giờ\nCảm ơn")
    assert public.post(link, json={"score": 1}).status_code == 404  # one-time: the link is spent
    with ccrm.reading() as conn:
        rating = conn.execute(
            sa.select(interactions.c.rating, interactions.c.channel).where(interactions.c.outcome == "case_csat")
        ).one()
    assert tuple(rating) == (4, "chat")
    assert ccrm.service.csat.pending() == []


def test_a_low_score_reopens_the_case_when_configured(ccrm):
    with pytest.raises(crmkit.ValidationError) as bad:
        ccrm.service.configure("csat_reopen_below", 7)
    assert "csat_reopen_below" in bad.value.errors
    ccrm.service.configure("csat_reopen_below", 3)
    unhappy = _resolved(ccrm)
    assert [c.id for c in ccrm.service.csat.pending()] == [unhappy.id]
    reopened = ccrm.service.csat.record(unhappy.id, 2, "Vẫn còn rò")
    assert (reopened.status, reopened.reopen_count, reopened.csat_score) == ("reopened", 1, 2)
    with pytest.raises(crmkit.Conflict):
        ccrm.service.csat.record(unhappy.id, 3)  # answered: a new survey comes with the next resolution
    happy = _resolved(ccrm, "Hỏi bảo hành")
    assert ccrm.service.csat.record(happy.id, 3).status == "resolved"
    with pytest.raises(crmkit.Conflict):
        an = ccrm.customers.add(name="Lê Văn Tâm")
        ccrm.service.csat.record(ccrm.service.open(an.id, "Mới mở").id, 5)  # not resolved: no survey


def test_without_a_sender_the_survey_is_pending_and_recorded_by_cli_and_api(crm, run):
    case = _resolved(crm)
    assert [c.id for c in crm.service.csat.pending()] == [case.id]
    result = run("--format", "json", "service", "csat", "record", str(case.id), "5", "--comment", "Rất tốt")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)[0]["csat_score"] == 5
    other = _resolved(crm, "Giao hàng trễ")
    agent = api_client(crm, "hoa", roles=["support"])
    recorded = agent.post(f"/service/cases/{other.id}/csat", json={"score": 2, "comment": None})
    assert recorded.status_code == 200 and recorded.json["csat_score"] == 2
    bad = run("service", "csat", "record", str(other.id), "0")
    assert bad.exit_code != 0 and "score" in bad.stderr


def test_a_customer_reply_to_a_resolved_or_closed_case_reopens_or_is_refused_per_setting(crm):
    case = _resolved(crm)
    crm.service.configure("reply_to_resolved", "refuse")
    with pytest.raises(crmkit.Conflict, match="open a new case"):
        crm.service.reply(case.id, "Lại hỏng rồi", direction="inbound")
    assert crm.service.get(case.id).status == "resolved"
    crm.service.reply(case.id, "Dạ em ghi nhận", direction="outbound")  # staff may still write
    crm.service.set_status(case.id, "closed")
    with pytest.raises(crmkit.Conflict):
        crm.service.reply(case.id, "Lại hỏng rồi", direction="inbound")  # closed: refused by default
    crm.service.configure("reply_to_closed", "reopen")
    crm.service.reply(case.id, "Lại hỏng rồi", direction="inbound")
    assert crm.service.get(case.id).status == "reopened"
    with pytest.raises(crmkit.ValidationError) as bad:
        crm.service.configure("reply_to_closed", "maybe")
    assert "reply_to_closed" in bad.value.errors
    assert crm.service.settings() == {
        "reply_to_resolved": "refuse",
        "reply_to_closed": "reopen",
        "csat_reopen_below": None,
    }
