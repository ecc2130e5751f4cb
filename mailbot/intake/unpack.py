"""Expand packed attachments, zip archives and Outlook's winmail.dat, into the files inside them, within bounds.

A container that cannot be opened safely (bomb, password, damage, too deep, too many files)
is never half-expanded: it stays one Attachment, as received, carrying the Problems that
say why, so the sender is told exactly what to resend.
"""
from __future__ import annotations

import io
import logging
import struct
import zipfile
import zlib
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Mapping, NamedTuple

from mailbot.intake.names import clean_filename, decode_bytes, zip_member_name
from mailbot.model import Attachment, Problem

__all__ = [
    "DEFAULT_LIMITS", "Budget", "Unpacked",
    "expand", "is_zip", "is_tnef", "tnef_files", "type_for_name", "ext_for_type",
]

MiB = 1 << 20

DEFAULT_LIMITS: Mapping[str, int] = MappingProxyType({
    "max_unpacked_bytes": 200 * MiB,  # bytes produced by unpacking, all containers of a message
    "max_files": 500,                 # attachments per message, unpacked members included
    "max_depth": 3,                   # containers (zip, winmail.dat, forwarded message) nested
    "max_ratio": 100,                 # uncompressed / compressed size of one zip member
})
# A high ratio alone is not a bomb: a small text file of blanks compresses 500 times. Only
# members that would also be big are judged by their ratio.
RATIO_FLOOR = 1 * MiB
_CHUNK = 1 * MiB


@dataclass
class Budget:
    """What one message may still unpack; shared, and spent, by every container in it."""
    max_unpacked_bytes: int = DEFAULT_LIMITS["max_unpacked_bytes"]
    max_files: int = DEFAULT_LIMITS["max_files"]
    max_depth: int = DEFAULT_LIMITS["max_depth"]
    max_ratio: int = DEFAULT_LIMITS["max_ratio"]
    unpacked: int = 0
    files: int = 0

    @classmethod
    def from_limits(cls, limits: Mapping[str, int] | None) -> tuple["Budget", list[str]]:
        """A fresh budget from a limits mapping; unusable values fall back to the defaults, with a note."""
        notes: list[str] = []
        values = dict(DEFAULT_LIMITS)
        for key, value in dict(limits or {}).items():
            if key not in DEFAULT_LIMITS:
                notes.append(f"unknown limit {key!r} ignored")
            elif isinstance(value, bool) or not isinstance(value, int) or value < 1:
                notes.append(f"limit {key}={value!r} unusable, default {DEFAULT_LIMITS[key]} used")
            else:
                values[key] = value
        return cls(**values), notes

    @property
    def bytes_left(self) -> int:
        return self.max_unpacked_bytes - self.unpacked


class Unpacked(NamedTuple):
    """What an attachment stands for once expanded: files, log notes, and any body text found (TNEF)."""
    attachments: tuple[Attachment, ...]
    notes: tuple[str, ...] = ()
    texts: tuple[str, ...] = ()


# ---------------------------------------------------------------- types by name

_TYPE_EXT = {
    "application/pdf": ".pdf", "application/zip": ".zip", "application/x-zip-compressed": ".zip",
    "application/x-zip": ".zip", "application/vnd.ms-excel": ".xls",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
    "application/vnd.ms-excel.sheet.macroenabled.12": ".xlsm", "application/msword": ".doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/vnd.ms-powerpoint": ".ppt",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": ".pptx",
    "application/vnd.oasis.opendocument.spreadsheet": ".ods",
    "application/vnd.oasis.opendocument.text": ".odt", "application/ofd": ".ofd",
    "application/x-rar-compressed": ".rar", "application/vnd.rar": ".rar", "application/x-rar": ".rar",
    "application/x-7z-compressed": ".7z", "application/ms-tnef": ".dat",
    "application/vnd.ms-tnef": ".dat", "application/rtf": ".rtf", "text/rtf": ".rtf",
    "application/pkcs7-signature": ".p7s", "application/x-pkcs7-signature": ".p7s",
    "application/pkcs7-mime": ".p7m", "application/x-pkcs7-mime": ".p7m",
    "application/json": ".json", "application/xml": ".xml", "text/xml": ".xml",
    "image/jpeg": ".jpg", "image/jpg": ".jpg", "image/pjpeg": ".jpg", "image/png": ".png",
    "image/gif": ".gif", "image/bmp": ".bmp", "image/tiff": ".tif", "image/webp": ".webp",
    "image/heic": ".heic", "image/svg+xml": ".svg", "text/plain": ".txt", "text/html": ".html",
    "text/csv": ".csv", "text/calendar": ".ics", "message/rfc822": ".eml", "audio/mpeg": ".mp3",
    "audio/amr": ".amr", "video/mp4": ".mp4", "application/octet-stream": ".bin",
}
_EXT_TYPE = {ext: t for t, ext in reversed(list(_TYPE_EXT.items()))}
_EXT_TYPE.update({".jpeg": "image/jpeg", ".tiff": "image/tiff", ".htm": "text/html",
                  ".et": "application/vnd.ms-excel", ".wps": "application/msword",
                  ".zip": "application/zip", ".txt": "text/plain", ".dat": "application/octet-stream"})


def ext_for_type(content_type: str) -> str:
    """The usual extension for a MIME type, ".bin" when unknown (no /etc/mime.types: pure)."""
    return _TYPE_EXT.get(content_type.lower(), ".bin")


def type_for_name(name: str) -> str:
    """A MIME type guessed from a file name's extension, application/octet-stream when unknown."""
    dot = name.rfind(".")
    return _EXT_TYPE.get(name[dot:].lower(), "application/octet-stream") if dot >= 0 else "application/octet-stream"


# ---------------------------------------------------------------- problems

def _size(n: int) -> str:
    return f"{n // MiB}MB" if n % MiB == 0 and n >= MiB else f"{n}字节"


def _problem(code: str, name: str, budget: Budget, member: str = "") -> Problem:
    texts = {
        "zip-bomb": f"压缩包'{name}'解压后超过{_size(budget.max_unpacked_bytes)}，疑为压缩炸弹，未予处理；请直接发送其中的文件。",
        "zip-ratio": f"压缩包'{name}'中的'{member}'压缩比超过{budget.max_ratio}倍，疑为压缩炸弹，未予处理；请直接发送其中的文件。",
        "zip-encrypted": f"压缩包'{name}'设有密码，无法打开；请去掉密码后重新发送，或直接发送其中的文件。",
        "zip-broken": f"压缩包'{name}'已损坏，无法解压；请重新压缩后发送，或直接发送其中的文件。",
        "zip-unsupported": f"压缩包'{name}'使用了不支持的压缩方式，无法解压；请用常见的ZIP格式重新压缩，或直接发送其中的文件。",
        "zip-too-deep": f"压缩包'{name}'嵌套超过{budget.max_depth}层，未予解压；请直接发送其中的文件。",
        "zip-too-many-files": f"压缩包'{name}'内的文件使本邮件附件超过{budget.max_files}个，未予处理；请分批发送。",
        "zip-empty": f"压缩包'{name}'中没有文件；请检查后重新发送。",
        "tnef-broken": f"附件'{name}'（Outlook的winmail.dat）已损坏，无法读取其中的文件；请在Outlook中改用HTML或纯文本格式重新发送。",
        "tnef-too-large": f"附件'{name}'（Outlook的winmail.dat）中的文件超过{_size(budget.max_unpacked_bytes)}，未予处理；请直接发送其中的文件。",
        "tnef-too-deep": f"附件'{name}'（Outlook的winmail.dat）嵌套超过{budget.max_depth}层，未予处理；请直接发送其中的文件。",
        "tnef-too-many-files": f"附件'{name}'（Outlook的winmail.dat）中的文件使本邮件附件超过{budget.max_files}个，未予处理；请分批发送。",
    }
    # zip-ratio is a kind of bomb: one code for the letter and the statistics
    return Problem(code="zip-bomb" if code == "zip-ratio" else code, message=texts[code])


def _reject(att: Attachment, problem: Problem, note: str) -> Unpacked:
    return Unpacked((replace(att, problems=att.problems + (problem,)),), (note,))


# ---------------------------------------------------------------- entry point

def expand(att: Attachment, budget: Budget) -> Unpacked:
    """The files `att` stands for: the members of a zip or winmail.dat, recursively, or `att`
    itself (with Problems if it could not be unpacked). Spends `budget`; never raises.

    OOXML and ODF packages (xlsx, docx, ods...) are zips too and are never expanded.
    """
    try:
        if is_tnef(att.content):
            return _expand_tnef(att, budget)
        if is_zip(att.content) and not _package_by_name(att.filename):
            return _expand_zip(att, budget)
    except Exception as exc:  # noqa: BLE001 - a library surprise must not lose the message
        code = "tnef-broken" if is_tnef(att.content) else "zip-broken"
        return _reject(att, _problem(code, att.filename, budget),
                       f"{att.filename}: unexpected {type(exc).__name__} while unpacking: {exc}")
    return Unpacked((att,))


def _children(container: Attachment, files: list[tuple[str, bytes, list[str]]], budget: Budget) -> Unpacked:
    origin = container.origin + (container.filename,)
    out: list[Attachment] = []
    notes: list[str] = []
    texts: list[str] = []
    for name, data, why in files:
        child = Attachment(filename=name, content=data, declared_type=type_for_name(name),
                           origin=origin, notes=tuple(why))
        got = expand(child, budget)
        out.extend(got.attachments)
        notes.extend(got.notes)
        texts.extend(got.texts)
    return Unpacked(tuple(out), tuple(notes), tuple(texts))


# ---------------------------------------------------------------- zip

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
_PACKAGE_EXTS = {
    ".xlsx", ".xlsm", ".xltx", ".xltm", ".xlam", ".docx", ".docm", ".dotx", ".dotm", ".pptx",
    ".pptm", ".ppsx", ".potx", ".ods", ".odt", ".odp", ".odg", ".ots", ".ott", ".ofd", ".xps",
    ".oxps", ".epub", ".jar", ".apk", ".ipa", ".vsdx", ".3mf", ".whl", ".et", ".wps", ".dps",
}
# OOXML has [Content_Types].xml, ODF and EPUB a `mimetype` first member, OFD (China's
# e-document format, common in government mail) OFD.xml
_PACKAGE_MEMBERS = {"[content_types].xml", "mimetype", "ofd.xml"}
_JUNK_NAMES = {"thumbs.db", ".ds_store", "desktop.ini"}


def is_zip(content: bytes) -> bool:
    return content[:4] in _ZIP_MAGIC


def _package_by_name(filename: str) -> bool:
    dot = filename.rfind(".")
    return dot >= 0 and filename[dot:].lower() in _PACKAGE_EXTS


def _junk(path: str) -> bool:
    parts = [p for p in path.replace("\\", "/").split("/") if p]
    if not parts or path.endswith(("/", "\\")):
        return True
    base = parts[-1].lower()
    return "__MACOSX" in parts or base in _JUNK_NAMES or base.startswith("._")


class _Refused(Exception):
    def __init__(self, code: str, member: str = "", note: str = ""):
        super().__init__(note or code)
        self.code, self.member, self.note = code, member, note or code


def _expand_zip(att: Attachment, budget: Budget) -> Unpacked:
    name = att.filename
    try:
        return _unzip(att, budget)
    except _Refused as r:
        return _reject(att, _problem(r.code, name, budget, r.member), f"{name}: {r.note}")


def _unzip(att: Attachment, budget: Budget) -> Unpacked:
    try:
        zf = zipfile.ZipFile(io.BytesIO(att.content))
        infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError,
            struct.error, IndexError, UnicodeDecodeError, NotImplementedError) as exc:
        raise _Refused("zip-broken", note=f"not a readable zip ({exc})")
    if any(i.filename.lower() in _PACKAGE_MEMBERS for i in infos):
        return Unpacked((att,))
    if len(att.origin) + 1 > budget.max_depth:
        raise _Refused("zip-too-deep", note=f"nested deeper than {budget.max_depth}")
    members = [i for i in infos if not _junk(i.filename)]
    if not members:
        raise _Refused("zip-empty", note="zip holds no files")
    if budget.files - 1 + len(members) > budget.max_files:
        raise _Refused("zip-too-many-files", note=f"{len(members)} members exceed max_files")
    if any(i.flag_bits & 0x1 for i in members):
        raise _Refused("zip-encrypted", note="encrypted members")
    declared = sum(i.file_size for i in members)
    if declared > budget.bytes_left:
        raise _Refused("zip-bomb", note=f"declares {declared} bytes, {budget.bytes_left} left")
    for i in members:
        if i.file_size > RATIO_FLOOR and i.file_size > budget.max_ratio * max(i.compress_size, 1):
            raise _Refused("zip-ratio", _shown(i), f"member {i.filename!r} ratio over {budget.max_ratio}")
    files: list[tuple[str, bytes, list[str]]] = []
    spent = 0
    for info in members:
        data = _read_member(zf, info, budget.bytes_left - spent, budget.max_ratio)
        spent += len(data)
        files.append(_member(info, data))
    budget.unpacked += spent
    budget.files += len(files) - 1
    return _children(att, files, budget)


def _shown(info: zipfile.ZipInfo) -> str:
    return clean_filename(zip_member_name(info)[0]) or info.filename


def _member(info: zipfile.ZipInfo, data: bytes) -> tuple[str, bytes, list[str]]:
    path, why = zip_member_name(info)
    notes = [why] if why else []
    name = clean_filename(path)
    if name != path.strip("/\\"):
        notes.append(f"path in archive: {path!r}")
    return name or "未命名文件", data, notes


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, bytes_left: int, max_ratio: int) -> bytes:
    # the sizes in the headers are the attacker's word: count what really comes out
    chunks: list[bytes] = []
    total = 0
    try:
        with zf.open(info) as f:
            while True:
                chunk = f.read(_CHUNK)
                if not chunk:
                    break
                total += len(chunk)
                if total > bytes_left:
                    raise _Refused("zip-bomb", note=f"member {info.filename!r} inflates past the budget")
                if total > RATIO_FLOOR and total > max_ratio * max(info.compress_size, 1):
                    raise _Refused("zip-ratio", _shown(info), f"member {info.filename!r} inflates past ratio")
                chunks.append(chunk)
    except _Refused:
        raise
    except NotImplementedError as exc:  # before RuntimeError, its base class
        raise _Refused("zip-unsupported", note=str(exc))
    except RuntimeError as exc:  # zipfile's "password required"
        raise _Refused("zip-encrypted", note=str(exc))
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, struct.error,
            IndexError, TypeError, AttributeError, LookupError) as exc:
        raise _Refused("zip-broken", note=f"member {info.filename!r}: {type(exc).__name__}: {exc}")
    return b"".join(chunks)


# ---------------------------------------------------------------- TNEF (winmail.dat)

_TNEF_MAGIC = b"\x78\x9f\x3e\x22"
_IMESSAGE_SIG = b"\x07\x03\x02\x00\x00\x00\x00\x00\xc0\x00\x00\x00\x00\x00\x00\x46"
_FIXED = {0x0002: 2, 0x000B: 2, 0x0003: 4, 0x0004: 4, 0x000A: 4, 0x0005: 8, 0x0007: 8,
          0x0006: 8, 0x0014: 8, 0x0040: 8, 0x0048: 16}
_VARIABLE = {0x001E, 0x001F, 0x000D, 0x0102, 0x0000}
# tnefparse copies the rest of the stream for every object; bound that copying
_TNEF_WORK = 4 << 30


def is_tnef(content: bytes) -> bool:
    return content[:4] == _TNEF_MAGIC


def _u32(data: bytes, off: int) -> int:
    return struct.unpack_from("<I", data, off)[0]


def _u16(data: bytes, off: int) -> int:
    return struct.unpack_from("<H", data, off)[0]


def _mapi_sane(data: bytes, off: int, depth: int) -> int | None:
    """Walk MAPI properties as tnefparse will, checking every count against the bytes left.

    tnefparse believes the counts in the stream: a winmail.dat claiming 2**32 properties or
    values would keep it looping for minutes. Returns the end offset, or None if unsafe.
    """
    n = len(data)
    if off + 4 > n:
        return None
    count = _u32(data, off)
    off += 4
    if count > (n - off) // 4 + 1:
        return None
    try:
        for _ in range(count):
            if off >= n:
                break
            typ, name = _u16(data, off), _u16(data, off + 2)
            off += 4
            if name >= 0x8000:
                off += 16
                kind = _u32(data, off)
                off += 4
                if kind == 0:
                    off += 4
                else:
                    length = _u32(data, off)
                    off += 4 + length + (-length % 4)
            values = None
            if typ & 0x1000:
                typ ^= 0x1000
                values = _u32(data, off)
                off += 4
                if values > n - off:
                    return None
            for _ in range(values or 1):
                if typ in _FIXED:
                    off += _FIXED[typ]
                    if off > n:
                        return None
                    continue
                if typ not in _VARIABLE:
                    return off  # tnefparse stops at an unknown type; so do we
                items = 1 if values else _u32(data, off)
                if not values:
                    off += 4
                if items > (n - off) // 4 + 1:
                    return None
                for _ in range(items):
                    length = _u32(data, off)
                    off += 4
                    item = data[off:off + length]
                    if name == 0x3701 and item.startswith(_IMESSAGE_SIG):
                        if not _tnef_sane(item[len(_IMESSAGE_SIG):], depth + 1):
                            return None
                    off += length + (-length % 4)
            if (values or 1) % 2 and typ in (0x0002, 0x000B):
                off += 2  # as tnefparse: an odd number of 16-bit values is padded to 32 bits
    except struct.error:
        return off  # tnefparse catches this inside its loop and keeps what it read
    return off


def _tnef_sane(data: bytes, depth: int = 0) -> bool:
    if depth > 3 or not is_tnef(data) or len(data) < 6:
        return False
    off, n, work = 6, len(data), 0
    while off + 12 < n:
        length = _u32(data, off + 5)
        size = min(n - off, length + 11)
        body = data[off + 9:off + size - 2]
        name = _u16(data, off + 1)
        if data[off] not in (1, 2):
            return False  # every TNEF object is message- or attachment-level; this is noise
        if name in (0x9003, 0x9005) and _mapi_sane(body, 0, depth) is None:
            return False
        if name == 0x9004:
            if len(body) < 4 or _u32(body, 0) > len(body) // 4:
                return False
            pos = 4
            for _ in range(_u32(body, 0)):
                end = _mapi_sane(body, pos, depth)
                if end is None or end <= pos:
                    return False
                pos = end
        work += n - off
        if work > _TNEF_WORK:
            return False
        off += size
    return True


def tnef_files(data: bytes) -> tuple[list[tuple[str, bytes, list[str]]], list[str]]:
    """The files in a raw TNEF stream as (name, bytes, notes), and any body text.

    Raises ValueError when the stream is not TNEF, is damaged, or is unsafe to hand to tnefparse.
    """
    import tnefparse  # noqa: PLC0415 - only mail from Outlook needs it

    # tnefparse logs every damaged property at ERROR; without a handler of its own Python
    # would print those to stderr. Records still reach the application's handlers.
    _quiet = logging.getLogger("tnefparse")
    if not _quiet.handlers:
        _quiet.addHandler(logging.NullHandler())

    if not _tnef_sane(data):
        raise ValueError("TNEF stream is damaged or claims impossible sizes")
    try:
        tnef = tnefparse.TNEF(data, do_checksum=False)
    except Exception as exc:  # noqa: BLE001 - tnefparse raises whatever struct/codec raise
        raise ValueError(f"tnefparse: {type(exc).__name__}: {exc}") from exc
    codepage = getattr(tnef, "codepage", None)
    files = []
    for i, a in enumerate(tnef.attachments, 1):
        content = getattr(a, "data", b"")
        if not isinstance(content, (bytes, bytearray)) or not content:
            continue
        name, why = _tnef_name(a, codepage)
        files.append((clean_filename(name) or f"未命名文件{i}", bytes(content), why))
    texts = [t for t in (_tnef_text(tnef.body, codepage),) if t.strip()]
    return files, texts


def _tnef_name(a, codepage: str | None) -> tuple[str, list[str]]:
    try:
        name = a.long_filename()
        if isinstance(name, str) and name.strip("\x00").strip():
            return name.strip("\x00"), []
    except Exception:  # noqa: BLE001 - tnefparse decodes the short name as UTF-8 and fails on GBK
        pass
    raw = getattr(a, "_name", b"")
    if isinstance(raw, str):
        return raw.strip("\x00"), []
    raw = bytes(raw or b"").strip(b"\x00")
    text, codec = decode_bytes(raw, codepage)
    return text, ([] if codec in ("ascii", "utf-8") else [f"winmail.dat name decoded as {codec}"])


def _tnef_text(body, codepage: str | None) -> str:
    if isinstance(body, str):
        return body.strip("\x00")
    if isinstance(body, (bytes, bytearray)):
        return decode_bytes(bytes(body).strip(b"\x00"), codepage)[0]
    return ""


def _expand_tnef(att: Attachment, budget: Budget) -> Unpacked:
    name = att.filename
    if len(att.origin) + 1 > budget.max_depth:
        return _reject(att, _problem("tnef-too-deep", name, budget), f"{name}: nested too deep")
    try:
        files, texts = tnef_files(att.content)
    except ValueError as exc:
        return _reject(att, _problem("tnef-broken", name, budget), f"{name}: {exc}")
    if not files:
        return Unpacked((), (f"{name}: winmail.dat holds no files; dropped",), tuple(texts))
    size = sum(len(d) for _, d, _ in files)
    if size > budget.bytes_left:
        return _reject(att, _problem("tnef-too-large", name, budget), f"{name}: {size} bytes exceed budget")
    if budget.files - 1 + len(files) > budget.max_files:
        return _reject(att, _problem("tnef-too-many-files", name, budget), f"{name}: too many files")
    budget.unpacked += size
    budget.files += len(files) - 1
    got = _children(att, files, budget)
    return Unpacked(got.attachments, got.notes, tuple(texts) + got.texts)

