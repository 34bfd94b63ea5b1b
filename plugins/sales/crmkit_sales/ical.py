"""A small iCalendar (RFC 5545) writer: text escaping, UTC times, UIDs, DTSTAMP and line folding.

Only what an agenda export needs (VEVENT, VTODO); lines end with CRLF and are folded at
75 octets without splitting a UTF-8 character.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

PRODID = "-//crmkit//crmkit-sales//EN"


def escape(text: str) -> str:
    """A TEXT value escaped per RFC 5545 §3.3.11: backslash, semicolon, comma, newlines."""
    text = text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    return text.replace("\r\n", "\\n").replace("\r", "\\n").replace("\n", "\\n")


def utc(moment: datetime) -> str:
    """A DATE-TIME in UTC form (``20260301T020000Z``); naive datetimes are refused."""
    if moment.tzinfo is None:
        raise ValueError("iCalendar times must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def fold(line: str, limit: int = 75) -> str:
    """Fold a content line into CRLF + space continuations of at most ``limit`` octets (RFC 5545 §3.1)."""
    out: list[str] = []
    current, size = "", 0
    budget = limit
    for ch in line:
        width = len(ch.encode("utf-8"))
        if size + width > budget:
            out.append(current)
            current, size, budget = "", 0, limit - 1  # continuation lines start with one space
        current += ch
        size += width
    out.append(current)
    return "\r\n ".join(out)


def component(name: str, properties: Sequence[tuple[str, str | None]]) -> list[str]:
    """``BEGIN:name``, its properties (values already formatted; None skipped), ``END:name``."""
    lines = [f"BEGIN:{name}"]
    lines.extend(f"{key}:{value}" for key, value in properties if value is not None)
    lines.append(f"END:{name}")
    return lines


def calendar(name: str, components: Iterable[list[str]]) -> str:
    """A VCALENDAR holding ``components``, folded, with CRLF line ends."""
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{escape(name)}",
    ]
    for lines_of_one in components:
        lines.extend(lines_of_one)
    lines.append("END:VCALENDAR")
    return "".join(fold(line) + "\r\n" for line in lines)
