"""Loyalty vouchers used at the till: a redemption records the order it was used on (``order_id``, ``used_at``;
status ``used``), so a code is used once and cancelling the order gives it back.

Revision ID: loyalty_0004
Revises: loyalty_0003
Create Date: 2026-12-06 21:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

import crmkit.core.types

revision = "loyalty_0004"
down_revision = "loyalty_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("loyalty_redemptions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("order_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("used_at", crmkit.core.types.UTCDateTime(), nullable=True))
        batch_op.create_index("ix_loyalty_redemptions_order_id", ["order_id"], unique=False)


def downgrade() -> None:
    op.execute("UPDATE loyalty_redemptions SET status = 'completed' WHERE status = 'used'")
    with op.batch_alter_table("loyalty_redemptions", schema=None) as batch_op:
        batch_op.drop_index("ix_loyalty_redemptions_order_id")
        batch_op.drop_column("used_at")
        batch_op.drop_column("order_id")
