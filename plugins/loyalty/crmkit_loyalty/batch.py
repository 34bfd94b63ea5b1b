"""Work over every member, set-based in SQL and in batches: expiry, tier evaluation, and the ledger check.

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

from crmkit.plugin_api import UTCDateTime, ids_value, in_ids
from crmkit_loyalty import hookspecs
from crmkit_loyalty.base import ServiceBase
from crmkit_loyalty.ledger import MEMBER_KEY, OPEN, WINDOW, entry_from_row, member_key
from crmkit_loyalty.models import ledger, members, programs
from crmkit_loyalty.permissions import JOBS_RUN
from crmkit_loyalty.records import TIER_ENTITY, TIER_MOVE, Mismatch, Program, Tier, tier_entity_id

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

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


class BatchMixin(ServiceBase):
    """``crm.loyalty.expire()``, ``evaluate_tiers()`` and ``verify()``: jobs over every member.

    The system (plain ``crm``, the scheduler) runs them unrestricted; a user needs ``loyalty.jobs.run``
    (not scoped: a job covers every member, whoever owns them).
    """

    # -- expiry ------------------------------------------------------------------------------

    def expire(
        self, *, program: str | None = None, now: datetime | None = None, batch_size: int = BATCH
    ) -> list[BatchRun]:
        """Expire every lot whose expiry date has passed, oldest first: one ``expire`` entry per lot.

        Running it again expires nothing more: expired lots are closed (``remaining`` 0), and the unique
        (program, ``expiry``, entry id) key would refuse a second entry for the same lot.
        """
        self._crm.access.require(JOBS_RUN)
        moment = now or self._crm.now()
        return [self._expire_program(target, moment, batch_size) for target in self._targets(program)]

    def _expire_program(self, program: Program, now: datetime, batch_size: int) -> BatchRun:
        c = ledger.c
        due = sa.and_(c.program_id == program.id, OPEN, c.expires_at <= now)
        with self._crm.reading() as conn:
            low, high = conn.execute(sa.select(sa.func.min(c.customer_id), sa.func.max(c.customer_id)).where(due)).one()
        expired = units = 0
        for first, last in _ranges(low, high, batch_size):
            with self._crm.transaction() as session:
                conn = session.connection()
                in_batch = sa.and_(due, c.customer_id.between(first, last))
                _lock_range(conn, program.id, sa.select(c.customer_id).where(in_batch))
                count, batch_units = conn.execute(
                    sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(c.remaining), 0)).where(in_batch)
                ).one()
                if not count:
                    continue
                conn.execute(
                    ledger.insert().from_select(
                        [
                            "program_id",
                            "customer_id",
                            "points",
                            "kind",
                            "reason",
                            "source_kind",
                            "source_id",
                            "qualifying",
                            "created_at",
                            "actor",
                        ],
                        sa.select(
                            c.program_id,
                            c.customer_id,
                            -c.remaining,
                            sa.literal("expire"),
                            sa.literal("expiry"),
                            sa.literal("expiry"),
                            sa.cast(c.id, sa.String(100)),
                            sa.false(),
                            sa.literal(now, UTCDateTime()),
                            sa.literal(self._crm.actor),
                        ).where(in_batch),
                    )
                )
                per_member = (
                    sa.select(sa.func.sum(c.remaining))
                    .where(in_batch, c.customer_id == members.c.customer_id)
                    .scalar_subquery()
                )
                conn.execute(
                    members.update()
                    .where(
                        members.c.program_id == program.id,
                        members.c.customer_id.in_(sa.select(c.customer_id).where(in_batch)),
                    )
                    .values(points=members.c.points - per_member)
                )
                conn.execute(ledger.update().where(in_batch).values(remaining=0))
                expired += count
                units += batch_units
                if self._crm.hooks.has_implementations("crmkit_points_changed"):
                    self._announce_expiry(session, program, now, first, last)
        return BatchRun(program.code, expired, program.points(units))

    def _announce_expiry(self, session: Session, program: Program, now: datetime, first: int, last: int) -> None:
        conn = session.connection()
        rows = conn.execute(
            sa.select(ledger, members.c.points.label("balance"))
            .join(members, member_key(program.id, ledger.c.customer_id))
            .where(
                ledger.c.program_id == program.id,
                ledger.c.reason == "expiry",
                ledger.c.created_at == now,
                ledger.c.customer_id.between(first, last),
            )
            .order_by(ledger.c.id)
        ).mappings()
        for row in rows:
            self._ledger.changed(session, entry_from_row(program, row), program.points(row["balance"]))

    # -- tiers --------------------------------------------------------------------------------

    def evaluate_tiers(
        self, *, program: str | None = None, now: datetime | None = None, batch_size: int = BATCH
    ) -> list[BatchRun]:
        """Put every member in the tier their qualifying points (or spend) over the rolling window reach.

        Set-based: one grouped query per batch of members finds those whose tier changes;
        ``crmkit_tier_changed`` fires for each of them.
        """
        self._crm.access.require(JOBS_RUN)
        return self._evaluate_tiers(program=program, now=now, batch_size=batch_size)

    def _evaluate_tiers(
        self, *, program: str | None = None, now: datetime | None = None, batch_size: int = BATCH
    ) -> list[BatchRun]:
        """:meth:`evaluate_tiers` without the permission check (after ``set_tiers``, which has its own)."""
        moment = now or self._crm.now()
        return [self._evaluate_program(target, moment, batch_size) for target in self._targets(program)]

    def _evaluate_program(self, program: Program, now: datetime, batch_size: int) -> BatchRun:
        m = members.c
        with self._crm.reading() as conn:
            tiers = self._tiers(conn, program)
            low, high = conn.execute(
                sa.select(sa.func.min(m.customer_id), sa.func.max(m.customer_id)).where(m.program_id == program.id)
            ).one()
        if not tiers:
            return BatchRun(program.code, 0)
        changed = 0
        for first, last in _ranges(low, high, batch_size):
            with self._crm.transaction() as session:
                conn = session.connection()
                in_batch = sa.and_(m.program_id == program.id, m.customer_id.between(first, last))
                _lock_range(conn, program.id, sa.select(m.customer_id).where(in_batch))
                value = self._qualifying(program, now, ledger.c.customer_id.between(first, last)).subquery()
                target = self._tier_case(program, tiers, sa.func.coalesce(value.c.value, 0))
                rows = conn.execute(
                    sa.select(m.customer_id, m.tier, target.label("target"))
                    .select_from(members.outerjoin(value, value.c.customer_id == m.customer_id))
                    .where(in_batch, sa.or_(m.tier.is_(None), m.tier != target))
                ).all()
                self._move_tiers(session, program, tiers, [(r.customer_id, r.tier, r.target) for r in rows], now)
                changed += len(rows)
        return BatchRun(program.code, changed)

    def _evaluate_member(
        self, session: Session, program: Program, customer_id: int, now: datetime, tiers: Sequence[Tier]
    ) -> None:
        """Re-evaluate one member's tier after a change of their qualifying points (in the caller's transaction)."""
        if tiers:
            current = session.connection().execute(_TIER, {"member": customer_id, "program": program.id}).scalar()
            self._settle_tier(session, program, customer_id, now, tiers, current)

    def _settle_tier(
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
            self._move_tiers(session, program, tiers, [(customer_id, current, target.code)], now)

    def _move_tiers(
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

    # -- the ledger check -----------------------------------------------------------------------

    def verify(self, *, program: str | None = None) -> list[Mismatch]:
        """Members whose balance differs from the sum of their ledger, or whose open lots differ from the balance.

        An empty list means the ledger and the balances agree (what ``crmkit loyalty verify`` checks).
        """
        self._crm.access.require(JOBS_RUN)
        sums = (
            sa.select(ledger.c.program_id, ledger.c.customer_id, sa.func.sum(ledger.c.points).label("total"))
            .group_by(ledger.c.program_id, ledger.c.customer_id)
            .subquery()
        )
        open_lots = (
            sa.select(ledger.c.program_id, ledger.c.customer_id, sa.func.sum(ledger.c.remaining).label("open"))
            .where(OPEN)
            .group_by(ledger.c.program_id, ledger.c.customer_id)
            .subquery()
        )
        m = members.c
        total = sa.func.coalesce(sums.c.total, 0)
        opened = sa.func.coalesce(open_lots.c.open, 0)
        positive = sa.case((m.points > 0, m.points), else_=0)
        with self._crm.reading() as conn:
            wanted = [target.id for target in self._targets(program)]
            members_side = (
                sa.select(m.customer_id, programs.c.code, m.points, total, opened)
                .select_from(
                    members.join(programs, programs.c.id == m.program_id)
                    .outerjoin(sums, sa.and_(sums.c.program_id == m.program_id, sums.c.customer_id == m.customer_id))
                    .outerjoin(
                        open_lots,
                        sa.and_(open_lots.c.program_id == m.program_id, open_lots.c.customer_id == m.customer_id),
                    )
                )
                .where(m.program_id.in_(wanted), sa.or_(m.points != total, opened != positive))
            )
            orphans = (
                sa.select(sums.c.customer_id, programs.c.code, sa.literal(0), sums.c.total, sa.literal(0))
                .select_from(
                    sums.join(programs, programs.c.id == sums.c.program_id).outerjoin(
                        members, sa.and_(m.program_id == sums.c.program_id, m.customer_id == sums.c.customer_id)
                    )
                )
                .where(sums.c.program_id.in_(wanted), m.customer_id.is_(None), sums.c.total != 0)
            )
            rows = conn.execute(sa.union_all(members_side, orphans)).all()
        return [Mismatch(int(r[0]), r[1], int(r[2]), int(r[3]), int(r[4])) for r in rows]

    def _targets(self, program: str | None) -> list[Program]:
        """The named program, or every active program when ``program`` is None."""
        with self._crm.reading() as conn:
            return [self._program(conn, program)] if program is not None else self._programs(conn, active_only=True)


def _threshold_units(program: Program, tier: Tier) -> int:
    """A tier's threshold in what the window sums: point units or minor units (checked when the tier was set)."""
    if program.tier_basis == "points":
        return int(Decimal(tier.threshold).scaleb(program.point_decimals))
    return int(tier.threshold)


def _tier_for(program: Program, tiers: Sequence[Tier], value: int) -> Tier:
    """The highest tier whose threshold ``value`` reaches (the lowest tier starts at 0)."""
    reached = [tier for tier in tiers if value >= _threshold_units(program, tier)]
    return max(reached, key=lambda tier: tier.rank) if reached else tiers[0]


def _ranges(low: int | None, high: int | None, size: int) -> Iterator[tuple[int, int]]:
    """Consecutive [first, last] id ranges of ``size`` ids covering low..high (nothing when there are no rows)."""
    if low is None or high is None:
        return
    for first in range(low, high + 1, size):
        yield first, min(first + size - 1, high)


def _lock_range(conn: sa.Connection, program_id: int, customer_ids: sa.Select[Any]) -> None:
    """PostgreSQL: lock the balance rows of these members in id order before a batch changes them."""
    if conn.dialect.name == "postgresql":
        conn.execute(
            sa.select(members.c.customer_id)
            .where(members.c.program_id == program_id, members.c.customer_id.in_(customer_ids))
            .order_by(members.c.customer_id)
            .with_for_update()
        ).all()
