"""The commands of issue 4 (deadlines, due, status, remind, summary, score) as scripts drive them,
and the office's edges with a fake clock: a section with no address, a daemon down and back,
the package's catch-up, the scheduler's jobs and their catch-up, the new reminder settings."""
from __future__ import annotations

import dataclasses
import datetime as dt
import email
import email.policy
import json
import logging
import shutil
import sys
import zipfile

import openpyxl
import pytest

from mailbot.app import cli
from mailbot.app import jobs
from mailbot.app.config import BulletinSettings
from mailbot.app.daemon import Daemon
from mailbot.duties.office import Office
from mailbot.duties.package import SCORE_SHEET, STATUS_SHEET, evidence_zip_filename, package_filename
from mailbot.rules import check_rules, load_rules
from mailbot.dates.zone import bureau_zone

BEIJING = bureau_zone()

from conftest import ROOT
from test_month import (ADDR, CREDIT, END, EXAMPLE, EXPECTED, HEADS, Clock, bj, deployment, job_mail,  # noqa: F401
                        message, month_mail, run, workbook)
from test_pipeline import ingest, write_config

pytest_plugins = ["mailservers"]

EXAMPLES = sorted((ROOT / "examples").glob("*.eml"))
RECEIVED = "2026-11-20T10:00:00+08:00"


def cmd(capsys, *argv):
    capsys.readouterr()
    code = cli.main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


@pytest.fixture
def sample(tmp_path, capsys):
    """config.example.yaml's deployment in tmp_path with the sample month (examples/) received on 20 November."""
    cfg = write_config(tmp_path)
    ingest(capsys, cfg, *EXAMPLES, received=RECEIVED)
    return cfg


@pytest.fixture
def no_config(tmp_path, monkeypatch):
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    monkeypatch.delenv("MAILBOT_CONFIG", raising=False)


# ---------------------------------------------------------------- mailbot deadlines

def test_deadlines_json(capsys, no_config):
    code, out, _ = cmd(capsys, "deadlines", "--period", "2026-10", "--json")
    rows = lines(out)
    assert code == 0 and all(list(r) == ["task", "section", "period", "due"] for r in rows)
    rules = load_rules(ROOT / "rules")
    assert len([r for r in rows if r["due"] != "2026-10-31"]) == sum(len(t.sections) for t in rules.tasks)
    assert {"task": 6, "section": "个私服务中心", "period": "2026-10", "due": "2026-10-30"} in rows
    assert {"task": 3, "section": "政策法规科", "period": "2026-10", "due": "2026-10-25"} in rows   # a Sunday: not moved
    assert {"task": 5, "section": "宣传科", "period": "2026-10", "due": "2026-10-31"} in rows       # 每月不少于1篇
    feb = lines(cmd(capsys, "deadlines", "--period", "2026-02", "--json")[1])
    assert {"task": 9, "section": "财务科", "period": "2026-02", "due": "2026-02-28"} in feb           # 30日前, no 30th
    dec = lines(cmd(capsys, "deadlines", "--period", "2026-12", "--json")[1])
    assert {"task": 7, "section": "餐饮科", "period": "2026-12", "due": "2026-12-31"} in dec           # 每年至少2次


def test_deadlines_text_and_bad_period(capsys, no_config):
    code, out, _ = cmd(capsys, "deadlines", "--period", "2026-11")
    assert code == 0 and out.startswith("2026年11月的报送期限（")
    assert any("个私服务中心" in line and "2026年11月30日（星期一）" in line and "每月30日前" in line for line in out.splitlines())
    code, _, err = cmd(capsys, "deadlines", "--period", "2026-13")
    assert code == 2 and "YYYY-MM" in err


# ---------------------------------------------------------------- mailbot due

@pytest.mark.parametrize("task, event, due", [
    (3, "2026-09-28", "2026-10-13"),                        # 7 working days across 国庆 and 中秋 (Oct 10 worked)
    (3, "2026-02-12", "2026-02-28"),                        # across 春节: Feb 14 and 28 are worked Saturdays
    (11, "2026-09-30", "2026-10-08"),                       # 1 working day: after the National Day holiday
    (11, "2026-02-13", "2026-02-14"),
    (5, "2026-10-02T15:00", "2026-10-04T15:00:00+08:00"),   # 48 hours: holidays do not stop the clock
    (5, "2026-10-02", "2026-10-04"),                        # a date only: 2 calendar days
    (7, "2026-09-30T20:30", "2026-10-02T20:30:00+08:00"),
])
def test_due(capsys, no_config, task, event, due):
    code, out, err = cmd(capsys, "due", "--task", task, "--event", event)
    assert code == 0, err
    first, *rest = out.splitlines()
    assert first == due
    assert rest and rest[0].startswith(f"任务{task}（") and "期限为" in rest[-1]


def test_due_explains_in_chinese(capsys, no_config):
    _, out, _ = cmd(capsys, "due", "--task", "3", "--event", "2026-09-28")
    assert out.splitlines()[2] == ("决定日期2026年9月28日（星期一），当日不计，往后数7个工作日（其间8天休息日不计，调休上班日计为工作日），"
                                   "期限为2026年10月13日（星期二）当日结束前。")


def test_due_in_a_provisional_year_says_so(capsys, no_config):
    code, out, err = cmd(capsys, "due", "--task", "3", "--event", "2027-01-25")
    assert code == 0 and out.splitlines()[0] == "2027-02-03"
    assert "预估" in out and "provisional" in out


@pytest.mark.parametrize("args, words", [
    (("--task", "6", "--event", "2026-10-01"), "no deadline that an event sets"),      # monthly only
    (("--task", "10", "--event", "2026-10-01"), "第一时间"),                             # asap: nothing to compute
    (("--task", "12", "--event", "2026-10-01"), "unknown task"),
    (("--task", "3", "--event", "2026-10-32"), "--event must be"),
])
def test_due_refusals_exit_2(capsys, no_config, args, words):
    code, out, err = cmd(capsys, "due", *args)
    assert code == 2 and out == "" and words in err


# ---------------------------------------------------------------- mailbot status

def test_status_json_and_table(capsys, sample, monkeypatch):
    code, out, _ = cmd(capsys, "--config", sample, "status", "--period", "2026-11", "--json", "--now", "2026-11-26T10:00")
    rows = lines(out)
    rules = load_rules(ROOT / "rules")
    assert code == 0 and len(rows) == len(rules.sections) * len(rules.tasks)
    assert all(list(r) == ["section", "task", "period", "state", "submitted_at"] for r in rows)
    at = {(r["section"], r["task"]): r for r in rows}
    assert at[("政策法规科", 3)] == {"section": "政策法规科", "task": 3, "period": "2026-11", "state": "on_time",
                                  "submitted_at": "2026-11-20T10:00:00+08:00"}
    assert at[("食品流通科", 8)]["state"] == "rejected" and at[("食品流通科", 8)]["submitted_at"] is None
    assert at[("办公室", 9)]["state"] == "not_due" and at[("办公室", 1)]["state"] == "not_applicable"
    # as it stood on the 20th at 09:00, before the mail came in
    early = {(r["section"], r["task"]): r["state"] for r in lines(
        cmd(capsys, "--config", sample, "status", "--period", "2026-11", "--json", "--now", "2026-11-20T09:00")[1])}
    assert early[("政策法规科", 3)] == "not_due"

    code, out, _ = cmd(capsys, "--config", sample, "status", "--period", "2026-11", "--now", "2026-11-26T10:00")
    assert code == 0 and "\x1b[" not in out and out.startswith("2026年11月 各科室报送情况（截至2026年11月26日）")
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    out = cmd(capsys, "--config", sample, "status", "--period", "2026-11", "--now", "2026-11-26T10:00")[1]
    assert "\x1b[32m" in out and "\x1b[1;31m" in out


def test_status_needs_a_config_and_a_period(capsys, sample, no_config):
    code, _, err = cmd(capsys, "status", "--period", "2026-11")
    assert code == 2 and "config" in err
    code, _, err = cmd(capsys, "--config", sample, "status", "--period", "11-2026")
    assert code == 2 and "YYYY-MM" in err


# ---------------------------------------------------------------- mailbot remind

def test_remind_dry_run_then_for_real_then_again(capsys, sample):
    code, out, err = cmd(capsys, "--config", sample, "remind", "--now", "2026-11-26T09:00", "--dry-run", "--json")
    rows = lines(out)
    assert code == 0 and all(list(r) == ["kind", "to", "section", "task", "period", "due"] for r in rows)
    assert {(r["kind"], r["section"], r["task"]) for r in rows} == {
        ("reminder", "办公室", 9), ("reminder", "财务科", 9),                     # the 30th: 3 working days before
        ("overdue", "食品流通科", 8),                                               # rejected, not sent again
        *{("overdue", s, n) for s, ns in (("消费者权益保护科", (1, 2, 7)), ("食品生产科", (1, 2, 7, 8))) for n in ns}}
    assert {"kind": "overdue", "to": ["shipin.lt@cqscjg.example.cn"], "section": "食品流通科", "task": 8,
            "period": "2026-11", "due": "2026-11-25"} in rows
    assert "dry run" in err
    store = Office(*_office_args(sample)).store
    assert [o for o in store.outbox(limit=1000) if o.kind in ("reminder", "overdue")] == []

    code, out, err = cmd(capsys, "--config", sample, "remind", "--now", "2026-11-26T09:00", "--json")
    assert code == 0 and lines(out) == rows and "5 letter(s) queued, 0 queued before" in err
    queued = [o for o in store.outbox(limit=1000) if o.kind in ("reminder", "overdue")]
    assert sorted(o.dedupe_key for o in queued) == sorted([
        "reminder:办公室:2026-11-25T09:00", "reminder:财务科:2026-11-25T09:00", "overdue:食品流通科:2026-11-26T09:00",
        "overdue:消费者权益保护科:2026-11-26T09:00", "overdue:食品生产科:2026-11-26T09:00"])
    overdue = next(o for o in queued if o.dedupe_key == "overdue:食品生产科:2026-11-26T09:00")
    assert overdue.recipients == (ADDR["食品生产科"], CREDIT)
    # a rerun (or the daemon at the same moment) queues nothing more
    code, out, err = cmd(capsys, "--config", sample, "remind", "--now", "2026-11-26T11:30", "--json")
    assert code == 0 and out == "" and "0 letter(s) queued, 5 queued before" in err
    code, out, _ = cmd(capsys, "--config", sample, "remind", "--now", "2026-11-26T11:30", "--dry-run")
    assert "食品生产科" in out and "→ shipin.sc@cqscjg.example.cn" in out


def _daemon_of(office, now):
    """What a job reads of the daemon (its clock, config, rules, store, calendar), without one running."""
    intake = type("Intake", (), {"calendar": office.calendar})
    return type("Daemon", (), {"clock": staticmethod(lambda: now), "config": office.config, "rules": office.rules,
                               "store": office.store, "intake": intake})()


def _plain(mail):
    return email.message_from_bytes(mail.raw, policy=email.policy.default).get_body(("plain",)).get_content()


def test_remind_that_cannot_compute_fails_and_the_job_tells_the_credit_section(capsys, sample, monkeypatch):
    import mailbot.dates.workdays as workdays

    def beyond(year):
        raise ValueError(f"no lunar table for {year}")
    monkeypatch.setattr(workdays, "provisional_days_off", beyond)
    code, _, err = cmd(capsys, "--config", sample, "remind", "--now", "2027-01-25T09:00", "--dry-run")
    assert code == 1 and "2027" in err                       # not "0 letters" and exit 0
    # the daemon's job: the credit section gets one notice that day, whatever the reruns
    office = Office(*_office_args(sample))
    daemon = _daemon_of(office, dt.datetime(2027, 1, 25, 9, tzinfo=BEIJING))
    jobs.JOBS["reminders"](daemon)
    jobs.JOBS["reminders"](daemon)
    told = [o for o in office.store.outbox(limit=1000) if (o.dedupe_key or "").startswith("duty-failed:")]
    assert [(o.recipients, o.subject) for o in told] == [
        ((CREDIT,), "【系统提示】报送提醒和逾期通知未能完成（2027年1月25日 09:00）")]


def test_a_failing_job_tells_the_credit_section(sample, monkeypatch, caplog):
    office = Office(*_office_args(sample))
    daemon = _daemon_of(office, dt.datetime(2026, 11, 26, 9, tzinfo=BEIJING))

    def broken(self, now):
        raise OSError("disk full at /srv/mailbot/storage/packages")
    monkeypatch.setattr(Office, "scheduled_packages", broken)
    with caplog.at_level(logging.ERROR):
        jobs.run_job("monthly_package", daemon)
    [told] = [o for o in office.store.outbox(limit=1000) if (o.dedupe_key or "").startswith("duty-failed:")]
    assert told.subject == "【系统提示】月度汇总材料未能完成（2026年11月26日 09:00）"
    assert "OSError: disk full" in _plain(told) and "job monthly_package failed" in caplog.text


def test_the_credit_section_is_told_once_a_year_of_a_missing_holiday_schedule(sample):
    office = Office(*_office_args(sample))
    assert office.calendar_notice(dt.datetime(2026, 10, 31, 9, tzinfo=BEIJING)) is None   # not before November
    first = office.calendar_notice(dt.datetime(2026, 11, 1, 9, tzinfo=BEIJING))
    again = office.calendar_notice(dt.datetime(2026, 11, 9, 9, tzinfo=BEIJING))
    assert first.created and not again.created and first.dedupe_key == again.dedupe_key == "calendar-warning:2027"
    [mail] = [o for o in office.store.outbox(limit=1000) if o.dedupe_key == "calendar-warning:2027"]
    assert "本提醒只发送一次" in _plain(mail) and "2027年1月起" in _plain(mail) and mail.recipients == (CREDIT,)
    # a deployment that starts inside a provisional year is told about that year
    in_year = office.calendar_notice(dt.datetime(2027, 3, 1, 9, tzinfo=BEIJING))
    assert in_year.dedupe_key == "calendar-warning:2027" and not in_year.created


def _office_args(cfg):
    from mailbot.app.config import load_config
    from mailbot.store import Store
    config = load_config(cfg)
    store = Store(config.database, config.storage)
    return config, load_rules(config.rules), store


# ---------------------------------------------------------------- mailbot summary and score

def test_summary_writes_the_package_and_the_zip(capsys, sample, tmp_path):
    out_file = tmp_path / "out" / "11月汇总.xlsx"
    code, out, err = cmd(capsys, "--config", sample, "summary", "--period", "2026-11", "--out", out_file,
                         "--now", "2026-12-01T09:00")
    zipped = out_file.with_name(evidence_zip_filename("2026-11"))
    assert code == 0, err
    assert out.splitlines() == [f"wrote {out_file}", f"wrote {zipped}"]
    wb = openpyxl.load_workbook(out_file)
    assert wb.sheetnames[:3] == ["目录", STATUS_SHEET, "双公示指标"] and "双公示台账" in wb.sheetnames
    rows = {r[0]: r[1:] for r in wb[STATUS_SHEET].iter_rows(min_row=3, max_row=13, values_only=True)}
    assert rows["政策法规科"][2] == "按时报送" and rows["办公室"][8] == "未报送"
    with zipfile.ZipFile(zipped) as z:
        assert any(n.startswith("政策法规科/任务3_双公示台账/") for n in z.namelist())
    code, _, err = cmd(capsys, "--config", sample, "summary", "--period", "2026-11", "--out", tmp_path / "x.csv")
    assert code == 2 and ".xlsx" in err


def test_summary_send_delivers_to_the_credit_section(capsys, tmp_path, dovecot, smtp_relay):
    config, path = deployment(tmp_path, f"sqlite:///{tmp_path / 'm.sqlite3'}", smtp_relay)
    ingest(capsys, path, *EXAMPLES, received=RECEIVED)
    out_file = tmp_path / "pkg.xlsx"
    args = ("--config", path, "summary", "--period", "2026-11", "--out", out_file, "--send", "--now", "2026-12-01T10:00")
    code, out, err = cmd(capsys, *args)
    assert code == 0, err
    assert f"queued to {CREDIT}: 【月度汇总】2026年11月信用状况监测分析报送材料汇总" in out and "outbox: " in out
    mails = [email.message_from_bytes(r, policy=email.policy.default) for r in dovecot.messages(CREDIT)]
    [m] = [x for x in mails if str(x["Message-ID"]).strip().startswith("<mailbot.package.")]
    names = [a.get_filename() for a in m.iter_attachments()]
    assert names == [package_filename("2026-11"), evidence_zip_filename("2026-11")]
    assert list(m.iter_attachments())[0].get_content() == out_file.read_bytes()
    # asked again, sent again: an explicit request is not a scheduled mail
    code, out, _ = cmd(capsys, *args[:-1], "2026-12-01T10:05")
    assert code == 0 and "queued to" in out
    assert len([r for r in dovecot.messages(CREDIT) if b"<mailbot.package." in r]) == 2
    code, out, _ = cmd(capsys, *args[:-1], "2026-12-01T10:05")          # the same request: the same mail
    assert code == 0 and "already queued" in out
    assert len([r for r in dovecot.messages(CREDIT) if b"<mailbot.package." in r]) == 2


def test_score(capsys, sample, tmp_path):
    out_file = tmp_path / "score.xlsx"
    code, out, err = cmd(capsys, "--config", sample, "score", "--year", "2026", "--out", out_file, "--json",
                         "--now", "2026-12-01T09:00")
    assert code == 0, err
    rows = {(r["section"], r["task"]): r for r in lines(out)}
    assert rows[("政策法规科", 3)]["on_time"] == 1 and rows[("政策法规科", 3)]["missing"] == 10     # Jan-Oct
    assert rows[("办公室", 9)]["missing"] == 11 and rows[("食品流通科", 8)]["rejected_first_time"] == 1
    assert rows[("餐饮科", 7)]["required"] == 2 and "not_due" in rows[("餐饮科", 7)]
    assert "wrote" in err and SCORE_SHEET in openpyxl.load_workbook(out_file).sheetnames
    code, _, err = cmd(capsys, "--config", sample, "score", "--year", "26", "--out", out_file)
    assert code == 2


# ---------------------------------------------------------------- a section with no address

def test_a_section_without_an_address_is_in_the_digest(tmp_path, caplog):
    sections = {k: v for k, v in EXAMPLE["sections"].items() if k != "财务科"}
    config, _ = deployment(tmp_path, f"sqlite:///{tmp_path / 'm.sqlite3'}", sections=sections)
    clock = Clock(bj(11, 25))
    daemon = Daemon(config, clock=clock)
    office = Office.of(daemon)
    with caplog.at_level(logging.WARNING, logger="mailbot.duties.office"):
        done = office.remind(bj(11, 25))
    assert [p.section for p in done.unaddressed] == ["财务科"]
    assert "财务科 has no address" in caplog.text and "listed in the credit section's digest" in caplog.text
    assert "财务科" not in {p.section for p in done.queued}
    assert all("财务科" not in o.dedupe_key for o in daemon.store.outbox(limit=1000))
    sent = office.digest(bj(11, 25))
    [digest] = [o for o in daemon.store.outbox(limit=1000) if o.dedupe_key == "digest:2026-11-25"]
    text = email.message_from_bytes(digest.raw, policy=email.policy.default).get_body(("plain",)).get_content()
    assert sent.created and "四、以下科室在配置文件中没有登记邮箱，今日的提醒未能发出，请另行通知：" in text
    assert "  财务科：报送提醒，任务9（2026年11月，11月30日（星期一）截止）" in text
    # on a day outside every deadline's last week the digest goes out for that alone: the overdue notice of 1 December
    clock.now = bj(12, 1)
    assert office.digest_periods(bj(12, 1).date()) == []
    sent = office.digest(bj(12, 1))
    assert sent is not None and sent.dedupe_key == "digest:2026-12-01"
    # the dry run lists it with no address
    rows = [r for p in office.plan(bj(12, 1)) for r in p.rows() if r["section"] == "财务科"]
    assert rows == [{"kind": "overdue", "to": [], "section": "财务科", "task": 9, "period": "2026-11", "due": "2026-11-30"}]


# ---------------------------------------------------------------- down and back, with a fake clock

def test_daemon_down_then_back_sends_the_latest_reminder_once(tmp_path, month_mail):
    config, _ = deployment(tmp_path, f"sqlite:///{tmp_path / 'm.sqlite3'}")
    october, november = month_mail
    clock = Clock(bj(10, 20))
    daemon = Daemon(config, clock=clock)
    run(daemon, clock, october, bj(10, 20, 0), bj(10, 20, 23), with_jobs=False, deliver=False)
    # up until 21 November, down until 12:00 on the 25th, when the missed runs fire once (jobs.register)
    run(daemon, clock, november, bj(11, 1, 0), bj(11, 21, 0), deliver=False)
    run(daemon, clock, [m for m in november if bj(11, 21) <= m[0] < bj(11, 25, 12)], bj(11, 21), bj(11, 25, 11, 59),
        with_jobs=False, deliver=False)                                  # the mail is kept with its receipt time
    clock.now = bj(11, 25, 12)
    for job_id, _, _ in jobs.schedule(daemon.rules):
        jobs.JOBS[job_id](daemon)
    run(daemon, clock, november, bj(11, 25, 12, 1), END, deliver=False)
    got = [(o.kind, o.recipients, o.subject, o.dedupe_key) for o in job_mail(daemon.store)]
    missed = {"digest:2026-11-23", "digest:2026-11-24",
              "reminder:信用监管科:2026-11-24T09:00"}
    expected = [e for e in EXPECTED if e[3] not in missed]
    # on return at 12:00 on the 25th: the 25th's letters (the latest of each), today's digest
    back = [e for e in EXPECTED if e[3] in {"reminder:个私服务中心:2026-11-25T09:00", "reminder:信用监管科:2026-11-25T09:00",
                                            "reminder:办公室:2026-11-25T09:00", "digest:2026-11-25"}]
    expected = [e for e in expected if e not in back]
    at = next(i for i, e in enumerate(expected) if e[3] == "digest:2026-11-20") + 1
    assert got == expected[:at] + back + expected[at:]


def test_package_catch_up_within_the_grace_only(tmp_path, month_mail):
    config, _ = deployment(tmp_path, f"sqlite:///{tmp_path / 'm.sqlite3'}")
    october, _ = month_mail
    clock = Clock(bj(10, 20))
    daemon = Daemon(config, clock=clock)
    run(daemon, clock, october, bj(10, 20, 0), bj(10, 20, 23), with_jobs=False, deliver=False)
    office = Office.of(daemon)
    assert office.package_day("2026-10") == dt.date(2026, 11, 2)          # after Saturday 31 October (信用动态's count)
    assert office.package_day("2026-09") == dt.date(2026, 10, 8)          # after the National Day holiday
    assert office.scheduled_packages(bj(11, 2, 8, 59)) == []
    assert office.scheduled_packages(bj(11, 10, 9)) == []                   # 6 working days late: too late
    [sent] = office.scheduled_packages(bj(11, 9, 9))                        # 5 working days late: made now
    assert sent.created and sent.dedupe_key == "package:2026-10"
    folder = config.storage / "packages" / "2026-10"
    assert sorted(p.name for p in folder.iterdir()) == sorted([package_filename("2026-10"), evidence_zip_filename("2026-10")])
    before = (folder / package_filename("2026-10")).read_bytes()
    [again] = office.scheduled_packages(bj(11, 9, 17))
    assert not again.created and (folder / package_filename("2026-10")).read_bytes() == before


def _rows(store) -> list[tuple]:
    return [(o.kind, o.recipients, o.subject, o.dedupe_key) for o in job_mail(store)]


def test_bulletin_and_escalation_once_each_across_a_restart(tmp_path, month_mail):
    """Up until 08:59 on 1 December, down until 12:00 on the 4th (the bulletin's day and the first
    escalation's time missed), back as a new daemon over the same database: each is queued once
    when it comes back, the next week's escalation at its time; a third daemon running the same
    days again queues nothing."""
    config, _ = deployment(tmp_path, f"sqlite:///{tmp_path / 'm.sqlite3'}")
    october, november = month_mail
    clock = Clock(bj(10, 20))
    daemon = Daemon(config, clock=clock)
    run(daemon, clock, october, bj(10, 20, 0), bj(10, 20, 23), with_jobs=False, deliver=False)
    run(daemon, clock, november, bj(11, 1, 0), bj(12, 1, 8, 59), deliver=False)
    clock = Clock(bj(12, 4, 12))
    back = Daemon(config, clock=clock)                          # the restart: a new daemon, the same store
    for job_id, _, _ in jobs.schedule(back.rules):              # the missed runs, once each (jobs.register)
        jobs.JOBS[job_id](back)
    run(back, clock, [], bj(12, 4, 12, 1), END, deliver=False)
    by_key = {e[3]: e for e in EXPECTED}
    before = EXPECTED[:next(i for i, e in enumerate(EXPECTED) if e[3] == "digest:2026-11-30") + 1]
    # on return: the latest overdue notice (3 December's), the package, the bulletin, the first escalation
    returned = ["overdue:办公室:2026-12-03T09:00", "package:2026-11", "bulletin:2026-11",
                "escalation:办公室:2026-11:2026-12-04", "escalation:办公室:2026-11:2026-12-11"]
    assert _rows(back.store) == before + [by_key[k] for k in returned]
    clock = Clock(bj(12, 4, 12))
    again = Daemon(config, clock=clock)
    for job_id, _, _ in jobs.schedule(again.rules):
        jobs.JOBS[job_id](again)
    run(again, clock, [], bj(12, 4, 12, 1), END, deliver=False)
    assert _rows(again.store) == before + [by_key[k] for k in returned]


def test_escalation_stops_when_the_item_arrives_or_the_month_is_closed(tmp_path, month_mail, rules_dir):
    """办公室 (its head registered) sends task 9 on 15 December; 财务科 (no head registered) sends
    nothing for November, until the credit section closes the month on Monday 21 December."""
    config, _ = deployment(tmp_path, f"sqlite:///{tmp_path / 'm.sqlite3'}")
    october, november = month_mail
    rules = load_rules(rules_dir)
    late = bj(12, 15, 10)
    mail = [m for m in november if ADDR["财务科"].encode() not in m[1]]
    mail.append((late, message("办公室", "2026-11", workbook(rules, "办公室", "2026-11"), late)))
    clock = Clock(bj(10, 20))
    daemon = Daemon(config, clock=clock)
    run(daemon, clock, october + mail, bj(10, 20, 0), bj(12, 31), with_jobs=False, deliver=False)
    office = Office.of(daemon)
    assert office.escalation_start(dt.date(2026, 11, 30)) == dt.date(2026, 12, 4)
    assert office.escalations(bj(12, 3, 9)) == [] and office.escalations(bj(12, 4, 8, 59)) == []
    first = office.escalations(bj(12, 4, 9))
    assert [(s.dedupe_key, s.recipients, s.created) for s in first] == [
        ("escalation:办公室:2026-11:2026-12-04", (HEADS["办公室"], ADDR["办公室"], CREDIT), True),
        ("escalation:财务科:2026-11:2026-12-04", (ADDR["财务科"], CREDIT), True)]
    assert [s.created for s in office.escalations(bj(12, 7, 9))] == [False, False]   # the same week: not again
    texts = {o.dedupe_key: email.message_from_bytes(o.raw, policy=email.policy.default).get_body(("plain",)).get_content()
             for o in daemon.store.outbox(limit=1000) if o.kind == "escalation"}
    text = texts["escalation:财务科:2026-11:2026-12-04"]
    assert text.startswith("财务科：\n") and "财务科负责人的邮箱尚未在系统中登记，本通知发送至科室报送邮箱，请转呈科室负责人。" in text
    assert [s.dedupe_key for s in office.escalations(bj(12, 11, 9))] == [
        "escalation:办公室:2026-11:2026-12-11", "escalation:财务科:2026-11:2026-12-11"]
    # 办公室's answer came on the 15th: only 财务科 is chased on the 18th
    assert [s.dedupe_key for s in office.escalations(bj(12, 18, 9))] == ["escalation:财务科:2026-11:2026-12-18"]
    assert daemon.store.close_period("2026-11", closed_by=CREDIT, now=bj(12, 21, 10))
    # as it stood before the closing (a view as of `now`): the 18th's notice, queued before
    assert [(s.dedupe_key, s.created) for s in office.escalations(bj(12, 21, 9, 30))] == [
        ("escalation:财务科:2026-11:2026-12-18", False)]
    assert office.escalations_due(bj(12, 25, 9)) == [] and office.escalations(bj(12, 28, 9)) == []
    # a section with no address at all: the credit section gets the notice and is asked to tell it
    bare = Office(dataclasses.replace(config, sections={k: v for k, v in config.sections.items() if k != "财务科"}),
                  daemon.rules, daemon.store, office.calendar)
    [due] = [e for e in bare.escalations_due(bj(12, 11, 9)) if e.section == "财务科"]
    mail = bare.escalation_mail(due, bj(12, 11, 9))
    assert mail.recipients == (CREDIT,)
    text = email.message_from_bytes(mail.raw, policy=email.policy.default).get_body(("plain",)).get_content()
    assert text.startswith("信用监管科：\n") and "财务科在系统中没有登记邮箱，本通知未能发送给该科室，请信用监管科另行通知。" in text


def test_the_bulletin_on_request_off_and_later(tmp_path, month_mail):
    config, _ = deployment(tmp_path, f"sqlite:///{tmp_path / 'm.sqlite3'}")
    october, november = month_mail
    clock = Clock(bj(10, 20))
    daemon = Daemon(config, clock=clock)
    run(daemon, clock, october + november, bj(10, 20, 0), bj(12, 31), with_jobs=False, deliver=False)
    office = Office.of(daemon)
    assert office.bulletin_day("2026-11") == office.package_day("2026-11") == dt.date(2026, 12, 1)
    assert office.scheduled_bulletins(bj(12, 1, 8, 59)) == []
    [sent] = office.scheduled_bulletins(bj(12, 1, 9))
    assert sent.created and sent.kind == "bulletin" and sent.dedupe_key == "bulletin:2026-11"
    assert [s.created for s in office.scheduled_bulletins(bj(12, 2, 9))] == [False]
    # the credit section's 通报 command: its own mail under its own key, even though the month's went
    [asked] = office.bulletin("2026-11", bj(12, 2, 15), key="command:XY20261202-00001")
    assert asked.created and asked.dedupe_key == "command:XY20261202-00001" and asked.recipients == sent.recipients
    assert not office.bulletin("2026-11", bj(12, 2, 16), key="command:XY20261202-00001")[0].created
    # September: nothing was collected (no submission, no tracking_since), so no bulletin on 8 October
    assert office.scheduled_bulletins(bj(10, 8, 9)) == []
    # off: nothing scheduled; later: 2 working days after the last deadline
    off = Office(dataclasses.replace(config, bulletin=BulletinSettings(enabled=False)), daemon.rules, daemon.store,
                 office.calendar)
    assert off.scheduled_bulletins(bj(11, 2, 9)) == []
    later = Office(dataclasses.replace(config, bulletin=BulletinSettings(workdays_after_last_deadline=2)), daemon.rules,
                   daemon.store, office.calendar)
    assert later.bulletin_day("2026-10") == dt.date(2026, 11, 3)
    assert later.scheduled_bulletins(bj(11, 2, 9)) == []
    assert [s.dedupe_key for s in later.scheduled_bulletins(bj(11, 3, 9))] == ["bulletin:2026-10"]


# ---------------------------------------------------------------- the scheduler

def test_jobs_registered_in_beijing_time_and_a_missed_run_caught_up(tmp_path, caplog):
    config, _ = deployment(tmp_path, f"sqlite:///{tmp_path / 'm.sqlite3'}")
    now = dt.datetime.now(BEIJING)
    daemon = Daemon(config, clock=lambda: now)
    first = daemon._scheduler()
    first.start(paused=True)
    try:
        assert {j.id for j in first.get_jobs()} == set(jobs.JOBS)
        job = first.get_job("reminders")
        nxt = job.next_run_time.astimezone(BEIJING)
        assert (nxt.hour, nxt.minute) == (9, 0) and now < nxt <= now + dt.timedelta(days=1)
        assert job.misfire_grace_time is None and job.coalesce
    finally:
        first.shutdown(wait=True)
    # as if the daemon had stopped before yesterday's 09:00: the job store keeps that run as the next
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    store = SQLAlchemyJobStore(url=config.database, tablename="apscheduler_jobs")
    store.start(first, "default")
    missed = (nxt - dt.timedelta(days=2)).astimezone(BEIJING)
    stored = store.lookup_job("reminders")
    stored._modify(next_run_time=missed)
    store.update_job(stored)
    store.shutdown()
    with caplog.at_level(logging.INFO, logger="mailbot.app.jobs"):
        second = daemon._scheduler()
    second.start(paused=True)
    try:
        assert second.get_job("reminders").next_run_time == missed            # runs once as soon as it resumes
        assert second.get_job("digest").next_run_time.astimezone(BEIJING) == nxt   # nothing missed: its next time
        assert "job reminders: the run of" in caplog.text and "missed while the daemon was down" in caplog.text
    finally:
        second.remove_all_jobs()          # a paused scheduler would still try the due job while stopping
        second.shutdown(wait=True)


def test_every_firing_is_logged(tmp_path, caplog):
    config, _ = deployment(tmp_path, f"sqlite:///{tmp_path / 'm.sqlite3'}")
    daemon = Daemon(config, clock=lambda: bj(11, 20))
    with caplog.at_level(logging.INFO, logger="mailbot.app.jobs"):
        for job_id in jobs.JOBS:
            jobs.run_job(job_id, daemon=daemon)
    for job_id in jobs.JOBS:
        assert f"job {job_id} fired" in caplog.text
    assert "reminders at 2026-11-20T09:00" in caplog.text and "digest digest:2026-11-20 queued" in caplog.text


# ---------------------------------------------------------------- the reminder settings in rules/

def test_new_reminder_settings_are_read_and_checked(rules_dir, tmp_path):
    rules = load_rules(rules_dir)
    assert rules.reminders["on_due_day"] is True and rules.reminders["overdue_grace_workdays"] == 5
    assert rules.reminders["monthly_due_shift"] == "none" and rules.reminders["escalate_after_workdays"] == 3
    root = tmp_path / "rules"
    shutil.copytree(rules_dir, root)
    settings = root / "settings.yaml"
    text = settings.read_text(encoding="utf-8")
    text = (text.replace("on_due_day: true", "on_due_day: maybe")
                .replace("overdue_grace_workdays: 5", "overdue_grace_workdays: -1")
                .replace("escalate_after_workdays: 3", "escalate_after_workdays: many")
                .replace("monthly_due_shift: none", "monthly_due_shift: later"))
    settings.write_text(text, encoding="utf-8")
    issues = [(i.file.rsplit("/", 1)[-1], i.line, i.message) for i in check_rules(root)]
    lines_of = {k: n + 1 for n, line in enumerate(text.splitlines())
                for k in ("on_due_day", "overdue_grace", "monthly_due", "escalate_after") if line.strip().startswith(k)}
    assert ("settings.yaml", lines_of["on_due_day"], "reminders: on_due_day must be true or false, found 'maybe'") in issues
    assert any(f == "settings.yaml" and n == lines_of["overdue_grace"] and "0..60" in m for f, n, m in issues)
    assert any(f == "settings.yaml" and n == lines_of["escalate_after"] and "escalate_after_workdays" in m
               for f, n, m in issues)
    assert any(f == "settings.yaml" and n == lines_of["monthly_due"] and "previous_workday" in m for f, n, m in issues)


def test_settings_change_what_is_sent(tmp_path):
    """on_due_day: false drops the morning reminder; monthly_due_shift moves a Sunday deadline."""
    rules_copy = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules_copy)
    settings = rules_copy / "settings.yaml"
    settings.write_text(settings.read_text(encoding="utf-8").replace("on_due_day: true", "on_due_day: false")
                        .replace("monthly_due_shift: none", "monthly_due_shift: next_workday"), encoding="utf-8")
    config, _ = deployment(tmp_path, f"sqlite:///{tmp_path / 'm.sqlite3'}", rules=str(rules_copy))
    office = Office.of(Daemon(config, clock=lambda: bj(10, 1)))
    # Sunday 25 October 2026 moves to Monday the 26th; no morning reminder on the day itself
    due = {d.task: d.due for d in office.deadlines("2026-10") if d.section == "政策法规科" and d.kind == "monthly"}
    assert due[3] == dt.date(2026, 10, 26)
    labels = {r.label for p in office.plan(bj(10, 26, 9)) if p.section == "政策法规科" for r in p.letter.items}
    assert labels == {"1wd", "count-10"}          # October checks the per-year counts (count_check_months)



# ---------------------------------------------------------------- across the National Day holiday

def test_national_day_nothing_goes_out_on_a_day_off(tmp_path):
    """No submissions at all, September into October 2026: every run of every job from 24 September
    to 9 October. 中秋 (Friday 25 September) and 国庆 (1-7 October) are days off. Nothing is queued on
    a day off: the 25 September deadline's morning reminder goes out on the 24th, the 30 September
    deadline's overdue notices, October's check of the yearly counts and September's package wait
    for Thursday 8 October."""
    config, _ = deployment(tmp_path, f"sqlite:///{tmp_path / 'm.sqlite3'}")
    clock = Clock(bj(9, 24, 0))
    daemon = Daemon(config, clock=clock)
    run(daemon, clock, [], bj(9, 24, 0), bj(10, 9, 23, 59), deliver=False)
    by_day: dict[dt.date, list[str]] = {}
    for o in job_mail(daemon.store):
        by_day.setdefault(o.created_at.astimezone(BEIJING).date(), []).append(o.dedupe_key)
    assert sorted(by_day) == [dt.date(2026, 9, 24), dt.date(2026, 9, 28), dt.date(2026, 9, 29), dt.date(2026, 9, 30),
                              dt.date(2026, 10, 8)]
    rules = daemon.rules
    everyone = [s.id for s in rules.sections]
    thirtieth = {s for n in (6, 9) for s in rules.task(n).sections}
    yearly = {s for n in (2, 7) for s in rules.task(n).sections}           # 理论学习, 诚信宣传: at least N a year
    assert sorted(by_day[dt.date(2026, 9, 24)]) == sorted(
        [f"reminder:{s}:2026-09-24T09:00" for s in everyone] + ["digest:2026-09-24"])
    assert sorted(by_day[dt.date(2026, 10, 8)]) == sorted(
        [f"overdue:{s}:2026-10-08T09:00" for s in thirtieth] + [f"reminder:{s}:2026-10-08T09:00" for s in yearly]
        + ["package:2026-09"])
    count = next(o for o in job_mail(daemon.store) if o.dedupe_key == "reminder:餐饮科:2026-10-08T09:00")
    text = email.message_from_bytes(count.raw, policy=email.policy.default).get_body(("plain",)).get_content()
    assert "实施方案要求每年至少2次，2026年已报送0次" in text
