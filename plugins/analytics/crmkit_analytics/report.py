"""The HTML report: one self-contained file (charts inlined as base64 PNG) a manager can open and read.

It shows headline KPIs, the monthly trend, the RFM grid and segments with what to do about each,
customer types, lifetime value (with the model's parameters), past value, share of wallet and growth
opportunities, cohort retention and CRM activity — each dated, each with a one-line definition. A
measure that cannot be computed (no purchases yet, CLV on too little history) shows why, instead of
breaking the report. Written for a user whose ``analytics.read`` reaches only some customers, every
figure and list counts those customers only, and the header says whose they are.

Written in one language (``<html lang>``): ``crmkit --locale``, else the business setting, else Vietnamese —
every word through the analytics catalog, amounts, numbers and percentages in the locale's style (vi
``1.234.567 ₫``, ``60,1%``), times in the business's time zone with the zone named.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
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
    from crmkit.plugin_api import Translator

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
    """Collects sections of escaped HTML, written in one language: ``t`` for words and figures, times in ``zone``."""

    def __init__(self, t: Translator, zone: tzinfo) -> None:
        self.t = t
        self.zone = zone
        self.parts: list[str] = []

    def add(self, text: str) -> None:
        self.parts.append(text)

    def number(self, value: int | float | Decimal | None, places: int | None = None) -> str:
        """A count or a figure with the locale's separators (vi ``1.234``), ``—`` when unknown."""
        return "—" if value is None else self.t.format_number(Decimal(str(value)), places)

    def percent(self, value: float | Decimal | None) -> str:
        """A ratio as a percentage (vi ``60,1%``), ``—`` when unknown."""
        return "—" if value is None else self.t.format_percent(Decimal(str(value)))

    def time(self, value: datetime) -> str:
        """A stored (UTC) time as a person here reads it: local to the business, the zone named."""
        return self.t.format_datetime(value if value.tzinfo else value.replace(tzinfo=UTC), self.zone)

    def dated(self, run: runs.Run) -> str:
        """When a measure describes and when it was computed, by whom."""
        said = self.t.gettext("As of %(as_of)s · computed %(computed)s by %(actor)s") % {
            "as_of": self.time(run.as_of),
            "computed": self.time(run.computed_at),
            "actor": run.actor,
        }
        return f'<p class="dated">{esc(said)}</p>'

    def table(
        self, rows: Sequence[Mapping[str, Any]], headers: Sequence[tuple[str, str]], numeric: set[str] = frozenset()
    ) -> str:
        """A table of ``rows`` (values already formatted); ``headers`` are (key, title), titles through the catalog."""
        return table(
            rows, [(key, self.t.gettext(title)) for key, title in headers], numeric, empty=self.t.gettext("(none)")
        )


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


def table(
    rows: Sequence[Mapping[str, Any]],
    headers: Sequence[tuple[str, str]],
    numeric: set[str] = frozenset(),
    *,
    empty: str = "(none)",
) -> str:
    """A table of ``rows``; ``headers`` are (key, title); values are shown as given (already formatted)."""
    head = "".join(f'<th class="{"n" if key in numeric else ""}">{esc(title)}</th>' for key, title in headers)
    body = "".join(
        "<tr>"
        + "".join(f'<td class="{"n" if key in numeric else ""}">{_cell(row, key)}</td>' for key, _ in headers)
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body or f'<tr><td>{esc(empty)}</td></tr>'}</tbody></table>"


def _cell(row: Mapping[str, Any], key: str) -> str:
    """A cell's HTML: ``*_html`` values as they are (built escaped), any other value escaped."""
    return str(row.get(key)) if key.endswith("_html") else esc(_blank(row.get(key)))


def _blank(value: Any) -> Any:
    return "—" if value is None else value


def write(
    crm: CRM,
    path: Path,
    *,
    as_of: datetime,
    currency: str | None,
    recompute: bool,
    charts_dir: Path | None = None,
    scope: str | None = None,
    locale: str | None = None,
    clv_check: Mapping[str, Any] | None = None,
) -> Path:
    """Compute (or read) every measure and write the report to ``path``; returns the path. ``scope`` names whose
    customers the (already scoped) figures cover, for the header (None: every customer). It is written in
    ``locale`` (vi or en), else the business setting ``locale``, else Vietnamese."""
    from crmkit.plugin_api import plugin_translator

    t = plugin_translator(crm, "analytics", locale)
    _ = t.gettext
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
        return "—" if minor is None or code is None else t.format_money(Money(code, int(minor)))

    page = Page(t, crm.timezone)
    _headline(page, kpis["overview"], pcv_run, clv_run, amount)
    _trend(page, kpis["months"], code, amount, charts_dir)
    _rfm(page, rfm_run, problems.get("rfm"), amount, charts_dir)
    _types(page, types_run, charts_dir)
    _clv(crm, page, clv_run, problems.get("clv"), amount, charts_dir)
    if clv_check is not None:
        _clv_check(page, clv_check, charts_dir)
    _pcv(page, service, pcv_run, amount)
    _sow(page, service, sow_run, amount)
    _cohorts(page, cohorts, charts_dir)
    _activity(page, activity)
    settings = service.settings()
    title = _("Customer analytics — %(date)s") % {"date": t.format_date(as_of.astimezone(crm.timezone).date())}
    subtitle = (
        _("Scoped to %(whom)s: every figure counts only these customers") % {"whom": scope} + " · " if scope else ""
    ) + _(
        "Currency %(currency)s · discount rate %(discount)s a year · gross margin rate %(margin)s · generated %(time)s"
    ) % {
        "currency": code or "—",
        "discount": page.number(settings["discount_rate"]),
        "margin": page.number(settings["gross_margin_rate"]),
        "time": page.time(crm.now()),
    }
    footer = _("crmkit-analytics · amounts in the currency's own units · months are calendar months in %(zone)s") % {
        "zone": crm.timezone.key
    }
    document = (
        f'<!DOCTYPE html><html lang="{t.locale}"><head><meta charset="utf-8"><title>{esc(title)}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head><body>'
        f"<header><h1>{esc(title)}</h1><p>{esc(subtitle)}</p></header><main>{''.join(page.parts)}</main>"
        f"<footer>{esc(footer)}</footer></body></html>"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(document, encoding="utf-8")
    return path


def _headline(
    page: Page,
    overview: Mapping[str, Any],
    pcv_run: runs.Run | None,
    clv_run: runs.Run | None,
    amount: Callable[[int | None], str],
) -> None:
    _, n = page.t.gettext, page.number
    tiles = [
        (
            n(overview["customers"]),
            _("customers of %(whom)s") % {"whom": overview["scope"]}
            if overview.get("scope")
            else _("customers in the CRM"),
        ),
        (n(overview["buyers"]), _("buyers (%(prospects)s not yet)") % {"prospects": n(overview["prospects"])}),
        (page.percent(overview["repeat_purchase_rate"]), _("bought twice or more (repeat-purchase rate)")),
        (amount(overview["aov_minor"]), _("average order value")),
        (n(overview["purchase_frequency"], 2), _("purchases per buyer (all time)")),
        (
            page.percent(overview["data_freshness"]),
            _("records updated in the last %(days)s days") % {"days": overview["freshness_days"]},
        ),
        (amount(pcv_run.summary["total_minor"]) if pcv_run else "—", _("past customer value (PCV), today's money")),
        (amount(clv_run.summary["total_minor"]) if clv_run else "—", _("expected lifetime value, next horizon (CLV)")),
    ]
    cells = "".join(f'<div class="tile"><b>{esc(v)}</b><span>{esc(label)}</span></div>' for v, label in tiles)
    as_of = _("As of %(time)s") % {"time": page.time(overview["as_of"])}
    page.add(
        f'<section><h2>{esc(_("Headlines"))}</h2><p class="dated">{esc(as_of)}</p>'
        f'<div class="tiles">{cells}</div></section>'
    )


def _trend(
    page: Page,
    months: Sequence[Mapping[str, Any]],
    code: str | None,
    amount: Callable[[int | None], str],
    charts_dir: Path | None,
) -> None:
    _, n = page.t.gettext, page.number
    chart = (
        image(
            charts.monthly_trend(months, code, _, locale=page.t),
            _("revenue and active customers per month"),
            charts_dir,
            "monthly_trend",
        )
        if code and any(m["orders"] for m in months)
        else ""
    )
    rows = [
        {
            "month": m["month"],
            "acquired": n(m["acquired"]),
            "active": n(m["active"]),
            "orders": n(m["orders"]),
            "revenue": amount(m["revenue_minor"]),
            "aov": amount(m["aov_minor"]),
            "retention_pct": page.percent(m["retention"]),
            "churn_pct": page.percent(m["churn"]),
        }
        for m in months
    ]
    lead = _(
        "New buyers (acquired), customers who bought (active), revenue, average order value; retention is the "
        "share of last month's active customers who bought again this month, churn the rest."
    )
    page.add(
        f"<section><h2>{esc(_('Month by month'))}</h2><p class='lead'>{esc(lead)}</p>{chart}"
        + page.table(
            rows,
            [
                ("month", "Month"),
                ("acquired", "Acquired"),
                ("active", "Active"),
                ("orders", "Orders"),
                ("revenue", "Revenue"),
                ("aov", "AOV"),
                ("retention_pct", "Retention"),
                ("churn_pct", "Churn"),
            ],
            {"acquired", "active", "orders", "revenue", "aov", "retention_pct", "churn_pct"},
        )
        + "</section>"
    )


def _segment_monetary(segment: dict[str, int], average: bool) -> int | None:
    """A segment's total spend, or (average runs) its customers' mean spend per purchase, rounded half up."""
    if not average:
        return segment["monetary_minor"]
    customers = segment["customers"]
    return (2 * segment["monetary_minor"] + customers) // (2 * customers) if customers else None


def _rfm(
    page: Page, run: runs.Run | None, problem: str | None, amount: Callable[[int | None], str], charts_dir: Path | None
) -> None:
    _ = page.t.gettext
    average = run is not None and run.parameters.get("monetary") == "average"
    intro = (
        "<p class='lead'>"
        + esc(
            _(
                "Every buyer scored 1–5 on recency (days since the last purchase), frequency (number of purchases) and "
                "monetary value (%(monetary)s), by quintiles; the segment follows from R and the average of F and M."
            )
            % {"monetary": _("average spend per purchase") if average else _("total spend")}
        )
        + "</p>"
    )
    heading = f"<h2>{esc(_('RFM segments'))}</h2>"
    if run is None or not run.summary.get("customers"):
        page.add(f"<section>{heading}{intro}<p class='note'>{esc(_(problem or 'No purchases yet.'))}</p></section>")
        return
    labels = {k: _(v[0]) for k, v in SEGMENTS.items()}
    grid = image(
        charts.rfm_grid(run.summary["grid"], segment_of, labels, _, locale=page.t),
        _("RFM grid"),
        charts_dir,
        "rfm_grid",
    )
    sizes = {k: v["customers"] for k, v in run.summary["segments"].items()}
    bars = image(
        charts.segment_sizes(sizes, labels, charts.PALETTE, _("Customers per RFM segment"), _, locale=page.t),
        _("segment sizes"),
        charts_dir,
        "rfm_segments",
    )
    total = run.summary["customers"]
    rows = [
        {
            "segment_html": f'<span class="swatch" style="background:{charts.PALETTE[k]}"></span>{esc(labels[k])}',
            "customers": page.number(sizes[k]),
            "share": page.percent(sizes[k] / total),
            "rule": v[1],
            "action": _(v[2]),
            "spend": amount(_segment_monetary(run.summary["segments"][k], average)),
        }
        for k, v in SEGMENTS.items()
    ]
    page.add(
        f"<section>{heading}{page.dated(run)}{intro}{grid}{bars}"
        + page.table(
            rows,
            [
                ("segment_html", "Segment"),
                ("customers", "Customers"),
                ("share", "Share"),
                ("spend", "Their average purchase" if average else "Their total spend"),
                ("rule", "Rule (R, FM)"),
                ("action", "What to do"),
            ],
            {"customers", "share", "spend"},
        )
        + "</section>"
    )


#: Customer types by name (msgids), in the order of ``TYPES``.
TYPE_NAMES = {
    "loyal": "Loyal",
    "potential": "Potential",
    "new": "New",
    "prospect": "Prospect",
    "at_risk": "At risk",
    "lost": "Lost",
}


def _types(page: Page, run: runs.Run | None, charts_dir: Path | None) -> None:
    if run is None:
        return
    _ = page.t.gettext
    sizes = run.summary["types"]
    labels = {k: _(TYPE_NAMES.get(k, k)) for k in TYPES}
    bars = image(
        charts.segment_sizes(sizes, labels, charts.TYPE_COLOURS, _("Customers by type"), _, locale=page.t),
        _("customer types"),
        charts_dir,
        "customer_types",
    )
    p = run.parameters
    rules = _(
        "Prospect: never bought. New: first purchase within %(new_days)s days. Loyal: %(loyal_purchases)s+ "
        "purchases and one within %(at_risk_days)s days. Potential: a purchase within %(at_risk_days)s days. "
        "At risk: last purchase within %(lost_days)s days, or contacted us within %(at_risk_days)s days. "
        "Lost: the rest."
    ) % {key: p[key] for key in ("new_days", "loyal_purchases", "at_risk_days", "lost_days")}
    rows = [
        {"type": labels[k], "customers": page.number(sizes[k]), "meaning": _(meaning)} for k, meaning in TYPES.items()
    ]
    page.add(
        f"<section><h2>{esc(_('Customer types'))}</h2>{page.dated(run)}<p class='lead'>{esc(rules)}</p>{bars}"
        + page.table(rows, [("type", "Type"), ("customers", "Customers"), ("meaning", "Meaning")], {"customers"})
        + "</section>"
    )


def _clv(
    crm: CRM,
    page: Page,
    run: runs.Run | None,
    problem: str | None,
    amount: Callable[[int | None], str],
    charts_dir: Path | None,
) -> None:
    _, n = page.t.gettext, page.number
    intro = (
        "<p class='lead'>"
        + esc(
            _(
                "Lifetime value predicts each buyer's purchases (BG/NBD model: how often they buy and the chance they have "
                "stopped) and spend per purchase (Gamma-Gamma), discounted to today's money."
            )
        )
        + "</p>"
    )
    heading = f"<h2>{esc(_('Lifetime value'))}</h2>"
    if run is None:
        said = _("Not available: %(reason)s") % {"reason": _(str(problem))}
        page.add(f"<section>{heading}{intro}<p class='note'>{esc(said)}</p></section>")
        return
    in_scope = crm.access.customers(clv_table.c.customer_id, "analytics.read")
    with crm.reading() as conn:
        values = np.fromiter(
            conn.execute(sa.select(clv_table.c.clv_minor).where(clv_table.c.run_id == run.id, in_scope)).scalars(),
            dtype=np.float64,
        )
    chart = image(
        charts.clv_distribution(values, run.currency, _, locale=page.t),
        _("CLV distribution"),
        charts_dir,
        "clv_distribution",
    )
    fit, spend = run.parameters["bgnbd"], run.parameters["gamma_gamma"]
    summary = run.summary
    notes = "".join(
        "<p class='note'>"
        + esc(
            _(
                "Parameter %(name)s sits at the edge of its range: the history is too short or too uniform to pin it down, "
                "so treat the predictions as rough."
            )
            % {"name": name}
        )
        + "</p>"
        for name in (*fit["at_bound"], *spend.get("at_bound", ()))
    )
    if not spend["fitted"]:
        notes += (
            "<p class='note'>"
            + esc(
                _(
                    "Spend per purchase is each customer's own average: the spend model could not be fitted (%(reason)s)."
                )
                % {"reason": _(spend["reason"])}
            )
            + "</p>"
        )
    g = "{:.4g}".format
    spend_text = (
        f"p={g(spend['p'])}, q={g(spend['q'])}, γ={g(spend['gamma'])}" if spend["fitted"] else _("spend: own averages")
    )
    top = crm.analytics.customers("clv", order="clv_minor", limit=10)
    rows = [
        {
            "name": r["name"],
            "clv": amount(r["clv_minor"]),
            "p_alive": page.percent(r["p_alive"]),
            "purchases": n(r["expected_purchases"], 1),
            "spend": amount(r["expected_spend_minor"]),
        }
        for r in top
    ]
    q = summary["quantiles_minor"]
    said = _(
        "Over the next %(days)s days: total %(total)s, median customer %(median)s, top 10%% above %(p90)s; "
        "%(inactive)s of %(customers)s buyers are more likely gone than not (average P(alive) %(alive)s)."
    ) % {
        "days": run.parameters["horizon_days"],
        "total": amount(summary["total_minor"]),
        "median": amount(q["p50"]),
        "p90": amount(q["p90"]),
        "inactive": n(summary["likely_inactive"]),
        "customers": n(summary["customers"]),
        "alive": page.percent(summary["mean_p_alive"]),
    }
    model = _("Model (time in weeks): %(fit)s; %(spend)s; discount rate %(discount)s, margin rate %(margin)s.") % {
        "fit": f"r={g(fit['r'])}, α={g(fit['alpha'])}, a={g(fit['a'])}, b={g(fit['b'])}",
        "spend": spend_text,
        "discount": n(run.parameters["discount_rate"]),
        "margin": n(run.parameters["gross_margin_rate"]),
    }
    page.add(
        f"<section>{heading}{page.dated(run)}{intro}{notes}<p>{esc(said)}</p>{chart}"
        + page.table(
            rows,
            [
                ("name", "Most valuable customers"),
                ("clv", "CLV"),
                ("p_alive", "P(alive)"),
                ("purchases", "Expected purchases"),
                ("spend", "Expected spend / purchase"),
            ],
            {"clv", "p_alive", "purchases", "spend"},
        )
        + f"<p class='dated'>{esc(model)}</p></section>"
    )


def _pcv(page: Page, service: Any, run: runs.Run | None, amount: Callable[[int | None], str]) -> None:
    if run is None:
        return
    _ = page.t.gettext
    top = service.customers("pcv", order="pcv_minor", limit=10)
    rows = [{"name": r["name"], "purchases": page.number(r["purchases"]), "pcv": amount(r["pcv_minor"])} for r in top]
    lead = _(
        "What each customer has already brought: every purchase's margin (rate %(margin)s where the sale has no "
        "cost) compounded to today at %(discount)s a year. Total %(total)s over %(customers)s customers."
    ) % {
        "margin": page.number(run.parameters["gross_margin_rate"]),
        "discount": page.number(run.parameters["discount_rate"]),
        "total": amount(run.summary["total_minor"]),
        "customers": page.number(run.summary["customers"]),
    }
    page.add(
        f"<section><h2>{esc(_('Past customer value'))}</h2>{page.dated(run)}<p class='lead'>{esc(lead)}</p>"
        + page.table(rows, [("name", "Customer"), ("purchases", "Purchases"), ("pcv", "PCV")], {"purchases", "pcv"})
        + "</section>"
    )


def _sow(page: Page, service: Any, run: runs.Run | None, amount: Callable[[int | None], str]) -> None:
    if run is None:
        return
    _ = page.t.gettext
    heading = f"<h2>{esc(_('Share of wallet'))}</h2>"
    lead = (
        "<p class='lead'>"
        + esc(
            _(
                "Our share of what customers spend in the category (from their category_spend attribute, or the estimate "
                "set per segment)."
            )
        )
        + "</p>"
    )
    if not run.summary["customers"]:
        note = _(
            "No customer has a known category spend yet: set the category_spend attribute or per-segment "
            "estimates (%(command)s)."
        ) % {"command": "crmkit analytics settings --estimate champions=50000000"}
        page.add(f"<section>{heading}{page.dated(run)}{lead}<p class='note'>{esc(note)}</p></section>")
        return
    segments = [
        {
            "segment": _(SEGMENTS[k][0]) if k in SEGMENTS else k,
            "customers": page.number(v["customers"]),
            "ours": amount(v["spend_minor"]),
            "category": amount(v["category_spend_minor"]),
            "share": page.percent(v["share"]),
        }
        for k, v in run.summary["segments"].items()
    ]
    threshold, chances = service.growth_opportunities(limit=10)
    rows = [
        {
            "name": r["name"],
            "share": page.percent(r["share"]),
            "ours": amount(r["spend_minor"]),
            "category": amount(r["category_spend_minor"]),
            "headroom": amount(r["headroom_minor"]),
        }
        for r in chances
    ]
    overall = _("Overall share %(share)s across %(customers)s customers with a known category spend.") % {
        "share": page.percent(run.summary["share"]),
        "customers": page.number(run.summary["customers"]),
    }
    growth = _("Low share of a big wallet (category spend ≥ %(threshold)s): the most money left on the table.") % {
        "threshold": amount(threshold)
    }
    page.add(
        f"<section>{heading}{page.dated(run)}{lead}<p>{esc(overall)}</p>"
        + page.table(
            segments,
            [
                ("segment", "Segment"),
                ("customers", "Customers"),
                ("ours", "Our sales"),
                ("category", "Their category spend"),
                ("share", "Share of wallet"),
            ],
            {"customers", "ours", "category", "share"},
        )
        + f"<h3>{esc(_('Growth opportunities'))}</h3><p class='lead'>{esc(growth)}</p>"
        + page.table(
            rows,
            [
                ("name", "Customer"),
                ("share", "Our share"),
                ("ours", "Our sales"),
                ("category", "Category spend"),
                ("headroom", "Headroom"),
            ],
            {"share", "ours", "category", "headroom"},
        )
        + "</section>"
    )


def _cohorts(page: Page, rows: Sequence[Mapping[str, Any]], charts_dir: Path | None) -> None:
    _ = page.t.gettext
    heading = f"<h2>{esc(_('Cohort retention'))}</h2>"
    if not rows:
        page.add(f"<section>{heading}<p class='note'>{esc(_('No first purchases in the period.'))}</p></section>")
        return
    chart = image(charts.cohort_heatmap(rows, _, locale=page.t), _("cohort retention heat map"), charts_dir, "cohorts")
    lead = _(
        "Each row is the customers whose first purchase was in that month; each cell the share of them who "
        "bought in the months after (month 0 is 100%)."
    )
    page.add(f"<section>{heading}<p class='lead'>{esc(lead)}</p>{chart}</section>")


def _activity(page: Page, rows: Sequence[Mapping[str, Any]]) -> None:
    _ = page.t.gettext
    shown = [
        {**r, **{key: page.number(r[key]) for key in ("interactions", "inbound", "outbound", "customers")}}
        for r in rows
    ]
    page.add(
        f"<section><h2>{esc(_('CRM activity'))}</h2><p class='lead'>"
        f"{esc(_('Interactions logged per employee per month (last 3 months).'))}</p>"
        + page.table(
            shown,
            [
                ("month", "Month"),
                ("employee", "Employee"),
                ("interactions", "Interactions"),
                ("inbound", "Inbound"),
                ("outbound", "Outbound"),
                ("customers", "Customers reached"),
            ],
            {"interactions", "inbound", "outbound", "customers"},
        )
        + "</section>"
    )


def _clv_check(page: Page, check: Mapping[str, Any], charts_dir: Path | None) -> None:
    """The purchase model against a hold-out (``crm.analytics.clv_check``): table and the papers' two charts."""
    _, n = page.t.gettext, page.number
    heading = f"<h2>{esc(_('Lifetime value model against a hold-out'))}</h2>"
    said = _(
        "%(model)s fitted on purchases up to %(start)s, predicting the %(weeks)s weeks to %(end)s for "
        "%(customers)s customers: %(predicted)s repeat purchases expected, %(actual)s made; mean absolute error "
        "%(mae)s per customer."
    ) % {
        "model": {"bgnbd": "BG/NBD", "pareto_nbd": "Pareto/NBD"}[check["model"]],
        "start": check["calibration_end"],
        "end": check["holdout_end"],
        "weeks": n(check["holdout_weeks"], 1),
        "customers": n(check["customers"]),
        "predicted": n(check["total"]["predicted"], 1),
        "actual": n(check["total"]["actual"]),
        "mae": n(check["mean_absolute_error"], 3),
    }
    bars = image(
        charts.holdout_by_frequency(check["by_frequency"], _),
        _("Hold-out by calibration frequency"),
        charts_dir,
        "clv_holdout",
    )
    lines = image(
        charts.tracking(check["weekly"], check["calibration_end"], _),
        _("Cumulative repeat purchases"),
        charts_dir,
        "clv_tracking",
    )
    rows = [
        {
            "frequency": r["frequency"],
            "customers": n(r["customers"]),
            "actual": n(r["actual"], 3),
            "predicted": n(r["predicted"], 3),
        }
        for r in check["by_frequency"]
    ]
    page.add(
        f"<section>{heading}<p>{esc(said)}</p>{bars}"
        + page.table(
            rows,
            [
                ("frequency", "Calibration frequency"),
                ("customers", "Customers"),
                ("actual", "Actual per customer"),
                ("predicted", "Predicted per customer"),
            ],
            {"customers", "actual", "predicted"},
        )
        + f"{lines}</section>"
    )
