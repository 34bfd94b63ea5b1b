"""Custom fields without code (issue 21, item 14): ``crmkit fields add NAME --type …`` defines a typed,
validated customer field at run time, usable with ``--attr``, in imports (``attr_NAME``), exports and
segments; renaming and retiring keep the data."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from crmkit import CRM, PermissionDenied, ValidationError
from crmkit.core.transfer import export_customers, import_customers
from crmkit.testing import add_user, read_csv, write_csv


def test_a_defined_field_is_validated_by_its_type_everywhere_customers_come_in(crm: CRM, tmp_path: Path) -> None:
    crm.fields.add("so_lan_ghe", "integer", label_vi="Số lần ghé", label_en="Visits")
    crm.fields.add("do_uong", "choice", choices=["cà phê đen", "trà", "nước ép"])
    crm.fields.add("ngay_cuoi", "date")
    crm.fields.add("han_muc", "decimal")
    crm.fields.add("khach_si", "bool")
    crm.fields.add("ghi_chu_rieng", "text")
    customer = crm.customers.add(
        name="Nguyễn Văn An",
        attributes={
            "so_lan_ghe": "3",
            "do_uong": "trà",
            "ngay_cuoi": "02/09/2030",
            "han_muc": "1500000.50",
            "khach_si": "có",
        },
    )
    assert customer.attributes == {
        "so_lan_ghe": 3,
        "do_uong": "trà",
        "ngay_cuoi": "2030-09-02",
        "han_muc": "1500000.50",
        "khach_si": True,
    }
    with pytest.raises(ValidationError) as refused:
        crm.customers.update(customer.id, attributes={"so_lan_ghe": "nhiều", "do_uong": "sữa"})
    assert refused.value.errors == {
        "attributes": {"so_lan_ghe": ["Not a valid integer."], "do_uong": ["Must be one of: cà phê đen, trà, nước ép."]}
    }
    path = write_csv(
        tmp_path / "kh.csv",
        ["external_id", "name", "attr_so_lan_ghe", "attr_ngay_cuoi"],
        [["KH1", "Trần Thị Bình", "7", "2024-01-31"], ["KH2", "Lê Văn Cường", "bảy", "31/02/2024"]],
    )
    summary = import_customers(crm, path)
    assert (summary.inserted, summary.rejected) == (1, 1)
    assert crm.customers.get_by_external_id("KH1").attributes == {"so_lan_ghe": 7, "ngay_cuoi": "2024-01-31"}
    [reject] = read_csv(summary.reject_path or "")
    assert reject["reject_row"] == "2"
    assert reject["reject_reason"] == (
        "attr_ngay_cuoi: not a valid date: '31/02/2024' (use YYYY-MM-DD or DD/MM/YYYY); "
        "attr_so_lan_ghe: Not a valid integer."
    )
    out = tmp_path / "out.jsonl"
    export_customers(crm, out, format="jsonl")
    exported = {row["external_id"]: row for row in map(json.loads, out.read_text(encoding="utf-8").splitlines())}
    assert exported["KH1"]["attr_so_lan_ghe"] == 7 and exported["KH1"]["attr_ngay_cuoi"] == "2024-01-31"


def test_bad_definitions_are_refused_naming_the_option(crm: CRM) -> None:
    crm.fields.add("so_thich", "text")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"name": "Sở thích", "type": "text"}, "name"),
        ({"name": "so_thich", "type": "text"}, "name"),  # already defined
        ({"name": "city", "type": "text"}, "name"),  # a core field
        ({"name": "hang", "type": "colour"}, "type"),
        ({"name": "hang", "type": "choice"}, "choices"),
        ({"name": "hang", "type": "text", "choices": ["a"]}, "choices"),
    ]
    for kwargs, field in cases:
        with pytest.raises(ValidationError) as refused:
            crm.fields.add(**kwargs)
        assert list(refused.value.errors) == [field], kwargs
    crm.customers.add(name="An", attributes={"luot": "nhiều"})  # stored before any field said what it is
    with pytest.raises(ValidationError, match=r"type: 1 customer\(s\) hold values that are not integer"):
        crm.fields.add("luot", "integer")
    assert [f.name for f in crm.fields.list()] == ["so_thich"]


@pytest.mark.crmkit_plugins("campaigns")
def test_segments_filter_on_defined_fields_and_enumerated_ones_refuse_unknown_values(crm: CRM) -> None:
    crm.customers.add(name="An", attributes={"so_thich": "cà phê đen"})  # the issue's --attr so_thich="cà phê đen"
    crm.customers.add(
        name="Bình",
        attributes={"so_thich": "trà", "hang": "vàng", "so_lan_ghe": 12, "khach_si": True, "ngay_cuoi": "2024-05-01"},
    )
    segments = crm.campaigns.segments
    with pytest.raises(ValidationError, match="unknown field 'so_thich'"):
        segments.count(expression='so_thich = "trà"')
    crm.fields.add("so_thich", "text")
    crm.fields.add("hang", "choice", choices=["vàng", "bạc"])
    crm.fields.add("so_lan_ghe", "integer")
    crm.fields.add("khach_si", "bool")
    crm.fields.add("ngay_cuoi", "date")
    assert segments.count(expression='so_thich = "cà phê đen"') == 1
    assert segments.count(expression='hang = "vang"') == 1  # accents aside, as other enumerated fields
    assert segments.count(expression="so_lan_ghe >= 10 and khach_si = true and ngay_cuoi < 2025-01-01") == 1
    with pytest.raises(ValidationError, match="did you mean 'vàng'"):
        segments.count(expression='hang = "vag"')


@pytest.mark.crmkit_plugins("campaigns")
def test_renaming_moves_every_value_and_retiring_keeps_them(crm: CRM) -> None:
    an = crm.customers.add(name="An", attributes={"so_thich": "cà phê đen", "khac": "x"})
    crm.customers.add(name="Bình")
    crm.fields.add("so_thich", "text", label_vi="Sở thích")
    renamed = crm.fields.rename("so_thich", "do_uong")
    assert (renamed.name, renamed.label_vi) == ("do_uong", "Sở thích")
    assert crm.customers.get(an.id).attributes == {"do_uong": "cà phê đen", "khac": "x"}
    assert crm.campaigns.segments.count(expression='do_uong = "cà phê đen"') == 1
    crm.fields.retire("do_uong")
    assert crm.customers.get(an.id).attributes["do_uong"] == "cà phê đen"
    assert [f.name for f in crm.fields.list(retired=True) if f.retired] == ["do_uong"]
    with pytest.raises(ValidationError, match="unknown field 'do_uong'"):
        crm.campaigns.segments.count(expression='do_uong = "trà"')
    crm.fields.restore("do_uong")
    assert crm.campaigns.segments.count(expression='do_uong = "cà phê đen"') == 1
    crm.customers.add(name="Chi", attributes={"khac2": "y"})
    crm.fields.add("khac", "text")
    with pytest.raises(ValidationError, match="customers already hold values under 'khac2'"):
        crm.fields.rename("khac", "khac2")


def test_changing_fields_needs_settings_admin_and_is_audited(crm: CRM) -> None:
    add_user(crm, "lan", roles=["sales"])
    with pytest.raises(PermissionDenied):
        crm.as_user("lan").fields.add("so_thich", "text")
    crm.fields.add("so_thich", "text")
    assert [(e.action, e.entity, e.entity_id) for e in crm.audit.entries(limit=5).items][:1] == [
        ("set", "setting", "custom_fields")
    ]


def test_a_field_defined_by_one_process_is_known_to_the_next(crm_factory: Callable[..., CRM]) -> None:
    crm = crm_factory()
    crm.fields.add("so_lan_ghe", "integer")
    again = CRM(crm.engine.url.render_as_string(hide_password=False), plugins=[])
    try:
        with pytest.raises(ValidationError, match="Not a valid integer"):
            again.customers.add(name="An", attributes={"so_lan_ghe": "nhiều"})
    finally:
        again.close()


def test_the_cli_defines_lists_and_uses_a_field(crm: CRM) -> None:
    from crmkit.cli.context import CLIContext
    from crmkit.cli.main import cli

    url = crm.engine.url.render_as_string(hide_password=False)

    def run(*args: str) -> Any:
        return CliRunner().invoke(cli, ["--db", url, *args], obj=CLIContext(plugins=[]))

    added = run(
        "fields",
        "add",
        "do_uong",
        "--type",
        "choice",
        "--choices",
        "cà phê đen, trà",
        "--label-vi",
        "Đồ uống",
        "--label-en",
        "Drink",
    )
    assert added.exit_code == 0, added.output
    listed = run("--format", "json", "fields", "list")
    assert json.loads(listed.stdout) == [
        {
            "name": "do_uong",
            "type": "choice",
            "choices": "cà phê đen, trà",
            "label_vi": "Đồ uống",
            "label_en": "Drink",
            "retired": False,
        }
    ]
    bad = run("customers", "add", "--name", "An", "--attr", "do_uong=sữa")
    assert bad.exit_code != 0 and "do_uong" in bad.output and "Must be one of" in bad.output
    wrong = run("fields", "add", "x", "--type", "choice")
    assert wrong.exit_code != 0 and "choices" in wrong.output


@pytest.mark.crmkit_plugins("sales")
def test_price_list_conditions_may_test_a_defined_field(crm: CRM) -> None:
    import sqlalchemy as sa

    from crmkit.core import tables as t
    from crmkit_sales.pricing import condition_sql

    crm.fields.add("khach_si", "bool")
    crm.fields.add("so_lan_ghe", "integer")
    wholesale = crm.customers.add(name="Đại lý Hưng", attributes={"khach_si": "có", "so_lan_ghe": 40})
    crm.customers.add(name="Khách lẻ", attributes={"khach_si": "không", "so_lan_ghe": 2})
    condition = sa.and_(
        condition_sql(crm, {"field": "khach_si", "op": "=", "value": True}),
        condition_sql(crm, {"field": "so_lan_ghe", "op": ">=", "value": 10}),
    )
    with crm.reading() as conn:
        assert conn.execute(sa.select(t.customers.c.id).where(condition)).scalars().all() == [wholesale.id]
