"""``crmkit campaigns …`` through the root command, as a person types it."""

from __future__ import annotations

import json
from typing import Any

import campaigns_testkit as kit
import pytest
from click.testing import CliRunner, Result

from crmkit.cli.context import CLIContext
from crmkit.cli.main import cli

pytestmark = pytest.mark.crmkit_plugins("campaigns")


def run(crm: Any, *args: str) -> Result:
    with crm.acting_as("lan.nguyen"):
        return CliRunner().invoke(cli, list(args), obj=CLIContext(crm=crm), catch_exceptions=False)


def ok(crm: Any, *args: str) -> str:
    result = run(crm, *args)
    assert result.exit_code == 0, result.output
    return result.stdout


def as_json(crm: Any, *args: str) -> Any:
    return json.loads(ok(crm, "--format", "json", "campaigns", *args))


def test_segments_from_the_command_line(crm, tmp_path):
    for n, city in enumerate(("Hà Nội", "HÀ NỘI", "Huế")):
        crm.customers.add(name=f"Khách {n}", email=f"k{n}@example.vn", city=city, consents={"email": True})
    created = as_json(crm, "segments", "create", "Hà Nội", 'city = "ha noi"', "--description", "Thủ đô")
    assert (created["name"], created["customers"]) == ("Hà Nội", 2)
    assert as_json(crm, "segments", "count", "--expr", 'city = "hue"') == [{"customers": 1}]
    assert as_json(crm, "segments", "count", "Hà Nội") == [{"customers": 2}]
    assert {r["city"] for r in as_json(crm, "segments", "sample", "Hà Nội")} == {"Hà Nội", "HÀ NỘI"}
    out = tmp_path / "ha-noi.jsonl"
    ok(crm, "campaigns", "segments", "export", "Hà Nội", "--as", "jsonl", "-o", str(out))
    assert sorted(json.loads(line)["email"] for line in out.read_text().splitlines()) == [
        "k0@example.vn",
        "k1@example.vn",
    ]
    csv_file, plain = tmp_path / "ha-noi.csv", tmp_path / "ha-noi-plain.csv"
    ok(crm, "campaigns", "segments", "export", "Hà Nội", "-o", str(csv_file))
    ok(crm, "campaigns", "segments", "export", "Hà Nội", "-o", str(plain), "--no-bom")
    assert csv_file.read_bytes().startswith(b"\xef\xbb\xbf") and not plain.read_bytes().startswith(b"\xef\xbb\xbf")
    assert "Khách 0" in csv_file.read_text(encoding="utf-8-sig")  # a file for people opens right in Excel
    assert not ok(crm, "campaigns", "segments", "export", "Hà Nội").startswith("\ufeff")  # stdout is for programs
    fields = {f["field"]: f for f in as_json(crm, "segments", "fields")}
    assert fields["age"]["type"] == "number" and fields["messages_received_90d"]["source"] == "plugin"
    bad = run(crm, "campaigns", "segments", "count", "--expr", 'city = "Huế" and age = ')
    assert bad.exit_code == 1
    assert bad.stderr.strip() == "error: expression: column 24: expected a value after '='"
    ok(crm, "campaigns", "segments", "delete", "Hà Nội")
    assert as_json(crm, "segments", "list") == []


def test_a_campaign_from_create_to_report(crm, tmp_path):
    customers = [
        crm.customers.add(name=f"Khách {n}", given_name=f"Lan{n}", email=f"lan{n}@example.vn", consents={"email": True})
        for n in range(4)
    ]
    ok(crm, "campaigns", "channel", "set", "email", "file", f"directory={tmp_path / 'outbox'}")
    ok(crm, "campaigns", "config", "quiet_hours", "off")
    assert as_json(crm, "config")["quiet_hours"] == "none"
    assert as_json(crm, "channels")[0]["adapter"] == "file"
    body = tmp_path / "tet.txt"
    body.write_text("Chào {{ first_name }}, ưu đãi Tết tại https://saomai.example.vn/tet", encoding="utf-8")
    created = as_json(
        crm,
        "create",
        "Tết 2026",
        "--channel",
        "email",
        "--subject",
        "Chúc mừng năm mới {{ first_name }}",
        "--body-file",
        str(body),
        "--budget",
        "5000000",
        "--cost-fixed",
        "1000000",
        "--cost-per-message",
        "500",
        "--holdout",
        "0",
    )
    assert created["status"] == "draft"
    shown = as_json(crm, "show", "Tết 2026")
    assert (shown["budget"], shown["cost_per_message"]) == ("5.000.000 ₫", "500 ₫")
    bad = run(crm, "campaigns", "variant", "Tết 2026", "B", "--body", "Chào {{ ten }}")
    assert bad.exit_code == 1 and "unknown placeholder {{ ten }}" in bad.stderr
    variants = as_json(crm, "variant", "Tết 2026", "B", "--body", "Lì xì cho {{ first_name }}")
    assert [v["name"] for v in variants] == ["A", "B"]
    preview = ok(crm, "campaigns", "preview", "Tết 2026", str(customers[0].id), "--variant", "A")
    assert "Subject: Chúc mừng năm mới Lan0" in preview and "Sent:    yes" in preview
    (queued,) = as_json(crm, "run", "Tết 2026")
    assert (queued["audience"], queued["queued"]) == (4, 4)
    (dispatched,) = as_json(crm, "dispatch")
    assert dispatched["sent"] == 4 and dispatched["finished_campaigns"] == str(created["id"])
    chart = tmp_path / "tet.png"
    report = run(crm, "campaigns", "report", "Tết 2026", "--chart", str(chart))
    assert report.exit_code == 0 and "cost                 ₫1,002,000" in report.stdout and chart.exists()
    compared = as_json(crm, "report")
    assert [(r["campaign"], r["sent"], r["cost"]) for r in compared] == [("Tết 2026", 4, "1.002.000 ₫")]
    assert len(as_json(crm, "messages", "Tết 2026", "--status", "sent")) == 4
    again = run(crm, "campaigns", "run", "Tết 2026")
    assert again.exit_code == 1 and "is done: it cannot run again" in again.stderr


def test_suppressions_scheduling_and_run_due(crm, tmp_path):
    kit.outbox(crm, tmp_path / "outbox")
    a, b = (crm.customers.add(name=f"K{n}", email=f"k{n}@example.vn", consents={"email": True}) for n in range(2))
    entry = as_json(crm, "suppress", "--address", "K1@Example.vn", "--reason", "khách yêu cầu")
    assert [s["address"] for s in as_json(crm, "suppressions")] == ["k1@example.vn"]
    as_json(crm, "create", "Hẹn giờ", "--channel", "email", "--body", "Chào")
    assert as_json(crm, "schedule", "Hẹn giờ", "--at", "2026-01-20T09:00+07:00")["status"] == "scheduled"
    due = as_json(crm, "run-due", "--no-dispatch")
    assert [(r["campaign"], r["queued"], r["excluded"]) for r in due] == [("Hẹn giờ", 1, "suppressed 1")]
    ok(crm, "campaigns", "unsuppress", str(entry["id"]))
    assert as_json(crm, "suppressions") == [] and a.id and b.id
    listed = as_json(crm, "list", "--status", "running")
    assert [c["name"] for c in listed] == ["Hẹn giờ"]
    assert as_json(crm, "cancel", "Hẹn giờ")["status"] == "cancelled"
    token = ok(crm, "campaigns", "webhook-token").strip()
    assert token == crm.campaigns.webhook_token() and len(token) >= 40


def test_a_user_s_commands_count_and_report_their_scope(crm, tmp_path):
    from crmkit.testing import add_user

    add_user(crm, "lan", teams=["HN"], roles=["sales"])
    add_user(crm, "hoa", teams=["SG"], roles=["sales"])
    add_user(crm, "quan", teams=["HN"], roles=["manager"])
    kit.outbox(crm, tmp_path / "outbox")
    kit.people(crm, 2, prefix="Lan", owner="lan")
    kit.people(crm, 3, prefix="Hoa", owner="hoa")
    campaign = crm.campaigns.create("Tết", channel="email", body="Chào", cost_per_message_minor=500)
    crm.campaigns.run(campaign.id, now=kit.NOON)
    crm.campaigns.dispatch(now=kit.NOON)
    assert as_json(crm, "segments", "count") == [{"customers": 5}]
    with crm.as_user("quan"):  # what `crmkit --user quan …` does for the whole command
        assert as_json(crm, "segments", "count") == [{"customers": 2}]
        shown, _ = json.JSONDecoder().raw_decode(ok(crm, "--format", "json", "campaigns", "report", "Tết"))
        assert (shown["audience"], shown["scope"]) == (2, "only the customers in quan's scope (fixed cost left out)")
        refused = run(crm, "campaigns", "channels")
    assert refused.exit_code != 0 and "campaigns.channels.manage" in refused.stderr


def test_occasion_spelled_as_a_solar_day(crm, tmp_path):
    kit.outbox(crm, tmp_path / "outbox")
    created = run(
        crm,
        "--format",
        "json",
        "campaigns",
        "create",
        "Ngày 30/4",
        "--channel",
        "email",
        "--body",
        "x",
        "--occasion",
        "04-30",
    )
    assert created.exit_code == 0, created.output
    assert json.loads(created.stdout)["occasion"] == "04-30"
    bad = run(crm, "campaigns", "create", "Sai", "--channel", "email", "--body", "x", "--occasion", "halloween")
    assert bad.exit_code != 0 and "occasion" in bad.output and "âm lịch" in bad.output
