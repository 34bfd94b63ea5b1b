"""Tier moves: one member's after a change of their points (in the caller's transaction), or every member's,
set-based in SQL and in batches (the tier job, and after ``set_tiers``).

Each batch covers a range of customer ids and is one transaction; on PostgreSQL it first locks
the balance rows it will touch, in id order (the order every other writer locks them in), so a
redemption running at the same time either finishes first or waits — never interleaves.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa

from crmkit.plugin_api import ids_value, in_ids
from crmkit_loyalty import hookspecs
from crmkit_loyalty.ledger import MEMBER_KEY, WINDOW
from crmkit_loyalty.models import ledger, members
from crmkit_loyalty.records import TIER_ENTITY, TIER_MOVE, Program, Tier, tier_entity_id

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from crmkit_loyalty.base import Shared

BATCH = 20_000

# Built once: these run after every order and refund.
_TIER = sa.select(members.c.tier).where(MEMBER_KEY)
_SET_TIER = members.update().where(MEMBER_KEY).values(tier=sa.bindparam("code"), tier_since=sa.bindparam("since"))


@attrs.frozen
class BatchRun:
    """What one batch job did in one program: members changed (tiers) or lots expired, and the points."""

    program: str
    changed: int
    points: Any = 0


class Tiering:
    """Puts members in the tier their qualifying points (or spend) over the program's rolling window reach."""

    def __init__(self, shared: Shared) -> None:
        self._shared = shared
        self._crm = shared.crm

    def evaluate(
        self, *, program: str | None = None, now: datetime | None = None, batch_size: int = BATCH
    ) -> list[BatchRun]:
        """Put every member of the program (every active one when None) in the tier their qualifying points (or
        spend) over the rolling window reach; checks no permission (the callers did: the job, ``set_tiers``).

        Set-based: one grouped query per batch of members finds those whose tier changes;
        ``crmkit_tier_changed`` fires for each of them.
        """
        moment = now or self._crm.now()
        return [self._evaluate_program(target, moment, batch_size) for target in self._shared.targets(program)]

    def _evaluate_program(self, program: Program, now: datetime, batch_size: int) -> BatchRun:
        m = members.c
        with self._crm.reading() as conn:
            tiers = self._shared.tiers(conn, program)
            low, high = conn.execute(
                sa.select(sa.func.min(m.customer_id), sa.func.max(m.customer_id)).where(m.program_id == program.id)
            ).one()
        if not tiers:
            return BatchRun(program.code, 0)
        changed = 0
        for first, last in ranges(low, high, batch_size):
            with self._crm.transaction() as session:
                conn = session.connection()
                in_batch = sa.and_(m.program_id == program.id, m.customer_id.between(first, last))
                lock_range(conn, program.id, sa.select(m.customer_id).where(in_batch))
                value = self._qualifying(program, now, ledger.c.customer_id.between(first, last)).subquery()
                target = self._tier_case(program, tiers, sa.func.coalesce(value.c.value, 0))
                rows = conn.execute(
                    sa.select(m.customer_id, m.tier, target.label("target"))
                    .select_from(members.outerjoin(value, value.c.customer_id == m.customer_id))
                    .where(in_batch, sa.or_(m.tier.is_(None), m.tier != target))
                ).all()
                self._move(session, program, tiers, [(r.customer_id, r.tier, r.target) for r in rows], now)
                changed += len(rows)
        return BatchRun(program.code, changed)

    def evaluate_member(
        self, session: Session, program: Program, customer_id: int, now: datetime, tiers: Sequence[Tier]
    ) -> None:
        """Re-evaluate one member's tier after a change of their qualifying points (in the caller's transaction)."""
        if tiers:
            current = session.connection().execute(_TIER, {"member": customer_id, "program": program.id}).scalar()
            self.settle(session, program, customer_id, now, tiers, current)

    def settle(
        self,
        session: Session,
        program: Program,
        customer_id: int,
        now: datetime,
        tiers: Sequence[Tier],
        current: str | None,
        total: int | None = None,
    ) -> None:
        """Move a member whose tier is ``current`` to the tier their qualifying window reaches now, if it differs.

        ``total`` is that window when the caller already read it (``WindowTotal``); else one prebuilt query.
        """
        if not tiers:
            return
        if total is None:
            total = (
                session.connection()
                .execute(
                    WINDOW[program.tier_basis],
                    {"member": customer_id, "program": program.id, "since": program.window_start(now)},
                )
                .scalar_one()
            )
        target = _tier_for(program, tiers, int(total))
        if current != target.code:
            self._move(session, program, tiers, [(customer_id, current, target.code)], now)

    def _move(
        self,
        session: Session,
        program: Program,
        tiers: Sequence[Tier],
        changes: Sequence[tuple[int, str | None, str]],
        now: datetime,
    ) -> None:
        conn = session.connection()
        if len(changes) == 1:  # one member (after an order or a refund): the prebuilt primary-key update
            customer_id, _old, code = changes[0]
            conn.execute(_SET_TIER, {"member": customer_id, "program": program.id, "code": code, "since": now})
        else:
            by_target: dict[str, list[int]] = defaultdict(list)
            for customer_id, _old, new in changes:
                by_target[new].append(customer_id)
            dialect = conn.dialect.name
            for code, ids in by_target.items():
                conn.execute(
                    members.update()
                    .where(members.c.program_id == program.id, in_ids(dialect, members.c.customer_id, "ids"))
                    .values(tier=code, tier_since=now),
                    {"ids": ids_value(dialect, ids)},
                )
        # The member's tier history (``tier_history``): one audit entry per move, written in one executemany.
        self._crm.audit.record_many(
            session,
            TIER_MOVE,
            TIER_ENTITY,
            [
                (tier_entity_id(program, customer_id), customer_id, {"program": program.code, "from": old, "to": new})
                for customer_id, old, new in changes
            ],
        )
        if changes and self._crm.hooks.has_implementations("crmkit_tier_changed"):
            by_code = {tier.code: tier for tier in tiers}
            for customer_id, old, new in changes:
                self._crm.hooks.call(
                    hookspecs.crmkit_tier_changed,
                    customer_id=customer_id,
                    program=program,
                    old_tier=by_code.get(old) if old else None,
                    new_tier=by_code[new],
                    session=session,
                )

    def _value_column(self, program: Program) -> sa.ColumnElement[Any]:
        return ledger.c.points if program.tier_basis == "points" else ledger.c.amount_minor

    def _qualifying(self, program: Program, now: datetime, who: sa.ColumnElement[bool]) -> sa.Select[Any]:
        """Per customer: the qualifying points (or spend) of the rolling window ending ``now``."""
        since = program.window_start(now)
        column = self._value_column(program)
        return (
            sa.select(ledger.c.customer_id, sa.func.sum(column).label("value"))
            .where(ledger.c.program_id == program.id, who, ledger.c.qualifying.is_(True), ledger.c.created_at > since)
            .group_by(ledger.c.customer_id)
        )

    def _tier_case(
        self, program: Program, tiers: Sequence[Tier], value: sa.ColumnElement[Any]
    ) -> sa.ColumnElement[str]:
        highest_first = sorted(tiers, key=lambda tier: tier.rank, reverse=True)
        if len(highest_first) == 1:  # one tier for everyone (a CASE needs at least one WHEN)
            return sa.literal(highest_first[0].code, sa.String)
        return sa.case(
            *[(value >= _threshold_units(program, tier), tier.code) for tier in highest_first[:-1]],
            else_=highest_first[-1].code,
        )


def _threshold_units(program: Program, tier: Tier) -> int:
    """A tier's threshold in what the window sums: point units or minor units (checked when the tier was set)."""
    if program.tier_basis == "points":
        return int(Decimal(tier.threshold).scaleb(program.point_decimals))
    return int(tier.threshold)


def _tier_for(program: Program, tiers: Sequence[Tier], value: int) -> Tier:
    """The highest tier whose threshold ``value`` reaches (the lowest tier starts at 0)."""
    reached = [tier for tier in tiers if value >= _threshold_units(program, tier)]
    return max(reached, key=lambda tier: tier.rank) if reached else tiers[0]


def ranges(low: int | None, high: int | None, size: int) -> Iterator[tuple[int, int]]:
    """Consecutive [first, last] id ranges of ``size`` ids covering low..high (nothing when there are no rows)."""
    if low is None or high is None:
        return
    for first in range(low, high + 1, size):
        yield first, min(first + size - 1, high)


def lock_range(conn: sa.Connection, program_id: int, customer_ids: sa.Select[Any]) -> None:
    """PostgreSQL: lock the balance rows of these members in id order before a batch changes them."""
    if conn.dialect.name == "postgresql":
        conn.execute(
            sa.select(members.c.customer_id)
            .where(members.c.program_id == program_id, members.c.customer_id.in_(customer_ids))
            .order_by(members.c.customer_id)
            .with_for_update()
        ).all()
