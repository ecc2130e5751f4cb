"""Everything mailbot keeps: the database (messages, submissions, outbox, shunt, mailbox
positions) and the stored files, behind one facade, `Store`.

Files are written temp-then-rename under `storage_dir` and never rewritten or deleted; the
records (messages, attachments, submissions, outbox, failures) live in SQLite by default or
PostgreSQL by URL, in a schema that only Alembic migrations create (`Store.upgrade()`). Every
public method is one transaction and speaks in plain values: no Session leaves this package.

Each concern is a class in its own module (blobs, messages, outbox, shunt, positions, desk, web), all
sharing the engine and transactions of `database.Database`; `Store` is all of them in one
object, so callers keep one handle. Rows live in `schema`, the values handed out in `records`.
"""
from mailbot.store.blobs import Blobs
from mailbot.store.desk import AuditEntry, DeskRecords, LoadedCalendar
from mailbot.store.database import MIGRATIONS_DIR
from mailbot.store.messages import Messages
from mailbot.store.outbox import Outbox
from mailbot.store.positions import Positions
from mailbot.store.records import (
    MailboxPosition, MessageDetail, OutboxMail, OutboxStats, PriorSubmission, Queued, RecordResult,
    ReusedFrom, StoredAttachment, StoredFailure, StoredMessage, StoredSubmission,
)
from mailbot.store.schema import (
    MESSAGE_OUTCOMES, OUTBOX_STATUSES, SUBMISSION_STATUSES, AttachmentRow, Base, FailureRow,
    MailboxKeyRow, MailboxStateRow, MessageRow, OutboxRow, SubmissionRow, receipt_number,
)
from mailbot.store.shunt import Shunt
from mailbot.store.web import WebLogins

__all__ = [
    "Base", "MessageRow", "AttachmentRow", "SubmissionRow", "OutboxRow", "FailureRow",
    "StoredMessage", "StoredAttachment", "StoredSubmission", "ReusedFrom", "PriorSubmission",
    "RecordResult", "Queued", "OutboxMail", "OutboxStats", "StoredFailure", "MessageDetail",
    "Store", "MIGRATIONS_DIR", "MESSAGE_OUTCOMES", "SUBMISSION_STATUSES", "OUTBOX_STATUSES",
    "receipt_number", "MailboxStateRow", "MailboxKeyRow", "MailboxPosition", "AuditEntry", "LoadedCalendar",
]


class Store(Messages, Outbox, Blobs, Shunt, Positions, DeskRecords, WebLogins):
    """The one door to the bot's files and records."""
