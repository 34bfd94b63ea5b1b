"""Loyalty earning path: a configuration version on programs, and the ledger's member index covering the tier window.

Revision ID: loyalty_0002
Revises: loyalty_0001
Create Date: 2026-11-23 12:40:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "loyalty_0002"
down_revision = "loyalty_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("loyalty_programs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("config_version", sa.Integer(), server_default="0", nullable=False))
    with op.batch_alter_table("loyalty_ledger", schema=None) as batch_op:
        batch_op.drop_index("ix_loyalty_ledger_customer_id_program_id_created_at")
        batch_op.create_index(
            "ix_loyalty_ledger_member_window",
            ["customer_id", "program_id", "created_at", "id", "qualifying", "points", "amount_minor"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("loyalty_ledger", schema=None) as batch_op:
        batch_op.drop_index("ix_loyalty_ledger_member_window")
        batch_op.create_index(
            "ix_loyalty_ledger_customer_id_program_id_created_at",
            ["customer_id", "program_id", "created_at", "id"],
            unique=False,
        )
    with op.batch_alter_table("loyalty_programs", schema=None) as batch_op:
        batch_op.drop_column("config_version")
