"""The notices the system sends about itself: the warning that next year's holiday schedule is missing."""
from __future__ import annotations

import datetime as dt

from mailbot.dates.period import period_label
from mailbot.dates.workdays import WorkCalendar
from mailbot.writing.common import greeting

__all__ = ["calendar_gap_notice"]


def calendar_gap_notice(today: dt.date, calendar: WorkCalendar) -> tuple[str, str] | None:
    """From 1 November on, while next year's holiday schedule is known neither to the package nor
    to rules/calendar/, (subject, text) of the notice asking the credit section to fill it in."""
    nxt = today.year + 1
    if today.month < 11 or calendar.knows(nxt):
        return None
    path = f"{calendar.rules_dir.rstrip('/')}/calendar/{nxt}.yaml"
    subject = f"【提醒】请录入{nxt}年法定节假日安排"
    # signed by the system, not dated: the same text goes out every week until the file is there
    text = (f"{greeting('信用监管科')}\n\n    mailbot尚未掌握{nxt}年的法定节假日和调休安排。{period_label(f'{nxt:04d}-01')}起，"
            f"报送期限、提醒和\"双公示\"7个工作日的核算暂按法定节假日预估（未含调休），"
            f"按工作日计算的期限可能与正式安排相差一两天。\n    国务院办公厅公布{nxt}年部分节假日安排的通知后，"
            f"请系统管理员按 {path} 的格式（参见同目录下的 {nxt}.yaml.example 和 README.md）录入放假日期和调休上班日期，"
            f"并运行 mailbot rules check 核对；录入后即以正式安排为准。\n    在录入之前，本提醒每周发送一次。\n\n信用监管科邮件受理系统\n")
    return subject, text
