"""The outbox sender against real SMTP servers: aiosmtpd on 127.0.0.1 (plain, AUTH, STARTTLS, implicit TLS),
a server that answers 451 or 550, one that is down, one that never speaks and one that drops the
connection mid-DATA. Tests that depend on the database run on SQLite and PostgreSQL."""
from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import email
import email.policy
import socket
import ssl
import subprocess
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from mailbot.app.config import MailServer
from mailbot.writing.common import make_message
from mailbot.transport.smtp import DEFAULT_POLICY, RetryPolicy, deliver_due, deliver_due_sync
from mailbot.model import OutgoingMail
from mailbot.store import Store

UTC = dt.UTC
NOW = dt.datetime(2026, 11, 26, 1, 30, tzinfo=UTC)
MIN = dt.timedelta(minutes=1)
LEASE = dt.timedelta(minutes=5)
SENDER = "信用监管科 <xyjgk@example.gov.cn>"
OK_RCPT = "zcfg@example.gov.cn"


# ---------------------------------------------------------------- servers

@dataclasses.dataclass
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    content: bytes
    mail_options: tuple[str, ...]
    tls: bool
    authenticated: bool

    @property
    def message(self) -> email.message.EmailMessage:
        return email.message_from_bytes(self.content, policy=email.policy.default)


class Recorder:
    """An aiosmtpd handler that keeps every mail it accepts and answers DATA from a script.

    script: replies to DATA in order ("451 ...", "550 ...", "drop" = close the connection after
    taking the data, "keep-and-drop" = keep it, then close before answering); then 250.
    refuse: recipient -> reply to RCPT.
    """

    def __init__(self, script=(), refuse=None, delay: float = 0.0):
        self.script = list(script)
        self.refuse = dict(refuse or {})
        self.delay = delay
        self.received: list[Received] = []
        self.data_commands = 0
        self.connections = 0
        self._lock = threading.Lock()

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        with self._lock:
            self.connections += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self._lock:
            self.data_commands += 1
            action = self.script.pop(0) if self.script else "accept"
        if self.delay:
            await asyncio.sleep(self.delay)
        got = Received(envelope.mail_from, tuple(envelope.rcpt_tos), envelope.original_content,
                       tuple(envelope.mail_options),
                       # session.ssl is set by STARTTLS only; implicit TLS shows on the transport
                       session.ssl is not None or server.transport.get_extra_info("sslcontext") is not None,
                       bool(session.authenticated))
        if action in ("drop", "keep-and-drop"):
            if action == "keep-and-drop":
                self.received.append(got)
            server.transport.close()
            return "250 never read"
        if action != "accept":
            return action
        with self._lock:
            self.received.append(got)
            return f"250 2.0.0 Ok: queued as Q{len(self.received)}"

    def message_ids(self) -> list[str]:
        return [r.message["Message-ID"] for r in self.received]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_config(port: int, security: str = "plain", **kw) -> MailServer:
    return MailServer(host="127.0.0.1", port=port, security=security, sender=SENDER, **kw)


@contextmanager
def smtp_server(handler, security: str = "plain", **kw):
    port = free_port()
    ctrl = Controller(handler, hostname="127.0.0.1", port=port, **kw)
    ctrl.start()
    try:
        yield server_config(port, security)
    finally:
        ctrl.stop()


@contextmanager
def raw_server(script):
    """A one-connection server speaking just enough SMTP; script(conn, file) runs after the greeting."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    port = srv.getsockname()[1]

    def run():
        try:
            conn, _ = srv.accept()
        except OSError:
            return
        with conn, conn.makefile("rb") as f:
            conn.sendall(b"220 fake ESMTP\r\n")
            script(conn, f)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    try:
        yield server_config(port)
    finally:
        srv.close()
        t.join(5)


@pytest.fixture(scope="session")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost (the `cryptography` package is not installed)."""
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    return cert, key


@pytest.fixture
def server_tls(certificate) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(*certificate)
    return ctx


@pytest.fixture
def trust(certificate) -> ssl.SSLContext:
    """A client context that trusts the test certificate, and verifies it as usual."""
    return ssl.create_default_context(cafile=str(certificate[0]))


# ---------------------------------------------------------------- the store and its mails





def letter(n: int, to: tuple[str, ...] = (f"张三 <{OK_RCPT}>",)) -> OutgoingMail:
    """A receipt as writing/receipt.py writes it: Chinese subject, UTF-8 body, LF line ends, a stable Message-ID."""
    receipt = f"XY20261126-{n:05d}"
    mid = f"{receipt}.receipt@example.gov.cn"
    subject = f"【回执】{receipt} 任务3 2026年11月 双公示台账"
    raw = make_message(sender="xyjgk@example.gov.cn", sender_name="信用监管科", to=list(to), subject=subject,
                       plain=f"政策法规科：\n\n回执编号：{receipt}\n受理结果：已受理\n.一行以句点开头\n",
                       message_id=mid, now=NOW, in_reply_to=f"orig-{n}@qq.com")
    return OutgoingMail(kind="receipt", recipients=to, subject=subject, mail_message_id=mid, raw=raw)


def queue(store: Store, *mails: OutgoingMail, now: dt.datetime = NOW) -> list[int]:
    return [q.id for q in store.queue(mails, now=now)]


def row(store: Store, outbox_id: int):
    [m] = store.outbox([outbox_id])
    return m


def on_the_wire(raw: bytes) -> bytes:
    """What the server stores: the same bytes with CRLF line ends (SMTP's canonical form)."""
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def deliver(store, smtp, now=NOW, **kw):
    return deliver_due_sync(store, smtp, now, **kw)


# ---------------------------------------------------------------- sending

def test_mails_arrive_byte_for_byte_and_the_reply_is_recorded(db_store):
    st = db_store
    first = letter(1)
    crlf = OutgoingMail("digest", ("科长 <Boss@Example.gov.cn>", OK_RCPT), "11月汇总", "<dig-2026-11@example.gov.cn>",
                        "Message-ID: <dig-2026-11@example.gov.cn>\r\nSubject: =?utf-8?b?MTHmnIjmsYfmgLs=?=\r\n"
                        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
                        "各科室报送情况如下。\r\n.\r\n..两个句点\r\n".encode("utf-8"))
    ids = queue(st, first, crlf)
    handler = Recorder()
    with smtp_server(handler) as smtp:
        report = deliver(st, smtp)
    assert report.sent == ids and report.temporary == report.permanent == [] and report.stopped is None

    one, two = handler.received
    assert one.mail_from == "xyjgk@example.gov.cn" and one.rcpt_tos == (OK_RCPT,)
    assert one.content == on_the_wire(first.raw)                       # LF from the email package
    assert one.message["Message-ID"] == "<XY20261126-00001.receipt@example.gov.cn>"
    assert one.message["Subject"] == "【回执】XY20261126-00001 任务3 2026年11月 双公示台账"
    assert ".一行以句点开头" in one.message.get_body(("plain",)).get_content()  # dot-stuffing undone
    assert two.content == crlf.raw                                      # already CRLF: identical
    assert two.rcpt_tos == ("Boss@Example.gov.cn", OK_RCPT)
    # The email package writes UTF-8 text as 8bit: both need BODY=8BITMIME.
    assert "BODY=8BITMIME" in one.mail_options and "BODY=8BITMIME" in two.mail_options
    assert any(o.startswith("SIZE=") for o in one.mail_options)

    m = row(st, ids[0])
    assert (m.status, m.attempts, m.sent_at, m.next_attempt_at) == ("sent", 1, NOW, None)
    assert m.server_reply == "250 2.0.0 Ok: queued as Q1"
    assert row(st, ids[1]).server_reply == "250 2.0.0 Ok: queued as Q2"
    assert handler.connections == 1                                    # one connection per batch
    # Nothing is due any more.
    assert deliver(st, smtp, NOW + dt.timedelta(days=1)).leased == 0


def test_retry_schedule_is_fixed():
    p = DEFAULT_POLICY
    assert [p.delay(n) for n in range(1, 10)] == [MIN * m for m in (1, 2, 4, 8, 16, 32, 60, 60, 60)]
    assert not p.gives_up(1, NOW, NOW + dt.timedelta(days=2, hours=23))
    assert p.gives_up(1, NOW, NOW + dt.timedelta(days=3))
    assert p.gives_up(80, NOW, NOW)
    with pytest.raises(ValueError):
        p.delay(0)


def test_451_is_retried_with_backoff_until_accepted(db_store):
    st = db_store
    [oid] = queue(st, letter(1))
    handler = Recorder(script=["451 4.3.0 Try again later"] * 3)
    with smtp_server(handler) as smtp:
        t = NOW
        for attempt, wait in enumerate((1, 2, 4), start=1):
            report = deliver(st, smtp, t)
            assert report.temporary == [oid]
            m = row(st, oid)
            assert (m.status, m.attempts) == ("failed_temporary", attempt)
            assert m.next_attempt_at == t + MIN * wait
            assert m.last_error == "DATA: 451 4.3.0 Try again later"
            # Not due before its time.
            assert deliver(st, smtp, m.next_attempt_at - dt.timedelta(seconds=1)).leased == 0
            t = m.next_attempt_at
        report = deliver(st, smtp, t)
    assert report.sent == [oid]
    m = row(st, oid)
    assert (m.status, m.attempts, m.sent_at) == ("sent", 4, t)
    assert handler.data_commands == 4 and len(handler.received) == 1


def test_temporary_failures_become_permanent_after_n_attempts_or_three_days(store):
    [a] = queue(store, letter(1))
    [b] = queue(store, letter(2), now=NOW - dt.timedelta(days=3))
    handler = Recorder(script=["421 4.7.0 busy"] * 10)
    policy = RetryPolicy(max_attempts=2)
    with smtp_server(handler) as smtp:
        report = deliver(store, smtp, NOW, policy=policy)
        # b is older than three days: its first temporary failure is its last.
        assert report.temporary == [a] and report.permanent == [b]
        assert row(store, b).last_error.startswith("gave up after 1 attempt(s) since 2026-11-23")
        report = deliver(store, smtp, NOW + MIN, policy=policy)
    assert report.permanent == [a]
    m = row(store, a)
    assert (m.status, m.attempts, m.next_attempt_at) == ("failed_permanent", 2, None)
    assert "421 4.7.0 busy" in m.last_error


def test_550_is_permanent_and_left_for_a_person(store):
    ids = queue(store, letter(1), letter(2))
    handler = Recorder(script=["550 5.7.1 Message rejected as spam"])
    with smtp_server(handler) as smtp:
        report = deliver(store, smtp)
        assert report.permanent == ids[:1] and report.sent == ids[1:]   # the next mail still goes
        m = row(store, ids[0])
        assert (m.status, m.attempts, m.next_attempt_at) == ("failed_permanent", 1, None)
        assert m.last_error == "DATA: 550 5.7.1 Message rejected as spam"
        assert deliver(store, smtp, NOW + dt.timedelta(days=30)).leased == 0   # never retried
    assert store.outbox_stats(NOW).counts["failed_permanent"] == 1
    assert handler.data_commands == 2


def test_recipients_refused(store):
    some = letter(1, to=(OK_RCPT, "nobody@example.gov.cn"))
    none_ = letter(2, to=("nobody@example.gov.cn",))
    grey = letter(3, to=("greylisted@example.gov.cn", "nobody@example.gov.cn"))
    ids = queue(store, some, none_, grey)
    handler = Recorder(refuse={"nobody@example.gov.cn": "550 5.1.1 No such user",
                               "greylisted@example.gov.cn": "450 4.2.0 Greylisted"})
    with smtp_server(handler) as smtp:
        report = deliver(store, smtp)
    # Accepted for one recipient: delivered (a resend would duplicate it for him); the refusal is noted.
    assert report.sent == [ids[0]]
    [got] = handler.received
    assert got.rcpt_tos == (OK_RCPT,)
    m = row(store, ids[0])
    assert m.status == "sent"
    assert m.server_reply == "250 2.0.0 Ok: queued as Q1; refused: <nobody@example.gov.cn> 550 5.1.1 No such user"
    assert report.attempts[0].refused == (("nobody@example.gov.cn", "550 5.1.1 No such user"),)
    # Refused for all: permanent only if every refusal is.
    assert report.permanent == [ids[1]] and report.temporary == [ids[2]]
    assert row(store, ids[1]).last_error == "RCPT TO:<nobody@example.gov.cn>: 550 5.1.1 No such user"
    assert "450 4.2.0 Greylisted" in row(store, ids[2]).last_error


def test_a_mail_without_a_usable_address_is_permanent(store):
    ids = queue(store, letter(1, to=("未填写",)), letter(2))
    handler = Recorder()
    with smtp_server(handler) as smtp:
        report = deliver(store, smtp)
    assert report.permanent == ids[:1] and report.sent == ids[1:]


# ---------------------------------------------------------------- authentication and TLS

def _authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"xyjgk", "口令-1".encode())
    return AuthResult(success=ok, handled=False)          # handled=False: aiosmtpd answers 535 itself


_PLAIN_AUTH = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


@_PLAIN_AUTH
@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_auth_on_loopback(store, mechanism):
    [oid] = queue(store, letter(1))
    other = {"PLAIN": ["LOGIN"], "LOGIN": ["PLAIN"]}[mechanism]
    handler = Recorder()
    with smtp_server(handler, authenticator=_authenticator, auth_required=True, auth_require_tls=False,
                     auth_exclude_mechanism=other) as smtp:
        report = deliver(store, dataclasses.replace(smtp, username="xyjgk", password="口令-1"))
    assert report.sent == [oid]
    assert handler.received[0].authenticated


@_PLAIN_AUTH
def test_wrong_password_fails_the_batch_temporarily(store):
    ids = queue(store, letter(1), letter(2))
    handler = Recorder()
    with smtp_server(handler, authenticator=_authenticator, auth_required=True, auth_require_tls=False) as smtp:
        report = deliver(store, dataclasses.replace(smtp, username="xyjgk", password="wrong"))
    # A login failure is not the mails' fault: temporary for all, whatever the 535.
    assert report.temporary == ids and report.stopped.startswith("server unavailable: login to 127.0.0.1")
    for oid in ids:
        m = row(store, oid)
        assert (m.status, m.next_attempt_at) == ("failed_temporary", NOW + MIN)
        assert "535" in m.last_error
    assert handler.data_commands == 0


def test_starttls_with_a_trusted_certificate(store, server_tls, trust):
    [oid] = queue(store, letter(1))
    handler = Recorder()
    with smtp_server(handler, "starttls", tls_context=server_tls, require_starttls=True,
                     authenticator=_authenticator, auth_required=True) as smtp:
        report = deliver(store, dataclasses.replace(smtp, username="xyjgk", password="口令-1"), tls_context=trust)
    assert report.sent == [oid]
    assert handler.received[0].tls and handler.received[0].authenticated


def test_implicit_tls_with_a_trusted_certificate(store, server_tls, trust):
    mail = letter(1)
    [oid] = queue(store, mail)
    handler = Recorder()
    with smtp_server(handler, "ssl", ssl_context=server_tls) as smtp:
        report = deliver(store, smtp, tls_context=trust)
    assert report.sent == [oid] and handler.received[0].tls
    assert handler.received[0].content == on_the_wire(mail.raw)


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_an_untrusted_certificate_is_refused_by_default(store, server_tls, security):
    ids = queue(store, letter(1), letter(2))
    handler = Recorder()
    kw = {"ssl_context": server_tls} if security == "ssl" else {"tls_context": server_tls}
    with smtp_server(handler, security, **kw) as smtp:
        report = deliver(store, smtp)
        assert report.temporary == ids and handler.data_commands == 0
        assert "CERTIFICATE_VERIFY_FAILED" in row(store, ids[0]).last_error
        # For tests only: no verification at all.
        report = deliver(store, smtp, NOW + MIN, validate_certs=False)
    assert report.sent == ids


def test_starttls_not_offered_never_falls_back_to_plain_text(store):
    [oid] = queue(store, letter(1))
    handler = Recorder()
    with smtp_server(handler, "starttls") as smtp:      # no tls_context: no STARTTLS offered
        report = deliver(store, dataclasses.replace(smtp, username="xyjgk", password="口令-1"))
    assert report.temporary == [oid] and handler.connections <= 1 and handler.data_commands == 0
    assert "STARTTLS" in row(store, oid).last_error


# ---------------------------------------------------------------- broken servers

def test_server_down_is_temporary(store):
    ids = queue(store, letter(1), letter(2))
    smtp = server_config(free_port())                    # nobody listens there
    report = deliver(store, smtp)
    assert report.temporary == ids and report.sent == []
    for oid in ids:
        m = row(store, oid)
        assert (m.status, m.attempts, m.next_attempt_at) == ("failed_temporary", 1, NOW + MIN)
        assert m.last_error.startswith("connect to 127.0.0.1:") and "Connect call failed" in m.last_error


def test_a_server_that_never_answers_times_out(store):
    [oid] = queue(store, letter(1))
    with socket.socket() as silent:                      # accepts connections (backlog), says nothing
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        t0 = time.monotonic()
        report = deliver(store, server_config(silent.getsockname()[1]), timeout=0.5)
    assert time.monotonic() - t0 < 5
    assert report.temporary == [oid]
    assert "Timed out" in row(store, oid).last_error


def test_connection_dropped_after_data_reconnects_and_retries(db_store):
    st = db_store
    ids = queue(st, letter(1), letter(2), letter(3))
    # The server keeps the first mail but drops the connection before its 250: the client
    # cannot know, so it tries again later; the copy carries the same Message-ID.
    handler = Recorder(script=["keep-and-drop"])
    with smtp_server(handler) as smtp:
        report = deliver(st, smtp)
        assert report.temporary == ids[:1] and report.sent == ids[1:]
        assert handler.connections == 2                  # reconnected within the batch
        m = row(st, ids[0])
        assert m.last_error.startswith("connection lost: SMTPServerDisconnected")
        assert m.next_attempt_at == NOW + MIN
        report = deliver(st, smtp, NOW + MIN)
    assert report.sent == ids[:1]
    first, *_rest, again = handler.received
    assert first.content == again.content and first.message["Message-ID"] == again.message["Message-ID"]
    assert sorted(handler.message_ids()) == sorted(
        [f"<{letter(n).mail_message_id}>" for n in (1, 1, 2, 3)])


def test_connection_dropped_in_the_middle_of_data(store):
    [oid] = queue(store, letter(1))

    def script(conn, f):
        while line := f.readline():
            verb = line[:4].upper()
            if verb == b"EHLO":
                conn.sendall(b"250-fake\r\n250 8BITMIME\r\n")
            elif verb in (b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                conn.sendall(b"250 ok\r\n")
            elif verb == b"DATA":
                conn.sendall(b"354 go ahead\r\n")
                f.read(100)                              # part of the message, then gone
                return
            else:
                conn.sendall(b"502 no\r\n")

    with raw_server(script) as smtp:
        report = deliver(store, smtp, timeout=5)
    assert report.temporary == [oid]
    m = row(store, oid)
    assert m.status == "failed_temporary" and m.last_error.startswith("connection lost")


# ---------------------------------------------------------------- leases and crashes

def test_two_concurrent_senders_deliver_each_mail_once(db_store):
    st = db_store
    ids = queue(st, *(letter(n) for n in range(1, 21)))
    handler = Recorder(delay=0.01)
    with smtp_server(handler) as smtp:
        reports: list = []

        def run(limit):
            reports.append(deliver(st, smtp, limit=limit))

        threads = [threading.Thread(target=run, args=(limit,)) for limit in (7, 50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        # And two in one event loop.
        more = queue(st, *(letter(n) for n in range(21, 31)))

        async def both():
            return await asyncio.gather(deliver_due(st, smtp, NOW, limit=4), deliver_due(st, smtp, NOW, limit=50))

        reports += asyncio.run(both())
    sent = sorted(i for r in reports for i in r.sent)
    assert sent == sorted(ids + more)
    mids = handler.message_ids()
    assert len(mids) == len(set(mids)) == 30
    assert {row(st, i).status for i in ids + more} == {"sent"}


class _Crash(BaseException):
    """A process killed at that instant: nothing after it runs, no handler catches it."""


class CrashingStore:
    """The store, except that mark_sent `crash_on` (1-based) dies like a killed process."""

    def __init__(self, store: Store, crash_on: int = 1, exc: BaseException | None = None):
        self._store, self._n, self._crash_on = store, 0, crash_on
        self._exc = exc

    def __getattr__(self, name):
        return getattr(self._store, name)

    def mark_sent(self, *a, **kw):
        self._n += 1
        if self._n >= self._crash_on:
            raise self._exc or _Crash()
        return self._store.mark_sent(*a, **kw)


def test_a_crash_between_250_and_the_record_sends_that_mail_once_more(db_store):
    st = db_store
    ids = queue(st, letter(1), letter(2), letter(3))
    handler = Recorder()
    with smtp_server(handler) as smtp:
        with pytest.raises(_Crash):
            deliver(CrashingStore(st, crash_on=2), smtp)      # mail 1 recorded, mail 2 sent, then death
        assert [r.message["Message-ID"] for r in handler.received] == [
            f"<{letter(1).mail_message_id}>", f"<{letter(2).mail_message_id}>"]
        assert row(st, ids[0]).status == "sent" and row(st, ids[1]).status == "pending"
        # Another sender (or this one restarted) cannot take them while the lease holds...
        assert deliver(st, smtp, NOW + LEASE - dt.timedelta(seconds=1)).leased == 0
        # ... and takes them when it ends: mail 2 goes again, the same bytes; mail 3 for the first time.
        report = deliver(st, smtp, NOW + LEASE)
    assert report.sent == ids[1:]
    assert handler.message_ids().count(f"<{letter(2).mail_message_id}>") == 2
    assert handler.message_ids().count(f"<{letter(1).mail_message_id}>") == 1
    assert handler.received[1].content == handler.received[2].content
    assert row(st, ids[1]).attempts == 1                      # the lost attempt was never recorded


def test_a_crash_before_the_smtp_exchange_sends_nothing_twice(db_store):
    st = db_store
    ids = queue(st, letter(1), letter(2))
    leased = st.due_outbox(NOW, lease=LEASE)                 # a sender took them, then died
    assert [m.id for m in leased] == ids
    handler = Recorder()
    with smtp_server(handler) as smtp:
        assert deliver(st, smtp, NOW + MIN).leased == 0
        assert deliver(st, smtp, NOW + LEASE).sent == ids
    assert sorted(handler.message_ids()) == sorted(f"<{letter(n).mail_message_id}>" for n in (1, 2))


def test_a_store_that_cannot_record_stops_the_batch(store):
    ids = queue(store, letter(1), letter(2), letter(3))
    handler = Recorder()
    with smtp_server(handler) as smtp:
        report = deliver(CrashingStore(store, exc=RuntimeError("database is locked")), smtp, store_retries=(0.01,))
    # Mail 1 went out but could not be recorded: no further mail is sent (each would be a resend).
    assert len(handler.received) == 1 and report.sent == []
    assert report.deferred == tuple(ids) and "cannot record" in report.stopped
    assert {row(store, i).status for i in ids} == {"pending"}


def test_no_exchange_outlives_the_lease(store):
    ids = queue(store, *(letter(n) for n in range(1, 11)))
    handler = Recorder(delay=0.4)
    lease = dt.timedelta(seconds=2)
    with smtp_server(handler) as smtp:
        report = deliver(store, smtp, lease=lease, timeout=1.0)
        assert 1 <= len(report.sent) < 10
        assert list(report.sent) + list(report.deferred) == ids
        assert "lease" in report.stopped
        for oid in report.deferred:
            assert (row(store, oid).status, row(store, oid).attempts) == ("pending", 0)
        # They come back when the lease ends.
        later = deliver(store, smtp, NOW + lease, lease=LEASE)
    assert later.sent == list(report.deferred)
    assert len(handler.received) == 10


def test_an_envelope_sender_is_required(store):
    queue(store, letter(1))
    with pytest.raises(ValueError, match="envelope sender"):
        deliver(store, dataclasses.replace(server_config(25), sender=None))
    assert row(store, store.outbox()[0].id).status == "pending"     # nothing leased


# ---------------------------------------------------------------- the reply cap's query

def test_auto_replies_since_counts_drafted_replies_to_an_address(db_store):
    st = db_store
    hour = dt.timedelta(hours=1)

    def mail(n, kind, to, at):
        st.queue([OutgoingMail(kind, to, "s", f"<cap-{n}@x>", b"x")], now=at)

    mail(1, "receipt", ("张三 <ZCFG@example.gov.cn>",), NOW - hour)         # counted at the edge
    mail(2, "rejection", (OK_RCPT,), NOW - MIN)
    mail(3, "quarantine_notice", (OK_RCPT, "other@example.gov.cn"), NOW)    # the reply's addressee comes first
    mail(7, "receipt", ("other@example.gov.cn", OK_RCPT), NOW)              # a copy to it is not a reply to it
    mail(4, "reminder", (OK_RCPT,), NOW)                                    # scheduled, not a reply
    mail(5, "receipt", (OK_RCPT,), NOW - hour - MIN)                        # too old
    mail(6, "receipt", ("zcfg@example.gov.cn.cn",), NOW)                    # another address
    [failed] = st.due_outbox(NOW, limit=1)
    st.mark_failed(failed.id, "550", permanent=True)                        # any status counts
    assert st.auto_replies_since("Zcfg@Example.gov.cn", NOW - hour) == 3
    assert st.auto_replies_since(f"张三 <{OK_RCPT}>", NOW - MIN) == 2
    assert st.auto_replies_since("nobody@example.gov.cn", NOW - hour) == 0
    assert st.auto_replies_since(OK_RCPT, NOW - hour, kinds=("reminder",)) == 1
