"""``crmkit serve``: the app on gunicorn, several worker processes each with its own CRM (and connection pool).

gunicorn runs the WSGI app because the services are synchronous (SQLAlchemy sessions, the
write lock of SQLite): an ASGI server would hand every request to a thread pool anyway. Each
worker process opens the CRM after the fork (no connection crosses a fork) and serves requests
on a few threads; TLS and HTTP/2 belong to the reverse proxy in front (see the README).

Slow clients cannot hold the threads: :class:`TimedThreadWorker` gathers each request in the worker's
poller, without a thread, and gives it ``read_timeout`` seconds to arrive (a client that trickles a byte
at a time is dropped when they run out); only a complete request goes to a thread.
"""

from __future__ import annotations

import functools
import re
import selectors
import socket
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from gunicorn.app.base import BaseApplication
from gunicorn.workers.gthread import ThreadWorker

if TYPE_CHECKING:
    from crmkit.plugin import Plugin
    from crmkit.web.app import ApiApp


class Server(BaseApplication):  # type: ignore[misc]  # gunicorn ships no type hints
    """A gunicorn application whose workers each build ``create_app(CRM(database))``."""

    def __init__(
        self,
        database: str | None,
        options: dict[str, Any],
        *,
        plugins: Sequence[Plugin | str] | None = None,
        make_app: Callable[[Any], ApiApp] | None = None,
    ) -> None:
        self.database = database
        self.options = options
        self.plugins = plugins
        self.make_app = make_app
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> ApiApp:
        from crmkit.crm import CRM
        from crmkit.web import create_app

        crm = CRM(self.database, plugins=self.plugins)
        return (self.make_app or create_app)(crm)


#: What the worker's main thread gathers of a request before a thread takes it: the headers and a body of a known
#: length up to this size (the API's bodies); the rest of a larger one is read by the thread, against the deadline.
GATHERED = 2 << 20
_HEADERS_END = b"\r\n\r\n"
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*([0-9]{1,12})[ \t]*\r\n", re.IGNORECASE)
_EXPECT = re.compile(rb"\r\nexpect:", re.IGNORECASE)


class _ClientSocket(socket.socket):
    """A client connection holding the bytes the worker gathered for it, with a deadline per request.

    A read returns the gathered bytes first. gunicorn calls ``setblocking(True)`` as a thread takes a request: from
    then on a read past ``limit`` seconds answers end-of-file, so the request is dropped as from a client that went
    away; a caller's own shorter timeout (gunicorn's body drain, its graceful close) still applies.
    """

    __slots__ = ("_limit", "_deadline", "_asked", "gathered")
    _limit: float
    _deadline: float
    _asked: float | None
    gathered: bytearray

    def settimeout(self, value: float | None) -> None:
        """Set the timeout the caller asked for (a read is bounded by the request's deadline as well)."""
        self._asked = value
        super().settimeout(value)

    def setblocking(self, flag: bool) -> None:
        """Blocking: a thread takes the request, which has ``limit`` seconds more; non-blocking: the poller's."""
        if flag:
            self._deadline = time.monotonic() + self._limit
            self.settimeout(self._limit)
        else:
            self.settimeout(0.0)

    def recv(self, size: int, flags: int = 0) -> bytes:
        """The gathered bytes, all at once (gunicorn's reader buffers what it does not need yet, so a pipelined request
        is seen); then at most ``size`` bytes from the socket; ``b""`` once the request's time is up."""
        if self.gathered:
            data, self.gathered = bytes(self.gathered), bytearray()
            return data
        asked = self._asked
        if asked is not None and asked <= 0:  # non-blocking (the poller's): as it is
            return super().recv(size, flags)
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            return b""
        super().settimeout(remaining if asked is None else min(remaining, asked))
        try:
            return super().recv(size, flags)
        except TimeoutError:
            if time.monotonic() < self._deadline:
                raise  # the caller's own shorter timeout
            return b""
        finally:
            super().settimeout(asked)

    def gather(self) -> bool | None:
        """Read what has arrived without waiting (the worker's main thread); True once the request's headers and a
        body of known length up to :data:`GATHERED` are in, None when the client closed or its time is up."""
        try:
            data = super().recv(65536)
        except BlockingIOError:
            return False
        if not data or time.monotonic() > self._deadline:
            return None
        self.gathered += data
        end = self.gathered.find(_HEADERS_END)
        if end == -1:
            return len(self.gathered) >= GATHERED  # over-long headers: gunicorn's parser refuses them
        length = _CONTENT_LENGTH.search(self.gathered, 0, end + 2)
        body = (
            int(length[1]) if length and not _EXPECT.search(self.gathered, 0, end + 2) else 0
        )  # 100-continue: none yet
        return len(self.gathered) >= min(end + 4 + body, GATHERED)


def _timed(connection: socket.socket, limit: float) -> _ClientSocket:
    """``connection`` as a :class:`_ClientSocket` (the same file descriptor) with ``limit`` seconds per request."""
    timed = _ClientSocket(connection.family, connection.type, connection.proto, fileno=connection.detach())
    timed._limit, timed.gathered = limit, bytearray()
    timed.setblocking(False)
    return timed


class TimedThreadWorker(ThreadWorker):  # type: ignore[misc]  # gunicorn ships no type hints
    """gunicorn's gthread worker where slow clients hold no thread: the main thread's poller gathers each request
    (headers, and a body of known length up to :data:`GATHERED`) within ``read_timeout`` seconds, and only a complete
    one goes to a thread — which has ``read_timeout`` seconds more for the rest of a larger body."""

    read_timeout = 30.0

    def init_process(self) -> None:
        """Also start the list of connections whose request is being gathered."""
        self.gathering: set[Any] = set()
        super().init_process()

    def enqueue_req(self, conn: Any) -> None:
        """Gather a connection's next request in the poller, unless its bytes are already read (pipelined)."""
        if not isinstance(conn.sock, _ClientSocket):  # accepted just now, on the main thread, not yet polled
            conn.sock = _timed(conn.sock, self.read_timeout)
        elif conn.sock.gathered or (conn.parser is not None and conn.parser.unreader.buf.getvalue()):
            super().enqueue_req(conn)
            return
        conn.sock.setblocking(False)
        conn.sock._deadline = time.monotonic() + self.read_timeout
        self.gathering.add(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, functools.partial(self._gather, conn))

    def _gather(self, conn: Any, _sock: Any) -> None:
        done = conn.sock.gather()
        if done is False:
            return
        self.gathering.discard(conn)
        self.poller.unregister(conn.sock)
        if done is None:
            self.nr_conns -= 1
            conn.close()
            return
        conn.data_ready = True  # the bytes are in hand: the thread must not wait for the socket to be readable
        super().enqueue_req(conn)

    def murder_pending(self) -> None:
        """Also close the connections whose request did not arrive in time."""
        super().murder_pending()
        now = time.monotonic()
        for conn in [c for c in self.gathering if c.sock._deadline <= now]:
            self.gathering.discard(conn)
            self.poller.unregister(conn.sock)
            self.nr_conns -= 1
            conn.close()


def gunicorn_options(
    bind: Sequence[str],
    workers: int,
    threads: int,
    timeout: int,
    access_log: bool,
    *,
    graceful_timeout: int | None = None,
    keepalive: int = 5,
    read_timeout: float = 30.0,
) -> dict[str, Any]:
    """gunicorn settings for crmkit: threaded workers with a read deadline per request, a request timeout,
    graceful restarts, a keep-alive limit, bounded request lines and headers."""
    worker = type("TimedThreadWorker", (TimedThreadWorker,), {"read_timeout": float(read_timeout)})
    return {
        "bind": list(bind),
        "workers": workers,
        "threads": threads,
        "worker_class": worker,
        "timeout": timeout,
        "graceful_timeout": timeout if graceful_timeout is None else graceful_timeout,
        "keepalive": keepalive,
        "limit_request_line": 8190,
        "limit_request_fields": 100,
        "limit_request_field_size": 8190,
        "accesslog": "-" if access_log else None,
        "errorlog": "-",
        "proc_name": "crmkit",
        "forwarded_allow_ips": "127.0.0.1,::1",
        "control_socket_disable": True,  # no socket in ~/.gunicorn through which a local user could steer the server
    }
