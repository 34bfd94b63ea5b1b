"""Assembling the app: the core's operations, every plugin's through ``crmkit_api_operations``, and the meta routes."""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib import resources
from typing import TYPE_CHECKING, Any

import attrs

from crmkit.errors import PluginError
from crmkit.web.app import ApiApp, ApiSettings, Authenticator
from crmkit.web.operations import ApiRequest, Operation, Reply
from crmkit.web.problems import HttpProblem

if TYPE_CHECKING:
    from crmkit.crm import CRM

CORE_TAGS = {
    "customers": "Customers: search, create, update, tags, consent, duplicates, merge, export, erase",
    "interactions": "Interactions across channels and the customer timeline",
    "users": "Users and the caller",
    "teams": "Teams",
    "roles": "Roles and their grants",
    "tokens": "API tokens",
    "audit": "The audit log",
    "webhooks": "Outgoing webhooks",
    "meta": "Health, the OpenAPI document and its docs page",
}


def operations_of(crm: CRM) -> list[Operation]:
    """The core's operations, then every enabled plugin's (each checked to live under ``/<plugin>/``)."""
    from crmkit.web.routes_customers import customer_operations, interaction_operations
    from crmkit.web.routes_identity import identity_operations
    from crmkit.web.routes_webhooks import webhook_operations

    found = [
        *customer_operations(crm),
        *interaction_operations(crm),
        *identity_operations(crm),
        *webhook_operations(crm),
    ]
    seen = {(op.method, op.openapi_path) for op in found}
    for plugin, declared in crm.hooks.api_operations():
        for op in declared:
            if not isinstance(op, Operation):
                raise PluginError(
                    plugin,
                    f"crmkit_api_operations returned {op!r}, not a crmkit.web.Operation",
                    hook="crmkit_api_operations",
                )
            if not (op.path == f"/{plugin}" or op.path.startswith(f"/{plugin}/")):
                raise PluginError(
                    plugin, f"route {op.method} {op.path} must live under /{plugin}/", hook="crmkit_api_operations"
                )
            if (op.method, op.openapi_path) in seen:
                raise PluginError(
                    plugin, f"route {op.method} {op.path} is declared twice", hook="crmkit_api_operations"
                )
            seen.add((op.method, op.openapi_path))
            found.append(op if op.tag else attrs.evolve(op, tag=plugin))
    return found


def _number(value: Any) -> Any:
    """A Decimal a schema declares (a default, a range) as a JSON number."""
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def create_app(
    crm: CRM, *, settings: ApiSettings | None = None, authenticators: Sequence[Authenticator] = ()
) -> ApiApp:
    """The WSGI app of ``crm``: the API, ``/openapi.json``, its docs page at ``/docs``, ``/health`` and the console.

    The web console (``crmkit.console``) is mounted at ``/console``; its session cookie also signs in API calls.

        Build one per process (a CRM holds a connection pool): ``crmkit serve`` does so in each worker.
    """
    from crmkit.console.app import ConsoleApp
    from crmkit.console.sessions import SessionAuthenticator
    from crmkit.web.openapi import build_openapi

    operations = operations_of(crm)
    tags = {
        **CORE_TAGS,
        **{
            info.name: info.plugin.description if info.plugin else info.name
            for info in crm.plugin_info()
            if info.status == "enabled"
        },
    }
    document: dict[str, Any] = {}

    def openapi(r: ApiRequest) -> Reply:
        if not document:
            document.update(build_openapi(operations + meta, tags=tags))
        return Reply(json.dumps(document, ensure_ascii=False, default=_number).encode(), media_type="application/json")

    def docs(r: ApiRequest) -> Reply:
        page = resources.files("crmkit.web").joinpath("static", r.params.get("asset") or "docs.html")
        if not page.is_file():
            raise HttpProblem(404, f"no file {r.params.get('asset')}")
        media = (
            "text/html; charset=utf-8"
            if page.name.endswith(".html")
            else ("text/javascript; charset=utf-8" if page.name.endswith(".js") else "text/css; charset=utf-8")
        )
        return Reply(page.read_bytes(), media_type=media, headers={"Cache-Control": "max-age=300"})

    meta = [
        Operation("GET", "/health", lambda r: {"status": "ok"}, "Is the server up", "meta", public=True),
        Operation("GET", "/openapi.json", openapi, "This API's OpenAPI 3.1 document", "meta", public=True),
        Operation("GET", "/docs", docs, "Browse the API", "meta", public=True, media_type="text/html"),
        Operation(
            "GET",
            "/docs/{asset:str}",
            docs,
            "The docs page's script and style",
            "meta",
            public=True,
            media_type="text/plain",
        ),
    ]
    return ApiApp(
        crm,
        operations + meta,
        settings or ApiSettings.from_crm(crm),
        [*authenticators, SessionAuthenticator()],
        mounts={"/console": ConsoleApp(crm)},
    )
