"""Deciding ahead: while the store records one message, the messages waiting behind it are parsed
and decided on the other cores.

Recording stays in mailbox order, in this process: archive, look-ups, record, settle. The messages
decided ahead are recorded in group commits (mailbox.run_once with Daemon.group(): up to GROUP
messages in one transaction, settled only after it), so a crash leaves each group either wholly
recorded or not at all, and a restart takes the rest as it would one message. Only the pure part
(pipeline.prepare: parse, examine, classify, validate, judge) runs in worker processes, on a copy
of the intake, and process() takes its verdict only where the store turns out to know none of the
message's files (else it decides again with what the store knows).

Workers start only for a backlog (a window of messages waiting at once): one message under IDLE
is decided here, with no process to start. A worker copy whose calendar went stale (a holiday
schedule loaded by a command meanwhile), a worker that died, or a message too large to be worth
copying to another process: the message is decided here, as without workers.
"""
from __future__ import annotations

import datetime as dt
import logging
import multiprocessing
import os
import select
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from mailbot import pipeline
from mailbot.dates import zone
from mailbot.transport.mailbox import GROUP

__all__ = ["Ahead", "default_workers"]

log = logging.getLogger("mailbot.ahead")

LARGEST = 4 << 20       # bytes: a larger message is decided here rather than copied to a worker
BACKLOG = 6             # messages waiting at once that make a backlog worth the workers
HELD = 64 << 20         # bytes of waiting messages read ahead at most (a message is always read)
MOST_WORKERS = 8


def default_workers() -> int:
    """One core writes (this process); the others decide ahead. At least one worker."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(MOST_WORKERS, cores - 1))


# ---------------------------------------------------------------- in the worker

_intake: pipeline.Intake | None = None


def _start(intake: pipeline.Intake, writer: int, zone_name: str) -> None:
    global _intake
    _intake = intake
    zone.use_zone(zone_name)            # the bureau's zone, as the writer has it from the config
    threading.Thread(target=_end_with, args=(writer,), name="end-with-writer", daemon=True).start()


def _end_with(writer: int) -> None:
    """A worker waits for work on a queue it holds both ends of: were the writer killed (kill -9, a
    crash), it would wait for ever, and hold the writer's stdout open for whoever reads it. So it
    ends as soon as the writer has, alive or not, running or not."""
    try:
        fd = os.pidfd_open(writer)
    except (AttributeError, OSError):
        fd = None
    if fd is not None:
        select.select([fd], [], [])          # readable once the writer has exited
        os._exit(0)
    while _alive(writer):
        time.sleep(0.5)
    os._exit(0)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"      # a zombie has exited
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
            return True
        except ProcessLookupError:
            return False


def _prepare(raw: bytes, received_at: dt.datetime) -> pipeline.Prepared:
    assert _intake is not None, "worker started without an intake"
    return pipeline.prepare(raw, _intake, received_at)


# ---------------------------------------------------------------- in the writer

class Ahead:
    """Pairs each fetched message with its prepared verdict (or None: decide it here), in order."""

    def __init__(self, intake: pipeline.Intake, received_at: Callable[[Any], dt.datetime], *,
                 workers: int | None = None, window: int | None = None,
                 task: Callable[[bytes, dt.datetime], pipeline.Prepared] = _prepare):
        self.intake = intake
        self.received_at = received_at
        self.workers = default_workers() if workers is None else workers
        # ahead by a group commit's worth and more: the workers go on while a group is recorded
        self.window = window or GROUP + 4 * max(1, self.workers) + 2
        self.task = task
        self._pool: ProcessPoolExecutor | None = None
        self._generation = -1
        self.prepared = 0          # messages a worker prepared (process() may still decide one again)

    def __enter__(self) -> Ahead:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def pairs(self, fetched: Iterable[Any]) -> Iterator[tuple[Any, pipeline.Prepared | None]]:
        """(message, prepared or None) for each message of `fetched`, in its order. Reads up to
        `window` messages ahead of the one handed out."""
        waiting: deque[list[Any]] = deque()       # [message, its future or None]
        source = iter(fetched)
        more = True
        while True:
            # read ahead up to the window, and within HELD bytes: a backlog of large messages is
            # not held whole in memory (the one handed out next is always read)
            while more and len(waiting) < self.window and (
                    not waiting or sum(len(e[0].raw) for e in waiting) < HELD):
                try:
                    f = next(source)
                except StopIteration:
                    more = False
                    break
                waiting.append([f, self._submit(f) if self._pool is not None else None])
            if (self._pool is None and self.workers and len(waiting) >= min(self.window, BACKLOG)
                    and (more or len(waiting) >= BACKLOG)):
                self._start_pool()                # a backlog: worth the workers
                for entry in waiting:
                    entry[1] = self._submit(entry[0])
            if not waiting:
                return
            f, future = waiting.popleft()
            prepared = self._result(future)
            if self._pool is not None and self._generation != self.intake.calendar.generation:
                # a schedule was loaded here since the workers copied the calendar: new copies
                log.info("calendar changed: restarting the workers deciding ahead")
                self.close()
                self._start_pool()
                for entry in waiting:
                    entry[1] = self._submit(entry[0])
            yield f, prepared

    def _start_pool(self) -> None:
        try:
            ctx = multiprocessing.get_context("forkserver")      # not fork: the daemon has threads
            ctx.set_forkserver_preload(["mailbot.pipeline"])
            self._pool = ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_start,
                                             initargs=(self.intake, os.getpid(), str(zone.bureau_zone())))
        except Exception as e:  # noqa: BLE001 - no workers (no processes left, no /tmp socket): decide here
            log.warning("cannot start workers to decide ahead (%s: %s); deciding here", type(e).__name__, e)
            self.workers = 0
            self._pool = None
            return
        self._generation = self.intake.calendar.generation
        log.info("deciding ahead on %d worker process(es), %d message(s) ahead", self.workers, self.window)

    def _submit(self, f: Any) -> Future | None:
        if len(f.raw) > LARGEST or self._pool is None:
            return None
        try:
            return self._pool.submit(self.task, f.raw, self.received_at(f))
        except Exception as e:  # noqa: BLE001 - a broken pool (a worker died) or none to be had (submit
            # starts the processes: fork refused, memory): decide here; a later backlog tries again
            log.warning("workers deciding ahead unavailable (%s: %s); deciding here", type(e).__name__, e)
            pool, self._pool = self._pool, None
            pool.shutdown(wait=False, cancel_futures=True)
            if not isinstance(e, RuntimeError):
                self.workers = 0        # they could not be started: not again in this pass
            return None

    def _result(self, future: Future | None) -> pipeline.Prepared | None:
        if future is None:
            return None
        try:
            prepared = future.result()
        except Exception as e:  # noqa: BLE001 - here the message is decided again; a crash is recorded then
            log.warning("deciding ahead failed (%s: %s); deciding here", type(e).__name__, e)
            return None
        self.prepared += 1
        return prepared
