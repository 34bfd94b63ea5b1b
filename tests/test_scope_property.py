"""The scope property over the core's own entry points: as any user, nothing outside their scope is
returned, and no contact detail they may not see (``crmkit.testing.check_scopes``, hypothesis)."""

from __future__ import annotations

from typing import Any

from crmkit.testing import check_scopes


def _populate(crm: Any, customer_id: int) -> None:
    """An interaction sent from the customer's own address, so masking of senders is checked too."""
    customer = crm.customers.get(customer_id)
    crm.interactions.log(customer_id, "email", sender=customer.email, subject="Hỏi giá")
    crm.interactions.log(customer_id, "sms", sender=customer.phone, subject="Xác nhận")


def _pairs(pairs: Any) -> list[int]:
    return [x for pair in pairs for x in (pair.customer_id, pair.other_id)]


CORE_CALLS = {
    "customers.find (list)": lambda crm, cid: crm.customers.find(limit=1000),
    "customers.find (search)": lambda crm, cid: crm.customers.find("khach the gioi", limit=1000),
    "customers.find (phone search)": lambda crm, cid: crm.customers.find("+849", limit=1000),
    "customers.get": lambda crm, cid: crm.customers.get(cid),
    "customers.profile": lambda crm, cid: crm.customers.profile(cid),
    "customers.duplicates": lambda crm, cid: [cid, *(d.other_id for d in crm.customers.duplicates(cid))],
    "customers.duplicate_pairs": lambda crm, cid: _pairs(crm.customers.duplicate_pairs()),
    "customers.export_data": lambda crm, cid: {"customer_id": cid, "data": crm.customers.export_data(cid)},
    "interactions.timeline": lambda crm, cid: crm.interactions.timeline(cid),
    "interactions.counts": lambda crm, cid: [cid] if crm.interactions.counts(cid) else [],
    "interactions.get": lambda crm, cid: crm.interactions.get(crm.interactions.timeline(cid).items[0].id),
    "audit.entries": lambda crm, cid: crm.audit.entries(limit=1000),
}


def test_every_core_listing_search_profile_and_export_shows_exactly_the_users_scope(crm: Any) -> None:
    check_scopes(crm, CORE_CALLS, _populate, examples=12)
