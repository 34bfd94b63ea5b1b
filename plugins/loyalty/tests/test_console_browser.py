"""The loyalty card in a real browser (Debian's headless Chromium through Playwright): a Vietnamese salesperson
redeems a member's points from the customer 360.

``CRMKIT_SCREENSHOTS=docs/screenshots python3 dev.py test -k loyalty_card`` regenerates the README's picture.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import loyalty_testkit as kit
import pytest
from playwright.sync_api import expect

from crmkit.core.types import utcnow

PASSWORD = "Sen-hong-2026!"


@pytest.fixture
def crm(crm_factory: Any) -> Any:
    """The app's CRM (``live_server`` serves it): the stand-in sales plugin, loyalty, a program with tiers and rewards."""
    crm = kit.make(crm_factory)
    crm.loyalty.programs.create("default", "Khách hàng thân thiết", point_value_minor=500)
    crm.loyalty.programs.add_reward("arabica-250", "Cà phê Arabica Cầu Đất 250g", 100, stock=20)
    crm.loyalty.programs.add_reward(
        "voucher-100k", "Phiếu mua hàng 100.000 ₫", 200, kind="discount", value_minor=100_000
    )
    crm.loyalty.programs.add_reward("may-xay", "Máy xay cà phê cầm tay", 2500, stock=3)
    return crm


@pytest.mark.parametrize("browser_locale", ["vi-VN"])
def test_a_vietnamese_salesperson_redeems_a_members_points_from_the_360_and_sees_the_new_balance(
    crm: Any, live_server: str, new_browser_page: Any, screenshot: Any
) -> None:
    crm.teams.add("Hà Nội")
    crm.users.add("lan", "Nguyễn Thị Lan", password=PASSWORD, locale="vi", teams=["Hà Nội"], roles=["sales"])
    an = crm.customers.add(name="Nguyễn Văn An", owner="lan", phones=["0903 123 400"], emails=["an@example.vn"])
    crm.sales.place(an.id, 5_200_000)  # 520 points
    crm.loyalty.programs.set_tiers(
        [
            {"code": "member", "name": "Member", "threshold": 0},
            {"code": "silver", "name": "Silver", "threshold": 500, "multiplier": "1.1"},
            {"code": "gold", "name": "Gold", "threshold": 2000, "multiplier": "1.25"},
        ]
    )
    crm.loyalty.grant(an.id, 250, "Xin lỗi vì giao hàng trễ", expires_at=utcnow() + timedelta(days=12))

    page = new_browser_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{live_server}/console/")
    page.get_by_label("Tên đăng nhập").fill("lan")
    page.get_by_label("Mật khẩu").fill(PASSWORD)
    page.get_by_role("button", name="Đăng nhập").click()
    page.get_by_role("navigation").get_by_role("link", name="Khách hàng").click()
    page.locator("#results").get_by_role("link", name="Nguyễn Văn An").click()

    card = page.locator("section", has=page.get_by_role("heading", name="Thẻ thành viên"))
    expect(card.locator(".figure-value")).to_have_text("770")
    expect(card.locator(".badge")).to_have_text("Bạc")
    expect(card).to_contain_text("385.000 ₫")  # 770 points × 500 ₫
    expect(card).to_contain_text(re.compile(r"250 điểm vào \d\d/\d\d/\d{4}"))  # the apology points expire soon
    reward = card.get_by_label("Quà")
    expect(reward.locator("option")).to_have_count(2)  # the grinder costs more than 770 points
    reward.select_option(label="Phiếu mua hàng 100.000 ₫ — 200 điểm")
    card.get_by_role("button", name="Đổi quà").click()

    expect(page).to_have_url(re.compile(rf"/console/customers/{an.id}\?redeemed=\d+#panel-loyalty$"))
    code = crm.loyalty.redemptions(an.id)[0].code
    expect(page.get_by_role("status")).to_have_text(
        f"Đã đổi Phiếu mua hàng 100.000 ₫ với 200 điểm. Mã phiếu: {code}. Số dư mới: 570 điểm."
    )
    expect(card.locator(".figure-value")).to_have_text("570")
    expect(card).to_contain_text(re.compile(r"50 điểm vào \d\d/\d\d/\d{4}"))  # spent first: they expire first
    expect(card.locator("table.ledger tr").first).to_contain_text("Đổi quà · 1 × Phiếu mua hàng 100.000 ₫")
    assert crm.loyalty.balance(an.id) == 570
    screenshot(page, "console-loyalty-card")

    page.set_viewport_size({"width": 390, "height": 844})
    card.scroll_into_view_if_needed()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, "the 360 scrolls sideways on a phone"
    screenshot(page, "console-loyalty-card-phone")

    page.set_viewport_size({"width": 1280, "height": 900})
    card.get_by_role("link", name="Xem sao kê đầy đủ").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sao kê điểm · Nguyễn Văn An")
    expect(page.locator("table.ledger tbody tr").last).to_contain_text("570")  # the running balance after the reward
    expect(page.locator("#tier-history").locator("..")).to_contain_text("Thành viên → Bạc")
    screenshot(page, "console-loyalty-statement")
