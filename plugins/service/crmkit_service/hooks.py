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
def crmkit_demo_populate(crm: CRM, customer_ids: list[int], seed: int) -> None:
    demo.populate(crm, customer_ids, seed)


@hookimpl
def crmkit_demo_overview(crm: CRM) -> dict[str, list[str]]:
    with crm.reading() as conn:
        total, active = conn.execute(
            sa.select(sa.func.count(), sa.func.count().filter(cases.c.status.in_(ACTIVE))).select_from(cases)
        ).one()
        replies = conn.execute(sa.select(sa.func.count()).select_from(messages)).scalar_one()
    return {
        "Service": [
            f"{total} cases ({active} still open), {replies} replies and notes — "
            "crmkit service cases list --status active"
        ]
    }
