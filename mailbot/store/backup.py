"""Backup and restore of a deployment: a consistent database snapshot plus every stored file, in one tar.gz with a manifest.

Backup runs while the daemon runs. The database is snapshotted FIRST and the storage folder walked
after: the store writes a file before the transaction that refers to it commits and never deletes
one, so every file the snapshot refers to is already on disk when the walk reaches it (files
newer than the snapshot may come along too; they are harmless, as after any crash).
"""
from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import sqlalchemy as sa

__all__ = ["backup", "restore", "stored_files", "BackupReport", "RestoreReport", "BackupError", "RestoreError",
           "FORMAT_VERSION"]

FORMAT = "mailbot-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
HEALTH_FILE = "health.json"          # mailbot's daemon HEALTH_FILE: rewritten every poll, meaningless in a copy
_TEMP_PREFIXES = (".tmp-",)          # write_atomically's temp files, and restore's staging folder
_SKIP_SUFFIXES = (".part", ".tmp", ".lock", ".pid")
_SQLITE_SIDE_FILES = ("", "-wal", "-shm", "-journal")
_CHUNK = 1 << 20


class BackupError(RuntimeError):
    """A backup could not be made; the message says why (nothing is left at `out`)."""


class RestoreError(RuntimeError):
    """A restore was refused or failed its checks; the message says which and where."""


@dataclass(frozen=True)
class BackupReport:
    path: Path
    database_kind: str               # sqlite | postgresql
    alembic_revision: str | None
    tables: dict[str, int]           # rows per table in the snapshot
    files: int
    files_bytes: int
    archive_bytes: int
    seconds: float


@dataclass(frozen=True)
class RestoreReport:
    database_kind: str
    alembic_revision: str | None
    tables: dict[str, int]           # rows per table in the restored database (= the manifest's)
    files: int
    files_bytes: int
    seconds: float


# ---------------------------------------------------------------- shared helpers

@contextlib.contextmanager
def _private_umask() -> Iterator[None]:
    # Process-wide, so only for the backup/restore commands (never inside the daemon's threads):
    # the archive, the dump pg_dump writes and every restored file hold the bureau's mail.
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def _kind(url: sa.URL) -> str:
    kind = url.get_backend_name()
    if kind not in ("sqlite", "postgresql"):
        raise BackupError(f"unsupported database {kind!r}: mailbot keeps its records in SQLite or PostgreSQL")
    return kind


def _sqlite_path(url: sa.URL) -> Path:
    db = url.database
    if not db or db == ":memory:" or db.startswith("file:"):
        raise BackupError(f"cannot back up or restore the SQLite database {db!r}: a file path is needed")
    return Path(os.path.abspath(db))


def _libpq(url: sa.URL) -> tuple[str, dict[str, str]]:
    """The URL as a libpq connection string for pg_dump/pg_restore, and the environment to run them in.

    The password goes in PGPASSWORD, never on the command line, where `ps` shows it to every user.
    """
    from psycopg.conninfo import make_conninfo
    params: dict[str, Any] = {k: (v[-1] if isinstance(v, tuple) else v) for k, v in url.query.items()}
    for key, value in (("host", url.host), ("port", url.port), ("user", url.username), ("dbname", url.database)):
        if value is not None:
            params[key] = value
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    return make_conninfo(**params), env


def _run(cmd: list[str], env: dict[str, str], error: type[Exception]) -> None:
    try:
        done = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    except FileNotFoundError:
        raise error(f"{cmd[0]} not found: install the PostgreSQL client tools of the server's major version "
                    "or newer (Debian: postgresql-client)") from None
    if done.returncode != 0:
        raise error(f"{cmd[0]} failed (exit {done.returncode}): {done.stderr.strip()}")


def _count_rows(conn: sa.Connection) -> tuple[dict[str, int], str | None]:
    """Rows per table and the Alembic revision, as this connection's transaction sees them."""
    quote = conn.dialect.identifier_preparer.quote
    names = sorted(sa.inspect(conn).get_table_names())
    tables = {n: conn.execute(sa.text(f"SELECT count(*) FROM {quote(n)}")).scalar_one() for n in names}
    revision = None
    if "alembic_version" in tables:
        revision = ",".join(sorted(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())) or None
    return tables, revision


def _is_stored(rel: PurePosixPath) -> bool:
    if rel.as_posix() == HEALTH_FILE:
        return False
    return not any(p.startswith(_TEMP_PREFIXES) for p in rel.parts) and not rel.name.endswith(_SKIP_SUFFIXES)


def stored_files(storage_dir: Path, exclude: set[Path] = frozenset()) -> Iterator[tuple[str, Path]]:
    """(relative posix path, path) of every stored file, sorted: all but health, temp and lock files
    and the paths in `exclude` (the live SQLite files, the archive being written)."""
    for top, dirs, files in os.walk(storage_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith(_TEMP_PREFIXES))
        for name in sorted(files):
            path = Path(top) / name
            rel = PurePosixPath(path.relative_to(storage_dir).as_posix())
            # Not following links: a link would copy whatever it points at, inside storage or not.
            if path in exclude or not _is_stored(rel) or path.is_symlink() or not path.is_file():
                continue
            yield rel.as_posix(), path


def _live_sqlite_files(url: sa.URL) -> set[Path]:
    if _kind(url) != "sqlite":
        return set()
    db = _sqlite_path(url)
    return {db.with_name(db.name + s) for s in _SQLITE_SIDE_FILES}


class _Hashing(io.RawIOBase):
    """A reader that hashes what tarfile copies, so the manifest describes the bytes archived."""

    def __init__(self, f: Any):
        self.f, self.sha, self.size = f, hashlib.sha256(), 0

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.sha.update(data)
        self.size += len(data)
        return data


def _add(tar: tarfile.TarFile, arcname: str, path: Path) -> dict[str, Any]:
    with open(path, "rb") as f:
        st = os.fstat(f.fileno())
        info = tarfile.TarInfo(arcname)
        info.size, info.mtime, info.mode = st.st_size, int(st.st_mtime), 0o600
        reader = _Hashing(f)
        tar.addfile(info, reader)
    return {"sha256": reader.sha.hexdigest(), "size": reader.size}


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _mailbot_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("mailbot")
    except PackageNotFoundError:
        return None


# ---------------------------------------------------------------- backup

def _snapshot_sqlite(db: Path, tmp: Path) -> tuple[Path, dict[str, int], str | None]:
    if not db.is_file():
        raise BackupError(f"no SQLite database at {db}")
    dest = tmp / db.name
    try:
        # Read-only: a backup must not be able to write to the daemon's database.
        src = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=60)
        try:
            dst = sqlite3.connect(dest)
            try:
                # pages=-1 copies every page in one step under one read transaction: the last commit,
                # whatever writers do meanwhile (in WAL mode they carry on; an open write transaction
                # is simply not in it). A multi-step copy would restart on every commit of the daemon.
                src.backup(dst, pages=-1)
                # A standalone file: no -wal beside it in the archive (Store turns WAL on again at open).
                dst.execute("PRAGMA journal_mode=DELETE")
                check = dst.execute("PRAGMA quick_check").fetchall()
                if check != [("ok",)]:
                    raise BackupError(f"the snapshot of {db} fails SQLite's quick_check: {check[:5]}")
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.Error as e:
        raise BackupError(f"cannot snapshot {db}: {e}") from e
    engine = sa.create_engine(f"sqlite:///{dest}", poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            tables, revision = _count_rows(conn)
    finally:
        engine.dispose()
    return dest, tables, revision


def _dump_postgres(url: sa.URL, tmp: Path) -> tuple[Path, dict[str, int], str | None]:
    dest = tmp / "mailbot.pgdump"
    conninfo, env = _libpq(url)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            with conn.begin():
                # pg_dump reads under the snapshot this transaction exports, so the row counts in
                # the manifest are exactly the dump's, even with the daemon writing meanwhile.
                snapshot = conn.execute(sa.text("SELECT pg_export_snapshot()")).scalar_one()
                tables, revision = _count_rows(conn)
                _run(["pg_dump", "--format=custom", f"--snapshot={snapshot}", "--no-password",
                      f"--file={dest}", f"--dbname={conninfo}"], env, BackupError)
    except sa.exc.SQLAlchemyError as e:
        raise BackupError(f"cannot read the database {url.render_as_string(hide_password=True)}: {e}") from e
    finally:
        engine.dispose()
    return dest, tables, revision


def backup(database_url: str, storage_dir: Path, out: Path) -> BackupReport:
    """Write one .tar.gz at `out`: the database snapshot, every stored file and manifest.json.

    Safe while the daemon runs. The archive appears at `out` only when complete (written beside
    it as OUT.part, fsynced, renamed); every file in it is 0600.
    """
    started = time.monotonic()
    url = sa.make_url(database_url)
    kind = _kind(url)
    storage_dir, out = Path(storage_dir).resolve(), Path(out).resolve()
    if not storage_dir.is_dir():
        raise BackupError(f"no storage folder at {storage_dir}")
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(out.name + ".part")
    with _private_umask(), tempfile.TemporaryDirectory(prefix="mailbot-backup-") as tmp:
        db_file, tables, revision = (_snapshot_sqlite(_sqlite_path(url), Path(tmp)) if kind == "sqlite"
                                     else _dump_postgres(url, Path(tmp)))
        exclude = _live_sqlite_files(url) | {out, part}
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as raw:
                # Level 6: most of the bytes are xlsx/zip/jpeg that do not shrink; 9 only costs time.
                with tarfile.open(fileobj=raw, mode="w:gz", compresslevel=6) as tar:
                    db_entry = {"kind": kind, "file": f"database/{db_file.name}",
                                **_add(tar, f"database/{db_file.name}", db_file),
                                "alembic_revision": revision, "tables": tables}
                    files = [{"path": rel, **_add(tar, f"storage/{rel}", path)}
                             for rel, path in stored_files(storage_dir, exclude)]
                    manifest = {
                        "format": FORMAT, "format_version": FORMAT_VERSION,
                        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                        "mailbot_version": _mailbot_version(),
                        "source": {"database_url": url.render_as_string(hide_password=True),
                                   "storage_dir": str(storage_dir)},
                        "database": db_entry,
                        "files": files,
                    }
                    data = json.dumps(manifest, ensure_ascii=False, indent=1).encode("utf-8")
                    # Last, since it holds every file's hash; restore finds it by name.
                    info = tarfile.TarInfo(MANIFEST)
                    info.size, info.mtime, info.mode = len(data), int(time.time()), 0o600
                    tar.addfile(info, io.BytesIO(data))
                raw.flush()
                os.fsync(raw.fileno())
            os.replace(part, out)
            _fsync_dir(out.parent)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
    return BackupReport(path=out, database_kind=kind, alembic_revision=revision, tables=tables,
                        files=len(files), files_bytes=sum(f["size"] for f in files),
                        archive_bytes=out.stat().st_size, seconds=time.monotonic() - started)


# ---------------------------------------------------------------- restore

def _read_manifest(tar: tarfile.TarFile, archive: Path) -> dict[str, Any]:
    try:
        f = tar.extractfile(MANIFEST)
        manifest = json.load(f) if f is not None else None
    except KeyError:
        manifest = None
    except ValueError as e:
        raise RestoreError(f"{archive}: manifest.json is not valid JSON: {e}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise RestoreError(f"{archive} is not a mailbot backup (no mailbot manifest.json)")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise RestoreError(f"{archive} is backup format {manifest.get('format_version')}; "
                           f"this mailbot reads format {FORMAT_VERSION}")
    for f in manifest["files"]:
        rel = PurePosixPath(f["path"])
        # The manifest names where files go: nothing may point outside the storage folder.
        if rel.is_absolute() or not rel.parts or any(p in ("", ".", "..") for p in rel.parts) or not _is_stored(rel):
            raise RestoreError(f"{archive}: refusing the unsafe path {f['path']!r} in manifest.json")
    return manifest


def _refuse_non_empty(url: sa.URL, kind: str, storage_dir: Path) -> None:
    if storage_dir.is_dir():
        for rel, _path in stored_files(storage_dir, _live_sqlite_files(url)):
            raise RestoreError(f"{storage_dir} already holds stored files (e.g. {rel}): "
                               "restore only into an empty storage folder")
    where = url.render_as_string(hide_password=True)
    if kind == "sqlite":
        db = _sqlite_path(url)
        if not db.exists():
            return
        try:
            con = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
            try:
                tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            finally:
                con.close()
        except sqlite3.Error as e:
            raise RestoreError(f"{db} exists and is not a readable SQLite database: {e}") from e
    else:
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as conn:
                tables = list(conn.execute(sa.text(
                    "SELECT table_schema || '.' || table_name FROM information_schema.tables "
                    "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1")).scalars())
        except sa.exc.SQLAlchemyError as e:
            raise RestoreError(f"cannot connect to {where}: {e}") from e
        finally:
            engine.dispose()
    if tables:
        raise RestoreError(f"the database {where} already has tables ({', '.join(tables[:5])}"
                           f"{', ...' if len(tables) > 5 else ''}): restore only into an empty database")


def _extract_checked(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path, expect: dict[str, Any]) -> None:
    if not member.isfile():
        raise RestoreError(f"{member.name}: not a regular file in the archive")
    target.parent.mkdir(parents=True, exist_ok=True)
    src, sha, size = tar.extractfile(member), hashlib.sha256(), 0
    with open(target, "xb") as out:
        while chunk := src.read(_CHUNK):
            sha.update(chunk)
            size += len(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    if sha.hexdigest() != expect["sha256"] or size != expect["size"]:
        raise RestoreError(f"{member.name}: sha256/size differ from the manifest (the archive is damaged); "
                           "nothing was restored")


def restore(archive: Path, database_url: str, storage_dir: Path) -> RestoreReport:
    """Restore a backup into an EMPTY database and storage folder (stop the daemon first).

    Every file, the database snapshot included, is unpacked into a staging folder inside the
    storage folder and its sha256 checked against the manifest before anything is put in place;
    then the database is loaded (SQLite: the snapshot copied to the URL's path; PostgreSQL:
    pg_restore in one transaction), the files are renamed into place, and the restored row
    counts and Alembic revision are compared with the manifest.
    """
    started = time.monotonic()
    url = sa.make_url(database_url)
    kind = _kind(url)
    archive, storage_dir = Path(archive), Path(storage_dir).resolve()
    try:
        tar = tarfile.open(archive, "r:gz")
    except (OSError, tarfile.TarError) as e:
        raise RestoreError(f"cannot read {archive}: {e}") from e
    with _private_umask(), tar:
        manifest = _read_manifest(tar, archive)
        db = manifest["database"]
        if db["kind"] != kind:
            raise RestoreError(f"{archive} holds a {db['kind']} database; {url.render_as_string(hide_password=True)} "
                               f"is {kind}")
        _refuse_non_empty(url, kind, storage_dir)
        storage_dir.mkdir(parents=True, exist_ok=True)
        # Inside the storage folder: same file system, so putting files in place is a rename.
        staging = Path(tempfile.mkdtemp(prefix=".tmp-restore-", dir=storage_dir))
        try:
            wanted = {f"storage/{f['path']}": f for f in manifest["files"]}
            seen: set[str] = set()
            for member in tar:
                if member.name == MANIFEST:
                    continue
                if member.name == db["file"]:
                    target, expect = staging / "database", db
                elif member.name in wanted:
                    target, expect = staging / "storage" / wanted[member.name]["path"], wanted[member.name]
                else:
                    raise RestoreError(f"{archive}: {member.name} is not listed in manifest.json")
                _extract_checked(tar, member, target, expect)
                seen.add(member.name)
            missing = sorted((set(wanted) | {db["file"]}) - seen)
            if missing:
                raise RestoreError(f"{archive} lacks {len(missing)} file(s) of its manifest, e.g. {missing[:3]}")

            if kind == "sqlite":
                _place_sqlite(staging / "database", _sqlite_path(url))
            else:
                conninfo, env = _libpq(url)
                # One transaction: a failure leaves the database empty, so the restore can be re-run.
                # No owner/privileges: the restoring role owns everything, whatever roles the old server had.
                _run(["pg_restore", "--no-owner", "--no-privileges", "--single-transaction", "--exit-on-error",
                      "--no-password", f"--dbname={conninfo}", str(staging / "database")], env, RestoreError)
            _place_files(staging / "storage", storage_dir, [f["path"] for f in manifest["files"]])
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    tables, revision = _restored_counts(url)
    if tables != db["tables"] or revision != db["alembic_revision"]:
        diff = {t: (db["tables"].get(t), tables.get(t)) for t in sorted(set(tables) | set(db["tables"]))
                if db["tables"].get(t) != tables.get(t)}
        raise RestoreError(f"the restored database differs from the manifest (table: (manifest, restored)): {diff}; "
                           f"revision {db['alembic_revision']!r} vs {revision!r}")
    return RestoreReport(database_kind=kind, alembic_revision=revision, tables=tables, files=len(manifest["files"]),
                         files_bytes=sum(f["size"] for f in manifest["files"]), seconds=time.monotonic() - started)


def _place_sqlite(snapshot: Path, db: Path) -> None:
    db.parent.mkdir(parents=True, exist_ok=True)
    # An empty target may have left -wal/-shm files; SQLite would replay that WAL onto the new file.
    for side in _SQLITE_SIDE_FILES[1:]:
        db.with_name(db.name + side).unlink(missing_ok=True)
    # Copied beside the target then renamed: the database may live outside the storage folder.
    fd, tmp = tempfile.mkstemp(dir=db.parent, prefix=".tmp-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, open(snapshot, "rb") as src:
            shutil.copyfileobj(src, out, _CHUNK)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, db)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(db.parent)
    _give_to_owner_of(db.parent, [db])


def _place_files(staged: Path, storage_dir: Path, paths: list[str]) -> None:
    touched: list[Path] = []
    for rel in paths:
        dest = storage_dir / rel
        for parent in reversed(dest.relative_to(storage_dir).parents[:-1]):
            if not (storage_dir / parent).is_dir():
                (storage_dir / parent).mkdir()
                touched.append(storage_dir / parent)
        os.replace(staged / rel, dest)
        touched.append(dest)
    for folder in sorted({p.parent for p in touched}):
        _fsync_dir(folder)
    _give_to_owner_of(storage_dir, touched)


def _give_to_owner_of(folder: Path, paths: list[Path]) -> None:
    # Run as root, a restore would leave root-owned 0600 files the daemon (user mailbot) cannot
    # read: hand them to whoever owns the folder (StateDirectory= makes that mailbot).
    st = folder.stat()
    if os.geteuid() == 0 and st.st_uid != 0:
        for p in paths:
            os.chown(p, st.st_uid, st.st_gid, follow_symlinks=False)


def _restored_counts(url: sa.URL) -> tuple[dict[str, int], str | None]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return _count_rows(conn)
    finally:
        engine.dispose()
