"""Service reports (issue 17 item 7, ``crm.service.reports``): backlog by status and age, SLA compliance per team and
agent, first-contact resolution, reopen rate, CSAT and its trend per agent, team or category, and the busiest
hours — each a list of plain rows for the CLI (table, JSON, CSV), the API, the console's charts and the HTML report.

Every report reads only the cases in the reader's ``service.read`` scope, in one grouped query (the backlog and
SLA-compliance ones stay under a second over 1,000,000 cases: ``bench/bench_service_reports.py``). Periods are
``[since, until)`` in UTC, the last 90 days unless given; rates are percentages with one decimal.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crmkit import ValidationError
from crmkit.plugin_api import utcnow
from crmkit_service.models import cases, messages

if TYPE_CHECKING:
    from crmkit import CRM

ACTIVE = ("new", "open", "waiting_on_customer", "waiting_on_third_party", "reopened")
#: The backlog's age buckets: (label, at least this old).
AGES = (("7d+", timedelta(days=7)), ("3-7d", timedelta(days=3)), ("1-3d", timedelta(days=1)), ("0-1d", timedelta(0)))
#: What CSAT reports group by.
CSAT_BY = ("assignee", "team", "category")
DEFAULT_PERIOD = timedelta(days=90)


def _pct(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


class Reports:
    """The service's reports (``crm.service.reports``); ``service.read``, scoped."""

    def __init__(self, crm: CRM) -> None:
        self._crm = crm

    @property
    def names(self) -> dict[str, Callable[..., list[dict[str, Any]]]]:
        """Each report by the name the CLI and the API use."""
        return {
            "backlog": self.backlog,
            "sla": self.sla_compliance,
            "fcr": self.first_contact_resolution,
            "reopens": self.reopen_rate,
            "csat": self.csat,
            "csat-trend": self.csat_trend,
            "hours": self.busiest_hours,
        }

    def run(self, name: str, **options: Any) -> list[dict[str, Any]]:
        """Run a report by name (``ValidationError`` naming ``name`` for an unknown one)."""
        if name not in self.names:
            raise ValidationError(f"unknown report: one of {', '.join(self.names)}", field="name")
        return self.names[name](**options)

    def _period(self, since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
        self._crm.access.require("service.read")
        end = until or utcnow()
        start = since or end - DEFAULT_PERIOD
        for name, value in (("since", start), ("until", end)):
            if value.tzinfo is None:
                raise ValidationError("must carry a time zone", field=name)
        if start >= end:
            raise ValidationError("must be before until", field="since")
        return start, end

    def _scope(self) -> Any:
        return self._crm.access.customers(cases.c.customer_id, "service.read")

    def backlog(self, *, now: datetime | None = None) -> list[dict[str, Any]]:
        """Active cases by status and age (time since opened): ``status``, ``age``, ``cases``."""
        self._crm.access.require("service.read")
        moment = now or utcnow()
        c = cases.c
        age = sa.case(*((c.created_at <= moment - delta, label) for label, delta in AGES[:-1]), else_=AGES[-1][0])
        query = (
            sa.select(c.status, age.label("age"), sa.func.count().label("cases"))
            .where(c.status.in_(ACTIVE), self._scope())
            .group_by(c.status, age)
        )
        with self._crm.reading() as conn:
            found = {(row.status, row.age): row.cases for row in conn.execute(query)}
        order = [label for label, _ in reversed(AGES)]
        return [
            {"status": status, "age": label, "cases": found[(status, label)]}
            for status in ACTIVE
            for label in order
            if (status, label) in found
        ]

    def sla_compliance(self, *, since: datetime | None = None, until: datetime | None = None) -> list[dict[str, Any]]:
        """Cases opened in the period per team and agent: how many, how many missed their first response or their
        resolution, and the share that met both (``compliance``, %)."""
        start, end = self._period(since, until)
        c = cases.c
        period = (c.created_at >= start, c.created_at < end, self._scope())
        everyone = sa.select(c.team, c.assignee, sa.func.count()).where(*period).group_by(c.team, c.assignee)
        missed = (  # read by the partial index of the cases that missed a target
            sa.select(
                c.team,
                c.assignee,
                sa.func.count(),
                sa.func.count(c.first_response_breached_at),
                sa.func.count(c.resolution_breached_at),
            )
            .where(sa.or_(c.first_response_breached_at.is_not(None), c.resolution_breached_at.is_not(None)), *period)
            .group_by(c.team, c.assignee)
        )
        with self._crm.reading() as conn:
            totals: dict[tuple[Any, Any], int] = {(r[0], r[1]): r[2] for r in conn.execute(everyone)}
            misses: dict[tuple[Any, Any], tuple[int, int, int]] = {
                (r[0], r[1]): (r[2], r[3], r[4]) for r in conn.execute(missed)
            }
        rows = []
        for (team, assignee), total in sorted(totals.items(), key=lambda item: (item[0][0] or "", item[0][1] or "")):
            either, first, resolution = misses.get((team, assignee), (0, 0, 0))
            rows.append(
                {
                    "team": team,
                    "assignee": assignee,
                    "cases": total,
                    "first_response_missed": first,
                    "resolution_missed": resolution,
                    "compliance": _pct(total - either, total),
                }
            )
        return rows

    def _resolved_by_team(self, start: datetime, end: datetime, counted: Any) -> list[tuple[Any, int, int]]:
        c = cases.c
        query = (
            sa.select(c.team, sa.func.count(), sa.func.sum(sa.case((counted, 1), else_=0)))
            .where(c.resolved_at >= start, c.resolved_at < end, self._scope())
            .group_by(c.team)
        )
        with self._crm.reading() as conn:
            rows: list[Any] = list(conn.execute(query))
        return [(team, total, int(part or 0)) for team, total, part in rows]

    def first_contact_resolution(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> list[dict[str, Any]]:
        """Cases resolved in the period per team, and those resolved at the first contact — one answer to the
        customer at most and never reopened (``fcr``, %)."""
        start, end = self._period(since, until)
        m = messages.c
        answers = (
            sa.select(sa.func.count())
            .where(m.case_id == cases.c.id, m.kind == "reply", m.direction == "outbound")
            .scalar_subquery()
        )
        rows = self._resolved_by_team(start, end, sa.and_(cases.c.reopen_count == 0, answers <= 1))
        return [
            {"team": team, "resolved": total, "first_contact": part, "fcr": _pct(part, total)}
            for team, total, part in sorted(rows, key=lambda r: r[0] or "")
        ]

    def reopen_rate(self, *, since: datetime | None = None, until: datetime | None = None) -> list[dict[str, Any]]:
        """Cases resolved in the period per team and how many of them had been reopened (``reopen_rate``, %)."""
        start, end = self._period(since, until)
        rows = self._resolved_by_team(start, end, cases.c.reopen_count > 0)
        return [
            {"team": team, "resolved": total, "reopened": part, "reopen_rate": _pct(part, total)}
            for team, total, part in sorted(rows, key=lambda r: r[0] or "")
        ]

    def _answers(self, start: datetime, end: datetime, by: str) -> list[Any]:
        if by not in CSAT_BY:
            raise ValidationError(f"must be one of {', '.join(CSAT_BY)}", field="by")
        c = cases.c
        query = sa.select(c[by], c.csat_score, c.csat_answered_at).where(
            c.csat_answered_at >= start, c.csat_answered_at < end, self._scope()
        )
        with self._crm.reading() as conn:
            return list(conn.execute(query))

    def csat(
        self, *, since: datetime | None = None, until: datetime | None = None, by: str = "assignee"
    ) -> list[dict[str, Any]]:
        """Survey answers in the period per agent, team or category (``by``): how many, the average score and the
        share of satisfied customers (4 or 5, %)."""
        start, end = self._period(since, until)
        groups: dict[Any, list[int]] = defaultdict(list)
        for key, score, _ in self._answers(start, end, by):
            groups[key].append(score)
        return [
            {
                by: key,
                "answers": len(scores),
                "average": round(sum(scores) / len(scores), 2),
                "satisfied": _pct(sum(1 for s in scores if s >= 4), len(scores)),
            }
            for key, scores in sorted(groups.items(), key=lambda item: item[0] or "")
        ]

    def csat_trend(
        self, *, since: datetime | None = None, until: datetime | None = None, by: str = "team"
    ) -> list[dict[str, Any]]:
        """The average score per month (in the business's time zone) per agent, team or category (``by``)."""
        start, end = self._period(since, until)
        zone = self._crm.timezone
        groups: dict[tuple[Any, str], list[int]] = defaultdict(list)
        for key, score, answered in self._answers(start, end, by):
            groups[(key, f"{answered.astimezone(zone):%Y-%m}")].append(score)
        return [
            {by: key, "month": month, "answers": len(scores), "average": round(sum(scores) / len(scores), 2)}
            for (key, month), scores in sorted(groups.items(), key=lambda item: (item[0][0] or "", item[0][1]))
        ]

    def busiest_hours(self, *, since: datetime | None = None, until: datetime | None = None) -> list[dict[str, Any]]:
        """Cases opened in the period by local weekday (0 = Monday) and hour, busiest first."""
        start, end = self._period(since, until)
        c = cases.c
        zone = self._crm.timezone
        counts: dict[tuple[int, int], int] = defaultdict(int)
        with self._crm.reading() as conn:
            opened: list[datetime] = list(
                conn.execute(
                    sa.select(c.created_at).where(c.created_at >= start, c.created_at < end, self._scope())
                ).scalars()
            )
        for created in opened:
            local = created.astimezone(zone)
            counts[(local.weekday(), local.hour)] += 1
        return [
            {"weekday": day, "hour": hour, "cases": n}
            for (day, hour), n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        ]

    def customer_case_stats(self, since: datetime) -> list[dict[str, Any]]:
        """For QCI and analytics (the ``crmkit_service_case_stats`` hook): per customer with cases opened since
        ``since``, how many, how many complaints (category ``complaint``), how many missed an SLA target and the
        average CSAT score (None without answers). Unscoped: a system read for KPIs."""
        c = cases.c
        breached = sa.or_(c.first_response_breached_at.is_not(None), c.resolution_breached_at.is_not(None))
        query = (
            sa.select(
                c.customer_id,
                sa.func.count(),
                sa.func.sum(sa.case((c.category == "complaint", 1), else_=0)),
                sa.func.sum(sa.case((breached, 1), else_=0)),
                sa.func.avg(c.csat_score),
            )
            .where(c.created_at >= since)
            .group_by(c.customer_id)
            .order_by(c.customer_id)
        )
        with self._crm.reading() as conn:
            rows: list[Any] = list(conn.execute(query))
        return [
            {
                "customer_id": customer_id,
                "cases": total,
                "complaints": int(complaints or 0),
                "breached": int(missed or 0),
                "csat_average": None if average is None else round(float(average), 2),
            }
            for customer_id, total, complaints, missed, average in rows
        ]
