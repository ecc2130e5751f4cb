"""What differs by IMAP server, on Dovecot and Cyrus IMAP 3.6 (the rest of the mail path, on both:
tests/test_mailbox.py's resume, server-restart, IDLE and threaded-reply tests).

Cyrus runs with its defaults where they matter: a user's folders live under the personal
namespace "INBOX." (delimiter "."), CREATE at the top level is refused. Each outcome lands in
its folder under the namespace the server announces, or is flagged where it cannot; nothing is
marked \\Seen or expunged. What a server lacks (MOVE, keywords, IDLE) or refuses (a folder) is
said once per start and reaches `health`.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import types

import pytest

from mailbot.transport import mailbox as mbx
from mailbot.transport.mailbox import Backoff, ImapSource, run_once, watch
from test_mailbox import USER, Recorder, eventually, mail

pytest_plugins = ["mailservers"]

OUTCOMES = ["accepted", "partially_accepted", "rejected", "quarantined", "ignored"]
FOLDERS = {"已受理": 2, "已退回": 1, "待人工": 2, "已忽略": 1}


def source(server, store, user: str = USER, **kw) -> ImapSource:
    kw.setdefault("timeout", 10)
    return ImapSource(server.server(user), store, **kw)


@pytest.fixture
def commands(monkeypatch):
    from test_mailbox import Commands
    return Commands(monkeypatch)


def test_every_outcome_lands_in_its_folder_under_the_servers_namespace(imap_server, store, commands, caplog):
    for i, o in enumerate(OUTCOMES):
        imap_server.deliver(USER, mail(i, o))
    imap_server.deliver(USER, mail(99, "quarantined"))
    caplog.set_level(logging.INFO, logger="mailbot.transport.mailbox")
    src = source(imap_server, store)
    src.connect()
    try:
        assert src.namespace == (imap_server.namespace_prefix, ".")
        assert run_once(src, Recorder(store)) == 6
        names = commands.names(src)
    finally:
        src.close()
    assert names.count("UID MOVE") == 6 and names.count("CREATE") == 4       # one CREATE a folder, none refused
    assert "EXPUNGE" not in names and "UID COPY" not in names and "UID STORE" not in names
    assert src.notes == []
    assert set(imap_server.folders(USER)) == {"INBOX"} | {imap_server.folder(f) for f in FOLDERS}
    assert imap_server.messages(USER) == []
    assert {f: len(imap_server.messages(USER, imap_server.folder(f))) for f in FOLDERS} == FOLDERS
    for f in FOLDERS:
        assert all("\\Seen" not in fl and "\\Deleted" not in fl
                   for fl in imap_server.flags(USER, imap_server.folder(f)).values())
    assert not any(r.levelno >= logging.WARNING for r in caplog.records)
    again = source(imap_server, store)
    again.connect()
    try:
        assert run_once(again, Recorder(store)) == 0
    finally:
        again.close()


def test_a_folder_the_server_refuses_is_said_once_and_its_mail_flagged(cyrus, store, commands, caplog):
    """A configured name with the delimiter is used as it is: at Cyrus's top level, refused."""
    folders = {**mbx.DEFAULT_FOLDERS, "rejected": "公共.已退回"}
    for i in range(3):
        cyrus.deliver(USER, mail(i, "rejected"))
    cyrus.deliver(USER, mail(3, "accepted"))
    caplog.set_level(logging.INFO, logger="mailbot.transport.mailbox")
    src = source(cyrus, store, folders=folders)
    src.connect()
    try:
        assert run_once(src, Recorder(store)) == 4
        first = commands.names(src)
        src.close()
        cyrus.deliver(USER, mail(4, "rejected"))
        src.connect()                                   # a reconnect is not a restart: not tried again
        assert run_once(src, Recorder(store)) == 1
        second = commands.names(src)
    finally:
        src.close()
    assert first.count("CREATE") == 2 and "CREATE" not in second            # 公共.已退回 once, INBOX.已受理 once
    refused = [r.getMessage() for r in caplog.records if "cannot create folder" in r.getMessage()]
    assert len(refused) == 1 and "'公共.已退回'" in refused[0] and "Permission denied" in refused[0]
    assert "rejected stay in INBOX" in refused[0]
    assert src.notes == [refused[0].split(": ", 1)[1]]
    inbox = cyrus.flags(USER)
    assert len(inbox) == 4 and all("mailbot-done" in f and "mailbot-rejected" in f for f in inbox.values())
    assert len(cyrus.messages(USER, "INBOX.已受理")) == 1


def test_without_move_keywords_or_idle_each_is_said_once_and_reaches_health(imap_server, store, commands,
                                                                             monkeypatch, caplog, tmp_path):
    real = mbx.refresh_capabilities
    monkeypatch.setattr(mbx, "refresh_capabilities", lambda c: tuple(x for x in real(c) if x not in ("MOVE", "IDLE")))
    monkeypatch.setattr(mbx, "keywords_allowed", lambda c: False)
    for i, o in enumerate(["accepted", "rejected"]):
        imap_server.deliver(USER, mail(i, o))
    caplog.set_level(logging.INFO, logger="mailbot.transport.mailbox")
    src = source(imap_server, store)
    stop = threading.Event()
    rec = Recorder(store)
    t = threading.Thread(target=watch, args=(src, rec), daemon=True,
                         kwargs=dict(stop=stop, poll_interval=0.3, backoff=Backoff(initial=0.05, jitter=0)))
    t.start()
    try:
        assert eventually(lambda: len(rec.created) == 2)
        src._broken = True                             # the link drops: watch reconnects (a poll, not a start)
        src.mailbox.client.shutdown()
        imap_server.deliver(USER, mail(2, "ignored"))
        assert eventually(lambda: len(rec.created) == 3)
    finally:
        stop.set()
        t.join(10)
    assert not t.is_alive()
    names = [n for c, n, _ in commands.sent]
    assert "IDLE" not in names and "EXPUNGE" not in names
    assert not any(n == "UID" and a[0].upper() in ("MOVE", "COPY") for _c, n, a in commands.sent)
    flags = imap_server.flags(USER)
    assert len(flags) == 3 and all(set(f) & {"\\Flagged"} and not set(f) & {"\\Seen", "\\Deleted"}
                                   for f in flags.values())
    assert not any(k.startswith("mailbot") for f in flags.values() for k in f)
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO and
            any(w in r.getMessage() for w in ("does not offer MOVE", "no keywords", "does not offer IDLE"))]
    assert len(said) == 3 and len(src.notes) == 3, said                       # once each, across the reconnect
    assert sum("connected to" in r.getMessage() for r in caplog.records) >= 2

    # the daemon writes them into the health file; `health` shows them
    from mailbot.app.daemon import Daemon, health_report
    now = dt.datetime.now(dt.UTC)
    fake = types.SimpleNamespace(config=types.SimpleNamespace(storage=tmp_path, max_silence=900), clock=lambda: now, role=None)
    Daemon.write_health(fake, ok=True, source=src)
    assert json.loads((tmp_path / "health.json").read_text(encoding="utf-8"))["mailbox_notes"] == src.notes
    assert health_report(fake.config, store, now)["mailbox_notes"] == src.notes
