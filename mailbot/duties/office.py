"""What the bureau gets from the deadlines: reminders and overdue notices sent to the sections,
the credit section's daily digest and "all in" notice, the monthly package for 区发改局 written
and mailed, the year's score.

The I/O around the pure logic of deadlines.py, status.py, reminders.py and package.py: read the
store, have mailbot/writing/ word the letters (reminder.py, digest.py) and build the mails
(writing.common.make_message), build workbooks (package.py, templates.py), queue mail
(store.queue, every mail under a dedupe key, so a rerun, a restart or a second daemon queues
nothing twice) and write files under storage/packages/. Never reads the clock: every
entry point takes `now` (jobs.py passes the daemon's clock, cli.py the wall clock or --now).

Decisions made here:

- Reminders: one letter per section and send time (reminders.group_by_section), listing
  exactly what that section still owes, with its blank template of each period listed
  attached; overdue notices are copied (Cc) to the credit section's addresses. A section with
  no address in the config gets no letter: a warning is logged and the credit section's digest
  of that day lists what it could not be told.
- The digest goes to the credit section at `send_at` on every working day of a monthly
  deadline's last week (the due date and the 6 days before it), and on any working day a
  section without an address missed a reminder; one per day (key "digest:YYYY-MM-DD"). A
  digest missed while the daemon was down is not sent later: the next day's says more.
- "All in": once every (section, task) of a period is on_time or late, one notice (key
  "complete:YYYY-MM"); the current and the previous period are looked at.
- The monthly package of a period is due at `send_at` on the working day after its last
  deadline (the monthly ones and the per-month count, i.e. the month's end at the latest); it
  is written once under storage/packages/YYYY-MM/ and those files are what is mailed (key
  "package:YYYY-MM"). Missed while down, it is made when the daemon comes back, within
  `overdue_grace_workdays` working days.
- The 调度通报 (bulletin) of a month goes at `send_at` on `bulletin.workdays_after_last_deadline`
  (config, default 1) working days after its last deadline — the package's day — to every
  section's registered addresses, the credit section's in Cc (key "bulletin:YYYY-MM"); missed
  while down, within `overdue_grace_workdays` like the package; `bulletin.enabled: false` stops the
  scheduled one, never the credit section's own request (`bulletin(period, now, key=...)`).
- Escalation: an item (section, task, period) still owed (未报送 or 已退回待重报) once
  `escalate_after_workdays` (rules/settings.yaml, default 3) working days have passed since its due
  date is chased from the next working day at `send_at`, then weekly (7 days on, or the next working
  day) until it arrives or the credit section closes the month (store.close_period). One notice per
  section, period and week (key "escalation:SECTION:YYYY-MM:YYYY-MM-DD"): the weeks count from the
  first item of the section's month that was still owed on its escalation day, and each notice lists
  every item owed whose own escalation day has come. It goes to the section's head
  (config `section_heads`) and the section's addresses, the credit section's in Cc; with no head
  registered, to the section's addresses, and the letter asks them to pass it on to the head; a
  section with no address at all: to the credit section, which is asked to tell it. A notice missed
  while down goes when the daemon is back (the latest week only). Only months mailbot collected are
  announced or chased (`collected`: not before `tracking_since`; without it, a month with at least
  one submission in the store), at most ESCALATION_MONTHS back.
- A view "as of `now`": submissions received after `now` are left out, so --now in the past
  shows the month as it stood then.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mailbot.store.files import write_atomically
from mailbot.dates.deadlines import Due, deadlines_for_period, shift_of
from mailbot.writing.common import XLSX_MIME, mail_domain, make_message
from mailbot.writing.bulletin import OWED, bulletin_text, escalation_text
from mailbot.writing.digest import completion_text, digest_text, package_text
from mailbot.writing.notices import calendar_gap_notice, duty_failed_notice
from mailbot.writing.reminder import overdue_text, reminder_text
from mailbot.model import Rules
from mailbot.duties.package import (build_evidence_zip, build_package, build_score, dual_publicity_rates,
                      evidence_zip_filename, package_filename)
from mailbot.duties.reminders import (Reminder, ReminderLetter, ReminderSettings, count_reminders, group_by_section,
                                     reminders_due)
from mailbot.duties.status import Cell, ScoreRow, status_matrix, year_score, yearly_counts
from mailbot.model import OutgoingMail
from mailbot.store import Store, StoredSubmission
from mailbot.duties.templates import template_bytes, template_filename
from mailbot.dates.workdays import CalendarGapError, WorkCalendar
from mailbot.dates.zone import bureau_date, bureau_time, bureau_zone, iso
from mailbot.dates.period import Period, add_months, parse_period, period_last_day, period_of

if TYPE_CHECKING:
    from mailbot.app.daemon import Daemon

__all__ = ["Office", "PlannedLetter", "RemindRun", "Sent", "Escalation", "DIGEST_DAYS", "ESCALATION_MONTHS",
           "MAX_ATTACHMENT_BYTES", "XLSX_MIME", "ZIP_MIME", "as_of"]

log = logging.getLogger("mailbot.duties.office")

DIGEST_DAYS = 7                          # a deadline's last week: the due date and the 6 days before
ESCALATION_MONTHS = 12                   # escalation looks this many months back (the year's score goes on)
MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024  # a bigger evidence zip stays on disk; the mail says where
ZIP_MIME = "application/zip"
_DONE = ("on_time", "late")


# ---------------------------------------------------------------- values

@dataclass(frozen=True)
class PlannedLetter:
    """A reminder or overdue letter with its addresses resolved (`to` empty: no address known)."""
    letter: ReminderLetter
    to: tuple[str, ...]
    cc: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        return self.letter.kind

    @property
    def section(self) -> str:
        return self.letter.section

    @property
    def dedupe_key(self) -> str:
        return self.letter.dedupe_key

    def rows(self) -> list[dict[str, Any]]:
        """One JSON-ready row per item, as `mailbot remind --json` prints them."""
        return [{"kind": r.kind, "to": list(self.to), "section": r.section, "task": r.task,
                 "period": r.period, "due": iso(r.due)} for r in self.letter.items]


@dataclass
class RemindRun:
    """What one run of the reminders did: letters newly queued, queued before, not sendable."""
    queued: list[PlannedLetter] = field(default_factory=list)
    already: list[PlannedLetter] = field(default_factory=list)
    unaddressed: list[PlannedLetter] = field(default_factory=list)
    gaps: list[CalendarGapError] = field(default_factory=list)


@dataclass(frozen=True)
class Escalation:
    """One escalation notice due: a section's items of a period still owed at its weekly slot."""
    section: str
    period: str
    send_at: dt.datetime            # the slot, +08:00
    round_no: int                   # 1 the first week, 2 the next…
    items: tuple[tuple[Cell, int], ...]   # (the cell, working days late)
    dedupe_key: str                 # "escalation:办公室:2026-11:2026-12-04"


@dataclass(frozen=True)
class Sent:
    """One mail handed to the outbox: `created` False where its dedupe key was queued before."""
    kind: str
    dedupe_key: str
    recipients: tuple[str, ...]
    subject: str
    created: bool
    outbox_id: int


# ---------------------------------------------------------------- helpers

def as_of(submissions: Iterable[StoredSubmission], now: dt.datetime) -> list[StoredSubmission]:
    """The submissions received by `now`, with a supersession by a later one undone."""
    now = bureau_time(now)
    kept = [s for s in submissions if bureau_time(s.received_at) <= now]
    ids = {s.id for s in kept}
    return [dataclasses.replace(s, superseded_by=None) if s.superseded_by is not None and s.superseded_by not in ids
            else s for s in kept]


_TEMPLATES: dict[tuple[int, str, str], tuple[Rules, str, bytes]] = {}


def _template(rules: Rules, section: str, period: str) -> tuple[str, bytes]:
    """The blank template (a third of a second to write): made once per rules, section and period."""
    key = (id(rules), section, period)
    hit = _TEMPLATES.get(key)
    if hit is None or hit[0] is not rules:          # the entry holds `rules`, so its id is not reused
        if len(_TEMPLATES) > 256:
            _TEMPLATES.clear()
        hit = _TEMPLATES[key] = (rules, template_filename(rules, section, period),
                                 template_bytes(rules, section, period))
    return hit[1], hit[2]


# ---------------------------------------------------------------- the office

class Office:
    """One deployment's deadlines work: config (addresses), rules, calendar and store."""

    def __init__(self, config: Any, rules: Rules, store: Store, calendar: WorkCalendar | None = None):
        self.config = config
        self.rules = rules
        self.store = store
        self.calendar = calendar or WorkCalendar(rules.calendar, str(config.rules))
        self.settings = ReminderSettings.from_rules(rules)
        self.shift = shift_of(rules)

    @classmethod
    def of(cls, daemon: "Daemon") -> Office:
        return cls(daemon.config, daemon.rules, daemon.store, daemon.intake.calendar)

    # ------------------------------------------------------------ addresses and time

    def addresses(self, section: str) -> tuple[str, ...]:
        return tuple(self.config.sections.get(section, ()) or ())

    @property
    def credit(self) -> tuple[str, ...]:
        return self.addresses(self.config.credit_section)

    def send_time(self, day: dt.date) -> dt.datetime:
        return dt.datetime.combine(day, self.settings.send_at, bureau_zone())

    def _message_id(self, kind: str, key: str, stamp: str) -> str:
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]
        return f"mailbot.{kind}.{stamp}.{digest}@{mail_domain(self.config.mailbox_address)}"

    def _mail(self, *, kind: str, key: str, mid: str, to: Sequence[str], subject: str, text: str,
              now: dt.datetime, cc: Sequence[str] = (),
              attachments: Sequence[tuple[str, bytes, str]] = ()) -> OutgoingMail:
        raw = make_message(sender=self.config.mailbox_address, sender_name=self.config.mailbox_name, to=list(to),
                           cc=list(cc), subject=subject, plain=text, message_id=mid, now=bureau_time(now),
                           attachments=attachments, auto_submitted="auto-generated")
        return OutgoingMail(kind=kind, recipients=tuple(to) + tuple(cc), subject=subject, mail_message_id=mid,
                            raw=raw, dedupe_key=key)

    def _queue(self, mails: Sequence[OutgoingMail], now: dt.datetime) -> list[Sent]:
        if not mails:
            return []
        done = self.store.queue(list(mails), now=bureau_time(now))
        return [Sent(m.kind, m.dedupe_key or "", m.recipients, m.subject, q.created, q.id) for m, q in zip(mails, done)]

    # ------------------------------------------------------------ reading the store

    def submissions(self, period: str, now: dt.datetime, *, light: bool = False) -> list[StoredSubmission]:
        """Every submission of `period` (rejected and superseded ones too) received by `now`;
        `light`: without their rows, problems and evidence (Store.submissions)."""
        return as_of(self.store.submissions(period=period, current_only=False, light=light), now)

    def submitted(self, periods: Iterable[str], now: dt.datetime) -> set[tuple[str, int, str]]:
        """(section, task, period) with a current accepted submission by `now` that counts (not a
        file already accepted for another period: that section is still reminded)."""
        out: set[tuple[str, int, str]] = set()
        for p in periods:
            for s in self.submissions(p, now):
                if s.section is not None and s.current and not s.reused:
                    out.add((s.section, s.task, s.period))
        return out

    def deadlines(self, period: str) -> list[Due]:
        return deadlines_for_period(self.rules, period, self.calendar, shift=self.shift)

    def status(self, period: str, now: dt.datetime, subs: Sequence[StoredSubmission] | None = None) -> list[Cell]:
        subs = self.submissions(period, now, light=True) if subs is None else subs
        return status_matrix(self.rules, period, subs, now, self.calendar, shift=self.shift,
                             tracking_since=self.config.tracking_since)

    # ------------------------------------------------------------ reminders and overdue notices

    def reminders(self, now: dt.datetime, gaps: list[CalendarGapError] | None = None) -> list[Reminder]:
        """Every reminder and overdue notice due at `now` (reminders.reminders_due), plus the
        per-year count checks in the months of `count_check_months`."""
        now = bureau_time(now)
        st = self.settings
        after = max(set(st.overdue_workdays) | {0}) + st.overdue_grace_workdays
        before = max(set(st.before_workdays) | {0})
        here = period_of(now)
        # the periods reminders_due looks at (k working days never span more than 2k+20 days), and one more
        periods = [add_months(here, k) for k in range(-(2 + (2 * after + 20) // 28), 3 + (2 * before + 20) // 28)]
        got = reminders_due(self.rules, now, self.calendar, self.submitted(periods, now), st, gaps=gaps,
                            shift=self.shift)
        if now.month in st.count_check_months:
            year = {p: self.submissions(p, now) for p in (f"{now.year:04d}-{m:02d}" for m in range(1, 13))}
            try:
                got += count_reminders(self.rules, now, self.calendar, yearly_counts(self.rules, now.year, year), st)
            except CalendarGapError as e:
                if gaps is None:
                    raise
                gaps.append(e)
        return got

    def plan(self, now: dt.datetime, gaps: list[CalendarGapError] | None = None) -> list[PlannedLetter]:
        """The letters due at `now`: one per section, kind and send time, addresses resolved."""
        out = []
        for letter in group_by_section(self.reminders(now, gaps)):
            to = self.addresses(letter.section)
            cc = tuple(a for a in self.credit if a not in to) if letter.kind == "overdue" and to else ()
            out.append(PlannedLetter(letter, to, cc))
        return out

    def letter_mail(self, planned: PlannedLetter, now: dt.datetime) -> OutgoingMail:
        """The reminder or overdue notice as a mail: Chinese text, the section's template(s) attached."""
        letter = planned.letter
        items = list(letter.items)
        words = dict(mailbox_name=self.config.mailbox_name, mailbox_address=self.config.mailbox_address,
                     now=bureau_time(now))
        if letter.kind == "reminder":
            subject, text = reminder_text(letter.section, items, self.rules, calendar=self.calendar, **words)
        else:
            subject, text = overdue_text(letter.section, items, self.rules, calendar=self.calendar, **words)
        periods = sorted({r.period for r in items if r.required is None}) or [period_of(now)]
        attachments = [(*_template(self.rules, letter.section, p), XLSX_MIME) for p in periods]
        mid = self._message_id(letter.kind, letter.dedupe_key, f"{bureau_time(letter.send_at):%Y%m%dT%H%M}")
        return self._mail(kind=letter.kind, key=letter.dedupe_key, mid=mid, to=planned.to, cc=planned.cc,
                          subject=subject, text=text, now=now, attachments=attachments)

    def remind(self, now: dt.datetime) -> RemindRun:
        """Queue every reminder and overdue letter due at `now` that was not queued before."""
        run = RemindRun()
        planned = self.plan(now, run.gaps)
        for gap in run.gaps:
            log.warning("reminders skipped for a year with no holiday schedule: %s", gap)
        sendable = []
        for p in planned:
            if p.to:
                sendable.append(p)
                continue
            run.unaddressed.append(p)
            log.warning("%s has no address in %s: %s %s not sent (listed in the credit section's digest)",
                        p.section, self.config.file, p.kind, p.dedupe_key)
        for p, sent in zip(sendable, self._queue([self.letter_mail(p, now) for p in sendable], now)):
            (run.queued if sent.created else run.already).append(p)
        return run

    # ------------------------------------------------------------ the credit section's digest

    def remind_now(self, period: str, now: dt.datetime, key: str) -> tuple[list[Sent], list[str]]:
        """The credit section's 催报: one letter now to every section still owing an item of
        `period` (not sent, rejected and not sent again, or a reused file), a reminder before its
        due date and an overdue notice after it. Queued under `key` (the request), so the same
        request twice sends nothing twice. Returns (queued, sections with no address)."""
        now = bureau_time(now)
        owed = [c for c in self.status(period, now)
                if c.state in ("missing", "rejected", "reused", "not_due") and c.due is not None]
        items = []
        for c in owed:
            due = c.due.date() if isinstance(c.due, dt.datetime) else c.due
            kind = "overdue" if due < now.date() else "reminder"
            items.append(Reminder(kind, c.section, c.task, period, due, now,
                                  f"{kind}:{c.section}:{c.task}:{period}:{key}", "now",
                                  c.count if c.required else None, c.required))
        mails, unaddressed = [], []
        for letter in group_by_section(items):
            to = self.addresses(letter.section)
            if not to:
                unaddressed.append(letter.section)
                continue
            cc = tuple(a for a in self.credit if a not in to) if letter.kind == "overdue" else ()
            letter = dataclasses.replace(letter, dedupe_key=f"{letter.kind}:{letter.section}:{period}:{key}")
            mails.append(self.letter_mail(PlannedLetter(letter, to, cc), now))
        return self._queue(mails, now), list(dict.fromkeys(unaddressed))

    def digest_periods(self, day: dt.date) -> list[str]:
        """Periods with a monthly deadline in the DIGEST_DAYS days from `day` on (its last week)."""
        here = period_of(day)
        out = []
        for p in (add_months(here, -1), here, add_months(here, 1)):
            if any(d.kind == "monthly" and 0 <= (d.due - day).days < DIGEST_DAYS for d in self.deadlines(p)):
                out.append(p)
        return out

    def digest_mail(self, now: dt.datetime, unaddressed: Sequence[PlannedLetter] | None = None) -> OutgoingMail | None:
        """Today's digest for the credit section, or None (not a digest day, or before `send_at`)."""
        now = bureau_time(now)
        today = now.date()
        try:
            if now < self.send_time(today) or not self.calendar.is_workday(today):
                return None
            periods = set(self.digest_periods(today))
        except CalendarGapError as e:
            log.warning("no digest: %s", e)
            return None
        if unaddressed is None:
            unaddressed = [p for p in self.plan(now) if not p.to]
        unaddressed = [p for p in unaddressed if bureau_time(p.letter.send_at).date() == today]
        periods |= {r.period for p in unaddressed for r in p.letter.items if r.required is None}
        if not periods:
            return None
        if not self.credit:
            log.warning("the credit section %s has no address in %s: no digest", self.config.credit_section,
                        self.config.file)
            return None
        parts = []
        for period in sorted(periods):
            subs = self.submissions(period, now)
            parts.append((period, self.status(period, now, subs), subs))
        subject, text = digest_text(self.rules, parts, unaddressed, now, self.config.mailbox_name)
        key = f"digest:{today.isoformat()}"
        return self._mail(kind="digest", key=key, mid=self._message_id("digest", key, f"{today:%Y%m%d}"),
                          to=self.credit, subject=subject, text=text, now=now)

    def digest(self, now: dt.datetime, unaddressed: Sequence[PlannedLetter] | None = None) -> Sent | None:
        mail = self.digest_mail(now, unaddressed)
        return self._queue([mail], now)[0] if mail else None

    def completion(self, now: dt.datetime) -> list[Sent]:
        """The "all in" notice of the previous and the current period, once each, when it holds."""
        now = bureau_time(now)
        here = period_of(now)
        mails = []
        for period in (add_months(here, -1), here):
            cells = [c for c in self.status(period, now) if c.state != "not_applicable"]
            if not cells or any(c.state not in _DONE for c in cells):
                continue
            if not self.credit:
                log.warning("%s is all in, but the credit section has no address: no notice", period)
                continue
            subject, text = completion_text(self.rules, period, cells, now, self.config.mailbox_name,
                                            self._package_day_or_none(period))
            key = f"complete:{period}"
            mails.append(self._mail(kind="digest", key=key, mid=self._message_id("complete", key, period.replace("-", "")),
                                    to=self.credit, subject=subject, text=text, now=now))
        return self._queue(mails, now)

    # ------------------------------------------------------------ notices about the system itself

    def _notice(self, key: str, subject: str, text: str, now: dt.datetime) -> Sent | None:
        if not self.credit:
            log.warning("notice %s not sent: credit section %s has no address", key, self.config.credit_section)
            return None
        mid = self._message_id("notice", key, f"{bureau_time(now):%Y%m%d}")
        return self._queue([self._mail(kind="digest", key=key, mid=mid, to=self.credit, subject=subject,
                                       text=text, now=now)], now)[0]

    def calendar_notice(self, now: dt.datetime) -> Sent | None:
        """Tell the credit section, once per year, that the year's holiday schedule is missing."""
        notice = calendar_gap_notice(bureau_time(now).date(), self.calendar, credit_section=self.config.credit_section)
        if notice is None:
            return None
        year, subject, text = notice
        return self._notice(f"calendar-warning:{year}", subject, text, now)

    def duty_failed(self, duty: str, reason: str, now: dt.datetime) -> Sent | None:
        """Tell the credit section a scheduled duty could not be done (once per duty and day)."""
        subject, text = duty_failed_notice(duty, reason, now, credit_section=self.config.credit_section)
        return self._notice(f"duty-failed:{duty}:{bureau_time(now):%Y-%m-%d}", subject, text, now)

    # ------------------------------------------------------------ the monthly package

    def last_deadline(self, period: str) -> dt.date:
        """The period's last deadline: its monthly ones and its per-month count (the month's end)."""
        dues = [d.due for d in self.deadlines(period)
                if d.kind == "monthly" or (d.kind == "count" and d.per == "month")]
        dues = [d.date() if isinstance(d, dt.datetime) else d for d in dues]
        return max(dues) if dues else period_last_day(period)

    def package_day(self, period: str) -> dt.date:
        """The working day after the period's last deadline (CalendarGapError for an unknown year)."""
        return self.calendar.add_workdays(self.last_deadline(period), 1)

    def _package_day_or_none(self, period: str) -> dt.date | None:
        try:
            return self.package_day(period)
        except CalendarGapError:
            return None

    def build(self, period: str, now: dt.datetime) -> tuple[bytes, bytes, int]:
        """The package workbook and the evidence zip of `period` as of `now`; and the zip's file count."""
        parse_period(period)
        now = bureau_time(now)
        subs = self.submissions(period, now)
        cells = self.status(period, now, subs)
        xlsx = build_package(self.rules, period, subs, cells, generated_at=now)
        files = [(s.section, s.task, s.filename, self.store.read_file(s.sha256)) for s in subs if s.current]
        return xlsx, build_evidence_zip(self.rules, period, files), len(files)

    def write(self, period: str, out: Path, now: dt.datetime) -> tuple[Path, Path]:
        """Write the package to `out` and the evidence zip beside it (named by evidence_zip_filename)."""
        xlsx, zipped, _ = self.build(period, now)
        out = Path(out)
        zip_path = out.with_name(evidence_zip_filename(period))
        write_atomically(out, xlsx, mode=0o600)
        write_atomically(zip_path, zipped, mode=0o600)
        return out, zip_path

    def package_dir(self, period: str) -> Path:
        return Path(self.config.storage) / "packages" / period

    def stored_package(self, period: str, now: dt.datetime) -> tuple[Path, Path, bool]:
        """The package of `period` under storage/packages/YYYY-MM/: written once (True), then reused."""
        folder = self.package_dir(period)
        xlsx, zipped = folder / package_filename(period), folder / evidence_zip_filename(period)
        if xlsx.exists() and zipped.exists():
            return xlsx, zipped, False
        data, zip_data, _ = self.build(period, now)
        write_atomically(zipped, zip_data, replace=False, mode=0o600)
        write_atomically(xlsx, data, replace=False, mode=0o600)
        return xlsx, zipped, True

    def package_mail(self, period: str, xlsx: Path, zipped: Path, now: dt.datetime, *, key: str,
                     stamp: str) -> OutgoingMail:
        """The mail to the credit section carrying the package (and the zip, unless it is too big)."""
        now = bureau_time(now)
        subs = self.submissions(period, now)
        cells = self.status(period, now, subs)
        rates = dual_publicity_rates(self.rules, period, subs)
        zip_bytes = zipped.read_bytes()
        attach_zip = len(zip_bytes) <= MAX_ATTACHMENT_BYTES
        subject, text = package_text(self.rules, period, cells, rates, now, self.config.mailbox_name,
                                     package_filename(period), zipped,
                                     zip_attached=attach_zip, zip_size=len(zip_bytes),
                                     storage=Path(self.config.storage))
        attachments = [(package_filename(period), xlsx.read_bytes(), XLSX_MIME)]
        if attach_zip:
            attachments.append((zipped.name, zip_bytes, ZIP_MIME))
        else:
            log.warning("evidence zip of %s is %d bytes: not attached, kept at %s", period, len(zip_bytes), zipped)
        return self._mail(kind="package", key=key, mid=self._message_id("package", key, stamp), to=self.credit,
                          subject=subject, text=text, now=now, attachments=attachments)

    def send_package(self, period: str, xlsx: Path, zipped: Path, now: dt.datetime) -> Sent:
        """Queue the package built on demand (mailbot summary --send): a new mail every time."""
        now = bureau_time(now)
        if not self.credit:
            raise LookupError(f"the credit section {self.config.credit_section} has no address in {self.config.file}")
        stamp = f"{now:%Y%m%dT%H%M%S}"
        mail = self.package_mail(period, xlsx, zipped, now, key=f"package:{period}:sent:{now.isoformat()}",
                                 stamp=f"{period.replace('-', '')}.{stamp}")
        return self._queue([mail], now)[0]

    def _month_mail_due(self, now: dt.datetime, day_of: Any, what: str) -> list[str]:
        """The periods whose once-a-month mail (package, bulletin) is due by `now`: from `send_at` on
        `day_of(period)`, within `overdue_grace_workdays` working days (a run missed while down)."""
        here = period_of(now)
        out = []
        for period in (add_months(here, -2), add_months(here, -1), here):
            if self.last_deadline(period) >= now.date():
                continue                              # not over yet (and no calendar asked about later days)
            try:
                day = day_of(period)
            except CalendarGapError as e:
                log.warning("%s of %s: %s", what, period, e)
                continue
            if self.send_time(day) > now:
                continue
            if self.calendar.workdays_between(day, now.date()) > self.settings.overdue_grace_workdays:
                continue
            out.append(period)
        return out

    def scheduled_packages(self, now: dt.datetime) -> list[Sent]:
        """The packages due by `now`: from `send_at` on the package day, within the grace (once each)."""
        now = bureau_time(now)
        out = []
        for period in self._month_mail_due(now, self.package_day, "package"):
            if not self.credit:
                log.warning("package of %s due, but the credit section has no address", period)
                continue
            xlsx, zipped, written = self.stored_package(period, now)
            if written:
                log.info("package of %s written to %s", period, xlsx.parent)
            key = f"package:{period}"
            out += self._queue([self.package_mail(period, xlsx, zipped, now, key=key, stamp=period.replace("-", ""))],
                               now)
        return out

    # ------------------------------------------------------------ the 调度通报 to every section

    def collected(self, period: str, subs: Sequence[StoredSubmission]) -> bool:
        """Whether mailbot collected `period`: not before `tracking_since`, and (without it) at least
        one submission of any section in the store. A month before mailbot ran is neither announced
        to the sections nor chased."""
        since = self.config.tracking_since
        if since:
            return not Period.parse(period) < Period.parse(since)
        return bool(subs)

    def bulletin_day(self, period: str) -> dt.date:
        """`bulletin.workdays_after_last_deadline` working days after the period's last deadline
        (default 1: the package's day)."""
        return self.calendar.add_workdays(self.last_deadline(period), self.config.bulletin.workdays_after_last_deadline)

    def bulletin(self, period: str, now: dt.datetime, *, key: str | None = None) -> list[Sent]:
        """Queue the 调度通报 of `period` as of `now`: To every section's registered addresses, the
        credit section's in Cc. Key "bulletin:YYYY-MM" (once per month); a caller passing `key`
        (the credit section's 通报 command) gets its own mail under that key, whatever went before.
        [] where no section has an address."""
        parse_period(period)
        now = bureau_time(now)
        credit = self.config.credit_section
        to = tuple(dict.fromkeys(a for s in self.rules.sections if s.id != credit for a in self.addresses(s.id)))
        cc = tuple(a for a in self.credit if a not in to)
        if not to:
            to, cc = cc, ()
        if not to:
            log.warning("bulletin of %s not sent: no section has an address in %s", period, self.config.file)
            return []
        unaddressed = [s.id for s in self.rules.sections if not self.addresses(s.id)]
        if unaddressed:
            log.warning("bulletin of %s: %s have no address in %s", period, ", ".join(unaddressed), self.config.file)
        subject, text = bulletin_text(self.rules, period, self.status(period, now), now,
                                      mailbox_name=self.config.mailbox_name,
                                      mailbox_address=self.config.mailbox_address, unaddressed=unaddressed)
        stamp = period.replace("-", "") + ("" if key is None else f".{now:%Y%m%dT%H%M%S}")
        key = key or f"bulletin:{period}"
        return self._queue([self._mail(kind="bulletin", key=key, mid=self._message_id("bulletin", key, stamp),
                                       to=to, cc=cc, subject=subject, text=text, now=now)], now)

    def scheduled_bulletins(self, now: dt.datetime) -> list[Sent]:
        """The bulletins due by `now` (bulletin_day, as the package: within the grace), once each;
        none where `bulletin.enabled` is false or the month was not collected."""
        now = bureau_time(now)
        if not self.config.bulletin.enabled:
            return []
        out = []
        for period in self._month_mail_due(now, self.bulletin_day, "bulletin"):
            if self.collected(period, self.submissions(period, now)):
                out += self.bulletin(period, now)
        return out

    # ------------------------------------------------------------ escalation to a section's head

    def escalation_start(self, due: dt.date | dt.datetime) -> dt.date:
        """The first day of escalation for an item due `due`: once `escalate_after_workdays` working
        days have passed with it still missing, the next working day (due 30 November 2026, 3 days:
        Friday 4 December, the day after the last overdue notice)."""
        due = bureau_date(due)
        return self.calendar.add_workdays(due, self.settings.escalate_after_workdays + 1)

    def _weekly(self, anchor: dt.date, week: int) -> dt.date:
        day = anchor + dt.timedelta(days=7 * week)
        while not self.calendar.is_workday(day):
            day += dt.timedelta(days=1)
        return day

    def escalations_due(self, now: dt.datetime) -> list[Escalation]:
        """The escalation notices due at `now` (see the module docstring): per section and period,
        the latest weekly slot from the first escalation on, listing what is still owed then."""
        now = bureau_time(now)
        closed = self.store.closed_periods()
        here = period_of(now)
        order = {s.id: i for i, s in enumerate(self.rules.sections)}
        out: list[Escalation] = []
        for period in (add_months(here, -k) for k in range(ESCALATION_MONTHS, -1, -1)):
            if period in closed and bureau_time(closed[period][0]) <= now:
                continue
            subs = self.submissions(period, now)
            if not self.collected(period, subs):
                continue
            try:
                out += self._escalations_of(period, self.status(period, now, subs), now)
            except CalendarGapError as e:
                log.warning("escalation of %s: %s", period, e)
        out.sort(key=lambda e: (e.period, order.get(e.section, len(order)), e.section))
        return out

    def _escalations_of(self, period: str, cells: Sequence[Cell], now: dt.datetime) -> list[Escalation]:
        by: dict[str, list[tuple[Cell, dt.date]]] = {}
        for c in cells:
            if c.due is not None and c.state not in ("not_applicable", "not_due"):
                by.setdefault(c.section, []).append((c, self.escalation_start(c.due)))
        out = []
        for section, mine in by.items():
            # the week's rhythm starts at the first item that was still missing on its escalation day
            started = [start for c, start in mine
                       if (c.state in OWED and self.send_time(start) <= now)
                       or (c.state not in OWED and c.submitted_at is not None
                           and c.submitted_at > self.send_time(start))]
            if not started:
                continue
            anchor = min(started)
            week = (now.date() - anchor).days // 7
            slot = self._weekly(anchor, week)
            if self.send_time(slot) > now:
                if week == 0:
                    continue
                week -= 1
                slot = self._weekly(anchor, week)
            items = tuple((c, self.calendar.workdays_between(bureau_date(c.due), now.date()))
                          for c, start in mine if c.state in OWED and start <= slot)
            if items:
                out.append(Escalation(section, period, self.send_time(slot), week + 1, items,
                                      f"escalation:{section}:{period}:{slot.isoformat()}"))
        return out

    def escalation_mail(self, e: Escalation, now: dt.datetime) -> OutgoingMail | None:
        """The notice to the section's head and staff, the credit section in Cc (module docstring)."""
        head = self.config.section_heads.get(e.section)
        to = tuple(dict.fromkeys(([head] if head else []) + list(self.addresses(e.section))))
        cc = tuple(a for a in self.credit if a not in to)
        reachable = bool(to)
        if not reachable:
            to, cc = self.credit, ()
            log.warning("%s has no address in %s: escalation %s goes to the credit section", e.section,
                        self.config.file, e.dedupe_key)
        if not to:
            log.warning("escalation %s not sent: neither %s nor the credit section has an address", e.dedupe_key,
                        e.section)
            return None
        subject, text = escalation_text(e.section, e.items, self.rules, now, round_no=e.round_no,
                                        has_head=head is not None, reachable=reachable,
                                        mailbox_name=self.config.mailbox_name,
                                        mailbox_address=self.config.mailbox_address)
        mid = self._message_id("escalation", e.dedupe_key, f"{bureau_time(e.send_at):%Y%m%d}")
        return self._mail(kind="escalation", key=e.dedupe_key, mid=mid, to=to, cc=cc, subject=subject, text=text,
                          now=now)

    def escalations(self, now: dt.datetime) -> list[Sent]:
        """Queue the escalation notices due at `now`, each once (key per section, period and week)."""
        mails = [m for m in (self.escalation_mail(e, now) for e in self.escalations_due(now)) if m is not None]
        return self._queue(mails, now)

    # ------------------------------------------------------------ the year

    def score(self, year: int, now: dt.datetime) -> tuple[list[ScoreRow], bytes]:
        """The year-end score rows and workbook of `year` as of `now` (the whole year once it is over)."""
        now = bureau_time(now)
        subs = {f"{year:04d}-{m:02d}": self.submissions(f"{year:04d}-{m:02d}", now) for m in range(1, 13)}
        today = dt.date(year + 1, 1, 1) if now.year > year else now.date()
        rows = year_score(self.rules, year, subs, self.calendar, today=today, shift=self.shift,
                          tracking_since=self.config.tracking_since)
        return rows, build_score(self.rules, year, rows, generated_at=now)
