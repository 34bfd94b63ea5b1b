"""The crmkit plugin contract for IDIC, and the privacy and merge duties on every IDIC table."""

from __future__ import annotations

from typing import Any

import pytest

from crmkit.testing import PluginContract, customer_rows
from crmkit_idic import models as m


def _populate(crm: Any, customer_id: int) -> None:
    """Rows about the customer in every IDIC customer table (identifiers, review, do-not-merge, merge, profile, plan)."""
    other = crm.customers.add(name="Contract Other", phone="0903999000", consents={"sms": True}).id
    crm.customers.update(customer_id, phones=["0903999000"], owner="lan", consents={"sms": True})
    me = crm.customers.get(customer_id)
    twin = crm.customers.add(name=me.name, email=me.emails[0]).id
    crm.idic.run()
    review = crm.idic.reviews()[0]["id"]
    crm.idic.reject(review)
    assert crm.customers.get(twin).id == customer_id and other


class TestIdicContract(PluginContract):
    plugin = "idic"

    def populate(self, crm: Any, customer_id: int) -> None:
        _populate(crm, customer_id)


@pytest.mark.crmkit_plugins("idic")
def test_a_later_merge_moves_every_idic_row_to_the_kept_customer(crm: Any) -> None:
    keeper = crm.customers.add(name="Lý Thành Long", email="long@example.vn")
    _populate(crm, keeper.id)
    newcomer = crm.customers.add(name="Someone Else", email="else@example.vn")
    crm.idic.run()
    crm.customers.merge(newcomer.id, keeper.id)
    for table in (m.identifiers, m.reviews, m.do_not_merge, m.profiles, m.plan_items):
        assert customer_rows(crm, table, keeper.id) == 0, table.name
    assert customer_rows(crm, m.plan_items, newcomer.id) >= 1
    assert crm.customers.profile(newcomer.id).sections["idic"]["identifiers"]
