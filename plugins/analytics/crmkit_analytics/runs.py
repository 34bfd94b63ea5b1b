"""Runs of the measures: when each was computed, for which date, currency and parameters, and what it found.

A measure clears the rows of its previous runs for the same currency, then writes its per-customer
rows under a new run id (one transaction), so each snapshot table holds the latest run per currency. Segment
fields and profiles read the latest run of each measure; ``analytics_runs`` keeps the history.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa

from crmkit.plugin_api import to_jsonable
from crmkit_analytics.models import SNAPSHOTS, runs

if TYPE_CHECKING:
    from crmkit import CRM


@attrs.frozen
class Run:
    """One computation of a measure: its id, date, currency, parameters and summary figures.

    ``scope`` is None when the summary covers every customer; read by a user whose ``analytics.read``
    reaches fewer, the summary is recounted over their customers and ``scope`` says whose
    (``"lan's team"``). Parameters (quintile cut points, fitted models) are always the whole base's.
    """

    id: int
    measure: str
    currency: str | None
    as_of: datetime
    computed_at: datetime
    actor: str
    parameters: dict[str, Any]
    summary: dict[str, Any]
    scope: str | None = None


@contextmanager
def bulk_write(conn: sa.Connection, table: sa.Table) -> Iterator[None]:
    """Around writing a whole snapshot: on PostgreSQL its foreign keys are dropped and added back ``NOT VALID``
    instead of a trigger locking each customer row as it is written (50 s for a million rows). The rows are
    valid by construction — every measure selects them joined to active customers — and the constraint
    still checks every later write. The primary key is dropped too and built again in one sort (a million
    rows: 4 s less than inserting into its index row by row), which still rejects a duplicate.
    Transactional: until commit, writes to ``customers`` wait (a batch job)."""
    if conn.dialect.name != "postgresql":
        yield
        return
    keys = [fk for fk in table.foreign_key_constraints if fk.name]
    for constraint in (*keys, table.primary_key):
        conn.exec_driver_sql(f"ALTER TABLE {table.name} DROP CONSTRAINT {constraint.name}")
    yield
    conn.execute(sa.schema.AddConstraint(table.primary_key))
    for fk in keys:
        add = sa.schema.AddConstraint(fk).compile(dialect=conn.dialect)
        conn.exec_driver_sql(f"{add} NOT VALID")


def start(
    crm: CRM, conn: sa.Connection, measure: str, currency: str | None, as_of: datetime, parameters: dict[str, Any]
) -> int:
    """Record a new run of ``measure`` and clear the rows of the runs it supersedes (same measure and
    currency) from its snapshot table; returns the run id. Call inside the run's transaction."""
    same_currency = runs.c.currency.is_(None) if currency is None else runs.c.currency == currency
    older = list(conn.execute(sa.select(runs.c.id).where(runs.c.measure == measure, same_currency)).scalars())
    table = SNAPSHOTS[measure]
    if older:
        others = sa.select(sa.func.count()).select_from(runs).where(runs.c.measure == measure, sa.not_(same_currency))
        if conn.execute(others).scalar_one() == 0:  # nothing else in the table
            if conn.dialect.name == "postgresql":  # transactional, and instant instead of a million dead rows
                conn.exec_driver_sql(f"TRUNCATE {table.name}")
            else:
                conn.execute(table.delete())
        else:
            conn.execute(table.delete().where(table.c.run_id.in_(older)))
    return int(
        conn.execute(
            runs.insert()
            .values(
                measure=measure,
                currency=currency,
                as_of=as_of,
                computed_at=crm.now(),
                actor=crm.actor,
                parameters=to_jsonable(parameters),
                summary={},
            )
            .returning(runs.c.id)
        ).scalar_one()
    )


def finish(conn: sa.Connection, run_id: int, summary: dict[str, Any], parameters: dict[str, Any] | None = None) -> Run:
    """Store the run's summary figures (and parameters found while computing, e.g. cut points); return the run."""
    values = {"summary": to_jsonable(summary)}
    if parameters is not None:
        values["parameters"] = to_jsonable(parameters)
    conn.execute(runs.update().where(runs.c.id == run_id).values(values))
    return get(conn, run_id)


def get(conn: sa.Connection, run_id: int) -> Run:
    """The run with this id."""
    row = conn.execute(sa.select(runs).where(runs.c.id == run_id)).mappings().one()
    return Run(**row)


def latest(conn: sa.Connection, measure: str) -> Run | None:
    """The most recent run of ``measure`` (any currency), or None."""
    run_id = conn.execute(sa.select(sa.func.max(runs.c.id)).where(runs.c.measure == measure)).scalar()
    return None if run_id is None else get(conn, run_id)


def latest_id(measure: str) -> sa.ScalarSelect[Any]:
    """SQL for the id of the most recent run of ``measure`` (what segment fields read)."""
    return sa.select(sa.func.max(runs.c.id)).where(runs.c.measure == measure).scalar_subquery()
