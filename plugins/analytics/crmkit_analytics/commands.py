"""``crmkit analytics …``: thin callers of ``crm.analytics``; money shows formatted in tables, as minor units in JSON/CSV.

With ``crmkit --user NAME`` every figure covers that user's customers only (the service scopes it);
tables then say so in their title ("scoped to lan's team").
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

import click

from crmkit.plugin_api import (
    Percent,
    current_format,
    current_human,
    current_translator,
    emit,
    emit_object,
    format_option,
    pass_crm,
    to_jsonable,
)

if TYPE_CHECKING:
    from crmkit import CRM
    from crmkit_analytics.runs import Run

F = TypeVar("F", bound=Callable[..., Any])


@click.group()
def analytics() -> None:
    """RFM, customer types, past value, share of wallet, lifetime value, KPIs, cohorts and the HTML report."""


def as_of_option(function: F) -> F:
    return click.option("--as-of", help="Compute for this date (YYYY-MM-DD, end of day UTC) or ISO time; default now.")(
        function
    )


def currency_option(function: F) -> F:
    return click.option("--currency", help="Currency to measure (default: the setting, else the only one used).")(
        function
    )


#: Ratios shown as percentages in tables.
PERCENT = {"share", "p_alive", "retention", "churn", "repeat_purchase_rate", "data_freshness"}


def money(rows: Iterable[Mapping[str, Any]], currency: str | None) -> list[dict[str, Any]]:
    """For tables: ``x_minor`` columns become formatted ``x`` amounts, ratios percentages, other floats 2 decimals.
    JSON and CSV keep every value as computed (integer minor units, full-precision ratios)."""
    if current_format() != "table":
        return [dict(row) for row in rows]
    from crmkit.money import Money

    def shown(key: str, value: Any) -> Any:  # typed: the one formatter shows it in the reader's style
        if value is None:
            return None
        if key.endswith("_minor"):
            return Money(currency, int(value)) if currency else value
        if isinstance(value, float):
            return Percent(Decimal(repr(value))) if key in PERCENT else Decimal(f"{value:.2f}")
        return value

    return [{(k[:-6] if k.endswith("_minor") else k): shown(k, v) for k, v in row.items()} for row in rows]


def columns(names: Sequence[str]) -> list[str]:
    """Column names as :func:`money` shows them in the current format."""
    return [n[:-6] if n.endswith("_minor") and current_format() == "table" else n for n in names]


def latest_option(function: F) -> F:
    return click.option(
        "--latest",
        is_flag=True,
        help="Show the latest stored run instead of computing one (computing needs analytics.run).",
    )(function)


def run_header(run: Run) -> str:
    """A run as a table's title in the reader's words: the measure, for when and when computed (local times, the
    zone named), e.g. ``Phân khúc RFM tính đến 30/06/2026 theo VND, lập lúc 30/06/2026 17:00 (Giờ Đông Dương)``."""
    from crmkit_analytics.console import MEASURE_NAMES

    human = current_human()
    t = human.translator
    parts = {
        "measure": t.gettext(MEASURE_NAMES.get(run.measure, run.measure)),
        "as_of": human.cell(run.as_of),
        "currency": run.currency,
        "computed": human.cell(run.computed_at),
        "scope": run.scope,
    }
    title = (
        t.gettext("%(measure)s for %(as_of)s in %(currency)s, computed %(computed)s")
        if run.currency
        else t.gettext("%(measure)s for %(as_of)s, computed %(computed)s")
    ) % parts
    return title + (t.gettext(", scoped to %(scope)s") % parts if run.scope else "")


def scoped(crm: CRM, title: str | None = None) -> str | None:
    """A table title saying whose customers the figures cover, when not everyone's (in the reader's words)."""
    scope = crm.analytics.scope()
    if scope is None:
        return title
    t = current_translator()
    if title:
        return t.gettext("%(title)s (scoped to %(scope)s)") % {"title": title, "scope": scope}
    return t.gettext("Scoped to %(scope)s") % {"scope": scope}


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
    emit(
        [
            {"measure": measure, "run": run.id, "customers": run.summary.get("customers"), "problem": None}
            for measure, run in done.computed.items()
        ]
        + [
            {"measure": measure, "run": None, "customers": None, "problem": problem}
            for measure, problem in done.problems.items()
        ],
        ["measure", "run", "customers", "problem"],
        title=scoped(crm),
    )


@analytics.command("rfm")
@as_of_option
@currency_option
@click.option(
    "--window-days", type=int, help="Count frequency and spend over the last N days only (default: all history)."
)
@click.option(
    "--monetary",
    type=click.Choice(["total", "average"], case_sensitive=False),
    help="Monetary value: total spend, or average spend per purchase (Kumar & Reinartz); "
    "default the rfm_monetary setting (total).",
)
@click.option("--list", "listing", is_flag=True, help="List customers with their scores instead of segment sizes.")
@click.option("--segment", help="With --list: only this segment (e.g. at_risk).")
@click.option("--limit", default=50, show_default=True)
@latest_option
@format_option
@pass_crm
def rfm(
    crm: CRM,
    as_of: str | None,
    currency: str | None,
    window_days: int | None,
    monetary: str | None,
    listing: bool,
    segment: str | None,
    limit: int,
    latest: bool,
) -> None:
    """Score recency, frequency and monetary value (quintiles 1–5) and segment every buyer."""
    from crmkit_analytics.rfm import SEGMENTS

    if latest and monetary is not None:
        raise click.UsageError("--monetary applies to a new computation, not to --latest (the run says which it used)")
    run = computed(
        crm,
        "rfm",
        latest,
        lambda: crm.analytics.rfm(as_of=as_of, currency=currency, window_days=window_days, monetary=monetary),
    )
    average = run.parameters.get("monetary") == "average"
    t = current_translator()
    title = run_header(run) + (
        t.gettext(", monetary = average per purchase") if average else t.gettext(", monetary = total spend")
    )
    if listing:
        rows = crm.analytics.customers("rfm", segment=segment, order="monetary_minor", limit=limit)
        emit(
            money(rows, run.currency),
            columns(["customer_id", "name", "recency_days", "frequency", "monetary_minor", "score", "segment"]),
            title=title,
        )
        return
    total = run.summary["customers"] or 1
    said = current_translator().gettext if current_format() == "table" else str  # an action in the reader's words
    # total: the segment's spend; average: its customers' mean spend per purchase (a sum of averages means nothing)
    name_m = "avg_purchase_value_minor" if average else "monetary_minor"
    share: Callable[[int], Any] = (
        (lambda n: Percent(Decimal(n) / total)) if current_format() == "table" else (lambda n: f"{n / total:.1%}")
    )  # JSON and CSV: "40.0%", as always
    rows = [
        {
            "segment": name,
            "customers": seg["customers"],
            "share": share(seg["customers"]),
            "avg_recency_days": round(seg["recency_days"] / seg["customers"]) if seg["customers"] else None,
            "avg_purchases": round(seg["purchases"] / seg["customers"], 2) if seg["customers"] else None,
            name_m: (
                (2 * seg["monetary_minor"] + seg["customers"]) // (2 * seg["customers"]) if seg["customers"] else None
            )
            if average
            else seg["monetary_minor"],
            "rule": SEGMENTS[name][1],
            "action": said(SEGMENTS[name][2]),
        }
        for name, seg in run.summary["segments"].items()
    ]
    emit(
        money(rows, run.currency),
        columns(["segment", "customers", "share", "avg_recency_days", "avg_purchases", name_m, "rule", "action"]),
        title=title,
    )


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
        emit(
            crm.analytics.customers("types", segment=kind, limit=limit),
            ["customer_id", "name", "customer_type"],
            title=run_header(run),
        )
        return
    emit(
        [
            {"type": name, "customers": run.summary["types"][name], "meaning": meaning}
            for name, meaning in TYPES.items()
        ],
        ["type", "customers", "meaning"],
        title=run_header(run),
    )


@analytics.command("pcv")
@as_of_option
@currency_option
@click.option("--discount-rate", help="Annual rate, 0 ≤ rate < 1 (default: the setting, 0.10).")
@click.option("--margin-rate", help="Gross-margin share of revenue when a transaction has no margin (default 1).")
@click.option("--top", default=10, show_default=True, help="How many of the most valuable customers to list.")
@latest_option
@format_option
@pass_crm
def pcv(
    crm: CRM,
    as_of: str | None,
    currency: str | None,
    discount_rate: str | None,
    margin_rate: str | None,
    top: int,
    latest: bool,
) -> None:
    """Past customer value: every past purchase's margin compounded to today; per customer and in total."""
    run = computed(
        crm,
        "pcv",
        latest,
        lambda: crm.analytics.pcv(as_of=as_of, currency=currency, discount_rate=discount_rate, margin_rate=margin_rate),
    )
    rows = crm.analytics.customers("pcv", order="pcv_minor", limit=top)
    t = current_translator()
    title = t.gettext("%(header)s: %(customers)s customers, total %(total)s") % {
        "header": run_header(run),
        "customers": t.format_number(run.summary["customers"]),
        "total": _amount(run, "total_minor"),
    }
    emit(money(rows, run.currency), columns(["customer_id", "name", "purchases", "pcv_minor"]), title=title)


@analytics.command("sow")
@as_of_option
@currency_option
@click.option("--window-days", type=int, help="Days of our spend to compare with the yearly category spend (365).")
@click.option("--low-share", help="Growth opportunities: share below this (default 0.30).")
@click.option(
    "--min-category-spend",
    type=int,
    help="Growth opportunities: category spend at least this (minor units; default: the top fifth).",
)
@click.option("--top", default=20, show_default=True, help="How many growth opportunities to list.")
@latest_option
@format_option
@pass_crm
def sow(
    crm: CRM,
    as_of: str | None,
    currency: str | None,
    window_days: int | None,
    low_share: str | None,
    min_category_spend: int | None,
    top: int,
    latest: bool,
) -> None:
    """Share of wallet per segment, and the customers with a low share of a big wallet."""
    run = computed(
        crm, "sow", latest, lambda: crm.analytics.sow(as_of=as_of, currency=currency, window_days=window_days)
    )
    segments = [{"segment": name, **values} for name, values in run.summary["segments"].items()]
    emit(
        money(segments, run.currency),
        columns(["segment", "customers", "spend_minor", "category_spend_minor", "share"]),
        title=current_translator().gettext("%(header)s: overall share %(share)s")
        % {"header": run_header(run), "share": _share(run.summary["share"])},
    )
    threshold, rows = crm.analytics.growth_opportunities(
        low_share=low_share, min_category_spend=min_category_spend, limit=top
    )
    if current_format() == "table":
        click.echo()
        emit(
            money(rows, run.currency),
            columns(
                ["customer_id", "name", "share", "spend_minor", "category_spend_minor", "headroom_minor", "source"]
            ),
            title=current_translator().gettext("Growth opportunities (category spend ≥ %(threshold)s)")
            % {"threshold": _money_text(run.currency, threshold)},
        )


MODEL_NAMES = {"bgnbd": "BG/NBD", "pareto_nbd": "Pareto/NBD"}
CLV_COLUMNS = [
    "customer_id",
    "name",
    "frequency",
    "recency_weeks",
    "age_weeks",
    "p_alive",
    "expected_purchases",
    "expected_spend",
    "clv",
    "currency",
]


def model_option(function: F) -> F:
    return click.option(
        "--model",
        type=click.Choice(["bgnbd", "pareto_nbd"]),
        help="Purchase model that predicts (default: the clv_model setting, bgnbd); both are fitted and compared.",
    )(function)


@analytics.command("clv")
@as_of_option
@currency_option
@click.option("--horizon-days", type=int, help="How far ahead to value customers (default 365).")
@click.option("--discount-rate", help="Annual rate, 0 ≤ rate < 1 (default: the setting, 0.10).")
@click.option("--margin-rate", help="Gross-margin share of revenue (default: the setting, 1).")
@model_option
@click.option("--top", default=10, show_default=True, help="How many of the most valuable customers to list.")
@latest_option
@format_option
@pass_crm
def clv(
    crm: CRM,
    as_of: str | None,
    currency: str | None,
    horizon_days: int | None,
    discount_rate: str | None,
    margin_rate: str | None,
    model: str | None,
    top: int,
    latest: bool,
) -> None:
    """Lifetime value: BG/NBD and Pareto/NBD (compared), Gamma-Gamma spend, P(alive), expected purchases and CLV.

    --as-of DATE ends the calibration period with that local day. JSON gives the run (every parameter at full
    precision) and the customers; CSV the customers; money in units of the currency, named in `currency`.
    """
    run = computed(
        crm,
        "clv",
        latest,
        lambda: crm.analytics.clv(
            as_of=as_of,
            currency=currency,
            horizon_days=horizon_days,
            discount_rate=discount_rate,
            margin_rate=margin_rate,
            model=model,
        ),
    )
    rows = [clv_row(row, run.currency) for row in crm.analytics.customers("clv", order="clv_minor", limit=top)]
    if current_format() == "json":
        emit_object({"run": run_record(run), "customers": rows})
        return
    if current_format() == "table":
        for line in model_lines(run):
            click.echo(line)
    title = (
        f"{run_header(run)}: {run.summary['customers']} customers, total CLV {_amount(run, 'total_minor')} "
        f"over {run.parameters['horizon_days']} days"
    )
    emit(money(rows, run.currency) if current_format() == "table" else rows, CLV_COLUMNS, title=title)


def clv_row(row: Mapping[str, Any], currency: str | None) -> dict[str, Any]:
    """A CLV snapshot row with money in units of the currency (Decimal), labelled with it."""
    from crmkit.money import Money

    return {
        **{k: row.get(k) for k in CLV_COLUMNS[:7]},
        "expected_spend": Money(currency, int(row["expected_spend_minor"])).amount if currency else None,
        "clv": Money(currency, int(row["clv_minor"])).amount if currency else None,
        "currency": currency,
    }


def run_record(run: Run) -> dict[str, Any]:
    """A run as JSON shows it: id, dates, currency, every parameter (full precision) and the summary."""
    return {
        "id": run.id,
        "measure": run.measure,
        "currency": run.currency,
        "as_of": run.as_of,
        "computed_at": run.computed_at,
        "parameters": run.parameters,
        "summary": run.summary,
    }


def model_lines(run: Run) -> list[str]:
    """The fitted models as text, every parameter at full precision (± standard error), LL and BIC."""
    p = run.parameters
    lines = [
        f"Purchase occasions: {p.get('occasions', 'transaction')} ({p.get('time_zone', 'UTC')}), time in weeks, "
        f"calibration ends {p.get('calibration_end', f'{run.as_of:%Y-%m-%d}')}"
    ]
    for key in ("bgnbd", "pareto_nbd"):
        fit = p.get(key)
        if not fit:
            continue
        name = MODEL_NAMES[key]
        if fit.get("fitted") is False:
            lines.append(f"{name}: not fitted ({fit['reason']})")
            continue
        errors = fit.get("standard_errors", {})
        values = "  ".join(
            f"{k}={fit[k]!r}" + (f" (±{errors[k]:.4g})" if k in errors else "")
            for k in (("r", "alpha", "a", "b") if key == "bgnbd" else ("r", "alpha", "s", "beta"))
        )
        marks = [
            m
            for m, on in (("better (lower BIC)", fit.get("better")), ("predicting", p.get("model", "bgnbd") == key))
            if on
        ]
        extra = f"  BIC={fit['bic']!r}" if "bic" in fit else ""
        lines.append(
            f"{name}: {values}  LL={fit['log_likelihood']!r}{extra}" + (f"  ← {', '.join(marks)}" if marks else "")
        )
        for bound in fit.get("at_bound", ()):
            lines.append(
                f"note: {name} parameter {bound} is at the edge of its range: the history is too short or "
                "uniform to pin it down; read the predictions with care"
            )
    spend = p["gamma_gamma"]
    unit = spend.get("currency", run.currency)
    if spend["fitted"]:
        errors = spend.get("standard_errors", {})
        values = "  ".join(
            f"{k}={spend[k]!r}" + (f" (±{errors[k]:.4g})" if k in errors else "") for k in ("p", "q", "gamma")
        )
        mean = spend.get("population_mean")
        lines.append(
            f"Gamma-Gamma (spend per occasion in {unit}; gamma in {unit}): {values}  "
            f"LL={spend['log_likelihood']!r}  on {spend['customers']} repeat buyers"
            + (f"; a one-time buyer's expected spend {mean:.2f} {unit}" if mean else "")
        )
        for bound in spend.get("at_bound", ()):
            lines.append(
                f"note: Gamma-Gamma parameter {bound} is at the edge of its range; read the predictions with care"
            )
    else:
        lines.append(f"spend per occasion: each customer's own mean ({spend['reason']})")
    counts = p.get("purchase_count_distribution")
    if counts:
        shown = ", ".join(f"{label}: {value:.1%}" for label, value in zip(counts["labels"], counts["probabilities"]))
        lines.append(f"P(X(t) = n) for a new customer over t = {counts['horizon_weeks']:.4g} weeks (BG/NBD): {shown}")
    return lines


@analytics.command("clv-check")
@click.option("--calibration-end", required=True, help="Last local day (YYYY-MM-DD) the models are fitted on.")
@click.option("--holdout-end", required=True, help="Last local day (YYYY-MM-DD) of the hold-out they predict.")
@currency_option
@model_option
@format_option
@pass_crm
def clv_check(crm: CRM, calibration_end: str, holdout_end: str, currency: str | None, model: str | None) -> None:
    """Check the purchase model against a hold-out: predicted vs actual repeat purchases per calibration
    frequency (0 … 7+), in total, week by week (cumulative), and mean absolute error per customer."""
    result = crm.analytics.clv_check(
        calibration_end=calibration_end, holdout_end=holdout_end, currency=currency, model=model
    )
    if current_format() == "json":
        emit_object(result)
        return
    rows = [
        *result["by_frequency"],
        {
            "frequency": "total",
            "customers": result["customers"],
            "actual": result["total"]["actual"],
            "predicted": result["total"]["predicted"],
        },
    ]
    if current_format() == "csv":
        emit(rows, ["frequency", "customers", "actual", "predicted"])
        return
    name = MODEL_NAMES[result["model"]]
    click.echo(
        f"{name} fitted on occasions up to {result['calibration_end']}, predicting the "
        f"{result['holdout_weeks']:.4g} weeks to {result['holdout_end']} for {result['customers']} customers"
    )
    shown = [
        {
            "frequency": r["frequency"],
            "customers": r["customers"],
            "actual": None if r["actual"] is None else f"{r['actual']:.3f}",
            "predicted": None if r["predicted"] is None else f"{r['predicted']:.3f}",
        }
        for r in rows[:-1]
    ]
    shown.append(
        {
            "frequency": "total",
            "customers": result["customers"],
            "actual": str(result["total"]["actual"]),
            "predicted": f"{result['total']['predicted']:.1f}",
        }
    )
    emit(
        shown,
        ["frequency", "customers", "actual", "predicted"],
        title="Repeat purchases in the hold-out per customer, by calibration frequency (last row: all customers)",
    )
    click.echo(f"mean absolute error per customer: {result['mean_absolute_error']:.4f}")
    click.echo()
    emit(
        [{**w, "predicted": f"{w['predicted']:.1f}"} for w in result["weekly"]],
        ["week", "ending", "actual", "predicted"],
        title="Cumulative repeat purchases, week by week",
    )


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
    emit(
        money(result["months"], code),
        columns(
            [
                "month",
                "acquired",
                "active",
                "orders",
                "revenue_minor",
                "aov_minor",
                "purchase_frequency",
                "retention",
                "churn",
            ]
        ),
        title=scoped(crm),
    )


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
    flat = [
        {
            "cohort": r["cohort"],
            "customers": r["customers"],
            **{
                f"m{k}": (f"{v:.0%}" if current_format() == "table" else v) if v is not None else None
                for k, v in enumerate(r["retention"])
            },
        }
        for r in rows
    ]
    emit(flat, ["cohort", "customers", *(f"m{k}" for k in range(width))], title=scoped(crm))


@analytics.command("activity")
@as_of_option
@click.option("--months", default=3, show_default=True)
@format_option
@pass_crm
def activity(crm: CRM, as_of: str | None, months: int) -> None:
    """CRM activity: interactions per employee per month."""
    emit(
        crm.analytics.activity(as_of=as_of, months=months),
        ["month", "employee", "interactions", "inbound", "outbound", "customers"],
        title=scoped(crm),
    )


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
@click.option(
    "--out", "out", required=True, type=click.Path(dir_okay=False, writable=True), help="Where to write the HTML file."
)
@as_of_option
@currency_option
@click.option(
    "--no-recompute",
    is_flag=True,
    help="Use the latest stored runs instead of computing them now (computing needs analytics.run).",
)
@click.option(
    "--charts", "charts_dir", type=click.Path(file_okay=False), help="Also save every chart here (PNG and SVG)."
)
@click.option(
    "--holdout",
    nargs=2,
    metavar="CALIBRATION_END HOLDOUT_END",
    help="Add the CLV model check against this hold-out (two local days), as `analytics clv-check`.",
)
@pass_crm
def report(
    crm: CRM,
    out: str,
    as_of: str | None,
    currency: str | None,
    no_recompute: bool,
    charts_dir: str | None,
    holdout: tuple[str, str] | None,
) -> None:
    """Write one self-contained HTML report (charts inlined): RFM grid, segments, CLV, cohorts, KPIs — in the
    language of `crmkit --locale`, else the user's, else the business's."""
    t = current_translator()
    path = crm.analytics.report(
        out,
        as_of=as_of,
        currency=currency,
        recompute=not no_recompute,
        charts_dir=charts_dir,
        locale=t.locale,
        holdout=holdout or None,
    )
    click.echo(t.gettext("wrote %(file)s") % {"file": path})


@analytics.command("settings")
@click.option("--currency")
@click.option("--rfm-monetary", type=click.Choice(["total", "average"], case_sensitive=False))
@click.option("--discount-rate")
@click.option("--gross-margin-rate")
@click.option("--clv-horizon-days", type=int)
@click.option("--clv-model", type=click.Choice(["bgnbd", "pareto_nbd"]))
@click.option("--clv-occasions", type=click.Choice(["day", "transaction"]))
@click.option("--new-days", type=int)
@click.option("--loyal-purchases", type=int)
@click.option("--at-risk-days", type=int)
@click.option("--lost-days", type=int)
@click.option("--sow-window-days", type=int)
@click.option("--sow-low-share")
@click.option(
    "--estimate",
    "estimates",
    multiple=True,
    metavar="SEGMENT=AMOUNT",
    help="Yearly category spend (minor units) assumed for an RFM segment; repeat; AMOUNT empty removes it.",
)
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
    emit(
        [{"setting": k, "value": v, "meaning": DEFAULTS[k][1]} for k, v in result.items()],
        ["setting", "value", "meaning"],
    )


@analytics.command("runs")
@click.option("--measure", type=click.Choice(["rfm", "types", "pcv", "sow", "clv"]))
@click.option("--limit", default=20, show_default=True)
@format_option
@pass_crm
def runs_command(crm: CRM, measure: str | None, limit: int) -> None:
    """Past computations: when, for which date and currency, their headline figures and (JSON/CSV) parameters;
    a CLV run's fitted models in full."""
    found = crm.analytics.history(measure, limit=limit)
    fmt = current_format()

    def parameters(run: Run) -> Any:
        if fmt == "json":
            return run.parameters
        return json.dumps(to_jsonable(run.parameters), ensure_ascii=False) if fmt == "csv" else _figures(run)

    emit(
        [
            {
                "id": r.id,
                "measure": r.measure,
                "currency": r.currency,
                "as_of": r.as_of,
                "computed_at": r.computed_at,
                "actor": r.actor,
                "customers": r.summary.get("customers"),
                "parameters": parameters(r),
            }
            for r in found
        ],
        ["id", "measure", "currency", "as_of", "computed_at", "actor", "customers", "parameters"],
    )
    if fmt == "table":
        for r in found:
            if r.measure == "clv":
                click.echo(f"\nrun {r.id}:")
                for line in model_lines(r):
                    click.echo(f"  {line}")


def _figures(run: Run) -> str:
    """A run's parameters in a few words for the table (the CLV models are printed in full below it)."""
    p = run.parameters
    if run.measure == "clv":
        return f"model {p.get('model', 'bgnbd')}, horizon {p['horizon_days']} days, discount {p['discount_rate']}"
    return ", ".join(f"{k} {v}" for k, v in p.items() if isinstance(v, (str, int, float)))[:80]


def _amount(run: Run, key: str) -> str:
    """A run's summary amount ``key`` (minor units) in the reader's style."""
    return _money_text(run.currency, run.summary[key]) if run.currency else "0"


def _money_text(currency: str | None, minor: int | None) -> str:
    """An amount in minor units of ``currency`` in the reader's style (vi ``1.234.567 ₫``); the number without one."""
    from crmkit.money import Money

    t = current_translator()
    if minor is None:
        return "—"
    return t.format_money(Money(currency, int(minor))) if currency else t.format_number(int(minor))


def _share(value: float | None) -> str:
    """The overall share of wallet in the reader's style (vi ``42,5%``), or why it is unknown."""
    t = current_translator()
    return t.gettext("unknown (no category spend known)") if value is None else t.format_percent(Decimal(repr(value)))
