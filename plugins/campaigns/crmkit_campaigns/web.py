"""The tracking routes: public operations of the one app (``crmkit serve``) under ``/campaigns/t``.

=====================================  ===============================================================
``GET /campaigns/t/o/<token>.gif``     open pixel: records the first open, returns a 1×1 transparent GIF
``GET /campaigns/t/c/<token>?u=URL``   tracked link: records the click, redirects (302) to URL — only to the
                                       URL the token was signed for, so it is no open redirect
``GET /campaigns/t/u/<token>``         unsubscribe page: a button that POSTs back (link scanners only GET)
``POST /campaigns/t/u/<token>``        unsubscribe (also RFC 8058 one-click): withdraws the channel's consent
``POST /campaigns/t/events``           provider webhooks (``Authorization: Bearer <crmkit campaigns
                                       webhook-token>``): a JSON object or list of ``{"event": "delivered" |
                                       "bounced" | "opened" | "clicked" | "replied", "provider_message_id" |
                                       "message_id" | "idempotency_key": …, "reason", "permanent", "text", "at"}``
``GET /campaigns/t/health``            ``ok``
=====================================  ===============================================================

The routes are public and act as the system (no user signs in to a pixel): each request is
authorized by its signed token, or by the webhook token for ``events``. ``campaigns.base_url`` is
``https://<host>/campaigns/t``. No token reaches a log: :func:`redact_logs` filters the app's
request log and gunicorn's access log (an unsubscribe token lets anyone unsubscribe).
"""

from __future__ import annotations

import base64
import html
import json
import logging
import re
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import sqlalchemy as sa
from marshmallow import EXCLUDE, Schema, fields

from crmkit.errors import CRMError, NotFound, ValidationError
from crmkit.plugin_api import aware_utc
from crmkit.web import ApiRequest, HttpProblem, Operation, Reply, query_schema
from crmkit_campaigns import models as m
from crmkit_campaigns.signing import MAX_ID, InvalidToken

if TYPE_CHECKING:
    from crmkit.crm import CRM

PREFIX = "/campaigns/t"
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
WEBHOOK_EVENTS = {
    "delivered": "delivered",
    "bounced": "bounced",
    "opened": "opened",
    "clicked": "clicked",
    "replied": "responded",
    "responded": "responded",
}
MAX_BODY = 1 << 20
MAX_DEPTH = 16
HTML = "text/html; charset=utf-8"
_KEY = re.compile(r"crmkit-[1-9][0-9]{0,18}-([1-9][0-9]{0,18})")  # canonical, ASCII, bounded: int() cannot fail
_URL_SAFE = "!#$%&'()*+,/:;=?@[]~"  # a header carries Latin-1 only: other characters of a signed URL are %-encoded
#: A token in a logged line (and the rest of it up to a space or quote): ``/campaigns/t/u/1.a.Xy…`` → ``…/u/<token>``.
_LOGGED_TOKEN = re.compile(r"(/campaigns/t/[ocu])/[^\s\"']+")


class CampaignClickQuery(Schema):
    """The query of a tracked link: the target URL (other parameters, such as a mail client's, are ignored)."""

    class Meta:
        unknown = EXCLUDE

    u = fields.String(load_default="", metadata={"description": "The URL the link was signed for."})


def _page(title: str, body: str, status: int = 200) -> Reply:
    page = (
        f'<!doctype html><html lang="vi"><head><meta charset="utf-8"><title>{html.escape(title)}</title></head>'
        f'<body style="font-family:sans-serif;max-width:32em;margin:3em auto">{body}</body></html>'
    )
    return Reply(page.encode(), status=status, media_type=HTML)


def _invalid_link() -> Reply:
    return _page("Liên kết không hợp lệ", "<p>Invalid link.</p>", 400)


def tracking_operations() -> list[Operation]:
    """The public tracking routes (pixel, click, unsubscribe page and POST, provider events, health)."""
    unsubscribe = PREFIX + "/u/{token:str}"
    return [
        Operation(
            "GET",
            PREFIX + "/o/{token:str}",
            _open,
            "Open pixel of a sent message (the token ends in .gif)",
            public=True,
            media_type="image/gif",
            description="Records the first open; answers the 1×1 GIF whatever the token.",
        ),
        Operation(
            "GET",
            PREFIX + "/c/{token:str}",
            _click,
            "Tracked link: records the click, redirects to the target",
            query=CampaignClickQuery(),
            status=302,
            public=True,
            media_type="text/plain",
            description="Redirects only to the URL `u` the token was signed for (400 otherwise).",
        ),
        Operation(
            "GET",
            unsubscribe,
            _unsubscribe_form,
            "Unsubscribe page (a button that POSTs back)",
            public=True,
            media_type=HTML,
            responses={400: HTML},
        ),
        Operation(
            "POST",
            unsubscribe,
            _unsubscribe,
            "Unsubscribe: withdraw consent for the message's channel",
            public=True,
            media_type=HTML,
            responses={400: HTML},
            description="Also RFC 8058 one-click (`List-Unsubscribe=One-Click`); the body is ignored.",
        ),
        Operation(
            "POST",
            PREFIX + "/events",
            _events,
            "Provider webhooks: delivered, bounced, opened, clicked, replied",
            public=True,
            response=query_schema("CampaignEventResults", results=fields.List(fields.Dict())),
            responses={207: "application/json", 422: "application/json"},
            description="Send `Authorization: Bearer <crmkit campaigns webhook-token>` and a JSON object or "
            "list of `{event, provider_message_id | message_id | idempotency_key, reason, "
            "permanent, text, subject, at}` (at most 1 MiB). Answers each event's result: 200 "
            "when all were recorded, 207 when some were refused, 422 when all were.",
        ),
        Operation(
            "GET",
            PREFIX + "/health",
            lambda r: Reply(b"ok\n", media_type="text/plain"),
            "Is the tracking up",
            public=True,
            media_type="text/plain",
        ),
    ]


# -- the routes ---------------------------------------------------------------------------------------------


def _open(r: ApiRequest) -> Reply:
    token = r.params["token"]
    if not token.endswith(".gif"):
        raise HttpProblem(404, "no such pixel")
    try:
        _record(r.crm, r.crm.campaigns.signer().verify("open", token.removesuffix(".gif")), "opened")
    except (InvalidToken, CRMError):
        pass  # a pixel always answers with the pixel: nothing to learn from it
    return Reply(PIXEL, media_type="image/gif", headers={"Cache-Control": "no-store, private"})


def _click(r: ApiRequest) -> Reply:
    target = r.query["u"]
    try:
        message_id = r.crm.campaigns.signer().verify("click", r.params["token"], target)
    except InvalidToken:
        raise HttpProblem(400, "invalid or altered link") from None
    try:
        _record(r.crm, message_id, "clicked", {"url": target})
    except CRMError:
        pass  # the link still works for the reader (e.g. after an erasure)
    return Reply(
        b"",
        status=302,
        media_type="text/plain",
        headers={"Location": quote(target, safe=_URL_SAFE), "Cache-Control": "no-store"},
    )


def _unsubscribe_form(r: ApiRequest) -> Reply:
    token = r.params["token"]
    try:
        r.crm.campaigns.signer().verify("unsubscribe", token)
    except InvalidToken:
        return _invalid_link()
    form = (
        f'<h1>Hủy nhận tin / Unsubscribe</h1><form method="post" action="{html.escape(token)}">'
        f'<button type="submit">Hủy nhận tin / Unsubscribe</button></form>'
    )
    return _page("Hủy nhận tin", form)


def _unsubscribe(r: ApiRequest) -> Reply:
    try:
        _record(r.crm, r.crm.campaigns.signer().verify("unsubscribe", r.params["token"]), "unsubscribed")
    except (InvalidToken, NotFound):
        return _invalid_link()
    done = "<h1>Đã hủy nhận tin</h1><p>Bạn sẽ không nhận tin nhắn này nữa. / You have been unsubscribed.</p>"
    return _page("Đã hủy nhận tin", done)


def _events(r: ApiRequest) -> Reply:
    auth = r.http.headers.get("Authorization", "")
    if not auth.startswith("Bearer ") or not r.crm.campaigns.signer().check_webhook(auth[7:].strip()):
        raise HttpProblem(
            401,
            "send the webhook token: Authorization: Bearer <crmkit campaigns webhook-token>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    raw = r.http.get_data(cache=True)
    if len(raw) > MAX_BODY:
        raise HttpProblem(413, f"the body must be at most {MAX_BODY} bytes")
    try:
        payload = json.loads(raw or b"null", parse_float=_finite, parse_constant=_finite)
    except (ValueError, RecursionError) as exc:  # a 5,000-digit number is a ValueError; deep nesting recurses
        raise HttpProblem(400, f"bad JSON: {str(exc)[:200]}") from None
    if _depth(payload) > MAX_DEPTH:
        raise HttpProblem(400, f"bad JSON: nested deeper than {MAX_DEPTH} levels")
    items = payload if isinstance(payload, list) else [payload]
    results: list[dict[str, Any]] = []
    for n, item in enumerate(items):
        try:
            results.append({"index": n, "recorded": _webhook_event(r.crm, item)})
        except CRMError as exc:  # refused: the provider sees why, per event
            results.append({"index": n, "error": str(exc)})
    failed = sum("error" in result for result in results)
    return Reply({"results": results}, status=200 if not failed else 207 if failed < len(results) else 422)


# -- helpers ------------------------------------------------------------------------------------------------


def _record(crm: CRM, message_id: int, kind: str, detail: dict[str, Any] | None = None) -> None:
    try:
        crm.campaigns.tracking.record(message_id, kind, detail=detail)
    except ValidationError:
        pass  # an event about a message not sent (a preview link): nothing to record


def _webhook_event(crm: CRM, item: Any) -> bool:
    if not isinstance(item, dict):
        raise ValidationError("each event is a JSON object", field="event")
    for key, value in item.items():
        if _unstorable(key) or _unstorable(value):  # PostgreSQL stores no NUL in text (nor in jsonb)
            raise ValidationError("text may not contain NUL characters or lone surrogates", field=ascii(key)[1:-1][:50])
    kind = WEBHOOK_EVENTS.get(str(item.get("event", "")))
    if kind is None:
        raise ValidationError(
            f"unknown event {str(item.get('event'))[:50]!r} (known: {', '.join(WEBHOOK_EVENTS)})", field="event"
        )
    message_id = _message_id(crm, item)
    at = _time(item.get("at"))
    if kind == "responded":
        subject = item.get("subject")
        if subject is not None and not isinstance(subject, str):
            raise ValidationError("must be text", field="subject")
        crm.campaigns.tracking.respond(message_id, str(item.get("text") or ""), at=at, subject=subject)
        return True
    detail = {k: item[k] for k in ("reason", "permanent", "url") if k in item}
    return crm.campaigns.tracking.record(message_id, kind, at=at, detail=detail)


def _message_id(crm: CRM, item: dict[str, Any]) -> int:
    if "message_id" in item:
        value = item["message_id"]
        if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= MAX_ID:
            raise ValidationError(f"must be a message id (a whole number from 1 to {MAX_ID})", field="message_id")
        return value
    if "idempotency_key" in item:
        key = _KEY.fullmatch(item["idempotency_key"]) if isinstance(item["idempotency_key"], str) else None
        if key is None or int(key[1]) > MAX_ID:
            raise ValidationError(
                "must be crmkit-<campaign id>-<message id>, as crmkit sent it", field="idempotency_key"
            )
        return int(key[1])
    provider = item.get("provider_message_id")
    if provider:
        if not isinstance(provider, (str, int)) or isinstance(provider, bool) or len(str(provider)) > 250:
            raise ValidationError(
                "must be the provider's id of the message (text, at most 250 characters)", field="provider_message_id"
            )
        with crm.reading() as conn:
            found = conn.execute(
                sa.select(m.messages.c.id).where(m.messages.c.provider_message_id == str(provider))
            ).scalar()
        if found is not None:
            return int(found)
        raise NotFound("message with provider id", provider)
    raise ValidationError("name the message: provider_message_id, message_id or idempotency_key", field="message_id")


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


# -- no token in the logs -------------------------------------------------------------------------------------


def redact_request_line(text: str) -> str:
    """A log line with the tracking tokens (and click targets) in it replaced by ``<token>``."""
    return _LOGGED_TOKEN.sub(r"\1/<token>", text)


class _RedactTokens(logging.Filter):
    """Rewrites a record whose message names a tracking URL (request path, Referer) without its token."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_request_line(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


_REDACT = _RedactTokens()


def redact_logs() -> None:
    """Keep tracking tokens out of the app's request log and gunicorn's access log (idempotent, per process)."""
    for name in ("crmkit.web", "gunicorn.access"):
        logging.getLogger(name).addFilter(_REDACT)
