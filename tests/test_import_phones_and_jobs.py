"""Customer import: phones that are possible but not valid numbers (``--invalid-phone``), and validation in
several processes (``--jobs``), on SQLite and PostgreSQL.

Vietnam renumbered its 11-digit mobiles in 2018: ``0123 456 789`` has the length of a number but no such number
is assigned any more (libphonenumber: possible, not valid). Customer lists still carry them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from crmkit.cli.main import CLIContext, cli
from crmkit.core import tables as t
from crmkit.core.transfer import import_customers
from crmkit.crm import CRM
from crmkit.errors import NotFound, ValidationError
from crmkit.testing import read_csv, write_csv

OLD_MOBILE = "0123 456 789"  # possible, not valid since 2018
HEADER = ["external_id", "name", "phone", "phones", "city"]


def phone_file(path: Path) -> Path:
    return write_csv(
        path,
        HEADER,
        [
            ["KH1", "Nguyễn Văn An", OLD_MOBILE, "0912 345 678", "Hà Nội"],
            ["KH2", "Trần Thị Bình", "0987 654 321", f"0903 111 222;{OLD_MOBILE}", "Huế"],
            ["KH3", "Lê Văn Cường", "0912", "", "Đà Nẵng"],  # too short: not even possible
            ["KH4", "Phạm Thu Dung", "0977 000 111", "", "Cần Thơ"],
        ],
    )


def phones(crm: CRM, external_id: str) -> list[str]:
    customer = crm.customers.get_by_external_id(external_id)
    return list(customer.phones)


def reasons(summary: Any) -> dict[str, str]:
    return {row["external_id"]: row["reject_reason"] for row in read_csv(summary.reject_path)}


def test_by_default_an_invalid_phone_is_dropped_the_customer_imported_and_the_reject_file_says_so(
    crm: CRM, tmp_path: Path
) -> None:
    summary = import_customers(crm, phone_file(tmp_path / "khach.csv"))
    assert (summary.inserted, summary.rejected, summary.invalid_phones) == (3, 1, 2)
    assert phones(crm, "KH1") == ["+84912345678"]
    assert phones(crm, "KH2") == ["+84987654321", "+84903111222"]
    assert reasons(summary) == {
        "KH1": "phone: not a valid phone number: '0123 456 789' (dropped: imported without it)",
        "KH2": "phones: not a valid phone number: '0123 456 789' (dropped: imported without it)",
        "KH3": "phone: not a valid phone number: '0912'",
    }
    assert [c.name for c in crm.customers.find(query="0912345678")] == ["Nguyễn Văn An"]


def test_keep_stores_the_number_in_e164_and_the_reject_file_says_to_check_it(crm: CRM, tmp_path: Path) -> None:
    summary = import_customers(crm, phone_file(tmp_path / "khach.csv"), invalid_phone="keep")
    assert (summary.inserted, summary.rejected, summary.invalid_phones) == (3, 1, 2)
    assert phones(crm, "KH1") == ["+84123456789", "+84912345678"]  # the row's first phone stays first
    assert phones(crm, "KH2") == ["+84987654321", "+84903111222", "+84123456789"]
    assert reasons(summary)["KH1"] == "phone: not a valid phone number: '0123 456 789' (kept as +84123456789: check it)"
    assert [c.external_id for c in crm.customers.find(query="0123456789")] == ["KH1", "KH2"]


def test_reject_rejects_the_row_as_before(crm: CRM, tmp_path: Path) -> None:
    summary = import_customers(crm, phone_file(tmp_path / "khach.csv"), invalid_phone="reject")
    assert (summary.inserted, summary.rejected, summary.invalid_phones) == (1, 3, 0)
    assert reasons(summary)["KH1"] == "phone: not a valid phone number: '0123 456 789'"
    with pytest.raises(NotFound):
        crm.customers.get_by_external_id("KH1")


def test_a_row_wrong_in_another_way_too_is_rejected_with_every_reason(crm: CRM, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "k.csv", ["external_id", "name", "phone", "email"], [["KH1", "An", OLD_MOBILE, "an@"]])
    summary = import_customers(crm, path)
    assert (summary.inserted, summary.rejected, summary.invalid_phones) == (0, 1, 0)
    reason = read_csv(summary.reject_path)[0]["reject_reason"]
    assert "phone: not a valid phone number: '0123 456 789'" in reason and "email:" in reason


def test_a_dropped_phone_leaves_an_existing_customers_phones_and_the_corrected_reject_file_adds_it(
    crm: CRM, tmp_path: Path
) -> None:
    crm.customers.add(name="Nguyễn Văn An", external_id="KH1", phones=["0912 345 678"])
    path = write_csv(
        tmp_path / "k.csv", ["external_id", "name", "phone", "city"], [["KH1", "Nguyễn Văn An", OLD_MOBILE, "Huế"]]
    )
    summary = import_customers(crm, path)
    assert (summary.updated, summary.invalid_phones) == (1, 1)
    customer = crm.customers.get_by_external_id("KH1")
    assert (list(customer.phones), customer.city) == (["+84912345678"], "Huế")
    rejected = Path(summary.reject_path).read_text(encoding="utf-8-sig")  # the user corrects the number in it
    Path(summary.reject_path).write_text(rejected.replace(OLD_MOBILE, "0823 456 789"), encoding="utf-8-sig")
    again = import_customers(crm, summary.reject_path, reject_path=tmp_path / "again.csv")
    assert (again.updated, again.invalid_phones, again.reject_path) == (1, 0, None)
    assert phones(crm, "KH1") == ["+84823456789"]


def test_the_command_takes_invalid_phone_and_prints_how_many_rows_had_one(crm: CRM, tmp_path: Path) -> None:
    path = phone_file(tmp_path / "khach.csv")
    url = crm.engine.url.render_as_string(hide_password=False)
    base = ["--db", url, "--format", "json", "customers", "import", str(path)]
    result = CliRunner().invoke(cli, [*base, "--invalid-phone", "keep"], obj=CLIContext(plugins=[]))
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)[0]
    assert (summary["inserted"], summary["rejected"], summary["invalid_phones"]) == (3, 1, 2)
    assert phones(crm, "KH1") == ["+84123456789", "+84912345678"]
    wrong = CliRunner().invoke(cli, [*base, "--invalid-phone", "ignore"], obj=CLIContext(plugins=[]))
    assert wrong.exit_code == 2 and "--invalid-phone" in wrong.output


def test_an_unknown_choice_or_jobs_out_of_range_is_refused_naming_the_argument(crm: CRM, tmp_path: Path) -> None:
    path = phone_file(tmp_path / "khach.csv")
    with pytest.raises(ValidationError) as caught:
        import_customers(crm, path, invalid_phone="ignore")
    assert "invalid_phone" in caught.value.errors
    with pytest.raises(ValidationError) as caught:
        import_customers(crm, path, jobs=-1)
    assert "jobs" in caught.value.errors
    with crm.reading() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.customers)).scalar() == 0


# -- several processes ----------------------------------------------------------------------------------------------


def mixed_file(path: Path, rows: int) -> Path:
    """Good rows, bad e-mails, invalid phones, and external ids repeated far apart (other batches, other processes)."""
    cells = []
    for n in range(1, rows + 1):
        key = f"KH{n:05d}" if n % 41 else f"KH{n - 37:05d}"  # a repeat of a row some batches before
        email = f"khach{n}@example.vn" if n % 23 else f"khach{n}.example.vn"
        phone = OLD_MOBILE if n % 29 == 0 else f"09{n:08d}"
        cells.append([key, f"Đỗ Minh Quân {n}", email, phone, "Hải Phòng"])
    return write_csv(path, ["external_id", "name", "email", "phone", "city"], cells)


def snapshot(crm: CRM) -> list[tuple[Any, ...]]:
    c, p = t.customers.c, t.contact_points.c
    with crm.reading() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                sa.select(c.external_id, c.name, p.kind, p.value)
                .join(t.contact_points, p.customer_id == c.id, isouter=True)
                .order_by(c.external_id, p.kind, p.position)
            )
        ]


@pytest.mark.parametrize("jobs", [1, 3])
def test_validating_in_several_processes_gives_what_one_process_gives(
    crm_factory: Any, tmp_path: Path, jobs: int
) -> None:
    path = mixed_file(tmp_path / "khach.csv", 1_000)
    alone, several = crm_factory(), crm_factory()
    one = import_customers(alone, path, batch_size=40, jobs=0, reject_path=tmp_path / "one.csv")
    many = import_customers(several, path, batch_size=40, jobs=jobs, reject_path=tmp_path / "many.csv")
    assert attrs_of(one) == attrs_of(many)
    assert one.rejected == 24 + 43 - 1 and one.invalid_phones > 0  # bad e-mails and repeats (one row is both)
    assert snapshot(alone) == snapshot(several)
    assert read_csv(tmp_path / "one.csv") == read_csv(tmp_path / "many.csv")
    assert (
        "is also on row 4 of this file"
        in {r["external_id"]: r for r in read_csv(tmp_path / "many.csv")}["KH00004"]["reject_reason"]
    )


def attrs_of(summary: Any) -> tuple[int, ...]:
    return (summary.rows, summary.inserted, summary.updated, summary.rejected, summary.invalid_phones)


def _command(crm: CRM, file: Path, *extra: str) -> list[str]:
    url = crm.engine.url.render_as_string(hide_password=False)
    return [sys.executable, "-m", "crmkit.cli.main", "--db", url, "customers", "import", str(file), *extra]


def clean_file(path: Path, rows: int) -> Path:
    cells = [[f"KH{n:06d}", f"Vũ Thị Hạnh {n}", f"09{n:08d}", f"hanh{n}@example.vn"] for n in range(1, rows + 1)]
    return write_csv(path, ["external_id", "name", "phone", "email"], cells)


def each_once(crm: CRM) -> tuple[int, int, int]:
    c, p = t.customers.c, t.contact_points.c
    with crm.reading() as conn:
        customers = conn.execute(sa.select(sa.func.count(), sa.func.count(c.external_id.distinct()))).one()
        points = conn.execute(sa.select(sa.func.count()).select_from(t.contact_points)).scalar_one()
        orphans = conn.execute(
            sa.select(sa.func.count()).select_from(t.customers).where(~sa.exists().where(p.customer_id == c.id))
        ).scalar_one()
    assert customers[0] == customers[1]
    return customers[0], points, orphans


def test_a_kill_9_mid_import_with_jobs_then_a_rerun_loses_and_doubles_nothing(crm_factory: Any, tmp_path: Path) -> None:
    crm = crm_factory(plugins=None)  # the command loads every installed plugin
    file = clean_file(tmp_path / "khach.csv", 20_000)
    importer = subprocess.Popen(
        _command(crm, file, "--batch-size", "50", "--jobs", "2"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while each_once(crm)[0] < 500 and importer.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(importer.pid, signal.SIGKILL)  # the writer and its validating processes
    importer.wait()
    interrupted, points, orphans = each_once(crm)
    assert 0 < interrupted < 20_000 and interrupted % 50 == 0  # whole batches only
    assert (points, orphans) == (2 * interrupted, 0)  # each customer with both its contact points
    rerun = subprocess.run(_command(crm, file, "--jobs", "2"), capture_output=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr.decode()
    assert each_once(crm) == (20_000, 40_000, 0)


def test_two_imports_of_one_file_at_once_create_each_customer_once(crm_factory: Any, tmp_path: Path) -> None:
    crm = crm_factory(plugins=None)  # the command loads every installed plugin
    file = clean_file(tmp_path / "khach.csv", 3_000)
    runs = [
        subprocess.Popen(
            _command(crm, file, "--batch-size", "100", "--jobs", "2", "--rejects", str(tmp_path / f"r{n}.csv")),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for n in range(2)
    ]
    for run in runs:
        _, err = run.communicate(timeout=300)
        assert run.returncode == 0, err.decode()
    assert each_once(crm) == (3_000, 6_000, 0)
