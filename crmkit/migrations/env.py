"""Alembic environment shared by every crmkit lineage; the caller passes the connection."""

from alembic import context

config = context.config
connection = config.attributes["connection"]
if connection is None:
    raise RuntimeError("crmkit migrations run through `crmkit db upgrade` (or crm.db.upgrade()), not bare alembic")

context.configure(
    connection=connection,
    target_metadata=config.attributes.get("target_metadata"),
    version_table=config.attributes["version_table"],
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
