"""The webhook event types sales emits (``crm.events.emit`` in the order and pipeline services)."""

from __future__ import annotations

from crmkit import EventType, hookimpl


@hookimpl
def crmkit_webhook_events() -> list[EventType]:
    return [
        EventType("order.placed", "an order was placed (data: order, with lines; amounts in integer minor units)"),
        EventType("order.refunded", "money was refunded on an order (data: order, refund)"),
        EventType("deal.stage_changed", "a deal was opened or moved between stages (data: deal, old_stage, new_stage)"),
    ]
