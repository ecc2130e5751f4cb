"""A standby (app/standby.py): one active `mailbot run` per database, the others waiting.

- the lock logic: the storage lock file on SQLite (a second holder refused, naming the first);
  the advisory lock on PostgreSQL (one holder, the list of daemons, release on close, a lost
  connection seen by `still_held`);
- two `mailbot run` on one PostgreSQL database and one Dovecot mailbox: the active one is killed
  with SIGKILL in the middle of the messages; the standby takes over (the time measured and
  printed, under 60 s), every message is recorded once and every reply sent once but for the
  inside-SMTP window; `health` says which is active;
- the active one losing its lock connection (pg_terminate_backend) stops and becomes a standby;
  the other takes over;
- on SQLite a second `mailbot run` on the same storage exits 2, saying which daemon holds it.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time

import pytest
import sqlalchemy as sa

from mailbot.app import standby
from test_faults import BOT, Bot, all_through, check_all_once, daemons, deliver, eventually, in_smtp_window  # noqa: F401 - daemons: a fixture

pytest_plugins = ["mailservers"]


# ---------------------------------------------------------------- the lock logic

def test_sqlite_lock_file_refuses_a_second_holder_and_names_the_first(tmp_path):
    first, second = standby.FileRole(tmp_path), standby.FileRole(tmp_path)
    assert first.wait_until_active(threading.Event(), 5)
    assert first.still_held() and first.fields()["role"] == "active"
    with pytest.raises(standby.Refused) as e:
        second.wait_until_active(threading.Event(), 5)
    message = str(e.value)
    assert f"pid {os.getpid()} on {socket.gethostname()}" in message and "PostgreSQL" in message
    assert oct((tmp_path / standby.LOCK_FILE).stat().st_mode & 0o777) == "0o600"
    report = standby.report("sqlite:///x", tmp_path, None, None)
    assert report["role"] == "active" and report["active"]["pid"] == os.getpid() and report["standby"] == []
    first.close()
    assert second.try_acquire()                # released on close (or on death)
    second.close()


def test_a_dead_holder_in_the_lock_file_is_not_reported(tmp_path):
    (tmp_path / standby.LOCK_FILE).write_text(      # a pid above pid_max: no such process
        f'{{"pid": {os.getpid() + 10_000_000}, "host": "{socket.gethostname()}", "since": "2026-11-20T10:00:00+08:00"}}')
    assert standby.read_lock_file(tmp_path / standby.LOCK_FILE) is None
    assert standby.report("sqlite:///x", tmp_path, None, None) == {"role": None, "active": None, "standby": []}


def test_advisory_key_halves_as_pg_locks_shows_them():
    assert standby._halves(-1) == {"hi": 0xFFFF_FFFF, "lo": 0xFFFF_FFFF}
    assert standby._halves(0x0000_0001_0000_0002) == {"hi": 1, "lo": 2}


def test_postgres_one_holder_release_and_a_lost_connection(postgres_url):
    a, b = standby.PostgresRole(postgres_url), standby.PostgresRole(postgres_url)
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    try:
        assert a.try_acquire() and a.still_held()
        assert not b.try_acquire() and not b.still_held()
        assert b.try_acquire() is False        # asking again changes nothing
        with admin.connect() as c:
            found = standby.daemons(c)
        assert [d.active for d in found] == [True, False] and {d.pid for d in found} == {os.getpid()}
        assert b.holder() == found[0]
        report = standby.report(postgres_url, None, admin, None)
        assert report["role"] == "active" and report["active"]["host"] == socket.gethostname()
        assert len(report["standby"]) == 1

        a.close()                              # the process ending: the lock goes with the connection
        assert eventually(b.try_acquire, 5) and b.still_held()   # (once the server's backend has ended)

        # The active one's connection killed from outside: it notices, and holds nothing any more.
        with admin.connect() as c:
            c.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
                              "AND granted AND objsubid = 1 AND classid::bigint = :hi AND objid::bigint = :lo"),
                      standby._halves(b.key))
        assert b.still_held() is False
        a2 = standby.PostgresRole(postgres_url)
        stop = threading.Event()
        assert a2.wait_until_active(stop, 0.2)  # the lock is free again
        a2.close()
        stop.set()
        assert b.wait_until_active(stop, 0.2) is False   # stop ends the waiting
    finally:
        a.close()
        b.close()
        admin.dispose()


# ---------------------------------------------------------------- two daemons

def _pair(bot: Bot, daemons) -> tuple:
    active = bot.start()
    daemons.append(active)
    active.wait_for_log("mailbot running")
    waiting = bot.start()
    daemons.append(waiting)
    waiting.wait_for_log("is active; trying again")
    return active, waiting


def _took_over(d, since: float, timeout: float = 60) -> float:
    assert eventually(lambda: "mailbot running" in d.log, timeout, 0.05), d.log[-3000:]
    return time.monotonic() - since


def test_the_standby_takes_over_when_the_active_daemon_is_killed(tmp_path, dovecot, smtp_relay, postgres_url,
                                                                 daemons):
    bot = Bot(tmp_path, dovecot, smtp_relay, database=postgres_url, poll_interval=5)
    # The first daemon dies by SIGKILL after recording the second message, before moving it.
    first = bot.start(failpoint="after-record:2")
    daemons.append(first)
    first.wait_for_log("mailbot running")
    second = bot.start()
    daemons.append(second)
    second.wait_for_log("is active; trying again")
    assert "mailbot running" not in second.log
    code, h = bot.health()
    assert h["role"] == "active" and h["active"]["pid"] == first.proc.pid, h
    assert [s["pid"] for s in h["standby"]] == [second.proc.pid], h

    shas = deliver(dovecot)
    try:
        assert first.proc.wait(30) == -signal.SIGKILL, first.log[-3000:]
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the failpoint was never reached:\n{first.log[-3000:]}") from None
    killed = time.monotonic()
    took = _took_over(second, killed)
    print(f"take-over {took:.2f} s after SIGKILL (standby_retry 5 s)")
    assert took < 60

    time.sleep(0.5)                            # the relay finishing a delivery the dead client had started
    window = in_smtp_window(bot, smtp_relay)
    assert len(window) <= 1, window
    bot.expire_leases()                        # the dead sender's 5-minute lease runs out

    assert eventually(lambda: all_through(bot, dovecot, 3), 30), second.log[-3000:]
    code, h = bot.health()
    assert code == 0 and h["role"] == "active" and h["active"]["pid"] == second.proc.pid and h["standby"] == [], h
    health_file = bot.storage / "health.json"
    assert f'"pid": {second.proc.pid}' in health_file.read_text() and '"role": "active"' in health_file.read_text()
    code, _ = second.stop()
    assert code == 0
    check_all_once(bot, dovecot, smtp_relay, shas, window=window)


def test_an_active_daemon_that_loses_its_lock_connection_stops_and_waits(tmp_path, dovecot, smtp_relay,
                                                                         postgres_url, daemons):
    bot = Bot(tmp_path, dovecot, smtp_relay, database=postgres_url, poll_interval=5, standby_retry=1)
    first, second = _pair(bot, daemons)
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            n = c.execute(sa.text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                  "WHERE application_name LIKE :name"), {"name": f"mailbot-daemon {first.proc.pid} %"})
            assert n.scalar() == 1
    finally:
        admin.dispose()
    t0 = time.monotonic()
    assert eventually(lambda: "no longer the active daemon" in first.log, 10), first.log[-3000:]
    took = _took_over(second, t0)
    # and it waits again (after twice standby_retry, leaving the others the first go), still running
    assert eventually(lambda: "is active; trying again" in first.log, 10), first.log[-3000:]
    assert first.log.count("mailbot running") == 1
    print(f"take-over {took:.2f} s after the active daemon's lock connection was cut")
    code, h = bot.health()
    assert h["active"]["pid"] == second.proc.pid and [s["pid"] for s in h["standby"]] == [first.proc.pid], h
    shas = deliver(dovecot)
    assert eventually(lambda: not dovecot.messages(BOT) and smtp_relay.received and len(smtp_relay.received) == 3,
                      30), second.log[-3000:]
    for d in (second, first):
        code, took = d.stop()
        assert code == 0 and took < 5, (code, took)
    check_all_once(bot, dovecot, smtp_relay, shas)


@pytest.mark.slow
def test_sqlite_a_second_daemon_on_the_same_storage_is_refused(tmp_path, daemons):
    # The IMAP port is closed: the first daemon keeps trying to connect, and holds the storage all the while.
    bot = Bot(tmp_path, None, None, imap={"host": "127.0.0.1", "port": 9, "security": "plain",
                                          "username": BOT, "password": "x"})
    first = bot.start()
    daemons.append(first)
    first.wait_for_log("mailbot running")
    r = bot.cli("run", timeout=60)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert f"pid {first.proc.pid} on {socket.gethostname()}" in r.stderr and "daemon.lock" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    code, h = bot.health()
    assert h["role"] == "active" and h["active"]["pid"] == first.proc.pid, h
    code, _ = first.stop()
    assert code == 0
    again = bot.start()                        # the storage is free once the first one is gone
    daemons.append(again)
    again.wait_for_log("mailbot running")
    assert again.stop()[0] == 0
