"""``crmkit service …`` through the root command line, as an operator runs it (one-line errors, exit codes)."""

from __future__ import annotations

import json
from datetime import date

import pytest

from crmkit.testing import add_user

pytestmark = pytest.mark.crmkit_plugins("service")


def ok(result):
    assert result.exit_code == 0, f"exit {result.exit_code}: {result.stderr}"
    return result.stdout


def test_open_reply_note_assign_status_list_and_show(crm, run):
    add_user(crm, "hoa", roles=["support"])
    an = crm.customers.add(name="Nguyễn Văn An")
    opened = json.loads(
        ok(
            run(
                "--format",
                "json",
                "service",
                "cases",
                "open",
                str(an.id),
                "Giao hàng trễ",
                "--channel",
                "chat",
                "--priority",
                "high",
                "--category",
                "delivery",
            )
        )
    )
    case_id = opened["id"]
    assert (opened["status"], opened["priority"], opened["channel"]) == ("new", "high", "chat")
    assert "Dạ đơn sẽ giao hôm nay" in ok(
        run("--user", "hoa", "service", "cases", "reply", str(case_id), "Dạ đơn sẽ giao hôm nay")
    )
    ok(run("service", "cases", "reply", str(case_id), "Cảm ơn shop", "--inbound"))
    ok(run("service", "cases", "note", str(case_id), "Đã hỏi bên vận chuyển"))
    assigned = ok(run("service", "cases", "assign", str(case_id), "--to", "hoa"))
    assert "hoa" in assigned
    ok(run("service", "cases", "status", str(case_id), "resolved", "--resolution", "Đã giao"))
    listed = ok(run("service", "cases", "list", "--status", "resolved"))
    assert "Giao hàng trễ" in listed and "Resolved" in listed
    shown = json.loads(ok(run("--format", "json", "service", "cases", "show", str(case_id))))
    assert [(m["kind"], m["direction"], m["author"]) for m in shown["conversation"]] == [
        ("reply", "outbound", "hoa"),
        ("reply", "inbound", "system"),
        ("note", None, "system"),
    ]
    assert shown["assignee"] == "hoa" and shown["resolution"] == "Đã giao"


def test_errors_are_one_line_naming_the_field(crm, run):
    an = crm.customers.add(name="Trần Thị Bình")
    case = crm.service.open(an.id, "Hỏi giá")
    bad = run("service", "cases", "status", str(case.id), "reopened")
    # one line, "error: …" (or its translation), naming the field before the service's message
    assert bad.exit_code != 0 and ": status: a new case cannot become reopened" in bad.stderr
    assert len(bad.stderr.splitlines()) == 1
    missing = run("service", "cases", "show", "999")
    assert missing.exit_code != 0 and "case 999 not found" in missing.stderr


def test_sla_commands_and_run_due(crm, run):
    ok(run("service", "sla", "set-policy", "urgent", "--first-response", "15", "--resolution", "120"))
    policies = json.loads(ok(run("--format", "json", "service", "sla", "policies")))
    assert {"priority": "urgent", "first_response_minutes": 15, "resolution_minutes": 120} in policies
    assert "Feb 12, 2027 is a day off" in ok(run("service", "sla", "day-off", "12/02/2027", "Nghỉ thêm sau Tết"))
    # Thursday 4/2/2027 16:00 + 2 working hours: Tết (5–11/2) and the extra day off → Monday 15/2 09:00
    due = ("service", "sla", "due", "2027-02-04T16:00+0700", "120")
    assert ok(run(*due)).strip() == "Feb 15, 2027, 9:00 AM (Indochina Time)"
    assert ok(run("--locale", "vi", *due)).strip() == "15/02/2027 09:00 (Giờ Đông Dương)"
    for fmt in ("json", "csv"):  # a program reads ISO 8601, whatever the locale
        assert {ok(run("--locale", locale, "--format", fmt, *due)).strip() for locale in ("vi", "en")} == {
            "2027-02-15T09:00:00+07:00"
        }
    assert "0 SLA breaches" in ok(run("service", "run-due"))
    crm.teams.add("Kỹ thuật")
    week = json.loads(
        ok(
            run(
                "--format", "json", "service", "sla", "week", "--team", "Kỹ thuật", "sat=08:00-12:00", "sun=08:00-12:00"
            )
        )
    )
    assert [d["hours"] for d in week] == ["closed"] * 5 + ["08:00-12:00", "08:00-12:00"]
    assert json.loads(ok(run("--format", "json", "service", "sla", "week")))[0] == {
        "day": "mon",
        "hours": "08:00-17:00",
    }
    bad = run("service", "sla", "week", "mon=8-17")
    assert bad.exit_code != 0 and ": hours: 'mon=8-17': write a day like mon=08:00-17:00" in bad.stderr


def test_commands_speak_the_chosen_locale_and_machine_formats_do_not(crm, run):
    from crmkit.console.testing import untranslated
    from crmkit_service.commands import CASE_TABLE, CODE_LABELS, MESSAGE_TABLE, _case_fields

    an = crm.customers.add(name="Nguyễn Văn An")
    case = crm.service.open(an.id, "Giao hàng trễ", priority="high")
    crm.service.reply(case.id, "Dạ em kiểm tra ngay")
    crm.service.add_day_off(date(2027, 2, 12), "Nghỉ thêm sau Tết")
    due = crm.service.get(case.id).resolution_due_at.astimezone(crm.timezone)
    vi = ok(run("--locale", "vi", "service", "cases", "list"))
    assert vi.splitlines()[1].split("  ")[:4] == ["Mã", "Mã KH", "Trạng thái", "Mức ưu tiên"]
    assert "Đang xử lý" in vi and "Cao" in vi and f"{due:%d/%m/%Y %H:%M} (Giờ Đông Dương)" in vi
    en = ok(run("--locale", "en", "service", "cases", "list"))
    assert "Open" in en and "High" in en and "(Indochina Time)" in en
    shown = ok(run("--locale", "vi", "service", "cases", "show", str(case.id)))
    assert "Hạn giải quyết" in shown and "Điện thoại" in shown and "Trả lời  Liên hệ đi" in shown
    week = ok(run("--locale", "vi", "service", "sla", "week"))
    assert "Thứ Hai" in week and "Chủ Nhật   Nghỉ" in week.replace("Chủ Nhật  Nghỉ", "Chủ Nhật   Nghỉ")
    assert "2.880" in ok(run("--locale", "vi", "service", "sla", "policies"))  # low priority: 2,880 minutes
    assert "12/02/2027" in ok(run("--locale", "vi", "service", "sla", "days-off"))
    assert "0 yêu cầu trễ hạn SLA" in ok(run("--locale", "vi", "service", "run-due"))
    # nothing the commands show is left in English for a Vietnamese user
    assert (
        untranslated(
            crm,
            "service",
            sources=("console.py", "commands.py"),
            also=[
                *CASE_TABLE,
                *MESSAGE_TABLE,
                *_case_fields(),
                *CODE_LABELS.values(),
                "due_at",
                "target",
                "day",
                "hours",
                "note",
                "first_response_minutes",
                "resolution_minutes",
            ],
        )
        == []
    )
    for fmt in ("json", "csv"):
        for command in (
            ["cases", "list"],
            ["cases", "show", str(case.id)],
            ["sla", "week"],
            ["sla", "policies"],
            ["sla", "days-off"],
        ):
            outputs = {ok(run("--locale", locale, "--format", fmt, "service", *command)) for locale in ("vi", "en")}
            assert len(outputs) == 1, (fmt, command, outputs)
    listed = json.loads(ok(run("--locale", "vi", "--format", "json", "service", "cases", "list")))
    assert (listed[0]["status"], listed[0]["priority"]) == ("open", "high")
    assert listed[0]["resolution_due_at"] == crm.service.get(case.id).resolution_due_at.isoformat()
