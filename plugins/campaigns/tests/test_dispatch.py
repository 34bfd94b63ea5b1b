"""Delivery after commit: real SMTP and HTTP servers on 127.0.0.1, retries with backoff, a vendor channel,
and exactly-once sending through crashes, re-runs and concurrent dispatchers."""

from __future__ import annotations

import threading
from datetime import timedelta

import attrs
import campaigns_testkit as kit
import pytest

from crmkit_campaigns.channels import SmtpAdapter, WebhookAdapter
from crmkit_campaigns.dispatch import Dispatcher

pytestmark = pytest.mark.crmkit_plugins("campaigns")

LATER = kit.NOON + timedelta(minutes=10)  # past every lease and first backoff


def smtp(crm, port):
    crm.campaigns.set_channel(
        "email", "smtp", host="127.0.0.1", port=port, sender="Sao Mai <chao@saomai.example.vn>", timeout=5
    )
    crm.campaigns.configure("quiet_hours", "")
    crm.campaigns.configure("frequency_cap", None)


def launch(crm, name="Tết", channel="email", body="Chào {{ first_name }}, ưu đãi https://saomai.example.vn/tet", **kw):
    campaign = crm.campaigns.create(
        name, channel=channel, subject="Chúc mừng năm mới {{ first_name }}", body=body, **kw
    )
    crm.campaigns.run(campaign.id, now=kit.NOON)
    return campaign


def test_email_over_real_smtp(crm):
    with kit.SmtpSink() as sink:
        smtp(crm, sink.port)
        customers = kit.people(crm, 3, prefix="Lan")
        campaign = launch(crm)
        report = crm.campaigns.dispatch(now=kit.NOON)
    assert (report.sent, report.failed, report.finished_campaigns) == (3, 0, (campaign.id,))
    assert sorted(str(m["To"]) for m in sink.messages) == sorted(f"{c.name} <{c.email}>" for c in customers)
    first = sink.messages[0]
    assert str(first["Subject"]).startswith("Chúc mừng năm mới Lan")
    assert first["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # a long URL folds the header onto its next line (RFC 5322): the value then starts with the fold's space
    assert first["List-Unsubscribe"].strip().startswith("<http://127.0.0.1:8000/campaigns/t/u/")
    text = first.get_body(("plain",)).get_content()
    assert (
        "http://127.0.0.1:8000/campaigns/t/c/" in text and "Unsubscribe: http://127.0.0.1:8000/campaigns/t/u/" in text
    )
    html = first.get_body(("html",)).get_content()
    assert "/o/" in html and ".gif" in html
    sent = crm.campaigns.messages(campaign.id, status="sent")
    assert {m["provider_message_id"] for m in sent} == {str(m["Message-ID"]) for m in sink.messages}


def test_an_unreachable_smtp_server_leaves_messages_queued_until_a_retry_delivers_them(crm):
    port = kit.free_port()
    smtp(crm, port)
    kit.people(crm, 4)
    campaign = launch(crm)
    report = crm.campaigns.dispatch(now=kit.NOON)
    assert (report.sent, report.failed) == (0, 0) and report.retrying == 4
    assert "unreachable" in report.errors[0]
    waiting = crm.campaigns.messages(campaign.id)
    assert {m["status"] for m in waiting} == {"queued"}
    assert all(m["next_attempt_at"] > kit.NOON and "unreachable" in m["last_error"] for m in waiting)
    assert sorted(m["attempts"] for m in waiting) == [0, 0, 0, 1]  # only one was tried; the others were held back
    assert crm.campaigns.dispatch(now=kit.NOON + timedelta(seconds=30)).sent == 0  # not due yet: nothing tried
    with kit.SmtpSink(port) as sink:
        assert crm.campaigns.dispatch(now=LATER).sent == 4
    assert len(sink.messages) == 4 and crm.campaigns.get(campaign.id).status == "done"


def test_a_refused_recipient_fails_and_the_others_are_sent(crm):
    with kit.SmtpSink() as sink:
        smtp(crm, sink.port)
        refused, fine = kit.people(crm, 2)
        sink.refuse.add(refused.email)
        campaign = launch(crm)
        report = crm.campaigns.dispatch(now=kit.NOON)
    assert (report.sent, report.failed) == (1, 1)
    failed = crm.campaigns.messages(campaign.id, status="failed")[0]
    assert failed["address"] == refused.email and "550" in failed["last_error"]
    assert [str(m["To"]) for m in sink.messages] == [f"{fine.name} <{fine.email}>"]


def test_sms_through_a_webhook_with_retries_and_backoff(crm):
    with kit.Gateway() as gateway:
        crm.campaigns.set_channel("sms", "webhook", url=gateway.url)
        kit.outbox(crm, "/tmp/unused")
        crm.campaigns.configure("max_attempts", 3)
        for n in range(2):
            crm.customers.add(name=f"Khách {n}", phone=f"091234567{n}", consents={"sms": True})
        campaign = launch(crm, channel="sms", body="Mã giảm giá TET2026 cho {{ first_name }}")
        gateway.fail_next = 1
        first = crm.campaigns.dispatch(now=kit.NOON)
        assert (first.sent, first.retrying) == (1, 1)
        retry = crm.campaigns.messages(campaign.id, status="queued")[0]
        assert retry["next_attempt_at"] >= kit.NOON + timedelta(seconds=60) and "HTTP 503" in retry["last_error"]
        gateway.fail_next = 5
        crm.campaigns.dispatch(now=LATER)
        gave_up = crm.campaigns.dispatch(now=LATER + timedelta(hours=1))
        assert gave_up.failed == 1 and "gave up after 3 attempts" in gave_up.errors[0]
    bodies = list(gateway.delivered.values())
    assert len(bodies) == 1 and bodies[0]["to"].startswith("+8491234567") and "TET2026" in bodies[0]["text"]
    assert bodies[0]["unsubscribe_url"] in bodies[0]["text"]


def test_a_vendor_plugin_adds_a_zalo_channel(crm_factory):
    adapter = kit.MemoryAdapter()
    crm = crm_factory(plugins=["campaigns", kit.zalo_plugin(adapter)])
    crm.campaigns.configure("quiet_hours", "")
    fan = crm.customers.add(name="Phạm Thu", phone="0987654321", consents={"zalo": True})
    crm.customers.add(name="Không dùng Zalo", phone="0987000000")
    assert {
        "channel": "zalo",
        "adapter": "zalo-oa",
        "address_kind": "phone",
        "idempotent": True,
        "source": "plugin",
        "options": {},
    } in crm.campaigns.channel_list()
    campaign = launch(crm, channel="zalo", body="Chào {{ first_name }}")
    assert crm.campaigns.dispatch(now=kit.NOON).sent == 1
    (message,) = adapter.sent
    assert (message.to, message.channel, message.customer_id) == ("+84987654321", "zalo", fan.id)
    assert (
        crm.campaigns.messages(campaign.id, status="sent")[0]["provider_message_id"] == f"zalo-oa-{message.message_id}"
    )


def test_consent_withdrawn_between_the_run_and_the_send_cancels_the_message(shop):
    keep, leave = kit.people(shop, 2)
    campaign = launch(shop)
    shop.customers.set_consent(leave.id, "email", False, source="gọi điện yêu cầu")
    assert shop.campaigns.dispatch(now=kit.NOON).sent == 1
    cancelled = shop.campaigns.messages(campaign.id, status="cancelled")
    assert [(m["customer_id"], m["reason"]) for m in cancelled] == [(leave.id, "no_consent")]
    assert keep.id in {m["customer_id"] for m in shop.campaigns.messages(campaign.id, status="sent")}


# --- exactly once -----------------------------------------------------------------------------------------


def test_a_crash_after_the_provider_accepted_resends_with_the_same_key_and_the_provider_drops_it(crm_factory):
    adapters: dict = {}
    crm = crm_factory(plugins=["campaigns", kit.adapter_plugin(adapters)])
    crm.campaigns.configure("quiet_hours", "")
    with kit.Gateway() as gateway:
        adapters["sms"] = kit.CrashAfterSend(WebhookAdapter(url=gateway.url))
        for n in range(3):
            crm.customers.add(name=f"Khách {n}", phone=f"090000000{n}", consents={"sms": True})
        campaign = launch(crm, channel="sms", body="Chào")
        with pytest.raises(kit.Crash):
            crm.campaigns.dispatch(now=kit.NOON)
        statuses = sorted(m["status"] for m in crm.campaigns.messages(campaign.id))
        # The batch was marked sending in one commit; the first was handed over, then the process died.
        assert statuses == ["sending", "sending", "sending"] and gateway.requests == 1
        assert crm.campaigns.dispatch(now=kit.NOON + timedelta(seconds=10)).sent == 0  # leases still held
        report = crm.campaigns.dispatch(now=LATER)
        assert (report.recovered, report.sent) == (3, 3)
    assert len(gateway.delivered) == 3 and gateway.requests == 4  # one retry, deduplicated by its key
    assert {m["status"] for m in crm.campaigns.messages(campaign.id)} == {"sent"}


def test_a_crash_after_smtp_accepted_is_never_sent_twice_on_its_own(crm_factory):
    adapters: dict = {}
    crm = crm_factory(plugins=["campaigns", kit.adapter_plugin(adapters)])
    crm.campaigns.configure("quiet_hours", "")
    with kit.SmtpSink() as sink:
        adapters["email"] = kit.CrashAfterSend(SmtpAdapter(host="127.0.0.1", port=sink.port, sender="a@shop.vn"))
        kit.people(crm, 2)
        campaign = launch(crm)
        with pytest.raises(kit.Crash):
            crm.campaigns.dispatch(now=kit.NOON)
        report = crm.campaigns.dispatch(now=LATER)
        assert (report.unconfirmed, report.sent) == (1, 1)
        (unsure,) = crm.campaigns.messages(campaign.id, status="unconfirmed")
        assert "outcome unknown" in unsure["last_error"]
        assert crm.campaigns.dispatch(now=LATER + timedelta(hours=1)).sent == 0
        assert len(sink.messages) == 2  # the crashed one did reach the server once
        assert crm.campaigns.get(campaign.id).status == "done"  # nothing waits: someone must look at it
        resent = crm.campaigns.dispatch(now=LATER + timedelta(hours=2), retry_unconfirmed=True)
        assert resent.sent == 1 and len(sink.messages) == 3  # sent again only when asked to


def test_a_crash_between_claiming_and_sending_loses_nothing(shop, tmp_path):
    kit.people(shop, 5)
    campaign = launch(shop)
    abandoned = Dispatcher(shop, shop.campaigns, clock=lambda: kit.NOON)._claim(3, ["email"])  # then the process died
    assert len(abandoned) == 3
    assert shop.campaigns.dispatch(now=kit.NOON).sent == 2  # only the unclaimed ones: the others are leased
    report = shop.campaigns.dispatch(now=LATER)
    assert (report.recovered, report.sent) == (3, 3)
    assert len(list((tmp_path / "outbox").iterdir())) == 5
    assert shop.campaigns.get(campaign.id).status == "done"


@attrs.define
class Counting:
    """A non-idempotent adapter that notes every message it is given (from any thread)."""

    seen: list = attrs.field(factory=list)
    name: str = "counting"
    address_kind: str = "email"
    idempotent: bool = False

    def send(self, message):
        self.seen.append(message.message_id)
        return f"count-{message.message_id}"


def test_concurrent_dispatchers_send_each_message_once(crm_factory):
    counting = Counting()
    crm = crm_factory(plugins=["campaigns", kit.adapter_plugin({"email": counting})])
    crm.campaigns.configure("quiet_hours", "")
    kit.people(crm, 30)
    campaign = launch(crm)
    errors = []

    def work():
        try:
            crm.campaigns.dispatch(now=kit.NOON, batch=4)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sorted(counting.seen) == sorted(m["id"] for m in crm.campaigns.messages(campaign.id, limit=100))
    assert len(set(counting.seen)) == len(counting.seen) == 30


def test_running_and_dispatching_again_sends_nothing_twice(shop, tmp_path):
    kit.people(shop, 4)
    campaign = launch(shop)
    assert shop.campaigns.dispatch(now=kit.NOON).sent == 4
    assert shop.campaigns.dispatch(now=LATER).sent == 0
    other = shop.campaigns.create("Khác", channel="email", body="x")
    shop.campaigns.schedule(other.id, kit.NOON)
    due = shop.campaigns.run_due(now=LATER)
    assert [(r.campaign_id, r.queued) for r in due.runs] == [(other.id, 4)]  # the done campaign is not run again
    assert shop.campaigns.run_due(now=LATER).runs == []
    assert shop.campaigns.dispatch(now=LATER).sent == 4
    files = {p.name for p in (tmp_path / "outbox").iterdir()}
    assert len(files) == 8 and sum(name.startswith(f"crmkit-{campaign.id}-") for name in files) == 4


def test_a_webhook_error_never_shows_the_urls_credentials(crm, monkeypatch):
    secret = "k3y-Sao-Mai-2026"
    with kit.Gateway() as gateway:
        monkeypatch.setenv("SMS_URL", f"{gateway.url}?api_key={secret}")  # a URL with a key: by reference only
        crm.campaigns.set_channel("sms", "webhook", url="env:SMS_URL")
        kit.outbox(crm, "/tmp/unused")
        crm.customers.add(name="Khách", phone="0912345670", consents={"sms": True})
        campaign = launch(crm, channel="sms", body="Chào {{ first_name }}")
        gateway.fail_next = 1
        report = crm.campaigns.dispatch(now=kit.NOON)
    failed = crm.campaigns.messages(campaign.id, status="queued")[0]["last_error"]
    assert "HTTP 503" in failed and "api_key=***" in failed
    assert secret not in failed and secret not in " ".join(report.errors)
