"""``crm.loyalty.programs``: programs, earn rules, tiers and the rewards catalogue (validated, audited writes)."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import marshmallow
import sqlalchemy as sa
from marshmallow import fields, validate

from crmkit.errors import Conflict, NotFound, ValidationError
from crmkit.money import MAX_MINOR
from crmkit.plugin_api import CleanSchema
from crmkit.vncalendar import FOUNDING_DAY, check_occasion, founding_day
from crmkit_loyalty.base import reward_from_row, rule_from_row
from crmkit_loyalty.models import programs, rewards, rules, tiers
from crmkit_loyalty.permissions import PROGRAMS_MANAGE
from crmkit_loyalty.records import MAX_BALANCE, MAX_UNITS, ROUNDING, Program, Reward, Rule, Tier

if TYPE_CHECKING:
    from crmkit_loyalty.base import Shared
    from crmkit_loyalty.tiering import Tiering

RULE_KINDS = ("product", "category", "min_order", "birthday", "occasion", "signup", "referral")
REWARD_KINDS = ("product", "service", "discount")
#: Member, Silver, Gold, Diamond: thresholds in qualifying points over the window (converted for spend-based programs).
DEFAULT_TIERS: tuple[Mapping[str, Any], ...] = (
    {"code": "member", "name": "Member", "threshold": 0, "multiplier": Decimal("1")},
    {"code": "silver", "name": "Silver", "threshold": 500, "multiplier": Decimal("1.1")},
    {"code": "gold", "name": "Gold", "threshold": 2000, "multiplier": Decimal("1.25")},
    {"code": "diamond", "name": "Diamond", "threshold": 5000, "multiplier": Decimal("1.5")},
)
IMMUTABLE = ("code", "currency", "point_decimals")

_CODE = validate.Regexp(r"^[a-z0-9][a-z0-9_-]{0,49}$", error="use 1-50 lower-case letters, digits, '-' or '_'")
#: Bounds of the numbers a program, rule, tier or reward holds: far beyond any real use, well inside the columns
#: (and what they multiply into: an order's points) so that no input overflows.
_RATE = validate.Range(min=0, min_inclusive=False, max=1000)  # earn_points per earn amount, multipliers
_POINTS = validate.Range(min=0, min_inclusive=False, max=MAX_UNITS)
_MINOR = validate.Range(min=0, max=MAX_MINOR)
_DAYS = validate.Range(min=1, max=36_500)


class ProgramSchema(CleanSchema):
    """A program as given by a caller or the CLI (defaults: VND, 1 point per 10.000, floor, 365-day expiry)."""

    code = fields.String(required=True, validate=_CODE)
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    currency = fields.String(
        load_default="VND", validate=validate.Regexp(r"^[A-Za-z]{3}$", error="a 3-letter ISO code")
    )
    earn_points = fields.Decimal(load_default=Decimal(1), validate=_RATE)
    earn_amount_minor = fields.Integer(load_default=10000, validate=validate.Range(min=1, max=MAX_MINOR))
    rounding = fields.String(load_default="floor", validate=validate.OneOf(ROUNDING))
    point_decimals = fields.Integer(load_default=0, validate=validate.Range(min=0, max=3))
    include_tax = fields.Boolean(load_default=True)
    expiry_days = fields.Integer(load_default=365, allow_none=True, validate=_DAYS)
    tier_basis = fields.String(load_default="points", validate=validate.OneOf(("points", "spend")))
    tier_window_days = fields.Integer(load_default=365, validate=_DAYS)
    point_value_minor = fields.Integer(load_default=None, allow_none=True, validate=_MINOR)
    auto_enroll = fields.Boolean(load_default=True)
    active = fields.Boolean(load_default=True)

    @marshmallow.post_load
    def _upper(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        if "currency" in data:
            data["currency"] = data["currency"].upper()
        return data


class RuleSchema(CleanSchema):
    """An earn rule; which fields are required depends on ``kind``."""

    kind = fields.String(required=True, validate=validate.OneOf(RULE_KINDS))
    target = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=100))
    multiplier = fields.Decimal(load_default=None, allow_none=True, validate=_RATE)
    bonus_points = fields.Decimal(load_default=None, allow_none=True, validate=_POINTS)
    amount_minor = fields.Integer(load_default=None, allow_none=True, validate=_MINOR)
    starts_on = fields.Date(load_default=None, allow_none=True)
    ends_on = fields.Date(load_default=None, allow_none=True)

    @marshmallow.validates_schema
    def _by_kind(self, data: dict[str, Any], **kwargs: Any) -> None:
        kind = data.get("kind")
        needs = {
            "product": ("target", "multiplier"),
            "category": ("target", "multiplier"),
            "min_order": ("amount_minor",),
            "occasion": ("target",),
            "signup": ("bonus_points",),
            "referral": ("bonus_points",),
        }.get(kind, ())
        errors = {name: [f"required for a {kind} rule"] for name in needs if data.get(name) is None}
        if kind in ("birthday", "occasion") and data.get("multiplier") is None and data.get("bonus_points") is None:
            errors["multiplier"] = [f"a {kind} rule needs a multiplier or bonus_points"]
        if kind == "occasion" and data.get("target"):
            try:
                check_occasion(data["target"])
            except ValueError as exc:
                errors["target"] = [str(exc)]
        if data.get("starts_on") and data.get("ends_on") and data["ends_on"] < data["starts_on"]:
            errors["ends_on"] = ["must not be before starts_on"]
        if errors:
            raise marshmallow.ValidationError(errors)

    @marshmallow.post_load
    def _normalize(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        if data["kind"] == "occasion":
            data["target"] = check_occasion(data["target"])
        return data


class TierSchema(CleanSchema):
    """A tier: reached at ``threshold`` qualifying points (or minor units of spend), earning at ``multiplier``."""

    code = fields.String(required=True, validate=_CODE)
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    threshold = fields.Decimal(required=True, validate=validate.Range(min=0, max=MAX_BALANCE))
    multiplier = fields.Decimal(load_default=Decimal(1), validate=_RATE)


class RewardSchema(CleanSchema):
    """A reward of the catalogue."""

    MULTILINE = frozenset({"description"})

    code = fields.String(required=True, validate=_CODE)
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    kind = fields.String(load_default="product", validate=validate.OneOf(REWARD_KINDS))
    points_cost = fields.Decimal(required=True, validate=_POINTS)
    stock = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=0, max=10**9))
    value_minor = fields.Integer(load_default=None, allow_none=True, validate=_MINOR)
    description = fields.String(load_default=None, allow_none=True)
    active = fields.Boolean(load_default=True)


def load(schema: marshmallow.Schema, data: Mapping[str, Any], *, partial: bool = False) -> dict[str, Any]:
    """Validate input through a schema; marshmallow's errors become ``crmkit.ValidationError`` naming the fields."""
    try:
        return schema.load(dict(data), partial=partial)
    except marshmallow.ValidationError as exc:
        raise ValidationError(exc.messages_dict) from None


def _given(values: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments a caller actually passed (None means "not given" for optional settings)."""
    return {key: value for key, value in values.items() if value is not None}


class Programs:
    """``crm.loyalty.programs``: programs, their earn rules and tiers, and the rewards catalogue."""

    def __init__(self, shared: Shared, tiering: Tiering) -> None:
        self._shared = shared
        self._crm = shared.crm
        self._tiering = tiering

    # -- programs ---------------------------------------------------------------------------

    def create(
        self, code: str, name: str, *, tiers: Sequence[Mapping[str, Any]] | None = None, **settings: Any
    ) -> Program:
        """Create a program (settings as in ``ProgramSchema``) with its tiers (Member/Silver/Gold/Diamond by default)."""
        self._crm.access.require(PROGRAMS_MANAGE)
        values = load(ProgramSchema(), {"code": code, "name": name, **settings})
        with self._crm.transaction() as session:
            conn = session.connection()
            self._shared.forget_config(session)
            if conn.execute(sa.select(programs.c.id).where(programs.c.code == values["code"])).first():
                raise Conflict(f"loyalty program {values['code']!r} already exists")
            program_id = conn.execute(
                programs.insert().values(**values, created_at=self._crm.now()).returning(programs.c.id)
            ).scalar_one()
            program = self._shared.program_by_id(conn, program_id)
            self._write_tiers(conn, program, _default_tiers(program) if tiers is None else tiers)
            self._crm.audit.record(session, "create", "loyalty_program", values["code"], changes=values)
        self._shared.forget_programs()
        return program

    def update(self, code: str, **changes: Any) -> Program:
        """Change a program's settings; ``code``, ``currency`` and ``point_decimals`` are fixed once created."""
        self._crm.access.require(PROGRAMS_MANAGE)
        fixed = [name for name in IMMUTABLE if name in changes]
        if fixed:
            raise ValidationError({name: ["cannot be changed once the program exists"] for name in fixed})
        values = load(ProgramSchema(), changes, partial=True)
        with self._crm.transaction() as session:
            conn = session.connection()
            self._shared.forget_config(session)
            program = self._shared.program(conn, code)
            if values:
                conn.execute(programs.update().where(programs.c.id == program.id).values(**values))
                self._shared.changed_config(session, program.id)  # tiers read differently with another tier_basis
                self._crm.audit.record(session, "update", "loyalty_program", code, changes=values)
            return self._shared.program_by_id(conn, program.id)

    def list(self) -> list[Program]:
        """Every program, the default one (the first created) first."""
        with self._crm.reading() as conn:
            return self._shared.programs(conn)

    def get(self, code: str | None = None) -> Program:
        """One program by code, or the default program."""
        with self._crm.reading() as conn:
            return self._shared.program(conn, code)

    # -- earn rules ----------------------------------------------------------------------------

    def add_rule(self, kind: str, *, program: str | None = None, **settings: Any) -> Rule:
        """Add an earn rule (``kind``: product, category, min_order, birthday, occasion, signup, referral)."""
        self._crm.access.require(PROGRAMS_MANAGE)
        values = load(RuleSchema(), {"kind": kind, **_given(settings)})
        if values.get("target") == FOUNDING_DAY and kind == "occasion" and founding_day(self._crm.settings) is None:
            raise ValidationError(
                "set the CRM's founding_day setting (DD/MM) first: founding_day rules need the date", field="target"
            )
        with self._crm.transaction() as session:
            conn = session.connection()
            self._shared.forget_config(session)
            target = self._shared.program(conn, program)
            if values["bonus_points"] is not None:
                values["bonus_points"] = target.to_units(values["bonus_points"], "bonus_points")
            if kind in ("min_order", "signup", "referral") and any(
                r.kind == kind for r in self._shared.rules(conn, target)
            ):
                raise Conflict(f"program {target.code!r} already has an active {kind} rule: deactivate it first")
            rule_id = conn.execute(
                rules.insert()
                .values(**values, program_id=target.id, active=True, created_at=self._crm.now())
                .returning(rules.c.id)
            ).scalar_one()
            self._shared.changed_config(session, target.id)
            self._crm.audit.record(
                session, "create", "loyalty_rule", rule_id, changes={**values, "program": target.code}
            )
            return self._rule(conn, target, rule_id)

    def deactivate_rule(self, rule_id: int) -> Rule:
        """Stop applying a rule (it stays listed, inactive, so past entries remain explained)."""
        self._crm.access.require(PROGRAMS_MANAGE)
        with self._crm.transaction() as session:
            conn = session.connection()
            self._shared.forget_config(session)
            program_id = conn.execute(sa.select(rules.c.program_id).where(rules.c.id == rule_id)).scalar()
            if program_id is None:
                raise NotFound("loyalty rule", rule_id)
            conn.execute(rules.update().where(rules.c.id == rule_id).values(active=False))
            self._shared.changed_config(session, program_id)
            self._crm.audit.record(session, "deactivate", "loyalty_rule", rule_id)
            return self._rule(conn, self._shared.program_by_id(conn, program_id), rule_id)

    def rules(self, program: str | None = None, *, include_inactive: bool = False) -> builtins.list[Rule]:
        """A program's earn rules in the order they were added."""
        with self._crm.reading() as conn:
            return self._shared.rules(conn, self._shared.program(conn, program), include_inactive=include_inactive)

    def _rule(self, conn: sa.Connection, program: Program, rule_id: int) -> Rule:
        return rule_from_row(program, conn.execute(sa.select(rules).where(rules.c.id == rule_id)).mappings().one())

    # -- tiers ------------------------------------------------------------------------------------

    def set_tiers(self, definitions: Sequence[Mapping[str, Any]], *, program: str | None = None) -> builtins.list[Tier]:
        """Replace a program's tiers (the lowest must start at 0), then re-evaluate every member's tier."""
        self._crm.access.require(PROGRAMS_MANAGE)
        with self._crm.transaction() as session:
            conn = session.connection()
            self._shared.forget_config(session)
            target = self._shared.program(conn, program)
            self._write_tiers(conn, target, definitions)
            self._shared.changed_config(session, target.id)
            self._crm.audit.record(
                session, "update", "loyalty_tiers", target.code, changes={"tiers": [dict(d) for d in definitions]}
            )
        self._tiering.evaluate(program=target.code)  # without loyalty.jobs.run: managing programs suffices
        return self.tiers(target.code)

    def tiers(self, program: str | None = None) -> builtins.list[Tier]:
        """A program's tiers, lowest first."""
        with self._crm.reading() as conn:
            return self._shared.tiers(conn, self._shared.program(conn, program))

    def _write_tiers(self, conn: sa.Connection, program: Program, definitions: Sequence[Mapping[str, Any]]) -> None:
        schema = TierSchema()
        rows = []
        for number, definition in enumerate(definitions, start=1):
            try:
                values = schema.load(dict(definition))
            except marshmallow.ValidationError as exc:
                raise ValidationError({"tiers": {number: exc.messages_dict}}) from None
            threshold = (
                program.to_units(values["threshold"], "threshold")
                if program.tier_basis == "points"
                else _whole(values["threshold"], "threshold")
            )
            rows.append({**values, "threshold": threshold})
        rows.sort(key=lambda row: row["threshold"])
        if not rows or rows[0]["threshold"] != 0:
            raise ValidationError(
                "the lowest tier must have threshold 0, so that every member has a tier", field="tiers"
            )
        if len({row["threshold"] for row in rows}) != len(rows) or len({row["code"] for row in rows}) != len(rows):
            raise ValidationError("tier codes and thresholds must be unique", field="tiers")
        conn.execute(tiers.delete().where(tiers.c.program_id == program.id))
        conn.execute(tiers.insert(), [{**row, "program_id": program.id, "rank": rank} for rank, row in enumerate(rows)])

    # -- rewards ---------------------------------------------------------------------------------------

    def add_reward(
        self, code: str, name: str, points_cost: Any, *, program: str | None = None, **settings: Any
    ) -> Reward:
        """Add a reward (``kind`` product/service/discount, ``stock`` None for unlimited, ``value_minor``)."""
        self._crm.access.require(PROGRAMS_MANAGE)
        values = load(RewardSchema(), {"code": code, "name": name, "points_cost": points_cost, **settings})
        with self._crm.transaction() as session:
            conn = session.connection()
            target = self._shared.program(conn, program)
            if conn.execute(
                sa.select(rewards.c.id).where(rewards.c.program_id == target.id, rewards.c.code == code)
            ).first():
                raise Conflict(f"reward {code!r} already exists in program {target.code!r}")
            values["points_cost"] = target.to_units(values["points_cost"], "points_cost")
            reward_id = conn.execute(
                rewards.insert()
                .values(**values, program_id=target.id, created_at=self._crm.now())
                .returning(rewards.c.id)
            ).scalar_one()
            self._crm.audit.record(
                session, "create", "loyalty_reward", reward_id, changes={**values, "program": target.code}
            )
            return self._shared.reward(conn, target, code)

    def update_reward(self, code: str, *, program: str | None = None, **changes: Any) -> Reward:
        """Change a reward (name, points_cost, stock, value_minor, description, active); its code stays."""
        self._crm.access.require(PROGRAMS_MANAGE)
        values = load(RewardSchema(), changes, partial=True)
        with self._crm.transaction() as session:
            conn = session.connection()
            target = self._shared.program(conn, program)
            reward = self._shared.reward(conn, target, code)
            if "points_cost" in values:
                values["points_cost"] = target.to_units(values["points_cost"], "points_cost")
            if values:
                conn.execute(rewards.update().where(rewards.c.id == reward.id).values(**values))
                self._crm.audit.record(session, "update", "loyalty_reward", reward.id, changes=values)
            return self._shared.reward(conn, target, code)

    def rewards(self, program: str | None = None, *, include_inactive: bool = False) -> builtins.list[Reward]:
        """The rewards catalogue of a program, cheapest first."""
        with self._crm.reading() as conn:
            target = self._shared.program(conn, program)
            query = (
                sa.select(rewards)
                .where(rewards.c.program_id == target.id)
                .order_by(rewards.c.points_cost, rewards.c.code)
            )
            if not include_inactive:
                query = query.where(rewards.c.active.is_(True))
            return [reward_from_row(target, row) for row in conn.execute(query).mappings()]


def _default_tiers(program: Program) -> list[dict[str, Any]]:
    """The default tiers; for a spend-based program, thresholds become the spend that earns those points."""
    if program.tier_basis == "points":
        return [dict(tier) for tier in DEFAULT_TIERS]
    per_point = Fraction(program.earn_amount_minor) / Fraction(program.earn_points)
    return [{**tier, "threshold": int(tier["threshold"] * per_point)} for tier in DEFAULT_TIERS]


def _whole(value: Decimal, field: str) -> int:
    if value != value.to_integral_value():
        raise ValidationError("a spend threshold is in minor units: a whole number", field=field)
    return int(value)
