"""Purchase history: every plugin's purchases (``crmkit_value_transactions``) as one SQL subquery.

Sales implements the hook for its orders; a POS or e-shop connector can too. Analytics, loyalty,
campaigns and QCI read purchases only through :func:`purchases`, so none of them depends on another
and all of them count the same purchases.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crmkit.core.types import Id, UTCDateTime
from crmkit.errors import PluginError

if TYPE_CHECKING:
    from crmkit.crm import CRM

HOOK = "crmkit_value_transactions"
#: Columns every source must have.
REQUIRED = ("customer_id", "occurred_at", "amount_minor", "currency")
#: The subquery's columns and types; an optional column a source lacks reads as NULL.
COLUMNS = {
    "customer_id": Id,
    "occurred_at": UTCDateTime(),
    "amount_minor": sa.BigInteger(),
    "currency": sa.String(),
    "margin_minor": sa.BigInteger(),
    "category": sa.String(),
    "channel": sa.String(),
}

_built: weakref.WeakKeyDictionary[CRM, sa.Subquery] = weakref.WeakKeyDictionary()


def purchases(crm: CRM) -> sa.Subquery:
    """Every source's transactions as one subquery with the columns of :data:`COLUMNS` (no row when no enabled
    plugin provides purchases: see :func:`has_purchases`).

    The sources are asked once per CRM and the subquery reused: their selectables do not change while it is open.
    """
    if crm not in _built:
        _built[crm] = _union(crm)
    return _built[crm]


def has_purchases(crm: CRM) -> bool:
    """True when an enabled plugin provides purchases (implements ``crmkit_value_transactions``)."""
    return crm.hooks.has_implementations(HOOK)


def _union(crm: CRM) -> sa.Subquery:
    selects = [_normalized(plugin, source) for plugin, source in crm.hooks.call_each(HOOK) if source is not None]
    if not selects:
        return (
            sa.select(*(sa.cast(sa.null(), type_).label(name) for name, type_ in COLUMNS.items()))
            .where(sa.false())
            .subquery("purchases")
        )
    return (selects[0] if len(selects) == 1 else sa.union_all(*selects)).subquery("purchases")


def _normalized(plugin: str, source: Any) -> sa.Select[Any]:
    """One source as a SELECT of exactly :data:`COLUMNS`; a malformed one is blamed on its plugin."""
    table = source.subquery() if isinstance(source, sa.Select) else source
    columns = getattr(table, "c", None)
    if columns is None:
        raise PluginError(plugin, f"returned {type(source).__name__}, not a SQLAlchemy selectable", hook=HOOK)
    missing = [name for name in REQUIRED if name not in columns]
    if missing:
        raise PluginError(
            plugin, f"its purchases lack column(s) {', '.join(missing)} (it has {', '.join(columns.keys())})", hook=HOOK
        )
    return sa.select(
        *(
            (sa.type_coerce(columns[name], type_) if name in columns else sa.cast(sa.null(), type_)).label(name)
            for name, type_ in COLUMNS.items()
        )
    )
