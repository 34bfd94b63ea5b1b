"""Interactions get an optional external id (unique): importing history again updates, never duplicates.

Revision ID: crmkit_0004
Revises: crmkit_0003
Create Date: 2026-12-06 21:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "crmkit_0004"
down_revision = "crmkit_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("external_id", sa.String(length=200), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_interactions_external_id"), ["external_id"])


def downgrade() -> None:
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_interactions_external_id"), type_="unique")
        batch_op.drop_column("external_id")
