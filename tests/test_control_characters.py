"""NUL and other control characters are refused per field, the row named, before anything reaches storage."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from crmkit import CRM, ValidationError
from crmkit.core.transfer import import_customers, import_interactions
from crmkit.testing import write_csv

BAD = ["\x00", "\x1b[31m", "\x7f", "\x85", "\u2028"]  # NUL, an escape sequence, DEL, C1 NEL, line separator


@pytest.mark.parametrize("bad", BAD)
def test_a_control_character_in_a_customer_field_is_refused_naming_the_field(crm: CRM, bad: str) -> None:
    for field, value in (
        ("name", f"Nguyễn{bad}Văn An"),
        ("city", f"Hà{bad}Nội"),
        ("owner", f"x{bad}"),
        ("tags", ["vip", f"tết{bad}"]),
        ("external_id", f"KH{bad}1"),
    ):
        with pytest.raises(ValidationError) as caught:
            crm.customers.add(**{"name": "Trần Thị Bình", field: value})
        assert str(caught.value).startswith(f"{field}: contains a control character (U+")
    assert list(crm.customers.find("")) == []


def test_only_a_multi_line_field_takes_tab_and_newlines(crm: CRM) -> None:
    customer = crm.customers.add(name="Lê Văn Cường")
    for field in ("name", "city"):
        with pytest.raises(ValidationError, match=f"^{field}: contains a control character \\(U\\+000A"):
            crm.customers.update(customer.id, **{field: "Lê\nVăn"})
    logged = crm.interactions.log(customer.id, "phone", subject="Gọi lại", summary="Khách hỏi:\n\t- giá\r\n- giao hàng")
    assert logged.summary == "Khách hỏi:\n\t- giá\r\n- giao hàng"
    with pytest.raises(ValidationError, match="^subject: contains a control character"):
        crm.interactions.log(customer.id, "phone", subject="Gọi\nlại")
    with pytest.raises(ValidationError, match="^summary: contains a control character \\(U\\+0000"):
        crm.interactions.log(customer.id, "phone", summary="hết\x00")
    assert [i.subject for i in crm.interactions.timeline(customer.id)] == ["Gọi lại"]
    with pytest.raises(ValidationError, match="^attributes: contains a control character \\(U\\+0000"):
        crm.customers.update(customer.id, attributes={"ghi_chu": {"dong": "hết\x00"}})
    crm.customers.update(customer.id, attributes={"ghi_chu": "Giao hàng:\n\tsau 17h"})  # a note of several lines
    assert crm.customers.get(customer.id).attributes == {"ghi_chu": "Giao hàng:\n\tsau 17h"}


def _rejects(path: str | None) -> list[dict[str, str]]:
    assert path is not None
    with open(path, encoding="utf-8-sig", newline="") as file:
        return list(csv.DictReader(file))


def test_an_import_rejects_the_rows_with_control_characters_and_imports_the_rest(crm: CRM, tmp_path: Path) -> None:
    rows = [
        ["KH1", "Nguyễn Văn An", "an@example.vn"],
        ["KH2", "Trần\x00 Thị Bình", "binh@example.vn"],
        ["KH3", "Đặng Minh Đức", "duc\x1b@example.vn"],
        ["KH4", "Phạm Bảo Nhung", "nhung@example.vn"],
    ]
    summary = import_customers(crm, write_csv(tmp_path / "khach.csv", ["external_id", "name", "email"], rows))
    assert (summary.inserted, summary.rejected) == (2, 2)
    rejects = _rejects(summary.reject_path)
    assert [(r["reject_row"], r["external_id"]) for r in rejects] == [("2", "KH2"), ("3", "KH3")]
    assert rejects[0]["reject_reason"].startswith("name: contains a control character (U+0000")
    assert rejects[1]["reject_reason"].startswith("email: contains a control character (U+001B")
    jsonl = tmp_path / "khach.jsonl"
    jsonl.write_text("\n".join(json.dumps({"external_id": e, "name": n, "email": m}) for e, n, m in rows) + "\n")
    again = import_customers(crm, jsonl, reject_path=tmp_path / "again.rejects.csv")
    assert (again.unchanged, again.rejected) == (2, 2)
    assert sorted(c.external_id for c in crm.customers.find("")) == ["KH1", "KH4"]


def test_an_interaction_import_rejects_a_nul_row_and_keeps_the_rest(crm: CRM, tmp_path: Path) -> None:
    an = crm.customers.add(name="Nguyễn Văn An", external_id="KH1")
    header = ["external_id", "customer_external_id", "channel", "occurred_at", "subject", "summary"]
    path = write_csv(
        tmp_path / "calls.csv",
        header,
        [
            ["C1", "KH1", "phone", "2026-01-05T09:00:00+07:00", "Gọi lại", "Khách hỏi giá\nhẹn thứ Hai"],
            ["C2", "KH1", "phone", "2026-01-06T09:00:00+07:00", "Gọi\x00 lại", "NUL"],
        ],
    )
    summary = import_interactions(crm, path)
    assert (summary.inserted, summary.rejected) == (1, 1)
    assert "subject: contains a control character (U+0000" in _rejects(summary.reject_path)[0]["reject_reason"]
    assert [i.summary for i in crm.interactions.timeline(an.id)] == ["Khách hỏi giá\nhẹn thứ Hai"]
