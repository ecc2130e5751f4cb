"""Everything the credit section can do at its desk, one function an action.

Each is `action(desk, actor, ..., now)` → Answer, recorded in the audit log by @audited; the mail
commands, the web desk and the CLI call these and nothing else. An action the actor may not do,
or cannot be done as asked, raises Refused with the reason for the person. Only `help` and
`query` are open to a section's own staff (query: its own row only).
"""
from __future__ import annotations

import datetime as dt
import hashlib

from mailbot.dates.period import Period, period_of
from mailbot.dates.zone import bureau_time, zh_time
from mailbot.desk.core import Actor, Answer, Desk, Refused, audited
from mailbot.duties.package import build_status, evidence_zip_filename, package_filename, status_filename
from mailbot.model import Outcome, OutgoingMail
from mailbot.writing.common import XLSX_MIME, ZIP_MIME, task_label
from mailbot.writing.desk import closed_letter, help_lines, matrix_lines, matrix_table, section_lines
from mailbot.writing.vocabulary import OUTCOME_WORDS

__all__ = ["help", "query", "package", "remind", "bulletin", "confirm", "reject", "ignore", "reclassify",
           "close_month", "ATTACH_LIMIT"]

# a package larger than this is not attached: mail servers commonly refuse 20–50 MB
ATTACH_LIMIT = 15 * 1024 * 1024


def _credit_only(actor: Actor, word: str) -> None:
    if not actor.is_credit:
        raise Refused(f"“{word}”仅限信用监管科使用。", f"{actor.address} ({actor.section}) may not {word}")


def _month(period: str | None, now: dt.datetime) -> str:
    return str(Period.parse(period)) if period else period_of(bureau_time(now))


def _chased_month(desk: Desk, period: str, now: dt.datetime, word: str) -> str:
    """A month mail may go out about to every section: not one still to come, and one mailbot
    collected (from `tracking_since`, or with submissions in the store) — a typo such as 2062 or
    2000 must not send an official 通报 or eleven reminders."""
    period = str(Period.parse(period))
    label = Period.parse(period).label
    if Period.parse(period) > Period.parse(period_of(bureau_time(now))):
        raise Refused(f"{label}尚未到来，不能{word}。", f"{period} is still to come")
    if not desk.office.collected(period, desk.office.submissions(period, now, light=True)):
        since = desk.config.tracking_since
        why = f"系统自{Period.parse(since).label}起受理报送" if since else "系统中没有该月的任何报送记录"
        raise Refused(f"{why}，{label}不在系统受理的月份之内，未{word}。请核对月份。",
                      f"{period} was not collected by mailbot")
    return period


@audited("help")
def help(desk: Desk, actor: Actor, *, now: dt.datetime, problem: str | None = None) -> Answer:  # noqa: A001
    """Every command with an example (a section's clerk: its one command); `problem`: why the
    command that brought the help here could not be read."""
    lines = [f"    未能执行：{problem}", ""] if problem else []
    lines += help_lines(desk.rules, period_of(bureau_time(now)), credit=actor.is_credit)
    return Answer("help", problem is None, "malformed command: help sent" if problem else "help sent", "\n".join(lines))


@audited("query")
def query(desk: Desk, actor: Actor, period: str | None = None, *, now: dt.datetime) -> Answer:
    """Where the month stands: for the credit section every section × task (a table and the same
    as a workbook); for a section's staff its own row, what it sent and what it still owes."""
    period = _month(period, now)
    cells = desk.office.status(period, now)
    if actor.is_credit:
        text = "\n".join(matrix_lines(desk.rules, period, cells, bureau_time(now)))
        xlsx = build_status(desk.rules, period, cells, generated_at=bureau_time(now))
        return Answer("query", True, f"matrix of {period} sent ({len(cells)} cells)", text,
                      html=matrix_table(desk.rules, cells),
                      attachments=((status_filename(period), xlsx, XLSX_MIME),),
                      data={"period": period, "cells": [c.as_dict() for c in cells]})
    mine = [c for c in cells if c.section == actor.section]
    sent = [s for s in desk.store.submissions(section=actor.section, period=period, current_only=False)
            if bureau_time(s.received_at) <= bureau_time(now)]
    text = "\n".join(section_lines(desk.rules, actor.section or "", period, cells, sent, bureau_time(now)))
    return Answer("query", True, f"{actor.section}'s row of {period} sent", text,
                  html=matrix_table(desk.rules, [c for c in mine if c.state != "not_applicable"]) if mine else None,
                  data={"period": period, "cells": [c.as_dict() for c in mine]})


@audited("package")
def package(desk: Desk, actor: Actor, period: str, *, now: dt.datetime) -> Answer:
    """The month's package for 区发改局 and its evidence zip, built now and attached."""
    _credit_only(actor, "汇总")
    period = str(Period.parse(period))
    xlsx, zipped, n = desk.office.build(period, now)
    label = Period.parse(period).label
    attachments = [(package_filename(period), xlsx, XLSX_MIME)]
    note = f"    已生成{label}汇总材料（截至{zh_time(now)}），佐证材料{n}份。"
    if len(zipped) <= ATTACH_LIMIT:
        attachments.append((evidence_zip_filename(period), zipped, ZIP_MIME))
        note += "汇总表和佐证材料压缩包见附件。"
    else:
        folder = desk.office.package_dir(period)
        note += (f"佐证材料压缩包{len(zipped) // (1024 * 1024)} MB，超过邮件附件的限度，未随信附上；"
                 f"汇总表见附件，压缩包已保存在服务器 {folder}。")
        desk.office.write(period, folder, now)
    return Answer("package", True, f"package of {period} built: {n} file(s), zip {len(zipped)} bytes", note,
                  attachments=tuple((name, data, mime) for name, data, mime in attachments),
                  data={"period": period, "files": n})


@audited("remind")
def remind(desk: Desk, actor: Actor, period: str | None = None, *, now: dt.datetime, ref: str | None = None) -> Answer:
    """Remind now every section still owing an item of the month."""
    _credit_only(actor, "催报")
    period = _month(period, now)
    if period != period_of(bureau_time(now)):     # the current month may be chased before anything came
        period = _chased_month(desk, period, now, "催报")
    key = f"desk-{_short(ref or now.isoformat())}"
    sent, unaddressed = desk.office.remind_now(period, now, key)
    label = Period.parse(period).label
    lines = []
    for s in sent:
        word = "逾期催报" if s.kind == "overdue" else "报送提醒"
        lines.append(f"      {word}：{s.subject}　→ {'、'.join(s.recipients)}" + ("" if s.created else "（此前已发送）"))
    if unaddressed:
        lines.append(f"      未登记邮箱、无法提醒：{'、'.join(unaddressed)}")
    text = (f"    已向{label}尚有材料未报送的{len(sent)}个科室发送提醒：\n" + "\n".join(lines)) if sent or unaddressed \
        else f"    {label}各科室均无待报送的材料，未发送提醒。"
    return Answer("remind", True, f"{len(sent)} reminder letter(s) for {period}"
                  + (f"; no address for {', '.join(unaddressed)}" if unaddressed else ""), text,
                  data={"period": period, "letters": [s.dedupe_key for s in sent], "unaddressed": unaddressed})


@audited("bulletin")
def bulletin(desk: Desk, actor: Actor, period: str, *, now: dt.datetime, ref: str | None = None) -> Answer:
    """The month's 调度通报 to every section, now."""
    _credit_only(actor, "通报")
    period = _chased_month(desk, period, now, "通报")
    sent = desk.office.bulletin(period, now, key=f"bulletin:{period}:desk-{_short(ref or now.isoformat())}")
    label = Period.parse(period).label
    if not sent:
        return Answer("bulletin", False, f"no bulletin for {period}: no section has an address",
                      f"    未能发送{label}通报：各科室均未登记邮箱。")
    lines = [f"    已发送{label}报送情况通报：" + ("" if all(s.created for s in sent) else "（此前已发送，未重复发送）")]
    for s in sent:
        lines.append(f"      {s.subject}　→ {'、'.join(s.recipients)}")
    return Answer("bulletin", True, f"bulletin of {period} queued to {sum(len(s.recipients) for s in sent)} address(es)",
                  "\n".join(lines), data={"period": period, "letters": [s.dedupe_key for s in sent]})


def _waiting(desk: Desk, receipt_no: str):
    detail = desk.store.message_detail(receipt_no)
    if detail is None:
        raise Refused(f"没有回执编号为{receipt_no}的邮件。", f"no message {receipt_no}")
    return detail


def _still_waiting(desk: Desk, action: str, receipt_no: str):
    """(the stored message, None) while it waits for a person; (it, the answer that it was settled
    before) once it does not: a second 确认/退回/忽略 changes nothing and says so."""
    detail = _waiting(desk, receipt_no)
    if detail.message.outcome == Outcome.QUARANTINED.value:
        return detail.message, None
    return detail.message, Answer(action, True, f"{receipt_no} already settled ({detail.message.outcome})",
                                  _settled(detail))


def _settled(detail) -> str:
    m = detail.message
    return (f"    回执编号{m.receipt_no}的邮件已处理过（{OUTCOME_WORDS.get(m.outcome, m.outcome)}"
            + (f"，{m.section}" if m.section else "") + "），无需再次处理。")




@audited("confirm")
def confirm(desk: Desk, actor: Actor, receipt_no: str, section: str, *, now: dt.datetime) -> Answer:
    """Settle a quarantined message as `section`'s: checked, recorded and answered under its
    receipt number (to the sender the credit section vouched for, the section's addresses in Cc)."""
    from mailbot import pipeline
    _credit_only(actor, "确认")
    if desk.rules.section(section) is None:
        raise Refused(f"“{section}”不是登记的科室。", f"unknown section {section}")
    section = desk.rules.section(section).id
    _, settled = _still_waiting(desk, "confirm", receipt_no)
    if settled is not None:
        return settled
    done = pipeline.confirm(receipt_no, section, intake=desk.intake, store=desk.store, now=now,
                            template_for=desk.template_for)
    words = OUTCOME_WORDS.get(done.outcome, done.outcome)
    reply = done.reply or {}
    text = (f"    已将回执编号{receipt_no}的邮件确认为{section}的报送，校验结果：{words}。"
            + (f"\n    回执已发送至{'、'.join(reply.get('to', []))}" if reply else "")
            + (f"，抄送{'、'.join(reply.get('cc', []))}" if reply.get("cc") else "") + ("。" if reply else ""))
    return Answer("confirm", True, f"{receipt_no} confirmed as {section}: {done.outcome}", text,
                  data={"receipt_no": receipt_no, "section": section, "outcome": done.outcome, "reply": done.reply,
                        "items": list(done.items)})


@audited("reject")
def reject(desk: Desk, actor: Actor, receipt_no: str, reason: str, *, now: dt.datetime) -> Answer:
    """Close a quarantined message with a letter to its sender saying why."""
    _credit_only(actor, "退回")
    m, settled = _still_waiting(desk, "reject", receipt_no)
    if settled is not None:
        return settled

    def letter(no: str) -> list[OutgoingMail]:
        out = closed_letter(to=[m.from_addr], section=None, subject=m.subject, receipt_no=no,
                            received_at=m.received_at, reason=reason, message_id_in=m.message_id,
                            mailbox_address=desk.config.mailbox_address, mailbox_name=desk.config.mailbox_name,
                            now=bureau_time(now))
        return [OutgoingMail(out.kind, out.recipients, out.subject, out.message_id, out.raw)]
    desk.store.settle_waiting(receipt_no, outcome=Outcome.REJECTED, reason=f"returned by {actor.address}: {reason}",
                              outbox=letter, now=now)
    return Answer("reject", True, f"{receipt_no} returned to {m.from_addr}",
                  f"    已退回回执编号{receipt_no}的邮件，并告知发件人{m.from_addr}原因：{reason}。",
                  data={"receipt_no": receipt_no})


@audited("ignore")
def ignore(desk: Desk, actor: Actor, receipt_no: str, reason: str, *, now: dt.datetime) -> Answer:
    """Close a quarantined message without a letter."""
    _credit_only(actor, "忽略")
    m, settled = _still_waiting(desk, "ignore", receipt_no)
    if settled is not None:
        return settled
    desk.store.settle_waiting(receipt_no, outcome=Outcome.IGNORED, reason=f"closed by {actor.address}: {reason}", now=now)
    return Answer("ignore", True, f"{receipt_no} closed without a letter",
                  f"    已关闭回执编号{receipt_no}的邮件（{m.from_addr}），未回复发件人。原因：{reason}。",
                  data={"receipt_no": receipt_no})


@audited("reclassify")
def reclassify(desk: Desk, actor: Actor, receipt_no: str, item: int | None = None, task: int | None = None,
               period: str | None = None, *, now: dt.datetime) -> Answer:
    """Re-file one file of a recorded message under another task and/or month; the section gets a
    corrected receipt (numbered after the message's: XY…-1, -2…)."""
    from mailbot import pipeline
    from mailbot.intake import parse
    from mailbot.writing.receipt import corrected_receipt
    _credit_only(actor, "改判")
    detail = _waiting(desk, receipt_no)
    m = detail.message
    if m.outcome in (Outcome.QUARANTINED.value, Outcome.IGNORED.value, Outcome.COMMAND.value,
                     Outcome.FORWARDED.value) or not m.section:
        raise Refused(f"回执编号{receipt_no}的邮件不是已登记科室的报送（{OUTCOME_WORDS.get(m.outcome, m.outcome)}），"
                      "无法改判；待确认的邮件请先“确认”。", f"{receipt_no} is {m.outcome}: nothing to re-file")
    files = detail.attachments
    if item is None:
        if len(files) != 1:
            raise Refused(f"该邮件有{len(files)}份材料，请写明第几份，例如“改判 {receipt_no}:2 任务8”。",
                          f"{receipt_no} has {len(files)} files: which one?")
        item = 1
    if not 1 <= item <= len(files):
        raise Refused(f"该邮件只有{len(files)}份材料，没有第{item}份。", f"{receipt_no} has no file {item}")
    att = files[item - 1]
    if att.status == "skipped":
        raise Refused(f"第{item}份“{att.filename}”是邮件正文中的插图，不是报送材料，无法改判。",
                      f"{receipt_no}:{item} is an inline image, not a file")
    current = [s for s in detail.submissions if s.attachment_ref == att.id and s.superseded_by is None]
    now_task = current[0].task if current else None
    now_period = current[0].period if current else None
    new_task, new_period = task or now_task, str(Period.parse(period)) if period else now_period
    if new_task is None or new_period is None:
        raise Refused("该材料原先未识别出任务或月份，请同时写明任务和月份，例如"
                      f"“改判 {receipt_no}:{item} 任务8 2026年11月”。", f"{receipt_no}:{item}: task and month needed")
    if (new_task, new_period) == (now_task, now_period):
        return Answer("reclassify", True, f"{receipt_no}:{item} already task {new_task} {new_period}",
                      f"    {receipt_no}第{item}份材料“{att.filename}”已按{task_label(desk.rules, new_task)}、"
                      f"{Period.parse(new_period).label}登记，无需改判。")
    incoming = parse.parse_message(desk.store.read_raw(m.raw_sha256), limits=desk.rules.limits)
    prior = [p for p in desk.store.prior_submissions([att.sha256]) if p.receipt_no != m.receipt_no]
    received = bureau_time(m.received_at)
    try:
        result = pipeline.refile_item(incoming, desk.intake, received, prior, m.section, att.sha256, new_task, new_period)
    except LookupError:
        raise Refused(f"第{item}份“{att.filename}”不是可改判的附件。", f"{receipt_no}:{item}: no such attachment") from None
    corrections = sum(1 for o in detail.outbox if o.kind == "correction")
    number = f"{receipt_no}-{corrections + 1}"
    to = (m.from_addr,)
    cc = tuple(a for a in desk.intake.addresses_of(m.section) if a not in to)

    def letter(no: str, replaced=()) -> list[OutgoingMail]:
        out = corrected_receipt(section=m.section, to=to, cc=cc, number=number, receipt_no=no, subject=m.subject,
                                received_at=received, filename=att.filename, item=result, rules=desk.rules,
                                was=(now_task, now_period), message_id_in=m.message_id,
                                mailbox_address=desk.config.mailbox_address, mailbox_name=desk.config.mailbox_name,
                                now=bureau_time(now))
        return [OutgoingMail(out.kind, out.recipients, out.subject, out.message_id, out.raw)]
    desk.store.refile(receipt_no, att.position, result, outbox=letter, now=now)
    verdict = "已受理" if result.status == "accepted" else "未通过校验，已退回"
    return Answer("reclassify", True, f"{receipt_no}:{item} re-filed as task {new_task} {new_period}: {result.status}; "
                  f"corrected receipt {number}",
                  f"    已将{receipt_no}第{item}份材料“{att.filename}”改按{task_label(desk.rules, new_task)}、"
                  f"{Period.parse(new_period).label}登记，校验结果：{verdict}。\n"
                  f"    更正回执编号{number}，已发送至{'、'.join(to)}" + (f"，抄送{'、'.join(cc)}" if cc else "") + "。",
                  data={"receipt_no": receipt_no, "item": item, "task": new_task, "period": new_period,
                        "status": result.status, "corrected_receipt_no": number})


@audited("close")
def close_month(desk: Desk, actor: Actor, period: str, *, now: dt.datetime) -> Answer:
    """结账: stop chasing what the month still owes."""
    _credit_only(actor, "结账")
    period = str(Period.parse(period))
    label = Period.parse(period).label
    if not desk.store.close_period(period, closed_by=actor.address, now=now):
        at, by = desk.store.closed_periods()[period]
        return Answer("close", True, f"{period} was closed before",
                      f"    {label}已于{zh_time(at)}由{by}结账，无需重复操作。")
    owed = [c for c in desk.office.status(period, now) if c.state in ("missing", "rejected", "reused")]
    return Answer("close", True, f"{period} closed; {len(owed)} item(s) still missing",
                  f"    {label}已结账：不再催办该月尚未报送的材料（{len(owed)}项）。此后收到的该月材料仍会受理并记为逾期报送。",
                  data={"period": period, "missing": len(owed)})


def _short(ref: str) -> str:
    return hashlib.sha256(ref.encode("utf-8")).hexdigest()[:12]

