"""The `crmkit analytics` commands, the HTML report, the profile section and the demo hooks."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from crmkit.cli.context import CLIContext
from crmkit.cli.main import cli
from crmkit_analytics.testing import AS_OF, SOURCE


def run(crm: Any, *args: str) -> Result:
    url = crm.engine.url.render_as_string(hide_password=False)
    return CliRunner().invoke(cli, ["--db", url, *args], obj=CLIContext(plugins=["analytics", SOURCE]))


@pytest.fixture
def ladder(analytics_crm: Any, shop: Any, people: Any) -> list[int]:
    """Customer i (1…10): i purchases of 100,000 ₫, the last 10·i days before AS_OF."""
    ids = people(10)
    shop.insert_quietly([{"customer_id": cid, "occurred_at": AS_OF - timedelta(days=10 * i + 3 * k),
                          "amount_minor": 100_000, "currency": "VND"}
                         for i, cid in enumerate(ids, start=1) for k in range(i)])
    return ids


def test_cli_rfm_in_every_format(analytics_crm: Any, ladder: list[int]) -> None:
    as_of = AS_OF.isoformat()
    result = run(analytics_crm, "analytics", "rebuild")
    assert result.exit_code == 0, result.output
    assert "rebuilt purchase aggregates: 10 customer-currency rows" in result.output
    table = run(analytics_crm, "analytics", "rfm", "--as-of", as_of)
    assert table.exit_code == 0, table.output
    assert re.search(r"cant_lose\s+2\s+20\.0%\s+95\s+9\.50\s+1\.900\.000 ₫\s+R 1–2, FM 5", table.output)
    as_json = json.loads(run(analytics_crm, "--format", "json", "analytics", "rfm", "--as-of", as_of).output)
    assert {r["segment"]: r["monetary_minor"] for r in as_json}["cant_lose"] == 1_900_000
    actions = {r["segment"]: r["action"] for r in as_json}  # JSON keeps the English action; a table translates it
    assert actions["cant_lose"] == "the best customers are slipping away: call them"
    vietnamese = run(analytics_crm, "--locale", "vi", "analytics", "rfm", "--as-of", as_of, "--latest").output
    assert "the best customers" not in vietnamese and "mua gần đây, thường xuyên và chi nhiều" in vietnamese
    listing = run(analytics_crm, "analytics", "rfm", "--as-of", as_of, "--list", "--segment", "new", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(listing.output)))
    assert [(r["customer_id"], r["score"], r["monetary_minor"]) for r in rows] == [
        (str(ladder[1]), "511", "200000"), (str(ladder[0]), "511", "100000")]


def test_cli_measures_and_settings(analytics_crm: Any, ladder: list[int]) -> None:
    as_of = ["--as-of", AS_OF.isoformat()]
    assert run(analytics_crm, "analytics", "rebuild").exit_code == 0
    types = run(analytics_crm, "--format", "json", "analytics", "types", *as_of)
    assert {r["type"]: r["customers"] for r in json.loads(types.output)}["loyal"] == 3  # i = 8, 9, 10; 4–7 are new
    pcv = run(analytics_crm, "analytics", "pcv", *as_of, "--discount-rate", "0", "--top", "1")
    assert "total 5.500.000 ₫" in pcv.output and "1.000.000 ₫" in pcv.output
    bad = run(analytics_crm, "analytics", "pcv", "--discount-rate", "1.5")
    assert bad.exit_code == 1 and "discount_rate: must be at least 0 and below 1" in bad.output
    settings = run(analytics_crm, "analytics", "settings", "--discount-rate", "0.08", "--estimate", "cant_lose=5000000")
    assert settings.exit_code == 0, settings.output
    assert analytics_crm.analytics.settings()["discount_rate"] != "0.08"  # the fixture's CRM read settings at start
    reopened = run(analytics_crm, "--format", "json", "analytics", "settings")
    values = {r["setting"]: r["value"] for r in json.loads(reopened.output)}
    assert values["discount_rate"] == "0.08" and values["category_spend_estimates"] == {"cant_lose": 5_000_000}
    sow = run(analytics_crm, "analytics", "sow", *as_of)
    assert sow.exit_code == 0, sow.output
    assert "Growth opportunities" in sow.output
    clv = run(analytics_crm, "analytics", "clv", *as_of, "--top", "3")
    assert clv.exit_code == 0, clv.output
    assert "BG/NBD (weeks): r=" in clv.output and "total CLV" in clv.output
    kpis = run(analytics_crm, "--format", "csv", "analytics", "kpis", *as_of, "--months", "2")
    assert kpis.output.splitlines()[0] == "month,acquired,active,orders,revenue_minor,aov_minor,purchase_frequency," \
                                          "retention,churn"
    by = run(analytics_crm, "--format", "json", "analytics", "kpis", *as_of, "--by", "gender")
    assert json.loads(by.output)[0]["revenue_minor"] == 5_500_000
    cohorts = run(analytics_crm, "analytics", "cohorts", *as_of, "--months", "12")
    assert cohorts.exit_code == 0 and "cohort" in cohorts.output
    history = json.loads(run(analytics_crm, "--format", "json", "analytics", "runs").output)
    assert [r["measure"] for r in history][:2] == ["clv", "sow"]


def test_report_is_self_contained_and_never_shows_nan(analytics_crm: Any, ladder: list[int], tmp_path: Path) -> None:
    analytics_crm.analytics.rebuild()
    out = tmp_path / "report.html"
    result = run(analytics_crm, "analytics", "report", "--out", str(out), "--as-of", AS_OF.isoformat(),
                 "--charts", str(tmp_path / "charts"))
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    for heading in ("Headlines", "Month by month", "RFM segments", "Customer types", "Lifetime value",
                    "Past customer value", "Share of wallet", "Cohort retention", "CRM activity"):
        assert f"<h2>{heading}</h2>" in page
    assert "Nguyễn Văn An" in page or "Trần Thị Bình" in page
    assert not re.search(r"\bnan\b|\binf\b", page, re.IGNORECASE)
    assert "http://" not in page and "https://" not in page and "<script" not in page  # nothing fetched
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) >= 5 and all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)
    saved = sorted(p.name for p in (tmp_path / "charts").iterdir())
    assert "rfm_grid.png" in saved and "rfm_grid.svg" in saved and "cohorts.svg" in saved


def test_report_without_purchases_explains_instead_of_failing(analytics_crm: Any, people: Any, tmp_path: Path) -> None:
    people(2)
    path = analytics_crm.analytics.report(tmp_path / "empty.html", as_of=AS_OF)
    page = path.read_text(encoding="utf-8")
    assert "No purchases yet" in page and "lifetime value needs purchase history" in page
    assert not re.search(r"\bnan\b", page, re.IGNORECASE)


def test_profile_shows_values_with_their_dates(analytics_crm: Any, ladder: list[int]) -> None:
    analytics_crm.analytics.rebuild()
    analytics_crm.analytics.rfm(as_of=AS_OF)
    analytics_crm.analytics.pcv(as_of=AS_OF, discount_rate=0)
    section = analytics_crm.customers.profile(ladder[9]).sections["analytics"]
    assert section["purchases"][0]["purchases"] == 10 and section["purchases"][0]["total"] == "1.000.000 ₫"
    assert section["rfm"]["segment"] == "cant_lose" and section["rfm"]["as_of"] == AS_OF
    assert section["pcv"]["pcv"] == "1.000.000 ₫" and "computed_at" in section["pcv"]
    assert "clv" not in section  # never computed


def test_demo_overview_lists_segments_and_top_customers(analytics_crm: Any, shop: Any, people: Any) -> None:
    from crmkit.core.types import utcnow

    now = utcnow()  # the demo computes for today
    ids = people(10)
    shop.insert_quietly([{"customer_id": cid, "occurred_at": now - timedelta(days=10 * i + 3 * k),
                          "amount_minor": 100_000 + 1_000 * k, "currency": "VND"}
                         for i, cid in enumerate(ids, start=1) for k in range(i)])
    analytics_crm.analytics.rebuild()
    overview = analytics_crm.hooks.demo_overview()
    segments = next(lines for title, lines in overview.items() if title.startswith("RFM segments"))
    assert "Can't lose them: 2" in segments
    top = next(lines for title, lines in overview.items() if title.startswith("Top customers"))
    assert len(top) == 5



def test_cli_rfm_monetary_average(analytics_crm: Any, ladder: list[int]) -> None:
    as_of = ["--as-of", AS_OF.isoformat()]
    assert run(analytics_crm, "analytics", "rebuild").exit_code == 0
    table = run(analytics_crm, "analytics", "rfm", *as_of, "--monetary", "average")
    assert table.exit_code == 0, table.output
    assert "monetary = average per purchase" in table.output
    as_json = json.loads(run(analytics_crm, "--format", "json", "analytics", "rfm", *as_of, "--monetary",
                             "average").output)
    # every ladder purchase is 100,000 ₫: the average is the same for all, whatever the frequency
    assert {r["avg_purchase_value_minor"] for r in as_json if r["customers"]} == {100_000}
    listing = run(analytics_crm, "--format", "csv", "analytics", "rfm", "--latest", "--list")
    assert {r["monetary_minor"] for r in csv.DictReader(io.StringIO(listing.output))} == {"100000"}
    assert "monetary = total spend" in run(analytics_crm, "analytics", "rfm", *as_of).output
    bad = run(analytics_crm, "analytics", "rfm", "--monetary", "mean")
    assert bad.exit_code != 0 and "--monetary" in bad.output
    assert run(analytics_crm, "analytics", "settings", "--rfm-monetary", "average").exit_code == 0
    assert "monetary = average per purchase" in run(analytics_crm, "analytics", "rfm", *as_of).output


def test_cli_run_computes_every_measure_and_says_why_one_could_not_be(analytics_crm: Any, ladder: list[int]) -> None:
    rows = json.loads(run(analytics_crm, "--format", "json", "analytics", "run", "--as-of", AS_OF.isoformat()).output)
    by_measure = {row["measure"]: row for row in rows}
    assert set(by_measure) == {"rfm", "types", "pcv", "sow", "clv"}
    assert by_measure["rfm"]["customers"] == 10 and by_measure["rfm"]["run"] == analytics_crm.analytics.latest("rfm").id
    assert all(row["problem"] is None for row in rows if row["run"] is not None)


def test_cli_run_on_a_crm_without_purchases_names_what_needs_purchase_history(analytics_crm: Any) -> None:
    result = run(analytics_crm, "analytics", "run")
    assert result.exit_code == 0, result.output
    assert re.search(r"clv\s+history: no purchases yet: lifetime value needs purchase history", result.output)
