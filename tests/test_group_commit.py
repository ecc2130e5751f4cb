"""Group commit (Store.batch, Daemon.record_together): a backlog decided ahead recorded many
messages to a transaction, on SQLite and PostgreSQL.

Covered: a backlog recorded in groups leaves the store exactly as one message at a time does
(outcomes, receipt numbers, submissions, what replaced what inside one group, the files sent
twice, the replies); a message that crashes inside a group is shunted alone and the others are
committed; a group that fails as a whole leaves nothing; the files written in a group reach the
disk before its commit, and no other connection sees any of it before then. The crash tests
(kill -9 at each step of a group, against Dovecot) are in test_ahead.py.
"""
from __future__ import annotations

import datetime as dt
import email
import email.policy

import pytest
import sqlalchemy as sa

from mailbot import pipeline
from mailbot.app.daemon import Daemon
from mailbot.app.config import load_config
from mailbot.store import MessageRow, OutboxRow, SubmissionRow
from mailbot.transport.mailbox import Fetched

from conftest import CASES, DATA
from test_pipeline import write_config

RECEIVED = dt.datetime(2026, 11, 20, 10, tzinfo=dt.timezone(dt.timedelta(hours=8)))
NOW = dt.datetime(2026, 11, 20, 12, tzinfo=dt.timezone(dt.timedelta(hours=8)))


def _again(raw: bytes, message_id: str) -> bytes:
    m = email.message_from_bytes(raw, policy=email.policy.compat32)
    del m["Message-ID"]
    m["Message-ID"] = f"<{message_id}>"
    return m.as_bytes()


def backlog() -> list[Fetched]:
    """Every case, then a ledger sent twice more (the later replacing the earlier, inside one group)
    and the same bytes again (already recorded)."""
    raws = [c.read_bytes() for c in CASES]
    ledger = (DATA / "cases" / "mutt_gb18030_rfc2231.eml").read_bytes()
    raws += [_again(ledger, "again-1@fagui"), _again(ledger, "again-2@fagui"), raws[0]]
    return [Fetched(key=f"k{i}", raw=raw, received_at=RECEIVED + dt.timedelta(minutes=i), source=f"test:{i}")
            for i, raw in enumerate(raws)]


def daemon(tmp_path, database_url: str | None) -> Daemon:
    tmp_path.mkdir(parents=True, exist_ok=True)
    return Daemon(load_config(write_config(tmp_path, database_url)), clock=lambda: NOW)


def prepared(d: Daemon, fetched: Fetched) -> pipeline.Prepared:
    return pipeline.prepare(fetched.raw, d.intake, d.received_at(fetched))


def state(d: Daemon) -> dict:
    """What the store holds, with ids replaced by receipt numbers."""
    with d.store.engine.connect() as c:
        receipts = dict(c.execute(sa.select(MessageRow.id, MessageRow.receipt_no)).all())
        subs = c.execute(sa.select(SubmissionRow).order_by(SubmissionRow.id)).all()
        sub_receipt = {s.id: receipts[s.message_ref] for s in subs}
        return {
            "messages": c.execute(sa.select(MessageRow.receipt_no, MessageRow.message_id, MessageRow.source,
                                            MessageRow.outcome, MessageRow.reason, MessageRow.section,
                                            MessageRow.problems).order_by(MessageRow.id)).all(),
            "submissions": [(sub_receipt[s.id], s.task, s.period, s.status, s.rows, s.on_time,
                             sub_receipt.get(s.superseded_by), sub_receipt.get(s.duplicate_of)) for s in subs],
            "outbox": c.execute(sa.select(OutboxRow.kind, OutboxRow.recipients, OutboxRow.subject,
                                          OutboxRow.message_ref).order_by(OutboxRow.id)).all(),
        }


@pytest.fixture(params=["sqlite", "postgres"])
def two_urls(request, tmp_path):
    """Two empty databases of one kind: one for each way of recording."""
    if request.param == "sqlite":
        return [f"sqlite:///{tmp_path / name}.sqlite3" for name in ("a", "b")]
    make = request.getfixturevalue("make_postgres_db")
    return [make(), make()]


def test_a_backlog_recorded_in_groups_is_recorded_as_one_at_a_time(tmp_path, two_urls):
    one, grouped = daemon(tmp_path / "one", two_urls[0]), daemon(tmp_path / "grouped", two_urls[1])
    mails = backlog()
    try:
        singly = [one.handle(f) for f in mails]
        together = []
        for i in range(0, len(mails), 7):
            together += grouped.record_together([(f, prepared(grouped, f)) for f in mails[i:i + 7]])
        assert [r.as_dict() for r in together] == [r.as_dict() for r in singly]
        assert sum(r.decided_ahead for r in together) >= len(CASES) // 2
        assert state(grouped) == state(one)
        # inside one group: the second copy of the ledger replaced the first, the third is a redelivery
        subs = state(grouped)["submissions"]
        assert any(s[6] is not None for s in subs), subs
        assert together[-1].duplicate and together[-1].receipt_no == together[0].receipt_no
    finally:
        one.store.close()
        grouped.store.close()


def test_a_message_that_crashes_inside_a_group_is_shunted_alone(tmp_path, monkeypatch):
    d = daemon(tmp_path, None)
    mails = backlog()[:6]
    crashing = mails[2].raw
    real = pipeline.draft_reply

    def draft(**kw):
        if kw["incoming"].message_id == pipeline.parse.parse_message(crashing).message_id:
            raise RuntimeError("a bug in the letter")
        return real(**kw)
    monkeypatch.setattr(pipeline, "draft_reply", draft)
    try:
        results = d.record_together([(f, prepared(d, f)) for f in mails])
        assert [r.crashed_at for r in results] == [None, None, "store", None, None, None]
        st = state(d)
        assert len(st["messages"]) == 5 and len(st["outbox"]) == sum(1 for r in results if r.reply) >= 3
        assert [f.stage for f in d.store.failures()] == ["store"]
    finally:
        d.store.close()


def test_a_group_that_fails_as_a_whole_leaves_nothing(tmp_path, monkeypatch):
    d = daemon(tmp_path, None)
    mails = backlog()[:4]
    try:
        with pytest.raises(OSError, match="disk full"):
            with d.store.batch():
                for f in mails:
                    d.handle(f, prepared(d, f))
                raise OSError(28, "disk full")
        assert state(d) == {"messages": [], "submissions": [], "outbox": []}
        # and the next pass records them all
        d.record_together([(f, prepared(d, f)) for f in mails])
        assert len(state(d)["messages"]) == 4
    finally:
        d.store.close()


def test_a_groups_files_reach_the_disk_before_its_commit_and_nobody_sees_it_before(tmp_path, monkeypatch):
    import mailbot.store.database as database
    d = daemon(tmp_path, None)
    mails = backlog()[:5]
    seen: list[tuple[list, int]] = []
    real = database.sync_files

    def sync(paths):
        paths = list(paths)
        with sa.create_engine(d.config.database).connect() as other:   # another connection, as the web desk's
            seen.append((paths, other.execute(sa.select(sa.func.count()).select_from(MessageRow)).scalar_one()))
        real(paths)
    monkeypatch.setattr(database, "sync_files", sync)
    try:
        d.record_together([(f, prepared(d, f)) for f in mails])
        [(paths, visible)] = seen
        assert visible == 0
        raws = {d.store.raw_path(pipeline.hashlib.sha256(f.raw).hexdigest()) for f in mails}
        assert raws <= set(paths)
        assert any("/files/" in str(p) for p in paths)
        assert len(state(d)["messages"]) == 5
    finally:
        d.store.close()
