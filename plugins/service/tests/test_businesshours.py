"""Business-hours arithmetic: weekends, Tết (lunar, from crmkit.vncalendar) and its substitute days, company days
off, lunch-less default hours, a zone with daylight saving time, and a week without working hours refused."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from crmkit_service.businesshours import WorkingCalendar, check_week, is_public_holiday, vietnam_public_holidays

ICT = ZoneInfo("Asia/Ho_Chi_Minh")
HOUR = timedelta(hours=1)


def at(*parts: int, zone=ICT) -> datetime:
    return datetime(*parts, tzinfo=zone)


def test_time_over_a_weekend_does_not_count():
    calendar = WorkingCalendar(ICT)
    friday = at(2026, 12, 4, 16, 30)  # Friday, half an hour before closing
    assert calendar.add(friday, HOUR) == at(2026, 12, 7, 8, 30).astimezone(UTC)  # Monday 08:30
    assert calendar.add(at(2026, 12, 5, 10, 0), HOUR) == at(2026, 12, 7, 9, 0)  # opened on Saturday
    assert calendar.between(friday, at(2026, 12, 7, 8, 30)) == HOUR


def test_tet_2027_and_its_substitute_days_are_not_worked():
    holidays = vietnam_public_holidays(2027)
    # Tết (mùng 1) is Saturday 6/2/2027: the eve and mùng 1–4 are off, and the two weekend days give 10 and 11/2.
    assert [d.day for d in sorted(holidays) if d.month == 2] == [5, 6, 7, 8, 9, 10, 11]
    assert holidays[date(2027, 2, 6)] == "Tết Nguyên Đán"
    assert holidays[date(2027, 4, 16)] == "Giỗ Tổ Hùng Vương"  # 10/3 âm lịch
    calendar = WorkingCalendar(ICT)
    before_tet = at(2027, 2, 4, 16, 0)  # Thursday 16:00: one working hour left before the holiday
    due = calendar.add(before_tet, 2 * HOUR)
    assert due.astimezone(ICT) == at(2027, 2, 12, 9, 0)  # the next working day is Friday 12/2
    assert calendar.between(before_tet, due) == 2 * HOUR


def test_tet_of_2026_falls_on_a_tuesday_and_crosses_no_year():
    assert [d for d in sorted(vietnam_public_holidays(2026)) if d.month == 2] == [
        date(2026, 2, 16),
        date(2026, 2, 17),
        date(2026, 2, 18),
        date(2026, 2, 19),
        date(2026, 2, 20),
    ]
    assert is_public_holiday(date(2026, 9, 2)) and not is_public_holiday(date(2026, 9, 3))


def test_company_days_off_and_a_team_week_with_saturday_mornings():
    week = check_week({0: (480, 1020), 1: (480, 1020), 2: (480, 1020), 3: (480, 1020), 4: (480, 1020), 5: (480, 720)})
    off = {date(2026, 12, 24)}
    calendar = WorkingCalendar(ICT, week, lambda d: d in off or is_public_holiday(d))
    assert calendar.add(at(2026, 12, 23, 16, 0), 2 * HOUR) == at(2026, 12, 25, 9, 0)  # 24/12 off
    assert calendar.add(at(2026, 12, 25, 16, 30), HOUR) == at(2026, 12, 26, 8, 30)  # Saturday morning
    assert calendar.add(at(2026, 12, 26, 11, 30), HOUR) == at(2026, 12, 28, 8, 30)  # closes at noon


def test_daylight_saving_time_keeps_local_opening_hours():
    berlin = ZoneInfo("Europe/Berlin")
    calendar = WorkingCalendar(berlin, day_off=lambda d: False)
    # Friday 27/3/2026 16:00 CET + 2 working hours: Monday 30/3 09:00 CEST (clocks moved on Sunday)
    due = calendar.add(at(2026, 3, 27, 16, 0, zone=berlin), 2 * HOUR)
    assert due.astimezone(berlin) == at(2026, 3, 30, 9, 0, zone=berlin)
    assert due == datetime(2026, 3, 30, 7, 0, tzinfo=UTC)


def test_bad_weeks_are_refused_naming_the_problem():
    with pytest.raises(ValueError, match="at least one day"):
        check_week({})
    with pytest.raises(ValueError, match="mon: opening 1020 and closing 480"):
        check_week({0: (1020, 480)})
    with pytest.raises(ValueError, match="time zone"):
        WorkingCalendar(ICT).add(datetime(2026, 12, 7, 9, 0), HOUR)


def test_adding_working_time_and_measuring_it_agree():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    calendar = WorkingCalendar(ICT, day_off=lambda d: d == date(2027, 1, 20) or is_public_holiday(d))
    starts = st.datetimes(min_value=datetime(2026, 12, 20), max_value=datetime(2027, 3, 1), timezones=st.just(ICT))

    @settings(max_examples=150, deadline=None, database=None)
    @given(start=starts, minutes=st.integers(min_value=1, max_value=60 * 9 * 15))
    def check(start: datetime, minutes: int) -> None:
        due = calendar.add(start, timedelta(minutes=minutes))
        assert calendar.between(start, due) == timedelta(minutes=minutes)
        local = due.astimezone(ICT)
        assert local.weekday() < 5 and not is_public_holiday(local.date()) and local.date() != date(2027, 1, 20)
        assert time(8, 0) < local.time() <= time(17, 0)  # within opening hours (ending at closing, not at opening)

    check()
