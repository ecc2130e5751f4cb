"""What the credit section reads when it loads a year's holiday schedule from the State Council's
notice: the schedule as read, day by day, for the clerk to check; and why a notice was refused.

Like every desk answer, the text is the body alone: the answer letter (writing/desk.py) adds the
greeting and the closing; a refusal is the reason alone.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from mailbot.dates.holiday_notice import Schedule
from mailbot.dates.zone import zh_date, zh_time

__all__ = ["Previous", "holidays_loaded_text", "schedule_lines", "notice_unread_text", "package_differs_text",
           "NOT_CREDIT", "NO_NOTICE", "TOO_MANY", "unreadable_attachment_text", "wrong_year_text"]

_ORDINALS = "一二三四五六七八九十"


@dataclass(frozen=True)
class Previous:
    """The schedule of the same year loaded before: when, by whom, and whether it was the same."""
    loaded_at: dt.datetime
    loaded_by: str
    same: bool


def schedule_lines(schedule: Schedule) -> list[str]:
    """Each festival with its days, day by day in date order (放假 / 调休上班), for a person to check."""
    groups: dict[str, list[tuple[dt.date, str]]] = {}
    for day, name in schedule.holidays.items():
        groups.setdefault(name, []).append((day, "放假"))
    for day, name in schedule.workdays.items():
        groups.setdefault(name, []).append((day, "调休上班"))
    lines: list[str] = []
    ordered = sorted(groups.items(), key=lambda g: min(d for d, kind in g[1] if kind == "放假"))
    for i, (name, days) in enumerate(ordered):
        off = sum(1 for _, kind in days if kind == "放假")
        worked = len(days) - off
        lines.append(f"{_ORDINALS[i] if i < len(_ORDINALS) else i + 1}、{name}：放假{off}天"
                     + (f"，调休上班{worked}天" if worked else "，无调休上班"))
        lines += [f"    {zh_date(day)}  {kind}" for day, kind in sorted(days)]
    return lines


def holidays_loaded_text(schedule: Schedule, *, source: str, previous: Previous | None, was_provisional: bool,
                         rules_file: str | None) -> str:
    """The answer to a notice loaded: the schedule day by day; what it replaced; whether a rules
    file of the same year still wins. `source` names where the text was read ('邮件正文', '附件“…”')."""
    year = schedule.year
    days_off, worked = len(schedule.holidays), len(schedule.workdays)
    head = (f"    已按{source}中的国务院办公厅关于{year}年部分节假日安排的通知，录入{year}年节假日安排："
            f"共放假{days_off}天（含其间的周末），调休上班{worked}天。请逐日核对：")
    after: list[str] = []
    if previous is not None and previous.same:
        after.append(f"    本次通知与{zh_time(previous.loaded_at)} 由 {previous.loaded_by} 录入的{year}年安排完全一致，"
                     f"安排未改变。")
    elif previous is not None:
        after.append(f"    {zh_time(previous.loaded_at)} 由 {previous.loaded_by} 录入的{year}年安排已被本次通知替代。")
    if rules_file:
        after.append(f"    注意：服务器上的规则文件 {rules_file} 也规定了{year}年的安排，按规定以该文件为准。"
                     f"本次录入的安排已保存，但在该文件删除之前不起作用；如该文件有误，请通知系统管理员。")
    else:
        was = "此前按法定节假日预估（未含调休）的" if was_provisional else ""
        after.append(f"    自即日起，{year}年{was}报送期限、提醒和工作日计算均按本安排执行。")
    after.append(f"    如核对有误，请重新发送“节假日 {year}”并附正确的通知，新录入的安排将替代本次安排。")
    return "\n".join([head, "", *schedule_lines(schedule), "", *after]) + "\n"


NOT_CREDIT = "节假日安排只能由信用监管科录入，本邮件未执行。"
NO_NOTICE = ("未找到节假日安排通知：请将国务院办公厅关于部分节假日安排的通知全文粘贴在邮件正文中，"
             "或作为 .txt、.docx、.pdf 附件发送。")
TOO_MANY = "邮件附有多个通知文件（{names}），无法确定以哪一个为准，请只附一个。"


def unreadable_attachment_text(name: str, why: str) -> str:
    """An attachment that could not be read: which one, why, and what to send instead."""
    return (f"附件“{name}”无法读取：{why}。请将通知全文粘贴在邮件正文中，"
            f"或另存为 .docx 或 .txt 后重新发送。")


def wrong_year_text(year: int) -> str:
    return f"年份{year}不在可录入的范围内，请写明通知所属的年份，例如“节假日 2027”。"


def notice_unread_text(year: int, reason: str, line: str) -> str:
    """A notice refused: the line not read with certainty and why. Nothing was loaded."""
    where = f"以下一行无法准确识别：\n\n        {line.strip()}\n\n    原因：{reason}。" if line else f"原因：{reason}。"
    return (f"{year}年节假日安排未录入。通知中{where}\n"
            f"    为避免按错误的安排计算期限，整份通知均未录入。请核对后重新发送完整、准确的通知全文。")


def package_differs_text(year: int, differs: list[tuple[dt.date, bool]]) -> str:
    """A notice for a year whose schedule shipped with the program and that disagrees with it."""
    shown = "、".join(f"{zh_date(d)}（通知为{'上班' if works else '放假'}）" for d, works in differs[:6])
    more = f"等{len(differs)}天" if len(differs) > 6 else ""
    return (f"{year}年节假日安排未录入：系统已有国务院公布的{year}年安排，本通知与之不符：{shown}{more}。"
            f"请核对通知是否完整准确；如国务院确已调整安排，请通知系统管理员按 rules/calendar 的说明更正。")
