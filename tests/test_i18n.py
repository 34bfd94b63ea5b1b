"""``crmkit.i18n``: which language a person gets, the Vietnamese catalog, plugin catalogs, and per-locale formats."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import PoFileError
from click.testing import CliRunner

from crmkit.cli.context import CLIContext
from crmkit.cli.main import EXIT_USAGE, cli
from crmkit.i18n import negotiate, read_catalog, translator
from crmkit.money import Money

ROOT = Path(__file__).resolve().parents[1]
NBSP = "\u00a0"  # Babel puts a no-break space between a Vietnamese amount and its currency
NEW_YORK = ZoneInfo("America/New_York")

#: The console's base strings and their Vietnamese: the console codes against these msgids.
SEEDED = {
    "Sign in": "Đăng nhập",
    "Sign out": "Đăng xuất",
    "Username": "Tên đăng nhập",
    "Password": "Mật khẩu",
    "Wrong username or password, or the account is locked.": "Sai tên đăng nhập hoặc mật khẩu, hoặc tài khoản đang bị khóa.",
    "Home": "Trang chủ",
    "Customers": "Khách hàng",
    "Search customers": "Tìm khách hàng",
    "New customer": "Thêm khách hàng",
    "Name": "Tên",
    "Phone": "Điện thoại",
    "E-mail": "Email",
    "Owner": "Người phụ trách",
    "Stage": "Giai đoạn",
    "Tags": "Nhãn",
    "Save": "Lưu",
    "Cancel": "Hủy",
    "Timeline": "Dòng thời gian",
    "Log a call": "Ghi nhận cuộc gọi",
    "Log a visit": "Ghi nhận lượt ghé thăm",
    "Consent": "Sự đồng ý",
    "Interactions": "Tương tác",
    "Administration": "Quản trị",
    "Users": "Người dùng",
    "Teams": "Nhóm",
    "Roles": "Vai trò",
    "API tokens": "Mã truy cập API",
    "Webhooks": "Webhook",
    "Plugins": "Phần mở rộng",
    "Audit log": "Nhật ký hoạt động",
    "Today's agenda": "Lịch làm việc hôm nay",
    "Overdue tasks": "Công việc quá hạn",
    "No customers found.": "Không tìm thấy khách hàng nào.",
    "Next page": "Trang sau",
    "Language": "Ngôn ngữ",
    "Page not found": "Không tìm thấy trang",
    "You may not do this.": "Bạn không có quyền thực hiện thao tác này.",
    "The form has errors: see the fields marked.": "Biểu mẫu có lỗi: vui lòng xem các trường được đánh dấu.",
    "Saved.": "Đã lưu.",
    "Customer 360": "Hồ sơ khách hàng 360°",
    "Created": "Ngày tạo",
    "Updated": "Ngày cập nhật",
}


# -- which language --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "business", "accept", "expected"),
    [
        ("en", "vi", "vi", "en"),  # the user's own choice first
        (None, "en", "vi", "en"),  # then the business setting
        ("fr", "en_US", None, "en"),  # a locale crmkit does not speak is skipped; en_US is English
        (None, None, "en-US,en;q=0.9,vi;q=0.8", "en"),  # then the browser, by q-value
        (None, None, "en;q=0.4, vi-VN;q=0.9", "vi"),
        (None, "", "fr-FR, en-GB;q=0.7", "en"),  # French first, but English is the best we have
        (None, None, "fr, de;q=0.5", "vi"),  # nothing matches: Vietnamese
        (None, None, "en;q=0, vi;q=0.1", "vi"),  # q=0 means "not this one"
        (None, None, "*", "vi"),
        (None, None, "vi;q=0, *;q=0.5", "en"),  # anything but Vietnamese
        (None, None, "en;level=1;q=0.8, vi;q=nonsense, de", "en"),  # malformed entries count for nothing
        (None, None, None, "vi"),
    ],
)
def test_negotiation_prefers_user_then_business_then_accept_language_then_vietnamese(
    user: str | None, business: str | None, accept: str | None, expected: str
) -> None:
    assert negotiate(user, business, accept) == expected


def test_translators_are_cached_per_locale_and_unknown_locales_refused() -> None:
    assert translator("vi") is translator("vi") is translator("vi_VN")
    assert translator("en").locale == "en"
    with pytest.raises(ValueError, match="unsupported locale 'fr': crmkit speaks vi, en"):
        translator("fr")


# -- the catalogs ----------------------------------------------------------------------------------------------


def test_vietnamese_translates_the_console_strings_and_english_keeps_them() -> None:
    vi, en = translator("vi"), translator("en")
    for english, vietnamese in SEEDED.items():
        assert vi.gettext(english) == vietnamese
        assert en.gettext(english) == english


def test_unknown_strings_fall_back_to_the_english_source() -> None:
    assert translator("vi").gettext("A sentence no catalog has") == "A sentence no catalog has"
    assert translator("vi").ngettext("%(count)d pear", "%(count)d pears", 2) == "%(count)d pears"


def test_plural_forms_follow_each_language() -> None:
    vi, en = translator("vi"), translator("en")
    singular, plural = "%(count)d customer", "%(count)d customers"
    assert [vi.ngettext(singular, plural, n) % {"count": n} for n in (0, 1, 5)] == [
        "0 khách hàng",
        "1 khách hàng",
        "5 khách hàng",
    ]  # Vietnamese has one form
    assert [en.ngettext(singular, plural, n) % {"count": n} for n in (0, 1, 5)] == [
        "0 customers",
        "1 customer",
        "5 customers",
    ]


def test_every_vietnamese_message_is_translated_and_the_po_parses() -> None:
    catalog = read_catalog("crmkit", "crmkit", "vi", strict=True)  # a malformed entry raises
    assert catalog is not None and catalog.plural_forms == "nplurals=1; plural=0;"
    messages = [message for message in catalog if message.id]
    assert {message.id for message in messages} >= set(SEEDED)
    for message in messages:
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(s.strip() for s in strings) and not message.fuzzy, message.id
        placeholders = set(re.findall(r"%\(\w+\)\w", str(message.id)))
        assert all(set(re.findall(r"%\(\w+\)\w", s)) == placeholders for s in strings), message.id
    assert read_catalog("crmkit", "crmkit", "en") is None  # English is the source: no catalog


def test_every_message_the_core_marks_for_translation_has_its_vietnamese() -> None:
    """What `pybabel extract -F babel.cfg` finds in crmkit/ (gettext, ngettext, N_ in code; _ in templates) is all in
    the Vietnamese catalog: a new English message cannot reach a Vietnamese user untranslated (the CLI, `crmkit
    doctor`, `crmkit plugins new`, the failed-plugin warning, the console)."""
    with (ROOT / "babel.cfg").open() as config:
        method_map, options_map = parse_mapping_cfg(config)
    catalog = read_catalog("crmkit", "crmkit", "vi", strict=True)
    assert catalog is not None
    known = {message.id if isinstance(message.id, str) else message.id[0] for message in catalog if message.id}
    found = extract_from_dir(str(ROOT / "crmkit"), method_map, options_map)
    marked = sorted({(name, msgid if isinstance(msgid, str) else msgid[0]) for name, _, msgid, _, _ in found})
    assert [(name, msgid) for name, msgid in marked if msgid not in known] == []
    assert len(marked) > 300  # the extraction itself works


def _plugin_package(root: Path, name: str, po: str) -> None:
    """An importable package ``name`` under ``root`` with a Vietnamese catalog (domain ``name``)."""
    messages = root / name / "locale" / "vi" / "LC_MESSAGES"
    messages.mkdir(parents=True)
    (root / name / "__init__.py").write_text("")
    (messages / f"{name}.po").write_text(
        'msgid ""\nmsgstr ""\n"Language: vi\\n"\n"Content-Type: text/plain; charset=utf-8\\n"\n\n' + po,
        encoding="utf-8",
    )


def test_a_plugin_catalog_translates_its_own_texts_and_never_the_cores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _plugin_package(
        tmp_path,
        "crmkit_i18n_notes",
        'msgid "Notes"\nmsgstr "Ghi chú"\n\n'
        'msgid "Sign in"\nmsgstr "Vào hệ thống"\n\n'
        '#, fuzzy\nmsgid "Draft"\nmsgstr "Nháp"\n\n'
        'a line no .po has\n\nmsgid "Note"\nmsgstr "Ghi chép"\n',
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    notes = (("crmkit_i18n_notes", "crmkit_i18n_notes"),)
    vi = translator("vi", notes)
    assert vi.gettext("Notes") == "Ghi chú"
    assert vi.gettext("Sign in") == "Vào hệ thống"  # the plugin's own pages say it its way...
    assert translator("vi").gettext("Sign in") == "Đăng nhập"  # ...the core's keep the core's words
    assert translator("vi").gettext("Notes") == "Notes"  # and never show a plugin's
    assert vi.gettext("Customers") == "Khách hàng"  # what the plugin does not translate comes from the core
    assert vi.gettext("Draft") == "Draft"  # fuzzy translations are not used
    assert vi.gettext("Note") == "Ghi chép"  # a malformed line costs nothing but itself
    assert translator("vi", notes) is vi  # compiled once
    with pytest.raises(PoFileError, match="misformatted"):
        read_catalog("crmkit_i18n_notes", "crmkit_i18n_notes", "vi", strict=True)
    assert translator("en", notes).gettext("Notes") == "Notes"  # no English catalog: the source string


# -- formats ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("locale", "money", "expected"),
    [
        ("vi", Money.of(1234567, "VND"), f"1.234.567{NBSP}₫"),
        ("en", Money.of(1234567, "VND"), "₫1,234,567"),
        ("vi", Money.of("-25000", "VND"), f"-25.000{NBSP}₫"),
        ("vi", Money.of("1234.5", "USD"), f"1.234,50{NBSP}US$"),
        ("en", Money.of("1234.5", "USD"), "$1,234.50"),
        ("en", Money.of(0, "USD"), "$0.00"),
    ],
)
def test_money_is_written_the_local_way(locale: str, money: Money, expected: str) -> None:
    assert translator(locale).format_money(money) == expected


@pytest.mark.parametrize(
    ("locale", "value", "expected"),
    [
        ("vi", 1234567, "1.234.567"),
        ("en", 1234567, "1,234,567"),
        ("vi", Decimal("60.1"), "60,1"),
        ("en", Decimal("60.1"), "60.1"),
        ("vi", Decimal("-0.5"), "-0,5"),
        ("vi", 0, "0"),
    ],
)
def test_numbers_use_the_locales_separators(locale: str, value: int | Decimal, expected: str) -> None:
    assert translator(locale).format_number(value) == expected


@pytest.mark.parametrize(
    ("locale", "value", "expected"),
    [
        ("vi", Decimal("0.601"), "60,1%"),
        ("en", Decimal("0.601"), "60.1%"),
        ("vi", 0.6, "60%"),
        ("vi", 1, "100%"),
        ("vi", Decimal("0.12345"), "12,3%"),
        ("en", 12.5, "1,250%"),
    ],
)
def test_percentages_keep_one_decimal_at_most(locale: str, value: Decimal | float, expected: str) -> None:
    assert translator(locale).format_percent(value) == expected


def test_dates_and_weekdays() -> None:
    vi, en = translator("vi"), translator("en")
    assert vi.format_date(date(2026, 12, 6)) == "06/12/2026"
    assert en.format_date(date(2026, 12, 6)) == "Dec 6, 2026"
    assert [vi.format_weekday(date(2026, 12, day)) for day in (6, 7, 9)] == ["Chủ Nhật", "Thứ Hai", "Thứ Tư"]
    assert [en.format_weekday(date(2026, 12, day)) for day in (6, 7, 9)] == ["Sunday", "Monday", "Wednesday"]


@pytest.mark.parametrize(
    ("moment", "vi", "en"),
    [
        (
            datetime(2026, 12, 6, 15, 30, tzinfo=UTC),
            "06/12/2026 10:30 (Giờ chuẩn miền Đông)",
            "Dec 6, 2026, 10:30 AM (Eastern Standard Time)",
        ),
        (
            datetime(2026, 7, 6, 15, 30, tzinfo=UTC),  # summer: daylight saving time, UTC-4
            "06/07/2026 11:30 (Giờ mùa hè miền Đông)",
            "Jul 6, 2026, 11:30 AM (Eastern Daylight Time)",
        ),
        (
            datetime(2026, 3, 8, 6, 59, tzinfo=UTC),  # one minute before the clocks go forward
            "08/03/2026 01:59 (Giờ chuẩn miền Đông)",
            "Mar 8, 2026, 1:59 AM (Eastern Standard Time)",
        ),
        (
            datetime(2026, 3, 8, 7, 0, tzinfo=UTC),  # 2:00 never happens: 3:00 EDT
            "08/03/2026 03:00 (Giờ mùa hè miền Đông)",
            "Mar 8, 2026, 3:00 AM (Eastern Daylight Time)",
        ),
    ],
)
def test_datetimes_are_local_with_the_zone_named_across_daylight_saving(moment: datetime, vi: str, en: str) -> None:
    assert translator("vi").format_datetime(moment, NEW_YORK) == vi
    assert translator("en").format_datetime(moment, NEW_YORK) == en


def test_datetimes_in_vietnam_and_naive_ones_refused() -> None:
    moment = datetime(2026, 12, 6, 17, 5, tzinfo=UTC)
    saigon = ZoneInfo("Asia/Ho_Chi_Minh")
    assert translator("vi").format_datetime(moment, saigon) == "07/12/2026 00:05 (Giờ Đông Dương)"
    assert translator("en").format_datetime(moment, saigon) == "Dec 7, 2026, 12:05 AM (Indochina Time)"
    with pytest.raises(ValueError, match="naive datetime"):
        translator("vi").format_datetime(datetime(2026, 12, 6, 10, 30), NEW_YORK)


# -- the command line ------------------------------------------------------------------------------------------


def _locale_after(crm: Any, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run ``crmkit [args] plugins list`` on ``crm``'s database; (exit code, stderr, the translator's locale)."""
    state = CLIContext(plugins=[])
    url = crm.engine.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(
        cli,
        ["--db", url, *args, "--format", "json", "plugins", "list"],
        obj=state,
        env={"CRMKIT_LOCALE": None, **(env or {})},
    )
    return result.exit_code, result.stderr, state.translator.locale


def test_cli_locale_option_and_environment(crm: Any) -> None:
    assert _locale_after(crm) == (0, "", "vi")
    assert _locale_after(crm, "--locale", "en") == (0, "", "en")
    assert _locale_after(crm, env={"CRMKIT_LOCALE": "en"}) == (0, "", "en")
    assert _locale_after(crm, "--locale", "vi", env={"CRMKIT_LOCALE": "en"}) == (0, "", "vi")
    code, stderr, _ = _locale_after(crm, "--locale", "fr")
    # no locale could be read: the error line is in the default language, click's own message in English
    assert code == EXIT_USAGE and stderr.startswith("lỗi: crmkit: Invalid value for '--locale': 'fr' is not one of")
    assert stderr.rstrip().endswith("(xem `crmkit --help`)")


def test_cli_translator_follows_the_user_then_the_business_once_the_crm_is_open(crm: Any) -> None:
    crm.set_setting("locale", "en")
    crm.users.add("lan", "Trần Thị Lan", locale="vi")
    crm.users.add("anh", "Nguyễn Anh")
    url = crm.engine.url.render_as_string(hide_password=False)
    for user, locale, expected in [(None, None, "en"), ("lan", None, "vi"), ("anh", None, "en"), ("anh", "vi", "vi")]:
        state = CLIContext(db=url, plugins=[], user=user, locale=locale)
        try:
            assert state.translator.locale == (locale or "vi")  # the CRM is not opened just to choose a language
            assert state.crm is not None
            assert state.translator.locale == expected, user
        finally:
            state.close()


# -- the CLI's human output: one formatter, the command's locale ----------------------------------------------------


def _crmkit(crm: Any, *args: str, locale: str | None) -> Any:
    """``crmkit [--locale LOCALE] ARGS`` on ``crm``'s database, without ``$CRMKIT_LOCALE``."""
    url = crm.engine.url.render_as_string(hide_password=False)
    chosen = ["--locale", locale] if locale else []
    return CliRunner().invoke(
        cli, ["--db", url, *chosen, *args], obj=CLIContext(plugins=[]), env={"CRMKIT_LOCALE": None}
    )


def test_cli_tables_speak_the_locale_and_json_does_not(crm: Any) -> None:
    an = crm.customers.add(name="Nguyễn Văn An", phone="0912 345 678", province="Hà Nội", tags=["vip"])
    crm.interactions.log(an.id, "phone", occurred_at=datetime(2026, 12, 6, 3, 30, tzinfo=UTC), subject="Hỏi giá")
    vi = _crmkit(crm, "customers", "find", locale="vi").stdout
    assert vi.splitlines()[0].split() == [
        "Mã",
        "Tên",
        "Loại",
        "Giai",
        "đoạn",
        "Điện",
        "thoại",
        "Email",
        "Tỉnh/thành",
        "Phụ",
        "trách",
        "Nhãn",
    ]
    en = _crmkit(crm, "customers", "find", locale="en").stdout
    assert en.splitlines()[0].split() == ["id", "name", "kind", "stage", "phone", "email", "province", "owner", "tags"]
    assert _crmkit(crm, "customers", "find", locale=None).stdout == vi  # no --locale, no setting: Vietnamese
    assert vi.splitlines()[2].split()[:6] == [str(an.id), "Nguyễn", "Văn", "An", "person", "Khách"]  # stage by name
    assert "0912 345 678" in vi and "+84912345678" not in vi  # a local number the national way
    assert '"phone": "+84912345678"' in _crmkit(crm, "--format", "json", "customers", "find", locale="vi").stdout

    timeline = _crmkit(crm, "interactions", "timeline", str(an.id), locale="vi").stdout
    assert "06/12/2026 10:30 (Giờ Đông Dương)" in timeline  # the business's time zone, named
    assert (
        "Dec 6, 2026, 10:30 AM (Indochina Time)"
        in _crmkit(crm, "interactions", "timeline", str(an.id), locale="en").stdout
    )
    shown = _crmkit(crm, "customers", "show", str(an.id), locale="vi").stdout
    assert "Tạo lúc" in shown and "(Giờ Đông Dương)" in shown and "created_at" not in shown

    for command in (
        ("customers", "find"),
        ("customers", "show", str(an.id)),
        ("interactions", "timeline", str(an.id)),
        ("customers", "profile", str(an.id)),
    ):
        for fmt in ("json", "csv"):
            outputs = {_crmkit(crm, "--format", fmt, *command, locale=locale).stdout for locale in ("vi", "en")}
            assert len(outputs) == 1, (command, fmt)  # machine formats are the same in every locale


def test_cli_errors_and_fixed_messages_speak_the_locale(crm: Any, tmp_path: Path) -> None:
    assert _crmkit(crm, "customers", "show", "999", locale="vi").stderr == "lỗi: không tìm thấy khách hàng 999\n"
    assert _crmkit(crm, "customers", "show", "999", locale="en").stderr == "error: customer 999 not found\n"
    # a schema's message by its field, in the reader's language; English stays the services' own words
    bad_date = ("customers", "add", "--name", "Nguyễn Văn An", "--birth-date", "xyz")
    assert _crmkit(crm, *bad_date, locale="vi").stderr == "lỗi: birth_date: Không phải ngày hợp lệ.\n"
    assert _crmkit(crm, *bad_date, locale="en").stderr == "error: birth_date: Not a valid date.\n"
    assert crm.customers.find("Nguyễn Văn An").items == []
    unknown = _crmkit(crm, "no-such-command", locale="en").stderr  # said in the --locale given before it
    assert unknown.startswith("error: crmkit: No such command") and unknown.rstrip().endswith("(see `crmkit --help`)")
    assert _crmkit(crm, "no-such-command", locale="vi").stderr.rstrip().endswith("(xem `crmkit --help`)")
    url = f"sqlite:///{tmp_path / 'new.db'}"
    ready = CliRunner().invoke(cli, ["--db", url, "--locale", "vi", "init"], obj=CLIContext(plugins=[]))
    assert ready.stdout.startswith("Cơ sở dữ liệu crmkit đã sẵn sàng: sqlite:///")
    assert "Nhánh migration" in ready.stdout


def test_output_formats_typed_values_per_locale() -> None:
    from crmkit.cli.output import Human, Percent

    saigon = ZoneInfo("Asia/Ho_Chi_Minh")
    vi, en = Human(translator("vi"), saigon), Human(translator("en"), saigon)
    values = [
        (Money.of(1234567, "VND"), f"1.234.567{NBSP}₫", "₫1,234,567"),
        (Percent(Decimal("0.601")), "60,1%", "60.1%"),
        (Decimal("1.5"), "1,5", "1.5"),
        (1234567, "1.234.567", "1,234,567"),
        (True, "có", "yes"),
        (date(2026, 12, 6), "06/12/2026", "Dec 6, 2026"),
        (None, "", ""),
    ]
    for value, in_vi, in_en in values:
        assert (vi.cell(value), en.cell(value)) == (in_vi, in_en)
    assert (vi.cell(1234, "customer_id"), vi.cell(2026, "id")) == ("1234", "2026")  # identifiers are not counts
    assert str(Percent(Decimal("0.08"))) == "8%" and str(Percent(Decimal("0.125"))) == "12.5%"  # JSON and CSV


def test_service_messages_read_in_vietnamese_and_the_api_keeps_english() -> None:
    from crmkit.errors import NotFound, PermissionDenied, ValidationError
    from crmkit.i18n import translate_error

    vi, en = translator("vi"), translator("en")
    refused = ValidationError(
        {"attributes": {"so_lan_ghe": ["Not a valid integer."]}, "name": ["Missing data for required field."]}, row=3
    )
    assert translate_error(vi, refused) == (
        "dòng 3: attributes: so_lan_ghe: Không phải số nguyên hợp lệ.; name: Thiếu dữ liệu cho trường bắt buộc."
    )
    assert translate_error(en, refused) == str(refused)  # English is the message itself
    assert translate_error(vi, NotFound("customer", 12)) == "không tìm thấy khách hàng 12"
    denied = PermissionDenied("customers.write", "lan", "only their team's customers")
    assert translate_error(vi, denied) == (
        "người dùng 'lan' không có quyền customers.write: only their team's customers"
    )
    assert translate_error(vi, ValidationError("something only this service says")) == (
        "something only this service says"
    )  # unknown to the catalogs: as it is, never garbled
