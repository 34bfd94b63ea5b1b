"""``crmkit sales …`` through the root command, as a person types it (table, json and csv output)."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from crmkit.cli.context import CLIContext
from crmkit.cli.main import cli
from crmkit_sales import models as m

from .conftest import Shop, count

pytestmark = pytest.mark.crmkit_plugins("sales")
NBSP = "\u00a0"  # Babel separates a Vietnamese amount from its currency with a no-break space


def run(crm: Any, *args: str, user: str = "lan.nguyen") -> Result:
    """``crmkit ARGS`` on the test's CRM as the system, the audit naming ``user`` (``crm.acting_as``); a command run
    with ``--user`` acts *as* the user (see ``as_lan`` below)."""
    with crm.acting_as(user):
        return CliRunner().invoke(cli, list(args), obj=CLIContext(crm=crm), catch_exceptions=False)


def ok(crm: Any, *args: str) -> Result:
    result = run(crm, *args)
    assert result.exit_code == 0, result.output
    return result


def test_catalogue_prices_orders_payments_and_reports(shop: Shop) -> None:
    crm = shop.crm
    ok(
        crm,
        "sales",
        "products",
        "add",
        "--sku",
        "NM-PQ-500",
        "--name",
        "Nước mắm Phú Quốc 40 độ đạm 500ml",
        "--price",
        "85000",
        "--cost",
        "52000",
        "--unit",
        "chai",
        "--category",
        "Nước mắm",
        "--vat",
        "10%",
    )
    listed = json.loads(ok(crm, "--format", "json", "sales", "products", "list", "--search", "nuoc mam").stdout)
    assert [(p["sku"], p["price"], p["vat"]) for p in listed] == [("NM-PQ-500", "85.000 ₫", "10%")]

    ok(crm, "sales", "pricelists", "add", "Đại lý", "--where", "lifecycle_stage = distributor", "--from", "01/01/2026")
    ok(crm, "sales", "pricelists", "set-price", "Đại lý", "NM-PQ-500", "78000")
    price = json.loads(
        ok(crm, "--format", "json", "sales", "pricelists", "price", str(shop.dist.id), "NM-PQ-500").stdout
    )
    assert (price["price"], price["source"]) == ("78.000 ₫", "Đại lý")

    placed = ok(
        crm,
        "--format",
        "json",
        "sales",
        "orders",
        "place",
        str(shop.dist.id),
        "--line",
        "NM-PQ-500:12:5%",
        "--line",
        "GAO-ST25-5:2::5%",
        "--ship-name",
        "Kho Mekong",
    ).stdout
    head = json.loads(placed[: placed.index("\n}\n") + 2])
    assert (head["number"], head["total"], head["owner"]) == ("SO-000001", "1.366.620 ₫", None)  # the system's
    order_id = str(head["id"])
    table = ok(crm, "--locale", "vi", "sales", "payments", "record", order_id, "1000000", "--method", "cash").stdout
    fields = dict(re.split(r" {2,}", line, maxsplit=1) for line in table.splitlines() if "  " in line)  # label, value
    assert (fields["Còn nợ"], fields["Đã trả đủ"]) == (f"366.620{NBSP}₫", "không")
    owed = json.loads(ok(crm, "--format", "json", "sales", "payments", "outstanding", str(shop.dist.id)).stdout)
    assert owed == [{"currency": "VND", "outstanding": "366.620 ₫", "outstanding_minor": 366_620}]
    ok(crm, "sales", "orders", "refund", order_id, "100000", "--reason", "Hai chai vỡ")

    revenue = list(csv.DictReader(io.StringIO(ok(crm, "--format", "csv", "sales", "report", "revenue").stdout)))
    assert [(r["currency"], r["orders"], r["revenue_minor"]) for r in revenue] == [("VND", "1", "1266620")]
    top = ok(crm, "sales", "report", "top-products").stdout
    assert "Nước mắm Phú Quốc" in top and "rank" in top.splitlines()[0]

    bad = run(crm, "sales", "orders", "place", str(shop.an.id), "--line", "KHONG-CO:1")
    assert bad.exit_code == 1 and bad.stderr.startswith("error: lines.1.sku: unknown product 'KHONG-CO'")
    bad = run(crm, "sales", "payments", "record", order_id, "400000")
    assert bad.exit_code == 1 and "outstanding balance 366.620 ₫" in bad.stderr
    assert count(crm, m.orders) == 1 and count(crm, m.payments) == 1


def test_pipeline_quotes_agenda_contracts_and_labels(shop: Shop, tmp_path: Path) -> None:
    crm = shop.crm
    ok(
        crm,
        "sales",
        "pipelines",
        "add",
        "B2B",
        "--stage",
        "Tiếp cận:0.1",
        "--stage",
        "Báo giá:0.5",
        "--won",
        "Thắng",
        "--lost",
        "Thua",
    )
    deal = json.loads(
        ok(
            crm,
            "--format",
            "json",
            "sales",
            "deals",
            "add",
            str(shop.dist.id),
            "--pipeline",
            "B2B",
            "--title",
            "Gạo ST25 cho bếp ăn",
            "--amount",
            "150000000",
            "--close",
            "2026-05-31",
        ).stdout
    )
    ok(crm, "sales", "deals", "move", str(deal["id"]), "Báo giá")
    forecast = json.loads(ok(crm, "--format", "json", "sales", "report", "forecast").stdout)
    assert forecast == [
        {
            "month": "2026-05",
            "currency": "VND",
            "deals": 1,
            "amount": "150.000.000 ₫",
            "weighted": "75.000.000 ₫",
            "amount_minor": 150_000_000,
            "weighted_minor": 75_000_000,
        }
    ]
    funnel = list(csv.DictReader(io.StringIO(ok(crm, "--format", "csv", "sales", "report", "funnel", "B2B").stdout)))
    assert [(r["stage"], r["reached"]) for r in funnel] == [
        ("Tiếp cận", "1"),
        ("Báo giá", "1"),
        ("Thắng", "0"),
        ("Thua", "0"),
    ]
    lost = run(crm, "sales", "deals", "lose", str(deal["id"]))
    assert lost.exit_code == 2 and "--reason" in lost.stderr

    quote = json.loads(
        ok(
            crm,
            "--format",
            "json",
            "sales",
            "quotes",
            "create",
            str(shop.dist.id),
            "--line",
            "GAO-ST25-5:40",
            "--deal",
            str(deal["id"]),
        ).stdout.split("\n[")[0]
    )
    quote_id = str(quote["id"])
    for step in ("send", "accept"):
        ok(crm, "sales", "quotes", step, quote_id)
    document = tmp_path / "bao-gia.html"
    ok(crm, "sales", "quotes", "render", quote_id, "--print", "-o", str(document))
    assert "₫7,770,000" in document.read_text(encoding="utf-8")  # in the command's language
    ok(crm, "--locale", "vi", "sales", "quotes", "render", quote_id, "-o", str(document))
    assert '<html lang="vi">' in (text := document.read_text(encoding="utf-8")) and f"7.770.000{NBSP}₫" in text
    assert "SO-000001" in ok(crm, "sales", "quotes", "order", quote_id).stdout

    ok(
        crm,
        "sales",
        "appointments",
        "add",
        str(shop.dist.id),
        "--employee",
        "lan.nguyen",
        "--subject",
        "Khảo sát kho",
        "--at",
        "2026-03-02 09:00",
        "--place",
        "88 Trần Hưng Đạo, Quận 5",
    )
    agenda = ok(crm, "--locale", "vi", "sales", "appointments", "agenda", "lan.nguyen", "--date", "2026-03-02").stdout
    assert agenda.startswith("Lịch hẹn\n") and "Khảo sát kho" in agenda
    assert "02/03/2026 09:00 (Giờ Đông Dương)" in agenda  # the business's time zone, named
    agenda = ok(crm, "--locale", "en", "sales", "appointments", "agenda", "lan.nguyen", "--date", "2026-03-02").stdout
    assert agenda.startswith("Appointments\n") and "Mar 2, 2026, 9:00 AM (Indochina Time)" in agenda
    calendar = tmp_path / "lan.ics"
    ok(crm, "sales", "appointments", "ics", "lan.nguyen", "--date", "2026-03-02", "-o", str(calendar))
    assert "DTSTART:20260302T020000Z" in calendar.read_bytes().decode("utf-8")
    ok(
        crm,
        "sales",
        "tasks",
        "add",
        str(shop.an.id),
        "--employee",
        "lan.nguyen",
        "--title",
        "Nhắc thanh toán",
        "--due",
        "2020-01-01 17:00",
    )
    assert "Nhắc thanh toán" in ok(crm, "sales", "tasks", "overdue").stdout

    ok(
        crm,
        "sales",
        "contracts",
        "add",
        str(shop.dist.id),
        "--number",
        "HĐ-2026-0001",
        "--title",
        "Cung cấp gạo",
        "--start",
        "2025-06-01",
        "--end",
        "2099-06-01",
        "--renewal",
        "2099-05-01",
        "--value",
        "120000000",
    )
    assert "HĐ-2026-0001" in ok(crm, "sales", "contracts", "list").stdout
    assert "(none)" in ok(crm, "sales", "contracts", "renewals", "--days", "30").stdout

    labels = tmp_path / "nhan.html"
    result = ok(crm, "sales", "labels", str(shop.an.id), str(shop.bob.id), "-o", str(labels))
    assert "1 label; no postal address you may see: " + str(shop.bob.id) in result.stderr
    assert "12 Lý Thường Kiệt" in (sheet := labels.read_text(encoding="utf-8")) and "<title>Address labels (1)" in sheet
    result = ok(crm, "--locale", "vi", "sales", "labels", str(shop.an.id), "-o", str(labels))
    assert result.stderr == f"đã ghi {labels}\n1 nhãn\n" and '<html lang="vi">' in labels.read_text(encoding="utf-8")


def test_a_user_sees_their_scope_and_is_told_when_a_report_is_scoped(shop: Shop) -> None:
    crm = shop.crm
    crm.roles.assign("lan.nguyen", "sales")
    crm.customers.update(shop.an.id, owner="lan.nguyen")
    mine = crm.sales.orders.place(customer_id=shop.an.id, lines=[{"sku": "CF-ROB-500", "quantity": 1}])
    crm.sales.orders.place(customer_id=shop.dist.id, lines=[{"sku": "GAO-ST25-5", "quantity": 1}])
    crm.sales.payments.record(mine.id, mine.total_minor)

    def as_lan(*args: str) -> Result:  # what `crmkit --user lan.nguyen …` does: the whole command runs as her
        with crm.as_user("lan.nguyen"):
            return CliRunner().invoke(cli, list(args), obj=CLIContext(crm=crm), catch_exceptions=False)

    placed = as_lan("--format", "json", "sales", "orders", "place", str(shop.an.id), "--line", "CF-ROB-500:1").stdout
    head = json.loads(placed[: placed.index("\n}\n") + 2])
    assert head["owner"] == "lan.nguyen"  # what she places is hers
    assert as_lan("sales", "orders", "place", str(shop.dist.id), "--line", "CF-ROB-500:1").exit_code == 1  # not hers
    listed = as_lan("--format", "json", "sales", "orders", "list")
    assert [o["id"] for o in json.loads(listed.stdout)] == [head["id"], mine.id]
    revenue = as_lan("--format", "csv", "sales", "report", "revenue")
    assert [r["orders"] for r in csv.DictReader(io.StringIO(revenue.stdout))] == ["2"]
    assert "scoped: only the customers within lan.nguyen's sales.reports.read scope" in revenue.stderr
    assert "scoped" not in ok(crm, "sales", "report", "revenue").stderr
    refused = as_lan("sales", "orders", "refund", str(mine.id), "1000")
    assert refused.exit_code == 1 and "sales.orders.refund" in refused.stderr


def test_tables_speak_the_locale_and_json_does_not(shop: Shop) -> None:
    crm = shop.crm
    ok(
        crm,
        "sales",
        "products",
        "add",
        "--sku",
        "MAY-PHA",
        "--name",
        "Máy pha cà phê",
        "--price",
        "1234567",
        "--vat",
        "8%",
    )
    order = crm.sales.orders.place(customer_id=shop.dist.id, lines=[{"sku": "MAY-PHA", "quantity": 1}])
    vi = ok(crm, "--locale", "vi", "sales", "products", "list", "--search", "may pha").stdout.splitlines()
    assert vi[0].split()[:4] == ["Mã", "Mã", "hàng", "Tên"] and "Giá" in vi[0].split()
    assert f"1.234.567{NBSP}₫" in vi[2] and "8%" in vi[2] and vi[2].rstrip().endswith("có")
    en = ok(crm, "--locale", "en", "sales", "products", "list", "--search", "may pha").stdout.splitlines()
    assert en[0].split() == ["id", "sku", "name", "kind", "unit", "category", "price", "cost", "vat", "active"]
    assert "₫1,234,567" in en[2] and en[2].rstrip().endswith("yes")
    shown = ok(crm, "--locale", "vi", "sales", "orders", "show", str(order.id)).stdout
    assert f"1.333.332{NBSP}₫" in shown and "(Giờ Đông Dương)" in shown  # 1.234.567 ₫ + 8% VAT; placed, local time
    for command in (
        ("sales", "products", "list"),
        ("sales", "orders", "list"),
        ("sales", "orders", "show", str(order.id)),
        ("sales", "report", "revenue"),
    ):
        for fmt in ("json", "csv"):
            assert (
                ok(crm, "--locale", "vi", "--format", fmt, *command).stdout
                == ok(crm, "--locale", "en", "--format", fmt, *command).stdout
            ), (command, fmt)
