"""Unmerge: a merge's journal gives the merged customer back exactly what came from it — its fields, contact points,
tags, consents, memberships, interactions — and leaves the kept customer as it was, plus what it gained since.
Refusals (unknown, already undone, a chain, an erased snapshot) write nothing; the CLI and the API do the same."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import attrs
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

import crmkit
from crmkit import Plugin, hookimpl
from crmkit.cli.context import CLIContext
from crmkit.cli.main import cli
from crmkit.core import tables as t
from crmkit.testing import add_user, api_client

ICT = timezone(timedelta(hours=7))


def as_it_was(customer: Any) -> Any:
    """A customer without the time of its last write (an unmerge writes both customers)."""
    return attrs.evolve(customer, updated_at=None)


def table_rows(crm: Any) -> dict[str, int]:
    """Row counts of the core tables a merge and an unmerge move rows between."""
    with crm.reading() as conn:
        return {
            table.name: conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            for table in (t.contact_points, t.addresses, t.tags, t.consents, t.memberships, t.search_keys)
        }


def two_records(crm: Any) -> tuple[Any, Any, Any]:
    """Two records of Nguyễn Văn An sharing an e-mail and a tag, with their own interactions, consents and orgs."""
    hoang_long = crm.customers.add(name="Công ty Hoàng Long", kind="organization")
    kept = crm.customers.add(
        name="Nguyễn Văn An", email="an@example.vn", phone="0912345678", tags=["vip"], attributes={"hạng": "vàng"}
    )
    merged = crm.customers.add(
        name="Nguyen Van An",
        emails=["an@example.vn", "an.work@hoanglong.vn"],
        phone="0987 654 321",
        tags=["vip", "hanoi"],
        birth_date="1990-08-15",
        city="Hà Nội",
        attributes={"hạng": "bạc", "kênh": "zalo"},
        organizations=[{"organization_id": hoang_long.id, "role": "buyer"}],
        addresses=[{"line1": "5 Lý Thường Kiệt", "province": "Hà Nội"}],
    )
    crm.customers.set_consent(kept.id, "email", True, source="web form", at=datetime(2024, 1, 5, tzinfo=ICT))
    crm.customers.set_consent(merged.id, "email", False, source="unsubscribe link", at=datetime(2024, 6, 1, tzinfo=ICT))
    crm.customers.set_consent(merged.id, "sms", True, source="shop", at=datetime(2024, 7, 1, tzinfo=ICT))
    crm.interactions.log(kept.id, "email", subject="hỏi giá")
    for channel in ("sms", "phone"):
        crm.interactions.log(merged.id, channel, subject="đặt hàng")
    return crm.customers.get(kept.id), crm.customers.get(merged.id), hoang_long


def subjects(crm: Any, customer_id: int) -> list[str]:
    return sorted(i.subject or "" for i in crm.interactions.timeline(customer_id, limit=100))


class _UnmergeWatcher:
    def __init__(self) -> None:
        self.seen: list[tuple[int, int, int, list[str]]] = []

    @hookimpl
    def crmkit_customer_unmerged(self, crm: Any, kept: Any, restored: Any, merge_id: int, session: Any) -> None:
        # inside the unmerge transaction: the rows are back already
        self.seen.append((kept.id, restored.id, merge_id, subjects(crm, restored.id)))


def test_unmerge_gives_back_exactly_what_came_from_the_merged_record(crm_factory: Any) -> None:
    watcher = _UnmergeWatcher()
    crm = crm_factory(plugins=[Plugin("probe", hooks=watcher)])
    kept, merged, hoang_long = two_records(crm)
    rows = table_rows(crm)
    (merge,) = crm.customers.merge_many([(kept.id, merged.id)])
    after = crm.customers.get(kept.id)
    assert (after.birth_date, after.city, after.attributes) == (
        merged.birth_date,
        "Hà Nội",
        {"hạng": "vàng", "kênh": "zalo"},
    )
    later = crm.interactions.log(kept.id, "in_person", subject="sau khi gộp")  # stays with the kept customer

    done = crm.customers.unmerge(merge.id)

    assert (done.kept_id, done.restored_id) == (kept.id, merged.id)
    assert done.rows_moved_back["interactions"] == 2
    assert as_it_was(crm.customers.get(merged.id, follow_merges=False)) == as_it_was(merged)
    assert as_it_was(crm.customers.get(kept.id)) == as_it_was(kept)
    assert subjects(crm, merged.id) == ["đặt hàng", "đặt hàng"]
    assert subjects(crm, kept.id) == ["hỏi giá", "sau khi gộp"]
    assert crm.interactions.get(later.id).customer_id == kept.id
    assert table_rows(crm) == rows
    assert [c.id for c in crm.customers.find("0987654321")] == [merged.id]
    assert [p.id for p in crm.customers.members(hoang_long.id)] == [merged.id]
    assert watcher.seen == [(kept.id, merged.id, merge.id, ["đặt hàng", "đặt hàng"])]
    assert crm.audit.entries(customer_id=merged.id, limit=1).items[0].action == "unmerge"
    (listed,) = crm.customers.merges()
    assert (listed.id, listed.undone_by, listed.rows_moved) == (
        merge.id,
        "system",
        done.rows_moved_back["interactions"] + 4,
    )
    assert listed.undone_at is not None


def test_a_field_the_kept_customer_changed_since_the_merge_stays(crm: Any) -> None:
    kept, merged, _ = two_records(crm)
    merge = crm.customers.merge_many([(kept.id, merged.id)])[0]
    crm.customers.update(kept.id, city="Đà Nẵng")
    crm.customers.set_consent(kept.id, "sms", False, source="phoned to stop")
    crm.customers.unmerge(merge.id)
    now = crm.customers.get(kept.id)
    assert (now.city, now.birth_date) == ("Đà Nẵng", None)
    assert (now.consents["sms"].granted, now.consents["sms"].source) == (False, "phoned to stop")
    assert crm.customers.get(merged.id).consents["sms"].source == "shop"


def test_one_merge_of_a_batch_is_undone_alone(crm: Any) -> None:
    an, two, three = (crm.customers.add(name="Lê Thị Hoa", phone=f"090311122{n}") for n in range(3))
    for who in (two, three):
        crm.interactions.log(who.id, "phone", subject=f"của {who.id}")
    first, second = crm.customers.merge_many([(an.id, two.id), (an.id, three.id)])
    crm.customers.unmerge(second.id)
    assert subjects(crm, three.id) == [f"của {three.id}"]
    assert subjects(crm, an.id) == [f"của {two.id}"]
    assert crm.customers.get(two.id).id == an.id
    assert crm.customers.get(an.id).phones == ("+84903111220", "+84903111221")


def test_unknown_or_undone_merges_are_refused_and_nothing_is_written(crm: Any) -> None:
    kept, merged, _ = two_records(crm)
    with pytest.raises(crmkit.NotFound, match="merge 9999"):
        crm.customers.unmerge(9999)
    merge = crm.customers.merge_many([(kept.id, merged.id)])[0]
    crm.customers.unmerge(merge.id)
    rows, customers = table_rows(crm), (crm.customers.get(kept.id), crm.customers.get(merged.id))
    with pytest.raises(crmkit.Conflict, match=f"merge {merge.id} was already undone"):
        crm.customers.unmerge(merge.id)
    assert (table_rows(crm), (crm.customers.get(kept.id), crm.customers.get(merged.id))) == (rows, customers)


def test_a_kept_customer_merged_again_since_is_refused_with_the_chain_until_the_later_merge_is_undone(crm: Any) -> None:
    a, b, c = (crm.customers.add(name=f"Trần Minh {n}") for n in "ABC")
    crm.interactions.log(b.id, "phone", subject="của B")
    first = crm.customers.merge_many([(a.id, b.id)])[0]
    second = crm.customers.merge_many([(c.id, a.id)])[0]
    with pytest.raises(crmkit.Conflict) as refused:
        crm.customers.unmerge(first.id)
    assert str(refused.value) == (
        f"customer {a.id} was merged again since merge {first.id}: {a.id} → {c.id} (merge {second.id}); "
        f"unmerge {second.id} first"
    )
    assert crm.customers.get(b.id).id == c.id
    crm.customers.unmerge(second.id)
    assert crm.customers.get(b.id).id == a.id  # the tombstone follows its kept customer back
    crm.customers.unmerge(first.id)
    assert subjects(crm, b.id) == ["của B"] and crm.customers.get(b.id).status == "active"


def test_erasure_of_either_customer_erases_the_journal_s_copies(crm: Any) -> None:
    kept, merged, _ = two_records(crm)
    merge = crm.customers.merge_many([(kept.id, merged.id)])[0]
    crm.customers.unmerge(merge.id)
    crm.customers.erase(merged.id)
    with crm.reading() as conn:
        row = conn.execute(sa.select(t.merges.c.snapshot, t.merges.c.filled).where(t.merges.c.id == merge.id)).one()
    assert (row.snapshot, row.filled) == ({}, {})
    other = crm.customers.add(name="Phạm Thu Hà", email="ha@example.vn")
    again = crm.customers.merge_many([(kept.id, other.id)])[0]
    crm.customers.erase(kept.id)
    with pytest.raises(crmkit.Conflict, match=f"customer {kept.id} is erased"):
        crm.customers.unmerge(again.id)


def test_unmerge_needs_the_merge_permission_on_both_customers(crm: Any) -> None:
    kept, merged, _ = two_records(crm)
    merge = crm.customers.merge_many([(kept.id, merged.id)])[0]
    add_user(crm, "thu", roles=["read-only"])
    with pytest.raises(crmkit.PermissionDenied):
        crm.as_user("thu").customers.unmerge(merge.id)
    assert crm.customers.get(merged.id).id == kept.id


def test_cli_lists_merges_and_unmerges_one(crm: Any) -> None:
    kept, merged, _ = two_records(crm)
    merge = crm.customers.merge_many([(kept.id, merged.id)])[0]
    url = crm.engine.url.render_as_string(hide_password=False)

    def invoke(*args: str) -> Any:
        return CliRunner().invoke(cli, ["--db", url, *args], obj=CLIContext(plugins=[]))

    listed = json.loads(invoke("--format", "json", "customers", "merges").stdout)
    assert [(m["merge"], m["kept"], m["merged"], m["undone"]) for m in listed] == [(merge.id, kept.id, merged.id, None)]
    result = invoke("customers", "unmerge", str(merge.id))
    assert result.exit_code == 0, result.stderr
    assert f"merge {merge.id} undone: customer {merged.id} is separate from {kept.id}" in result.stderr
    assert crm.customers.get(merged.id).status == "active"
    again = invoke("customers", "unmerge", str(merge.id))
    assert again.exit_code != 0 and again.stderr.startswith(f"error: merge {merge.id} was already undone")
    unknown = invoke("customers", "unmerge", "404")
    assert unknown.exit_code != 0 and unknown.stderr.startswith("error:") and "merge 404" in unknown.stderr


def test_api_lists_merges_and_unmerges_one(crm: Any) -> None:
    kept, merged, _ = two_records(crm)
    merge = crm.customers.merge_many([(kept.id, merged.id)])[0]
    lan = api_client(crm, "lan", grants={"customers.read": "all", "customers.merge": "all"})
    listed = lan.get("/customers/merges")
    assert listed.status_code == 200 and [m["id"] for m in listed.json] == [merge.id]
    done = lan.post(f"/customers/merges/{merge.id}/unmerge")
    assert done.status_code == 200 and done.json["restored_id"] == merged.id
    assert lan.post(f"/customers/merges/{merge.id}/unmerge").status_code == 409
    viewer = api_client(crm, "thu", roles=["read-only"])
    assert viewer.post(f"/customers/merges/{merge.id}/unmerge").status_code == 403


#: Undoes a merge in one transaction, then waits to be killed before it commits.
UNMERGER = """
import sys, time
from pathlib import Path
import crmkit
url, merge_id, ready = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
crm = crmkit.CRM(url, plugins=[])
with crm.transaction():
    crm.customers.unmerge(merge_id)
    ready.touch()
    time.sleep(120)
"""


def test_an_unmerge_killed_before_it_commits_leaves_the_merge_whole(crm: Any, tmp_path: Path) -> None:
    kept, merged, _ = two_records(crm)
    merge = crm.customers.merge_many([(kept.id, merged.id)])[0]
    before = (crm.customers.get(kept.id), table_rows(crm), subjects(crm, kept.id))
    ready = tmp_path / "ready"
    url = crm.engine.url.render_as_string(hide_password=False)
    worker = subprocess.Popen(
        [sys.executable, "-c", UNMERGER, url, str(merge.id), str(ready)], stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 90
    while not ready.exists() and worker.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ready.exists(), worker.stderr.read() if worker.stderr else ""
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    assert (crm.customers.get(kept.id), table_rows(crm), subjects(crm, kept.id)) == before
    assert crm.customers.get(merged.id, follow_merges=False).status == "merged"
    assert crm.customers.merges()[0].undone_at is None
    crm.customers.unmerge(merge.id)  # nothing half-undone stands in the way
    assert subjects(crm, merged.id) == ["đặt hàng", "đặt hàng"]


#: Waits for the start signal, then undoes the merge; prints "ok" or the refusal.
RACER = """
import sys, time
from pathlib import Path
import crmkit
url, merge_id, ready, go = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
crm = crmkit.CRM(url, plugins=[])
ready.touch()
while not go.exists():
    time.sleep(0.005)
try:
    crm.customers.unmerge(merge_id)
    print("ok")
except crmkit.Conflict as exc:
    print("refused:", exc)
"""


def test_two_unmerges_of_one_merge_at_once_one_wins_the_other_is_refused(crm: Any, tmp_path: Path) -> None:
    kept, merged, _ = two_records(crm)
    merge = crm.customers.merge_many([(kept.id, merged.id)])[0]
    url = crm.engine.url.render_as_string(hide_password=False)
    go = tmp_path / "go"
    racers = []
    for n in range(2):
        ready = tmp_path / f"ready{n}"
        command = [sys.executable, "-c", RACER, url, str(merge.id), str(ready), str(go)]
        racers.append((ready, subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
    deadline = time.monotonic() + 120
    while not all(ready.exists() for ready, _ in racers) and time.monotonic() < deadline:
        assert all(p.poll() is None for _, p in racers), [p.communicate() for _, p in racers]
        time.sleep(0.02)
    go.touch()
    outcomes = []
    for _, process in racers:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        outcomes.append(out.strip())
    assert sorted(outcomes)[0] == "ok"
    assert sorted(outcomes)[1].startswith(f"refused: merge {merge.id} was already undone")
    assert subjects(crm, merged.id) == ["đặt hàng", "đặt hàng"] and subjects(crm, kept.id) == ["hỏi giá"]
