"""The `crmkit analytics` commands, the HTML report, the profile section and the demo hooks."""

from __future__ import annotations

import base64
import csv
import html
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
    shop.insert_quietly(
        [
            {
                "customer_id": cid,
                "occurred_at": AS_OF - timedelta(days=10 * i + 3 * k),
                "amount_minor": 100_000,
                "currency": "VND",
            }
            for i, cid in enumerate(ids, start=1)
            for k in range(i)
        ]
    )
    return ids


def test_cli_rfm_in_every_format(analytics_crm: Any, ladder: list[int]) -> None:
    as_of = AS_OF.isoformat()
    result = run(analytics_crm, "analytics", "rebuild")
    assert result.exit_code == 0, result.output
    assert "rebuilt purchase aggregates: 10 customer-currency rows" in result.output
    table = run(analytics_crm, "analytics", "rfm", "--as-of", as_of)
    assert table.exit_code == 0, table.output
    assert re.search(r"cant_lose\s+2\s+20%\s+95\s+9\.5\s+₫1,900,000\s+R 1–2, FM 5", table.output)
    assert table.output.startswith("RFM segments for Jun 30, 2027, 7:00 PM (Indochina Time) in VND, computed ")
    as_json = json.loads(run(analytics_crm, "--format", "json", "analytics", "rfm", "--as-of", as_of).output)
    assert {r["segment"]: r["monetary_minor"] for r in as_json}["cant_lose"] == 1_900_000
    actions = {r["segment"]: r["action"] for r in as_json}  # JSON keeps the English action; a table translates it
    assert actions["cant_lose"] == "the best customers are slipping away: call them"
    vietnamese = run(analytics_crm, "--locale", "vi", "analytics", "rfm", "--as-of", as_of, "--latest").output
    assert "the best customers" not in vietnamese and "mua gần đây, thường xuyên và chi nhiều" in vietnamese
    # the title and every figure the Vietnamese way: 20%, 9,5 purchases, 1.900.000 ₫, times with the zone named
    assert re.match(
        r"Phân khúc RFM tính đến 30/06/2027 19:00 \(Giờ Đông Dương\) theo VND, lập lúc "
        r"\d\d/\d\d/\d{4} \d\d:\d\d \(Giờ Đông Dương\), M = tổng chi tiêu\n",
        vietnamese,
    )
    assert re.search(r"cant_lose\s+2\s+20%\s+95\s+9,5\s+1\.900\.000\xa0₫\s+R 1–2, FM 5", vietnamese)
    for fmt in ("json", "csv"):  # what a program reads does not depend on the locale
        assert (
            len(
                {
                    run(analytics_crm, "--locale", locale, "--format", fmt, "analytics", "rfm", "--latest").output
                    for locale in ("vi", "en")
                }
            )
            == 1
        )
    listing = run(analytics_crm, "analytics", "rfm", "--as-of", as_of, "--list", "--segment", "new", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(listing.output)))
    assert [(r["customer_id"], r["score"], r["monetary_minor"]) for r in rows] == [
        (str(ladder[1]), "511", "200000"),
        (str(ladder[0]), "511", "100000"),
    ]


def test_every_title_the_commands_print_has_its_vietnamese_translation(analytics_crm: Any) -> None:
    from crmkit.console.testing import untranslated

    assert untranslated(analytics_crm, "analytics", sources=("commands.py",)) == []


def test_cli_measures_and_settings(analytics_crm: Any, ladder: list[int]) -> None:
    as_of = ["--as-of", AS_OF.isoformat()]
    assert run(analytics_crm, "analytics", "rebuild").exit_code == 0
    types = run(analytics_crm, "--format", "json", "analytics", "types", *as_of)
    assert {r["type"]: r["customers"] for r in json.loads(types.output)}["loyal"] == 3  # i = 8, 9, 10; 4–7 are new
    pcv = run(analytics_crm, "analytics", "pcv", *as_of, "--discount-rate", "0", "--top", "1")
    assert "10 customers, total ₫5,500,000" in pcv.output and "₫1,000,000" in pcv.output
    pcv = run(analytics_crm, "--locale", "vi", "analytics", "pcv", "--latest", "--top", "1")
    assert (
        "Giá trị khách hàng đã mang lại tính đến" in pcv.output
        and "10 khách hàng, tổng cộng 5.500.000\xa0₫" in pcv.output
    )
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
    assert "Growth opportunities" in sow.output and "overall share " in sow.output
    sow = run(analytics_crm, "--locale", "vi", "analytics", "sow", "--latest")
    assert "Cơ hội tăng trưởng (chi tiêu cho ngành hàng ≥ " in sow.output and "tỷ trọng chi tiêu chung" in sow.output
    clv = run(analytics_crm, "analytics", "clv", *as_of, "--top", "3")
    assert clv.exit_code == 0, clv.output
    assert "BG/NBD: r=" in clv.output and "total CLV" in clv.output
    kpis = run(analytics_crm, "--format", "csv", "analytics", "kpis", *as_of, "--months", "2")
    assert (
        kpis.output.splitlines()[0] == "month,acquired,active,orders,revenue_minor,aov_minor,purchase_frequency,"
        "retention,churn"
    )
    by = run(analytics_crm, "--format", "json", "analytics", "kpis", *as_of, "--by", "gender")
    assert json.loads(by.output)[0]["revenue_minor"] == 5_500_000
    cohorts = run(analytics_crm, "analytics", "cohorts", *as_of, "--months", "12")
    assert cohorts.exit_code == 0 and "cohort" in cohorts.output
    history = json.loads(run(analytics_crm, "--format", "json", "analytics", "runs").output)
    assert [r["measure"] for r in history][:2] == ["clv", "sow"]


def test_report_is_self_contained_and_never_shows_nan(analytics_crm: Any, ladder: list[int], tmp_path: Path) -> None:
    analytics_crm.analytics.rebuild()
    out = tmp_path / "report.html"
    result = run(
        analytics_crm,
        "analytics",
        "report",
        "--out",
        str(out),
        "--as-of",
        AS_OF.isoformat(),
        "--charts",
        str(tmp_path / "charts"),
    )
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    for heading in (
        "Headlines",
        "Month by month",
        "RFM segments",
        "Customer types",
        "Lifetime value",
        "Past customer value",
        "Share of wallet",
        "Cohort retention",
        "CRM activity",
    ):
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
    path = analytics_crm.analytics.report(tmp_path / "empty.html", as_of=AS_OF, locale="en")
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
    shop.insert_quietly(
        [
            {
                "customer_id": cid,
                "occurred_at": now - timedelta(days=10 * i + 3 * k),
                "amount_minor": 100_000 + 1_000 * k,
                "currency": "VND",
            }
            for i, cid in enumerate(ids, start=1)
            for k in range(i)
        ]
    )
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
    as_json = json.loads(
        run(analytics_crm, "--format", "json", "analytics", "rfm", *as_of, "--monetary", "average").output
    )
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


def _visible(page: str) -> list[str]:
    """What a reader sees in the report: its texts, one per element (the CSS and the charts left out)."""
    page = re.sub(r"<style>.*?</style>|<img[^>]*>", "", page, flags=re.S)
    return [line.strip() for line in html.unescape(re.sub(r"<[^>]+>", "\n", page)).splitlines() if line.strip()]


def test_report_speaks_the_locale_with_times_in_the_business_zone(
    analytics_crm: Any, ladder: list[int], tmp_path: Path
) -> None:
    analytics_crm.analytics.rebuild()
    pages = {}
    for locale in ("vi", "en"):
        out = tmp_path / f"{locale}.html"
        result = run(
            analytics_crm, "--locale", locale, "analytics", "report", "--out", str(out), "--as-of", AS_OF.isoformat()
        )
        assert result.exit_code == 0, result.output
        pages[locale] = out.read_text(encoding="utf-8")
    vi, en = pages["vi"], pages["en"]
    assert '<html lang="vi">' in vi and "<h2>Phân khúc RFM</h2>" in vi and "<h2>Giá trị vòng đời</h2>" in vi
    assert '<html lang="en">' in en and "<h2>RFM segments</h2>" in en
    # cant_lose: 2 customers of 10 with 1,900,000 ₫ between them, in each locale's style
    assert re.search(
        r"Không thể để mất</td><td class=\"n\">2</td><td class=\"n\">20%</td>"
        r"<td class=\"n\">1\.900\.000\xa0₫</td>",
        vi,
    )
    assert re.search(
        r"Can&#x27;t lose them</td><td class=\"n\">2</td><td class=\"n\">20%</td>"
        r"<td class=\"n\">₫1,900,000</td>",
        en,
    )
    assert "66,7%" in vi and "66.7%" in en  # April's retention
    # every time says its zone, the header's and the sections' alike (no bare UTC next to a local time)
    local = analytics_crm.timezone
    computed = re.search(r"lập lúc (\d\d/\d\d/\d{4} \d\d:\d\d) \(Giờ Đông Dương\)", vi)
    assert computed and "UTC" not in " ".join(_visible(vi)).replace("theo UTC", "")
    assert f"Tính đến {AS_OF.astimezone(local):%d/%m/%Y %H:%M} (Giờ Đông Dương)" in vi
    assert "generated " in en and "(Indochina Time) · computed" in en
    # nothing in English left in the Vietnamese report but customers' names and the measures' acronyms
    english = set(_visible(en))
    left = [
        text
        for text in _visible(vi)
        if text in english
        and re.search(r"[A-Za-z]{3}", text)
        and text not in {"CLV", "PCV"}
        and not re.fullmatch(r"\D*[À-ỹ]\D* \d+", text)
    ]  # "Lê Minh Châu 2"
    assert left == []


@pytest.mark.sqlite_only  # the charts and the catalogs, not the database
def test_report_charts_label_axes_and_numbers_in_the_report_s_language(analytics_crm: Any) -> None:
    import numpy as np

    from crmkit.i18n import plugin_translator
    from crmkit_analytics import charts

    months = [
        {"month": "2027-05", "revenue_minor": 1_234_567, "active": 3},
        {"month": "2027-06", "revenue_minor": 2_500_000, "active": 5},
    ]
    cohorts = [{"cohort": "2027-05", "customers": 1_500, "retention": [1.0, 0.667]}]
    expected = {
        "vi": (
            "Doanh thu (VND)",
            "Khách có mua",
            "1.234.567",
            "Phân bố giá trị vòng đời theo khách hàng",
            "giá trị vòng đời kỳ vọng trong kỳ dự báo (VND; cột cuối: 1% cao nhất)",
            "67%",
            "2027-05 (1.500)",
            " 1.234 (100%)",
            "số tháng kể từ lần mua đầu",
        ),
        "en": (
            "revenue (VND)",
            "active customers",
            "1,234,567",
            "How lifetime value is spread over customers",
            "expected lifetime value over the horizon (VND; last bar: top 1%)",
            "67%",
            "2027-05 (1,500)",
            " 1,234 (100%)",
            "months since first purchase",
        ),
    }
    for locale, (revenue, active, amount, title, spread, kept, cohort, bar, since) in expected.items():
        t = plugin_translator(analytics_crm, "analytics", locale)
        left, right = charts.monthly_trend(months, "VND", t.gettext, locale=t).axes
        assert (left.get_ylabel(), right.get_ylabel()) == (revenue, active)
        assert left.yaxis.get_major_formatter()(1_234_567, 0) == amount
        clv = charts.clv_distribution(np.array([100_000.0, 2_000_000.0]), "VND", t.gettext, locale=t).axes[0]
        assert (clv.get_title(), clv.get_xlabel()) == (title, spread)
        heat = charts.cohort_heatmap(cohorts, t.gettext, locale=t).axes[0]
        assert kept in [text.get_text() for text in heat.texts] and heat.get_xlabel() == since
        assert [label.get_text() for label in heat.get_yticklabels()] == [cohort]
        sizes = charts.segment_sizes({"loyal": 1_234}, {"loyal": "Loyal"}, charts.TYPE_COLOURS, "", t.gettext, locale=t)
        assert [text.get_text() for text in sizes.axes[0].texts] == [bar]
        charts.plt.close("all")
