"""The service plugin in the web console: the menu entry, the home tile "My open cases", the 360 panel "Cases",
the cases list, a case page whose reply, note, assign and status forms work, refusals shown by their field, and
the Vietnamese texts from the plugin's own catalog."""

from __future__ import annotations

from typing import Any

import pytest

from crmkit.console.testing import ConsoleBrowser, console_user, text

pytestmark = pytest.mark.crmkit_plugins("service")


def test_an_agent_works_a_case_from_the_360_to_resolution(crm: Any) -> None:
    console_user(crm, "hoa", roles=["support"], locale="en")
    an = crm.customers.add(name="Nguyễn Văn An")
    browser = ConsoleBrowser(crm)
    browser.sign_in("hoa")
    profile = text(browser.get(f"/console/customers/{an.id}"))
    assert "Cases" in profile and "0 active cases" in profile
    new = f"/console/service/customers/{an.id}/cases/new"
    refused = browser.submit(new, new, {"subject": "  ", "channel": "phone", "priority": "high"})
    assert refused.status_code == 422 and "Subject" in text(refused)
    opened = browser.submit(
        new,
        new,
        {
            "subject": "Máy lạnh <b>không</b> lạnh",
            "channel": "phone",
            "priority": "high",
            "description": "Lắp 3 ngày",
            "category": "repair",
        },
    )
    assert opened.status_code == 303
    page = opened.headers["Location"]
    case_id = int(page.rsplit("/", 1)[1])
    shown = browser.get(page)
    assert "Máy lạnh <b>không</b> lạnh" in text(shown) and "<b>không</b>" not in shown.get_data(as_text=True)
    assert "Nguyễn Văn An · New · High" in text(shown)
    home = text(browser.get("/console/"))
    assert "My open cases" in home and f"#{case_id} Máy lạnh" in home

    base = f"/console/service/cases/{case_id}"
    assert (
        browser.submit(
            page, base + "/reply", {"body": "Kỹ thuật viên đến lúc 14h", "direction": "outbound"}
        ).status_code
        == 303
    )
    assert browser.submit(page, base + "/note", {"note": "Mang theo tụ điện"}).status_code == 303
    wrong = browser.submit(page, base + "/status", {"status": "resolved", "resolution": ""})
    assert wrong.status_code == 422 and "say how the case was resolved" in text(wrong)
    bad_user = browser.submit(page, base + "/assign", {"assignee": "ghost", "team": ""})
    assert bad_user.status_code == 422 and "no user 'ghost'" in text(bad_user)
    assert browser.submit(page, base + "/status", {"status": "resolved", "resolution": "Đã thay tụ"}).status_code == 303
    final = text(browser.get(page))
    assert (
        "Nguyễn Văn An · Resolved · High" in final
        and "Kỹ thuật viên đến lúc 14h" in final
        and "Mang theo tụ điện" in final
    )
    assert "Đã thay tụ" in final
    listed = text(browser.get("/console/service/cases?status=resolved"))
    assert "Máy lạnh <b>không</b> lạnh" in listed
    assert "Máy lạnh" not in text(browser.get("/console/service/cases"))  # active cases only by default
    assert browser.get("/console/service/cases?status=bogus&after=x").status_code == 200


def test_out_of_scope_and_without_permission(crm: Any) -> None:
    console_user(crm, "lan", locale="en")
    console_user(crm, "minh")
    console_user(crm, "doc", roles=[], grants={"customers.read": "all"}, locale="en")
    theirs = crm.customers.add(name="Trần Thị Bình", owner="minh")
    case = crm.service.open(theirs.id, "Khách của Minh")
    lan = ConsoleBrowser(crm)
    lan.sign_in("lan")
    assert lan.get(f"/console/service/cases/{case.id}").status_code == 404
    assert "Khách của Minh" not in text(lan.get("/console/service/cases"))
    doc = ConsoleBrowser(crm)
    doc.sign_in("doc")
    assert "Cases" not in text(doc.get("/console/"))
    assert doc.get("/console/service/cases").status_code == 403
    assert "Khách của Minh" not in text(doc.get(f"/console/customers/{theirs.id}"))


def test_a_vietnamese_agent_reads_the_plugins_texts(crm: Any) -> None:
    console_user(crm, "hoa", roles=["support"], locale="vi")
    an = crm.customers.add(name="Nguyễn Văn An")
    case = crm.service.open(an.id, "Giao hàng trễ", assignee="hoa")
    browser = ConsoleBrowser(crm)
    browser.sign_in("hoa")
    home = text(browser.get("/console/"))
    assert "Yêu cầu hỗ trợ" in home and "Yêu cầu tôi đang xử lý" in home
    page = text(browser.get(f"/console/service/cases/{case.id}"))
    assert "Nguyễn Văn An · Mới · Bình thường" in page and "Hạn giải quyết" in page and "Gửi trả lời" in page
