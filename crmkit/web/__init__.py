"""The HTTP API: one WSGI app holding the core's routes and every plugin's (``crmkit serve`` runs it).

Plugins add routes by returning :class:`Operation` objects from the ``crmkit_api_operations``
hook; an embedding application mounts :func:`create_app`'s result under any prefix. Declaring
operations is cheap (no web server code is imported until an app is built).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from crmkit.web.operations import ApiRequest, Operation, Page, Reply
from crmkit.web.problems import HttpProblem
from crmkit.web.schemas import page_of, paging, query_schema, schema_of

if TYPE_CHECKING:
    from crmkit.web.app import ApiApp, ApiSettings, Authenticator, etag_of_json
    from crmkit.web.assemble import create_app, operations_of

__all__ = [
    "ApiApp",
    "ApiRequest",
    "ApiSettings",
    "Authenticator",
    "HttpProblem",
    "Operation",
    "Page",
    "Reply",
    "create_app",
    "etag_of_json",
    "operations_of",
    "page_of",
    "paging",
    "query_schema",
    "schema_of",
]

_LAZY = {
    "ApiApp": "crmkit.web.app",
    "ApiSettings": "crmkit.web.app",
    "Authenticator": "crmkit.web.app",
    "etag_of_json": "crmkit.web.app",
    "create_app": "crmkit.web.assemble",
    "operations_of": "crmkit.web.assemble",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'crmkit.web' has no attribute {name!r}")
