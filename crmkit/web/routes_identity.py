"""The core's identity resources: the caller, users, teams, roles, API tokens and the audit log."""

from __future__ import annotations

from typing import Any

from marshmallow import fields, validate

from crmkit.core.audit import AuditEntry
from crmkit.core.models import ApiToken, Role, Team, User
from crmkit.core.permissions import SCOPES
from crmkit.core.schemas import AwareDateTime
from crmkit.crm import CRM
from crmkit.locales import LOCALES
from crmkit.web.operations import ApiRequest, Operation, Page, Reply
from crmkit.web.schemas import page_of, paging, query_schema, schema_of

USER, TEAM, ROLE, TOKEN = schema_of(User), schema_of(Team), schema_of(Role), schema_of(ApiToken)


def _user_fields(*, creating: bool) -> dict[str, fields.Field]:
    optional = {"allow_none": True}
    found: dict[str, fields.Field] = {
        "display_name": fields.String(validate=validate.Length(1, 200)),
        "email": fields.String(**optional),
        "phone": fields.String(**optional),
        "locale": fields.String(validate=validate.OneOf(LOCALES), **optional),
        "timezone": fields.String(**optional),
    }
    if creating:
        found.update(
            username=fields.String(required=True),
            password=fields.String(),
            teams=fields.List(fields.String()),
            roles=fields.List(fields.String()),
        )
    return found


def _me(r: ApiRequest) -> dict[str, Any]:
    principal = r.crm.access.principal
    return {
        "username": principal.username,
        "permissions": dict(sorted(principal.grants.items())),
        "token_id": principal.token_id,
    }


def identity_operations(crm: CRM) -> list[Operation]:
    """``/me``, users, teams, roles, tokens and the audit log (administration needs ``users.admin``)."""
    me = query_schema(
        "Me",
        username=fields.String(),
        permissions=fields.Dict(keys=fields.String(), values=fields.String()),
        token_id=fields.Integer(allow_none=True),
    )
    user_query = query_schema("UserListQuery", active=fields.Boolean(), team=fields.String())
    token_body = query_schema(
        "TokenBody",
        username=fields.String(required=True),
        name=fields.String(required=True, validate=validate.Length(1, 100)),
        permissions=fields.List(fields.String()),
        expires_at=AwareDateTime(),
    )
    team_body = query_schema(
        "TeamBody",
        name=fields.String(required=True, validate=validate.Length(1, 100)),
        parent=fields.String(allow_none=True),
    )
    member_body = query_schema("MemberBody", username=fields.String(required=True))
    role_body = query_schema(
        "RoleBody",
        name=fields.String(required=True, validate=validate.Length(1, 100)),
        description=fields.String(),
        grants=fields.Dict(keys=fields.String(), values=fields.String(validate=validate.OneOf(SCOPES))),
    )
    grant_body = query_schema("GrantBody", scope=fields.String(load_default="all", validate=validate.OneOf(SCOPES)))
    assign_body = query_schema("AssignBody", role=fields.String(required=True))
    audit_query = query_schema(
        "AuditQuery", customer_id=fields.Integer(), entity=fields.String(), actor=fields.String(), **paging(default=50)
    )

    def add_user(r: ApiRequest) -> Reply:
        body = dict(r.body)
        user = r.crm.users.add(body.pop("username"), **body)
        return Reply(user, status=201, headers={"Location": f"/users/{user.username}"})

    def add_token(r: ApiRequest) -> Reply:
        body = dict(r.body)
        token = r.crm.users.create_token(body.pop("username"), body.pop("name"), **body)
        return Reply(token, status=201)

    def add_member(r: ApiRequest) -> Reply:
        r.crm.teams.add_member(r.params["team"], r.body["username"])
        return Reply(r.crm.teams.get(r.params["team"]))

    def assign(r: ApiRequest) -> Reply:
        r.crm.roles.assign(r.params["username"], r.body["role"])
        return Reply(r.crm.users.get(r.params["username"]))

    def audit(r: ApiRequest) -> Page:
        q = r.query
        page = r.crm.audit.entries(
            customer_id=q.get("customer_id"),
            entity=q.get("entity"),
            actor=q.get("actor"),
            after=q.get("after"),
            limit=q["limit"],
        )
        return Page(list(page.items), page.next_cursor)

    user = "/users/{username:str}"
    return [
        Operation("GET", "/me", _me, "Who the caller is and what they may do", "users", response=me),
        Operation(
            "GET",
            "/users",
            lambda r: r.crm.users.list(active=r.query.get("active"), team=r.query.get("team")),
            "List users",
            "users",
            query=user_query,
            response=USER,
            many=True,
            permission="users.admin",
        ),
        Operation(
            "POST",
            "/users",
            add_user,
            "Create a user",
            "users",
            body=query_schema("UserBody", **_user_fields(creating=True)),
            response=USER,
            status=201,
            permission="users.admin",
        ),
        Operation(
            "GET",
            user,
            lambda r: r.crm.users.get(r.params["username"]),
            "Read a user",
            "users",
            response=USER,
            permission="users.admin",
        ),
        Operation(
            "PATCH",
            user,
            lambda r: r.crm.users.update(r.params["username"], **r.body),
            "Update a user",
            "users",
            body=query_schema("UserUpdateBody", **_user_fields(creating=False)),
            response=USER,
            permission="users.admin",
        ),
        Operation(
            "POST",
            user + "/roles",
            assign,
            "Give a user a role",
            "users",
            body=assign_body,
            response=USER,
            permission="users.admin",
        ),
        Operation(
            "GET",
            "/teams",
            lambda r: r.crm.teams.list(),
            "List teams",
            "teams",
            response=TEAM,
            many=True,
            permission="users.admin",
        ),
        Operation(
            "POST",
            "/teams",
            lambda r: Reply(r.crm.teams.add(r.body["name"], parent=r.body.get("parent")), status=201),
            "Create a team",
            "teams",
            body=team_body,
            response=TEAM,
            status=201,
            permission="users.admin",
        ),
        Operation(
            "POST",
            "/teams/{team:str}/members",
            add_member,
            "Add a member to a team",
            "teams",
            body=member_body,
            response=TEAM,
            permission="users.admin",
        ),
        Operation(
            "GET",
            "/roles",
            lambda r: r.crm.roles.list(),
            "List roles and their grants",
            "roles",
            response=ROLE,
            many=True,
            permission="users.admin",
        ),
        Operation(
            "POST",
            "/roles",
            lambda r: Reply(
                r.crm.roles.add(r.body["name"], r.body.get("description", ""), r.body.get("grants")), status=201
            ),
            "Create a role",
            "roles",
            body=role_body,
            response=ROLE,
            status=201,
            permission="users.admin",
        ),
        Operation(
            "PUT",
            "/roles/{role:str}/grants/{permission:str}",
            lambda r: r.crm.roles.grant(r.params["role"], r.params["permission"], r.body["scope"]),
            "Grant a permission to a role with a scope",
            "roles",
            body=grant_body,
            response=ROLE,
            permission="users.admin",
        ),
        Operation(
            "DELETE",
            "/roles/{role:str}/grants/{permission:str}",
            lambda r: r.crm.roles.revoke(r.params["role"], r.params["permission"]),
            "Take a permission away from a role",
            "roles",
            response=ROLE,
            permission="users.admin",
        ),
        Operation(
            "GET",
            "/tokens",
            lambda r: r.crm.users.tokens(r.query.get("username")),
            "List API tokens",
            "tokens",
            query=query_schema("TokenListQuery", username=fields.String()),
            response=TOKEN,
            many=True,
            permission="users.admin",
        ),
        Operation(
            "POST",
            "/tokens",
            add_token,
            "Create an API token (its secret is shown this once)",
            "tokens",
            body=token_body,
            response=TOKEN,
            status=201,
            permission="users.admin",
        ),
        Operation(
            "DELETE",
            "/tokens/{token_id:int}",
            lambda r: Reply(status=204, body=r.crm.users.revoke_token(r.params["token_id"])),
            "Revoke a token",
            "tokens",
            status=204,
            permission="users.admin",
        ),
        Operation(
            "GET",
            "/audit",
            audit,
            "The audit log, newest first",
            "audit",
            query=audit_query,
            response=page_of(schema_of(AuditEntry), "AuditPage"),
            permission="audit.read",
        ),
    ]
