"""Rendering command results as a table, JSON or CSV (``crmkit --format``), for core and plugin commands."""

from __future__ import annotations

import csv
import json
import sys
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import click

from crmkit.core.jsonable import to_jsonable

FORMATS = ("table", "json", "csv")
#: Separates list items in a CSV cell, as ``crmkit customers import`` reads them.
CSV_LIST_SEPARATOR = ";"
F = TypeVar("F", bound=Callable[..., Any])


def current_format() -> str:
    """The output format chosen with ``crmkit --format`` or a command's own ``--format`` (table by default)."""
    from crmkit.cli.context import CLIContext

    ctx = click.get_current_context(silent=True)
    state = ctx.find_object(CLIContext) if ctx else None
    return state.format if state else "table"


def _choose_format(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    from crmkit.cli.context import CLIContext

    state = ctx.find_object(CLIContext)
    if value is not None and state is not None:
        state.format = value


_FORMAT_HELP = "Output format (default: the `crmkit --format` option, else table)."


def format_option(function: F) -> F:
    """Decorator: give a command its own ``--format table|json|csv`` (it overrides the root option)."""
    return click.option(
        "--format", "output_format", type=click.Choice(FORMATS), default=None, expose_value=False,
        callback=_choose_format, help=_FORMAT_HELP,
    )(function)


def add_format_options(command: click.Command) -> click.Command:
    """Give ``command`` and, for a group, every command under it ``--format table|json|csv`` where it has none.

    ``crmkit`` calls this on its own groups and on each plugin group it loads, so ``crmkit loyalty
    programs --format json`` works like ``crmkit --format json loyalty programs`` without the
    plugin declaring the option. A command whose own ``--format`` means something else (e.g.
    ``customers import --format csv|jsonl``) keeps it.
    """
    if not any("--format" in getattr(param, "opts", ()) for param in command.params):
        command.params.append(click.Option(
            ["--format", "output_format"], type=click.Choice(FORMATS), default=None, expose_value=False,
            callback=_choose_format, help=_FORMAT_HELP,
        ))
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            add_format_options(sub)
    return command


def emit(rows: Iterable[Mapping[str, Any]], columns: Sequence[str] | None = None, *, title: str | None = None) -> None:
    """Print ``rows`` in the format chosen with ``crmkit --format`` (table by default)."""
    fmt = current_format()
    data = [dict(to_jsonable(dict(r))) for r in rows]
    cols = list(columns) if columns else (list(data[0]) if data else [])
    if fmt == "json":
        click.echo(json.dumps([{c: r.get(c) for c in cols} for r in data], ensure_ascii=False, indent=2))
    elif fmt == "csv":
        _write_csv(data, cols)
    else:
        if title:
            click.secho(title, bold=True)
        click.echo(table(data, cols))


def emit_object(obj: Mapping[str, Any]) -> None:
    """Print one record: aligned ``key  value`` lines in table format, JSON, or a one-row CSV."""
    fmt = current_format()
    data = to_jsonable(dict(obj))
    if fmt == "json":
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
    elif fmt == "csv":
        _write_csv([data], list(data))
    else:
        width = max((display_width(k) for k in data), default=0)
        for key, value in data.items():
            click.echo(f"{pad(key, width)}  {_cell(value)}".rstrip())


def emit_sections(sections: Mapping[str, Sequence[str]]) -> None:
    """Print ``{title: lines}`` as titled blocks (table format) or as a JSON object (json/csv)."""
    if current_format() != "table":
        click.echo(json.dumps({k: list(v) for k, v in sections.items()}, ensure_ascii=False, indent=2))
        return
    for title, lines in sections.items():
        click.echo()
        click.secho(title, bold=True)
        for line in lines:
            click.echo(f"  {line}".rstrip())


class _Silent:
    """A progress bar that shows nothing (stderr is not a terminal)."""

    def __enter__(self) -> _Silent:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, steps: int) -> None:
        return None


def progress_bar(length: int, label: str) -> Any:
    """A click progress bar on stderr with ``update(n)``, or a silent one when stderr is not a terminal."""
    if not sys.stderr.isatty():
        return _Silent()
    return click.progressbar(length=max(1, length), label=label, file=sys.stderr, show_pos=True)


def print_next_page(cursor: str | None, option: str) -> None:
    """Tell the user how to get the next page of a keyset listing (on stderr, so stdout stays parseable)."""
    if cursor:
        click.echo(f"more: repeat with {option} {cursor}", err=True)


def _write_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> None:
    from crmkit.cli.context import CLIContext

    ctx = click.get_current_context(silent=True)
    state = ctx.find_object(CLIContext) if ctx else None
    if state is not None and state.bom:
        sys.stdout.write("\ufeff")  # `crmkit --bom`: the output is a file for Excel
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_cell(row.get(c)) for c in columns])


def _csv_cell(value: Any) -> str:
    """One CSV cell: a list of plain values joined with ``;`` (as imports read them), other structures as JSON."""
    if value is None:
        return ""
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
        return CSV_LIST_SEPARATOR.join(str(v) for v in value)
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def display_width(text: str) -> int:
    """Terminal columns ``text`` takes (combining marks take none; wide CJK take two)."""
    width = 0
    for ch in text:
        if unicodedata.combining(ch):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


def pad(text: str, width: int, *, right: bool = False) -> str:
    """``text`` padded with spaces to ``width`` terminal columns (right-aligned when ``right``)."""
    fill = " " * max(0, width - display_width(text))
    return fill + text if right else text + fill


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """A plain-text table with a header row, aligned for Vietnamese diacritics as well as ASCII."""
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max([display_width(c)] + [display_width(row[i]) for row in cells]) for i, c in enumerate(columns)]
    numeric = [all(_is_number(row[i]) for row in cells if row[i]) and any(row[i] for row in cells)
               for i in range(len(columns))]

    def line(values: Sequence[str]) -> str:
        return "  ".join(pad(value, widths[i], right=numeric[i]) for i, value in enumerate(values)).rstrip()

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
