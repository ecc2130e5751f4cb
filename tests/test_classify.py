"""Classification: section, task and month from the evidence, in the bureau's order."""
import datetime as dt

import pytest

from mailbot.intake.classify import classify_file, decide_section, find_periods, find_tasks, period_of_value
from mailbot.model import FileKind
from mailbot.rules import load_rules

TODAY = dt.date(2026, 11, 20)


@pytest.fixture(scope="module")
def rules(rules_dir):
    return load_rules(rules_dir)


@pytest.mark.parametrize("text, period", [
    ("政策法规科2026年11月双公示台账", "2026-11"),
    ("2026年 11 月份信用材料", "2026-11"),
    ("11月份材料", "2026-11"),
    ("十一月材料", "2026-11"),
    ("202611报送", "2026-11"),
    ("材料2026-11", "2026-11"),
    ("材料 2026.11", "2026-11"),
    ("2026/10 补报", "2026-10"),
    ("２０２６年１１月", "2026-11"),     # full-width digits
])
def test_periods_in_every_form_people_write(text, period):
    assert find_periods(text, TODAY)[0][0] == period


def test_month_without_year_is_the_latest_such_month():
    assert find_periods("12月份材料", dt.date(2027, 1, 10))[0][0] == "2026-12"
    assert find_periods("1月份材料", dt.date(2027, 1, 10))[0][0] == "2027-01"


@pytest.mark.parametrize("text", ["每月25日前报送", "附件1", "7个工作日", "20261103"])
def test_no_period_where_there_is_none(text):
    assert find_periods(text, TODAY) == []


def test_cover_values_in_cells():
    assert period_of_value(dt.datetime(2026, 11, 1), TODAY) == "2026-11"
    assert period_of_value("2026年11月", TODAY) == "2026-11"
    assert period_of_value(202611, TODAY) == "2026-11"
    assert period_of_value("本月", TODAY) is None


@pytest.mark.parametrize("text, task", [
    ("任务3 材料", 3), ("重点任务 11", 11), ("第三项", 3), ("第十一项材料", 11), ("（七）活动照片", 7),
    ("双公示台账", 3), ("信易贷情况汇总", 6), ("联合奖惩应用情况", 9), ("诚信宣传活动照片", 7),
    ("信用动态稿件", 5), ("分级分类监管文件", 8),
])
def test_task_by_form_or_keyword(rules, text, task):
    assert find_tasks(text, rules)[0][0] == task


def test_a_section_name_is_not_a_task_keyword(rules):
    # 知识产权科 contains 知识产权 (a task 4 keyword); the subject names task 9 only
    assert [n for n, _ in find_tasks("知识产权科 联合奖惩应用情况", rules)] == [9]


def test_section_by_registered_address(rules):
    d = decide_section("fagui@x.cn", "政策法规科", [], rules)
    assert d.section == "政策法规科" and not d.quarantine
    assert d.evidence[0].detail == "按发件地址fagui@x.cn识别为政策法规科"


def test_unregistered_sender_named_on_the_cover_waits_for_a_person(rules):
    d = decide_section("new@x.cn", None, ["法规科"], rules)
    assert d.section == "政策法规科" and d.quarantine and "人工确认" in d.quarantine_zh


def test_cover_naming_another_section_waits_for_a_person(rules):
    d = decide_section("fagui@x.cn", "政策法规科", ["财务科"], rules)
    assert d.quarantine and "财务科" in d.quarantine_zh


def test_unregistered_sender_without_a_cover(rules):
    d = decide_section("who@x.cn", None, [], rules)
    assert d.section is None and d.quarantine


def test_workbook_sheets_beat_file_name_and_subject(rules):
    [c] = classify_file(filename="信易贷.xlsx", kind=FileKind.XLSX, sheet_tasks=[(3, "双公示台账")],
                        cover_period=("2026-10", "B3"), subject="任务9 2026年11月", received=TODAY, rules=rules)
    assert (c.task, c.period) == (3, "2026-10")
    assert [e.source for e in c.evidence] == ["sheet", "cover"]
    assert c.evidence[0].detail == "按工作表'双公示台账'识别为任务3"


def test_a_workbook_with_several_task_sheets_gives_one_item_per_task(rules):
    cs = classify_file(filename="a.xlsx", kind=FileKind.XLSX, sheet_tasks=[(8, "分级分类"), (3, "双公示台账")],
                       cover_period=None, subject="", received=TODAY, rules=rules)
    assert [c.task for c in cs] == [3, 8]


def test_file_name_before_subject_and_subject_period_before_file_name(rules):
    [c] = classify_file(filename="诚信宣传活动照片2026年10月.jpg", kind=FileKind.JPEG, sheet_tasks=[],
                        cover_period=None, subject="任务3 2026年11月", received=TODAY, rules=rules)
    assert (c.task, c.period) == (7, "2026-11")


def test_period_falls_back_to_the_month_of_receipt_and_says_so(rules):
    [c] = classify_file(filename="照片.jpg", kind=FileKind.JPEG, sheet_tasks=[], cover_period=None,
                        subject="诚信宣传", received=TODAY, rules=rules)
    assert c.period == "2026-11" and "按收件日期2026-11-20确定为2026年11月" in c.evidence[-1].detail


def test_a_photo_beside_its_workbook_takes_the_workbooks_task(rules):
    [c] = classify_file(filename="IMG_0001.jpg", kind=FileKind.JPEG, sheet_tasks=[], cover_period=None,
                        subject="材料", received=TODAY, rules=rules, sibling_tasks=[7])
    assert c.task == 7 and c.evidence[0].source == "message"


def test_undecidable_task_asks_for_it(rules):
    [c] = classify_file(filename="scan.pdf", kind=FileKind.PDF, sheet_tasks=[], cover_period=None,
                        subject="材料", received=TODAY, rules=rules)
    assert c.task is None and c.problems[0].code == "task-unknown" and "任务" in c.problems[0].hint


def test_a_file_name_naming_two_tasks_is_ambiguous(rules):
    [c] = classify_file(filename="双公示和信易贷.pdf", kind=FileKind.PDF, sheet_tasks=[], cover_period=None,
                        subject="", received=TODAY, rules=rules)
    assert c.task is None and c.problems[0].code == "task-ambiguous"


TIE = "信用动态-长清区开展信用修复培训.docx"


def _tie(rules, subject: str = "", body: str = "", filename: str = TIE):
    [c] = classify_file(filename=filename, kind=FileKind.DOCX, sheet_tasks=[], cover_period=None,
                        subject=subject, received=TODAY, rules=rules, body=body)
    return c


def test_the_subject_breaks_a_tie_in_the_file_name(rules):
    c = _tie(rules, subject="信用动态稿件", body="附件为信用修复培训的信用动态稿件")
    assert c.task == 5 and c.problems == ()
    [ev] = [e for e in c.evidence if e.decision == "task"]
    assert ev.source == "subject" and ev.detail == "文件名同时指向任务5、任务11，按邮件主题中的'信用动态'识别为任务5"


def test_the_body_breaks_a_tie_the_subject_leaves(rules):
    # the subject names neither candidate (or both): the body decides
    for subject in ("11月份材料", "信用动态和信用修复材料"):
        c = _tie(rules, subject=subject, body="信用监管科：\n  附件是我科本月的工作动态稿件，请审核后推送至信用济南。")
        assert c.task == 5 and [e.source for e in c.evidence if e.decision == "task"] == ["body"]


def test_a_task_number_in_the_file_name_breaks_the_tie(rules):
    c = _tie(rules, filename="任务11 " + TIE, subject="信用动态稿件")
    assert c.task == 11 and "'任务11'" in c.evidence[0].detail


def test_a_tie_nothing_breaks_lists_the_candidates_and_how_to_name_the_file(rules):
    c = _tie(rules, subject="材料", body="请查收。")
    [p] = c.problems
    assert c.task is None and p.code == "task-ambiguous" and p.is_error
    assert p.message == (f"文件'{TIE}'的文件名中，'信用动态'指向任务5（加大\"信用动态\"栏目信息报送），"
                         "'信用修复'指向任务11（开展企业异议处理和信用修复工作）；"
                         "邮件主题和正文也未能确定是其中哪一项，因此无法确定所属任务")
    assert f"'任务5 {TIE}'或'任务11 {TIE}'" in p.hint and "邮件主题" in p.hint
    # the advice works: the file renamed as told is decided
    assert _tie(rules, filename=f"任务5 {TIE}", subject="材料").task == 5
