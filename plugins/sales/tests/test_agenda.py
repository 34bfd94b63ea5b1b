"""Appointments, tasks, agendas in the business's time zone, the iCalendar export, and contracts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from crmkit import Conflict, ValidationError
from crmkit_sales.ical import fold

from .conftest import Shop

pytestmark = pytest.mark.crmkit_plugins("sales")

HCM = ZoneInfo("Asia/Ho_Chi_Minh")


def _unfold(text: str) -> list[str]:
    """Content lines of an iCalendar text (RFC 5545 §3.1: CRLF followed by one space continues a line)."""
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
    return text.replace("\r\n ", "").split("\r\n")[:-1]


def _unescape(value: str) -> str:
    out, chars = [], iter(value)
    for ch in chars:
        if ch == "\\":
            nxt = next(chars)
            out.append("\n" if nxt in "nN" else nxt)
        else:
            out.append(ch)
    return "".join(out)


def test_agenda_overdue_tasks_and_ics_export(shop: Shop) -> None:
    sales = shop.crm.sales
    monday = date(2026, 3, 2)
    early = sales.appointments.add(  # 07:30 in Hồ Chí Minh City is 00:30 UTC: still Monday there
        customer_id=shop.dist.id,
        employee="lan.nguyen",
        subject="Đàm phán giá đại lý; đợt 2, quý I",
        starts_at=datetime(2026, 3, 2, 7, 30, tzinfo=HCM),
        duration_minutes=90,
        channel="in_person",
        place="88 Trần Hưng Đạo, Phường 1, Quận 5, TP. Hồ Chí Minh",
        notes="Mang mẫu cà phê\nvà bảng giá \\ bản in",
    )
    sunday_night = sales.appointments.add(
        customer_id=shop.an.id,
        employee="lan.nguyen",
        subject="Gọi xác nhận",
        starts_at=datetime(2026, 3, 1, 23, 30, tzinfo=HCM),
        channel="phone",
    )
    thursday = sales.appointments.add(
        customer_id=shop.an.id,
        employee="lan.nguyen",
        subject="Bàn giao máy",
        starts_at=datetime(2026, 3, 5, 14, 0, tzinfo=HCM),
        channel="video",
        place="Meet",
    )
    sales.appointments.add(
        customer_id=shop.an.id, employee="minh.tran", subject="Khác", starts_at=datetime(2026, 3, 2, 10, 0, tzinfo=HCM)
    )
    cancelled = sales.appointments.add(
        customer_id=shop.an.id, employee="lan.nguyen", subject="Hủy", starts_at=datetime(2026, 3, 3, 9, 0, tzinfo=HCM)
    )
    sales.appointments.cancel(cancelled.id)
    due = sales.tasks.add(
        customer_id=shop.dist.id,
        employee="lan.nguyen",
        title="Gửi báo giá sửa đổi",
        due_at=datetime(2026, 3, 2, 17, 0, tzinfo=HCM),
        priority="high",
    )
    done = sales.tasks.add(
        customer_id=shop.an.id, employee="lan.nguyen", title="Gọi lại", due_at=datetime(2026, 3, 1, 9, 0, tzinfo=HCM)
    )
    sales.tasks.complete(done.id, outcome="Khách đã nhận hàng")
    with pytest.raises(ValidationError, match="was done"):
        sales.tasks.complete(done.id)

    day = sales.appointments.agenda("lan.nguyen", on=monday)
    assert [a.id for a in day.appointments] == [early.id] and [t.id for t in day.tasks] == [due.id]
    assert day.start == datetime(2026, 3, 1, 17, 0, tzinfo=UTC)
    week = sales.appointments.agenda("lan.nguyen", on=date(2026, 3, 4), span="week")
    assert [a.id for a in week.appointments] == [early.id, thursday.id]  # not Sunday's, not the cancelled one
    assert sunday_night.id in [a.id for a in sales.appointments.agenda("lan.nguyen", on=date(2026, 3, 1)).appointments]

    overdue = sales.tasks.overdue(now=datetime(2026, 3, 3, 0, 0, tzinfo=HCM))
    assert [t.id for t in overdue] == [due.id]
    assert sales.tasks.overdue(now=datetime(2026, 3, 2, 16, 0, tzinfo=HCM)) == []
    assert [t.id for t in sales.tasks.list(employee="lan.nguyen", open_only=False)] == [done.id, due.id]

    held = sales.appointments.record_outcome(early.id, "Khách đồng ý đặt thử 20 thùng")
    assert (held.status, held.outcome) == ("done", "Khách đồng ý đặt thử 20 thùng")
    moved = sales.appointments.reschedule(thursday.id, datetime(2026, 3, 6, 9, 0, tzinfo=HCM))
    assert moved.ends_at - moved.starts_at == timedelta(hours=1)

    ics = sales.appointments.ics("lan.nguyen", on=monday)
    physical = ics.split("\r\n")
    assert all(len(line.encode("utf-8")) <= 75 for line in physical)
    assert any(line.startswith(" ") for line in physical)  # long Vietnamese lines were folded
    lines = _unfold(ics)
    assert lines[0] == "BEGIN:VCALENDAR" and lines[-1] == "END:VCALENDAR" and "VERSION:2.0" in lines
    events = [i for i, line in enumerate(lines) if line == "BEGIN:VEVENT"]
    assert len(events) == 2 and lines.count("BEGIN:VTODO") == 1
    first = dict(line.split(":", 1) for line in lines[events[0] + 1 : lines.index("END:VEVENT", events[0])])
    assert first["UID"].startswith(f"sales-appointment-{early.id}@")
    assert (first["DTSTART"], first["DTEND"]) == ("20260302T003000Z", "20260302T020000Z")
    assert first["DTSTAMP"].endswith("Z") and len(first["DTSTAMP"]) == 16
    assert _unescape(first["SUMMARY"]) == f"Đàm phán giá đại lý; đợt 2, quý I — {shop.dist.name}"
    assert "\\;" in first["SUMMARY"] and "\\," in first["SUMMARY"]
    assert _unescape(first["LOCATION"]) == "88 Trần Hưng Đạo, Phường 1, Quận 5, TP. Hồ Chí Minh"
    assert _unescape(first["DESCRIPTION"]).endswith("Mang mẫu cà phê\nvà bảng giá \\ bản in")
    todo = lines[lines.index("BEGIN:VTODO") + 1 : lines.index("END:VTODO")]
    assert "DUE:20260302T100000Z" in todo and "PRIORITY:1" in todo


def test_ics_folding_never_splits_a_character() -> None:
    line = "SUMMARY:" + "Nguyễn Thị Hồng Nhung — " * 6
    folded = fold(line)
    parts = folded.split("\r\n")
    assert all(len(p.encode("utf-8")) <= 75 for p in parts)
    assert folded.replace("\r\n ", "") == line


def test_contracts_renewals_and_expiry(shop: Shop) -> None:
    contracts = shop.crm.sales.contracts
    today = date(2026, 3, 2)
    order = shop.crm.sales.orders.place(customer_id=shop.dist.id, lines=[{"sku": "DV-BT-GIO", "quantity": 4}])
    soon = contracts.add(
        customer_id=shop.dist.id,
        order_id=order.id,
        number="HĐ-2025-0001",
        title="Bảo trì máy pha",
        start_date=date(2025, 4, 1),
        end_date=date(2026, 3, 31),
        renewal_date=date(2026, 3, 15),
        value_minor=4_800_000,
        currency="VND",
    )
    by_end = contracts.add(
        customer_id=shop.an.id,
        number="HĐ-2025-0002",
        title="Cung cấp cà phê",
        start_date=date(2025, 3, 20),
        end_date=date(2026, 3, 20),
        value_minor=24_000_000,
        currency="VND",
    )
    later = contracts.add(
        customer_id=shop.an.id,
        number="HĐ-2025-0003",
        title="Cung cấp gạo",
        start_date=date(2025, 6, 1),
        end_date=date(2026, 6, 1),
        value_minor=9_000_000,
        currency="VND",
    )
    ended = contracts.add(
        customer_id=shop.an.id,
        number="HĐ-2024-0009",
        title="Cũ",
        start_date=date(2024, 1, 1),
        end_date=date(2025, 1, 1),
        value_minor=1,
        currency="VND",
    )
    assert [c.id for c in contracts.up_for_renewal(30, today=today)] == [soon.id, by_end.id]
    assert [c.id for c in contracts.up_for_renewal(100, today=today)] == [soon.id, by_end.id, later.id]
    with pytest.raises(Conflict):
        contracts.add(
            customer_id=shop.an.id, number="HĐ-2025-0001", title="x", start_date=today, value_minor=1, currency="VND"
        )
    with pytest.raises(ValidationError) as error:
        contracts.add(
            customer_id=shop.an.id,
            order_id=order.id,
            number="HĐ-X",
            title="x",
            start_date=today,
            value_minor=1,
            currency="VND",
        )
    assert "order_id" in error.value.errors
    with pytest.raises(ValidationError) as error:
        contracts.update(later.id, end_date=date(2025, 5, 1))
    assert "end_date" in error.value.errors
    assert contracts.expire_due(today=today) == 1
    assert contracts.get(ended.id).status == "expired"
    assert contracts.update(soon.id, status="renewed").status == "renewed"
    assert [c.number for c in contracts.list(customer_id=shop.an.id, status="active")] == [
        "HĐ-2025-0003",
        "HĐ-2025-0002",
    ]
