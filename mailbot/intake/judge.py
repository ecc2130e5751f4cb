"""The rules that judge a message once read: the problems they name, each item's status, the outcome."""
from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from typing import Any

from mailbot.dates import deadlines
from mailbot.dates.period import period_label
from mailbot.intake import classify, filetype
from mailbot.model import Attachment, FileKind, ItemResult, Outcome, Problem, Rules, Verdict
from mailbot.writing import honesty

__all__ = ["ignore", "no_attachment", "without_files", "missing_sheet", "kind_problem", "file_refusal", "not_assigned",
           "earlier_submission", "same_file_other_period", "item_status", "deadline", "skipped", "outcome", "message_problems",
           "attach_template", "TEMPLATE_HELPS"]

# Problems after which the blank template is the most useful thing to send back.
TEMPLATE_HELPS = frozenset({"missing-sheet", "missing-column", "task-unknown", "no-attachment", "empty-sheet",
                            "wrong-file-kind", "task-ambiguous"})


def ignore(reason: str) -> Verdict:
    """Machine mail and strangers' mail get no answer: replying could start a loop or confirm an address."""
    return Verdict(Outcome.IGNORED, reason, None, reply=False)


def no_attachment() -> Problem:
    return Problem("no-attachment", "邮件中未找到附件，本次未能受理任何材料",
                   hint="请将本月报送材料（按附件1模板填报的工作簿及佐证材料）作为附件发送；"
                        "如附件较大，请压缩后发送或分多封邮件发送。")


def without_files(subject: str, decision: classify.SectionDecision, rules: Rules, received: dt.date) -> Verdict:
    """A message with nothing attached: a known section asking for the template gets it, anyone else is
    told nothing arrived (and an unconfirmed sender still waits for a person)."""
    if decision.section and not decision.quarantine and any(w in subject for w in rules.template_requests):
        periods = classify.find_periods(subject, received)
        # one month named is the one asked for; none or several: the month it arrived in
        period = periods[0][0] if len(periods) == 1 else f"{received.year:04d}-{received.month:02d}"
        return Verdict(Outcome.IGNORED, f"template request: blank template for {period} sent back",
                       decision.section, decision.evidence, reply=True, attach_template=True, template_period=period)
    return Verdict(Outcome.QUARANTINED if decision.quarantine else Outcome.REJECTED, "no attachment",
                   decision.section, decision.evidence, problems=(no_attachment(),),
                   attach_template=decision.section is not None)


def missing_sheet(filename: str, sheet_names: Sequence[str], task_no: int, rules: Rules) -> Problem:
    """A workbook classified for a task but without that task's sheet: name what it has instead."""
    task = rules.task(task_no)
    names = "、".join(f"'{n}'" for n in sheet_names) or "无"
    expected = "、".join(f"'{s}'" for s in (task.sheets if task else ()))
    return Problem("missing-sheet",
                   f"工作簿'{filename}'中未找到任务{task_no}的工作表{expected}（现有工作表：{names}）",
                   hint="请使用随信附上的模板填报，保留模板中的工作表名称和表头。")


def kind_problem(kind: FileKind, description: str, filename: str, task_no: int, rules: Rules) -> Problem | None:
    """The file's real kind (sniffed, not its name) is not one the task accepts."""
    task = rules.task(task_no)
    if task is None or kind.value in task.file_kinds:
        return None
    if kind in (FileKind.EXECUTABLE, FileKind.XLSM, FileKind.ENCRYPTED, FileKind.UNKNOWN):
        what = description or "无法识别的文件"
    else:
        what = description or kind.value
    allowed = "、".join(filetype.describe(FileKind(k)) for k in task.file_kinds)
    mism = filetype.mismatch(kind, filename)
    return Problem("wrong-file-kind",
                   f"文件'{filename}'实为{what}" + (f"（{mism}）" if mism else "") + f"，不是任务{task_no}受理的文件类型",
                   hint=f"任务{task_no}受理的文件类型为：{allowed}。")


def file_refusal(kind: FileKind, description: str, filename: str, size: int) -> Problem | None:
    """A file refused for what it is, whatever task it answers: an empty file, a program. Told as
    such, not as a file whose task could not be found."""
    if size == 0:
        return Problem("empty-file", f"文件'{filename}'是空文件（0字节），没有任何内容",
                       hint="附件可能未保存完整或未上传完成；请打开确认文件内容后重新添加附件发送。")
    if kind is FileKind.EXECUTABLE:
        mism = filetype.mismatch(kind, filename)
        return Problem("executable-file",
                       f"文件'{filename}'实为{description or filetype.describe(kind)}" + (f"（{mism}）" if mism else "")
                       + "，可执行程序不予受理",
                       hint="请核实是否误发了文件，发送按模板填报的工作簿或佐证材料（PDF、图片等）。")
    return None


def not_assigned(task_no: int, section: str | None, rules: Rules) -> Problem | None:
    """The plan names the sections responsible for each task; another section's answer is refused."""
    task = rules.task(task_no)
    if not section or section in task.sections:
        return None
    return Problem("task-not-assigned",
                   f"任务{task_no}（{task.title}）的责任单位为{'、'.join(task.sections)}，不含{section}",
                   hint="请确认所报任务；如确需代报，请在邮件正文中说明并由信用监管科确认。")


def earlier_submission(priors: Sequence[Any], period: str | None) -> Any:
    """The submission a file was already accepted in for another period, or None: the oldest (the
    month it first counted for), as the store's duplicate_of points to it. `priors`: the earlier
    submissions of the same file (store.PriorSubmission), oldest first."""
    if not period:
        return None
    return next((p for p in priors or () if p.period != period
                 and getattr(p, "status", "accepted") == "accepted"), None)


def same_file_other_period(filename: str, prev: Any, period: str | None, policy: str = "warn") -> Problem | None:
    """The plan's 严禁弄虚作假: the very same file already accepted for another month never counts
    again. The task's `reused_file` says whether it is still accepted (warn: told, not counted) or
    refused (reject). `prev` is the earlier submission (earlier_submission()) or None."""
    if prev is None or not period or prev.period == period:
        return None
    return honesty.reused_file_problem(filename, prev.period, prev.receipt_no, period, reject=policy == "reject")


def item_status(problems: Sequence[Problem], task: int | None) -> str:
    """Warnings never reject; an error does, and so does a file no task can be found for."""
    return "rejected" if task is None or any(p.is_error for p in problems) else "accepted"


def deadline(task_no: int | None, period: str | None, status: str, received: dt.date,
             rules: Rules) -> tuple[dt.date | None, bool | None]:
    """The monthly deadline the item answers for, and whether it met it (asked only of accepted items)."""
    task = rules.task(task_no) if task_no else None
    due = deadlines.monthly_due(task, period) if task and period else None
    return due, (deadlines.is_on_time(due, received) if status == "accepted" else None)


def skipped(att: Attachment) -> ItemResult:
    """An inline part (a logo, a signature image) is listed but neither accepted nor rejected."""
    return ItemResult(att.filename, FileKind.UNKNOWN, hashlib.sha256(att.content).hexdigest(),
                      None, None, "skipped", origin=att.origin)


def outcome(items: Sequence[ItemResult], decision: classify.SectionDecision) -> tuple[Outcome, str]:
    """The message's outcome from its items; an unconfirmed section overrides all (a person decides)."""
    counted = [i for i in items if i.status != "skipped"]
    accepted = sum(i.status == "accepted" for i in counted)
    if decision.quarantine:
        return Outcome.QUARANTINED, decision.quarantine
    if accepted == len(counted) and counted:
        return Outcome.ACCEPTED, f"{accepted} item(s) accepted"
    if accepted:
        return Outcome.PARTIALLY_ACCEPTED, f"{accepted} of {len(counted)} item(s) accepted"
    return Outcome.REJECTED, f"all {len(counted)} item(s) rejected"


def message_problems(decision: classify.SectionDecision) -> tuple[Problem, ...]:
    """Problems of the message itself: the sender is told when their section awaits a person's word."""
    told = (Problem("section-unconfirmed", decision.quarantine_zh),) if decision.quarantine_zh else ()
    return told + decision.problems


def attach_template(items: Sequence[ItemResult], decision: classify.SectionDecision) -> bool:
    """Send the blank template back when a rejection shows the sender lacks the right form — and only
    to a known section, since the template is made per section."""
    return decision.section is not None and any(
        p.code in TEMPLATE_HELPS for i in items if i.status == "rejected" for p in i.problems)
