"""Segment fields and the compiler from the filter language's syntax tree to a SQLAlchemy condition.

Fields are typed (text, number, date, date-time, boolean, one-of): a literal of the wrong type
is an error naming its column. The core's fields come first; every plugin adds its own through
``crmkit_segment_fields`` (a SQL expression correlated on ``customers.id``; its SQL type gives the
field's type — or a ``crmkit.core.segments.SegmentField`` with ``choices``: an enumerated field, whose
unknown values are refused with the closest suggested). Negation is pushed down to the comparisons so
that ``not``, ``!=`` and ``not in`` include customers whose field is empty (two-valued logic), while
positive conditions stay plain comparisons a database index can serve. Age is rewritten into a range of birth dates, a date
compared with a date-time field into the bounds of that local day.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from typing import Any

import attrs
import sqlalchemy as sa

from crmkit.errors import ValidationError
from crmkit.plugin_api import (
    GENDERS,
    KINDS,
    LIFECYCLE_STAGES,
    Choices,
    SegmentField,
    as_segment_field,
    fold,
    match_choice,
    prefix_upper_bound,
)
from crmkit.plugin_api import core_tables as core
from crmkit_campaigns.folding import folded_match
from crmkit_campaigns.segment_language import (
    And,
    Compare,
    HasConsent,
    HasContact,
    Literal,
    Node,
    Not,
    Or,
    SegmentSyntaxError,
    Tag,
    parse,
)

_DESCRIBE = {
    "text": "text",
    "number": "a number",
    "date": "a date",
    "datetime": "a date-time",
    "boolean": "true or false",
    "today": "a date",
    "now": "a date-time",
    "ago": "a relative date",
}


@attrs.frozen
class Field:
    """A field segments filter on: its type, SQL expression (correlated on ``customers.id``) and source."""

    name: str
    type: str
    expression: Any
    nullable: bool = True
    choices: Choices = ()  # the values of a "choice" field, or a function returning them
    source: str = "core"
    description: str = ""

    def values(self) -> tuple[str, ...]:
        """The values a ``choice`` field takes (read now when they come from a function)."""
        return SegmentField(self.expression, self.choices).values() or ()


def _scalar(expression: Any, *where: Any) -> Any:
    return sa.select(expression).where(*where).scalar_subquery()


def core_fields() -> dict[str, Field]:
    """The core customer fields every segment may use."""
    c, i = core.customers.c, core.interactions.c
    own = i.customer_id == c.id
    return {
        f.name: f
        for f in (
            Field("id", "number", c.id, nullable=False, description="customer id"),
            Field("name", "name", c.name_key, nullable=False, description="full name (accent-insensitive)"),
            Field("given_name", "text", c.given_name, description="given name"),
            Field("family_name", "text", c.family_name, description="family name"),
            Field("city", "text", c.city, description="city"),
            Field("province", "text", c.province, description="province"),
            Field("country", "text", c.country, description="ISO country code"),
            Field("gender", "choice", c.gender, choices=GENDERS, description="gender"),
            Field("kind", "choice", c.kind, nullable=False, choices=KINDS, description="person or organization"),
            Field(
                "lifecycle_stage",
                "choice",
                c.lifecycle_stage,
                nullable=False,
                choices=LIFECYCLE_STAGES,
                description="lifecycle stage",
            ),
            Field("owner", "text", c.owner, description="account owner (employee)"),
            Field("external_id", "text", c.external_id, description="id in the source system"),
            Field("birth_date", "date", c.birth_date, description="date of birth"),
            Field("birth_month", "number", sa.extract("month", c.birth_date), description="month of birth (1–12)"),
            Field("age", "age", c.birth_date, description="age in whole years, today"),
            Field("created_at", "datetime", c.created_at, nullable=False, description="when the customer was created"),
            Field(
                "last_interaction_at",
                "datetime",
                _scalar(sa.func.max(i.occurred_at), own),
                description="time of the latest interaction",
            ),
            Field(
                "interaction_count",
                "number",
                _scalar(sa.func.count(), own),
                nullable=False,
                description="number of interactions",
            ),
        )
    }


def type_of(expression: Any) -> str:
    """The segment type of a plugin's SQL expression, from its SQLAlchemy type."""
    affinity = getattr(expression.type, "_type_affinity", None)
    if affinity is None or issubclass(affinity, sa.types.NullType):
        return "any"
    for sql_type, kind in (
        (sa.Boolean, "boolean"),
        (sa.DateTime, "datetime"),
        (sa.Date, "date"),
        (sa.Integer, "number"),
        (sa.Numeric, "number"),
        (sa.String, "text"),
    ):
        if issubclass(affinity, sql_type):
            return kind
    return "any"


def catalogue(plugin_fields: Mapping[str, Any]) -> dict[str, Field]:
    """Core fields plus the plugins' (expressions or ``SegmentField``; a plugin field cannot replace a core one)."""
    fields = core_fields()
    for name, value in sorted(plugin_fields.items()):
        if name not in fields:
            declared = as_segment_field(value)
            if declared.enumerated:
                fields[name] = Field(
                    name, "choice", declared.expression, choices=declared.choices or (), source="plugin"
                )
            else:
                fields[name] = Field(name, type_of(declared.expression), declared.expression, source="plugin")
    return fields


# --- dates ---------------------------------------------------------------------------------------------


def shift(day: date, *, days: int = 0, months: int = 0) -> date:
    """``day`` moved by whole months (clamped to the month's end) and days."""
    if months:
        index = day.year * 12 + day.month - 1 + months
        year, month = divmod(index, 12)
        month += 1
        last = (date(year + (month == 12), month % 12 + 1, 1) - timedelta(days=1)).day
        day = date(year, month, min(day.day, last))
    return day + timedelta(days=days)


def ago(today: date, amount: int, unit: str) -> date:
    """The local date ``amount`` days/weeks/months/years before ``today``."""
    if unit == "days":
        return shift(today, days=-amount)
    if unit == "weeks":
        return shift(today, days=-7 * amount)
    return shift(today, months=-amount * (12 if unit == "years" else 1))


@attrs.frozen
class Clock:
    """What ``today`` and ``now`` mean for a segment: the CRM's local time zone and the current instant."""

    now: datetime
    zone: tzinfo

    @property
    def today(self) -> date:
        return self.now.astimezone(self.zone).date()

    def day_start(self, day: date) -> datetime:
        """Local midnight starting ``day``, as an aware datetime."""
        return datetime.combine(day, time(), self.zone)


# --- the compiler --------------------------------------------------------------------------------------


class Compiler:
    """Turns a parsed expression into a SQLAlchemy condition over ``customers`` (use :func:`compile_expression`)."""

    def __init__(self, fields: Mapping[str, Field], dialect: str, clock: Clock, channels: tuple[str, ...]) -> None:
        self.fields = fields
        self.dialect = dialect
        self.clock = clock
        self.channels = channels

    def compile(self, node: Node, positive: bool = True) -> sa.ColumnElement[bool]:
        if isinstance(node, Not):
            return self.compile(node.item, not positive)
        if isinstance(node, (And, Or)):
            # Cheapest first: the database evaluates them in order and stops at the first that settles
            # the row, so plain column tests run before patterns, and subqueries run on few rows.
            items = sorted(node.items, key=self.cost)
            parts = [self.compile(item, positive) for item in items]
            use_and = isinstance(node, And) == positive  # De Morgan under negation
            return sa.and_(*parts) if use_and else sa.or_(*parts)
        if isinstance(node, Tag):
            return self.tag(node.value, positive)
        if isinstance(node, HasConsent):
            return self.consent(node, positive)
        if isinstance(node, HasContact):
            found = sa.exists().where(
                core.contact_points.c.customer_id == core.customers.c.id, core.contact_points.c.kind == node.kind
            )
            return found if positive else ~found
        return self.compare(node, positive)

    def cost(self, node: Node) -> int:
        """A rough per-row cost of a condition, to order the terms of ``and`` / ``or``."""
        if isinstance(node, Not):
            return self.cost(node.item)
        if isinstance(node, (And, Or)):
            return sum(self.cost(item) for item in node.items)
        if isinstance(node, (Tag, HasConsent, HasContact)):
            return 20
        field = self.fields.get(node.field)
        if field is None:
            return 0  # reported as an unknown field when compiled
        if not isinstance(field.expression, sa.Column) and field.type != "age":
            return 30  # a subquery per row (plugin fields, interaction counts)
        return 5 if field.type == "text" else 1

    # -- tags, consent -------------------------------------------------------------------------------

    def tag(self, value: str, positive: bool) -> sa.ColumnElement[bool]:
        t = core.tags.c
        match = folded_match(t.tag, value, "equals", self.dialect)
        if self.dialect == "sqlite":  # one pass over the tag index builds the set; each customer probes it
            tagged = sa.select(t.customer_id).where(match)
            return core.customers.c.id.in_(tagged) if positive else core.customers.c.id.not_in(tagged)
        found = sa.exists().where(t.customer_id == core.customers.c.id, match)  # a semi-/anti-join elsewhere
        return found if positive else ~found

    def consent(self, node: HasConsent, positive: bool) -> sa.ColumnElement[bool]:
        channel = node.channel.strip().lower()
        if channel not in self.channels:
            raise SegmentSyntaxError(
                node.column, f"unknown channel {node.channel!r} (known: {', '.join(self.channels)})"
            )
        k = core.consents.c
        found = sa.exists().where(k.customer_id == core.customers.c.id, k.channel == channel, k.granted.is_(True))
        return found if positive else ~found

    # -- comparisons ---------------------------------------------------------------------------------

    def field(self, node: Compare) -> Field:
        found = self.fields.get(node.field)
        if found is None:
            close = difflib.get_close_matches(node.field, self.fields, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise SegmentSyntaxError(
                node.column, f"unknown field {node.field!r}{hint}; known fields: {', '.join(sorted(self.fields))}"
            )
        return found

    def compare(self, node: Compare, positive: bool) -> sa.ColumnElement[bool]:
        field = self.field(node)
        if node.op == "null":
            empty = field.expression.is_(None)
            return empty if positive else field.expression.is_not(None)
        builder = getattr(self, f"_{field.type}")
        condition = builder(field, node)
        if positive:
            return condition
        if field.nullable:
            return sa.or_(field.expression.is_(None), sa.not_(condition))
        return sa.not_(condition)

    def refuse(self, field: Field, node: Compare) -> SegmentSyntaxError:
        kind = {"name": "text", "choice": "text", "age": "a number"}.get(field.type, field.type)
        return SegmentSyntaxError(
            node.op_column, f"operator {_op_text(node.op)!r} does not apply to {field.name} ({kind})"
        )

    def literal(self, field: Field, value: Literal, *accepted: str) -> Any:
        if value.kind not in accepted:
            expected = " or ".join(dict.fromkeys(_DESCRIBE[a] for a in accepted))
            hint = f' (quote it: "{value.text}")' if "text" in accepted and value.kind == "number" else ""
            raise SegmentSyntaxError(
                value.column, f"{field.name} takes {expected}, but {value.text} is {_DESCRIBE[value.kind]}{hint}"
            )
        return value.value

    def _text(self, field: Field, node: Compare) -> sa.ColumnElement[bool]:
        modes = {"=": "equals", "in": "equals", "contains": "contains", "starts": "starts"}
        if node.op not in modes:
            raise self.refuse(field, node)
        texts = [self.literal(field, v, "text") for v in node.values]
        return sa.or_(*(folded_match(field.expression, text, modes[node.op], self.dialect) for text in texts))

    def _name(self, field: Field, node: Compare) -> sa.ColumnElement[bool]:
        keys = [fold(self.literal(field, v, "text")) for v in node.values]
        column = field.expression
        if node.op in ("=", "in"):
            return column.in_(keys) if len(keys) > 1 else column == keys[0]
        if node.op == "starts":  # a range over the folded-name index
            return sa.and_(column >= keys[0], column < prefix_upper_bound(keys[0])) if keys[0] else sa.true()
        if node.op == "contains":
            escaped = keys[0].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            return column.like(f"%{escaped}%", escape="\\")
        raise self.refuse(field, node)

    def _choice(self, field: Field, node: Compare) -> sa.ColumnElement[bool]:
        if node.op not in ("=", "in"):
            raise self.refuse(field, node)
        chosen = []
        choices = field.values()
        for value in node.values:
            try:
                chosen.append(match_choice(field.name, self.literal(field, value, "text"), choices))
            except ValidationError as exc:
                raise SegmentSyntaxError(value.column, exc.errors[field.name][0]) from None
        return field.expression.in_(chosen) if len(chosen) > 1 else field.expression == chosen[0]

    def _boolean(self, field: Field, node: Compare) -> sa.ColumnElement[bool]:
        if node.op not in ("=", "in"):
            raise self.refuse(field, node)
        values = [self.literal(field, v, "boolean") for v in node.values]
        return field.expression.in_(values) if len(values) > 1 else field.expression.is_(values[0])

    def _number(self, field: Field, node: Compare) -> sa.ColumnElement[bool]:
        values = [self.literal(field, v, "number") for v in node.values]
        return self.ordered(field, node, [(v, v) for v in values])

    def _any(self, field: Field, node: Compare) -> sa.ColumnElement[bool]:
        return self.ordered(field, node, [(v.value, v.value) for v in node.values])

    def _date(self, field: Field, node: Compare) -> sa.ColumnElement[bool]:
        days = []
        for value in node.values:
            self.literal(field, value, "date", "today", "ago")
            days.append(self.day(value))
        return self.ordered(field, node, [(d, d + timedelta(days=1)) for d in days])

    def _datetime(self, field: Field, node: Compare) -> sa.ColumnElement[bool]:
        bounds = []
        for value in node.values:
            self.literal(field, value, "date", "datetime", "today", "now", "ago")
            if value.kind in ("date", "today"):
                day = self.day(value)
                bounds.append((self.clock.day_start(day), self.clock.day_start(day + timedelta(days=1))))
            else:
                instant = self.instant(value)
                bounds.append((instant, instant))
        return self.ordered(field, node, bounds)

    def _age(self, field: Field, node: Compare) -> sa.ColumnElement[bool]:
        """Age in whole years as birth-date ranges: age >= N  <=>  birth_date < (today - N years) + 1 day."""
        if node.op in ("contains", "starts"):
            raise self.refuse(field, node)
        years = []
        for value in node.values:
            number = self.literal(field, value, "number")
            if isinstance(number, Decimal) or number < 0:
                raise SegmentSyntaxError(value.column, f"age is a whole number of years, not {value.text}")
            years.append(number)
        bd = field.expression

        def born_before(age: int) -> date:  # age >= N  <=>  birth_date < born_before(N)
            return shift(self.clock.today, months=-12 * age) + timedelta(days=1)

        def exactly(age: int) -> sa.ColumnElement[bool]:
            return sa.and_(bd >= born_before(age + 1), bd < born_before(age))

        if node.op in ("=", "in"):
            return sa.or_(*(exactly(n) for n in years))
        if node.op == "between":
            low, high = sorted(years)
            return sa.and_(bd < born_before(low), bd >= born_before(high + 1))
        n = years[0]
        return {
            ">=": bd < born_before(n),
            ">": bd < born_before(n + 1),
            "<": bd >= born_before(n),
            "<=": bd >= born_before(n + 1),
        }[node.op]

    def ordered(self, field: Field, node: Compare, bounds: list[tuple[Any, Any]]) -> sa.ColumnElement[bool]:
        """Comparisons with values that are points (lo == hi) or half-open intervals [lo, hi) such as a local day."""
        col = field.expression
        op = node.op
        if op in ("contains", "starts"):
            raise self.refuse(field, node)

        def equal(lo: Any, hi: Any) -> sa.ColumnElement[bool]:
            return col == lo if lo == hi else sa.and_(col >= lo, col < hi)

        def at_most(lo: Any, hi: Any) -> sa.ColumnElement[bool]:
            return col <= hi if lo == hi else col < hi

        if op == "=":
            return equal(*bounds[0])
        if op == "in":
            if all(lo == hi for lo, hi in bounds):
                return col.in_([lo for lo, _ in bounds])
            return sa.or_(*(equal(lo, hi) for lo, hi in bounds))
        if op == "between":
            (lo, _), high = bounds
            return sa.and_(col >= lo, at_most(*high))
        lo, hi = bounds[0]
        return {"<": col < lo, "<=": at_most(lo, hi), ">": col > hi if lo == hi else col >= hi, ">=": col >= lo}[op]

    def day(self, value: Literal) -> date:
        if value.kind == "today":
            return self.clock.today
        if value.kind == "ago":
            return ago(self.clock.today, *value.value)
        if value.kind == "date":
            return value.value
        raise SegmentSyntaxError(value.column, f"expected a date, found {value.text}")

    def instant(self, value: Literal) -> datetime:
        if value.kind == "now":
            return self.clock.now
        if value.kind == "ago":
            amount, unit = value.value
            if unit in ("days", "weeks"):
                return self.clock.now - timedelta(days=amount * (7 if unit == "weeks" else 1))
            return self.clock.day_start(ago(self.clock.today, amount, unit))
        moment: datetime = value.value
        return moment if moment.tzinfo else moment.replace(tzinfo=self.clock.zone)


def _op_text(op: str) -> str:
    return {"starts": "starts with"}.get(op, op)


def compile_expression(
    text: str, fields: Mapping[str, Field], *, dialect: str, clock: Clock, channels: tuple[str, ...]
) -> sa.ColumnElement[bool]:
    """Parse and compile ``text`` into a condition over ``customers`` (raises ``SegmentSyntaxError``)."""
    return Compiler(fields, dialect, clock, channels).compile(parse(text))
