"""The reminder before a deadline and the overdue notice after it, to a section, listing what it still owes.

Pure: the Reminder values duties/reminders.py decides are due (who, which task and month, by
when) in; (subject, plain text) out. The office attaches the templates and sends it.
"""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from mailbot.dates.period import period_label
from mailbot.dates.workdays import CalendarGapError, WorkCalendar
from mailbot.dates.zone import bureau_time, zh_date, zh_month_day
from mailbot.model import Rules
from mailbot.writing.common import closing, greeting, task_label
from mailbot.writing.vocabulary import provisional_words

if TYPE_CHECKING:   # only the type: duties/reminders.py decides, this module words it
    from mailbot.duties.reminders import Reminder

__all__ = ["PLAN", "reminder_text", "overdue_text"]

PLAN = "《长清区市场监管局落实信用状况监测工作实施方案》"


def _rule_words(rules: Rules, r: Reminder) -> str:
    task = rules.task(r.task)
    rule = next((d for d in task.deadlines if d.kind == "monthly" and d.day), None) if task else None
    if rule is None:
        return ""
    if not rule.stated:
        return f"（实施方案未写具体日期，按每月{rule.day}日前报送）"
    short = f"；本月没有{rule.day}日，按当月最后一天" if r.due.day != rule.day else ""
    return f"（实施方案：每月{rule.day}日前{short}）"


def _non_workday_note(r: Reminder, calendar: WorkCalendar | None) -> str:
    try:
        if calendar is not None and not calendar.is_workday(r.due):
            return f"截止日为休息日，请尽量在{zh_date(calendar.previous_workday(r.due))}下班前报送。"
    except CalendarGapError:
        return ""
    return ""


def _item_lines(rules: Rules, items: Sequence[Reminder], calendar: WorkCalendar | None,
                overdue: bool) -> list[str]:
    lines = []
    several = len({r.period for r in items}) > 1
    for i, r in enumerate(items, 1):
        head = f"  {i}. {task_label(rules, r.task)}"
        if several and r.required is None:
            head += f"，{period_label(r.period)}材料"
        lines.append(head)
        if r.required is not None:
            lines.append(f"     实施方案要求每年至少{r.required}次，{r.due.year}年已报送{r.count or 0}次；"
                         f"请在{zh_date(r.due)}前完成并报送")
            continue
        text = f"     报送时限：{zh_date(r.due)}前{_rule_words(rules, r)}"
        if overdue and re.fullmatch(r"\d+wd", r.label):
            text += f"，已逾期{int(r.label[:-2])}个工作日"
        lines.append(text)
        if not overdue and (note := _non_workday_note(r, calendar)):
            lines.append(f"     {note}")
    if calendar is not None and (guess := sorted({r.due.year for r in items if calendar.is_provisional(r.due.year)})):
        # working days of such a year (advice, days overdue, when this letter went out) are a guess
        lines += ["", f"    注：{provisional_words(guess)}，正式安排公布后以正式安排为准。"]
    return lines


def _how_to_send(section: str, items: Sequence[Reminder], period: str, mailbox_name: str,
                 mailbox_address: str | None) -> list[str]:
    where = f"，或发送至{mailbox_name}公务邮箱 {mailbox_address}" if mailbox_address else ""
    example = f"{section} 任务{items[0].task} {period_label(period)}"
    return [f"    报送方式：请按随信附上的贵科室{period_label(period)}报送模板（附件1 信用状况监测分析报送材料模板）"
            f"填写，连同相关佐证材料（文件、照片等）作为附件，直接回复本邮件{where}。"
            f"邮件主题请注明科室、任务和月份，例如“{example}”；一封邮件可同时报送多项任务，"
            "请保留模板中的工作表名称和表头。"]


def _main_period(items: Sequence[Reminder], period: str | None) -> str:
    if period:
        return period
    return min(r.period for r in items if r.required is None) if any(r.required is None for r in items) \
        else items[0].period


def _letter_items(items: Sequence[Reminder], kind: str, period: str | None, now: dt.datetime | None,
                  empty: str, mixed: str) -> tuple[list[Reminder], str, dt.datetime]:
    """The items in letter order, the month the letter is about and its date (the latest send time
    when no `now` is given); ValueError for no items or an item of the other kind."""
    if not items:
        raise ValueError(empty)
    if any(r.kind != kind for r in items):
        raise ValueError(mixed)
    items = sorted(items, key=lambda r: (r.period, r.task))
    sent = bureau_time(now) if now is not None else max(r.send_at for r in items)
    return items, _main_period(items, period), sent


def reminder_text(section: str, items: Sequence[Reminder], rules: Rules, period: str | None = None, *,
                  calendar: WorkCalendar | None = None, mailbox_name: str = "信用监管科",
                  mailbox_address: str | None = None, now: dt.datetime | None = None) -> tuple[str, str]:
    """(subject, plain text) of the reminder to `section` listing exactly `items` (what is missing:
    task number and title, due date with weekday, how to send it, the attached template).
    `calendar` adds the advice to send by the working day before a due date on a day off."""
    items, period, sent = _letter_items(items, "reminder", period, now, "a reminder lists at least one missing item",
                                        "reminder_text takes reminders only; overdue notices go to overdue_text")
    n = len(items)
    dated = [r for r in items if r.required is None]
    first_due = min((r.due for r in dated), default=None)
    if dated and all(r.due == sent.date() for r in dated):
        subject = f"【今日截止】{section}{period_label(period)}信用监测材料尚有{n}项未报送"
    elif first_due is not None:
        subject = (f"【报送提醒】{section}{period_label(period)}信用监测材料尚有{n}项未报送"
                   f"（{zh_month_day(first_due, weekday=False)}截止）")
    else:
        subject = f"【报送提醒】{section}{sent.year}年诚信宣传等年度任务尚未达标（{n}项）"
    lines = [greeting(section), "",
             f"    根据{PLAN}，各科室应对照11项重点任务，按模板及时限要求，按月度将信用监测相关佐证材料"
             f"报送至{mailbox_name}公务邮箱。截至{zh_date(sent)}，尚未收到贵科室以下{n}项材料：", ""]
    lines += _item_lines(rules, items, calendar, overdue=False)
    lines.append("")
    lines += _how_to_send(section, items, period, mailbox_name, mailbox_address)
    lines.append("    如已在近期报送，请以系统回执为准，无需重复报送；如对本提醒有疑问，请直接回复本邮件"
                 f"或与{mailbox_name}联系。")
    lines += closing(mailbox_name, sent.date())
    return subject, "\n".join(lines) + "\n"


def overdue_text(section: str, items: Sequence[Reminder], rules: Rules, period: str | None = None, *,
                 calendar: WorkCalendar | None = None, mailbox_name: str = "信用监管科", mailbox_address: str | None = None,
                 now: dt.datetime | None = None) -> tuple[str, str]:
    """(subject, plain text) of the overdue notice to `section` (the caller copies it to the credit
    section): what is late, since when, how to send it now, and that it counts in the assessment."""
    items, period, sent = _letter_items(items, "overdue", period, now, "an overdue notice lists at least one item",
                                        "overdue_text takes overdue notices only")
    n = len(items)
    subject = f"【逾期未报】{section}{period_label(period)}信用监测材料已超过报送时限（{n}项）"
    lines = [greeting(section), "",
             f"    根据{PLAN}，以下{n}项材料已超过报送时限，截至{zh_date(sent)}尚未收到贵科室报送：", ""]
    lines += _item_lines(rules, items, calendar, overdue=True)
    lines.append("")
    lines.append("    请尽快补报。")
    lines += _how_to_send(section, items, period, mailbox_name, mailbox_address)
    lines.append(f"    按照实施方案“定期通报科室任务完成情况，并作为年底开展考核的依据”的要求，逾期报送和未报送情况"
                 f"将计入科室任务完成情况。如有特殊情况，请及时与{mailbox_name}沟通说明。")
    lines.append(f"    本通知同时抄送{mailbox_name}。")
    lines += closing(mailbox_name, sent.date())
    return subject, "\n".join(lines) + "\n"
