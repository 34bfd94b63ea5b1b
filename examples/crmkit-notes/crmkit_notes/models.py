"""The plugin's own table: it references the core's ``customers.id`` and never alters core tables."""

import sqlalchemy as sa

from crmkit.plugin_api import Id, UTCDateTime, customer_fk, new_metadata

metadata = new_metadata()

notes = sa.Table(
    "notes",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    customer_fk(index=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("author", sa.String(100), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index("ix_notes_customer_id_created_at", "customer_id", "created_at", "id"),  # a customer's notes, newest first
)
