"""The plugin's hook implementations: thin glue between crmkit's events and ``crm.idic``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crmkit import hookimpl
from crmkit.plugin_api import chunks, delete_in, journal_moved, repoint, select_in
from crmkit.plugin_api import core_tables as core
from crmkit.privacy import delete_rows, export_rows
from crmkit_idic import models as m
from crmkit_idic.access import PERMISSIONS, READ, mask_export
from crmkit_idic.service import IdicService, keep_apart
from crmkit_idic.steps import close_plan_item

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from crmkit import CRM, Customer, Interaction, Permission

#: Every IDIC table holding rows about a customer (children first, for erasure).
CUSTOMER_TABLES = (m.plan_items, m.profiles, m.identifiers, m.reviews, m.do_not_merge, m.merge_log)


@hookimpl
def crmkit_permissions() -> list[Permission]:
    """``idic.run``, ``idic.review``, ``idic.read`` and ``idic.plan`` (see the README's Permissions)."""
    return list(PERMISSIONS)


@hookimpl
def crmkit_services(crm: CRM) -> dict[str, Any]:
    return {"idic": IdicService(crm)}


@hookimpl
def crmkit_interaction_logged(crm: CRM, interaction: Interaction, session: Session) -> None:
    """Logging a contact closes the customer's matching open plan item (same channel)."""
    close_plan_item(session.connection(), interaction.customer_id, interaction.channel, interaction.id, crm.now())


@hookimpl
def crmkit_customers_merged_many(crm: CRM, pairs: Mapping[int, int], session: Session) -> None:
    """Re-point IDIC rows from merged customers to the kept ones, set-based (a kept customer's profile wins)."""
    repoint_rows(crm, session.connection(), pairs)


@hookimpl
def crmkit_customer_unmerged(crm: CRM, kept: Customer, restored: Customer, merge_id: int, session: Session) -> None:
    """The core gave the restored customer its IDIC rows back (journaled); the log and the do-not-merge list follow."""
    crm.idic.unmerged(session.connection(), kept.id, restored.id, merge_id)


def repoint_rows(crm: CRM, conn: sa.Connection, pairs: Mapping[int, int]) -> None:
    """Move IDIC rows of merged customers to their kept ones (``pairs``: merged id → kept id), as pair-by-pair
    merges in order would: a kept customer keeps its own profile (else takes its first merged record's),
    reviews of a customer with itself go, and do-not-merge pairs follow both their customers."""
    p, r, d = m.profiles.c, m.reviews.c, m.do_not_merge.c
    kept_ids = sorted(set(pairs.values()))
    have = {row.customer_id for row in select_in(conn, sa.select(p.customer_id), p.customer_id, kept_ids)}
    moving = {row.customer_id for row in select_in(conn, sa.select(p.customer_id), p.customer_id, list(pairs))}
    moved: dict[int, int] = {}
    for merged_id, kept_id in pairs.items():
        if merged_id in moving and kept_id not in have:
            moved[merged_id] = kept_id
            have.add(kept_id)
    delete_in(conn, p.customer_id, [x for x in moving if x not in moved])
    repoint(conn, p.customer_id, moved)
    for table in (m.identifiers, m.plan_items):
        repoint(conn, table.c.customer_id, pairs)
    repoint(conn, r.customer_id, pairs)
    repoint(conn, r.other_id, pairs)
    for batch in chunks(kept_ids):
        conn.execute(m.reviews.delete().where(r.customer_id.in_(batch), r.customer_id == r.other_id))
    apart = {
        (row.customer_id, row.other_id): row.reason
        for row in [
            *select_in(conn, sa.select(m.do_not_merge), d.customer_id, list(pairs)),
            *select_in(conn, sa.select(m.do_not_merge), d.other_id, list(pairs)),
        ]
    }
    for batch in chunks(list(apart)):
        conn.execute(m.do_not_merge.delete().where(sa.tuple_(d.customer_id, d.other_id).in_(batch)))
    for (one, two), reason in apart.items():
        now_one, now_two = pairs.get(one, one), pairs.get(two, two)
        if now_one != now_two and keep_apart(crm, conn, now_one, now_two, reason):
            merged, other = (one, now_two) if one in pairs else (two, now_one)
            column = "customer_id" if pairs[merged] < other else "other_id"  # where the kept id now is
            journal_moved(conn, m.do_not_merge, column, {merged: [other]})  # an unmerge gives the pair back


@hookimpl
def crmkit_customer_export(crm: CRM, customer: Customer, session: Session) -> dict[str, Any]:
    """Every IDIC row about the customer (the core checked ``customers.export``); contact details in them
    masked for a user who may not see the customer's."""
    rows = export_rows(session, CUSTOMER_TABLES, customer.id)
    return {"idic": rows if crm.access.sees_contacts_of(customer.owner) else mask_export(rows)}


@hookimpl
def crmkit_customer_erase(crm: CRM, customer: Customer, session: Session) -> None:
    delete_rows(session, CUSTOMER_TABLES, customer.id)


@hookimpl
def crmkit_customer_profile(crm: CRM, customer: Customer, session: Session) -> dict[str, Any]:
    """The ``idic`` section, when the user's ``idic.read`` scope reaches the customer."""
    section = crm.idic.profile_section(session.connection(), customer)
    return {} if section is None else {"idic": section}


@hookimpl
def crmkit_segment_fields(crm: CRM) -> dict[str, Any]:
    p, t = m.profiles.c, m.treatments.c
    mine = p.customer_id == core.customers.c.id
    return {
        "idic_tier": sa.select(p.tier).where(mine).scalar_subquery(),
        "idic_needs": sa.select(p.needs).where(mine).scalar_subquery(),
        "idic_channel": sa.select(p.channel).where(mine).scalar_subquery(),
        "idic_treatment": sa.select(t.name).join(m.profiles, p.treatment_id == t.id).where(mine).scalar_subquery(),
    }


@hookimpl(trylast=True)
def crmkit_demo_populate(crm: CRM, customer_ids: list[int], seed: int) -> None:
    """Two treatment rules and one full IDIC run over the demo customers, after every other plugin's demo data
    (the run merges duplicates, and its value tiers need the demo's orders)."""
    crm.idic.add_treatment(
        "Khách VIP",
        tier="most_valuable",
        message="Mời tham dự sự kiện tri ân khách hàng VIP",
        service_level="gold",
        priority=10,
    )
    crm.idic.add_treatment(
        "Khách tiềm năng", tier="most_growable", offer="Giảm 10% cho đơn hàng tiếp theo", priority=20
    )
    crm.idic.run()


@hookimpl
def crmkit_demo_overview(crm: CRM) -> dict[str, list[str]]:
    if not crm.access.allowed(READ):
        return {}
    run = crm.idic.last_run()
    if run is None:
        return {}
    lines = [f"run {run.id}: {run.status}"]
    for result in run.results:
        lines.append(f"{result.step}: " + ", ".join(f"{k} {v}" for k, v in result.counts.items()))
    return {"IDIC": lines}
