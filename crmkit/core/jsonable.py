"""Turn crmkit values (attrs objects, dates, Decimals) into JSON-ready data for exports and the audit log."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import attrs


def to_jsonable(value: Any) -> Any:
    """A JSON-serialisable copy of ``value``: ISO dates, Decimal as string, attrs objects as dicts."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if attrs.has(type(value)):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in attrs.fields(type(value))}
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [to_jsonable(v) for v in value]
        return sorted(items, key=str) if isinstance(value, (set, frozenset)) else items
    return str(value)


def encode_cursor(*values: Any) -> str:
    """An opaque, URL-safe keyset cursor for ``values`` (the sort key of the last row shown)."""
    raw = json.dumps(to_jsonable(list(values)), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    """The values packed by :func:`encode_cursor`; ``ValueError`` for a cursor that is not one."""
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"invalid cursor {cursor!r}") from exc
    if not isinstance(values, list) or len(values) != arity:
        raise ValueError(f"invalid cursor {cursor!r}")
    return values
