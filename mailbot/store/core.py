"""Storage: raw messages and attachments as content-addressed files, and the bot's records in SQL.

Files are written temp-then-rename under `storage_dir` and never rewritten or deleted; the
records (messages, attachments, submissions, outbox, failures) live in SQLite by default or
PostgreSQL by URL, in a schema that only Alembic migrations create (`Store.upgrade()`). Every
public method is one transaction and speaks in plain values: no Session leaves this module.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import functools
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from mailbot.store.files import write_atomically
from mailbot.model import Incoming, Outcome, OutgoingMail, Verdict

__all__ = [
    "Base", "MessageRow", "AttachmentRow", "SubmissionRow", "OutboxRow", "FailureRow",
    "StoredMessage", "StoredAttachment", "StoredSubmission", "PriorSubmission",
    "RecordResult", "Queued", "OutboxMail", "OutboxStats", "StoredFailure", "MessageDetail",
    "Store", "MIGRATIONS_DIR", "MESSAGE_OUTCOMES", "SUBMISSION_STATUSES", "OUTBOX_STATUSES",
    "receipt_number", "MailboxStateRow", "MailboxKeyRow", "MailboxPosition",
]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# "failed" is not an Outcome of the pure pipeline: it is kept for a message a person closes by
# hand after replaying it from the failures table.
MESSAGE_OUTCOMES = tuple(o.value for o in Outcome) + ("failed",)
SUBMISSION_STATUSES = ("accepted", "rejected")
OUTBOX_STATUSES = ("pending", "sent", "failed_temporary", "failed_permanent")
_SENDABLE = ("pending", "failed_temporary")

# China has kept UTC+8 without daylight saving since 1991; a fixed offset avoids depending on
# the host's tz database for the date printed in a receipt number.
_BEIJING = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
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
    day = _aware(received_at, "received_at").astimezone(_BEIJING).date()
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


@dataclass(frozen=True)
class MailboxPosition:
    source: str
    uidvalidity: int | None
    last_uid: int
    updated_at: dt.datetime


# ---------------------------------------------------------------- values in and out

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

    @property
    def current(self) -> bool:
        return self.status == "accepted" and self.superseded_by is None


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


def _stored_submission(r: SubmissionRow, receipt_no: str | None, filename: str) -> StoredSubmission:
    return StoredSubmission(
        id=r.id, message_ref=r.message_ref, attachment_ref=r.attachment_ref,
        receipt_no=receipt_no or "", filename=filename, sha256=r.sha256, section=r.section,
        task=r.task, period=r.period, status=r.status, errors=tuple(r.errors),
        warnings=tuple(r.warnings), evidence=tuple(r.evidence), rows=r.rows,
        sheets=tuple(r.sheets), data=r.data, received_at=r.received_at, due=r.due,
        on_time=r.on_time, superseded_by=r.superseded_by, duplicate_of=r.duplicate_of,
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


def _submission_row(msg: "MessageRow", att: "AttachmentRow", item: Any, verdict: Verdict) -> "SubmissionRow":
    return SubmissionRow(
        message_ref=msg.id, attachment_ref=att.id, sha256=item.sha256, section=verdict.section,
        task=item.task, period=item.period, status=item.status,
        errors=[p.as_dict() for p in item.errors], warnings=[p.as_dict() for p in item.warnings],
        evidence=[dataclasses.asdict(e) for e in item.evidence], rows=item.rows,
        sheets=list(item.sheets), data=dict(item.data), received_at=msg.received_at,
        due=item.due, on_time=item.on_time,
    )


def _advisory_key(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big", signed=True)


# ---------------------------------------------------------------- the store

class Store:
    """The one door to the bot's files and records."""

    def __init__(self, url: str, storage_dir: Path, *, sqlite_busy_timeout_ms: int = 15000):
        self.url = url
        self.storage_dir = Path(storage_dir)
        self.engine = sa.create_engine(
            url,
            json_serializer=_json_dumps,
            json_deserializer=_json_loads,
            **({} if url.startswith("sqlite") else {"pool_pre_ping": True}),
        )
        self._sqlite = self.engine.dialect.name == "sqlite"
        if self._sqlite:
            db = self.engine.url.database
            if db and db != ":memory:" and not db.startswith("file:"):
                Path(db).parent.mkdir(parents=True, exist_ok=True)
            _configure_sqlite(self.engine, sqlite_busy_timeout_ms)
            # Writers start with BEGIN IMMEDIATE: a deferred transaction that reads and then
            # writes can fail at once with SQLITE_BUSY in WAL mode, busy timeout or not.
            self._write_engine = self.engine.execution_options(mailbot_sqlite_begin="IMMEDIATE")
        else:
            self._write_engine = self.engine

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self, *, write: bool = False) -> Iterator[Session]:
        with Session(self._write_engine if write else self.engine, expire_on_commit=False) as s, s.begin():
            yield s

    # ------------------------------------------------------------ schema

    def _alembic_config(self, connection: sa.Connection | None = None):
        from alembic.config import Config
        cfg = Config()
        # ConfigParser interpolates '%'; a path may contain one.
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        cfg.attributes["connection"] = connection
        return cfg

    def upgrade(self, revision: str = "head") -> None:
        """Create or upgrade the schema with the Alembic migrations (the only way it is made)."""
        from alembic import command
        with self._write_engine.connect() as conn:
            if self._sqlite:
                # Batch migrations rebuild a table by copy-drop-rename; with foreign keys on, the
                # drop would fail or cascade. The pragma is ignored inside a transaction, so it
                # goes to the driver before SQLAlchemy begins one.
                conn.connection.driver_connection.execute("PRAGMA foreign_keys = OFF")
            try:
                with conn.begin():
                    if not self._sqlite:
                        # Two processes starting together must not both run the same migration.
                        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"),
                                     {"k": _advisory_key("mailbot:migrations")})
                    command.upgrade(self._alembic_config(conn), revision)
                    if self._sqlite:
                        broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
                        if broken:
                            raise RuntimeError(f"migration to {revision} broke foreign keys: {broken[:10]}")
            finally:
                if self._sqlite:
                    conn.connection.driver_connection.execute("PRAGMA foreign_keys = ON")

    def schema_revision(self) -> tuple[str | None, str]:
        """(the database's current revision, the migrations' head): equal when up to date."""
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory
        head = ScriptDirectory.from_config(self._alembic_config()).get_current_head()
        with self.engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
        return current, head or ""

    # ------------------------------------------------------------ files

    def raw_path(self, sha256: str) -> Path:
        sha = _check_sha(sha256)
        return self.storage_dir / "raw" / sha[:2] / f"{sha}.eml"

    def file_path(self, sha256: str) -> Path:
        sha = _check_sha(sha256)
        return self.storage_dir / "files" / sha[:2] / sha

    def archive_raw(self, raw: bytes) -> str:
        """Keep a received message's bytes, before anything else looks at them; returns the sha256."""
        sha = hashlib.sha256(raw).hexdigest()
        write_atomically(self.raw_path(sha), raw, replace=False)
        return sha

    def save_file(self, content: bytes) -> str:
        sha = hashlib.sha256(content).hexdigest()
        write_atomically(self.file_path(sha), content, replace=False)
        return sha

    def read_raw(self, sha256: str) -> bytes:
        return self.raw_path(sha256).read_bytes()

    def read_file(self, sha256: str) -> bytes:
        return self.file_path(sha256).read_bytes()

    # ------------------------------------------------------------ messages

    def find_message(self, message_id: str, raw_sha256: str) -> StoredMessage | None:
        with self._tx() as s:
            row = self._find(s, _message_id_key(message_id), raw_sha256)
            return _stored_message(row) if row is not None else None

    @staticmethod
    def _find(s: Session, key: str, raw_sha256: str) -> MessageRow | None:
        return s.scalars(sa.select(MessageRow).where(
            MessageRow.message_id == key, MessageRow.raw_sha256 == raw_sha256)).one_or_none()

    def prior_submissions(self, sha256s: Iterable[str]) -> list[PriorSubmission]:
        """Every earlier submission of these files, oldest first."""
        shas = sorted(set(sha256s))
        if not shas:
            return []
        with self._tx() as s:
            rows = s.execute(
                sa.select(SubmissionRow, MessageRow.receipt_no)
                .join(MessageRow, SubmissionRow.message_ref == MessageRow.id)
                .where(SubmissionRow.sha256.in_(shas))
                .order_by(SubmissionRow.id)
            ).all()
            return [PriorSubmission(
                sha256=r.sha256, section=r.section, task=r.task, period=r.period, submission_id=r.id,
                receipt_no=receipt or "", status=r.status, received_at=r.received_at,
            ) for r, receipt in rows]

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
        transaction; if it raises, nothing is recorded. Recording the same (Message-ID, raw)
        again writes nothing and returns the first record with created=False.
        """
        received_at = _aware(received_at, "received_at")
        now = _aware(now, "now") if now is not None else _utcnow()
        _check_sha(raw_sha256)
        key = _message_id_key(incoming.message_id)

        existing = self._existing_result(key, raw_sha256)
        if existing is not None:
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
                msg = MessageRow(
                    message_id=key, raw_sha256=raw_sha256, received_at=received_at,
                    from_addr=incoming.from_addr, from_name=incoming.from_name, subject=incoming.subject,
                    source=source, outcome=_value(verdict.outcome), reason=verdict.reason,
                    section=verdict.section,
                    section_evidence=[dataclasses.asdict(e) for e in verdict.section_evidence],
                    problems=[p.as_dict() for p in verdict.problems], receipt_no=None, created_at=now,
                )
                s.add(msg)
                s.flush()
                msg.receipt_no = receipt_number(received_at, msg.id)
                s.flush()

                files = {sha: (len(contents[sha]), declared[sha]) for sha in contents}
                sub_ids = self._record_items(s, msg, verdict, files)

                mails = outbox(msg.receipt_no) if callable(outbox) else outbox
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
                      files: dict[str, tuple[int, str]]) -> list[int]:
        new_subs: list[SubmissionRow] = []
        for position, item in enumerate(verdict.items):
            att = AttachmentRow(
                message_ref=msg.id, position=position, filename=item.filename, sha256=item.sha256,
                size=files[item.sha256][0], kind=_value(item.kind), origin=list(item.origin),
                declared_type=files[item.sha256][1],
                status=item.status, problems=[p.as_dict() for p in item.problems],
            )
            s.add(att)
            s.flush()
            # a quarantined message counts for nothing until a person confirms its section
            if (item.task is None or item.period is None or item.status not in SUBMISSION_STATUSES
                    or verdict.outcome is Outcome.QUARANTINED):
                continue
            sub = _submission_row(msg, att, item, verdict)
            s.add(sub)
            new_subs.append(sub)
        s.flush()

        self._supersede(s, msg, [x for x in new_subs if x.status == "accepted"])
        self._mark_duplicates(s, msg, new_subs)
        return [x.id for x in new_subs]

    def _supersede(self, s: Session, msg: MessageRow, accepted: list[SubmissionRow]) -> None:
        # Files of one message for the same (section, task, period) complete each other (a
        # ledger and its signed scan); a later message replaces them all, history kept.
        by_key: dict[tuple[str | None, int, str], list[SubmissionRow]] = {}
        for sub in accepted:
            by_key.setdefault((sub.section, sub.task, sub.period), []).append(sub)
        for key in sorted(by_key, key=lambda k: (k[0] or "", k[1], k[2])):
            new = by_key[key]
            section, task, period = key
            if not self._sqlite:
                # Two messages for the same key committing together would both stay current.
                s.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"),
                          {"k": _advisory_key(f"supersede:{section}:{task}:{period}")})
            current = s.scalars(sa.select(SubmissionRow).where(
                _is(SubmissionRow.section, section), SubmissionRow.task == task,
                SubmissionRow.period == period, SubmissionRow.status == "accepted",
                SubmissionRow.superseded_by.is_(None), SubmissionRow.message_ref != msg.id,
            ).order_by(SubmissionRow.id)).all()
            # A replayed older message must not replace what a newer one already sent.
            newer = [c for c in current if c.received_at > msg.received_at]
            if newer:
                for sub in new:
                    sub.superseded_by = newer[0].id
            else:
                for c in current:
                    c.superseded_by = new[0].id
        s.flush()

    def _mark_duplicates(self, s: Session, msg: MessageRow, subs: list[SubmissionRow]) -> None:
        for sub in subs:
            # Prefer an accepted original: that is the month the file already counted for.
            earlier = s.scalars(sa.select(SubmissionRow.id).where(
                SubmissionRow.sha256 == sub.sha256, SubmissionRow.period != sub.period,
                SubmissionRow.message_ref != msg.id,
            ).order_by(sa.case((SubmissionRow.status == "accepted", 0), else_=1), SubmissionRow.id)
              .limit(1)).first()
            sub.duplicate_of = earlier
        s.flush()

    # ------------------------------------------------------------ failures (the shunt)

    def confirm_quarantined(self, ref: int | str, *, verdict: Verdict,
                            outbox: Callable[[str], Sequence[OutgoingMail]],
                            now: dt.datetime | None = None) -> RecordResult:
        """A person confirmed a quarantined message's section: record its verdict in place (same
        message row, same files, same receipt number), write its submissions and queue the reply,
        in one transaction. The quarantine notice already sent stays in the outbox history."""
        now = _aware(now, "now") if now is not None else _utcnow()
        with self._tx(write=True) as s:
            msg = self._message_by_ref(s, ref)
            if msg is None:
                raise LookupError(f"no message {ref!r}")
            if msg.outcome != Outcome.QUARANTINED.value:
                raise ValueError(f"message {msg.receipt_no} is {msg.outcome}, not quarantined")
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
                sub = _submission_row(msg, att, item, verdict)
                s.add(sub)
                subs.append(sub)
            s.flush()
            self._supersede(s, msg, [x for x in subs if x.status == "accepted"])
            self._mark_duplicates(s, msg, subs)
            queued = [self._queue_one(s, m, msg.id, now) for m in outbox(msg.receipt_no)]
            return RecordResult(_stored_message(msg), True, tuple(x.id for x in subs), tuple(q.id for q in queued))

    @staticmethod
    def _message_by_ref(s: Session, ref: int | str) -> MessageRow | None:
        if isinstance(ref, int) or (isinstance(ref, str) and ref.strip().isdigit()):
            return s.get(MessageRow, int(ref))
        return s.scalars(sa.select(MessageRow).where(MessageRow.receipt_no == ref.strip().upper())).one_or_none()

    def record_failure(self, raw_sha256: str, source: str, stage: str, error: str, traceback: str,
                       *, now: dt.datetime | None = None) -> int:
        row = FailureRow(raw_sha256=_check_sha(raw_sha256), source=source, stage=stage, error=error,
                         traceback=traceback, created_at=_aware(now, "now") if now else _utcnow(),
                         resolved=False, resolved_at=None)
        with self._tx(write=True) as s:
            s.add(row)
            s.flush()
            return row.id

    def failures(self, unresolved_only: bool = True, limit: int | None = None) -> list[StoredFailure]:
        q = sa.select(FailureRow).order_by(FailureRow.id)
        if unresolved_only:
            q = q.where(FailureRow.resolved.is_(False))
        if limit is not None:
            q = q.limit(limit)
        with self._tx() as s:
            return [_stored_failure(r) for r in s.scalars(q)]

    def resolve_failure(self, failure_id: int, *, now: dt.datetime | None = None) -> bool:
        """Mark a shunted message handled (replayed or judged by a person); False if already so."""
        with self._tx(write=True) as s:
            row = s.get(FailureRow, failure_id)
            if row is None:
                raise LookupError(f"no failure {failure_id}")
            if row.resolved:
                return False
            row.resolved = True
            row.resolved_at = _aware(now, "now") if now else _utcnow()
            return True

    # ------------------------------------------------------------ outbox

    def queue(self, mails: Iterable[OutgoingMail], *, now: dt.datetime | None = None,
              message_ref: int | None = None) -> list[Queued]:
        """Queue mails, each at most once by dedupe_key and by Message-ID; one transaction."""
        now = _aware(now, "now") if now else _utcnow()
        with self._tx(write=True) as s:
            return [self._queue_one(s, m, message_ref, now) for m in mails]

    def _queue_one(self, s: Session, mail: OutgoingMail, message_ref: int | None, now: dt.datetime) -> Queued:
        mid = _message_id_key(mail.mail_message_id)
        if not isinstance(mail.raw, (bytes, bytearray)):
            raise TypeError(f"OutgoingMail.raw must be bytes, got {type(mail.raw).__name__}")
        values = dict(
            message_ref=message_ref, kind=mail.kind, recipients=list(mail.recipients),
            first_recipient=_bare(mail.recipients[0]) if mail.recipients else None,
            subject=mail.subject, mail_message_id=mid, raw=bytes(mail.raw), status="pending",
            attempts=0, next_attempt_at=now, last_error=None, server_reply=None, created_at=now,
            sent_at=None, dedupe_key=mail.dedupe_key,
        )
        # ON CONFLICT DO NOTHING (both dialects) rather than check-then-insert: two schedulers
        # queuing the same reminder at once must not abort each other's transaction.
        if self._sqlite:
            from sqlalchemy.dialects.sqlite import insert
        else:
            from sqlalchemy.dialects.postgresql import insert
        new_id = s.execute(insert(OutboxRow).values(**values).on_conflict_do_nothing()
                           .returning(OutboxRow.id)).scalar_one_or_none()
        if new_id is not None:
            return Queued(new_id, True)
        cond = OutboxRow.mail_message_id == mid
        if mail.dedupe_key is not None:
            cond = sa.or_(cond, OutboxRow.dedupe_key == mail.dedupe_key)
        return Queued(s.scalars(sa.select(OutboxRow.id).where(cond).order_by(OutboxRow.id).limit(1)).one(), False)

    def due_outbox(self, now: dt.datetime, limit: int = 50, *,
                   lease: dt.timedelta | None = None) -> list[OutboxMail]:
        """Mails to try now, oldest first. With `lease`, they are hidden from other callers
        until now + lease, so two senders do not send the same mail (a crashed one's mails
        come back when the lease runs out)."""
        now = _aware(now, "now")
        q = (sa.select(OutboxRow)
             .where(OutboxRow.status.in_(_SENDABLE), OutboxRow.next_attempt_at <= now)
             .order_by(OutboxRow.next_attempt_at, OutboxRow.id).limit(limit))
        if lease is not None:
            q = q.with_for_update(skip_locked=True)
        with self._tx(write=lease is not None) as s:
            rows = list(s.scalars(q))
            if lease is not None:
                for r in rows:
                    r.next_attempt_at = now + lease
                s.flush()
            return [_outbox_mail(r) for r in rows]

    def mark_sent(self, outbox_id: int, server_reply: str, now: dt.datetime) -> None:
        with self._tx(write=True) as s:
            row = self._outbox_row(s, outbox_id)
            row.status = "sent"
            row.attempts += 1
            row.server_reply = server_reply
            row.sent_at = _aware(now, "now")
            row.next_attempt_at = None

    def mark_failed(self, outbox_id: int, error: str, permanent: bool,
                    next_attempt_at: dt.datetime | None = None) -> None:
        """Note a failed attempt; a temporary failure is tried again from `next_attempt_at`."""
        if not permanent and next_attempt_at is None:
            raise ValueError("a temporary failure needs next_attempt_at")
        with self._tx(write=True) as s:
            row = self._outbox_row(s, outbox_id)
            if row.status == "sent":
                # A late failure report must not resend a mail the server already took.
                return
            row.status = "failed_permanent" if permanent else "failed_temporary"
            row.attempts += 1
            row.last_error = error
            row.next_attempt_at = None if permanent else _aware(next_attempt_at, "next_attempt_at")

    @staticmethod
    def _outbox_row(s: Session, outbox_id: int) -> OutboxRow:
        row = s.get(OutboxRow, outbox_id)
        if row is None:
            raise LookupError(f"no outbox mail {outbox_id}")
        return row

    def outbox_stats(self, now: dt.datetime) -> OutboxStats:
        now = _aware(now, "now")
        with self._tx() as s:
            counts = dict.fromkeys(OUTBOX_STATUSES, 0)
            for status, n in s.execute(sa.select(OutboxRow.status, sa.func.count()).group_by(OutboxRow.status)):
                counts[status] = n
            due_q = sa.select(sa.func.count(), sa.func.min(OutboxRow.next_attempt_at)).where(
                OutboxRow.status.in_(_SENDABLE), OutboxRow.next_attempt_at <= now)
            due, oldest = s.execute(due_q).one()
            # min() bypasses the column type, so UTCDateTime has not been applied to it.
            if isinstance(oldest, str):
                oldest = dt.datetime.fromisoformat(oldest)
            if oldest is not None and oldest.tzinfo is None:
                oldest = oldest.replace(tzinfo=dt.UTC)
            return OutboxStats(counts=counts, due=due, oldest_due_at=oldest)

    def outbox(self, ids: Iterable[int] | None = None, *, status: str | None = None,
               limit: int = 100) -> list[OutboxMail]:
        q = sa.select(OutboxRow).order_by(OutboxRow.id.desc()).limit(limit)
        if ids is not None:
            q = q.where(OutboxRow.id.in_(list(ids)))
        if status is not None:
            q = q.where(OutboxRow.status == status)
        with self._tx() as s:
            return [_outbox_mail(r) for r in s.scalars(q)]

    # ------------------------------------------------------------ queries for the CLI and reports

    def messages(self, limit: int = 50, outcome: Outcome | str | None = None) -> list[StoredMessage]:
        """The latest messages, newest first."""
        q = sa.select(MessageRow).order_by(MessageRow.id.desc()).limit(limit)
        if outcome is not None:
            q = q.where(MessageRow.outcome == _value(outcome))
        with self._tx() as s:
            return [_stored_message(r) for r in s.scalars(q)]

    def submissions(self, section: str | None = None, task: int | None = None,
                    period: str | None = None, current_only: bool = True) -> list[StoredSubmission]:
        """Submissions ordered by section, task, period, id; by default only the current accepted ones."""
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
        with self._tx() as s:
            return [_stored_submission(r, receipt, filename) for r, receipt, filename in s.execute(q)]

    def message_detail(self, ref: int | str) -> MessageDetail | None:
        """A message with its files, submissions and mails, by row id or receipt number."""
        with self._tx() as s:
            if isinstance(ref, int) or (isinstance(ref, str) and ref.strip().isdigit()):
                row = s.get(MessageRow, int(ref))
            else:
                row = s.scalars(sa.select(MessageRow).where(MessageRow.receipt_no == ref.strip().upper())).one_or_none()
            if row is None:
                return None
            atts = s.scalars(sa.select(AttachmentRow).where(AttachmentRow.message_ref == row.id)
                             .order_by(AttachmentRow.position, AttachmentRow.id)).all()
            names = {a.id: a.filename for a in atts}
            subs = s.scalars(sa.select(SubmissionRow).where(SubmissionRow.message_ref == row.id)
                             .order_by(SubmissionRow.id)).all()
            outs = s.scalars(sa.select(OutboxRow).where(OutboxRow.message_ref == row.id)
                             .order_by(OutboxRow.id)).all()
            return MessageDetail(
                message=_stored_message(row),
                attachments=tuple(_stored_attachment(a) for a in atts),
                submissions=tuple(_stored_submission(x, row.receipt_no, names.get(x.attachment_ref, ""))
                                  for x in subs),
                outbox=tuple(_outbox_mail(o) for o in outs),
            )


    # ------------------------------------------------------------ mailbox progress (for mailbox.py)

    def mailbox_position(self, source: str) -> MailboxPosition | None:
        with self._tx() as s:
            row = s.get(MailboxStateRow, source)
            return (MailboxPosition(row.source, row.uidvalidity, row.last_uid, row.updated_at)
                    if row is not None else None)

    def save_mailbox_position(self, source: str, uidvalidity: int | None, last_uid: int, *,
                              now: dt.datetime | None = None) -> None:
        """Note that every UID up to last_uid is settled; under the same UIDVALIDITY it never goes back."""
        now = _aware(now, "now") if now else _utcnow()
        with self._tx(write=True) as s:
            row = s.get(MailboxStateRow, source, with_for_update=not self._sqlite)
            if row is None:
                s.add(MailboxStateRow(source=source, uidvalidity=uidvalidity, last_uid=last_uid, updated_at=now))
            elif row.uidvalidity != uidvalidity or last_uid > row.last_uid:
                row.uidvalidity, row.last_uid, row.updated_at = uidvalidity, last_uid, now

    def settled_keys(self, source: str, keys: Iterable[str]) -> set[str]:
        """Which of these message keys of `source` were settled already."""
        wanted = sorted(set(keys))
        found: set[str] = set()
        with self._tx() as s:
            for i in range(0, len(wanted), 500):
                found.update(s.scalars(sa.select(MailboxKeyRow.msg_key).where(
                    MailboxKeyRow.source == source, MailboxKeyRow.msg_key.in_(wanted[i:i + 500]))))
        return found

    def mark_settled(self, source: str, key: str, outcome: str, *, now: dt.datetime | None = None) -> None:
        now = _aware(now, "now") if now else _utcnow()
        if self._sqlite:
            from sqlalchemy.dialects.sqlite import insert
        else:
            from sqlalchemy.dialects.postgresql import insert
        with self._tx(write=True) as s:
            s.execute(insert(MailboxKeyRow).values(source=source, msg_key=key, outcome=outcome, settled_at=now)
                      .on_conflict_do_nothing())


    # ------------------------------------------------------------ reply cap (for pipeline.py)

    def auto_replies_since(self, address: str, since: dt.datetime, *,
                           kinds: Sequence[str] = ("receipt", "rejection", "quarantine_notice")) -> int:
        """How many automatic replies were queued to `address` from `since` on, whatever their status.

        The pipeline asks this before drafting a reply, to cap replies per sender per hour: a
        reply over the cap is not drafted (the message is still recorded), so a misbehaving
        auto-responder cannot hold the bot in a loop. Counted at queue time, not send time:
        what was drafted is what the loop produced, sent yet or not. Reminders and digests are
        scheduled, not caused by incoming mail, and are not counted. `address` and the stored
        recipients ('Name <a@b>' or 'a@b') are compared as bare addresses, case-insensitively.
        """
        since = _aware(since, "since")
        want = _bare(address)
        if not want:
            return 0
        with self._tx() as s:
            # Replies go to one address, kept bare and indexed with the queue time: one COUNT,
            # however long the backlog.
            return s.scalar(sa.select(sa.func.count()).select_from(OutboxRow).where(
                OutboxRow.first_recipient == want, OutboxRow.kind.in_(list(kinds)),
                OutboxRow.created_at >= since)) or 0


class _AlreadyRecorded(Exception):
    """Raised inside record()'s transaction to roll it back when another writer got there first."""


def _bare(address: str) -> str:
    """'Name <A@B>' or 'a@b' -> 'a@b'."""
    import email.utils
    _name, addr = email.utils.parseaddr(address)
    return (addr or address).strip().lower()[:320]


def _value(v: Any) -> Any:
    return v.value if isinstance(v, enum.Enum) else v


def _is(column: Any, value: Any) -> Any:
    return column.is_(None) if value is None else column == value


def _check_sha(sha256: str) -> str:
    # The sha names a path: anything else (from a CLI argument, say) must not reach the disk.
    if not isinstance(sha256, str) or not _SHA256_RE.match(sha256):
        raise ValueError(f"not a sha256 hex digest: {sha256!r}")
    return sha256


def _configure_sqlite(engine: sa.Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin (the module's
        # own implicit BEGIN breaks SAVEPOINT and cannot do BEGIN IMMEDIATE).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys = ON")
        cur.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        cur.execute("PRAGMA journal_mode = WAL")
        # FULL: a commit survives power loss; the IMAP move that follows a commit relies on it.
        cur.execute("PRAGMA synchronous = FULL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        mode = conn.get_execution_options().get("mailbot_sqlite_begin", "")
        conn.exec_driver_sql(f"BEGIN {mode}".strip())
