"""`mailbot demo`: a month of the sections' mail through the real bot, on a machine with nothing set up.

What it does, in order:

1. makes a fresh work folder (default `storage/demo/` in the project; wiped and recreated on
   every run, and only ever a folder the demo made itself or an empty one);
2. starts development mail servers on 127.0.0.1 (mailbot/devservers.py): an embedded SMTP server
   that delivers every message into the recipient's Maildir under `<workdir>/mail/`, or with
   `imap=True` a Dovecot of its own plus an SMTP relay into it over LMTP;
3. writes `<workdir>/config.yaml` from config.example.yaml's sections, with the storage in the
   work folder, the credit section's Maildir (or the Dovecot over IMAP) as the mailbox and the
   embedded server as the outgoing SMTP server;
4. sends every examples/*.eml to the credit section's mailbox over SMTP, as the sections' mail
   clients do (envelope from = the message's From);
5. runs one `Daemon(config).poll_once()`: every message through the pipeline, moved into its
   folder, every reply delivered through the embedded SMTP server into the sender's mailbox;
6. prints what came back to each sender (read from their own mailbox), what the credit section
   now sees (sections × tasks for the month, mail waiting for a person, the folders), where
   everything lives and the commands to try next.

The examples are dated November 2026, and the demo tells their story then: the mail is
delivered, then stamped as received on STORY_DAY, a minute apart (a Maildir's, and Dovecot's,
received time is the file's time), and the bot runs on a clock that starts just after the last
of them, so its receipts say 按时报送 and are dated that day.
"""
from __future__ import annotations

import collections
import datetime as dt
import email
import email.policy
import mailbox as stdlib_mailbox
import re
import shutil
import smtplib
import sys
import time
import unicodedata
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.utils import parseaddr
from pathlib import Path
from typing import Any, TextIO

import yaml

from mailbot.app.config import PROJECT_ROOT, config_from_mapping
from mailbot.dates.period import period_label

__all__ = ["run_demo", "DEFAULT_WORKDIR", "MARKER", "STORY_DAY"]

# when the sample month's mail arrives: after the examples' own dates, before November's deadlines
# (in the bureau's zone: the wiring sets it from the config before the bot runs)
STORY_DAY = dt.datetime(2026, 11, 20, 10, 0)

DEFAULT_WORKDIR = PROJECT_ROOT / "storage" / "demo"
MARKER = ".mailbot-demo"          # in a work folder the demo made: only such a folder is ever wiped
_OWN_KEYS = ("storage", "database", "imap", "smtp", "maildir", "rules")
_SPREADSHEET = re.compile(r"\.(xlsx|xlsm|xls|ods|et)$", re.I)
_PROBLEM = re.compile(r"^\s*（\d+）")


@dataclass
class _Sent:
    file: str
    sender: str
    body: bytes                   # the bytes sent, LF line ends: what the stored message ends with


def run_demo(*, imap: bool = False, workdir: Path | None = None, out: TextIO = sys.stdout) -> int:
    """Run the demo; 0 done, 1 the bot or a server failed, 2 cannot run here (no examples/, no Dovecot, bad folder)."""
    t0 = time.monotonic()
    _safe_output(out)

    def say(line: str = "") -> None:
        print(line, file=out, flush=True)

    examples = PROJECT_ROOT / "examples"
    files = sorted(examples.glob("*.eml")) if examples.is_dir() else []
    example_config = PROJECT_ROOT / "config.example.yaml"
    if not files or not example_config.is_file():
        missing = examples if not files else example_config
        say(f"mailbot demo: {missing} is missing. The demo sends the sample month of mail shipped in the")
        say("project's examples/ folder with config.example.yaml; they are part of a source checkout, not of")
        say("an installed package. Run it from a clone of the project installed with `pip install -e .`.")
        return 2
    if imap:
        from mailbot.dev.devservers import DOVECOT_INSTALL, dovecot_missing
        missing_dovecot = dovecot_missing()
        if missing_dovecot:
            say(f"mailbot demo --imap: {missing_dovecot}.")
            say(f"Install it (Debian/Ubuntu, as root):  {DOVECOT_INSTALL}")
            say("or run `mailbot demo` without --imap: it needs no mail server at all.")
            return 2
    workdir = Path(workdir) if workdir is not None else DEFAULT_WORKDIR
    problem = _fresh_workdir(workdir)
    if problem:
        say(f"mailbot demo: {problem}")
        return 2
    workdir = workdir.resolve()

    base = yaml.safe_load(example_config.read_text(encoding="utf-8")) or {}
    address = str(base["mailbox_address"]).strip().lower()
    name = str(base.get("mailbox_name") or "信用监管科")
    mail_root = workdir / "mail"

    mode = "IMAP (a Dovecot of its own on 127.0.0.1, SMTP relay into it over LMTP)" if imap else \
        "Maildir (local Maildirs + an embedded SMTP server; no mail server needed)"
    say(f"mailbot demo — {name} 邮件受理演示 · mode: {mode}")
    say(f"工作目录 workdir: {workdir}  (wiped and recreated on every run)")
    say()

    dovecot = None
    smtp = None
    daemon = None
    try:
        from mailbot.dev import devservers
        if imap:
            dovecot = devservers.Dovecot()
            dovecot.start()
            smtp = devservers.LmtpRelay(dovecot).start()
        else:
            smtp = devservers.MaildirSMTP(mail_root).start()
            stdlib_mailbox.Maildir(smtp.maildir(address), create=True)   # the bot's mailbox exists before any mail

        mapping = _config_mapping(base, address, name, smtp.port, imap=dovecot, mail_root=mail_root,
                                  workdir=workdir)
        config_file = workdir / "config.yaml"
        _write_config(config_file, mapping, imap=imap)
        config = config_from_mapping(mapping, str(config_file), workdir)

        # ---------------------------------------------------------- 1. the sections send their mail
        where = f"SMTP {smtp.host}:{smtp.port}" + (f" → LMTP → Dovecot IMAP {dovecot.host}:{dovecot.imap_port}"
                                                  if dovecot else f" → Maildir {_rel(smtp.maildir(address), workdir)}/")
        say(f"1. 各科室发来 {len(files)} 封邮件 The sections send {len(files)} messages to {address}  ({where})")
        sent = _send_examples(files, smtp.host, smtp.port, address)
        width = max(len(s.file) for s in sent)
        for s in sent:
            say(f"   {s.file:<{width}}  from {s.sender}")
        say()

        # ---------------------------------------------------------- 2. the bot, once, on the story's day
        from mailbot.app.daemon import Daemon
        from mailbot.dates.zone import use_zone
        received = _stamp_received(dovecot.maildir(address) if dovecot else smtp.maildir(address),
                                   STORY_DAY.replace(tzinfo=use_zone(config.timezone)))
        t_poll = time.monotonic()
        daemon = Daemon(config, clock=_story_clock(received + dt.timedelta(minutes=1)))
        summary = daemon.poll_once()
        counts = summary.counts()
        say(f"2. mailbot poll: {summary.messages} message(s) processed ("
            + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) + f"); {summary.sent} repl"
            + ("y" if summary.sent == 1 else "ies") + " sent through the embedded SMTP server"
            + (f"; {summary.temporary} deferred, {summary.permanent} failed" if summary.temporary or summary.permanent else "")
            + f"  [{time.monotonic() - t_poll:.1f} s]")
        say()
        store = daemon.store

        # ---------------------------------------------------------- 3. what each sender got back
        def inbox(addr: str) -> list[bytes]:
            return dovecot.messages(addr) if dovecot is not None else smtp.messages(addr)

        say("3. 各发件人收到的回复 What came back to each sender (read from their own mailbox"
            + (" over IMAP):" if dovecot else ", a Maildir):"))
        _show_replies(say, sent, store, inbox, config.section_of_address)
        say()

        # ---------------------------------------------------------- 4. what the credit section sees
        _show_matrix(say, daemon, name)
        _show_waiting(say, store)
        folders = _imap_folders(dovecot, address) if dovecot else _maildir_folders(smtp.maildir(address), config)
        say(f"   邮箱文件夹 Folders of {address} (each message is moved after it is stored):")
        say("     " + "   ".join(f"{f} {n}" for f, n in folders))
        say()

        # ---------------------------------------------------------- 5. where, and what next
        workbook = _save_a_rejected_workbook(store, workdir)
        if dovecot is not None:                # keep the mail once the server is gone: same layout as Maildir mode
            dovecot.stop()
            _copy_dovecot_mail(dovecot, mail_root)
        _show_where(say, workdir, config, address, imap=imap)
        _show_next(say, config_file, workbook, daemon.rules, imap=imap)
        if summary.temporary or summary.permanent:
            say(f"mailbot demo: {summary.temporary + summary.permanent} repl(ies) could not be delivered")
            return 1
        say(f"完成 done in {time.monotonic() - t0:.1f} s.")
        return 0
    except Exception as e:  # noqa: BLE001 - the demo reports, the CLI exits
        say(f"mailbot demo: failed: {type(e).__name__}: {e}")
        if dovecot is not None:
            say(f"(Dovecot's log: {dovecot.log_text()[-1500:]})")
        return 1
    finally:
        if daemon is not None:
            daemon.store.close()
        if smtp is not None:
            smtp.stop()
        if dovecot is not None:
            dovecot.close()


# ---------------------------------------------------------------- set-up

def _stamp_received(maildir: Path, first: dt.datetime) -> dt.datetime:
    """Mark the messages waiting in `maildir` as received from `first` on, a minute apart, in the
    order they came; the last one's time."""
    import os
    waiting = sorted((p for sub in ("new", "cur") if (maildir / sub).is_dir() for p in (maildir / sub).iterdir()
                      if p.is_file()), key=lambda p: (p.stat().st_mtime, p.name))
    at = first
    for i, path in enumerate(waiting):
        at = first + dt.timedelta(minutes=i)
        os.utime(path, (at.timestamp(), at.timestamp()))
    return at


def _story_clock(start: dt.datetime):
    """A clock that reads `start` when the bot starts and runs on from there at the real pace."""
    t0 = time.monotonic()
    return lambda: start + dt.timedelta(seconds=time.monotonic() - t0)


def _safe_output(out: TextIO) -> None:
    """A terminal that cannot show Chinese gets replacement characters rather than a crash."""
    try:
        "信报·—".encode(getattr(out, "encoding", None) or "utf-8")
    except (UnicodeEncodeError, LookupError):
        reconfigure = getattr(out, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="replace")


def _fresh_workdir(workdir: Path) -> str | None:
    """Wipe and recreate `workdir`, if it is the demo's own (MARKER) or empty; else say why not."""
    if workdir.exists():
        if not workdir.is_dir():
            return f"{workdir} exists and is not a folder"
        if not (workdir / MARKER).exists() and any(workdir.iterdir()):
            return (f"{workdir} exists, is not empty and was not made by `mailbot demo`; "
                    "the demo wipes its folder, so choose a new or empty one (--dir DIR)")
        for child in workdir.iterdir():       # the folder itself stays: it may be a mount point or cwd
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / MARKER).write_text("made by `mailbot demo`; wiped and recreated by every run\n", encoding="utf-8")
    return None


def _config_mapping(base: dict[str, Any], address: str, name: str, smtp_port: int, *, imap: Any,
                    mail_root: Path, workdir: Path) -> dict[str, Any]:
    """config.example.yaml's sections, with the demo's storage, mailbox and SMTP server."""
    from mailbot.dev.devservers import HOST, PASSWORD
    mapping = {k: v for k, v in base.items() if k not in _OWN_KEYS}
    if base.get("rules"):                      # relative to the example config, not to the work folder
        mapping["rules"] = str((PROJECT_ROOT / str(base["rules"])).resolve())
    mapping["storage"] = "storage"
    if imap is not None:
        mapping["imap"] = {"host": HOST, "port": imap.imap_port, "security": "plain",
                           "username": address, "password": PASSWORD}
    else:
        mapping["maildir"] = str((mail_root / address).relative_to(workdir))
    mapping["smtp"] = {"host": HOST, "port": smtp_port, "security": "plain", "sender": f"{name} <{address}>"}
    return mapping


def _write_config(path: Path, mapping: dict[str, Any], *, imap: bool) -> None:
    head = ["# Written by `mailbot demo`: config.example.yaml's sections, with this folder's storage,",
            "# the mailbox and an SMTP server of the demo's own on 127.0.0.1. Relative paths are relative",
            "# to this file. The demo's servers stopped when it ended: commands that only read the store",
            "# (health, and ingest of .eml files) work with this file; poll and run need the servers."]
    if imap:
        head.append("# The Dovecot's mail was copied into mail/ before it was removed.")
    path.write_text("\n".join(head) + "\n" + yaml.safe_dump(mapping, allow_unicode=True, sort_keys=False),
                    encoding="utf-8")


def _send_examples(files: list[Path], host: str, port: int, rcpt: str) -> list[_Sent]:
    """Each file over SMTP, as a mail client sends it: CRLF lines, envelope from = its From."""
    sent = []
    with smtplib.SMTP(host, port, timeout=30) as client:
        for f in files:
            raw = f.read_bytes()
            head = BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)
            sender = parseaddr(str(head.get("From", "")))[1].strip().lower()
            lf = raw.replace(b"\r\n", b"\n")
            client.sendmail(sender, [rcpt], lf.replace(b"\n", b"\r\n"))
            sent.append(_Sent(f.name, sender, lf))
    return sent


# ---------------------------------------------------------------- what came back

def _plain_text(msg: email.message.EmailMessage) -> str:
    part = msg.get_body(("plain",))
    try:
        return part.get_content() if part is not None else ""
    except (LookupError, UnicodeError):
        return ""


def _reply_lines(raw: bytes) -> tuple[str, list[str]]:
    """A reply's subject and the lines worth showing: 受理结果, the problems that need action, attachments.

    Reads the plain body writing/receipt.py writes: "需要说明的问题：" (up to a blank line), and in the
    "需修改后重新报送的材料" group each item's "问题（n处）：" list; warnings (提示) are left out.
    """
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    subject = str(msg.get("Subject", "")).strip()
    lines: list[str] = []
    group, showing = None, False
    for line in _plain_text(msg).splitlines():
        s = line.strip()
        if s.startswith("受理结果："):
            lines.append(s)
        elif s.startswith("需要说明的问题"):
            group, showing = "notes", True
        elif re.match(r"^[一二三四五]、", s):
            group, showing = ("rejected" if "需修改" in s else "other"), False
        elif group == "rejected" and s.startswith("问题（"):
            showing = True
        elif s.startswith("提示（") or (not s and group == "notes"):
            showing = False
        elif showing and _PROBLEM.match(line):
            lines.append("需修改：" + _PROBLEM.sub("", line).strip())
    names = [p.get_filename() for p in msg.iter_attachments() if p.get_filename()]
    if names:
        lines.append("附件 attached: " + "、".join(names))
    return subject, lines


def _show_replies(say, sent: list[_Sent], store: Any, inbox, section_of) -> None:
    """Per message sent: the sender's replies that answer it (In-Reply-To), or why there is none.

    A stored message is matched to the file it came from by content (the mailbox adds headers
    on top, and a message without a Message-ID gets a synthetic one), a reply to the stored
    message by its In-Reply-To.
    """
    stored = {}
    for m in store.messages(limit=10_000):
        body = store.read_raw(m.raw_sha256).replace(b"\r\n", b"\n")
        for s in sent:
            if body.endswith(s.body):
                stored[s.file] = m
    replies: dict[str, list[tuple[str, str, bytes]]] = {}
    for sender in dict.fromkeys(s.sender for s in sent):
        replies[sender] = []
        for raw in inbox(sender):
            head = BytesHeaderParser(policy=email.policy.default).parsebytes(raw)
            irt = "".join(str(head.get("In-Reply-To", "")).split()).strip("<>")
            replies[sender].append((irt, str(head.get("Subject", "")), raw))
    for s in sent:
        m = stored.get(s.file)
        section = section_of(s.sender) or "未登记 not registered" + (f", 封面 cover: {m.section}" if m and m.section else "")
        say(f"   {s.file[:2]} {s.sender} ({section})  «{m.subject if m else '?'}»")
        # by In-Reply-To, or by the receipt number every reply's subject carries
        answers = [raw for irt, subject, raw in replies.get(s.sender, []) if m is not None and (
            irt == m.message_id.strip("<>") or (m.receipt_no and m.receipt_no in subject))]
        if not answers:
            say("      ← 无回复 no reply" + (f": {m.outcome}, {m.reason}" if m else ""))
            continue
        for raw in answers:
            subject, lines = _reply_lines(raw)
            say(f"      ← {subject}")
            for line in lines:
                say(f"        {line}")


# ---------------------------------------------------------------- what the credit section sees

def _width(s: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in s)


def _pad(s: str, n: int) -> str:
    return s + " " * max(0, n - _width(s))


def _show_matrix(say, daemon: Any, credit: str) -> None:
    """The month as `mailbot status` shows it, at the story's moment: one vocabulary, no symbols."""
    from mailbot.duties.office import Office
    from mailbot.duties.status import render_table
    from mailbot.dates.period import period_of
    store, rules = daemon.store, daemon.rules
    periods = collections.Counter(s.period for s in store.submissions(current_only=False))
    now = daemon.clock()
    period = periods.most_common(1)[0][0] if periods else period_of(now)
    say(f"4. {credit}现在看到的 What the credit section now sees — {period_label(period)} ({period}), "
        "sections × tasks, as `mailbot status` shows them:")
    table = render_table(Office.of(daemon).status(period, now), today=now.date())
    for line in table.splitlines():
        say(("   " + line).rstrip())
    key = [f"{t.number} {t.title[:12]}{'…' if len(t.title) > 12 else ''}" for t in rules.tasks]
    for i in range(0, len(key), 4):
        say(("   任务 tasks: " if i == 0 else "               ") + "  ".join(key[i:i + 4]))
    say()


def _show_waiting(say, store: Any) -> None:
    waiting = store.messages(limit=10_000, outcome="quarantined")
    failures = store.failures()
    say(f"   待人工处理 Waiting for a person: {len(waiting) + len(failures)}")
    for m in reversed(waiting):
        say(f"     {m.receipt_no}  {m.from_addr}  «{m.subject}»")
        say(f"       {m.reason}")
    for f in failures:
        say(f"     failure #{f.id} at {f.stage}: {f.error}")
    say()


def _maildir_folders(root: Path, config: Any) -> list[tuple[str, int]]:
    from mailbot.transport.mailbox import DEFAULT_FOLDERS, maildir_folder_name

    def count(d: Path) -> int:
        return sum(1 for sub in ("new", "cur") if (d / sub).is_dir()
                   for p in (d / sub).iterdir() if p.is_file() and not p.name.startswith("."))

    names = dict.fromkeys(v for v in {**DEFAULT_FOLDERS, **(config.folders or {})}.values() if v)
    return [("INBOX", count(root))] + [(n, count(root / maildir_folder_name(n))) for n in names]


def _imap_folders(dovecot: Any, user: str) -> list[tuple[str, int]]:
    out = []
    with dovecot.mailbox(user, None) as mb:
        for f in mb.folder.list():
            out.append((f.name, int(mb.folder.status(f.name, ["MESSAGES"])["MESSAGES"])))
    from mailbot.transport.mailbox import DEFAULT_FOLDERS
    order = ["INBOX", *dict.fromkeys(DEFAULT_FOLDERS.values())]
    return sorted(out, key=lambda x: (order.index(x[0]) if x[0] in order else len(order), x[0]))


# ---------------------------------------------------------------- where, and what next

def _rel(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)


def _save_a_rejected_workbook(store: Any, workdir: Path) -> tuple[Path, Any] | None:
    """The file of a rejected workbook, under its own name, for `mailbot check` to look at; with its submission."""
    rejected = [s for s in store.submissions(current_only=False)
                if s.status == "rejected" and _SPREADSHEET.search(s.filename) and s.errors]
    for s in sorted(rejected, key=lambda s: not s.sheets):      # a real workbook first, not a disguised file
        d = workdir / "workbooks"
        d.mkdir(exist_ok=True)
        path = d / Path(s.filename).name
        path.write_bytes(store.read_file(s.sha256))
        return path, s
    return None


def _copy_dovecot_mail(dovecot: Any, mail_root: Path) -> None:
    src = dovecot.root / "mail"
    for user_dir in sorted(src.iterdir()) if src.is_dir() else []:
        maildir = user_dir / "Maildir"
        if maildir.is_dir():
            shutil.copytree(maildir, mail_root / user_dir.name, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("dovecot*", "subscriptions"))


def _show_where(say, workdir: Path, config: Any, address: str, *, imap: bool) -> None:
    from mailbot.transport.mailbox import DEFAULT_FOLDERS, maildir_folder_name
    say(f"5. 文件在哪里 Where everything lives ({workdir}):")
    db = config.database.removeprefix("sqlite:///")
    rows = [
        ("config.yaml", "the configuration the demo ran with"),
        (_rel(Path(db), workdir), "SQLite database: messages, files, submissions, outbox"),
        ("storage/raw/", "every message exactly as received (content-addressed)"),
        ("storage/files/", "every attachment and unpacked file (content-addressed)"),
        ("mail/<address>/", "each mailbox as a Maildir" + (" (copied from the Dovecot before it was removed)" if imap else "")),
        (f"mail/{address}/", "the credit section's: " + ", ".join(
            f"{maildir_folder_name(n)} = {n}" for n in dict.fromkeys(DEFAULT_FOLDERS.values()))),
    ]
    if (workdir / "workbooks").is_dir():
        rows.append(("workbooks/", "a rejected workbook, saved under its own name"))
    width = max(_width(r[0]) for r in rows)
    for path, what in rows:
        say(f"   {_pad(path, width)}  {what}")
    say()


def _show_next(say, config_file: Path, workbook: tuple[Path, Any] | None, rules: Any, *, imap: bool) -> None:
    prog = sys.argv[0] if sys.argv and Path(sys.argv[0]).name == "mailbot" else "mailbot"
    say("6. 接下来可以试 Next, try:")
    story = STORY_DAY.strftime("%Y-%m")
    say(f"   {prog} --config {config_file} status --period {story} --now {STORY_DAY:%Y-%m-%d}T18:00   "
        "(the month as it stood that evening; without --now: as it stands today)")
    say(f"   {prog} --config {config_file} quarantine list")
    if workbook is not None:
        path, sub = workbook
        say(f"   {prog} check '{path}'")
        section, period = sub.section or rules.sections[0].id, sub.period
    else:
        section, period = rules.sections[0].id, STORY_DAY.strftime("%Y-%m")
    say(f"   {prog} template --section {section} --period {period} --out {config_file.parent / 'template.xlsx'}")
    if not imap:
        say(f"   {prog} demo --imap        (the same over real IMAP, where Dovecot is installed)")
    say()
