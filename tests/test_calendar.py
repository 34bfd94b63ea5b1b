"""Tết and the fixed Vietnamese occasions (crmkit.calendar)."""

from datetime import date

import pytest

from crmkit.calendar import occasion_date, occasions_on, tet

KNOWN_TET = {
    2000: date(2000, 2, 5), 2010: date(2010, 2, 14), 2015: date(2015, 2, 19), 2020: date(2020, 1, 25),
    2021: date(2021, 2, 12), 2022: date(2022, 2, 1), 2023: date(2023, 1, 22), 2024: date(2024, 2, 10),
    2025: date(2025, 1, 29), 2026: date(2026, 2, 17), 2027: date(2027, 2, 6), 2028: date(2028, 1, 26),
}


@pytest.mark.parametrize("year", sorted(KNOWN_TET))
def test_tet_matches_published_dates(year):
    assert tet(year) == KNOWN_TET[year]


@pytest.mark.parametrize("year, vietnam, china", [
    (1985, date(1985, 1, 21), date(1985, 2, 20)),
    (2007, date(2007, 2, 17), date(2007, 2, 18)),
    (2030, date(2030, 2, 2), date(2030, 2, 3)),
])
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
