"""The plugin's hook implementations: thin glue between crmkit's events and ``crm.qci``.

QCI keeps no data about customers (its tables hold assessments, KPI targets, actions and costs,
naming employees only), so the right-of-access export says so and erasure has nothing to remove.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crmkit import Permission, hookimpl
from crmkit_qci.permissions import PERMISSIONS
from crmkit_qci.service import QCIService

if TYPE_CHECKING:
    from crmkit import CRM, Customer

PRIVACY_NOTE = (
    "crmkit-qci stores no personal data about customers: its tables hold assessments, KPI targets, "
    "action plans and costs, and name employees only (assessors, action owners)."
)


@hookimpl
def crmkit_permissions() -> list[Permission]:
    """QCI's permissions: assessing and planning are about the business (all or nothing); reading is scoped,
    so a user's scorecard counts only the customers their scope reaches (see the README's "Permissions")."""
    return list(PERMISSIONS)


@hookimpl
def crmkit_services(crm: CRM) -> dict[str, Any]:
    return {"qci": QCIService(crm)}


@hookimpl
def crmkit_customer_export(customer: Customer) -> dict[str, Any]:
    return {"qci": {"note": PRIVACY_NOTE}}


@hookimpl
def crmkit_customer_erase(customer: Customer) -> None:
    """Nothing to erase: no QCI table references a customer (see ``PRIVACY_NOTE``)."""


@hookimpl
def crmkit_demo_populate(crm: CRM, seed: int) -> None:
    from crmkit_qci.demo import populate

    populate(crm, seed)


@hookimpl
def crmkit_demo_overview(crm: CRM) -> dict[str, list[str]]:
    return crm.qci.overview()
