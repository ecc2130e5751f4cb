"""The shunt: messages that crashed the pipeline, kept with stage and traceback for a person."""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from mailbot.store.blobs import _check_sha
from mailbot.store.database import Database
from mailbot.store.records import StoredFailure, _stored_failure
from mailbot.store.schema import FailureRow, _aware, _utcnow

__all__ = ["Shunt"]


class Shunt(Database):
    """The failures table: one row a crash, resolved by hand or by a replay."""

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
