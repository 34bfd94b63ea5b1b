"""Transactional single messages (``crm.campaigns.send_message``) and CSAT surveys through campaigns' channels: a
resolved case's survey goes out on a channel the customer consented to, with the answer link, through the same
outbox and dispatcher as campaigns; a survey that may not go (no consent, frequency cap) is not sent and the case's
history says why; nothing is half-written when the process dies, and a survey is queued once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import campaigns_testkit as kit
import pytest
import sqlalchemy as sa

from crmkit.console.testing import ConsoleBrowser, console_user, text
from crmkit.testing import api_client
from crmkit_campaigns import models as m


@pytest.fixture
def both(crm_factory: Any, tmp_path: Path) -> Any:
    """Campaigns (e-mail to a file outbox, no quiet hours, no cap) and service."""
    crm = crm_factory(plugins=["campaigns", "service"])
    kit.outbox(crm, tmp_path / "outbox")
    return crm


def _customer(crm: Any, consent: bool = True) -> Any:
    return crm.customers.add(
        name="Nguyễn Thị Ánh",
        given_name="Ánh",
        family_name="Nguyễn",
        email="anh@example.vn",
        consents={"email": consent},
    )


def _resolve(crm: Any, customer_id: int) -> Any:
    case = crm.service.open(customer_id, "Máy lọc nước rò rỉ", channel="phone", assignee=None)
    crm.service.set_status(case.id, "resolved", resolution="Thay gioăng")
    return crm.service.get(case.id)


def _messages(crm: Any) -> list[Any]:
    with crm.reading() as conn:
        return list(conn.execute(sa.select(m.messages).order_by(m.messages.c.id)))


def _mail(tmp_path: Path) -> tuple[str, str]:
    """The subject and text of the one e-mail in the file outbox."""
    (mail,) = (tmp_path / "outbox").iterdir()
    message = message_from_bytes(mail.read_bytes(), policy=policy.default)
    assert "anh@example.vn" in message["To"]
    return str(message["Subject"]).strip(), message.get_body(("plain",)).get_content()


def _not_sent(crm: Any, case_id: int) -> list[Any]:
    return [e.changes for e in crm.audit.entries(action="csat_not_sent").items if e.entity_id == str(case_id)]


def test_a_consenting_customer_gets_the_survey_by_email_and_answers_through_its_link(both, tmp_path):
    crm = both
    an = _customer(crm)
    case = _resolve(crm, an.id)
    (queued,) = _messages(crm)
    assert (queued.status, queued.channel, queued.customer_id) == ("queued", "email", an.id)
    assert _not_sent(crm, case.id) == []
    assert crm.campaigns.dispatch().sent == 1
    subject, body = _mail(tmp_path)
    assert subject == f"Bạn hài lòng với hỗ trợ của chúng tôi? (yêu cầu #{case.id})"
    assert body.startswith("Chào Nguyễn Thị Ánh,")  # the name in its Vietnamese order
    link = body.split("tại đây: ", 1)[1].split()[0]
    assert link.startswith(f"http://127.0.0.1:8000/service/csat/{case.id}.")
    answer = api_client(crm).post(link.removeprefix("http://127.0.0.1:8000"), json={"score": 4, "comment": "Tốt"})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert crm.service.get(case.id).csat_score == 4
    assert _messages(crm)[0].status == "sent"


def test_the_surveys_are_listed_under_their_purpose_in_reports_and_the_console(both):
    crm = both
    _resolve(crm, _customer(crm).id)
    (holder,) = [c for c in crm.campaigns.list() if c.status == "transactional"]
    assert holder.name == "transactional: csat"
    assert [r["status"] for r in crm.campaigns.messages(holder.name)] == ["queued"]
    assert crm.campaigns.report(holder.name).campaign.id == holder.id
    console_user(crm, "mai", roles=["marketing"], locale="vi")
    browser = ConsoleBrowser(crm)
    assert browser.sign_in("mai").status_code == 303
    page = browser.get("/console/campaigns")
    assert page.status_code == 200 and "transactional: csat Tin giao dịch" in text(page)


def test_english_crm_sends_the_english_survey(both, tmp_path):
    crm = both
    crm.set_setting("locale", "en")
    _resolve(crm, _customer(crm).id)
    crm.campaigns.dispatch()
    subject, body = _mail(tmp_path)
    assert subject.startswith("How did we do?") and body.startswith("Dear Nguyễn Thị Ánh,")


def test_no_consent_sends_nothing_and_the_case_says_why(both, tmp_path):
    crm = both
    case = _resolve(crm, _customer(crm, consent=False).id)
    (row,) = _messages(crm)
    assert (row.status, row.reason) == ("excluded", "no_consent")
    assert _not_sent(crm, case.id) == [{"reasons": ["no_consent"]}]
    assert crm.campaigns.dispatch().sent == 0 and not (tmp_path / "outbox").exists()
    assert [c.id for c in crm.service.csat.pending()] == [case.id]  # still answerable by phone or at the counter


def test_the_frequency_cap_counts_surveys_with_campaigns(both):
    crm = both
    crm.campaigns.configure("frequency_cap", "1/7d")
    an = _customer(crm)
    first, second = _resolve(crm, an.id), _resolve(crm, an.id)
    assert [(r.status, r.reason) for r in _messages(crm)] == [("queued", None), ("excluded", "frequency_cap")]
    assert _not_sent(crm, first.id) == [] and _not_sent(crm, second.id) == [{"reasons": ["frequency_cap"]}]


def test_send_message_checks_its_input_and_queues_a_reference_once(both):
    crm = both
    an = _customer(crm)
    with pytest.raises(Exception) as bad:
        crm.campaigns.send_message(an.id, purpose="Hóa đơn", reference="r1", body="x")
    assert "purpose" in bad.value.errors
    with pytest.raises(Exception) as bad:
        crm.campaigns.send_message(an.id, purpose="receipt", reference="r1", body="{{ total }}")
    assert "body" in bad.value.errors and "total" in str(bad.value)
    no_channel = crm.campaigns.send_message(an.id, purpose="receipt", reference="r1", body="x", channel="sms")
    assert (no_channel.sent, no_channel.reason) == (False, "no_channel")
    first = crm.campaigns.send_message(
        an.id, purpose="receipt", reference="order-7", body="Đơn {{ order }}: cảm ơn {{ name }}", values={"order": "7"}
    )
    again = crm.campaigns.send_message(an.id, purpose="receipt", reference="order-7", body="…")
    assert first.sent and again.message_id == first.message_id and len(_messages(crm)) == 1


def test_quiet_hours_delay_the_survey(crm_factory, frozen_clock, tmp_path):
    crm = crm_factory(plugins=["campaigns", "service"], clock=frozen_clock)  # 10:00 in Hà Nội: inside the hours
    kit.outbox(crm, tmp_path / "outbox")
    crm.campaigns.configure("quiet_hours", "00:00-23:59")
    an = _customer(crm)
    result = crm.campaigns.send_message(an.id, purpose="csat", reference="q1", body="Chào {{ name }}")
    assert result.sent and result.send_at > crm.now()
    assert crm.campaigns.dispatch().sent == 0


def test_two_sends_of_one_survey_at_once_queue_one_message(both):
    crm = both
    an = _customer(crm)
    barrier, results, errors = threading.Barrier(2), [], []

    def send() -> None:
        barrier.wait()
        try:
            results.append(crm.campaigns.send_message(an.id, purpose="csat", reference="/service/csat/1.x", body="x"))
        except Exception as exc:  # noqa: BLE001 - collected: the assertion shows it
            errors.append(exc)

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == [] and len(_messages(crm)) == 1
    assert {r.message_id for r in results} == {_messages(crm)[0].id}


def test_two_resolutions_of_one_case_at_once_send_one_survey(both):
    crm = both
    an = _customer(crm)
    case = crm.service.open(an.id, "Máy lọc nước rò rỉ", channel="phone", assignee=None)
    barrier, errors = threading.Barrier(2), []

    def resolve() -> None:
        barrier.wait()
        try:
            crm.service.set_status(case.id, "resolved", resolution="Thay gioăng")
        except Exception as exc:  # noqa: BLE001 - the loser is refused: the case is resolved already
            errors.append(exc)

    threads = [threading.Thread(target=resolve) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(errors) <= 1 and len(_messages(crm)) == 1


#: Resolves a case of the CRM at argv[1]; stalls (to be killed) right after the survey was queued.
WORKER = """
import sys, time
from pathlib import Path
import crmkit
from crmkit_campaigns import transactional
url, ready, case_id = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
crm = crmkit.CRM(url, plugins=["campaigns", "service"])
send = transactional.send
def stall(*args, **kwargs):
    result = send(*args, **kwargs)
    ready.touch()
    time.sleep(120)
transactional.send = stall
crm.service.set_status(case_id, "resolved", resolution="Thay gioăng")
"""


def test_a_killed_resolution_leaves_neither_message_nor_survey(both, tmp_path):
    crm = both
    an = _customer(crm)
    case = crm.service.open(an.id, "Máy lọc nước rò rỉ", channel="phone", assignee=None)
    ready = tmp_path / "ready"
    url = crm.engine.url.render_as_string(hide_password=False)
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, url, str(ready), str(case.id)], stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while not ready.exists() and worker.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ready.exists(), worker.stderr.read() if worker.stderr else ""
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(timeout=30)
    assert _messages(crm) == []
    after = crm.service.get(case.id)
    assert (after.status, after.csat_requested_at) == (case.status, None)
    crm.service.set_status(case.id, "resolved", resolution="Thay gioăng")  # as if never tried
    assert len(_messages(crm)) == 1
