"""Checks a read workbook against the Annex 1 template: finds the cover and each task sheet, then
every row and cell, and returns every problem at once, each naming its sheet, row, column and cell.

Pure: no I/O and no clock; the working-day calendar is passed in. The sections fill the template
by hand in Excel or WPS, so the matching is deliberately tolerant (full-width characters, spaces
inside headers, title rows above the header, columns in any order, dates in every written form)
while the judgement on each value is exact.
"""
from __future__ import annotations

import datetime as dt
import difflib
import functools
import math
import re
import string
import types
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from mailbot.model import Column, CoverSpec, Problem, RowCheck, Severity, SheetSpec, Table, Workbook
from mailbot.intake.uscc import check_credit_code
from mailbot.intake.workbook import cell_name
from mailbot.dates.workdays import CalendarGapError, WorkCalendar
from mailbot.dates.period import month_label
from mailbot.writing.problems import header_read_as, missing_column
from mailbot.writing.vocabulary import provisional_words

__all__ = [
    "normalize_header", "CoverValue", "read_cover", "check_cover",
    "SheetMatch", "match_sheets", "unmatched_sheets", "SheetReport", "check_sheet", "WorkbookReport", "validate_workbook",
    "parse_date", "parse_number", "parse_month", "MAX_PROBLEMS", "HEADER_SCAN_ROWS",
]

MAX_PROBLEMS = 200          # per sheet; the rest are counted in one closing problem
HEADER_SCAN_ROWS = 10       # the header row is looked for among the first rows only
_MIN_YEAR, _MAX_YEAR = 1949, 2100   # 2099-12-31 is how the 双公示 standard writes 长期

# ---------------------------------------------------------------- text normalisation

_BRACKETS = str.maketrans({"【": "(", "】": ")", "〔": "(", "〕": ")", "[": "(", "]": ")",
                           "{": "(", "}": ")", "〈": "(", "〉": ")", "﹙": "(", "﹚": ")"})
_MARKS = re.compile(r"^\*+|\*+$|\((?:必填|必填项|选填|非必填|可选)\)$")
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"), None)


def normalize_header(text: Any) -> str:
    """The comparable form of a header or sheet name: NFKC (full-width to half-width), no
    whitespace at all (U+3000 and line breaks in a cell included), one kind of bracket, and
    no required-marks ('*决定日期', '决定日期（必填）')."""
    if text is None:
        return ""
    return _normalize_text(str(text))


@functools.lru_cache(maxsize=8192)
def _normalize_text(text: str) -> str:
    # cached: enum values and headers repeat on every row of a ledger
    s = unicodedata.normalize("NFKC", text).translate(_INVISIBLE)
    s = "".join(s.split()).translate(_BRACKETS)
    while True:
        stripped = _MARKS.sub("", s)
        if stripped == s:
            return s.casefold()
        s = stripped


def _text(value: Any) -> str:
    """A cell as the sender typed it, trimmed (U+3000 and no-break spaces too)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip(" \t\r\n\u3000\xa0\u200b\ufeff")
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="seconds") if value.time() != dt.time() else value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


# ---------------------------------------------------------------- values: dates, numbers, months

def _serial_to_date(serial: float, date1904: bool) -> dt.date | None:
    whole = math.floor(serial)
    try:
        if date1904:
            return dt.date(1904, 1, 1) + dt.timedelta(days=whole)
        if whole == 60:
            return None     # Lotus' 1900-02-29, a day that never was
        if whole < 60:
            return dt.date(1899, 12, 31) + dt.timedelta(days=whole)
        return dt.date(1899, 12, 30) + dt.timedelta(days=whole)
    except OverflowError:
        return None


_TIME_SUFFIX = r"(?:(?:\s+|T)\d{1,2}(?::\d{1,2}){1,2}(?:\.\d+)?)?"
_DATE_FORMS = (
    re.compile(r"^(\d{4})\s*([-/.])\s*(\d{1,2})\s*\2\s*(\d{1,2})" + _TIME_SUFFIX + r"$"),
    re.compile(r"^(\d{4})\s*(年)\s*(\d{1,2})\s*月\s*(\d{1,2})\s*[日号]?" + _TIME_SUFFIX + r"$"),
    re.compile(r"^(\d{4})()(\d{2})(\d{2})$"),
)


def parse_date(value: Any, date1904: bool = False) -> tuple[dt.date | None, str | None]:
    """(date, None) or (None, the Chinese reason). Accepts date/datetime cells, Excel serial
    numbers (1900 or 1904 system), 20261103 as a number or text, and the written forms
    2026-11-03, 2026/11/3, 2026.11.03 and 2026年11月3日 (a time after any of them is ignored)."""
    if isinstance(value, dt.datetime):
        return _in_range(value.date())
    if isinstance(value, dt.date):
        return _in_range(value)
    if isinstance(value, (dt.time, dt.timedelta)):
        return None, f"'{_text(value)}'是时间，不是日期"
    if isinstance(value, bool):
        return None, f"'{_text(value)}'不是日期"
    if isinstance(value, (int, float)):
        return _number_to_date(value, date1904)
    text = unicodedata.normalize("NFKC", _text(value))
    for form in _DATE_FORMS:
        m = form.match(text)
        if m:
            return _make_date(int(m.group(1)), int(m.group(3)), int(m.group(4)), _text(value))
    return None, f"'{_text(value)}'不是有效日期；请按'2026-11-03'或'2026/11/3'的格式填写"


def _number_to_date(value: float, date1904: bool) -> tuple[dt.date | None, str | None]:
    if float(value).is_integer() and 19000101 <= value <= 21001231:
        n = int(value)
        return _make_date(n // 10000, n // 100 % 100, n % 100, str(n))
    if 1 <= value < 2958466:
        day = _serial_to_date(value, date1904)
        if day is not None:
            return _in_range(day, _text(value))
    return None, f"'{_text(value)}'不是有效日期"


def _make_date(year: int, month: int, day: int, shown: str) -> tuple[dt.date | None, str | None]:
    if not 1 <= month <= 12:
        return None, f"'{shown}'不是有效日期（没有{month}月）"
    try:
        return _in_range(dt.date(year, month, day), shown)
    except ValueError:
        return None, f"'{shown}'不是有效日期（{month_label(year, month)}没有{day}日）"


def _in_range(day: dt.date, shown: str | None = None) -> tuple[dt.date | None, str | None]:
    if _MIN_YEAR <= day.year <= _MAX_YEAR:
        return day, None
    return None, f"'{shown or day.isoformat()}'的年份{day.year}不合理，请检查日期"


_MONTH_FORMS = (
    re.compile(r"^(\d{4})\s*(?:年|[-/.])\s*(\d{1,2})\s*月?(?:份)?$"),
    re.compile(r"^(\d{4})(\d{2})$"),
)


def parse_month(value: Any, date1904: bool = False) -> str | None:
    """'YYYY-MM' from '2026年10月', '2026-10', '2026.10', '202610', or a date cell; else None."""
    if isinstance(value, (dt.date, int, float)) and not isinstance(value, bool):
        day, _ = parse_date(value, date1904)
        if day is not None:
            return f"{day.year:04d}-{day.month:02d}"
        if not isinstance(value, (int, float)):
            return None
    text = unicodedata.normalize("NFKC", _text(value))
    for form in _MONTH_FORMS:
        m = form.match(text)
        if m and 1 <= int(m.group(2)) <= 12:
            return f"{int(m.group(1)):04d}-{int(m.group(2)):02d}"
    day, _ = parse_date(text)
    return f"{day.year:04d}-{day.month:02d}" if day else None


_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$")
_GROUPED = re.compile(r"^[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_WITH_UNIT = re.compile(r"^([+-]?[\d,]*\.?\d+)\s*(亿元|万元|元|亿|万)$")
_UNIT_FACTOR = {"元": 1, "万": 10_000, "万元": 10_000, "亿": 100_000_000, "亿元": 100_000_000}


@functools.lru_cache(maxsize=1024)
def _column_unit(name: str) -> str | None:
    key = normalize_header(name)
    for unit in ("万元", "亿元", "元"):
        if f"({unit})" in key or key.endswith(unit):
            return unit
    return None


def parse_number(value: Any, unit: str | None = None) -> tuple[int | float | None, str | None]:
    """(number, None) or (None, the Chinese reason). '1,234.5' and full-width digits are read;
    a unit written into the cell ('12万', '2000元') is refused with the figure it should be in
    the column's unit, since a 万元 column holding '12万' is a guess we must not make."""
    if isinstance(value, bool):
        return None, f"'{_text(value)}'不是数字"
    if isinstance(value, (int, float)):
        return value, None
    if isinstance(value, (dt.date, dt.time, dt.timedelta)):
        return None, f"'{_text(value)}'是日期或时间，不是数字"
    shown = _text(value)
    text = "".join(unicodedata.normalize("NFKC", shown).split())
    if _GROUPED.match(text):
        text = text.replace(",", "")
    if _NUMBER.match(text):
        number = float(text)
        return (int(number) if number.is_integer() and "." not in text else number), None
    m = _WITH_UNIT.match(text)
    if m:
        return None, _unit_advice(shown, m.group(1).replace(",", ""), m.group(2), unit)
    return None, f"'{shown}'不是数字；请只填写数字"


def _unit_advice(shown: str, figure: str, written: str, unit: str | None) -> str:
    if unit is None:
        return f"'{shown}'不是数字；请去掉单位'{written}'，只填写数字"
    try:
        converted = float(figure) * _UNIT_FACTOR[written] / _UNIT_FACTOR[unit]
    except (ValueError, KeyError):
        return f"'{shown}'不是数字；本列单位为{unit}，请只填写数字"
    return (f"'{shown}'不是数字；本列单位为{unit}，请只填写数字，"
            f"{figure}{written}应填{_plain(converted)}")


def _plain(number: float) -> str:
    text = f"{number:.6f}".rstrip("0").rstrip(".")
    return text or "0"


# ---------------------------------------------------------------- the cover sheet

@dataclass(frozen=True)
class CoverValue:
    """A cover field as found: the value (typed as read), its cell and its label's cell."""
    value: Any
    cell: str
    label_cell: str = ""


def _cover_table(wb: Workbook, cover: CoverSpec) -> Table | None:
    keys = {normalize_header(cover.name), *map(normalize_header, cover.aliases)}
    for table in wb.tables:
        if normalize_header(table.name) in keys:
            return table
    # no sheet by that name: a first sheet carrying most labels is the cover (only the first,
    # since a ledger's header row may well hold '联系人' and '联系电话' side by side)
    if wb.tables and cover.fields:
        labels = len(_find_labels(wb.tables[0], cover))
        if labels >= 2 and labels * 2 >= len(cover.fields):
            return wb.tables[0]
    return None


def _label_keys(cover: CoverSpec) -> dict[str, str]:
    keys = {}
    for f in cover.fields:
        for label in (f.name, *f.aliases):
            keys[normalize_header(label).rstrip(":")] = f.name
    return keys


def _find_labels(table: Table, cover: CoverSpec) -> dict[str, tuple[int, int, str]]:
    """field name -> (row, col, text after the label in the same cell)."""
    keys = _label_keys(cover)
    found: dict[str, tuple[int, int, str]] = {}
    for r, row in enumerate(table.rows):
        for c, value in enumerate(row):
            if not isinstance(value, str):
                continue
            text = unicodedata.normalize("NFKC", value).strip()
            label, sep, rest = text.partition(":")
            key = normalize_header(label) if sep else normalize_header(text).rstrip(":")
            name = keys.get(key)
            if name and name not in found:
                found[name] = (r, c, rest.strip() if sep else "")
    return found


def read_cover(wb: Workbook, cover: CoverSpec) -> dict[str, CoverValue]:
    """The cover's fields that have a value: a label ('报送科室', '报送科室：') with its value in
    the same cell after the colon, or in the next filled cell to its right, or below it."""
    table = _cover_table(wb, cover)
    if table is None:
        return {}
    labels = _find_labels(table, cover)
    label_cells = {(r, c) for r, c, _ in labels.values()}
    out: dict[str, CoverValue] = {}
    for name, (r, c, inline) in labels.items():
        if inline:
            out[name] = CoverValue(inline, cell_name(r, c), cell_name(r, c))
            continue
        hit = _value_beside(table, r, c, label_cells)
        if hit:
            (vr, vc), value = hit
            out[name] = CoverValue(value, cell_name(vr, vc), cell_name(r, c))
    return out


def _value_beside(table: Table, r: int, c: int, labels: set[tuple[int, int]]):
    row = table.rows[r]
    for cc in range(c + 1, len(row)):
        if (r, cc) in labels:
            break
        if _text(row[cc]):
            return (r, cc), row[cc]
    for rr in range(r + 1, min(r + 3, len(table.rows))):
        if (rr, c) in labels:
            break
        value = table.rows[rr][c] if c < len(table.rows[rr]) else None
        if _text(value):
            return (rr, c), value
    return None


def check_cover(wb: Workbook, cover: CoverSpec) -> tuple[dict[str, Any], tuple[Problem, ...]]:
    """The cover's normalised values and its problems: a missing cover sheet is a warning (the
    mail and the ledger sheets may still say who and when), a missing or malformed required
    field on a present cover is an error."""
    table = _cover_table(wb, cover)
    if table is None:
        names = "、".join([cover.name, *cover.aliases])
        return {}, (Problem("missing-cover", f"未找到封面工作表（'{names}'），无法从封面读取报送科室和月份",
                            Severity.WARNING, sheet=None),)
    found = read_cover(wb, cover)
    labels = _find_labels(table, cover)
    values: dict[str, Any] = {}
    problems: list[Problem] = []
    for f in cover.fields:
        hit = found.get(f.name)
        if hit is None:
            if f.required:
                where = labels.get(f.name)
                problems.append(_cover_missing(table.name, f, where))
            continue
        norm, issues = _check_value(hit.value, f, wb.date1904)
        row = int(re.sub(r"\D", "", hit.cell))
        for code, text, severity in issues:
            problems.append(Problem(code, f"工作表'{table.name}'第{row}行'{f.name}'({hit.cell}): {text}",
                                    severity, sheet=table.name, row=row, column=f.name, cell=hit.cell))
        if norm is not None:
            values[f.name] = norm
    return values, tuple(problems)


def _cover_missing(sheet: str, f: Column, where: tuple[int, int, str] | None) -> Problem:
    if where is None:
        return Problem("missing-cover-value", f"工作表'{sheet}'中找不到'{f.name}'一栏；请按模板填写封面",
                       Severity.ERROR, sheet=sheet, column=f.name)
    r, c, _ = where
    cell = cell_name(r, c + 1)
    return Problem("missing-cover-value", f"工作表'{sheet}'第{r + 1}行'{f.name}'({cell}): 封面的'{f.name}'未填写",
                   Severity.ERROR, sheet=sheet, row=r + 1, column=f.name, cell=cell)


# ---------------------------------------------------------------- finding the task sheets

@dataclass(frozen=True)
class SheetMatch:
    """Which template sheet a table is, and where its header and columns are.

    how: "sheet-name" | "sheet-alias" | "header". header_row is the 0-based index of the
    (last) header row in table.rows, None if no header was found (check_sheet then reports
    missing-header). date1904 travels with the match so check_sheet reads serial dates right
    without being told.
    """
    table: str
    spec: SheetSpec
    header_row: int | None
    columns: dict[str, int] = field(default_factory=dict)
    how: str = "sheet-name"
    missing: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()
    numbering: int | None = None       # the 序号 column, ignored when telling blank rows
    date1904: bool = False
    # headers read as a template column they are not written as: (row, cell, header, column, by synonym)
    read_as: tuple[tuple[int, str, str, str, bool], ...] = ()
    # a missing column -> (cell, header) of the unknown header cell most like it
    closest: dict[str, tuple[str, str]] = field(default_factory=dict)


_KEYS_BY_ID: dict[int, tuple[SheetSpec, Mapping[str, str]]] = {}


def _column_keys(spec: SheetSpec) -> Mapping[str, str]:
    """_keys_of(spec), found by the spec's identity first: a header is looked for with each spec
    of the rules on every sheet, and a frozen dataclass hashes all its fields every time."""
    hit = _KEYS_BY_ID.get(id(spec))
    if hit is not None and hit[0] is spec:      # the spec is held here, so its id is not reused
        return hit[1]
    keys = _keys_of(spec)
    if len(_KEYS_BY_ID) >= 256:
        _KEYS_BY_ID.clear()
    _KEYS_BY_ID[id(spec)] = (spec, keys)
    return keys


@functools.lru_cache(maxsize=256)
def _keys_of(spec: SheetSpec) -> Mapping[str, str]:
    """normalised header -> column name, for its name, aliases and synonyms; a trailing '(…)' may be
    left out or added, and punctuation may differ, when that still names one column only
    ('决定日期(YYYY/MM/DD)' is '决定日期', '监管领域:' is '监管领域')."""
    exact: dict[str, str] = {}
    for col in spec.columns:
        for label in (col.name, *col.aliases, *col.synonyms):
            exact.setdefault(normalize_header(label), col.name)
    keys = dict(exact)
    for loosen in (_strip_note, _bare):
        loose: dict[str, set[str]] = {}
        for key, name in exact.items():
            loose.setdefault(loosen(key), set()).add(name)
        for key, names in loose.items():
            if len(names) == 1:
                keys.setdefault(key, next(iter(names)))
    return types.MappingProxyType(keys)       # cached and shared: read-only


@functools.lru_cache(maxsize=65536)
def _strip_note(key: str) -> str:
    return re.sub(r"\([^()]*\)$", "", key) or key


@functools.lru_cache(maxsize=65536)      # a header is read against every spec: the same strings again and again
def _bare(key: str) -> str:
    """A normalised header without punctuation or symbols ('监管领域:' and '监管·领域' are '监管领域')."""
    return "".join(ch for ch in key if not unicodedata.category(ch).startswith(("P", "S"))) or key


def _column_of(key: str, keys: dict[str, str]) -> str | None:
    return keys.get(key) or keys.get(_strip_note(key)) or keys.get(_bare(key))


_LITERAL_MARKS = re.compile(r"^[*＊]+|[*＊]+$|[(（](?:必填|必填项|选填|非必填|可选)[)）]$")
_LITERAL_NOTE = re.compile(r"\([^()（）]*\)$|（[^()（）]*）$")   # brackets of one width: mixed ones are a retyping


def _read_as(value: Any, col: Column) -> tuple[str, bool] | None:
    """(the header as written, by synonym) when a matched header is not written as the column's name
    or one of its aliases: the sender is told it was read as that column. A line break in the cell,
    a required mark ('*', '（必填）') or a trailing note ('（YYYY/MM/DD）') are the template's own
    ways and pass silently."""
    written = _text(value).translate(_INVISIBLE).replace("\r", "").replace("\n", "")
    unmarked = _LITERAL_MARKS.sub("", written)
    labels = {col.name, *col.aliases}
    if {written, unmarked, _LITERAL_NOTE.sub("", unmarked)} & labels:
        return None
    key = normalize_header(value)
    by_name = {k for label in labels for k in (normalize_header(label), _bare(normalize_header(label)))}
    synonym = not ({key, _strip_note(key), _bare(key)} & by_name)
    return written, synonym


def _header_hits(row: tuple, keys: dict[str, str], used: set[str] = frozenset(),
                 taken: set[int] = frozenset()) -> dict[str, int]:
    hits: dict[str, int] = {}
    for c, value in enumerate(row):
        if c in taken or value is None:
            continue
        name = _column_of(normalize_header(value), keys)
        if name and name not in hits and name not in used:
            hits[name] = c
    return hits


def _find_header(table: Table, spec: SheetSpec) -> tuple[int, dict[str, int], tuple[int, ...], dict[str, int]] | None:
    """(last header row, column name -> index, header rows, column name -> its header row) for the
    row among the first ones naming most of the spec's columns, joined by the row below or above
    when the template has two header rows (a merged '行政相对人代码' over '统一社会信用代码', '工商注册号' …)."""
    keys = _column_keys(spec)
    scan = table.rows[:HEADER_SCAN_ROWS]
    best_row, best = None, {}
    for r, row in enumerate(scan):
        hits = _header_hits(row, keys)
        if len(hits) > len(best):
            best_row, best = r, hits
    if best_row is None:
        return None
    columns, rows = dict(best), [best_row]
    row_of = dict.fromkeys(best, best_row)
    for other in (best_row + 1, best_row - 1):
        if 0 <= other < min(len(table.rows), HEADER_SCAN_ROWS + 1):
            more = _header_hits(table.rows[other], keys, set(columns), set(columns.values()))
            if more:
                columns.update(more)
                row_of.update(dict.fromkeys(more, other))
                rows.append(other)
    return max(rows), columns, tuple(sorted(rows)), row_of


def _numbering_column(table: Table, header_rows: Sequence[int]) -> int | None:
    for r in header_rows:
        for c, value in enumerate(table.rows[r]):
            if normalize_header(value) in ("序号", "编号", "no.", "no"):
                return c
    return None


def _extra_cells(table: Table, header_rows: Sequence[int], columns: dict[str, int]) -> list[tuple[int, int, str]]:
    """(row, column, text) of each header cell that names no template column."""
    used = set(columns.values())
    return [(r, c, _text(value)) for r in header_rows for c, value in enumerate(table.rows[r])
            if c not in used and _text(value)]


def _extra_headers(cells: Sequence[tuple[int, int, str]]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(text for _, _, text in cells))


# How alike an unknown header and a missing column must be (difflib's ratio, with a bonus for
# standing where the template puts the column) before the sender is told one is likely the other.
_CLOSE_ENOUGH = 0.3
_IN_PLACE = 0.3


def _closest(spec: SheetSpec, missing: Sequence[str], columns: dict[str, int],
             cells: Sequence[tuple[int, int, str]]) -> dict[str, tuple[str, str]]:
    """Each missing column paired with the unknown header cell most like it (each cell used once):
    alike in writing, or standing between the template's neighbours of that column."""
    order = [c.name for c in spec.columns]
    scored = []
    for name in missing:
        col = spec.column(name)
        labels = [normalize_header(x) for x in (name, *col.aliases, *col.synonyms)]
        i = order.index(name)
        left = next((columns[n] for n in reversed(order[:i]) if n in columns), None)
        right = next((columns[n] for n in order[i + 1:] if n in columns), None)
        for r, c, text in cells:
            key = normalize_header(text)
            ratio = max(difflib.SequenceMatcher(None, key, label).ratio() for label in labels)
            in_place = (left is None or left < c) and (right is None or c < right) and (left, right) != (None, None)
            scored.append((ratio + (_IN_PLACE if in_place else 0), name, (r, c, text)))
    paired: dict[str, tuple[str, str]] = {}
    taken: set[tuple[int, int]] = set()
    for score, name, (r, c, text) in sorted(scored, key=lambda x: -x[0]):
        if score >= _CLOSE_ENOUGH and name not in paired and (r, c) not in taken:
            paired[name] = (cell_name(r, c), text)
            taken.add((r, c))
    return paired


_MATCHES: dict[tuple, tuple[SheetSpec, SheetMatch]] = {}


def _match(table: Table, spec: SheetSpec, how: str) -> SheetMatch:
    """_header_match, remembered for a table no longer than the rows it reads (the table's name and
    first rows): a cover and the blank ledgers come again and again in the sections' workbooks; a
    filled ledger's first rows hold its data, and a new message brings new data."""
    if len(table.rows) > HEADER_SCAN_ROWS + 1:
        return _header_match(table, spec, how)
    try:
        key = (id(spec), how, table.name, table.rows)
        hit = _MATCHES.get(key)
    except TypeError:               # an unhashable cell: no reader gives one
        return _header_match(table, spec, how)
    if hit is not None and hit[0] is spec:      # the spec is held here, so its id is not reused
        return hit[1]
    m = _header_match(table, spec, how)
    if len(_MATCHES) >= 1024:
        _MATCHES.clear()
    _MATCHES[key] = (spec, m)
    return m


def _header_match(table: Table, spec: SheetSpec, how: str) -> SheetMatch:
    found = _find_header(table, spec)
    if found is None:
        return SheetMatch(table.name, spec, None, {}, how, tuple(c.name for c in spec.columns), ())
    header_row, columns, rows, row_of = found
    missing = tuple(c.name for c in spec.columns if c.name not in columns)
    cells = _extra_cells(table, rows, columns)
    read_as = []
    for col in spec.columns:
        if col.name in columns:
            r, c = row_of[col.name], columns[col.name]
            if said := _read_as(table.rows[r][c], col):
                read_as.append((r + 1, cell_name(r, c), said[0], col.name, said[1]))
    return SheetMatch(table.name, spec, header_row, columns, how, missing, _extra_headers(cells),
                      _numbering_column(table, rows), read_as=tuple(read_as),
                      closest=_closest(spec, missing, columns, cells))


def _by_header(table: Table, specs: Sequence[SheetSpec]) -> SheetMatch | None:
    """The spec whose columns this table's header names best, if it names at least half of
    them (and two): a cover or instructions sheet names none."""
    best: SheetMatch | None = None
    # a header is one row joined by the rows above and below it, among the first rows: it can
    # name no more columns than three times the most cells one of those rows holds
    widest = max((sum(v is not None for v in row) for row in table.rows[:HEADER_SCAN_ROWS + 1]), default=0)
    for spec in specs:
        if not spec.columns:
            continue
        if 3 * widest < max(min(2, len(spec.columns)), -(-len(spec.columns) // 2)):
            continue                # could not name enough of its columns (below)
        m = _match(table, spec, "header")
        found = len(m.columns)
        if found < min(2, len(spec.columns)) or found * 2 < len(spec.columns):
            continue
        if best is None or found > len(best.columns):
            best = m
    return best


def match_sheets(wb: Workbook, specs: Sequence[SheetSpec]) -> list[SheetMatch]:
    """The task sheets among the tables, in workbook order: by sheet name, then alias, then
    header row. Tables that are no task sheet (a cover, instructions) are left out; see
    unmatched_sheets()."""
    names = {normalize_header(s.name): s for s in specs}
    aliases = {normalize_header(a): s for s in specs for a in s.aliases}
    out = []
    for table in wb.tables:
        key = normalize_header(table.name)
        if key in names:
            m = _match(table, names[key], "sheet-name")
        elif key in aliases:
            m = _match(table, aliases[key], "sheet-alias")
        else:
            m = _by_header(table, specs)
        if m is not None:
            out.append(replace(m, date1904=wb.date1904))
    return out


def unmatched_sheets(wb: Workbook, matches: Sequence[SheetMatch]) -> tuple[str, ...]:
    """The names of the tables no template sheet was found in (not an error by itself)."""
    taken = {m.table for m in matches}
    return tuple(t.name for t in wb.tables if t.name not in taken)


# ---------------------------------------------------------------- checking one sheet

@dataclass(frozen=True)
class SheetReport:
    """A task sheet's verdict: its problems in row/column order (capped), the number of data
    rows, and the rows without errors as {column name: normalised value}."""
    sheet: str
    problems: tuple[Problem, ...]
    rows: int
    data: tuple[dict[str, Any], ...] = ()

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.is_error)


_NA = {"无", "/", "-", "—", "——", "－", "不适用", "n/a", "na", "null", "空"}
_TYPED = {"date", "number", "integer", "credit_code", "phone", "month"}
_FOOTERS = ("合计", "总计", "填表说明", "填报说明", "注:", "说明:", "备注:", "填表人", "填报人", "审核人",
            "制表人", "负责人", "单位负责人", "以下空白", "以下无", "此页无正文")
_SKIPPED = ("小计",)


def _cell_problem(code: str, sheet: str, r: int, col: str, c: int, text: str,
                  severity: Severity = Severity.ERROR, hint: str | None = None) -> Problem:
    cell = cell_name(r, c)
    return Problem(code, f"工作表'{sheet}'第{r + 1}行'{col}'({cell}): {text}", severity,
                   sheet=sheet, row=r + 1, column=col, cell=cell, hint=hint)


def _check_value(raw: Any, col: Column, date1904: bool) -> tuple[Any, list[tuple[str, str, Severity]]]:
    """(normalised value, issues) for one non-empty cell."""
    kind = col.type
    if kind == "date":
        day, why = parse_date(raw, date1904)
        return day, ([("bad-date", why, Severity.ERROR)] if why else [])
    if kind == "month":
        month = parse_month(raw, date1904)
        return month, ([] if month else [("bad-date", f"'{_text(raw)}'不是有效月份；请按'2026年10月'填写", Severity.ERROR)])
    if kind in ("number", "integer"):
        return _check_number(raw, col)
    if kind == "enum":
        return _check_choice(raw, col)
    if kind == "credit_code":
        return _check_code(raw)
    if kind == "phone":
        return _check_phone(raw)
    return _text(raw), []


def _check_number(raw: Any, col: Column):
    number, why = parse_number(raw, _column_unit(col.name))
    if why:
        return None, [("bad-number", why, Severity.ERROR)]
    if col.type == "integer":
        if isinstance(number, float) and not number.is_integer():
            return None, [("bad-integer", f"'{_text(raw)}'不是整数", Severity.ERROR)]
        number = int(number)
    for bound, worse, word in ((col.minimum, lambda a, b: a < b, "小于最小值"), (col.maximum, lambda a, b: a > b, "大于最大值")):
        if bound is not None and worse(number, bound):
            return None, [("out-of-range", f"'{_text(raw)}'{word}{_plain(bound)}", Severity.ERROR)]
    return number, []


@functools.lru_cache(maxsize=1024)
def _choice_keys(choices: tuple[str, ...]) -> dict[str, str]:
    return {normalize_header(c): c for c in reversed(choices)}


def _check_choice(raw: Any, col: Column):
    choice = _choice_keys(col.choices).get(normalize_header(raw))
    if choice is not None:
        return choice, []
    allowed = "、".join(col.choices)
    return None, [("bad-choice", f"'{_text(raw)}'不是允许的取值；应为以下之一：{allowed}", Severity.ERROR)]


def _check_code(raw: Any):
    if isinstance(raw, float) and raw >= 1e15:
        return None, [("bad-credit-code",
                       f"统一社会信用代码以数字格式保存，Excel只保留15位有效数字，后几位已丢失（读到'{raw:.0f}'）；"
                       "请将该列设为'文本'格式后重新填写", Severity.ERROR)]
    result = check_credit_code(_text(raw))
    return (result.normalized if result.ok else None), list(result.problems)


_PHONE_SPLIT = re.compile(r"[/、,;，；]|或")
_PHONE_EXT = re.compile(r"转|分机|ext\.?|x", re.I)
_PHONE_NOISE = re.compile(r"[\s\-()（）+.—－]")


def _check_phone(raw: Any):
    text = unicodedata.normalize("NFKC", _text(raw))
    for part in filter(None, (p.strip() for p in _PHONE_SPLIT.split(text))):
        digits = _PHONE_NOISE.sub("", _PHONE_EXT.split(part)[0])
        if digits.startswith("86") and len(digits) > 12:
            digits = digits[2:]
        if not digits.isdigit() or not 7 <= len(digits) <= 12:
            return None, [("bad-phone", f"'{_text(raw)}'不是有效的电话号码；请填写手机号或带区号的座机号（如0531-12345678）",
                           Severity.ERROR)]
    return text, []


_SPACES = " \t\r\n\u3000\xa0\u200b\ufeff"
_NO_ISSUES: tuple = ()
# cells whose text is never empty, never 无/不适用 and never a footer's word: numbers, dates, times
_SOLID = frozenset({int, float, bool, dt.date, dt.datetime, dt.time, dt.timedelta})


def _cell_text(value: Any) -> str:
    # _text, with the common cases inline and the rest cached: this runs for every cell of every
    # ledger, and a ledger's dates and figures repeat
    if type(value) is str:
        return value.strip(_SPACES)
    if value is None:
        return ""
    try:
        return _value_text(value)
    except TypeError:           # not hashable: no reader gives such a cell, but no cell may crash this
        return _text(value)


@functools.lru_cache(maxsize=4096, typed=True)
def _value_text(value: Any) -> str:
    return _text(value)


_Checker = Callable[[Any, "str | None", bool], tuple[Any, Sequence[tuple[str, str, Severity]]]]


@functools.lru_cache(maxsize=512)
def _checker(col: Column) -> _Checker:
    """The judgement on one non-empty cell of `col`, chosen once per column instead of per cell:
    (raw value, its text or None for a _SOLID value, date1904) -> (normalised value, issues).
    The values a ledger is made of take a short way; anything else, and every value with an
    issue, goes through _check_value, which words the issue."""
    kind = col.type
    if kind == "text":
        return lambda raw, text, date1904: (_cell_text(raw) if text is None else text, _NO_ISSUES)
    if kind == "enum":
        keys = _choice_keys(col.choices)
        seen: dict[str, Any] = {}          # a ledger's enum cells repeat a few words

        def choice(raw, text, date1904):
            if type(raw) is str and (hit := seen.get(raw)) is not None:
                return hit, _NO_ISSUES
            hit = keys.get(normalize_header(raw))
            if hit is None:
                return _check_choice(raw, col)
            if type(raw) is str and len(seen) < 1024:
                seen[raw] = hit
            return hit, _NO_ISSUES
        return choice
    if kind == "credit_code":
        def code(raw, text, date1904):
            if type(raw) is not str:
                return _check_code(raw)
            result = check_credit_code(text)       # text is _text(raw): the cell, trimmed
            return (result.normalized if result.ok else None), result.problems
        return code
    if kind == "date":
        def date(raw, text, date1904):
            t = type(raw)
            day = raw if t is dt.date else raw.date() if t is dt.datetime else None
            if day is not None and _MIN_YEAR <= day.year <= _MAX_YEAR:
                return day, _NO_ISSUES
            return _check_value(raw, col, date1904)
        return date
    if kind in ("number", "integer"):
        whole, low, high = kind == "integer", col.minimum, col.maximum

        def number(raw, text, date1904):
            t = type(raw)
            if t is int or (t is float and not whole):
                value = raw
            elif t is float and raw.is_integer():
                value = int(raw)
            else:
                return _check_number(raw, col)
            if (low is not None and value < low) or (high is not None and value > high):
                return _check_number(raw, col)
            return value, _NO_ISSUES
        return number
    return lambda raw, text, date1904: _check_value(raw, col, date1904)


@dataclass(frozen=True)
class _Plan:
    """A matched sheet's row checks, compiled once per sheet: each template column found, with its
    cell index, whether an 无/不适用 counts as empty there, and its checker."""
    # (column name, cell index, typed, checker (None: text, kept as it is), whether a value there
    # makes a data row: all but the 序号's, column, quick: _DATE_CELL or _INT_CELL where a date cell
    # or an int cell is judged in _check_row itself, bounds (minimum, maximum) for an _INT_CELL)
    cells: tuple[tuple[str, int, bool, Callable | None, bool, Column, int, tuple], ...]
    left: int                         # footers (合计, 填表人…) are looked for up to one column right of this
    whole: bool                       # every column of the template found: a row's values are its data row


_DATE_CELL, _INT_CELL = 1, 2


def _plan(match: SheetMatch) -> _Plan:
    numbering = match.numbering
    # a column found twice under one index is one cell: the data test only asks whether any is filled
    cells = tuple((col.name, c, col.type in _TYPED, None if col.type == "text" else _checker(col), c != numbering, col,
                   _DATE_CELL if col.type == "date" else _INT_CELL if col.type in ("number", "integer") else 0,
                   (col.minimum, col.maximum))
                  for col in match.spec.columns if (c := match.columns.get(col.name)) is not None)
    left = min([*match.columns.values(), *([numbering] if numbering is not None else [])], default=0)
    return _Plan(cells, left, len(cells) == len(match.spec.columns))


_FOOTER, _NOT_DATA, _MAYBE_DATA = "footer", "not data", "maybe data"


def _row_start(row: tuple, plan: _Plan) -> str:
    """_FOOTER where the row's first filled cell, in the first columns, starts a footer (合计,
    填表说明, 填表人…: the ledger ends here), _NOT_DATA for an empty row or a 小计 line, else
    _MAYBE_DATA (whether the template's columns hold anything is for _check_row to see)."""
    for c, value in enumerate(row):
        if value is None:
            continue
        if type(value) in _SOLID:
            return _MAYBE_DATA                     # a number or a date: no footer's word
        text = _cell_text(value)
        if not text:
            continue
        if c <= plan.left + 1:
            key = normalize_header(text)
            if key.startswith(_FOOTERS):
                return _FOOTER
            if key.startswith(_SKIPPED):
                return _NOT_DATA
        return _MAYBE_DATA
    return _NOT_DATA


@dataclass
class _Row:
    index: int
    values: dict[str, Any]
    problems: list[tuple[tuple[int, int], Problem]]


def _check_row(r: int, row: tuple, plan: _Plan, sheet: str, date1904: bool) -> _Row | str:
    """The row's values and problems; or _FOOTER, or _NOT_DATA for a row with nothing in the
    template's columns but a 序号 (or nothing at all, or a 小计 line)."""
    if not row or type(row[0]) not in _SOLID:     # a row starting with its 序号 or a date needs no look
        start = _row_start(row, plan)
        if start is not _MAYBE_DATA:
            return start
    n = len(row)
    values: dict[str, Any] = {}
    problems: list[tuple[tuple[int, int], Problem]] = []
    empty: list[tuple[Column, int]] = []           # read once: the required checks below need them
    data = False
    for name, c, typed, check, fills, col, quick, (low, high) in plan.cells:
        raw = row[c] if c < n else None
        t = type(raw)
        if t is str:
            text = raw.strip(_SPACES)
        elif t in _SOLID:
            # a date in range, a whole number within bounds: the checker's own short way, inline
            if (quick == _DATE_CELL and t is dt.date and _MIN_YEAR <= raw.year <= _MAX_YEAR) or (
                    quick == _INT_CELL and t is int and (low is None or raw >= low) and (high is None or raw <= high)):
                values[name] = raw
                data = data or fills
                continue
            text = None                            # not empty; worked out only where needed
        else:
            text = _cell_text(raw)
        if text == "":
            values[name] = None
            empty.append((col, c))
            continue
        data = data or fills
        if check is None:                          # text: as written, trimmed
            values[name] = _cell_text(raw) if text is None else text
            continue
        if typed and text is not None and len(text) <= 6 and normalize_header(text) in _NA:
            values[name] = None
            empty.append((col, c))
            continue
        value, issues = check(raw, text, date1904)
        values[name] = value
        if issues:
            for code, message, severity in issues:
                problems.append(((r, c), _cell_problem(code, sheet, r, name, c, message, severity)))
    if not data:
        return _NOT_DATA
    for col, c in empty:
        why = _required_because(col, values)
        if why is not None:
            raw = _text(row[c]) if c < n else ""
            said = f"，填写的'{raw}'不算" if raw else ""
            problems.append(((r, c), _cell_problem("missing-value", sheet, r, col.name, c, why + said)))
    return _Row(r, values, problems)


def _required_because(col: Column, values: dict[str, Any]) -> str | None:
    if col.required:
        return "必填项未填写"
    if col.required_if:
        other, triggers = col.required_if
        have = values.get(other)
        if have is not None and normalize_header(_text(have)) in _trigger_keys(triggers):
            return f"'{other}'为'{_text(have)}'时必填，但未填写"
    return None


@functools.lru_cache(maxsize=256)
def _trigger_keys(triggers: tuple[str, ...]) -> frozenset[str]:
    return frozenset(normalize_header(t) for t in triggers)


# ---------------------------------------------------------------- row checks (deadlines)

def _verb(column: str) -> str:
    return re.sub(r"(日期|时间|日)$", "", column) or column


class _Template(dict):
    def __missing__(self, key):
        raise KeyError(key)


def _row_check_text(rc: RowCheck, default: str, **fields: Any) -> tuple[str, str | None]:
    """(message, hint): a rule message with {placeholders} replaces the default sentence; a
    plain one (the plan's reason, e.g. '应自作出行政决定之日起7个工作日内上传') becomes the hint,
    so the dates and the due day are never lost."""
    if not rc.message:
        return default, None
    if "{" not in rc.message:
        return default, rc.message
    try:
        return string.Formatter().vformat(rc.message, (), _Template(fields)), None
    except (KeyError, IndexError, ValueError):
        return default, None


def _row_check_holds(rc: RowCheck, earlier: dt.date, later: dt.date, workdays_between: Callable) -> bool:
    """Whether the row meets the rule (most rows do: their problem is worded only where not)."""
    if rc.kind == "within_working_days":
        return workdays_between(earlier, later) <= rc.limit
    if rc.kind == "within_hours":
        return (later - earlier).days <= math.ceil(rc.limit / 24)
    if rc.kind == "not_before":
        return later >= earlier
    raise ValueError(f"unknown row check kind {rc.kind!r}")


def _run_row_check(rc: RowCheck, row: _Row, match: SheetMatch, calendar: WorkCalendar,
                   workdays_between: Callable | None = None) -> Problem | None:
    earlier, later = row.values.get(rc.earlier), row.values.get(rc.later)
    if not isinstance(earlier, dt.date) or not isinstance(later, dt.date):
        return None   # missing or not a date: already reported where it matters
    if _row_check_holds(rc, earlier, later, workdays_between or calendar.workdays_between):
        return None
    c = match.columns[rc.later]
    tail = f"，计入{rc.counts_against}" if rc.counts_against else ""
    said = f"{rc.earlier}{earlier.isoformat()}，{rc.later}{later.isoformat()}"
    fields = dict(earlier=rc.earlier, later=rc.later, earlier_date=earlier.isoformat(),
                  later_date=later.isoformat(), limit=rc.limit, counts_against=rc.counts_against or "")
    if rc.kind == "within_working_days":
        due = calendar.add_workdays(earlier, rc.limit)
        guess = calendar.provisional_years(earlier, later)
        # a year without the State Council's schedule is counted on the holiday rules alone: say so
        note = f"；{provisional_words(guess)}" if guess else ""
        text = f"{said}，超过{rc.limit}个工作日（应于{due.isoformat()}前{_verb(rc.later)}{note}）{tail}"
        fields.update(due=due.isoformat(), days=calendar.workdays_between(earlier, later))
    elif rc.kind == "within_hours":
        days = math.ceil(rc.limit / 24)
        due = earlier + dt.timedelta(days=days)
        text = f"{said}，超过{rc.limit}小时（按日期计应不晚于{due.isoformat()}）{tail}"
        fields.update(due=due.isoformat(), days=(later - earlier).days)
    else:   # not_before
        text = f"{said}，{rc.later}早于{rc.earlier}{tail}"
        fields.update(due=earlier.isoformat(), days=(later - earlier).days)
    message, hint = _row_check_text(rc, text, **fields)
    return _cell_problem(rc.code, match.table, row.index, rc.later, c, message, rc.severity, hint)


# ---------------------------------------------------------------- the sheet

def check_sheet(match: SheetMatch, table: Table, calendar: WorkCalendar, *, date1904: bool | None = None,
                max_problems: int = MAX_PROBLEMS) -> SheetReport:
    """Every problem of a matched task sheet, in row and column order (at most `max_problems`,
    then one problem counting the rest). `date1904` defaults to the workbook's, via the match."""
    spec = match.spec
    date1904 = match.date1904 if date1904 is None else date1904
    if match.header_row is None:
        return SheetReport(match.table, (_no_header(match, spec),), 0)
    keyed: list[tuple[tuple[int, int], Problem]] = list(_column_problems(match, spec))
    rows: list[_Row] = []
    plan = _plan(match)
    all_rows = table.rows
    for r in range(match.header_row + 1, len(all_rows)):
        checked = _check_row(r, all_rows[r], plan, match.table, date1904)
        if checked is _FOOTER:
            break
        if checked is not _NOT_DATA:
            rows.append(checked)
    keyed += _deadline_problems(rows, match, spec, calendar)
    for row in rows:
        keyed += row.problems
    if not rows and not spec.allow_empty:
        keyed.append(((match.header_row + 1, -1), Problem(
            "empty-sheet", f"工作表'{match.table}'第{match.header_row + 1}行表头以下没有任何数据；请填写本月台账后重新发送",
            Severity.ERROR, sheet=match.table, row=match.header_row + 2)))
    keyed.sort(key=lambda kp: kp[0])
    problems = [p for _, p in keyed]
    bad_rows = {p.row for p in problems if p.is_error and p.row is not None}
    # a row's values hold the template's columns in its order where all were found
    data = tuple(row.values if plan.whole else {c.name: row.values.get(c.name) for c in spec.columns}
                 for row in rows if row.index + 1 not in bad_rows)
    return SheetReport(match.table, _capped(problems, match.table, max_problems), len(rows), data)


def _no_header(match: SheetMatch, spec: SheetSpec) -> Problem:
    names = "、".join(f"'{c.name}'" for c in spec.columns[:3])
    return Problem("missing-header",
                   f"工作表'{match.table}'的前{HEADER_SCAN_ROWS}行中找不到表头（应有{names}等列）；请使用模板的表头",
                   Severity.ERROR, sheet=match.table)


def _column_problems(match: SheetMatch, spec: SheetSpec):
    for i, name in enumerate(match.missing):
        col = spec.column(name)
        yield (match.header_row, -1000 + i), missing_column(
            match.table, name, match.header_row + 1, col is not None and col.required, match.closest.get(name))
    for i, (row, cell, header, name, synonym) in enumerate(match.read_as):
        yield (match.header_row, -500 + i), header_read_as(match.table, row, cell, header, name, synonym=synonym)


def _deadline_problems(rows: list[_Row], match: SheetMatch, spec: SheetSpec, calendar: WorkCalendar):
    out = []
    # a ledger's rows repeat the same pairs of days; a gap in the calendar raises every time
    workdays_between = functools.lru_cache(maxsize=None)(calendar.workdays_between)
    for rc in spec.row_checks:
        if rc.earlier not in match.columns or rc.later not in match.columns:
            continue
        gap_reported = False
        for row in rows:
            values = row.values
            earlier, later = values.get(rc.earlier), values.get(rc.later)
            if not isinstance(earlier, dt.date) or not isinstance(later, dt.date):
                continue            # _run_row_check finds nothing to check: missing or not a date
            try:
                if _row_check_holds(rc, earlier, later, workdays_between):
                    continue        # _run_row_check would find it met
                problem = _run_row_check(rc, row, match, calendar, workdays_between)
            except CalendarGapError as gap:
                if not gap_reported:
                    gap_reported = True
                    c = match.columns[rc.later]
                    out.append(((row.index, c), _cell_problem(
                        "calendar-missing", match.table, row.index, rc.later, c,
                        f"{gap.message_zh}本表'{rc.later}'的时限检查未能完成", Severity.WARNING)))
                continue
            if problem is not None:
                out.append(((row.index, match.columns[rc.later]), problem))
    return out


def _capped(problems: list[Problem], sheet: str, limit: int) -> tuple[Problem, ...]:
    if len(problems) <= limit:
        return tuple(problems)
    rest = problems[limit:]
    errors = sum(p.is_error for p in rest)
    summary = Problem(
        "too-many-problems",
        f"工作表'{sheet}'另有{len(rest)}个问题未逐一列出（其中错误{errors}个）；请先按以上问题修改，再检查整张表后重新发送",
        Severity.ERROR if errors else Severity.WARNING, sheet=sheet)
    return (*problems[:limit], summary)


# ---------------------------------------------------------------- the whole workbook

@dataclass(frozen=True)
class WorkbookReport:
    matches: tuple[SheetMatch, ...]      # task sheets only
    reports: dict[str, SheetReport]      # table name -> report
    problems: tuple[Problem, ...]        # all sheets' problems, in workbook order
    rows: int
    unmatched: tuple[str, ...] = ()      # tables that are no task sheet (cover, instructions…)

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.is_error)


def validate_workbook(wb: Workbook, specs: Sequence[SheetSpec], calendar: WorkCalendar, *,
                      max_problems: int = MAX_PROBLEMS) -> WorkbookReport:
    matches = tuple(match_sheets(wb, specs))
    tables = {t.name: t for t in wb.tables}
    reports: dict[str, SheetReport] = {}
    for m in matches:
        reports[m.table] = check_sheet(m, tables[m.table], calendar, max_problems=max_problems)
    problems = tuple(p for r in reports.values() for p in r.problems)
    return WorkbookReport(matches, reports, problems, sum(r.rows for r in reports.values()),
                          unmatched_sheets(wb, matches))
