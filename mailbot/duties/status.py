"""Where every section stands: the status matrix of a month, its terminal table, the year's score.

Pure: rules, submissions (as store.submissions returns them: StoredSubmission, or anything
with the same attributes) and `today` in; values out. Nothing here reads the clock or the
database.

A cell's state, for one (section, task, period):

- not_applicable  the section does not answer for the task (rules/tasks.yaml `sections`);
- not_due         no current accepted submission, and the due date has not passed yet;
- rejected        no current accepted submission, but the section did send one that was
                  rejected: it is waiting for the corrected file (已退回待重报); the year's score
                  counts it as missing once the due date has passed;
- missing         no submission at all once the due date has passed; also a per-month count
                  rule not met once the month is over (信用动态 "每月不少于1篇": a ledger with no item);
- on_time / late  the section's FIRST accepted submission for the key (a later correction
                  that supersedes it does not make an on-time answer late) received, by its
                  Beijing date, on or before / after the due date;
- reused          the only current accepted answer is a file already accepted for another
                  period (严禁弄虚作假, store: reused_from): it counts for nothing (重复材料不计数);
                  the year's score counts it as missing once the due date has passed.

A file already accepted for another period never counts, wherever it stands: not as the
answer that makes a cell on time or late, not as an item toward a count rule (≥1 a month,
≥2 a year). A cell lists such files (`Cell.reused`) so that every table marks them.

The due date of a cell is the task's monthly deadline (deadlines.deadlines_for_period, plain
calendar date unless the rules shift it); a task with no monthly rule falls back on its
per-month count's month end; a task with neither (only event or asap rules) is never missing.

How many items a period's answer reports (for count rules): the data rows of its ledger
workbook(s); where the answer has no ledger (documents, photos), each document file counts
one, and photos alone count one.
"""
from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from mailbot.dates.deadlines import Due, deadlines_for_period, is_on_time, is_past
from mailbot.model import Rules
from mailbot.dates.workdays import WorkCalendar
from mailbot.dates.zone import bureau_date, bureau_time, iso
from mailbot.dates.period import Period, parse_period
from mailbot.dates.period import month_label
from mailbot.dates.zone import zh_date
from mailbot.writing.honesty import reused_origin
from mailbot.writing.vocabulary import REUSED_WORD, STATE_MEANINGS, STATE_WORDS

__all__ = ["STATES", "Cell", "Reused", "ScoreRow", "status_matrix", "render_table", "year_score",
           "items_reported", "yearly_counts", "SYMBOLS"]

STATES = ("on_time", "late", "rejected", "reused", "missing", "not_due", "not_applicable")
SYMBOLS = STATE_WORDS                 # the terminal says what the letters and workbooks say
_COLORS = {"on_time": "\x1b[32m", "late": "\x1b[33m", "rejected": "\x1b[35m", "reused": "\x1b[1;35m",
           "missing": "\x1b[1;31m",
           "not_due": "\x1b[36m", "not_applicable": "\x1b[2m"}
_RESET = "\x1b[0m"
_IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".heic", ".webp")


class SubmissionLike(Protocol):
    id: int
    message_ref: int
    receipt_no: str
    filename: str
    section: str | None
    task: int
    period: str
    status: str
    rows: int
    sheets: tuple[str, ...]
    received_at: dt.datetime
    superseded_by: int | None


@dataclass(frozen=True)
class Reused:
    """A current accepted file of a cell that was already accepted for another period."""
    filename: str
    receipt_no: str
    earlier_period: str
    earlier_receipt_no: str

    def as_dict(self) -> dict[str, Any]:
        return {"filename": self.filename, "receipt_no": self.receipt_no,
                "earlier_period": self.earlier_period, "earlier_receipt_no": self.earlier_receipt_no}


@dataclass(frozen=True)
class Cell:
    section: str
    task: int
    period: str
    state: str
    submitted_at: dt.datetime | None = None   # the deciding (first accepted) submission, +08:00
    receipt_no: str | None = None
    due: dt.date | dt.datetime | None = None
    count: int | None = None                  # per-month count rules: items reported so far
    required: int | None = None               # ... and how many the plan asks for
    reused: tuple[Reused, ...] = ()           # current files not counted (重复材料不计数)

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"section": self.section, "task": self.task, "period": self.period,
                             "state": self.state, "submitted_at": iso(self.submitted_at),
                             "receipt_no": self.receipt_no, "due": iso(self.due)}
        if self.required is not None:
            d.update(count=self.count, required=self.required)
        if self.reused:
            d["reused"] = [r.as_dict() for r in self.reused]
        return d


@dataclass(frozen=True)
class ScoreRow:
    """One section's record on one task over a year, for the year-end assessment.

    due = on_time + late + missing (periods whose deadline has passed, or answered early);
    rejected_first_time: periods whose first message for the task was rejected outright;
    count/required: a per-year count rule (诚信宣传 at least 2 a year): items reported in the year;
    reused: files of the year's answers already accepted for another period, counted nowhere."""
    section: str
    task: int
    due: int
    on_time: int
    late: int
    missing: int
    rejected_first_time: int
    not_due: int = 0
    count: int | None = None
    required: int | None = None
    reused: int = 0

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {k: getattr(self, k) for k in (
            "section", "task", "due", "on_time", "late", "missing", "rejected_first_time", "not_due", "reused")}
        if self.required is not None:
            d.update(count=self.count, required=self.required)
        return d


# ---------------------------------------------------------------- the matrix

def _order(s: SubmissionLike) -> tuple[dt.datetime, int]:
    return bureau_time(s.received_at), s.id


def items_reported(current: Sequence[SubmissionLike]) -> int:
    """How many items (篇, 次) the current accepted answer for one key reports (module docstring)."""
    ledgers = [s for s in current if s.sheets]
    if ledgers:
        return sum(s.rows for s in ledgers)
    docs = [s for s in current if not (s.filename or "").lower().endswith(_IMAGE_EXTS)]
    return len(docs) if docs else (1 if current else 0)


def _current(accepted: Sequence[SubmissionLike]) -> list[SubmissionLike]:
    """The accepted submissions not superseded by one among them: as things stood on `today`
    when later submissions have been left out (a superseding answer not yet received)."""
    ids = {s.id for s in accepted}
    return [s for s in accepted if s.superseded_by is None or s.superseded_by not in ids]


def _is_reused(s: SubmissionLike) -> bool:
    return getattr(s, "reused_from", None) is not None


def _counted(subs: Sequence[SubmissionLike]) -> tuple[list[SubmissionLike], list[SubmissionLike]]:
    """A key's accepted submissions that count (first one first) and its current ones that count:
    a file already accepted for another period is in neither."""
    accepted = [s for s in subs if s.status == "accepted"]
    return [s for s in accepted if not _is_reused(s)], [s for s in _current(accepted) if not _is_reused(s)]


def _reused(subs: Sequence[SubmissionLike]) -> tuple[Reused, ...]:
    current = _current([s for s in subs if s.status == "accepted"])
    return tuple(Reused(s.filename, s.receipt_no, s.reused_from.period, s.reused_from.receipt_no)
                 for s in current if _is_reused(s))


def _group(submissions: Iterable[SubmissionLike], period: str) -> dict[tuple[str, int], list[SubmissionLike]]:
    by: dict[tuple[str, int], list[SubmissionLike]] = {}
    for s in submissions:
        if s.period == period and s.section is not None:
            by.setdefault((s.section, s.task), []).append(s)
    for subs in by.values():
        subs.sort(key=_order)
    return by


def _cell(section: str, task: int, period: str, dues: Sequence[Due], subs: Sequence[SubmissionLike],
          today: dt.date) -> Cell:
    monthly = next((d for d in dues if d.kind == "monthly"), None)
    count_rule = next((d for d in dues if d.kind == "count" and d.per == "month"), None)
    due = monthly.due if monthly else (count_rule.due if count_rule else None)
    accepted, current = _counted(subs)
    reused = _reused(subs)
    count = items_reported(current) if count_rule else None
    required = count_rule.at_least if count_rule else None
    if not current:
        if reused:
            return Cell(section, task, period, "reused", None, reused[-1].receipt_no, due, count, required, reused)
        if any(s.status == "rejected" for s in subs):
            return Cell(section, task, period, "rejected", None, subs[-1].receipt_no, due, count, required)
        state = "missing" if due is not None and is_past(due, today) else "not_due"
        return Cell(section, task, period, state, None, None, due, count, required)
    first = accepted[0]
    state = "on_time" if due is None or is_on_time(due, first.received_at) else "late"
    if count_rule and count < (count_rule.at_least or 0) and is_past(count_rule.due, today):
        state = "missing"
    return Cell(section, task, period, state, bureau_time(first.received_at), first.receipt_no, due, count, required,
                reused)


def status_matrix(rules: Rules, period: str, submissions: Iterable[SubmissionLike],
                  today: dt.date | dt.datetime, calendar: WorkCalendar | None = None, *,
                  shift: str | None = None, tracking_since: str | None = None) -> list[Cell]:
    """One cell per section (as rules/sections.yaml lists them) and task (1..11) for `period`.

    `submissions` may be current ones only (store default) or all of them (current_only=False):
    rejected and superseded ones are told apart here. Submissions of other periods, and any
    received after `today` (a matrix as it stood that day), are ignored. A month before
    `tracking_since` (the config's; mailbot was not collecting then) is not_applicable throughout."""
    parse_period(period)
    if tracking_since and Period.parse(period) < Period.parse(tracking_since):
        return [Cell(s.id, t.number, period, "not_applicable")
                for s in rules.sections for t in sorted(rules.tasks, key=lambda t: t.number)]
    today = bureau_date(today)
    dues: dict[tuple[str, int], list[Due]] = {}
    for d in deadlines_for_period(rules, period, calendar, shift=shift):
        dues.setdefault((d.section, d.task), []).append(d)
    by = _group((s for s in submissions if bureau_time(s.received_at).date() <= today), period)
    cells = []
    for section in rules.sections:
        for task in sorted(rules.tasks, key=lambda t: t.number):
            if section.id not in task.sections:
                cells.append(Cell(section.id, task.number, period, "not_applicable"))
                continue
            cells.append(_cell(section.id, task.number, period, dues.get((section.id, task.number), ()),
                               by.get((section.id, task.number), ()), today))
    return cells


# ---------------------------------------------------------------- the terminal table

def _width(text: str) -> int:
    return sum(0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1
               for ch in text)


def _pad(text: str, width: int, align: str = "left") -> str:
    gap = max(0, width - _width(text))
    if align == "center":
        return " " * (gap // 2) + text + " " * (gap - gap // 2)
    if align == "right":
        return " " * gap + text
    return text + " " * gap


def render_table(cells: Iterable[Cell], color: bool = False, *, today: dt.date | None = None) -> str:
    """Sections as rows, tasks as columns, the one vocabulary's word per cell, a row of
    due days, totals and a legend; ANSI colours when `color`. Several periods: one table each."""
    cells = list(cells)
    periods = list(dict.fromkeys(c.period for c in cells))
    return "\n".join(_one_table([c for c in cells if c.period == p], p, color, today) for p in periods)


def _one_table(cells: list[Cell], period: str, color: bool, today: dt.date | None) -> str:
    sections = list(dict.fromkeys(c.section for c in cells))
    tasks = sorted({c.task for c in cells})
    at = {(c.section, c.task): c for c in cells}
    name_w = max([_width("科室 \\ 任务"), _width("截止日")] + [_width(s) for s in sections]) + 2
    col_w = max(_width(w) for w in SYMBOLS.values()) + 2

    def paint(state: str, text: str) -> str:
        return f"{_COLORS[state]}{text}{_RESET}" if color else text

    year, month = parse_period(period)
    title = f"{month_label(year, month)} 各科室报送情况" + (f"（截至{zh_date(today, weekday=False)}）" if today else "")
    lines = [title, _pad("科室 \\ 任务", name_w) + "".join(_pad(str(t), col_w, "center") for t in tasks)]
    due_days = []
    for t in tasks:
        days = {c.due.day for c in cells if c.task == t and c.due is not None and not isinstance(c.due, dt.datetime)}
        due_days.append(_pad(str(days.pop()) if len(days) == 1 else "", col_w, "center"))
    lines.append(_pad("截止日", name_w) + "".join(due_days))
    lines.append("-" * (name_w + col_w * len(tasks)))
    for s in sections:
        row = _pad(s, name_w)
        for t in tasks:
            c = at.get((s, t))
            if c is None:
                row += " " * col_w
                continue
            row += paint(c.state, _pad(SYMBOLS[c.state], col_w, "center"))
        lines.append(row)
    totals = {st: sum(1 for c in cells if c.state == st) for st in STATES if st != "not_applicable"}
    lines.append("-" * (name_w + col_w * len(tasks)))
    lines.append("合计：" + "　".join(paint(st, f"{SYMBOLS[st]} {n}") for st, n in totals.items()))
    lines.append("说明：" + "；".join(f"{SYMBOLS[st]}：{STATE_MEANINGS[st]}" for st in STATES))
    for c in cells:
        for r in c.reused:
            lines.append(f"{REUSED_WORD}：{c.section} 任务{c.task}《{r.filename}》（回执编号{r.receipt_no}），"
                         + reused_origin(r.earlier_period, r.earlier_receipt_no))
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- the year

def _rejected_first(subs: Sequence[SubmissionLike]) -> bool:
    """The first message carrying files for this key had none accepted."""
    if not subs:
        return False
    first_msg = min(subs, key=_order).message_ref
    return not any(s.status == "accepted" for s in subs if s.message_ref == first_msg)


def yearly_counts(rules: Rules, year: int,
                  submissions_by_period: Mapping[str, Iterable[SubmissionLike]]) -> dict[tuple[str, int], int]:
    """Items reported over the year per (section, task), for the tasks with a per-year count rule."""
    counted = {t.number for t in rules.tasks if any(d.kind == "count" and d.per == "year" for d in t.deadlines)}
    out: dict[tuple[str, int], int] = {}
    for month in range(1, 13):
        period = f"{year:04d}-{month:02d}"
        for (section, task), subs in _group(submissions_by_period.get(period, ()), period).items():
            if task in counted:
                out[(section, task)] = out.get((section, task), 0) + items_reported(_counted(subs)[1])
    return out


def year_score(rules: Rules, year: int, submissions_by_period: Mapping[str, Iterable[SubmissionLike]],
               calendar: WorkCalendar | None = None, *, today: dt.date | dt.datetime | None = None,
               shift: str | None = None, tracking_since: str | None = None) -> list[ScoreRow]:
    """Per section and task it answers for: periods due, on time, late, missing, rejected first time.

    Pass every submission (store.submissions(current_only=False)) so that rejected first answers
    can be counted. `today` defaults to 1 January of the next year (the year is over); with a
    `today` inside the year, the months not yet due count as not_due, not missing."""
    today = bureau_date(today) if today is not None else dt.date(year + 1, 1, 1)
    subs_by = {p: list(v) for p, v in submissions_by_period.items()}
    tally: dict[tuple[str, int], dict[str, int]] = {}
    for month in range(1, 13):
        period = f"{year:04d}-{month:02d}"
        subs = subs_by.get(period, [])
        grouped = _group((s for s in subs if bureau_time(s.received_at).date() <= today), period)
        for c in status_matrix(rules, period, subs, today, calendar, shift=shift, tracking_since=tracking_since):
            if c.state == "not_applicable":
                continue
            t = tally.setdefault((c.section, c.task), dict.fromkeys(STATES, 0) | {"rejected_first_time": 0})
            state = c.state
            if state in ("rejected", "reused"):   # for the assessment neither is an answer yet
                state = "missing" if c.due is not None and is_past(c.due, today) else "not_due"
            t[state] += 1
            t["reused"] += len(c.reused)
            if _rejected_first(grouped.get((c.section, c.task), ())):
                t["rejected_first_time"] += 1
    counts = yearly_counts(rules, year, subs_by)
    rows = []
    for section in rules.sections:
        for task in sorted(rules.tasks, key=lambda t: t.number):
            t = tally.get((section.id, task.number))
            if t is None:
                continue
            year_rule = next((d for d in task.deadlines if d.kind == "count" and d.per == "year"), None)
            rows.append(ScoreRow(
                section.id, task.number, t["on_time"] + t["late"] + t["missing"], t["on_time"], t["late"],
                t["missing"], t["rejected_first_time"], t["not_due"],
                counts.get((section.id, task.number), 0) if year_rule else None,
                year_rule.at_least if year_rule else None, t["reused"]))
    return rows
