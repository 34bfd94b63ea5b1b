"""Identify: gather every identifier, normalize it, resolve it to customers, merge the sure matches,
queue the uncertain ones, and turn unknown senders of interactions into prospects.

Match rules (the pair's confidence is the best rule it meets; see the README):

======================================================  ==========
same e-mail (or card, social handle, external id) and similar name   0.99
same phone and similar name                                           0.97
same e-mail / card / handle, different name                          0.85
same phone, different name                                            0.80
same accent-free name and birth date                                  0.75
an interaction sender equal to another customer's identifier          0.70
======================================================  ==========

Two or more shared identifiers with a similar name give at least 0.99. A conflict — both
birth dates known and different — caps the pair at 0.60 and it is never merged automatically;
neither is a pair a reviewer rejected (``idic_do_not_merge``), nor a cluster that would join
such a pair. Identifiers held by more than ``shared_limit`` customers (a family or company
phone) produce no match at all. Candidates are found by SQL joins on the normalized
identifiers; only candidate pairs reach Python.
"""

from __future__ import annotations

import difflib
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa

from crmkit.errors import ValidationError
from crmkit.plugin_api import chunks, normalize_email, normalize_phone
from crmkit.plugin_api import core_tables as core
from crmkit_idic import hookspecs
from crmkit_idic import models as m
from crmkit_idic.access import run_scope
from crmkit_idic.config import setting

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from crmkit import CRM

BATCH = 5000
SIMILAR_NAME = 0.85
CONFLICT_CAP = 0.6
#: Confidences of the match rules (see the module docstring).
STRONG = 0.99
STRONG_OTHER_NAME = 0.85
PHONE = 0.97
PHONE_OTHER_NAME = 0.8
NAME_AND_BIRTH = 0.75
SENDER = 0.7


@attrs.define
class Candidate:
    """Two customers that may be one, with what they share."""

    low: int
    high: int
    shared: set[tuple[str, str, bool]] = attrs.field(factory=set)  # (kind, value, trusted)
    same_name_and_birth: bool = False
    score: float = 0.0
    reason: str = ""
    conflict: bool = False


def customer_set(scope: sa.ColumnElement[bool] | None) -> sa.Select[Any]:
    """Ids of the active customers a run covers (``scope`` is a condition over core ``customers``)."""
    c = core.customers.c
    query = sa.select(c.id).where(c.status == "active")
    return query.where(scope) if scope is not None else query


# -- gathering ---------------------------------------------------------------------------------------------


def gather(crm: CRM, conn: sa.Connection) -> dict[str, int]:
    """Rebuild ``idic_identifiers`` from every source; returns identifiers per kind."""
    c, cp, i = core.customers.c, core.contact_points.c, core.interactions.c
    inbox = _inbox_ids(crm)
    conn.execute(m.identifiers.delete())
    target = ("customer_id", "kind", "value", "source")
    active = sa.and_(c.status == "active", c.id.not_in(inbox))
    conn.execute(
        m.identifiers.insert().from_select(
            target,
            sa.select(cp.customer_id, cp.kind, cp.value, sa.literal("contact"))
            .join(core.customers, c.id == cp.customer_id)
            .where(active),
        )
    )
    conn.execute(
        m.identifiers.insert().from_select(
            target,
            sa.select(c.id, sa.literal("external_id"), c.external_id, sa.literal("external_id")).where(
                active, c.external_id.is_not(None)
            ),
        )
    )
    for key in setting(crm, "social_keys"):
        handle = sa.func.lower(sa.func.trim(sa.func.ltrim(sa.func.trim(c.attributes[key].as_string()), "@")))
        conn.execute(
            m.identifiers.insert().from_select(
                target,
                sa.select(c.id, sa.literal(f"social:{key}"), handle, sa.literal("attributes")).where(
                    active, handle != ""
                ),
            )
        )
    for source in crm.hooks.call(hookspecs.crmkit_idic_identifiers):
        if source is None:
            continue
        sub = source.subquery() if isinstance(source, sa.Select) else source
        missing = {"customer_id", "kind", "value"} - set(sub.c.keys())
        if missing:
            raise ValidationError(
                f"an identifier source lacks column(s) {', '.join(sorted(missing))}", field="crmkit_idic_identifiers"
            )
        value = sa.func.lower(sa.func.trim(sub.c.value))
        conn.execute(
            m.identifiers.insert().from_select(
                target,
                sa.select(sub.c.customer_id, sub.c.kind, value, sa.literal("plugin"))
                .join(core.customers, c.id == sub.c.customer_id)
                .where(active, sub.c.value.is_not(None)),
            )
        )
    # Senders of interactions on known customers: e-mails in SQL, phones normalized in batches.
    on_known = sa.and_(i.sender.is_not(None), i.customer_id.in_(sa.select(c.id).where(active)))
    conn.execute(
        m.identifiers.insert().from_select(
            target,
            sa.select(
                i.customer_id, sa.literal("email"), sa.func.lower(sa.func.trim(i.sender)), sa.literal("interaction")
            )
            .where(on_known, i.sender.like("%@%"))
            .distinct(),
        )
    )
    rows = conn.execute(sa.select(i.customer_id, i.sender).where(on_known, ~i.sender.like("%@%")).distinct())
    for chunk in chunks((tuple(row) for row in rows), BATCH):
        values = []
        for customer_id, sender in chunk:
            phone = _phone(sender, crm.default_country)
            if phone:
                values.append({"customer_id": customer_id, "kind": "phone", "value": phone, "source": "interaction"})
        if values:
            conn.execute(m.identifiers.insert(), values)
    ident = m.identifiers.c
    return dict(conn.execute(sa.select(ident.kind, sa.func.count()).group_by(ident.kind).order_by(ident.kind)).all())


def _inbox_ids(crm: CRM) -> sa.Select[Any]:
    return sa.select(core.tags.c.customer_id).where(core.tags.c.tag == setting(crm, "inbox_tag"))


def _phone(raw: str, country: str) -> str | None:
    try:
        return normalize_phone(raw, country)
    except (ValueError, ValidationError):
        return None


# -- unknown senders ---------------------------------------------------------------------------------------


def route_inbox(crm: CRM, session: Session) -> dict[str, int]:
    """Interactions logged on inbox customers: re-point each to the customer its sender identifies, or to a
    new prospect holding that sender (one prospect per sender). Returns routed / prospects counts."""
    conn = session.connection()
    i, c = core.interactions.c, core.customers.c
    inbox = _inbox_ids(crm)
    senders = (
        conn.execute(
            sa.select(i.sender).where(i.customer_id.in_(inbox), i.sender.is_not(None)).distinct().order_by(i.sender)
        )
        .scalars()
        .all()
    )
    routed = prospects = 0
    for sender in senders:
        kind, value = _identify_sender(sender, crm.default_country)
        if value is None:
            continue
        owner = conn.execute(
            sa.select(core.contact_points.c.customer_id)
            .join(core.customers, c.id == core.contact_points.c.customer_id)
            .where(
                core.contact_points.c.kind == kind,
                core.contact_points.c.value == value,
                c.status == "active",
                c.id.not_in(inbox),
            )
            .order_by(core.contact_points.c.customer_id)
            .limit(1)
        ).scalar()
        if owner is None:
            values = crm.customers.validate({"name": value, f"{kind}s": [value], "lifecycle_stage": "prospect"})
            owner = crm.customers.insert_validated(session, values, source="idic:inbox").id
            prospects += 1
        moved = conn.execute(
            core.interactions.update().where(i.customer_id.in_(inbox), i.sender == sender).values(customer_id=owner)
        )
        routed += moved.rowcount
    return {"interactions_routed": routed, "prospects_created": prospects}


def _identify_sender(sender: str, country: str) -> tuple[str, str | None]:
    if "@" in sender:
        try:
            return "email", normalize_email(sender)
        except (ValueError, ValidationError):
            return "email", None
    return "phone", _phone(sender, country)


# -- candidates and scores -----------------------------------------------------------------------------------


def candidates(
    crm: CRM, conn: sa.Connection, scope: sa.ColumnElement[bool] | None, user: sa.ColumnElement[bool] | None = None
) -> tuple[list[Candidate], int]:
    """Scored candidate pairs (at least one customer in ``scope``, both in the acting ``user``'s scope when
    given, no do-not-merge pair), and the number of shared identifiers that were left out."""
    ident = m.identifiers.c
    limit = int(setting(crm, "shared_limit"))
    holders = sa.func.count(ident.customer_id.distinct())
    groups = (
        sa.select(ident.kind, ident.value, holders.label("holders"))
        .group_by(ident.kind, ident.value)
        .having(holders >= 2)
        .subquery()
    )
    shared = conn.execute(sa.select(sa.func.count()).select_from(groups).where(groups.c.holders > limit)).scalar_one()
    a, b = m.identifiers.alias("a"), m.identifiers.alias("b")
    in_scope = customer_set(scope)
    pair_query = (
        sa.select(
            a.c.customer_id,
            b.c.customer_id,
            a.c.kind,
            a.c.value,
            sa.and_(a.c.source != "interaction", b.c.source != "interaction"),
        )
        .join(groups, sa.and_(groups.c.kind == a.c.kind, groups.c.value == a.c.value, groups.c.holders <= limit))
        .join(b, sa.and_(b.c.kind == a.c.kind, b.c.value == a.c.value, b.c.customer_id > a.c.customer_id))
    )
    if scope is not None:
        pair_query = pair_query.where(sa.or_(a.c.customer_id.in_(in_scope), b.c.customer_id.in_(in_scope)))
    if user is not None:
        theirs = customer_set(user)
        pair_query = pair_query.where(a.c.customer_id.in_(theirs), b.c.customer_id.in_(theirs))
    found: dict[tuple[int, int], Candidate] = {}
    for x, y, kind, value, trusted in conn.execute(pair_query):
        found.setdefault((x, y), Candidate(x, y)).shared.add((kind, value, bool(trusted)))
    ca, cb = core.customers.alias("ca"), core.customers.alias("cb")
    by_name = (
        sa.select(ca.c.id, cb.c.id)
        .join(cb, sa.and_(ca.c.name_key == cb.c.name_key, ca.c.birth_date == cb.c.birth_date, ca.c.id < cb.c.id))
        # both sides NOT NULL: whichever side the planner scans first skips the (many) customers without one
        .where(
            ca.c.status == "active", cb.c.status == "active", ca.c.birth_date.is_not(None), cb.c.birth_date.is_not(None)
        )
    )
    if scope is not None:
        by_name = by_name.where(sa.or_(ca.c.id.in_(in_scope), cb.c.id.in_(in_scope)))
    if user is not None:
        theirs = customer_set(user)
        by_name = by_name.where(ca.c.id.in_(theirs), cb.c.id.in_(theirs))
    for x, y in conn.execute(by_name):
        found.setdefault((x, y), Candidate(x, y)).same_name_and_birth = True
    refused = _refused(conn, found)
    result = [cand for key, cand in found.items() if key not in refused]
    _score(conn, result)
    return result, shared


def _refused(conn: sa.Connection, found: dict[tuple[int, int], Candidate]) -> set[tuple[int, int]]:
    """Pairs a reviewer already rejected or that are still waiting in the queue."""
    refused: set[tuple[int, int]] = set()
    ids = sorted({x for pair in found for x in pair})
    d, r = m.do_not_merge.c, m.reviews.c
    for chunk in chunks(((x,) for x in ids), BATCH):
        some = [x for (x,) in chunk]
        refused.update(
            tuple(row) for row in conn.execute(sa.select(d.customer_id, d.other_id).where(d.customer_id.in_(some)))
        )
        refused.update(
            tuple(row)
            for row in conn.execute(
                sa.select(r.customer_id, r.other_id).where(r.customer_id.in_(some), r.status == "pending")
            )
        )
    return refused


def _score(conn: sa.Connection, pairs: list[Candidate]) -> None:
    """Apply the match rules to each pair (names and birth dates read in batches)."""
    c = core.customers.c
    ids = sorted({x for cand in pairs for x in (cand.low, cand.high)})
    people: dict[int, Any] = {}
    for chunk in chunks(((x,) for x in ids), BATCH):
        people.update(
            {
                row.id: row
                for row in conn.execute(
                    sa.select(c.id, c.name_key, c.birth_date, c.kind).where(c.id.in_([x for (x,) in chunk]))
                )
            }
        )
    for cand in pairs:
        one, two = people[cand.low], people[cand.high]
        similar = (
            one.name_key == two.name_key
            or difflib.SequenceMatcher(None, one.name_key, two.name_key).ratio() >= SIMILAR_NAME
        )
        name_note = "similar name" if similar else "different name"
        scores: list[tuple[float, str]] = []
        trusted = sorted((kind, value) for kind, value, ok in cand.shared if ok)
        for kind, value in trusted:
            if kind == "phone":
                scores.append((PHONE if similar else PHONE_OTHER_NAME, f"same phone {value}, {name_note}"))
            else:
                scores.append((STRONG if similar else STRONG_OTHER_NAME, f"same {kind} {value}, {name_note}"))
        if len(trusted) >= 2 and similar:
            scores.append((STRONG, f"{len(trusted)} shared identifiers, similar name"))
        if cand.same_name_and_birth:
            scores.append((NAME_AND_BIRTH, f"same name and birth date {one.birth_date}"))
        for kind, value, ok in sorted(cand.shared):
            if not ok:
                scores.append((SENDER, f"interaction sender {value} is the other's {kind}"))
        cand.score, cand.reason = max(scores)
        if one.kind != two.kind:
            cand.score, cand.conflict = 0.0, True
            cand.reason += f"; conflict: a {one.kind} and a {two.kind}"
        elif one.birth_date and two.birth_date and one.birth_date != two.birth_date:
            cand.score, cand.conflict = min(cand.score, CONFLICT_CAP), True
            cand.reason += f"; conflict: birth dates differ ({one.birth_date} / {two.birth_date})"


# -- merging -------------------------------------------------------------------------------------------------


def clusters(conn: sa.Connection, sure: list[Candidate]) -> tuple[list[list[Candidate]], list[Candidate]]:
    """Group sure pairs into clusters (union-find); a cluster that would join two customers a reviewer kept
    apart, or with differing birth dates, is not merged: its pairs are returned to queue instead."""
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for cand in sure:
        parent[find(cand.high)] = find(cand.low)
    groups: dict[int, list[Candidate]] = defaultdict(list)
    for cand in sure:
        groups[find(cand.low)].append(cand)
    members = {root: sorted({x for cand in edges for x in (cand.low, cand.high)}) for root, edges in groups.items()}
    blocked = _blocked_clusters(conn, members)
    merge = [edges for root, edges in groups.items() if root not in blocked]
    held = [cand for root in blocked for cand in groups[root]]
    for cand in held:
        cand.reason += "; held: its cluster joins customers kept apart"
    return merge, held


def _blocked_clusters(conn: sa.Connection, members: dict[int, list[int]]) -> set[int]:
    """Clusters (of more than two) holding a do-not-merge pair or two different birth dates."""
    big = {root: ids for root, ids in members.items() if len(ids) > 2}
    if not big:
        return set()
    where = {x: root for root, ids in big.items() for x in ids}
    blocked: set[int] = set()
    d, c = m.do_not_merge.c, core.customers.c
    births: dict[int, set[Any]] = defaultdict(set)
    for chunk in chunks(((x,) for x in sorted(where)), BATCH):
        some = [x for (x,) in chunk]
        for x, y in conn.execute(sa.select(d.customer_id, d.other_id).where(d.customer_id.in_(some))):
            if where.get(x) is not None and where.get(x) == where.get(y):
                blocked.add(where[x])
        for x, birth in conn.execute(sa.select(c.id, c.birth_date).where(c.id.in_(some), c.birth_date.is_not(None))):
            births[where[x]].add(birth)
    blocked.update(root for root, dates in births.items() if len(dates) > 1)
    return blocked


@attrs.frozen
class PlannedMerge:
    """One merge to make: ``merged_id`` folds into ``kept_id``, for this score and reason."""

    kept_id: int
    merged_id: int
    score: float
    reason: str


def merge_pair(
    crm: CRM,
    session: Session,
    kept_id: int,
    merged_id: int,
    *,
    score: float,
    reason: str,
    automatic: bool,
    run_id: int | None,
) -> int:
    """Merge one pair through the core (whose merge journal an unmerge reads), logging why; returns the merge-log id."""
    (log_id,) = merge_planned(
        crm, session, [PlannedMerge(kept_id, merged_id, score, reason)], automatic=automatic, run_id=run_id
    )
    return log_id


def merge_planned(
    crm: CRM, session: Session, plan: list[PlannedMerge], *, automatic: bool, run_id: int | None
) -> list[int]:
    """Merge every planned pair in one ``crm.customers.merge_many`` (every plugin re-points its rows, the core
    journals them), logging why each was merged; returns the merge-log ids in plan order. Runs in the caller's
    transaction."""
    if not plan:
        return []
    conn = session.connection()
    merges = crm.customers.merge_many([(p.kept_id, p.merged_id) for p in plan])
    now = crm.now()
    rows = [
        {
            "run_id": run_id,
            "customer_id": p.kept_id,
            "merged_id": p.merged_id,
            "core_merge_id": merge.id,
            "score": p.score,
            "reason": p.reason[:500],
            "automatic": automatic,
            "status": "merged",
            "at": now,
        }
        for p, merge in zip(plan, merges)
    ]
    logged = m.merge_log.insert().returning(m.merge_log.c.id, sort_by_parameter_order=True)
    return [log_id for batch in chunks(rows, BATCH) for log_id in conn.execute(logged, batch).scalars()]


# -- the step ------------------------------------------------------------------------------------------------


def run_identify(
    crm: CRM, session: Session, run_id: int | None, scope: sa.ColumnElement[bool] | None
) -> dict[str, Any]:
    """The Identify step in the caller's transaction; returns its counts.

    Run by a user whose ``idic.run`` scope is not all, only pairs of two of their customers are matched, and
    unknown senders are not routed (that reaches customers of everyone: a whole-base job)."""
    conn = session.connection()
    user = run_scope(crm)
    inbox = route_inbox(crm, session) if user is None else {"interactions_routed": 0, "prospects_created": 0}
    per_kind = gather(crm, conn)
    pairs, shared = candidates(crm, conn, scope, user)
    threshold = float(setting(crm, "auto_merge_threshold"))
    floor = float(setting(crm, "review_threshold"))
    sure = [cand for cand in pairs if cand.score >= threshold and not cand.conflict]
    groups, held = clusters(conn, sure)
    plan: list[PlannedMerge] = []
    for edges in groups:
        ids = sorted({x for cand in edges for x in (cand.low, cand.high)})
        for other in ids[1:]:
            best = max((cand for cand in edges if other in (cand.low, cand.high)), key=lambda cand: cand.score)
            plan.append(PlannedMerge(ids[0], other, best.score, best.reason))
    merge_planned(crm, session, plan, automatic=True, run_id=run_id)
    merged = len(plan)
    merged_ids = {p.merged_id for p in plan}
    sure_keys = {(cand.low, cand.high) for cand in sure}  # a set: ``cand not in sure`` compared every pair (quadratic)
    queue = [
        cand for cand in pairs if (cand.low, cand.high) not in sure_keys and (cand.score >= floor or cand.conflict)
    ] + held
    now = crm.now()
    rows = [
        {
            "run_id": run_id,
            "customer_id": cand.low,
            "other_id": cand.high,
            "score": cand.score,
            "reason": cand.reason[:500],
            "status": "pending",
            "created_at": now,
        }
        for cand in queue
        if cand.low not in merged_ids and cand.high not in merged_ids
    ]
    for start in range(0, len(rows), BATCH):
        conn.execute(m.reviews.insert(), rows[start : start + BATCH])
    matched = {x for cand in pairs for x in (cand.low, cand.high)}
    return {
        "identifiers": sum(per_kind.values()),
        "identifiers_by_kind": per_kind,
        "shared_identifiers": shared,
        "candidate_pairs": len(pairs),
        "customers_matched": len(matched),
        "merged": merged,
        "queued": len(rows),
        "conflicts": sum(1 for cand in pairs if cand.conflict) + len(held),
        **inbox,
    }
