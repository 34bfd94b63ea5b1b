"""The sales plugin's tables (SQLAlchemy Core), linked to the core's ``customers.id``.

Money is integer minor units beside a currency code. Quantities, percentages, tax rates and
probabilities are exact decimals stored as scaled integers (:class:`ScaledDecimal`), so sums
in SQL stay exact on SQLite as well as PostgreSQL and nothing ever passes through a float.
Order and quote numbers are derived from ids (``SO-000042``, ``Q-000042``), never stored twice.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from crmkit.plugin_api import Id, JSONType, UTCDateTime, customer_fk, new_metadata

metadata = new_metadata()


class ScaledDecimal(sa.types.TypeDecorator[Decimal]):
    """An exact Decimal with ``scale`` places, stored as an integer (``Decimal("2.5")`` at scale 3 is ``2500``)."""

    impl = sa.BigInteger
    cache_ok = True

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.scale = scale

    def process_bind_param(self, value: Decimal | int | None, dialect: sa.Dialect) -> int | None:
        if value is None:
            return None
        scaled = Decimal(value).scaleb(self.scale)
        if scaled != scaled.to_integral_value():
            raise ValueError(f"{value} has more than {self.scale} decimal places")
        return int(scaled)

    def process_result_value(self, value: int | None, dialect: sa.Dialect) -> Decimal | None:
        if value is None:
            return None
        number = Decimal(int(value)).scaleb(-self.scale)  # shown without trailing zeros: 3, 2.5, 0.08
        return number.quantize(Decimal(1)) if number == number.to_integral_value() else number.normalize()

    def __repr__(self) -> str:
        return f"ScaledDecimal({self.scale})"


Money = sa.BigInteger  # integer minor units (VND: đồng; USD: cents)
Quantity = ScaledDecimal(3)  # 2.5 kg, 1.000 hour
Percent = ScaledDecimal(2)  # 12.5 (%)
Rate = ScaledDecimal(4)  # 0.08 (VAT), 0.25 (win probability)


def _currency() -> sa.Column[str]:
    return sa.Column("currency", sa.String(3), nullable=False)


def _now_columns() -> list[sa.Column[Any]]:
    return [sa.Column("created_at", UTCDateTime, nullable=False), sa.Column("updated_at", UTCDateTime, nullable=False)]


products = sa.Table(
    "sales_products",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("sku", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.String(300), nullable=False),
    sa.Column("kind", sa.String(10), nullable=False),  # product | service
    sa.Column("unit", sa.String(30), nullable=False),  # cái, gói, kg, giờ …
    sa.Column("category", sa.String(100)),
    sa.Column("price_minor", Money, nullable=False),  # list price
    _currency(),
    sa.Column("cost_minor", Money),  # unit cost, when known (margins)
    sa.Column("tax_rate", Rate, nullable=False),  # default VAT rate of its lines
    sa.Column("description", sa.Text),
    sa.Column("active", sa.Boolean, nullable=False),
    *_now_columns(),
    sa.CheckConstraint("price_minor >= 0", name="price_not_negative"),
)

price_lists = sa.Table(
    "sales_price_lists",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    _currency(),
    sa.Column("group_tag", sa.String(100)),  # customers with this tag …
    sa.Column("group_condition", JSONType),  # … or matching {"field", "op", "value"}; neither: everyone
    sa.Column("valid_from", sa.Date),  # inclusive; NULL: since ever
    sa.Column("valid_until", sa.Date),  # inclusive; NULL: open-ended
    sa.Column("active", sa.Boolean, nullable=False),
    *_now_columns(),
    sa.CheckConstraint("group_tag IS NULL OR group_condition IS NULL", name="one_group"),
)

price_list_items = sa.Table(
    "sales_price_list_items",
    metadata,
    sa.Column("price_list_id", Id, sa.ForeignKey("sales_price_lists.id"), primary_key=True),
    sa.Column("product_id", Id, sa.ForeignKey("sales_products.id"), primary_key=True, index=True),
    sa.Column("min_quantity", Quantity, primary_key=True),  # quantity break: applies from this quantity up
    sa.Column("price_minor", Money, nullable=False),
    sa.CheckConstraint("price_minor >= 0", name="price_not_negative"),
)

pipelines = sa.Table(
    "sales_pipelines",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    *_now_columns(),
)

stages = sa.Table(
    "sales_stages",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("pipeline_id", Id, sa.ForeignKey("sales_pipelines.id"), nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),  # open stages first, then won, then lost
    sa.Column("probability", Rate, nullable=False),  # 0–1
    sa.Column("outcome", sa.String(4)),  # NULL (open) | won | lost
    sa.UniqueConstraint("pipeline_id", "position"),
    sa.UniqueConstraint("pipeline_id", "name"),
)

deals = sa.Table(
    "sales_deals",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    customer_fk(),
    sa.Column("pipeline_id", Id, sa.ForeignKey("sales_pipelines.id"), nullable=False),
    sa.Column("stage_id", Id, sa.ForeignKey("sales_stages.id"), nullable=False),
    sa.Column("reached_position", sa.Integer, nullable=False),  # furthest open stage reached (won: the won stage)
    sa.Column("title", sa.String(300), nullable=False),
    sa.Column("owner", sa.String(100)),
    sa.Column("amount_minor", Money, nullable=False),
    _currency(),
    sa.Column("expected_close", sa.Date),
    sa.Column("source", sa.String(100)),
    sa.Column("status", sa.String(4), nullable=False),  # open | won | lost
    sa.Column("close_reason", sa.Text),
    sa.Column("opened_at", UTCDateTime, nullable=False),
    sa.Column("closed_at", UTCDateTime),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Index("ix_sales_deals_pipeline_id_stage_id_reached_position", "pipeline_id", "stage_id", "reached_position"),
    sa.Index(
        "ix_sales_deals_forecast", "status", "expected_close", "pipeline_id", "stage_id", "currency", "amount_minor"
    ),
    # covering: win rate and won amount per employee read the index only
    sa.Index("ix_sales_deals_owner_status_closed_at", "owner", "status", "closed_at", "currency", "amount_minor"),
)

deal_history = sa.Table(
    "sales_deal_history",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("deal_id", Id, sa.ForeignKey("sales_deals.id"), nullable=False),
    sa.Column("from_stage_id", Id, sa.ForeignKey("sales_stages.id")),
    sa.Column("to_stage_id", Id, sa.ForeignKey("sales_stages.id"), nullable=False),
    sa.Column("changed_at", UTCDateTime, nullable=False),
    sa.Column("changed_by", sa.String(100), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Index("ix_sales_deal_history_deal_id_changed_at", "deal_id", "changed_at"),
)


def _line_columns(*, free: bool = False) -> list[Any]:
    """Columns every document line (quote or order) has: a priced catalogue item with its discount and tax
    (``free``: or a free description, with no product, as imported order history may have)."""
    return [
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("product_id", Id, sa.ForeignKey("sales_products.id"), nullable=free),
        sa.Column("sku", sa.String(64), nullable=False),  # copied: the document keeps what was sold
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("unit", sa.String(30), nullable=False),
        sa.Column("category", sa.String(100)),
        sa.Column("quantity", Quantity, nullable=False),
        sa.Column("unit_price_minor", Money, nullable=False),
        sa.Column("price_list_id", Id, sa.ForeignKey("sales_price_lists.id")),  # where the price came from
        sa.Column("discount_percent", Percent),
        sa.Column("discount_minor", Money, nullable=False),
        sa.Column("tax_rate", Rate, nullable=False),
        sa.Column("net_minor", Money, nullable=False),  # after discount, before tax
        sa.Column("tax_minor", Money, nullable=False),
        sa.Column("total_minor", Money, nullable=False),  # tax included
        sa.Column("cost_minor", Money),  # unit cost at the time, when known
    ]


def _total_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column(name, Money, nullable=False)
        for name in ("subtotal_minor", "discount_minor", "tax_minor", "total_minor")
    ]


quotes = sa.Table(
    "sales_quotes",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("root_id", Id, sa.ForeignKey("sales_quotes.id"), index=True),  # the first version; NULL on it
    sa.Column("version", sa.Integer, nullable=False),
    customer_fk(),
    sa.Column("deal_id", Id, sa.ForeignKey("sales_deals.id"), index=True),
    sa.Column("owner", sa.String(100)),
    _currency(),
    sa.Column("price_list_id", Id, sa.ForeignKey("sales_price_lists.id")),  # chosen by the seller, if any
    sa.Column("status", sa.String(10), nullable=False),  # draft | sent | accepted | declined | expired
    sa.Column("issued_on", sa.Date, nullable=False),  # prices are resolved on this date
    sa.Column("valid_until", sa.Date, nullable=False),
    sa.Column("notes", sa.Text),
    *_total_columns(),
    sa.Column("sent_at", UTCDateTime),
    sa.Column("decided_at", UTCDateTime),
    sa.Column("superseded_at", UTCDateTime),  # a newer version replaced this one
    *_now_columns(),
)

quote_lines = sa.Table(
    "sales_quote_lines",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("quote_id", Id, sa.ForeignKey("sales_quotes.id"), nullable=False, index=True),
    *_line_columns(),
)

orders = sa.Table(
    "sales_orders",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    customer_fk(index=False),
    sa.Column("quote_id", Id, sa.ForeignKey("sales_quotes.id"), unique=True),
    sa.Column("deal_id", Id, sa.ForeignKey("sales_deals.id"), index=True),
    sa.Column("owner", sa.String(100)),
    _currency(),
    sa.Column("status", sa.String(10), nullable=False),  # placed | shipped | delivered | cancelled | refunded
    sa.Column("reference", sa.String(100), unique=True),  # in the system an imported order came from
    sa.Column("placed_at", UTCDateTime, nullable=False),
    sa.Column("shipped_at", UTCDateTime),
    sa.Column("delivered_at", UTCDateTime),
    sa.Column("cancelled_at", UTCDateTime),
    sa.Column("cancel_reason", sa.Text),
    *_total_columns(),
    sa.Column("margin_minor", Money),  # net (before tax) minus cost, when every line's cost is known
    sa.Column("paid_minor", Money, nullable=False),
    sa.Column("refunded_minor", Money, nullable=False),
    sa.Column("shipping_name", sa.String(300)),
    sa.Column("shipping_phone", sa.String(50)),
    sa.Column("shipping_address", sa.Text),
    sa.Column("notes", sa.Text),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.CheckConstraint("paid_minor >= 0 AND paid_minor <= total_minor", name="paid_range"),
    sa.CheckConstraint("refunded_minor >= 0 AND refunded_minor <= paid_minor", name="refunded_range"),
    sa.Index("ix_sales_orders_customer_id_placed_at", "customer_id", "placed_at"),
    # covering: revenue by month and per employee read the index only (millions of orders)
    sa.Index("ix_sales_orders_placed_at", "placed_at", "status", "currency", "total_minor", "refunded_minor"),
    sa.Index(
        "ix_sales_orders_owner_placed_at", "owner", "placed_at", "status", "currency", "total_minor", "refunded_minor"
    ),
)

order_lines = sa.Table(
    "sales_order_lines",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("order_id", Id, sa.ForeignKey("sales_orders.id"), nullable=False, index=True),
    *_line_columns(free=True),
    sa.Index("ix_sales_order_lines_product_id", "product_id"),
)

payments = sa.Table(
    "sales_payments",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("order_id", Id, sa.ForeignKey("sales_orders.id"), nullable=False, index=True),
    sa.Column("amount_minor", Money, nullable=False),
    _currency(),
    sa.Column("method", sa.String(30), nullable=False),
    sa.Column("paid_at", UTCDateTime, nullable=False),
    sa.Column("reference", sa.String(200)),
    sa.Column("note", sa.Text),
    sa.Column("recorded_by", sa.String(100), nullable=False),
    sa.CheckConstraint("amount_minor > 0", name="amount_positive"),
)

refunds = sa.Table(
    "sales_refunds",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("order_id", Id, sa.ForeignKey("sales_orders.id"), nullable=False, index=True),
    sa.Column("amount_minor", Money, nullable=False),
    _currency(),
    sa.Column("reason", sa.Text),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("recorded_by", sa.String(100), nullable=False),
    sa.CheckConstraint("amount_minor > 0", name="amount_positive"),
)

contracts = sa.Table(
    "sales_contracts",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    customer_fk(),
    sa.Column("order_id", Id, sa.ForeignKey("sales_orders.id"), index=True),
    sa.Column("number", sa.String(50), nullable=False, unique=True),
    sa.Column("title", sa.String(300), nullable=False),
    sa.Column("start_date", sa.Date, nullable=False),
    sa.Column("end_date", sa.Date),
    sa.Column("renewal_date", sa.Date),
    sa.Column("value_minor", Money, nullable=False),
    _currency(),
    sa.Column("status", sa.String(10), nullable=False),  # draft | active | expired | terminated | renewed
    sa.Column("owner", sa.String(100)),
    sa.Column("notes", sa.Text),
    *_now_columns(),
    sa.Index("ix_sales_contracts_status_renewal_date", "status", "renewal_date"),
)

appointments = sa.Table(
    "sales_appointments",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    customer_fk(),
    sa.Column("employee", sa.String(100), nullable=False),
    sa.Column("deal_id", Id, sa.ForeignKey("sales_deals.id")),
    sa.Column("subject", sa.String(300), nullable=False),
    sa.Column("starts_at", UTCDateTime, nullable=False),
    sa.Column("ends_at", UTCDateTime, nullable=False),
    sa.Column("channel", sa.String(30), nullable=False),  # in_person | phone | video | chat …
    sa.Column("place", sa.String(300)),  # an address, a meeting link, a phone number
    sa.Column("notes", sa.Text),
    sa.Column("status", sa.String(10), nullable=False),  # scheduled | done | cancelled
    sa.Column("outcome", sa.Text),
    *_now_columns(),
    sa.Index("ix_sales_appointments_employee_starts_at", "employee", "starts_at"),
)

tasks = sa.Table(
    "sales_tasks",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    customer_fk(),
    sa.Column("employee", sa.String(100), nullable=False),
    sa.Column("deal_id", Id, sa.ForeignKey("sales_deals.id")),
    sa.Column("title", sa.String(300), nullable=False),
    sa.Column("due_at", UTCDateTime, nullable=False),
    sa.Column("priority", sa.String(6), nullable=False),  # low | normal | high
    sa.Column("notes", sa.Text),
    sa.Column("done_at", UTCDateTime),
    sa.Column("outcome", sa.Text),
    *_now_columns(),
    sa.Index("ix_sales_tasks_employee_done_at_due_at", "employee", "done_at", "due_at"),
)
