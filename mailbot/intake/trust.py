"""Who really sent a message, and where its answer may go.

Three rules, all pure:

- The sender is the addr-spec of From (inside the angle brackets when there are any), never a
  display name: `From: fagui@x.cn <attacker@evil.test>` is attacker@evil.test, and a display
  name showing another address, several addresses or several From headers are sender problems
  (`sender_check`, run by parse.py): such a message is never accepted.
- With `authentication` configured, a message claiming a registered address must show
  `<require>=pass` in the Authentication-Results (RFC 8601) the bureau's own server added
  under its authserv-id; any other Authentication-Results header is the sender's own word
  and is ignored (`authentication_problem`).
- The answer goes to the From address. Reply-To / Mail-Followup-To are honoured only when they
  are registered addresses of the sender's own section; others are ignored and the letter says
  so (`reply_targets`).
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from mailbot.intake.names import decode_words
from mailbot.model import Authentication, Incoming, Problem, Severity

__all__ = ["Mailbox", "mailboxes", "sender_check", "authentication_problem", "reply_targets", "claimed_sections",
           "AUTH_METHODS"]

AUTH_METHODS = ("dmarc", "dkim", "spf")

_ADDR_SPEC = re.compile(r"[^\s@<>()\[\]\",;:\\]+@[^\s@<>()\[\]\",;:\\]+\.[^\s@<>()\[\]\",;:\\.]+")
_SHOWN = re.compile(r"[^\s@<>()\[\]\"'“”‘’,;:\\，；：（）《》【】]+@[^\s@<>()\[\]\"'“”‘’,;:\\，；：（）《》【】]+\.[A-Za-z]{2,}")


# ---------------------------------------------------------------- From, strictly

@dataclass(frozen=True)
class Mailbox:
    display: str        # decoded display name ("" if none)
    address: str        # lower-cased addr-spec, "" if there is none that is valid
    raw: str            # the mailbox as written, for messages


def _scan(text: str):
    """Each character with where it stands: "quote" (inside a quoted string, quotes included),
    "comment" (inside parentheses, nested, parentheses included) or "top"."""
    depth, quote, esc = 0, False, False
    for i, c in enumerate(text):
        if esc:
            esc = False
            yield i, c, "quote" if quote else "comment"
        elif quote:
            esc = c == "\\"
            quote = esc or c != '"'
            yield i, c, "quote"
        elif depth:
            esc = c == "\\"
            depth += {"(": 1, ")": -1}.get(c, 0)
            yield i, c, "comment"
        elif c in '"(':
            quote, depth = c == '"', int(c == "(")
            yield i, c, "quote" if quote else "comment"
        else:
            yield i, c, "top"


def _split_top(text: str) -> tuple[list[str], bool]:
    """Split at commas outside quotes, comments and angle brackets; also say whether a group
    (`name: a, b;`) appears, which a From may not hold."""
    parts, start, angle, group = [], 0, False, False
    for i, c, where in _scan(text):
        if where != "top":
            continue
        if c in "<>":
            angle = c == "<"
        elif not angle and c in ",:;":
            group = group or c != ","
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p for p in (x.strip() for x in parts) if p], group


def _without_comments(text: str) -> str:
    return "".join(c for _, c, where in _scan(text) if where != "comment")


def _angles(text: str) -> list[tuple[int, int]]:
    """Spans of the <...> outside quoted strings and comments."""
    spans, start = [], None
    for i, c, where in _scan(text):
        if where == "top" and c == "<" and start is None:
            start = i
        elif where == "top" and c == ">" and start is not None:
            spans.append((start, i))
            start = None
    return spans


def _addr(text: str) -> str:
    text = text.strip()
    if ":" in text and text.startswith("@"):       # obsolete source route <@relay:a@b>
        text = text.rsplit(":", 1)[1]
    text = text.strip().lower()
    return text if _ADDR_SPEC.fullmatch(text) else ""


def mailboxes(text: str) -> tuple[list[Mailbox], bool]:
    """The mailboxes of one address header, strictly: an addr-spec is inside <> when there are
    any, else the whole mailbox without comments. Returns them and whether the header was not a
    plain mailbox list (a group, a mailbox with two <...>)."""
    parts, odd = _split_top(text)
    out = []
    for part in parts:
        spans = _angles(part)
        if len(spans) > 1:
            odd = True
        if spans:
            a, b = spans[-1]
            display = part[:spans[0][0]]
            for (_, end), (start, _) in zip(spans, spans[1:]):
                display += " " + part[end + 1:start]
            for x, y in spans[:-1]:
                out.append(Mailbox("", _addr(part[x + 1:y]), part))
            display = _without_comments(display).strip().strip('"').strip()
            out.append(Mailbox(decode_words(display).strip(), _addr(part[a + 1:b]), part))
        else:
            out.append(Mailbox("", _addr(_without_comments(part)), part))
    return out, odd


def _shown_addresses(text: str) -> list[str]:
    return [m.lower() for m in _SHOWN.findall(unicodedata.normalize("NFKC", text))]


def sender_check(from_values: Sequence[str]) -> tuple[str, str, tuple[str, ...], tuple[Problem, ...]]:
    """From the raw text of each From header: (address, display name, every address shown, problems).

    The address is the first mailbox's addr-spec; "shown" also lists addresses written in display
    names and in any further mailbox or From header, for telling a section whose address is claimed.
    """
    if not from_values:
        return "", "", (), ()
    problems: list[Problem] = []
    if len(from_values) > 1:
        problems.append(Problem("from-several-headers", f"邮件带有{len(from_values)}个发件人（From）字段，无法确定发件人"))
    boxes: list[Mailbox] = []
    odd = False
    for value in from_values:
        got, weird = mailboxes(value)
        boxes += got
        odd = odd or weird
    if any(b.address for b in boxes):
        odd = odd or not all(b.address for b in boxes)
        boxes = [b for b in boxes if b.address]
    first = boxes[0] if boxes else Mailbox("", "", "")
    shown: list[str] = [first.address] if first.address else []
    for b in boxes:
        for a in (b.address, *_shown_addresses(b.display)):
            if a and a not in shown:
                shown.append(a)
    if not first.address:
        raw = (from_values[0] or "").strip()[:120]
        problems.append(Problem("from-invalid", f"发件人（From）字段“{raw}”中没有可识别的邮件地址"))
        shown += [a for a in _shown_addresses(from_values[0]) if a not in shown]
    elif len(boxes) > 1 or odd:
        if len(from_values) == 1:
            listed = "、".join(b.address or b.raw.strip() for b in boxes)
            problems.append(Problem("from-several-addresses", f"发件人（From）字段中有多个地址（{listed}），无法确定发件人"))
    other = [a for a in _shown_addresses(first.display) if a != first.address]
    if first.address and other:
        problems.append(Problem(
            "from-name-mismatch",
            f"发件人显示名称中的地址{'、'.join(other)}与实际发件地址{first.address}不一致"))
    return first.address, first.display, tuple(shown), tuple(problems)


# ---------------------------------------------------------------- Authentication-Results (RFC 8601)

def _split_semicolons(text: str) -> list[str]:
    text = _without_comments(text)
    cuts = [i for i, c, where in _scan(text) if where == "top" and c == ";"]
    return [text[a + 1:b].strip() for a, b in zip([-1, *cuts], [*cuts, len(text)])]


_RESULT = re.compile(r"([A-Za-z0-9_-]+)(?:/\d+)?\s*=\s*([A-Za-z0-9_-]+)(.*)", re.S)
_PROP = re.compile(r"([A-Za-z0-9_-]+)\.([A-Za-z0-9_.-]+)\s*=\s*(\"[^\"]*\"|[^\s;]+)")


def _results(value: str) -> tuple[str, list[tuple[str, str, dict[str, str]]]]:
    """authserv-id and [(method, result, {ptype.property: value})] of one header value."""
    parts = _split_semicolons(value)
    head = parts[0].split()
    server = head[0].lower() if head else ""
    out = []
    for p in parts[1:]:
        m = _RESULT.match(p)
        if m:
            props = {f"{t.lower()}.{k.lower()}": v.strip('"') for t, k, v in _PROP.findall(m[3])}
            out.append((m[1].lower(), m[2].lower(), props))
    return server, out


def _domain(value: str) -> str:
    return value.rsplit("@", 1)[-1].strip().strip("<>").rstrip(".").lower()


def _aligned(d: str, from_domain: str) -> bool:
    """Relaxed alignment without a public-suffix list: the same domain, or one a subdomain of
    the other where the shorter has at least two labels (never a bare top-level domain)."""
    if not d or not from_domain:
        return False
    if d == from_domain:
        return True
    short, long_ = sorted((d, from_domain), key=len)
    return short.count(".") >= 1 and long_.endswith("." + short)


def _passes(method: str, result: str, props: dict[str, str], from_domain: str) -> bool:
    if result != "pass":
        return False
    if method == "dmarc":
        # DMARC already aligns with From; a header.from naming another domain is not about this From
        return "header.from" not in props or _domain(props["header.from"]) == from_domain
    if method == "dkim":
        d = props.get("header.d") or _domain(props.get("header.i", ""))
        return _aligned(d.lower(), from_domain)
    if method == "spf":
        return _aligned(_domain(props.get("smtp.mailfrom", "")), from_domain)
    return False


def authentication_problem(incoming: Incoming, policy: Authentication) -> Problem | None:
    """None when the topmost Authentication-Results of our own server shows `require`=pass,
    aligned with the From domain; else the problem that quarantines the message."""
    want, server_id = policy.require, policy.authserv_id.strip().lower()
    from_domain = _domain(incoming.from_addr)
    seen: list[str] = []
    for value in incoming.headers.get("authentication-results", ()):    # topmost first
        server, results = _results(value)
        if server != server_id:
            continue          # added by someone else, perhaps the sender: not evidence
        mine = [(r, p) for m, r, p in results if m == want]
        if any(_passes(want, r, p, from_domain) for r, p in mine):
            return None
        seen = [r for r, _ in mine]
        break                 # only the topmost header of our own server counts
    got = "、".join(dict.fromkeys(seen)) or "无结果"
    return Problem("sender-not-authenticated",
                   f"发件地址{incoming.from_addr}未通过本局邮件服务器的发件人验证（{want.upper()}：{got}），"
                   "无法确认邮件确由该地址发出")


# ---------------------------------------------------------------- where the answer goes

def reply_targets(incoming: Incoming, home: str | None, section_of: Callable[[str], str | None]
                  ) -> tuple[tuple[str, ...], Problem | None]:
    """(To, note): the From address, or the Reply-To / Mail-Followup-To addresses that are
    registered to `home` (the sender's own section); any other requested address is ignored
    and the note tells the sender so."""
    to = (incoming.from_addr,) if incoming.from_addr else ()
    asked = [a for a in dict.fromkeys((*incoming.reply_to, *incoming.followup_to)) if a and a != incoming.from_addr]
    same = tuple(a for a in asked if home and section_of(a) == home)
    ignored = [a for a in asked if a not in same]
    note = None
    if ignored and to:
        listed = "、".join(ignored)
        note = Problem("reply-address-ignored",
                       f"来信指定的回复地址{listed}不是贵科室登记的地址，本回执仍发往登记地址{to[0]}。" if home else
                       f"来信指定的回复地址{listed}不是已登记的科室地址，本回执仍发往发件地址{to[0]}。",
                       Severity.WARNING)
    return (same or to), note


def claimed_sections(addresses: Iterable[str], section_of: Callable[[str], str | None]) -> list[str]:
    """The sections whose registered addresses a message shows, in order."""
    return list(dict.fromkeys(s for a in addresses if (s := section_of(a))))
