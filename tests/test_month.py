"""A simulated month, November 2026, with a fake clock and the real mail servers.

The daemon's own job functions (mailbot/jobs.py, at the times jobs.schedule gives, computed by
APScheduler's cron triggers) run with a fake clock stepping through the month; the sections'
mail goes through the daemon's intake (Daemon.handle) at chosen moments; everything queued is
delivered by the daemon's sender through an aiosmtpd relay into a real Dovecot and read back
from the recipients' mailboxes.

October is in for every section (sent on 20 October). In November:

- 政策法规科, 知识产权科, 宣传科, 消费者权益保护科, 食品生产科, 餐饮科, 财务科: everything on 18 November;
- 食品流通科: on the 19th with a wrong column in 分级分类监管台账 (task 8 rejected), again
  correctly on the 23rd (on time, after one reminder);
- 个私服务中心: tasks 1, 2 on the 18th, task 6 (due the 30th) on the 27th after two reminders;
- 信用监管科 (the credit section itself): everything on the 26th, a day late for the 25th;
- 办公室: nothing (reminders on the 25th, 27th and 30th, overdue notices on 1 and 3 December, then
  escalation to its head, HEADS, on 4 and 11 December: 3 working days have passed, then weekly).

The 调度通报 of October goes to every section on 2 November, November's on 1 December (the
working day after each month's last deadline, with the package).

Deadlines: the 25th (Wednesday) and the 30th (Monday); reminders 3 and 1 working days before and
on the morning of the deadline, overdue notices 1 and 3 working days after, at 09:00 (rules/
settings.yaml). Then the same month is run again, by a restarted daemon: nothing more is queued
or sent.
"""
from __future__ import annotations

import datetime as dt
import email
import email.policy
import functools
import hashlib
import importlib.util
import io
import sys
import zipfile
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

import openpyxl
import pytest
import yaml

from mailbot.app import jobs
from mailbot.app.config import config_from_mapping
from mailbot.app.daemon import Daemon
from mailbot.transport.mailbox import Fetched
from mailbot.duties.package import STATUS_SHEET, evidence_zip_filename, package_filename
from mailbot.rules import load_rules
from mailbot.duties.templates import template_filename
from mailbot.dates.zone import bureau_zone

BEIJING = bureau_zone()

from conftest import ROOT

pytest_plugins = ["mailservers"]

_spec = importlib.util.spec_from_file_location("make_cases", ROOT / "tests" / "data" / "cases" / "make_cases.py")
mc = sys.modules.get("make_cases") or importlib.util.module_from_spec(_spec)
if "make_cases" not in sys.modules:
    sys.modules["make_cases"] = mc
    _spec.loader.exec_module(mc)

BOT = "xyjgk@cqscjg.example.cn"
EXAMPLE = yaml.safe_load((ROOT / "config.example.yaml").read_text(encoding="utf-8"))
ADDR = {section: addrs[0] for section, addrs in EXAMPLE["sections"].items()}
CREDIT = ADDR["信用监管科"]
JOB_KINDS = ("reminder", "overdue", "digest", "package", "bulletin", "escalation")
HEADS = {"办公室": "bgs.head@cqscjg.example.cn"}      # only 办公室's head is registered


def bj(month, day, hour=9, minute=0, year=2026):
    return dt.datetime(year, month, day, hour, minute, tzinfo=BEIJING)


# ---------------------------------------------------------------- the sections' mail

ROWS = {
    "理论学习台账": lambda: mc.rows_lilun(6),
    "双公示台账": mc.rows_shuanggongshi,
    "信用信息归集台账": mc.rows_guiji,
    "信用动态台账": mc.rows_dongtai,
    "信易贷台账": mc.rows_xinyidai,
    "分级分类监管台账": lambda: mc.rows_fenji("食品销售"),
    "联合奖惩台账": mc.rows_jiangcheng,
}


def workbook(rules, section: str, period: str, tasks=None, rename=None) -> bytes:
    """The section's Annex 1 template filled in (tasks: only these sheets kept)."""
    keep = {n for t in rules.tasks_of(section) if tasks is None or t.number in tasks for n in t.sheets}
    every = {n for t in rules.tasks_of(section) for n in t.sheets}
    sheets = {name: ROWS[name]() for name in keep if name in ROWS}
    return mc.fill_template(section, sheets, period=period, drop=tuple(sorted(every - keep)), rename=rename,
                            contact=("张三", "0531-87221300"))


def message(section: str, period: str, data: bytes, when: dt.datetime) -> bytes:
    year, month = period.split("-")
    m = EmailMessage()
    m["From"] = f"{section} <{ADDR[section]}>"
    m["To"] = BOT
    m["Subject"] = f"{section}{year}年{int(month)}月信用监测报送材料"
    m["Date"] = format_datetime(when)
    m["Message-ID"] = make_msgid(domain="cqscjg.example.cn")
    m.set_content(f"信用监管科：\n\n    {section}{int(month)}月份材料见附件，请查收。\n", charset="utf-8")
    m.add_attachment(data, maintype="application", subtype="vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                     filename=f"{section}{year}年{int(month)}月信用监测材料.xlsx")
    return m.as_bytes()


ON_TIME = ("政策法规科", "知识产权科", "宣传科", "消费者权益保护科", "食品生产科", "餐饮科", "财务科")


@pytest.fixture(scope="session")
def month_mail(rules_dir):
    """(October's mail, November's mail): lists of (receipt time, raw bytes), built once."""
    return _month_mail(str(rules_dir))


@functools.lru_cache(maxsize=1)
def _month_mail(rules_dir: str):
    rules = load_rules(rules_dir)
    october = [(bj(10, 20, 10, i), message(s.id, "2026-10", workbook(rules, s.id, "2026-10"), bj(10, 20, 10, i)))
               for i, s in enumerate(rules.sections)]
    nov = "2026-11"
    nov_mail = [(bj(11, 18, 10, i), workbook(rules, s, nov), s) for i, s in enumerate(ON_TIME)]
    nov_mail += [
        (bj(11, 18, 15), workbook(rules, "个私服务中心", nov, tasks={1, 2}), "个私服务中心"),
        (bj(11, 19, 16), workbook(rules, "食品流通科", nov, rename={"分级分类监管台账": {"监管领域": "监管对象"}}),
         "食品流通科"),
        (bj(11, 23, 10), workbook(rules, "食品流通科", nov), "食品流通科"),
        (bj(11, 26, 15), workbook(rules, "信用监管科", nov), "信用监管科"),
        (bj(11, 27, 15), workbook(rules, "个私服务中心", nov, tasks={6}), "个私服务中心"),
    ]
    november = [(when, message(section, nov, data, when)) for when, data, section in nov_mail]
    return october, november


# ---------------------------------------------------------------- the deployment and the clock

class Clock:
    def __init__(self, now: dt.datetime):
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def deployment(tmp_path: Path, database: str, relay=None, **changes):
    """A Config like config.example.yaml's (with HEADS as its section_heads), in tmp_path, sending through `relay`."""
    data = {**EXAMPLE, "section_heads": HEADS, "storage": str(tmp_path / "storage"), "database": database, "rules": str(ROOT / "rules"), **changes}
    if relay is not None:
        data["smtp"] = {"host": relay.host, "port": relay.port, "security": "plain"}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return config_from_mapping(data, str(path), tmp_path), path


def job_times(rules, start: dt.datetime, end: dt.datetime) -> list[tuple[dt.datetime, int, str]]:
    """Every firing of every job between start and end, by the daemon's own cron triggers."""
    out = []
    for order, (job_id, _name, fields) in enumerate(jobs.schedule(rules)):
        trigger = jobs.trigger(fields)
        t = trigger.get_next_fire_time(None, start)
        while t is not None and t <= end:
            out.append((t.astimezone(BEIJING), order, job_id))
            t = trigger.get_next_fire_time(t, t + dt.timedelta(seconds=1))
    return out


def run(daemon: Daemon, clock: Clock, mail, start: dt.datetime, end: dt.datetime, *, deliver: bool = True,
        with_jobs: bool = True) -> None:
    """The daemon's month: each message handled at its time, each job at its times, the outbox sent."""
    timeline = [(when, -1, raw) for when, raw in mail if start <= when <= end]
    if with_jobs:
        timeline += job_times(daemon.rules, start, end)
    for when, order, what in sorted(timeline, key=lambda x: (x[0], x[1])):
        clock.now = when
        if order < 0:
            sha = hashlib.sha256(what).hexdigest()
            daemon.handle(Fetched(key=sha[:16], raw=what, received_at=when, source=f"sim:{sha[:16]}"))
        else:
            jobs.JOBS[what](daemon)
        if deliver:
            daemon.deliver_outbox()


def job_mail(store) -> list:
    return sorted((o for o in store.outbox(limit=10_000) if o.kind in JOB_KINDS), key=lambda o: o.id)


# ---------------------------------------------------------------- what must come out

def K(kind, section, when):
    return f"{kind}:{section}:{when:%Y-%m-%dT%H:%M}"


# told once a year (1 November, 09:00), not every week
WARN = ("digest", (CREDIT,), "【提醒】请录入2027年法定节假日安排", "calendar-warning:2027")


def _digest(day):
    return ("digest", (CREDIT,), f"【报送日报】2026年11月信用监测材料报送情况（截至11月{day}日）", f"digest:2026-11-{day:02d}")


def _reminder(section, n, due_day, when):
    return ("reminder", (ADDR[section],),
            f"【报送提醒】{section}2026年11月信用监测材料尚有{n}项未报送（11月{due_day}日截止）", K("reminder", section, when))


# every section's addresses in To (rules order), the credit section's in Cc
EVERYONE = tuple(a for s, addrs in EXAMPLE["sections"].items() if s != "信用监管科" for a in addrs) + (CREDIT,)


def _bulletin(month):
    return ("bulletin", EVERYONE, f"【调度通报】2026年{month}月各科室信用监测材料报送情况", f"bulletin:2026-{month:02d}")


def _escalation(day, suffix=""):
    return ("escalation", (HEADS["办公室"], ADDR["办公室"], CREDIT), f"【逾期督办】办公室2026年11月信用监测材料逾期未报（1项）{suffix}",
            f"escalation:办公室:2026-11:2026-12-{day:02d}")


EXPECTED = [
    ("digest", (CREDIT,), "【全部报送】2026年10月各科室信用监测材料已全部报送", "complete:2026-10"),    # 1 Nov 08:00
    WARN,                                                                                                   # 1 Nov 09:00
    ("package", (CREDIT,), "【月度汇总】2026年10月信用状况监测分析报送材料汇总", "package:2026-10"),   # 2 Nov 09:00
    _bulletin(10),
    _digest(19),
    _reminder("信用监管科", 5, 25, bj(11, 20)),
    _reminder("食品流通科", 1, 25, bj(11, 20)),
    _digest(20),
    _digest(23),
    _reminder("信用监管科", 5, 25, bj(11, 24)),
    _digest(24),
    _reminder("个私服务中心", 1, 30, bj(11, 25)),
    _reminder("信用监管科", 6, 25, bj(11, 25)),
    _reminder("办公室", 1, 30, bj(11, 25)),
    _digest(25),
    ("overdue", (CREDIT,), "【逾期未报】信用监管科2026年11月信用监测材料已超过报送时限（5项）", K("overdue", "信用监管科", bj(11, 26))),
    _digest(26),
    _reminder("个私服务中心", 1, 30, bj(11, 27)),
    _reminder("办公室", 1, 30, bj(11, 27)),
    _digest(27),
    ("reminder", (ADDR["办公室"],), "【今日截止】办公室2026年11月信用监测材料尚有1项未报送", K("reminder", "办公室", bj(11, 30))),
    _digest(30),
    ("overdue", (ADDR["办公室"], CREDIT), "【逾期未报】办公室2026年11月信用监测材料已超过报送时限（1项）",
     K("overdue", "办公室", bj(12, 1))),
    ("package", (CREDIT,), "【月度汇总】2026年11月信用状况监测分析报送材料汇总", "package:2026-11"),
    _bulletin(11),
    ("overdue", (ADDR["办公室"], CREDIT), "【逾期未报】办公室2026年11月信用监测材料已超过报送时限（1项）",
     K("overdue", "办公室", bj(12, 3))),
    _escalation(4),                                                                # 3 working days have passed
    _escalation(11, "（第2次）"),                                                   # a week on
]

START, END = bj(11, 1, 0), bj(12, 11, 23, 59)


def _parsed(raw: bytes):
    return email.message_from_bytes(raw, policy=email.policy.default)


def _text(m) -> str:
    return m.get_body(("plain",)).get_content()


def _inbox(dovecot, address: str) -> dict[str, object]:
    """Message-ID -> message, of every mail in the address's INBOX (each Message-ID once)."""
    out: dict[str, object] = {}
    for raw in dovecot.messages(address):
        m = _parsed(raw)
        mid = str(m["Message-ID"]).strip().strip("<>")
        assert mid not in out, f"{mid} delivered twice to {address}"
        out[mid] = m
    return out


# ---------------------------------------------------------------- the month

def test_a_simulated_month_sends_exactly_the_expected_mail_once(tmp_path, database_url, dovecot, smtp_relay, month_mail,
                                                               rules_dir):
    """On SQLite and on PostgreSQL (database_url)."""
    config, _ = deployment(tmp_path, database_url, smtp_relay)
    october, november = month_mail
    clock = Clock(bj(10, 20, 9))
    daemon = Daemon(config, clock=clock)
    run(daemon, clock, october, bj(10, 20, 0), bj(10, 20, 23), with_jobs=False)   # October's mail, before the month
    assert job_mail(daemon.store) == []
    receipts = len(daemon.store.outbox(limit=10_000))

    run(daemon, clock, november, START, END)
    got = job_mail(daemon.store)
    assert [(o.kind, o.recipients, o.subject, o.dedupe_key) for o in got] == EXPECTED
    assert {o.status for o in daemon.store.outbox(limit=10_000)} == {"sent"}

    # every mail is in each recipient's mailbox exactly once, as queued
    boxes = {a: _inbox(dovecot, a) for a in {r for o in got for r in o.recipients}}
    for o in got:
        for r in o.recipients:
            assert o.mail_message_id in boxes[r], (o.dedupe_key, r)
    outbox = daemon.store.outbox(limit=10_000)
    relayed = [str(_parsed(r.raw)["Message-ID"]).strip("<>") for r in smtp_relay.received]
    assert sorted(relayed) == sorted(o.mail_message_id for o in outbox)       # each mail sent once
    assert len(outbox) == receipts + len(november) + len(EXPECTED)            # and one receipt per message

    _check_letters(boxes, got, rules_dir)
    _check_package(config, boxes, got)
    _check_bulletin_and_escalation(boxes, got, rules_dir)

    # the same month again, by a restarted daemon: nothing more is queued, nothing more is sent
    rows, sent = len(daemon.store.outbox(limit=10_000)), len(smtp_relay.received)
    clock2 = Clock(START)
    again = Daemon(config, clock=clock2)
    run(again, clock2, november, START, END)
    assert len(again.store.outbox(limit=10_000)) == rows
    assert len(smtp_relay.received) == sent
    assert [(o.kind, o.recipients, o.subject, o.dedupe_key) for o in job_mail(again.store)] == EXPECTED


def _check_letters(boxes, got, rules_dir) -> None:
    rules = load_rules(rules_dir)
    by_key = {o.dedupe_key: o for o in got}

    # 办公室: three reminders, two overdue notices, each with its template for November
    office = [m for mid, m in boxes[ADDR["办公室"]].items() if mid.startswith(("mailbot.reminder.", "mailbot.overdue."))]
    assert [str(m["Subject"])[:6] for m in office] == ["【报送提醒】", "【报送提醒】", "【今日截止】", "【逾期未报】", "【逾期未报】"]
    for m in office:
        assert m["Auto-Submitted"] == "auto-generated" and m["From"].addresses[0].addr_spec == BOT
        [att] = list(m.iter_attachments())
        assert att.get_filename() == template_filename(rules, "办公室", "2026-11")
        wb = openpyxl.load_workbook(io.BytesIO(att.get_content()))
        assert "联合奖惩台账" in wb.sheetnames
        text = _text(m)
        assert text.startswith("办公室：\n") and f"任务9（{rules.task(9).title}）" in text
        assert "报送时限：2026年11月30日（星期一）前（实施方案：每月30日前）" in text
    overdue = office[3]
    assert overdue["To"].addresses[0].addr_spec == ADDR["办公室"] and overdue["Cc"].addresses[0].addr_spec == CREDIT
    assert "已逾期1个工作日" in _text(overdue) and "本通知同时抄送信用监管科。" in _text(overdue)
    assert "已逾期3个工作日" in _text(office[4])
    assert "截至2026年11月30日（星期一）09:00，尚未收到贵科室以下1项材料" in _text(office[2])
    # the credit section has the copies
    for key in (K("overdue", "办公室", bj(12, 1)), K("overdue", "办公室", bj(12, 3))):
        assert by_key[key].mail_message_id in boxes[CREDIT]

    # 信用监管科's reminder on the 25th: the five items due that day and task 9 (the 30th) in one letter
    m = boxes[CREDIT][by_key[K("reminder", "信用监管科", bj(11, 25))].mail_message_id]
    text = _text(m)
    for n in (1, 2, 4, 8, 9, 11):
        assert f"任务{n}（{rules.task(n).title}）" in text
    assert "报送时限：2026年11月30日（星期一）前" in text and text.count("报送时限：2026年11月25日（星期三）前") == 5

    # 食品流通科 was reminded of task 8 only; its first answer was rejected
    m = boxes[ADDR["食品流通科"]][by_key[K("reminder", "食品流通科", bj(11, 20))].mail_message_id]
    assert f"任务8（{rules.task(8).title}）" in _text(m) and "任务1（" not in _text(m)

    # the digests
    d20 = _text(boxes[CREDIT][by_key["digest:2026-11-20"].mail_message_id])
    assert "截至2026年11月20日（星期五）09:00" in d20
    assert "  信用监管科：任务1、任务2、任务4、任务8、任务11（11月25日（星期三）截止）；任务9（11月30日（星期一）截止）" in d20
    assert "  办公室：任务9（11月30日（星期一）截止）" in d20
    assert "二、被退回、尚未重新报送（1项）" in d20 and f"  食品流通科 任务8（{rules.task(8).title}）：回执XY20261119-" in d20
    assert "  政策法规科：任务1、任务2、任务3、任务11（全部报送）" in d20
    d23 = _text(boxes[CREDIT][by_key["digest:2026-11-23"].mail_message_id])
    assert "二、被退回、尚未重新报送（1项）" in d23                  # 09:00; it was sent again at 10:00
    d24 = _text(boxes[CREDIT][by_key["digest:2026-11-24"].mail_message_id])
    assert "二、被退回、尚未重新报送（0项）" in d24 and "  食品流通科：任务1、任务2、任务7、任务8（全部报送）" in d24
    d26 = _text(boxes[CREDIT][by_key["digest:2026-11-26"].mail_message_id])
    assert ("  信用监管科：任务1、任务2、任务4、任务8、任务11（11月25日（星期三）截止）；任务9（11月30日（星期一）截止）；"
            "已逾期：任务1、任务2、任务4、任务8、任务11") in d26
    assert "应报37项，已报送29项（按时29项，逾期0项），尚未报送8项（其中已逾期5项）。" in d26
    d30 = _text(boxes[CREDIT][by_key["digest:2026-11-30"].mail_message_id])
    assert "其中逾期报送：任务1、任务2、任务4、任务8、任务11" in d30 and "  办公室：任务9（11月30日（星期一）截止）" in d30
    done = _text(boxes[CREDIT][by_key["complete:2026-10"].mail_message_id])
    assert "11个科室承担的" in done and "按时" in done


def _check_package(config, boxes, got) -> None:
    by_key = {o.dedupe_key: o for o in got}
    m = boxes[CREDIT][by_key["package:2026-11"].mail_message_id]
    atts = {a.get_filename(): a.get_content() for a in m.iter_attachments()}
    assert set(atts) == {package_filename("2026-11"), evidence_zip_filename("2026-11")}
    folder = config.storage / "packages" / "2026-11"
    assert (folder / package_filename("2026-11")).read_bytes() == atts[package_filename("2026-11")]
    assert (folder / evidence_zip_filename("2026-11")).read_bytes() == atts[evidence_zip_filename("2026-11")]
    ws = openpyxl.load_workbook(io.BytesIO(atts[package_filename("2026-11")]))[STATUS_SHEET]
    rows = {r[0]: r[1:] for r in ws.iter_rows(min_row=3, max_row=13, values_only=True)}
    assert rows["办公室"][8] == "未报送" and rows["信用监管科"][0] == "逾期报送" and rows["信用监管科"][8] == "按时报送"
    assert rows["个私服务中心"][5] == "按时报送" and rows["食品流通科"][7] == "按时报送" and rows["政策法规科"][2] == "按时报送"
    with zipfile.ZipFile(io.BytesIO(atts[evidence_zip_filename("2026-11")])) as z:
        names = z.namelist()
    assert any(n.startswith("信用监管科/任务9_联合奖惩台账/") for n in names)
    assert not any(n.startswith("办公室/") for n in names)
    text = _text(m)
    assert "未报送：办公室 任务9。" in text and "请审核后报送区发改局" in text


def _check_bulletin_and_escalation(boxes, got, rules_dir) -> None:
    rules = load_rules(rules_dir)
    by_key = {o.dedupe_key: o for o in got}
    mid = by_key["bulletin:2026-11"].mail_message_id
    for address in EVERYONE:                                       # every section has it, once (_inbox)
        assert mid in boxes[address]
    m = boxes[CREDIT][mid]
    assert [a.addr_spec for a in m["Cc"].addresses] == [CREDIT] and CREDIT not in str(m["To"])
    text = _text(m)
    assert text.startswith("各科室：\n") and "（截至2026年12月1日（星期二）09:00）" in text
    assert "11个科室2026年11月应报送37项材料，其中按时报送31项，逾期报送5项，未报送1项。" in text
    assert "按时报送率为83.8%（按时报送31项／已到报送时限37项）。" in text
    assert "  信用监管科：按时报送：任务9；逾期报送：任务1、任务2、任务4、任务8、任务11" in text
    assert "  办公室：未报送：任务9" in text
    assert f"三、尚未报送的材料（1个科室，1项）\n  办公室：任务9（{rules.task(9).title}），报送时限2026年11月30日（星期一），未报送" in text
    october = _text(boxes[ADDR["办公室"]][by_key["bulletin:2026-10"].mail_message_id])
    assert "按时报送率为100.0%" in october and "三、尚未报送的材料（0个科室，0项）\n  无。" in october

    first, second = (boxes[HEADS["办公室"]][by_key[f"escalation:办公室:2026-11:2026-12-{d:02d}"].mail_message_id] for d in (4, 11))
    assert [a.addr_spec for a in first["To"].addresses] == [HEADS["办公室"], ADDR["办公室"]]
    assert [a.addr_spec for a in first["Cc"].addresses] == [CREDIT]
    text = _text(first)
    assert text.startswith("办公室负责人、办公室：\n") and "截至2026年12月4日（星期五）09:00仍未收到办公室报送" in text
    assert f"  1. 任务9（{rules.task(9).title}）\n     报送时限2026年11月30日（星期一），已逾期4个工作日；当前状态：未报送" in text
    assert "第2次" not in text and "负责人的邮箱尚未" not in text
    assert "这是第2次督办通知。" in _text(second) and "已逾期9个工作日" in _text(second)
