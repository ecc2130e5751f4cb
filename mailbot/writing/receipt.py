"""The replies to a section's mail: receipt (回执), rejection (退回) and quarantine notice (待确认).

Pure: a Verdict, the incoming message, the receipt number and `now` in; the complete RFC 5322
bytes out, threaded to the sender's message and marked Auto-Submitted (RFC 3834), with a
Message-ID derived from the receipt number so that a resend is recognisably the same mail.
A request for the blank template (索取模板) is answered by template_letter.py.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from mailbot.dates.period import period_label
from mailbot.dates.zone import bureau_date, bureau_time, zh_date, zh_time
from mailbot.model import Incoming, ItemResult, Outcome, Problem, Replaced, Rules, Verdict
from mailbot.writing.common import (XLSX_MIME, Letter, closing, greeting, mail_domain, make_message, safe_header,
                                    task_label)
from mailbot.writing.honesty import reused_summary
from mailbot.writing.template_letter import template_letter
from mailbot.writing.vocabulary import REUSED_WORD

__all__ = ["draft_reply", "resent_letter", "corrected_receipt"]

_SUBJECT_TAG = {
    Outcome.ACCEPTED: "回执",
    Outcome.PARTIALLY_ACCEPTED: "部分受理",
    Outcome.REJECTED: "退回",
    Outcome.QUARANTINED: "待确认",
}
_RESULT_ZH = {
    Outcome.ACCEPTED: "已受理",
    Outcome.PARTIALLY_ACCEPTED: "部分受理，部分材料需修改后重新报送",
    Outcome.REJECTED: "未受理，请修改后重新报送",
    Outcome.QUARANTINED: "已收到，待信用监管科人工确认后受理",
}
_KIND = {
    Outcome.ACCEPTED: "receipt",
    Outcome.PARTIALLY_ACCEPTED: "receipt",
    Outcome.REJECTED: "rejection",
    Outcome.QUARANTINED: "quarantine_notice",
}


def _problem_lines(problems: Sequence[Problem], indent: str) -> list[str]:
    lines = []
    for i, p in enumerate(problems, 1):
        lines.append(f"{indent}（{i}）{p.message}")
        if p.hint:
            lines.append(f"{indent}     修改建议：{p.hint}")
    return lines


def _item_heading(rules: Rules, item: ItemResult) -> str:
    where = f"（{' > '.join(item.origin)}内）" if item.origin else ""
    parts = [f"《{item.filename}》{where}", task_label(rules, item.task)]
    if item.period:
        parts.append(f"报送月份{period_label(item.period)}")
    if item.status == "accepted" and item.rows:
        parts.append(f"数据{item.rows}行")
    if item.status == "accepted" and item.reused:
        parts.append(REUSED_WORD)
    return "，".join(parts)


def _timing(item: ItemResult, received_at: dt.datetime) -> str | None:
    """On time or late, said plainly for an accepted item with a deadline: the 定期通报 counts it so."""
    if item.status != "accepted" or item.due is None or item.on_time is None or item.reused:
        return None             # a reused file is neither on time nor late: it counts for nothing
    due = item.due.date() if isinstance(item.due, dt.datetime) else item.due
    if item.on_time:
        return f"报送时限：{zh_date(item.due, weekday=False)}前，本次按时报送。"
    if isinstance(item.due, dt.datetime):
        hours = max(1, int((bureau_time(received_at) - bureau_time(item.due)).total_seconds() // 3600))
        by = f"{hours}小时" if hours < 48 else f"{hours // 24}天"
    else:
        by = f"{max(1, (bureau_date(received_at) - due).days)}天"
    return (f"报送时限：{zh_date(item.due, weekday=False)}前；本次于{zh_time(received_at)}收到，"
            f"逾期{by}，记为逾期报送。")


def _plain_body(verdict: Verdict, incoming: Incoming, receipt_no: str, rules: Rules,
                received_at: dt.datetime, now: dt.datetime, mailbox_name: str,
                replaced: Sequence[Replaced] = ()) -> str:
    out = [greeting(verdict.section), "",
           f"    {mailbox_name}公务邮箱已于{zh_time(received_at)}收到您的邮件《{incoming.subject or '（无主题）'}》，现回复如下。",
           "",
           f"回执编号：{receipt_no}",
           f"受理结果：{_RESULT_ZH[verdict.outcome]}"]
    if reused := sum(i.status == "accepted" and i.reused for i in verdict.items):
        out.append(reused_summary(reused))
    evidence = [e.detail for e in verdict.section_evidence]
    if evidence:
        out.append("科室识别：" + "；".join(evidence))
    if verdict.problems:
        out += ["", "需要说明的问题："] + _problem_lines(verdict.problems, "  ")
    accepted = [i for i in verdict.items if i.status == "accepted"]
    rejected = [i for i in verdict.items if i.status == "rejected"]
    skipped = [i for i in verdict.items if i.status == "skipped"]
    n = 0
    ok_title = "经核对无误的材料（待确认科室后受理）" if verdict.outcome is Outcome.QUARANTINED else "已受理的材料"
    for title, group in ((ok_title, accepted), ("需修改后重新报送的材料", rejected)):
        if not group:
            continue
        n += 1
        out += ["", f"{'一二三四'[n - 1]}、{title}（{len(group)}项）"]
        for k, item in enumerate(group, 1):
            out.append(f"  {k}. {_item_heading(rules, item)}")
            if item.evidence:
                out.append("     识别依据：" + "；".join(e.detail for e in item.evidence))
            if (timing := _timing(item, received_at)) is not None:
                out.append(f"     {timing}")
            for r in replaced:
                if item.status == "accepted" and not item.reused and r.task == item.task and r.period == item.period:
                    by = "" if r.from_addr.lower() == (incoming.from_addr or "").lower() else f"（由{r.from_addr}发送）"
                    out.append(f"     本次材料替代{zh_time(r.received_at)}报送的材料{by}，原回执编号{r.receipt_no}。")
            if item.errors:
                out.append(f"     问题（{len(item.errors)}处）：")
                out += _problem_lines(item.errors, "     ")
            if item.warnings:
                out.append(f"     提示（{len(item.warnings)}条，不影响受理）：")
                out += _problem_lines(item.warnings, "     ")
    if skipped:
        out += ["", "未作为报送材料处理的文件：" + "、".join(f"《{i.filename}》" for i in skipped)
                + "（邮件正文中的图片或签名等）"]
    out.append("")
    if verdict.outcome in (Outcome.REJECTED, Outcome.PARTIALLY_ACCEPTED):
        out.append("    请按上述问题逐项修改后，直接回复本邮件重新报送；同一科室、同一任务、同一月份重新报送的材料将替代此前的报送。")
    if verdict.attach_template:
        out.append("    随信附上本科室本月的报送模板（附件1 信用状况监测分析报送材料模板），请按模板填报。")
    if verdict.outcome is Outcome.QUARANTINED:
        out.append("    信用监管科确认后将另行通知受理结果；如发件地址已变更，请告知信用监管科登记。")
    else:
        out.append("    如以上识别结果（科室、任务、月份）有误，请直接回复本邮件说明。")
    # the footer has always named 信用监管科, not the configured mailbox name
    out += closing(mailbox_name, now, system="信用监管科")
    return "\n".join(out) + "\n"


def draft_reply(*, verdict: Verdict, incoming: Incoming, receipt_no: str, rules: Rules,
                mailbox_address: str, mailbox_name: str, received_at: dt.datetime,
                now: dt.datetime, template: tuple[str, bytes] | None = None,
                replaced: Sequence[Replaced] = ()) -> Letter | None:
    """The reply to a section's message, or None where no reply is due (ignored mail). `replaced`:
    the earlier submissions this one replaced (the store knows them once it has recorded it)."""
    if not verdict.reply or (verdict.outcome is Outcome.IGNORED and not verdict.template_period):
        return None
    # decide() chose the addresses (Reply-To only where registered to the same section); never
    # an address the message merely asks for
    to = verdict.recipients or ((incoming.from_addr,) if incoming.from_addr else ())
    cc = tuple(a for a in verdict.copy_to if a not in to)
    if not to:
        return None
    if verdict.template_period:
        return template_letter(verdict, incoming, receipt_no, rules, mailbox_address, mailbox_name,
                               now, template, to)
    tag = _SUBJECT_TAG[verdict.outcome]
    # the sender's subject is repeated: in a form that always encodes (and stores)
    subject = safe_header(f"【{tag}】{receipt_no} {incoming.subject or '（无主题）'}")
    kind = _KIND[verdict.outcome]
    message_id = f"{receipt_no}.{kind}@{mail_domain(mailbox_address)}"
    plain = _plain_body(verdict, incoming, receipt_no, rules, received_at, now, mailbox_name, replaced)
    atts = []
    if verdict.attach_template and template:
        atts.append((template[0], template[1], XLSX_MIME))
    raw = make_message(sender=mailbox_address, sender_name=mailbox_name, to=to, subject=subject,
                       plain=plain, message_id=message_id, now=now,
                       in_reply_to=incoming.message_id or None, references=incoming.references,
                       cc=cc, attachments=atts)
    return Letter(kind, tuple(to) + cc, subject, message_id, raw)


def resent_letter(*, section: str, to: Sequence[str], subject: str, message_id_in: str, references: Sequence[str],
                  receipt_no: str, first_received: dt.datetime, outcome: str, key: str,
                  mailbox_address: str, mailbox_name: str, now: dt.datetime) -> Letter:
    """The short answer to a mail sent again unchanged: it arrived the first time, nothing else is
    needed. A clerk who re-sends is unsure; silence then is the worst answer."""
    result = {"accepted": "已受理", "partially_accepted": "部分受理", "rejected": "未受理（退回通知已于当时发出）",
              "quarantined": "待信用监管科人工确认", "ignored": "已收到"}.get(outcome, "已收到")
    lines = [greeting(section), "",
             f"    您再次发送的邮件《{subject or '（无主题）'}》与{zh_time(first_received)}收到的邮件完全相同，"
             f"该邮件已登记，回执编号{receipt_no}，处理结果：{result}。",
             "    本次无需重复处理，也无需再次发送；如需更正材料，请修改后重新发送。",
             *closing(mailbox_name, now, system="信用监管科")]
    reply_subject = f"【已收到】{receipt_no} {subject or '（无主题）'}"
    message_id = f"{receipt_no}.resent.{key}@{mail_domain(mailbox_address)}"
    raw = make_message(sender=mailbox_address, sender_name=mailbox_name, to=to, subject=reply_subject,
                       plain="\n".join(lines) + "\n", message_id=message_id, now=now,
                       in_reply_to=message_id_in or None, references=references)
    return Letter("receipt", tuple(to), reply_subject, message_id, raw)


def corrected_receipt(*, section: str, to: Sequence[str], cc: Sequence[str], number: str, receipt_no: str,
                      subject: str, received_at: dt.datetime, filename: str, item: ItemResult, rules: Rules,
                      was: tuple[int | None, str | None], message_id_in: str | None, mailbox_address: str,
                      mailbox_name: str, now: dt.datetime) -> Letter:
    """The corrected receipt (更正回执) after the credit section re-filed one file of a message
    under another task or month: what it was, what it is now, and how it checked out there."""
    before = "、".join(x for x in (task_label(rules, was[0]) if was[0] else "", period_label(was[1]) if was[1] else "") if x) \
        or "未识别的任务"
    after = f"{task_label(rules, item.task)}、{period_label(item.period)}" if item.period else task_label(rules, item.task)
    result = "已受理" if item.status == "accepted" else "未受理，请修改后重新报送"
    lines = [greeting(section), "",
             f"    您于{zh_time(received_at)}发送的邮件《{subject or '（无主题）'}》（回执编号{receipt_no}）中的材料"
             f"《{filename}》，原按{before}登记，经信用监管科核对，改按{after}登记。本更正回执编号{number}，"
             "原回执中关于该材料的内容以本回执为准。", "",
             f"受理结果：{result}"]
    if item.errors:
        lines += [f"     问题（{len(item.errors)}处）："] + _problem_lines(item.errors, "     ")
    if item.warnings:
        lines += [f"     提示（{len(item.warnings)}条，不影响受理）："] + _problem_lines(item.warnings, "     ")
    lines += ["", "    如对更正有疑问，请直接回复本邮件。", *closing(mailbox_name, now, system="信用监管科")]
    reply_subject = safe_header(f"【更正回执】{number} {subject or '（无主题）'}")
    message_id = f"{number}.correction@{mail_domain(mailbox_address)}"
    raw = make_message(sender=mailbox_address, sender_name=mailbox_name, to=list(to), cc=list(cc), subject=reply_subject,
                       plain="\n".join(lines) + "\n", message_id=message_id, now=now, in_reply_to=message_id_in or None)
    return Letter("correction", tuple(to) + tuple(cc), reply_subject, message_id, raw)
