"""The pipeline board in a real browser (Debian's headless Chromium through Playwright): a Vietnamese sales user
drags a deal to another stage, and it is still there after a reload.

``CRMKIT_SCREENSHOTS=docs/screenshots python3 dev.py test -k browser`` regenerates docs/screenshots/console-pipeline.png.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from crmkit.console.testing import PASSWORD, console_user

pytestmark = pytest.mark.crmkit_plugins("sales")

#: (customer, deal, amount in đồng, stage) — Lan's pipeline for the board and its screenshot.
DEALS = (
    ("Nguyễn Văn An", "Máy pha cà phê cho quán Sáng", 1_234_567, "Tiếp cận"),
    ("Phạm Thị Bình", "Gói cà phê hạt hằng tháng", 3_600_000, "Tiếp cận"),
    ("Lê Hoàng Cường", "Bảo trì máy 12 tháng", 8_400_000, "Báo giá"),
    ("Công ty TNHH Phân phối Mekong", "Đại lý cà phê Robusta quý I", 125_000_000, "Đàm phán"),
    ("Võ Thị Dung", "Quà Tết cho nhân viên", 18_500_000, "Chốt đơn"),
)


def _lans_pipeline(crm: Any) -> None:
    """Lan (Hà Nội, reads Vietnamese) and her customers' deals on a four-stage pipeline."""
    console_user(crm, "lan", teams=["Hà Nội"], locale="vi")
    crm.users.update("lan", display_name="Nguyễn Thị Lan")
    crm.sales.pipelines.add(
        "Bán lẻ",
        [
            {"name": "Tiếp cận", "probability": "0.1"},
            {"name": "Báo giá", "probability": "0.4"},
            {"name": "Đàm phán", "probability": "0.7"},
            {"name": "Chốt đơn", "probability": 1, "outcome": "won"},
            {"name": "Thất bại", "probability": 0, "outcome": "lost"},
        ],
    )
    for name, title, amount, stage in DEALS:
        customer = crm.customers.add(name=name, owner="lan")
        crm.sales.deals.add(
            customer_id=customer.id, pipeline="Bán lẻ", stage=stage, title=title, amount_minor=amount, owner="lan"
        )


def _column(page: Any, stage: str) -> Any:
    return page.locator("section.column").filter(has=page.get_by_role("heading", name=stage, exact=True))


@pytest.mark.parametrize("browser_locale", ["vi-VN"])
def test_a_salesperson_drags_a_deal_to_the_next_stage_and_it_stays_there(
    crm: Any, live_server: str, browser_page: Any, screenshot: Any
) -> None:
    _lans_pipeline(crm)
    page = browser_page
    page.goto(f"{live_server}/console/")
    page.get_by_label("Tên đăng nhập").fill("lan")
    page.get_by_label("Mật khẩu").fill(PASSWORD)
    page.get_by_role("button", name="Đăng nhập").click()
    menu = page.get_by_role("navigation", name="Danh mục")
    menu.locator("summary", has_text="Quy trình bán hàng").click()  # the plugin's entries open as one group
    menu.get_by_role("link", name="Quy trình bán hàng").click()
    expect(page.get_by_role("heading", name="Quy trình bán hàng", level=1)).to_be_visible()

    approach, quoting = _column(page, "Tiếp cận"), _column(page, "Báo giá")
    card = page.locator("article.deal").filter(has_text="Máy pha cà phê cho quán Sáng")
    expect(approach).to_contain_text("1.234.567 ₫")
    expect(approach.locator("header")).to_contain_text("4.834.567 ₫")
    card.drag_to(quoting.locator("[data-cards]"))

    expect(page.get_by_role("status")).to_have_text("“Máy pha cà phê cho quán Sáng” đã chuyển sang Báo giá.")
    expect(quoting.locator("header")).to_contain_text("2 cơ hội")
    expect(quoting.locator("header")).to_contain_text("9.634.567 ₫")
    page.reload()
    expect(quoting.locator("article.deal").filter(has_text="Máy pha cà phê cho quán Sáng")).to_have_count(1)
    expect(approach.locator("article.deal")).to_have_count(1)
    moved = next(d for d in crm.sales.deals.list() if d.title == "Máy pha cà phê cho quán Sáng")
    last = crm.sales.deals.history(moved.id)[-1]
    assert (last.changed_by, moved.stage_id) == ("lan", last.to_stage_id)  # moved by the service, as Lan

    # from the keyboard: choosing the lost stage on a card asks why, and Move posts the card's form
    upkeep = page.locator("article.deal").filter(has_text="Bảo trì máy 12 tháng")
    expect(upkeep.get_by_label("Vì sao thất bại?")).to_be_hidden()
    upkeep.get_by_label("Chuyển “Bảo trì máy 12 tháng” sang giai đoạn").select_option(label="Thất bại")
    upkeep.get_by_label("Vì sao thất bại?").fill("Khách tự bảo trì")
    upkeep.get_by_role("button", name="Chuyển").click()
    expect(page.get_by_role("status")).to_have_text("“Bảo trì máy 12 tháng” đã chuyển sang Thất bại.")
    expect(_column(page, "Thất bại").locator("article.deal")).to_have_count(1)
    screenshot(page, "console-pipeline")

    page.set_viewport_size({"width": 390, "height": 844})
    expect(page.locator("section.column").first).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # columns stack on a phone
    screenshot(page, "console-pipeline-phone")
    expect(page).to_have_url(re.compile(r"/console/sales/pipeline"))
