"""Failpoints: named places where a test can have the process killed (SIGKILL), to prove crash safety.

`failpoint(name)` does nothing unless the environment variable MAILBOT_FAILPOINT names it when
this module is first imported (read once: a failpoint costs one string comparison). Then the
process sends itself SIGKILL there: no `finally`, no `atexit`, no flush, no rollback, exactly
like a power cut or the OOM killer. `MAILBOT_FAILPOINT=name:N` kills on the Nth time the point
is reached (counted per process), so a test can let the first message through and kill on the
second.

The points, in the order a message meets them (tests/test_faults.py kills at each, restarts and
checks that every message is processed once and every reply delivered once):

  receiving (pipeline.process, mailbox.run_once / ImapSource.settle)
  after-archive    the raw bytes are on disk (storage/raw); nothing parsed, nothing recorded
  after-parse      the message is parsed; nothing looked up or recorded
  before-record    the verdict and the reply are drafted; store.record not yet called
  after-record     store.record committed (message, files, submissions, reply in the outbox);
                   the message is still in INBOX (run_once, between handle and settle)
  after-move       the UID MOVE (or flag) is done; the mailbox position is not yet saved
                   (ImapSource.settle)
  after-settle     moved and the position saved; the next message not yet fetched (run_once)

  receiving a backlog decided ahead, in group commits (mailbox.run_once with a group; the points
  above inside process() are met per message, inside the group's one transaction)
  after-group-record  the group's transaction committed; every message of it still in INBOX
  after-move          the group's UID MOVE done (ImapSource.settle_all); the position not yet saved
  after-group-settle  moved and the position saved; the next message not yet recorded

  sending (sender.deliver_due, per mail)
  before-smtp      the batch is leased (next_attempt_at = now + lease); this mail not yet sent
  inside-smtp      the server answered 250 to DATA, mark_sent not yet written: the one window
                   where a mail goes out twice (the same bytes, the same Message-ID) once the
                   lease runs out
  after-mark-sent  the mail is recorded as sent; the rest of the leased batch is not
"""
from __future__ import annotations

import os
import signal

__all__ = ["failpoint", "POINTS", "ENV"]

ENV = "MAILBOT_FAILPOINT"
POINTS = ("after-archive", "after-parse", "before-record", "after-record", "after-move", "after-settle",
          "after-group-record", "after-group-settle", "before-smtp", "inside-smtp", "after-mark-sent")


def _parse(value: str | None) -> tuple[str | None, int]:
    if not value:
        return None, 0
    name, _, nth = value.strip().partition(":")
    try:
        n = int(nth) if nth else 1
    except ValueError:
        raise ValueError(f"{ENV}={value!r}: expected NAME or NAME:N") from None
    if name not in POINTS:
        raise ValueError(f"{ENV}={value!r}: unknown failpoint (known: {', '.join(POINTS)})")
    if n < 1:
        raise ValueError(f"{ENV}={value!r}: N counts from 1")
    return name, n


_ARMED, _NTH = _parse(os.environ.get(ENV))
_hits = 0


def failpoint(name: str) -> None:
    """Kill this process with SIGKILL here if MAILBOT_FAILPOINT names this point (on its Nth hit)."""
    global _hits
    if name != _ARMED:
        return
    _hits += 1
    if _hits >= _NTH:
        os.kill(os.getpid(), signal.SIGKILL)
