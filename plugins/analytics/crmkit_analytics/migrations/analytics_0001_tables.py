"""Analytics tables: per-customer value aggregates, runs, and the snapshots of RFM, customer types, PCV, SOW and CLV.

Revision ID: analytics_0001
Revises: (base)
Create Date: 2026-11-23 10:10:56.118653
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import crmkit.core.types

revision = "analytics_0001"
down_revision = None
branch_labels = ("analytics",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "analytics_clv",
        sa.Column("customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("run_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("p_alive", sa.Float(), nullable=False),
        sa.Column("expected_purchases", sa.Float(), nullable=False),
        sa.Column("expected_spend_minor", sa.BigInteger(), nullable=False),
        sa.Column("clv_minor", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name=op.f("fk_analytics_clv_customer_id_customers")),
        sa.PrimaryKeyConstraint("customer_id", "run_id", name=op.f("pk_analytics_clv")),
    )
    op.create_table(
        "analytics_customer_types",
        sa.Column("customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("run_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("customer_type", sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_analytics_customer_types_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("customer_id", "run_id", name=op.f("pk_analytics_customer_types")),
    )
    op.create_table(
        "analytics_customer_value",
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("first_purchase_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_purchase_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("purchase_count", sa.Integer(), nullable=False),
        sa.Column("total_minor", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_analytics_customer_value_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("currency", "customer_id", name=op.f("pk_analytics_customer_value")),
        sqlite_with_rowid=False,
    )
    with op.batch_alter_table("analytics_customer_value", schema=None) as batch_op:
        batch_op.create_index(
            "ix_analytics_customer_value_currency_count", ["currency", "purchase_count"], unique=False
        )
        batch_op.create_index(
            "ix_analytics_customer_value_currency_first", ["currency", "first_purchase_at"], unique=False
        )
        batch_op.create_index(
            "ix_analytics_customer_value_currency_last", ["currency", "last_purchase_at"], unique=False
        )
        batch_op.create_index("ix_analytics_customer_value_currency_total", ["currency", "total_minor"], unique=False)
        batch_op.create_index(batch_op.f("ix_analytics_customer_value_customer_id"), ["customer_id"], unique=False)

    op.create_table(
        "analytics_pcv",
        sa.Column("customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("run_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("purchases", sa.Integer(), nullable=False),
        sa.Column("pcv_minor", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name=op.f("fk_analytics_pcv_customer_id_customers")),
        sa.PrimaryKeyConstraint("customer_id", "run_id", name=op.f("pk_analytics_pcv")),
    )
    op.create_table(
        "analytics_rfm",
        sa.Column("customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("run_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("recency_days", sa.Integer(), nullable=False),
        sa.Column("frequency", sa.Integer(), nullable=False),
        sa.Column("monetary_minor", sa.BigInteger(), nullable=False),
        sa.Column("r", sa.SmallInteger(), nullable=False),
        sa.Column("f", sa.SmallInteger(), nullable=False),
        sa.Column("m", sa.SmallInteger(), nullable=False),
        sa.Column("score", sa.String(length=3), nullable=False),
        sa.Column("segment", sa.String(length=30), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name=op.f("fk_analytics_rfm_customer_id_customers")),
        sa.PrimaryKeyConstraint("customer_id", "run_id", name=op.f("pk_analytics_rfm")),
    )
    op.create_table(
        "analytics_runs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("measure", sa.String(length=20), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("as_of", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("computed_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column(
            "parameters", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column(
            "summary", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analytics_runs")),
    )
    with op.batch_alter_table("analytics_runs", schema=None) as batch_op:
        batch_op.create_index("ix_analytics_runs_measure_id", ["measure", "id"], unique=False)

    op.create_table(
        "analytics_sow",
        sa.Column("customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("run_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("spend_minor", sa.BigInteger(), nullable=False),
        sa.Column("category_spend_minor", sa.BigInteger(), nullable=False),
        sa.Column("share", sa.Float(), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name=op.f("fk_analytics_sow_customer_id_customers")),
        sa.PrimaryKeyConstraint("customer_id", "run_id", name=op.f("pk_analytics_sow")),
    )


def downgrade() -> None:
    op.drop_table("analytics_sow")
    with op.batch_alter_table("analytics_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_analytics_runs_measure_id")

    op.drop_table("analytics_runs")
    op.drop_table("analytics_rfm")
    op.drop_table("analytics_pcv")
    with op.batch_alter_table("analytics_customer_value", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_analytics_customer_value_customer_id"))
        batch_op.drop_index("ix_analytics_customer_value_currency_total")
        batch_op.drop_index("ix_analytics_customer_value_currency_last")
        batch_op.drop_index("ix_analytics_customer_value_currency_first")
        batch_op.drop_index("ix_analytics_customer_value_currency_count")

    op.drop_table("analytics_customer_value")
    op.drop_table("analytics_customer_types")
    op.drop_table("analytics_clv")
