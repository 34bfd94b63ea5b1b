"""The one WSGI application: the core's routes and every plugin's, the API's conventions, no business rules.

Each request: a request id, the body limit, CORS, authentication (a bearer token, or whatever
an added :class:`Authenticator` accepts, such as the console's session cookie), the rate limit,
then the operation's handler run as the caller through the same services the CLI uses.
Errors answer as ``application/problem+json``; nothing but the request id leaks from a 500.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

import attrs
import sqlalchemy as sa
from marshmallow import ValidationError as SchemaError
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.wrappers import Request, Response

from crmkit.core import tables as t
from crmkit.core.access import SYSTEM, Principal
from crmkit.web.operations import ApiRequest, Operation, Page, Reply
from crmkit.web.problems import PROBLEM_JSON, HttpProblem, problem_body, problem_for
from crmkit.web.url_maps import url_map

if TYPE_CHECKING:
    from crmkit.crm import CRM

log = logging.getLogger("crmkit.web")
StartResponse = Callable[..., Any]
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
#: A Content-Length as RFC 9110 spells it: ASCII digits only (``str.isdigit`` also takes "²" and "١").
_LENGTH = re.compile(r"[0-9]{1,18}")


class Authenticator(Protocol):
    """Finds the principal of a request by other means than a bearer token (the console's session cookie).

    Returns None when the request does not carry its credential; raises
    ``AuthenticationFailed`` when it carries a bad one.
    """

    def __call__(self, crm: CRM, request: Request) -> Principal | None: ...


@attrs.frozen
class ApiSettings:
    """Limits and policies of one app; ``from_crm`` reads them from the business settings (``api.*``)."""

    max_body: int = 1 << 20
    rate_limit: int = 1200  # requests per minute per token (or signed-in user), per process
    cors_origins: tuple[str, ...] = ()
    idempotency_hours: int = 24

    @classmethod
    def from_crm(cls, crm: CRM) -> ApiSettings:
        """The settings stored with ``crmkit settings`` / ``crm.set_setting``, else the defaults."""
        s, default = crm.settings, cls()
        return cls(
            max_body=int(s.get("api.max_body", default.max_body)),
            rate_limit=int(s.get("api.rate_limit", default.rate_limit)),
            cors_origins=tuple(s.get("api.cors_origins") or ()),
            idempotency_hours=int(s.get("api.idempotency_hours", default.idempotency_hours)),
        )


class RateLimiter:
    """A token bucket per caller: ``rate`` requests a minute, bursts up to ``rate``; thread-safe, per process."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, caller: str) -> float:
        """0 when the request may go on, else the seconds to wait before the next one is allowed."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic()
        per_second = self.rate / 60
        with self._lock:
            tokens, at = self._buckets.get(caller, (float(self.rate), now))
            tokens = min(float(self.rate), tokens + (now - at) * per_second)
            if tokens < 1:
                self._buckets[caller] = (tokens, now)
                return (1 - tokens) / per_second
            self._buckets[caller] = (tokens - 1, now)
            if len(self._buckets) > 100_000:  # forget idle callers rather than grow without end
                self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 120}
            return 0.0


class ApiApp:
    """The WSGI app of a CRM: ``create_app(crm)`` builds it; call it as any WSGI server does."""

    def __init__(
        self,
        crm: CRM,
        operations: Sequence[Operation],
        settings: ApiSettings,
        authenticators: Sequence[Authenticator] = (),
        mounts: Mapping[str, Any] | None = None,
    ) -> None:
        self.crm = crm
        self.mounts = dict(mounts or {})  # path prefix → a WSGI app serving it (the console at /console)
        self.operations = list(operations)
        self.settings = settings
        self.authenticators = list(authenticators)
        self.limiter = RateLimiter(settings.rate_limit)
        self._by_endpoint = {op.key: op for op in self.operations}
        self.url_map = url_map(tuple((op.rule, op.key, (op.method,)) for op in self.operations))

    # -- WSGI ------------------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        for prefix, mounted in self.mounts.items():
            if path == prefix or path.startswith(prefix + "/"):
                return mounted(environ, start_response)  # type: ignore[no-any-return]
        request = Request(environ)
        request.max_content_length = self.settings.max_body
        given = request.headers.get("X-Request-Id", "")
        request_id = given if _REQUEST_ID.match(given) else secrets.token_hex(8)
        started = time.perf_counter()
        try:
            response = self._dispatch(request, request_id)
        except Exception as exc:
            problem = problem_for(exc)
            if problem is None:
                log.exception("request %s %s %s failed", request_id, request.method, request.path)
                problem = HttpProblem(500, "unexpected error; quote the request id when reporting it")
            response = self._problem(problem, request_id, request.path)
        response.headers["X-Request-Id"] = request_id
        self._cors(request, response)
        log.info(
            "%s %s %s %d %.1fms",
            request_id,
            request.method,
            environ.get("crmkit.route", "-"),
            response.status_code,
            (time.perf_counter() - started) * 1000,
        )  # the route, never a path's token
        return response(environ, start_response)

    def _dispatch(self, request: Request, request_id: str) -> Response:
        adapter = self.url_map.bind_to_environ(request.environ)
        if request.method == "OPTIONS":
            return self._preflight(request, adapter)
        try:
            endpoint, params = adapter.match(method="GET" if request.method == "HEAD" else request.method)
        except MethodNotAllowed as exc:
            allowed = ", ".join(sorted(set(exc.valid_methods or ()) | {"OPTIONS"}))
            raise HttpProblem(
                405, f"{request.method} is not allowed here (allowed: {allowed})", headers={"Allow": allowed}
            ) from None
        except HTTPException as exc:
            raise HttpProblem(exc.code or 404, f"no route {request.path}") from None
        operation = self._by_endpoint[str(endpoint)]
        request.environ["crmkit.route"] = operation.openapi_path
        length = request.headers.get("Content-Length")
        if length is not None and not _LENGTH.fullmatch(length):  # before int(): no sign, space, "²" or 5,000 digits
            raise HttpProblem(400, "Content-Length must be a whole number of bytes (digits 0-9 only)")
        if length is not None and int(length) > self.settings.max_body:
            raise HttpProblem(413, f"the body must be at most {self.settings.max_body} bytes")
        if length is None and request.environ.get("wsgi.input_terminated"):
            self._read_streamed(request)
        if (
            operation.method == "GET" and not operation.public
        ):  # read-only: the token check and the read share a connection
            with self.crm.reading_together():
                return self._authorized(operation, request, params, request_id)
        return self._authorized(operation, request, params, request_id)

    def _read_streamed(self, request: Request) -> None:
        """Read a body sent without a length (``Transfer-Encoding: chunked``) now, refusing it past the limit.

        Werkzeug would cut such a body at ``max_content_length`` without a word (a JSON document silently
        truncated); read here to one byte past the limit, it is refused whole or kept whole (cached for the handler)."""
        request.max_content_length = self.settings.max_body + 1
        try:
            data = request.get_data(cache=True)
        except HTTPException:
            raise
        except Exception as exc:  # noqa: BLE001 - the server's own refusal of malformed chunks (gunicorn's InvalidChunkSize)
            raise HttpProblem(400, f"the chunked body is malformed ({type(exc).__name__})") from None
        if len(data) > self.settings.max_body:
            raise HttpProblem(413, f"the body must be at most {self.settings.max_body} bytes")

    def _authorized(self, operation: Operation, request: Request, params: dict[str, Any], request_id: str) -> Response:
        """Run ``operation`` as the request's principal, within the caller's rate limit."""
        principal = SYSTEM if operation.public else self._authenticate(request)
        if (
            not operation.public
        ):  # public routes (pixels, provider callbacks) are many, signed, and the proxy's to throttle
            wait = self.limiter.take(
                f"token:{principal.token_id}" if principal.token_id else f"user:{principal.user_id}"
            )
            if wait:
                raise HttpProblem(429, "too many requests; slow down", headers={"Retry-After": str(int(wait) + 1)})
        with self.crm.access.acting(principal):
            return self._run(operation, request, params, principal, request_id)

    def _authenticate(self, request: Request) -> Principal:
        header = request.headers.get("Authorization")
        if header:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise HttpProblem(
                    401, "use Authorization: Bearer <token>", headers={"WWW-Authenticate": 'Bearer realm="crmkit"'}
                )
            return self.crm.users.token_principal(token.strip())
        for authenticator in self.authenticators:
            principal = authenticator(self.crm, request)
            if principal is not None:
                return principal
        raise HttpProblem(
            401, "sign in: send Authorization: Bearer <token>", headers={"WWW-Authenticate": 'Bearer realm="crmkit"'}
        )

    # -- one operation ---------------------------------------------------------------------------------

    def _run(
        self, operation: Operation, request: Request, params: dict[str, Any], principal: Principal, request_id: str
    ) -> Response:
        query = _load(operation.query, _query_dict(request, operation.query), "query") if operation.query else {}
        raw_body = request.get_data(cache=True) if operation.method in ("POST", "PUT", "PATCH") else b""
        body: Any = None
        if operation.body is not None:
            body = _json(raw_body, request)
            if not operation.service_validates:
                body = _load(operation.body, body, "body")
            elif not isinstance(body, Mapping):
                raise HttpProblem(422, "the body must be a JSON object", errors={"body": ["must be an object"]})
        elif raw_body.strip() and operation.media_type == "application/json" and not operation.public:
            raise HttpProblem(422, "this operation takes no body", errors={"body": ["must be empty"]})
        api_request = ApiRequest(self.crm, params, query, body, request)
        key = request.headers.get("Idempotency-Key")
        if operation.method == "POST" and key and principal.user_id is not None:
            return self._idempotent(operation, api_request, principal, key, raw_body)
        if operation.etag_of is not None and operation.method in ("PUT", "PATCH", "DELETE"):
            expected = request.headers.get("If-Match")
            if expected:
                with self.crm.transaction():  # the check and the change see the same row
                    current = operation.etag_of(api_request)
                    if expected.strip() != "*" and current not in _etags(expected):
                        raise HttpProblem(
                            412, "the record changed since you read it: GET it again", headers={"ETag": current}
                        )
                    return self._respond(operation, api_request, operation.handler(api_request))
        return self._respond(operation, api_request, operation.handler(api_request))

    def _respond(self, operation: Operation, request: ApiRequest, result: Any) -> Response:
        if isinstance(result, Response):
            return result
        status, headers, media_type = operation.status, {}, operation.media_type
        if isinstance(result, Reply):
            status, headers, media_type = result.status, dict(result.headers), result.media_type or media_type
            result = result.body
        if isinstance(result, Page):
            link = request.url_for_next(result.next_cursor, result.cursor_name)
            result = {"items": result.items, "next_cursor": result.next_cursor, "next": link}
            if link:
                headers["Link"] = f'<{link}>; rel="next"'
        if status == 204:
            return Response(status=204, headers=headers)
        if isinstance(result, bytes):
            data = result
        else:
            data = dumps(result)
            if operation.method == "GET" and media_type == "application/json":
                headers.setdefault("ETag", etag(data))
        return Response(data, status=status, headers=headers, content_type=media_type)  # HEAD: Werkzeug drops the body

    def _idempotent(
        self, operation: Operation, request: ApiRequest, principal: Principal, key: str, raw_body: bytes
    ) -> Response:
        """A POST with ``Idempotency-Key``: the first answer is stored (with the change itself when the handler is
        atomic) and every repeat with the same request answers it; the same key with another request is refused."""
        if not 1 <= len(key) <= 200:
            raise HttpProblem(422, "Idempotency-Key must be 1–200 characters", errors={"Idempotency-Key": ["too long"]})
        fingerprint = hashlib.sha256(
            b"\0".join([operation.method.encode(), request.http.path.encode(), request.http.query_string, raw_body])
        ).hexdigest()
        k = t.idempotency_keys.c
        where = sa.and_(k.user_id == principal.user_id, k.key == key)
        claim = {
            "user_id": principal.user_id,
            "key": key,
            "fingerprint": fingerprint,
            "status": 0,
            "headers": {},
            "body": b"",
            "created_at": self.crm.now(),
        }
        stored = self._stored(where)
        if stored is None:
            try:
                if operation.atomic:
                    with self.crm.transaction() as session:
                        response = self._respond(operation, request, operation.handler(request))
                        if response.status_code < 400:
                            session.connection().execute(
                                t.idempotency_keys.insert().values(
                                    {
                                        **claim,
                                        "status": response.status_code,
                                        "body": response.get_data(),
                                        "headers": _kept_headers(response),
                                    }
                                )
                            )
                    return response
                with self.crm.transaction() as session:  # claimed: a concurrent repeat now waits for the answer
                    session.connection().execute(t.idempotency_keys.insert().values(claim))
            except sa.exc.IntegrityError:
                stored = self._stored(where)  # the same key won a race meanwhile: answer as it did
                if stored is None:
                    raise
            else:
                return self._answer_claimed(operation, request, where)
        if stored.fingerprint != fingerprint:
            raise HttpProblem(
                422,
                "this Idempotency-Key was used with another request; use a new key",
                errors={"Idempotency-Key": ["reused with a different request"]},
            )
        if stored.status == 0:
            raise HttpProblem(
                409, "a request with this Idempotency-Key is still running; retry later", headers={"Retry-After": "5"}
            )
        return Response(stored.body, status=stored.status, headers={**stored.headers, "Idempotent-Replayed": "true"})

    def _answer_claimed(self, operation: Operation, request: ApiRequest, where: sa.ColumnElement[bool]) -> Response:
        """Run a non-atomic handler whose key is claimed, then store its answer (or free the key if it failed)."""
        try:
            response = self._respond(operation, request, operation.handler(request))
        except BaseException:
            with self.crm.transaction() as session:
                session.connection().execute(t.idempotency_keys.delete().where(where))
            raise
        with self.crm.transaction() as session:
            session.connection().execute(
                t.idempotency_keys.update()
                .where(where)
                .values(status=response.status_code, body=response.get_data(), headers=_kept_headers(response))
            )
        return response

    def _stored(self, where: sa.ColumnElement[bool]) -> Any:
        """The stored answer to a key (status 0: claimed, still running); an expired one is forgotten here."""
        with self.crm.reading() as conn:
            row = conn.execute(sa.select(t.idempotency_keys).where(where)).first()
        if row is not None and self.crm.now() - row.created_at > timedelta(hours=self.settings.idempotency_hours):
            with self.crm.transaction() as session:
                session.connection().execute(t.idempotency_keys.delete().where(where))
            return None
        return row

    # -- CORS and problems -------------------------------------------------------------------------------

    def _preflight(self, request: Request, adapter: Any) -> Response:
        try:
            methods = adapter.allowed_methods()
        except HTTPException:
            methods = []
        if not methods:
            raise HttpProblem(404, f"no route {request.path}")
        allowed = ", ".join(sorted({*methods, "OPTIONS"}))
        response = Response(status=204, headers={"Allow": allowed})
        if self._origin_allowed(request):
            response.headers["Access-Control-Allow-Methods"] = allowed
            response.headers["Access-Control-Allow-Headers"] = (
                "Authorization, Content-Type, If-Match, Idempotency-Key, X-Request-Id"
            )
            response.headers["Access-Control-Max-Age"] = "600"
        return response

    def _origin_allowed(self, request: Request) -> bool:
        origin = request.headers.get("Origin")
        return bool(origin) and (origin in self.settings.cors_origins or "*" in self.settings.cors_origins)

    def _cors(self, request: Request, response: Response) -> None:
        if self._origin_allowed(request):
            response.headers["Access-Control-Allow-Origin"] = request.headers["Origin"]
            response.headers["Access-Control-Expose-Headers"] = "ETag, Link, Location, Retry-After, X-Request-Id"
            response.headers["Vary"] = "Origin"

    @staticmethod
    def _problem(problem: HttpProblem, request_id: str, path: str) -> Response:
        body = dumps(problem_body(problem, request_id, path))
        return Response(body, status=problem.status, headers=problem.headers, content_type=PROBLEM_JSON)


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _plain(value: Any) -> Any:
    """What ``json`` cannot encode by itself, as ``to_jsonable`` would give it (called only for those values)."""
    names = _FIELD_NAMES.get(type(value))
    if names is not None:
        return {name: getattr(value, name) for name in names}
    if attrs.has(type(value)):  # an attrs object's fields, one level down (json recurses), names read once per class
        names = _FIELD_NAMES[type(value)] = tuple(field.name for field in attrs.fields(type(value)))
        return {name: getattr(value, name) for name in names}
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    if isinstance(value, Mapping):
        return dict(value)
    return str(value)


def dumps(value: Any) -> bytes:
    """JSON of a handler's result, the same as ``to_jsonable`` then ``json.dumps``, at the C encoder's speed."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_plain).encode()


def etag(data: bytes) -> str:
    """A strong ETag for a representation: a hash of its bytes."""
    return '"' + hashlib.sha256(data).hexdigest()[:32] + '"'


def etag_of_json(value: Any) -> str:
    """The ETag a GET of ``value`` answers with (handlers' ``etag_of`` use it on the current record)."""
    return etag(dumps(value))


def _kept_headers(response: Response) -> dict[str, str]:
    return {h: v for h, v in response.headers.items() if h in ("Content-Type", "Location")}


def _etags(header: str) -> set[str]:
    return {part.strip().removeprefix("W/") for part in header.split(",") if part.strip()}


def _query_dict(request: Request, schema: Any) -> dict[str, Any]:
    """Query arguments: a list for the schema's list fields (``?channel=sms&channel=zalo``), else the one value."""
    from marshmallow import fields

    result: dict[str, Any] = {}
    for name in request.args:
        values = request.args.getlist(name)
        many = isinstance(schema.fields.get(name), fields.List)
        result[name] = values if many or len(values) > 1 else values[0]
    return result


def _json(raw: bytes, request: Request) -> Any:
    if not raw.strip():
        return {}
    if request.mimetype not in ("application/json", "") and not request.mimetype.endswith("+json"):
        raise HttpProblem(415, "send the body as application/json")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise HttpProblem(400, f"the body is not valid JSON: {exc}") from None


def _load(schema: Any, data: Any, where: str) -> Any:
    if not isinstance(data, Mapping) and not getattr(schema, "many", False):
        raise HttpProblem(422, f"the {where} must be a JSON object", errors={where: ["must be an object"]})
    try:
        return schema.load(data)
    except SchemaError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {where: exc.messages}
        from crmkit.errors import ValidationError

        raise ValidationError(messages) from None
