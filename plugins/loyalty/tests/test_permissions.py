"""Loyalty obeys identity: each call checks its permission, and a user sees only the members of their scope."""

from datetime import timedelta

import pytest
from loyalty_testkit import days_ago

from crmkit import NotFound, PermissionDenied
from crmkit.testing import add_user


@pytest.fixture
def shop(loyal):
    """Two branches: Hà Nội (Lan, sales) with its sub-team Ba Đình (Minh, sales), and Sài Gòn (Tâm, sales);
    Hoa manages Hà Nội. Each salesperson owns one member; the catalogue has one reward."""
    loyal.teams.add("Hà Nội")
    loyal.teams.add("Ba Đình", parent="Hà Nội")
    add_user(loyal, "hoa", teams=["Hà Nội"], roles=["manager"])
    add_user(loyal, "lan", teams=["Hà Nội"], roles=["sales"])
    add_user(loyal, "minh", teams=["Ba Đình"], roles=["sales"])
    add_user(loyal, "tam", teams=["Sài Gòn"], roles=["sales"])
    loyal.loyalty.programs.add_reward("voucher-50k", "Voucher 50.000 ₫", 100, kind="discount", value_minor=50_000)
    members = {}
    for owner, name, spent in (
        ("lan", "Nguyễn Văn An", 3_000_000),
        ("minh", "Trần Thị Bình", 2_000_000),
        ("tam", "Lê Văn Cường", 5_000_000),
    ):
        customer = loyal.customers.add(name=name, owner=owner)
        loyal.sales.place(customer.id, spent)  # 300, 200 and 500 points
        members[owner] = customer.id
    return loyal, members


def test_a_salesperson_cannot_grant_points(shop):
    crm, members = shop
    lan = crm.as_user("lan")
    with pytest.raises(PermissionDenied) as refused:
        lan.loyalty.grant(members["lan"], 100, "bù điểm giao hàng chậm")
    assert refused.value.permission == "loyalty.points.grant"
    with pytest.raises(PermissionDenied) as refused:
        lan.loyalty.deduct(members["lan"], 10, "trừ nhầm")
    assert refused.value.permission == "loyalty.points.adjust"
    assert crm.loyalty.balance(members["lan"]) == 300  # nothing written


def test_a_salesperson_sees_only_her_own_members(shop):
    crm, members = shop
    lan = crm.as_user("lan")
    assert lan.loyalty.balance(members["lan"]) == 300
    assert [entry.points for entry in lan.loyalty.history(members["lan"])] == [300]
    for other in (members["minh"], members["tam"]):  # a teammate's and another branch's: as if they did not exist
        for call in (lan.loyalty.balance, lan.loyalty.member, lan.loyalty.history, lan.loyalty.redemptions):
            with pytest.raises(NotFound):
                call(other)
        with pytest.raises(NotFound):
            lan.loyalty.statement(other, crm.today() - timedelta(days=30), crm.today())
    with pytest.raises(NotFound):
        lan.loyalty.balance(999_999)  # an unknown customer looks the same


def test_a_salesperson_redeems_for_her_own_customers_only(shop):
    crm, members = shop
    lan = crm.as_user("lan")
    redemption = lan.loyalty.redeem(members["lan"], "voucher-50k")
    assert crm.loyalty.balance(members["lan"]) == 200
    assert crm.audit.entries(entity="loyalty_redemption", limit=1).items[0].actor == "lan"
    with pytest.raises(NotFound):
        lan.loyalty.redeem(members["tam"], "voucher-50k")
    theirs = crm.loyalty.redeem(members["tam"], "voucher-50k")
    with pytest.raises(NotFound):  # someone else's redemption, by id
        lan.loyalty.cancel_redemption(theirs.id)
    assert lan.loyalty.cancel_redemption(redemption.id).status == "cancelled"
    assert crm.loyalty.balance(members["tam"]) == 400


def test_a_managers_reports_count_only_the_team(shop):
    crm, members = shop
    reward = crm.loyalty.redeem(members["tam"], "voucher-50k")  # Sài Gòn redeems: not in Hoa's figures
    assert reward.points == 100
    (everything,) = crm.loyalty.reports.liability()
    assert (everything.members, everything.outstanding, everything.scoped_to) == (3, 900, None)
    (team,) = crm.as_user("hoa").loyalty.reports.liability()
    assert (team.members, team.outstanding, str(team.value)) == (2, 500, "250.000 ₫")  # An and Bình (sub-team)
    assert team.scoped_to == "hoa (team)"
    (month,) = crm.as_user("hoa").loyalty.reports.earn_burn()
    assert (month.earned, month.redeemed, month.net, month.scoped_to) == (500, 0, 500, "hoa (team)")
    (rate,) = crm.as_user("hoa").loyalty.reports.redemption_rate()
    assert (rate.members, rate.redeeming_members, rate.redeemed) == (2, 0, 0)
    assert sum(row.members for row in crm.as_user("hoa").loyalty.reports.tier_counts()) == 2
    members_group = crm.as_user("hoa").loyalty.reports.repeat_purchase()[0]
    assert (members_group.group, members_group.buyers) == ("members", 2)


def test_a_manager_acts_on_the_team_not_beyond(shop):
    crm, members = shop
    hoa = crm.as_user("hoa")
    assert hoa.loyalty.grant(members["minh"], 50, "khách thân thiết của chi nhánh").points == 50
    with pytest.raises(NotFound):
        hoa.loyalty.grant(members["tam"], 50, "không phải khách của chi nhánh")
    with pytest.raises(PermissionDenied) as refused:  # the catalogue is the business's, not the branch's
        hoa.loyalty.programs.add_reward("tui-vai", "Túi vải", 50)
    assert refused.value.permission == "loyalty.programs.manage"
    with pytest.raises(PermissionDenied) as refused:
        hoa.loyalty.jobs.expire()
    assert refused.value.permission == "loyalty.jobs.run"


def test_support_reads_and_redeems_for_everyone_but_grants_nothing(shop):
    crm, members = shop
    add_user(crm, "thu", roles=["support"])
    thu = crm.as_user("thu")
    assert thu.loyalty.balance(members["tam"]) == 500
    assert thu.loyalty.redeem(members["tam"], "voucher-50k").points == 100
    with pytest.raises(PermissionDenied):
        thu.loyalty.grant(members["tam"], 10, "xin lỗi khách")
    with pytest.raises(PermissionDenied) as refused:
        thu.loyalty.reports.liability()
    assert refused.value.permission == "loyalty.reports.read"


def test_marketing_reads_reports_of_everyone_but_changes_no_points(shop):
    crm, members = shop
    add_user(crm, "mai", roles=["marketing"])
    mai = crm.as_user("mai")
    (liability,) = mai.loyalty.reports.liability()
    assert (liability.members, liability.outstanding, liability.scoped_to) == (3, 1000, None)
    with pytest.raises(PermissionDenied) as refused:
        mai.loyalty.redeem(members["lan"], "voucher-50k")
    assert refused.value.permission == "loyalty.points.redeem"


def test_the_profile_section_shows_only_with_loyalty_read(shop):
    crm, members = shop
    add_user(crm, "khoa", grants={"customers.read": "all"})
    assert "loyalty" not in crm.as_user("khoa").customers.profile(members["tam"]).sections
    (section,) = crm.as_user("tam").customers.profile(members["tam"]).sections["loyalty"]
    assert section["balance"] == 500


def test_system_jobs_stay_unrestricted_and_users_need_the_job_permission(shop):
    crm, members = shop
    crm.loyalty.grant(members["tam"], 40, "điểm tặng hết hạn", expires_at=days_ago(1))
    (run,) = crm.loyalty.jobs.expire()
    assert (run.changed, run.points) == (1, 40)
    add_user(crm, "admin", roles=["administrator"])
    assert crm.as_user("admin").loyalty.jobs.verify() == []
    for job in (crm.as_user("lan").loyalty.jobs.evaluate_tiers, crm.as_user("hoa").loyalty.jobs.backfill):
        with pytest.raises(PermissionDenied):
            job()
    crm.loyalty.programs.set_tiers(
        [{"code": "member", "name": "Member", "threshold": 0}, {"code": "vip", "name": "VIP", "threshold": 250}]
    )
    assert crm.loyalty.member(members["tam"]).tier == "vip"


def test_earning_from_an_order_needs_no_loyalty_permission(shop):
    crm, members = shop
    with crm.as_user("lan"):  # a salesperson's order earns points as usual
        crm.sales.place(members["lan"], 1_000_000)
    assert crm.loyalty.balance(members["lan"]) == 400
    assert crm.loyalty.history(members["lan"])[0].actor == "lan"
