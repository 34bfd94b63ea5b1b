"""Sales reports (``crm.sales.reports``): every figure is a SQL aggregate; Python only shapes the few result rows.

Months are calendar months of the business's time zone (setting ``timezone``), exact with daylight
saving too: orders are split into months by UTC instant ranges (one index range scan each).
Revenue is order totals (VAT included) net of refunds over orders not cancelled; product revenue
is line amounts before VAT (refunds are not itemised per line, so fully refunded orders are left out).

Every report needs ``sales.reports.read`` and aggregates only the deals and orders of the customers in
its scope (the predicate is in the SQL): a :class:`Report` says whether it is ``scoped`` and for whom.
``customer_id`` narrows any report to one customer.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Generic, TypeVar

import attrs
import sqlalchemy as sa

from crmkit.errors import ValidationError
from crmkit.plugin_api import seconds_between, year_month
from crmkit.vncalendar import month_windows
from crmkit_sales import models as m
from crmkit_sales.base import Part, check_period
from crmkit_sales.permissions import REPORTS_READ

REVENUE_STATUSES = ("placed", "shipped", "delivered", "refunded")
Row = TypeVar("Row")


class Report(list[Row], Generic[Row]):
    """A report's rows (a list), and whether they cover only the customers in the acting user's scope.

    ``scoped`` is False for the system and for a user whose ``sales.reports.read`` reaches every
    customer; ``user`` names who it was made for (None: the system).
    """

    def __init__(self, rows: Iterable[Row] = (), *, scoped: bool = False, user: str | None = None) -> None:
        super().__init__(rows)
        self.scoped = scoped
        self.user = user

    def __repr__(self) -> str:
        return f"Report({list.__repr__(self)}, scoped={self.scoped}, user={self.user!r})"


@attrs.frozen
class FunnelRow:
    """One stage of the funnel: deals that reached it, are in it now, and the share moving on."""

    stage: str
    position: int
    probability: Decimal
    outcome: str | None
    reached: int
    current: int
    conversion_to_next: Decimal | None  # % of those who reached this stage that reached the next
    conversion_from_start: Decimal | None  # % of all deals that reached this stage


@attrs.frozen
class ForecastRow:
    """Open deals expected to close in a month: count, amount, and amount × stage probability."""

    month: str  # YYYY-MM, or "unscheduled"
    currency: str
    deals: int
    amount_minor: int
    weighted_minor: int


@attrs.frozen
class PerformanceRow:
    """An employee's results over a period: deals won and lost, win rate, revenue from their orders."""

    owner: str
    won: int
    lost: int
    win_rate: Decimal | None  # % of closed deals won
    won_amount_minor: int
    orders: int
    revenue_minor: int
    currency: str


@attrs.frozen
class ProductRow:
    """A product's sales over a period (or one month of it)."""

    period: str
    rank: int
    sku: str
    name: str
    currency: str
    quantity: Decimal
    orders: int
    revenue_minor: int


@attrs.frozen
class CloseTimeRow:
    """How long won deals took from opening to closing."""

    pipeline: str
    owner: str | None
    deals: int
    average_days: Decimal
    min_days: Decimal
    max_days: Decimal


@attrs.frozen
class RevenueRow:
    """Orders and revenue (net of refunds, VAT included) in a month."""

    month: str
    currency: str
    orders: int
    revenue_minor: int


def _percent(part: int, whole: int) -> Decimal | None:
    return None if not whole else (Decimal(part) * 100 / whole).quantize(Decimal("0.1"), rounding=ROUND_HALF_EVEN)


def _days(value: Any) -> Decimal:
    return Decimal(str(value or 0)).quantize(Decimal("0.1"), rounding=ROUND_HALF_EVEN)


class Reports(Part):
    """Funnel, weighted forecast, performance per employee, top products, days to close, revenue by month."""

    def _bounds(self, since: date | None, until: date | None) -> tuple[datetime | None, datetime | None]:
        """[since, until] as local days → UTC instants [start, end)."""
        check_period(since, until)
        zone = self.timezone
        start = datetime.combine(since, time(0), zone) if since else None
        end = datetime.combine(until + timedelta(days=1), time(0), zone) if until else None
        return start, end

    def _report(self, rows: Iterable[Row]) -> Report[Row]:
        principal = self.crm.access.principal
        return Report(
            rows, scoped=self.is_scoped(REPORTS_READ), user=None if principal.is_system else principal.username
        )

    def _in_scope(self, query: Any, customer_id: sa.ColumnElement[Any], only: int | None) -> Any:
        """``query`` over the customers in the ``sales.reports.read`` scope (and just ``only``, when given)."""
        query = self.scoped(query, customer_id, REPORTS_READ)
        return query if only is None else query.where(customer_id == only)

    def funnel(
        self,
        pipeline: int | str,
        *,
        since: date | None = None,
        until: date | None = None,
        customer_id: int | None = None,
    ) -> Report[FunnelRow]:
        """Conversion by stage for deals opened in [since, until]: how many reached each stage and went on."""
        self.require(REPORTS_READ)
        d = m.deals.c
        start, end = self._bounds(since, until)
        with self.crm.reading() as conn:
            pipe = self.sales.pipelines.fetch(conn, pipeline)
            query = sa.select(d.stage_id, d.reached_position, sa.func.count()).where(d.pipeline_id == pipe.id)
            query = self._in_scope(query, d.customer_id, customer_id)
            if start:
                query = query.where(d.opened_at >= start)
            if end:
                query = query.where(d.opened_at < end)
            groups = conn.execute(query.group_by(d.stage_id, d.reached_position)).all()
        current: dict[int, int] = defaultdict(int)
        by_reach: dict[int, int] = defaultdict(int)
        for stage_id, reached, count in groups:
            current[stage_id] += count
            by_reach[reached] += count
        total = sum(current.values())
        progress = [s for s in pipe.stages if s.outcome != "lost"]
        reached_at = {s.position: sum(n for pos, n in by_reach.items() if pos >= s.position) for s in progress}
        rows = []
        for stage in pipe.stages:
            if stage.outcome == "lost":
                rows.append(
                    FunnelRow(
                        stage.name,
                        stage.position,
                        stage.probability,
                        stage.outcome,
                        current[stage.id],
                        current[stage.id],
                        None,
                        _percent(current[stage.id], total),
                    )
                )
                continue
            reached = reached_at[stage.position]
            following = next(iter(progress[progress.index(stage) + 1 :]), None)
            to_next = _percent(reached_at[following.position], reached) if following else None
            rows.append(
                FunnelRow(
                    stage.name,
                    stage.position,
                    stage.probability,
                    stage.outcome,
                    reached,
                    current[stage.id],
                    to_next,
                    _percent(reached, total),
                )
            )
        return self._report(rows)

    def forecast(
        self,
        *,
        pipeline: int | str | None = None,
        since: date | None = None,
        until: date | None = None,
        customer_id: int | None = None,
    ) -> Report[ForecastRow]:
        """Weighted pipeline by month of expected close: Σ amount × stage probability over open deals.

        Each month's weighted sum is computed exactly and rounded once, half-to-even, to the minor unit.
        """
        self.require(REPORTS_READ)
        check_period(since, until)
        d = m.deals.c
        month = year_month(d.expected_close)
        query = (
            sa.select(month, d.currency, d.stage_id, sa.func.count(), sa.func.sum(d.amount_minor))
            .where(d.status == "open")
            .group_by(month, d.currency, d.stage_id)
        )
        query = self._in_scope(query, d.customer_id, customer_id)
        if since:
            query = query.where(d.expected_close >= since.replace(day=1))
        if until:
            query = query.where(d.expected_close <= until)
        with self.crm.reading() as conn:
            if pipeline is not None:
                query = query.where(d.pipeline_id == self.sales.pipelines.fetch(conn, pipeline).id)
            groups = conn.execute(query).all()
            probability = dict(conn.execute(sa.select(m.stages.c.id, m.stages.c.probability)).all())
        sums: dict[tuple[str, str], list[Any]] = {}
        for month_key, currency, stage_id, count, amount in groups:
            box = sums.setdefault((month_key or "unscheduled", currency), [0, 0, Decimal(0)])
            box[0] += count
            box[1] += int(amount)
            box[2] += Decimal(int(amount)) * probability[stage_id]
        return self._report(
            ForecastRow(mk, cur, n, amount, int(weighted.quantize(Decimal(1), rounding=ROUND_HALF_EVEN)))
            for (mk, cur), (n, amount, weighted) in sorted(sums.items())
        )

    def performance(
        self, *, since: date | None = None, until: date | None = None, customer_id: int | None = None
    ) -> Report[PerformanceRow]:
        """Per employee (deal and order owner): deals won/lost closed in the period, win rate, order revenue.

        One row per employee and currency of their won deals and orders; the deal counts and win
        rate cover all of the employee's deals (with the customers in scope).
        """
        self.require(REPORTS_READ)
        start, end = self._bounds(since, until)
        d, o = m.deals.c, m.orders.c
        closed = d.status.in_(("won", "lost"))
        counts_q = sa.select(d.owner, d.status, sa.func.count()).where(closed).group_by(d.owner, d.status)
        won_q = (
            sa.select(d.owner, d.currency, sa.func.sum(d.amount_minor))
            .where(d.status == "won")
            .group_by(d.owner, d.currency)
        )
        orders_q = (
            sa.select(o.owner, o.currency, sa.func.count(), sa.func.sum(o.total_minor - o.refunded_minor))
            .where(o.status.in_(REVENUE_STATUSES))
            .group_by(o.owner, o.currency)
        )
        counts_q, won_q = (
            self._in_scope(counts_q, d.customer_id, customer_id),
            self._in_scope(won_q, d.customer_id, customer_id),
        )
        orders_q = self._in_scope(orders_q, o.customer_id, customer_id)
        if start:
            counts_q, won_q = counts_q.where(d.closed_at >= start), won_q.where(d.closed_at >= start)
            orders_q = orders_q.where(o.placed_at >= start)
        if end:
            counts_q, won_q = counts_q.where(d.closed_at < end), won_q.where(d.closed_at < end)
            orders_q = orders_q.where(o.placed_at < end)
        with self.crm.reading() as conn:
            counts = conn.execute(counts_q).all()
            won_amounts = conn.execute(won_q).all()
            order_groups = conn.execute(orders_q).all()
        closed_counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for owner, status, count in counts:
            closed_counts[owner or "(none)"][status] += count
        money: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])  # won amount, orders, revenue
        for owner, currency, amount in won_amounts:
            money[(owner or "(none)", currency)][0] += int(amount or 0)
        for owner, currency, count, revenue in order_groups:
            box = money[(owner or "(none)", currency)]
            box[1] += count
            box[2] += int(revenue or 0)
        for owner in closed_counts:
            if not any(key[0] == owner for key in money):
                money[(owner, self.currency)] = [0, 0, 0]
        rows = []
        for (owner, currency), (won_amount, orders, revenue) in money.items():
            won, lost = closed_counts[owner]["won"], closed_counts[owner]["lost"]
            rows.append(
                PerformanceRow(owner, won, lost, _percent(won, won + lost), won_amount, orders, revenue, currency)
            )
        return self._report(sorted(rows, key=lambda r: (r.currency, -r.revenue_minor, r.owner)))

    def top_products(
        self,
        *,
        since: date | None = None,
        until: date | None = None,
        limit: int = 10,
        per_month: bool = False,
        customer_id: int | None = None,
    ) -> Report[ProductRow]:
        """Best-selling products by revenue (before VAT) over the period, or the top ``limit`` of each month."""
        self.require(REPORTS_READ)
        if limit < 1:
            raise ValidationError("must be at least 1", field="limit")
        start, end = self._bounds(since, until)
        line, o = m.order_lines.c, m.orders.c
        query = (
            sa.select(
                line.sku,
                sa.func.max(line.name),
                o.currency,
                sa.type_coerce(sa.func.sum(line.quantity), m.Quantity),
                sa.func.count(sa.distinct(o.id)),
                sa.func.sum(line.net_minor).label("revenue"),
            )
            .join(m.orders, o.id == line.order_id)
            .where(
                o.status.in_(REVENUE_STATUSES[:-1]),
                o.placed_at >= sa.bindparam("start"),
                o.placed_at < sa.bindparam("end"),
            )
            .group_by(line.product_id, line.sku, o.currency)
            .order_by(o.currency, sa.desc("revenue"), line.sku)
        )
        query = self._in_scope(query, o.customer_id, customer_id)
        with self.crm.reading() as conn:
            start, end = self._span(conn, start, end, customer_id)
            if start is None or end is None:
                return self._report([])
            windows = month_windows(start, end, self.timezone) if per_month else [("all", start, end)]
            result = []
            for label, low, high in windows:
                ranks: dict[str, int] = defaultdict(int)
                for sku, name, currency, quantity, orders, revenue in conn.execute(query, {"start": low, "end": high}):
                    ranks[currency] += 1
                    if ranks[currency] <= limit:
                        result.append(
                            ProductRow(label, ranks[currency], sku, name, currency, quantity, orders, int(revenue))
                        )
        return self._report(result)

    def days_to_close(
        self,
        *,
        pipeline: int | str | None = None,
        since: date | None = None,
        until: date | None = None,
        per_owner: bool = False,
        customer_id: int | None = None,
    ) -> Report[CloseTimeRow]:
        """Average (min, max) days from opening to winning, for deals won in the period, per pipeline (and owner)."""
        self.require(REPORTS_READ)
        start, end = self._bounds(since, until)
        d, p = m.deals.c, m.pipelines.c
        days = seconds_between(d.opened_at, d.closed_at) / 86400.0
        groups: list[Any] = [p.name, d.owner] if per_owner else [p.name]
        owner = d.owner if per_owner else sa.null()
        query = (
            sa.select(p.name, owner, sa.func.count(), sa.func.avg(days), sa.func.min(days), sa.func.max(days))
            .join(m.pipelines, p.id == d.pipeline_id)
            .where(d.status == "won")
            .group_by(*groups)
        )
        query = self._in_scope(query, d.customer_id, customer_id)
        if start:
            query = query.where(d.closed_at >= start)
        if end:
            query = query.where(d.closed_at < end)
        with self.crm.reading() as conn:
            if pipeline is not None:
                query = query.where(d.pipeline_id == self.sales.pipelines.fetch(conn, pipeline).id)
            rows = conn.execute(query.order_by(*groups)).all()
        return self._report(
            CloseTimeRow(name, who, count, _days(avg), _days(low), _days(high))
            for name, who, count, avg, low, high in rows
        )

    def revenue_by_month(
        self, *, since: date | None = None, until: date | None = None, customer_id: int | None = None
    ) -> Report[RevenueRow]:
        """Orders and revenue (net of refunds) per month and currency."""
        self.require(REPORTS_READ)
        start, end = self._bounds(since, until)
        o = m.orders.c
        counted = (
            o.status.in_(REVENUE_STATUSES),
            o.placed_at >= sa.bindparam("start"),
            o.placed_at < sa.bindparam("end"),
        )
        currencies = self._in_scope(sa.select(o.currency).where(*counted).distinct(), o.customer_id, customer_id)
        month = self._in_scope(
            sa.select(sa.func.count(), sa.func.sum(o.total_minor - o.refunded_minor)).where(
                *counted, o.currency == sa.bindparam("currency")
            ),
            o.customer_id,
            customer_id,
        )
        rows = []
        with self.crm.reading() as conn:
            start, end = self._span(conn, start, end, customer_id)
            if start is None or end is None:
                return self._report([])
            found = sorted(conn.execute(currencies, {"start": start, "end": end}).scalars())
            for label, low, high in month_windows(start, end, self.timezone):
                for currency in found:
                    count, revenue = conn.execute(month, {"start": low, "end": high, "currency": currency}).one()
                    if count:
                        rows.append(RevenueRow(label, currency, count, int(revenue or 0)))
        return self._report(rows)

    def _span(
        self, conn: sa.Connection, start: datetime | None, end: datetime | None, customer_id: int | None
    ) -> tuple[datetime | None, datetime | None]:
        """The period with open ends closed by the first and last order in scope (two index lookups unscoped)."""
        if start is None or end is None:
            o = m.orders.c
            query = self._in_scope(
                sa.select(sa.func.min(o.placed_at), sa.func.max(o.placed_at)), o.customer_id, customer_id
            )
            first, last = conn.execute(query).one()
            start = start or first
            end = end or (last + timedelta(microseconds=1) if last else None)
        return start, end
