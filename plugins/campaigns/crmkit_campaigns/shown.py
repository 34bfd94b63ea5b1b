"""Contact details in what the campaigns service returns, as the acting user may see them.

Messages and suppression entries carry an ``address`` (where a message went, what is suppressed);
a user without ``customers.contact_details`` over the customer's owner gets it masked
(``l***@example.vn``, ``+84 9** *** 678``) — also where a provider's error repeats it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from crmkit.plugin_api import mask_sender

if TYPE_CHECKING:
    from crmkit.crm import CRM

#: Columns that may hold a message's or an entry's address in other words (a provider's error).
_TEXTS = ("last_error", "reason")


def masked_row(row: Mapping[str, Any], addresses: Iterable[str | None] = ()) -> dict[str, Any]:
    """``row`` with its ``address`` masked, and that address (and ``addresses``) hidden in its texts."""
    shown = dict(row)
    hidden = {a for a in (row.get("address"), *addresses) if a}
    if shown.get("address"):
        shown["address"] = mask_sender(shown["address"])
    for column in _TEXTS:
        text = shown.get(column)
        if isinstance(text, str):
            for address in hidden:
                text = text.replace(address, mask_sender(address) or "")
            shown[column] = text
    if isinstance(shown.get("detail"), Mapping):
        shown["detail"] = {k: _hide(v, hidden) for k, v in shown["detail"].items()}
    return shown


def _hide(value: Any, addresses: set[str]) -> Any:
    if not isinstance(value, str):
        return value
    for address in addresses:
        value = value.replace(address, mask_sender(address) or "")
    return value


def shown_rows(crm: CRM, rows: Iterable[Mapping[str, Any]], owner: str = "owner") -> list[dict[str, Any]]:
    """Rows (each with the customer's owner in column ``owner``, dropped here) as the acting user may see them."""
    everything = crm.access.contact_owners() is None
    shown = []
    for row in rows:
        data = {k: v for k, v in row.items() if k != owner}
        shown.append(data if everything or crm.access.sees_contacts_of(row[owner]) else masked_row(data))
    return shown
