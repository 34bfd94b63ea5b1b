"""Rendering command results as a table, JSON or CSV (``crmkit --format``), for core and plugin commands."""

from __future__ import annotations

import csv
import json
import sys
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import click

from crmkit.core.jsonable import to_jsonable


def emit(rows: Iterable[Mapping[str, Any]], columns: Sequence[str] | None = None, *, title: str | None = None) -> None:
    """Print ``rows`` in the format chosen with ``crmkit --format`` (table by default)."""
    from crmkit.cli.context import CLIContext

    ctx = click.get_current_context(silent=True)
    state = ctx.find_object(CLIContext) if ctx else None
    fmt = state.format if state else "table"
    data = [dict(to_jsonable(dict(r))) for r in rows]
    cols = list(columns) if columns else (list(data[0]) if data else [])
    if fmt == "json":
        click.echo(json.dumps([{c: r.get(c) for c in cols} for r in data], ensure_ascii=False, indent=2))
    elif fmt == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(data)
    else:
        if title:
            click.secho(title, bold=True)
        click.echo(table(data, cols))


def emit_object(obj: Mapping[str, Any]) -> None:
    """Print one record: JSON in json/csv format, ``key: value`` lines in table format."""
    from crmkit.cli.context import CLIContext

    ctx = click.get_current_context(silent=True)
    state = ctx.find_object(CLIContext) if ctx else None
    data = to_jsonable(dict(obj))
    if state is None or state.format == "table":
        width = max((len(k) for k in data), default=0)
        for key, value in data.items():
            shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            click.echo(f"{key.ljust(width)}  {shown}")
    else:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))


def display_width(text: str) -> int:
    """Terminal columns ``text`` takes (combining marks take none; wide CJK take two)."""
    width = 0
    for ch in text:
        if unicodedata.combining(ch):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """A plain-text table with a header row, aligned for Vietnamese diacritics as well as ASCII."""
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max([display_width(c)] + [display_width(row[i]) for row in cells]) for i, c in enumerate(columns)]
    numeric = [all(_is_number(row[i]) for row in cells if row[i]) and any(row[i] for row in cells)
               for i in range(len(columns))]

    def line(values: Sequence[str]) -> str:
        out = []
        for i, value in enumerate(values):
            pad = " " * (widths[i] - display_width(value))
            out.append(pad + value if numeric[i] else value + pad)
        return "  ".join(out).rstrip()

    lines = [line(list(columns)), "  ".join("-" * w for w in widths)]
    lines.extend(line(row) for row in cells)
    if not rows:
        lines.append("(none)")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(_cell(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _is_number(text: str) -> bool:
    return text.replace(",", "").replace(".", "").replace("-", "").replace("%", "").strip().isdigit()
