"""Hooks the loyalty plugin publishes: other plugins implement them to react to points and tier changes.

Both run inside the transaction that caused the change (``session``): raising rolls the whole
change back. Objects are the loyalty plugin's attrs value objects; read their attributes and
never import ``crmkit_loyalty``. Implement them with ``@hookimpl(optionalhook=True)`` so your
plugin also loads without loyalty.
"""

from __future__ import annotations

from typing import Any

from crmkit import hookspec


@hookspec
def crmkit_points_changed(crm: Any, entry: Any, balance: Any, session: Any) -> None:
    """A ledger entry was written (earning, reversal, redemption, grant, deduction, expiry), in the same transaction.

    ``entry`` has ``id``, ``program`` (code), ``customer_id``, ``points`` (+/-; ``int``, or ``Decimal`` in a
    program with fractional points), ``kind`` (earn | reverse | redeem | expire | adjust), ``reason``,
    ``source_kind``, ``source_id``, ``order_id``, ``created_at`` (UTC), ``expires_at`` and ``note``;
    ``balance`` is the member's balance after it. ``crmkit loyalty expire`` calls it once per expired lot.
    """


@hookspec
def crmkit_tier_changed(crm: Any, customer_id: int, program: Any, old_tier: Any, new_tier: Any, session: Any) -> None:
    """A member moved to another tier (promotion or demotion), in the same transaction.

    ``program`` has ``code``, ``name`` and ``currency``; ``old_tier`` (None for a new member) and ``new_tier``
    have ``code``, ``name``, ``rank`` (0 = lowest), ``threshold`` and ``multiplier`` (Decimal). Called when a
    purchase, refund or cancellation changes the member's qualifying total, and by ``crmkit loyalty evaluate-tiers``.
    """
