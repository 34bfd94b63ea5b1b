"""Business-hours arithmetic on the business's calendar: working hours per weekday, weekends, Vietnamese public
holidays (the lunar ones from :mod:`crmkit.vncalendar`) and company days off.

Pure functions and one frozen value object, no database: :class:`WorkingCalendar` adds working time to a moment
(an SLA's due time) and measures the working time between two moments (what is left when the clock pauses).
Arithmetic runs on UTC instants between each day's local opening and closing, so it stays right in a zone with
daylight saving time too.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache

import attrs

from crmkit.vncalendar import lunar_to_solar, tet

#: A weekday's working hours: (opens, closes) in minutes after local midnight, or several such pairs flattened for
#: a day with breaks — ``(480, 720, 780, 1020)`` is 08:00–12:00 and 13:00–17:00 (lunch off); None = closed all day.
DayHours = tuple[int, ...] | None
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: The default week when the business set none: Monday to Friday, 08:00–17:00.
DEFAULT_WEEK: tuple[DayHours, ...] = ((480, 1020),) * 5 + (None, None)
#: How far ahead a due time is searched for before the calendar is called unworkable (ten years of days).
HORIZON_DAYS = 3660
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


@lru_cache(maxsize=64)
def vietnam_public_holidays(year: int) -> dict[date, str]:
    """Vietnam's public holidays of a solar year (Labour Code 2019, art. 112) with their names.

    New Year (1/1), Tết (the last day of the lunar year and mùng 1–4: five days), Giỗ Tổ Hùng Vương (10/3 âm
    lịch), Reunification Day (30/4), Labour Day (1/5) and National Day (2/9 and 1/9). A holiday falling on a
    Saturday or Sunday gives the next weekday off (art. 111). The government's yearly swaps of days around
    Tết are not law-given: record them as company days off.
    """
    first = tet(year)
    days: dict[date, str] = {date(year, 1, 1): "Tết Dương lịch"}
    for offset in range(-1, 4):
        days[first + timedelta(days=offset)] = "Tết Nguyên Đán"
    days[lunar_to_solar(10, 3, year)] = "Giỗ Tổ Hùng Vương"
    days[date(year, 4, 30)] = "Ngày Giải phóng miền Nam"
    days[date(year, 5, 1)] = "Quốc tế Lao động"
    days[date(year, 9, 1)] = "Quốc khánh"
    days[date(year, 9, 2)] = "Quốc khánh"
    for day in sorted(days):
        if day.weekday() >= 5:
            substitute = day + timedelta(days=1)
            while substitute.weekday() >= 5 or substitute in days:
                substitute += timedelta(days=1)
            days[substitute] = f"{days[day]} (nghỉ bù)"
    return days


def is_public_holiday(day: date) -> bool:
    """Whether ``day`` is a Vietnamese public holiday (or its substitute day); Tết may straddle two solar years."""
    return day in vietnam_public_holidays(day.year) or day in vietnam_public_holidays(day.year + 1)


def check_week(week: Mapping[int, DayHours]) -> tuple[DayHours, ...]:
    """A week from ``{weekday: (opens, closes, …) | None}`` (0 = Monday; missing days closed); ``ValueError`` naming
    the day for hours out of 00:00–24:00, an interval closing before it opens or overlapping the one before, and for
    a week with no working hours at all."""
    days: list[DayHours] = [None] * 7
    for weekday, span in week.items():
        if not 0 <= weekday <= 6:
            raise ValueError(f"weekday must be 0 (Monday) to 6 (Sunday), got {weekday}")
        if span is not None:
            bounds = tuple(span)
            if not bounds or len(bounds) % 2:
                raise ValueError(f"{WEEKDAYS[weekday]}: give opening and closing minutes in pairs, got {bounds}")
            for opens, closes in intervals(bounds):
                if not 0 <= opens < closes <= 1440:
                    raise ValueError(
                        f"{WEEKDAYS[weekday]}: opening {opens} and closing {closes} must be minutes "
                        "within the day, opening first"
                    )
            if list(bounds) != sorted(set(bounds)):
                raise ValueError(f"{WEEKDAYS[weekday]}: intervals {bounds} overlap or are out of order")
            days[weekday] = bounds
    if not any(days):
        raise ValueError("a week needs working hours on at least one day")
    return tuple(days)


def intervals(span: DayHours) -> list[tuple[int, int]]:
    """A day's working intervals, ``(480, 720, 780, 1020)`` → ``[(480, 720), (780, 1020)]``."""
    return [] if span is None else list(zip(span[::2], span[1::2], strict=True))


@attrs.frozen
class WorkingCalendar:
    """When a team works: ``week`` (7 × :data:`DayHours`, Monday first) in ``zone``, minus days off.

    ``day_off(day)`` says whether a local date is not worked (public holidays, company days off); the
    default knows only Vietnam's public holidays.
    """

    zone: tzinfo
    week: tuple[DayHours, ...] = attrs.field(default=DEFAULT_WEEK, converter=tuple)
    day_off: Callable[[date], bool] = is_public_holiday

    def __attrs_post_init__(self) -> None:
        check_week(dict(enumerate(self.week)))

    def windows(self, day: date) -> list[tuple[datetime, datetime]]:
        """The UTC instants ``day``'s working intervals open and close (none when the day is not worked)."""
        span = self.week[day.weekday()]
        if span is None or self.day_off(day):
            return []
        return [(self._at(day, opens), self._at(day, closes)) for opens, closes in intervals(span)]

    def _at(self, day: date, minutes: int) -> datetime:
        if minutes == 1440:
            return self._at(day + timedelta(days=1), 0)
        local = datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=self.zone)
        return local.astimezone(UTC)

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The moment ``duration`` of working time after ``start`` (aware), in UTC.

        Time outside working hours does not count: a case opened on Saturday with a one-hour target is due at
        09:00 on Monday (08:00 opening). A zero duration gives ``start`` itself.
        """
        if start.tzinfo is None:
            raise ValueError("start must carry a time zone")
        if duration < timedelta(0):
            raise ValueError("duration must not be negative")
        cursor = start.astimezone(UTC)
        if duration == timedelta(0):
            return cursor
        remaining = duration
        day = cursor.astimezone(self.zone).date()
        for _ in range(HORIZON_DAYS):
            for opens, closes in self.windows(day):
                begin = max(opens, cursor)
                if begin < closes:
                    available = closes - begin
                    if remaining <= available:
                        return begin + remaining
                    remaining -= available
            day += timedelta(days=1)
        raise ValueError(f"no working time within {HORIZON_DAYS} days of {start.isoformat()}")

    def between(self, start: datetime, end: datetime) -> timedelta:
        """The working time from ``start`` to ``end`` (aware); zero when ``end`` is not after ``start``."""
        begin, finish = start.astimezone(UTC), end.astimezone(UTC)
        total = timedelta(0)
        day = begin.astimezone(self.zone).date()
        last = finish.astimezone(self.zone).date()
        while day <= last:
            for opens, closes in self.windows(day):
                low, high = max(opens, begin), min(closes, finish)
                if low < high:
                    total += high - low
            day += timedelta(days=1)
        return total

    def timeline(self, start: datetime, end: datetime) -> Timeline:
        """The working intervals from ``start``'s local day to ``end``'s laid end to end, for measuring and adding
        working time on many cases at once (re-timing them when a day off is added) with a bisection each."""
        opens: list[int] = []
        closes: list[int] = []
        day, last = start.astimezone(self.zone).date(), end.astimezone(self.zone).date()
        while day <= last:
            for low, high in self.windows(day):
                opens.append((low - _EPOCH) // _MICRO)
                closes.append((high - _EPOCH) // _MICRO)
            day += timedelta(days=1)
        return Timeline(opens, closes)


class Timeline:
    """A calendar's working intervals in a range, as microseconds since the epoch, with the working time before each:
    :meth:`offset` and :meth:`at` convert between an instant and the working time since the range began."""

    def __init__(self, opens: list[int], closes: list[int]) -> None:
        self.opens, self.closes = opens, closes
        self.before: list[int] = []  # working microseconds before each interval
        self.through: list[int] = []  # … up to each interval's closing
        total = 0
        for low, high in zip(opens, closes, strict=True):
            self.before.append(total)
            total += high - low
            self.through.append(total)

    def offset(self, moment: datetime) -> int:
        """The working microseconds from the range's beginning to ``moment``."""
        point = (moment - _EPOCH) // _MICRO
        index = bisect_right(self.opens, point) - 1
        if index < 0:
            return 0
        return self.before[index] + min(point - self.opens[index], self.closes[index] - self.opens[index])

    def at(self, offset: int) -> datetime:
        """The instant ``offset`` working microseconds after the range's beginning (as :meth:`WorkingCalendar.add`
        answers: an instant at a closing rather than the next opening); ``ValueError`` beyond the range."""
        index = bisect_left(self.through, offset)
        if index == len(self.through):
            raise ValueError("beyond the timeline: build it over a longer range")
        return _EPOCH + (self.opens[index] + offset - self.before[index]) * _MICRO
