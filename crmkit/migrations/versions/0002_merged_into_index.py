"""Partial index on customers.merged_into_id (tombstones only): merges re-point chains through it.

Revision ID: crmkit_0002
Revises: crmkit_0001
Create Date: 2026-11-23 12:20:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "crmkit_0002"
down_revision = "crmkit_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.create_index(
            "ix_customers_merged_into_id",
            ["merged_into_id"],
            unique=False,
            sqlite_where=sa.text("merged_into_id IS NOT NULL"),
            postgresql_where=sa.text("merged_into_id IS NOT NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_customers_merged_into_id",
            sqlite_where=sa.text("merged_into_id IS NOT NULL"),
            postgresql_where=sa.text("merged_into_id IS NOT NULL"),
        )
