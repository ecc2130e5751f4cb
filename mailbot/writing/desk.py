"""What the desk writes: the help, the answers to commands, the month's matrix as a table, and the
letters around a person's reply (passed to the credit section; its sender told a person will answer).

Pure: values in, text out. The answer to a command is a letter to whoever sent it; the actions
(desk/actions.py) say what happened in `Answer.text`, and this module puts it in a letter.
"""
from __future__ import annotations

import datetime as dt
import html
from collections.abc import Sequence
from typing import Any

from mailbot.dates.period import Period
from mailbot.dates.zone import zh_date, zh_time
from mailbot.model import Incoming, Rules
from mailbot.writing.common import Letter, TABLE_MARK, closing, greeting, make_message, mail_domain, safe_header, task_label
from mailbot.writing.vocabulary import REUSED_WORD, STATE_MEANINGS, STATE_WORDS

__all__ = ["help_lines", "answer_letter", "matrix_table", "matrix_lines", "section_lines",
           "forward_to_credit", "forward_ack", "closed_letter", "waiting_notice"]

# the colours of the one vocabulary's states in a table (words are always there too)
_COLOURS = {"on_time": "#e2f0d9", "late": "#fff2cc", "rejected": "#f4dcf4", "reused": "#f4dcf4",
            "missing": "#f8cbad", "not_due": "#ddebf7", "not_applicable": "#f2f2f2"}


def help_lines(rules: Rules, period: str, *, credit: bool, receipt: str = "XY20261203-00005") -> list[str]:
    """Every command with an example; a section's clerk is shown the one command it has."""
    label = Period.parse(period).label
    if not credit:
        return [f"    各科室可使用的指令：以“查询 {label}”为主题发送邮件至本邮箱，即可收到本科室该月的报送情况"
                "（已报送、已受理、尚未报送的材料及截止日期）；不写月份时为当月。"]
    section = rules.sections[0].id if rules.sections else "科室名称"
    year = int(period[:4]) + 1
    examples = (
        ("帮助", "列出全部指令及示例"),
        (f"查询 {label}", "该月各科室各项任务的报送情况（附表格）；不写月份时为当月"),
        (f"汇总 {label}", "立即生成该月汇总材料和佐证材料压缩包，随回信附上"),
        (f"催报 {label}", "立即向该月尚有材料未报送的科室发送催报提醒；不写月份时为当月"),
        (f"通报 {label}", "立即向各科室发送该月报送情况通报"),
        (f"确认 {receipt} {section}", "将待确认的邮件确认为该科室的报送，校验后按原回执编号回复"),
        (f"退回 {receipt} 原因", "退回待确认的邮件，并向发件人说明原因"),
        (f"忽略 {receipt} 原因", "关闭待确认的邮件，不回复发件人"),
        (f"改判 {receipt}:2 任务8 {label}", "将该邮件的第2份材料改为任务8、该月份，并向科室发送更正回执"),
        (f"节假日 {year}", f"读取正文或附件中国务院办公厅关于{year}年部分节假日安排的通知，作为该年正式日历"),
        (f"结账 {label}", "结束该月的逾期催办"),
    )
    lines = ["    可用的指令（写在邮件主题中；回复系统邮件时写在正文第一行）："]
    lines += [f"      {i}. {ex}　—　{what}" for i, (ex, what) in enumerate(examples, 1)]
    lines += ["    月份可写作“2026年11月”“2026-11”或“202611”；回复待确认通知时，“确认”“退回”“忽略”后可省略回执编号。"]
    return lines


def answer_letter(*, text: str, ok: bool, line: str, incoming: Incoming, receipt_no: str, to: Sequence[str],
                  name: str | None, mailbox_address: str, mailbox_name: str, now: dt.datetime,
                  table: str | None = None, attachments: Sequence[tuple[str, bytes, str]] = ()) -> Letter:
    """The answer to a command mail: what was done (or why not), threaded under the command."""
    tag = "指令结果" if ok else "指令未执行"
    line = line if len(line) <= 60 else line[:60] + "…"
    subject = safe_header(f"【{tag}】{receipt_no} {line}")
    lines = [greeting(name), "", f"    收到您{zh_time(incoming.date or now)}发出的指令“{line}”（登记编号{receipt_no}）。", "",
             text.rstrip("\n"), *closing(mailbox_name, now, thanks=False)]
    message_id = f"{receipt_no}.command@{mail_domain(mailbox_address)}"
    raw = make_message(sender=mailbox_address, sender_name=mailbox_name, to=list(to), subject=subject,
                       plain="\n".join(lines) + "\n", message_id=message_id, now=now,
                       in_reply_to=incoming.message_id or None, references=incoming.references,
                       attachments=attachments, table=table)
    return Letter("command", tuple(to), subject, message_id, raw)


# ---------------------------------------------------------------- the month's matrix

def _state(cell: Any) -> str:
    return str(getattr(cell.state, "value", cell.state))


def matrix_table(rules: Rules, cells: Sequence[Any]) -> str:
    """The month as an HTML table: sections × tasks, each cell its state's word on its colour."""
    tasks = sorted({c.task for c in cells})
    sections = list(dict.fromkeys(c.section for c in cells))
    at = {(c.section, c.task): c for c in cells}
    th = "border:1px solid #999;padding:3px 6px;background:#d9d9d9"
    td = "border:1px solid #999;padding:3px 6px;text-align:center;white-space:nowrap"
    rows = ["<table style=\"border-collapse:collapse;font-size:13px\">",
            f"<tr><th style=\"{th}\">科室</th>" + "".join(
                f"<th style=\"{th}\" title=\"{html.escape(task_label(rules, t))}\">任务{t}</th>" for t in tasks) + "</tr>"]
    for s in sections:
        cells_html = []
        for t in tasks:
            c = at.get((s, t))
            state = _state(c) if c is not None else "not_applicable"
            word = STATE_WORDS.get(state, state)
            cells_html.append(f"<td style=\"{td};background:{_COLOURS.get(state, '#fff')}\">{html.escape(word)}</td>")
        rows.append(f"<tr><th style=\"{th};text-align:left\">{html.escape(s)}</th>" + "".join(cells_html) + "</tr>")
    rows.append("</table>")
    legend = "；".join(f"{STATE_WORDS[k]}：{STATE_MEANINGS[k]}" for k in STATE_WORDS)
    rows.append(f"<p style=\"font-size:12px;color:#555\">{html.escape(legend)}。</p>")
    return "\n".join(rows)


def _counts(cells: Sequence[Any]) -> str:
    counts: dict[str, int] = {}
    for c in cells:
        counts[_state(c)] = counts.get(_state(c), 0) + 1
    return "，".join(f"{STATE_WORDS[k]}{counts[k]}项" for k in STATE_WORDS if counts.get(k) and k != "not_applicable")


def _due(cell: Any) -> str:
    due = getattr(cell, "due", None)
    if isinstance(due, dt.datetime):
        return zh_time(due)
    return zh_date(due) if isinstance(due, dt.date) else "—"


def matrix_lines(rules: Rules, period: str, cells: Sequence[Any], now: dt.datetime) -> list[str]:
    """The month for the credit section in plain text: the totals, then who still owes what."""
    label = Period.parse(period).label
    counted = [c for c in cells if _state(c) != "not_applicable"]
    lines = [f"    截至{zh_time(now)}，{label}各科室报送情况如下（共{len(counted)}项：{_counts(counted) or '无'}）：", "",
             TABLE_MARK, ""]
    open_ = [c for c in counted if _state(c) in ("missing", "rejected", "reused", "not_due")]
    if open_:
        lines.append("    尚未完成的事项：")
        for c in open_:
            lines.append(f"      {c.section}　{task_label(rules, c.task)}　{STATE_WORDS[_state(c)]}（截止{_due(c)}）")
    else:
        lines.append("    该月各项材料均已报送。")
    lines.append("    附件为同一内容的表格（xlsx），可直接打印。")
    return lines


def section_lines(rules: Rules, section: str, period: str, cells: Sequence[Any], sent: Sequence[Any],
                  now: dt.datetime) -> list[str]:
    """A section's own row: what it sent, what was accepted, what is still missing and by when.
    `sent`: its submissions of the month (store.StoredSubmission), current or not."""
    label = Period.parse(period).label
    mine = [c for c in cells if c.section == section and _state(c) != "not_applicable"]
    lines = [f"    截至{zh_time(now)}，贵科室{label}的报送情况如下：", ""]
    if not mine:
        return lines + ["    实施方案未安排贵科室在该月报送材料。"]
    for c in mine:
        lines.append(f"      {task_label(rules, c.task)}：{STATE_WORDS[_state(c)]}（截止{_due(c)}）")
    if sent:
        lines += ["", "    本月收到贵科室的材料："]
        for s in sorted(sent, key=lambda s: s.received_at):
            result = "已受理" if s.status == "accepted" else "未受理（已退回）"
            if s.status == "accepted" and getattr(s, "superseded_by", None) == s.id:
                result = "经信用监管科改判，改按其他任务或月份登记"
            elif s.status == "accepted" and getattr(s, "superseded_by", None):
                result = "已受理，后被新报送的材料替换"
            elif s.status == "accepted" and getattr(s, "reused_from", None) is not None:
                result = f"已受理，{REUSED_WORD}"
            lines.append(f"      {zh_time(s.received_at)}　回执{s.receipt_no}　任务{s.task}　{result}")
    owed = [c for c in mine if _state(c) in ("missing", "rejected", "reused", "not_due")]
    lines += ["", f"    尚需报送{len(owed)}项；" + ("请在截止日期前报送。" if owed else "该月材料已全部报送，感谢配合。")]
    return lines


# ---------------------------------------------------------------- a person's reply, to a person

def forward_to_credit(*, incoming: Incoming, section: str | None, receipt_no: str, original: str | None,
                      to: Sequence[str], mailbox_address: str, mailbox_name: str, now: dt.datetime,
                      received_at: dt.datetime, credit_section: str) -> Letter:
    """A section's reply to one of our letters, for a person of the credit section to answer."""
    who = f"{section}（{incoming.from_addr}）" if section else f"{incoming.from_addr}（未登记的邮箱）"
    tag = "科室回复" if section else "来信转交"
    subject = safe_header(f"【{tag}】{receipt_no} {who}：{incoming.subject or '（无主题）'}")
    lines = [greeting(credit_section), "",
             f"    {who}于{zh_time(received_at)}回复了系统发出的邮件，内容不含材料附件，需要人工阅处。"
             f"请直接回复本邮件（将发给{incoming.from_addr}），登记编号{receipt_no}。", "",
             "    ——— 回复内容 ———", *(f"    {line}" for line in (incoming.text or "（无正文）").strip().splitlines()[:200])]
    if original:
        lines += ["", "    ——— 系统原邮件 ———", *(f"    > {line}" for line in original.strip().splitlines()[:200])]
    lines += closing(mailbox_name, now, thanks=False)
    message_id = f"{receipt_no}.forward@{mail_domain(mailbox_address)}"
    raw = make_message(sender=mailbox_address, sender_name=mailbox_name, to=list(to), subject=subject,
                       plain="\n".join(lines) + "\n", message_id=message_id, now=now, auto_submitted="auto-generated",
                       reply_to=incoming.from_addr)
    return Letter("forward", tuple(to), subject, message_id, raw)


def forward_ack(*, incoming: Incoming, section: str | None, receipt_no: str, key: str, mailbox_address: str,
                mailbox_name: str, now: dt.datetime, received_at: dt.datetime) -> Letter:
    """The one answer to a person's reply in a thread: a person will read it and answer."""
    subject = safe_header(f"【已转人工】{incoming.subject or '（无主题）'}")
    lines = [greeting(section), "",
             f"    您于{zh_time(received_at)}发来的回复已收到（登记编号{receipt_no}），已转交{mailbox_name}工作人员阅处，"
             "将由工作人员直接答复您。", "    同一主题下的后续回复也会转交，不再另行通知。",
             *closing(mailbox_name, now)]
    message_id = f"{receipt_no}.forwarded.{key}@{mail_domain(mailbox_address)}"
    raw = make_message(sender=mailbox_address, sender_name=mailbox_name, to=[incoming.from_addr], subject=subject,
                       plain="\n".join(lines) + "\n", message_id=message_id, now=now,
                       in_reply_to=incoming.message_id or None, references=incoming.references)
    return Letter("receipt", (incoming.from_addr,), subject, message_id, raw)


def closed_letter(*, to: Sequence[str], section: str | None, subject: str, receipt_no: str, received_at: dt.datetime,
                  reason: str, message_id_in: str | None, mailbox_address: str, mailbox_name: str,
                  now: dt.datetime) -> Letter:
    """The credit section returned a message that waited for it (退回): to its sender, with why."""
    reply_subject = safe_header(f"【退回】{receipt_no} {subject or '（无主题）'}")
    lines = [greeting(section), "",
             f"    您于{zh_time(received_at)}发送的邮件《{subject or '（无主题）'}》（回执编号{receipt_no}）经{mailbox_name}"
             f"人工审核，未予受理。", f"    原因：{reason}", "",
             "    如确属本局科室报送材料，请使用本科室登记的邮箱重新发送；如有疑问，请直接回复本邮件或与"
             f"{mailbox_name}联系。", *closing(mailbox_name, now)]
    message_id = f"{receipt_no}.closed@{mail_domain(mailbox_address)}"
    raw = make_message(sender=mailbox_address, sender_name=mailbox_name, to=list(to), subject=reply_subject,
                       plain="\n".join(lines) + "\n", message_id=message_id, now=now,
                       in_reply_to=message_id_in or None)
    return Letter("rejection", tuple(to), reply_subject, message_id, raw)


def waiting_notice(*, receipt_no: str, from_addr: str, subject: str, received_at: dt.datetime, guess: str | None,
                   problems: Sequence[str], files: Sequence[str], to: Sequence[str], credit_section: str,
                   mailbox_address: str, mailbox_name: str, now: dt.datetime) -> Letter:
    """To the credit section: a message waits for a person, why, and the commands that settle it."""
    example = guess or "科室名称"
    lines = [greeting(credit_section), "",
             f"    {zh_time(received_at)}收到{from_addr}的邮件《{subject or '（无主题）'}》（回执编号{receipt_no}），"
             "需要人工确认后才能处理：", *(f"      {p}" for p in problems)]
    if guess:
        lines.append(f"    系统推测为{guess}的报送。")
    if files:
        lines += ["    附件：" + "、".join(files)]
    lines += ["", "    处理方式：直接回复本邮件，在正文第一行写以下指令之一（也可另发邮件，以指令为主题并写明回执编号）：",
              f"      确认 {example}　—　确认为该科室的报送，校验后按本回执编号回复发件人，并抄送该科室",
              "      退回 原因　—　不予受理，并向发件人说明原因",
              "      忽略 原因　—　不予受理，不回复发件人",
              f"    例如：确认 {example}；或另发主题为“确认 {receipt_no} {example}”的邮件。",
              *closing(mailbox_name, now, thanks=False)]
    reply_subject = safe_header(f"【待确认】{receipt_no} {from_addr}：{subject or '（无主题）'}")
    message_id = f"{receipt_no}.desk@{mail_domain(mailbox_address)}"
    raw = make_message(sender=mailbox_address, sender_name=mailbox_name, to=list(to), subject=reply_subject,
                       plain="\n".join(lines) + "\n", message_id=message_id, now=now, auto_submitted="auto-generated")
    return Letter("quarantine_notice", tuple(to), reply_subject, message_id, raw)
