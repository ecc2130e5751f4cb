"""The daemon as it is run: `mailbot run`, `mailbot poll --once`, `mailbot health` as subprocesses
against a real Dovecot and an aiosmtpd relay delivering into it (see tests/test_faults.py for the
helpers and the crash tests).

Covered: refusing to start on invalid rules or config (exit 2, the reason printed); SIGTERM and
SIGINT ending a run within seconds with no half-written record; --json-logs; health failing when
the watcher is silent longer than max_silence and passing after a good poll; poll --once --json;
a reply within seconds under IDLE while the regular polls go on.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import signal
import time

import pytest

from conftest import ROOT
from test_faults import (BOT, MESSAGES, SENDERS, Bot, check_all_once, deliver, eventually, replies_in)

pytest_plugins = ["mailservers"]


@pytest.fixture
def daemons():
    started = []
    yield started
    for d in started:
        d.kill()


def _health_file(bot: Bot) -> dict:
    try:
        return json.loads((bot.storage / "health.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


# ---------------------------------------------------------------- refusing to start

def test_run_refuses_invalid_rules(tmp_path):
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    tasks = rules / "tasks.yaml"
    tasks.write_text(tasks.read_text(encoding="utf-8").replace("day: 30", "day: 32", 1), encoding="utf-8")
    # The IMAP port is closed: the refusal must come before any connection is tried.
    bot = Bot(tmp_path, None, None, rules=str(rules), imap={"host": "127.0.0.1", "port": 9, "security": "plain",
                                                            "username": BOT, "password": "x"})
    for command in (("run",), ("poll", "--once")):
        t0 = time.monotonic()
        r = bot.cli(*command, timeout=30)
        assert r.returncode == 2, (command, r.returncode, r.stderr)
        assert "invalid rules" in r.stderr and "tasks.yaml" in r.stderr and "32" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
        assert time.monotonic() - t0 < 10


@pytest.mark.parametrize("change, reason", [
    ({"poll_interval": 0}, "poll_interval: must be greater than 0"),
    ({"imap": {"host": "127.0.0.1", "security": "tls", "username": BOT, "password": "x"}}, "imap.security"),
    ({"colour": "blue"}, "colour: unknown key"),
    ({"sections": {"政策法规课": ["fagui@cqscjg.example.cn"], "信用监管科": ["x@cqscjg.example.cn"]}}, "政策法规课"),
    ({"imap": None}, "neither imap nor maildir"),
])
def test_run_refuses_an_invalid_config(tmp_path, change, reason):
    settings = {"imap": {"host": "127.0.0.1", "port": 9, "security": "plain", "username": BOT, "password": "x"},
                **change}
    bot = Bot(tmp_path, None, None, **settings)
    r = bot.cli("run", timeout=30)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert reason in r.stderr and "Traceback" not in r.stderr, r.stderr
    missing = bot.cli("--config", str(tmp_path / "nowhere.yaml"), "run", timeout=30)
    assert missing.returncode == 2 and "not found" in missing.stderr


# ---------------------------------------------------------------- stopping

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_ends_a_run_gracefully_with_nothing_half_written(sig, tmp_path, dovecot, smtp_relay, daemons):
    bot = Bot(tmp_path, dovecot, smtp_relay)
    d = bot.start()
    daemons.append(d)
    d.wait_for_log("mailbot running")
    shas = deliver(dovecot)
    d.wait_for_log("message ")                 # the first message is through: stop in the middle of the rest
    code, took = d.stop(sig)
    assert code == 0, (code, d.log[-3000:])
    assert took < 5, took
    assert "mailbot stopped" in d.log and "Traceback" not in d.log, d.log[-3000:]

    # What the stop left: every recorded message complete (receipt, its reply queued) and settled;
    # every message still in INBOX unrecorded; no mail stranded in a lease.
    st = bot.store()
    try:
        stored = st.messages(limit=100)
        outbox = st.outbox(limit=100)
    finally:
        st.close()
    assert 1 <= len(stored) <= 3
    print(f"stopped after {len(stored)} of 3 message(s), {took:.2f} s after the signal")
    assert sorted(o.message_ref for o in outbox) == sorted(m.id for m in stored)
    assert all(m.receipt_no for m in stored)
    now = dt.datetime.now(dt.UTC)
    assert all(o.status == "sent" or o.next_attempt_at <= now for o in outbox), \
        [(o.status, o.next_attempt_at) for o in outbox]
    left = {hashlib.sha256(r).hexdigest() for r in dovecot.messages(BOT)}
    assert left.isdisjoint(m.raw_sha256 for m in stored)
    assert len(left) + len(stored) == 3

    r = bot.poll()                             # the next start finishes the rest, once
    assert r.returncode == 0, r.stderr
    check_all_once(bot, dovecot, smtp_relay, shas)


def test_sigterm_is_prompt_even_when_the_imap_server_hangs(tmp_path, dovecot, smtp_relay, daemons):
    bot = Bot(tmp_path, dovecot, smtp_relay)
    d = bot.start()
    daemons.append(d)
    assert eventually(lambda: _health_file(bot).get("last_poll_ok"), 20), d.log[-3000:]
    time.sleep(0.5)                            # in IDLE now
    dovecot.freeze()                           # connections stay open, nothing answers
    try:
        code, took = d.stop(signal.SIGTERM, timeout=10)
    finally:
        dovecot.thaw()
    assert code == 0 and took < 10


def test_json_logs_are_json_lines(tmp_path, dovecot, smtp_relay, daemons):
    bot = Bot(tmp_path, dovecot, smtp_relay)
    d = bot.start("--json-logs")
    daemons.append(d)
    d.wait_for_log("mailbot running")
    deliver(dovecot, MESSAGES[:1])
    assert eventually(lambda: sum(replies_in(dovecot).values()) == 1, 20), d.log[-3000:]
    code, _ = d.stop()
    assert code == 0
    records = [json.loads(line) for line in d.lines if line.strip()]   # every line is one JSON object
    assert records and all({"time", "level", "logger", "message"} <= r.keys() for r in records)
    [msg] = [r for r in records if r.get("outcome")]
    assert msg["outcome"] == "accepted" and msg["section"] == "政策法规科" and msg["source"].startswith("imap:INBOX:")
    assert msg["receipt_no"] and msg["reply"]["to"] == ["fagui@cqscjg.example.cn"]
    assert any(r["logger"] == "mailbot.transport.smtp" and "sent" in r["message"] for r in records)
    assert records[-1]["message"] == "mailbot stopped"


# ---------------------------------------------------------------- health

def test_health_fails_when_the_watcher_is_silent_and_passes_after_a_good_poll(tmp_path, dovecot, smtp_relay):
    bot = Bot(tmp_path, dovecot, smtp_relay, max_silence=600)
    code, h = bot.health()                     # never polled
    assert code == 1 and h["healthy"] is False and h["last_poll_ok"] is None

    bot.storage.mkdir(parents=True, exist_ok=True)
    old = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    (bot.storage / "health.json").write_text(json.dumps({"pid": 1, "last_poll_ok": old.isoformat()}), encoding="utf-8")
    code, h = bot.health()
    assert code == 1 and h["healthy"] is False and 7100 < h["seconds_since_last_poll"] < 7300, h
    text = bot.cli("health")
    assert text.returncode == 1 and "healthy" in text.stdout

    r = bot.poll()
    assert r.returncode == 0, r.stderr
    code, h = bot.health()
    assert code == 0 and h["healthy"] is True and h["seconds_since_last_poll"] <= 5 and h["last_error"] is None, h


def test_health_follows_a_running_daemon_that_loses_its_server(tmp_path, dovecot, smtp_relay, daemons):
    """poll_interval 1 s under IDLE: the heartbeat goes on; IMAP down longer than max_silence: unhealthy."""
    bot = Bot(tmp_path, dovecot, smtp_relay, poll_interval=1, max_silence=2)
    d = bot.start()
    daemons.append(d)
    assert eventually(lambda: _health_file(bot).get("last_poll_ok"), 20), d.log[-3000:]
    beats = set()
    t0 = time.monotonic()
    while time.monotonic() - t0 < 3.5:        # the regular poll: a heartbeat about every second
        beats.add(_health_file(bot).get("last_poll_ok"))
        time.sleep(0.1)
    assert len(beats) >= 3, beats
    assert bot.health()[0] == 0

    dovecot.stop()
    assert eventually(lambda: bot.health()[0] == 1, 15), d.log[-3000:]
    code, h = bot.health()
    assert h["last_error"] and "MailboxError" in h["last_error"], h
    dovecot.start()
    assert eventually(lambda: bot.health()[0] == 0, 30), d.log[-3000:]
    assert d.proc.poll() is None
    code, took = d.stop()
    assert code == 0 and took < 5


# ---------------------------------------------------------------- one pass, and IDLE

def test_poll_once_json_prints_one_object_per_message_and_the_summary_on_stderr(tmp_path, dovecot, smtp_relay):
    bot = Bot(tmp_path, dovecot, smtp_relay)
    deliver(dovecot)
    r = bot.cli("poll", "--once", "--json")
    assert r.returncode == 0, r.stderr
    objs = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(objs) == 3
    assert sorted(o["outcome"] for o in objs) == ["accepted", "accepted", "rejected"]
    assert all(o["file"].startswith("imap:INBOX:") and o["receipt_no"] and o["reply"] for o in objs)
    assert {o["section"] for o in objs} == {"政策法规科", "知识产权科"}
    assert r.stderr.strip().splitlines()[-1] == \
        "3 message(s): 2 accepted, 1 rejected; outbox: 3 sent, 0 deferred, 0 failed"
    again = bot.cli("poll", "--once", "--json")
    assert again.returncode == 0 and again.stdout == ""


def test_poll_once_fails_with_exit_1_when_imap_is_down(tmp_path, dovecot, smtp_relay):
    bot = Bot(tmp_path, dovecot, smtp_relay)
    dovecot.stop()
    r = bot.poll()
    assert r.returncode == 1 and "poll failed" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert "cannot connect" in _health_file(bot).get("last_error", "")


def test_reply_within_seconds_under_idle(tmp_path, dovecot, smtp_relay, daemons):
    # poll_interval 60 s: a reply in seconds can only come from IDLE.
    bot = Bot(tmp_path, dovecot, smtp_relay, poll_interval=60, outbox_interval=60)
    d = bot.start()
    daemons.append(d)
    assert eventually(lambda: _health_file(bot).get("last_poll_ok"), 20), d.log[-3000:]
    time.sleep(0.5)                            # in IDLE now
    t0 = time.monotonic()
    deliver(dovecot, MESSAGES[:1])
    assert eventually(lambda: sum(replies_in(dovecot, SENDERS[:1]).values()) == 1, 15, 0.05), d.log[-3000:]
    latency = time.monotonic() - t0
    assert latency < 10, latency
    code, took = d.stop()
    assert code == 0 and took < 5
    print(f"reply {latency:.2f} s after delivery")
