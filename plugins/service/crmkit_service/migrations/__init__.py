"""The Alembic revisions of the ``service`` lineage (version table ``crmkit_version_service``)."""
