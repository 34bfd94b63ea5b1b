"""The HTTP layer under hostile clients: slow ones cannot hold every thread of ``crmkit serve``, a body limit no
Content-Length (negative, non-numeric, missing, chunked) gets around, and each route answering only its methods."""

from __future__ import annotations

import http.client
import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from werkzeug.test import Client, EnvironBuilder

from crmkit.testing import add_user
from crmkit.web import ApiSettings, create_app

SLOW_CLIENTS = 20
READ_TIMEOUT = 2


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def _serving(crm: Any, *options: str) -> Iterator[int]:
    """``crmkit serve`` on a free port with ``options``; yields the port, stops the server (SIGTERM) after."""
    port = _free_port()
    url = crm.engine.url.render_as_string(hide_password=False)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "crmkit.cli.main",
            "--db",
            url,
            "serve",
            "--bind",
            f"127.0.0.1:{port}",
            "--no-access-log",
            *options,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if _get(port, "/health", timeout=5)[0] == 200:
                    break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "crmkit serve did not start"
                time.sleep(0.2)
        yield port
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


def _get(
    port: int,
    path: str,
    *,
    method: str = "GET",
    timeout: float = 10,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One request on its own connection (an iterable body is sent chunked); the status, headers and body."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(
            method, path, body=body, headers=headers or {}, encode_chunked=not isinstance(body, (bytes, type(None)))
        )
        answer = conn.getresponse()
        return answer.status, dict(answer.getheaders()), answer.read()
    finally:
        conn.close()


def _trickle(port: int, start: bytes, stop: threading.Event, dropped: list[float]) -> None:
    """A slow client: ``start``, then one byte every 0.3 s until the server drops it (its time is recorded)."""
    began = time.monotonic()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(start)
        sock.settimeout(0.3)
        while not stop.is_set():
            try:
                sock.sendall(b"a")
                if sock.recv(1024) == b"":
                    break  # closed by the server
            except TimeoutError:
                continue  # nothing to read yet: still held
            except OSError:
                break  # reset by the server
        else:
            return
    dropped.append(time.monotonic() - began)


def test_slow_clients_cannot_starve_a_normal_request(crm_factory: Any) -> None:
    crm = crm_factory(plugins=None)
    with _serving(crm, "--workers", "1", "--threads", "4", "--read-timeout", str(READ_TIMEOUT)) as port:
        stop, dropped = threading.Event(), []
        starts = [
            b"GET /health HTTP/1.1\r\nHost: crm\r\nX-Slow: ",  # headers a byte at a time (slowloris)
            b"POST /customers HTTP/1.1\r\nHost: crm\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100000\r\n\r\n{",
        ]  # a body a byte at a time
        clients = [
            threading.Thread(target=_trickle, args=(port, starts[n % 2], stop, dropped), daemon=True)
            for n in range(SLOW_CLIENTS)
        ]
        for client in clients:
            client.start()
        time.sleep(1)  # every slow client is connected and sending: 5 per thread of the one worker
        started = time.monotonic()
        status, _, body = _get(port, "/health", timeout=READ_TIMEOUT * 10)
        waited = time.monotonic() - started
        for client in clients:
            client.join(timeout=READ_TIMEOUT * 10)
        stop.set()
    assert (status, body) == (200, b'{"status":"ok"}') and waited < READ_TIMEOUT * 10
    assert len(dropped) == SLOW_CLIENTS  # each slow client was cut off, none held a thread for good
    assert max(dropped) < READ_TIMEOUT * 10


@pytest.mark.crmkit_plugins("campaigns")
@pytest.mark.parametrize("length", ["-1", "abc", "²", "١٠", "+5", " 5", "0x10", "1e3", "5, 5", "9" * 40])
def test_a_content_length_not_spelled_in_digits_is_refused_before_any_reading(crm: Any, length: str) -> None:
    app = Client(create_app(crm, settings=ApiSettings(max_body=1000)))
    environ = {"CONTENT_LENGTH": length, "CONTENT_TYPE": "application/json"}
    for path in ("/health", "/customers", "/campaigns/t/events"):
        answer = app.open(path, method="POST", data=b"x" * 5000, environ_overrides=environ)
        assert answer.status_code in (400, 405) and answer.status_code != 500, (path, length)
    answer = app.post("/customers", data=b"{}", environ_overrides=environ)
    assert answer.status_code == 400 and "Content-Length" in answer.json["detail"]


def _raw(port: int, request: bytes) -> bytes:
    """Send ``request`` as written (what http.client would not send); the start of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        return sock.recv(200)


def test_bodies_over_the_limit_are_refused_whatever_their_length_says(crm_factory: Any) -> None:
    crm = crm_factory(plugins=None)
    crm.set_setting("api.max_body", 4096)
    add_user(crm, "lan", roles=["sales"])
    token = crm.users.create_token("lan", "limits").secret
    webhook = crm.campaigns.webhook_token()
    big = b'{"name": "' + "Lý Thu ".encode() * 20_000 + b'"}'
    json_body = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    with _serving(crm, "--workers", "1", "--threads", "2") as port:
        said = _get(port, "/customers", method="POST", body=big, headers=json_body)
        chunked = _get(port, "/customers", method="POST", body=iter([big[:50_000], big[50_000:]]), headers=json_body)
        events = _get(
            port, "/campaigns/t/events", method="POST", body=iter([big]), headers={"Authorization": f"Bearer {webhook}"}
        )
        malformed = _raw(
            port,
            b"POST /campaigns/t/events HTTP/1.1\r\nHost: crm\r\nTransfer-Encoding: chunked\r\n"
            b"Authorization: Bearer " + webhook.encode() + b"\r\n\r\nzz\r\n" + big,
        )
        negative = _raw(port, b"POST /customers HTTP/1.1\r\nHost: crm\r\nContent-Length: -1\r\n\r\n" + big)
        health = _get(port, "/health")
        trace = _get(port, "/health", method="TRACE", headers={"Cookie": "crmkit_session=secret-cookie"})
    assert (said[0], chunked[0], events[0]) == (413, 413, 413), (said, chunked, events)
    assert trace[0] == 405 and trace[1]["Allow"] == "GET, HEAD, OPTIONS" and b"secret-cookie" not in trace[2]
    assert negative.startswith(b"HTTP/1.1 400") and malformed.startswith(b"HTTP/1.1 400"), (negative, malformed)
    assert health[0] == 200 and crm.customers.find().items == []  # nothing was written


@pytest.mark.crmkit_plugins("campaigns")
def test_each_route_answers_only_the_methods_it_declares(crm: Any) -> None:
    app = Client(create_app(crm))
    declared = {
        "/health": {"GET", "HEAD"},
        "/customers": {"GET", "HEAD", "POST"},
        "/campaigns/t/health": {"GET", "HEAD"},
        "/campaigns/t/events": {"POST"},
        "/campaigns/t/u/1.e.AAAAAAAAAAAAAAAAAAAAAA": {"GET", "HEAD", "POST"},
        "/console/sign-in": {"GET", "HEAD", "POST"},
        "/console/": {"GET", "HEAD"},
    }
    for path, allowed in declared.items():
        for method in ("TRACE", "TRACK", "CONNECT", "PROPFIND", "PUT", "PATCH", "DELETE", "POST", "GET"):
            if method in allowed:
                continue
            answer = app.open(path, method=method, headers={"Cookie": "crmkit_session=secret-cookie"})
            assert answer.status_code == 405, (path, method, answer.status_code)
            assert set(answer.headers["Allow"].split(", ")) - {"OPTIONS"} == allowed, (path, method)
            assert b"secret-cookie" not in answer.get_data()  # TRACE echoes nothing back
    health, head = app.get("/health"), app.head("/health")
    assert (health.status_code, head.status_code, head.get_data()) == (200, 200, b"")


def test_a_chunked_body_over_the_limit_is_refused_by_the_api_and_the_console_alike(crm: Any) -> None:
    app = create_app(crm, settings=ApiSettings(max_body=4096))
    upload = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="khach.csv"\r\nContent-Type: text/csv\r\n\r\n'
        + "Lý Thu,0912345678\n".encode() * 700_000
        + b"\r\n--b--\r\n"
    )  # 12 MB: over the console's 10 MB
    for path, body, content_type in (
        ("/customers", b'{"name": "' + b"x" * 5000 + b'"}', "application/json"),
        ("/console/sign-in", upload, "multipart/form-data; boundary=b"),
    ):
        environ = EnvironBuilder(path=path, method="POST", headers={"Transfer-Encoding": "chunked"}).get_environ()
        environ.pop("CONTENT_LENGTH", None)  # chunked: no length, the server marks the stream as ending
        environ.update({"wsgi.input": io.BytesIO(body), "wsgi.input_terminated": True, "CONTENT_TYPE": content_type})
        answered: list[str] = []
        b"".join(app(environ, lambda status, headers, exc=None: answered.append(status)))  # noqa: B023 - called here
        assert answered[0].startswith("413"), (path, answered)
