"""The daemon's scheduled jobs, persisted in the database by APScheduler so they survive restarts.

Jobs are registered by name and looked up in the running daemon at fire time: a persistent job
store keeps only the name, never a live object. Each job logs when it fires and what it did;
what it sends goes through the outbox with a dedupe key, so a restart, a rerun or a second
daemon never sends it twice. The work itself is in office.py; the times are SCHEDULE's, in
Beijing time whatever the machine's zone:

  reminders         daily at settings' send_at: reminders and overdue notices to the sections
  digest            daily at send_at: the credit section's digest (in a deadline's last week)
  monthly_package   daily at send_at: the package for 区发改局, on the working day after a
                    month's last deadline
  bulletin          daily at send_at: the 调度通报 to every section, on the working day after a
                    month's last deadline (config `bulletin`)
  escalation        daily at send_at: weekly notices to a section's head of items still missing
                    `escalate_after_workdays` working days after their deadline
  period_complete   hourly 08:00-20:00: the "all in" notice of a period
  calendar_warning  daily 09:00: this year's (or, from 1 November, next year's) holiday
                    schedule is missing; told once per year

Catching up: a firing missed while the daemon was down runs once when it comes back (the job
store keeps each job's next run time; register() keeps a past one, and the jobs have no
misfire limit). A first start, with nothing in the job store, has missed nothing: the jobs
start from their next time (`mailbot remind` does a catch-up by hand).
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from mailbot.duties.office import Office
from mailbot.redact import redact
from mailbot.writing.notices import DUTY_NAMES
from mailbot.duties.reminders import ReminderSettings
from mailbot.dates.zone import bureau_zone

__all__ = ["register", "run_job", "DaemonExecutor", "schedule", "trigger", "JOBS"]

log = logging.getLogger("mailbot.app.jobs")


def _calendar_warning(daemon: Any) -> None:
    sent = Office.of(daemon).calendar_notice(daemon.clock())
    if sent is not None:
        log.warning("holiday schedule missing: notice %s %s", sent.dedupe_key,
                    "queued" if sent.created else "queued before")


def _reminders(daemon: Any) -> None:
    now = daemon.clock()
    office = Office.of(daemon)
    run = office.remind(now)
    if run.gaps:      # a deadline that cannot be computed is never skipped in silence
        office.duty_failed(DUTY_NAMES["reminders"], "；".join(dict.fromkeys(str(g) for g in run.gaps)), now)
    log.info("reminders at %s: %d letter(s) queued%s; %d queued before; %d for sections without an address%s",
             now.isoformat(timespec="minutes"), len(run.queued),
             f" ({', '.join(p.dedupe_key for p in run.queued)})" if run.queued else "", len(run.already),
             len(run.unaddressed), f" ({', '.join(p.section for p in run.unaddressed)})" if run.unaddressed else "")


def _digest(daemon: Any) -> None:
    now = daemon.clock()
    sent = Office.of(daemon).digest(now)
    if sent is None:
        log.info("digest at %s: none due", now.isoformat(timespec="minutes"))
    else:
        log.info("digest %s %s", sent.dedupe_key, "queued" if sent.created else "queued before")


def _period_complete(daemon: Any) -> None:
    for sent in Office.of(daemon).completion(daemon.clock()):
        log.info("all-in notice %s %s", sent.dedupe_key, "queued" if sent.created else "queued before")


def _monthly_package(daemon: Any) -> None:
    for sent in Office.of(daemon).scheduled_packages(daemon.clock()):
        log.info("monthly package %s %s", sent.dedupe_key, "queued" if sent.created else "queued before")


def _bulletin(daemon: Any) -> None:
    for sent in Office.of(daemon).scheduled_bulletins(daemon.clock()):
        log.info("bulletin %s %s", sent.dedupe_key, "queued" if sent.created else "queued before")


def _escalation(daemon: Any) -> None:
    now = daemon.clock()
    sent = Office.of(daemon).escalations(now)
    log.info("escalation at %s: %d notice(s) queued%s; %d queued before", now.isoformat(timespec="minutes"),
             sum(s.created for s in sent), "".join(f" {s.dedupe_key}" for s in sent if s.created),
             sum(not s.created for s in sent))


JOBS = {
    "reminders": _reminders,
    "digest": _digest,
    "monthly_package": _monthly_package,
    "bulletin": _bulletin,
    "escalation": _escalation,
    "period_complete": _period_complete,
    "calendar_warning": _calendar_warning,
}


def schedule(rules: Any) -> list[tuple[str, str, dict[str, Any]]]:
    """(job id, description, cron fields in Beijing time) of every job, in the order jobs that
    fire at the same moment should run."""
    st = ReminderSettings.from_rules(rules)
    at = {"hour": st.send_at.hour, "minute": st.send_at.minute}
    return [
        ("reminders", "reminders and overdue notices to the sections", at),
        ("digest", "daily digest for the credit section", at),
        ("monthly_package", "monthly package for 区发改局", at),
        ("bulletin", "调度通报 to every section", at),
        ("escalation", "escalation of items long overdue to the section's head", at),
        ("period_complete", "notice when a period is all in", {"hour": "8-20", "minute": 0}),
        ("calendar_warning", "holiday schedule missing", {"hour": 9, "minute": 0}),
    ]


def trigger(fields: dict[str, Any]):
    from apscheduler.triggers.cron import CronTrigger
    return CronTrigger(timezone=bureau_zone(), **fields)


def run_job(name: str, daemon: Any = None) -> None:
    """The callable APScheduler stores (by reference, with the job's name): the daemon that runs
    it is handed in at fire time by DaemonExecutor, never stored or kept in a global."""
    log.info("job %s fired", name)
    if daemon is None:
        log.error("job %s fired outside a daemon (no DaemonExecutor)", name)
        return
    try:
        JOBS[name](daemon)
    except Exception as e:  # noqa: BLE001 - a failing job must not stop the scheduler
        log.exception("job %s failed", name)
        try:    # ... nor fail in silence: the credit section is told, once a day
            Office.of(daemon).duty_failed(DUTY_NAMES.get(name, name), f"{type(e).__name__}: {redact(e)}",
                                          daemon.clock())
        except Exception:  # noqa: BLE001 - the store itself may be what failed; the log has it
            log.exception("job %s: could not tell the credit section", name)


def DaemonExecutor(daemon: Any):
    """An APScheduler executor that hands the running daemon to every job it runs.

    The persistent job store keeps only `run_job` and the job's name; the live daemon (its store,
    clock and config) cannot be pickled into it. Custom executors implement `_do_submit_job`
    (APScheduler 3's extension point); this one passes the job on with `daemon` added to the
    call's keyword arguments, leaving the stored job untouched."""
    from apscheduler.executors.pool import ThreadPoolExecutor

    class _WithDaemon:
        def __init__(self, job: Any):
            self._job = job
            self.kwargs = {**job.kwargs, "daemon": daemon}

        def __getattr__(self, name: str) -> Any:
            return getattr(self._job, name)

    class _Executor(ThreadPoolExecutor):
        def _do_submit_job(self, job: Any, run_times: Any) -> Any:
            return super()._do_submit_job(_WithDaemon(job), run_times)

    return _Executor(max_workers=1)


def _stored_next_run(scheduler: Any, job_id: str) -> dt.datetime | None:
    """The next run time the job store kept for `job_id` from the daemon's last run, if any."""
    for store in getattr(scheduler, "_jobstores", {}).values():
        try:
            job = store.lookup_job(job_id)
        except Exception:  # noqa: BLE001 - no table yet: a first start
            continue
        if job is not None:
            return job.next_run_time
    return None


def register(scheduler: Any, daemon: Any) -> None:
    """Add every job; a run missed while the daemon was down is kept, so it runs once on start."""
    now = daemon.clock()
    for job_id, name, fields in schedule(daemon.rules):
        extra: dict[str, Any] = {}
        missed = _stored_next_run(scheduler, job_id)
        if missed is not None and missed <= now:
            extra["next_run_time"] = missed
            log.info("job %s: the run of %s was missed while the daemon was down; it runs now", job_id,
                     missed.isoformat(timespec="minutes"))
        scheduler.add_job("mailbot.app.jobs:run_job", trigger(fields), args=[job_id], id=job_id, name=name,
                          replace_existing=True, coalesce=True, misfire_grace_time=None, **extra)
