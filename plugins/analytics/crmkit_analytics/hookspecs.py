"""Hooks the analytics plugin publishes."""

from __future__ import annotations

from typing import Any

from crmkit import hookspec


@hookspec
def crmkit_value_transactions(crm: Any) -> Any:
    """Return a SQLAlchemy selectable of purchases: one row per transaction with columns
    ``customer_id``, ``occurred_at`` (UTC), ``amount_minor`` (net of refunds, integer minor units),
    ``currency``, and optionally ``margin_minor``, ``category`` and ``channel`` (missing ones read as NULL).

    Analytics unions every implementation, so any plugin holding purchases (sales, a POS
    connector) feeds RFM, PCV, CLV and the customer types. A row counts as a purchase when its net
    amount is positive (a fully refunded order, net 0, does not). Called once per CRM (the result is
    reused), outside any transaction. Implement it with ``@hookimpl(optionalhook=True)`` so your
    plugin also loads without analytics; keep the per-customer aggregates current by calling
    ``crm.analytics.refresh([customer_id])`` in the transaction that changes a customer's purchases
    (sales' order hooks do this for sales), or run ``crmkit analytics rebuild`` after bulk changes.
    """
