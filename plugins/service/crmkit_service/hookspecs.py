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


@hookspec
def crmkit_service_customer_group(crm: Any, customer_id: int, session: Any) -> str | None:
    """The group a customer belongs to for service (e.g. a loyalty tier code such as ``diamond``), or None.

    Asked when a case is opened, inside its transaction: the SLA rule of the group and the case's priority sets
    the due times (``crm.service.sla.set_rule``), and routing rules may match it. The first answer that is not
    None wins; raising rolls the opening back."""


@hookspec
def crmkit_service_sla_warning(crm: Any, case: Any, target: str, due_at: Any, session: Any) -> None:
    """A case's SLA target (``first_response`` | ``resolution``) is due within its rule's ``warn_minutes``: called
    once per case and target by ``crm.service.run_due``, in the transaction recording the warning."""


@hookspec
def crmkit_service_case_escalated(crm: Any, case: Any, target: str, actions: Any, session: Any) -> None:
    """A breached case was escalated by its SLA rule (``actions``: a dict with ``escalate_to``, ``escalate_team``,
    ``notify``, ``raise_priority`` as applied; ``case`` as it is now), in the transaction marking the breach."""


@hookspec
def crmkit_service_csat_requested(crm: Any, case: Any, link: str, session: Any) -> bool | str | None:
    """A resolved case's satisfaction survey is due: ``link`` is the path answering it (a one-time token). A
    plugin that sends it to the customer (campaigns, respecting consent and caps) returns True, or the reason it
    could not (``"no_consent"``…: audited on the case as ``csat_not_sent``); with no taker the survey stays
    pending, to be answered by CLI or API. Runs in the transaction resolving the case."""


@hookspec
def crmkit_service_case_stats(crm: Any, since: Any) -> list[dict[str, Any]] | None:
    """Implemented by the service plugin for QCI/analytics: per customer with cases opened since ``since`` (aware
    datetime), ``{"customer_id", "cases", "complaints", "breached", "csat_average"}`` rows. Call it through
    ``crm.hooks.call("crmkit_service_case_stats", since=…)``."""
