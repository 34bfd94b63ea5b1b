"""Fixtures of the service plugin's tests: a controllable clock for SLA times, and a listener plugin recording the
hooks the service publishes (``crmkit_case_opened``, ``crmkit_case_resolved``, ``crmkit_sla_breached``)."""

from __future__ import annotations

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
