"""Reminders and overdue notices with a fake clock, against the official 2026 holiday schedule."""
from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from mailbot.duties.reminders import (Reminder, ReminderSettings, count_reminders, group_by_section, overdue_slots,
                                     reminder_slots, reminders_due)
from mailbot.writing.reminder import overdue_text, reminder_text
from mailbot.rules import load_rules
from mailbot.dates.workdays import CalendarGapError, WorkCalendar
from mailbot.dates.zone import bureau_zone

BEIJING = bureau_zone()

UTC = dt.UTC
S = ReminderSettings(before_workdays=(5, 2), overdue_workdays=(1,), send_at=dt.time(9, 0), overdue_grace_workdays=5)


@pytest.fixture(scope="module")
def rules(rules_dir):
    return load_rules(rules_dir)


@pytest.fixture(scope="module")
def small(rules):
    """Tasks 3 (政策法规科, 25th), 6 (个私服务中心, 30th) and 9 (four sections, 30th) only."""
    return dataclasses.replace(rules, tasks=tuple(rules.task(n) for n in (3, 6, 9)))


@pytest.fixture(scope="module")
def cal(rules, rules_dir):
    return WorkCalendar(rules.calendar, rules_dir=str(rules_dir))


def bj(y, m, d, h=9, mi=0):
    return dt.datetime(y, m, d, h, mi, tzinfo=BEIJING)


def day(y, m, d):
    return dt.date(y, m, d)


def days(slots):
    return [(label, at.date(), at.time()) for label, at in slots]


# ---------------------------------------------------------------- when reminders fall

def test_settings_from_rules(rules):
    st = ReminderSettings.from_rules(rules)
    assert st.before_workdays == (3, 1) and st.overdue_workdays == (1, 3)
    assert st.send_at == dt.time(9, 0) and st.on_due_day and st.count_check_months == (6, 10)
    assert ReminderSettings.from_mapping({"send_at": "08:30", "overdue_grace_workdays": 2}).send_at == dt.time(8, 30)
    with pytest.raises(ValueError):
        ReminderSettings.from_mapping({"send_at": "9am"})


def test_spring_festival(cal):
    # 2 working days before Wednesday 2026-02-25: Tuesday 24th (1), then Feb 15–23 off, Saturday 14th (2), a worked day
    assert days(reminder_slots(day(2026, 2, 25), cal, S)) == [
        ("5wd", day(2026, 2, 11), dt.time(9)), ("2wd", day(2026, 2, 14), dt.time(9)), ("due", day(2026, 2, 25), dt.time(9))]
    # 每月30日前 in February: the 28th, a worked Saturday, so its morning reminder stays on it
    assert days(reminder_slots(day(2026, 2, 28), cal, S))[-1] == ("due", day(2026, 2, 28), dt.time(9))
    assert days(overdue_slots(day(2026, 2, 28), cal, S)) == [("1wd", day(2026, 3, 2), dt.time(9))]
    assert days(overdue_slots(day(2026, 2, 13), cal, S)) == [("1wd", day(2026, 2, 14), dt.time(9))]


def test_national_day(cal):
    # Sunday 2026-10-25: 5 working days before is Monday 19th; its morning reminder moves to Friday 23rd
    assert days(reminder_slots(day(2026, 10, 25), cal, S)) == [
        ("5wd", day(2026, 10, 19), dt.time(9)), ("2wd", day(2026, 10, 22), dt.time(9)), ("due", day(2026, 10, 23), dt.time(9))]
    # a deadline on Sunday 2026-10-11: the reminder moves to Saturday 10th, a make-up working day
    assert days(reminder_slots(day(2026, 10, 11), cal, S))[-1] == ("due", day(2026, 10, 10), dt.time(9))
    # a deadline inside the holiday (Monday 5th): back to Wednesday 30 September
    assert days(reminder_slots(day(2026, 10, 5), cal, S))[-1] == ("due", day(2026, 9, 30), dt.time(9))
    # 中秋 Friday 2026-09-25: the morning reminder on Thursday 24th; 5 working days before is the worked Sunday 20th
    assert days(reminder_slots(day(2026, 9, 25), cal, S)) == [
        ("5wd", day(2026, 9, 20), dt.time(9)), ("2wd", day(2026, 9, 23), dt.time(9)), ("due", day(2026, 9, 24), dt.time(9))]
    # overdue: the working day after, at 09:00
    assert days(overdue_slots(day(2026, 9, 30), cal, S)) == [("1wd", day(2026, 10, 8), dt.time(9))]
    assert days(overdue_slots(day(2026, 10, 25), cal, S)) == [("1wd", day(2026, 10, 26), dt.time(9))]
    assert days(overdue_slots(day(2026, 9, 25), cal, S)) == [("1wd", day(2026, 9, 28), dt.time(9))]
    three = ReminderSettings(overdue_workdays=(1, 3))
    assert days(overdue_slots(day(2026, 9, 30), cal, three)) == [
        ("1wd", day(2026, 10, 8), dt.time(9)), ("3wd", day(2026, 10, 10), dt.time(9))]


def test_two_reminders_on_one_day_are_one(cal):
    st = ReminderSettings(before_workdays=(3, 1))
    # Sunday 25th: 1 working day before and the moved morning reminder are both Friday 23rd
    assert days(reminder_slots(day(2026, 10, 25), cal, st)) == [
        ("3wd", day(2026, 10, 21), dt.time(9)), ("due", day(2026, 10, 23), dt.time(9))]
    assert days(reminder_slots(day(2026, 10, 25), cal, ReminderSettings(before_workdays=(), send_at=dt.time(8, 30)))) == [
        ("due", day(2026, 10, 23), dt.time(8, 30))]


def test_monthly_rule_in_rules_moves_to_a_worked_saturday(rules, cal):
    t9 = rules.task(9)
    eleventh = dataclasses.replace(t9, deadlines=tuple(dataclasses.replace(d, day=11) if d.kind == "monthly" else d
                                                       for d in t9.deadlines))
    r = dataclasses.replace(rules, tasks=(eleventh,))
    got = reminders_due(r, bj(2026, 10, 10, 9, 0), cal, set(), S)
    order = [s.id for s in rules.sections]
    assert [(x.section, x.label, x.send_at) for x in got] == [
        (s, "due", bj(2026, 10, 10)) for s in sorted(t9.sections, key=order.index)]
    assert reminders_due(r, bj(2026, 10, 10, 8, 59), cal, set(), S)[0].label == "2wd"


# ---------------------------------------------------------------- a simulated month

# when each (section, task, period) has a current accepted submission (None: never)
SUBMITTED_AT = {
    ("政策法规科", 3, "2026-09"): bj(2026, 9, 20),
    ("个私服务中心", 6, "2026-09"): bj(2026, 9, 20),
    ("办公室", 9, "2026-09"): bj(2026, 9, 20),
    ("财务科", 9, "2026-09"): None,                      # never: overdue on 8 October
    ("知识产权科", 9, "2026-09"): bj(2026, 9, 20),
    ("信用监管科", 9, "2026-09"): bj(2026, 9, 20),
    ("政策法规科", 3, "2026-10"): bj(2026, 10, 20, 12),   # after the 5-day reminder
    ("个私服务中心", 6, "2026-10"): bj(2026, 10, 29, 10),  # before the deadline-day reminder
    ("办公室", 9, "2026-10"): None,                      # never
    ("财务科", 9, "2026-10"): bj(2026, 10, 9, 10),       # early: no reminder at all
    ("知识产权科", 9, "2026-10"): bj(2026, 11, 3, 15),    # late: reminders and one overdue notice
    ("信用监管科", 9, "2026-10"): bj(2026, 10, 23, 8),    # one hour before the 23rd's reminders
}


def submitted_at(now):
    keys = {k for k, t in SUBMITTED_AT.items() if t is not None and t <= now}
    # November is all in on the 1st, to keep the month under test alone
    if now >= bj(2026, 11, 1, 0):
        keys |= {(s, n, "2026-11") for n, ss in ((3, ["政策法规科"]), (6, ["个私服务中心"]),
                                                  (9, ["办公室", "财务科", "知识产权科", "信用监管科"])) for s in ss}
    return keys


def K(kind, section, task, period, label):
    return f"{kind}:{section}:{task}:{period}:{label}"


EXPECTED_LETTERS = [
    (bj(2026, 10, 8), "overdue:财务科:2026-10-08T09:00", [K("overdue", "财务科", 9, "2026-09", "1wd")]),
    (bj(2026, 10, 19), "reminder:政策法规科:2026-10-19T09:00", [K("reminder", "政策法规科", 3, "2026-10", "5wd")]),
    (bj(2026, 10, 23), "reminder:个私服务中心:2026-10-23T09:00", [K("reminder", "个私服务中心", 6, "2026-10", "5wd")]),
    (bj(2026, 10, 23), "reminder:办公室:2026-10-23T09:00", [K("reminder", "办公室", 9, "2026-10", "5wd")]),
    (bj(2026, 10, 23), "reminder:知识产权科:2026-10-23T09:00", [K("reminder", "知识产权科", 9, "2026-10", "5wd")]),
    (bj(2026, 10, 28), "reminder:个私服务中心:2026-10-28T09:00", [K("reminder", "个私服务中心", 6, "2026-10", "2wd")]),
    (bj(2026, 10, 28), "reminder:办公室:2026-10-28T09:00", [K("reminder", "办公室", 9, "2026-10", "2wd")]),
    (bj(2026, 10, 28), "reminder:知识产权科:2026-10-28T09:00", [K("reminder", "知识产权科", 9, "2026-10", "2wd")]),
    (bj(2026, 10, 30), "reminder:办公室:2026-10-30T09:00", [K("reminder", "办公室", 9, "2026-10", "due")]),
    (bj(2026, 10, 30), "reminder:知识产权科:2026-10-30T09:00", [K("reminder", "知识产权科", 9, "2026-10", "due")]),
    (bj(2026, 11, 2), "overdue:办公室:2026-11-02T09:00", [K("overdue", "办公室", 9, "2026-10", "1wd")]),
    (bj(2026, 11, 2), "overdue:知识产权科:2026-11-02T09:00", [K("overdue", "知识产权科", 9, "2026-10", "1wd")]),
]


def run(rules, cal, start, end, queued, step=dt.timedelta(minutes=30), down=None):
    """The daemon's job with a fake clock: every `step`, queue each letter under its key (an
    outbox with a unique dedupe key); returns what was newly queued, with the clock time."""
    sent = []
    now = start
    while now <= end:
        if not (down and down[0] <= now < down[1]):
            for letter in group_by_section(reminders_due(rules, now, cal, submitted_at(now), S)):
                if letter.dedupe_key not in queued:
                    queued[letter.dedupe_key] = letter
                    sent.append((now, letter.dedupe_key, [r.dedupe_key for r in letter.items]))
        now += step
    return sent


@pytest.mark.slow
def test_simulated_month_sends_exactly_the_expected_letters(small, cal):
    queued: dict = {}
    sent = run(small, cal, bj(2026, 10, 1, 0), bj(2026, 11, 15, 0), queued)
    assert sent == EXPECTED_LETTERS
    # a rerun of the same month, or a second daemon sharing the outbox, sends nothing more
    assert run(small, cal, bj(2026, 10, 1, 0), bj(2026, 11, 15, 0), queued, step=dt.timedelta(minutes=7)) == []


def test_daemon_down_then_back(small, cal):
    queued: dict = {}
    # down from 21 October to noon on the 29th: the 23rd's letters are missed; on return the
    # latest reminder of each still-missing item goes out once (个私服务中心 sent its answer on the 29th)
    sent = run(small, cal, bj(2026, 10, 1, 0), bj(2026, 11, 15, 0), queued, down=(bj(2026, 10, 21, 0), bj(2026, 10, 29, 12)))
    assert sent == EXPECTED_LETTERS[:2] + [
        (bj(2026, 10, 29, 12), "reminder:办公室:2026-10-28T09:00", [K("reminder", "办公室", 9, "2026-10", "2wd")]),
        (bj(2026, 10, 29, 12), "reminder:知识产权科:2026-10-28T09:00", [K("reminder", "知识产权科", 9, "2026-10", "2wd")]),
    ] + EXPECTED_LETTERS[8:]


def test_down_past_the_deadline_sends_the_overdue_notice_only(small, cal):
    queued: dict = {}
    sent = run(small, cal, bj(2026, 10, 29, 0), bj(2026, 11, 15, 0), queued, down=(bj(2026, 10, 29, 0), bj(2026, 11, 4, 9)))
    assert [k for _, k, _ in sent] == ["overdue:办公室:2026-11-02T09:00"]      # 知识产权科 sent on the 3rd


def test_exact_lists_at_moments(small, cal):
    def keys(now):
        return [r.dedupe_key for r in reminders_due(small, now, cal, submitted_at(now), S)]
    assert keys(bj(2026, 10, 8, 8, 59)) == []
    assert keys(bj(2026, 10, 8, 9, 0)) == [K("overdue", "财务科", 9, "2026-09", "1wd")]
    assert keys(bj(2026, 10, 14, 17)) == [K("overdue", "财务科", 9, "2026-09", "1wd")]   # 5 working days' grace
    assert keys(bj(2026, 10, 15, 9)) == []
    assert keys(bj(2026, 10, 19, 9)) == [K("reminder", "政策法规科", 3, "2026-10", "5wd")]
    assert keys(bj(2026, 10, 20, 12)) == []                                              # 政策法规科 has sent
    # 23rd 09:00: ordered by the rules' section order; 信用监管科 and 财务科 have sent
    assert keys(bj(2026, 10, 23, 9)) == [K("reminder", s, n, "2026-10", "5wd")
                                        for s, n in (("知识产权科", 9), ("个私服务中心", 6), ("办公室", 9))]
    # Sunday 25th: 政策法规科's deadline has not passed, but it has sent; the others' latest is still the 23rd's
    assert keys(bj(2026, 10, 25, 23, 59)) == keys(bj(2026, 10, 23, 9))
    assert keys(bj(2026, 10, 30, 23, 59)) == [K("reminder", s, 9, "2026-10", "due") for s in ("知识产权科", "办公室")]
    assert keys(bj(2026, 10, 31, 0, 0)) == []                                            # passed; overdue on Monday
    assert keys(bj(2026, 11, 2, 9)) == [K("overdue", s, 9, "2026-10", "1wd") for s in ("知识产权科", "办公室")]
    assert keys(bj(2026, 11, 3, 16)) == [K("overdue", "办公室", 9, "2026-10", "1wd")]


def test_dedupe_keys_are_stable(small, cal):
    now = bj(2026, 10, 28, 9, 30)
    a = reminders_due(small, now, cal, submitted_at(now), S)
    b = reminders_due(small, now.astimezone(UTC), cal, set(submitted_at(now)), S)
    c = reminders_due(small, bj(2026, 10, 29, 8), cal, submitted_at(now), S)      # later, same slot
    assert [r.dedupe_key for r in a] == [r.dedupe_key for r in b] == [r.dedupe_key for r in c]
    assert a == b
    assert a[0].as_dict(to=["gsfwzx@example.cn"]) == {
        "kind": "reminder", "to": ["gsfwzx@example.cn"], "section": "知识产权科", "task": 9, "period": "2026-10",
        "due": "2026-10-30", "send_at": "2026-10-28T09:00:00+08:00", "label": "2wd",
        "dedupe_key": "reminder:知识产权科:9:2026-10:2wd"}
    letters = group_by_section(a)
    assert [g.dedupe_key for g in letters] == [f"reminder:{s}:2026-10-28T09:00" for s in ("个私服务中心", "办公室", "知识产权科")]


def test_naive_now_is_beijing_time(small, cal):
    assert reminders_due(small, dt.datetime(2026, 10, 19, 9, 0), cal, set(), S) == \
        reminders_due(small, bj(2026, 10, 19, 9, 0), cal, set(), S)
    # 00:59 UTC is 08:59 Beijing: the 19th's reminder is not due yet; at 01:00 UTC it is
    assert reminders_due(small, dt.datetime(2026, 10, 19, 0, 59, tzinfo=UTC), cal, set(), S) == []
    assert [r.dedupe_key for r in reminders_due(small, dt.datetime(2026, 10, 19, 1, 0, tzinfo=UTC), cal, set(), S)] == [
        K("reminder", "政策法规科", 3, "2026-10", "5wd")]


def test_one_letter_per_section_lists_all_its_items(rules, cal):
    now = bj(2026, 10, 23, 9)
    got = reminders_due(rules, now, cal, set(), ReminderSettings.from_rules(rules))
    letters = group_by_section(got)
    x = next(g for g in letters if g.section == "信用监管科")
    # its tasks 1, 2, 4, 8, 11 are due Sunday the 25th: the morning reminder moved to Friday the 23rd,
    # the same day as the 1-working-day one (one reminder); task 9 (the 30th) is reminded from the 27th
    assert [(r.task, r.label) for r in x.items] == [(1, "due"), (2, "due"), (4, "due"), (8, "due"), (11, "due")]
    assert len({g.dedupe_key for g in letters}) == len(letters)
    assert {r.section for r in got} == {s.id for s in rules.sections} - {"办公室", "财务科"}


def test_a_provisional_year_still_gets_its_reminders(rules, cal):
    st = ReminderSettings.from_rules(rules)
    gaps: list = []
    got = reminders_due(rules, bj(2027, 1, 25, 9), cal, set(), st, gaps=gaps)
    assert gaps == []
    day25 = {t.number for t in rules.tasks if any(d.kind == "monthly" and d.day == 25 for d in t.deadlines)}
    assert {(r.task, r.period) for r in got if r.kind == "reminder"} >= {(n, "2027-01") for n in day25}


def test_letters_on_a_provisional_year_say_so(rules, cal):
    st = ReminderSettings.from_rules(rules)
    now = bj(2027, 1, 25, 9)
    got = [r for r in reminders_due(rules, now, cal, set(), st) if r.section == "政策法规科" and r.kind == "reminder"]
    _, text = reminder_text("政策法规科", got, rules, calendar=cal, now=now)
    assert "注：2027年节假日安排尚未公布，工作日按法定节假日预估（未含调休），正式安排公布后以正式安排为准。" in text
    late = [dataclasses.replace(r, kind="overdue", label="1wd") for r in got]
    _, text = overdue_text("政策法规科", late, rules, calendar=cal, now=bj(2027, 1, 26, 9))
    assert "已逾期1个工作日" in text and "2027年节假日安排尚未公布" in text
    # an official year says nothing of the kind
    items = [r for r in reminders_due(rules, bj(2026, 10, 19, 9), cal, set(), S) if r.section == "政策法规科"]
    assert "预估" not in reminder_text("政策法规科", items, rules, "2026-10", calendar=cal)[1]


def test_count_checks(rules, cal):
    st = ReminderSettings.from_rules(rules)
    counts = {("餐饮科", 7): 1, ("宣传科", 7): 2, ("政策法规科", 2): 1}
    assert count_reminders(rules, bj(2026, 6, 1, 8, 59), cal, counts, st) == []
    got = count_reminders(rules, bj(2026, 6, 15, 10), cal, counts, st)
    assert {(r.section, r.task) for r in got} == (
        {(s, 7) for s in rules.task(7).sections if s != "宣传科"} | {(s, 2) for s in rules.task(2).sections if s != "政策法规科"})
    r = next(x for x in got if (x.section, x.task) == ("餐饮科", 7))
    assert (r.count, r.required, r.due, r.send_at, r.dedupe_key) == (
        1, 2, day(2026, 12, 31), bj(2026, 6, 1), "reminder:餐饮科:7:2026-12:count-06")
    assert count_reminders(rules, bj(2026, 7, 1, 10), cal, counts, st) == []
    assert count_reminders(rules, bj(2026, 10, 9, 10), cal, counts, st)[0].send_at == bj(2026, 10, 8)   # after 国庆


# ---------------------------------------------------------------- the letters

def test_reminder_text(rules, cal):
    now = bj(2026, 10, 19, 9)
    items = [r for r in reminders_due(rules, now, cal, set(), S) if r.section == "政策法规科"]
    subject, text = reminder_text("政策法规科", items, rules, "2026-10", calendar=cal,
                                  mailbox_address="cqscjgxyjdk@jn.shandong.cn")
    assert subject == "【报送提醒】政策法规科2026年10月信用监测材料尚有4项未报送（10月25日截止）"
    assert text.startswith("政策法规科：\n")
    assert "截至2026年10月19日（星期一）09:00，尚未收到贵科室以下4项材料" in text
    for n in (1, 2, 3, 11):
        assert f"任务{n}（{rules.task(n).title}）" in text
    assert "任务4" not in text and "任务9" not in text
    assert text.count("报送时限：2026年10月25日（星期日）前（实施方案未写具体日期，按每月25日前报送）") == 4
    assert "截止日为休息日，请尽量在2026年10月23日（星期五）下班前报送。" in text
    assert "随信附上的贵科室2026年10月报送模板（附件1 信用状况监测分析报送材料模板）" in text
    assert "直接回复本邮件，或发送至信用监管科公务邮箱 cqscjgxyjdk@jn.shandong.cn" in text
    assert text.rstrip().endswith("（本邮件由信用监管科邮件受理系统自动发送。）")
    assert "2026年10月19日\n" in text


def test_reminder_text_stated_day_and_february(rules, cal):
    r = Reminder("reminder", "个私服务中心", 6, "2026-02", day(2026, 2, 28), bj(2026, 2, 28),
                 "reminder:个私服务中心:6:2026-02:due", "due")
    subject, text = reminder_text("个私服务中心", [r], rules, calendar=cal)
    assert subject == "【今日截止】个私服务中心2026年2月信用监测材料尚有1项未报送"
    assert "报送时限：2026年2月28日（星期六）前（实施方案：每月30日前；本月没有30日，按当月最后一天）" in text
    assert "休息日" not in text          # the 28th is a worked Saturday in 2026
    with pytest.raises(ValueError):
        overdue_text("个私服务中心", [r], rules)
    with pytest.raises(ValueError):
        reminder_text("个私服务中心", [], rules)


def test_overdue_text(small, cal):
    now = bj(2026, 11, 2, 9)
    items = [r for r in reminders_due(small, now, cal, submitted_at(now), S) if r.section == "办公室"]
    subject, text = overdue_text("办公室", items, small)
    assert subject == "【逾期未报】办公室2026年10月信用监测材料已超过报送时限（1项）"
    assert "截至2026年11月2日（星期一）09:00尚未收到贵科室报送" in text
    assert f"任务9（{small.task(9).title}）" in text
    assert "报送时限：2026年10月30日（星期五）前（实施方案：每月30日前），已逾期1个工作日" in text
    assert "作为年底开展考核的依据" in text and "本通知同时抄送信用监管科。" in text
    assert "随信附上的贵科室2026年10月报送模板" in text
    with pytest.raises(ValueError):
        reminder_text("办公室", items, small)


def test_count_text(rules, cal):
    got = count_reminders(rules, bj(2026, 6, 1, 9), cal, {("餐饮科", 7): 1}, ReminderSettings.from_rules(rules))
    items = [r for r in got if r.section == "餐饮科"]
    subject, text = reminder_text("餐饮科", items, rules)
    assert "实施方案要求每年至少2次，2026年已报送1次；请在2026年12月31日（星期四）前完成并报送" in text
    assert "实施方案要求每年至少1次，2026年已报送0次" in text
