"""The credit section's own mails: the daily digest, the "all in" notice of a month and the monthly package's letter.

Pure: status cells, submissions and rates the office has read in; (subject, plain text) out.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mailbot.dates.period import period_label
from mailbot.dates.zone import bureau_date, bureau_time, zh_date, zh_month_day
from mailbot.model import Rules
from mailbot.writing.common import closing, greeting, task_label, task_numbers as _tasks
from mailbot.writing.vocabulary import REUSED_WORD

if TYPE_CHECKING:   # types only: the store needs SQLAlchemy, and the office imports this module
    from mailbot.duties.office import PlannedLetter
    from mailbot.duties.status import Cell
    from mailbot.store import StoredSubmission

__all__ = ["digest_text", "completion_text", "package_text"]

_DONE = ("on_time", "late")
_OWED = ("rejected", "reused", "missing", "not_due")     # reused: a file of another month, counted nowhere


def _due_words(cells: Sequence[Cell]) -> str:
    """'11月25日（星期三）截止：任务1、任务2；11月30日（星期一）截止：任务9'."""
    by_due: dict[Any, list[int]] = {}
    for c in cells:
        by_due.setdefault(c.due, []).append(c.task)
    parts = []
    for due in sorted(by_due, key=lambda d: (d is None, str(d))):
        when = "无固定期限" if due is None else f"{zh_month_day(bureau_date(due))}截止"
        parts.append(f"{_tasks(by_due[due])}（{when}）")
    return "；".join(parts)


def _reused_words(cells: Sequence[Cell]) -> str:
    """'；重复材料不计数：任务7': the owed cells whose only answer is a file of another month."""
    reused = [c.task for c in cells if c.state == "reused"]
    return f"；{REUSED_WORD}：{_tasks(reused)}" if reused else ""


def _rejected_not_resent(rules: Rules, subs: Sequence[StoredSubmission]) -> list[StoredSubmission]:
    """Per (section, task): the latest submission, where it was rejected (nothing sent since)."""
    latest: dict[tuple[str, int], StoredSubmission] = {}
    for s in sorted(subs, key=lambda s: (bureau_time(s.received_at), s.id)):
        if s.section is not None:
            latest[(s.section, s.task)] = s
    order = {x.id: i for i, x in enumerate(rules.sections)}
    return sorted((s for s in latest.values() if s.status == "rejected"),
                  key=lambda s: (order.get(s.section, len(order)), s.task))


def digest_text(rules: Rules, parts: Sequence[tuple[str, Sequence[Cell], Sequence[StoredSubmission]]],
                unaddressed: Sequence[PlannedLetter], now: dt.datetime, mailbox_name: str = "信用监管科") -> tuple[str, str]:
    """(subject, text) of the daily digest: per period, who has not submitted, what was rejected
    and not sent again, who has submitted (on time or late); then what could not be sent."""
    now = bureau_time(now)
    order = [s.id for s in rules.sections]
    label = "、".join(period_label(p) for p, _, _ in parts)
    subject = f"【报送日报】{label}信用监测材料报送情况（截至{zh_month_day(now.date(), weekday=False)}）"
    lines = [greeting(mailbox_name), "",
             f"    截至{zh_date(now)}，各科室{label}信用监测材料报送情况如下。", ""]
    for period, cells, subs in parts:
        cells = [c for c in cells if c.state != "not_applicable"]
        done = [c for c in cells if c.state in _DONE]
        owed = [c for c in cells if c.state in _OWED]
        late = [c for c in done if c.state == "late"]
        missing = [c for c in owed if c.state == "missing"]
        if len(parts) > 1:
            lines.append(f"【{period_label(period)}】")
        lines.append(f"    应报{len(cells)}项，已报送{len(done)}项（按时{len(done) - len(late)}项，逾期{len(late)}项），"
                     f"尚未报送{len(owed)}项" + (f"（其中已逾期{len(missing)}项）" if missing else "") + "。")
        lines.append("")
        by_section: dict[str, list[Cell]] = {}
        for c in owed:
            by_section.setdefault(c.section, []).append(c)
        lines.append(f"一、尚未报送（{len(by_section)}个科室，{len(owed)}项）")
        if not by_section:
            lines.append("  无")
        for section in sorted(by_section, key=lambda s: order.index(s) if s in order else len(order)):
            mine = by_section[section]
            overdue = [c for c in mine if c.state == "missing"]
            text = f"  {section}：{_due_words(mine)}"
            if overdue:
                text += f"；已逾期：{_tasks(c.task for c in overdue)}"
            text += _reused_words(mine)
            lines.append(text)
        rejected = _rejected_not_resent(rules, subs)
        lines += ["", f"二、被退回、尚未重新报送（{len(rejected)}项）"]
        if not rejected:
            lines.append("  无")
        current = {(s.section, s.task) for s in subs if s.current}
        for s in rejected:
            errors = [e for e in s.errors or ()]
            first = str(errors[0].get("message", "")) if errors else ""
            more = f"等{len(errors)}处问题" if len(errors) > 1 else ""
            still = "（此前受理的材料仍有效）" if (s.section, s.task) in current else ""
            lines.append(f"  {s.section} {task_label(rules, s.task)}：回执{s.receipt_no}，{zh_month_day(s.received_at, weekday=False)}收到，"
                         f"退回原因：{first}{more}{still}")
        by_done: dict[str, list[Cell]] = {}
        for c in done:
            by_done.setdefault(c.section, []).append(c)
        lines += ["", f"三、已报送（{len(by_done)}个科室，{len(done)}项）"]
        if not by_done:
            lines.append("  无")
        for section in sorted(by_done, key=lambda s: order.index(s) if s in order else len(order)):
            mine = by_done[section]
            all_in = len(mine) == sum(1 for c in cells if c.section == section)
            late_here = [c for c in mine if c.state == "late"]
            text = f"  {section}：{_tasks(c.task for c in mine)}" + ("（全部报送）" if all_in else "")
            if late_here:
                text += f"；其中逾期报送：{_tasks(c.task for c in late_here)}"
            lines.append(text)
        lines.append("")
    if unaddressed:
        lines.append("四、以下科室在配置文件中没有登记邮箱，今日的提醒未能发出，请另行通知：")
        for p in unaddressed:
            what = "报送提醒" if p.kind == "reminder" else "逾期通知"
            items = "；".join(f"任务{r.task}（{period_label(r.period)}，{zh_month_day(bureau_date(r.due))}截止）" for r in p.letter.items)
            lines.append(f"  {p.section}：{what}，{items}")
        lines.append("")
    lines.append("    各科室每项任务的状态可运行 mailbot status --period YYYY-MM 查看。")
    lines += closing(mailbox_name, now, thanks=False)   # the credit section writes to itself: no thanks
    return subject, "\n".join(lines) + "\n"


def completion_text(rules: Rules, period: str, cells: Sequence[Cell], now: dt.datetime,
                    mailbox_name: str = "信用监管科", package_day: dt.date | None = None) -> tuple[str, str]:
    """(subject, text) of the notice that every section has sent `period`'s materials: how many
    late and by whom, and when the package follows."""
    now = bureau_time(now)
    late = [c for c in cells if c.state == "late"]
    sections = list(dict.fromkeys(c.section for c in cells))
    subject = f"【全部报送】{period_label(period)}各科室信用监测材料已全部报送"
    lines = [greeting(mailbox_name), "",
             f"    截至{zh_date(now)}，{len(sections)}个科室承担的{len(cells)}项{period_label(period)}信用监测材料已全部报送并受理："
             f"按时{len(cells) - len(late)}项，逾期{len(late)}项。"]
    if late:
        by: dict[str, list[int]] = {}
        for c in late:
            by.setdefault(c.section, []).append(c.task)
        lines.append("    逾期报送：" + "；".join(f"{s} {_tasks(t)}" for s, t in by.items()) + "。")
    if package_day is not None:
        lines.append(f"    月度汇总将于{zh_date(package_day)}自动生成并发送至本邮箱。")
    lines += closing(mailbox_name, now, thanks=False)   # the credit section writes to itself: no thanks
    return subject, "\n".join(lines) + "\n"


def _rate(value: float | None, num: int, den: int) -> str:
    return "—（无数据）" if value is None else f"{value * 100:.2f}%（{num}/{den}）"


def package_text(rules: Rules, period: str, cells: Sequence[Cell], rates: Any, now: dt.datetime,
                 mailbox_name: str, workbook_name: str, zipped: Path, *, zip_attached: bool, zip_size: int,
                 storage: Path | None = None) -> tuple[str, str]:
    """(subject, text) of the mail carrying the month's package for 区发改局: what is attached (or,
    for a zip too big to attach, where it is kept), who has not sent, the 双公示 rates."""
    now = bureau_time(now)
    cells = [c for c in cells if c.state != "not_applicable"]
    count = {st: sum(1 for c in cells if c.state == st) for st in ("on_time", "late", "missing", "not_due")}
    subject = f"【月度汇总】{period_label(period)}信用状况监测分析报送材料汇总"
    where = zipped.parent
    if storage is not None:
        try:
            where = Path(storage.name) / zipped.parent.relative_to(storage)
        except ValueError:
            pass
    lines = [greeting(mailbox_name), "",
             f"    {period_label(period)}各科室信用状况监测分析报送材料已汇总（截至{zh_date(now)}），请审核后报送区发改局。", "",
             f"    1. {workbook_name}：目录、报送情况、“双公示”指标和各项任务台账（各科室受理的数据合并，首列为报送科室）；"]
    if zip_attached:
        lines.append(f"    2. {zipped.name}：各科室佐证材料，按“科室/任务”分文件夹。")
    else:
        lines.append(f"    2. {zipped.name}：各科室佐证材料（{zip_size / 1048576:.1f} MB，超过邮件附件上限，未随信附上），"
                     f"保存在服务器 {where}/ 目录下。")
    lines += ["", f"    报送情况：应报{len(cells)}项，按时{count['on_time']}项，逾期{count['late']}项，"
                  f"未报送{count['missing']}项" + (f"，未到期{count['not_due']}项" if count["not_due"] else "") + "。"]
    missing: dict[str, list[int]] = {}
    for c in cells:
        if c.state in _OWED:
            missing.setdefault(c.section, []).append(c.task)
    if missing:
        lines.append("    未报送：" + "；".join(f"{s} {_tasks(t)}" for s, t in missing.items()) + "。")
    by_reused: dict[str, list[Cell]] = {}
    for c in cells:
        if c.reused:
            by_reused.setdefault(c.section, []).append(c)
    if by_reused:
        lines.append(f"    {REUSED_WORD}（与以往月份已报送的材料完全相同，不计入报送情况和报送次数）："
                     + "；".join(f"{s} {_tasks(c.task for c in cs)}" for s, cs in by_reused.items()) + "。")
    lines.append(f"    “双公示”：上报率{_rate(rates.report_rate, len(rates.reported_sections), len(rates.responsible_sections))}，"
                 f"合规率{_rate(rates.compliance_rate, rates.rows_compliant, rates.rows_submitted)}，"
                 f"及时率{_rate(rates.timeliness_rate, rates.rows_timely, rates.rows_accepted)}。")
    lines.append(f"    汇总文件同时保存在服务器 {where}/ 目录下。")
    lines += closing(mailbox_name, now, thanks=False)   # the credit section writes to itself: no thanks
    return subject, "\n".join(lines) + "\n"
