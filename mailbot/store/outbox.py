"""The outbox: mails queued once each, handed to the sender with a lease, and what became of them."""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mailbot.model import OutgoingMail
from mailbot.store.database import Database
from mailbot.store.records import OutboxMail, OutboxStats, Queued, _outbox_mail
from mailbot.store.schema import OUTBOX_STATUSES, OutboxRow, _aware, _message_id_key, _utcnow

__all__ = ["Outbox"]

_SENDABLE = ("pending", "failed_temporary")
_O = OutboxRow.__table__
_MARK_SENT = sa.update(_O).where(_O.c.id == sa.bindparam("b_id")).values(
    status="sent", attempts=_O.c.attempts + 1, server_reply=sa.bindparam("b_reply"), sent_at=sa.bindparam("b_at"),
    next_attempt_at=None)


class Outbox(Database):
    """Outgoing mail, from the queue to the SMTP server's answer."""

    _queueing: Any = None

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
        if self._queueing is None:      # built once: every message's reply runs it
            self._queueing = self._insert(OutboxRow.__table__).on_conflict_do_nothing().returning(OutboxRow.id)
        new_id = s.connection().execute(self._queueing, values).scalar_one_or_none()
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
        # One UPDATE, once per mail sent: reading the row first would read the letter's bytes too.
        with self._tx(write=True) as s:
            done = s.connection().execute(_MARK_SENT, {"b_id": outbox_id, "b_reply": server_reply,
                                                       "b_at": _aware(now, "now")})
            if done.rowcount == 0:
                raise LookupError(f"no outbox mail {outbox_id}")

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


def _bare(address: str) -> str:
    """'Name <A@B>' or 'a@b' -> 'a@b'."""
    import email.utils
    _name, addr = email.utils.parseaddr(address)
    return (addr or address).strip().lower()[:320]
