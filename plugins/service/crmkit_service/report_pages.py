"""Service reports as HTML: a bar chart (inline SVG, no script) and the table of each report, for the console page
``/console/service/reports`` and for ``crmkit service report NAME --html FILE`` (a standalone page).

Every text is escaped; captions and column names go through the reader's translator, numbers through its locale.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

from crmkit.plugin_api import N_

if TYPE_CHECKING:
    from crmkit.plugin_api import Translator

#: Per report: the columns naming a bar, and the number it shows.
CHARTS: dict[str, tuple[tuple[str, ...], str]] = {
    "backlog": (("status", "age"), "cases"),
    "sla": (("team", "assignee"), "compliance"),
    "fcr": (("team",), "fcr"),
    "reopens": (("team",), "reopen_rate"),
    "csat": (("assignee", "team", "category"), "average"),
    "csat-trend": (("assignee", "team", "category", "month"), "average"),
    "hours": (("weekday", "hour"), "cases"),
}
#: Report names as a person reads them.
TITLES = {
    "backlog": N_("Backlog by status and age"),
    "sla": N_("SLA compliance per team and agent"),
    "fcr": N_("First-contact resolution per team"),
    "reopens": N_("Reopen rate per team"),
    "csat": N_("Customer satisfaction"),
    "csat-trend": N_("Customer satisfaction by month"),
    "hours": N_("Busiest hours"),
}
BAR_HEIGHT, LABEL_WIDTH, BAR_WIDTH = 18, 260, 360
MAX_BARS = 40


def _text(value: Any, t: Translator) -> str:
    if value is None:
        return "—"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return t.format_number(Decimal(str(value)))
    return str(value)


def chart(name: str, rows: Sequence[Mapping[str, Any]], t: Translator) -> Markup:
    """A horizontal bar chart of the report's main number (the first :data:`MAX_BARS` rows)."""
    labels, value = CHARTS[name]
    shown = [row for row in rows if isinstance(row.get(value), int | float)][:MAX_BARS]
    if not shown:
        return Markup("")
    top = max(float(row[value]) for row in shown) or 1.0
    height = BAR_HEIGHT * len(shown) + 4
    width = LABEL_WIDTH + BAR_WIDTH + 80
    bar = Markup(
        '<text x="{}" y="{}" text-anchor="end" font-size="12">{}</text>'
        '<rect x="{}" y="{}" width="{}" height="{}" fill="#4393c3"/><text x="{}" y="{}" font-size="12">{}</text>'
    )
    bars = []
    for n, row in enumerate(shown):
        y = n * BAR_HEIGHT + 2
        label = " · ".join(_text(row[k], t) for k in labels if k in row)
        length = max(1, round(BAR_WIDTH * float(row[value]) / top))
        bars.append(
            bar.format(
                LABEL_WIDTH - 6,
                y + 13,
                label,
                LABEL_WIDTH,
                y,
                length,
                BAR_HEIGHT - 4,
                LABEL_WIDTH + length + 4,
                y + 13,
                _text(row[value], t),
            )
        )
    return Markup(
        '<svg class="chart" role="img" aria-label="{}" width="{}" height="{}" viewBox="0 0 {} {}" '
        'xmlns="http://www.w3.org/2000/svg">{}</svg>'
    ).format(t.gettext(TITLES[name]), width, height, width, height, Markup("").join(bars))


def table(rows: Sequence[Mapping[str, Any]], t: Translator) -> Markup:
    """The report's rows as an HTML table, columns named in the reader's language."""
    if not rows:
        return Markup("<p>{}</p>").format(t.gettext("Nothing to report for this period."))
    columns = list(rows[0])
    head = Markup("").join(Markup('<th scope="col">{}</th>').format(t.gettext(c)) for c in columns)
    body = Markup("").join(
        Markup("<tr>{}</tr>").format(
            Markup("").join(Markup("<td>{}</td>").format(_text(row.get(c), t)) for c in columns)
        )
        for row in rows
    )
    return Markup('<div class="scroll"><table><thead><tr>{}</tr></thead><tbody>{}</tbody></table></div>').format(
        head, body
    )


def standalone(name: str, rows: Sequence[Mapping[str, Any]], t: Translator) -> str:
    """The HTML report file: title, chart and table on one page."""
    return str(
        Markup(
            '<!doctype html><html lang="{}"><head><meta charset="utf-8"><title>{}</title><style>'
            "body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}"
            "td,th{{border:1px solid #ccc;padding:2px 6px}}</style></head><body><h1>{}</h1>{}{}</body></html>"
        ).format(t.locale, t.gettext(TITLES[name]), t.gettext(TITLES[name]), chart(name, rows, t), table(rows, t))
    )
