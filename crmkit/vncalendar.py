"""Local occasions, defined once for every plugin: solar days (8/3, 30/4, 2/9, 20/10, 20/11, …, the shop's
founding day from the ``founding_day`` setting) and lunar days (Tết, Rằm tháng Giêng, Giỗ Tổ Hùng Vương,
Vu Lan, Trung thu, or any ``DD/MM âm lịch``), with one accepted spelling set (:func:`check_occasion`).

Tết is computed astronomically for Vietnam's time zone (UTC+7) with Hồ Ngọc Đức's
lunar calendar algorithm (new moons and solar terms from Meeus' formulas), so it gives
the Vietnamese date even where China's differs (1985, 2007). Plugins that trigger on
occasions (loyalty bonuses, campaigns) share this module instead of each embedding a table.
"""

from __future__ import annotations

import calendar
import math
import re
import unicodedata
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from crmkit.errors import ValidationError

VIETNAM_UTC_OFFSET = 7.0
#: The business's time zone when the CRM's ``timezone`` setting names none (``crm.timezone``).
DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"
#: Where a day begins first (UTC+14): no date that has begun anywhere is later than today there.
EARLIEST_ZONE = timezone(timedelta(hours=14))
#: Tết is celebrated for three days (mùng 1, 2 and 3); an occasion "on Tết" matches any of them.
TET_DAYS = 3

#: Fixed-date occasions (day, month) customers in Vietnam expect a business to mark.
FIXED_OCCASIONS: dict[str, tuple[int, int]] = {
    "valentine": (14, 2),
    "womens_day": (8, 3),  # Quốc tế Phụ nữ 8/3
    "reunification_day": (30, 4),  # Ngày Giải phóng miền Nam 30/4
    "labour_day": (1, 5),  # Quốc tế Lao động 1/5
    "national_day": (2, 9),  # Quốc khánh 2/9
    "vietnamese_womens_day": (20, 10),  # Ngày Phụ nữ Việt Nam 20/10
    "teachers_day": (20, 11),  # Ngày Nhà giáo Việt Nam 20/11
    "christmas": (24, 12),
    "new_year": (1, 1),
}
#: Lunar-date occasions (lunar day, lunar month), kept on the Vietnamese lunar calendar (UTC+7).
LUNAR_OCCASIONS: dict[str, tuple[int, int]] = {
    "ram_thang_gieng": (15, 1),  # Rằm tháng Giêng (Tết Nguyên tiêu), 15/1 âm lịch
    "gio_to": (10, 3),  # Giỗ Tổ Hùng Vương, 10/3 âm lịch
    "vu_lan": (15, 7),  # Lễ Vu Lan, 15/7 âm lịch
    "trung_thu": (15, 8),  # Tết Trung thu, 15/8 âm lịch
}
#: The shop's own founding day: an occasion whose date is the CRM setting ``founding_day`` (``DD/MM``).
FOUNDING_DAY = "founding_day"
#: Other accepted spellings (folded: lower case, no diacritics, ``_`` between words) → the canonical name.
OCCASION_ALIASES: dict[str, str] = {
    "tet_nguyen_dan": "tet",
    "lunar_new_year": "tet",
    "tet_nguyen_tieu": "ram_thang_gieng",
    "nguyen_tieu": "ram_thang_gieng",
    "lantern_festival": "ram_thang_gieng",
    "gio_to_hung_vuong": "gio_to",
    "hung_kings": "gio_to",
    "hung_kings_day": "gio_to",
    "le_vu_lan": "vu_lan",
    "ram_thang_bay": "vu_lan",
    "tet_trung_thu": "trung_thu",
    "mid_autumn": "trung_thu",
    "mid_autumn_festival": "trung_thu",
    "giai_phong_mien_nam": "reunification_day",
    "quoc_te_lao_dong": "labour_day",
    "labor_day": "labour_day",
    "quoc_khanh": "national_day",
    "quoc_te_phu_nu": "womens_day",
    "phu_nu_viet_nam": "vietnamese_womens_day",
    "nha_giao": "teachers_day",
    "nha_giao_viet_nam": "teachers_day",
    "giang_sinh": "christmas",
    "tet_duong_lich": "new_year",
    "ngay_thanh_lap": FOUNDING_DAY,
    "founding": FOUNDING_DAY,
}


def _jd_from_date(d: date) -> int:
    return d.toordinal() + 1721425


def _date_from_jd(jd: int) -> date:
    return date.fromordinal(jd - 1721425)


def _new_moon(k: int) -> float:
    """Julian day (UT) of the k-th new moon after 1900-01-01 (Meeus, ch. 49, truncated series)."""
    t = k / 1236.85
    t2, t3 = t * t, t * t * t
    dr = math.pi / 180
    jd1 = 2415020.75933 + 29.53058868 * k + 0.0001178 * t2 - 0.000000155 * t3
    jd1 += 0.00033 * math.sin((166.56 + 132.87 * t - 0.009173 * t2) * dr)
    m = 359.2242 + 29.10535608 * k - 0.0000333 * t2 - 0.00000347 * t3
    mpr = 306.0253 + 385.81691806 * k + 0.0107306 * t2 + 0.00001236 * t3
    f = 21.2964 + 390.67050646 * k - 0.0016528 * t2 - 0.00000239 * t3
    c1 = (0.1734 - 0.000393 * t) * math.sin(m * dr) + 0.0021 * math.sin(2 * dr * m)
    c1 += -0.4068 * math.sin(mpr * dr) + 0.0161 * math.sin(dr * 2 * mpr) - 0.0004 * math.sin(dr * 3 * mpr)
    c1 += 0.0104 * math.sin(dr * 2 * f) - 0.0051 * math.sin(dr * (m + mpr)) - 0.0074 * math.sin(dr * (m - mpr))
    c1 += 0.0004 * math.sin(dr * (2 * f + m)) - 0.0004 * math.sin(dr * (2 * f - m))
    c1 += -0.0006 * math.sin(dr * (2 * f + mpr)) + 0.0010 * math.sin(dr * (2 * f - mpr))
    c1 += 0.0005 * math.sin(dr * (2 * mpr + m))
    if t < -11:
        delta_t = 0.001 + 0.000839 * t + 0.0002261 * t2 - 0.00000845 * t3 - 0.000000081 * t * t3
    else:
        delta_t = -0.000278 + 0.000265 * t + 0.000262 * t2
    return jd1 + c1 - delta_t


def _new_moon_day(k: int, tz: float) -> int:
    return math.floor(_new_moon(k) + 0.5 + tz / 24)


def _sun_longitude_sector(jdn: int, tz: float) -> int:
    """Which 30° sector (0–11) the sun's apparent longitude is in at local midnight of day ``jdn``."""
    t = (jdn - 2451545.5 - tz / 24) / 36525
    t2 = t * t
    dr = math.pi / 180
    m = 357.52910 + 35999.05030 * t - 0.0001559 * t2 - 0.00000048 * t * t2
    l0 = 280.46645 + 36000.76983 * t + 0.0003032 * t2
    dl = (1.914600 - 0.004817 * t - 0.000014 * t2) * math.sin(dr * m)
    dl += (0.019993 - 0.000101 * t) * math.sin(dr * 2 * m) + 0.000290 * math.sin(dr * 3 * m)
    longitude = (l0 + dl) * dr
    longitude -= math.pi * 2 * math.floor(longitude / (math.pi * 2))
    if longitude < 0:
        longitude += 2 * math.pi
    return math.floor(longitude / math.pi * 6)


def _lunar_month_11(year: int, tz: float) -> int:
    """Julian day of the start of the lunar month containing the winter solstice of ``year``."""
    off = _jd_from_date(date(year, 12, 31)) - 2415021
    k = math.floor(off / 29.530588853)
    nm = _new_moon_day(k, tz)
    if _sun_longitude_sector(nm, tz) >= 9:
        nm = _new_moon_day(k - 1, tz)
    return nm


def _leap_month_offset(a11: int, tz: float) -> int:
    k = math.floor((a11 - 2415021.076998695) / 29.530588853 + 0.5)
    i = 1
    arc = _sun_longitude_sector(_new_moon_day(k + i, tz), tz)
    while True:
        last = arc
        i += 1
        arc = _sun_longitude_sector(_new_moon_day(k + i, tz), tz)
        if arc == last or i >= 14:
            return i - 1


@lru_cache(maxsize=512)
def tet(year: int, utc_offset: float = VIETNAM_UTC_OFFSET) -> date:
    """The first day of the lunar new year falling in Gregorian ``year`` (Vietnam by default)."""
    if not 1800 <= year <= 2199:
        raise ValueError(f"Tết is computed for years 1800–2199, not {year}")
    a11 = _lunar_month_11(year - 1, utc_offset)
    b11 = _lunar_month_11(year, utc_offset)
    k = math.floor(0.5 + (a11 - 2415021.076998695) / 29.530588853)
    offset = 2  # month 11 → month 12 → month 1 of the new year
    if b11 - a11 > 365:  # a leap month in this lunar year
        leap = _leap_month_offset(a11, utc_offset)
        if leap <= offset:
            offset += 1
    return _date_from_jd(_new_moon_day(k + offset, utc_offset))


def lunar_to_solar(
    day: int, month: int, lunar_year: int, leap: bool = False, utc_offset: float = VIETNAM_UTC_OFFSET
) -> date:
    """The solar date of lunar ``day``/``month`` of ``lunar_year`` (Vietnam's lunar calendar by default);
    ``leap`` for the leap month. ``ValueError`` when that day does not exist (a 30th in a 29-day month, or
    a leap month the year does not have)."""
    if not (1 <= month <= 12 and 1 <= day <= 30):
        raise ValueError(f"no lunar day {day}/{month}")
    if not 1800 <= lunar_year <= 2198:
        raise ValueError(f"lunar dates are computed for years 1800–2198, not {lunar_year}")
    first, second = (lunar_year - 1, lunar_year) if month < 11 else (lunar_year, lunar_year + 1)
    a11, b11 = _lunar_month_11(first, utc_offset), _lunar_month_11(second, utc_offset)
    k = math.floor(0.5 + (a11 - 2415021.076998695) / 29.530588853)
    offset = (month - 11) % 12
    if b11 - a11 > 365:  # a leap month in this lunar year
        leap_offset = _leap_month_offset(a11, utc_offset)
        leap_month = (leap_offset - 2) % 12
        if leap and month != leap_month:
            raise ValueError(f"lunar year {lunar_year} has no leap month {month}")
        if leap or offset >= leap_offset:
            offset += 1
    elif leap:
        raise ValueError(f"lunar year {lunar_year} has no leap month")
    start = _new_moon_day(k + offset, utc_offset)
    if day > _new_moon_day(k + offset + 1, utc_offset) - start:
        raise ValueError(f"lunar month {month} of {lunar_year} has 29 days, not {day}")
    return _date_from_jd(start + day - 1)


def fold_name(text: str) -> str:
    """``text`` lower-cased without Vietnamese diacritics, words joined by ``_`` ("Tết Trung Thu" → tet_trung_thu)."""
    plain = unicodedata.normalize("NFD", text.strip().lower().replace("đ", "d"))
    plain = "".join(ch for ch in plain if not unicodedata.combining(ch))
    return re.sub(r"[\s_]+", "_", plain)


def check_day_month(value: object, field: str = "founding_day") -> tuple[int, int]:
    """A ``DD/MM`` day of the year as ``(day, month)`` (29/02 allowed); ``ValidationError`` naming ``field``."""
    found = re.fullmatch(r"\s*(\d{1,2})\s*/\s*(\d{1,2})\s*", str(value))
    try:
        day, month = int(found[1]), int(found[2])  # type: ignore[index]
        date(2024, month, day)  # a leap year, so 29/02 is allowed
    except (TypeError, ValueError):
        raise ValidationError(f"expected a day as DD/MM (e.g. 15/03), got {value!r}", field=field) from None
    return day, month


def founding_day(settings: Mapping[str, Any]) -> tuple[int, int] | None:
    """The shop's founding day ``(day, month)`` from the CRM settings (``founding_day``, ``DD/MM``), or None."""
    value = settings.get("founding_day")
    return None if value in (None, "") else check_day_month(value)


_SOLAR = re.compile(r"(\d{1,2})/(\d{1,2})")
_MONTH_DAY = re.compile(r"(\d{1,2})-(\d{1,2})")
_LUNAR_AFTER = re.compile(r"(\d{1,2})/(\d{1,2})_?\(?(?:am_lich|am|al|lunar)\)?")
_LUNAR_BEFORE = re.compile(r"(?:am_lich|al|lunar)[_:]?(\d{1,2})/(\d{1,2})")
_LUNAR_CANONICAL = re.compile(r"lunar-(\d{1,2})-(\d{1,2})")
_SPELLINGS = (
    "a name (tet, trung_thu, gio_to, vu_lan, ram_thang_gieng, founding_day, "
    + ", ".join(FIXED_OCCASIONS)
    + "; Vietnamese names too, e.g. 'Tết Trung thu'), a solar day DD/MM "
    "or MM-DD (30/4, 04-30), or a lunar day 'DD/MM âm lịch' (15/8 âm lịch)"
)


def check_occasion(target: str) -> str:
    """Normalize an occasion to its one stored form; ``ValueError`` listing the accepted spellings otherwise.

    Names (any spelling of ``OCCASION_ALIASES``, diacritics optional) give the canonical name; a solar day
    ``DD/MM`` or ``MM-DD`` gives ``MM-DD``; a lunar day ``DD/MM âm lịch`` (or ``al``, ``lunar DD/MM``) gives
    ``lunar-MM-DD``.
    """
    name = fold_name(str(target))
    name = OCCASION_ALIASES.get(name, name)
    if name in ("tet", FOUNDING_DAY) or name in FIXED_OCCASIONS or name in LUNAR_OCCASIONS:
        return name
    for pattern, lunar, day_first in (
        (_LUNAR_AFTER, True, True),
        (_LUNAR_BEFORE, True, True),
        (_LUNAR_CANONICAL, True, False),
        (_SOLAR, False, True),
        (_MONTH_DAY, False, False),
    ):
        found = pattern.fullmatch(name)
        if not found:
            continue
        first, second = int(found[1]), int(found[2])
        day, month = (first, second) if day_first else (second, first)
        if lunar and 1 <= month <= 12 and 1 <= day <= 30:
            return f"lunar-{month:02d}-{day:02d}"
        if not lunar:
            try:
                date(2024, month, day)  # a leap year, so 02-29 is allowed
            except ValueError:
                break
            return f"{month:02d}-{day:02d}"
        break
    raise ValueError(f"unknown occasion {target!r}: use {_SPELLINGS}")


def _lunar_day_month(target: str) -> tuple[int, int] | None:
    if target in LUNAR_OCCASIONS:
        return LUNAR_OCCASIONS[target]
    if target.startswith("lunar-"):
        month, day = (int(part) for part in target[6:].split("-"))
        return day, month
    return None


def occasion_dates(target: str, year: int, *, founding: tuple[int, int] | None = None) -> list[date]:
    """The (first) days of occasion ``target`` (normalized by :func:`check_occasion`) in Gregorian ``year``.

    Usually one; none when it does not happen that year (29/02, a lunar 30th in a 29-day month, the founding
    day without a ``founding`` (day, month)); a lunar day of months 11–12 can happen twice.
    """
    if target == "tet":
        return [tet(year)]
    if target == FOUNDING_DAY:
        target = "" if founding is None else f"{founding[1]:02d}-{founding[0]:02d}"
        if not target:
            return []
    lunar = _lunar_day_month(target)
    if lunar is not None:
        found = []
        for lunar_year in (year - 1, year) if lunar[1] >= 11 else (year,):
            try:
                solar = lunar_to_solar(lunar[0], lunar[1], lunar_year)
            except ValueError:
                continue
            if solar.year == year:
                found.append(solar)
        return found
    if target in FIXED_OCCASIONS:
        dom, month = FIXED_OCCASIONS[target]
    else:
        month, dom = (int(part) for part in target.split("-"))
    return [date(year, month, dom)] if calendar.isleap(year) or (month, dom) != (2, 29) else []


def occasion_date(name: str, year: int, *, founding: tuple[int, int] | None = None) -> date:
    """The date of occasion ``name`` (any spelling :func:`check_occasion` accepts) in ``year``: its first day there."""
    target = check_occasion(name)
    found = occasion_dates(target, year, founding=founding)
    if not found:
        raise ValueError(
            f"occasion {name!r} does not fall in {year}"
            + (" (no founding_day is set)" if target == FOUNDING_DAY and founding is None else "")
        )
    return found[0]


def occasions_on(day: date, *, founding: tuple[int, int] | None = None) -> list[str]:
    """Names of the occasions falling on ``day`` (Tết counts for its first three days)."""
    names = [*FIXED_OCCASIONS, "tet", *LUNAR_OCCASIONS, *([FOUNDING_DAY] if founding else [])]
    return [name for name in names if is_occasion(name, day, founding=founding)]


def is_occasion(target: str, day: date, *, founding: tuple[int, int] | None = None) -> bool:
    """True when the local date ``day`` falls on ``target`` (normalized by :func:`check_occasion`); Tết covers
    its first three days; ``founding`` is the shop's founding day (:func:`founding_day`)."""
    if target == "tet":
        first = tet(day.year)
        return first <= day < first + timedelta(days=TET_DAYS)
    return day in occasion_dates(target, day.year, founding=founding)


def is_birthday(birth_date: date | None, day: date) -> bool:
    """True when ``day`` is the birthday; 29 February birthdays fall on 28 February in other years."""
    if birth_date is None:
        return False
    month, dom = birth_date.month, birth_date.day
    if (month, dom) == (2, 29) and not calendar.isleap(day.year):
        dom = 28
    return (day.month, day.day) == (month, dom)


def zone_named(name: str | None, field: str = "timezone") -> ZoneInfo:
    """The IANA time zone ``name`` (the default business zone for None or ""); ``ValidationError`` naming
    ``field`` when there is no such zone."""
    try:
        return ZoneInfo(str(name or DEFAULT_TIMEZONE))
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"unknown time zone {name!r} (e.g. {DEFAULT_TIMEZONE})", field=field) from None


def local_date(moment: datetime, zone: tzinfo) -> date:
    """The calendar date in ``zone`` (the business's: ``crm.timezone``) of a timezone-aware moment."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: pass a timezone-aware time")
    return moment.astimezone(zone).date()


def local_midnight(day: date, zone: tzinfo) -> datetime:
    """The UTC moment a local day begins in ``zone``: how periods given as local dates are bounded in UTC storage."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def utc_offsets(zone: tzinfo, since: datetime, until: datetime) -> list[tuple[datetime, int]]:
    """The UTC offsets (seconds) ``zone`` keeps from ``since`` to ``until``: ``(from, offset)`` pairs, the first
    from ``since``.

    How SQL without time zone support (SQLite) gets local clock times exactly, daylight saving included:
    a zone like Asia/Ho_Chi_Minh gives one pair. Changes are found a day apart at most, to the second.
    """

    def offset(epoch: int) -> int:
        return int(datetime.fromtimestamp(epoch, zone).utcoffset().total_seconds())  # type: ignore[union-attr]

    start, end = math.floor(since.timestamp()), math.ceil(until.timestamp())
    changes = [(start, offset(start))]
    at = start
    while at < end:
        following = min(at + 86_400, end)
        if offset(following) != changes[-1][1]:
            low, high = at, following  # the change is in (low, high]
            while high - low > 1:
                middle = (low + high) // 2
                low, high = (middle, high) if offset(middle) == changes[-1][1] else (low, middle)
            changes.append((high, offset(high)))
        at = following
    return [(datetime.fromtimestamp(epoch, UTC), seconds) for epoch, seconds in changes]


def month_windows(start: datetime, end: datetime, zone: tzinfo) -> list[tuple[str, datetime, datetime]]:
    """``(YYYY-MM, from, to)`` for each calendar month of ``zone`` meeting [start, end), clipped to it.

    How reports group by local month: one index range scan per month is exact in any time zone
    (daylight saving included), and on SQLite several times faster than grouping by a computed month.
    """
    local = start.astimezone(zone)
    month = datetime(local.year, local.month, 1, tzinfo=zone)
    windows = []
    while month < end:
        following = datetime(month.year + month.month // 12, month.month % 12 + 1, 1, tzinfo=zone)
        windows.append((f"{month:%Y-%m}", max(month, start), min(following, end)))
        month = following
    return windows
