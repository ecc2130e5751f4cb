"""Decide which section, which of the 11 tasks and which month each file answers for, keeping the evidence.

The order of evidence is the bureau's: the sender's registered address for the section; the
workbook's own sheets before its file name before the subject for the task; the workbook cover
before the subject before the file name before the date of receipt for the month. Every
decision carries the Chinese phrase the receipt prints, so a sender can see a wrong guess and
correct it.
"""
from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mailbot.dates.period import period_label
from mailbot.model import Classification, Evidence, FileKind, Problem, Rules
from mailbot.writing.problems import task_ambiguous

__all__ = [
    "SectionDecision", "decide_section", "suspicious_sender", "find_periods", "period_of_value", "find_tasks",
    "classify_file", "PERIOD_RULE",
]

PERIOD_RULE = "未注明报送月份的，按收件日期所在月份确定"

_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}


def _cn_number(s: str) -> int | None:
    """Arabic or Chinese numerals up to 99 (十一, 二十)."""
    if s.isdigit():
        return int(s)
    if s == "十":
        return 10
    if "十" in s:
        tens, _, ones = s.partition("十")
        t = _CN_DIGITS.get(tens, None) if tens else 1
        o = _CN_DIGITS.get(ones, None) if ones else 0
        return None if t is None or o is None else t * 10 + o
    if len(s) == 1:
        return _CN_DIGITS.get(s)
    return None


def _norm(text: str) -> str:
    return unicodedata.normalize("NFKC", text or "")


# ---------------------------------------------------------------- section

@dataclass(frozen=True)
class SectionDecision:
    section: str | None
    evidence: tuple[Evidence, ...]
    quarantine: str | None = None      # why a person must confirm (English, for the log)
    quarantine_zh: str | None = None   # the same for the sender and the credit section
    problems: tuple[Problem, ...] = ()  # what is suspicious about the sender (never accepted)
    notify: tuple[str, ...] = ()       # sections whose address a suspicious message claims: told by Cc


def suspicious_sender(sender: str, problems: Sequence[Problem], claimed: Sequence[str]) -> SectionDecision:
    """A message whose From is malformed, deceptive or not authenticated: no section is taken from
    it, a person decides, and the sections whose addresses it claims are told."""
    codes = ", ".join(p.code for p in problems)
    who = f"来信显示为{'、'.join(claimed)}的登记地址，但" if claimed else ""
    return SectionDecision(
        None, (),
        quarantine=f"suspicious sender {sender or '(none)'}: {codes}"
                   + (f"; claims the address of {', '.join(claimed)}" if claimed else ""),
        quarantine_zh=f"{who}发件人信息存在异常，本邮件暂不受理，已转信用监管科人工核实",
        problems=tuple(problems), notify=tuple(claimed))


def decide_section(sender: str, registered: str | None, cover_sections: Sequence[str],
                   rules: Rules) -> SectionDecision:
    """Section from the sender's registered address; a cover that names another section, or
    an unregistered sender, leaves it to a person (never silently accepted)."""
    named = []
    for raw in cover_sections:
        s = rules.section(_norm(raw).strip())
        if s and s.id not in named:
            named.append(s.id)
    if registered:
        ev = (Evidence("section", registered, "sender", f"按发件地址{sender}识别为{registered}"),)
        others = [n for n in named if n != registered]
        if others:
            return SectionDecision(
                registered, ev + (Evidence("section", others[0], "cover", f"封面报送科室填写为{others[0]}"),),
                quarantine=f"sender is registered to {registered} but the cover names {others[0]}",
                quarantine_zh=f"发件地址登记为{registered}，但工作簿封面填写的报送科室为{others[0]}，已转信用监管科人工确认")
        return SectionDecision(registered, ev)
    if len(named) == 1:
        return SectionDecision(
            named[0], (Evidence("section", named[0], "cover", f"发件地址{sender}未登记；工作簿封面填写报送科室为{named[0]}"),),
            quarantine=f"unregistered sender {sender}; cover names {named[0]}",
            quarantine_zh=f"发件地址{sender}尚未登记；工作簿封面填写的报送科室为{named[0]}，需信用监管科人工确认")
    why = "封面填写了多个科室" if named else "也未能从工作簿封面识别科室"
    return SectionDecision(
        None, (),
        quarantine=f"unregistered sender {sender}",
        quarantine_zh=f"发件地址{sender}尚未登记，{why}，需信用监管科人工确认")


# ---------------------------------------------------------------- period

_P_FULL = re.compile(r"(?<!\d)(20\d\d)\s*(?:年\s*(\d{1,2})\s*月份?|[-./_](\d{1,2})(?!\d)(?:\s*月份?)?|(\d\d)(?!\d))")
_P_MONTH = re.compile(r"(?<![\d年./_-])(\d{1,2}|十[一二]?|[一二三四五六七八九])\s*月份?(?!\s*\d{1,2}\s*[日号])")
_P_MONTH_DAY = re.compile(r"(?<![\d年./_-])(\d{1,2})\s*月份?(?=\s*\d{1,2}\s*[日号])")


def _valid(year: int, month: int) -> bool:
    return 2000 <= year <= 2099 and 1 <= month <= 12


def _year_for(month: int, today: dt.date) -> int:
    # A month named without a year is the latest such month not far in the future: in January,
    # "12月" means last December.
    return today.year - 1 if month > today.month + 1 else today.year


def find_periods(text: str, today: dt.date) -> list[tuple[str, str]]:
    """Every YYYY-MM the text names (2026年11月, 11月份, 202611, 2026-11, 2026.11), with the words matched."""
    text = _norm(text)
    found: list[tuple[str, str]] = []
    spans: list[tuple[int, int]] = []
    for m in _P_FULL.finditer(text):
        year = int(m.group(1))
        mon = m.group(2) or m.group(3) or m.group(4)
        month = int(mon)
        if _valid(year, month):
            found.append((f"{year:04d}-{month:02d}", m.group(0).strip()))
            spans.append(m.span())
    for pattern in (_P_MONTH, _P_MONTH_DAY):
        for m in pattern.finditer(text):
            if any(a <= m.start() < b for a, b in spans):
                continue
            month = _cn_number(m.group(1))
            if month and 1 <= month <= 12:
                found.append((f"{_year_for(month, today):04d}-{month:02d}", m.group(0).strip()))
                spans.append(m.span())
    # keep first-seen order, drop repeats
    seen, out = set(), []
    for p, w in found:
        if p not in seen:
            seen.add(p)
            out.append((p, w))
    return out


def period_of_value(value: Any, today: dt.date) -> str | None:
    """The month a cover cell names: a date cell, '2026年11月', '2026-11', '202611'."""
    if isinstance(value, (dt.date, dt.datetime)):
        return f"{value.year:04d}-{value.month:02d}"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(int(value))
    if isinstance(value, str):
        ps = find_periods(value, today)
        if len(ps) == 1:
            return ps[0][0]
    return None


# ---------------------------------------------------------------- task

_T_FORMS = (
    re.compile(r"(?:重点)?任务\s*(十[一二]?|[一二三四五六七八九]|\d{1,2})"),
    re.compile(r"第\s*(十[一二]?|[一二三四五六七八九]|\d{1,2})\s*项"),
    re.compile(r"[(（]\s*(十[一二]?|[一二三四五六七八九])\s*[)）]"),
)


def _numbered(text: str, rules: Rules) -> list[tuple[int, str]]:
    """Task numbers the text names by form (任务3, 第三项, (三)), with the words matched."""
    hits = []
    for form in _T_FORMS:
        for m in form.finditer(text):
            n = _cn_number(m.group(1))
            if n and rules.task(n):
                hits.append((n, m.group(0)))
    return hits


def find_tasks(text: str, rules: Rules) -> list[tuple[int, str]]:
    """Task numbers the text names, by form (任务3, 第三项, (三)) or by keyword, with the words matched."""
    text = _norm(text)
    hits = _numbered(text, rules)
    # a section's name may contain a task's keyword (知识产权科 ⊃ 知识产权): take names out first
    names = sorted({n for sec in rules.sections for n in (sec.id, *sec.aliases)}, key=len, reverse=True)
    lowered = text
    for name in names:
        lowered = lowered.replace(_norm(name), " ")
    lowered = lowered.lower()
    for task in rules.tasks:
        for kw in sorted(task.keywords, key=len, reverse=True):
            if _norm(kw).lower() in lowered:
                hits.append((task.number, kw))
                break
    seen, out = set(), []
    for n, w in hits:
        if n not in seen:
            seen.add(n)
            out.append((n, w))
    return out


def _strip_ext(filename: str) -> str:
    return re.sub(r"\.[A-Za-z0-9]{1,5}$", "", filename)


def classify_file(*, filename: str, kind: FileKind, sheet_tasks: Sequence[tuple[int, str]],
                  cover_period: tuple[str, str] | None, subject: str, received: dt.date,
                  rules: Rules, sibling_tasks: Sequence[int] = (), body: str = "") -> list[Classification]:
    """One Classification per task the file answers for.

    sheet_tasks: (task, sheet name) for each template sheet found in a workbook.
    cover_period: (YYYY-MM, cell) from the workbook cover, if it has one.
    sibling_tasks: tasks the other files of the same message were found to answer for, the
    last resort for a photo or document sent beside its workbook.
    body: the message's text, which breaks a tie the file name and subject leave (never more).
    """
    period, p_ev, p_problems = _decide_period(filename, cover_period, subject, received)
    if sheet_tasks:
        by_task: dict[int, list[str]] = {}
        for n, sheet in sheet_tasks:
            by_task.setdefault(n, []).append(sheet)
        return [Classification(n, period, (Evidence("task", str(n), "sheet",
                                                    "按工作表" + "、".join(f"'{s}'" for s in sheets) + f"识别为任务{n}"),) + p_ev,
                               p_problems)
                for n, sheets in sorted(by_task.items())]
    for source, text, label in (("filename", _strip_ext(filename), "文件名"), ("subject", subject, "邮件主题")):
        tasks = find_tasks(text, rules)
        if len(tasks) == 1:
            n, word = tasks[0]
            return [Classification(n, period, (Evidence("task", str(n), source, f"按{label}中的'{word}'识别为任务{n}"),) + p_ev,
                                   p_problems)]
        if len(tasks) > 1 and source == "filename":
            return [_break_tie(filename, tasks, subject, body, rules, period, p_ev, p_problems)]
    siblings = sorted(set(sibling_tasks))
    if len(siblings) == 1:
        n = siblings[0]
        return [Classification(n, period, (Evidence("task", str(n), "message", f"按同一邮件中的工作簿识别为任务{n}"),) + p_ev,
                               p_problems)]
    return [Classification(None, period, p_ev, p_problems + (Problem(
        "task-unknown", f"未能识别文件'{filename}'属于哪一项重点任务",
        hint="请在邮件主题或文件名中注明任务，例如'任务7 诚信宣传活动照片'；工作簿请使用模板中的工作表名称。"),))]


def _break_tie(filename: str, candidates: Sequence[tuple[int, str]], subject: str, body: str, rules: Rules,
               period: str, p_ev: tuple[Evidence, ...], p_problems: tuple[Problem, ...]) -> Classification:
    """A file name naming several tasks: a task number written in it (任务5), then the subject,
    then the body decide among them; still undecided, the sender is told the candidates and how
    to name the file."""
    stem = _strip_ext(filename)
    among = {n for n, _ in candidates}
    named = "、".join(f"任务{n}" for n, _ in candidates)
    for source, found, label in (("filename", _numbered(_norm(stem), rules), "文件名"),
                                 ("subject", find_tasks(subject, rules), "邮件主题"),
                                 ("body", find_tasks(body, rules), "邮件正文")):
        hits = [(n, w) for n, w in found if n in among]
        if len(hits) == 1:
            n, word = hits[0]
            return Classification(n, period, (Evidence(
                "task", str(n), source, f"文件名同时指向{named}，按{label}中的'{word}'识别为任务{n}"),) + p_ev, p_problems)
    return Classification(None, period, p_ev, p_problems + (task_ambiguous(filename, stem, candidates, rules),))


def _decide_period(filename: str, cover_period: tuple[str, str] | None, subject: str,
                   received: dt.date) -> tuple[str, tuple[Evidence, ...], tuple[Problem, ...]]:
    if cover_period:
        p, cell = cover_period
        return p, (Evidence("period", p, "cover", f"按工作簿封面'报送月份'({cell})确定报送月份为{period_label(p)}"),), ()
    for source, text, label in (("subject", subject, "邮件主题"), ("filename", _strip_ext(filename), "文件名")):
        ps = find_periods(text, received)
        if len(ps) == 1:
            p, word = ps[0]
            return p, (Evidence("period", p, source, f"按{label}中的'{word}'确定报送月份为{period_label(p)}"),), ()
    p = f"{received.year:04d}-{received.month:02d}"
    return p, (Evidence("period", p, "received",
                        f"未找到报送月份，按收件日期{received.isoformat()}确定为{period_label(p)}（{PERIOD_RULE}）"),), ()
