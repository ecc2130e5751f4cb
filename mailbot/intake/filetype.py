"""Tells what a file really is from its bytes (never from its name), with a Chinese description.

libmagic names most formats, but it cannot be trusted with containers: an xlsx, an xlsm and a
docx are all zips, and an xls, a doc and a password-protected xlsx are all OLE compound files.
Those are decided here by their members (zip) or directory entries (OLE/CFB, read by a small
reader of our own so no extra package is needed).
"""
from __future__ import annotations

import io
import re
import struct
import zipfile

import magic

from mailbot.model import FileKind

__all__ = ["sniff", "describe", "mismatch", "OleFile", "OleError", "OLE_MAGIC"]

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"

_DESCRIPTION = {
    FileKind.XLSX: "Excel 2007+ 工作簿",
    FileKind.XLSM: "启用宏的Excel工作簿",
    FileKind.XLS: "Excel 97-2003 工作簿",
    FileKind.ET: "WPS表格工作簿",
    FileKind.ODS: "OpenDocument电子表格",
    FileKind.CSV: "CSV文本表格",
    FileKind.PDF: "PDF文档",
    FileKind.DOCX: "Word 2007+ 文档",
    FileKind.DOC: "Word 97-2003 文档",
    FileKind.WPS: "WPS文字文档",
    FileKind.ODT: "OpenDocument文本文档",
    FileKind.JPEG: "JPEG图片",
    FileKind.PNG: "PNG图片",
    FileKind.GIF: "GIF图片",
    FileKind.ZIP: "ZIP压缩包",
    FileKind.RAR: "RAR压缩包",
    FileKind.SEVENZ: "7z压缩包",
    FileKind.EML: "电子邮件(.eml)",
    FileKind.TNEF: "Outlook附件包(winmail.dat)",
    FileKind.TEXT: "纯文本文件",
    FileKind.ENCRYPTED: "设置了打开密码的Office文件",
    FileKind.EXECUTABLE: "可执行程序",
    FileKind.UNKNOWN: "无法识别的文件",
}

# what each extension may honestly hold; an encrypted xlsx is an OLE file by design, not a lie
_EXPECTED: dict[str, frozenset[FileKind]] = {
    ext: frozenset(kinds) for ext, kinds in {
        "xlsx": (FileKind.XLSX, FileKind.ENCRYPTED),
        "xlsm": (FileKind.XLSM, FileKind.ENCRYPTED),
        "xls": (FileKind.XLS,),
        "et": (FileKind.ET, FileKind.XLS),
        "ett": (FileKind.ET, FileKind.XLS),
        "ods": (FileKind.ODS,),
        "csv": (FileKind.CSV, FileKind.TEXT),
        "txt": (FileKind.TEXT, FileKind.CSV),
        "pdf": (FileKind.PDF,),
        "docx": (FileKind.DOCX, FileKind.ENCRYPTED),
        "doc": (FileKind.DOC,),
        "wps": (FileKind.WPS, FileKind.DOC),
        "odt": (FileKind.ODT,),
        "jpg": (FileKind.JPEG,),
        "jpeg": (FileKind.JPEG,),
        "png": (FileKind.PNG,),
        "gif": (FileKind.GIF,),
        "zip": (FileKind.ZIP,),
        "rar": (FileKind.RAR,),
        "7z": (FileKind.SEVENZ,),
        "eml": (FileKind.EML,),
        "exe": (FileKind.EXECUTABLE,),
    }.items()
}

_MIME = {
    "application/pdf": (FileKind.PDF, "PDF文档"),
    "image/jpeg": (FileKind.JPEG, "JPEG图片"),
    "image/png": (FileKind.PNG, "PNG图片"),
    "image/gif": (FileKind.GIF, "GIF图片"),
    "application/x-rar": (FileKind.RAR, "RAR压缩包"),
    "application/vnd.rar": (FileKind.RAR, "RAR压缩包"),
    "application/x-7z-compressed": (FileKind.SEVENZ, "7z压缩包"),
    "message/rfc822": (FileKind.EML, "电子邮件(.eml)"),
    "application/vnd.ms-tnef": (FileKind.TNEF, "Outlook附件包(winmail.dat)"),
    "text/csv": (FileKind.CSV, "CSV文本表格"),
    "application/x-dosexec": (FileKind.EXECUTABLE, "Windows可执行程序"),
    "application/vnd.microsoft.portable-executable": (FileKind.EXECUTABLE, "Windows可执行程序"),
    "application/x-msdownload": (FileKind.EXECUTABLE, "Windows可执行程序"),
    "application/x-msi": (FileKind.EXECUTABLE, "Windows安装程序(MSI)"),
    "application/x-executable": (FileKind.EXECUTABLE, "Linux可执行程序(ELF)"),
    "application/x-pie-executable": (FileKind.EXECUTABLE, "Linux可执行程序(ELF)"),
    "application/x-sharedlib": (FileKind.EXECUTABLE, "Linux动态库(ELF)"),
    "application/x-mach-binary": (FileKind.EXECUTABLE, "macOS可执行程序"),
    "application/x-elf": (FileKind.EXECUTABLE, "Linux可执行程序(ELF)"),
    # scripts run by a double click on Windows or a shell: as dangerous as a program
    "text/x-shellscript": (FileKind.EXECUTABLE, "脚本程序"),
    "text/x-msdos-batch": (FileKind.EXECUTABLE, "Windows批处理脚本"),
    "application/x-bat": (FileKind.EXECUTABLE, "Windows批处理脚本"),
    "text/html": (FileKind.TEXT, "HTML网页"),
    "text/rtf": (FileKind.UNKNOWN, "RTF文档"),
    "application/rtf": (FileKind.UNKNOWN, "RTF文档"),
    "application/encrypted": (FileKind.ENCRYPTED, "设置了打开密码的Office文件"),
    "application/vnd.ms-excel": (FileKind.XLS, "Excel 97-2003 工作簿"),
    "application/msword": (FileKind.DOC, "Word 97-2003 文档"),
    "application/gzip": (FileKind.UNKNOWN, "gzip压缩文件"),
    "application/x-bzip2": (FileKind.UNKNOWN, "bzip2压缩文件"),
    "application/x-tar": (FileKind.UNKNOWN, "tar归档文件"),
}

_TNEF_SIGNATURE = b"\x78\x9f\x3e\x22"
_EXCEL_2003_XML = re.compile(rb"<\?mso-application\s+progid=\"Excel\.Sheet\"", re.I)


def describe(kind: FileKind) -> str:
    return _DESCRIPTION[kind]


def mismatch(kind: FileKind, filename: str) -> str | None:
    """A Chinese note when the file's extension promises something its content is not."""
    ext = _extension(filename)
    expected = _EXPECTED.get(ext)
    if expected is None or kind in expected:
        return None
    if kind is FileKind.UNKNOWN:
        return f"文件扩展名为.{ext}，但内容无法识别为任何已知格式"
    return f"文件扩展名为.{ext}，但内容实为{describe(kind)}"


def sniff(content: bytes, filename: str = "", *, archive: zipfile.ZipFile | None = None) -> tuple[FileKind, str]:
    """The file's real kind and a Chinese description of it; `filename` only picks between
    formats that are the same bytes (xls/et, doc/wps, csv/text), never overrides the content.
    `archive`: the content already opened as a zip (open_zip), so its directory is read once."""
    if not content:
        return FileKind.UNKNOWN, "空文件(0字节)"
    ext = _extension(filename)
    if content.startswith(b"PK\x03\x04") or content.startswith(b"PK\x05\x06"):
        return _sniff_zip(content, archive)
    if content.startswith(OLE_MAGIC):
        return _sniff_ole(content, ext)
    if content.startswith(_TNEF_SIGNATURE):
        return FileKind.TNEF, describe(FileKind.TNEF)
    return _sniff_magic(content, ext)


def _extension(filename: str) -> str:
    name = (filename or "").strip().rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    return name.rsplit(".", 1)[1].lower() if "." in name else ""


# ---------------------------------------------------------------- zip packages

def _sniff_zip(content: bytes, archive: zipfile.ZipFile | None = None) -> tuple[FileKind, str]:
    names, read = _zip_names(content, archive)
    lower = {n.lower() for n in names}
    if "mimetype" in lower:
        return _sniff_odf(read("mimetype") or content[30:120])
    if any(n.startswith("xl/") for n in lower):
        macro = "xl/vbaproject.bin" in lower or b"macroenabled" in (read("[Content_Types].xml") or b"").lower()
        if macro:
            return FileKind.XLSM, describe(FileKind.XLSM)
        if "xl/workbook.bin" in lower:
            return FileKind.XLSX, "Excel 二进制工作簿(.xlsb)"
        return FileKind.XLSX, describe(FileKind.XLSX)
    if any(n.startswith("word/") for n in lower):
        macro = "word/vbaproject.bin" in lower
        return FileKind.DOCX, "启用宏的Word文档" if macro else describe(FileKind.DOCX)
    if any(n.startswith("ppt/") for n in lower):
        return FileKind.UNKNOWN, "PowerPoint 演示文稿(.pptx)"
    if "androidmanifest.xml" in lower and "classes.dex" in lower:
        return FileKind.EXECUTABLE, "安卓应用安装包(APK)"
    if "meta-inf/manifest.mf" in lower and any(n.endswith(".class") for n in lower):
        return FileKind.EXECUTABLE, "Java程序包(JAR)"
    return FileKind.ZIP, describe(FileKind.ZIP)


def open_zip(content: bytes) -> zipfile.ZipFile | None:
    """The content opened as a zip held in memory, for sniff() and workbook.read_workbook() to
    share; None where it does not open (each then says why in its own way)."""
    try:
        return zipfile.ZipFile(io.BytesIO(content))
    except (zipfile.BadZipFile, ValueError, OSError, EOFError):
        return None


def _zip_names(content: bytes, archive: zipfile.ZipFile | None = None):
    """Member names and a bounded reader; a truncated zip (no central directory) still shows
    its names in the local headers, which is enough to call a cut-off xlsx an xlsx."""
    zf = archive
    if zf is None:
        try:
            zf = zipfile.ZipFile(io.BytesIO(content))
        except (zipfile.BadZipFile, ValueError, OSError):
            return _local_header_names(content), lambda name: None

    def read(name: str) -> bytes | None:
        try:
            info = zf.getinfo(name)
            if info.file_size > 1 << 20:
                return None
            return zf.read(info)
        except Exception:   # noqa: BLE001 - a member we cannot read tells us nothing
            return None
    return zf.namelist(), read


def _local_header_names(content: bytes) -> list[str]:
    names = []
    for m in re.finditer(rb"PK\x03\x04", content):
        start = m.start()
        if start + 30 > len(content):
            break
        name_len, = struct.unpack_from("<H", content, start + 26)
        raw = content[start + 30:start + 30 + name_len]
        names.append(raw.decode("utf-8", "replace"))
    return names


def _sniff_odf(mimetype: bytes) -> tuple[FileKind, str]:
    text = mimetype.split(b"PK", 1)[0].decode("ascii", "replace")
    if "opendocument.spreadsheet" in text:
        return FileKind.ODS, describe(FileKind.ODS)
    if "opendocument.text" in text:
        return FileKind.ODT, describe(FileKind.ODT)
    return FileKind.UNKNOWN, "OpenDocument文件(非表格、非文字文档)"


# ---------------------------------------------------------------- OLE compound files

class OleError(ValueError):
    """The bytes are not a readable OLE compound file (truncated, corrupt, cyclic chains)."""


_FREE, _END = 0xFFFFFFFF, 0xFFFFFFFE


class OleFile:
    """The directory of an OLE/CFB file (MS-CFB) and its streams' bytes, with every chain
    bounded so a crafted file cannot loop or allocate without end."""

    def __init__(self, content: bytes):
        if not content.startswith(OLE_MAGIC) or len(content) < 512:
            raise OleError("not an OLE compound file")
        self._b = content
        try:
            self._parse_header()
            self._fat = self._read_fat()
            self._entries = self._read_directory()
        except (struct.error, IndexError) as e:
            raise OleError(f"corrupt OLE structure: {e}") from e

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(e[0] for e in self._entries)

    def has(self, name: str) -> bool:
        key = name.casefold()
        return any(e[0].casefold() == key for e in self._entries)

    def stream(self, name: str, limit: int = 64 << 20) -> bytes:
        """The bytes of the first stream called `name` (case-insensitive), at most `limit`."""
        key = name.casefold()
        for ename, etype, start, size in self._entries:
            if ename.casefold() == key and etype == 2:
                size = min(size, limit)
                try:
                    if size < self._mini_cutoff:
                        return self._read_mini(start, size)
                    return self._read_chain(start, size)
                except (struct.error, IndexError) as e:
                    raise OleError(f"corrupt stream {name!r}: {e}") from e
        raise OleError(f"no stream {name!r}")

    def _parse_header(self) -> None:
        b = self._b
        shift, mini_shift = struct.unpack_from("<HH", b, 0x1E)
        if shift not in (9, 12) or mini_shift != 6:
            raise OleError("bad sector sizes")
        self._ssize = 1 << shift
        (self._nfat, self._first_dir, _, self._mini_cutoff, self._first_minifat,
         self._nminifat, self._first_difat, self._ndifat) = struct.unpack_from("<IIIIIIII", b, 0x2C)
        self._nsectors = max(0, (len(b) - self._ssize) // self._ssize)

    def _sector(self, n: int) -> bytes:
        if n >= self._nsectors:
            raise OleError(f"sector {n} beyond the end of the file (truncated?)")
        off = (n + 1) * self._ssize
        return self._b[off:off + self._ssize]

    def _read_fat(self) -> tuple[int, ...]:
        per = self._ssize // 4
        fat_sectors = [s for s in struct.unpack_from("<109I", self._b, 0x4C) if s < 0xFFFFFFFA]
        difat, seen = self._first_difat, set()
        while difat < 0xFFFFFFFA and len(seen) < self._ndifat:
            if difat in seen:
                raise OleError("cyclic DIFAT chain")
            seen.add(difat)
            entries = struct.unpack(f"<{per}I", self._sector(difat))
            fat_sectors.extend(s for s in entries[:-1] if s < 0xFFFFFFFA)
            difat = entries[-1]
        fat: list[int] = []
        for s in fat_sectors[: self._nfat or len(fat_sectors)]:
            fat.extend(struct.unpack(f"<{per}I", self._sector(s)))
        return tuple(fat)

    def _chain(self, start: int, table: tuple[int, ...]) -> list[int]:
        chain, seen = [], set()
        while start not in (_END, _FREE):
            if start in seen or start >= len(table):
                raise OleError("broken sector chain")
            seen.add(start)
            chain.append(start)
            start = table[start]
        return chain

    def _read_chain(self, start: int, size: int | None = None) -> bytes:
        out = bytearray()
        for s in self._chain(start, self._fat):
            out += self._sector(s)
            if size is not None and len(out) >= size:
                break
        return bytes(out if size is None else out[:size])

    def _read_directory(self) -> list[tuple[str, int, int, int]]:
        raw = self._read_chain(self._first_dir)
        entries = []
        for off in range(0, len(raw) - 127, 128):
            name_len, etype = struct.unpack_from("<HB", raw, off + 64)
            if etype not in (1, 2, 5) or not 2 <= name_len <= 64:
                continue
            name = raw[off:off + name_len - 2].decode("utf-16-le", "replace")
            start, size = struct.unpack_from("<II", raw, off + 116)
            entries.append((name, etype, start, size))
        if not entries or entries[0][1] != 5:
            raise OleError("no root entry")
        return entries

    def _read_mini(self, start: int, size: int) -> bytes:
        root = self._entries[0]
        ministream = self._read_chain(root[2], root[3])
        minifat_raw = self._read_chain(self._first_minifat) if self._nminifat else b""
        minifat = struct.unpack(f"<{len(minifat_raw) // 4}I", minifat_raw)
        out = bytearray()
        for s in self._chain(start, minifat):
            out += ministream[s * 64:(s + 1) * 64]
            if len(out) >= size:
                break
        return bytes(out[:size])


def _sniff_ole(content: bytes, ext: str) -> tuple[FileKind, str]:
    try:
        names = {n.casefold() for n in OleFile(content).names}
    except OleError:
        # a cut-off file still has its directory names somewhere in the bytes: enough to
        # call it what it was meant to be, so the reader can say "broken", not "unknown"
        names = {n.casefold() for n in ("EncryptionInfo", "EncryptedPackage", "Workbook", "Book",
                                        "WordDocument", "PowerPoint Document")
                 if n.encode("utf-16-le") in content}
    if not names:
        # unreadable and nameless: the extension may choose among OLE formats, the reader
        # will then report the file as broken rather than as something unknown
        guess = {"xls": FileKind.XLS, "et": FileKind.ET, "ett": FileKind.ET, "doc": FileKind.DOC,
                 "wps": FileKind.WPS}.get(ext)
        if guess:
            return guess, describe(guess) + "（文件已损坏）"
    if {"encryptioninfo", "encryptedpackage"} <= names:
        return FileKind.ENCRYPTED, describe(FileKind.ENCRYPTED) + "（加密的xlsx/docx）"
    if "workbook" in names or "book" in names:
        if ext in ("et", "ett"):
            return FileKind.ET, describe(FileKind.ET)
        return FileKind.XLS, describe(FileKind.XLS)
    if "worddocument" in names:
        if ext in ("wps", "wpt"):
            return FileKind.WPS, describe(FileKind.WPS)
        return FileKind.DOC, describe(FileKind.DOC)
    if "powerpoint document" in names:
        return FileKind.UNKNOWN, "PowerPoint 97-2003 演示文稿"
    if any(n.startswith("__substg1.0_") for n in names):
        return FileKind.UNKNOWN, "Outlook邮件(.msg)"
    mime = magic.from_buffer(content, mime=True)
    if mime == "application/x-msi":
        return FileKind.EXECUTABLE, "Windows安装程序(MSI)"
    return FileKind.UNKNOWN, "OLE复合文档(未知类型)"


# ---------------------------------------------------------------- everything else: libmagic

def _sniff_magic(content: bytes, ext: str) -> tuple[FileKind, str]:
    mime = magic.from_buffer(content, mime=True)
    if mime in _MIME:
        kind, text = _MIME[mime]
        if kind is FileKind.TEXT and _EXCEL_2003_XML.search(content[:4096]):
            return FileKind.UNKNOWN, "Excel 2003 XML表格"
        return kind, text
    if mime in ("text/xml", "application/xml"):
        if _EXCEL_2003_XML.search(content[:4096]):
            return FileKind.UNKNOWN, "Excel 2003 XML表格"
        return FileKind.TEXT, "XML文本"
    if mime.startswith("text/"):
        if ext == "csv":
            return FileKind.CSV, describe(FileKind.CSV)
        return FileKind.TEXT, describe(FileKind.TEXT)
    label = magic.from_buffer(content)
    return FileKind.UNKNOWN, f"无法识别的文件（{label}）" if label and label != "data" else describe(FileKind.UNKNOWN)
