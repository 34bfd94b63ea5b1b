"""Customer satisfaction (issue 17 item 5): after a case is resolved, a CSAT survey — a score from 1 to 5 and a
comment — is due (``crm.service.csat``).

Resolving a case gives it a one-time answer link, ``/service/csat/<case id>.<secret>`` (only the secret's SHA-256 is
stored), and calls ``crmkit_service_csat_requested`` and emits ``case.csat_requested`` with it: a plugin or a webhook
receiver sends it on a channel the customer consented to (crmkit-campaigns does, when installed). A sender that
could not send it returns the reason (``no_consent``, ``frequency_cap``…), recorded on the case's history as a
``csat_not_sent`` audit entry; with no taker the survey simply stays pending. The answer
comes back through that link (``POST /service/csat/<token>``, no sign-in: the token is the authority), or is
recorded by staff (``crmkit service csat record CASE SCORE --comment …``). It is stored on the case and logged as a
core interaction carrying the score as its ``rating``; a score below the ``csat_reopen_below`` setting reopens the
case. One transaction each.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crmkit import Conflict, NotFound, ValidationError
from crmkit.plugin_api import control_character_errors, utcnow
from crmkit_service import config, hookspecs
from crmkit_service.models import case_columns, cases

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from crmkit import CRM

#: Where an answer link points (the API route answering a survey).
LINK = "/service/csat/{token}"
MAX_COMMENT = 2000


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class Csat:
    """Satisfaction surveys of resolved cases (``crm.service.csat``)."""

    def __init__(self, crm: CRM, service: Any) -> None:
        self._crm = crm
        self._service = service

    def request(self, session: Session, case: Any) -> str:
        """Make a resolved case's survey due (a new one-time link replaces an earlier one) and offer it to the
        ``crmkit_service_csat_requested`` hook and the ``case.csat_requested`` event; returns the link."""
        secret = secrets.token_urlsafe(16)
        token = f"{case.id}.{secret}"
        conn = session.connection()
        conn.execute(
            cases.update()
            .where(cases.c.id == case.id)
            .values(csat_requested_at=utcnow(), csat_token_hash=_digest(secret))
        )
        link = LINK.format(token=token)
        answers = self._crm.hooks.call(hookspecs.crmkit_service_csat_requested, case=case, link=link, session=session)
        if True not in answers and (reasons := [a for a in answers if isinstance(a, str)]):
            # a sender tried and could not (no consent, capped, no address): the case's history says why
            self._crm.audit.record(
                session, "csat_not_sent", "case", case.id, customer_id=case.customer_id, changes={"reasons": reasons}
            )
        self._crm.events.emit(
            session, "case.csat_requested", lambda: {"case_id": case.id, "link": link}, customer_id=case.customer_id
        )
        return link

    def record(self, case_id: int, score: int, comment: str | None = None) -> Any:
        """Record the customer's answer given to staff (by phone, at the counter); needs ``service.write`` on the
        case. Returns the case as it is now."""
        self._crm.access.require("service.write")
        with self._crm.transaction() as session:
            case = self._service._one(session.connection(), case_id, "service.write", lock=True)
            return self._store(session, case, score, comment)

    def answer(self, token: str, score: int, comment: str | None = None) -> Any:
        """The customer's answer through their link: ``NotFound`` for a token this CRM did not issue (or one
        replaced by a later survey), ``Conflict`` when the survey was already answered."""
        case_part, _, secret = (token or "").partition(".")
        if not case_part.isdigit() or not secret or len(case_part) > 18:
            raise NotFound("survey", token[:40] if token else "")
        with self._crm.transaction() as session:
            conn = session.connection()
            row = conn.execute(
                sa.select(cases.c.csat_token_hash).where(cases.c.id == int(case_part)).with_for_update(of=cases)
            ).first()
            if row is None or not row[0] or not hmac.compare_digest(row[0], _digest(secret)):
                raise NotFound("survey", case_part)
            return self._store(session, self._service._read(conn, int(case_part)), score, comment)

    def pending(self, *, limit: int = 50) -> list[Any]:
        """Resolved or closed cases in scope whose survey is waiting for an answer, oldest request first."""
        self._crm.access.require("service.read")
        c = cases.c
        with self._crm.reading() as conn:
            rows = conn.execute(
                sa.select(*case_columns)
                .where(
                    c.csat_requested_at.is_not(None),
                    c.csat_answered_at.is_(None),
                    self._crm.access.customers(c.customer_id, "service.read"),
                )
                .order_by(c.csat_requested_at, c.id)
                .limit(limit)
            ).mappings()
            found: list[Any] = self._service._with_watchers(conn, list(rows))
            return found

    def _store(self, session: Session, case: Any, score: Any, comment: str | None) -> Any:
        if not isinstance(score, int) or isinstance(score, bool) or not 1 <= score <= 5:
            raise ValidationError("must be a whole number from 1 to 5", field="score")
        text = (comment or "").strip() or None
        if errors := control_character_errors({"comment": text}, frozenset({"comment"})):
            raise ValidationError(errors)
        if text and len(text) > MAX_COMMENT:
            raise ValidationError(f"longer than {MAX_COMMENT} characters", field="comment")
        if case.csat_requested_at is None:
            raise Conflict(f"case {case.id} has no satisfaction survey: it is asked when the case is resolved")
        if case.csat_answered_at is not None and case.csat_answered_at >= case.csat_requested_at:
            raise Conflict(f"case {case.id}'s survey was already answered")
        conn = session.connection()
        now = utcnow()
        interaction = self._crm.interactions.log(
            case.customer_id,
            case.channel,
            direction="inbound",
            occurred_at=now,
            subject=f"[#{case.id}] {case.subject}"[:300],
            summary=text,
            outcome="case_csat",
            rating=score,
        )
        conn.execute(
            cases.update()
            .where(cases.c.id == case.id)
            .values(csat_score=score, csat_comment=text, csat_answered_at=now, csat_token_hash=None)
        )
        self._crm.audit.record(
            session,
            "csat",
            "case",
            case.id,
            customer_id=case.customer_id,
            changes={"score": score, "comment": text, "interaction_id": interaction.id},
        )
        self._crm.events.emit(
            session,
            "case.csat_answered",
            lambda: {"case_id": case.id, "score": score, "comment": text},
            customer_id=case.customer_id,
        )
        threshold = config.setting(self._crm, "csat_reopen_below")
        current = self._service._read(conn, case.id)
        if threshold and score < threshold and current.status in ("resolved", "closed"):
            self._service._move(session, current, "reopened", now)
            current = self._service._read(conn, case.id)
        return current
