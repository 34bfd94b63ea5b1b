"""A case worked in a real browser (Debian's headless Chromium through Playwright): a Vietnamese support agent opens
a case from the customer 360, answers it and resolves it, and the page fits a phone's width.

``CRMKIT_SCREENSHOTS=docs/screenshots python3 dev.py test -k service_case`` saves the pictures.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

PASSWORD = "Sen-hong-2026!"


@pytest.fixture
def crm(crm_factory: Any) -> Any:
    """The app's CRM (``live_server`` serves it), with the service plugin."""
    return crm_factory(plugins=["service"])


@pytest.mark.parametrize("browser_locale", ["vi-VN"])
def test_a_vietnamese_agent_opens_answers_and_resolves_a_service_case(
    crm: Any, live_server: str, new_browser_page: Any, screenshot: Any
) -> None:
    crm.teams.add("CSKH Hà Nội")
    crm.users.add("hoa", "Lê Thị Hoa", password=PASSWORD, locale="vi", teams=["CSKH Hà Nội"], roles=["support"])
    an = crm.customers.add(name="Nguyễn Văn An", phones=["0903 123 400"])

    page = new_browser_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{live_server}/console/")
    page.get_by_label("Tên đăng nhập").fill("hoa")
    page.get_by_label("Mật khẩu").fill(PASSWORD)
    page.get_by_role("button", name="Đăng nhập").click()
    page.goto(f"{live_server}/console/customers/{an.id}")
    page.get_by_role("link", name="Tạo yêu cầu").click()
    page.get_by_label("Tiêu đề").fill("Máy lạnh không lạnh")
    page.get_by_label("Mô tả").fill("Lắp 3 ngày chỉ thổi gió")
    page.get_by_label("Mức ưu tiên").select_option(label="Cao")
    page.get_by_role("button", name="Tạo yêu cầu").click()

    expect(page).to_have_url(re.compile(r"/console/service/cases/\d+$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Máy lạnh không lạnh")
    expect(page.locator("main")).to_contain_text("Nguyễn Văn An · Mới · Cao")
    page.get_by_label("Trả lời", exact=True).fill("Dạ, kỹ thuật viên sẽ đến sáng mai ạ")
    page.get_by_role("button", name="Gửi trả lời").click()
    expect(page.locator(".timeline")).to_contain_text("Dạ, kỹ thuật viên sẽ đến sáng mai ạ")
    expect(page.locator("main")).to_contain_text("Nguyễn Văn An · Đang xử lý · Cao")
    page.get_by_label("Trạng thái mới").select_option(label="Đã giải quyết")
    page.get_by_role("button", name="Đổi trạng thái").click()
    expect(page.locator("#resolution-error")).to_contain_text("say how the case was resolved")  # by its field
    page.get_by_label("Cách giải quyết").fill("Thay tụ điện, máy đã lạnh")
    page.get_by_role("button", name="Đổi trạng thái").click()
    expect(page.locator("main")).to_contain_text("Nguyễn Văn An · Đã giải quyết · Cao")
    screenshot(page, "console-service-case")
    (case,) = crm.service.list()
    assert (case.status, case.resolution, case.created_by) == ("resolved", "Thay tụ điện, máy đã lạnh", "hoa")

    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, "the case page scrolls sideways on a phone"
