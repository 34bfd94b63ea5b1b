"""``crmkit sales orders import``: past orders from CSV or JSON Lines, idempotent, with rejects, quiet unless asked."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from crmkit import Plugin, hookimpl
from crmkit.cli.context import CLIContext
from crmkit.cli.main import cli
from crmkit.core.transfer import import_customers
from crmkit_sales import models as m

from .conftest import Shop, count

pytestmark = pytest.mark.crmkit_plugins("sales")


def write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def orders_by_reference(crm: Any) -> dict[str, Any]:
    return {o.reference: o for o in crm.sales.orders.list(limit=1000)}


def rejects(path: str | None) -> list[dict[str, str]]:
    assert path is not None
    with open(path, encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def test_a_csv_of_totals_free_lines_and_catalogue_lines_imports_once(shop: Shop, tmp_path: Path) -> None:
    crm = shop.crm
    crm.customers.update(shop.an.id, external_id="KH-001")
    lead = crm.customers.add(name="Trần Thị Bình", external_id="KH-002", lifecycle_stage="lead")
    file = write_csv(
        tmp_path / "don-hang.csv",
        [
            "reference",
            "customer_external_id",
            "customer_id",
            "placed_at",
            "currency",
            "total",
            "sku",
            "description",
            "quantity",
            "unit_price",
            "status",
        ],
        [
            ["HD-1", "KH-001", "", "2024-03-01", "VND", "1500000", "", "", "", "", ""],
            ["HD-2", "KH-002", "", "2024-03-02 09:15", "", "", "", "Bánh chưng Tết", "2.5", "120000", "shipped"],
            ["HD-3", "", str(shop.bob.id), "2024-03-03T10:00:00Z", "USD", "", "TEA-GIFT", "", "3", "12.50", "refunded"],
            ["HD-4", "KH-001", "", "2024-03-04", "USD", "0.00", "", "", "", "", "cancelled"],
        ],
    )
    summary = crm.sales.orders.import_history(file)
    assert (summary.rows, summary.inserted, summary.rejected, summary.reject_path) == (4, 4, 0, None)
    found = orders_by_reference(crm)
    total = found["HD-1"]
    assert (total.customer_id, total.currency, total.total_minor, total.status, total.lines) == (
        shop.an.id,
        "VND",
        1_500_000,
        "delivered",
        (),
    )
    assert (total.paid_minor, total.refunded_minor) == (1_500_000, 0)  # history is settled
    free = crm.sales.orders.get(found["HD-2"].id)
    assert (free.currency, free.total_minor, free.status) == ("VND", 300_000, "shipped")
    assert [(ln.product_id, ln.name, ln.quantity, ln.unit_price_minor) for ln in free.lines] == [
        (None, "Bánh chưng Tết", Decimal("2.5"), 120_000)
    ]
    tea = crm.sales.orders.get(found["HD-3"].id)
    assert [(ln.sku, ln.name, ln.total_minor) for ln in tea.lines] == [("TEA-GIFT", "Shan Tuyet tea gift box", 3_750)]
    assert (tea.paid_minor, tea.refunded_minor, tea.status) == (3_750, 3_750, "refunded")
    assert (found["HD-4"].total_minor, found["HD-4"].paid_minor, found["HD-4"].status) == (0, 0, "cancelled")
    assert crm.customers.get(lead.id).lifecycle_stage == "customer"  # a first order makes a lead a customer

    again = crm.sales.orders.import_history(file)
    assert (again.inserted, again.unchanged, again.rejected) == (0, 4, 0)
    assert count(crm, m.orders) == 4 and count(crm, m.order_lines) == 2


def test_a_json_lines_file_keeps_amounts_exact_and_takes_line_lists(shop: Shop, tmp_path: Path) -> None:
    crm = shop.crm
    crm.customers.update(shop.bob.id, external_id="bob")
    file = tmp_path / "orders.jsonl"
    file.write_text(
        "\n".join(
            json.dumps(row)
            for row in [
                {
                    "reference": "W-1",
                    "customer_external_id": "bob",
                    "placed_at": "2024-05-01T08:00:00-04:00",
                    "currency": "USD",
                    "total": 19.99,
                },  # a JSON number, read as the exact decimal written
                {
                    "reference": "W-2",
                    "customer_id": shop.bob.id,
                    "placed_at": "2024-05-02",
                    "currency": "USD",
                    "lines": [
                        {"description": "Gift wrap", "quantity": 1, "unit_price": "0.10"},
                        {"sku": "TEA-GIFT", "quantity": 2, "unit_price": 11.5},
                    ],
                },
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    assert crm.sales.orders.import_history(file).inserted == 2
    found = orders_by_reference(crm)
    assert found["W-1"].total_minor == 1_999
    assert found["W-1"].placed_at == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    lines = crm.sales.orders.get(found["W-2"].id).lines
    assert [(ln.name, ln.total_minor) for ln in lines] == [("Gift wrap", 10), ("Shan Tuyet tea gift box", 2_300)]
    assert found["W-2"].total_minor == 2_310


def test_bad_rows_go_to_the_reject_file_with_row_and_field_and_the_rest_is_imported(shop: Shop, tmp_path: Path) -> None:
    crm = shop.crm
    crm.customers.update(shop.an.id, external_id="KH-001")
    file = write_csv(
        tmp_path / "orders.csv",
        ["reference", "customer_external_id", "placed_at", "currency", "sku", "description", "quantity", "unit_price"],
        [
            ["A-1", "KH-404", "2024-01-01", "VND", "", "Gạo", "1", "100000"],
            ["A-2", "KH-001", "2024-13-45", "VND", "", "Gạo", "1", "100000"],
            ["A-3", "KH-001", "2024-01-03", "VND", "", "Gạo", "-2", "100000"],
            ["A-4", "KH-001", "2024-01-04", "VND", "", "Gạo", "1", "99999999999999999"],
            ["A-5", "KH-001", "2024-01-05", "XYZ", "", "Gạo", "1", "100000"],
            ["A-6", "KH-001", "2024-01-06", "VND", "", "Gạo", "1", "100000.50"],
            ["A-7", "KH-001", "2024-01-07", "VND", "", "Gạo", "1", "100000"],
            ["A-7", "KH-001", "2024-01-08", "VND", "", "Gạo", "1", "100000"],
            ["A-9", "KH-001", "2024-01-09", "VND", "NO-SUCH", "", "1", "100000"],
        ],
    )
    summary = crm.sales.orders.import_history(file)
    assert (summary.inserted, summary.rejected) == (1, 8)
    reasons = {(r["reject_row"], r["reference"]): r["reject_reason"] for r in rejects(summary.reject_path)}
    assert reasons[("1", "A-1")] == "customer_external_id: no customer 'KH-404'"
    assert reasons[("2", "A-2")].startswith("placed_at: '2024-13-45' is not a date")
    assert reasons[("3", "A-3")].startswith("quantity: -2: must be more than 0")
    assert reasons[("4", "A-4")].startswith("unit_price: '99999999999999999': at most")
    assert reasons[("5", "A-5")].startswith("currency: 'XYZ' is not an ISO 4217 currency code")
    assert reasons[("6", "A-6")].startswith("unit_price: '100000.50': VND amounts have 0 decimal places")
    assert reasons[("8", "A-7")] == "reference: 'A-7' is also on row 7 of this file"
    assert reasons[("9", "A-9")].startswith("sku: no product 'NO-SUCH' in the catalogue")
    assert list(orders_by_reference(crm)) == ["A-7"]


def test_a_date_is_that_local_day_and_an_offset_is_honoured(shop: Shop, tmp_path: Path) -> None:
    crm = shop.crm
    crm.set_setting("timezone", "America/New_York")
    file = write_csv(
        tmp_path / "orders.csv",
        ["reference", "customer_id", "placed_at", "total"],
        [
            ["D-1", shop.an.id, "2024-03-10", "1000"],  # the day daylight saving starts there
            ["D-2", shop.an.id, "2024-07-01 23:30", "1000"],
            ["D-3", shop.an.id, "2024-07-01T23:30:00+07:00", "1000"],
        ],
    )
    assert crm.sales.orders.import_history(file).inserted == 3
    found = orders_by_reference(crm)
    assert found["D-1"].placed_at == datetime(2024, 3, 10, 5, 0, tzinfo=UTC)  # local midnight, EST
    assert found["D-2"].placed_at == datetime(2024, 7, 2, 3, 30, tzinfo=UTC)  # local time, EDT
    assert found["D-3"].placed_at == datetime(2024, 7, 1, 16, 30, tzinfo=UTC)


def test_the_command_maps_columns_and_reports_what_it_did(shop: Shop, tmp_path: Path) -> None:
    crm = shop.crm
    file = write_csv(
        tmp_path / "export.csv", ["Mã đơn", "Khách", "Ngày", "Tiền"], [["X-1", shop.an.id, "2024-02-01", "250000"]]
    )
    args = [
        "--format",
        "json",
        "sales",
        "orders",
        "import",
        str(file),
        "--map",
        "Mã đơn=reference",
        "--map",
        "Khách=customer_id",
        "--map",
        "Ngày=placed_at",
        "--map",
        "Tiền=total",
    ]
    result = CliRunner().invoke(cli, args, obj=CLIContext(crm=crm), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)[0]["inserted"] == 1
    assert orders_by_reference(crm)["X-1"].total_minor == 250_000
    unmapped = CliRunner().invoke(cli, ["sales", "orders", "import", str(file)], obj=CLIContext(crm=crm))
    assert unmapped.exit_code != 0 and "unknown column(s) 'Mã đơn'" in unmapped.output


def test_an_import_tells_plugins_which_customers_got_history_but_places_no_sale(
    crm_factory: Any, tmp_path: Path
) -> None:
    calls: list[tuple[str, Any]] = []

    class Listener:
        @hookimpl
        def crmkit_orders_imported(self, customer_ids: list[int]) -> None:
            calls.append(("imported", customer_ids))

        @hookimpl
        def crmkit_order_placed(self, order: Any) -> None:
            calls.append(("placed", order.reference))

    crm = crm_factory(plugins=["sales", Plugin(name="listener", hooks=(Listener(),), requires=("sales",))])
    a, b = (crm.customers.add(name=name).id for name in ("Võ Thị E", "Đặng Văn F"))
    header = ["reference", "customer_id", "placed_at", "total"]
    crm.sales.orders.import_history(
        write_csv(
            tmp_path / "a.csv",
            header,
            [["I-1", b, "2024-01-05", "1000"], ["I-2", a, "2024-01-06", "1000"], ["I-3", b, "2024-01-07", "1000"]],
        )
    )
    assert calls == [("imported", sorted([a, b]))]
    crm.sales.orders.import_history(
        write_csv(tmp_path / "b.csv", header, [["I-4", a, "2024-01-08", "1000"]]), with_hooks=True
    )
    assert calls[1:] == [("imported", [a]), ("placed", "I-4")]


def test_history_earns_points_only_with_hooks_or_through_the_backfill(crm_factory: Any, tmp_path: Path) -> None:
    crm = crm_factory(plugins=["sales", "loyalty"])
    crm.loyalty.programs.create("default", "Khách hàng thân thiết", point_value_minor=500)
    quiet = crm.customers.add(name="Lê Văn Cường")
    loud = crm.customers.add(name="Phạm Thị Dung")
    header = ["reference", "customer_id", "placed_at", "total"]
    crm.sales.orders.import_history(write_csv(tmp_path / "a.csv", header, [["Q-1", quiet.id, "2024-01-05", "500000"]]))
    assert crm.loyalty.balance(quiet.id) == 0  # history is quiet
    crm.sales.orders.import_history(
        write_csv(tmp_path / "b.csv", header, [["L-1", loud.id, "2024-01-05", "500000"]]), with_hooks=True
    )
    earned = crm.loyalty.balance(loud.id)
    assert earned > 0
    crm.loyalty.jobs.backfill()
    assert crm.loyalty.balance(quiet.id) == earned  # the backfill earns from imported orders like from any


def test_the_cdnow_sample_loads_through_the_command(shop: Shop, tmp_path: Path) -> None:
    from crmkit_analytics.testing import cdnow_file

    crm = shop.crm
    records = [line.split() for line in cdnow_file("CDNOW_sample.txt").read_text().splitlines() if line.strip()]
    customers = sorted({r[0] for r in records})
    write_csv(tmp_path / "customers.csv", ["external_id", "name"], [[f"cdnow-{c}", f"CDNOW {c}"] for c in customers])
    assert import_customers(crm, tmp_path / "customers.csv").inserted == 2_357
    file = write_csv(
        tmp_path / "cdnow.csv",
        ["reference", "customer_external_id", "placed_at", "currency", "total"],
        [
            [f"cdnow-{n}", f"cdnow-{r[0]}", f"{r[2][:4]}-{r[2][4:6]}-{r[2][6:]}", "USD", r[4]]
            for n, r in enumerate(records, 1)
        ],
    )
    result = CliRunner().invoke(
        cli,
        ["--format", "json", "sales", "orders", "import", str(file)],
        obj=CLIContext(crm=crm),
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)[0]
    assert (summary["rows"], summary["inserted"], summary["rejected"]) == (6_919, 6_919, 0)
    with crm.reading() as conn:
        o = m.orders.c
        total, zero, buyers = conn.execute(
            sa.select(
                sa.func.sum(o.total_minor),
                sa.func.count().filter(o.total_minor == 0),
                sa.func.count(o.customer_id.distinct()),
            )
        ).one()
    assert total == sum(int(Decimal(r[4]) * 100) for r in records)
    assert zero == sum(1 for r in records if Decimal(r[4]) == 0) > 0  # $0.00 records are purchases too
    assert buyers == 2_357


# -- concurrency and crashes (subprocesses on the test's database) ---------------------------------------


def _history_file(path: Path, customer_ids: list[int], rows: int) -> Path:
    return write_csv(
        path,
        ["reference", "customer_id", "placed_at", "total"],
        [
            [
                f"R-{n:06d}",
                customer_ids[n % len(customer_ids)],
                f"2023-{1 + n % 12:02d}-{1 + n % 28:02d}",
                str(1000 + n),
            ]
            for n in range(rows)
        ],
    )


def _command(crm: Any, file: Path, *extra: str) -> list[str]:
    url = crm.engine.url.render_as_string(hide_password=False)
    return [sys.executable, "-m", "crmkit.cli.main", "--db", url, "sales", "orders", "import", str(file), *extra]


def _check_each_once(crm: Any, rows: int) -> None:
    with crm.reading() as conn:
        o = m.orders.c
        assert conn.execute(sa.select(sa.func.count(), sa.func.count(o.reference.distinct()))).one() == (rows, rows)


def test_two_imports_of_one_file_at_once_create_each_order_once(crm_factory: Any, tmp_path: Path) -> None:
    crm = crm_factory(plugins=None)  # the command loads every installed plugin
    ids = [crm.customers.add(name=f"Khách {n}").id for n in range(20)]
    file = _history_file(tmp_path / "orders.csv", ids, 3_000)
    runs = [
        subprocess.Popen(
            _command(crm, file, "--batch-size", "100", "--rejects", str(tmp_path / f"r{n}.csv")),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for n in range(2)
    ]
    for run in runs:
        out, err = run.communicate(timeout=300)
        assert run.returncode == 0, err.decode()
    _check_each_once(crm, 3_000)


def test_a_kill_9_mid_import_then_a_rerun_loses_and_doubles_nothing(crm_factory: Any, tmp_path: Path) -> None:
    crm = crm_factory(plugins=None)
    ids = [crm.customers.add(name=f"Khách {n}").id for n in range(20)]
    file = _history_file(tmp_path / "orders.csv", ids, 20_000)
    importer = subprocess.Popen(
        _command(crm, file, "--batch-size", "50"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while count(crm, m.orders) < 500 and importer.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(importer.pid, signal.SIGKILL)
    importer.wait()
    interrupted = count(crm, m.orders)
    assert 0 < interrupted < 20_000 and interrupted % 50 == 0  # whole batches only
    rerun = subprocess.run(_command(crm, file), capture_output=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr.decode()
    _check_each_once(crm, 20_000)
    with crm.reading() as conn:  # every order has its amount: nothing half-written
        assert conn.execute(sa.select(sa.func.sum(m.orders.c.total_minor))).scalar() == sum(
            1000 + n for n in range(20_000)
        )


def test_a_row_with_a_control_character_is_rejected_by_row_and_field_and_the_rest_imports(
    shop: Shop, tmp_path: Path
) -> None:
    crm = shop.crm
    header = ["reference", "customer_id", "placed_at", "description", "quantity", "unit_price", "notes"]
    file = write_csv(
        tmp_path / "orders.csv",
        header,
        [
            ["N-1", shop.an.id, "2024-01-01", "Gạo", "1", "100000", "Giao sau 17h\ngọi trước"],
            ["N-2", shop.an.id, "2024-01-02", "Gạo\x00 tám", "1", "100000", ""],
            ["N-3", shop.an.id, "2024-01-03", "Gạo", "1", "100000", "hết\x1b[2J"],
            ["N-4", shop.an.id, "2024-01-04", "Gạo\nST25", "1", "100000", ""],
            ["N-5", shop.an.id, "2024-01-05", "Gạo ST25", "1", "100000", ""],
        ],
    )
    summary = crm.sales.orders.import_history(file)
    assert (summary.inserted, summary.rejected) == (2, 3)
    reasons = {(r["reject_row"], r["reference"]): r["reject_reason"] for r in rejects(summary.reject_path)}
    assert reasons[("2", "N-2")].startswith("description: contains a control character (U+0000")
    assert reasons[("3", "N-3")].startswith("notes: contains a control character (U+001B")
    assert reasons[("4", "N-4")].startswith("description: contains a control character (U+000A")
    found = orders_by_reference(crm)
    assert sorted(found) == ["N-1", "N-5"] and found["N-1"].notes == "Giao sau 17h\ngọi trước"
    jsonl = tmp_path / "orders.jsonl"  # an escaped NUL inside a JSON lines list, named by its line
    jsonl.write_text(
        json.dumps(
            {
                "reference": "J-1",
                "customer_id": shop.an.id,
                "placed_at": "2024-02-01",
                "lines": [
                    {"description": "Gạo", "quantity": 1, "unit_price": 1000},
                    {"description": "Trà\u0000", "quantity": 1, "unit_price": 2000},
                ],
            }
        )
        + "\n",
        encoding="utf-8",
    )
    again = crm.sales.orders.import_history(jsonl, reject_path=tmp_path / "j.rejects.csv")
    assert again.rejected == 1
    assert rejects(again.reject_path)[0]["reject_reason"].startswith(
        "lines[2].description: contains a control character"
    )
    assert "J-1" not in orders_by_reference(crm)
