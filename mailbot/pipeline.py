"""The intake pipeline, top to bottom: fetch → archive → parse → screen → classify → validate → store → reply.

`process()` is the only function with side effects: it archives the raw bytes first, runs the
pure `decide()`, and records the verdict and the drafted reply in one transaction. A message
that crashes any stage is shunted (kept with its stage and traceback for a person) and ends
quarantined; the caller moves on. Fetching and sending live at the edges (mailbox.py, sender.py).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from mailbot.intake import classify
from mailbot.dates import deadlines
from mailbot.intake import filetype
from mailbot.writing import letters
from mailbot.intake import parse
from mailbot.intake import screen
from mailbot.intake import validate
from mailbot.intake import workbook
from mailbot.failpoints import failpoint
from mailbot.model import (Attachment, Evidence, FileKind, Incoming, ItemResult, Outcome, OutgoingMail, Problem,
                    Rules, Severity, Verdict)
from mailbot.dates.workdays import WorkCalendar
from mailbot.dates.period import period_label
from mailbot.dates.zone import bureau_time

__all__ = ["Intake", "Examined", "decide", "process", "Processed"]

log = logging.getLogger("mailbot.pipeline")

# Problems after which the blank template is the most useful thing to send back.
_TEMPLATE_HELPS = {"missing-sheet", "missing-column", "task-unknown", "no-attachment", "empty-sheet",
                   "wrong-file-kind", "task-ambiguous"}


@dataclass(frozen=True)
class Intake:
    """What decide() needs besides the message: the rules, who is who, the calendar."""
    rules: Rules
    calendar: WorkCalendar
    address_sections: dict[str, str]          # lower-case address -> section id
    own_addresses: frozenset[str]
    mailbox_address: str
    mailbox_name: str = "信用监管科"
    replies_per_sender_per_hour: int | None = 10

    def section_of(self, address: str) -> str | None:
        return self.address_sections.get(address.strip().lower())


@dataclass(frozen=True)
class Examined:
    """One file after sniffing and reading: what it is and what its workbook shows."""
    attachment: Attachment
    sha256: str
    kind: FileKind
    description: str
    workbook: Any = None                      # model.Workbook
    matches: tuple[Any, ...] = ()             # validate.SheetMatch
    cover: dict[str, Any] = field(default_factory=dict)
    problems: tuple[Problem, ...] = ()


# ---------------------------------------------------------------- the pure part

def examine(att: Attachment, rules: Rules) -> Examined:
    """Sniff the real type and, for a workbook, read it and find its template sheets and cover."""
    sha = hashlib.sha256(att.content).hexdigest()
    if att.problems:
        return Examined(att, sha, FileKind.UNKNOWN, "", problems=att.problems)
    kind, desc = filetype.sniff(att.content, att.filename)
    problems: list[Problem] = []
    note = filetype.mismatch(kind, att.filename)
    if kind in (FileKind.XLSM, FileKind.ENCRYPTED):
        # reading them yields the precise refusal (macros, password) with how to fix it
        try:
            workbook.read_workbook(att.content, kind)
        except workbook.WorkbookError as e:
            return Examined(att, sha, kind, desc, problems=(e.problem,))
    if not kind.is_workbook:
        return Examined(att, sha, kind, desc, problems=tuple(problems))
    try:
        wb = workbook.read_workbook(att.content, kind)
    except workbook.WorkbookError as e:
        return Examined(att, sha, kind, desc, problems=(e.problem,))
    if note:
        problems.append(Problem("extension-mismatch", f"文件'{att.filename}'：{note}", Severity.WARNING))
    matches = tuple(validate.match_sheets(wb, rules.sheets))
    cover = validate.read_cover(wb, rules.cover)
    return Examined(att, sha, kind, desc, wb, matches, cover, tuple(problems))


def _looks_like_submission(files: Sequence[Examined], subject: str, rules: Rules) -> bool:
    return any(f.matches or f.cover for f in files) or bool(
        classify.find_tasks(subject, rules) or any(classify.find_tasks(f.attachment.filename, rules) for f in files))


def _cover_value(cover: dict[str, Any], name: str) -> tuple[Any, str] | None:
    v = cover.get(name)
    if v is None:
        return None
    return getattr(v, "value", v), getattr(v, "cell", "")


def _kind_problem(f: Examined, task_no: int, rules: Rules) -> Problem | None:
    task = rules.task(task_no)
    if task is None or f.kind.value in task.file_kinds:
        return None
    if f.kind in (FileKind.EXECUTABLE, FileKind.XLSM, FileKind.ENCRYPTED, FileKind.UNKNOWN):
        what = f.description or "无法识别的文件"
    else:
        what = f.description or f.kind.value
    allowed = "、".join(filetype.describe(FileKind(k)) for k in task.file_kinds)
    mism = filetype.mismatch(f.kind, f.attachment.filename)
    return Problem("wrong-file-kind",
                   f"文件'{f.attachment.filename}'实为{what}" + (f"（{mism}）" if mism else "") +
                   f"，不是任务{task_no}受理的文件类型",
                   hint=f"任务{task_no}受理的文件类型为：{allowed}。")


def _jsonable(v: Any) -> Any:
    if isinstance(v, (dt.date, dt.datetime)):
        return v.isoformat()
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def _validate_task(f: Examined, task_no: int, rules: Rules, calendar: WorkCalendar
                   ) -> tuple[list[Problem], int, dict[str, Any], tuple[str, ...]]:
    """Check the sheets of one task in one workbook: problems, row count, the rows, sheet names."""
    task = rules.task(task_no)
    matches = [m for m in f.matches if m.spec.task == task_no]
    if not matches:
        names = "、".join(f"'{t.name}'" for t in f.workbook.tables) or "无"
        expected = "、".join(f"'{s}'" for s in (task.sheets if task else ()))
        return [Problem("missing-sheet",
                        f"工作簿'{f.attachment.filename}'中未找到任务{task_no}的工作表{expected}（现有工作表：{names}）",
                        hint="请使用随信附上的模板填报，保留模板中的工作表名称和表头。")], 0, {}, ()
    problems: list[Problem] = []
    rows, data, sheets = 0, {}, []
    tables = {t.name: t for t in f.workbook.tables}
    for m in matches:
        report = validate.check_sheet(m, tables[m.table], calendar)
        problems += report.problems
        rows += report.rows
        data[m.table] = [{k: _jsonable(v) for k, v in r.items()} for r in report.data]
        sheets.append(m.table)
    return problems, rows, data, tuple(sheets)


def decide(incoming: Incoming, intake: Intake, received_at: dt.datetime,
           prior: Sequence[Any] = (), section_override: str | None = None) -> Verdict:
    """Everything about one message that needs no I/O: the verdict for it and each of its files.

    `prior` lists earlier submissions of the same files (store.PriorSubmission), for the plan's
    严禁弄虚作假: the same file sent again for another month is flagged.
    """
    rules = intake.rules
    screened = screen.screen(incoming, intake.own_addresses)
    if screened:
        return Verdict(Outcome.IGNORED, f"{screened.code}: {screened.reason}", None, reply=False)

    files = [examine(a, rules) for a in incoming.attachments if not a.inline]
    skipped = [a for a in incoming.attachments if a.inline]
    cover_sections = [str(v[0]) for f in files if (v := _cover_value(f.cover, "报送科室")) and v[0]]
    if section_override:
        # a person of the credit section confirmed it: their word settles the section
        decision = classify.SectionDecision(section_override, (Evidence(
            "section", section_override, "person", f"经信用监管科人工确认为{section_override}"),))
    else:
        decision = classify.decide_section(incoming.from_addr, intake.section_of(incoming.from_addr),
                                           cover_sections, rules)
    if decision.section is None and not _looks_like_submission(files, incoming.subject, rules):
        return Verdict(Outcome.IGNORED, f"unregistered sender {incoming.from_addr or '(none)'}; "
                       "nothing in the message resembles a submission", None, reply=False)

    received = received_at.date()
    if not files and decision.section and not decision.quarantine and any(
            w in incoming.subject for w in rules.template_requests):
        periods = classify.find_periods(incoming.subject, received)
        period = periods[0][0] if len(periods) == 1 else f"{received.year:04d}-{received.month:02d}"
        return Verdict(Outcome.IGNORED, f"template request: blank template for {period} sent back",
                       decision.section, decision.evidence, reply=True, attach_template=True,
                       template_period=period)
    if not files:
        return Verdict(Outcome.REJECTED if not decision.quarantine else Outcome.QUARANTINED,
                       "no attachment", decision.section, decision.evidence,
                       problems=(Problem("no-attachment",
                                         "邮件中未找到附件，本次未能受理任何材料",
                                         hint="请将本月报送材料（按附件1模板填报的工作簿及佐证材料）作为附件发送；"
                                              "如附件较大，请压缩后发送或分多封邮件发送。"),),
                       attach_template=decision.section is not None)

    by_sha = {p.sha256: p for p in prior} if prior else {}
    items: list[ItemResult] = []
    # workbooks first: a photo sent beside its workbook takes the workbook's task
    ordered = sorted(files, key=lambda f: 0 if f.matches else 1)
    sibling_tasks: list[int] = []
    for f in ordered:
        att = f.attachment
        cover_p = None
        if (cv := _cover_value(f.cover, "报送月份")) and (p := classify.period_of_value(cv[0], received)):
            cover_p = (p, cv[1])
        classes = classify.classify_file(
            filename=att.filename, kind=f.kind,
            sheet_tasks=[(m.spec.task, m.table) for m in f.matches],
            cover_period=cover_p, subject=incoming.subject, received=received, rules=rules,
            sibling_tasks=sibling_tasks)
        for c in classes:
            problems = list(f.problems) + list(c.problems)
            rows, data, sheets = 0, {}, ()
            if c.task is not None:
                if f.matches:
                    sibling_tasks.append(c.task)
                if (kp := _kind_problem(f, c.task, rules)) and not f.problems:
                    problems.append(kp)
                elif f.workbook is not None and not any(p.is_error for p in f.problems):
                    more, rows, data, sheets = _validate_task(f, c.task, rules, intake.calendar)
                    problems += more
                if decision.section and decision.section not in rules.task(c.task).sections:
                    owners = "、".join(rules.task(c.task).sections)
                    problems.append(Problem(
                        "task-not-assigned",
                        f"任务{c.task}（{rules.task(c.task).title}）的责任单位为{owners}，不含{decision.section}",
                        hint="请确认所报任务；如确需代报，请在邮件正文中说明并由信用监管科确认。"))
            if (prev := by_sha.get(f.sha256)) and c.period and prev.period != c.period:
                problems.append(Problem(
                    "same-file-other-period",
                    f"文件'{att.filename}'与{period_label(prev.period)}已报送的材料（回执编号{prev.receipt_no}）完全相同",
                    Severity.WARNING,
                    hint="请核实是否误发了往月材料；各科室对所报数据、材料的真实性负责，严禁弄虚作假。"))
            task = rules.task(c.task) if c.task else None
            due = deadlines.monthly_due(task, c.period) if task and c.period else None
            status = "rejected" if any(p.is_error for p in problems) or c.task is None else "accepted"
            items.append(ItemResult(
                filename=att.filename, kind=f.kind, sha256=f.sha256, task=c.task, period=c.period,
                status=status, problems=tuple(problems), evidence=c.evidence, rows=rows, sheets=sheets,
                origin=att.origin, data=data, due=due,
                on_time=deadlines.is_on_time(due, received) if status == "accepted" else None))
    for a in skipped:
        items.append(ItemResult(a.filename, FileKind.UNKNOWN, hashlib.sha256(a.content).hexdigest(),
                                None, None, "skipped", origin=a.origin))

    counted = [i for i in items if i.status != "skipped"]
    accepted = sum(i.status == "accepted" for i in counted)
    if decision.quarantine:
        outcome, reason = Outcome.QUARANTINED, decision.quarantine
    elif accepted == len(counted) and counted:
        outcome, reason = Outcome.ACCEPTED, f"{accepted} item(s) accepted"
    elif accepted:
        outcome, reason = Outcome.PARTIALLY_ACCEPTED, f"{accepted} of {len(counted)} item(s) accepted"
    else:
        outcome, reason = Outcome.REJECTED, f"all {len(counted)} item(s) rejected"
    problems = ()
    if decision.quarantine_zh:
        problems = (Problem("section-unconfirmed", decision.quarantine_zh),)
    attach = decision.section is not None and any(
        p.code in _TEMPLATE_HELPS for i in counted if i.status == "rejected" for p in i.problems)
    return Verdict(outcome, reason, decision.section, decision.evidence, tuple(items), problems,
                   attach_template=attach)


# ---------------------------------------------------------------- the part with side effects

@dataclass(frozen=True)
class Processed:
    """What happened to one message, for the CLI and the daemon's log."""
    message_id: str
    raw_sha256: str
    outcome: str
    reason: str
    section: str | None
    receipt_no: str | None
    items: tuple[dict[str, Any], ...]
    reply: dict[str, Any] | None
    duplicate: bool = False
    crashed_at: str | None = None     # the stage that raised: shunted for a person, not decided

    def as_dict(self) -> dict[str, Any]:
        return {"message_id": self.message_id, "outcome": self.outcome, "section": self.section,
                "reason": self.reason, "receipt_no": self.receipt_no, "items": list(self.items),
                "reply": self.reply, "duplicate": self.duplicate}


def _reply_drafter(verdict: Verdict, incoming: Incoming, intake: Intake, received_at: dt.datetime,
                   now: dt.datetime, template_for: Any, drafted: dict[str, Any]):
    """The outbox callable store.record runs inside its transaction, once the receipt number exists;
    `drafted` receives the reply's address and subject for the caller's report."""
    template = None
    if verdict.attach_template and verdict.section and template_for is not None:
        template = template_for(verdict.section, _period_for_template(verdict, received_at.date()))

    def outbox(receipt_no: str) -> list[Any]:
        letter = letters.draft_reply(verdict=verdict, incoming=incoming, receipt_no=receipt_no, rules=intake.rules,
                                     mailbox_address=intake.mailbox_address, mailbox_name=intake.mailbox_name,
                                     received_at=received_at, now=now, template=template)
        if letter is None:
            return []
        drafted["reply"] = {"to": list(letter.recipients), "subject": letter.subject, "message_id": letter.message_id}
        return [OutgoingMail(kind=letter.kind, recipients=letter.recipients, subject=letter.subject,
                             mail_message_id=letter.message_id, raw=letter.raw)]
    return outbox


def _apply_reply_cap(verdict: Verdict, incoming: Incoming, intake: Intake, store: Any, now: dt.datetime) -> Verdict:
    """Draft no reply once an address has had its hourly share: a misbehaving auto-responder
    must not start a loop. The message is still recorded; only the answer is withheld."""
    cap = intake.replies_per_sender_per_hour
    if not verdict.reply or verdict.outcome is Outcome.IGNORED or cap is None:
        return verdict
    to = (incoming.reply_to[:1] or (incoming.from_addr,))[0]
    if to and store.auto_replies_since(to, now - dt.timedelta(hours=1)) >= cap:
        return replace(verdict, reply=False,
                       reason=f"{verdict.reason}; no reply: {to} already had {cap} automatic replies this hour")
    return verdict


def _period_for_template(verdict: Verdict, received: dt.date) -> str:
    if verdict.template_period:
        return verdict.template_period
    for i in verdict.items:
        if i.period:
            return i.period
    return f"{received.year:04d}-{received.month:02d}"


def process(raw: bytes, *, intake: Intake, store: Any, source: str, received_at: dt.datetime,
            now: dt.datetime, template_for: Any = None) -> Processed:
    """Archive, decide, record and draft the reply for one raw message; never raises for bad mail.

    template_for(section, period) -> (filename, bytes) supplies the blank template attached to
    rejections where it helps.
    """
    sha = store.archive_raw(raw)                     # nothing happens before the bytes are safe
    failpoint("after-archive")
    stage = "parse"
    incoming: Incoming | None = None
    try:
        incoming = parse.parse_message(raw, limits=intake.rules.limits)
        failpoint("after-parse")
        stage = "lookup"
        existing = store.find_message(incoming.message_id, sha)
        if existing is not None:
            return Processed(incoming.message_id, sha, existing.outcome, "already processed: " + (existing.reason or ""),
                             existing.section, existing.receipt_no, (), None, duplicate=True)
        prior = store.prior_submissions(hashlib.sha256(a.content).hexdigest() for a in incoming.attachments)
        stage = "decide"
        verdict = decide(incoming, intake, received_at, prior)
        verdict = _apply_reply_cap(verdict, incoming, intake, store, now)
        stage = "reply"
        drafted: dict[str, Any] = {}
        outbox = _reply_drafter(verdict, incoming, intake, received_at, now, template_for, drafted)
        stage = "store"
        failpoint("before-record")
        result = store.record(incoming=incoming, raw_sha256=sha, received_at=received_at, source=source,
                              verdict=verdict, outbox=outbox, now=now)
    except Exception as e:  # noqa: BLE001 - a crash on one message must never stop the intake
        tb = traceback.format_exc()
        log.error("message %s crashed at stage %s: %s", sha[:12], stage, e)
        store.record_failure(sha, source, stage, f"{type(e).__name__}: {e}", tb)
        mid = incoming.message_id if incoming else ""
        return Processed(mid, sha, Outcome.QUARANTINED.value, f"internal error at stage {stage}: {type(e).__name__}: {e}",
                         None, None, (), None, crashed_at=stage)
    items = _item_dicts(verdict)
    return Processed(incoming.message_id, sha, verdict.outcome.value, verdict.reason, verdict.section,
                     getattr(result, "receipt_no", None), items, drafted.get("reply"),
                     duplicate=bool(getattr(result, "duplicate", False)))


def confirm(ref: int | str, section: str, *, intake: Intake, store: Any, now: dt.datetime,
            template_for: Any = None) -> Processed:
    """The credit section confirms a quarantined message's section: decide it again with that
    section, record the verdict on the same message (same receipt number) and queue the reply.
    Raises LookupError / ValueError for an unknown or not-quarantined message."""
    detail = store.message_detail(ref)
    if detail is None:
        raise LookupError(f"no message {ref!r}")
    stored = detail.message
    incoming = parse.parse_message(store.read_raw(stored.raw_sha256), limits=intake.rules.limits)
    prior = [p for p in store.prior_submissions(hashlib.sha256(a.content).hexdigest() for a in incoming.attachments)
             if p.receipt_no != stored.receipt_no]
    received_at = bureau_time(stored.received_at)   # stored in UTC; dates are the bureau's dates
    verdict = decide(incoming, intake, received_at, prior, section_override=section)
    drafted: dict[str, Any] = {}
    outbox = _reply_drafter(verdict, incoming, intake, received_at, now, template_for, drafted)
    result = store.confirm_quarantined(stored.id, verdict=verdict, outbox=outbox, now=now)
    return Processed(incoming.message_id, stored.raw_sha256, verdict.outcome.value, verdict.reason, verdict.section,
                     result.receipt_no, _item_dicts(verdict), drafted.get("reply"))


def _item_dicts(verdict: Verdict) -> tuple[dict[str, Any], ...]:
    return tuple({"filename": i.filename, "task": i.task, "period": i.period, "status": i.status,
                  "kind": i.kind.value, "rows": i.rows,
                  "errors": [p.message for p in i.errors], "warnings": [p.message for p in i.warnings],
                  "error_codes": [p.code for p in i.errors], "warning_codes": [p.code for p in i.warnings]}
                 for i in verdict.items)


def to_json(p: Processed, file: str | None = None) -> str:
    d = {"file": file, **p.as_dict()}
    return json.dumps(d, ensure_ascii=False)
