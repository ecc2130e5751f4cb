"""The database's tables as SQLAlchemy rows, and the column types and keys they share."""
from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import functools
import json
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mailbot.model import Outcome
from mailbot.dates.zone import bureau_date

__all__ = [
    "Base", "MessageRow", "AttachmentRow", "SubmissionRow", "OutboxRow", "FailureRow",
    "MailboxStateRow", "MailboxKeyRow", "AuditRow", "LoadedCalendarRow", "ClosedPeriodRow", "LoginTokenRow", "UTCDateTime",
    "MESSAGE_OUTCOMES", "SUBMISSION_STATUSES", "OUTBOX_STATUSES", "receipt_number",
]

# "failed" is not an Outcome of the pure pipeline: it is kept for a message a person closes by
# hand after replaying it from the failures table.
MESSAGE_OUTCOMES = tuple(o.value for o in Outcome) + ("failed",)
SUBMISSION_STATUSES = ("accepted", "rejected")
OUTBOX_STATUSES = ("pending", "sent", "failed_temporary", "failed_permanent")

# China has kept UTC+8 without daylight saving since 1991; a fixed offset avoids depending on
# the host's tz database for the date printed in a receipt number.
# PostgreSQL refuses btree keys over ~2700 bytes; a Message-ID longer than this is junk anyway and
# the raw sha256 beside it in the unique key still tells messages apart.
_MESSAGE_ID_MAX_BYTES = 900


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _aware(value: dt.datetime, what: str) -> dt.datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {value!r}")
    return value.astimezone(dt.UTC)


def _message_id_key(message_id: str) -> str:
    mid = message_id.strip()
    if mid.startswith("<") and mid.endswith(">"):
        mid = mid[1:-1]
    raw = mid.encode("utf-8")
    if len(raw) > _MESSAGE_ID_MAX_BYTES:
        mid = raw[:_MESSAGE_ID_MAX_BYTES].decode("utf-8", "ignore")
    return mid


def receipt_number(received_at: dt.datetime, row_id: int) -> str:
    """The receipt number a sender quotes: XY + Beijing date received + the message row id."""
    day = bureau_date(_aware(received_at, "received_at"))
    return f"XY{day:%Y%m%d}-{row_id:05d}"


# ---------------------------------------------------------------- JSON and time columns

def _json_default(o: Any) -> Any:
    # Workbook cells come back as dates and datetimes; tagging them keeps the monthly package's
    # rows exactly as validated instead of turning them into look-alike strings.
    if isinstance(o, dt.datetime):
        return {"$datetime": o.isoformat()}
    if isinstance(o, dt.date):
        return {"$date": o.isoformat()}
    if isinstance(o, dt.time):
        return {"$time": o.isoformat()}
    if isinstance(o, dt.timedelta):
        return {"$timedelta": o.total_seconds()}
    if isinstance(o, enum.Enum):
        return o.value
    if isinstance(o, (set, frozenset)):
        return sorted(o)
    if dataclasses.is_dataclass(o) and not isinstance(o, type):
        return dataclasses.asdict(o)
    raise TypeError(f"cannot store {type(o).__name__} as JSON: {o!r}")


_JSON_TAGS: dict[str, Callable[[Any], Any]] = {
    "$datetime": dt.datetime.fromisoformat,
    "$date": dt.date.fromisoformat,
    "$time": dt.time.fromisoformat,
    "$timedelta": lambda s: dt.timedelta(seconds=s),
}


def _json_hook(d: dict[str, Any]) -> Any:
    if len(d) == 1:
        (k, v), = d.items()
        tag = _JSON_TAGS.get(k)
        if tag is not None:
            try:
                return tag(v)
            except (TypeError, ValueError):
                return d
    return d


# ensure_ascii=False keeps Chinese readable in the SQLite file and in psql.
_json_dumps = functools.partial(json.dumps, ensure_ascii=False, default=_json_default)
_json_loads = functools.partial(json.loads, object_hook=_json_hook)


class UTCDateTime(sa.TypeDecorator[dt.datetime]):
    """An aware datetime stored as UTC; SQLite keeps no offset, so UTC is put back on read."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        value = _aware(value, "a stored datetime")
        # SQLite's DATETIME drops tzinfo silently; strip it explicitly so string order is UTC order.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


# ---------------------------------------------------------------- the models

class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    })


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class MessageRow(Base):
    """One received message: what it was, where it came from and what the bot decided."""
    __tablename__ = "messages"
    __table_args__ = (
        sa.UniqueConstraint("message_id", "raw_sha256"),
        sa.UniqueConstraint("receipt_no"),
        sa.CheckConstraint(_in("outcome", MESSAGE_OUTCOMES), name="outcome"),
        sa.Index(None, "raw_sha256"),
        sa.Index(None, "received_at"),
        # AUTOINCREMENT: a receipt number, made from the id, must never be handed out twice.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    message_id: Mapped[str] = mapped_column(sa.String(998))          # header, without <>
    raw_sha256: Mapped[str] = mapped_column(sa.String(64))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    from_addr: Mapped[str] = mapped_column(sa.Text)
    from_name: Mapped[str] = mapped_column(sa.Text)
    subject: Mapped[str] = mapped_column(sa.Text)
    source: Mapped[str] = mapped_column(sa.Text)                     # file:/p, imap:INBOX:v:u, maildir:k
    outcome: Mapped[str] = mapped_column(sa.String(32))
    reason: Mapped[str] = mapped_column(sa.Text)
    section: Mapped[str | None] = mapped_column(sa.String(100))
    section_evidence: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON)
    problems: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON)
    # NULL only between the insert and the update in the same transaction: it is made from the id.
    receipt_no: Mapped[str | None] = mapped_column(sa.String(32))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class AttachmentRow(Base):
    """One file of a message as the verdict saw it (a workbook split by task gives one row per item)."""
    __tablename__ = "attachments"
    __table_args__ = (
        sa.Index(None, "message_ref"),
        sa.Index(None, "sha256"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    message_ref: Mapped[int] = mapped_column(sa.ForeignKey("messages.id"))
    position: Mapped[int] = mapped_column(sa.Integer)                # order in verdict.items
    filename: Mapped[str] = mapped_column(sa.Text)
    sha256: Mapped[str] = mapped_column(sa.String(64))
    size: Mapped[int] = mapped_column(sa.BigInteger)
    kind: Mapped[str] = mapped_column(sa.String(32))
    origin: Mapped[list[str]] = mapped_column(sa.JSON)
    declared_type: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(32))               # accepted | rejected | skipped
    # kept here too, so a file that could not be classified (no submission row) keeps its reasons
    problems: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON)


class SubmissionRow(Base):
    """One file answering for one (section, task, period): the unit the summaries count."""
    __tablename__ = "submissions"
    __table_args__ = (
        sa.CheckConstraint(_in("status", SUBMISSION_STATUSES), name="status"),
        sa.Index(None, "section", "task", "period"),
        sa.Index(None, "sha256"),
        sa.Index(None, "message_ref"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    message_ref: Mapped[int] = mapped_column(sa.ForeignKey("messages.id"))
    attachment_ref: Mapped[int] = mapped_column(sa.ForeignKey("attachments.id"))
    sha256: Mapped[str] = mapped_column(sa.String(64))               # the file's, copied for the index
    section: Mapped[str | None] = mapped_column(sa.String(100))
    task: Mapped[int] = mapped_column(sa.Integer)
    period: Mapped[str] = mapped_column(sa.String(7))                # YYYY-MM
    status: Mapped[str] = mapped_column(sa.String(16))
    errors: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON)
    warnings: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON)
    evidence: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON)
    rows: Mapped[int] = mapped_column(sa.Integer)
    sheets: Mapped[list[str]] = mapped_column(sa.JSON)
    data: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    due: Mapped[dt.date | None] = mapped_column(sa.Date)
    on_time: Mapped[bool | None] = mapped_column(sa.Boolean)
    superseded_by: Mapped[int | None] = mapped_column(sa.ForeignKey("submissions.id"))
    duplicate_of: Mapped[int | None] = mapped_column(sa.ForeignKey("submissions.id"))


class OutboxRow(Base):
    """One outgoing mail, complete as RFC 5322 bytes, and where its delivery stands."""
    __tablename__ = "outbox"
    __table_args__ = (
        sa.UniqueConstraint("mail_message_id"),
        sa.UniqueConstraint("dedupe_key"),
        sa.CheckConstraint(_in("status", OUTBOX_STATUSES), name="status"),
        sa.Index(None, "status", "next_attempt_at"),
        sa.Index(None, "message_ref"),
        sa.Index(None, "first_recipient", "created_at"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    message_ref: Mapped[int | None] = mapped_column(sa.ForeignKey("messages.id"))
    kind: Mapped[str] = mapped_column(sa.String(32))
    recipients: Mapped[list[str]] = mapped_column(sa.JSON)
    first_recipient: Mapped[str | None] = mapped_column(sa.String(320))   # bare, lower-case: the reply cap
    subject: Mapped[str] = mapped_column(sa.Text)
    mail_message_id: Mapped[str] = mapped_column(sa.String(998))
    raw: Mapped[bytes] = mapped_column(sa.LargeBinary)
    status: Mapped[str] = mapped_column(sa.String(32))
    attempts: Mapped[int] = mapped_column(sa.Integer)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    server_reply: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    dedupe_key: Mapped[str | None] = mapped_column(sa.String(255))


class FailureRow(Base):
    """A message that crashed the pipeline (the shunt): its raw bytes are on disk for a replay."""
    __tablename__ = "failures"
    __table_args__ = (
        sa.Index(None, "raw_sha256"),
        sa.Index(None, "resolved"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    raw_sha256: Mapped[str] = mapped_column(sa.String(64))
    source: Mapped[str] = mapped_column(sa.Text)
    stage: Mapped[str] = mapped_column(sa.String(64))
    error: Mapped[str] = mapped_column(sa.Text)
    traceback: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    resolved: Mapped[bool] = mapped_column(sa.Boolean)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class MailboxStateRow(Base):
    """How far the bot has read one IMAP folder: UIDs up to last_uid under this UIDVALIDITY are settled."""
    __tablename__ = "mailbox_state"

    source: Mapped[str] = mapped_column(sa.String(500), primary_key=True)   # imap://user@host/INBOX
    uidvalidity: Mapped[int | None] = mapped_column(sa.BigInteger)           # 32-bit unsigned on the wire
    last_uid: Mapped[int] = mapped_column(sa.BigInteger)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class MailboxKeyRow(Base):
    """One settled message of a source that has keys but no UIDs (a Maildir): never fetched again."""
    __tablename__ = "mailbox_keys"
    __table_args__ = (sa.UniqueConstraint("source", "msg_key"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    source: Mapped[str] = mapped_column(sa.String(500))                     # maildir:/path/to/Maildir
    msg_key: Mapped[str] = mapped_column(sa.String(255))                    # the Maildir key (name before ':')
    outcome: Mapped[str] = mapped_column(sa.String(32))
    settled_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class AuditRow(Base):
    """One action of the desk (a mail command, a web button, an operator's command): who, when,
    what, and how it ended. `ref` makes a replayed action (the same command mail after a crash)
    one row, not two."""
    __tablename__ = "audit"
    __table_args__ = (
        sa.UniqueConstraint("ref"),
        sa.Index(None, "at"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(sa.String(320))        # the address, or "operator" at the server
    role: Mapped[str] = mapped_column(sa.String(16))          # credit | section | operator
    section: Mapped[str | None] = mapped_column(sa.String(100))
    channel: Mapped[str] = mapped_column(sa.String(16))       # mail | web | cli
    action: Mapped[str] = mapped_column(sa.String(32))        # confirm, query, ... (English ids)
    args: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    ok: Mapped[bool] = mapped_column(sa.Boolean)
    result: Mapped[str] = mapped_column(sa.Text)
    ref: Mapped[str | None] = mapped_column(sa.String(255))


class LoadedCalendarRow(Base):
    """A year's official holiday schedule as the credit section loaded it (the State Council's
    notice, read by dates/holiday_notice.py). The newest row of a year is the one in force."""
    __tablename__ = "loaded_calendars"
    __table_args__ = (sa.Index(None, "year"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    year: Mapped[int] = mapped_column(sa.Integer)
    days_off: Mapped[list[str]] = mapped_column(sa.JSON)      # ISO dates: 放假
    workdays: Mapped[list[str]] = mapped_column(sa.JSON)      # ISO dates: 调休上班 (weekend days worked)
    notice: Mapped[str] = mapped_column(sa.Text)              # the text as it was read
    loaded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    loaded_by: Mapped[str] = mapped_column(sa.String(320))


class ClosedPeriodRow(Base):
    """A month the credit section closed (结账): chasing what is still missing stops."""
    __tablename__ = "closed_periods"

    period: Mapped[str] = mapped_column(sa.String(7), primary_key=True)   # YYYY-MM
    closed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    closed_by: Mapped[str] = mapped_column(sa.String(320))


class LoginTokenRow(Base):
    """A one-time link to the web desk mailed to a registered address: only its hash is kept, it
    is good until `expires_at`, and once used (`used_at`) never again."""
    __tablename__ = "login_tokens"
    __table_args__ = (sa.Index(None, "expires_at"),)

    token_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)   # sha256 hex of the token
    address: Mapped[str] = mapped_column(sa.String(320))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
