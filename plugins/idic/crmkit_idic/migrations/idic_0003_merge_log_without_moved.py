"""The merge log no longer records what moved: the core's merge journal does (``crm.customers.unmerge``).

Merges of the log not yet undone are carried into the core's journal first (core revision ``crmkit_0009``,
applied before the plugins' revisions): the interactions, addresses, tags and contact points IDIC recorded,
and the fields and attributes the merge filled, so they can still be undone. Downgrading adds the column back
empty (``{}``): merges made since cannot be undone by the older IDIC.

Revision ID: idic_0003
Revises: idic_0002
Create Date: 2026-12-07 12:50:00.000000
"""

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "idic_0003"
down_revision = "idic_0002"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
log = sa.table(
    "idic_merges",
    sa.column("core_merge_id", sa.BigInteger),
    sa.column("customer_id", sa.BigInteger),
    sa.column("moved", JSON),
    sa.column("status", sa.String),
)
merges = sa.table("customer_merges", sa.column("id", sa.BigInteger), sa.column("filled", JSON))
journal = sa.table(
    "customer_merge_rows",
    sa.column("merge_id", sa.BigInteger),
    sa.column("table_name", sa.String),
    sa.column("column_name", sa.String),
    sa.column("row_key", sa.String),
)
points = sa.table(
    "customer_contact_points",
    sa.column("id", sa.BigInteger),
    sa.column("customer_id", sa.BigInteger),
    sa.column("kind", sa.String),
    sa.column("value", sa.String),
)


def _journal_of(conn: sa.Connection, kept_id: int, moved: dict[str, Any]) -> set[tuple[str, str]]:
    """(table, row key) of every row an IDIC merge recorded as moved to ``kept_id``."""
    rows = {("interactions", str(i)) for i in moved.get("interactions", [])}
    rows |= {("customer_addresses", str(a)) for a in moved.get("addresses", [])}
    rows |= {("customer_tags", tag) for tag in moved.get("tags", [])}
    for kind, value in moved.get("contact_points", []):
        found: list[int] = list(
            conn.execute(
                sa.select(points.c.id).where(
                    points.c.customer_id == kept_id, points.c.kind == kind, points.c.value == value
                )
            ).scalars()
        )
        rows |= {("customer_contact_points", str(point_id)) for point_id in found}
    return rows


def upgrade() -> None:
    conn = op.get_bind()
    for entry in conn.execute(
        sa.select(log.c.core_merge_id, log.c.customer_id, log.c.moved).where(log.c.status == "merged")
    ).all():
        moved = entry.moved or {}
        rows = _journal_of(conn, entry.customer_id, moved)
        if rows:
            conn.execute(
                journal.insert(),
                [
                    {"merge_id": entry.core_merge_id, "table_name": table, "column_name": "customer_id", "row_key": key}
                    for table, key in sorted(rows)
                ],
            )
        conn.execute(
            merges.update()
            .where(merges.c.id == entry.core_merge_id, merges.c.filled.is_(None))
            .values(filled={"fields": moved.get("filled", []), "attributes": moved.get("attributes_added", [])})
        )
    with op.batch_alter_table("idic_merges", schema=None) as batch_op:
        batch_op.drop_column("moved")


def downgrade() -> None:
    with op.batch_alter_table("idic_merges", schema=None) as batch_op:
        batch_op.add_column(sa.Column("moved", JSON, nullable=False, server_default=sa.text("'{}'")))
