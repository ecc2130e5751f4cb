"""The letters mailbot writes to sections: receipt (回执), rejection (退回) and quarantine notice (待确认).

Pure: a Verdict, the incoming message, the receipt number and `now` in; the complete RFC 5322
bytes out, threaded to the sender's message and marked Auto-Submitted (RFC 3834), with a
Message-ID derived from the receipt number so that a resend is recognisably the same mail.
"""
from __future__ import annotations

import datetime as dt
import html
from collections.abc import Sequence
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from mailbot.model import Incoming, ItemResult, Outcome, Problem, Rules, Verdict
from mailbot.intake.screen import BOT_HEADER
from mailbot.dates.period import period_label
from mailbot.dates.zone import zh_date, zh_time

__all__ = ["Letter", "draft_reply", "make_message", "mail_domain", "task_label"]

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


@dataclass(frozen=True)
class Letter:
    kind: str
    recipients: tuple[str, ...]
    subject: str
    message_id: str          # without angle brackets
    raw: bytes


def mail_domain(address: str) -> str:
    return address.rsplit("@", 1)[-1] if "@" in address else "mailbot.invalid"


def task_label(rules: Rules, number: int | None) -> str:
    if number is None:
        return "任务未识别"
    t = rules.task(number)
    return f"任务{number}（{t.title}）" if t else f"任务{number}"


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
    return "，".join(parts)


def _plain_body(verdict: Verdict, incoming: Incoming, receipt_no: str, rules: Rules,
                received_at: dt.datetime, now: dt.datetime, mailbox_name: str) -> str:
    greet = f"{verdict.section}：" if verdict.section else "您好："
    out = [greet, "",
           f"    {mailbox_name}公务邮箱已于{zh_time(received_at)}收到您的邮件《{incoming.subject or '（无主题）'}》，现回复如下。",
           "",
           f"回执编号：{receipt_no}",
           f"受理结果：{_RESULT_ZH[verdict.outcome]}"]
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
    out += ["", "    感谢您的支持与配合！", "",
            f"{mailbox_name}", zh_date(now, weekday=False), "",
            "（本邮件由信用监管科邮件受理系统自动发送。）"]
    return "\n".join(out) + "\n"


def _html_body(plain: str) -> str:
    lines = []
    for line in plain.splitlines():
        esc = html.escape(line)
        if line.startswith(("回执编号", "受理结果")):
            esc = f"<b>{esc}</b>"
        elif line[:2] in ("一、", "二、", "三、"):
            esc = f"<h3 style=\"margin:12px 0 4px\">{esc}</h3>"
            lines.append(esc)
            continue
        lines.append(esc.replace("  ", "&nbsp;&nbsp;") + "<br>")
    return ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"></head>"
            "<body style=\"font-family:'Microsoft YaHei',SimSun,sans-serif;font-size:14px\">"
            + "\n".join(lines) + "</body></html>")


def make_message(*, sender: str, sender_name: str, to: Sequence[str], subject: str, plain: str,
                 message_id: str, now: dt.datetime, in_reply_to: str | None = None,
                 references: Sequence[str] = (), cc: Sequence[str] = (),
                 attachments: Sequence[tuple[str, bytes, str]] = (),
                 auto_submitted: str = "auto-replied") -> bytes:
    """An RFC 5322 message, UTF-8, plain and HTML, with attachments (name, bytes, mime type)."""
    msg = EmailMessage()
    msg["From"] = Address(display_name=sender_name, addr_spec=sender)
    msg["To"] = ", ".join(to)
    if cc:
        msg["Cc"] = ", ".join(cc)
    msg["Subject"] = subject
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = f"<{message_id}>"
    threading_lines = b""
    if in_reply_to:
        # Written by hand: the email policy folds a long id list into RFC 2047 words, which
        # breaks threading; here each id may go on its own folded line, as RFC 5322 allows.
        refs = [r for r in references if r] + ([in_reply_to] if in_reply_to not in references else [])
        threading_lines = (f"In-Reply-To: <{in_reply_to}>\n"
                           f"References: {chr(10).join(' ' * (i > 0) + f'<{r}>' for i, r in enumerate(refs))}\n"
                           ).encode("ascii", "replace")
    msg["Auto-Submitted"] = auto_submitted
    msg["X-Auto-Response-Suppress"] = "All"   # asks Exchange not to answer our answer
    msg[BOT_HEADER] = "1"
    msg.set_content(plain, charset="utf-8")
    msg.add_alternative(_html_body(plain), subtype="html", charset="utf-8")
    for name, data, mime in attachments:
        maintype, _, subtype = mime.partition("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    raw = msg.as_bytes()
    if threading_lines:
        at = raw.index(b"\nAuto-Submitted:") + 1
        raw = raw[:at] + threading_lines + raw[at:]
    return raw


def draft_reply(*, verdict: Verdict, incoming: Incoming, receipt_no: str, rules: Rules,
                mailbox_address: str, mailbox_name: str, received_at: dt.datetime,
                now: dt.datetime, template: tuple[str, bytes] | None = None) -> Letter | None:
    """The reply to a section's message, or None where no reply is due (ignored mail)."""
    if not verdict.reply or (verdict.outcome is Outcome.IGNORED and not verdict.template_period):
        return None
    to = incoming.reply_to[:1] or ((incoming.from_addr,) if incoming.from_addr else ())
    if not to:
        return None
    if verdict.template_period:
        return _template_letter(verdict, incoming, receipt_no, rules, mailbox_address, mailbox_name,
                                now, template, to)
    tag = _SUBJECT_TAG[verdict.outcome]
    subject = f"【{tag}】{receipt_no} {incoming.subject or '（无主题）'}"
    kind = _KIND[verdict.outcome]
    message_id = f"{receipt_no}.{kind}@{mail_domain(mailbox_address)}"
    plain = _plain_body(verdict, incoming, receipt_no, rules, received_at, now, mailbox_name)
    atts = []
    if verdict.attach_template and template:
        atts.append((template[0], template[1], "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))
    raw = make_message(sender=mailbox_address, sender_name=mailbox_name, to=to, subject=subject,
                       plain=plain, message_id=message_id, now=now,
                       in_reply_to=incoming.message_id or None, references=incoming.references,
                       attachments=atts)
    return Letter(kind, tuple(to), subject, message_id, raw)


def _template_letter(verdict: Verdict, incoming: Incoming, receipt_no: str, rules: Rules, mailbox_address: str,
                     mailbox_name: str, now: dt.datetime, template: tuple[str, bytes] | None,
                     to: Sequence[str]) -> Letter:
    """The answer to 索取模板: the section's blank workbook for the month, and what it covers."""
    section, period = verdict.section, verdict.template_period
    tasks = rules.tasks_of(section) if section else ()
    lines = [f"{section}：", "",
             f"    您索取的{period_label(period)}报送模板（附件1 信用状况监测分析报送材料模板）已随本邮件附上，请查收。", "",
             f"    模板包含贵科室负责的{len(tasks)}项重点任务的工作表：" if tasks else ""]
    for t in tasks:
        lines.append(f"      任务{t.number}：{t.title}")
    lines += ["", "    填报说明见模板第一个工作表。请保留工作表名称和表头，填写后直接回复本邮件报送；",
              "    同一科室、同一任务、同一月份重新报送的材料将替代此前的报送。", "",
              "    感谢您的支持与配合！", "", mailbox_name, zh_date(now, weekday=False), "",
              "（本邮件由信用监管科邮件受理系统自动发送。）"]
    subject = f"【模板】{section}{period_label(period)}报送模板"
    message_id = f"{receipt_no}.template@{mail_domain(mailbox_address)}"
    atts = [(template[0], template[1], "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")] if template else []
    raw = make_message(sender=mailbox_address, sender_name=mailbox_name, to=to, subject=subject,
                       plain="\n".join(lines) + "\n", message_id=message_id, now=now,
                       in_reply_to=incoming.message_id or None, references=incoming.references, attachments=atts)
    return Letter("template", tuple(to), subject, message_id, raw)
