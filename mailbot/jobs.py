"""The daemon's scheduled jobs, persisted in the database by APScheduler so they survive restarts.

Jobs are registered by name and looked up in the running daemon at fire time: a persistent job
store keeps only the name, never a live object. Each job logs when it fires; what it sends
goes through the outbox with a dedupe key, so a restart or a second daemon never sends it twice.
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from .letters import make_message, mail_domain
from .store import OutgoingMail
from .workdays import WorkCalendar

__all__ = ["register", "run_job", "calendar_gap_notice", "JOBS"]

log = logging.getLogger("mailbot.jobs")
_DAEMON: Any = None


def calendar_gap_notice(today: dt.date, calendar: WorkCalendar) -> str | None:
    """From 1 November on, while next year's holiday schedule is known neither to the package nor
    to rules/calendar/, the Chinese notice asking the credit section to fill it in."""
    nxt = today.year + 1
    if today.month < 11 or calendar.knows(nxt):
        return None
    path = f"{calendar.rules_dir.rstrip('/')}/calendar/{nxt}.yaml"
    return (f"信用监管科：\n\n    mailbot尚未掌握{nxt}年的法定节假日和调休安排，{nxt}年1月起的报送期限、"
            f"提醒和\"双公示\"7个工作日的核算将无法进行。\n    请在国务院办公厅公布{nxt}年部分节假日安排的通知后，"
            f"按 {path} 的格式（参见同目录下的 {nxt}.yaml.example 和 README.md）录入放假日期和调休上班日期，"
            f"然后运行 mailbot rules check 核对。\n    在补录之前，本提醒每周发送一次。\n\n信用监管科邮件受理系统\n")


def _calendar_warning(daemon: Any) -> None:
    now = daemon.clock()
    text = calendar_gap_notice(now.date(), daemon.intake.calendar)
    if text is None:
        return
    config = daemon.config
    to = config.sections.get(config.credit_section, ())
    if not to:
        log.warning("calendar for %s missing, and credit section %s has no address", now.year + 1,
                    config.credit_section)
        return
    year, week, _ = now.isocalendar()
    key = f"calendar-warning:{now.year + 1}:{year}-W{week:02d}"
    subject = f"【提醒】请录入{now.year + 1}年法定节假日安排"
    mid = f"{key.replace(':', '.')}@{mail_domain(config.mailbox_address)}"
    raw = make_message(sender=config.mailbox_address, sender_name=config.mailbox_name, to=list(to),
                       subject=subject, plain=text, message_id=mid, now=now, auto_submitted="auto-generated")
    [q] = daemon.store.queue([OutgoingMail(kind="digest", recipients=tuple(to), subject=subject,
                                           mail_message_id=mid, raw=raw, dedupe_key=key)], now=now)
    log.warning("holiday schedule for %s missing: notice %s", now.year + 1, "queued" if q.created else "already queued")


JOBS = {"calendar_warning": _calendar_warning}


def run_job(name: str) -> None:
    """The callable APScheduler stores (by reference): finds the job in the running daemon."""
    log.info("job %s fired", name)
    if _DAEMON is None:
        log.error("job %s fired with no daemon running", name)
        return
    try:
        JOBS[name](_DAEMON)
    except Exception:  # noqa: BLE001 - a failing job must not stop the scheduler
        log.exception("job %s failed", name)


def register(scheduler: Any, daemon: Any) -> None:
    global _DAEMON
    _DAEMON = daemon
    scheduler.add_job("mailbot.jobs:run_job", "cron", args=["calendar_warning"], id="calendar_warning",
                      name="holiday schedule for next year", day_of_week="mon", hour=9, minute=0,
                      replace_existing=True)
