"""The answer to a request for the blank template (索取模板): the section's workbook for the month, attached."""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from mailbot.dates.period import period_label
from mailbot.model import Incoming, Rules, Verdict
from mailbot.writing.common import XLSX_MIME, Letter, closing, greeting, mail_domain, make_message

__all__ = ["template_letter"]


def template_letter(verdict: Verdict, incoming: Incoming, receipt_no: str, rules: Rules, mailbox_address: str,
                    mailbox_name: str, now: dt.datetime, template: tuple[str, bytes] | None,
                    to: Sequence[str]) -> Letter:
    """The answer to 索取模板: the section's blank workbook for the month, and what it covers."""
    section, period = verdict.section, verdict.template_period
    tasks = rules.tasks_of(section) if section else ()
    lines = [greeting(section), "",
             f"    您索取的{period_label(period)}报送模板（附件1 信用状况监测分析报送材料模板）已随本邮件附上，请查收。", "",
             f"    模板包含贵科室负责的{len(tasks)}项重点任务的工作表：" if tasks else ""]
    for t in tasks:
        lines.append(f"      任务{t.number}：{t.title}")
    lines += ["", "    填报说明见模板第一个工作表。请保留工作表名称和表头，填写后直接回复本邮件报送；",
              "    同一科室、同一任务、同一月份重新报送的材料将替代此前的报送。"]
    # the footer has always named 信用监管科, as the receipts' does
    lines += closing(mailbox_name, now, system="信用监管科")
    subject = f"【模板】{section}{period_label(period)}报送模板"
    message_id = f"{receipt_no}.template@{mail_domain(mailbox_address)}"
    atts = [(template[0], template[1], XLSX_MIME)] if template else []
    raw = make_message(sender=mailbox_address, sender_name=mailbox_name, to=to, subject=subject,
                       plain="\n".join(lines) + "\n", message_id=message_id, now=now,
                       in_reply_to=incoming.message_id or None, references=incoming.references, attachments=atts)
    return Letter("template", tuple(to), subject, message_id, raw)
