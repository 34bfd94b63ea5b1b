"""Channel adapters: what delivers a rendered message to a person, after the run's transaction committed.

Built in: ``smtp`` (e-mail over SMTP with ``smtplib``), ``webhook`` (an HTTP POST per message, for
SMS gateways and chat apps) and ``file`` (one file per message in a folder, for demos and tests).
Other plugins add adapters through the ``crmkit_channel_adapters`` hook. An adapter raises
:class:`TransientError` for what a later attempt may fix (server unreachable, 4xx SMTP reply,
HTTP 5xx/429) and :class:`PermanentError` for what it will not (address refused, HTTP 4xx).
"""

from __future__ import annotations

import html
import json
import os
import re
import smtplib
import tempfile
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable, Mapping
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formataddr, formatdate, parseaddr
from pathlib import Path
from typing import Any, Protocol

import attrs

from crmkit.errors import ValidationError
from crmkit.plugin_api import (
    SecretUnavailable,
    is_reference,
    redact_url,
    refuse_inline,
    resolve_secret,
    resolve_secrets,
)

ADDRESS_KINDS = ("email", "phone")
_UTF8 = Charset("utf-8")
_UTF8.body_encoding = QP  # readable source, and safe for 8-bit-unaware servers
#: A web address in a message's text.
URL = re.compile(r"https?://[^\s<>\"']+")
_TRAILING = ".,;:!?)"
_UNSAFE_FILE_CHARS = re.compile(r"[^A-Za-z0-9_.-]")


class DeliveryError(Exception):
    """A message could not be delivered."""


class TransientError(DeliveryError):
    """Delivery failed for now; retry later. ``channel_down``: nothing on this channel can go out now."""

    def __init__(self, message: str, *, channel_down: bool = False) -> None:
        super().__init__(message)
        self.channel_down = channel_down


class PermanentError(DeliveryError):
    """Delivery will never succeed (address refused, message rejected)."""


@attrs.frozen
class OutgoingMessage:
    """A rendered message for one person, as adapters receive it."""

    message_id: int
    idempotency_key: str  # stable across retries: a provider that dedups on it delivers once
    campaign_id: int
    customer_id: int
    channel: str
    to: str  # e-mail address or E.164 phone number
    subject: str | None
    text: str
    html: str | None
    unsubscribe_url: str
    name: str | None = None


class Adapter(Protocol):
    """What ``crmkit_channel_adapters`` returns per channel."""

    name: str
    address_kind: str
    idempotent: bool

    def send(self, message: OutgoingMessage) -> str:
        """Deliver ``message``; return the provider's message id."""


def ascii_address(address: str) -> str:
    """An e-mail address SMTP can carry: the domain in IDNA (punycode); ``PermanentError`` for a non-ASCII mailbox."""
    local, _, domain = address.rpartition("@")
    if not local.isascii():
        raise PermanentError(f"{address}: mailbox names with accents cannot be delivered (no SMTPUTF8)")
    try:
        return f"{local}@{domain.encode('idna').decode('ascii')}"
    except UnicodeError as exc:
        raise PermanentError(f"{address}: invalid domain ({exc})") from None


def address_header(value: str) -> str:
    """A ``From``/``Reply-To`` value SMTP carries intact: ``=?utf-8?b?…?= <box@domain>``.

    The display name alone is RFC 2047-encoded (one encoded word, which every reader decodes alike)
    and the address stays outside it, its domain in IDNA; ``PermanentError`` if there is no usable address.
    """
    name, address = parseaddr(value)
    if "@" not in address:
        raise PermanentError(f"{value}: not an e-mail address")
    return formataddr((name, ascii_address(address)), "utf-8")


def build_email(message: OutgoingMessage, sender: str, reply_to: str | None = None) -> Message:
    """The e-mail of a message: text and HTML parts, a Message-ID derived from the idempotency key, and
    ``List-Unsubscribe`` / ``List-Unsubscribe-Post`` headers (RFC 8058 one-click unsubscribe).

    Built with the classic ``email.mime`` classes: several times faster than ``EmailMessage``'s
    header registry, which matters when a dispatcher renders thousands of messages.
    """
    text = MIMEText(message.text, "plain", _UTF8)
    if message.html:
        # An explicit boundary spares the generator a regex compiled per message to invent one.
        email: Message = MIMEMultipart("alternative", boundary=f"=_crmkit_{uuid.uuid4().hex}")
        email.attach(text)
        email.attach(MIMEText(message.html, "html", _UTF8))
    else:
        email = text
    sender = address_header(sender)
    email["From"] = sender
    email["To"] = formataddr((message.name or "", ascii_address(message.to)))
    email["Subject"] = Header(message.subject or "", "utf-8").encode()
    email["Date"] = formatdate(localtime=False)
    domain = parseaddr(sender)[1].rpartition("@")[2] or "crmkit.local"
    email["Message-ID"] = f"<{message.idempotency_key}@{domain}>"
    email["List-Unsubscribe"] = f"<{message.unsubscribe_url}>"
    email["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    email["X-Crmkit-Campaign"] = str(message.campaign_id)
    if reply_to:
        email["Reply-To"] = address_header(reply_to)
    return email


class SmtpAdapter:
    """E-mail over SMTP; one connection per dispatch, opened on the first message.

    Not idempotent: an SMTP server cannot tell a retry from a new message, so a message whose
    outcome is unknown (the dispatcher stopped after handing it over) is left ``unconfirmed``
    rather than sent again. The Message-ID is the idempotency key, so mail systems that drop
    duplicate Message-IDs drop a forced resend.
    """

    name = "smtp"
    address_kind = "email"
    idempotent = False

    def __init__(
        self,
        *,
        host: str,
        sender: str,
        port: int = 25,
        username: str | None = None,
        password: str | None = None,
        password_env: str | None = None,
        starttls: bool = False,
        ssl: bool = False,
        timeout: float = 10.0,
        reply_to: str | None = None,
    ) -> None:
        self.host, self.port, self.sender, self.reply_to = host, int(port), sender, reply_to
        # ``password`` is a reference (env:NAME, file:/path) read at login; ``password_env`` its older spelling
        self.username, self.password = username, password or (f"env:{password_env}" if password_env else "")
        self.starttls, self.ssl, self.timeout = bool(starttls), bool(ssl), float(timeout)
        self._smtp: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        if self._smtp is not None:
            return self._smtp
        try:
            factory = smtplib.SMTP_SSL if self.ssl else smtplib.SMTP
            smtp = factory(self.host, self.port, timeout=self.timeout)
            if self.starttls:
                smtp.starttls()
            if self.username:
                smtp.login(self.username, resolve_secret(self.password, "password") if self.password else "")
        except SecretUnavailable as exc:
            raise TransientError(str(exc), channel_down=True) from None
        except smtplib.SMTPAuthenticationError as exc:
            raise TransientError(f"SMTP login refused by {self.host}:{self.port}: {exc}", channel_down=True) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise TransientError(f"SMTP server {self.host}:{self.port} unreachable: {exc}", channel_down=True) from exc
        self._smtp = smtp
        return smtp

    def send(self, message: OutgoingMessage) -> str:
        """Hand the e-mail to the SMTP server; returns its Message-ID."""
        email = build_email(message, self.sender, self.reply_to)
        smtp = self._connect()
        try:
            refused = smtp.send_message(email)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()))
            error = f"recipient refused: {code} {reply.decode(errors='replace') if isinstance(reply, bytes) else reply}"
            raise (TransientError(error) if 400 <= code < 500 else PermanentError(error)) from exc
        except smtplib.SMTPResponseException as exc:
            said = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error
            error = f"SMTP {exc.smtp_code}: {said}"
            self.close()
            raise (TransientError(error) if 400 <= exc.smtp_code < 500 else PermanentError(error)) from exc
        except (OSError, smtplib.SMTPException) as exc:
            self._smtp = None
            raise TransientError(f"SMTP connection to {self.host}:{self.port} lost: {exc}", channel_down=True) from exc
        if refused:
            raise PermanentError(f"recipient refused: {refused}")
        return str(email["Message-ID"])

    def close(self) -> None:
        """Say goodbye to the server (errors ignored: the messages are already accepted)."""
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (OSError, smtplib.SMTPException):
                pass
            self._smtp = None


class WebhookAdapter:
    """One HTTP POST per message (JSON) to an SMS gateway or chat API; for SMS, Zalo, Messenger…

    The body is ``{"to", "text", "subject", "idempotency_key", "message_id", "campaign_id",
    "channel", "unsubscribe_url"}``; the same key goes in an ``Idempotency-Key`` header. The
    provider's id is read from the JSON reply (``id`` or ``message_id``). It is idempotent when
    the provider honours the key (the default; set ``idempotent: false`` otherwise).
    """

    name = "webhook"

    def __init__(
        self,
        *,
        url: str,
        address_kind: str = "phone",
        headers: Mapping[str, str] | None = None,
        token_env: str | None = None,
        timeout: float = 10.0,
        idempotent: bool = True,
    ) -> None:
        if address_kind not in ADDRESS_KINDS:
            raise ValidationError(f"must be one of {', '.join(ADDRESS_KINDS)}", field="address_kind")
        self.url, self.address_kind, self.timeout, self.idempotent = url, address_kind, float(timeout), bool(idempotent)
        # header values and the URL may be references (env:NAME, file:/path), read when the first message goes
        self.headers = {"Content-Type": "application/json", **dict(headers or {})}
        self.token_env = token_env
        self._resolved: tuple[str, dict[str, str]] | None = None

    def _target(self) -> tuple[str, dict[str, str]]:
        """The URL and headers with their references read (once per adapter, i.e. per dispatch)."""
        if self._resolved is None:
            headers = resolve_secrets(self.headers, "headers")
            if self.token_env:
                headers["Authorization"] = f"Bearer {resolve_secret('env:' + self.token_env, 'token_env')}"
            self._resolved = resolve_secret(self.url, "url"), headers
        return self._resolved

    def send(self, message: OutgoingMessage) -> str:
        """POST the message; returns the provider's message id."""
        try:
            url, headers = self._target()
        except SecretUnavailable as exc:
            raise TransientError(str(exc), channel_down=True) from None
        if not url.startswith(("http://", "https://")):  # a URL read from a reference was never checked when set
            raise TransientError(f"url must start with http:// or https://, got {redact_url(url)}", channel_down=True)
        body = json.dumps(
            {
                "to": message.to,
                "text": message.text,
                "subject": message.subject,
                "idempotency_key": message.idempotency_key,
                "message_id": message.message_id,
                "campaign_id": message.campaign_id,
                "channel": message.channel,
                "unsubscribe_url": message.unsubscribe_url,
            },
            ensure_ascii=False,
        ).encode()
        request = urllib.request.Request(  # noqa: S310 - http(s) only, checked above
            url, data=body, method="POST", headers={**headers, "Idempotency-Key": message.idempotency_key}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - as above
                reply = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:200].decode(errors="replace")
            error = f"HTTP {exc.code} from {redact_url(url)}: {detail}"
            if exc.code in (408, 425, 429) or exc.code >= 500:
                raise TransientError(error) from exc
            raise PermanentError(error) from exc
        except (urllib.error.URLError, OSError) as exc:
            raise TransientError(
                f"{redact_url(url)} unreachable: {getattr(exc, 'reason', exc)}", channel_down=True
            ) from exc
        try:
            data = json.loads(reply or b"{}")
        except ValueError:
            data = {}
        ident = data.get("id") or data.get("message_id") if isinstance(data, dict) else None
        return str(ident or message.idempotency_key)


class FileOutboxAdapter:
    """Writes each message to a file in a folder (``<key>.eml`` for e-mail, ``<key>.json`` otherwise).

    Idempotent: the file is named by the idempotency key and written atomically, so a retry
    finds it and does not write a second one. For demos, tests and hand-off to other systems.
    """

    name = "file"
    idempotent = True

    def __init__(
        self, *, directory: str, address_kind: str = "email", sender: str = "crmkit <no-reply@crmkit.local>"
    ) -> None:
        if address_kind not in ADDRESS_KINDS:
            raise ValidationError(f"must be one of {', '.join(ADDRESS_KINDS)}", field="address_kind")
        self.directory = Path(directory)
        self.address_kind = address_kind
        self.sender = sender

    def send(self, message: OutgoingMessage) -> str:
        """Write the message file (unless it exists); returns ``file:<name>``."""
        safe = _UNSAFE_FILE_CHARS.sub("_", message.idempotency_key)
        suffix = ".eml" if self.address_kind == "email" else ".json"
        target = self.directory / f"{safe}{suffix}"
        if target.exists():
            return f"file:{target.name}"
        if self.address_kind == "email":
            data = build_email(message, self.sender).as_bytes()
        else:
            data = json.dumps(attrs.asdict(message), ensure_ascii=False, indent=2).encode()
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self.directory, suffix=".partial")
            with os.fdopen(handle, "wb") as file:
                file.write(data)
            os.replace(temporary, target)
        except OSError as exc:
            raise TransientError(f"cannot write {target}: {exc}", channel_down=True) from exc
        return f"file:{target.name}"

    def forget(self, provider_id: str) -> None:
        """Delete the file ``send`` wrote (``provider_id`` is what it returned): the customer was erased."""
        name = provider_id.removeprefix("file:")
        if name == Path(name).name:  # a bare file name, never a path out of the folder
            (self.directory / name).unlink(missing_ok=True)


#: Adapter types a channel can be configured with, and the options each takes.
ADAPTER_TYPES: dict[str, type] = {"smtp": SmtpAdapter, "webhook": WebhookAdapter, "file": FileOutboxAdapter}
OPTIONS = {
    "smtp": (
        "host",
        "port",
        "sender",
        "username",
        "password",
        "password_env",
        "starttls",
        "ssl",
        "timeout",
        "reply_to",
    ),
    "webhook": ("url", "address_kind", "headers", "token_env", "timeout", "idempotent"),
    "file": ("directory", "address_kind", "sender"),
}
REQUIRED = {"smtp": ("host", "sender"), "webhook": ("url",), "file": ("directory",)}


def check_config(channel: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """Validate one channel's adapter configuration (``{"adapter": "smtp", "host": …}``); returns it cleaned."""
    kind = config.get("adapter")
    if kind not in ADAPTER_TYPES:
        raise ValidationError(
            f"adapter must be one of {', '.join(ADAPTER_TYPES)}, got {kind!r}", field=f"{channel}.adapter"
        )
    options = {k: v for k, v in config.items() if k != "adapter"}
    unknown = sorted(set(options) - set(OPTIONS[kind]))
    if unknown:
        raise ValidationError(
            f"unknown option(s) {', '.join(unknown)} for {kind} (known: {', '.join(OPTIONS[kind])})", field=channel
        )
    refuse_inline(channel, options)  # secrets by reference only: none reaches the settings or the audit log
    missing = [k for k in REQUIRED[kind] if not options.get(k)]
    if missing:
        raise ValidationError(f"the {kind} adapter needs {', '.join(missing)}", field=channel)
    for option in ("sender", "reply_to"):
        if kind in ("smtp", "file") and options.get(option):
            try:
                address_header(str(options[option]))
            except PermanentError as exc:
                raise ValidationError(
                    f"{option} must be an e-mail address (name <box@domain>): {exc}", field=f"{channel}.{option}"
                ) from None
    if kind == "webhook" and not is_reference(options["url"]) and not re.match(r"^https?://", str(options["url"])):
        raise ValidationError(
            f"url must start with http:// or https://, got {options['url']!r}", field=f"{channel}.url"
        )
    build_adapter(channel, {"adapter": kind, **options})  # options of the wrong type fail here
    return {"adapter": kind, **options}


def build_adapter(channel: str, config: Mapping[str, Any]) -> Adapter:
    """An adapter instance from a channel's stored configuration."""
    kind = config["adapter"]
    options = {k: v for k, v in config.items() if k != "adapter"}
    try:
        return ADAPTER_TYPES[kind](**options)  # type: ignore[no-any-return]
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"bad {kind} options: {exc}", field=channel) from None


def split_trailing(url: str) -> tuple[str, str]:
    """A URL found in text without the punctuation that ends the sentence around it: ``(url, "." )``."""
    trailing = ""
    while url and url[-1] in _TRAILING:
        url, trailing = url[:-1], url[-1] + trailing
    return url, trailing


def html_body(text: str, pixel_url: str | None, links: Iterable[tuple[int, int]] = ()) -> str:
    """A minimal HTML part for a text message: paragraphs, the ``(start, end)`` spans ``links`` of it as links (the
    ones the template's author wrote), every other character escaped as text, and the open-tracking pixel."""
    pieces, last = [], 0
    for start, end in links:
        url = html.escape(text[start:end])
        pieces.append(html.escape(text[last:start]))
        pieces.append(f'<a href="{url}">{url}</a>')
        last = end
    pieces.append(html.escape(text[last:]))
    linked = "".join(pieces)
    paragraphs = "".join(f"<p>{part.replace(chr(10), '<br>')}</p>" for part in linked.split("\n\n"))
    pixel = f'<img src="{html.escape(pixel_url)}" width="1" height="1" alt="">' if pixel_url else ""
    return f"<!doctype html><html><body>{paragraphs}{pixel}</body></html>"
