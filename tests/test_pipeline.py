"""The whole intake, from raw message files to records and drafted replies, through `mailbot ingest`.

Messages here were made by real mail programs (mutt, swaks, mpack, mailutils, sendEmail,
Foxmail/Outlook layouts) carrying workbooks saved by openpyxl and LibreOffice; each case is a
pair NAME.eml + NAME.yaml (the outcome the bureau expects). Every case runs end to end on SQLite and
a representative few on PostgreSQL; test_decide.py checks every case's verdict without a database.
"""
from __future__ import annotations

import email
import email.policy
import json
import shutil
from pathlib import Path

import pytest

from mailbot.app import cli
from mailbot import pipeline
from mailbot.app.config import load_config
from mailbot.store import Store

from conftest import CASES, DATA, ROOT, case_expectation, case_items

RECEIVED = "2026-11-20T10:00:00+08:00"


def write_config(tmp_path: Path, database: str | None = None) -> Path:
    text = (ROOT / "config.example.yaml").read_text(encoding="utf-8")
    text = text.replace("storage: storage", f"storage: {tmp_path / 'storage'}")
    text = text.replace("# rules: rules", f"rules: {ROOT / 'rules'}")
    if database:
        text += f"\ndatabase: {database}\n"
    p = tmp_path / "config.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def ingest(capsys, config: Path, *files: Path, received: str = RECEIVED) -> list[dict]:
    capsys.readouterr()
    code = cli.main(["--config", str(config), "ingest", "--json", "--received", received, *map(str, files)])
    out = capsys.readouterr().out
    assert code == 0, out
    return [json.loads(line) for line in out.splitlines()]


@pytest.fixture
def config(tmp_path, database_url):
    return write_config(tmp_path, database_url)


@pytest.fixture
def sqlite_config(tmp_path):
    return write_config(tmp_path)


def check_case(case: Path, config: Path, capsys) -> None:
    expected = case_expectation(case)
    [got] = ingest(capsys, config, case, received=expected["received"].isoformat())
    assert got["outcome"] == expected["outcome"], got
    assert got["section"] == expected.get("section"), got
    assert got["reason"]
    assert case_items(got["items"]) == case_items(expected.get("items", []))
    if expected["outcome"] == "ignored":
        assert got["reply"] is None
    else:
        assert got["reply"]["to"] == [expected.get("reply_to", expected["sender"])]


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_case(case, sqlite_config, capsys):
    check_case(case, sqlite_config, capsys)


# one case of each outcome, zip members among them: PostgreSQL stores every kind of record
PG_CASES = [DATA / "cases" / f"{n}.eml" for n in ("mutt_gb18030_rfc2231", "outlook_zip_gbk", "mutt_mistakes",
                                                  "swaks_unknown_sender", "mailutils_no_attachment", "exim_bounce")]


@pytest.mark.parametrize("case", PG_CASES, ids=[c.stem for c in PG_CASES])
def test_case_on_postgresql(case, tmp_path, postgres_url, capsys):
    check_case(case, write_config(tmp_path, postgres_url), capsys)


def test_every_corpus_message_ends_with_an_outcome_and_a_reason(shared_dir, sqlite_config, capsys):
    files = sorted(p for p in (shared_dir / "corpus").rglob("*") if p.is_file()
                   and not p.name.startswith(("LICENSE", "README", "NOTICE", "COPYING")) and p.name != "MANIFEST.tsv")
    assert len(files) >= 190
    results = ingest(capsys, sqlite_config, *files)
    assert len(results) == len(files)
    for r in results:
        assert r["outcome"] in ("accepted", "partially_accepted", "rejected", "ignored", "quarantined"), r
        assert r["reason"] and "internal error" not in r["reason"], r
    # none of these strangers is registered: nothing may be accepted from them
    assert not [r for r in results if r["outcome"] in ("accepted", "partially_accepted")]


def test_the_same_message_twice_yields_one_record_and_one_reply(config, capsys, tmp_path):
    case = DATA / "cases" / "mutt_gb18030_rfc2231.eml"
    first, second = ingest(capsys, config, case, case)
    assert first["outcome"] == "accepted" and not first["duplicate"]
    assert second["duplicate"] and second["receipt_no"] == first["receipt_no"] and second["reply"] is None
    c = load_config(config)
    with Store(c.database, c.storage) as st:
        assert len(st.messages()) == 1
        assert len(st.outbox()) == 1


def test_raw_message_is_archived_before_anything_else(sqlite_config, capsys):
    case = DATA / "cases" / "mutt_gb18030_rfc2231.eml"
    ingest(capsys, sqlite_config, case)
    c = load_config(sqlite_config)
    import hashlib
    sha = hashlib.sha256(case.read_bytes()).hexdigest()
    with Store(c.database, c.storage) as st:
        assert st.read_raw(sha) == case.read_bytes()


def _resend(raw: bytes, message_id: str, subject: str | None = None) -> bytes:
    m = email.message_from_bytes(raw, policy=email.policy.compat32)
    del m["Message-ID"]
    m["Message-ID"] = f"<{message_id}>"
    if subject:
        del m["Subject"]
        m["Subject"] = subject
    return m.as_bytes()


def test_a_resubmission_supersedes_and_keeps_history(sqlite_config, capsys, tmp_path):
    raw = (DATA / "cases" / "mutt_gb18030_rfc2231.eml").read_bytes()
    a, b = tmp_path / "a.eml", tmp_path / "b.eml"
    a.write_bytes(_resend(raw, "first@fagui"))
    b.write_bytes(_resend(raw, "second@fagui"))
    r1, r2 = ingest(capsys, sqlite_config, a, b)
    assert r1["outcome"] == r2["outcome"] == "accepted"
    c = load_config(sqlite_config)
    with Store(c.database, c.storage) as st:
        current = st.submissions(section="政策法规科", task=3, period="2026-11")
        history = st.submissions(section="政策法规科", task=3, period="2026-11", current_only=False)
        assert len(current) == 1 and current[0].receipt_no == r2["receipt_no"]
        assert len(history) == 2


def _photo_mail(jpeg: bytes, subject: str, message_id: str) -> bytes:
    from email.message import EmailMessage
    m = EmailMessage()
    m["From"] = "宣传科 <xuanchuan@cqscjg.example.cn>"
    m["To"] = "xyjgk@cqscjg.example.cn"
    m["Subject"] = subject
    m["Message-ID"] = f"<{message_id}>"
    m.set_content("诚信宣传活动现场照片，请查收。")
    m.add_attachment(jpeg, maintype="image", subtype="jpeg", filename="诚信宣传活动现场照片.jpg")
    return m.as_bytes()


def test_the_same_file_for_another_month_is_flagged(sqlite_config, capsys, tmp_path):
    from mailbot.intake.parse import parse_message
    zipped = parse_message((DATA / "cases" / "outlook_zip_gbk.eml").read_bytes())
    jpeg = next(a.content for a in zipped.attachments if a.filename.endswith(".jpg"))
    a, b = tmp_path / "a.eml", tmp_path / "b.eml"
    a.write_bytes(_photo_mail(jpeg, "2026年11月诚信宣传活动照片", "nov@xc"))
    b.write_bytes(_photo_mail(jpeg, "2026年12月诚信宣传活动照片", "dec@xc"))
    [r1] = ingest(capsys, sqlite_config, a)
    [r2] = ingest(capsys, sqlite_config, b, received="2026-12-20T10:00:00+08:00")
    assert r1["items"][0]["period"] == "2026-11" and r2["items"][0]["period"] == "2026-12"
    assert r1["items"][0]["warning_codes"] == []
    assert r2["items"][0]["warning_codes"] == ["same-file-other-period"]
    assert r2["outcome"] == "accepted"          # flagged, not rejected: the credit section decides
    assert r1["receipt_no"] in r2["items"][0]["warnings"][0] and "严禁弄虚作假" not in r2["items"][0]["warnings"][0]
    c = load_config(sqlite_config)
    with Store(c.database, c.storage) as st:
        dec = st.submissions(section="宣传科", period="2026-12")
        assert dec and dec[0].duplicate_of is not None and dec[0].reused_from.receipt_no == r1["receipt_no"]
        [receipt] = [m for m in st.outbox() if r2["receipt_no"] in m.subject]
        text = email.message_from_bytes(receipt.raw, policy=email.policy.default).get_body(("plain",)).get_content()
    assert "重复材料不计数：1份材料与往月已报送的材料完全相同" in text and r1["receipt_no"] in text
    # December's status: the photo is no answer (once the 25th has passed), marked as such
    capsys.readouterr()
    assert cli.main(["--config", str(sqlite_config), "status", "--period", "2026-12", "--json",
                     "--now", "2026-12-28T10:00:00+08:00"]) == 0
    cells = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    [cell] = [x for x in cells if (x["section"], x["task"]) == ("宣传科", 7)]
    assert cell["state"] == "reused" and cell["reused"][0]["earlier_receipt_no"] == r1["receipt_no"]


def test_a_quarantined_message_counts_for_nothing_until_confirmed(sqlite_config, capsys):
    [r] = ingest(capsys, sqlite_config, DATA / "cases" / "swaks_unknown_sender.eml")
    assert r["outcome"] == "quarantined"
    c = load_config(sqlite_config)
    with Store(c.database, c.storage) as st:
        assert st.submissions(section=r["section"]) == []


def test_a_crash_in_a_stage_is_shunted_and_the_next_message_goes_on(sqlite_config, capsys, monkeypatch):
    real = pipeline.decide
    calls = {"n": 0}

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("simulated bug")
        return real(*a, **k)

    monkeypatch.setattr(pipeline, "decide", flaky)
    a = DATA / "cases" / "mutt_gb18030_rfc2231.eml"
    b = DATA / "cases" / "mailutils_ods.eml"
    r1, r2 = ingest(capsys, sqlite_config, a, b)
    assert r1["outcome"] == "quarantined" and "stage decide" in r1["reason"]
    assert r2["outcome"] != "quarantined"
    c = load_config(sqlite_config)
    with Store(c.database, c.storage) as st:
        [f] = st.failures()
        assert f.stage == "decide" and "simulated bug" in f.traceback
    # replayed once the bug is gone, the message is processed normally
    monkeypatch.setattr(pipeline, "decide", real)
    [r3] = ingest(capsys, sqlite_config, a)
    assert r3["outcome"] == "accepted"


def _set_cap(config: Path, per_hour: int) -> None:
    text = config.read_text(encoding="utf-8").replace("replies_per_sender_per_hour: 10",
                                                      f"replies_per_sender_per_hour: {per_hour}")
    config.write_text(text, encoding="utf-8")


def test_reply_cap_stops_an_auto_responder_loop(sqlite_config, capsys, tmp_path):
    _set_cap(sqlite_config, 2)
    raw = (DATA / "cases" / "mailutils_no_attachment.eml").read_bytes()
    files = []
    for n in range(4):
        p = tmp_path / f"{n}.eml"
        p.write_bytes(_resend(raw, f"loop{n}@x"))
        files.append(p)
    results = ingest(capsys, sqlite_config, *files)
    # a mail without files is told so once a day; every later one is recorded, not answered
    assert [r["reply"] is not None for r in results] == [True, False, False, False]
    assert all("no reply" in r["reason"] and "already told today" in r["reason"] for r in results[1:])


def test_human_readable_table(sqlite_config, capsys):
    capsys.readouterr()
    assert cli.main(["--config", str(sqlite_config), "ingest", "--received", RECEIVED,
                     str(DATA / "cases" / "mutt_mistakes.eml")]) == 0
    out = capsys.readouterr().out
    assert "rejected" in out and "1 message(s)" in out


@pytest.mark.parametrize("fixture, code", [("encrypted.xlsx", "workbook-encrypted"), ("macro.xlsm", "workbook-macros"),
                                           ("zip_bomb.xlsx", "workbook-too-large"), ("xml_bomb.xlsx", "workbook-xml-bomb"),
                                           ("pe_as.xlsx", "executable-file"), ("truncated.xlsx", "workbook-broken")])
def test_dangerous_or_broken_workbooks_get_a_precise_rejection(fixture, code, sqlite_config, capsys, tmp_path):
    from email.message import EmailMessage
    m = EmailMessage()
    m["From"] = "fagui@cqscjg.example.cn"
    m["To"] = "xyjgk@cqscjg.example.cn"
    m["Subject"] = "政策法规科2026年11月双公示台账"
    m["Message-ID"] = f"<{fixture}@fagui>"
    m.set_content("请查收。")
    m.add_attachment((DATA / "workbooks" / fixture).read_bytes(), maintype="application", subtype="octet-stream",
                     filename="双公示台账" + fixture[fixture.rfind("."):])
    p = tmp_path / "m.eml"
    p.write_bytes(m.as_bytes())
    [r] = ingest(capsys, sqlite_config, p)
    assert r["outcome"] == "rejected", r
    [item] = r["items"]
    assert item["task"] == 3 and code in item["error_codes"], item


def test_a_template_request_gets_the_sections_blank_template_by_return(sqlite_config, capsys, tmp_path):
    from email.message import EmailMessage
    m = EmailMessage()
    m["From"] = "canyin@cqscjg.example.cn"
    m["To"] = "xyjgk@cqscjg.example.cn"
    m["Subject"] = "索取2026年12月报送模板"
    m["Message-ID"] = "<tpl@canyin>"
    m.set_content("请发送本科室模板，谢谢。")
    p = tmp_path / "t.eml"
    p.write_bytes(m.as_bytes())
    [r] = ingest(capsys, sqlite_config, p)
    assert r["outcome"] == "ignored" and "template request" in r["reason"]
    assert r["reply"]["subject"] == "【模板】餐饮科2026年12月报送模板"
    c = load_config(sqlite_config)
    with Store(c.database, c.storage) as st:
        [mail] = st.outbox()
        assert mail.kind == "template"
        reply = email.message_from_bytes(mail.raw, policy=email.policy.default)
        [att] = list(reply.iter_attachments())
        assert "餐饮科" in att.get_filename() and "2026年12月" in att.get_filename()
        import io
        import openpyxl
        wb = openpyxl.load_workbook(io.BytesIO(att.get_content()))
        assert "诚信宣传活动台账" in wb.sheetnames or len(wb.sheetnames) > 3


def test_the_same_mail_sent_again_as_a_new_copy_is_answered_briefly_once(sqlite_config, capsys, tmp_path):
    import shutil
    original = ROOT / "examples" / "01-fagui-monthly-mutt.eml"
    again = tmp_path / "again.eml"
    shutil.copyfile(original, again)              # the very same bytes, arriving as another copy
    [first] = ingest(capsys, sqlite_config, original)
    [second] = ingest(capsys, sqlite_config, again)
    assert second["duplicate"] and second["receipt_no"] == first["receipt_no"]
    assert second["reply"]["subject"].startswith(f"【已收到】{first['receipt_no']}")
    assert second["reply"]["to"] == first["reply"]["to"]
    [third] = ingest(capsys, sqlite_config, again)     # the same copy again (a redelivery): nothing more
    assert third["duplicate"] and third["reply"] is None
    [fourth] = ingest(capsys, sqlite_config, original)
    assert fourth["reply"] is None


def test_a_section_sending_files_always_gets_its_receipt_whatever_the_cap(sqlite_config, capsys, tmp_path):
    _set_cap(sqlite_config, 2)
    raw = (ROOT / "examples" / "01-fagui-monthly-mutt.eml").read_bytes()
    files = []
    for n in range(4):
        p = tmp_path / f"s{n}.eml"
        p.write_bytes(_resend(raw, f"month-end{n}@x"))
        files.append(p)
    results = ingest(capsys, sqlite_config, *files)
    assert [r["outcome"] for r in results] == ["accepted"] * 4
    assert all(r["reply"] is not None for r in results)


def test_a_vacation_reply_to_a_rejection_gets_no_answer(sqlite_config, capsys, tmp_path):
    [rejected] = ingest(capsys, sqlite_config, DATA / "cases" / "mailutils_no_attachment.eml")
    assert rejected["outcome"] == "rejected" and rejected["reply"]
    to = rejected["reply"]["to"][0]
    mid = rejected["reply"]["message_id"]
    replies = []
    for n, (headers, body) in enumerate([
            (f"In-Reply-To: <{mid}>\r\n", "您好，我正在休假，将于12月10日返回。"),     # names our letter
            ("", "This is an automatic reply: I am out of the office."),                 # only the subject
            ("", "收到，谢谢。")]):
        raw = (f"From: {to}\r\nTo: xyjgk@cqscjg.example.cn\r\nSubject: Re: {rejected['reply']['subject']}\r\n"
               f"Message-ID: <vac{n}@x>\r\n{headers}Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n")
        p = tmp_path / f"v{n}.eml"
        p.write_bytes(raw.encode("utf-8"))
        replies.append(p)
    results = ingest(capsys, sqlite_config, *replies)
    # the machines get nothing; the person's words go to a person of the credit section
    assert [r["outcome"] for r in results] == ["ignored", "ignored", "forwarded"]
    assert results[0]["reply"] is None and results[1]["reply"] is None
    assert "absence reply" in results[0]["reason"] and "receipt" in results[2]["reason"]
    assert results[2]["reply"]["subject"].startswith("【已转人工】")


def test_outbox_list_shows_every_letter_and_what_the_cap_withheld(sqlite_config, capsys, tmp_path):
    _set_cap(sqlite_config, 1)
    raw = (DATA / "cases" / "mailutils_no_attachment.eml").read_bytes()
    files = []
    for n in range(2):
        p = tmp_path / f"w{n}.eml"
        p.write_bytes(_resend(raw, f"withheld{n}@x"))
        files.append(p)
    first, second = ingest(capsys, sqlite_config, *files)
    assert first["reply"] and second["reply"] is None
    capsys.readouterr()
    assert cli.main(["--config", str(sqlite_config), "outbox", "list", "--json"]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    [queued] = [r for r in rows if r["state"] == "queued"]
    [held] = [r for r in rows if r["state"] == "withheld"]
    assert queued["to"] == first["reply"]["to"] and queued["subject"] == first["reply"]["subject"]
    assert queued["in_reply_to"] == "withheld0@x" and "邮件中未找到附件" in queued["text"]
    assert queued["attachments"] and queued["attachments"][0].endswith(".xlsx")
    assert held["receipt_no"] == second["receipt_no"] and held["in_reply_to"] == "withheld1@x"
    assert cli.main(["--config", str(sqlite_config), "outbox", "list", "--json", "--state", "sent"]) == 0
    assert capsys.readouterr().out == ""


def test_a_receipt_names_what_it_replaces_and_another_hand_is_copied(sqlite_config, capsys, tmp_path):
    raw = (ROOT / "examples" / "01-fagui-monthly-mutt.eml").read_bytes()
    second = tmp_path / "second.eml"
    m = email.message_from_bytes(_resend(raw, "correction@x"), policy=email.policy.compat32)
    m.replace_header("From", "Zhang Wei <zhang.wei@cqscjg.example.cn>")     # the section's other address
    second.write_bytes(m.as_bytes())
    [first] = ingest(capsys, sqlite_config, ROOT / "examples" / "01-fagui-monthly-mutt.eml")
    [again] = ingest(capsys, sqlite_config, second, received="2026-11-21T10:00:00+08:00")
    assert again["outcome"] == "accepted"
    assert again["reply"]["to"] == ["zhang.wei@cqscjg.example.cn"]
    assert "fagui@cqscjg.example.cn" in again["reply"]["cc"]
    capsys.readouterr()
    assert cli.main(["--config", str(sqlite_config), "outbox", "list", "--json"]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    letter = next(r for r in rows if r["subject"] == again["reply"]["subject"])
    assert f"原回执编号{first['receipt_no']}" in letter["text"] and "（由fagui@cqscjg.example.cn发送）" in letter["text"]
