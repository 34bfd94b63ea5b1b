"""IDIC under identity: its permissions and default roles, scoped agendas, review queue, runs, reports and exports."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from crmkit import NotFound, PermissionDenied, ValidationError
from crmkit.testing import add_user
from crmkit_idic import models as m

pytestmark = pytest.mark.crmkit_plugins("idic")
LATER = date(2100, 1, 1)


def _people(crm: Any) -> None:
    """Team HN (manager Hoa, salespeople Lan and Minh) and team HCM (salesman Tuấn)."""
    add_user(crm, "hoa", teams=["HN"], roles=["manager"])
    add_user(crm, "lan", teams=["HN"], roles=["sales"])
    add_user(crm, "minh", teams=["HN"], roles=["sales"])
    add_user(crm, "tuan", teams=["HCM"], roles=["sales"])


def test_idic_declares_its_permissions_with_default_roles(crm: Any) -> None:
    declared = {name: p for name, p in crm.access.permissions.items() if p.plugin == "idic"}
    assert sorted(declared) == ["idic.plan", "idic.read", "idic.review", "idic.run"]
    assert dict(declared["idic.read"].roles) == {
        "manager": "team",
        "sales": "own",
        "marketing": "all",
        "support": "all",
        "read-only": "all",
    }
    assert dict(declared["idic.run"].roles) == {"manager": "team"}
    assert not declared["idic.plan"].scoped
    _people(crm)
    add_user(crm, "thu", roles=["marketing"])
    lan = crm.as_user("lan")
    with pytest.raises(PermissionDenied) as refused:
        lan.idic.run()
    assert refused.value.permission == "idic.run"
    with pytest.raises(PermissionDenied) as refused:
        lan.idic.add_treatment("VIP", tier="most_valuable", message="Cảm ơn")
    assert refused.value.permission == "idic.plan"
    assert crm.as_user("thu").idic.add_treatment("VIP", tier="most_valuable", message="Cảm ơn")["name"] == "VIP"
    assert [t["name"] for t in lan.idic.treatments()] == ["VIP"]


def test_a_sales_users_agenda_shows_only_their_own_customers(crm: Any, invoke: Any) -> None:
    _people(crm)
    mine = crm.customers.add(name="Đặng Thu Trang", owner="lan", consents={"sms": True})
    theirs = crm.customers.add(name="Ngô Văn Tâm", owner="minh", consents={"email": True})
    crm.customers.add(name="Khách Chưa Giao", consents={"phone": True})  # nobody's yet
    crm.idic.run()
    assert len(crm.idic.agenda(None, LATER)) == 3
    lan = crm.as_user("lan")
    assert [(a["customer_id"], a["owner"]) for a in lan.idic.agenda(None, LATER)] == [(mine.id, "lan")]
    assert lan.idic.agenda("minh", LATER) == []
    assert [a["customer_id"] for a in crm.as_user("hoa").idic.agenda("minh", LATER)] == [theirs.id]
    assert crm.as_user("tuan").idic.agenda(None, LATER) == []
    with crm.as_user("lan"):  # what `crmkit --user lan idic agenda` does
        shown = json.loads(invoke(crm, "--format", "json", "idic", "agenda", "--date", LATER.isoformat()).output)
    assert [a["customer_id"] for a in shown] == [mine.id]


def test_a_review_pair_with_one_customer_outside_the_scope_is_hidden(crm: Any) -> None:
    _people(crm)
    a = crm.customers.add(name="Trần Thị Bình", phone="0912345678", owner="lan")
    b = crm.customers.add(name="Lê Minh Châu", phone="0912345678", owner="minh")
    c = crm.customers.add(name="Phạm Thu Hà", phone="0987111222", owner="lan")
    d = crm.customers.add(name="Đỗ Minh Khang", phone="0987111222", owner="tuan")
    crm.idic.run(steps=["identify"])
    assert {(r["customer_id"], r["other_id"]) for r in crm.idic.reviews()} == {(a.id, b.id), (c.id, d.id)}
    hoa = crm.as_user("hoa")
    queue = hoa.idic.reviews()
    assert [(r["customer_id"], r["other_id"]) for r in queue] == [(a.id, b.id)]
    assert queue[0]["reason"] == "same phone +84912345678, different name"  # Hoa sees HN's contact details
    assert hoa.idic.status()["review_queue"] == 1 and hoa.idic.status()["scoped"] is True
    hidden = next(r["id"] for r in crm.idic.reviews() if r["other_id"] == d.id)
    with pytest.raises(NotFound):
        hoa.idic.accept(hidden)
    with pytest.raises(NotFound):
        hoa.idic.reject(hidden)
    result = hoa.idic.accept(queue[0]["id"])
    assert result["kept"] == a.id and crm.customers.get(b.id).id == a.id
    assert [g["merged_id"] for g in hoa.idic.merges()] == [b.id]
    assert crm.as_user("tuan").idic.status()["review_queue"] == 0
    with pytest.raises(PermissionDenied) as refused:
        crm.as_user("lan").idic.reviews()
    assert refused.value.permission == "idic.review"


def test_a_reviewer_without_contact_details_sees_reasons_masked(crm: Any) -> None:
    add_user(crm, "kiem", grants={"idic.review": "all", "customers.read": "all"})
    crm.customers.add(name="Trần Thị Bình", phone="0912345678", email="binh@example.vn")
    crm.customers.add(name="Tran Thi Binh", email="binh@example.vn", attributes={"zalo": "@binh.tran"})
    crm.customers.add(name="Lê Minh Châu", phone="0912345678")
    crm.idic.run(steps=["identify"])
    kiem = crm.as_user("kiem")
    assert [r["reason"] for r in kiem.idic.reviews()] == ["same phone +84 9** *** 678, different name"]
    assert kiem.idic.merges()[0]["reason"] == "same email b***@example.vn, similar name"
    assert crm.idic.merges()[0]["reason"] == "same email binh@example.vn, similar name"


def test_a_scoped_manager_runs_idic_over_their_teams_customers_only(crm: Any) -> None:
    _people(crm)
    hn_one = crm.customers.add(name="Nguyễn Văn An", email="an@example.vn", owner="lan")
    hn_two = crm.customers.add(name="Nguyen Van An", email="an@example.vn", owner="minh")
    crm.customers.add(name="Nguyễn Văn An", email="an@example.vn", owner="tuan")  # in HCM: not Hoa's to merge
    hcm_pair = [
        crm.customers.add(name="Vũ Đức Hải", phone="0987000111", owner="tuan"),
        crm.customers.add(name="Vu Duc Hai", phone="0987000111", owner="tuan"),
    ]
    run = crm.as_user("hoa").idic.run()
    assert run.actor == "hoa"
    assert run.result("identify").counts["merged"] == 1 and run.result("identify").counts["queued"] == 0
    assert crm.customers.get(hn_two.id).id == hn_one.id
    assert all(crm.customers.get(c.id).status == "active" for c in hcm_pair)
    assert run.result("differentiate").counts["customers"] == 1
    with crm.reading() as conn:
        profiled = conn.execute(sa.select(m.profiles.c.customer_id)).scalars().all()
    assert profiled == [hn_one.id]
    with pytest.raises(PermissionDenied) as refused:
        crm.as_user("lan").idic.run(steps=["differentiate"])
    assert refused.value.permission == "idic.run"


def test_only_the_user_who_started_a_scoped_run_or_one_with_scope_all_resumes_it(crm: Any, monkeypatch: Any) -> None:
    from crmkit_idic import runs

    _people(crm)
    add_user(crm, "lead", teams=["HCM"], roles=["manager"])
    crm.customers.add(name="Hoàng Thu Hà", owner="lan")

    def crash(*args: Any) -> Any:
        raise RuntimeError("power cut")

    monkeypatch.setitem(runs.STEP_FUNCTIONS, "differentiate", crash)
    with pytest.raises(RuntimeError):
        crm.as_user("hoa").idic.run(steps=["differentiate"])
    monkeypatch.undo()
    failed = crm.idic.last_run()
    with pytest.raises(PermissionDenied, match="started by hoa"):
        crm.as_user("lead").idic.resume(failed.id)
    assert crm.as_user("hoa").idic.resume(failed.id).status == "done"


def test_a_scoped_users_status_runs_and_report_count_only_their_customers(crm: Any, tmp_path: Path) -> None:
    _people(crm)
    for n in range(3):
        crm.customers.add(name=f"Khách của Lan {n}", owner="lan", consents={"email": True})
    for n in range(2):
        crm.customers.add(name=f"Khách của Tuấn {n}", owner="tuan", consents={"email": True})
    run = crm.idic.run()
    assert run.result("differentiate").counts["customers"] == 5 and run.scoped is None
    lan = crm.as_user("lan")
    mine = lan.idic.get(run.id)
    assert mine.scoped == "lan"
    assert mine.result("differentiate").counts == {"customers": 3, "tier_unknown": 3}
    assert mine.result("differentiate").report["matrix"] == [
        {"tier": "unknown", "needs": "general", "customers": 3, "value": ""}
    ]
    assert mine.result("interact").counts["planned"] == 3
    assert [r.id for r in lan.idic.runs()] == [run.id] and lan.idic.last_run().scoped == "lan"
    status = lan.idic.status()
    assert (status["tier_unknown"], status["open_plan_items"], status["scoped"]) == (3, 3, True)
    assert crm.idic.status()["tier_unknown"] == 5 and crm.idic.status()["scoped"] is False
    with crm.as_user("lan"):  # a block as Lan: a handle wraps a returned Path as a context manager (core issue)
        html = crm.idic.report(tmp_path / "lan.html").read_text(encoding="utf-8")  # the business's language: vi
        english = crm.idic.report(tmp_path / "lan-en.html", locale="en").read_text(encoding="utf-8")
    assert "Trong phạm vi:" in html and "phạm vi của lan" in html
    assert "Scoped:" in english and "in lan&#x27;s scope" in english  # escaped, as all text is
    assert "Trong phạm vi:" not in crm.idic.report(tmp_path / "all.html").read_text(encoding="utf-8")


def test_the_customer_360_section_and_export_follow_the_users_scope_and_contact_details(crm: Any) -> None:
    _people(crm)
    add_user(crm, "kiem", grants={"customers.read": "all", "customers.export": "all", "idic.read": "all"})
    customer = crm.customers.add(
        name="Vũ Thị Mai", email="mai@example.vn", phone="0903123456", owner="lan", attributes={"zalo": "maivu"}
    )
    crm.idic.run()
    assert crm.as_user("tuan").customers.find().items == []
    section = crm.as_user("lan").customers.profile(customer.id).sections["idic"]
    assert {(i["kind"], i["value"]) for i in section["identifiers"]} == {
        ("email", "mai@example.vn"),
        ("phone", "+84903123456"),
        ("social:zalo", "maivu"),
    }
    kiem = crm.as_user("kiem")
    masked = {(i["kind"], i["value"]) for i in kiem.customers.profile(customer.id).sections["idic"]["identifiers"]}
    assert masked == {("email", "m***@example.vn"), ("phone", "+84 9** *** 456"), ("social:zalo", "m***")}
    exported = kiem.customers.export_data(customer.id)["idic"]["idic_identifiers"]
    assert {row["value"] for row in exported} == {"m***@example.vn", "+84 9** *** 456", "m***"}
    add_user(crm, "ban", grants={"customers.read": "all"})
    assert "idic" not in crm.as_user("ban").customers.profile(customer.id).sections


def test_the_default_owner_must_be_a_user_and_settings_need_settings_admin(crm: Any) -> None:
    _people(crm)
    with pytest.raises(ValidationError) as info:
        crm.idic.configure(default_owner="ai.do")
    assert info.value.errors == {"default_owner": ["no user 'ai.do'"]}
    assert crm.idic.configure(default_owner="lan")["default_owner"] == "lan"
    with pytest.raises(PermissionDenied) as refused:
        crm.as_user("hoa").idic.configure(review_threshold=0.6)
    assert refused.value.permission == "settings.admin"
    assert crm.as_user("hoa").idic.settings()["default_owner"] == "lan"


def test_the_upgrade_makes_users_of_the_employees_plan_items_name(crm: Any) -> None:
    from crmkit import migrations

    customer = crm.customers.add(name="Đinh Công Tráng")
    with crm.transaction() as session:  # a plan item written before owners were users
        session.connection().execute(
            m.plan_items.insert().values(
                customer_id=customer.id,
                owner="old.employee",
                due_on=date(2026, 1, 5),
                channel="phone",
                purpose="x",
                status="open",
            )
        )
    lineage = next(lin for lin in crm.lineages() if lin.name == "idic")
    migrations.downgrade(crm.engine, lineage, "idic_0001")
    migrations.upgrade(crm.engine, [lineage])
    assert crm.users.get("old.employee").active
