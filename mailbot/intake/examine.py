"""Each attached file sniffed and read (real kind, template sheets, cover), and one task's sheets checked."""
from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mailbot.dates.workdays import WorkCalendar
from mailbot.intake import classify, filetype, judge, validate, workbook
from mailbot.model import Attachment, FileKind, Problem, Rules, Severity

__all__ = ["Examined", "examine", "looks_like_submission", "cover_value", "validate_task"]


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


def examine(att: Attachment, rules: Rules) -> Examined:
    """Sniff the real type and, for a workbook, read it and find its template sheets and cover."""
    sha = hashlib.sha256(att.content).hexdigest()
    if att.problems:
        return Examined(att, sha, FileKind.UNKNOWN, "", problems=att.problems)
    # a zip's directory is read once, for sniffing and for reading the workbook
    archive = filetype.open_zip(att.content) if att.content.startswith((b"PK\x03\x04", b"PK\x05\x06")) else None
    kind, desc = filetype.sniff(att.content, att.filename, archive=archive)
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
        wb = workbook.read_workbook(att.content, kind, archive=archive)
    except workbook.WorkbookError as e:
        return Examined(att, sha, kind, desc, problems=(e.problem,))
    if note:
        problems.append(Problem("extension-mismatch", f"文件'{att.filename}'：{note}", Severity.WARNING))
    matches = tuple(validate.match_sheets(wb, rules.sheets))
    cover = validate.read_cover(wb, rules.cover)
    return Examined(att, sha, kind, desc, wb, matches, cover, tuple(problems))


def looks_like_submission(files: Sequence[Examined], subject: str, rules: Rules) -> bool:
    """Template sheets, a cover or a task named anywhere: mail worth an answer even from a stranger."""
    return any(f.matches or f.cover for f in files) or bool(
        classify.find_tasks(subject, rules) or any(classify.find_tasks(f.attachment.filename, rules) for f in files))


def cover_value(cover: dict[str, Any], name: str) -> tuple[Any, str] | None:
    """A cover field's value and the cell it came from, or None where the cover lacks it."""
    v = cover.get(name)
    if v is None:
        return None
    return getattr(v, "value", v), getattr(v, "cell", "")


_AS_IS = frozenset({str, int, type(None)})


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    """A ledger row as stored: dates as ISO text, whole floats as integers (every cell of every
    ledger passes here, so the common types are tested by identity)."""
    return {k: v if (t := type(v)) in _AS_IS else v.isoformat() if t is dt.date
            else v if t is float and not v.is_integer() else _json_value(v) for k, v in row.items()}


def _json_value(v: Any) -> Any:
    if isinstance(v, dt.date):
        return v.isoformat()
    if type(v) is float and v.is_integer():
        return int(v)
    return v


def validate_task(f: Examined, task_no: int, rules: Rules, calendar: WorkCalendar
                  ) -> tuple[list[Problem], int, dict[str, Any], tuple[str, ...]]:
    """Check the sheets of one task in one workbook: problems, row count, the rows, sheet names."""
    matches = [m for m in f.matches if m.spec.task == task_no]
    if not matches:
        names = [t.name for t in f.workbook.tables]
        return [judge.missing_sheet(f.attachment.filename, names, task_no, rules)], 0, {}, ()
    problems: list[Problem] = []
    rows, data, sheets = 0, {}, []
    tables = {t.name: t for t in f.workbook.tables}
    for m in matches:
        report = validate.check_sheet(m, tables[m.table], calendar)
        problems += report.problems
        rows += report.rows
        data[m.table] = [_jsonable(r) for r in report.data]
        sheets.append(m.table)
    return problems, rows, data, tuple(sheets)
