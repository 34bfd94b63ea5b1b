"""The Alembic revisions of the ``notes`` lineage (version table ``crmkit_version_notes``)."""
