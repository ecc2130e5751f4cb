"""Who must be reminded of what, and when: reminders before each deadline, overdue notices after.

Pure: rules, `now`, the working-day calendar and the set of (section, task, period) that have a
current accepted submission in; values out. The caller (jobs.py) turns them into letters and
queues each with its dedupe key, so a restart, a second daemon or a rerun sends nothing twice;
the words of the letters are writing/reminder.py's.

When (rules/settings.yaml `reminders`, read by ReminderSettings.from_rules):

- before_workdays [k…]: at `send_at` (09:00 Beijing) on the k-th working day before a monthly
  due date (the due date itself not counted: 2 working days before 2026-02-25 is Saturday
  2026-02-14, a make-up working day, because 15–23 February are the Spring Festival);
- always at `send_at` on the morning of the due date itself; a due date on a non-working day
  moves that reminder to the working day before (Sunday 2026-10-25 -> Friday 10-23; Sunday
  2026-10-11 -> Saturday 10-10, a make-up working day). Two reminders falling on the same day
  are one (the nearer-to-the-deadline label is kept);
- overdue_workdays [k…]: at `send_at` on the k-th working day after a missed due date, an
  overdue notice (the caller copies it to the credit section); Wednesday 2026-09-30 -> Thursday
  2026-10-08, after the National Day holiday.

Which (rules, not settings, decide what is a deadline): only monthly deadlines (每月N日前) get
calendar reminders. Event deadlines (7 working days after a 双公示 decision, 48 hours after a
信用动态 event, 1 working day after an objection letter) depend on events the bot learns of
only from the submission itself, and 第一时间 (asap) has no date: no calendar reminders for
them. The per-month count rule (信用动态 at least 1 a month) is chased through its task's
monthly deadline; the per-year ones (理论学习, 诚信宣传) by `count_reminders` in the months of
`count_check_months`.

Catching up: `reminders_due(now)` returns, for each section still missing an item, the LATEST
reminder whose send time is <= now, while the deadline has not passed (now <= the end of the
due date); so a reminder missed while the daemon was down is sent when it comes back, but a
daemon down across two reminder times sends one letter, not two. Overdue notices likewise: the
latest one whose time is <= now, for `overdue_grace_workdays` (default 5) working days after its
time; after that nothing (the status table and the digest carry on). Every reminder has a
stable `dedupe_key` ("reminder:政策法规科:3:2026-11:5wd"); `group_by_section` makes one letter
per section and send time, keyed "reminder:政策法规科:2026-11-18T09:00", which is the key to
queue the letter under: the same letter at the same time can only be queued once, whatever
was submitted in between.

A deadline whose reminders need a year the calendar does not know raises CalendarGapError
(naming rules/calendar/<year>.yaml), or, with `gaps=[]`, is skipped and the error appended to
that list so one unknown year does not stop every other reminder.
"""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mailbot.dates.deadlines import Due, deadlines_for_period, is_past
from mailbot.model import Rules
from mailbot.dates.workdays import CalendarGapError, WorkCalendar
from mailbot.dates.zone import bureau_time, bureau_zone, iso
from mailbot.dates.period import add_months, period_of

__all__ = ["ReminderSettings", "Reminder", "ReminderLetter", "reminders_due", "count_reminders",
           "reminder_slots", "overdue_slots", "group_by_section"]

_TIME_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


# ---------------------------------------------------------------- settings

@dataclass(frozen=True)
class ReminderSettings:
    before_workdays: tuple[int, ...] = (3, 1)
    overdue_workdays: tuple[int, ...] = (1,)
    send_at: dt.time = dt.time(9, 0)
    on_due_day: bool = True                  # "always on the morning of the deadline itself"
    overdue_grace_workdays: int = 5          # an overdue notice missed while down: sent this long after
    count_check_months: tuple[int, ...] = ()
    escalate_after_workdays: int = 3         # still missing after this many working days: the head is told

    @classmethod
    def from_mapping(cls, m: Mapping[str, Any] | None) -> ReminderSettings:
        m = dict(m or {})
        kw: dict[str, Any] = {}
        for key in ("before_workdays", "overdue_workdays", "count_check_months"):
            if key in m and m[key] is not None:
                values = tuple(int(v) for v in m[key])
                if any(v < 0 for v in values):
                    raise ValueError(f"reminders: {key} must not be negative: {values}")
                kw[key] = values
        if m.get("send_at") is not None:
            value = m["send_at"]
            if isinstance(value, dt.time):
                kw["send_at"] = value
            else:
                tm = _TIME_RE.match(str(value))
                if not tm:
                    raise ValueError(f"reminders: send_at must be HH:MM, found {value!r}")
                kw["send_at"] = dt.time(int(tm.group(1)), int(tm.group(2)))
        if m.get("on_due_day") is not None:
            kw["on_due_day"] = bool(m["on_due_day"])
        for key in ("overdue_grace_workdays", "escalate_after_workdays"):
            if m.get(key) is not None:
                kw[key] = int(m[key])
                if kw[key] < 0:
                    raise ValueError(f"reminders: {key} must not be negative: {kw[key]}")
        return cls(**kw)

    @classmethod
    def from_rules(cls, rules: Rules) -> ReminderSettings:
        return cls.from_mapping(rules.reminders)


def _settings(settings: ReminderSettings | Mapping[str, Any] | None, rules: Rules) -> ReminderSettings:
    if isinstance(settings, ReminderSettings):
        return settings
    if settings is None:
        return ReminderSettings.from_rules(rules)
    return ReminderSettings.from_mapping(settings)


# ---------------------------------------------------------------- values

@dataclass(frozen=True)
class Reminder:
    """One thing one section is to be told at one time.

    kind "reminder" (before or on the due date) | "overdue" (after it); label: "5wd", "2wd",
    "due" (the morning of the deadline) for reminders, "1wd"… (working days late) for overdue
    notices, "count-06" for a per-year count check in June."""
    kind: str
    section: str
    task: int
    period: str
    due: dt.date
    send_at: dt.datetime            # +08:00
    dedupe_key: str
    label: str = ""
    count: int | None = None        # count checks: items reported so far this year
    required: int | None = None

    def as_dict(self, to: Sequence[str] | None = None) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind}
        if to is not None:
            d["to"] = list(to)
        d.update(section=self.section, task=self.task, period=self.period, due=iso(self.due),
                 send_at=iso(self.send_at), label=self.label, dedupe_key=self.dedupe_key)
        if self.required is not None:
            d.update(count=self.count, required=self.required)
        return d


@dataclass(frozen=True)
class ReminderLetter:
    """One letter: everything one section is told at one time (one kind)."""
    kind: str
    section: str
    send_at: dt.datetime
    items: tuple[Reminder, ...]
    dedupe_key: str                 # "reminder:政策法规科:2026-10-19T09:00": queue the letter under this

    @property
    def periods(self) -> tuple[str, ...]:
        return tuple(sorted({r.period for r in self.items}))


def _key(kind: str, section: str, task: int, period: str, label: str) -> str:
    return f"{kind}:{section}:{task}:{period}:{label}"


# ---------------------------------------------------------------- when

def _at(day: dt.date, settings: ReminderSettings) -> dt.datetime:
    return dt.datetime.combine(day, settings.send_at, bureau_zone())


def reminder_slots(due: dt.date, calendar: WorkCalendar,
                   settings: ReminderSettings) -> list[tuple[str, dt.datetime]]:
    """(label, send time) of every reminder before `due`, earliest first, one per day."""
    by_day: dict[dt.date, str] = {}
    offsets = set(settings.before_workdays) | ({0} if settings.on_due_day else set())
    for k in sorted(offsets):       # nearest first: it keeps a day two offsets share
        day = calendar.previous_workday(due) if k == 0 else calendar.add_workdays(due, -k)
        by_day.setdefault(day, "due" if k == 0 else f"{k}wd")
    return [(label, _at(day, settings)) for day, label in sorted(by_day.items())]


def overdue_slots(due: dt.date, calendar: WorkCalendar, settings: ReminderSettings,
                  until: dt.date | None = None) -> list[tuple[str, dt.datetime]]:
    """(label, send time) of every overdue notice after `due`, earliest first. With `until`,
    no day after it is looked at (nor asked of the calendar)."""
    wanted = sorted({k for k in settings.overdue_workdays if k > 0})
    out: list[tuple[str, dt.datetime]] = []
    day, n = due, 0
    while wanted and n < wanted[-1]:
        day += dt.timedelta(days=1)
        if until is not None and day > until:
            break
        if calendar.is_workday(day):
            n += 1
            if n in wanted:
                out.append((f"{n}wd", _at(day, settings)))
    return out


def _periods_around(today: dt.date, back: int, ahead: int) -> list[str]:
    here = period_of(today)
    return [add_months(here, k) for k in range(-back, ahead + 1)]


def reminders_due(rules: Rules, now: dt.datetime, calendar: WorkCalendar,
                  submitted: set[tuple[str, int, str]] | frozenset[tuple[str, int, str]],
                  settings: ReminderSettings | Mapping[str, Any] | None = None, *,
                  gaps: list[CalendarGapError] | None = None, shift: str | None = None) -> list[Reminder]:
    """Every reminder and overdue notice due at `now` for sections that have not submitted
    (module docstring: latest one per item, deadline not passed / within the grace), ordered
    by send time, section (rules order), task, period. `now` naive = Beijing time."""
    now = bureau_time(now)
    today = now.date()
    st = _settings(settings, rules)
    max_before = max(set(st.before_workdays) | {0})
    max_after = max(set(st.overdue_workdays) | {0}) + st.overdue_grace_workdays
    # k working days never span more than 2k+20 calendar days (the longest holiday is 9 days)
    reach_before, reach_after = 2 * max_before + 20, 2 * max_after + 20
    slots_cache: dict[tuple[str, dt.date], list[tuple[str, dt.datetime]]] = {}
    out: list[Reminder] = []
    periods = _periods_around(today, 1 + reach_after // 28, 1 + reach_before // 28)
    for period in periods:
        try:
            dues = deadlines_for_period(rules, period, calendar, shift=shift)
        except CalendarGapError as e:
            if gaps is None:
                raise
            gaps.append(e)
            continue
        for d in dues:
            if d.kind != "monthly" or (d.section, d.task, d.period) in submitted:
                continue
            try:
                r = _one(d, now, calendar, st, reach_before, reach_after, slots_cache)
            except CalendarGapError as e:
                if gaps is None:
                    raise
                if not any(g.year == e.year for g in gaps):
                    gaps.append(e)
                continue
            if r is not None:
                out.append(r)
    order = {s.id: i for i, s in enumerate(rules.sections)}
    out.sort(key=lambda r: (r.send_at, order.get(r.section, len(order)), r.section, r.task, r.period, r.kind))
    return out


def _one(d: Due, now: dt.datetime, calendar: WorkCalendar, st: ReminderSettings, reach_before: int,
         reach_after: int, cache: dict) -> Reminder | None:
    today = now.date()
    due = d.due
    if not is_past(due, now):
        if (due - today).days > reach_before:
            return None
        slots = cache.get(("before", due))
        if slots is None:
            slots = cache[("before", due)] = reminder_slots(due, calendar, st)
        passed = [s for s in slots if s[1] <= now]
        if not passed:
            return None
        label, at = passed[-1]
        return Reminder("reminder", d.section, d.task, d.period, due, at,
                        _key("reminder", d.section, d.task, d.period, label), label)
    if (today - due).days > reach_after:
        return None
    slots = cache.get(("after", due, today))
    if slots is None:
        slots = cache[("after", due, today)] = overdue_slots(due, calendar, st, until=today)
    passed = [s for s in slots if s[1] <= now]
    if not passed:
        return None
    label, at = passed[-1]
    if calendar.workdays_between(at.date(), today) > st.overdue_grace_workdays:
        return None
    return Reminder("overdue", d.section, d.task, d.period, due, at,
                    _key("overdue", d.section, d.task, d.period, label), label)


def count_reminders(rules: Rules, now: dt.datetime, calendar: WorkCalendar,
                    counts: Mapping[tuple[str, int], int],
                    settings: ReminderSettings | Mapping[str, Any] | None = None) -> list[Reminder]:
    """In each month of `count_check_months`, from `send_at` on its first working day to its end:
    a reminder to each section behind on a per-year count rule (理论学习 once, 诚信宣传 twice a
    year), `counts` being the items reported this year so far (status.yearly_counts)."""
    now = bureau_time(now)
    today = now.date()
    st = _settings(settings, rules)
    if today.month not in st.count_check_months:
        return []
    first = dt.date(today.year, today.month, 1)
    day = first
    while not calendar.is_workday(day):
        day += dt.timedelta(days=1)
        if day > today:
            return []
    at = _at(day, st)
    if at > now:
        return []
    label = f"count-{today.month:02d}"
    period = f"{today.year:04d}-12"
    out = []
    for s in rules.sections:
        for task in sorted(rules.tasks, key=lambda t: t.number):
            rule = next((r for r in task.deadlines if r.kind == "count" and r.per == "year"), None)
            if rule is None or s.id not in task.sections:
                continue
            have = counts.get((s.id, task.number), 0)
            if have >= (rule.at_least or 0):
                continue
            out.append(Reminder("reminder", s.id, task.number, period, dt.date(today.year, 12, 31), at,
                                _key("reminder", s.id, task.number, period, label), label, have, rule.at_least))
    return out


def group_by_section(reminders: Iterable[Reminder]) -> list[ReminderLetter]:
    """One letter per (kind, section, send time), items by task then period; letters in send-time order."""
    groups: dict[tuple[str, str, dt.datetime], list[Reminder]] = {}
    for r in reminders:
        groups.setdefault((r.kind, r.section, r.send_at), []).append(r)
    out = []
    for (kind, section, at), items in groups.items():
        items = sorted(dict.fromkeys(items), key=lambda r: (r.period, r.task, r.label))
        out.append(ReminderLetter(kind, section, at, tuple(items),
                                  f"{kind}:{section}:{bureau_time(at):%Y-%m-%dT%H:%M}"))
    out.sort(key=lambda g: (g.send_at, g.kind, g.section))
    return out
