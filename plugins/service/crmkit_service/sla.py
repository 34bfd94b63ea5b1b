"""SLA rules per customer group, warnings before a breach, escalation on a breach, and re-timing open cases when
the calendar changes (``crm.service.sla``).

A **rule** is keyed by a customer group (``""``: every group) and a priority. It may override the priority's
targets (``first_response_minutes``, ``resolution_minutes``; the group's rule first, then the priority's policy) and
carries what the worker does around a breach: warn ``warn_minutes`` before a target is due, and on a breach
reassign (``escalate_to``, ``escalate_team``), tell someone (``notify``: made a watcher and named in the event) and
raise the priority one step. A case's group comes from the ``crmkit_service_customer_group`` hook when it is
opened (loyalty answers with the member's tier) and is kept on the case.

**Re-timing**: adding a day off or changing a week moves the due times of every open case on the changed
calendars, keeping the working time each had left (counted from now, or from when it paused). It is set-based:
one read of the affected cases, a bisection per due time on the old and new calendars' timelines, one batched
update — 100,000 cases in a few seconds — all inside the transaction of the calendar change.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa

from crmkit import ValidationError
from crmkit.plugin_api import control_character_errors, to_jsonable
from crmkit_service import hookspecs
from crmkit_service.businesshours import HORIZON_DAYS, Timeline, WorkingCalendar
from crmkit_service.models import cases, sla_rules
from crmkit_service.models import watchers as case_watchers

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from crmkit import CRM

#: The priorities from lowest to highest (a raise moves one step right).
PRIORITIES = ("low", "normal", "high", "urgent")
#: Statuses whose SLA clock can still move (mirrors ``service.ACTIVE``).
ACTIVE = ("new", "open", "waiting_on_customer", "waiting_on_third_party", "reopened")
_LOCK_SPACE = zlib.crc32(b"service_calendar") - 2**31

#: How a case's due times move to another team's calendar: ``(conn, case, team, now) -> {column: due time}``.
Retimed = Callable[[sa.Connection, Any, "str | None", datetime], dict[str, datetime]]


@attrs.frozen
class Rule:
    """An SLA rule of a customer group (None: every group) and a priority: target overrides (None: the
    priority's policy), the warning lead time and the escalation actions on a breach."""

    priority: str
    customer_group: str | None = None
    first_response_minutes: int | None = None
    resolution_minutes: int | None = None
    warn_minutes: int | None = None
    escalate_to: str | None = None
    escalate_team: str | None = None
    notify: str | None = None
    raise_priority: bool = False


@attrs.frozen
class SlaWarning:
    """A target about to be missed, found by ``run_due``: ``due_at`` within the rule's ``warn_minutes``."""

    case_id: int
    customer_id: int
    target: str
    due_at: datetime


def calendar_lock(conn: sa.Connection, *, exclusive: bool) -> None:
    """Order case openings (shared) against calendar changes that re-time open cases (exclusive), so that no case is
    timed on a calendar a re-timing already replaced. PostgreSQL: a transaction-scoped advisory lock; SQLite's
    write transactions run one at a time already."""
    if conn.dialect.name == "postgresql":
        function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
        conn.execute(sa.text(f"SELECT {function}(CAST(:space AS integer), 0)"), {"space": _LOCK_SPACE})


def customer_group(crm: CRM, customer_id: int, session: Session) -> str | None:
    """The customer's group from the ``crmkit_service_customer_group`` hook (the first answer), or None."""
    for answer in crm.hooks.call(hookspecs.crmkit_service_customer_group, customer_id=customer_id, session=session):
        if answer:
            return str(answer)[:100]
    return None


def rule_for(conn: sa.Connection, priority: str, group: str | None) -> Rule | None:
    """The rule applying to a case: its group's for its priority, else every group's, else None."""
    r = sla_rules.c
    rows = conn.execute(
        sa.select(sla_rules).where(r.priority == priority, r.customer_group.in_(["", group or ""]))
    ).mappings()
    found = {row["customer_group"]: row for row in rows}
    row = found.get(group or "") or found.get("")
    return _rule(row) if row else None


def targets(conn: sa.Connection, priority: str, group: str | None, policy: tuple[int, int]) -> tuple[int, int]:
    """The (first response, resolution) working minutes of a case: the group's rule where it sets them, else
    ``policy`` (the priority's)."""
    rule = rule_for(conn, priority, group)
    if rule is None:
        return policy
    return (rule.first_response_minutes or policy[0], rule.resolution_minutes or policy[1])


def _rule(row: Any) -> Rule:
    return Rule(**{**row, "customer_group": row["customer_group"] or None})


class Sla:
    """SLA rules and the worker's warning and escalation steps (``crm.service.sla``)."""

    def __init__(self, crm: CRM) -> None:
        self._crm = crm

    def rules(self) -> list[Rule]:
        """Every rule, by group (every group first) and priority."""
        with self._crm.reading() as conn:
            rows = conn.execute(sa.select(sla_rules).order_by(sla_rules.c.customer_group, sla_rules.c.priority))
            return [_rule(row) for row in rows.mappings()]

    def set_rule(
        self,
        priority: str,
        *,
        customer_group: str | None = None,
        first_response_minutes: int | None = None,
        resolution_minutes: int | None = None,
        warn_minutes: int | None = None,
        escalate_to: str | None = None,
        escalate_team: str | None = None,
        notify: str | None = None,
        raise_priority: bool = False,
    ) -> Rule:
        """Set (replace) the rule of a group and priority — for cases opened from now on; needs ``service.admin``.
        Bad values are a ``ValidationError`` naming the field (an unknown user or team too)."""
        self._crm.access.require("service.admin")
        if priority not in PRIORITIES:
            raise ValidationError(f"must be one of {', '.join(PRIORITIES)}", field="priority")
        group = (customer_group or "").strip()
        if errors := control_character_errors({"customer_group": group}):
            raise ValidationError(errors)
        if len(group) > 100:
            raise ValidationError("longer than 100 characters", field="customer_group")
        for name, value in (
            ("first_response_minutes", first_response_minutes),
            ("resolution_minutes", resolution_minutes),
            ("warn_minutes", warn_minutes),
        ):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
                raise ValidationError("must be a positive whole number of minutes", field=name)
        if first_response_minutes and resolution_minutes and resolution_minutes < first_response_minutes:
            raise ValidationError("must not be shorter than the first response target", field="resolution_minutes")
        rule = Rule(
            priority,
            group or None,
            first_response_minutes,
            resolution_minutes,
            warn_minutes,
            (escalate_to or "").strip() or None,
            (escalate_team or "").strip() or None,
            (notify or "").strip() or None,
            bool(raise_priority),
        )
        with self._crm.transaction() as session:
            conn = session.connection()
            for field, user in (("escalate_to", rule.escalate_to), ("notify", rule.notify)):
                if user is not None:
                    self._crm.users.require_assignable(conn, [user], field=field)
            if rule.escalate_team is not None:
                try:
                    self._crm.teams.id_of(conn, rule.escalate_team)
                except Exception:  # noqa: BLE001 - NotFound, told as the field's error
                    raise ValidationError(f"no team {rule.escalate_team!r}", field="escalate_team") from None
            key = sla_rules.c.customer_group == group, sla_rules.c.priority == priority
            conn.execute(sla_rules.delete().where(*key))
            conn.execute(sla_rules.insert().values(**{**attrs.asdict(rule), "customer_group": group}))
            self._crm.audit.record(session, "set", "sla_rule", f"{group or '*'} {priority}", changes=attrs.asdict(rule))
        return rule

    def remove_rule(self, priority: str, *, customer_group: str | None = None) -> bool:
        """Remove a rule (True when there was one); needs ``service.admin``."""
        self._crm.access.require("service.admin")
        group = (customer_group or "").strip()
        with self._crm.transaction() as session:
            done = (
                session.connection()
                .execute(
                    sla_rules.delete().where(sla_rules.c.customer_group == group, sla_rules.c.priority == priority)
                )
                .rowcount
            )
            if done:
                self._crm.audit.record(session, "delete", "sla_rule", f"{group or '*'} {priority}")
        return bool(done)

    # -- the worker's steps (called by ``crm.service.run_due`` in its transaction) -------------------------

    def warn(self, session: Session, now: datetime, read: Any) -> list[SlaWarning]:
        """Record once per case and target each target due within its rule's ``warn_minutes`` (not paused, not yet
        missed), calling ``crmkit_service_sla_warning`` and emitting ``case.sla_warning``. ``read(conn, id)`` reads a
        case as the hooks see it."""
        conn = session.connection()
        lead = conn.execute(sa.select(sa.func.max(sla_rules.c.warn_minutes))).scalar()
        if not lead:
            return []
        c = cases.c
        found: list[SlaWarning] = []
        for target, due, warned, pending in (
            ("first_response", c.first_response_due_at, c.first_response_warned_at, c.first_responded_at.is_(None)),
            ("resolution", c.resolution_due_at, c.resolution_warned_at, c.resolution_breached_at.is_(None)),
        ):
            rows: list[Any] = conn.execute(
                sa.select(c.id, c.customer_id, c.priority, c.customer_group, due)
                .where(
                    c.status.in_([s for s in ACTIVE if s != "waiting_on_customer"]),
                    due > now,
                    due <= now + timedelta(minutes=lead),
                    warned.is_(None),
                    pending,
                )
                .order_by(due, c.id)
            ).all()  # type: ignore[assignment]
            rules: dict[tuple[str, str | None], Rule | None] = {}
            for case_id, customer_id, priority, group, due_at in rows:
                rule = rules.setdefault((priority, group), rule_for(conn, priority, group))
                if rule is None or not rule.warn_minutes or due_at > now + timedelta(minutes=rule.warn_minutes):
                    continue
                if not conn.execute(
                    cases.update().where(c.id == case_id, warned.is_(None)).values({warned.key: now})
                ).rowcount:
                    continue  # another worker warned first
                warning = SlaWarning(case_id, customer_id, target, due_at)
                case = read(conn, case_id)
                self._crm.audit.record(
                    session,
                    "sla_warning",
                    "case",
                    case_id,
                    customer_id=customer_id,
                    changes={"target": target, "due_at": due_at.isoformat()},
                )
                self._crm.hooks.call(
                    hookspecs.crmkit_service_sla_warning, case=case, target=target, due_at=due_at, session=session
                )
                self._crm.events.emit(
                    session, "case.sla_warning", _warning_data(warning, case), customer_id=customer_id
                )
                found.append(warning)
        return found

    def escalate(self, session: Session, case: Any, target: str, now: datetime, read: Any, retimed: Retimed) -> Any:
        """Apply the case's rule's escalation to a breach just claimed: reassign, make ``notify`` a watcher, raise
        the priority, move to another team (its targets still to come re-timed on that team's calendar, as a
        reassignment does); audited, ``crmkit_service_case_escalated`` and ``case.escalated``. Returns the case as it is
        now."""
        conn = session.connection()
        rule = rule_for(conn, case.priority, case.customer_group)
        if rule is None or not (rule.escalate_to or rule.escalate_team or rule.notify or rule.raise_priority):
            return case
        values: dict[str, Any] = {}
        if rule.escalate_to and rule.escalate_to != case.assignee:
            values["assignee"] = rule.escalate_to
        if rule.escalate_team and rule.escalate_team != case.team:
            values["team"] = rule.escalate_team
        if rule.raise_priority and case.priority != PRIORITIES[-1]:
            values["priority"] = PRIORITIES[PRIORITIES.index(case.priority) + 1]
        if "team" in values and case.paused_at is None:
            values.update(retimed(conn, case, values["team"], now))
        if values:
            conn.execute(cases.update().where(cases.c.id == case.id).values(**values))
        if rule.notify and rule.notify not in case.watchers:
            conn.execute(case_watchers.insert().values(case_id=case.id, username=rule.notify))
        done = {key: value for key, value in values.items() if not key.endswith("_due_at")}
        actions = {**done, **({"notify": rule.notify} if rule.notify else {})}
        if not actions:
            return case
        self._crm.audit.record(
            session, "escalate", "case", case.id, customer_id=case.customer_id, changes={"target": target, **actions}
        )
        updated = read(conn, case.id)
        self._crm.hooks.call(
            hookspecs.crmkit_service_case_escalated, case=updated, target=target, actions=actions, session=session
        )
        self._crm.events.emit(
            session,
            "case.escalated",
            lambda: {"target": target, "actions": actions, "case": to_jsonable(updated)},
            customer_id=case.customer_id,
        )
        return updated


def _warning_data(warning: SlaWarning, case: Any) -> Callable[[], dict[str, Any]]:
    """The ``case.sla_warning`` event's data (built when the event is delivered)."""
    return lambda: {"target": warning.target, "due_at": warning.due_at.isoformat(), "case": to_jsonable(case)}


def affected_teams(conn: sa.Connection, team: str | None) -> list[str | None]:
    """The teams whose open cases a change of ``team``'s calendar (None: the company's) may move."""
    if team is not None:
        return [team]
    return list(conn.execute(sa.select(cases.c.team).where(cases.c.status.in_(ACTIVE)).distinct()).scalars())


def retime(
    conn: sa.Connection,
    before: Mapping[str | None, WorkingCalendar],
    after: Mapping[str | None, WorkingCalendar],
    now: datetime,
    *,
    changed_from: datetime | None = None,
) -> int:
    """Move the due times of the open cases of each team from its ``before`` calendar to its ``after`` one, keeping
    the working time each target had left from ``now`` (or from when the case paused); targets met or missed stay.
    ``changed_from``: the change only touches time from then on (a day off's start), so earlier due times are not
    read. Row-locked on PostgreSQL (a status change racing it waits); returns how many cases moved."""
    since = max(now, changed_from) if changed_from else now
    # a case paused before a change of the week may have a due time already behind: its clock resumes on the new one
    touched = [cases.c.paused_at.is_not(None)] if changed_from is None else []
    c = cases.c
    moved = 0
    for team, old in before.items():
        new = after[team]
        rows: list[Any] = conn.execute(
            sa.select(c.id, c.paused_at, c.first_responded_at, c.first_response_due_at, c.resolution_due_at)
            .where(
                c.status.in_(ACTIVE),
                c.team.is_(None) if team is None else c.team == team,
                sa.or_(c.first_response_due_at > since, c.resolution_due_at > since, *touched),
            )
            .with_for_update(of=cases)
        ).all()  # type: ignore[assignment]
        if not rows:
            continue
        anchors = [row.paused_at or now for row in rows]
        latest = max(max(row.first_response_due_at or now, row.resolution_due_at or now) for row in rows)
        old_line, margin = old.timeline(min(anchors), latest), 62
        while True:  # the new calendar's timeline must reach the latest new due time: widened in the rare case
            try:
                line = new.timeline(min(anchors), latest + timedelta(days=margin))
                changes = _moved(rows, anchors, old_line, line, changed_from)
                break
            except ValueError:
                if margin >= HORIZON_DAYS:
                    raise ValidationError(f"no working time within {HORIZON_DAYS} days", field="hours") from None
                margin *= 4
        if changes:
            changes.sort(key=lambda change: change["b_id"])  # in the table's order: its pages are visited in sequence
            conn.execute(
                cases.update()
                .where(c.id == sa.bindparam("b_id"))
                .values(first_response_due_at=sa.bindparam("b_first"), resolution_due_at=sa.bindparam("b_resolution")),
                changes,
            )
        moved += len(changes)
    return moved


def _moved(
    rows: list[Any], anchors: list[datetime], old: Timeline, new: Timeline, unchanged: datetime | None
) -> list[dict[str, Any]]:
    """The new due times of the rows whose times move (bind parameters of the batched update). A due time not after
    ``unchanged`` (where a day off begins) cannot move; the offsets of the anchor most rows share are computed once."""
    changes = []
    shifts: dict[datetime, tuple[int, int]] = {}  # anchor → (its offset on the new timeline, on the old one)
    for row, anchor in zip(rows, anchors, strict=True):
        values = {"b_id": row.id, "b_first": row.first_response_due_at, "b_resolution": row.resolution_due_at}
        for key, due, done in (
            ("b_first", row.first_response_due_at, row.first_responded_at is not None),
            ("b_resolution", row.resolution_due_at, False),
        ):
            if due is None or due <= anchor or done or (unchanged is not None and due <= unchanged):
                continue
            if anchor not in shifts:
                shifts[anchor] = (new.offset(anchor), old.offset(anchor))
            on_new, on_old = shifts[anchor]
            values[key] = new.at(on_new + old.offset(due) - on_old)
        if values["b_first"] != row.first_response_due_at or values["b_resolution"] != row.resolution_due_at:
            changes.append(values)
    return changes
