"""Reads a workbook's bytes into typed tables (model.Workbook), refusing anything unsafe or unreadable
with a precise Chinese Problem.

calamine is fast but trusts its input: a 5 KB xlsx with values in A1 and XFD1048576 makes it
allocate half a terabyte and abort the whole process, and it inflates whatever a zip holds.
So every package is inspected first, without calamine: the zip's declared sizes; each XML part
inflated here with its declared size as a hard cap and its CRC checked; each part's prolog
(no DTD, hence no entity bomb); and the cell extent of every sheet (xlsx and ods XML, xls BIFF
records). Only then does calamine read it.

calamine copies a workbook handed to it in memory, growing its buffer to about twice the file; a
large one (a photo pasted into a ledger makes 25 MB) is handed to it as a private temporary file
instead, removed before read_workbook returns: the one file this module writes.
"""
from __future__ import annotations

import bz2
import contextlib
import csv
import io
import os
import pyexpat
import re
import struct
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field

import python_calamine
from defusedxml import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden

from mailbot.intake.filetype import OLE_MAGIC, OleError, OleFile, describe
from mailbot.model import FileKind, Problem, Table, Workbook

__all__ = ["WorkbookError", "Limits", "read_workbook", "column_letter", "cell_name"]

_MIB = 1 << 20


@dataclass(frozen=True)
class Limits:
    """Bounds on what is read; Rules.limits may override any of them by name."""
    max_rows: int = 100_000
    max_cols: int = 16_384
    max_cells: int = 4_000_000       # rows x columns of a sheet's rectangle, as calamine allocates it
    max_member: int = 128 * _MIB     # one part of an xlsx/ods, uncompressed
    max_total: int = 256 * _MIB      # all parts together, uncompressed
    max_members: int = 5_000
    max_sheets: int = 255

    @classmethod
    def from_mapping(cls, values: dict | None) -> "Limits":
        names = cls.__dataclass_fields__
        return cls(**{k: int(v) for k, v in (values or {}).items() if k in names})


class WorkbookError(Exception):
    """The workbook cannot be read; `problem` says why in Chinese, `detail` is for the log."""

    def __init__(self, problem: Problem, detail: str = ""):
        super().__init__(f"{problem.code}: {detail or problem.message}")
        self.problem = problem
        self.detail = detail


def column_letter(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def cell_name(row: int, col: int) -> str:
    """0-based row and column -> "D5"."""
    return f"{column_letter(col)}{row + 1}"


def _fail(code: str, message: str, detail: str = "", hint: str | None = None) -> WorkbookError:
    return WorkbookError(Problem(code=code, message=message, hint=hint), detail)


_HINT_RESAVE = "请用Excel或WPS打开该文件，另存为'Excel 工作簿(*.xlsx)'后重新发送"


def _encrypted(detail: str = "") -> WorkbookError:
    return _fail("workbook-encrypted",
                 "文件设置了打开密码（已加密），无法读取其内容；请取消密码后重新发送",
                 detail,
                 "Excel：文件→信息→保护工作簿→用密码进行加密，清空密码后保存；"
                 "WPS：文件→文档加密→密码加密，清空打开密码后保存")


def _macros(what: str) -> WorkbookError:
    return _fail("workbook-macros",
                 f"文件{what}含有宏(VBA)代码，出于安全考虑不予读取；请另存为不含宏的'Excel 工作簿(*.xlsx)'后重新发送",
                 hint="Excel：文件→另存为→保存类型选'Excel 工作簿(*.xlsx)'；WPS：文件→另存为→'Excel 文件(*.xlsx)'")


def _broken(detail: str, why: str = "") -> WorkbookError:
    why = why or "文件已损坏或不完整（可能在发送或压缩时被截断）"
    return _fail("workbook-broken", f"{why}，无法读取；请确认文件在电脑上能正常打开后重新发送", detail)


def _too_large(message: str, detail: str = "") -> WorkbookError:
    return _fail("workbook-too-large", message, detail)


def _size(n: int) -> str:
    if n >= 1 << 30:
        return f"{n / (1 << 30):.1f} GB"
    if n >= _MIB:
        return f"{n / _MIB:.1f} MB"
    if n >= 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n}字节"


# ---------------------------------------------------------------- the entry point

@dataclass
class _Facts:
    """What the inspection learned before calamine runs."""
    date1904: bool = False
    extents: dict[str, tuple[int, int]] = field(default_factory=dict)   # sheet -> (rows, cols) with values
    suffix: str = ".xlsx"       # calamine reads a file by its extension


def read_workbook(content: bytes, kind: FileKind, *, limits: Limits | None = None,
                  name: str = "", archive: zipfile.ZipFile | None = None) -> Workbook:
    """The workbook's sheets as typed tables; `name` (the file name) only names a CSV's one table;
    `archive`: the content already opened as a zip (filetype.open_zip), its directory read once."""
    limits = limits or Limits()
    if kind is FileKind.ENCRYPTED:
        raise _encrypted("kind ENCRYPTED")
    if kind is FileKind.XLSM:
        raise _macros("为启用宏的工作簿(.xlsm)，")
    if kind is FileKind.CSV:
        return _read_csv(content, limits, name)
    if kind not in (FileKind.XLSX, FileKind.XLS, FileKind.ET, FileKind.ODS):
        raise _fail("workbook-unsupported", f"文件实为{describe(kind)}，不是可读取的电子表格", f"kind {kind}",
                    _HINT_RESAVE)
    if not content:
        raise _broken("empty content", "文件为空（0字节）")
    if content.startswith(OLE_MAGIC):
        facts = _inspect_ole(content, limits)
        facts.suffix = ".xls"
    elif content.startswith(b"PK"):
        facts = _inspect_zip(content, limits, archive)
    else:
        raise _broken(f"{kind.value} without a zip or OLE signature", "文件内容不是有效的电子表格格式")
    tables = _read_calamine(content, facts, limits)
    _check_not_empty(tables)
    return Workbook(kind=kind, tables=tables, date1904=facts.date1904)


def _check_not_empty(tables: tuple[Table, ...]) -> None:
    if not tables:
        raise _fail("workbook-empty", "工作簿中没有任何工作表", "no worksheets")
    if not any(v is not None for t in tables for row in t.rows for v in row):
        names = "、".join(f"'{t.name}'" for t in tables)
        raise _fail("workbook-empty", f"工作簿中的工作表（{names}）都是空的，没有任何内容", "all sheets empty")


def _check_extent(sheet: str, rows: int, cols: int, limits: Limits) -> None:
    if rows <= 0 or cols <= 0:
        return
    far = cell_name(rows - 1, cols - 1)
    if rows > limits.max_rows:
        raise _too_large(f"工作表'{sheet}'有内容的区域延伸到第{rows}行（{far}），超过可读取的上限{limits.max_rows}行；"
                         "请删除多余的行（或远处误填的单元格）后重新发送", f"{sheet}: {rows} rows")
    if cols > limits.max_cols:
        raise _too_large(f"工作表'{sheet}'有内容的区域延伸到第{cols}列（{far}），超过可读取的上限{limits.max_cols}列；"
                         "请删除多余的列后重新发送", f"{sheet}: {cols} cols")
    if rows * cols > limits.max_cells:
        raise _too_large(f"工作表'{sheet}'有内容的区域为A1:{far}（{rows}行×{cols}列），超过可读取的上限"
                         f"{limits.max_cells}个单元格；通常是远处的单元格被误填了内容，请删除{far}等多余内容后重新发送",
                         f"{sheet}: {rows}x{cols}")


# ---------------------------------------------------------------- zip packages (xlsx, ods)

def _inspect_zip(content: bytes, limits: Limits, archive: zipfile.ZipFile | None = None) -> _Facts:
    try:
        infos = (archive or zipfile.ZipFile(io.BytesIO(content))).infolist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise _broken(f"zip: {e}") from e
    lower = {i.filename.lower() for i in infos}
    _check_zip_shape(infos, lower, limits)
    facts = _Facts()
    if "mimetype" in lower:
        facts.suffix = ".ods"
        _scan_ods(content, infos, facts, limits)
    else:
        _scan_xlsx(content, infos, facts, limits)
    for sheet, (rows, cols) in facts.extents.items():
        _check_extent(sheet, rows, cols, limits)
    return facts


def _check_zip_shape(infos: list[zipfile.ZipInfo], lower: set[str], limits: Limits) -> None:
    if "xl/vbaproject.bin" in lower:
        raise _macros("中")
    if "xl/workbook.bin" in lower:
        raise _fail("workbook-unsupported", "文件为Excel二进制工作簿(.xlsb)，暂不支持读取", "xlsb", _HINT_RESAVE)
    if len(infos) > limits.max_members:
        raise _too_large(f"文件内部包含{len(infos)}个部件，超过上限{limits.max_members}个（疑似恶意构造的文件）",
                         f"{len(infos)} members")
    total = 0
    for info in infos:
        if info.flag_bits & 0x1:
            raise _broken(f"zip member {info.filename} encrypted", "文件内部的部件被加密，不是正常的电子表格")
        if info.file_size > limits.max_member:
            raise _too_large(f"文件内部的'{info.filename}'解压后为{_size(info.file_size)}（压缩后仅{_size(info.compress_size)}），"
                             f"超过单个部件的上限{_size(limits.max_member)}，疑似'压缩炸弹'，不予读取",
                             f"{info.filename}: {info.file_size} bytes declared")
        total += info.file_size
    if total > limits.max_total:
        raise _too_large(f"文件解压后共{_size(total)}，超过上限{_size(limits.max_total)}，疑似'压缩炸弹'，不予读取",
                         f"total {total} bytes declared")


def _inflate(content: bytes, info: zipfile.ZipInfo) -> bytes:
    """A part's bytes, inflated here from its local header with the declared size as a hard
    cap. A part holding more than it declares is how a zip bomb slips past size checks (and
    calamine would inflate all of it); it is refused, as is one failing its CRC."""
    return _inflated(_compressed(content, info), info)


def _compressed(content: bytes, info: zipfile.ZipInfo) -> bytes:
    """A part's bytes as stored, found through its local header."""
    off = info.header_offset
    if content[off:off + 4] != b"PK\x03\x04":
        raise _broken(f"{info.filename}: no local header at {off}")
    name_len, extra_len = struct.unpack_from("<HH", content, off + 26)
    start = off + 30 + name_len + extra_len
    raw = content[start:start + info.compress_size]
    if len(raw) < info.compress_size:
        raise _broken(f"{info.filename}: compressed data cut short")
    return raw


def _inflated(raw: bytes, info: zipfile.ZipInfo) -> bytes:
    limit = info.file_size + 1
    try:
        if info.compress_type == zipfile.ZIP_STORED:
            data = raw
        elif info.compress_type == zipfile.ZIP_DEFLATED:
            data = zlib.decompressobj(-15).decompress(raw, limit)
        elif info.compress_type == zipfile.ZIP_BZIP2:
            data = bz2.BZ2Decompressor().decompress(raw, limit)
        else:
            raise _broken(f"{info.filename}: compression method {info.compress_type}",
                          f"文件内部的'{info.filename}'使用了Excel/WPS不会使用的压缩方式")
    except (zlib.error, OSError, EOFError, ValueError) as e:
        raise _broken(f"{info.filename}: {e}") from e
    if len(data) > info.file_size:
        raise _too_large(f"文件内部的'{info.filename}'实际内容比声明的{_size(info.file_size)}更大（疑似'压缩炸弹'），不予读取",
                         f"{info.filename}: more than the declared {info.file_size} bytes")
    if len(data) < info.file_size or zlib.crc32(data) != info.CRC:
        raise _broken(f"{info.filename}: size or CRC mismatch")
    return data


class _StopScan(Exception):
    """Raised from a handler once the part has told us all we need."""


def _scan_xml(name: str, data: bytes, start=None, whole: bool = False) -> None:
    """Parses one XML part with expat under defusedxml's rules (no DTD, no entity, no external
    reference). A DTD can only stand before the root element, so without `whole` the scan ends
    at the root; `start(name, attrs)` sees elements when the whole part is needed."""
    parser = pyexpat.ParserCreate()
    parser.buffer_text = True

    def forbid_dtd(name, sysid, pubid, has_internal_subset):
        raise DTDForbidden(name, sysid, pubid)

    def forbid_entity(name, *args):
        raise EntitiesForbidden(name, None, None, None, None, None)

    def forbid_external(context, base, sysid, pubid):
        raise ExternalReferenceForbidden(context, base, sysid, pubid)

    def stop_at_root(name, attrs):
        raise _StopScan

    parser.StartDoctypeDeclHandler = forbid_dtd
    parser.EntityDeclHandler = forbid_entity
    parser.UnparsedEntityDeclHandler = forbid_entity
    parser.ExternalEntityRefHandler = forbid_external
    parser.StartElementHandler = start if whole else stop_at_root
    try:
        parser.Parse(data, True)
    except _StopScan:
        return
    except (DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden) as e:
        raise _fail("workbook-xml-bomb",
                    f"文件内部的'{name}'含有DTD或实体声明（'XML炸弹'的特征，正常的Excel/WPS文件不会如此），"
                    "出于安全考虑不予读取", f"{name}: {type(e).__name__}", _HINT_RESAVE) from e
    except pyexpat.ExpatError as e:
        raise _broken(f"{name}: {e}", f"文件内部的'{name}'不是完整的XML（文件已损坏或被截断）") from e


def _local(name: str) -> str:
    return name.rpartition(":")[2]


def _attr(attrs: dict, local: str) -> str | None:
    for key, value in attrs.items():
        if key == local or key.endswith(":" + local):
            return value
    return None


_XML_PART = re.compile(r"\.(xml|rels|vml)$", re.I)
_SHEET_PART = re.compile(r"^xl/worksheets/[^/]+\.xml$", re.I)


def _scan_xlsx(content: bytes, infos: list[zipfile.ZipInfo], facts: _Facts, limits: Limits) -> None:
    book: dict = {"sheets": [], "rels": {}}
    parts = {i.filename: i for i in infos}

    def workbook_start(name, attrs):
        local = _local(name)
        if local == "workbookPr":
            facts.date1904 = (_attr(attrs, "date1904") or "").lower() in ("1", "true")
        elif local == "sheet":
            book["sheets"].append((_attr(attrs, "name") or "", _attr(attrs, "id") or ""))

    def rels_start(name, attrs):
        if _local(name) == "Relationship":
            book["rels"][attrs.get("Id", "")] = attrs.get("Target", "")

    extents: dict[str, tuple[int, int]] = {}
    for info in infos:
        name = info.filename
        if not _XML_PART.search(name):
            continue
        if name.lower() == "xl/workbook.xml":
            _scan_xml(name, _inflate(content, info), workbook_start, whole=True)
        elif name.lower() == "xl/_rels/workbook.xml.rels":
            _scan_xml(name, _inflate(content, info), rels_start, whole=True)
        elif _SHEET_PART.match(name):
            extents[name] = _sheet_extent(name, _inflate(content, info), limits)
        else:
            _check_part(name, _compressed(content, info), info)
    if len(book["sheets"]) > limits.max_sheets:
        raise _too_large(f"工作簿有{len(book['sheets'])}个工作表，超过上限{limits.max_sheets}个")
    # name each extent by its sheet, so a problem says '双公示台账' rather than sheet3.xml
    by_part = {}
    for sheet, rid in book["sheets"]:
        target = book["rels"].get(rid, "")
        path = target.lstrip("/") if target.startswith("/") else "xl/" + target
        by_part[path.lower()] = sheet
    for part, ext in extents.items():
        facts.extents[by_part.get(part.lower(), part)] = ext
    if "xl/workbook.xml" not in {p.lower() for p in parts}:
        raise _broken("no xl/workbook.xml", "文件缺少工作簿主体部件(xl/workbook.xml)，已损坏")


# small parts that passed _check_part, by everything its verdict depends on: the theme, the
# styles, the comments and drawings of the template come again in most sections' workbooks
_PASSED: dict[tuple, bool] = {}
_PASSED_MAX_BYTES, _PASSED_MAX_PARTS = 4096, 1024


def _check_part(name: str, raw: bytes, info: zipfile.ZipInfo) -> None:
    """A part that is no sheet and no workbook: inflated within its declared size and CRC, and no
    DTD before its root (_inflated, _scan_xml); a small one is checked once."""
    key = (name, info.compress_type, info.file_size, info.CRC, raw)
    if len(raw) <= _PASSED_MAX_BYTES and key in _PASSED:
        return
    _scan_xml(name, _inflated(raw, info))
    if len(raw) <= _PASSED_MAX_BYTES:
        if len(_PASSED) >= _PASSED_MAX_PARTS:
            _PASSED.clear()
        _PASSED[key] = True


# the quick bound reads unprefixed SpreadsheetML only (what Excel, WPS and LibreOffice write);
# a prefixed <x:c> anywhere sends the sheet to the exact walk
_ROW_REF = re.compile(rb'<row\s[^>]*?\br="(\d+)"')
_CELL_REF = re.compile(rb'<c\s[^>]*?\br="\$?([A-Za-z]{1,3})\$?(\d+)"')
_PREFIXED = (b":c ", b":c>", b":c/", b":row ", b":row>", b":row/", b":c\n", b":row\n")


# the bound most ledgers are within, told by two scans of the part: every cell element <c …> has
# its reference first, in one to two letters and one to three digits, and no prefixed <x:c>/<x:row>
# stands anywhere. calamine places a cell with a reference where the reference says (a <row>'s r
# only places cells without one), so no cell can then lie beyond ZZ999.
_SMALL_BOUND = (999, 702)
_NOT_SMALL_CELL = re.compile(rb'<c(?=[\s>/])(?! r="[A-Z]{1,2}[1-9][0-9]{0,2}")')
_PREFIXED_TAG = re.compile(rb':(?:c|row)[\s>/]')


def _sheet_extent(name: str, data: bytes, limits: Limits) -> tuple[int, int]:
    """The sheet's extent, or a bound on it: ZZ999 where two scans show no cell can lie beyond
    it (the usual ledger), else a quick regex bound when every row and cell carries its
    reference and that bound is within the limits, else the exact expat walk, which alone
    decides a rejection (the bounds also count styled empty cells)."""
    _scan_xml(name, data)
    if _within(_SMALL_BOUND, limits) and not _PREFIXED_TAG.search(data) and not _NOT_SMALL_CELL.search(data):
        return _SMALL_BOUND
    quick = _quick_extent(data)
    if quick and _within(quick, limits):
        return quick
    tracker = _CellExtent()
    _scan_xml(name, data, tracker.start, whole=True)
    return tracker.max_row + 1, tracker.max_col + 1


def _within(extent: tuple[int, int], limits: Limits) -> bool:
    rows, cols = extent
    return rows <= limits.max_rows and cols <= limits.max_cols and rows * cols <= limits.max_cells


def _quick_extent(data: bytes) -> tuple[int, int] | None:
    if any(p in data for p in _PREFIXED):
        return None
    rows = _ROW_REF.findall(data)
    cells = _CELL_REF.findall(data)
    row_tags = sum(data.count(b"<row" + e) for e in (b" ", b">", b"/", b"\n", b"\t", b"\r"))
    cell_tags = sum(data.count(b"<c" + e) for e in (b" ", b">", b"/", b"\n", b"\t", b"\r"))
    if len(rows) != row_tags or len(cells) != cell_tags:
        return None
    if not cells:
        return 0, 0
    max_row = max(max(map(int, rows), default=0), max(int(r) for _, r in cells))
    max_col = max(_column_index(c.decode("ascii")) for c in {c for c, _ in cells}) + 1
    return max_row, max_col


class _CellExtent:
    """The furthest cell holding a value in a SpreadsheetML sheet, as calamine will place it:
    a <row>/<c> without an r attribute follows the previous one. Called for every element of
    the sheet, so it is written for speed: plain names first, prefixed ones via _local."""

    def __init__(self):
        self.row = self.col = -1
        self.max_row = self.max_col = -1
        self._columns: dict[str, int] = {}

    def start(self, name: str, attrs: dict) -> None:
        if name == "v" or name == "c" or name == "row" or name == "is" or name == "f":
            local = name
        else:
            local = _local(name)
        if local == "v" or local == "is" or local == "f":
            if self.row > self.max_row:
                self.max_row = self.row
            if self.col > self.max_col:
                self.max_col = self.col
        elif local == "c":
            ref = attrs.get("r")
            if ref:
                letters = ref.rstrip("0123456789").lstrip("$").rstrip("$")
                col = self._columns.get(letters)
                if col is None:
                    col = self._columns[letters] = _column_index(letters)
                self.col = col
                digits = ref[len(ref.rstrip("0123456789")):]
                if digits:
                    self.row = int(digits) - 1
            else:
                self.col += 1
        elif local == "row":
            r = attrs.get("r")
            self.row = int(r) - 1 if r and r.isdigit() else self.row + 1
            self.col = -1


def _column_index(letters: str) -> int:
    n = 0
    for ch in letters.upper()[:3]:
        if not "A" <= ch <= "Z":
            return 0
        n = n * 26 + ord(ch) - 64
    return max(n - 1, 0)


def _scan_ods(content: bytes, infos: list[zipfile.ZipInfo], facts: _Facts, limits: Limits) -> None:
    tracker = _OdsExtent()
    for info in infos:
        if info.filename == "content.xml":
            _scan_xml(info.filename, _inflate(content, info), tracker.start, whole=True)
        elif _XML_PART.search(info.filename):
            _scan_xml(info.filename, _inflate(content, info))
    if len(tracker.extents) > limits.max_sheets:
        raise _too_large(f"工作簿有{len(tracker.extents)}个工作表，超过上限{limits.max_sheets}个")
    facts.extents.update(tracker.extents)
    facts.date1904 = tracker.date1904


class _OdsExtent:
    """The furthest cell holding a value in each table of an ODS content.xml; repeated rows and
    columns count as many times as they are repeated, as calamine expands them."""

    def __init__(self):
        self.extents: dict[str, tuple[int, int]] = {}
        self.table = ""
        self.date1904 = False
        self._rows = (0, -1)      # first and last row index of the current <table-row>
        self._cols = (0, -1)
        self._next_row = 0
        self._next_col = 0

    def _mark(self) -> None:
        rows, cols = self.extents.get(self.table, (0, 0))
        self.extents[self.table] = (max(rows, self._rows[1] + 1), max(cols, self._cols[1] + 1))

    def start(self, name: str, attrs: dict) -> None:
        local = _local(name)
        if local in ("table-cell", "covered-table-cell"):
            repeat = _repeat(_attr(attrs, "number-columns-repeated"))
            self._cols = (self._next_col, self._next_col + repeat - 1)
            self._next_col += repeat
            if _attr(attrs, "value-type"):
                self._mark()
        elif local == "p" and self._cols[1] >= self._cols[0]:
            self._mark()
        elif local == "table-row":
            repeat = _repeat(_attr(attrs, "number-rows-repeated"))
            self._rows = (self._next_row, self._next_row + repeat - 1)
            self._next_row += repeat
            self._next_col, self._cols = 0, (0, -1)
        elif local == "table":
            self.table = _attr(attrs, "name") or f"Sheet{len(self.extents) + 1}"
            self.extents.setdefault(self.table, (0, 0))
            self._next_row, self._rows, self._cols = 0, (0, -1), (0, -1)
        elif local == "null-date":
            self.date1904 = (_attr(attrs, "date-value") or "").startswith("1904-01-01")


def _repeat(value: str | None) -> int:
    try:
        return max(1, int(value)) if value else 1
    except ValueError:
        return 1


# ---------------------------------------------------------------- OLE (xls, WPS et)

_BIFF_CELLS = {0x0203, 0x00FD, 0x027E, 0x0204, 0x0006, 0x0205, 0x00D6}   # NUMBER LABELSST RK LABEL FORMULA BOOLERR RSTRING
_BIFF_MULRK = 0x00BD
_BIFF_BOF, _BIFF_FILEPASS, _BIFF_DATEMODE, _BIFF_BOUNDSHEET = 0x0809, 0x002F, 0x0022, 0x0085


def _inspect_ole(content: bytes, limits: Limits) -> _Facts:
    try:
        ole = OleFile(content)
    except OleError as e:
        raise _broken(f"ole: {e}") from e
    if ole.has("EncryptionInfo") or ole.has("EncryptedPackage"):
        raise _encrypted("OLE EncryptionInfo stream")
    if ole.has("_VBA_PROJECT_CUR") or ole.has("_VBA_PROJECT"):
        raise _macros("中")
    name = "Workbook" if ole.has("Workbook") else "Book" if ole.has("Book") else None
    if name is None:
        raise _broken(f"no Workbook stream in {ole.names}", "文件不是Excel 97-2003工作簿（缺少Workbook数据流）")
    try:
        stream = ole.stream(name, limits.max_total)
    except OleError as e:
        raise _broken(f"ole stream: {e}") from e
    facts = _scan_biff(stream)
    if len(facts.extents) > limits.max_sheets:
        raise _too_large(f"工作簿有{len(facts.extents)}个工作表，超过上限{limits.max_sheets}个")
    for sheet, (rows, cols) in facts.extents.items():
        _check_extent(sheet, rows, cols, limits)
    return facts


def _scan_biff(stream: bytes) -> _Facts:
    """Walks the BIFF records: FILEPASS means a password, DATEMODE the 1904 system, and each
    sheet's cell records give its extent (record headers stay in clear even when encrypted)."""
    facts = _Facts()
    sheets: dict[int, str] = {}        # BOF offset -> sheet name, from BOUNDSHEET
    current: str | None = None
    pos, end = 0, len(stream)
    while pos + 4 <= end:
        rtype, length = struct.unpack_from("<HH", stream, pos)
        data = stream[pos + 4:pos + 4 + length]
        if rtype == _BIFF_BOF:
            current = sheets.get(pos)
        elif current is None and rtype == _BIFF_FILEPASS:
            raise _encrypted("BIFF FILEPASS")
        elif current is None and rtype == _BIFF_DATEMODE and len(data) >= 2:
            facts.date1904 = struct.unpack_from("<H", data)[0] == 1
        elif current is None and rtype == _BIFF_BOUNDSHEET and len(data) >= 8:
            offset, = struct.unpack_from("<I", data)
            sheets[offset] = _biff_sheet_name(data[6:]) or f"Sheet{len(sheets) + 1}"
            facts.extents.setdefault(sheets[offset], (0, 0))
        elif current is not None and len(data) >= 4 and (rtype in _BIFF_CELLS or rtype == _BIFF_MULRK):
            row, col = struct.unpack_from("<HH", data)
            if rtype == _BIFF_MULRK and len(data) >= 6:
                col = struct.unpack_from("<H", data, len(data) - 2)[0]
            rows, cols = facts.extents.get(current, (0, 0))
            facts.extents[current] = (max(rows, row + 1), max(cols, col + 1))
        pos += 4 + length
    return facts


def _biff_sheet_name(raw: bytes) -> str:
    if len(raw) < 2:
        return ""
    count, flags = raw[0], raw[1]
    if flags & 0x1:
        return raw[2:2 + 2 * count].decode("utf-16-le", "replace")
    # BIFF8 compressed (Latin-1) names; BIFF5 (no flags byte) names are in the ANSI code page
    if len(raw) >= 2 + count:
        return raw[2:2 + count].decode("latin-1")
    return raw[1:1 + count].decode("gbk", "replace")


# ---------------------------------------------------------------- calamine

SPOOL_OVER = 8 * _MIB     # a workbook larger than this is read by calamine from a temporary file


def _read_calamine(content: bytes, facts: _Facts, limits: Limits) -> tuple[Table, ...]:
    with _spooled(content, facts.suffix) as path:
        try:
            if path is None:
                book = python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(content))
            else:
                book = python_calamine.CalamineWorkbook.from_path(path)
                # calamine holds the file open: its name can go now, so that no copy of a ledger
                # outlives this process however it ends (a worker ended with its writer: os._exit)
                os.unlink(path)
            metas = list(book.sheets_metadata)
        except python_calamine.PasswordError as e:
            raise _encrypted(f"calamine: {e}") from e
        except Exception as e:   # noqa: BLE001 - calamine's errors are many and all mean "unreadable"
            raise _broken(f"calamine: {type(e).__name__}: {e}") from e
        tables = []
        for meta in metas:
            if meta.typ != python_calamine.SheetTypeEnum.WorkSheet:
                continue   # chart and macro sheets hold no ledger
            tables.append(_read_sheet(book, meta.name, limits))
        del book             # calamine reads the sheets from the file: it goes before the file does
    return tuple(tables)


@contextlib.contextmanager
def _spooled(content: bytes, suffix: str):
    """None for a small workbook (read from memory); else the path of a private copy (0600, from
    mkstemp) that is removed however the reading ends."""
    if len(content) <= SPOOL_OVER:
        yield None
        return
    try:
        fd, path = tempfile.mkstemp(prefix="mailbot-workbook-", suffix=suffix)
    except OSError:
        yield None           # no room for the copy: read from memory, dearer but the same
        return
    try:
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(content)
            written = True
        except OSError:
            written = False
        yield path if written else None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _read_sheet(book, name: str, limits: Limits) -> Table:
    try:
        sheet = book.get_sheet_by_name(name)
        end = sheet.end
        if end is not None:
            _check_extent(name, end[0] + 1, end[1] + 1, limits)
        rows = sheet.to_python(skip_empty_area=False) if end is not None else []
        merged = sheet.merged_cell_ranges or []
    except WorkbookError:
        raise
    except Exception as e:   # noqa: BLE001
        raise _broken(f"sheet {name!r}: {type(e).__name__}: {e}", f"工作表'{name}'已损坏") from e
    return Table(name=name,
                 rows=tuple(map(_values, rows)),
                 merged=tuple((r0, c0, r1, c1) for (r0, c0), (r1, c1) in merged))


def _values(row: list) -> tuple:
    """A row of calamine's cells as the model keeps them: None for empty, int for a whole number
    (one comprehension, no call per cell: it runs for every cell)."""
    return tuple([None if v == "" or v is None
                  else int(v) if isinstance(v, float) and v.is_integer() and abs(v) < 9007199254740992  # 2 ** 53
                  else v for v in row])


# ---------------------------------------------------------------- CSV

def _read_csv(content: bytes, limits: Limits, name: str) -> Workbook:
    text = _decode_text(content)
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",\t;|")
    except csv.Error:
        dialect = csv.excel
    rows = []
    for i, row in enumerate(csv.reader(io.StringIO(text), dialect)):
        if i >= limits.max_rows:
            raise _too_large(f"CSV文件超过可读取的上限{limits.max_rows}行", f"csv > {limits.max_rows} rows")
        if len(row) > limits.max_cols:
            raise _too_large(f"CSV文件第{i + 1}行有{len(row)}列，超过上限{limits.max_cols}列")
        rows.append(tuple(c if c.strip() else None for c in row))
    width = max((len(r) for r in rows), default=0)
    stem = name.rsplit("/", 1)[-1].rsplit(".", 1)[0] if name else "Sheet1"
    table = Table(name=stem or "Sheet1", rows=tuple(r + (None,) * (width - len(r)) for r in rows))
    _check_not_empty((table,))
    return Workbook(kind=FileKind.CSV, tables=(table,))


def _decode_text(content: bytes) -> str:
    # Chinese Excel saves CSV in GBK unless told otherwise; gb18030 reads GBK and GB2312 too
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return content.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise _broken("csv: neither UTF-8 nor GB18030", "CSV文件的文字编码无法识别")

