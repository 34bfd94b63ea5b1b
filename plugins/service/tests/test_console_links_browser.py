"""A case's links in a real browser: a Vietnamese agent sees the organization's contact on the case page, attaches
a file by its link (a bad link refused next to the field), sends a canned reply picked from the list and folds a
duplicate into the case."""

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
def test_an_agent_attaches_a_file_sends_a_canned_reply_and_merges_a_duplicate(
    crm: Any, live_server: str, new_browser_page: Any, screenshot: Any
) -> None:
    crm.users.add("hoa", "Lê Thị Hoa", password=PASSWORD, locale="vi", roles=["support"])
    company = crm.customers.add(name="Công ty TNHH Điện lạnh Phương Nam", kind="organization")
    binh = crm.customers.add(name="Trần Văn Bình", organizations=[{"organization_id": company.id}])
    case = crm.service.open(company.id, "Máy nén hỏng", contact_id=binh.id, order_id=1042)
    dup = crm.service.open(company.id, "Máy nén hỏng (gọi lại)")
    crm.service.reply(dup.id, "Khách gọi lại lần 2", direction="inbound")
    crm.service.canned.add(
        "da-nhan", "Dạ chào {given_name}, yêu cầu #{case_number} đã được ghi nhận ạ.", title="Đã nhận"
    )

    page = new_browser_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{live_server}/console/")
    page.get_by_label("Tên đăng nhập").fill("hoa")
    page.get_by_label("Mật khẩu").fill(PASSWORD)
    page.get_by_role("button", name="Đăng nhập").click()
    page.goto(f"{live_server}/console/service/cases/{case.id}")
    main = page.locator("main")
    expect(main).to_contain_text("Người liên hệ")
    expect(page.get_by_role("link", name="Trần Văn Bình")).to_be_visible()
    expect(main).to_contain_text("#1042")

    page.get_by_label("Tên tệp").fill("biên bản kiểm tra.pdf")
    page.get_by_label("Đường dẫn tới tệp").fill("ftp://files.example.vn/bb.pdf")
    page.get_by_role("button", name="Đính kèm").click()
    expect(page.locator("#attachment_url-error")).to_contain_text("must be an http:// or https:// address")
    page.get_by_label("Đường dẫn tới tệp").fill("https://files.example.vn/bb.pdf")
    page.get_by_role("button", name="Đính kèm").click()
    expect(page.get_by_role("link", name="biên bản kiểm tra.pdf")).to_have_attribute(
        "href", "https://files.example.vn/bb.pdf"
    )

    page.get_by_label("Câu trả lời mẫu").select_option(label="Đã nhận")
    page.get_by_role("button", name="Gửi câu trả lời mẫu").click()
    expect(page.locator(".timeline")).to_contain_text(f"Dạ chào Bình, yêu cầu #{case.id} đã được ghi nhận ạ.")

    page.get_by_label("Số yêu cầu trùng").fill(f"#{dup.id}")
    page.get_by_role("button", name="Gộp vào yêu cầu này").click()
    expect(page).to_have_url(re.compile(rf"/console/service/cases/{case.id}$"))
    expect(page.locator(".timeline")).to_contain_text("Khách gọi lại lần 2")
    screenshot(page, "console-service-case-links")
    page.goto(f"{live_server}/console/service/cases/{dup.id}")
    expect(main).to_contain_text("Đã gộp vào")
    expect(page.get_by_role("link", name=f"#{case.id}")).to_be_visible()
    expect(page.get_by_role("button", name="Gộp vào yêu cầu này")).to_have_count(0)
    assert crm.service.get(dup.id).merged_into_id == case.id
