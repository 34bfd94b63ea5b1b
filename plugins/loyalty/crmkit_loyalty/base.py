"""What every part of ``crm.loyalty`` shares: loading programs, rules, tiers, members and customers."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from datetime import date
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa

from crmkit.core import tables as core
from crmkit.errors import Conflict, NotFound
from crmkit.money import Money
from crmkit_loyalty.ledger import MEMBER_KEY, Ledger
from crmkit_loyalty.models import members, programs, rewards, rules, tiers
from crmkit_loyalty.records import Member, Points, Program, Reward, Rule, Tier, points_of

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from crmkit import CRM


@attrs.frozen
class CustomerFacts:
    """What loyalty reads about a customer from the core: status, birth date and attributes."""

    id: int
    status: str
    birth_date: date | None
    attributes: Mapping[str, Any]


@attrs.frozen
class ProgramIdent:
    """The parts of a program that never change once it exists (safe to cache): id, code, decimals."""

    id: int
    code: str
    point_decimals: int

    def points(self, units: int) -> Points:
        """Integer units as the points callers see."""
        return points_of(units, self.point_decimals)


CONFIG_CACHE = "crmkit_loyalty.config"

_PROGRAMS = sa.select(programs).order_by(programs.c.id)
_ACTIVE_PROGRAMS = _PROGRAMS.where(programs.c.active.is_(True))
_DEFAULT_PROGRAM = _PROGRAMS.limit(1)
_PROGRAM_BY_CODE = sa.select(programs).where(programs.c.code == sa.bindparam("code"))
_PROGRAM_BY_ID = sa.select(programs).where(programs.c.id == sa.bindparam("program_id"))
_RULES = sa.select(rules).where(rules.c.program_id == sa.bindparam("program_id")).order_by(rules.c.id)
_ACTIVE_RULES = _RULES.where(rules.c.active.is_(True))
_TIERS = sa.select(tiers).where(tiers.c.program_id == sa.bindparam("program_id")).order_by(tiers.c.rank)
_MEMBER = sa.select(members).where(MEMBER_KEY)
_CUSTOMER = (sa.select(core.customers.c.id, core.customers.c.status, core.customers.c.birth_date,
                       core.customers.c.attributes, core.customers.c.merged_into_id)
             .where(core.customers.c.id == sa.bindparam("customer_id")))


class ServiceBase:
    """State and loaders shared by the configuration, member, batch and report parts of the service.

    Programs, rules and tiers read by the write paths are cached for one transaction (in its
    session's ``info``): an import creating thousands of customers reads them once per batch.
    Configuration changes forget that cache.
    """

    def __init__(self, crm: CRM) -> None:
        self._crm = crm
        self._ledger = Ledger(crm)
        self._idents: dict[str | None, ProgramIdent] = {}

    # -- programs -----------------------------------------------------------------------

    def _program(self, conn: sa.Connection, code: str | None = None) -> Program:
        """The program with ``code``, or the default program (the first one created) when ``code`` is None."""
        query = _DEFAULT_PROGRAM if code is None else _PROGRAM_BY_CODE
        row = conn.execute(query, {"code": code}).mappings().first()
        if row is None:
            if code is None:
                raise NotFound("loyalty program", "(default): create one with `crmkit loyalty programs add`")
            raise NotFound("loyalty program", code)
        return program_from_row(row)

    def _programs(self, conn: sa.Connection, *, active_only: bool = False) -> list[Program]:
        query = _ACTIVE_PROGRAMS if active_only else _PROGRAMS
        return [program_from_row(row) for row in conn.execute(query).mappings()]

    def _program_by_id(self, conn: sa.Connection, program_id: int) -> Program:
        return program_from_row(conn.execute(_PROGRAM_BY_ID, {"program_id": program_id}).mappings().one())

    def _ident(self, code: str | None) -> ProgramIdent:
        """A program's id and decimals, cached: the hot paths (balance lookups) need no program query."""
        ident = self._idents.get(code)
        if ident is None:
            with self._crm.reading() as conn:
                program = self._program(conn, code)
            ident = ProgramIdent(program.id, program.code, program.point_decimals)
            self._idents[code] = ident
        return ident

    def _rules(self, conn: sa.Connection, program: Program, *, include_inactive: bool = False) -> list[Rule]:
        query = _RULES if include_inactive else _ACTIVE_RULES
        return [rule_from_row(program, row) for row in conn.execute(query, {"program_id": program.id}).mappings()]

    def _tiers(self, conn: sa.Connection, program: Program) -> list[Tier]:
        """The program's tiers, lowest first."""
        return [tier_from_row(program, row) for row in conn.execute(_TIERS, {"program_id": program.id}).mappings()]

    def _reward(self, conn: sa.Connection, program: Program, code: str) -> Reward:
        row = conn.execute(sa.select(rewards).where(rewards.c.program_id == program.id, rewards.c.code == code)
                           ).mappings().first()
        if row is None:
            raise NotFound("reward", code)
        return reward_from_row(program, row)

    # -- the same, cached for one transaction ----------------------------------------------

    def _cached(self, session: Session, key: Hashable, load: Callable[[], Any]) -> Any:
        cache = session.info.setdefault(CONFIG_CACHE, {})
        if key not in cache:
            cache[key] = load()
        return cache[key]

    def _forget_config(self, session: Session) -> None:
        """Drop the transaction's cached programs, rules and tiers (after changing them)."""
        session.info.pop(CONFIG_CACHE, None)

    def _active_programs(self, session: Session) -> list[Program]:
        return self._cached(session, "programs", lambda: self._programs(session.connection(), active_only=True))

    def _rules_of(self, session: Session, program: Program) -> list[Rule]:
        return self._cached(session, ("rules", program.id), lambda: self._rules(session.connection(), program))

    def _tiers_of(self, session: Session, program: Program) -> list[Tier]:
        return self._cached(session, ("tiers", program.id), lambda: self._tiers(session.connection(), program))

    # -- customers and members ------------------------------------------------------------

    def _customer(self, conn: sa.Connection, customer_id: int, *, active: bool = True) -> CustomerFacts:
        """The customer (a merged-away id gives the one it was merged into); ``Conflict`` if erased and ``active``."""
        seen: set[int] = set()
        current = customer_id
        while True:
            row = conn.execute(_CUSTOMER, {"customer_id": current}).first()
            if row is None:
                raise NotFound("customer", customer_id)
            if row.merged_into_id is None or row.merged_into_id in seen:
                break
            seen.add(current)
            current = row.merged_into_id
        if active and row.status != "active":
            raise Conflict(f"customer {row.id} is {row.status}: no loyalty changes")
        return CustomerFacts(row.id, row.status, row.birth_date, row.attributes or {})

    def _member(self, conn: sa.Connection, program: Program, customer_id: int) -> Member | None:
        row = conn.execute(_MEMBER, {"member": customer_id, "program": program.id}).mappings().first()
        return None if row is None else member_from_row(program, row)


def program_from_row(row: Mapping[str, Any]) -> Program:
    """A ``loyalty_programs`` row as a :class:`Program`."""
    return Program(**{field.name: row[field.name] for field in attrs.fields(Program)})


def rule_from_row(program: Program, row: Mapping[str, Any]) -> Rule:
    """A ``loyalty_rules`` row as a :class:`Rule` (bonus points in the program's points)."""
    bonus = row["bonus_points"]
    return Rule(id=row["id"], program=program.code, kind=row["kind"], target=row["target"],
                multiplier=row["multiplier"], bonus_points=None if bonus is None else program.points(bonus),
                amount_minor=row["amount_minor"], starts_on=row["starts_on"], ends_on=row["ends_on"], active=row["active"])


def tier_from_row(program: Program, row: Mapping[str, Any]) -> Tier:
    """A ``loyalty_tiers`` row as a :class:`Tier` (threshold in points, or in minor units of spend)."""
    threshold = program.points(row["threshold"]) if program.tier_basis == "points" else row["threshold"]
    return Tier(code=row["code"], name=row["name"], rank=row["rank"], threshold=threshold,
                multiplier=row["multiplier"])


def member_from_row(program: Program, row: Mapping[str, Any]) -> Member:
    """A ``loyalty_members`` row as a :class:`Member`."""
    return Member(customer_id=row["customer_id"], program=program.code, points=program.points(row["points"]),
                  tier=row["tier"], tier_since=row["tier_since"], enrolled_at=row["enrolled_at"])


def reward_from_row(program: Program, row: Mapping[str, Any]) -> Reward:
    """A ``loyalty_rewards`` row as a :class:`Reward`."""
    value = None if row["value_minor"] is None else Money(program.currency, row["value_minor"])
    return Reward(id=row["id"], program=program.code, code=row["code"], name=row["name"], kind=row["kind"],
                  points_cost=program.points(row["points_cost"]), stock=row["stock"], value=value,
                  description=row["description"], active=row["active"])

