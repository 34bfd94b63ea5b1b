"""Campaigns obey identity and permissions: segment counts, samples and exports of a user's scope, runs that
target only the customers in the runner's scope, scheduled runs with the scheduler's scope, scoped reports,
masked addresses, campaign owners as users, channel settings and the tracking routes acting as the system."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import campaigns_testkit as kit
import pytest
import sqlalchemy as sa

from crmkit import NotFound, PermissionDenied, ValidationError
from crmkit.testing import add_user
from crmkit_campaigns import models as m
from crmkit_campaigns.permissions import PERMISSIONS

pytestmark = pytest.mark.crmkit_plugins("campaigns")

#: Every campaigns permission with the scope a branch's marketer has: the branch's customers.
TEAM_MARKETING = {p.name: ("team" if p.scoped else "all") for p in PERMISSIONS}


@pytest.fixture
def branches(shop):
    """Hà Nội (Lan, and Mai its marketer) and Sài Gòn (Hoa): three customers of Lan, two of Hoa, one unowned,
    all in Hà Nội city with e-mail consent. Mai has every campaigns permission over her team, reads the
    team's customers and sees no contact details."""
    add_user(shop, "lan", teams=["HN"], roles=["sales"])
    add_user(shop, "hoa", teams=["SG"], roles=["sales"])
    add_user(shop, "mai", teams=["HN"], grants={**TEAM_MARKETING, "customers.read": "team"})
    people = {
        "lan": kit.people(shop, 3, prefix="Lan", owner="lan"),
        "hoa": kit.people(shop, 2, prefix="Hoa", owner="hoa"),
        None: kit.people(shop, 1, prefix="Chung"),
    }
    return shop, people


def ids(customers):
    return sorted(c.id for c in customers)


def test_a_team_marketer_counts_samples_and_exports_only_the_team_s_customers(branches):
    crm, people = branches
    crm.campaigns.segments.create("Hà Nội", 'city = "Hà Nội"')
    mai = crm.as_user("mai")
    assert crm.campaigns.segments.count("Hà Nội") == 6
    assert mai.campaigns.segments.count("Hà Nội") == 3  # Lan's: the unowned one and Sài Gòn's are not hers to see
    assert mai.campaigns.segments.count(expression='owner = "hoa"') == 0
    sample = mai.campaigns.segments.sample("Hà Nội", limit=100)
    assert sorted(r["id"] for r in sample) == ids(people["lan"])
    assert all(r["email"].startswith("l***@") for r in sample)  # no contact details for Mai: masked
    out = io.StringIO()
    assert mai.campaigns.segments.export(out, "Hà Nội") == 3
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert sorted(int(r["id"]) for r in rows) == ids(people["lan"])
    assert {r["email"] for r in rows} == {"l***@example.vn"}
    lan = crm.as_user("lan")  # a salesperson may not count segments at all
    with pytest.raises(PermissionDenied) as refused:
        lan.campaigns.segments.count("Hà Nội")
    assert refused.value.permission == "campaigns.segments.read"


def test_a_user_without_campaigns_send_cannot_run_or_schedule_a_campaign(branches):
    crm, _ = branches
    add_user(crm, "thu", grants={"campaigns.read": "all", "campaigns.manage": "all"})
    thu = crm.as_user("thu")
    campaign = thu.campaigns.create("Tết", channel="email", body="Chúc mừng năm mới")
    assert campaign.owner == "thu"  # who creates it owns it
    for refused_call in (
        lambda: thu.campaigns.run(campaign.id),
        lambda: thu.campaigns.schedule(campaign.id),
        lambda: thu.campaigns.dispatch(),
        lambda: thu.campaigns.run_due(),
    ):
        with pytest.raises(PermissionDenied) as refused:
            refused_call()
        assert refused.value.permission == "campaigns.send"
    assert crm.campaigns.get(campaign.id).status == "draft"
    assert thu.campaigns.messages(campaign.id) == []  # nothing was prepared
    denied = crm.audit.entries(entity="permission", limit=10).items
    assert {e.entity_id for e in denied} == {"campaigns.send"} and {e.actor for e in denied} == {"thu"}
    add_user(crm, "reader", roles=["read-only"])
    with pytest.raises(PermissionDenied, match="campaigns.send"):
        crm.as_user("reader").campaigns.run(campaign.id)


def test_a_run_by_a_team_user_targets_only_the_team_and_dispatch_sends_what_was_prepared(branches):
    crm, people = branches
    campaign = crm.campaigns.create("Tết", channel="email", body="Chào {{ first_name }}")
    result = crm.as_user("mai").campaigns.run(campaign.id, now=kit.NOON)
    assert (result.audience, result.queued) == (3, 3)
    assert crm.campaigns.dispatch(now=kit.NOON).sent == 3  # the worker (system) sends what Mai prepared
    sent = crm.campaigns.messages(campaign.id)
    assert sorted(r["customer_id"] for r in sent) == ids(people["lan"])
    with crm.reading() as conn:
        assert conn.execute(sa.select(m.runs.c.actor)).scalar_one() == "mai"
    assert crm.campaigns.get(campaign.id).status == "done"  # what was prepared is all it sends


def test_a_scheduled_campaign_runs_with_the_scope_of_who_scheduled_it(branches):
    crm, people = branches
    mai = crm.as_user("mai")
    campaign = mai.campaigns.create("Tết", channel="email", body="Chào {{ first_name }}")
    assert mai.campaigns.schedule(campaign.id, kit.NOON).scheduled_by == "mai"
    due = crm.campaigns.run_due(now=kit.NOON + timedelta(minutes=5))  # cron runs as the system
    assert not due.errors and [r.queued for r in due.runs] == [3]
    assert sorted(r["customer_id"] for r in crm.campaigns.messages(campaign.id)) == ids(people["lan"])
    later = mai.campaigns.create("Trung thu", channel="email", body="Chào")
    mai.campaigns.schedule(later.id, kit.NOON)
    crm.users.disable("mai")
    due = crm.campaigns.run_due(now=kit.NOON + timedelta(minutes=10))
    assert list(due.errors) == ["Trung thu"] and "disabled" in due.errors["Trung thu"]
    assert crm.campaigns.messages(later.id) == []


def test_messages_previews_and_suppressions_show_the_scope_with_addresses_masked(branches):
    crm, people = branches
    campaign = crm.campaigns.create("Tết", channel="email", subject="Gửi {{ email }}", body="Chào {{ email }}")
    crm.campaigns.run(campaign.id, now=kit.NOON)
    crm.campaigns.dispatch(now=kit.NOON)
    lan_customer, hoa_customer = people["lan"][0], people["hoa"][0]
    crm.campaigns.suppress(customer_id=hoa_customer.id, address=hoa_customer.email, channel="sms", reason="không SMS")
    crm.campaigns.suppress(customer_id=lan_customer.id, address=lan_customer.email, channel="sms", reason="không SMS")
    mai = crm.as_user("mai")
    shown = mai.campaigns.messages(campaign.id)
    assert sorted(r["customer_id"] for r in shown) == ids(people["lan"])
    assert {r["address"] for r in shown} == {"l***@example.vn"}
    assert [(r["customer_id"], r["address"]) for r in mai.campaigns.suppressions()] == [
        (lan_customer.id, "l***@example.vn")
    ]
    preview = mai.campaigns.preview(campaign.id, lan_customer.id)
    assert preview.to == "l***@example.vn" and lan_customer.email not in preview.text + (preview.subject or "")
    assert "l***@example.vn" in preview.text
    with pytest.raises(NotFound):
        mai.campaigns.preview(campaign.id, hoa_customer.id)  # outside her scope: as if absent
    lan = crm.as_user("lan")  # Lan sees her own customers' contact details, but has no campaigns.read
    with pytest.raises(PermissionDenied, match="campaigns.read"):
        lan.campaigns.messages(campaign.id)
    add_user(crm, "quan", teams=["HN"], roles=["manager"])  # a manager sees the team's contact details
    assert {r["address"] for r in crm.as_user("quan").campaigns.messages(campaign.id)} == {
        c.email for c in people["lan"]
    }
    data = crm.as_user("quan").customers.export_data(lan_customer.id)["campaigns"]
    assert data["campaign_messages"][0]["address"] == lan_customer.email


def test_export_data_masks_campaign_addresses_without_contact_details(branches):
    crm, people = branches
    campaign = crm.campaigns.create("Tết", channel="email", body="Chào")
    crm.campaigns.run(campaign.id, now=kit.NOON)
    crm.campaigns.dispatch(now=kit.NOON)
    customer = people["lan"][0]
    crm.campaigns.suppress(customer_id=customer.id, address=customer.email, reason="không nhận")
    add_user(crm, "kiem", grants={"customers.read": "all", "customers.export": "all"})
    section = crm.as_user("kiem").customers.export_data(customer.id)["campaigns"]
    assert section["campaign_messages"][0]["address"] == "l***@example.vn"
    assert section["campaign_suppressions"][0]["address"] == "l***@example.vn"
    assert customer.email not in repr(section)


def test_a_report_as_a_team_user_counts_only_the_team_and_says_so(branches):
    crm, people = branches
    campaign = crm.campaigns.create(
        "Tết", channel="email", body="Chào", cost_fixed_minor=1_000_000, cost_per_message_minor=500
    )
    crm.campaigns.run(campaign.id, now=kit.NOON)
    crm.campaigns.dispatch(now=kit.NOON)
    everyone = crm.campaigns.report(campaign.id)
    assert (everyone.audience, everyone.treated.sent, everyone.cost_minor) == (6, 6, 1_003_000)
    assert not everyone.scoped and everyone.scoped_to is None
    team = crm.as_user("mai").campaigns.report(campaign.id)
    assert (team.audience, team.treated.sent, team.cost_minor) == (3, 3, 1_500)  # no share of the fixed cost
    assert team.scoped and team.scoped_to == "mai"
    add_user(crm, "reader", roles=["read-only"])  # read-only reads every customer's figures
    assert crm.as_user("reader").campaigns.compare()[0].audience == 6


def test_campaign_owners_are_users_and_manage_reaches_the_team_s_campaigns(branches):
    crm, _ = branches
    with pytest.raises(ValidationError, match="owner: no user 'khong.co'"):
        crm.campaigns.create("Tết", channel="email", body="Chào", owner="khong.co")
    theirs = crm.campaigns.create("Sài Gòn", channel="email", body="Chào", owner="hoa")
    ours = crm.campaigns.create("Hà Nội", channel="email", body="Chào", owner="lan")
    mai = crm.as_user("mai")
    assert mai.campaigns.update(ours.id, objective="Tết ở Hà Nội").objective == "Tết ở Hà Nội"
    with pytest.raises(PermissionDenied) as refused:
        mai.campaigns.set_variant(theirs.id, "B", body="Khác")
    assert refused.value.permission == "campaigns.manage"
    with pytest.raises(ValidationError, match="'hoa' is outside your scope of campaigns.manage"):
        mai.campaigns.update(ours.id, owner="hoa")
    assert [c.name for c in mai.campaigns.list()] == ["Hà Nội", "Sài Gòn"]  # campaigns are no secret
    crm.users.disable("lan")
    with pytest.raises(ValidationError, match="owner"):
        crm.campaigns.update(theirs.id, owner="lan")


def test_segments_are_changed_only_within_the_author_s_scope(branches):
    crm, _ = branches
    add_user(crm, "nam", teams=["SG"], grants=TEAM_MARKETING)
    crm.as_user("nam").campaigns.segments.create("Sài Gòn", 'city = "Hồ Chí Minh"')
    mai = crm.as_user("mai")
    mine = mai.campaigns.segments.create("Của Mai", "age > 30")
    assert mine.created_by == "mai"
    assert mai.campaigns.segments.update("Của Mai", description="VIP").description == "VIP"
    with pytest.raises(PermissionDenied, match="campaigns.segments.manage"):
        mai.campaigns.segments.delete("Sài Gòn")
    assert [s.name for s in mai.campaigns.segments.list()] == ["Của Mai", "Sài Gòn"]


def test_channel_settings_need_campaigns_channels_manage_not_settings_admin(branches, tmp_path):
    crm, _ = branches
    add_user(crm, "thao", roles=["marketing"])
    thao = crm.as_user("thao")
    thao.campaigns.set_channel("sms", "file", directory=str(tmp_path / "sms"), address_kind="phone")
    assert thao.campaigns.configure("frequency_cap", "2/7d") == {"messages": 2, "days": 7}
    assert "sms" in [c["channel"] for c in thao.campaigns.channel_list()]
    entry = crm.audit.entries(entity="setting", limit=1).items[0]
    assert entry.actor == "thao"
    add_user(crm, "quan", teams=["HN"], roles=["manager"])
    for user in ("lan", "quan"):  # neither sales nor a branch manager sets up channels or sees their secrets
        with pytest.raises(PermissionDenied, match="campaigns.channels.manage"):
            crm.as_user(user).campaigns.webhook_token()
        with pytest.raises(PermissionDenied, match="campaigns.channels.manage"):
            crm.as_user(user).campaigns.remove_channel("sms")


def test_the_default_marketing_role_reaches_every_customer_without_contact_details(branches):
    crm, people = branches
    add_user(crm, "thao", roles=["marketing"])
    thao = crm.as_user("thao")
    assert thao.campaigns.segments.count() == 6
    campaign = thao.campaigns.create("Tết", channel="email", body="Chào")
    assert thao.campaigns.run(campaign.id, now=kit.NOON).queued == 6
    assert {r["address"] for r in thao.campaigns.messages(campaign.id)} == {None}  # not sent yet
    thao.campaigns.dispatch(now=kit.NOON)
    assert all("***@" in r["address"] for r in thao.campaigns.messages(campaign.id))


def test_suppressions_as_a_team_user(branches):
    crm, people = branches
    mai = crm.as_user("mai")
    entry = mai.campaigns.suppress(customer_id=people["lan"][0].id, reason="gọi điện xin ngừng")
    with pytest.raises(NotFound):
        mai.campaigns.suppress(customer_id=people["hoa"][0].id, reason="x")
    with pytest.raises(ValidationError, match="customer_id"):
        mai.campaigns.suppress(address="ai@example.vn", reason="x")  # an address alone needs scope all
    other = crm.campaigns.suppress(customer_id=people["hoa"][0].id, reason="x")
    with pytest.raises(NotFound):
        mai.campaigns.unsuppress(other)
    mai.campaigns.unsuppress(entry)
    assert [r["id"] for r in crm.campaigns.suppressions()] == [other]


def test_the_tracking_routes_act_as_the_system_inside_a_user_s_block(branches, tmp_path):
    from test_tracking import call, links

    from crmkit.web import create_app
    from crmkit_campaigns.web import PIXEL

    crm, people = branches
    campaign = crm.campaigns.create("Tết", channel="email", body="Xem: https://saomai.example.vn/tet")
    crm.campaigns.run(campaign.id, now=kit.NOON)
    crm.campaigns.dispatch(now=kit.NOON)
    customer = people["hoa"][0]
    click, pixel, unsubscribe = links(tmp_path / "outbox", customer)
    app = create_app(crm)
    add_user(crm, "khach", grants={})
    with crm.as_user("khach"):  # a server thread that happens to act as a user with no permission at all
        assert call(app, "GET", pixel)[2] == PIXEL
        assert call(app, "GET", click)[0] == 302
        assert call(app, "POST", unsubscribe)[0] == 200
    report = crm.campaigns.report(campaign.id)
    assert (report.treated.opened, report.treated.clicked, report.treated.unsubscribed) == (1, 1, 1)
    assert not crm.customers.get(customer.id).has_consent("email")


def test_the_migration_makes_campaign_owners_users(crm):
    from crmkit import migrations
    from crmkit.core.types import utcnow

    add_user(crm, "lan")
    lineage = next(lin for lin in crm.lineages() if lin.name == "campaigns")
    migrations.downgrade(crm.engine, lineage, "campaigns_0002")
    now = utcnow()
    with crm.engine.begin() as conn:  # campaigns of before: owners were free text
        for name, owner in (("Cũ", "cu.chu"), ("Của Lan", "lan"), ("Không chủ", None)):
            conn.execute(
                m.campaigns.insert().values(
                    name=name,
                    owner=owner,
                    status="draft",
                    channel="email",
                    currency="VND",
                    cost_fixed_minor=0,
                    cost_per_message_minor=0,
                    holdout_bp=0,
                    attribution_days=7,
                    days_before=0,
                    created_by="system",
                    created_at=now,
                    updated_at=now,
                )
            )
    migrations.upgrade(crm.engine, [lineage])
    assert [(u.username, u.active) for u in crm.users.list()] == [("cu.chu", True), ("lan", True)]
    assert {c.name: (c.owner, c.scheduled_by) for c in crm.campaigns.list()} == {
        "Cũ": ("cu.chu", None),
        "Của Lan": ("lan", None),
        "Không chủ": (None, None),
    }
