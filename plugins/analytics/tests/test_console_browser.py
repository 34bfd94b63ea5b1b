"""The analytics dashboard and a QCI scorecard in a real browser (Debian's headless Chromium), as a Vietnamese
manager who computes the figures, records an assessment and plans from it; saves the README's screenshots
(``CRMKIT_SCREENSHOTS=docs/screenshots``)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from playwright.sync_api import expect

from crmkit_analytics.testing import SOURCE

pytestmark = pytest.mark.crmkit_plugins("analytics", "qci", SOURCE)

PASSWORD = "Sen-hong-2026!"


def test_a_manager_computes_the_dashboard_then_assesses_and_plans_on_the_qci_scorecard(
    crm: Any, purchase_history: Callable[..., list[int]], live_server: str, browser_page: Any, screenshot: Any
) -> None:
    crm.users.add("hoa", "Lê Thị Hoa", password=PASSWORD, locale="vi", roles=["marketing", "manager"])
    purchase_history(crm)
    crm.analytics.rebuild()  # after an import, as `crmkit analytics rebuild`: the first page view has less to do
    with crm.acting_as("hoa"):  # last quarter's assessment of every area, recorded with `crmkit qci assess`
        bank = crm.qci.bank()
        earlier = crm.qci.assessments.record(
            {q.id: 1 + (i * 7 + len(q.area)) % 5 for i, q in enumerate(bank.questions())},
            assessed_on=crm.today() - timedelta(days=90),
            label="Quý trước",
        )
    page = browser_page
    page.goto(f"{live_server}/console/")
    page.get_by_label("Username").fill("hoa")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    page.get_by_role("navigation").get_by_role("link", name="Phân tích").click()
    expect(page.get_by_role("heading", name="Chưa có số liệu nào được tính")).to_be_visible()
    with page.expect_navigation(timeout=120_000):  # every measure, the models fitted: slow on a busy machine
        page.get_by_role("button", name="Tính ngay").click(no_wait_after=True)
    expect(page.get_by_role("status")).to_contain_text("Đã tính xong 5 chỉ số.")
    expect(page.get_by_role("heading", name="Phân khúc RFM")).to_be_visible()
    grid = page.get_by_role("img", name="Lưới RFM: số khách hàng mỗi ô")
    expect(grid).to_be_visible()
    assert grid.evaluate("image => image.naturalWidth") > 0  # the SVG data URI loads under the CSP
    expect(page.get_by_role("row", name=re.compile(r"^Khách VIP \d+ "))).to_be_visible()
    screenshot(page, "console-analytics")

    page.get_by_role("navigation").get_by_role("link", name="QCI").click()
    page.get_by_role("link", name="Đánh giá mới").click()
    page.get_by_label("Tên gọi (không bắt buộc)").fill("Tự đánh giá quý 4")
    retention = page.get_by_role("region", name="Giữ chân khách hàng")
    for number, point in (("1", "2"), ("2", "1"), ("3", "3"), ("4", "4"), ("5", "2")):
        retention.get_by_role("group", name=re.compile(rf"^RE{number}\. ")).get_by_role(
            "radio", name=re.compile(rf"^{point} · ")
        ).check()
    page.get_by_role("button", name="Lưu đánh giá").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Bảng điểm QCI: đánh giá ngày")
    # weights 2, 1.5, 1.5, 1, 1 on a 1–5 scale: 100 × (2·1 + 1.5·0 + 1.5·2 + 1·3 + 1·1) / 4 / 7 = 32,1
    expect(page.get_by_role("row", name="Giữ chân khách hàng 32,1 5/5 —")).to_be_visible()
    page.get_by_role("button", name="Lập kế hoạch cho các lĩnh vực yếu nhất").click()
    expect(page.get_by_role("status")).to_contain_text("Đã thêm")
    expect(page.get_by_role("cell", name="Giữ chân khách hàng").first).to_be_visible()  # the plan's new actions

    page.get_by_role("link", name="Tất cả các lần đánh giá").click()
    page.get_by_role("link", name=f"{earlier.assessed_on:%d/%m/%Y}").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"đánh giá ngày {earlier.assessed_on:%d/%m/%Y}")
    radar = page.get_by_role("img", name=re.compile("^Biểu đồ radar các lĩnh vực QCI"))
    expect(radar).to_be_visible()
    assert radar.evaluate("image => image.naturalWidth") > 0
    screenshot(page, "console-qci")
