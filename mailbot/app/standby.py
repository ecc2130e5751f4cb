"""Which `mailbot run` is the active one: exactly one reads the mailbox, sends the outbox and runs the jobs.

The database is the coordinator; nothing else is.

* PostgreSQL: a session-level advisory lock (`pg_try_advisory_lock`) held on one dedicated
  connection, outside the pool the work uses. Whoever holds it is active; every other daemon on
  the same database is a standby and tries again every `standby_retry` seconds. A process that
  dies closes its connection and PostgreSQL drops the lock at once; a host that vanishes
  without closing TCP is found by the server's keepalives on that connection (asked for by the
  connection itself, `SERVER_KEEPALIVE`), and its lock dropped within about 25 s. The active
  daemon checks the connection every second (`still_held`) and, with `tcp_user_timeout` and
  client keepalives bounding a check on a dead network, stops working before the server gives
  the lock away. Every daemon names itself in `application_name` ("mailbot-daemon PID SINCE
  HOST"), so `pg_locks` and `pg_stat_activity` say who is active and who waits (`daemons`).
* SQLite: one daemon per storage. An exclusive `flock` on `storage/daemon.lock`, which records
  the holder's pid, host and since; a second daemon is refused (`Refused`) naming them.
"""
from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from mailbot.store.database import _advisory_key

__all__ = ["Refused", "Holder", "PostgresRole", "FileRole", "role_for", "daemons", "LOCK_FILE", "LOCK_NAME"]

log = logging.getLogger("mailbot.app.standby")
LOCK_FILE = "daemon.lock"
LOCK_NAME = "mailbot:daemon"
_APP = "mailbot-daemon"
# The server drops a vanished host's connection (and its lock) after idle + interval × count ≈ 25 s.
SERVER_KEEPALIVE = "-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3"
# The client gives up on a dead network sooner (10 s), so the active one stops before the lock is gone.
CLIENT_KEEPALIVE = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 3,
                    "tcp_user_timeout": 10_000, "connect_timeout": 10}


class Refused(Exception):
    """This daemon may not start: another holds the storage (SQLite)."""


@dataclass(frozen=True)
class Holder:
    host: str
    pid: int
    since: dt.datetime | None
    active: bool = True

    def as_dict(self, tz: dt.tzinfo | None = None) -> dict[str, Any]:
        since = self.since.astimezone(tz) if self.since and tz else self.since
        return {"host": self.host, "pid": self.pid, "since": since.isoformat() if since else None}

    def __str__(self) -> str:
        since = f" since {self.since.isoformat(timespec='seconds')}" if self.since else ""
        return f"pid {self.pid} on {self.host}{since}"


def _me(since: float) -> Holder:
    return Holder(socket.gethostname(), os.getpid(), dt.datetime.fromtimestamp(since, dt.UTC))


class _Role:
    """wait_until_active → still_held (each second while working) → close."""
    kind = ""

    def __init__(self) -> None:
        self.since: float | None = None          # when this daemon became active

    def try_acquire(self) -> bool:
        raise NotImplementedError

    def still_held(self) -> bool:
        raise NotImplementedError

    def holder(self) -> Holder | None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def wait_until_active(self, stop: threading.Event, retry: float) -> bool:
        """Block until this daemon is the active one (True) or `stop` is set (False)."""
        said = None
        while not stop.is_set():
            try:
                if self.try_acquire():
                    self.since = time.time()
                    log.info("active: this daemon (pid %d on %s) holds the %s", os.getpid(), socket.gethostname(),
                             self.kind)
                    return True
                other = self.holder()
                if str(other) != said:
                    log.info("standby: %s is active; trying again every %s s",
                             other or "another daemon", retry)
                    said = str(other)
            except Refused:
                raise
            except Exception as e:  # noqa: BLE001 - the database away: keep trying, as a standby
                log.warning("standby: cannot reach the coordinator (%s: %s); trying again in %s s",
                            type(e).__name__, e, retry)
            stop.wait(retry)
        return False

    def fields(self) -> dict[str, Any]:
        """What the active daemon writes into the health file."""
        return {"role": "active", "host": socket.gethostname(), "lock": self.kind,
                "active_since": dt.datetime.fromtimestamp(self.since or time.time(), dt.UTC).isoformat()}


class PostgresRole(_Role):
    kind = "PostgreSQL advisory lock"

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self.key = _advisory_key(LOCK_NAME)
        self._started = time.time()
        self._conn: sa.Connection | None = None
        self._engine = sa.create_engine(url, poolclass=sa.NullPool, connect_args={
            **CLIENT_KEEPALIVE, "options": SERVER_KEEPALIVE, "application_name": self._name(self._started)})

    def _name(self, since: float) -> str:
        return f"{_APP} {os.getpid()} {int(since)} {socket.gethostname()}"[:63]

    def _connection(self) -> sa.Connection:
        if self._conn is None or self._conn.closed or self._conn.invalidated:
            self._drop()
            self._conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        return self._conn

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001 - a broken connection may fail to close
                pass
            self._conn = None

    def try_acquire(self) -> bool:
        conn = self._connection()
        got = bool(conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar())
        if got:   # "since" in the name: health tells when this one became active
            conn.execute(sa.text("SELECT set_config('application_name', :n, false)"), {"n": self._name(time.time())})
        return got

    def still_held(self) -> bool:
        try:
            return bool(self._connection().execute(sa.text(
                "SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'advisory' AND granted "
                "AND classid::bigint = :hi AND objid::bigint = :lo AND objsubid = 1"), _halves(self.key)).scalar())
        except Exception as e:  # noqa: BLE001 - the connection is gone, and the lock with it
            log.error("the coordinator's connection is lost (%s: %s)", type(e).__name__, e)
            self._drop()
            return False

    def holder(self) -> Holder | None:
        for d in daemons(self._connection(), self.key):
            if d.active:
                return d
        return None

    def close(self) -> None:
        self._drop()
        self._engine.dispose()


def _halves(key: int) -> dict[str, int]:
    """pg_locks shows a bigint advisory key as classid (high 32 bits) and objid (low 32 bits)."""
    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
    return {"hi": unsigned >> 32, "lo": unsigned & 0xFFFF_FFFF}


def daemons(conn: sa.Connection, key: int | None = None) -> list[Holder]:
    """Every `mailbot run` on this PostgreSQL database, by its lock connection; the active one first."""
    key = _advisory_key(LOCK_NAME) if key is None else key
    rows = conn.execute(sa.text(
        "SELECT a.application_name, EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND l.locktype = 'advisory' "
        "AND l.granted AND l.classid::bigint = :hi AND l.objid::bigint = :lo AND l.objsubid = 1) "
        "FROM pg_stat_activity a WHERE a.datname = current_database() AND a.application_name LIKE :app"),
        {**_halves(key), "app": _APP + " %"}).all()
    out = []
    for name, active in rows:
        parts = name.split(" ", 3)
        if len(parts) == 4 and parts[1].isdigit() and parts[2].isdigit():
            out.append(Holder(parts[3], int(parts[1]), dt.datetime.fromtimestamp(int(parts[2]), dt.UTC), bool(active)))
    return sorted(out, key=lambda h: (not h.active, h.since or dt.datetime.min.replace(tzinfo=dt.UTC)))


class FileRole(_Role):
    """SQLite: the first daemon on a storage holds `storage/daemon.lock`; a second one is refused."""
    kind = "storage lock file"

    def __init__(self, storage: Path) -> None:
        super().__init__()
        self.path = Path(storage) / LOCK_FILE
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            other = read_lock_file(self.path)
            raise Refused(f"another mailbot daemon ({other or 'pid unknown'}) is running on the storage "
                          f"{self.path.parent}: it holds {self.path}. With SQLite only one daemon may run on a "
                          f"storage; a standby needs PostgreSQL (docs/DEPLOYMENT.md)") from None
        me = _me(time.time())
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": me.pid, "host": me.host, "since": me.since.isoformat()}).encode(), 0)
        os.fsync(fd)
        self._fd = fd
        return True

    def still_held(self) -> bool:
        return self._fd is not None

    def holder(self) -> Holder | None:
        return read_lock_file(self.path)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)                   # closing drops the lock; the file stays (removing it would race)
            self._fd = None


def read_lock_file(path: Path) -> Holder | None:
    """The daemon recorded in a storage's lock file, if that daemon still runs (as far as this host can tell)."""
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
        holder = Holder(str(d["host"]), int(d["pid"]), dt.datetime.fromisoformat(d["since"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if holder.host == socket.gethostname():
        try:
            os.kill(holder.pid, 0)
        except ProcessLookupError:
            return None                          # it died; its lock died with it
        except PermissionError:
            pass
    return holder


def role_for(database: str, storage: Path) -> _Role:
    return FileRole(storage) if database.startswith("sqlite") else PostgresRole(database)


def report(database: str, storage: Path, engine: sa.Engine, tz: dt.tzinfo) -> dict[str, Any]:
    """For `mailbot health`: the active daemon, the standbys (PostgreSQL), and this host's role."""
    if database.startswith("sqlite"):
        found = [h for h in [read_lock_file(Path(storage) / LOCK_FILE)] if h]
    else:
        with engine.connect() as conn:
            found = daemons(conn)
    active = next((h for h in found if h.active), None)
    here = [h for h in found if h.host == socket.gethostname()]
    role = ("active" if any(h.active for h in here) else "standby") if here else None
    return {"role": role, "active": active.as_dict(tz) if active else None,
            "standby": [h.as_dict(tz) for h in found if not h.active]}
