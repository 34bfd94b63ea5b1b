"""History, not only customers: a migration brings each customer's original "customer since" and the
past calls, visits and e-mails, with the import guarantees of the core (issue 21, item 15)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from crmkit import CRM, PermissionDenied, Plugin, ValidationError, hookimpl
from crmkit.core import tables as t
from crmkit.core.transfer import (
    INTERACTION_COLUMNS,
    RowValidator,
    export_customers,
    import_customers,
    import_interactions,
    schema_input,
)
from crmkit.testing import add_user, read_csv, write_csv

UTC = UTC


def since(crm: CRM, external_id: str) -> datetime:
    return crm.customers.get_by_external_id(external_id).created_at


# -- customer since ------------------------------------------------------------------------------------------


def test_customer_import_keeps_the_original_customer_since_and_refuses_the_future_naming_the_row(
    crm: CRM, tmp_path: Path
) -> None:
    tomorrow = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    path = write_csv(
        tmp_path / "kh.csv",
        ["external_id", "name", "created_at"],
        [
            ["KH1", "Nguyễn Văn An", "2019-03-01"],  # a date: its first moment in Hà Nội
            ["KH2", "Trần Thị Bình", "15/08/2020"],  # day-first, as Vietnamese files write it
            ["KH3", "Lê Văn Cường", "2021-06-30T14:05:00+07:00"],  # an aware time
            ["KH4", "Phạm Thị Dung", tomorrow],
            ["KH5", "Hoàng Văn Em", "2021-06-30T14:05:00"],  # naive: refused, not guessed
            ["KH6", "Vũ Thị Phương", "30/02/2021"],
            ["KH7", "Đỗ Văn Giang", ""],  # blank: now, as before
        ],
    )
    summary = import_customers(crm, path)
    assert (summary.inserted, summary.rejected) == (4, 3)
    assert since(crm, "KH1") == datetime(2019, 2, 28, 17, 0, tzinfo=UTC)
    assert since(crm, "KH2") == datetime(2020, 8, 14, 17, 0, tzinfo=UTC)
    assert since(crm, "KH3") == datetime(2021, 6, 30, 7, 5, tzinfo=UTC)
    assert datetime.now(UTC) - since(crm, "KH7") < timedelta(minutes=5)
    rejects = {r["reject_row"]: r["reject_reason"] for r in read_csv(summary.reject_path or "")}
    assert rejects["4"] == "created_at: is in the future"
    assert rejects["5"].startswith("created_at: needs a time zone")
    assert rejects["6"].startswith("created_at: not a valid date or date-time: '30/02/2021'")
    assert set(rejects) == {"4", "5", "6"}


def test_a_rerun_corrects_customer_since_and_a_blank_cell_keeps_it(crm: CRM, tmp_path: Path) -> None:
    header = ["external_id", "name", "created_at"]
    import_customers(crm, write_csv(tmp_path / "a.csv", header, [["KH1", "An", "2019-03-01"]]))
    again = import_customers(crm, write_csv(tmp_path / "a.csv", header, [["KH1", "An", "2019-03-01"]]))
    assert (again.unchanged, again.updated) == (1, 0)
    moved = import_customers(crm, write_csv(tmp_path / "b.csv", header, [["KH1", "An", "2018-01-02T08:00Z"]]))
    assert moved.updated == 1
    assert since(crm, "KH1") == datetime(2018, 1, 2, 8, 0, tzinfo=UTC)
    kept = import_customers(crm, write_csv(tmp_path / "c.csv", header, [["KH1", "An Nguyễn", ""]]))
    assert kept.updated == 1
    assert since(crm, "KH1") == datetime(2018, 1, 2, 8, 0, tzinfo=UTC)


def test_customer_since_through_the_api_and_the_fast_path_agree_with_the_schema(crm: CRM) -> None:
    customer = crm.customers.add(name="Ngô Thị Hà", created_at="2017-12-31")
    assert customer.created_at == datetime(2017, 12, 30, 17, 0, tzinfo=UTC)
    with pytest.raises(ValidationError) as refused:
        crm.customers.add(name="Ngô Thị Hà", created_at=datetime.now(UTC) + timedelta(hours=1))
    assert refused.value.errors == {"created_at": ["is in the future"]}
    validator = RowValidator(crm, "VN")
    for value in ["2019-03-01", "01/03/2019", "2019-03-01T09:30+07:00", "2019-03-01T09:30", "3000-01-01", "soon", ""]:
        data = schema_input({"external_id": "X", "name": "An", "created_at": value}, with_address=False)
        try:
            expected: Any = crm.customers.validate(dict(data))
        except ValidationError as exc:
            expected = exc.errors
            assert validator.fast(dict(data)) is None, value
        else:
            assert validator.fast(dict(data)) in (None, expected), value
        try:
            assert validator(dict(data), 1) == expected, value
        except ValidationError as exc:
            assert exc.errors == expected, value


def test_customer_since_decides_acquisition_counts_and_survives_export_and_import(
    crm_factory: Callable[..., CRM], tmp_path: Path
) -> None:
    old, new = crm_factory(), crm_factory()
    import_customers(
        old,
        write_csv(
            tmp_path / "kh.csv",
            ["external_id", "name", "created_at"],
            [["KH1", "An", "2019-03-01"], ["KH2", "Bình", "2024-05-02T10:00+07:00"]],
        ),
    )
    with old.reading() as conn:  # what acquisition KPIs count: customers created in a period
        c = t.customers.c
        in_2019 = conn.execute(
            sa.select(sa.func.count()).where(
                c.created_at >= datetime(2019, 1, 1, tzinfo=UTC), c.created_at < datetime(2020, 1, 1, tzinfo=UTC)
            )
        ).scalar()
    assert in_2019 == 1
    export_customers(old, tmp_path / "out.csv")
    assert "created_at" in read_csv(tmp_path / "out.csv")[0]
    import_customers(new, tmp_path / "out.csv")
    assert since(new, "KH1") == since(old, "KH1") and since(new, "KH2") == since(old, "KH2")


# -- interactions ---------------------------------------------------------------------------------------------


@pytest.fixture
def customers(crm: CRM) -> dict[str, int]:
    """Three customers with external ids, one of them merged into another."""
    an = crm.customers.add(name="Nguyễn Văn An", external_id="KH1")
    binh = crm.customers.add(name="Trần Thị Bình", external_id="KH2")
    old = crm.customers.add(name="Trần T. Bình", external_id="KH2-OLD")
    crm.customers.merge(binh.id, old.id)
    return {"KH1": an.id, "KH2": binh.id, "KH2-OLD": old.id}


HEADER = [
    "external_id",
    "customer_external_id",
    "channel",
    "direction",
    "occurred_at",
    "subject",
    "summary",
    "outcome",
    "rating",
    "employee",
]


def test_past_contacts_load_onto_their_customers_with_their_times_and_ratings(
    crm: CRM, customers: dict[str, int], tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "lich_su.csv",
        HEADER,
        [
            [
                "CALL-1",
                "KH1",
                "phone",
                "inbound",
                "2019-04-01T09:00+07:00",
                "Hỏi giá",
                "Hỏi giá cà phê",
                "quote sent",
                5,
                "lan",
            ],
            ["MAIL-7", "KH2-OLD", "email", "outbound", "2020-06-01T02:00Z", "Báo giá", "", "", "", ""],
        ],
    )
    summary = import_interactions(crm, path)
    assert (summary.rows, summary.inserted, summary.rejected, summary.reject_path) == (2, 2, 0, None)
    [call] = crm.interactions.timeline(customers["KH1"]).items
    assert (
        call.external_id,
        call.channel,
        call.direction,
        call.occurred_at,
        call.subject,
        call.summary,
        call.outcome,
        call.rating,
        call.employee,
    ) == (
        "CALL-1",
        "phone",
        "inbound",
        datetime(2019, 4, 1, 2, 0, tzinfo=UTC),
        "Hỏi giá",
        "Hỏi giá cà phê",
        "quote sent",
        5,
        "lan",
    )
    [mail] = crm.interactions.timeline(customers["KH2"]).items  # the merged-away customer's: onto the kept one
    assert (mail.external_id, mail.employee, mail.summary, mail.rating) == ("MAIL-7", None, None, None)


def test_a_rerun_never_duplicates_and_updates_what_changed_in_the_source(
    crm: CRM, customers: dict[str, int], tmp_path: Path
) -> None:
    rows = [
        ["C1", "KH1", "phone", "inbound", "2019-04-01T09:00+07:00", "Hỏi giá", "", "", "4", ""],
        ["C2", "KH1", "in_person", "inbound", "2019-05-01T09:00+07:00", "Ghé cửa hàng", "", "", "", ""],
    ]
    path = write_csv(tmp_path / "h.csv", HEADER, rows)
    assert import_interactions(crm, path).inserted == 2
    again = import_interactions(crm, path)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 2)
    rows[0][8] = "5"
    changed = import_interactions(crm, write_csv(tmp_path / "h.csv", HEADER, rows))
    assert (changed.inserted, changed.updated, changed.unchanged) == (0, 1, 1)
    timeline = crm.interactions.timeline(customers["KH1"]).items
    assert sorted((i.external_id, i.rating) for i in timeline) == [("C1", 5), ("C2", None)]
    [entry] = [e for e in crm.audit.entries(limit=100).items if e.entity == "interaction"]
    assert entry.changes == {"before": {"rating": 4}, "after": {"rating": 5}}


def test_bad_rows_go_to_the_reject_file_naming_field_and_row_and_can_be_reimported(
    crm: CRM, customers: dict[str, int], tmp_path: Path
) -> None:
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    good = ["G1", "KH1", "phone", "inbound", "2019-04-01T09:00+07:00", "", "", "", "", ""]
    path = write_csv(
        tmp_path / "h.csv",
        HEADER,
        [
            good,
            ["", "KH1", "phone", "inbound", "2019-04-01T09:00+07:00", "", "", "", "", ""],
            ["B2", "KH9", "phone", "inbound", "2019-04-01T09:00+07:00", "", "", "", "", ""],
            ["B3", "KH1", "pigeon", "sideways", "2019-04-01T09:00", "", "", "", "9", ""],
            ["B4", "KH1", "phone", "inbound", later, "", "", "", "", ""],
            ["B5", "KH1", "phone", "inbound", "", "", "", "", "", ""],
            ["G1", "KH1", "sms", "inbound", "2019-04-01T09:00+07:00", "", "", "", "", ""],
        ],
    )
    summary = import_interactions(crm, path)
    assert (summary.inserted, summary.rejected) == (1, 6)
    rejects = read_csv(summary.reject_path or "")
    reasons = {r["reject_row"]: r["reject_reason"] for r in rejects}
    assert reasons["2"].startswith("external_id: required")
    assert reasons["3"] == "customer_external_id: no customer 'KH9'"
    assert reasons["4"].startswith("channel: Must be one of: email, phone")
    assert "; direction: Must be one of: inbound, outbound" in reasons["4"]
    assert "; occurred_at: needs a time zone" in reasons["4"] and "; rating: Must be greater" in reasons["4"]
    assert reasons["5"] == "occurred_at: is in the future (history only: log what happened)"
    assert reasons["6"].startswith("occurred_at: required")
    assert reasons["7"] == "external_id: 'G1' is also on row 1 of this file"
    assert [r["reject_line"] for r in rejects] == ["3", "4", "5", "6", "7", "8"]
    # the reject file, corrected, imports as it is
    fixed = [
        {
            **r,
            "external_id": r["external_id"] or "B1",
            "customer_external_id": "KH2",
            "channel": "sms",
            "direction": "outbound",
            "occurred_at": "2019-04-01T09:00+07:00",
            "rating": "",
        }
        for r in rejects[:-1]
    ]
    corrected = write_csv(tmp_path / "fixed.csv", list(fixed[0]), [list(r.values()) for r in fixed])
    assert import_interactions(crm, corrected).inserted == 5


def test_a_file_that_cannot_be_imported_is_refused_before_anything_is_written(
    crm: CRM, customers: dict[str, int], tmp_path: Path
) -> None:
    with pytest.raises(ValidationError, match=r"unknown column\(s\) 'Nhân viên'.*--map"):
        import_interactions(crm, write_csv(tmp_path / "a.csv", [*HEADER, "Nhân viên"], []))
    with pytest.raises(ValidationError, match="no customer column"):
        import_interactions(crm, write_csv(tmp_path / "b.csv", ["external_id", "channel", "occurred_at"], []))
    with pytest.raises(ValidationError, match="no external_id column"):
        import_interactions(crm, write_csv(tmp_path / "c.csv", ["customer_id", "channel", "occurred_at"], []))
    mapped = write_csv(
        tmp_path / "d.csv",
        ["Mã", "Khách", "Kênh", "Lúc"],
        [["X1", customers["KH1"], "phone", "2019-04-01T09:00+07:00"]],
    )
    summary = import_interactions(
        crm, mapped, mapping={"Mã": "external_id", "Khách": "customer_id", "Kênh": "channel", "Lúc": "occurred_at"}
    )
    assert summary.inserted == 1
    assert INTERACTION_COLUMNS[:3] == ("external_id", "customer_id", "customer_external_id")


def test_json_lines_name_customers_by_id_or_external_id_but_not_both(
    crm: CRM, customers: dict[str, int], tmp_path: Path
) -> None:
    path = tmp_path / "h.jsonl"
    lines = [
        {"external_id": "J1", "customer_id": customers["KH1"], "channel": "chat", "occurred_at": "2022-01-01T10:00Z"},
        {
            "external_id": "J2",
            "customer_external_id": "KH2",
            "channel": "web",
            "occurred_at": "2022-01-02T10:00Z",
            "rating": 3,
        },
        {
            "external_id": "J3",
            "customer_id": customers["KH1"],
            "customer_external_id": "KH1",
            "channel": "chat",
            "occurred_at": "2022-01-01T10:00Z",
        },
        {"external_id": "J4", "channel": "chat", "occurred_at": "2022-01-01T10:00Z"},
        {"external_id": "J5", "customer_id": 999999, "channel": "chat", "occurred_at": "2022-01-01T10:00Z"},
    ]
    path.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines), encoding="utf-8")
    summary = import_interactions(crm, path)
    assert (summary.inserted, summary.rejected) == (2, 3)
    reasons = [r["reject_reason"] for r in read_csv(summary.reject_path or "")]
    assert reasons == [
        "customer_id: give customer_id or customer_external_id, not both",
        "customer_id: required (or customer_external_id): whose contact it was",
        "customer_id: no customer 999999",
    ]


def test_each_batch_is_one_transaction_and_a_rerun_finishes_an_interrupted_import(
    crm: CRM, customers: dict[str, int], tmp_path: Path
) -> None:
    rows = [[f"H{n}", "KH1", "phone", "inbound", f"2019-04-01T09:{n:02d}+07:00", "", "", "", "", ""] for n in range(25)]
    path = write_csv(tmp_path / "h.csv", HEADER, rows)
    calls: list[int] = []

    def interrupt_after_two(rows: int) -> None:
        calls.append(rows)
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_interactions(crm, path, batch_size=10, progress=interrupt_after_two)
    assert len(crm.interactions.timeline(customers["KH1"], limit=100).items) == 20
    rerun = import_interactions(crm, path, batch_size=10)
    assert (rerun.unchanged, rerun.inserted) == (20, 5)
    with crm.reading() as conn:
        audited = conn.execute(
            sa.select(sa.func.count())
            .select_from(t.audit_log)
            .where(t.audit_log.c.action == "import", t.audit_log.c.entity == "interactions")
        ).scalar()
    assert audited == 2 + 3


def test_users_need_interactions_log_and_import_only_for_customers_in_its_scope(crm: CRM, tmp_path: Path) -> None:
    add_user(crm, "lan", roles=["sales"])
    add_user(crm, "minh", roles=["sales"])
    add_user(crm, "yen", roles=["marketing"])
    mine = crm.customers.add(name="Khách của Lan", external_id="L1", owner="lan")
    theirs = crm.customers.add(name="Khách của Minh", external_id="M1", owner="minh")
    path = write_csv(
        tmp_path / "h.csv",
        HEADER,
        [
            ["A", "L1", "phone", "inbound", "2019-04-01T09:00+07:00", "", "", "", "", ""],
            ["B", "M1", "phone", "inbound", "2019-04-01T09:00+07:00", "", "", "", "", ""],
        ],
    )
    with pytest.raises(PermissionDenied):
        import_interactions(crm.as_user("yen"), path)
    summary = import_interactions(crm.as_user("lan"), path)
    assert (summary.inserted, summary.rejected) == (1, 1)
    # outside the scope reads as absent: the file does not learn whose customer M1 is, or that it exists
    assert [r["reject_reason"] for r in read_csv(summary.reject_path or "")] == [
        "customer_external_id: 'M1' is not a customer you can log interactions for"
    ]
    assert [i.external_id for i in crm.interactions.timeline(mine.id).items] == ["A"]
    assert crm.interactions.timeline(theirs.id).items == []
    # minh may not rewrite lan's history through its external id
    import_interactions(
        crm,
        write_csv(
            tmp_path / "m.csv", HEADER, [["B", "M1", "phone", "inbound", "2019-04-01T09:00+07:00", "", "", "", "", ""]]
        ),
    )
    hijack = write_csv(
        tmp_path / "x.csv", HEADER, [["A", "M1", "sms", "inbound", "2019-04-01T09:00+07:00", "", "", "", "", ""]]
    )
    refused = import_interactions(crm.as_user("minh"), hijack)
    assert [r["reject_reason"] for r in read_csv(refused.reject_path or "")] == [
        "external_id: 'A' is used by an interaction you cannot change"
    ]
    assert [i.channel for i in crm.interactions.timeline(mine.id).items] == ["phone"]


class _Vetoes:
    def __init__(self) -> None:
        self.logged: list[str] = []

    @hookimpl
    def crmkit_interaction_before_log(self, interaction: dict[str, Any]) -> None:
        if interaction.get("subject") == "spam":
            raise ValidationError("no spam", field="subject")

    @hookimpl
    def crmkit_interaction_logged(self, interaction: Any) -> None:
        self.logged.append(interaction.external_id)


def test_imported_contacts_go_through_the_interaction_hooks(crm_factory: Callable[..., CRM], tmp_path: Path) -> None:
    plugin = _Vetoes()
    crm = crm_factory(plugins=[Plugin(name="vetoes", hooks=[plugin], version="1.0")])
    crm.customers.add(name="An", external_id="KH1")
    path = write_csv(
        tmp_path / "h.csv",
        HEADER,
        [
            ["A", "KH1", "phone", "inbound", "2019-04-01T09:00+07:00", "hi", "", "", "", ""],
            ["B", "KH1", "phone", "inbound", "2019-04-01T09:00+07:00", "spam", "", "", "", ""],
        ],
    )
    summary = import_interactions(crm, path)
    assert (summary.inserted, summary.rejected) == (1, 1)
    assert plugin.logged == ["A"]
    assert [r["reject_reason"] for r in read_csv(summary.reject_path or "")] == ["subject: no spam"]


def test_the_cli_imports_interactions_and_prints_the_counts(
    crm: CRM, customers: dict[str, int], tmp_path: Path
) -> None:
    from crmkit.cli.context import CLIContext
    from crmkit.cli.main import cli

    path = write_csv(
        tmp_path / "h.csv",
        HEADER,
        [
            ["A", "KH1", "phone", "inbound", "2019-04-01T09:00+07:00", "", "", "", "", ""],
            ["B", "KH1", "fax", "inbound", "2019-04-01T09:00", "", "", "", "", ""],
        ],
    )
    url = crm.engine.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(
        cli, ["--db", url, "--format", "json", "interactions", "import", str(path)], obj=CLIContext(plugins=[])
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0] | {"reject_file": None} == {
        "rows": 2,
        "inserted": 1,
        "updated": 0,
        "unchanged": 0,
        "rejected": 1,
        "reject_file": None,
    }
    assert "occurred_at: needs a time zone" in (tmp_path / "h.csv.rejects.csv").read_text(encoding="utf-8-sig")


def test_the_core_migration_adds_the_external_id_to_interactions_of_an_older_database(crm_factory: Any) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from crmkit import migrations

    crm = crm_factory()
    crm.customers.add(name="An")
    crm.interactions.log(1, "phone", occurred_at=datetime(2020, 1, 1, tzinfo=UTC))
    core = migrations.core_lineage()
    migrations.downgrade(crm.engine, core, "crmkit_0003")
    with crm.engine.connect() as conn:
        assert "external_id" not in {c["name"] for c in sa.inspect(conn).get_columns("interactions")}
    migrations.upgrade(crm.engine, [core])
    only = {
        "compare_type": True,
        "include_object": lambda obj, name, type_, reflected, other: (
            obj.name == "interactions"
            if type_ == "table"
            else getattr(obj, "table", None) is None or obj.table.name == "interactions"
        ),
    }
    with crm.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn, opts=only), t.metadata) == []
        assert conn.execute(sa.select(t.interactions.c.external_id)).scalars().all() == [None]
