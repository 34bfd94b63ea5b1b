"""API writes under a kill -9 of the server: a POST retried with its Idempotency-Key is applied exactly once."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any

from crmkit.testing import add_user


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start(url: str, port: int) -> subprocess.Popen[bytes]:
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
            "--workers",
            "2",
            "--threads",
            "2",
            "--no-access-log",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise AssertionError("crmkit serve did not start")


def _post(port: int, token: str, key: str) -> int | None:
    """POST one customer with ``key``; the status, or None when the server died under it."""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request(
            "POST",
            "/customers",
            body=json.dumps({"name": f"Khách {key}", "external_id": key}),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json", "Idempotency-Key": key},
        )
        return conn.getresponse().status
    except (OSError, http.client.HTTPException):
        return None


def _retried(port: int, token: str, key: str, tries: int = 5) -> int | None:
    """POST ``key`` until the server answers (a restarted server on a loaded machine may drop a first connection)."""
    for _ in range(tries):
        status = _post(port, token, key)
        if status is not None:
            return status
        time.sleep(1)
    return None


def test_posts_cut_by_a_kill_9_of_the_server_are_applied_once_when_retried(crm_factory: Any) -> None:
    crm = crm_factory(plugins=None)  # the command loads every installed plugin
    add_user(crm, "shop", roles=["administrator"])
    token = crm.users.create_token("shop", "crash test").secret
    url = crm.engine.url.render_as_string(hide_password=False)
    port = _free_port()
    server = _start(url, port)
    answered: dict[str, int | None] = {}
    stop = threading.Event()

    def client(n: int) -> None:
        i = 0
        while not stop.is_set():
            key = f"c{n}-{i}"
            answered[key] = _post(port, token, key)
            i += 1

    clients = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for thread in clients:
        thread.start()
    time.sleep(3)
    os.killpg(server.pid, signal.SIGKILL)  # master and workers, mid-request
    server.wait()
    stop.set()
    for thread in clients:
        thread.join(timeout=60)
    assert any(status == 201 for status in answered.values()), answered
    server = _start(url, port)
    try:
        for key in answered:  # every client retries what it sent, whatever it heard, until it hears an answer
            assert _retried(port, token, key) == 201, key
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    created = {c.external_id for c in crm.customers.find(limit=1000).items}
    assert created == set(answered)  # each exactly once: external ids are unique, so none was made twice
    assert len(crm.customers.find(limit=1000).items) == len(answered)
