"""What every part of ``crm.loyalty`` holds (:class:`Shared`): loading programs, rules, tiers, members and customers,
and enrolment."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa

from crmkit.errors import Conflict, NotFound
from crmkit.money import Money
from crmkit.plugin_api import beyond_columns, insert_ignore
from crmkit.plugin_api import core_tables as core
from crmkit_loyalty import hookspecs
from crmkit_loyalty.ledger import MEMBER_KEY, Ledger
from crmkit_loyalty.models import ledger, members, programs, rewards, rules, tiers
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


@attrs.frozen
class ProgramConfig:
    """A program with its active rules and its tiers (lowest first) as of ``version`` (``config_version``)."""

    version: int
    program: Program
    rules: tuple[Rule, ...]
    tiers: tuple[Tier, ...]

    def rule(self, kind: str) -> Rule | None:
        """The first active rule of ``kind`` (signup, referral: at most one is active)."""
        return next((rule for rule in self.rules if rule.kind == kind), None)


REFERRED_BY = "referred_by"
#: The reason of the 0-point entry saying a referral bonus is owed to a referrer who is not a member yet.
REFERRAL_OWED = "referral_owed"
CONFIG_CACHE = "crmkit_loyalty.config"
CONFIG_CHANGED = "crmkit_loyalty.config_changed"

_PROGRAMS = sa.select(programs).order_by(programs.c.id)
_ACTIVE_PROGRAMS = _PROGRAMS.where(programs.c.active.is_(True))
_DEFAULT_PROGRAM = _PROGRAMS.limit(1)
_PROGRAM_BY_CODE = sa.select(programs).where(programs.c.code == sa.bindparam("code"))
_PROGRAM_BY_ID = sa.select(programs).where(programs.c.id == sa.bindparam("program_id"))
_RULES = sa.select(rules).where(rules.c.program_id == sa.bindparam("program_id")).order_by(rules.c.id)
_ACTIVE_RULES = _RULES.where(rules.c.active.is_(True))
_TIERS = sa.select(tiers).where(tiers.c.program_id == sa.bindparam("program_id")).order_by(tiers.c.rank)
_ACTIVE_VERSIONS = (
    sa.select(programs.c.id.label("program_id"), programs.c.config_version)
    .where(programs.c.active.is_(True))
    .order_by(programs.c.id)
)
_VERSION = sa.select(programs.c.config_version).where(programs.c.id == sa.bindparam("program_id"))
_BUMP_VERSION = (
    programs.update()
    .where(programs.c.id == sa.bindparam("program_id"))
    .values(config_version=programs.c.config_version + 1)
)
_MEMBER = sa.select(members).where(MEMBER_KEY)
_CUSTOMER_COLUMNS = [
    column.label(f"customer_{column.name}")
    for column in (
        core.customers.c.id,
        core.customers.c.status,
        core.customers.c.birth_date,
        core.customers.c.attributes,
        core.customers.c.merged_into_id,
    )
]
_CUSTOMER = sa.select(*_CUSTOMER_COLUMNS).where(core.customers.c.id == sa.bindparam("customer_id"))
#: The customer with each active program and its version (one row of NULLs when there is none) and the
#: customer's tier in it (``member_id`` NULL: not a member) — what earning from an order reads, in one statement.
_ORDER_CONTEXT = (
    sa.select(
        *_CUSTOMER_COLUMNS,
        *_ACTIVE_VERSIONS.selected_columns,
        members.c.customer_id.label("member_id"),
        members.c.tier.label("member_tier"),
    )
    .select_from(
        core.customers.outerjoin(programs, programs.c.active.is_(True)).outerjoin(
            members, sa.and_(members.c.program_id == programs.c.id, members.c.customer_id == core.customers.c.id)
        )
    )
    .where(core.customers.c.id == sa.bindparam("customer_id"))
    .order_by(programs.c.id)
)


@attrs.frozen
class OrderContext:
    """What earning from an order starts from: the customer, the active programs, the customer's memberships."""

    customer: CustomerFacts
    programs: list[ProgramConfig]
    members: dict[int, sa.Row[Any]]  # program id -> the customer's membership (``member_tier``)


class Shared:
    """What every part of ``crm.loyalty`` holds (one object, composed into each): the CRM, the ledger, and the
    loaders of programs, rules, tiers, customers and members, with the programs' configuration kept across
    transactions; enrolment too, since members and orders both enrol.

    The write paths (earning, enrolment, reversals) read which programs are active, and their
    ``config_version``, once per transaction (in its session's ``info``). Each program's settings,
    rules and tiers are kept across transactions (:class:`ProgramConfig`) tagged with that version:
    every change of a program, its rules or its tiers through ``crm.loyalty.programs`` bumps the version in
    the same transaction (:meth:`changed_config`), so the version read tells whether the kept copy is
    still current — also when another process made the change — and an order reads no program,
    rule or tier row (three statements saved). Changes written to those tables by hand, without
    bumping the version, are not seen until the process restarts.
    """

    def __init__(self, crm: CRM) -> None:
        self.crm = crm
        self.ledger = Ledger(crm)
        self._idents: dict[str | None, ProgramIdent] = {}
        self._configs: dict[int, ProgramConfig] = {}

    # -- programs -----------------------------------------------------------------------

    def program(self, conn: sa.Connection, code: str | None = None) -> Program:
        """The program with ``code``, or the default program (the first one created) when ``code`` is None."""
        query = _DEFAULT_PROGRAM if code is None else _PROGRAM_BY_CODE
        row = conn.execute(query, {"code": code}).mappings().first()
        if row is None:
            if code is None:
                raise NotFound("loyalty program", "(default): create one with `crmkit loyalty programs add`")
            raise NotFound("loyalty program", code)
        return program_from_row(row)

    def programs(self, conn: sa.Connection, *, active_only: bool = False) -> list[Program]:
        """Every program (or the active ones), the default one first."""
        query = _ACTIVE_PROGRAMS if active_only else _PROGRAMS
        return [program_from_row(row) for row in conn.execute(query).mappings()]

    def program_by_id(self, conn: sa.Connection, program_id: int) -> Program:
        """The program with this id (which exists: it comes from a row that references it)."""
        return program_from_row(conn.execute(_PROGRAM_BY_ID, {"program_id": program_id}).mappings().one())

    def ident(self, code: str | None) -> ProgramIdent:
        """A program's id and decimals, cached: the hot paths (balance lookups) need no program query."""
        ident = self._idents.get(code)
        if ident is None:
            with self.crm.reading() as conn:
                program = self.program(conn, code)
            ident = ProgramIdent(program.id, program.code, program.point_decimals)
            self._idents[code] = ident
        return ident

    def rules(self, conn: sa.Connection, program: Program, *, include_inactive: bool = False) -> list[Rule]:
        """The program's earn rules (active ones unless ``include_inactive``) in the order they were added."""
        query = _RULES if include_inactive else _ACTIVE_RULES
        return [rule_from_row(program, row) for row in conn.execute(query, {"program_id": program.id}).mappings()]

    def tiers(self, conn: sa.Connection, program: Program) -> list[Tier]:
        """The program's tiers, lowest first."""
        return [tier_from_row(program, row) for row in conn.execute(_TIERS, {"program_id": program.id}).mappings()]

    def reward(self, conn: sa.Connection, program: Program, code: str) -> Reward:
        """The program's reward with ``code``; ``NotFound`` when there is none."""
        row = (
            conn.execute(sa.select(rewards).where(rewards.c.program_id == program.id, rewards.c.code == code))
            .mappings()
            .first()
        )
        if row is None:
            raise NotFound("reward", code)
        return reward_from_row(program, row)

    def targets(self, program: str | None) -> list[Program]:
        """The named program, or every active program when ``program`` is None (what a job covers)."""
        with self.crm.reading() as conn:
            return [self.program(conn, program)] if program is not None else self.programs(conn, active_only=True)

    # -- the same, for the write paths (see the class docstring) ---------------------------

    def forget_programs(self) -> None:
        """Drop the kept program ids and configurations (after a program is created: a database rebuilt under
        this CRM may reuse program ids)."""
        self._idents.clear()
        self._configs.clear()

    def forget_config(self, session: Session) -> None:
        """Drop the transaction's programs and configurations (before changing them)."""
        session.info.pop(CONFIG_CACHE, None)

    def changed_config(self, session: Session, program_id: int) -> None:
        """Bump the program's ``config_version``: kept rules and tiers of it are stale from this commit on.

        The transaction keeps nothing for later ones from then on: it might still roll back.
        """
        session.connection().execute(_BUMP_VERSION, {"program_id": program_id})
        session.info[CONFIG_CHANGED] = True

    def active_programs(self, session: Session) -> list[Program]:
        """The active programs (which ones: read once per transaction)."""
        cache = session.info.get(CONFIG_CACHE)
        if cache is None or "active" not in cache:
            self._remember_versions(session, session.connection().execute(_ACTIVE_VERSIONS).all())
            cache = session.info[CONFIG_CACHE]
        return [self.config_of(session, program_id).program for program_id in cache["active"]]

    def _remember_versions(self, session: Session, rows: Sequence[sa.Row[Any]]) -> list[ProgramConfig]:
        """Keep ``(program_id, config_version)`` rows of the active programs, just read, as the transaction's."""
        cache = session.info.setdefault(CONFIG_CACHE, {})
        cache["active"] = [row.program_id for row in rows]
        cache.setdefault("versions", {}).update((row.program_id, row.config_version) for row in rows)
        return [self.config_of(session, row.program_id) for row in rows]

    def config_of(self, session: Session, program_id: int) -> ProgramConfig:
        """The program with its rules and tiers: the kept copy when its version is the one this transaction read
        (a program the transaction has not listed as active has its version read first: one statement)."""
        cache = session.info.setdefault(CONFIG_CACHE, {})
        config = cache.get(("config", program_id))
        if config is None:
            versions = cache.setdefault("versions", {})
            if program_id not in versions:
                versions[program_id] = session.connection().execute(_VERSION, {"program_id": program_id}).scalar_one()
            config = self._configs.get(program_id)
            if config is None or config.version != versions[program_id]:
                config = self._load_config(session.connection(), program_id)
                if not session.info.get(CONFIG_CHANGED):
                    self._configs[program_id] = config
            cache[("config", program_id)] = config
        return config

    def _load_config(self, conn: sa.Connection, program_id: int) -> ProgramConfig:
        """Read a program, then its rules and tiers, tagged with the version read with the program.

        A change committed in between makes the copy newer than its tag — which costs one more
        read later — never an older copy passing for the current one.
        """
        row = conn.execute(_PROGRAM_BY_ID, {"program_id": program_id}).mappings().one()
        program = program_from_row(row)
        return ProgramConfig(
            row["config_version"], program, tuple(self.rules(conn, program)), tuple(self.tiers(conn, program))
        )

    def tiers_of(self, session: Session, program: Program) -> Sequence[Tier]:
        """The program's tiers, lowest first, as kept for the transaction (see the class docstring)."""
        return self.config_of(session, program.id).tiers

    # -- customers and members ------------------------------------------------------------

    def customer(
        self, conn: sa.Connection, customer_id: int, *, active: bool = True, permission: str | None = None
    ) -> CustomerFacts:
        """The customer (a merged-away id gives the one it was merged into); ``Conflict`` if erased and ``active``.

        With ``permission``, the customer must be within the acting user's scope of it: ``NotFound`` (for the
        id asked) when it is not, ``PermissionDenied`` when the user may read the customer but not do this.
        """
        customer = _facts(self._customer_rows(conn, _CUSTOMER, customer_id)[0])
        if permission is not None:
            self._require_scope(conn, customer_id, customer.id, permission)
        if active and customer.status != "active":
            raise Conflict(f"customer {customer.id} is {customer.status}: no loyalty changes")
        return customer

    def _require_scope(self, conn: sa.Connection, asked: int, customer_id: int, permission: str) -> None:
        """Require ``permission`` on ``customer_id`` (the customer ``asked`` resolved to); ``NotFound`` names ``asked``."""
        try:
            self.crm.access.require_customer(conn, customer_id, permission)
        except NotFound:
            raise NotFound("customer", asked) from None

    def order_context(self, session: Session, customer_id: int) -> OrderContext:
        """The order's customer (following merges), the active programs (kept as the transaction's, see
        :meth:`active_programs`) and the customer's memberships: one statement."""
        rows = self._customer_rows(session.connection(), _ORDER_CONTEXT, customer_id)
        listed = [row for row in rows if row.program_id is not None]
        return OrderContext(
            _facts(rows[0]),
            self._remember_versions(session, listed),
            {row.program_id: row for row in listed if row.member_id is not None},
        )

    def _customer_rows(self, conn: sa.Connection, query: sa.Select[Any], customer_id: int) -> Sequence[sa.Row[Any]]:
        """The rows of ``query`` (``customer_*`` columns, parameter ``customer_id``) for the customer, or for the one
        a merged-away customer was merged into; ``NotFound`` when there is no such customer."""
        if beyond_columns(customer_id):
            raise NotFound("customer", customer_id)
        seen: set[int] = set()
        current = customer_id
        while True:
            rows = conn.execute(query, {"customer_id": current}).all()
            if not rows:
                raise NotFound("customer", customer_id)
            merged_into = rows[0].customer_merged_into_id
            if merged_into is None or merged_into in seen:
                return rows
            seen.add(current)
            current = merged_into

    def member(self, conn: sa.Connection, program: Program, customer_id: int) -> Member | None:
        """The customer's membership of the program, or None."""
        row = conn.execute(_MEMBER, {"member": customer_id, "program": program.id}).mappings().first()
        return None if row is None else member_from_row(program, row)

    # -- enrolment ------------------------------------------------------------------------------

    def enroll(self, session: Session, program: Program, customer_id: int, now: datetime, *, owed: bool = True) -> bool:
        """Create the balance row (lowest tier), pay the sign-up bonus and (``owed``) referral bonuses owed to the
        customer while not a member; False when already a member."""
        conn = session.connection()
        tiers = self.tiers_of(session, program)
        lowest = tiers[0] if tiers else None
        row = {
            "customer_id": customer_id,
            "program_id": program.id,
            "points": 0,
            "tier": lowest.code if lowest else None,
            "tier_since": now if lowest else None,
            "enrolled_at": now,
        }
        created = insert_ignore(conn, members, row, ("customer_id", "program_id"), members.c.customer_id)
        if created is None:
            return False
        if lowest is not None:
            self.crm.hooks.call(
                hookspecs.crmkit_tier_changed,
                customer_id=customer_id,
                program=program,
                old_tier=None,
                new_tier=lowest,
                session=session,
            )
        signup = self.config_of(session, program.id).rule("signup")
        if signup is not None and signup.bonus_points:
            self.ledger.post(
                session,
                program,
                customer_id,
                program.to_units(signup.bonus_points),
                kind="earn",
                reason="signup",
                source_kind="customer",
                source_id=customer_id,
                now=now,
                note="sign-up bonus",
                expires_at=program.expiry_from(now),
            )
        if owed:
            self._pay_owed_referrals(session, program, customer_id, now)
        return True

    def _pay_owed_referrals(self, session: Session, program: Program, customer_id: int, now: datetime) -> None:
        """Pay a new member the referral bonuses they were owed while not a member (``referral_owed`` entries), at the
        program's referral bonus as it is when they join."""
        c = ledger.c
        owed = (
            session.connection()
            .execute(
                sa.select(c.source_id, c.order_id)
                .where(c.customer_id == customer_id, c.program_id == program.id, c.reason == REFERRAL_OWED)
                .order_by(c.id)
            )
            .all()
        )
        referral = self.config_of(session, program.id).rule("referral") if owed else None
        if referral is None or not referral.bonus_points:
            return
        units = program.to_units(referral.bonus_points)
        for referred, order_id in owed:
            note = f"referred customer {referred} (owed since their first order, paid on enrolment)"
            self.pay_referral(session, program, customer_id, referred, order_id, units, now, note)

    def pay_referral(
        self,
        session: Session,
        program: Program,
        referrer: int,
        referred: Any,
        order_id: Any,
        units: int,
        now: datetime,
        note: str,
    ) -> None:
        """Credit ``referrer`` the referral bonus (``units``) for ``referred``'s first order, ``order_id``."""
        self.ledger.post(
            session,
            program,
            referrer,
            units,
            kind="earn",
            reason="referral",
            source_kind="customer",
            source_id=referred,
            now=now,
            order_id=order_id,
            note=note,
            expires_at=program.expiry_from(now),
        )


def _facts(row: sa.Row[Any]) -> CustomerFacts:
    return CustomerFacts(row.customer_id, row.customer_status, row.customer_birth_date, row.customer_attributes or {})


def tier_named(tiers: Sequence[Tier], code: str | None) -> Tier | None:
    """The tier with ``code``, else the lowest tier (None when the program has no tiers)."""
    return next((tier for tier in tiers if tier.code == code), tiers[0] if tiers else None)


def program_from_row(row: Mapping[str, Any]) -> Program:
    """A ``loyalty_programs`` row as a :class:`Program`."""
    return Program(**{field.name: row[field.name] for field in attrs.fields(Program)})


def rule_from_row(program: Program, row: Mapping[str, Any]) -> Rule:
    """A ``loyalty_rules`` row as a :class:`Rule` (bonus points in the program's points)."""
    bonus = row["bonus_points"]
    return Rule(
        id=row["id"],
        program=program.code,
        kind=row["kind"],
        target=row["target"],
        multiplier=row["multiplier"],
        bonus_points=None if bonus is None else program.points(bonus),
        amount_minor=row["amount_minor"],
        starts_on=row["starts_on"],
        ends_on=row["ends_on"],
        active=row["active"],
    )


def tier_from_row(program: Program, row: Mapping[str, Any]) -> Tier:
    """A ``loyalty_tiers`` row as a :class:`Tier` (threshold in points, or in minor units of spend)."""
    threshold = program.points(row["threshold"]) if program.tier_basis == "points" else row["threshold"]
    return Tier(code=row["code"], name=row["name"], rank=row["rank"], threshold=threshold, multiplier=row["multiplier"])


def member_from_row(program: Program, row: Mapping[str, Any]) -> Member:
    """A ``loyalty_members`` row as a :class:`Member`."""
    return Member(
        customer_id=row["customer_id"],
        program=program.code,
        points=program.points(row["points"]),
        tier=row["tier"],
        tier_since=row["tier_since"],
        enrolled_at=row["enrolled_at"],
    )


def reward_from_row(program: Program, row: Mapping[str, Any]) -> Reward:
    """A ``loyalty_rewards`` row as a :class:`Reward`."""
    value = None if row["value_minor"] is None else Money(program.currency, row["value_minor"])
    return Reward(
        id=row["id"],
        program=program.code,
        code=row["code"],
        name=row["name"],
        kind=row["kind"],
        points_cost=program.points(row["points_cost"]),
        stock=row["stock"],
        value=value,
        description=row["description"],
        active=row["active"],
    )
