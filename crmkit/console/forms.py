"""A refused change's messages laid out for a form: by the input they belong to, nested ones flattened.

Services raise ``ValidationError`` with messages by field (``{"emails": {"0": ["not an e-mail"]}}``); a page
shows each next to its input, and those about no input of the form at the top (under ``"_"``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from crmkit.errors import ValidationError

TOP = "_"  # the key of messages shown at the top of the form


def messages_of(value: Any) -> list[str]:
    """Every message in a field's value, however nested (dicts by index or key, lists), in order."""
    if isinstance(value, Mapping):
        return [m for item in value.values() for m in messages_of(item)]
    if isinstance(value, (list, tuple)):
        return [m for item in value for m in messages_of(item)]
    return [str(value)]


def form_errors(
    exc: ValidationError, inputs: Collection[str] | None = None, rename: Mapping[str, str] | None = None
) -> dict[str, list[str]]:
    """``exc``'s messages by form input: a service field is renamed by ``rename`` (``{"emails": "email"}``), and
    one that is not among ``inputs`` (when given) goes under ``"_"``, shown at the top."""
    shown: dict[str, list[str]] = {}
    for field, value in exc.errors.items():
        name = (rename or {}).get(field, field)
        shown.setdefault(name if inputs is None or name in inputs else TOP, []).extend(messages_of(value))
    return shown
