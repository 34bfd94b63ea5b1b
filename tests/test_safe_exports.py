"""Safe exports: a CSV crmkit writes never hands a spreadsheet a formula, and the import reads it back unchanged."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from crmkit import CRM
from crmkit.cli.context import CLIContext
from crmkit.cli.main import cli
from crmkit.core.safe_csv import FORMULA_STARTS, neutralise, restore
from crmkit.core.transfer import export_customers, import_customers
from crmkit.testing import read_csv, write_csv

DANGEROUS = {  # name -> the cell a spreadsheet gets
    "=SUM(A1)": "'=SUM(A1)",
    "+cmd|' /C calc'!A0": "'+cmd|' /C calc'!A0",
    "@x": "'@x",
    "-1": "-1",  # a plain negative number runs nothing and stays a number
    "-2+3": "'-2+3",
    "'=already quoted": "''=already quoted",  # one more quote, so that the import takes off exactly one
    "'Tis the season": "'Tis the season",
}


def customers_of(crm: CRM) -> dict[str, dict[str, Any]]:
    """What a user reads about each customer, by name."""
    return {
        c.name: {"phone": c.phone, "tags": c.tags, "city": c.city, "attributes": c.attributes}
        for c in crm.customers.find(limit=100)
    }


def formula_crm(crm: CRM) -> CRM:
    for n, name in enumerate(DANGEROUS):
        crm.customers.add(
            external_id=f"F{n}",
            name=name,
            phone=f"0912 345 67{n}",
            tags=["-vip", "@home"],
            city='=HYPERLINK("http://evil.example")',
            attributes={"note": "\t=1+1", "delta": "-5", "plain": "Hà Nội"},
        )
    return crm


def test_an_export_neutralises_formula_cells_and_imports_back_unchanged(
    crm_factory: Callable[..., CRM], tmp_path: Path
) -> None:
    source, target = formula_crm(crm_factory()), crm_factory()
    exported = tmp_path / "customers.csv"
    assert export_customers(source, exported) == len(DANGEROUS)
    rows = {r["external_id"]: r for r in read_csv(exported)}
    names = dict(zip(DANGEROUS, (rows[f"F{n}"]["name"] for n in range(len(DANGEROUS)))))
    assert names == DANGEROUS
    first = rows["F0"]
    assert first["phone"] == "'+84912345670"  # OWASP: a leading + is a formula to Excel
    assert (first["tags"], first["city"]) == ("'-vip;@home", '\'=HYPERLINK("http://evil.example")')
    assert (first["attr_note"], first["attr_delta"], first["attr_plain"]) == ("'\t=1+1", "-5", "Hà Nội")

    summary = import_customers(target, exported)
    assert (summary.inserted, summary.rejected) == (len(DANGEROUS), 0)
    assert customers_of(target) == customers_of(source)
    assert customers_of(target)["=SUM(A1)"]["phone"] == "+84912345670"
    assert import_customers(source, exported).unchanged == len(DANGEROUS)


def test_a_reject_file_neutralises_its_cells_and_the_fixed_file_imports_the_values(crm: CRM, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "in.csv",
        ["external_id", "name", "email", "phone"],
        [
            ["R1", '=HYPERLINK("http://evil.example","click")', "not-an-email", "'+84 912 345 678"],
            ["R2", "@Lan", "lan@example.vn", "0912 345 679"],
        ],
    )
    summary = import_customers(crm, path)
    assert (summary.inserted, summary.rejected) == (1, 1)
    assert crm.customers.get_by_external_id("R2").name == "@Lan"
    rejected = read_csv(summary.reject_path)[0]
    assert rejected["name"] == '\'=HYPERLINK("http://evil.example","click")'
    assert rejected["phone"] == "'+84 912 345 678"  # the quote the user's file had before its + sign

    rejected["email"] = "an@example.vn"
    fixed = write_csv(tmp_path / "fixed.csv", list(rejected), [list(rejected.values())])
    assert import_customers(crm, fixed).inserted == 1
    again = crm.customers.get_by_external_id("R1")
    assert (again.name, again.phone) == ('=HYPERLINK("http://evil.example","click")', "+84912345678")


def test_cli_csv_output_neutralises_formula_cells(crm: CRM) -> None:
    formula_crm(crm)
    url = crm.engine.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(
        cli, ["--db", url, "--format", "csv", "customers", "find", "--limit", "100"], obj=CLIContext(plugins=[])
    )
    assert result.exit_code == 0, result.stderr
    shown = {r["name"]: r for r in csv.DictReader(io.StringIO(result.stdout))}
    assert set(shown) == set(DANGEROUS.values())
    assert (shown["'@x"]["phone"], shown["'@x"]["tags"]) == ("'+84912345672", "'-vip;@home")


@given(st.text())
def test_restore_undoes_neutralise_and_no_neutralised_cell_starts_a_formula(text: str) -> None:
    cell = neutralise(text)
    assert restore(cell) == text
    assert cell[:1] not in FORMULA_STARTS or (cell[0] == "-" and cell[1:].replace(".", "", 1).isdigit())
