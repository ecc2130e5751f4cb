"""Receiving mail: read an IMAP folder or a local Maildir once per message, and settle it only after its records are committed.

Both sources implement `Source`: `fetch_new()` yields raw bytes (never marking them \\Seen),
the caller processes and commits, then `settle()` moves the message into a folder per outcome
(or flags it) and only then records progress. A crash between commit and settle therefore
fetches the message again; the store's (Message-ID, sha256) dedupe absorbs it and the second
settle finishes the job. `run_once()` drains what is waiting; `watch()` is the long-running
loop with IDLE, polling and reconnection with backoff.

Traps this module works around, each named where it is handled:
- imap-tools keeps the CAPABILITY list from before login; Dovecot (and others) announce MOVE
  only after it, so `BaseMailBox.move()` would fall back to COPY + \\Deleted + a plain EXPUNGE
  that also removes every other \\Deleted message. We refresh the capabilities after login,
  issue UID MOVE ourselves, and flag instead of moving when MOVE is missing or refused.
- imap-tools' `flag()` sends an EXPUNGE after every STORE; we send UID STORE ourselves.
- imap-tools' `fetch(mark_seen=True)` uses BODY[] (sets \\Seen); we fetch BODY.PEEK[].
- Coremail-style servers want IMAP ID after login, omit UIDNEXT and advertise SASL-IR without
  supporting it: we send ID when offered, track the highest UID ourselves, log in with LOGIN.
- Only UIDs are searched: SEARCH on Chinese text fails on many servers.
- Cyrus (and Courier) keep a user's folders under a personal namespace "INBOX." and refuse CREATE
  at the top level: the outcome folders' prefix and delimiter come from NAMESPACE (RFC 2342).
- What the server lacks (MOVE, keywords, IDLE) or refuses (a folder's CREATE, a MOVE) is said
  once per start, not per message or per reconnect, and kept in `notes` for `health`.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import imaplib
import logging
import os
import random
import re
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from mailbot.failpoints import failpoint

__all__ = [
    "Fetched", "Source", "ImapSource", "MaildirSource", "MailboxError", "LoginFailed",
    "Backoff", "run_once", "watch", "Group", "GROUP", "ROUND", "settle_all", "source_from_config", "imap_id", "refresh_capabilities",
    "maildir_folder_name", "DEFAULT_FOLDERS", "DONE_KEYWORD", "parse_namespace", "namespaced", "keywords_allowed",
]

log = logging.getLogger("mailbot.transport.mailbox")

# Where a settled message goes, by outcome. accepted and partially_accepted share a folder: the
# sender got a receipt either way. An outcome not listed here goes to the quarantined folder.
DEFAULT_FOLDERS: Mapping[str, str] = {
    "accepted": "已受理",
    "partially_accepted": "已受理",
    "rejected": "已退回",
    "quarantined": "待人工",
    "ignored": "已忽略",
    "command": "已办指令",        # the credit section's mail commands, executed and answered
    "forwarded": "待人工",        # a person's reply, passed on to the credit section
}
# Set in flag-only mode (with a per-outcome keyword) where the server allows keywords, else \Flagged.
DONE_KEYWORD = "mailbot-done"

_LOOPBACK = ("127.0.0.1", "::1", "localhost")
_IDLE_MAX = 29 * 60          # RFC 2177: re-issue IDLE at least every 29 minutes
# ASCII only: IMAP quoted strings are 7-bit, and a strict server answering BAD would fail every login.
_ID_FIELDS = {"name": "mailbot", "version": "0.1", "vendor": "mailbot"}

imaplib.Commands.setdefault("ID", ("NONAUTH", "AUTH", "SELECTED"))     # RFC 2971; imaplib lacks it
imaplib.Commands.setdefault("IDLE", ("AUTH", "SELECTED"))              # imap-tools adds it too


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# ---------------------------------------------------------------- the common interface

@dataclass(frozen=True)
class Fetched:
    """One message as read from a source, before anything was decided about it."""
    key: str                      # imap: "<uidvalidity>:<uid>"; maildir: the Maildir key
    raw: bytes
    received_at: dt.datetime      # INTERNALDATE, or the file's mtime; aware
    source: str                   # what the messages table records: imap:INBOX:<uidvalidity>:<uid>, maildir:<key>
    flags: tuple[str, ...] = ()


class Source(Protocol):
    name: str                     # the key of this source's progress in the store

    def connect(self) -> None: ...
    def fetch_new(self, limit: int) -> Iterator[Fetched]: ...
    def settle(self, fetched: Fetched, outcome: str) -> None: ...
    def wait(self, timeout: float, stop: threading.Event | None = None) -> bool: ...
    def close(self) -> None: ...


class MailboxError(Exception):
    """The mailbox cannot be read right now (network, server, login): reconnect later."""


class LoginFailed(MailboxError):
    """The server refused the login; carries its answer."""


# Messages taken per fetch (one UID SEARCH), then again until none is left. Memory is bounded by the
# chunked FETCH and the read-ahead window, not by this; a round's end drains the workers deciding
# ahead, so rounds are long.
ROUND = 500

# Messages recorded in one transaction at most, in a backlog decided ahead: enough that the commit,
# the flush of their files and the IMAP MOVE are paid once for many; few enough that a crash
# leaves little to redo and another writer waits little for the database.
GROUP = 40


class Group(Protocol):
    """Messages recorded together (app.daemon): which may be, and recording them in one commit."""

    def takes(self, prepared: Any) -> bool: ...
    def record(self, pairs: Sequence[tuple[Fetched, Any]]) -> Sequence[Any]: ...


def run_once(source: Source, handle: Callable[..., Any], limit: int = ROUND,
             stop: threading.Event | None = None, ahead: Callable[[], Any] | None = None,
             group: Group | None = None) -> int:
    """Process everything waiting: handle (which commits) then settle, message by message.

    `handle` returns the outcome, as a string or as an object with an `outcome` attribute
    (pipeline.Processed). Stops early, between two messages, once `stop` is set. Returns how
    many messages were handled. With `ahead` (a factory of app.ahead.Ahead), the messages behind
    the one being handled are prepared meanwhile, and handle(fetched, prepared) is called.
    With `group` as well, consecutive messages that group.takes() are recorded together, up to
    GROUP in one commit (group.record), then settled together: the commit before any of them moves.
    """
    total = 0
    with contextlib.ExitStack() as stack:
        pairer = stack.enter_context(ahead()) if ahead is not None else None
        while True:
            n = 0
            together: list[tuple[Fetched, Any]] = []

            def record_together() -> int:
                results = group.record(together)
                failpoint("after-group-record")
                settle_all(source, [(f, _outcome(r)) for (f, _), r in zip(together, results)])
                failpoint("after-group-settle")
                count = len(together)
                together.clear()
                return count

            fetched_all = source.fetch_new(limit)
            for fetched, prepared in (pairer.pairs(fetched_all) if pairer is not None
                                      else ((f, None) for f in fetched_all)):
                if group is not None and group.takes(prepared):
                    together.append((fetched, prepared))
                    if len(together) >= GROUP:
                        n += record_together()
                        if stop is not None and stop.is_set():
                            return total + n
                    continue
                if together:
                    n += record_together()
                result = handle(fetched, prepared) if pairer is not None else handle(fetched)
                failpoint("after-record")
                source.settle(fetched, _outcome(result))
                failpoint("after-settle")
                n += 1
                if stop is not None and stop.is_set():
                    return total + n
            if together:
                n += record_together()
            total += n
            if n == 0:
                return total


def _outcome(result: Any) -> str:
    outcome = getattr(result, "outcome", result)
    return str(getattr(outcome, "value", outcome))


def settle_all(source: Source, settled: Sequence[tuple[Fetched, str]]) -> None:
    """Settle messages committed together: at once where the source can (IMAP), else one by one."""
    if hasattr(source, "settle_all"):
        source.settle_all(settled)
    else:
        for fetched, outcome in settled:
            source.settle(fetched, outcome)


@dataclass
class Backoff:
    """Exponential delays between reconnection attempts, reset by a success."""
    initial: float = 1.0
    maximum: float = 300.0
    factor: float = 2.0
    jitter: float = 0.1           # +-10 %, so many bots do not retry in step
    attempt: int = 0

    def next(self) -> float:
        delay = min(self.maximum, self.initial * self.factor ** min(self.attempt, 64))   # days offline: no overflow
        self.attempt += 1
        return delay * (1 + random.uniform(-self.jitter, self.jitter)) if self.jitter else delay

    def reset(self) -> None:
        self.attempt = 0


def watch(source: Source, handle: Callable[[Fetched], Any], *, stop: threading.Event,
          limit: int = ROUND, poll_interval: float = 60.0, backoff: Backoff | None = None,
          login_retry_floor: float = 60.0, on_error: Callable[[BaseException, float], None] | None = None,
          ahead: Callable[[], Any] | None = None, group: Group | None = None) -> None:
    """Receive until `stop` is set: drain, then IDLE (or sleep) up to poll_interval, and again.

    Any failure (connection lost, timeout, server restart, login refused, even the database
    being down inside `handle`) is logged, the connection closed and reopened after a backoff
    delay; what was not settled is fetched again, so nothing is lost and the store's dedupe
    keeps anything from being recorded twice. A refused login waits at least
    `login_retry_floor` seconds: some servers lock an account after a few quick failures.
    """
    backoff = backoff or Backoff()
    connected = False
    while not stop.is_set():
        try:
            if not connected:
                source.connect()
                connected = True
            run_once(source, handle, limit, stop, ahead, group)
            backoff.reset()
            if not stop.is_set():
                source.wait(poll_interval, stop)
        except Exception as e:  # noqa: BLE001 - the watcher must outlive any single failure
            delay = backoff.next()
            if isinstance(e, LoginFailed):
                delay = max(delay, login_retry_floor)
                log.error("%s: %s; retrying in %.1f s", source.name, e, delay)
            elif isinstance(e, MailboxError):
                log.warning("%s: %s; reconnecting in %.1f s", source.name, e, delay)
            else:
                log.exception("%s: unexpected %s while receiving; reconnecting in %.1f s",
                              source.name, type(e).__name__, delay)
            if on_error is not None:
                on_error(e, delay)
            try:
                source.close()
            except Exception:  # noqa: BLE001 - closing a broken connection may fail too
                pass
            connected = False
            stop.wait(delay)
    try:
        source.close()
    except Exception:  # noqa: BLE001
        pass


def source_from_config(config: Any, store: Any, **options: Any) -> Source:
    """The configured source: the Maildir if one is set, else the IMAP server."""
    if getattr(config, "maildir", None):
        return MaildirSource(config.maildir, store, **options)
    if getattr(config, "imap", None):
        # The config refuses plain IMAP to a non-loopback host unless allow_plain insisted.
        return ImapSource(config.imap, store, allow_plain=True, **options)
    raise ValueError(f"{getattr(config, 'file', 'config')}: neither imap nor maildir is configured")


def _folder_for(folders: Mapping[str, str], outcome: str) -> str | None:
    """The folder for an outcome; an outcome mapped to "" is only flagged; an unknown one is quarantined."""
    if outcome in folders:
        return folders[outcome] or None
    return folders.get("quarantined") or None


# ---------------------------------------------------------------- IMAP helpers

def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


_NS_STRING = rb'"((?:[^"\\]|\\.)*)"'
_NAMESPACE_RE = re.compile(rb"^\s*\(\(\s*" + _NS_STRING + rb"\s+(?:" + _NS_STRING + rb"|NIL)", re.I)


def parse_namespace(data: Sequence[Any]) -> tuple[str, str] | None:
    """(prefix, delimiter) of the first personal namespace in a NAMESPACE answer (RFC 2342), or None.

    '(("INBOX." ".")) (("user." ".")) (("" "."))' -> ("INBOX.", "."); '(("" "/")) NIL NIL' -> ("", "/");
    personal NIL (no personal namespace) or an answer we cannot read -> None. The prefix is
    modified UTF-7 on the wire; the delimiter NIL (a flat namespace) becomes "".
    """
    from imap_tools.imap_utf7 import utf7_decode
    first = next((d for d in data if isinstance(d, bytes)), None)
    m = _NAMESPACE_RE.match(first) if first is not None else None
    if m is None:
        return None

    def unquote(b: bytes) -> bytes:
        return re.sub(rb"\\(.)", rb"\1", b)
    prefix = utf7_decode(unquote(m.group(1)))
    delimiter = unquote(m.group(2)).decode("ascii", "replace") if m.group(2) is not None else ""
    return prefix, delimiter


def namespaced(folder: str, namespace: tuple[str, str] | None) -> str:
    """The full name of a configured folder under the personal namespace: '已受理' -> 'INBOX.已受理'.

    A name that is INBOX, already starts with the prefix or contains the delimiter is taken as
    the full name the administrator meant, and used as it is.
    """
    if not namespace or not namespace[0]:
        return folder
    prefix, delimiter = namespace
    inbox = prefix.upper().startswith("INBOX")         # INBOX is case-insensitive, the rest is not
    head = folder[:len(prefix)]
    if (folder.upper() == "INBOX" or (head.upper() == prefix.upper() if inbox else head == prefix)
            or (delimiter and delimiter in folder)):
        return folder
    return prefix + folder


def refresh_capabilities(client: imaplib.IMAP4) -> tuple[str, ...]:
    """Ask CAPABILITY again: imaplib (and so imap-tools) keeps the pre-login list, which lacks MOVE on Dovecot."""
    client._get_capabilities()  # noqa: SLF001 - the documented way imaplib fills .capabilities
    return tuple(client.capabilities)


_ID_PAIR = re.compile(rb'"((?:[^"\\]|\\.)*)"\s+(?:"((?:[^"\\]|\\.)*)"|NIL)', re.I)


def imap_id(client: imaplib.IMAP4, fields: Mapping[str, str] | None = None) -> dict[str, str] | None:
    """Send RFC 2971 ID (Coremail refuses SELECT without it); returns the server's ID, None if refused."""
    fields = _ID_FIELDS if fields is None else fields
    arg = "(" + " ".join(f"{_quote(k)} {_quote(v)}" for k, v in fields.items()) + ")" if fields else "NIL"
    try:
        typ, data = client._simple_command("ID", arg)  # noqa: SLF001
    except imaplib.IMAP4.abort:
        raise
    except imaplib.IMAP4.error as e:       # BAD: the server does not like our ID; carry on without
        log.warning("the server refused IMAP ID: %s", e)
        return None
    untagged = client.untagged_responses.pop("ID", None) or []
    if typ != "OK":
        log.warning("the server refused IMAP ID: %s %r", typ, data)
        return None
    out: dict[str, str] = {}
    for item in untagged:
        if isinstance(item, bytes):
            for k, v in _ID_PAIR.findall(item):
                out[k.decode("utf-8", "replace")] = v.decode("utf-8", "replace")
    return out


_UID_RE = re.compile(rb"\bUID (\d+)", re.I)
_SIZE_RE = re.compile(rb"\bRFC822\.SIZE (\d+)", re.I)
_FLAGS_RE = re.compile(rb"\bFLAGS \(([^)]*)\)", re.I)
_DATE_RE = re.compile(rb'\bINTERNALDATE "([^"]+)"', re.I)


def _internaldate(value: bytes | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        # strptime's %b is locale-dependent; IMAP's months are English, so map them ourselves.
        day, mon, rest = value.decode("ascii").strip().split("-", 2)
        month = ("jan feb mar apr may jun jul aug sep oct nov dec".split().index(mon.lower()) + 1)
        t = dt.datetime.strptime(f"{int(day):02d}-{month:02d}-{rest}", "%d-%m-%Y %H:%M:%S %z")
        return t.astimezone(dt.UTC)
    except (ValueError, UnicodeDecodeError):
        return None


def _parse_meta(data: Sequence[Any]) -> dict[int, tuple[int, tuple[str, ...], dt.datetime | None]]:
    """UID -> (size, flags, internaldate) from a FETCH (UID RFC822.SIZE FLAGS INTERNALDATE) answer."""
    out: dict[int, tuple[int, tuple[str, ...], dt.datetime | None]] = {}
    for item in data:
        line = b" ".join(x for x in item if isinstance(x, bytes)) if isinstance(item, tuple) else item
        if not isinstance(line, bytes):
            continue
        uid = _UID_RE.search(line)
        size = _SIZE_RE.search(line)
        if uid is None or size is None:       # an unsolicited FETCH (a flag change elsewhere)
            continue
        flags = _FLAGS_RE.search(line)
        out[int(uid.group(1))] = (
            int(size.group(1)),
            tuple(flags.group(1).decode("utf-8", "replace").split()) if flags else (),
            _internaldate(m.group(1)) if (m := _DATE_RE.search(line)) else None,
        )
    return out


def _parse_bodies(data: Sequence[Any]) -> dict[int, bytes]:
    """UID -> raw bytes from a FETCH (UID BODY.PEEK[]) answer; the UID may follow the literal."""
    out: dict[int, bytes] = {}
    items = list(data)
    for i, item in enumerate(items):
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], bytes)):
            continue
        head = item[0] if isinstance(item[0], bytes) else b""
        if not re.search(rb"BODY\[\]", head, re.I):
            continue
        m = _UID_RE.search(head)
        if m is None and i + 1 < len(items) and isinstance(items[i + 1], bytes):
            m = _UID_RE.search(items[i + 1])
        if m is not None:
            out[int(m.group(1))] = item[1]
    return out


def _size_groups(uids: Sequence[int], sizes: Mapping[int, int], max_bytes: int) -> Iterator[list[int]]:
    group: list[int] = []
    total = 0
    for uid in uids:
        size = sizes.get(uid, 0)
        if group and total + size > max_bytes:
            yield group
            group, total = [], 0
        group.append(uid)
        total += size
    if group:
        yield group


def keywords_allowed(client: imaplib.IMAP4) -> bool:
    """True if the selected folder lets us set keywords of our own (PERMANENTFLAGS has \\*)."""
    perm = b" ".join(x for x in client.untagged_responses.get("PERMANENTFLAGS", []) or [] if isinstance(x, bytes))
    return b"\\*" in perm


def _answer(data: Any) -> str:
    """A server's answer (imaplib's data list) as one line of text."""
    parts = data if isinstance(data, (list, tuple)) else [data]
    return " ".join(p.decode("utf-8", "replace") if isinstance(p, bytes) else str(p)
                    for p in parts if p is not None).strip()


def _imap_errors() -> tuple[type[BaseException], ...]:
    from imap_tools.errors import UnexpectedCommandStatusError
    return (OSError, imaplib.IMAP4.error, UnexpectedCommandStatusError, EOFError)


# ---------------------------------------------------------------- IMAP

class ImapSource:
    """One IMAP folder, read by UID in bounded chunks, settled by UID MOVE or a flag."""

    def __init__(self, server: Any, store: Any, *, folders: Mapping[str, str] | None = None,
                 move: bool = True, chunk: int = 10, max_chunk_bytes: int = 64 * 1024 * 1024,
                 timeout: float = 60.0, idle_renew: float = 25 * 60.0, ssl_context: ssl.SSLContext | None = None,
                 allow_plain: bool = False, client_id: Mapping[str, str] | None = None,
                 first_run: str = "all"):
        """
        server: a config.MailServer (host, port, security ssl|starttls|plain, username, password, folder).
        move: False keeps every message where it is and only flags it (servers where moving is not allowed).
        chunk: UIDs per FETCH; max_chunk_bytes bounds the bodies fetched by one command (one big message always goes alone).
        first_run: with no saved progress, "all" processes what the folder holds, "new" only what arrives later.
        """
        if first_run not in ("all", "new"):
            raise ValueError(f"first_run must be 'all' or 'new', not {first_run!r}")
        if chunk < 1:
            raise ValueError("chunk must be at least 1")
        self.host, self.port, self.security = server.host, int(server.port), server.security
        self.username, self.password = server.username, server.password
        self.folder = server.folder or "INBOX"
        self.store = store
        self.folders = dict(DEFAULT_FOLDERS if folders is None else folders)
        self.move_wanted = move
        self.chunk = chunk
        self.max_chunk_bytes = max_chunk_bytes
        self.timeout = timeout
        self.idle_renew = min(float(idle_renew), float(_IDLE_MAX))
        self.ssl_context = ssl_context
        self.allow_plain = allow_plain
        self.client_id = _ID_FIELDS if client_id is None else client_id
        self.first_run = first_run
        self.name = f"imap://{self.username}@{self.host}/{self.folder}"
        # per connection
        self.mailbox: Any = None
        self.capabilities: tuple[str, ...] = ()
        self.server_id: dict[str, str] | None = None
        self.uidvalidity: int | None = None
        self.can_move = False
        self.keywords_allowed = False
        self.namespace: tuple[str, str] | None = None     # personal (prefix, delimiter), from NAMESPACE
        # per start: what the server lacks or refused, said once and shown by `health`
        self.notes: list[str] = []
        self._noted: set[str] = set()
        self._refused_folders: dict[str, str] = {}        # full name -> the server's answer to CREATE
        self._last_uid = 0
        self._outstanding: set[int] = set()
        self._done: set[int] = set()
        self._ready_folders: set[str] = set()
        self._broken = False

    def __repr__(self) -> str:
        return f"ImapSource({self.security}://{self.host}:{self.port}, {self.username!r}, {self.folder!r})"

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port} ({self.security})"

    # ------------------------------------------------------------ connection

    def _open(self) -> Any:
        from imap_tools import MailBox, MailBoxStartTls, MailBoxUnencrypted
        if self.security == "plain":
            if self.host not in _LOOPBACK and not self.allow_plain:
                raise MailboxError(f"refusing plain IMAP to {self.host}: use ssl or starttls "
                                   f"(plain is only for loopback unless the config sets allow_plain)")
            return MailBoxUnencrypted(self.host, self.port, timeout=self.timeout)
        ctx = self.ssl_context or ssl.create_default_context()
        if self.security == "starttls":
            return MailBoxStartTls(self.host, self.port, timeout=self.timeout, ssl_context=ctx)
        if self.security == "ssl":
            return MailBox(self.host, self.port, timeout=self.timeout, ssl_context=ctx)
        raise MailboxError(f"unknown IMAP security {self.security!r} (ssl, starttls or plain)")

    def connect(self) -> None:
        from imap_tools.errors import MailboxLoginError
        from imap_tools.utils import encode_folder
        self.close()
        self.server_id = None
        if not self.username or not self.password:
            raise LoginFailed(f"IMAP {self.where}: imap.username and imap.password must be set")
        try:
            mb = self._open()
        except _imap_errors() as e:
            raise MailboxError(f"cannot connect to IMAP {self.where}: {type(e).__name__}: {e}") from e
        self.mailbox = mb
        try:
            try:
                # imap-tools' login() sends plain LOGIN, never AUTHENTICATE: Coremail advertises
                # SASL-IR without supporting it.
                mb.login(self.username, self.password, initial_folder=None)
            except MailboxLoginError as e:
                answer = b" ".join(x for x in (e.command_result[1] or []) if isinstance(x, bytes))
                raise LoginFailed(f"IMAP login as {self.username} at {self.where} refused by the server: "
                                  f"{e.command_result[0]} {answer.decode('utf-8', 'replace')}") from None
            except imaplib.IMAP4.error as e:
                if isinstance(e, imaplib.IMAP4.abort):
                    raise
                raise LoginFailed(f"IMAP login as {self.username} at {self.where} refused by the server: {e}") from None
            self.capabilities = refresh_capabilities(mb.client)
            if "ID" in self.capabilities:
                self.server_id = imap_id(mb.client, self.client_id)
            typ, data = mb.client.select(encode_folder(self.folder))
            if typ != "OK":
                raise MailboxError(f"cannot select {self.folder!r} on {self.where}: {typ} {data!r}")
            self.uidvalidity = self._uidvalidity()
            self.keywords_allowed = keywords_allowed(mb.client)
            self.can_move = self.move_wanted and "MOVE" in self.capabilities
            self.namespace = self._namespace() if "NAMESPACE" in self.capabilities else None
            self._server_notes()
            self._load_position()
        except LoginFailed:
            self.close()
            raise
        except _imap_errors() as e:
            self._broken = True
            self.close()
            raise MailboxError(f"IMAP {self.where}: {type(e).__name__}: {e}") from e
        except BaseException:
            self.close()
            raise
        log.info("%s: connected to %s, UIDVALIDITY %s, resuming after UID %d%s", self.name, self.where,
                 self.uidvalidity, self._last_uid, "" if self.can_move else ", flag-only")

    def _note(self, key: str, message: str, level: int = logging.WARNING) -> None:
        """Log `message` once per start (not per connection or message) and keep it for `health`."""
        if key in self._noted:
            return
        self._noted.add(key)
        self.notes.append(message)
        log.log(level, "%s: %s", self.name, message)

    def _server_notes(self) -> None:
        if self.move_wanted and "MOVE" not in self.capabilities:
            self._note("no-move", f"the server does not offer MOVE: messages stay in {self.folder} and are "
                                  "flagged, not moved (COPY + EXPUNGE would also remove other \\Deleted mail)")
        if not self.can_move and not self.keywords_allowed:
            self._bare_flag_note()
        if "IDLE" not in self.capabilities:
            self._note("no-idle", "the server does not offer IDLE: mailbot polls instead (every poll_interval seconds)")

    def _bare_flag_note(self) -> None:
        self._note("bare-flag", "the server allows no keywords (PERMANENTFLAGS lacks \\*): a message that is "
                                "flagged instead of moved gets a bare \\Flagged, the same for every outcome; "
                                "the store alone tells the outcomes apart")

    def _namespace(self) -> tuple[str, str] | None:
        try:
            typ, data = self._client().namespace()
        except imaplib.IMAP4.abort:
            raise
        except imaplib.IMAP4.error as e:       # BAD: use the names as configured
            typ, data = "BAD", [str(e).encode()]
        ns = parse_namespace(data or []) if typ == "OK" else None
        if typ != "OK":
            self._note("namespace", f"NAMESPACE refused ({typ} {_answer(data)}): folder names are used as configured")
        elif ns and ns[0] and "namespace-prefix" not in self._noted:
            self._noted.add("namespace-prefix")    # a fact, not a problem: logged once, not a note
            log.info("%s: personal namespace %r (delimiter %r): outcome folders are created under it, e.g. %r",
                     self.name, ns[0], ns[1], namespaced(next(iter(self.folders.values()), "x") or "x", ns))
        return ns

    def mailbox_name(self, folder: str) -> str:
        """The full IMAP name of a configured outcome folder on this server."""
        return namespaced(folder, self.namespace)

    def _uidvalidity(self) -> int | None:
        from imap_tools.utils import encode_folder
        client = self.mailbox.client
        values = client.untagged_responses.get("UIDVALIDITY") or []
        if not values:
            typ, data = client.status(encode_folder(self.folder), "(UIDVALIDITY)")
            if typ == "OK":
                m = re.search(rb"UIDVALIDITY (\d+)", b" ".join(d for d in data if isinstance(d, bytes)))
                values = [m.group(1)] if m else []
        try:
            return int(values[-1]) if values else None
        except ValueError:
            return None

    def _load_position(self) -> None:
        self._outstanding.clear()
        self._done.clear()
        pos = self.store.mailbox_position(self.name)
        if pos is None:
            self._last_uid = self._highest_uid() if self.first_run == "new" else 0
            self.store.save_mailbox_position(self.name, self.uidvalidity, self._last_uid)
        elif pos.uidvalidity != self.uidvalidity:
            log.warning("%s: UIDVALIDITY changed from %s to %s (the folder was rebuilt): re-reading it from "
                        "the start; the store's Message-ID + sha256 dedupe keeps each message processed once",
                        self.name, pos.uidvalidity, self.uidvalidity)
            self._last_uid = 0
            self.store.save_mailbox_position(self.name, self.uidvalidity, 0)
        else:
            self._last_uid = pos.last_uid

    def _highest_uid(self) -> int:
        uids = self._search(1)
        return max(uids) if uids else 0

    def close(self) -> None:
        mb, self.mailbox = self.mailbox, None
        broken, self._broken = self._broken, False
        self._ready_folders.clear()
        if mb is None:
            return
        try:
            if broken:
                # After a failure the connection may hang: a LOGOUT would wait out the timeout.
                mb.client.shutdown()
            else:
                # LOGOUT, never CLOSE: CLOSE expunges the \Deleted messages of the selected folder.
                mb.client.logout()
        except Exception:  # noqa: BLE001 - the connection may be gone already
            try:
                mb.client.shutdown()
            except Exception:  # noqa: BLE001
                pass

    def _client(self) -> imaplib.IMAP4:
        if self.mailbox is None:
            raise MailboxError(f"{self.name}: not connected")
        return self.mailbox.client

    # ------------------------------------------------------------ reading

    def _search(self, first: int) -> list[int]:
        # By UID only. `n:*` always matches the highest UID, even below n: filter again.
        typ, data = self._client().uid("SEARCH", f"UID {first}:*")
        if typ != "OK":
            raise MailboxError(f"{self.name}: UID SEARCH failed: {typ} {data!r}")
        uids = sorted({int(x) for d in data if isinstance(d, bytes) for x in d.split() if x.isdigit()})
        return [u for u in uids if u >= first]

    def fetch_new(self, limit: int = 50) -> Iterator[Fetched]:
        """Messages above the saved UID, oldest first, at most `limit`, read in chunks of `chunk` UIDs."""
        try:
            # imaplib keeps every unsolicited response (an EXPUNGE per MOVE...) until a command
            # asks for it; nothing here needs them, and a long-lived connection must not grow.
            client = self._client()
            client.untagged_responses.clear()
            # Dovecot reports mail that arrived while the folder is selected only at the end of
            # the next command, so a UID SEARCH alone would miss it until the one after: NOOP first.
            client.noop()
            uids = self._search(self._last_uid + 1)
            uids = [u for u in uids if u not in self._outstanding and u not in self._done][:limit]
            for i in range(0, len(uids), self.chunk):
                chunk = uids[i:i + self.chunk]
                meta = self._fetch(chunk, "(UID RFC822.SIZE FLAGS INTERNALDATE)", _parse_meta)
                present = [u for u in chunk if u in meta]     # an expunged UID simply is not there
                for group in _size_groups(present, {u: m[0] for u, m in meta.items()}, self.max_chunk_bytes):
                    bodies = self._fetch(group, "(UID BODY.PEEK[])", _parse_bodies)
                    for uid in group:
                        if uid not in bodies:
                            continue
                        _size, flags, internal = meta[uid]
                        if DONE_KEYWORD in {f.lower() for f in flags}:
                            # Flagged by an earlier run whose progress was lost: settled already.
                            self._progress(uid)
                            continue
                        self._outstanding.add(uid)
                        yield Fetched(
                            key=f"{self.uidvalidity}:{uid}", raw=bodies[uid],
                            received_at=internal or _utcnow(),
                            source=f"imap:{self.folder}:{self.uidvalidity}:{uid}", flags=flags)
        except _imap_errors() as e:
            self._broken = True
            raise MailboxError(f"{self.name}: fetching failed: {type(e).__name__}: {e}") from e

    def _fetch(self, uids: Sequence[int], parts: str, parse: Callable[[Any], dict[int, Any]]) -> dict[int, Any]:
        typ, data = self._client().uid("FETCH", ",".join(map(str, uids)), parts)
        if typ != "OK":
            raise MailboxError(f"{self.name}: UID FETCH {uids[0]}..{uids[-1]} {parts} refused: {typ} {data!r}")
        return parse(data or [])

    # ------------------------------------------------------------ settling

    def settle(self, fetched: Fetched, outcome: str) -> None:
        """Move (or flag) a message whose records are committed, then save the progress."""
        self.settle_all([(fetched, outcome)])

    def settle_all(self, settled: Sequence[tuple[Fetched, str]]) -> None:
        """settle() for messages committed together: one UID MOVE (or STORE) per folder for all
        of them, then the progress saved once."""
        by_target: dict[str | None, dict[str, list[int]]] = {}
        uids: list[int] = []
        for fetched, outcome in settled:
            validity, _, uid_text = fetched.key.rpartition(":")
            if validity != str(self.uidvalidity):
                # The folder was rebuilt since this was fetched: its UID now means another message.
                # Leave it; it comes back under the new UIDVALIDITY and the store's dedupe settles it.
                log.warning("%s: not settling %s: UIDVALIDITY is now %s", self.name, fetched.source, self.uidvalidity)
                continue
            target = _folder_for(self.folders, outcome)
            by_target.setdefault(self.mailbox_name(target) if target else None, {}).setdefault(outcome, []).append(
                int(uid_text))
            uids.append(int(uid_text))
        if not uids:
            return
        try:
            for target, outcomes in by_target.items():
                moved = False
                if self.can_move and target and target != self.folder and self._ensure_folder(target):
                    moved = self._move(sorted(u for us in outcomes.values() for u in us), target)
                if not moved:
                    for outcome, these in outcomes.items():
                        self._flag(these, outcome)
        except _imap_errors() as e:
            self._broken = True
            raise MailboxError(f"{self.name}: settling UID {_uid_set(uids)} failed: {type(e).__name__}: {e}") from e
        failpoint("after-move")
        self._outstanding.difference_update(uids)
        self._progress(*uids)

    def _progress(self, *uids: int) -> None:
        # Progress is the highest UID below which everything is settled: a message fetched but
        # not settled (its handler failed) holds it back, so a restart fetches it again.
        self._done.update(uids)
        floor = min(self._outstanding, default=None)
        ready = [u for u in self._done if floor is None or u < floor]
        if not ready:
            return
        top = max(ready)
        self._done.difference_update(ready)
        if top > self._last_uid:
            self.store.save_mailbox_position(self.name, self.uidvalidity, top)
            self._last_uid = top

    def _ensure_folder(self, name: str) -> bool:
        """True once the folder exists; a folder whose CREATE was refused is not tried again this start."""
        from imap_tools.utils import encode_folder
        if name in self._ready_folders:
            return True
        if name in self._refused_folders:
            return False
        client = self._client()
        if not self.mailbox.folder.exists(name):
            try:
                typ, data = client._simple_command("CREATE", encode_folder(name))  # noqa: SLF001
            except imaplib.IMAP4.abort:
                raise
            except imaplib.IMAP4.error as e:   # BAD (a name the server will not take): a refusal, not a broken link
                typ, data = "BAD", [str(e).encode()]
            if typ != "OK" and not self.mailbox.folder.exists(name):
                answer = f"{typ} {_answer(data)}"
                self._refused_folders[name] = answer
                outcomes = sorted(o for o, f in self.folders.items() if f and self.mailbox_name(f) == name)
                self._note(f"create:{name}", f"cannot create folder {name!r}, the server answered: {answer}; "
                                             f"{', '.join(outcomes) or 'its messages'} stay in {self.folder} and are "
                                             "flagged instead (not tried again until mailbot restarts)")
                if not self.keywords_allowed:
                    self._bare_flag_note()
                return False
            client.subscribe(encode_folder(name))     # so that mail clients show it; failure is harmless
            log.info("%s: created folder %r", self.name, name)
        self._ready_folders.add(name)
        return True

    def _move(self, uids: Sequence[int], target: str) -> bool:
        from imap_tools.utils import encode_folder
        # UID MOVE expunges only the messages it moves (RFC 6851); nothing else is ever expunged.
        typ, data = self._client().uid("MOVE", _uid_set(uids), encode_folder(target))
        if typ == "OK":
            return True
        self._note("move-refused", f"UID MOVE {_uid_set(uids)} to {target!r} refused, the server answered: {typ} "
                                   f"{_answer(data)}; flagging instead (tried again after each reconnect)")
        if not self.keywords_allowed:
            self._bare_flag_note()
        self.can_move = False
        return False

    def _flag(self, uids: Sequence[int], outcome: str) -> None:
        flags = f"{DONE_KEYWORD} mailbot-{outcome}" if self.keywords_allowed else "\\Flagged"
        # UID STORE directly: imap-tools' flag() sends an EXPUNGE after the STORE.
        typ, data = self._client().uid("STORE", _uid_set(uids), "+FLAGS.SILENT", f"({flags})")
        if typ != "OK":
            log.error("%s: cannot flag UID %s (%s %r); unmarked, but its progress is saved",
                      self.name, _uid_set(uids), typ, data)

    # ------------------------------------------------------------ waiting

    def wait(self, timeout: float, stop: threading.Event | None = None) -> bool:
        """IDLE until new mail, `timeout` or `stop`; True if the server reported new mail.

        Without IDLE, sleep (polling). IDLE is renewed every `idle_renew` seconds (at most 29
        minutes) before servers drop it.
        """
        if self.mailbox is None:
            raise MailboxError(f"{self.name}: not connected")
        if "IDLE" not in self.capabilities:
            if stop is not None:
                stop.wait(timeout)
            else:
                time.sleep(timeout)
            return False
        deadline = time.monotonic() + timeout
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (stop is not None and stop.is_set()):
                    return False
                if self._idle(min(remaining, self.idle_renew), stop):
                    return True
        except MailboxError as e:
            self._broken = True
            raise MailboxError(f"{self.name}: {e}") from e
        except _imap_errors() as e:
            self._broken = True
            raise MailboxError(f"{self.name}: IDLE failed: {type(e).__name__}: {e}") from e

    def _idle(self, span: float, stop: threading.Event | None) -> bool:
        client = self.mailbox.client
        tag = client._command("IDLE")  # noqa: SLF001
        early: list[bytes] = []
        # Untagged responses may precede "+ idling" (imap-tools' IdleManager.start() fails on them).
        while (resp := client._get_response()) is not None:  # noqa: SLF001
            if client.tagged_commands.get(tag):
                raise MailboxError(f"IDLE refused: {client.tagged_commands.pop(tag)!r}")
            early.append(resp)
        news = _news(early)
        end = time.monotonic() + span
        while not news:
            remaining = end - time.monotonic()
            if remaining <= 0 or (stop is not None and stop.is_set()):
                break
            # Short polls so that `stop` is seen within a second.
            news = _news(self._poll(min(remaining, 1.0)))
        # After an error above the connection is left as it is: the caller closes and reconnects.
        client.send(b"DONE\r\n")
        if stop is not None and stop.is_set() and not news:
            # Shutting down: a hung server would hold us for the whole socket timeout waiting for
            # DONE's answer; nothing is in flight, so drop the connection instead of logging out.
            self._broken = True
            return False
        self.mailbox.consume_until_tagged_response(tag)
        return news

    def _poll(self, timeout: float) -> list[bytes]:
        # Not imap-tools' IdleManager.poll: it cannot tell a closed connection from a quiet one
        # (both end in an "EOF" it swallows), and it misses an EXISTS already buffered with the
        # "+ idling" line (a message that arrived between the last SEARCH and IDLE).
        lines = self._drain()
        if lines:
            return lines
        ready, _, _ = select.select([self.mailbox.client.sock], [], [], timeout)
        if not ready:
            return []
        lines = self._drain()
        if not lines and _peer_closed(self.mailbox.client.sock):
            raise MailboxError("connection closed by the server during IDLE")
        return lines

    def _drain(self) -> list[bytes]:
        """Every complete line readable now, without blocking."""
        client = self.mailbox.client
        sock = client.sock
        old = sock.gettimeout()
        sock.settimeout(0)
        lines: list[bytes] = []
        try:
            while True:
                try:
                    lines.append(client._get_line())  # noqa: SLF001
                except (BlockingIOError, ssl.SSLWantReadError, socket.timeout):
                    break
                except imaplib.IMAP4.abort as e:
                    if "EOF" in str(e):    # non-blocking read found nothing (or the end: see _peer_closed)
                        break
                    raise
        finally:
            sock.settimeout(old)
        return lines


def _uid_set(uids: Sequence[int]) -> str:
    """An IMAP sequence set for these UIDs, runs written as first:last (RFC 3501)."""
    runs: list[list[int]] = []
    for u in sorted(set(uids)):
        if runs and u == runs[-1][1] + 1:
            runs[-1][1] = u
        else:
            runs.append([u, u])
    return ",".join(str(a) if a == b else f"{a}:{b}" for a, b in runs)


def _news(lines: Sequence[bytes]) -> bool:
    """True if IDLE responses announce new mail; a BYE ends the connection."""
    news = False
    for line in lines:
        if line.startswith(b"* BYE"):
            raise MailboxError(f"the server closed the connection: {line.decode('utf-8', 'replace').strip()}")
        if re.match(rb"\* \d+ (EXISTS|RECENT)\b", line):
            news = True
    return news


def _peer_closed(sock: socket.socket) -> bool:
    """True if the peer has closed the TCP connection (peeked on a duplicate, so TLS sockets work too)."""
    try:
        dup = socket.fromfd(sock.fileno(), sock.family, sock.type)
    except OSError:
        return True
    try:
        dup.setblocking(False)
        return dup.recv(1, socket.MSG_PEEK) == b""
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return True
    finally:
        dup.close()


# ---------------------------------------------------------------- Maildir

def _mutf7(name: str) -> str:
    from imap_tools.imap_utf7 import utf7_encode
    return utf7_encode(name).decode("ascii")


def maildir_folder_name(folder: str, separator: str = "/") -> str:
    """The Maildir++ directory Dovecot uses for an IMAP folder: '已受理' -> '.&XfJT13QG-'.

    Dovecot's default Maildir++ layout stores folder names in modified UTF-7 (RFC 3501 5.1.3),
    each hierarchy level joined by '.'.
    """
    parts = [p for p in folder.split(separator) if p]
    if not parts or any(p in (".", "..") or "." in p for p in parts):
        raise ValueError(f"cannot name a Maildir++ folder {folder!r}")
    return "." + ".".join(_mutf7(p) for p in parts)


class MaildirSource:
    """A local Maildir (new/ and cur/), for running on the mail host and for the demo.

    Each message is processed once: its key (the file name before ':') is recorded when it is
    settled, and settling moves it into the Maildir++ folder Dovecot would use for the outcome
    (e.g. .&XfJT13QG-/cur/ for 已受理), so IMAP clients see the same folders. Nothing is deleted.
    """

    def __init__(self, root: str | Path, store: Any, *, folders: Mapping[str, str] | None = None,
                 move: bool = True, poll_step: float = 0.5):
        self.root = Path(root)
        self.store = store
        self.folders = dict(DEFAULT_FOLDERS if folders is None else folders)
        self.move = move
        self.poll_step = poll_step
        self.name = f"maildir:{self.root.resolve()}"
        self.notes: list[str] = []               # nothing to say about a Maildir; ImapSource's are read by `health`
        self._paths: dict[str, Path] = {}

    def __repr__(self) -> str:
        return f"MaildirSource({str(self.root)!r})"

    def connect(self) -> None:
        missing = [d for d in ("new", "cur") if not (self.root / d).is_dir()]
        if missing:
            raise MailboxError(f"{self.name}: not a Maildir (no {', '.join(missing)}/)")
        self._paths.clear()

    def close(self) -> None:
        self._paths.clear()

    @staticmethod
    def _key(filename: str) -> str:
        return filename.split(":", 1)[0]

    def _entries(self) -> list[tuple[float, str, Path]]:
        out = []
        for sub in ("new", "cur"):
            try:
                with os.scandir(self.root / sub) as it:
                    for e in it:
                        if e.name.startswith("."):
                            continue
                        try:
                            if not e.is_file():
                                continue
                            out.append((e.stat().st_mtime, self._key(e.name), Path(e.path)))
                        except FileNotFoundError:
                            continue
            except FileNotFoundError as e:
                raise MailboxError(f"{self.name}: {e}") from e
        out.sort(key=lambda t: (t[0], t[1]))
        return out

    def fetch_new(self, limit: int = 50) -> Iterator[Fetched]:
        entries = self._entries()
        done = self.store.settled_keys(self.name, [k for _, k, _ in entries])
        n = 0
        for mtime, key, path in entries:
            if key in done or n >= limit:
                continue
            try:
                raw = path.read_bytes()
            except FileNotFoundError:          # moved or renamed by the mail server meanwhile
                continue
            self._paths[key] = path
            n += 1
            yield Fetched(key=key, raw=raw, received_at=dt.datetime.fromtimestamp(mtime, dt.UTC),
                          source=f"maildir:{key}", flags=self._flags(path.name))

    @staticmethod
    def _flags(filename: str) -> tuple[str, ...]:
        _, sep, info = filename.partition(":2,")
        return tuple(info) if sep else ()

    def _current_path(self, key: str) -> Path | None:
        p = self._paths.get(key)
        if p is not None and p.exists():
            return p
        for _, k, path in self._entries():     # Dovecot may have moved it from new/ to cur/
            if k == key:
                return path
        return None

    def _folder_dir(self, folder: str) -> Path:
        d = self.root / maildir_folder_name(folder)
        if not (d / "cur").is_dir():
            st = self.root.stat()
            for sub in ("", "tmp", "new", "cur"):
                p = d / sub if sub else d
                p.mkdir(mode=0o700, exist_ok=True)
                _own_like(p, st)
            marker = d / "maildirfolder"         # Maildir++: this directory is a folder, not a root
            marker.touch(exist_ok=True)
            _own_like(marker, st)
        return d

    def settle(self, fetched: Fetched, outcome: str) -> None:
        key = fetched.key
        target = _folder_for(self.folders, outcome) if self.move else None
        if target:
            src = self._current_path(key)
            if src is None:
                log.warning("%s: message %s vanished before it could be moved", self.name, key)
            else:
                name = src.name if src.parent.name == "cur" else f"{src.name}:2,"
                dest = self._folder_dir(target) / "cur" / name
                try:
                    os.rename(src, dest)          # same file system: atomic, and never a copy + delete
                except FileNotFoundError:
                    log.warning("%s: message %s vanished before it could be moved", self.name, key)
                except OSError as e:
                    log.error("%s: cannot move %s to %s: %s; it stays where it is", self.name, key, dest, e)
        self.store.mark_settled(self.name, key, outcome)
        self._paths.pop(key, None)

    def _stamp(self) -> tuple[int, ...]:
        out = []
        for sub in ("new", "cur"):
            try:
                out.append((self.root / sub).stat().st_mtime_ns)
            except FileNotFoundError:
                out.append(0)
        return tuple(out)

    def wait(self, timeout: float, stop: threading.Event | None = None) -> bool:
        """Poll new/ and cur/ until one changes (True), `timeout` passes or `stop` is set."""
        before = self._stamp()
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            step = min(self.poll_step, remaining)
            if stop is not None:
                if stop.wait(step):
                    return False
            else:
                time.sleep(step)
            if self._stamp() != before:
                return True


def _own_like(path: Path, st: os.stat_result) -> None:
    # mailbot may run as root on the mail host: a folder it makes must stay readable by the
    # mail server's user, who owns the Maildir.
    if os.geteuid() == 0 and (st.st_uid, st.st_gid) != (0, 0):
        os.chown(path, st.st_uid, st.st_gid)
