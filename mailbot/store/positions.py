"""How far each mailbox has been read: IMAP UIDs under their UIDVALIDITY, and Maildir keys settled."""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import sqlalchemy as sa

from mailbot.store.database import Database
from mailbot.store.records import MailboxPosition
from mailbot.store.schema import MailboxKeyRow, MailboxStateRow, _aware, _utcnow

__all__ = ["Positions"]


class Positions(Database):
    """Mailbox progress, so a restart fetches nothing it has settled (for mailbox.py)."""

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
        with self._tx(write=True) as s:
            s.execute(self._insert(MailboxKeyRow).values(source=source, msg_key=key, outcome=outcome, settled_at=now)
                      .on_conflict_do_nothing())
