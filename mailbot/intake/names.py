"""Decode header text and file names the way Chinese mail clients really send them.

Covers RFC 2047 encoded words (also inside quoted parameters and glued to plain text, as
Outlook, Foxmail and Sparrow write them), RFC 2231 parameters with continuations, raw 8-bit
GBK or UTF-8 bytes (swaks, mpack, mailutils, sendEmail), mislabelled GB charsets and zip
member names stored without the UTF-8 flag. Everything works on the raw bytes of the
message: the standard library's decoders have already lost the information needed here.
Nothing in this module raises on bad input; it degrades to a best guess.
"""
from __future__ import annotations

import binascii
import codecs
import functools
import re
import struct
import zlib
from dataclasses import dataclass, field
from urllib.parse import unquote_to_bytes

__all__ = [
    "HeaderValue",
    "codecs_for",
    "decode_bytes",
    "guess_decode",
    "hint_codecs",
    "decode_words",
    "decode_header",
    "unfold",
    "parse_header_value",
    "zip_member_name",
    "clean_filename",
]


# ---------------------------------------------------------------- charsets

# GB2312 and GBK labels are routinely put on text holding GBK-only or GB18030-only
# characters (Outlook Express, QQ mail); GB18030 is a superset of both, so it is always safe.
_GB = ("gb18030", )
_LABELS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(
        ("gb2312", "gbk", "xgbk", "cp936", "ms936", "windows936", "euccn", "xeuccn", "gb231280",
         "csgb2312", "chinese", "isoir58", "gb18030", "xgb18030", "csgb18030", "gb2312y", "936",
         "csgbk", "gb180302000", "gb180302005", "xmacchinesesimp"), _GB),
    **dict.fromkeys(
        ("big5", "xbig5", "cnbig5", "csbig5", "big5tw", "cp950", "ms950", "windows950", "xxbig5",
         "big5hkscs", "xbig5hkscs"), ("cp950", "big5hkscs")),
    **dict.fromkeys(
        ("ksc56011987", "ksc5601", "ksc56011989", "euckr", "xeuckr", "cseuckr", "cp949", "uhc",
         "windows949", "xwindows949", "ksc5601l"), ("cp949",)),
    **dict.fromkeys(
        ("shiftjis", "sjis", "xsjis", "mskanji", "cswindows31j", "windows31j", "cp932",
         "csshiftjis", "xmssjis"), ("cp932", "shift_jis_2004")),
    **dict.fromkeys(("iso2022jp", "csiso2022jp"), ("iso2022_jp", "iso2022_jp_ext", "iso2022_jp_2")),
    **dict.fromkeys(("eucjp", "xeucjp", "cseucpkdfmtjapanese"), ("euc_jp", "euc_jis_2004")),
    **dict.fromkeys(("utf8", "xutf8", "unicode11utf8", "utf8mb4"), ("utf-8",)),
    **dict.fromkeys(("utf7", "unicode11utf7", "xunicode20utf7"), ("utf-7",)),
    # browsers and mail clients read ISO-8859-1 as windows-1252; cp1252 leaves five bytes
    # undefined, latin-1 catches those
    **dict.fromkeys(("iso88591", "latin1", "l1", "cp819", "ibm819", "isoir100", "csisolatin1",
                     "windows1252", "cp1252", "xcp1252"), ("cp1252", "latin-1")),
}
# Labels that declare nothing: decode as if no charset had been given.
_NO_LABEL = {
    "", "usascii", "ascii", "ansix341968", "iso646us", "us", "646", "cp367", "ibm367", "csascii",
    "7bit", "8bit", "xunknown", "unknown", "unknown8bit", "xuserdefined", "default", "none",
    "charset", "binary", "null",
}
# Codecs Python knows that must never be used on mail: they are not charsets.
_REFUSED = {"unicode-escape", "raw-unicode-escape", "undefined", "idna", "punycode", "mbcs", "oem"}

_GB_KEY = "gb18030"


def _label_key(label: str) -> str:
    return re.sub(r"[^a-z0-9]", "", label.strip().strip("\"'").lower())


@functools.lru_cache(maxsize=512)   # a long subject repeats one label in every word
def codecs_for(label: str | bytes | None) -> tuple[str, ...]:
    """Python codec names to try for a declared charset, best first; () if it declares nothing usable."""
    if label is None:
        return ()
    if isinstance(label, bytes):
        label = label.decode("latin-1")
    key = _label_key(label)
    if key in _NO_LABEL or len(key) > 40:
        return ()
    if key in _LABELS:
        return _LABELS[key]
    try:
        info = codecs.lookup(label.strip().strip("\"'"))
    except (LookupError, ValueError, TypeError):
        return ()
    name = info.name.replace("_", "-")
    if name in _REFUSED or not getattr(info, "_is_text_encoding", True):
        return ()
    if name in ("gb2312", "gbk"):
        return _GB
    return (info.name,)


_WIDE = re.compile("[\u0800-\U0010ffff]")
_LATIN = re.compile("[\x00-\x7f\u00a0-\u00ff]*")
# single-byte Western labels are no hint: sendEmail and mailutils declare iso-8859-1 by
# default while putting GBK bytes in the headers
_NOT_HINTS = {"utf-8", "utf-7", "cp1252", "latin-1", "ascii"}
_CJK = {"gb18030", "cp950", "big5hkscs", "cp949", "cp932", "shift_jis_2004", "euc_jp", "euc_jis_2004"}
_ESCAPED = ("iso2022_jp_2", "iso2022_jp_ext", "iso2022_kr")


def hint_codecs(label: str | bytes | None) -> tuple[str, ...]:
    """Codecs a message's declared charset suggests for its undeclared raw 8-bit header bytes."""
    found = codecs_for(label)
    return () if not found or found[0] in _NOT_HINTS else found


def _utf8_wide(data: bytes) -> str | None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text if _WIDE.search(text) else None


def _common_chinese(text: str) -> bool:
    try:
        text.encode("gb2312")
    except UnicodeEncodeError:
        return False
    return True


_HAN = re.compile("[\u4e00-\u9fff]")


def _chinese_reading(data: bytes, codec: str = "gb18030") -> str | None:
    """`data` decoded by a Chinese codec, if that gives ordinary Chinese: at least two Han
    characters and, for GB18030, nothing outside GB2312. One accented Latin letter next to
    an ASCII one (danglüe@, Zürich) pairs into a rare GBK character and is refused."""
    try:
        text = data.decode(codec)
    except UnicodeDecodeError:
        return None
    if len(_HAN.findall(text, 0, 4096)) < 2:
        return None
    return text if codec != "gb18030" or _common_chinese(text) else None


def guess_decode(data: bytes, hint: str | bytes | None = None, *, gb_first: bool = False) -> tuple[str, str]:
    """Bytes whose charset nobody declared (raw 8-bit headers, zip names). Returns (text, codec).

    UTF-8 when it plausibly is (it holds three-byte characters such as CJK, or only Latin-1
    letters), else the charset the rest of the message declares (`hint`), else GB18030.
    Short GBK strings are often valid UTF-8 by accident, but then they decode to two-byte
    characters (Greek, Cyrillic, Hebrew, combining marks); when both readings work, GB18030
    wins only if the result is ordinary GB2312 Chinese.

    One or two GBK characters can also read as accented Latin in UTF-8 (猫 is "è"): with
    `gb_first` (zip names, written by Windows in GBK) ordinary Chinese wins that tie; without
    it (headers, where the corpus has a real "danglüe@" beside a GB2312 body) UTF-8 does.
    """
    if data.isascii():
        if b"\x1b$" in data or b"\x1b(" in data:   # ISO-2022 escapes in a 7-bit header
            for name in _ESCAPED:
                try:
                    return data.decode(name), name
                except UnicodeDecodeError:
                    continue
        return data.decode("ascii"), "ascii"
    hinted = hint_codecs(hint)
    try:
        utf8: str | None = data.decode("utf-8")
    except UnicodeDecodeError:
        utf8 = None
    if utf8 is not None:
        if _WIDE.search(utf8):
            return utf8, "utf-8"
        if _LATIN.fullmatch(utf8):
            if gb_first:
                try:
                    gb_text = data.decode("gb18030")
                    if _HAN.search(gb_text) and _common_chinese(gb_text):
                        return gb_text, "gb18030"
                except UnicodeDecodeError:
                    pass
            if hinted and hinted[0] in _CJK:
                # Big5 or GBK bytes once read as latin-1 and re-encoded as UTF-8 (Taiwanese
                # webmail relays): undo it when the message's own charset reads it back
                again = _chinese_reading(utf8.encode("latin-1"), hinted[0])
                if again is not None:
                    return again, f"{hinted[0]} (double encoding undone)"
            return utf8, "utf-8"
    for name in hinted:
        try:
            return data.decode(name), name
        except (UnicodeError, LookupError):
            continue
    try:
        gb: str | None = data.decode("gb18030")
    except UnicodeDecodeError:
        gb = None
    if gb is not None and (utf8 is None or _common_chinese(gb)):
        return gb, "gb18030"
    if utf8 is not None:
        return utf8, "utf-8"
    return data.decode("gb18030", "replace"), "gb18030 (with replacements)"


def decode_bytes(data: bytes, charset: str | bytes | None = None, *,
                 hint: str | bytes | None = None) -> tuple[str, str]:
    """Decode `data` declared as `charset`: the declared codec (GB labels read as GB18030),
    then UTF-8, then GB18030, then latin-1. Never raises. Returns (text, codec used).
    Without a usable declaration, guess_decode(data, hint)."""
    candidates = codecs_for(charset)
    if not candidates:
        return guess_decode(data, hint)
    if candidates == _GB:
        # a GB label on UTF-8 text (SpamScope mail_test_12) is a common mislabel; valid
        # UTF-8 with CJK in it is almost never really GBK
        utf8 = _utf8_wide(data)
        if utf8 is not None:
            return utf8, "utf-8"
    if candidates[0] == "cp1252" and not data.isascii():
        # sendEmail and mailutils label everything iso-8859-1; GBK text read as Latin-1
        # pairs every high byte into ordinary GB2312 characters, which real Latin-1
        # (accents between ASCII letters) practically never does
        chinese = _chinese_reading(data)
        if chinese is not None:
            return chinese, "gb18030 (declared iso-8859-1)"
    for name in candidates:
        try:
            return data.decode(name), name
        except (UnicodeError, LookupError, ValueError, TypeError):
            continue
    if data.isascii():
        # a stateful 7-bit charset (ISO-2022-JP with NEC extensions): UTF-8 would "succeed"
        # and leave the escape sequences in; keep what the declared codec can read
        try:
            return data.decode(candidates[0], "replace"), f"{candidates[0]} (with replacements)"
        except (LookupError, ValueError, TypeError):
            return data.decode("ascii"), "ascii"
    for name in ("utf-8", "gb18030"):
        try:
            return data.decode(name), name
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1"), "latin-1"


# ---------------------------------------------------------------- RFC 2047

# Lenient on purpose: words are decoded wherever they appear, also glued to plain text
# ("=?utf-8?Q?...?=1009.xls") and inside quoted parameters, which RFC 2047 forbids but
# Outlook, Foxmail and Sparrow produce.
_WORD = re.compile(r"=\?([^?\s*]+)(?:\*[^?\s]*)?\?([BbQq])\?([^?\r\n]*)\?=")
_QHEX = re.compile(rb"=([0-9A-Fa-f]{2})")
_B64_JUNK = re.compile(r"[^A-Za-z0-9+/]")


def _b_decode(payload: str) -> bytes:
    core = _B64_JUNK.sub("", payload)
    if len(core) % 4 == 1:
        core = core[:-1]
    core += "=" * (-len(core) % 4)
    try:
        return binascii.a2b_base64(core)
    except (binascii.Error, ValueError):
        return b""


def _q_decode(payload: str) -> bytes:
    data = payload.replace("_", " ").encode("utf-8", "surrogateescape")
    return _QHEX.sub(lambda m: bytes((int(m[1], 16),)), data)


def decode_words(text: str) -> str:
    """Replace RFC 2047 encoded words in `text` by what they encode.

    Adjacent words in one charset are joined as bytes before decoding: clients split a
    multi-byte character across two words (MailCore broken-utf8, long GBK subjects).
    """
    if "=?" not in text:
        return text
    out: list[str] = []
    pending = bytearray()
    pending_label: str | None = None
    pending_key: str | None = None
    pos = 0

    def flush() -> None:
        nonlocal pending, pending_label, pending_key
        if pending_label is not None:
            out.append(decode_bytes(bytes(pending), pending_label)[0])
        pending, pending_label, pending_key = bytearray(), None, None

    for m in _WORD.finditer(text):
        gap = text[pos:m.start()]
        if pending_label is None or (gap and not gap.isspace()):
            flush()
            out.append(gap)
        label = m[1]
        key = "|".join(codecs_for(label)) or _label_key(label)
        if pending_label is not None and key != pending_key:
            flush()
        data = _b_decode(m[3]) if m[2] in "Bb" else _q_decode(m[3])
        pending += data
        pending_label, pending_key = label, key
        pos = m.end()
    flush()
    out.append(text[pos:])
    return "".join(out)


# ---------------------------------------------------------------- whole headers

_FOLD = re.compile(rb"\r?\n(?=[ \t])")
_NEWLINES = re.compile(r"[\r\n]+")


def unfold(raw: bytes) -> bytes:
    """RFC 5322 unfolding: drop the line break before a continuation's whitespace."""
    return _FOLD.sub(b"", raw)


def decode_header(raw: bytes, hint: str | bytes | None = None) -> tuple[str, str | None]:
    """An unstructured header value (raw bytes as in the message) as text, plus a note
    when raw 8-bit bytes had to be guessed (else None). `hint`: see guess_decode."""
    data = unfold(raw)
    text, codec = guess_decode(data, hint)
    note = None if codec == "ascii" else f"raw 8-bit header bytes decoded as {codec}"
    text = decode_words(text)
    return _NEWLINES.sub(" ", text).strip(), note


# ---------------------------------------------------------------- parameters (RFC 2045/2231)

@dataclass(frozen=True)
class HeaderValue:
    """A Content-Type or Content-Disposition value: the main token and its decoded parameters.

    `raw` keeps plain parameter values undecoded (a boundary must be matched byte for byte);
    `notes` says, per parameter, how a non-ASCII value was recovered.
    """
    value: str = ""
    params: dict[str, str] = field(default_factory=dict)
    raw: dict[str, bytes] = field(default_factory=dict)
    notes: dict[str, tuple[str, ...]] = field(default_factory=dict)


_PARAM = re.compile(rb'[\s;]*([^\s=;"]+)\s*=\s*("(?:[^"\\]+|\\.)*"?|[^;]*)', re.S)
_MAX_PARAMS = 1000   # a real header has a handful; a hostile one millions
_UNESCAPE = re.compile(rb'\\(["\\])')
_SECTION = re.compile(r"([^*]+)(?:\*(\d{1,4}))?(\*)?")
_EXT_VALUE = re.compile(rb"([^']*)'([^']*)'(.*)", re.S)


def _unquote(value: bytes) -> bytes:
    if value.startswith(b'"'):
        value = value[1:-1] if len(value) > 1 and value.endswith(b'"') else value[1:]
        # only \" and \\ are escapes: IE and old Outlook send unescaped Windows paths
        return _UNESCAPE.sub(rb"\1", value)
    return value.strip()


def _split_params(raw: bytes) -> tuple[bytes, list[tuple[str, bytes]]]:
    semi = raw.find(b";")
    main = raw if semi < 0 else raw[:semi]
    items: list[tuple[str, bytes]] = []
    pos, end = len(main), len(raw)
    while pos < end:
        m = _PARAM.match(raw, pos)
        if m is None:
            nxt = raw.find(b";", pos + 1)
            if nxt < 0:
                break
            pos = nxt
            continue
        items.append((m[1].decode("latin-1").lower(), _unquote(m[2])))
        pos = max(m.end(), pos + 1)
        if len(items) >= _MAX_PARAMS:
            break
    return main, items


def _decode_plain(value: bytes, hint) -> tuple[str, list[str]]:
    notes = []
    text, codec = guess_decode(value, hint)
    if codec != "ascii":
        notes.append(f"raw 8-bit bytes decoded as {codec}")
    if "=?" in text:
        decoded = decode_words(text)
        if decoded != text:
            notes.append("RFC 2047 words inside a quoted parameter")
            text = decoded
    return text, notes


def _decode_2231(pieces: list[tuple[int, bytes, bool]], hint) -> tuple[str, list[str]]:
    # mutt and neomutt cut continuations in the middle of a GB18030 character, so every
    # piece's bytes are joined first and decoded once (policy.default decodes per piece)
    charset: bytes | None = None
    buf = bytearray()
    for i, (_, value, extended) in enumerate(pieces):
        if extended:
            if i == 0:
                m = _EXT_VALUE.fullmatch(value)
                if m:
                    charset, value = m[1], m[3]
            buf += unquote_to_bytes(value)
        else:
            buf += value
    data = bytes(buf)
    if charset:
        text, codec = decode_bytes(data, charset)
    else:
        text, codec = guess_decode(data, hint)
    notes = []
    if len(pieces) > 1:
        notes.append(f"RFC 2231 value joined from {len(pieces)} pieces, decoded as {codec}")
    elif codec not in ("ascii", "utf-8") or (charset and codecs_for(charset) != (codec,)):
        notes.append(f"RFC 2231 value decoded as {codec}")
    if "=?" in text:
        decoded = decode_words(text)
        if decoded != text:
            notes.append("RFC 2047 words inside an RFC 2231 value")
            text = decoded
    return text, notes


def parse_header_value(raw: bytes, hint: str | bytes | None = None) -> HeaderValue:
    """Parse a Content-Type / Content-Disposition value from its raw bytes. Never raises.
    `hint`: the message's charset, for undeclared raw 8-bit values (see guess_decode)."""
    raw = _NEWLINES.sub(" ", unfold(raw).decode("latin-1")).encode("latin-1")
    main, items = _split_params(raw)
    value = main.decode("latin-1").strip().strip("\"'").lower()
    plain: dict[str, bytes] = {}
    sections: dict[str, dict[int, tuple[bytes, bool]]] = {}
    for name, val in items:
        m = _SECTION.fullmatch(name)
        if m is None:
            continue
        base, number, star = m[1], m[2], m[3]
        if number is None and not star:
            plain.setdefault(base, val)
        else:
            sections.setdefault(base, {}).setdefault(int(number or 0), (val, bool(star)))
    params: dict[str, str] = {}
    notes: dict[str, tuple[str, ...]] = {}
    for base in list(plain) + [b for b in sections if b not in plain]:
        text, why = None, []
        if base in sections:
            pieces = [(n, v, e) for n, (v, e) in sorted(sections[base].items())]
            text, why = _decode_2231(pieces, hint)
            if "\ufffd" in text and base in plain:
                text = None  # the RFC 2047 / plain form may still be good
        if text is None:
            text, why = _decode_plain(plain[base], hint)
        params[base] = text
        if why:
            notes[base] = tuple(why)
    return HeaderValue(value=value, params=params, raw=plain, notes=notes)


# ---------------------------------------------------------------- file names

_CONTROL = re.compile("[\x00-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
_MAX_NAME = 200


def clean_filename(name: str) -> str:
    """A name safe to show and store: last path component, no control characters, bounded length."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _CONTROL.sub("", name).strip().strip("\"'").strip()
    if name in (".", ".."):
        return ""
    if len(name) > _MAX_NAME:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 10:
            name = stem[: _MAX_NAME - len(ext) - 1] + "." + ext
        else:
            name = name[:_MAX_NAME]
    return name


def _unicode_path_field(info, raw_name: bytes) -> str | None:
    # Info-ZIP Unicode Path extra field (0x7075), written by 7-Zip and WinRAR beside a
    # GBK name; valid only while its CRC matches the stored name
    extra = getattr(info, "extra", b"") or b""
    i = 0
    while i + 4 <= len(extra):
        header_id, size = struct.unpack_from("<HH", extra, i)
        body = extra[i + 4:i + 4 + size]
        if header_id == 0x7075 and len(body) >= 5 and body[0] == 1:
            if struct.unpack_from("<I", body, 1)[0] == zlib.crc32(raw_name):
                try:
                    return body[5:].decode("utf-8")
                except UnicodeDecodeError:
                    return None
        i += 4 + size
    return None


def zip_member_name(info) -> tuple[str, str | None]:
    """The real name of a zipfile.ZipInfo, plus a note when it had to be recovered.

    Windows' built-in zip and most Chinese archivers store GBK names without the UTF-8 flag
    (bit 11); zipfile then decodes them as cp437. Re-encoding as cp437 gives back the bytes,
    which are GB18030 (or, from macOS, UTF-8 without the flag).
    """
    name = info.filename
    if info.flag_bits & 0x800:
        return name, None
    try:
        raw = getattr(info, "orig_filename", name).encode("cp437")
    except UnicodeEncodeError:
        return name, None
    if raw.isascii():
        return name, None
    unicode_name = _unicode_path_field(info, raw)
    if unicode_name:
        return unicode_name, "zip member name taken from its Unicode Path field"
    text, codec = guess_decode(raw, gb_first=True)
    return text, f"zip member name decoded as {codec} (no UTF-8 flag)"
