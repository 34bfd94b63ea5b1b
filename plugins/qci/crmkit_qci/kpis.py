"""The evidence from data: each QCI area's KPIs, computed in SQL over one period.

Every KPI declares its unit, whether higher or lower is better, its data source(s) and a one-line
definition (the README's KPI table is this catalogue). A measurement is ``ok`` with a value,
``no data`` (nothing to measure in the period — never shown as 0) or ``not available`` (its source
plugin is not installed, the source lacks a field, or the reader may not read it), always with the reason.

KPIs are measured for the acting user (``crm.access``): every query over customers, interactions and
purchases carries the ``qci.read`` scope predicate in its SQL, so a user whose scope is their own or
their teams' customers gets KPIs of those customers only, and each ``Measure`` says so (its
``coverage``). Figures that exist only for the whole business (recorded and campaign costs, campaign
results, the share-of-wallet run) are ``not available`` on such a scoped scorecard rather than mixed
with scoped counts. The system (the plain ``crm``) and users with scope ``all`` count every customer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa

from crmkit.errors import PermissionDenied
from crmkit.money import Money
from crmkit.plugin_api import core_tables as core
from crmkit.plugin_api import seconds_between
from crmkit_qci import campaign_data
from crmkit_qci.models import costs
from crmkit_qci.periods import Period
from crmkit_qci.permissions import READ
from crmkit_qci.sources import ANALYTICS, CAMPAIGNS, CASES, CORE, COSTS, DUPLICATES, PURCHASES, Source, available

if TYPE_CHECKING:
    from crmkit import CRM

OK, NO_DATA, NOT_AVAILABLE = "ok", "no data", "not available"
HIGHER, LOWER = "higher", "lower"

#: A reply later than this does not answer an inbound contact; a case unresolved after this stays unresolved.
REPLY_WINDOW = timedelta(days=7)
RESOLUTION_WINDOW = timedelta(days=30)
#: A customer who had not bought for this long before the period and buys in it is won back.
LAPSE = timedelta(days=180)
#: Records untouched (no update, no interaction) for longer than this are stale.
FRESHNESS = timedelta(days=365)
#: Outcomes that close a case (compared lower-case); the ``qci.resolved_outcomes`` setting replaces them.
#: How far back the case KPIs look (complaints "in the last 90 days").
CASE_WINDOW = timedelta(days=90)
RESOLVED_OUTCOMES = ("resolved", "closed", "solved", "done", "đã giải quyết")
DUPLICATE_PAIRS_LIMIT = 100_000


class NoData(Exception):
    """Nothing to measure in the period (the message says what is missing)."""


class Unavailable(Exception):
    """The KPI's source cannot provide it (the message says what to install or what is missing)."""


@attrs.frozen
class Coverage:
    """Whose customers KPIs count: the ``qci.read`` scope of the reader (``all`` for the system) and who reads."""

    scope: str = "all"  # all | team | own
    user: str | None = None  # the acting user; None for the system

    @property
    def scoped(self) -> bool:
        """True when the KPIs count only some customers (the user's own, or their teams')."""
        return self.scope != "all"

    def describe(self) -> str:
        """``every customer``, ``customers of lan's teams`` or ``lan's own customers``."""
        if not self.scoped:
            return "every customer"
        return f"customers of {self.user}'s teams" if self.scope == "team" else f"{self.user}'s own customers"


def coverage(crm: CRM) -> Coverage:
    """The acting principal's coverage; requires ``qci.read`` (``PermissionDenied`` naming it otherwise)."""
    scope = crm.access.require(READ)
    principal = crm.access.principal
    return Coverage(scope, None if principal.is_system else principal.username)


@attrs.frozen
class Context:
    """What every KPI computation reads: the CRM, a connection, the period, the purchases subquery (already
    scoped) and whose customers count."""

    crm: CRM
    conn: sa.Connection
    period: Period
    purchases: sa.Subquery | None
    currency: str
    coverage: Coverage = Coverage()
    _memo: dict[str, Any] = attrs.field(factory=dict, init=False, repr=False)

    def mine(self, customer_id: Any) -> sa.ColumnElement[bool]:
        """The scope predicate on a ``customer_id`` column (always true when every customer counts)."""
        return self.crm.access.customers(customer_id, READ) if self.coverage.scoped else sa.true()

    def owned(self) -> sa.ColumnElement[bool]:
        """The scope predicate on the customers table itself (on its ``owner``: no subquery)."""
        return self.crm.access.owner_filter(core.customers.c.owner, READ) if self.coverage.scoped else sa.true()

    def whole_business(self, what: str) -> None:
        """Refuse (``Unavailable``) a figure that exists only for the whole business on a scoped scorecard."""
        if self.coverage.scoped:
            raise Unavailable(
                f"{what} cover the whole business: not shown on a scorecard of {self.coverage.describe()}"
            )

    def once(self, key: str, compute: Callable[[], Any]) -> Any:
        """``compute()`` the first time ``key`` is asked for in this context, the same result afterwards
        (figures two KPIs share, e.g. the replies to inbound contacts, or campaigns' reports); a ``NoData`` or
        ``Unavailable`` it raised is raised again without computing twice."""
        if key not in self._memo:
            try:
                self._memo[key] = compute()
            except (NoData, Unavailable) as exc:
                self._memo[key] = exc
        found = self._memo[key]
        if isinstance(found, (NoData, Unavailable)):
            raise found
        return found

    @property
    def start(self) -> datetime:
        return self.period.start

    @property
    def end(self) -> datetime:
        return self.period.end


@attrs.frozen
class Measure:
    """One KPI measured over one period: value (int, Decimal, or minor units with ``currency``) and status."""

    key: str
    area: str
    title: str
    unit: str
    period: str
    source: str
    status: str
    value: int | Decimal | None = None
    currency: str | None = None
    reason: str | None = None
    detail: str | None = None
    coverage: Coverage = Coverage()  # whose customers it counts

    def display(self) -> str:
        """The value as a person reads it (``62.5%``, ``1.500.000 ₫``, ``5.2 h``), or the status and reason."""
        if self.status != OK or self.value is None:
            return self.status + (f": {self.reason}" if self.reason else "")
        return format_value(self.unit, self.value, self.currency)


Compute = Callable[[Context], tuple[Any, str | None]]


@attrs.frozen
class KPI:
    """A KPI definition: what it measures, how to read it, where the data comes from and its default target."""

    key: str
    area: str
    title: str
    unit: str  # count | share | money | hours | days | rating | ratio | points
    direction: str  # higher | lower: which way is better
    sources: tuple[Source, ...]  # required: a missing one makes the KPI "not available"
    definition: str
    compute: Compute = attrs.field(repr=False)
    target: str | None = None  # default target (see scorecard.parse_target)
    snapshot: bool = False  # reads the data as it is now: no history to compare with
    optional: tuple[Source, ...] = ()  # read when installed (the computation says what is missing)

    def measure(self, ctx: Context) -> Measure:
        """Measure this KPI over ``ctx.period`` (never raises for missing data or sources: the status says it)."""
        label = f"now ({ctx.crm.today():%Y-%m-%d})" if self.snapshot else ctx.period.label
        source = "; ".join([s.name for s in self.sources] + [f"{s.name} if installed" for s in self.optional])
        base = {
            "key": self.key,
            "area": self.area,
            "title": self.title,
            "unit": self.unit,
            "period": label,
            "source": source,
            "coverage": ctx.coverage,
        }
        for src in self.sources:
            if src.install and not available(ctx.crm, src, ctx.purchases):
                return Measure(**base, status=NOT_AVAILABLE, reason=f"install {src.install}")
        try:
            value, detail = self.compute(ctx)
        except NoData as exc:
            return Measure(**base, status=NO_DATA, reason=str(exc))
        except Unavailable as exc:
            return Measure(**base, status=NOT_AVAILABLE, reason=str(exc))
        except PermissionDenied as exc:  # another service the reader may not use (analytics, campaigns…)
            return Measure(**base, status=NOT_AVAILABLE, reason=f"needs permission {exc.permission}")
        currency = ctx.currency if self.unit == "money" else None
        return Measure(**base, status=OK, value=value, currency=currency, detail=detail)


def format_value(unit: str, value: int | Decimal, currency: str | None = None) -> str:
    """A KPI value in its unit, for tables and the report."""
    if unit == "money":
        return Money(currency or "VND", int(value)).format()
    if unit == "share":
        return f"{Decimal(value) * 100:.1f}%"
    if unit == "points":
        return f"{Decimal(value) * 100:+.1f} pp"
    if unit == "hours":
        return f"{Decimal(value):.1f} h"
    if unit == "days":
        return f"{Decimal(value):.0f} d"
    if unit == "rating":
        return f"{Decimal(value):.2f} / 5"
    if unit == "count":
        return f"{int(value):,}"
    return f"{Decimal(value):.2f}"


def _dec(value: Any, places: str = "0.0001") -> Decimal:
    """A database number (float on SQLite, Decimal on PostgreSQL) as a Decimal rounded to ``places``."""
    return Decimal(str(value)).quantize(Decimal(places), rounding=ROUND_HALF_EVEN)


def _ratio(part: int, whole: int) -> Decimal:
    return _dec(Decimal(int(part)) / Decimal(int(whole)))


def _per(total_minor: int, count: int) -> int:
    """Whole minor units of ``total / count``, rounded half-even (money is never a float)."""
    return int((Decimal(int(total_minor)) / Decimal(int(count))).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def _n(count: int, noun: str) -> str:
    """``1 rating`` / ``3 ratings``: a count with its noun."""
    return f"{int(count):,} {noun}{'' if int(count) == 1 else 's'}"


def _pct(part: int, whole: int) -> str:
    return f"{Decimal(100 * int(part)) / Decimal(int(whole)):.0f}%"


# -- the core: customers -----------------------------------------------------------------------------------


_ACTIVE = core.customers.c.status == "active"


def _active_customers(ctx: Context) -> int:
    total = int(
        ctx.conn.execute(
            sa.select(sa.func.count()).select_from(core.customers).where(_ACTIVE, ctx.owned())
        ).scalar_one()
    )
    if not total:
        raise NoData("no active customer")
    return total


def new_customers(ctx: Context) -> tuple[int, str | None]:
    c = core.customers.c
    ever = ctx.conn.execute(
        sa.select(sa.func.count()).select_from(core.customers).where(c.created_at < ctx.end, ctx.owned())
    )
    if not ever.scalar_one():
        raise NoData(f"no customer existed by the end of {ctx.period.label}")
    n = ctx.conn.execute(
        sa.select(sa.func.count())
        .select_from(core.customers)
        .where(c.created_at >= ctx.start, c.created_at < ctx.end, c.status != "merged", ctx.owned())
    ).scalar_one()
    return int(n), "customers created in the period (duplicates merged away not counted)"


def data_completeness(ctx: Context) -> tuple[Decimal, str | None]:
    c, cp, cs = core.customers.c, core.contact_points.c, core.consents.c
    checks = {
        "contact": sa.exists().where(cp.customer_id == c.id),
        "place": sa.or_(c.province.is_not(None), c.city.is_not(None)),
        "owner": c.owner.is_not(None),
        "consent": sa.exists().where(cs.customer_id == c.id),
    }
    row = ctx.conn.execute(
        sa.select(sa.func.count(), *(sa.func.sum(sa.case((check, 1), else_=0)) for check in checks.values())).where(
            _ACTIVE, ctx.owned()
        )
    ).one()
    total = int(row[0])
    if not total:
        raise NoData("no active customer")
    filled = [int(v or 0) for v in row[1:]]
    detail = ", ".join(f"{name} {_pct(n, total)}" for name, n in zip(checks, filled, strict=True))
    return _ratio(sum(filled), total * len(checks)), f"{total:,} customers: {detail}"


def data_freshness(ctx: Context) -> tuple[Decimal, str | None]:
    c, i = core.customers.c, core.interactions.c
    since = ctx.crm.now() - FRESHNESS
    touched = sa.or_(c.updated_at >= since, sa.exists().where(i.customer_id == c.id, i.occurred_at >= since))
    total, fresh = ctx.conn.execute(
        sa.select(sa.func.count(), sa.func.sum(sa.case((touched, 1), else_=0))).where(_ACTIVE, ctx.owned())
    ).one()
    if not total:
        raise NoData("no active customer")
    return _ratio(
        fresh or 0, total
    ), f"{int(fresh or 0):,} of {int(total):,} customers updated or contacted in the last year"


def duplicate_rate(ctx: Context) -> tuple[Decimal, str | None]:
    active = _active_customers(ctx)
    # the core's detection, run as the reader: pairs whose customers their customers.read scope reaches
    pairs = ctx.crm.customers.duplicate_pairs(limit=DUPLICATE_PAIRS_LIMIT)
    ids = {p.customer_id for p in pairs} | {p.other_id for p in pairs}
    c = core.customers.c
    involved = 0
    if ids:  # of those, the active customers the qci.read scope counts (the same population as ``active``)
        involved = int(
            ctx.conn.execute(
                sa.select(sa.func.count())
                .select_from(core.customers)
                .where(c.id.in_(sorted(ids)), _ACTIVE, ctx.owned())
            ).scalar_one()
        )
    return _ratio(involved, active), (
        f"{_n(len(pairs), 'possible duplicate pair')} involving {_n(involved, 'customer')}"
    )


def customers_with_owner(ctx: Context) -> tuple[Decimal, str | None]:
    total = _active_customers(ctx)
    owned = ctx.conn.execute(
        sa.select(sa.func.count())
        .select_from(core.customers)
        .where(_ACTIVE, core.customers.c.owner.is_not(None), ctx.owned())
    ).scalar_one()
    return _ratio(owned, total), f"{int(owned):,} of {total:,} customers have a named owner"


# -- the core: interactions ----------------------------------------------------------------------------------


def _in_period(column: Any, ctx: Context) -> sa.ColumnElement[bool]:
    return sa.and_(column >= ctx.start, column < ctx.end)


def activities_per_employee(ctx: Context) -> tuple[Decimal, str | None]:
    i = core.interactions.c
    n, employees = ctx.conn.execute(
        sa.select(sa.func.count(), sa.func.count(sa.distinct(i.employee))).where(
            _in_period(i.occurred_at, ctx), i.employee.is_not(None), ctx.mine(i.customer_id)
        )
    ).one()
    if not employees:
        raise NoData(f"no interaction in {ctx.period.label} names an employee")
    return _dec(
        Decimal(int(n)) / Decimal(int(employees)), "0.01"
    ), f"{int(n):,} interactions by {int(employees)} employees"


def satisfaction(ctx: Context) -> tuple[Decimal, str | None]:
    i = core.interactions.c
    avg, n = ctx.conn.execute(
        sa.select(sa.func.avg(i.rating), sa.func.count(i.rating)).where(
            _in_period(i.occurred_at, ctx), i.rating.is_not(None), ctx.mine(i.customer_id)
        )
    ).one()
    if not n:
        raise NoData(f"no rated interaction in {ctx.period.label}")
    return _dec(avg, "0.01"), _n(n, "rating")


def _case_stats(ctx: Context) -> list[dict[str, Any]]:
    """The ``crmkit_service_case_stats`` rows of cases opened in the last ``CASE_WINDOW`` (as of now), of active
    customers in the reader's scope (the hook itself is unscoped)."""

    def compute() -> list[dict[str, Any]]:
        answers = ctx.crm.hooks.call("crmkit_service_case_stats", since=ctx.crm.now() - CASE_WINDOW)
        rows = [row for answer in answers for row in (answer or [])]
        mine: set[int] = set(ctx.conn.execute(sa.select(core.customers.c.id).where(_ACTIVE, ctx.owned())).scalars())
        return [row for row in rows if row["customer_id"] in mine]

    return ctx.once("cases", compute)  # type: ignore[no-any-return]


def complaint_rate(ctx: Context) -> tuple[Decimal, str | None]:
    total = _active_customers(ctx)
    complaining = sum(1 for row in _case_stats(ctx) if row["complaints"])
    return _ratio(complaining, total), f"{complaining:,} of {total:,} customers complained in the last 90 days"


def case_satisfaction(ctx: Context) -> tuple[Decimal, str | None]:
    scores = [Decimal(str(row["csat_average"])) for row in _case_stats(ctx) if row["csat_average"] is not None]
    if not scores:
        raise NoData("no answered satisfaction survey of a case opened in the last 90 days")
    return _dec(sum(scores) / len(scores), "0.01"), _n(len(scores), "customer") + " answered a case survey"


def _first_replies(ctx: Context) -> sa.Subquery:
    """Inbound interactions of the period with the time of the first outbound contact with the customer
    at or after it, within ``REPLY_WINDOW`` (NULL when none)."""
    i, o = core.interactions.alias("asked"), core.interactions.alias("reply")
    reply = (
        sa.select(sa.func.min(o.c.occurred_at))
        .where(
            o.c.customer_id == i.c.customer_id,
            o.c.direction == "outbound",
            o.c.occurred_at >= i.c.occurred_at,
            seconds_between(i.c.occurred_at, o.c.occurred_at) <= REPLY_WINDOW.total_seconds(),
        )
        .scalar_subquery()
    )
    return (
        sa.select(i.c.occurred_at.label("asked_at"), reply.label("replied_at"))
        .where(i.c.direction == "inbound", _in_period(i.c.occurred_at, ctx), ctx.mine(i.c.customer_id))
        .subquery()
    )


def _replies(ctx: Context) -> tuple[int, int, Any, int]:
    return ctx.once("replies", lambda: _count_replies(ctx))  # type: ignore[no-any-return]


def _count_replies(ctx: Context) -> tuple[int, int, Any, int]:
    pairs = _first_replies(ctx)
    wait = seconds_between(pairs.c.asked_at, pairs.c.replied_at)
    inbound, answered, average, within = ctx.conn.execute(
        sa.select(
            sa.func.count(),
            sa.func.count(pairs.c.replied_at),
            sa.func.avg(wait),
            sa.func.sum(sa.case((wait <= 24 * 3600, 1), else_=0)),
        )
    ).one()
    if not inbound:
        raise NoData(f"no inbound interaction in {ctx.period.label}")
    return int(inbound), int(answered), average, int(within or 0)


def response_time(ctx: Context) -> tuple[Decimal, str | None]:
    inbound, answered, average, _ = _replies(ctx)
    if not answered:
        raise NoData(
            f"none of the {inbound:,} inbound interactions got an outbound reply within {REPLY_WINDOW.days} days"
        )
    return _dec(Decimal(str(average)) / 3600, "0.1"), f"{answered:,} of {inbound:,} inbound contacts answered"


def answered_within_24h(ctx: Context) -> tuple[Decimal, str | None]:
    inbound, _, _, within = _replies(ctx)
    return _ratio(within, inbound), f"{within:,} of {inbound:,} inbound contacts answered within 24 h"


def resolution_time(ctx: Context) -> tuple[Decimal, str | None]:
    i, o = core.interactions.alias("opened"), core.interactions.alias("closing")
    configured = ctx.crm.settings.get("qci.resolved_outcomes")
    outcomes = [str(x).lower() for x in (configured or RESOLVED_OUTCOMES)]
    resolved = (
        sa.select(sa.func.min(o.c.occurred_at))
        .where(
            o.c.customer_id == i.c.customer_id,
            o.c.occurred_at >= i.c.occurred_at,
            sa.func.lower(o.c.outcome).in_(outcomes),
            seconds_between(i.c.occurred_at, o.c.occurred_at) <= RESOLUTION_WINDOW.total_seconds(),
        )
        .scalar_subquery()
    )
    cases = (
        sa.select(i.c.occurred_at.label("opened_at"), resolved.label("resolved_at"))
        .where(i.c.direction == "inbound", _in_period(i.c.occurred_at, ctx), ctx.mine(i.c.customer_id))
        .subquery()
    )
    n, closed, average = ctx.conn.execute(
        sa.select(
            sa.func.count(),
            sa.func.count(cases.c.resolved_at),
            sa.func.avg(seconds_between(cases.c.opened_at, cases.c.resolved_at)),
        )
    ).one()
    if not n:
        raise NoData(f"no inbound interaction in {ctx.period.label}")
    if not closed:
        raise NoData(
            f"none of the {int(n):,} inbound contacts was resolved (outcome {', '.join(outcomes)}) "
            f"within {RESOLUTION_WINDOW.days} days"
        )
    return _dec(Decimal(str(average)) / 3600, "0.1"), f"{int(closed):,} of {int(n):,} cases resolved"


# -- purchases ---------------------------------------------------------------------------------------------------


def _bought(ctx: Context, period: Period | None = None) -> sa.ColumnElement[bool]:
    vt = ctx.purchases.c  # type: ignore[union-attr]
    period = period or ctx.period
    return sa.and_(vt.amount_minor > 0, vt.occurred_at >= period.start, vt.occurred_at < period.end)


def _no_purchases(ctx: Context) -> NoData:
    return NoData(f"no purchase in {ctx.period.label}")


def purchases_per_buyer(ctx: Context) -> tuple[Decimal, str | None]:
    vt = ctx.purchases.c  # type: ignore[union-attr]
    n, buyers = ctx.conn.execute(
        sa.select(sa.func.count(), sa.func.count(sa.distinct(vt.customer_id))).where(_bought(ctx))
    ).one()
    if not buyers:
        raise _no_purchases(ctx)
    return _dec(Decimal(int(n)) / Decimal(int(buyers)), "0.01"), f"{int(n):,} purchases by {int(buyers):,} buyers"


def multi_category_share(ctx: Context) -> tuple[Decimal, str | None]:
    vt = ctx.purchases.c  # type: ignore[union-attr]
    if ctx.conn.execute(sa.select(vt.customer_id).where(vt.category.is_not(None)).limit(1)).first() is None:
        raise Unavailable(
            "the purchase source gives no product category (crmkit_value_transactions has no "
            "`category` column with values)"
        )
    per_buyer = (
        sa.select(vt.customer_id, sa.func.count(sa.distinct(vt.category)).label("categories"))
        .where(_bought(ctx), vt.category.is_not(None))
        .group_by(vt.customer_id)
        .subquery()
    )
    buyers, several = ctx.conn.execute(
        sa.select(sa.func.count(), sa.func.sum(sa.case((per_buyer.c.categories > 1, 1), else_=0)))
    ).one()
    if not buyers:
        raise NoData(f"no purchase with a category in {ctx.period.label}")
    return _ratio(several or 0, buyers), f"{int(several or 0):,} of {int(buyers):,} buyers bought in 2+ categories"


def _buyers(ctx: Context, period: Period) -> sa.Select[Any]:
    vt = ctx.purchases.c  # type: ignore[union-attr]
    return sa.select(vt.customer_id).where(_bought(ctx, period)).distinct()


def _retention(ctx: Context) -> tuple[int, int]:
    return ctx.once("retention", lambda: _count_retention(ctx))  # type: ignore[no-any-return]


def _count_retention(ctx: Context) -> tuple[int, int]:
    previous = ctx.period.previous()
    earlier = _buyers(ctx, previous).subquery()
    now = _buyers(ctx, ctx.period).subquery()
    before, kept = ctx.conn.execute(
        sa.select(sa.func.count(), sa.func.count(now.c.customer_id)).select_from(
            earlier.outerjoin(now, now.c.customer_id == earlier.c.customer_id)
        )
    ).one()
    if not before:
        raise NoData(f"nobody bought in the previous period ({previous.label}): retention needs buyers to keep")
    return int(before), int(kept)


def retention_rate(ctx: Context) -> tuple[Decimal, str | None]:
    before, kept = _retention(ctx)
    return _ratio(kept, before), f"{kept:,} of {before:,} buyers of {ctx.period.previous().label} bought again"


def churn_rate(ctx: Context) -> tuple[Decimal, str | None]:
    before, kept = _retention(ctx)
    return _ratio(
        before - kept, before
    ), f"{before - kept:,} of {before:,} buyers of {ctx.period.previous().label} did not buy again"


def win_backs(ctx: Context) -> tuple[int, str | None]:
    vt = ctx.purchases.c  # type: ignore[union-attr]
    lapse_start = ctx.start - LAPSE
    per_customer = (
        sa.select(
            sa.func.max(sa.case((_bought(ctx), 1), else_=0)).label("now"),
            sa.func.max(sa.case((vt.occurred_at < lapse_start, 1), else_=0)).label("long_ago"),
            sa.func.max(
                sa.case((sa.and_(vt.occurred_at >= lapse_start, vt.occurred_at < ctx.start), 1), else_=0)
            ).label("lately"),
        )
        .where(vt.amount_minor > 0, vt.occurred_at < ctx.end)
        .group_by(vt.customer_id)
        .subquery()
    )
    buyers, won = ctx.conn.execute(
        sa.select(
            sa.func.sum(per_customer.c.now),
            sa.func.sum(
                sa.case(
                    (sa.and_(per_customer.c.now == 1, per_customer.c.long_ago == 1, per_customer.c.lately == 0), 1),
                    else_=0,
                )
            ),
        )
    ).one()
    if not buyers:
        raise _no_purchases(ctx)
    return int(won or 0), f"buyers who had not bought for {LAPSE.days}+ days before {ctx.period.label}"


def _revenue(ctx: Context) -> tuple[int, int]:
    vt = ctx.purchases.c  # type: ignore[union-attr]
    total, n = ctx.conn.execute(
        sa.select(sa.func.sum(vt.amount_minor), sa.func.count()).where(_bought(ctx), vt.currency == ctx.currency)
    ).one()
    if not n:
        raise NoData(f"no purchase in {ctx.currency} in {ctx.period.label}")
    return int(total), int(n)


def revenue_per_employee(ctx: Context) -> tuple[int, str | None]:
    revenue, _ = _revenue(ctx)
    i = core.interactions.c
    employees = ctx.conn.execute(
        sa.select(sa.func.count(sa.distinct(i.employee))).where(
            _in_period(i.occurred_at, ctx), i.employee.is_not(None), ctx.mine(i.customer_id)
        )
    ).scalar_one()
    if not employees:
        raise NoData(f"no interaction in {ctx.period.label} names an employee")
    return _per(revenue, employees), f"{Money(ctx.currency, revenue).format()} over {int(employees)} active employees"


def gross_margin_rate(ctx: Context) -> tuple[Decimal, str | None]:
    vt = ctx.purchases.c  # type: ignore[union-attr]
    if ctx.conn.execute(sa.select(vt.customer_id).where(vt.margin_minor.is_not(None)).limit(1)).first() is None:
        raise Unavailable("the purchase source gives no margin (record product costs, e.g. in crmkit-sales)")
    margin, amount = ctx.conn.execute(
        sa.select(sa.func.sum(vt.margin_minor), sa.func.sum(vt.amount_minor)).where(
            _bought(ctx), vt.currency == ctx.currency, vt.margin_minor.is_not(None)
        )
    ).one()
    if not amount:
        raise NoData(f"no purchase with a known margin in {ctx.period.label}")
    return _ratio(
        margin, amount
    ), f"margin {Money(ctx.currency, int(margin)).format()} on {Money(ctx.currency, int(amount)).format()}"


# -- costs (recorded in QCI, and campaigns' when installed) ------------------------------------------------------


def recorded_costs(ctx: Context, kind: str | None = None) -> int | None:
    """Σ costs recorded for the period's months in the KPI currency (of one kind), or None when none is recorded."""
    c = costs.c
    query = sa.select(sa.func.sum(c.amount_minor), sa.func.count()).where(
        c.month.in_(ctx.period.month_labels()), c.currency == ctx.currency
    )
    if kind is not None:
        query = query.where(c.kind == kind)
    total, n = ctx.conn.execute(query).one()
    return int(total) if n else None


def _costs(ctx: Context, kind: str | None) -> tuple[int, list[str]]:
    ctx.whole_business("recorded and campaign costs")
    parts: list[str] = []
    total = 0
    recorded = recorded_costs(ctx, kind)
    if recorded is not None:
        total += recorded
        parts.append(f"recorded {Money(ctx.currency, recorded).format()}")
    if ctx.crm.has_service("campaigns"):
        spent = campaign_data.costs(ctx.crm, ctx.period, ctx.currency, kind)
        if spent is not None:
            total += spent
            parts.append(f"campaigns {Money(ctx.currency, spent).format()}")
    if not parts:
        what = f"{kind} costs" if kind else "costs"
        record = f"crmkit qci costs add {ctx.period.month_labels()[0]} AMOUNT" + (f" --kind {kind}" if kind else "")
        if not ctx.crm.has_service("campaigns"):
            raise Unavailable(f"install crmkit-campaigns, or record {what} ({record})")
        raise NoData(
            f"no {what} in {ctx.currency} for {ctx.period.label}: no campaign cost and none recorded ({record})"
        )
    return total, parts


def cost_per_acquisition(ctx: Context) -> tuple[int, str | None]:
    total, parts = _costs(ctx, "acquisition")
    acquired, _ = new_customers(ctx)
    if not acquired:
        raise NoData(f"no new customer in {ctx.period.label}")
    return _per(total, acquired), f"{' + '.join(parts)} for {acquired:,} new customers"


def cost_per_order(ctx: Context) -> tuple[int, str | None]:
    total, parts = _costs(ctx, None)
    orders = ctx.conn.execute(sa.select(sa.func.count()).where(_bought(ctx))).scalar_one()
    if not orders:
        raise _no_purchases(ctx)
    return _per(total, orders), f"{' + '.join(parts)} for {int(orders):,} purchases"


# -- analytics and campaigns (their public services) ---------------------------------------------------------------


def share_of_wallet(ctx: Context) -> tuple[Decimal, str | None]:
    ctx.whole_business("share-of-wallet runs")
    for run in ctx.crm.analytics.history("sow", limit=100):
        if ctx.start <= run.as_of < ctx.end:
            share = run.summary.get("share")
            if share is None:
                raise NoData(f"the share-of-wallet run of {run.as_of:%Y-%m-%d} knows no customer's category spend")
            return (
                _dec(share),
                f"{_n(run.summary.get('customers', 0), 'customer')} with a known category spend, "
                f"as of {run.as_of:%Y-%m-%d} ({run.currency})",
            )
    last_day = (ctx.period.next_first_day - timedelta(days=1)).isoformat()
    raise NoData(
        f"no share-of-wallet computation dated in {ctx.period.label} (run: crmkit analytics sow --as-of {last_day})"
    )


def analysis_age(ctx: Context) -> tuple[int, str | None]:
    until = min(ctx.end, ctx.crm.now())
    for run in ctx.crm.analytics.history(limit=100):
        if run.computed_at < ctx.end:
            return (until - run.computed_at).days, f"last analysis: {run.measure} computed {run.computed_at:%Y-%m-%d}"
    raise NoData(f"no customer analysis (RFM, CLV, share of wallet…) computed before the end of {ctx.period.label}")


def _campaign_results(ctx: Context) -> campaign_data.Results:
    ctx.whole_business("campaign results")
    return ctx.once("campaigns", lambda: campaign_data.results(ctx.crm, ctx.period, ctx.currency))  # type: ignore[no-any-return]


def campaign_roi(ctx: Context) -> tuple[Decimal, str | None]:
    result = _campaign_results(ctx)
    if result.roi is None:
        raise NoData(result.roi_why)
    return result.roi, result.detail


def campaign_lift(ctx: Context) -> tuple[Decimal, str | None]:
    result = _campaign_results(ctx)
    if result.lift is None:
        raise NoData(result.lift_why)
    return result.lift, result.detail


# -- the catalogue -----------------------------------------------------------------------------------------------

CATALOGUE: tuple[KPI, ...] = (
    KPI(
        "analysis_age",
        "analysis_planning",
        "Days since the last customer analysis",
        "days",
        LOWER,
        (ANALYTICS,),
        "days from the latest analytics run (RFM, CLV, SOW…) to the period end",
        analysis_age,
        "31",
    ),
    KPI(
        "gross_margin_rate",
        "value_proposition",
        "Gross margin on purchases",
        "share",
        HIGHER,
        (PURCHASES,),
        "Σ margin / Σ amount of the period's purchases with a known margin",
        gross_margin_rate,
        "30%",
    ),
    KPI(
        "activities_per_employee",
        "people_organization",
        "Activities per employee",
        "ratio",
        HIGHER,
        (CORE,),
        "interactions in the period / employees named on them",
        activities_per_employee,
        "+0%",
    ),
    KPI(
        "customers_with_owner",
        "people_organization",
        "Customers with a named owner",
        "share",
        HIGHER,
        (CORE,),
        "active customers with a named owner (as of now)",
        customers_with_owner,
        "95%",
        snapshot=True,
    ),
    KPI(
        "data_completeness",
        "information_technology",
        "Data completeness of key fields",
        "share",
        HIGHER,
        (CORE,),
        "share of filled key fields (contact, province/city, owner, consent) over active customers (as of now)",
        data_completeness,
        "90%",
        snapshot=True,
    ),
    KPI(
        "data_freshness",
        "information_technology",
        "Fresh customer records",
        "share",
        HIGHER,
        (CORE,),
        "active customers updated or contacted in the last 365 days (as of now)",
        data_freshness,
        "80%",
        snapshot=True,
    ),
    KPI(
        "duplicate_rate",
        "information_technology",
        "Customers with a possible duplicate",
        "share",
        LOWER,
        (DUPLICATES,),
        "active customers in a duplicate pair of the core's detection (as of now)",
        duplicate_rate,
        "2%",
        snapshot=True,
    ),
    KPI(
        "answered_within_24h",
        "process_management",
        "Inbound contacts answered within 24 h",
        "share",
        HIGHER,
        (CORE,),
        "inbound interactions with an outbound contact to the customer within 24 h",
        answered_within_24h,
        "80%",
    ),
    KPI(
        "new_customers",
        "acquisition",
        "New customers",
        "count",
        HIGHER,
        (CORE,),
        "customers created in the period",
        new_customers,
        "+0%",
    ),
    KPI(
        "cost_per_acquisition",
        "acquisition",
        "Cost per acquired customer",
        "money",
        LOWER,
        (COSTS,),
        "acquisition costs (recorded + acquisition campaigns') / new customers",
        cost_per_acquisition,
        optional=(CAMPAIGNS,),
    ),
    KPI(
        "multi_category_share",
        "penetration",
        "Buyers of more than one category",
        "share",
        HIGHER,
        (PURCHASES,),
        "buyers of the period who bought in 2+ product categories",
        multi_category_share,
        "30%",
    ),
    KPI(
        "share_of_wallet",
        "penetration",
        "Share of wallet",
        "share",
        HIGHER,
        (ANALYTICS,),
        "Σ our spend / Σ category spend, from the analytics share-of-wallet run dated in the period",
        share_of_wallet,
        "40%",
    ),
    KPI(
        "purchases_per_buyer",
        "penetration",
        "Purchases per buyer",
        "ratio",
        HIGHER,
        (PURCHASES,),
        "purchases in the period / distinct buyers",
        purchases_per_buyer,
        "1.5",
    ),
    KPI(
        "retention_rate",
        "retention",
        "Retention rate",
        "share",
        HIGHER,
        (PURCHASES,),
        "buyers of the previous period who bought again in this one",
        retention_rate,
        "60%",
    ),
    KPI(
        "churn_rate",
        "retention",
        "Churn rate",
        "share",
        LOWER,
        (PURCHASES,),
        "buyers of the previous period who did not buy in this one",
        churn_rate,
        "40%",
    ),
    KPI(
        "win_backs",
        "retention",
        "Customers won back",
        "count",
        HIGHER,
        (PURCHASES,),
        "buyers of the period with no purchase in the 180 days before it but one earlier",
        win_backs,
        "+0%",
    ),
    KPI(
        "cost_per_order",
        "efficiency",
        "Cost per order",
        "money",
        LOWER,
        (PURCHASES, COSTS),
        "customer-management costs (recorded + campaigns') / purchases in the period",
        cost_per_order,
        optional=(CAMPAIGNS,),
    ),
    KPI(
        "revenue_per_employee",
        "efficiency",
        "Revenue per employee",
        "money",
        HIGHER,
        (PURCHASES, CORE),
        "revenue of the period / employees named on its interactions",
        revenue_per_employee,
        "+0%",
    ),
    KPI(
        "campaign_roi",
        "measuring_effect",
        "Campaign ROI",
        "share",
        HIGHER,
        (CAMPAIGNS,),
        "(attributed revenue − cost) / cost of the campaigns run in the period",
        campaign_roi,
        "100%",
    ),
    KPI(
        "campaign_lift",
        "measuring_effect",
        "Campaign lift over holdout",
        "points",
        HIGHER,
        (CAMPAIGNS,),
        "conversion rate of recipients − of the holdout group, campaigns of the period",
        campaign_lift,
        "1%",
    ),
    KPI(
        "satisfaction",
        "customer_experience",
        "Average satisfaction",
        "rating",
        HIGHER,
        (CORE,),
        "mean rating (1–5) of the period's rated interactions",
        satisfaction,
        "4",
    ),
    KPI(
        "response_time",
        "customer_experience",
        "Response time",
        "hours",
        LOWER,
        (CORE,),
        "mean hours from an inbound interaction to the next outbound one with the customer (within 7 days)",
        response_time,
        "24",
    ),
    KPI(
        "resolution_time",
        "customer_experience",
        "Resolution time",
        "hours",
        LOWER,
        (CORE,),
        "mean hours from an inbound interaction to one with a resolved outcome (within 30 days)",
        resolution_time,
        "72",
    ),
    KPI(
        "complaint_rate",
        "customer_experience",
        "Customers who complained",
        "share",
        LOWER,
        (CASES,),
        "active customers with a complaint case opened in the last 90 days (as of now)",
        complaint_rate,
        "5%",
        snapshot=True,
    ),
    KPI(
        "case_satisfaction",
        "customer_experience",
        "Case satisfaction (CSAT)",
        "rating",
        HIGHER,
        (CASES,),
        "mean of the active customers' average CSAT score of cases opened in the last 90 days (as of now)",
        case_satisfaction,
        "4",
        snapshot=True,
    ),
)

BY_KEY: dict[str, KPI] = {k.key: k for k in CATALOGUE}


def kpi(key: str) -> KPI:
    """The KPI named ``key``; a ``ValidationError`` listing the known ones otherwise."""
    from crmkit import ValidationError

    if key not in BY_KEY:
        raise ValidationError(f"unknown KPI {key!r} (one of {', '.join(BY_KEY)})", field="kpi")
    return BY_KEY[key]


def measure_all(
    crm: CRM, period: Period, currency: str, keys: Sequence[str] | None = None, *, snapshots: bool = True
) -> list[Measure]:
    """Measure every KPI (or those named) over ``period`` in one read connection; ``snapshots=False`` leaves
    out the KPIs that read the data as it is now (a previous period has no use for them)."""
    from crmkit_qci.sources import purchases

    covered = coverage(crm)
    chosen = [k for k in (CATALOGUE if keys is None else [kpi(k) for k in keys]) if snapshots or not k.snapshot]
    subquery = purchases(crm)
    if subquery is not None and covered.scoped:  # every purchase KPI reads only the purchases of customers in scope
        subquery = sa.select(subquery).where(crm.access.customers(subquery.c.customer_id, READ)).subquery()
    with crm.reading() as conn:
        ctx = Context(crm, conn, period, subquery, currency, covered)
        return [k.measure(ctx) for k in chosen]
