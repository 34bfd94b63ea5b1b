"""Scheduled jobs a plugin declares through ``crmkit_jobs``, run by ``crmkit worker`` (:mod:`crmkit.worker`)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from crmkit.crm import CRM

_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_-]*)+$")


@attrs.frozen
class Job:
    """Work that runs every ``every`` (e.g. ``loyalty.expire``), on one worker at a time across processes.

    ``run(crm)`` gets the CRM acting as the system; its return value is ignored and an exception is
    recorded on the job (it runs again at its next time).
    """

    name: str = attrs.field()
    every: timedelta = attrs.field()
    run: Callable[[CRM], Any]
    description: str = ""

    @name.validator
    def _check_name(self, attribute: attrs.Attribute[str], value: str) -> None:
        if not _NAME.match(value):
            raise ValueError(f"job name must be dotted lower-case words like 'loyalty.expire', got {value!r}")

    @every.validator
    def _check_every(self, attribute: attrs.Attribute[timedelta], value: timedelta) -> None:
        if value <= timedelta(0):
            raise ValueError(f"job {self.name}: every must be a positive timedelta, got {value!r}")
