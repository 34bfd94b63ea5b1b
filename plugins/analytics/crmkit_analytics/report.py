"""The HTML report: one self-contained file (charts inlined as base64 PNG) a manager can open and read.

It shows headline KPIs, the monthly trend, the RFM grid and segments with what to do about each,
customer types, lifetime value (with the model's parameters), past value, share of wallet and growth
opportunities, cohort retention and CRM activity — each dated, each with a one-line definition. A
measure that cannot be computed (no purchases yet, CLV on too little history) shows why, instead of
breaking the report. Written for a user whose ``analytics.read`` reaches only some customers, every
figure and list counts those customers only, and the header says whose they are.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa

from crmkit.money import Money
from crmkit_analytics import charts, runs
from crmkit_analytics.customer_types import TYPES
from crmkit_analytics.models import clv as clv_table
from crmkit_analytics.rfm import SEGMENTS, segment_of

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from crmkit import CRM

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",sans-serif;margin:0;background:#f5f6f8;color:#1d2330}
header{background:#123a5e;color:#fff;padding:24px 40px}header h1{margin:0 0 6px;font-size:26px}
header p{margin:0;opacity:.85}main{max-width:1100px;margin:0 auto;padding:24px 40px}
section{background:#fff;border-radius:10px;padding:20px 26px;margin:0 0 22px;box-shadow:0 1px 3px #0001}
h2{margin:0 0 4px;font-size:20px;color:#123a5e}.dated{color:#667;font-size:12px;margin:0 0 12px}
.lead{margin:6px 0 14px;color:#333}.tiles{display:grid;grid-template-columns:repeat(auto-fill,minmax(190px,1fr));gap:12px}
.tile{background:#eef3f8;border-radius:8px;padding:12px 14px}.tile b{display:block;font-size:21px;color:#123a5e}
.tile span{font-size:12px;color:#556}table{border-collapse:collapse;width:100%;font-size:13px;margin:8px 0}
th,td{padding:6px 8px;border-bottom:1px solid #e3e6ea;text-align:left;vertical-align:top}th{background:#f0f2f5}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}img{max-width:100%;height:auto;display:block;margin:10px auto}
.note{background:#fff6e0;border-left:4px solid #f0a500;padding:10px 14px;border-radius:4px}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px}
footer{color:#778;font-size:12px;text-align:center;padding:10px 0 30px}
"""


class Page:
    """Collects sections of escaped HTML."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def add(self, text: str) -> None:
        self.parts.append(text)


def esc(value: Any) -> str:
    return html.escape(str(value))


def image(fig: Figure, alt: str, charts_dir: Path | None, name: str) -> str:
    """An inline ``<img>`` of the chart; also saved as PNG and SVG in ``charts_dir`` when given."""
    if charts_dir is not None:
        charts_dir.mkdir(parents=True, exist_ok=True)
        (charts_dir / f"{name}.svg").write_bytes(charts.render(fig, "svg", close=False))
    png = charts.render(fig, "png")
    if charts_dir is not None:
        (charts_dir / f"{name}.png").write_bytes(png)
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def table(rows: Sequence[Mapping[str, Any]], headers: Sequence[tuple[str, str]], numeric: set[str] = frozenset()) -> str:
    """A table of ``rows``; ``headers`` are (key, title); values are shown as given (already formatted)."""
    head = "".join(f'<th class="{"n" if key in numeric else ""}">{esc(title)}</th>' for key, title in headers)
    body = "".join(
        "<tr>" + "".join(f'<td class="{"n" if key in numeric else ""}">{row.get(key) if key.endswith("_html") else esc(_blank(row.get(key)))}</td>'
                         for key, _ in headers) + "</tr>"
        for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body or '<tr><td>(none)</td></tr>'}</tbody></table>"


def _blank(value: Any) -> Any:
    return "—" if value is None else value


def percent(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}%}"


def dated(run: runs.Run) -> str:
    return (f'<p class="dated">As of {run.as_of:%Y-%m-%d %H:%M} UTC · computed {run.computed_at:%Y-%m-%d %H:%M} UTC '
            f'by {esc(run.actor)}</p>')


def write(crm: CRM, path: Path, *, as_of: datetime, currency: str | None, recompute: bool,
          charts_dir: Path | None = None, scope: str | None = None) -> Path:
    """Compute (or read) every measure and write the report to ``path``; returns the path. ``scope`` names whose
    customers the (already scoped) figures cover, for the header (None: every customer)."""
    service = crm.analytics
    if recompute:
        done = service.run(as_of=as_of, currency=currency)
        found: dict[str, runs.Run | None] = dict(done.computed)
        problems = dict(done.problems)
    else:
        found, problems = {name: service.latest(name) for name in ("rfm", "types", "pcv", "sow", "clv")}, {}
    rfm_run, types_run, pcv_run, sow_run, clv_run = (found.get(name) for name in ("rfm", "types", "pcv", "sow", "clv"))
    code = currency or next((r.currency for r in (rfm_run, pcv_run, clv_run) if r is not None and r.currency), None)
    kpis = service.kpis(as_of=as_of, currency=code)
    cohorts = service.cohorts(as_of=as_of, currency=code)
    activity = service.activity(as_of=as_of, months=3)

    def amount(minor: int | None) -> str:
        return "—" if minor is None or code is None else Money(code, int(minor)).format()

    page = Page()
    _headline(page, kpis["overview"], pcv_run, clv_run, amount)
    _trend(page, kpis["months"], code, amount, charts_dir)
    _rfm(page, rfm_run, problems.get("rfm"), amount, charts_dir)
    _types(page, types_run, charts_dir)
    _clv(crm, page, clv_run, problems.get("clv"), amount, charts_dir)
    _pcv(page, service, pcv_run, amount)
    _sow(page, service, sow_run, amount)
    _cohorts(page, cohorts, charts_dir)
    _activity(page, activity)
    settings = service.settings()
    title = f"Customer analytics — {as_of:%d/%m/%Y}"
    subtitle = ((f"Scoped to {esc(scope)}: every figure counts only these customers · " if scope else "")
                + f"Currency {esc(code or '—')} · discount rate {esc(settings['discount_rate'])} a year · "
                f"gross margin rate {esc(settings['gross_margin_rate'])} · generated {datetime.now(crm.timezone):%Y-%m-%d %H:%M}")
    document = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
                f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head><body>'
                f'<header><h1>{esc(title)}</h1><p>{subtitle}</p></header><main>{"".join(page.parts)}</main>'
                "<footer>crmkit-analytics · amounts in the currency's own units · months are UTC calendar months</footer>"
                "</body></html>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(document, encoding="utf-8")
    return path


def _headline(page: Page, overview: Mapping[str, Any], pcv_run: runs.Run | None, clv_run: runs.Run | None,
              amount: Callable[[int | None], str]) -> None:
    tiles = [
        (f"{overview['customers']:,}", f"customers of {overview['scope']}" if overview.get("scope")
         else "customers in the CRM"),
        (f"{overview['buyers']:,}", f"buyers ({overview['prospects']:,} not yet)"),
        (percent(overview["repeat_purchase_rate"]), "bought twice or more (repeat-purchase rate)"),
        (amount(overview["aov_minor"]), "average order value"),
        ("—" if overview["purchase_frequency"] is None else f"{overview['purchase_frequency']:.2f}",
         "purchases per buyer (all time)"),
        (percent(overview["data_freshness"]), f"records updated in the last {overview['freshness_days']} days"),
        (amount(pcv_run.summary["total_minor"]) if pcv_run else "—", "past customer value (PCV), today's money"),
        (amount(clv_run.summary["total_minor"]) if clv_run else "—", "expected lifetime value, next horizon (CLV)"),
    ]
    cells = "".join(f'<div class="tile"><b>{esc(v)}</b><span>{esc(label)}</span></div>' for v, label in tiles)
    page.add(f'<section><h2>Headlines</h2><p class="dated">As of {overview["as_of"]:%Y-%m-%d %H:%M} UTC</p>'
             f'<div class="tiles">{cells}</div></section>')


def _trend(page: Page, months: Sequence[Mapping[str, Any]], code: str | None, amount: Callable[[int | None], str],
           charts_dir: Path | None) -> None:
    chart = image(charts.monthly_trend(months, code), "revenue and active customers per month", charts_dir,
                  "monthly_trend") if code and any(m["orders"] for m in months) else ""
    rows = [{**m, "revenue": amount(m["revenue_minor"]), "aov": amount(m["aov_minor"]),
             "retention_pct": percent(m["retention"]), "churn_pct": percent(m["churn"])} for m in months]
    page.add("<section><h2>Month by month</h2><p class='lead'>New buyers (acquired), customers who bought (active), "
             "revenue, average order value; retention is the share of last month's active customers who bought "
             f"again this month, churn the rest.</p>{chart}"
             + table(rows, [("month", "Month"), ("acquired", "Acquired"), ("active", "Active"), ("orders", "Orders"),
                            ("revenue", "Revenue"), ("aov", "AOV"), ("retention_pct", "Retention"),
                            ("churn_pct", "Churn")],
                     {"acquired", "active", "orders", "revenue", "aov", "retention_pct", "churn_pct"})
             + "</section>")


def _segment_monetary(segment: dict[str, int], average: bool) -> int | None:
    """A segment's total spend, or (average runs) its customers' mean spend per purchase, rounded half up."""
    if not average:
        return segment["monetary_minor"]
    customers = segment["customers"]
    return (2 * segment["monetary_minor"] + customers) // (2 * customers) if customers else None


def _rfm(page: Page, run: runs.Run | None, problem: str | None, amount: Callable[[int | None], str],
         charts_dir: Path | None) -> None:
    average = run is not None and run.parameters.get("monetary") == "average"
    intro = ("<p class='lead'>Every buyer scored 1–5 on <b>recency</b> (days since the last purchase), "
             "<b>frequency</b> (number of purchases) and <b>monetary</b> value "
             f"({'average spend per purchase' if average else 'total spend'}), by quintiles; the "
             "segment follows from R and the average of F and M.</p>")
    if run is None or not run.summary.get("customers"):
        page.add(f"<section><h2>RFM segments</h2>{intro}<p class='note'>{esc(problem or 'No purchases yet.')}</p></section>")
        return
    labels = {k: v[0] for k, v in SEGMENTS.items()}
    grid = image(charts.rfm_grid(run.summary["grid"], segment_of, labels), "RFM grid", charts_dir, "rfm_grid")
    sizes = {k: v["customers"] for k, v in run.summary["segments"].items()}
    bars = image(charts.segment_sizes(sizes, labels, charts.PALETTE, "Customers per RFM segment"), "segment sizes",
                 charts_dir, "rfm_segments")
    total = run.summary["customers"]
    rows = [{"segment_html": f'<span class="swatch" style="background:{charts.PALETTE[k]}"></span>{esc(v[0])}',
             "customers": f"{sizes[k]:,}", "share": percent(sizes[k] / total), "rule": v[1], "action": v[2],
             "spend": amount(_segment_monetary(run.summary["segments"][k], average))}
            for k, v in SEGMENTS.items()]
    page.add(f"<section><h2>RFM segments</h2>{dated(run)}{intro}{grid}{bars}"
             + table(rows, [("segment_html", "Segment"), ("customers", "Customers"), ("share", "Share"),
                            ("spend", "Their average purchase" if average else "Their total spend"),
                            ("rule", "Rule (R, FM)"), ("action", "What to do")],
                     {"customers", "share", "spend"})
             + "</section>")


def _types(page: Page, run: runs.Run | None, charts_dir: Path | None) -> None:
    if run is None:
        return
    sizes = run.summary["types"]
    labels = {k: k.replace("_", " ") for k in TYPES}
    bars = image(charts.segment_sizes(sizes, labels, charts.TYPE_COLOURS, "Customers by type"), "customer types",
                 charts_dir, "customer_types")
    p = run.parameters
    rules = (f"Prospect: never bought. New: first purchase within {p['new_days']} days. Loyal: {p['loyal_purchases']}+ "
             f"purchases and one within {p['at_risk_days']} days. Potential: a purchase within {p['at_risk_days']} "
             f"days. At risk: last purchase within {p['lost_days']} days, or contacted us within {p['at_risk_days']} "
             "days. Lost: the rest.")
    rows = [{"type": labels[k], "customers": f"{sizes[k]:,}", "meaning": meaning} for k, meaning in TYPES.items()]
    page.add(f"<section><h2>Customer types</h2>{dated(run)}<p class='lead'>{esc(rules)}</p>{bars}"
             + table(rows, [("type", "Type"), ("customers", "Customers"), ("meaning", "Meaning")], {"customers"})
             + "</section>")


def _clv(crm: CRM, page: Page, run: runs.Run | None, problem: str | None, amount: Callable[[int | None], str],
         charts_dir: Path | None) -> None:
    intro = ("<p class='lead'>Lifetime value predicts each buyer's purchases (BG/NBD model: how often they buy and "
             "the chance they have stopped) and spend per purchase (Gamma-Gamma), discounted to today's money.</p>")
    if run is None:
        page.add(f"<section><h2>Lifetime value</h2>{intro}<p class='note'>Not available: {esc(problem)}</p></section>")
        return
    in_scope = crm.access.customers(clv_table.c.customer_id, "analytics.read")
    with crm.reading() as conn:
        values = np.fromiter(conn.execute(sa.select(clv_table.c.clv_minor)
                                          .where(clv_table.c.run_id == run.id, in_scope)).scalars(), dtype=np.float64)
    chart = image(charts.clv_distribution(values, run.currency), "CLV distribution", charts_dir, "clv_distribution")
    fit, spend = run.parameters["bgnbd"], run.parameters["gamma_gamma"]
    summary = run.summary
    notes = "".join(f"<p class='note'>Parameter {esc(n)} sits at the edge of its range: the history is too short or "
                    "too uniform to pin it down, so treat the predictions as rough.</p>"
                    for n in (*fit["at_bound"], *spend.get("at_bound", ())))
    if not spend["fitted"]:
        notes += (f"<p class='note'>Spend per purchase is each customer's own average: the spend model could not be "
                  f"fitted ({esc(spend['reason'])}).</p>")
    spend_text = (f"spend p={spend['p']:.4g}, q={spend['q']:.4g}, γ={spend['gamma']:.4g}" if spend["fitted"]
                  else "spend: own averages")
    top = crm.analytics.customers("clv", order="clv_minor", limit=10)
    rows = [{"name": r["name"], "clv": amount(r["clv_minor"]), "p_alive": percent(r["p_alive"], 0),
             "purchases": f"{r['expected_purchases']:.1f}", "spend": amount(r["expected_spend_minor"])} for r in top]
    q = summary["quantiles_minor"]
    page.add(
        f"<section><h2>Lifetime value</h2>{dated(run)}{intro}{notes}"
        f"<p>Over the next {run.parameters['horizon_days']} days: total <b>{esc(amount(summary['total_minor']))}</b>, "
        f"median customer {esc(amount(q['p50']))}, top 10% above {esc(amount(q['p90']))}; "
        f"{summary['likely_inactive']:,} of {summary['customers']:,} buyers are more likely gone than not "
        f"(average P(alive) {percent(summary['mean_p_alive'], 0)}).</p>{chart}"
        + table(rows, [("name", "Most valuable customers"), ("clv", "CLV"), ("p_alive", "P(alive)"),
                       ("purchases", "Expected purchases"), ("spend", "Expected spend / purchase")],
                {"clv", "p_alive", "purchases", "spend"})
        + f"<p class='dated'>Model (time in weeks): r={fit['r']:.4g}, α={fit['alpha']:.4g}, a={fit['a']:.4g}, "
          f"b={fit['b']:.4g}; {spend_text}; "
          f"discount rate {esc(run.parameters['discount_rate'])}, margin rate {esc(run.parameters['gross_margin_rate'])}.</p>"
        "</section>")


def _pcv(page: Page, service: Any, run: runs.Run | None, amount: Callable[[int | None], str]) -> None:
    if run is None:
        return
    top = service.customers("pcv", order="pcv_minor", limit=10)
    rows = [{"name": r["name"], "purchases": r["purchases"], "pcv": amount(r["pcv_minor"])} for r in top]
    page.add(f"<section><h2>Past customer value</h2>{dated(run)}<p class='lead'>What each customer has already "
             f"brought: every purchase's margin (rate {esc(run.parameters['gross_margin_rate'])} where the sale has no "
             f"cost) compounded to today at {esc(run.parameters['discount_rate'])} a year. Total "
             f"<b>{esc(amount(run.summary['total_minor']))}</b> over {run.summary['customers']:,} customers.</p>"
             + table(rows, [("name", "Customer"), ("purchases", "Purchases"), ("pcv", "PCV")], {"purchases", "pcv"})
             + "</section>")


def _sow(page: Page, service: Any, run: runs.Run | None, amount: Callable[[int | None], str]) -> None:
    if run is None:
        return
    lead = ("<p class='lead'>Our share of what customers spend in the category (from their <code>category_spend</code> "
            "attribute, or the estimate set per segment).</p>")
    if not run.summary["customers"]:
        page.add(f"<section><h2>Share of wallet</h2>{dated(run)}{lead}<p class='note'>No customer has a known category "
                 "spend yet: set the <code>category_spend</code> attribute or per-segment estimates "
                 "(<code>crmkit analytics settings --estimate champions=50000000</code>).</p></section>")
        return
    segments = [{"segment": SEGMENTS[k][0] if k in SEGMENTS else k, "customers": f"{v['customers']:,}",
                 "ours": amount(v["spend_minor"]), "category": amount(v["category_spend_minor"]),
                 "share": percent(v["share"])} for k, v in run.summary["segments"].items()]
    threshold, chances = service.growth_opportunities(limit=10)
    rows = [{"name": r["name"], "share": percent(r["share"]), "ours": amount(r["spend_minor"]),
             "category": amount(r["category_spend_minor"]), "headroom": amount(r["headroom_minor"])} for r in chances]
    page.add(f"<section><h2>Share of wallet</h2>{dated(run)}{lead}<p>Overall share <b>{percent(run.summary['share'])}"
             f"</b> across {run.summary['customers']:,} customers with a known category spend.</p>"
             + table(segments, [("segment", "Segment"), ("customers", "Customers"), ("ours", "Our sales"),
                                ("category", "Their category spend"), ("share", "Share of wallet")],
                     {"customers", "ours", "category", "share"})
             + f"<h3>Growth opportunities</h3><p class='lead'>Low share of a big wallet (category spend ≥ "
               f"{esc(amount(threshold))}): the most money left on the table.</p>"
             + table(rows, [("name", "Customer"), ("share", "Our share"), ("ours", "Our sales"),
                            ("category", "Category spend"), ("headroom", "Headroom")],
                     {"share", "ours", "category", "headroom"})
             + "</section>")


def _cohorts(page: Page, rows: Sequence[Mapping[str, Any]], charts_dir: Path | None) -> None:
    if not rows:
        page.add("<section><h2>Cohort retention</h2><p class='note'>No first purchases in the period.</p></section>")
        return
    chart = image(charts.cohort_heatmap(rows), "cohort retention heat map", charts_dir, "cohorts")
    page.add("<section><h2>Cohort retention</h2><p class='lead'>Each row is the customers whose first purchase was in "
             f"that month; each cell the share of them who bought in the months after (month 0 is 100%).</p>{chart}"
             "</section>")


def _activity(page: Page, rows: Sequence[Mapping[str, Any]]) -> None:
    page.add("<section><h2>CRM activity</h2><p class='lead'>Interactions logged per employee per month "
             "(last 3 months).</p>"
             + table(rows, [("month", "Month"), ("employee", "Employee"), ("interactions", "Interactions"),
                            ("inbound", "Inbound"), ("outbound", "Outbound"), ("customers", "Customers reached")],
                     {"interactions", "inbound", "outbound", "customers"})
             + "</section>")

