"""Who may do what in QCI: permissions per call, scorecards scoped to the reader's customers, owners that are users."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from crmkit import PermissionDenied, ValidationError
from crmkit.cli.context import CLIContext
from crmkit.cli.main import cli
from crmkit.core import tables as core
from crmkit.testing import add_user
from crmkit_qci.models import actions

from .conftest import at, buy, staff

RETENTION = {"RE1": 1, "RE2": 1, "RE3": 2, "RE4": 1, "RE5": 1}


def test_the_permissions_are_declared_with_their_default_roles(qci_crm: Any) -> None:
    declared = {name: p for name, p in qci_crm.access.permissions.items() if p.plugin == "qci"}
    assert set(declared) == {"qci.assess", "qci.read", "qci.plan"}
    assert (declared["qci.assess"].scoped, dict(declared["qci.assess"].roles)) == (False, {"manager": "all"})
    assert (declared["qci.plan"].scoped, dict(declared["qci.plan"].roles)) == (False, {"manager": "all"})
    assert (declared["qci.read"].scoped, dict(declared["qci.read"].roles)) == (
        True,
        {"manager": "team", "read-only": "all"},
    )


def test_a_read_only_user_reads_the_scorecard_but_cannot_assess_or_plan(qci_crm: Any) -> None:
    crm = qci_crm
    add_user(crm, "an", roles=["read-only"])
    crm.customers.add(name="Nguyễn Văn An")
    an = crm.as_user("an")
    with pytest.raises(PermissionDenied) as refused:
        an.qci.assessments.record(RETENTION)
    assert refused.value.permission == "qci.assess"
    assert crm.qci.assessments.latest() is None  # nothing stored
    for call in (lambda: an.qci.costs.add("2025-03", 1_000_000), lambda: an.qci.import_bank({})):
        with pytest.raises(PermissionDenied, match="qci.assess"):
            call()
    crm.qci.assessments.record(RETENTION)
    with pytest.raises(PermissionDenied, match="qci.plan"):
        an.qci.generate_plan()
    with pytest.raises(PermissionDenied, match="qci.plan"):
        an.qci.set_target("satisfaction", "4.5")
    card = an.qci.scorecard()  # read-only reads every customer: not scoped
    assert not card.scoped and card.coverage.describe() == "every customer"
    assert an.qci.assessments.latest().score("retention") is not None and an.qci.plan.list() == []
    denials = [(e.actor, e.action, e.entity_id) for e in crm.audit.entries(entity="permission", limit=100).items]
    assert ("an", "denied", "qci.assess") in denials  # the refusal is audited


def _two_teams(crm: Any) -> dict[str, int]:
    """Lan manages Hà Nội (Hoa sells there); Minh sells in Hồ Chí Minh City. One customer has no owner."""
    add_user(crm, "lan", teams=["HN"], roles=["manager"])
    add_user(crm, "hoa", teams=["HN"], roles=["sales"])
    add_user(crm, "minh", teams=["HCM"], roles=["sales"])
    ids = {
        "hoa": crm.customers.add(name="Trần Thị Bình", email="binh@example.vn", owner="hoa").id,
        "lan": crm.customers.add(name="Lê Minh Châu", owner="lan").id,
        "minh": crm.customers.add(name="Phạm Quốc Dũng", phone="0912 345 678", owner="minh").id,
        "nobody": crm.customers.add(name="Hoàng Thu Hà").id,
    }
    log = crm.interactions.log
    log(ids["hoa"], "phone", direction="inbound", occurred_at=at("2025-03-10", 9), rating=5, employee="hoa")
    log(ids["hoa"], "phone", direction="outbound", occurred_at=at("2025-03-10", 11), employee="hoa")
    log(ids["minh"], "chat", direction="inbound", occurred_at=at("2025-03-12", 9), rating=1, employee="minh")
    log(ids["minh"], "chat", direction="outbound", occurred_at=at("2025-03-14", 9), employee="minh")
    return ids


def _kpis(card: Any) -> dict[str, Any]:
    return {row.measure.key: row.measure for row in card.rows}


def test_a_team_scoped_scorecard_counts_only_the_teams_customers(qci_crm: Any) -> None:
    crm = qci_crm
    ids = _two_teams(crm)
    crm.qci.costs.add("2025-03", 4_000_000, kind="acquisition")

    everyone = crm.qci.scorecard("2025-03")  # the system: every customer, as before
    assert not everyone.scoped and "scoped" not in everyone.headline()
    m = _kpis(everyone)
    assert (m["customers_with_owner"].value, m["customers_with_owner"].detail) == (
        Decimal("0.7500"),
        "3 of 4 customers have a named owner",
    )
    assert (m["satisfaction"].value, m["satisfaction"].detail) == (Decimal("3.00"), "2 ratings")
    assert m["response_time"].detail == "2 of 2 inbound contacts answered"
    assert (m["cost_per_acquisition"].status, m["cost_per_acquisition"].reason) == (
        "no data",
        "no customer existed by the end of 2025-03",
    )  # costs recorded; the customers came later

    card = crm.as_user("lan").qci.scorecard("2025-03")  # manager: qci.read with scope team
    assert card.scoped and card.coverage.describe() == "customers of lan's teams"
    assert card.headline().endswith(" · scoped to customers of lan's teams")
    m = _kpis(card)
    assert (m["customers_with_owner"].value, m["customers_with_owner"].detail) == (
        Decimal("1.0000"),
        "2 of 2 customers have a named owner",
    )  # Hoa's and Lan's; not Minh's, not the unowned one
    assert (m["satisfaction"].value, m["satisfaction"].detail) == (Decimal("5.00"), "1 rating")
    assert (m["response_time"].value, m["response_time"].detail) == (Decimal("2.0"), "1 of 1 inbound contacts answered")
    assert m["activities_per_employee"].detail == "2 interactions by 1 employees"
    assert m["data_completeness"].detail == "2 customers: contact 50%, place 0%, owner 100%, consent 0%"
    # costs are the whole business's: never divided by the team's new customers
    assert (m["cost_per_acquisition"].status, m["cost_per_acquisition"].reason) == (
        "not available",
        "recorded and campaign costs cover the whole business: not shown on a scorecard of customers of lan's teams",
    )
    row = next(r for r in card.rows if r.measure.key == "satisfaction")
    assert row.as_dict()["scoped_to"] == "customers of lan's teams"
    assert next(r for r in everyone.rows if r.measure.key == "satisfaction").as_dict()["scoped_to"] is None

    counted = crm.as_user("lan").qci.counted("2025-03")
    assert counted.active == tuple(sorted((ids["hoa"], ids["lan"]))) and counted.contacted == (ids["hoa"],)
    assert crm.qci.counted("2025-03").active == tuple(sorted(ids.values()))
    with pytest.raises(PermissionDenied, match="qci.read"):  # the sales role does not read QCI
        crm.as_user("minh").qci.scorecard("2025-03")


def test_an_own_scope_counts_the_users_own_customers_and_their_purchases(shop_crm: Any) -> None:
    crm = shop_crm
    ids = _two_teams(crm)
    add_user(crm, "thu", teams=["HCM"], grants={"qci.read": "own"})
    crm.customers.update(ids["nobody"], owner="thu")
    for who, amount in (("hoa", 100_000), ("minh", 200_000), ("minh", 300_000), ("nobody", 50_000)):
        buy(crm, ids[who], at("2025-03-20"), amount)
    m = _kpis(crm.qci.scorecard("2025-03"))
    assert m["purchases_per_buyer"].detail == "4 purchases by 3 buyers"
    card = crm.as_user("thu").qci.scorecard("2025-03")
    assert card.headline().endswith(" · scoped to thu's own customers")
    m = _kpis(card)
    assert m["purchases_per_buyer"].detail == "1 purchases by 1 buyers"
    assert m["customers_with_owner"].detail == "1 of 1 customers have a named owner"
    assert crm.as_user("thu").qci.counted("2025-03").buyers == (ids["nobody"],)


def test_the_scorecard_command_and_the_report_say_they_are_scoped(qci_crm: Any, tmp_path: Any) -> None:
    crm = qci_crm
    _two_teams(crm)
    with crm.as_user("lan"):
        table = (
            CliRunner()
            .invoke(cli, ["qci", "scorecard", "--period", "2025-03"], obj=CLIContext(crm=crm), catch_exceptions=False)
            .stdout
        )
        path = crm.qci.report(tmp_path / "qci.html", "2025-03", locale="en")
    assert "QCI scorecard 2025-03 (vs 2025-02; money in VND) · scoped to customers of lan's teams" in table
    html = path.read_text(encoding="utf-8")
    assert "· scoped to customers of lan&#x27;s teams" in html and "KPIs count customers of lan&#x27;s teams" in html


def test_plan_owners_must_be_active_users(qci_crm: Any) -> None:
    crm = qci_crm
    staff(crm, "huong.le", "quang.pham")
    crm.qci.assessments.record(RETENTION)
    with pytest.raises(ValidationError, match="owner: no user 'ghost'"):
        crm.qci.set_owner("retention", "ghost")
    crm.users.disable("quang.pham")
    with pytest.raises(ValidationError, match="owner: user 'quang.pham' is disabled"):
        crm.qci.set_owner("retention", "quang.pham")
    with pytest.raises(ValidationError, match="owner: no user 'ghost'"):
        crm.qci.generate_plan(areas=1, owner="ghost")
    assert crm.qci.plan.list() == [] and crm.qci.owners() == {}  # nothing written

    assert crm.qci.set_owner("retention", "huong.le") == {"retention": "huong.le"}
    crm.users.disable("huong.le")  # the area's owner left since: generating says so, naming the area
    with pytest.raises(ValidationError, match=r"owners\.retention: user 'huong.le' is disabled"):
        crm.qci.generate_plan(areas=1)
    crm.users.enable("huong.le")
    made = crm.qci.generate_plan(areas=1).created
    assert {a.owner for a in made} == {"huong.le"}


def test_a_plan_the_system_generates_without_owners_is_unassigned_until_assigned(qci_crm: Any) -> None:
    crm = qci_crm
    staff(crm, "thao.vo")
    crm.qci.assessments.record(RETENTION)
    made = crm.qci.generate_plan(areas=1).created  # the system is no employee
    assert made and {a.owner for a in made} == {None}
    first = made[0].id
    with pytest.raises(ValidationError, match="owner: no user 'ghost'"):
        crm.qci.plan.assign(first, "ghost")
    assert crm.qci.plan.assign(first, "thao.vo").owner == "thao.vo"
    result = CliRunner().invoke(
        cli,
        ["--format", "json", "qci", "plan", "--assign", f"{made[1].id}=thao.vo"],
        obj=CLIContext(crm=crm),
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert {a.owner for a in crm.qci.plan.list()} == {"thao.vo"}
    assert crm.qci.plan.assign(first, None).owner is None


def test_a_managers_plan_is_theirs_and_its_reasons_name_the_scope(qci_crm: Any) -> None:
    crm = qci_crm
    _two_teams(crm)
    crm.qci.assessments.record(RETENTION)
    lan = crm.as_user("lan")
    made = lan.qci.generate_plan(areas=1).created
    assert {(a.owner, a.created_by) for a in made} == {("lan", "lan")}
    assert made[0].reason.endswith(" (data: customers of lan's teams)")
    started = lan.qci.plan.start(made[0].id)
    assert started.status == "in_progress"
    with pytest.raises(PermissionDenied, match="qci.plan"):
        crm.as_user("hoa").qci.plan.done(made[0].id)


def test_the_migration_turns_plan_owner_names_into_users(qci_crm: Any) -> None:
    from crmkit import migrations

    crm = qci_crm
    lineage = next(lin for lin in crm.lineages() if lin.name == "qci")
    migrations.downgrade(crm.engine, lineage, "qci_0001")
    now = at("2025-03-01")
    row = {
        "area": "retention",
        "rule_id": "ret-win-back",
        "title": "Win back",
        "description": "…",
        "due_on": now.date(),
        "status": "open",
        "reason": "Retention: assessment 5.4",
        "created_at": now,
        "created_by": "lan.nguyen",
    }
    with crm.engine.begin() as conn:
        conn.execute(
            actions.insert(),
            [
                {**row, "owner": "huong.le"},
                {**row, "owner": "system"},
                {**row, "owner": "huong.le", "rule_id": "ret-exit-survey"},
            ],
        )
        conn.execute(core.settings.insert().values(key="qci.owners", value={"acquisition": "minh.tran"}))
    migrations.upgrade(crm.engine, [lineage])
    with crm.reading() as conn:
        owners = list(conn.execute(sa.select(actions.c.owner).order_by(actions.c.id)).scalars())
    assert owners == ["huong.le", None, "huong.le"]  # the system was no employee: unassigned
    users = {u.username: u for u in crm.users.list()}
    assert {"huong.le", "minh.tran"} <= set(users) and "system" not in users
    assert users["huong.le"].active and users["huong.le"].display_name == "huong.le"
    assert crm.qci.plan.assign(2, "minh.tran").owner == "minh.tran"  # the new users can be given actions


def test_a_kpi_needing_a_permission_the_reader_lacks_says_which(qci_crm: Any) -> None:
    crm = qci_crm
    crm.customers.add(name="Nguyễn Văn An", email="an@example.vn")
    crm.customers.add(name="Nguyen Van An", email="an@example.vn")
    add_user(crm, "quy", grants={"qci.read": "all"})  # QCI's figures, but not the customers themselves
    m = {x.key: x for x in crm.as_user("quy").qci.kpis(keys=["duplicate_rate", "customers_with_owner"])}
    # the duplicate rate uses the core's duplicate detection, which needs customers.read
    assert (m["duplicate_rate"].status, m["duplicate_rate"].reason) == (
        "not available",
        "needs permission customers.read",
    )
    assert m["customers_with_owner"].detail == "0 of 2 customers have a named owner"
    assert {x.key: x for x in crm.qci.kpis(keys=["duplicate_rate"])}["duplicate_rate"].value == Decimal("1.0000")


def test_a_manager_sets_targets_and_owners_with_qci_plan_alone(qci_crm: Any) -> None:
    crm = qci_crm
    add_user(crm, "giam.doc", roles=["manager"])
    add_user(crm, "huong.le")
    manager = crm.as_user("giam.doc")
    assert "settings.admin" not in manager.principal.grants
    manager.qci.set_target("retention_rate", "80%")
    assert manager.qci.set_owner("retention", "huong.le") == {"retention": "huong.le"}
    with pytest.raises(PermissionDenied, match="settings.admin"):
        manager.set_setting("timezone", "Asia/Bangkok")  # the CRM's own settings stay the administrator's
