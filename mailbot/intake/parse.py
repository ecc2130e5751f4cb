"""Turn the raw bytes of one email into an Incoming: decoded headers, readable text, every file however nested.

The MIME structure is split here, from the raw bytes, rather than by the standard library
or imap-tools: both decode header bytes before we can see them (GBK file names become
U+FFFD or silent mojibake, GB18030 characters split across RFC 2231 pieces break), and the
raw bytes are the only place those names can be recovered from (see mimenames).

The parts are memoryviews into the one raw message, never copies of it: a message with a 25 MB
attachment would otherwise be held five or six times over (each header split and each multipart
split copying what follows), and base64 is decoded window by window into one buffer for the
same reason. Only what is read (headers, texts, decoded files) becomes bytes of its own.
"""
from __future__ import annotations

import binascii
import datetime as dt
import email.utils
import hashlib
import html
import io
import re
from dataclasses import dataclass, field
from typing import Mapping
from urllib.parse import unquote

from mailbot.intake import trust, unpack
from mailbot.intake.names import (HeaderValue, clean_filename, decode_bytes, decode_header, decode_words,
                        guess_decode, hint_codecs, parse_header_value, unfold)
from mailbot.model import Attachment, Incoming, Problem

__all__ = ["parse_message", "DEFAULT_LIMITS"]

DEFAULT_LIMITS = unpack.DEFAULT_LIMITS

# Bounds on the MIME tree itself, not configurable: they only stop hostile structure.
_MAX_LEVEL = 60          # multipart / message nesting (Python's recursion limit is far above)
_MAX_ENTITIES = 5000     # parts in one message
_MAX_ADDRESS_HEADER = 64 * 1024   # getaddresses is pure Python; a 3-MB To: would take seconds
_MAX_HTML = 4 << 20      # characters of HTML stripped for the readable text
_MAX_PARAM_HEADER = 64 * 1024   # Content-Type / -Disposition; real ones are a few hundred bytes
_MAX_LABEL = 80          # characters of a forwarded subject shown in an origin
_MAX_NOTES = 200         # log notes kept per message

_MESSAGE_TYPES = {"message/rfc822", "message/global", "message/news"}
_REPORT_TYPES = {"message/delivery-status", "message/disposition-notification",
                 "message/feedback-report", "text/rfc822-headers", "message/global-delivery-status",
                 "message/global-headers", "message/global-disposition-notification"}
_TYPE = re.compile(r"[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+")
_HEADER = re.compile(rb"([!-9;-~]+)[ \t]*:")


def parse_message(raw: bytes, *, limits: Mapping[str, int] | None = None) -> Incoming:
    """Parse one message from its raw bytes. Never raises, for any input whatsoever.

    What cannot be done becomes `Incoming.notes` (English, for the log) or, for a file that
    cannot be unpacked, `Attachment.problems` (Chinese messages naming the file); such a file
    is kept whole, as received.

    `limits` bounds unpacking (missing keys take the default; bad values are noted and
    replaced by the default):

    - ``max_unpacked_bytes``: bytes produced by unpacking zips and winmail.dat, all of them
      together, per message; default 200 MiB (``200 * 2**20``).
    - ``max_files``: attachments per message, unpacked members included; default 500.
    - ``max_depth``: containers nested in one another (zip in zip, winmail.dat, forwarded
      message in forwarded message, counted together); default 3.
    - ``max_ratio``: uncompressed / compressed size of one zip member, judged for members
      over 1 MiB; default 100.

    Pure: reads only `raw`; no clock, no files (mimetypes' system tables are not consulted).
    """
    data = _as_bytes(raw)
    try:
        return _Parser(data, limits).run()
    except Exception as exc:  # noqa: BLE001 - the contract: a message never stops the mailbox
        return _empty(data, f"parser failed: {type(exc).__name__}: {exc}")


def _as_bytes(raw) -> bytes:
    if isinstance(raw, bytes):
        return raw
    if isinstance(raw, (bytearray, memoryview)):
        return bytes(raw)
    if isinstance(raw, str):
        return raw.encode("utf-8", "surrogateescape")
    return b""


def _synthetic_id(data: bytes) -> str:
    return f"{hashlib.sha256(data).hexdigest()}@mailbot.invalid"


def _empty(data: bytes, note: str) -> Incoming:
    # nothing of the message could be read: say so rather than answer "no attachment"
    problem = Problem("unreadable-message", "邮件格式异常，未能读取其中的内容和附件，本邮件未予处理",
                      hint="请新建一封邮件，重新添加附件后发送。")
    return Incoming(message_id=_synthetic_id(data), subject="", from_addr="", from_name="", to=(),
                    cc=(), reply_to=(), date=None, in_reply_to=None, references=(), headers={},
                    content_type="text/plain", text="", attachments=(), problems=(problem,), notes=(note,))


# ---------------------------------------------------------------- the MIME tree

@dataclass(eq=False)
class _Entity:
    headers: list[tuple[str, bytes]]
    body: memoryview                           # a view into the raw message (or a decoded forward)
    ctype: str
    ct: HeaderValue
    children: list["_Entity"] | None = None    # a multipart that split into parts
    message: "_Entity | None" = None           # an embedded message/rfc822
    _disposition: HeaderValue | None = None
    _text: str | None = None
    hint: str | None = None
    notes: list[str] = field(default_factory=list)

    def header(self, name: str) -> bytes | None:
        return next((v for n, v in self.headers if n == name), None)

    @property
    def disposition(self) -> HeaderValue:
        if self._disposition is None:
            raw = self.header("content-disposition")
            self._disposition = _header_value(raw, self.hint, self.notes) if raw is not None else HeaderValue()
        return self._disposition

    @property
    def cte(self) -> str:
        raw = self.header("content-transfer-encoding")
        return raw.decode("latin-1").strip().strip("\"'").lower() if raw else ""


def _header_value(raw: bytes, hint: str | None, notes: list[str]) -> HeaderValue:
    if len(raw) > _MAX_PARAM_HEADER:
        notes.append(f"parameter header over {_MAX_PARAM_HEADER} bytes; only its start read")
        raw = raw[:_MAX_PARAM_HEADER]
    return parse_header_value(raw, hint)


_LINE_END = re.compile(rb"\n")
_BLANK_LINE = re.compile(rb"^\r*(?:\n|\Z)", re.M)


def _split_head(data: memoryview, notes: list[str]) -> tuple[list[tuple[str, bytes]], memoryview]:
    """The header fields and a view of the body: only the head, up to the first blank line, is copied."""
    start = 0
    if data[:5] == b"From ":  # an mbox separator line, not a header
        nl = _LINE_END.search(data)
        start = len(data) if nl is None else nl.end()
    blank = _BLANK_LINE.search(data, start)
    head = bytes(data[:blank.end()] if blank else data)
    headers: list[tuple[str, bytes]] = []
    pos, end = start, len(head)
    name: str | None = None
    value: list[bytes] = []
    while pos < end:
        nl = head.find(b"\n", pos)
        stop = end if nl < 0 else nl + 1
        line = head[pos:stop].rstrip(b"\r\n")
        if not line:
            pos = stop
            break
        if line[:1] in (b" ", b"\t"):
            if name is not None:
                value.append(b"\r\n" + line)
            else:
                notes.append("header block starts with a continuation line; ignored")
            pos = stop
            continue
        m = _HEADER.match(line)
        if m is None:
            notes.append("header block ends without a blank line")
            break
        if name is not None:
            headers.append((name, b"".join(value)))
        name, value = m[1].decode("ascii").lower(), [line[m.end():].lstrip(b" \t")]
        pos = stop
    if name is not None:
        headers.append((name, b"".join(value)))
    return headers, data[pos:]


def _split_multipart(body: memoryview, boundary: bytes) -> tuple[list[memoryview], bool] | None:
    """The parts between boundary lines, and whether the closing boundary was seen; None if none is found."""
    if not boundary or len(boundary) > 998:
        return None
    parts: list[memoryview] = []
    start: int | None = None
    for at, end, closing in _delimiters(body, boundary):
        if start is not None:
            parts.append(_chop_newline(body[start:at]))
        if closing:
            return parts, True
        start = end + (1 if body[end:end + 1] == b"\n" else 0)
    if start is None:
        return None
    parts.append(body[start:])
    return parts, False


_DELIMITER_END = re.compile(rb"(--)?[ \t]*\r?$", re.M)


def _delimiters(body: memoryview, boundary: bytes):
    """(start, end, closing) of each boundary line, as re.finditer(rb"^--BOUNDARY(--)?[ \t]*\r?$", re.M)
    finds them, but found by the boundary's text: a search for a literal runs through a large
    base64 part many times faster than one trying a line start at every byte."""
    literal = re.compile(re.escape(b"--" + boundary))
    pos = 0
    while (m := literal.search(body, pos)) is not None:
        at = m.start()
        if at == 0 or body[at - 1] == 0x0A:                # ^ in MULTILINE: after a \n or at the start
            tail = _DELIMITER_END.match(body, m.end())
            if tail is not None:
                yield at, tail.end(), bool(tail[1])
                pos = tail.end()
                continue
        pos = at + 1


def _chop_newline(part: memoryview) -> memoryview:
    # the line break before a boundary belongs to the boundary (RFC 2046 §5.1.1)
    if part[-2:] == b"\r\n":
        return part[:-2]
    return part[:-1] if part[-1:] == b"\n" else part


# ---------------------------------------------------------------- transfer encodings

_B64_CHUNK = re.compile(rb"[A-Za-z0-9+/]+=*")
# notes that mean the part's bytes could not be recovered: the file is refused as damaged
_B64_UNDECODED = "base64 body holds text that is not base64; kept undecoded"
_B64_SKIPPED = "undecodable base64 chunk skipped"
_UU_SKIPPED = "undecodable uuencoded line skipped"
_DAMAGED = {_B64_UNDECODED: "base64", _B64_SKIPPED: "base64", _UU_SKIPPED: "uuencode"}
_SPACE = b" \t\n\r\x0b\x0c"            # what bytes.split() splits on
_NOT_B64 = bytes(sorted(set(range(256)) - set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")))
_B64_WINDOW = 1 << 20


def _b64(body: memoryview | bytes, notes: list[str]) -> bytes:
    """The body decoded, window by window into one buffer (a whole-body split or join would hold
    the part several times over). Whitespace is dropped; any other stray character too, unless
    there are so many that the body is not base64 at all: then it is kept undecoded."""
    body = memoryview(body)
    out, found = io.BytesIO(), []
    compact = stray = 0
    pending = b""          # the start of a chunk the next window continues
    for at in range(0, len(body), _B64_WINDOW):
        window = bytes(body[at:at + _B64_WINDOW])
        solid = window.translate(None, _SPACE)
        clean = solid.translate(None, _NOT_B64)
        compact, stray = compact + len(solid), stray + len(solid) - len(clean)
        pending = _b64_chunks(pending + clean, out, found, last=False)
    _b64_chunks(pending, out, found, last=True)
    if stray > max(2, compact // 50):
        notes.append(_B64_UNDECODED)
        return bytes(body)
    notes.extend(found)
    return out.getvalue()


def _b64_chunks(clean: bytes, out: io.BytesIO, notes: list[str], *, last: bool) -> bytes:
    """Decode the complete chunks of `clean` into `out`; returns what must wait for more input.

    Chunk by chunk, as some encoders concatenate separately padded base64 blocks. A chunk reaching
    the end of the input may go on in the next window: its whole quanta are decoded now (the same
    bytes as decoding it whole), the rest waits; once its padding began, only the padding's start."""
    for chunk, end in _b64_chunk_spans(clean):
        if end == len(clean) and not last:
            if chunk.endswith(b"="):
                return chunk.rstrip(b"=") + b"="
            whole = len(chunk) - len(chunk) % 4
            out.write(binascii.a2b_base64(chunk[:whole]))
            return chunk[whole:]
        core = chunk.rstrip(b"=")
        if len(core) % 4 == 1:
            core = core[:-1]
            notes.append("base64 body truncated mid-quantum")
        try:
            out.write(binascii.a2b_base64(core + b"=" * (-len(core) % 4)))
        except (binascii.Error, ValueError):
            notes.append(_B64_SKIPPED)
    return b""


def _b64_chunk_spans(clean: bytes):
    """(chunk, end) of each _B64_CHUNK match in `clean` (only base64 characters and '='). The usual
    body is one chunk, its padding (if any) at its very end: that one is told without the regex."""
    eq = clean.find(b"=")
    if clean[:1] not in (b"", b"=") and (eq < 0 or not clean[eq:].strip(b"=")):
        yield clean, len(clean)
        return
    for m in _B64_CHUNK.finditer(clean):
        yield m[0], m.end()


def _uu(body: bytes, notes: list[str]) -> bytes:
    out = []
    inside = False
    for line in body.splitlines():
        if not inside:
            inside = line.startswith(b"begin ")
            continue
        if line.strip() in (b"end", b"`", b""):
            if line.strip() == b"end":
                break
            continue
        try:
            out.append(binascii.a2b_uu(line))
        except binascii.Error:
            # trailing garbage from some encoders: cut the line to its declared length
            n = (((line[0] - 32) & 63) * 4 + 5) // 3
            try:
                out.append(binascii.a2b_uu(line[:n]))
            except binascii.Error:
                notes.append(_UU_SKIPPED)
    return b"".join(out)


_UUENCODED = ("x-uuencode", "uuencode", "x-uue", "uue")


def _transfer_decode(body: memoryview | bytes, cte: str, notes: list[str]) -> bytes:
    if cte == "base64":
        return _b64(body, notes)
    if cte == "quoted-printable":
        return binascii.a2b_qp(body)
    if cte in _UUENCODED:
        return _uu(bytes(body), notes)
    return bytes(body)


# ---------------------------------------------------------------- readable text

# Every pattern here is linear: hostile HTML ("<script" a hundred thousand times, unclosed)
# must not turn a lazy ".*?" or a "[^>]*" into quadratic scanning.
_BLOCK_OPEN = re.compile(r"(?i)<(script|style|head|title)\b|<!--")
_BLOCK_CLOSE = {name: re.compile(rf"(?i)</{name}\s*>") for name in ("script", "style", "head", "title")}
_BREAK = re.compile(r"(?i)<\s*(?:br|/?p|/?div|/?tr|/?li|/?h[1-6]|/?table|/?blockquote)\b[^<>]*>")
_CELL = re.compile(r"(?i)<\s*/?t[dh]\b[^<>]*>")
_TAG = re.compile(r"<[^<>]*>")
_SPACES = re.compile(r"[ \t\u00a0\u3000]+")
_BLANKS = re.compile(r"\n\s*\n\s*\n+")


def _drop_blocks(markup: str) -> str:
    """Remove comments and script/style/head/title blocks; an unclosed one runs to the end."""
    out, pos = [], 0
    while True:
        m = _BLOCK_OPEN.search(markup, pos)
        if m is None:
            out.append(markup[pos:])
            break
        out.append(markup[pos:m.start()])
        if m[1]:
            close = _BLOCK_CLOSE[m[1].lower()].search(markup, m.end())
            end = close.end() if close else -1
        else:
            end = markup.find("-->", m.end())
            end = end + 3 if end >= 0 else -1
        if end < 0:
            break
        pos = end
    return "".join(out)


def _strip_html(markup: str) -> str:
    markup = _drop_blocks(markup[:_MAX_HTML])
    markup = _CELL.sub("\t", _BREAK.sub("\n", markup))
    text = html.unescape(_TAG.sub("", markup))
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return _BLANKS.sub("\n\n", "\n".join(lines)).strip()


# ---------------------------------------------------------------- the parser

_CID_REF = re.compile(r"""(?i)cid:([^"'\s<>()]+)""")


@dataclass
class _Parser:
    data: bytes
    limits: Mapping[str, int] | None
    notes: list[str] = field(default_factory=list)
    entities: int = 0
    attachments: list[Attachment] = field(default_factory=list)
    extra_texts: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    cids: set[str] = field(default_factory=set)
    unnamed: int = 0
    hint: str | None = None
    dropped: list[Attachment] = field(default_factory=list)   # over max_files: not read
    cut: bool = False                                          # MIME structure over its bounds

    def run(self) -> Incoming:
        self.budget, limit_notes = unpack.Budget.from_limits(self.limits)
        self.notes.extend(limit_notes)
        self.hint = _charset_hint(self.data)
        root = self._entity(memoryview(self.data), "text/plain", 0)
        headers = self._headers(root)
        self._collect_cids(root)
        self._walk(root, (), None)
        self._limit_problems()
        # winmail.dat bodies repeat the MIME text: used only when the message has no other
        texts = self._texts(root) or [t.replace("\r\n", "\n") for t in self.extra_texts]
        from_values = [self._address_text(name, raw) for name, raw in root.headers if name == "from"]
        from_addr, from_name, from_claims, sender_problems = trust.sender_check(from_values)
        return Incoming(
            message_id=_first_id(headers.get("message-id", ())) or _synthetic_id(self.data),
            subject=(headers.get("subject") or ("",))[0],
            from_addr=from_addr,
            from_name=from_name,
            to=tuple(a for _, a in self._addresses(root, "to") if a),
            cc=tuple(a for _, a in self._addresses(root, "cc") if a),
            reply_to=self._reply_addresses(root, "reply-to"),
            date=self._date(headers.get("date", ())),
            in_reply_to=_first_id(headers.get("in-reply-to", ())),
            references=_ids(" ".join(headers.get("references", ()))),
            headers=headers,
            content_type=root.ctype,
            text="\n\n".join(t.strip("\n") for t in texts if t.strip()),
            attachments=tuple(self.attachments),
            problems=tuple(self.problems),
            notes=_bounded(self.notes),
            sender_problems=sender_problems,
            from_claims=from_claims,
            followup_to=self._reply_addresses(root, "mail-followup-to"),
        )

    # -- structure

    def _entity(self, data: memoryview, default_type: str, level: int) -> _Entity:
        headers, body = _split_head(memoryview(data), self.notes)
        raw_ct = next((v for n, v in headers if n == "content-type"), None)
        ct = _header_value(raw_ct, self.hint, self.notes) if raw_ct is not None else HeaderValue()
        ctype = ct.value if _TYPE.fullmatch(ct.value) else default_type
        if raw_ct is not None and ctype != ct.value:
            self.notes.append(f"invalid Content-Type {ct.value[:60]!r}; read as {default_type}")
        entity = _Entity(headers, body, ctype, ct, hint=self.hint, notes=self.notes)
        self.entities += 1
        if self.entities > _MAX_ENTITIES or level > _MAX_LEVEL:
            if self.entities == _MAX_ENTITIES + 1 or level == _MAX_LEVEL + 1:
                self.notes.append("MIME structure too large or too deep; the rest is read as one part")
            if ctype.startswith("multipart/") or ctype in _MESSAGE_TYPES:
                self.cut = True   # parts inside it, files among them perhaps, are not read
            return entity
        if ctype.startswith("multipart/"):
            self._split(entity, level)
        elif ctype in _MESSAGE_TYPES:
            # a forwarded message sent as it is (7bit, 8bit, binary) stays a view of the raw bytes
            encoded = entity.cte in ("base64", "quoted-printable", *_UUENCODED)
            inner = _transfer_decode(body, entity.cte, self.notes) if encoded else body
            entity.message = self._entity(inner, "text/plain", level + 1)
        return entity

    def _split(self, entity: _Entity, level: int) -> None:
        boundary = entity.ct.raw.get("boundary", b"")
        found = _split_multipart(entity.body, boundary)
        if found is None and entity.cte in ("base64", "quoted-printable"):
            # the transfer encoding on a multipart is illegal, but some senders really apply it
            found = _split_multipart(_transfer_decode(entity.body, entity.cte, []), boundary)
        if found is None:
            self.notes.append(f"{entity.ctype} without a usable boundary; read as text")
            return
        parts, closed = found
        if not closed:
            self.notes.append(f"{entity.ctype}: closing boundary missing")
        child_type = "message/rfc822" if entity.ctype == "multipart/digest" else "text/plain"
        entity.children = [self._entity(p, child_type, level + 1) for p in parts]

    def _limit_problems(self) -> None:
        """Every bound that stopped a file being read, told to the sender: the bound, and the files."""
        if self.dropped:
            n, limit = len(self.dropped), self.budget.max_files
            names = "、".join(f"'{_shown(a)}'" for a in self.dropped)
            self.problems.append(Problem(
                code="too-many-files",
                message=f"邮件中的附件（含压缩包内的文件）超过每封邮件{limit}个的处理上限，"
                        f"以下{n}个文件未予处理：{names}",
                hint=f"请将上述{n}个文件另行发送；附件较多时请分多封邮件发送，每封不超过{limit}个。"))
        if self.cut:
            self.problems.append(Problem(
                code="mime-too-complex",
                message=f"邮件结构超过处理上限（最多{_MAX_ENTITIES}个组成部分、{_MAX_LEVEL}层嵌套），"
                        "超出上限部分中的内容（可能包括附件）未予处理",
                hint="请将附件直接添加到一封新邮件中发送，不要层层转发；附件较多时请分多封邮件发送。"))

    # -- headers

    def _headers(self, root: _Entity) -> dict[str, tuple[str, ...]]:
        out: dict[str, list[str]] = {}
        for name, raw in root.headers:
            text, note = decode_header(raw, self.hint)
            if note:
                self.notes.append(f"{name}: {note}")
            out.setdefault(name, []).append(text)
        return {k: tuple(v) for k, v in out.items()}

    def _address_text(self, name: str, raw: bytes) -> str:
        # addresses are split before RFC 2047 decoding: a decoded name may hold commas
        text = guess_decode(unfold(raw), self.hint)[0].replace("\r", " ").replace("\n", " ")
        if len(text) > _MAX_ADDRESS_HEADER:
            self.notes.append(f"{name}: header over {_MAX_ADDRESS_HEADER} characters; only its start read")
            text = text[:_MAX_ADDRESS_HEADER]
        return text

    def _reply_addresses(self, root: _Entity, name: str) -> tuple[str, ...]:
        """Reply-To / Mail-Followup-To, strictly: each mailbox's addr-spec, as trust reads From."""
        raw = root.header(name)
        if raw is None:
            return ()
        return tuple(dict.fromkeys(b.address for b in trust.mailboxes(self._address_text(name, raw))[0] if b.address))

    def _addresses(self, root: _Entity, name: str) -> list[tuple[str, str]]:
        raw = root.header(name)
        if raw is None:
            return []
        text = self._address_text(name, raw)
        try:
            pairs = email.utils.getaddresses([text])
        except Exception as exc:  # noqa: BLE001 - the stdlib address parser has had crash bugs
            self.notes.append(f"{name}: unparsable ({type(exc).__name__})")
            return []
        out = []
        for display, addr in pairs:
            addr = addr.strip().strip("<>").strip().lower()
            display = decode_words(display).strip().strip('"').strip()
            if addr or display:
                out.append((display, addr))
        return out

    def _date(self, values: tuple[str, ...]) -> dt.datetime | None:
        if not values:
            return None
        try:
            when = email.utils.parsedate_to_datetime(values[0])
        except (TypeError, ValueError, IndexError, OverflowError):
            when = None
        if when is None:
            self.notes.append(f"Date {values[0][:60]!r} does not parse")
            return None
        # "-0000" means "zone unknown" (RFC 5322 §3.3); UTC is the honest reading
        return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)

    # -- text

    def _readable(self, entity: _Entity) -> str:
        if entity._text is None:
            data = _transfer_decode(entity.body, entity.cte, self.notes)
            text = decode_bytes(data, entity.ct.params.get("charset"), hint=self.hint)[0]
            text = text.replace("\r\n", "\n").replace("\r", "\n")
            entity._text = _strip_html(text) if entity.ctype == "text/html" else text
        return entity._text

    def _raw_html(self, entity: _Entity) -> str:
        data = _transfer_decode(entity.body, entity.cte, [])
        return decode_bytes(data, entity.ct.params.get("charset"), hint=self.hint)[0]

    def _texts(self, entity: _Entity) -> list[str]:
        if entity.children is not None:
            if entity.ctype == "multipart/alternative":
                return self._alternative(entity)
            return [t for c in entity.children for t in self._texts(c)]
        if entity.message is not None:
            return self._texts(entity.message)
        if self._is_attachment(entity):
            return []
        if entity.ctype in ("text/plain", "text/html") or entity.ctype.startswith("multipart/"):
            text = self._readable(entity)
            return [text] if text.strip() else []
        return []

    def _alternative(self, entity: _Entity) -> list[str]:
        options = [(c, self._texts(c)) for c in entity.children or ()]
        plain = [texts for c, texts in options if c.ctype == "text/plain" and texts]
        if plain:
            return plain[0]
        # RFC 2046: the last alternative is the richest one
        rest = [texts for _, texts in options if texts]
        return rest[-1] if rest else []

    def _collect_cids(self, entity: _Entity) -> None:
        if entity.children is not None:
            for c in entity.children:
                self._collect_cids(c)
        elif entity.message is not None:
            self._collect_cids(entity.message)
        elif entity.ctype == "text/html" and not self._is_attachment(entity):
            for ref in _CID_REF.findall(self._raw_html(entity)):
                self.cids.add(unquote(ref).strip("<>").lower())

    # -- attachments

    def _is_attachment(self, entity: _Entity) -> bool:
        if entity.ctype in _MESSAGE_TYPES:
            return False
        if _filename_params(entity):
            return True
        if entity.disposition.value == "attachment":
            return True
        main = entity.ctype.split("/", 1)[0]
        return not (main in ("text", "multipart") or entity.ctype in _REPORT_TYPES)

    def _walk(self, entity: _Entity, origin: tuple[str, ...], parent: str | None) -> None:
        if entity.children is not None:
            for c in entity.children:
                self._walk(c, origin, entity.ctype)
        elif entity.message is not None:
            self._forwarded(entity, origin)
        elif self._is_attachment(entity):
            self._add(self._attachment(entity, origin, parent))

    def _forwarded(self, entity: _Entity, origin: tuple[str, ...]) -> None:
        inner = entity.message
        raw_subject = inner.header("subject") if inner is not None else None
        subject = decode_header(raw_subject, self.hint)[0] if raw_subject is not None else ""
        if len(origin) + 1 > self.budget.max_depth:
            self._add(self._too_deep(entity, origin, subject), expand=False)
            return
        self._walk(inner, origin + (_forward_label(subject),), None)

    def _too_deep(self, entity: _Entity, origin: tuple[str, ...], subject: str) -> Attachment:
        name, _ = _filename(entity)
        name = name or clean_filename(f"{subject}.eml" if subject else "") or self._unnamed(".eml")
        what = _forward_label(subject)
        problem = Problem(
            code="forward-too-deep",
            message=f"{what}嵌套转发超过{self.budget.max_depth}层，其中的附件未予处理；请直接将附件发送过来。")
        self.notes.append(f"forwarded message {subject[:60]!r} nested deeper than {self.budget.max_depth}; kept whole")
        return Attachment(filename=name, content=_transfer_decode(entity.body, entity.cte, self.notes),
                          declared_type=entity.ctype, origin=origin, problems=(problem,))

    def _unnamed(self, ext: str) -> str:
        self.unnamed += 1
        return f"未命名附件{self.unnamed}{ext}"

    def _attachment(self, entity: _Entity, origin: tuple[str, ...], parent: str | None) -> Attachment:
        name, notes = _filename(entity)
        if not name:
            name = self._unnamed(unpack.ext_for_type(entity.ctype))
        cid = entity.header("content-id")
        cid_key = cid.decode("latin-1").strip().strip("<>").strip().lower() if cid else ""
        inline = ((parent == "multipart/related" and bool(cid_key) and cid_key in self.cids)
                  or (entity.disposition.value == "inline" and not _filename_params(entity)))
        decoded: list[str] = []
        content = _transfer_decode(entity.body, entity.cte, decoded)
        notes += decoded
        # no Content-Type at all means text/plain by RFC 2045, which a named file is not
        declared = entity.ctype if entity.header("content-type") is not None else "application/octet-stream"
        damaged = next((_DAMAGED[n] for n in decoded if n in _DAMAGED), None)
        problems = (_damaged(name, damaged),) if damaged else ()
        return Attachment(filename=name, content=content, declared_type=declared, inline=inline,
                          origin=origin, notes=tuple(dict.fromkeys(notes)), problems=problems)

    def _add(self, att: Attachment, *, expand: bool = True) -> None:
        if self.budget.files >= self.budget.max_files:
            self.dropped.append(att)
            self.notes.append(f"attachment {att.filename!r} dropped: over max_files")
            return
        self.budget.files += 1
        if not expand or att.problems:   # a damaged file is refused as it is, not opened
            self.attachments.append(att)
            return
        got = unpack.expand(att, self.budget)
        self.attachments.extend(got.attachments)
        self.notes.extend(got.notes)
        self.extra_texts.extend(got.texts)


def _shown(att: Attachment) -> str:
    """A file as the sender knows it: its name, after where it was found (转发邮件'…' > 材料.zip > 表.xlsx)."""
    return " > ".join((*att.origin, att.filename))


def _damaged(filename: str, encoding: str) -> Problem:
    return Problem(
        code="damaged-encoding",
        message=f"附件'{filename}'的传输编码（{encoding}）已损坏，无法解码还原为原文件，未予处理",
        hint="附件在发送或转发过程中被破坏；请重新添加该附件后发送，或将其压缩后发送。")


def _forward_label(subject: str) -> str:
    """How a forwarded message appears in an origin: 转发邮件'<subject>' (bounded, for receipts)."""
    if not subject:
        return "转发邮件"
    return f"转发邮件'{subject if len(subject) <= _MAX_LABEL else subject[:_MAX_LABEL] + '…'}'"


def _bounded(notes: list[str]) -> tuple[str, ...]:
    unique = list(dict.fromkeys(notes))
    if len(unique) <= _MAX_NOTES:
        return tuple(unique)
    return tuple(unique[:_MAX_NOTES]) + (f"... and {len(unique) - _MAX_NOTES} more notes",)


def _filename_params(entity: _Entity) -> str:
    return (entity.disposition.params.get("filename") or entity.ct.params.get("name") or "").strip()


def _filename(entity: _Entity) -> tuple[str, list[str]]:
    """The part's file name (Content-Disposition filename, else Content-Type name) and how it was decoded."""
    candidates = [(entity.disposition, "filename"), (entity.ct, "name")]
    found = [(hv.params[k], hv.notes.get(k, ())) for hv, k in candidates if hv.params.get(k, "").strip()]
    # a name spoilt by replacement characters loses to a clean one from the other header
    found.sort(key=lambda f: "\ufffd" in f[0])
    for value, why in found:
        name = clean_filename(value)
        if name:
            notes = [f"file name: {w}" for w in why]
            if name != value.strip():
                notes.append(f"file name cleaned from {value[:120]!r}")
            return name, notes
    return "", []


_CHARSET = re.compile(rb"""(?i)charset\s*=\s*["']?([a-z0-9_.:+-]{2,40})""")


def _charset_hint(data: bytes) -> str | None:
    """The first charset the message declares that says something about its raw header bytes."""
    for m in _charset_declarations(data):
        label = m[1].decode("ascii")
        if hint_codecs(label):
            return label
    return None


def _charset_declarations(data: bytes):
    """What _CHARSET.finditer(data) finds, in order: each match starts with 'charset' in any case, so
    the places are found in a lower-cased copy (window by window, like base64) and the pattern
    tried there only; a pattern ignoring case is otherwise tried at every byte of the message."""
    pos = 0
    for at in range(0, len(data), _B64_WINDOW):
        low = data[at:at + _B64_WINDOW + 6].lower()          # 6: a word begun at the window's end
        while 0 <= (j := low.find(b"charset", max(pos - at, 0))) < _B64_WINDOW:
            m = _CHARSET.match(data, at + j)
            if m is not None:
                yield m
                pos = m.end()
            else:
                pos = at + j + 1


_ID = re.compile(r"<([^<>\s]+)>")


def _ids(text: str) -> tuple[str, ...]:
    found = _ID.findall(text)
    if found:
        return tuple(found)
    return tuple(t.strip("<>") for t in text.split() if t.strip("<>"))


def _first_id(values: tuple[str, ...]) -> str | None:
    for value in values:
        ids = _ids(value)
        if ids:
            return ids[0]
    return None
