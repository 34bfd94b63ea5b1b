"""Hooks the sales plugin publishes: other plugins implement them to react to deals, orders and payments.

All run inside the sales transaction that caused them (``session``), after the sales rows
are written: raising rolls the whole sale back. Objects are the sales plugin's attrs value
objects; other plugins read their attributes and never import ``crmkit_sales``.
"""

from __future__ import annotations

from typing import Any

from crmkit import hookspec


@hookspec
def crmkit_order_placed(crm: Any, order: Any, session: Any) -> None:
    """An order was placed (directly or from an accepted quote), in the same transaction.

    ``order`` has ``id``, ``number``, ``customer_id``, ``currency``, ``status``, ``placed_at`` (UTC),
    ``owner``, ``subtotal_minor``, ``discount_minor``, ``tax_minor``, ``total_minor`` (integer minor
    units) and ``lines``; each line has ``product_id``, ``sku``, ``name``, ``category``, ``quantity``
    (Decimal), ``unit_price_minor``, ``discount_minor``, ``tax_rate`` (Decimal, e.g. 0.08) and
    ``total_minor`` (tax included), ``discounts`` (the vouchers applied when it was placed: ``code``,
    ``amount_minor``, ``label``; empty when re-delivered from storage). Re-delivery of the same order id must not
    double-count.
    """


@hookspec
def crmkit_order_discounts(crm: Any, order_draft: Any, codes: Any, session: Any) -> Any:
    """Voucher ``codes`` were given for an order being placed: return the discounts of the codes your plugin issued.

    Called in the sale's transaction, after the lines are priced and before the order is written.
    ``order_draft`` has ``customer_id``, ``currency``, ``placed_at``, ``lines`` (as in ``crmkit_order_placed``),
    ``subtotal_minor``, ``discount_minor``, ``tax_minor``, ``total_minor`` and ``net_minor`` (before VAT);
    ``codes`` is a tuple of texts. Return a list of discount lines — mappings with ``code`` (as given),
    ``amount_minor`` (a positive int in the order's currency, taken off before VAT) and ``label`` — for the
    codes you know, ``[]`` or None for the others. Raise ``crmkit.ValidationError`` (field ``vouchers``) to refuse
    a code you issued (used, cancelled, another customer's): the order is not placed. A code no plugin claims is
    refused by sales. Sales spreads the amounts over the lines; ``crmkit_order_placed`` then receives the order
    with ``discounts`` (``code``, ``amount_minor``, ``label``): mark your codes used there, in the same transaction.
    """


@hookspec
def crmkit_orders_imported(crm: Any, customer_ids: Any, session: Any) -> None:
    """Past orders of these customers were imported (``crmkit sales orders import``), in the batch's transaction.

    Fired for every committed batch, with or without ``--with-hooks``: keep data derived from orders
    (aggregates, summaries) right here. History is not a sale happening now, so ``crmkit_order_placed``
    (earning, campaigns, webhooks) fires for imported orders only when the import asks for it; a plugin
    that earns from orders offers its own backfill (``crmkit loyalty backfill``). ``customer_ids`` is a
    sorted list of ints.
    """


@hookspec
def crmkit_order_refunded(crm: Any, order: Any, refund: Any, session: Any) -> None:
    """Money was refunded on an order (full or partial), in the same transaction.

    ``refund`` has ``id``, ``order_id``, ``amount_minor`` (positive), ``currency``, ``reason``, ``at``;
    ``order.refunded_minor`` is the running total refunded, including this refund.
    """


@hookspec
def crmkit_order_cancelled(crm: Any, order: Any, session: Any) -> None:
    """An order was cancelled before delivery (nothing was paid, or payments were refunded), in the same transaction."""


@hookspec
def crmkit_deal_stage_changed(crm: Any, deal: Any, old_stage: Any, new_stage: Any, session: Any) -> None:
    """A deal moved between stages of its pipeline (``old_stage`` is None for a new deal), in the same transaction.

    Stages have ``id``, ``name``, ``position``, ``probability`` (Decimal 0–1), ``outcome`` (None, "won" or "lost").
    """


@hookspec
def crmkit_payment_recorded(crm: Any, order: Any, payment: Any, session: Any) -> None:
    """A payment was recorded against an order, in the same transaction.

    ``payment`` has ``id``, ``order_id``, ``amount_minor``, ``currency``, ``method``, ``paid_at``;
    ``order.paid_minor`` / ``order.outstanding_minor`` already include it.
    """
