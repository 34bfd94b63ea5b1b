"""The tracking server (``crmkit campaigns serve``): a small WSGI app over ``crm.campaigns.tracking``.

=========================  ==================================================================
``GET /o/<token>.gif``     open pixel: records the first open, returns a 1×1 transparent GIF
``GET /c/<token>?u=URL``   tracked link: records the click, redirects (302) to URL — only to the
                           URL the token was signed for, so it is no open redirect
``GET /u/<token>``         unsubscribe page: a button that POSTs back (link scanners only GET)
``POST /u/<token>``        unsubscribe (also RFC 8058 one-click): withdraws the channel's consent
``POST /events``           provider webhooks (``Authorization: Bearer <crmkit campaigns webhook-token>``):
                           a JSON object or list of ``{"event": "delivered" | "bounced" | "opened" |
                           "clicked" | "replied", "provider_message_id" | "message_id" |
                           "idempotency_key": …, "reason", "permanent", "text", "at"}``
``GET /health``            ``ok``
=========================  ==================================================================

The routes act as the system (no user signs in to a pixel): each request is authorized by its
signed token, or by the webhook token for ``/events``.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Callable, Iterable
from datetime import datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from socketserver import ThreadingMixIn

import sqlalchemy as sa

from crmkit.core.access import SYSTEM
from crmkit.core.schemas import aware_utc
from crmkit.errors import CRMError, NotFound, ValidationError
from crmkit_campaigns import models as m
from crmkit_campaigns.signing import MAX_ID, InvalidToken

if TYPE_CHECKING:
    from crmkit.crm import CRM

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
WEBHOOK_EVENTS = {"delivered": "delivered", "bounced": "bounced", "opened": "opened", "clicked": "clicked",
                  "replied": "responded", "responded": "responded"}
MAX_BODY = 1 << 20
MAX_DEPTH = 16
_KEY = re.compile(r"crmkit-[1-9][0-9]{0,18}-([1-9][0-9]{0,18})")  # canonical, ASCII, bounded: int() cannot fail
_URL_SAFE = "!#$%&'()*+,/:;=?@[]~"  # a header carries Latin-1 only: other characters of a signed URL are %-encoded
StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def _page(title: str, body: str) -> bytes:
    return (f'<!doctype html><html lang="vi"><head><meta charset="utf-8"><title>{html.escape(title)}</title></head>'
            f'<body style="font-family:sans-serif;max-width:32em;margin:3em auto">{body}</body></html>').encode()


class TrackingApp:
    """The WSGI application; call it with an environ as any WSGI server does."""

    def __init__(self, crm: CRM) -> None:
        self._crm = crm
        self._service = crm.campaigns

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET").upper()
        path = environ.get("PATH_INFO", "") or "/"
        try:
            with self._crm.access.acting(SYSTEM):  # its callers are readers and providers, not users
                status, headers, body = self._route(method, path, environ)
        except Exception:  # noqa: BLE001 - a tracking hiccup answers 500, the provider retries
            status, headers, body = 500, [("Content-Type", "text/plain")], b"internal error\n"
        start_response(f"{status} {HTTPStatus(status).phrase}", [*headers, ("Content-Length", str(len(body)))])
        return [body] if method != "HEAD" else [b""]

    def _route(self, method: str, path: str, environ: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
        parts = [p for p in path.split("/") if p]
        if parts == ["health"]:
            return 200, [("Content-Type", "text/plain")], b"ok\n"
        if len(parts) == 2 and parts[0] == "o" and parts[1].endswith(".gif") and method in ("GET", "HEAD"):
            return self._open(parts[1][:-4])
        if len(parts) == 2 and parts[0] == "c" and method in ("GET", "HEAD"):
            return self._click(parts[1], environ)
        if len(parts) == 2 and parts[0] == "u":
            if method == "POST":
                return self._unsubscribe(parts[1])
            if method in ("GET", "HEAD"):
                return self._unsubscribe_form(parts[1])
        if parts == ["events"] and method == "POST":
            return self._events(environ)
        return 404, [("Content-Type", "text/plain")], b"not found\n"

    # -- the routes ---------------------------------------------------------------------------------

    def _open(self, token: str) -> tuple[int, list[tuple[str, str]], bytes]:
        headers = [("Content-Type", "image/gif"), ("Cache-Control", "no-store, private")]
        try:
            self._record(self._service.signer().verify("open", token), "opened")
        except (InvalidToken, CRMError):
            pass  # a pixel always answers with the pixel: nothing to learn from it
        return 200, headers, PIXEL

    def _click(self, token: str, environ: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
        target = (parse_qs(environ.get("QUERY_STRING", "")).get("u") or [""])[0]
        try:
            message_id = self._service.signer().verify("click", token, target)
        except InvalidToken:
            return 400, [("Content-Type", "text/plain; charset=utf-8")], b"invalid or altered link\n"
        try:
            self._record(message_id, "clicked", {"url": target})
        except CRMError:
            pass  # the link still works for the reader (e.g. after an erasure)
        return 302, [("Location", quote(target, safe=_URL_SAFE)), ("Cache-Control", "no-store")], b""

    def _unsubscribe_form(self, token: str) -> tuple[int, list[tuple[str, str]], bytes]:
        try:
            self._service.signer().verify("unsubscribe", token)
        except InvalidToken:
            return 400, [("Content-Type", "text/html; charset=utf-8")], _page("Liên kết không hợp lệ", "<p>Invalid link.</p>")
        form = (f'<h1>Hủy nhận tin / Unsubscribe</h1><form method="post" action="{html.escape(token)}">'
                f'<button type="submit">Hủy nhận tin / Unsubscribe</button></form>')
        return 200, [("Content-Type", "text/html; charset=utf-8")], _page("Hủy nhận tin", form)

    def _unsubscribe(self, token: str) -> tuple[int, list[tuple[str, str]], bytes]:
        try:
            message_id = self._service.signer().verify("unsubscribe", token)
            self._record(message_id, "unsubscribed")
        except (InvalidToken, NotFound):
            return 400, [("Content-Type", "text/html; charset=utf-8")], _page("Liên kết không hợp lệ", "<p>Invalid link.</p>")
        done = "<h1>Đã hủy nhận tin</h1><p>Bạn sẽ không nhận tin nhắn này nữa. / You have been unsubscribed.</p>"
        return 200, [("Content-Type", "text/html; charset=utf-8")], _page("Đã hủy nhận tin", done)

    def _events(self, environ: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
        auth = environ.get("HTTP_AUTHORIZATION", "")
        if not auth.startswith("Bearer ") or not self._service.signer().check_webhook(auth[7:].strip()):
            return 401, [("Content-Type", "application/json"), ("WWW-Authenticate", "Bearer")], b'{"error": "unauthorized"}'
        length_text = str(environ.get("CONTENT_LENGTH") or "0").strip()
        if not re.fullmatch(r"[0-9]{1,9}", length_text) or int(length_text) > MAX_BODY:
            return _json(400, {"error": f"Content-Length must be a number of bytes from 0 to {MAX_BODY}"})
        try:
            payload = json.loads(environ["wsgi.input"].read(int(length_text)) or b"null", parse_float=_finite,
                                 parse_constant=_finite)
        except (ValueError, RecursionError) as exc:  # a 5,000-digit number is a ValueError; deep nesting recurses
            return _json(400, {"error": f"bad JSON: {str(exc)[:200]}"})
        if _depth(payload) > MAX_DEPTH:
            return _json(400, {"error": f"bad JSON: nested deeper than {MAX_DEPTH} levels"})
        items = payload if isinstance(payload, list) else [payload]
        results = []
        for n, item in enumerate(items):
            try:
                results.append({"index": n, "recorded": self._webhook_event(item)})
            except CRMError as exc:  # refused: the provider sees why, per event
                results.append({"index": n, "error": str(exc)})
        failed = [r for r in results if "error" in r]
        return _json(200 if not failed else 207 if len(failed) < len(results) else 422, {"results": results})

    # -- helpers --------------------------------------------------------------------------------------

    def _record(self, message_id: int, kind: str, detail: dict[str, Any] | None = None) -> None:
        try:
            self._service.tracking.record(message_id, kind, detail=detail)
        except ValidationError:
            pass  # an event about a message not sent (a preview link): nothing to record

    def _webhook_event(self, item: Any) -> bool:
        if not isinstance(item, dict):
            raise ValidationError("each event is a JSON object", field="event")
        for key, value in item.items():
            if _unstorable(key) or _unstorable(value):  # PostgreSQL stores no NUL in text (nor in jsonb)
                raise ValidationError("text may not contain NUL characters or lone surrogates",
                                      field=ascii(key)[1:-1][:50])
        kind = WEBHOOK_EVENTS.get(str(item.get("event", "")))
        if kind is None:
            raise ValidationError(f"unknown event {str(item.get('event'))[:50]!r} (known: {', '.join(WEBHOOK_EVENTS)})", field="event")
        message_id = self._message_id(item)
        at = _time(item.get("at"))
        if kind == "responded":
            subject = item.get("subject")
            if subject is not None and not isinstance(subject, str):
                raise ValidationError("must be text", field="subject")
            self._service.tracking.respond(message_id, str(item.get("text") or ""), at=at, subject=subject)
            return True
        detail = {k: item[k] for k in ("reason", "permanent", "url") if k in item}
        return self._service.tracking.record(message_id, kind, at=at, detail=detail)

    def _message_id(self, item: dict[str, Any]) -> int:
        if "message_id" in item:
            value = item["message_id"]
            if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= MAX_ID:
                raise ValidationError(f"must be a message id (a whole number from 1 to {MAX_ID})", field="message_id")
            return value
        if "idempotency_key" in item:
            key = _KEY.fullmatch(item["idempotency_key"]) if isinstance(item["idempotency_key"], str) else None
            if key is None or int(key[1]) > MAX_ID:
                raise ValidationError("must be crmkit-<campaign id>-<message id>, as crmkit sent it", field="idempotency_key")
            return int(key[1])
        provider = item.get("provider_message_id")
        if provider:
            if not isinstance(provider, (str, int)) or isinstance(provider, bool) or len(str(provider)) > 250:
                raise ValidationError("must be the provider's id of the message (text, at most 250 characters)",
                                      field="provider_message_id")
            with self._crm.reading() as conn:
                found = conn.execute(sa.select(m.messages.c.id).where(
                    m.messages.c.provider_message_id == str(provider))).scalar()
            if found is not None:
                return int(found)
            raise NotFound("message with provider id", provider)
        raise ValidationError("name the message: provider_message_id, message_id or idempotency_key", field="message_id")


def _json(status: int, data: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    return status, [("Content-Type", "application/json")], json.dumps(data, ensure_ascii=False).encode()


def _unstorable(value: Any) -> bool:
    """Whether a JSON value holds, anywhere, text no database stores: a NUL, or half a surrogate pair (``"\\ud800"``)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str) and ("\x00" in item or not _encodable(item)):
            return True
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _finite(text: str) -> float:
    """A JSON number as a float, refusing what JSON columns cannot hold (``NaN``, ``Infinity``, ``1e400``)."""
    number = float(text)
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError(f"not a finite number: {text[:20]}")
    return number


def _depth(value: Any) -> int:
    """How deeply a JSON value nests (walked without recursion: the payload comes from outside)."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, depth = pending.pop()
        deepest = max(deepest, depth)
        if isinstance(item, dict):
            pending.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            pending.extend((v, depth + 1) for v in item)
    return deepest


def _time(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        return aware_utc(datetime.fromisoformat(str(value).replace("Z", "+00:00")), "at")
    except (ValueError, OverflowError):  # OverflowError: 0001-01-01T00:00+07:00 is before year 1 in UTC
        raise ValidationError(f"not an ISO 8601 time with a zone: {value!r}", field="at") from None


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 128  # socketserver's 5 resets connections when a mailing's pixels load at once


#: A token in a logged request line (and the rest of the line up to a space): ``/u/1.a.Xy…`` → ``/u/<token>``.
_LOGGED_TOKEN = re.compile(r"/([ocu])/[^\s\"]+")


def redact_request_line(text: str) -> str:
    """A log line with the tracking tokens (and click targets) of its request line replaced by ``<token>``."""
    return _LOGGED_TOKEN.sub(r"/\1/<token>", text)


class _LoggingHandler(WSGIRequestHandler):
    """The standard access log on stderr, without the tokens: an unsubscribe token lets anyone unsubscribe."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        super().log_message("%s", redact_request_line(format % args))


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        return None


def make_tracking_server(crm: CRM, host: str = "127.0.0.1", port: int = 8025, *, quiet: bool = False) -> WSGIServer:
    """A threaded HTTP server running the tracking app (``serve_forever()`` it; ``port=0`` picks a free port).

    Its access log (stderr, unless ``quiet``) shows no token: ``"GET /u/<token> HTTP/1.1" 200``."""
    handler = _QuietHandler if quiet else _LoggingHandler
    return make_server(host, port, TrackingApp(crm), server_class=_ThreadingServer, handler_class=handler)
