"""Alembic environment shared by every crmkit lineage; the caller passes the connection."""

from alembic import context

config = context.config
connection = config.attributes["connection"]
if connection is None:
    raise RuntimeError("crmkit migrations run through `crmkit db upgrade` (or crm.db.upgrade()), not bare alembic")

target_metadata = config.attributes.get("target_metadata")


def _own_tables(name: str | None, type_: str, parent_names: dict[str, str | None]) -> bool:
    """Autogenerate diffs only this lineage's tables: the core's, other plugins' and version tables are not its own."""
    return type_ != "table" or target_metadata is None or name in target_metadata.tables


context.configure(
    connection=connection,
    target_metadata=target_metadata,
    include_name=_own_tables,
    version_table=config.attributes["version_table"],
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
