"""Tết and the fixed Vietnamese occasions (crmkit.vncalendar)."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from crmkit.vncalendar import (
    check_occasion,
    is_birthday,
    is_occasion,
    local_date,
    local_midnight,
    month_windows,
    occasion_date,
    occasions_on,
    tet,
    utc_offsets,
)

#: Mùng 1 Tết as published for Vietnam (2007 and 2030 differ from Chinese New Year: Vietnam counts at UTC+7).
KNOWN_TET = {
    year: date.fromisoformat(day)
    for year, day in {
        2000: "2000-02-05",
        2001: "2001-01-24",
        2002: "2002-02-12",
        2003: "2003-02-01",
        2004: "2004-01-22",
        2005: "2005-02-09",
        2006: "2006-01-29",
        2007: "2007-02-17",
        2008: "2008-02-07",
        2009: "2009-01-26",
        2010: "2010-02-14",
        2011: "2011-02-03",
        2012: "2012-01-23",
        2013: "2013-02-10",
        2014: "2014-01-31",
        2015: "2015-02-19",
        2016: "2016-02-08",
        2017: "2017-01-28",
        2018: "2018-02-16",
        2019: "2019-02-05",
        2020: "2020-01-25",
        2021: "2021-02-12",
        2022: "2022-02-01",
        2023: "2023-01-22",
        2024: "2024-02-10",
        2025: "2025-01-29",
        2026: "2026-02-17",
        2027: "2027-02-06",
        2028: "2028-01-26",
        2029: "2029-02-13",
        2030: "2030-02-02",
    }.items()
}


@pytest.mark.parametrize("year", sorted(KNOWN_TET))
def test_tet_matches_published_dates(year):
    assert tet(year) == KNOWN_TET[year]


@pytest.mark.parametrize(
    "year, vietnam, china",
    [
        (1985, date(1985, 1, 21), date(1985, 2, 20)),
        (2007, date(2007, 2, 17), date(2007, 2, 18)),
        (2030, date(2030, 2, 2), date(2030, 2, 3)),
    ],
)
def test_tet_uses_vietnam_time_zone_where_china_differs(year, vietnam, china):
    assert tet(year) == vietnam
    assert tet(year, utc_offset=8.0) == china


def test_tet_always_falls_between_21_january_and_20_february():
    for year in range(1800, 2200):
        assert date(year, 1, 21) <= tet(year) <= date(year, 2, 20), year


def test_fixed_occasions_and_lookup():
    assert occasion_date("womens_day", 2026) == date(2026, 3, 8)
    assert occasion_date("vietnamese_womens_day", 2026) == date(2026, 10, 20)
    assert occasion_date("teachers_day", 2026) == date(2026, 11, 20)
    assert occasions_on(date(2026, 11, 20)) == ["teachers_day"]
    assert occasions_on(date(2026, 2, 18)) == ["tet"]  # second day of Tết
    assert occasions_on(date(2026, 2, 20)) == []


def test_unknown_occasion_and_year_out_of_range_are_clear_errors():
    with pytest.raises(ValueError, match="unknown occasion 'halloween'"):
        occasion_date("halloween", 2026)
    with pytest.raises(ValueError, match="1800–2199"):
        tet(1700)


def test_tet_occasion_covers_the_first_three_days():
    assert [is_occasion("tet", date(2025, 1, d)) for d in (28, 29, 30, 31)] == [False, True, True, True]
    assert not is_occasion("tet", date(2025, 2, 1))


def test_occasion_targets_by_name_or_month_day():
    assert is_occasion("womens_day", date(2026, 3, 8)) and not is_occasion("womens_day", date(2026, 3, 9))
    assert check_occasion(" Teachers_Day ") == "teachers_day"
    assert check_occasion("9-2") == "09-02" and is_occasion("09-02", date(2026, 9, 2))
    assert check_occasion("02-29") == "02-29"
    for bad in ("13-01", "halloween", "02-30"):
        with pytest.raises(ValueError, match="unknown occasion"):
            check_occasion(bad)


def test_birthday_on_29_february_falls_on_28_february_in_other_years():
    born = date(1992, 2, 29)
    assert is_birthday(born, date(2025, 2, 28)) and not is_birthday(born, date(2025, 3, 1))
    assert is_birthday(born, date(2024, 2, 29)) and not is_birthday(born, date(2024, 2, 28))
    assert not is_birthday(None, date(2024, 2, 29))


def test_local_date_is_the_date_in_the_zone_given():
    hanoi = ZoneInfo("Asia/Ho_Chi_Minh")
    assert local_date(datetime(2025, 3, 7, 17, 0, tzinfo=UTC), hanoi) == date(2025, 3, 8)
    assert local_date(datetime(2025, 3, 7, 16, 59, tzinfo=UTC), hanoi) == date(2025, 3, 7)
    assert local_date(datetime(2025, 3, 7, 17, 0, tzinfo=UTC), ZoneInfo("Europe/Paris")) == date(2025, 3, 7)
    with pytest.raises(ValueError, match="naive"):
        local_date(datetime(2025, 3, 7, 12, 0), hanoi)


def test_local_day_helpers_need_the_zone_named():
    """No hidden default zone: a caller that forgets the business's zone fails at once instead of using Vietnam's."""
    moment = datetime(2026, 10, 31, 17, 30, tzinfo=UTC)
    with pytest.raises(TypeError, match="zone"):
        local_date(moment)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="zone"):
        local_midnight(date(2026, 11, 1))  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="zone"):
        month_windows(moment, moment)  # type: ignore[call-arg]
    assert local_midnight(date(2026, 11, 1), ZoneInfo("Asia/Ho_Chi_Minh")) == datetime(2026, 10, 31, 17, tzinfo=UTC)


def test_month_windows_are_local_months_clipped_to_the_period_across_daylight_saving():
    new_york = ZoneInfo("America/New_York")
    start = datetime(2026, 2, 15, 12, tzinfo=UTC)
    end = datetime(2026, 4, 1, 4, tzinfo=UTC)  # 1 April, 00:00 in New York (EDT since 8 March)
    windows = month_windows(start, end, new_york)
    assert [label for label, _, _ in windows] == ["2026-02", "2026-03"]
    assert windows[0][1] == start and windows[-1][2] == end
    assert windows[1][1] == datetime(2026, 3, 1, 5, tzinfo=UTC)  # EST midnight
    assert [label for label, _, _ in month_windows(start, end, ZoneInfo("Asia/Ho_Chi_Minh"))] == [
        "2026-02",
        "2026-03",
        "2026-04",
    ]  # Hà Nội: 11:00 on 1 April


def test_utc_offsets_lists_each_change_of_a_zone_to_the_second():
    year = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    assert utc_offsets(ZoneInfo("America/New_York"), *year) == [
        (year[0], -5 * 3600),
        (datetime(2026, 3, 8, 7, tzinfo=UTC), -4 * 3600),
        (datetime(2026, 11, 1, 6, tzinfo=UTC), -5 * 3600),
    ]
    assert utc_offsets(ZoneInfo("Asia/Ho_Chi_Minh"), *year) == [(year[0], 7 * 3600)]


def test_lunar_occasions_on_their_published_solar_dates():
    """Dates as Vietnamese calendars print them (lịch vạn niên)."""
    from crmkit.vncalendar import lunar_to_solar

    assert occasion_date("trung_thu", 2026) == date(2026, 9, 25)
    assert occasion_date("vu_lan", 2026) == date(2026, 8, 27)
    assert occasion_date("gio_to", 2026) == date(2026, 4, 26)
    assert occasion_date("ram_thang_gieng", 2026) == date(2026, 3, 3)
    assert occasion_date("tet", 2027) == date(2027, 2, 6) == lunar_to_solar(1, 1, 2027)
    assert lunar_to_solar(15, 8, 2025) == date(2025, 10, 6)  # Trung thu 2025, after the leap 6th month
    assert lunar_to_solar(1, 6, 2025, leap=True) == date(2025, 7, 25)  # tháng 6 nhuận Ất Tỵ
    with pytest.raises(ValueError, match="no leap month"):
        lunar_to_solar(1, 3, 2025, leap=True)
    assert occasions_on(date(2026, 9, 25)) == ["trung_thu"]
    assert is_occasion("lunar-08-15", date(2026, 9, 25)) and not is_occasion("lunar-08-15", date(2026, 9, 26))


def test_one_spelling_set_for_every_plugin():
    spellings = {
        "04-30": "04-30",
        "30/4": "04-30",
        " 30/04 ": "04-30",
        "reunification_day": "reunification_day",
        "2/9": "09-02",
        "Quốc khánh": "national_day",
        "20/10": "10-20",
        "8/3": "03-08",
        "Tết": "tet",
        "Tết Nguyên Đán": "tet",
        "Trung thu": "trung_thu",
        "Tết Trung Thu": "trung_thu",
        "Giỗ Tổ Hùng Vương": "gio_to",
        "Vu Lan": "vu_lan",
        "Rằm tháng Giêng": "ram_thang_gieng",
        "15/8 âm lịch": "lunar-08-15",
        "15/8 al": "lunar-08-15",
        "lunar 15/8": "lunar-08-15",
        "lunar-08-15": "lunar-08-15",
        "Founding_Day": "founding_day",
        "ngày thành lập": "founding_day",
    }
    for spelling, stored in spellings.items():
        assert check_occasion(spelling) == stored, spelling
    assert is_occasion("04-30", date(2026, 4, 30)) and is_occasion("reunification_day", date(2026, 4, 30))
    for bad in ("31/4", "15/13 âm lịch", "32/1 al", "tet2", "30/2"):
        with pytest.raises(ValueError, match="unknown occasion .*DD/MM âm lịch"):
            check_occasion(bad)


def test_the_founding_day_is_a_setting_and_lunar_30ths_skip_short_months():
    from crmkit.vncalendar import founding_day

    assert founding_day({}) is None and founding_day({"founding_day": "15/09"}) == (15, 9)
    assert is_occasion("founding_day", date(2026, 9, 15), founding=(15, 9))
    assert not is_occasion("founding_day", date(2026, 9, 15))  # no founding day set: never
    assert occasion_date("founding_day", 2026, founding=(15, 9)) == date(2026, 9, 15)
    with pytest.raises(ValueError, match="no founding_day is set"):
        occasion_date("founding_day", 2026)
    # 30 tháng Chạp exists only in years whose 12th month has 30 days
    years = {year: len(occasion_dates_of("lunar-12-30", year)) for year in range(2020, 2031)}
    assert set(years.values()) <= {0, 1, 2} and 0 in years.values()


def occasion_dates_of(target, year):
    from crmkit.vncalendar import occasion_dates

    return occasion_dates(target, year)
