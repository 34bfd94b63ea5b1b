"""Column types every crmkit table uses: UTC timestamps, JSON, search keys.

Plugins import these so all tables agree on how time and text are stored.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

#: Constraint names are predictable so migrations can drop them by name (and SQLite batch mode works).
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_metadata() -> sa.MetaData:
    """A MetaData with crmkit's naming convention; every plugin builds its tables on one."""
    return sa.MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Timezone-aware UTC in and out; naive datetimes are refused rather than guessed."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: crmkit stores timezone-aware times only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


#: JSON column: JSONB on PostgreSQL, JSON text elsewhere.
JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

#: Byte-ordered text so ``key >= prefix`` range scans work the same on every backend.
SearchKey = sa.String(400).with_variant(sa.String(400, collation="C"), "postgresql")


def utcnow() -> datetime:
    """The system clock, timezone-aware UTC: the default of ``CRM(clock=…)``. Code with a CRM at hand reads
    ``crm.now()`` instead, so a test's frozen clock (``crmkit.testing.FrozenClock``) reaches it."""
    return datetime.now(UTC)


def customer_fk(**kwargs: Any) -> sa.Column[int]:
    """``customer_id`` column referencing the core customers table (what plugin tables link by).

    The key points at the core's ``customers.id`` Column itself, not the name, so it also
    resolves from a plugin's own MetaData (exports, contract checks and autogenerate need that).
    """
    from crmkit.core import tables  # while the core's tables load, ``customers`` is already defined

    return sa.Column(
        "customer_id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        sa.ForeignKey(tables.customers.c.id),
        nullable=kwargs.pop("nullable", False),
        index=kwargs.pop("index", True),
        **kwargs,
    )


#: Integer primary key type: BIGINT on PostgreSQL, INTEGER (rowid alias) on SQLite.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
