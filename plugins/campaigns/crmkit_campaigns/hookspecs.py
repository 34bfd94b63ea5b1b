"""Hooks the campaigns plugin publishes: channel adapters other plugins add, and message events they react to.

A vendor plugin (say ``crmkit-zalo``) implements ``crmkit_channel_adapters`` to add a channel,
and ``crmkit_channels`` (a core hook) so that consents can be recorded for it. Implement them
with ``@hookimpl(optionalhook=True)`` when your plugin should also load without campaigns.
"""

from __future__ import annotations

from typing import Any

from crmkit import hookspec


@hookspec
def crmkit_channel_adapters(crm: Any) -> dict[str, Any] | None:
    """Return ``{channel name: adapter}``: the adapters that deliver campaign messages on those channels.

    Called each time the service needs adapters — by every dispatch, and while a run or a schedule
    checks that its channel can be delivered (then inside that transaction): build adapters cheaply and
    connect in ``send``. Results are merged in plugin dependency order, so a plugin that depends on
    another may replace its adapter for a channel; ``crmkit campaigns channel set`` (the
    ``campaigns.channels`` setting) overrides both.
    An adapter has ``name`` (e.g. ``"zalo-oa"``), ``address_kind`` (``"email"`` or ``"phone"``: which of
    the customer's contact points it sends to), ``idempotent`` (True when delivering twice with the same
    ``message.idempotency_key`` reaches the person once), ``send(message) -> provider message id`` and
    optionally ``close()``. ``send`` receives a ``crmkit_campaigns.channels.OutgoingMessage`` and raises
    ``crmkit_campaigns.channels.TransientError`` (retried with backoff) or ``PermanentError`` (failed).
    ``send`` runs after commit, never inside a transaction.
    """


@hookspec
def crmkit_message_event(crm: Any, event: Any, session: Any) -> None:
    """Something happened to a campaign message, in the transaction that records it.

    ``event`` has ``kind`` (``queued`` is not reported; ``sent``, ``failed``, ``delivered``, ``bounced``,
    ``opened``, ``clicked``, ``unsubscribed``, ``responded``, ``converted``), ``message_id``,
    ``campaign_id``, ``customer_id``, ``channel``, ``at`` (UTC) and ``detail`` (a dict: the clicked
    ``url``, the bounce ``reason``, the ``order_id`` and ``amount_minor`` of a conversion…).
    Raising rolls the recording back (the tracking request then fails and the provider retries).
    """
