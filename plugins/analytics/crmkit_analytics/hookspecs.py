"""Hooks the analytics plugin publishes."""

from __future__ import annotations

from typing import Any

from crmkit import hookspec


@hookspec
def crmkit_value_transactions(crm: Any) -> Any:
    """Return a SQLAlchemy selectable of purchases: one row per transaction with columns
    ``customer_id``, ``occurred_at`` (UTC), ``amount_minor`` (net of refunds, integer minor units),
    ``currency``, and optionally ``margin_minor`` and ``category``.

    Analytics unions every implementation, so any plugin holding purchases (sales, a POS
    connector) feeds RFM, PCV, CLV and the customer types. Implement it with
    ``@hookimpl(optionalhook=True)`` so your plugin also loads without analytics.
    """
