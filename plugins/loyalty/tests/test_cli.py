"""``crmkit loyalty …`` through the root command line, as a user runs it (one-line errors, exit codes)."""

import json

import pytest
from click.testing import CliRunner
from loyalty_testkit import PLUGINS

from crmkit.cli.context import CLIContext
from crmkit.cli.main import EXIT_FAILED, EXIT_USAGE, cli


@pytest.fixture
def run(loyal):
    url = loyal.engine.url.render_as_string(hide_password=False)

    def invoke(*args):
        return CliRunner().invoke(cli, ["--db", url, *args], obj=CLIContext(plugins=PLUGINS))

    return invoke


def ok(result):
    assert result.exit_code == 0, f"exit {result.exit_code}: {result.stderr}"
    return result.stdout


def error(result, code):
    assert result.exit_code == code, (result.stdout, result.stderr)
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: ") and "Traceback" not in result.stderr
    return line


def test_grant_balance_redeem_history_statement(loyal, run):
    an = loyal.customers.add(name="Nguyễn Văn An")
    loyal.sales.place(an.id, 1_250_000)
    ok(
        run(
            "loyalty",
            "rewards",
            "add",
            "voucher-100k",
            "Voucher 100.000 ₫",
            "--points",
            "100",
            "--kind",
            "discount",
            "--value",
            "100000",
        )
    )
    ok(run("loyalty", "grant", str(an.id), "25", "--note", "Khiếu nại giao hàng chậm"))
    balance = json.loads(ok(run("--format", "json", "loyalty", "balance", str(an.id))))
    assert balance == {
        "customer_id": an.id,
        "program": "default",
        "member": True,
        "points": 150,
        "tier": "member",
        "value": "75.000 ₫",
    }
    redemption = json.loads(ok(run("--format", "json", "loyalty", "redeem", str(an.id), "voucher-100k")))
    assert (redemption["points"], redemption["status"]) == (100, "completed")
    history = json.loads(ok(run("--format", "json", "loyalty", "history", str(an.id))))
    assert [(e["kind"], e["points"]) for e in history] == [("redeem", -100), ("adjust", 25), ("earn", 125)]
    statement = ok(run("loyalty", "statement", str(an.id)))
    assert "closing balance" in statement and statement.splitlines()[-1].split()[-1] == "50"
    rewards = ok(run("loyalty", "rewards"))
    assert "Voucher 100.000 ₫" in rewards


def test_redeeming_more_than_the_balance_is_one_error_line(loyal, run):
    an = loyal.customers.add(name="Nguyễn Văn An")
    ok(run("loyalty", "rewards", "add", "gift", "Quà", "--points", "10"))
    line = error(run("loyalty", "redeem", str(an.id), "gift"), EXIT_FAILED)
    assert "points: not enough points: the balance is 0, 10 needed" in line
    assert "reward 'nothing' not found" in error(run("loyalty", "redeem", str(an.id), "nothing"), EXIT_FAILED)
    assert "--note" in error(run("loyalty", "grant", str(an.id), "5"), EXIT_USAGE)


def test_programs_rules_and_tiers_setup(loyal, run):
    out = json.loads(
        ok(
            run(
                "--format",
                "json",
                "loyalty",
                "programs",
                "add",
                "usd",
                "US customers",
                "--currency",
                "usd",
                "--earn-points",
                "1",
                "--per-amount",
                "1.00",
                "--rounding",
                "round",
                "--no-expiry",
                "--point-value",
                "0.01",
                "--no-default-tiers",
            )
        )
    )
    assert (out["currency"], out["earn_amount_minor"], out["expiry_days"], out["point_value_minor"]) == (
        "USD",
        100,
        None,
        1,
    )
    assert [t.code for t in loyal.loyalty.programs.tiers("usd")] == ["member"]
    ok(run("loyalty", "rules", "add", "occasion", "--target", "tet", "--multiplier", "2"))
    assert "50000" in error(run("loyalty", "rules", "add", "min_order", "--min-amount", "50.000"), EXIT_USAGE)
    ok(run("loyalty", "rules", "add", "min_order", "--min-amount", "50000"))
    rules = json.loads(ok(run("--format", "json", "loyalty", "rules")))
    assert [(r["kind"], r["target"], r["amount_minor"]) for r in rules] == [
        ("occasion", "tet", None),
        ("min_order", None, 50_000),
    ]
    assert "target" in error(
        run("loyalty", "rules", "add", "occasion", "--target", "halloween", "--bonus", "5"), EXIT_FAILED
    )
    ok(run("loyalty", "tiers", "set", "member:Thành viên:0", "vang:Vàng:300:1.2"))
    tiers = json.loads(ok(run("--format", "json", "loyalty", "tiers")))
    assert [(t["code"], t["name"], t["multiplier"]) for t in tiers] == [
        ("member", "Thành viên", "1"),
        ("vang", "Vàng", "1.2"),
    ]
    assert "CODE:NAME:THRESHOLD" in error(run("loyalty", "tiers", "set", "vang"), EXIT_USAGE)


def test_batch_commands_and_reports(loyal, run):
    an = loyal.customers.add(name="Nguyễn Văn An")
    loyal.sales.place(an.id, 6_000_000)
    expired = json.loads(ok(run("--format", "json", "loyalty", "expire")))
    assert expired == [{"program": "default", "lots_expired": 0, "points": 0}]
    assert json.loads(ok(run("--format", "json", "loyalty", "evaluate-tiers"))) == [
        {"program": "default", "members_moved": 0}
    ]
    result = run("loyalty", "verify")
    assert result.exit_code == 0 and "ok" in result.stderr
    liability = ok(run("--format", "csv", "loyalty", "report", "liability"))
    assert liability.splitlines() == ["program,members,outstanding,value,expiring_30_days", "default,1,600,300.000 ₫,0"]
    tiers = json.loads(ok(run("--format", "json", "loyalty", "report", "tiers")))
    assert {t["tier"]: t["members"] for t in tiers} == {"member": 0, "silver": 1, "gold": 0, "diamond": 0}
    repeat = json.loads(ok(run("--format", "json", "loyalty", "report", "repeat")))
    assert [row["group"] for row in repeat] == ["members", "non-members"]


def test_changing_programs_rewards_and_rules(loyal, run):
    ok(run("loyalty", "programs", "update", "default", "--expiry-days", "180", "--rounding", "round"))
    program = json.loads(ok(run("--format", "json", "loyalty", "programs")))[0]
    assert (program["expiry_days"], program["rounding"]) == (180, "round")
    ok(run("loyalty", "rewards", "add", "gift", "Quà", "--points", "10", "--stock", "3"))
    ok(run("loyalty", "rewards", "update", "gift", "--unlimited", "--inactive"))
    assert json.loads(ok(run("--format", "json", "loyalty", "rewards"))) == []
    assert json.loads(ok(run("--format", "json", "loyalty", "rewards", "--all")))[0]["stock"] is None
    rule = json.loads(ok(run("--format", "json", "loyalty", "rules", "add", "signup", "--bonus", "20")))
    ok(run("loyalty", "rules", "deactivate", str(rule["id"])))
    assert json.loads(ok(run("--format", "json", "loyalty", "rules", "--all")))[0]["active"] is False


def test_verify_fails_when_a_balance_disagrees_and_statement_takes_a_month(loyal, run):
    from crmkit_loyalty.models import members

    an = loyal.customers.add(name="Nguyễn Văn An")
    loyal.loyalty.grant(an.id, 30, "quà")
    with loyal.transaction() as session:
        session.connection().execute(members.update().values(points=31))
    result = run("loyalty", "verify")
    assert result.exit_code == EXIT_FAILED and "1 balance(s) disagree" in result.stderr
    assert "31" in result.stdout
    assert "--month" in error(run("loyalty", "statement", str(an.id), "--month", "2026-13"), EXIT_USAGE)
    lines = ok(run("--format", "csv", "loyalty", "statement", str(an.id), "--month", "2020-02")).splitlines()
    assert lines == [
        "line,points",
        "opening balance,0",
        "earned,0",
        "reversed,0",
        "spent,0",
        "expired,0",
        "adjusted,0",
        "closing balance,0",
    ]


def test_a_key_reused_for_another_customer_is_one_error_line_and_grants_nothing(loyal, run):
    an = loyal.customers.add(name="Nguyễn Văn An")
    binh = loyal.customers.add(name="Trần Thị Bình")
    ok(run("loyalty", "grant", str(an.id), "70", "--note", "bù điểm", "--key", "K"))
    line = error(run("loyalty", "grant", str(binh.id), "40", "--note", "bù điểm", "--key", "K"), EXIT_FAILED)
    assert line.startswith(
        f"error: key: idempotency key 'K' was already used for a grant of 70 points to customer {an.id}"
    )
    assert f"customer {binh.id}, not {an.id}; 40 points, not 70" in line
    line = error(run("loyalty", "deduct", str(an.id), "70", "--note", "bù điểm", "--key", "K"), EXIT_FAILED)
    assert "a deduct, not a grant" in line
    assert (loyal.loyalty.balance(an.id), loyal.loyalty.balance(binh.id)) == (70, 0)


def test_tables_speak_the_locale_and_json_does_not(loyal, run):
    an = loyal.customers.add(name="Nguyễn Văn An")
    loyal.loyalty.grant(an.id, 1_234_567, "khai trương")
    vi = ok(run("--locale", "vi", "loyalty", "tiers")).splitlines()
    assert vi[0].split() == ["Thứ", "bậc", "Mã", "Tên", "Ngưỡng", "Hệ", "số", "Số", "thành", "viên"]
    assert vi[4].split() == ["2", "gold", "Vàng", "2.000", "1,25", "0"]  # a default tier's name, in Vietnamese
    en = ok(run("--locale", "en", "loyalty", "tiers")).splitlines()
    assert en[0].split() == ["rank", "code", "name", "threshold", "multiplier", "members"]
    assert en[4].split() == ["2", "gold", "Gold", "2,000", "1.25", "0"]
    balance = ok(run("--locale", "vi", "loyalty", "balance", str(an.id)))
    assert "điểm          1.234.567" in balance and "Giá trị       617.283.500\u00a0₫" in balance
    assert "₫617,283,500" in ok(run("--locale", "en", "loyalty", "balance", str(an.id)))
    statement = ok(run("--locale", "vi", "loyalty", "statement", str(an.id)))
    assert "số dư cuối kỳ  1.234.567" in statement
    refused = run("--locale", "vi", "loyalty", "redeem", str(an.id), "nothing")  # a plugin's error: the core's prefix
    assert refused.exit_code == EXIT_FAILED and refused.stderr == "lỗi: không tìm thấy phần thưởng 'nothing'\n"
    for command in (
        ("loyalty", "tiers"),
        ("loyalty", "balance", str(an.id)),
        ("loyalty", "statement", str(an.id)),
        ("loyalty", "history", str(an.id)),
    ):
        for fmt in ("json", "csv"):
            assert ok(run("--locale", "vi", "--format", fmt, *command)) == ok(
                run("--locale", "en", "--format", fmt, *command)
            ), (command, fmt)
