"""Hooks the service plugin publishes: other plugins implement them to react to cases.

All three run inside the transaction of the change (``session``): raising rolls the change back. ``case`` is the
plugin's attrs ``Case`` (``id``, ``customer_id``, ``subject``, ``channel``, ``category``, ``priority``, ``status``,
``assignee``, ``team``, the SLA times in UTC, ``watchers``); read its attributes and never import
``crmkit_service``. Implement them with ``@hookimpl(optionalhook=True)`` so your plugin also loads without it.
"""

from __future__ import annotations

from typing import Any

from crmkit import hookspec


@hookspec
def crmkit_case_opened(crm: Any, case: Any, session: Any) -> None:
    """A case was opened (``crm.service.open``), its SLA due times set, in the same transaction."""


@hookspec
def crmkit_case_resolved(crm: Any, case: Any, session: Any) -> None:
    """A case became ``resolved`` (``case.resolution`` says how, ``case.resolved_at`` when), in the same transaction."""


@hookspec
def crmkit_sla_breached(crm: Any, case: Any, target: str, session: Any) -> None:
    """A case missed an SLA target: ``target`` is ``first_response`` or ``resolution``. Called once per case and
    target by ``crm.service.run_due`` (the worker's ``service.run-due`` job, ``crmkit service run-due``), in the
    transaction marking the breach: escalate here (reassign, notify, raise the priority)."""
