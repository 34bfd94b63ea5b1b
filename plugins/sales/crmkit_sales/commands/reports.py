"""Address labels and sales reports: ``crmkit sales labels``, ``crmkit sales report …``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import attrs
import click

from crmkit.plugin_api import current_translator, emit, pass_crm
from crmkit_sales.commands.display import DATE, _day, _money, _rows, _write
from crmkit_sales.commands.group import sales

# --- labels and reports -----------------------------------------------------------------------------------------------


@sales.command("labels")
@click.argument("customer_ids", nargs=-1, type=int)
@click.option("--tag", help="Every customer with this tag.")
@click.option("--all", "everyone", is_flag=True, help="Every customer with a postal address.")
@click.option("--layout", default="3x8", show_default=True, help="Sheet layout: 3x8 or 3x7 labels on A4.")
@click.option("-o", "--output", help="HTML file to write (stdout by default).")
@pass_crm
def labels(
    crm: Any, customer_ids: tuple[int, ...], tag: str | None, everyone: bool, layout: str, output: str | None
) -> None:
    """Printable address labels (HTML, A4) for customer ids, a tag, or everyone."""
    t = current_translator()
    sheet = crm.sales.labels.render(
        customer_ids=list(customer_ids) or None, tag=tag, everyone=everyone, layout=layout, locale=t.locale
    )
    _write(sheet.html, output)
    said = t.ngettext("%(count)s label", "%(count)s labels", sheet.count) % {"count": t.format_number(sheet.count)}
    if sheet.skipped:
        said += "; " + t.gettext("no postal address you may see: %(ids)s") % {"ids": ", ".join(map(str, sheet.skipped))}
    click.echo(said, err=True)


@sales.group()
def report() -> None:
    """Sales reports (use crmkit --format table|json|csv)."""


def _period(function: Callable[..., Any]) -> Callable[..., Any]:
    function = click.option("--customer", "customer_id", type=int, help="Only this customer's deals or orders.")(
        function
    )
    function = click.option("--until", type=DATE, help="Last day (inclusive).")(function)
    return click.option("--since", type=DATE, help="First day.")(function)


def _emit_report(rows: Any, shape: Callable[[Any], dict[str, Any]], columns: list[str] | None = None) -> None:
    """Print a report's rows, and on stderr whether they cover only the customers in the user's scope."""
    emit(_rows(rows, shape), columns)
    if getattr(rows, "scoped", False):
        said = current_translator().gettext(
            "scoped: only the customers within %(user)s's sales.reports.read scope are counted"
        )
        click.echo(said % {"user": rows.user}, err=True)


@report.command("funnel")
@click.argument("pipeline")
@_period
@pass_crm
def report_funnel(
    crm: Any, pipeline: str, since: datetime | None, until: datetime | None, customer_id: int | None
) -> None:
    """Conversion by stage (deals opened in the period)."""
    _emit_report(
        crm.sales.reports.funnel(pipeline, since=_day(since), until=_day(until), customer_id=customer_id), attrs.asdict
    )


@report.command("forecast")
@click.option("--pipeline")
@_period
@pass_crm
def report_forecast(
    crm: Any, pipeline: str | None, since: datetime | None, until: datetime | None, customer_id: int | None
) -> None:
    """Weighted pipeline by month of expected close (amount × stage probability)."""
    rows = crm.sales.reports.forecast(pipeline=pipeline, since=_day(since), until=_day(until), customer_id=customer_id)
    _emit_report(
        rows,
        lambda r: {
            **attrs.asdict(r),
            "amount": _money(r.currency, r.amount_minor),
            "weighted": _money(r.currency, r.weighted_minor),
        },
        ["month", "currency", "deals", "amount", "weighted", "amount_minor", "weighted_minor"],
    )


@report.command("performance")
@_period
@pass_crm
def report_performance(crm: Any, since: datetime | None, until: datetime | None, customer_id: int | None) -> None:
    """Win rate and revenue per employee."""
    rows = crm.sales.reports.performance(since=_day(since), until=_day(until), customer_id=customer_id)
    _emit_report(
        rows,
        lambda r: {
            **attrs.asdict(r),
            "revenue": _money(r.currency, r.revenue_minor),
            "won_amount": _money(r.currency, r.won_amount_minor),
        },
        ["owner", "won", "lost", "win_rate", "won_amount", "orders", "revenue", "currency", "revenue_minor"],
    )


@report.command("top-products")
@_period
@click.option("--limit", default=10, show_default=True)
@click.option("--per-month", is_flag=True, help="The top products of each month.")
@pass_crm
def report_top_products(
    crm: Any, since: datetime | None, until: datetime | None, customer_id: int | None, limit: int, per_month: bool
) -> None:
    """Best-selling products by revenue (before VAT)."""
    rows = crm.sales.reports.top_products(
        since=_day(since), until=_day(until), limit=limit, per_month=per_month, customer_id=customer_id
    )
    _emit_report(
        rows,
        lambda r: {**attrs.asdict(r), "revenue": _money(r.currency, r.revenue_minor)},
        ["period", "rank", "sku", "name", "quantity", "orders", "revenue", "revenue_minor"],
    )


@report.command("days-to-close")
@click.option("--pipeline")
@click.option("--per-owner", is_flag=True)
@_period
@pass_crm
def report_days_to_close(
    crm: Any,
    pipeline: str | None,
    per_owner: bool,
    since: datetime | None,
    until: datetime | None,
    customer_id: int | None,
) -> None:
    """Average days from opening to winning a deal."""
    rows = crm.sales.reports.days_to_close(
        pipeline=pipeline, per_owner=per_owner, since=_day(since), until=_day(until), customer_id=customer_id
    )
    _emit_report(rows, attrs.asdict, ["pipeline", "owner", "deals", "average_days", "min_days", "max_days"])


@report.command("revenue")
@_period
@pass_crm
def report_revenue(crm: Any, since: datetime | None, until: datetime | None, customer_id: int | None) -> None:
    """Orders and revenue (net of refunds) per month."""
    rows = crm.sales.reports.revenue_by_month(since=_day(since), until=_day(until), customer_id=customer_id)
    _emit_report(
        rows,
        lambda r: {**attrs.asdict(r), "revenue": _money(r.currency, r.revenue_minor)},
        ["month", "currency", "orders", "revenue", "revenue_minor"],
    )
