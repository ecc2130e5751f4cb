"""Due dates from the rules: when a task's material is due, and whether a receipt was in time.

Pure: dates in, dates out; `received`, `today` and `now` are arguments, never the clock. Every
time is the bureau's (Asia/Shanghai, UTC+8 without daylight saving since 1991): an aware
datetime is converted to +08:00, a naive one is taken as already being Beijing time.

Decisions the plan leaves open (DOMAIN.md §6), made here and nowhere else:

- 每月N日前 is read as "by the end of day N" (a receipt on the 25th itself is on time), the usual
  reading in the bureau's notices; a month without day N (30 in February) is due on its last day
  (2026-02: the 28th).
- A monthly due date on a non-working day does NOT move: the plan gives a calendar date and
  says nothing of holidays, so the plain date stands (2026-10-25, a Sunday, stays the 25th; a
  receipt that Sunday is on time). Reminders are what moves: the deadline-day reminder goes
  out on the last working day before (reminders.py). The `shift` argument ("none",
  "previous_workday", "next_workday"; settings key `reminders: monthly_due_shift` once
  rules.py accepts it) switches this should the bureau decide otherwise.
- Count rules become deadlines too: 信用动态 "每月不少于1篇" (per month) is due at the end of
  each month; a per-year count (诚信宣传 "每年至少2次", 理论学习 "一次") is due on 31 December
  and is listed in the December period only, the month it falls due in.
- Event deadlines (`event_due`): N working days after the event date, the event day itself not
  counted (2026-09-28 + 7 = 2026-10-13, as the 双公示 row check counts); 48 hours after an
  event given with its time is an exact datetime (+08:00; holidays do not stop the clock);
  after an event given as a date only it is the date ceil(48/24) = 2 days later, the reading
  the 信用动态/诚信宣传 row checks use ("表格只填日期:按不超过2个自然日计"). 第一时间 (asap)
  has no arithmetic: None.
- Only the calendar is consulted where holidays matter (working days, a shifted due date); a
  year the calendar does not know then raises `CalendarGapError` naming rules/calendar/<year>.yaml.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from mailbot.model import Rules, Task
from mailbot.dates.period import parse_period, period_last_day
from mailbot.dates.workdays import WorkCalendar
from mailbot.dates.zone import bureau_date, bureau_time, bureau_zone, iso

__all__ = ["SHIFTS", "Due", "monthly_due", "is_on_time", "deadlines_for_period", "event_due",
           "shift_of", "due_end", "is_past"]

SHIFTS = ("none", "previous_workday", "next_workday")


# ---------------------------------------------------------------- monthly deadlines

def shift_of(rules: Rules | None) -> str:
    """The bureau's choice for a monthly due date on a non-working day (default: it does not move)."""
    value = (rules.reminders.get("monthly_due_shift") if rules is not None else None) or "none"
    if value not in SHIFTS:
        raise ValueError(f"monthly_due_shift must be one of {', '.join(SHIFTS)}; found {value!r}")
    return value


def _shifted(day: dt.date, shift: str, calendar: WorkCalendar | None) -> dt.date:
    if shift == "none":
        return day
    if shift not in SHIFTS:
        raise ValueError(f"shift must be one of {', '.join(SHIFTS)}; found {shift!r}")
    if calendar is None:
        raise ValueError(f"shift {shift!r} needs the working-day calendar")
    if shift == "previous_workday":
        return calendar.previous_workday(day)
    return calendar.add_workdays(day, 0)


def _month_day(period: str, day: int) -> dt.date:
    last = period_last_day(period)
    return last.replace(day=min(day, last.day))


def monthly_due(task: Task, period: str, calendar: WorkCalendar | None = None,
                shift: str = "none") -> dt.date | None:
    """The plan's 每月N日前 for `period` ('YYYY-MM'); a month without day N (30 in February) is
    due on its last day. The plain calendar date unless `shift` says otherwise (module docstring)."""
    rule = next((d for d in task.deadlines if d.kind == "monthly" and d.day), None)
    if rule is None:
        return None
    return _shifted(_month_day(period, rule.day), shift, calendar)


def is_on_time(due: dt.date | dt.datetime | None, received: dt.date | dt.datetime) -> bool | None:
    """每月25日前 is read as 'by the end of the 25th', the usual reading in the bureau's notices.

    A datetime `received` counts by its Beijing date against a date `due`; against a datetime
    `due` (48 hours) it is compared exactly (a bare date `received` then counts as its end)."""
    if due is None:
        return None
    if isinstance(due, dt.datetime):
        return (bureau_time(received) if isinstance(received, dt.datetime) else due_end(received)) <= bureau_time(due)
    return bureau_date(received) <= due


def due_end(due: dt.date | dt.datetime) -> dt.datetime:
    """The last instant a deadline allows: the end of a due date (Beijing), or the due datetime."""
    if isinstance(due, dt.datetime):
        return bureau_time(due)
    return dt.datetime.combine(due, dt.time.max, bureau_zone())


def is_past(due: dt.date | dt.datetime, now: dt.date | dt.datetime) -> bool:
    """Has `due` passed at `now`? A date due passes at the end of that day (Beijing); a `now`
    given as a date stands for the start of that day (so a date due has passed the day after)."""
    if isinstance(now, dt.datetime):
        return bureau_time(now) > due_end(due)
    if isinstance(due, dt.datetime):
        return dt.datetime.combine(now, dt.time.min, bureau_zone()) > bureau_time(due)
    return now > due


@dataclass(frozen=True)
class Due:
    """One deadline of one (task, responsible section) for one period.

    kind: "monthly" (每月N日前; `due` a date) or "count" (at least `at_least` per `per`, due at
    the end of the month, or on 31 December for a per-year count). `stated` False where the
    plan gives no figure and rules/ assumes one (the 25th for most tasks)."""
    task: int
    section: str
    period: str
    due: dt.date | dt.datetime
    kind: str
    stated: bool
    at_least: int | None = None
    per: str | None = None
    source: str = ""

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"task": self.task, "section": self.section, "period": self.period,
                             "due": iso(self.due), "kind": self.kind, "stated": self.stated}
        if self.kind == "count":
            d.update(at_least=self.at_least, per=self.per)
        return d


def deadlines_for_period(rules: Rules, period: str, calendar: WorkCalendar | None = None, *,
                         shift: str | None = None) -> list[Due]:
    """Every deadline of `period` for every task and each section responsible for it, ordered
    by task, then section (as rules list them), then due date.

    Monthly rules give the month's due date; count rules give the month's end (per month) or
    31 December (per year, December only). Event and asap rules are not listed: their due
    dates depend on events (`event_due`). `shift` defaults to the rules' setting."""
    parse_period(period)
    shift = shift_of(rules) if shift is None else shift
    last = period_last_day(period)
    out: list[Due] = []
    for task in sorted(rules.tasks, key=lambda t: t.number):
        found: list[tuple[dt.date, str, bool, int | None, str | None, str]] = []
        for rule in task.deadlines:
            if rule.kind == "monthly" and rule.day:
                found.append((_shifted(_month_day(period, rule.day), shift, calendar), "monthly",
                              rule.stated, None, None, rule.source))
            elif rule.kind == "count" and rule.per == "month":
                found.append((last, "count", rule.stated, rule.at_least, rule.per, rule.source))
            elif rule.kind == "count" and rule.per == "year" and last.month == 12:
                found.append((last, "count", rule.stated, rule.at_least, rule.per, rule.source))
        found.sort(key=lambda f: (f[0], f[1] != "monthly"))
        for section in task.sections:
            for due, kind, stated, at_least, per, source in found:
                out.append(Due(task.number, section, period, due, kind, stated, at_least, per, source))
    return out


# ---------------------------------------------------------------- event deadlines

def event_due(task: Task, event: dt.date | dt.datetime, calendar: WorkCalendar) -> dt.date | dt.datetime | None:
    """The deadline an event sets for `task`: a 双公示 decision (+7 working days), an objection
    letter received (+1 working day), a 信用动态 event or 诚信宣传 campaign (+48 hours).

    Working days: the event day is not counted; the result is a date (due by its end). Hours:
    from a datetime, that datetime plus the hours (+08:00); from a bare date, the date
    ceil(hours/24) days later. A task whose only event rule is 第一时间 (asap): None. A task
    with no event rule at all: ValueError. A year the calendar does not know: CalendarGapError."""
    rules = [d for d in task.deadlines if d.kind == "event"]
    if not rules:
        if any(d.kind == "asap" for d in task.deadlines):
            return None
        raise ValueError(f"task {task.number} has no deadline that an event sets "
                         f"(its deadlines: {', '.join(d.kind for d in task.deadlines) or 'none'})")
    rule = rules[0]
    if rule.working_days is not None:
        return calendar.add_workdays(bureau_date(event), rule.working_days)
    if rule.hours is not None:
        if isinstance(event, dt.datetime):
            return bureau_time(event) + dt.timedelta(hours=rule.hours)
        return event + dt.timedelta(days=math.ceil(rule.hours / 24))
    raise ValueError(f"task {task.number}: an event deadline needs working_days or hours")
