"""Sender headers with Vietnamese display names, checked on what a real SMTP server (aiosmtpd) received."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.utils import parseaddr

import campaigns_testkit as kit
import pytest
from aiosmtpd.controller import Controller

from crmkit.errors import ValidationError
from crmkit_campaigns.channels import address_header

pytestmark = pytest.mark.crmkit_plugins("campaigns")

SENDER = ("Cửa hàng Sao Mai", "chao@saomai.example.vn")
REPLY_TO = ("Chị Hương – Chăm sóc khách hàng, chi nhánh Hoàn Kiếm", "huong@saomai.example.vn")


class Inbox:
    """An aiosmtpd handler keeping the envelopes it accepts."""

    def __init__(self) -> None:
        self.envelopes: list = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        self.envelopes.append(envelope)
        return "250 OK"


@pytest.fixture
def inbox():
    handler = Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=kit.free_port())
    controller.start()
    try:
        yield controller, handler
    finally:
        controller.stop()


def decoded(raw_header: str) -> tuple[str, str]:
    """(display name, address) as a classic reader sees a header: parseaddr, then RFC 2047 decoding."""
    name, address = parseaddr(raw_header)
    return str(make_header(decode_header(name))), address


def test_vietnamese_sender_and_reply_to_names_reach_the_server_intact(crm, inbox):
    controller, handler = inbox
    crm.campaigns.set_channel(
        "email",
        "smtp",
        host="127.0.0.1",
        port=controller.port,
        timeout=5,
        sender=f"{SENDER[0]} <{SENDER[1]}>",
        reply_to=f'"{REPLY_TO[0]}" <{REPLY_TO[1]}>',
    )
    crm.campaigns.configure("quiet_hours", "")
    crm.campaigns.configure("frequency_cap", None)
    kit.people(crm, 2, prefix="Lan")
    campaign = crm.campaigns.create("Tết", channel="email", subject="Chúc mừng năm mới", body="Chào {{ first_name }}")
    crm.campaigns.run(campaign.id, now=kit.NOON)
    report = crm.campaigns.dispatch(now=kit.NOON)
    assert report.sent == 2 and len(handler.envelopes) == 2
    for envelope in handler.envelopes:
        assert envelope.mail_from == SENDER[1]
        raw = envelope.original_content
        assert raw.isascii()  # no SMTPUTF8: every header is 7-bit
        modern = message_from_bytes(raw, policy=policy.default)
        for header, (name, address) in (("From", SENDER), ("Reply-To", REPLY_TO)):
            (parsed,) = modern[header].addresses
            assert (parsed.display_name, parsed.addr_spec) == (name, address)
            classic = message_from_bytes(raw)
            assert decoded(classic[header]) == (name, address)
        assert str(modern["Message-ID"]).endswith("@saomai.example.vn>")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Cửa hàng Sao Mai <chao@saomai.example.vn>", ("Cửa hàng Sao Mai", "chao@saomai.example.vn")),
        ('"Sao Mai, Hà Nội" <chao@saomai.example.vn>', ("Sao Mai, Hà Nội", "chao@saomai.example.vn")),
        ("Sao Mai <chao@saomai.example.vn>", ("Sao Mai", "chao@saomai.example.vn")),
        ("chao@saomai.example.vn", ("", "chao@saomai.example.vn")),
        ("Sao Mai <chao@sàomai.vn>", ("Sao Mai", "chao@xn--somai-rqa.vn")),
    ],
)
def test_address_header_encodes_the_name_apart_from_the_address(value, expected):
    header = address_header(value)
    assert header.isascii()
    assert decoded(header) == expected


@pytest.mark.parametrize("option", ["sender", "reply_to"])
def test_a_sender_or_reply_to_without_a_usable_address_is_refused_naming_the_option(crm, option):
    options = {"sender": "Sao Mai <chao@saomai.example.vn>", option: "Sao Mai <chào@saomai.example.vn>"}
    with pytest.raises(ValidationError) as error:
        crm.campaigns.set_channel("email", "smtp", host="127.0.0.1", **options)
    assert f"email.{option}" in error.value.errors and "chào@saomai.example.vn" in str(error.value)
