"""What the credit section's desk keeps: the audit log of every action, the holiday schedules it
loaded, and the months it closed."""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from mailbot.store.database import Database
from mailbot.store.schema import AuditRow, ClosedPeriodRow, LoadedCalendarRow, _aware, _utcnow

__all__ = ["DeskRecords", "AuditEntry", "LoadedCalendar"]


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: dt.datetime
    actor: str
    role: str
    section: str | None
    channel: str
    action: str
    args: dict[str, Any]
    ok: bool
    result: str
    ref: str | None

    def as_dict(self) -> dict[str, Any]:
        from mailbot.dates.zone import iso
        return {"id": self.id, "at": iso(self.at), "actor": self.actor, "role": self.role, "section": self.section,
                "channel": self.channel, "action": self.action, "args": self.args, "ok": self.ok,
                "result": self.result}


@dataclass(frozen=True)
class LoadedCalendar:
    year: int
    days_off: frozenset[dt.date]
    workdays: frozenset[dt.date]
    notice: str
    loaded_at: dt.datetime
    loaded_by: str


def _entry(r: AuditRow) -> AuditEntry:
    return AuditEntry(r.id, r.at, r.actor, r.role, r.section, r.channel, r.action, dict(r.args or {}), r.ok,
                      r.result, r.ref)


class DeskRecords(Database):
    """The audit log, loaded holiday schedules and closed months."""

    # ------------------------------------------------------------ the audit log

    def record_audit(self, *, actor: str, role: str, channel: str, action: str, args: dict[str, Any], ok: bool,
                     result: str, section: str | None = None, ref: str | None = None,
                     now: dt.datetime | None = None) -> AuditEntry:
        """Record one action. An action recorded before under `ref` (the same request again, after a
        crash or a failure) is one row: it says how the latest attempt ended."""
        at = _aware(now, "now") if now is not None else _utcnow()
        values = dict(at=at, actor=actor, role=role, section=section, channel=channel, action=action,
                      args=args, ok=ok, result=result, ref=ref)
        with self._tx(write=True) as s:
            if ref is not None:
                s.execute(self._insert(AuditRow).values(**values).on_conflict_do_update(
                    index_elements=["ref"], set_=dict(at=at, ok=ok, result=result)))
                return _entry(s.scalars(sa.select(AuditRow).where(AuditRow.ref == ref)).one())
            row = AuditRow(**values)
            s.add(row)
            s.flush()
            return _entry(row)

    def audit_entry(self, ref: str) -> AuditEntry | None:
        """The action recorded under `ref`, if any."""
        with self._tx() as s:
            row = s.scalars(sa.select(AuditRow).where(AuditRow.ref == ref)).one_or_none()
            return _entry(row) if row is not None else None

    def audit(self, *, limit: int = 1000, since: dt.datetime | None = None, action: str | None = None,
              actor: str | None = None) -> list[AuditEntry]:
        """The newest actions first."""
        q = sa.select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
        if since is not None:
            q = q.where(AuditRow.at >= _aware(since, "since"))
        if action is not None:
            q = q.where(AuditRow.action == action)
        if actor is not None:
            q = q.where(AuditRow.actor == actor)
        with self._tx() as s:
            return [_entry(r) for r in s.scalars(q)]

    # ------------------------------------------------------------ holiday schedules

    def load_calendar(self, year: int, days_off: Iterable[dt.date], workdays: Iterable[dt.date], *, notice: str,
                      loaded_by: str, now: dt.datetime | None = None) -> LoadedCalendar:
        """Keep `year`'s schedule; it replaces any loaded before (which stays in the table)."""
        row = LoadedCalendarRow(year=year, days_off=sorted(d.isoformat() for d in days_off),
                                workdays=sorted(d.isoformat() for d in workdays), notice=notice,
                                loaded_at=_aware(now, "now") if now is not None else _utcnow(), loaded_by=loaded_by)
        with self._tx(write=True) as s:
            s.add(row)
            s.flush()
            return _calendar(row)

    def loaded_calendars(self) -> dict[int, LoadedCalendar]:
        """The schedule in force for every year loaded: the newest of each year."""
        with self._tx() as s:
            rows = s.scalars(sa.select(LoadedCalendarRow).order_by(LoadedCalendarRow.id)).all()
            return {r.year: _calendar(r) for r in rows}

    # ------------------------------------------------------------ closed months

    def close_period(self, period: str, *, closed_by: str, now: dt.datetime | None = None) -> bool:
        """Close `period`; False when it was closed before (the first closing stands)."""
        at = _aware(now, "now") if now is not None else _utcnow()
        with self._tx(write=True) as s:
            done = s.execute(self._insert(ClosedPeriodRow).values(period=period, closed_at=at, closed_by=closed_by)
                             .on_conflict_do_nothing(index_elements=["period"]))
            return bool(done.rowcount)

    def closed_periods(self) -> dict[str, tuple[dt.datetime, str]]:
        """period → (when, by whom)."""
        with self._tx() as s:
            return {r.period: (r.closed_at, r.closed_by) for r in s.scalars(sa.select(ClosedPeriodRow))}


def _calendar(r: LoadedCalendarRow) -> LoadedCalendar:
    return LoadedCalendar(r.year, frozenset(dt.date.fromisoformat(d) for d in r.days_off),
                          frozenset(dt.date.fromisoformat(d) for d in r.workdays), r.notice, r.loaded_at, r.loaded_by)
