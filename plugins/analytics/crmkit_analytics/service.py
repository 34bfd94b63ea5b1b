"""``crm.analytics``: the plugin's Python API. Commands, hooks and the report are thin callers of this.

Every measure is computed in one write transaction (its snapshot replaces the previous one for
the same currency, and ``analytics_runs`` records when, for which date and with which parameters),
and returns the :class:`~crmkit_analytics.runs.Run`. Measures run on one currency: the one given,
else the ``analytics.currency`` setting, else the only currency customers bought in — with several
and none chosen, they refuse with a message saying so (amounts in different currencies are never added).

Permissions (declared in :data:`PERMISSIONS`): computing a measure is a whole-base job
(``analytics.run``); everything read back — runs' summaries, per-customer rows, KPIs, breakdowns,
cohorts, activity, the profile section, the report — is limited in SQL to the customers the acting
user's ``analytics.read`` reaches, and says so (``Run.scope``, ``overview["scope"]``, :meth:`scope`).
The system (the plain ``crm``) reads everything, with no extra work.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa

from crmkit import NotFound, Permission, ValidationError
from crmkit.money import Money
from crmkit.plugin_api import core_tables as core
from crmkit_analytics import aggregates, customer_types, kpis, params, rfm, runs
from crmkit_analytics.models import SNAPSHOTS, customer_value
from crmkit_analytics.models import runs as runs_table

if TYPE_CHECKING:
    from crmkit import CRM

When = datetime | date | str | None

READ, RUN, EXPORT = "analytics.read", "analytics.run", "analytics.export"
#: What analytics lets roles do (administrator gets all of them, on every customer).
PERMISSIONS = [
    Permission(
        READ,
        "see RFM scores, customer types, past and lifetime value, share of wallet, KPIs, cohorts and "
        "activity of the customers in scope (reports count only them)",
        roles={"manager": "team", "marketing": "all", "sales": "own", "read-only": "all"},
    ),
    Permission(
        RUN,
        "compute the measures over the whole customer base (RFM, types, PCV, SOW, CLV), rebuild the "
        "purchase aggregates and change the analytics settings",
        scoped=False,
        roles={"marketing": "all"},
    ),
    Permission(
        EXPORT,
        "export analytics of the customers in scope: a measure's full list and the HTML report",
        roles={"manager": "team", "marketing": "all"},
    ),
]


@attrs.frozen
class Computed:
    """What :meth:`AnalyticsService.run` did: the new run of each measure it computed, and for each it could
    not, why (the message of its ``ValidationError``)."""

    computed: dict[str, runs.Run]
    problems: dict[str, str]


class AnalyticsService:
    """Analytics of one CRM (``crm.analytics``)."""

    def __init__(self, crm: CRM) -> None:
        self._crm = crm

    # -- whose customers the figures cover ----------------------------------------------------------

    def scope(self) -> str | None:
        """Whose customers the acting user's figures cover: None for every customer (the system, or
        ``analytics.read`` with scope all), else e.g. ``"lan's team"`` or ``"lan's own customers"``."""
        principal = self._crm.access.principal
        scope = principal.scope(READ)
        if scope == "all":
            return None
        if scope == "team":
            return f"{principal.username}'s team"
        if scope == "own":
            return f"{principal.username}'s own customers"
        return f"no customers ({principal.username} lacks {READ})"

    def _in_scope(self, customer_id: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
        """Rows about the customers ``analytics.read`` reaches (requires it; always true for the system)."""
        return self._crm.access.customers(customer_id, READ)

    def _may_run(self) -> None:
        """A measure is a whole-base job (``analytics.run``); what it returns is read with ``analytics.read``."""
        self._crm.access.require(RUN)
        self._crm.access.require(READ)

    def _scoped(self, conn: sa.Connection, run: runs.Run) -> runs.Run:
        """The run as the acting user reads it: its summary recounted over the customers in their scope
        (the system and readers of every customer get the stored run, with no query)."""
        where = self._in_scope(SNAPSHOTS[run.measure].c.customer_id)
        label = self.scope()
        if label is None:
            return run
        return attrs.evolve(run, summary=_summary(conn, run, where), scope=label)

    # -- settings ---------------------------------------------------------------------------------

    def settings(self) -> dict[str, Any]:
        """Every analytics setting with its current value (``analytics.read``)."""
        self._crm.access.require(READ)
        return {name: params.setting(self._crm, name) for name in params.DEFAULTS}

    def configure(self, **values: Any) -> dict[str, Any]:
        """Validate and store settings (``discount_rate="0.12"``, ``currency="VND"``…); returns them all.

        Needs ``analytics.run``: the settings change what the whole-base measures compute.
        """
        self._crm.access.require(RUN)
        checks = {
            "currency": lambda v: None if v is None else params.currency_code(v),
            "discount_rate": lambda v: str(params.discount_rate(self._crm, v)),
            "gross_margin_rate": lambda v: str(params.margin_rate(self._crm, v)),
            "sow_low_share": lambda v: str(params.share(self._crm, v)),
            "category_spend_estimates": params.estimates,
            "loyal_purchases": lambda v: params.count(self._crm, "loyal_purchases", v),
            "rfm_monetary": lambda v: params.monetary(self._crm, v),
            "clv_model": lambda v: params.choice(self._crm, "clv_model", v, ("bgnbd", "pareto_nbd")),
            "clv_occasions": lambda v: params.choice(self._crm, "clv_occasions", v, ("day", "transaction")),
        }
        checked = {}
        for name, value in values.items():
            if name not in params.DEFAULTS:
                raise ValidationError(f"unknown setting (one of {', '.join(params.DEFAULTS)})", field=name)
            check = checks.get(name) or (lambda v, n=name: params.whole_days(v, n))
            checked[name] = check(value)
        with self._crm.transaction():  # one commit for all of them
            for name, value in checked.items():
                self._crm.set_setting(params.PREFIX + name, value, permission=RUN)
        return {name: params.setting(self._crm, name) for name in params.DEFAULTS}

    # -- purchase history ---------------------------------------------------------------------------

    def transactions(self) -> sa.Subquery:
        """Every purchase source as one subquery (``crmkit.purchases.purchases``): SQL to build on, no rows read
        (a query over it that returns customers' rows must apply ``crm.access.customers``)."""
        return aggregates.transactions(self._crm)

    def rebuild(self) -> int:
        """Recompute every customer's value aggregates from the transactions; returns the number of rows
        (``analytics.run``: a whole-base job)."""
        self._crm.access.require(RUN)
        return self._rebuild()

    def _rebuild(self) -> int:
        with self._crm.transaction() as session:
            return aggregates.rebuild(self._crm, session.connection())

    def refresh(self, customer_ids: Iterable[int]) -> None:
        """Recompute these customers' aggregates (a source that changed their purchases calls this; it joins
        the caller's running transaction).

        No permission of its own: it only brings derived figures in line with purchases the caller has
        just written (under that write's own check) and returns nothing.
        """
        with self._crm.transaction() as session:
            aggregates.refresh(self._crm, session.connection(), customer_ids)

    def currency(self, value: str | None = None) -> str | None:
        """The currency measures use (see the module docstring); None when nobody has purchased yet
        (``analytics.read``)."""
        self._crm.access.require(READ)
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
                field="currency",
            )
        return found[0] if found else None

    def _ensure_aggregates(self) -> None:
        """Build the aggregates on first use when transactions exist but none were ever aggregated (derived
        data, whoever reads first: no permission beyond the caller's)."""
        with self._crm.reading() as conn:
            if conn.execute(sa.select(customer_value.c.customer_id).limit(1)).first() is not None:
                return
            vt = aggregates.transactions(self._crm)
            if conn.execute(sa.select(vt.c.customer_id).where(vt.c.amount_minor > 0).limit(1)).first() is None:
                return
        self._rebuild()

    # -- measures (analytics.run: whole-base jobs; the run returned is read with analytics.read) ----------

    def rfm(
        self,
        *,
        as_of: When = None,
        currency: str | None = None,
        window_days: int | None = None,
        monetary: str | None = None,
    ) -> runs.Run:
        """Score every buyer's recency, frequency and monetary value (``total`` spend or ``average`` per purchase;
        default the ``rfm_monetary`` setting), segment them, and store the snapshot."""
        self._may_run()
        when = params.as_of(self._crm, as_of)
        window = None if window_days is None else params.whole_days(window_days, "window_days")
        definition = params.monetary(self._crm, monetary)
        code = self.currency(currency)
        with self._crm.transaction() as session:
            conn = session.connection()
            return self._scoped(
                conn, rfm.compute(self._crm, conn, currency=code, as_of=when, window_days=window, monetary=definition)
            )

    def customer_types(
        self,
        *,
        as_of: When = None,
        new_days: int | None = None,
        loyal_purchases: int | None = None,
        at_risk_days: int | None = None,
        lost_days: int | None = None,
    ) -> runs.Run:
        """Classify every active customer (loyal, potential, new, prospect, at risk, lost) and store the snapshot."""
        self._may_run()
        crm = self._crm
        when = params.as_of(self._crm, as_of)
        self._ensure_aggregates()
        with crm.transaction() as session:
            conn = session.connection()
            return self._scoped(
                conn,
                customer_types.compute(
                    crm,
                    conn,
                    as_of=when,
                    new_days=params.days(crm, "new_days", new_days),
                    loyal_purchases=params.count(crm, "loyal_purchases", loyal_purchases),
                    at_risk_days=params.days(crm, "at_risk_days", at_risk_days),
                    lost_days=params.days(crm, "lost_days", lost_days),
                ),
            )

    def pcv(
        self, *, as_of: When = None, currency: str | None = None, discount_rate: Any = None, margin_rate: Any = None
    ) -> runs.Run:
        """Past customer value of every buyer, compounded to the as-of date, and the total; stores the snapshot."""
        from crmkit_analytics import pcv

        self._may_run()
        when = params.as_of(self._crm, as_of)
        rate, margin = params.discount_rate(self._crm, discount_rate), params.margin_rate(self._crm, margin_rate)
        code = self.currency(currency)
        with self._crm.transaction() as session:
            conn = session.connection()
            return self._scoped(
                conn, pcv.compute(self._crm, conn, currency=code, as_of=when, discount_rate=rate, margin_rate=margin)
            )

    def sow(self, *, as_of: When = None, currency: str | None = None, window_days: int | None = None) -> runs.Run:
        """Share of wallet of every customer with a known category spend, per segment and overall."""
        from crmkit_analytics import sow

        self._may_run()
        when = params.as_of(self._crm, as_of)
        window = params.days(self._crm, "sow_window_days", window_days)
        estimates = params.estimates(params.setting(self._crm, "category_spend_estimates") or {})
        code = self.currency(currency)
        with self._crm.transaction() as session:
            conn = session.connection()
            return self._scoped(
                conn, sow.compute(self._crm, conn, currency=code, as_of=when, window_days=window, estimates=estimates)
            )

    def clv(
        self,
        *,
        as_of: When = None,
        currency: str | None = None,
        horizon_days: int | None = None,
        discount_rate: Any = None,
        margin_rate: Any = None,
        model: str | None = None,
    ) -> runs.Run:
        """Fit BG/NBD and Pareto/NBD (compared by BIC) and Gamma-Gamma on the purchase occasions up to the as-of
        date's local day (a date is that day; default today), predict with ``model`` (default the ``clv_model``
        setting, ``bgnbd``), and store P(alive), expected purchases, spend and CLV per customer."""
        from crmkit_analytics import clv

        self._may_run()
        day = self._day(as_of, "as_of")
        rate, margin = params.discount_rate(self._crm, discount_rate), params.margin_rate(self._crm, margin_rate)
        horizon = params.days(self._crm, "clv_horizon_days", horizon_days)
        chosen = params.choice(self._crm, "clv_model", model, clv.MODELS)
        by_day = params.choice(self._crm, "clv_occasions", None, ("day", "transaction")) == "day"
        code = self.currency(currency)
        if code is None:
            raise ValidationError("no purchases yet: lifetime value needs purchase history", field="history")
        with self._crm.transaction() as session:
            conn = session.connection()
            return self._scoped(
                conn,
                clv.compute(
                    self._crm,
                    conn,
                    currency=code,
                    as_of=clv.end_of_day(self._crm, day),
                    horizon_days=horizon,
                    discount_rate=rate,
                    margin_rate=margin,
                    model=chosen,
                    by_day=by_day,
                ),
            )

    def clv_check(
        self,
        *,
        calibration_end: date | datetime | str,
        holdout_end: date | datetime | str,
        currency: str | None = None,
        model: str | None = None,
    ) -> dict[str, Any]:
        """Fit the models on the purchase occasions up to ``calibration_end`` (a local day) and compare their
        predictions with what the same customers bought until ``holdout_end``: per calibration frequency,
        in total, week by week (cumulative repeat purchases) and as mean absolute error per customer.
        A whole-base job that stores nothing (``analytics.run``)."""
        from crmkit_analytics import clv, clv_check

        self._may_run()
        start, end = self._day(calibration_end, "calibration_end"), self._day(holdout_end, "holdout_end")
        if end <= start:
            raise ValidationError(
                f"the hold-out must come after the calibration period: {end.isoformat()} is not "
                f"after the calibration end {start.isoformat()}, so the two would overlap",
                field="holdout_end",
            )
        chosen = params.choice(self._crm, "clv_model", model, clv.MODELS)
        by_day = params.choice(self._crm, "clv_occasions", None, ("day", "transaction")) == "day"
        code = self.currency(currency)
        if code is None:
            raise ValidationError("no purchases yet: the model check needs purchase history", field="history")
        with self._crm.reading() as conn:
            return clv_check.compare(
                self._crm, conn, currency=code, calibration_end=start, holdout_end=end, model=chosen, by_day=by_day
            )

    def _day(self, value: When, field: str) -> date:
        """A local day of the business: a date as given, an aware time's day in its time zone; None is today."""
        return self._crm.today() if value is None else params.local_day(value, field, self._crm.timezone)

    def run(self, *, as_of: When = None, currency: str | None = None) -> Computed:
        """Compute every measure for one date, in order (RFM, customer types, PCV, SOW, CLV), each in its own
        transaction; a measure that cannot be computed (no purchases yet, too little history for CLV) is left out
        with the reason. What ``crmkit analytics run``, the report and the console's "Compute now" call."""
        self._may_run()
        when = params.as_of(self._crm, as_of)
        steps: dict[str, Any] = {
            "rfm": lambda: self.rfm(as_of=when, currency=currency),
            "types": lambda: self.customer_types(as_of=when),
            "pcv": lambda: self.pcv(as_of=when, currency=currency),
            "sow": lambda: self.sow(as_of=when, currency=currency),
            "clv": lambda: self.clv(as_of=when if as_of is None else as_of, currency=currency),
        }
        computed: dict[str, runs.Run] = {}
        problems: dict[str, str] = {}
        for measure, compute in steps.items():
            try:
                computed[measure] = compute()
            except ValidationError as exc:
                problems[measure] = str(exc)
        return Computed(computed, problems)

    # -- reading results (analytics.read, limited in SQL to the customers it reaches) ----------------------

    def latest(self, measure: str) -> runs.Run | None:
        """The most recent run of a measure (``rfm``, ``types``, ``pcv``, ``sow``, ``clv``), or None; its summary
        counts the acting user's customers only (see :class:`~crmkit_analytics.runs.Run`)."""
        if measure not in SNAPSHOTS:
            raise ValidationError(f"unknown measure (one of {', '.join(SNAPSHOTS)})", field="measure")
        self._crm.access.require(READ)
        with self._crm.reading() as conn:
            run = runs.latest(conn, measure)
            return None if run is None else self._scoped(conn, run)

    def history(self, measure: str | None = None, *, limit: int = 20) -> list[runs.Run]:
        """Past runs, newest first (optionally of one measure). Their summaries count the whole base, so a
        user whose ``analytics.read`` reaches fewer customers gets them without summary (``scope`` says whose
        they are; :meth:`latest` gives the latest run's figures recounted for them)."""
        self._crm.access.require(READ)
        query = sa.select(runs_table).order_by(runs_table.c.id.desc()).limit(_limit(limit))
        if measure is not None:
            query = query.where(runs_table.c.measure == measure)
        label = self.scope()
        with self._crm.reading() as conn:
            found = [runs.Run(**row) for row in conn.execute(query).mappings()]
        return found if label is None else [attrs.evolve(run, summary={}, scope=label) for run in found]

    def customers(
        self, measure: str, *, segment: str | None = None, order: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        """Rows of the latest snapshot of ``measure`` with the customer's name, for the customers in scope;
        ``segment`` filters RFM segments or customer types; ``order`` is a column to sort by, highest first
        (default: the customer id)."""
        self._crm.access.require(READ)
        query = self._rows(measure, segment, order).limit(_limit(limit))
        with self._crm.reading() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def customer(self, measure: str, customer_id: int) -> dict[str, Any]:
        """One customer's row of the latest snapshot of ``measure`` (as :meth:`customers` gives it); ``NotFound``
        when the customer has none or is outside the acting user's ``analytics.read`` scope (the API's lookup)."""
        self._crm.access.require(READ)
        query = self._rows(measure, None, None).where(SNAPSHOTS[measure].c.customer_id == customer_id)
        with self._crm.reading() as conn:
            row = conn.execute(query).mappings().first()
        if row is None:
            raise NotFound(f"{measure} of customer", customer_id)
        return dict(row)

    def export(self, measure: str, *, segment: str | None = None, order: str | None = None) -> list[dict[str, Any]]:
        """Every row of the latest snapshot of ``measure`` (as :meth:`customers`, without a limit) for the
        customers both ``analytics.read`` and ``analytics.export`` reach: the list to save as a file."""
        self._crm.access.require(READ)
        self._crm.access.require(EXPORT)
        query = self._rows(measure, segment, order)
        query = query.where(self._crm.access.customers(SNAPSHOTS[measure].c.customer_id, EXPORT))
        with self._crm.reading() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def _rows(self, measure: str, segment: str | None, order: str | None) -> sa.Select[Any]:
        if measure not in SNAPSHOTS:
            raise ValidationError(f"unknown measure (one of {', '.join(SNAPSHOTS)})", field="measure")
        table = SNAPSHOTS[measure]
        columns = [col for col in table.c if col.key not in ("customer_id", "run_id")]
        query = (
            sa.select(table.c.customer_id, core.customers.c.name, *columns)
            .join(core.customers, core.customers.c.id == table.c.customer_id)
            .where(table.c.run_id == runs.latest_id(measure), self._in_scope(table.c.customer_id))
        )
        if segment is not None:
            column = {"rfm": "segment", "types": "customer_type"}.get(measure)
            if column is None:
                raise ValidationError(f"{measure} has no segments", field="segment")
            query = query.where(table.c[column] == segment)
        if order is not None:
            if order not in table.c or order in ("customer_id", "run_id"):
                raise ValidationError(
                    f"cannot sort {measure} by {order!r} (one of {', '.join(c.key for c in columns)})", field="order"
                )
            return query.order_by(table.c[order].desc(), table.c.customer_id)
        return query.order_by(table.c.customer_id)

    def growth_opportunities(
        self, *, low_share: Any = None, min_category_spend: int | None = None, limit: int = 20
    ) -> tuple[int, list[dict[str, Any]]]:
        """From the latest SOW run: (category-spend threshold, customers in scope with a low share of a big
        wallet). The threshold is the whole base's top fifth, so a customer's standing does not depend on who asks."""
        from crmkit_analytics import sow

        where = self._in_scope(SNAPSHOTS["sow"].c.customer_id)
        share = float(params.share(self._crm, low_share))
        with self._crm.reading() as conn:
            run = self._require(conn, "sow")
            return sow.opportunities(
                conn, run.id, low_share=share, min_category_spend=min_category_spend, limit=_limit(limit), where=where
            )

    def customer_summary(self, conn: sa.Connection, customer_id: int) -> dict[str, Any]:
        """What the profile shows: purchase history per currency and the latest value of every measure, dated
        (nothing for a customer outside the acting user's ``analytics.read`` scope)."""
        history, latest = self._customer_rows(conn, customer_id)
        result: dict[str, Any] = {
            "purchases": [
                {
                    "currency": row["currency"],
                    "purchases": row["purchase_count"],
                    "total": Money(row["currency"], int(row["total_minor"])).format(),
                    "first_purchase_at": row["first_purchase_at"],
                    "last_purchase_at": row["last_purchase_at"],
                }
                for row in history
            ]
        }
        result.update({measure: _profile_values(measure, row) for measure, row in latest.items()})
        return result

    def customer_values(self, customer_id: int) -> dict[str, Any]:
        """One customer's purchase history per currency (``purchases``) and their row of each measure's latest
        run (``rfm``, ``types``, ``pcv``, ``sow``, ``clv``, with the run's ``currency``, ``as_of`` and
        ``computed_at``), unformatted: money in minor units. Measures without a row are left out; a customer
        outside the acting user's ``analytics.read`` scope gets ``{"purchases": []}`` (``analytics.read``)."""
        self._crm.access.require(READ)
        with self._crm.reading() as conn:
            history, latest = self._customer_rows(conn, customer_id)
        return {"purchases": history, **latest}

    def _customer_rows(
        self, conn: sa.Connection, customer_id: int
    ) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
        """The customer's aggregates per currency and their row of each measure's latest run, within scope."""
        cv = customer_value.c
        history = [
            dict(row)
            for row in conn.execute(
                sa.select(customer_value)
                .where(cv.customer_id == customer_id, self._in_scope(cv.customer_id))
                .order_by(cv.currency)
            ).mappings()
        ]
        latest: dict[str, dict[str, Any]] = {}
        for measure, table in SNAPSHOTS.items():
            row = (
                conn.execute(
                    sa.select(table, runs_table.c.computed_at, runs_table.c.as_of, runs_table.c.currency)
                    .join(runs_table, runs_table.c.id == table.c.run_id)
                    .where(
                        table.c.customer_id == customer_id,
                        table.c.run_id == runs.latest_id(measure),
                        self._in_scope(table.c.customer_id),
                    )
                )
                .mappings()
                .first()
            )
            if row is not None:
                latest[measure] = dict(row)
        return history, latest

    # -- KPIs, breakdowns, cohorts, report -------------------------------------------------------------

    def kpis(
        self, *, as_of: When = None, currency: str | None = None, months: int = 12, freshness_days: int = 90
    ) -> dict[str, Any]:
        """Headline KPIs as of the date and one row per month (acquisition, retention, churn, AOV, …), over the
        customers in scope; ``overview["scope"]`` says whose (None: every customer)."""
        self._crm.access.require(READ)
        when, code, months = params.as_of(self._crm, as_of), self.currency(currency), _months(months)
        fresh = params.whole_days(freshness_days, "freshness_days")
        with self._crm.reading() as conn:
            overview = kpis.overview(
                self._crm, conn, currency=code, as_of=when, freshness_days=fresh, scope=self._in_scope
            )
            return {
                "overview": {**overview, "scope": self.scope()},
                "months": kpis.monthly(self._crm, conn, currency=code, as_of=when, months=months, scope=self._in_scope),
            }

    def breakdown(
        self, by: str, *, as_of: When = None, currency: str | None = None, months: int = 12
    ) -> list[dict[str, Any]]:
        """Customers, buyers, orders and revenue over the last ``months`` months grouped by ``by``
        (age_band, gender, province, city, category, channel, period), over the customers in scope."""
        self._crm.access.require(READ)
        when, code, months = params.as_of(self._crm, as_of), self.currency(currency), _months(months)
        with self._crm.reading() as conn:
            return kpis.breakdown(
                self._crm,
                conn,
                by=by,
                currency=code,
                start=kpis.first_month(when, months, self._crm.timezone),
                end=when,
                scope=self._in_scope,
            )

    def cohorts(self, *, as_of: When = None, currency: str | None = None, months: int = 12) -> list[dict[str, Any]]:
        """Retention by first-purchase month over the last ``months`` months, over the customers in scope."""
        self._crm.access.require(READ)
        when, code, months = params.as_of(self._crm, as_of), self.currency(currency), _months(months)
        with self._crm.reading() as conn:
            return kpis.cohorts(self._crm, conn, currency=code, as_of=when, months=months, scope=self._in_scope)

    def activity(self, *, as_of: When = None, months: int = 12) -> list[dict[str, Any]]:
        """Interactions per employee per month, with the customers in scope."""
        self._crm.access.require(READ)
        when, months = params.as_of(self._crm, as_of), _months(months)
        with self._crm.reading() as conn:
            return kpis.activity(self._crm, conn, as_of=when, months=months, scope=self._in_scope)

    def report(
        self,
        path: str | Path,
        *,
        as_of: When = None,
        currency: str | None = None,
        recompute: bool = True,
        charts_dir: str | Path | None = None,
        locale: str | None = None,
        holdout: tuple[When, When] | None = None,
    ) -> Path:
        """Write the self-contained HTML report (computing every measure first unless ``recompute=False``);
        with ``charts_dir``, every chart is also saved there as PNG and SVG. It is written in ``locale`` (vi or
        en), else the business setting ``locale``, else Vietnamese. With ``holdout`` (calibration end, hold-out
        end), it adds the CLV model check of :meth:`clv_check` with its charts.

        Needs ``analytics.read`` and ``analytics.export`` (a file of customers' names and values), and
        ``analytics.run`` to recompute. A user whose scope is narrower gets a report of their customers
        only, saying so in its header.
        """
        from crmkit_analytics import report

        access = self._crm.access
        access.require(READ)
        access.require(EXPORT)
        if recompute:
            access.require(RUN)
        return report.write(
            self._crm,
            Path(path),
            as_of=params.as_of(self._crm, as_of),
            currency=self.currency(currency),
            recompute=recompute,
            charts_dir=None if charts_dir is None else Path(charts_dir),
            scope=self.scope(),
            locale=locale,
            clv_check=None
            if holdout is None
            else self.clv_check(calibration_end=holdout[0], holdout_end=holdout[1], currency=currency),
        )

    def _require(self, conn: sa.Connection, measure: str) -> runs.Run:
        run = runs.latest(conn, measure)
        if run is None:
            raise ValidationError(f"no {measure} computed yet: run `crmkit analytics {measure}` first", field="measure")
        return run


def _summary(conn: sa.Connection, run: runs.Run, where: sa.ColumnElement[bool]) -> dict[str, Any]:
    """A run's summary figures recounted over the customers ``where`` selects."""
    from crmkit_analytics import clv, pcv, sow

    if run.measure == "rfm":
        return rfm.summary(conn, run.id, where)
    if run.measure == "types":
        return customer_types.summary(conn, run.id, where)
    if run.measure == "pcv":
        return pcv.summary(conn, run.id, where)
    if run.measure == "sow":
        return sow.summary(conn, run.id, run.parameters.get("rfm_run"), where)
    return clv.summary(conn, run.id, where)


def _profile_values(measure: str, row: Any) -> dict[str, Any]:
    dated = {"computed_at": row["computed_at"], "as_of": row["as_of"]}
    currency = row["currency"]
    if measure == "rfm":
        return {
            "score": row["score"],
            "segment": row["segment"],
            "recency_days": row["recency_days"],
            "frequency": row["frequency"],
            "monetary": Money(currency, int(row["monetary_minor"])).format(),
            **dated,
        }
    if measure == "types":
        return {"customer_type": row["customer_type"], **dated}
    if measure == "pcv":
        return {"pcv": Money(currency, int(row["pcv_minor"])).format(), **dated}
    if measure == "sow":
        return {
            "share": round(row["share"], 4),
            "spend": Money(currency, int(row["spend_minor"])).format(),
            "category_spend": Money(currency, int(row["category_spend_minor"])).format(),
            "source": row["source"],
            **dated,
        }
    return {
        "clv": Money(currency, int(row["clv_minor"])).format(),
        "p_alive": round(row["p_alive"], 4),
        "expected_purchases": round(row["expected_purchases"], 3),
        **dated,
    }


def _limit(limit: int) -> int:
    if not 1 <= int(limit) <= 100000:
        raise ValidationError("must be between 1 and 100000", field="limit")
    return int(limit)


def _months(months: int) -> int:
    if not 1 <= int(months) <= 120:
        raise ValidationError("must be between 1 and 120", field="months")
    return int(months)
