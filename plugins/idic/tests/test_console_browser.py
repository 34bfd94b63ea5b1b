"""The IDIC review queue in a real browser (Debian's headless Chromium through Playwright, against a live server).

``CRMKIT_SCREENSHOTS=docs/screenshots`` saves ``console-idic-reviews.png`` for the plugin's README.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.crmkit_plugins("idic")
PASSWORD = "Sen-hong-2026!"


def test_a_manager_accepts_a_pair_in_the_review_queue_and_sees_it_gone(
    crm: Any, live_server: str, browser_page: Any, screenshot: Any
) -> None:
    crm.teams.add("Hà Nội")
    crm.users.add("hoa", "Phạm Thu Hoa", password=PASSWORD, locale="vi", teams=["Hà Nội"], roles=["manager"])
    for username, name in (("lan", "Nguyễn Thị Lan"), ("minh", "Trần Văn Minh")):
        crm.users.add(username, name, teams=["Hà Nội"], roles=["sales"])
    mother = crm.customers.add(
        name="Trần Thị Bình", phone="0912345678", owner="lan", city="Hà Nội", birth_date="1968-04-12"
    )
    son = crm.customers.add(name="Lê Minh Châu", phone="0912 345 678", owner="minh", email="chau.le@example.vn")
    crm.customers.add(name="Hoàng Thu Hà", email="ha.hoang@example.vn", birth_date="1990-01-02", owner="lan")
    crm.customers.add(
        name="Hoàng Thu Hà", email="ha.hoang@example.vn", birth_date="1985-07-30", owner="minh", city="Hải Phòng"
    )
    crm.idic.run(steps=["identify"])

    page = browser_page
    page.goto(f"{live_server}/console/")
    page.get_by_label("Username").fill("hoa")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    menu = page.get_by_role("navigation", name="Danh mục")
    menu.locator("summary", has_text="IDIC").click()  # the plugin's entries open as one group
    menu.get_by_role("link", name="Duyệt trùng lặp").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Duyệt trùng lặp")
    pairs = page.locator("section.review")
    expect(pairs).to_have_count(2)
    pair = pairs.filter(has_text="trùng số điện thoại +84912345678, tên khác nhau")
    expect(pair.get_by_role("heading", level=2)).to_have_text("Trần Thị Bình · Lê Minh Châu")
    expect(pair).to_contain_text("Độ khớp 80%")
    expect(pair.get_by_role("link", name="Trần Thị Bình")).to_be_visible()
    expect(pair.get_by_role("link", name="Lê Minh Châu")).to_be_visible()

    pair.get_by_role("button", name="Đồng ý: gộp hai hồ sơ").click()
    expect(page.get_by_role("status")).to_have_text("Đã gộp: hai hồ sơ giờ là một khách hàng.")
    expect(pairs).to_have_count(1)
    expect(page.locator("main")).not_to_contain_text("Trần Thị Bình · Lê Minh Châu")
    expect(pairs).to_contain_text("mâu thuẫn: ngày sinh khác nhau (02/01/1990 / 30/07/1985)")
    merges = page.locator("table.list tbody tr")
    expect(merges).to_have_count(1)
    expect(merges).to_contain_text("hoa đã đồng ý: trùng số điện thoại +84912345678, tên khác nhau")
    expect(merges.get_by_role("button", name="Tách lại")).to_be_visible()
    assert crm.customers.get(son.id).id == mother.id
    screenshot(page, "console-idic-reviews")

    page.set_viewport_size({"width": 390, "height": 844})
    expect(pairs.get_by_role("button", name="Đồng ý: gộp hai hồ sơ")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, "the queue scrolls sideways on a phone"
    screenshot(page, "console-idic-reviews-phone")
    expect(page).to_have_url(re.compile(r"/console/idic/reviews\?done=accepted$"))
