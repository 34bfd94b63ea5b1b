"""Loyalty in the web console: the 360's loyalty card and its Redeem form, the member's statement, the programs and
rewards pages (managed by ``loyalty.programs.manage``), the "Points liability" tile and the menu — as people see them."""

from __future__ import annotations

import re
from typing import Any

import pytest

from crmkit.console.testing import ConsoleBrowser, console_user, csrf_of, text


@pytest.fixture
def shop(loyal: Any) -> dict[str, Any]:
    """Lan (sales, Hà Nội, reads Vietnamese) and Minh (sales, Sài Gòn); three rewards; Lan's member An with 350 points
    (a point is worth 500 ₫) and Minh's member Dung."""
    crm = loyal
    console_user(crm, "lan", teams=["Hà Nội"])
    console_user(crm, "minh", teams=["Sài Gòn"], locale="en")
    crm.loyalty.programs.add_reward(
        "voucher-100k", "Phiếu mua hàng 100.000 ₫", 200, kind="discount", value_minor=100_000
    )
    crm.loyalty.programs.add_reward("arabica-250", "Cà phê Arabica Cầu Đất 250g", 100, stock=5)
    crm.loyalty.programs.add_reward("may-xay", "Máy xay cà phê", 5000)
    an = crm.customers.add(name="Nguyễn Văn An", owner="lan")  # joins the program automatically
    dung = crm.customers.add(name="Võ Thị Dung", owner="minh")
    crm.loyalty.grant(an.id, 350, "Quà khai trương cửa hàng")
    crm.loyalty.grant(dung.id, 900, "Khách quen")
    return {"crm": crm, "an": an.id, "dung": dung.id}


def _signed_in(crm: Any, username: str) -> ConsoleBrowser:
    browser = ConsoleBrowser(crm)
    assert browser.sign_in(username).status_code == 303
    return browser


def test_the_loyalty_card_shows_balance_tier_value_expiring_points_latest_lines_and_affordable_rewards(
    shop: dict[str, Any],
) -> None:
    browser = _signed_in(shop["crm"], "lan")
    page = browser.get(f"/console/customers/{shop['an']}")
    shown = text(page)
    assert page.status_code == 200
    assert "Thẻ thành viên" in shown and "350 điểm" in shown and "Thành viên" in shown  # the Member tier, translated
    assert "175.000 ₫" in shown  # 350 points × 500 ₫
    assert "Tặng thủ công · Quà khai trương cửa hàng +350" in shown
    assert "Sắp hết hạn" in shown
    select = page.get_data(as_text=True).split('name="reward"')[1].split("</select>")[0]
    options = re.findall(r"<option value=\"([^\"]+)\"", select)
    assert options == ["arabica-250", "voucher-100k"]  # what 350 points buy, cheapest first; not the grinder
    assert "Cà phê Arabica Cầu Đất 250g — 100 điểm" in shown


def test_redeeming_from_the_360_takes_the_points_and_says_so_with_the_voucher_code(shop: dict[str, Any]) -> None:
    crm, an = shop["crm"], shop["an"]
    crm.loyalty.programs.update_reward("voucher-100k", name="Phiếu mua hàng 100.000 ₫ <VIP>")
    browser = _signed_in(crm, "lan")
    answer = browser.submit(
        f"/console/customers/{an}",
        f"/console/loyalty/members/{an}/redeem",
        {"program": "default", "reward": "voucher-100k"},
    )
    assert answer.status_code == 303
    assert re.search(rf"/console/customers/{an}\?redeemed=\d+#panel-loyalty$", answer.headers["Location"])
    assert crm.loyalty.balance(an) == 150
    (done,) = crm.loyalty.redemptions(an)
    page = browser.get(answer.headers["Location"])
    shown = text(page)
    assert f"Đã đổi Phiếu mua hàng 100.000 ₫ <VIP> với 200 điểm. Mã phiếu: {done.code}" in shown
    assert "Số dư mới: 150 điểm." in shown
    assert "150 điểm" in shown and "Đổi quà · 1 × Phiếu mua hàng 100.000 ₫ <VIP> -200" in shown
    html = page.get_data(as_text=True)
    assert f'<strong class="voucher">{done.code}</strong>' in html and "<VIP>" not in html  # the name is escaped


def test_redeeming_more_than_the_balance_shows_the_services_refusal_next_to_the_form(shop: dict[str, Any]) -> None:
    crm, an = shop["crm"], shop["an"]
    browser = _signed_in(crm, "lan")
    refused = browser.submit(
        f"/console/customers/{an}", f"/console/loyalty/members/{an}/redeem", {"program": "default", "reward": "may-xay"}
    )
    assert refused.status_code == 422
    shown = text(refused)
    assert "Không đủ điểm để đổi quà này. (not enough points: the balance is 350, 5000 needed)" in shown
    assert '<option value="may-xay" selected>Máy xay cà phê</option>' in refused.get_data(as_text=True)  # kept, named
    assert 'aria-invalid="true" aria-describedby="redeem-error-default"' in refused.get_data(as_text=True)
    assert crm.loyalty.balance(an) == 350 and crm.loyalty.redemptions(an) == []

    unknown = browser.submit(
        f"/console/customers/{an}",
        f"/console/loyalty/members/{an}/redeem",
        {"program": "default", "reward": "khong-co"},
    )
    assert unknown.status_code == 422
    assert "Không thể đổi quà này. (reward 'khong-co' not found)" in text(unknown)


def test_another_teams_member_is_not_found_for_the_card_the_statement_and_redeeming(shop: dict[str, Any]) -> None:
    crm, dung = shop["crm"], shop["dung"]
    browser = _signed_in(crm, "lan")
    page = browser.get(f"/console/customers/{shop['an']}")
    assert browser.get(f"/console/customers/{dung}").status_code == 404
    statement = browser.get(f"/console/loyalty/members/{dung}")
    assert statement.status_code == 404 and "Võ Thị Dung" not in text(statement)
    redeem = {"program": "default", "reward": "arabica-250"}
    # A form's token is for its own action: An's does not open Dung's redeem...
    token = csrf_of(page, f"/console/loyalty/members/{shop['an']}/redeem")
    assert browser.post(f"/console/loyalty/members/{dung}/redeem", {**redeem, "csrf_token": token}).status_code == 403
    # ...and with the page's htmx token, good for any path, the service finds no such member in her scope.
    api_token = re.search(r'"X-CSRF-Token": "([0-9a-f]+)"', page.get_data(as_text=True)).group(1)
    answer = browser.post(f"/console/loyalty/members/{dung}/redeem", redeem, headers={"X-CSRF-Token": api_token})
    assert answer.status_code == 404 and "Võ Thị Dung" not in text(answer)
    assert crm.loyalty.balance(dung) == 900 and crm.loyalty.redemptions(dung) == []


def test_a_user_without_loyalty_permissions_sees_no_card_no_menu_entry_and_gets_403(shop: dict[str, Any]) -> None:
    crm = shop["crm"]
    console_user(crm, "thu", roles=[], grants={"customers.read": "all"}, locale="en")
    browser = _signed_in(crm, "thu")
    profile = text(browser.get(f"/console/customers/{shop['an']}"))
    assert "Nguyễn Văn An" in profile and "Loyalty card" not in profile and "350" not in profile
    home = text(browser.get("/console/"))
    assert "Loyalty" not in home and "Rewards" not in home and "Points liability" not in home
    for path in ("/console/loyalty/programs", "/console/loyalty/rewards", f"/console/loyalty/members/{shop['an']}"):
        assert browser.get(path).status_code == 403, path


def test_a_member_who_may_read_but_not_redeem_gets_no_redeem_form(shop: dict[str, Any]) -> None:
    crm = shop["crm"]
    console_user(crm, "hoa", roles=["read-only"], locale="en")
    browser = _signed_in(crm, "hoa")
    page = browser.get(f"/console/customers/{shop['an']}")
    assert "Loyalty card" in text(page) and "350 points" in text(page)
    assert "Redeem a reward" not in text(page) and "/redeem" not in page.get_data(as_text=True)


def test_the_statement_pages_by_month_with_a_running_balance_and_shows_the_tier_history(shop: dict[str, Any]) -> None:
    crm, an = shop["crm"], shop["an"]
    order = crm.sales.place(an, 3_000_000)  # 300 qualifying points: Silver once the tiers below are set
    crm.loyalty.redeem(an, "arabica-250")
    crm.loyalty.programs.set_tiers(
        [
            {"code": "member", "name": "Member", "threshold": 0},
            {"code": "silver", "name": "Silver", "threshold": 300, "multiplier": "1.1"},
        ]
    )
    browser = _signed_in(crm, "lan")
    page = browser.get(f"/console/loyalty/members/{an}")
    shown = text(page)
    assert page.status_code == 200 and "Sao kê điểm · Nguyễn Văn An" in shown
    assert re.search(
        rf"Cộng điểm · Mua hàng #{order.id} \+300 300 .*Tặng thủ công Quà khai trương cửa hàng \+350 650 "
        r".*Đổi điểm · Đổi quà 1 × Cà phê Arabica Cầu Đất 250g -100 550",
        shown,
    )  # oldest first
    assert "Số dư đầu kỳ 0 Cộng điểm +300 Đổi điểm -100 Thu hồi 0 Hết hạn 0 Điều chỉnh +350 Số dư cuối kỳ 550" in shown
    assert "Thành viên → Bạc" in shown  # the tier history, in the catalog's words
    assert "Đã đổi" in shown and crm.loyalty.redemptions(an)[0].code in shown
    older = browser.get(f"/console/loyalty/members/{an}?month=2020-01")
    assert "Không có biến động điểm trong kỳ này." in text(older)


def test_the_programs_page_lists_rules_and_tiers_in_vietnamese_with_money_in_dong(shop: dict[str, Any]) -> None:
    crm = shop["crm"]
    crm.loyalty.programs.add_rule("min_order", amount_minor=2_000_000, bonus_points=50)
    browser = _signed_in(crm, "lan")
    shown = text(browser.get("/console/loyalty/programs"))
    assert "Khách hàng thân thiết" in shown
    assert "1 điểm cho mỗi 10.000 ₫ chi tiêu" in shown and "Một điểm trị giá 500 ₫" in shown
    assert "Kim cương" in shown and "5.000 điểm" in shown and "× 1,5" in shown
    assert "Đơn tối thiểu đơn từ 2.000.000 ₫ +50 điểm" in shown
    menu = browser.get("/console/").get_data(as_text=True).split("</nav>")[0]
    assert ">Tích điểm</a>" in menu and ">Quà đổi điểm</a>" in menu


def test_a_manager_creates_edits_and_retires_a_reward_and_a_salesperson_may_only_read(shop: dict[str, Any]) -> None:
    crm = shop["crm"]
    console_user(crm, "trang", roles=["sales"], grants={"loyalty.programs.manage": "all"}, locale="en")
    browser = _signed_in(crm, "trang")
    bad = browser.submit(
        "/console/loyalty/rewards/new?program=default",
        "/console/loyalty/rewards/new",
        {
            "program": "default",
            "code": "Bad Code",
            "name": "Bình giữ nhiệt",
            "kind": "product",
            "points_cost": "300",
            "value": "50.000",
        },
    )
    assert bad.status_code == 422
    assert "'50.000': VND amounts have 0 decimal places" in text(bad) and 'value="Bad Code"' in bad.get_data(
        as_text=True
    )
    saved = browser.submit(
        "/console/loyalty/rewards/new?program=default",
        "/console/loyalty/rewards/new",
        {
            "program": "default",
            "code": "binh-giu-nhiet",
            "name": "Bình giữ nhiệt",
            "kind": "product",
            "points_cost": "300",
            "stock": "10",
            "value": "250000",
        },
    )
    assert saved.status_code == 303
    listed = text(browser.get("/console/loyalty/rewards"))
    assert "Bình giữ nhiệt binh-giu-nhiet Product 300 ₫250,000 10 offered" in listed
    edit = "/console/loyalty/rewards/default/binh-giu-nhiet/edit"
    assert (
        browser.submit(
            edit,
            edit,
            {
                "name": "Bình giữ nhiệt Lock&Lock",
                "kind": "product",
                "points_cost": "280",
                "stock": "",
                "value": "250000",
            },
        ).status_code
        == 303
    )
    reward = [r for r in crm.loyalty.programs.rewards() if r.code == "binh-giu-nhiet"][0]
    assert (reward.name, reward.points_cost, reward.stock) == ("Bình giữ nhiệt Lock&Lock", 280, None)
    status = "/console/loyalty/rewards/default/binh-giu-nhiet/status"
    assert browser.submit("/console/loyalty/rewards", status, {"active": "0"}).status_code == 303
    assert "binh-giu-nhiet" not in [r.code for r in crm.loyalty.programs.rewards()]
    assert "Bình giữ nhiệt Lock&Lock binh-giu-nhiet Product 280 ₫250,000 unlimited retired" in text(
        browser.get("/console/loyalty/rewards")
    )

    seller = _signed_in(crm, "minh")
    rewards = seller.get("/console/loyalty/rewards")
    assert rewards.status_code == 200 and "Máy xay cà phê" in text(rewards)
    assert "Bình giữ nhiệt" not in text(rewards) and "New reward" not in text(rewards)
    assert seller.get(edit).status_code == 403 and seller.get("/console/loyalty/rewards/new").status_code == 403


def test_the_points_liability_tile_shows_outstanding_points_and_their_value_to_whom_may_read_reports(
    shop: dict[str, Any],
) -> None:
    crm = shop["crm"]
    console_user(crm, "quan", roles=["marketing"])
    tile = text(_signed_in(crm, "quan").get("/console/"))
    assert "Điểm chưa sử dụng" in tile and "625.000 ₫" in tile  # 1.250 points × 500 ₫
    assert "1.250 điểm chưa dùng, 2 thành viên" in tile
    assert "Điểm chưa sử dụng" not in text(_signed_in(crm, "lan").get("/console/"))  # sales may not read reports
