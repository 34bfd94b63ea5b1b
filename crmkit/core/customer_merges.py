"""Merging customers and undoing merges: the collaborator ``crm.customers`` hands ``merge``, ``merge_many``,
``unmerge`` and ``merges`` to.

Every merge writes, in its own transaction, a ``customer_merges`` row (the merged customer's snapshot and
what the merge changed on the kept one: filled fields, consents, memberships) and the merge journal of
every row it and every plugin moved (:mod:`crmkit.core.merge_journal`). An unmerge restores the merged
customer from them, moves back exactly the journaled rows and fires ``crmkit_customer_unmerged`` so each
plugin rebuilds what it derives (balances, aggregates).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa

from crmkit.core import merge_journal
from crmkit.core import tables as t
from crmkit.core.bulk_sql import chunks, delete_in, executemany, ids_value, in_ids, repoint, select_in
from crmkit.core.jsonable import to_jsonable
from crmkit.core.models import Consent, Customer, Membership, Merge
from crmkit.errors import Conflict, NotFound, ValidationError

if TYPE_CHECKING:
    from crmkit.core.customers import Customers
    from crmkit.crm import CRM

#: The fields a merge fills on the kept customer where it has none (the external id stays the merged record's).
FILLED = (
    "kind",
    "name",
    "given_name",
    "family_name",
    "birth_date",
    "gender",
    "lifecycle_stage",
    "owner",
    "country",
    "city",
    "province",
)
#: Contact points and addresses moved by a merge are numbered after the kept customer's own.
MOVED_POSITION = 1000


@attrs.frozen
class MergeRecord:
    """One merge as ``crm.customers.merges`` lists it: who merged what when, how many rows moved, whether undone."""

    id: int
    kept_id: int
    merged_id: int
    at: datetime
    actor: str
    rows_moved: int
    undone_at: datetime | None
    undone_by: str | None


@attrs.frozen
class Unmerge:
    """What ``crm.customers.unmerge`` did: the restored customer and the rows given back to it, per table."""

    merge_id: int
    kept_id: int
    restored_id: int
    rows_moved_back: dict[str, int]


class CustomerMerges:
    """Merge, unmerge and the list of merges, for :class:`crmkit.core.customers.Customers`."""

    def __init__(self, crm: CRM, customers: Customers) -> None:
        self._crm = crm
        self._customers = customers

    # -- merge ----------------------------------------------------------------------------------------------

    def merge_many(self, pairs: Iterable[tuple[int, int]]) -> list[Merge]:
        """Merge many ``(kept_id, merged_id)`` pairs in one transaction (see ``Customers.merge_many``)."""
        crm, customers = self._crm, self._customers
        crm.access.require("customers.merge")
        pairs = list(pairs)
        _check_pairs(pairs)
        if not pairs:
            return []
        customers._require_no_disabled_data("merge")
        with crm.transaction() as session:
            conn = session.connection()
            ids = sorted({x for pair in pairs for x in pair})
            crm.access.require_customers(conn, ids, "customers.merge")
            found = {c.id: c for c in customers._load_many(conn, ids, removing=True)}
            for kept_id, merged_id in pairs:
                for customer_id in (kept_id, merged_id):
                    if customer_id not in found:
                        raise NotFound("customer", customer_id)
                    customers._require_active(found[customer_id], f" (merging {merged_id} into {kept_id})")
                kept, merged = found[kept_id], found[merged_id]
                if kept.kind != merged.kind:
                    raise Conflict(
                        f"cannot merge a {merged.kind} into a {kept.kind} (merging {merged_id} into {kept_id})"
                    )
            into = {merged_id: kept_id for kept_id, merged_id in pairs}
            now = crm.now()
            made: list[int] = list(
                conn.execute(
                    t.merges.insert().returning(t.merges.c.id, sort_by_parameter_order=True),
                    [
                        {
                            "kept_id": kept_id,
                            "merged_id": merged_id,
                            "at": now,
                            "actor": crm.actor,
                            "snapshot": to_jsonable(found[merged_id]),
                        }
                        for kept_id, merged_id in pairs
                    ],
                )
                .scalars()
                .all()
            )
            merge_ids = {merged_id: merge_id for merge_id, (_, merged_id) in zip(made, pairs)}
            with merge_journal.recording(merge_ids):
                filled: dict[int, dict[str, Any]] = {m: {} for m in into}
                changed = self._move_rows(conn, found, pairs, into, filled)
                found = {**found, **{m: attrs.evolve(found[m], organizations=orgs) for m, orgs in changed.items()}}
                self._fill_kept(conn, found, pairs, filled)
                c = t.customers.c
                repoint(conn, c.merged_into_id, into)  # records merged into a merged one earlier follow it
                executemany(
                    conn,
                    t.customers.update()
                    .where(c.id == sa.bindparam("_merged"))
                    .values(status="merged", merged_into_id=sa.bindparam("_kept")),
                    [{"_merged": merged_id, "_kept": kept_id} for kept_id, merged_id in pairs],
                )
                dialect = conn.dialect.name
                conn.execute(
                    t.customers.update().where(in_ids(dialect, c.id, "ids")).values(updated_at=now),
                    {"ids": ids_value(dialect, ids)},
                )
                delete_in(conn, t.search_keys.c.customer_id, list(into))
                customers._reindex(conn, sorted(set(into.values())))
                crm.audit.record_many(
                    session,
                    "merge",
                    "customer",
                    [(kept_id, kept_id, {"merged_id": merged_id}) for kept_id, merged_id in pairs],
                )
                crm.hooks.customers_merged_many(
                    into,
                    {m: found[m] for m in into},
                    lambda wanted: {k.id: k for k in customers._load_many(conn, wanted)},
                    session,
                )
            m = t.merges.c
            conn.execute(
                t.merges.update()
                .where(m.id == sa.bindparam("_id"))
                .values(filled=sa.bindparam("_filled", type_=m.filled.type)),
                [{"_id": merge_ids[merged], "_filled": to_jsonable(values)} for merged, values in filled.items()],
            )
            if changed:  # memberships an earlier pair of the batch changed: the snapshot shows them as at the merge
                conn.execute(
                    t.merges.update()
                    .where(m.id == sa.bindparam("_id"))
                    .values(snapshot=sa.bindparam("_snapshot", type_=m.snapshot.type)),
                    [{"_id": merge_ids[merged], "_snapshot": to_jsonable(found[merged])} for merged in changed],
                )
            crm.events.emit_many(session, "customer.merged", self._merge_events(conn, pairs))
        return [Merge(merge_id, kept_id, merged_id) for merge_id, (kept_id, merged_id) in zip(made, pairs)]

    def _merge_events(
        self, conn: sa.Connection, pairs: Sequence[tuple[int, int]]
    ) -> Iterator[tuple[dict[str, Any], int]]:
        """``customer.merged`` payloads (the kept customer after the batch), made only when a subscription listens."""
        kept = {c.id: c for c in self._customers._load_many(conn, sorted({kept_id for kept_id, _ in pairs}))}
        for kept_id, merged_id in pairs:
            yield {"customer": to_jsonable(kept[kept_id]), "merged_id": merged_id}, kept_id

    def _move_rows(
        self,
        conn: sa.Connection,
        found: Mapping[int, Customer],
        pairs: Sequence[tuple[int, int]],
        into: Mapping[int, int],
        filled: dict[int, dict[str, Any]],
    ) -> dict[int, tuple[Membership, ...]]:
        """Move the merged records' rows to their kept ones, deduplicating as pair-by-pair merges in order would.

        A merged record's contact point or tag already on the kept customer (its own or moved
        from an earlier record of the batch) is dropped; per consent channel the newest decision wins
        (the kept customer's decision it replaced goes in ``filled``, for an unmerge).
        Returns the memberships of merged records that an earlier pair of the batch changed.
        """
        cp, ad, tg, cs = t.contact_points.c, t.addresses.c, t.tags.c, t.consents.c
        merged_ids = list(into)
        repoint(conn, t.interactions.c.customer_id, into)
        points: dict[int, list[tuple[int, tuple[str, str]]]] = defaultdict(list)
        for point in select_in(conn, sa.select(cp.id, cp.customer_id, cp.kind, cp.value), cp.customer_id, merged_ids):
            points[point.customer_id].append((point.id, (point.kind, point.value)))
        have = {
            k: {("email", e) for e in found[k].emails} | {("phone", p) for p in found[k].phones} for k in into.values()
        }
        tags = {k: set(found[k].tags) for k in into.values()}
        consents = {k: dict(found[k].consents) for k in into.values()}
        drop_points: list[int] = []
        drop_tags: list[tuple[int, str]] = []
        for kept_id, merged_id in pairs:
            drop_points += [point_id for point_id, key in points[merged_id] if key in have[kept_id]]
            have[kept_id].update(key for _, key in points[merged_id])
            drop_tags += [(merged_id, tag) for tag in found[merged_id].tags if tag in tags[kept_id]]
            tags[kept_id].update(found[merged_id].tags)
            replaced = filled[merged_id].setdefault("consents", {})
            for channel, consent in found[merged_id].consents.items():
                mine = consents[kept_id].get(channel)
                if mine is None or consent.at > mine.at:
                    replaced[channel] = mine
                    consents[kept_id][channel] = consent
        delete_in(conn, cp.id, drop_points)
        repoint(conn, cp.customer_id, into, position=cp.position + MOVED_POSITION)
        repoint(conn, ad.customer_id, into, position=ad.position + MOVED_POSITION)
        for batch in chunks(drop_tags):
            conn.execute(t.tags.delete().where(sa.tuple_(tg.customer_id, tg.tag).in_(batch)))
        repoint(conn, tg.customer_id, into)
        changed = [
            (k, consent)
            for k, mine in consents.items()
            for consent in mine.values()
            if found[k].consents.get(consent.channel) is not consent
        ]
        delete_in(conn, cs.customer_id, merged_ids)
        for decided in chunks(changed):
            conn.execute(
                t.consents.delete().where(
                    sa.tuple_(cs.customer_id, cs.channel).in_([(k, consent.channel) for k, consent in decided])
                )
            )
            conn.execute(
                t.consents.insert(),
                [
                    {
                        "customer_id": k,
                        "channel": consent.channel,
                        "granted": consent.granted,
                        "at": consent.at,
                        "source": consent.source,
                    }
                    for k, consent in decided
                ],
            )
        return self._move_memberships(conn, found, pairs, sorted({x for pair in pairs for x in pair}), filled)

    def _move_memberships(
        self,
        conn: sa.Connection,
        found: Mapping[int, Customer],
        pairs: Sequence[tuple[int, int]],
        ids: Sequence[int],
        filled: dict[int, dict[str, Any]],
    ) -> dict[int, tuple[Membership, ...]]:
        """Re-point memberships on both sides (person and organization), dropping those the kept one already has;
        each merge's moves go in ``filled`` (``[person, organization, role, new person, new organization]``).

        Returns, for merged people whose organizations an earlier pair merged, their memberships
        as they were at their own merge (what their snapshot shows).
        """
        ms = t.memberships.c
        query = sa.select(ms.person_id, ms.organization_id, ms.role)
        rows: dict[tuple[int, int], str | None] = {
            (r.person_id, r.organization_id): r.role
            for r in [*select_in(conn, query, ms.person_id, ids), *select_in(conn, query, ms.organization_id, ids)]
        }
        if not rows:
            return {}
        before = dict(rows)
        at_merge: dict[int, tuple[Membership, ...]] = {}
        orgs_of: dict[int, set[int]] = defaultdict(set)
        people_of: dict[int, set[int]] = defaultdict(set)
        for p, o in rows:
            orgs_of[p].add(o)
            people_of[o].add(p)

        def move(merged_id: int, old: tuple[int, int], new: tuple[int, int] | None) -> None:
            role = rows.pop(old)
            filled[merged_id].setdefault("memberships", []).append([*old, role, *(new or (None, None))])
            orgs_of[old[0]].discard(old[1])
            people_of[old[1]].discard(old[0])
            if new is not None:
                rows[new] = role
                orgs_of[new[0]].add(new[1])
                people_of[new[1]].add(new[0])

        for kept_id, merged_id in pairs:
            mine = tuple(Membership(o, rows[merged_id, o]) for o in sorted(orgs_of[merged_id]))
            if mine != found[merged_id].organizations:
                at_merge[merged_id] = mine
            taken = set(orgs_of[kept_id])
            for o in sorted(orgs_of[merged_id]):
                move(merged_id, (merged_id, o), None if o in taken or o == kept_id else (kept_id, o))
            taken = set(people_of[kept_id])
            for p in sorted(people_of[merged_id]):
                move(merged_id, (p, merged_id), None if p in taken or p == kept_id else (p, kept_id))
        gone = [key for key, role in before.items() if key not in rows or rows[key] != role]
        new = [
            {"person_id": p, "organization_id": o, "role": role}
            for (p, o), role in rows.items()
            if (p, o) not in before or before[p, o] != role
        ]
        for batch in chunks(gone):
            conn.execute(t.memberships.delete().where(sa.tuple_(ms.person_id, ms.organization_id).in_(batch)))
        if new:
            conn.execute(t.memberships.insert(), new)
        return at_merge

    def _fill_kept(
        self,
        conn: sa.Connection,
        found: Mapping[int, Customer],
        pairs: Sequence[tuple[int, int]],
        filled: dict[int, dict[str, Any]],
    ) -> None:
        """Fill each kept customer's empty fields from its merged records (the first one holding a value wins);
        attributes are combined, the kept customer's own winning. What each merge filled goes in ``filled``."""
        values = {
            kept_id: {**{f: getattr(found[kept_id], f) for f in FILLED}, "attributes": dict(found[kept_id].attributes)}
            for kept_id, _ in pairs
        }
        for kept_id, merged_id in pairs:
            merged, mine = found[merged_id], values[kept_id]
            fields = [f for f in FILLED if mine[f] is None and getattr(merged, f) is not None]
            for field in fields:
                mine[field] = getattr(merged, field)
            added = [k for k in merged.attributes if k not in mine["attributes"]]
            mine["attributes"] = {**merged.attributes, **mine["attributes"]}
            filled[merged_id].update(fields=fields, attributes=added)
        changed = [
            {"_id": kept_id, **{f"_{f}": v for f, v in mine.items()}}
            for kept_id, mine in values.items()
            if any(mine[f] != getattr(found[kept_id], f) for f in FILLED)
            or mine["attributes"] != found[kept_id].attributes
        ]
        if changed:  # most kept customers gain nothing (updated_at is written for all of them by the caller)
            columns = (*FILLED, "attributes")
            conn.execute(
                t.customers.update()
                .where(t.customers.c.id == sa.bindparam("_id"))
                .values({f: sa.bindparam(f"_{f}") for f in columns}),
                changed,
            )

    # -- unmerge --------------------------------------------------------------------------------------------

    def unmerge(self, merge_id: int) -> Unmerge:
        """Undo merge ``merge_id`` (see ``Customers.unmerge``)."""
        crm, customers = self._crm, self._customers
        crm.access.require("customers.merge")
        customers._require_no_disabled_data("unmerge")
        with crm.transaction() as session:
            conn = session.connection()
            m = t.merges.c
            merge = conn.execute(sa.select(t.merges).where(m.id == merge_id).with_for_update()).mappings().first()
            if merge is None:
                raise NotFound("merge", merge_id)
            if merge["undone_at"] is not None:
                raise Conflict(
                    f"merge {merge_id} was already undone ({merge['undone_at']:%Y-%m-%d %H:%M} UTC "
                    f"by {merge['undone_by']}): nothing to do"
                )
            kept_id, merged_id = merge["kept_id"], merge["merged_id"]
            crm.access.require_customers(conn, [kept_id, merged_id], "customers.merge")
            found = {c.id: c for c in customers._load_many(conn, sorted((kept_id, merged_id)), removing=True)}
            kept, merged = found[kept_id], found[merged_id]
            if kept.status == "merged":
                raise Conflict(self._chain_message(conn, merge_id, kept_id))
            if kept.status != "active":
                raise Conflict(f"customer {kept_id} is {kept.status}: merge {merge_id} cannot be undone")
            if merge["filled"] is None:
                raise Conflict(
                    f"merge {merge_id} was made before crmkit kept a merge journal (core revision crmkit_0009): "
                    f"which rows came from customer {merged_id} is not known, so it cannot be undone"
                )
            if not merge["snapshot"]:
                raise Conflict(f"the snapshot of merge {merge_id} was erased (right to erasure): it cannot be undone")
            if merged.status != "merged" or merged.merged_into_id != kept_id:
                raise Conflict(f"customer {merged_id} is no longer merged into {kept_id} ({merged.status})")
            now = crm.now()
            moved = merge_journal.give_back(conn, merge_id, kept_id, merged_id, self._tables())
            conn.execute(
                t.customers.update()
                .where(t.customers.c.id == merged_id)
                .values(status="active", merged_into_id=None, updated_at=now)
            )
            self._restore(conn, merge["snapshot"], merge["filled"], kept, merged_id, now)
            customers._reindex(conn, [kept_id, merged_id])
            conn.execute(t.merges.update().where(m.id == merge_id).values(undone_at=now, undone_by=crm.actor))
            crm.audit.record(
                session,
                "unmerge",
                "customer",
                merged_id,
                customer_id=merged_id,
                changes={"kept_id": kept_id, "merge_id": merge_id},
            )
            now_kept, restored = customers._load_many(conn, [kept_id]) + customers._load_many(conn, [merged_id])
            crm.hooks.call(
                "crmkit_customer_unmerged", kept=now_kept, restored=restored, merge_id=merge_id, session=session
            )
        return Unmerge(merge_id, kept_id, merged_id, moved)

    def _chain_message(self, conn: sa.Connection, merge_id: int, kept_id: int) -> str:
        """Why merge ``merge_id`` cannot be undone yet: its kept customer was merged since (the chain, newest last)."""
        m = t.merges.c
        links: list[tuple[int, int]] = []
        customer_id = kept_id
        while True:
            row = conn.execute(
                sa.select(m.id, m.kept_id)
                .where(m.merged_id == customer_id, m.undone_at.is_(None))
                .order_by(m.id.desc())
                .limit(1)
            ).first()
            if row is None or any(link == row.id for link, _ in links):
                break
            links.append((row.id, row.kept_id))
            customer_id = row.kept_id
        chain = " → ".join([str(kept_id), *(f"{into} (merge {link})" for link, into in links)])
        first = ", ".join(str(link) for link, _ in reversed(links))
        return f"customer {kept_id} was merged again since merge {merge_id}: {chain}; unmerge {first} first"

    def _tables(self) -> dict[str, sa.Table]:
        """Every table of the core and the enabled plugins (their lineages' and declared ``personal_data`` tables), by
        name (where journaled rows live)."""
        tables = {item.table.name: item.table for item in self._crm.hooks.declared_tables()}
        for lineage in self._crm.lineages():
            tables.update(lineage.metadata.tables if lineage.metadata is not None else {})
        return tables

    def _restore(
        self,
        conn: sa.Connection,
        snapshot: Mapping[str, Any],
        filled: Mapping[str, Any],
        kept: Customer,
        restored_id: int,
        now: datetime,
    ) -> None:
        """Give the restored customer back what the journal does not hold (contact points and tags the merge dropped
        as duplicates, consents, memberships, positions) and take from the kept one what the merge filled, where
        it is unchanged since."""
        cp, ad, tg, cs, ms = t.contact_points.c, t.addresses.c, t.tags.c, t.consents.c, t.memberships.c
        order = [("email", v) for v in snapshot.get("emails", [])] + [("phone", v) for v in snapshot.get("phones", [])]
        position = {key: n for n, key in enumerate(order)}
        have = {tuple(row) for row in conn.execute(sa.select(cp.kind, cp.value).where(cp.customer_id == restored_id))}
        missing = [key for key in order if key not in have]
        if missing:
            conn.execute(
                t.contact_points.insert(),
                [{"customer_id": restored_id, "kind": k, "value": v, "position": position[k, v]} for k, v in missing],
            )
        if position:
            conn.execute(
                t.contact_points.update()
                .where(cp.customer_id == restored_id, cp.kind == sa.bindparam("_kind"), cp.value == sa.bindparam("_v"))
                .values(position=sa.bindparam("_position")),
                [{"_kind": k, "_v": v, "_position": n} for (k, v), n in position.items()],
            )
        conn.execute(
            t.addresses.update()
            .where(ad.customer_id == restored_id, ad.position >= MOVED_POSITION)
            .values(position=ad.position - MOVED_POSITION)
        )
        tags: set[str] = set(conn.execute(sa.select(tg.tag).where(tg.customer_id == restored_id)).scalars())
        lost = [tag for tag in snapshot.get("tags", []) if tag not in tags]
        if lost:
            conn.execute(t.tags.insert(), [{"customer_id": restored_id, "tag": tag} for tag in lost])
        theirs = snapshot.get("consents") or {}
        if theirs:
            conn.execute(
                t.consents.insert(),
                [
                    {
                        "customer_id": restored_id,
                        "channel": channel,
                        "granted": c["granted"],
                        "at": datetime.fromisoformat(c["at"]),
                        "source": c["source"],
                    }
                    for channel, c in theirs.items()
                ],
            )
        for channel, prior in (filled.get("consents") or {}).items():
            now_kept = kept.consents.get(channel)
            came = theirs.get(channel)
            if now_kept is None or came is None or to_jsonable(now_kept) != came:
                continue  # the kept customer decided again since: its decision stands
            conn.execute(t.consents.delete().where(cs.customer_id == kept.id, cs.channel == channel))
            if prior is not None:
                back = Consent(channel, prior["granted"], datetime.fromisoformat(prior["at"]), prior["source"])
                conn.execute(t.consents.insert().values(customer_id=kept.id, **attrs.asdict(back)))
        for person, organization, role, new_person, new_organization in filled.get("memberships") or []:
            if new_person is not None:
                conn.execute(
                    t.memberships.delete().where(ms.person_id == new_person, ms.organization_id == new_organization)
                )
            there = conn.execute(
                sa.select(ms.role).where(ms.person_id == person, ms.organization_id == organization)
            ).first()
            if there is None:
                conn.execute(t.memberships.insert().values(person_id=person, organization_id=organization, role=role))
        cleared: dict[str, Any] = {
            f: None for f in filled.get("fields") or [] if to_jsonable(getattr(kept, f)) == snapshot.get(f)
        }
        given = snapshot.get("attributes") or {}
        attributes = {
            k: v
            for k, v in kept.attributes.items()
            if not (k in (filled.get("attributes") or []) and to_jsonable(v) == given.get(k))
        }
        if cleared or attributes != kept.attributes:
            conn.execute(
                t.customers.update()
                .where(t.customers.c.id == kept.id)
                .values(**cleared, attributes=attributes, updated_at=now)
            )

    # -- the list -------------------------------------------------------------------------------------------

    def merges(self, *, customer_id: int | None = None, limit: int = 50) -> list[MergeRecord]:
        """Merges newest first (of customers within the ``customers.read`` scope; ``customer_id``: those it
        kept or was merged by), each with the rows it moved and whether it was undone."""
        m, r = t.merges.c, t.merge_rows.c
        rows = sa.select(sa.func.count()).where(r.merge_id == m.id).scalar_subquery().label("rows_moved")
        query = (
            sa.select(m.id, m.kept_id, m.merged_id, m.at, m.actor, rows, m.undone_at, m.undone_by)
            .where(self._crm.access.customers(m.kept_id, "customers.read"))
            .order_by(m.id.desc())
            .limit(limit)
        )
        if customer_id is not None:
            query = query.where(sa.or_(m.kept_id == customer_id, m.merged_id == customer_id))
        with self._crm.reading() as conn:
            return [MergeRecord(**row) for row in conn.execute(query).mappings()]


def _check_pairs(pairs: Sequence[tuple[int, int]]) -> None:
    """Refuse a batch that is not a set of independent merges (before touching the database)."""
    kept_ids = {kept_id for kept_id, _ in pairs}
    seen: dict[int, int] = {}
    for row, (kept_id, merged_id) in enumerate(pairs):
        if kept_id == merged_id:
            raise Conflict(f"cannot merge a customer into itself (merging {merged_id} into {kept_id})")
        if merged_id in seen:
            raise ValidationError(
                f"customer {merged_id} is merged twice: into {seen[merged_id]} and into {kept_id}",
                field="merged_id",
                row=row + 1,
            )
        if merged_id in kept_ids:
            raise ValidationError(
                f"customer {merged_id} is both kept and merged in one batch (merging "
                f"{merged_id} into {kept_id}): merge in two batches",
                field="merged_id",
                row=row + 1,
            )
        seen[merged_id] = kept_id
