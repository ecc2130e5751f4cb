"""backup()/restore(): a round trip on SQLite and PostgreSQL, refusals, damage, and a snapshot taken under live writers."""
from __future__ import annotations

import hashlib
import io
import json
import os
import sqlite3
import stat
import tarfile
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from mailbot.store.backup import BackupError, RestoreError, _libpq, backup, restore, stored_files
from mailbot.model import OutgoingMail
from mailbot.store import Store


@pytest.fixture(params=["sqlite", "postgres"])
def databases(request, tmp_path):
    """(source URL, empty target URL) on one kind of database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'src' / 'mailbot.sqlite3'}", f"sqlite:///{tmp_path / 'dst' / 'mailbot.sqlite3'}"
    make = request.getfixturevalue("make_postgres_db")
    return make(), make()


def open_store(url: str, storage: Path) -> Store:
    st = Store(url, storage)
    st.upgrade()
    return st


def populate(st: Store) -> None:
    """A little of everything: raw mail, files (one too big to compress well), outbox, shunt, mailbox positions."""
    raws = [st.archive_raw(b) for b in (
        "Message-ID: <a@qq.com>\r\nSubject: =?GB18030?B?yM7O8TM=?=\r\n\r\n请查收。\r\n".encode(),
        b"Message-ID: <b@163.com>\r\n\r\n\x00\xff binary",
    )]
    for content in (b"PK\x03\x04 workbook", "统一社会信用代码".encode("gb18030"), os.urandom(300_000)):
        st.save_file(content)
    st.queue([OutgoingMail(kind="receipt", recipients=("张三 <zcfg@example.gov.cn>",), subject=f"回执 XY20261126-0000{i}",
                           mail_message_id=f"<receipt-{i}@mailbot>", raw=bytes(range(256)) + "已收到。".encode(),
                           dedupe_key=f"receipt:{i}") for i in range(3)])
    st.record_failure(raws[1], "imap:INBOX:7:42", "parse", "ValueError: 附件名无法解码", "Traceback (most recent call last): ...")
    st.save_mailbox_position("imap://xyjgk@mail.example.cn/INBOX", 1700000000, 42)
    st.mark_settled("maildir:/srv/Maildir", "1700000000.M1P2.host", "accepted")
    # Not stored files: the daemon's health, a writer's temp file, a lock, a package with a Chinese name.
    (st.storage_dir / "health.json").write_text('{"pid": 1}')
    (st.storage_dir / "files" / ".tmp-abc.part").write_bytes(b"half a file")
    (st.storage_dir / "mailbot.lock").write_bytes(b"")
    pkg = st.storage_dir / "packages" / "2026-11" / "信用监测材料汇总2026年11月.xlsx"
    pkg.parent.mkdir(parents=True)
    pkg.write_bytes(b"PK\x03\x04 package")


def dump_tables(url: str) -> dict[str, list[tuple]]:
    """Every row of every table, every column, in a stable order."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        meta = sa.MetaData()
        meta.reflect(engine)
        with engine.connect() as c:
            return {name: sorted((tuple(r) for r in c.execute(sa.select(t))), key=repr)
                    for name, t in sorted(meta.tables.items())}
    finally:
        engine.dispose()


def file_hashes(storage: Path) -> dict[str, str]:
    live_db = {storage / f"mailbot.sqlite3{side}" for side in ("", "-wal", "-shm", "-journal")}
    return {rel: hashlib.sha256(p.read_bytes()).hexdigest() for rel, p in stored_files(storage, live_db)}


def test_round_trip(databases, tmp_path):
    src_url, dst_url = databases
    src = open_store(src_url, tmp_path / "src")
    populate(src)
    src.close()
    out = tmp_path / "backups" / "mailbot-backup.tar.gz"

    rep = backup(src_url, tmp_path / "src", out)

    assert stat.S_IMODE(out.stat().st_mode) == 0o600 and not out.with_name(out.name + ".part").exists()
    assert rep.tables["outbox"] == 3 and rep.tables["failures"] == 1 and rep.tables["mailbox_keys"] == 1
    assert rep.alembic_revision and rep.files == 6       # 2 raw + 3 files + 1 package
    with tarfile.open(out) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        names = tar.getnames()
    assert manifest["database"]["kind"] == rep.database_kind and manifest["database"]["tables"] == rep.tables
    assert not any(n.endswith(("health.json", ".part", ".lock", "mailbot.sqlite3-wal")) for n in names)
    assert "storage/mailbot.sqlite3" not in names    # the live file never; database/ holds the snapshot

    restored = restore(out, dst_url, tmp_path / "dst")

    assert restored.tables == rep.tables and restored.alembic_revision == rep.alembic_revision
    assert dump_tables(dst_url) == dump_tables(src_url)
    assert file_hashes(tmp_path / "dst") == file_hashes(tmp_path / "src")
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in (tmp_path / "dst").rglob("*") if p.is_file())
    assert not (tmp_path / "dst" / "health.json").exists()
    assert not any(p.name.startswith(".tmp-") for p in (tmp_path / "dst").iterdir())
    # The restored store works, and its ids go on where the old ones stopped (sequences came along).
    dst = open_store(dst_url, tmp_path / "dst")
    (q,) = dst.queue([OutgoingMail("digest", ("a@b.cn",), "汇总", "<digest-1@mailbot>", b"x")])
    assert q.created and q.id == 4
    raw = next(f for f in manifest["files"] if f["path"].startswith("raw/"))
    assert dst.read_raw(raw["sha256"]).startswith(b"Message-ID")
    dst.close()

    # A second restore over it is refused: first for the stored files, then (empty folder) for the tables.
    with pytest.raises(RestoreError, match="already holds stored files"):
        restore(out, dst_url, tmp_path / "dst")
    with pytest.raises(RestoreError, match="already has tables"):
        restore(out, dst_url, tmp_path / "dst2")
    assert not (tmp_path / "dst2").exists() or not any(stored_files(tmp_path / "dst2"))


def test_a_damaged_archive_restores_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 'src' / 'mailbot.sqlite3'}"
    populate(open_store(url, tmp_path / "src"))
    good, bad = tmp_path / "good.tar.gz", tmp_path / "bad.tar.gz"
    backup(url, tmp_path / "src", good)
    # Same manifest, one stored file's bytes changed: as a bad disk or a cut transfer would.
    with tarfile.open(good) as src, tarfile.open(bad, "w:gz") as dst:
        for m in src.getmembers():
            data = src.extractfile(m).read()
            if m.name.startswith("storage/files/"):
                data = data[:-1] + bytes([data[-1] ^ 1])
            dst.addfile(m, io.BytesIO(data))
    target = f"sqlite:///{tmp_path / 'dst' / 'mailbot.sqlite3'}"
    with pytest.raises(RestoreError, match="differ from the manifest"):
        restore(bad, target, tmp_path / "dst")
    assert list((tmp_path / "dst").iterdir()) == []
    with pytest.raises(RestoreError, match="holds a sqlite database"):
        restore(good, "postgresql+psycopg://nobody@127.0.0.1:1/none", tmp_path / "dst")
    with tarfile.open(tmp_path / "other.tar.gz", "w:gz") as t:
        t.addfile(tarfile.TarInfo("x"), io.BytesIO(b""))
    with pytest.raises(RestoreError, match="not a mailbot backup"):
        restore(tmp_path / "other.tar.gz", target, tmp_path / "dst")


def test_snapshot_while_a_write_transaction_is_open(tmp_path):
    """The daemon mid-transaction (BEGIN IMMEDIATE, rows written, no commit) neither blocks nor leaks into the backup."""
    url = f"sqlite:///{tmp_path / 'src' / 'mailbot.sqlite3'}"
    st = open_store(url, tmp_path / "src")
    populate(st)
    writer = sqlite3.connect(tmp_path / "src" / "mailbot.sqlite3", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO failures (raw_sha256, source, stage, error, traceback, created_at, resolved) "
                   "VALUES (?, 'x', 'parse', 'uncommitted', '', '2026-11-26 01:00:00', 0)", ("0" * 64,))
    started = time.monotonic()
    rep = backup(url, tmp_path / "src", tmp_path / "b.tar.gz")
    took = time.monotonic() - started
    writer.execute("COMMIT")
    writer.close()

    assert took < 10, f"backup waited {took:.1f} s for the writer"
    assert rep.tables["failures"] == 1                   # the committed row, not the open transaction's
    assert len(st.failures()) == 2                       # ... which did commit, after the snapshot
    restored = restore(tmp_path / "b.tar.gz", f"sqlite:///{tmp_path / 'dst' / 'db.sqlite3'}", tmp_path / "dst")
    assert restored.tables == rep.tables
    st.close()


def test_snapshot_while_writers_commit(databases, tmp_path, request):
    """Writers committing throughout: the snapshot is one moment (counts = restored rows), and no writer fails."""
    url, _ = databases
    st = open_store(url, tmp_path / "src")
    populate(st)
    stop, errors, written = threading.Event(), [], [0]

    def write():
        while not stop.is_set():
            try:
                sha = st.archive_raw(os.urandom(64))
                st.record_failure(sha, "file:/x.eml", "parse", "E" * 500, "T" * 2000)
                written[0] += 1
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)
                return

    t = threading.Thread(target=write)
    t.start()
    try:
        reps = []
        for i in range(3):
            time.sleep(0.1)                              # let the writer commit between backups too
            reps.append(backup(url, tmp_path / "src", tmp_path / f"b{i}.tar.gz"))
    finally:
        stop.set()
        t.join()
    st.close()
    assert not errors and written[0] > 0
    assert len({rep.tables["failures"] for rep in reps}) == 3, "the writer should have committed between backups"
    for i, rep in enumerate(reps):
        target = (f"sqlite:///{tmp_path / f'dst{i}' / 'db.sqlite3'}" if url.startswith("sqlite")
                  else request.getfixturevalue("make_postgres_db")())
        got = restore(rep.path, target, tmp_path / f"dst{i}")
        assert got.tables == rep.tables
        # every failure row's raw file is in the backup: files are walked after the snapshot
        engine = sa.create_engine(target, poolclass=sa.pool.NullPool)
        with engine.connect() as c:
            shas = c.execute(sa.text("SELECT raw_sha256 FROM failures WHERE source = 'file:/x.eml'")).scalars().all()
        engine.dispose()
        assert len(shas) == rep.tables["failures"] - 1
        assert all((tmp_path / f"dst{i}" / "raw" / sha[:2] / f"{sha}.eml").is_file() for sha in shas)


def test_backup_refuses_what_it_cannot_copy(tmp_path):
    (tmp_path / "storage").mkdir()
    with pytest.raises(BackupError, match="no SQLite database"):
        backup(f"sqlite:///{tmp_path / 'none.sqlite3'}", tmp_path / "storage", tmp_path / "b.tar.gz")
    with pytest.raises(BackupError, match="unsupported database"):
        backup("mysql://u@h/db", tmp_path / "storage", tmp_path / "b.tar.gz")
    assert not (tmp_path / "b.tar.gz").exists() and not (tmp_path / "b.tar.gz.part").exists()


def test_the_password_goes_to_the_environment_not_the_command_line():
    conninfo, env = _libpq(sa.make_url(
        "postgresql+psycopg://mailbot:p%40ss%20w'rd@db.example.cn:6432/mailbot?sslmode=require"))
    assert "p@ss" not in conninfo and "password" not in conninfo
    assert env["PGPASSWORD"] == "p@ss w'rd"
    from psycopg.conninfo import conninfo_to_dict
    assert conninfo_to_dict(conninfo) == {"host": "db.example.cn", "port": "6432", "user": "mailbot",
                                          "dbname": "mailbot", "sslmode": "require"}


def test_cli_backup_then_restore_into_an_empty_storage(tmp_path, capsys):
    from mailbot.app import cli
    root = Path(__file__).resolve().parents[1]
    cfg = tmp_path / "config.yaml"
    text = (root / "config.example.yaml").read_text(encoding="utf-8")
    cfg.write_text(text.replace("rules: rules", f"rules: {root / 'rules'}") + f"\nstorage: {tmp_path / 'st'}\n",
                   encoding="utf-8")
    assert cli.main(["--config", str(cfg), "ingest", str(root / "examples" / "01-fagui-monthly-mutt.eml")]) == 0
    assert cli.main(["--config", str(cfg), "backup", "--out", str(tmp_path / "b.tar.gz")]) == 0
    before = sorted(p.relative_to(tmp_path / "st").as_posix() for p in (tmp_path / "st").rglob("*") if p.is_file())
    import shutil
    shutil.rmtree(tmp_path / "st")
    assert cli.main(["--config", str(cfg), "restore", str(tmp_path / "b.tar.gz")]) == 0
    after = sorted(p.relative_to(tmp_path / "st").as_posix() for p in (tmp_path / "st").rglob("*") if p.is_file())
    assert [p for p in before if p != "health.json" and not p.endswith(("-wal", "-shm"))] == after
    assert cli.main(["--config", str(cfg), "restore", str(tmp_path / "b.tar.gz")]) == 2     # not into a full one
    assert "restore only into an empty storage" in capsys.readouterr().err
