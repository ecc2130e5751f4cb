"""Print settings and column widths for the workbooks mailbot writes (template, package, score).

`fit_columns` sizes each column to its longest cell text: a CJK (wide) character counts 2
units, any other 1, plus a margin; a column never gets narrower than the floor asked for
and not wider than the cap, and a text longer than the cap wraps. A date or datetime column
is always wide enough for its formatted value, so it never shows ###.

`set_print` gives a sheet A4 paper, landscape when its columns are wider than a portrait page
(portrait otherwise), fit to one page wide and as many pages tall as needed (or to one page),
the title and header rows repeated on every page and "第 1 页，共 N 页" in the footer.
"""
from __future__ import annotations

import datetime as dt
import math
import unicodedata
from collections.abc import Mapping

from openpyxl.styles import Alignment
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.page import PageMargins
from openpyxl.worksheet.properties import PageSetupProperties
from openpyxl.worksheet.worksheet import Worksheet

__all__ = ["text_units", "fit_columns", "fit_rows", "set_print", "date_width", "PORTRAIT_UNITS", "FOOTER", "LINE_HEIGHT"]

# column-width units that print at 100% across A4 portrait with the margins below (LibreOffice
# clips from 90 on); a sheet wider than this goes landscape. A sheet of one column is never
# scaled to fit (one column is always one page wide), so such a column must be this narrow.
PORTRAIT_UNITS = 85
FOOTER = "第 &P 页，共 &N 页"
LINE_HEIGHT = 16                 # points per line of 11 pt text (CJK fonts run taller than Latin)
_PAD = 2                         # units beside the text, as Excel's own autofit leaves
_DATE_PAD = 3                    # digits print wider in some fonts: dates get one more
_DEFAULT_WIDTH = 8.43           # Excel's width of a column never sized
_MARGINS = dict(left=0.5, right=0.5, top=0.6, bottom=0.7, header=0.3, footer=0.3)   # inches


def text_units(text: str) -> int:
    """Width of one line of text in column units: a wide (CJK, full-width) character is 2."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def date_width(number_format: str) -> int:
    """The width a date or datetime cell of `number_format` needs so it never shows ###."""
    shown = number_format.replace('"', "").replace("\\", "")
    return len(shown) + _DATE_PAD


def _is_date_format(number_format: str) -> bool:
    f = number_format.lower()
    return "yy" in f and "d" in f


def _cell_units(value, number_format: str) -> tuple[int, bool]:
    """(units the value needs, is it a date)."""
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return date_width(number_format if _is_date_format(number_format) else "yyyy-mm-dd hh:mm"), True
    if isinstance(value, float):
        if "%" in number_format:
            return len(f"{value * 100:.2f}%") + _PAD, False
        return len(f"{value:g}") + _PAD, False
    text = str(value)
    return max(text_units(line) for line in text.split("\n")) + _PAD, False


def fit_columns(ws: Worksheet, first_row: int = 1, *, floor: Mapping[int, float] | None = None,
                minimum: float = 6, cap: float = 40) -> None:
    """Size every column of `ws` from its cells at `first_row` and below, then the rows.

    floor: {column number: width} the column keeps at least (the template's designed widths).
    A cell merged across columns does not count (its text spreads over them). A wrapped cell
    whose row has an explicit height of n lines counts 1/n of its text. A text longer than
    the cap wraps; `fit_rows` then gives its row the lines it needs.
    """
    floor = floor or {}
    merged = _merged_across(ws)
    need: dict[int, float] = {}
    date_cols: dict[int, int] = {}
    long_cells = []
    for row in ws.iter_rows(min_row=first_row):
        for cell in row:
            c = cell.column
            fmt = cell.number_format or "General"
            if _is_date_format(fmt):             # a date column of the blank template counts too
                date_cols[c] = max(date_cols.get(c, 0), date_width(fmt))
            if cell.value is None or (cell.row, c) in merged:
                continue
            units, is_date = _cell_units(cell.value, fmt)
            if is_date:
                date_cols[c] = max(date_cols.get(c, 0), units)
            elif _wraps(cell) and "\n" not in str(cell.value):
                height = ws.row_dimensions[cell.row].height
                lines = max(1, int(height // LINE_HEIGHT)) if height else 1
                # one unit more than the even split: a wide character does not break in half
                units = math.ceil((units - _PAD) / lines) + _PAD + (1 if lines > 1 else 0)
            if units > cap:
                long_cells.append(cell)
            need[c] = max(need.get(c, 0), units)
    for c in set(need) | set(floor) | set(date_cols):
        width = min(cap, max(minimum, need.get(c, 0)))
        width = max(width, floor.get(c, 0), date_cols.get(c, 0))
        ws.column_dimensions[get_column_letter(c)].width = width
    for cell in long_cells:
        if not _wraps(cell):
            cell.alignment = _with(cell.alignment, wrap_text=True)
    fit_rows(ws, first_row)


def fit_rows(ws: Worksheet, first_row: int = 1) -> None:
    """Give each row with wrapped text the height its lines need; a higher row stays as it is.

    Needed in every reader: LibreOffice keeps an .xlsx row without a height at one line, so a
    wrapped text shows its first line only. A wide character is counted 2 units, as Excel's
    CJK fonts draw it; LibreOffice's are a little narrower, so a row may get a spare line.
    """
    spans = {(rng.min_row, rng.min_col): range(rng.min_col, rng.max_col + 1)
             for rng in ws.merged_cells.ranges if rng.min_row == rng.max_row}
    covered = _merged_across(ws) - set(spans)
    heights: dict[int, float] = {}
    for row in ws.iter_rows(min_row=first_row):
        for cell in row:
            if cell.value is None or (cell.row, cell.column) in covered or not _wraps(cell):
                continue
            cols = spans.get((cell.row, cell.column), (cell.column,))
            width = sum(ws.column_dimensions[get_column_letter(c)].width or _DEFAULT_WIDTH for c in cols)
            room = max(width - _PAD, 1)
            lines = sum(max(1, math.ceil(text_units(part) / room)) for part in str(cell.value).split("\n"))
            if lines > 1:
                size = (cell.font.sz if cell.font is not None and cell.font.sz else 11) / 11
                heights[cell.row] = max(heights.get(cell.row, 0), lines * LINE_HEIGHT * size + 4)
    for r, h in heights.items():
        dim = ws.row_dimensions[r]
        dim.height = max(dim.height or 0, h)
        for cell in ws[r]:                       # a row of several lines reads from its top
            if cell.value is not None and (cell.alignment is None or cell.alignment.vertical is None):
                cell.alignment = _with(cell.alignment, vertical="top")


def _with(old: Alignment | None, **changes) -> Alignment:
    """`old` with `changes`: the cell keeps its other alignment settings."""
    keep = {k: getattr(old, k) for k in ("horizontal", "vertical", "wrap_text", "indent", "text_rotation")} if old else {}
    return Alignment(**{**keep, **changes})


def _wraps(cell) -> bool:
    return bool(cell.alignment is not None and cell.alignment.wrap_text)


def _merged_across(ws: Worksheet) -> set[tuple[int, int]]:
    """(row, column) of every cell in a range merged across columns."""
    return {(r, c) for rng in ws.merged_cells.ranges if rng.min_col != rng.max_col
            for r in range(rng.min_row, rng.max_row + 1) for c in range(rng.min_col, rng.max_col + 1)}


def set_print(ws: Worksheet, title_rows: int = 2, *, one_page: bool = False,
              landscape: bool | None = None) -> None:
    """A4, fit to one page wide (and tall with `one_page`), rows 1..title_rows on every page,
    page numbers in the footer; landscape when the columns are wider than a portrait page."""
    if landscape is None:
        landscape = _used_width(ws) > PORTRAIT_UNITS
    ps = ws.page_setup
    ps.paperSize = ws.PAPERSIZE_A4
    ps.orientation = ws.ORIENTATION_LANDSCAPE if landscape else ws.ORIENTATION_PORTRAIT
    ps.fitToWidth = 1
    ps.fitToHeight = 1 if one_page else 0        # 0: as many pages tall as the rows need
    if ws.sheet_properties.pageSetUpPr is None:
        ws.sheet_properties.pageSetUpPr = PageSetupProperties()
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.page_margins = PageMargins(**_MARGINS)
    ws.print_options.horizontalCentered = True
    ws.print_title_rows = f"1:{title_rows}"
    ws.oddFooter.center.text = FOOTER
    ws.oddFooter.center.size = 9
    ws.oddFooter.left.text = "&A"                # the sheet's name
    ws.oddFooter.left.size = 9


def _used_width(ws: Worksheet) -> float:
    total = 0.0
    for c in range(1, ws.max_column + 1):
        dim = ws.column_dimensions.get(get_column_letter(c))
        total += dim.width if dim is not None and dim.width else _DEFAULT_WIDTH
    return total
