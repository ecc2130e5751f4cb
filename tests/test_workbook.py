"""Reading workbooks written by LibreOffice, openpyxl and by hand; refusing unsafe or broken ones
with exact problems (fixtures: tests/data/workbooks, see make_fixtures.py for who wrote each)."""
from __future__ import annotations

import datetime as dt
import io
import struct
import zipfile
import zlib
from pathlib import Path

import pytest

from mailbot.intake.filetype import sniff
from mailbot.model import FileKind, Severity
from mailbot.intake.workbook import Limits, WorkbookError, cell_name, column_letter, read_workbook

WB = Path(__file__).resolve().parent / "data" / "workbooks"


def read(name: str, **kw):
    content = (WB / name).read_bytes()
    kind, _ = sniff(content, name)
    return read_workbook(content, kind, name=name, **kw)


def refused(name: str, **kw):
    with pytest.raises(WorkbookError) as info:
        read(name, **kw)
    assert info.value.problem.severity is Severity.ERROR
    return info.value.problem


LEDGER_ROW_4 = (1, "济南某某商贸有限公司", "法人及非法人组织", "91350100M000100Y43", "王五", "济长市监罚〔2026〕101号",
                "罚款", 0.2, 46294, 46296, None)


@pytest.mark.parametrize("name, kind", [("sgs_valid.xlsx", FileKind.XLSX), ("sgs_valid.xls", FileKind.XLS),
                                        ("sgs_valid.ods", FileKind.ODS)])
def test_libreoffice_workbooks_read_alike(name, kind):
    wb = read(name)
    assert wb.kind is kind and not wb.date1904
    assert [t.name for t in wb.tables] == ["封面", "双公示台账"]
    ledger = wb.tables[1]
    assert ledger.rows[0][0] == "长清区市场监管局行政处罚“双公示”台账（2026年10月）"
    assert ledger.rows[2][:3] == ("序号", "行政相对人名称", "行政相对人类别")     # header on row 3
    assert ledger.rows[3] == LEDGER_ROW_4                                      # Excel serials stay numbers
    assert ledger.rows[4][8:10] == (dt.date(2026, 10, 9), dt.date(2026, 10, 12))   # date cells are dates
    assert ledger.rows[5][7:10] == ("1,234.5", "2026/10/9", "2026年10月13日")
    assert ledger.rows[6] == (4,) + (None,) * 10
    assert ledger.rows[9][0] == "填表人：李四"
    assert wb.tables[0].rows[2][0] == "报送科室：政策法规科"


def test_merged_ranges_where_calamine_has_them():
    assert read("sgs_valid.xlsx").tables[1].merged == ((0, 0, 0, 10),)
    assert read("sgs_valid.xls").tables[1].merged == ((0, 0, 0, 10),)
    assert read("sgs_valid.ods").tables[1].merged == ()      # calamine does not report ODS merges


@pytest.mark.parametrize("name", ["date1904.xlsx", "date1904.xls"])
def test_1904_date_system_is_detected(name):
    wb = read(name)
    assert wb.date1904
    # a date cell is converted by calamine in the right system; a bare serial is left for validate
    assert wb.tables[0].rows[1] == (dt.date(2026, 10, 9), 44832)


def test_csv_in_gbk():
    wb = read("sgs_gbk.csv")
    assert wb.kind is FileKind.CSV and [t.name for t in wb.tables] == ["sgs_gbk"]
    assert wb.tables[0].rows[1][1] == "济南某某商贸有限公司"


def test_encrypted_xlsx():
    p = refused("encrypted.xlsx")
    assert p.code == "workbook-encrypted"
    assert p.message == "文件设置了打开密码（已加密），无法读取其内容；请取消密码后重新发送"
    assert p.hint.startswith("Excel：文件→信息→保护工作簿→用密码进行加密")


def test_encrypted_xls_by_its_filepass_record():
    with pytest.raises(WorkbookError) as info:
        read("encrypted.xls")
    assert info.value.problem.code == "workbook-encrypted" and info.value.detail == "BIFF FILEPASS"


def test_encrypted_package_even_when_called_xlsx():
    with pytest.raises(WorkbookError) as info:
        read_workbook((WB / "encrypted.xlsx").read_bytes(), FileKind.XLSX)
    assert info.value.problem.code == "workbook-encrypted"


def test_macros():
    p = refused("macro.xlsm")
    assert p.code == "workbook-macros"
    assert p.message == ("文件为启用宏的工作簿(.xlsm)，含有宏(VBA)代码，出于安全考虑不予读取；"
                         "请另存为不含宏的'Excel 工作簿(*.xlsx)'后重新发送")
    # the same package handed in as an xlsx is refused by its vbaProject.bin
    with pytest.raises(WorkbookError) as info:
        read_workbook((WB / "macro.xlsm").read_bytes(), FileKind.XLSX)
    assert info.value.problem.code == "workbook-macros"


def test_truncated():
    p = refused("truncated.xlsx")
    assert p.code == "workbook-broken"
    assert p.message == "文件已损坏或不完整（可能在发送或压缩时被截断），无法读取；请确认文件在电脑上能正常打开后重新发送"


def test_truncated_xls():
    content = (WB / "sgs_valid.xls").read_bytes()
    with pytest.raises(WorkbookError) as info:
        read_workbook(content[:4096], FileKind.XLS)
    assert info.value.problem.code == "workbook-broken"


def test_zip_bomb_refused_before_inflating():
    p = refused("zip_bomb.xlsx")
    assert p.code == "workbook-too-large"
    assert p.message == ("文件内部的'xl/worksheets/sheet1.xml'解压后为1.0 GB（压缩后仅996字节），"
                         "超过单个部件的上限128.0 MB，疑似'压缩炸弹'，不予读取")
    assert (WB / "zip_bomb.xlsx").stat().st_size < 4096


def test_xml_bomb():
    p = refused("xml_bomb.xlsx")
    assert p.code == "workbook-xml-bomb"
    assert p.message == ("文件内部的'xl/workbook.xml'含有DTD或实体声明（'XML炸弹'的特征，正常的Excel/WPS文件不会如此），"
                         "出于安全考虑不予读取")


def test_far_cell_refused_instead_of_crashing_calamine():
    # calamine would allocate 1048576 x 16384 cells for this 5 KB file and abort the process
    p = refused("far_cell.xlsx")
    assert p.code == "workbook-too-large"
    assert p.message == ("工作表'Sheet'有内容的区域延伸到第1048576行（XFD1048576），超过可读取的上限100000行；"
                         "请删除多余的行（或远处误填的单元格）后重新发送")


def test_ods_repeat_bomb():
    p = refused("ods_bomb.ods")
    assert p.code == "workbook-too-large"
    assert p.message.startswith("工作表'Sheet1'有内容的区域延伸到第1048576行（XFD1048576）")


def test_cell_limit_names_the_far_cell():
    p = refused("sgs_valid.xlsx", limits=Limits(max_cells=50))
    assert p.code == "workbook-too-large"
    assert p.message == ("工作表'双公示台账'有内容的区域为A1:K10（10行×11列），超过可读取的上限50个单元格；"
                         "通常是远处的单元格被误填了内容，请删除K10等多余内容后重新发送")


def test_row_limit_applies_to_xls_and_ods_too():
    for name in ("sgs_valid.xls", "sgs_valid.ods"):
        p = refused(name, limits=Limits(max_rows=5))
        assert p.code == "workbook-too-large"
        assert p.message.startswith("工作表'双公示台账'有内容的区域延伸到第10行（K10），超过可读取的上限5行")


def test_member_limits():
    p = refused("sgs_valid.xlsx", limits=Limits(max_total=1000))
    assert p.code == "workbook-too-large" and p.message.startswith("文件解压后共")


@pytest.mark.parametrize("name, message", [
    ("empty.xlsx", "工作簿中的工作表（'Sheet'）都是空的，没有任何内容"),
    ("nosheets.xlsx", "工作簿中没有任何工作表"),
])
def test_empty(name, message):
    p = refused(name)
    assert (p.code, p.message) == ("workbook-empty", message)


def test_not_a_workbook():
    with pytest.raises(WorkbookError) as info:
        read_workbook((WB / "pdf_as.xlsx").read_bytes(), FileKind.PDF)
    assert (info.value.problem.code, info.value.problem.message) == (
        "workbook-unsupported", "文件实为PDF文档，不是可读取的电子表格")
    with pytest.raises(WorkbookError) as info:
        read_workbook((WB / "pdf_as.xlsx").read_bytes(), FileKind.XLSX)   # a caller that trusted the name
    assert info.value.problem.code == "workbook-broken"


def _xlsx(sheet_xml: str, workbook_extra: str = "") -> bytes:
    ns = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml",
                    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
                    '<Default Extension="xml" ContentType="application/xml"/>'
                    '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
                    '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
                    '</Types>')
        zf.writestr("_rels/.rels",
                    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
                    '</Relationships>')
        zf.writestr("xl/workbook.xml",
                    f'<workbook {ns} xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
                    f'{workbook_extra}<sheets><sheet name="台账" sheetId="1" r:id="rId1"/></sheets></workbook>')
        zf.writestr("xl/_rels/workbook.xml.rels",
                    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>'
                    '</Relationships>')
        zf.writestr("xl/worksheets/sheet1.xml", f"<worksheet {ns}><sheetData>{sheet_xml}</sheetData></worksheet>")
    return buf.getvalue()


def _with_part(content: bytes, name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(content)) as zin, zipfile.ZipFile(buf, "w") as zout:
        for item in zin.infolist():
            zout.writestr(item, data if item.filename == name else zin.read(item))
    return buf.getvalue()


def test_cells_without_references_are_placed_like_calamine_places_them():
    content = _xlsx('<row><c t="inlineStr"><is><t>a</t></is></c><c><v>2</v></c></row><row><c><v>3</v></c></row>')
    wb = read_workbook(content, FileKind.XLSX)
    assert wb.tables[0].rows == (("a", 2), (3, None))


def test_far_cell_without_references_is_still_found():
    rows = '<row r="200000"><c><v>1</v></c></row>'
    with pytest.raises(WorkbookError) as info:
        read_workbook(_xlsx(rows), FileKind.XLSX)
    assert info.value.problem.message.startswith("工作表'台账'有内容的区域延伸到第200000行（A200000）")


def test_styled_empty_far_cell_is_no_reason_to_refuse():
    content = _xlsx('<row r="1"><c r="A1" t="inlineStr"><is><t>x</t></is></c></row>'
                    '<row r="1048576"><c r="XFD1048576" s="0"/></row>')
    assert read_workbook(content, FileKind.XLSX).tables[0].rows == (("x",),)


def test_prefixed_spreadsheetml_takes_the_exact_path():
    ns = 'xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    sheet = (f'<x:worksheet {ns}><x:sheetData><x:row r="1"><x:c r="A1"><x:v>1</x:v></x:c></x:row>'
             f'<x:row r="300000"><x:c r="B300000"><x:v>2</x:v></x:c></x:row></x:sheetData></x:worksheet>').encode()
    with pytest.raises(WorkbookError) as info:
        read_workbook(_with_part(_xlsx(""), "xl/worksheets/sheet1.xml", sheet), FileKind.XLSX)
    assert info.value.problem.message.startswith("工作表'台账'有内容的区域延伸到第300000行（B300000）")


def test_dtd_in_a_sheet_part_is_a_bomb_too():
    dtd = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
           b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData/></worksheet>')
    with pytest.raises(WorkbookError) as info:
        read_workbook(_with_part(_xlsx(""), "xl/worksheets/sheet1.xml", dtd), FileKind.XLSX)
    assert info.value.problem.code == "workbook-xml-bomb"
    assert "'xl/worksheets/sheet1.xml'" in info.value.problem.message


def _declare_smaller(content: bytes, name: str, size: int) -> bytes:
    """Rewrite a member's declared size and CRC (local header and central directory) to cover
    only its first `size` bytes, as a crafted zip bomb does to slip past size checks."""
    info = zipfile.ZipFile(io.BytesIO(content)).getinfo(name)
    real = zipfile.ZipFile(io.BytesIO(content)).read(name)
    crc = zlib.crc32(real[:size])
    buf = bytearray(content)
    struct.pack_into("<I", buf, info.header_offset + 14, crc)
    struct.pack_into("<I", buf, info.header_offset + 22, size)
    central = buf.find(name.encode(), buf.find(b"PK\x01\x02")) - 46
    assert buf[central:central + 4] == b"PK\x01\x02"
    struct.pack_into("<I", buf, central + 16, crc)
    struct.pack_into("<I", buf, central + 24, size)
    return bytes(buf)


def test_a_part_holding_more_than_it_declares_is_refused():
    rows = "".join(f'<row r="{i}"><c r="A{i}"><v>{i}</v></c></row>' for i in range(1, 20000))
    content = _declare_smaller(_xlsx(rows), "xl/worksheets/sheet1.xml", 1000)
    with pytest.raises(WorkbookError) as info:
        read_workbook(content, FileKind.XLSX)
    assert info.value.problem.code == "workbook-too-large"
    assert info.value.problem.message == ("文件内部的'xl/worksheets/sheet1.xml'实际内容比声明的1000字节更大"
                                          "（疑似'压缩炸弹'），不予读取")


def test_1904_flag_from_workbook_properties():
    content = _xlsx('<row r="1"><c r="A1"><v>1</v></c></row>', '<workbookPr date1904="true"/>')
    assert read_workbook(content, FileKind.XLSX).date1904


def test_cell_names():
    assert [column_letter(i) for i in (0, 25, 26, 51, 52, 701, 702, 16383)] == \
        ["A", "Z", "AA", "AZ", "BA", "ZZ", "AAA", "XFD"]
    assert cell_name(4, 3) == "D5"


def test_limits_from_rules_mapping():
    assert Limits.from_mapping({"max_rows": "500", "unrelated": 1}) == Limits(max_rows=500)


def test_a_far_cell_without_reference_beside_referenced_ones_is_still_found():
    # the usual ledger's two-scan bound (every cell referenced within ZZ999) must not hide it
    rows = '<row r="1"><c r="A1"><v>1</v></c></row><row r="200000"><c><v>2</v></c></row>'
    with pytest.raises(WorkbookError) as info:
        read_workbook(_xlsx(rows), FileKind.XLSX)
    assert info.value.problem.message.startswith("工作表'台账'有内容的区域延伸到第200000行（A200000）")


@pytest.mark.parametrize("cell", ['<c s="1" r="B200000"><v>2</v></c>', '<c r="B200000"><v>2</v></c>',
                                  '<c  r="B200000"><v>2</v></c>', '<c\nr="B200000"><v>2</v></c>'])
def test_a_far_cell_is_found_however_its_reference_is_written(cell):
    rows = f'<row r="1"><c r="A1"><v>1</v></c></row><row r="200000">{cell}</row>'
    with pytest.raises(WorkbookError) as info:
        read_workbook(_xlsx(rows), FileKind.XLSX)
    assert info.value.problem.message.startswith("工作表'台账'有内容的区域延伸到第200000行（B200000）")


def test_a_far_column_is_found_past_the_usual_bound():
    rows = '<row r="1"><c r="A1"><v>1</v></c><c r="XFD1"><v>2</v></c></row>'
    with pytest.raises(WorkbookError) as info:
        read_workbook(_xlsx(rows), FileKind.XLSX, limits=Limits(max_cols=1000))
    assert info.value.problem.message.startswith("工作表'台账'有内容的区域延伸到第16384列（XFD1）")


def test_a_ledger_past_the_usual_bound_is_read_whole():
    rows = '<row r="1"><c r="A1"><v>1</v></c></row><row r="1500"><c r="AB1500"><v>2</v></c></row>'
    table = read_workbook(_xlsx(rows), FileKind.XLSX).tables[0]
    assert len(table.rows) == 1500 and table.rows[-1][27] == 2


def test_a_dtd_in_another_part_is_refused_every_time_beside_a_clean_one():
    # small parts that pass are remembered by their bytes; one that fails is checked each time
    clean = _xlsx('<row r="1"><c r="A1"><v>1</v></c></row>')
    types = zipfile.ZipFile(io.BytesIO(clean)).read("[Content_Types].xml")
    bomb = _with_part(clean, "[Content_Types].xml", b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "e">]>' + types)
    for content in (clean, bomb, clean, bomb):
        if content is clean:
            assert read_workbook(content, FileKind.XLSX).tables[0].rows == ((1,),)
            continue
        with pytest.raises(WorkbookError) as info:
            read_workbook(content, FileKind.XLSX)
        assert info.value.problem.code == "workbook-xml-bomb" and "'[Content_Types].xml'" in info.value.problem.message
