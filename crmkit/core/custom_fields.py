"""``crm.fields``: customer fields defined at run time, without code (``crmkit fields add so_thich --type text``).

A custom field is a typed, validated key of ``customer.attributes``: stored like the attributes
plugins declare (the same JSON column), validated by the customer schema as those are (so
``crm.customers.add``, ``--attr`` and imports' ``attr_<name>`` columns all check it), exported
with the other attributes, and offered to segments (campaigns' segment language, price-list
conditions) through ``crm.hooks.segment_field_definitions()``. The definitions live in the
``custom_fields`` setting. Renaming a field moves its values to the new key on every customer;
retiring one stops validating and offering it, and keeps every value.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa
from marshmallow import ValidationError as SchemaError
from marshmallow import fields, validate
from sqlalchemy.dialects import postgresql

from crmkit.core import tables as t
from crmkit.core.segments import SegmentField
from crmkit.errors import ValidationError

if TYPE_CHECKING:
    from crmkit.crm import CRM

SETTING = "custom_fields"
TYPES = ("text", "integer", "decimal", "date", "bool", "choice")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class Day(fields.Date):
    """A calendar day: ISO (2025-09-02) or day-first as written in Vietnam (02/09/2025); stored as ISO text."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> date:
        if isinstance(value, date) and not isinstance(value, datetime):
            return value
        if isinstance(value, str) and "/" in value:
            try:
                return datetime.strptime(value.strip(), "%d/%m/%Y").date()  # noqa: DTZ007 - a date: no zone applies
            except ValueError:
                raise SchemaError(f"not a valid date: {value!r} (use YYYY-MM-DD or DD/MM/YYYY)") from None
        return super()._deserialize(value, attr, data, **kwargs)


def _spellings(*words: str) -> set[str]:
    """Each word lower-case, Capitalised and UPPER-CASE."""
    return {form for word in words for form in (word, word.capitalize(), word.upper())}


@attrs.frozen
class CustomField:
    """A customer field defined at run time: its name (the attribute key), type, choices and labels."""

    name: str
    type: str
    choices: tuple[str, ...] = ()
    label_vi: str | None = None
    label_en: str | None = None
    retired: bool = False

    def schema_field(self) -> fields.Field:
        """The marshmallow field validating its values (as a plugin's ``crmkit_customer_fields`` would)."""
        if self.type == "integer":
            return fields.Integer(allow_none=True)
        if self.type == "decimal":
            return fields.Decimal(allow_none=True, allow_nan=False)
        if self.type == "date":
            return Day(allow_none=True)
        if self.type == "bool":
            return fields.Boolean(
                allow_none=True,
                truthy={True, *_spellings("true", "yes", "y", "có", "co", "1")},
                falsy={False, *_spellings("false", "no", "n", "không", "khong", "0")},
            )
        if self.type == "choice":
            return fields.String(allow_none=True, validate=validate.OneOf(self.choices))
        return fields.String(allow_none=True, validate=validate.Length(max=1000))

    def segment_field(self, dialect: str) -> SegmentField:
        """The field for segments: its value as SQL of its type, over the core ``customers`` table."""
        value = t.customers.c.attributes[self.name]
        if self.type in ("integer", "decimal"):
            expression: Any = sa.cast(value.as_string(), sa.Integer if self.type == "integer" else sa.Numeric(30, 10))
        elif self.type == "date":
            text = value.as_string()
            expression = sa.type_coerce(text, sa.Date) if dialect == "sqlite" else sa.cast(text, sa.Date)
        elif self.type == "bool":
            expression = value.as_boolean()
        else:
            expression = value.as_string()
        return SegmentField(expression, choices=self.choices if self.type == "choice" else None)


class CustomFields:
    """The custom field service of one CRM (``crm.fields``); changing fields needs ``settings.admin``."""

    def __init__(self, crm: CRM) -> None:
        self._crm = crm

    def list(self, *, retired: bool = False) -> list[CustomField]:
        """The fields in use, by name (``retired=True``: the retired ones too)."""
        stored = self._crm.settings.get(SETTING) or []
        found = [CustomField(**{**entry, "choices": tuple(entry.get("choices") or ())}) for entry in stored]
        return sorted((f for f in found if retired or not f.retired), key=lambda f: f.name)

    def get(self, name: str) -> CustomField:
        """One field by name (retired or not); ``ValidationError`` naming ``name`` when there is none."""
        for field in self.list(retired=True):
            if field.name == name:
                return field
        raise ValidationError(f"no custom field {name!r}", field="name")

    def schema_fields(self) -> dict[str, fields.Field]:
        """The marshmallow fields of the fields in use (the customer schema adds them to the plugins')."""
        return {f.name: f.schema_field() for f in self.list()}

    def segment_fields(self) -> dict[str, SegmentField]:
        """The fields in use as segment fields."""
        dialect = self._crm.engine.dialect.name
        return {f.name: f.segment_field(dialect) for f in self.list()}

    def add(
        self,
        name: str,
        type: str,
        *,
        choices: tuple[str, ...] | list[str] = (),
        label_vi: str | None = None,
        label_en: str | None = None,
    ) -> CustomField:
        """Define a field; values customers already hold under ``name`` must fit its type."""
        self._crm.access.require("settings.admin")
        self._check_name(name)
        if type not in TYPES:
            raise ValidationError(f"must be one of {', '.join(TYPES)}", field="type")
        cleaned = tuple(dict.fromkeys(c.strip() for c in choices if c.strip()))
        if type == "choice" and not cleaned:
            raise ValidationError("a choice field needs its values (--choices 'a,b,c')", field="choices")
        if type != "choice" and cleaned:
            raise ValidationError("only a choice field has choices", field="choices")
        for label, text in (("label_vi", label_vi), ("label_en", label_en)):
            if text is not None and len(text) > 100:
                raise ValidationError("at most 100 characters", field=label)
        field = CustomField(name, type, cleaned, label_vi or None, label_en or None)
        self._check_values(field)
        self._store([*self.list(retired=True), field])
        return field

    def rename(self, name: str, new_name: str) -> CustomField:
        """Rename a field and move its values to the new key on every customer (one transaction)."""
        self._crm.access.require("settings.admin")
        field = self.get(name)
        self._check_name(new_name)
        renamed = attrs.evolve(field, name=new_name)
        c = t.customers.c
        with self._crm.transaction() as session:
            conn = session.connection()
            if conn.execute(sa.select(c.id).where(self._holds(conn, new_name)).limit(1)).first() is not None:
                raise ValidationError(f"customers already hold values under {new_name!r}", field="new_name")
            moved = 0
            for customer_id, attributes in conn.execute(
                sa.select(c.id, c.attributes).where(self._holds(conn, name))
            ).all():
                values = dict(attributes)
                values[new_name] = values.pop(name)
                conn.execute(t.customers.update().where(c.id == customer_id).values(attributes=values))
                moved += 1
            self._crm.audit.record(
                session, "rename", "custom_field", name, changes={"name": new_name, "customers": moved}
            )
        self._store([renamed if f.name == name else f for f in self.list(retired=True)])
        return renamed

    def retire(self, name: str) -> CustomField:
        """Stop validating and offering a field; customers keep their values (``restore`` brings it back)."""
        return self._set_retired(name, True)

    def restore(self, name: str) -> CustomField:
        """Bring a retired field back (its values must still fit its type)."""
        return self._set_retired(name, False)

    def _set_retired(self, name: str, retired: bool) -> CustomField:
        self._crm.access.require("settings.admin")
        field = attrs.evolve(self.get(name), retired=retired)
        if not retired:
            self._check_values(field)
        self._store([field if f.name == name else f for f in self.list(retired=True)])
        return field

    def _check_name(self, name: str) -> None:
        if not _NAME.match(name or ""):
            raise ValidationError("lower-case letters, digits and _, starting with a letter (so_thich)", field="name")
        if any(f.name == name for f in self.list(retired=True)):
            raise ValidationError(f"there is already a custom field {name!r}", field="name")
        taken = {
            *t.customers.c.keys(),
            *self._crm.hooks.customer_fields(),
            *self._crm.hooks.segment_field_definitions(),
        }
        if name in taken:
            raise ValidationError(f"{name!r} is already a customer or plugin field", field="name")

    def _check_values(self, field: CustomField) -> None:
        """Refuse a type that values customers already hold under the name do not fit (naming one)."""
        check = field.schema_field()
        c = t.customers.c
        with self._crm.reading() as conn:
            rows = conn.execute(sa.select(c.id, c.attributes).where(self._holds(conn, field.name))).all()
        bad = []
        for customer_id, attributes in rows:
            try:
                check.deserialize(attributes.get(field.name))
            except SchemaError:
                bad.append((customer_id, attributes.get(field.name)))
        if bad:
            customer_id, value = bad[0]
            raise ValidationError(
                f"{len(bad)} customer(s) hold values that are not {field.type} (customer "
                f"{customer_id}: {value!r}); correct them or choose another type",
                field="type",
            )

    @staticmethod
    def _holds(conn: sa.Connection, name: str) -> sa.ColumnElement[bool]:
        """Customers whose attributes hold ``name`` (its name is checked: plain letters, digits and _)."""
        c = t.customers.c
        if conn.dialect.name == "postgresql":
            return sa.cast(c.attributes, postgresql.JSONB).has_key(name)
        return sa.func.json_type(c.attributes, f'$."{name}"').is_not(None)

    def _store(self, found: list[CustomField]) -> None:
        value = [{**attrs.asdict(f), "choices": list(f.choices)} for f in sorted(found, key=lambda f: f.name)]
        self._crm.set_setting(SETTING, value)
        self._crm.customers.refresh_schema()
