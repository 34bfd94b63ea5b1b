"""crmkit-notes in the web console: its panel on the customer 360, its "My notes" page, menu entry and home tile."""

from __future__ import annotations

from typing import Any

import pytest

from crmkit.console.testing import ConsoleBrowser, console_user, text

pytestmark = pytest.mark.crmkit_plugins("notes")


def test_a_salesperson_sees_notes_on_the_360_her_page_the_menu_entry_and_the_tile(crm: Any) -> None:
    console_user(crm, "lan", locale="en")
    an = crm.customers.add(name="Nguyễn Văn An", owner="lan")
    crm.as_user("lan").notes.add(an.id, "Khách hẹn gọi lại thứ Hai <b>sớm</b>")
    browser = ConsoleBrowser(crm)
    browser.sign_in("lan")

    profile = browser.get(f"/console/customers/{an.id}")
    assert "Notes" in text(profile) and "Khách hẹn gọi lại thứ Hai <b>sớm</b>" in text(profile)
    assert "<b>sớm</b>" not in profile.get_data(as_text=True)  # escaped in the plugin's template too
    home = text(browser.get("/console/"))
    assert "My notes" in home and "Khách hẹn gọi lại thứ Hai" in home
    mine = browser.get("/console/notes/")
    assert mine.status_code == 200 and "Khách hẹn gọi lại thứ Hai" in text(mine)
    assert mine.headers["X-Frame-Options"] == "DENY"


def test_without_notes_read_the_panel_tile_and_menu_entry_are_hidden_and_the_page_answers_403(crm: Any) -> None:
    console_user(crm, "doc", roles=[], grants={"customers.read": "all"}, locale="en")
    an = crm.customers.add(name="Nguyễn Văn An")
    crm.notes.add(an.id, "Bí mật kinh doanh")
    browser = ConsoleBrowser(crm)
    browser.sign_in("doc")
    assert "Bí mật kinh doanh" not in text(browser.get(f"/console/customers/{an.id}"))
    assert "My notes" not in text(browser.get("/console/"))
    assert browser.get("/console/notes/").status_code == 403


def test_another_salespersons_notes_stay_out_of_her_page(crm: Any) -> None:
    console_user(crm, "lan")
    console_user(crm, "minh")
    theirs = crm.customers.add(name="Trần Thị Bình", owner="minh")
    crm.as_user("minh").notes.add(theirs.id, "Khách của Minh")
    browser = ConsoleBrowser(crm)
    browser.sign_in("lan")
    assert "Khách của Minh" not in text(browser.get("/console/notes/"))
    assert browser.get(f"/console/customers/{theirs.id}").status_code == 404


def test_a_vietnamese_user_reads_the_plugins_own_texts_from_its_catalog(crm: Any) -> None:
    console_user(crm, "lan", locale="vi")
    an = crm.customers.add(name="Nguyễn Văn An", owner="lan")
    browser = ConsoleBrowser(crm)
    browser.sign_in("lan")
    assert "Ghi chú của tôi" in text(browser.get("/console/"))  # menu entry and tile, from crmkit_notes.po
    assert "Ghi chú" in text(browser.get(f"/console/customers/{an.id}"))
