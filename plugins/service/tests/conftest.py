"""Fixtures of the service plugin's tests: a controllable clock for SLA times, and a listener plugin recording the
hooks the service publishes (``crmkit_case_opened``, ``crmkit_case_resolved``, ``crmkit_sla_breached``), and
``together`` for racing writers."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from crmkit import Plugin, hookimpl

ICT = ZoneInfo("Asia/Ho_Chi_Minh")


class Clock:
    """What ``utcnow`` answers inside the service while the test runs; ``at(...)`` sets it (Vietnam time)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 7, 9, 0, tzinfo=ICT)

    def at(self, *parts: int) -> datetime:
        self.now = datetime(*parts, tzinfo=ICT)
        return self.now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Freeze the service's notion of now (Monday 7/12/2026 09:00 in Hồ Chí Minh City unless moved)."""
    frozen = Clock()
    monkeypatch.setattr("crmkit_service.service.utcnow", frozen)
    return frozen


class Listener:
    """A third-party plugin implementing the service's hooks; it records what it was called with."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, str | None]] = []

    @hookimpl
    def crmkit_case_opened(self, case: Any, session: Any) -> None:
        assert session is not None
        self.calls.append(("opened", case.id, case.status))

    @hookimpl
    def crmkit_case_resolved(self, case: Any) -> None:
        self.calls.append(("resolved", case.id, case.resolution))

    @hookimpl
    def crmkit_sla_breached(self, case: Any, target: str) -> None:
        self.calls.append(("breached", case.id, target))


@pytest.fixture
def listener() -> Listener:
    return Listener()


@pytest.fixture
def scrm(crm_factory: Any, listener: Listener) -> Any:
    """A CRM with the service plugin and the listener plugin."""
    return crm_factory(plugins=["service", Plugin("listener", hooks=listener, requires=("service",))])


def run_together(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls in threads released at the same moment; their results (or exceptions) in order."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int, call: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            results[index] = call()
        except Exception as exc:  # noqa: BLE001 - handed back to the test
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


@pytest.fixture
def together() -> Callable[..., list[Any]]:
    """``together(call, call, …)``: the calls run in threads released at once (see :func:`run_together`)."""
    return run_together


@pytest.fixture
def run(crm: Any) -> Callable[..., Any]:
    """``run("service", "cases", "list")``: the root command line on ``crm``'s database, as an operator runs it."""
    from click.testing import CliRunner

    from crmkit.cli.context import CLIContext
    from crmkit.cli.main import cli

    url = crm.engine.url.render_as_string(hide_password=False)

    def invoke(*args: str) -> Any:
        return CliRunner().invoke(cli, ["--db", url, *args], obj=CLIContext(plugins=["service"]))

    return invoke
