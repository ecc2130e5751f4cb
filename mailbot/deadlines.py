"""Due dates from the rules: when a task's material for a month is due, and whether a receipt was in time.

Pure: dates in, dates out; `received` is an argument, never the clock.
"""
from __future__ import annotations

import calendar
import datetime as dt

from .model import Task

__all__ = ["monthly_due", "is_on_time"]


def monthly_due(task: Task, period: str) -> dt.date | None:
    """The plan's 每月N日前 for `period` ('YYYY-MM'); a month without day N (30 in February) is due on its last day."""
    rule = next((d for d in task.deadlines if d.kind == "monthly" and d.day), None)
    if rule is None:
        return None
    year, month = (int(x) for x in period.split("-"))
    last = calendar.monthrange(year, month)[1]
    return dt.date(year, month, min(rule.day, last))


def is_on_time(due: dt.date | None, received: dt.date) -> bool | None:
    """每月25日前 is read as 'by the end of the 25th', the usual reading in the bureau's notices."""
    if due is None:
        return None
    return received <= due
