"""``crmkit.plugin_api``, the one import place of what plugins may use, and the contract holding plugins to it."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

import crmkit.plugin_api as api
from crmkit.errors import PermissionDenied, ValidationError
from crmkit.testing import add_user

ROOT = Path(__file__).resolve().parents[1]


def test_every_public_name_is_the_object_of_its_home_module():
    for name, module in api._HOME_OF.items():
        home = importlib.import_module(module)
        expected = importlib.import_module(f"crmkit.{name}") if module == "crmkit" else getattr(home, name)
        assert getattr(api, name) is expected, name
    assert sorted(api.__all__) == sorted([*api._HOME_OF, "CoreTables", "core_tables"])  # each name once


def test_the_typed_imports_name_exactly_the_public_names():
    """The ``TYPE_CHECKING`` imports (what mypy and editors see) and the lazy table agree name for name."""
    tree = ast.parse(Path(api.__file__).read_text(encoding="utf-8"))
    typed = {
        alias.asname or alias.name: node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("crmkit")
        for alias in node.names
    }
    assert typed == api._HOME_OF


def test_core_tables_are_the_cores_tables_read_only_by_name():
    from crmkit.core import tables

    for name in ("customers", "interactions", "contact_points", "tags", "consents", "memberships"):
        assert getattr(api.core_tables, name) is getattr(tables, name)
    assert {"id", "name", "owner", "lifecycle_stage", "created_at"} <= set(api.core_tables.customers.c.keys())
    assert not hasattr(api.core_tables, "audit_log")  # private: not promised to plugins


def test_a_name_outside_the_api_is_refused_clearly():
    with pytest.raises(AttributeError, match=r"crmkit.plugin_api has no 'audit_log': it is not part of the plugin API"):
        api.audit_log  # noqa: B018


def test_the_import_contract_fails_a_plugin_importing_a_private_module(tmp_path):
    """The pyproject contract, pointed at a plugin that imports ``crmkit.core.tables``, is broken by name; the same
    plugin importing through ``crmkit.plugin_api`` keeps it."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    contract = next(c for c in config["contracts"] if c["name"] == "Bundled plugins use only crmkit's plugin API")
    package = tmp_path / "crmkit_vendor"
    package.mkdir()
    (package / "__init__.py").write_text("")
    forbidden = ", ".join(f'"{m}"' for m in contract["forbidden_modules"])
    settings = tmp_path / "contracts.ini"
    settings.write_text(
        "[importlinter]\nroot_packages =\n    crmkit\n    crmkit_vendor\n\n"
        "[importlinter:contract:api]\n"
        f"name = {contract['name']}\ntype = forbidden\nsource_modules = crmkit_vendor\n"
        f"forbidden_modules =\n"
        + "".join(f"    {m}\n" for m in forbidden.replace('"', "").split(", "))
        + "allow_indirect_imports = true\n"
    )

    def lint(source: str) -> subprocess.CompletedProcess[str]:
        (package / "models.py").write_text(source)
        return subprocess.run(
            [str(Path(sys.executable).with_name("lint-imports")), "--config", str(settings), "--no-cache"],
            cwd=tmp_path,
            env={"PYTHONPATH": f"{tmp_path}:{ROOT}", "PATH": str(Path(sys.executable).parent)},
            capture_output=True,
            text=True,
        )

    private = lint("from crmkit.core.tables import customers\n")
    assert private.returncode == 1, private.stdout
    assert "crmkit_vendor.models -> crmkit.core.tables" in private.stdout
    public = lint("from crmkit.plugin_api import customers\nfrom crmkit.money import Money\n")
    assert public.returncode == 0, public.stdout


def test_the_plugins_are_held_to_the_api_with_no_exception_but_migrations():
    """The contract's debt list is empty: only Alembic's column types in migrations may name a private module."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    contract = next(c for c in config["contracts"] if c["name"] == "Bundled plugins use only crmkit's plugin API")
    assert contract["ignore_imports"] == ["*.migrations.** -> crmkit.core.types"]


# --- core data through the core's services: the audit log -------------------------------------------------------


def test_a_plugin_reads_one_entitys_history_under_its_own_permission_and_scope(crm):
    """``crm.audit.history`` on the plugin's connection: one entity's entries of one action, newest first, only
    those about customers the user's scope of the named permission reaches — no ``audit.read`` needed."""
    add_user(crm, "lan", grants={"customers.read": "own"})
    add_user(crm, "hoa", grants={"customers.read": "own"})
    add_user(crm, "khach", grants={"customers.create": "own"})
    hers = crm.customers.add(name="Khách của Lan", owner="lan")
    theirs = crm.customers.add(name="Khách của Hoa", owner="hoa")
    with crm.transaction() as session:
        for to in ("silver", "gold"):
            crm.audit.record(session, "move", "tier", "vip:1", customer_id=hers.id, changes={"to": to})
        crm.audit.record(session, "note", "tier", "vip:1", customer_id=hers.id, changes={"text": "x"})
        crm.audit.record(session, "move", "tier", "vip:1", customer_id=theirs.id, changes={"to": "bronze"})
        crm.audit.record(session, "move", "tier", "vip:2", customer_id=hers.id, changes={"to": "platinum"})

    def history(user: str) -> list[tuple[str, int | None, Any]]:
        with crm.as_user(user), crm.reading() as conn:
            found = crm.audit.history(conn, "tier", "vip:1", permission="customers.read", action="move")
        return [(e.action, e.customer_id, e.changes) for e in found]

    assert history("lan") == [("move", hers.id, {"to": "gold"}), ("move", hers.id, {"to": "silver"})]
    assert history("hoa") == [("move", theirs.id, {"to": "bronze"})]
    with pytest.raises(PermissionDenied):
        crm.as_user("lan").audit.entries()  # the whole log stays behind audit.read
    with pytest.raises(PermissionDenied):
        history("khach")  # the named permission is required
    with crm.reading() as conn, pytest.raises(ValidationError, match="limit"):
        crm.audit.history(conn, "tier", "vip:1", permission="customers.read", limit=0)


def test_an_erasure_clears_what_entries_said_in_the_erasing_transaction(crm):
    """``crm.audit.clear_changes`` keeps who did what and when, forgets the changes — and rolls back with the
    plugin's transaction."""
    with crm.transaction() as session:
        for i in (1, 2, 3):
            crm.audit.record(session, "add", "probe", i, changes={"address": f"an{i}@example.vn"})

    def changes() -> dict[str, Any]:
        return {e.entity_id: e.changes for e in crm.audit.entries(entity="probe").items}

    with pytest.raises(RuntimeError), crm.transaction() as session:
        crm.audit.clear_changes(session, "probe", [1, 2])
        raise RuntimeError("the erasure failed after")
    assert changes()["1"] == {"address": "an1@example.vn"}  # one transaction: nothing half-cleared
    with crm.transaction() as session:
        crm.audit.clear_changes(session, "probe", [1, 2, 2])
    assert changes() == {"1": None, "2": None, "3": {"address": "an3@example.vn"}}
    assert {(e.entity_id, e.action) for e in crm.audit.entries(entity="probe").items} == {
        ("1", "add"),
        ("2", "add"),
        ("3", "add"),
    }
