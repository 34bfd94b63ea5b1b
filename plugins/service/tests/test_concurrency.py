"""Concurrent writers on the same case: nothing lost or doubled. Replies from two agents at once all land (each
with its own interaction), the first response is recorded once, status changes race without breaking the
transition table, and two workers checking SLAs at once report each breach exactly once."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

import crmkit
from crmkit.core.tables import interactions
from crmkit.testing import kill_when_ready

pytestmark = pytest.mark.crmkit_plugins("service")


def test_two_agents_replying_at_once_lose_nothing(crm, together):
    an = crm.customers.add(name="Nguyễn Văn An")
    case = crm.service.open(an.id, "Máy lạnh không lạnh")

    def agent(name: str) -> list[int]:
        with crm.acting_as(name):
            return [crm.service.reply(case.id, f"{name} {n}").id for n in range(6)]

    first, second = together(lambda: agent("lan"), lambda: agent("minh"))
    assert not isinstance(first, Exception) and not isinstance(second, Exception), (first, second)
    conversation = crm.service.conversation(case.id)
    assert sorted(m.body for m in conversation) == sorted(
        [f"lan {n}" for n in range(6)] + [f"minh {n}" for n in range(6)]
    )
    assert len({m.interaction_id for m in conversation}) == 12
    with crm.reading() as conn:
        logged = conn.execute(
            sa.select(sa.func.count()).where(
                interactions.c.customer_id == an.id, interactions.c.outcome == "case_reply"
            )
        ).scalar_one()
    assert logged == 12
    final = crm.service.get(case.id)
    assert final.status == "open" and final.first_responded_at == min(m.created_at for m in conversation)
    assert [e.action for e in crm.audit.entries(entity="case", limit=10).items].count("status") == 1


def test_racing_status_changes_follow_the_transition_table(crm, together):
    an = crm.customers.add(name="Trần Thị Bình")
    case = crm.service.open(an.id, "Đổi hàng")
    crm.service.set_status(case.id, "resolved", resolution="Đã đổi")
    results = together(
        lambda: crm.service.set_status(case.id, "reopened"), lambda: crm.service.set_status(case.id, "reopened")
    )
    refused = [r for r in results if isinstance(r, crmkit.ValidationError)]
    assert len(refused) == 1 and "a reopened case cannot become reopened" in refused[0].errors["status"][0]
    statuses = [
        e.changes["status"]["after"] for e in crm.audit.entries(entity="case", limit=10).items if e.action == "status"
    ]
    assert statuses == ["reopened", "resolved"]


def test_two_workers_checking_slas_report_each_breach_once(crm, together):
    an = crm.customers.add(name="Lê Văn Cường")
    opened = [crm.service.open(an.id, f"Khẩn {n}", priority="urgent") for n in range(5)]
    later = max(c.resolution_due_at for c in opened) + timedelta(minutes=1)
    first, second = together(lambda: crm.service.run_due(now=later), lambda: crm.service.run_due(now=later))
    assert not isinstance(first, Exception) and not isinstance(second, Exception), (first, second)
    reported = sorted((b.case_id, b.target) for b in first + second)
    assert reported == sorted((c.id, t) for c in opened for t in ("first_response", "resolution"))
    assert crm.service.run_due(now=later) == []


#: Replies to a case, notes it and resolves it in one transaction, then waits to be killed.
WORKER = """
import sys, time
from pathlib import Path
import crmkit
url, case_id, ready = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
crm = crmkit.CRM(url, plugins=["service"])
with crm.transaction():
    crm.service.reply(case_id, "Dạ em đã kiểm tra")
    crm.service.note(case_id, "half-written?")
    crm.service.set_status(case_id, "resolved", resolution="never committed")
    ready.touch()
    time.sleep(120)
"""


def test_a_killed_reply_and_resolution_leave_nothing_behind(crm, tmp_path):
    an = crm.customers.add(name="Võ Thị Hoa")
    case = crm.service.open(an.id, "Máy lọc nước rò rỉ")
    before = len(crm.interactions.timeline(an.id).items)
    ready = tmp_path / "ready"
    url = crm.engine.url.render_as_string(hide_password=False)
    kill_when_ready(WORKER, url, str(case.id), str(ready), ready=ready)
    assert crm.service.conversation(case.id) == []
    assert crm.service.get(case.id) == case
    assert len(crm.interactions.timeline(an.id).items) == before
    crm.service.reply(case.id, "Dạ em đã kiểm tra")  # the case's lock died with the process
    assert crm.service.get(case.id).status == "open"
