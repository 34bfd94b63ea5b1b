"""Segment fields as plugins declare them through ``crmkit_segment_fields``.

A hook returns, per field, either a bare SQL expression correlated on ``customers.id`` or a
:class:`SegmentField`: the expression plus, for an enumerated field, the values it takes
(``SegmentField(expression, choices=("loyal", "new", …))``). Whatever compiles filters over
segment fields (campaigns' segment language, price-list conditions) matches a typed value to a
choice with :func:`match_choice` — accents, case, spaces and underscores aside — and refuses an
unknown one with the closest choice suggested, instead of silently matching nobody.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs

from crmkit.core.text import fold
from crmkit.errors import ValidationError

#: The values of an enumerated field, or a function returning them (read when a filter uses the field).
Choices = tuple[str, ...] | Callable[[], Iterable[str]]

_SEPARATORS = re.compile(r"[\s_-]+")


def _choices(value: Any) -> Choices | None:
    if value is None or callable(value):
        return value
    if isinstance(value, str):
        raise TypeError("choices must be a sequence of values or a function returning them, not one string")
    return tuple(str(choice) for choice in value)


@attrs.frozen
class SegmentField:
    """A segment field: its SQL expression (correlated on ``customers.id``) and, when enumerated, its choices.

    ``choices`` is a sequence of the stored values, or a function returning them when they live in
    the database (it is called when a filter uses the field, on the caller's thread, so
    ``crm.reading()`` joins the transaction that builds the query).
    """

    expression: Any
    choices: Choices | None = attrs.field(default=None, converter=_choices)

    @property
    def enumerated(self) -> bool:
        """Whether the field takes only the values of ``choices``."""
        return self.choices is not None

    def values(self) -> tuple[str, ...] | None:
        """The values the field takes (None: any value), reading them if ``choices`` is a function."""
        if self.choices is None:
            return None
        if callable(self.choices):
            return tuple(str(choice) for choice in self.choices())
        return self.choices

    def match(self, name: str, value: str) -> str:
        """The stored value ``value`` stands for (see :func:`match_choice`); any value when not enumerated."""
        values = self.values()
        return value if values is None else match_choice(name, value, values)


def as_segment_field(value: Any) -> SegmentField:
    """A hook's value for a field as a :class:`SegmentField` (a bare expression takes any value)."""
    return value if isinstance(value, SegmentField) else SegmentField(value)


def choice_key(text: str) -> str:
    """How choices compare: lower-case, without accents, spaces, ``-`` and ``_`` alike (``"At risk"`` = ``at_risk``)."""
    return _SEPARATORS.sub("_", fold(text)).strip("_")


def match_choice(name: str, value: str, choices: Sequence[str]) -> str:
    """The choice ``value`` stands for; ``ValidationError`` (field ``name``) suggesting the closest otherwise."""
    wanted = choice_key(value)
    for choice in choices:
        if choice_key(choice) == wanted:
            return choice
    raise ValidationError(unknown_choice(name, value, choices), field=name)


def unknown_choice(name: str, value: str, choices: Sequence[str]) -> str:
    """The message refusing ``value`` for the enumerated field ``name``: the closest choice, then every one."""
    keys = {choice_key(choice): choice for choice in choices}
    close = difflib.get_close_matches(choice_key(value), list(keys), n=1, cutoff=0.6)
    hint = f" (did you mean {keys[close[0]]!r}?)" if close else ""
    listed = ", ".join(choices) if choices else "none defined yet"
    return f"unknown {name} {value!r}{hint}; {name} is one of: {listed}"
