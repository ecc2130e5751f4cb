"""Tests of the statutory days off computed from the rules, checked against chinese_calendar and lunar_python."""

import datetime as dt

import chinese_calendar
import pytest
from lunar_python import Lunar, LunarYear

from mailbot.dates.provisional import anchor_dates, provisional_days_off, statutory_holidays

D = dt.date
ENGLISH = {"元旦": "New Year's Day", "春节": "Spring Festival", "清明节": "Tomb-sweeping Day",
           "劳动节": "Labour Day", "端午节": "Dragon Boat Festival", "中秋节": "Mid-autumn Festival",
           "国庆节": "National Day"}


@pytest.mark.parametrize("year", [2025, 2026])
def test_every_statutory_day_is_a_holiday_of_that_festival_in_chinese_calendar(year):
    days = statutory_holidays(year)
    assert len(days) == 13
    for day, name in days.items():
        assert chinese_calendar.is_holiday(day), day
        assert chinese_calendar.holidays[day] == ENGLISH[name], day


@pytest.mark.parametrize("year, eve, tomb, dragon, moon", [
    (2025, D(2025, 1, 28), D(2025, 4, 4), D(2025, 5, 31), D(2025, 10, 6)),
    (2026, D(2026, 2, 16), D(2026, 4, 5), D(2026, 6, 19), D(2026, 9, 25)),
    (2027, D(2027, 2, 5), D(2027, 4, 5), D(2027, 6, 9), D(2027, 9, 15)),
])
def test_lunar_and_solar_term_dates(year, eve, tomb, dragon, moon):
    days = statutory_holidays(year)
    assert [d for d, n in days.items() if n == "春节"] == [eve + dt.timedelta(i) for i in range(4)]
    assert {n: [d for d, m in days.items() if m == n] for n in ("清明节", "端午节", "中秋节")} == {
        "清明节": [tomb], "端午节": [dragon], "中秋节": [moon]}


def test_2027_in_full():
    assert statutory_holidays(2027) == {
        D(2027, 1, 1): "元旦",
        D(2027, 2, 5): "春节", D(2027, 2, 6): "春节", D(2027, 2, 7): "春节", D(2027, 2, 8): "春节",
        D(2027, 4, 5): "清明节",
        D(2027, 5, 1): "劳动节", D(2027, 5, 2): "劳动节",
        D(2027, 6, 9): "端午节",
        D(2027, 9, 15): "中秋节",
        D(2027, 10, 1): "国庆节", D(2027, 10, 2): "国庆节", D(2027, 10, 3): "国庆节",
    }


@pytest.mark.parametrize("year, eve_day", [(2026, 29), (2027, 29), (2025, 29), (2024, 30), (2030, 30), (2031, 29)])
def test_new_years_eve_is_last_day_of_the_twelfth_month_whether_29_or_30(year, eve_day):
    eve = min(d for d, n in statutory_holidays(year).items() if n == "春节")
    last = LunarYear.fromYear(year - 1).getMonth(12).getDayCount()
    assert last == eve_day
    lunar = Lunar.fromYmd(year - 1, 12, last).getSolar()
    assert (lunar.getYear(), lunar.getMonth(), lunar.getDay()) == (eve.year, eve.month, eve.day)


@pytest.mark.parametrize("year", range(2000, 2061))
def test_new_years_eve_matches_lunar_month_length_every_year(year):
    eve = anchor_dates(year)["春节"] - dt.timedelta(days=1)
    last = LunarYear.fromYear(year - 1).getMonth(12).getDayCount()
    assert Lunar.fromYmd(year - 1, 12, last).getSolar().toYmd() == eve.isoformat()


def test_tomb_sweeping_day_agrees_with_chinese_calendar_solar_terms():
    for year in range(2004, 2031):
        terms = chinese_calendar.get_solar_terms(D(year, 4, 1), D(year, 4, 30))
        (qingming,) = [d for d, name in terms if name == "清明"]
        assert anchor_dates(year)["清明节"] == qingming, year


@pytest.mark.parametrize("year", range(2030, 2036))
def test_thirteen_festival_days_a_year_overlaps_kept(year):
    days = statutory_holidays(year)
    shared = {d: n for d, n in days.items() if "、" in n}
    assert sum(len(n.split("、")) for n in days.values()) == 13
    assert len(days) == 13 - len(shared)
    assert shared == ({D(2031, 10, 1): "中秋节、国庆节"} if year == 2031 else {})


def test_mid_autumn_on_national_day_2028():
    days = statutory_holidays(2028)
    assert days[D(2028, 10, 3)] == "中秋节、国庆节"
    assert len(days) == 12


def test_days_off_is_the_frozen_key_set():
    assert provisional_days_off(2026) == frozenset(statutory_holidays(2026))
    assert isinstance(provisional_days_off(2026), frozenset)
