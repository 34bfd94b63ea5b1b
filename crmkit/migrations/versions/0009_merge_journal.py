"""The merge journal: which rows every merge moved (``customer_merge_rows``), what it filled on the kept customer,
and when it was undone (``customer_merges.filled``, ``undone_at``, ``undone_by``).

Revision ID: crmkit_0009
Revises: crmkit_0008
Create Date: 2026-12-07 12:40:00.000000
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import crmkit.core.types

revision = "crmkit_0009"
down_revision = "crmkit_0008"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Time = crmkit.core.types.UTCDateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("customer_merges", schema=None) as batch_op:
        batch_op.add_column(sa.Column("filled", JSON, nullable=True))
        batch_op.add_column(sa.Column("undone_at", Time, nullable=True))
        batch_op.add_column(sa.Column("undone_by", sa.String(length=100), nullable=True))
    op.create_table(
        "customer_merge_rows",
        sa.Column("merge_id", Id, nullable=False),
        sa.Column("table_name", sa.String(length=100), nullable=False),
        sa.Column("column_name", sa.String(length=100), nullable=False),
        sa.Column("row_key", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["merge_id"], ["customer_merges.id"], name=op.f("fk_customer_merge_rows_merge_id_customer_merges")
        ),
        sa.PrimaryKeyConstraint(
            "merge_id", "table_name", "column_name", "row_key", name=op.f("pk_customer_merge_rows")
        ),
    )


def downgrade() -> None:
    op.drop_table("customer_merge_rows")
    with op.batch_alter_table("customer_merges", schema=None) as batch_op:
        batch_op.drop_column("undone_by")
        batch_op.drop_column("undone_at")
        batch_op.drop_column("filled")
