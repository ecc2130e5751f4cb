"""Storage tests, each run on SQLite and on a fresh PostgreSQL database (the `database_url` fixture)."""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import os
import threading

import pytest
import sqlalchemy as sa

from mailbot.model import (
    Attachment, Evidence, FileKind, Incoming, ItemResult, Outcome, OutgoingMail, Problem, Severity, Verdict,
)
from mailbot.store import (
    Base, Store, receipt_number,
)

UTC = dt.UTC
BEIJING = dt.timezone(dt.timedelta(hours=8))
T0 = dt.datetime(2026, 11, 26, 9, 30, tzinfo=BEIJING)
SECTION = "政策法规科"


# ---------------------------------------------------------------- builders

def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def attachment(content: bytes, filename: str = "11月信用监测台账.xlsx") -> Attachment:
    return Attachment(filename=filename, content=content,
                      declared_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                      origin=("转发邮件", "材料.zip"))


def incoming(*atts: Attachment, message_id: str = "abc@qq.com",
             subject: str = "任务3 2026年11月 双公示台账") -> Incoming:
    return Incoming(
        message_id=message_id, subject=subject, from_addr="zcfg@example.gov.cn", from_name="张三",
        to=("xyjgk@example.gov.cn",), cc=(), reply_to=(), date=T0, in_reply_to=None, references=(),
        headers={"subject": (subject,)}, content_type="multipart/mixed", text="请查收。", attachments=atts,
    )


def item(att: Attachment, *, task: int | None = 3, period: str | None = "2026-11", status: str = "accepted",
         problems: tuple[Problem, ...] = (), data: dict | None = None) -> ItemResult:
    return ItemResult(
        filename=att.filename, kind=FileKind.XLSX, sha256=sha(att.content), task=task, period=period,
        status=status, problems=problems,
        evidence=(Evidence("task", str(task), "sheet", f"按工作表'双公示台账'识别为任务{task}"),),
        rows=2, sheets=("双公示台账",), origin=att.origin,
        data=data if data is not None else {"双公示台账": [["行政许可", "某某公司", dt.date(2026, 11, 3)]]},
    )


def verdict(*items: ItemResult, outcome: Outcome = Outcome.ACCEPTED, section: str | None = SECTION) -> Verdict:
    return Verdict(
        outcome=outcome, reason="all files accepted", section=section,
        section_evidence=(Evidence("section", SECTION, "sender", "按发件人地址识别为政策法规科"),),
        items=items,
        problems=(Problem("no-body", "正文为空", Severity.WARNING, hint="请在正文中说明报送内容"),),
    )


def reply(receipt_no: str, replaced=(), n: int = 0) -> list[OutgoingMail]:
    body = f"Subject: 回执 {receipt_no}\r\n\r\n已收到，回执编号{receipt_no}。\r\n".encode("utf-8")
    return [OutgoingMail(kind="receipt", recipients=("zcfg@example.gov.cn",), subject=f"回执 {receipt_no}",
                         mail_message_id=f"<receipt-{receipt_no}-{n}@mailbot>", raw=body)]


def count(store: Store, table: str) -> int:
    with store.engine.connect() as c:
        return c.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()


def record(store: Store, inc: Incoming, v: Verdict, *, raw: bytes | None = None,
           received_at: dt.datetime = T0, outbox=reply, **kw):
    raw = raw if raw is not None else f"Message-ID: <{inc.message_id}>\r\n\r\nbody".encode()
    raw_sha = store.archive_raw(raw)
    return store.record(incoming=inc, raw_sha256=raw_sha, received_at=received_at,
                        source="file:/tmp/x.eml", verdict=v, outbox=outbox, **kw)


@pytest.fixture
def store(database_url, tmp_path):
    st = Store(database_url, tmp_path / "storage")
    st.upgrade()
    yield st
    st.close()


# ---------------------------------------------------------------- schema

def test_migrations_create_the_schema_and_match_the_models(store):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    current, head = store.schema_revision()
    assert current == head and head is not None
    with store.engine.connect() as c:
        assert set(sa.inspect(c).get_table_names()) >= {"messages", "attachments", "submissions", "outbox", "failures"}
        ctx = MigrationContext.configure(c, opts={"compare_type": True})
        assert compare_metadata(ctx, Base.metadata) == []

        # The comparison must be able to see a difference, or the assertion above proves nothing.
        altered = sa.MetaData()
        for t in Base.metadata.sorted_tables:
            t.to_metadata(altered)
        altered.tables["messages"].append_column(sa.Column("extra", sa.Integer))
        sa.Index("ix_outbox_kind", altered.tables["outbox"].c.kind)
        diff = compare_metadata(ctx, altered)
        kinds = {d[0] if isinstance(d, tuple) else d[0][0] for d in diff}
        assert {"add_column", "add_index"} <= kinds

    store.upgrade()  # a second upgrade is a no-op
    assert store.schema_revision() == (head, head)


def test_fresh_database_reports_no_revision(database_url, tmp_path):
    with Store(database_url, tmp_path / "s") as st:
        current, head = st.schema_revision()
        assert current is None and head is not None


def test_sqlite_connection_settings(tmp_path):
    # the database's folder is made if missing
    with Store(f"sqlite:///{tmp_path / 'var' / 'db.sqlite3'}", tmp_path / "s", sqlite_busy_timeout_ms=7000) as st:
        st.upgrade()
        with st.engine.connect() as c:
            assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert c.exec_driver_sql("PRAGMA busy_timeout").scalar() == 7000


def test_foreign_keys_are_enforced(store):
    with pytest.raises(sa.exc.IntegrityError):
        with store.engine.begin() as c:
            c.execute(sa.text(
                "INSERT INTO attachments (message_ref, position, filename, sha256, size, kind, origin,"
                " declared_type, status, problems) VALUES (999, 0, 'x', 'y', 0, 'xlsx', '[]', 'a', 'accepted', '[]')"))


# ---------------------------------------------------------------- files

def test_archive_raw_is_content_addressed_atomic_and_idempotent(store):
    raw = "Subject: =?GB2312?B?1NrP37Hoyrs=?=\r\n\r\n正文\r\n".encode("gb18030")
    digest = store.archive_raw(raw)
    assert digest == sha(raw)
    path = store.storage_dir / "raw" / digest[:2] / f"{digest}.eml"
    assert store.raw_path(digest) == path and path.read_bytes() == raw
    assert store.read_raw(digest) == raw
    before = os.stat(path)

    assert store.archive_raw(raw) == digest
    after = os.stat(path)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)  # not rewritten
    assert [p.name for p in path.parent.iterdir()] == [path.name]                # no temp files left

    content = b"PK\x03\x04 workbook"
    fsha = store.save_file(content)
    assert store.file_path(fsha) == store.storage_dir / "files" / fsha[:2] / fsha
    assert store.read_file(fsha) == content and store.save_file(content) == fsha
    assert list(store.file_path(fsha).parent.iterdir()) == [store.file_path(fsha)]


def test_archive_raw_leaves_nothing_when_the_rename_fails(store, monkeypatch):
    def boom(src, dst):
        raise OSError("disk gone")
    monkeypatch.setattr(os, "replace", boom)
    monkeypatch.setattr(os, "link", boom)      # content-addressed files are linked into place
    with pytest.raises(OSError):
        store.archive_raw(b"raw bytes")
    folder = store.raw_path(sha(b"raw bytes")).parent
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("bad", ["../../etc/passwd", "ABC", "A" * 64, ""])
def test_paths_refuse_anything_but_a_sha256(store, bad):
    with pytest.raises(ValueError):
        store.raw_path(bad)
    with pytest.raises(ValueError):
        store.file_path(bad)


# ---------------------------------------------------------------- record

def test_record_writes_message_files_submissions_and_replies(store):
    a1, a2 = attachment(b"ledger-1"), attachment(b"logo", "image001.png")
    inc = incoming(a1, a2)
    v = verdict(dataclasses.replace(item(a1), due=dt.date(2026, 12, 5), on_time=True),
                item(a2, task=None, period=None, status="skipped"))
    res = record(store, inc, v)

    assert res.created and not res.duplicate
    m = res.message
    assert m.receipt_no == f"XY20261126-{m.id:05d}" == res.receipt_no
    assert m.message_id == "abc@qq.com" and m.outcome == "accepted" and m.section == SECTION
    assert m.received_at == T0 and m.received_at.tzinfo is not None
    assert store.read_file(sha(b"ledger-1")) == b"ledger-1" and store.read_file(sha(b"logo")) == b"logo"

    d = store.message_detail(m.id)
    assert d is not None and d == store.message_detail(m.receipt_no) == store.message_detail(str(m.id))
    assert [(a.filename, a.status, a.size) for a in d.attachments] == [
        ("11月信用监测台账.xlsx", "accepted", 8), ("image001.png", "skipped", 4)]
    assert d.attachments[0].origin == ("转发邮件", "材料.zip")
    assert d.attachments[0].declared_type.endswith("spreadsheetml.sheet")
    [sub] = d.submissions
    assert (sub.section, sub.task, sub.period, sub.status, sub.rows) == (SECTION, 3, "2026-11", "accepted", 2)
    assert (sub.due, sub.on_time, sub.received_at) == (dt.date(2026, 12, 5), True, T0)
    assert sub.id in res.submission_ids and sub.current and sub.receipt_no == m.receipt_no
    [mail] = d.outbox
    assert mail.id in res.outbox_ids and mail.message_ref == m.id
    assert m.receipt_no in mail.raw.decode("utf-8") and mail.mail_message_id == f"receipt-{m.receipt_no}-0@mailbot"
    assert mail.status == "pending" and mail.attempts == 0
    assert store.messages(outcome=Outcome.ACCEPTED) == [m] and store.messages(outcome="rejected") == []
    assert store.message_detail("XY19990101-99999") is None and store.message_detail(10**6) is None


def test_record_is_one_transaction(store):
    a = attachment(b"ledger")
    inc, v = incoming(a), verdict(item(a))
    seen = []

    def failing_outbox(receipt_no, replaced=()):
        seen.append(receipt_no)
        raise RuntimeError("template broke")

    with pytest.raises(RuntimeError):
        record(store, inc, v, outbox=failing_outbox)
    assert seen and seen[0].startswith("XY20261126-")
    for table in ("messages", "attachments", "submissions", "outbox"):
        assert count(store, table) == 0, table

    res = record(store, inc, v)  # the same message can then be recorded normally
    assert res.created and count(store, "messages") == 1 and count(store, "outbox") == 1


def test_recording_the_same_message_twice_yields_one_record(store):
    a = attachment(b"ledger")
    inc, v = incoming(a), verdict(item(a))
    first = record(store, inc, v)
    again = record(store, inc, v, outbox=lambda r, replaced=(): reply(r, n=1))
    assert not again.created and again.duplicate
    assert again.receipt_no == first.receipt_no and again.message == first.message
    assert again.submission_ids == first.submission_ids and again.outbox_ids == first.outbox_ids
    assert [count(store, t) for t in ("messages", "attachments", "submissions", "outbox")] == [1, 1, 1, 1]
    assert store.find_message("<abc@qq.com>", first.message.raw_sha256) == first.message

    # Same Message-ID, different bytes: another message (a client reusing IDs must not lose mail).
    other = record(store, inc, v, raw=b"Message-ID: <abc@qq.com>\r\n\r\nother body")
    assert other.created and other.receipt_no != first.receipt_no


def test_a_lost_race_returns_the_winner(store, monkeypatch):
    a = attachment(b"ledger")
    inc, v = incoming(a), verdict(item(a))
    first = record(store, inc, v)
    # Make record() blind to the existing row, as a concurrent writer would be: the unique
    # constraint must catch it and the winner's record come back.
    real_result, real_find = Store._existing_result, Store._find
    blinded = {"result": 0, "find": 0}

    def result_blind_once(self, key, raw_sha):
        blinded["result"] += 1
        return None if blinded["result"] == 1 else real_result(self, key, raw_sha)

    def find_blind_once(s, key, raw_sha):
        blinded["find"] += 1
        return None if blinded["find"] == 1 else real_find(s, key, raw_sha)
    monkeypatch.setattr(Store, "_existing_result", result_blind_once)
    monkeypatch.setattr(Store, "_find", staticmethod(find_blind_once))
    again = record(store, inc, v)
    assert not again.created and again.receipt_no == first.receipt_no
    assert count(store, "messages") == 1 and count(store, "outbox") == 1


def test_concurrent_recording_of_one_message(store):
    a = attachment(b"ledger")
    inc, v = incoming(a), verdict(item(a))
    raw = b"Message-ID: <abc@qq.com>\r\n\r\nbody"
    raw_sha = store.archive_raw(raw)
    barrier, results, errors = threading.Barrier(4), [], []

    def run():
        barrier.wait()
        try:
            results.append(store.record(incoming=inc, raw_sha256=raw_sha, received_at=T0, source="t",
                                        verdict=v, outbox=reply))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)
    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(r.created for r in results) == 1
    assert len({r.receipt_no for r in results}) == 1
    assert count(store, "messages") == 1 and count(store, "outbox") == 1


def test_superseding_keeps_history(store):
    a1, a2, scan = attachment(b"v1"), attachment(b"v2"), attachment(b"%PDF scan", "签字扫描件.pdf")
    r1 = record(store, incoming(a1, message_id="m1"), verdict(item(a1)))
    # A second message with two files for the same key: both replace the first, neither the other.
    r2 = record(store, incoming(a2, scan, message_id="m2"), verdict(item(a2), item(scan)),
                received_at=T0 + dt.timedelta(days=1))
    subs = {s.id: s for s in store.submissions(current_only=False)}
    assert len(subs) == 3
    [s1], (s2, s3) = r1.submission_ids, r2.submission_ids
    assert subs[s1].superseded_by == s2 and not subs[s1].current
    assert subs[s2].superseded_by is None and subs[s3].superseded_by is None
    assert [s.id for s in store.submissions(SECTION, 3, "2026-11")] == [s2, s3]

    # A rejected resubmission replaces nothing.
    bad = attachment(b"broken")
    record(store, incoming(bad, message_id="m3"),
           verdict(item(bad, status="rejected", problems=(Problem("missing-column", "缺少列'决定日期'"),)),
                   outcome=Outcome.REJECTED),
           received_at=T0 + dt.timedelta(days=2))
    assert [s.id for s in store.submissions(SECTION, 3, "2026-11")] == [s2, s3]

    # An older message replayed late does not replace the newer one: it goes straight to history.
    old = attachment(b"v0")
    r0 = record(store, incoming(old, message_id="m0"), verdict(item(old)), received_at=T0 - dt.timedelta(days=3))
    [s0] = r0.submission_ids
    assert [s.id for s in store.submissions(SECTION, 3, "2026-11")] == [s2, s3]
    assert {s.id: s for s in store.submissions(current_only=False)}[s0].superseded_by == s2

    # Other sections, tasks and months are untouched.
    other = attachment(b"other month")
    record(store, incoming(other, message_id="m4"), verdict(item(other, period="2026-12")),
           received_at=T0 + dt.timedelta(days=3))
    assert [s.id for s in store.submissions(SECTION, 3, "2026-11")] == [s2, s3]
    assert len(store.submissions(current_only=False)) == 6


def test_duplicate_of_flags_the_same_file_for_another_month(store):
    a = attachment(b"the same ledger")
    r1 = record(store, incoming(a, message_id="oct"), verdict(item(a, period="2026-10")))
    r2 = record(store, incoming(a, message_id="nov"), verdict(item(a, period="2026-11")),
                received_at=T0 + dt.timedelta(days=30))
    [s1], [s2] = r1.submission_ids, r2.submission_ids
    subs = {s.id: s for s in store.submissions(current_only=False)}
    assert subs[s1].duplicate_of is None and subs[s2].duplicate_of == s1

    prior = store.prior_submissions([sha(b"the same ledger"), sha(b"unknown")])
    assert [(p.submission_id, p.period, p.receipt_no, p.status) for p in prior] == [
        (s1, "2026-10", r1.receipt_no, "accepted"), (s2, "2026-11", r2.receipt_no, "accepted")]
    assert prior[0].section == SECTION and prior[0].task == 3
    assert store.prior_submissions([]) == []

    # The same file again for the same month is a resend, not a duplicate.
    r3 = record(store, incoming(a, message_id="nov-again"), verdict(item(a, period="2026-11")),
                received_at=T0 + dt.timedelta(days=31))
    [s3] = r3.submission_ids
    assert {s.id: s for s in store.submissions(current_only=False)}[s3].duplicate_of == s1


def test_a_file_already_accepted_for_another_month_is_reused_and_replaces_nothing(store):
    photo, ledger, broken = attachment(b"the photo", "照片.jpg"), attachment(b"nov ledger"), attachment(b"bad")
    r1 = record(store, incoming(photo, message_id="oct"), verdict(item(photo, period="2026-10")))
    r2 = record(store, incoming(ledger, message_id="nov"), verdict(item(ledger)), received_at=T0 + dt.timedelta(days=30))
    # October's photo again for November, after the real November ledger
    r3 = record(store, incoming(photo, message_id="nov-photo"), verdict(item(photo)),
                received_at=T0 + dt.timedelta(days=31))
    [s1], [s2], [s3] = r1.submission_ids, r2.submission_ids, r3.submission_ids
    nov = {s.id: s for s in store.submissions(SECTION, 3, "2026-11")}
    assert set(nov) == {s2, s3}                                  # the real answer stays current
    assert not nov[s2].reused and nov[s3].reused
    assert (nov[s3].reused_from.period, nov[s3].reused_from.receipt_no) == ("2026-10", r1.receipt_no)
    [detail] = store.message_detail(r3.receipt_no).submissions
    assert detail.reused_from == nov[s3].reused_from

    # a file only ever rejected for another month counted nowhere: sending it again is no reuse
    record(store, incoming(broken, message_id="dec-bad"),
           verdict(item(broken, period="2026-12", status="rejected", problems=(Problem("missing-column", "缺列"),)),
                   outcome=Outcome.REJECTED), received_at=T0 + dt.timedelta(days=40))
    r5 = record(store, incoming(broken, message_id="jan"), verdict(item(broken, period="2027-01")),
                received_at=T0 + dt.timedelta(days=60))
    [jan] = store.submissions(SECTION, 3, "2027-01")
    assert jan.id == r5.submission_ids[0] and jan.duplicate_of is not None and not jan.reused


def test_items_must_match_the_attachments(store):
    a = attachment(b"here")
    ghost = attachment(b"not in the message")
    with pytest.raises(ValueError):
        record(store, incoming(a), verdict(item(ghost)))
    assert count(store, "messages") == 0


def test_naive_datetimes_are_refused(store):
    a = attachment(b"x")
    with pytest.raises(ValueError):
        record(store, incoming(a), verdict(item(a)), received_at=dt.datetime(2026, 11, 26, 9, 30))


def test_receipt_number_uses_the_beijing_date():
    assert receipt_number(dt.datetime(2026, 11, 25, 17, 0, tzinfo=UTC), 42) == "XY20261126-00042"
    assert receipt_number(dt.datetime(2026, 11, 25, 15, 59, tzinfo=UTC), 123456) == "XY20261125-123456"


# ---------------------------------------------------------------- round-trips

def test_chinese_text_round_trips_exactly(store):
    subject = "关于报送2026年11月信用监测材料的函（政策法规科）——𠮷字、繁體、全角：ＡＢＣ"
    a = attachment(b"ledger", "附件1：双公示台账（2026年11月）.xlsx")
    prob = Problem("bad-credit-code", "工作表'双公示台账'第5行'统一社会信用代码'(C5): 校验位错误",
                   Severity.WARNING, sheet="双公示台账", row=5, column="统一社会信用代码", cell="C5",
                   hint="请核对18位代码")
    inc = incoming(a, subject=subject)
    mail_raw = f"Subject: {subject}\r\n\r\n您好！\r\n".encode("gb18030")
    res = record(store, inc, verdict(item(a, problems=(prob,))), outbox=lambda r, replaced=(): [OutgoingMail(
        kind="receipt", recipients=("张三 <zcfg@example.gov.cn>",), subject=f"回执：{subject}",
        mail_message_id=f"{r}@mailbot", raw=mail_raw)])
    d = store.message_detail(res.receipt_no)
    assert d.message.subject == subject and d.message.from_name == "张三"
    assert d.attachments[0].filename == "附件1：双公示台账（2026年11月）.xlsx"
    assert d.submissions[0].warnings == (prob.as_dict(),) and d.submissions[0].errors == ()
    assert d.outbox[0].subject == f"回执：{subject}" and d.outbox[0].raw == mail_raw
    assert d.outbox[0].recipients == ("张三 <zcfg@example.gov.cn>",)

    fid = store.record_failure(res.message.raw_sha256, "imap:INBOX:1:7", "classify",
                               "KeyError: '综合科'", "Traceback…\n  第3行")
    [f] = store.failures()
    assert (f.id, f.error, f.traceback) == (fid, "KeyError: '综合科'", "Traceback…\n  第3行")


def test_json_columns_round_trip(store):
    data = {
        "双公示台账": [
            ["行政许可", "某某有限公司", "91370100MA3C000001", dt.date(2026, 11, 3),
             dt.datetime(2026, 11, 3, 14, 5, 6), 3, 2.5, True, None, ""],
        ],
        "嵌套": {"a": [1, {"b": "乙"}], "空": [], "零": 0},
    }
    a = attachment(b"ledger")
    v = verdict(item(a, data=data))
    res = record(store, incoming(a), v)
    d = store.message_detail(res.message.id)
    sub = d.submissions[0]
    assert sub.data == data
    assert isinstance(sub.data["双公示台账"][0][3], dt.date)
    assert sub.sheets == ("双公示台账",)
    assert sub.evidence == ({"decision": "task", "value": "3", "source": "sheet",
                             "detail": "按工作表'双公示台账'识别为任务3"},)
    assert d.message.section_evidence == ({"decision": "section", "value": SECTION, "source": "sender",
                                           "detail": "按发件人地址识别为政策法规科"},)
    assert d.message.problems == (v.problems[0].as_dict(),)


def test_times_are_stored_in_utc(store):
    a = attachment(b"x")
    res = record(store, incoming(a), verdict(item(a)), now=dt.datetime(2026, 11, 26, 10, 0, tzinfo=BEIJING))
    m = store.messages()[0]
    assert m.received_at == T0 and m.received_at.utcoffset() == dt.timedelta(0)
    assert m.created_at == dt.datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
    with store.engine.connect() as c:
        stored = c.execute(sa.text("SELECT received_at FROM messages")).scalar_one()
    if isinstance(stored, str):  # SQLite: the text itself must be UTC
        assert stored.startswith("2026-11-26 01:30:00")
    assert res.created


# ---------------------------------------------------------------- outbox

def test_outbox_queue_and_delivery_cycle(store):
    now = dt.datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    reminder = OutgoingMail(kind="reminder", recipients=("zcfg@example.gov.cn",), subject="提醒：任务3",
                            mail_message_id="<rem-1@mailbot>", raw=b"reminder",
                            dedupe_key="reminder:政策法规科:3:2026-11:5wd")
    [q] = store.queue([reminder], now=now)
    assert q.created
    # Queued once: by dedupe_key (even under another Message-ID) and by Message-ID.
    again = store.queue([
        OutgoingMail("reminder", ("x@y",), "提醒", "<rem-2@mailbot>", b"r2", dedupe_key=reminder.dedupe_key),
        OutgoingMail("digest", ("x@y",), "汇总", "rem-1@mailbot", b"r3"),
    ], now=now)
    assert [(x.id, x.created) for x in again] == [(q.id, False), (q.id, False)]
    assert count(store, "outbox") == 1

    [digest] = store.queue([OutgoingMail("digest", ("boss@y",), "月度汇总", "<dig@mailbot>", b"d")],
                           now=now + dt.timedelta(minutes=1))
    assert [m.id for m in store.due_outbox(now)] == [q.id]
    assert [m.id for m in store.due_outbox(now + dt.timedelta(minutes=5))] == [q.id, digest.id]
    assert [m.id for m in store.due_outbox(now + dt.timedelta(minutes=5), limit=1)] == [q.id]

    retry_at = now + dt.timedelta(minutes=30)
    store.mark_failed(q.id, "421 4.7.0 try again later", permanent=False, next_attempt_at=retry_at)
    assert [m.id for m in store.due_outbox(now + dt.timedelta(minutes=5))] == [digest.id]
    [m] = store.outbox([q.id])
    assert (m.status, m.attempts, m.last_error) == ("failed_temporary", 1, "421 4.7.0 try again later")
    assert [x.id for x in store.due_outbox(retry_at)] == [digest.id, q.id]  # by due time

    store.mark_sent(q.id, "250 2.0.0 Ok: queued as 4F2", retry_at)
    store.mark_failed(q.id, "late timeout", permanent=False, next_attempt_at=retry_at)  # ignored: sent
    [m] = store.outbox([q.id])
    assert (m.status, m.attempts, m.server_reply, m.sent_at) == ("sent", 2, "250 2.0.0 Ok: queued as 4F2", retry_at)

    store.mark_failed(digest.id, "550 5.1.1 no such user", permanent=True)
    assert store.due_outbox(retry_at + dt.timedelta(days=1)) == []
    stats = store.outbox_stats(retry_at)
    assert stats.counts == {"pending": 0, "sent": 1, "failed_temporary": 0, "failed_permanent": 1}
    assert stats.due == 0 and stats.oldest_due_at is None
    with pytest.raises(LookupError):
        store.mark_sent(10**6, "250", now)
    with pytest.raises(ValueError):
        store.mark_failed(digest.id, "x", permanent=False)


def test_outbox_stats_and_lease(store):
    now = dt.datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    ids = [q.id for q in store.queue(
        [OutgoingMail("digest", ("a@b",), f"汇总{i}", f"<d{i}@mailbot>", b"x") for i in range(3)], now=now)]
    stats = store.outbox_stats(now)
    assert stats.counts["pending"] == 3 and stats.due == 3 and stats.oldest_due_at == now

    leased = store.due_outbox(now, limit=2, lease=dt.timedelta(minutes=10))
    assert [m.id for m in leased] == ids[:2]
    assert [m.id for m in store.due_outbox(now, lease=dt.timedelta(minutes=10))] == ids[2:]
    assert store.due_outbox(now + dt.timedelta(minutes=5)) == []
    assert len(store.due_outbox(now + dt.timedelta(minutes=10))) == 3  # a crashed sender's mails come back


# ---------------------------------------------------------------- failures

def test_failures_are_kept_until_resolved(store):
    raw = b"From: x\r\n\r\ncrash me"
    digest = store.archive_raw(raw)
    fid = store.record_failure(digest, "maildir:1700000000.M1P2.host", "parse", "UnicodeDecodeError", "tb")
    [f] = store.failures()
    assert (f.id, f.raw_sha256, f.stage, f.resolved) == (fid, digest, "parse", False)
    assert store.read_raw(f.raw_sha256) == raw
    assert store.resolve_failure(fid) is True and store.resolve_failure(fid) is False
    assert store.failures() == []
    [f] = store.failures(unresolved_only=False)
    assert f.resolved and f.resolved_at is not None
