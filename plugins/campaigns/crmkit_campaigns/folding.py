"""Accent- and case-insensitive text matching evaluated inside the database.

A folded literal (``crmkit.core.text.fold("Hà Nội") == "ha noi"``) becomes a pattern in which
every letter is a class of all the letters that fold to it (``[aAàáạảã…]``): SQLite's ``GLOB``
and PostgreSQL's regular expressions then match every stored spelling — ``Hà Nội``, ``HÀ NỘI``,
``Ha Noi`` — in C, with the pattern passed as a bound parameter (never pasted into the SQL).
Columns that crmkit already stores folded (``customers.name_key``) are compared directly instead,
so their index is used.
"""

from __future__ import annotations

from collections import defaultdict
from functools import lru_cache
from typing import Any

import sqlalchemy as sa

from crmkit.plugin_api import fold

#: Latin letters with diacritics (Latin-1, Latin Extended-A/B, and the Vietnamese block U+1E00–U+1EFF).
_RANGES = ((0x20, 0x250), (0x1E00, 0x1F00))
_GLOB_SPECIAL = set("*?[]")
_REGEX_SPECIAL = set(r".^$*+?()[]{}|\-/")


@lru_cache(maxsize=1)
def variants() -> dict[str, str]:
    """``{folded character: every character that folds to it}``, e.g. ``"d" -> "dDđĐ…"``."""
    found: dict[str, set[str]] = defaultdict(set)
    for start, end in _RANGES:
        for code in range(start, end):
            ch = chr(code)
            folded = fold(ch)
            if len(folded) == 1:
                found[folded].add(ch)
    return {key: "".join(sorted(chars)) for key, chars in found.items() if len(chars) > 1}


def glob_pattern(folded: str, mode: str) -> str:
    """A SQLite GLOB pattern matching text whose fold is ``folded`` (mode: equals, contains, starts)."""
    table = variants()
    parts = []
    for ch in folded:
        if ch in table:
            parts.append("[" + table[ch] + "]")
        elif ch in _GLOB_SPECIAL:
            parts.append("[" + ch + "]")
        else:
            parts.append(ch)
    body = "".join(parts)
    return {"equals": body, "contains": f"*{body}*", "starts": f"{body}*"}[mode]


def regex_pattern(folded: str, mode: str) -> str:
    """A PostgreSQL regular expression matching text whose fold is ``folded`` (mode: equals, contains, starts)."""
    table = variants()
    parts = []
    for ch in folded:
        if ch in table:
            parts.append("[" + "".join("\\" + c if c in _REGEX_SPECIAL else c for c in table[ch]) + "]")
        elif ch in _REGEX_SPECIAL:
            parts.append("\\" + ch)
        else:
            parts.append(ch)
    body = "".join(parts)
    return {"equals": f"^{body}$", "contains": body, "starts": f"^{body}"}[mode]


def folded_match(column: sa.ColumnElement[Any], literal: str, mode: str, dialect: str) -> sa.ColumnElement[bool]:
    """``column`` matches ``literal`` ignoring accents and case: equals, contains or starts with it."""
    folded = fold(literal)
    # Every letter class matches one character, so an equal text has the literal's length: a cheap
    # test that settles most rows before the pattern is tried.
    same_length = sa.func.length(column) == len(folded)
    if dialect == "sqlite":
        match = column.op("GLOB", is_comparison=True)(sa.literal(glob_pattern(folded, mode), sa.String))
        return sa.and_(same_length, match) if mode == "equals" else match
    if dialect == "postgresql":
        match = column.op("~", is_comparison=True)(sa.literal(regex_pattern(folded, mode), sa.String))
        return sa.and_(same_length, match) if mode == "equals" else match
    # Other databases: case-insensitive only (no portable accent folding).
    lowered = sa.func.lower(column)
    if mode == "equals":
        return lowered == folded
    escaped = folded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return lowered.like(f"%{escaped}%" if mode == "contains" else f"{escaped}%", escape="\\")
