"""Faults, tested for real: the mailbot CLI as a subprocess against a real Dovecot (IMAP in) and an
aiosmtpd relay (SMTP out) that delivers the replies into the senders' Dovecot mailboxes.

- the process killed (SIGKILL, mailbot/failpoints.py) at each step of handling a message, then
  started again, twice: every message recorded once and moved out of INBOX once, every reply
  delivered once; a reply twice only where the kill fell inside the SMTP exchange (after the
  server's 250, before mark_sent), and then both copies carry the same Message-ID;
- the IMAP server stopped and started while `mailbot run` runs;
- the SMTP server refusing with 451 for a while (replies go out later, once each) and with 550
  (the mail is left failed_permanent and `mailbot health --json` says so).

The clock is never faked. Where recovery waits on time (the sender's 5-minute lease after a
crash, the 1-minute retry after a 451), the test moves the outbox row's next_attempt_at back to
now instead of waiting: exactly what the passing of that time does to the row.
"""
from __future__ import annotations

import collections
import datetime as dt
import email
import email.policy
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.orm import Session

from mailbot.transport.mailbox import DEFAULT_FOLDERS
from mailbot.store import OutboxRow, Store

from conftest import DATA, ROOT

# The harness (tests/mailservers.py): fixtures dovecot, make_smtp_relay, smtp_relay.
pytest_plugins = ["mailservers"]

BOT = "xyjgk@cqscjg.example.cn"                 # mailbox_address in config.example.yaml
CASES = DATA / "cases"
# Three real section messages; their From addresses are registered in config.example.yaml.
MESSAGES = ("mutt_gb18030_rfc2231.eml",        # 政策法规科, accepted
            "mailutils_ods.eml",               # 知识产权科, accepted, no Message-ID header at all
            "sendemail_wrong_column.eml")      # 政策法规科, rejected (template attached)
SENDERS = ("fagui@cqscjg.example.cn", "zhichan@cqscjg.example.cn")
OUTCOME_FOLDERS = sorted(set(DEFAULT_FOLDERS.values()))
_exe = Path(sys.executable).with_name("mailbot")
MAILBOT = [str(_exe)] if _exe.exists() else [str(ROOT / ".venv" / "bin" / "mailbot")]


# ---------------------------------------------------------------- the bot as a subprocess

class Bot:
    """A deployment in tmp_path: its config file, and the CLI run against it as a subprocess."""

    def __init__(self, tmp_path: Path, dovecot, relay=None, *, database: str | None = None, **settings):
        self.dir = tmp_path
        self.storage = tmp_path / "storage"
        self.database = database or f"sqlite:///{self.storage / 'mailbot.sqlite3'}"
        data = yaml.safe_load((ROOT / "config.example.yaml").read_text(encoding="utf-8"))
        data.update(storage=str(self.storage), database=self.database, poll_interval=60, outbox_interval=1)
        if dovecot is not None:
            data["imap"] = {"host": dovecot.host, "port": dovecot.imap_port, "security": "plain",
                            "username": BOT, "password": dovecot.password}
        if relay is not None:
            data["smtp"] = {"host": relay.host, "port": relay.port, "security": "plain"}
        data.update(settings)
        self.config = tmp_path / "config.yaml"
        self.config.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")

    def env(self, failpoint: str | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("MAILBOT_FAILPOINT", "MAILBOT_CONFIG")}
        if failpoint:
            env["MAILBOT_FAILPOINT"] = failpoint
        return env

    def cli(self, *args: str, failpoint: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([*MAILBOT, "--config", str(self.config), *args], cwd=self.dir,
                              env=self.env(failpoint), capture_output=True, text=True, timeout=timeout)

    def poll(self, failpoint: str | None = None) -> subprocess.CompletedProcess:
        return self.cli("poll", "--once", failpoint=failpoint)

    def start(self, *args: str, failpoint: str | None = None) -> Daemon:
        return Daemon([*MAILBOT, "--config", str(self.config), "run", *args], self.dir, self.env(failpoint))

    def store(self) -> Store:
        st = Store(self.database, self.storage)
        st.upgrade()
        return st

    def expire_leases(self) -> int:
        """The passing of time for the outbox: every unsent mail due now (a crashed sender's lease
        ended, a temporary failure's retry time came). Returns how many rows it moved."""
        now = dt.datetime.now(dt.UTC)
        st = self.store()
        try:
            with Session(st.engine) as s, s.begin():
                n = s.execute(sa.update(OutboxRow)
                              .where(OutboxRow.status.in_(("pending", "failed_temporary")),
                                     OutboxRow.next_attempt_at > now)
                              .values(next_attempt_at=now)).rowcount
        finally:
            st.close()
        return n

    def health(self) -> tuple[int, dict]:
        r = self.cli("health", "--json")
        return r.returncode, json.loads(r.stdout)


class Daemon:
    """`mailbot run` in the background; stderr collected line by line."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str]):
        self.lines: list[str] = []
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    def wait_for_log(self, text: str, timeout: float = 20.0) -> None:
        if not eventually(lambda: any(text in line for line in self.lines) or self.proc.poll() is not None, timeout):
            raise AssertionError(f"{text!r} not logged within {timeout} s:\n{self.log[-3000:]}")
        assert self.proc.poll() is None, f"the daemon exited with {self.proc.returncode}:\n{self.log[-3000:]}"

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> tuple[int, float]:
        """Send `sig`; (exit code, seconds it took to exit)."""
        t0 = time.monotonic()
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"the daemon did not exit within {timeout} s of {signal.Signals(sig).name}:\n"
                                 f"{self.log[-3000:]}") from None
        self._reader.join(5)
        return code, time.monotonic() - t0

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def daemons():
    """Daemons a test started; any still running at the end is killed (by its own pid)."""
    started: list[Daemon] = []
    yield started
    for d in started:
        d.kill()


# ---------------------------------------------------------------- mail and checks

def eventually(predicate, timeout: float = 20.0, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


def deliver(dovecot, names=MESSAGES) -> list[str]:
    """Deliver case messages into the bot's INBOX; the sha256 of each as IMAP serves it (what the store archives)."""
    before = {_sha(r) for r in dovecot.messages(BOT)}
    for name in names:
        dovecot.deliver(BOT, (CASES / name).read_bytes())
    shas = [s for s in (_sha(r) for r in dovecot.messages(BOT)) if s not in before]
    assert len(shas) == len(names)
    return shas


def _sha(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def message_id(raw: bytes) -> str:
    mid = email.message_from_bytes(raw, policy=email.policy.default)["Message-ID"]
    return str(mid or "").strip().strip("<>")


def replies_in(dovecot, users=SENDERS) -> collections.Counter:
    """(recipient, Message-ID) of every mail in the senders' INBOXes."""
    return collections.Counter((u, message_id(raw)) for u in users for raw in dovecot.messages(u))


def in_smtp_window(bot: Bot, relay) -> set[str]:
    """Replies the SMTP server took that the outbox does not record as sent: where a kill fell
    between the server's 250 and mark_sent. Only these may go out a second time."""
    st = bot.store()
    try:
        sent = {o.mail_message_id for o in st.outbox(status="sent")}
    finally:
        st.close()
    return {message_id(r.raw) for r in relay.received} - sent


def check_all_once(bot: Bot, dovecot, relay, shas: list[str], *, window: set[str] = frozenset()) -> dict:
    """Every message recorded once, settled (moved out of INBOX into its outcome's folder) once,
    answered once; only a reply in `window` (see in_smtp_window) may be there twice, both copies
    with the same Message-ID. Returns {reply Message-ID: copies}."""
    st = bot.store()
    try:
        stored = st.messages(limit=1000)
        outbox = st.outbox(limit=1000)
        failures = st.failures()
    finally:
        st.close()
    # recorded once
    assert sorted(m.raw_sha256 for m in stored) == sorted(shas), "each message recorded exactly once"
    assert len({m.message_id for m in stored}) == len(stored)
    assert all(m.receipt_no for m in stored)
    assert failures == [], [f.error for f in failures]
    # settled once: INBOX empty, each message in exactly one outcome folder, the right one
    assert dovecot.messages(BOT) == [], "messages left in INBOX"
    where = collections.Counter()
    for folder in OUTCOME_FOLDERS:
        for raw in dovecot.messages(BOT, folder):
            where[(_sha(raw), folder)] += 1
    assert sorted(sha for sha, _ in where.elements()) == sorted(shas), f"moved more or less than once: {where}"
    for m in stored:
        assert (m.raw_sha256, DEFAULT_FOLDERS[m.outcome]) in where, (m.outcome, where)
    # answered once
    by_message = collections.Counter(o.message_ref for o in outbox)
    assert sorted(by_message) == sorted(m.id for m in stored) and set(by_message.values()) == {1}, \
        "one reply per message in the outbox"
    assert {o.status for o in outbox} == {"sent"}, [(o.id, o.status, o.last_error) for o in outbox]
    got = replies_in(dovecot)
    copies = {}
    for o in outbox:
        (to,) = o.recipients
        copies[o.mail_message_id] = got[(to, o.mail_message_id)]
    assert sum(got.values()) == sum(copies.values()), f"a mail no outbox row explains: {got}"
    assert all(n >= 1 for n in copies.values()), f"a reply was lost: {copies}"
    doubled = [mid for mid, n in copies.items() if n > 1]
    assert set(doubled) <= set(window) and all(copies[mid] == 2 for mid in doubled), (copies, window)
    relayed = collections.Counter(message_id(r.raw) for r in relay.received)
    assert relayed == collections.Counter(copies), (relayed, copies)
    return copies


# ---------------------------------------------------------------- SIGKILL at each step

# name[:N] -> where the kill left things: (messages recorded, left in INBOX, mailbox position
# saved up to the Nth message, replies accepted by the SMTP server, replies marked sent)
KILLS = {
    "after-archive": (0, 3, 0, 0, 0),
    "after-parse": (0, 3, 0, 0, 0),
    "before-record": (0, 3, 0, 0, 0),
    "after-record": (1, 3, 0, 0, 0),
    "after-record:2": (2, 2, 1, 0, 0),
    "after-move": (1, 2, 0, 0, 0),
    "after-settle": (1, 2, 1, 0, 0),
    "before-smtp": (3, 0, 3, 0, 0),
    "inside-smtp": (3, 0, 3, 1, 0),            # the server has it, the outbox does not know
    "inside-smtp:3": (3, 0, 3, 3, 2),
    "after-mark-sent": (3, 0, 3, 1, 1),
}
DOUBLE_SEND_WINDOW = "inside-smtp"             # the only point where a reply may go out twice


def all_through(bot: Bot, dovecot, n: int) -> bool:
    """n messages recorded, every reply sent, INBOX empty: a daemon has caught up."""
    st = bot.store()
    try:
        return len(st.messages()) == n and {o.status for o in st.outbox()} == {"sent"} and not dovecot.messages(BOT)
    finally:
        st.close()


def _state(bot: Bot, dovecot, relay) -> tuple[int, int, int, int, int]:
    st = bot.store()
    try:
        recorded = len(st.messages(limit=1000))
        pos = st.mailbox_position(f"imap://{BOT}@{dovecot.host}/INBOX")
        sent = len(st.outbox(status="sent"))
    finally:
        st.close()
    position = pos.last_uid if pos else 0
    return recorded, len(dovecot.messages(BOT)), position, len(relay.received), sent


def _kill_and_restart(bot: Bot, dovecot, relay, point: str) -> None:
    shas = deliver(dovecot)
    first = bot.poll(failpoint=point)
    assert first.returncode == -signal.SIGKILL, (first.returncode, first.stdout, first.stderr)
    assert _state(bot, dovecot, relay) == KILLS[point], "the failpoint is not where it claims to be"
    window = in_smtp_window(bot, relay)
    double = point.startswith(DOUBLE_SEND_WINDOW)
    assert len(window) == (1 if double else 0), window
    if point == "after-archive":
        assert len(list((bot.storage / "raw").rglob("*.eml"))) == 1
    bot.expire_leases()                        # the 5-minute lease of a crashed sender runs out
    second = bot.poll()
    assert second.returncode == 0, second.stderr
    third = bot.poll()
    assert third.returncode == 0, third.stderr
    assert third.stdout.startswith("0 message(s); outbox: 0 sent, 0 deferred, 0 failed"), third.stdout
    copies = check_all_once(bot, dovecot, relay, shas, window=window)
    if double:
        # Deterministic here: the killed run's mail reached the server and went again after the lease.
        assert sorted(copies.values()) == [1, 1, 2], copies


@pytest.mark.parametrize("point", list(KILLS))
def test_sigkill_at_each_step_then_restart(point, tmp_path, dovecot, smtp_relay):
    _kill_and_restart(Bot(tmp_path, dovecot, smtp_relay), dovecot, smtp_relay, point)


@pytest.mark.postgres
@pytest.mark.parametrize("point", ["after-record", "inside-smtp"])
def test_sigkill_on_postgresql(point, tmp_path, dovecot, smtp_relay, postgres_url):
    _kill_and_restart(Bot(tmp_path, dovecot, smtp_relay, database=postgres_url), dovecot, smtp_relay, point)


@pytest.mark.parametrize("point", ["after-record:2", "inside-smtp"])
def test_sigkill_under_the_daemon_then_restart(point, tmp_path, dovecot, smtp_relay, daemons):
    """The same under `mailbot run`, where the watcher and the sender work side by side."""
    bot = Bot(tmp_path, dovecot, smtp_relay, poll_interval=5)
    first = bot.start(failpoint=point)
    daemons.append(first)
    first.wait_for_log("mailbot running")
    shas = deliver(dovecot)
    try:
        assert first.proc.wait(30) == -signal.SIGKILL, first.log[-3000:]
    except subprocess.TimeoutExpired:
        raise AssertionError(f"{point} was never reached:\n{first.log[-3000:]}") from None
    # The sender thread works beside the watcher: wherever the failpoint is, the kill may also
    # fall inside the sender's SMTP exchange; one mail at most (one sender thread). (A moment
    # first for the relay to finish a delivery the dead client had started.)
    time.sleep(0.5)
    window = in_smtp_window(bot, smtp_relay)
    assert len(window) <= 1, window
    bot.expire_leases()

    second = bot.start()
    daemons.append(second)

    assert eventually(lambda: all_through(bot, dovecot, 3), 30), second.log[-3000:]
    code, took = second.stop()
    assert code == 0 and took < 5, (code, took)
    third = bot.poll()
    assert third.returncode == 0 and third.stdout.startswith("0 message(s); outbox: 0 sent"), third.stdout
    copies = check_all_once(bot, dovecot, smtp_relay, shas, window=window)
    if point.startswith(DOUBLE_SEND_WINDOW):
        assert len(window) == 1 and copies[window.pop()] == 2, copies


def test_an_unknown_failpoint_is_refused_loudly(tmp_path, dovecot, smtp_relay):
    # A misspelt name must not make a fault test pass by never firing.
    r = Bot(tmp_path, dovecot, smtp_relay).poll(failpoint="after-recrod")
    assert r.returncode != 0 and "unknown failpoint" in r.stderr


# ---------------------------------------------------------------- servers going away

def test_imap_server_stopped_and_started_while_the_daemon_runs(tmp_path, dovecot, smtp_relay, daemons):
    bot = Bot(tmp_path, dovecot, smtp_relay, poll_interval=5)
    d = bot.start()
    daemons.append(d)
    d.wait_for_log("mailbot running")
    shas = deliver(dovecot, MESSAGES[:1])
    assert eventually(lambda: sum(replies_in(dovecot).values()) == 1, 20), d.log[-3000:]

    dovecot.stop()                             # SIGTERM: the daemon's IDLE gets "* BYE"
    assert eventually(lambda: "reconnecting" in d.log, 10), d.log[-3000:]
    # at least one reconnection refused while the server is down
    assert eventually(lambda: "cannot connect to IMAP" in d.log, 10), d.log[-3000:]
    dovecot.start()
    shas += deliver(dovecot, MESSAGES[1:])
    assert eventually(lambda: sum(replies_in(dovecot).values()) == 3, 30), d.log[-3000:]
    assert d.proc.poll() is None

    code, took = d.stop(signal.SIGTERM)
    assert code == 0 and took < 5, (code, took, d.log[-2000:])
    check_all_once(bot, dovecot, smtp_relay, shas)


def test_smtp_refusing_451_for_a_while_then_accepting(tmp_path, dovecot, smtp_relay, daemons):
    bot = Bot(tmp_path, dovecot, smtp_relay)
    smtp_relay.refuse(451)
    d = bot.start()
    daemons.append(d)
    shas = deliver(dovecot)

    def rows():
        st = bot.store()
        try:
            return st.outbox(limit=100)
        finally:
            st.close()

    assert eventually(lambda: len(r := rows()) == 3 and all(o.status == "failed_temporary" for o in r), 30), \
        d.log[-3000:]
    # Still refusing when the retries come: tried again, still temporary, nothing delivered.
    bot.expire_leases()
    assert eventually(lambda: all(o.attempts >= 2 and o.status == "failed_temporary" for o in rows()), 20)
    assert smtp_relay.received == [] and len(smtp_relay.refused) >= 6
    assert "451" in (rows()[0].last_error or "")

    smtp_relay.accept()
    bot.expire_leases()                        # the next retry time comes
    assert eventually(lambda: all(o.status == "sent" for o in rows()), 20), d.log[-3000:]
    code, took = d.stop(signal.SIGTERM)
    assert code == 0 and took < 5, (code, took)
    check_all_once(bot, dovecot, smtp_relay, shas)
    code, health = bot.health()
    assert code == 0 and health["outbox_pending"] == 0 and health["outbox_failed_permanent"] == 0, health


def test_smtp_refusing_550_leaves_the_reply_for_a_person(tmp_path, dovecot, smtp_relay):
    bot = Bot(tmp_path, dovecot, smtp_relay)
    deliver(dovecot)
    smtp_relay.refuse(550, times=1)            # the first reply only; the next two are taken
    r = bot.poll()
    assert r.returncode == 0, r.stderr
    assert "outbox: 2 sent, 0 deferred, 1 failed" in r.stdout, r.stdout
    st = bot.store()
    try:
        failed = st.outbox(status="failed_permanent")
        sent = st.outbox(status="sent")
    finally:
        st.close()
    assert len(failed) == 1 and len(sent) == 2 and "550" in failed[0].last_error
    assert failed[0].next_attempt_at is None
    got = replies_in(dovecot)
    assert sum(got.values()) == 2 and all((o.recipients[0], o.mail_message_id) in got for o in sent)

    bot.expire_leases()
    again = bot.poll()                         # never retried
    assert again.returncode == 0 and "outbox: 0 sent, 0 deferred, 0 failed" in again.stdout
    assert sum(replies_in(dovecot).values()) == 2
    code, health = bot.health()
    assert code == 0, health                   # the watcher is fine; the failed mail waits for a person
    assert health["outbox_failed_permanent"] == 1 and health["outbox_pending"] == 0, health
