"""The bureau's clock face: its time zone (from the config, Asia/Shanghai by default) and how a
date or a time is written for a person ('2026年11月25日（星期三）', '2026年11月25日 09:00').

Every module that turns an instant into a date, or a date into Chinese, comes here: a
receipt's date, a deadline's day and a letter's date line must agree.
"""
from __future__ import annotations

import datetime as dt
import zoneinfo

__all__ = ["DEFAULT_ZONE", "use_zone", "bureau_zone", "bureau_time", "bureau_date", "iso",
           "zh_date", "zh_month_day", "zh_time", "zh_weekday"]

DEFAULT_ZONE = "Asia/Shanghai"
# China has kept UTC+8 without daylight saving since 1991: the default needs no tz database.
_FIXED = {DEFAULT_ZONE: dt.timezone(dt.timedelta(hours=8), DEFAULT_ZONE)}
_zone: dt.tzinfo = _FIXED[DEFAULT_ZONE]
_WEEKDAYS = "一二三四五六日"


def use_zone(name: str | None) -> dt.tzinfo:
    """Set the bureau's zone from the config's `timezone` (the one source); the wiring calls this
    once at start. Raises zoneinfo.ZoneInfoNotFoundError for an unknown name."""
    global _zone
    name = name or DEFAULT_ZONE
    _zone = _FIXED.get(name) or zoneinfo.ZoneInfo(name)
    return _zone


def bureau_zone() -> dt.tzinfo:
    return _zone


def bureau_time(value: dt.datetime) -> dt.datetime:
    """`value` in the bureau's zone; a naive value is taken to be the bureau's time already."""
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=_zone)
    return value.astimezone(_zone)


def bureau_date(value: dt.date | dt.datetime) -> dt.date:
    """The bureau's calendar date of a date or datetime (a time in UTC may be the day before)."""
    if isinstance(value, dt.datetime):
        return bureau_time(value).date()
    return value


def iso(value: dt.date | dt.datetime | None) -> str | None:
    """ISO 8601 as JSON and the CLI print it: a date as YYYY-MM-DD, a time with its offset (+08:00)."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return bureau_time(value).replace(microsecond=0).isoformat()
    return value.isoformat()


def zh_weekday(day: dt.date) -> str:
    return "星期" + _WEEKDAYS[day.weekday()]


def zh_date(value: dt.date | dt.datetime, weekday: bool = True) -> str:
    """'2026年10月25日（星期日）'; a datetime adds its time: '2026年10月2日（星期五）15:00'."""
    if isinstance(value, dt.datetime):
        t = bureau_time(value)
        return zh_date(t.date(), weekday) + f"{t:%H:%M}"
    text = f"{value.year}年{value.month}月{value.day}日"
    return text + f"（{zh_weekday(value)}）" if weekday else text


def zh_month_day(value: dt.date | dt.datetime, weekday: bool = True) -> str:
    """'11月25日（星期三）', where the year goes without saying (a subject line, a digest); a datetime
    adds its time as zh_date does: '11月25日09:00'."""
    if isinstance(value, dt.datetime):
        t = bureau_time(value)
        return zh_month_day(t.date(), weekday) + f"{t:%H:%M}"
    text = f"{value.month}月{value.day}日"
    return text + f"（{zh_weekday(value)}）" if weekday else text


def zh_time(value: dt.datetime) -> str:
    """'2026年11月25日 09:30', the bureau's time: when a mail was received or sent."""
    t = bureau_time(value)
    return f"{zh_date(t.date(), weekday=False)} {t:%H:%M}"
