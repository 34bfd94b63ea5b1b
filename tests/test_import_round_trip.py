"""Export then import: typed attributes and customer-to-customer links (memberships, ``referred_by``) survive."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from crmkit import CRM
from crmkit.cli.main import CLIContext, cli
from crmkit.core import tables as t
from crmkit.core.transfer import export_customers, import_customers
from crmkit.demo import add_staff, build_demo
from crmkit.testing import read_csv, write_csv

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def everything(crm: CRM) -> dict[str, dict[str, Any]]:
    """Everything the core holds per active customer, keyed by external id, links named by external id."""
    with crm.reading() as conn:
        ids = dict(
            conn.execute(
                sa.select(t.customers.c.id, t.customers.c.external_id).where(t.customers.c.status == "active")
            ).all()
        )
    held: dict[str, dict[str, Any]] = {}
    for customer_id, external_id in ids.items():
        customer = crm.customers.get(customer_id)
        data = attrs.asdict(customer, recurse=True)
        for volatile in ("id", "updated_at", "merged_into_id"):
            data.pop(volatile)
        data["consents"] = {channel: consent.granted for channel, consent in customer.consents.items()}
        data["organizations"] = [(ids[m.organization_id], m.role) for m in customer.organizations]
        referrer = customer.attributes.get("referred_by")
        data["attributes"] = {**customer.attributes, **({"referred_by": ids[referrer]} if referrer else {})}
        held[external_id] = data
    return held


def test_the_whole_demo_round_trips_through_csv_and_json_lines(
    crm_factory: Callable[..., CRM], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # on a server database the demo's e-mails go to ./crmkit-outbox
    source = crm_factory(plugins=None)  # as `crmkit demo`: every installed plugin
    build_demo(source, customers=150, seed=7, now=NOW)
    before = everything(source)
    assert any(data["organizations"] for data in before.values())  # the demo has memberships,
    assert any("referred_by" in data["attributes"] for data in before.values())  # referrals
    assert any(type(v) is int for data in before.values() for v in data["attributes"].values())  # and numbers
    for fmt in ("csv", "jsonl"):
        path = tmp_path / f"demo.{fmt}"
        assert export_customers(source, path, format=fmt) == len(before)
        target = crm_factory(plugins=None)
        add_staff(target)  # the owners (users are not customer data)
        summary = import_customers(target, path)
        assert (summary.inserted, summary.rejected, summary.unlinked, summary.reject_path) == (len(before), 0, 0, None)
        assert everything(target) == before, fmt
        again = import_customers(target, path)  # idempotent by external id: links included
        assert (again.unchanged, again.inserted, again.updated) == (len(before), 0, 0)
        assert everything(target) == before, fmt


def test_custom_fields_of_every_type_come_back_as_they_were_from_csv(
    crm_factory: Callable[..., CRM], tmp_path: Path
) -> None:
    source = crm_factory()
    for name, kind in [("so_con", "integer"), ("han_muc", "decimal"), ("ngay_cuoi", "date"), ("zalo", "bool")]:
        source.fields.add(name, kind)
    source.fields.add("hang", "choice", choices=["vàng", "bạc"])
    source.customers.add(
        name="Lê Thị Hoa",
        external_id="KH-1",
        tags=["vip", "tết"],
        attributes={"so_con": 2, "han_muc": "15000000.50", "ngay_cuoi": "02/09/2015", "zalo": True, "hang": "vàng"},
    )
    source.customers.add(name="Trần Văn Nam", external_id="KH-2", attributes={"so_con": -1, "zalo": False})
    before = everything(source)
    path = tmp_path / "khach.csv"
    export_customers(source, path)
    cells = {row["external_id"]: row for row in read_csv(path)}
    assert (cells["KH-1"]["attr_so_con"], cells["KH-1"]["attr_zalo"]) == ("2", "yes")
    target = crm_factory()
    for field in source.fields.list():
        target.fields.add(field.name, field.type, choices=field.choices)
    summary = import_customers(target, path)
    assert (summary.inserted, summary.rejected) == (2, 0)
    assert everything(target) == before
    assert target.customers.get_by_external_id("KH-2").attributes == {"so_con": -1, "zalo": False}


def linked_file(path: Path, people: int = 3, *, missing: str | None = None) -> Path:
    """People first, each a member of the organization and referred by the person after them (further down)."""
    rows = [
        [
            f"KH-{n}",
            "person",
            f"Phạm Minh Đức {n}",
            json.dumps([{"organization": "ORG-1", "role": "Kế toán, trưởng phòng"}], ensure_ascii=False),
            f"KH-{n + 1}" if n < people else "",
        ]
        for n in range(1, people + 1)
    ]
    if missing is not None:
        rows.append(["KH-X", "person", "Vũ Thị Lan", json.dumps([{"organization": missing, "role": None}]), missing])
    rows.append(["ORG-1", "organization", "Công ty TNHH Sao Mai", "", ""])
    return write_csv(path, ["external_id", "kind", "name", "organizations", "attr_referred_by"], rows)


def test_links_resolve_in_any_order_and_one_naming_no_customer_is_in_the_reject_file(
    crm_factory: Callable[..., CRM], tmp_path: Path
) -> None:
    crm = crm_factory(plugins=["sales", "loyalty"])
    path = linked_file(tmp_path / "khach.csv", missing="KH-NOPE")
    summary = import_customers(crm, path, batch_size=2)  # the organization is in a later batch than its members
    assert (summary.inserted, summary.rejected, summary.unlinked) == (5, 0, 1)
    org = crm.customers.get_by_external_id("ORG-1")
    first, second = crm.customers.get_by_external_id("KH-1"), crm.customers.get_by_external_id("KH-2")
    assert [(m.organization_id, m.role) for m in first.organizations] == [(org.id, "Kế toán, trưởng phòng")]
    assert first.attributes == {"referred_by": second.id}
    rejects = read_csv(summary.reject_path)
    row = rejects[0]
    assert [(r["reject_row"], r["external_id"]) for r in rejects] == [("4", "KH-X")]
    assert "organizations: no customer with external_id 'KH-NOPE'" in rejects[0]["reject_reason"]
    assert "attr_referred_by: no customer with external_id 'KH-NOPE'" in rejects[0]["reject_reason"]
    lan = crm.customers.get_by_external_id("KH-X")
    assert (lan.name, lan.organizations, lan.attributes) == ("Vũ Thị Lan", (), {})  # imported, without the links
    corrected = [{**row, "organizations": row["organizations"].replace("KH-NOPE", "ORG-1"), "attr_referred_by": "KH-1"}]
    fixed = import_customers(crm, write_csv(tmp_path / "fixed.csv", list(corrected[0]), [list(corrected[0].values())]))
    assert (fixed.updated + fixed.unchanged, fixed.unlinked, fixed.reject_path) == (1, 0, None)
    lan = crm.customers.get_by_external_id("KH-X")
    assert ([m.organization_id for m in lan.organizations], lan.attributes) == ([org.id], {"referred_by": first.id})


def test_the_command_prints_how_many_rows_were_imported_without_their_links(
    crm_factory: Callable[..., CRM], tmp_path: Path
) -> None:
    crm = crm_factory(plugins=["sales", "loyalty"])
    path = linked_file(tmp_path / "khach.csv", missing="ORG-9")
    url = crm.engine.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(
        cli,
        ["--db", url, "--format", "json", "customers", "import", str(path)],
        obj=CLIContext(plugins=["sales", "loyalty"]),
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)[0]
    assert (summary["inserted"], summary["rejected"], summary["unlinked"]) == (5, 0, 1)
    assert summary["reject_file"] == f"{path}.rejects.csv"


def test_an_internal_id_or_a_malformed_membership_rejects_the_row_naming_the_column(
    crm_factory: Callable[..., CRM], tmp_path: Path
) -> None:
    crm = crm_factory(plugins=["sales", "loyalty"])
    path = tmp_path / "khach.jsonl"
    lines = [
        {"external_id": "KH-1", "name": "An"},
        {"external_id": "KH-2", "name": "Bình", "attr_referred_by": 1},  # an id of another database
        {"external_id": "KH-3", "name": "Chi", "organizations": "ORG-1"},
    ]
    path.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines), encoding="utf-8")
    summary = import_customers(crm, path)
    assert (summary.inserted, summary.rejected) == (1, 2)
    reasons = [r["reject_reason"] for r in read_csv(summary.reject_path)]
    assert reasons[0].startswith("attr_referred_by: must be the external id of a customer")
    assert reasons[1].startswith("organizations: must be a JSON list")


def _command(crm: CRM, file: Path, *extra: str) -> list[str]:
    url = crm.engine.url.render_as_string(hide_password=False)
    return [sys.executable, "-m", "crmkit.cli.main", "--db", url, "customers", "import", str(file), *extra]


def memberships(crm: CRM) -> tuple[int, int]:
    with crm.reading() as conn:
        customers = conn.execute(sa.select(sa.func.count()).select_from(t.customers)).scalar_one()
        members = conn.execute(sa.select(sa.func.count()).select_from(t.memberships)).scalar_one()
    return customers, members


def test_a_kill_9_while_linking_leaves_all_links_or_none_and_a_rerun_sets_them(
    crm_factory: Callable[..., CRM], tmp_path: Path
) -> None:
    crm = crm_factory(plugins=None)  # the command loads every installed plugin
    people = 1500
    path = linked_file(tmp_path / "khach.csv", people)
    importer = subprocess.Popen(
        _command(crm, path, "--batch-size", "500"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while memberships(crm)[0] < people + 1 and importer.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(importer.pid, signal.SIGKILL)  # every row written: the links are being set
    importer.wait()
    assert memberships(crm) in ((people + 1, 0), (people + 1, people))  # one transaction: all links or none
    rerun = subprocess.run(_command(crm, path), capture_output=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr.decode()
    assert memberships(crm) == (people + 1, people)
    assert crm.customers.get_by_external_id("KH-1").attributes == {
        "referred_by": crm.customers.get_by_external_id("KH-2").id
    }


def test_two_imports_of_one_linked_file_at_once_link_each_customer_once(
    crm_factory: Callable[..., CRM], tmp_path: Path
) -> None:
    crm = crm_factory(plugins=None)
    path = linked_file(tmp_path / "khach.csv", 300)
    runs = [
        subprocess.Popen(
            _command(crm, path, "--batch-size", "50", "--rejects", str(tmp_path / f"r{n}.csv")),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for n in range(2)
    ]
    for run in runs:
        _, err = run.communicate(timeout=300)
        assert run.returncode == 0, err.decode()
    assert memberships(crm) == (301, 300)
    org = crm.customers.get_by_external_id("ORG-1")
    assert {m.organization_id for m in crm.customers.get_by_external_id("KH-300").organizations} == {org.id}


def test_a_link_to_a_merged_customer_is_exported_as_the_customer_it_was_merged_into(
    crm_factory: Callable[..., CRM], tmp_path: Path
) -> None:
    source = crm_factory(plugins=["sales", "loyalty"])
    kept = source.customers.add(name="Ngô Thị Mai", external_id="KH-1")
    twin = source.customers.add(name="Ngô T. Mai")  # no external id of its own
    referred = source.customers.add(name="Đỗ Văn Hùng", external_id="KH-2", attributes={"referred_by": twin.id})
    source.customers.merge(kept.id, twin.id)
    path = tmp_path / "khach.jsonl"
    export_customers(source, path, format="jsonl")
    rows = {row["name"]: row for row in map(json.loads, path.read_text(encoding="utf-8").splitlines())}
    assert rows["Đỗ Văn Hùng"]["attr_referred_by"] == "KH-1"
    target = crm_factory(plugins=["sales", "loyalty"])
    assert import_customers(target, path).inserted == 2
    assert target.customers.get_by_external_id(referred.external_id).attributes == {
        "referred_by": target.customers.get_by_external_id("KH-1").id
    }
