"""Parameter types shared by crmkit commands (core and plugins): times, KEY=VALUE pairs, money amounts.

Conversion borrows the core's own marshmallow fields, so the command line accepts and
refuses exactly what the Python API does.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, overload

import click


class AwareDateTimeParam(click.ParamType):
    """An ISO 8601 date-time with a time zone (``2024-05-01T09:30+07:00`` or ``…Z``), returned in UTC."""

    name = "datetime"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        import marshmallow

        from crmkit.core.schemas import AwareDateTime

        try:
            return AwareDateTime().deserialize(value)
        except marshmallow.ValidationError as exc:
            messages = exc.messages if isinstance(exc.messages, list) else [str(exc.messages)]
            self.fail(f"{value!r}: {'; '.join(map(str, messages))}", param, ctx)


class KeyValueParam(click.ParamType):
    """``KEY=VALUE``; the value is read as JSON when it is JSON (``5``, ``true``, ``null``), else as text."""

    name = "key=value"

    def __init__(self, *, json_values: bool = True) -> None:
        self.json_values = json_values

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[str, Any]:
        if isinstance(value, tuple):
            return value
        key, sep, raw = str(value).partition("=")
        if not sep or not key.strip():
            self.fail(f"{value!r} is not KEY=VALUE", param, ctx)
        if not self.json_values:
            return key.strip(), raw.strip()
        try:
            return key.strip(), json.loads(raw)
        except ValueError:
            return key.strip(), raw


class LazyChoice(click.Choice):
    """A ``click.Choice`` over a vocabulary named by dotted path (``"crmkit.core.models:KINDS"``).

    The vocabulary is imported when a command is parsed or its help shown, not when
    ``crmkit --help`` builds the command tree.
    """

    def __init__(self, ref: str, case_sensitive: bool = True) -> None:
        self.ref = ref
        self.case_sensitive = case_sensitive

    @functools.cached_property
    def choices(self) -> Sequence[str]:  # type: ignore[override]
        from crmkit.plugin import resolve

        return tuple(resolve(self.ref))


AWARE_DATETIME = AwareDateTimeParam()
KEY_VALUE = KeyValueParam()
RENAME = KeyValueParam(json_values=False)


@overload
def amount_minor(text: str, currency: str, option: str) -> int: ...
@overload
def amount_minor(text: None, currency: str, option: str) -> None: ...


def amount_minor(text: str | None, currency: str, option: str) -> int | None:
    """A typed money amount (:meth:`crmkit.money.Money.parse`) in minor units; a bad one is a usage error naming ``option``."""
    from crmkit.money import Money

    if text is None:
        return None
    try:
        return Money.parse(text, currency).minor
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None
