"""``crmkit analytics …``: thin callers of ``crm.analytics``; money shows formatted in tables, as minor units in JSON/CSV.

With ``crmkit --user NAME`` every figure covers that user's customers only (the service scopes it);
tables then say so in their title ("scoped to lan's team").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click

from crmkit.cli import emit, pass_crm
from crmkit.cli.output import current_format, current_translator, emit_object, format_option

if TYPE_CHECKING:
    from crmkit import CRM
    from crmkit_analytics.runs import Run

F = TypeVar("F", bound=Callable[..., Any])


@click.group()
def analytics() -> None:
    """RFM, customer types, past value, share of wallet, lifetime value, KPIs, cohorts and the HTML report."""


def as_of_option(function: F) -> F:
    return click.option("--as-of", help="Compute for this date (YYYY-MM-DD, end of day UTC) or ISO time; default now.")(
        function)


def currency_option(function: F) -> F:
    return click.option("--currency", help="Currency to measure (default: the setting, else the only one used).")(
        function)


#: Ratios shown as percentages in tables.
PERCENT = {"share", "p_alive", "retention", "churn", "repeat_purchase_rate", "data_freshness"}


def money(rows: Iterable[Mapping[str, Any]], currency: str | None) -> list[dict[str, Any]]:
    """For tables: ``x_minor`` columns become formatted ``x`` amounts, ratios percentages, other floats 2 decimals.
    JSON and CSV keep every value as computed (integer minor units, full-precision ratios)."""
    if current_format() != "table":
        return [dict(row) for row in rows]
    from crmkit.money import Money

    def shown(key: str, value: Any) -> Any:
        if value is None:
            return None
        if key.endswith("_minor"):
            return Money(currency, int(value)).format() if currency else value
        if isinstance(value, float):
            return f"{value:.1%}" if key in PERCENT else f"{value:.2f}"
        return value

    return [{(k[:-6] if k.endswith("_minor") else k): shown(k, v) for k, v in row.items()} for row in rows]


def columns(names: Sequence[str]) -> list[str]:
    """Column names as :func:`money` shows them in the current format."""
    return [n[:-6] if n.endswith("_minor") and current_format() == "table" else n for n in names]


def latest_option(function: F) -> F:
    return click.option("--latest", is_flag=True,
                        help="Show the latest stored run instead of computing one (computing needs analytics.run).")(
        function)


def run_header(run: Run) -> str:
    return (f"{run.measure} for {run.as_of:%Y-%m-%d %H:%M} UTC"
            + (f" in {run.currency}" if run.currency else "") + f", computed {run.computed_at:%Y-%m-%d %H:%M} UTC"
            + (f", scoped to {run.scope}" if run.scope else ""))


def scoped(crm: CRM, title: str | None = None) -> str | None:
    """A table title saying whose customers the figures cover, when not everyone's."""
    scope = crm.analytics.scope()
    if scope is None:
        return title
    return f"{title} (scoped to {scope})" if title else f"Scoped to {scope}"


def computed(crm: CRM, measure: str, latest: bool, compute: Callable[[], Run]) -> Run:
    """The run to show: a new one, or with ``--latest`` the stored one (a clear error when there is none)."""
    if not latest:
        return compute()
    run = crm.analytics.latest(measure)
    if run is None:
        raise click.ClickException(f"no {measure} computed yet: run `crmkit analytics {measure}` first")
    return run


@analytics.command("rebuild")
@pass_crm
def rebuild(crm: CRM) -> None:
    """Recompute every customer's purchase aggregates from the transactions (after an import, or to repair)."""
    rows = crm.analytics.rebuild()
    click.echo(f"rebuilt purchase aggregates: {rows} customer-currency rows")


@analytics.command("run")
@as_of_option
@currency_option
@format_option
@pass_crm
def run_all(crm: CRM, as_of: str | None, currency: str | None) -> None:
    """Compute every measure (RFM, types, PCV, SOW, CLV) for one date; one that cannot be computed says why."""
    done = crm.analytics.run(as_of=as_of, currency=currency)
    emit([{"measure": measure, "run": run.id, "customers": run.summary.get("customers"), "problem": None}
          for measure, run in done.computed.items()]
         + [{"measure": measure, "run": None, "customers": None, "problem": problem}
            for measure, problem in done.problems.items()],
         ["measure", "run", "customers", "problem"], title=scoped(crm))


@analytics.command("rfm")
@as_of_option
@currency_option
@click.option("--window-days", type=int, help="Count frequency and spend over the last N days only (default: all history).")
@click.option("--monetary", type=click.Choice(["total", "average"], case_sensitive=False),
              help="Monetary value: total spend, or average spend per purchase (Kumar & Reinartz); "
                   "default the rfm_monetary setting (total).")
@click.option("--list", "listing", is_flag=True, help="List customers with their scores instead of segment sizes.")
@click.option("--segment", help="With --list: only this segment (e.g. at_risk).")
@click.option("--limit", default=50, show_default=True)
@latest_option
@format_option
@pass_crm
def rfm(crm: CRM, as_of: str | None, currency: str | None, window_days: int | None, monetary: str | None,
        listing: bool, segment: str | None, limit: int, latest: bool) -> None:
    """Score recency, frequency and monetary value (quintiles 1–5) and segment every buyer."""
    from crmkit_analytics.rfm import SEGMENTS

    if latest and monetary is not None:
        raise click.UsageError("--monetary applies to a new computation, not to --latest (the run says which it used)")
    run = computed(crm, "rfm", latest, lambda: crm.analytics.rfm(as_of=as_of, currency=currency,
                                                                 window_days=window_days, monetary=monetary))
    average = run.parameters.get("monetary") == "average"
    title = run_header(run) + (", monetary = average per purchase" if average else ", monetary = total spend")
    if listing:
        rows = crm.analytics.customers("rfm", segment=segment, order="monetary_minor", limit=limit)
        emit(money(rows, run.currency), columns(["customer_id", "name", "recency_days", "frequency", "monetary_minor",
                                                 "score", "segment"]), title=title)
        return
    total = run.summary["customers"] or 1
    said = current_translator().gettext if current_format() == "table" else str  # an action in the reader's words
    # total: the segment's spend; average: its customers' mean spend per purchase (a sum of averages means nothing)
    name_m = "avg_purchase_value_minor" if average else "monetary_minor"
    rows = [{"segment": name, "customers": seg["customers"], "share": f"{seg['customers'] / total:.1%}",
             "avg_recency_days": round(seg["recency_days"] / seg["customers"]) if seg["customers"] else None,
             "avg_purchases": round(seg["purchases"] / seg["customers"], 2) if seg["customers"] else None,
             name_m: ((2 * seg["monetary_minor"] + seg["customers"]) // (2 * seg["customers"]) if seg["customers"] else None)
             if average else seg["monetary_minor"], "rule": SEGMENTS[name][1], "action": said(SEGMENTS[name][2])}
            for name, seg in run.summary["segments"].items()]
    emit(money(rows, run.currency), columns(["segment", "customers", "share", "avg_recency_days", "avg_purchases",
                                             name_m, "rule", "action"]), title=title)


@analytics.command("types")
@as_of_option
@click.option("--list", "listing", is_flag=True, help="List customers with their type.")
@click.option("--type", "kind", help="With --list: only this type (e.g. at_risk).")
@click.option("--limit", default=50, show_default=True)
@latest_option
@format_option
@pass_crm
def types(crm: CRM, as_of: str | None, listing: bool, kind: str | None, limit: int, latest: bool) -> None:
    """Classify every customer: loyal, potential, new, prospect, at risk, lost."""
    from crmkit_analytics.customer_types import TYPES

    run = computed(crm, "types", latest, lambda: crm.analytics.customer_types(as_of=as_of))
    if listing:
        emit(crm.analytics.customers("types", segment=kind, limit=limit), ["customer_id", "name", "customer_type"],
             title=run_header(run))
        return
    emit([{"type": name, "customers": run.summary["types"][name], "meaning": meaning} for name, meaning in TYPES.items()],
         ["type", "customers", "meaning"], title=run_header(run))


@analytics.command("pcv")
@as_of_option
@currency_option
@click.option("--discount-rate", help="Annual rate, 0 ≤ rate < 1 (default: the setting, 0.10).")
@click.option("--margin-rate", help="Gross-margin share of revenue when a transaction has no margin (default 1).")
@click.option("--top", default=10, show_default=True, help="How many of the most valuable customers to list.")
@latest_option
@format_option
@pass_crm
def pcv(crm: CRM, as_of: str | None, currency: str | None, discount_rate: str | None, margin_rate: str | None,
        top: int, latest: bool) -> None:
    """Past customer value: every past purchase's margin compounded to today; per customer and in total."""
    run = computed(crm, "pcv", latest, lambda: crm.analytics.pcv(as_of=as_of, currency=currency,
                                                                 discount_rate=discount_rate, margin_rate=margin_rate))
    rows = crm.analytics.customers("pcv", order="pcv_minor", limit=top)
    title = f"{run_header(run)}: {run.summary['customers']} customers, total {_amount(run, 'total_minor')}"
    emit(money(rows, run.currency), columns(["customer_id", "name", "purchases", "pcv_minor"]), title=title)


@analytics.command("sow")
@as_of_option
@currency_option
@click.option("--window-days", type=int, help="Days of our spend to compare with the yearly category spend (365).")
@click.option("--low-share", help="Growth opportunities: share below this (default 0.30).")
@click.option("--min-category-spend", type=int, help="Growth opportunities: category spend at least this "
                                                      "(minor units; default: the top fifth).")
@click.option("--top", default=20, show_default=True, help="How many growth opportunities to list.")
@latest_option
@format_option
@pass_crm
def sow(crm: CRM, as_of: str | None, currency: str | None, window_days: int | None, low_share: str | None,
        min_category_spend: int | None, top: int, latest: bool) -> None:
    """Share of wallet per segment, and the customers with a low share of a big wallet."""
    run = computed(crm, "sow", latest, lambda: crm.analytics.sow(as_of=as_of, currency=currency,
                                                                 window_days=window_days))
    segments = [{"segment": name, **values} for name, values in run.summary["segments"].items()]
    emit(money(segments, run.currency), columns(["segment", "customers", "spend_minor", "category_spend_minor", "share"]),
         title=f"{run_header(run)}: overall share {_share(run.summary['share'])}")
    threshold, rows = crm.analytics.growth_opportunities(low_share=low_share, min_category_spend=min_category_spend,
                                                         limit=top)
    if current_format() == "table":
        click.echo()
        emit(money(rows, run.currency), columns(["customer_id", "name", "share", "spend_minor", "category_spend_minor",
                                                 "headroom_minor", "source"]),
             title=f"Growth opportunities (category spend ≥ {threshold})")


@analytics.command("clv")
@as_of_option
@currency_option
@click.option("--horizon-days", type=int, help="How far ahead to value customers (default 365).")
@click.option("--discount-rate", help="Annual rate, 0 ≤ rate < 1 (default: the setting, 0.10).")
@click.option("--margin-rate", help="Gross-margin share of revenue (default: the setting, 1).")
@click.option("--top", default=10, show_default=True, help="How many of the most valuable customers to list.")
@latest_option
@format_option
@pass_crm
def clv(crm: CRM, as_of: str | None, currency: str | None, horizon_days: int | None, discount_rate: str | None,
        margin_rate: str | None, top: int, latest: bool) -> None:
    """Lifetime value (BG/NBD + Gamma-Gamma): P(alive), expected purchases and discounted CLV per customer."""
    run = computed(crm, "clv", latest, lambda: crm.analytics.clv(
        as_of=as_of, currency=currency, horizon_days=horizon_days, discount_rate=discount_rate,
        margin_rate=margin_rate))
    rows = crm.analytics.customers("clv", order="clv_minor", limit=top)
    if current_format() == "table":
        fit, spend = run.parameters["bgnbd"], run.parameters["gamma_gamma"]
        spend_text = (f"Gamma-Gamma: p={spend['p']:.4g} q={spend['q']:.4g} gamma={spend['gamma']:.4g}" if spend["fitted"]
                      else f"spend per purchase: each customer's own mean ({spend['reason']})")
        click.echo(f"BG/NBD (weeks): r={fit['r']:.4g} alpha={fit['alpha']:.4g} a={fit['a']:.4g} b={fit['b']:.4g}  "
                   + spend_text)
        for name in (*fit["at_bound"], *spend.get("at_bound", ())):
            click.echo(f"note: parameter {name} is at the edge of its range: the history is too short or uniform to "
                       "pin it down; read the predictions with care")
    title = (f"{run_header(run)}: {run.summary['customers']} customers, total CLV {_amount(run, 'total_minor')} "
             f"over {run.parameters['horizon_days']} days")
    emit(money(rows, run.currency),
         columns(["customer_id", "name", "p_alive", "expected_purchases", "expected_spend_minor", "clv_minor"]),
         title=title)


@analytics.command("kpis")
@as_of_option
@currency_option
@click.option("--months", default=12, show_default=True, help="Months to show, ending with the as-of month.")
@click.option("--freshness-days", default=90, show_default=True, help="Data freshness: updated within this many days.")
@click.option("--by", "by", help="A breakdown instead: age_band, gender, province, city, category, channel, period.")
@format_option
@pass_crm
def kpis(crm: CRM, as_of: str | None, currency: str | None, months: int, freshness_days: int, by: str | None) -> None:
    """KPIs per month (acquisition, retention, churn, AOV, frequency) with headline figures, or a breakdown."""
    code = crm.analytics.currency(currency)
    if by:
        rows = crm.analytics.breakdown(by, as_of=as_of, currency=code, months=months)
        emit(money(rows, code), columns([by, "customers", "buyers", "orders", "revenue_minor"]), title=scoped(crm))
        return
    result = crm.analytics.kpis(as_of=as_of, currency=code, months=months, freshness_days=freshness_days)
    if current_format() == "table":
        emit_object(money([result["overview"]], code)[0])
        click.echo()
    emit(money(result["months"], code), columns(["month", "acquired", "active", "orders", "revenue_minor", "aov_minor",
                                                 "purchase_frequency", "retention", "churn"]), title=scoped(crm))


@analytics.command("cohorts")
@as_of_option
@currency_option
@click.option("--months", default=12, show_default=True, help="Cohorts of the last N months.")
@format_option
@pass_crm
def cohorts(crm: CRM, as_of: str | None, currency: str | None, months: int) -> None:
    """Retention by first-purchase month: the share of each cohort buying again in month 1, 2, …"""
    rows = crm.analytics.cohorts(as_of=as_of, currency=currency, months=months)
    width = max((len(r["retention"]) for r in rows), default=1)
    flat = [{"cohort": r["cohort"], "customers": r["customers"],
             **{f"m{k}": (f"{v:.0%}" if current_format() == "table" else v) if v is not None else None
                for k, v in enumerate(r["retention"])}} for r in rows]
    emit(flat, ["cohort", "customers", *(f"m{k}" for k in range(width))], title=scoped(crm))


@analytics.command("activity")
@as_of_option
@click.option("--months", default=3, show_default=True)
@format_option
@pass_crm
def activity(crm: CRM, as_of: str | None, months: int) -> None:
    """CRM activity: interactions per employee per month."""
    emit(crm.analytics.activity(as_of=as_of, months=months),
         ["month", "employee", "interactions", "inbound", "outbound", "customers"], title=scoped(crm))


@analytics.command("export")
@click.argument("measure", type=click.Choice(["rfm", "types", "pcv", "sow", "clv"]))
@click.option("--segment", help="Only this RFM segment or customer type.")
@click.option("--order", help="A column to sort by, highest first (default: the customer id).")
@format_option
@pass_crm
def export(crm: CRM, measure: str, segment: str | None, order: str | None) -> None:
    """Every customer of the latest run of MEASURE in scope, all columns (needs analytics.export):
    `crmkit --format csv analytics export rfm > rfm.csv`."""
    rows = crm.analytics.export(measure, segment=segment, order=order)
    emit(rows, list(rows[0]) if rows else ["customer_id", "name"], title=scoped(crm))


@analytics.command("report")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, writable=True),
              help="Where to write the HTML file.")
@as_of_option
@currency_option
@click.option("--no-recompute", is_flag=True, help="Use the latest stored runs instead of computing them now "
                                                     "(computing needs analytics.run).")
@click.option("--charts", "charts_dir", type=click.Path(file_okay=False), help="Also save every chart here (PNG and SVG).")
@pass_crm
def report(crm: CRM, out: str, as_of: str | None, currency: str | None, no_recompute: bool,
           charts_dir: str | None) -> None:
    """Write one self-contained HTML report (charts inlined): RFM grid, segments, CLV, cohorts, KPIs."""
    path = crm.analytics.report(out, as_of=as_of, currency=currency, recompute=not no_recompute,
                                charts_dir=charts_dir)
    click.echo(f"wrote {path}")


@analytics.command("settings")
@click.option("--currency")
@click.option("--rfm-monetary", type=click.Choice(["total", "average"], case_sensitive=False))
@click.option("--discount-rate")
@click.option("--gross-margin-rate")
@click.option("--clv-horizon-days", type=int)
@click.option("--new-days", type=int)
@click.option("--loyal-purchases", type=int)
@click.option("--at-risk-days", type=int)
@click.option("--lost-days", type=int)
@click.option("--sow-window-days", type=int)
@click.option("--sow-low-share")
@click.option("--estimate", "estimates", multiple=True, metavar="SEGMENT=AMOUNT",
              help="Yearly category spend (minor units) assumed for an RFM segment; repeat; AMOUNT empty removes it.")
@format_option
@pass_crm
def settings(crm: CRM, estimates: tuple[str, ...], **values: Any) -> None:
    """Show the analytics settings, or change the ones given."""
    from crmkit_analytics.params import DEFAULTS

    changes = {k: v for k, v in values.items() if v is not None}
    if estimates:
        current = dict(crm.analytics.settings()["category_spend_estimates"] or {})
        for item in estimates:
            segment, _, amount = item.partition("=")
            if amount.strip():
                current[segment.strip()] = amount.strip()
            else:
                current.pop(segment.strip(), None)
        changes["category_spend_estimates"] = current
    result = crm.analytics.configure(**changes) if changes else crm.analytics.settings()
    emit([{"setting": k, "value": v, "meaning": DEFAULTS[k][1]} for k, v in result.items()],
         ["setting", "value", "meaning"])


@analytics.command("runs")
@click.option("--measure", type=click.Choice(["rfm", "types", "pcv", "sow", "clv"]))
@click.option("--limit", default=20, show_default=True)
@format_option
@pass_crm
def runs_command(crm: CRM, measure: str | None, limit: int) -> None:
    """Past computations: when, for which date and currency, and their headline figures."""
    emit([{"id": r.id, "measure": r.measure, "currency": r.currency, "as_of": r.as_of, "computed_at": r.computed_at,
           "actor": r.actor, "customers": r.summary.get("customers")} for r in crm.analytics.history(measure, limit=limit)],
         ["id", "measure", "currency", "as_of", "computed_at", "actor", "customers"])


def _amount(run: Run, key: str) -> str:
    from crmkit.money import Money

    return Money(run.currency, int(run.summary[key])).format() if run.currency else "0"


def _share(value: float | None) -> str:
    return "unknown (no category spend known)" if value is None else f"{value:.1%}"
