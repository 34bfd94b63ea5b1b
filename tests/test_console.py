"""The web console as a person uses it through the one app: sign-in, sessions, CSRF, customers, the 360, security."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from crmkit.console.sessions import COOKIE
from crmkit.console.testing import ConsoleBrowser, console_user, csrf_of, text, untranslated
from crmkit.core import tables as t
from crmkit.core.types import utcnow

WRONG_VI = "Sai tên đăng nhập hoặc mật khẩu, hoặc tài khoản đang bị khóa."
XSS = "<script>alert(1)</script>"


def signed_in(crm: Any, username: str = "lan", **user: Any) -> ConsoleBrowser:
    """A browser signed in as a new user (sales in team "Hà Nội" unless told otherwise)."""
    console_user(crm, username, **{"teams": ["Hà Nội"], **user})
    browser = ConsoleBrowser(crm)
    assert browser.sign_in(username).status_code == 303
    return browser


def test_sign_in_opens_home_with_the_users_name_customers_and_recent_calls(crm: Any) -> None:
    console_user(crm, "lan")
    crm.users.update("lan", display_name="Phạm Thị Lan")
    an = crm.customers.add(name="Nguyễn Văn An", owner="lan")
    crm.customers.add(name="Trần Thị Bình", owner="lan")
    crm.as_user("lan").interactions.log(an.id, "phone", subject="Hỏi giá gói cước")
    browser = ConsoleBrowser(crm)

    assert browser.get("/console/").headers["Location"] == "/console/sign-in?next=%2Fconsole%2F"
    signed = browser.sign_in("lan")
    assert signed.status_code == 303 and signed.headers["Location"] == "/console/"
    cookie = next(c for c in signed.headers.getlist("Set-Cookie") if c.startswith(f"{COOKIE}="))
    assert {"HttpOnly", "Path=/", "SameSite=Lax"} <= {part.strip() for part in cookie.split(";")}
    assert "Secure" not in cookie  # plain http in the test; see the https test for Secure
    home = text(browser.get("/console/"))
    assert "Phạm Thị Lan" in home and "Khách hàng 2" in home and "Nguyễn Văn An" in home
    assert "Hỏi giá gói cước" in home and "Đăng xuất" in home


def test_sign_in_returns_to_the_page_asked_for_and_never_to_another_site(crm: Any) -> None:
    console_user(crm, "lan")
    browser = ConsoleBrowser(crm)
    page = browser.get("/console/sign-in?next=/console/customers")
    answer = browser.post(
        "/console/sign-in",
        {
            "csrf_token": csrf_of(page, "/console/sign-in"),
            "username": "lan",
            "password": "correct horse battery staple",
            "next": "/console/customers",
        },
    )
    assert answer.headers["Location"] == "/console/customers"
    other = ConsoleBrowser(crm)
    page = other.get("/console/sign-in")
    answer = other.post(
        "/console/sign-in",
        {
            "csrf_token": csrf_of(page, "/console/sign-in"),
            "username": "lan",
            "password": "correct horse battery staple",
            "next": "//evil.example/",
        },
    )
    assert answer.headers["Location"] == "/console/"


def test_a_cookie_over_https_is_secure(crm: Any) -> None:
    console_user(crm, "lan")
    browser = ConsoleBrowser(crm, base_url="https://crm.example")
    cookie = next(c for c in browser.sign_in("lan").headers.getlist("Set-Cookie") if c.startswith(f"{COOKIE}="))
    assert "Secure" in cookie


def test_a_wrong_password_says_so_in_vietnamese_and_five_lock_the_account(crm: Any) -> None:
    console_user(crm, "lan")
    browser = ConsoleBrowser(crm)
    for _ in range(5):
        refused = browser.sign_in("lan", "wrong password")
        assert refused.status_code == 401 and WRONG_VI in text(refused)
        assert browser.cookie(COOKIE) is None
    locked = browser.sign_in("lan")  # the right password, while locked
    assert locked.status_code == 401 and WRONG_VI in text(locked)
    assert crm.users.get("lan").locked_until is not None
    assert browser.get("/console/").status_code == 303


def test_sign_out_deletes_the_session_and_its_cookie_no_longer_works(crm: Any) -> None:
    browser = signed_in(crm)
    token = browser.cookie(COOKIE).value
    out = browser.submit("/console/", "/console/sign-out", {})
    assert out.status_code == 303 and out.headers["Location"] == "/console/sign-in"
    with crm.reading() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.console_sessions)).scalar() == 0
    browser.client.set_cookie(COOKIE, token, domain="localhost")  # a copy of the old cookie
    assert browser.get("/console/").status_code == 303
    assert browser.get("/customers", headers={"Accept": "application/json"}).status_code == 401


@pytest.mark.parametrize(
    ("column", "ago"), [("last_seen_at", timedelta(hours=8, minutes=1)), ("expires_at", timedelta(seconds=1))]
)
def test_a_session_ends_after_8_idle_hours_or_7_days(crm: Any, column: str, ago: timedelta) -> None:
    browser = signed_in(crm)
    assert browser.get("/console/").status_code == 200
    with crm.transaction() as session:
        session.connection().execute(t.console_sessions.update().values({column: utcnow() - ago}))
    assert browser.get("/console/").status_code == 303
    with crm.reading() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.console_sessions)).scalar() == 0


def test_a_post_without_its_forms_token_or_from_another_site_is_refused(crm: Any) -> None:
    browser = signed_in(crm)
    form = {"name": "Võ Thị Hoa", "lifecycle_stage": "lead"}
    assert browser.post("/console/customers/new", form).status_code == 403
    other_forms = csrf_of(browser.get("/console/"), "/console/sign-out")
    assert browser.post("/console/customers/new", {**form, "csrf_token": other_forms}).status_code == 403
    token = csrf_of(browser.get("/console/customers/new"), "/console/customers/new")
    refused = browser.post(
        "/console/customers/new", {**form, "csrf_token": token}, headers={"Origin": "https://evil.example"}
    )
    assert refused.status_code == 403 and "Bạn không có quyền thực hiện thao tác này." in text(refused)
    assert crm.customers.find("hoa").items == []
    assert (
        browser.post(
            "/console/customers/new", {**form, "csrf_token": token}, headers={"Origin": "http://localhost"}
        ).status_code
        == 303
    )
    assert [c.name for c in crm.customers.find("hoa").items] == ["Võ Thị Hoa"]
    header = browser.get("/console/").get_data(as_text=True).split('"X-CSRF-Token": "')[1].split('"')[0]
    htmx = browser.post("/console/customers/new", {**form, "name": "Đỗ Văn Hùng"}, headers={"X-CSRF-Token": header})
    assert htmx.status_code == 303  # htmx sends the page's header instead of the form's field
    anonymous = ConsoleBrowser(crm)
    assert anonymous.post("/console/sign-in", {"username": "lan", "password": "x"}).status_code == 403


def test_the_session_cookie_signs_api_calls_and_their_changes_need_the_csrf_header(crm: Any) -> None:
    browser = signed_in(crm)
    crm.customers.add(name="Nguyễn Văn An", owner="lan")
    listed = browser.get("/customers")
    assert listed.status_code == 200 and [c["name"] for c in listed.json["items"]] == ["Nguyễn Văn An"]
    assert browser.client.post("/customers", json={"name": "Võ Thị Hoa"}).status_code == 403
    header = browser.get("/console/").get_data(as_text=True).split('"X-CSRF-Token": "')[1].split('"')[0]
    made = browser.client.post("/customers", json={"name": "Võ Thị Hoa"}, headers={"X-CSRF-Token": header})
    assert made.status_code == 201 and made.json["owner"] == "lan"


def test_every_page_sends_the_security_headers(crm: Any) -> None:
    browser = signed_in(crm)
    for path in ("/console/sign-in", "/console/", "/console/customers", "/console/nowhere"):
        headers = browser.get(path).headers
        assert headers["Content-Security-Policy"] == (
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
        ), path
        assert headers["X-Frame-Options"] == "DENY" and headers["Referrer-Policy"] == "same-origin"
        assert headers["X-Content-Type-Options"] == "nosniff" and headers["Cache-Control"] == "no-store"
    missing = browser.get("/console/nowhere")
    assert missing.status_code == 404 and "Không tìm thấy trang" in text(missing)
    css = browser.get("/console/static/console.css")
    assert css.status_code == 200 and css.headers["Cache-Control"] == "public, max-age=3600"
    assert b"htmx" in browser.get("/console/static/htmx.min.js").data
    assert "<script>" not in browser.get("/console/").get_data(as_text=True).replace("<script src=", "")


def test_a_customer_named_like_a_script_is_shown_as_text(crm: Any) -> None:
    browser = signed_in(crm)
    evil = crm.customers.add(name=XSS, owner="lan", tags=["<b>vip</b>"])
    for path in ("/console/customers", f"/console/customers/{evil.id}", f"/console/customers/{evil.id}/edit"):
        page = browser.get(path).get_data(as_text=True)
        assert XSS not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page, path
        assert "<b>vip</b>" not in page


def test_search_as_you_type_finds_names_without_their_accents(crm: Any) -> None:
    browser = signed_in(crm)
    for name in ("Nguyễn Văn An", "Nguyễn Thị Bích", "Trần Văn Anh"):
        crm.customers.add(name=name, owner="lan")
    partial = browser.get("/console/customers?q=nguyen+van+an", headers={"HX-Request": "true"})
    assert "<html" not in partial.get_data(as_text=True)
    assert "Nguyễn Văn An" in text(partial) and "Nguyễn Thị Bích" not in text(partial)
    page = text(browser.get("/console/customers?q=zzz"))
    assert "Không tìm thấy khách hàng nào." in page and "Tìm khách hàng" in page


def test_the_list_pages_by_keyset_and_filters_by_stage_tag_and_owner(crm: Any) -> None:
    browser = signed_in(crm, roles=["manager"])
    console_user(crm, "minh", teams=["Hà Nội"])
    for n in range(30):
        crm.customers.add(
            name=f"Khách {n:02d}",
            owner="lan" if n % 2 else "minh",
            lifecycle_stage="customer" if n % 3 == 0 else "lead",
            tags=["vip"] if n < 4 else [],
        )
    first = browser.get("/console/customers")
    names = [w for w in text(first).split() if w.isdigit()]
    assert names[:2] == ["00", "01"] and len(names) == 25
    following = first.get_data(as_text=True).split('class="next" href="')[1].split('"')[0]
    rest = text(browser.get(following.replace("&amp;", "&")))
    assert "Khách 25" in rest and "Khách 00" not in rest and "Trang sau" not in rest
    vip = text(browser.get("/console/customers?tag=vip&stage=customer"))
    assert "Khách 00" in vip and "Khách 03" in vip and "Khách 01" not in vip and "Khách 06" not in vip
    mine = text(browser.get("/console/customers?owner=minh&tag=vip"))
    assert "Khách 00" in mine and "Khách 02" in mine and "Khách 01" not in mine


def test_a_new_customer_with_a_bad_email_shows_the_error_by_the_field_and_keeps_the_values(crm: Any) -> None:
    browser = signed_in(crm)
    form = {
        "name": "Lê Văn Cường",
        "email": "not-an-email",
        "phone": "0903 123 456",
        "owner": "",
        "lifecycle_stage": "prospect",
        "tags": "vip, hà nội",
    }
    refused = browser.submit("/console/customers/new", "/console/customers/new", form)
    page = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert "Biểu mẫu có lỗi: vui lòng xem các trường được đánh dấu." in text(refused)
    email_field = page.split('<label for="email">')[1].split("</div>")[0]
    assert 'value="not-an-email"' in email_field and 'aria-invalid="true"' in email_field
    assert 'class="error" id="email-error"' in email_field
    assert 'value="Lê Văn Cường"' in page and 'value="0903 123 456"' in page and 'value="vip, hà nội"' in page
    assert '<option value="prospect" selected>' in page
    assert crm.customers.find("cuong").items == []

    saved = browser.submit("/console/customers/new", "/console/customers/new", {**form, "email": "cuong@example.vn"})
    assert saved.status_code == 303
    shown = text(browser.get(saved.headers["Location"]))
    assert "Đã lưu." in shown and "cuong@example.vn" in shown and "0903 123 456" in shown  # national form
    customer = crm.customers.find("cuong").items[0]
    assert (customer.owner, customer.lifecycle_stage, customer.tags) == ("lan", "prospect", ("hà nội", "vip"))


def test_editing_changes_only_what_was_changed(crm: Any) -> None:
    browser = signed_in(crm)
    an = crm.customers.add(name="Nguyễn Văn An", owner="lan", emails=["an@example.vn"], tags=["vip"])
    edit = f"/console/customers/{an.id}/edit"
    form = {
        "name": "Nguyễn Văn Ân",
        "email": "an@example.vn",
        "phone": "",
        "owner": "lan",
        "lifecycle_stage": "customer",
        "tags": "vip",
    }
    assert browser.submit(edit, edit, form).status_code == 303
    changed = crm.customers.get(an.id)
    assert (changed.name, changed.lifecycle_stage, changed.emails) == ("Nguyễn Văn Ân", "customer", ("an@example.vn",))
    refused = browser.submit(edit, edit, {**form, "owner": "nobody"})
    assert refused.status_code == 422 and 'value="nobody"' in refused.get_data(as_text=True)


def test_another_teams_customer_is_not_found_anywhere_in_the_console(crm: Any) -> None:
    browser = signed_in(crm)
    console_user(crm, "minh", teams=["Sài Gòn"])
    theirs = crm.customers.add(name="Trần Thị Bình", owner="minh")
    for path in (f"/console/customers/{theirs.id}", f"/console/customers/{theirs.id}/edit"):
        missing = browser.get(path)
        assert missing.status_code == 404 and "Trần Thị Bình" not in text(missing), path
    assert "Trần Thị Bình" not in text(browser.get("/console/customers?q=binh"))
    mine = crm.customers.add(name="Nguyễn Văn An", owner="lan")
    token = csrf_of(browser.get(f"/console/customers/{mine.id}"), f"/console/customers/{mine.id}/interactions")
    assert token  # a token for my customer's form is no key to theirs
    assert (
        browser.post(
            f"/console/customers/{theirs.id}/interactions", {"csrf_token": token, "channel": "phone"}
        ).status_code
        == 403
    )


def test_a_missing_permission_shows_the_403_page(crm: Any) -> None:
    browser = signed_in(crm, roles=[], grants={"customers.read": "all"})
    refused = browser.get("/console/customers/new")
    assert refused.status_code == 403 and "Bạn không có quyền thực hiện thao tác này." in text(refused)
    assert "Khách hàng mới" not in text(browser.get("/console/customers"))


@pytest.mark.crmkit_plugins("notes")
def test_a_menu_entry_is_hidden_without_its_permission_and_its_url_answers_403(crm: Any) -> None:
    reader = signed_in(crm, "doc", roles=[], grants={"customers.read": "all"})
    home = text(reader.get("/console/"))
    assert "Khách hàng" in home and "Ghi chú của tôi" not in home
    assert reader.get("/console/notes/").status_code == 403
    sales = signed_in(crm, "lan")
    assert "Ghi chú của tôi" in text(sales.get("/console/"))
    assert sales.get("/console/notes/").status_code == 200


def test_logging_a_call_puts_it_on_the_timeline(crm: Any) -> None:
    browser = signed_in(crm)
    an = crm.customers.add(name="Nguyễn Văn An", owner="lan")
    crm.customers.set_consent(an.id, "sms", True, source="form at the shop")
    page = f"/console/customers/{an.id}"
    shown = text(browser.get(page))
    assert "Ghi nhận cuộc gọi" in shown and "SMS ✓ Đã đồng ý" in shown and "form at the shop" in shown
    logged = browser.submit(
        page,
        f"{page}/interactions",
        {"channel": "phone", "direction": "outbound", "subject": "Tư vấn gói cước", "summary": "Khách đồng ý"},
    )
    assert logged.status_code == 303
    after = text(browser.get(logged.headers["Location"]))
    assert "Đã lưu." in after and "Tư vấn gói cước" in after and "Khách đồng ý" in after
    [call] = crm.interactions.timeline(an.id).items
    assert (call.channel, call.employee, call.subject) == ("phone", "lan", "Tư vấn gói cước")
    refused = browser.submit(page, f"{page}/interactions", {"channel": "fax", "subject": "Giữ lại"})
    assert refused.status_code == 422 and 'value="Giữ lại"' in refused.get_data(as_text=True)


def test_a_user_whose_locale_is_english_reads_english(crm: Any) -> None:
    browser = signed_in(crm, locale="en")
    crm.customers.add(name="Nguyễn Văn An", owner="lan")
    page = text(browser.get("/console/customers"))
    assert "Sign out" in page and "Customers" in page and "Nguyễn Văn An" in page and "Đăng xuất" not in page
    assert 'lang="en"' in browser.get("/console/").get_data(as_text=True)
    stranger = ConsoleBrowser(crm)
    assert "Sign in" in text(stranger.get("/console/sign-in", headers={"Accept-Language": "en-US,en;q=0.9"}))
    assert "Đăng nhập" in text(stranger.get("/console/sign-in"))


def test_contacts_are_masked_for_a_user_who_may_not_see_them_and_survive_an_edit(crm: Any) -> None:
    browser = signed_in(crm, "doc", roles=[], grants={"customers.read": "all", "customers.update": "all"})
    an = crm.customers.add(name="Nguyễn Văn An", phones=["+84912345678"], emails=["an@example.vn"])
    shown = text(browser.get(f"/console/customers/{an.id}"))
    assert "+84 9** *** 678" in shown and "+84912345678" not in shown and "an@example.vn" not in shown
    edit = f"/console/customers/{an.id}/edit"
    form = browser.get(edit).get_data(as_text=True)
    assert "+84912345678" not in form
    values = {
        name: form.split(f'id="{name}" name="{name}" type="')[1].split('value="')[1].split('"')[0]
        for name in ("name", "email", "phone", "owner", "tags")
    }
    assert browser.submit(edit, edit, {**values, "name": "Nguyễn Văn Ân", "lifecycle_stage": "lead"}).status_code == 303
    kept = crm.customers.get(an.id)
    assert (kept.name, kept.phones, kept.emails) == ("Nguyễn Văn Ân", ("+84912345678",), ("an@example.vn",))


def test_a_signed_out_htmx_request_is_sent_to_the_sign_in_page_whole(crm: Any) -> None:
    answer = ConsoleBrowser(crm).get("/console/customers?q=an", headers={"HX-Request": "true"})
    assert answer.status_code == 204
    assert answer.headers["HX-Redirect"] == "/console/sign-in?next=%2Fconsole%2Fcustomers%3Fq%3Dan"


def test_the_console_works_when_the_app_is_mounted_under_a_prefix(crm: Any) -> None:
    from werkzeug.middleware.dispatcher import DispatcherMiddleware
    from werkzeug.wrappers import Response

    from crmkit.web import create_app

    console_user(crm, "lan")
    host = DispatcherMiddleware(Response("the shop"), {"/crm": create_app(crm)})
    browser = ConsoleBrowser(crm, app=host)
    page = browser.get("/crm/console/sign-in")
    assert 'action="/crm/console/sign-in"' in page.get_data(as_text=True)
    signed = browser.post(
        "/crm/console/sign-in",
        {
            "csrf_token": csrf_of(page, "/crm/console/sign-in"),
            "username": "lan",
            "password": "correct horse battery staple",
        },
    )
    assert signed.headers["Location"] == "/crm/console/"
    assert 'href="/crm/console/customers"' in browser.get("/crm/console/").get_data(as_text=True)


@pytest.mark.crmkit_plugins("notes")
def test_the_404_page_shows_only_the_menu_entries_the_user_may_open(crm: Any) -> None:
    reader = signed_in(crm, "doc", roles=[], grants={"customers.read": "all"})
    missing = reader.get("/console/nowhere")
    assert missing.status_code == 404 and "Khách hàng" in text(missing) and "Ghi chú của tôi" not in text(missing)


def test_a_password_changed_from_any_door_ends_the_users_console_sessions(crm: Any) -> None:
    browser = signed_in(crm, "lan")
    assert browser.get("/console/").status_code == 200
    crm.users.set_password("lan", "Hoa-sen-no-2027!")  # as the CLI's `users passwd` and the API do
    assert browser.get("/console/").headers["Location"].startswith("/console/sign-in")
    assert browser.sign_in("lan", "Hoa-sen-no-2027!").status_code == 303


@pytest.mark.crmkit_plugins("notes")
def test_untranslated_lists_what_a_plugins_console_part_leaves_in_english(crm: Any) -> None:
    assert untranslated(crm, "notes") == []  # templates, menu label, panel and tile titles: all in its catalog
    assert untranslated(crm, "notes", also=["Pinned notes"]) == ["Pinned notes"]
    assert {"My notes", "Notes"} <= set(untranslated(crm, "notes", locale="en"))  # no English catalog at all


def test_a_template_in_the_servers_override_folder_replaces_the_cores(
    crm: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "error.html").write_text(
        '{% extends "base.html" %}{% block content %}<h1>Sao Mai · {{ _(message) }}</h1>{% endblock %}',
        encoding="utf-8",
    )
    monkeypatch.setenv("CRMKIT_CONSOLE_TEMPLATES", str(tmp_path))  # `crmkit serve --console-templates DIR`
    browser = signed_in(crm, "lan")
    missing = browser.get("/console/nowhere")
    assert missing.status_code == 404 and "Sao Mai · Không tìm thấy trang" in text(missing)
    assert "Khách hàng" in text(missing)  # the core's base.html, menu and all, still frames it
    # Compiled templates are shared by every console in the process: an edit is still seen by the next one,
    (tmp_path / "error.html").write_text(
        '{% extends "base.html" %}{% block content %}<h1>Sao Mai 2 · {{ _(message) }}</h1>{% endblock %}',
        encoding="utf-8",
    )

    def again() -> str:
        browser = ConsoleBrowser(crm)
        browser.sign_in("lan")
        return text(browser.get("/console/nowhere"))

    assert "Sao Mai 2 · Không tìm thấy trang" in again()
    monkeypatch.delenv("CRMKIT_CONSOLE_TEMPLATES")  # and a server without the folder shows the core's own page
    plain = again()
    assert "Sao Mai" not in plain and "Không tìm thấy trang" in plain


def test_a_schemas_message_reads_in_the_users_language_by_its_field(crm: Any) -> None:
    browser = signed_in(crm)  # a Vietnamese user: the service's English message is shown translated
    form = {"name": "Nguyễn " * 60, "email": "", "phone": "", "owner": "", "lifecycle_stage": "prospect", "tags": ""}
    refused = browser.submit("/console/customers/new", "/console/customers/new", form)
    assert refused.status_code == 422
    name_field = refused.get_data(as_text=True).split('<label for="name">')[1].split("</div>")[0]
    assert "Độ dài phải từ 1 đến 300." in name_field and "Length must be" not in name_field
    english = signed_in(crm, "mike", locale="en")
    shown = english.submit("/console/customers/new", "/console/customers/new", form).get_data(as_text=True)
    assert "Length must be between 1 and 300." in shown.split('<label for="name">')[1].split("</div>")[0]
