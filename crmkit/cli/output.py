"""Rendering command results as a table, JSON or CSV (``crmkit --format``), for core and plugin commands.

Commands pass typed values — :class:`~crmkit.money.Money`, :class:`Percent`, ``Decimal``, ``int``,
dates, aware date-times — and this module alone decides how a person reads them: in table format
(the default) every value and every column name goes through the command's translator
(:func:`current_translator`: ``crmkit --locale``, else the user's or the business's locale), so
Vietnamese reads ``1.234.567 ₫``, ``60,1%``, ``06/12/2026`` and times in the business's time zone
with the zone named. JSON and CSV never depend on the locale: amounts are ``Money.format()``
(``1.234.567 ₫``), percentages ``60.1%``, dates and times ISO 8601.
"""

from __future__ import annotations

import json
import sys
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import click

from crmkit.core.jsonable import to_jsonable
from crmkit.core.safe_csv import SafeWriter
from crmkit.money import Money

if TYPE_CHECKING:
    from crmkit.i18n import Translator

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


def N_(message: str) -> str:  # noqa: N802 - gettext's name for a marker, as pybabel extracts it
    """Mark ``message`` (a column name, a key) for ``pybabel extract`` without translating it: the output translates
    it when it is shown, in the locale of that moment."""
    return message


def current_translator() -> Translator:
    """The translator of the running command: the plugin's catalogs first when a plugin's command runs, then the
    core's, in the locale ``crmkit --locale`` (else the user's, else the business's) names; vi outside a command."""
    return current_human().translator


@attrs.frozen
class Percent:
    """A ratio a person reads as a percentage: ``Percent(Decimal("0.601"))`` is vi ``60,1%``, en ``60.1%``.

    A plain ``Decimal`` is a number (``1,5``); only this type says "percent". Machine formats write
    ``60.1%`` (:meth:`__str__`), the same in every locale.
    """

    ratio: Decimal = attrs.field(converter=Decimal)

    def __str__(self) -> str:
        text = f"{self.ratio * 100:f}"
        return (text.rstrip("0").rstrip(".") if "." in text else text) + "%"


class Phone(str):
    """A phone number (E.164) a person reads the local way: one of the business's country in its national format
    (``+84912345678`` is ``0912 345 678`` in a Vietnamese business), another country's in the international one.
    JSON and CSV keep E.164 (it is a ``str``)."""


class Coded(str):
    """A stored code (``customer``, ``phone``) that a table shows as ``label`` (``Khách hàng``, ``Điện thoại``);
    JSON and CSV keep the code (it is a ``str``)."""

    label: str

    def __new__(cls, code: str, label: str) -> Coded:
        made = super().__new__(cls, code)
        made.label = label
        return made


#: Keys whose integer values name something (shown as typed, ``1234``) rather than count it (``1.234``).
IDENTIFIER_KEYS = frozenset({"id", "#", "number", "version", "year"})


def _is_identifier(key: str) -> bool:
    """Whether ``key`` names an identifier (``id``, ``customer_id``…): its integers are shown without grouping."""
    return key in IDENTIFIER_KEYS or key.endswith("_id")


@attrs.frozen
class Human:
    """How a person reads values and column names: one locale (``translator``), times in ``zone``."""

    translator: Translator
    zone: tzinfo
    country: str = "VN"

    def label(self, key: str) -> str:
        """A column name or record key (``created_at``) in this locale (vi ``Tạo lúc``); others as they are."""
        return self.translator.gettext(key)

    def cell(self, value: Any, key: str = "") -> str:
        """``value`` as text in this locale; ``key`` tells an identifier (``customer_id 1234``) from a count."""
        t = self.translator
        if value is None:
            return ""
        if isinstance(value, bool):
            return t.gettext("yes") if value else t.gettext("no")
        if isinstance(value, Phone):
            from crmkit.console.display import format_phone

            return format_phone(value, self.country)
        if isinstance(value, Coded):
            return value.label
        if isinstance(value, Money):
            return t.format_money(value)
        if isinstance(value, Percent):
            return t.format_percent(value.ratio)
        if isinstance(value, int):
            return str(value) if _is_identifier(key) else t.format_number(value)
        if isinstance(value, (Decimal, float)):
            return t.format_number(Decimal(str(value)))
        if isinstance(value, datetime):
            if value.tzinfo is None:
                return value.isoformat(sep=" ", timespec="minutes")
            return t.format_datetime(value, self.zone)
        if isinstance(value, date):
            return t.format_date(value)
        if isinstance(value, (list, tuple, set, frozenset)):
            return ", ".join(self.cell(v, key) for v in value)
        if isinstance(value, Mapping) or attrs.has(type(value)):
            return json.dumps(to_jsonable(value), ensure_ascii=False)
        return str(value)

    def numeric(self, value: Any) -> bool:
        """Whether ``value`` is a quantity (right-aligned in a table): a number, an amount, a percentage."""
        if isinstance(value, str):
            return _is_number(value)
        return isinstance(value, (int, Decimal, float, Money, Percent)) and not isinstance(value, bool)


def current_human() -> Human:
    """How the running command shows values to a person: its translator (see :func:`current_translator`), the
    business's time zone (UTC before the CRM is open) and country (for phone numbers)."""
    from crmkit.cli.context import CLIContext
    from crmkit.i18n import translator
    from crmkit.locales import DEFAULT_LOCALE

    ctx = click.get_current_context(silent=True)
    state = ctx.find_object(CLIContext) if ctx else None
    if state is None:
        return Human(translator(DEFAULT_LOCALE), UTC)
    return Human(state.translator_for(state.plugin), state.timezone, state.country)


def _machine(value: Any) -> Any:
    """``value`` for JSON and CSV, the same in every locale: amounts and percentages as their fixed text."""
    if isinstance(value, (Money, Percent)):
        return str(value)
    if isinstance(value, Mapping):
        return {k: _machine(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_machine(v) for v in value]
    return value


def _choose_format(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    from crmkit.cli.context import CLIContext

    state = ctx.find_object(CLIContext)
    if value is not None and state is not None:
        state.format = value


_FORMAT_HELP = "Output format (default: the `crmkit --format` option, else table)."


def format_option(function: F) -> F:
    """Decorator: give a command its own ``--format table|json|csv`` (it overrides the root option)."""
    return click.option(
        "--format",
        "output_format",
        type=click.Choice(FORMATS),
        default=None,
        expose_value=False,
        callback=_choose_format,
        help=_FORMAT_HELP,
    )(function)


def add_format_options(command: click.Command) -> click.Command:
    """Give ``command`` and, for a group, every command under it ``--format table|json|csv`` where it has none.

    ``crmkit`` calls this on its own groups and on each plugin group it loads, so ``crmkit loyalty
    programs --format json`` works like ``crmkit --format json loyalty programs`` without the
    plugin declaring the option. A command whose own ``--format`` means something else (e.g.
    ``customers import --format csv|jsonl``) keeps it.
    """
    if not any("--format" in getattr(param, "opts", ()) for param in command.params):
        command.params.append(
            click.Option(
                ["--format", "output_format"],
                type=click.Choice(FORMATS),
                default=None,
                expose_value=False,
                callback=_choose_format,
                help=_FORMAT_HELP,
            )
        )
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            add_format_options(sub)
    return command


def emit(rows: Iterable[Mapping[str, Any]], columns: Sequence[str] | None = None, *, title: str | None = None) -> None:
    """Print ``rows`` in the format chosen with ``crmkit --format`` (table by default, in the command's locale).

    ``title`` is shown above a table as given: translate it first (``current_translator().gettext``).
    """
    fmt = current_format()
    if fmt == "table":
        listed = [dict(r) for r in rows]
        if title:
            click.secho(title, bold=True)
        shown = list(columns) if columns else (list(listed[0]) if listed else [])
        click.echo(table(listed, shown, human=current_human()))
        return
    data = [dict(to_jsonable(_machine(dict(r)))) for r in rows]
    cols = list(columns) if columns else (list(data[0]) if data else [])
    if fmt == "json":
        click.echo(json.dumps([{c: r.get(c) for c in cols} for r in data], ensure_ascii=False, indent=2))
    else:
        _write_csv(data, cols)


def emit_object(obj: Mapping[str, Any]) -> None:
    """Print one record: aligned ``key  value`` lines in table format (both in the command's locale), JSON, or a
    one-row CSV."""
    fmt = current_format()
    if fmt == "table":
        human = current_human()
        lines = [(human.label(str(key)), human.cell(value, str(key))) for key, value in obj.items()]
        width = max((display_width(label) for label, _ in lines), default=0)
        for label, text in lines:
            click.echo(f"{pad(label, width)}  {text}".rstrip())
        return
    data = to_jsonable(_machine(dict(obj)))
    if fmt == "json":
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        _write_csv([data], list(data))


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
        said = current_translator().gettext("more: repeat with %(option)s %(cursor)s")
        click.echo(said % {"option": option, "cursor": cursor}, err=True)


def _write_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> None:
    from crmkit.cli.context import CLIContext

    ctx = click.get_current_context(silent=True)
    state = ctx.find_object(CLIContext) if ctx else None
    if state is not None and state.bom:
        sys.stdout.write("\ufeff")  # `crmkit --bom`: the output is a file for Excel
    writer = SafeWriter(sys.stdout)
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


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], *, human: Human | None = None) -> str:
    """A plain-text table with a header row, aligned for Vietnamese diacritics as well as ASCII.

    With ``human`` the column names and typed values are shown in its locale (quantities right-aligned);
    without, values are shown as ``str`` gives them and the names as they are.
    """

    def text(value: Any, key: str) -> str:
        return human.cell(value, key) if human else _cell(value)

    def numeric(value: Any) -> bool:
        return human.numeric(value) if human else _is_number(_cell(value))

    cells = [[text(r.get(c), c) for c in columns] for r in rows]
    headers = [human.label(c) if human else c for c in columns]
    widths = [max([display_width(h)] + [display_width(row[i]) for row in cells]) for i, h in enumerate(headers)]
    aligned = [
        all(numeric(r.get(c)) for r in rows if r.get(c) not in (None, ""))
        and any(r.get(c) not in (None, "") for r in rows)
        for c in columns
    ]

    def line(values: Sequence[str]) -> str:
        return "  ".join(pad(value, widths[i], right=aligned[i]) for i, value in enumerate(values)).rstrip()

    lines = [line(headers), "  ".join("-" * w for w in widths)]
    lines.extend(line(row) for row in cells)
    if not rows:
        lines.append(human.translator.gettext("(none)") if human else "(none)")
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
