"""Cases through ``crm.service``: opening, the conversation on the customer's timeline, the status table, assignment,
scopes, SLA clocks (paused while waiting on the customer), breaches found once, merge, export and erasure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

import crmkit
from crmkit.testing import add_user
from crmkit_service.models import messages

pytestmark = pytest.mark.crmkit_plugins("service")


def test_a_case_is_opened_answered_and_resolved_and_every_step_is_on_the_timeline(scrm, listener, clock):
    an = scrm.customers.add(name="Nguyễn Văn An", phone="0912 345 678")
    case = scrm.service.open(
        an.id,
        "  Máy lạnh không lạnh ",
        description="Lắp 3 ngày chỉ thổi gió",
        channel="phone",
        category="repair",
        priority="high",
    )
    assert (case.subject, case.status, case.priority, case.created_by) == (
        "Máy lạnh không lạnh",
        "new",
        "high",
        "system",
    )
    # high: first response 2 working hours, resolution 16 — from Monday 09:00 in Hồ Chí Minh City (08:00–17:00)
    assert case.first_response_due_at == datetime(2026, 12, 7, 4, 0, tzinfo=UTC)  # 11:00 local
    assert case.resolution_due_at == datetime(2026, 12, 8, 9, 0, tzinfo=UTC)  # Tuesday 16:00 local
    clock.at(2026, 12, 7, 9, 20)
    answer = scrm.service.reply(case.id, "Dạ, kỹ thuật viên sẽ đến sáng mai ạ")
    scrm.service.note(case.id, "Khách VIP, ưu tiên")
    opened = scrm.service.get(case.id)
    assert opened.status == "open" and opened.first_responded_at == clock.now
    clock.at(2026, 12, 7, 10, 0)
    resolved = scrm.service.set_status(case.id, "resolved", resolution="Thay tụ điện, máy lạnh đã chạy")
    assert resolved.status == "resolved" and resolved.resolved_at == clock.now

    assert [(m.kind, m.direction, m.body) for m in scrm.service.conversation(case.id)] == [
        ("reply", "outbound", "Dạ, kỹ thuật viên sẽ đến sáng mai ạ"),
        ("note", None, "Khách VIP, ưu tiên"),
    ]
    timeline = scrm.interactions.timeline(an.id).items
    assert [(i.direction, i.outcome, i.subject) for i in timeline] == [
        ("outbound", "case_note", f"[#{case.id}] Máy lạnh không lạnh"),
        ("outbound", "case_reply", f"[#{case.id}] Máy lạnh không lạnh"),
        ("inbound", "case_opened", f"[#{case.id}] Máy lạnh không lạnh"),
    ]
    assert timeline[1].summary == "Dạ, kỹ thuật viên sẽ đến sáng mai ạ" and timeline[1].id == answer.interaction_id
    assert timeline[0].summary == "internal note"  # the note's text stays on the case
    assert listener.calls == [("opened", case.id, "new"), ("resolved", case.id, "Thay tụ điện, máy lạnh đã chạy")]
    actions = [e.action for e in scrm.audit.entries(entity="case", limit=10).items]
    assert actions == ["status", "status", "create"]


def test_bad_transitions_and_bad_input_are_refused_naming_the_field(crm):
    an = crm.customers.add(name="Trần Thị Bình")
    case = crm.service.open(an.id, "Giao hàng trễ", channel="chat")
    with pytest.raises(crmkit.ValidationError) as bad:
        crm.service.set_status(case.id, "reopened")
    assert "a new case cannot become reopened" in bad.value.errors["status"][0]
    with pytest.raises(crmkit.ValidationError) as unknown:
        crm.service.set_status(case.id, "done")
    assert "unknown status 'done'" in unknown.value.errors["status"][0]
    with pytest.raises(crmkit.ValidationError) as unresolved:
        crm.service.set_status(case.id, "closed")
    assert list(unresolved.value.errors) == ["resolution"]
    for kwargs, field in (
        ({"priority": "asap"}, "priority"),
        ({"channel": "pigeon"}, "channel"),
        ({"assignee": "ghost"}, "assignee"),
        ({"team": "Không có"}, "team"),
        ({"watchers": ["ghost"]}, "watchers"),
    ):
        with pytest.raises(crmkit.ValidationError) as refused:
            crm.service.open(an.id, "x", **kwargs)
        assert list(refused.value.errors) == [field], kwargs
    with pytest.raises(crmkit.ValidationError) as blank:
        crm.service.open(an.id, "   ")
    assert list(blank.value.errors) == ["subject"]
    with pytest.raises(crmkit.ValidationError) as empty:
        crm.service.reply(case.id, "  ")
    assert list(empty.value.errors) == ["body"]
    with pytest.raises(crmkit.NotFound):
        crm.service.open(an.id + 99, "nobody")
    assert [c.id for c in crm.service.list()] == [case.id] and crm.service.get(case.id).status == "new"


def test_closed_cases_take_no_reply_until_reopened_and_a_customer_reply_reopens_a_resolved_case(crm):
    an = crm.customers.add(name="Lê Văn Cường")
    case = crm.service.open(an.id, "Đổi size áo")
    crm.service.set_status(case.id, "resolved", resolution="Đã đổi")
    crm.service.reply(case.id, "Áo vẫn chật", direction="inbound")
    assert crm.service.get(case.id).status == "reopened"
    crm.service.set_status(case.id, "closed", resolution="Đã hoàn tiền")
    with pytest.raises(crmkit.Conflict, match="closed"):
        crm.service.note(case.id, "late")
    assert crm.service.set_status(case.id, "reopened").status == "reopened"
    crm.service.note(case.id, "Khách quay lại")
    assert [m.body for m in crm.service.conversation(case.id)] == ["Áo vẫn chật", "Khách quay lại"]


def test_assignment_watchers_and_my_open_cases(crm):
    add_user(crm, "lan", teams=["CSKH Hà Nội"], roles=["support"])
    add_user(crm, "minh", roles=["support"])
    an = crm.customers.add(name="Phạm Minh Đức")
    case = crm.service.open(an.id, "Hoá đơn VAT", watchers=["minh"])
    assigned = crm.service.assign(case.id, assignee="lan", team="CSKH Hà Nội")
    assert (assigned.assignee, assigned.team, assigned.watchers) == ("lan", "CSKH Hà Nội", ("minh",))
    assert crm.service.watch(case.id, "lan").watchers == ("lan", "minh")
    assert crm.service.unwatch(case.id, "minh").watchers == ("lan",)
    assert [c.id for c in crm.as_user("lan").service.mine()] == [case.id]
    assert crm.as_user("minh").service.mine() == []
    crm.users.disable("minh")
    with pytest.raises(crmkit.ValidationError) as disabled:
        crm.service.assign(case.id, assignee="minh")
    assert "disabled" in disabled.value.errors["assignee"][0]
    assert crm.service.assign(case.id, assignee=None).assignee is None


def test_a_sales_user_sees_and_works_only_her_customers_cases(crm):
    add_user(crm, "lan", roles=["sales"])
    add_user(crm, "minh", roles=["sales"])
    mine = crm.customers.add(name="Nguyễn Văn An", owner="lan")
    theirs = crm.customers.add(name="Trần Thị Bình", owner="minh")
    lan = crm.as_user("lan")
    own_case = lan.service.open(mine.id, "Hỏi bảo hành")
    other = crm.service.open(theirs.id, "Khách của Minh")
    assert own_case.created_by == "lan"
    assert [c.id for c in lan.service.list()] == [own_case.id]
    for call in (
        lambda: lan.service.get(other.id),
        lambda: lan.service.reply(other.id, "hi"),
        lambda: lan.service.open(theirs.id, "not mine"),
        lambda: lan.service.conversation(other.id),
    ):
        with pytest.raises(crmkit.NotFound):
            call()
    assert lan.service.summary(theirs.id) == {"active": 0, "latest": []}
    with pytest.raises(crmkit.PermissionDenied) as refused:
        lan.service.set_policy("urgent", first_response_minutes=15, resolution_minutes=120)
    assert refused.value.permission == "service.admin"


def test_waiting_on_the_customer_pauses_the_resolution_clock(crm, clock):
    an = crm.customers.add(name="Võ Thị Hoa")
    case = crm.service.open(an.id, "Bảo hành máy lọc nước")  # normal: 4 h / 24 h, Monday 09:00
    assert case.resolution_due_at.astimezone(clock.now.tzinfo) == datetime(2026, 12, 9, 15, 0, tzinfo=clock.now.tzinfo)
    clock.at(2026, 12, 7, 10, 0)  # 23 working hours left
    crm.service.reply(case.id, "Anh/chị gửi giúp em ảnh số seri máy ạ")
    crm.service.set_status(case.id, "waiting_on_customer")
    # a week passes: no breach while paused
    assert crm.service.run_due(now=datetime(2026, 12, 14, 9, 0, tzinfo=clock.now.tzinfo)) == []
    clock.at(2026, 12, 10, 10, 0)  # Thursday: the customer answers, the clock resumes with 23 h left
    crm.service.reply(case.id, "Số seri: WP-2291", direction="inbound")
    resumed = crm.service.get(case.id)
    assert resumed.status == "open" and resumed.paused_at is None
    assert resumed.resolution_due_at.astimezone(clock.now.tzinfo) == datetime(
        2026, 12, 14, 15, 0, tzinfo=clock.now.tzinfo
    )


def test_breaches_are_found_once_and_announced(scrm, listener, clock):
    scrm.service.set_policy("urgent", first_response_minutes=30, resolution_minutes=240)
    an = scrm.customers.add(name="Hoàng Gia Bảo")
    late = scrm.service.open(an.id, "Không đăng nhập được", priority="urgent")
    waiting = scrm.service.open(an.id, "Chờ khách gửi ảnh", priority="urgent")
    scrm.service.reply(waiting.id, "Gửi giúp em ảnh")
    scrm.service.set_status(waiting.id, "waiting_on_customer")
    listener.calls.clear()
    found = scrm.service.run_due(now=clock.now + timedelta(minutes=31))
    assert [(b.case_id, b.target) for b in found] == [(late.id, "first_response")]
    assert scrm.service.run_due(now=clock.now + timedelta(minutes=32)) == []
    found = scrm.service.run_due(now=clock.now + timedelta(hours=5))
    assert [(b.case_id, b.target) for b in found] == [(late.id, "resolution")]
    assert listener.calls == [("breached", late.id, "first_response"), ("breached", late.id, "resolution")]
    assert scrm.service.get(late.id).resolution_breached_at == clock.now + timedelta(hours=5)
    assert scrm.service.get(waiting.id).resolution_breached_at is None


def test_a_team_calendar_and_company_day_off_time_the_sla(crm, clock):
    crm.teams.add("Kỹ thuật")
    crm.service.set_week({5: (480, 720), 6: (480, 720)}, team="Kỹ thuật")  # weekend technicians, mornings only
    crm.service.add_day_off(datetime(2026, 12, 8).date(), "Company trip")
    crm.service.set_policy("low", first_response_minutes=600, resolution_minutes=2880)
    an = crm.customers.add(name="Đặng Thu Trang")
    office = crm.service.open(an.id, "Hỏi giá", priority="low")  # 10 h from Monday 09:00, Tuesday off
    tech = crm.service.open(an.id, "Sửa máy", priority="low", team="Kỹ thuật")  # 4 h on Saturday and Sunday
    local = clock.now.tzinfo
    assert office.first_response_due_at.astimezone(local) == datetime(2026, 12, 9, 10, 0, tzinfo=local)
    assert tech.first_response_due_at.astimezone(local) == datetime(2026, 12, 19, 10, 0, tzinfo=local)
    moved = crm.service.assign(office.id, team="Kỹ thuật")  # 10 h left, now on the weekend technicians' calendar
    assert moved.first_response_due_at.astimezone(local) == datetime(2026, 12, 19, 10, 0, tzinfo=local)
    assert [(d.day.isoformat(), d.team, d.note) for d in crm.service.days_off()] == [
        ("2026-12-08", None, "Company trip")
    ]
    assert crm.service.week("Kỹ thuật")[5] == (480, 720) and crm.service.week()[0] == (480, 1020)
    with pytest.raises(crmkit.ValidationError) as empty:
        crm.service.set_week({})
    assert list(empty.value.errors) == ["hours"]


def test_merge_moves_cases_and_messages_to_the_kept_customer(crm):
    kept = crm.customers.add(name="Phạm Minh Đức", email="duc@example.vn")
    dup = crm.customers.add(name="Pham Minh Duc", email="duc.pham@example.vn")
    crm.service.open(kept.id, "VIP")
    moved = crm.service.open(dup.id, "Giao hàng")
    crm.service.reply(moved.id, "Đang giao")
    crm.customers.merge(kept.id, dup.id)
    assert sorted(c.subject for c in crm.service.list(customer_id=kept.id)) == ["Giao hàng", "VIP"]
    assert [m.customer_id for m in crm.service.conversation(moved.id)] == [kept.id]
    assert crm.service.open(dup.id, "to the merged-away id").customer_id == kept.id


def test_export_and_erase_cover_cases_messages_and_watchers(crm):
    add_user(crm, "lan", roles=["support"])
    an = crm.customers.add(name="Ngô Thanh Tâm")
    other = crm.customers.add(name="Emily Carter")
    case = crm.service.open(an.id, "Refund please", watchers=["lan"])
    crm.service.reply(case.id, "Refund issued")
    kept = crm.service.open(other.id, "Not about Tâm")
    exported = crm.customers.export_data(an.id)["service"]
    assert [c["subject"] for c in exported["service_cases"]] == ["Refund please"]
    assert [m["body"] for m in exported["service_case_messages"]] == ["Refund issued"]
    assert exported["service_case_watchers"] == [{"case_id": case.id, "username": "lan"}]
    crm.customers.erase(an.id, reason="customer request")
    assert crm.service.list() == [crm.service.get(kept.id)]
    with crm.reading() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(messages)).scalar_one() == 0
    with pytest.raises(crmkit.Conflict):
        crm.service.open(an.id, "after erasure")


def test_the_profile_shows_active_cases(crm):
    an = crm.customers.add(name="Bùi Thị Mai")
    first = crm.service.open(an.id, "Một")
    crm.service.set_status(first.id, "resolved", resolution="ok")
    second = crm.service.open(an.id, "Hai")
    section = crm.customers.profile(an.id).sections["service"]
    assert section["active"] == 1 and [c.id for c in section["latest"]] == [second.id, first.id]


def test_the_worker_runs_the_breach_check(scrm, listener, clock):
    from crmkit.worker import Worker

    clock.at(2026, 11, 2, 9, 0)  # a Monday, long past: every target is missed by now
    an = scrm.customers.add(name="Đỗ Văn Hùng")
    case = scrm.service.open(an.id, "Không vào được tài khoản", priority="urgent")
    listener.calls.clear()
    clock.at(2026, 11, 3, 9, 0)  # a day later
    assert "service.run-due" in {job.name for job in Worker(scrm)._declared_jobs()}
    assert Worker(scrm).run_due_jobs() >= 1
    assert sorted(listener.calls) == [("breached", case.id, "first_response"), ("breached", case.id, "resolution")]
    assert "case.sla_breached" in scrm.events.types


def test_webhook_subscribers_get_every_case_event_with_its_data(crm):
    from crmkit.core.tables import webhook_events

    crm.set_setting("webhooks.allow_private_urls", True)
    kinds = [
        "case.opened",
        "case.reply_added",
        "case.note_added",
        "case.assigned",
        "case.status_changed",
        "case.sla_breached",
    ]
    crm.webhooks.subscribe("http://127.0.0.1:9/hooks", kinds)
    add_user(crm, "hoa", roles=["support"])
    an = crm.customers.add(name="Nguyễn Văn An")
    case = crm.service.open(an.id, "Giao hàng trễ", priority="urgent")
    crm.service.reply(case.id, "Đang giao")
    crm.service.note(case.id, "Gọi kho")
    crm.service.assign(case.id, assignee="hoa")
    crm.service.set_status(case.id, "resolved", resolution="Đã giao")
    crm.service.set_status(case.id, "reopened")
    crm.service.run_due(now=case.resolution_due_at + timedelta(days=30))
    with crm.reading() as conn:
        rows = conn.execute(
            sa.select(webhook_events.c.type, webhook_events.c.data, webhook_events.c.customer_id).order_by(
                webhook_events.c.occurred_at
            )
        ).all()
    assert [r.type for r in rows] == [
        "case.opened",
        "case.reply_added",
        "case.status_changed",
        "case.note_added",
        "case.assigned",
        "case.status_changed",
        "case.status_changed",
        "case.sla_breached",
    ]
    assert {r.customer_id for r in rows} == {an.id}
    assert rows[0].data["case"]["subject"] == "Giao hàng trễ" and rows[1].data["message"]["body"] == "Đang giao"
    assert rows[6].data["previous_status"] == "resolved" and rows[7].data["target"] == "resolution"


def test_lists_page_by_case_id_and_filter(crm):
    an = crm.customers.add(name="Trương Văn Phúc")
    made = [crm.service.open(an.id, f"Yêu cầu {n}", priority=p) for n, p in enumerate(("low", "urgent", "low"))]
    first = crm.service.list(limit=2)
    assert [c.id for c in first] == [made[2].id, made[1].id]
    assert [c.id for c in crm.service.list(limit=2, after=first[-1].id)] == [made[0].id]
    assert [c.id for c in crm.service.list(priority="low")] == [made[2].id, made[0].id]
    with pytest.raises(crmkit.ValidationError) as bad:
        crm.service.list(status="finished")
    assert list(bad.value.errors) == ["status"]


def test_control_characters_are_refused_by_field_and_only_long_texts_take_lines(scrm, clock):
    an = scrm.customers.add(name="Nguyễn Văn An")
    for field, attempt in (
        ("subject", lambda: scrm.service.open(an.id, "Máy lạnh\x00 hỏng")),
        ("subject", lambda: scrm.service.open(an.id, "Máy lạnh\nhỏng")),
        ("description", lambda: scrm.service.open(an.id, "Máy lạnh", description="Chỉ thổi gió\x1b[2J")),
        ("category", lambda: scrm.service.open(an.id, "Máy lạnh", category="repair\t")),
    ):
        with pytest.raises(crmkit.ValidationError, match=f"^{field}: contains a control character \\(U\\+00"):
            attempt()
    assert scrm.service.list() == [] and scrm.interactions.timeline(an.id).items == []
    case = scrm.service.open(an.id, "Máy lạnh", description="Lắp 3 ngày:\n\t- chỉ thổi gió")
    assert case.description == "Lắp 3 ngày:\n\t- chỉ thổi gió"
    with pytest.raises(crmkit.ValidationError, match="^body: contains a control character \\(U\\+0000"):
        scrm.service.note(case.id, "Khách VIP\x00")
    with pytest.raises(crmkit.ValidationError, match="^resolution: contains a control character \\(U\\+007F"):
        scrm.service.set_status(case.id, "resolved", resolution="Thay tụ\x7f")
    with pytest.raises(crmkit.ValidationError, match="^note: contains a control character \\(U\\+000A"):
        scrm.service.add_day_off(datetime(2026, 12, 24).date(), "Nghỉ\nGiáng sinh")
    assert scrm.service.conversation(case.id) == [] and scrm.service.get(case.id).status == "new"
    scrm.service.reply(case.id, "Dạ, kỹ thuật viên sẽ đến:\n- sáng mai")
    assert [m.body for m in scrm.service.conversation(case.id)] == ["Dạ, kỹ thuật viên sẽ đến:\n- sáng mai"]
