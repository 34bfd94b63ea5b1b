"""Analytics in the web console: the dashboard (KPIs, RFM segments, customer types, lifetime value, cohorts),
the "Value" panel of the customer 360, a home tile, and the "Compute now" button.

Everything is read through ``crm.analytics`` as the signed-in user, so figures count only the customers their
``analytics.read`` reaches; computing calls :meth:`AnalyticsService.run` (``crmkit analytics run``), which needs
``analytics.run``. Charts are the report's own (``charts.py``), inlined as SVG ``data:`` images with their
figures in a table beside them; money becomes :class:`~crmkit.money.Money` here and is formatted per locale
by the templates.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from crmkit import ValidationError, hookimpl
from crmkit.console import ConsolePage, MenuEntry, Panel, Tile
from crmkit.money import Money
from crmkit_analytics.service import READ, RUN

if TYPE_CHECKING:
    from werkzeug.wrappers import Response

    from crmkit import CRM, Customer
    from crmkit.plugin_api import ConsoleRequest
    from crmkit_analytics.runs import Run
    from crmkit_analytics.service import AnalyticsService, Computed

DASHBOARD = "/console/analytics/"
COMPUTE = "/console/analytics/compute"
TEMPLATES = "crmkit_analytics:templates/console/"
MEASURES = ("rfm", "types", "pcv", "sow", "clv")
#: Customer types (``customer_types.TYPES``) → their display names (msgids).
TYPE_NAMES = {
    "loyal": "Loyal",
    "potential": "Potential",
    "new": "New",
    "prospect": "Prospect",
    "at_risk": "At risk",
    "lost": "Lost",
}
#: Measures → their names (msgids), for what "Compute now" could not compute.
MEASURE_NAMES = {
    "rfm": "RFM segments",
    "types": "Customer types",
    "pcv": "Past customer value",
    "sow": "Share of wallet",
    "clv": "Customer lifetime value",
}
TOP = 5  # most valuable customers listed on the dashboard


def _money(currency: str | None, minor: int | None) -> Money | None:
    """An amount of the run's currency, or None when there is none to show."""
    return None if currency is None or minor is None else Money(currency, int(minor))


def _currency(latest: dict[str, Run | None]) -> str | None:
    """The currency the money measures were computed in (the first run that has one)."""
    return next((run.currency for run in latest.values() if run is not None and run.currency), None)


def dashboard(request: ConsoleRequest, *, computed: Computed | None = None) -> Response:
    """The latest computed runs as charts and tables, with the KPIs and cohorts of their currency."""
    service, _ = request.crm.analytics, request.i18n.gettext
    latest = {measure: service.latest(measure) for measure in MEASURES}
    values: dict[str, Any] = {
        "latest": latest,
        "computed": computed,
        "measure_names": MEASURE_NAMES,
        "can_run": request.allowed(RUN),
        "scoped": service.scope() is not None,
        "action": COMPUTE,
        "problem": None,
        "overview": None,
        "cohorts": [],
        **dict.fromkeys(("currency", "aov", "revenue", "pcv_total", "sow_share", "clv", "segments", "types")),
    }
    try:  # the runs' currency; before any run, the one purchases are in
        values["currency"] = currency = _currency(latest) or service.currency()
        values["overview"] = service.kpis(currency=currency)["overview"]
        values["cohorts"] = service.cohorts(currency=currency) if currency else []
    except ValidationError as exc:  # purchases in several currencies and none chosen: say so, show the rest
        values["problem"] = str(exc)
    if values["overview"] and values["currency"]:
        values["aov"] = _money(values["currency"], values["overview"]["aov_minor"])
        values["revenue"] = _money(values["currency"], values["overview"]["revenue_minor"])
    if latest["pcv"] is not None:
        values["pcv_total"] = _money(latest["pcv"].currency, latest["pcv"].summary.get("total_minor"))
    if latest["sow"] is not None:
        values["sow_share"] = latest["sow"].summary.get("share")
    values.update(
        **_segments(latest["rfm"], _), **_types(latest["types"], _), **_lifetime_value(service, latest["clv"])
    )
    if values["cohorts"]:
        from crmkit_analytics import charts

        values["cohort_chart"] = charts.data_uri(charts.cohort_heatmap(values["cohorts"], text=_))
        values["cohort_months"] = max(len(row["retention"]) for row in values["cohorts"])
    return request.render(TEMPLATES + "dashboard.html", **values)


def _segments(run: Run | None, _: Callable[[str], str]) -> dict[str, Any]:
    """The RFM grid chart and one row per segment (customers, share, what to do), in the user's language."""
    from crmkit_analytics import charts
    from crmkit_analytics.rfm import SEGMENTS, segment_of

    if run is None or not run.summary.get("customers"):
        return {}
    names = {key: _(name) for key, (name, _rule, _action) in SEGMENTS.items()}
    sizes, total = run.summary["segments"], run.summary["customers"]
    return {
        "rfm_chart": charts.data_uri(charts.rfm_grid(run.summary["grid"], segment_of, names, text=_)),
        "segments": [
            {
                "name": names[key],
                "action": _(action),
                "customers": sizes[key]["customers"],
                "share": sizes[key]["customers"] / total,
            }
            for key, (_name, _rule, action) in SEGMENTS.items()
        ],
    }


def _types(run: Run | None, _: Callable[[str], str]) -> dict[str, Any]:
    """The customer-types chart and one row per type (customers, meaning), in the user's language."""
    from crmkit_analytics import charts
    from crmkit_analytics.customer_types import TYPES

    if run is None or not run.summary.get("customers"):
        return {}
    names, sizes = {key: _(TYPE_NAMES[key]) for key in TYPES}, run.summary["types"]
    return {
        "types_chart": charts.data_uri(
            charts.segment_sizes(sizes, names, charts.TYPE_COLOURS, _("Customers by type"), text=_)
        ),
        "types": [
            {"name": names[key], "meaning": _(meaning), "customers": sizes[key]} for key, meaning in TYPES.items()
        ],
    }


def _lifetime_value(service: AnalyticsService, run: Run | None) -> dict[str, Any]:
    """The CLV run's total, median and top tenth as money, and the most valuable customers in scope."""
    if run is None or not run.summary.get("customers"):
        return {}
    summary, quantiles = run.summary, run.summary["quantiles_minor"]
    return {
        "clv": {
            "total": _money(run.currency, summary["total_minor"]),
            "median": _money(run.currency, quantiles["p50"]),
            "top_tenth": _money(run.currency, quantiles["p90"]),
            "customers": summary["customers"],
            "likely_inactive": summary["likely_inactive"],
            "horizon_days": run.parameters.get("horizon_days"),
        },
        "top": [
            {**row, "clv": _money(run.currency, row["clv_minor"])}
            for row in service.customers("clv", order="clv_minor", limit=TOP)
        ],
    }


def compute(request: ConsoleRequest) -> Response:
    """ "Compute now": every measure as of now, as ``crmkit analytics run`` does; the dashboard then shows the
    new runs and, for a measure that could not be computed, why."""
    return dashboard(request, computed=request.crm.analytics.run())


def value_panel(crm: CRM, customer: Customer) -> dict[str, Any]:
    """The customer's RFM scores and segment, customer type, past value, CLV and share of wallet (what the
    "Value" panel of the 360 shows), money as :class:`Money`."""
    from crmkit_analytics.rfm import SEGMENTS

    found = crm.analytics.customer_values(customer.id)
    shown: dict[str, Any] = {
        "purchases": [{**row, "total": Money(row["currency"], int(row["total_minor"]))} for row in found["purchases"]]
    }
    if "rfm" in found:
        row = found["rfm"]
        name, _rule, action = SEGMENTS[row["segment"]]
        shown["rfm"] = {
            **row,
            "segment_name": name,
            "action": action,
            "monetary": Money(row["currency"], int(row["monetary_minor"])),
        }
    if "types" in found:
        shown["customer_type"] = TYPE_NAMES[found["types"]["customer_type"]]
    if "pcv" in found:
        shown["pcv"] = Money(found["pcv"]["currency"], int(found["pcv"]["pcv_minor"]))
    if "clv" in found:
        row = found["clv"]
        shown["clv"] = {**row, "value": Money(row["currency"], int(row["clv_minor"]))}
    if "sow" in found:
        row = found["sow"]
        shown["sow"] = {**row, "category_spend": Money(row["currency"], int(row["category_spend_minor"]))}
    return shown


def value_tile(crm: CRM) -> dict[str, Any]:
    """The home tile's figures: total expected lifetime value, champions, and the good customers slipping away."""
    clv, rfm = crm.analytics.latest("clv"), crm.analytics.latest("rfm")
    segments = rfm.summary.get("segments", {}) if rfm is not None else {}
    return {
        "clv": None if clv is None else _money(clv.currency, clv.summary.get("total_minor")),
        "champions": segments.get("champions", {}).get("customers") if rfm is not None else None,
        "slipping": (
            sum(segments.get(key, {}).get("customers", 0) for key in ("at_risk", "cant_lose"))
            if rfm is not None
            else None
        ),
    }


@hookimpl
def crmkit_console_pages() -> list[ConsolePage]:
    return [
        ConsolePage(DASHBOARD, dashboard, permission=READ),
        ConsolePage(COMPUTE, compute, methods=("POST",), permission=RUN),
    ]


@hookimpl
def crmkit_console_menu() -> list[MenuEntry]:
    return [MenuEntry("Analytics", DASHBOARD, permission=READ)]


@hookimpl
def crmkit_customer_panels() -> list[Panel]:
    # named after the profile's "analytics" section, which it replaces on the 360
    return [Panel("analytics", "Value", TEMPLATES + "value_panel.html", value_panel, permission=READ)]


@hookimpl
def crmkit_home_tiles() -> list[Tile]:
    return [Tile("analytics", "Customer value", TEMPLATES + "value_tile.html", value_tile, permission=READ)]


@hookimpl
def crmkit_translations() -> list[tuple[str, str]]:
    return [("crmkit_analytics", "crmkit_analytics")]  # crmkit_analytics/locale/vi/LC_MESSAGES/crmkit_analytics.po
