"""The QCI report: one self-contained HTML file a manager opens or prints (A4, print CSS).

It holds the radar chart of area scores (assessment vs. data), the area table and the assessment
history, the KPI scorecard with targets, traffic lights and trends, and the action plan — each KPI
that has no value says why ("no data: …", "not available: install …") instead of showing a zero.
A report of a scoped scorecard says whose customers it counts in its header and KPI section.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from html import escape
from pathlib import Path

from crmkit.core.types import utcnow
from crmkit_qci import radar
from crmkit_qci.areas import AREAS, title
from crmkit_qci.assessment import Assessment
from crmkit_qci.plan import Action, AreaStanding
from crmkit_qci.scorecard import AMBER, GREEN, NONE, RED, Row, Scorecard

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
  body{background:#fff;font-size:11px}header{background:#fff;color:var(--ink);padding:0 0 8px;border-bottom:2px solid var(--brand)}
  header h1{color:var(--brand)}main{padding:0;max-width:none}
  section{box-shadow:none;border:0;padding:8px 0;margin:0 0 10px;break-inside:auto}
  .split{grid-template-columns:95mm 1fr}.tiles{gap:6px}
  tr,.tile{break-inside:avoid}thead{display:table-header-group}h2{break-after:avoid}
  .light{margin-right:3px}
}
"""


def write(path: Path, *, card: Scorecard, standings: Sequence[AreaStanding], assessments: Sequence[Assessment],
          actions: Sequence[Action], progress: Mapping[str, int], today: date) -> Path:
    """Render the report to ``path`` (UTF-8, no external resources); returns ``path``."""
    latest = assessments[-1] if assessments else None
    lights = card.lights()
    body = [
        f"<header><h1>QCI report — {escape(card.period.label)}</h1>"
        f"<p>Customer management assessed the QCI way and measured from the CRM's data · generated "
        f"{utcnow():%Y-%m-%d %H:%M} UTC · money in {escape(card.currency)}{escape(card.scope_note())}</p>"
        "</header><main>",
        _summary(latest, lights, progress),
        _areas(standings, assessments),
        _kpis(card),
        _plan(actions, progress, today),
        _method(),
        "</main><footer>crmkit-qci · scores 0–100 · lights: green meets the target, amber within its tolerance, "
        "red beyond</footer>",
    ]
    html = ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>QCI report "
            f"{escape(card.period.label)}</title><style>{CSS}</style></head><body>{''.join(body)}</body></html>")
    path.write_text(html, encoding="utf-8")
    return path


def _summary(latest: Assessment | None, lights: Mapping[str, int], progress: Mapping[str, int]) -> str:
    overall = "—" if latest is None or latest.overall is None else f"{latest.overall:.1f}"
    when = "no assessment yet" if latest is None else f"assessment of {latest.assessed_on}"
    tiles = [
        (overall, f"overall assessment score / 100 · {when}"),
        (f"{lights[GREEN]} · {lights[AMBER]} · {lights[RED]}", "KPIs green · amber · red"),
        (str(lights[NONE]), "KPIs without a light (no data, not available or no target)"),
        (f"{progress.get('done', 0)} / {sum(progress.get(s, 0) for s in ('open', 'in_progress', 'done'))}",
         f"plan actions done · {progress.get('overdue', 0)} overdue"),
    ]
    cells = "".join(f'<div class="tile"><b>{escape(v)}</b><span>{escape(t)}</span></div>' for v, t in tiles)
    return f'<section><h2>Summary</h2><div class="tiles">{cells}</div></section>'


def _score(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def _areas(standings: Sequence[AreaStanding], assessments: Sequence[Assessment]) -> str:
    chart = radar.svg([a.title for a in AREAS], [
        radar.Series("Assessment", ASSESSMENT_COLOUR, [s.assessment for s in standings]),
        radar.Series("Data", DATA_COLOUR, [s.data for s in standings], dashed=True),
    ], notes={i: "(no score)" for i, s in enumerate(standings) if s.combined is None})
    rows = "".join(
        f"<tr><td>{escape(title(s.area))}</td><td class=num>{_score(s.assessment)}</td>"
        f"<td class=num>{_score(s.data)}</td><td class=num><b>{_score(s.combined)}</b></td></tr>" for s in standings)
    table = ("<table><thead><tr><th>Area</th><th class=num>Assessment</th><th class=num>Data</th>"
             f"<th class=num>Combined</th></tr></thead><tbody>{rows}</tbody></table>")
    history = ""
    if len(assessments) > 1:
        head = "".join(f"<th class=num>{escape(str(a.assessed_on))}</th>" for a in assessments)
        lines = []
        for area in AREAS:
            cells = "".join(f"<td class=num>{_score(a.score(area.key))}</td>" for a in assessments)
            first, last = assessments[-2].score(area.key), assessments[-1].score(area.key)
            change = "—" if first is None or last is None else f"{last - first:+.1f}"
            css = "" if change == "—" or change.startswith("+0.0") else (" better" if last > first else " worse")  # type: ignore[operator]
            lines.append(f"<tr><td>{escape(area.title)}</td>{cells}<td class='num{css}'>{change}</td></tr>")
        overall = "".join(f"<td class=num><b>{_score(a.overall)}</b></td>" for a in assessments)
        history = ("<h3>Assessments over time</h3><table><thead><tr><th>Area</th>" + head +
                   "<th class=num>Change</th></tr></thead><tbody>" + "".join(lines) +
                   f"<tr><td><b>Overall</b></td>{overall}<td></td></tr></tbody></table>")
    return ("<section><h2>QCI areas: assessment vs. data</h2><p class=lead>Assessment: the latest self-assessment "
            "(0–100). Data: the period's KPIs against their targets (green 100, amber 50, red 0, averaged).</p>"
            f"<div class=split><div>{chart}</div><div>{table}</div></div>{history}</section>")


def _light(row: Row) -> str:
    return f'<span class="light" style="background:{LIGHT_COLOURS[row.light]}"></span>{escape(row.light)}'


def _kpis(card: Scorecard) -> str:
    lines = []
    for area in AREAS:
        rows = [r for r in card.rows if r.measure.area == area.key]
        if not rows:
            continue
        lines.append(f"<tr class=area-row><td colspan=7>{escape(area.title)}</td></tr>")
        for r in rows:
            m = r.measure
            value = escape(m.display())
            previous = "—" if r.previous is None else escape(r.previous.display())
            if r.previous is not None and r.previous.status != "ok":
                previous = f"<span class=why>{escape(r.previous.status)}</span>"
            trend = f"<span class={r.trend}>{escape(r.change_display())}</span>"
            lines.append(
                f"<tr><td>{escape(m.title)}<div class=why>{escape(m.detail or '')}</div></td>"
                f"<td class={'num' if m.status == 'ok' else 'status'}>{value}</td>"
                f"<td class=num>{escape(r.target_display())}</td><td>{_light(r)}</td>"
                f"<td class=num>{previous}</td>"
                f"<td class=num>{trend}</td><td class=why>{escape(m.source)}</td></tr>")
    return ("<section class=kpis><h2>KPI scorecard</h2>"
            f"<p class=lead>{escape(card.period.label)} against targets, with the change on "
            f"{escape(card.period.previous().label)}; KPIs count {escape(card.coverage.describe())}.</p>"
            "<table class=kpi-table><colgroup><col style='width:22%'>"
            "<col style='width:15%'><col style='width:14%'><col style='width:9%'><col style='width:13%'>"
            "<col style='width:14%'><col style='width:13%'></colgroup><thead><tr><th>KPI</th><th class=num>Value</th>"
            "<th class=num>Target</th><th>Light</th><th class=num>Previous</th><th class=num>Change</th>"
            f"<th>Source</th></tr></thead><tbody>{''.join(lines)}</tbody></table></section>")


def _plan(actions: Sequence[Action], progress: Mapping[str, int], today: date) -> str:
    if not actions:
        return ("<section class=plan><h2>Action plan</h2><p class=lead>No action yet: "
                "<code>crmkit qci plan --generate</code> turns the weakest areas into actions.</p></section>")
    rows = []
    for a in actions:
        due = f"<span class=overdue>{a.due_on} (overdue)</span>" if a.overdue(today) else str(a.due_on)
        campaign = ", ".join(x for x in (a.segment_ref and f"segment {a.segment_ref}",
                                         a.campaign_ref and f"campaign {a.campaign_ref}") if x)
        handoff = escape(campaign or a.handoff or "")
        rows.append(f"<tr><td class=num>{a.id}</td><td>{escape(title(a.area))}</td><td><b>{escape(a.title)}</b>"
                    f"<div class=why>{escape(a.description)}</div><div class=why>why: {escape(a.reason)}</div></td>"
                    f"<td>{escape(a.owner or 'unassigned')}</td><td class=num>{due}</td>"
                    f"<td class='status-{a.status}'>{escape(a.status.replace('_', ' '))}</td><td class=why>{handoff}</td></tr>")
    return (f"<section class=plan><h2>Action plan</h2><p class=lead>{progress.get('done', 0)} done, "
            f"{progress.get('in_progress', 0)} in progress, {progress.get('open', 0)} open, "
            f"{progress.get('overdue', 0)} overdue.</p><table><thead><tr><th class=num>#</th><th>Area</th><th>Action</th>"
            "<th>Owner</th><th class=num>Due</th><th>Status</th><th>Campaign</th></tr></thead><tbody>"
            f"{''.join(rows)}</tbody></table></section>")


def _method() -> str:
    return ("<section><h2>How the numbers are made</h2><p class=note>Assessment score of an area = 100 × Σ(weight × "
            "(answer − scale min) / (scale max − scale min)) / Σ weight over answered questions; overall = area scores "
            "averaged with the area weights. Lights: for a KPI where higher is better, green when the value meets the "
            "target, amber when it is within the KPI's tolerance (10% of the target unless set), red otherwise "
            "(mirrored when lower is better). A KPI shows <i>no data</i> when the period holds nothing to measure and "
            "<i>not available</i> when its source plugin is not installed — never a zero.</p></section>")
