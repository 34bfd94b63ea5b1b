"""Who may compute and read analytics, and what a user whose scope is narrower sees: only their customers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from crmkit import NotFound, PermissionDenied
from crmkit.cli.context import CLIContext
from crmkit.cli.main import cli
from crmkit.testing import add_user
from crmkit_analytics.testing import AS_OF, SOURCE

Y = AS_OF.year


def at(month: int, day: int = 10) -> datetime:
    return datetime(Y, month, day, 9, tzinfo=UTC)


@pytest.fixture
def branch(analytics_crm: Any, shop: Any) -> dict[str, int]:
    """Hoa manages the Hà Nội team (Lan sells there), Minh sells in Sài Gòn, Mai is in marketing.
    Lan owns An and Bình, Minh owns Châu and Dũng; Em has no owner and never bought."""
    crm = analytics_crm
    add_user(crm, "hoa", teams=["Hà Nội"], roles=["manager"])
    add_user(crm, "lan", teams=["Hà Nội"], roles=["sales"])
    add_user(crm, "minh", teams=["Sài Gòn"], roles=["sales"])
    add_user(crm, "mai", roles=["marketing"])
    ids = {
        "an": crm.customers.add(name="Nguyễn Văn An", owner="lan", gender="male").id,
        "binh": crm.customers.add(name="Trần Thị Bình", owner="lan", gender="female").id,
        "chau": crm.customers.add(name="Lê Minh Châu", owner="minh", gender="female").id,
        "dung": crm.customers.add(name="Phạm Quốc Dũng", owner="minh", gender="male").id,
        "em": crm.customers.add(name="Hoàng Thị Em").id,
    }
    for month in (4, 5, 6):
        shop.buy(ids["an"], at(month), 100_000)
    shop.buy(ids["binh"], at(5), 400_000)
    shop.buy(ids["chau"], at(4), 500_000)
    shop.buy(ids["chau"], at(6), 700_000)
    shop.buy(ids["dung"], at(6), 200_000)
    crm.analytics.rfm(as_of=AS_OF)
    crm.analytics.pcv(as_of=AS_OF, discount_rate=0)
    crm.analytics.customer_types(as_of=AS_OF)
    return ids


def test_permissions_are_declared_with_their_default_roles(analytics_crm: Any) -> None:
    declared = {name: p for name, p in analytics_crm.access.permissions.items() if p.plugin == "analytics"}
    assert sorted(declared) == ["analytics.export", "analytics.read", "analytics.run"]
    assert declared["analytics.read"].roles == {
        "manager": "team",
        "marketing": "all",
        "sales": "own",
        "read-only": "all",
    }
    assert not declared["analytics.run"].scoped and declared["analytics.run"].roles == {"marketing": "all"}
    assert declared["analytics.export"].roles == {"manager": "team", "marketing": "all"}


def test_a_sales_user_sees_only_own_customers_rfm_scores(analytics_crm: Any, branch: dict[str, int]) -> None:
    crm = analytics_crm
    lan = crm.as_user("lan")
    buyers = {branch[k] for k in ("an", "binh", "chau", "dung")}
    assert {r["customer_id"] for r in crm.analytics.customers("rfm")} == buyers
    assert {r["customer_id"] for r in lan.analytics.customers("rfm")} == {branch["an"], branch["binh"]}
    assert lan.analytics.customers("rfm", segment="cant_lose") == []  # Châu's segment, not Lan's customer
    run = lan.analytics.latest("rfm")
    assert run.scope == "lan's own customers" and run.summary["customers"] == 2
    assert sum(s["customers"] for s in run.summary["segments"].values()) == 2 == sum(map(sum, run.summary["grid"]))
    assert crm.analytics.latest("rfm").summary["customers"] == 4 and crm.analytics.latest("rfm").scope is None
    assert lan.analytics.latest("pcv").summary["total_minor"] == 700_000  # An 300,000 + Bình 400,000
    assert lan.analytics.latest("types").summary["types"]["prospect"] == 0  # Em (a prospect) is nobody's
    assert [r.summary for r in lan.analytics.history()] == [{}, {}, {}]  # whole-base figures are not for Lan
    assert lan.analytics.scope() == "lan's own customers" and crm.analytics.scope() is None
    with pytest.raises(PermissionDenied) as refused:
        lan.analytics.rfm(as_of=AS_OF)
    assert refused.value.permission == "analytics.run"
    with pytest.raises(PermissionDenied) as refused:
        lan.analytics.export("rfm")
    assert refused.value.permission == "analytics.export"


def test_a_team_scoped_kpi_report_counts_only_the_team(
    analytics_crm: Any, branch: dict[str, int], tmp_path: Path
) -> None:
    crm = analytics_crm
    hoa = crm.as_user("hoa")
    team = hoa.analytics.kpis(as_of=AS_OF, months=3)
    everyone = crm.analytics.kpis(as_of=AS_OF, months=3)
    assert team["overview"]["scope"] == "hoa's team" and everyone["overview"]["scope"] is None
    assert (team["overview"]["customers"], team["overview"]["buyers"], team["overview"]["revenue_minor"]) == (
        2,
        2,
        700_000,
    )
    assert (everyone["overview"]["customers"], everyone["overview"]["buyers"]) == (5, 4)
    assert [m["active"] for m in team["months"]] == [1, 2, 1]  # April An; May An, Bình; June An
    assert {r["gender"]: r["revenue_minor"] for r in hoa.analytics.breakdown("gender", as_of=AS_OF, months=3)} == {
        "male": 300_000,
        "female": 400_000,
    }
    assert [c["customers"] for c in hoa.analytics.cohorts(as_of=AS_OF, months=3)] == [1, 1]
    assert {r["customer_id"] for r in hoa.analytics.export("rfm")} == {branch["an"], branch["binh"]}

    with hoa:  # the block runs as Hoa (a handle would wrap the returned Path as if it were a context manager)
        path = crm.analytics.report(tmp_path / "team.html", as_of=AS_OF, recompute=False, locale="en")
    page = path.read_text(encoding="utf-8")
    assert "Scoped to hoa&#x27;s team" in page and "customers of hoa&#x27;s team" in page
    assert "Nguyễn Văn An" in page and "Lê Minh Châu" not in page and "Phạm Quốc Dũng" not in page
    assert "Scoped to" not in crm.analytics.report(tmp_path / "all.html", as_of=AS_OF, locale="en").read_text(
        encoding="utf-8"
    )
    with pytest.raises(PermissionDenied) as refused:
        hoa.analytics.report(tmp_path / "again.html", as_of=AS_OF)  # recomputing is a whole-base job
    assert refused.value.permission == "analytics.run"
    with pytest.raises(PermissionDenied) as refused:
        crm.as_user("lan").analytics.report(tmp_path / "lan.html", recompute=False)  # sales may not export
    assert refused.value.permission == "analytics.export"


def test_marketing_computes_the_measures_and_reads_the_whole_base(analytics_crm: Any, branch: dict[str, int]) -> None:
    mai = analytics_crm.as_user("mai")
    run = mai.analytics.rfm(as_of=AS_OF)
    assert run.actor == "mai" and run.scope is None and run.summary["customers"] == 4
    assert len(mai.analytics.export("rfm")) == 4
    assert mai.analytics.configure(discount_rate="0.12")["discount_rate"] == "0.12"
    with pytest.raises(PermissionDenied) as refused:
        analytics_crm.as_user("hoa").analytics.configure(discount_rate="0.2")
    assert refused.value.permission == "analytics.run"


def test_a_scoped_user_running_a_measure_reads_back_only_their_customers(
    analytics_crm: Any, branch: dict[str, int]
) -> None:
    add_user(analytics_crm, "tuan", teams=["Sài Gòn"], grants={"analytics.run": "all", "analytics.read": "team"})
    run = analytics_crm.as_user("tuan").analytics.rfm(as_of=AS_OF)
    assert run.scope == "tuan's team" and run.summary["customers"] == 2  # Châu and Dũng; the job scored all 4
    assert analytics_crm.analytics.latest("rfm").summary["customers"] == 4


def test_profile_section_shows_only_for_customers_in_analytics_scope(
    analytics_crm: Any, branch: dict[str, int]
) -> None:
    crm = analytics_crm
    add_user(crm, "tuan", grants={"customers.read": "all", "analytics.read": "own"})
    add_user(crm, "vy", roles=["support"])  # reads every customer, no analytics
    mine = crm.customers.add(name="Khách của Tuấn", owner="tuan").id
    crm.customers.profile(mine)  # nothing bought: the section still shows, empty
    tuan = crm.as_user("tuan")
    assert "analytics" not in tuan.customers.profile(branch["an"]).sections
    assert tuan.customers.profile(mine).sections["analytics"] == {"purchases": []}
    assert crm.customers.profile(branch["an"]).sections["analytics"]["rfm"]["score"]
    assert "analytics" not in crm.as_user("vy").customers.profile(branch["an"]).sections
    with tuan.reading() as conn:
        assert tuan.analytics.customer_summary(conn, branch["an"]) == {"purchases": []}
    with pytest.raises(NotFound):
        crm.as_user("lan").customers.profile(branch["chau"])


def invoke(crm: Any, *args: str) -> Result:
    url = crm.engine.url.render_as_string(hide_password=False)
    return CliRunner().invoke(cli, ["--db", url, *args], obj=CLIContext(plugins=["analytics", SOURCE]))


def test_cli_as_a_user_shows_their_customers_and_says_so(analytics_crm: Any, branch: dict[str, int]) -> None:
    listing = invoke(analytics_crm, "--user", "lan", "analytics", "rfm", "--latest", "--list")
    assert listing.exit_code == 0, listing.output
    assert "scoped to lan's own customers" in listing.output
    assert "Nguyễn Văn An" in listing.output and "Lê Minh Châu" not in listing.output
    rows = json.loads(invoke(analytics_crm, "--user", "hoa", "--format", "json", "analytics", "export", "pcv").output)
    assert {r["customer_id"] for r in rows} == {branch["an"], branch["binh"]}
    kpis = invoke(analytics_crm, "--user", "hoa", "analytics", "kpis", "--as-of", AS_OF.isoformat(), "--months", "3")
    assert kpis.exit_code == 0 and "Scoped to hoa's team" in kpis.output
    refused = invoke(analytics_crm, "--user", "lan", "analytics", "rfm")
    assert refused.exit_code != 0 and "analytics.run" in refused.output
