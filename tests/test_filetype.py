"""What a file really is: from its bytes, never from its name (fixtures: tests/data/workbooks)."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from mailbot.intake.filetype import OleError, OleFile, describe, mismatch, sniff
from mailbot.model import FileKind

WB = Path(__file__).resolve().parent / "data" / "workbooks"


def data(name: str) -> bytes:
    return (WB / name).read_bytes()


@pytest.mark.parametrize("name, kind, description", [
    ("sgs_valid.xlsx", FileKind.XLSX, "Excel 2007+ 工作簿"),
    ("sgs_valid.xls", FileKind.XLS, "Excel 97-2003 工作簿"),
    ("sgs_valid.ods", FileKind.ODS, "OpenDocument电子表格"),
    ("macro.xlsm", FileKind.XLSM, "启用宏的Excel工作簿"),
    ("encrypted.xlsx", FileKind.ENCRYPTED, "设置了打开密码的Office文件（加密的xlsx/docx）"),
    ("encrypted.xls", FileKind.XLS, "Excel 97-2003 工作簿"),     # BIFF with FILEPASS: the reader tells
    ("pdf_as.xlsx", FileKind.PDF, "PDF文档"),
    ("pe_as.xlsx", FileKind.EXECUTABLE, "Windows可执行程序"),
    ("elf_as.xlsx", FileKind.EXECUTABLE, "Linux可执行程序(ELF)"),
    ("truncated.xlsx", FileKind.XLSX, "Excel 2007+ 工作簿"),      # names survive in the local headers
    ("zip_bomb.xlsx", FileKind.XLSX, "Excel 2007+ 工作簿"),
    ("sgs_gbk.csv", FileKind.CSV, "CSV文本表格"),
])
def test_fixtures(name, kind, description):
    assert sniff(data(name), name) == (kind, description)


def test_the_name_never_overrides_the_content():
    assert sniff(data("sgs_valid.xlsx"), "报表.pdf")[0] is FileKind.XLSX
    assert sniff(data("pdf_as.xlsx"), "")[0] is FileKind.PDF


def test_wps_et_is_an_xls_told_apart_only_by_the_name():
    assert sniff(data("sgs_valid.xls"), "双公示台账.et") == (FileKind.ET, "WPS表格工作簿")
    assert sniff(data("sgs_valid.xls"), "双公示台账.xls")[0] is FileKind.XLS


def _zip(members: dict[str, bytes | str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, content in members.items():
            zf.writestr(name, content)
    return buf.getvalue()


def test_zip_packages_by_their_members():
    assert sniff(_zip({"[Content_Types].xml": "<Types/>", "word/document.xml": "<w/>"}))[0] is FileKind.DOCX
    assert sniff(_zip({"mimetype": "application/vnd.oasis.opendocument.text", "content.xml": "<x/>"}))[0] is FileKind.ODT
    assert sniff(_zip({"a.txt": "hello"})) == (FileKind.ZIP, "ZIP压缩包")
    assert sniff(_zip({"[Content_Types].xml": "<Types/>", "ppt/presentation.xml": "<p/>"})) == (
        FileKind.UNKNOWN, "PowerPoint 演示文稿(.pptx)")
    macro_type = '<Types><Override ContentType="application/vnd.ms-excel.sheet.macroEnabled.main+xml"/></Types>'
    assert sniff(_zip({"[Content_Types].xml": macro_type, "xl/workbook.xml": "<w/>"}))[0] is FileKind.XLSM


def test_ole_directory_is_read():
    ole = OleFile(data("sgs_valid.xls"))
    assert "Workbook" in ole.names
    assert ole.stream("workbook")[:2] == b"\x09\x08"      # BIFF8 BOF record
    assert set(OleFile(data("encrypted.xlsx")).names) >= {"EncryptionInfo", "EncryptedPackage"}


def test_truncated_ole_is_not_a_readable_directory():
    with pytest.raises(OleError):
        OleFile(data("sgs_valid.xls")[:1024])
    # nameless and unreadable: the extension picks among the OLE formats, the reader says broken
    assert sniff(data("sgs_valid.xls")[:1024], "a.xls") == (FileKind.XLS, "Excel 97-2003 工作簿（文件已损坏）")


def test_small_things():
    assert sniff(b"") == (FileKind.UNKNOWN, "空文件(0字节)")
    assert sniff(b"#!/bin/sh\nrm -rf /\n", "x.xlsx") == (FileKind.EXECUTABLE, "脚本程序")
    assert sniff(b"\x78\x9f\x3e\x22" + bytes(40), "winmail.dat")[0] is FileKind.TNEF
    assert sniff("序号,名称\n1,张三\n".encode("gbk"), "a.csv")[0] is FileKind.CSV
    assert sniff("序号,名称\n1,张三\n".encode("gbk"), "a.txt")[0] is FileKind.TEXT
    assert sniff(b"<html><body><table><tr><td>1</td></tr></table></body></html>", "a.xls") == (FileKind.TEXT, "HTML网页")


@pytest.mark.parametrize("kind, name, note", [
    (FileKind.PDF, "台账.xlsx", "文件扩展名为.xlsx，但内容实为PDF文档"),
    (FileKind.EXECUTABLE, "台账.XLSX", "文件扩展名为.xlsx，但内容实为可执行程序"),
    (FileKind.XLSX, "台账.xls", "文件扩展名为.xls，但内容实为Excel 2007+ 工作簿"),
    (FileKind.UNKNOWN, "台账.xlsx", "文件扩展名为.xlsx，但内容无法识别为任何已知格式"),
    (FileKind.XLSX, "台账.xlsx", None),
    (FileKind.ENCRYPTED, "台账.xlsx", None),      # Excel saves protected xlsx as OLE: no lie
    (FileKind.XLS, "台账.et", None),
    (FileKind.PDF, "说明", None),                # no extension: nothing promised
    (FileKind.PDF, "a.unknownext", None),
])
def test_mismatch(kind, name, note):
    assert mismatch(kind, name) == note


def test_every_kind_has_a_description():
    assert all(describe(k) for k in FileKind)
