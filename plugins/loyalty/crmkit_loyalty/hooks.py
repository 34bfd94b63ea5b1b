"""The loyalty plugin's hook implementations: thin calls into ``crm.loyalty`` (the service) and the demo."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crmkit import hookimpl
from crmkit.plugin_api import SegmentField
from crmkit_loyalty import demo
from crmkit_loyalty.models import members, programs, tiers
from crmkit_loyalty.permissions import PERMISSIONS
from crmkit_loyalty.service import LoyaltyService, referral_fields

if TYPE_CHECKING:
    from collections.abc import Mapping

    from marshmallow import fields
    from sqlalchemy.orm import Session

    from crmkit import Permission
    from crmkit.crm import CRM
    from crmkit.plugin_api import Customer


@hookimpl
def crmkit_services(crm: CRM) -> dict[str, Any]:
    return {"loyalty": LoyaltyService(crm)}


@hookimpl
def crmkit_permissions() -> list[Permission]:
    return list(PERMISSIONS)


@hookimpl
def crmkit_customer_fields() -> dict[str, fields.Field]:
    return referral_fields()


@hookimpl
def crmkit_customer_before_save(crm: CRM, customer: Customer | None, changes: dict[str, Any], session: Session) -> None:
    crm.loyalty.check_referrer(customer, changes, session)


@hookimpl
def crmkit_customer_created(crm: CRM, customer: Customer, session: Session) -> None:
    crm.loyalty.customer_created(customer.id, session)


@hookimpl
def crmkit_order_discounts(crm: CRM, order_draft: Any, codes: Any, session: Session) -> list[dict[str, Any]]:
    return crm.loyalty.orders.discounts(order_draft, codes, session)


@hookimpl
def crmkit_order_placed(crm: CRM, order: Any, session: Session) -> None:
    crm.loyalty.orders.use_vouchers(order, session)
    crm.loyalty.orders.earn(order, session)


@hookimpl
def crmkit_order_refunded(crm: CRM, order: Any, refund: Any, session: Session) -> None:
    crm.loyalty.orders.refund(order, refund, session)


@hookimpl
def crmkit_order_cancelled(crm: CRM, order: Any, session: Session) -> None:
    crm.loyalty.orders.return_vouchers(order, session)
    crm.loyalty.orders.cancel(order, session)


@hookimpl
def crmkit_customers_merged_many(crm: CRM, pairs: Mapping[int, int], session: Session) -> None:
    crm.loyalty.merge_members_many(pairs, session)


@hookimpl
def crmkit_customer_unmerged(crm: CRM, kept: Customer, restored: Customer, session: Session) -> None:
    crm.loyalty.unmerge_members(kept.id, restored.id, session)


@hookimpl
def crmkit_customer_export(crm: CRM, customer: Customer, session: Session) -> dict[str, Any]:
    return {"loyalty": crm.loyalty.export(customer.id, session)}


@hookimpl
def crmkit_customer_erase(crm: CRM, customer: Customer, session: Session) -> None:
    crm.loyalty.erase(customer.id, session)


@hookimpl
def crmkit_customer_profile(crm: CRM, customer: Customer, session: Session) -> dict[str, Any] | None:
    sections = crm.loyalty.profile(customer.id, session)
    return {"loyalty": sections} if sections else None


@hookimpl
def crmkit_segment_fields(crm: CRM) -> dict[str, Any]:
    fields = crm.loyalty.segment_fields()
    # An enumerated field: a tier code that does not exist is refused (closest suggested), not matched by nobody.
    fields["loyalty_tier"] = SegmentField(fields["loyalty_tier"], choices=lambda: _tier_codes(crm))
    return fields


def _tier_codes(crm: CRM) -> tuple[str, ...]:
    """The tier codes of the default program (the one ``loyalty_tier`` reads), lowest first."""
    default = sa.select(sa.func.min(programs.c.id)).scalar_subquery()
    with crm.reading() as conn:
        return tuple(
            conn.execute(sa.select(tiers.c.code).where(tiers.c.program_id == default).order_by(tiers.c.rank)).scalars()
        )


@hookimpl(optionalhook=True)
def crmkit_service_customer_group(customer_id: int, session: Session) -> str | None:
    """A member's tier code in the default program (``diamond``) is their group for the service plugin's SLAs."""
    default = sa.select(sa.func.min(programs.c.id)).scalar_subquery()
    return (
        session.connection()
        .execute(sa.select(members.c.tier).where(members.c.program_id == default, members.c.customer_id == customer_id))
        .scalar()
    )


@hookimpl
def crmkit_demo_populate(crm: CRM, customer_ids: list[int], seed: int) -> None:
    demo.populate(crm, customer_ids, seed)


@hookimpl
def crmkit_demo_overview(crm: CRM) -> dict[str, list[str]]:
    return demo.overview(crm)
