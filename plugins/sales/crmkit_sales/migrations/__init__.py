"""The Alembic revisions of the ``sales`` lineage (version table ``crmkit_version_sales``)."""
