"""The campaigns plugin's hook implementations: thin calls into ``crm.campaigns``, ``customer_data``, ``demo``,
and the permissions it declares."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crmkit import hookimpl
from crmkit_campaigns import customer_data, demo, transactional
from crmkit_campaigns.permissions import PERMISSIONS
from crmkit_campaigns.service import CampaignsService

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sqlalchemy.orm import Session

    from crmkit import Permission
    from crmkit.crm import CRM
    from crmkit.plugin_api import Customer, Interaction


@hookimpl
def crmkit_services(crm: CRM) -> dict[str, Any]:
    return {"campaigns": CampaignsService(crm)}


@hookimpl
def crmkit_permissions() -> list[Permission]:
    return PERMISSIONS


@hookimpl
def crmkit_customer_export(crm: CRM, customer: Customer, session: Session) -> dict[str, Any]:
    return {"campaigns": customer_data.export(crm, session, customer)}


@hookimpl
def crmkit_customer_erase(crm: CRM, customer: Customer, session: Session) -> None:
    customer_data.erase(crm, session, customer.id)


@hookimpl
def crmkit_customers_merged_many(pairs: Mapping[int, int], session: Session) -> None:
    customer_data.merge_many(session, pairs)


@hookimpl
def crmkit_customer_profile(crm: CRM, customer: Customer, session: Session) -> dict[str, Any] | None:
    if not customer_data.profile_shown(crm, customer):
        return None
    return {"campaigns": customer_data.profile(session, customer.id, crm.now())}


@hookimpl
def crmkit_segment_fields(crm: CRM) -> dict[str, Any]:
    return customer_data.segment_fields(crm.now())


@hookimpl
def crmkit_interaction_logged(crm: CRM, interaction: Interaction, session: Session) -> None:
    crm.campaigns.tracking.interaction_logged(interaction, session)


@hookimpl(optionalhook=True)
def crmkit_order_placed(crm: CRM, order: Any, session: Session) -> None:
    crm.campaigns.tracking.order_placed(order, session)


@hookimpl(optionalhook=True)
def crmkit_service_csat_requested(crm: CRM, case: Any, link: str, session: Session) -> bool | str:
    return transactional.csat_requested(crm, case, link, session)


@hookimpl
def crmkit_demo_populate(crm: CRM, customer_ids: list[int], seed: int) -> None:
    demo.populate(crm, customer_ids, seed)


@hookimpl
def crmkit_demo_overview(crm: CRM) -> dict[str, list[str]]:
    return demo.overview(crm)
