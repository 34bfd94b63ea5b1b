"""Demo data for ``crmkit demo``: a saved segment, a Tết campaign (A/B with a 10 % holdout) delivered through
the file outbox, some opens and clicks, and an active birthday campaign. Deterministic for a seed.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import TYPE_CHECKING

from crmkit.errors import NotFound, ValidationError

if TYPE_CHECKING:
    from crmkit.crm import CRM

SEGMENT = "Khách hàng Hà Nội"
SEGMENT_EXPRESSION = 'province = "Hà Nội" and lifecycle_stage in ("customer", "prospect")'
TET = "Chúc Tết khách hàng Hà Nội"
BIRTHDAY = "Chúc mừng sinh nhật"
OUTBOX = "crmkit-outbox"
OWNER = "lan.nguyen"


def outbox_directory(crm: CRM) -> Path:
    """Where the demo's e-mails go: next to a SQLite database file, else in the working directory."""
    url = crm.engine.url
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return Path(url.database).resolve().parent / OUTBOX
    return Path(OUTBOX).resolve()


def populate(crm: CRM, customer_ids: list[int], seed: int) -> None:
    """A segment, a sent Tết campaign with tracked opens and clicks, and a birthday campaign."""
    if not customer_ids:
        return
    service = crm.campaigns
    if "email" not in service.settings.channels:
        service.set_channel(
            "email",
            "file",
            directory=str(outbox_directory(crm)),
            address_kind="email",
            sender="Cửa hàng Sao Mai <chao@saomai.example.vn>",
        )
    service.segments.create(SEGMENT, SEGMENT_EXPRESSION, description="Khách hàng và khách tiềm năng ở Hà Nội")
    campaign = service.create(
        TET,
        channel="email",
        segment=SEGMENT,
        objective="Doanh số mùa Tết",
        owner=_owner(crm, OWNER),
        subject="Chúc mừng năm mới, {{ first_name }}!",
        holdout_percent=10,
        attribution_days=14,
        cost_fixed_minor=2_000_000,
        cost_per_message_minor=300,
        budget_minor=5_000_000,
        body='Chào {{ first_name | default("bạn") }},\nCửa hàng Sao Mai chúc bạn năm mới an khang thịnh vượng!'
        "\nQuà Tết giảm 20%: https://saomai.example.vn/tet",
    )
    service.set_variant(
        campaign.id,
        "B",
        subject="🧧 Lì xì đầu năm cho {{ first_name }}",
        body='{{ first_name | default("Bạn") }} ơi, lì xì 100.000 ₫ cho đơn đầu năm tại '
        "https://saomai.example.vn/li-xi",
    )
    birthday = service.create(
        BIRTHDAY,
        channel="email",
        occasion="birthday",
        subject="Chúc mừng sinh nhật {{ first_name }}",
        body='Chúc {{ first_name | default("bạn") }} sinh nhật vui vẻ! Quà tặng: https://saomai.example.vn/sinh-nhat',
    )
    service.schedule(birthday.id)
    try:
        result = service.run(campaign.id)
    except ValidationError:
        return  # a tiny demo may have nobody in Hà Nội with consent: the campaign stays scheduled
    if result.send_at is not None:
        service.dispatch(now=max(crm.now(), result.send_at))
    rng = random.Random(seed)
    for message in service.messages(campaign.id, status="sent", limit=10_000):
        if rng.random() < 0.45:
            service.tracking.record(message["id"], "opened")
            if rng.random() < 0.3:
                service.tracking.record(message["id"], "clicked", detail={"url": "https://saomai.example.vn/tet"})


def _owner(crm: CRM, username: str) -> str | None:
    """The demo campaign's owner when the demo has that user (owners must be users), else none."""
    try:
        return username if crm.users.get(username).active else None
    except NotFound:
        return None


def overview(crm: CRM) -> dict[str, list[str]]:
    """What the demo's campaigns did, for the overview ``crmkit demo`` prints."""
    service = crm.campaigns
    lines = []
    for segment in service.segments.list():
        lines.append(f"segment {segment.name!r}: {service.segments.count(segment.id):,} customers")
    for report in service.compare():
        t = report.treated
        excluded = ", ".join(f"{k} {v}" for k, v in report.excluded.items()) or "none"
        lines.append(
            f"campaign {report.campaign.name!r} ({report.campaign.status}): {t.sent:,} sent, "
            f"{t.opened:,} opened, {t.clicked:,} clicked; holdout {report.holdout:,}; excluded: {excluded}"
        )
    for campaign in service.list():
        if campaign.occasion and campaign.status in ("scheduled", "running"):
            lines.append(f"occasion campaign {campaign.name!r} is active: `crmkit campaigns run-due` sends it daily")
    if "email" in service.settings.channels:
        lines.append(f"e-mails in {service.settings.channels['email'].get('directory')} (file outbox)")
    lines.append("try: crmkit campaigns report 1 --chart tet.png")
    return {"Campaigns": lines}
