"""The tracking routes under pressure: simultaneous first hits count once, malformed tokens and payloads answer
4xx (never 500), and no secret reaches the output of the commands that show configuration, nor the request logs."""

from __future__ import annotations

import json
import logging
import threading
import urllib.error
import urllib.request
from datetime import timedelta

import campaigns_testkit as kit
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_tracking import EVENTS, call, links, message_of, sent, serving  # noqa: F401 - `sent` is a fixture

from crmkit.cli.context import CLIContext
from crmkit.cli.main import cli
from crmkit.core import tables as core
from crmkit.web import create_app
from crmkit_campaigns import models as m

SIMULTANEOUS = 16


def _fire(requests):
    """Send the requests at once, one thread each, released together; returns their HTTP statuses."""
    barrier, statuses = threading.Barrier(len(requests)), []

    def one(request):
        barrier.wait()
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                statuses.append(response.status)
        except urllib.error.HTTPError as exc:
            statuses.append(exc.code)

    threads = [threading.Thread(target=one, args=(r,)) for r in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def test_simultaneous_first_opens_and_unsubscribes_are_recorded_once(sent):
    crm, campaign, (lan, *_), listener, outbox = sent
    _, pixel, unsubscribe = links(outbox, lan)
    message = message_of(crm, campaign, lan)
    with serving(crm) as base:
        opens = _fire([base + pixel] * SIMULTANEOUS)
        unsubscribes = _fire(
            [urllib.request.Request(base + unsubscribe, data=b"List-Unsubscribe=One-Click", method="POST")]
            * SIMULTANEOUS
        )
    assert opens == [200] * SIMULTANEOUS and unsubscribes == [200] * SIMULTANEOUS
    with crm.reading() as conn:
        kinds = conn.execute(sa.select(m.events.c.kind).where(m.events.c.message_id == message["id"])).scalars().all()
        consent_entries = conn.execute(
            sa.select(sa.func.count())
            .select_from(core.audit_log)
            .where(core.audit_log.c.action == "consent", core.audit_log.c.customer_id == lan.id)
        ).scalar_one()
    assert kinds.count("opened") == 1 and kinds.count("unsubscribed") == 1
    assert listener.kinds().count("opened") == 1 and listener.kinds().count("unsubscribed") == 1
    assert consent_entries == 1  # one withdrawal of consent, audited once
    assert not crm.customers.get(lan.id).has_consent("email")


# -- malformed tokens: 400 / 401 like any forgery, never 500 ---------------------------------------------------


def test_non_ascii_huge_and_non_canonical_tokens_are_refused_not_crashed(sent):
    crm, campaign, (lan, *_), _, outbox = sent
    app = create_app(crm)
    click, pixel, unsubscribe = links(outbox, lan)
    token = unsubscribe.removeprefix("/campaigns/t/u/")
    key_id, message_hex, mac = token.split(".")
    forged = [
        token[:-1] + "é",  # non-ASCII: compare_digest refused it (TypeError → 500)
        f"{key_id}.{'1' * 5000}.{mac}",  # a 5,000-digit id
        f"{key_id}.{'9' * 5000}",
        f"0{key_id}.{message_hex}.{mac}",
        f"{key_id}.0{message_hex}.{mac}",
        f"{key_id}.0x{message_hex}.{mac}",
        f"+{key_id}.{message_hex}.{mac}",
        f"{key_id}.-{message_hex}.{mac}",
        f"{key_id}.{message_hex.upper()}.{mac}"
        if message_hex.upper() != message_hex
        else f"{key_id}.{message_hex} .{mac}",
        f"١.{message_hex}.{mac}",  # an Arabic-Indic digit one: int() reads it as 1
        f"{key_id}.{message_hex}.{mac} ",
        f"{key_id}.{'f' * 17}.{mac}",
    ]
    for bad in forged:
        assert call(app, "POST", f"/campaigns/t/u/{bad}")[0] == 400, bad
        assert call(app, "GET", f"/campaigns/t/u/{bad}")[0] == 400, bad
        assert call(app, "GET", f"/campaigns/t/o/{bad}.gif")[0] == 200, bad  # a pixel always answers with the pixel
        assert call(app, "GET", f"/campaigns/t/c/{bad}?u=https%3A%2F%2Fsaomai.example.vn%2F")[0] == 400, bad
    for bearer in ("Bearer tôken", "Bearer " + "é" * 43, "Bearer \u00ff", "Basic ÿ"):
        assert call(app, "POST", EVENTS, b"[]", {"Authorization": bearer})[0] == 401, bearer
    assert crm.customers.get(lan.id).has_consent("email")  # nothing forged got through
    assert message_of(crm, campaign, lan)["opened_at"] is None
    assert call(app, "POST", unsubscribe)[0] == 200  # and the real token still works


def test_webhook_events_with_huge_ids_and_odd_values_are_refused_per_event(sent):
    crm, campaign, (lan, *_), _, _ = sent
    app = create_app(crm)
    auth = {"Authorization": f"Bearer {crm.campaigns.webhook_token()}"}
    events = [
        {"event": "delivered", "idempotency_key": f"crmkit-{campaign.id}-{'1' * 5000}"},
        {"event": "delivered", "idempotency_key": f"crmkit-{campaign.id}-0{message_of(crm, campaign, lan)['id']}"},
        {"event": "delivered", "message_id": 10**30},
        {"event": "delivered", "message_id": True},
        {"event": "delivered", "provider_message_id": "x" * 300},
        {"event": "bounced", "message_id": message_of(crm, campaign, lan)["id"], "reason": "nul \x00 byte"},
        {"event": "replied", "message_id": message_of(crm, campaign, lan)["id"], "subject": ["not", "text"]},
        {"event": "delivered", "message_id": message_of(crm, campaign, lan)["id"], "at": "0001-01-01T00:00+07:00"},
        {"event": "x" * 10_000},
        {"event": "bounced", "message_id": message_of(crm, campaign, lan)["id"], "reason": "half a pair \ud800"},
    ]
    status, _, reply = call(app, "POST", EVENTS, json.dumps(events).encode(), auth)
    results = json.loads(reply)["results"]
    assert status == 422 and all("error" in r for r in results), results
    fields = ["idempotency_key", "idempotency_key", "message_id", "message_id", "provider_message_id"]
    assert [r["error"].split(":")[0] for r in results[:5]] == fields
    assert len(results[8]["error"]) < 300
    assert call(app, "POST", EVENTS, b"[" * 100_000 + b"]" * 100_000, auth)[0] == 400  # nesting
    assert call(app, "POST", EVENTS, b"[" * 20 + b"]" * 20, auth)[0] == 400
    assert call(app, "POST", EVENTS, b"1" * 5000, auth)[0] == 400  # a 5,000-digit number
    for number in (b"NaN", b"-Infinity", b"1e400"):  # JSON columns hold none of them
        body = b'{"event": "bounced", "message_id": %d, "reason": %s}' % (message_of(crm, campaign, lan)["id"], number)
        assert call(app, "POST", EVENTS, body, auth)[0] == 400
    assert message_of(crm, campaign, lan)["status"] == "sent"  # nothing was recorded


_TEXT = st.text(max_size=60) | st.binary(max_size=60).map(lambda raw: raw.decode("latin-1"))
#: Pieces of almost-tokens: digits of any script, signs, hex prefixes, non-ASCII letters, huge numbers.
_PIECE = (
    st.text(alphabet="0123456789abcdefABCDEFx+-_ é١٢ÿ\u00a0", max_size=24)
    | st.integers().map(str)
    | st.integers(min_value=1).map(lambda n: f"{n:x}")
    | st.just("9" * 5000)
    | st.text(max_size=24)
)
_KEY_ID = st.sampled_from(["1", "١", "01", "+1", " 1", "2"]) | _PIECE  # "1" is this CRM's key
_TOKEN = _TEXT | st.tuples(_KEY_ID, _PIECE, _PIECE).map(".".join)
_ROUTE = st.sampled_from(
    [
        ("GET", "/o/{}.gif"),
        ("HEAD", "/o/{}.gif"),
        ("GET", "/o/{}"),
        ("GET", "/c/{}"),
        ("GET", "/u/{}"),
        ("POST", "/u/{}"),
        ("POST", "/events"),
        ("POST", "/events"),
        ("GET", "/events/{}"),
        ("PUT", "/{}"),
        ("GET", "/health"),
    ]
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    route=_ROUTE,
    token=_TOKEN,
    query=_TEXT,
    authorization=_TEXT | _TEXT.map("Bearer {}".format),
    use_token=st.booleans(),
    body=st.binary(max_size=200)
    | st.builds(
        lambda v: json.dumps(v).encode(),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
            lambda inner: st.lists(inner, max_size=4)
            | st.dictionaries(
                st.sampled_from(
                    [
                        "event",
                        "message_id",
                        "idempotency_key",
                        "provider_message_id",
                        "at",
                        "reason",
                        "permanent",
                        "text",
                        "subject",
                        "url",
                    ]
                )
                | st.text(max_size=5),
                inner,
                max_size=5,
            ),
            max_leaves=12,
        ),
    ),
)
def test_no_input_makes_any_tracking_route_answer_5xx(sent, route, token, query, authorization, use_token, body):
    crm = sent[0]
    method, route = route
    app = create_app(crm)
    given = authorization.replace("\r", " ").replace("\n", " ")  # no HTTP request carries a header's line break
    headers = {"Authorization": f"Bearer {crm.campaigns.webhook_token()}" if use_token else given}
    path = "/campaigns/t" + route.format(token.replace("/", "").replace("?", ""))
    status, _, _ = call(app, method, path + "?" + query if query else path, body, headers)
    assert status < 500, (method, path, query, body)


# -- no secret in what is printed or logged ----------------------------------------------------------------------

SECRETS = {"SMTP_PASSWORD": "mk-Smtp-9f27c1", "SMS_TOKEN": "tk-Sms-51ae0b", "SMS_AUTH": "Bearer hd-Env-6d3a"}
URL_PASSWORD, URL_KEY, HEADER_TOKEN, FILE_PASSWORD = "pw-Url-77d2", "key-Url-3c8e", "hd-Bearer-0a4f", "fl-Smtp-2b1d"


@pytest.mark.crmkit_plugins("campaigns")
def test_no_secret_is_stored_printed_audited_or_logged(crm, monkeypatch, caplog, tmp_path):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    secret_file = tmp_path / "smtp_password"
    secret_file.write_text(FILE_PASSWORD + "\n")
    monkeypatch.setattr("crmkit.web.server.Server.run", lambda self: None)  # `serve` starts, prints, returns
    runner = CliRunner()
    webhook_token = crm.campaigns.webhook_token()
    forged = "1.1.AAAAAAAAAAAAAAAAAAAAAA"
    outputs: list[str] = []

    def run(*args: str, refused_field: str | None = None) -> str:
        with crm.acting_as("lan.nguyen"):
            result = runner.invoke(cli, list(args), obj=CLIContext(crm=crm), catch_exceptions=False)
        outputs.extend([result.stdout, result.stderr])
        if refused_field is None:
            assert result.exit_code == 0, result.output
        else:  # one line naming the field and how to give the secret instead
            assert result.exit_code == 1 and f"{refused_field}:" in result.stderr and "env:NAME" in result.stderr
        return result.stdout

    with caplog.at_level(logging.DEBUG):
        sms = ("campaigns", "channel", "set", "sms", "webhook")
        run(*sms, f"url=https://shop:{URL_PASSWORD}@sms.example.vn/send", refused_field="sms.url")
        run(*sms, f"url=https://sms.example.vn/send?api_key={URL_KEY}", refused_field="sms.url")
        run(
            *sms,
            "url=https://sms.example.vn/send",
            f'headers={{"Authorization": "Bearer {HEADER_TOKEN}"}}',
            refused_field="sms.headers.Authorization",
        )
        run(
            "campaigns",
            "channel",
            "set",
            "email",
            "smtp",
            "host=smtp.saomai.example.vn",
            "sender=chao@saomai.example.vn",
            f"password={FILE_PASSWORD}",
            refused_field="email.password",
        )
        run(
            "campaigns",
            "config",
            "base_url",
            f"https://track:{URL_PASSWORD}@t.saomai.example.vn/campaigns/t",
            refused_field="campaigns.base_url",
        )
        run(
            "campaigns",
            "channel",
            "set",
            "email",
            "smtp",
            "host=smtp.saomai.example.vn",
            "port=587",
            "sender=Sao Mai <chao@saomai.example.vn>",
            "username=chao",
            f"password=file:{secret_file}",
            "starttls=true",
        )
        run(
            *sms,
            "url=https://sms.example.vn/send?sender=SAOMAI",
            'headers={"Authorization": "env:SMS_AUTH", "X-Shop": "saomai"}',
        )
        run("campaigns", "channel", "set", "chat", "webhook", "url=https://chat.example.vn/send", "token_env=SMS_TOKEN")
        run("campaigns", "config")
        shown = run("--format", "json", "campaigns", "channels")
        run("campaigns", "keys", "rotate", "--grace-days", "30")
        run("campaigns", "keys", "list")
        run("--format", "json", "audit")
        run("serve", "--bind", "127.0.0.1:8099")
        app = create_app(crm)
        assert call(app, "GET", "/campaigns/t/health")[0] == 200
        assert call(app, "GET", f"/campaigns/t/u/{forged}")[0] == 400  # a forged unsubscribe token
        assert call(app, "GET", f"/campaigns/t/o/{forged}.gif")[0] == 200
        assert call(app, "GET", f"/campaigns/t/c/{forged}?u=https%3A%2F%2Fsaomai.example.vn%2F")[0] == 400
        assert call(app, "POST", EVENTS, b"[]", {"Authorization": f"Bearer {webhook_token}"})[0] == 200  # grace
        # gunicorn's access log (crmkit serve) logs its format with a dict of atoms: the request line and Referer
        logging.getLogger("gunicorn.access").info(
            '%(h)s "%(r)s" %(s)s "%(f)s"',
            {
                "h": "127.0.0.1",
                "r": f"POST /campaigns/t/u/{forged} HTTP/1.1",
                "s": "400",
                "f": f"https://t.saomai.example.vn/campaigns/t/u/{forged}",
            },
        )
    assert '"password": "file:' in shown and '"Authorization": "env:SMS_AUTH"' in shown  # references stay readable
    assert '"token_env": "SMS_TOKEN"' in shown
    everything = "\n".join(outputs + [record.getMessage() for record in caplog.records])
    assert "GET /campaigns/t/u/<token> 400" in everything  # the request log is there, without the token
    assert (
        '"POST /campaigns/t/u/<token> HTTP/1.1" 400 "https://t.saomai.example.vn/campaigns/t/u/<token>"' in everything
    )
    with crm.engine.connect() as conn:  # nor is any stored: settings, audit log, signing keys
        stored = "\n".join(
            str(row)
            for table in (core.settings, core.audit_log, m.signing_keys)
            for row in conn.execute(sa.select(table)).all()
        )
    new_token = crm.campaigns.webhook_token()
    assert new_token != webhook_token
    for secret in (
        *SECRETS.values(),
        URL_PASSWORD,
        URL_KEY,
        HEADER_TOKEN,
        FILE_PASSWORD,
        webhook_token,
        new_token,
        forged,
    ):
        assert secret not in everything, secret
        assert secret not in stored, secret


@pytest.mark.crmkit_plugins("campaigns")
def test_a_referenced_secret_is_read_when_a_message_is_sent(crm, monkeypatch):
    with kit.Gateway() as gateway:
        crm.campaigns.set_channel("sms", "webhook", url=gateway.url, headers={"Authorization": "env:SMS_AUTH"})
        crm.campaigns.configure("quiet_hours", "")
        crm.customers.add(name="Trần Thị Bích", phone="0912345678", consents={"sms": True})
        crm.campaigns.run(crm.campaigns.create("Tết", channel="sms", body="Chúc mừng năm mới").id, now=kit.NOON)
        missing = crm.campaigns.dispatch(now=kit.NOON)  # not set yet: the channel waits, the reference is named
        assert missing.sent == 0 and any("SMS_AUTH" in error for error in missing.errors), missing
        monkeypatch.setenv("SMS_AUTH", SECRETS["SMS_AUTH"])  # set (or rotated) outside the CRM: used at once
        assert crm.campaigns.dispatch(now=kit.NOON + timedelta(hours=1)).sent == 1
    assert gateway.authorizations == [SECRETS["SMS_AUTH"]]
