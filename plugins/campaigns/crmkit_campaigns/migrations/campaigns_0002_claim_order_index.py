"""Campaigns: the dispatcher's queue index holds the claim order (next attempt, then id), so a claim reads
the index alone instead of sorting the queued messages.

Revision ID: campaigns_0002
Revises: campaigns_0001
Create Date: 2026-11-23 17:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "campaigns_0002"
down_revision = "campaigns_0001"
branch_labels = None
depends_on = None

QUEUED = sa.text("status = 'queued'")


def upgrade() -> None:
    with op.batch_alter_table("campaign_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_campaign_messages_due")
        batch_op.create_index(
            "ix_campaign_messages_due",
            ["next_attempt_at", "id"],
            unique=False,
            sqlite_where=QUEUED,
            postgresql_where=QUEUED,
        )


def downgrade() -> None:
    with op.batch_alter_table("campaign_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_campaign_messages_due")
        batch_op.create_index(
            "ix_campaign_messages_due", ["next_attempt_at"], unique=False, sqlite_where=QUEUED, postgresql_where=QUEUED
        )
