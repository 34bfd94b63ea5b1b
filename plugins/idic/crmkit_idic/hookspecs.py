"""Hooks the IDIC plugin publishes."""

from __future__ import annotations

from typing import Any

from crmkit import hookspec


@hookspec
def crmkit_idic_identifiers(crm: Any) -> Any:
    """Return a SQLAlchemy selectable of extra identifiers: columns ``customer_id``, ``kind``, ``value``.

    Identify unions every implementation with the core's e-mails, phones, external ids and social
    handles (e.g. loyalty returns its card numbers as kind ``loyalty_card``). Values should already be
    normalized; Identify lower-cases and trims them. Two customers sharing a value of a contributed
    kind match with confidence 0.99. Called at the start of each Identify step, inside its transaction.
    Implement it with ``@hookimpl(optionalhook=True)`` so your plugin also loads without IDIC.
    """


@hookspec
def crmkit_idic_step_started(crm: Any, run: Any, step: str, session: Any) -> None:
    """A step of IDIC run ``run`` (an ``IdicRun``) is about to run, in the transaction recording its start.

    Raising marks the step failed (the run can be resumed later).
    """


@hookspec
def crmkit_idic_step_finished(crm: Any, run: Any, step: str, result: Any, session: Any) -> None:
    """A step finished: ``result`` is its ``StepResult`` (counts and report), in the step's own transaction.

    Runs in the same transaction as the step's writes: raising rolls the step back and marks it failed.
    """
