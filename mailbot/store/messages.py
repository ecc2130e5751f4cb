"""Received messages, their files and submissions: recorded with their verdict, and read back."""
from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import hashlib
import types
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mailbot.model import Incoming, Outcome, OutgoingMail, Replaced, Verdict
from mailbot.store.blobs import Blobs, _check_sha
from mailbot.store.database import _advisory_key
from mailbot.store.outbox import Outbox
from mailbot.store.records import (
    MessageDetail, MessageSummary, OutboxMail, PriorSubmission, StoredAttachment, RecordResult, ReusedFrom, StoredMessage, StoredSubmission,
    _outbox_mail, _stored_attachment, _stored_message, _stored_submission,
)
from mailbot.store.schema import (
    SUBMISSION_STATUSES, AttachmentRow, MessageRow, OutboxRow, SubmissionRow,
    _aware, _message_id_key, _utcnow, receipt_number,
)

__all__ = ["Messages"]

# The statements every message runs, built once and run on the session's connection: building a
# statement (and its cache key) costs SQLAlchemy several times what SQLite takes to run it.
_M, _A, _S = MessageRow.__table__, AttachmentRow.__table__, SubmissionRow.__table__
_FIND = sa.select(_M).where(_M.c.message_id == sa.bindparam("key"), _M.c.raw_sha256 == sa.bindparam("sha"))
_PRIOR = (sa.select(_S.c.id, _S.c.sha256, _S.c.section, _S.c.task, _S.c.period, _S.c.status, _S.c.received_at,
                    _M.c.receipt_no)
          .join(_M, _S.c.message_ref == _M.c.id)
          .where(_S.c.sha256.in_(sa.bindparam("shas", expanding=True))).order_by(_S.c.id))
_SET_RECEIPT = sa.update(_M).where(_M.c.id == sa.bindparam("b_id")).values(receipt_no=sa.bindparam("b_receipt"))
_EARLIER = sa.select(_S.c.id, _S.c.sha256, _S.c.period, _S.c.status).where(
    _S.c.sha256.in_(sa.bindparam("shas", expanding=True)), _S.c.message_ref != sa.bindparam("msg"))
# what is current for some of a section's (task, period) keys; the section may be none
_CURRENT = {
    named: sa.select(_S.c.id, _S.c.task, _S.c.period, _S.c.received_at, _M.c.receipt_no,
                     _M.c.received_at.label("message_received_at"), _M.c.from_addr)
    .join(_M, _S.c.message_ref == _M.c.id)
    .where(_S.c.section == sa.bindparam("section") if named else _S.c.section.is_(None),
           _S.c.task.in_(sa.bindparam("tasks", expanding=True)),
           _S.c.period.in_(sa.bindparam("periods", expanding=True)),
           _S.c.status == "accepted", _S.c.superseded_by.is_(None), _S.c.message_ref != sa.bindparam("msg"))
    .order_by(_S.c.id)
    for named in (True, False)
}
_SUPERSEDE = sa.update(_S).where(_S.c.id == sa.bindparam("b_id")).values(superseded_by=sa.bindparam("b_by"))


# Built on Outbox and Blobs: record() saves a message's files before its transaction and
# queues its replies inside it.
class Messages(Outbox, Blobs):
    """Messages, their attachments and submissions, and the queries the CLI and reports make."""

    def find_message(self, message_id: str, raw_sha256: str) -> StoredMessage | None:
        with self._tx() as s:
            row = self._find(s, _message_id_key(message_id), raw_sha256)
            return _stored_message(row) if row is not None else None

    @staticmethod
    def _find(s: Session, key: str, raw_sha256: str) -> sa.Row | None:
        return s.connection().execute(_FIND, {"key": key, "sha": raw_sha256}).one_or_none()

    def prior_submissions(self, sha256s: Iterable[str]) -> list[PriorSubmission]:
        """Every earlier submission of these files, oldest first."""
        shas = sorted(set(sha256s))
        if not shas:
            return []
        with self._tx() as s:
            return [PriorSubmission(
                sha256=r.sha256, section=r.section, task=r.task, period=r.period, submission_id=r.id,
                receipt_no=r.receipt_no or "", status=r.status, received_at=r.received_at,
            ) for r in s.connection().execute(_PRIOR, {"shas": shas})]

    def record(
        self,
        *,
        incoming: Incoming,
        raw_sha256: str,
        received_at: dt.datetime,
        source: str,
        verdict: Verdict,
        outbox: Sequence[OutgoingMail] | Callable[[str], Sequence[OutgoingMail]] = (),
        now: dt.datetime | None = None,
    ) -> RecordResult:
        """Store one processed message with its files, submissions and replies, all or nothing.

        `outbox` may be a callable taking the receipt number, which exists only inside the
        transaction, and the earlier submissions this one replaced (model.Replaced), which the
        receipt names; if it raises, nothing is recorded. Recording the same (Message-ID, raw)
        again writes nothing and returns the first record with created=False.
        """
        received_at = _aware(received_at, "received_at")
        now = _aware(now, "now") if now is not None else _utcnow()
        _check_sha(raw_sha256)
        key = _message_id_key(incoming.message_id)

        # Already recorded? Asked before the files are written and the write transaction begun;
        # inside a group commit that transaction is open already and the check below suffices.
        if not self._in_batch() and (existing := self._existing_result(key, raw_sha256)) is not None:
            return existing

        # Files first, outside the transaction: content-addressed, so a rolled-back record
        # leaves only a file some later record will point to, never a row without its file.
        contents: dict[str, bytes] = {}
        declared: dict[str, str] = {}
        for a in incoming.attachments:
            sha = hashlib.sha256(a.content).hexdigest()
            contents.setdefault(sha, a.content)
            declared.setdefault(sha, a.declared_type)
        for item in verdict.items:
            if item.sha256 not in contents:
                raise ValueError(f"verdict item {item.filename!r} ({item.sha256}) matches no attachment of the message")
        for sha in {item.sha256 for item in verdict.items}:
            self.save_file(contents[sha])

        try:
            with self._tx(write=True) as s:
                # Checked again inside the write transaction: another process may have won.
                if self._find(s, key, raw_sha256) is not None:
                    raise _AlreadyRecorded
                # Written with Core statements, not the ORM's unit of work: this is the path every
                # message takes, and the ORM's bookkeeping cost more than the database's work.
                msg = MessageRow(
                    message_id=key, raw_sha256=raw_sha256, received_at=received_at,
                    from_addr=incoming.from_addr, from_name=incoming.from_name, subject=incoming.subject,
                    source=source, outcome=_value(verdict.outcome), reason=verdict.reason,
                    section=verdict.section,
                    section_evidence=[dataclasses.asdict(e) for e in verdict.section_evidence],
                    problems=[p.as_dict() for p in verdict.problems], receipt_no=None, created_at=now,
                )
                [msg.id] = self._insert_rows(s, MessageRow, [_values(msg)])
                msg.receipt_no = receipt_number(received_at, msg.id)
                s.connection().execute(_SET_RECEIPT, {"b_id": msg.id, "b_receipt": msg.receipt_no})

                files = {sha: (len(contents[sha]), declared[sha]) for sha in contents}
                sub_ids, replaced = self._record_items(s, msg, verdict, files)

                mails = outbox(msg.receipt_no, replaced) if callable(outbox) else outbox
                queued = [self._queue_one(s, m, msg.id, now) for m in mails]
                stored = _stored_message(msg)
            return RecordResult(stored, True, tuple(sub_ids), tuple(q.id for q in queued))
        except (_AlreadyRecorded, IntegrityError):
            # The race lost on PostgreSQL surfaces as a unique violation on the message key.
            existing = self._existing_result(key, raw_sha256)
            if existing is None:
                raise
            return existing

    def _existing_result(self, key: str, raw_sha256: str) -> RecordResult | None:
        with self._tx() as s:
            row = self._find(s, key, raw_sha256)
            if row is None:
                return None
            subs = s.scalars(sa.select(SubmissionRow.id).where(SubmissionRow.message_ref == row.id)
                             .order_by(SubmissionRow.id)).all()
            outs = s.scalars(sa.select(OutboxRow.id).where(OutboxRow.message_ref == row.id)
                             .order_by(OutboxRow.id)).all()
            return RecordResult(_stored_message(row), False, tuple(subs), tuple(outs))

    def _record_items(self, s: Session, msg: MessageRow, verdict: Verdict,
                      files: dict[str, tuple[int, str]]) -> tuple[list[int], tuple[Replaced, ...]]:
        att_ids = self._insert_rows(s, AttachmentRow, [dict(
            message_ref=msg.id, position=position, filename=item.filename, sha256=item.sha256,
            size=files[item.sha256][0], kind=_value(item.kind), origin=list(item.origin),
            declared_type=files[item.sha256][1],
            status=item.status, problems=[p.as_dict() for p in item.problems],
        ) for position, item in enumerate(verdict.items)])
        new_subs: list[Any] = []
        for att_id, item in zip(att_ids, verdict.items):
            # a quarantined message counts for nothing until a person confirms its section
            if (item.task is None or item.period is None or item.status not in SUBMISSION_STATUSES
                    or verdict.outcome is Outcome.QUARANTINED):
                continue
            new_subs.append(_NewSubmission(**_submission_values(msg, att_id, item, verdict)))
        self._mark_duplicates(s, msg, new_subs)      # before they are written: written once, marked
        for sub, sub_id in zip(new_subs, self._insert_rows(s, SubmissionRow, [vars(x) for x in new_subs])):
            sub.id = sub_id
        return [x.id for x in new_subs], self._settle(s, msg, new_subs, marked=True)

    def _settle(self, s: Session, msg: MessageRow, subs: list[SubmissionRow], *,
                marked: bool = False) -> tuple[Replaced, ...]:
        """A message's new submissions take their place: each file already sent for another month
        is marked (duplicate_of; `marked`: done already); the accepted ones replace what their key
        had, except a file already accepted for another month, which counts for nothing and so
        replaces nothing."""
        if not marked:
            self._mark_duplicates(s, msg, subs)
        reused = _originals(s, subs)
        return self._supersede(s, msg, [x for x in subs if x.status == "accepted" and x.duplicate_of not in reused])

    def _supersede(self, s: Session, msg: MessageRow, accepted: list[SubmissionRow]) -> tuple[Replaced, ...]:
        # Files of one message for the same (section, task, period) complete each other (a
        # ledger and its signed scan); a later message replaces them all, history kept.
        by_key: dict[tuple[str | None, int, str], list[SubmissionRow]] = {}
        replaced: list[Replaced] = []
        for sub in accepted:
            by_key.setdefault((sub.section, sub.task, sub.period), []).append(sub)
        if not by_key:
            return ()
        keys = sorted(by_key, key=lambda k: (k[0] or "", k[1], k[2]))
        if not self._sqlite:
            for section, task, period in keys:
                # Two messages for the same key committing together would both stay current.
                s.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"),
                          {"k": _advisory_key(f"supersede:{section}:{task}:{period}")})
        # One query for all the message's keys, and the columns it needs, not the rows: a ledger's
        # rows (JSON) are not read to set one column.
        current: dict[tuple[str | None, int, str], list[Any]] = {}
        for section in {k[0] for k in keys}:
            for c in s.connection().execute(_CURRENT[section is not None], {
                    "section": section, "msg": msg.id,
                    "tasks": sorted({k[1] for k in keys if k[0] == section}),
                    "periods": sorted({k[2] for k in keys if k[0] == section})}):
                if (section, c.task, c.period) in by_key:
                    current.setdefault((section, c.task, c.period), []).append(c)
        superseded: dict[int, int] = {}       # a submission -> the one replacing it (one UPDATE for all)
        for key in keys:
            new, task, period = by_key[key], key[1], key[2]
            rows = current.get(key, [])
            # A replayed older message must not replace what a newer one already sent.
            newer = [c for c in rows if c.received_at > msg.received_at]
            if newer:
                for sub in new:
                    superseded[sub.id] = newer[0].id
                continue
            for c in rows:
                superseded[c.id] = new[0].id
                # the receipt says what it replaces, and a section told of a change by another hand
                if all(r.receipt_no != c.receipt_no or r.task != task for r in replaced):
                    replaced.append(Replaced(task, period, c.receipt_no, c.message_received_at, c.from_addr))
        if superseded:
            s.connection().execute(_SUPERSEDE, [{"b_id": old, "b_by": by} for old, by in sorted(superseded.items())])
        s.flush()
        return tuple(replaced)

    def _mark_duplicates(self, s: Session, msg: MessageRow, subs: list[SubmissionRow]) -> None:
        shas = sorted({sub.sha256 for sub in subs})
        if not shas:
            return
        earlier: dict[str, list[tuple[str, str, int]]] = {}    # one query for all of the message's files
        for sid, sha, period, status in s.connection().execute(_EARLIER, {"shas": shas, "msg": msg.id}):
            earlier.setdefault(sha, []).append((period, status, sid))
        for sub in subs:
            # Prefer an accepted original: that is the month the file already counted for.
            found = sorted((0 if status == "accepted" else 1, sid)
                           for period, status, sid in earlier.get(sub.sha256, ()) if period != sub.period)
            sub.duplicate_of = found[0][1] if found else None

    def confirm_quarantined(self, ref: int | str, *, verdict: Verdict,
                            outbox: Callable[[str], Sequence[OutgoingMail]],
                            now: dt.datetime | None = None) -> RecordResult:
        """A person confirmed a quarantined message's section: record its verdict in place (same
        message row, same files, same receipt number), write its submissions and queue the reply,
        in one transaction. The quarantine notice already sent stays in the outbox history."""
        now = _aware(now, "now") if now is not None else _utcnow()
        with self._tx(write=True) as s:
            msg = self._waiting_row(s, ref)
            atts = s.scalars(sa.select(AttachmentRow).where(AttachmentRow.message_ref == msg.id)
                             .order_by(AttachmentRow.position)).all()
            if [a.sha256 for a in atts] != [i.sha256 for i in verdict.items]:
                raise ValueError(f"message {msg.receipt_no}: the new verdict's files differ from the recorded ones")
            msg.outcome = _value(verdict.outcome)
            msg.reason = verdict.reason
            msg.section = verdict.section
            msg.section_evidence = [dataclasses.asdict(e) for e in verdict.section_evidence]
            msg.problems = [p.as_dict() for p in verdict.problems]
            subs = []
            for att, item in zip(atts, verdict.items):
                att.status = item.status
                att.problems = [p.as_dict() for p in item.problems]
                if item.task is None or item.period is None or item.status not in SUBMISSION_STATUSES:
                    continue
                sub = _submission_row(msg, att.id, item, verdict)
                s.add(sub)
                subs.append(sub)
            s.flush()
            replaced = self._settle(s, msg, subs)
            queued = [self._queue_one(s, m, msg.id, now) for m in outbox(msg.receipt_no, replaced)]
            return RecordResult(_stored_message(msg), True, tuple(x.id for x in subs), tuple(q.id for q in queued))

    def settle_waiting(self, ref: int | str, *, outcome: Outcome, reason: str,
                       outbox: Callable[[str], Sequence[OutgoingMail]] = lambda _no: (),
                       now: dt.datetime | None = None) -> StoredMessage:
        """A person closed a message that waited for them (quarantined) without taking it in:
        `outcome` rejected (with a letter from `outbox`) or ignored. Raises LookupError for an
        unknown message, ValueError for one not waiting."""
        now = _aware(now, "now") if now is not None else _utcnow()
        with self._tx(write=True) as s:
            msg = self._waiting_row(s, ref)
            msg.outcome = _value(outcome)
            msg.reason = reason
            for m in outbox(msg.receipt_no):
                self._queue_one(s, m, msg.id, now)
            s.flush()
            return _stored_message(msg)

    def refile(self, ref: int | str, position: int, item: Any, *,
               outbox: Callable[[str], Sequence[OutgoingMail]], now: dt.datetime | None = None) -> tuple[int | None, int | None]:
        """A person re-filed one file of a recorded message under another task and/or month: the
        attachment takes `item`'s verdict, its submission is withdrawn (what it had replaced comes
        back) and a new one takes its place; the corrected receipt is queued. One transaction.
        Returns (withdrawn submission id, new submission id)."""
        now = _aware(now, "now") if now is not None else _utcnow()
        with self._tx(write=True) as s:
            msg = self._message_by_ref(s, ref)
            if msg is None:
                raise LookupError(f"no message {ref!r}")
            att = s.scalars(sa.select(AttachmentRow).where(AttachmentRow.message_ref == msg.id,
                                                           AttachmentRow.position == position)).one_or_none()
            if att is None or att.sha256 != item.sha256:
                raise ValueError(f"message {msg.receipt_no} has no file {position + 1} matching the new verdict")
            old = s.scalars(sa.select(SubmissionRow).where(SubmissionRow.attachment_ref == att.id,
                                                           SubmissionRow.superseded_by.is_(None))
                            .order_by(SubmissionRow.id)).all()
            att.status = item.status
            att.problems = [p.as_dict() for p in item.problems]
            new = None
            if item.task is not None and item.period is not None and item.status in SUBMISSION_STATUSES:
                new = _submission_row(msg, att.id, item, _Section(msg.section))
                s.add(new)
                s.flush()
            for o in old:
                # what the withdrawn submission had replaced under its own key is current again
                # (never a row withdrawn before: that one stays withdrawn)
                for earlier in s.scalars(sa.select(SubmissionRow).where(
                        SubmissionRow.superseded_by == o.id, SubmissionRow.id != o.id,
                        _is(SubmissionRow.section, o.section), SubmissionRow.task == o.task,
                        SubmissionRow.period == o.period)):
                    earlier.superseded_by = None
                # withdrawn: superseded by itself, so no view of its month or task counts it again
                o.superseded_by = o.id
            s.flush()
            replaced: tuple[Replaced, ...] = ()
            if new is not None:
                replaced = self._settle(s, msg, [new])
            for m in outbox(msg.receipt_no, replaced):
                self._queue_one(s, m, msg.id, now)
            return (old[0].id if old else None), (new.id if new is not None else None)

    def letter(self, mail_message_id: str) -> OutboxMail | None:
        """One of our letters by its Message-ID (with or without <>), to quote it."""
        with self._tx() as s:
            row = s.scalars(sa.select(OutboxRow).where(OutboxRow.mail_message_id == _message_id_key(mail_message_id))
                            .order_by(OutboxRow.id).limit(1)).one_or_none()
            return _outbox_mail(row) if row is not None else None

    def _waiting_row(self, s: Session, ref: int | str) -> MessageRow:
        """The message `ref`, which must still wait for a person: LookupError / ValueError else."""
        msg = self._message_by_ref(s, ref)
        if msg is None:
            raise LookupError(f"no message {ref!r}")
        if msg.outcome != Outcome.QUARANTINED.value:
            raise ValueError(f"message {msg.receipt_no} is {msg.outcome}, not quarantined")
        return msg

    @staticmethod
    def _message_by_ref(s: Session, ref: int | str) -> MessageRow | None:
        if isinstance(ref, int) or (isinstance(ref, str) and ref.strip().isdigit()):
            return s.get(MessageRow, int(ref))
        return s.scalars(sa.select(MessageRow).where(MessageRow.receipt_no == ref.strip().upper())).one_or_none()

    def messages(self, limit: int = 50, outcome: Outcome | str | None = None) -> list[StoredMessage]:
        """The latest messages, newest first."""
        q = sa.select(MessageRow).order_by(MessageRow.id.desc()).limit(limit)
        if outcome is not None:
            q = q.where(MessageRow.outcome == _value(outcome))
        with self._tx() as s:
            return [_stored_message(r) for r in s.scalars(q)]

    def submissions(self, section: str | None = None, task: int | None = None,
                    period: str | None = None, current_only: bool = True, *,
                    light: bool = False) -> list[StoredSubmission]:
        """Submissions ordered by section, task, period, id; by default only the current accepted ones.
        `light`: without the workbook rows, problems and evidence (data {}, errors/warnings/evidence
        empty) — what the status matrix reads, in a fraction of the time."""
        q = (sa.select(SubmissionRow, MessageRow.receipt_no, AttachmentRow.filename)
             .join(MessageRow, SubmissionRow.message_ref == MessageRow.id)
             .join(AttachmentRow, SubmissionRow.attachment_ref == AttachmentRow.id)
             .order_by(SubmissionRow.section, SubmissionRow.task, SubmissionRow.period, SubmissionRow.id))
        if section is not None:
            q = q.where(SubmissionRow.section == section)
        if task is not None:
            q = q.where(SubmissionRow.task == task)
        if period is not None:
            q = q.where(SubmissionRow.period == period)
        if current_only:
            q = q.where(SubmissionRow.status == "accepted", SubmissionRow.superseded_by.is_(None))
        if light:
            q = q.options(sa.orm.defer(SubmissionRow.data), sa.orm.defer(SubmissionRow.errors),
                          sa.orm.defer(SubmissionRow.warnings), sa.orm.defer(SubmissionRow.evidence))
        with self._tx() as s:
            rows = s.execute(q).all()
            reused = _originals(s, [r for r, _, _ in rows])
            return [_stored_submission(r, receipt, filename, reused.get(r.duplicate_of), light=light)
                    for r, receipt, filename in rows]

    def message_detail(self, ref: int | str) -> MessageDetail | None:
        """A message with its files, submissions and mails, by row id or receipt number."""
        with self._tx() as s:
            row = self._message_by_ref(s, ref)
            if row is None:
                return None
            atts = s.scalars(sa.select(AttachmentRow).where(AttachmentRow.message_ref == row.id)
                             .order_by(AttachmentRow.position, AttachmentRow.id)).all()
            names = {a.id: a.filename for a in atts}
            subs = s.scalars(sa.select(SubmissionRow).where(SubmissionRow.message_ref == row.id)
                             .order_by(SubmissionRow.id)).all()
            outs = s.scalars(sa.select(OutboxRow).where(OutboxRow.message_ref == row.id)
                             .order_by(OutboxRow.id)).all()
            reused = _originals(s, subs)
            return MessageDetail(
                message=_stored_message(row),
                attachments=tuple(_stored_attachment(a) for a in atts),
                submissions=tuple(_stored_submission(x, row.receipt_no, names.get(x.attachment_ref, ""),
                                                     reused.get(x.duplicate_of)) for x in subs),
                outbox=tuple(_outbox_mail(o) for o in outs),
            )


    def browse(self, *, period: str | None = None, section: str | None = None, task: int | None = None,
               outcome: str | None = None, limit: int = 500) -> list[MessageSummary]:
        """Messages newest first, for a person looking for one: `period` a month a file was filed
        under or the message was received in (the bureau's time); `task` one a file was filed under."""
        from mailbot.dates.period import Period
        from mailbot.dates.zone import bureau_zone
        q = sa.select(MessageRow).order_by(MessageRow.id.desc()).limit(limit)
        if section is not None:
            q = q.where(MessageRow.section == section)
        if outcome is not None:
            q = q.where(MessageRow.outcome == outcome)
        if task is not None:
            q = q.where(MessageRow.id.in_(sa.select(SubmissionRow.message_ref).where(SubmissionRow.task == task)))
        if period is not None:
            p = Period.parse(period)
            start = dt.datetime(p.year, p.month, 1, tzinfo=bureau_zone())
            end = dt.datetime(p.year + p.month // 12, p.month % 12 + 1, 1, tzinfo=bureau_zone())
            q = q.where(sa.or_(
                MessageRow.id.in_(sa.select(SubmissionRow.message_ref).where(SubmissionRow.period == str(p))),
                sa.and_(MessageRow.received_at >= start, MessageRow.received_at < end)))
        with self._tx() as s:
            rows = s.scalars(q).all()
            filed: dict[int, tuple[set[int], set[str]]] = {r.id: (set(), set()) for r in rows}
            files = dict.fromkeys(filed, 0)
            ids = list(filed)
            for i in range(0, len(ids), 500):
                for ref, t, per in s.execute(sa.select(SubmissionRow.message_ref, SubmissionRow.task,
                                                       SubmissionRow.period)
                                             .where(SubmissionRow.message_ref.in_(ids[i:i + 500]))):
                    filed[ref][0].add(t)
                    filed[ref][1].add(per)
                for ref, n in s.execute(sa.select(AttachmentRow.message_ref, sa.func.count())
                                        .where(AttachmentRow.message_ref.in_(ids[i:i + 500]))
                                        .group_by(AttachmentRow.message_ref)):
                    files[ref] = n
            return [MessageSummary(_stored_message(r), tuple(sorted(filed[r.id][0])), tuple(sorted(filed[r.id][1])),
                                   files[r.id]) for r in rows]

    def attachment(self, attachment_id: int) -> tuple[StoredAttachment, StoredMessage] | None:
        """A stored file by its id, with the message it came in."""
        with self._tx() as s:
            att = s.get(AttachmentRow, attachment_id)
            if att is None:
                return None
            return _stored_attachment(att), _stored_message(s.get(MessageRow, att.message_ref))


class _AlreadyRecorded(Exception):
    """Raised inside record()'s transaction to roll it back when another writer got there first."""


def _submission_row(msg: MessageRow, attachment_id: int, item: Any, verdict: Verdict) -> SubmissionRow:
    return SubmissionRow(**_submission_values(msg, attachment_id, item, verdict))


def _submission_values(msg: MessageRow, attachment_id: int, item: Any, verdict: Any) -> dict[str, Any]:
    return dict(
        message_ref=msg.id, attachment_ref=attachment_id, sha256=item.sha256, section=verdict.section,
        task=item.task, period=item.period, status=item.status,
        errors=[p.as_dict() for p in item.errors], warnings=[p.as_dict() for p in item.warnings],
        evidence=[dataclasses.asdict(e) for e in item.evidence], rows=item.rows,
        sheets=list(item.sheets), data=dict(item.data), received_at=msg.received_at,
        due=item.due, on_time=item.on_time, superseded_by=None, duplicate_of=None,
    )


class _NewSubmission(types.SimpleNamespace):
    """A submission record() is about to write: its columns, what _settle reads and marks, then its
    id. Not a SubmissionRow: the ORM's bookkeeping of every attribute set costs, and it is written by
    one INSERT anyway."""


def _originals(s: Session, subs: Iterable[SubmissionRow]) -> dict[int, ReusedFrom]:
    """duplicate_of -> the original, for those originals that were accepted: a file already counted
    for another period (one it was only rejected for never counted, so sending it again is no reuse)."""
    ids = sorted({x.duplicate_of for x in subs if x.duplicate_of is not None})
    out: dict[int, ReusedFrom] = {}
    for i in range(0, len(ids), 500):
        for sid, period, receipt, received in s.execute(
                sa.select(SubmissionRow.id, SubmissionRow.period, MessageRow.receipt_no, MessageRow.received_at)
                .join(MessageRow, SubmissionRow.message_ref == MessageRow.id)
                .where(SubmissionRow.id.in_(ids[i:i + 500]), SubmissionRow.status == "accepted")):
            out[sid] = ReusedFrom(period, receipt or "", received)
    return out


def _values(row: Any) -> dict[str, Any]:
    """A row object's columns as an INSERT's parameters (its id is the database's to give)."""
    return {c.key: getattr(row, c.key) for c in row.__table__.columns if c.key != "id"}


def _value(v: Any) -> Any:
    return v.value if isinstance(v, enum.Enum) else v


def _is(column: Any, value: Any) -> Any:
    return column.is_(None) if value is None else column == value


@dataclasses.dataclass(frozen=True)
class _Section:
    """What _submission_row reads of a verdict, for a re-filed file: the message's section."""
    section: str | None
