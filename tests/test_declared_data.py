"""Declared personal data (``Plugin(personal_data=…)``): the core exports, erases, merges and unmerges a plugin's
customer-owned tables with no hook code in the plugin, and lists what it holds.

The plugin here declares two tables and writes no privacy hook: ``declared_answers`` (scores kept for the
statistics, the free-text comment cleared on erasure) and ``declared_requests`` (deleted on erasure). It makes
its tables at start-up, so each test gets them on SQLite and PostgreSQL without a migration lineage.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from crmkit import CRM, Owned, Plugin, PluginError, Retained, hookimpl
from crmkit.core.types import Id, customer_fk
from crmkit.testing import PluginContract

metadata = sa.MetaData()
answers = sa.Table(
    "declared_answers",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    customer_fk(index=True),
    sa.Column("score", sa.Integer, nullable=False),
    sa.Column("comment", sa.Text),
)
requests = sa.Table(
    "declared_requests",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    customer_fk(index=True),
    sa.Column("sent_to", sa.String(200), nullable=False),
)
PERSONAL_DATA = {
    "declared_answers": Owned(
        "the customer's survey answers", erase=Retained("scores feed the statistics", personal=("comment",))
    ),
    "declared_requests": Owned("where each survey was sent"),
}


class MakesTables:
    @hookimpl
    def crmkit_startup(self, crm: Any) -> None:
        metadata.create_all(crm.engine, checkfirst=True)


def declaring(name: str = "declared", **overrides: Any) -> Plugin:
    """The test plugin (no export, erase or merge hook), with ``overrides`` of its ``Plugin`` fields."""
    fields: dict[str, Any] = {"hooks": MakesTables(), "tables": metadata, "personal_data": PERSONAL_DATA}
    return Plugin(name, **(fields | overrides))


def populate(crm: Any, customer_id: int) -> None:
    """One answer (its comment names the customer) and one request about the customer."""
    name = crm.customers.get(customer_id).name
    with crm.transaction() as session:
        conn = session.connection()
        conn.execute(answers.insert().values(customer_id=customer_id, score=9, comment=f"{name} khen nhân viên"))
        conn.execute(requests.insert().values(customer_id=customer_id, sent_to=f"{name} <khach@example.vn>"))


def rows(crm: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of both tables, in id order."""
    with crm.reading() as conn:
        return {
            "answers": [tuple(r) for r in conn.execute(sa.select(answers).order_by(answers.c.id))],
            "requests": [tuple(r) for r in conn.execute(sa.select(requests).order_by(requests.c.id))],
        }


class TestDeclaredContract(PluginContract):
    """The contract kit's own checks accept the declared tables as covered, unchanged."""

    plugin = declaring()

    def populate(self, crm: Any, customer_id: int) -> None:
        populate(crm, customer_id)

    def test_contract_every_table_has_its_migrations(self, crm_factory: Any) -> None:
        """Not this plugin's subject: it makes its tables at start-up (the kit rightly refuses that)."""

    def test_contract_migrations_down_and_up(self, crm_factory: Any) -> None:
        """As above: no migration lineage to check."""


# --- the declaration -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("personal_data", "message"),
    [
        (
            {"declared_answer": Owned("answers")},
            "plugin broken: personal_data names table 'declared_answer', which is not one of its tables",
        ),
        (
            {"declared_answers": Owned("answers", erase=Retained("statistics", personal=("coment",)))},
            "plugin broken: personal_data['declared_answers'] names column 'coment', which table declared_answers "
            "does not have",
        ),
    ],
)
def test_a_declaration_naming_an_unknown_table_or_column_is_one_clear_error_and_nothing_is_written(
    crm_factory: Any, personal_data: dict[str, Owned], message: str
) -> None:
    with pytest.raises(PluginError) as failed:
        crm_factory(plugins=[declaring("broken", personal_data=personal_data)])
    assert str(failed.value) == message
    url = crm_factory().engine.url.render_as_string(hide_password=False)
    crm = CRM(url, plugins=[declaring("broken", personal_data=personal_data)], strict=False)
    try:  # not strict: the plugin is left out, named, and nothing of it is written
        info = crm.registry.infos["broken"]
        assert info.status == "failed" and info.reason == message.removeprefix("plugin broken: ")
        with crm.reading() as conn:
            assert not {"declared_answers", "declared_requests"} & set(sa.inspect(conn).get_table_names())
    finally:
        crm.close()


def test_a_table_without_a_customer_column_is_refused() -> None:
    from crmkit.core.declared_data import declared

    loose = sa.MetaData()
    sa.Table("loose_things", loose, sa.Column("id", Id, primary_key=True))
    plugin = Plugin("loose", tables=loose, personal_data={"loose_things": Owned("things")})
    with pytest.raises(PluginError, match=r"^plugin loose: personal_data names table 'loose_things', which has no co"):
        declared(plugin)


def test_bad_declarations_are_refused_when_the_plugin_object_is_made() -> None:
    with pytest.raises(ValueError, match=r"personal_data\['t'\] must be Owned\(what, erase=…\), got str"):
        Plugin("p", personal_data={"t": "answers"})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match=r'Owned\(erase=…\) must be "delete" or Retained'):
        Owned("answers", erase="anonymize")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"'t' is in both personal_data and retained_tables"):
        Plugin("p", personal_data={"t": Owned("a", erase=Retained("why"))}, retained_tables={"t": Retained("why")})


def test_a_retained_declaration_counts_as_a_retained_table() -> None:
    assert declaring().retained_tables == {"declared_answers": Retained("scores feed the statistics", ("comment",))}


# --- what the core does with it ------------------------------------------------------------------------------


def test_export_lists_the_declared_rows_in_the_plugins_section(crm_factory: Any) -> None:
    crm = crm_factory(plugins=[declaring()])
    customer = crm.customers.add(name="Lê Thị Hồng", email="hong@example.vn")
    other = crm.customers.add(name="Someone Else")
    populate(crm, customer.id)
    populate(crm, other.id)
    section = crm.customers.export_data(customer.id)["declared"]
    assert section == {
        "declared_answers": [
            {"id": 1, "customer_id": customer.id, "score": 9, "comment": "Lê Thị Hồng khen nhân viên"}
        ],
        "declared_requests": [{"id": 1, "customer_id": customer.id, "sent_to": "Lê Thị Hồng <khach@example.vn>"}],
    }


def test_erase_clears_the_personal_columns_of_kept_rows_and_deletes_the_others(crm_factory: Any) -> None:
    crm = crm_factory(plugins=[declaring()])
    customer = crm.customers.add(name="Lê Thị Hồng")
    other = crm.customers.add(name="Someone Else")
    populate(crm, customer.id)
    populate(crm, other.id)
    crm.customers.erase(customer.id)
    assert rows(crm) == {
        "answers": [(1, customer.id, 9, None), (2, other.id, 9, "Someone Else khen nhân viên")],
        "requests": [(2, other.id, "Someone Else <khach@example.vn>")],
    }


def test_merge_moves_the_rows_and_unmerge_gives_them_back(crm_factory: Any) -> None:
    crm = crm_factory(plugins=[declaring()])
    kept, merged, third, fourth = (crm.customers.add(name=f"Khách {n}") for n in range(4))
    for customer in (kept, merged, third, fourth):
        populate(crm, customer.id)
    merge = crm.customers.merge_many([(kept.id, merged.id), (third.id, fourth.id)])[0]
    owners = {table: [r[1] for r in found] for table, found in rows(crm).items()}
    assert owners == {
        "answers": [kept.id, kept.id, third.id, third.id],
        "requests": [kept.id, kept.id, third.id, third.id],
    }
    assert len(crm.customers.export_data(kept.id)["declared"]["declared_answers"]) == 2
    crm.customers.unmerge(merge.id)
    owners = {table: [r[1] for r in found] for table, found in rows(crm).items()}
    assert owners == {
        "answers": [kept.id, merged.id, third.id, third.id],
        "requests": [kept.id, merged.id, third.id, third.id],
    }


def test_hooks_still_add_to_a_declared_plugins_section(crm_factory: Any) -> None:
    class AlsoExports(MakesTables):
        @hookimpl
        def crmkit_customer_export(self, customer: Any) -> dict[str, Any]:
            return {"declared": {"settings": [{"language": "vi"}]}}

    crm = crm_factory(plugins=[declaring(hooks=AlsoExports())])
    customer = crm.customers.add(name="Lê Thị Hồng")
    populate(crm, customer.id)
    section = crm.customers.export_data(customer.id)["declared"]
    assert sorted(section) == ["declared_answers", "declared_requests", "settings"]
    assert section["settings"] == [{"language": "vi"}]


def test_plugins_holds_lists_what_each_plugin_declares(crm_factory: Any) -> None:
    import json

    from click.testing import CliRunner

    from crmkit.cli import main
    from crmkit.cli.context import CLIContext

    crm = crm_factory(plugins=["notes", declaring()])
    result = CliRunner().invoke(main.cli, ["--format", "json", "plugins", "holds"], obj=CLIContext(crm=crm))
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [
        {
            "plugin": "declared",
            "table": "declared_answers",
            "holds": "the customer's survey answers",
            "erasure": "kept (scores feed the statistics); clears comment",
        },
        {
            "plugin": "declared",
            "table": "declared_requests",
            "holds": "where each survey was sent",
            "erasure": "deleted",
        },
        {
            "plugin": "notes",
            "table": "notes",
            "holds": "free-text notes staff wrote about the customer",
            "erasure": "deleted",
        },
    ]
    unknown = CliRunner().invoke(main.cli, ["plugins", "holds", "nosuch"], obj=CLIContext(crm=crm))
    assert unknown.exit_code == 2 and "no enabled plugin named 'nosuch'" in unknown.output


# --- crashes and races -----------------------------------------------------------------------------------------

#: Loads the test plugin from this file, then erases (waiting, inside the transaction, to be killed after the
#: declared tables are erased) or merges, printing the outcome.
WORKER = """
import sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import crmkit, test_declared_data as here
action, url, flag, go = sys.argv[2], sys.argv[3], Path(sys.argv[4]), Path(sys.argv[5])
crm = crmkit.CRM(url, plugins=[here.declaring()])
ids = [int(x) for x in sys.argv[6:]]
if action == "erase-then-hang":
    from crmkit.core import declared_data
    erase = declared_data.erase
    def erase_then_hang(*args, **kwargs):
        erase(*args, **kwargs)
        flag.touch()
        time.sleep(120)
    declared_data.erase = erase_then_hang
    crm.customers.erase(ids[0])
else:
    flag.touch()
    while not go.exists():
        time.sleep(0.005)
    try:
        crm.customers.erase(ids[0]) if action == "erase" else crm.customers.merge(ids[0], ids[1])
        print("ok")
    except crmkit.CRMError as exc:
        print(f"refused: {exc}")
"""


def worker(crm: Any, tmp_path: Path, action: str, flag: str, *ids: int) -> subprocess.Popen[str]:
    url = crm.engine.url.render_as_string(hide_password=False)
    args = [str(Path(__file__).parent), action, url, str(tmp_path / flag), str(tmp_path / "go"), *map(str, ids)]
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_for(paths: list[Path], processes: list[subprocess.Popen[str]]) -> None:
    deadline = time.monotonic() + 120
    while not all(p.exists() for p in paths) and time.monotonic() < deadline:
        assert all(p.poll() is None for p in processes), [p.communicate() for p in processes]
        time.sleep(0.02)
    assert all(p.exists() for p in paths)


def test_an_erasure_killed_after_erasing_the_declared_tables_leaves_them_whole(
    crm_factory: Any, tmp_path: Path
) -> None:
    crm = crm_factory(plugins=[declaring()])
    customer = crm.customers.add(name="Lê Thị Hồng")
    populate(crm, customer.id)
    before = rows(crm)
    process = worker(crm, tmp_path, "erase-then-hang", "ready", customer.id)
    wait_for([tmp_path / "ready"], [process])
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert rows(crm) == before  # nothing half-erased
    assert crm.customers.get(customer.id).name == "Lê Thị Hồng"
    crm.customers.erase(customer.id)
    assert rows(crm) == {"answers": [(1, customer.id, 9, None)], "requests": []}


def test_an_erasure_racing_a_merge_of_the_same_customer_one_wins_cleanly(crm_factory: Any, tmp_path: Path) -> None:
    crm = crm_factory(plugins=[declaring()])
    kept, merged = crm.customers.add(name="Khách giữ"), crm.customers.add(name="Lê Thị Hồng")
    populate(crm, kept.id)
    populate(crm, merged.id)
    racers = [
        worker(crm, tmp_path, "erase", "ready-erase", merged.id),
        worker(crm, tmp_path, "merge", "ready-merge", kept.id, merged.id),
    ]
    wait_for([tmp_path / "ready-erase", tmp_path / "ready-merge"], racers)
    (tmp_path / "go").touch()
    outcomes = []
    for process in racers:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        outcomes.append(out.strip())
    erased, merging = outcomes
    assert erased == "ok"
    after = rows(crm)
    if merging == "ok":  # the merge first: erasing the merged id erased the customer it went into, all of it
        assert after == {"answers": [(1, kept.id, 9, None), (2, kept.id, 9, None)], "requests": []}
    else:  # the erasure first: the merge is refused and the kept customer keeps its own rows
        assert merging.startswith("refused:"), merging
        assert after == {
            "answers": [(1, kept.id, 9, "Khách giữ khen nhân viên"), (2, merged.id, 9, None)],
            "requests": [(1, kept.id, "Khách giữ <khach@example.vn>")],
        }
