"""The console's administration pages as an administrator, a manager and a sales user use them."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from playwright.sync_api import expect

from crmkit.console.sessions import COOKIE
from crmkit.console.testing import PASSWORD, ConsoleBrowser, console_user, csrf_of, text
from crmkit.testing import add_user

NEW_PASSWORD = "Sen-tra-mua-2027"


def admin(crm: Any, username: str = "thu", **user: Any) -> ConsoleBrowser:
    """A browser signed in as an administrator (speaking English unless told otherwise)."""
    console_user(crm, username, roles=["administrator"], **{"locale": "en", **user})
    browser = ConsoleBrowser(crm)
    assert browser.sign_in(username).status_code == 303
    return browser


def signed_in(crm: Any, username: str, *, app: Any = None, **user: Any) -> ConsoleBrowser:
    """A browser signed in as a new user (sales unless told otherwise), on ``app`` when given (made once: it costs)."""
    console_user(crm, username, **user)
    browser = ConsoleBrowser(crm, app=app)
    assert browser.sign_in(username).status_code == 303
    return browser


def device(crm: Any, browser: ConsoleBrowser) -> ConsoleBrowser:
    """Another browser (its own cookies) on the same app."""
    return ConsoleBrowser(crm, app=browser.client.application)


def menu(page: Any) -> list[str]:
    """The labels of the top menu's links."""
    nav = re.search(r"<header class=\"top\">.*?</nav>", page.get_data(as_text=True), re.DOTALL)
    return re.findall(r"<a [^>]*>([^<]+)</a>", nav.group(0)) if nav else []


# -- who sees what ---------------------------------------------------------------------------------------


ADMIN_PATHS = [
    "/console/admin/",
    "/console/admin/users",
    "/console/admin/users/new",
    "/console/admin/users/lan/edit",
    "/console/admin/teams",
    "/console/admin/roles",
    "/console/admin/roles/new",
    "/console/admin/tokens",
    "/console/admin/webhooks",
    "/console/admin/plugins",
]


def test_a_sales_user_has_no_administration_menu_and_every_page_and_change_is_refused(crm: Any) -> None:
    browser = signed_in(crm, "lan", locale="en")
    home = browser.get("/console/")
    assert "Administration" not in menu(home) and "Audit log" not in menu(home)
    for path in [*ADMIN_PATHS, "/console/admin/audit"]:
        page = browser.get(path)
        assert page.status_code == 403, path
        assert "You may not do this." in text(page)
    token = csrf_of(home, "/console/sign-out")  # any token of hers: the permission refuses before anything runs
    refused = browser.post(
        "/console/admin/users/new", {"csrf_token": token, "username": "mallory", "password": NEW_PASSWORD}
    )
    assert refused.status_code == 403
    with pytest.raises(Exception, match="mallory"):
        crm.users.get("mallory")


def test_a_manager_reads_the_audit_log_of_the_teams_customers_but_administers_nothing(crm: Any) -> None:
    browser = signed_in(crm, "hai", roles=["manager"], teams=["Hà Nội"], locale="en")
    add_user(crm, "lan", teams=["Hà Nội"], roles=["sales"])
    add_user(crm, "minh", teams=["Sài Gòn"], roles=["sales"])
    crm.customers.add(name="Nguyễn Văn An", owner="lan")
    crm.customers.add(name="Võ Thị Dung", owner="minh")
    home = browser.get("/console/")
    assert "Audit log" in menu(home) and "Administration" not in menu(home)
    log = text(browser.get("/console/admin/audit"))
    assert "Nguyễn Văn An" in log and "Võ Thị Dung" not in log
    assert "Users" not in log.split("Audit log")[0]  # no tab to the sections he may not open
    assert browser.get("/console/admin/users").status_code == 403


def test_an_administrator_sees_every_section_in_the_menu_and_tabs(crm: Any) -> None:
    browser = admin(crm)
    home = browser.get("/console/")
    assert menu(home)[-2:] == ["Administration", "Audit log"]
    index = text(browser.get("/console/admin/"))
    for section in ("Users", "Teams", "Roles", "API tokens", "Webhooks", "Plugins", "Audit log"):
        assert section in index


# -- users -----------------------------------------------------------------------------------------------


def test_the_user_list_shows_roles_teams_active_and_last_sign_in(crm: Any) -> None:
    browser = admin(crm)
    add_user(crm, "lan", teams=["Hà Nội"], roles=["sales"])
    crm.users.update("lan", display_name="Nguyễn Thị Lan")
    add_user(crm, "minh", teams=["Sài Gòn"], roles=["sales"])
    crm.users.disable("minh")
    page = browser.get("/console/admin/users")
    row = {
        name: re.sub(r"\s+", " ", cells)
        for name, cells in re.findall(
            r"<tr><td><a [^>]*>([^<]+)</a></td>(.*?)</tr>", page.get_data(as_text=True), re.DOTALL
        )
    }
    lan = text_of(row["lan"])
    assert "Nguyễn Thị Lan" in lan and "sales" in lan and "Hà Nội" in lan and "Yes" in lan and "Never" in lan
    assert "No" in text_of(row["minh"]) and "Sài Gòn" in text_of(row["minh"])
    assert "Never" not in text_of(row["thu"])  # she signed in


def html_of(page: Any) -> str:
    """The page's HTML with entities decoded (an error's quotes are escaped)."""
    return html.unescape(page.get_data(as_text=True))


def text_of(fragment: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", fragment).split())


def test_an_administrator_creates_a_user_with_roles_and_teams_who_then_signs_in(crm: Any) -> None:
    browser = admin(crm)
    crm.teams.add("Hà Nội")
    made = browser.submit(
        "/console/admin/users/new",
        "/console/admin/users/new",
        {
            "username": "hoa",
            "display_name": "Lê Thị Hoa",
            "email": "hoa@example.vn",
            "password": NEW_PASSWORD,
            "locale": "vi",
            "timezone": "",
            "roles": ["sales", "support"],
            "teams": ["Hà Nội"],
        },
    )
    assert made.status_code == 303 and made.headers["Location"] == "/console/admin/users/hoa/edit?saved=created"
    hoa = crm.users.get("hoa")
    assert (hoa.display_name, hoa.email, hoa.locale, hoa.roles, hoa.teams) == (
        "Lê Thị Hoa",
        "hoa@example.vn",
        "vi",
        ("sales", "support"),
        ("Hà Nội",),
    )
    assert "User created." in text(browser.get(made.headers["Location"]))
    assert device(crm, browser).sign_in("hoa", NEW_PASSWORD).status_code == 303


def test_the_create_form_shows_each_error_by_its_field_and_keeps_what_was_typed(crm: Any) -> None:
    browser = admin(crm)
    weak = browser.submit(
        "/console/admin/users/new",
        "/console/admin/users/new",
        {"username": "hoa", "display_name": "Lê Thị Hoa", "password": "short", "locale": "vi", "roles": ["sales"]},
    )
    assert weak.status_code == 422
    body = weak.get_data(as_text=True)
    assert re.search(r'id="password-error">must be at least 10 characters', body)
    assert 'value="Lê Thị Hoa"' in body and re.search(r'value="sales" checked', body)
    taken = browser.submit(
        "/console/admin/users/new",
        "/console/admin/users/new",
        {"username": "thu", "password": NEW_PASSWORD, "locale": "en"},
    )
    assert taken.status_code == 422 and "id=\"username-error\">user 'thu' already exists" in html_of(taken)


def test_editing_a_user_changes_profile_roles_and_teams(crm: Any) -> None:
    browser = admin(crm)
    add_user(crm, "lan", teams=["Hà Nội"], roles=["sales"])
    crm.teams.add("Sài Gòn")
    page = "/console/admin/users/lan/edit"
    saved = browser.submit(
        page,
        page,
        {
            "display_name": "Phạm Thị Lan",
            "email": "",
            "phone": "0903 123 456",
            "locale": "en",
            "timezone": "Asia/Bangkok",
            "roles": ["support"],
            "teams": ["Sài Gòn"],
        },
    )
    assert saved.status_code == 303
    lan = crm.users.get("lan")
    assert (lan.display_name, lan.phone, lan.locale, lan.timezone, lan.roles, lan.teams) == (
        "Phạm Thị Lan",
        "+84903123456",
        "en",
        "Asia/Bangkok",
        ("support",),
        ("Sài Gòn",),
    )
    bad = browser.submit(
        page,
        page,
        {
            "display_name": "Phạm Thị Lan",
            "timezone": "Mars/Olympus",
            "locale": "en",
            "roles": ["support"],
            "teams": ["Sài Gòn"],
        },
    )
    assert bad.status_code == 422 and "unknown time zone" in text(bad)


def test_a_new_password_ends_the_users_console_sessions_but_not_the_administrators(crm: Any) -> None:
    browser = admin(crm)
    lan = signed_in(crm, "lan", app=browser.client.application)
    on_phone = device(crm, browser)
    assert on_phone.sign_in("lan").status_code == 303
    assert lan.get("/console/").status_code == 200
    page = "/console/admin/users/lan/edit"
    weak = browser.submit(page, "/console/admin/users/lan/password", {"password": "lan"})
    assert weak.status_code == 422 and "must be at least 10 characters" in text(weak)
    assert lan.get("/console/").status_code == 200  # a refused password changes nothing
    changed = browser.submit(page, "/console/admin/users/lan/password", {"password": NEW_PASSWORD})
    assert changed.headers["Location"] == "/console/admin/users/lan/edit?saved=password"
    assert "Password changed: their console sessions have ended." in text(browser.get(changed.headers["Location"]))
    for ended in (lan, on_phone):
        assert ended.get("/console/").headers["Location"].startswith("/console/sign-in")
    assert device(crm, browser).sign_in("lan", NEW_PASSWORD).status_code == 303
    own = "/console/admin/users/thu/edit"  # her own password: her other sessions end, this one stays
    other_tab = device(crm, browser)
    other_tab.sign_in("thu")
    browser.submit(own, "/console/admin/users/thu/password", {"password": NEW_PASSWORD})
    assert browser.get("/console/admin/users").status_code == 200
    assert other_tab.get("/console/").status_code == 303


def test_deactivating_ends_the_sessions_unlocking_lifts_the_lock_and_no_one_deactivates_themselves(crm: Any) -> None:
    browser = admin(crm)
    lan = signed_in(crm, "lan", app=browser.client.application)
    page = "/console/admin/users/lan/edit"
    assert "Deactivate" in text(browser.get(page)) and "Unlock" not in text(browser.get(page))
    gone = browser.submit(page, "/console/admin/users/lan/active", {"active": "0"})
    assert gone.headers["Location"] == "/console/admin/users/lan/edit?saved=deactivated"
    assert lan.get("/console/").status_code == 303 and lan.cookie(COOKIE) is not None
    assert crm.users.get("lan").active is False
    assert browser.submit(page, "/console/admin/users/lan/active", {"active": "1"}).status_code == 303
    for _ in range(5):
        lan.sign_in("lan", "wrong password")
    assert lan.sign_in("lan").status_code == 401
    assert "Locked until" in text_of(
        re.search(
            r"<tr><td><a [^>]*>lan</a>.*?</tr>", browser.get("/console/admin/users").get_data(as_text=True), re.DOTALL
        ).group(0)
    )
    assert "Unlock" in text(browser.get(page))
    unlocked = browser.submit(page, "/console/admin/users/lan/unlock", {})
    assert "Account unlocked." in text(browser.get(unlocked.headers["Location"]))
    assert lan.sign_in("lan").status_code == 303
    own = browser.submit("/console/admin/users/thu/edit", "/console/admin/users/thu/active", {"active": "0"})
    assert own.status_code == 422 and "You cannot deactivate your own account." in text(own)
    assert crm.users.get("thu").active


# -- teams and roles -------------------------------------------------------------------------------------


def test_teams_are_created_under_a_parent_and_members_added_and_removed(crm: Any) -> None:
    browser = admin(crm)
    add_user(crm, "lan", roles=["sales"])
    crm.teams.add("Miền Bắc")
    teams = "/console/admin/teams"
    made = browser.submit(teams, teams, {"name": "Hà Nội", "parent": "Miền Bắc"})
    assert made.status_code == 303
    team = crm.teams.get("Hà Nội")
    assert team.parent == "Miền Bắc"
    again = browser.submit(teams, teams, {"name": "Hà Nội", "parent": ""})
    assert again.status_code == 422 and "team 'Hà Nội' already exists" in text(again)
    page = f"/console/admin/teams/{team.id}"
    browser.submit(page, page, {"change": "add", "username": "lan"})
    assert crm.teams.get("Hà Nội").members == ("lan",)
    assert "Remove lan" in text(browser.get(page))
    browser.submit(page, page, {"change": "remove", "username": "lan"})
    assert crm.teams.get("Hà Nội").members == ()
    assert browser.get("/console/admin/teams/999999").status_code == 404


def test_roles_list_permissions_with_scopes_and_a_custom_role_is_created_and_edited(crm: Any) -> None:
    browser = admin(crm)
    roles = text(browser.get("/console/admin/roles"))
    assert "sales" in roles and "customers.read · own records" in roles
    assert "customers.read · the team's records" in roles
    made = browser.submit(
        "/console/admin/roles/new",
        "/console/admin/roles/new",
        {
            "name": "telesales",
            "description": "calls leads",
            "grant:customers.read": "team",
            "grant:interactions.log": "own",
        },
    )
    assert made.status_code == 303
    assert crm.roles.get("telesales").grants == {"customers.read": "team", "interactions.log": "own"}
    role = crm.roles.get("telesales")
    page = f"/console/admin/roles/{role.id}/edit"
    form = browser.get(page).get_data(as_text=True)
    assert re.search(r'name="grant:customers.read">.*?<option value="team" selected', form, re.DOTALL)
    browser.submit(page, page, {"grant:customers.read": "all", "grant:users.admin": "all"})
    assert crm.roles.get("telesales").grants == {"customers.read": "all", "users.admin": "all"}
    refused = browser.submit(page, page, {"grant:users.admin": "own"})  # not about records: only "all"
    assert refused.status_code == 422 and "users.admin is not about records" in text(refused)


# -- API tokens ------------------------------------------------------------------------------------------


def test_a_new_tokens_secret_is_shown_once_then_never_and_revoking_stops_it(crm: Any) -> None:
    browser = admin(crm)
    add_user(crm, "lan", roles=["sales"])
    made = browser.submit(
        "/console/admin/tokens",
        "/console/admin/tokens",
        {"username": "lan", "name": "Zalo shop", "permissions": "customers.read, interactions.log", "expires": ""},
    )
    assert made.status_code == 200
    secret = re.search(r'id="new-secret" readonly value="(crmkit_[^"]+)"', made.get_data(as_text=True)).group(1)
    assert "Copy it now: it will not be shown again." in text(made)
    listing = browser.get("/console/admin/tokens")
    hidden = secret.split("_", 2)[2]  # the part after crmkit_<lookup>_ (it may hold "_" itself)
    assert secret not in listing.get_data(as_text=True) and hidden not in listing.get_data(as_text=True)
    assert "Zalo shop" in text(listing) and "customers.read, interactions.log" in text(listing)
    assert "Never" in text(listing)  # not used yet
    assert crm.users.token_principal(secret).username == "lan"
    token = crm.users.tokens("lan")[0]
    revoked = browser.submit("/console/admin/tokens", f"/console/admin/tokens/{token.id}/revoke", {})
    assert "Token revoked." in text(browser.get(revoked.headers["Location"]))
    assert "revoked" in text(browser.get("/console/admin/tokens"))
    with pytest.raises(Exception, match="invalid, expired or revoked"):
        crm.users.token_principal(secret)
    bad = browser.submit(
        "/console/admin/tokens",
        "/console/admin/tokens",
        {"username": "lan", "name": "x", "permissions": "customers.reed", "expires": ""},
    )
    assert bad.status_code == 422 and "unknown permission 'customers.reed'" in text(bad)


# -- webhooks --------------------------------------------------------------------------------------------


def test_a_webhook_to_a_private_address_is_refused_next_to_the_url_field(crm: Any) -> None:
    browser = admin(crm)
    refused = browser.submit(
        "/console/admin/webhooks",
        "/console/admin/webhooks",
        {"url": "http://127.0.0.1:8080/hook", "events": ["customer.created"], "description": "local"},
    )
    assert refused.status_code == 422
    body = html_of(refused)
    assert "id=\"url-error\">host '127.0.0.1' is a local or private address" in body
    assert 'value="http://127.0.0.1:8080/hook"' in body and 'value="customer.created" checked' in body
    assert crm.webhooks.list() == []


def test_webhooks_are_added_with_the_secret_shown_once_disabled_and_their_deliveries_seen(crm: Any) -> None:
    crm.set_setting("webhooks.allow_private_urls", True)
    browser = admin(crm)
    made = browser.submit(
        "/console/admin/webhooks",
        "/console/admin/webhooks",
        {"url": "http://127.0.0.1:9/hook", "events": ["customer.created", "interaction.logged"], "description": "shop"},
    )
    assert made.status_code == 200
    assert re.search(r'id="new-secret" readonly value="whsec_', made.get_data(as_text=True))
    subscription = crm.webhooks.list()[0]
    assert subscription.events == ("customer.created", "interaction.logged")
    listing = browser.get("/console/admin/webhooks")
    assert "whsec_" not in listing.get_data(as_text=True) and "active" in text(listing)
    crm.customers.add(name="Nguyễn Văn An")
    deliveries = text(browser.get(f"/console/admin/webhooks/{subscription.id}"))
    assert "customer.created" in deliveries and "pending" in deliveries
    browser.submit("/console/admin/webhooks", f"/console/admin/webhooks/{subscription.id}/active", {"active": "0"})
    assert crm.webhooks.get(subscription.id).active is False
    assert "paused" in text(browser.get("/console/admin/webhooks"))


# -- plugins and the audit log ---------------------------------------------------------------------------


@pytest.mark.crmkit_plugins("notes")
def test_plugins_are_listed_with_version_status_and_hooks_and_switched_off_for_the_database(crm: Any) -> None:
    browser = admin(crm)
    page = text(browser.get("/console/admin/plugins"))
    info = next(p for p in crm.plugins.list() if p.name == "notes")
    assert "notes" in page and info.version in page and "enabled" in page and "console_pages" in page
    done = browser.submit("/console/admin/plugins", "/console/admin/plugins/notes", {"enabled": "0"})
    assert "Plugin notes is disabled for this database from the next start of the server" in text(
        browser.get(done.headers["Location"])
    )
    assert [e.action for e in crm.audit.entries(entity="plugin").items] == ["disable"]


def test_the_audit_log_is_newest_first_filtered_by_who_action_and_day_and_paged(crm: Any) -> None:
    browser = admin(crm)
    for n in range(55):
        crm.as_user("thu").customers.add(name=f"Khách {n:02d}")
    first = browser.get("/console/admin/audit?actor=thu&action=create")
    rows = re.findall(r"<tr><td><time", first.get_data(as_text=True))
    assert len(rows) == 50
    shown = text(first)
    assert shown.index("Khách 54") < shown.index("Khách 53")  # newest first
    following = re.search(r'class="next" href="([^"]+)"', first.get_data(as_text=True)).group(1)
    second = text(browser.get(following.replace("&amp;", "&")))
    assert "Khách 04" in second and "Khách 00" in second and "Khách 05" not in second
    assert "Khách" not in text(browser.get("/console/admin/audit?actor=nobody"))
    assert "Khách" not in text(browser.get("/console/admin/audit?actor=thu&until=2000-01-01"))
    assert "Khách 54" in text(browser.get("/console/admin/audit?actor=thu&since=2000-01-01"))
    bad = browser.get("/console/admin/audit?since=yesterday")
    assert "must be a date like 2026-12-31" in text(bad)


# -- in Vietnamese ---------------------------------------------------------------------------------------


def test_the_administration_speaks_vietnamese(crm: Any) -> None:
    browser = admin(crm, locale="vi")
    home = browser.get("/console/")
    assert menu(home)[-2:] == ["Quản trị", "Nhật ký hoạt động"]
    users = text(browser.get("/console/admin/users"))
    assert "Người dùng mới" in users and "Lần đăng nhập cuối" in users and "Bị khóa" in users
    new = text(browser.get("/console/admin/users/new"))
    assert "Tạo người dùng" in new and "Múi giờ" in new
    tokens = text(browser.get("/console/admin/tokens"))
    assert "Tạo mã truy cập" in tokens
    made = browser.submit(
        "/console/admin/tokens",
        "/console/admin/tokens",
        {"username": "thu", "name": "Zalo", "permissions": "", "expires": ""},
    )
    assert "Hãy sao chép ngay: mã này sẽ không được hiển thị lại." in text(made)
    assert "Thêm webhook" in text(browser.get("/console/admin/webhooks"))
    assert "Phần mở rộng" in text(browser.get("/console/admin/plugins"))
    audit = text(browser.get("/console/admin/audit"))
    assert "Người thực hiện" in audit and "Lọc" in audit


# -- in a real browser -----------------------------------------------------------------------------------


def test_in_a_browser_an_administrator_creates_a_user_who_then_signs_in(
    crm: Any, live_server: str, new_browser_page: Any, screenshot: Any
) -> None:
    for team in ("Hà Nội", "Sài Gòn"):
        crm.teams.add(team)
    crm.users.add("thu", "Đặng Minh Thư", password=PASSWORD, locale="vi", roles=["administrator"])
    crm.users.add("lan", "Nguyễn Thị Lan", teams=["Hà Nội"], roles=["sales"])
    crm.users.add("minh", "Trần Văn Minh", teams=["Sài Gòn"], roles=["manager", "support"])
    crm.users.disable("minh")  # he left: the list shows him inactive
    page = new_browser_page()
    page.goto(f"{live_server}/console/admin/users")
    page.get_by_label("Username").fill("thu")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Người dùng", exact=True)).to_be_visible()
    page.get_by_role("navigation", name="Danh mục").get_by_role("link", name="Quản trị").click()
    page.get_by_role("navigation", name="Quản trị").get_by_role("link", name="Người dùng").click()
    page.get_by_role("link", name="Người dùng mới").click()
    page.get_by_label("Tên đăng nhập").fill("hoa")
    page.get_by_label("Tên", exact=True).fill("Lê Thị Hoa")
    page.get_by_label("Email", exact=True).fill("hoa@example.vn")
    page.get_by_label("Mật khẩu", exact=True).fill(NEW_PASSWORD)
    page.get_by_role("group", name="Vai trò").get_by_label("sales").check()
    page.get_by_role("group", name="Nhóm").get_by_label("Hà Nội").check()
    page.get_by_role("button", name="Tạo người dùng").click()
    expect(page.get_by_role("status")).to_have_text("Đã tạo người dùng.")
    expect(page.get_by_role("heading", name="Lê Thị Hoa")).to_be_visible()
    page.get_by_role("navigation", name="Quản trị").get_by_role("link", name="Người dùng").click()
    rows = page.locator("table.list tbody tr")
    expect(rows).to_have_count(4)
    expect(rows.filter(has_text="hoa")).to_contain_text(
        re.compile(r"Lê Thị Hoa\s*sales\s*Hà Nội\s*Có\s*—\s*Chưa bao giờ")
    )
    screenshot(page, "console-admin-users")
    phone = new_browser_page(viewport={"width": 390, "height": 844})
    phone.goto(f"{live_server}/console/")
    phone.get_by_label("Username").fill("hoa")
    phone.get_by_label("Password").fill(NEW_PASSWORD)
    phone.get_by_role("button", name="Sign in").click()
    expect(phone.get_by_role("heading", name="Lê Thị Hoa")).to_be_visible()
    expect(phone.get_by_role("navigation", name="Danh mục")).not_to_contain_text("Quản trị")
