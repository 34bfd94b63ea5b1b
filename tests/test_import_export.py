"""Customer import/export: what an integrator sees when loading a client's file (and loading it again)."""

from __future__ import annotations

import copy
import csv
import io
import json
import random
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
import sqlalchemy as sa

from crmkit import CRM, NotFound, PermissionDenied, Plugin, ValidationError, hookimpl
from crmkit.core import tables as t
from crmkit.core.models import Customer
from crmkit.core.transfer import (
    COLUMNS,
    REJECT_COLUMNS,
    RowValidator,
    export_customers,
    import_customers,
    reason_text,
    schema_input,
)
from crmkit.testing import add_user, read_csv, write_csv

RICH_HEADER = [*COLUMNS, "consent_email", "consent_sms", "attr_tier"]


def rich_row(n: int, **changes: str) -> dict[str, str]:
    """A row using every column: Vietnamese name, several e-mails and phones, tags, consents, an address."""
    row = {
        "external_id": f"KH-{n:04d}",
        "kind": "person",
        "name": f"Nguyễn  Thị Ánh {n}",
        "given_name": "Ánh",
        "family_name": "Nguyễn",
        "email": f"Anh.Nguyen{n}@Example.vn",
        "emails": f"anh{n}@work.vn; anh{n}@mail.com",
        "phone": f"0912 345 {n % 1000:03d}",
        "phones": f"+84 24 3825 {n % 10000:04d};028 3822 {n % 10000:04d}",
        "birth_date": "15/08/1990",
        "gender": "Nữ",
        "lifecycle_stage": "customer",
        "owner": "lan.nguyen",
        "country": "vn",
        "city": "Hà Nội",
        "province": "Hà Nội",
        "tags": "vip; tết-2025;vip",
        "address_line1": f"{n} Lý Thường Kiệt",
        "address_line2": "Tầng 3",
        "ward": "Hàng Bài",
        "district": "Hoàn Kiếm",
        "postal_code": "100000",
        "consent_email": "yes",
        "consent_sms": "no",
        "attr_tier": "gold",
    }
    row.update(changes)
    return row


def staffed(crm: CRM) -> CRM:
    """The CRM with the user ``rich_row`` names as owner (owners are users)."""
    add_user(crm, "lan.nguyen")
    return crm


def as_cells(rows: list[dict[str, str]], header: list[str] = RICH_HEADER) -> list[list[str]]:
    return [[row.get(column, "") for column in header] for row in rows]


def comparable(customer: Customer) -> dict[str, Any]:
    """A customer without what differs between two databases or two moments (ids, write times)."""
    data = attrs.asdict(customer, recurse=False)
    for field in ("id", "created_at", "updated_at"):
        data.pop(field)
    data["consents"] = {ch: (c.granted, c.source) for ch, c in customer.consents.items()}
    return data


def stored_rows(crm: CRM, customer_id: int) -> dict[str, list[tuple[Any, ...]]]:
    """Every core row about one customer, as stored, without row ids and write times."""
    skip = {"id", "customer_id", "created_at", "updated_at", "at"}
    found: dict[str, list[tuple[Any, ...]]] = {}
    with crm.reading() as conn:
        for table in (t.customers, t.contact_points, t.addresses, t.tags, t.consents, t.search_keys):
            key = table.c.id if table is t.customers else table.c.customer_id
            columns = [c for c in table.columns if c.name not in skip]
            raw = conn.execute(sa.select(*columns).where(key == customer_id)).all()
            found[table.name] = sorted(tuple(map(str, r)) for r in raw)
    return found


def all_customers(crm: CRM) -> list[Customer]:
    """Every active customer (a page of a thousand is plenty here)."""
    return sorted(crm.customers.find(limit=1000), key=lambda c: c.id)


def customer_rows(crm: CRM) -> int:
    """Rows in the customers table, merged-away records included."""
    with crm.reading() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(t.customers)).scalar_one()


def by_external_id(crm: CRM) -> dict[str, dict[str, Any]]:
    return {c.external_id: comparable(c) for c in all_customers(crm)}


# -- the basics ---------------------------------------------------------------------------------------------


def test_the_issue_header_imports_as_is_and_customers_are_searchable(crm: CRM, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "khach.csv",
        ["external_id", "name", "email", "phone", "city"],
        [
            ["KH1", "Nguyễn Văn An", "An.Nguyen@Gmail.com", "0912 345 678", "Hà Nội"],
            ["KH2", "Trần Thị Bình", "binh@example.vn", "028 3822 1234", "TP. Hồ Chí Minh"],
            ["KH3", "Đặng Minh Đức", "duc@example.vn", "", ""],
        ],
    )
    sqlite = crm.engine.dialect.name == "sqlite"
    if sqlite:  # two idle connections in the pool: the import may be given either
        with crm.engine.connect(), crm.engine.connect():
            pass
    summary = import_customers(crm, path)
    assert (summary.rows, summary.inserted, summary.updated, summary.rejected) == (3, 3, 0, 0)
    assert summary.reject_path is None
    an = crm.customers.get_by_external_id("KH1")
    assert (an.email, an.phone, an.city) == ("an.nguyen@gmail.com", "+84912345678", "Hà Nội")
    assert [c.external_id for c in crm.customers.find("nguyen van an")] == ["KH1"]
    assert [c.external_id for c in crm.customers.find("dang minh duc")] == ["KH3"]
    assert [c.external_id for c in crm.customers.find("38221234")] == ["KH2"]
    if sqlite:  # the import's bulk settings do not outlive it, on any pooled connection
        with crm.engine.connect() as one, crm.engine.connect() as two, crm.engine.connect() as three:
            for conn in (one, two, three):
                assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000
                assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -2000


def test_an_imported_customer_is_stored_exactly_as_one_added_through_the_api(
    crm_factory: Callable[..., CRM], tmp_path: Path
) -> None:
    imported_crm, added_crm = staffed(crm_factory()), staffed(crm_factory())
    row = rich_row(7)
    path = write_csv(tmp_path / "one.csv", RICH_HEADER, as_cells([row]))
    import_customers(imported_crm, path)
    imported = imported_crm.customers.get_by_external_id("KH-0007")
    data = schema_input(dict(row), with_address=True)
    added = added_crm.customers.add(data, source="import one.csv")
    assert comparable(imported) == comparable(added)
    assert stored_rows(imported_crm, imported.id) == stored_rows(added_crm, added.id)
    for query in ("nguyen thi anh", "anh7@work", "3825 0007", "345007"):
        assert [c.id for c in imported_crm.customers.find(query)] == [imported.id]
        assert [c.id for c in added_crm.customers.find(query)] == [added.id]


# -- validation: the fast path is the schema ---------------------------------------------------------------


NATIONAL_PHONES = {
    "VN": ["0912 345 678", "(028) 3822 1234", "0084912345678", "0987.654.321"],
    "US": ["(415) 555-2671", "415-555-0199", "1 212 555 0100", "202.555.0123"],
}


def generated_rows(count: int, seed: int, country: str) -> list[dict[str, Any]]:
    """Cells of good rows and of rows with one bad (or odd) value, as CSV and JSON Lines give them."""
    rng = random.Random(seed)
    national = NATIONAL_PHONES[country]
    future = (date.today() + timedelta(days=400)).isoformat()
    good: dict[str, list[Any]] = {
        "name": ["Nguyễn Văn An", "  Lê   Thị  Hồng ", "Nguye\u0302\u0303n Hoa", "John O'Brien", "Đặng Đức"],
        "given_name": ["An", "", " Hồng "],
        "family_name": ["Nguyễn", "", "Smith"],
        "email": ["An@Example.com", " x.y@mail.vn ", "", "ánh@ví.vn"],
        "emails": ["a@b.cd;c@d.ef", "", "A@B.CD ; a@b.cd"],
        "phone": [*national, "+84 912-345-678", "", "+1 415 555 2671"],
        "phones": [";".join(national[:2]), "", "+44 20 7946 0958"],
        "birth_date": ["1990-08-15", "15/08/1990", "", "2000-02-29", "1/2/1985"],
        "gender": ["Nữ", "nam", "F", "khác", "", "MALE"],
        "kind": ["person", "organization", ""],
        "lifecycle_stage": ["lead", "customer", "distributor", ""],
        "owner": ["lan.nguyen", "", "minh.tran", "ghost"],  # whether a user, and active: checked after validation
        "country": ["vn", "US", ""],
        "city": ["Hà Nội", "", " Huế "],
        "province": ["Thừa Thiên Huế", ""],
        "tags": ["vip;b2b", " vip ; ", "", "tết-2025"],
        "consent_email": ["yes", "no", "1", "0", "true", "FALSE", ""],
        "consent_sms": ["Y", "off", ""],
        "attr_tier": ["gold", ""],
        "address_line1": ["12 Lý Thường Kiệt", ""],
        "ward": ["Hàng Bài", ""],
        "postal_code": ["100000", ""],
    }
    bad: dict[str, list[Any]] = {
        "email": ["not-an-email", "a@@b.cd", "a..b@c.de", "a@b"],
        "emails": ["ok@b.cd;bad"],
        "phone": ["12345", "0912", "abc", "+84 12"],
        "phones": [national[0] + ";999"],
        "birth_date": [future, "31/02/1990", "1990-13-01", "yesterday", "15.08.1990", "20240101"],
        "gender": ["x", "femalee"],
        "kind": ["company", "Person"],
        "lifecycle_stage": ["vip"],
        "owner": ["o" * 101],
        "country": ["VNM", "V", "1A"],
        "name": ["n" * 301],
        "given_name": ["g" * 151],
        "tags": ["t" * 101],
        "consent_email": ["maybe", " yes "],
        "address_line1": [""],
        "postal_code": ["1" * 21],
        "external_id": ["e" * 201],
    }
    typed: dict[str, list[Any]] = {  # what JSON Lines can hold besides text
        "external_id": [123],
        "emails": [["a@b.cd", "c@d.ef"], "a@b.cd"],
        "tags": [["vip", "b2b"], [1]],
        "consent_email": [True, False, 1, None, [1]],
        "attr_tier": [5, True, None],
        "phone": [912345678],
        "name": [["Nguyễn"]],
        "birth_date": [19900815],
        "postal_code": [100000],
    }
    rows = []
    for n in range(count):
        cells = {column: rng.choice(options) for column, options in good.items()}
        cells["external_id"] = f"G{n}"
        if not cells["address_line1"]:
            cells["ward"] = cells["postal_code"] = ""
        roll = rng.random()
        if roll < 0.4:
            column = rng.choice(list(bad))
            cells[column] = rng.choice(bad[column])
            if column == "address_line1":
                cells["ward"] = "Hàng Bài"
        elif roll < 0.5:
            column = rng.choice(list(typed))
            cells[column] = rng.choice(typed[column])
        elif roll < 0.55:
            cells["name"] = ""
        rows.append(cells)
    return rows


@pytest.mark.sqlite_only("validation never touches the database")
@pytest.mark.parametrize("country", ["VN", "US"])
def test_fast_validation_accepts_and_rejects_exactly_what_the_schema_does(crm: CRM, country: str) -> None:
    """The schema's verdict on every generated row; owners are then checked the same way on both paths
    (``test_the_import_accepts_and_rejects_owners_exactly_as_the_api_does``)."""
    validator = RowValidator(crm, country)
    accepted = rejected = fast_hits = good_rows = 0
    for n, cells in enumerate(generated_rows(1500, seed=len(country), country=country), start=1):
        data = schema_input(cells, with_address=True)
        try:
            expected: dict[str, Any] | None = crm.customers.validate(
                copy.deepcopy(data), row=n, default_country=country
            )
            errors = None
        except ValidationError as exc:
            expected, errors = None, exc.errors
        fast = validator.fast(copy.deepcopy(data))
        if expected is None:
            assert fast is None, f"row {n}: the fast path accepted what the schema rejects ({errors}): {cells}"
        else:
            good_rows += 1
            if fast is not None:
                fast_hits += 1
                assert fast == expected, f"row {n}: {cells}"
        try:
            result = validator(copy.deepcopy(data), n)
            assert errors is None and result == expected
            accepted += 1
        except ValidationError as exc:
            assert exc.errors == errors and exc.row == n
            rejected += 1
    assert accepted > 500 and rejected > 300
    assert fast_hits >= 0.98 * good_rows, f"the fast path vouched for only {fast_hits} of {good_rows} good rows"


# -- idempotency -----------------------------------------------------------------------------------------------


def test_a_rerun_updates_changed_rows_and_never_duplicates(crm: CRM, tmp_path: Path) -> None:
    staffed(crm)
    rows = [rich_row(n) for n in range(1, 7)]
    path = write_csv(tmp_path / "clients.csv", RICH_HEADER, as_cells(rows))
    first = import_customers(crm, path, batch_size=4)
    assert (first.inserted, first.updated, first.unchanged) == (6, 0, 0)
    before = {c.external_id: c for c in all_customers(crm)}

    again = import_customers(crm, path, batch_size=4)
    assert (again.inserted, again.updated, again.unchanged, again.rejected) == (0, 0, 6, 0)
    assert {c.external_id: c for c in all_customers(crm)} == before  # not even rewritten: same updated_at

    rows[1].update(name="Nguyễn Thị Ánh Hai", tags="b2b", consent_email="no", emails="", phones="0987 654 321")
    rows[4].update(address_line1="", address_line2="", ward="", district="", postal_code="", attr_tier="silver")
    rows.append(rich_row(99))
    write_csv(path, RICH_HEADER, as_cells(rows))
    third = import_customers(crm, path, batch_size=4)
    assert (third.inserted, third.updated, third.unchanged) == (1, 2, 4)
    assert customer_rows(crm) == 7
    two = crm.customers.get_by_external_id("KH-0002")
    assert (two.name, two.tags, two.emails, two.phones) == (
        "Nguyễn Thị Ánh Hai",
        ("b2b",),
        ("anh.nguyen2@example.vn",),
        ("+84912345002", "+84987654321"),
    )
    assert two.consents["email"].granted is False and two.consents["sms"].at == before["KH-0002"].consents["sms"].at
    five = crm.customers.get_by_external_id("KH-0005")
    assert five.addresses == () and five.attributes == {"tier": "silver"}
    assert [c.external_id for c in crm.customers.find("nguyen thi anh hai")] == ["KH-0002"]
    assert crm.customers.find("anh2@work").items == []


def test_an_update_by_import_stores_what_the_same_update_through_the_api_stores(
    crm_factory: Callable[..., CRM], tmp_path: Path
) -> None:
    by_import, by_api = staffed(crm_factory()), staffed(crm_factory())
    typed_name, built_name = rich_row(3), rich_row(4, name="")
    changes = dict(
        name="",
        given_name="Bình",
        family_name="Trần",
        email="binh@example.vn",
        emails="",
        phones="",
        tags="b2b;new",
        consent_email="no",
        consent_sms="",
        attr_tier="silver",
        address_line1="9 Hai Bà Trưng",
        ward="",
        city="Đà Nẵng",
        birth_date="",
    )
    changed = [dict(typed_name, **changes), dict(built_name, **changes)]
    for crm in (by_import, by_api):
        import_customers(crm, write_csv(tmp_path / "v1.csv", RICH_HEADER, as_cells([typed_name, built_name])))
    assert import_customers(by_import, write_csv(tmp_path / "v1.csv", RICH_HEADER, as_cells(changed))).updated == 2
    for row in changed:
        target = by_api.customers.get_by_external_id(row["external_id"])
        by_api.customers.update(target.id, schema_input(row, with_address=True), source="import v1.csv")
        updated = by_import.customers.get_by_external_id(row["external_id"])
        assert comparable(updated) == comparable(by_api.customers.get(target.id))
        assert stored_rows(by_import, updated.id) == stored_rows(by_api, target.id)
    # a name typed by hand stays; one built from its parts follows them
    assert by_import.customers.get_by_external_id("KH-0003").name == "Nguyễn Thị Ánh 3"
    assert by_import.customers.get_by_external_id("KH-0004").name == "Trần Bình"


def test_an_external_id_of_a_merged_customer_updates_the_customer_it_was_merged_into(crm: CRM, tmp_path: Path) -> None:
    header = ["external_id", "name", "email", "city"]
    import_customers(
        crm,
        write_csv(
            tmp_path / "a.csv",
            header,
            [["A1", "Lê Văn Tám", "tam@a.vn", "Huế"], ["B1", "Le Van Tam", "tam@b.vn", "Huế"]],
        ),
    )
    kept, merged = crm.customers.get_by_external_id("A1"), crm.customers.get_by_external_id("B1")
    crm.customers.merge(kept.id, merged.id)
    summary = import_customers(
        crm, write_csv(tmp_path / "b.csv", header, [["B1", "Lê Văn Tám", "tam@b.vn", "Đà Nẵng"]])
    )
    assert (summary.inserted, summary.updated) == (0, 1)
    after = crm.customers.get(kept.id)
    assert (after.external_id, after.city, after.emails) == ("A1", "Đà Nẵng", ("tam@b.vn",))
    assert customer_rows(crm) == 2


# -- interruption --------------------------------------------------------------------------------------------


def big_file(path: Path, count: int) -> Path:
    rows = []
    for n in range(1, count + 1):
        email = f"user{n}@example.vn" if n % 17 else f"broken{n}.example.vn"
        rows.append([f"C{n:05d}", f"Phạm Quốc Việt {n}", email, f"09{n:08d}", "Cần Thơ", "vip" if n % 3 else ""])
    return write_csv(path, ["external_id", "name", "email", "phone", "city", "tags"], rows)


@pytest.mark.parametrize("parallel", [False, True], ids=["one-process", "reader-process"])
def test_an_interrupted_import_leaves_whole_batches_and_a_rerun_finishes_it(
    crm_factory: Callable[..., CRM], tmp_path: Path, parallel: bool
) -> None:
    interrupted, clean = crm_factory(), crm_factory()
    path = big_file(tmp_path / "big.csv", 230)
    calls: list[int] = []

    def interrupt_after_two(rows: int) -> None:
        calls.append(rows)
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_customers(interrupted, path, batch_size=50, progress=interrupt_after_two, parallel=parallel)
    assert calls == [50, 50]
    bad_in_first_100 = sum(1 for n in range(1, 101) if n % 17 == 0)
    assert customer_rows(interrupted) == 100 - bad_in_first_100

    rerun = import_customers(interrupted, path, batch_size=50, parallel=parallel)
    assert (rerun.rows, rerun.unchanged, rerun.inserted) == (
        230,
        100 - bad_in_first_100,
        230 - 100 - (13 - bad_in_first_100),
    )
    import_customers(clean, path, batch_size=230)
    assert by_external_id(interrupted) == by_external_id(clean)
    with interrupted.reading() as conn:
        imports = conn.execute(
            sa.select(sa.func.count()).select_from(t.audit_log).where(t.audit_log.c.action == "import")
        ).scalar()
    assert imports == 2 + 5  # one audit entry per committed batch, none per row


# -- bad input -----------------------------------------------------------------------------------------------


def test_every_rejected_row_is_in_the_reject_file_with_its_reason_and_can_be_reimported(
    crm: CRM, tmp_path: Path
) -> None:
    future = (date.today() + timedelta(days=30)).isoformat()
    path = tmp_path / "mixed.csv"
    path.write_text(
        "external_id,name,email,phone,birth_date,kind\n"
        "K1,Võ Thị Sáu,sau@example.vn,0912345678,1990-01-02,person\n"
        "K2,Bad Mail,bad-mail,0912345679,,\n"
        "K3,Bad Phone,p@example.vn,12345,,\n"
        f"K4,Future,f@example.vn,,{future},\n"
        "K5,Odd Kind,k@example.vn,,,company\n"
        ",No Id,n@example.vn,,,\n"
        "K1,Twice,t@example.vn,,,\n"
        'K8,"Broken "quote,q@example.vn,,,\n'
        "K9,Too,many,cells,,,,x\n"
        "K10,Lý Công Uẩn,uan@example.vn,0987654321,,organization\n",
        encoding="utf-8",
    )
    summary = import_customers(crm, path)
    assert (summary.rows, summary.inserted, summary.rejected) == (10, 2, 8)
    assert summary.reject_path == f"{path}.rejects.csv"
    rejects = read_csv(summary.reject_path)
    assert [r["reject_row"] for r in rejects] == ["2", "3", "4", "5", "6", "7", "8", "9"]
    reasons = {r["reject_row"]: r["reject_reason"] for r in rejects}
    assert reasons["2"] == "email: not a valid e-mail address: 'bad-mail'"
    assert reasons["3"].startswith("phone: ")
    assert reasons["4"] == "birth_date: date is in the future"
    assert reasons["5"].startswith("kind: Must be one of")
    assert reasons["6"].startswith("external_id: required")
    assert reasons["7"] == "external_id: 'K1' is also on row 1 of this file"
    assert reasons["8"].startswith("line 9: not valid CSV")
    assert reasons["9"].startswith("line 10: 8 cells where the header has 6")
    assert rejects[0]["email"] == "bad-mail" and rejects[0]["reject_line"] == "3"
    assert rejects[6]["external_id"] == 'K8,"Broken "quote,q@example.vn,,,'  # the line as it was

    fixed = [dict(r, email="mail@example.vn") if r["reject_row"] == "2" else r for r in rejects[:2]]
    fixed[1]["phone"] = "0911 222 333"
    write_csv(tmp_path / "fixed.csv", list(rejects[0]), [list(r.values()) for r in fixed])
    again = import_customers(crm, tmp_path / "fixed.csv")
    assert (again.inserted, again.rejected, again.reject_path) == (2, 0, None)
    assert crm.customers.get_by_external_id("K3").phone == "+84911222333"


def test_unknown_columns_stop_the_import_before_anything_is_written_unless_mapped(crm: CRM, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "crm_export.csv",
        ["Mã KH", "Họ tên", "SĐT", "Ghi chú"],
        [["X1", "Hồ Xuân Hương", "0912 000 111", "thơ"]],
    )
    with pytest.raises(ValidationError) as caught:
        import_customers(crm, path)
    message = str(caught.value)
    assert "unknown column(s) 'Mã KH', 'Họ tên', 'SĐT', 'Ghi chú'" in message
    assert customer_rows(crm) == 0
    with pytest.raises(ValidationError, match="no external_id column"):
        import_customers(crm, path, mapping={"Họ tên": "name", "SĐT": "phone", "Ghi chú": "attr_note", "Mã KH": ""})
    with pytest.raises(ValidationError, match="the mapping names columns the file does not have: 'Email'"):
        import_customers(crm, path, mapping={"Email": "email"})
    with pytest.raises(ValidationError, match="columns 'Họ tên' and 'SĐT' are both name"):
        import_customers(crm, path, mapping={"Mã KH": "external_id", "Họ tên": "name", "SĐT": "name", "Ghi chú": ""})
    summary = import_customers(
        crm, path, mapping={"Mã KH": "external_id", "Họ tên": "name", "SĐT": "phone", "Ghi chú": "attr_note"}
    )
    assert summary.inserted == 1
    customer = crm.customers.get_by_external_id("X1")
    assert (customer.name, customer.phone, customer.attributes) == ("Hồ Xuân Hương", "+84912000111", {"note": "thơ"})


def test_a_file_that_is_not_utf8_is_refused_naming_the_line_and_a_bom_is_fine(crm: CRM, tmp_path: Path) -> None:
    rows = [["L1", "Café Sài Gòn", "cafe@example.vn"], ["L2", "Phở Hà Nội", "pho@example.vn"]]
    latin = write_csv(
        tmp_path / "latin.csv",
        ["external_id", "name", "email"],
        [["L0", "Plain", "p@example.vn"]] + rows[:1],
        encoding="latin-1",
    )
    with pytest.raises(ValidationError, match=r"latin.csv: line 3 is not UTF-8 \(byte 0xe9 at column 7\)"):
        import_customers(crm, latin)
    assert customer_rows(crm) == 0
    bom = write_csv(tmp_path / "bom.csv", ["external_id", "name", "email"], rows, encoding="utf-8-sig")
    assert import_customers(crm, bom).inserted == 2
    assert crm.customers.get_by_external_id("L2").name == "Phở Hà Nội"


def test_national_numbers_take_the_given_default_country_else_the_crm_setting(
    crm_factory: Callable[..., CRM], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_csv(tmp_path / "us.csv", ["external_id", "name", "phone"], [["U1", "Emma Clark", "(415) 555-2671"]])
    vietnam = crm_factory()
    summary = import_customers(vietnam, path, invalid_phone="reject")  # a possible number in Vietnam, not a valid one
    assert summary.rejected == 1 and "phone" in read_csv(summary.reject_path)[0]["reject_reason"]
    assert import_customers(vietnam, path, default_country="US").inserted == 1
    assert vietnam.customers.get_by_external_id("U1").phone == "+14155552671"
    monkeypatch.setenv("CRMKIT_DEFAULT_COUNTRY", "US")
    american = crm_factory()
    assert import_customers(american, path).inserted == 1
    assert american.customers.get_by_external_id("U1").phone == "+14155552671"


# -- hooks and audit ---------------------------------------------------------------------------------------


class RecordingHooks:
    """Vetoes customers tagged 'blocked'; records every created and updated customer."""

    def __init__(self) -> None:
        self.created: list[str] = []
        self.updated: list[tuple[str, list[str]]] = []

    @hookimpl
    def crmkit_customer_before_save(self, customer: Any, changes: dict[str, Any]) -> None:
        if "blocked" in changes.get("tags", ()):
            raise ValidationError("blocked customers are not imported", field="tags")

    @hookimpl
    def crmkit_customer_created(self, customer: Customer) -> None:
        self.created.append(customer.external_id or "")

    @hookimpl
    def crmkit_customer_updated(self, customer: Customer, changes: dict[str, Any]) -> None:
        self.updated.append((customer.external_id or "", sorted(changes)))


def test_imported_customers_go_through_the_customer_hooks(crm_factory: Callable[..., CRM], tmp_path: Path) -> None:
    hooks = RecordingHooks()
    crm = crm_factory(plugins=[Plugin(name="recorder", hooks=[hooks], version="1.0")])
    header = ["external_id", "name", "tags"]
    path = write_csv(tmp_path / "h.csv", header, [["H1", "An", "vip"], ["H2", "Bình", "blocked"], ["H3", "Chi", ""]])
    summary = import_customers(crm, path)
    assert (summary.inserted, summary.rejected) == (2, 1)
    assert read_csv(summary.reject_path)[0]["reject_reason"] == "tags: blocked customers are not imported"
    assert hooks.created == ["H1", "H3"]
    write_csv(path, header, [["H1", "An", "vip"], ["H3", "Chi Mai", "b2b"]])
    summary = import_customers(crm, path)
    assert (summary.updated, summary.unchanged) == (1, 1)
    assert hooks.updated == [("H3", ["name", "tags"])]
    assert [c.external_id for c in crm.customers.find("chi mai")] == ["H3"]


# -- export ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_export_then_import_into_an_empty_crm_round_trips(
    crm_factory: Callable[..., CRM], tmp_path: Path, fmt: str
) -> None:
    source, target = staffed(crm_factory()), staffed(crm_factory())
    rows = [
        rich_row(1),
        rich_row(
            2,
            kind="organization",
            name="Công ty TNHH Sao Mai",
            given_name="",
            family_name="",
            gender="",
            birth_date="",
            consent_email="",
            tags="",
        ),
        rich_row(
            3,
            emails="",
            phones="",
            address_line1="",
            address_line2="",
            ward="",
            district="",
            postal_code="",
            attr_tier="",
            city="",
            province="",
            country="",
        ),
    ]
    import_customers(source, write_csv(tmp_path / "in.csv", RICH_HEADER, as_cells(rows)))
    third = source.customers.get_by_external_id("KH-0003")
    source.customers.update(third.id, attributes={"since": "2019"})
    exported = tmp_path / f"out.{fmt}"
    assert export_customers(source, exported, format=fmt) == 3
    summary = import_customers(target, exported)
    assert (summary.inserted, summary.rejected) == (3, 0)
    assert by_external_id(target) == {
        k: dict(v, consents={ch: (g, f"import out.{fmt}") for ch, (g, _) in v["consents"].items()})
        for k, v in by_external_id(source).items()
    }
    assert import_customers(source, exported).unchanged == 3


def test_export_writes_the_documented_columns_and_keeps_types_in_json_lines(crm: CRM, tmp_path: Path) -> None:
    crm.customers.add(
        external_id="E1",
        name="Trịnh Công Sơn",
        phones=["0912 345 678", "0987 654 321"],
        consents={"sms": True},
        attributes={"visits": 3, "vip": True},
        tags=["nhạc", "vip"],
    )
    crm.customers.add(name="No External Id")
    text, lines = io.StringIO(), io.BytesIO()
    assert export_customers(crm, text) == 2
    header, first, second = list(csv.reader(io.StringIO(text.getvalue())))
    assert header == [*COLUMNS, *(f"consent_{ch}" for ch in crm.channels), "attr_vip", "attr_visits"]
    record = dict(zip(header, first))
    assert (record["phone"], record["phones"], record["tags"]) == ("'+84912345678", "'+84987654321", "nhạc;vip")
    assert (record["consent_sms"], record["consent_email"], record["attr_visits"], record["attr_vip"]) == (
        "yes",
        "",
        "3",
        "yes",
    )
    no_id = crm.customers.find(query="No External Id").items[0]
    assert dict(zip(header, second))["external_id"] == f"crmkit-{no_id.id}"  # stable: links to it resolve
    export_customers(crm, lines, format="jsonl")
    obj = json.loads(lines.getvalue().decode("utf-8").splitlines()[0])
    assert (obj["phones"], obj["consent_sms"], obj["attr_visits"], obj["attr_vip"]) == (["+84987654321"], True, 3, True)
    assert all(col not in REJECT_COLUMNS for col in header)


def test_json_lines_rows_with_unknown_keys_or_bad_json_are_rejected(crm: CRM, tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text(
        "\n".join(
            [
                json.dumps(
                    {"external_id": "J1", "name": "Ngô Bảo Châu", "emails": ["chau@example.vn"], "consent_email": True}
                ),
                json.dumps({"external_id": "J2", "name": "Extra", "favourite": "phở"}),
                "{not json",
                json.dumps(["a", "list"]),
                "",
                json.dumps({"external_id": 17, "name": "Number Id"}),
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    summary = import_customers(crm, path)
    assert (summary.inserted, summary.rejected) == (1, 4)
    reasons = [r["reject_reason"] for r in read_csv(summary.reject_path)]
    assert reasons[0] == "unknown key(s) 'favourite'"
    assert reasons[1].startswith("line 3: not valid JSON") and reasons[2] == "line 4: not a JSON object"
    assert reasons[3] == "external_id: Not a valid string."
    assert crm.customers.get_by_external_id("J1").consents["email"].granted is True


def test_a_stream_imports_like_a_file(crm: CRM, tmp_path: Path) -> None:
    data = "\ufeffexternal_id,name,phone\nS1,Lương Thế Vinh,0912 111 222\nS2,Bad,123\n".encode()
    summary = import_customers(crm, io.BytesIO(data), reject_path=tmp_path / "stream.rejects.csv")
    assert (summary.inserted, summary.rejected, summary.reject_path) == (1, 1, str(tmp_path / "stream.rejects.csv"))
    assert crm.customers.get_by_external_id("S1").phone == "+84912111222"
    text = io.StringIO("external_id,name\nS1,Lương Thế Vinh\n")
    assert import_customers(crm, text, reject_path=tmp_path / "none.csv").unchanged == 1


# -- owners are users; what a user with a narrower scope may import and export ---------------------------------


def test_rows_whose_owner_is_no_active_user_are_rejected_naming_the_owner(crm: CRM, tmp_path: Path) -> None:
    add_user(crm, "lan.nguyen")
    add_user(crm, "minh.tran")
    kept = crm.customers.add(external_id="K0", name="Khách Cũ", owner="minh.tran")
    crm.users.disable("minh.tran")
    header = ["external_id", "name", "owner"]
    path = write_csv(
        tmp_path / "owners.csv",
        header,
        [
            ["K1", "Nguyễn Văn An", "lan.nguyen"],
            ["K2", "Trần Thị Bình", "lan"],
            ["K3", "Lê Văn Cường", "minh.tran"],
            ["K4", "Phạm Thị Dung", ""],
            ["K0", "Khách Cũ Đổi Tên", "minh.tran"],  # keeps its (now disabled) owner: not a change, as update does
            ["K5", "Hoàng Văn Em", "o" * 101],
        ],
    )
    summary = import_customers(crm, path)
    assert (summary.inserted, summary.updated, summary.rejected) == (2, 1, 3)
    reasons = {r["external_id"]: r["reject_reason"] for r in read_csv(summary.reject_path)}
    assert reasons == {
        "K2": "owner: no user 'lan'",
        "K3": "owner: user 'minh.tran' is disabled",
        "K5": "owner: Longer than maximum length 100.",
    }
    assert crm.customers.get_by_external_id("K1").owner == "lan.nguyen"
    assert crm.customers.get_by_external_id("K4").owner is None  # the system leaves a customer unowned
    assert crm.customers.get(kept.id).name == "Khách Cũ Đổi Tên"

    write_csv(path, header, [["K0", "Khách Cũ Đổi Tên", "ghost"], ["K1", "Nguyễn Văn An", "minh.tran"]])
    again = import_customers(crm, path)
    assert (again.updated, again.rejected) == (0, 2)
    assert [r["reject_reason"] for r in read_csv(again.reject_path)] == [
        "owner: no user 'ghost'",
        "owner: user 'minh.tran' is disabled",
    ]
    assert crm.customers.get_by_external_id("K1").owner == "lan.nguyen"


def test_owners_are_checked_against_one_read_of_the_users_not_a_query_per_row(crm: CRM, tmp_path: Path) -> None:
    for name in ("lan.nguyen", "hoa.le", "tuan.pham"):
        add_user(crm, name)
    owners = ["lan.nguyen", "hoa.le", "tuan.pham", "", "ghost", "nobody"]
    rows = [[f"Q{n}", f"Khách {n}", owners[n % len(owners)]] for n in range(600)]
    path = write_csv(tmp_path / "many.csv", ["external_id", "name", "owner"], rows)
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "users" in statement:
            statements.append(statement)

    sa.event.listen(crm.engine, "before_cursor_execute", seen)
    try:
        summary = import_customers(crm, path, batch_size=100)
    finally:
        sa.event.remove(crm.engine, "before_cursor_execute", seen)
    assert (summary.inserted, summary.rejected) == (400, 200)
    assert len(statements) <= 3  # the active users once, then each unknown owner once for its message


OWNERS = ["lan.nguyen", "", "hoa.le", "minh.tran", "tuan.pham", "ghost", "o" * 101]


def owner_world(crm: CRM) -> CRM:
    """Lan and Hoa sell in Hà Nội, Tuấn in TP.HCM; Minh has left (disabled)."""
    add_user(crm, "lan.nguyen", teams=["Hà Nội"], roles=["sales"])
    add_user(crm, "hoa.le", teams=["Hà Nội"], roles=["sales"])
    add_user(crm, "tuan.pham", teams=["TP.HCM"], roles=["sales"])
    add_user(crm, "minh.tran", teams=["Hà Nội"], roles=["sales"])
    crm.users.disable("minh.tran")
    return crm


@pytest.mark.parametrize(
    ("acting", "parallel"),
    [(None, False), ("lan.nguyen", False), ("lan.nguyen", True)],
    ids=["system", "sales-user", "sales-user-reader-process"],
)
def test_the_import_accepts_and_rejects_owners_exactly_as_the_api_does(
    crm_factory: Callable[..., CRM], tmp_path: Path, acting: str | None, parallel: bool
) -> None:
    """Fast path or schema path, bulk insert or not: each row is stored, or rejected for the reason, that
    ``crm.customers.add`` of the same row gives — as the system, and as a user whose scope is their own."""
    by_import, by_api = owner_world(crm_factory()), owner_world(crm_factory())
    rng = random.Random(17)
    rows, ids = [], set()
    for cells in generated_rows(300, seed=11, country="VN"):
        if json.dumps(cells["external_id"]) not in ids:  # a repeated (bad) external id is another matter
            ids.add(json.dumps(cells["external_id"]))
            rows.append(dict(cells, owner=rng.choice(OWNERS)))
    path = tmp_path / "owners.jsonl"
    path.write_text("".join(json.dumps(cells, ensure_ascii=False) + "\n" for cells in rows), encoding="utf-8")

    summary = import_customers(
        by_import.as_user(acting) if acting else by_import, path, batch_size=64, parallel=parallel
    )
    api = by_api.as_user(acting) if acting else by_api
    expected: dict[int, str] = {}
    for n, cells in enumerate(rows, start=1):
        try:
            api.customers.add(schema_input(cells, with_address=True), source="import owners.jsonl")
        except ValidationError as exc:
            expected[n] = reason_text(exc.errors)
    rejected = {int(r["reject_row"]): r["reject_reason"] for r in read_csv(summary.reject_path)}
    assert rejected == expected
    assert by_external_id(by_import) == by_external_id(by_api)

    reasons = "\n".join(expected.values())
    assert "owner: no user 'ghost'" in reasons and "owner: user 'minh.tran' is disabled" in reasons
    owned = {c.owner for c in all_customers(by_import)}
    if acting:  # rows without an owner became Lan's; Hoa's and Tuấn's are outside her scope of customers.create
        assert "owner: 'hoa.le' is outside your scope of customers.create" in reasons
        assert owned == {"lan.nguyen"}
    else:
        assert owned == {None, "lan.nguyen", "hoa.le", "tuan.pham"}


def test_a_scoped_users_import_owns_its_new_customers_and_cannot_touch_other_scopes(crm: CRM, tmp_path: Path) -> None:
    owner_world(crm)
    add_user(crm, "thu.vo", teams=["Hà Nội"], roles=["manager"])
    for external_id, owner in (
        ("X-LAN", "lan.nguyen"),
        ("X-LAN2", "lan.nguyen"),
        ("X-HOA", "hoa.le"),
        ("X-NONE", None),
    ):
        crm.customers.add(external_id=external_id, name=f"Khách {external_id}", owner=owner)
    header = ["external_id", "name", "owner"]
    path = write_csv(
        tmp_path / "lan.csv",
        header,
        [
            ["N1", "Nguyễn Văn Mới", ""],
            ["N2", "Trần Thị Mới", "lan.nguyen"],
            ["N3", "Lê Văn Mới", "hoa.le"],
            ["X-LAN", "Khách Của Lan", "lan.nguyen"],
            ["X-HOA", "Khách Của Hoa", "hoa.le"],
            ["X-NONE", "Khách Không Chủ", ""],
            ["X-LAN2", "Khách X-LAN2", "hoa.le"],
        ],
    )
    summary = import_customers(crm.as_user("lan.nguyen"), path)
    assert (summary.inserted, summary.updated, summary.rejected) == (2, 1, 4)
    reasons = {r["external_id"]: r["reject_reason"] for r in read_csv(summary.reject_path)}
    assert reasons == {
        "N3": "owner: 'hoa.le' is outside your scope of customers.create",
        "X-HOA": "external_id: 'X-HOA' is used by a customer you cannot change",  # not whose, nor which
        "X-NONE": "external_id: 'X-NONE' is used by a customer you cannot change",
        "X-LAN2": "owner: 'hoa.le' is outside your scope of customers.update",
    }
    assert [crm.customers.get_by_external_id(x).owner for x in ("N1", "N2", "X-LAN")] == ["lan.nguyen"] * 3
    assert crm.customers.get_by_external_id("X-HOA").name == "Khách X-HOA"
    with crm.reading() as conn:
        actors = set(conn.execute(sa.select(t.audit_log.c.actor).where(t.audit_log.c.action == "import")).scalars())
    assert actors == {"lan.nguyen"}

    rows = read_csv(path)
    rows[0]["owner"] = "lan.nguyen"  # N1 as an export shows it now (a blank owner would clear it, as update does)
    write_csv(path, header, [list(r.values()) for r in rows])
    with crm.as_user("thu.vo"):  # the branch manager: the whole Hà Nội team, but not the unowned customer
        again = import_customers(crm, path)
    assert (again.inserted, again.updated, again.unchanged, again.rejected) == (1, 2, 3, 1)
    assert read_csv(again.reject_path)[0]["external_id"] == "X-NONE"
    assert crm.customers.get_by_external_id("N3").owner == "hoa.le"

    add_user(crm, "yen.vu", roles=["marketing"])  # may read customers, not add them
    with pytest.raises(PermissionDenied, match="customers.create"):
        import_customers(crm.as_user("yen.vu"), write_csv(tmp_path / "m.csv", header, [["M1", "Mới", ""]]))
    with pytest.raises(NotFound):  # nothing written
        crm.customers.get_by_external_id("M1")


def test_an_import_cannot_change_contact_details_its_user_does_not_see(crm: CRM, tmp_path: Path) -> None:
    add_user(crm, "lan.nguyen", teams=["Hà Nội"], roles=["sales"])
    add_user(
        crm,
        "an.le",
        teams=["Hà Nội"],
        grants={"customers.create": "team", "customers.update": "team", "customers.read": "team"},
    )
    crm.customers.add(external_id="C1", name="Nguyễn Văn An", phones=["0912 345 678"], owner="lan.nguyen")
    path = write_csv(
        tmp_path / "c.csv", ["external_id", "name", "phone"], [["C1", "Nguyễn Văn An Mới", "0912 345 679"]]
    )
    summary = import_customers(crm.as_user("an.le"), path)
    assert summary.rejected == 1
    assert read_csv(summary.reject_path)[0]["reject_reason"].startswith("phones: cannot be changed without seeing them")
    write_csv(path, ["external_id", "name"], [["C1", "Nguyễn Văn An Mới"]])
    assert import_customers(crm.as_user("an.le"), path).updated == 1  # the name: that they may change
    assert crm.customers.get_by_external_id("C1").phones == ("+84912345678",)


def test_a_scoped_users_export_holds_only_their_scope_with_contacts_masked_without_the_permission(
    crm: CRM, tmp_path: Path
) -> None:
    owner_world(crm)
    add_user(crm, "thu.vo", teams=["Hà Nội"], roles=["manager"])
    add_user(crm, "an.le", teams=["Hà Nội"], grants={"customers.export": "team"})
    for external_id, owner, attribute in (
        ("E-LAN", "lan.nguyen", "tier"),
        ("E-HOA", "hoa.le", "since"),
        ("E-TUAN", "tuan.pham", "hcm_only"),
        ("E-NONE", None, "nobody"),
    ):
        crm.customers.add(
            external_id=external_id,
            name=f"Khách {external_id}",
            owner=owner,
            email=f"{external_id}@example.vn",
            phone="0912 345 678",
            addresses=[{"line1": "12 Lý Thường Kiệt", "line2": "Tầng 3", "ward": "Hàng Bài", "postal_code": "100000"}],
            attributes={attribute: "x"},
        )

    def exported(who: Any) -> dict[str, dict[str, str]]:
        out = io.StringIO()
        export_customers(who, out)
        return {r["external_id"]: r for r in csv.DictReader(io.StringIO(out.getvalue()))}

    everyone = exported(crm)
    assert set(everyone) == {"E-LAN", "E-HOA", "E-TUAN", "E-NONE"}
    manager = exported(crm.as_user("thu.vo"))
    assert set(manager) == {"E-LAN", "E-HOA"}
    assert manager["E-HOA"] == {k: v for k, v in everyone["E-HOA"].items() if k in manager["E-HOA"]}
    assert set(manager["E-LAN"]) == {*COLUMNS, *(f"consent_{ch}" for ch in crm.channels), "attr_since", "attr_tier"}

    with crm.as_user("an.le"):  # the team's customers, but no customers.contact_details
        masked = exported(crm)
    assert set(masked) == {"E-LAN", "E-HOA"}
    lan = masked["E-LAN"]
    assert (lan["email"], lan["phone"]) == ("e***@example.vn", "'+84 9** *** 678")  # quoted: no formula for Excel
    assert (lan["address_line1"], lan["address_line2"], lan["postal_code"], lan["ward"]) == ("***", "", "", "Hàng Bài")
    assert (lan["name"], lan["owner"], lan["attr_tier"]) == ("Khách E-LAN", "lan.nguyen", "x")

    with pytest.raises(PermissionDenied, match="customers.export"):  # sales work their customers, not the list
        exported(crm.as_user("lan.nguyen"))
