"""Receiving mail (mailbot/mailbox.py) against a real Dovecot and a real Maildir.

The mail-path tests (resume, server restart, IDLE, the whole loop with a threaded reply) run
on Cyrus IMAP too (`imap_server`); tests/test_imap_servers.py has what differs by server.

The handler here stands in for pipeline.process: it records each message through the real
Store, so the store's (Message-ID, sha256) dedupe is what makes "processed once" true, as in
service. State tests run on SQLite and PostgreSQL.
"""
from __future__ import annotations

import datetime as dt
import email
import email.policy
import imaplib
import logging
import os
import threading
import time
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailbot.transport import mailbox as mbx
from mailbot.app.config import MailServer
from mailbot.transport.mailbox import (Backoff, Fetched, ImapSource, LoginFailed, MailboxError, MaildirSource,
                             maildir_folder_name, run_once, watch)
from mailbot.model import Incoming, Outcome, Verdict
from mailbot.store import Store

# The harness (tests/mailservers.py): fixtures dovecot, smtp_relay, test_cert.
pytest_plugins = ["mailservers"]

USER = "xyjgk@example.test"
FOLDER_DIRS = {"已受理": ".&XfJT13QG-", "已退回": ".&XfKQAFbe-", "待人工": ".&X4VOul3l-", "已忽略": ".&XfJf,XVl-"}


# ---------------------------------------------------------------- helpers

def mail(n: int, outcome: str = "accepted", subject: str | None = None) -> bytes:
    m = EmailMessage()
    m["From"] = "政策法规科 <fagui@example.test>"
    m["To"] = USER
    m["Subject"] = subject or f"报送材料 第{n}号 [{outcome}]"
    m["Message-ID"] = f"<msg-{n}-{outcome}@example.test>"
    m["Date"] = "Thu, 26 Nov 2026 10:00:00 +0800"
    m.set_content(f"第{n}号\n")
    return m.as_bytes(policy=email.policy.SMTP)


class Recorder:
    """Stands in for pipeline.process: records through the real Store and returns the outcome.

    The outcome is read from the subject's [tag]; a message seen before comes back as a
    duplicate with its first outcome, exactly as the store answers the pipeline.
    """

    def __init__(self, store: Store, on_call=None):
        self.store = store
        self.calls: list[str] = []
        self.created: list[str] = []
        self.on_call = on_call
        self.lock = threading.Lock()

    def __call__(self, fetched: Fetched) -> str:
        msg = email.message_from_bytes(fetched.raw, policy=email.policy.default)
        mid = str(msg["Message-ID"]).strip("<>")
        subject = str(msg["Subject"])
        outcome = subject.rsplit("[", 1)[-1].rstrip("]") if "[" in subject else "accepted"
        sha = self.store.archive_raw(fetched.raw)
        incoming = Incoming(message_id=mid, subject=subject, from_addr="fagui@example.test", from_name="",
                            to=(USER,), cc=(), reply_to=(), date=None, in_reply_to=None, references=(),
                            headers={}, content_type="text/plain", text="", attachments=())
        result = self.store.record(incoming=incoming, raw_sha256=sha, received_at=fetched.received_at,
                                   source=fetched.source, verdict=Verdict(Outcome(outcome), "test", None, reply=False))
        with self.lock:
            self.calls.append(mid)
            if result.created:
                self.created.append(mid)
        if self.on_call is not None:
            self.on_call(len(self.calls), fetched)
        return result.message.outcome






class Commands:
    """Every IMAP command the given source's connection sends: (name, args)."""

    def __init__(self, monkeypatch):
        self.sent: list[tuple[imaplib.IMAP4, str, tuple]] = []
        original = imaplib.IMAP4._command
        outer = self

        def spy(self_, name, *args):
            outer.sent.append((self_, name, tuple(a.decode("utf-8", "replace") if isinstance(a, bytes) else a
                                                  for a in args)))
            return original(self_, name, *args)

        monkeypatch.setattr(imaplib.IMAP4, "_command", spy)

    def of(self, source: ImapSource) -> list[tuple[str, tuple]]:
        client = source.mailbox.client
        return [(name, args) for c, name, args in self.sent if c is client]

    def names(self, source: ImapSource) -> list[str]:
        return [f"UID {args[0].upper()}" if name == "UID" else name for name, args in self.of(source)]


@pytest.fixture
def commands(monkeypatch):
    return Commands(monkeypatch)


def imap(dovecot, store, **kw) -> ImapSource:
    kw.setdefault("timeout", 10)
    folder = kw.pop("folder", "INBOX")
    password = kw.pop("password", dovecot.password)
    security = kw.pop("security", "plain")
    return ImapSource(dovecot.server(USER, security=security, folder=folder, password=password), store, **kw)


def eventually(predicate, timeout: float = 20.0, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


# ---------------------------------------------------------------- pure helpers

def test_maildir_folder_names_are_dovecots_modified_utf7():
    for name, on_disk in FOLDER_DIRS.items():
        assert maildir_folder_name(name) == on_disk
    assert maildir_folder_name("Archive/2026") == ".Archive.2026"
    assert maildir_folder_name("R&D") == ".R&-D"
    with pytest.raises(ValueError):
        maildir_folder_name("a.b")


def test_fetch_answers_are_parsed_whatever_the_order_of_items():
    body = b"Subject: x\r\n\r\nbody\r\n"
    data = [(b"1 (UID 7 BODY[] {%d}" % len(body), body), b")",
            (b"2 (BODY[] {%d}" % len(body), body + b"2"), b" UID 9)",           # UID after the literal
            b"3 (FLAGS (\\Seen))"]                                                  # unsolicited
    assert mbx._parse_bodies(data) == {7: body, 9: body + b"2"}
    meta = mbx._parse_meta([b'1 (UID 7 RFC822.SIZE 120 FLAGS (\\Recent mailbot-done) '
                            b'INTERNALDATE " 6-Nov-2026 10:00:00 +0800")', b"5 (FLAGS ())"])
    assert meta == {7: (120, ("\\Recent", "mailbot-done"), dt.datetime(2026, 11, 6, 2, 0, tzinfo=dt.UTC))}


def test_bodies_are_fetched_in_groups_bounded_by_size():
    sizes = {1: 10, 2: 10, 3: 100, 4: 5, 5: 5}
    assert list(mbx._size_groups([1, 2, 3, 4, 5], sizes, 25)) == [[1, 2], [3], [4, 5]]


def test_backoff_grows_to_a_ceiling_and_resets():
    b = Backoff(initial=1, maximum=10, jitter=0)
    assert [b.next() for _ in range(6)] == [1, 2, 4, 8, 10, 10]
    b.reset()
    assert b.next() == 1
    b.attempt = 5000                                    # days of outage must not overflow
    assert b.next() == 10


def test_plain_imap_is_refused_off_loopback_unless_insisted(store):
    server = MailServer(host="mail.example.gov.cn", port=143, security="plain", username="u", password="p")
    with pytest.raises(MailboxError, match="refusing plain IMAP"):
        ImapSource(server, store).connect()


def test_run_once_settles_each_message_after_its_handler():
    events = []

    class Fake:
        name = "fake"

        def __init__(self):
            self.waiting = [Fetched(str(i), b"x", dt.datetime.now(dt.UTC), f"fake:{i}") for i in range(3)]

        def fetch_new(self, limit):
            batch, self.waiting = self.waiting[:limit], self.waiting[limit:]
            for f in batch:
                events.append(("fetch", f.key))
                yield f

        def settle(self, fetched, outcome):
            events.append(("settle", fetched.key, outcome))

    def handle(f):
        events.append(("handle", f.key))
        return Outcome.REJECTED

    assert run_once(Fake(), handle, limit=2) == 3
    assert events == [("fetch", "0"), ("handle", "0"), ("settle", "0", "rejected"),
                      ("fetch", "1"), ("handle", "1"), ("settle", "1", "rejected"),
                      ("fetch", "2"), ("handle", "2"), ("settle", "2", "rejected")]


def test_mailbox_state_round_trips(database_url, tmp_path):
    st = Store(database_url, tmp_path / "storage")
    st.upgrade()
    try:
        assert st.mailbox_position("imap://u@h/INBOX") is None
        st.save_mailbox_position("imap://u@h/INBOX", 4_000_000_000, 7)       # UIDVALIDITY is 32-bit unsigned
        st.save_mailbox_position("imap://u@h/INBOX", 4_000_000_000, 5)       # never backwards
        pos = st.mailbox_position("imap://u@h/INBOX")
        assert (pos.uidvalidity, pos.last_uid) == (4_000_000_000, 7)
        st.save_mailbox_position("imap://u@h/INBOX", 12, 0)                  # a new UIDVALIDITY starts over
        pos = st.mailbox_position("imap://u@h/INBOX")
        assert (pos.uidvalidity, pos.last_uid) == (12, 0)
        st.mark_settled("maildir:/m", "k1", "accepted")
        st.mark_settled("maildir:/m", "k1", "accepted")                      # idempotent
        assert st.settled_keys("maildir:/m", ["k1", "k2"]) == {"k1"}
        assert st.settled_keys("maildir:/other", ["k1"]) == set()
    finally:
        st.close()


# ---------------------------------------------------------------- IMAP against Dovecot

@pytest.mark.parametrize("max_chunk_bytes,body_fetches", [(64 * 1024 * 1024, 3), (1, 25)])
def test_fetches_in_chunks_without_setting_seen(dovecot, store, commands, max_chunk_bytes, body_fetches):
    for i in range(25):
        dovecot.deliver(USER, mail(i))
    src = imap(dovecot, store, chunk=10, max_chunk_bytes=max_chunk_bytes)
    src.connect()
    try:
        got = list(src.fetch_new(100))
    finally:
        sent = commands.of(src)
        src.close()
    assert [email.message_from_bytes(f.raw)["Message-ID"] for f in got] == [f"<msg-{i}-accepted@example.test>"
                                                                          for i in range(25)]
    assert all(f.source == f"imap:INBOX:{src.uidvalidity}:{i + 1}" for i, f in enumerate(got))
    assert all(abs((f.received_at - dt.datetime.now(dt.UTC)).total_seconds()) < 120 for f in got)
    fetches = [args for name, args in sent if name == "UID" and args[0].upper() == "FETCH"]
    bodies = [a for a in fetches if "BODY.PEEK[]" in a[2]]
    assert len(bodies) == body_fetches
    assert all(len(a[1].split(",")) <= 10 for a in fetches)               # bounded chunks of UIDs
    assert not any("BODY[" in a[2] for a in fetches)                       # never the \Seen-setting form
    assert not any(name == "SEARCH" or (name == "UID" and args[0].upper() == "SEARCH" and "UID" not in args[1])
                   for name, args in sent)                                 # UID searches only
    assert all("\\Seen" not in f for f in dovecot.flags(USER).values())


def test_settle_moves_into_chinese_folders_created_on_demand(dovecot, store, commands):
    outcomes = ["accepted", "partially_accepted", "rejected", "quarantined", "ignored"]
    for i, o in enumerate(outcomes):
        dovecot.deliver(USER, mail(i, o))
    dovecot.deliver(USER, mail(99, "quarantined"))
    src = imap(dovecot, store)
    src.connect()
    try:
        assert "MOVE" in src.capabilities                  # refreshed after login
        assert run_once(src, Recorder(store)) == 6
        names = commands.names(src)
    finally:
        src.close()
    assert names.count("UID MOVE") == 6
    assert "EXPUNGE" not in names and "UID COPY" not in names and "CLOSE" not in names
    assert not any(n == "UID STORE" for n in names)
    assert set(dovecot.folders(USER)) == {"INBOX", "已受理", "已退回", "待人工", "已忽略"}
    assert dovecot.messages(USER) == []
    counts = {f: len(dovecot.messages(USER, f)) for f in FOLDER_DIRS}
    assert counts == {"已受理": 2, "已退回": 1, "待人工": 2, "已忽略": 1}
    for f in FOLDER_DIRS:
        assert all("\\Seen" not in fl and "\\Deleted" not in fl for fl in dovecot.flags(USER, f).values())
    on_disk = {p.name for p in dovecot.maildir(USER).iterdir() if p.name.startswith(".&")}
    assert on_disk == set(FOLDER_DIRS.values())


@pytest.mark.parametrize("how", ["no MOVE capability", "MOVE refused"])
def test_flags_instead_of_moving_and_never_expunges(dovecot, store, commands, monkeypatch, how):
    for i in range(3):
        dovecot.deliver(USER, mail(i, "rejected" if i == 1 else "accepted"))
    if how == "no MOVE capability":
        real = mbx.refresh_capabilities
        monkeypatch.setattr(mbx, "refresh_capabilities", lambda c: tuple(x for x in real(c) if x != "MOVE"))
    src = imap(dovecot, store)
    src.connect()
    if how == "MOVE refused":
        client = src.mailbox.client
        real_uid = client.uid
        client.uid = lambda cmd, *a: (("NO", [b"[CANNOT] not here"]) if cmd.upper() == "MOVE"
                                      else real_uid(cmd, *a))
    try:
        assert run_once(src, Recorder(store)) == 3
        names = commands.names(src)
        assert not src.can_move
    finally:
        src.close()
    assert "EXPUNGE" not in names and "UID COPY" not in names
    assert "UID MOVE" not in names                        # refused by the stub, or never tried
    flags = dovecot.flags(USER)
    assert len(flags) == 3                                # everything still in INBOX
    assert [("mailbot-done" in f, f"mailbot-{o}" in f) for f, o in
            zip(flags.values(), ["accepted", "rejected", "accepted"])] == [(True, True)] * 3
    assert all("\\Deleted" not in f and "\\Seen" not in f for f in flags.values())
    # flagged messages are not fetched again, even with the saved position forgotten
    store.save_mailbox_position(src.name, src.uidvalidity + 1, 0)
    again = imap(dovecot, store, move=False)
    again.connect()
    try:
        assert list(again.fetch_new(10)) == []
    finally:
        again.close()


def test_restart_resumes_from_the_saved_uid(imap_server, db_store):
    for i in range(25):
        imap_server.deliver(USER, mail(i))
    rec = Recorder(db_store)
    first = imap(imap_server, db_store, move=False, chunk=10)
    first.connect()
    for f in first.fetch_new(10):
        first.settle(f, rec(f))
    # a crash between commit and settle: the 11th is recorded but neither flagged nor saved
    crashed = next(iter(first.fetch_new(1)))
    rec(crashed)
    first.close()
    assert db_store.mailbox_position(first.name).last_uid == 10

    second = imap(imap_server, db_store, move=False, chunk=10)
    second.connect()
    try:
        assert run_once(second, rec) == 15
    finally:
        second.close()
    assert len(rec.created) == 25 and len(set(rec.created)) == 25
    assert rec.calls.count("msg-10-accepted@example.test") == 2           # fetched again, recorded once
    assert len(rec.calls) == 26
    assert db_store.mailbox_position(first.name).last_uid == 25
    assert len(db_store.messages(limit=100)) == 25

    third = imap(imap_server, db_store, move=False)
    third.connect()
    try:
        assert run_once(third, rec) == 0
    finally:
        third.close()


def test_first_run_new_skips_what_was_there(dovecot, store):
    for i in range(3):
        dovecot.deliver(USER, mail(i))
    src = imap(dovecot, store, first_run="new")
    src.connect()
    try:
        assert list(src.fetch_new(10)) == []
        dovecot.deliver(USER, mail(3))
        assert [f.key for f in src.fetch_new(10)] == [f"{src.uidvalidity}:4"]
    finally:
        src.close()


def test_uidvalidity_change_processes_each_message_once(dovecot, db_store):
    folder = "报送"
    with dovecot.mailbox(USER) as mb:
        mb.folder.create(folder)
        for i in range(3):
            mb.append(mail(i), folder)
    rec = Recorder(db_store)
    src = imap(dovecot, db_store, folder=folder)
    src.connect()
    try:
        assert run_once(src, rec) == 3
        old_validity = src.uidvalidity
    finally:
        src.close()
    # The folder is rebuilt (a restore): the same three messages and two new ones, new UIDs.
    with dovecot.mailbox(USER) as mb:
        mb.folder.delete(folder)
        mb.folder.create(folder)
        for i in range(5):
            mb.append(mail(i), folder)
    src = imap(dovecot, db_store, folder=folder)
    src.connect()
    try:
        assert src.uidvalidity != old_validity
        assert run_once(src, rec) == 5
    finally:
        src.close()
    assert sorted(rec.created) == sorted(f"msg-{i}-accepted@example.test" for i in range(5))
    assert len(rec.calls) == 8
    assert len(db_store.messages(limit=100)) == 5
    assert dovecot.messages(USER, folder) == []
    pos = db_store.mailbox_position(src.name)
    assert (pos.uidvalidity, pos.last_uid) == (src.uidvalidity, 5)


def test_id_is_sent_when_offered(dovecot, store, commands, monkeypatch):
    src = imap(dovecot, store)
    src.connect()
    try:
        assert ("ID" in src.capabilities) and src.server_id and src.server_id.get("name") == "Dovecot"
        names = commands.names(src)
        # after LOGIN (never AUTHENTICATE: SASL-IR may be advertised and broken), before SELECT
        assert names.index("LOGIN") < names.index("ID") < names.index("SELECT")
        assert "AUTHENTICATE" not in names
    finally:
        src.close()
    assert eventually(lambda: "ID sent: name=mailbot" in dovecot.log_text(), 5)

    real = mbx.refresh_capabilities
    monkeypatch.setattr(mbx, "refresh_capabilities", lambda c: tuple(x for x in real(c) if x != "ID"))
    src = imap(dovecot, store)
    src.connect()
    try:
        assert "ID" not in commands.names(src) and src.server_id is None
    finally:
        src.close()


def test_login_failure_is_reported_clearly_and_retried(dovecot, store, caplog):
    src = imap(dovecot, store, password="wrong")
    with pytest.raises(LoginFailed, match=r"IMAP login as xyjgk@example.test at 127.0.0.1:\d+ \(plain\) "
                                          r"refused by the server: NO \[AUTHENTICATIONFAILED\]"):
        src.connect()

    dovecot.deliver(USER, mail(1))
    rec = Recorder(store)
    stop = threading.Event()
    errors = []

    def on_error(e, delay):
        errors.append(e)
        if len(errors) == 2:
            src.password = dovecot.password      # the administrator fixes the password

    caplog.set_level(logging.INFO, logger="mailbot.transport.mailbox")
    t = threading.Thread(target=watch, args=(src, rec), daemon=True,
                         kwargs=dict(stop=stop, poll_interval=0.5, login_retry_floor=0.05,
                                     backoff=Backoff(initial=0.01, jitter=0), on_error=on_error))
    t.start()
    try:
        assert eventually(lambda: rec.created == ["msg-1-accepted@example.test"])
    finally:
        stop.set()
        t.join(10)
    assert not t.is_alive()
    assert [type(e) for e in errors] == [LoginFailed, LoginFailed]
    assert sum("refused by the server" in r.getMessage() and r.levelno == logging.ERROR
               for r in caplog.records) == 2


def test_server_restarts_while_fetching_and_nothing_is_lost_or_repeated(imap_server, store, caplog):
    for i in range(12):
        imap_server.deliver(USER, mail(i))

    def restart_on_fifth(n, fetched):
        if n == 5:
            imap_server.stop()          # graceful: the bot gets BYE; its settle of this message fails
            imap_server.start()

    rec = Recorder(store, on_call=restart_on_fifth)
    src = imap(imap_server, store, chunk=4)
    stop = threading.Event()
    caplog.set_level(logging.INFO, logger="mailbot.transport.mailbox")
    t = threading.Thread(target=watch, args=(src, rec), daemon=True,
                         kwargs=dict(stop=stop, poll_interval=30, backoff=Backoff(initial=0.05, jitter=0)))
    t.start()
    try:
        assert eventually(lambda: len(rec.created) == 12 and not imap_server.messages(USER))
        # and again while it idles: the connection drops, it reconnects and sees new mail
        imap_server.stop(fast=True)
        imap_server.start()
        imap_server.deliver(USER, mail(12))
        assert eventually(lambda: len(rec.created) == 13 and not imap_server.messages(USER))
    finally:
        stop.set()
        t.join(10)
    assert not t.is_alive()
    assert sorted(rec.created) == sorted(f"msg-{i}-accepted@example.test" for i in range(13))
    assert len(rec.calls) == 14                      # the fifth was fetched twice, recorded once
    assert len(imap_server.messages(USER, imap_server.folder("已受理"))) == 13
    assert len(store.messages(limit=100)) == 13
    assert any("reconnecting in" in r.getMessage() for r in caplog.records)


def test_idle_wakes_on_new_mail_and_gives_up_on_timeout_or_stop(imap_server, store):
    src = imap(imap_server, store)
    src.connect()
    try:
        t0 = time.monotonic()
        assert src.wait(0.6) is False
        assert 0.5 < time.monotonic() - t0 < 2.0

        stop = threading.Event()
        threading.Timer(0.3, stop.set).start()
        t0 = time.monotonic()
        assert src.wait(30, stop) is False
        assert time.monotonic() - t0 < 2.0

        delivered = {}

        def later():
            time.sleep(0.3)
            delivered["at"] = time.monotonic()
            imap_server.deliver(USER, mail(1))

        threading.Thread(target=later).start()
        assert src.wait(10) is True
        latency = time.monotonic() - delivered["at"]
        print(f"ImapSource.wait woke {latency:.3f} s after the delivery")
        assert latency < 2.0
        assert len(list(src.fetch_new(10))) == 1     # the connection is usable after IDLE
    finally:
        src.close()


def test_idle_notices_a_dropped_connection(dovecot, store):
    src = imap(dovecot, store)
    src.connect()
    try:
        threading.Timer(0.3, lambda: dovecot.stop(fast=True)).start()
        t0 = time.monotonic()
        with pytest.raises(MailboxError):
            src.wait(20)
        assert time.monotonic() - t0 < 3.0
    finally:
        src.close()


def test_a_server_that_stops_answering_times_out_and_is_reconnected(dovecot, store):
    dovecot.deliver(USER, mail(1))
    src = imap(dovecot, store, timeout=1)
    src.connect()
    dovecot.freeze()
    try:
        t0 = time.monotonic()
        with pytest.raises(MailboxError, match="timed out"):
            list(src.fetch_new(10))
        assert time.monotonic() - t0 < 3
        t0 = time.monotonic()
        src.close()                                  # no LOGOUT on a broken connection: no second wait
        assert time.monotonic() - t0 < 0.5
    finally:
        dovecot.thaw()
    src.connect()
    try:
        assert run_once(src, Recorder(store)) == 1
    finally:
        src.close()


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_tls_connections(dovecot, store, test_cert, security):
    if test_cert is None:
        pytest.skip("openssl is not installed: Dovecot runs without TLS")
    dovecot.deliver(USER, mail(1))
    src = imap(dovecot, store, security=security, ssl_context=test_cert.client_context())
    src.connect()
    try:
        assert src.mailbox.client.sock.version().startswith("TLS")
        assert "MOVE" in src.capabilities
        assert run_once(src, Recorder(store)) == 1
    finally:
        src.close()
    untrusting = imap(dovecot, store, security=security)          # the system's CAs: not our test cert
    with pytest.raises(MailboxError, match="CERTIFICATE_VERIFY_FAILED"):
        untrusting.connect()


# ---------------------------------------------------------------- Maildir

def make_maildir(root: Path) -> Path:
    for d in ("new", "cur", "tmp"):
        (root / d).mkdir(parents=True)
    return root


def put(root: Path, name: str, raw: bytes, sub: str = "new", mtime: float | None = None) -> Path:
    p = root / sub / name
    p.write_bytes(raw)
    if mtime is not None:
        os.utime(p, (mtime, mtime))
    return p


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*")
            if p.is_file() and p.parent.name in ("new", "cur")}


def test_maildir_fetch_settle_resume_and_never_delete(tmp_path, db_store):
    root = make_maildir(tmp_path / "Maildir")
    base = time.time() - 100
    put(root, "1001.M1P1.host,S=10", mail(1, "accepted"), mtime=base + 1)
    put(root, "1002.M2P2.host", mail(2, "rejected"), mtime=base + 2)
    put(root, "1000.M0P0.host:2,S", mail(0, "ignored"), sub="cur", mtime=base + 0)
    put(root, "1003.M3P3.host", mail(3, "quarantined"), mtime=base + 3)
    before = sorted(tree(root).values())

    rec = Recorder(db_store)
    src = MaildirSource(root, db_store)
    src.connect()
    fetched = list(src.fetch_new(10))
    assert [f.key for f in fetched] == ["1000.M0P0.host", "1001.M1P1.host,S=10", "1002.M2P2.host", "1003.M3P3.host"]
    assert fetched[0].received_at == dt.datetime.fromtimestamp(base, dt.UTC)
    assert fetched[0].source == "maildir:1000.M0P0.host" and fetched[0].flags == ("S",)
    # crash before settling the last one: it is fetched again by the next run
    for f in fetched[:3]:
        src.settle(f, rec(f))
    rec(fetched[3])
    again = MaildirSource(root, db_store)
    again.connect()
    assert run_once(again, rec) == 1
    assert run_once(MaildirSource(root, db_store), rec) == 0

    assert sorted(tree(root).values()) == before            # every message still there, byte for byte
    assert set(tree(root)) == {
        ".&XfJf,XVl-/cur/1000.M0P0.host:2,S",
        ".&XfJT13QG-/cur/1001.M1P1.host,S=10:2,",
        ".&XfKQAFbe-/cur/1002.M2P2.host:2,",
        ".&X4VOul3l-/cur/1003.M3P3.host:2,",
    }
    for d in FOLDER_DIRS.values():
        assert (root / d / "maildirfolder").exists() and (root / d / "tmp").is_dir()
    assert len(rec.created) == 4 and len(rec.calls) == 5


def test_maildir_flag_only_keeps_messages_in_place(tmp_path, store):
    root = make_maildir(tmp_path / "Maildir")
    put(root, "1.M1.host", mail(1))
    before = tree(root)
    assert run_once(MaildirSource(root, store, move=False), Recorder(store)) == 1
    assert run_once(MaildirSource(root, store, move=False), Recorder(store)) == 0
    assert tree(root) == before


def test_maildir_wait_notices_new_mail(tmp_path, store):
    root = make_maildir(tmp_path / "Maildir")
    src = MaildirSource(root, store, poll_step=0.05)
    src.connect()
    assert src.wait(0.2) is False
    threading.Timer(0.2, lambda: put(root, "2.M2.host", mail(2))).start()
    t0 = time.monotonic()
    assert src.wait(5) is True
    assert time.monotonic() - t0 < 1.0


def test_maildir_and_imap_name_folders_alike_on_a_dovecot_maildir(dovecot, store):
    """The Maildir source settles into folders Dovecot serves over IMAP, under the same names."""
    for i, o in enumerate(["accepted", "rejected"]):
        dovecot.deliver(USER, mail(i, o))
    src = MaildirSource(dovecot.maildir(USER), store)
    src.connect()
    assert run_once(src, Recorder(store)) == 2
    assert set(dovecot.folders(USER)) == {"INBOX", "已受理", "已退回"}
    assert len(dovecot.messages(USER, "已受理")) == 1 and len(dovecot.messages(USER, "已退回")) == 1
    assert dovecot.messages(USER) == []
    # and a folder Dovecot creates over IMAP lands where the Maildir source would put it
    other = "zscq@example.test"
    dovecot.deliver(other, mail(5, "quarantined"))
    imap_src = ImapSource(dovecot.server(other), store, timeout=10)
    imap_src.connect()
    try:
        run_once(imap_src, Recorder(store))
    finally:
        imap_src.close()
    assert (dovecot.maildir(other) / maildir_folder_name("待人工") / "cur").is_dir()


# ---------------------------------------------------------------- the whole loop

def test_a_section_mails_in_and_reads_the_reply_in_its_own_mailbox(imap_server, imap_smtp_relay, store):
    """SMTP in → Dovecot → ImapSource → pipeline → outbox → SMTP out → the section's mailbox.

    The outbox is sent with smtplib here, standing in for mailbot.transport.smtp.
    """
    from email.utils import getaddresses

    from mailbot import pipeline
    from mailbot.rules import load_rules
    from mailbot.dates.workdays import WorkCalendar
    rules_dir = Path(__file__).resolve().parent.parent / "rules"
    rules = load_rules(rules_dir)
    intake = pipeline.Intake(rules=rules, calendar=WorkCalendar(rules.calendar, str(rules_dir)),
                             address_sections={"fagui@example.test": "政策法规科"},
                             own_addresses=frozenset({USER}), mailbox_address=USER)
    section = "fagui@example.test"
    sent = mail(1, subject="政策法规科 2026年11月 信用监管材料")          # no attachment: a rejection
    with imap_smtp_relay.client() as c:
        c.sendmail(section, [USER], sent)
    now = dt.datetime.now(dt.UTC)

    def handle(f: Fetched):
        return pipeline.process(f.raw, intake=intake, store=store, source=f.source,
                                received_at=f.received_at, now=now)

    src = imap(imap_server, store)
    src.connect()
    try:
        assert run_once(src, handle) == 1
    finally:
        src.close()
    assert imap_server.messages(USER) == [] and len(imap_server.messages(USER, imap_server.folder("已退回"))) == 1

    due = store.due_outbox(now + dt.timedelta(seconds=1))
    assert len(due) == 1
    with imap_smtp_relay.client() as c:
        for m in due:
            # smtplib sends bytes as they are; the outbox keeps LF line ends (the sender makes them CRLF)
            crlf = m.raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
            c.sendmail(USER, [a for _n, a in getaddresses(list(m.recipients))], crlf)
    replies = imap_server.messages(section)
    assert len(replies) == 1
    reply = email.message_from_bytes(replies[0], policy=email.policy.default)
    assert reply["In-Reply-To"].strip() == "<msg-1-accepted@example.test>"
    assert USER in str(reply["From"])
