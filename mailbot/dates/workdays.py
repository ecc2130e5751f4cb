"""Chinese working-day arithmetic: statutory holidays and adjusted working weekends (调休).

A year's schedule comes, first found wins, from rules/calendar/<year>.yaml (the bureau's own
correction or addition), from a State Council notice the credit section loaded (`loaded`), or
from the chinese-calendar package (the years published when it was released). A year known to
none of them is not a gap that stops mailbot on 1 January: it is computed from the national
holiday rules alone (provisional.py: the statutory days off, no 调休), and everything that
depends on such a year says it is provisional (预估) until the official schedule is loaded.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

import chinese_calendar

from mailbot.dates.provisional import provisional_days_off

__all__ = ["CalendarGapError", "WorkCalendar", "SOURCES_ZH", "package_names", "package_schedule", "day_names"]

# where a year's schedule came from, as a person reads it
SOURCES_ZH = {"rules": "规则文件（rules/calendar）", "loaded": "信用监管科录入的国务院通知",
              "package": "国务院已公布的安排（随程序提供）", "provisional": "预估（按法定节假日推算，未含调休）"}

_PACKAGE_HOLIDAYS: frozenset[dt.date] = frozenset(chinese_calendar.holidays)
_PACKAGE_WORKDAYS: frozenset[dt.date] = frozenset(chinese_calendar.workdays)
_PACKAGE_YEARS = range(min(d.year for d in _PACKAGE_HOLIDAYS), max(d.year for d in _PACKAGE_HOLIDAYS) + 1)


def package_schedule(year: int) -> tuple[frozenset[dt.date], frozenset[dt.date]] | None:
    """(days off, weekend days worked) of `year` as the chinese-calendar package has them; None
    for a year it does not know."""
    if year not in _PACKAGE_YEARS:
        return None
    return (frozenset(d for d in _PACKAGE_HOLIDAYS if d.year == year),
            frozenset(d for d in _PACKAGE_WORKDAYS if d.year == year))


def day_names(source: str, year: int, notice: str | None = None) -> dict[dt.date, str]:
    """The holiday each day off or weekend worked of `year` belongs to, by where the schedule
    comes from (WorkCalendar.source): the loaded `notice`'s text, the package's, the provisional
    statutory days; empty for a rules file or a notice an older reader kept."""
    if source == "loaded" and notice is not None:
        from mailbot.dates.holiday_notice import NoticeError, parse_notice
        try:
            read = parse_notice(notice, year)
        except NoticeError:                       # read by an older reader: the days stand, the names are left out
            return {}
        return {**read.holidays, **read.workdays}
    if source == "package":
        return package_names(year)
    if source == "provisional":
        from mailbot.dates.provisional import statutory_holidays
        return statutory_holidays(year)
    return {}


def package_names(year: int) -> dict[dt.date, str]:
    """The festival (in Chinese) each day off or weekend worked of `year` belongs to, as the
    package has it; empty for a year it does not know."""
    if year not in _PACKAGE_YEARS:
        return {}
    chinese = {h.value: h.chinese for h in chinese_calendar.Holiday}
    out = {}
    for day in sorted(d for d in _PACKAGE_HOLIDAYS | _PACKAGE_WORKDAYS if d.year == year):
        name = chinese_calendar.get_holiday_detail(day)[1]
        if name:
            out[day] = chinese.get(name, name)
    return out


class CalendarGapError(LookupError):
    """A date in a year no schedule covers and the holiday rules cannot be computed for."""

    def __init__(self, year: int, rules_dir: str = "rules"):
        self.year = year
        self.path = f"{rules_dir.rstrip('/')}/calendar/{year}.yaml"
        super().__init__(
            f"no holiday schedule for {year} and the statutory holidays cannot be computed for it; "
            f"add {self.path} (holidays and adjusted working days from the State Council notice)")

    @property
    def message_zh(self) -> str:
        # a section reads this too: it names no file on the server, only what happened
        return f"{self.year}年的节假日安排无法确定，未能计算工作日，已告知信用监管科。"


class WorkCalendar:
    """Answers 'is this a working day' and 'N working days after that' for the bureau.

    `overrides` (rules/calendar) and `loaded` (notices the credit section loaded) map a year to
    {"holidays": dates off, "workdays": weekend dates worked}; such a year is taken wholly from
    there, not merged with the package. A year nobody published is provisional. A notice loaded
    while the program runs takes effect at once (`load`): the daemon's intake, duties and desk
    share this one calendar.
    """

    def __init__(self, overrides: Mapping[int, Mapping[str, frozenset[dt.date]]] | None = None,
                 rules_dir: str = "rules",
                 loaded: Mapping[int, Mapping[str, frozenset[dt.date]]] | None = None):
        self._overrides = {int(y): v for y, v in (overrides or {}).items()}
        self._loaded = {int(y): v for y, v in (loaded or {}).items()}
        self._provisional: dict[int, frozenset[dt.date]] = {}
        self.rules_dir = rules_dir
        # counts the schedules loaded since it was built: a copy of the calendar in another
        # process (app/ahead.py) is current while this number is the one it was made with
        self.generation = 0

    def load(self, year: int, days_off: Iterable[dt.date], workdays: Iterable[dt.date]) -> None:
        """Make a loaded notice `year`'s schedule from now on, replacing one loaded before (a rules
        file for that year still wins). A notice's 元旦 may begin on 31 December of the year
        before: such a day is kept with the notice and counted as a day off."""
        self._loaded[int(year)] = {"holidays": frozenset(days_off), "workdays": frozenset(workdays)}
        self.generation += 1

    def schedule(self, year: int) -> tuple[frozenset[dt.date], frozenset[dt.date]]:
        """(days off, weekend days worked) of `year` as this calendar uses them: the rules file's,
        the loaded notice's, the package's, or the provisional statutory days (no weekend worked)."""
        table = self._overrides.get(year) or self._loaded.get(year)
        if table is not None:
            return frozenset(table.get("holidays", ())), frozenset(table.get("workdays", ()))
        return package_schedule(year) or (self._days_off(year), frozenset())

    def source(self, year: int) -> str:
        """'rules', 'loaded', 'package' or 'provisional': where `year`'s schedule comes from."""
        if year in self._overrides:
            return "rules"
        if year in self._loaded:
            return "loaded"
        if year in _PACKAGE_YEARS:
            return "package"
        return "provisional"

    def known_years(self) -> set[int]:
        return set(_PACKAGE_YEARS) | set(self._overrides) | set(self._loaded)

    def knows(self, year: int) -> bool:
        """True where the official schedule for `year` is known (not provisional)."""
        return self.source(year) != "provisional"

    def is_provisional(self, year: int) -> bool:
        return not self.knows(year)

    def provisional_years(self, first: dt.date, last: dt.date) -> tuple[int, ...]:
        """The provisional years among those from `first` to `last`: a result reaching into one is 预估."""
        a, b = sorted((first, last))
        return tuple(y for y in range(a.year, b.year + 1) if self.is_provisional(y))

    def _days_off(self, year: int) -> frozenset[dt.date]:
        if year not in self._provisional:
            try:
                self._provisional[year] = provisional_days_off(year)
            except Exception as e:  # noqa: BLE001 - outside what the lunar tables cover
                raise CalendarGapError(year, self.rules_dir) from e
        return self._provisional[year]

    def is_workday(self, day: dt.date) -> bool:
        if isinstance(day, dt.datetime):
            day = day.date()
        year = day.year
        if day.month == 12 and year + 1 not in self._overrides and \
                day in self._loaded.get(year + 1, {}).get("holidays", ()):
            return False                          # next year's 元旦 begins on 31 December
        table = self._overrides.get(year) or self._loaded.get(year)
        if table is not None:
            if day in table.get("workdays", ()):
                return True
            if day in table.get("holidays", ()):
                return False
            return day.weekday() < 5
        if year in _PACKAGE_YEARS:
            if day in _PACKAGE_WORKDAYS:
                return True
            if day in _PACKAGE_HOLIDAYS:
                return False
            return day.weekday() < 5
        return day.weekday() < 5 and day not in self._days_off(year)

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
