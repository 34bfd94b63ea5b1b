"""Analytics' HTTP resources, read only: the latest stored run of each measure, its rows, runs and KPIs.

Computing a measure is a whole-base job (``crmkit analytics rfm`` …, ``analytics.run``): the API never
starts one per request, it reads what the last run stored, through ``crm.analytics`` acting as the
caller (summaries and rows cover the customers their ``analytics.read`` reaches; others answer 404).
Money stays integer minor units; shares and probabilities are ratios, not money.
``crmkit.web`` is imported when the app is built, not when the plugin loads (it would slow every CLI command).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from marshmallow import fields, validate

from crmkit import hookimpl
from crmkit_analytics.customer_types import TYPES
from crmkit_analytics.models import SNAPSHOTS
from crmkit_analytics.rfm import SEGMENTS

if TYPE_CHECKING:
    from marshmallow import Schema

    from crmkit.crm import CRM
    from crmkit.web import ApiRequest, Operation

#: What each measure's routes are about, by the measure's name (its path under ``/analytics/``).
MEASURES = {
    "rfm": "RFM scores and segments",
    "types": "customer types",
    "pcv": "past customer value",
    "sow": "share of wallet",
    "clv": "lifetime value (BG/NBD + Gamma-Gamma)",
}
#: The segments a measure's rows can be filtered by (measures absent here have none).
SEGMENTED = {"rfm": tuple(SEGMENTS), "types": tuple(TYPES)}
_FIELDS: dict[type, type[fields.Field]] = {int: fields.Integer, str: fields.String, float: fields.Float}


def _columns(table: sa.Table) -> list[sa.Column[Any]]:
    """A snapshot table's measure columns (what a row shows besides the customer)."""
    return [column for column in table.c if column.key not in ("customer_id", "run_id")]


def _row_schema(table: sa.Table) -> dict[str, fields.Field]:
    """The fields of a snapshot row as ``crm.analytics.customers`` gives it, read off the measure's table."""
    return {
        "customer_id": fields.Integer(),
        "name": fields.String(),
        **{column.key: _FIELDS[column.type.python_type]() for column in _columns(table)},
    }


def _latest(measure: str) -> Any:
    """The handler answering the latest run of ``measure`` (404 until one was computed)."""
    from crmkit.web import HttpProblem

    def handler(r: ApiRequest) -> Any:
        run = r.crm.analytics.latest(measure)
        if run is None:
            raise HttpProblem(404, f"no {measure} run yet: compute one with `crmkit analytics {measure}`")
        return run

    return handler


def _measure_operations(measure: str, run: Schema) -> list[Operation]:
    """The latest run of one measure, its rows (filtered, sorted) and one customer's row."""
    from crmkit.web import Operation, query_schema
    from crmkit_analytics.service import READ

    title, table = MEASURES[measure], SNAPSHOTS[measure]
    name = "Analytics" + measure.capitalize()
    row = query_schema(f"{name}Row", **_row_schema(table))
    listing: dict[str, fields.Field] = {
        "order": fields.String(
            validate=validate.OneOf([column.key for column in _columns(table)]),
            metadata={"description": "a column to sort by, highest first (default: customer id)"},
        ),
        "limit": fields.Integer(load_default=50, validate=validate.Range(1, 1000)),
    }
    if measure in SEGMENTED:
        listing["segment"] = fields.String(validate=validate.OneOf(SEGMENTED[measure]))
    return [
        Operation(
            "GET",
            f"/analytics/{measure}",
            _latest(measure),
            f"The latest {title} run and its summary",
            response=run,
            permission=READ,
            description="The summary counts the caller's customers only (`scope` says whose when not all).",
        ),
        Operation(
            "GET",
            f"/analytics/{measure}/customers",
            lambda r: r.crm.analytics.customers(
                measure, segment=r.query.get("segment"), order=r.query.get("order"), limit=r.query["limit"]
            ),
            f"Customers' {title} from the latest run",
            query=query_schema(f"{name}Query", **listing),
            response=row,
            many=True,
            permission=READ,
        ),
        Operation(
            "GET",
            f"/analytics/{measure}/customers/{{customer_id:int}}",
            lambda r: r.crm.analytics.customer(measure, r.params["customer_id"]),
            f"A customer's {title} from the latest run",
            response=row,
            permission=READ,
        ),
    ]


@hookimpl
def crmkit_api_operations(crm: CRM) -> list[Operation]:
    """Every measure's latest run and rows, the history of runs, and the KPIs."""
    from crmkit.web import Operation, query_schema, schema_of
    from crmkit_analytics.runs import Run
    from crmkit_analytics.service import READ

    run = schema_of(Run)
    runs = query_schema(
        "AnalyticsRunsQuery",
        measure=fields.String(validate=validate.OneOf(list(SNAPSHOTS))),
        limit=fields.Integer(load_default=20, validate=validate.Range(1, 1000)),
    )
    kpis = query_schema(
        "AnalyticsKpisQuery",
        as_of=fields.Date(),
        currency=fields.String(validate=validate.Length(3, 3)),
        months=fields.Integer(load_default=12, validate=validate.Range(1, 120)),
        freshness_days=fields.Integer(load_default=90, validate=validate.Range(1, 3650)),
    )
    kpi_answer = query_schema("AnalyticsKpis", overview=fields.Dict(), months=fields.List(fields.Dict()))
    return [
        *(op for measure in MEASURES for op in _measure_operations(measure, run)),
        Operation(
            "GET",
            "/analytics/runs",
            lambda r: r.crm.analytics.history(r.query.get("measure"), limit=r.query["limit"]),
            "Past runs of the measures, newest first",
            query=runs,
            response=run,
            many=True,
            permission=READ,
            description="Summaries are the whole base's: a caller who reads fewer customers gets them empty.",
        ),
        Operation(
            "GET",
            "/analytics/kpis",
            lambda r: r.crm.analytics.kpis(
                as_of=r.query.get("as_of"),
                currency=r.query.get("currency"),
                months=r.query["months"],
                freshness_days=r.query["freshness_days"],
            ),
            "Headline KPIs and one row per month (acquisition, retention, churn, AOV…)",
            query=kpis,
            response=kpi_answer,
            permission=READ,
            description="Counted over the caller's customers (`overview.scope` says whose); amounts in minor "
            "units of `overview.currency`.",
        ),
    ]
