"""Campaigns' part of the cross-cutting duties: the contract (export / erase / migrations), merges, customer 360,
and the segment fields it contributes."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import campaigns_testkit as kit
import pytest
import sqlalchemy as sa

from crmkit.testing import PluginContract
from crmkit_campaigns import models as m


def _exported(crm, name):
    """A segment's export, parsed: one row per customer (with ``customer_id``, as the contract finds them)."""
    out = io.StringIO()
    crm.campaigns.segments.export(out, name)
    return [{"customer_id": int(r["id"]), **r} for r in csv.DictReader(io.StringIO(out.getvalue()))]


def _profile_section(crm, customer_id):
    sections = crm.customers.profile(customer_id).sections
    return {"customer_id": customer_id, "campaigns": sections["campaigns"]} if "campaigns" in sections else None


class TestCampaignsContract(PluginContract):
    plugin = "campaigns"
    #: e-mail goes to an in-memory adapter: nothing is written outside the test database
    with_plugins = (kit.adapter_plugin({"email": kit.MemoryAdapter(name="memory", address_kind="email")}),)

    def populate(self, crm, customer_id):
        """Per customer: a segment of them alone and a campaign to it, sent and opened; a suppression with their e-mail."""
        crm.campaigns.configure("quiet_hours", "")
        crm.customers.set_consent(customer_id, "email", True, source="test")
        segment = crm.campaigns.segments.create(f"Khách {customer_id}", f"id = {customer_id}")
        campaign = crm.campaigns.create(
            f"Hợp đồng {customer_id}",
            channel="email",
            segment=segment.id,
            subject="Chào {{ email }}",
            body="Chào {{ name }} ({{ email }}, {{ phone }})",
        )
        crm.campaigns.run(campaign.id, now=kit.NOON)
        crm.campaigns.dispatch(now=kit.NOON)
        (message,) = crm.campaigns.messages(campaign.id)
        crm.campaigns.tracking.record(message["id"], "opened")
        email = crm.customers.get(customer_id).email
        crm.campaigns.suppress(customer_id=customer_id, address=email, channel="sms", reason="không nhận SMS")

    def permission_calls(self):
        return {
            "campaigns.read": lambda crm, cid: crm.campaigns.messages(f"Hợp đồng {cid}"),
            "campaigns.manage": lambda crm, cid: crm.campaigns.create(f"Mới {cid}", channel="email", body="Chào"),
            "campaigns.send": lambda crm, cid: crm.campaigns.run(f"Hợp đồng {cid}"),
            "campaigns.reports.read": lambda crm, cid: crm.campaigns.report(f"Hợp đồng {cid}"),
            "campaigns.segments.read": lambda crm, cid: crm.campaigns.segments.count(f"Khách {cid}"),
            "campaigns.segments.manage": lambda crm, cid: crm.campaigns.segments.create(f"Mới {cid}", "age > 30"),
            "campaigns.segments.export": lambda crm, cid: _exported(crm, f"Khách {cid}"),
            "campaigns.channels.manage": lambda crm, cid: crm.campaigns.channel_list(),
            "campaigns.suppressions.manage": lambda crm, cid: crm.campaigns.suppress(customer_id=cid, reason="x"),
        }

    def scoped_calls(self):
        return {
            # a count exposes the customer it counted: the segment holds this one customer only
            "segment count": lambda crm, cid: [cid] * crm.campaigns.segments.count(f"Khách {cid}"),
            "segment count of an expression": lambda crm, cid: [cid]
            * crm.campaigns.segments.count(expression=f"id = {cid} and has email"),
            "segment sample": lambda crm, cid: [
                {"customer_id": r["id"], **r} for r in crm.campaigns.segments.sample(f"Khách {cid}")
            ],
            "segment export": lambda crm, cid: _exported(crm, f"Khách {cid}"),
            "campaign messages": lambda crm, cid: crm.campaigns.messages(f"Hợp đồng {cid}"),
            "campaign preview": lambda crm, cid: crm.campaigns.preview(f"Hợp đồng {cid}", cid),
            "campaign report": lambda crm, cid: [cid] * crm.campaigns.report(f"Hợp đồng {cid}").audience,
            "campaign comparison": lambda crm, cid: [cid] * crm.campaigns.compare([f"Hợp đồng {cid}"])[0].treated.sent,
            "suppression list": lambda crm, cid: crm.campaigns.suppressions(limit=1000),
            "customer 360 section": _profile_section,
            "customer data export section": lambda crm, cid: crm.customers.export_data(cid)["campaigns"],
        }


pytestmark = pytest.mark.crmkit_plugins("campaigns")


def rows_of(crm, campaign_id):
    """The campaign's messages as (customer, recipient), in that order: a run queues its messages in no set order."""
    with crm.reading() as conn:
        return conn.execute(
            sa.select(m.messages.c.customer_id, m.messages.c.recipient_id)
            .where(m.messages.c.campaign_id == campaign_id)
            .order_by(m.messages.c.customer_id, m.messages.c.recipient_id)
        ).all()


def test_merge_re_points_messages_and_the_kept_customer_is_not_messaged_twice(shop):
    kept, merged = kit.people(shop, 2, prefix="Trùng")
    both = shop.campaigns.create("Tết", channel="email", body="Chào")
    shop.campaigns.run(both.id, now=kit.NOON)
    shop.campaigns.dispatch(now=kit.NOON)
    shop.customers.set_consent(kept.id, "email", False, source="tạm ngưng")
    only_merged = shop.campaigns.create("Riêng", channel="email", body="Chào")
    shop.campaigns.run(only_merged.id, now=kit.NOON + timedelta(hours=1))  # queued for the merged record only
    shop.customers.set_consent(kept.id, "email", True, source="đăng ký lại")
    shop.customers.merge(kept.id, merged.id)
    assert rows_of(shop, both.id) == [(kept.id, kept.id), (kept.id, merged.id)]  # both sends stay history
    assert rows_of(shop, only_merged.id) == [(kept.id, kept.id)]  # the person got it: the row is theirs now
    assert shop.campaigns.run(only_merged.id, now=kit.NOON + timedelta(days=1)).queued == 0  # not queued again
    assert shop.campaigns.dispatch(now=kit.NOON + timedelta(days=1)).sent == 1
    second = shop.campaigns.create("Lần hai", channel="email", body="x")
    assert shop.campaigns.run(second.id, now=kit.NOON + timedelta(days=1)).queued == 1
    profile = shop.customers.profile(kept.id).sections["campaigns"]
    assert profile["messages_received"] == 3 and len(profile["latest_messages"]) == 3


def test_a_batch_merge_hands_the_first_record_s_message_to_the_kept_customer_and_keeps_the_second(shop):
    kept, first, second = kit.people(shop, 3, prefix="Trùng")
    shop.customers.set_consent(kept.id, "email", False, source="tạm ngưng")
    campaign = shop.campaigns.create("Riêng", channel="email", body="Chào")
    shop.campaigns.run(campaign.id, now=kit.NOON)  # queued for both duplicates, not for the kept record
    shop.customers.set_consent(kept.id, "email", True, source="đăng ký lại")
    shop.customers.merge_many([(kept.id, first.id), (kept.id, second.id)])
    # as merging pair by pair: the first record's row becomes the kept customer's, the second keeps its recipient
    assert rows_of(shop, campaign.id) == [(kept.id, kept.id), (kept.id, second.id)]
    assert shop.campaigns.run(campaign.id, now=kit.NOON + timedelta(days=1)).queued == 0


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
