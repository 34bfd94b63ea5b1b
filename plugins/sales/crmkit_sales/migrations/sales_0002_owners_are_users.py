"""Sales: owners are users. Every owner name deals, quotes, orders and contracts carry, and every employee of
an appointment or a task, becomes a user (active, no password: they sign in once an administrator sets
one), so no ownership is lost. ``system`` — what the CLI wrote as the owner when nobody was named — is
nobody: those owners become empty.

Revision ID: sales_0002
Revises: sales_0001
Create Date: 2026-12-06 10:00:00.000000
"""

from alembic import op

revision = "sales_0002"
down_revision = "sales_0001"
branch_labels = None
depends_on = None

OWNERS = (
    ("sales_deals", "owner", "opened_at"),
    ("sales_quotes", "owner", "created_at"),
    ("sales_orders", "owner", "placed_at"),
    ("sales_contracts", "owner", "created_at"),
    ("sales_appointments", "employee", "created_at"),
    ("sales_tasks", "employee", "created_at"),
)


def upgrade() -> None:
    for table, column, _ in OWNERS[:4]:
        op.execute(f"UPDATE {table} SET {column} = NULL WHERE {column} = 'system'")
    named = " UNION ALL ".join(
        f"SELECT {column} AS username, {since} AS since FROM {table} WHERE {column} IS NOT NULL"
        for table, column, since in OWNERS
    )
    op.execute(
        "INSERT INTO users (username, display_name, active, failed_logins, created_at, updated_at) "
        f"SELECT username, username, true, 0, MIN(since), MIN(since) FROM ({named}) AS named "
        "WHERE username NOT IN (SELECT username FROM users) GROUP BY username"
    )


def downgrade() -> None:
    pass  # the users stay: the core owns them, and other records may name them by now
