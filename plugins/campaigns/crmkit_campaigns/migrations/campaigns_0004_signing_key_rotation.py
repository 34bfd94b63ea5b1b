"""Campaigns: link-signing keys wrapped with the CRM secret key (kept outside the database), and rotation.

``secret`` now holds the key wrapped (``crmkit.core.secrets.wrap_secret``) with its ``nonce`` and ``key_check``;
``expires_at`` ends an old key's grace period after ``crmkit campaigns keys rotate``. A key stored in
clear by an older version (``nonce`` null) is wrapped the first time the CRM loads it, so links already
sent keep working.

Revision ID: campaigns_0004
Revises: campaigns_0003
Create Date: 2026-12-07 04:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

import crmkit.core.types

revision = "campaigns_0004"
down_revision = "campaigns_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("campaign_signing_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("nonce", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("key_check", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("expires_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # wrapped keys cannot go back to clear here (the CRM secret key is not the migration's): they are dropped,
    # and the older version makes a new key (links sent before stop verifying)
    op.execute("DELETE FROM campaign_signing_keys WHERE nonce IS NOT NULL")
    with op.batch_alter_table("campaign_signing_keys", schema=None) as batch_op:
        batch_op.drop_column("expires_at")
        batch_op.drop_column("key_check")
        batch_op.drop_column("nonce")
