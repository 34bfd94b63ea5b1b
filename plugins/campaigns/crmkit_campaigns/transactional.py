"""Transactional single messages (``crm.campaigns.send_message``): one message to one customer for a purpose —
the CSAT survey of a resolved case — checked and queued as a campaign run queues its messages.

The channel is the first of ``campaigns.transactional_channels`` (or the one asked for) with an adapter on which
the customer may be reached: the run's own checks (``runs.eligibility``: suppression list, consent, an address,
the frequency cap, all campaigns together) decide it, under the run's lock. The message goes into the outbox
(``campaign_messages``, with its template and values in ``content``) in the caller's transaction, due after the
quiet hours, and the dispatcher delivers, retries and tracks it like any other. A message that cannot go is kept
as ``excluded`` with the reason, which the caller gets back. Each purpose's messages belong to one holder
campaign (``transactional: <purpose>``, status ``transactional``); the same ``reference`` (e.g. one survey link)
is queued for a customer at most once.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa

from crmkit import privacy
from crmkit.errors import NotFound, ValidationError
from crmkit.plugin_api import core_tables as core
from crmkit_campaigns import models as m
from crmkit_campaigns import templates
from crmkit_campaigns.objects import PRESSURE_STATUSES
from crmkit_campaigns.rendering import BASE_VARIABLES
from crmkit_campaigns.runs import eligibility, lock_pressure

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from crmkit.crm import CRM
    from crmkit_campaigns.service import CampaignsService

PURPOSE = re.compile(r"^[a-z][a-z0-9_]{0,29}$")
HOLDER_STATUS = "transactional"

#: The CSAT survey in the CRM's language (``locale``): the customer's name as stored (family name first for a
#: Vietnamese name) and the answer link.
CSAT = {
    "vi": (
        "Bạn hài lòng với hỗ trợ của chúng tôi? (yêu cầu #{{ case_id }})",
        "Chào {{ name }},\n\nYêu cầu #{{ case_id }} „{{ case_subject }}“ của bạn đã được giải quyết. Bạn chấm điểm "
        "giúp chúng tôi từ 1 đến 5 tại đây: {{ survey_url }}\n\nCảm ơn bạn!",
    ),
    "en": (
        "How did we do? (request #{{ case_id }})",
        "Dear {{ name }},\n\nYour request #{{ case_id }} “{{ case_subject }}” has been resolved. Please rate our "
        "help from 1 to 5 here: {{ survey_url }}\n\nThank you!",
    ),
}


@attrs.frozen
class SendResult:
    """What ``send_message`` did: queued on ``channel`` (due at ``send_at``), or not, with the reason
    (``suppressed``, ``no_consent``, ``no_address``, ``frequency_cap``, ``customer_<status>``, ``no_channel``)."""

    sent: bool
    channel: str | None
    message_id: int | None
    reason: str | None = None
    send_at: datetime | None = None


def send(
    crm: CRM,
    service: CampaignsService,
    session: Session,
    customer_id: int,
    *,
    purpose: str,
    reference: str,
    subject: str | None,
    body: str,
    values: Mapping[str, str],
    channels: Sequence[str] | None = None,
) -> SendResult:
    """Check and queue one message in ``session``'s transaction (see the module)."""
    if not PURPOSE.match(purpose or ""):
        raise ValidationError("lower-case letters, digits and _ (at most 30), e.g. csat", field="purpose")
    if not reference or len(reference) > 500:
        raise ValidationError("required, at most 500 characters", field="reference")
    known = {**BASE_VARIABLES, **dict.fromkeys(values, "text")}
    if subject:
        templates.parse(subject, known, field="subject")
    templates.parse(body, known, field="body")
    settings = service.settings
    adapters = service._adapters()
    wanted = list(channels or settings.transactional_channels)
    usable = [channel for channel in wanted if channel in adapters]
    if not usable:
        return SendResult(False, None, None, "no_channel")
    conn = session.connection()
    lock_pressure(conn)
    now = crm.now()
    campaign_id = _holder(crm, conn, purpose, usable[0], now)
    period = hashlib.sha256(reference.encode()).hexdigest()[:10]
    msg = m.messages.c
    earlier = conn.execute(
        sa.select(msg.id, msg.channel, msg.status, msg.reason, msg.next_attempt_at).where(
            msg.campaign_id == campaign_id, msg.period == period, msg.recipient_id == customer_id
        )
    ).first()
    if earlier is not None:  # the same reference again (a retried call): what was done then
        done = earlier.status in PRESSURE_STATUSES
        return SendResult(done, earlier.channel, earlier.id, None if done else earlier.reason, earlier.next_attempt_at)
    chosen, first_reason = None, None
    key = privacy.hash_key(conn, create=False)
    c = core.customers.c
    for channel in usable:
        check = eligibility(channel, adapters[channel].address_kind, settings, now, key=key)
        row = conn.execute(sa.select(c.status, check).where(c.id == customer_id)).first()
        if row is None:
            raise NotFound("customer", customer_id)
        reason = f"customer_{row[0]}" if row[0] != "active" else row[1]
        if reason is None:
            chosen = channel
            break
        first_reason = first_reason or reason
    send_at = settings.next_send_time(now) if chosen else None
    run_id: int = conn.execute(
        m.runs.insert()
        .values(
            campaign_id=campaign_id,
            period=period,
            kind=HOLDER_STATUS,
            started_at=now,
            actor=crm.actor,
            audience=1,
            queued=1 if chosen else 0,
            holdout=0,
            excluded={} if chosen else {first_reason: 1},
        )
        .returning(m.runs.c.id)
    ).scalar_one()
    message_id: int = conn.execute(
        m.messages.insert()
        .values(
            campaign_id=campaign_id,
            run_id=run_id,
            customer_id=customer_id,
            recipient_id=customer_id,
            period=period,
            channel=chosen or usable[0],
            status="queued" if chosen else "excluded",
            reason=None if chosen else first_reason,
            queued_at=now,
            next_attempt_at=send_at,
            attempts=0,
            content={"purpose": purpose, "subject": subject, "body": body, "values": dict(values)},
        )
        .returning(msg.id)
    ).scalar_one()
    return SendResult(chosen is not None, chosen or usable[0], message_id, None if chosen else first_reason, send_at)


def _holder(crm: CRM, conn: sa.Connection, purpose: str, channel: str, now: datetime) -> int:
    """The id of the campaign holding ``purpose``'s messages, made the first time (under the run's lock)."""
    c = m.campaigns.c
    name = f"{HOLDER_STATUS}: {purpose}"
    found = conn.execute(sa.select(c.id).where(c.name == name, c.status == HOLDER_STATUS)).scalar()
    if found is not None:
        return int(found)
    return int(
        conn.execute(
            m.campaigns.insert()
            .values(
                name=name,
                objective=f"single {purpose} messages (crm.campaigns.send_message)",
                status=HOLDER_STATUS,
                channel=channel,
                currency=str(crm.settings.get("currency") or "VND").upper(),
                cost_fixed_minor=0,
                cost_per_message_minor=0,
                holdout_bp=0,
                attribution_days=7,
                days_before=0,
                created_by=crm.actor,
                created_at=now,
                updated_at=now,
            )
            .returning(c.id)
        ).scalar_one()
    )


def csat_requested(crm: CRM, case: Any, link: str, session: Session) -> bool | str:
    """Send a resolved case's CSAT survey (the ``crmkit_service_csat_requested`` hook): True when queued, else the reason
    it was not (the service records it on the case's history)."""
    settings = crm.campaigns.settings
    site = settings.base_url.removesuffix("/campaigns/t")
    language = "en" if str(crm.settings.get("locale") or "vi").lower().startswith("en") else "vi"
    subject, body = CSAT[language]
    result = send(
        crm,
        crm.campaigns,
        session,
        case.customer_id,
        purpose="csat",
        reference=link,
        subject=subject,
        body=body,
        values={
            "case_id": str(case.id),
            "case_subject": case.subject,
            "survey_url": site + link if link.startswith("/") else link,
        },
    )
    return True if result.sent else str(result.reason)
