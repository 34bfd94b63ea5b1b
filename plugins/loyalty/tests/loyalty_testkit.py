"""Test helpers for the loyalty plugin: a stand-in sales plugin that publishes the real sales hookspecs.

The stand-in fires ``crmkit_order_placed`` / ``_refunded`` / ``_cancelled`` with ``crmkit.testing``'s typed
sales double (``SalesOrder``, ``SalesLine``, ``SalesRefund``: every attribute documented in
``crmkit_sales/hookspecs.py``), keeps its orders in memory,
and offers the small part of ``crm.sales`` loyalty reads (``orders.list`` / ``orders.refunds``
for backfill, ``crmkit_value_transactions`` for the repeat-purchase report).
"""

from __future__ import annotations

import itertools
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

try:
    import crmkit_sales.hookspecs  # noqa: F401 - installed, or not yet
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "sales"))

from crmkit import Plugin, hookimpl
from crmkit.testing import SalesLine as Line
from crmkit.testing import SalesOrder as Order
from crmkit.testing import SalesRefund as Refund

LOYALTY = "loyalty"


_ids = itertools.count(1000)


class StandInOrders:
    """``crm.sales.orders`` as far as loyalty uses it."""

    def __init__(self, crm: Any) -> None:
        self._crm = crm
        self.placed: dict[int, Order] = {}
        self.refunded: dict[int, list[Refund]] = {}

    def list(self, *, since: datetime | None = None, until: datetime | None = None, limit: int = 100) -> list[Order]:
        found = [
            o
            for o in self.placed.values()
            if (since is None or o.placed_at >= since) and (until is None or o.placed_at < until)
        ]
        return sorted(found, key=lambda o: (o.placed_at, o.id), reverse=True)[:limit]

    def refunds(self, order_id: int) -> list[Refund]:
        return list(self.refunded.get(order_id, []))


class StandInSales:
    """``crm.sales`` of the stand-in: place, refund and cancel orders, firing the real hookspecs."""

    def __init__(self, crm: Any) -> None:
        self._crm = crm
        self.orders = StandInOrders(crm)

    def place(
        self,
        customer_id: int,
        total_minor: int,
        *,
        placed_at: datetime | None = None,
        tax_minor: int = 0,
        lines: tuple[Line, ...] = (),
        currency: str = "VND",
        fire: bool = True,
    ) -> Order:
        order = Order(
            next(_ids),
            customer_id,
            total_minor,
            placed_at or self._crm.now() - timedelta(seconds=1),
            currency=currency,
            tax_minor=tax_minor,
            lines=tuple(lines),
        )
        self.orders.placed[order.id] = order
        if fire:
            self.deliver_again(order)
        return order

    def deliver_again(self, order: Order) -> None:
        """Fire ``crmkit_order_placed`` for an order (a retry of the same event)."""
        with self._crm.transaction() as session:
            self._crm.hooks.call("crmkit_order_placed", order=order, session=session)

    def refund(self, order: Order, amount_minor: int) -> Refund:
        order.refunded_minor += amount_minor
        if order.refunded_minor >= order.total_minor:
            order.status = "refunded"
        refund = Refund(next(_ids), order.id, amount_minor, order.currency, self._crm.now())
        self.orders.refunded.setdefault(order.id, []).append(refund)
        with self._crm.transaction() as session:
            self._crm.hooks.call("crmkit_order_refunded", order=order, refund=refund, session=session)
        return refund

    def cancel(self, order: Order) -> None:
        order.status = "cancelled"
        with self._crm.transaction() as session:
            self._crm.hooks.call("crmkit_order_cancelled", order=order, session=session)


class _StandInHooks:
    @hookimpl
    def crmkit_services(self, crm: Any) -> dict[str, Any]:
        return {"sales": StandInSales(crm)}

    @hookimpl
    def crmkit_value_transactions(self, crm: Any) -> Any:
        orders = [o for o in crm.sales.orders.placed.values() if o.status != "cancelled"]
        if not orders:
            return None
        return sa.union_all(
            *[
                sa.select(
                    sa.literal(o.customer_id).label("customer_id"),
                    sa.literal(o.placed_at).label("occurred_at"),
                    sa.literal(o.total_minor - o.refunded_minor).label("amount_minor"),
                    sa.literal(o.currency).label("currency"),
                )
                for o in orders
            ]
        ).subquery()


#: A "sales" plugin publishing the real sales hookspecs, without the sales tables.
SALES = Plugin(
    name="sales",
    hookspecs=("crmkit_sales.hookspecs",),
    hooks=(_StandInHooks(),),
    description="stand-in for the sales plugin in loyalty's tests",
)
PLUGINS = [SALES, LOYALTY]


def make(crm_factory: Any, **kwargs: Any) -> Any:
    """A CRM with the stand-in sales plugin and loyalty."""
    return crm_factory(plugins=PLUGINS, **kwargs)


def days_ago(days: float) -> datetime:
    """A UTC moment ``days`` ago."""
    return datetime.now(UTC) - timedelta(days=days)


class Listener:
    """A plugin implementing loyalty's published hooks, recording what it is told."""

    def __init__(self) -> None:
        self.points: list[tuple[int, str, Any, Any]] = []
        self.tiers: list[tuple[int, str | None, str]] = []
        self.plugin = Plugin(name="listener", hooks=(self,), description="records loyalty hooks")

    @hookimpl(optionalhook=True)
    def crmkit_points_changed(self, entry: Any, balance: Any) -> None:
        self.points.append((entry.customer_id, entry.reason, entry.points, balance))

    @hookimpl(optionalhook=True)
    def crmkit_tier_changed(self, customer_id: int, old_tier: Any, new_tier: Any) -> None:
        self.tiers.append((customer_id, old_tier.code if old_tier else None, new_tier.code))


def ledger_count(crm: Any) -> int:
    """How many ledger entries the database holds."""
    from crmkit_loyalty.models import ledger

    with crm.reading() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(ledger)).scalar_one()
