"""Plan owners are users: every owner name the plan and the area owners carry becomes a user, and an
action may be unassigned.

Names in ``qci_actions.owner`` and in the ``qci.owners`` setting that no user has yet are inserted
into ``users`` (active, no password: they sign in once an administrator sets one), as the core's
identity migration does for customer owners, so no action loses its owner. ``system`` (what a
plan generated without a user recorded) is no employee: those actions become unassigned (NULL).
Downgrading gives unassigned actions their creator as owner again and keeps the users.

Revision ID: qci_0002
Revises: qci_0001
Create Date: 2026-12-07 09:00:00.000000
"""

from collections.abc import Mapping
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import crmkit.core.types

revision = "qci_0002"
down_revision = "qci_0001"
branch_labels = None
depends_on = None

SYSTEM = "system"
Time = crmkit.core.types.UTCDateTime(timezone=True)
actions = sa.table(
    "qci_actions", sa.column("owner", sa.String), sa.column("created_by", sa.String), sa.column("created_at", Time)
)
users = sa.table(
    "users",
    sa.column("username", sa.String),
    sa.column("display_name", sa.String),
    sa.column("active", sa.Boolean),
    sa.column("failed_logins", sa.Integer),
    sa.column("created_at", Time),
    sa.column("updated_at", Time),
)
settings = sa.table("crmkit_settings", sa.column("key", sa.String), sa.column("value", crmkit.core.types.JSONType))


def upgrade() -> None:
    with op.batch_alter_table("qci_actions", schema=None) as batch_op:
        batch_op.alter_column("owner", existing_type=sa.String(length=100), nullable=True)
    conn = op.get_bind()
    conn.execute(actions.update().where(actions.c.owner == SYSTEM).values(owner=None))
    now = datetime.now(UTC)
    names: dict[str, datetime] = dict(
        conn.execute(
            sa.select(actions.c.owner, sa.func.min(actions.c.created_at))
            .where(actions.c.owner.is_not(None))
            .group_by(actions.c.owner)
        ).all()
    )
    stored = conn.execute(sa.select(settings.c.value).where(settings.c.key == "qci.owners")).scalar()
    if isinstance(stored, Mapping):
        for name in stored.values():
            if isinstance(name, str) and name.strip() and name != SYSTEM:
                names.setdefault(name.strip(), now)
    known = set(conn.execute(sa.select(users.c.username)).scalars())
    missing = [
        {
            "username": name,
            "display_name": name,
            "active": True,
            "failed_logins": 0,
            "created_at": names[name] or now,
            "updated_at": names[name] or now,
        }
        for name in sorted(names)
        if name not in known
    ]
    if missing:
        conn.execute(users.insert(), missing)


def downgrade() -> None:
    op.get_bind().execute(actions.update().where(actions.c.owner.is_(None)).values(owner=actions.c.created_by))
    with op.batch_alter_table("qci_actions", schema=None) as batch_op:
        batch_op.alter_column("owner", existing_type=sa.String(length=100), nullable=False)
