"""Finding customers that may be the same person: the collaborator ``crm.customers`` hands ``duplicates`` and
``duplicate_pairs`` to. Candidates share a normalised e-mail or phone, or a near-identical accent-free name (and
birth date); every query is limited to what the acting user's ``customers.read`` scope reaches.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, cast

import sqlalchemy as sa

from crmkit.core import tables as t
from crmkit.core.models import DuplicateCandidate
from crmkit.core.search import prefix_upper_bound
from crmkit.core.text import fold

if TYPE_CHECKING:
    from crmkit.core.customers import Customers
    from crmkit.crm import CRM

#: How many names on each side of a customer's own (in accent-free order) are compared with it.
NAME_NEIGHBOURS = 200


class CustomerDuplicates:
    """Duplicate detection for one CRM's customers (reached through ``crm.customers``)."""

    def __init__(self, crm: CRM, customers: Customers) -> None:
        self._crm = crm
        self._customers = customers

    def of(self, customer_id: int, *, limit: int = 20) -> list[DuplicateCandidate]:
        """Customers that may be the same as this one: shared e-mail or phone, or a near-identical name.

        Needs ``customers.read``; both this customer and the candidates are within its scope.
        """
        c, cp = t.customers.c, t.contact_points.c
        scope = self._crm.access.owner_filter(c.owner, "customers.read")
        with self._crm.reading() as conn:
            me = self._customers._load(conn, customer_id)
            self._customers._require_readable(customer_id, me)
            found: dict[int, DuplicateCandidate] = {}

            def offer(other: int, reason: str, score: float) -> None:
                if other != me.id and (other not in found or found[other].score < score):
                    found[other] = DuplicateCandidate(me.id, other, reason, score)

            for kind, values, score in (("email", me.emails, 1.0), ("phone", me.phones, 0.95)):
                if values:
                    sharing = conn.execute(
                        sa.select(cp.customer_id, cp.value)
                        .join(t.customers, c.id == cp.customer_id)
                        .where(cp.kind == kind, cp.value.in_(values), c.status == "active", scope)
                    ).all()
                    for other, value in sharing:
                        reason = self._customers._contact_in_reason(kind, str(value), me.owner)
                        offer(cast(int, other), f"same {kind} {reason}", score)
            my_key = fold(me.name)
            block = my_key[:4]
            if block:
                # Near-identical names sort next to each other: read the neighbours on both
                # sides of this name (an index range each), not an arbitrary slice of a
                # block that holds every "Nguyễn" in the database.
                near = sa.and_(
                    c.name_key >= block,
                    c.name_key < prefix_upper_bound(block),
                    c.status == "active",
                    c.kind == me.kind,
                    c.id != me.id,
                    scope,
                )
                rows = [
                    *conn.execute(
                        sa.select(c.id, c.name_key, c.birth_date)
                        .where(near, c.name_key >= my_key)
                        .order_by(c.name_key, c.id)
                        .limit(NAME_NEIGHBOURS)
                    ).all(),
                    *conn.execute(
                        sa.select(c.id, c.name_key, c.birth_date)
                        .where(near, c.name_key < my_key)
                        .order_by(c.name_key.desc(), c.id.desc())
                        .limit(NAME_NEIGHBOURS)
                    ).all(),
                ]
                if me.birth_date is not None:  # however common the name, the same birth date is found
                    rows += conn.execute(
                        sa.select(c.id, c.name_key, c.birth_date).where(
                            near, c.name_key == my_key, c.birth_date == me.birth_date
                        )
                    ).all()
                for other, key, birth_date in rows:
                    ratio = 1.0 if key == my_key else difflib.SequenceMatcher(None, my_key, str(key)).ratio()
                    if ratio >= 0.92:
                        same_birth = me.birth_date is not None and me.birth_date == birth_date
                        score = (0.9 if same_birth else 0.6) * ratio
                        offer(
                            cast(int, other),
                            "same name" + (" and birth date" if same_birth else "")
                            if ratio == 1.0
                            else f"similar name ({ratio:.0%})",
                            score,
                        )
        return sorted(found.values(), key=lambda d: (-d.score, d.other_id))[:limit]

    def pairs(self, *, limit: int = 1000) -> list[DuplicateCandidate]:
        """Across the whole database, pairs sharing a normalized e-mail or phone, or the same
        accent-free name and birth date (computed in SQL); the surest pair first. Needs
        ``customers.read``: both customers of a pair are within its scope.
        """
        a, b = t.contact_points.alias("a"), t.contact_points.alias("b")
        ca, cb = t.customers.alias("ca"), t.customers.alias("cb")
        by_contact = (
            sa.select(a.c.customer_id, b.c.customer_id, a.c.kind, a.c.value)
            .join(b, sa.and_(a.c.kind == b.c.kind, a.c.value == b.c.value, a.c.customer_id < b.c.customer_id))
            .join(ca, ca.c.id == a.c.customer_id)
            .join(cb, cb.c.id == b.c.customer_id)
            .where(ca.c.status == "active", cb.c.status == "active")
            .order_by(a.c.customer_id, b.c.customer_id)
            .limit(limit)
        )
        by_name = (
            sa.select(ca.c.id, cb.c.id, ca.c.birth_date)
            .join(
                cb,
                sa.and_(
                    ca.c.name_key == cb.c.name_key,
                    ca.c.birth_date == cb.c.birth_date,
                    ca.c.kind == cb.c.kind,
                    ca.c.id < cb.c.id,
                ),
            )
            .where(ca.c.status == "active", cb.c.status == "active")
            .order_by(ca.c.id, cb.c.id)
            .limit(limit)
        )
        read = self._crm.access.owner_filter
        by_contact = by_contact.where(read(ca.c.owner, "customers.read"), read(cb.c.owner, "customers.read"))
        by_name = by_name.where(read(ca.c.owner, "customers.read"), read(cb.c.owner, "customers.read"))
        found: dict[tuple[int, int], DuplicateCandidate] = {}
        with self._crm.reading() as conn:
            pair: tuple[int, int]
            for x, y, kind, value in conn.execute(by_contact):
                pair = (cast(int, x), cast(int, y))
                score = 1.0 if kind == "email" else 0.95
                if pair not in found or found[pair].score < score:
                    found[pair] = DuplicateCandidate(*pair, f"same {kind} {value}", score)
            for x, y, birth_date in conn.execute(by_name):
                pair = (cast(int, x), cast(int, y))
                found.setdefault(pair, DuplicateCandidate(*pair, f"same name and birth date {birth_date}", 0.9))
        return sorted(found.values(), key=lambda d: (-d.score, d.customer_id, d.other_id))[:limit]
