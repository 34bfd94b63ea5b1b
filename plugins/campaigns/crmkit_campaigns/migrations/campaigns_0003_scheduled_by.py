"""Campaigns: who scheduled a campaign (run-due runs it with that user's scope), and campaign owners as users.

Every owner name campaigns already carry becomes a user (active, no password), as the core did for
customers' owners, so no campaign loses its owner now that owners must be users.

Revision ID: campaigns_0003
Revises: campaigns_0002
Create Date: 2026-12-02 10:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "campaigns_0003"
down_revision = "campaigns_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.add_column(sa.Column("scheduled_by", sa.String(length=100), nullable=True))
    op.execute(
        "INSERT INTO users (username, display_name, active, failed_logins, created_at, updated_at) "
        "SELECT owner, owner, true, 0, MIN(created_at), MIN(created_at) FROM campaigns "
        "WHERE owner IS NOT NULL AND owner NOT IN (SELECT username FROM users) GROUP BY owner"
    )


def downgrade() -> None:
    # the users stay: they may own customers or records of other plugins by now
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_column("scheduled_by")
