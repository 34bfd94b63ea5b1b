"""Where KPIs get their data, and whether it is there: the core, purchases, analytics, campaigns, recorded costs.

QCI requires no other plugin. Each KPI declares its source; a source that is not installed makes the
KPI "not available" with the distribution to install, never a zero. Purchases are read through
``crmkit.purchases`` (the core's ``crmkit_value_transactions`` hook, implemented by crmkit-sales or any
other purchase source), so QCI never imports another plugin's package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa

from crmkit.plugin_api import has_purchases
from crmkit.plugin_api import purchases as all_purchases

if TYPE_CHECKING:
    from crmkit import CRM


@attrs.frozen
class Source:
    """A data source a KPI reads: its name as shown, and what to install when it is missing."""

    key: str
    name: str
    install: str | None = None  # the distribution(s) that provide it; None for the core and QCI itself


CORE = Source("core", "core (customers, interactions)")
DUPLICATES = Source("duplicates", "core duplicate detection")
PURCHASES = Source(
    "purchases",
    "purchases (crmkit_value_transactions)",
    "crmkit-sales (its orders are the purchases; any plugin implementing crmkit_value_transactions works)",
)
ANALYTICS = Source("analytics", "crmkit-analytics", "crmkit-analytics")
CAMPAIGNS = Source("campaigns", "crmkit-campaigns", "crmkit-campaigns")
COSTS = Source("costs", "recorded costs (crmkit qci costs)")
#: Case data through the ``crmkit_service_case_stats`` hook (crmkit-service implements it).
CASES = Source(
    "cases",
    "case data (crmkit_service_case_stats)",
    "crmkit-service (any plugin implementing crmkit_service_case_stats works)",
)


def purchases(crm: CRM) -> sa.Subquery | None:
    """Every purchase source's rows as one subquery (``crmkit.purchases``), or None when no enabled plugin
    provides purchases."""
    return all_purchases(crm) if has_purchases(crm) else None


def available(crm: CRM, source: Source, purchases_subquery: Any = None) -> bool:
    """True when ``source`` can be read in this CRM (pass the purchases subquery when already built)."""
    if source.key == "purchases":
        return purchases_subquery is not None
    if source.key in ("analytics", "campaigns"):
        return crm.has_service(source.key)
    if source.key == "cases":
        return crm.hooks.has_implementations("crmkit_service_case_stats")
    return True


def currency(crm: CRM) -> str:
    """The currency money KPIs are computed in: the ``qci.currency`` setting, else ``currency``, else VND.

    Amounts in other currencies are left out of money KPIs (never converted or added).
    """
    return str(crm.settings.get("qci.currency") or crm.settings.get("currency") or "VND").upper()
