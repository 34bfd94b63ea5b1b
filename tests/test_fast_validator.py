"""The import's fast validator stays in use: it reads marshmallow internals (``Schema._hooks``, field
objects), so a marshmallow release or a schema change could quietly send every row through
``Schema.load`` — still correct, five times slower. These tests fail when that happens."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from crmkit import CRM
from crmkit.core.customers import Customers
from crmkit.core.transfer import RowValidator, import_customers, schema_input
from crmkit.testing import write_csv

HEADER = [
    "external_id",
    "name",
    "email",
    "phone",
    "birth_date",
    "gender",
    "city",
    "tags",
    "address_line1",
    "ward",
    "district",
    "consent_email",
]


def good_row(n: int) -> list[str]:
    """A valid customer row as a Vietnamese shop's file has it."""
    return [
        f"KH-{n:04d}",
        f"Trần Thị Bích {n}",
        f"bich{n}@example.vn",
        f"0912 345 {n:03d}",
        "02/09/1991",
        "Nữ",
        "Hà Nội",
        "vip; tết",
        f"{n} Hàng Bông",
        "Hàng Gai",
        "Hoàn Kiếm",
        "yes",
    ]


@pytest.fixture
def slow_path_rows(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A file that gets one line per row the schema itself (``crm.customers.validate``) validates,
    from this process or the import's reader process alike."""
    calls = tmp_path / "slow-path.log"
    calls.touch()
    original = Customers.validate

    def counting(self: Customers, data: Any, **options: Any) -> Any:
        with calls.open("a") as log:
            log.write(f"{options.get('row')}\n")
        return original(self, data, **options)

    monkeypatch.setattr(Customers, "validate", counting)
    return calls


@pytest.mark.parametrize("parallel", [False, True], ids=["in-process", "reader-process"])
def test_an_import_validates_good_rows_on_the_fast_path_and_only_bad_rows_through_the_schema(
    crm: CRM, tmp_path: Path, slow_path_rows: Path, parallel: bool
) -> None:
    rows = [good_row(n) for n in range(1, 41)]
    rows[9][2] = "not an e-mail"  # the 10th row
    path = write_csv(tmp_path / "khach-hang.csv", HEADER, rows)

    summary = import_customers(crm, path, parallel=parallel, batch_size=16)

    assert (summary.inserted, summary.rejected) == (39, 1)
    assert slow_path_rows.read_text().split() == ["10"], "good rows went through Schema.load: the fast path is unused"


def test_the_fast_path_vouches_for_a_good_row_by_itself(crm: CRM) -> None:
    """``fast`` answers None (ask the schema) when it cannot mirror the schema, e.g. when marshmallow's internals move."""
    validator = RowValidator(crm, "VN")
    data = schema_input(dict(zip(HEADER, good_row(7), strict=True)), with_address=True)

    fast = validator.fast(dict(data))

    assert fast is not None, "the fast path no longer understands the customer schema (marshmallow internals changed?)"
    assert fast == crm.customers.validate(dict(data), default_country="VN")
