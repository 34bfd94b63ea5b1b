"""IDIC's HTTP API: runs, status, the review queue and agendas — thin doors onto ``crm.idic``.

Each handler calls the service method the ``crmkit idic`` command calls, as the caller; the service
checks ``idic.*`` and the record scope (a review pair outside it answers 404). A run is a POST that
runs synchronously, as ``crmkit idic run`` does; work on a schedule belongs to ``crmkit worker``.
The web layer is imported inside the hook: loading the plugin for the CLI does not pay for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crmkit import hookimpl

if TYPE_CHECKING:
    from crmkit import CRM
    from crmkit.web import ApiRequest, Operation, Reply


@hookimpl
def crmkit_api_operations(crm: CRM) -> list[Operation]:
    """Runs (start, resume, list, read), status, the review queue (list, accept, reject) and the agenda."""
    from marshmallow import fields, validate

    from crmkit.web import Operation, Reply, query_schema, schema_of
    from crmkit_idic.access import READ, REVIEW, RUN
    from crmkit_idic.config import TIERS
    from crmkit_idic.runs import IdicRun

    def start(r: ApiRequest) -> Reply:
        """Run the chosen steps now, as ``crmkit idic run`` does; answers the finished run."""
        body = r.body
        run = r.crm.idic.run(steps=body.get("steps"), segment=body.get("segment"), segment_id=body.get("segment_id"))
        return Reply(run, status=201, headers={"Location": f"/idic/runs/{run.id}"})

    def reject(r: ApiRequest) -> Reply:
        """Keep the pair apart for good; nothing to answer but 204."""
        r.crm.idic.reject(r.params["review_id"], **r.body)
        return Reply(status=204)

    def limit(default: int) -> fields.Integer:
        """A ``limit`` query parameter: 1–1000, ``default`` when not given."""
        return fields.Integer(load_default=default, validate=validate.Range(1, 1000))

    run_schema = schema_of(IdicRun)
    run_body = query_schema(
        "IdicRunBody",
        steps=fields.List(fields.String(), validate=validate.Length(1, 4)),
        segment=fields.String(validate=validate.Length(1, 2000)),
        segment_id=fields.Integer(validate=validate.Range(1)),
    )
    status = query_schema(
        "IdicStatus",
        last_run=fields.Integer(allow_none=True),
        status=fields.String(),
        next_step=fields.String(allow_none=True),
        review_queue=fields.Integer(),
        open_plan_items=fields.Integer(),
        scoped=fields.Boolean(),
        **{f"tier_{tier}": fields.Integer() for tier in TIERS},
    )
    review = query_schema(
        "IdicReview",
        id=fields.Integer(),
        customer_id=fields.Integer(),
        name=fields.String(),
        other_id=fields.Integer(),
        other_name=fields.String(),
        score=fields.Float(),
        reason=fields.String(),
        status=fields.String(),
    )
    accepted = query_schema(
        "IdicAccepted",
        review=fields.Integer(),
        merge=fields.Integer(allow_none=True),
        kept=fields.Integer(),
        merged=fields.Integer(),
    )
    agenda_item = query_schema(
        "IdicAgendaItem",
        id=fields.Integer(),
        due_on=fields.Date(),
        hour=fields.Integer(allow_none=True),
        customer_id=fields.Integer(),
        name=fields.String(),
        owner=fields.String(allow_none=True),
        channel=fields.String(),
        purpose=fields.String(),
        next_action=fields.String(allow_none=True),
    )
    one_run, one_review = "/idic/runs/{run_id:int}", "/idic/reviews/{review_id:int}"
    return [
        Operation(
            "POST",
            "/idic/runs",
            start,
            "Run the IDIC steps now (all four, or those named)",
            body=run_body,
            response=run_schema,
            status=201,
            permission=RUN,
            description="Runs synchronously, each step in order, as `crmkit idic run` does; the answer is the "
            "finished run. A failed step answers its error and the run can be resumed. Identify "
            "merges, so it also needs `customers.merge`. Scheduled work runs in `crmkit worker`.",
        ),
        Operation(
            "POST",
            one_run + "/resume",
            lambda r: r.crm.idic.resume(r.params["run_id"]),
            "Continue a failed or interrupted run from the step it stopped at",
            response=run_schema,
            permission=RUN,
        ),
        Operation(
            "GET",
            "/idic/runs",
            lambda r: r.crm.idic.runs(limit=r.query["limit"]),
            "Recent runs, newest first",
            query=query_schema("IdicRunsQuery", limit=limit(20)),
            response=run_schema,
            many=True,
            permission=READ,
        ),
        Operation(
            "GET",
            one_run,
            lambda r: r.crm.idic.get(r.params["run_id"]),
            "A run with the result of each step",
            response=run_schema,
            permission=READ,
            description="With a scope other than all, counts cover the caller's customers (`scoped` names them).",
        ),
        Operation(
            "GET",
            "/idic/status",
            lambda r: r.crm.idic.status(),
            "Where the workflow stands: last run, review queue, open plan items, customers per tier",
            response=status,
            permission=READ,
        ),
        Operation(
            "GET",
            "/idic/reviews",
            lambda r: r.crm.idic.reviews(status=r.query["status"], limit=r.query["limit"]),
            "Pairs that may be one customer, surest first",
            response=review,
            many=True,
            permission=REVIEW,
            query=query_schema("IdicReviewsQuery", status=fields.String(load_default="pending"), limit=limit(50)),
            description="A pair shows only when both customers are in the caller's scope.",
        ),
        Operation(
            "POST",
            one_review + "/accept",
            lambda r: r.crm.idic.accept(r.params["review_id"]),
            "Merge the pair (the older id is kept)",
            response=accepted,
            permission=REVIEW,
            description="Also needs `customers.merge`.",
        ),
        Operation(
            "POST",
            one_review + "/reject",
            reject,
            "Keep the pair apart: never merged automatically",
            body=query_schema("IdicRejectBody", reason=fields.String(validate=validate.Length(1, 500))),
            status=204,
            permission=REVIEW,
        ),
        Operation(
            "GET",
            "/idic/agenda",
            lambda r: r.crm.idic.agenda(r.query.get("employee"), r.query.get("date")),
            "Open plan items due on a day or earlier, of one employee or everyone",
            response=agenda_item,
            many=True,
            permission=READ,
            query=query_schema(
                "IdicAgendaQuery", employee=fields.String(validate=validate.Length(1, 100)), date=fields.Date()
            ),
            description="`date` is a local day (default today); only customers in the caller's scope.",
        ),
    ]
