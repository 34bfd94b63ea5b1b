"""The contract kit (``crmkit.testing.PluginContract``) fails deliberately broken plugins, each with a message
naming the hole: personal data kept after erasure, rows left behind, tables outside any migration lineage,
rows left on a merged customer, a permission declared but never checked, a dependency of the wrong version.

The broken plugins are built here as ``crmkit.Plugin`` objects (nothing installed); each owns one table about
customers, which it creates at start-up (that is itself a hole, checked on its own below).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest
import sqlalchemy as sa

from crmkit import Permission, Plugin, PluginError, Retained, hookimpl
from crmkit.core.types import Id, customer_fk
from crmkit.privacy import anonymize_rows, delete_rows, export_rows
from crmkit.testing import PluginContract


class Feedback:
    """Hooks of a plugin holding customers' feedback in its own table; ``erase`` says what erasure does to it
    (``"delete"``, ``"anonymize"`` clearing ``cleared``, or ``"forget"``), ``merge`` whether merges re-point it."""

    def __init__(self, name: str, *, erase: str = "delete", cleared: tuple[str, ...] = (), merge: bool = True) -> None:
        self.name = name
        self.metadata = sa.MetaData()
        self.table = sa.Table(
            f"{name}_feedback",
            self.metadata,
            sa.Column("id", Id, primary_key=True, autoincrement=True),
            customer_fk(),
            sa.Column("score", sa.Integer, nullable=False),
            sa.Column("comment", sa.Text),
        )
        self.erase, self.cleared, self.merge = erase, cleared, merge

    @hookimpl
    def crmkit_startup(self, crm: Any) -> None:
        self.metadata.create_all(crm.engine, checkfirst=True)

    @hookimpl
    def crmkit_customer_export(self, customer: Any, session: Any) -> dict[str, Any]:
        return {self.name: export_rows(session, [self.table], customer.id)}

    @hookimpl
    def crmkit_customer_erase(self, customer: Any, session: Any) -> None:
        if self.erase == "delete":
            delete_rows(session, [self.table], customer.id)
        elif self.erase == "anonymize":
            anonymize_rows(
                session, self.table, customer.id, {"score": self.table.c.score, **dict.fromkeys(self.cleared)}
            )

    @hookimpl
    def crmkit_customers_merged_many(self, pairs: Mapping[int, int], session: Any) -> None:
        if self.merge:
            conn = session.connection()
            for merged, kept in pairs.items():
                conn.execute(self.table.update().where(self.table.c.customer_id == merged).values(customer_id=kept))

    def add(self, crm: Any, customer_id: int) -> None:
        """A row about the customer whose comment names them, as feedback does."""
        name = crm.customers.get(customer_id).name
        with crm.transaction() as session:
            session.connection().execute(
                self.table.insert().values(customer_id=customer_id, score=9, comment=f"{name} khen nhân viên")
            )


def feedback_plugin(name: str, *, retained: Mapping[str, Retained] | None = None, **behaviour: Any) -> Plugin:
    hooks = Feedback(name, **behaviour)
    return Plugin(name, hooks=hooks, tables=hooks.metadata, retained_tables=retained or {})


def contract(plugin: Plugin, **members: Any) -> PluginContract:
    """A contract kit checking ``plugin``; its ``populate`` adds one feedback row."""

    def populate(self: Any, crm: Any, customer_id: int) -> None:
        plugin.hooks[0].add(crm, customer_id)

    kit = type(f"{plugin.name.title()}Contract", (PluginContract,), {"plugin": plugin, "populate": populate, **members})
    return kit()


# --- erasure -----------------------------------------------------------------------------------------------


def test_a_kept_row_still_holding_a_declared_personal_column_fails(crm_factory):
    plugin = feedback_plugin(
        "keepsnotes",
        erase="anonymize",
        cleared=(),
        retained={"keepsnotes_feedback": Retained("scores feed the statistics", personal=("comment",))},
    )
    with pytest.raises(AssertionError, match=r"erase kept keepsnotes_feedback\.comment = '.*' in a retained row"):
        contract(plugin).test_contract_export_and_erase_cover_customer_tables(crm_factory)


def test_a_kept_row_holding_the_customers_name_in_an_undeclared_column_fails(crm_factory):
    plugin = feedback_plugin(
        "forstats", erase="anonymize", retained={"forstats_feedback": Retained("comments are kept for statistics")}
    )
    with pytest.raises(AssertionError, match=r"erase kept the customer's name in forstats_feedback\.comment"):
        contract(plugin).test_contract_export_and_erase_cover_customer_tables(crm_factory)


def test_a_kept_row_with_its_personal_columns_cleared_passes(crm_factory):
    plugin = feedback_plugin(
        "clears",
        erase="anonymize",
        cleared=("comment",),
        retained={"clears_feedback": Retained("scores feed the statistics", personal=("comment",))},
    )
    contract(plugin).test_contract_export_and_erase_cover_customer_tables(crm_factory)


def test_rows_left_in_a_table_erasure_should_empty_fail(crm_factory):
    plugin = feedback_plugin("forgetful", erase="forget")
    with pytest.raises(AssertionError, match=r"erase left 1 rows about the customer in forgetful_feedback"):
        contract(plugin).test_contract_export_and_erase_cover_customer_tables(crm_factory)


def test_a_retained_declaration_naming_an_unknown_column_fails(crm_factory):
    plugin = feedback_plugin(
        "typo", erase="anonymize", retained={"typo_feedback": Retained("statistics", personal=("coment",))}
    )
    with pytest.raises(AssertionError, match=r"retained_tables\['typo_feedback'\] names unknown columns \['coment'\]"):
        contract(plugin).test_contract_export_and_erase_cover_customer_tables(crm_factory)


def test_retained_tables_take_retained_declarations_only():
    with pytest.raises(ValueError, match=r"retained_tables\['orders'\] must be Retained\(reason, personal="):
        Plugin("legacy", retained_tables={"orders": "kept by law"})  # type: ignore[dict-item]


# --- tables and migrations -----------------------------------------------------------------------------------


def test_declared_tables_without_migrations_fail(crm_factory):
    plugin = feedback_plugin("nomigrations")
    with pytest.raises(AssertionError, match=r"declares tables \['nomigrations_feedback'\] but no migrations"):
        contract(plugin).test_contract_every_table_has_its_migrations(crm_factory)


def test_db_current_lists_a_plugin_whose_tables_no_migration_makes(crm_factory):
    from crmkit.cli.db import lineage_rows

    crm = crm_factory(plugins=["notes", feedback_plugin("unmanaged")])
    rows = {row["lineage"]: row["state"] for row in lineage_rows(crm)}
    assert rows["notes"] == "up to date"
    assert rows["unmanaged"] == "no migrations for its tables"


def test_a_table_made_at_start_up_outside_any_lineage_fails(crm_factory):
    hooks = Feedback("stray")
    plugin = Plugin("stray", hooks=hooks)  # creates its table but declares none
    with pytest.raises(AssertionError, match=r"tables \['stray_feedback'\] are in the database but in no migration"):
        contract(plugin).test_contract_every_table_has_its_migrations(crm_factory)


# --- merges --------------------------------------------------------------------------------------------------


def test_rows_left_on_a_merged_customer_fail(crm_factory):
    plugin = feedback_plugin("nomerge", merge=False)
    with pytest.raises(AssertionError, match=r"after merge, 1 rows of nomerge_feedback still point at the merged"):
        contract(plugin).test_contract_merges_leave_no_row_on_the_merged_customer(crm_factory)


def test_rows_re_pointed_by_merges_pass(crm_factory):
    contract(feedback_plugin("merges")).test_contract_merges_leave_no_row_on_the_merged_customer(crm_factory)


# --- permissions ---------------------------------------------------------------------------------------------


class Declares:
    """Declares ``<name>.read`` and ``<name>.write``; its service ``crm.<name>.read`` checks neither."""

    def __init__(self, name: str) -> None:
        self.name = name

    @hookimpl
    def crmkit_permissions(self) -> list[Permission]:
        return [Permission(f"{self.name}.read", "read things"), Permission(f"{self.name}.write", "write things")]

    @hookimpl
    def crmkit_services(self, crm: Any) -> dict[str, Any]:
        class Lax:
            def read(self, customer_id: int) -> list[int]:
                return [customer_id]

        return {self.name: Lax()}

    def add(self, crm: Any, customer_id: int) -> None:
        """Nothing: this plugin holds no rows about customers."""


def test_a_declared_permission_no_call_shows_checked_fails(crm_factory):
    plugin = Plugin("lax", hooks=Declares("lax"))
    calls: Callable[[Any], Mapping[str, Any]] = lambda self: {"lax.read": lambda crm, cid: crm.lax.read(cid)}  # noqa: E731
    kit = contract(plugin, permission_calls=calls)
    with pytest.raises(AssertionError, match=r"declared permissions never shown to be checked .*: \['lax.write'\]"):
        kit.test_contract_every_permission_is_enforced(crm_factory)


def test_a_declared_permission_its_call_never_checks_fails(crm_factory):
    plugin = Plugin("laxer", hooks=Declares("laxer"))
    calls: Callable[[Any], Mapping[str, Any]] = lambda self: {  # noqa: E731
        "laxer.read": lambda crm, cid: crm.laxer.read(cid),
        "laxer.write": lambda crm, cid: crm.laxer.read(cid),
    }
    kit = contract(plugin, permission_calls=calls)
    with pytest.raises(pytest.fail.Exception, match=r"permission laxer.read is declared but never checked"):
        kit.test_contract_every_permission_is_enforced(crm_factory)


# --- requirements --------------------------------------------------------------------------------------------


class Empty:
    @hookimpl
    def crmkit_startup(self, crm: Any) -> None:
        """Nothing: a plugin must implement some hook."""


def test_the_kit_loads_what_a_plugin_requires(crm_factory):
    kit = contract(Plugin("reminders", hooks=Empty(), requires=("notes",)))
    kit.test_contract_loads_strictly(crm_factory)
    assert kit._crm(crm_factory).has_service("notes")


def test_a_required_plugin_of_the_wrong_version_is_a_mismatch(crm_factory):
    import importlib.metadata

    installed = importlib.metadata.version("crmkit-notes")
    kit = contract(Plugin("picky_notes", hooks=Empty(), requires=("notes>=2.0",)))
    with pytest.raises(PluginError) as failed:
        kit.test_contract_loads_strictly(crm_factory)
    assert str(failed.value) == (
        f"plugin picky_notes: version mismatch: requires notes>=2.0, but notes {installed} is installed"
    )
