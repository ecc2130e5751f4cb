"""The month a submission reports on (报送月份): `Period`, written '2026-11' in data and JSON,
'2026年11月' for people; the one parser of every form a clerk or a command writes."""
from __future__ import annotations

import calendar as _cal
import datetime as dt
import re
from dataclasses import dataclass

from mailbot.dates.zone import bureau_date

__all__ = ["Period", "month_label", "parse_period", "period_of", "add_months", "period_last_day", "period_label"]

# 2026-11, 2026年11月 (2026 年 1 月), 202611 — full-width digits and spaces folded first
_FORMS = re.compile(r"^(\d{4})(?:-(\d{2})|\s*年\s*(\d{1,2})\s*月|(\d{2}))$")
_FULLWIDTH = str.maketrans("０１２３４５６７８９－　", "0123456789- ")
_YEARS = range(2000, 2100)


@dataclass(frozen=True, order=True)
class Period:
    year: int
    month: int

    def __post_init__(self) -> None:
        if self.year not in _YEARS or not 1 <= self.month <= 12:
            raise ValueError(f"no such month: {self.year}-{self.month}")

    @classmethod
    def parse(cls, text: "str | Period") -> "Period":
        """'2026-11', '2026年11月' or '202611' (and full-width forms) -> Period; else ValueError."""
        if isinstance(text, Period):
            return text
        m = _FORMS.match(str(text or "").translate(_FULLWIDTH).strip())
        if not m:
            raise ValueError(f"a month is written YYYY-MM (2026-11), 2026年11月 or 202611; found {text!r}")
        year, month = int(m.group(1)), int(m.group(2) or m.group(3) or m.group(4))
        if year not in _YEARS or not 1 <= month <= 12:
            raise ValueError(f"no such month: {text!r} (a month is written YYYY-MM, e.g. 2026-11)")
        return cls(year, month)

    @classmethod
    def of(cls, day: dt.date | dt.datetime) -> "Period":
        """The month a date falls in (a datetime: the bureau's date)."""
        d = bureau_date(day)
        return cls(d.year, d.month)

    @classmethod
    def months_of(cls, year: int) -> list["Period"]:
        return [cls(year, m) for m in range(1, 13)]

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def label(self) -> str:
        """'2026年11月', as the cover, the letters and the workbooks write it."""
        return month_label(self.year, self.month)

    def plus(self, n: int) -> "Period":
        k = self.year * 12 + (self.month - 1) + n
        return Period(k // 12, k % 12 + 1)

    def next(self) -> "Period":
        return self.plus(1)

    def previous(self) -> "Period":
        return self.plus(-1)

    @property
    def first_day(self) -> dt.date:
        return dt.date(self.year, self.month, 1)

    @property
    def last_day(self) -> dt.date:
        return dt.date(self.year, self.month, _cal.monthrange(self.year, self.month)[1])


def month_label(year: int, month: int) -> str:
    """'2026年11月' for any year and month (also a wrong date quoted back in an error)."""
    return f"{year}年{month}月"


# Periods travel as '2026-11' strings (database columns, JSON, rules); these take and give them.

def parse_period(text: str) -> tuple[int, int]:
    p = Period.parse(text)
    return p.year, p.month


def period_of(day: dt.date | dt.datetime) -> str:
    return str(Period.of(day))


def add_months(period: str, n: int) -> str:
    return str(Period.parse(period).plus(n))


def period_last_day(period: str) -> dt.date:
    return Period.parse(period).last_day


def period_label(period: str) -> str:
    return Period.parse(period).label
