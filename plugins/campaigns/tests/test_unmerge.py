"""Unmerge gives campaigns back what came from the merged customer: its messages (the one handed to the kept customer
at the merge included, recipient and all), their events and its suppressions."""

from __future__ import annotations

from datetime import timedelta

import campaigns_testkit as kit
import pytest

from .test_customer_data import rows_of

pytestmark = pytest.mark.crmkit_plugins("campaigns")


def test_unmerge_gives_back_messages_and_suppressions(shop):
    kept, merged = kit.people(shop, 2, prefix="Trùng")
    both = shop.campaigns.create("Tết", channel="email", body="Chào")
    shop.campaigns.run(both.id, now=kit.NOON)
    shop.campaigns.dispatch(now=kit.NOON)
    shop.customers.set_consent(kept.id, "email", False, source="tạm ngưng")
    only_merged = shop.campaigns.create("Riêng", channel="email", body="Chào")
    shop.campaigns.run(only_merged.id, now=kit.NOON + timedelta(hours=1))  # queued for the merged record only
    shop.customers.set_consent(kept.id, "email", True, source="đăng ký lại")
    shop.campaigns.suppress(customer_id=merged.id, channel="sms", reason="gọi điện xin dừng")
    merge = shop.customers.merge_many([(kept.id, merged.id)])[0]
    assert rows_of(shop, only_merged.id) == [(kept.id, kept.id)]
    assert [s["customer_id"] for s in shop.campaigns.suppressions()] == [kept.id]
    later = shop.campaigns.create("Sau khi gộp", channel="email", body="x")
    shop.campaigns.run(later.id, now=kit.NOON + timedelta(days=1))

    done = shop.customers.unmerge(merge.id)

    assert done.rows_moved_back["campaign_messages"] == 2 + 1  # two rows, and the recipient of the one handed over
    assert rows_of(shop, both.id) == [(kept.id, kept.id), (merged.id, merged.id)]
    assert rows_of(shop, only_merged.id) == [(merged.id, merged.id)]
    assert rows_of(shop, later.id) == [(kept.id, kept.id)]  # made after the merge: the kept customer's
    assert [s["customer_id"] for s in shop.campaigns.suppressions()] == [merged.id]
    assert shop.customers.profile(merged.id).sections["campaigns"]["messages_received"] == 1
