"""IDIC in the web console: status and "Run now", the review queue (accept, reject, unmerge), the agenda, the
treatments page, the customer-360 panel and the menu — as people of a shop see them, in English and Vietnamese."""

from __future__ import annotations

import re
from typing import Any

import pytest

from crmkit.console.testing import PASSWORD, ConsoleBrowser, csrf_of, text, untranslated
from crmkit.testing import add_user

pytestmark = pytest.mark.crmkit_plugins("idic")
REVIEWS = "/console/idic/reviews"


@pytest.fixture
def shop(crm: Any) -> Any:
    """Team HN (manager Hoa and salesman Minh, who read English; saleswoman Lan, Vietnamese) and team HCM
    (salesman Tuấn)."""
    for username, team, role in (
        ("hoa", "HN", "manager"),
        ("lan", "HN", "sales"),
        ("minh", "HN", "sales"),
        ("tuan", "HCM", "sales"),
    ):
        add_user(crm, username, teams=[team], roles=[role])
    for username in ("hoa", "minh"):
        crm.users.update(username, locale="en")
    return crm


def _signed_in(crm: Any, username: str) -> ConsoleBrowser:
    """A browser signed in as ``username`` (given a password now: hashing one for each user would be slow)."""
    crm.users.set_password(username, PASSWORD)
    browser = ConsoleBrowser(crm)
    assert browser.sign_in(username).status_code == 303
    return browser


def _page_token(browser: ConsoleBrowser) -> dict[str, str]:
    """The page's ``X-CSRF-Token`` header (what its htmx calls send): lets a test post where no form is offered."""
    found = re.search(r'"X-CSRF-Token": "([0-9a-f]+)"', browser.get("/console/").get_data(as_text=True))
    assert found, "no CSRF header on the home page"
    return {"X-CSRF-Token": found.group(1)}


def _queued_pair(crm: Any) -> tuple[Any, Any, int]:
    """Two customers of team HN with one phone and different names: Identify queues them for review."""
    mother = crm.customers.add(name="Trần Thị Bình", phone="0912345678", owner="lan", city="Hà Nội")
    son = crm.customers.add(name="Lê Minh Châu", phone="+84 912 345 678", owner="minh")
    crm.idic.run(steps=["identify"])
    (item,) = crm.idic.reviews()
    return mother, son, item["id"]


def test_a_manager_accepts_a_pair_from_the_queue_merges_them_and_can_undo_it(shop: Any) -> None:
    mother, son, review = _queued_pair(shop)
    hoa = _signed_in(shop, "hoa")
    queue = text(hoa.get(REVIEWS))
    assert "Trần Thị Bình · Lê Minh Châu" in queue and "Match 80%" in queue
    assert "Evidence: same phone +84912345678, different name" in queue
    assert "City Hà Nội — Owner lan minh" in queue  # both records side by side

    accepted = hoa.submit(REVIEWS, f"{REVIEWS}/{review}/accept", {})
    assert accepted.status_code == 303
    after = text(hoa.get(accepted.headers["Location"]))
    assert "Merged: the two records are one customer now." in after and "Nothing to review." in after
    assert shop.customers.get(son.id).id == mother.id
    (merge,) = shop.idic.merges()
    assert (
        f"Trần Thị Bình #{son.id} 80% accepted by hoa: same phone +84912345678, different name (by a reviewer) "
        "Merged Unmerge" in after
    )

    undone = hoa.submit(REVIEWS, f"/console/idic/merges/{merge['id']}/unmerge", {})
    assert "The merge was undone." in text(hoa.get(undone.headers["Location"]))
    assert shop.customers.get(son.id).id == son.id and shop.customers.get(son.id).status == "active"


def test_rejecting_keeps_the_pair_apart_and_a_stale_accept_is_refused(shop: Any) -> None:
    mother, son, review = _queued_pair(shop)
    hoa = _signed_in(shop, "hoa")
    page = hoa.get(REVIEWS)
    accept_token = csrf_of(page, f"{REVIEWS}/{review}/accept")
    rejected = hoa.submit(REVIEWS, f"{REVIEWS}/{review}/reject", {"reason": "hai mẹ con dùng chung số"})
    assert "Kept apart: the two customers will not be merged." in text(hoa.get(rejected.headers["Location"]))
    assert [r["id"] for r in shop.idic.reviews(status="rejected")] == [review]

    stale = hoa.post(f"{REVIEWS}/{review}/accept", {"csrf_token": accept_token})
    assert stale.status_code == 409 and "This pair was already decided." in text(stale)
    assert {shop.customers.get(mother.id).status, shop.customers.get(son.id).status} == {"active"}
    shop.idic.run(steps=["identify"])
    assert shop.idic.reviews() == []  # never queued again


def test_a_pair_outside_the_managers_team_is_neither_listed_nor_decidable(shop: Any) -> None:
    ours = shop.customers.add(name="Vũ Đức Hải", phone="0933444555", owner="lan")
    theirs = shop.customers.add(name="Ngô Văn Tâm", phone="0933444555", owner="tuan")
    shop.idic.run(steps=["identify"])
    (item,) = shop.idic.reviews()
    hoa = _signed_in(shop, "hoa")
    assert "Ngô Văn Tâm" not in text(hoa.get(REVIEWS))
    refused = hoa.post(f"{REVIEWS}/{item['id']}/accept", headers=_page_token(hoa))
    assert refused.status_code == 404
    assert {shop.customers.get(ours.id).status, shop.customers.get(theirs.id).status} == {"active"}


def test_a_salesperson_has_no_review_queue_and_cannot_run_idic(shop: Any) -> None:
    _queued_pair(shop)
    minh = _signed_in(shop, "minh")
    home = text(minh.get("/console/"))
    assert "IDIC" in home and "My agenda" in home and "Review queue" not in home
    status = minh.get("/console/idic/")
    assert status.status_code == 200 and "Run now" not in text(status)
    assert minh.get(REVIEWS).status_code == 403
    refused = minh.post("/console/idic/run", headers=_page_token(minh))
    assert refused.status_code == 403 and "You may not do this." in text(refused)
    assert [run.actor for run in shop.idic.runs()] == ["system"]


def test_without_idic_read_there_is_no_menu_entry_page_tile_or_panel(crm: Any) -> None:
    add_user(crm, "doc", roles=[], grants={"customers.read": "all"})
    crm.users.update("doc", locale="en")
    an = crm.customers.add(name="Nguyễn Văn An", tags=["needs:service"])
    crm.idic.run()
    doc = _signed_in(crm, "doc")
    home = text(doc.get("/console/"))
    assert "IDIC" not in home and "My agenda" not in home
    for path in ("/console/idic/", "/console/idic/agenda", "/console/idic/treatments", REVIEWS):
        assert doc.get(path).status_code == 403, path
    profile = text(doc.get(f"/console/customers/{an.id}"))
    assert "Nguyễn Văn An" in profile and "IDIC" not in profile and "Needs group" not in profile


def test_a_manager_runs_idic_now_and_sees_the_steps_and_the_history(shop: Any) -> None:
    shop.customers.add(name="Nguyễn Văn An", email="an@example.vn", owner="lan")
    shop.customers.add(name="Nguyen Van An", email="an@example.vn", owner="minh")
    hoa = _signed_in(shop, "hoa")
    assert "Never run" in text(hoa.get("/console/idic/")) and "No run yet." in text(hoa.get("/console/idic/"))
    ran = hoa.submit("/console/idic/", "/console/idic/run", {})
    assert ran.status_code == 303
    page = text(hoa.get(ran.headers["Location"]))
    run = shop.idic.last_run()
    assert run.actor == "hoa" and run.status == "done"
    assert "The IDIC run finished." in page and f"Last run Done #{run.id}" in page
    assert "Identify Done Customers matched 1 Merged automatically 1 Sent to review 0" in page
    assert "The figures cover the customers in your scope." in page
    assert "Customers per tier Most valuable Most growable Maintain Below zero Unknown value 0 0 0 0 1" in page
    assert f"{run.id} " in page and "hoa Identify, Differentiate, Interact, Customize Done" in page


def test_the_agenda_lists_a_salespersons_own_contacts_in_vietnamese_linking_to_the_360(shop: Any) -> None:
    mine = shop.customers.add(name="Đặng Thu Trang", owner="lan", consents={"sms": True})
    shop.customers.add(name="Ngô Văn Tâm", owner="minh", consents={"email": True})
    shop.idic.run()
    lan = _signed_in(shop, "lan")
    agenda = lan.get("/console/idic/agenda")
    words = text(agenda)
    assert "Khách tôi cần liên hệ hôm nay" in words
    assert "Đặng Thu Trang · SMS" in words and "Ngô Văn Tâm" not in words
    assert "Chưa rõ giá trị: liên hệ 60 ngày một lần" in words
    assert "Việc nên làm tiếp theo: hỏi nhu cầu của khách ở lần liên hệ tới" in words
    assert f'href="/console/customers/{mine.id}"' in agenda.get_data(as_text=True)
    assert "Ngô Văn Tâm" not in text(lan.get("/console/idic/agenda?who=all"))  # her scope is her own customers
    home = text(lan.get("/console/"))
    assert "Lịch liên hệ của tôi" in home and "1 khách cần liên hệ hôm nay" in home


def test_the_customer_360_shows_tier_needs_and_treatment_in_vietnamese(shop: Any) -> None:
    an = shop.customers.add(name="Nguyễn Văn An", owner="lan", tags=["needs:service"], consents={"sms": True})
    shop.idic.add_treatment(
        "Chăm sóc bảo hành", tier="unknown", needs="service", message="Gọi nhắc lịch bảo dưỡng miễn phí"
    )
    shop.idic.run()
    profile = text(_signed_in(shop, "lan").get(f"/console/customers/{an.id}"))
    assert "IDIC Hạng khách Chưa rõ giá trị" in profile
    assert "Nhóm nhu cầu Dịch vụ, bảo hành (nhãn needs:…)" in profile
    assert "Chính sách áp dụng Chăm sóc bảo hành" in profile
    assert "Việc nên làm tiếp theo Gọi nhắc lịch bảo dưỡng miễn phí" in profile
    assert "Kênh ưa thích SMS" in profile and "Nhịp liên hệ 60 ngày một lần" in profile


def test_a_manager_adds_and_removes_a_treatment_and_a_salesperson_only_reads_them(shop: Any) -> None:
    page = "/console/idic/treatments"
    hoa = _signed_in(shop, "hoa")
    refused = hoa.submit(page, f"{page}/add", {"name": "", "priority": "10"})
    assert refused.status_code == 422
    errors = text(refused)
    assert "The form has errors" in errors and "a name of 1 to 200 characters is required" in errors
    added = hoa.submit(
        page,
        f"{page}/add",
        {
            "name": "Khách VIP",
            "tier": "most_valuable",
            "priority": "10",
            "message": "Mời dự tiệc tri ân",
            "service_level": "vàng",
        },
    )
    listed = text(hoa.get(added.headers["Location"]))
    assert "Treatment added." in listed
    assert "10 Khách VIP Most valuable Any Service level vàng Message Mời dự tiệc tri ân Remove" in listed
    again = hoa.submit(page, f"{page}/add", {"name": "Khách VIP", "priority": "20", "offer": "Giảm 5%"})
    assert again.status_code == 409 and "A treatment with this name already exists." in text(again)
    assert 'value="Giảm 5%"' in again.get_data(as_text=True)  # what she typed is kept

    lan = _signed_in(shop, "lan")
    read = text(lan.get(page))
    assert "Khách VIP" in read and "Xóa" not in read and "Thêm chính sách" not in read
    assert lan.post(f"{page}/remove", {"name": "Khách VIP"}, headers=_page_token(lan)).status_code == 403

    removed = hoa.submit(page, f"{page}/remove", {"name": "Khách VIP"})
    assert "Treatment removed." in text(hoa.get(removed.headers["Location"]))
    assert shop.idic.treatments() == []


def test_a_treatment_handed_to_campaigns_becomes_a_segment_and_a_draft(shop_crm: Any) -> None:
    crm = shop_crm  # with the conftest's campaigns stand-in
    add_user(crm, "hoa", teams=["HN"], roles=["manager"])
    crm.users.update("hoa", locale="en")
    crm.idic.add_treatment("Khách tiềm năng", tier="most_growable", offer="Giảm 10% cho đơn hàng tiếp theo")
    hoa = _signed_in(crm, "hoa")
    page = "/console/idic/treatments"
    assert "Condition (segment expression)" in text(hoa.get(page))  # conditions need the campaigns language
    handed = hoa.submit(page, f"{page}/handoff", {"name": "Khách tiềm năng"})
    assert "Handed to campaigns: a segment and a draft campaign were created." in text(
        hoa.get(handed.headers["Location"])
    )
    (draft,) = crm.campaigns.drafts
    assert draft["name"] == "IDIC: Khách tiềm năng" and draft["subject"] == "Giảm 10% cho đơn hàng tiếp theo"


@pytest.mark.sqlite_only  # the catalogs, not the database
def test_every_text_of_the_pages_has_a_vietnamese_translation(crm: Any) -> None:
    from crmkit_idic import console

    used = {
        msgid
        for table in (
            console.TIER_LABELS,
            console.NEEDS_LABELS,
            console.STEP_LABELS,
            console.STATUS_LABELS,
            console.CHANNEL_LABELS,
            console.KIND_LABELS,
            console.COUNT_LABELS,
            console.NOTICES,
        )
        for msgid in table.values()
    }
    used |= {msgid for _, msgid in console.REASONS + console.ACTIONS}
    assert untranslated(crm, "idic", also=used) == []
