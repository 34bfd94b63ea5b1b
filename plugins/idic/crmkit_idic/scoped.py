"""A run's step results as a user with a narrower scope sees them: counted again, in SQL, over their customers only.

A run stores its counts and report over every customer it covered. A user whose ``idic.read`` scope is
``own`` or ``team`` must not learn the whole base's figures from them, so each step of a finished run is
re-aggregated from the rows the run left (merge log, review queue, profiles, plan items), restricted to the
customers in the user's scope. The run says so: ``IdicRun.scoped`` names the user.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa

from crmkit_idic import models as m
from crmkit_idic.access import READ, both
from crmkit_idic.steps import matrix

if TYPE_CHECKING:
    from crmkit import CRM
    from crmkit_idic.runs import IdicRun, StepResult

Within = Callable[[sa.ColumnElement[Any]], sa.ColumnElement[bool]]
Figures = tuple[dict[str, Any], dict[str, Any]]


def is_scoped(crm: CRM) -> bool:
    """Whether the acting user reads IDIC with a scope narrower than every customer."""
    return crm.access.principal.owners(READ) is not None


def rescope(crm: CRM, runs: list[IdicRun]) -> list[IdicRun]:
    """``runs`` with every finished step's counts and report re-aggregated over the user's ``idic.read`` scope."""
    access = crm.access

    def within(column: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
        return access.customers(column, READ)

    shown = []
    with crm.reading() as conn:
        for run in runs:
            results = []
            for result in run.results:
                if result.status == "done":
                    counts, report = RECOUNT[result.step](crm, conn, run, result, within)
                    result = attrs.evolve(result, counts=counts, report=report)
                results.append(result)
            shown.append(attrs.evolve(run, results=tuple(results), scoped=access.principal.username))
    return shown


def _count(conn: sa.Connection, table: sa.Table, *where: sa.ColumnElement[bool]) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar_one())


def _identify(crm: CRM, conn: sa.Connection, run: IdicRun, result: StepResult, within: Within) -> Figures:
    g, r = m.merge_log.c, m.reviews.c
    merged = sa.select(g.customer_id.label("id")).where(g.run_id == run.id, within(g.customer_id))
    queued = sa.and_(r.run_id == run.id, both(crm, r.customer_id, r.other_id, READ))
    matched = sa.union(merged, sa.select(r.customer_id).where(queued), sa.select(r.other_id).where(queued)).subquery()
    counts = {
        "customers_matched": int(conn.execute(sa.select(sa.func.count()).select_from(matched)).scalar_one()),
        "merged": _count(conn, m.merge_log, g.run_id == run.id, within(g.customer_id)),
        "queued": _count(conn, m.reviews, queued),
    }
    return counts, {}


def _differentiate(crm: CRM, conn: sa.Connection, run: IdicRun, result: StepResult, within: Within) -> Figures:
    p = m.profiles.c
    mine = sa.and_(p.run_id == run.id, within(p.customer_id))
    tiers = dict(conn.execute(sa.select(p.tier, sa.func.count()).where(mine).group_by(p.tier)).all())
    sizes = conn.execute(sa.select(p.needs, sa.func.count()).where(mine).group_by(p.needs)).all()
    stored = result.report
    groups = sorted(sizes, key=lambda group: (-group[1], group[0] or ""))  # biggest first, as the step reports
    needs = {
        "method": (stored.get("needs") or {}).get("method", "rules"),
        "groups": [{"needs": name, "customers": n} for name, n in groups],
    }
    counts = {"customers": sum(tiers.values()), **{f"tier_{k}": v for k, v in sorted(tiers.items())}}
    return counts, {
        "note": stored.get("note"),
        "currency": stored.get("currency"),
        "needs": needs,
        "matrix": matrix(conn, mine),
    }


def _interact(crm: CRM, conn: sa.Connection, run: IdicRun, result: StepResult, within: Within) -> Figures:
    p, pl = m.profiles.c, m.plan_items.c
    mine = sa.and_(pl.run_id == run.id, within(pl.customer_id))
    customers = _count(conn, m.profiles, within(p.customer_id))
    planned = _count(conn, m.plan_items, mine)
    by_channel = dict(
        conn.execute(sa.select(pl.channel, sa.func.count()).where(mine).group_by(pl.channel).order_by(pl.channel)).all()
    )
    by_owner = [
        {"owner": owner or "(unassigned)", "contacts": n}
        for owner, n in conn.execute(
            sa.select(pl.owner, sa.func.count()).where(mine).group_by(pl.owner).order_by(pl.owner)
        )
    ]
    counts = {
        "customers": customers,
        "planned": planned,
        "no_consented_channel": _count(conn, m.profiles, within(p.customer_id), p.channel.is_(None)),
    }
    return counts, {
        "coverage": round(planned / customers, 4) if customers else 0.0,
        "by_channel": by_channel,
        "by_owner": by_owner,
    }


def _customize(crm: CRM, conn: sa.Connection, run: IdicRun, result: StepResult, within: Within) -> Figures:
    p, t = m.profiles.c, m.treatments.c
    given = dict(
        conn.execute(
            sa.select(p.treatment_id, sa.func.count())
            .where(within(p.customer_id), p.treatment_id.is_not(None))
            .group_by(p.treatment_id)
        ).all()
    )
    rules = conn.execute(sa.select(t.id, t.name).order_by(t.priority, t.id)).all()
    defaulted = _count(conn, m.profiles, within(p.customer_id), p.treatment_id.is_(None))
    return (
        {"treated": sum(given.values()), "default_action": defaulted},
        {"treatments": [{"treatment": name, "customers": given.get(rule_id, 0)} for rule_id, name in rules]},
    )


RECOUNT: dict[str, Callable[[CRM, sa.Connection, IdicRun, StepResult, Within], Figures]] = {
    "identify": _identify,
    "differentiate": _differentiate,
    "interact": _interact,
    "customize": _customize,
}
