"""The Alembic revisions of the ``idic`` lineage (version table ``crmkit_version_idic``)."""
