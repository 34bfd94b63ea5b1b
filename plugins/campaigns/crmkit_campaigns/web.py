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
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from socketserver import ThreadingMixIn

import sqlalchemy as sa

from crmkit.core.access import SYSTEM
from crmkit.core.schemas import aware_utc
from crmkit.errors import CRMError, NotFound, ValidationError
from crmkit_campaigns import models as m
from crmkit_campaigns.signing import InvalidToken

if TYPE_CHECKING:
    from crmkit.crm import CRM

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
WEBHOOK_EVENTS = {"delivered": "delivered", "bounced": "bounced", "opened": "opened", "clicked": "clicked",
                  "replied": "responded", "responded": "responded"}
MAX_BODY = 1 << 20
_KEY = re.compile(r"^crmkit-\d+-(\d+)$")
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
        return 302, [("Location", target), ("Cache-Control", "no-store")], b""

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
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            if length > MAX_BODY:
                raise ValueError("body too large")
            payload = json.loads(environ["wsgi.input"].read(length) or b"null")
        except ValueError as exc:
            return _json(400, {"error": f"bad JSON: {exc}"})
        items = payload if isinstance(payload, list) else [payload]
        results = []
        for n, item in enumerate(items):
            try:
                results.append({"index": n, "recorded": self._webhook_event(item)})
            except (ValidationError, NotFound) as exc:
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
        kind = WEBHOOK_EVENTS.get(str(item.get("event", "")))
        if kind is None:
            raise ValidationError(f"unknown event {item.get('event')!r} (known: {', '.join(WEBHOOK_EVENTS)})", field="event")
        message_id = self._message_id(item)
        at = _time(item.get("at"))
        if kind == "responded":
            self._service.tracking.respond(message_id, str(item.get("text") or ""), at=at, subject=item.get("subject"))
            return True
        detail = {k: item[k] for k in ("reason", "permanent", "url") if k in item}
        return self._service.tracking.record(message_id, kind, at=at, detail=detail)

    def _message_id(self, item: dict[str, Any]) -> int:
        if isinstance(item.get("message_id"), int):
            return int(item["message_id"])
        key = _KEY.match(str(item.get("idempotency_key") or ""))
        if key:
            return int(key.group(1))
        provider = item.get("provider_message_id")
        if provider:
            with self._crm.reading() as conn:
                found = conn.execute(sa.select(m.messages.c.id).where(
                    m.messages.c.provider_message_id == str(provider))).scalar()
            if found is not None:
                return int(found)
            raise NotFound("message with provider id", provider)
        raise ValidationError("name the message: provider_message_id, message_id or idempotency_key", field="message_id")


def _json(status: int, data: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    return status, [("Content-Type", "application/json")], json.dumps(data, ensure_ascii=False).encode()


def _time(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        return aware_utc(datetime.fromisoformat(str(value).replace("Z", "+00:00")), "at")
    except ValueError:
        raise ValidationError(f"not an ISO 8601 time with a zone: {value!r}", field="at") from None


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        return None


def make_tracking_server(crm: CRM, host: str = "127.0.0.1", port: int = 8025, *, quiet: bool = False) -> WSGIServer:
    """A threaded HTTP server running the tracking app (``serve_forever()`` it; ``port=0`` picks a free port)."""
    handler = _QuietHandler if quiet else WSGIRequestHandler
    return make_server(host, port, TrackingApp(crm), server_class=_ThreadingServer, handler_class=handler)
