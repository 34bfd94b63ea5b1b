"""Service reports (issue 17 item 7): backlog by status and age, SLA compliance per team and agent, first-contact
resolution, reopen rate, CSAT and its trend, busiest hours — through ``crm.service.reports``, the CLI (table, JSON,
CSV and an HTML file), the API, the console page in a real browser, and the hook QCI/analytics read case data by."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import expect

from crmkit.testing import add_user, api_client

pytestmark = pytest.mark.crmkit_plugins("service")
PASSWORD = "Sen-hong-2026!"


@pytest.fixture
def clock(clock: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The service's frozen clock, also for the reports' "now" and the survey times."""
    monkeypatch.setattr("crmkit_service.reports.utcnow", clock)
    monkeypatch.setattr("crmkit_service.csat.utcnow", clock)
    return clock


def _fill(crm: Any, clock: Any) -> dict[str, Any]:
    """A week of cases: Hoa (CSKH) answers and resolves at first contact, Minh (Kỹ thuật) misses an SLA and gets
    a case reopened; two customers rate them."""
    crm.teams.add("CSKH")
    crm.teams.add("Kỹ thuật")
    add_user(crm, "hoa", teams=["CSKH"], roles=["support"])
    add_user(crm, "minh", teams=["Kỹ thuật"], roles=["support"])
    an = crm.customers.add(name="Nguyễn Văn An")
    binh = crm.customers.add(name="Trần Thị Bình")
    clock.at(2026, 12, 7, 9, 0)
    quick = crm.service.open(an.id, "Hỏi giờ mở cửa", assignee="hoa", team="CSKH", category="question")
    crm.service.reply(quick.id, "Dạ 8h–17h ạ")
    crm.service.set_status(quick.id, "resolved", resolution="Đã trả lời")
    crm.service.csat.record(quick.id, 5, "Nhanh")
    clock.at(2026, 12, 7, 10, 0)
    slow = crm.service.open(binh.id, "Máy lạnh chảy nước", assignee="minh", team="Kỹ thuật", category="complaint")
    crm.service.run_due(now=slow.first_response_due_at + timedelta(minutes=1))
    clock.at(2026, 12, 8, 14, 0)
    crm.service.reply(slow.id, "Kỹ thuật viên đến chiều nay")
    crm.service.set_status(slow.id, "resolved", resolution="Thông ống thoát nước")
    crm.service.reply(slow.id, "Lại chảy nước", direction="inbound")  # reopened
    crm.service.reply(slow.id, "Em cho người qua lại")
    crm.service.set_status(slow.id, "resolved", resolution="Thay ống")
    crm.service.csat.record(slow.id, 2, "Phải gọi hai lần")
    clock.at(2026, 12, 9, 20, 30)
    waiting = crm.service.open(an.id, "Đổi hàng", assignee="hoa", team="CSKH")
    crm.service.set_status(waiting.id, "waiting_on_customer")
    clock.at(2026, 12, 16, 9, 0)
    return {"an": an, "binh": binh, "quick": quick, "slow": slow, "waiting": waiting}


def test_every_report_counts_what_happened(crm, clock):
    cases = _fill(crm, clock)
    reports = crm.service.reports
    since = datetime(2026, 12, 1, tzinfo=UTC)
    assert reports.backlog(now=datetime(2026, 12, 16, 2, 0, tzinfo=UTC)) == [
        {"status": "waiting_on_customer", "age": "3-7d", "cases": 1}
    ]
    assert reports.sla_compliance(since=since) == [
        {
            "team": "CSKH",
            "assignee": "hoa",
            "cases": 2,
            "first_response_missed": 0,
            "resolution_missed": 0,
            "compliance": 100.0,
        },
        {
            "team": "Kỹ thuật",
            "assignee": "minh",
            "cases": 1,
            "first_response_missed": 1,
            "resolution_missed": 0,
            "compliance": 0.0,
        },
    ]
    assert reports.first_contact_resolution(since=since) == [
        {"team": "CSKH", "resolved": 1, "first_contact": 1, "fcr": 100.0},
        {"team": "Kỹ thuật", "resolved": 1, "first_contact": 0, "fcr": 0.0},
    ]
    assert reports.reopen_rate(since=since) == [
        {"team": "CSKH", "resolved": 1, "reopened": 0, "reopen_rate": 0.0},
        {"team": "Kỹ thuật", "resolved": 1, "reopened": 1, "reopen_rate": 100.0},
    ]
    assert reports.csat(since=since) == [
        {"assignee": "hoa", "answers": 1, "average": 5.0, "satisfied": 100.0},
        {"assignee": "minh", "answers": 1, "average": 2.0, "satisfied": 0.0},
    ]
    assert reports.csat_trend(since=since, by="category") == [
        {"category": "complaint", "month": "2026-12", "answers": 1, "average": 2.0},
        {"category": "question", "month": "2026-12", "answers": 1, "average": 5.0},
    ]
    assert reports.busiest_hours(since=since)[:1] == [{"weekday": 0, "hour": 9, "cases": 1}]
    assert {(r["weekday"], r["hour"]) for r in reports.busiest_hours(since=since)} == {(0, 9), (0, 10), (2, 20)}
    (stats,) = crm.hooks.call("crmkit_service_case_stats", since=since)
    assert stats == [
        {"customer_id": cases["an"].id, "cases": 2, "complaints": 0, "breached": 0, "csat_average": 5.0},
        {"customer_id": cases["binh"].id, "cases": 1, "complaints": 1, "breached": 1, "csat_average": 2.0},
    ]


def test_reports_read_only_the_users_scope_and_refuse_bad_periods(crm, clock):
    _fill(crm, clock)
    add_user(crm, "lan", roles=["sales"])
    crm.customers.add(name="Của Lan", owner="lan")
    lan = crm.as_user("lan")
    assert lan.service.reports.sla_compliance(since=datetime(2026, 12, 1, tzinfo=UTC)) == []
    with pytest.raises(Exception) as bad:
        crm.service.reports.sla_compliance(since=datetime(2026, 12, 20, tzinfo=UTC))
    assert "since" in bad.value.errors
    with pytest.raises(Exception) as bad:
        crm.service.reports.run("nps")
    assert "name" in bad.value.errors


def test_reports_through_the_cli_in_every_format_and_as_an_html_file(crm, clock, run, tmp_path):
    _fill(crm, clock)
    table = run("--locale", "vi", "service", "report", "sla", "--since", "2026-12-01")
    assert table.exit_code == 0, table.stderr
    assert "Tuân thủ SLA theo nhóm và nhân viên" in table.stdout and "Kỹ thuật" in table.stdout
    rows = json.loads(run("--format", "json", "service", "report", "fcr", "--since", "2026-12-01").stdout)
    assert [(r["team"], r["fcr"]) for r in rows] == [("CSKH", 100.0), ("Kỹ thuật", 0.0)]
    text = run("service", "report", "csat", "--since", "2026-12-01", "--by", "team", "--format", "csv").stdout
    assert [r["team"] for r in csv.DictReader(io.StringIO(text))] == ["CSKH", "Kỹ thuật"]
    page = tmp_path / "sla.html"
    written = run("--locale", "vi", "service", "report", "reopens", "--since", "2026-12-01", "--html", str(page))
    assert written.exit_code == 0, written.stderr
    html = page.read_text(encoding="utf-8")
    assert "<svg" in html and "Tỷ lệ mở lại theo nhóm" in html and "Kỹ thuật" in html


def test_reports_and_settings_through_the_api(crm, clock):
    _fill(crm, clock)
    hoa = api_client(crm, "hoa")
    answer = hoa.get("/service/reports/sla?since=2026-12-01T00:00:00%2B07:00")
    assert answer.status_code == 200 and [r["assignee"] for r in answer.json] == ["hoa", "minh"]
    assert hoa.get("/service/reports/nps").status_code == 422
    assert hoa.put("/service/settings/reply_to_resolved", json={"value": "refuse"}).status_code == 403
    admin = api_client(crm, "quan", roles=["administrator"])
    rule = admin.put("/service/sla/rules/urgent", json={"customer_group": "diamond", "first_response_minutes": 15})
    assert rule.status_code == 200 and rule.json["first_response_minutes"] == 15
    assert [r["customer_group"] for r in hoa.get("/service/sla/rules").json] == ["diamond"]
    assert admin.put("/service/settings/reply_to_resolved", json={"value": "refuse"}).json["value"] == "refuse"
    assert hoa.get("/service/settings").json["reply_to_resolved"] == "refuse"


@pytest.mark.parametrize("browser_locale", ["vi-VN"])
def test_a_manager_reads_the_reports_with_their_charts_in_the_console(
    crm: Any, clock: Any, live_server: str, new_browser_page: Any, screenshot: Any
) -> None:
    _fill(crm, clock)
    crm.users.add("lan", "Phạm Thị Lan", password=PASSWORD, locale="vi", roles=["support"])
    page = new_browser_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{live_server}/console/")
    page.get_by_label("Tên đăng nhập").fill("lan")
    page.get_by_label("Mật khẩu").fill(PASSWORD)
    page.get_by_role("button", name="Đăng nhập").click()
    page.goto(f"{live_server}/console/service/reports")  # in the menu under "Yêu cầu hỗ trợ"
    expect(page.get_by_role("heading", level=1)).to_have_text("Tồn đọng theo trạng thái và tuổi")
    page.get_by_label("Báo cáo").select_option(label="Tuân thủ SLA theo nhóm và nhân viên")
    page.get_by_label("Khoảng thời gian").select_option(label="365 ngày gần nhất")
    page.get_by_role("button", name="Xem").click()
    expect(page).to_have_url(re.compile(r"name=sla"))
    expect(page.get_by_role("img", name="Tuân thủ SLA theo nhóm và nhân viên")).to_be_visible()
    expect(page.locator("table")).to_contain_text("Kỹ thuật")
    expect(page.locator("table")).to_contain_text("Tuân thủ (%)")
    screenshot(page, "console-service-reports")
