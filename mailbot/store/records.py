"""The frozen values the store hands its callers, and how each is read off its row."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from mailbot.store.schema import AttachmentRow, FailureRow, MessageRow, OutboxRow, SubmissionRow

__all__ = [
    "StoredMessage", "StoredAttachment", "StoredSubmission", "ReusedFrom", "PriorSubmission", "RecordResult",
    "Queued", "OutboxMail", "OutboxStats", "StoredFailure", "MessageDetail", "MailboxPosition", "MessageSummary",
]


@dataclass(frozen=True)
class StoredMessage:
    id: int
    message_id: str
    raw_sha256: str
    received_at: dt.datetime
    from_addr: str
    from_name: str
    subject: str
    source: str
    outcome: str
    reason: str
    section: str | None
    section_evidence: tuple[dict[str, Any], ...]
    problems: tuple[dict[str, Any], ...]
    receipt_no: str
    created_at: dt.datetime


@dataclass(frozen=True)
class StoredAttachment:
    id: int
    message_ref: int
    position: int
    filename: str
    sha256: str
    size: int
    kind: str
    origin: tuple[str, ...]
    declared_type: str
    status: str
    problems: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class ReusedFrom:
    """The accepted submission of another period a file was already sent in (duplicate_of)."""
    period: str
    receipt_no: str
    received_at: dt.datetime


@dataclass(frozen=True)
class StoredSubmission:
    id: int
    message_ref: int
    attachment_ref: int
    receipt_no: str
    filename: str
    sha256: str
    section: str | None
    task: int
    period: str
    status: str
    errors: tuple[dict[str, Any], ...]
    warnings: tuple[dict[str, Any], ...]
    evidence: tuple[dict[str, Any], ...]
    rows: int
    sheets: tuple[str, ...]
    data: dict[str, Any]
    received_at: dt.datetime
    due: dt.date | None
    on_time: bool | None
    superseded_by: int | None
    duplicate_of: int | None
    # duplicate_of read: the file was already accepted for another period (严禁弄虚作假), so
    # this submission counts toward nothing; None when duplicate_of is None or was never accepted
    reused_from: ReusedFrom | None = None

    @property
    def current(self) -> bool:
        return self.status == "accepted" and self.superseded_by is None

    @property
    def reused(self) -> bool:
        return self.reused_from is not None


@dataclass(frozen=True)
class PriorSubmission:
    """An earlier submission of a file, for flagging the same file sent for another month."""
    sha256: str
    section: str | None
    task: int
    period: str
    submission_id: int
    receipt_no: str
    status: str
    received_at: dt.datetime


@dataclass(frozen=True)
class RecordResult:
    message: StoredMessage
    created: bool                  # False: this (Message-ID, raw) was recorded before; nothing written
    submission_ids: tuple[int, ...]
    outbox_ids: tuple[int, ...]

    @property
    def receipt_no(self) -> str:
        return self.message.receipt_no

    @property
    def duplicate(self) -> bool:
        return not self.created


@dataclass(frozen=True)
class Queued:
    id: int
    created: bool                  # False: an existing row had this dedupe_key or Message-ID


@dataclass(frozen=True)
class OutboxMail:
    id: int
    message_ref: int | None
    kind: str
    recipients: tuple[str, ...]
    subject: str
    mail_message_id: str
    raw: bytes
    status: str
    attempts: int
    next_attempt_at: dt.datetime | None
    last_error: str | None
    server_reply: str | None
    created_at: dt.datetime
    sent_at: dt.datetime | None
    dedupe_key: str | None


@dataclass(frozen=True)
class OutboxStats:
    counts: dict[str, int]         # every status, zero included
    due: int                       # sendable now
    oldest_due_at: dt.datetime | None


@dataclass(frozen=True)
class StoredFailure:
    id: int
    raw_sha256: str
    source: str
    stage: str
    error: str
    traceback: str
    created_at: dt.datetime
    resolved: bool
    resolved_at: dt.datetime | None


@dataclass(frozen=True)
class MessageDetail:
    message: StoredMessage
    attachments: tuple[StoredAttachment, ...]
    submissions: tuple[StoredSubmission, ...]
    outbox: tuple[OutboxMail, ...]


@dataclass(frozen=True)
class MessageSummary:
    """A message as a list shows it: the tasks and months its files were filed under, how many files."""
    message: StoredMessage
    tasks: tuple[int, ...]
    periods: tuple[str, ...]
    files: int


@dataclass(frozen=True)
class MailboxPosition:
    source: str
    uidvalidity: int | None
    last_uid: int
    updated_at: dt.datetime


def _stored_message(r: MessageRow) -> StoredMessage:
    return StoredMessage(
        id=r.id, message_id=r.message_id, raw_sha256=r.raw_sha256, received_at=r.received_at,
        from_addr=r.from_addr, from_name=r.from_name, subject=r.subject, source=r.source,
        outcome=r.outcome, reason=r.reason, section=r.section,
        section_evidence=tuple(r.section_evidence), problems=tuple(r.problems),
        receipt_no=r.receipt_no or "", created_at=r.created_at,
    )


def _stored_attachment(r: AttachmentRow) -> StoredAttachment:
    return StoredAttachment(
        id=r.id, message_ref=r.message_ref, position=r.position, filename=r.filename,
        sha256=r.sha256, size=r.size, kind=r.kind, origin=tuple(r.origin),
        declared_type=r.declared_type, status=r.status, problems=tuple(r.problems),
    )


def _stored_submission(r: SubmissionRow, receipt_no: str | None, filename: str,
                       reused_from: ReusedFrom | None = None, *, light: bool = False) -> StoredSubmission:
    """`light`: the row was read without its JSON columns but `sheets` (see Messages.submissions)."""
    return StoredSubmission(
        id=r.id, message_ref=r.message_ref, attachment_ref=r.attachment_ref,
        receipt_no=receipt_no or "", filename=filename, sha256=r.sha256, section=r.section,
        task=r.task, period=r.period, status=r.status, errors=() if light else tuple(r.errors),
        warnings=() if light else tuple(r.warnings), evidence=() if light else tuple(r.evidence), rows=r.rows,
        sheets=tuple(r.sheets), data={} if light else r.data, received_at=r.received_at, due=r.due,
        on_time=r.on_time, superseded_by=r.superseded_by, duplicate_of=r.duplicate_of,
        reused_from=reused_from,
    )


def _outbox_mail(r: OutboxRow) -> OutboxMail:
    return OutboxMail(
        id=r.id, message_ref=r.message_ref, kind=r.kind, recipients=tuple(r.recipients),
        subject=r.subject, mail_message_id=r.mail_message_id, raw=r.raw, status=r.status,
        attempts=r.attempts, next_attempt_at=r.next_attempt_at, last_error=r.last_error,
        server_reply=r.server_reply, created_at=r.created_at, sent_at=r.sent_at,
        dedupe_key=r.dedupe_key,
    )


def _stored_failure(r: FailureRow) -> StoredFailure:
    return StoredFailure(
        id=r.id, raw_sha256=r.raw_sha256, source=r.source, stage=r.stage, error=r.error,
        traceback=r.traceback, created_at=r.created_at, resolved=r.resolved, resolved_at=r.resolved_at,
    )
