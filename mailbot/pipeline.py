"""The intake, top to bottom: fetch → archive → parse → screen → examine → classify → validate → judge → store → reply.

`process()` is the only function with side effects: it archives the raw bytes first, runs the
pure `decide()`, and records the verdict and the drafted reply in one transaction. A message
that crashes any stage is shunted (kept with its stage and traceback for a person) and ends
quarantined; the caller moves on. Fetching and sending live at the edges (mailbox.py, sender.py).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import traceback
from email.utils import parseaddr
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from mailbot.dates.workdays import WorkCalendar
from mailbot.dates.period import period_of
from mailbot.dates.zone import bureau_time, iso, zh_time
from mailbot.failpoints import failpoint
from mailbot.desk import commands
from mailbot.intake import classify, judge, parse, screen, trust
from mailbot.intake.examine import Examined, cover_value, examine, looks_like_submission, validate_task
from mailbot.model import Authentication, Classification, Evidence, Incoming, ItemResult, Outcome, OutgoingMail, Replaced, Rules, Verdict
from mailbot.writing.receipt import draft_reply, resent_letter

__all__ = ["Intake", "IntakeStore", "TemplateFor", "decide", "prepare", "Prepared", "process", "confirm", "refile_item",
           "Processed"]

log = logging.getLogger("mailbot.pipeline")


@dataclass(frozen=True)
class Intake:
    """What decide() needs besides the message: the rules, who is who, the calendar."""
    rules: Rules
    calendar: WorkCalendar
    address_sections: dict[str, str]          # lower-case address -> section id
    own_addresses: frozenset[str]
    mailbox_address: str
    mailbox_name: str = "信用监管科"
    replies_per_sender_per_hour: int | None = 10
    authentication: Authentication | None = None   # which Authentication-Results to believe, if any
    credit_section: str | None = None         # the section whose registered addresses may give commands

    def section_of(self, address: str) -> str | None:
        return self.address_sections.get(address.strip().lower())

    def addresses_of(self, section: str) -> tuple[str, ...]:
        return tuple(a for a, s in self.address_sections.items() if s == section)


TemplateFor = Callable[[str, str], tuple[str, bytes]]
"""(section, period) -> the blank workbook's (file name, bytes), attached where it helps."""


class IntakeStore(Protocol):
    """What process() and confirm() need of the store (mailbot.store.Store is one)."""

    def archive_raw(self, raw: bytes) -> str: ...
    def read_raw(self, sha256: str) -> bytes: ...
    def find_message(self, message_id: str, raw_sha256: str) -> Any: ...
    def prior_submissions(self, sha256s: Iterable[str]) -> list[Any]: ...
    def auto_replies_since(self, address: str, since: dt.datetime, *, kinds: Sequence[str] = ...) -> int: ...
    def record(self, *, incoming: Incoming, raw_sha256: str, received_at: dt.datetime, source: str,
               verdict: Verdict, outbox: Callable[..., list[Any]], now: dt.datetime) -> Any: ...
    def record_failure(self, raw_sha256: str, source: str, stage: str, error: str, traceback: str) -> Any: ...
    def message_detail(self, ref: int | str) -> Any: ...
    def queue(self, mails: Iterable[Any], *, now: dt.datetime | None = None, message_ref: int | None = None) -> Any: ...
    def confirm_quarantined(self, ref: int | str, *, verdict: Verdict, outbox: Callable[..., list[Any]],
                            now: dt.datetime) -> Any: ...
    def letter(self, mail_message_id: str) -> Any: ...


# ---------------------------------------------------------------- the pure part

def decide(incoming: Incoming, intake: Intake, received_at: dt.datetime,
           prior: Sequence[Any] = (), section_override: str | None = None) -> Verdict:
    """Everything about one message that needs no I/O: the verdict for it and each of its files.

    `prior` lists earlier submissions of the same files (store.PriorSubmission), for the plan's
    严禁弄虚作假: a file already accepted for another month is told and never counted, or refused
    where its task's `reused_file` says reject.
    """
    screened = screen.screen(incoming, intake.own_addresses)
    if screened and screened.code != screen.PERSON_REPLY:
        return _unread(judge.ignore(f"{screened.code}: {screened.reason}"), incoming)
    if section_override is None and (command := _command(incoming, intake, received_at)) is not None:
        return command
    if screened:
        return _unread(_person_reply(incoming, intake, screened), incoming)
    return _unread(_decide(incoming, intake, received_at, prior, section_override), incoming)


def _trusted_section(incoming: Incoming, intake: Intake) -> str | None:
    """The sender's section where the sender can be believed: a registered address, a clean From,
    and (where configured) the bureau's own server vouching for it."""
    section = intake.section_of(incoming.from_addr)
    if section is None or incoming.sender_problems:
        return None
    if intake.authentication and trust.authentication_problem(incoming, intake.authentication):
        return None
    return section


def _command(incoming: Incoming, intake: Intake, received_at: dt.datetime) -> Verdict | None:
    """A desk command (desk/commands.py) from someone who may give it: any from the credit
    section's addresses, 查询 from a section's. Anything else is ordinary mail."""
    command = commands.read_command(incoming, intake.rules, received_at.date())
    if command is None:
        return None
    section = _trusted_section(incoming, intake)
    if section is None or (section != intake.credit_section and command.name != "query"):
        return None
    if command.error and any(not a.inline for a in incoming.attachments) and command.name != "holidays":
        return None     # a subject that merely starts like a command, on a mail with files: a submission
    return Verdict(Outcome.COMMAND, f"command {command.name}" + (" (not readable)" if command.error else ""),
                   section, recipients=(incoming.from_addr,), command=command)


def _person_reply(incoming: Incoming, intake: Intake, screened: Any) -> Verdict:
    """A reply to one of our letters, with no file, that no machine wrote: a person's words, for a
    person of the credit section. The credit section's own remarks, and a sender that cannot be
    believed, are only recorded."""
    section = intake.section_of(incoming.from_addr)
    if incoming.sender_problems or not incoming.from_addr or (section and section == intake.credit_section):
        return judge.ignore(f"{screened.code}: {screened.reason}")
    if intake.authentication and section and trust.authentication_problem(incoming, intake.authentication):
        return judge.ignore(f"{screened.code}: {screened.reason}; and the sender's domain did not vouch for it")
    thread = screen.our_letter(incoming, intake.own_addresses)
    return Verdict(Outcome.FORWARDED, f"a person's reply ({screened.reason}): passed to the credit section",
                   section, recipients=(incoming.from_addr,), thread=thread)


def _unread(verdict: Verdict, incoming: Incoming) -> Verdict:
    """What parsing could not read (files over a limit, a structure too complex) is told with the verdict,
    in the letter and the record (ignored mail too: no letter, but the record says it); a message with
    files left unread is at most partly accepted."""
    if not incoming.problems:
        return verdict
    outcome, reason = verdict.outcome, verdict.reason
    if outcome is Outcome.ACCEPTED and any(p.is_error for p in incoming.problems):
        outcome = Outcome.PARTIALLY_ACCEPTED
        reason += "; but part of the message was not read: " + ", ".join(p.code for p in incoming.problems)
    return replace(verdict, outcome=outcome, reason=reason, problems=(*incoming.problems, *verdict.problems))


def _decide(incoming: Incoming, intake: Intake, received_at: dt.datetime, prior: Sequence[Any],
            section_override: str | None) -> Verdict:
    rules, received = intake.rules, received_at.date()
    files = [examine(a, rules) for a in incoming.attachments if not a.inline]
    decision = _section(incoming, intake, files, section_override)
    if (decision.section is None and not decision.notify
            and not looks_like_submission(files, incoming.subject, rules)):
        return judge.ignore(f"unregistered sender {incoming.from_addr or '(none)'}; "
                            "nothing in the message resembles a submission")
    if not files:
        verdict = judge.without_files(incoming.subject, decision, rules, received)
    else:
        items = _items(files, incoming.subject, incoming.text, intake, decision.section, received, prior)
        items += [judge.skipped(a) for a in incoming.attachments if a.inline]
        outcome, reason = judge.outcome(items, decision)
        verdict = Verdict(outcome, reason, decision.section, decision.evidence, tuple(items),
                          judge.message_problems(decision), attach_template=judge.attach_template(items, decision))
    return _addressed(verdict, incoming, intake, decision, section_override)


def _section(incoming: Incoming, intake: Intake, files: Sequence[Examined],
             section_override: str | None) -> classify.SectionDecision:
    if section_override:
        # a person of the credit section confirmed it: their word settles the section
        return classify.SectionDecision(section_override, (Evidence(
            "section", section_override, "person", f"经信用监管科人工确认为{section_override}"),))
    suspicious = list(incoming.sender_problems)
    if intake.authentication and intake.section_of(incoming.from_addr) and not suspicious:
        if p := trust.authentication_problem(incoming, intake.authentication):
            suspicious.append(p)
    if suspicious:
        claimed = trust.claimed_sections(incoming.from_claims or (incoming.from_addr,), intake.section_of)
        return classify.suspicious_sender(incoming.from_addr, suspicious, claimed)
    covers = [str(v[0]) for f in files if (v := cover_value(f.cover, "报送科室")) and v[0]]
    return classify.decide_section(incoming.from_addr, intake.section_of(incoming.from_addr), covers, intake.rules)


def _addressed(verdict: Verdict, incoming: Incoming, intake: Intake, decision: classify.SectionDecision,
               section_override: str | None) -> Verdict:
    """Where the answer goes: the From address, or Reply-To / Mail-Followup-To only where they are
    registered to the sender's own section (the letter names any it ignored); a section whose
    address a suspicious message claims gets a copy of the quarantine notice."""
    if not verdict.reply:
        return verdict
    home = section_override or (None if decision.problems else intake.section_of(incoming.from_addr))
    to, note = trust.reply_targets(incoming, home, intake.section_of)
    cc = tuple(a for s in decision.notify for a in intake.addresses_of(s) if a not in to)
    return replace(verdict, recipients=to, copy_to=cc, problems=verdict.problems + ((note,) if note else ()))


def _items(files: Sequence[Examined], subject: str, body: str, intake: Intake, section: str | None,
           received: dt.date, prior: Sequence[Any]) -> list[ItemResult]:
    """One item per (file, task): classified, validated, judged."""
    by_sha: dict[str, list[Any]] = {}
    for p in prior or ():
        by_sha.setdefault(p.sha256, []).append(p)
    siblings: list[int] = []
    items: list[ItemResult] = []
    # workbooks first: a photo sent beside its workbook takes the workbook's task
    for f in sorted(files, key=lambda f: 0 if f.matches else 1):
        classes = _classify(f, subject, body, received, intake.rules, siblings)
        if f.matches:
            siblings += [c.task for c in classes if c.task is not None]
        items += [_item(f, c, intake, section, received, by_sha.get(f.sha256, ())) for c in classes]
    return items


def _classify(f: Examined, subject: str, body: str, received: dt.date, rules: Rules,
              siblings: Sequence[int]) -> list[Classification]:
    cover_p = None
    if (cv := cover_value(f.cover, "报送月份")) and (p := classify.period_of_value(cv[0], received)):
        cover_p = (p, cv[1])
    return classify.classify_file(
        filename=f.attachment.filename, kind=f.kind, sheet_tasks=[(m.spec.task, m.table) for m in f.matches],
        cover_period=cover_p, subject=subject, received=received, rules=rules, sibling_tasks=siblings, body=body)


def _item(f: Examined, c: Classification, intake: Intake, section: str | None, received: dt.date,
          priors: Sequence[Any]) -> ItemResult:
    rules, att = intake.rules, f.attachment
    refusal = None if f.problems else judge.file_refusal(f.kind, f.description, att.filename, att.size)
    refused = refusal is not None or any(p.is_error for p in f.problems)
    # a file refused for what it is (damaged, empty, a program, a bomb) is told that, not that its
    # task could not be found: the task is no matter until the file itself is right
    problems = [*f.problems, *(p for p in c.problems if not (refused and p.code == "task-unknown"))]
    if refusal:
        problems.append(refusal)
    rows, data, sheets = 0, {}, ()
    if c.task is not None:
        # a file examine() already refused keeps that precise refusal, not a generic wrong kind
        wrong_kind = None if refused else judge.kind_problem(f.kind, f.description, att.filename, c.task, rules)
        if wrong_kind:
            problems.append(wrong_kind)
        elif f.workbook is not None and not any(p.is_error for p in f.problems):
            more, rows, data, sheets = validate_task(f, c.task, rules, intake.calendar)
            problems += more
        if p := judge.not_assigned(c.task, section, rules):
            problems.append(p)
    task = rules.task(c.task) if c.task is not None else None
    if p := judge.same_file_other_period(att.filename, judge.earlier_submission(priors, c.period), c.period,
                                         task.reused_file if task else "warn"):
        problems.append(p)
    status = judge.item_status(problems, c.task)
    due, on_time = judge.deadline(c.task, c.period, status, received, rules)
    return ItemResult(filename=att.filename, kind=f.kind, sha256=f.sha256, task=c.task, period=c.period,
                      status=status, problems=tuple(problems), evidence=c.evidence, rows=rows, sheets=sheets,
                      origin=att.origin, data=data, due=due, on_time=on_time)


@dataclass(frozen=True)
class Prepared:
    """A message parsed and decided ahead of its turn, as if the store knew none of its files: the
    work app/ahead.py gives the other cores while the one before it is recorded. process() takes
    the verdict where the store indeed knows none of them, and decides again where it does."""
    raw_sha256: str
    received_at: dt.datetime
    incoming: Incoming
    verdict: Verdict
    calendar_generation: int          # the working-day calendar it was decided with (WorkCalendar.generation)

    @property
    def may_share_a_commit(self) -> bool:
        """Whether recording it can wait for a group commit (Store.batch) with others: ordinary mail.
        A command acts at the desk and a person's reply looks up our letters; each goes alone."""
        return self.verdict.outcome not in (Outcome.COMMAND, Outcome.FORWARDED)

    def holds_for(self, sha: str, received_at: dt.datetime, intake: Intake) -> bool:
        """Made for these bytes, this moment (and its zone: the verdict uses its date) and the
        calendar as it is now (a holiday schedule loaded since changes deadlines)."""
        return (self.raw_sha256 == sha and self.received_at == received_at
                and self.received_at.utcoffset() == received_at.utcoffset()
                and self.calendar_generation == intake.calendar.generation)


def prepare(raw: bytes, intake: Intake, received_at: dt.datetime) -> Prepared:
    """parse + decide for one message, with no store: pure."""
    incoming = parse.parse_message(raw, limits=intake.rules.limits)
    return Prepared(hashlib.sha256(raw).hexdigest(), received_at, incoming, decide(incoming, intake, received_at),
                    intake.calendar.generation)


# ---------------------------------------------------------------- the part with side effects

@dataclass(frozen=True)
class Processed:
    """What happened to one message, for the CLI and the daemon's log."""
    message_id: str
    raw_sha256: str
    outcome: str
    reason: str
    section: str | None
    receipt_no: str | None
    items: tuple[dict[str, Any], ...]
    reply: dict[str, Any] | None
    duplicate: bool = False
    crashed_at: str | None = None     # the stage that raised: shunted for a person, not decided
    command: str | None = None        # outcome "command": the action's id, and whether it was done
    ok: bool | None = None
    decided_ahead: bool = False       # its verdict is the one a worker made (app/ahead.py)

    def as_dict(self) -> dict[str, Any]:
        d = {"message_id": self.message_id, "outcome": self.outcome, "section": self.section,
             "reason": self.reason, "receipt_no": self.receipt_no, "items": list(self.items),
             "reply": self.reply, "duplicate": self.duplicate}
        if self.command is not None:
            d.update(command=self.command, ok=self.ok)
        return d


def _reply_drafter(verdict: Verdict, incoming: Incoming, intake: Intake, received_at: dt.datetime,
                   now: dt.datetime, template_for: TemplateFor | None, drafted: dict[str, Any]):
    """The outbox callable store.record runs inside its transaction, once the receipt number exists;
    `drafted` receives the reply's address and subject for the caller's report."""
    template = None
    if verdict.attach_template and verdict.section and template_for is not None:
        template = template_for(verdict.section, _period_for_template(verdict, incoming.subject, received_at.date()))

    def outbox(receipt_no: str, replaced: Sequence[Replaced] = ()) -> list[Any]:
        v = verdict
        others = [r for r in replaced if r.from_addr.lower() != (incoming.from_addr or "").lower()]
        if others and v.section:
            # replacing what another address of the section sent: every registered address hears of it
            to = {a.lower() for a in (v.recipients or (incoming.from_addr,))}
            section_addresses = tuple(a for a, s in intake.address_sections.items()
                                      if s == v.section and a.lower() not in to)
            v = replace(v, copy_to=tuple(dict.fromkeys(v.copy_to + section_addresses)))
        letter = draft_reply(verdict=v, incoming=incoming, receipt_no=receipt_no, rules=intake.rules,
                             mailbox_address=intake.mailbox_address, mailbox_name=intake.mailbox_name,
                             received_at=received_at, now=now, template=template, replaced=tuple(replaced))
        if letter is None:
            return []
        drafted["reply"] = {"to": [r for r in letter.recipients if r not in v.copy_to],
                            "cc": [r for r in letter.recipients if r in v.copy_to],
                            "subject": letter.subject, "message_id": letter.message_id}
        return [OutgoingMail(kind=letter.kind, recipients=letter.recipients, subject=letter.subject,
                             mail_message_id=letter.message_id, raw=letter.raw)]
    return outbox


# How a reason records that the cap withheld the answer (`mailbot outbox list --state withheld` shows them).
WITHHELD_NOTE = "no reply:"


def _apply_reply_cap(verdict: Verdict, incoming: Incoming, intake: Intake, store: Any, now: dt.datetime) -> Verdict:
    """Draft no reply once an address has had its hourly share: a misbehaving auto-responder
    must not start a loop. The message is still recorded; only the answer is withheld."""
    cap = intake.replies_per_sender_per_hour
    if not verdict.reply or verdict.outcome is Outcome.IGNORED or cap is None:
        return verdict
    # A registered section sending files always gets its receipt: the cap is for loops, and a
    # section's eleventh real submission in an hour (month-end) is no loop.
    if verdict.section and verdict.outcome is not Outcome.QUARANTINED and \
            any(i.status != "skipped" for i in verdict.items) and not incoming.sender_problems:
        return verdict
    targets = (verdict.recipients + verdict.copy_to) or (incoming.from_addr,)
    if verdict.outcome is Outcome.REJECTED and not verdict.items:
        # a mail without files is told so once a day: the second such rejection would answer an echo
        day_start = dt.datetime.combine(bureau_time(now).date(), dt.time.min, bureau_time(now).tzinfo)
        for to in targets[:1]:
            if to and store.auto_replies_since(to, day_start, kinds=("rejection",)) >= 1:
                return replace(verdict, reply=False,
                               reason=f"{verdict.reason}; {WITHHELD_NOTE} {to} was already told today that a mail "
                                      f"had no files")
    # every address the reply would reach, copies included: a forger must not flood a section by Cc
    for to in targets:
        if to and store.auto_replies_since(to, now - dt.timedelta(hours=1)) >= cap:
            return replace(verdict, reply=False,
                           reason=f"{verdict.reason}; {WITHHELD_NOTE} {to} already had {cap} automatic replies this hour")
    return verdict


def _answer_resent(existing: Any, incoming: Incoming, intake: Intake, store: IntakeStore, sha: str, source: str,
                   now: dt.datetime) -> dict[str, Any] | None:
    """The same bytes again. From the same place (a crash before the mailbox was settled, `ingest`
    run twice) it is a redelivery and gets nothing; as a new copy from a section's registered
    address, a clerk sent it again because unsure it arrived: say briefly that it did, once per copy."""
    if existing.source == source or not existing.section or intake.section_of(existing.from_addr) != existing.section:
        return None
    key = hashlib.sha256(f"{sha}\0{source}".encode()).hexdigest()[:12]
    letter = resent_letter(section=existing.section, to=[existing.from_addr], subject=incoming.subject,
                           message_id_in=incoming.message_id, references=incoming.references,
                           receipt_no=existing.receipt_no, first_received=existing.received_at,
                           outcome=existing.outcome, key=key, mailbox_address=intake.mailbox_address,
                           mailbox_name=intake.mailbox_name, now=now)
    [queued] = store.queue([OutgoingMail(kind=letter.kind, recipients=letter.recipients, subject=letter.subject,
                                         mail_message_id=letter.message_id, raw=letter.raw,
                                         dedupe_key=f"resent:{key}")], now=now, message_ref=existing.id)
    if not queued.created:                        # this copy was answered already
        return None
    return {"to": list(letter.recipients), "subject": letter.subject, "message_id": letter.message_id}


def _period_for_template(verdict: Verdict, subject: str, received: dt.date) -> str:
    """The month the answer is about, not the month it is written in: a November ledger rejected on
    3 December gets November's template (its items' month, else the one month its subject names)."""
    if verdict.template_period:
        return verdict.template_period
    for i in verdict.items:
        if i.period:
            return i.period
    named = classify.find_periods(subject, received)
    if len(named) == 1:
        return named[0][0]
    return period_of(received)


def process(raw: bytes, *, intake: Intake, store: IntakeStore, source: str, received_at: dt.datetime,
            now: dt.datetime, template_for: TemplateFor | None = None, desk: Any = None,
            prepared: Prepared | None = None) -> Processed:
    """Archive, decide, record and draft the reply for one raw message; never raises for bad mail.

    template_for(section, period) -> (filename, bytes) supplies the blank template attached to
    rejections where it helps. `desk` (mailbot.desk.Desk) runs the credit section's commands;
    without one a command is recorded, not done. `prepared` is this message already parsed and
    decided elsewhere (prepare()), used where it still holds.
    """
    sha = store.archive_raw(raw)                     # nothing happens before the bytes are safe
    failpoint("after-archive")
    if prepared is not None and not prepared.holds_for(sha, received_at, intake):
        prepared = None
    stage = "parse"
    incoming: Incoming | None = None
    ahead = False
    try:
        incoming = prepared.incoming if prepared is not None else parse.parse_message(raw, limits=intake.rules.limits)
        failpoint("after-parse")
        stage = "lookup"
        existing = store.find_message(incoming.message_id, sha)
        if existing is not None:
            reply = _answer_resent(existing, incoming, intake, store, sha, source, now)
            return Processed(incoming.message_id, sha, existing.outcome, "already processed: " + (existing.reason or ""),
                             existing.section, existing.receipt_no, (), reply, duplicate=True)
        prior = store.prior_submissions(hashlib.sha256(a.content).hexdigest() for a in incoming.attachments)
        stage = "decide"
        # decided ahead as if no file had been sent before: true only where the store says so
        ahead = prepared is not None and not prior
        verdict = prepared.verdict if ahead else decide(incoming, intake, received_at, prior)
        drafted: dict[str, Any] = {}
        ran = None
        if verdict.outcome is Outcome.COMMAND:
            stage = "command"           # done before it is recorded: every action is safe to repeat
            verdict, ran, outbox = _run_command(verdict, incoming, intake, desk, sha, now, drafted)
        elif verdict.outcome is Outcome.FORWARDED and (letter := _answered_letter(verdict, incoming, store)) is not None:
            stage = "reply"
            outbox = _forward_drafter(verdict, incoming, intake, store, letter, received_at, now, drafted)
        else:
            if verdict.outcome is Outcome.FORWARDED:      # names a letter we never sent this address
                verdict = judge.ignore(f"{verdict.reason.split(':')[0]}: but no letter of ours went to "
                                       f"{incoming.from_addr} under <{verdict.thread}>; not passed on")
            verdict = _apply_reply_cap(verdict, incoming, intake, store, now)
            stage = "reply"
            outbox = _reply_drafter(verdict, incoming, intake, received_at, now, template_for, drafted)
            if verdict.outcome is Outcome.QUARANTINED:
                outbox = _with_desk_notice(outbox, verdict, incoming, intake, received_at, now)
        stage = "store"
        failpoint("before-record")
        result = store.record(incoming=incoming, raw_sha256=sha, received_at=received_at, source=source,
                              verdict=verdict, outbox=outbox, now=now)
    except Exception as e:  # noqa: BLE001 - a crash on one message must never stop the intake
        tb = traceback.format_exc()
        log.error("message %s crashed at stage %s: %s", sha[:12], stage, e)
        store.record_failure(sha, source, stage, f"{type(e).__name__}: {e}", tb)
        mid = incoming.message_id if incoming else ""
        return Processed(mid, sha, Outcome.QUARANTINED.value, f"internal error at stage {stage}: {type(e).__name__}: {e}",
                         None, None, (), None, crashed_at=stage)
    items = _item_dicts(verdict)
    return Processed(incoming.message_id, sha, verdict.outcome.value, verdict.reason, verdict.section,
                     getattr(result, "receipt_no", None), items, drafted.get("reply"),
                     duplicate=bool(getattr(result, "duplicate", False)),
                     command=verdict.command.name if verdict.command else None,
                     ok=ran.ok if ran is not None else None, decided_ahead=ahead)


def _run_command(verdict: Verdict, incoming: Incoming, intake: Intake, desk: Any, sha: str, now: dt.datetime,
                 drafted: dict[str, Any]):
    """Do what a command mail asks at the desk (as the sender, by mail), and draft the answer."""
    from mailbot.desk import Actor, Answer
    from mailbot.writing.desk import answer_letter
    command = verdict.command
    role = "credit" if verdict.section == intake.credit_section else "section"
    actor = Actor(incoming.from_addr, role, verdict.section, "mail")
    # the request, not the bytes: the same mail delivered twice (another Received line, two aliases)
    # is one request, and what it changed or sent is not done again
    ref = "mail:" + hashlib.sha256(f"{incoming.message_id}\0{incoming.from_addr}".encode("utf-8")).hexdigest()[:32]
    done = desk.store.audit_entry(ref) if desk is not None else None
    if desk is None:
        ran = Answer(command.name, False, "not done: no desk in this program",
                     "    本程序未接入信用监管科工作台，指令未执行。")
    elif done is not None and done.ok and command.name not in commands.READ_ONLY and command.error is None:
        ran = Answer(command.name, True, f"done before, at {iso(done.at)}: {done.result}",
                     f"    该指令已于{zh_time(done.at)}执行，本次收到的是同一封邮件，未重复执行。")
    else:
        ran = commands.execute(desk, actor, command, incoming, now=now, ref=ref)
    verdict = replace(verdict, reason=f"command {command.name}: {ran.summary}")

    def outbox(receipt_no: str, replaced: Sequence[Replaced] = ()) -> list[Any]:
        letter = answer_letter(text=ran.text, ok=ran.ok, line=command.line, incoming=incoming, receipt_no=receipt_no,
                               to=verdict.recipients, name=verdict.section, mailbox_address=intake.mailbox_address,
                               mailbox_name=intake.mailbox_name, now=now, table=ran.html,
                               attachments=ran.attachments)
        drafted["reply"] = {"to": list(letter.recipients), "cc": [], "subject": letter.subject,
                            "message_id": letter.message_id}
        return [OutgoingMail(kind=letter.kind, recipients=letter.recipients, subject=letter.subject,
                             mail_message_id=letter.message_id, raw=letter.raw)]
    return verdict, ran, outbox


def _with_desk_notice(outbox: Callable[..., list[Any]], verdict: Verdict, incoming: Incoming, intake: Intake,
                      received_at: dt.datetime, now: dt.datetime) -> Callable[..., list[Any]]:
    """A message waiting for a person: the credit section is told, with the commands that settle
    it (whatever the cap did to the sender's notice)."""
    from mailbot.writing.desk import waiting_notice
    credit = intake.addresses_of(intake.credit_section) if intake.credit_section else ()
    if not credit:
        return outbox

    def both(receipt_no: str, replaced: Sequence[Replaced] = ()) -> list[Any]:
        letter = waiting_notice(receipt_no=receipt_no, from_addr=incoming.from_addr or "（无发件地址）",
                                subject=incoming.subject, received_at=received_at, guess=verdict.section,
                                problems=[p.message for p in verdict.problems if p.is_error] or ["发件人的身份无法确认"],
                                files=list(dict.fromkeys(i.filename for i in verdict.items)), to=credit,
                                credit_section=intake.credit_section, mailbox_address=intake.mailbox_address,
                                mailbox_name=intake.mailbox_name, now=now)
        return [*outbox(receipt_no, replaced),
                OutgoingMail(kind=letter.kind, recipients=letter.recipients, subject=letter.subject,
                             mail_message_id=letter.message_id, raw=letter.raw, dedupe_key=f"desk:{receipt_no}")]
    return both


def _answered_letter(verdict: Verdict, incoming: Incoming, store: IntakeStore) -> Any:
    """The letter of ours a person's reply answers, where we really sent it to that address: a
    made-up In-Reply-To must not make the bureau write to anyone (backscatter)."""
    sender = (incoming.from_addr or "").lower()

    def to_sender(letter: Any) -> bool:
        return sender in {parseaddr(r)[1].lower() for r in letter.recipients}
    if verdict.thread:
        letter = store.letter(verdict.thread)
        return letter if letter is not None and to_sender(letter) else None
    # a client that keeps no In-Reply-To: the receipt number its subject quotes
    for receipt_no in commands.thread_receipts(incoming):
        detail = store.message_detail(receipt_no)
        letters = [o for o in (detail.outbox if detail else ()) if to_sender(o)]
        if letters:
            return letters[0]
    return None


def _forward_drafter(verdict: Verdict, incoming: Incoming, intake: Intake, store: IntakeStore, letter: Any,
                     received_at: dt.datetime, now: dt.datetime, drafted: dict[str, Any]):
    """A person's reply: passed to the credit section (our letter it answers quoted), and its sender
    told, once per thread, that a person will answer — never in answer to that note itself, and
    within the hourly cap, so that no responder can start a ping-pong."""
    from mailbot.writing.desk import forward_ack, forward_to_credit
    original = _plain_text(letter.raw)
    credit = intake.addresses_of(intake.credit_section) if intake.credit_section else ()
    thread = hashlib.sha256((verdict.thread or incoming.message_id).encode("utf-8")).hexdigest()[:12]
    cap = intake.replies_per_sender_per_hour
    acknowledge = ".forwarded." not in (verdict.thread or "") and ".forwarded." not in (incoming.in_reply_to or "") \
        and (cap is None or store.auto_replies_since(incoming.from_addr, now - dt.timedelta(hours=1)) < cap)

    def outbox(receipt_no: str, replaced: Sequence[Replaced] = ()) -> list[Any]:
        mails = []
        if credit:
            fwd = forward_to_credit(incoming=incoming, section=verdict.section, receipt_no=receipt_no, original=original,
                                    to=credit, mailbox_address=intake.mailbox_address,
                                    mailbox_name=intake.mailbox_name, now=now, received_at=received_at,
                                    credit_section=intake.credit_section)
            mails.append(OutgoingMail(kind=fwd.kind, recipients=fwd.recipients, subject=fwd.subject,
                                      mail_message_id=fwd.message_id, raw=fwd.raw, dedupe_key=f"forward:{receipt_no}"))
        if acknowledge:
            ack = forward_ack(incoming=incoming, section=verdict.section, receipt_no=receipt_no, key=thread,
                              mailbox_address=intake.mailbox_address, mailbox_name=intake.mailbox_name, now=now,
                              received_at=received_at)
            mails.append(OutgoingMail(kind=ack.kind, recipients=ack.recipients, subject=ack.subject,
                                      mail_message_id=ack.message_id, raw=ack.raw, dedupe_key=f"forward-ack:{thread}"))
            drafted["reply"] = {"to": list(ack.recipients), "cc": [], "subject": ack.subject,
                                "message_id": ack.message_id}
        return mails
    return outbox


def _plain_text(raw: bytes) -> str | None:
    import email
    import email.policy
    body = email.message_from_bytes(raw, policy=email.policy.default).get_body(("plain",))
    return body.get_content() if body is not None else None


def refile_item(incoming: Incoming, intake: Intake, received_at: dt.datetime, prior: Sequence[Any],
                section: str, sha256: str, task: int, period: str) -> ItemResult:
    """One file of a message checked again as a person re-filed it: under `task` and `period`."""
    files = [examine(a, intake.rules) for a in incoming.attachments if not a.inline]
    f = next((f for f in files if f.sha256 == sha256), None)
    if f is None:
        raise LookupError(f"the message has no file {sha256[:12]}")
    c = Classification(task, period, (Evidence("task", str(task), "person", f"经信用监管科人工改判为任务{task}"),
                                      Evidence("period", period, "person", "经信用监管科人工改判")))
    prev = {p.sha256: p for p in prior}.get(sha256)
    return _item(f, c, intake, section, received_at.date(), prev)


def confirm(ref: int | str, section: str, *, intake: Intake, store: IntakeStore, now: dt.datetime,
            template_for: TemplateFor | None = None) -> Processed:
    """The credit section confirms a quarantined message's section: decide it again with that
    section, record the verdict on the same message (same receipt number) and queue the reply.
    Raises LookupError / ValueError for an unknown or not-quarantined message."""
    detail = store.message_detail(ref)
    if detail is None:
        raise LookupError(f"no message {ref!r}")
    stored = detail.message
    incoming = parse.parse_message(store.read_raw(stored.raw_sha256), limits=intake.rules.limits)
    prior = [p for p in store.prior_submissions(hashlib.sha256(a.content).hexdigest() for a in incoming.attachments)
             if p.receipt_no != stored.receipt_no]
    received_at = bureau_time(stored.received_at)   # stored in UTC; dates are the bureau's dates
    verdict = decide(incoming, intake, received_at, prior, section_override=section)
    # the credit section vouched for the sender: the receipt goes to it, the section's own addresses in Cc
    to = set(a.lower() for a in (verdict.recipients or (incoming.from_addr,)))
    verdict = replace(verdict, copy_to=tuple(dict.fromkeys(
        verdict.copy_to + tuple(a for a in intake.addresses_of(section) if a.lower() not in to))))
    drafted: dict[str, Any] = {}
    outbox = _reply_drafter(verdict, incoming, intake, received_at, now, template_for, drafted)
    result = store.confirm_quarantined(stored.id, verdict=verdict, outbox=outbox, now=now)
    return Processed(incoming.message_id, stored.raw_sha256, verdict.outcome.value, verdict.reason, verdict.section,
                     result.receipt_no, _item_dicts(verdict), drafted.get("reply"))


def _item_dicts(verdict: Verdict) -> tuple[dict[str, Any], ...]:
    return tuple({"filename": i.filename, "task": i.task, "period": i.period, "status": i.status,
                  "kind": i.kind.value, "rows": i.rows,
                  "errors": [p.message for p in i.errors], "warnings": [p.message for p in i.warnings],
                  "error_codes": [p.code for p in i.errors], "warning_codes": [p.code for p in i.warnings]}
                 for i in verdict.items)


def to_json(p: Processed, file: str | None = None) -> str:
    d = {"file": file, **p.as_dict()}
    return json.dumps(d, ensure_ascii=False)
