"""Sales: order history can be imported. Orders carry the ``reference`` they had in the system they came from
(unique: a re-run of an import finds them instead of adding them twice), and an order line may be a free
description that names no catalogue product.

Revision ID: sales_0003
Revises: sales_0002
Create Date: 2026-12-07 04:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "sales_0003"
down_revision = "sales_0002"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("sales_orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reference", sa.String(length=100), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_sales_orders_reference"), ["reference"])
    with op.batch_alter_table("sales_order_lines", schema=None) as batch_op:
        batch_op.alter_column("product_id", existing_type=_ID, nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("sales_order_lines", schema=None) as batch_op:
        batch_op.alter_column("product_id", existing_type=_ID, nullable=False)
    with op.batch_alter_table("sales_orders", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_sales_orders_reference"), type_="unique")
        batch_op.drop_column("reference")
