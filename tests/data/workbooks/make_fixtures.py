"""Regenerates the workbook fixtures in this directory; run from the repository root:

    .venv/bin/python tests/data/workbooks/make_fixtures.py

Which program wrote each file (the point is that most are NOT written by openpyxl, which is
also how the tests would write them):

  sgs_valid.xlsx          LibreOffice Calc ("Calc MS Excel 2007 XML"), from an openpyxl draft
  sgs_valid.xls           LibreOffice Calc ("MS Excel 97"), same draft
  sgs_valid.ods           LibreOffice Calc ("calc8"), same draft
  sgs_sheet1.xlsx         LibreOffice Calc (xlsx), sheet 'Sheet1', reordered full-width headers
  sgs_broken.xlsx         LibreOffice Calc (xlsx), a ledger with many mistakes
  sgs_broken.xls          LibreOffice Calc (xls), same
  empty.xlsx              LibreOffice Calc (xlsx), one empty sheet
  encrypted.xlsx          LibreOffice Calc through UNO, OOXML "Standard" encryption, password 'x'
  encrypted.xls           LibreOffice Calc through UNO, "MS Excel 97" with password 'x' (RC4)
  date1904.xlsx           openpyxl, 1904 date system (LibreOffice keeps it too: date1904.xls)
  date1904.xls            LibreOffice Calc ("MS Excel 97") from date1904.xlsx
  macro.xlsm              hand-built (zipfile): sgs_valid.xlsx plus xl/vbaProject.bin and the
                          macroEnabled content type
  xml_bomb.xlsx           hand-built (zipfile): xl/workbook.xml carries a billion-laughs DTD
  zip_bomb.xlsx           hand-built (zipfile): a sheet part of 1 GiB of spaces, bzip2 -> < 2 KB
  far_cell.xlsx           openpyxl: values in A1 and XFD1048576 (calamine would abort on it)
  ods_bomb.ods            hand-built (zipfile): one value repeated over 1,048,576 x 16,384 cells
  nosheets.xlsx           hand-built (zipfile): a workbook whose <sheets/> is empty
  truncated.xlsx          the first half of sgs_valid.xlsx
  pdf_as.xlsx             a hand-written minimal PDF, named .xlsx
  pe_as.xlsx              a hand-built PE32 header (what libmagic calls a Windows program)
  elf_as.xlsx             a hand-built ELF64 header
  sgs_gbk.csv             Python, GBK-encoded CSV as Chinese Excel saves it

LibreOffice runs headless with a private profile, so it neither disturbs nor is captured by
another running instance. The encryption step needs LibreOffice's Python-UNO bridge, which
lives in the system Python (/usr/bin/python3), so this script re-runs itself there for it.
"""
from __future__ import annotations

import datetime as dt
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SYSTEM_PYTHON = "/usr/bin/python3"

HEADER = ["序号", "行政相对人名称", "行政相对人类别", "统一社会信用代码", "法定代表人", "决定书文号",
          "处罚类别", "罚款金额（万元）", "决定日期", "上报日期", "备注"]
TITLE = "长清区市场监管局行政处罚“双公示”台账（2026年10月）"


# ---------------------------------------------------------------- drafts (openpyxl)

def _cover(wb):
    ws = wb.create_sheet("封面", 0)
    ws["A1"] = "信用状况监测分析报送材料"
    ws.merge_cells("A1:D1")
    ws["A3"] = "报送科室：政策法规科"          # label and value in one cell
    ws["A4"] = "报送月份："
    ws["B4"] = "2026年10月"
    ws["A5"] = "联系人"
    ws["B5"] = "张三"
    ws["C5"] = "联系电话"
    ws["D5"] = "0531-87654321"
    return ws


def draft_valid(path: Path) -> None:
    import openpyxl
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "双公示台账"
    ws["A1"] = TITLE
    ws.merge_cells("A1:K1")
    ws["A2"] = "填报单位：政策法规科"
    ws.append(HEADER)                      # row 3
    rows = [
        # 4: Excel serial numbers (General format) for both dates: 46294 = 2026-09-29
        [1, "济南某某商贸有限公司", "法人及非法人组织", "91350100M000100Y43", "王五", "济长市监罚〔2026〕101号",
         "罚款", 0.2, 46294, 46296, None],
        # 5: real date cells, and a 个体工商户 with the placeholder code
        [2, "长清区某某便利店", "个体工商户", "00000000000000000X", "赵六", "济长市监罚〔2026〕102号",
         "警告", None, dt.date(2026, 10, 9), dt.date(2026, 10, 12), "无统一社会信用代码"],
        # 6: text dates as people type them
        [3, "济南某某食品有限公司", "法人及非法人组织", "91512081MA62K0260E", "钱七", "济长市监罚〔2026〕103号",
         "罚款", "1,234.5", "2026/10/9", "2026年10月13日", None],
        # 7: only a 序号: a blank row
        [4, None, None, None, None, None, None, None, None, None, None],
        # 8: dotted and compact dates, full-width code
        [5, "某某农业合作社", "法人及非法人组织", "９１１１００００６０００３７３４１Ｌ", "孙八", "济长市监罚〔2026〕104号",
         "没收违法所得", 3, "2026.10.13", "20261014", None],
    ]
    for r in rows:
        ws.append(r)
    for cell in ("I5", "J5"):
        ws[cell].number_format = "yyyy-mm-dd"
    ws.append([])
    ws.append(["填表人：李四", None, None, None, None, "审核人：周九"])
    _cover(wb)
    wb.save(path)


def draft_sheet1(path: Path) -> None:
    import openpyxl
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Sheet1"
    ws["A1"] = "双公示台账"
    ws.merge_cells("A1:H1")
    ws.append(["决定　日期", "＊行政相对人名称", "统一社会信用代码\n（必填）", "行政相对人 类别", "决定书文号",
               "处罚类别", "上报日期", "罚款金额(万元)", "备　注"])                       # row 2
    ws.append([dt.date(2026, 10, 20), "济南某某商贸有限公司", "91350100M000100Y43", "法人及非法人组织",
               "济长市监罚〔2026〕110号", "罚款", dt.date(2026, 10, 22), 1, None])
    ws["A3"].number_format = ws["G3"].number_format = "yyyy/m/d"
    wb.save(path)


def draft_broken(path: Path) -> None:
    import openpyxl
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "双公示台账"
    ws["A1"] = TITLE
    ws.merge_cells("A1:J1")
    ws.append([])
    ws.append(HEADER[:-1])               # row 3, no 备注 column
    rows = [
        [1, "济南某某商贸有限公司", "法人及非法人组织", "91350100M000100Y43", "王五", "济长市监罚〔2026〕201号",
         "罚款", 0.5, "2026.13.01", "2026-10-09"],                                            # 4: bad date
        [2, "济南某某食品有限公司", "法人及非法人组织", "91350100M000100Y4Z", "钱七", "济长市监罚〔2026〕202号",
         "警告", None, "2026-10-09", "2026-10-10"],                                           # 5: bad check char
        [3, None, "法人及非法人组织", "91512081MA62K0260E", "孙八", None,
         "警告", None, "2026-10-09", "2026-10-12"],                                           # 6: two required cells empty
        [4, "长清区某某超市", "法人及非法人组织", "91110000600037341L", "吴九", "济长市监罚〔2026〕204号",
         "罚款", 0.3, "2026-09-28", "2026-10-15"],                                            # 7: late across 国庆
        [5, "长清区某某饭店", "法人", None, "郑十", "济长市监罚〔2026〕205号",
         "罚款", "12万", "2026-10-20", "2026-10-21"],                                         # 8: bad choice, unit in cell
    ]
    for r in rows:
        ws.append(r)
    ws.append(["合计", None, None, None, None, None, None, 12.8])
    wb.save(path)


def draft_empty(path: Path) -> None:
    import openpyxl
    openpyxl.Workbook().save(path)


def draft_1904(path: Path) -> None:
    import openpyxl
    from openpyxl.utils.datetime import CALENDAR_MAC_1904
    wb = openpyxl.Workbook()
    wb.epoch = CALENDAR_MAC_1904
    ws = wb.active
    ws.title = "双公示台账"
    ws.append(["决定日期", "上报日期"])
    ws.append([dt.date(2026, 10, 9), 44832])      # 44832 in the 1904 system is 2026-09-29
    ws["A2"].number_format = "yyyy-mm-dd"
    wb.save(path)


def draft_far_cell(path: Path) -> None:
    import openpyxl
    wb = openpyxl.Workbook()
    ws = wb.active
    ws["A1"] = "序号"
    ws["XFD1048576"] = "x"
    wb.save(path)


# ---------------------------------------------------------------- LibreOffice

def soffice(src: Path, target: str, outdir: Path, profile: Path) -> Path:
    subprocess.run(["soffice", "--headless", "--norestore", f"-env:UserInstallation={profile.as_uri()}",
                    "--convert-to", target, "--outdir", str(outdir), str(src)],
                   check=True, capture_output=True, timeout=180)
    ext = target.split(":", 1)[0]
    out = outdir / f"{src.stem}.{ext}"
    if not out.exists():
        raise RuntimeError(f"LibreOffice wrote no {out}")
    return out


def uno_encrypt(src: str, dst: str, password: str, filter_name: str, profile: str) -> None:
    """Runs under the system Python: opens `src` in LibreOffice and stores it encrypted."""
    import uno
    from com.sun.star.beans import NamedValue, PropertyValue

    def prop(cls, name, value):
        p = cls()
        p.Name, p.Value = name, value
        return p

    pipe = f"mailbotfx{os.getpid()}"
    proc = subprocess.Popen(["soffice", "--headless", "--invisible", "--norestore",
                             f"-env:UserInstallation={Path(profile).as_uri()}", f"--accept=pipe,name={pipe};urp;"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    desktop = None
    try:
        local = uno.getComponentContext()
        resolver = local.ServiceManager.createInstanceWithContext("com.sun.star.bridge.UnoUrlResolver", local)
        for _ in range(150):
            try:
                ctx = resolver.resolve(f"uno:pipe,name={pipe};urp;StarOffice.ComponentContext")
                break
            except Exception:   # noqa: BLE001 - not listening yet
                time.sleep(0.2)
        else:
            raise RuntimeError("LibreOffice did not start")
        desktop = ctx.ServiceManager.createInstanceWithContext("com.sun.star.frame.Desktop", ctx)
        doc = desktop.loadComponentFromURL(uno.systemPathToFileUrl(os.path.abspath(src)), "_blank", 0,
                                           (prop(PropertyValue, "Hidden", True),))
        if "2007" in filter_name:
            # the OOXML filter encrypts only when told the crypto type explicitly (LibreOffice 7.4)
            data = uno.Any("[]com.sun.star.beans.NamedValue",
                           (prop(NamedValue, "OOXPassword", password), prop(NamedValue, "CryptoType", "Standard")))
            args = (prop(PropertyValue, "FilterName", filter_name), prop(PropertyValue, "EncryptionData", data))
        else:
            args = (prop(PropertyValue, "FilterName", filter_name), prop(PropertyValue, "Password", password))
        uno.invoke(doc, "storeToURL", (uno.systemPathToFileUrl(os.path.abspath(dst)),
                                       uno.Any("[]com.sun.star.beans.PropertyValue", args)))
        doc.close(True)
    finally:
        try:
            if desktop is not None:
                desktop.terminate()
        except Exception:   # noqa: BLE001 - the bridge drops as it terminates
            pass
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def encrypt(src: Path, dst: Path, filter_name: str, profile: Path) -> None:
    subprocess.run([SYSTEM_PYTHON, __file__, "--uno-encrypt", str(src), str(dst), "x", filter_name, str(profile)],
                   check=True, timeout=180)


# ---------------------------------------------------------------- hand-built files

_CONTENT_TYPES = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                  '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                  '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
                  '<Default Extension="xml" ContentType="application/xml"/>'
                  '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
                  '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
                  '</Types>')
_ROOT_RELS = ('<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
              '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
              '</Relationships>')
_BOOK_RELS = ('<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
              '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>'
              '</Relationships>')
_WORKBOOK = ('<?xml version="1.0" encoding="UTF-8"?>{dtd}<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
             'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
             '<sheets>{sheets}</sheets></workbook>')
_SHEET = ('<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
          '<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>{text}</t></is></c></row></sheetData></worksheet>')
_ONE_SHEET = '<sheet name="Sheet1" sheetId="1" r:id="rId1"/>'
_LAUGHS = ('<!DOCTYPE workbook [<!ENTITY lol "lol">'
           + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10))
           + ']>')


_STAMP = (2026, 11, 1, 0, 0, 0)     # fixed, so a rebuilt hand-made zip is byte-identical


def _put(zf: zipfile.ZipFile, name: str, data: str | bytes, method: int = zipfile.ZIP_DEFLATED) -> None:
    zf.writestr(zipfile.ZipInfo(name, date_time=_STAMP), data, method)


def _package(path: Path, parts: dict[str, str | bytes]) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in parts.items():
            _put(zf, name, data)


def build_xml_bomb(path: Path) -> None:
    _package(path, {"[Content_Types].xml": _CONTENT_TYPES, "_rels/.rels": _ROOT_RELS,
                    "xl/workbook.xml": _WORKBOOK.format(dtd=_LAUGHS, sheets=_ONE_SHEET),
                    "xl/_rels/workbook.xml.rels": _BOOK_RELS,
                    "xl/worksheets/sheet1.xml": _SHEET.format(text="&amp;lol9;")})


def build_zip_bomb(path: Path) -> None:
    head, tail = _SHEET.format(text="x").split("<sheetData>")
    with zipfile.ZipFile(path, "w") as zf:
        _put(zf, "[Content_Types].xml", _CONTENT_TYPES)
        _put(zf, "_rels/.rels", _ROOT_RELS)
        _put(zf, "xl/workbook.xml", _WORKBOOK.format(dtd="", sheets=_ONE_SHEET))
        _put(zf, "xl/_rels/workbook.xml.rels", _BOOK_RELS)
        info = zipfile.ZipInfo("xl/worksheets/sheet1.xml", date_time=_STAMP)
        info.compress_type = zipfile.ZIP_BZIP2
        with zf.open(info, "w") as part:
            part.write((head + "<sheetData>").encode())
            spaces = b" " * (16 << 20)
            for _ in range(64):                       # 1 GiB of whitespace: valid XML, ~1 KB bzip2
                part.write(spaces)
            part.write(tail.encode())


def build_nosheets(path: Path) -> None:
    _package(path, {"[Content_Types].xml": _CONTENT_TYPES.replace(
        '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>', ""),
        "_rels/.rels": _ROOT_RELS,
        "xl/workbook.xml": _WORKBOOK.format(dtd="", sheets=""),
        "xl/_rels/workbook.xml.rels": _BOOK_RELS.split("<Relationship ")[0] + "</Relationships>"})


def build_ods_bomb(path: Path) -> None:
    content = ('<?xml version="1.0" encoding="UTF-8"?>'
               '<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
               'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
               'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2">'
               '<office:body><office:spreadsheet><table:table table:name="Sheet1">'
               '<table:table-column table:number-columns-repeated="16384"/>'
               '<table:table-row table:number-rows-repeated="1048576">'
               '<table:table-cell table:number-columns-repeated="16384" office:value-type="string"><text:p>x</text:p></table:table-cell>'
               '</table:table-row></table:table></office:spreadsheet></office:body></office:document-content>')
    manifest = ('<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">'
                '<manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>'
                '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/></manifest:manifest>')
    with zipfile.ZipFile(path, "w") as zf:
        _put(zf, "mimetype", "application/vnd.oasis.opendocument.spreadsheet", zipfile.ZIP_STORED)
        _put(zf, "content.xml", content)
        _put(zf, "META-INF/manifest.xml", manifest)


def build_macro(src: Path, path: Path) -> None:
    fake_vba = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504)
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(path, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item)
            if item.filename == "[Content_Types].xml":
                data = data.replace(b"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
                                    b"application/vnd.ms-excel.sheet.macroEnabled.main+xml")
                data = data.replace(b"</Types>", b'<Default Extension="bin" ContentType="application/vnd.ms-office.vbaProject"/></Types>')
            _put(zout, item.filename, data)
        _put(zout, "xl/vbaProject.bin", fake_vba)


_PDF = b"""%PDF-1.4
1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj
2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj
3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]>>endobj
trailer<</Root 1 0 R>>
%%EOF
"""


def build_pe(path: Path) -> None:
    mz = bytearray(64)
    mz[0:2] = b"MZ"
    struct.pack_into("<I", mz, 0x3C, 0x40)
    coff = b"PE\0\0" + struct.pack("<HHIIIHH", 0x14C, 0, 0, 0, 0, 0xE0, 0x0102)
    optional = bytearray(0xE0)
    struct.pack_into("<H", optional, 0, 0x10B)      # PE32
    struct.pack_into("<H", optional, 68, 3)         # console subsystem
    path.write_bytes(bytes(mz) + coff + bytes(optional))


def build_elf(path: Path) -> None:
    path.write_bytes(b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
                     + struct.pack("<HHIQQQIHHHHHH", 2, 0x3E, 1, 0x401000, 64, 0, 0, 64, 56, 0, 64, 0, 0))


def build_csv(path: Path) -> None:
    lines = [",".join(HEADER[:-1]),
             "1,济南某某商贸有限公司,法人及非法人组织,91350100M000100Y43,王五,济长市监罚〔2026〕301号,罚款,0.2,2026/10/9,2026/10/12"]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("gbk"))


# ---------------------------------------------------------------- main

def main() -> None:
    if not shutil.which("soffice"):
        sys.exit("LibreOffice (soffice) is needed")
    with tempfile.TemporaryDirectory(prefix="mailbot-fx-") as tmp:
        tmp = Path(tmp)
        profile = tmp / "profile"
        drafts = tmp / "drafts"
        lo = tmp / "lo"
        drafts.mkdir()
        lo.mkdir()
        for name, draft in (("sgs_valid", draft_valid), ("sgs_sheet1", draft_sheet1), ("sgs_broken", draft_broken),
                            ("empty", draft_empty)):
            draft(drafts / f"{name}.xlsx")
            shutil.copy(soffice(drafts / f"{name}.xlsx", "xlsx:Calc MS Excel 2007 XML", lo, profile),
                        HERE / f"{name}.xlsx")
        for name in ("sgs_valid", "sgs_broken"):
            shutil.copy(soffice(drafts / f"{name}.xlsx", "xls:MS Excel 97", lo, profile), HERE / f"{name}.xls")
        shutil.copy(soffice(drafts / "sgs_valid.xlsx", "ods", lo, profile), HERE / "sgs_valid.ods")
        draft_1904(HERE / "date1904.xlsx")
        shutil.copy(soffice(HERE / "date1904.xlsx", "xls:MS Excel 97", lo, profile), HERE / "date1904.xls")
        encrypt(HERE / "sgs_valid.xlsx", HERE / "encrypted.xlsx", "Calc MS Excel 2007 XML", profile)
        encrypt(HERE / "sgs_valid.xlsx", HERE / "encrypted.xls", "MS Excel 97", profile)
    build_macro(HERE / "sgs_valid.xlsx", HERE / "macro.xlsm")
    build_xml_bomb(HERE / "xml_bomb.xlsx")
    build_zip_bomb(HERE / "zip_bomb.xlsx")
    draft_far_cell(HERE / "far_cell.xlsx")
    build_ods_bomb(HERE / "ods_bomb.ods")
    build_nosheets(HERE / "nosheets.xlsx")
    valid = (HERE / "sgs_valid.xlsx").read_bytes()
    (HERE / "truncated.xlsx").write_bytes(valid[: len(valid) // 2])
    (HERE / "pdf_as.xlsx").write_bytes(_PDF)
    build_pe(HERE / "pe_as.xlsx")
    build_elf(HERE / "elf_as.xlsx")
    build_csv(HERE / "sgs_gbk.csv")
    for p in sorted(HERE.iterdir()):
        if p.suffix != ".py":
            print(f"{p.stat().st_size:>8}  {p.name}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--uno-encrypt":
        uno_encrypt(*sys.argv[2:7])
    else:
        main()
