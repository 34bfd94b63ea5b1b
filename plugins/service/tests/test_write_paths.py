"""The other new write paths — attachments, routing rules and shifts, canned replies, a routed opening, the purge
of refused payloads — under a kill -9 in the middle of their transaction and with writers racing."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from crmkit.testing import add_user, kill_when_ready
from crmkit_service.models import (
    agent_shifts,
    attachments,
    canned_replies,
    cases,
    rejected_payloads,
    routing_cursors,
    routing_rules,
)

pytestmark = pytest.mark.crmkit_plugins("service")

#: Writes on every new path in one transaction, then waits to be killed.
WRITER = """
import sys, time
from pathlib import Path
import crmkit
url, case_id, customer_id, ready = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
crm = crmkit.CRM(url, plugins=["service"])
with crm.transaction():
    crm.service.attachments.add(case_id, "never.pdf", storage_key="never.pdf")
    crm.service.routing.add("CSKH", category="never")
    crm.service.routing.set_shift("hoa", {5: (480, 720)})
    crm.service.canned.add("never", "Không bao giờ")
    crm.service.canned.reply(case_id, "da-nhan")
    crm.service.open(customer_id, "Never", category="repair")
    crm.service.intake.purge_rejected(days=0)
    ready.touch()
    time.sleep(120)
"""


def _counts(crm):
    with crm.reading() as conn:
        return {
            table.name: conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            for table in (
                attachments,
                routing_rules,
                routing_cursors,
                agent_shifts,
                canned_replies,
                cases,
                rejected_payloads,
            )
        } | {"cursor": conn.execute(sa.select(routing_cursors.c.last_assignee)).scalars().all()}


def test_a_killed_transaction_on_the_new_paths_leaves_nothing(crm, tmp_path):
    add_user(crm, "hoa", teams=["CSKH"], roles=["support"])
    crm.service.routing.add("CSKH", category="repair")
    crm.service.canned.add("da-nhan", "Dạ em đã nhận yêu cầu #{case_number}")
    an = crm.customers.add(name="Nguyễn Văn An")
    case = crm.service.open(an.id, "Hỏng", assignee="hoa")
    with pytest.raises(Exception):  # noqa: B017 - any refusal: only its kept payload matters here
        crm.service.intake.web_form({"email": "an@example.vn"})
    before, conversation = _counts(crm), crm.service.conversation(case.id)
    ready = tmp_path / "ready"
    url = crm.engine.url.render_as_string(hide_password=False)
    kill_when_ready(WRITER, url, str(case.id), str(an.id), str(ready), ready=ready)
    assert _counts(crm) == before and crm.service.conversation(case.id) == conversation
    crm.service.canned.reply(case.id, "da-nhan")  # the case's lock died with the process


def test_racing_writers_on_the_same_canned_reply_case_and_team(crm, together):
    add_user(crm, "hoa", teams=["CSKH"], roles=["support"])
    an = crm.customers.add(name="Nguyễn Văn An")
    case = crm.service.open(an.id, "Hỏng")
    results = together(
        lambda: crm.service.canned.add("chao", "Chào {given_name}"),
        lambda: crm.service.canned.add("chao", "Xin chào {given_name}"),
        lambda: crm.service.attachments.add(case.id, "1.jpg", storage_key="1.jpg"),
        lambda: crm.service.attachments.add(case.id, "2.jpg", storage_key="2.jpg"),
        lambda: crm.service.routing.add("CSKH", channel="chat"),
        lambda: crm.service.routing.add("CSKH", channel="email"),
    )
    assert not [r for r in results if isinstance(r, Exception)], results
    [kept] = crm.service.canned.show("chao")
    assert kept.body in ("Chào {given_name}", "Xin chào {given_name}")
    assert sorted(a.name for a in crm.service.attachments.list(case.id)) == ["1.jpg", "2.jpg"]
    assert sorted(r.channel for r in crm.service.routing.list()) == ["chat", "email"]
    with crm.reading() as conn:
        assert conn.execute(sa.select(routing_cursors.c.team)).scalars().all() == ["CSKH"]
