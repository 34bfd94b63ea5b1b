"""Response schemas derived from the attrs objects the services return, and the API's shared query schemas.

The services answer with attrs classes (``Customer``, ``Order``…); :func:`schema_of` turns one into
a marshmallow schema from its type hints, so the OpenAPI document describes exactly what
``to_jsonable`` puts on the wire (dates as ISO strings, ``Decimal`` as a string) without a second,
hand-written description that could drift.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import Any

import attrs
from marshmallow import Schema, fields, validate

_SCALARS: dict[Any, type[fields.Field]] = {
    int: fields.Integer,
    str: fields.String,
    bool: fields.Boolean,
    float: fields.Float,
    datetime: fields.DateTime,
    date: fields.Date,
    Decimal: fields.String,
}


@cache
def schema_of(cls: type, name: str | None = None) -> Schema:
    """A marshmallow schema (an instance, named after ``cls``) describing ``to_jsonable`` of an attrs instance."""
    try:
        hints = typing.get_type_hints(cls)
    except (NameError, TypeError):  # a hint only importable while type checking: describe it loosely
        hints = {}
    declared = {a.name: _field(hints.get(a.name, Any)) for a in attrs.fields(cls)}
    return Schema.from_dict(declared, name=name or cls.__name__)()


def _field(hint: Any) -> fields.Field:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        present = [a for a in args if a is not type(None)]
        field = _field(present[0]) if len(present) == 1 else fields.Raw()
        field.allow_none = True
        return field
    if hint in _SCALARS:
        return _SCALARS[hint]()
    if attrs.has(hint):
        return fields.Nested(schema_of(hint))
    if origin in (tuple, list, set, frozenset, Sequence) or (origin is not None and _is(origin, Sequence)):
        item = args[0] if args else Any
        return fields.List(_field(item))
    if origin is not None and _is(origin, Mapping):
        return fields.Dict(keys=fields.String(), values=_field(args[1]) if len(args) == 2 else fields.Raw())
    if hint in (dict, Mapping):
        return fields.Dict()
    return fields.Raw()


def _is(origin: Any, abc: type) -> bool:
    try:
        return issubclass(origin, abc) and origin is not str
    except TypeError:
        return False


def page_of(item: Schema, name: str) -> Schema:
    """The schema of a list page: ``items``, the ``next_cursor`` and the ``next`` link (None on the last page)."""
    return Schema.from_dict(
        {
            "items": fields.List(fields.Nested(item), required=True),
            "next_cursor": fields.String(allow_none=True),
            "next": fields.String(allow_none=True),
        },
        name=name,
    )()


def paging(cursor: str = "after", *, default: int = 20) -> dict[str, fields.Field]:
    """Query fields of a keyset-paged list: ``limit`` (1–1000) and the cursor of the page to start after."""
    return {
        "limit": fields.Integer(load_default=default, validate=validate.Range(1, 1000)),
        cursor: fields.String(validate=validate.Length(1, 2000)),
    }


def query_schema(schema_name: str, /, **declared: fields.Field) -> Schema:
    """A named schema (an instance) of query parameters; unknown parameters are refused by name."""
    return Schema.from_dict(declared, name=schema_name)()
