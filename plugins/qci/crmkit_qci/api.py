"""QCI's HTTP API: the question bank, assessments, the scorecard and the action plan — thin doors onto ``crm.qci``.

Each handler calls the service method the ``crmkit qci`` command calls, as the caller; the service checks
``qci.assess``, ``qci.read`` or ``qci.plan``, and a scorecard read with a scope other than all counts that
scope's customers only (and says so). Money KPIs stay in integer minor units; Decimals are strings.
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
    """The bank, assessments (record, list, read), the scorecard and the plan (list, generate, read, move, assign)."""
    from marshmallow import fields, validate

    from crmkit.web import Operation, Reply, query_schema, schema_of
    from crmkit_qci.assessment import Assessment
    from crmkit_qci.bank import Bank
    from crmkit_qci.permissions import ASSESS, PLAN, READ
    from crmkit_qci.plan import STATUSES, Action, Generated
    from crmkit_qci.scorecard import Scorecard
    from crmkit_qci.service import AnswerFileSchema

    def record(r: ApiRequest) -> Reply:
        """Score and store the answers with the active bank, as ``crmkit qci assess --file`` does."""
        body = r.body
        assessment = r.crm.qci.assessments.record(body["answers"], assessed_on=body["assessed_on"], label=body["label"])
        return Reply(assessment, status=201, headers={"Location": f"/qci/assessments/{assessment.id}"})

    def generate(r: ApiRequest) -> Generated:
        """Add the actions of the weakest areas, as ``crmkit qci plan --generate`` does."""
        body = r.body
        return r.crm.qci.generate_plan(
            body.get("period"), areas=body["areas"], threshold=body["threshold"], owner=body.get("owner")
        )

    def period() -> fields.String:
        """A ``period`` parameter: ``YYYY-MM``, ``YYYY-Qn`` or ``YYYY``."""
        return fields.String(validate=validate.Length(1, 20), metadata={"description": "YYYY-MM, YYYY-Qn or YYYY"})

    assessment, action = schema_of(Assessment), schema_of(Action)
    progress = query_schema("QciProgress", **{name: fields.Integer() for name in (*STATUSES, "overdue")})
    one, action_path = "/qci/assessments/{assessment_id:int}", "/qci/plan/{action_id:int}"
    return [
        Operation(
            "GET",
            "/qci/bank",
            lambda r: r.crm.qci.bank(),
            "The active question bank",
            response=schema_of(Bank),
            permission=READ,
            description=f"Also shown to whoever may record assessments (`{ASSESS}`).",
        ),
        Operation(
            "POST",
            "/qci/assessments",
            record,
            "Record an assessment: answers to the active bank, scored",
            body=AnswerFileSchema(),
            response=assessment,
            status=201,
            permission=ASSESS,
            description="`answers` maps question ids to a whole number on the question's scale, or null for "
            "not applicable; every question of an area answered is required.",
        ),
        Operation(
            "GET",
            "/qci/assessments",
            lambda r: r.crm.qci.assessments.list(limit=r.query["limit"]),
            "The most recent assessments, oldest first",
            response=assessment,
            many=True,
            permission=READ,
            query=query_schema(
                "QciAssessmentsQuery", limit=fields.Integer(load_default=20, validate=validate.Range(1, 1000))
            ),
        ),
        Operation(
            "GET",
            one,
            lambda r: r.crm.qci.assessments.get(r.params["assessment_id"]),
            "An assessment with its area scores",
            response=assessment,
            permission=READ,
        ),
        Operation(
            "GET",
            "/qci/scorecard",
            lambda r: r.crm.qci.scorecard(r.query.get("period")),
            "Every KPI of a period against its target, with its light and trend",
            response=schema_of(Scorecard),
            query=query_schema("QciScorecardQuery", period=period()),
            permission=READ,
            description="Default period: the last complete month. With a `qci.read` scope other than all the "
            "KPIs count the caller's customers only (`coverage`). Money in minor units.",
        ),
        Operation(
            "GET",
            "/qci/plan",
            lambda r: r.crm.qci.plan.list(status=r.query.get("status"), area=r.query.get("area")),
            "The action plan, open actions first, by due date",
            response=action,
            many=True,
            permission=READ,
            query=query_schema(
                "QciPlanQuery", status=fields.String(validate=validate.OneOf(STATUSES)), area=fields.String()
            ),
        ),
        Operation(
            "GET",
            "/qci/plan/progress",
            lambda r: r.crm.qci.plan.progress(),
            "How many actions are open, in progress, done and overdue",
            response=progress,
            permission=READ,
        ),
        Operation(
            "POST",
            "/qci/plan/generate",
            generate,
            "Turn the weakest areas into actions",
            permission=PLAN,
            body=query_schema(
                "QciGenerateBody",
                period=period(),
                areas=fields.Integer(load_default=3),
                threshold=fields.Float(load_default=60.0),
                owner=fields.String(validate=validate.Length(1, 100)),
            ),
            response=schema_of(Generated),
            description="Picks the `areas` lowest areas scoring below `threshold` (assessment and data) and "
            "adds the rule bank's actions for them; rules still open are `skipped`.",
        ),
        Operation(
            "GET",
            action_path,
            lambda r: r.crm.qci.plan.get(r.params["action_id"]),
            "One action",
            response=action,
            permission=READ,
        ),
        Operation(
            "POST",
            action_path + "/start",
            lambda r: r.crm.qci.plan.start(r.params["action_id"]),
            "Mark an open action in progress",
            response=action,
            permission=PLAN,
        ),
        Operation(
            "POST",
            action_path + "/done",
            lambda r: r.crm.qci.plan.done(r.params["action_id"]),
            "Mark an action done (final)",
            response=action,
            permission=PLAN,
        ),
        Operation(
            "PUT",
            action_path + "/owner",
            lambda r: r.crm.qci.plan.assign(r.params["action_id"], r.body["owner"]),
            "Give an action to a user (null: unassigned)",
            response=action,
            permission=PLAN,
            body=query_schema("QciOwnerBody", owner=fields.String(required=True, allow_none=True)),
        ),
    ]
