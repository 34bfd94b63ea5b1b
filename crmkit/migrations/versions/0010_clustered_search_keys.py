"""Search keys written once: on SQLite a table clustered on its primary key (key, customer_id), WITHOUT ROWID,
instead of a rowid table plus an index holding every key again; the (owner, key) index holds owned keys only.

A scoped search names owners (``owner IN (…)``), so it never reads an unowned key through that index.
The bulk import writes each key into one B-tree fewer (two fewer when the customers are unowned).

Revision ID: crmkit_0010
Revises: crmkit_0009
Create Date: 2026-12-07 15:30:00.000000
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "crmkit_0010"
down_revision = "crmkit_0009"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Key = sa.String(length=400).with_variant(sa.String(length=400, collation="C"), "postgresql")
OWNED = "owner IS NOT NULL"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild(clustered=True)
    else:
        op.drop_index("ix_customer_search_keys_owner_key_customer_id", table_name="customer_search_keys")
    _owner_index(partial=True)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild(clustered=False)
    else:
        op.drop_index("ix_customer_search_keys_owner_key_customer_id", table_name="customer_search_keys")
    _owner_index(partial=False)


def _rebuild(*, clustered: bool) -> None:
    """Copy the keys into a new table (in key order: each B-tree page written once) that takes the old one's place."""
    op.create_table(
        "_customer_search_keys_new",
        sa.Column("key", Key, nullable=False),
        sa.Column("customer_id", Id, nullable=False),
        sa.Column("owner", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_customer_search_keys_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("key", "customer_id", name=op.f("pk_customer_search_keys")),
        sqlite_with_rowid=not clustered,
    )
    op.execute(
        "INSERT INTO _customer_search_keys_new (key, customer_id, owner) "
        "SELECT key, customer_id, owner FROM customer_search_keys ORDER BY key, customer_id"
    )
    op.drop_table("customer_search_keys")
    op.rename_table("_customer_search_keys_new", "customer_search_keys")
    op.create_index(op.f("ix_customer_search_keys_customer_id"), "customer_search_keys", ["customer_id"])


def _owner_index(*, partial: bool) -> None:
    where: dict[str, Any] = {"sqlite_where": sa.text(OWNED), "postgresql_where": sa.text(OWNED)} if partial else {}
    op.create_index(
        op.f("ix_customer_search_keys_owner_key_customer_id"),
        "customer_search_keys",
        ["owner", "key", "customer_id"],
        **where,
    )
