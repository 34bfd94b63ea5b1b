"""Intake (``crm.service.intake``): web forms and inbound e-mail/chat messages from providers' webhooks become cases.

The sender is found by e-mail or phone through the core's customer search (created when unknown); a message
naming an open case — ``[#12]`` in its subject, or an ``In-Reply-To``/``References`` id the case or one of its
messages was stored with — is threaded onto it as the customer's reply; the same message again within
:data:`FOLD_MINUTES` is folded into what the first one did. Each message is one transaction, run for the
integration's token (``service.intake``) with the system's reach and audited as that token's user.

A malformed payload is refused with the field named and nothing written, but its raw text is kept in
``service_rejected_payloads`` for inspection (with the customer its sender matches, so export and erasure cover
it) until the ``service.purge-rejected`` job deletes it after :data:`KEEP_REJECTED_DAYS`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs
import marshmallow
import sqlalchemy as sa
from marshmallow import fields, validate

from crmkit import ValidationError
from crmkit.plugin_api import SYSTEM, CleanSchema, lock_keys, normalize_email, normalize_phone, upsert
from crmkit_service.models import cases, intake_fingerprints, messages, rejected_payloads

if TYPE_CHECKING:
    from crmkit import CRM
    from crmkit_service.service import ServiceService

INTAKE, ADMIN = "service.intake", "service.admin"
#: Minutes within which the same sender's same subject and text is a duplicate, folded into the first.
FOLD_MINUTES = 10
#: Days a rejected payload is kept for inspection before the purge job deletes it.
KEEP_REJECTED_DAYS = 30
#: How much of a rejected payload's raw text is kept.
MAX_RAW = 100_000
MAX_BODY = 20_000
#: A case reference in a subject: ``Re: [#12] Máy lạnh không lạnh``.
CASE_REF = re.compile(r"\[#(\d{1,18})\]")


@attrs.frozen
class Received:
    """What intake did with a message: ``opened`` a case, ``threaded`` it onto one, or ``folded`` a duplicate."""

    action: str
    case_id: int
    customer_id: int
    customer_created: bool
    reply_id: int | None  # the conversation entry a threaded message became


@attrs.frozen
class RejectedPayload:
    """A refused intake payload kept for inspection: where it came, the field and reason, its raw text."""

    id: int
    customer_id: int | None
    source: str
    field: str
    reason: str
    payload: str
    received_at: datetime


class _Sender(CleanSchema):
    """What both doors share: who sent it."""

    MULTILINE = frozenset({"message", "body"})

    @marshmallow.pre_load
    def _strip(self, data: Any, **kwargs: Any) -> Any:
        if not isinstance(data, Mapping):
            raise marshmallow.ValidationError({"_schema": ["must be a JSON object"]})
        return {key: value.strip() if isinstance(value, str) else value for key, value in data.items()}


class FormSchema(_Sender):
    """A web form's fields: who (an e-mail address or a phone number, a name), what, and an optional category."""

    name = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))
    email = fields.String(load_default=None, allow_none=True)
    phone = fields.String(load_default=None, allow_none=True)
    subject = fields.String(required=True, validate=validate.Length(1, 300))
    message = fields.String(required=True, validate=validate.Length(1, MAX_BODY))
    category = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=100))


class MessageSchema(_Sender):
    """An inbound e-mail or chat message as a provider's webhook posts it (JSON)."""

    channel = fields.String(load_default="email")
    from_email = fields.String(load_default=None, allow_none=True)
    from_phone = fields.String(load_default=None, allow_none=True)
    from_name = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))
    subject = fields.String(load_default="", validate=validate.Length(max=300))
    body = fields.String(required=True, validate=validate.Length(1, MAX_BODY))
    message_id = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=500))
    in_reply_to = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=500))
    references = fields.List(fields.String(validate=validate.Length(max=500)), load_default=list)
    category = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=100))

    @marshmallow.pre_load
    def _split_references(self, data: Any, **kwargs: Any) -> Any:
        refs = data.get("references") if isinstance(data, Mapping) else None
        if isinstance(refs, str):  # the header as sent: ids separated by white space
            return {**data, "references": refs.split()}
        return data


class Intake:
    """``crm.service.intake``: the web-form and inbound-message doors, and the rejected payloads."""

    def __init__(self, crm: CRM, service: ServiceService) -> None:
        self._crm = crm
        self._service = service
        self._form, self._message = FormSchema(), MessageSchema()

    def web_form(self, payload: Any, *, raw: str | None = None) -> Received:
        """Take a web form (``name``, ``email`` and/or ``phone``, ``subject``, ``message``, ``category``) on the
        ``web`` channel; ``raw`` is the text as received (kept if refused). Needs ``service.intake``."""
        self._crm.access.require(INTAKE)
        try:
            values = self._loaded(self._form, payload)
            sender = _sender(values.get("email"), values.get("phone"), "email", "phone")
            return self._receive(
                "form",
                "web",
                sender,
                values.get("name"),
                values["subject"],
                values["message"],
                values.get("category"),
                None,
                [],
            )
        except ValidationError as exc:
            self._reject("form", payload, raw, exc, ("email", "phone"))
            raise

    def inbound_message(self, payload: Any, *, raw: str | None = None) -> Received:
        """Take an inbound message (``channel``, ``from_email``/``from_phone``, ``from_name``, ``subject``,
        ``body``, ``message_id``, ``in_reply_to``, ``references``); ``raw`` is the text as received (kept if
        refused). Needs ``service.intake``."""
        self._crm.access.require(INTAKE)
        try:
            values = self._loaded(self._message, payload)
            if values["channel"] not in self._crm.channels:
                raise ValidationError(f"must be one of {', '.join(self._crm.channels)}", field="channel")
            sender = _sender(values.get("from_email"), values.get("from_phone"), "from_email", "from_phone")
            refs = [ref for ref in (values.get("in_reply_to"), *values["references"]) if ref]
            return self._receive(
                "message",
                values["channel"],
                sender,
                values.get("from_name"),
                values["subject"] or _first_line(values["body"]),
                values["body"],
                values.get("category"),
                values.get("message_id"),
                refs,
            )
        except ValidationError as exc:
            self._reject("message", payload, raw, exc, ("from_email", "from_phone"))
            raise

    def rejected(self, *, limit: int = 50) -> list[RejectedPayload]:
        """The refused payloads kept for inspection, newest first; needs ``service.admin``."""
        self._crm.access.require(ADMIN)
        with self._crm.reading() as conn:
            rows = conn.execute(
                sa.select(rejected_payloads).order_by(rejected_payloads.c.id.desc()).limit(limit)
            ).mappings()
            return [RejectedPayload(**row) for row in rows]

    def purge_rejected(self, *, days: int = KEEP_REJECTED_DAYS) -> int:
        """Delete refused payloads received more than ``days`` ago (the ``service.purge-rejected`` job); how many."""
        self._crm.access.require(ADMIN)
        if days < 0:
            raise ValidationError("must be zero or more", field="days")
        with self._crm.transaction() as session:
            cutoff = self._crm.now() - timedelta(days=days)
            gone = (
                session.connection()
                .execute(rejected_payloads.delete().where(rejected_payloads.c.received_at < cutoff))
                .rowcount
            )
            if gone:
                self._crm.audit.record(session, "purge", "service_rejected_payloads", days, changes={"deleted": gone})
        return gone

    # -- internals ---------------------------------------------------------------------------------------

    def _loaded(self, schema: marshmallow.Schema, payload: Any) -> dict[str, Any]:
        try:
            loaded: dict[str, Any] = schema.load(payload)
        except marshmallow.ValidationError as exc:
            errors = exc.messages_dict if isinstance(exc.messages, dict) else {"_schema": exc.messages}
            raise ValidationError({("payload" if k == "_schema" else k): v for k, v in errors.items()}) from None
        return loaded

    def _receive(
        self,
        source: str,
        channel: str,
        sender: tuple[str | None, str | None],
        name: str | None,
        subject: str,
        body: str,
        category: str | None,
        external_id: str | None,
        refs: list[str],
    ) -> Received:
        """One message in one transaction, run with the system's reach and audited as the caller."""
        caller = self._crm.actor
        fingerprint = _fingerprint(source, sender, subject, body)
        with self._crm.access.acting(SYSTEM), self._crm.acting_as(caller):
            return self._receive_once(fingerprint, channel, sender, name, subject, body, category, external_id, refs)

    def _receive_once(
        self,
        fingerprint: str,
        channel: str,
        sender: tuple[str | None, str | None],
        name: str | None,
        subject: str,
        body: str,
        category: str | None,
        external_id: str | None,
        refs: list[str],
    ) -> Received:
        service, f = self._service, intake_fingerprints.c
        with self._crm.transaction() as session:
            conn = session.connection()
            # A twin arriving at the same moment waits here until this one commits, then folds into it.
            lock_keys(conn, "service_intake", [int(fingerprint[:15], 16)])
            now = self._crm.now()
            seen = conn.execute(sa.select(intake_fingerprints).where(f.fingerprint == fingerprint)).first()
            if seen is not None and seen.seen_at > now - timedelta(minutes=FOLD_MINUTES):
                return Received("folded", seen.case_id, seen.customer_id, False, None)
            customer_id = self._customer(*sender)
            created = customer_id is None
            if customer_id is None:
                email, phone = sender
                customer_id = self._crm.customers.add(
                    name=name or (email.split("@")[0] if email else phone), email=email, phone=phone
                ).id
            case_id = self._threaded(conn, customer_id, subject, refs)
            reply_id = None
            if case_id is not None:
                message = service.reply(case_id, body, direction="inbound")
                reply_id = message.id
                if external_id:
                    conn.execute(messages.update().where(messages.c.id == message.id).values(external_id=external_id))
                action = "threaded"
            else:
                case_id = service.open(
                    customer_id, subject, description=body, channel=channel, category=category or None
                ).id
                if external_id:
                    conn.execute(cases.update().where(cases.c.id == case_id).values(external_id=external_id))
                action = "opened"
            claim = {"case_id": case_id, "customer_id": customer_id, "seen_at": now}
            upsert(conn, intake_fingerprints, [{"fingerprint": fingerprint, **claim}], ["fingerprint"])
            return Received(action, case_id, customer_id, created, reply_id)

    def _customer(self, email: str | None, phone: str | None) -> int | None:
        """The oldest active customer with this exact e-mail address (else phone), found by the core's search."""
        for query, attribute in ((email, "emails"), (phone, "phones")):
            if query is None:
                continue
            found = [c.id for c in self._crm.customers.find(query, limit=100).items if query in getattr(c, attribute)]
            if found:
                return min(found)
        return None

    def _threaded(self, conn: sa.Connection, customer_id: int, subject: str, refs: list[str]) -> int | None:
        """The customer's case this message answers — by a stored message id, else ``[#id]`` in the subject —
        following merges; None when it names none, another customer's, or a closed one."""
        candidates: list[int] = []
        if refs:
            candidates += conn.execute(
                sa.select(messages.c.case_id).where(messages.c.external_id.in_(refs)).order_by(messages.c.id.desc())
            ).scalars()
            candidates += conn.execute(sa.select(cases.c.id).where(cases.c.external_id.in_(refs))).scalars()
        candidates += [int(ref) for ref in CASE_REF.findall(subject)]
        for case_id in candidates:
            for _ in range(10):  # a merged duplicate points at the case kept
                row = conn.execute(
                    sa.select(cases.c.customer_id, cases.c.contact_id, cases.c.status, cases.c.merged_into_id).where(
                        cases.c.id == case_id
                    )
                ).first()
                if row is None or row.merged_into_id is None:
                    break
                case_id = row.merged_into_id
            if row is not None and customer_id in (row.customer_id, row.contact_id) and row.status != "closed":
                return case_id
        return None

    def _reject(
        self, source: str, payload: Any, raw: str | None, error: ValidationError, sender_fields: tuple[str, str]
    ) -> None:
        """Keep the refused payload (after any transaction it was refused in ends, so the refusal outlives it)."""
        field = next(iter(error.errors), "payload")
        reason = "; ".join(f"{name}: {', '.join(map(str, words))}" for name, words in error.errors.items())
        text = raw if raw is not None else _as_text(payload)
        hint = payload if isinstance(payload, Mapping) else {}
        crm = self._crm

        def keep() -> None:
            with crm.access.acting(SYSTEM):
                customer_id = self._sender_customer(hint, sender_fields)
                with crm.transaction() as session:
                    session.connection().execute(
                        rejected_payloads.insert().values(
                            customer_id=customer_id,
                            source=source,
                            field=field[:100],
                            reason=reason,
                            payload=text[:MAX_RAW],
                            received_at=crm.now(),
                        )
                    )

        crm.after_transaction(keep)

    def _sender_customer(self, payload: Mapping[str, Any], sender_fields: tuple[str, str]) -> int | None:
        """The customer a refused payload's sender matches, if its address or number can be read at all."""
        email, phone = (payload.get(name) for name in sender_fields)
        try:
            return self._customer(*_sender(email, phone, *sender_fields))
        except ValidationError:
            return None


def _sender(email: Any, phone: Any, email_field: str, phone_field: str) -> tuple[str | None, str | None]:
    """The sender's normalized e-mail address and E.164 phone number (at least one); refused naming the field."""
    if not email and not phone:
        raise ValidationError("give the sender's e-mail address or phone number", field=email_field)
    found: list[str | None] = []
    for value, name, normalize in ((email, email_field, normalize_email), (phone, phone_field, normalize_phone)):
        if not value:
            found.append(None)
            continue
        if not isinstance(value, str):
            raise ValidationError("must be text", field=name)
        try:
            found.append(normalize(value))
        except ValueError as exc:
            raise ValidationError(str(exc), field=name) from None
    return found[0], found[1]


def _fingerprint(source: str, sender: tuple[str | None, str | None], subject: str, body: str) -> str:
    """Who sent what, white space and case folded: the same message sent twice has the same fingerprint."""
    words = [source, sender[0] or "", sender[1] or "", " ".join(subject.split()), " ".join(body.split())]
    return hashlib.sha256("\n".join(words).casefold().encode()).hexdigest()


def _first_line(body: str) -> str:
    """A chat message's subject: its first line, shortened."""
    line = body.strip().splitlines()[0] if body.strip() else ""
    return line[:80] + ("…" if len(line) > 80 else "")


def _as_text(payload: Any) -> str:
    if isinstance(payload, bytes):
        return payload.decode("utf-8", "replace")
    if isinstance(payload, str):
        return payload
    try:
        return json.dumps(payload, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return repr(payload)
