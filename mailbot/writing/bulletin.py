"""The credit section's 调度通报 to every section, and the escalation notice to a section's head.

Pure: status cells the office has read in (duties/status.py), the rules for task titles; (subject,
plain text) out. Only the one vocabulary's words (vocabulary.py) say where an item stands; every
date and time is Beijing time.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mailbot.dates.period import period_label
from mailbot.dates.zone import bureau_date, bureau_time, zh_date
from mailbot.model import Rules
from mailbot.writing.common import closing, greeting, task_label, task_numbers
from mailbot.writing.reminder import PLAN
from mailbot.writing.vocabulary import STATE_WORDS

if TYPE_CHECKING:   # types only: the office imports this module
    from mailbot.duties.status import Cell

__all__ = ["OnTimeRate", "on_time_rate", "bulletin_text", "escalation_text", "OWED"]

OWED = ("missing", "rejected")                 # still owed once the due date has passed
_ORDER = ("on_time", "late", "rejected", "missing", "not_due")   # not_applicable is never listed
_ALWAYS = ("on_time", "late", "missing")      # the totals name these even at 0
_MANDATE = "区局将加强调度，定期通报科室任务完成情况，并作为年底开展考核的依据"


@dataclass(frozen=True)
class OnTimeRate:
    """The month's on-time rate: items answered on time out of the items due (not_due and
    not_applicable left out; late, rejected and missing count against it)."""
    on_time: int
    due: int

    @property
    def percent(self) -> str:
        return "—" if not self.due else f"{self.on_time * 100 / self.due:.1f}%"


def on_time_rate(cells: Sequence[Cell]) -> OnTimeRate:
    due = [c for c in cells if c.state in ("on_time", "late", "rejected", "missing")]
    return OnTimeRate(sum(1 for c in due if c.state == "on_time"), len(due))


def _due(cell: Cell) -> str:
    return "无固定报送时限" if cell.due is None else f"报送时限{zh_date(bureau_date(cell.due))}"


def _owed_line(rules: Rules, cell: Cell) -> str:
    text = f"{task_label(rules, cell.task)}，{_due(cell)}，{STATE_WORDS[cell.state]}"
    if cell.state == "rejected" and cell.receipt_no:
        text += f"（回执{cell.receipt_no}未通过校验，尚未重新报送）"
    return text


def bulletin_text(rules: Rules, period: str, cells: Sequence[Cell], now: dt.datetime, *,
                  mailbox_name: str = "信用监管科", mailbox_address: str | None = None,
                  unaddressed: Sequence[str] = ()) -> tuple[str, str]:
    """(subject, text) of the 调度通报 of `period` as of `now`: the totals and the on-time rate,
    each section's state per task, who still owes what and by when. `unaddressed`: sections with
    no registered address (the credit section is asked to pass the bulletin on)."""
    now = bureau_time(now)
    label = period_label(period)
    cells = [c for c in cells if c.state != "not_applicable"]
    count = {st: sum(1 for c in cells if c.state == st) for st in _ORDER}
    rate = on_time_rate(cells)
    sections = list(dict.fromkeys(c.section for c in cells))
    subject = f"【调度通报】{label}各科室信用监测材料报送情况"
    lines = [greeting("各科室"), "",
             f"    根据{PLAN}“{_MANDATE}”的要求，现将{label}各科室信用监测材料报送情况通报如下"
             f"（截至{zh_date(now)}）。", "",
             "一、总体情况",
             f"    {len(sections)}个科室{label}应报送{len(cells)}项材料，其中"
             + "，".join(f"{STATE_WORDS[st]}{count[st]}项" for st in _ORDER if count[st] or st in _ALWAYS) + "。",
             f"    按时报送率为{rate.percent}（按时报送{rate.on_time}项／已到报送时限{rate.due}项）。", "",
             "二、各科室报送情况"]
    for section in sections:
        mine = [c for c in cells if c.section == section]
        parts = [f"{STATE_WORDS[st]}：{task_numbers(c.task for c in mine if c.state == st)}"
                 for st in _ORDER if any(c.state == st for c in mine)]
        lines.append(f"  {section}：" + "；".join(parts))
    owed = [c for c in cells if c.state in OWED]
    lines += ["", f"三、尚未报送的材料（{len({c.section for c in owed})}个科室，{len(owed)}项）"]
    if not owed:
        lines.append(f"  无。{label}各科室材料均已报送，感谢各科室的支持与配合。")
    for c in owed:
        lines.append(f"  {c.section}：{_owed_line(rules, c)}")
    lines.append("")
    if owed:
        where = f"{mailbox_name}公务邮箱 {mailbox_address}" if mailbox_address else f"{mailbox_name}公务邮箱"
        lines.append(f"    请尚未报送的科室抓紧补报：按报送模板填写后连同佐证材料发送至{where}，系统收到后即回复回执。")
    lines.append("    逾期报送和未报送情况将作为年底考核的依据。如对通报内容有疑问，请直接回复本邮件"
                 f"或与{mailbox_name}联系。")
    if unaddressed:
        lines.append(f"    （{'、'.join(unaddressed)}未登记邮箱，未能收到本通报，请{mailbox_name}另行转达。）")
    lines += closing(mailbox_name, now.date())
    return subject, "\n".join(lines) + "\n"


def escalation_text(section: str, items: Sequence[tuple[Cell, int]], rules: Rules, now: dt.datetime, *,
                    round_no: int, has_head: bool, reachable: bool = True, mailbox_name: str = "信用监管科",
                    mailbox_address: str | None = None) -> tuple[str, str]:
    """(subject, text) of the weekly escalation notice to `section`'s head (staff and the credit
    section copied): each item still owed with its due date and the working days it is late.
    `round_no`: 1 for the first notice, 2 a week later… `has_head` False: no head's address is
    registered, the notice goes to the section's addresses and asks them to pass it on.
    `reachable` False: the section has no address either, the notice goes to the credit section."""
    if not items:
        raise ValueError("an escalation notice lists at least one item")
    now = bureau_time(now)
    periods = sorted({c.period for c, _ in items})
    label = "、".join(period_label(p) for p in periods)
    n = len(items)
    subject = f"【逾期督办】{section}{label}信用监测材料逾期未报（{n}项）"
    if round_no > 1:
        subject += f"（第{round_no}次）"
    if not reachable:
        head = greeting(mailbox_name)
    else:
        head = f"{section}负责人、{section}：" if has_head else greeting(section)
    lines = [head, "",
             f"    根据{PLAN}，以下{n}项材料已超过报送时限，截至{zh_date(now)}仍未收到"
             f"{section}报送：", ""]
    for i, (c, late) in enumerate(sorted(items, key=lambda x: (x[0].period, x[0].task)), 1):
        lines.append(f"  {i}. {task_label(rules, c.task)}" + (f"，{period_label(c.period)}材料" if len(periods) > 1 else ""))
        lines.append(f"     {_due(c)}，已逾期{late}个工作日；当前状态：{STATE_WORDS[c.state]}"
                     + (f"（回执{c.receipt_no}未通过校验，尚未重新报送）" if c.state == "rejected" and c.receipt_no else ""))
    lines.append("")
    if round_no > 1:
        lines.append(f"    这是第{round_no}次督办通知。")
    lines.append(f"    请科室负责人督促尽快补报。按照实施方案“{_MANDATE}”的要求，逾期未报情况将计入科室任务完成情况。"
                 f"如有特殊情况，请及时与{mailbox_name}沟通说明。")
    where = f"{mailbox_name}公务邮箱 {mailbox_address}" if mailbox_address else f"{mailbox_name}公务邮箱"
    lines.append(f"    报送方式：按报送模板填写后连同佐证材料直接回复本邮件，或发送至{where}。"
                 f"在材料报送或{mailbox_name}对该月结账之前，本通知每周发送一次。")
    if not reachable:
        lines.append(f"    {section}在系统中没有登记邮箱，本通知未能发送给该科室，请{mailbox_name}另行通知。")
    elif not has_head:
        lines.append(f"    {section}负责人的邮箱尚未在系统中登记，本通知发送至科室报送邮箱，请转呈科室负责人。")
    lines.append(f"    本通知同时抄送{mailbox_name}。" if reachable else "")
    while lines[-1] == "":
        lines.pop()
    lines += closing(mailbox_name, now.date())
    return subject, "\n".join(lines) + "\n"
