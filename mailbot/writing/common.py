"""What every letter shares: the greeting, the closing, a task's label, the Letter value and the RFC 5322 builder."""
from __future__ import annotations

import base64
import binascii
import codecs
import datetime as dt
import functools
import html
import quopri
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email.header import Header
from email.message import EmailMessage
from email.utils import encode_rfc2231, format_datetime, formataddr, getaddresses

from mailbot.dates.zone import zh_date
from mailbot.intake.screen import BOT_HEADER
from mailbot.model import Rules

__all__ = ["Letter", "greeting", "closing", "task_label", "task_numbers", "mail_domain", "make_message", "safe_header",
           "safe_text", "XLSX_MIME", "ZIP_MIME", "TABLE_MARK"]

XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ZIP_MIME = "application/zip"
# a line of a letter's text where its HTML part shows a table (make_message's `table`)
TABLE_MARK = "[[表格]]"


@dataclass(frozen=True)
class Letter:
    kind: str
    recipients: tuple[str, ...]
    subject: str
    message_id: str          # without angle brackets
    raw: bytes


def greeting(name: str | None) -> str:
    """'政策法规科：', or '您好：' to a sender whose section is not known."""
    return f"{name}：" if name else "您好："


def closing(mailbox_name: str, day: dt.date | dt.datetime, *, thanks: bool = True,
            system: str | None = None) -> list[str]:
    """The lines that end a letter: thanks, the signature, the date, the automatic-mail note.

    `day` a datetime writes its time after the date (receipts and the credit section's own mails
    have always carried it; reminders pass a date). `thanks` False: the credit section's own
    digests are not thanked. `system` names the system in the last line where it is not the
    mailbox's name (receipts have always said 信用监管科 whatever the configured name)."""
    head = ["", "    感谢您的支持与配合！"] if thanks else []
    return head + ["", mailbox_name, zh_date(day, weekday=False), "",
                   f"（本邮件由{system or mailbox_name}邮件受理系统自动发送。）"]


def task_label(rules: Rules, number: int | None) -> str:
    """'任务3（信用修复）'; '任务未识别' where no task was recognised."""
    if number is None:
        return "任务未识别"
    t = rules.task(number)
    return f"任务{number}（{t.title}）" if t else f"任务{number}"


def task_numbers(numbers: Iterable[int]) -> str:
    """'任务1、任务3': numbers alone, where the section is already named and titles would crowd the line."""
    return "、".join(f"任务{n}" for n in sorted(set(numbers)))


def mail_domain(address: str) -> str:
    """The domain Message-IDs are made in: the mailbox's own, so they are unique to this bureau."""
    return address.rsplit("@", 1)[-1] if "@" in address else "mailbot.invalid"


# C0/C1 controls, DEL and the Unicode line separators: no header may carry them, and in a body only
# tab and line feed are wanted. Lone surrogates (from undecodable bytes) cannot be encoded at all.
_HEADER_JUNK = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ufeff]")
_BODY_JUNK = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ufeff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_WORDLIKE = re.compile(r"=\?([^?\s]*)\?([QqBb])\?([^?\s]*)\?=")


def safe_text(text: str) -> str:
    """A body text that always encodes: lone surrogates become U+FFFD, controls other than tab and
    line feed are dropped (carriage returns become line feeds)."""
    text = _SURROGATE.sub("\ufffd", text).replace("\r\n", "\n").replace("\r", "\n")
    return _BODY_JUNK.sub("", text)


@functools.lru_cache(maxsize=1024)
def _encodes(name: str, value: str) -> bool:
    # cached: the same addresses head letter after letter, and trying costs a whole message
    if "=?" not in value and name not in ("To", "Cc", "Reply-To"):
        return True     # plain text (controls and surrogates gone): what trips the folder is a word look-alike
    try:
        m = EmailMessage()
        m[name] = value
        m.as_bytes()
        return True
    except Exception:  # noqa: BLE001 - the email package raises whatever its folding trips on
        return False


def _decode_word(m: re.Match) -> str:
    """What a leftover encoded word (the parser could not decode it: an empty or unknown charset)
    most likely says, decoded with replacement characters rather than kept as a trap for the folder."""
    label, enc, payload = m[1].split("*", 1)[0], m[2], m[3].encode("ascii", "replace")
    try:
        data = (binascii.a2b_base64(payload + b"=" * (-len(payload) % 4)) if enc in "Bb"
                else quopri.decodestring(payload.replace(b"_", b" "), header=True))
    except (binascii.Error, ValueError):
        return m[3]
    try:
        codec = codecs.lookup(label).name if label else "utf-8"
    except LookupError:
        codec = "utf-8"
    try:
        return data.decode(codec, "replace")
    except Exception:  # noqa: BLE001 - a codec that cannot even replace
        return data.decode("utf-8", "replace")


def safe_header(value: str, name: str = "Subject") -> str:
    """`value` in a form the email package can always write: controls and line breaks become spaces,
    lone surrogates U+FFFD; encoded-word look-alikes it would choke on are decoded (with replacement);
    as a last resort the text is kept in ASCII. A letter must never fail for a header it repeats."""
    text = _HEADER_JUNK.sub(" ", _SURROGATE.sub("\ufffd", str(value)))
    text = re.sub(" {2,}", " ", text).strip()
    if _encodes(name, text):
        return text
    text = _HEADER_JUNK.sub(" ", _WORDLIKE.sub(_decode_word, text))
    if _encodes(name, text):
        return text
    text = text.replace("=?", "= ?").replace("?=", "? =")
    if _encodes(name, text):
        return text
    return text.encode("ascii", "replace").decode("ascii")


def _html_body(plain: str, table: str | None = None) -> str:
    """The HTML part: the plain text line by line; `table` (HTML, already escaped) stands where
    the plain text has the line TABLE_MARK, or at the end."""
    lines = []
    for line in plain.splitlines():
        esc = html.escape(line)
        if table is not None and line.strip() == TABLE_MARK:
            lines.append(table)
            table = None
            continue
        if line.startswith(("回执编号", "受理结果")):
            esc = f"<b>{esc}</b>"
        elif line[:2] in ("一、", "二、", "三、"):
            esc = f"<h3 style=\"margin:12px 0 4px\">{esc}</h3>"
            lines.append(esc)
            continue
        lines.append(esc.replace("  ", "&nbsp;&nbsp;") + "<br>")
    if table is not None:
        lines.append(table)
    return ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"></head>"
            "<body style=\"font-family:'Microsoft YaHei',SimSun,sans-serif;font-size:14px\">"
            + "\n".join(lines) + "</body></html>")


def _msgid(ident: str) -> str:
    """A message id as it may stand between angle brackets: printable ASCII, no brackets or spaces."""
    return re.sub(r"[^!-~]|[<>]", "", ident.encode("ascii", "replace").decode("ascii"))


def make_message(*, sender: str, sender_name: str, to: Sequence[str], subject: str, plain: str,
                 message_id: str, now: dt.datetime, in_reply_to: str | None = None,
                 references: Sequence[str] = (), cc: Sequence[str] = (),
                 attachments: Sequence[tuple[str, bytes, str]] = (),
                 auto_submitted: str = "auto-replied", table: str | None = None,
                 reply_to: str | None = None) -> bytes:
    """An RFC 5322 message, UTF-8, plain and HTML, with attachments (name, bytes, mime type).

    Written here, not by the email package's EmailMessage: every receipt goes through this, and
    that package's header parsing and folding cost more than all the rest of the letter. Headers
    are RFC 2047 words (email.header), file names RFC 2231 (email.utils), bodies 8bit or base64."""
    addresses = {"To": safe_header(", ".join(to), "To"),
                 "Cc": safe_header(", ".join(cc), "Cc") if cc else "",
                 "Reply-To": safe_header(reply_to, "Reply-To") if reply_to else ""}
    lines = [_address_field("From", _address((safe_header(sender_name, "X-Name"), sender)))]
    for name, value in addresses.items():
        listed = ", ".join(_address(pair) for pair in getaddresses([value]) if any(pair)) if value else ""
        if listed:
            lines.append(_address_field(name, listed))
    lines.append(_field("Subject", safe_header(subject)))
    plain = safe_text(plain)
    html_plain = plain
    plain = "\n".join("" if line.strip() == TABLE_MARK else line for line in plain.split("\n"))
    lines += [f"Date: {format_datetime(now)}", f"Message-ID: <{message_id}>"]
    if in_reply_to:
        # each id on its own folded line, as RFC 5322 allows: a policy folding a long id list into
        # RFC 2047 words breaks threading
        refs = [r for r in references if r] + ([in_reply_to] if in_reply_to not in references else [])
        refs = [r for r in (_msgid(r) for r in refs) if r]
        lines += [f"In-Reply-To: <{_msgid(in_reply_to)}>",
                  "References: " + "\n".join(" " * (i > 0) + f"<{r}>" for i, r in enumerate(refs))]
    lines += [f"Auto-Submitted: {auto_submitted}",
              "X-Auto-Response-Suppress: All",      # asks Exchange not to answer our answer
              f"{BOT_HEADER}: 1", "MIME-Version: 1.0"]
    # the plain part keeps TABLE_MARK's place as a blank line; the HTML part has the table there
    alternative = _multipart("alternative", [_text_part("plain", plain), _text_part("html", _html_body(html_plain, table))])
    if attachments:
        parts = [alternative] + [_attachment_part(name, data, mime) for name, data, mime in attachments]
        top = _multipart("mixed", parts)
    else:
        top = alternative
    # safe_header left every value one the email package writes; an address it could not is ASCII with
    # '?' for what it could not write, as safe_header's last resort does
    head = "\n".join(lines).encode("ascii", "replace") + b"\n"
    return head + top


def _field(name: str, value: str) -> str:
    """An unstructured header: as it is where it is short ASCII, else RFC 2047 words folded at 78."""
    if value.isascii() and len(name) + 2 + len(value) <= 78:
        return f"{name}: {value}"
    return f"{name}: " + Header(value, "us-ascii" if value.isascii() else "utf-8", header_name=name).encode(linesep="\n")


def _address(pair: tuple[str, str]) -> str:
    try:
        return formataddr(pair, charset="utf-8")
    except UnicodeError:
        # not an address a server can take ('未填写' typed into a form): written, as the email package
        # writes it, as words, and refused by the server with a reason a person reads in the outbox
        return Header(" ".join(p for p in pair if p), "utf-8").encode()


def _address_field(name: str, value: str) -> str:
    """An address list (already encoded by formataddr), one address per folded line where long."""
    if len(name) + 2 + len(value) <= 78:
        return f"{name}: {value}"
    return f"{name}: " + ",\n ".join(a.strip() for a in value.split(", "))


def _boundary() -> str:
    return "===============" + secrets.token_hex(10) + "=="


def _multipart(subtype: str, parts: Sequence[bytes]) -> bytes:
    b = _boundary()
    out = [f'Content-Type: multipart/{subtype};\n boundary="{b}"\n\n'.encode("ascii")]
    for part in parts:
        out += [f"--{b}\n".encode("ascii"), part, b"\n"]
    out.append(f"--{b}--\n".encode("ascii"))
    return b"".join(out)


def _base64(data: bytes) -> bytes:
    return base64.encodebytes(data)          # 76 characters a line, each ended by a line feed


def _text_part(subtype: str, text: str) -> bytes:
    data = (text if text.endswith("\n") else text + "\n").encode("utf-8")
    if subtype == "plain" and max(map(len, data.split(b"\n"))) <= 78:
        # 8bit where every line is short, as the email package chooses: readable in the raw message
        return b'Content-Type: text/plain; charset="utf-8"\nContent-Transfer-Encoding: 8bit\n\n' + data
    return (f'Content-Type: text/{subtype}; charset="utf-8"\nContent-Transfer-Encoding: base64\n\n'
            .encode("ascii") + _base64(data))


def _attachment_part(name: str, data: bytes, mime: str) -> bytes:
    name = safe_header(name, "X-Name")
    return (f"Content-Type: {mime}\nContent-Transfer-Encoding: base64\n"
            f"Content-Disposition: attachment;\n {_filename_parameter(name)}\n\n").encode("ascii") + _base64(data)


def _filename_parameter(name: str) -> str:
    """filename="…" for a short plain name, else RFC 2231 (UTF-8, percent-encoded), cut into
    numbered pieces of at most 60 characters so that no line grows past 78."""
    if name.isascii() and len(name) <= 60 and '"' not in name and "\\" not in name:
        return f'filename="{name}"'
    encoded = encode_rfc2231(name, "utf-8")
    if len(encoded) <= 60:
        return "filename*=" + encoded
    pieces = []
    while encoded:
        cut = min(60, len(encoded))
        if cut < len(encoded) and "%" in encoded[cut - 2:cut]:
            cut = encoded.rindex("%", 0, cut)        # never inside a %XX escape
        pieces.append(encoded[:cut])
        encoded = encoded[cut:]
    return ";\n ".join(f"filename*{i}*={piece}" for i, piece in enumerate(pieces))
