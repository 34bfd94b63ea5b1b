"""The search keys' storage the bulk import writes fast, and the core migration that converts older databases."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from crmkit import migrations
from crmkit.core import tables as t
from crmkit.testing import add_user

OWNER_INDEX = "ix_customer_search_keys_owner_key_customer_id"


def _storage(conn: sa.Connection) -> tuple[bool, str]:
    """Whether each key is stored once (SQLite: a WITHOUT ROWID table; PostgreSQL has no such table, so True)
    and the definition of the (owner, key) index."""
    if conn.dialect.name == "sqlite":
        table = conn.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'customer_search_keys'"
        ).scalar_one()
        index = conn.exec_driver_sql(f"SELECT sql FROM sqlite_master WHERE name = '{OWNER_INDEX}'").scalar_one()
        return "WITHOUT ROWID" in table.upper(), index
    index = conn.exec_driver_sql(f"SELECT indexdef FROM pg_indexes WHERE indexname = '{OWNER_INDEX}'").scalar_one()
    return True, index


def test_the_core_migration_stores_the_keys_of_an_older_database_once_and_search_finds_the_same(
    crm_factory: Any,
) -> None:
    crm = crm_factory()
    add_user(crm, "lan", grants={"customers.read": "own"})
    lan = crm.as_user("lan")
    an = crm.customers.add(name="Nguyễn Văn An", email="an@example.vn", phone="0912 345 678", owner="lan")
    binh = crm.customers.add(name="Trần Văn Bình", email="binh@example.vn")
    crm.customers.add(name="Lê Thị An", email="le.an@example.vn", owner="lan")
    queries = ("van", "an", "an@", "345678", "nguyen van", "le thi an")

    def found() -> dict[str, tuple[list[int], list[int]]]:
        return {q: ([x.id for x in crm.customers.find(q)], [x.id for x in lan.customers.find(q)]) for q in queries}

    def stored() -> set[tuple[Any, ...]]:
        with crm.reading() as conn:
            return {tuple(r) for r in conn.execute(sa.select(t.search_keys))}

    before, keys = found(), stored()
    assert before["van"][0] == sorted([an.id, binh.id]) and before["van"][1] == [an.id]
    core = migrations.core_lineage()
    migrations.downgrade(crm.engine, core, "crmkit_0009")
    with crm.engine.connect() as conn:
        once, index = _storage(conn)
        assert "WHERE" not in index.upper()  # the old shape: every key in the (owner, key) index
        assert not once or conn.dialect.name == "postgresql"
    assert found() == before
    later = crm.customers.add(name="Phạm Văn Cường", email="cuong@example.vn", owner="lan")  # under the old schema

    migrations.upgrade(crm.engine, [core])
    with crm.engine.connect() as conn:
        once, index = _storage(conn)
    assert once and "owner IS NOT NULL" in index
    assert {k for k in stored() if k[1] != later.id} == keys  # every key copied, none doubled
    assert found() == {**before, "van": (sorted([an.id, binh.id, later.id]), sorted([an.id, later.id]))}
    assert [x.id for x in lan.customers.find("cuong")] == [later.id]
    assert [x.id for x in crm.customers.find("binh")] == [binh.id] and len(lan.customers.find("binh")) == 0


def test_an_import_of_unowned_and_owned_customers_is_found_by_scoped_and_unscoped_searches(
    crm_factory: Any, tmp_path: Any
) -> None:
    """Unowned customers' keys are not in the (owner, key) index: a user's scoped search never shows them,
    and the unscoped search finds everyone."""
    from crmkit.core.transfer import import_customers

    crm = crm_factory()
    add_user(crm, "lan", grants={"customers.read": "own", "customers.create": "own"})
    path = tmp_path / "c.csv"
    path.write_text(
        "external_id,name,email,owner\nK1,Nguyễn Văn An,an@example.vn,lan\nK2,Nguyễn Văn Bình,binh@example.vn,\n",
        encoding="utf-8",
    )
    assert import_customers(crm, path).inserted == 2
    lan = crm.as_user("lan")
    assert [x.name for x in crm.customers.find("nguyen van")] == ["Nguyễn Văn An", "Nguyễn Văn Bình"]
    assert [x.name for x in lan.customers.find("nguyen van")] == ["Nguyễn Văn An"]
    crm.customers.update(crm.customers.find("binh").items[0].id, owner="lan")  # owned now: in the index
    assert [x.name for x in lan.customers.find("nguyen van")] == ["Nguyễn Văn An", "Nguyễn Văn Bình"]


def test_a_repeated_external_id_names_its_first_row_whichever_batches_hold_the_repeats(
    crm_factory: Any, tmp_path: Any
) -> None:
    """External ids are checked a batch at a time: a repeat names the file's first row with that id, whether
    that row is in the same batch or an earlier one, and the first row itself is imported."""
    from crmkit.core.transfer import import_customers
    from crmkit.testing import read_csv

    crm = crm_factory()
    rows = ["R1,An", "R2,Bình", "R1,Cường", "R3,Dũng", "R1,Giang", "R3,Hà", "R4,Khánh"]
    path = tmp_path / "c.csv"
    path.write_text("external_id,name\n" + "\n".join(rows) + "\n", encoding="utf-8")
    for batch_size in (1, 2, 3, 100):
        summary = import_customers(crm, path, batch_size=batch_size, reject_path=tmp_path / f"r{batch_size}.csv")
        reasons = {r["reject_row"]: r["reject_reason"] for r in read_csv(tmp_path / f"r{batch_size}.csv")}
        assert reasons == {
            "3": "external_id: 'R1' is also on row 1 of this file",
            "5": "external_id: 'R1' is also on row 1 of this file",
            "6": "external_id: 'R3' is also on row 4 of this file",
        }, batch_size
        assert summary.rejected == 3
    assert sorted(x.name for x in crm.customers.find(limit=10)) == ["An", "Bình", "Dũng", "Khánh"]
