"""The engine and its transactions, SQLite's settings, and the schema that Alembic migrations make."""
from __future__ import annotations

import functools
import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session

from mailbot.store.files import sync_files
from mailbot.store.schema import _json_dumps, _json_loads

__all__ = ["Database", "MIGRATIONS_DIR"]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


class Database:
    """What every part of the store shares: the engine, one transaction per call, the storage folder."""

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
        self._batch = threading.local()     # the group commit this thread is inside, if any

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self, *, write: bool = False) -> Iterator[Session]:
        joined: Session | None = getattr(self._batch, "session", None)
        if joined is not None:
            # Inside batch(): a savepoint of its one transaction, so that what fails rolls back
            # alone, exactly as its own transaction would have; and, as in a session of its own,
            # no object loaded by an earlier call (an UPDATE since may have made it stale).
            outermost = self._batch.depth == 0
            self._batch.depth += 1
            try:
                with joined.begin_nested():
                    yield joined
            finally:
                self._batch.depth -= 1
                if outermost and joined.identity_map:
                    joined.expunge_all()
            return
        with Session(self._write_engine if write else self.engine, expire_on_commit=False) as s, s.begin():
            yield s

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Group commit: every call this thread makes inside is one transaction, committed (or
        rolled back) at the end, and the files written meanwhile reach the disk once, before it.

        For a backlog: one commit and one flush of the files for many messages instead of one
        each. Whoever settles the messages outside (an IMAP move) does it after this returns.
        Other threads and other processes keep their own transactions; nested, it joins.
        """
        if self._in_batch():
            yield
            return
        with Session(self._write_engine, expire_on_commit=False) as s, s.begin():
            self._batch.session, self._batch.unsynced, self._batch.depth = s, [], 0
            try:
                yield
                sync_files(self._batch.unsynced)
            finally:
                self._batch.session = self._batch.unsynced = None

    def _in_batch(self) -> bool:
        return getattr(self._batch, "session", None) is not None

    @staticmethod
    def _insert_rows(s: Session, row_class: type[Any], rows: list[dict[str, Any]]) -> list[int]:
        """INSERT rows in one statement (Core, RETURNING): their new ids, in the rows' order."""
        if not rows:
            return []
        return list(s.connection().execute(_inserting(row_class.__table__), rows).scalars())

    def _durably(self, path: Path) -> bool:
        """Whether a file written now must reach the disk before the write returns; inside batch()
        it is noted instead, and flushed with the others before the commit."""
        unsynced = getattr(self._batch, "unsynced", None)
        if unsynced is None:
            return True
        unsynced.append(path)
        return False

    def _insert(self, table: type[Any]) -> Any:
        """An INSERT that can say ON CONFLICT DO NOTHING, in this database's dialect."""
        if self._sqlite:
            from sqlalchemy.dialects.sqlite import insert
        else:
            from sqlalchemy.dialects.postgresql import insert
        return insert(table)

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


def _advisory_key(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big", signed=True)


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


@functools.cache
def _inserting(table: sa.Table) -> sa.Insert:
    # built once a table: building a statement costs SQLAlchemy more than SQLite takes to run it
    return sa.insert(table).returning(table.c.id, sort_by_parameter_order=True)
