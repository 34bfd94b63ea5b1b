"""The Alembic revisions of the ``campaigns`` lineage (version table ``crmkit_version_campaigns``)."""
