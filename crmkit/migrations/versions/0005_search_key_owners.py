"""Search keys carry their customer's owner: a scoped search reads only the keys of the owners in scope.

The owner is copied from ``customers`` (kept equal by every write that changes either) and
indexed with the key, so a team-scoped search is one range scan per owner over (owner, key).

Revision ID: crmkit_0005
Revises: crmkit_0004
Create Date: 2026-12-06 21:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "crmkit_0005"
down_revision = "crmkit_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customer_search_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner", sa.String(length=100), nullable=True))
    # every key takes its customer's owner as it is now
    op.execute(
        "UPDATE customer_search_keys SET owner = "
        "(SELECT owner FROM customers WHERE customers.id = customer_search_keys.customer_id)"
    )
    with op.batch_alter_table("customer_search_keys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_customer_search_keys_owner_key_customer_id"), ["owner", "key", "customer_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("customer_search_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_search_keys_owner_key_customer_id"))
        batch_op.drop_column("owner")
