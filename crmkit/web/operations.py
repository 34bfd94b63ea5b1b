"""What a route of the HTTP API is: an :class:`Operation` the core and every plugin declare.

An operation names its method and path, the marshmallow schemas of its query, body and
response (the same schemas the services validate with, so the OpenAPI document is generated
from them), the permission it needs (for the documentation; the service checks it), and a
handler ``handler(request) -> result``. The app turns the result into JSON, errors into
``application/problem+json``, and runs the handler as the authenticated user.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from marshmallow import Schema
    from werkzeug.wrappers import Request as WerkzeugRequest

    from crmkit.crm import CRM

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
MAX_ID = 2**63 - 1  # an id path parameter beyond a 64-bit column is no route, not an overflow
_PARAM = re.compile(r"\{([a-z_][a-z0-9_]*)(?::(int|str|path))?\}")


@attrs.frozen
class ApiRequest:
    """What a handler receives: the CRM (acting as the caller), the path parameters, and the validated query and body."""

    crm: CRM
    params: Mapping[str, Any]
    query: Mapping[str, Any]
    body: Any
    http: WerkzeugRequest

    def url_for_next(self, cursor: str | None, name: str = "after") -> str | None:
        """The URL of the next page: this request's URL with ``name=cursor`` (None when there is no next page)."""
        if cursor is None:
            return None
        args = self.http.args.copy()
        args[name] = cursor
        from urllib.parse import urlencode

        return f"{self.http.base_url}?{urlencode(list(args.items(multi=True)))}"


@attrs.frozen
class Page:
    """A list response: ``items`` (already JSON-able) and the keyset cursor of the next page, if any."""

    items: list[Any]
    next_cursor: str | None = None
    cursor_name: str = "after"


@attrs.frozen
class Reply:
    """A handler's answer other than 200 JSON: a status, a JSON body (or raw bytes with a media type), headers."""

    body: Any = None
    status: int = 200
    headers: Mapping[str, str] = attrs.field(factory=dict)
    media_type: str | None = None


@attrs.frozen
class Operation:
    """One route of the API.

    ``path`` is written as in OpenAPI with an optional converter: ``/customers/{customer_id:int}``.
    ``query`` and ``body`` are marshmallow schemas (instances) the request is loaded through
    (unknown fields refused); ``response`` documents the answer (``many`` for a list page).
    An ``atomic`` handler's writes are one transaction, which also stores its answer to an
    ``Idempotency-Key``; a handler committing step by step (a resumable run) sets ``atomic=False``:
    its key is claimed before and answered after, and a crash between leaves it claimed (409) until
    it expires. ``responses`` documents other answers, ``{status: media type}`` (an HTML refusal page,
    a 207 of per-item results); other errors are problem+json. With ``service_validates`` the handler
    gets the parsed JSON and the service loads it through that same schema (so it is validated once).
    ``permission`` is documented (the service enforces it). ``public`` routes need no sign-in
    (tracking pixels, provider callbacks: they authorize themselves). ``etag`` makes a GET answer
    an ``ETag`` and a PATCH/PUT/DELETE honour ``If-Match`` through ``etag_of(request) -> str``.
    """

    method: str
    path: str
    handler: Callable[[ApiRequest], Any]
    summary: str
    tag: str = ""
    query: Schema | None = None
    body: Schema | None = None
    response: Schema | None = None
    many: bool = False
    service_validates: bool = False
    atomic: bool = True
    responses: Mapping[int, str] = attrs.field(factory=dict)
    status: int = 200
    permission: str | None = None
    public: bool = False
    etag_of: Callable[[ApiRequest], str] | None = None
    description: str = ""
    media_type: str = "application/json"
    operation_id: str = ""

    def __attrs_post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if not self.path.startswith("/"):
            raise ValueError(f"path must start with '/': {self.path!r}")

    @property
    def openapi_path(self) -> str:
        """The path as OpenAPI writes it: ``/customers/{customer_id}``."""
        return _PARAM.sub(lambda m: "{" + m.group(1) + "}", self.path)

    @property
    def rule(self) -> str:
        """The path as a Werkzeug rule: ``/customers/<int:customer_id>``."""
        converters = {"int": f"int(min=1, max={MAX_ID})", "str": "string", "path": "path", None: "string"}
        return _PARAM.sub(lambda m: f"<{converters[m.group(2)]}:{m.group(1)}>", self.path)

    @property
    def path_params(self) -> dict[str, str]:
        """``{name: "int" | "str" | "path"}`` for each parameter in the path."""
        return {m.group(1): m.group(2) or "str" for m in _PARAM.finditer(self.path)}

    @property
    def key(self) -> str:
        """A unique, readable operation id: the given one, else ``get_customers_customer_id``."""
        if self.operation_id:
            return self.operation_id
        words = re.sub(r"[^a-z0-9]+", "_", self.openapi_path.lower()).strip("_")
        return f"{self.method.lower()}_{words or 'root'}"
