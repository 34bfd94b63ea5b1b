"""The tracking routes of the one app: pixels, signed redirects, unsubscribes that withdraw consent, provider
webhooks, replies logged as interactions — called through Werkzeug's test client, and once over loopback HTTP."""

from __future__ import annotations

import json
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from email import message_from_bytes, policy

import campaigns_testkit as kit
import pytest
from werkzeug.serving import make_server
from werkzeug.test import Client

from crmkit.web import create_app
from crmkit_campaigns.web import PIXEL


@pytest.fixture
def sent(crm_factory, tmp_path):
    """A CRM with a listener of message events, and a campaign sent to three customers through the file outbox."""
    listener = kit.Listener()
    crm = crm_factory(plugins=["campaigns", listener.plugin])
    kit.outbox(crm, tmp_path / "outbox")
    customers = kit.people(crm, 3)
    campaign = crm.campaigns.create("Tết", channel="email", body="Ưu đãi Tết: https://saomai.example.vn/tet?ma=TET&x=1")
    crm.campaigns.run(campaign.id, now=kit.NOON)
    crm.campaigns.dispatch(now=kit.NOON)
    return crm, campaign, customers, listener, tmp_path / "outbox"


def call(app, method, url, body=b"", headers=None):
    """Call the app through Werkzeug's test client; returns (status code, headers, body)."""
    response = Client(app).open(url, method=method, data=body, headers=headers or {})
    return response.status_code, dict(response.headers), response.get_data()


@contextmanager
def serving(crm) -> Iterator[str]:
    """The app on a threaded HTTP server on a free loopback port; yields its base URL."""
    server = make_server("127.0.0.1", 0, create_app(crm), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def links(outbox, customer):
    """The tracked link, pixel and unsubscribe URLs in the e-mail a customer received."""
    for path in outbox.iterdir():
        email = message_from_bytes(path.read_bytes(), policy=policy.default)
        if customer.email in str(email["To"]):
            text = email.get_body(("plain",)).get_content()
            html = email.get_body(("html",)).get_content()
            click = re.search(r"http://127\.0\.0\.1:8000(/campaigns/t/c/\S+)", text).group(1)
            pixel = re.search(r'src="http://127\.0\.0\.1:8000(/campaigns/t/o/[^"]+)"', html).group(1)
            unsubscribe = re.search(
                r"<http://127\.0\.0\.1:8000(/campaigns/t/u/[^>]+)>", email["List-Unsubscribe"]
            ).group(1)
            return click, pixel, unsubscribe
    raise AssertionError(f"no e-mail to {customer.email}")


EVENTS = "/campaigns/t/events"


def message_of(crm, campaign, customer):
    return next(m for m in crm.campaigns.messages(campaign.id) if m["customer_id"] == customer.id)


def test_opens_and_clicks_are_recorded_once_and_redirect_only_where_signed(sent):
    crm, campaign, (lan, *_), listener, outbox = sent
    app = create_app(crm)
    click, pixel, _ = links(outbox, lan)
    status, headers, body = call(app, "GET", pixel)
    assert (status, headers["Content-Type"], body) == (200, "image/gif", PIXEL)
    call(app, "GET", pixel)  # a second load of the same pixel is noise
    status, headers, _ = call(app, "GET", click)
    assert status == 302 and headers["Location"] == "https://saomai.example.vn/tet?ma=TET&x=1"
    tampered = click.replace("saomai.example.vn", "evil.example.com")
    assert call(app, "GET", tampered)[0] == 400  # never an open redirect
    assert call(app, "GET", pixel.replace(".gif", "x.gif"))[0] == 200  # a bad pixel still answers with the pixel
    message = message_of(crm, campaign, lan)
    assert message["status"] == "sent"
    assert listener.kinds().count("opened") == 1 and listener.kinds().count("clicked") == 1
    opened = next(e for e in listener.events if e.kind == "clicked")
    assert (opened.customer_id, opened.campaign_id, opened.detail["url"]) == (
        lan.id,
        campaign.id,
        "https://saomai.example.vn/tet?ma=TET&x=1",
    )
    report = crm.campaigns.report(campaign.id)
    assert (report.treated.opened, report.treated.clicked) == (1, 1)
    profile = crm.customers.profile(lan.id).sections["campaigns"]
    assert profile["latest_messages"][0]["campaign"] == "Tết" and profile["latest_messages"][0]["clicked_at"]


def test_unsubscribe_shows_a_form_then_withdraws_consent(sent):
    crm, campaign, (lan, binh, _), listener, outbox = sent
    app = create_app(crm)
    _, _, unsubscribe = links(outbox, lan)
    status, _, page = call(app, "GET", unsubscribe)
    assert status == 200 and b'method="post"' in page  # link scanners only GET: nothing withdrawn yet
    assert crm.customers.get(lan.id).has_consent("email")
    status, _, page = call(app, "POST", unsubscribe)
    assert status == 200 and "Đã hủy nhận tin" in page.decode()
    customer = crm.customers.get(lan.id)
    assert (
        not customer.has_consent("email")
        and customer.consents["email"].source == f"unsubscribe link, campaign {campaign.id}"
    )
    assert call(app, "POST", unsubscribe[:-3] + "AAA")[0] == 400
    assert "unsubscribed" in listener.kinds()
    again = crm.campaigns.create("Lần nữa", channel="email", body="x")
    result = crm.campaigns.run(again.id, now=kit.NOON + timedelta(days=1))
    assert result.excluded == {"no_consent": 1} and result.queued == 2 and binh.id


def test_provider_webhooks_need_the_token_and_record_delivery_bounces_and_replies(sent):
    crm, campaign, (lan, binh, chi), listener, _ = sent
    app = create_app(crm)
    token = crm.campaigns.webhook_token()
    events = [
        {"event": "delivered", "idempotency_key": f"crmkit-{campaign.id}-{message_of(crm, campaign, lan)['id']}"},
        {
            "event": "bounced",
            "provider_message_id": message_of(crm, campaign, binh)["provider_message_id"],
            "reason": "550 mailbox unavailable",
        },
        {
            "event": "replied",
            "message_id": message_of(crm, campaign, chi)["id"],
            "text": "Cho tôi xin báo giá quà Tết",
            "at": "2026-03-04T11:00:00+07:00",
        },
        {"event": "teleported", "message_id": 1},
    ]
    body = json.dumps(events).encode()
    assert call(app, "POST", EVENTS, body, {"Authorization": "Bearer nope"})[0] == 401
    status, _, reply = call(app, "POST", EVENTS, body, {"Authorization": f"Bearer {token}"})
    results = json.loads(reply)["results"]
    assert status == 207 and [r.get("recorded") for r in results[:3]] == [True, True, True]
    assert "unknown event 'teleported'" in results[3]["error"]
    assert message_of(crm, campaign, lan)["status"] == "sent"
    bounced = message_of(crm, campaign, binh)
    assert (bounced["status"], bounced["last_error"]) == ("bounced", "550 mailbox unavailable")
    assert [s["address"] for s in crm.campaigns.suppressions()] == [binh.email]  # a hard bounce is suppressed
    reply_logged = crm.customers.profile(chi.id).interactions[0]
    assert (reply_logged.direction, reply_logged.channel, reply_logged.summary) == (
        "inbound",
        "email",
        "Cho tôi xin báo giá quà Tết",
    )
    report = crm.campaigns.report(campaign.id)
    assert (report.treated.delivered, report.treated.bounced, report.treated.responded) == (1, 1, 1)
    assert {"delivered", "bounced", "responded"} <= set(listener.kinds())


def test_an_inbound_contact_soon_after_a_message_counts_as_its_response(sent):
    crm, campaign, (lan, binh, _), _, _ = sent
    sent_at = message_of(crm, campaign, lan)["sent_at"]
    crm.interactions.log(
        lan.id, "email", direction="inbound", occurred_at=sent_at + timedelta(days=2), summary="Hỏi giá"
    )
    crm.interactions.log(
        binh.id, "email", direction="inbound", occurred_at=sent_at + timedelta(days=30), summary="Muộn"
    )
    crm.interactions.log(binh.id, "phone", direction="inbound", occurred_at=sent_at + timedelta(days=1))
    assert message_of(crm, campaign, lan)["id"] and crm.campaigns.report(campaign.id).treated.responded == 1
    with crm.reading() as conn:  # within the 7-day window, same channel: lan's; binh's came too late / elsewhere
        import sqlalchemy as sa

        from crmkit_campaigns import models as m

        responded = dict(
            conn.execute(
                sa.select(m.messages.c.customer_id, m.messages.c.responded_at).where(
                    m.messages.c.campaign_id == campaign.id
                )
            ).all()
        )
    assert responded[lan.id] == sent_at + timedelta(days=2) and responded[binh.id] is None


def test_the_app_over_a_real_loopback_http_server(sent):
    crm, campaign, (lan, *_), _, outbox = sent
    with serving(crm) as base:
        click, pixel, unsubscribe = links(outbox, lan)
        assert urllib.request.urlopen(base + "/campaigns/t/health").read() == b"ok\n"
        assert urllib.request.urlopen(base + pixel).read() == PIXEL

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):
                return None

        with pytest.raises(urllib.error.HTTPError) as redirect:
            urllib.request.build_opener(NoRedirect).open(base + click)
        assert redirect.value.code == 302 and redirect.value.headers["Location"].startswith(
            "https://saomai.example.vn/"
        )
        request = urllib.request.Request(base + unsubscribe, data=b"List-Unsubscribe=One-Click", method="POST")
        assert urllib.request.urlopen(request).status == 200
    assert not crm.customers.get(lan.id).has_consent("email")
    assert message_of(crm, campaign, lan)["unsubscribed_at"] is not None
