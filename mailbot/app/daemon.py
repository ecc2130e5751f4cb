"""Wiring: config → store, source, sender, scheduler; the receiving loop, the outbox loop and signals.

The daemon is three loops in one process: the watcher (IDLE or poll, each message through
pipeline.process, moved only after commit; a backlog decided ahead, in group commits), the outbox
sender (woken after every message and every `outbox_interval` seconds) and the APScheduler scheduler (jobs persisted in the
database); with `web:` in the config a fourth thread serves the web desk (uvicorn on its own
event loop, over the same store and desk; a mail it queues wakes the sender). SIGTERM/SIGINT set one event; each loop finishes what it holds and returns, so no
record is half written. Health is a small JSON file written after every successful poll.

Before any of that, a daemon waits to be the active one (app/standby.py): on PostgreSQL several
may run, one active and the others standby; on SQLite a second one on the same storage is refused.
Losing the role stops the three loops and the daemon is a standby again.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mailbot.transport import mailbox
from mailbot import pipeline
from mailbot.app import standby, wiring
from mailbot.app.ahead import Ahead
from mailbot.app.config import Config
from mailbot.redact import redact
from mailbot.dates.zone import bureau_zone
from mailbot.store.files import write_atomically
from mailbot.store import Store

__all__ = ["Daemon", "PollSummary", "health_report", "HEALTH_FILE"]

log = logging.getLogger("mailbot.app.daemon")
HEALTH_FILE = "health.json"


@dataclass
class PollSummary:
    """What one pass did, in counts: the results themselves go to `poll_once`'s `each` as they are
    settled and are not kept (a pass over 5,000 messages must not hold 5,000 results)."""
    outcomes: dict[str, int] = field(default_factory=dict)
    sent: int = 0
    temporary: int = 0
    permanent: int = 0
    ahead: int = 0             # messages recorded with the verdict a worker process decided ahead

    @property
    def messages(self) -> int:
        return sum(self.outcomes.values())

    def counts(self) -> dict[str, int]:
        return dict(self.outcomes)


class Daemon:
    """One deployment's intake, built from its config; the clock is injectable for tests."""

    def __init__(self, config: Config, *, clock: Callable[[], dt.datetime] | None = None,
                 store: Store | None = None):
        self.config = config
        self.deployment = wiring.build(config)         # raises WiringError: refuse to start
        self.tz = bureau_zone()
        self.clock = clock or (lambda: dt.datetime.now(self.tz))
        self.rules = self.deployment.rules
        self.intake = self.deployment.intake
        self.store = wiring.attach_store(self.deployment, store if store is not None else wiring.open_store(config))
        self.desk = self.deployment.desk(self.store)    # the credit section's commands, by mail
        self.stop = threading.Event()
        self._halt = threading.Event()          # the loops' stop: set by `stop` or by losing the active role
        self.role: standby._Role | None = None
        self._outbox_wake = threading.Event()
        self.on_processed: Callable[[Any, pipeline.Processed], None] | None = None

    # ------------------------------------------------------------ pieces

    def source(self) -> mailbox.Source:
        options: dict[str, Any] = {"move": self.config.move_messages}
        if self.config.folders:
            options["folders"] = {**mailbox.DEFAULT_FOLDERS, **self.config.folders}
        if self.config.imap and not self.config.maildir:
            options["first_run"] = self.config.first_run
        return mailbox.source_from_config(self.config, self.store, **options)

    def template_for(self, section: str, period: str) -> tuple[str, bytes]:
        return self.deployment.template_for(section, period)

    def received_at(self, fetched: mailbox.Fetched) -> dt.datetime:
        return fetched.received_at.astimezone(self.tz)

    def ahead(self) -> Ahead:
        """Deciding ahead on the other cores, for a backlog (app/ahead.py)."""
        return Ahead(self.intake, self.received_at, workers=self.config.workers)

    def handle(self, fetched: mailbox.Fetched, prepared: pipeline.Prepared | None = None) -> pipeline.Processed:
        result = self._process(fetched, prepared)
        self._processed(fetched, result)
        return result

    def _process(self, fetched: mailbox.Fetched, prepared: pipeline.Prepared | None) -> pipeline.Processed:
        return pipeline.process(fetched.raw, intake=self.intake, store=self.store, source=fetched.source,
                                received_at=self.received_at(fetched), now=self.clock(),
                                template_for=self.template_for, desk=self.desk, prepared=prepared)

    def _processed(self, fetched: mailbox.Fetched, result: pipeline.Processed) -> None:
        """Told once the message's record is committed."""
        log.info("message %s from %s: %s%s", result.message_id, fetched.source, result.outcome,
                 f" ({result.section})" if result.section else "",
                 extra={"mailbot": {"source": fetched.source, **result.as_dict()}})
        if self.on_processed:
            self.on_processed(fetched, result)
        self._outbox_wake.set()

    def record_together(self, pairs: list[tuple[mailbox.Fetched, pipeline.Prepared]]) -> list[pipeline.Processed]:
        """Messages of a backlog recorded in one transaction (Store.batch), each told once it is committed."""
        with self.store.batch():
            results = [self._process(f, p) for f, p in pairs]
        for (f, _), result in zip(pairs, results):
            self._processed(f, result)
        return results

    def group(self) -> mailbox.Group:
        """Group commits for a backlog decided ahead (mailbox.run_once)."""
        return _Together(self.record_together)

    def deliver_outbox(self) -> tuple[int, int, int]:
        """Send what is due; (sent, temporary failures, permanent failures)."""
        if self.config.smtp is None:
            return 0, 0, 0
        from mailbot.transport.smtp import deliver_due_sync
        report = deliver_due_sync(self.store, self.config.smtp, self.clock(),
                                  envelope_from=self.config.smtp.sender or self.config.mailbox_address)
        if report.attempts:
            log.info("outbox: %d sent, %d deferred (temporary), %d failed (permanent)",
                     len(report.sent), len(report.temporary), len(report.permanent))
        return len(report.sent), len(report.temporary), len(report.permanent)

    def write_health(self, *, ok: bool, error: str | None = None, source: Any = None) -> None:
        path = self.config.storage / HEALTH_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        now = self.clock().isoformat()
        data.update({"pid": os.getpid(), "updated_at": now, **(self.role.fields() if self.role else {})})
        if source is not None:      # what the mailbox lacks or refused (no MOVE, no IDLE, a folder): said once
            data["mailbox_notes"] = [redact(n) for n in getattr(source, "notes", ())]
        if ok:
            data["last_poll_ok"] = now
            data.pop("last_error", None)
        else:
            data["last_error"] = redact(error) if error else error
            data["last_error_at"] = now
        write_atomically(path, json.dumps(data, ensure_ascii=False, indent=1).encode("utf-8"), mode=0o600)

    # ------------------------------------------------------------ one pass

    def poll_once(self, limit: int = mailbox.ROUND,
                  each: Callable[[str, pipeline.Processed], None] | None = None) -> PollSummary:
        """Connect, take every waiting message through the pipeline, deliver the outbox, disconnect.
        `each(source, result)` hears of every message as it is handled."""
        summary = PollSummary()
        source = self.source()
        previous = self.on_processed

        def settled(f: Any, p: pipeline.Processed) -> None:
            summary.outcomes[p.outcome] = summary.outcomes.get(p.outcome, 0) + 1
            summary.ahead += p.decided_ahead
            if each is not None:
                each(f.source, p)
        self.on_processed = settled
        try:
            source.connect()
            mailbox.run_once(source, self.handle, limit, ahead=self.ahead, group=self.group())
            self.write_health(ok=True, source=source)
        except Exception as e:
            self.write_health(ok=False, error=f"{type(e).__name__}: {e}", source=source)
            raise
        finally:
            self.on_processed = previous
            try:
                source.close()
            except Exception:  # noqa: BLE001 - closing after a failure may fail too
                pass
        # deliver_due takes a bounded batch: keep going while batches make progress
        for _ in range(10_000):
            sent, temporary, permanent = self.deliver_outbox()
            summary.sent += sent
            summary.temporary += temporary
            summary.permanent += permanent
            if sent == 0:
                break
        return summary

    # ------------------------------------------------------------ the daemon

    def _watcher(self) -> None:
        source = self.source()

        def handle(fetched, prepared=None):
            return self.handle(fetched, prepared)

        def on_error(e: BaseException, delay: float) -> None:
            self.write_health(ok=False, error=f"{type(e).__name__}: {e}", source=source)

        # the heartbeat: watch() drains, then waits; every return to run_once is a good poll
        original_wait = source.wait

        def wait(timeout, stop=None):
            self.write_health(ok=True, source=source)
            return original_wait(timeout, stop)

        source.wait = wait  # type: ignore[method-assign]
        mailbox.watch(source, handle, stop=self._halt, poll_interval=self.config.poll_interval, on_error=on_error,
                      ahead=self.ahead, group=self.group())

    def _sender(self) -> None:
        while not self._halt.is_set():
            try:
                self.deliver_outbox()
            except Exception:  # noqa: BLE001 - a broken SMTP server must not end the daemon
                log.exception("outbox delivery failed; retrying in %s s", self.config.outbox_interval)
            self._outbox_wake.wait(self.config.outbox_interval)
            self._outbox_wake.clear()

    def _scheduler(self):
        from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
        from apscheduler.schedulers.background import BackgroundScheduler
        from mailbot.app import jobs
        scheduler = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(url=self.config.database, tablename="apscheduler_jobs")},
            executors={"default": jobs.DaemonExecutor(self)},
            timezone=self.tz, job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600})
        jobs.register(scheduler, self)
        return scheduler

    def run(self, *, install_signals: bool = True) -> None:
        """Until SIGTERM/SIGINT (or self.stop): wait to be the active daemon, then receive, send, run the
        scheduled jobs while the role holds. Raises standby.Refused where another daemon holds the storage (SQLite)."""
        if install_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda signum, frame: self._shutdown(signum))
        role = standby.role_for(self.config.database, self.config.storage)
        try:
            while role.wait_until_active(self.stop, self.config.standby_retry):
                self.role = role
                self._work(role.still_held)
                self.role = None
                if self.stop.is_set():
                    break
                log.error("no longer the active daemon: stopped receiving, sending and the jobs; standby again")
                self.stop.wait(2 * self.config.standby_retry)   # the other daemons first: this one lost its way
        finally:
            role.close()

    def _work(self, still_active: Callable[[], bool]) -> None:
        """The three loops, until stop or until `still_active()` (asked every second) says no."""
        self._halt.clear()
        scheduler = self._scheduler()
        scheduler.start()
        web = self._web()
        threads = [threading.Thread(target=self._watcher, name="watcher", daemon=True),
                   threading.Thread(target=self._sender, name="sender", daemon=True)]
        for t in threads:
            t.start()
        log.info("mailbot running: %s; outbox every %ss; database %s", self.config.maildir or
                 (self.config.imap and f"imap://{self.config.imap.host}:{self.config.imap.port}"),
                 self.config.outbox_interval, self.config.database.split("@")[-1])
        try:
            while not self.stop.wait(1.0) and still_active():
                pass
        finally:
            self._halt.set()
            self._outbox_wake.set()
            if web is not None:
                web.stop()
            for t in threads:
                t.join(timeout=120)
            scheduler.shutdown(wait=True)
            log.info("mailbot stopped")

    def _web(self):
        """The web desk's server, started; None where the config has no `web:`."""
        if self.config.web is None:
            return None
        from mailbot.web.app import create_app
        from mailbot.web.server import WebServer
        app = create_app(self.deployment, self.store, settings=self.config.web, clock=self.clock,
                         on_queued=self._outbox_wake.set)
        server = WebServer(app, self.config.web.host, self.config.web.port)
        server.start()
        log.info("web desk on http://%s:%s (%s)", self.config.web.host, self.config.web.port, self.config.web.link_base)
        return server

    def _shutdown(self, signum: int) -> None:
        log.info("signal %s: finishing the message in hand, then stopping", signal.Signals(signum).name)
        self.stop.set()
        self._halt.set()
        self._outbox_wake.set()


def health_report(config: Config, store: Store, now: dt.datetime, calendar: Any = None) -> dict[str, Any]:
    """What a monitoring system needs: last good poll, outbox backlog, mail waiting for a person."""
    path = config.storage / HEALTH_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    last = dt.datetime.fromisoformat(data["last_poll_ok"]) if data.get("last_poll_ok") else None
    stats = store.outbox_stats(now)
    silent = (now - last).total_seconds() if last else None
    waiting = len(store.messages(limit=10_000, outcome="quarantined")) + len(store.failures())
    healthy = silent is not None and silent <= config.max_silence
    return {
        "healthy": healthy,
        "last_poll_ok": data.get("last_poll_ok"),
        "seconds_since_last_poll": None if silent is None else round(silent),
        "max_silence": config.max_silence,
        "last_error": data.get("last_error"),
        "outbox_pending": stats.due,
        "outbox_oldest_due": stats.oldest_due_at.isoformat() if stats.oldest_due_at else None,
        "outbox_failed_permanent": stats.counts.get("failed_permanent", 0),
        "waiting_for_a_person": waiting,
        # which daemon is active, which wait (PostgreSQL), and this host's part: app/standby.py
        **_roles(config, store, now.tzinfo),
        "mailbox_notes": data.get("mailbox_notes", []),
        # where this year's and next year's holidays come from; "provisional" until the notice is loaded
        "calendar": {str(y): calendar.source(y) for y in (now.year, now.year + 1)} if calendar else None,
        "calendar_provisional": [y for y in (now.year, now.year + 1) if calendar.is_provisional(y)] if calendar else None,
    }


def _roles(config: Config, store: Store, tz: Any) -> dict[str, Any]:
    try:
        return standby.report(config.database, config.storage, store.engine, tz)
    except Exception as e:  # noqa: BLE001 - health must answer even when it cannot tell
        return {"role": None, "active": None, "standby": [], "role_error": redact(f"{type(e).__name__}: {e}")}


@dataclass(frozen=True)
class _Together:
    """mailbox.Group for the daemon: the messages decided ahead as ordinary mail (not a command,
    not a person's reply: those act beyond the store and go alone)."""
    record: Callable[[list[tuple[mailbox.Fetched, pipeline.Prepared]]], list[pipeline.Processed]]

    @staticmethod
    def takes(prepared: pipeline.Prepared | None) -> bool:
        return prepared is not None and prepared.may_share_a_commit
