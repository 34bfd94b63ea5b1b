"""Analytics: purchase occasions (one per local day) in the aggregates, and each CLV row's summary (x, t_x, T).

The aggregates are derived data: they are emptied here and rebuilt from the transactions on first read.

Revision ID: analytics_0002
Revises: analytics_0001
Create Date: 2026-12-07 04:45:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "analytics_0002"
down_revision = "analytics_0001"
branch_labels = None
depends_on = None

OCCASIONS = ("occasions", "first_day", "last_day", "first_occasion_minor", "lowest_occasion_minor", "occasions_minor")


def upgrade() -> None:
    op.execute("DELETE FROM analytics_customer_value")
    with op.batch_alter_table("analytics_customer_value", schema=None) as batch_op:
        batch_op.add_column(sa.Column("occasions", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("first_day", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("last_day", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("first_occasion_minor", sa.BigInteger(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("lowest_occasion_minor", sa.BigInteger(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("occasions_minor", sa.BigInteger(), nullable=False, server_default="0"))
    with op.batch_alter_table("analytics_clv", schema=None) as batch_op:
        batch_op.add_column(sa.Column("frequency", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("recency_weeks", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("age_weeks", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("analytics_clv", schema=None) as batch_op:
        for name in ("age_weeks", "recency_weeks", "frequency"):
            batch_op.drop_column(name)
    with op.batch_alter_table("analytics_customer_value", schema=None) as batch_op:
        for name in reversed(OCCASIONS):
            batch_op.drop_column(name)
