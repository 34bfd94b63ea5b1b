"""Canned replies (``crm.service.canned``): stored answers with placeholders, in Vietnamese and English variants; a
reply uses the variant of the customer's language (:func:`crmkit_service.routing.customer_language`).

Placeholders: ``{customer_name}`` (the full name, family name first for a Vietnamese customer — Nguyễn Văn An —
given name first otherwise, built by the core's customer schema from the name's parts when they are known),
``{given_name}`` (what an agent calls them: An), ``{case_number}``, ``{order_number}`` (the order the case
concerns), ``{agent_name}`` (the replying user's display name). ``{{`` and ``}}`` write braces.
"""

from __future__ import annotations

import builtins
import re
import string
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa

from crmkit import NotFound, ValidationError
from crmkit.plugin_api import control_character_errors, upsert
from crmkit_service.models import canned_replies
from crmkit_service.routing import LANGUAGES, customer_language

if TYPE_CHECKING:
    from crmkit import CRM, Customer
    from crmkit_service.service import Case, Message, ServiceService

ADMIN, READ = "service.admin", "service.read"
PLACEHOLDERS = ("customer_name", "given_name", "case_number", "order_number", "agent_name")
KEY = re.compile(r"[a-z0-9][a-z0-9_.-]{0,99}")
MAX_BODY = 20_000


@attrs.frozen
class CannedReply:
    """One language's variant of a canned reply."""

    key: str
    language: str
    title: str
    body: str
    updated_by: str
    updated_at: datetime


class CannedReplies:
    """``crm.service.canned``: the stored replies, and replying to a case with one."""

    def __init__(self, crm: CRM, service: ServiceService) -> None:
        self._crm = crm
        self._service = service

    def add(self, key: str, body: str, *, language: str = "vi", title: str | None = None) -> CannedReply:
        """Store (or replace) the ``language`` variant of reply ``key``; needs ``service.admin``. A key other than
        lower-case letters, digits, ``-``, ``_`` and ``.``, an unknown placeholder or language is refused by field."""
        self._crm.access.require(ADMIN)
        key = (key or "").strip()
        text = (body or "").strip()
        name = (title or "").strip() or key
        if not KEY.fullmatch(key):
            raise ValidationError("use 1–100 lower-case letters, digits, '-', '_' or '.'", field="key")
        if language not in LANGUAGES:
            raise ValidationError(f"must be one of {', '.join(LANGUAGES)}", field="language")
        if not text:
            raise ValidationError("must not be empty", field="body")
        if errors := control_character_errors({"body": text, "title": name}, frozenset({"body"})):
            raise ValidationError(errors)
        if len(text) > MAX_BODY:
            raise ValidationError(f"longer than {MAX_BODY} characters", field="body")
        if len(name) > 200:
            raise ValidationError("longer than 200 characters", field="title")
        _check_placeholders(text)
        row: dict[str, Any] = {
            "title": name,
            "body": text,
            "updated_by": self._crm.actor,
            "updated_at": self._crm.now(),
        }
        with self._crm.transaction() as session:
            upsert(
                session.connection(), canned_replies, [{"key": key, "language": language, **row}], ["key", "language"]
            )
            self._crm.audit.record(session, "set", "canned_reply", f"{key} {language}", changes=row)
        return CannedReply(key=key, language=language, **row)

    def list(self) -> list[CannedReply]:
        """Every variant, by key then language; needs ``service.read``."""
        self._crm.access.require(READ)
        with self._crm.reading() as conn:
            rows = conn.execute(
                sa.select(canned_replies).order_by(canned_replies.c.key, canned_replies.c.language)
            ).mappings()
            return [CannedReply(**row) for row in rows]

    def show(self, key: str) -> builtins.list[CannedReply]:
        """The variants of reply ``key`` (``NotFound`` when there is none)."""
        found = [reply for reply in self.list() if reply.key == key]
        if not found:
            raise NotFound("canned reply", key)
        return found

    def render(self, case_id: int, key: str) -> str:
        """The text reply ``key`` gives on case ``case_id``: the customer's language's variant (else the other),
        its placeholders filled; needs ``service.read`` on the case."""
        with self._crm.reading() as conn:
            case = self._service._one(conn, case_id, READ)
            return self._render(conn, case, key)

    def reply(self, case_id: int, key: str) -> Message:
        """Send reply ``key`` to the customer on case ``case_id`` (an outbound reply, as ``crm.service.reply``)."""
        with self._crm.transaction() as session:
            conn = session.connection()
            case = self._service._one(conn, case_id, "service.write", lock=True)
            return self._service.reply(case.id, self._render(conn, case, key))

    def _render(self, conn: sa.Connection, case: Case, key: str) -> str:
        variants = {
            row.language: row.body for row in conn.execute(sa.select(canned_replies).where(canned_replies.c.key == key))
        }
        if not variants:
            raise ValidationError(f"no canned reply {key!r}", field="canned")
        language = customer_language(self._crm, conn, case.customer_id)
        body = variants.get(language) or variants.get("vi") or next(iter(variants.values()))
        customer = self._crm.customers.get(case.contact_id or case.customer_id)
        values = {
            "customer_name": self._full_name(customer, language),
            "given_name": _given_name(customer, language),
            "case_number": str(case.id),
            "order_number": str(case.order_id) if case.order_id is not None else None,
            "agent_name": self._agent_name(),
        }
        wanted = {name for _, name, _, _ in string.Formatter().parse(body) if name}
        if "order_number" in wanted and values["order_number"] is None:
            raise ValidationError(
                f"case {case.id} names no order, and reply {key!r} uses {{order_number}}", field="canned"
            )
        return str(body.format_map(values))

    def _full_name(self, customer: Customer, language: str) -> str:
        """The name in the customer's order: family first in Vietnamese (the core's schema builds it from its
        parts), given name first otherwise; the stored name when its parts are unknown."""
        if customer.kind == "person" and customer.given_name and customer.family_name:
            schema = self._crm.customers.schema("VN" if language == "vi" else "US")
            return schema.compose_name(customer.given_name, customer.family_name)
        return customer.name

    def _agent_name(self) -> str:
        try:
            return self._crm.users.get(self._crm.actor).display_name
        except NotFound:  # the system, or a name set with crm.acting_as
            return self._crm.actor


def _given_name(customer: Customer, language: str) -> str:
    """What an agent calls the customer: the given name, else the name's last word in Vietnamese (Nguyễn Văn
    **An**), its first elsewhere (**John** Smith); an organization's full name."""
    if customer.kind != "person":
        return customer.name
    if customer.given_name:
        return customer.given_name
    words = customer.name.split()
    return words[-1] if language == "vi" else words[0]


def _check_placeholders(body: str) -> None:
    try:
        names = [name for _, name, spec, conversion in string.Formatter().parse(body) if name is not None]
    except ValueError as exc:  # a lone brace
        raise ValidationError(f"{exc}: write {{{{ and }}}} for braces", field="body") from None
    unknown = sorted({name for name in names if name not in PLACEHOLDERS})
    if unknown:
        raise ValidationError(
            f"unknown placeholder {{{unknown[0]}}}: use {', '.join('{' + p + '}' for p in PLACEHOLDERS)}", field="body"
        )
