"""The credit section's desk by mail, end to end through `mailbot ingest`: each command from the
credit section's registered address, what it does and the answer it gets; a section's own 查询;
commands from anyone else being ordinary mail; a person's reply passed to the credit section."""
from __future__ import annotations

import email
import email.policy
import io
import json
import uuid
import zipfile
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

import openpyxl
import pytest

from mailbot.app import cli
from mailbot.app.config import load_config
from mailbot.dates.zone import bureau_zone
from mailbot.desk.commands import read_command
from mailbot.model import Incoming
from mailbot.rules import load_rules

from conftest import DATA, ROOT
from test_pipeline import RECEIVED, ingest, write_config  # noqa: F401

pytest_plugins = ["mailservers"]

import datetime as dt

CREDIT = "xinyong.staff@cqscjg.example.cn"
FAGUI = "fagui@cqscjg.example.cn"
BOT = "xyjgk@cqscjg.example.cn"
EXAMPLES = ROOT / "examples"


def mail(tmp_path: Path, sender: str, subject: str, body: str = "", *, in_reply_to: str | None = None,
         references: tuple[str, ...] = (), attachments: tuple[tuple[str, bytes], ...] = ()) -> Path:
    m = EmailMessage()
    m["From"] = sender
    m["To"] = BOT
    m["Subject"] = subject
    m["Date"] = format_datetime(dt.datetime(2026, 12, 3, 9, 30, tzinfo=bureau_zone()))
    m["Message-ID"] = make_msgid(domain="cqscjg.example.cn")
    if in_reply_to:
        m["In-Reply-To"] = f"<{in_reply_to}>"
        m["References"] = " ".join(f"<{r}>" for r in (*references, in_reply_to))
    m.set_content(body or "（无正文）", charset="utf-8")
    for name, data in attachments:
        m.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    path = tmp_path / f"{uuid.uuid4().hex}.eml"
    path.write_bytes(m.as_bytes())
    return path


def outbox(capsys, cfg) -> list[dict]:
    capsys.readouterr()
    assert cli.main(["--config", str(cfg), "outbox", "list", "--json"]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def sent_to(capsys, cfg, receipt_no: str) -> dict:
    [answer] = [o for o in outbox(capsys, cfg) if receipt_no in (o["message_id"] or "")]
    return answer


def raw_of(cfg, message_id: str) -> email.message.EmailMessage:
    from mailbot.store import Store
    config = load_config(cfg)
    store = Store(config.database, config.storage)
    [o] = [o for o in store.outbox(limit=10_000) if o.mail_message_id == message_id]
    return email.message_from_bytes(o.raw, policy=email.policy.default)


@pytest.fixture
def cfg(tmp_path):
    return write_config(tmp_path)


@pytest.fixture
def quarantined(capsys, cfg):
    [r] = ingest(capsys, cfg, DATA / "cases" / "swaks_unknown_sender.eml")
    assert r["outcome"] == "quarantined"
    return r


# ---------------------------------------------------------------- reading a command (pure)

def _incoming(subject: str, text: str = "", in_reply_to: str | None = None) -> Incoming:
    return Incoming(message_id="x@y", subject=subject, from_addr=CREDIT, from_name="", to=(BOT,), cc=(), reply_to=(),
                    date=None, in_reply_to=in_reply_to, references=(), headers={}, content_type="text/plain",
                    text=text, attachments=())


@pytest.mark.parametrize("subject,name,args", [
    ("查询 2026年11月", "query", {"period": "2026-11"}),
    ("查询　２０２６年１１月", "query", {"period": "2026-11"}),          # full-width space and digits
    ("查询2026-11", "query", {"period": "2026-11"}),
    ("查询 202611", "query", {"period": "2026-11"}),
    ("查询", "query", {"period": None}),
    ("【汇总】 2026年10月", "package", {"period": "2026-10"}),
    ("确认 xy20261203-00005 法规科", "confirm", {"receipt_no": "XY20261203-00005", "section": "政策法规科"}),
    ("退回 XY20261203-00005 非本局来信", "reject", {"receipt_no": "XY20261203-00005", "reason": "非本局来信"}),
    ("改判 XY20261203-00005：2 任务8 2026年10月", "reclassify",
     {"receipt_no": "XY20261203-00005", "item": 2, "task": 8, "period": "2026-10"}),
    ("节假日 2027年", "holidays", {"year": 2027}),
    ("结账 2026年11月", "close", {"period": "2026-11"}),
])
def test_commands_are_read_in_the_forms_a_clerk_writes(subject, name, args):
    rules = load_rules(ROOT / "rules")
    c = read_command(_incoming(subject), rules, dt.date(2026, 12, 3))
    assert c is not None and c.error is None and c.name == name and c.args == args


def test_words_that_merely_start_like_a_command_are_ordinary_mail():
    rules = load_rules(ROOT / "rules")
    for subject in ("汇总材料", "通报表扬信", "信用监管科2026年11月信用监测报送材料", "Re: 查询"):
        assert read_command(_incoming(subject), rules, dt.date(2026, 12, 3)) is None, subject


def test_a_reply_carries_its_command_on_the_first_line_and_its_receipt_in_the_thread():
    rules = load_rules(ROOT / "rules")
    c = read_command(_incoming("回复：【待确认】XY20261120-00001 政策法规科材料", "\n\n 确认 政策法规科\n\n> 原邮件",
                               in_reply_to="XY20261120-00001.quarantine@cqscjg.example.cn"), rules, dt.date(2026, 12, 3))
    assert c.name == "confirm" and c.args == {"receipt_no": "XY20261120-00001", "section": "政策法规科"}


def test_a_malformed_command_says_why():
    rules = load_rules(ROOT / "rules")
    for subject, why in (("汇总", "请写明月份"), ("查询 十一月", "不是可识别的月份"), ("确认 XY20261203-00005 某某科", "不是登记的科室"),
                         ("改判 XY20261203-00005:1", "请写明改为哪项任务"), ("改判 XY20261203-00005:1 任务99", "没有任务99"),
                         ("确认 政策法规科", "请写明回执编号")):
        c = read_command(_incoming(subject), rules, dt.date(2026, 12, 3))
        assert c is not None and why in (c.error or ""), (subject, c)


# ---------------------------------------------------------------- end to end

def test_help_lists_every_command_with_an_example(capsys, cfg, tmp_path):
    [r] = ingest(capsys, cfg, mail(tmp_path, CREDIT, "帮助"))
    assert (r["outcome"], r["command"], r["ok"]) == ("command", "help", True)
    letter = raw_of(cfg, r["reply"]["message_id"])
    text = letter.get_body(("plain",)).get_content()
    for word in ("帮助", "查询", "汇总", "催报", "通报", "确认", "退回", "忽略", "改判", "节假日", "结账"):
        assert f"{word}" in text
    assert letter["In-Reply-To"] and str(letter["Subject"]).startswith("【指令结果】")


def test_confirm_settles_the_quarantined_message_and_a_second_confirm_says_so(capsys, cfg, tmp_path, quarantined):
    no = quarantined["receipt_no"]
    [r] = ingest(capsys, cfg, mail(tmp_path, CREDIT, f"确认 {no} 政策法规科"))
    assert (r["outcome"], r["command"], r["ok"]) == ("command", "confirm", True)
    receipt = raw_of(cfg, f"{no}.receipt@cqscjg.example.cn")
    assert receipt["To"] == "zhangwei_1988@163.com"                       # the sender the credit section vouched for
    assert set(str(receipt["Cc"]).split(", ")) == {FAGUI, "zhang.wei@cqscjg.example.cn"}
    answer = raw_of(cfg, r["reply"]["message_id"]).get_body(("plain",)).get_content()
    assert f"已将回执编号{no}的邮件确认为政策法规科的报送" in answer
    [again] = ingest(capsys, cfg, mail(tmp_path, CREDIT, f"确认 {no} 政策法规科"))
    assert again["ok"] and "already settled" in again["reason"]
    assert "已处理过" in raw_of(cfg, again["reply"]["message_id"]).get_body(("plain",)).get_content()


def test_replying_to_the_quarantine_notice_confirms_it_without_the_number(capsys, cfg, tmp_path, quarantined):
    no = quarantined["receipt_no"]
    notice = next(o for o in outbox(capsys, cfg) if o["kind"] == "quarantine_notice" and o["to"] == [CREDIT])
    [r] = ingest(capsys, cfg, mail(tmp_path, CREDIT, f"回复：{notice['subject']}", "确认 政策法规科\n\n> 原通知……",
                                   in_reply_to=notice["message_id"].strip("<>")))
    assert (r["command"], r["ok"]) == ("confirm", True) and no in r["reason"]


def test_reject_writes_to_the_sender_and_ignore_does_not(capsys, cfg, tmp_path, quarantined):
    no = quarantined["receipt_no"]
    [r] = ingest(capsys, cfg, mail(tmp_path, CREDIT, f"退回 {no} 请使用科室登记的邮箱报送"))
    assert r["ok"]
    letter = raw_of(cfg, f"{no}.closed@cqscjg.example.cn")
    assert letter["To"] == "zhangwei_1988@163.com"
    assert "原因：请使用科室登记的邮箱报送" in letter.get_body(("plain",)).get_content()
    [again] = ingest(capsys, cfg, mail(tmp_path, CREDIT, f"忽略 {no} 重复"))
    assert again["ok"] and "already settled" in again["reason"]
    [other] = ingest(capsys, cfg, DATA / "cases" / "swaks_unknown_sender.eml", received="2026-11-21T10:00:00+08:00")
    assert other["duplicate"]                                             # the same mail again: one record


def test_query_from_the_credit_section_sends_the_matrix_as_a_table_and_a_workbook(capsys, cfg, tmp_path):
    ingest(capsys, cfg, *sorted(EXAMPLES.glob("*.eml")))
    [r] = ingest(capsys, cfg, mail(tmp_path, CREDIT, "查询 2026年11月"))
    letter = raw_of(cfg, r["reply"]["message_id"])
    html = letter.get_body(("html",)).get_content()
    assert "<table" in html and "按时报送" in html and "食品流通科" in html and "消费者权益保护科" in html
    [xlsx] = [p for p in letter.iter_attachments()]
    wb = openpyxl.load_workbook(io.BytesIO(xlsx.get_content()))
    assert "报送情况" in wb.sheetnames
    plain = letter.get_body(("plain",)).get_content()
    assert "2026年11月各科室报送情况" in plain and "尚未完成的事项" in plain and "[[表格]]" not in plain


def test_a_sections_query_shows_its_own_row_and_nothing_of_another(capsys, cfg, tmp_path):
    ingest(capsys, cfg, *sorted(EXAMPLES.glob("*.eml")))
    [r] = ingest(capsys, cfg, mail(tmp_path, FAGUI, "查询 2026年11月"))
    assert (r["outcome"], r["command"], r["ok"], r["section"]) == ("command", "query", True, "政策法规科")
    letter = raw_of(cfg, r["reply"]["message_id"])
    text = letter.get_body(("plain",)).get_content() + letter.get_body(("html",)).get_content()
    assert "贵科室2026年11月的报送情况" in text and "回执XY" in text
    rules = load_rules(ROOT / "rules")
    body = text.split("\n信用监管科\n")[0]                       # the signature names the credit section
    for other in (s.id for s in rules.sections if s.id != "政策法规科"):
        assert other not in body, other
    assert list(letter.iter_attachments()) == []


def test_other_commands_from_a_section_or_a_stranger_are_ordinary_mail(capsys, cfg, tmp_path, quarantined):
    no = quarantined["receipt_no"]
    [from_section] = ingest(capsys, cfg, mail(tmp_path, FAGUI, f"确认 {no} 政策法规科"))
    assert from_section["outcome"] == "rejected" and "command" not in from_section   # a mail with no files
    [stranger] = ingest(capsys, cfg, mail(tmp_path, "someone@example.com", f"确认 {no} 政策法规科"))
    assert stranger["outcome"] == "ignored" and "command" not in stranger
    [forged] = ingest(capsys, cfg, mail(tmp_path, f"信用监管科 <{CREDIT}> <someone@example.com>", "催报 2026年11月"))
    assert forged["outcome"] != "command"
    held = [json.loads(line) for line in _cli(capsys, cfg, "quarantine", "list", "--json").splitlines()]
    assert no in [h.get("receipt_no") for h in held]                        # still waiting


def _cli(capsys, cfg, *argv) -> str:
    capsys.readouterr()
    cli.main(["--config", str(cfg), *argv])
    return capsys.readouterr().out


def test_remind_now_writes_to_every_section_still_owing_once_per_command(capsys, cfg, tmp_path):
    ingest(capsys, cfg, *sorted(EXAMPLES.glob("*.eml")))
    before = len(outbox(capsys, cfg))
    command = mail(tmp_path, CREDIT, "催报 2026年11月")
    [r] = ingest(capsys, cfg, command)
    assert r["ok"]
    letters = [o for o in outbox(capsys, cfg) if o["kind"] in ("reminder", "overdue")]
    sections = {o["subject"].split("】")[1].split("2026")[0] for o in letters}
    assert {"消费者权益保护科", "食品生产科", "办公室", "食品流通科"} <= sections and "政策法规科" not in sections
    assert all("overdue" == o["kind"] for o in letters)                     # 3 December: November is past due
    answer = raw_of(cfg, r["reply"]["message_id"]).get_body(("plain",)).get_content()
    assert "已向2026年11月尚有材料未报送的" in answer and "消费者权益保护科" in answer
    assert len(outbox(capsys, cfg)) == before + len(letters) + 1


def test_reclassify_refiles_one_file_and_sends_a_corrected_receipt(capsys, cfg, tmp_path):
    [r] = ingest(capsys, cfg, EXAMPLES / "02-zhichan-ods-mail.eml")
    no = r["receipt_no"]
    first = r["items"][0]
    [c] = ingest(capsys, cfg, mail(tmp_path, CREDIT, f"改判 {no}:1 2026年10月"))
    assert c["ok"], c["reason"]
    corrected = raw_of(cfg, f"{no}-1.correction@cqscjg.example.cn")
    text = corrected.get_body(("plain",)).get_content()
    assert "改按" in text and "2026年10月" in text and f"本更正回执编号{no}-1" in text
    assert corrected["To"] == "zhichan@cqscjg.example.cn"
    status = [json.loads(line) for line in _cli(capsys, cfg, "status", "--period", "2026-10", "--json",
                                                 "--now", "2026-12-03T10:00").splitlines()]
    moved = next(s for s in status if s["section"] == "知识产权科" and s["task"] == first["task"])
    assert moved["state"] == "late"                                      # October's, received 20 November
    assert _state(capsys, cfg, "2026-11", "知识产权科", first["task"]) == "missing"   # no longer November's
    [same] = ingest(capsys, cfg, mail(tmp_path, CREDIT, f"改判 {no}:1 2026年10月"))
    assert same["ok"] and "already" in same["reason"]
    # and back: November counts it once, October not at all
    [back] = ingest(capsys, cfg, mail(tmp_path, CREDIT, f"改判 {no}:1 2026年11月"))
    assert back["ok"] and f"{no}-2" in back["reason"]
    assert _state(capsys, cfg, "2026-11", "知识产权科", first["task"]) == "on_time"
    assert _state(capsys, cfg, "2026-10", "知识产权科", first["task"]) == "missing"
    from mailbot.store import Store
    config = load_config(cfg)
    current = [x for x in Store(config.database, config.storage).submissions(section="知识产权科", task=first["task"])]
    assert [(x.period, x.receipt_no) for x in current] == [("2026-11", no)]


def _state(capsys, cfg, period, section, task) -> str:
    rows = [json.loads(line) for line in _cli(capsys, cfg, "status", "--period", period, "--json",
                                              "--now", "2026-12-03T10:00").splitlines()]
    return next(r["state"] for r in rows if r["section"] == section and r["task"] == task)


def test_package_comes_back_with_the_workbook_and_the_evidence(capsys, cfg, tmp_path):
    ingest(capsys, cfg, *sorted(EXAMPLES.glob("*.eml")))
    [r] = ingest(capsys, cfg, mail(tmp_path, CREDIT, "汇总 2026年11月"))
    letter = raw_of(cfg, r["reply"]["message_id"])
    names = [p.get_filename() for p in letter.iter_attachments()]
    assert any(n.endswith(".xlsx") for n in names) and any(n.endswith(".zip") for n in names)
    zipped = next(p for p in letter.iter_attachments() if p.get_filename().endswith(".zip")).get_content()
    assert len(zipfile.ZipFile(io.BytesIO(zipped)).namelist()) > 3


def test_close_month_once_then_says_it_was_closed(capsys, cfg, tmp_path):
    [r] = ingest(capsys, cfg, mail(tmp_path, CREDIT, "结账 2026年11月"))
    assert r["ok"] and "closed" in r["reason"]
    [again] = ingest(capsys, cfg, mail(tmp_path, CREDIT, "结账 2026-11"))
    assert again["ok"] and "closed before" in again["reason"]


def test_a_malformed_command_is_answered_with_the_reason_and_the_help(capsys, cfg, tmp_path):
    [r] = ingest(capsys, cfg, mail(tmp_path, CREDIT, "汇总 下个月"))
    assert (r["outcome"], r["command"], r["ok"]) == ("command", "package", False)
    letter = raw_of(cfg, r["reply"]["message_id"])
    text = letter.get_body(("plain",)).get_content()
    assert "未能执行" in text and "不是可识别的月份" in text and "结账" in text
    assert str(letter["Subject"]).startswith("【指令未执行】")


def test_every_command_is_in_the_audit_log(capsys, cfg, tmp_path, quarantined):
    ingest(capsys, cfg, mail(tmp_path, CREDIT, "帮助"))
    ingest(capsys, cfg, mail(tmp_path, CREDIT, f"忽略 {quarantined['receipt_no']} 测试"))
    ingest(capsys, cfg, mail(tmp_path, FAGUI, "查询"))
    rows = [json.loads(line) for line in _cli(capsys, cfg, "audit", "--json").splitlines()]
    assert [(a["action"], a["actor"], a["channel"], a["ok"]) for a in rows] == [
        ("query", FAGUI, "mail", True), ("ignore", CREDIT, "mail", True), ("help", CREDIT, "mail", True)]
    assert rows[1]["args"] == {"receipt_no": quarantined["receipt_no"], "reason": "测试"}
    text = _cli(capsys, cfg, "audit")
    assert "ignore" in text and "(Beijing)" in text


def test_a_persons_reply_goes_to_the_credit_section_and_its_sender_is_told_once(capsys, cfg, tmp_path):
    [r] = ingest(capsys, cfg, EXAMPLES / "01-fagui-monthly-mutt.eml")
    receipt = r["reply"]["message_id"].strip("<>")
    first = mail(tmp_path, FAGUI, f"回复：{r['reply']['subject']}", "第3项台账的日期填错了，能否撤回？", in_reply_to=receipt)
    second = mail(tmp_path, FAGUI, f"回复：{r['reply']['subject']}", "补充：是第5行。", in_reply_to=receipt)
    [a, b] = ingest(capsys, cfg, first, second)
    assert a["outcome"] == b["outcome"] == "forwarded"
    mails = outbox(capsys, cfg)
    forwards = [o for o in mails if o["kind"] == "forward"]
    assert len(forwards) == 2 and all(o["to"] == [CREDIT] for o in forwards)
    forwarded = raw_of(cfg, forwards[-1]["message_id"].strip("<>"))
    assert forwarded["Reply-To"] == FAGUI                                  # the clerk's Reply answers the section
    text = forwarded.get_body(("plain",)).get_content()
    assert "第3项台账的日期填错了" in text and "系统原邮件" in text and r["receipt_no"] in text
    acks = [o for o in mails if o["subject"].startswith("【已转人工】")]
    assert len(acks) == 1 and acks[0]["to"] == [FAGUI]                    # once per thread
    # answering the "passed to a person" note is the same thread: passed on, not acknowledged again
    third = mail(tmp_path, FAGUI, f"回复：{acks[0]['subject']}", "好的，等您回复。",
                 in_reply_to=acks[0]["message_id"].strip("<>"), references=(receipt,))
    [c] = ingest(capsys, cfg, third)
    assert c["outcome"] == "forwarded"
    assert len([o for o in outbox(capsys, cfg) if o["subject"].startswith("【已转人工】")]) == 1
    listed = [json.loads(line) for line in _cli(capsys, cfg, "quarantine", "list", "--json").splitlines()]
    assert [x["kind"] for x in listed] == ["forwarded"] * 3 and listed[0]["from"] == FAGUI


# ---------------------------------------------------------------- through the mailbox

def test_every_command_through_poll_once_against_dovecot(tmp_path, dovecot, smtp_relay):
    """Three strangers' workbooks wait and a section's ledger is in; then every command by mail,
    through IMAP, answered through SMTP into the credit section's own mailbox."""
    from test_desk_holidays import NOTICE_2027
    from test_faults import Bot
    bot = Bot(tmp_path, dovecot, smtp_relay)
    stranger = (DATA / "cases" / "swaks_unknown_sender.eml").read_bytes()
    for n in range(3):
        dovecot.deliver(BOT, stranger.replace(b"Message-Id: <", f"Message-Id: <copy{n}.".encode(), 1)
                        .replace(b"Message-ID: <", f"Message-ID: <copy{n}.".encode(), 1))
    dovecot.deliver(BOT, (EXAMPLES / "02-zhichan-ods-mail.eml").read_bytes())
    first = bot.poll()
    assert first.returncode == 0, first.stderr
    st = bot.store()
    held = sorted(m.receipt_no for m in st.messages(outcome="quarantined"))
    [ledger] = [m.receipt_no for m in st.messages() if m.section == "知识产权科"]
    st.close()
    assert len(held) == 3, held
    commands = [(CREDIT, "帮助", ""), (CREDIT, "查询 2026年11月", ""), (CREDIT, "汇总 2026年11月", ""),
                (CREDIT, "催报 2026年11月", ""), (CREDIT, "通报 2026年11月", ""),
                (CREDIT, f"确认 {held[0]} 政策法规科", ""), (CREDIT, f"退回 {held[1]} 请用登记邮箱报送", ""),
                (CREDIT, f"忽略 {held[2]} 重复来信", ""), (CREDIT, f"改判 {ledger}:1 2026年10月", ""),
                (CREDIT, "节假日 2027", NOTICE_2027), (CREDIT, "结账 2026年11月", ""),
                (FAGUI, "查询 2026年11月", ""), (FAGUI, "催报 2026年11月", "")]
    for sender, subject, body in commands:
        dovecot.deliver(BOT, mail(tmp_path, sender, subject, body).read_bytes())
    done = bot.poll()
    assert done.returncode == 0, done.stderr
    answers = {str(m["Subject"]).split(" ", 1)[1]: str(m["Subject"]).split("】")[0] + "】"
               for m in (email.message_from_bytes(r, policy=email.policy.default) for r in dovecot.messages(CREDIT))
               if str(m["Subject"]).startswith("【指令")}
    assert answers == {subject: "【指令结果】" for sender, subject, _ in commands if sender == CREDIT}
    fagui = [str(email.message_from_bytes(r, policy=email.policy.default)["Subject"]) for r in dovecot.messages(FAGUI)]
    assert any(s.startswith("【指令结果】") and s.endswith("查询 2026年11月") for s in fagui)
    assert any(s.startswith("【回执】" + held[0]) for s in fagui)              # Cc of the confirmed receipt
    assert not any(s.startswith("【指令") and "催报" in s for s in fagui)     # not the section's to give
    assert "已办指令" in dovecot.folders(BOT)
    st = bot.store()
    assert [a.action for a in reversed(st.audit())] == [
        "help", "query", "package", "remind", "bulletin", "confirm", "reject", "ignore", "reclassify", "holidays",
        "close", "query"]
    assert 2027 in st.loaded_calendars() and "2026-11" in st.closed_periods()
    st.close()


def test_the_credit_section_is_told_of_a_waiting_message_with_the_commands_that_settle_it(capsys, cfg, quarantined):
    no = quarantined["receipt_no"]
    notice = raw_of(cfg, f"{no}.desk@cqscjg.example.cn")
    assert notice["To"] == CREDIT and str(notice["Subject"]).startswith(f"【待确认】{no}")
    text = notice.get_body(("plain",)).get_content()
    assert "zhangwei_1988@163.com" in text and "系统推测为政策法规科的报送" in text
    assert "确认 政策法规科" in text and f"确认 {no} 政策法规科" in text and "退回 原因" in text and "忽略 原因" in text


def test_bulletin_goes_to_every_section_now_with_the_credit_section_in_copy(capsys, cfg, tmp_path):
    ingest(capsys, cfg, *sorted(EXAMPLES.glob("*.eml")))
    [r] = ingest(capsys, cfg, mail(tmp_path, CREDIT, "通报 2026年11月"))
    assert (r["command"], r["ok"]) == ("bulletin", True)
    [bulletin] = [o for o in outbox(capsys, cfg) if o["subject"].startswith("【调度通报】2026年11月")]
    assert FAGUI in bulletin["to"] and "canyin@cqscjg.example.cn" in bulletin["to"] and CREDIT in bulletin["cc"]
    answer = raw_of(cfg, r["reply"]["message_id"]).get_body(("plain",)).get_content()
    assert "已发送2026年11月报送情况通报" in answer


def test_a_made_up_reply_makes_the_bureau_write_to_nobody(capsys, cfg, tmp_path):
    [r] = ingest(capsys, cfg, EXAMPLES / "01-fagui-monthly-mutt.eml")
    before = len(outbox(capsys, cfg))
    forged = [mail(tmp_path, "victim@example.org", "回复：你好", "hello", in_reply_to=f"XY20261120-000{n:02d}.receipt@cqscjg.example.cn")
              for n in range(1, 6)]
    # our real receipt, but the reply comes from an address it never went to
    forged.append(mail(tmp_path, "victim@example.org", "回复：你好", "hello", in_reply_to=r["reply"]["message_id"].strip("<>")))
    results = ingest(capsys, cfg, *forged)
    assert {x["outcome"] for x in results} == {"ignored"} and all(x["reply"] is None for x in results)
    assert len(outbox(capsys, cfg)) == before


def test_a_responder_answering_the_note_gets_no_second_note(capsys, cfg, tmp_path):
    [r] = ingest(capsys, cfg, EXAMPLES / "01-fagui-monthly-mutt.eml")
    [a] = ingest(capsys, cfg, mail(tmp_path, FAGUI, "回复：收到", "收到", in_reply_to=r["reply"]["message_id"].strip("<>")))
    note = a["reply"]["message_id"].strip("<>")
    for _ in range(3):          # a crude responder: In-Reply-To only, no References, no Auto-Submitted
        [x] = ingest(capsys, cfg, mail(tmp_path, FAGUI, "回复：【已转人工】", "收到", in_reply_to=note))
        assert x["reply"] is None
    assert len([o for o in outbox(capsys, cfg) if o["subject"].startswith("【已转人工】")]) == 1


def test_the_same_command_mail_delivered_twice_is_done_once(capsys, cfg, tmp_path):
    ingest(capsys, cfg, *sorted(EXAMPLES.glob("*.eml")))
    first = mail(tmp_path, CREDIT, "通报 2026年11月")
    again = tmp_path / "again.eml"                      # an SMTP retry: one more Received line, other bytes
    again.write_bytes(b"Received: from relay2 by mx; Thu, 3 Dec 2026 09:31:00 +0800\n" + first.read_bytes())
    [a] = ingest(capsys, cfg, first)
    [b] = ingest(capsys, cfg, again)
    assert a["ok"] and b["ok"] and "done before" in b["reason"]
    assert len([o for o in outbox(capsys, cfg) if o["subject"].startswith("【调度通报】")]) == 1
    assert "未重复执行" in raw_of(cfg, b["reply"]["message_id"]).get_body(("plain",)).get_content()
    assert len([a for a in json.loads("[" + ",".join(_cli(capsys, cfg, "audit", "--json").splitlines()) + "]")
                if a["action"] == "bulletin"]) == 1


def test_a_zero_width_space_pasted_before_the_command_is_no_matter():
    rules = load_rules(ROOT / "rules")
    c = read_command(_incoming("\u200b查询\u200b 2026年11月"), rules, dt.date(2026, 12, 3))
    assert c is not None and c.name == "query" and c.args == {"period": "2026-11"}
    assert read_command(_incoming("Fwd: 查询 2026年11月", "查询 2026年11月"), rules, dt.date(2026, 12, 3)) is None


@pytest.mark.parametrize("subject,why", [("通报 2000年1月", "没有该月的任何报送记录"), ("催报 2062年11月", "尚未到来"),
                                         ("通报 2099年12月", "尚未到来")])
def test_a_month_mailbot_never_collected_sends_nothing_to_the_sections(capsys, cfg, tmp_path, subject, why):
    ingest(capsys, cfg, *sorted(EXAMPLES.glob("*.eml")))
    before = len(outbox(capsys, cfg))
    [r] = ingest(capsys, cfg, mail(tmp_path, CREDIT, subject))
    assert (r["outcome"], r["ok"]) == ("command", False)
    assert why in raw_of(cfg, r["reply"]["message_id"]).get_body(("plain",)).get_content()
    assert len(outbox(capsys, cfg)) == before + 1                        # the answer, nothing else
