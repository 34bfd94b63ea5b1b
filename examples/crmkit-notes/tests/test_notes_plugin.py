"""crmkit-notes' own tests: the service, its hooks, its CLI group, and crmkit's plugin contract.

They use the fixtures crmkit.testing provides to every plugin (``crm`` on SQLite and PostgreSQL).
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

import crmkit
from crmkit.cli import CLIContext
from crmkit.core.tables import customers
from crmkit.testing import PluginContract, add_user
from crmkit_notes.commands import notes as notes_group

pytestmark = pytest.mark.crmkit_plugins("notes")


class TestNotesContract(PluginContract):
    plugin = "notes"

    def populate(self, crm, customer_id):
        crm.notes.add(customer_id, "Khách hẹn gọi lại thứ Hai")

    def permission_calls(self):
        return {
            "notes.read": lambda crm, cid: crm.notes.list(cid),
            "notes.write": lambda crm, cid: crm.notes.add(cid, "Gọi lại"),
        }

    def scoped_calls(self):
        return {
            "list": lambda crm, cid: crm.notes.list(cid),
            "profile section": lambda crm, cid: crm.notes.summary(cid)["latest"],
        }


def test_a_sales_user_reads_and_writes_notes_of_own_customers_only(crm):
    add_user(crm, "lan", roles=["sales"])
    add_user(crm, "minh", roles=["sales"])
    mine = crm.customers.add(name="Nguyễn Văn An", owner="lan")
    theirs = crm.customers.add(name="Trần Thị Bình", owner="minh")
    lan = crm.as_user("lan")
    assert lan.notes.add(mine.id, "Hẹn gặp thứ Sáu").author == "lan"
    with pytest.raises(crmkit.NotFound):
        lan.notes.add(theirs.id, "not mine")
    with pytest.raises(crmkit.NotFound):
        lan.notes.list(theirs.id)
    crm.notes.add(theirs.id, "Khách của Minh")
    assert lan.notes.summary(theirs.id)["count"] == 0 and crm.notes.summary(theirs.id)["count"] == 1


def test_notes_are_listed_newest_first_with_author(crm):
    an = crm.customers.add(name="Nguyễn Văn An")
    earlier = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    crm.notes.add(an.id, "First call", created_at=earlier)
    with crm.acting_as("lan"):
        crm.notes.add(an.id, "  Gửi báo giá qua e-mail  ")
    listed = crm.notes.list(an.id)
    assert [(n.text, n.author) for n in listed] == [("Gửi báo giá qua e-mail", "lan"), ("First call", "system")]
    assert listed[1].created_at == earlier
    assert [n.text for n in crm.notes.list(an.id, limit=1)] == ["Gửi báo giá qua e-mail"]


def test_bad_notes_are_refused_whole_and_named(crm):
    an = crm.customers.add(name="Trần Thị Bình")
    with pytest.raises(crmkit.ValidationError) as blank:
        crm.notes.add(an.id, "   ")
    assert "text" in blank.value.errors
    with pytest.raises(crmkit.ValidationError) as second:
        crm.notes.add_many([{"customer_id": an.id, "text": "fine"}, {"customer_id": an.id, "text": "x" * 5001}])
    assert second.value.row == 2 and "text" in second.value.errors
    with pytest.raises(crmkit.NotFound):
        crm.notes.add(an.id + 999, "nobody")
    with pytest.raises(crmkit.NotFound):
        crm.notes.list(an.id + 999)
    assert crm.notes.list(an.id) == []


def test_a_failing_note_in_a_batch_writes_none(crm):
    an = crm.customers.add(name="Lê Văn Cường")
    with pytest.raises(crmkit.NotFound):
        crm.notes.add_many([{"customer_id": an.id, "text": "kept?"}, {"customer_id": an.id + 50, "text": "no such"}])
    assert crm.notes.list(an.id) == []


def test_merge_moves_notes_to_the_kept_customer(crm):
    kept = crm.customers.add(name="Phạm Minh Đức", email="duc@example.vn")
    dup = crm.customers.add(name="Pham Minh Duc", email="duc.pham@example.vn")
    crm.notes.add(kept.id, "VIP")
    crm.notes.add(dup.id, "Asked about delivery")
    crm.customers.merge(kept.id, dup.id)
    assert sorted(n.text for n in crm.notes.list(kept.id)) == ["Asked about delivery", "VIP"]
    crm.notes.add(dup.id, "written to the merged-away id")  # lands on the kept customer
    assert crm.notes.summary(kept.id)["count"] == 3 and crm.notes.summary(dup.id)["count"] == 0


def test_export_profile_and_erase(crm):
    an = crm.customers.add(name="Võ Thị Hoa")
    other = crm.customers.add(name="Emily Carter")
    crm.notes.add(an.id, "Thích hoa lan")
    crm.notes.add(other.id, "Not about Hoa")
    exported = crm.customers.export_data(an.id)
    assert [row["text"] for row in exported["notes"]["notes"]] == ["Thích hoa lan"]
    profile = crm.customers.profile(an.id)
    assert profile.sections["notes"]["count"] == 1
    assert profile.sections["notes"]["latest"][0].text == "Thích hoa lan"
    crm.customers.erase(an.id)
    assert crm.notes.summary(an.id) == {"count": 0, "latest": []}
    assert crm.notes.summary(other.id)["count"] == 1
    with pytest.raises(crmkit.Conflict):
        crm.notes.add(an.id, "after erasure")


def test_note_count_is_a_segment_field(crm):
    a = crm.customers.add(name="Busy Customer")
    b = crm.customers.add(name="Quiet Customer")
    crm.notes.add_many([{"customer_id": a.id, "text": f"note {n}"} for n in range(3)])
    crm.notes.add(b.id, "one")
    note_count = crm.hooks.segment_fields()["note_count"]
    with crm.reading() as conn:
        busy = conn.execute(sa.select(customers.c.id).where(note_count >= 2)).scalars().all()
    assert busy == [a.id]


def test_preferred_language_attribute_is_validated(crm):
    an = crm.customers.add(name="Đặng Thu Trang", attributes={"preferred_language": "vi"})
    assert crm.customers.get(an.id).attributes["preferred_language"] == "vi"
    with pytest.raises(crmkit.ValidationError) as exc:
        crm.customers.update(an.id, attributes={"preferred_language": "klingon"})
    assert "preferred_language" in str(exc.value)
    assert crm.customers.get(an.id).attributes["preferred_language"] == "vi"


def test_demo_population_is_deterministic_and_summarised(crm_factory):
    counts = []
    for _ in range(2):
        crm = crm_factory(plugins=["notes"])
        ids = [crm.customers.add(name=f"Demo {n}").id for n in range(12)]
        crm.hooks.demo_populate(ids, seed=7)
        counts.append([crm.notes.summary(cid)["count"] for cid in ids])
        overview = crm.hooks.demo_overview()
    assert counts[0] == counts[1] and sum(counts[0]) > 0
    assert overview["Notes"] == [f"{sum(counts[0])} notes about {sum(1 for c in counts[0] if c)} customers"]


def test_cli_add_and_list(crm):
    an = crm.customers.add(name="Hoàng Gia Bảo")
    runner = CliRunner()
    with crm.acting_as("minh"):
        added = runner.invoke(notes_group, ["add", str(an.id), "Gọi lại lúc 9h"], obj=CLIContext(crm=crm))
    assert added.exit_code == 0, added.output
    assert "Gọi lại lúc 9h" in added.output and "minh" in added.output
    listed = runner.invoke(notes_group, ["list", str(an.id)], obj=CLIContext(format="json", crm=crm))
    assert listed.exit_code == 0, listed.output
    assert '"text": "Gọi lại lúc 9h"' in listed.output and '"author": "minh"' in listed.output
    missing = runner.invoke(notes_group, ["list", str(an.id + 100)], obj=CLIContext(crm=crm))
    assert missing.exit_code != 0 and isinstance(missing.exception, crmkit.NotFound)


def test_plugin_object_imports_nothing_heavy():
    code = (
        "import sys, crmkit_notes.plugin as p; "
        "print(p.plugin.name, sorted(m for m in ('sqlalchemy', 'marshmallow', 'crmkit_notes.service') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["notes", "[]"]


def test_recent_notes_are_capped_in_the_profile(crm):
    an = crm.customers.add(name="Ngô Thanh Tâm")
    start = datetime(2025, 1, 1, tzinfo=UTC)
    crm.notes.add_many(
        [{"customer_id": an.id, "text": f"n{n}", "created_at": start + timedelta(days=n)} for n in range(5)]
    )
    section = crm.customers.profile(an.id).sections["notes"]
    assert section["count"] == 5 and [n.text for n in section["latest"]] == ["n4", "n3", "n2"]


def test_cli_show_and_delete(crm):
    an = crm.customers.add(name="Phan Thanh Long")
    note = crm.notes.add(an.id, "Gửi catalogue")
    runner = CliRunner()
    shown = runner.invoke(notes_group, ["show", str(note.id)], obj=CLIContext(format="json", crm=crm))
    assert shown.exit_code == 0 and '"text": "Gửi catalogue"' in shown.output
    deleted = runner.invoke(notes_group, ["delete", str(note.id)], obj=CLIContext(crm=crm))
    assert deleted.exit_code == 0 and f"note {note.id} about customer {an.id} deleted" in deleted.output
    with pytest.raises(crmkit.NotFound):
        crm.notes.get(note.id)
