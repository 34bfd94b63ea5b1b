"""The ``crmkit`` command line, as a user runs it: output, exit codes, one-line errors, no partial writes.

Commands run through ``click.testing.CliRunner`` against the ``crm`` fixture's database
(SQLite and PostgreSQL); ``CLIContext(plugins=[...])`` pins the plugins the command's CRM
loads, so the tests do not depend on which plugins happen to be installed.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from crmkit import Plugin, hookimpl
from crmkit.cli.context import CLIContext
from crmkit.cli.main import EXIT_BUG, EXIT_DATABASE, EXIT_FAILED, EXIT_USAGE, cli
from crmkit.cli.output import display_width

Invoke = Callable[..., Result]
NBSP = "\u00a0"  # Babel separates a Vietnamese amount from its currency with a no-break space


def url_of(crm: Any) -> str:
    return crm.engine.url.render_as_string(hide_password=False)


def run(
    url: str | None,
    *args: str,
    plugins: Sequence[Any] = (),
    input: str | None = None,
    env: dict[str, str] | None = None,
) -> Result:
    """``crmkit [--db url] args…`` with exactly ``plugins`` loaded."""
    argv = (["--db", url] if url else []) + list(args)
    return CliRunner().invoke(cli, argv, obj=CLIContext(plugins=list(plugins)), input=input, env=env)


@pytest.fixture
def invoke(crm: Any) -> Invoke:
    """Run crmkit on the ``crm`` fixture's database."""
    url = url_of(crm)
    return lambda *args, **kwargs: run(url, *args, **kwargs)


def ok(result: Result) -> str:
    assert result.exit_code == 0, f"exit {result.exit_code}: {result.stderr}"
    return result.stdout


def failed(result: Result, code: int, *fragments: str) -> str:
    """Assert the command failed with ``code`` and exactly one ``error:`` line naming ``fragments``."""
    assert result.exit_code == code, f"exit {result.exit_code}, stdout {result.stdout!r}, stderr {result.stderr!r}"
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert "Traceback" not in result.stderr
    return lines[0]


def add(invoke: Invoke, *args: str, **kwargs: Any) -> int:
    return json.loads(ok(invoke("--format", "json", "customers", "add", *args, **kwargs)))["id"]


def add_users(invoke: Invoke, *usernames: str, role: str | None = None) -> None:
    """Create employees with ``crmkit users add`` (owners must be users), optionally holding ``role``."""
    for username in usernames:
        ok(invoke("users", "add", username, *(("--role", role) if role else ())))


# -- customers -----------------------------------------------------------------------------------------------


def test_add_normalizes_and_show_prints_vietnamese(invoke: Invoke, crm: Any) -> None:
    out = ok(
        invoke(
            "customers",
            "add",
            "--name",
            "Nguyễn Văn An",
            "--phone",
            "0912 345 678",
            "--email",
            "An.Nguyen@Example.com",
            "--birth-date",
            "15/08/1990",
            "--gender",
            "nam",
            "--address",
            "12 Lê Lợi, Phường Bến Nghé, Quận 1, TP. Hồ Chí Minh",
            "--province",
            "TP. Hồ Chí Minh",
            "--stage",
            "customer",
            "--tag",
            "vip",
            "--consent",
            "email",
            "--source",
            "hội chợ",
        )
    )
    assert "Nguyễn Văn An" in out and "an.nguyen@example.com" in out
    assert "0912 345 678" in out and "+84912345678" not in out  # stored E.164, shown the national way
    [customer] = crm.customers.find("nguyen van an").items
    assert customer.birth_date.isoformat() == "1990-08-15" and customer.gender == "male"
    assert customer.addresses[0].ward == "Phường Bến Nghé" and customer.addresses[0].district == "Quận 1"
    assert customer.consents["email"].source == "hội chợ" and customer.tags == ("vip",)

    shown = json.loads(ok(invoke("customers", "show", str(customer.id), "--format", "json")))
    assert shown["name"] == "Nguyễn Văn An" and shown["phones"] == ["+84912345678"]
    assert shown["addresses"][0]["province"] == "TP. Hồ Chí Minh"


def test_find_table_is_aligned_with_diacritics(invoke: Invoke) -> None:
    add_users(invoke, "lan.nguyen")
    for name in ("Nguyễn Thị Ánh Tuyết", "Tran Van Binh", "Đặng Hữu Phước"):
        add(invoke, "--name", name, "--owner", "lan.nguyen")
    lines = ok(invoke("customers", "find")).splitlines()
    header, rule, *rows = lines
    assert len(rows) == 3
    # every row's `kind` cell starts in the same terminal column as the header's
    column = display_width(header[: header.index("kind")])
    for row in rows:
        assert display_width(row[: row.index("person")]) == column, row
    assert [r.split("  ")[1].strip() for r in rows] == ["Đặng Hữu Phước", "Nguyễn Thị Ánh Tuyết", "Tran Van Binh"]


def test_find_is_accent_insensitive_and_pages(invoke: Invoke) -> None:
    for name in ("Nguyễn Văn An", "Nguyễn Văn Bình", "Nguyễn Văn Cường", "Lê Thị Đào"):
        add(invoke, "--name", name)
    first = invoke("customers", "find", "nguyen van", "--limit", "2")
    assert ok(first).splitlines()[2:] and "Lê Thị Đào" not in first.stdout
    hint = first.stderr.strip()
    assert hint.startswith("more: repeat with --after ")
    assert "more:" not in first.stdout  # a hint, not a row: piping stdout gets only the rows
    assert "more:" not in ok(invoke("--format", "csv", "customers", "find", "nguyen van", "--limit", "2"))
    rest = ok(invoke("customers", "find", "nguyen van", "--limit", "2", "--after", hint.split()[-1]))
    names = [r["name"] for r in json.loads(ok(invoke("--format", "json", "customers", "find", "nguyen van")))]
    assert names == ["Nguyễn Văn An", "Nguyễn Văn Bình", "Nguyễn Văn Cường"]
    assert "Nguyễn Văn Cường" in rest and "Nguyễn Văn An" not in rest
    assert [r["name"] for r in json.loads(ok(invoke("--format", "json", "customers", "find", "đao")))] == ["Lê Thị Đào"]


def test_json_and_csv_output_parse(invoke: Invoke) -> None:
    add_users(invoke, "huong.le")
    first = add(
        invoke,
        "--name",
        "Phạm Minh Châu",
        "--phone",
        "0987654321",
        "--tag",
        "vip",
        "--tag",
        "online",
        "--owner",
        "huong.le",
    )
    add(invoke, "--kind", "organization", "--name", "Công ty TNHH Minh Phát", "--stage", "distributor")
    rows = json.loads(ok(invoke("--format", "json", "customers", "find", "--owner", "huong.le")))
    assert rows == [
        {
            "id": first,
            "name": "Phạm Minh Châu",
            "kind": "person",
            "stage": "lead",
            "phone": "+84987654321",
            "email": None,
            "province": None,
            "owner": "huong.le",
            "tags": ["online", "vip"],
        }
    ]
    table = list(csv.DictReader(io.StringIO(ok(invoke("customers", "find", "--format", "csv")))))
    assert {r["name"]: r["kind"] for r in table} == {
        "Phạm Minh Châu": "person",
        "Công ty TNHH Minh Phát": "organization",
    }
    assert table[1]["tags"] == "online;vip" and table[0]["tags"] == ""
    one = list(csv.DictReader(io.StringIO(ok(invoke("--format", "csv", "customers", "show", str(first))))))
    assert len(one) == 1 and one[0]["name"] == "Phạm Minh Châu"
    orgs = json.loads(ok(invoke("customers", "find", "--kind", "organization", "--format", "json")))
    assert [o["name"] for o in orgs] == ["Công ty TNHH Minh Phát"]


def test_update_tag_and_consent(invoke: Invoke, crm: Any) -> None:
    org = add(invoke, "--kind", "organization", "--name", "Nhà phân phối Hoàng Long")
    cid = add(invoke, "--name", "Võ Thị Lan", "--email", "lan@example.com")
    add_users(invoke, "minh.tran")
    ok(
        invoke(
            "customers",
            "update",
            str(cid),
            "--owner",
            "minh.tran",
            "--stage",
            "customer",
            "--org",
            f"{org}:Kế toán trưởng",
            "--attr",
            "vip_level=3",
        )
    )
    ok(invoke("customers", "tag", str(cid), "khách quen", "online"))
    ok(invoke("customers", "tag", str(cid), "online", "--remove"))
    ok(invoke("customers", "consent", str(cid), "sms", "--grant", "--source", "web form"))
    ok(invoke("customers", "consent", str(cid), "sms", "--withdraw", "--source", "hotline"))
    customer = crm.customers.get(cid)
    assert (customer.owner, customer.lifecycle_stage, customer.tags) == ("minh.tran", "customer", ("khách quen",))
    assert customer.organizations[0].organization_id == org and customer.organizations[0].role == "Kế toán trưởng"
    assert customer.attributes == {"vip_level": 3}
    assert not customer.consents["sms"].granted and customer.consents["sms"].source == "hotline"
    ok(invoke("customers", "update", str(cid), "--owner", ""))  # an empty value clears a field
    assert crm.customers.get(cid).owner is None

    failed(invoke("customers", "update", str(cid)), EXIT_USAGE, "nothing to update")
    failed(invoke("customers", "consent", str(cid), "sms", "--source", "x"), EXIT_USAGE, "--grant")
    failed(invoke("customers", "consent", str(cid), "pigeon", "--grant", "--source", "x"), EXIT_FAILED, "pigeon")


def test_duplicates_merge_profile_and_timeline_follow_the_kept_customer(invoke: Invoke, crm: Any) -> None:
    kept = add(invoke, "--name", "Nguyễn Văn An", "--phone", "0912345678")
    dup = add(invoke, "--name", "Nguyen Van An", "--phone", "0912 345 678", "--email", "an@example.com")
    ok(
        invoke(
            "interactions",
            "log",
            str(dup),
            "phone",
            "--subject",
            "Hỏi giá",
            "--rating",
            "4",
            "--at",
            "2025-03-01T09:00:00+07:00",
            "--employee",
            "lan.nguyen",
        )
    )
    candidates = json.loads(ok(invoke("--format", "json", "customers", "duplicates", str(kept))))
    assert [(c["id"], c["reason"]) for c in candidates] == [(dup, "same phone +84912345678")]

    merged = json.loads(ok(invoke("--format", "json", "customers", "merge", str(kept), str(dup))))
    assert merged["id"] == kept and merged["emails"] == ["an@example.com"]
    assert json.loads(ok(invoke("--format", "json", "customers", "show", str(dup))))["id"] == kept
    profile = ok(invoke("customers", "profile", str(kept)))
    assert "Nguyễn Văn An" in profile and "Interactions: 1 (phone 1)" in profile and "Hỏi giá" in profile
    data = json.loads(ok(invoke("customers", "profile", str(kept), "--format", "json")))
    assert data["interaction_counts"] == {"phone": 1} and data["customer"]["id"] == kept
    failed(invoke("customers", "merge", str(kept), str(kept)), EXIT_FAILED, "itself")


def test_erase_asks_first_and_export_data_is_json(invoke: Invoke, crm: Any) -> None:
    cid = add(invoke, "--name", "Trần Thị Mai", "--email", "mai@example.com")
    ok(invoke("interactions", "log", str(cid), "email", "--subject", "Xác nhận đơn hàng"))
    data = json.loads(ok(invoke("customers", "export-data", str(cid))))
    assert data["customer"]["name"] == "Trần Thị Mai"
    assert [i["subject"] for i in data["interactions"]] == ["Xác nhận đơn hàng"]

    failed(invoke("customers", "erase", str(cid), input="n\n"), EXIT_FAILED, "aborted")
    assert crm.customers.get(cid).status == "active"
    ok(invoke("customers", "erase", str(cid), input="y\n"))
    erased = crm.customers.get(cid)
    assert erased.status == "erased" and erased.emails == () and "Trần" not in erased.name
    entries = json.loads(ok(invoke("--format", "json", "audit", "--customer", str(cid))))
    assert entries[0]["action"] == "erase"


# -- interactions and audit ---------------------------------------------------------------------------------


def test_log_and_timeline_filters(invoke: Invoke) -> None:
    cid = add(invoke, "--name", "Hoàng Đức Huy")
    for channel, at, employee in (
        ("phone", "2025-01-10T09:00:00+07:00", "lan.nguyen"),
        ("email", "2025-02-10T09:00:00Z", "minh.tran"),
        ("phone", "2025-03-10T15:30:00+07:00", "minh.tran"),
    ):
        ok(
            invoke(
                "interactions",
                "log",
                str(cid),
                channel,
                "--at",
                at,
                "--employee",
                employee,
                "--subject",
                f"{channel} {at[:7]}",
                "--direction",
                "outbound",
            )
        )
    rows = json.loads(ok(invoke("--format", "json", "interactions", "timeline", str(cid))))
    assert [r["subject"] for r in rows] == ["phone 2025-03", "email 2025-02", "phone 2025-01"]
    assert rows[0]["occurred_at"] == "2025-03-10T08:30:00+00:00" and rows[0]["direction"] == "outbound"
    phones = json.loads(
        ok(
            invoke(
                "--format",
                "json",
                "interactions",
                "timeline",
                str(cid),
                "--channel",
                "phone",
                "--since",
                "2025-02-01T00:00:00+07:00",
            )
        )
    )
    assert [r["subject"] for r in phones] == ["phone 2025-03"]
    by_employee = json.loads(
        ok(
            invoke(
                "--format",
                "json",
                "interactions",
                "timeline",
                str(cid),
                "--employee",
                "minh.tran",
                "--until",
                "2025-03-01T00:00:00Z",
            )
        )
    )
    assert [r["subject"] for r in by_employee] == ["email 2025-02"]
    page = invoke("interactions", "timeline", str(cid), "--limit", "2")
    assert "phone 2025-03" in ok(page) and "phone 2025-01" not in page.stdout
    cursor = page.stderr.split()[-1]
    rest = ok(invoke("interactions", "timeline", str(cid), "--limit", "2", "--before", cursor))
    assert "phone 2025-01" in rest and "email 2025-02" not in rest


def test_the_acting_user_is_audited_and_logs_interactions(invoke: Invoke, crm: Any) -> None:
    cid = add(invoke, "--name", "Bùi Thu Hà")
    add_users(invoke, "thao.vo", "ngoc.do", role="support")  # may update and log for any customer
    ok(invoke("--user", "thao.vo", "customers", "update", str(cid), "--stage", "prospect"))
    ok(invoke("interactions", "log", str(cid), "chat", env={"CRMKIT_USER": "ngoc.do"}))
    entries = json.loads(ok(invoke("--format", "json", "audit", "--customer", str(cid))))
    assert [(e["actor"], e["action"]) for e in entries] == [("thao.vo", "update"), ("system", "create")]
    assert crm.interactions.timeline(cid).items[0].employee == "ngoc.do"
    table = ok(invoke("audit", "--actor", "thao.vo"))
    assert "thao.vo" in table and "update" in table and "system" not in table


# -- bad input: one line, non-zero exit, nothing written ------------------------------------------------------


def test_bad_input_is_one_line_and_writes_nothing(invoke: Invoke, crm: Any) -> None:
    failed(
        invoke("customers", "add", "--name", "Lý Văn Sơn", "--email", "not-an-email"),
        EXIT_FAILED,
        "email",
        "not-an-email",
    )
    failed(invoke("customers", "add", "--name", "Lý Văn Sơn", "--phone", "12345"), EXIT_FAILED, "phone")
    failed(
        invoke("customers", "add", "--name", "Lý Văn Sơn", "--birth-date", "31/02/1990"),
        EXIT_FAILED,
        "birth_date",
        "31/02/1990",
    )
    failed(invoke("customers", "add", "--name", "Lý Văn Sơn", "--address", "a, b, c, d, e"), EXIT_USAGE, "--address")
    assert crm.customers.find().items == []

    cid = add(invoke, "--name", "Lý Văn Sơn")
    failed(invoke("customers", "show", "999999"), EXIT_FAILED, "customer 999999 not found")
    failed(invoke("customers", "update", "999999", "--owner", "x"), EXIT_FAILED, "999999")
    failed(invoke("interactions", "log", "999999", "phone"), EXIT_FAILED, "999999")
    failed(invoke("interactions", "log", str(cid), "pigeon"), EXIT_FAILED, "channel")
    failed(invoke("interactions", "log", str(cid), "phone", "--at", "2025-13-01T00:00:00Z"), EXIT_USAGE, "--at")
    failed(invoke("interactions", "log", str(cid), "phone", "--at", "2025-05-01T09:00"), EXIT_USAGE, "time zone")
    failed(invoke("interactions", "log", str(cid), "phone", "--rating", "9"), EXIT_FAILED, "rating")
    failed(invoke("interactions", "timeline", str(cid), "--since", "yesterday"), EXIT_USAGE, "--since")
    failed(invoke("customers", "find", "--after", "garbage"), EXIT_FAILED, "after")
    assert crm.interactions.timeline(cid).items == []
    failed(invoke("customers", "show", "abc"), EXIT_USAGE, "CUSTOMER_ID")
    failed(invoke("customers", "show"), EXIT_USAGE, "Missing argument", "crmkit customers show --help")
    failed(invoke("no-such-command"), EXIT_USAGE, "no-such-command")
    failed(invoke("customers", "find", "--colour", "red"), EXIT_USAGE, "--colour")


def test_debug_shows_the_traceback(invoke: Invoke) -> None:
    result = invoke("--debug", "customers", "show", "424242")
    assert result.exit_code == EXIT_FAILED
    assert "Traceback" in result.stderr and result.stderr.strip().splitlines()[-1] == "error: customer 424242 not found"


@pytest.mark.parametrize(
    "url",
    ["postgresql://crmkit:s3cret@127.0.0.1:1/nowhere", "sqlite:////nonexistent-dir/x/crm.db", "nosuchdb://host/x"],
)
def test_an_unreachable_database_is_one_line(url: str) -> None:
    line = failed(run(url, "customers", "find"), EXIT_DATABASE, "cannot open database")
    assert "s3cret" not in line


# -- schema and plugins ----------------------------------------------------------------------------------------

WIDGETS_MIGRATION = '''
"""widgets table."""
from alembic import op
import sqlalchemy as sa

revision = "{name}_0001"
down_revision = None
branch_labels = ("{name}",)
depends_on = None


def upgrade() -> None:
    op.create_table("{name}_widgets", sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    op.drop_table("{name}_widgets")
'''


def widgets_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Plugin:
    """A plugin with one migration, in a package of its own under ``tmp_path``."""
    name = f"widgets{uuid.uuid4().hex[:8]}"
    package = tmp_path / f"crmkit_{name}"
    (package / "migrations").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "migrations" / "__init__.py").write_text("")
    (package / "migrations" / f"{name}_0001_widgets.py").write_text(WIDGETS_MIGRATION.format(name=name))
    (package / "models.py").write_text(
        textwrap.dedent(f"""
        import sqlalchemy as sa
        from crmkit.core.types import new_metadata
        metadata = new_metadata()
        widgets = sa.Table("{name}_widgets", metadata, sa.Column("id", sa.Integer, primary_key=True))
    """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return Plugin(name, tables=f"crmkit_{name}.models:metadata", migrations=f"crmkit_{name}.migrations")


def test_schema_behind_then_db_current_and_upgrade(
    invoke: Invoke, crm: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugin = widgets_plugin(tmp_path, monkeypatch)
    cid = add(invoke, "--name", "Đỗ Quang Vinh")
    failed(invoke("customers", "show", str(cid), plugins=[plugin]), EXIT_DATABASE, plugin.name, "crmkit db upgrade")

    current = {r["lineage"]: r for r in json.loads(ok(invoke("--format", "json", "db", "current", plugins=[plugin])))}
    assert current["crmkit"]["state"] == "up to date" and current["crmkit"]["current"] == current["crmkit"]["head"]
    assert current[plugin.name]["current"] == "-" and current[plugin.name]["state"].startswith("not applied")

    ok(invoke("db", "upgrade", plugins=[plugin]))
    current = json.loads(ok(invoke("--format", "json", "db", "current", plugins=[plugin])))
    assert {r["state"] for r in current} == {"up to date"}
    assert "Đỗ Quang Vinh" in ok(invoke("customers", "show", str(cid), plugins=[plugin]))
    with crm.reading() as conn:
        assert sa.inspect(conn).has_table(f"{plugin.name}_widgets")

    out = ok(invoke("db", "revision", plugin.name, "-m", "add colour", "--empty", plugins=[plugin]))
    written = Path(out.split("wrote ", 1)[1].strip())
    assert written.parent == tmp_path / f"crmkit_{plugin.name}" / "migrations" and "add_colour" in written.name
    behind = {
        r["lineage"]: r["state"] for r in json.loads(ok(invoke("--format", "json", "db", "current", plugins=[plugin])))
    }
    assert behind[plugin.name].startswith("behind")
    ok(invoke("db", "upgrade", plugins=[plugin]))
    failed(invoke("db", "revision", "nosuchplugin", "-m", "x"), EXIT_FAILED, "nosuchplugin")


def test_init_creates_a_new_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    out = ok(run(url, "init"))
    assert "crmkit database ready" in out and "up to date" in out
    assert json.loads(ok(run(url, "--format", "json", "customers", "find"))) == []
    ok(run(url, "init"))  # safe to re-run


class Greeter:
    """A plugin implementing two hooks (shown by `plugins list`)."""

    @hookimpl
    def crmkit_customer_created(self, customer: Any) -> None:
        pass

    @hookimpl
    def crmkit_customer_profile(self, customer: Any) -> dict[str, Any]:
        return {"greeter": {"greeting": f"Xin chào {customer.name}"}}


def test_plugins_list_enable_disable(invoke: Invoke) -> None:
    greeter = Plugin("greeter", hooks=Greeter(), version="1.2.3")
    rows = json.loads(ok(invoke("--format", "json", "plugins", "list", plugins=[greeter])))
    assert rows == [
        {
            "name": "greeter",
            "version": "1.2.3",
            "status": "enabled",
            "hooks": ["crmkit_customer_created", "crmkit_customer_profile"],
        }
    ]
    assert "customer_created, customer_profile" in ok(invoke("plugins", "list", plugins=[greeter]))
    cid = add(invoke, "--name", "Ngô Bảo Châu", plugins=[greeter])
    assert "Xin chào Ngô Bảo Châu" in ok(invoke("customers", "profile", str(cid), plugins=[greeter]))

    ok(invoke("plugins", "disable", "greeter", plugins=[greeter]))
    assert json.loads(ok(invoke("--format", "json", "plugins", "list", plugins=[greeter])))[0]["status"] == "disabled"
    assert "Xin chào" not in ok(invoke("customers", "profile", str(cid), plugins=[greeter]))
    ok(invoke("plugins", "enable", "greeter", plugins=[greeter]))
    assert json.loads(ok(invoke("--format", "json", "plugins", "list", plugins=[greeter])))[0]["status"] == "enabled"
    failed(invoke("plugins", "enable", "ghost", plugins=[greeter]), EXIT_FAILED, "ghost")


# -- plugin command groups: listed without being imported ------------------------------------------------------

FAKE_PLUGIN = """
from crmkit import Plugin
plugin = Plugin("{name}", description="Thẻ khách hàng thân thiết (test)", cli="{package}.commands:group")
"""
FAKE_COMMANDS = '''
import click
from crmkit.cli import pass_crm

@click.group()
def group():
    """Fake plugin commands."""

@group.command()
@pass_crm
def hello(crm):
    click.echo(f"xin chào from {len(crm.customers.find().items)} customers")

@group.command()
def boom():
    raise RuntimeError("kaboom")
'''


@pytest.fixture
def fake_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """Install (for the root group) a plugin entry point whose commands live in their own module."""

    def make(commands: str | None = FAKE_COMMANDS) -> str:
        name = f"fake{uuid.uuid4().hex[:8]}"
        package = tmp_path / f"crmkit_{name}"
        package.mkdir()
        (package / "__init__.py").write_text("")
        (package / "plugin.py").write_text(FAKE_PLUGIN.format(name=name, package=package.name))
        if commands is not None:
            (package / "commands.py").write_text(commands)
        monkeypatch.syspath_prepend(str(tmp_path))
        found = {name: EntryPoint(name, f"{package.name}.plugin:plugin", "crmkit.plugins")}
        monkeypatch.setattr(cli, "_entry_points", found)
        monkeypatch.setattr(cli, "_plugin_commands", {})
        return name

    return make


def test_help_lists_plugin_groups_without_importing_them(fake_plugin: Callable[..., str]) -> None:
    name = fake_plugin()
    out = ok(run(None, "--help"))
    assert "Plugin commands" in out and name in out and "Thẻ khách hàng thân thiết (test)" in out
    for group in (
        "customers",
        "interactions",
        "db",
        "plugins",
        "init",
        "demo",
        "audit",
        "users",
        "teams",
        "roles",
        "permissions",
    ):
        assert f"  {group} " in out
    assert f"crmkit_{name}.commands" not in sys.modules
    assert "hello" in ok(run(None, name, "--help"))
    assert f"crmkit_{name}.commands" in sys.modules


def test_plugin_command_runs_with_the_crm(fake_plugin: Callable[..., str], crm: Any) -> None:
    name = fake_plugin()
    plugin = Plugin(name)
    assert ok(run(url_of(crm), name, "hello", plugins=[plugin])).strip() == "xin chào from 0 customers"
    ok(run(url_of(crm), "plugins", "disable", name, plugins=[plugin]))
    failed(run(url_of(crm), name, "hello", plugins=[plugin]), EXIT_FAILED, name, "disabled", "plugins enable")
    failed(run(url_of(crm), name, "boom", plugins=[plugin]), EXIT_BUG, "RuntimeError", "kaboom", "--debug")


def test_a_plugin_whose_commands_fail_to_import_does_not_break_help(fake_plugin: Callable[..., str]) -> None:
    name = fake_plugin(commands=None)
    out = ok(run(None, "--help"))
    assert name in out and "customers" in out
    failed(run(None, name, "anything", "--at-all"), EXIT_FAILED, name, "unavailable", "ModuleNotFoundError")


def test_version_and_help_without_a_command() -> None:
    from crmkit import __version__

    assert ok(run(None, "--version")).strip() == f"crmkit, version {__version__}"
    assert ok(run(None)).startswith("Usage: crmkit [OPTIONS] COMMAND")
    assert "import" in ok(run(None, "customers")) and "timeline" in ok(run(None, "interactions"))


# -- import and export --------------------------------------------------------------------------------------------


def test_import_export_round_trip(invoke: Invoke, crm: Any, crm_factory: Any, tmp_path: Path) -> None:
    source = tmp_path / "khach_hang.csv"
    source.write_text(
        "\ufeffMã KH,Họ tên,email,phone,city\n"
        "KH-001,Nguyễn Văn An,an@example.com,0912 345 678,Hà Nội\n"
        "KH-002,Trần Thị Bích,bich@example,0987654321,Đà Nẵng\n"
        "KH-003,Lê Hoàng Nam,nam@example.com,0903123456,TP. Hồ Chí Minh\n",
        encoding="utf-8",
    )
    rejects = tmp_path / "rejects.csv"
    args = (
        "customers",
        "import",
        str(source),
        "--map",
        "Mã KH=external_id",
        "--map",
        "Họ tên=name",
        "--rejects",
        str(rejects),
        "--batch-size",
        "2",
    )
    first = invoke("--format", "json", *args)
    [summary] = json.loads(ok(first))
    assert (summary["inserted"], summary["updated"], summary["rejected"]) == (2, 0, 1)
    assert summary["reject_file"] == str(rejects)
    with rejects.open(encoding="utf-8-sig") as written:
        [reject] = list(csv.DictReader(written))
    assert "email" in reject["reject_reason"] and reject["Mã KH"] == "KH-002"

    [again] = json.loads(ok(invoke("--format", "json", *args)))
    assert (again["inserted"], again["updated"] + again["unchanged"], again["rejected"]) == (0, 2, 1)
    assert sorted(c.name for c in crm.customers.find()) == ["Lê Hoàng Nam", "Nguyễn Văn An"]
    assert crm.customers.get_by_external_id("KH-001").phones == ("+84912345678",)

    exported = tmp_path / "out.csv"
    ok(invoke("customers", "export", "--out", str(exported)))
    jsonl = ok(invoke("customers", "export", "--format", "jsonl"))
    assert sorted(json.loads(line)["external_id"] for line in jsonl.splitlines()) == ["KH-001", "KH-003"]

    other = crm_factory()
    [copied] = json.loads(ok(run(url_of(other), "--format", "json", "customers", "import", str(exported))))
    assert copied["inserted"] == 2 and copied["rejected"] == 0
    for external_id in ("KH-001", "KH-003"):
        a, b = crm.customers.get_by_external_id(external_id), other.customers.get_by_external_id(external_id)
        assert (a.name, a.emails, a.phones, a.city) == (b.name, b.emails, b.phones, b.city)


def test_import_of_an_unreadable_file_is_one_line(invoke: Invoke, crm: Any, tmp_path: Path) -> None:
    latin = tmp_path / "latin1.csv"
    latin.write_bytes("external_id,name\nX1,Nguy\xe9n\n".encode("latin-1"))
    failed(invoke("customers", "import", str(latin)), EXIT_FAILED, "UTF-8")
    failed(invoke("customers", "import", str(tmp_path / "missing.csv")), EXIT_USAGE, "missing.csv")
    assert crm.customers.find().items == []


# -- the installed command ------------------------------------------------------------------------------------------


def _installed_crmkit() -> str:
    script = Path(sys.executable).with_name("crmkit")
    assert script.exists(), f"the crmkit console script is not installed next to {sys.executable}"
    return str(script)


def test_installed_help_imports_neither_sqlalchemy_nor_plugin_commands() -> None:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", _installed_crmkit(), "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Commands:" in result.stdout and "customers" in result.stdout
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert "click" in imported  # the listing is real
    heavy = {m for m in imported if m.split(".")[0] in ("sqlalchemy", "marshmallow", "alembic", "psycopg", "stevedore")}
    assert heavy == set()
    for ep in entry_points(group="crmkit.plugins"):
        assert ep.name in result.stdout
        try:
            plugin = ep.load()
        except Exception:  # noqa: BLE001 - a plugin that cannot load has no commands to import
            continue
        if isinstance(getattr(plugin, "cli", None), str):
            assert plugin.cli.partition(":")[0] not in imported


def test_installed_command_lists_every_installed_plugin(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CRMKIT_STRICT_PLUGINS"}
    result = subprocess.run(
        [_installed_crmkit(), "--db", f"sqlite:///{tmp_path / 'crm.db'}", "--format", "json", "plugins", "list"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    listed = {row["name"]: row["status"] for row in json.loads(result.stdout)}
    assert set(listed) == {ep.name for ep in entry_points(group="crmkit.plugins")}
    assert all(status.split(":")[0] in ("enabled", "disabled", "failed") for status in listed.values())


# -- issue 21: --format at every level, readable customer 360, no accidental database, CSV files for Excel -------

NESTED_COMMANDS = '''
import click
from crmkit.cli.output import emit

@click.group()
def group():
    """Fake plugin commands, one nested group deep, none declaring --format."""

@group.command()
def top():
    emit([{"tên": "Lan", "điểm": 5}])

@group.group()
def report():
    """A nested group."""

@report.command()
def rows():
    emit([{"tên": "Lan", "điểm": 5}])
'''


def test_every_plugin_group_and_command_accepts_format(fake_plugin: Callable[..., str]) -> None:
    name = fake_plugin(NESTED_COMMANDS)
    expected = [{"tên": "Lan", "điểm": 5}]
    for argv in (
        [name, "top", "--format", "json"],
        [name, "--format", "json", "top"],
        [name, "report", "rows", "--format", "json"],
        [name, "report", "--format", "json", "rows"],
        [name, "--format", "json", "report", "rows"],
        ["--format", "json", name, "report", "rows"],
        ["--format", "csv", name, "--format", "table", "report", "rows", "--format", "json"],
    ):
        assert json.loads(ok(run(None, *argv))) == expected, argv
    assert list(csv.DictReader(io.StringIO(ok(run(None, name, "report", "rows", "--format", "csv"))))) == [
        {"tên": "Lan", "điểm": "5"}
    ]
    assert "--format [table|json|csv]" in ok(run(None, name, "report", "rows", "--help"))
    failed(run(None, name, "top", "--format", "xml"), EXIT_USAGE, "--format")


def test_core_groups_accept_format_and_file_formats_keep_their_own(invoke: Invoke) -> None:
    add(invoke, "--name", "Đỗ Thị Hạnh")
    assert [r["name"] for r in json.loads(ok(invoke("customers", "--format", "json", "find")))] == ["Đỗ Thị Hạnh"]
    assert json.loads(ok(invoke("db", "--format", "json", "current")))[0]["lineage"] == "crmkit"
    assert "--format [csv|jsonl]" in ok(invoke("customers", "import", "--help"))
    assert "--format [csv|jsonl]" in ok(invoke("customers", "export", "--help"))


def test_installed_plugin_groups_accept_format(crm_factory: Any) -> None:
    pytest.importorskip("crmkit_loyalty")
    pytest.importorskip("crmkit_sales")
    url = url_of(crm_factory(plugins=["sales", "loyalty"]))
    programs = json.loads(ok(run(url, "loyalty", "programs", "--format", "json", plugins=["sales", "loyalty"])))
    assert programs == json.loads(ok(run(url, "--format", "json", "loyalty", "programs", plugins=["sales", "loyalty"])))


class Wallet:
    """A plugin whose customer-360 section holds money and times, as plugins return them."""

    @hookimpl
    def crmkit_customer_profile(self, customer: Any) -> dict[str, Any]:
        from datetime import datetime

        from crmkit.money import Money

        paid = datetime(2026, 5, 1, 17, 30, tzinfo=UTC)  # 00:30 on 2 May in Hà Nội
        return {
            "wallet": {
                "balance": Money("VND", 25000),
                "credit": Money("USD", 1250),
                "updated_at": paid,
                "as_json": {"currency": "VND", "minor": 1500000},
                "seen_at": "2026-05-01T17:30:00+00:00",
                "recent": [{"id": 1, "at": paid, "amount": Money("VND", 200000), "note": None}],
            }
        }


def test_profile_sections_show_money_as_money_and_local_times(invoke: Invoke) -> None:
    wallet = Plugin("wallet", hooks=Wallet())
    cid = add(invoke, "--name", "Vũ Thị Thu", plugins=[wallet])
    out = ok(invoke("--locale", "vi", "customers", "profile", str(cid), plugins=[wallet]))
    section = out[out.index("\nwallet\n") :].replace(NBSP, " ")
    assert "25.000 ₫" in section and "12,50 US$" in section and "1.500.000 ₫" in section and "200.000 ₫" in section
    assert "02/05/2026 00:30 (Giờ Đông Dương)" in section and "17:30" not in section and "+00:00" not in section
    assert "minor" not in section and "{" not in section
    recent = section.splitlines()[section.splitlines().index("  recent") + 1 :]
    assert recent[0].split()[:2] == ["id", "at"] and "200.000 ₫" in recent[2]  # a plugin's keys, as it wrote them
    english = ok(invoke("--locale", "en", "customers", "profile", str(cid), plugins=[wallet]))
    assert "₫25,000" in english and "$12.50" in english and "May 2, 2026, 12:30" in english
    data = json.loads(ok(invoke("customers", "profile", str(cid), "--format", "json", plugins=[wallet])))
    assert data["sections"]["wallet"]["balance"] == {"currency": "VND", "minor": 25000}  # JSON stays exact


def test_no_database_is_said_not_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    env = {"CRMKIT_DATABASE_URL": None}  # no --db, no environment variable: the default ./crmkit.db
    for command in (("customers", "find"), ("customers", "show", "1"), ("audit",), ("plugins", "list")):
        failed(run(None, *command, env=env), EXIT_DATABASE, "no database", "crmkit init", "--db")
    assert not (tmp_path / "crmkit.db").exists() and list(tmp_path.iterdir()) == []
    assert "crmkit database ready" in ok(run(None, "init", env=env))
    assert (tmp_path / "crmkit.db").exists()
    assert json.loads(ok(run(None, "--format", "json", "customers", "find", env=env))) == []


def test_the_demo_and_db_upgrade_may_create_the_default_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {"CRMKIT_DATABASE_URL": None}
    (tmp_path / "a").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    ok(run(None, "db", "upgrade", env=env))
    assert (tmp_path / "a" / "crmkit.db").exists()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "b")
    ok(run(None, "--format", "json", "demo", "--customers", "5", env=env))
    assert len(json.loads(ok(run(None, "--format", "json", "customers", "find", env=env)))) == 5


BOM = "\ufeff".encode()


def test_csv_files_for_people_start_with_a_bom_and_round_trip(invoke: Invoke, crm_factory: Any, tmp_path: Path) -> None:
    add(invoke, "--name", "Nguyễn Thị Ánh Tuyết", "--external-id", "KH-1", "--email", "tuyet@example.com")
    exported = tmp_path / "khach_hang.csv"
    ok(invoke("customers", "export", "--out", str(exported)))
    assert exported.read_bytes().startswith(BOM + b"external_id,")
    assert "Nguyễn Thị Ánh Tuyết" in exported.read_text(encoding="utf-8-sig")
    other = crm_factory()
    [copied] = json.loads(ok(run(url_of(other), "--format", "json", "customers", "import", str(exported))))
    assert (copied["inserted"], copied["rejected"]) == (1, 0)
    assert other.customers.get_by_external_id("KH-1").name == "Nguyễn Thị Ánh Tuyết"

    machine = tmp_path / "machine.csv"
    ok(invoke("customers", "export", "--out", str(machine), "--no-bom"))
    assert machine.read_bytes().startswith(b"external_id,")
    assert ok(invoke("customers", "export")).startswith("external_id,")  # a pipe is for programs
    assert ok(invoke("customers", "export", "--bom")).startswith("\ufeffexternal_id,")
    assert not ok(invoke("customers", "export", "--format", "jsonl", "--bom")).startswith("\ufeff")

    assert ok(invoke("--format", "csv", "customers", "find")).startswith("id,")
    assert ok(invoke("--bom", "--format", "csv", "customers", "find")).startswith("\ufeffid,")
    assert ok(invoke("--bom", "--format", "json", "customers", "find")).startswith("[")


def test_reject_files_start_with_a_bom_unless_asked(invoke: Invoke, tmp_path: Path) -> None:
    source = tmp_path / "khach.csv"
    source.write_text("external_id,name,email\nKH-9,Trần Văn Đức,duc@example\n", encoding="utf-8")
    rejects = tmp_path / "rejects.csv"
    [summary] = json.loads(
        ok(invoke("--format", "json", "customers", "import", str(source), "--rejects", str(rejects)))
    )
    assert summary["rejected"] == 1
    assert rejects.read_bytes().startswith(BOM + b"reject_row,")
    assert "Trần Văn Đức" in rejects.read_text(encoding="utf-8-sig")
    machine = tmp_path / "rejects-for-a-program.csv"
    ok(invoke("customers", "import", str(source), "--rejects", str(machine), "--no-bom"))
    assert machine.read_bytes().startswith(b"reject_row,")
    source.write_text("external_id,name,email\nKH-9,Trần Văn Đức,duc@example.com\n", encoding="utf-8")
    ok(invoke("customers", "import", str(source), "--rejects", str(rejects)))
    assert not rejects.exists()  # a clean re-run removes the old reject file, BOM or not
