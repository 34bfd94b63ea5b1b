"""The sales plugin's hook implementations: thin calls into the service, ``customer_data`` and ``demo``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crmkit import Permission, hookimpl
from crmkit_sales import customer_data, demo
from crmkit_sales.permissions import PERMISSIONS
from crmkit_sales.service import Sales

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sqlalchemy.orm import Session

    from crmkit.crm import CRM
    from crmkit.plugin_api import Customer


@hookimpl
def crmkit_services(crm: CRM) -> dict[str, Any]:
    return {"sales": Sales(crm)}


@hookimpl
def crmkit_permissions() -> list[Permission]:
    return PERMISSIONS


@hookimpl
def crmkit_customer_export(crm: CRM, customer: Customer, session: Session) -> dict[str, Any]:
    return {"sales": customer_data.export(crm, session, customer)}


@hookimpl
def crmkit_customer_erase(crm: CRM, customer: Customer, session: Session) -> None:
    customer_data.erase(session, customer.id, crm.now())


@hookimpl
def crmkit_customers_merged_many(pairs: Mapping[int, int], session: Session) -> None:
    customer_data.merge_many(session, pairs)


@hookimpl
def crmkit_customer_profile(crm: CRM, customer: Customer, session: Session) -> dict[str, Any]:
    return {"sales": customer_data.profile(crm, session, customer)}


@hookimpl
def crmkit_segment_fields(crm: CRM) -> dict[str, Any]:
    return customer_data.segment_fields(crm)


@hookimpl
def crmkit_value_transactions(crm: CRM) -> Any:
    return customer_data.value_transactions()


@hookimpl
def crmkit_demo_populate(crm: CRM, customer_ids: list[int], seed: int) -> None:
    demo.populate(crm, customer_ids, seed)


@hookimpl
def crmkit_demo_overview(crm: CRM) -> dict[str, list[str]]:
    return demo.overview(crm)
