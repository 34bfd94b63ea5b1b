"""Routing (``crm.service.routing``): which team and agent a new case goes to when the caller names neither.

Rules are tried in order (``position``, then age); the first whose every given criterion matches — ``category``,
``channel``, ``customer_group`` (from the ``crmkit_service_customer_group`` hook, e.g. a loyalty tier), the
customer's ``language`` — gives the case its team and, by the rule's ``strategy``, an agent: ``round_robin``
(the next active member after the last one given), ``least_loaded`` (the fewest active cases; ties in turn) or
``team`` (the team's queue, no agent). Only agents on shift now are picked — their own shift
(:meth:`Routing.set_shift`), else the team's working hours on its calendar; with nobody on shift the case waits
in the team's queue. The team's cursor row is locked while picking, so openings racing in several processes
share the agents out evenly and never give one case twice.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from datetime import datetime, time
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa

from crmkit import NotFound, ValidationError
from crmkit.plugin_api import control_character_errors, customers, insert_ignore
from crmkit_service.businesshours import WEEKDAYS, DayHours, WorkingCalendar, check_week
from crmkit_service.models import agent_shifts, cases, routing_cursors, routing_rules

if TYPE_CHECKING:
    from crmkit import CRM
    from crmkit_service.service import ServiceService

ADMIN = "service.admin"
STRATEGIES = ("round_robin", "least_loaded", "team")
#: The languages a customer is served in (the console's and the canned replies').
LANGUAGES = ("vi", "en")
CRITERIA = ("category", "channel", "customer_group", "language")


@attrs.frozen
class RoutingRule:
    """A routing rule: cases matching every criterion given (None matches anything) go to ``team``."""

    id: int
    position: int
    category: str | None
    channel: str | None
    customer_group: str | None
    language: str | None
    team: str
    strategy: str
    created_at: datetime


def customer_language(crm: CRM, conn: sa.Connection, customer_id: int) -> str:
    """The language a customer is served in: their ``language`` attribute when it is ``vi`` or ``en``, else
    Vietnamese for customers in Vietnam (or of no known country) and English for the others."""
    row = conn.execute(
        sa.select(customers.c.country, customers.c.attributes).where(customers.c.id == customer_id)
    ).first()
    if row is None:
        return "vi"
    chosen = (row.attributes or {}).get("language") if isinstance(row.attributes, Mapping) else None
    if chosen in LANGUAGES:
        return str(chosen)
    return "vi" if row.country in (None, "VN") else "en"


class Routing:
    """``crm.service.routing``: the rules, agents' shifts, and the pick made when a case is opened."""

    def __init__(self, crm: CRM, service: ServiceService) -> None:
        self._crm = crm
        self._service = service

    def add(
        self,
        team: str,
        *,
        category: str | None = None,
        channel: str | None = None,
        customer_group: str | None = None,
        language: str | None = None,
        strategy: str = "round_robin",
        position: int | None = None,
    ) -> RoutingRule:
        """Add a rule (last unless ``position`` says where: the rules from there on move one down); needs
        ``service.admin``. An unknown team, channel, language or strategy is a ``ValidationError`` naming it."""
        self._crm.access.require(ADMIN)
        given = {"category": category, "channel": channel, "customer_group": customer_group, "language": language}
        criteria = {key: (value.strip() or None) if isinstance(value, str) else value for key, value in given.items()}
        if errors := control_character_errors({k: v for k, v in criteria.items() if v is not None}):
            raise ValidationError(errors)
        if strategy not in STRATEGIES:
            raise ValidationError(f"must be one of {', '.join(STRATEGIES)}", field="strategy")
        if criteria["channel"] is not None and criteria["channel"] not in self._crm.channels:
            raise ValidationError(f"must be one of {', '.join(self._crm.channels)}", field="channel")
        if criteria["language"] is not None and criteria["language"] not in LANGUAGES:
            raise ValidationError(f"must be one of {', '.join(LANGUAGES)}", field="language")
        for key, most in (("category", 100), ("customer_group", 100)):
            if len(criteria[key] or "") > most:
                raise ValidationError(f"longer than {most} characters", field=key)
        if position is not None and (not isinstance(position, int) or isinstance(position, bool) or position < 1):
            raise ValidationError("must be a whole number from 1", field="position")
        with self._crm.transaction() as session:
            conn = session.connection()
            try:
                self._crm.teams.id_of(conn, team)
            except NotFound:
                raise ValidationError(f"no team {team!r}", field="team") from None
            last = conn.execute(sa.select(sa.func.max(routing_rules.c.position))).scalar() or 0
            place = min(position or last + 1, last + 1)
            if place <= last:  # make room: the rule at that place and those after it are tried after the new one
                rules = routing_rules.c
                conn.execute(routing_rules.update().where(rules.position >= place).values(position=rules.position + 1))
            row: dict[str, Any] = {
                **criteria,
                "team": team,
                "strategy": strategy,
                "position": place,
                "created_at": self._crm.now(),
            }
            rule_id: int = conn.execute(routing_rules.insert().values(**row).returning(routing_rules.c.id)).scalar_one()
            _cursor(conn, team)
            self._crm.audit.record(session, "create", "routing_rule", rule_id, changes=dict(row, created_at=None))
        return RoutingRule(id=rule_id, **row)

    def list(self) -> list[RoutingRule]:
        """The rules in the order they are tried."""
        with self._crm.reading() as conn:
            rows = conn.execute(
                sa.select(routing_rules).order_by(routing_rules.c.position, routing_rules.c.id)
            ).mappings()
            return [RoutingRule(**row) for row in rows]

    def remove(self, rule_id: int) -> None:
        """Delete a rule (``NotFound`` when there is none); needs ``service.admin``."""
        self._crm.access.require(ADMIN)
        with self._crm.transaction() as session:
            gone = session.connection().execute(routing_rules.delete().where(routing_rules.c.id == rule_id)).rowcount
            if not gone:
                raise NotFound("routing rule", rule_id)
            self._crm.audit.record(session, "delete", "routing_rule", rule_id)

    def set_shift(self, username: str, week: Mapping[int, DayHours] | None) -> tuple[DayHours, ...] | None:
        """Set an agent's own shift (``{weekday: (opens, closes)}``, minutes after local midnight, 0 = Monday;
        days left out are off), or None to follow their team's hours; needs ``service.admin``."""
        self._crm.access.require(ADMIN)
        checked = None
        if week is not None:
            try:
                checked = check_week(week)
            except ValueError as exc:
                raise ValidationError(str(exc), field="hours") from None
            if any(span is not None and len(span) != 2 for span in checked):
                raise ValidationError("a shift is one interval a day (opens, closes)", field="hours")
        with self._crm.transaction() as session:
            conn = session.connection()
            self._crm.users.require_assignable(conn, [username], field="username")
            conn.execute(agent_shifts.delete().where(agent_shifts.c.username == username))
            for day, span in enumerate(checked or ()):
                if span is not None:
                    conn.execute(
                        agent_shifts.insert().values(username=username, weekday=day, opens=span[0], closes=span[1])
                    )
            self._crm.audit.record(
                session,
                "set",
                "agent_shift",
                username,
                changes={"week": [list(span) if span else None for span in checked] if checked else None},
            )
        return checked

    # -- the pick ----------------------------------------------------------------------------------------

    def route(
        self,
        conn: sa.Connection,
        customer_id: int,
        channel: str,
        category: str | None,
        customer_group: str | None,
        now: datetime,
    ) -> dict[str, Any]:
        """``{"team": …, "assignee": …}`` for a new case by the first matching rule (``{}`` when none matches),
        inside the opening's transaction."""
        rules = conn.execute(sa.select(routing_rules).order_by(routing_rules.c.position, routing_rules.c.id)).all()
        if not rules:
            return {}
        facts = {
            "category": category,
            "channel": channel,
            "customer_group": customer_group,
            "language": customer_language(self._crm, conn, customer_id),
        }
        for rule in rules:
            if all(getattr(rule, key) in (None, facts[key]) for key in CRITERIA):
                return {"team": rule.team, "assignee": self._pick(conn, rule.team, rule.strategy, now)}
        return {}

    def _pick(self, conn: sa.Connection, team: str, strategy: str, now: datetime) -> str | None:
        """The agent of ``team`` the strategy gives the case to (None: the team's queue), moving the team's cursor."""
        if strategy == "team":
            return None
        cursor = routing_cursors.c
        _cursor(conn, team)
        previous = conn.execute(  # the row lock serializes the picks of one team across processes
            sa.select(cursor.last_assignee).where(cursor.team == team).with_for_update()
        ).scalar()
        members = self._on_shift(conn, team, now)
        if not members:
            return None
        after = [m for m in members if previous is None or m > previous] + [
            m for m in members if previous is not None and m <= previous
        ]  # the members in turn, starting after the last one given
        if strategy == "least_loaded":
            from crmkit_service.service import ACTIVE  # service.py imports this module

            load: dict[str, int] = {}
            for row in conn.execute(
                sa.select(cases.c.assignee, sa.func.count().label("active"))
                .where(cases.c.assignee.in_(members), cases.c.status.in_(ACTIVE))
                .group_by(cases.c.assignee)
            ).mappings():
                load[row["assignee"]] = row["active"]
            chosen = min(after, key=lambda m: load.get(m, 0))
        else:
            chosen = after[0]
        conn.execute(routing_cursors.update().where(cursor.team == team).values(last_assignee=chosen))
        return str(chosen)

    def _on_shift(self, conn: sa.Connection, team: str, now: datetime) -> builtins.list[str]:
        """The team's active members working at ``now``, by username."""
        members = [user.username for user in self._crm.users.list(active=True, team=team)]
        if not members:
            return []
        team_calendar = self._service._calendar(conn, team)
        shifts: dict[str, dict[int, DayHours]] = {}
        for row in conn.execute(sa.select(agent_shifts).where(agent_shifts.c.username.in_(members))):
            shifts.setdefault(row.username, {})[row.weekday] = (row.opens, row.closes)
        own = {name: _shift_calendar(team_calendar, week) for name, week in shifts.items()}
        return [m for m in members if _working(own.get(m, team_calendar), now)]


def _cursor(conn: sa.Connection, team: str) -> None:
    """Make the team's round-robin cursor row unless it exists (two makers at once: one row)."""
    insert_ignore(conn, routing_cursors, {"team": team, "last_assignee": None}, ["team"], routing_cursors.c.team)


def _shift_calendar(team: WorkingCalendar, week: Mapping[int, DayHours]) -> WorkingCalendar:
    """An agent's own shift on the team's calendar: its time zone and days off."""
    # attrs types a converter=tuple field's parameter as Iterable[_T_co], which no argument satisfies
    return WorkingCalendar(team.zone, check_week(week), team.day_off)  # type: ignore[arg-type]


def _working(calendar: WorkingCalendar, now: datetime) -> bool:
    day = now.astimezone(calendar.zone).date()
    return any(opens <= now < closes for opens, closes in calendar.windows(day))


def shift_week(days: Sequence[str], opens: time | None, closes: time | None) -> dict[int, DayHours] | None:
    """The week of a shift given as the same hours on named days (``mon``…``sun``); None for no days (the agent
    follows the team's hours). ``ValidationError`` naming ``hours`` when days come without both times."""
    if not days:
        return None
    if opens is None or closes is None:
        raise ValidationError("give the hours the shift starts and ends", field="hours")
    span = (opens.hour * 60 + opens.minute, closes.hour * 60 + closes.minute)
    return {WEEKDAYS.index(day): span for day in days}
