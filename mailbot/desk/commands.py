"""The desk by mail: a command mail read into an action and its arguments, and run.

The command is the subject or, when the subject is a reply (Re:/回复:/答复:…), the first non-empty
line of the body. Full-width characters and spaces count as their half-width forms, and a month
may be written 2026-11, 2026年11月 or 202611. `read_command` is pure: it reads, it does not
decide who may do what (pipeline.decide does) nor act (`execute`, through desk/actions.py).
"""
from __future__ import annotations

import datetime as dt
import re
import unicodedata
from typing import TYPE_CHECKING, Any

from mailbot.dates.period import Period
from mailbot.model import Command, Incoming, Rules

if TYPE_CHECKING:
    from mailbot.desk.core import Actor, Answer, Desk

__all__ = ["WORDS", "READ_ONLY", "read_command", "command_line", "execute", "RECEIPT_NO"]

# the command words, in the order the help lists them → the action's id
WORDS: dict[str, str] = {
    "帮助": "help", "查询": "query", "汇总": "package", "催报": "remind", "通报": "bulletin",
    "确认": "confirm", "退回": "reject", "忽略": "ignore", "改判": "reclassify", "节假日": "holidays",
    "结账": "close",
}
# what only reads: asked again, it is answered again (the rest is done once per request)
READ_ONLY = frozenset({"help", "query", "package"})
RECEIPT_NO = re.compile(r"XY\d{8}-\d{5}", re.I)
_REPLY = re.compile(r"^\s*((re|aw|sv)\s*[:：]|回复\s*[:：]|答复\s*[:：]|回覆\s*[:：])", re.I)
# a command word stands alone: "汇总 2026年11月", "查询2026年11月", never "汇总材料" or "通报表扬"
_WORD = re.compile("^(" + "|".join(sorted(map(re.escape, WORDS), key=len, reverse=True)) + r")(?=$|[\s0-9Xx(:,])")
_TASK = re.compile(r"^任务\s*(\d{1,2})$")
_YEAR = re.compile(r"^(\d{4})\s*年?$")


def _normal(text: str) -> str:
    """Full-width to half-width (NFKC), every run of spaces one space, brackets around a word dropped."""
    # format characters (a zero-width space pasted from a chat window) are not there for a reader
    text = "".join(c for c in unicodedata.normalize("NFKC", text or "") if unicodedata.category(c) != "Cf")
    text = re.sub(r"^[【\[]\s*(\S+?)\s*[】\]]", r"\1 ", text.strip())
    return re.sub(r"\s+", " ", text).strip()


def command_line(incoming: Incoming) -> str:
    """Where a command is written: the subject, or under a reply's subject the body's first line."""
    subject = incoming.subject or ""
    if _REPLY.match(subject):
        for line in (incoming.text or "").splitlines():
            if line.strip():
                return line
        return ""
    return subject


def thread_receipts(incoming: Incoming) -> tuple[str, ...]:
    """The receipt numbers of our letters this mail answers (our Message-IDs start with them)."""
    ids = [i for i in (incoming.in_reply_to, *incoming.references) if i]
    found = [m.group(0).upper() for i in ids if (m := RECEIPT_NO.match(i))]
    if not found and _REPLY.match(incoming.subject or ""):
        found = [m.group(0).upper() for m in RECEIPT_NO.finditer(incoming.subject or "")]
    return tuple(dict.fromkeys(found))


def read_command(incoming: Incoming, rules: Rules, today: dt.date) -> Command | None:
    """The command this mail gives, or None when its command line does not start with a command
    word (then it is ordinary mail). A command word with arguments that cannot be read gives a
    Command with `error` set: the answer says why and lists the commands."""
    line = _normal(command_line(incoming))
    m = _WORD.match(line)
    if not m:
        return None
    word = m.group(1)
    rest = line[m.end():].strip(" :：,，")
    name = WORDS[word]
    try:
        args = _ARGS[name](rest, rules, today, incoming)
    except _Malformed as e:
        return Command(name, word, line, {}, str(e))
    return Command(name, word, line, args)


class _Malformed(ValueError):
    """The command's arguments could not be read; the message is Chinese, for the clerk."""


def _period(text: str, word: str) -> str:
    try:
        return str(Period.parse(text))
    except ValueError:
        raise _Malformed(f"“{text}”不是可识别的月份，请写成“{word} 2026年11月”（或 2026-11、202611）") from None


def _optional_period(rest: str, rules: Rules, today: dt.date, incoming: Incoming, word: str) -> dict[str, Any]:
    return {"period": _period(rest, word) if rest else None}


def _required_period(word: str):
    def read(rest: str, rules: Rules, today: dt.date, incoming: Incoming) -> dict[str, Any]:
        if not rest:
            raise _Malformed(f"请写明月份，例如“{word} 2026年11月”")
        return {"period": _period(rest, word)}
    return read


def _receipt(tokens: list[str], incoming: Incoming, word: str) -> str:
    """The receipt number written first, or the one of the letter this mail replies to."""
    if tokens and RECEIPT_NO.fullmatch(tokens[0].split(":")[0]):
        return tokens.pop(0).split(":")[0].upper()
    found = thread_receipts(incoming)
    if len(found) == 1:
        return found[0]
    if not found:
        raise _Malformed(f"请写明回执编号，例如“{word} XY20261203-00005 …”，或直接回复系统发出的待确认通知")
    raise _Malformed(f"本邮件涉及多个回执编号（{'、'.join(found)}），请写明是哪一个")


def _section(text: str, rules: Rules) -> str:
    section = rules.section(text)
    if section is None:
        names = "、".join(s.id for s in rules.sections)
        raise _Malformed(f"“{text}”不是登记的科室名称；可用的科室：{names}")
    return section.id


def _confirm(rest: str, rules: Rules, today: dt.date, incoming: Incoming) -> dict[str, Any]:
    tokens = rest.split()
    receipt = _receipt(tokens, incoming, "确认")
    if len(tokens) != 1:
        raise _Malformed("请写明确认为哪个科室，例如“确认 XY20261203-00005 政策法规科”")
    return {"receipt_no": receipt, "section": _section(tokens[0], rules)}


def _with_reason(word: str):
    def read(rest: str, rules: Rules, today: dt.date, incoming: Incoming) -> dict[str, Any]:
        tokens = rest.split()
        receipt = _receipt(tokens, incoming, word)
        if not tokens:
            raise _Malformed(f"请写明原因，例如“{word} XY20261203-00005 非本局科室来信”")
        return {"receipt_no": receipt, "reason": " ".join(tokens)}
    return read


def _reclassify(rest: str, rules: Rules, today: dt.date, incoming: Incoming) -> dict[str, Any]:
    example = "例如“改判 XY20261203-00005:2 任务8 2026年10月”"
    tokens = rest.replace("：", ":").split()
    head = tokens[0] if tokens else ""
    m = re.fullmatch(r"(XY\d{8}-\d{5})(?::(\d{1,3}))?", head, re.I)
    if m:
        tokens.pop(0)
        receipt, item = m.group(1).upper(), int(m.group(2)) if m.group(2) else None
    else:
        receipt = _receipt(tokens, incoming, "改判")
        item = None
    task = period = None
    for t in tokens:
        if (tm := _TASK.match(t)) is not None:
            task = int(tm.group(1))
            if rules.task(task) is None:
                raise _Malformed(f"没有任务{task}；实施方案共{len(rules.tasks)}项任务")
        else:
            period = _period(t, "改判")
    if task is None and period is None:
        raise _Malformed(f"请写明改为哪项任务和（或）哪个月份，{example}")
    return {"receipt_no": receipt, "item": item, "task": task, "period": period}


def _holidays(rest: str, rules: Rules, today: dt.date, incoming: Incoming) -> dict[str, Any]:
    m = _YEAR.match(rest.split()[0]) if rest else None
    if m is None:
        raise _Malformed("请写明年份，例如“节假日 2027”，并把国务院办公厅的通知全文贴在正文中或作为附件")
    return {"year": int(m.group(1))}


_ARGS = {
    "help": lambda rest, rules, today, incoming: {},
    "query": lambda rest, rules, today, incoming: _optional_period(rest, rules, today, incoming, "查询"),
    "remind": lambda rest, rules, today, incoming: _optional_period(rest, rules, today, incoming, "催报"),
    "package": _required_period("汇总"),
    "bulletin": _required_period("通报"),
    "close": _required_period("结账"),
    "confirm": _confirm,
    "reject": _with_reason("退回"),
    "ignore": _with_reason("忽略"),
    "reclassify": _reclassify,
    "holidays": _holidays,
}


def notice_text(incoming: Incoming, line: str) -> str:
    """The body of a 节假日 mail without its command line: where the notice is pasted."""
    body = incoming.text or ""
    first = body.find(line.strip()) if line.strip() else -1
    return body[first + len(line.strip()):] if first >= 0 and _REPLY.match(incoming.subject or "") else body


def execute(desk: Desk, actor: Actor, command: Command, incoming: Incoming, *, now: dt.datetime,
            ref: str | None = None) -> Answer:
    """Run `command` for `actor` through the desk's actions; a malformed one is answered with why
    and the help."""
    from mailbot.desk import actions
    from mailbot.desk.core import ACTIONS
    if command.error is not None:
        return actions.help(desk, actor, now=now, ref=ref, problem=f"“{command.line}”：{command.error}")
    args = dict(command.args)
    if command.name == "holidays":
        files = [(a.filename, a.content) for a in incoming.attachments if not a.inline]
        return ACTIONS["holidays"](desk, actor, args["year"], notice_text(incoming, command.line),
                                   attachments=files, now=now, ref=ref)
    return ACTIONS[command.name](desk, actor, **args, now=now, ref=ref)
