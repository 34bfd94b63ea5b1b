"""Campaigns' part of the cross-cutting duties: the contract (export / erase / migrations), merges, customer 360,
and the segment fields it contributes."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

import campaigns_testkit as kit
from crmkit.testing import PluginContract
from crmkit_campaigns import models as m


class TestCampaignsContract(PluginContract):
    plugin = "campaigns"

    def populate(self, crm, customer_id):
        kit.outbox(crm, "/tmp/crmkit-campaigns-contract")
        crm.customers.set_consent(customer_id, "email", True, source="test")
        campaign = crm.campaigns.create("Hợp đồng", channel="email", body="Chào")
        crm.campaigns.run(campaign.id, now=kit.NOON)
        crm.campaigns.dispatch(now=kit.NOON)
        (message,) = crm.campaigns.messages(campaign.id)
        crm.campaigns.tracking.record(message["id"], "opened")
        crm.campaigns.suppress(customer_id=customer_id, channel="sms", reason="không nhận SMS")


pytestmark = pytest.mark.crmkit_plugins("campaigns")


def test_merge_re_points_messages_and_the_kept_customer_is_not_messaged_twice(shop):
    kept, merged = kit.people(shop, 2)
    campaign = shop.campaigns.create("Tết", channel="email", body="Chào")
    shop.campaigns.run(campaign.id, now=kit.NOON)
    shop.campaigns.dispatch(now=kit.NOON)
    shop.customers.merge(kept.id, merged.id)
    with shop.reading() as conn:
        rows = conn.execute(sa.select(m.messages.c.customer_id, m.messages.c.recipient_id)
                            .where(m.messages.c.campaign_id == campaign.id).order_by(m.messages.c.id)).all()
    assert rows == [(kept.id, kept.id), (kept.id, merged.id)]  # both sends are history, now on one customer
    second = shop.campaigns.create("Lần hai", channel="email", body="x")
    assert shop.campaigns.run(second.id, now=kit.NOON + timedelta(days=1)).queued == 1
    profile = shop.customers.profile(kept.id).sections["campaigns"]
    assert profile["messages_received"] == 2 and len(profile["latest_messages"]) == 2


def test_segment_fields_count_recent_messages(shop):
    kit.people(shop, 3)
    campaign = shop.campaigns.create("Tết", channel="email", body="Chào")
    from crmkit.core.types import utcnow

    now = utcnow()
    shop.campaigns.run(campaign.id, now=now)
    assert shop.campaigns.segments.count(expression="messages_received_90d = 0") == 3  # queued is not received
    shop.campaigns.dispatch(now=now)
    assert shop.campaigns.segments.count(expression="messages_received_90d >= 1 and last_campaign_at >= today") == 3
    assert shop.campaigns.segments.count(expression="last_campaign_at is null") == 0
