"""Test helpers for the campaigns plugin: local SMTP and HTTP servers, a purchases source, a Zalo channel
plugin, a listener of ``crmkit_message_event``, and adapters that crash or count."""

from __future__ import annotations

import json
import socketserver
import threading
from datetime import UTC, date, datetime
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import attrs

from crmkit import Plugin, hookimpl, testing
from crmkit.core.text import fold

#: A Wednesday at 10:00 in Hà Nội: outside the default quiet hours.
NOON = datetime(2026, 3, 4, 3, 0, tzinfo=UTC)


def people(
    crm: Any,
    count: int,
    *,
    city: str = "Hà Nội",
    consent: bool = True,
    prefix: str = "Khách",
    birth_date: date | None = None,
    **extra: Any,
) -> list[Any]:
    """``count`` customers with an e-mail (and consent for e-mail unless ``consent=False``)."""
    made = []
    for n in range(count):
        made.append(
            crm.customers.add(
                name=f"{prefix} {n}",
                given_name=f"{prefix}{n}",
                email=f"{fold(prefix).replace(' ', '')}{n}@example.vn",
                city=city,
                consents={"email": consent},
                birth_date=birth_date,
                **extra,
            )
        )
    return made


def bulk_people(crm: Any, count: int) -> list[int]:
    """``count`` customers with an e-mail and e-mail consent, written in one transaction (the rows
    ``crm.customers.add`` writes, minus search keys: for tests that need a crowd quickly); returns their ids."""
    from crmkit.core import tables as t

    with crm.transaction() as session:
        conn = session.connection()
        ids = (
            conn.execute(
                t.customers.insert().returning(t.customers.c.id, sort_by_parameter_order=True),
                [
                    {
                        "kind": "person",
                        "name": f"Khách {n}",
                        "name_key": f"khach {n}",
                        "lifecycle_stage": "lead",
                        "attributes": {},
                        "status": "active",
                        "created_at": NOON,
                        "updated_at": NOON,
                    }
                    for n in range(count)
                ],
            )
            .scalars()
            .all()
        )
        conn.execute(
            t.contact_points.insert(),
            [{"customer_id": i, "kind": "email", "value": f"k{i}@example.vn", "position": 0} for i in ids],
        )
        conn.execute(
            t.consents.insert(),
            [{"customer_id": i, "channel": "email", "granted": True, "at": NOON, "source": "test"} for i in ids],
        )
    return list(ids)


def outbox(crm: Any, directory: Any) -> None:
    """Send e-mail to a file outbox in ``directory``; no quiet hours, no frequency cap (tests opt in)."""
    crm.campaigns.set_channel("email", "file", directory=str(directory), address_kind="email")
    crm.campaigns.configure("quiet_hours", "")
    crm.campaigns.configure("frequency_cap", None)


# --- an SMTP server -----------------------------------------------------------------------------------------


class _TCPServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


class SmtpSink:
    """A minimal SMTP server on 127.0.0.1 that keeps every message it accepts (``.messages``).

    Recipients in ``refuse`` get ``550`` (a permanent refusal).
    """

    def __init__(self, port: int = 0) -> None:
        self.messages: list[Any] = []
        self.refuse: set[str] = set()
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write(line.encode() + b"\r\n")

            def handle(self) -> None:
                self.reply("220 sink ESMTP")
                recipients: list[str] = []
                while True:
                    line = self.rfile.readline()
                    if not line:
                        return
                    command = line.decode(errors="replace").strip()
                    verb = command.split(" ", 1)[0].upper()
                    if verb in ("EHLO", "HELO"):
                        self.reply("250 sink")
                    elif verb == "MAIL":
                        recipients = []
                        self.reply("250 OK")
                    elif verb == "RCPT":
                        address = command.split(":", 1)[1].strip().strip("<>")
                        if address in sink.refuse:
                            self.reply("550 no such user")
                        else:
                            recipients.append(address)
                            self.reply("250 OK")
                    elif verb == "DATA":
                        self.reply("354 go ahead")
                        lines = []
                        while True:
                            data = self.rfile.readline()
                            if data in (b".\r\n", b".\n", b""):
                                break
                            lines.append(data[1:] if data.startswith(b"..") else data)
                        sink.messages.append(message_from_bytes(b"".join(lines), policy=policy.default))
                        self.reply("250 queued")
                    elif verb == "QUIT":
                        self.reply("221 bye")
                        return
                    else:
                        self.reply("250 OK")

        self.server = _TCPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]

    def __enter__(self) -> SmtpSink:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    """A TCP port nothing listens on (for an unreachable server)."""
    with socketserver.TCPServer(("127.0.0.1", 0), socketserver.BaseRequestHandler) as server:
        return server.server_address[1]


# --- an HTTP gateway (SMS / chat) ------------------------------------------------------------------------------


class Gateway:
    """A local HTTP server standing in for an SMS or chat provider.

    Records each delivery once per ``Idempotency-Key`` (a retry with the same key is acknowledged with
    the same id and not delivered again); ``fail_next`` makes the next requests answer 503.
    """

    def __init__(self) -> None:
        self.delivered: dict[str, dict[str, Any]] = {}
        self.authorizations: list[str | None] = []  # the Authorization header of each request
        self.requests = 0
        self.fail_next = 0
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                gateway.requests += 1
                gateway.authorizations.append(self.headers.get("Authorization"))
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if gateway.fail_next:
                    gateway.fail_next -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                key = self.headers["Idempotency-Key"]
                gateway.delivered.setdefault(key, body)
                reply = json.dumps({"id": f"gw-{key}"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/send"

    def __enter__(self) -> Gateway:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- a purchases source (what sales provides) -----------------------------------------------------------------

#: ``crmkit.testing``'s stand-in source: the plugin, and its table.
PURCHASES, purchases = testing.PURCHASE_SOURCE, testing.purchases


def buy(crm: Any, customer_id: int, amount: int, at: datetime, currency: str = "VND") -> None:
    """Record a purchase in the stand-in source, as sales records an order."""
    testing.Shop(crm).buy(customer_id, at, amount, currency)


def buy_many(crm: Any, rows: list[tuple[int, int, datetime, str]]) -> None:
    """Record purchases ``(customer_id, amount_minor, at, currency)`` in one transaction, as an import does."""
    testing.Shop(crm).insert_quietly(
        [{"customer_id": c, "amount_minor": a, "occurred_at": t, "currency": cur} for c, a, t, cur in rows]
    )


# --- a vendor channel, a listener, adapters for crash tests ------------------------------------------------------


@attrs.define
class MemoryAdapter:
    """What a vendor's adapter looks like (a Zalo OA one by default): keeps what it sends, returns the provider id."""

    sent: list[Any] = attrs.field(factory=list)
    name: str = "zalo-oa"
    address_kind: str = "phone"
    idempotent: bool = True

    def send(self, message: Any) -> str:
        self.sent.append(message)
        return f"{self.name}-{message.message_id}"


def zalo_plugin(adapter: MemoryAdapter) -> Plugin:
    """An inline vendor plugin adding the ``zalo`` channel and its adapter."""

    class Hooks:
        @hookimpl
        def crmkit_channels(self) -> list[str]:
            return ["zalo"]

        @hookimpl(optionalhook=True)
        def crmkit_channel_adapters(self, crm: Any) -> dict[str, Any]:
            return {"zalo": adapter}

    return Plugin(name="zalo", hooks=(Hooks(),))


@attrs.define
class Listener:
    """Records every ``crmkit_message_event``."""

    events: list[Any] = attrs.field(factory=list)

    @property
    def plugin(self) -> Plugin:
        listener = self

        class Hooks:
            @hookimpl(optionalhook=True)
            def crmkit_message_event(self, event: Any, session: Any) -> None:
                listener.events.append(event)

        return Plugin(name="listener", hooks=(Hooks(),))

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]


class Crash(BaseException):
    """The process dying in the middle of something (not an error anyone catches)."""


@attrs.define
class CrashAfterSend:
    """Delivers through ``inner``, then 'crashes' before the dispatcher can record it (once)."""

    inner: Any
    crashes: int = 1

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def address_kind(self) -> str:
        return self.inner.address_kind

    @property
    def idempotent(self) -> bool:
        return self.inner.idempotent

    def send(self, message: Any) -> str:
        provider_id = self.inner.send(message)
        if self.crashes:
            self.crashes -= 1
            raise Crash("killed after the provider accepted the message")
        return provider_id

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if close:
            close()


def adapter_plugin(adapters: dict[str, Any]) -> Plugin:
    """An inline plugin delivering channels with the given adapters (tests swap entries of the dict)."""

    class Hooks:
        @hookimpl(optionalhook=True)
        def crmkit_channel_adapters(self, crm: Any) -> dict[str, Any]:
            return dict(adapters)

    return Plugin(name="testadapters", hooks=(Hooks(),))
