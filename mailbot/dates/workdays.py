"""Chinese working-day arithmetic: statutory holidays and adjusted working weekends (调休).

The holiday schedule comes from the chinese-calendar package, which covers the years the State
Council had published when it was released; a year it does not know (or one the bureau wants
to correct) comes from rules/calendar/<year>.yaml. A year known to neither is an error naming
that file: a deadline must never be computed on a guess.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import chinese_calendar

__all__ = ["CalendarGapError", "WorkCalendar"]

_PACKAGE_HOLIDAYS: frozenset[dt.date] = frozenset(chinese_calendar.holidays)
_PACKAGE_WORKDAYS: frozenset[dt.date] = frozenset(chinese_calendar.workdays)
_PACKAGE_YEARS = range(min(d.year for d in _PACKAGE_HOLIDAYS), max(d.year for d in _PACKAGE_HOLIDAYS) + 1)


class CalendarGapError(LookupError):
    """A date in a year whose holiday schedule is known neither to the package nor to rules/."""

    def __init__(self, year: int, rules_dir: str = "rules"):
        self.year = year
        self.path = f"{rules_dir.rstrip('/')}/calendar/{year}.yaml"
        super().__init__(
            f"no holiday schedule for {year}: chinese-calendar covers "
            f"{_PACKAGE_YEARS.start}-{_PACKAGE_YEARS.stop - 1}; add {self.path} "
            f"(holidays and adjusted working days from the State Council notice)"
        )

    @property
    def message_zh(self) -> str:
        return f"{self.year}年的法定节假日安排尚未录入，无法计算工作日；请在 {self.path} 中补充国务院公布的放假和调休安排。"


class WorkCalendar:
    """Answers 'is this a working day' and 'N working days after that' for the bureau.

    `overrides` maps a year to {"holidays": dates off, "workdays": weekend dates worked}; such a
    year is taken wholly from the override, not merged with the package.
    """

    def __init__(self, overrides: Mapping[int, Mapping[str, frozenset[dt.date]]] | None = None,
                 rules_dir: str = "rules"):
        self._overrides = {int(y): v for y, v in (overrides or {}).items()}
        self.rules_dir = rules_dir

    def known_years(self) -> set[int]:
        return set(_PACKAGE_YEARS) | set(self._overrides)

    def knows(self, year: int) -> bool:
        return year in self._overrides or year in _PACKAGE_YEARS

    def is_workday(self, day: dt.date) -> bool:
        if isinstance(day, dt.datetime):
            day = day.date()
        year = day.year
        if year in self._overrides:
            o = self._overrides[year]
            if day in o.get("workdays", ()):
                return True
            if day in o.get("holidays", ()):
                return False
            return day.weekday() < 5
        if year not in _PACKAGE_YEARS:
            raise CalendarGapError(year, self.rules_dir)
        if day in _PACKAGE_WORKDAYS:
            return True
        if day in _PACKAGE_HOLIDAYS:
            return False
        return day.weekday() < 5

    def add_workdays(self, start: dt.date, n: int) -> dt.date:
        """The n-th working day after `start` (start itself not counted); n=0: start if a working
        day, else the next one. Negative n counts backwards."""
        day = start
        if n == 0:
            while not self.is_workday(day):
                day += dt.timedelta(days=1)
            return day
        step = dt.timedelta(days=1 if n > 0 else -1)
        left = abs(n)
        while left:
            day += step
            if self.is_workday(day):
                left -= 1
        return day

    def workdays_between(self, earlier: dt.date, later: dt.date) -> int:
        """Working days after `earlier` up to and including `later` (0 if later <= earlier)."""
        count, day = 0, earlier
        while day < later:
            day += dt.timedelta(days=1)
            if self.is_workday(day):
                count += 1
        return count

    def previous_workday(self, day: dt.date) -> dt.date:
        """`day` itself if a working day, else the last working day before it."""
        while not self.is_workday(day):
            day -= dt.timedelta(days=1)
        return day
