"""Writes the blank Annex 1 workbook a section fills in for one month: instructions, the cover,
and one ledger sheet per task the section answers for, all laid out from rules/.

Layout of a task sheet (the reader relies on it): row 1 the sheet's title, merged across the
columns; row 2 the header, each cell exactly the column's name; data from row 3. Required
columns are marked by a red header font and a cell comment, never by changing the header
text, so matching a header stays a plain string comparison.
"""
from __future__ import annotations

import calendar
import datetime as dt
import io
from pathlib import Path
from typing import BinaryIO

from openpyxl import Workbook
from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.utils.datetime import to_excel
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet

from mailbot.duties.printing import PORTRAIT_UNITS, fit_columns, fit_rows, set_print
from mailbot.model import Column, CoverSpec, Deadline, Rules, Section, SheetSpec, Task
from mailbot.dates.period import month_label, parse_period, period_label
from mailbot.dates.zone import zh_date
from mailbot.rules.load import INSTRUCTIONS_SHEET

__all__ = [
    "write_template", "template_bytes", "template_filename",
    "describe_deadline",
    "TITLE_ROW", "HEADER_ROW", "FIRST_DATA_ROW", "TEMPLATE_ROWS", "DATE_FORMAT",
]

TITLE_ROW = 1
HEADER_ROW = 2
FIRST_DATA_ROW = 3
TEMPLATE_ROWS = 200                  # rows prepared with formats and validations
DATE_FORMAT = "yyyy-mm-dd"

_AUTHOR = "mailbot"
_THIN = Side(style="thin", color="808080")
_BORDER = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
_HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
_LABEL_FILL = PatternFill("solid", fgColor="F2F2F2")
_RED = "C00000"
# date validation bounds: wide enough for any real entry, narrow enough to catch 2026 typed as 26
_DATE_MIN, _DATE_MAX = dt.date(2000, 1, 1), dt.date(2099, 12, 31)


# ---------------------------------------------------------------- public API

def write_template(rules: Rules, section_id: str, period: str, out: str | Path | BinaryIO) -> None:
    """Write the blank template of `section_id` (id or alias) for `period` ("YYYY-MM") to `out`.

    Raises KeyError for a section rules/ does not know and ValueError for a malformed period.
    """
    section = _section(rules, section_id)
    year, month = parse_period(period)
    tasks = rules.tasks_of(section.id)

    wb = Workbook()
    ws = wb.active
    ws.title = INSTRUCTIONS_SHEET
    _write_instructions(ws, rules, section, tasks, year, month)
    fit_rows(ws)
    set_print(ws, 1)
    cover = wb.create_sheet(rules.cover.name)
    _write_cover(cover, rules.cover, section, year, month)
    set_print(cover, 1)
    for task in tasks:
        for name in task.sheets:
            spec = rules.sheet(name)
            if spec is not None:
                _write_sheet(wb.create_sheet(spec.name), spec)

    wb.properties.creator = _AUTHOR
    wb.properties.title = f"附件1 信用状况监测分析报送材料 {section.id} {period_label(period)}"
    wb.save(out)


def template_bytes(rules: Rules, section_id: str, period: str) -> bytes:
    """The blank template as .xlsx bytes, ready to attach to a reply."""
    buf = io.BytesIO()
    write_template(rules, section_id, period, buf)
    return buf.getvalue()


def template_filename(rules: Rules, section_id: str, period: str) -> str:
    """The attachment name: 附件1信用状况监测分析报送材料-政策法规科-2026年11月.xlsx."""
    section = _section(rules, section_id)
    return f"附件1信用状况监测分析报送材料-{section.id}-{period_label(period)}.xlsx"


def describe_deadline(deadline: Deadline, year: int | None = None, month: int | None = None) -> str:
    """One deadline in the words a section reads; with a month, the monthly day is made concrete."""
    d = deadline
    if d.kind == "monthly":
        words = f"每月{d.day}日前报送"
        if year and month:
            last = calendar.monthrange(year, month)[1]
            words += f"(本月即{zh_date(dt.date(year, month, min(d.day, last)), weekday=False)}前)"
        if not d.stated:
            words += f";实施方案未写明日期,按每月{d.day}日执行"
        return words
    if d.kind == "event":
        if d.working_days:
            return f"“{d.report_column}”应在“{d.event_column}”后{d.working_days}个工作日内"
        days = (d.hours or 0) // 24
        return (f"“{d.report_column}”应在“{d.event_column}”后{d.hours}小时内"
                f"(表中只填日期,按不超过{days}天计)")
    if d.kind == "count":
        return f"{'每月' if d.per == 'month' else '每年'}至少{d.at_least}次"
    if d.kind == "asap":
        return "发生后第一时间处置并反馈处理情况"
    return d.source


# ---------------------------------------------------------------- the sheets

def _section(rules: Rules, section_id: str) -> Section:
    section = rules.section(section_id) if isinstance(section_id, str) else None
    if section is None:
        known = "、".join(s.id for s in rules.sections)
        raise KeyError(f"unknown section {section_id!r}; rules/sections.yaml knows: {known}")
    return section


def _write_instructions(ws: Worksheet, rules: Rules, section: Section, tasks: tuple[Task, ...],
                        year: int, month: int) -> None:
    label = month_label(year, month)
    lines: list[tuple[str, str]] = [        # (style, text): "title" | "head" | "text"
        ("title", "附件1  信用状况监测分析报送材料 — 填报说明"),
        ("text", f"报送科室:{section.id}        报送月份:{label}"),
        ("text", ""),
        ("head", "一、需要填写的内容"),
    ]
    if not tasks:
        lines.append(("text", "按实施方案,本科室没有需要报送的重点任务。"))
    optional = []
    for t in tasks:
        lines.append(("text", f"任务{t.number}  {t.title}"))
        for name in t.sheets:
            spec = rules.sheet(name)
            if spec is None:
                continue
            lines.append(("text", f"    工作表“{spec.name}”:{spec.help or spec.title}"))
            if spec.allow_empty:
                optional.append(spec.name)
        lines.append(("text", f"    佐证材料可附:{_kinds_in_words(t.file_kinds)}"))
    if optional:
        lines.append(("text", f"本月没有相关内容时可以留空的工作表:{'、'.join(optional)};其余工作表请如实填写,不要留空。"))
    lines += [("text", ""), ("head", "二、报送时限")]
    for t in tasks:
        lines.append(("text", f"任务{t.number}  {t.title}"))
        # the monthly report first: it is the date every section plans around
        for d in sorted(t.deadlines, key=lambda d: d.kind != "monthly"):
            lines.append(("text", f"    {describe_deadline(d, year, month)}"))
    lines += [
        ("text", ""),
        ("head", "三、填写要求"),
        ("text", "1. 不要修改工作表名称、表头文字和列的顺序,不要增删列;第1行为标题,第2行为表头,从第3行起每行填写一条记录。"),
        ("text", "2. 表头为红色的列必须填写;把鼠标移到表头单元格上可看到该列的填写说明。"),
        ("text", f"3. 日期按 yyyy-mm-dd 填写(如 {year}-{month:02d}-05);金额以万元为单位;统一社会信用代码为18位。"),
        ("text", "4. 带下拉箭头的列请从下拉列表中选择。"),
        ("text", f"5. “{rules.cover.name}”中的报送科室和报送月份已经填好,请填写联系人和联系电话。"),
        ("text", ""),
        ("head", "四、报送方式"),
        ("text", "1. 每个月报送一个工作簿:填好后直接回复发来模板的邮件,或作为附件发送至信用监管科公务邮箱。"),
        ("text", f"2. 邮件主题请写明科室和月份,如“{section.id} {label} 信用监测材料”。"),
        ("text", "3. 照片、文件等佐证材料作为附件随同工作簿一并发送,文件名请写明任务,如“任务7 诚信宣传 现场照片.jpg”。"),
        ("text", "4. 所报数据、信息和材料须真实有效,严禁弄虚作假。"),
    ]
    ws.column_dimensions["A"].width = PORTRAIT_UNITS     # one portrait page wide at 100%
    for row, (style, text) in enumerate(lines, start=1):
        cell = ws.cell(row=row, column=1, value=text or None)
        cell.alignment = Alignment(wrap_text=True, vertical="top")
        if style == "title":
            cell.font = Font(bold=True, size=14)
            ws.row_dimensions[row].height = 28
        elif style == "head":
            cell.font = Font(bold=True, size=12)


def _kinds_in_words(kinds: tuple[str, ...]) -> str:
    groups = [("表格", ("xlsx", "xls", "et", "ods")), ("文档", ("pdf", "docx", "doc", "wps", "odt")),
              ("照片", ("jpeg", "png"))]
    words, rest = [], list(kinds)
    for name, members in groups:
        have = [k for k in members if k in kinds]
        if have:
            words.append(f"{name}({'/'.join(have)})")
            rest = [k for k in rest if k not in have]
    return "、".join(words + rest)


def _write_cover(ws: Worksheet, cover: CoverSpec, section: Section, year: int, month: int) -> None:
    prefilled = {"报送科室": section.id, "报送月份": month_label(year, month)}
    ws.cell(row=1, column=1, value="信用状况监测分析报送材料").font = Font(bold=True, size=14)
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=2)
    ws.cell(row=1, column=1).alignment = Alignment(horizontal="center", vertical="center")
    ws.row_dimensions[1].height = 28
    ws.column_dimensions["A"].width = 16
    ws.column_dimensions["B"].width = 40
    for row, field in enumerate(cover.fields, start=2):
        label = ws.cell(row=row, column=1, value=field.name)
        label.font = Font(bold=True, color=_RED if field.required else None)
        label.fill = _LABEL_FILL
        label.border = _BORDER
        note = _column_note(field)
        if note:
            label.comment = _comment(note)
        value = ws.cell(row=row, column=2, value=prefilled.get(field.name))
        value.number_format = "@"       # a phone number stays text, leading zero and all
        value.border = _BORDER
        ws.row_dimensions[row].height = 22


def _write_sheet(ws: Worksheet, spec: SheetSpec) -> None:
    ncols = len(spec.columns)
    last_row = FIRST_DATA_ROW + TEMPLATE_ROWS - 1

    title = ws.cell(row=TITLE_ROW, column=1, value=spec.title or spec.name)
    title.font = Font(bold=True, size=14)
    title.alignment = Alignment(horizontal="center", vertical="center")
    if ncols > 1:
        ws.merge_cells(start_row=TITLE_ROW, start_column=1, end_row=TITLE_ROW, end_column=ncols)
    ws.row_dimensions[TITLE_ROW].height = 30
    ws.row_dimensions[HEADER_ROW].height = 32

    for i, col in enumerate(spec.columns, start=1):
        letter = get_column_letter(i)
        cell = ws.cell(row=HEADER_ROW, column=i, value=col.name)
        cell.font = Font(bold=True, color=_RED if col.required else None)
        cell.fill = _HEADER_FILL
        cell.border = _BORDER
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        note = _column_note(col)
        if note:
            cell.comment = _comment(note)
        ws.column_dimensions[letter].width = col.width

        fmt = _number_format(col)
        if fmt:
            for row in range(FIRST_DATA_ROW, last_row + 1):
                ws.cell(row=row, column=i).number_format = fmt
        dv = _validation(col)
        if dv is not None:
            ws.add_data_validation(dv)
            dv.add(f"{letter}{FIRST_DATA_ROW}:{letter}{last_row}")

    ws.freeze_panes = ws.cell(row=FIRST_DATA_ROW, column=1)
    # the designed widths are the floor (room to type); a long header wraps in its two lines
    fit_columns(ws, HEADER_ROW, floor={i: col.width for i, col in enumerate(spec.columns, start=1)})
    set_print(ws, HEADER_ROW)


def _number_format(col: Column) -> str | None:
    if col.type == "date":
        return DATE_FORMAT
    if col.type in ("text", "enum", "credit_code", "phone"):
        return "@"      # keeps an all-digit code or phone from turning into a number
    if col.type == "integer":
        return "0"
    return None


def _validation(col: Column) -> DataValidation | None:
    common = dict(allow_blank=True, showErrorMessage=True, errorTitle=f"“{col.name}”填写有误")
    if col.type == "enum":
        # showDropDown=False is what shows the arrow: the OOXML attribute means "hide it"
        return DataValidation(type="list", formula1='"' + ",".join(col.choices) + '"', showDropDown=False,
                              error=f"请从下拉列表中选择:{'、'.join(col.choices)}", **common)
    if col.type == "date":
        return DataValidation(type="date", operator="between",
                              formula1=str(int(to_excel(_DATE_MIN))), formula2=str(int(to_excel(_DATE_MAX))),
                              error="请填写日期,格式如 2026-11-05", **common)
    if col.type in ("integer", "number"):
        # without bounds: Excel's own range for whole numbers, so only non-numbers are refused
        lo = col.minimum if col.minimum is not None else -2147483648
        hi = col.maximum if col.maximum is not None else 2147483647
        fmt = (lambda x: str(int(x))) if col.type == "integer" else (lambda x: repr(float(x)))
        word = "整数" if col.type == "integer" else "数字"
        limit = f",不小于{_num(col.minimum)}" if col.minimum is not None else ""
        limit += f",不大于{_num(col.maximum)}" if col.maximum is not None else ""
        return DataValidation(type="whole" if col.type == "integer" else "decimal", operator="between",
                              formula1=fmt(lo), formula2=fmt(hi), error=f"请填写{word}{limit}", **common)
    if col.type == "credit_code":
        # a warning, not a stop: the reader checks the code properly and explains what is wrong
        return DataValidation(type="textLength", operator="equal", formula1="18", errorStyle="warning",
                              error="统一社会信用代码应为18位", **common)
    return None


def _num(x: float | None) -> str:
    return "" if x is None else (str(int(x)) if float(x).is_integer() else str(x))


def _column_note(col: Column) -> str:
    parts = []
    if col.required:
        parts.append("*必填。")
    elif col.required_if:
        other, values = col.required_if
        parts.append(f"*“{other}”为{'或'.join(values)}时必填。")
    if col.help:
        parts.append(col.help)
    if col.type == "enum" and col.choices:
        parts.append("可选:" + "、".join(col.choices))
    elif col.type == "date":
        parts.append("日期格式:yyyy-mm-dd")
    elif col.type == "credit_code":
        parts.append("18位统一社会信用代码")
    return "\n".join(parts)


def _comment(text: str) -> Comment:
    c = Comment(text, _AUTHOR)
    c.width, c.height = 260, 40 + 18 * (text.count("\n") + len(text) // 18)
    return c
