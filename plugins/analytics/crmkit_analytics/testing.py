"""A table-backed purchase source for tests and demos: what a plugin holding purchases looks like to analytics.

``SOURCE`` is a ``crmkit.Plugin`` implementing ``crmkit_value_transactions`` over its own table
(``test_purchases``); :class:`Shop` writes purchases the way sales does — the row, then
``crmkit_order_placed`` / ``crmkit_order_refunded`` in the same transaction — so the incremental
aggregates are exercised exactly as sales drives them. ``crm_factory(plugins=["analytics", SOURCE])``.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa

from crmkit import Plugin, hookimpl
from crmkit.core.types import Id, UTCDateTime

def cdnow_file(name: str) -> Path:
    """A CDNOW data file shipped in the ``lifetimes`` wheel (``CDNOW_sample.txt``, ``cdnow_customers_summary.csv``…).

    Located through the distribution's metadata: lifetimes' own code (which needs an old pandas)
    is never imported. Install it with the test extra: ``pip install -e 'plugins/analytics[test]'``.
    """
    try:
        path = Path(str(distribution("lifetimes").locate_file(f"lifetimes/datasets/{name}")))
    except PackageNotFoundError:
        raise FileNotFoundError("the CDNOW data ships in the `lifetimes` package: "
                                "pip install -e 'plugins/analytics[test]' (or pip install lifetimes)") from None
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing from the installed lifetimes package")
    return path


#: A date to compute measures for in tests: ahead of the real clock, so customers created now already exist.
AS_OF = datetime(datetime.now(timezone.utc).year + 1, 6, 30, 12, 0, tzinfo=timezone.utc)

source_metadata = sa.MetaData()
purchases = sa.Table(
    "test_purchases", source_metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("customer_id", Id, nullable=False, index=True),
    sa.Column("occurred_at", UTCDateTime, nullable=False),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("margin_minor", sa.BigInteger),
    sa.Column("category", sa.String(50)),
    sa.Column("channel", sa.String(30)),
)


class PurchaseSource:
    """Hook implementations of the stand-in source."""

    @hookimpl
    def crmkit_value_transactions(self, crm: Any) -> Any:
        c = purchases.c
        return sa.select(c.customer_id, c.occurred_at, c.amount_minor, c.currency, c.margin_minor, c.category, c.channel)


#: The source as a plugin object to pass to ``CRM(..., plugins=[...])``.
SOURCE = Plugin(name="testsource", hooks=(PurchaseSource(),), description="purchases from a test table")


class Shop:
    """Writes purchases the way sales does: rows, then ``crmkit_order_placed`` in the same transaction."""

    def __init__(self, crm: Any) -> None:
        self.crm = crm
        source_metadata.create_all(crm.engine)

    def buy(self, customer_id: int, when: datetime | None = None, amount: int = 100_000, currency: str = "VND",
            *, days_ago: float | None = None, margin: int | None = None, category: str | None = None,
            channel: str | None = None) -> int:
        """Record one purchase; ``days_ago`` counts back from ``AS_OF``."""
        at = when if when is not None else AS_OF - timedelta(days=days_ago or 0)
        with self.crm.transaction() as session:
            purchase_id = session.connection().execute(purchases.insert().values(
                customer_id=customer_id, occurred_at=at, amount_minor=amount, currency=currency, margin_minor=margin,
                category=category, channel=channel).returning(purchases.c.id)).scalar_one()
            order = SimpleNamespace(id=purchase_id, customer_id=customer_id, currency=currency, total_minor=amount)
            self.crm.hooks.call("crmkit_order_placed", crm=self.crm, order=order, session=session)
        return purchase_id

    def refund(self, purchase_id: int, amount: int) -> None:
        """Net a refund into a purchase and fire ``crmkit_order_refunded`` like sales."""
        with self.crm.transaction() as session:
            conn = session.connection()
            row = conn.execute(sa.select(purchases).where(purchases.c.id == purchase_id)).mappings().one()
            conn.execute(purchases.update().where(purchases.c.id == purchase_id)
                         .values(amount_minor=row["amount_minor"] - amount))
            order = SimpleNamespace(id=purchase_id, customer_id=row["customer_id"], currency=row["currency"])
            refund = SimpleNamespace(order_id=purchase_id, amount_minor=amount, currency=row["currency"])
            self.crm.hooks.call("crmkit_order_refunded", crm=self.crm, order=order, refund=refund, session=session)

    def insert_quietly(self, rows: list[dict[str, Any]]) -> None:
        """Bulk rows that bypass the order hooks (an import): only a rebuild sees them."""
        with self.crm.transaction() as session:
            session.connection().execute(purchases.insert(), rows)
