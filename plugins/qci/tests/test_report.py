"""The HTML report (radar chart, KPI table with trends, the plan, print CSS) and the demo's QCI section."""

from __future__ import annotations

import html as html_text
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from crmkit.demo import build_demo, overview
from crmkit_qci import radar
from crmkit_qci.areas import AREAS

from .conftest import at, ok, staff

SVG = "{http://www.w3.org/2000/svg}"


def test_radar_skips_missing_scores_instead_of_drawing_zero() -> None:
    axes = [a.title for a in AREAS]
    values = [50.0, None, 80.0, 20.0, None, 0.0, 100.0, 40.0, 60.0, None, 70.0]
    root = ET.fromstring(radar.svg(axes, [radar.Series("Assessment", "#1f5f99", values)]))
    assert len(root.findall(f"{SVG}line")) == len(axes) + 1  # one spoke per area, and the legend
    dots = root.findall(f"{SVG}circle")
    assert len(dots) == 8  # the three missing scores are not drawn (a real 0.0 is)
    assert dots[3].find(f"{SVG}title").text == "Assessment: Acquisition 0.0"
    outline = root.findall(f"{SVG}polygon")[-1]
    assert len(outline.get("points").split()) == 8 and outline.get("stroke") == "#1f5f99"
    labels = [" ".join(t.itertext()) for t in root.findall(f"{SVG}text")]
    assert "Customer experience" in labels and "Analysis & planning" in labels  # wrapped on two lines


def test_report_is_one_printable_file(qci_crm: Any, tmp_path: Path) -> None:
    crm = qci_crm
    staff(crm, "thao.vo")
    who = crm.customers.add(name="Võ Thị Sáu", owner="thao.vo").id
    for day, rating in (("2025-02-03", 3), ("2025-03-03", 5)):
        crm.interactions.log(who, "phone", occurred_at=at(day), rating=rating, employee="ngoc.do")
    crm.qci.assessments.record({"RE1": 1, "RE2": 2, "RE3": 1, "RE4": 1, "RE5": 1}, assessed_on="2025-01-15")
    crm.qci.assessments.record({"RE1": 3, "RE2": 2, "RE3": 4, "RE4": 3, "RE5": 2}, assessed_on="2025-03-20")
    crm.qci.generate_plan("2025-03", areas=2)
    out = tmp_path / "bao-cao-qci.html"
    assert f"wrote {out}" in ok(crm, "qci", "report", "--out", str(out), "--period", "2025-03").stdout
    html = out.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "<title>QCI report 2025-03</title>" in html
    assert "@media print" in html and "@page{size:A4" in html
    assert not re.search(r"""(src|href)=["']?https?:""", html)  # self-contained: nothing to fetch
    svg = html[html.index("<svg") : html.index("</svg>") + 6]
    root = ET.fromstring(svg)
    dots = [c.find(f"{SVG}title").text for c in root.findall(f"{SVG}circle")]
    assert [d for d in dots if d.startswith("Assessment")] == [
        "Assessment: Retention 46.4"
    ]  # 100 × 3.25 / 7; the only area assessed
    assert "Data: Customer experience 100.0" in dots  # satisfaction green, the only lit experience KPI
    # the KPI table: satisfaction 5.00 against 4.00, up from 3.00; a KPI without data says why
    row = html[html.index("Average satisfaction") :]
    row = row[: row.index("</tr>")]
    assert "5.00 / 5" in row and "≥ 4.00 / 5" in row and "▲ +2.00" in row and "green" in row
    assert "no data: no purchase" not in html  # purchases are not available here, which is different:
    assert "not available: install crmkit-sales" in html
    assert "Assessments over time" in html and "Jan 15, 2025" in html and "Mar 20, 2025" in html
    assert "Win back customers at risk and lapsed customers" in html and "why: Retention: assessment" in html


def test_demo_shows_the_scorecard_headline(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["qci"])
    build_demo(crm, customers=40, seed=7)
    assessments = crm.qci.assessments.list()
    assert len(assessments) == 2 and assessments[0].overall < assessments[1].overall  # the demo shows progress
    assert crm.qci.plan.list() and len(crm.qci.costs.list()) == 9
    lines = overview(crm)["QCI scorecard (crmkit qci scorecard)"]
    assert re.fullmatch(
        r"\d{4}-\d{2}: \d+ green, \d+ amber, \d+ red, \d+ without a light "
        r"\(no data, not available or no target\)",
        lines[0],
    )
    assert lines[1].startswith(f"assessment {assessments[1].assessed_on}: overall {assessments[1].overall:.1f} / 100")
    assert lines[2].startswith("weakest areas: ")
    assert re.fullmatch(r"plan: 0 done, 0 in progress, \d+ open, 0 overdue \(crmkit qci plan\)", lines[3])


def _visible(page: str) -> list[str]:
    """The texts a reader sees in the report (the chart's SVG and the CSS left out), one per element."""
    page = re.sub(r"<style>.*?</style>|<svg.*?</svg>", "", page, flags=re.S)
    return [line.strip() for line in html_text.unescape(re.sub(r"<[^>]+>", "\n", page)).splitlines() if line.strip()]


def test_report_and_commands_follow_the_locale(qci_crm: Any, tmp_path: Path) -> None:
    crm = qci_crm
    staff(crm, "thao.vo")
    who = crm.customers.add(name="Võ Thị Sáu", owner="thao.vo").id
    for day, rating in (("2025-02-03", 3), ("2025-03-03", 5)):
        crm.interactions.log(who, "phone", occurred_at=at(day), rating=rating, employee="ngoc.do")
    crm.qci.assessments.record({"RE1": 1, "RE2": 2, "RE3": 1, "RE4": 1, "RE5": 1}, assessed_on="2025-01-15")
    crm.qci.assessments.record({"RE1": 3, "RE2": 2, "RE3": 4, "RE4": 3, "RE5": 2}, assessed_on="2025-03-20")
    crm.qci.generate_plan("2025-03", areas=2)
    pages = {}
    for locale in ("vi", "en"):
        out = tmp_path / f"qci-{locale}.html"
        ok(crm, "--locale", locale, "qci", "report", "--out", str(out), "--period", "2025-03")
        pages[locale] = out.read_text(encoding="utf-8")
    vi, en = pages["vi"], pages["en"]
    assert '<html lang="vi">' in vi and "<title>Báo cáo QCI 2025-03</title>" in vi
    assert '<html lang="en">' in en and "<title>QCI report 2025-03</title>" in en
    row = vi[vi.index("Mức hài lòng trung bình") :]
    row = row[: row.index("</tr>")]  # satisfaction 5.00 against 4.00, up from 3.00, in Vietnamese style
    assert "5,00 / 5" in row and "≥ 4,00 / 5" in row and "▲ +2,00" in row and "xanh" in row
    assert "20/03/2025" in vi and "Mar 20, 2025" in en and "46,4" in vi and "46.4" in en
    assert "(Giờ Đông Dương)" in vi and "(Indochina Time)" in en  # when it was made, the zone named
    assert "<title>Tự đánh giá: Giữ chân khách hàng 46,4</title>" in vi  # the radar's points, in vi style too
    assert "Kéo lại khách có nguy cơ rời bỏ và khách đã ngừng mua" in vi  # the default action, translated
    # nothing in English is left in the Vietnamese report but names and codes: not even why a KPI has no value
    allowed = {"KPI", "#", "crmkit-analytics", "crmkit-campaigns"}
    english = set(_visible(en))
    left = [
        text
        for text in _visible(vi)
        if text in english
        and re.search(r"[A-Za-z]{3}", text)
        and text not in allowed
        and not re.fullmatch(r"[\d/.,\-–—Q ]+", text)
    ]
    assert left == []
    statuses = [text for text in _visible(vi) if text.startswith(("chưa có dữ liệu: ", "không khả dụng: "))]
    assert "không khả dụng: cần cài crmkit-analytics" in statuses
    assert "chưa có dữ liệu: chưa có khách hàng nào tính đến cuối 2025-03" in statuses
    assert (
        "không khả dụng: cần cài crmkit-campaigns, hoặc ghi chi phí thu hút (crmkit qci costs add 2025-03 AMOUNT "
        "--kind acquisition)"
    ) in statuses
    # the commands: the plan and the question bank in the reader's words, JSON and CSV the same in every locale
    plan = ok(crm, "--locale", "vi", "qci", "plan").stdout
    assert plan.startswith("Kế hoạch QCI: 0 đã xong") and "Giữ chân khách hàng" in plan and "Chưa bắt đầu" in plan
    assert "Chúng tôi phân khúc khách hàng theo giá trị" in ok(crm, "--locale", "vi", "qci", "bank", "show").stdout
    for command in (("qci", "plan"), ("qci", "bank", "show")):
        for fmt in ("json", "csv"):
            assert len({ok(crm, "--locale", locale, "--format", fmt, *command).stdout for locale in ("vi", "en")}) == 1
