"""The service plugin's hook implementations: thin glue between crmkit's events and ``crm.service``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crmkit import hookimpl
from crmkit_service import demo
from crmkit_service.models import cases, messages
from crmkit_service.service import ACTIVE, PERMISSIONS, ServiceService

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.orm import Session

    from crmkit import CRM, Customer, Permission


@hookimpl
def crmkit_services(crm: CRM) -> dict[str, Any]:
    return {"service": ServiceService(crm)}


@hookimpl
def crmkit_permissions() -> list[Permission]:
    return list(PERMISSIONS)


@hookimpl
def crmkit_customer_export(crm: CRM, customer: Customer, session: Session) -> dict[str, Any]:
    return {"service": crm.service.export(customer.id, session)}


@hookimpl
def crmkit_customer_erase(crm: CRM, customer: Customer, session: Session) -> None:
    crm.service.erase(customer.id, session)


@hookimpl
def crmkit_customers_merged_many(crm: CRM, pairs: Mapping[int, int], session: Session) -> None:
    crm.service.merged(pairs, session)


@hookimpl
def crmkit_customer_profile(crm: CRM, customer: Customer) -> dict[str, Any]:
    return {"service": crm.service.summary(customer.id)}


@hookimpl
def crmkit_case_resolved(crm: CRM, case: Any, session: Session) -> None:
    crm.service.csat.request(session, case)


@hookimpl
def crmkit_service_case_stats(crm: CRM, since: datetime) -> list[dict[str, Any]]:
    stats: list[dict[str, Any]] = crm.service.reports.customer_case_stats(since)
    return stats


@hookimpl
def crmkit_demo_populate(crm: CRM, customer_ids: list[int], seed: int) -> None:
    demo.populate(crm, customer_ids, seed)


@hookimpl
def crmkit_demo_overview(crm: CRM) -> dict[str, list[str]]:
    with crm.reading() as conn:
        counts: Any = conn.execute(
            sa.select(
                sa.func.count(),
                sa.func.count().filter(cases.c.status.in_(ACTIVE)),
                sa.func.count(cases.c.csat_score),
                sa.func.avg(cases.c.csat_score),
                sa.func.count().filter(cases.c.reopen_count > 0),
                sa.func.count().filter(
                    sa.or_(cases.c.first_response_breached_at.is_not(None), cases.c.resolution_breached_at.is_not(None))
                ),
            ).select_from(cases)
        ).one()
        total, active, rated, score, reopened, missed = counts
        replies = conn.execute(sa.select(sa.func.count()).select_from(messages)).scalar_one()
    satisfaction = f"CSAT {float(score):.1f}/5 from {rated} answers" if rated else "no CSAT answers yet"
    return {
        "Service": [
            f"{total} cases ({active} still open), {replies} replies and notes — "
            "crmkit service cases list --status active",
            f"{satisfaction}, {reopened} reopened, {missed} missed an SLA target — crmkit service report sla",
        ]
    }
