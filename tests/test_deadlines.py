"""Deadlines against the official 2026 schedule (国办发明电〔2025〕N号, DOMAIN.md §4), no clock."""
from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from mailbot.dates import deadlines as D
from mailbot.dates.deadlines import Due, deadlines_for_period, event_due
from mailbot.rules import load_rules
from mailbot.dates.workdays import CalendarGapError, WorkCalendar
from mailbot.dates import period, zone
from mailbot.dates.zone import bureau_zone, iso

BEIJING = bureau_zone()

UTC = dt.UTC


@pytest.fixture(scope="module")
def rules(rules_dir):
    return load_rules(rules_dir)


@pytest.fixture(scope="module")
def cal(rules, rules_dir):
    return WorkCalendar(rules.calendar, rules_dir=str(rules_dir))


def d(y, m, day):
    return dt.date(y, m, day)


# ---------------------------------------------------------------- the 2026 calendar itself

@pytest.mark.parametrize("day,works", [
    (d(2026, 1, 4), True),                          # 元旦调休 Sunday
    (d(2026, 2, 14), True), (d(2026, 2, 28), True),  # 春节调休 Saturdays
    *[(d(2026, 2, k), False) for k in range(15, 24)],  # 春节 Feb 15–23, 9 days
    (d(2026, 5, 9), True), (d(2026, 9, 20), True), (d(2026, 10, 10), True),
    (d(2026, 9, 25), False),                        # 中秋 Friday
    *[(d(2026, 10, k), False) for k in range(1, 8)],  # 国庆 Oct 1–7
    (d(2026, 10, 8), True), (d(2026, 10, 11), False),
])
def test_official_2026_schedule(cal, day, works):
    assert cal.is_workday(day) is works


def test_2026_has_248_working_days(cal):
    assert sum(cal.is_workday(d(2026, 1, 1) + dt.timedelta(k)) for k in range(365)) == 248


# ---------------------------------------------------------------- monthly deadlines

def _due(dues, task, section):
    found = [x for x in dues if x.task == task and x.section == section and x.kind == "monthly"]
    assert len(found) == 1
    return found[0]


def test_every_task_and_section_of_a_month(rules, cal):
    dues = deadlines_for_period(rules, "2026-10", cal)
    monthly = [x for x in dues if x.kind == "monthly"]
    # one monthly deadline per (task, responsible section), nothing for a section not responsible
    assert {(x.task, x.section) for x in monthly} == {(t.number, s) for t in rules.tasks for s in t.sections}
    assert len(monthly) == sum(len(t.sections) for t in rules.tasks)
    assert _due(dues, 3, "政策法规科") == Due(3, "政策法规科", "2026-10", d(2026, 10, 25), "monthly", False,
                                           source=_due(dues, 3, "政策法规科").source)
    assert _due(dues, 4, "知识产权科").stated is True
    assert _due(dues, 6, "个私服务中心").due == d(2026, 10, 30)
    assert _due(dues, 9, "财务科").due == d(2026, 10, 30)
    assert not any(x.task == 4 and x.section == "政策法规科" for x in dues)
    # ordered by task, then the rules' section order
    assert [x.task for x in dues] == sorted(x.task for x in dues)
    assert [x.section for x in dues if x.task == 9 and x.kind == "monthly"] == list(rules.task(9).sections)


def test_february_thirtieth_is_the_last_day(rules, cal):
    dues = deadlines_for_period(rules, "2026-02", cal)
    assert _due(dues, 6, "个私服务中心").due == d(2026, 2, 28)      # 30日前 -> Feb 28 (a worked Saturday)
    assert _due(dues, 9, "办公室").due == d(2026, 2, 28)
    assert _due(dues, 4, "信用监管科").due == d(2026, 2, 25)
    assert _due(deadlines_for_period(rules, "2028-02", cal), 9, "办公室").due == d(2028, 2, 29)
    assert D.monthly_due(rules.task(6), "2026-02") == d(2026, 2, 28)


def test_due_on_a_day_off_does_not_move_by_default(rules, cal):
    # 2026-10-25 is a Sunday, 2026-01-25 too: the plain calendar date stands (DOMAIN.md §6.5, decided)
    assert _due(deadlines_for_period(rules, "2026-10", cal), 4, "知识产权科").due == d(2026, 10, 25)
    assert _due(deadlines_for_period(rules, "2026-01", cal), 4, "知识产权科").due == d(2026, 1, 25)
    assert D.shift_of(rules) == "none"


def test_shift_setting_moves_a_due_on_a_day_off(rules, cal):
    prev = deadlines_for_period(rules, "2026-10", cal, shift="previous_workday")
    nxt = deadlines_for_period(rules, "2026-10", cal, shift="next_workday")
    assert _due(prev, 4, "知识产权科").due == d(2026, 10, 23)
    assert _due(nxt, 4, "知识产权科").due == d(2026, 10, 26)
    assert _due(prev, 6, "个私服务中心").due == d(2026, 10, 30)        # a Friday: stays
    # 中秋 Friday 2026-09-25 -> Thursday 24th, or Monday 28th
    assert _due(deadlines_for_period(rules, "2026-09", cal, shift="previous_workday"), 4, "知识产权科").due == d(2026, 9, 24)
    assert _due(deadlines_for_period(rules, "2026-09", cal, shift="next_workday"), 4, "知识产权科").due == d(2026, 9, 28)
    # read from the rules' settings when present
    moved = dataclasses.replace(rules, reminders={**rules.reminders, "monthly_due_shift": "previous_workday"})
    assert _due(deadlines_for_period(moved, "2026-10", cal), 4, "知识产权科").due == d(2026, 10, 23)
    with pytest.raises(ValueError):
        deadlines_for_period(rules, "2026-10", cal, shift="sideways")
    with pytest.raises(ValueError, match="calendar"):
        deadlines_for_period(rules, "2026-10", None, shift="previous_workday")


def test_count_rules(rules, cal):
    oct_ = deadlines_for_period(rules, "2026-10", cal)
    counts = [x for x in oct_ if x.kind == "count"]
    # 信用动态: at least 1 a month, due at the month's end; per-year counts not listed in October
    assert counts == [Due(5, "宣传科", "2026-10", d(2026, 10, 31), "count", True, 1, "month", counts[0].source)]
    dec = [x for x in deadlines_for_period(rules, "2026-12", cal) if x.kind == "count"]
    year = {(x.task, x.section): x for x in dec if x.per == "year"}
    assert {k for k in year} == {(7, s) for s in rules.task(7).sections} | {(2, s) for s in rules.task(2).sections}
    assert all(x.due == d(2026, 12, 31) for x in year.values())
    assert year[(7, "餐饮科")].at_least == 2 and year[(2, "政策法规科")].at_least == 1
    assert Due(5, "宣传科", "2026-02", d(2026, 2, 28), "count", True, 1, "month").due == \
        next(x for x in deadlines_for_period(rules, "2026-02", cal) if x.kind == "count").due


def test_json_shape(rules, cal):
    x = _due(deadlines_for_period(rules, "2026-10", cal), 3, "政策法规科")
    assert x.as_dict() == {"task": 3, "section": "政策法规科", "period": "2026-10", "due": "2026-10-25",
                           "kind": "monthly", "stated": False}


@pytest.mark.parametrize("bad", ["2026-13", "2026-1", "26-10", "", "2026/10"])
def test_bad_period(rules, cal, bad):
    with pytest.raises(ValueError):
        deadlines_for_period(rules, bad, cal)


def test_is_on_time_reads_the_beijing_date():
    due = d(2026, 10, 25)
    assert D.is_on_time(due, d(2026, 10, 25)) is True
    assert D.is_on_time(due, d(2026, 10, 26)) is False
    assert D.is_on_time(None, d(2026, 10, 26)) is None
    # 23:30 Beijing on the 25th is 15:30 UTC: on time; 00:30 Beijing on the 26th is 16:30 UTC on the 25th: late
    assert D.is_on_time(due, dt.datetime(2026, 10, 25, 15, 30, tzinfo=UTC)) is True
    assert D.is_on_time(due, dt.datetime(2026, 10, 25, 16, 30, tzinfo=UTC)) is False
    hours = dt.datetime(2026, 10, 2, 15, 0, tzinfo=BEIJING)
    assert D.is_on_time(hours, dt.datetime(2026, 10, 2, 7, 0, tzinfo=UTC)) is True
    assert D.is_on_time(hours, dt.datetime(2026, 10, 2, 7, 1, tzinfo=UTC)) is False
    assert D.is_on_time(hours, d(2026, 10, 1)) is True and D.is_on_time(hours, d(2026, 10, 2)) is False


def test_is_past():
    due = d(2026, 10, 25)
    assert not D.is_past(due, dt.datetime(2026, 10, 25, 23, 59, tzinfo=BEIJING))
    assert D.is_past(due, dt.datetime(2026, 10, 26, 0, 0, tzinfo=BEIJING))
    assert D.is_past(due, dt.datetime(2026, 10, 25, 16, 0, tzinfo=UTC))       # 00:00 on the 26th in Beijing
    assert not D.is_past(due, d(2026, 10, 25)) and D.is_past(due, d(2026, 10, 26))


# ---------------------------------------------------------------- event deadlines

def test_shuanggongshi_seven_working_days_across_national_day(rules, cal):
    # via the Oct 10 make-up Saturday (DOMAIN.md §4)
    assert event_due(rules.task(3), d(2026, 9, 28), cal) == d(2026, 10, 13)
    assert event_due(rules.task(3), dt.datetime(2026, 9, 28, 16, 0, tzinfo=BEIJING), cal) == d(2026, 10, 13)
    # decided on the Saturday before 中秋 with the Sep 20 make-up Sunday inside: 18 (Fri) + 7
    assert event_due(rules.task(3), d(2026, 9, 18), cal) == d(2026, 9, 29)


def test_shuanggongshi_across_spring_festival(rules, cal):
    # Feb 13 (1), Feb 14 worked Saturday (2), Feb 15–23 off, Feb 24–27 (3–6), Feb 28 worked Saturday (7)
    assert event_due(rules.task(3), d(2026, 2, 12), cal) == d(2026, 2, 28)
    assert event_due(rules.task(3), d(2026, 2, 14), cal) == d(2026, 3, 3)


def test_objection_one_working_day(rules, cal):
    assert event_due(rules.task(11), d(2026, 9, 30), cal) == d(2026, 10, 8)
    assert event_due(rules.task(11), d(2026, 2, 13), cal) == d(2026, 2, 14)    # the worked Saturday
    assert event_due(rules.task(11), d(2026, 10, 3), cal) == d(2026, 10, 8)    # received during the holiday
    assert event_due(rules.task(11), d(2026, 10, 9), cal) == d(2026, 10, 10)


def test_48_hours(rules, cal):
    ev = dt.datetime(2026, 9, 30, 15, 0, tzinfo=BEIJING)
    due = event_due(rules.task(5), ev, cal)
    assert due == dt.datetime(2026, 10, 2, 15, 0, tzinfo=BEIJING)     # holidays do not stop the clock
    assert iso(due) == "2026-10-02T15:00:00+08:00"
    # the same moment given in UTC, and naive (= Beijing time)
    assert iso(event_due(rules.task(5), dt.datetime(2026, 9, 30, 7, 0, tzinfo=UTC), cal)) == "2026-10-02T15:00:00+08:00"
    assert iso(event_due(rules.task(7), dt.datetime(2026, 9, 30, 15, 0), cal)) == "2026-10-02T15:00:00+08:00"
    # a date-only event: the date two days later (as the ledger row check counts)
    assert event_due(rules.task(5), d(2026, 9, 30), cal) == d(2026, 10, 2)
    assert event_due(rules.task(7), d(2026, 12, 31), cal) == d(2027, 1, 2)   # no calendar needed


def test_asap_and_no_event_rule(rules, cal):
    assert event_due(rules.task(10), d(2026, 10, 9), cal) is None
    with pytest.raises(ValueError, match="task 4"):
        event_due(rules.task(4), d(2026, 10, 9), cal)


def test_a_year_nobody_published_is_provisional_not_a_stop(rules, cal):
    # 2027: no package data, no rules file: the statutory days off alone, no 调休
    assert cal.source(2027) == "provisional" and cal.is_provisional(2027) and not cal.knows(2027)
    assert event_due(rules.task(3), d(2026, 12, 24), cal) == d(2027, 1, 5)     # 1 January off, weekends off
    assert cal.provisional_years(d(2026, 12, 24), d(2027, 1, 5)) == (2027,)
    assert cal.provisional_years(d(2026, 1, 5), d(2026, 12, 24)) == ()
    # 春节 2027: 除夕 5 February to 初三 8 February off
    assert [cal.is_workday(d(2027, 2, k)) for k in range(4, 10)] == [True, False, False, False, False, True]
    dues = deadlines_for_period(rules, "2027-10", cal, shift="previous_workday")
    assert dues and all(x.due.year == 2027 for x in dues)


def test_a_year_from_rules_calendar(rules):
    # an override year: rules/calendar/2027.yaml once published (here invented, for the arithmetic)
    cal = WorkCalendar({2027: {"holidays": frozenset({d(2027, 10, k) for k in range(1, 8)}),
                               "workdays": frozenset({d(2027, 10, 9)})}})
    # Sep 30 (1), Oct 8 (2), Oct 9 worked Saturday (3), Oct 11–14 (4–7)
    assert event_due(rules.task(3), d(2027, 9, 29), cal) == d(2027, 10, 14)


def test_iso_and_zh():
    assert iso(d(2026, 10, 13)) == "2026-10-13"
    assert iso(dt.datetime(2026, 10, 2, 7, 0, 12, 345, tzinfo=UTC)) == "2026-10-02T15:00:12+08:00"
    assert iso(None) is None
    assert zone.zh_date(d(2026, 10, 25)) == "2026年10月25日（星期日）"
    assert zone.zh_date(dt.datetime(2026, 10, 2, 7, 0, tzinfo=UTC)) == "2026年10月2日（星期五）15:00"
    assert period.add_months("2026-12", 1) == "2027-01" and period.add_months("2026-01", -1) == "2025-12"
