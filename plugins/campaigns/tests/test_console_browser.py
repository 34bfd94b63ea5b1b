"""The campaigns console in a real browser (Debian's headless Chromium through Playwright, against a live server):
a Vietnamese marketer builds a segment watching its count change as she types, creates a campaign, previews it,
runs it and reads the report.

``CRMKIT_SCREENSHOTS=docs/screenshots python3 dev.py test -k console_browser`` regenerates the README's picture.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import campaigns_testkit as kit
import pytest
from playwright.sync_api import expect

from crmkit.console.testing import PASSWORD
from crmkit.core.types import utcnow

pytestmark = pytest.mark.crmkit_plugins("campaigns", kit.PURCHASES)

HA_NOI = [
    "Nguyễn Văn An",
    "Trần Thị Bích",
    "Lê Hoàng Cường",
    "Phạm Thu Dung",
    "Vũ Minh Đức",
    "Đỗ Thị Hà",
    "Bùi Quang Huy",
    "Hoàng Thị Lan",
    "Ngô Văn Long",
    "Đặng Thị Mai",
    "Phan Văn Nam",
    "Trịnh Thị Oanh",
]
HUE = ["Lý Văn Phúc", "Mai Thị Quỳnh", "Tôn Thất Sơn"]


def _shop(crm: Any, outbox: Any) -> None:
    """A shop sending e-mail to a file outbox: customers in Hà Nội (all but the last consented to e-mail) and Huế,
    and Yến, a marketer who reads Vietnamese."""
    kit.outbox(crm, outbox)
    for n, name in enumerate(HA_NOI):
        crm.customers.add(
            name=name,
            given_name=name.split()[-1],
            email=f"hn{n}@example.vn",
            city="Hà Nội",
            consents={"email": n < len(HA_NOI) - 1},
        )
    for n, name in enumerate(HUE):
        crm.customers.add(
            name=name, given_name=name.split()[-1], email=f"hue{n}@example.vn", city="Huế", consents={"email": True}
        )
    crm.users.add("yen", "Vũ Hải Yến", password=PASSWORD, locale="vi", roles=["marketing"])


def test_a_marketer_builds_a_segment_with_its_live_count_creates_runs_and_reads_a_campaign(
    crm: Any, live_server: str, browser_page: Any, screenshot: Any, tmp_path: Any
) -> None:
    _shop(crm, tmp_path / "outbox")
    page = browser_page
    page.goto(f"{live_server}/console/")
    page.get_by_label("Username").fill("yen")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Vũ Hải Yến")).to_be_visible()

    menu = page.get_by_role("navigation")
    campaigns_menu = menu.locator("details", has=page.locator("summary", has_text="Chiến dịch"))
    campaigns_menu.locator("summary").click()  # the plugin's entries, grouped under its first one
    campaigns_menu.get_by_role("link", name="Phân khúc").click()
    page.get_by_role("link", name="Phân khúc mới").click()
    live = page.locator("#live-count")
    expect(live).to_have_text(re.compile(r"^\s*15\s+khách hàng trong tổng số"))
    builder_url = page.url
    definition = page.get_by_label("Điều kiện")
    definition.press_sequentially('city = "ha noi"', delay=30)
    expect(live).to_have_text(re.compile(r"^\s*12\s+khách hàng phù hợp\s*$"))
    definition.press_sequentially(" and", delay=30)
    expect(live.get_by_role("alert")).to_contain_text("Lỗi ở cột 20:")
    definition.press_sequentially(' has consent "email"', delay=30)
    expect(live).to_have_text(re.compile(r"^\s*11\s+khách hàng phù hợp\s*$"))
    assert page.url == builder_url, "the count changed in place, without loading another page"
    page.get_by_label("Tên").fill("Hà Nội nhận e-mail")
    screenshot(page, "console-campaign-segment")
    page.get_by_role("button", name="Lưu phân khúc").click()
    expect(page.get_by_role("status")).to_have_text("Đã lưu phân khúc “Hà Nội nhận e-mail”.")
    expect(page.get_by_role("row", name=re.compile("Hà Nội nhận e-mail"))).to_contain_text("11")

    page.get_by_role("link", name="Chiến dịch mới").click()  # beside the segment, its audience chosen
    page.get_by_label("Tên").fill("Tết 2027")
    expect(page.get_by_label("Đối tượng")).to_have_value(str(crm.campaigns.segments.get("Hà Nội nhận e-mail").id))
    page.get_by_label("Chủ đề").fill("{{ first_name }} ơi, quà Tết đã sẵn sàng")
    page.get_by_label("Nội dung tin nhắn").fill(
        "Chào {{ first_name }}, giỏ quà Tết giảm 20% cho khách ở {{ city }}: https://shop.example.vn/tet"
    )
    page.get_by_label("Nhóm đối chứng (% không gửi)").fill("20")
    page.get_by_label("Chi phí cố định (VND)").fill("1500000")
    page.get_by_label("Chi phí mỗi tin (VND)").fill("500")
    page.get_by_role("button", name="Lưu nháp").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(r"Tết 2027\s+Nháp"))

    page.get_by_label("Khách hàng", exact=True).select_option(index=1)
    preview = page.locator("#preview")
    expect(preview).to_contain_text("quà Tết đã sẵn sàng")
    expect(preview).to_contain_text("giảm 20% cho khách ở Hà Nội")
    page.get_by_role("button", name="Chạy ngay").click()
    expect(page.get_by_role("status")).to_contain_text("Chiến dịch đang chạy")
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(r"Báo cáo: Tết 2027\s+Đang chạy"))

    crm.campaigns.dispatch()  # what `crmkit worker` does, then the customers open, click and buy
    campaign = crm.campaigns.get("Tết 2027")
    sent = [m for m in crm.campaigns.messages(campaign.id) if m["status"] == "sent"]
    for n, message in enumerate(sent):
        crm.campaigns.tracking.record(message["id"], "delivered")
        if n % 3 != 2:
            crm.campaigns.tracking.record(message["id"], "opened")
        if n % 2 == 0:
            crm.campaigns.tracking.record(message["id"], "clicked")
        if n % 3 == 0:
            kit.buy(crm, message["customer_id"], 850_000, utcnow() + timedelta(hours=n + 1))
    page.reload()
    figures = page.get_by_role("list", name="Số liệu chính")
    expect(figures).to_contain_text(re.compile(rf"Đã gửi\s*{len(sent)}\b"))
    expect(figures.get_by_role("listitem").filter(has_text="Doanh thu")).to_contain_text("₫")
    expect(page.get_by_role("img", name=re.compile("^Biểu đồ: tỷ lệ chuyển đổi"))).to_be_visible()
    expect(page.get_by_role("row", name=re.compile("Nhóm đối chứng"))).to_be_visible()
    screenshot(page, "console-campaign")
