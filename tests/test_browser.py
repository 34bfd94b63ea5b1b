"""The web pages in a real browser: Debian's headless Chromium driven by Playwright against a live server.

``CRMKIT_SCREENSHOTS=docs/screenshots python3 dev.py test -k browser`` regenerates the README's pictures.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

PASSWORD = "Sen-hong-2026!"


def _sales_teams(crm: Any) -> dict[str, int]:
    """Two sales users of two branches — Lan (Hà Nội, reads Vietnamese), Minh (Sài Gòn, English) — and
    their customers; returns the customers' ids by name."""
    for team in ("Hà Nội", "Sài Gòn"):
        crm.teams.add(team)
    crm.users.add("lan", "Nguyễn Thị Lan", password=PASSWORD, locale="vi", teams=["Hà Nội"], roles=["sales"])
    crm.users.add("minh", "Trần Văn Minh", password=PASSWORD, locale="en", teams=["Sài Gòn"], roles=["sales"])
    owners = {"Nguyễn Văn An": "lan", "Phạm Thị Bình": "lan", "Lê Hoàng Cường": "lan", "Võ Thị Dung": "minh"}
    return {
        name: crm.customers.add(name=name, owner=owner, phones=[f"0903 123 4{n:02d}"], emails=[f"kh{n}@example.vn"]).id
        for n, (name, owner) in enumerate(owners.items())
    }


def _sign_in(page: Any, base: str, username: str) -> None:
    """Open the console, land on the sign-in form (in English: the browser's language) and sign in."""
    page.goto(f"{base}/console/")
    expect(page).to_have_url(re.compile(r"/console/sign-in"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).not_to_have_url(re.compile(r"/console/sign-in"))


def test_api_docs_page_lists_operations_by_tag_filters_them_and_tries_one(
    live_server: str, browser_page: Any, screenshot: Any
) -> None:
    page = browser_page
    page.goto(f"{live_server}/docs")
    expect(page.locator("#about")).to_contain_text("Version")
    expect(page.locator("#tags a")).to_contain_text(
        ["audit", "customers", "interactions", "meta", "roles", "teams", "tokens", "users", "webhooks"]
    )
    expect(page.get_by_role("heading", name="customers", exact=True)).to_be_visible()
    operations = page.locator("details")
    expect(operations.filter(has_text="GET/customers/{customer_id}/profile — The customer 360")).to_have_count(1)
    assert operations.count() > 40

    page.get_by_placeholder("Filter operations").fill("health")
    visible = page.locator("details:visible")
    expect(visible).to_have_count(1)
    health = visible.first
    expect(health.locator("summary")).to_have_text("GET/health — Is the server up")

    health.locator("summary").click()
    health.get_by_role("button", name="Try").click()
    expect(health.locator("pre").last).to_have_text(re.compile(r'^200\s+\{\s*"status":\s*"ok"\s*\}$'))
    screenshot(page, "api-docs")


@pytest.mark.parametrize("browser_locale", ["vi-VN"])
def test_the_sign_in_page_speaks_the_browsers_language_and_a_wrong_password_is_refused(
    crm: Any, live_server: str, browser_page: Any, screenshot: Any
) -> None:
    _sales_teams(crm)
    page = browser_page
    page.goto(f"{live_server}/console/")
    expect(page.locator("html")).to_have_attribute("lang", "vi")
    expect(page.get_by_role("heading", name="Đăng nhập")).to_be_visible()
    screenshot(page, "console-sign-in")
    page.get_by_label("Tên đăng nhập").fill("lan")
    page.get_by_label("Mật khẩu").fill("not-her-password")
    page.get_by_role("button", name="Đăng nhập").click()
    expect(page.get_by_role("alert")).to_be_visible()
    expect(page.get_by_label("Tên đăng nhập")).to_have_value("lan")
    expect(page.get_by_label("Mật khẩu")).to_have_value("")


def test_a_vietnamese_sales_user_finds_a_customer_as_she_types_opens_the_360_and_logs_a_call(
    crm: Any, live_server: str, browser_page: Any, screenshot: Any
) -> None:
    ids = _sales_teams(crm)
    page = browser_page  # an English-speaking browser: her own locale, Vietnamese, wins once she is signed in
    _sign_in(page, live_server, "lan")
    expect(page.locator("html")).to_have_attribute("lang", "vi")
    expect(page.get_by_role("heading", name="Nguyễn Thị Lan")).to_be_visible()
    menu = page.get_by_role("navigation")
    expect(menu.get_by_role("link", name="Trang chủ")).to_be_visible()
    expect(page.get_by_role("button", name="Đăng xuất")).to_be_visible()
    screenshot(page, "console-home")

    menu.get_by_role("link", name="Khách hàng").click()
    expect(page.get_by_role("heading", name="Khách hàng")).to_be_visible()
    results = page.locator("#results")
    expect(results.get_by_role("link")).to_have_count(3)  # her own customers, not Minh's
    expect(results).not_to_contain_text("Võ Thị Dung")
    list_url = page.url
    page.get_by_label("Tìm khách hàng").press_sequentially("nguyen van an", delay=40)
    expect(results.get_by_role("link")).to_have_text(["Nguyễn Văn An"])
    assert page.url == list_url, "the list was searched in place, not by loading another page"
    expect(results).to_contain_text("kh0@example.vn")
    screenshot(page, "console-customers")

    results.get_by_role("link", name="Nguyễn Văn An").click()
    expect(page).to_have_url(re.compile(rf"/console/customers/{ids['Nguyễn Văn An']}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Nguyễn Văn An")
    expect(page.locator("dl.details")).to_contain_text("kh0@example.vn")

    call = page.get_by_role("group", name="Ghi nhận cuộc gọi")
    call.get_by_label("Chủ đề").fill("Tư vấn gói cước")
    call.get_by_label("Tóm tắt").fill("Khách hẹn gọi lại vào thứ Hai.")
    call.get_by_role("button", name="Lưu").click()
    expect(page.get_by_role("status")).to_have_text("Đã lưu.")
    logged = page.locator("ol.timeline li")
    expect(logged).to_have_count(1)
    expect(logged).to_contain_text("Tư vấn gói cước")
    expect(logged).to_contain_text("Khách hẹn gọi lại vào thứ Hai.")
    screenshot(page, "console-customer-360")


def test_a_sales_user_opening_another_teams_customer_sees_the_not_found_page(
    crm: Any, live_server: str, browser_page: Any, screenshot: Any
) -> None:
    ids = _sales_teams(crm)
    page = browser_page
    _sign_in(page, live_server, "minh")
    answer = page.goto(f"{live_server}/console/customers/{ids['Nguyễn Văn An']}")
    assert answer is not None and answer.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Page not found")
    expect(page.locator("body")).not_to_contain_text("Nguyễn Văn An")
    screenshot(page, "console-not-found")
    page.get_by_role("navigation").get_by_role("link", name="Customers").click()
    expect(page.locator("#results").get_by_role("link")).to_have_text(["Võ Thị Dung"])


def test_at_phone_width_the_customer_list_fits_the_screen(
    crm: Any, live_server: str, new_browser_page: Any, screenshot: Any
) -> None:
    _sales_teams(crm)
    page = new_browser_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    _sign_in(page, live_server, "lan")
    page.get_by_role("navigation").get_by_role("link", name="Khách hàng").click()
    expect(page.locator("#results").get_by_role("link", name="Nguyễn Văn An")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, "the page scrolls sideways on a phone"
    expect(page.get_by_label("Tìm khách hàng")).to_be_in_viewport()
    screenshot(page, "console-customers-phone")


def test_a_customer_named_like_a_script_is_shown_as_text_and_never_runs(
    crm: Any, live_server: str, browser_page: Any
) -> None:
    _sales_teams(crm)
    name = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    crm.customers.add(name=name, owner="lan")
    page = browser_page
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    _sign_in(page, live_server, "lan")
    page.goto(f"{live_server}/console/customers")
    shown = page.locator("#results").get_by_role("link", name=name, exact=True)
    expect(shown).to_have_text(name)
    shown.click()
    expect(page.get_by_role("heading", level=1)).to_have_text(name)
    assert dialogs == []


def test_an_administrator_reviews_duplicates_erases_a_customer_and_sees_it_gone(
    crm: Any, live_server: str, browser_page: Any, screenshot: Any
) -> None:
    _sales_teams(crm)
    twin = crm.customers.add(name="Nguyen Van An", owner="lan", phones=["0903123400"])  # An's phone, typed again
    crm.users.add("hoa", "Đỗ Thị Hoa", password=PASSWORD, locale="vi", roles=["administrator"])
    page = browser_page
    _sign_in(page, live_server, "hoa")
    page.get_by_role("navigation").get_by_role("link", name="Khách hàng").click()
    page.get_by_role("link", name="Trùng lặp").click()
    pairs = page.locator("table.duplicates tbody tr")
    expect(pairs).to_have_count(1)
    expect(pairs).to_contain_text("Trùng số điện thoại")
    expect(pairs).to_contain_text("0903 123 400")
    screenshot(page, "console-duplicates")

    pairs.get_by_role("link", name="Nguyen Van An", exact=True).click()
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_have_text("Nguyen Van An")
    page.get_by_role("link", name="Xóa", exact=True).click()
    expect(heading).to_have_text("Xóa Nguyen Van An")
    page.get_by_label(re.compile("Gõ tên khách hàng để xác nhận")).fill("Nguyen Van An")
    page.get_by_role("button", name="Xóa vĩnh viễn").click()
    expect(page.get_by_role("status")).to_have_text("Đã xóa khách hàng.")
    expect(page.locator("#results")).to_contain_text("Nguyễn Văn An")
    expect(page.locator("#results")).not_to_contain_text("Nguyen Van An")
    answer = page.goto(f"{live_server}/console/customers/{twin.id}")
    assert answer is not None and answer.status == 404
    expect(heading).to_have_text("Không tìm thấy trang")
