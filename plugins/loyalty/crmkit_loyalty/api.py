"""Loyalty's HTTP resources: thin doors onto ``crm.loyalty`` (balances, history, grants, redemptions, catalogue).

Every handler calls the service method the CLI calls, acting as the caller; the service checks the
permission and the customer's scope (a customer outside it answers 404). Points travel as the service
gives them: an integer, or a decimal string in a program with fractional points; never a float.
``crmkit.web`` is imported when the app is built, not when the plugin loads (it would slow every CLI command).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from marshmallow import fields, validate

from crmkit import hookimpl
from crmkit_loyalty.permissions import MEMBERS_READ, POINTS_ADJUST, POINTS_GRANT, POINTS_REDEEM

if TYPE_CHECKING:
    from crmkit.crm import CRM
    from crmkit.web import ApiRequest, Operation

#: Points as a caller gives them: a whole number, or a decimal string in a program with fractional points.
POINTS = {"oneOf": [{"type": "integer"}, {"type": "string", "pattern": r"^\d+(\.\d+)?$"}]}


def _program() -> dict[str, fields.Field]:
    """The ``program`` parameter of every member route: a program's code (default: the first program)."""
    return {
        "program": fields.String(
            validate=validate.Length(1, 50), metadata={"description": "a program's code (default: the first created)"}
        )
    }


def _balance(r: ApiRequest) -> dict[str, Any]:
    """What ``crmkit loyalty balance`` shows: membership, points, tier and what the points are worth."""
    customer_id, service = r.params["customer_id"], r.crm.loyalty
    program = service.programs.get(r.query.get("program"))
    member = service.member(customer_id, program=program.code)
    points = service.balance(customer_id, program=program.code)
    return {
        "customer_id": member.customer_id if member else customer_id,
        "program": program.code,
        "member": member is not None,
        "points": points,
        "tier": member.tier if member else None,
        "tier_since": member.tier_since if member else None,
        "value": program.value_of(program.to_units(points)) if points > 0 else None,
    }


@hookimpl
def crmkit_api_operations(crm: CRM) -> list[Operation]:
    """Members' balances, history, statements, grants, deductions, redemptions, and the catalogue."""
    from crmkit.money import Money
    from crmkit.plugin_api import AwareDateTime
    from crmkit.web import Operation, Page, Reply, page_of, query_schema, schema_of
    from crmkit_loyalty.records import LedgerEntry, Program, Redemption, Reward, Statement, Tier

    def ledger_page(r: ApiRequest) -> Page:
        limit = r.query["limit"]
        entries = r.crm.loyalty.history(
            r.params["customer_id"], program=r.query.get("program"), limit=limit, before=r.query.get("before")
        )
        return Page(entries, str(entries[-1].id) if len(entries) == limit else None, "before")  # the last id shown

    def give(r: ApiRequest) -> Reply:
        b = r.body
        return Reply(
            r.crm.loyalty.grant(
                r.params["customer_id"],
                b["points"],
                b["note"],
                program=b.get("program"),
                expires_at=b.get("expires_at"),
            ),
            status=201,
        )

    def take(r: ApiRequest) -> Reply:
        b = r.body
        return Reply(
            r.crm.loyalty.deduct(r.params["customer_id"], b["points"], b["note"], program=b.get("program")), status=201
        )

    def exchange(r: ApiRequest) -> Reply:
        b = r.body
        return Reply(
            r.crm.loyalty.redeem(
                r.params["customer_id"],
                b["reward"],
                quantity=b["quantity"],
                program=b.get("program"),
                note=b.get("note"),
            ),
            status=201,
        )

    entry, redemption = schema_of(LedgerEntry), schema_of(Redemption)
    balance = query_schema(
        "LoyaltyBalance",
        customer_id=fields.Integer(),
        program=fields.String(),
        member=fields.Boolean(),
        points=fields.Raw(metadata=POINTS),
        tier=fields.String(allow_none=True),
        tier_since=fields.DateTime(allow_none=True),
        value=fields.Nested(schema_of(Money), allow_none=True),
    )
    by_program = query_schema("LoyaltyProgramQuery", **_program())
    history = query_schema(
        "LoyaltyHistoryQuery",
        **_program(),
        limit=fields.Integer(load_default=50, validate=validate.Range(1, 1000)),
        before=fields.Integer(
            validate=validate.Range(1), metadata={"description": "the cursor: entries older than this id"}
        ),
    )
    period = query_schema(
        "LoyaltyStatementQuery", **_program(), start=fields.Date(required=True), end=fields.Date(required=True)
    )
    grant = query_schema(
        "LoyaltyGrantBody",
        **_program(),
        points=fields.Raw(required=True, metadata=POINTS),
        note=fields.String(required=True),
        expires_at=AwareDateTime(),
    )
    deduct = query_schema(
        "LoyaltyDeductBody",
        **_program(),
        points=fields.Raw(required=True, metadata=POINTS),
        note=fields.String(required=True),
    )
    redeem = query_schema(
        "LoyaltyRedeemBody",
        **_program(),
        reward=fields.String(required=True),
        quantity=fields.Integer(load_default=1),
        note=fields.String(),
    )
    cancel = query_schema("LoyaltyCancelBody", note=fields.String())
    catalogue = query_schema("LoyaltyRewardQuery", **_program(), include_inactive=fields.Boolean(load_default=False))
    member = "/loyalty/customers/{customer_id:int}"
    return [
        Operation(
            "GET",
            member,
            _balance,
            "A customer's points balance, tier and what the points are worth",
            query=by_program,
            response=balance,
            permission=MEMBERS_READ,
        ),
        Operation(
            "GET",
            member + "/history",
            ledger_page,
            "A customer's ledger entries, newest first",
            query=history,
            response=page_of(entry, "LedgerEntryPage"),
            permission=MEMBERS_READ,
            description="Pages by keyset: follow `next`.",
        ),
        Operation(
            "GET",
            member + "/statement",
            lambda r: r.crm.loyalty.statement(
                r.params["customer_id"], r.query["start"], r.query["end"], program=r.query.get("program")
            ),
            "Points earned, reversed, spent, expired and adjusted between two local dates (both included)",
            query=period,
            response=schema_of(Statement),
            permission=MEMBERS_READ,
        ),
        Operation(
            "POST",
            member + "/grants",
            give,
            "Give a customer points by hand, with a reason",
            body=grant,
            response=entry,
            status=201,
            permission=POINTS_GRANT,
            description="Enrols the customer when not a member yet. Send an `Idempotency-Key` to grant once.",
        ),
        Operation(
            "POST",
            member + "/deductions",
            take,
            "Take a member's points away by hand, with a reason",
            body=deduct,
            response=entry,
            status=201,
            permission=POINTS_ADJUST,
            description="Never below a zero balance. Send an `Idempotency-Key` to deduct once.",
        ),
        Operation(
            "GET",
            member + "/redemptions",
            lambda r: r.crm.loyalty.redemptions(r.params["customer_id"], program=r.query.get("program")),
            "A customer's redemptions, newest first",
            query=by_program,
            response=redemption,
            many=True,
            permission=MEMBERS_READ,
        ),
        Operation(
            "POST",
            member + "/redemptions",
            exchange,
            "Exchange a member's points for a reward",
            body=redeem,
            response=redemption,
            status=201,
            permission=POINTS_REDEEM,
            description="Answers the voucher `code` to hand to the customer; checks balance and stock.",
        ),
        Operation(
            "POST",
            "/loyalty/redemptions/{redemption_id:int}/cancel",
            lambda r: r.crm.loyalty.cancel_redemption(r.params["redemption_id"], note=r.body.get("note")),
            "Cancel a redemption: its points and stock come back",
            body=cancel,
            response=redemption,
            permission=POINTS_REDEEM,
        ),
        Operation(
            "GET",
            "/loyalty/rewards",
            lambda r: r.crm.loyalty.programs.rewards(
                r.query.get("program"), include_inactive=r.query["include_inactive"]
            ),
            "The rewards catalogue of a program, cheapest first",
            query=catalogue,
            response=schema_of(Reward),
            many=True,
            description="Readable by every signed-in user.",
        ),
        Operation(
            "GET",
            "/loyalty/programs",
            lambda r: r.crm.loyalty.programs.list(),
            "Every loyalty program, the default one first",
            response=schema_of(Program),
            many=True,
            description="Readable by every signed-in user.",
        ),
        Operation(
            "GET",
            "/loyalty/tiers",
            lambda r: r.crm.loyalty.programs.tiers(r.query.get("program")),
            "A program's tiers, lowest first",
            query=by_program,
            response=schema_of(Tier),
            many=True,
            description="Readable by every signed-in user.",
        ),
    ]
