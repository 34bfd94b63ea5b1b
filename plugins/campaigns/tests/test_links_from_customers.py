"""Links are only what the template's author wrote: a URL, ``javascript:`` or HTML inside a customer's values is
delivered as text on every channel — never a signed click link, never a clickable ``<a>`` — and the tracking
route refuses to redirect anywhere a customer chose."""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from urllib.parse import parse_qs, urlsplit

import campaigns_testkit as kit
import pytest
from werkzeug.test import Client

from crmkit.web import create_app

#: Every text field of a customer, filled by someone hostile: URLs, a ``javascript:`` link, HTML.
HOSTILE = [
    {
        "name": "An https://evil.example/login",
        "given_name": "@evil.example/steal",
        "family_name": '<a href="https://evil.example/a">bấm</a>',
        "city": "<script>alert(1)</script>",
        "province": "http://evil.example/p?x=<b>",
    },
    {
        "name": "javascript:alert(document.cookie)",
        "given_name": "javascript:alert(1)//https://evil.example/j",
        "family_name": "<img src=x onerror=alert(1)>",
        "city": "Hà Nội https://evil.example/hn.",
        "province": "<b>https://evil.example/bold</b>",
    },
]
#: The template's own links: one whole, one whose path a customer's value completes, one whose host a value would.
BODY = (
    "Chào {{ first_name }} ({{ name }} / {{ family_name }} / {{ city }} / {{ province }}). "
    "Ưu đãi Tết: https://saomai.example.vn/tet?ma=TET. Cửa hàng gần bạn: https://saomai.example.vn/ch/{{ city }} "
    "và https://saomai.example.vn{{ given_name }}"
)
SHOP = "saomai.example.vn"
CLICK = re.compile(r"http://127\.0\.0\.1:8000/campaigns/t/c/[^\s\"<>]+")


def _targets(text: str) -> list[str]:
    """The URL each signed click link in ``text`` redirects to."""
    return [parse_qs(urlsplit(link.replace("&amp;", "&")).query)["u"][0] for link in _clicks(text)]


def _clicks(text: str) -> list[str]:
    """The signed click links in ``text`` (without the sentence's closing punctuation)."""
    return [link.rstrip(".,;:!?)") for link in CLICK.findall(text)]


@pytest.fixture
def delivered(crm_factory, tmp_path):
    """The same campaign sent to hostile customers by e-mail (file outbox), SMS (an HTTP gateway) and Zalo (a
    vendor plugin's adapter); yields the CRM and, per channel, the texts (and HTML parts) delivered."""
    zalo = kit.MemoryAdapter()
    crm = crm_factory(plugins=["campaigns", kit.zalo_plugin(zalo)])
    kit.outbox(crm, tmp_path / "outbox")
    for n, fields in enumerate(HOSTILE):
        crm.customers.add(
            email=f"khach{n}@example.vn",
            phone=f"091234567{n}",
            consents={"email": True, "sms": True, "zalo": True},
            **fields,
        )
    with kit.Gateway() as gateway:
        crm.campaigns.set_channel("sms", "webhook", url=gateway.url)
        for channel in ("email", "sms", "zalo"):
            campaign = crm.campaigns.create(
                f"Tết {channel}",
                channel=channel,
                body=BODY,
                subject="Chúc mừng {{ name }}" if channel == "email" else None,
            )
            crm.campaigns.run(campaign.id, now=kit.NOON)
        report = crm.campaigns.dispatch(now=kit.NOON)
    assert report.sent == 3 * len(HOSTILE), report
    emails = [
        message_from_bytes(path.read_bytes(), policy=policy.default) for path in (tmp_path / "outbox").glob("*.eml")
    ]
    return crm, {
        "email": [(e.get_body(("plain",)).get_content(), e.get_body(("html",)).get_content()) for e in emails],
        "sms": [(body["text"], None) for body in gateway.delivered.values()],
        "zalo": [(message.text, message.html) for message in zalo.sent],
    }


def test_no_channel_delivers_a_link_a_customer_wrote(delivered):
    crm, outputs = delivered
    for channel, messages in outputs.items():
        assert len(messages) == len(HOSTILE), channel
        for text, html in messages:
            targets = _targets(text)
            # the author's links are tracked (the second one with the customer's city in its path, on the shop's host)
            assert "https://saomai.example.vn/tet?ma=TET" in targets, (channel, text)
            assert all(urlsplit(target).hostname == SHOP for target in targets), (channel, targets)
            assert not any("evil" in target.split("/ch/")[0] for target in targets), (channel, targets)
            # a URL a customer wrote stays in the text as they wrote it, not rewritten into a tracked one
            assert "https://evil.example/" in text and "https://saomai.example.vn@evil.example/steal" not in targets
            if html is None:
                continue
            hrefs = re.findall(r'<a href="([^"]*)"', html)
            assert hrefs and all(href.startswith("http://127.0.0.1:8000/campaigns/t/") for href in hrefs), hrefs
            assert _targets(" ".join(hrefs)) == targets  # the HTML links are the text's tracked ones, nothing more
            tags = re.findall(r"<(/?[!A-Za-z]+)", html)
            assert set(tags) <= {"!doctype", "html", "/html", "body", "/body", "p", "/p", "br", "a", "/a", "img"}, tags
            assert tags.count("img") == 1  # the open pixel; the customers' tags are escaped text
            assert "&lt;script&gt;" in html or "&lt;img src=x onerror=alert(1)&gt;" in html


def test_the_tracking_route_redirects_only_to_the_authors_links(delivered):
    crm, outputs = delivered
    app = Client(create_app(crm))
    text = outputs["email"][0][0]
    clicks = _clicks(text)
    assert clicks
    for link in clicks:
        path = link.removeprefix("http://127.0.0.1:8000")
        answer = app.get(path)
        assert answer.status_code == 302 and urlsplit(answer.headers["Location"]).hostname == SHOP
        # the same signature with a customer's URL swapped in is refused
        forged = re.sub(r"\?u=[^&]+", "?u=https%3A%2F%2Fevil.example%2Flogin", path)
        assert app.get(forged).status_code == 400


def test_a_token_has_one_spelling_and_every_other_is_refused(crm_factory):
    crm = crm_factory(plugins=["campaigns"])
    signer = crm.campaigns.signer()
    token = signer.sign("unsubscribe", 14)
    key, message, mac = token.split(".")
    assert (key, message) == (str(signer.current), "e") and signer.verify("unsubscribe", token) == 14
    altered = [
        f"+0{key}.0x0E.{mac}",  # the example: a sign, leading zeros, 0x, upper case — all at once
        f"+{key}.{message}.{mac}",
        f"-{key}.{message}.{mac}",
        f"{key}.+{message}.{mac}",
        f"{key}.-{message}.{mac}",
        f"0{key}.{message}.{mac}",
        f"{key}.0{message}.{mac}",
        f"{key}.00{message}.{mac}",
        f"{key}.0x{message}.{mac}",
        f"{key}.0X{message}.{mac}",
        f"{key}.{message.upper()}.{mac}",
        f" {key}.{message}.{mac}",
        f"{key}.{message}.{mac} ",
        f"{key} .{message}.{mac}",
        f"{key}.{message}\t.{mac}",
        f"{key}.\u00a0{message}.{mac}",
        f"{key}.{message}.{mac}\n",
        f"{key}.0.{message}.{mac}",
        f"{key}.{message}.0.{mac}",
        f"{key}.0{key}.{message}.{mac}",  # dots inside numbers
        f"{key}_0.{message}.{mac}",
        f"{key}.0_{message}.{mac}",
        f"\u0661.{message}.{mac}",  # int() reads these too
        f"{key}.{message}.{mac}=",
        f"{key}.{message}.{mac[:-1]}",
        f"{key}.{message}.{mac}A",
    ]
    app = Client(create_app(crm))
    for bad in altered:
        with pytest.raises(ValueError, match="malformed token"):
            signer.verify("unsubscribe", bad)
        assert app.post(f"/campaigns/t/u/{bad}").status_code in (400, 404), repr(bad)
