"""The workbooks print: the template, the monthly package and the year score have A4 page setup
on every sheet (fit to one page wide, title and header rows on every page, page numbers in the
footer), columns wide enough for their dates; converted by LibreOffice they take no more pages
than measured when the print settings came in (before them: 16, 61 and 6 pages)."""
from __future__ import annotations

import datetime as dt
import io
import re
import shutil
import subprocess

import openpyxl
import pytest

from conftest import ROOT, need
from mailbot.app import cli
from mailbot.duties.package import INDEX_SHEET, build_package, build_score
from mailbot.duties.printing import PORTRAIT_UNITS, date_width, text_units
from mailbot.duties.templates import template_bytes
from mailbot.rules import load_rules
from test_package import GENERATED, PERIOD, Score, _cells, _month
from test_pipeline import write_config

EXAMPLES = sorted((ROOT / "examples").glob("*.eml"))
# pages of the examples/ month as LibreOffice 7.4 printed them with these settings
MAX_PAGES = {"template": 7, "package": 15, "score": 3}


@pytest.fixture(scope="module")
def rules(rules_dir):
    return load_rules(rules_dir)


@pytest.fixture(scope="module")
def workbooks(rules) -> dict[str, bytes]:
    scores = [Score(s.id, t.number, 11, 9, 1, 1, 1, not_due=1, count=1 if t.number == 7 else None,
                    required=2 if t.number == 7 else None)
              for s in rules.sections for t in rules.tasks if s.id in t.sections]
    return {
        "template": template_bytes(rules, "政策法规科", PERIOD),
        "package": build_package(rules, PERIOD, _month(), _cells(rules), generated_at=GENERATED),
        "score": build_score(rules, 2026, scores, generated_at=GENERATED),
    }


def _width(ws, letter: str) -> float:
    dim = ws.column_dimensions.get(letter)
    return dim.width if dim is not None and dim.width else 8.43


def check_page_setup(data: bytes) -> None:
    wb = openpyxl.load_workbook(io.BytesIO(data))
    for ws in wb:
        ps = ws.page_setup
        assert int(ps.paperSize) == 9, ws.title           # A4
        assert ps.fitToWidth == 1 and ws.sheet_properties.pageSetUpPr.fitToPage, ws.title
        assert ps.fitToHeight == (1 if ws.title == INDEX_SHEET else 0), ws.title
        used = sum(_width(ws, openpyxl.utils.get_column_letter(c)) for c in range(1, ws.max_column + 1))
        wide = used > PORTRAIT_UNITS and ws.title != INDEX_SHEET
        assert ps.orientation == ("landscape" if wide else "portrait"), (ws.title, used)
        if ws.max_column == 1:       # one column is never shrunk to fit: it must fit as it is
            assert used <= PORTRAIT_UNITS, ws.title
        # the title row, and the header row where there is one below it, on every page
        rows = ws.print_title_rows.replace("$", "")
        assert rows.startswith("1:"), (ws.title, rows)
        if ws.cell(2, 1).fill.fgColor.rgb == "00DDEBF7" and ws.title != "报送情况":
            assert rows == "1:2", ws.title
        assert "&P" in ws.oddFooter.center.text and "&N" in ws.oddFooter.center.text, ws.title
        assert ws.page_margins.left <= 0.75 and ws.page_margins.right <= 0.75


def check_dates_fit(data: bytes) -> None:
    """No date column narrower than its formatted value (Excel shows ### then)."""
    wb = openpyxl.load_workbook(io.BytesIO(data))
    for ws in wb:
        for row in ws.iter_rows(min_row=2):
            for cell in row:
                fmt = cell.number_format
                if isinstance(cell.value, (dt.date, dt.datetime)) or ("yy" in fmt and "d" in fmt):
                    shown = fmt.replace("\\", "").replace('"', "")
                    width = _width(ws, cell.column_letter)
                    assert width >= len(shown) + 2, (ws.title, cell.coordinate, fmt, width)


@pytest.mark.parametrize("name", ["template", "package", "score"])
def test_every_sheet_has_page_setup(workbooks, name):
    check_page_setup(workbooks[name])


@pytest.mark.parametrize("name", ["template", "package", "score"])
def test_date_columns_are_wide_enough(workbooks, name):
    check_dates_fit(workbooks[name])


def test_status_sheet_shows_the_receipt_and_time(workbooks):
    ws = openpyxl.load_workbook(io.BytesIO(workbooks["package"]))["报送情况"]
    head = next(r for r in range(1, ws.max_row + 1) if ws.cell(r, 4).value == "报送时间")
    assert ws.cell(head, 5).value == "回执编号"
    longest = max(text_units(str(ws.cell(r, 5).value or "")) for r in range(head, ws.max_row + 1))
    assert ws.column_dimensions["E"].width >= longest + 1
    assert ws.column_dimensions["D"].width >= date_width("yyyy-mm-dd hh:mm")


def test_long_text_wraps_and_its_row_grows(workbooks, rules):
    wb = openpyxl.load_workbook(io.BytesIO(workbooks["package"]))
    ws = wb["双公示台账"]
    col = 2 + [c.name for c in rules.sheet("双公示台账").columns].index("决定内容")
    letter = openpyxl.utils.get_column_letter(col)
    assert ws.column_dimensions[letter].width <= 24
    for r in range(3, ws.max_row + 1):
        cell = ws.cell(r, col)
        if text_units(str(cell.value)) > ws.column_dimensions[letter].width:
            assert cell.alignment.wrap_text and ws.row_dimensions[r].height >= 36, cell.coordinate


def test_template_keeps_the_designed_widths(workbooks, rules):
    wb = openpyxl.load_workbook(io.BytesIO(workbooks["template"]))
    for name in rules.tasks_of("政策法规科")[0].sheets:
        spec, ws = rules.sheet(name), wb[name]
        for i, col in enumerate(spec.columns, start=1):
            assert ws.column_dimensions[openpyxl.utils.get_column_letter(i)].width >= col.width


# ---------------------------------------------------------------- printed by LibreOffice

def _pages(pdf: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page(?![s\w])", pdf))


@pytest.mark.slow
def test_printed_page_counts(tmp_path, rules):
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None:
        need("LibreOffice (soffice) not installed: the page counts are not measured")
    cfg = write_config(tmp_path)
    run = ["--config", str(cfg)]
    assert cli.main([*run, "ingest", "--received", "2026-11-20T10:00:00+08:00", *map(str, EXAMPLES)]) == 0
    assert cli.main([*run, "summary", "--period", PERIOD, "--out", str(tmp_path / "package.xlsx"),
                     "--now", "2026-12-01T09:00"]) == 0
    assert cli.main([*run, "score", "--year", "2026", "--out", str(tmp_path / "score.xlsx"),
                     "--now", "2026-12-01T09:00"]) == 0
    (tmp_path / "template.xlsx").write_bytes(template_bytes(rules, "政策法规科", PERIOD))

    out = tmp_path / "pdf"
    for name in MAX_PAGES:
        data = (tmp_path / f"{name}.xlsx").read_bytes()
        check_page_setup(data)
        check_dates_fit(data)
    subprocess.run([soffice, f"-env:UserInstallation=file://{tmp_path / 'lo-profile'}", "--headless",
                    "--convert-to", "pdf", "--outdir", str(out), *(str(tmp_path / f"{n}.xlsx") for n in MAX_PAGES)],
                   check=True, capture_output=True, timeout=240)
    pages = {name: _pages((out / f"{name}.pdf").read_bytes()) for name in MAX_PAGES}
    for name, most in MAX_PAGES.items():
        assert 1 <= pages[name] <= most, pages
