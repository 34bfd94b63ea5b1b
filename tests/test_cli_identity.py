"""``crmkit users|teams|roles|permissions`` and ``crmkit --user``, as an operator runs them.

Commands run through the same ``invoke`` fixture and ``ok``/``failed`` checks as
``tests/test_cli.py`` (its helpers are loaded from that file, not copied).
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import crmkit
from crmkit import Permission, Plugin, hookimpl
from crmkit.cli.context import CLIContext
from crmkit.cli.main import EXIT_FAILED, EXIT_USAGE
from crmkit.testing import add_user


def _sibling(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_crmkit_tests_{name}", Path(__file__).with_name(f"{name}.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_cli = _sibling("test_cli")
invoke = _cli.invoke  # the fixture: crmkit on the `crm` fixture's database
Invoke, ok, failed, add, url_of = _cli.Invoke, _cli.ok, _cli.failed, _cli.add, _cli.url_of

PASSWORD = "Mưa-Hà-Nội-2025"


def as_json(result: Any) -> Any:
    return json.loads(ok(result))


def last_error(result: Any, code: int, *fragments: str) -> str:
    """For a command that prompted on stderr first: its last stderr line is the one ``error:`` line."""
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and result.stderr.splitlines()[-1] == errors[0], result.stderr
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
    return errors[0]


# -- users ------------------------------------------------------------------------------------------------------


def test_users_add_list_show_update_disable_enable(invoke: Invoke, crm: Any) -> None:
    ok(invoke("teams", "add", "Chi nhánh Hà Nội"))
    added = as_json(
        invoke(
            "--format",
            "json",
            "users",
            "add",
            "lan.nguyen",
            "--name",
            "Nguyễn Thị Lan",
            "--email",
            "lan@example.com",
            "--phone",
            "0912 345 678",
            "--locale",
            "vi",
            "--timezone",
            "Asia/Ho_Chi_Minh",
            "--team",
            "Chi nhánh Hà Nội",
            "--role",
            "sales",
            "--password",
            input=f"{PASSWORD}\n{PASSWORD}\n",
        )
    )
    assert (added["username"], added["display_name"], added["phone"], added["teams"], added["roles"]) == (
        "lan.nguyen",
        "Nguyễn Thị Lan",
        "+84912345678",
        ["Chi nhánh Hà Nội"],
        ["sales"],
    )
    assert added["has_password"] and added["active"]
    assert crm.users.authenticate("lan.nguyen", PASSWORD).username == "lan.nguyen"
    ok(invoke("users", "add", "minh.tran"))  # no password: cannot sign in until `users passwd`

    table = ok(invoke("users", "list"))
    assert "Nguyễn Thị Lan" in table and "Chi nhánh Hà Nội" in table and "minh.tran" in table
    assert [
        u["username"] for u in as_json(invoke("users", "list", "--team", "Chi nhánh Hà Nội", "--format", "json"))
    ] == ["lan.nguyen"]
    shown = ok(invoke("users", "show", "lan.nguyen"))
    assert "Nguyễn Thị Lan" in shown and "password    set" in shown and "sales" in shown
    assert "password    not set" in ok(invoke("users", "show", "minh.tran"))

    updated = as_json(
        invoke(
            "users",
            "update",
            "lan.nguyen",
            "--email",
            "lan.nguyen@example.com",
            "--phone",
            "",
            "--locale",
            "en",
            "--format",
            "json",
        )
    )
    assert (updated["email"], updated["phone"], updated["locale"]) == ("lan.nguyen@example.com", None, "en")
    failed(invoke("users", "update", "lan.nguyen", "--email", "lan@"), EXIT_FAILED, "email", "lan@")
    failed(invoke("users", "update", "lan.nguyen", "--locale", "fr"), EXIT_FAILED, "locale")
    failed(invoke("users", "update", "lan.nguyen"), EXIT_USAGE, "nothing to update")
    failed(invoke("users", "update", "ghost", "--name", "X"), EXIT_FAILED, "ghost")

    ok(invoke("users", "disable", "minh.tran"))
    assert [u["username"] for u in as_json(invoke("--format", "json", "users", "list", "--disabled"))] == ["minh.tran"]
    assert [u["username"] for u in as_json(invoke("--format", "json", "users", "list", "--active"))] == ["lan.nguyen"]
    assert not crm.users.get("minh.tran").active
    ok(invoke("users", "enable", "minh.tran"))
    assert crm.users.get("minh.tran").active

    actions = [(e["action"], e["entity_id"]) for e in as_json(invoke("--format", "json", "audit", "--entity", "user"))]
    assert ("disable", "minh.tran") in actions and ("enable", "minh.tran") in actions


def test_bad_users_are_refused_naming_the_field_and_nothing_is_written(invoke: Invoke, crm: Any) -> None:
    failed(invoke("users", "add", "lan", "--password-stdin", input="short\n"), EXIT_FAILED, "password", "10")
    failed(
        invoke("users", "add", "lan", "--password-stdin", input="lan-lan-lan-123\n"),
        EXIT_FAILED,
        "password",
        "username",
    )
    last_error(
        invoke("users", "add", "lan", "--password", input="matkhau123\nmatkhau123\n"), EXIT_FAILED, "password", "common"
    )
    failed(invoke("users", "add", "Lan Nguyen"), EXIT_FAILED, "username")
    failed(invoke("users", "add", "lan", "--team", "Không có"), EXIT_FAILED, "team", "Không có")
    failed(invoke("users", "add", "lan", "--role", "king"), EXIT_FAILED, "role", "king")
    failed(invoke("users", "add", "lan", "--locale", "fr"), EXIT_USAGE, "--locale")
    failed(invoke("users", "add", "lan", "--password", "--password-stdin"), EXIT_USAGE, "not both")
    assert crm.users.list() == []
    ok(invoke("users", "add", "lan"))
    failed(invoke("users", "add", "lan"), EXIT_FAILED, "lan", "already exists")


def test_passwd_refuses_a_weak_password_and_sets_a_strong_one(invoke: Invoke, crm: Any) -> None:
    ok(invoke("users", "add", "thu.ngan"))
    failed(invoke("users", "passwd", "thu.ngan", "--password-stdin", input="\n"), EXIT_FAILED, "password", "required")
    failed(
        invoke("users", "passwd", "thu.ngan", "--password-stdin", input="aaaaaaaaaaaa\n"),
        EXIT_FAILED,
        "password",
        "repetitive",
    )
    last_error(invoke("users", "passwd", "thu.ngan", input="short1\nshort1\n"), EXIT_FAILED, "password")
    assert not crm.users.get("thu.ngan").has_password
    failed(invoke("users", "passwd", "ghost", "--password-stdin", input=f"{PASSWORD}\n"), EXIT_FAILED, "ghost")

    prompted = invoke("users", "passwd", "thu.ngan", input=f"{PASSWORD}\n{PASSWORD}\n")
    assert ok(prompted).strip() == "password of thu.ngan changed"
    assert PASSWORD not in prompted.stdout + prompted.stderr  # typed without echo
    assert crm.users.authenticate("thu.ngan", PASSWORD).username == "thu.ngan"
    ok(invoke("users", "passwd", "thu.ngan", "--password-stdin", input="Nắng-Sài-Gòn-2026\n"))
    with pytest.raises(crmkit.AuthenticationFailed):
        crm.users.authenticate("thu.ngan", PASSWORD)
    assert crm.users.authenticate("thu.ngan", "Nắng-Sài-Gòn-2026").username == "thu.ngan"


def test_tokens_show_the_secret_once_list_without_it_and_revoke(invoke: Invoke, crm: Any) -> None:
    ok(invoke("users", "add", "zalo.bot", "--role", "support"))
    created = invoke(
        "--format",
        "json",
        "users",
        "token",
        "create",
        "zalo.bot",
        "--name",
        "Zalo OA sync",
        "--permission",
        "customers.read",
        "--expires-in-days",
        "30",
    )
    token = as_json(created)
    secret = token["secret"]
    assert secret.startswith("crmkit_") and token["permissions"] == ["customers.read"] and token["expires_at"]
    assert "not shown again" in created.stderr
    handle = crm.with_token(secret)
    assert handle.principal.username == "zalo.bot" and set(handle.principal.grants) == {"customers.read"}
    table = invoke(
        "users", "token", "create", "zalo.bot", "--name", "website form", "--expires-at", "2099-01-01T00:00:00+07:00"
    )
    assert "secret" in ok(table) and "Jan 1, 2099, 12:00 AM (Indochina Time)" in table.stdout  # the business's zone

    listed = ok(invoke("users", "token", "list", "zalo.bot"))
    assert "Zalo OA sync" in listed and "website form" in listed and "(all of the user's)" in listed
    rows = as_json(invoke("--format", "json", "users", "token", "list"))
    assert [r["name"] for r in rows] == ["website form", "Zalo OA sync"]
    assert all("secret" not in r for r in rows) and secret not in json.dumps(rows)
    assert secret not in ok(invoke("--format", "csv", "users", "token", "list")) + listed

    assert ok(invoke("users", "token", "revoke", str(token["id"]))).strip() == f"token {token['id']} revoked"
    revoked = {r["id"]: r for r in as_json(invoke("--format", "json", "users", "token", "list", "zalo.bot"))}
    assert revoked[token["id"]]["revoked_at"] is not None
    with pytest.raises(crmkit.AuthenticationFailed):
        crm.with_token(secret)

    failed(invoke("users", "token", "revoke", "999"), EXIT_FAILED, "token", "999")
    failed(
        invoke("users", "token", "create", "zalo.bot", "--name", "x", "--permission", "customers.steal"),
        EXIT_FAILED,
        "customers.steal",
    )
    failed(
        invoke("users", "token", "create", "zalo.bot", "--name", "x", "--expires-at", "2020-01-01T00:00:00Z"),
        EXIT_FAILED,
        "expires_at",
        "past",
    )
    failed(
        invoke(
            "users",
            "token",
            "create",
            "zalo.bot",
            "--name",
            "x",
            "--expires-in-days",
            "1",
            "--expires-at",
            "2099-01-01T00:00:00Z",
        ),
        EXIT_USAGE,
        "not both",
    )
    failed(invoke("users", "token", "create", "zalo.bot"), EXIT_USAGE, "--name")
    failed(invoke("users", "token", "create", "ghost", "--name", "x"), EXIT_FAILED, "ghost")
    assert len(crm.users.tokens()) == 2


def test_reassign_moves_the_customers_of_someone_leaving_and_is_audited(invoke: Invoke, crm: Any) -> None:
    for username in ("lan.nguyen", "minh.tran", "huong.le"):
        ok(invoke("users", "add", username))
    mine = [add(invoke, "--name", name, "--owner", "lan.nguyen") for name in ("Phạm Minh Châu", "Đỗ Văn Hùng")]
    other = add(invoke, "--name", "Lê Thị Hoa", "--owner", "huong.le")
    ok(invoke("users", "disable", "lan.nguyen"))

    assert (
        ok(invoke("users", "reassign", "lan.nguyen", "minh.tran")).strip()
        == "moved 2 customers from lan.nguyen to minh.tran"
    )
    assert [crm.customers.get(cid).owner for cid in mine] == ["minh.tran", "minh.tran"]
    assert crm.customers.get(other).owner == "huong.le"
    [entry] = [e for e in as_json(invoke("--format", "json", "audit", "--entity", "user")) if e["action"] == "reassign"]
    assert (entry["entity_id"], entry["changes"]) == ("lan.nguyen", {"to": "minh.tran", "customers": 2})
    assert as_json(invoke("--format", "json", "users", "reassign", "lan.nguyen", "minh.tran")) == {
        "from": "lan.nguyen",
        "to": "minh.tran",
        "customers_moved": 0,
    }

    failed(invoke("users", "reassign", "minh.tran", "lan.nguyen"), EXIT_FAILED, "lan.nguyen", "disabled")
    failed(invoke("users", "reassign", "minh.tran", "ghost"), EXIT_FAILED, "ghost")
    assert [crm.customers.get(cid).owner for cid in mine] == ["minh.tran", "minh.tran"]


# -- teams -------------------------------------------------------------------------------------------------------


def test_teams_tree_members_and_a_cycle_refused_naming_the_team(invoke: Invoke, crm: Any) -> None:
    ok(invoke("teams", "add", "Minh Phát"))
    ok(invoke("teams", "add", "Chi nhánh Hà Nội", "--parent", "Minh Phát"))
    ok(invoke("teams", "add", "Telesales HN", "--parent", "Chi nhánh Hà Nội"))
    ok(invoke("teams", "add", "Chi nhánh Sài Gòn", "--parent", "Minh Phát"))
    ok(invoke("users", "add", "lan.nguyen"))
    added = as_json(invoke("--format", "json", "teams", "add-member", "Telesales HN", "lan.nguyen"))
    assert added == {"name": "Telesales HN", "parent": "Chi nhánh Hà Nội", "members": ["lan.nguyen"]}

    _, _, *tree = ok(invoke("teams", "list")).splitlines()
    assert [line.split("  lan.nguyen")[0].rstrip() for line in tree] == [
        "Minh Phát",
        "  Chi nhánh Hà Nội",
        "    Telesales HN",
        "  Chi nhánh Sài Gòn",
    ]
    assert tree[2].endswith("  lan.nguyen")
    rows = list(csv.DictReader(io.StringIO(ok(invoke("--format", "csv", "teams", "list")))))
    assert [(r["name"], r["parent"], r["depth"]) for r in rows] == [
        ("Minh Phát", "", "0"),
        ("Chi nhánh Hà Nội", "Minh Phát", "1"),
        ("Telesales HN", "Chi nhánh Hà Nội", "2"),
        ("Chi nhánh Sài Gòn", "Minh Phát", "1"),
    ]
    shown = as_json(invoke("teams", "show", "Minh Phát", "--format", "json"))
    assert shown == {
        "name": "Minh Phát",
        "parent": None,
        "members": [],
        "sub_teams": ["Chi nhánh Hà Nội", "Chi nhánh Sài Gòn"],
    }

    failed(invoke("teams", "move", "Minh Phát", "--parent", "Telesales HN"), EXIT_FAILED, "Telesales HN", "cycle")
    failed(invoke("teams", "move", "Chi nhánh Hà Nội", "--parent", "Chi nhánh Hà Nội"), EXIT_FAILED, "cycle")
    assert crm.teams.get("Minh Phát").parent is None
    moved = as_json(invoke("--format", "json", "teams", "move", "Telesales HN", "--parent", "Chi nhánh Sài Gòn"))
    assert moved["parent"] == "Chi nhánh Sài Gòn"
    assert as_json(invoke("--format", "json", "teams", "move", "Telesales HN", "--top"))["parent"] is None
    failed(invoke("teams", "move", "Telesales HN"), EXIT_USAGE, "--parent", "--top")
    failed(invoke("teams", "move", "Telesales HN", "--top", "--parent", "Minh Phát"), EXIT_USAGE, "exactly one")

    assert as_json(invoke("--format", "json", "teams", "remove-member", "Telesales HN", "lan.nguyen"))["members"] == []
    failed(invoke("teams", "add", "Minh Phát"), EXIT_FAILED, "Minh Phát", "already exists")
    failed(invoke("teams", "add", "Kho", "--parent", "Không có"), EXIT_FAILED, "Không có")
    failed(invoke("teams", "add-member", "Minh Phát", "ghost"), EXIT_FAILED, "ghost")
    failed(invoke("teams", "show", "Không có"), EXIT_FAILED, "team", "Không có")
    assert "Kho" not in {t.name for t in crm.teams.list()}


# -- roles and permissions ---------------------------------------------------------------------------------------


def test_roles_list_show_add_grant_revoke_assign_delete(invoke: Invoke, crm: Any) -> None:
    names = [r["name"] for r in as_json(invoke("--format", "json", "roles", "list"))]
    assert names == ["administrator", "manager", "marketing", "read-only", "sales", "support"]
    assert "sales" in ok(invoke("roles", "list"))
    sales = ok(invoke("roles", "show", "sales"))
    assert "Role sales" in sales
    assert any(line.split()[:3] == ["customers.read", "own", "core"] for line in sales.splitlines())

    role = as_json(
        invoke(
            "--format",
            "json",
            "roles",
            "add",
            "telesales",
            "--description",
            "gọi khách của mình",
            "--grant",
            "customers.read=own",
            "--grant",
            "interactions.log=own",
        )
    )
    assert role["grants"] == {"customers.read": "own", "interactions.log": "own"}
    assert role["description"] == "gọi khách của mình"
    assert (
        as_json(invoke("--format", "json", "roles", "grant", "telesales", "customers.update", "--scope", "team"))[
            "grants"
        ]["customers.update"]
        == "team"
    )
    assert (
        as_json(invoke("--format", "json", "roles", "grant", "telesales", "customers.read"))["grants"]["customers.read"]
        == "all"
    )
    assert (
        "interactions.log"
        not in as_json(invoke("--format", "json", "roles", "revoke", "telesales", "interactions.log"))["grants"]
    )

    ok(invoke("users", "add", "lan.nguyen"))
    assert as_json(invoke("--format", "json", "roles", "assign", "lan.nguyen", "telesales"))["roles"] == ["telesales"]
    failed(invoke("roles", "delete", "telesales"), EXIT_FAILED, "telesales", "lan.nguyen")
    assert as_json(invoke("--format", "json", "roles", "unassign", "lan.nguyen", "telesales"))["roles"] == []
    assert ok(invoke("roles", "delete", "telesales")).strip() == "role telesales deleted"
    failed(invoke("roles", "show", "telesales"), EXIT_FAILED, "role", "telesales")
    changes = [(e["action"], e["entity_id"]) for e in as_json(invoke("--format", "json", "audit", "--entity", "role"))]
    assert (
        ("grant", "telesales") in changes and ("assign", "telesales") in changes and ("delete", "telesales") in changes
    )


def test_a_role_with_an_unknown_permission_or_scope_is_refused_naming_it(invoke: Invoke, crm: Any) -> None:
    failed(
        invoke("roles", "add", "pilot", "--grant", "customers.read=own", "--grant", "customers.steal=all"),
        EXIT_FAILED,
        "customers.steal",
    )
    failed(invoke("roles", "add", "pilot", "--grant", "customers.read=everyone"), EXIT_FAILED, "everyone")
    failed(invoke("roles", "add", "pilot", "--grant", "users.admin=own"), EXIT_FAILED, "users.admin", "all")
    failed(invoke("roles", "add", "pilot", "--grant", "customers.read"), EXIT_USAGE, "--grant")
    assert "pilot" not in {r.name for r in crm.roles.list()}
    failed(invoke("roles", "grant", "sales", "customers.steal"), EXIT_FAILED, "customers.steal")
    failed(invoke("roles", "grant", "sales", "customers.read", "--scope", "everyone"), EXIT_USAGE, "--scope")
    failed(invoke("roles", "grant", "king", "customers.read"), EXIT_FAILED, "king")
    failed(invoke("roles", "revoke", "sales", "customers.merge"), EXIT_FAILED, "customers.merge")
    failed(invoke("roles", "assign", "ghost", "sales"), EXIT_FAILED, "ghost")
    assert crm.roles.get("sales").grants["customers.read"] == "own"


class _Stamps:
    @hookimpl
    def crmkit_permissions(self) -> list[Permission]:
        return [
            Permission("stamps.grant", "give loyalty stamps", roles={"sales": "own", "manager": "team"}),
            Permission("stamps.setup", "configure stamp cards", scoped=False),
        ]


def test_permissions_list_shows_every_declared_permission_with_its_plugin(invoke: Invoke) -> None:
    stamps = Plugin("stamps", hooks=_Stamps())
    rows = {r["permission"]: r for r in as_json(invoke("--format", "json", "permissions", "list", plugins=[stamps]))}
    for core in (
        "customers.read",
        "customers.contact_details",
        "customers.export",
        "interactions.log",
        "users.admin",
        "audit.read",
        "settings.admin",
    ):
        assert rows[core]["plugin"] == "core", core
    assert rows["customers.read"]["scoped"] is True and rows["users.admin"]["scoped"] is False
    assert rows["customers.read"]["default_roles"]["sales"] == "own"
    assert rows["stamps.grant"] == {
        "permission": "stamps.grant",
        "plugin": "stamps",
        "scoped": True,
        "description": "give loyalty stamps",
        "default_roles": {"sales": "own", "manager": "team"},
    }
    assert rows["stamps.setup"]["scoped"] is False and rows["stamps.setup"]["default_roles"] == {}
    table = ok(invoke("permissions", "list", plugins=[stamps]))
    line = next(line for line in table.splitlines() if line.startswith("stamps.grant"))
    assert line.split()[1:3] == ["stamps", "yes"] and "sales (own), manager (team)" in line
    assert "stamps.grant" not in ok(invoke("permissions", "list"))  # only enabled plugins' permissions


# -- acting as a user --------------------------------------------------------------------------------------------


def test_user_option_acts_with_the_users_permissions_and_scope(invoke: Invoke, crm: Any) -> None:
    ok(invoke("teams", "add", "Hà Nội"))
    ok(invoke("users", "add", "lan.nguyen", "--role", "sales", "--team", "Hà Nội"))
    ok(invoke("users", "add", "minh.tran", "--role", "sales", "--team", "Hà Nội"))
    ok(invoke("users", "add", "thu.ngan", "--role", "read-only"))
    ok(invoke("users", "add", "hai.pham", "--role", "manager", "--team", "Hà Nội"))
    lans = add(invoke, "--name", "Phạm Minh Châu", "--phone", "0987654321", "--owner", "lan.nguyen")
    minhs = add(invoke, "--name", "Đỗ Văn Hùng", "--phone", "0912345678", "--owner", "minh.tran")
    nobodys = add(invoke, "--name", "Lê Thị Hoa")

    seen = as_json(invoke("--user", "lan.nguyen", "--format", "json", "customers", "find"))
    assert [(c["id"], c["phone"]) for c in seen] == [(lans, "+84987654321")]
    assert [
        c["id"] for c in as_json(invoke("--format", "json", "customers", "find", env={"CRMKIT_USER": "minh.tran"}))
    ] == [minhs]
    assert {c["id"] for c in as_json(invoke("--user", "hai.pham", "--format", "json", "customers", "find"))} == {
        lans,
        minhs,
    }
    assert {c["id"] for c in as_json(invoke("--format", "json", "customers", "find"))} == {lans, minhs, nobodys}
    masked = {
        c["id"]: c["phone"] for c in as_json(invoke("--user", "thu.ngan", "--format", "json", "customers", "find"))
    }
    assert set(masked) == {lans, minhs, nobodys} and "+84987654321" not in masked.values()
    assert masked[lans] and masked[lans].endswith("321") and "*" in masked[lans]

    failed(invoke("--user", "lan.nguyen", "customers", "show", str(minhs)), EXIT_FAILED, f"customer {minhs} not found")
    ok(invoke("--user", "lan.nguyen", "customers", "update", str(lans), "--stage", "customer"))
    ok(invoke("--user", "lan.nguyen", "interactions", "log", str(lans), "phone", "--subject", "Hỏi giá"))
    assert crm.interactions.timeline(lans).items[0].employee == "lan.nguyen"

    line = failed(invoke("--user", "lan.nguyen", "users", "add", "hacker"), EXIT_FAILED, "lan.nguyen", "users.admin")
    assert line == "error: user 'lan.nguyen' lacks permission users.admin"
    failed(invoke("--user", "lan.nguyen", "roles", "grant", "sales", "customers.read"), EXIT_FAILED, "users.admin")
    failed(
        invoke("--user", "thu.ngan", "customers", "update", str(lans), "--stage", "lead"),
        EXIT_FAILED,
        "customers.update",
    )
    assert "hacker" not in {u.username for u in crm.users.list()}
    assert crm.roles.get("sales").grants["customers.read"] == "own"
    assert crm.customers.get(lans).lifecycle_stage == "customer"

    entries = as_json(invoke("--format", "json", "audit", "--limit", "100"))
    assert ("lan.nguyen", "update", str(lans)) in [(e["actor"], e["action"], e["entity_id"]) for e in entries]
    denied = [(e["actor"], e["entity_id"]) for e in entries if e["action"] == "denied"]
    assert ("lan.nguyen", "users.admin") in denied and ("thu.ngan", "customers.update") in denied


def test_an_unknown_or_disabled_user_is_one_line_and_runs_nothing(invoke: Invoke, crm: Any) -> None:
    ok(invoke("users", "add", "lan.nguyen", "--role", "administrator"))
    assert (
        failed(invoke("--user", "ghost", "customers", "find"), EXIT_FAILED)
        == "error: --user ghost: user 'ghost' not found"
    )
    failed(invoke("customers", "add", "--name", "Ma", env={"CRMKIT_USER": "ghost"}), EXIT_FAILED, "ghost")
    ok(invoke("users", "disable", "lan.nguyen"))
    failed(
        invoke("--user", "lan.nguyen", "customers", "add", "--name", "Ma"), EXIT_FAILED, "--user lan.nguyen", "disabled"
    )
    assert crm.customers.find().items == []
    ok(invoke("users", "enable", "lan.nguyen"))
    ok(invoke("--user", "lan.nguyen", "customers", "add", "--name", "Ma"))
    assert as_json(invoke("--format", "json", "audit", "--entity", "customer"))[0]["actor"] == "lan.nguyen"


def test_the_cli_context_acts_as_the_user_until_closed(crm: Any) -> None:
    add_user(crm, "lan.nguyen", roles=["sales"])
    state = CLIContext(db=url_of(crm), user="lan.nguyen", plugins=[])
    opened = state.crm
    assert opened.access.principal.username == "lan.nguyen" and opened.actor == "lan.nguyen"
    state.close()
    assert opened.access.principal.is_system and state._crm is None
    state.close()  # twice is harmless

    refused = CLIContext(db=url_of(crm), user="ghost", plugins=[])
    with pytest.raises(crmkit.CRMError, match="--user ghost: user 'ghost' not found"):
        refused.crm  # noqa: B018 - opening the CRM is what refuses
    assert refused._crm is None and crm.access.principal.is_system
