"""`mailbot demo` (mailbot/demo.py) and its development servers (mailbot/devservers.py).

The demo runs the real bot on examples/ with the real clock: each of the ten people who wrote
gets exactly one answer in their own mailbox, tagged as examples/README.md says, and the
credit section's matrix shows who has sent what. Maildir mode needs nothing installed; the
IMAP mode runs against Dovecot (skipped, or failed under MAILBOT_REQUIRE_SERVERS=1, without it).
"""
from __future__ import annotations

import email
import email.policy
import io
import mailbox
import smtplib
import time
from pathlib import Path

import pytest

from mailbot.dev import demo
from mailbot.dev import devservers
from mailbot.app.config import load_config

CREDIT = "xyjgk@cqscjg.example.cn"
# examples/README.md: what each sender should get back (the auto-reply's sender gets nothing)
EXPECTED = {
    "fagui@cqscjg.example.cn": "【回执】",
    "zhichan@cqscjg.example.cn": "【回执】",
    "xinyong.staff@cqscjg.example.cn": "【回执】",
    "canyin@cqscjg.example.cn": "【回执】",
    "xuanchuan@cqscjg.example.cn": "【回执】",
    "gesi@cqscjg.example.cn": "【回执】",
    "shipin.lt@cqscjg.example.cn": "【部分受理】",
    "zhang.wei@cqscjg.example.cn": "【退回】",
    "zhoumin_0531@126.com": "【待确认】",
    "bangongshi@cqscjg.example.cn": "【退回】",
}
AUTO_REPLY_SENDER = "caiwu@cqscjg.example.cn"
ACCEPTED_SECTIONS = ("政策法规科", "知识产权科", "信用监管科", "宣传科", "个私服务中心", "食品流通科", "餐饮科")
TIME_LIMIT = 20.0


class Run:
    def __init__(self, workdir: Path, **kwargs):
        self.workdir = workdir
        out = io.StringIO()
        t0 = time.monotonic()
        self.code = demo.run_demo(workdir=workdir, out=out, **kwargs)
        self.seconds = time.monotonic() - t0
        self.output = out.getvalue()
        print(self.output)
        print(f"demo took {self.seconds:.1f} s")

    def inbox(self, address: str) -> list[email.message.EmailMessage]:
        """The replies to what `address` sent (the credit section's desk notices are not replies)."""
        return [m for m in self.mail(address) if m["In-Reply-To"]]

    def mail(self, address: str) -> list[email.message.EmailMessage]:
        d = self.workdir / "mail" / address
        if not d.is_dir():
            return []
        return [email.message_from_bytes(m.as_bytes(), policy=email.policy.default)
                for m in mailbox.Maildir(d, factory=None, create=False)]

    def matrix_row(self, section: str) -> str:
        lines = self.output.split("4. ", 1)[1].splitlines()
        return next(line for line in lines if line.strip().startswith(section + " ") or line.strip() == section)


@pytest.fixture(scope="module")
def maildir_run(tmp_path_factory) -> Run:
    return Run(tmp_path_factory.mktemp("demo") / "work")


# ---------------------------------------------------------------- Maildir mode

def test_the_demo_finishes_quickly_and_cleanly(maildir_run):
    assert maildir_run.code == 0, maildir_run.output
    assert maildir_run.seconds < TIME_LIMIT
    assert "wiped and recreated" in maildir_run.output
    assert "11 message(s) processed" in maildir_run.output


def test_every_human_sender_gets_exactly_one_reply_tagged_as_the_readme_says(maildir_run):
    for sender, tag in EXPECTED.items():
        replies = maildir_run.inbox(sender)
        assert len(replies) == 1, (sender, [str(r["Subject"]) for r in replies])
        subject = str(replies[0]["Subject"])
        assert subject.startswith(tag), (sender, subject)
        assert CREDIT in str(replies[0]["From"])
        assert subject in maildir_run.output            # and the demo shows it
    assert maildir_run.inbox(AUTO_REPLY_SENDER) == []   # an auto-reply is never answered


def test_the_wrong_column_rejection_names_sheet_and_column(maildir_run):
    (reply,) = maildir_run.inbox("shipin.lt@cqscjg.example.cn")
    body = reply.get_body(("plain",)).get_content()
    assert "分级分类监管台账" in body and "监管领域" in body
    assert [p.get_filename() for p in reply.iter_attachments()]       # the blank template
    shown = maildir_run.output.split("07 shipin.lt", 1)[1].split("\n   08 ", 1)[0]
    assert "分级分类监管台账" in shown and "监管领域" in shown


def test_the_matrix_shows_what_each_section_sent_in_the_one_vocabulary(maildir_run):
    # the story is told on 20 November: everything that came is on time, nothing is overdue yet
    assert "2026年11月 各科室报送情况（截至2026年11月20日）" in maildir_run.output
    for section in ACCEPTED_SECTIONS:
        assert "按时报送" in maildir_run.matrix_row(section), section
        assert "逾期报送" not in maildir_run.matrix_row(section), section
    assert "已退回待重报" in maildir_run.matrix_row("食品流通科")          # task 8: the wrong column
    assert "按时报送" not in maildir_run.matrix_row("消费者权益保护科")   # quarantined: nothing counted yet
    assert "未到期" in maildir_run.matrix_row("办公室")
    assert "✓" not in maildir_run.output and "✗" not in maildir_run.output
    assert "XY20261120-00001" in maildir_run.output                   # received (and answered) that day


def test_the_receipts_are_dated_on_the_story_day_and_say_on_time(maildir_run):
    (reply,) = maildir_run.inbox("fagui@cqscjg.example.cn")
    body = reply.get_body(("plain",)).get_content()
    assert "2026年11月20日" in body and "逾期" not in body


def test_the_credit_section_is_mailed_the_waiting_message_with_the_commands(maildir_run):
    [notice] = [m for m in maildir_run.mail("xinyong.staff@cqscjg.example.cn") if not m["In-Reply-To"]]
    assert str(notice["Subject"]).startswith("【待确认】") and "zhoumin_0531@126.com" in str(notice["Subject"])
    assert "确认 消费者权益保护科" in notice.get_body(("plain",)).get_content()


def test_the_credit_section_sees_the_quarantine_and_the_folders(maildir_run):
    out = maildir_run.output
    waiting = out.split("Waiting for a person: ", 1)[1]
    assert waiting.startswith("1") and "zhoumin_0531@126.com" in waiting.split("\n\n", 1)[0]
    assert "INBOX 0   已受理 7   已退回 2   待人工 1   已忽略 1" in out
    credit = maildir_run.workdir / "mail" / CREDIT
    assert sum(1 for _ in (credit / ".&XfJT13QG-" / "cur").iterdir()) == 7       # 已受理


def test_the_written_config_and_the_suggested_commands_work(maildir_run, capsys):
    from mailbot.app.cli import main
    config_file = maildir_run.workdir / "config.yaml"
    config = load_config(config_file)
    assert config.maildir == maildir_run.workdir / "mail" / CREDIT
    assert config.storage == maildir_run.workdir / "storage"
    assert config.smtp.sender == f"信用监管科 <{CREDIT}>"
    assert (maildir_run.workdir / "storage" / "mailbot.sqlite3").is_file()
    assert f"--config {config_file} status --period 2026-11 --now 2026-11-20T18:00" in maildir_run.output
    capsys.readouterr()
    assert main(["--config", str(config_file), "status", "--period", "2026-11", "--now", "2026-11-20T18:00"]) == 0
    assert "已退回待重报" in capsys.readouterr().out
    assert f"--config {config_file} quarantine list" in maildir_run.output
    assert main(["--config", str(config_file), "quarantine", "list"]) == 0
    assert "zhoumin_0531@126.com" in capsys.readouterr().out
    workbook = maildir_run.workdir / "workbooks" / "食品流通科2026年11月信用监测材料.xlsx"
    assert f"check '{workbook}'" in maildir_run.output
    assert main(["check", str(workbook)]) == 1                        # it finds the missing column
    assert "监管领域" in capsys.readouterr().out


def test_running_it_again_starts_afresh(tmp_path):
    first = Run(tmp_path / "work")
    (tmp_path / "work" / "leftover.txt").write_text("x")
    again = Run(tmp_path / "work")
    assert first.code == again.code == 0, again.output
    assert not (tmp_path / "work" / "leftover.txt").exists()
    assert all(len(again.inbox(s)) == 1 for s in EXPECTED)


# ---------------------------------------------------------------- refusals

def test_a_folder_it_did_not_make_is_never_wiped(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    out = io.StringIO()
    assert demo.run_demo(workdir=tmp_path, out=out) == 2
    assert (tmp_path / "precious.txt").read_text() == "keep me"
    assert "not made by `mailbot demo`" in out.getvalue()


def test_without_examples_it_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "PROJECT_ROOT", tmp_path / "installed")
    out = io.StringIO()
    assert demo.run_demo(workdir=tmp_path / "work", out=out) == 2
    assert "examples" in out.getvalue() and "pip install -e" in out.getvalue()
    assert not (tmp_path / "work").exists()


def test_imap_without_dovecot_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setattr(devservers, "dovecot_missing", lambda: "Dovecot is not installed")
    out = io.StringIO()
    assert demo.run_demo(imap=True, workdir=tmp_path / "work", out=out) == 2
    assert "apt-get install dovecot-imapd dovecot-lmtpd" in out.getvalue()


# ---------------------------------------------------------------- IMAP mode

def test_the_same_demo_over_imap(tmp_path):
    missing = devservers.dovecot_missing()
    if missing:
        from conftest import need
        need(missing)
    run = Run(tmp_path / "work", imap=True)
    assert run.code == 0, run.output
    assert run.seconds < TIME_LIMIT
    assert "over IMAP" in run.output and "Dovecot" in run.output
    config = load_config(run.workdir / "config.yaml")
    assert config.imap is not None and config.maildir is None
    for sender, tag in EXPECTED.items():                # the mail was copied out of the Dovecot
        replies = run.inbox(sender)
        assert len(replies) == 1 and str(replies[0]["Subject"]).startswith(tag), sender
        assert str(replies[0]["Subject"]) in run.output
    assert run.inbox(AUTO_REPLY_SENDER) == []
    for section in ACCEPTED_SECTIONS:
        assert "按时报送" in run.matrix_row(section), section
    assert "XY20261120-00001" in run.output                       # Dovecot's received time is the story's too
    assert "INBOX 0   已受理 7   已退回 2   待人工 1   已忽略 1" in run.output


# ---------------------------------------------------------------- the development SMTP server

def test_maildir_smtp_delivers_into_each_recipients_maildir(tmp_path):
    with devservers.MaildirSMTP(tmp_path / "mail") as server:
        with smtplib.SMTP(server.host, server.port, timeout=10) as c:
            c.sendmail("a@example.test", ["b@example.test", "C@Example.test"],
                       b"From: a@example.test\r\nSubject: hi\r\n\r\nbody\r\n")
            with pytest.raises(smtplib.SMTPRecipientsRefused):
                c.sendmail("a@example.test", ["../../etc@example.test"], b"Subject: x\r\n\r\nx\r\n")
        assert len(server.received) == 1
    for rcpt in ("b@example.test", "c@example.test"):
        (raw,) = server.messages(rcpt)
        assert raw.startswith(b"Return-Path: <a@example.test>\nDelivered-To: " + rcpt.encode() + b"\n")
        assert raw.endswith(b"Subject: hi\n\nbody\n")
    assert sorted(p.name for p in (tmp_path / "mail").iterdir()) == ["b@example.test", "c@example.test"]
