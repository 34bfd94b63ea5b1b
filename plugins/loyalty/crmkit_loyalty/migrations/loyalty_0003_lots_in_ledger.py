"""Loyalty open lots move into the ledger (``remaining``, with a partial index over the open ones), and the
ledger's order index goes: an order's entries are found through the unique source key and the member index.

An order then writes one ledger row instead of a ledger row and a lot row (three index pages fewer).

Revision ID: loyalty_0003
Revises: loyalty_0002
Create Date: 2026-11-23 15:10:00.000000
"""

import sqlalchemy as sa
from alembic import op

import crmkit.core.types

revision = "loyalty_0003"
down_revision = "loyalty_0002"
branch_labels = None
depends_on = None

OPEN = sa.text("remaining > 0")


def upgrade() -> None:
    with op.batch_alter_table("loyalty_ledger", schema=None) as batch_op:
        batch_op.add_column(sa.Column("remaining", sa.BigInteger(), server_default="0", nullable=False))
    op.execute(
        "UPDATE loyalty_ledger SET remaining = (SELECT l.remaining FROM loyalty_lots l "
        "WHERE l.entry_id = loyalty_ledger.id) WHERE id IN (SELECT entry_id FROM loyalty_lots)"
    )
    op.drop_table("loyalty_lots")
    with op.batch_alter_table("loyalty_ledger", schema=None) as batch_op:
        batch_op.drop_index("ix_loyalty_ledger_program_id_order_id")
        batch_op.create_index(
            "ix_loyalty_ledger_open_lots",
            ["customer_id", "program_id", "expires_at"],
            unique=False,
            sqlite_where=OPEN,
            postgresql_where=OPEN,
        )


def downgrade() -> None:
    # The open lots wait in a plain table while SQLite rebuilds the ledger (loyalty_lots references it).
    op.execute(
        "CREATE TABLE loyalty_lots_moving AS SELECT id AS entry_id, program_id, customer_id, remaining, "
        "expires_at FROM loyalty_ledger WHERE remaining > 0"
    )
    with op.batch_alter_table("loyalty_ledger", schema=None) as batch_op:
        batch_op.drop_index("ix_loyalty_ledger_open_lots")
        batch_op.create_index("ix_loyalty_ledger_program_id_order_id", ["program_id", "order_id"], unique=False)
        batch_op.drop_column("remaining")
    Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "loyalty_lots",
        sa.Column("entry_id", Id, nullable=False),
        sa.Column("program_id", Id, nullable=False),
        sa.Column("customer_id", Id, nullable=False),
        sa.Column("remaining", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", crmkit.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("remaining > 0", name=op.f("ck_loyalty_lots_remaining_positive")),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name=op.f("fk_loyalty_lots_customer_id_customers")),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["loyalty_ledger.id"], name=op.f("fk_loyalty_lots_entry_id_loyalty_ledger")
        ),
        sa.ForeignKeyConstraint(
            ["program_id"], ["loyalty_programs.id"], name=op.f("fk_loyalty_lots_program_id_loyalty_programs")
        ),
        sa.PrimaryKeyConstraint("entry_id", name=op.f("pk_loyalty_lots")),
    )
    with op.batch_alter_table("loyalty_lots", schema=None) as batch_op:
        batch_op.create_index(
            "ix_loyalty_lots_customer_id_program_id_expires_at",
            ["customer_id", "program_id", "expires_at"],
            unique=False,
        )
        batch_op.create_index("ix_loyalty_lots_program_id_expires_at", ["program_id", "expires_at"], unique=False)
    op.execute(
        "INSERT INTO loyalty_lots (entry_id, program_id, customer_id, remaining, expires_at) "
        "SELECT entry_id, program_id, customer_id, remaining, expires_at FROM loyalty_lots_moving"
    )
    op.drop_table("loyalty_lots_moving")
