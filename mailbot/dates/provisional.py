"""Compute the statutory days off of any year from the national holiday rules alone, without any moved days."""

from __future__ import annotations

import datetime as dt

from lunar_python import Lunar

# 全国年节及纪念日放假办法 (revised 2024, in force from 2025): each festival is an
# anchor day plus a span given as (offset of the first day off, number of days).
# 春节 starts one day before 正月初一 because 除夕 became a day off in 2025.
SPANS: dict[str, tuple[int, int]] = {
    "元旦": (0, 1),
    "春节": (-1, 4),
    "清明节": (0, 1),
    "劳动节": (0, 2),
    "端午节": (0, 1),
    "中秋节": (0, 1),
    "国庆节": (0, 3),
}


def _solar(lunar: Lunar) -> dt.date:
    s = lunar.getSolar()
    return dt.date(s.getYear(), s.getMonth(), s.getDay())


def anchor_dates(year: int) -> dict[str, dt.date]:
    """Return the anchor day of each festival in the Gregorian year (正月初一 for 春节, 10月1日 for 国庆节, ...)."""
    new_year = Lunar.fromYmd(year, 1, 1)
    # The solar-term table of 正月初一 belongs to the same Gregorian year, so its
    # 清明 is this year's; lunar_python computes the terms in Beijing time, which
    # is the time the official calendar uses to date a term.
    qm = new_year.getJieQiTable()["清明"]
    return {
        "元旦": dt.date(year, 1, 1),
        "春节": _solar(new_year),
        "清明节": dt.date(qm.getYear(), qm.getMonth(), qm.getDay()),
        "劳动节": dt.date(year, 5, 1),
        # Lunar months 5 and 8 always fall inside the same Gregorian year.
        "端午节": _solar(Lunar.fromYmd(year, 5, 5)),
        "中秋节": _solar(Lunar.fromYmd(year, 8, 15)),
        "国庆节": dt.date(year, 10, 1),
    }


def statutory_holidays(year: int) -> dict[dt.date, str]:
    """Map each statutory day off of the year to its festival name ('、'-joined when two festivals share a day)."""
    days: dict[dt.date, str] = {}
    for name, anchor in anchor_dates(year).items():
        offset, length = SPANS[name]
        # 除夕 is taken as the day before 正月初一 rather than "腊月三十": 腊月 has
        # only 29 days in some years, and in a year with a leap 腊月 the eve is
        # the last day of the leap month; the day before 初一 is right in all cases.
        for i in range(offset, offset + length):
            day = anchor + dt.timedelta(days=i)
            # 中秋节 can fall on 10月1日-3日 (2020, 2028, 2031): keep both names
            # so the overlap stays visible instead of silently losing one festival.
            days[day] = f"{days[day]}、{name}" if day in days else name
    return dict(sorted(days.items()))


def provisional_days_off(year: int) -> frozenset[dt.date]:
    """Return the statutory days off of the year as a set; weekends are left to the caller."""
    return frozenset(statutory_holidays(year))
