"""Where KPIs get their data, and whether it is there: the core, purchases, analytics, campaigns, recorded costs.

QCI requires no other plugin. Each KPI declares its source; a source that is not installed makes the
KPI "not available" with the distribution to install, never a zero. Purchases are read through the
``crmkit_value_transactions`` hook (published by crmkit-analytics, implemented by crmkit-sales or any
other purchase source), so QCI never imports another plugin's package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa

from crmkit import PluginError
from crmkit.core.types import Id, UTCDateTime

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
PURCHASES = Source("purchases", "purchases (crmkit_value_transactions)",
                   "crmkit-sales (its orders are the purchases; any plugin implementing crmkit_value_transactions works)")
ANALYTICS = Source("analytics", "crmkit-analytics", "crmkit-analytics")
CAMPAIGNS = Source("campaigns", "crmkit-campaigns", "crmkit-campaigns")
COSTS = Source("costs", "recorded costs (crmkit qci costs)")

#: Columns read from each purchase source; optional ones are NULL where a source lacks them.
_COLUMNS = {"customer_id": Id, "occurred_at": UTCDateTime(), "amount_minor": sa.BigInteger(),
            "currency": sa.String(), "margin_minor": sa.BigInteger(), "category": sa.String()}
_REQUIRED = ("customer_id", "occurred_at", "amount_minor", "currency")


def purchases(crm: CRM) -> sa.Subquery | None:
    """Every purchase source's rows as one subquery (``customer_id, occurred_at, amount_minor, currency,
    margin_minor, category``), or None when no enabled plugin provides purchases."""
    selects = []
    for source in crm.hooks.call("crmkit_value_transactions", crm=crm):
        if source is None:
            continue
        sub = source.subquery() if isinstance(source, sa.Select) else source
        columns = getattr(sub, "c", None)
        if columns is None or any(name not in columns for name in _REQUIRED):
            raise PluginError("?", "a purchase source must be a selectable with columns "
                              f"{', '.join(_REQUIRED)}", hook="crmkit_value_transactions")
        selects.append(sa.select(*(sa.type_coerce(columns[name] if name in columns else sa.null(), type_).label(name)
                                   for name, type_ in _COLUMNS.items())))
    if not selects:
        return None
    return (selects[0] if len(selects) == 1 else sa.union_all(*selects)).subquery("qci_purchases")


def available(crm: CRM, source: Source, purchases_subquery: Any = None) -> bool:
    """True when ``source`` can be read in this CRM (pass the purchases subquery when already built)."""
    if source.key == "purchases":
        return purchases_subquery is not None
    if source.key in ("analytics", "campaigns"):
        return crm.has_service(source.key)
    return True


def currency(crm: CRM) -> str:
    """The currency money KPIs are computed in: the ``qci.currency`` setting, else ``currency``, else VND.

    Amounts in other currencies are left out of money KPIs (never converted or added).
    """
    return str(crm.settings.get("qci.currency") or crm.settings.get("currency") or "VND").upper()


