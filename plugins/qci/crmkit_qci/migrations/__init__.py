"""The Alembic revisions of the ``qci`` lineage (version table ``crmkit_version_qci``)."""
