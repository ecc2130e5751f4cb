"""The notices the system sends about itself to the credit section: a year's holiday schedule is
missing (so its working days are 预估), and a scheduled duty could not be done."""
from __future__ import annotations

import datetime as dt

from mailbot.dates.period import period_label
from mailbot.dates.workdays import WorkCalendar
from mailbot.dates.zone import zh_time
from mailbot.writing.common import closing, greeting
from mailbot.writing.vocabulary import provisional_words

__all__ = ["calendar_gap_notice", "duty_failed_notice", "DUTY_NAMES"]

# the daemon's scheduled jobs (app/jobs.py) as the credit section knows them
DUTY_NAMES = {
    "reminders": "报送提醒和逾期通知",
    "digest": "每日报送情况汇总",
    "monthly_package": "月度汇总材料",
    "bulletin": "调度通报",
    "escalation": "逾期督办通知",
    "period_complete": "报送齐全通知",
    "calendar_warning": "节假日安排检查",
}


def calendar_gap_notice(today: dt.date, calendar: WorkCalendar, *,
                        credit_section: str = "信用监管科") -> tuple[int, str, str] | None:
    """(year, subject, text) of the notice that a year's official holiday schedule is missing:
    this year at any time, next year from 1 November on; None when both are known. The credit
    section is told once per year (the caller's dedupe key), `health` shows it until loaded."""
    years = [today.year] + ([today.year + 1] if today.month >= 11 else [])
    year = next((y for y in years if calendar.is_provisional(y)), None)
    if year is None:
        return None
    path = f"{calendar.rules_dir.rstrip('/')}/calendar/{year}.yaml"
    subject = f"【提醒】请录入{year}年法定节假日安排"
    since = "起" if today.year < year else "的"
    text = (f"{greeting(credit_section)}\n\n    mailbot尚未掌握{year}年的法定节假日和调休安排。{period_label(f'{year:04d}-01')}{since}"
            f"报送期限、提醒和\"双公示\"7个工作日的核算暂按法定节假日预估（未含调休），按工作日计算的期限可能与"
            f"正式安排相差一两天；相关回执、提醒和期限均注明“预估”（{provisional_words([year])}）。\n"
            f"    国务院办公厅公布{year}年部分节假日安排的通知后，请将通知全文发送至本邮箱，主题写“节假日 {year}”"
            f"（通知可粘贴在正文中，或以 .txt、.docx、.pdf 附件发送）；系统逐日回复读出的安排供核对，"
            f"录入后即以正式安排为准。也可由系统管理员按 {path} 的格式（参见同目录下的 {year}.yaml.example 和 "
            f"README.md）录入，并运行 mailbot rules check 核对。\n    本提醒只发送一次；录入之前，系统状态（mailbot health）一直显示该年为预估。\n")
    return year, subject, text + "\n".join(closing(credit_section, today, thanks=False)) + "\n"


def duty_failed_notice(duty: str, reason: str, now: dt.datetime, *,
                       credit_section: str = "信用监管科") -> tuple[str, str]:
    """(subject, text) telling the credit section that a scheduled duty (`duty`, in Chinese: 报送提醒,
    月度汇总…) could not be done at `now`, and why; nothing of a duty fails silently."""
    subject = f"【系统提示】{duty}未能完成（{zh_time(now)}）"
    text = (f"{greeting(credit_section)}\n\n    系统在{zh_time(now)}执行“{duty}”时未能完成，原因：\n\n"
            f"        {reason}\n\n    在问题解决之前，该项工作可能没有按时进行。请通知系统管理员检查"
            f"（日志中有详细记录）；问题解决后系统会在下一次计划时间自动补做。\n")
    return subject, text + "\n".join(closing(credit_section, now, thanks=False)) + "\n"
