"""The console's customer tools as people use them: list filters, translated stages and channels, local phone
numbers, duplicates and merge, import with its reject file, export of a filtered list, consent, erasure — and
what each role may not do."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from crmkit.cli.main import CLIContext, cli
from crmkit.console import pages
from crmkit.console.testing import ConsoleBrowser, console_user, csrf_of, text
from crmkit.core.transfer import import_customers

NOT_ALLOWED_VI = "Bạn không có quyền thực hiện thao tác này."


def signed_in(crm: Any, username: str, **user: Any) -> ConsoleBrowser:
    """A browser signed in as a new user (sales in team "Hà Nội" unless told otherwise)."""
    console_user(crm, username, **{"teams": ["Hà Nội"], **user})
    browser = ConsoleBrowser(crm)
    assert browser.sign_in(username).status_code == 303
    return browser


def two_branches(crm: Any) -> dict[str, int]:
    """Lan sells in Hà Nội, Minh in Sài Gòn (both sales); their customers' ids by name."""
    console_user(crm, "lan", teams=["Hà Nội"])
    console_user(crm, "minh", teams=["Sài Gòn"])
    made = [
        ("Nguyễn Văn An", "lan", "lead", ["vip"], "0903 123 456"),
        ("Phạm Thị Bình", "lan", "prospect", [], "0903 123 457"),
        ("Lê Hoàng Cường", "lan", "customer", ["vip"], "0903 123 458"),
        ("Võ Thị Dung", "minh", "prospect", ["vip"], "0903 123 459"),
    ]
    return {
        name: crm.customers.add(name=name, owner=owner, lifecycle_stage=stage, tags=tags, phones=[phone]).id
        for name, owner, stage, tags, phone in made
    }


def csv_rows(response: Any) -> list[dict[str, str]]:
    """The rows of a downloaded CSV file (with its BOM)."""
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))


def href(page: Any, css_class: str) -> str:
    """The link of class ``css_class`` on a page, as a browser would follow it."""
    return page.get_data(as_text=True).split(f'class="{css_class}" href="')[1].split('"')[0].replace("&amp;", "&")


# -- the list ---------------------------------------------------------------------------------------------------


def test_the_list_filters_by_team_and_stage_and_keeps_the_filters_in_paging_search_and_export(
    crm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    two_branches(crm)
    crm.customers.add(name="Nguyễn Thị Em", owner="lan", lifecycle_stage="prospect")
    browser = signed_in(crm, "boss", roles=["administrator"], teams=[])
    monkeypatch.setattr(pages, "PAGE_SIZE", 1)
    first = browser.get("/console/customers?team=H%C3%A0+N%E1%BB%99i&stage=prospect")
    shown = text(first)
    assert "Nguyễn Thị Em" in shown and "Khách triển vọng" in shown
    assert "Phạm Thị Bình" not in shown and "Võ Thị Dung" not in shown  # page 2; and Sài Gòn's
    second = text(browser.get(href(first, "next")))
    assert "Phạm Thị Bình" in second and "Nguyễn Thị Em" not in second and "Võ Thị Dung" not in second
    assert "Trang sau" not in second
    assert "team=H%C3%A0+N%E1%BB%99i" in href(first, "export") and "stage=prospect" in href(first, "export")

    htmx = browser.get("/console/customers?q=thi&team=S%C3%A0i+G%C3%B2n", headers={"HX-Request": "true"})
    assert "<html" not in htmx.get_data(as_text=True)
    assert "Võ Thị Dung" in text(htmx) and "Phạm Thị Bình" not in text(htmx)
    monkeypatch.setattr(pages, "PAGE_SIZE", 25)
    vip = text(browser.get("/console/customers?owner=lan&tag=vip"))
    assert "Nguyễn Văn An" in vip and "Lê Hoàng Cường" in vip
    assert "Võ Thị Dung" not in vip and "Phạm Thị Bình" not in vip
    nobody = browser.get("/console/customers?team=Hu%E1%BA%BF")
    assert nobody.status_code == 200 and "no team named 'Huế'" in text(nobody)


def test_stages_channels_and_phones_are_shown_as_people_here_read_them(crm: Any) -> None:
    ids = two_branches(crm)
    an = ids["Nguyễn Văn An"]
    crm.customers.update(an, phones=["0903 123 456", "+1 415 555 0123"])
    crm.customers.set_consent(an, "sms", True, source="form at the shop")
    crm.customers.set_consent(an, "email", False, source="unsubscribe link")
    crm.as_user("lan").interactions.log(an, "phone", subject="Hỏi giá")
    browser = signed_in(crm, "lan2", roles=["administrator"])
    page = browser.get(f"/console/customers/{an}")
    html, words = page.get_data(as_text=True), text(page)
    assert '<a href="tel:+84903123456">0903 123 456</a>' in html
    assert '<a href="tel:+14155550123">+1 415-555-0123</a>' in html
    assert "Giai đoạn Khách tiềm năng" in words
    assert "SMS ✓ Đã đồng ý" in words and "form at the shop" in words
    assert "Email ✗ Đã rút lại" in words and "Mạng xã hội Chưa hỏi" in words
    assert "Điện thoại Liên hệ đến" in words  # the timeline's channel and direction
    listed = text(browser.get("/console/customers"))
    assert "0903 123 457" in listed and "Khách triển vọng" in listed and "+84903123457" not in listed
    form = browser.get(f"/console/customers/{an}/edit").get_data(as_text=True)
    assert '<option value="lead" selected>Khách tiềm năng</option>' in form

    console_user(crm, "jim", roles=["administrator"], locale="en")
    english = ConsoleBrowser(crm)
    english.sign_in("jim")
    words = text(english.get(f"/console/customers/{an}"))
    assert "Stage Lead" in words and "Social media Not asked" in words and "SMS ✓ Given" in words


def test_a_user_who_may_not_see_contact_details_sees_masked_phones_without_a_call_link(crm: Any) -> None:
    ids = two_branches(crm)
    browser = signed_in(crm, "viewer", roles=[], grants={"customers.read": "all"})
    page = browser.get(f"/console/customers/{ids['Nguyễn Văn An']}").get_data(as_text=True)
    assert "+84 9** *** 456" in page and "tel:" not in page and "0903 123 456" not in page


# -- duplicates and merge --------------------------------------------------------------------------------------


def duplicate_pair(crm: Any) -> tuple[int, int]:
    """Lan's customer An entered twice: the same phone, the second with a tag."""
    first = crm.customers.add(name="Nguyễn Văn An", owner="lan", phones=["0912 000 111"])
    second = crm.customers.add(name="Nguyen Van An", owner="lan", phones=["0912000111"], tags=["zalo"])
    crm.as_user("lan").interactions.log(second.id, "phone", subject="Gọi lại")
    return first.id, second.id


def test_a_manager_reviews_likely_duplicates_side_by_side_and_merges_them(crm: Any) -> None:
    console_user(crm, "lan", teams=["Hà Nội"])
    first, second = duplicate_pair(crm)
    browser = signed_in(crm, "chi", roles=["manager"])
    listed = browser.get("/console/customers/duplicates")
    words = text(listed)
    assert "Khách hàng có thể bị trùng" in words and "Trùng số điện thoại" in words and "95%" in words
    assert "0912 000 111" in words and "+84912000111" not in words  # the reason never shows the value itself
    compare_url = f"/console/customers/duplicates/{first}/{second}"
    page = browser.get(compare_url)
    words = text(page)
    assert "So sánh khách hàng" in words and "Nguyễn Văn An" in words and "Nguyen Van An" in words
    assert "Tương tác 0 1" in words and "Giữ lại khách hàng nào?" in words
    assert f'id="kept-{first}" name="kept" value="{first}" checked' in page.get_data(as_text=True)  # the older one

    action = compare_url + "/merge"
    assert browser.submit(compare_url, action, {}).status_code == 422
    merged = browser.submit(compare_url, action, {"kept": str(first)})
    assert merged.status_code == 303 and merged.headers["Location"] == f"/console/customers/{first}?merged=1"
    kept = text(browser.get(merged.headers["Location"]))
    assert "Đã gộp: đây là khách hàng được giữ lại." in kept and "zalo" in kept and "Gọi lại" in kept
    assert browser.get(f"/console/customers/{second}").headers["Location"] == f"/console/customers/{first}"
    assert "Không thấy khách hàng nào có thể bị trùng." in text(browser.get("/console/customers/duplicates"))


def test_a_sales_user_sees_her_duplicates_but_may_not_merge_and_another_team_sees_none(crm: Any) -> None:
    console_user(crm, "minh", teams=["Sài Gòn"])
    lan = signed_in(crm, "lan")
    first, second = duplicate_pair(crm)
    compare_url = f"/console/customers/duplicates/{first}/{second}"
    assert "Trùng số điện thoại" in text(lan.get("/console/customers/duplicates"))
    page = lan.get(compare_url)
    assert page.status_code == 200 and "Giữ lại khách hàng nào?" not in text(page)
    token = csrf_of(lan.get("/console/customers"), "/console/sign-out")  # any token: the permission is checked first
    refused = lan.post(compare_url + "/merge", {"kept": str(first), "csrf_token": token})
    assert refused.status_code == 403
    assert crm.customers.get(second).id == second  # not merged

    minh = ConsoleBrowser(crm)
    minh.sign_in("minh")
    assert "Không thấy khách hàng nào có thể bị trùng." in text(minh.get("/console/customers/duplicates"))
    missing = minh.get(compare_url)
    assert missing.status_code == 404 and "Nguyễn Văn An" not in text(missing)


# -- import ----------------------------------------------------------------------------------------------------


def test_an_import_shows_its_counts_and_a_reject_file_naming_row_and_field(crm: Any) -> None:
    console_user(crm, "minh", teams=["Sài Gòn"])
    browser = signed_in(crm, "lan")
    rows = (
        "external_id,name,phone,lifecycle_stage,owner\n"
        "KH1,Nguyễn Văn An,0903 123 456,lead,\n"
        "KH2,Trần Thị Bình,12,prospect,\n"
        "KH3,Lê Văn Cường,0903 123 458,bạn hàng,\n"
        "KH4,Võ Thị Dung,0903 123 459,lead,minh\n"
    )
    token = csrf_of(browser.get("/console/customers/import"), "/console/customers/import")
    done = browser.post(
        "/console/customers/import", {"csrf_token": token, "file": (io.BytesIO(rows.encode()), "khach-hang.csv")}
    )
    words = text(done)
    assert done.status_code == 200
    assert "Đã nhập xong: khach-hang.csv" in words
    assert "Số dòng đã đọc 4 Khách hàng được thêm 1 Khách hàng được cập nhật 0 Không thay đổi 0 Đã từ chối 3" in words
    assert "phone: not a valid phone number: '12'" in words and "lifecycle_stage:" in words
    assert [c.name for c in crm.customers.find().items] == ["Nguyễn Văn An"]
    assert crm.customers.find().items[0].owner == "lan"

    download = browser.get(href(done, "button"))
    assert download.status_code == 200 and download.headers["Content-Type"] == "text/csv; charset=utf-8"
    rejects = csv_rows(download)
    assert [(r["reject_row"], r["external_id"]) for r in rejects] == [("2", "KH2"), ("3", "KH3"), ("4", "KH4")]
    assert rejects[0]["reject_reason"].startswith("phone: ") and rejects[1]["reject_reason"].startswith(
        "lifecycle_stage: "
    )
    assert "owner" in rejects[2]["reject_reason"]
    assert [r["reject_line"] for r in rejects] == ["3", "4", "5"]

    minh = ConsoleBrowser(crm)
    minh.sign_in("minh")
    assert minh.get(href(done, "button")).status_code == 404  # another user's reject file is not theirs to read


def test_an_import_refuses_a_file_that_is_neither_csv_nor_json_lines_or_has_unknown_columns(crm: Any) -> None:
    browser = signed_in(crm, "lan")
    token = csrf_of(browser.get("/console/customers/import"), "/console/customers/import")
    wrong = browser.post(
        "/console/customers/import", {"csrf_token": token, "file": (io.BytesIO(b"x"), "khach-hang.xlsx")}
    )
    assert wrong.status_code == 422 and "Tệp phải là CSV (.csv) hoặc JSON Lines (.jsonl)." in text(wrong)
    unknown = browser.post(
        "/console/customers/import", {"csrf_token": token, "file": (io.BytesIO(b"name,shoe_size\nAn,42\n"), "a.csv")}
    )
    assert unknown.status_code == 422 and "shoe_size" in text(unknown)
    jsonl = browser.post(
        "/console/customers/import",
        {
            "csrf_token": token,
            "file": (
                io.BytesIO('{"external_id": "KH1", "name": "Nguyễn Văn An", "phone": "0903123456"}\n'.encode()),
                "a.jsonl",
            ),
        },
    )
    assert (
        jsonl.status_code == 200
        and "Khách hàng được thêm 1" in text(jsonl)
        and "Các dòng bị từ chối" not in text(jsonl)
    )
    viewer = signed_in(crm, "viewer", roles=[], grants={"customers.read": "all"})
    assert viewer.get("/console/customers/import").status_code == 403
    assert "Nhập từ tệp" not in text(viewer.get("/console/customers"))


def test_an_upload_over_10_mb_is_refused_from_its_length_before_the_console_reads_it(crm: Any) -> None:
    browser = signed_in(crm, "lan")
    token = csrf_of(browser.get("/console/customers/import"), "/console/customers/import")

    class Body(io.BytesIO):
        """A 50 MB upload that records how much of it the server read."""

        read_bytes = 0

        def read(self, size: int | None = -1) -> bytes:
            chunk = super().read(size)
            Body.read_bytes += len(chunk)
            return chunk

    boundary = "x" * 20
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{token}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n\r\n'
    )
    big = browser.post(
        "/console/customers/import",
        input_stream=Body(head.encode() + b"name\n" + b"An\n" * 10),
        content_type=f"multipart/form-data; boundary={boundary}",
        environ_overrides={"CONTENT_LENGTH": str(50 << 20)},
    )
    assert big.status_code == 413 and Body.read_bytes == 0
    assert "Tệp lớn hơn 10 MB: hãy nhập bằng lệnh crmkit customers import." in text(big)
    assert crm.customers.find().items == []


# -- export ----------------------------------------------------------------------------------------------------


def test_export_downloads_the_filtered_list_with_masked_contacts_for_who_may_not_see_them(crm: Any) -> None:
    two_branches(crm)
    crm.customers.add(name='=HYPERLINK("http://evil.example","Bấm vào")', owner="lan", lifecycle_stage="churned")
    boss = signed_in(crm, "boss", roles=["administrator"], teams=[])
    churned = csv_rows(boss.get("/console/customers/export.csv?stage=churned"))
    assert [r["name"] for r in churned] == ['\'=HYPERLINK("http://evil.example","Bấm vào")']
    page = boss.get("/console/customers?stage=prospect")
    exported = boss.get(href(page, "export"))
    assert exported.status_code == 200
    assert exported.headers["Content-Disposition"].startswith('attachment; filename="customers-')
    assert exported.get_data(as_text=True).startswith("\ufeffexternal_id,kind,name,")
    rows = csv_rows(exported)
    assert [(r["name"], r["phone"], r["lifecycle_stage"]) for r in rows] == [  # quoted: no spreadsheet formula
        ("Phạm Thị Bình", "'+84903123457", "prospect"),
        ("Võ Thị Dung", "'+84903123459", "prospect"),
    ]

    auditor = signed_in(crm, "auditor", roles=[], teams=[], grants={"customers.read": "all", "customers.export": "all"})
    rows = csv_rows(auditor.get("/console/customers/export.csv?tag=vip"))
    assert [(r["name"], r["phone"]) for r in rows] == [
        ("Lê Hoàng Cường", "'+84 9** *** 458"),
        ("Nguyễn Văn An", "'+84 9** *** 456"),
        ("Võ Thị Dung", "'+84 9** *** 459"),
    ]


@pytest.mark.crmkit_plugins("sales", "loyalty")  # loyalty declares ``referred_by``, an attribute naming a customer
def test_the_downloaded_list_imports_back_with_its_links_and_is_the_file_the_command_line_writes(
    crm: Any, crm_factory: Callable[..., Any], tmp_path: Path
) -> None:
    crm.fields.add("so_con", "integer")
    org = crm.customers.add(kind="organization", name="Công ty TNHH Sao Mai", external_id="ORG-1")
    hung = crm.customers.add(
        name="Đỗ Văn Hùng",
        external_id="KH-2",
        phones=["0903 123 456"],
        organizations=[{"organization_id": org.id, "role": "Kế toán, trưởng phòng"}],
        attributes={"so_con": 2},
    )
    mai = crm.customers.add(name="Ngô Thị Mai", tags=["vip"])  # no external id: linked to as crmkit-<id>
    crm.customers.update(hung.id, attributes={"so_con": 2, "referred_by": mai.id})
    crm.customers.set_consent(hung.id, "email", True, source="form")
    boss = signed_in(crm, "boss", roles=["administrator"], teams=[])
    downloaded = boss.get("/console/customers/export.csv")
    rows = {r["name"]: r for r in csv_rows(downloaded)}
    assert (rows["Đỗ Văn Hùng"]["attr_referred_by"], rows["Đỗ Văn Hùng"]["organizations"]) == (
        f"crmkit-{mai.id}",
        '[{"organization": "ORG-1", "role": "Kế toán, trưởng phòng"}]',
    )
    saved = tmp_path / "console.csv"
    saved.write_bytes(downloaded.get_data())

    fresh = crm_factory(plugins=["sales", "loyalty"])
    fresh.fields.add("so_con", "integer")
    summary = import_customers(fresh, saved)
    assert (summary.inserted, summary.rejected, summary.unlinked) == (3, 0, 0)
    again = fresh.customers.get_by_external_id("KH-2")
    assert [(m.organization_id, m.role) for m in again.organizations] == [
        (fresh.customers.get_by_external_id("ORG-1").id, "Kế toán, trưởng phòng")
    ]
    assert again.attributes == {"so_con": 2, "referred_by": fresh.customers.get_by_external_id(f"crmkit-{mai.id}").id}
    assert (again.phone, again.consents["email"].granted) == ("+84903123456", True)

    by_command = tmp_path / "cli.csv"  # the list in name order is the id order here: the same rows, the same order
    url = crm.engine.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(
        cli,
        ["--db", url, "customers", "export", "--out", str(by_command)],
        obj=CLIContext(plugins=["sales", "loyalty"]),
    )
    assert result.exit_code == 0, result.output
    assert downloaded.get_data() == by_command.read_bytes()


def test_a_sales_user_without_the_export_permission_has_no_export_and_is_refused(crm: Any) -> None:
    two_branches(crm)
    lan = ConsoleBrowser(crm)
    lan.sign_in("lan")
    page = lan.get("/console/customers")
    assert "Xuất danh sách này (CSV)" not in text(page) and "Nguyễn Văn An" in text(page)
    refused = lan.get("/console/customers/export.csv")
    assert refused.status_code == 403 and NOT_ALLOWED_VI in text(refused)
    manager = signed_in(crm, "chi", roles=["manager"], teams=["Sài Gòn"])
    rows = csv_rows(manager.get("/console/customers/export.csv"))
    assert [r["name"] for r in rows] == ["Võ Thị Dung"]  # his team's customers only


# -- erasure ---------------------------------------------------------------------------------------------------


def test_an_administrator_erases_a_customer_after_typing_the_name_and_the_360_is_gone(crm: Any) -> None:
    ids = two_branches(crm)
    an = ids["Nguyễn Văn An"]
    boss = signed_in(crm, "boss", roles=["administrator"], teams=[])
    erase_url = f"/console/customers/{an}/erase"
    assert f'href="{erase_url}"' in boss.get(f"/console/customers/{an}").get_data(as_text=True)
    asked = text(boss.get(erase_url))
    assert "Xóa Nguyễn Văn An" in asked and "Không thể hoàn tác thao tác này." in asked
    wrong = boss.submit(erase_url, erase_url, {"confirm": "Nguyễn Văn"})
    assert wrong.status_code == 422 and "Hãy gõ đúng tên khách hàng như đang hiển thị để xóa." in text(wrong)
    assert crm.customers.get(an).name == "Nguyễn Văn An"

    done = boss.submit(erase_url, erase_url, {"confirm": " Nguyễn Văn An "})
    assert done.status_code == 303 and done.headers["Location"] == "/console/customers?erased=1"
    listed = text(boss.get(done.headers["Location"]))
    assert "Đã xóa khách hàng." in listed and "Nguyễn Văn An" not in listed
    gone = boss.get(f"/console/customers/{an}")
    assert gone.status_code == 404 and "Không tìm thấy trang" in text(gone)
    assert boss.get(erase_url).status_code == 404


def test_a_sales_user_cannot_erase_and_another_teams_customer_is_not_found(crm: Any) -> None:
    ids = two_branches(crm)
    lan = ConsoleBrowser(crm)
    lan.sign_in("lan")
    an = ids["Nguyễn Văn An"]
    assert "/erase" not in lan.get(f"/console/customers/{an}").get_data(as_text=True)
    assert lan.get(f"/console/customers/{an}/erase").status_code == 403
    assert lan.post(f"/console/customers/{an}/erase", {"confirm": "Nguyễn Văn An"}).status_code == 403
    manager = signed_in(crm, "chi", roles=["manager"], teams=["Sài Gòn"])
    assert manager.get(f"/console/customers/{an}/erase").status_code == 404
    assert manager.get(f"/console/customers/{ids['Võ Thị Dung']}/erase").status_code == 200
    assert crm.customers.get(an).name == "Nguyễn Văn An"
