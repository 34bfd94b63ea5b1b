"""Alembic revisions of the loyalty plugin (branch ``loyalty``)."""
