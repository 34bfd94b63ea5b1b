"""The crmkit plugin contract for IDIC, and the privacy and merge duties on every IDIC table."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

import pytest

from crmkit.testing import PluginContract, add_user, customer_rows
from crmkit_idic import models as m

#: A day far enough ahead that every open plan item is due by then.
LATER = date(2100, 1, 1)


def _populate(crm: Any, customer_id: int) -> None:
    """Rows about the customer in every IDIC customer table (identifiers, review, do-not-merge, merge, profile, plan).

    Its partners — a record of the same person (merged), one sharing a phone (queued, then rejected) and one
    sharing an e-mail under another name (left in the queue) — get the customer's owner, so each pair is in
    exactly the scopes the customer is in.
    """
    me = crm.customers.get(customer_id)
    phone, email = f"0398{customer_id:06d}", f"pending.{customer_id}@example.org"
    crm.customers.update(customer_id, phones=[*me.phones, phone], emails=[*me.emails, email], consents={"sms": True})
    apart = crm.customers.add(name="Contract Other", phone=phone, owner=me.owner).id
    crm.customers.add(name="Contract Pending", email=email, owner=me.owner)
    twin = crm.customers.add(name=me.name, email=me.emails[0], owner=me.owner).id
    crm.idic.run()
    review = next(item["id"] for item in crm.idic.reviews(limit=1000) if item["other_id"] == apart)
    crm.idic.reject(review)
    assert crm.customers.get(twin).id == customer_id


def _ids(rows: list[Mapping[str, Any]], *keys: str) -> tuple[list[Mapping[str, Any]], list[int]]:
    """What a listing returned (its text is checked for leaked contact details) and the customers it names."""
    return rows, [row[key] for row in rows for key in keys]


def _section(crm: Any, customer_id: int) -> tuple[Any, list[int]]:
    section = crm.customers.profile(customer_id).sections.get("idic")
    return section, [customer_id] if section is not None else []


class TestIdicContract(PluginContract):
    plugin = "idic"
    merge_records = ("idic_merges",)  # IDIC's merge log names each merge's customers as they were
    rebuilt_tables = ("idic_profiles",)  # a run's tiers and needs: the next run profiles a restored customer

    def populate(self, crm: Any, customer_id: int) -> None:
        _populate(crm, customer_id)

    def permission_calls(self) -> Mapping[str, Callable[[Any, int], Any]]:
        return {
            "idic.run": lambda crm, cid: crm.idic.run(steps=["differentiate"]),
            "idic.review": lambda crm, cid: crm.idic.reviews(),
            "idic.read": lambda crm, cid: crm.idic.agenda(None, LATER),
            "idic.plan": lambda crm, cid: crm.idic.add_treatment("Mọi khách", message="Hỏi thăm"),
        }

    def scoped_calls(self) -> Mapping[str, Callable[[Any, int], Any]]:
        return {
            "reviews": lambda crm, cid: _ids(crm.idic.reviews(limit=1000), "customer_id", "other_id"),
            "rejected reviews": lambda crm, cid: _ids(
                crm.idic.reviews(status="rejected", limit=1000), "customer_id", "other_id"
            ),
            "merges": lambda crm, cid: _ids(crm.idic.merges(limit=1000), "kept_id"),
            "agenda": lambda crm, cid: crm.idic.agenda(None, LATER),
            "customer 360 section": _section,
            "export": lambda crm, cid: crm.customers.export_data(cid).get("idic"),
        }


@pytest.mark.crmkit_plugins("idic")
def test_a_later_merge_moves_every_idic_row_to_the_kept_customer(crm: Any) -> None:
    add_user(crm, "lan")
    keeper = crm.customers.add(name="Lý Thành Long", email="long@example.vn", owner="lan")
    _populate(crm, keeper.id)
    newcomer = crm.customers.add(name="Someone Else", email="else@example.vn")
    crm.idic.run()
    crm.customers.merge(newcomer.id, keeper.id)
    for table in (m.identifiers, m.reviews, m.do_not_merge, m.profiles, m.plan_items):
        assert customer_rows(crm, table, keeper.id) == 0, table.name
    assert customer_rows(crm, m.plan_items, newcomer.id) >= 1
    assert crm.customers.profile(newcomer.id).sections["idic"]["identifiers"]
