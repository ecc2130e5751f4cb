"""Deciding ahead (mailbot/app/ahead.py): a backlog's messages parsed and decided in worker processes
while the one before them is recorded.

Covered: the verdicts decided ahead are the ones decided here, in the mailbox's order; a few
messages start no worker; a calendar loaded meanwhile makes the verdicts decided on the old one
unused; a worker that dies leaves its messages to be decided here, and the rest go on; process()
takes a verdict decided ahead only where the store knows none of the message's files, and only
for the bytes and the time it was decided for; `ingest` of a backlog gives what it gave without
workers.
"""
from __future__ import annotations

import dataclasses
import hashlib
import datetime as dt
import json
import os
import re
import time

import pytest

from mailbot import pipeline
from mailbot.app import cli, wiring
from mailbot.app.ahead import Ahead, _prepare
from mailbot.app.config import load_config
from mailbot.intake import parse

from conftest import CASES, ROOT

pytest_plugins = ["mailservers"]

RECEIVED = dt.datetime(2026, 11, 20, 10, tzinfo=dt.timezone(dt.timedelta(hours=8)))


@dataclasses.dataclass(frozen=True)
class Mail:
    name: str
    raw: bytes
    received_at: dt.datetime = RECEIVED


def write_config(tmp_path, workers: int | None = None):
    text = (ROOT / "config.example.yaml").read_text(encoding="utf-8")
    text = text.replace("storage: storage", f"storage: {tmp_path / 'storage'}")
    text = text.replace("# rules: rules", f"rules: {ROOT / 'rules'}")
    if workers is not None:
        text += f"\nworkers: {workers}\n"
    p = tmp_path / "config.yaml"
    p.write_text(text, encoding="utf-8")
    return p


@pytest.fixture
def deployment(tmp_path):
    return wiring.build(load_config(write_config(tmp_path)))


def mails() -> list[Mail]:
    return [Mail(c.name, c.read_bytes()) for c in CASES]


def here(raw: bytes, intake: pipeline.Intake) -> pipeline.Verdict:
    return pipeline.decide(parse.parse_message(raw, limits=intake.rules.limits), intake, RECEIVED)


def test_a_backlog_is_decided_ahead_in_order_and_as_it_is_decided_here(deployment):
    backlog = mails()
    with Ahead(deployment.intake, lambda m: m.received_at, workers=1, window=4) as ahead:
        pairs = list(ahead.pairs(backlog))
    assert [m.name for m, _ in pairs] == [m.name for m in backlog]
    assert ahead.prepared == len(backlog) >= 20
    for m, prepared in pairs:
        assert prepared is not None and prepared.received_at == RECEIVED
        assert prepared.verdict == here(m.raw, deployment.intake), m.name
        assert prepared.incoming == parse.parse_message(m.raw, limits=deployment.intake.rules.limits)


def test_a_few_messages_start_no_worker(deployment):
    few = mails()[:3]
    with Ahead(deployment.intake, lambda m: m.received_at, workers=1, window=4) as ahead:
        pairs = list(ahead.pairs(few))
        assert ahead._pool is None
    assert [p for _, p in pairs] == [None] * 3 and ahead.prepared == 0


def test_workers_zero_decides_everything_here(deployment):
    with Ahead(deployment.intake, lambda m: m.received_at, workers=0, window=2) as ahead:
        pairs = list(ahead.pairs(mails()))
        assert ahead._pool is None
    assert all(p is None for _, p in pairs)


def test_a_calendar_loaded_meanwhile_leaves_nothing_decided_on_the_old_one(deployment):
    intake, backlog = deployment.intake, mails()
    fresh_after = stale = 0
    with Ahead(intake, lambda m: m.received_at, workers=1, window=4) as ahead:
        for i, (m, prepared) in enumerate(ahead.pairs(backlog)):
            if i == 2:      # a 节假日 command, say, recorded between two messages
                intake.calendar.load(2026, [dt.date(2026, 11, 2)], [])
            if prepared is None:
                continue
            if prepared.holds_for(hashlib.sha256(m.raw).hexdigest(), RECEIVED, intake):
                assert prepared.verdict == here(m.raw, intake), m.name
                fresh_after += i > 2
            else:
                assert i >= 2, "a verdict was refused before anything changed"
                stale += 1
    assert stale >= 1, "the verdicts decided on the old calendar were not told apart"
    assert fresh_after >= 1, "the workers did not come back with the new calendar"


def _dies_on_the_third(raw: bytes, received_at: dt.datetime):
    if raw == CASES[2].read_bytes():
        os._exit(3)                   # as a worker killed by the kernel would
    return _prepare(raw, received_at)


def test_a_worker_that_dies_leaves_its_messages_to_be_decided_here(deployment):
    backlog = mails()
    with Ahead(deployment.intake, lambda m: m.received_at, workers=1, window=4, task=_dies_on_the_third) as ahead:
        pairs = list(ahead.pairs(backlog))
    assert [m.name for m, _ in pairs] == [m.name for m in backlog]
    assert pairs[2][1] is None
    assert 0 < ahead.prepared < len(backlog)
    for m, prepared in pairs:
        if prepared is not None:
            assert prepared.verdict == here(m.raw, deployment.intake)


def test_process_uses_a_verdict_decided_ahead_only_where_it_still_holds(tmp_path, deployment, monkeypatch):
    store = deployment.open_store()
    intake = deployment.intake
    calls = []
    real = pipeline.decide
    monkeypatch.setattr(pipeline, "decide", lambda *a, **k: calls.append(1) or real(*a, **k))

    raw, other = (CASES[0].with_name(n).read_bytes() for n in ("mutt_gb18030_rfc2231.eml", "sendemail_wrong_column.eml"))
    again = re.sub(rb"(?im)^(Message-ID:\s*<)", rb"\1again.", raw, count=1)
    later = re.sub(rb"(?im)^(Message-ID:\s*<)", rb"\1later.", other, count=1)
    assert again != raw and later != other
    prepared = {m: pipeline.prepare(m, intake, RECEIVED) for m in (raw, again, later)}
    calls.clear()

    def run(raw: bytes, prepared, received_at=RECEIVED):
        return pipeline.process(raw, intake=intake, store=store, source="test", received_at=received_at,
                                now=received_at, template_for=deployment.template_for, prepared=prepared)
    first = run(raw, prepared[raw])
    assert calls == [] and first.outcome == prepared[raw].verdict.outcome.value
    # the same files again under another Message-ID: the store knows them, so it is decided again
    run(again, prepared[again])
    assert len(calls) == 1
    # prepared for other bytes, or for another time: not used
    run(other, prepared[raw])
    assert len(calls) == 2
    run(later, prepared[later], RECEIVED + dt.timedelta(days=1))
    assert len(calls) == 3
    store.close()


def test_ingest_of_a_backlog_gives_what_it_gives_without_workers(tmp_path, capsys):
    results = []
    for workers in (0, 1):
        folder = tmp_path / f"w{workers}"
        folder.mkdir()
        config = write_config(folder, workers)
        capsys.readouterr()
        code = cli.main(["--config", str(config), "ingest", "--json", "--received", RECEIVED.isoformat(),
                         *map(str, CASES)])
        out = capsys.readouterr().out
        assert code == 0, out
        lines = [json.loads(x) for x in out.splitlines()]
        for x in lines:
            if x.get("reply"):
                x["reply"].pop("message_id")      # new each time; where it goes and what it says are not
            x.pop("file", None)
        results.append(lines)
    assert len(results[0]) == len(CASES) and results[0] == results[1]


# ---------------------------------------------------------------- through Dovecot, as `poll --once`

def _copies(n: int) -> list[bytes]:
    """n distinct copies of each of the three section messages of test_faults (a new Message-ID,
    or for the one without, a header making its bytes, and so its synthetic id, new)."""
    from test_faults import CASES as FAULT_CASES, MESSAGES
    out = []
    for i in range(n):
        for name in MESSAGES:
            raw = (FAULT_CASES / name).read_bytes()
            copy = re.sub(rb"(?im)^(Message-ID:\s*<)", rb"\g<1>copy%d." % i, raw, count=1)
            out.append(copy if copy != raw else b"X-Copy: %d\r\n" % i + raw)
    return out


def _forkserver_children() -> set[int]:
    pids = set()
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    if b"multiprocessing.forkserver" in f.read():
                        pids.add(int(d))
            except OSError:
                pass
    return pids


def _deliver(dovecot, raws: list[bytes]) -> list[str]:
    from test_faults import BOT, _sha
    before = {_sha(r) for r in dovecot.messages(BOT)}
    for raw in raws:
        dovecot.deliver(BOT, raw)
    return [s for s in (_sha(r) for r in dovecot.messages(BOT)) if s not in before]


def test_poll_once_of_a_backlog_decides_ahead_and_answers_each_once(tmp_path, dovecot, smtp_relay):
    from test_faults import Bot, check_all_once
    bot = Bot(tmp_path, dovecot, smtp_relay, workers=1)
    shas = _deliver(dovecot, _copies(4))
    assert len(shas) == 12
    r = bot.cli("poll", "--once", "--json")
    assert r.returncode == 0, r.stderr
    summary = r.stderr.strip().splitlines()[-1]
    assert summary.startswith("12 message(s): 8 accepted, 4 rejected; ") and " decided ahead by worker processes; " in summary
    ahead = int(re.search(r"; (\d+) decided ahead", summary)[1])
    # the first copy of each file is recorded with the verdict decided ahead; a later copy, whose
    # files the store knows by then, is decided again here (prior: the same files sent before)
    assert ahead == 3, summary
    check_all_once(bot, dovecot, smtp_relay, shas)


# Killed inside a group commit (mailbox.run_once records a backlog decided ahead in one transaction,
# then settles it): what the store and the mailbox hold then, (recorded, in INBOX, position saved).
GROUP_KILLS = {
    "before-record:8": (0, 12, False),        # the 8th message of the group: nothing of it committed
    "after-group-record": (12, 12, False),    # committed, nothing moved yet
    "after-move": (12, 0, False),             # moved, the position not yet saved
    "after-group-settle": (12, 0, True),
}


@pytest.mark.parametrize("point", list(GROUP_KILLS))
def test_sigkill_in_a_group_commit_then_restart(point, tmp_path, dovecot, smtp_relay):
    """Killed at each step of a group commit, with workers deciding the messages behind it: no
    worker is left behind, and the next poll takes the rest, each message recorded, moved and
    answered once."""
    from test_faults import Bot
    _kill_in_a_group(Bot(tmp_path, dovecot, smtp_relay, workers=1), dovecot, smtp_relay, point)


@pytest.mark.postgres
@pytest.mark.parametrize("point", ["before-record:8", "after-group-record"])
def test_sigkill_in_a_group_commit_on_postgresql(point, tmp_path, dovecot, smtp_relay, postgres_url):
    from test_faults import Bot
    _kill_in_a_group(Bot(tmp_path, dovecot, smtp_relay, workers=1, database=postgres_url), dovecot, smtp_relay, point)


def _kill_in_a_group(bot, dovecot, smtp_relay, point: str) -> None:
    from test_faults import _state, check_all_once
    before = _forkserver_children()
    shas = _deliver(dovecot, _copies(4))
    first = bot.poll(failpoint=point)
    assert first.returncode == -9, (first.returncode, first.stderr)
    recorded, waiting, position, _relayed, sent = _state(bot, dovecot, smtp_relay)
    assert (recorded, waiting, position > 0) == GROUP_KILLS[point], _state(bot, dovecot, smtp_relay)
    assert sent == 0
    deadline = dt.datetime.now() + dt.timedelta(seconds=10)
    while _forkserver_children() - before and dt.datetime.now() < deadline:
        time.sleep(0.1)
    assert not _forkserver_children() - before, "a worker outlived the killed poll"
    bot.expire_leases()
    assert bot.poll().returncode == 0
    third = bot.poll()
    assert third.returncode == 0 and third.stdout.startswith("0 message(s); outbox: 0 sent"), third.stdout
    check_all_once(bot, dovecot, smtp_relay, shas)


def test_the_daemon_drains_a_backlog_deciding_ahead_and_answers_each_once(tmp_path, dovecot, smtp_relay):
    """`mailbot run` started on a month-end backlog: the watcher's first pass decides it ahead."""
    from test_faults import Bot, all_through, check_all_once, eventually
    bot = Bot(tmp_path, dovecot, smtp_relay, workers=1, poll_interval=5)
    shas = _deliver(dovecot, _copies(4))
    daemon = bot.start()
    try:
        assert eventually(lambda: all_through(bot, dovecot, 12), 60), daemon.log[-3000:]
    finally:
        code, _took = daemon.stop()
    assert code == 0
    assert "deciding ahead on 1 worker process(es)" in daemon.log
    check_all_once(bot, dovecot, smtp_relay, shas)


def test_workers_that_cannot_be_started_leave_everything_to_be_decided_here(deployment, monkeypatch):
    """submit() starts the processes: a fork refused (no processes left, no memory) must not stop
    the intake, only the help."""
    import concurrent.futures

    def refused(self, *a, **k):
        raise OSError(11, "Resource temporarily unavailable")
    monkeypatch.setattr(concurrent.futures.ProcessPoolExecutor, "submit", refused)
    backlog = mails()
    with Ahead(deployment.intake, lambda m: m.received_at, workers=1, window=4) as ahead:
        pairs = list(ahead.pairs(backlog))
    assert [m.name for m, _ in pairs] == [m.name for m in backlog]
    assert all(p is None for _, p in pairs) and ahead.workers == 0 and ahead._pool is None


def test_read_ahead_stops_at_its_byte_budget(deployment, monkeypatch):
    import mailbot.app.ahead as ahead_module
    monkeypatch.setattr(ahead_module, "HELD", 1)          # one message's bytes already exceed it
    backlog, pulled = mails(), []

    def source():
        for m in backlog:
            pulled.append(m.name)
            yield m
    with Ahead(deployment.intake, lambda m: m.received_at, workers=1, window=8) as ahead:
        for i, (m, _prepared) in enumerate(ahead.pairs(source())):
            assert len(pulled) <= i + 1, "read ahead past the byte budget"
    assert len(pulled) == len(backlog)
