"""The status matrix of a simulated month, its terminal table and the year's score; `today` is an argument."""
from __future__ import annotations

import datetime as dt
import itertools
import re
import unicodedata

import pytest

from mailbot.rules import load_rules
from mailbot.duties.status import Cell, ScoreRow, render_table, status_matrix, year_score, yearly_counts
from mailbot.store import StoredSubmission
from mailbot.dates.workdays import WorkCalendar
from mailbot.dates.zone import bureau_zone

BEIJING = bureau_zone()

UTC = dt.UTC
_ids = itertools.count(1)


@pytest.fixture(scope="module")
def rules(rules_dir):
    return load_rules(rules_dir)


@pytest.fixture(scope="module")
def cal(rules):
    return WorkCalendar(rules.calendar)


def bj(y, m, d, h=10, mi=0):
    return dt.datetime(y, m, d, h, mi, tzinfo=BEIJING)


def sub(section, task, period, received, *, status="accepted", superseded_by=None, rows=1,
        sheets=("台账",), message_ref=None, filename="材料.xlsx", id=None):
    n = next(_ids) if id is None else id
    return StoredSubmission(
        id=n, message_ref=message_ref or n, attachment_ref=n, receipt_no=f"XY{received:%Y%m%d}-{n:05d}",
        filename=filename, sha256="0" * 64, section=section, task=task, period=period, status=status,
        errors=(), warnings=(), evidence=(), rows=rows, sheets=sheets, data={},
        received_at=received.astimezone(UTC), due=None, on_time=None, superseded_by=superseded_by,
        duplicate_of=None)


def _at(cells, section, task):
    found = [c for c in cells if c.section == section and c.task == task]
    assert len(found) == 1
    return found[0]


OCT = "2026-10"


def month(rules):
    """October 2026: the 25th is a Sunday (not moved), the 30th a Friday."""
    correction = sub("知识产权科", 9, OCT, bj(2026, 10, 31))
    first_ok = sub("知识产权科", 9, OCT, bj(2026, 10, 20), superseded_by=correction.id)
    return [
        sub("政策法规科", 3, OCT, bj(2026, 10, 20)),                                  # on time
        sub("政策法规科", 11, OCT, bj(2026, 10, 26, 8)),                              # late (Monday after)
        sub("政策法规科", 1, OCT, bj(2026, 10, 23), status="rejected"),               # rejected only: waits for the fix
        sub("知识产权科", 4, OCT, dt.datetime(2026, 10, 25, 15, 30, tzinfo=UTC)),     # 23:30 Beijing on the 25th
        sub("信用监管科", 4, OCT, dt.datetime(2026, 10, 25, 16, 30, tzinfo=UTC)),     # 00:30 Beijing on the 26th
        first_ok,                                                                       # on time, then corrected late
        correction,
        sub("信用监管科", 8, OCT, bj(2026, 10, 22), status="rejected"),               # rejected, resent late
        sub("信用监管科", 8, OCT, bj(2026, 10, 27)),
        sub("宣传科", 5, OCT, bj(2026, 10, 12), rows=0),                              # ledger with no 信用动态
        sub("宣传科", 7, OCT, bj(2026, 10, 12), rows=2),
        sub("政策法规科", 3, "2026-09", bj(2026, 9, 10)),                             # another month: ignored
    ]


def test_states_of_a_simulated_month(rules, cal):
    subs = month(rules)        # all of them, as store.submissions(current_only=False) gives
    cells = status_matrix(rules, OCT, subs, dt.date(2026, 10, 27), cal)
    assert len(cells) == len(rules.sections) * len(rules.tasks)
    assert {c.state for c in cells} == {"on_time", "late", "rejected", "missing", "not_due", "not_applicable"}
    st = lambda s, t: _at(cells, s, t).state   # noqa: E731
    assert st("政策法规科", 3) == "on_time"
    assert st("政策法规科", 11) == "late"
    assert st("政策法规科", 1) == "rejected"         # sent, rejected, waiting for the fix: its own state
    assert st("政策法规科", 2) == "missing"
    assert st("政策法规科", 4) == "not_applicable"
    assert st("知识产权科", 4) == "on_time"          # by the Beijing date
    assert st("信用监管科", 4) == "late"
    assert st("知识产权科", 9) == "on_time"          # sent on the 20th; its correction comes on the 31st
    assert st("信用监管科", 8) == "late"
    assert st("个私服务中心", 6) == "not_due"        # due the 30th
    assert st("办公室", 9) == "not_due"
    assert st("宣传科", 7) == "on_time"
    assert st("宣传科", 5) == "on_time"              # sent; the month's count is checked at its end
    assert st("宣传科", 1) == "not_applicable"       # 宣传科 is a 综合科室
    c = _at(cells, "知识产权科", 9)
    assert c.submitted_at == bj(2026, 10, 20) and c.submitted_at.utcoffset() == dt.timedelta(hours=8)
    assert c.receipt_no.startswith("XY20261020-")
    assert _at(cells, "政策法规科", 11).as_dict() == {
        "section": "政策法规科", "task": 11, "period": OCT, "state": "late",
        "submitted_at": "2026-10-26T08:00:00+08:00", "receipt_no": _at(cells, "政策法规科", 11).receipt_no,
        "due": "2026-10-25"}
    assert _at(cells, "政策法规科", 1).submitted_at is None


def test_the_same_month_later_and_earlier(rules, cal):
    subs = month(rules)
    before = status_matrix(rules, OCT, subs, dt.date(2026, 10, 25), cal)    # the 25th itself: nothing missing yet
    assert not any(c.state == "missing" for c in before)
    assert _at(before, "政策法规科", 1).state == "rejected"       # sent and rejected on the 23rd
    after = status_matrix(rules, OCT, subs, bj(2026, 11, 1, 0, 5), cal)
    c = _at(after, "知识产权科", 9)          # corrected after the deadline: still on time, the first answer decides
    assert (c.state, c.submitted_at) == ("on_time", bj(2026, 10, 20))
    only_current = [s for s in subs if s.status == "accepted" and s.superseded_by is None]
    assert _at(status_matrix(rules, OCT, only_current, dt.date(2026, 11, 1), cal), "知识产权科", 9).state == "late"
    assert _at(after, "个私服务中心", 6).state == "missing"
    assert _at(after, "办公室", 9).state == "missing"
    c = _at(after, "宣传科", 5)            # month over, no 信用动态 article reported: the count rule fails
    assert (c.state, c.count, c.required) == ("missing", 0, 1)
    assert c.as_dict()["count"] == 0 and c.as_dict()["required"] == 1
    ok = status_matrix(rules, OCT, [sub("宣传科", 5, OCT, bj(2026, 10, 20), rows=3)], dt.date(2026, 11, 2), cal)
    assert (_at(ok, "宣传科", 5).state, _at(ok, "宣传科", 5).count) == ("on_time", 3)
    # evidence without a ledger: each document counts one, photos alone one
    docs = [sub("宣传科", 5, OCT, bj(2026, 10, 20), sheets=(), filename=f"稿件{i}.docx", message_ref=77) for i in range(2)]
    assert _at(status_matrix(rules, OCT, docs, dt.date(2026, 11, 2), cal), "宣传科", 5).count == 2
    photo = [sub("宣传科", 5, OCT, bj(2026, 10, 20), sheets=(), filename="现场.JPG")]
    assert _at(status_matrix(rules, OCT, photo, dt.date(2026, 11, 2), cal), "宣传科", 5).state == "on_time"


def test_february_due_is_the_28th(rules, cal):
    subs = [sub("个私服务中心", 6, "2026-02", bj(2026, 2, 28, 17)), sub("办公室", 9, "2026-03", bj(2026, 3, 2))]
    cells = status_matrix(rules, "2026-02", subs, dt.date(2026, 3, 2), cal)
    assert _at(cells, "个私服务中心", 6).state == "on_time" and _at(cells, "个私服务中心", 6).due == dt.date(2026, 2, 28)
    assert _at(cells, "办公室", 9).state == "missing"


def test_render_table(rules, cal):
    cells = status_matrix(rules, OCT, month(rules), dt.date(2026, 10, 27), cal)
    plain = render_table(cells, color=False, today=dt.date(2026, 10, 27))
    lines = plain.splitlines()
    assert lines[0] == "2026年10月 各科室报送情况（截至2026年10月27日）"
    assert "\x1b[" not in plain
    for s in rules.sections:
        assert any(line.startswith(s.id) for line in lines)
    row = next(line for line in lines if line.startswith("政策法规科"))
    assert row.split()[1:5] == ["已退回待重报", "未报送", "按时报送", "不适用"]
    assert next(line for line in lines if line.startswith("截止日")).split()[1:] == ["25"] * 5 + ["30", "25", "25", "30", "25", "25"]
    assert "说明：" in plain and "逾期报送：第一次通过校验的材料在报送期限之后才收到" in plain
    assert not any(word in plain for word in ("迟报", "未报 ", "待报", "✓", "✗"))
    # columns line up: the header, the due row and every section row have the same display width
    width = lambda t: sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in t)   # noqa: E731
    body = [line for line in lines[1:] if line and not line.startswith(("-", "合计", "说明"))]
    assert len(body) == 2 + len(rules.sections)
    assert {width(line) for line in body} == {width(lines[1])}
    colored = render_table(cells, color=True)
    assert "\x1b[1;31m" in colored and "\x1b[32m" in colored and "\x1b[0m" in colored
    assert re.sub(r"\x1b\[[0-9;]*m", "", colored) == render_table(cells)


def test_year_score(rules, cal):
    by_period: dict[str, list[StoredSubmission]] = {}
    for m in range(1, 13):
        p = f"2026-{m:02d}"
        # 政策法规科 task 3: on time Jan–Oct, late in November, nothing in December;
        # in March its first message was rejected, then resent on time
        if m <= 10:
            if m == 3:
                by_period.setdefault(p, []).append(sub("政策法规科", 3, p, bj(2026, 3, 10), status="rejected", message_ref=9001))
            by_period.setdefault(p, []).append(sub("政策法规科", 3, p, bj(2026, m, 20)))
        elif m == 11:
            by_period.setdefault(p, []).append(sub("政策法规科", 3, p, bj(2026, 11, 26)))
        if m in (3, 9):
            by_period.setdefault(p, []).append(sub("餐饮科", 7, p, bj(2026, m, 20), rows=1))
    rows = year_score(rules, 2026, by_period, cal)
    r = next(x for x in rows if (x.section, x.task) == ("政策法规科", 3))
    assert r == ScoreRow("政策法规科", 3, 12, 10, 1, 1, 1, 0)
    assert not any(x.task == 4 and x.section == "政策法规科" for x in rows)
    food = next(x for x in rows if (x.section, x.task) == ("餐饮科", 7))
    assert (food.on_time, food.missing, food.count, food.required) == (2, 10, 2, 2)
    assert next(x for x in rows if (x.section, x.task) == ("宣传科", 7)).count == 0
    assert yearly_counts(rules, 2026, by_period)[("餐饮科", 7)] == 2
    # in the middle of the year the months to come are not_due, not missing
    mid = year_score(rules, 2026, by_period, cal, today=dt.date(2026, 7, 1))
    r = next(x for x in mid if (x.section, x.task) == ("政策法规科", 3))
    assert (r.due, r.on_time, r.not_due) == (6, 6, 6)
    assert r.as_dict()["rejected_first_time"] == 1


def test_rows_follow_the_rules_order(rules, cal):
    cells = status_matrix(rules, OCT, [], dt.date(2026, 10, 1), cal)
    assert [c.section for c in cells[:: len(rules.tasks)]] == [s.id for s in rules.sections]
    assert all(isinstance(c, Cell) for c in cells)
    assert {c.state for c in cells} == {"not_due", "not_applicable"}


def test_months_before_tracking_since_are_not_applicable(rules):
    from mailbot.duties.status import status_matrix, year_score
    before = status_matrix(rules, "2026-10", [], dt.date(2026, 12, 3), tracking_since="2026-11")
    assert {c.state for c in before} == {"not_applicable"}
    after = status_matrix(rules, "2026-11", [], dt.date(2026, 12, 3), tracking_since="2026-11")
    assert "missing" in {c.state for c in after}
    rows = year_score(rules, 2026, {}, today=dt.date(2026, 12, 3), tracking_since="2026-11")
    full = year_score(rules, 2026, {}, today=dt.date(2026, 12, 3))
    # only November's deadlines count against the sections, not the ten months before mailbot
    assert sum(r.missing for r in rows) < sum(r.missing for r in full) / 5 and sum(r.missing for r in rows) > 0


# ---------------------------------------------------------------- 严禁弄虚作假: a reused file counts for nothing

def reused(s, period="2026-03", receipt="XY20260320-00004"):
    from dataclasses import replace
    from mailbot.store import ReusedFrom
    return replace(s, reused_from=ReusedFrom(period, receipt, bj(2026, 3, 20)))


def test_a_reused_photo_does_not_meet_the_year_count(rules, cal):
    # 消保科's 诚信宣传 (at least 2 a year): one photo in March, the very same photo again in June
    march = sub("消费者权益保护科", 7, "2026-03", bj(2026, 3, 20), sheets=(), filename="现场照片.jpg")
    june = reused(sub("消费者权益保护科", 7, "2026-06", bj(2026, 6, 20), sheets=(), filename="现场照片.jpg"),
                  receipt=march.receipt_no)
    by_period = {"2026-03": [march], "2026-06": [june]}
    assert yearly_counts(rules, 2026, by_period)[("消费者权益保护科", 7)] == 1         # 1 of 2, not 2 of 2
    row = next(x for x in year_score(rules, 2026, by_period, cal) if (x.section, x.task) == ("消费者权益保护科", 7))
    assert (row.count, row.required, row.on_time, row.reused) == (1, 2, 1, 1)
    assert row.missing == 11 and row.as_dict()["reused"] == 1          # June's answer was no answer


def test_a_reused_file_does_not_meet_the_month_count_and_marks_the_cell(rules, cal):
    # 宣传科's 信用动态 (at least 1 a month): last month's article again
    nov = "2026-11"
    article = reused(sub("宣传科", 5, nov, bj(2026, 11, 20), sheets=(), filename="信用动态稿件.docx"),
                     period="2026-10", receipt="XY20261020-00001")
    cell = next(c for c in status_matrix(rules, nov, [article], dt.date(2026, 12, 2), cal)
                if (c.section, c.task) == ("宣传科", 5))
    assert cell.state == "reused" and cell.count == 0 and cell.required == 1
    assert cell.as_dict()["reused"] == [{"filename": "信用动态稿件.docx", "receipt_no": article.receipt_no,
                                         "earlier_period": "2026-10", "earlier_receipt_no": "XY20261020-00001"}]
    table = render_table([cell])
    assert "重复材料不计数" in table.splitlines()[4]
    assert (f"重复材料不计数：宣传科 任务5《信用动态稿件.docx》（回执编号{article.receipt_no}），"
            "与2026年10月回执编号XY20261020-00001的材料相同") in table
    # a real article beside it is the answer; the reused one is still listed, and counts nothing
    real = sub("宣传科", 5, nov, bj(2026, 11, 26), sheets=(), filename="另一篇.docx")
    cell = next(c for c in status_matrix(rules, nov, [article, real], dt.date(2026, 12, 2), cal)
                if (c.section, c.task) == ("宣传科", 5))
    assert (cell.state, cell.count, cell.receipt_no) == ("late", 1, real.receipt_no) and len(cell.reused) == 1
