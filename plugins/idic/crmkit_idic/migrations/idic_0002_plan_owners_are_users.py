"""Plan owners are users: every employee name IDIC's plan items (or the ``idic.default_owner`` setting) carry
becomes a user (active, no password) unless one exists, so no planned contact loses its owner.

The core's identity migration already made a user of every customer owner; plan items can also name the
``default_owner`` set for customers without one. No schema change: downgrading leaves the users.

Revision ID: idic_0002
Revises: idic_0001
Create Date: 2026-12-07 09:00:00.000000
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import crmkit.core.types

revision = "idic_0002"
down_revision = "idic_0001"
branch_labels = None
depends_on = None

Time = crmkit.core.types.UTCDateTime(timezone=True)
users = sa.table(
    "users",
    sa.column("username", sa.String),
    sa.column("display_name", sa.String),
    sa.column("active", sa.Boolean),
    sa.column("failed_logins", sa.Integer),
    sa.column("created_at", Time),
    sa.column("updated_at", Time),
)
plan_items = sa.table("idic_plan_items", sa.column("owner", sa.String))
settings = sa.table(
    "crmkit_settings",
    sa.column("key", sa.String),
    sa.column("value", sa.JSON().with_variant(postgresql.JSONB(), "postgresql")),
)


def upgrade() -> None:
    conn = op.get_bind()
    names = set(conn.execute(sa.select(plan_items.c.owner).where(plan_items.c.owner.is_not(None)).distinct()).scalars())
    default_owner = conn.execute(sa.select(settings.c.value).where(settings.c.key == "idic.default_owner")).scalar()
    if isinstance(default_owner, str) and default_owner:
        names.add(default_owner)
    if not names:
        return
    known = set(conn.execute(sa.select(users.c.username).where(users.c.username.in_(sorted(names)))).scalars())
    now = datetime.now(UTC)
    missing = [
        {
            "username": name,
            "display_name": name,
            "active": True,
            "failed_logins": 0,
            "created_at": now,
            "updated_at": now,
        }
        for name in sorted(names - known)
    ]
    if missing:
        conn.execute(users.insert(), missing)


def downgrade() -> None:
    pass  # users may own customers by now: they stay
