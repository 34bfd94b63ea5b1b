"""Loyalty reports, computed in SQL: liability, earn vs burn by month, members per tier, redemption and repeat rates.

Periods are local dates and months of the business (``crm.timezone``), bounded by UTC instants so each
month is an index range scan of ``ix_loyalty_ledger_program_id_created_at``. Purchases for the
repeat-purchase rate come from every implementation of ``crmkit_value_transactions`` (the sales
plugin's orders, a POS connector…), so loyalty reads no other plugin's tables.
"""

from __future__ import annotations

from datetime import date, timedelta, tzinfo
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import attrs
import sqlalchemy as sa

from crmkit.core.types import utcnow
from crmkit.calendar import local_midnight, month_windows
from crmkit.money import Money
from crmkit.purchases import purchases
from crmkit_loyalty.base import ServiceBase
from crmkit_loyalty.ledger import OPEN
from crmkit_loyalty.models import ledger, members, redemptions
from crmkit_loyalty.records import Points, Program

KINDS = ("earn", "reverse", "redeem", "expire", "adjust")
GROUPS = ("members", "non-members")
_INSTANT = timedelta(microseconds=1)
#: A program's first and last entry; its points per kind in [since, until).
_IN_PROGRAM = ledger.c.program_id == sa.bindparam("program_id")
_SPAN = sa.select(sa.func.min(ledger.c.created_at), sa.func.max(ledger.c.created_at)).where(_IN_PROGRAM)
_IN_MONTH = (_IN_PROGRAM, ledger.c.created_at >= sa.bindparam("since"), ledger.c.created_at < sa.bindparam("until"))
_FLOWS = sa.select(ledger.c.kind, sa.func.sum(ledger.c.points)).where(*_IN_MONTH).group_by(ledger.c.kind)


@attrs.frozen
class Liability:
    """Outstanding points of a program and what they are worth (negative balances are not a liability)."""

    program: str
    members: int
    outstanding: Points
    value: Money | None
    expiring_30_days: Points


@attrs.frozen
class MonthFlow:
    """Points earned and burned in one local month (reversed, redeemed and expired shown as positive numbers)."""

    program: str
    month: str
    earned: Points
    reversed: Points
    redeemed: Points
    expired: Points
    adjusted: Points
    net: Points


@attrs.frozen
class TierCount:
    """How many members a tier has."""

    program: str
    tier: str
    name: str
    members: int


@attrs.frozen
class RedemptionRate:
    """Share of earned points redeemed, and share of members who redeemed at least once, over a period."""

    program: str
    earned: Points
    redeemed: Points
    rate: Decimal | None
    members: int
    redeeming_members: int
    member_rate: Decimal | None


@attrs.frozen
class RepeatRate:
    """Among customers who bought in the period: how many bought at least twice (members vs non-members)."""

    group: str  # members | non-members
    buyers: int
    repeat_buyers: int
    rate: Decimal | None


class ReportsMixin(ServiceBase):
    """``crm.loyalty`` reports."""

    def liability(self, *, program: str | None = None) -> list[Liability]:
        """Per program: members, outstanding points, their money value and the points expiring within 30 days."""
        soon = utcnow() + timedelta(days=30)
        result = []
        with self._crm.reading() as conn:
            for target in self._chosen(conn, program):
                m = members.c
                positive = sa.case((m.points > 0, m.points), else_=0)
                count, outstanding = conn.execute(
                    sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(positive), 0))
                    .where(m.program_id == target.id)).one()
                expiring = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(ledger.c.remaining), 0))
                                        .where(ledger.c.program_id == target.id, OPEN, ledger.c.expires_at <= soon)
                                        ).scalar_one()
                result.append(Liability(target.code, count, target.points(int(outstanding)),
                                        target.value_of(int(outstanding)), target.points(int(expiring))))
        return result

    def earn_burn(self, *, program: str | None = None, start: date | None = None,
                  end: date | None = None) -> list[MonthFlow]:
        """Per local month (``crm.timezone``): points earned, reversed, redeemed, expired, adjusted, and the net."""
        zone = self._crm.timezone
        result = []
        with self._crm.reading() as conn:
            for target in self._chosen(conn, program):
                first, last = conn.execute(_SPAN, {"program_id": target.id}).one()
                if first is None:
                    continue
                low, high = first, last + _INSTANT  # the asked period, clipped to where there are entries
                if start is not None:
                    low = max(low, local_midnight(start, zone))
                if end is not None:
                    high = min(high, local_midnight(end + timedelta(days=1), zone))
                show = target.points
                for label, since, until in month_windows(low, high, zone) if low < high else ():
                    rows = conn.execute(_FLOWS, {"program_id": target.id, "since": since, "until": until}).all()
                    if not rows:
                        continue  # a month without entries is not listed
                    sums = dict.fromkeys(KINDS, 0) | {kind: int(total) for kind, total in rows}
                    result.append(MonthFlow(target.code, label, show(sums["earn"]), show(-sums["reverse"]),
                                            show(-sums["redeem"]), show(-sums["expire"]), show(sums["adjust"]),
                                            show(sum(sums.values()))))
        return result

    def tier_counts(self, *, program: str | None = None) -> list[TierCount]:
        """Members per tier, lowest tier first (tiers without members included)."""
        result = []
        with self._crm.reading() as conn:
            for target in self._chosen(conn, program):
                counts = dict(conn.execute(sa.select(members.c.tier, sa.func.count())
                                           .where(members.c.program_id == target.id).group_by(members.c.tier)).all())
                result.extend(TierCount(target.code, tier.code, tier.name, counts.get(tier.code, 0))
                              for tier in self._tiers(conn, target))
        return result

    def redemption_rate(self, *, program: str | None = None, start: date | None = None,
                        end: date | None = None) -> list[RedemptionRate]:
        """Points redeemed (net of cancellations) over points earned, and redeeming members over members."""
        zone = self._crm.timezone
        result = []
        with self._crm.reading() as conn:
            for target in self._chosen(conn, program):
                sums = dict(conn.execute(
                    sa.select(ledger.c.kind, sa.func.sum(ledger.c.points))
                    .where(ledger.c.program_id == target.id, ledger.c.kind.in_(("earn", "redeem")),
                           *_period(ledger.c.created_at, start, end, zone))
                    .group_by(ledger.c.kind)).all())
                earned, redeemed = int(sums.get("earn") or 0), -int(sums.get("redeem") or 0)
                count = conn.execute(sa.select(sa.func.count()).where(members.c.program_id == target.id)).scalar_one()
                redeeming = conn.execute(
                    sa.select(sa.func.count(sa.distinct(redemptions.c.customer_id)))
                    .where(redemptions.c.program_id == target.id, redemptions.c.status == "completed",
                           *_period(redemptions.c.created_at, start, end, zone))).scalar_one()
                result.append(RedemptionRate(target.code, target.points(earned), target.points(redeemed),
                                             _ratio(redeemed, earned), count, redeeming, _ratio(redeeming, count)))
        return result

    def repeat_purchase(self, *, program: str | None = None, start: date | None = None,
                        end: date | None = None) -> list[RepeatRate]:
        """Repeat-purchase rate of members vs non-members: buyers with two or more purchases over all buyers."""
        zone = self._crm.timezone
        bought = purchases(self._crm)  # no row when no plugin reports purchases: nobody bought anything we know of
        per_customer = (sa.select(bought.c.customer_id, sa.func.count().label("n"))
                        .where(bought.c.amount_minor > 0, *_period(bought.c.occurred_at, start, end, zone))
                        .group_by(bought.c.customer_id).subquery("buyers"))
        with self._crm.reading() as conn:
            target = self._program(conn, program)
            is_member = sa.exists().where(members.c.customer_id == per_customer.c.customer_id,
                                          members.c.program_id == target.id)
            grouped = sa.select(sa.case((is_member, "members"), else_="non-members").label("grp"),
                                per_customer.c.n).subquery("grouped")
            counts = {grp: (int(buyers), int(repeat or 0)) for grp, buyers, repeat in conn.execute(
                sa.select(grouped.c.grp, sa.func.count(), sa.func.sum(sa.case((grouped.c.n >= 2, 1), else_=0)))
                .group_by(grouped.c.grp)).all()}
        result = []
        for group in GROUPS:
            buyers, repeat = counts.get(group, (0, 0))
            result.append(RepeatRate(group, buyers, repeat, _ratio(repeat, buyers)))
        return result

    def _chosen(self, conn: sa.Connection, program: str | None) -> list[Program]:
        return [self._program(conn, program)] if program is not None else self._programs(conn)


def _period(column: sa.ColumnElement[Any], start: date | None, end: date | None,
            zone: tzinfo) -> list[sa.ColumnElement[bool]]:
    """Conditions for local dates ``start``..``end`` in ``zone`` (both included; either may be open)."""
    conditions = []
    if start is not None:
        conditions.append(column >= local_midnight(start, zone))
    if end is not None:
        conditions.append(column < local_midnight(end + timedelta(days=1), zone))
    return conditions


def _ratio(part: int, whole: int) -> Decimal | None:
    return None if not whole else (Decimal(part) / Decimal(whole)).quantize(Decimal("0.0001"), ROUND_HALF_EVEN)
