"""Alembic revisions of the analytics plugin (its own lineage, branch label ``analytics``)."""
