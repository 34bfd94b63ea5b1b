"""``crm.service``: cases, their conversation, assignment and SLA clocks — the plugin's only place with rules.

The CLI (``crmkit service …``), the HTTP API (``/service/…``) and the console pages are thin callers of this
class. Every write is one transaction (joining the caller's when one is open), audited as the acting user; each
reply and note is also logged as a core interaction on the customer's timeline, in the same transaction.

Scopes follow the core's customers: ``service.read`` / ``service.write`` reach the cases of the customers the
user's scope (own / team / all) reaches — in the SQL, so a scoped list is still one indexed query. A case outside
the scope answers ``NotFound``; ``service.admin`` (SLA policies, working hours, days off, breach runs) is not scoped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

import attrs
import marshmallow
import sqlalchemy as sa
from marshmallow import fields, validate

from crmkit import Conflict, NotFound, Permission, ValidationError
from crmkit.plugin_api import CleanSchema, control_character_errors, customers, repoint, to_jsonable, utcnow
from crmkit.privacy import delete_rows, export_rows
from crmkit_service import config, csat, hookspecs, reports, sla
from crmkit_service.businesshours import DayHours, WorkingCalendar, check_week, intervals, is_public_holiday
from crmkit_service.canned import CannedReplies
from crmkit_service.case_links import Attachments, checked_links
from crmkit_service.case_merge import merge_cases
from crmkit_service.intake import Intake
from crmkit_service.models import CASE_DATA, case_columns, cases, days_off, hours, messages, policies
from crmkit_service.models import watchers as case_watchers
from crmkit_service.routing import Routing

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from crmkit import CRM

READ, WRITE, ADMIN = "service.read", "service.write", "service.admin"
INTAKE = "service.intake"
PERMISSIONS = [
    Permission(
        READ,
        "see cases of customers in scope and their conversation (also the customer-360 panel)",
        roles={"manager": "team", "sales": "own", "support": "all", "read-only": "all"},
    ),
    Permission(
        WRITE,
        "open cases, reply, write internal notes, assign, watch and change a case's status",
        roles={"manager": "team", "sales": "own", "support": "all"},
    ),
    Permission(ADMIN, "set SLA policies, working hours and days off, and run the SLA breach check", scoped=False),
    Permission(
        INTAKE, "send web forms and inbound messages to the intake endpoints (an integration's token)", scoped=False
    ),
]

PRIORITIES = ("low", "normal", "high", "urgent")
STATUSES = ("new", "open", "waiting_on_customer", "waiting_on_third_party", "resolved", "closed", "reopened")
#: Status → the statuses a case may move to from it (anything else is a ValidationError naming ``status``).
TRANSITIONS: dict[str, frozenset[str]] = {
    "new": frozenset({"open", "waiting_on_customer", "waiting_on_third_party", "resolved", "closed"}),
    "open": frozenset({"waiting_on_customer", "waiting_on_third_party", "resolved", "closed"}),
    "waiting_on_customer": frozenset({"open", "waiting_on_third_party", "resolved", "closed"}),
    "waiting_on_third_party": frozenset({"open", "waiting_on_customer", "resolved", "closed"}),
    "resolved": frozenset({"closed", "reopened"}),
    "closed": frozenset({"reopened"}),
    "reopened": frozenset({"open", "waiting_on_customer", "waiting_on_third_party", "resolved", "closed"}),
}
#: Statuses of a case still being worked on (its SLA clock runs unless paused).
ACTIVE = ("new", "open", "waiting_on_customer", "waiting_on_third_party", "reopened")
#: The status that stops the SLA clock (the customer has to answer).
PAUSED = "waiting_on_customer"
#: Priority → (first response, resolution) targets in working minutes when no policy was set.
DEFAULT_POLICIES: dict[str, tuple[int, int]] = {
    "urgent": (30, 240),
    "high": (120, 960),
    "normal": (240, 1440),
    "low": (480, 2880),
}
MAX_BODY = 20_000
#: The free texts that may hold tab and newlines: a reply or note body, a resolution.
_LINES = frozenset({"body", "resolution"})
_UNSET: Any = object()


@attrs.frozen
class Case:
    """A customer's case: what it is about, who works it, where it stands, and its SLA clock (UTC times)."""

    id: int
    customer_id: int
    subject: str
    description: str | None
    channel: str
    category: str | None
    priority: str
    status: str
    assignee: str | None
    team: str | None
    resolution: str | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    first_response_due_at: datetime | None
    resolution_due_at: datetime | None
    first_responded_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    paused_at: datetime | None
    first_response_breached_at: datetime | None
    resolution_breached_at: datetime | None
    watchers: tuple[str, ...] = ()
    contact_id: int | None = None  # the organization's member who raised it (case_links.py)
    order_id: int | None = None
    product: str | None = None
    merged_into_id: int | None = None  # set when this duplicate was folded into another case
    external_id: str | None = None  # the Message-ID of the e-mail that opened it (intake.py threads by it)
    customer_group: str | None = None  # the customer's group when opened: its SLA rule (sla.py)
    first_response_warned_at: datetime | None = None
    resolution_warned_at: datetime | None = None
    reopen_count: int = 0
    csat_requested_at: datetime | None = None  # the satisfaction survey (csat.py)
    csat_score: int | None = None
    csat_comment: str | None = None
    csat_answered_at: datetime | None = None


@attrs.frozen
class Message:
    """One entry of a case's conversation: a ``reply`` (inbound from or outbound to the customer) or an internal
    ``note``; ``interaction_id`` is the core interaction logged with it."""

    id: int
    case_id: int
    customer_id: int
    kind: str
    direction: str | None
    body: str
    author: str
    interaction_id: int | None
    created_at: datetime
    external_id: str | None = None  # an inbound e-mail's Message-ID (intake.py threads replies by it)


@attrs.frozen
class Policy:
    """An SLA policy: the working minutes a case of ``priority`` has for its first response and its resolution."""

    priority: str
    first_response_minutes: int
    resolution_minutes: int


@attrs.frozen
class DayOff:
    """A company day off (``team`` None: the whole company)."""

    day: date
    team: str | None
    note: str


@attrs.frozen
class Breach:
    """An SLA target a case missed, found by :meth:`ServiceService.run_due`: ``target`` is ``first_response`` or
    ``resolution``; ``due_at`` when it was due."""

    case_id: int
    customer_id: int
    target: str
    due_at: datetime


class OpenSchema(CleanSchema):
    """What opening a case accepts (every door loads it through this schema)."""

    MULTILINE = frozenset({"description"})

    customer_id = fields.Integer(required=True, strict=True)
    subject = fields.String(required=True, validate=validate.Length(min=1, max=300))
    description = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=MAX_BODY))
    channel = fields.String(load_default="phone")
    category = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=100))
    priority = fields.String(load_default="normal", validate=validate.OneOf(PRIORITIES))
    assignee = fields.String(load_default=None, allow_none=True)
    team = fields.String(load_default=None, allow_none=True)
    watchers = fields.List(fields.String(), load_default=list)
    contact_id = fields.Integer(load_default=None, allow_none=True, strict=True)
    order_id = fields.Integer(load_default=None, allow_none=True, strict=True, validate=validate.Range(min=1))
    product = fields.String(load_default=None, allow_none=True)

    @marshmallow.pre_load
    def _strip(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        stripped = {key: value.strip() if isinstance(value, str) else value for key, value in data.items()}
        return {
            key: (None if value == "" and key in ("description", "category", "assignee", "team", "product") else value)
            for key, value in stripped.items()
        }


class ServiceService:
    """Cases of one CRM (``crm.service``)."""

    def __init__(self, crm: CRM) -> None:
        self._crm = crm
        self._open_schema = OpenSchema()
        self.attachments = Attachments(crm, self)
        self.intake = Intake(crm, self)
        self.routing = Routing(crm, self)
        self.canned = CannedReplies(crm, self)
        self.sla = sla.Sla(crm)
        self.csat = csat.Csat(crm, self)
        self.reports = reports.Reports(crm)

    # -- cases -------------------------------------------------------------------------------------------

    def open(
        self,
        customer_id: int,
        subject: str,
        *,
        description: str | None = None,
        channel: str = "phone",
        category: str | None = None,
        priority: str = "normal",
        assignee: str | None = None,
        team: str | None = None,
        watchers: Sequence[str] = (),
        contact_id: int | None = None,
        order_id: int | None = None,
        product: str | None = None,
    ) -> Case:
        """Open a case for a customer (a merged-away id opens it on the kept customer); needs ``service.write``
        on the customer. Its SLA due times are computed on ``team``'s calendar; the opening is logged as an
        inbound interaction on the case's channel, and ``crmkit_case_opened`` runs in the same transaction.
        An organization's case may name its ``contact_id``; ``order_id`` and ``product`` say what it concerns."""
        self._crm.access.require(WRITE)
        values = self._load(
            {
                "customer_id": customer_id,
                "subject": subject,
                "description": description,
                "channel": channel,
                "category": category,
                "priority": priority,
                "assignee": assignee,
                "team": team,
                "watchers": list(watchers),
                "contact_id": contact_id,
                "order_id": order_id,
                "product": product,
            }
        )
        if values["channel"] not in self._crm.channels:
            raise ValidationError(f"must be one of {', '.join(self._crm.channels)}", field="channel")
        with self._crm.transaction() as session:
            conn = session.connection()
            target = self._writable_customer(conn, values["customer_id"])
            self._crm.access.require_customer(conn, target, WRITE)
            self._check_people(conn, values["assignee"], values["team"], values["watchers"])
            now = utcnow()
            links = checked_links(self._crm, conn, target, values["contact_id"], values["order_id"], values["product"])
            sla.calendar_lock(conn, exclusive=False)  # a re-timing in flight finishes first
            group = sla.customer_group(self._crm, target, session)
            if values["assignee"] is None and values["team"] is None:  # routing.py: the first matching rule's
                values.update(self.routing.route(conn, target, values["channel"], values["category"], group, now))
            first, resolution = self._policy(conn, values["priority"], group)
            calendar = self._calendar(conn, values["team"])
            row = {
                **links,
                "customer_id": target,
                "subject": values["subject"],
                "description": values["description"],
                "channel": values["channel"],
                "category": values["category"],
                "priority": values["priority"],
                "status": "new",
                "assignee": values["assignee"],
                "team": values["team"],
                "resolution": None,
                "created_by": self._crm.actor,
                "created_at": now,
                "updated_at": now,
                "first_response_due_at": calendar.add(now, timedelta(minutes=first)),
                "resolution_due_at": calendar.add(now, timedelta(minutes=resolution)),
                "customer_group": group,
            }
            case_id = conn.execute(cases.insert().values(**row).returning(cases.c.id)).scalar_one()
            for username in sorted(set(values["watchers"])):
                conn.execute(case_watchers.insert().values(case_id=case_id, username=username))
            self._crm.interactions.log(
                target,
                values["channel"],
                direction="inbound",
                occurred_at=now,
                subject=_subject(case_id, values["subject"]),
                summary=values["description"],
                outcome="case_opened",
            )
            case = self._read(conn, case_id)
            self._crm.audit.record(
                session,
                "create",
                "case",
                case_id,
                customer_id=target,
                changes={
                    "subject": case.subject,
                    "priority": case.priority,
                    "assignee": case.assignee,
                    "team": case.team,
                },
            )
            self._crm.hooks.call(hookspecs.crmkit_case_opened, case=case, session=session)
            self._crm.events.emit(session, "case.opened", lambda: {"case": to_jsonable(case)}, customer_id=target)
        return case

    def merge(self, kept_id: int, merged_id: int) -> Case:
        """Fold duplicate case ``merged_id`` into ``kept_id`` (see :func:`crmkit_service.case_merge.merge_cases`)."""
        return merge_cases(self._crm, self, kept_id, merged_id)

    def get(self, case_id: int) -> Case:
        """One case with its watchers (``NotFound`` when unknown or outside ``service.read``'s scope)."""
        with self._crm.reading() as conn:
            return self._one(conn, case_id, READ)

    def list(
        self,
        *,
        status: str | None = None,
        customer_id: int | None = None,
        assignee: str | None = None,
        team: str | None = None,
        priority: str | None = None,
        after: int | None = None,
        limit: int = 50,
    ) -> list[Case]:
        """Cases in scope, newest first, paged by id (pass the last case's id as ``after``).

        ``status`` is one status or ``active`` (every status still being worked on).
        """
        self._crm.access.require(READ)
        if status is not None and status != "active" and status not in STATUSES:
            raise ValidationError(f"must be 'active' or one of {', '.join(STATUSES)}", field="status")
        if priority is not None and priority not in PRIORITIES:
            raise ValidationError(f"must be one of {', '.join(PRIORITIES)}", field="priority")
        if not 1 <= limit <= 500:
            raise ValidationError("must be between 1 and 500", field="limit")
        c = cases.c
        query = sa.select(*case_columns).where(self._crm.access.customers(c.customer_id, READ))
        if status == "active":
            query = query.where(c.status.in_(ACTIVE))
        elif status:
            query = query.where(c.status == status)
        for column, value in (
            (c.customer_id, customer_id),
            (c.assignee, assignee),
            (c.team, team),
            (c.priority, priority),
        ):
            if value is not None:
                query = query.where(column == value)
        if after is not None:
            query = query.where(c.id < after)
        with self._crm.reading() as conn:
            rows = conn.execute(query.order_by(c.id.desc()).limit(limit)).mappings().all()
            return self._with_watchers(conn, rows)

    def mine(self, *, limit: int = 10) -> list[Case]:
        """The acting user's open cases (assigned to them, still being worked on), most urgent due first."""
        self._crm.access.require(READ)
        c = cases.c
        with self._crm.reading() as conn:
            rows = (
                conn.execute(
                    sa.select(*case_columns)
                    .where(
                        c.assignee == self._crm.actor,
                        c.status.in_(ACTIVE),
                        self._crm.access.customers(c.customer_id, READ),
                    )
                    .order_by(c.resolution_due_at.is_(None), c.resolution_due_at, c.id)
                    .limit(limit)
                )
                .mappings()
                .all()
            )
            return self._with_watchers(conn, rows)

    def conversation(self, case_id: int) -> list[Message]:
        """A case's replies and notes, oldest first (``NotFound`` outside ``service.read``'s scope)."""
        with self._crm.reading() as conn:
            self._one(conn, case_id, READ)
            rows = (
                conn.execute(sa.select(messages).where(messages.c.case_id == case_id).order_by(messages.c.id))
                .mappings()
                .all()
            )
        return [Message(**row) for row in rows]

    def summary(self, customer_id: int, *, latest: int = 5) -> dict[str, Any]:
        """The customer-360 section: how many of the customer's cases are active and the latest few (nothing for a
        user whose ``service.read`` does not reach the customer)."""
        if not self._crm.access.allowed(READ):
            return {"active": 0, "latest": []}
        c = cases.c
        scope = self._crm.access.customers(c.customer_id, READ)
        with self._crm.reading() as conn:
            active = conn.execute(
                sa.select(sa.func.count()).where(c.customer_id == customer_id, scope, c.status.in_(ACTIVE))
            ).scalar_one()
            rows = (
                conn.execute(
                    sa.select(*case_columns)
                    .where(c.customer_id == customer_id, scope)
                    .order_by(c.id.desc())
                    .limit(latest)
                )
                .mappings()
                .all()
            )
            return {"active": active, "latest": self._with_watchers(conn, rows)}

    # -- the conversation --------------------------------------------------------------------------------

    def reply(self, case_id: int, body: str, *, direction: str = "outbound") -> Message:
        """Add a reply to the case's conversation, logged as an interaction on its channel.

        An ``outbound`` reply (to the customer) is the first response when none was made yet, and moves a
        ``new`` or ``reopened`` case to ``open``. An ``inbound`` one (from the customer) moves a case waiting on
        the customer back to ``open`` (its SLA clock resumes) and reopens a resolved case. A closed case takes
        no reply (``Conflict``).
        """
        if direction not in ("inbound", "outbound"):
            raise ValidationError("must be inbound or outbound", field="direction")
        return self._message(case_id, "reply", body, direction)

    def note(self, case_id: int, body: str) -> Message:
        """Add an internal note. The customer's timeline gets an interaction saying a note was written on the
        case, without its text: internal notes stay with the people who may read the case."""
        return self._message(case_id, "note", body, None)

    def _message(self, case_id: int, kind: str, body: str, direction: str | None) -> Message:
        self._crm.access.require(WRITE)
        text = body.strip() if isinstance(body, str) else ""
        if not text:
            raise ValidationError("must not be empty", field="body")
        if errors := control_character_errors({"body": text}, _LINES):
            raise ValidationError(errors)
        if len(text) > MAX_BODY:
            raise ValidationError(f"longer than {MAX_BODY} characters", field="body")
        with self._crm.transaction() as session:
            conn = session.connection()
            case = self._one(conn, case_id, WRITE, lock=True)
            if case.status == "closed" and not (
                kind == "reply" and direction == "inbound" and config.setting(self._crm, "reply_to_closed") == "reopen"
            ):
                raise Conflict(f"case {case_id} is closed: reopen it first (status reopened)")
            if (
                case.status == "resolved"
                and kind == "reply"
                and direction == "inbound"
                and config.setting(self._crm, "reply_to_resolved") == "refuse"
            ):
                raise Conflict(f"case {case_id} is resolved and takes no more replies: open a new case")
            now = utcnow()
            if kind == "reply":
                interaction = self._crm.interactions.log(
                    case.customer_id,
                    case.channel,
                    direction=direction,
                    occurred_at=now,
                    subject=_subject(case.id, case.subject),
                    summary=text,
                    outcome="case_reply",
                    **({"employee": self._crm.actor} if direction == "outbound" else {}),
                )
            else:
                interaction = self._crm.interactions.log(
                    case.customer_id,
                    case.channel,
                    direction="outbound",
                    occurred_at=now,
                    subject=_subject(case.id, case.subject),
                    summary="internal note",
                    outcome="case_note",
                    employee=self._crm.actor,
                )
            row = {
                "case_id": case.id,
                "customer_id": case.customer_id,
                "kind": kind,
                "direction": direction,
                "body": text,
                "author": self._crm.actor,
                "interaction_id": interaction.id,
                "created_at": now,
            }
            message_id = conn.execute(messages.insert().values(**row).returning(messages.c.id)).scalar_one()
            message = Message(id=message_id, **row)
            self._crm.audit.record(
                session,
                "create",
                f"case_{kind}",
                message_id,
                customer_id=case.customer_id,
                changes={"case_id": case.id, "body": text},
            )
            self._crm.events.emit(
                session,
                f"case.{kind}_added",
                lambda: {"case_id": case.id, "message": to_jsonable(message)},
                customer_id=case.customer_id,
            )
            if kind == "reply" and direction == "outbound":
                conn.execute(
                    cases.update()
                    .where(cases.c.id == case.id, cases.c.first_responded_at.is_(None))
                    .values(first_responded_at=now)
                )
                if case.status in ("new", "reopened"):
                    self._move(session, case, "open", now)
            elif kind == "reply" and case.status in (PAUSED, "resolved", "closed"):
                self._move(session, case, "open" if case.status == PAUSED else "reopened", now)
            conn.execute(cases.update().where(cases.c.id == case.id).values(updated_at=now))
        return message

    # -- assignment and status ---------------------------------------------------------------------------

    def assign(self, case_id: int, *, assignee: str | None = _UNSET, team: str | None = _UNSET) -> Case:
        """Give the case to a user and/or a team (None clears one); both must exist (a disabled user is refused,
        ``ValidationError`` naming ``assignee`` or ``team``). A new team re-times the SLA clock on its calendar.
        Needs ``service.write`` on the case's customer."""
        self._crm.access.require(WRITE)
        if assignee is _UNSET and team is _UNSET:
            raise ValidationError("name an assignee or a team", field="assignee")
        with self._crm.transaction() as session:
            conn = session.connection()
            case = self._one(conn, case_id, WRITE, lock=True)
            changes: dict[str, Any] = {}
            if assignee is not _UNSET:
                assignee = (assignee or "").strip() or None
                self._check_people(conn, assignee, None, ())
                if assignee != case.assignee:
                    changes["assignee"] = assignee
            if team is not _UNSET:
                team = (team or "").strip() or None
                self._check_people(conn, None, team, ())
                if team != case.team:
                    changes["team"] = team
            if not changes:
                return case
            now = utcnow()
            values = dict(changes)
            if "team" in changes and case.status in ACTIVE and case.paused_at is None:
                values.update(self._retimed(conn, case, changes["team"], now))
            conn.execute(cases.update().where(cases.c.id == case.id).values(**values, updated_at=now))
            self._crm.audit.record(
                session,
                "assign",
                "case",
                case.id,
                customer_id=case.customer_id,
                changes={key: {"before": getattr(case, key), "after": value} for key, value in changes.items()},
            )
            updated = self._read(conn, case.id)
            self._crm.events.emit(
                session, "case.assigned", lambda: {"case": to_jsonable(updated)}, customer_id=case.customer_id
            )
        return updated

    def _retimed(self, conn: sa.Connection, case: Case, team: str | None, now: datetime) -> dict[str, datetime]:
        """The due times of a case moving to ``team``: the working time left on the old team's calendar, counted
        from now on the new team's (targets already missed or met stay as they are)."""
        old, new = self._calendar(conn, case.team), self._calendar(conn, team)
        moved = {}
        for name in ("first_response_due_at", "resolution_due_at"):
            due = getattr(case, name)
            if due is None or due <= now or (name == "first_response_due_at" and case.first_responded_at):
                continue
            moved[name] = new.add(now, old.between(now, due))
        return moved

    def set_status(self, case_id: int, status: str, *, resolution: str | None = None) -> Case:
        """Move the case along :data:`TRANSITIONS` (anything else is a ``ValidationError`` naming ``status``).

        Resolving — or closing a case that was never resolved — needs a ``resolution`` (what was done).
        ``waiting_on_customer`` pauses the SLA clock and leaving it resumes it, the due times moved by the working
        time paused; ``reopened`` restarts the resolution clock. Resolving runs ``crmkit_case_resolved``.
        """
        self._crm.access.require(WRITE)
        if status not in STATUSES:
            raise ValidationError(f"unknown status {status!r}: one of {', '.join(STATUSES)}", field="status")
        note = (resolution or "").strip() or None
        if errors := control_character_errors({"resolution": note}, _LINES):
            raise ValidationError(errors)
        with self._crm.transaction() as session:
            conn = session.connection()
            case = self._one(conn, case_id, WRITE, lock=True)
            if status not in TRANSITIONS[case.status]:
                allowed = ", ".join(sorted(TRANSITIONS[case.status]))
                raise ValidationError(
                    f"a {case.status} case cannot become {status} (it can become: {allowed})", field="status"
                )
            if note is None and (status == "resolved" or (status == "closed" and case.resolved_at is None)):
                raise ValidationError(f"say how the case was resolved before it becomes {status}", field="resolution")
            self._move(session, case, status, utcnow(), resolution=note)
            updated = self._read(conn, case.id)
        return updated

    def _move(self, session: Session, case: Case, status: str, now: datetime, *, resolution: str | None = None) -> None:
        """Write a status change with its SLA bookkeeping, audit, hook and event (in the caller's transaction)."""
        conn = session.connection()
        values: dict[str, Any] = {"status": status, "updated_at": now}
        if resolution is not None:
            values["resolution"] = resolution
        calendar = self._calendar(conn, case.team)
        if status == PAUSED and case.paused_at is None:
            values["paused_at"] = now
        elif status != PAUSED and case.paused_at is not None:
            values["paused_at"] = None
            for name in ("first_response_due_at", "resolution_due_at"):
                due = getattr(case, name)
                if (
                    due is not None
                    and due > case.paused_at
                    and not (name == "first_response_due_at" and case.first_responded_at is not None)
                ):
                    values[name] = calendar.add(now, calendar.between(case.paused_at, due))
        if status == "resolved":
            values["resolved_at"] = now
        elif status == "closed":
            values["closed_at"] = now
        elif status == "reopened":
            _, minutes = self._policy(conn, case.priority, case.customer_group)
            values.update(
                resolved_at=None,
                closed_at=None,
                resolution_breached_at=None,
                resolution_warned_at=None,
                reopen_count=cases.c.reopen_count + 1,
                resolution_due_at=calendar.add(now, timedelta(minutes=minutes)),
            )
        done = conn.execute(
            cases.update().where(cases.c.id == case.id, cases.c.status == case.status).values(**values)
        ).rowcount
        if done != 1:  # the row is locked, so only a write in this very transaction could get here
            raise Conflict(f"case {case.id} changed meanwhile: try again")
        self._crm.audit.record(
            session,
            "status",
            "case",
            case.id,
            customer_id=case.customer_id,
            changes={
                "status": {"before": case.status, "after": status},
                **({"resolution": resolution} if resolution else {}),
            },
        )
        updated = self._read(conn, case.id)
        if status == "resolved":
            self._crm.hooks.call(hookspecs.crmkit_case_resolved, case=updated, session=session)
        self._crm.events.emit(
            session,
            "case.status_changed",
            lambda: {"case": to_jsonable(updated), "previous_status": case.status},
            customer_id=case.customer_id,
        )

    def watch(self, case_id: int, username: str) -> Case:
        """Add a user to the case's watchers (an active user; ``ValidationError`` naming ``watchers`` otherwise)."""
        self._crm.access.require(WRITE)
        with self._crm.transaction() as session:
            conn = session.connection()
            case = self._one(conn, case_id, WRITE, lock=True)
            self._check_people(conn, None, None, [username])
            if username not in case.watchers:
                conn.execute(case_watchers.insert().values(case_id=case.id, username=username))
                self._crm.audit.record(
                    session, "watch", "case", case.id, customer_id=case.customer_id, changes={"watcher": username}
                )
            return self._read(conn, case.id)

    def unwatch(self, case_id: int, username: str) -> Case:
        """Remove a user from the case's watchers (nothing happens when they were not watching)."""
        self._crm.access.require(WRITE)
        with self._crm.transaction() as session:
            conn = session.connection()
            case = self._one(conn, case_id, WRITE, lock=True)
            if conn.execute(
                case_watchers.delete().where(case_watchers.c.case_id == case.id, case_watchers.c.username == username)
            ).rowcount:
                self._crm.audit.record(
                    session, "unwatch", "case", case.id, customer_id=case.customer_id, changes={"watcher": username}
                )
            return self._read(conn, case.id)

    # -- SLAs --------------------------------------------------------------------------------------------

    def run_due(self, now: datetime | None = None) -> list[Breach]:
        """Find SLA targets missed by ``now`` (default: now) and mark each once, running ``crmkit_sla_breached``
        and emitting ``case.sla_breached`` in the same transaction. A case waiting on the customer is paused and
        never breaches; a first response counts only while none was made. Safe to run from several workers at
        once: a breach is claimed by a conditional update, so each is reported exactly once."""
        self._crm.access.require(ADMIN)
        moment = now or utcnow()
        c = cases.c
        targets = (
            ("first_response", c.first_response_due_at, c.first_response_breached_at, c.first_responded_at.is_(None)),
            ("resolution", c.resolution_due_at, c.resolution_breached_at, sa.true()),
        )
        found: list[Breach] = []
        with self._crm.transaction() as session:
            conn = session.connection()
            for target, due, breached, pending in targets:
                candidates = conn.execute(
                    sa.select(c.id, c.customer_id, due)
                    .where(c.status.in_([s for s in ACTIVE if s != PAUSED]), due <= moment, breached.is_(None), pending)
                    .order_by(due, c.id)
                ).all()
                for case_id, customer_id, due_at in candidates:
                    claimed = conn.execute(
                        cases.update().where(c.id == case_id, breached.is_(None)).values({breached.key: moment})
                    ).rowcount
                    if not claimed:
                        continue
                    breach = Breach(case_id, customer_id, target, due_at)
                    case = self.sla.escalate(
                        session, self._read(conn, case_id), target, moment, self._read, self._retimed
                    )
                    self._crm.audit.record(
                        session,
                        "sla_breached",
                        "case",
                        case_id,
                        customer_id=customer_id,
                        changes={"target": target, "due_at": due_at.isoformat()},
                    )
                    self._crm.hooks.call(hookspecs.crmkit_sla_breached, case=case, target=target, session=session)
                    self._crm.events.emit(
                        session,
                        "case.sla_breached",
                        lambda b=breach, k=case: {
                            "target": b.target,
                            "due_at": b.due_at.isoformat(),
                            "case": to_jsonable(k),
                        },
                        customer_id=customer_id,
                    )
                    found.append(breach)
            self.sla.warn(session, moment, self._read)
        return found

    def policies(self) -> list[Policy]:
        """The SLA policy of every priority (the default where none was set)."""
        with self._crm.reading() as conn:
            return [Policy(p, *self._policy(conn, p)) for p in PRIORITIES]

    def set_policy(self, priority: str, *, first_response_minutes: int, resolution_minutes: int) -> Policy:
        """Set the working-minute targets of a priority (for cases opened from now on); needs ``service.admin``."""
        self._crm.access.require(ADMIN)
        if priority not in PRIORITIES:
            raise ValidationError(f"must be one of {', '.join(PRIORITIES)}", field="priority")
        for name, value in (
            ("first_response_minutes", first_response_minutes),
            ("resolution_minutes", resolution_minutes),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValidationError("must be a positive whole number of working minutes", field=name)
        if resolution_minutes < first_response_minutes:
            raise ValidationError("must not be shorter than the first response target", field="resolution_minutes")
        with self._crm.transaction() as session:
            conn = session.connection()
            conn.execute(policies.delete().where(policies.c.priority == priority))
            conn.execute(
                policies.insert().values(
                    priority=priority,
                    first_response_minutes=first_response_minutes,
                    resolution_minutes=resolution_minutes,
                )
            )
            self._crm.audit.record(
                session,
                "set",
                "sla_policy",
                priority,
                changes={"first_response_minutes": first_response_minutes, "resolution_minutes": resolution_minutes},
            )
        return Policy(priority, first_response_minutes, resolution_minutes)

    def week(self, team: str | None = None) -> tuple[DayHours, ...]:
        """The working week of ``team`` (its own, else the business's, else Monday–Friday 08:00–17:00)."""
        with self._crm.reading() as conn:
            return self._calendar(conn, team).week

    def set_week(self, week: Mapping[int, DayHours], *, team: str | None = None) -> tuple[DayHours, ...]:
        """Set the working hours (``{weekday: (opens, closes)}``, minutes after local midnight, 0 = Monday; days
        left out are closed) of a team, or of the business when ``team`` is None; needs ``service.admin``.
        A week with no working hours at all is refused (``ValidationError`` naming ``hours``); a day may have several
        intervals around breaks, ``(480, 720, 780, 1020)``. Open cases on the changed calendars are re-timed."""
        self._crm.access.require(ADMIN)
        try:
            checked = check_week(week)
        except ValueError as exc:
            raise ValidationError(str(exc), field="hours") from None
        with self._crm.transaction() as session:
            conn = session.connection()
            if team is not None:
                self._check_people(conn, None, team, ())
            key = team or ""
            sla.calendar_lock(conn, exclusive=True)
            teams = sla.affected_teams(conn, team)
            before = {name: self._calendar(conn, name) for name in teams}
            conn.execute(hours.delete().where(hours.c.team == key))
            conn.execute(
                hours.insert(),
                [
                    {"team": key, "weekday": day, "opens": opens, "closes": closes}
                    for day, span in enumerate(checked)
                    for opens, closes in intervals(span)
                ],
            )
            sla.retime(conn, before, {name: self._calendar(conn, name) for name in teams}, utcnow())
            self._crm.audit.record(
                session,
                "set",
                "service_hours",
                key or "default",
                changes={"week": [list(span) if span else None for span in checked]},
            )
        return checked

    def add_day_off(self, day: date, note: str, *, team: str | None = None) -> DayOff:
        """A company day off (for one team, or everyone): no SLA time runs on it; the open cases on the calendars it
        changes are re-timed in the same transaction (:func:`crmkit_service.sla.retime`)."""
        self._crm.access.require(ADMIN)
        if not isinstance(day, date) or isinstance(day, datetime):
            raise ValidationError("must be a date", field="day")
        text = (note or "").strip()
        if not text:
            raise ValidationError("say why the day is off", field="note")
        if errors := control_character_errors({"note": text}):
            raise ValidationError(errors)
        with self._crm.transaction() as session:
            conn = session.connection()
            if team is not None:
                self._check_people(conn, None, team, ())
            key = team or ""
            sla.calendar_lock(conn, exclusive=True)
            teams = sla.affected_teams(conn, team)
            before = {name: self._calendar(conn, name) for name in teams}
            conn.execute(days_off.delete().where(days_off.c.day == day, days_off.c.team == key))
            conn.execute(days_off.insert().values(day=day, team=key, note=text[:200]))
            start = datetime.combine(day - timedelta(days=1), time(0), tzinfo=self._crm.timezone)  # ≤ the day's start
            sla.retime(conn, before, {name: self._calendar(conn, name) for name in teams}, utcnow(), changed_from=start)
            self._crm.audit.record(
                session, "create", "service_day_off", f"{day.isoformat()} {key}".strip(), changes={"note": text[:200]}
            )
        return DayOff(day, team, text[:200])

    def days_off(self) -> list[DayOff]:
        """Every company day off, by date."""
        with self._crm.reading() as conn:
            rows = conn.execute(sa.select(days_off).order_by(days_off.c.day, days_off.c.team)).all()
        return [DayOff(row.day, row.team or None, row.note) for row in rows]

    def configure(self, name: str, value: Any) -> Any:
        """Set one of the plugin's settings (:mod:`crmkit_service.config`); needs ``service.admin``."""
        return config.configure(self._crm, name, value)

    def settings(self) -> dict[str, Any]:
        """The plugin's settings with their values (defaults where never set)."""
        return {name: config.setting(self._crm, name) for name in config.NAMES}

    def calendar(self, team: str | None = None) -> WorkingCalendar:
        """The working calendar SLA times of ``team``'s cases are counted on."""
        with self._crm.reading() as conn:
            return self._calendar(conn, team)

    # -- privacy and merge -------------------------------------------------------------------------------

    def export(self, customer_id: int, session: Session) -> dict[str, Any]:
        """Every case row about the customer, and their watchers (right of access)."""
        data = export_rows(session, [cases, messages, *CASE_DATA], customer_id)
        ids = [row["id"] for row in data[cases.name]]
        rows = (
            session.connection()
            .execute(
                sa.select(case_watchers)
                .where(case_watchers.c.case_id.in_(ids))
                .order_by(case_watchers.c.case_id, case_watchers.c.username)
            )
            .mappings()
        )
        data[case_watchers.name] = [dict(row) for row in rows]
        return data

    def erase(self, customer_id: int, session: Session) -> None:
        """Delete the customer's cases, their conversation and watchers (right to erasure)."""
        conn = session.connection()
        ids = sa.select(cases.c.id).where(cases.c.customer_id == customer_id)
        conn.execute(case_watchers.delete().where(case_watchers.c.case_id.in_(ids)))
        # An organization's cases outlive its erased contact; the customer's own duplicates lose their pointer.
        conn.execute(cases.update().where(cases.c.contact_id == customer_id).values(contact_id=None))
        conn.execute(cases.update().where(cases.c.customer_id == customer_id).values(merged_into_id=None))
        delete_rows(session, [*CASE_DATA, messages, cases], customer_id)

    def merged(self, pairs: Mapping[int, int], session: Session) -> None:
        """Move the cases and messages of merged-away customers to the kept ones (``pairs``: merged → kept)."""
        conn = session.connection()
        repoint(conn, cases.c.customer_id, pairs)
        repoint(conn, messages.c.customer_id, pairs)

    # -- internals ---------------------------------------------------------------------------------------

    def _load(self, values: Mapping[str, Any]) -> dict[str, Any]:
        try:
            return self._open_schema.load(dict(values))
        except marshmallow.ValidationError as exc:
            raise ValidationError(exc.messages_dict) from None

    def _policy(self, conn: sa.Connection, priority: str, group: str | None = None) -> tuple[int, int]:
        row = conn.execute(
            sa.select(policies.c.first_response_minutes, policies.c.resolution_minutes).where(
                policies.c.priority == priority
            )
        ).first()
        return sla.targets(conn, priority, group, (row[0], row[1]) if row else DEFAULT_POLICIES[priority])

    def _calendar(self, conn: sa.Connection, team: str | None) -> WorkingCalendar:
        """The calendar of ``team``: its week (else the business's, else the default) in the business's zone,
        without public holidays and the company's and the team's days off."""
        rows = conn.execute(sa.select(hours).where(hours.c.team.in_(["", team or ""]))).all()
        by_team: dict[str, dict[int, DayHours]] = {}
        for row in sorted(rows, key=lambda r: r.opens):  # a day's intervals in order (around its breaks)
            day = by_team.setdefault(row.team, {})
            day[row.weekday] = (*(day.get(row.weekday) or ()), row.opens, row.closes)
        chosen = by_team.get(team or "") or by_team.get("")
        off = frozenset(conn.execute(sa.select(days_off.c.day).where(days_off.c.team.in_(["", team or ""]))).scalars())

        def day_off(day: date) -> bool:
            return day in off or is_public_holiday(day)

        if chosen:
            return WorkingCalendar(self._crm.timezone, check_week(chosen), day_off)
        return WorkingCalendar(self._crm.timezone, day_off=day_off)

    def _check_people(
        self, conn: sa.Connection, assignee: str | None, team: str | None, watching: Sequence[str]
    ) -> None:
        if assignee is not None:
            self._crm.users.require_assignable(conn, [assignee], field="assignee")
        if watching:
            self._crm.users.require_assignable(conn, watching, field="watchers")
        if team is not None:
            try:
                self._crm.teams.id_of(conn, team)
            except NotFound:
                raise ValidationError(f"no team {team!r}", field="team") from None

    def _writable_customer(self, conn: sa.Connection, customer_id: int) -> int:
        """The active customer a new case goes to (following a merge); ``NotFound`` / ``Conflict`` otherwise."""
        status = conn.execute(sa.select(customers.c.status).where(customers.c.id == customer_id)).scalar()
        if status == "active":
            return customer_id
        customer = self._crm.customers.get(customer_id)  # NotFound, or the customer it was merged into
        if customer.status != "active":
            raise Conflict(f"customer {customer_id} is {customer.status}: no new cases")
        return customer.id

    def _one(self, conn: sa.Connection, case_id: int, permission: str, *, lock: bool = False) -> Case:
        """The case if ``permission``'s scope reaches its customer (``NotFound`` otherwise); ``lock`` takes the
        row lock (PostgreSQL; SQLite's write transactions already run one at a time)."""
        query = sa.select(*case_columns).where(
            cases.c.id == case_id, self._crm.access.customers(cases.c.customer_id, permission)
        )
        row = conn.execute(query.with_for_update(of=cases) if lock else query).mappings().first()
        if row is None:
            raise NotFound("case", case_id)
        return self._with_watchers(conn, [row])[0]

    def _read(self, conn: sa.Connection, case_id: int) -> Case:
        row = conn.execute(sa.select(*case_columns).where(cases.c.id == case_id)).mappings().one()
        return self._with_watchers(conn, [row])[0]

    def _with_watchers(self, conn: sa.Connection, rows: Sequence[Mapping[str, Any]]) -> list[Case]:
        if not rows:
            return []
        found: dict[int, list[str]] = {}
        for case_id, username in conn.execute(
            sa.select(case_watchers.c.case_id, case_watchers.c.username)
            .where(case_watchers.c.case_id.in_([r["id"] for r in rows]))
            .order_by(case_watchers.c.username)
        ):
            found.setdefault(case_id, []).append(username)
        return [Case(**row, watchers=tuple(found.get(row["id"], ()))) for row in rows]


def _subject(case_id: int, subject: str) -> str:
    """The interaction subject of a case's contact: ``[#12] Máy lạnh không lạnh`` (within the core's 300)."""
    return f"[#{case_id}] {subject}"[:300]
