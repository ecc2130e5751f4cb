"""The monthly package for 区发改局 and the year-end score: pure writers of plain data.

Nothing here reads the database, the clock or the disk: the caller hands over the stored
submissions, the status cells and the score rows (any objects with the attributes of the
Protocols below) and gets .xlsx or .zip bytes back.

The package workbook (`build_package`):
  目录        title, month, generation time, every sheet with its row count and a link
  报送情况    sections x tasks, each cell in the one vocabulary (writing/vocabulary.py), coloured;
              below it the legend with counts and the list of cells with their receipts
  双公示指标  上报率, 合规率, 及时率 with numerator, denominator and the definition written
              next to each figure, then every problem row behind them
  one sheet per template sheet of rules/templates/annex1.yaml, same name and layout as the
  template (row 1 title, row 2 header, data from row 3), columns 报送科室 + the template's
  columns + 回执编号, 报送时间; the rows of every current accepted submission of the month.
  The plan's 严禁弄虚作假, where it applies, adds a last column 核对说明: a row of a file already
  accepted for another month (`reused_from`) is marked 重复材料不计数; a joint task's row that
  several sections report with the same values in the sheet's `key` columns is written once,
  with every section and receipt, marked 多科室报送已合并 and any column in which they differ.

Every text cell beginning with =, +, - or @ is stored as a string with Excel's quote prefix,
so a section's "=HYPERLINK(...)" never becomes a formula in the bureau's Excel.

The evidence zip (`build_evidence_zip`): 科室/任务N_工作表名/原文件名, UTF-8 names (the
zip's UTF-8 flag set), duplicates numbered, fixed order and timestamps: the same input gives
the same bytes.

The year-end score (`build_score`): 年度考核 (section x task counts and 按时率), 科室汇总,
口径说明.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import re
import unicodedata
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.hyperlink import Hyperlink
from openpyxl.worksheet.worksheet import Worksheet

from mailbot.duties.printing import PORTRAIT_UNITS, fit_columns, fit_rows, set_print
from mailbot.model import Rules, SheetSpec, Task
from mailbot.duties.templates import _BORDER, _HEADER_FILL, DATE_FORMAT, FIRST_DATA_ROW, HEADER_ROW, TITLE_ROW
from mailbot.dates.zone import bureau_time
from mailbot.writing.honesty import merged_mark, reused_mark
from mailbot.writing.vocabulary import MERGED_WORD, REUSED_WORD, STATE_MEANINGS, STATE_WORDS
from mailbot.dates.period import parse_period, period_label

__all__ = [
    "SubmissionLike", "StatusCellLike", "ScoreRowLike",
    "DualPublicityRates", "ProblemLine", "dual_publicity_rates",
    "build_package", "build_evidence_zip", "build_score", "build_status", "status_filename",
    "package_filename", "evidence_zip_filename", "score_filename",
    "STATE_LABELS", "INDEX_SHEET", "STATUS_SHEET", "RATES_SHEET",
    "SCORE_SHEET", "SCORE_SUMMARY_SHEET", "SCORE_NOTES_SHEET",
    "SECTION_COLUMN", "RECEIPT_COLUMN", "RECEIVED_COLUMN", "MARK_COLUMN",
]

INDEX_SHEET = "目录"
STATUS_SHEET = "报送情况"
RATES_SHEET = "双公示指标"
SCORE_SHEET = "年度考核"
SCORE_SUMMARY_SHEET = "科室汇总"
SCORE_NOTES_SHEET = "口径说明"

SECTION_COLUMN = "报送科室"
RECEIPT_COLUMN = "回执编号"
RECEIVED_COLUMN = "报送时间"
MARK_COLUMN = "核对说明"                 # only on a sheet with a reused or merged row

DUAL_PUBLICITY_SHEET = "双公示台账"     # annex1.yaml: the name other modules code against
UNKNOWN_SECTION = "未识别科室"

STATE_LABELS: dict[str, str] = STATE_WORDS       # the one vocabulary (writing/vocabulary.py)
_STATE_FILLS = {
    "on_time": PatternFill("solid", fgColor="C6EFCE"),         # green
    "late": PatternFill("solid", fgColor="FFEB9C"),            # amber
    "rejected": PatternFill("solid", fgColor="F8CBAD"),        # orange
    "reused": PatternFill("solid", fgColor="E4C1F9"),          # violet
    "missing": PatternFill("solid", fgColor="FFC7CE"),         # red
    "not_due": PatternFill("solid", fgColor="DDEBF7"),         # pale blue
    "not_applicable": PatternFill("solid", fgColor="EDEDED"),  # grey
}
_STATE_FONTS = {
    "on_time": Font(color="006100"),
    "late": Font(color="9C5700"),
    "rejected": Font(color="843C0C"),
    "reused": Font(color="5B2C83", bold=True),
    "missing": Font(color="9C0006", bold=True),
    "not_due": Font(color="1F4E78"),
    "not_applicable": Font(color="808080"),
}

_PROBLEM_NAMES = {
    "late-publication": "超过7个工作日上传",
    "placeholder-credit-code": "统一社会信用代码为占位码",
    "too-many-problems": "问题过多未逐条列出",
}

_DATETIME_FORMAT = "yyyy-mm-dd hh:mm"
_PERCENT_FORMAT = "0.00%"
_MAX_CELL_TEXT = 32767                  # Excel's limit for one cell
_FORMULA_LEADS = ("=", "+", "-", "@")
_TITLE_FONT = Font(bold=True, size=14)
_HEAD_FONT = Font(bold=True)
_LINK_FONT = Font(color="0563C1", underline="single")
_WRAP_TOP = Alignment(wrap_text=True, vertical="top")
_CENTER = Alignment(horizontal="center", vertical="center", wrap_text=True)


# ---------------------------------------------------------------- inputs (duck-typed)

class SubmissionLike(Protocol):
    """What the package reads of a stored submission (store.StoredSubmission has all of it).

    Also read when present: `superseded_by` (None = current), `errors`, `warnings` (tuples of
    Problem.as_dict() dicts), `filename`, `reused_from` (the accepted submission of another
    period the same file was sent in: period, receipt_no; None = not reused).
    """
    section: str | None
    task: int
    period: str
    status: str                     # "accepted" | "rejected"
    rows: int
    data: Mapping[str, Any]         # {sheet name: [{column: value}]}
    receipt_no: str
    received_at: dt.datetime


class StatusCellLike(Protocol):
    section: str
    task: int
    period: str
    state: str                      # on_time | late | missing | not_due | not_applicable
    submitted_at: dt.datetime | None
    receipt_no: str | None


class ScoreRowLike(Protocol):
    section: str
    task: int
    due: int
    on_time: int
    late: int
    missing: int
    rejected_first_time: int


# ---------------------------------------------------------------- the 双公示 rates

@dataclass(frozen=True)
class ProblemLine:
    """One problem behind the 双公示 rates, for the detail table."""
    section: str
    receipt_no: str
    filename: str
    sheet: str
    row: int | None
    code: str
    message: str
    counts_against: str             # "合规率" | "及时率" | "" (noted, counted in no rate)


@dataclass(frozen=True)
class DualPublicityRates:
    """上报率, 合规率, 及时率 of one month, as numerator and denominator (the rate is None
    when the denominator is 0: nothing to measure)."""
    period: str
    task: int | None
    responsible_sections: tuple[str, ...]
    reported_sections: tuple[str, ...]
    rows_submitted: int             # rows of current accepted + rejected submissions
    rows_compliant: int             # accepted rows without a warning counting against 合规率
    rows_accepted: int
    rows_timely: int                # accepted rows without a 及时率 warning
    problems: tuple[ProblemLine, ...] = field(default=())
    incomplete: bool = False        # a submission's warnings were capped: 及时率 may read high

    @property
    def report_rate(self) -> float | None:
        return _ratio(len(self.reported_sections), len(self.responsible_sections))

    @property
    def compliance_rate(self) -> float | None:
        return _ratio(self.rows_compliant, self.rows_submitted)

    @property
    def timeliness_rate(self) -> float | None:
        return _ratio(self.rows_timely, self.rows_accepted)


def dual_publicity_rates(rules: Rules, period: str, submissions: Sequence[SubmissionLike]) -> DualPublicityRates:
    """The three rates of the plan's task 3 for `period`, from the submissions as stored.

    上报率 = responsible sections with a current accepted 双公示 submission for the month
             / sections responsible for the task (tasks.yaml).
    合规率 = rows of current accepted 双公示 submissions (they passed every check)
             / those rows + the rows of the month's rejected 双公示 submissions (each row of a
             rejected file counts as non-compliant, even if a corrected file came later).
    及时率 = accepted rows without a warning of a row check that counts against 及时率
             (late-publication: uploaded more than 7 working days after the decision)
             / accepted rows.
    Superseded accepted submissions count nowhere: their rows came again in the newer file.
    """
    parse_period(period)
    task = _dual_publicity_task(rules)
    number = task.number if task else None
    spec = rules.sheet(DUAL_PUBLICITY_SHEET)
    timely_codes = {rc.code for rc in (spec.row_checks if spec else ()) if rc.counts_against == "及时率"}
    compliance_codes = {rc.code for rc in (spec.row_checks if spec else ()) if rc.counts_against == "合规率"}
    responsible = tuple(task.sections) if task else ()

    mine = [s for s in submissions if s.task == number and s.period == period]
    accepted = [s for s in mine if _is_current(s) and not _is_reused(s)]     # a reused file reports nothing
    rejected = [s for s in mine if s.status == "rejected"]
    accepted.sort(key=lambda s: _submission_key(rules, s))
    rejected.sort(key=lambda s: _submission_key(rules, s))

    reported = tuple(x for x in responsible if any(s.section == x for s in accepted))
    rows_accepted = sum(_row_count(s) for s in accepted)
    rows_rejected = sum(_row_count(s) for s in rejected)

    problems: list[ProblemLine] = []
    late_rows: set[tuple[int, str, int | None]] = set()
    noncompliant_rows: set[tuple[int, str, int | None]] = set()
    incomplete = False
    for i, s in enumerate(accepted):
        for w in getattr(s, "warnings", ()) or ():
            code = str(w.get("code", ""))
            where = (i, str(w.get("sheet") or ""), w.get("row"))
            against = []
            if code in compliance_codes and w.get("row") is not None:
                noncompliant_rows.add(where)
                against.append("合规率")
            if code in timely_codes and w.get("row") is not None:
                late_rows.add(where)
                against.append("及时率")
            if code == "too-many-problems":
                incomplete = True
            problems.append(ProblemLine(
                _section_name(s), s.receipt_no, str(getattr(s, "filename", "") or ""),
                str(w.get("sheet") or ""), w.get("row"), code, str(w.get("message", "")), "、".join(against)))
    for s in rejected:
        errors = [e for e in getattr(s, "errors", ()) or ()]
        first = errors[0].get("message", "") if errors else ""
        more = f"(另有{len(errors) - 1}个错误)" if len(errors) > 1 else ""
        problems.append(ProblemLine(
            _section_name(s), s.receipt_no, str(getattr(s, "filename", "") or ""), "", None, "rejected",
            f"整份退回,{_row_count(s)}行计为不合规。{first}{more}", "合规率"))

    return DualPublicityRates(
        period=period, task=number, responsible_sections=responsible, reported_sections=reported,
        rows_submitted=rows_accepted + rows_rejected,
        rows_compliant=rows_accepted - len(noncompliant_rows),
        rows_accepted=rows_accepted, rows_timely=rows_accepted - len(late_rows),
        problems=tuple(problems), incomplete=incomplete)


# ---------------------------------------------------------------- the monthly package

def package_filename(period: str) -> str:
    """信用状况监测分析报送材料汇总-2026年11月.xlsx"""
    return f"信用状况监测分析报送材料汇总-{period_label(period)}.xlsx"


def evidence_zip_filename(period: str) -> str:
    """信用状况监测分析佐证材料-2026年11月.zip"""
    return f"信用状况监测分析佐证材料-{period_label(period)}.zip"


def score_filename(year: int) -> str:
    """信用监测报送年度考核-2026年.xlsx"""
    return f"信用监测报送年度考核-{int(year)}年.xlsx"


def build_package(rules: Rules, period: str, submissions: Sequence[SubmissionLike],
                  status_cells: Sequence[StatusCellLike], *, generated_at: dt.datetime) -> bytes:
    """The consolidated workbook of `period` ("YYYY-MM") as .xlsx bytes.

    `submissions`: the month's submissions; only current accepted ones (status "accepted",
    not superseded) fill the ledger sheets; rejected ones count in the 合规率. Submissions of
    other months are ignored. `status_cells`: the month's status matrix.
    """
    parse_period(period)
    label = period_label(period)
    current = sorted((s for s in submissions if s.period == period and _is_current(s)),
                     key=lambda s: _submission_key(rules, s))
    cells = [c for c in status_cells if getattr(c, "period", period) == period]
    rates = dual_publicity_rates(rules, period, submissions)

    wb = Workbook()
    index = wb.active
    index.title = INDEX_SHEET
    contents: list[tuple[str, str, int]] = []        # (sheet, what it holds, rows)

    n = _write_status(wb.create_sheet(STATUS_SHEET), rules, label, cells)
    contents.append((STATUS_SHEET, f"各科室各项任务报送情况({'、'.join(STATE_WORDS.values())})", n))
    _write_rates(wb.create_sheet(RATES_SHEET), rules, label, rates)
    contents.append((RATES_SHEET, "“双公示”信息上报率、合规率、及时率及问题数据明细", 3))

    rows_by_sheet = _merge_rows(rules, current)
    for spec in rules.sheets:
        rows = rows_by_sheet.get(spec.name, [])
        _write_ledger(wb.create_sheet(spec.name), spec, label, rows)
        contents.append((spec.name, f"任务{spec.task} {spec.title or spec.name}", len(rows)))

    sections = sorted({_section_name(s) for s in current}, key=lambda x: _section_rank(rules, x))
    _write_index(index, label, generated_at, contents, sections)

    return _saved(wb, f"信用状况监测分析报送材料汇总 {label}", generated_at)


def build_status(rules: Rules, period: str, cells: Sequence[StatusCellLike], *, generated_at: dt.datetime) -> bytes:
    """The month's status matrix alone (the package's 报送情况 sheet), as .xlsx bytes: what the
    desk's 查询 attaches."""
    wb = Workbook()
    _write_status(wb.active, rules, period_label(period), [c for c in cells if getattr(c, "period", period) == period])
    wb.active.title = STATUS_SHEET
    return _saved(wb, f"{period_label(period)}各科室任务报送情况", generated_at)


def _saved(wb: Workbook, title: str, generated_at: dt.datetime) -> bytes:
    """The workbook as .xlsx bytes, its properties saying who made it, what it is and when."""
    wb.properties.creator = "mailbot"
    wb.properties.title = title
    wb.properties.created = _utc_naive(generated_at)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def status_filename(period: str, section: str | None = None) -> str:
    return f"{period_label(period)}{section or '各科室'}报送情况.xlsx"


def _write_index(ws: Worksheet, label: str, generated_at: dt.datetime,
                 contents: list[tuple[str, str, int]], sections: list[str]) -> None:
    _title(ws, f"{label}信用状况监测分析报送材料汇总", 4)
    lines = [
        ("统计月份", label),
        ("生成时间", f"{_beijing(generated_at):%Y-%m-%d %H:%M}(北京时间)"),
        ("已报送科室", f"{len(sections)}个:{'、'.join(sections)}" if sections else "无"),
        ("说明", "本汇总由信用监管科 mailbot 根据各科室报送并经校验受理的材料自动生成;"
                 "被退回的材料、已被同月新报送材料替换的材料不计入各台账。"
                 "各台账第1列为报送科室,其后为回执编号和报送时间,可据此查到原始邮件和文件。"
                 f"与以往月份已报送材料完全相同的文件,其各行在“{MARK_COLUMN}”列注明“{REUSED_WORD}”;"
                 f"多个科室共同承担的任务,各科室报送的同一事项(按模板规定的关键列判断)只列一行,"
                 f"注明“{MERGED_WORD}”及各报送科室。"),
    ]
    row = 2
    for name, text in lines:
        label_cell = _put(ws, row, 1, name)
        label_cell.font = _HEAD_FONT
        label_cell.alignment = Alignment(vertical="top")
        ws.merge_cells(start_row=row, start_column=2, end_row=row, end_column=4)
        _put(ws, row, 2, text).alignment = _WRAP_TOP
        row += 1
    row += 1
    _header(ws, row, ["序号", "工作表", "内容", "行数"])
    for i, (sheet, what, n) in enumerate(contents, start=1):
        r = row + i
        _put(ws, r, 1, i).border = _BORDER
        link = _put(ws, r, 2, sheet)
        link.hyperlink = Hyperlink(ref=link.coordinate, location=f"'{sheet}'!A1", display=sheet)
        link.font = _LINK_FONT
        link.border = _BORDER
        _put(ws, r, 3, what).border = _BORDER
        _put(ws, r, 4, n).border = _BORDER
    fit_columns(ws, 2, cap=60)
    set_print(ws, 1, one_page=True, landscape=False)


def _write_status(ws: Worksheet, rules: Rules, label: str, cells: Sequence[StatusCellLike]) -> int:
    """The matrix, its legend and the per-cell list; returns the number of section rows."""
    tasks = sorted(rules.tasks, key=lambda t: t.number)
    by_key: dict[tuple[str, int], StatusCellLike] = {}
    for c in cells:
        by_key[(c.section, c.task)] = c
    sections = [s.id for s in rules.sections]
    sections += sorted({c.section for c in cells if c.section not in sections}, key=str)

    ncols = 1 + len(tasks)
    _title(ws, f"{label}各科室任务报送情况", ncols)
    _header(ws, HEADER_ROW, ["科室"] + [f"任务{t.number}\n{_task_short(rules, t)}" for t in tasks])
    ws.row_dimensions[HEADER_ROW].height = 44
    ws.column_dimensions["A"].width = 18
    for j in range(2, ncols + 1):
        ws.column_dimensions[get_column_letter(j)].width = 11
    counts: dict[str, int] = {}
    for i, section in enumerate(sections):
        r = FIRST_DATA_ROW + i
        head = _put(ws, r, 1, section)
        head.font = _HEAD_FONT
        head.border = _BORDER
        for j, t in enumerate(tasks, start=2):
            c = by_key.get((section, t.number))
            state = c.state if c is not None else ("not_applicable" if section not in t.sections else "")
            state = str(getattr(state, "value", state))
            cell = _put(ws, r, j, STATE_LABELS.get(state, state) or "—")
            cell.alignment = _CENTER
            cell.border = _BORDER
            if state in _STATE_FILLS:
                cell.fill = _STATE_FILLS[state]
                cell.font = _STATE_FONTS[state]
            if state:
                counts[state] = counts.get(state, 0) + 1
    ws.freeze_panes = ws.cell(row=FIRST_DATA_ROW, column=2)

    r = FIRST_DATA_ROW + len(sections) + 1
    _put(ws, r, 1, "图例").font = _HEAD_FONT
    for j, (state, name) in enumerate(STATE_LABELS.items(), start=2):
        cell = _put(ws, r, j, f"{name} {counts.get(state, 0)}")
        cell.fill = _STATE_FILLS[state]
        cell.font = _STATE_FONTS[state]
        cell.alignment = _CENTER
        cell.border = _BORDER
    r += 1
    _put(ws, r, 1, "；".join(f"{STATE_WORDS[s]}：{STATE_MEANINGS[s]}" for s in STATE_WORDS) + "。").alignment = _WRAP_TOP
    ws.merge_cells(start_row=r, start_column=1, end_row=r, end_column=ncols)
    ws.row_dimensions[r].height = 32

    r += 2
    _put(ws, r, 1, "明细").font = _HEAD_FONT
    r += 1
    detail_cols = ["科室", "任务", "状态", "报送时间", "回执编号"]
    _header(ws, r, detail_cols)
    rank = {s: i for i, s in enumerate(sections)}
    listed = sorted((c for c in cells if str(getattr(c.state, "value", c.state)) != "not_applicable"),
                    key=lambda c: (rank.get(c.section, len(rank)), c.task))
    for c in listed:
        r += 1
        state = str(getattr(c.state, "value", c.state))
        _put(ws, r, 1, c.section).border = _BORDER
        _put(ws, r, 2, f"任务{c.task}").border = _BORDER
        sc = _put(ws, r, 3, STATE_LABELS.get(state, state))
        sc.border = _BORDER
        if state in _STATE_FILLS:
            sc.fill = _STATE_FILLS[state]
        when = getattr(c, "submitted_at", None)
        _put(ws, r, 4, _beijing(when) if isinstance(when, dt.datetime) else when).border = _BORDER
        _put(ws, r, 5, getattr(c, "receipt_no", None)).border = _BORDER
    # the detail list shares the matrix's columns: its 报送时间 and 回执编号 widen them
    fit_columns(ws, HEADER_ROW)
    # the title only: the matrix's header would stand above the detail list on later pages
    set_print(ws, TITLE_ROW)
    return len(sections)


def _write_rates(ws: Worksheet, rules: Rules, label: str, rates: DualPublicityRates) -> None:
    _title(ws, f"{label}“双公示”信息上报率、合规率、及时率", 5)
    _header(ws, HEADER_ROW, ["指标", "数值", "分子", "分母", "计算口径"])
    responsible = "、".join(rates.responsible_sections) or "无"
    timely_note = ""
    if rates.incomplete:
        timely_note = "注意:有台账的问题过多、未逐条列出,实际超期行数可能更多,本期及时率可能偏高。"
    rows = [
        ("上报率", rates.report_rate, len(rates.reported_sections), len(rates.responsible_sections),
         f"本月报送了“双公示”台账并通过校验的责任科室数 ÷ 责任科室数(任务{rates.task or 3}责任单位:{responsible})。"
         "应公示的决定总数只有市信用平台掌握,本表无从得知,故按科室计。"),
        ("合规率", rates.compliance_rate, rates.rows_compliant, rates.rows_submitted,
         "通过全部校验的台账行数 ÷ 本月报送的台账行数。被退回的台账(有错误,如必填项缺失、日期或代码不合格)"
         "其全部行计为不合规,即使之后已更正重报;已被同月新报送替换的台账不重复计算。"
         "占位码等警告不影响合规率,列在下方明细中。"),
        ("及时率", rates.timeliness_rate, rates.rows_timely, rates.rows_accepted,
         "上报日期在决定日期后7个工作日内(法定节假日、调休按国家安排)的行数 ÷ 通过校验的台账行数;"
         "以台账填写的“决定日期”“上报日期”为准。" + timely_note),
    ]
    for i, (name, value, num, den, words) in enumerate(rows):
        r = FIRST_DATA_ROW + i
        _put(ws, r, 1, name).font = _HEAD_FONT
        v = _put(ws, r, 2, value if value is not None else "—(无数据)")
        if value is not None:
            v.number_format = _PERCENT_FORMAT
        _put(ws, r, 3, num)
        _put(ws, r, 4, den)
        _put(ws, r, 5, words).alignment = _WRAP_TOP
        ws.row_dimensions[r].height = 48
        for j in range(1, 6):
            ws.cell(row=r, column=j).border = _BORDER
            if j < 5:
                ws.cell(row=r, column=j).alignment = Alignment(vertical="center")
    r = FIRST_DATA_ROW + len(rows) + 1
    _put(ws, r, 1, "数据来源:各科室按月报送信用监管科的“双公示台账”(不是市信用平台的统计);"
                   "实施方案要求三项指标均达到100%。").alignment = _WRAP_TOP
    ws.merge_cells(start_row=r, start_column=1, end_row=r, end_column=5)
    ws.row_dimensions[r].height = 30

    r += 2
    _put(ws, r, 1, "问题数据明细").font = _HEAD_FONT
    r += 1
    cols = ["报送科室", "回执编号", "文件名", "位置", "说明", "问题", "影响指标"]
    _header(ws, r, cols)
    if not rates.problems:
        _put(ws, r + 1, 1, "无")
    for p in rates.problems:
        r += 1
        where = " ".join(x for x in (p.sheet, f"第{p.row}行" if p.row is not None else "") if x)
        values = [p.section, p.receipt_no, p.filename, where or "整个文件", p.message,
                  "整份退回" if p.code == "rejected" else _PROBLEM_NAMES.get(p.code, p.code),
                  p.counts_against or "不影响"]
        for j, v in enumerate(values, start=1):
            _put(ws, r, j, v).border = _BORDER
    # 计算口径 and 说明 share column E: wide, the rest wraps at the cap
    fit_columns(ws, HEADER_ROW, floor={5: 60})
    set_print(ws, HEADER_ROW)


@dataclass
class _LedgerRow:
    """One row of a ledger sheet: a section's row, or a joint task's row several sections sent."""
    values: Mapping[str, Any]
    subs: list[Any]                                  # the submissions it came from, first one first
    rows: list[Mapping[str, Any]]                    # ... and their rows, in the same order
    marks: list[str] = field(default_factory=list)

    def mark(self, spec: SheetSpec) -> str:
        marks = list(self.marks)
        sections = list(dict.fromkeys(_section_name(s) for s in self.subs))
        if len(sections) > 1:
            marks.append(merged_mark(sections, _differing(spec, self)))
        return "；".join(marks)


def _merge_rows(rules: Rules, current: Sequence[SubmissionLike]) -> dict[str, list[_LedgerRow]]:
    """The ledger rows per sheet: a reused file's rows marked; a joint task's row another section
    already reported (same key values) merged into that one, never doubled."""
    out: dict[str, list[_LedgerRow]] = {}
    keyed: dict[tuple[str, tuple[str, ...]], _LedgerRow] = {}
    for s in current:
        for name, rows in (s.data or {}).items():
            spec = _spec_of(rules, name, s.task)
            if spec is None or not isinstance(rows, (list, tuple)):
                continue
            task = rules.task(spec.task)
            joint = bool(spec.key) and task is not None and task.joint
            reused = getattr(s, "reused_from", None)
            for r in rows:
                if not isinstance(r, Mapping):
                    continue
                key = _row_key(spec, r) if joint and reused is None else None
                seen = keyed.get((spec.name, key)) if key is not None else None
                if seen is not None and all(_section_name(x) != _section_name(s) for x in seen.subs):
                    seen.subs.append(s)
                    seen.rows.append(r)
                    continue
                row = _LedgerRow(r, [s], [r], [reused_mark(reused.period, reused.receipt_no)] if reused else [])
                if key is not None:
                    keyed.setdefault((spec.name, key), row)
                out.setdefault(spec.name, []).append(row)
    return out


def _norm(v: Any) -> str:
    return " ".join(unicodedata.normalize("NFKC", "" if v is None else str(v)).split()).casefold()


def _row_key(spec: SheetSpec, row: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The row's values in the sheet's key columns, as compared; None where one is blank."""
    key = tuple(_norm(row.get(c)) for c in spec.key)
    return key if all(key) else None


def _differing(spec: SheetSpec, row: _LedgerRow) -> list[tuple[str, list[tuple[str, str]]]]:
    """The columns in which the sections' rows of a merged row disagree, with each section's value;
    not the key columns (equal by definition) nor the running number (an integer first column:
    each file counts its own rows)."""
    running = spec.columns[0].name if spec.columns and spec.columns[0].type == "integer" else None
    out = []
    for col in spec.columns:
        if col.name in spec.key or col.name == running:
            continue
        values = [(_section_name(s), "" if r.get(col.name) is None else str(r.get(col.name)).strip())
                  for s, r in zip(row.subs, row.rows)]
        if len({_norm(v) for _, v in values}) > 1:
            out.append((col.name, values))
    return out


def _write_ledger(ws: Worksheet, spec: SheetSpec, label: str, rows: list[_LedgerRow]) -> None:
    marks = [r.mark(spec) for r in rows]
    names = [SECTION_COLUMN] + [c.name for c in spec.columns] + [RECEIPT_COLUMN, RECEIVED_COLUMN]
    if any(marks):
        names.append(MARK_COLUMN)
    _title(ws, f"{spec.title or spec.name}({label})", len(names), row=TITLE_ROW)
    _header(ws, HEADER_ROW, names)
    ws.row_dimensions[HEADER_ROW].height = 32
    for i, (row, mark) in enumerate(zip(rows, marks)):
        r = FIRST_DATA_ROW + i
        _put(ws, r, 1, "、".join(dict.fromkeys(_section_name(s) for s in row.subs)))
        for j, col in enumerate(spec.columns, start=2):
            v = row.values.get(col.name)
            if col.type == "date":
                v = _as_date(v)
            cell = _put(ws, r, j, v)
            if col.type in ("text", "enum", "credit_code", "phone") and isinstance(v, str):
                cell.number_format = "@"
        n = len(spec.columns)
        first = row.subs[0]
        _put(ws, r, n + 2, "、".join(dict.fromkeys(s.receipt_no for s in row.subs)))
        _put(ws, r, n + 3, _beijing(first.received_at) if isinstance(first.received_at, dt.datetime)
             else first.received_at)
        if mark:
            cell = _put(ws, r, n + 4, mark)
            cell.alignment = _WRAP_TOP
            cell.fill = _STATE_FILLS["reused"] if REUSED_WORD in mark else _STATE_FILLS["not_due"]
    ws.freeze_panes = ws.cell(row=FIRST_DATA_ROW, column=2)
    ws.auto_filter.ref = f"A{HEADER_ROW}:{get_column_letter(len(names))}{HEADER_ROW + max(len(rows), 1)}"
    # a ledger has up to 18 columns: long texts wrap early so the page is not shrunk unreadably
    fit_columns(ws, HEADER_ROW, cap=24)
    set_print(ws, HEADER_ROW)


# ---------------------------------------------------------------- the evidence zip

_BAD_NAME_CHARS = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]')
_RESERVED = re.compile(r"^(con|prn|aux|nul|com[1-9]|lpt[1-9])$", re.IGNORECASE)
_MAX_NAME = 120                          # characters per path component, extension included


def build_evidence_zip(rules: Rules, period: str,
                       files: Iterable[tuple[str | None, int | None, str, bytes]]) -> bytes:
    """A zip of the evidence files: 科室/任务N_工作表名/原文件名, as bytes.

    Names are UTF-8 with the zip's UTF-8 flag (bit 11) set, which Windows 10+, macOS and
    7-Zip honour. Characters Windows refuses are replaced by "_". A second file of the same
    name in the same folder becomes "name(2).ext" (the same name with the same content is
    kept once). Entries are sorted and every timestamp is the first day of `period`, so the
    same files give the same bytes.
    """
    year, month = parse_period(period)
    stamp = (year, month, 1, 0, 0, 0)
    items = []
    for section, task, filename, content in files:
        content = bytes(content)
        items.append((_section_rank(rules, section or UNKNOWN_SECTION),
                      task if isinstance(task, int) else 10 ** 6,
                      _safe_component(_basename(filename)).casefold(), _safe_component(_basename(filename)),
                      hashlib.sha256(content).hexdigest(), section, task, filename, content))
    items.sort(key=lambda x: x[:5])

    taken: set[str] = set()                 # casefolded paths written (Windows ignores case)
    seen: set[tuple[str, str]] = set()      # (casefolded path as sent, sha256)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for *_, sha, section, task, filename, content in items:
            folder = f"{_safe_component(section or UNKNOWN_SECTION)}/{_safe_component(_task_folder(rules, task))}"
            name = _safe_component(_basename(filename))
            path = f"{folder}/{name}"
            if (path.casefold(), sha) in seen:
                continue                # the same file under the same name twice: once is enough
            seen.add((path.casefold(), sha))
            stem, ext = _split_ext(name)
            k = 2
            while path.casefold() in taken:
                path = f"{folder}/{stem}({k}){ext}"
                k += 1
            taken.add(path.casefold())
            info = zipfile.ZipInfo(path, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3                       # unix: the same bytes on any machine
            info.external_attr = 0o100644 << 16
            info.flag_bits |= 0x800                      # names are UTF-8, even pure ASCII ones
            zf.writestr(info, content)
    return buf.getvalue()


def _task_folder(rules: Rules, task: int | None) -> str:
    if not isinstance(task, int):
        return "未识别任务"
    t = rules.task(task)
    if t is not None and t.sheets:
        return f"任务{task}_{t.sheets[0]}"
    return f"任务{task}"


def _basename(filename: str) -> str:
    name = str(filename or "").replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    return name or "未命名文件"


def _safe_component(text: str) -> str:
    s = unicodedata.normalize("NFC", str(text))
    s = _BAD_NAME_CHARS.sub("_", s).strip().rstrip(". ")
    if not s or s in (".", ".."):
        s = "_"
    stem, ext = _split_ext(s)
    if _RESERVED.match(stem):
        s = f"_{s}"
    if len(s) > _MAX_NAME:
        stem, ext = _split_ext(s)
        ext = ext if len(ext) <= 16 else ""
        s = stem[:_MAX_NAME - len(ext)] + ext
    return s


def _split_ext(name: str) -> tuple[str, str]:
    i = name.rfind(".")
    if i <= 0:
        return name, ""
    return name[:i], name[i:]


# ---------------------------------------------------------------- the year-end score

def build_score(rules: Rules, year: int, rows: Sequence[ScoreRowLike], *, generated_at: dt.datetime) -> bytes:
    """The year-end score of `year` as .xlsx bytes: 年度考核, 科室汇总, 口径说明."""
    year = int(year)
    ordered = sorted(rows, key=lambda r: (_section_rank(rules, r.section), r.section or "", r.task))
    wb = Workbook()
    ws = wb.active
    ws.title = SCORE_SHEET
    when = f"{_beijing(generated_at):%Y-%m-%d %H:%M}(北京时间)"

    cols = ["科室", "任务", "任务名称", "应报次数", "按时报送", "逾期报送", "未报送", "首次报送被退回", "按时率",
            "未到期", "年度次数要求", REUSED_WORD]
    _title(ws, f"{year}年度信用监测材料报送考核情况(统计时间:{when})", len(cols))
    _header(ws, HEADER_ROW, cols)
    for i, r in enumerate(ordered):
        row = FIRST_DATA_ROW + i
        t = rules.task(r.task)
        values = [r.section, f"任务{r.task}", t.title if t else "", int(r.due), int(r.on_time), int(r.late),
                  int(r.missing), int(r.rejected_first_time)]
        for j, v in enumerate(values, start=1):
            _put(ws, row, j, v).border = _BORDER
        _rate_cell(ws, row, 9, int(r.on_time), int(r.due))
        _put(ws, row, 10, int(getattr(r, "not_due", 0) or 0)).border = _BORDER
        required, count = getattr(r, "required", None), getattr(r, "count", None)
        yearly = _put(ws, row, 11, None if required is None else
                      f"已报{count or 0}次/至少{required}次,{'达标' if (count or 0) >= required else '未达标'}")
        yearly.border = _BORDER
        if required is not None and (count or 0) < required:
            yearly.fill = _STATE_FILLS["missing"]
        reused = int(getattr(r, "reused", 0) or 0)
        marked = _put(ws, row, 12, f"{reused}份" if reused else None)
        marked.border = _BORDER
        if reused:
            marked.fill = _STATE_FILLS["reused"]
        if int(r.missing):
            ws.cell(row=row, column=7).fill = _STATE_FILLS["missing"]
        if int(r.late):
            ws.cell(row=row, column=6).fill = _STATE_FILLS["late"]
    ws.freeze_panes = ws.cell(row=FIRST_DATA_ROW, column=2)
    if ordered:
        ws.auto_filter.ref = f"A{HEADER_ROW}:{get_column_letter(len(cols))}{HEADER_ROW + len(ordered)}"
    fit_columns(ws, HEADER_ROW)
    set_print(ws, HEADER_ROW)

    sm = wb.create_sheet(SCORE_SUMMARY_SHEET)
    scols = ["科室", "承担任务数", "应报次数", "按时报送", "逾期报送", "未报送", "首次报送被退回", "按时率", "报送率"]
    _title(sm, f"{year}年度各科室报送情况汇总", len(scols))
    _header(sm, HEADER_ROW, scols)
    totals: dict[str, list[int]] = {}
    tasks_of: dict[str, set[int]] = {}
    for r in ordered:
        t = totals.setdefault(r.section, [0, 0, 0, 0, 0])
        for k, v in enumerate((r.due, r.on_time, r.late, r.missing, r.rejected_first_time)):
            t[k] += int(v)
        tasks_of.setdefault(r.section, set()).add(r.task)
    row = FIRST_DATA_ROW
    grand = [0, 0, 0, 0, 0]
    for section, t in totals.items():
        _summary_row(sm, row, section, len(tasks_of[section]), t)
        grand = [a + b for a, b in zip(grand, t)]
        row += 1
    _summary_row(sm, row, "合计", len({(r.section, r.task) for r in ordered}), grand)
    for j in range(1, len(scols) + 1):
        sm.cell(row=row, column=j).font = _HEAD_FONT
    sm.freeze_panes = sm.cell(row=FIRST_DATA_ROW, column=2)
    fit_columns(sm, HEADER_ROW)
    set_print(sm, HEADER_ROW)

    notes = wb.create_sheet(SCORE_NOTES_SHEET)
    notes.column_dimensions["A"].width = PORTRAIT_UNITS     # one portrait page wide at 100%
    lines = [
        ("title", f"{year}年度考核口径说明"),
        ("text", f"统计时间:{when}。依据:长清区市场监管局〔2022〕-057号实施方案“定期通报科室任务完成情况,并作为年底开展考核的依据”。"),
        ("head", "一、统计对象"),
        ("text", "每个科室承担的每项重点任务(责任单位见实施方案,“各业务科室”按科室类别展开)各占一行;"
                 "实施方案未分配给该科室的任务不列入。"),
        ("head", "二、各列含义"),
        ("text", "应报次数:本年度内报送期限已过的期数,加上期限未到但已经报送的期数(每月一次的任务按月计;报送期限按"
                 "每月25日前、30日前等规则,遇月份无该日按当月最后一天)。应报次数 = 按时报送 + 逾期报送 + 未报送。"),
        ("text", "按时报送:该期第一次通过校验受理的材料,收到日期(北京时间)不晚于报送期限的期数。"),
        ("text", "逾期报送:该期第一次通过校验受理的材料在报送期限之后才收到的期数。"),
        ("text", "未报送:报送期限已过,至统计时仍没有通过校验受理的材料的期数;有每月条数要求的任务"
                 "(如信用动态每月不少于1篇)月末未达到要求的,也计为未报送。"),
        ("text", "首次报送被退回:该期第一封报送邮件的材料全部未通过校验、被退回的期数"
                 "(之后更正重报的,按重报受理的时间另计按时或逾期)。"),
        ("text", "未到期:报送期限未到、尚未报送的期数,不计入应报次数。"),
        ("text", "年度次数要求:实施方案规定每年至少开展若干次的任务(如理论学习每年至少1次、诚信宣传每年至少2次),"
                 "全年已报送的条数与要求。"),
        ("text", f"{REUSED_WORD}:与以往月份已报送的材料完全相同的文件份数(实施方案“严禁弄虚作假”)。这些文件不计入"
                 "按时报送、逾期报送和年度次数;某月只报送了这类文件的,报送期限过后计为未报送。"),
        ("text", "按时率 = 按时报送 ÷ 应报次数;报送率 = (按时报送 + 逾期报送) ÷ 应报次数;应报次数为0时记“—”。"),
        ("head", "三、说明"),
        ("text", "被退回后在期限内更正重报并受理的,计为按时报送;按时后又报送更正材料的,仍计为按时。"),
        ("text", "每月各科室各任务的报送时间和回执编号,见当月汇总的“报送情况”工作表。"),
        ("text", "本表由 mailbot 根据信用监管科公务邮箱收到的报送邮件自动统计;如有人工确认或更正,以信用监管科记录为准。"),
    ]
    for i, (style, text) in enumerate(lines, start=1):
        cell = _put(notes, i, 1, text)
        cell.alignment = _WRAP_TOP
        if style == "title":
            cell.font = _TITLE_FONT
            notes.row_dimensions[i].height = 28
        elif style == "head":
            cell.font = Font(bold=True, size=12)
    fit_rows(notes)
    set_print(notes, 1)

    return _saved(wb, f"{year}年度信用监测材料报送考核", generated_at)


def _summary_row(ws: Worksheet, row: int, section: str, ntasks: int, t: list[int]) -> None:
    due, on_time, late, missing, rejected = t
    for j, v in enumerate([section, ntasks, due, on_time, late, missing, rejected], start=1):
        _put(ws, row, j, v).border = _BORDER
    _rate_cell(ws, row, 8, on_time, due)
    _rate_cell(ws, row, 9, on_time + late, due)


def _rate_cell(ws: Worksheet, row: int, col: int, num: int, den: int) -> None:
    rate = _ratio(num, den)
    cell = _put(ws, row, col, rate if rate is not None else "—")
    if rate is not None:
        cell.number_format = _PERCENT_FORMAT
    cell.border = _BORDER


# ---------------------------------------------------------------- helpers

def _put(ws: Worksheet, row: int, col: int, value: Any) -> Cell:
    """Write one value; text that Excel would read as a formula stays text."""
    cell = ws.cell(row=row, column=col)
    if value is None:
        return cell
    if isinstance(value, bool):
        cell.value = "是" if value else "否"
        return cell
    if isinstance(value, (int, float)):
        cell.value = value
        return cell
    if isinstance(value, dt.datetime):
        cell.value = _beijing(value) if value.tzinfo else value
        cell.number_format = _DATETIME_FORMAT
        return cell
    if isinstance(value, dt.date):
        cell.value = value
        cell.number_format = DATE_FORMAT
        return cell
    text = ILLEGAL_CHARACTERS_RE.sub("", value if isinstance(value, str) else str(value))
    if len(text) > _MAX_CELL_TEXT:
        text = text[:_MAX_CELL_TEXT - 1] + "…"
    cell.value = text
    if text.startswith(_FORMULA_LEADS):
        # openpyxl would store "=..." as a formula; a string cell with Excel's quote prefix
        # shows the text as typed and keeps it text even when someone edits the cell
        cell.data_type = "s"
        cell.quotePrefix = True
    return cell


def _title(ws: Worksheet, text: str, ncols: int, row: int = TITLE_ROW) -> None:
    cell = _put(ws, row, 1, text)
    cell.font = _TITLE_FONT
    cell.alignment = Alignment(horizontal="center", vertical="center")
    if ncols > 1:
        ws.merge_cells(start_row=row, start_column=1, end_row=row, end_column=ncols)
    ws.row_dimensions[row].height = 30


def _header(ws: Worksheet, row: int, names: Sequence[str]) -> None:
    for j, name in enumerate(names, start=1):
        cell = _put(ws, row, j, name)
        cell.font = _HEAD_FONT
        cell.fill = _HEADER_FILL
        cell.border = _BORDER
        cell.alignment = _CENTER


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def _is_current(s: Any) -> bool:
    return s.status == "accepted" and getattr(s, "superseded_by", None) is None


def _is_reused(s: Any) -> bool:
    return getattr(s, "reused_from", None) is not None


def _row_count(s: Any) -> int:
    rows = getattr(s, "rows", None)
    if isinstance(rows, int):
        return rows
    return sum(len(v) for v in (getattr(s, "data", None) or {}).values() if isinstance(v, (list, tuple)))


def _section_name(s: Any) -> str:
    return s.section or UNKNOWN_SECTION


def _section_rank(rules: Rules, section: str | None) -> int:
    for i, s in enumerate(rules.sections):
        if s.id == section:
            return i
    return len(rules.sections)


def _submission_key(rules: Rules, s: Any) -> tuple:
    received = s.received_at
    stamp = (bureau_time(received).timestamp()
             if isinstance(received, dt.datetime) else 0.0)
    return (_section_rank(rules, s.section), s.section or "", s.task, stamp, s.receipt_no or "",
            getattr(s, "id", 0) or 0)


def _spec_of(rules: Rules, name: str, task: int) -> SheetSpec | None:
    key = unicodedata.normalize("NFKC", str(name)).strip()
    for spec in rules.sheets:
        if key == spec.name or key in spec.aliases:
            return spec
    t = rules.task(task)
    if t is not None and len(t.sheets) == 1:
        return rules.sheet(t.sheets[0])
    return None


def _dual_publicity_task(rules: Rules) -> Task | None:
    return next((t for t in rules.tasks if DUAL_PUBLICITY_SHEET in t.sheets), None)


def _task_short(rules: Rules, t: Task) -> str:
    if t.sheets:
        name = t.sheets[0]
        return name[:-2] if name.endswith("台账") and len(name) > 2 else name
    return t.title[:8]


def _as_date(v: Any) -> Any:
    """A date column's stored ISO text back to a date (a datetime where it has a time of day)."""
    if not isinstance(v, str):
        return v
    text = v.strip()
    try:
        if len(text) == 10:
            return dt.date.fromisoformat(text)
        t = dt.datetime.fromisoformat(text)
    except ValueError:
        return v
    return t.date() if t.time() == dt.time() and t.tzinfo is None else t


def _beijing(t: dt.datetime) -> dt.datetime:
    """Naive Beijing wall time (Excel has no zones); a naive input is taken as Beijing time."""
    if t.tzinfo is None:
        return t
    return bureau_time(t).replace(tzinfo=None)


def _utc_naive(t: dt.datetime) -> dt.datetime:
    if t.tzinfo is None:
        t = bureau_time(t)
    return t.astimezone(dt.timezone.utc).replace(tzinfo=None)
