"""``crm.analytics``: the plugin's Python API. Commands, hooks and the report are thin callers of this.

Every measure is computed in one write transaction (its snapshot replaces the previous one for
the same currency, and ``analytics_runs`` records when, for which date and with which parameters),
and returns the :class:`~crmkit_analytics.runs.Run`. Measures run on one currency: the one given,
else the ``analytics.currency`` setting, else the only currency customers bought in — with several
and none chosen, they refuse with a message saying so (amounts in different currencies are never added).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crmkit import ValidationError
from crmkit.core import tables as core
from crmkit.money import Money
from crmkit_analytics import aggregates, customer_types, kpis, params, rfm, runs
from crmkit_analytics.models import SNAPSHOTS, customer_value
from crmkit_analytics.models import runs as runs_table

if TYPE_CHECKING:
    from crmkit import CRM

When = datetime | date | str | None


class AnalyticsService:
    """Analytics of one CRM (``crm.analytics``)."""

    def __init__(self, crm: CRM) -> None:
        self._crm = crm

    # -- settings ---------------------------------------------------------------------------------

    def settings(self) -> dict[str, Any]:
        """Every analytics setting with its current value."""
        return {name: params.setting(self._crm, name) for name in params.DEFAULTS}

    def configure(self, **values: Any) -> dict[str, Any]:
        """Validate and store settings (``discount_rate="0.12"``, ``currency="VND"``…); returns them all."""
        checks = {
            "currency": lambda v: None if v is None else params.currency_code(v),
            "discount_rate": lambda v: str(params.discount_rate(self._crm, v)),
            "gross_margin_rate": lambda v: str(params.margin_rate(self._crm, v)),
            "sow_low_share": lambda v: str(params.share(self._crm, v)),
            "category_spend_estimates": params.estimates,
            "loyal_purchases": lambda v: params.count(self._crm, "loyal_purchases", v),
        }
        checked = {}
        for name, value in values.items():
            if name not in params.DEFAULTS:
                raise ValidationError(f"unknown setting (one of {', '.join(params.DEFAULTS)})", field=name)
            check = checks.get(name) or (lambda v, n=name: params.whole_days(v, n))
            checked[name] = check(value)
        for name, value in checked.items():
            self._crm.set_setting(params.PREFIX + name, value)
        return self.settings()

    # -- purchase history ---------------------------------------------------------------------------

    def transactions(self) -> sa.Subquery:
        """Every purchase source as one subquery (``crmkit.purchases.purchases``)."""
        return aggregates.transactions(self._crm)

    def rebuild(self) -> int:
        """Recompute every customer's value aggregates from the transactions; returns the number of rows."""
        with self._crm.transaction() as session:
            return aggregates.rebuild(self._crm, session.connection())

    def refresh(self, customer_ids: Iterable[int]) -> None:
        """Recompute these customers' aggregates (a source that changed their purchases calls this; it joins
        the caller's running transaction)."""
        with self._crm.transaction() as session:
            aggregates.refresh(self._crm, session.connection(), customer_ids)

    def currency(self, value: str | None = None) -> str | None:
        """The currency measures use (see the module docstring); None when nobody has purchased yet."""
        self._ensure_aggregates()
        if value is not None:
            return params.currency_code(value)
        stored = params.setting(self._crm, "currency")
        if stored:
            return str(stored)
        with self._crm.reading() as conn:
            found = aggregates.currencies(conn)
        if len(found) > 1:
            raise ValidationError(
                f"purchases are in several currencies ({', '.join(found)}): choose one with --currency "
                "or `crmkit analytics settings --currency CODE`; amounts in different currencies are never added",
                field="currency")
        return found[0] if found else None

    def _ensure_aggregates(self) -> None:
        """Build the aggregates on first use when transactions exist but none were ever aggregated."""
        with self._crm.reading() as conn:
            if conn.execute(sa.select(customer_value.c.customer_id).limit(1)).first() is not None:
                return
            vt = aggregates.transactions(self._crm)
            if conn.execute(sa.select(vt.c.customer_id).where(vt.c.amount_minor > 0).limit(1)).first() is None:
                return
        self.rebuild()

    # -- measures -----------------------------------------------------------------------------------

    def rfm(self, *, as_of: When = None, currency: str | None = None, window_days: int | None = None) -> runs.Run:
        """Score every buyer's recency, frequency and monetary value, segment them, and store the snapshot."""
        when = params.as_of(as_of)
        window = None if window_days is None else params.whole_days(window_days, "window_days")
        code = self.currency(currency)
        with self._crm.transaction() as session:
            return rfm.compute(self._crm, session.connection(), currency=code, as_of=when, window_days=window)

    def customer_types(self, *, as_of: When = None, new_days: int | None = None, loyal_purchases: int | None = None,
                       at_risk_days: int | None = None, lost_days: int | None = None) -> runs.Run:
        """Classify every active customer (loyal, potential, new, prospect, at risk, lost) and store the snapshot."""
        crm = self._crm
        when = params.as_of(as_of)
        self._ensure_aggregates()
        with crm.transaction() as session:
            return customer_types.compute(
                crm, session.connection(), as_of=when, new_days=params.days(crm, "new_days", new_days),
                loyal_purchases=params.count(crm, "loyal_purchases", loyal_purchases),
                at_risk_days=params.days(crm, "at_risk_days", at_risk_days),
                lost_days=params.days(crm, "lost_days", lost_days))

    def pcv(self, *, as_of: When = None, currency: str | None = None, discount_rate: Any = None,
            margin_rate: Any = None) -> runs.Run:
        """Past customer value of every buyer, compounded to the as-of date, and the total; stores the snapshot."""
        from crmkit_analytics import pcv

        when = params.as_of(as_of)
        rate, margin = params.discount_rate(self._crm, discount_rate), params.margin_rate(self._crm, margin_rate)
        code = self.currency(currency)
        with self._crm.transaction() as session:
            return pcv.compute(self._crm, session.connection(), currency=code, as_of=when, discount_rate=rate,
                               margin_rate=margin)

    def sow(self, *, as_of: When = None, currency: str | None = None, window_days: int | None = None) -> runs.Run:
        """Share of wallet of every customer with a known category spend, per segment and overall."""
        from crmkit_analytics import sow

        when = params.as_of(as_of)
        window = params.days(self._crm, "sow_window_days", window_days)
        estimates = params.estimates(params.setting(self._crm, "category_spend_estimates") or {})
        code = self.currency(currency)
        with self._crm.transaction() as session:
            return sow.compute(self._crm, session.connection(), currency=code, as_of=when, window_days=window,
                               estimates=estimates)

    def growth_opportunities(self, *, low_share: Any = None, min_category_spend: int | None = None,
                             limit: int = 20) -> tuple[int, list[dict[str, Any]]]:
        """From the latest SOW run: (category-spend threshold, customers with a low share of a big wallet)."""
        from crmkit_analytics import sow

        share = float(params.share(self._crm, low_share))
        with self._crm.reading() as conn:
            run = self._require(conn, "sow")
            return sow.opportunities(conn, run.id, low_share=share, min_category_spend=min_category_spend,
                                     limit=_limit(limit))

    def clv(self, *, as_of: When = None, currency: str | None = None, horizon_days: int | None = None,
            discount_rate: Any = None, margin_rate: Any = None) -> runs.Run:
        """Fit BG/NBD + Gamma-Gamma on the buyers' history and store P(alive), expected purchases and CLV."""
        from crmkit_analytics import clv

        when = params.as_of(as_of)
        rate, margin = params.discount_rate(self._crm, discount_rate), params.margin_rate(self._crm, margin_rate)
        horizon = params.days(self._crm, "clv_horizon_days", horizon_days)
        code = self.currency(currency)
        if code is None:
            raise ValidationError("no purchases yet: lifetime value needs purchase history", field="history")
        with self._crm.transaction() as session:
            return clv.compute(self._crm, session.connection(), currency=code, as_of=when, horizon_days=horizon,
                               discount_rate=rate, margin_rate=margin)

    # -- reading results ----------------------------------------------------------------------------

    def latest(self, measure: str) -> runs.Run | None:
        """The most recent run of a measure (``rfm``, ``types``, ``pcv``, ``sow``, ``clv``), or None."""
        if measure not in SNAPSHOTS:
            raise ValidationError(f"unknown measure (one of {', '.join(SNAPSHOTS)})", field="measure")
        with self._crm.reading() as conn:
            return runs.latest(conn, measure)

    def history(self, measure: str | None = None, *, limit: int = 20) -> list[runs.Run]:
        """Past runs, newest first (optionally of one measure)."""
        query = sa.select(runs_table).order_by(runs_table.c.id.desc()).limit(_limit(limit))
        if measure is not None:
            query = query.where(runs_table.c.measure == measure)
        with self._crm.reading() as conn:
            return [runs.Run(**row) for row in conn.execute(query).mappings()]

    def customers(self, measure: str, *, segment: str | None = None, order: str | None = None,
                  limit: int = 50) -> list[dict[str, Any]]:
        """Rows of the latest snapshot of ``measure`` with the customer's name; ``segment`` filters RFM segments
        or customer types; ``order`` is a column to sort by, highest first (default: the customer id)."""
        if measure not in SNAPSHOTS:
            raise ValidationError(f"unknown measure (one of {', '.join(SNAPSHOTS)})", field="measure")
        table = SNAPSHOTS[measure]
        columns = [col for col in table.c if col.key not in ("customer_id", "run_id")]
        query = (sa.select(table.c.customer_id, core.customers.c.name, *columns)
                 .join(core.customers, core.customers.c.id == table.c.customer_id)
                 .where(table.c.run_id == runs.latest_id(measure)).limit(_limit(limit)))
        if segment is not None:
            column = {"rfm": "segment", "types": "customer_type"}.get(measure)
            if column is None:
                raise ValidationError(f"{measure} has no segments", field="segment")
            query = query.where(table.c[column] == segment)
        if order is not None:
            if order not in table.c or order in ("customer_id", "run_id"):
                raise ValidationError(f"cannot sort {measure} by {order!r} (one of {', '.join(c.key for c in columns)})",
                                      field="order")
            query = query.order_by(table.c[order].desc(), table.c.customer_id)
        else:
            query = query.order_by(table.c.customer_id)
        with self._crm.reading() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def customer_summary(self, conn: sa.Connection, customer_id: int) -> dict[str, Any]:
        """What the profile shows: purchase history per currency and the latest value of every measure, dated."""
        cv = customer_value.c
        history = [
            {"currency": row.currency, "purchases": row.purchase_count,
             "total": Money(row.currency, int(row.total_minor)).format(),
             "first_purchase_at": row.first_purchase_at, "last_purchase_at": row.last_purchase_at}
            for row in conn.execute(sa.select(customer_value).where(cv.customer_id == customer_id)
                                    .order_by(cv.currency))
        ]
        result: dict[str, Any] = {"purchases": history}
        for measure, table in SNAPSHOTS.items():
            row = conn.execute(
                sa.select(table, runs_table.c.computed_at, runs_table.c.as_of, runs_table.c.currency)
                .join(runs_table, runs_table.c.id == table.c.run_id)
                .where(table.c.customer_id == customer_id, table.c.run_id == runs.latest_id(measure))
            ).mappings().first()
            if row is not None:
                result[measure] = _profile_values(measure, row)
        return result

    # -- KPIs, breakdowns, cohorts, report -------------------------------------------------------------

    def kpis(self, *, as_of: When = None, currency: str | None = None, months: int = 12,
             freshness_days: int = 90) -> dict[str, Any]:
        """Headline KPIs as of the date and one row per month (acquisition, retention, churn, AOV, …)."""
        when, code, months = params.as_of(as_of), self.currency(currency), _months(months)
        fresh = params.whole_days(freshness_days, "freshness_days")
        with self._crm.reading() as conn:
            return {"overview": kpis.overview(self._crm, conn, currency=code, as_of=when, freshness_days=fresh),
                    "months": kpis.monthly(self._crm, conn, currency=code, as_of=when, months=months)}

    def breakdown(self, by: str, *, as_of: When = None, currency: str | None = None,
                  months: int = 12) -> list[dict[str, Any]]:
        """Customers, buyers, orders and revenue over the last ``months`` months grouped by ``by``
        (age_band, gender, province, city, category, channel, period)."""
        when, code, months = params.as_of(as_of), self.currency(currency), _months(months)
        with self._crm.reading() as conn:
            return kpis.breakdown(self._crm, conn, by=by, currency=code, start=kpis.first_month(when, months), end=when)

    def cohorts(self, *, as_of: When = None, currency: str | None = None, months: int = 12) -> list[dict[str, Any]]:
        """Retention by first-purchase month over the last ``months`` months."""
        when, code, months = params.as_of(as_of), self.currency(currency), _months(months)
        with self._crm.reading() as conn:
            return kpis.cohorts(self._crm, conn, currency=code, as_of=when, months=months)

    def activity(self, *, as_of: When = None, months: int = 12) -> list[dict[str, Any]]:
        """Interactions per employee per month."""
        when, months = params.as_of(as_of), _months(months)
        with self._crm.reading() as conn:
            return kpis.activity(conn, as_of=when, months=months)

    def report(self, path: str | Path, *, as_of: When = None, currency: str | None = None, recompute: bool = True,
               charts_dir: str | Path | None = None) -> Path:
        """Write the self-contained HTML report (computing every measure first unless ``recompute=False``);
        with ``charts_dir``, every chart is also saved there as PNG and SVG."""
        from crmkit_analytics import report

        return report.write(self._crm, Path(path), as_of=params.as_of(as_of), currency=self.currency(currency),
                            recompute=recompute, charts_dir=None if charts_dir is None else Path(charts_dir))

    def _require(self, conn: sa.Connection, measure: str) -> runs.Run:
        run = runs.latest(conn, measure)
        if run is None:
            raise ValidationError(f"no {measure} computed yet: run `crmkit analytics {measure}` first", field="measure")
        return run


def _profile_values(measure: str, row: Any) -> dict[str, Any]:
    dated = {"computed_at": row["computed_at"], "as_of": row["as_of"]}
    currency = row["currency"]
    if measure == "rfm":
        return {"score": row["score"], "segment": row["segment"], "recency_days": row["recency_days"],
                "frequency": row["frequency"], "monetary": Money(currency, int(row["monetary_minor"])).format(), **dated}
    if measure == "types":
        return {"customer_type": row["customer_type"], **dated}
    if measure == "pcv":
        return {"pcv": Money(currency, int(row["pcv_minor"])).format(), **dated}
    if measure == "sow":
        return {"share": round(row["share"], 4), "spend": Money(currency, int(row["spend_minor"])).format(),
                "category_spend": Money(currency, int(row["category_spend_minor"])).format(),
                "source": row["source"], **dated}
    return {"clv": Money(currency, int(row["clv_minor"])).format(), "p_alive": round(row["p_alive"], 4),
            "expected_purchases": round(row["expected_purchases"], 3), **dated}


def _limit(limit: int) -> int:
    if not 1 <= int(limit) <= 100000:
        raise ValidationError("must be between 1 and 100000", field="limit")
    return int(limit)


def _months(months: int) -> int:
    if not 1 <= int(months) <= 120:
        raise ValidationError("must be between 1 and 120", field="months")
    return int(months)
