"""Campaigns: transactional single messages (``crm.campaigns.send_message``) keep their own template and values.

Revision ID: campaigns_0005
Revises: campaigns_0004
Create Date: 2026-12-07 13:45:00.000000
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "campaigns_0005"
down_revision = "campaigns_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("campaign_messages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "content", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=True
            )
        )


def downgrade() -> None:
    op.execute(
        "DELETE FROM campaign_events WHERE message_id IN (SELECT id FROM campaign_messages WHERE content IS NOT NULL)"
    )
    op.execute("DELETE FROM campaign_messages WHERE content IS NOT NULL")
    with op.batch_alter_table("campaign_messages", schema=None) as batch_op:
        batch_op.drop_column("content")
