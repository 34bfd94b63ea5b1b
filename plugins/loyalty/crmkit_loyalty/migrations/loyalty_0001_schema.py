"""Loyalty schema: programs, earn rules, tiers, members (balance rows), the ledger, open lots, rewards, redemptions.

Revision ID: loyalty_0001
Revises: (base)
Create Date: 2026-11-23 09:36:51.720056
"""

import sqlalchemy as sa
from alembic import op

import crmkit.core.types

revision = "loyalty_0001"
down_revision = None
branch_labels = ("loyalty",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "loyalty_programs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("code", sa.String(length=50), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("earn_points", sa.String(length=24), nullable=False),
        sa.Column("earn_amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("rounding", sa.String(length=10), nullable=False),
        sa.Column("point_decimals", sa.SmallInteger(), nullable=False),
        sa.Column("include_tax", sa.Boolean(), nullable=False),
        sa.Column("expiry_days", sa.Integer(), nullable=True),
        sa.Column("tier_basis", sa.String(length=10), nullable=False),
        sa.Column("tier_window_days", sa.Integer(), nullable=False),
        sa.Column("point_value_minor", sa.BigInteger(), nullable=True),
        sa.Column("auto_enroll", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("earn_amount_minor > 0", name=op.f("ck_loyalty_programs_earn_amount_positive")),
        sa.CheckConstraint("point_decimals BETWEEN 0 AND 3", name=op.f("ck_loyalty_programs_point_decimals_range")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loyalty_programs")),
        sa.UniqueConstraint("code", name=op.f("uq_loyalty_programs_code")),
    )
    op.create_table(
        "loyalty_ledger",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("program_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.String(length=60), nullable=False),
        sa.Column("source_kind", sa.String(length=20), nullable=False),
        sa.Column("source_id", sa.String(length=100), nullable=False),
        sa.Column("order_id", sa.String(length=100), nullable=True),
        sa.Column("amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("qualifying", sa.Boolean(), nullable=False),
        sa.Column("created_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_loyalty_ledger_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["program_id"], ["loyalty_programs.id"], name=op.f("fk_loyalty_ledger_program_id_loyalty_programs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loyalty_ledger")),
        sa.UniqueConstraint(
            "program_id",
            "source_kind",
            "source_id",
            "reason",
            name=op.f("uq_loyalty_ledger_program_id_source_kind_source_id_reason"),
        ),
    )
    with op.batch_alter_table("loyalty_ledger", schema=None) as batch_op:
        batch_op.create_index(
            "ix_loyalty_ledger_customer_id_program_id_created_at",
            ["customer_id", "program_id", "created_at", "id"],
            unique=False,
        )
        batch_op.create_index("ix_loyalty_ledger_program_id_created_at", ["program_id", "created_at"], unique=False)
        batch_op.create_index("ix_loyalty_ledger_program_id_order_id", ["program_id", "order_id"], unique=False)

    op.create_table(
        "loyalty_members",
        sa.Column("customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("program_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("tier", sa.String(length=50), nullable=True),
        sa.Column("tier_since", crmkit.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("enrolled_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_loyalty_members_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["program_id"], ["loyalty_programs.id"], name=op.f("fk_loyalty_members_program_id_loyalty_programs")
        ),
        sa.PrimaryKeyConstraint("customer_id", "program_id", name=op.f("pk_loyalty_members")),
    )
    with op.batch_alter_table("loyalty_members", schema=None) as batch_op:
        batch_op.create_index("ix_loyalty_members_program_id_tier", ["program_id", "tier"], unique=False)

    op.create_table(
        "loyalty_rewards",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("program_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("code", sa.String(length=50), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("points_cost", sa.BigInteger(), nullable=False),
        sa.Column("stock", sa.Integer(), nullable=True),
        sa.Column("value_minor", sa.BigInteger(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("points_cost > 0", name=op.f("ck_loyalty_rewards_points_cost_positive")),
        sa.CheckConstraint("stock IS NULL OR stock >= 0", name=op.f("ck_loyalty_rewards_stock_not_negative")),
        sa.ForeignKeyConstraint(
            ["program_id"], ["loyalty_programs.id"], name=op.f("fk_loyalty_rewards_program_id_loyalty_programs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loyalty_rewards")),
        sa.UniqueConstraint("program_id", "code", name=op.f("uq_loyalty_rewards_program_id_code")),
    )
    op.create_table(
        "loyalty_rules",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("program_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("target", sa.String(length=100), nullable=True),
        sa.Column("multiplier", sa.String(length=24), nullable=True),
        sa.Column("bonus_points", sa.BigInteger(), nullable=True),
        sa.Column("amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("starts_on", sa.Date(), nullable=True),
        sa.Column("ends_on", sa.Date(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["program_id"], ["loyalty_programs.id"], name=op.f("fk_loyalty_rules_program_id_loyalty_programs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loyalty_rules")),
    )
    with op.batch_alter_table("loyalty_rules", schema=None) as batch_op:
        batch_op.create_index("ix_loyalty_rules_program_id_kind", ["program_id", "kind"], unique=False)

    op.create_table(
        "loyalty_tiers",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("program_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("code", sa.String(length=50), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("threshold", sa.BigInteger(), nullable=False),
        sa.Column("multiplier", sa.String(length=24), nullable=False),
        sa.ForeignKeyConstraint(
            ["program_id"], ["loyalty_programs.id"], name=op.f("fk_loyalty_tiers_program_id_loyalty_programs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loyalty_tiers")),
        sa.UniqueConstraint("program_id", "code", name=op.f("uq_loyalty_tiers_program_id_code")),
        sa.UniqueConstraint("program_id", "rank", name=op.f("uq_loyalty_tiers_program_id_rank")),
    )
    op.create_table(
        "loyalty_lots",
        sa.Column("entry_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("program_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("remaining", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("remaining > 0", name=op.f("ck_loyalty_lots_remaining_positive")),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name=op.f("fk_loyalty_lots_customer_id_customers")),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["loyalty_ledger.id"], name=op.f("fk_loyalty_lots_entry_id_loyalty_ledger")
        ),
        sa.ForeignKeyConstraint(
            ["program_id"], ["loyalty_programs.id"], name=op.f("fk_loyalty_lots_program_id_loyalty_programs")
        ),
        sa.PrimaryKeyConstraint("entry_id", name=op.f("pk_loyalty_lots")),
    )
    with op.batch_alter_table("loyalty_lots", schema=None) as batch_op:
        batch_op.create_index(
            "ix_loyalty_lots_customer_id_program_id_expires_at",
            ["customer_id", "program_id", "expires_at"],
            unique=False,
        )
        batch_op.create_index("ix_loyalty_lots_program_id_expires_at", ["program_id", "expires_at"], unique=False)

    op.create_table(
        "loyalty_redemptions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("program_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("reward_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("code", sa.String(length=20), nullable=False),
        sa.Column("created_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.CheckConstraint("points > 0", name=op.f("ck_loyalty_redemptions_points_positive")),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_loyalty_redemptions_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_loyalty_redemptions_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["program_id"], ["loyalty_programs.id"], name=op.f("fk_loyalty_redemptions_program_id_loyalty_programs")
        ),
        sa.ForeignKeyConstraint(
            ["reward_id"], ["loyalty_rewards.id"], name=op.f("fk_loyalty_redemptions_reward_id_loyalty_rewards")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loyalty_redemptions")),
        sa.UniqueConstraint("code", name=op.f("uq_loyalty_redemptions_code")),
    )
    with op.batch_alter_table("loyalty_redemptions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_loyalty_redemptions_customer_id_created_at", ["customer_id", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("loyalty_redemptions", schema=None) as batch_op:
        batch_op.drop_index("ix_loyalty_redemptions_customer_id_created_at")

    op.drop_table("loyalty_redemptions")
    with op.batch_alter_table("loyalty_lots", schema=None) as batch_op:
        batch_op.drop_index("ix_loyalty_lots_program_id_expires_at")
        batch_op.drop_index("ix_loyalty_lots_customer_id_program_id_expires_at")

    op.drop_table("loyalty_lots")
    op.drop_table("loyalty_tiers")
    with op.batch_alter_table("loyalty_rules", schema=None) as batch_op:
        batch_op.drop_index("ix_loyalty_rules_program_id_kind")

    op.drop_table("loyalty_rules")
    op.drop_table("loyalty_rewards")
    with op.batch_alter_table("loyalty_members", schema=None) as batch_op:
        batch_op.drop_index("ix_loyalty_members_program_id_tier")

    op.drop_table("loyalty_members")
    with op.batch_alter_table("loyalty_ledger", schema=None) as batch_op:
        batch_op.drop_index("ix_loyalty_ledger_program_id_order_id")
        batch_op.drop_index("ix_loyalty_ledger_program_id_created_at")
        batch_op.drop_index("ix_loyalty_ledger_customer_id_program_id_created_at")

    op.drop_table("loyalty_ledger")
    op.drop_table("loyalty_programs")
