"""``crm.loyalty.reports``, computed in SQL: liability, earn vs burn by month, members per tier, redemption and repeat rates.

Periods are local dates and months of the business (``crm.timezone``), bounded by UTC instants so each
month is an index range scan of ``ix_loyalty_ledger_program_id_created_at``. Purchases for the
repeat-purchase rate come from every implementation of ``crmkit_value_transactions`` (the sales
plugin's orders, a POS connector…), so loyalty reads no other plugin's tables.

Every report needs ``loyalty.reports.read`` and counts only the customers in the acting user's scope
of it: the scope is a predicate in each query's WHERE (never a filter after reading), and each row
says so in ``scoped_to`` (``"lan (team)"``; None when the figures cover every customer).
"""

from __future__ import annotations

from datetime import date, timedelta, tzinfo
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa

from crmkit.money import Money
from crmkit.plugin_api import purchases
from crmkit.vncalendar import local_midnight, month_windows
from crmkit_loyalty.ledger import OPEN
from crmkit_loyalty.models import ledger, members, redemptions
from crmkit_loyalty.permissions import REPORTS_READ
from crmkit_loyalty.records import Points, Program

if TYPE_CHECKING:
    from crmkit_loyalty.base import Shared

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
    scoped_to: str | None = None  # whose scope the figures are limited to (None: every customer)


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
    scoped_to: str | None = None


@attrs.frozen
class TierCount:
    """How many members a tier has."""

    program: str
    tier: str
    name: str
    members: int
    scoped_to: str | None = None


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
    scoped_to: str | None = None


@attrs.frozen
class RepeatRate:
    """Among customers who bought in the period: how many bought at least twice (members vs non-members)."""

    group: str  # members | non-members
    buyers: int
    repeat_buyers: int
    rate: Decimal | None
    scoped_to: str | None = None


class Reports:
    """``crm.loyalty.reports``: liability, earn vs burn, members per tier, redemption and repeat-purchase rates."""

    def __init__(self, shared: Shared) -> None:
        self._shared = shared
        self._crm = shared.crm

    def liability(self, *, program: str | None = None) -> list[Liability]:
        """Per program: members, outstanding points, their money value and the points expiring within 30 days."""
        scoped_to = self._scoped_to()
        mine, lots_in_scope = self._reported(members.c.customer_id), self._reported(ledger.c.customer_id)
        soon = self._crm.now() + timedelta(days=30)
        result = []
        with self._crm.reading() as conn:
            for target in self._chosen(conn, program):
                m = members.c
                positive = sa.case((m.points > 0, m.points), else_=0)
                count, outstanding = conn.execute(
                    sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(positive), 0)).where(
                        m.program_id == target.id, mine
                    )
                ).one()
                expiring = conn.execute(
                    sa.select(sa.func.coalesce(sa.func.sum(ledger.c.remaining), 0)).where(
                        ledger.c.program_id == target.id, OPEN, ledger.c.expires_at <= soon, lots_in_scope
                    )
                ).scalar_one()
                result.append(
                    Liability(
                        target.code,
                        count,
                        target.points(int(outstanding)),
                        target.value_of(int(outstanding)),
                        target.points(int(expiring)),
                        scoped_to,
                    )
                )
        return result

    def earn_burn(
        self, *, program: str | None = None, start: date | None = None, end: date | None = None
    ) -> list[MonthFlow]:
        """Per local month (``crm.timezone``): points earned, reversed, redeemed, expired, adjusted, and the net."""
        scoped_to = self._scoped_to()
        mine = self._reported(ledger.c.customer_id)
        span, flows = _SPAN.where(mine), _FLOWS.where(mine)
        zone = self._crm.timezone
        result = []
        with self._crm.reading() as conn:
            for target in self._chosen(conn, program):
                first, last = conn.execute(span, {"program_id": target.id}).one()
                if first is None:
                    continue
                low, high = first, last + _INSTANT  # the asked period, clipped to where there are entries
                if start is not None:
                    low = max(low, local_midnight(start, zone))
                if end is not None:
                    high = min(high, local_midnight(end + timedelta(days=1), zone))
                show = target.points
                for label, since, until in month_windows(low, high, zone) if low < high else ():
                    rows = conn.execute(flows, {"program_id": target.id, "since": since, "until": until}).all()
                    if not rows:
                        continue  # a month without entries is not listed
                    sums = dict.fromkeys(KINDS, 0) | {kind: int(total) for kind, total in rows}
                    result.append(
                        MonthFlow(
                            target.code,
                            label,
                            show(sums["earn"]),
                            show(-sums["reverse"]),
                            show(-sums["redeem"]),
                            show(-sums["expire"]),
                            show(sums["adjust"]),
                            show(sum(sums.values())),
                            scoped_to,
                        )
                    )
        return result

    def tier_counts(self, *, program: str | None = None) -> list[TierCount]:
        """Members per tier, lowest tier first (tiers without members included)."""
        scoped_to = self._scoped_to()
        mine = self._reported(members.c.customer_id)
        result = []
        with self._crm.reading() as conn:
            for target in self._chosen(conn, program):
                counts = dict(
                    conn.execute(
                        sa.select(members.c.tier, sa.func.count())
                        .where(members.c.program_id == target.id, mine)
                        .group_by(members.c.tier)
                    ).all()
                )
                result.extend(
                    TierCount(target.code, tier.code, tier.name, counts.get(tier.code, 0), scoped_to)
                    for tier in self._shared.tiers(conn, target)
                )
        return result

    def redemption_rate(
        self, *, program: str | None = None, start: date | None = None, end: date | None = None
    ) -> list[RedemptionRate]:
        """Points redeemed (net of cancellations) over points earned, and redeeming members over members."""
        scoped_to = self._scoped_to()
        entries_in_scope, mine = self._reported(ledger.c.customer_id), self._reported(members.c.customer_id)
        redemptions_in_scope = self._reported(redemptions.c.customer_id)
        zone = self._crm.timezone
        result = []
        with self._crm.reading() as conn:
            for target in self._chosen(conn, program):
                sums = dict(
                    conn.execute(
                        sa.select(ledger.c.kind, sa.func.sum(ledger.c.points))
                        .where(
                            ledger.c.program_id == target.id,
                            ledger.c.kind.in_(("earn", "redeem")),
                            entries_in_scope,
                            *_period(ledger.c.created_at, start, end, zone),
                        )
                        .group_by(ledger.c.kind)
                    ).all()
                )
                earned, redeemed = int(sums.get("earn") or 0), -int(sums.get("redeem") or 0)
                count = conn.execute(
                    sa.select(sa.func.count()).where(members.c.program_id == target.id, mine)
                ).scalar_one()
                redeeming = conn.execute(
                    sa.select(sa.func.count(sa.distinct(redemptions.c.customer_id))).where(
                        redemptions.c.program_id == target.id,
                        redemptions.c.status == "completed",
                        redemptions_in_scope,
                        *_period(redemptions.c.created_at, start, end, zone),
                    )
                ).scalar_one()
                result.append(
                    RedemptionRate(
                        target.code,
                        target.points(earned),
                        target.points(redeemed),
                        _ratio(redeemed, earned),
                        count,
                        redeeming,
                        _ratio(redeeming, count),
                        scoped_to,
                    )
                )
        return result

    def repeat_purchase(
        self, *, program: str | None = None, start: date | None = None, end: date | None = None
    ) -> list[RepeatRate]:
        """Repeat-purchase rate of members vs non-members: buyers with two or more purchases over all buyers."""
        scoped_to = self._scoped_to()
        zone = self._crm.timezone
        bought = purchases(self._crm)  # no row when no plugin reports purchases: nobody bought anything we know of
        per_customer = (
            sa.select(bought.c.customer_id, sa.func.count().label("n"))
            .where(
                bought.c.amount_minor > 0,
                self._reported(bought.c.customer_id),
                *_period(bought.c.occurred_at, start, end, zone),
            )
            .group_by(bought.c.customer_id)
            .subquery("buyers")
        )
        with self._crm.reading() as conn:
            target = self._shared.program(conn, program)
            is_member = sa.exists().where(
                members.c.customer_id == per_customer.c.customer_id, members.c.program_id == target.id
            )
            grouped = sa.select(
                sa.case((is_member, "members"), else_="non-members").label("grp"), per_customer.c.n
            ).subquery("grouped")
            counts = {
                grp: (int(buyers), int(repeat or 0))
                for grp, buyers, repeat in conn.execute(
                    sa.select(
                        grouped.c.grp, sa.func.count(), sa.func.sum(sa.case((grouped.c.n >= 2, 1), else_=0))
                    ).group_by(grouped.c.grp)
                ).all()
            }
        result = []
        for group in GROUPS:
            buyers, repeat = counts.get(group, (0, 0))
            result.append(RepeatRate(group, buyers, repeat, _ratio(repeat, buyers), scoped_to))
        return result

    def _scoped_to(self) -> str | None:
        """Require ``loyalty.reports.read``; who the figures are limited to (``"lan (own)"``), None for everyone."""
        access = self._crm.access
        scope = access.require(REPORTS_READ)
        return None if scope == "all" else f"{access.principal.username} ({scope})"

    def _reported(self, customer_id: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
        """Rows about customers in the acting user's scope of ``loyalty.reports.read`` (a WHERE predicate)."""
        return self._crm.access.customers(customer_id, REPORTS_READ)

    def _chosen(self, conn: sa.Connection, program: str | None) -> list[Program]:
        return [self._shared.program(conn, program)] if program is not None else self._shared.programs(conn)


def _period(
    column: sa.ColumnElement[Any], start: date | None, end: date | None, zone: tzinfo
) -> list[sa.ColumnElement[bool]]:
    """Conditions for local dates ``start``..``end`` in ``zone`` (both included; either may be open)."""
    conditions = []
    if start is not None:
        conditions.append(column >= local_midnight(start, zone))
    if end is not None:
        conditions.append(column < local_midnight(end + timedelta(days=1), zone))
    return conditions


def _ratio(part: int, whole: int) -> Decimal | None:
    return None if not whole else (Decimal(part) / Decimal(whole)).quantize(Decimal("0.0001"), ROUND_HALF_EVEN)
