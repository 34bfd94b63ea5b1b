"""``crm.campaigns.segments``: saved audiences, counted, sampled and exported inside the database.

A user counts, samples and exports only the customers in the scope of the permission the call
needs: the scope is one more predicate on ``customers.owner`` in the same query.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any

import marshmallow
import sqlalchemy as sa
from marshmallow import fields, validate

from crmkit.errors import Conflict, NotFound, ValidationError
from crmkit.plugin_api import CleanSchema, SafeWriter, mask_email, mask_phone
from crmkit.plugin_api import core_tables as core
from crmkit_campaigns import config
from crmkit_campaigns import models as m
from crmkit_campaigns.objects import Segment
from crmkit_campaigns.permissions import SEGMENTS_EXPORT, SEGMENTS_MANAGE, SEGMENTS_READ
from crmkit_campaigns.segment_sql import Clock, Field, catalogue, compile_expression
from crmkit_campaigns.sqlparts import primary_contact

if TYPE_CHECKING:
    from crmkit.crm import CRM

EXPORT_FORMATS = ("csv", "jsonl")
EXPORT_COLUMNS = ("id", "name", "email", "phone", "city", "province")
EXPORT_BATCH = 5000
MAX_EXPRESSION = 10_000


class SegmentSchema(CleanSchema):
    """What a saved segment accepts."""

    MULTILINE = frozenset({"expression", "description"})

    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    expression = fields.String(required=True, validate=validate.Length(min=1, max=MAX_EXPRESSION))
    description = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2000))

    @marshmallow.pre_load
    def _strip(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        # The expression keeps its spaces until it is checked, so error columns match what was typed.
        return {k: v.strip() if isinstance(v, str) and k != "expression" else v for k, v in data.items()}


class Segments:
    """Saved segments of one CRM, and counting / sampling / exporting any expression."""

    def __init__(self, crm: CRM) -> None:
        self._crm = crm
        self._schema = SegmentSchema()

    # -- the language -----------------------------------------------------------------------------------

    def fields(self) -> dict[str, Field]:
        """Every field an expression may use: the core's, then each plugin's ``crmkit_segment_fields``.

        Needs ``campaigns.segments.read``.
        """
        self._crm.access.require(SEGMENTS_READ)
        return self._fields()

    def _fields(self) -> dict[str, Field]:
        return catalogue(self._crm.hooks.segment_field_definitions())

    def condition(
        self, expression: str, *, now: datetime | None = None, field: str = "expression"
    ) -> sa.ColumnElement[bool]:
        """The SQL condition over ``customers`` for ``expression`` (active customers only), **unscoped**:
        a building block; :meth:`audience` adds the acting user's scope."""
        settings = config.read(self._crm.settings)
        clock = Clock(now or self._crm.now(), settings.zone)
        try:
            where = compile_expression(
                expression,
                self._fields(),
                dialect=self._crm.engine.dialect.name,
                clock=clock,
                channels=self._crm.channels,
            )
        except ValidationError as exc:
            if field != "expression":
                raise ValidationError({field: exc.errors["expression"]}) from None
            raise
        return sa.and_(core.customers.c.status == "active", where)

    def audience(
        self,
        segment: int | str | None = None,
        *,
        expression: str | None = None,
        now: datetime | None = None,
        permission: str = SEGMENTS_READ,
    ) -> sa.ColumnElement[bool]:
        """The condition of a saved segment, of an expression, or of every active customer (neither given),
        limited to the customers ``permission``'s scope reaches for the acting user (and requiring it).

        Runs pass ``campaigns.send``, exports ``campaigns.segments.export``; the system reaches everyone.
        """
        scope = self._crm.access.owner_filter(core.customers.c.owner, permission)
        return sa.and_(self.unscoped(segment, expression=expression, now=now), scope)

    def unscoped(
        self, segment: int | str | None = None, *, expression: str | None = None, now: datetime | None = None
    ) -> sa.ColumnElement[bool]:
        """:meth:`audience` without the scope: whether a customer (already checked by the caller) belongs."""
        if segment is not None and expression is not None:
            raise ValidationError("give a saved segment or an expression, not both", field="expression")
        if segment is not None:
            expression = self._get(segment).expression
        if expression is None:
            return core.customers.c.status == "active"
        return self.condition(expression, now=now)

    # -- saved segments ---------------------------------------------------------------------------------

    def create(self, name: str, expression: str, *, description: str | None = None) -> Segment:
        """Save a segment; the expression is checked now (``ValidationError`` names the column of a mistake).

        Needs ``campaigns.segments.manage``; the acting user is its author.
        """
        self._crm.access.require(SEGMENTS_MANAGE)
        values = self._validate({"name": name, "expression": expression, "description": description})
        self.condition(values["expression"])
        values["expression"] = values["expression"].strip()
        now = self._crm.now()
        with self._crm.transaction() as session:
            conn = session.connection()
            if conn.execute(sa.select(m.segments.c.id).where(m.segments.c.name == values["name"])).first():
                raise Conflict(f"a segment named {values['name']!r} already exists")
            row = {**values, "created_by": self._crm.actor, "created_at": now, "updated_at": now}
            segment_id = conn.execute(m.segments.insert().values(row).returning(m.segments.c.id)).scalar_one()
            self._crm.audit.record(session, "create", "segment", segment_id, changes=values)
        return Segment(id=segment_id, **row)

    def update(
        self,
        segment: int | str,
        *,
        expression: str | None = None,
        description: str | None = None,
        name: str | None = None,
    ) -> Segment:
        """Change a saved segment's expression, description or name (campaigns using it see the change).

        Needs ``campaigns.segments.manage`` over the segment's author.
        """
        self._crm.access.require(SEGMENTS_MANAGE)
        current = self._get(segment)
        self._require_author(current)
        values = self._validate(
            {
                "name": name if name is not None else current.name,
                "expression": expression if expression is not None else current.expression,
                "description": description if description is not None else current.description,
            }
        )
        self.condition(values["expression"])
        values["expression"] = values["expression"].strip()
        with self._crm.transaction() as session:
            conn = session.connection()
            if (
                values["name"] != current.name
                and conn.execute(sa.select(m.segments.c.id).where(m.segments.c.name == values["name"])).first()
            ):
                raise Conflict(f"a segment named {values['name']!r} already exists")
            conn.execute(
                m.segments.update().where(m.segments.c.id == current.id).values(**values, updated_at=self._crm.now())
            )
            self._crm.audit.record(session, "update", "segment", current.id, changes=values)
        return self._get(current.id)

    def delete(self, segment: int | str) -> None:
        """Delete a saved segment no campaign uses (``campaigns.segments.manage`` over its author)."""
        self._crm.access.require(SEGMENTS_MANAGE)
        current = self._get(segment)
        self._require_author(current)
        with self._crm.transaction() as session:
            conn = session.connection()
            used = (
                conn.execute(sa.select(m.campaigns.c.name).where(m.campaigns.c.segment_id == current.id))
                .scalars()
                .all()
            )
            if used:
                raise Conflict(f"segment {current.name!r} is the audience of campaign(s) {', '.join(used)}")
            conn.execute(m.segments.delete().where(m.segments.c.id == current.id))
            self._crm.audit.record(session, "delete", "segment", current.id, changes={"name": current.name})

    def get(self, segment: int | str) -> Segment:
        """A saved segment by id or name (``campaigns.segments.read``)."""
        self._crm.access.require(SEGMENTS_READ)
        return self._get(segment)

    def _get(self, segment: int | str) -> Segment:
        s = m.segments.c
        key = s.id == segment if isinstance(segment, int) else s.name == str(segment).strip()
        with self._crm.reading() as conn:
            row = conn.execute(sa.select(m.segments).where(key)).mappings().first()
        if row is None:
            raise NotFound("segment", segment)
        return Segment(**row)

    def list(self) -> list[Segment]:
        """Every saved segment, by name (``campaigns.segments.read``)."""
        self._crm.access.require(SEGMENTS_READ)
        with self._crm.reading() as conn:
            rows = conn.execute(sa.select(m.segments).order_by(m.segments.c.name)).mappings().all()
        return [Segment(**row) for row in rows]

    # -- evaluation -------------------------------------------------------------------------------------

    def count(
        self, segment: int | str | None = None, *, expression: str | None = None, now: datetime | None = None
    ) -> int:
        """How many active customers match (one ``COUNT(*)`` in the database).

        Needs ``campaigns.segments.read``; a user counts only the customers in its scope.
        """
        where = self.audience(segment, expression=expression, now=now)
        with self._crm.reading() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(core.customers).where(where)).scalar_one())

    def sample(
        self,
        segment: int | str | None = None,
        *,
        expression: str | None = None,
        limit: int = 10,
        now: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """A random handful of matching customers (id, name, e-mail, phone, city, province).

        Needs ``campaigns.segments.read``; only customers in its scope, contact details masked
        where the user may not see them.
        """
        if not 1 <= limit <= 1000:
            raise ValidationError("must be between 1 and 1000", field="limit")
        where = self.audience(segment, expression=expression, now=now)
        query = self._rows().where(where).order_by(sa.func.random()).limit(limit)
        with self._crm.reading() as conn:
            return [self._shown(row) for row in conn.execute(query).mappings()]

    def export(
        self,
        out: IO[str],
        segment: int | str | None = None,
        *,
        expression: str | None = None,
        format: str = "csv",
        now: datetime | None = None,
    ) -> int:
        """Write matching customers (id, name, e-mail, phone, city, province) as CSV or JSON lines; returns how many.

        Reads in batches by id, so a million customers never sit in memory together. Needs
        ``campaigns.segments.export``: only customers in its scope, contact details masked where
        the user may not see them.
        """
        if format not in EXPORT_FORMATS:
            raise ValidationError(f"must be one of {', '.join(EXPORT_FORMATS)}", field="format")
        where = self.audience(segment, expression=expression, now=now, permission=SEGMENTS_EXPORT)
        writer = SafeWriter(out) if format == "csv" else None
        if writer:
            writer.writerow(EXPORT_COLUMNS)
        written = 0
        for found in self._batches(where):
            row = self._shown(found)
            if writer:
                writer.writerow(["" if row[c] is None else row[c] for c in EXPORT_COLUMNS])
            else:
                out.write(json.dumps({c: row[c] for c in EXPORT_COLUMNS}, ensure_ascii=False) + "\n")
            written += 1
        return written

    def _batches(self, where: sa.ColumnElement[bool]) -> Iterator[Mapping[str, Any]]:
        last = 0
        while True:
            query = (
                self._rows().where(where, core.customers.c.id > last).order_by(core.customers.c.id).limit(EXPORT_BATCH)
            )
            with self._crm.reading() as conn:
                rows = conn.execute(query).mappings().all()
            yield from rows
            if len(rows) < EXPORT_BATCH:
                return
            last = rows[-1]["id"]

    @staticmethod
    def _rows() -> sa.Select[Any]:
        c = core.customers.c
        return sa.select(
            c.id,
            c.name,
            primary_contact("email").label("email"),
            primary_contact("phone").label("phone"),
            c.city,
            c.province,
            c.owner,
        )

    def _shown(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """A customer row without its owner, contact details masked where the acting user may not see them."""
        shown = {k: v for k, v in row.items() if k != "owner"}
        if not self._crm.access.sees_contacts_of(row["owner"]):
            shown["email"] = shown["email"] and mask_email(shown["email"])
            shown["phone"] = shown["phone"] and mask_phone(shown["phone"])
        return shown

    def _require_author(self, segment: Segment) -> None:
        """``PermissionDenied`` unless ``campaigns.segments.manage``'s scope reaches the segment's author."""
        self._crm.access.require_owned(segment.created_by, SEGMENTS_MANAGE, f"segment {segment.name!r}")

    def _validate(self, data: Mapping[str, Any]) -> dict[str, Any]:
        try:
            return self._schema.load(dict(data))
        except marshmallow.ValidationError as exc:
            raise ValidationError(exc.messages_dict) from None
