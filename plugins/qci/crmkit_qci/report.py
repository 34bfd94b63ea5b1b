"""The QCI report: one self-contained HTML file a manager opens or prints (A4, print CSS).

It holds the radar chart of area scores (assessment vs. data), the area table and the assessment
history, the KPI scorecard with targets, traffic lights and trends, and the action plan — each KPI
that has no value says why ("no data: …", "not available: install …") instead of showing a zero.
A report of a scoped scorecard says whose customers it counts in its header and KPI section.

Written in one language (``<html lang>``) by the translator the caller chose (``crmkit --locale``, else the
business setting): every word through the QCI catalog (areas, KPI titles, the default actions), numbers,
amounts, percentages and dates in the locale's style, the time it was made in the business's time zone, named.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime, tzinfo
from decimal import Decimal
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

from crmkit.money import Money
from crmkit.plugin_api import translate_message
from crmkit_qci import radar
from crmkit_qci.areas import AREAS, title
from crmkit_qci.assessment import Assessment
from crmkit_qci.kpis import CATALOGUE, HIGHER, OK, Coverage, Measure
from crmkit_qci.plan import Action, AreaStanding
from crmkit_qci.scorecard import AMBER, GREEN, NONE, RED, Row, Scorecard

if TYPE_CHECKING:
    from crmkit.plugin_api import Translator

LIGHT_COLOURS = {GREEN: "#2e9d5b", AMBER: "#e7a21b", RED: "#d6453d", NONE: "#b9c0ca"}
ASSESSMENT_COLOUR, DATA_COLOUR = "#1f5f99", "#e07b24"

CSS = """
:root{--ink:#1d2330;--muted:#667085;--line:#e3e7ed;--brand:#123a5e}
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",sans-serif;margin:0;color:var(--ink);
     background:#f4f6f9;font-size:14px;line-height:1.45}
header{background:var(--brand);color:#fff;padding:22px 36px}
header h1{margin:0 0 4px;font-size:24px}header p{margin:0;opacity:.85}
main{max-width:1120px;margin:0 auto;padding:22px 36px}
section{background:#fff;border-radius:10px;padding:18px 24px;margin:0 0 20px;box-shadow:0 1px 3px #0001}
h2{margin:0 0 6px;font-size:19px;color:var(--brand)}h3{margin:16px 0 6px;font-size:15px}
.lead{margin:0 0 12px;color:var(--muted)}
.tiles{display:grid;grid-template-columns:repeat(4,1fr);gap:12px}
.tile{border:1px solid var(--line);border-radius:8px;padding:10px 14px}
.tile b{display:block;font-size:24px}.tile span{color:var(--muted);font-size:12px}
.split{display:grid;grid-template-columns:minmax(0,560px) 1fr;gap:20px;align-items:start}
.split svg{max-width:100%;height:auto}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{border-bottom:1px solid var(--line);padding:6px 8px;text-align:left;vertical-align:top}
th{background:#f7f8fa;font-weight:600;color:#344054}
td.num,th.num{text-align:right;white-space:nowrap}
table.kpi-table{table-layout:fixed}table.kpi-table td.num{white-space:normal;overflow-wrap:anywhere}
td.status{text-align:left;color:var(--muted);font-size:12px;overflow-wrap:anywhere}
tr.area-row td{background:#eef2f7;font-weight:600;color:var(--brand)}
.light{display:inline-block;width:11px;height:11px;border-radius:50%;margin-right:6px;vertical-align:-1px;
       -webkit-print-color-adjust:exact;print-color-adjust:exact}
.why{color:var(--muted);font-size:12px;overflow-wrap:anywhere}.better{color:#2e7d4f}.worse{color:#b3261e}
.status-done{color:#2e7d4f}.overdue{color:#b3261e;font-weight:600}
.note{color:var(--muted);font-size:12px;margin-top:8px}
footer{color:var(--muted);font-size:12px;text-align:center;padding:0 0 24px}
@page{size:A4;margin:14mm 12mm}
@media print{
  body{background:#fff;font-size:11px}
  header{background:#fff;color:var(--ink);padding:0 0 8px;border-bottom:2px solid var(--brand)}
  header h1{color:var(--brand)}main{padding:0;max-width:none}
  section{box-shadow:none;border:0;padding:8px 0;margin:0 0 10px;break-inside:auto}
  .split{grid-template-columns:95mm 1fr}.tiles{gap:6px}
  tr,.tile{break-inside:avoid}thead{display:table-header-group}h2{break-after:avoid}
  .light{margin-right:3px}
}
"""


def write(
    path: Path,
    t: Translator,
    *,
    card: Scorecard,
    standings: Sequence[AreaStanding],
    assessments: Sequence[Assessment],
    actions: Sequence[Action],
    progress: Mapping[str, int],
    today: date,
    now: datetime,
    zone: tzinfo,
) -> Path:
    """Render the report to ``path`` in ``t``'s language (UTF-8, no external resources); returns ``path``."""
    latest = assessments[-1] if assessments else None
    lights = card.lights()
    scope = (" · " + t.gettext("scoped to %(whom)s") % {"whom": _coverage(t, card.coverage)}) if card.scoped else ""
    heading = t.gettext("QCI report — %(period)s") % {"period": card.period.label}
    subtitle = t.gettext(
        "Customer management assessed the QCI way and measured from the CRM's data · generated "
        "%(time)s · money in %(currency)s"
    ) % {"time": t.format_datetime(now, zone), "currency": card.currency}
    footer = t.gettext(
        "crmkit-qci · scores 0–100 · lights: green meets the target, amber within its tolerance, red beyond"
    )
    body = [
        f"<header><h1>{escape(heading)}</h1><p>{escape(subtitle + scope)}</p></header><main>",
        _summary(t, latest, lights, progress),
        _areas(t, standings, assessments),
        _kpis(t, card),
        _plan(t, actions, progress, today),
        _method(t),
        f"</main><footer>{escape(footer)}</footer>",
    ]
    html = (
        f'<!DOCTYPE html><html lang="{t.locale}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>'
        f"{escape(t.gettext('QCI report %(period)s') % {'period': card.period.label})}</title><style>{CSS}</style>"
        f"</head><body>{''.join(body)}</body></html>"
    )
    path.write_text(html, encoding="utf-8")
    return path


#: Why a KPI has no value, as the measures word it (``kpis.py``): the pattern and its msgid.
REASONS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), msgid)
    for pattern, msgid in (
        (r"no customer existed by the end of (?P<period>\S+)", "no customer existed by the end of %(period)s"),
        (r"no interaction in (?P<period>\S+) names an employee", "no interaction in %(period)s names an employee"),
        (r"no rated interaction in (?P<period>\S+)", "no rated interaction in %(period)s"),
        (r"no inbound interaction in (?P<period>\S+)", "no inbound interaction in %(period)s"),
        (
            r"none of the (?P<count>[\d,]+) inbound interactions got an outbound reply within (?P<days>\d+) days",
            "none of the %(count)s inbound interactions got an outbound reply within %(days)s days",
        ),
        (
            r"none of the (?P<count>[\d,]+) inbound contacts was resolved \(outcome (?P<outcomes>.+)\) within "
            r"(?P<days>\d+) days",
            "none of the %(count)s inbound contacts was resolved (outcome %(outcomes)s) within %(days)s days",
        ),
        (r"no purchase in (?P<currency>[A-Z]{3}) in (?P<period>\S+)", "no purchase in %(currency)s in %(period)s"),
        (r"no purchase in (?P<period>\S+)", "no purchase in %(period)s"),
        (r"no purchase with a category in (?P<period>\S+)", "no purchase with a category in %(period)s"),
        (r"no purchase with a known margin in (?P<period>\S+)", "no purchase with a known margin in %(period)s"),
        (
            r"nobody bought in the previous period \((?P<period>\S+)\): retention needs buyers to keep",
            "nobody bought in the previous period (%(period)s): retention needs buyers to keep",
        ),
        (r"no new customer in (?P<period>\S+)", "no new customer in %(period)s"),
        (
            r"no answered satisfaction survey of a case opened in the last 90 days",
            "no answered satisfaction survey of a case opened in the last 90 days",
        ),
        (
            r"install crmkit-campaigns, or record (?P<what>.+?) \((?P<record>.+)\)",
            "install crmkit-campaigns, or record %(what)s (%(record)s)",
        ),
        (r"install (?P<what>.+)", "install %(what)s"),
        (r"needs permission (?P<what>\S+)", "needs permission %(what)s"),
    )
)

#: Light codes → their names (msgids).
LIGHT_NAMES = {GREEN: "green", AMBER: "amber", RED: "red", NONE: "none"}
#: Action statuses → their names (msgids), as the console names them.
STATUS_NAMES = {"open": "Not started", "in_progress": "In progress", "done": "Done"}


def _coverage(t: Translator, coverage: Coverage) -> str:
    """Whose customers the KPIs count, in ``t``'s language."""
    if not coverage.scoped:
        return t.gettext("every customer")
    said = (
        t.gettext("customers of %(user)s's teams")
        if coverage.scope == "team"
        else t.gettext("%(user)s's own customers")
    )
    return said % {"user": coverage.user}


def value_text(t: Translator, unit: str, value: int | Decimal, currency: str | None, *, signed: bool = False) -> str:
    """A KPI value in its unit as a person reads it here: vi ``62,5%``, ``1.500.000 ₫``, ``5,2 giờ``, ``4,00 / 5``."""
    number = Decimal(value)
    sign = "+" if signed and number >= 0 else ""
    if unit == "money":
        return sign + t.format_money(Money(currency or "VND", int(number)))
    if unit == "share" and not signed:
        return t.format_percent(number)
    if unit in ("share", "points"):
        return t.gettext("%(value)s pp") % {"value": ("+" if number >= 0 else "") + t.format_number(number * 100, 1)}
    shown = {"hours": 1, "days": 0, "rating": 2, "count": 0}.get(unit, 2)
    text = sign + t.format_number(number, shown)
    if unit == "hours":
        return t.gettext("%(value)s h") % {"value": text}
    if unit == "days":
        return t.gettext("%(value)s d") % {"value": text}
    return f"{text} / 5" if unit == "rating" and not signed else text


def measure_text(t: Translator, measure: Measure) -> str:
    """A measure's value, or its status (and why) in ``t``'s language."""
    if measure.status != OK or measure.value is None:
        reason = translate_message(t, measure.reason, REASONS) if measure.reason else ""
        return t.gettext(measure.status) + (f": {reason}" if reason else "")
    return value_text(t, measure.unit, measure.value, measure.currency)


def _target(t: Translator, row: Row) -> str:
    """The target in the KPI's unit (``≥ 90%``), with the relative rule when there is one."""
    if row.target is None:
        return "—"
    if row.target_value is None:
        return t.gettext("%(target)s vs previous (no previous value)") % {"target": row.target.text}
    m = row.measure
    shown = f"{'≥' if row.direction == HIGHER else '≤'} {value_text(t, m.unit, row.target_value, m.currency)}"
    if row.target.relative is not None:
        shown += " (" + t.gettext("%(target)s vs previous") % {"target": row.target.text} + ")"
    return shown


def _change(t: Translator, row: Row) -> str:
    """The change on the previous period in the KPI's unit with an arrow (vi ``▲ +3,2 pp``), or ``—``."""
    if row.change is None:
        return "—"
    arrow = "▲" if row.change > 0 else "▼" if row.change < 0 else "="
    return f"{arrow} {value_text(t, row.measure.unit, row.change, row.measure.currency, signed=True)}"


def _summary(t: Translator, latest: Assessment | None, lights: Mapping[str, int], progress: Mapping[str, int]) -> str:
    overall = _score(t, None if latest is None else latest.overall)
    when = (
        t.gettext("no assessment yet")
        if latest is None
        else t.gettext("assessment of %(date)s") % {"date": t.format_date(latest.assessed_on)}
    )
    total = sum(progress.get(s, 0) for s in ("open", "in_progress", "done"))
    n = t.format_number
    tiles = [
        (overall, t.gettext("overall assessment score / 100 · %(when)s") % {"when": when}),
        (f"{n(lights[GREEN])} · {n(lights[AMBER])} · {n(lights[RED])}", t.gettext("KPIs green · amber · red")),
        (n(lights[NONE]), t.gettext("KPIs without a light (no data, not available or no target)")),
        (
            f"{n(progress.get('done', 0))} / {n(total)}",
            t.gettext("plan actions done · %(overdue)s overdue") % {"overdue": n(progress.get("overdue", 0))},
        ),
    ]
    cells = "".join(f'<div class="tile"><b>{escape(v)}</b><span>{escape(label)}</span></div>' for v, label in tiles)
    return f'<section><h2>{escape(t.gettext("Summary"))}</h2><div class="tiles">{cells}</div></section>'


def _score(t: Translator, value: float | None) -> str:
    return "—" if value is None else t.format_number(Decimal(str(value)), 1)


def _areas(t: Translator, standings: Sequence[AreaStanding], assessments: Sequence[Assessment]) -> str:
    _ = t.gettext
    chart = radar.svg(
        [_(a.title) for a in AREAS],
        [
            radar.Series(_("Assessment"), ASSESSMENT_COLOUR, [s.assessment for s in standings]),
            radar.Series(_("Data"), DATA_COLOUR, [s.data for s in standings], dashed=True),
        ],
        notes={i: _("(no score)") for i, s in enumerate(standings) if s.combined is None},
        number=lambda v: _score(t, v),
    )
    rows = "".join(
        f"<tr><td>{escape(_(title(s.area)))}</td><td class=num>{_score(t, s.assessment)}</td>"
        f"<td class=num>{_score(t, s.data)}</td><td class=num><b>{_score(t, s.combined)}</b></td></tr>"
        for s in standings
    )
    table = (
        f"<table><thead><tr><th>{escape(_('Area'))}</th><th class=num>{escape(_('Assessment'))}</th>"
        f"<th class=num>{escape(_('Data'))}</th><th class=num>{escape(_('Combined'))}</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )
    history = ""
    if len(assessments) > 1:
        head = "".join(f"<th class=num>{escape(t.format_date(a.assessed_on))}</th>" for a in assessments)
        lines = []
        for area in AREAS:
            cells = "".join(f"<td class=num>{_score(t, a.score(area.key))}</td>" for a in assessments)
            first, last = assessments[-2].score(area.key), assessments[-1].score(area.key)
            if first is None or last is None:
                change, css = "—", ""
            else:
                delta = Decimal(str(round(last - first, 1)))
                change = ("+" if delta >= 0 else "") + t.format_number(delta, 1)
                css = "" if delta == 0 else (" better" if delta > 0 else " worse")
            lines.append(f"<tr><td>{escape(_(area.title))}</td>{cells}<td class='num{css}'>{escape(change)}</td></tr>")
        overall = "".join(f"<td class=num><b>{_score(t, a.overall)}</b></td>" for a in assessments)
        history = (
            f"<h3>{escape(_('Assessments over time'))}</h3><table><thead><tr><th>{escape(_('Area'))}</th>"
            + head
            + f"<th class=num>{escape(_('Change'))}</th></tr></thead><tbody>"
            + "".join(lines)
            + f"<tr><td><b>{escape(_('Overall'))}</b></td>{overall}<td></td></tr></tbody></table>"
        )
    lead = _(
        "Assessment: the latest self-assessment (0–100). Data: the period's KPIs against their targets "
        "(green 100, amber 50, red 0, averaged)."
    )
    return (
        f"<section><h2>{escape(_('QCI areas: assessment vs. data'))}</h2><p class=lead>{escape(lead)}</p>"
        f"<div class=split><div>{chart}</div><div>{table}</div></div>{history}</section>"
    )


def _light(t: Translator, row: Row) -> str:
    return (
        f'<span class="light" style="background:{LIGHT_COLOURS[row.light]}"></span>'
        f"{escape(t.gettext(LIGHT_NAMES[row.light]))}"
    )


def _kpis(t: Translator, card: Scorecard) -> str:
    _ = t.gettext
    by_key = {k.key: k for k in CATALOGUE}

    def source(key: str) -> str:
        kpi = by_key[key]
        return "; ".join(
            [_(s.name) for s in kpi.sources]
            + [_("%(source)s if installed") % {"source": _(s.name)} for s in kpi.optional]
        )

    lines = []
    for area in AREAS:
        rows = [r for r in card.rows if r.measure.area == area.key]
        if not rows:
            continue
        lines.append(f"<tr class=area-row><td colspan=7>{escape(_(area.title))}</td></tr>")
        for r in rows:
            m = r.measure
            previous = "—" if r.previous is None else escape(measure_text(t, r.previous))
            if r.previous is not None and r.previous.status != OK:
                previous = f"<span class=why>{previous}</span>"
            lines.append(  # what the KPI measures (its definition), in the reader's words
                f"<tr><td>{escape(_(m.title))}<div class=why>{escape(_(by_key[m.key].definition))}</div></td>"
                f"<td class={'num' if m.status == OK else 'status'}>{escape(measure_text(t, m))}</td>"
                f"<td class=num>{escape(_target(t, r))}</td><td>{_light(t, r)}</td>"
                f"<td class=num>{previous}</td>"
                f"<td class=num><span class={r.trend}>{escape(_change(t, r))}</span></td>"
                f"<td class=why>{escape(source(m.key))}</td></tr>"
            )
    lead = _("%(period)s against targets, with the change on %(previous)s; KPIs count %(whom)s.") % {
        "period": card.period.label,
        "previous": card.period.previous().label,
        "whom": _coverage(t, card.coverage),
    }
    head = "".join(
        f"<th{' class=num' if numeric else ''}>{escape(_(name))}</th>"
        for name, numeric in (
            ("KPI", False),
            ("Value", True),
            ("Target", True),
            ("Light", False),
            ("Previous", True),
            ("Change", True),
            ("Source", False),
        )
    )
    return (
        f"<section class=kpis><h2>{escape(_('KPI scorecard'))}</h2><p class=lead>{escape(lead)}</p>"
        "<table class=kpi-table><colgroup><col style='width:22%'>"
        "<col style='width:15%'><col style='width:14%'><col style='width:9%'><col style='width:13%'>"
        f"<col style='width:14%'><col style='width:13%'></colgroup><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(lines)}</tbody></table></section>"
    )


def _plan(t: Translator, actions: Sequence[Action], progress: Mapping[str, int], today: date) -> str:
    _ = t.gettext
    if not actions:
        command = "crmkit qci plan --generate"
        said = escape(_("No action yet: %(command)s turns the weakest areas into actions.") % {"command": command})
        return (
            f"<section class=plan><h2>{escape(_('Action plan'))}</h2><p class=lead>"
            f"{said.replace(command, f'<code>{command}</code>')}</p></section>"
        )
    rows = []
    for a in actions:
        due = escape(t.format_date(a.due_on))
        if a.overdue(today):
            due = f"<span class=overdue>{due} ({escape(_('Overdue'))})</span>"
        refs = (
            (a.segment_ref and _("segment %(ref)s") % {"ref": a.segment_ref}),
            (a.campaign_ref and _("campaign %(ref)s") % {"ref": a.campaign_ref}),
        )
        handoff = escape(", ".join(x for x in refs if x) or (_(a.handoff) if a.handoff else ""))
        why = _("why: %(reason)s") % {"reason": a.reason}
        rows.append(
            f"<tr><td class=num>{a.id}</td><td>{escape(_(title(a.area)))}</td><td><b>{escape(_(a.title))}</b>"
            f"<div class=why>{escape(_(a.description))}</div><div class=why>{escape(why)}</div></td>"
            f"<td>{escape(a.owner or _('Unassigned'))}</td><td class=num>{due}</td>"
            f"<td class='status-{a.status}'>{escape(_(STATUS_NAMES.get(a.status, a.status)))}</td>"
            f"<td class=why>{handoff}</td></tr>"
        )
    n = t.format_number
    lead = _("%(done)s done, %(in_progress)s in progress, %(open)s open, %(overdue)s overdue.") % {
        key: n(progress.get(key, 0)) for key in ("done", "in_progress", "open", "overdue")
    }
    head = "".join(
        f"<th{' class=num' if numeric else ''}>{escape(_(name))}</th>"
        for name, numeric in (
            ("#", True),
            ("Area", False),
            ("Action", False),
            ("Owner", False),
            ("Due", True),
            ("Status", False),
            ("Campaign", False),
        )
    )
    return (
        f"<section class=plan><h2>{escape(_('Action plan'))}</h2><p class=lead>{escape(lead)}</p>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></section>"
    )


def _method(t: Translator) -> str:
    text = t.gettext(
        "Assessment score of an area = 100 × Σ(weight × (answer − scale min) / (scale max − scale min)) / Σ weight "
        "over answered questions; overall = area scores averaged with the area weights. Lights: for a KPI where "
        "higher is better, green when the value meets the target, amber when it is within the KPI's tolerance (10% "
        "of the target unless set), red otherwise (mirrored when lower is better). A KPI shows “no data” when the "
        "period holds nothing to measure and “not available” when its source plugin is not installed — never a zero."
    )
    return (
        f"<section><h2>{escape(t.gettext('How the numbers are made'))}</h2><p class=note>{escape(text)}</p></section>"
    )
