"""crmkit's plugin contract for analytics: strict loading, export/erase coverage, migrations, permissions, scopes.

Count-only reports (KPIs, breakdowns, cohorts, activity) name no customer, so their scoped calls
expose ids through time: ``populate`` gives customer ``cid`` its first purchase (and an inbound
contact) at its own minute, :func:`marker`, and nobody else buys or calls near it. A report as of
just after that minute then counts one more than just before exactly when it counts ``cid`` —
the kit checks that this happens for the customers in the user's scope and for no other.
Run summaries are checked against the scoped list of the same run (they must count the same
customers). The HTML report is assembled from these same calls; writing it (charts and all) for every user
and customer of every drawn world would take minutes, so ``test_permissions.py`` checks it instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from crmkit.testing import PluginContract
from crmkit_analytics.models import SNAPSHOTS
from crmkit_analytics.testing import AS_OF, SOURCE, Shop

#: Customer ``cid``'s first purchase is at ``BASE + cid minutes`` (all in one calendar month).
BASE = AS_OF - timedelta(days=80)
EVERY = 100_000
BREAKDOWNS = ("age_band", "category")


def marker(customer_id: int) -> datetime:
    """When customer ``customer_id`` first bought (and first called us)."""
    return BASE + timedelta(minutes=customer_id)


def counted(figures: Callable[[Any, datetime], Sequence[int]]) -> Callable[[Any, int], list[int]]:
    """A scoped call for a count-only report: ``[cid]`` when every figure grows by one across ``cid``'s minute,
    ``[]`` when none moves (anything else is a report that counts the customer in one place and not another)."""

    def call(crm: Any, customer_id: int) -> list[int]:
        at = marker(customer_id)
        before, after = figures(crm, at - timedelta(seconds=30)), figures(crm, at + timedelta(seconds=30))
        moves = [b - a for a, b in zip(before, after, strict=True)]
        assert set(moves) in ({0}, {1}), f"customer {customer_id} moves the figures by {moves}"
        return [customer_id] if moves[0] else []

    return call


def listed(measure: str) -> Callable[[Any, int], list[dict[str, Any]]]:
    """The latest run's rows of ``measure`` in scope, after checking that its summary counts exactly them."""

    def call(crm: Any, customer_id: int) -> list[dict[str, Any]]:
        rows = crm.analytics.customers(measure, limit=EVERY)
        run = crm.analytics.latest(measure)
        assert run.summary["customers"] == len(rows), (
            f"{measure}: the summary counts {run.summary['customers']} customers, the list shows {len(rows)}"
        )
        assert (run.scope is None) == (crm.analytics.scope() is None)
        return rows

    return call


def kpi_figures(crm: Any, at: datetime) -> list[int]:
    result = crm.analytics.kpis(as_of=at, months=1)
    assert (result["overview"]["scope"] is None) == (crm.analytics.scope() is None)
    return [result["overview"]["buyers"], sum(m["active"] for m in result["months"])]


def profile_section(crm: Any, customer_id: int) -> list[int]:
    section = crm.customers.profile(customer_id).sections.get("analytics")
    return [customer_id] if section and section["purchases"] else []


def customer_summary(crm: Any, customer_id: int) -> list[int]:
    with crm.reading() as conn:
        section = crm.analytics.customer_summary(conn, customer_id)
    return [customer_id] if section["purchases"] or set(section) & set(SNAPSHOTS) else []


class TestAnalyticsContract(PluginContract):
    plugin = "analytics"
    with_plugins = (SOURCE,)  # type: ignore[assignment]
    rebuilt_tables = tuple(table.name for table in SNAPSHOTS.values())  # scores of a run: the next run redoes them

    def populate(self, crm: Any, customer_id: int) -> None:
        shop = Shop(crm)
        first = marker(customer_id)
        shop.buy(customer_id, first, 300_000, category="áo", channel="web")
        gap = 9 + customer_id % 11  # varied histories: the CLV fit converges quickly
        for n in range(1, 1 + customer_id % 4):
            shop.buy(customer_id, first + timedelta(days=n * gap), 100_000 * n, category="giày", channel="store")
        crm.interactions.log(
            customer_id, "phone", direction="inbound", occurred_at=first, employee="kit", summary="Hỏi giá"
        )
        crm.customers.update(customer_id, attributes={"category_spend": 9_000_000})
        other = crm.customers.add(name="Khách khác").id  # CLV needs two buyers: this one buys long before BASE
        for days in (150, 130):
            shop.buy(other, BASE - timedelta(days=days), 100_000)
        for measure in ("rfm", "pcv", "sow", "clv"):
            getattr(crm.analytics, measure)(as_of=AS_OF)
        crm.analytics.customer_types(as_of=AS_OF)

    def permission_calls(self) -> dict[str, Callable[[Any, int], Any]]:
        return {
            "analytics.read": lambda crm, cid: crm.analytics.customers("rfm"),
            "analytics.run": lambda crm, cid: crm.analytics.rfm(as_of=AS_OF),
            "analytics.export": lambda crm, cid: crm.analytics.export("rfm"),
        }

    def scoped_calls(self) -> dict[str, Callable[[Any, int], Any]]:
        lists = {f"{measure} list and summary": listed(measure) for measure in SNAPSHOTS}
        exports = {f"{measure} export": (lambda crm, cid, m=measure: crm.analytics.export(m)) for measure in SNAPSHOTS}
        ones = {
            f"{measure} of one customer": (lambda crm, cid, m=measure: crm.analytics.customer(m, cid))
            for measure in SNAPSHOTS
        }
        return {
            **lists,
            **exports,
            **ones,
            "growth opportunities": lambda crm, cid: crm.analytics.growth_opportunities(
                low_share="1", min_category_spend=0, limit=EVERY
            )[1],
            "kpis": counted(kpi_figures),
            # a dimension of the customer record and one of the purchases: the two ways breakdowns are grouped
            "breakdowns": counted(
                lambda crm, at: [
                    sum(r["buyers"] for r in crm.analytics.breakdown(by, as_of=at, months=1)) for by in BREAKDOWNS
                ]
            ),
            "cohorts": counted(
                lambda crm, at: [sum(c["customers"] for c in crm.analytics.cohorts(as_of=at, months=1))]
            ),
            "activity": counted(
                lambda crm, at: [sum(r["customers"] for r in crm.analytics.activity(as_of=at, months=1))]
            ),
            "profile section": profile_section,
            "customer summary": customer_summary,
        }
