"""Sales schema: products, price lists, pipelines and stages, deals and their history, quotes, orders,
payments, refunds, contracts, appointments, tasks.

Revision ID: sales_0001
Revises: (base)
Create Date: 2026-11-23 09:35:12.270381
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import crmkit.core.types
import crmkit_sales.models

revision = "sales_0001"
down_revision = None
branch_labels = ("sales",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sales_pipelines",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sales_pipelines")),
        sa.UniqueConstraint("name", name=op.f("uq_sales_pipelines_name")),
    )
    op.create_table(
        "sales_price_lists",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("group_tag", sa.String(length=100), nullable=True),
        sa.Column(
            "group_condition",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("group_tag IS NULL OR group_condition IS NULL", name=op.f("ck_sales_price_lists_one_group")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sales_price_lists")),
        sa.UniqueConstraint("name", name=op.f("uq_sales_price_lists_name")),
    )
    op.create_table(
        "sales_products",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("unit", sa.String(length=30), nullable=False),
        sa.Column("category", sa.String(length=100), nullable=True),
        sa.Column("price_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("cost_minor", sa.BigInteger(), nullable=True),
        sa.Column("tax_rate", crmkit_sales.models.ScaledDecimal(4), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("price_minor >= 0", name=op.f("ck_sales_products_price_not_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sales_products")),
        sa.UniqueConstraint("sku", name=op.f("uq_sales_products_sku")),
    )
    op.create_table(
        "sales_price_list_items",
        sa.Column("price_list_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("product_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("min_quantity", crmkit_sales.models.ScaledDecimal(3), nullable=False),
        sa.Column("price_minor", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("price_minor >= 0", name=op.f("ck_sales_price_list_items_price_not_negative")),
        sa.ForeignKeyConstraint(
            ["price_list_id"],
            ["sales_price_lists.id"],
            name=op.f("fk_sales_price_list_items_price_list_id_sales_price_lists"),
        ),
        sa.ForeignKeyConstraint(
            ["product_id"], ["sales_products.id"], name=op.f("fk_sales_price_list_items_product_id_sales_products")
        ),
        sa.PrimaryKeyConstraint("price_list_id", "product_id", "min_quantity", name=op.f("pk_sales_price_list_items")),
    )
    with op.batch_alter_table("sales_price_list_items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sales_price_list_items_product_id"), ["product_id"], unique=False)

    op.create_table(
        "sales_stages",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("pipeline_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("probability", crmkit_sales.models.ScaledDecimal(4), nullable=False),
        sa.Column("outcome", sa.String(length=4), nullable=True),
        sa.ForeignKeyConstraint(
            ["pipeline_id"], ["sales_pipelines.id"], name=op.f("fk_sales_stages_pipeline_id_sales_pipelines")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sales_stages")),
        sa.UniqueConstraint("pipeline_id", "name", name=op.f("uq_sales_stages_pipeline_id_name")),
        sa.UniqueConstraint("pipeline_id", "position", name=op.f("uq_sales_stages_pipeline_id_position")),
    )
    op.create_table(
        "sales_deals",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("pipeline_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("stage_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("reached_position", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("owner", sa.String(length=100), nullable=True),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("expected_close", sa.Date(), nullable=True),
        sa.Column("source", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=4), nullable=False),
        sa.Column("close_reason", sa.Text(), nullable=True),
        sa.Column("opened_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("closed_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name=op.f("fk_sales_deals_customer_id_customers")),
        sa.ForeignKeyConstraint(
            ["pipeline_id"], ["sales_pipelines.id"], name=op.f("fk_sales_deals_pipeline_id_sales_pipelines")
        ),
        sa.ForeignKeyConstraint(["stage_id"], ["sales_stages.id"], name=op.f("fk_sales_deals_stage_id_sales_stages")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sales_deals")),
    )
    with op.batch_alter_table("sales_deals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sales_deals_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index(
            "ix_sales_deals_forecast",
            ["status", "expected_close", "pipeline_id", "stage_id", "currency", "amount_minor"],
            unique=False,
        )
        batch_op.create_index(
            "ix_sales_deals_owner_status_closed_at",
            ["owner", "status", "closed_at", "currency", "amount_minor"],
            unique=False,
        )
        batch_op.create_index(
            "ix_sales_deals_pipeline_id_stage_id_reached_position",
            ["pipeline_id", "stage_id", "reached_position"],
            unique=False,
        )

    op.create_table(
        "sales_appointments",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("employee", sa.String(length=100), nullable=False),
        sa.Column("deal_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("starts_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(length=30), nullable=False),
        sa.Column("place", sa.String(length=300), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("created_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_sales_appointments_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["deal_id"], ["sales_deals.id"], name=op.f("fk_sales_appointments_deal_id_sales_deals")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sales_appointments")),
    )
    with op.batch_alter_table("sales_appointments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sales_appointments_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index("ix_sales_appointments_employee_starts_at", ["employee", "starts_at"], unique=False)

    op.create_table(
        "sales_deal_history",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("deal_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("from_stage_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("to_stage_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("changed_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("changed_by", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["deal_id"], ["sales_deals.id"], name=op.f("fk_sales_deal_history_deal_id_sales_deals")
        ),
        sa.ForeignKeyConstraint(
            ["from_stage_id"], ["sales_stages.id"], name=op.f("fk_sales_deal_history_from_stage_id_sales_stages")
        ),
        sa.ForeignKeyConstraint(
            ["to_stage_id"], ["sales_stages.id"], name=op.f("fk_sales_deal_history_to_stage_id_sales_stages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sales_deal_history")),
    )
    with op.batch_alter_table("sales_deal_history", schema=None) as batch_op:
        batch_op.create_index("ix_sales_deal_history_deal_id_changed_at", ["deal_id", "changed_at"], unique=False)

    op.create_table(
        "sales_quotes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("root_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("deal_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("owner", sa.String(length=100), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("price_list_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("subtotal_minor", sa.BigInteger(), nullable=False),
        sa.Column("discount_minor", sa.BigInteger(), nullable=False),
        sa.Column("tax_minor", sa.BigInteger(), nullable=False),
        sa.Column("total_minor", sa.BigInteger(), nullable=False),
        sa.Column("sent_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decided_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("superseded_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name=op.f("fk_sales_quotes_customer_id_customers")),
        sa.ForeignKeyConstraint(["deal_id"], ["sales_deals.id"], name=op.f("fk_sales_quotes_deal_id_sales_deals")),
        sa.ForeignKeyConstraint(
            ["price_list_id"], ["sales_price_lists.id"], name=op.f("fk_sales_quotes_price_list_id_sales_price_lists")
        ),
        sa.ForeignKeyConstraint(["root_id"], ["sales_quotes.id"], name=op.f("fk_sales_quotes_root_id_sales_quotes")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sales_quotes")),
    )
    with op.batch_alter_table("sales_quotes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sales_quotes_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_sales_quotes_deal_id"), ["deal_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_sales_quotes_root_id"), ["root_id"], unique=False)

    op.create_table(
        "sales_tasks",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("employee", sa.String(length=100), nullable=False),
        sa.Column("deal_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("due_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("priority", sa.String(length=6), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("done_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("created_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name=op.f("fk_sales_tasks_customer_id_customers")),
        sa.ForeignKeyConstraint(["deal_id"], ["sales_deals.id"], name=op.f("fk_sales_tasks_deal_id_sales_deals")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sales_tasks")),
    )
    with op.batch_alter_table("sales_tasks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sales_tasks_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index("ix_sales_tasks_employee_done_at_due_at", ["employee", "done_at", "due_at"], unique=False)

    op.create_table(
        "sales_orders",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("quote_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("deal_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("owner", sa.String(length=100), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("placed_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("shipped_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cancel_reason", sa.Text(), nullable=True),
        sa.Column("subtotal_minor", sa.BigInteger(), nullable=False),
        sa.Column("discount_minor", sa.BigInteger(), nullable=False),
        sa.Column("tax_minor", sa.BigInteger(), nullable=False),
        sa.Column("total_minor", sa.BigInteger(), nullable=False),
        sa.Column("margin_minor", sa.BigInteger(), nullable=True),
        sa.Column("paid_minor", sa.BigInteger(), nullable=False),
        sa.Column("refunded_minor", sa.BigInteger(), nullable=False),
        sa.Column("shipping_name", sa.String(length=300), nullable=True),
        sa.Column("shipping_phone", sa.String(length=50), nullable=True),
        sa.Column("shipping_address", sa.Text(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("updated_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("paid_minor >= 0 AND paid_minor <= total_minor", name=op.f("ck_sales_orders_paid_range")),
        sa.CheckConstraint(
            "refunded_minor >= 0 AND refunded_minor <= paid_minor", name=op.f("ck_sales_orders_refunded_range")
        ),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name=op.f("fk_sales_orders_customer_id_customers")),
        sa.ForeignKeyConstraint(["deal_id"], ["sales_deals.id"], name=op.f("fk_sales_orders_deal_id_sales_deals")),
        sa.ForeignKeyConstraint(["quote_id"], ["sales_quotes.id"], name=op.f("fk_sales_orders_quote_id_sales_quotes")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sales_orders")),
        sa.UniqueConstraint("quote_id", name=op.f("uq_sales_orders_quote_id")),
    )
    with op.batch_alter_table("sales_orders", schema=None) as batch_op:
        batch_op.create_index("ix_sales_orders_customer_id_placed_at", ["customer_id", "placed_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_sales_orders_deal_id"), ["deal_id"], unique=False)
        batch_op.create_index(
            "ix_sales_orders_owner_placed_at",
            ["owner", "placed_at", "status", "currency", "total_minor", "refunded_minor"],
            unique=False,
        )
        batch_op.create_index(
            "ix_sales_orders_placed_at",
            ["placed_at", "status", "currency", "total_minor", "refunded_minor"],
            unique=False,
        )

    op.create_table(
        "sales_quote_lines",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("quote_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("unit", sa.String(length=30), nullable=False),
        sa.Column("category", sa.String(length=100), nullable=True),
        sa.Column("quantity", crmkit_sales.models.ScaledDecimal(3), nullable=False),
        sa.Column("unit_price_minor", sa.BigInteger(), nullable=False),
        sa.Column("price_list_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("discount_percent", crmkit_sales.models.ScaledDecimal(2), nullable=True),
        sa.Column("discount_minor", sa.BigInteger(), nullable=False),
        sa.Column("tax_rate", crmkit_sales.models.ScaledDecimal(4), nullable=False),
        sa.Column("net_minor", sa.BigInteger(), nullable=False),
        sa.Column("tax_minor", sa.BigInteger(), nullable=False),
        sa.Column("total_minor", sa.BigInteger(), nullable=False),
        sa.Column("cost_minor", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["price_list_id"],
            ["sales_price_lists.id"],
            name=op.f("fk_sales_quote_lines_price_list_id_sales_price_lists"),
        ),
        sa.ForeignKeyConstraint(
            ["product_id"], ["sales_products.id"], name=op.f("fk_sales_quote_lines_product_id_sales_products")
        ),
        sa.ForeignKeyConstraint(
            ["quote_id"], ["sales_quotes.id"], name=op.f("fk_sales_quote_lines_quote_id_sales_quotes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sales_quote_lines")),
    )
    with op.batch_alter_table("sales_quote_lines", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sales_quote_lines_quote_id"), ["quote_id"], unique=False)

    op.create_table(
        "sales_contracts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("number", sa.String(length=50), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("renewal_date", sa.Date(), nullable=True),
        sa.Column("value_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("owner", sa.String(length=100), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("created_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_sales_contracts_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["sales_orders.id"], name=op.f("fk_sales_contracts_order_id_sales_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sales_contracts")),
        sa.UniqueConstraint("number", name=op.f("uq_sales_contracts_number")),
    )
    with op.batch_alter_table("sales_contracts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sales_contracts_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_sales_contracts_order_id"), ["order_id"], unique=False)
        batch_op.create_index("ix_sales_contracts_status_renewal_date", ["status", "renewal_date"], unique=False)

    op.create_table(
        "sales_order_lines",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("unit", sa.String(length=30), nullable=False),
        sa.Column("category", sa.String(length=100), nullable=True),
        sa.Column("quantity", crmkit_sales.models.ScaledDecimal(3), nullable=False),
        sa.Column("unit_price_minor", sa.BigInteger(), nullable=False),
        sa.Column("price_list_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("discount_percent", crmkit_sales.models.ScaledDecimal(2), nullable=True),
        sa.Column("discount_minor", sa.BigInteger(), nullable=False),
        sa.Column("tax_rate", crmkit_sales.models.ScaledDecimal(4), nullable=False),
        sa.Column("net_minor", sa.BigInteger(), nullable=False),
        sa.Column("tax_minor", sa.BigInteger(), nullable=False),
        sa.Column("total_minor", sa.BigInteger(), nullable=False),
        sa.Column("cost_minor", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["order_id"], ["sales_orders.id"], name=op.f("fk_sales_order_lines_order_id_sales_orders")
        ),
        sa.ForeignKeyConstraint(
            ["price_list_id"],
            ["sales_price_lists.id"],
            name=op.f("fk_sales_order_lines_price_list_id_sales_price_lists"),
        ),
        sa.ForeignKeyConstraint(
            ["product_id"], ["sales_products.id"], name=op.f("fk_sales_order_lines_product_id_sales_products")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sales_order_lines")),
    )
    with op.batch_alter_table("sales_order_lines", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sales_order_lines_order_id"), ["order_id"], unique=False)
        batch_op.create_index("ix_sales_order_lines_product_id", ["product_id"], unique=False)

    op.create_table(
        "sales_payments",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("method", sa.String(length=30), nullable=False),
        sa.Column("paid_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("recorded_by", sa.String(length=100), nullable=False),
        sa.CheckConstraint("amount_minor > 0", name=op.f("ck_sales_payments_amount_positive")),
        sa.ForeignKeyConstraint(
            ["order_id"], ["sales_orders.id"], name=op.f("fk_sales_payments_order_id_sales_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sales_payments")),
    )
    with op.batch_alter_table("sales_payments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sales_payments_order_id"), ["order_id"], unique=False)

    op.create_table(
        "sales_refunds",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=100), nullable=False),
        sa.CheckConstraint("amount_minor > 0", name=op.f("ck_sales_refunds_amount_positive")),
        sa.ForeignKeyConstraint(["order_id"], ["sales_orders.id"], name=op.f("fk_sales_refunds_order_id_sales_orders")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sales_refunds")),
    )
    with op.batch_alter_table("sales_refunds", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sales_refunds_order_id"), ["order_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sales_refunds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sales_refunds_order_id"))

    op.drop_table("sales_refunds")
    with op.batch_alter_table("sales_payments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sales_payments_order_id"))

    op.drop_table("sales_payments")
    with op.batch_alter_table("sales_order_lines", schema=None) as batch_op:
        batch_op.drop_index("ix_sales_order_lines_product_id")
        batch_op.drop_index(batch_op.f("ix_sales_order_lines_order_id"))

    op.drop_table("sales_order_lines")
    with op.batch_alter_table("sales_contracts", schema=None) as batch_op:
        batch_op.drop_index("ix_sales_contracts_status_renewal_date")
        batch_op.drop_index(batch_op.f("ix_sales_contracts_order_id"))
        batch_op.drop_index(batch_op.f("ix_sales_contracts_customer_id"))

    op.drop_table("sales_contracts")
    with op.batch_alter_table("sales_quote_lines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sales_quote_lines_quote_id"))

    op.drop_table("sales_quote_lines")
    with op.batch_alter_table("sales_orders", schema=None) as batch_op:
        batch_op.drop_index("ix_sales_orders_placed_at")
        batch_op.drop_index("ix_sales_orders_owner_placed_at")
        batch_op.drop_index(batch_op.f("ix_sales_orders_deal_id"))
        batch_op.drop_index("ix_sales_orders_customer_id_placed_at")

    op.drop_table("sales_orders")
    with op.batch_alter_table("sales_tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_sales_tasks_employee_done_at_due_at")
        batch_op.drop_index(batch_op.f("ix_sales_tasks_customer_id"))

    op.drop_table("sales_tasks")
    with op.batch_alter_table("sales_quotes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sales_quotes_root_id"))
        batch_op.drop_index(batch_op.f("ix_sales_quotes_deal_id"))
        batch_op.drop_index(batch_op.f("ix_sales_quotes_customer_id"))

    op.drop_table("sales_quotes")
    with op.batch_alter_table("sales_deal_history", schema=None) as batch_op:
        batch_op.drop_index("ix_sales_deal_history_deal_id_changed_at")

    op.drop_table("sales_deal_history")
    with op.batch_alter_table("sales_appointments", schema=None) as batch_op:
        batch_op.drop_index("ix_sales_appointments_employee_starts_at")
        batch_op.drop_index(batch_op.f("ix_sales_appointments_customer_id"))

    op.drop_table("sales_appointments")
    with op.batch_alter_table("sales_deals", schema=None) as batch_op:
        batch_op.drop_index("ix_sales_deals_pipeline_id_stage_id_reached_position")
        batch_op.drop_index("ix_sales_deals_owner_status_closed_at")
        batch_op.drop_index("ix_sales_deals_forecast")
        batch_op.drop_index(batch_op.f("ix_sales_deals_customer_id"))

    op.drop_table("sales_deals")
    op.drop_table("sales_stages")
    with op.batch_alter_table("sales_price_list_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sales_price_list_items_product_id"))

    op.drop_table("sales_price_list_items")
    op.drop_table("sales_products")
    op.drop_table("sales_price_lists")
    op.drop_table("sales_pipelines")
