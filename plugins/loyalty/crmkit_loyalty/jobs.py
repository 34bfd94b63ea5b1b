"""``crm.loyalty.jobs``: work over every member (expiry, tier evaluation, the ledger check) and the backfill of
points from orders the sales plugin already holds.

Expiry is set-based in SQL and in batches: each covers a range of customer ids and is one transaction; on
PostgreSQL it first locks the balance rows it will touch, in id order (see :mod:`crmkit_loyalty.tiering`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa

from crmkit.plugin_api import SYSTEM, UTCDateTime
from crmkit_loyalty.ledger import OPEN, entry_from_row, member_key
from crmkit_loyalty.models import ledger, members, programs
from crmkit_loyalty.permissions import JOBS_RUN
from crmkit_loyalty.records import Mismatch, Program
from crmkit_loyalty.tiering import BATCH, BatchRun, lock_range, ranges

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from crmkit_loyalty.base import Shared
    from crmkit_loyalty.orders import Orders
    from crmkit_loyalty.tiering import Tiering

BACKFILL_PAGE = 500


class Jobs:
    """``crm.loyalty.jobs``: ``expire()``, ``evaluate_tiers()``, ``verify()`` and ``backfill()``.

    The system (plain ``crm``, the scheduler) runs them unrestricted; a user needs ``loyalty.jobs.run``
    (not scoped: a job covers every member, whoever owns them).
    """

    def __init__(self, shared: Shared, tiering: Tiering, orders: Orders) -> None:
        self._shared = shared
        self._crm = shared.crm
        self._tiering = tiering
        self._orders = orders

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
        return [self._expire_program(target, moment, batch_size) for target in self._shared.targets(program)]

    def _expire_program(self, program: Program, now: datetime, batch_size: int) -> BatchRun:
        c = ledger.c
        due = sa.and_(c.program_id == program.id, OPEN, c.expires_at <= now)
        with self._crm.reading() as conn:
            low, high = conn.execute(sa.select(sa.func.min(c.customer_id), sa.func.max(c.customer_id)).where(due)).one()
        expired = units = 0
        for first, last in ranges(low, high, batch_size):
            with self._crm.transaction() as session:
                conn = session.connection()
                in_batch = sa.and_(due, c.customer_id.between(first, last))
                lock_range(conn, program.id, sa.select(c.customer_id).where(in_batch))
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
            self._shared.ledger.changed(session, entry_from_row(program, row), program.points(row["balance"]))

    # -- tiers --------------------------------------------------------------------------------

    def evaluate_tiers(
        self, *, program: str | None = None, now: datetime | None = None, batch_size: int = BATCH
    ) -> list[BatchRun]:
        """Put every member in the tier their qualifying points (or spend) over the rolling window reach.

        Set-based: one grouped query per batch of members finds those whose tier changes;
        ``crmkit_tier_changed`` fires for each of them.
        """
        self._crm.access.require(JOBS_RUN)
        return self._tiering.evaluate(program=program, now=now, batch_size=batch_size)

    # -- backfill -------------------------------------------------------------------------------

    def backfill(self, *, since: datetime | None = None) -> int:
        """Earn (and reverse refunds) for orders the sales plugin already holds, e.g. from before the program existed.

        Reads them through ``crm.sales.orders`` (newest first, in pages); idempotent like the hooks,
        so running it twice changes nothing. Returns how many orders were read. A batch job: it needs
        ``loyalty.jobs.run`` and reads every order, whatever the acting user's scope of the orders.
        """
        self._crm.access.require(JOBS_RUN)
        orders = self._crm.sales.orders
        seen: set[int] = set()
        until = None
        while True:
            with self._crm.access.acting(SYSTEM):  # the job reads every order; the entries still name the user
                listed = orders.list(since=since, until=until, limit=BACKFILL_PAGE)
            page = [order for order in listed if order.id not in seen]
            if not page:
                return len(seen)
            for order in page:
                seen.add(order.id)
                if order.status == "cancelled":
                    continue
                with self._crm.access.acting(SYSTEM):
                    refunds = orders.refunds(order.id) if order.refunded_minor else []
                with self._crm.transaction() as session:
                    self._orders.earn(order, session)
                    for refund in refunds:
                        self._orders.refund(order, refund, session)
            until = page[-1].placed_at + timedelta(microseconds=1)  # orders sharing the last instant are read again

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
            wanted = [target.id for target in self._shared.targets(program)]
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
