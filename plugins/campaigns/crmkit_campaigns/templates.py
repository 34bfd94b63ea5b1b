"""Message templates: ``{{ placeholder | filter | filter("argument") }}``, checked when the campaign is created.

Placeholders are the customer's fields (``first_name``, ``name``, ``city``…), the campaign's
(``campaign_name``, ``unsubscribe_url``) and every segment field plugins contribute
(``total_spend``, ``points_balance``, ``loyalty_tier``…). Filters:

* ``money`` / ``money("USD")`` — integer minor units as money: ``{{ total_spend | money }}`` → ``1.500.000 ₫``
  (the campaign's currency unless one is given);
* ``number`` — ``1500000`` → ``1.500.000``;
* ``date`` / ``date("%d/%m")`` — a date or time as the local date, ``29/01/2025`` by default;
* ``upper``, ``lower``, ``title``;
* ``default("bạn")`` — the text to use when the value is empty.

An unknown placeholder or filter, a filter that does not fit the placeholder's type, or a
malformed ``{{ … }}`` is a ``ValidationError`` naming the line and column — at create time,
never at send time. A template is plain text: nothing in it is executed.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from datetime import date, datetime, tzinfo
from decimal import Decimal
from typing import Any

import attrs

from crmkit.errors import ValidationError
from crmkit.money import Money

FILTERS = {
    "money": ("number",),
    "number": ("number",),
    "date": ("date", "datetime"),
    "upper": ("text",),
    "lower": ("text",),
    "title": ("text",),
    "default": None,
}
_OPEN, _CLOSE = "{{", "}}"
_IDENT = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*")
_FILTER = re.compile(
    r"\s*\|\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\(\s*(\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|-?\d+)?\s*\))?\s*"
)


@attrs.frozen
class Placeholder:
    """``{{ name | filter(argument) … }}`` at ``line``/``column`` of the template."""

    name: str
    filters: tuple[tuple[str, Any], ...]
    line: int
    column: int


@attrs.frozen
class Template:
    """A parsed template: literal text and placeholders, in order."""

    parts: tuple[str | Placeholder, ...]

    @property
    def names(self) -> set[str]:
        """The placeholders the template uses."""
        return {p.name for p in self.parts if isinstance(p, Placeholder)}

    def render(self, values: Mapping[str, Any], *, currency: str, zone: tzinfo) -> str:
        """The text for one customer; ``values`` maps each placeholder to its value (None when empty)."""
        return "".join(text for text, _ in self.pieces(values, currency=currency, zone=zone))

    def pieces(self, values: Mapping[str, Any], *, currency: str, zone: tzinfo) -> list[tuple[str, str | None]]:
        """The rendered text in pieces ``(text, placeholder name)``, None for the template's own text: so that
        links can be told apart by who wrote them (the template's author, or a customer through a value)."""
        return [
            (part, None) if isinstance(part, str) else (_apply(part, values.get(part.name), currency, zone), part.name)
            for part in self.parts
        ]


def parse(text: str, variables: Mapping[str, str], *, field: str) -> Template:
    """Parse ``text`` with the placeholders ``variables`` (name → type); errors name ``field``, line and column."""
    parts: list[str | Placeholder] = []
    pos = 0
    while True:
        start = text.find(_OPEN, pos)
        stray = text.find(_CLOSE, pos)
        if stray != -1 and (start == -1 or stray < start):
            raise _error(text, stray, "'}}' without an opening '{{'", field)
        if start == -1:
            parts.append(text[pos:])
            break
        parts.append(text[pos:start])
        end = text.find(_CLOSE, start + 2)
        if end == -1:
            raise _error(text, start, "'{{' is never closed with '}}'", field)
        parts.append(_placeholder(text, start, end, variables, field))
        pos = end + 2
    return Template(tuple(p for p in parts if p != ""))


def _placeholder(text: str, start: int, end: int, variables: Mapping[str, str], field: str) -> Placeholder:
    inner = text[start + 2 : end]
    found = _IDENT.match(inner)
    if not found or not found.group(1):
        raise _error(text, start, f"expected a placeholder name inside '{{{{ }}}}', found {inner.strip()!r}", field)
    name = found.group(1)
    line, column = _position(text, start)
    if name not in variables:
        close = difflib.get_close_matches(name, variables, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise _error(
            text, start, f"unknown placeholder {{{{ {name} }}}}{hint}; known: {', '.join(sorted(variables))}", field
        )
    kind = variables[name]
    filters: list[tuple[str, Any]] = []
    pos = found.end()
    while pos < len(inner):
        step = _FILTER.match(inner, pos)
        if not step or step.end() == pos:
            raise _error(text, start + 2 + pos, f"expected '| filter' in {{{{ {inner.strip()} }}}}", field)
        filter_name, raw = step.group(1), step.group(2)
        if filter_name not in FILTERS:
            raise _error(text, start + 2 + pos, f"unknown filter {filter_name!r} (known: {', '.join(FILTERS)})", field)
        accepted = FILTERS[filter_name]
        if accepted is not None and kind != "any" and kind not in accepted:
            raise _error(
                text,
                start + 2 + pos,
                f"filter {filter_name!r} needs {' or '.join(accepted)}, but {name} is {kind}",
                field,
            )
        argument = _argument(raw)
        if (
            filter_name == "money"
            and argument is not None
            and not (isinstance(argument, str) and re.fullmatch(r"[A-Za-z]{3}", argument))
        ):
            raise _error(text, start + 2 + pos, f'money takes a currency code such as "VND", got {raw}', field)
        if filter_name == "default" and argument is None:
            raise _error(text, start + 2 + pos, 'default needs the text to use, e.g. default("bạn")', field)
        filters.append((filter_name, argument))
        if filter_name in ("money", "number", "date"):
            kind = "text"
        pos = step.end()
    return Placeholder(name, tuple(filters), line, column)


def _argument(raw: str | None) -> Any:
    if raw is None:
        return None
    if raw[0] in "\"'":
        return re.sub(r"\\(.)", r"\1", raw[1:-1])
    return int(raw)


def _position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


def _error(text: str, offset: int, message: str, field: str) -> ValidationError:
    line, column = _position(text, offset)
    return ValidationError(f"line {line}, column {column}: {message}", field=field)


def _apply(part: Placeholder, value: Any, currency: str, zone: tzinfo) -> str:
    for name, argument in part.filters:
        if name == "default":
            value = argument if value in (None, "") else value
        elif value in (None, ""):
            continue
        elif name == "money":
            value = Money(argument or currency, int(value)).format()
        elif name == "number":
            value = format_number(value)
        elif name == "date":
            moment = value.astimezone(zone).date() if isinstance(value, datetime) else value
            value = moment.strftime(argument or "%d/%m/%Y") if isinstance(moment, date) else str(moment)
        elif name == "upper":
            value = str(value).upper()
        elif name == "lower":
            value = str(value).lower()
        elif name == "title":
            value = str(value).title()
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(zone).strftime("%d/%m/%Y %H:%M")
    if isinstance(value, date):
        return value.strftime("%d/%m/%Y")
    return str(value)


def format_number(value: Any) -> str:
    """A number the Vietnamese way: ``1.500.000``, ``2.345,5``."""
    number = Decimal(str(value))
    text = f"{number:,}"
    return text.replace(",", "\0").replace(".", ",").replace("\0", ".")
