"""decide() on every case of tests/data/cases, called directly: no database, no CLI; and the judge's rules one by one."""
from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import replace
from types import SimpleNamespace

import pytest
import yaml

from mailbot.app.config import config_from_mapping
from mailbot.app.wiring import build
from mailbot.intake import judge
from mailbot.intake.classify import SectionDecision
from mailbot.intake.parse import parse_message
from mailbot.model import FileKind, ItemResult, Outcome, Problem, Severity
from mailbot.pipeline import decide

from conftest import CASES, DATA, ROOT, case_expectation, case_items

NOV = dt.datetime.fromisoformat("2026-11-20T10:00:00+08:00")


@pytest.fixture(scope="module")
def intake():
    """The intake the CLI builds from config.example.yaml (the addresses the cases assume) and rules/."""
    path = ROOT / "config.example.yaml"
    config = config_from_mapping(yaml.safe_load(path.read_text(encoding="utf-8")), str(path), ROOT)
    return build(config, ROOT / "rules").intake


@pytest.fixture(scope="module")
def rules(intake):
    return intake.rules


def _as_dicts(items):
    return [{"filename": i.filename, "task": i.task, "period": i.period, "status": i.status,
             "error_codes": [p.code for p in i.errors], "warning_codes": [p.code for p in i.warnings]} for i in items]


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_case(case, intake):
    expected = case_expectation(case)
    incoming = parse_message(case.read_bytes(), limits=intake.rules.limits)
    verdict = decide(incoming, intake, expected["received"])
    assert verdict.outcome.value == expected["outcome"], verdict.reason
    assert verdict.section == expected.get("section")
    assert verdict.reason
    assert case_items(_as_dicts(verdict.items)) == case_items(expected.get("items", []))
    # the message's own problems; an unconfirmed section is told by the outcome quarantined
    message_codes = sorted(p.code for p in verdict.problems if p.code != "section-unconfirmed")
    assert message_codes == sorted(expected.get("error_codes", []))
    assert verdict.reply is (expected["outcome"] != "ignored")


def test_the_same_file_for_another_month_is_a_warning_not_a_rejection(intake):
    incoming = parse_message((DATA / "cases" / "sendemail_gbk_raw.eml").read_bytes(), limits=intake.rules.limits)
    [att] = incoming.attachments
    prior = [SimpleNamespace(sha256=hashlib.sha256(att.content).hexdigest(), period="2026-10", receipt_no="R-0001")]
    verdict = decide(incoming, intake, NOV, prior)
    assert verdict.outcome is Outcome.ACCEPTED
    [item] = verdict.items
    assert "same-file-other-period" in [p.code for p in item.warnings] and "R-0001" in item.warnings[-1].message


def _reused(intake, policy, *earlier):
    incoming = parse_message((DATA / "cases" / "sendemail_gbk_raw.eml").read_bytes(), limits=intake.rules.limits)
    [att] = incoming.attachments
    sha = hashlib.sha256(att.content).hexdigest()
    rules = intake.rules
    rules = replace(rules, tasks=tuple(replace(t, reused_file=policy) for t in rules.tasks))
    return decide(incoming, replace(intake, rules=rules), NOV,
                  [SimpleNamespace(sha256=sha, **e) for e in earlier])


def test_a_reused_file_is_accepted_never_counted_and_says_so(intake):
    verdict = _reused(intake, "warn", dict(period="2026-09", receipt_no="R-0000", status="rejected"),
                      dict(period="2026-10", receipt_no="R-0001", status="accepted"),
                      dict(period="2026-11", receipt_no="R-0002", status="accepted"))
    [item] = verdict.items
    assert verdict.outcome is Outcome.ACCEPTED and item.reused
    [p] = [p for p in item.warnings if p.code == "same-file-other-period"]
    # the month it first counted for: not the rejected one, not this month's own earlier answer
    assert "2026年10月" in p.message and "R-0001" in p.message and "重复材料不计数" in p.message


def test_a_file_only_rejected_before_is_not_reused(intake):
    [item] = _reused(intake, "warn", dict(period="2026-10", receipt_no="R-0001", status="rejected")).items
    assert not item.reused


def test_the_reject_policy_refuses_a_reused_file_naming_the_earlier_receipt_and_month(intake):
    verdict = _reused(intake, "reject", dict(period="2026-10", receipt_no="R-0001", status="accepted"))
    [item] = verdict.items
    assert verdict.outcome is Outcome.REJECTED and item.status == "rejected" and item.reused
    [p] = item.errors
    assert p.code == "same-file-other-period" and p.severity is Severity.ERROR
    assert "R-0001" in p.message and "2026年10月" in p.message and "不予受理" in p.message
    assert "严禁弄虚作假" in p.hint and "2026年11月" in p.hint


def test_a_persons_confirmation_settles_the_section(intake):
    incoming = parse_message((DATA / "cases" / "swaks_unknown_sender.eml").read_bytes(), limits=intake.rules.limits)
    verdict = decide(incoming, intake, NOV, section_override="政策法规科")
    assert verdict.outcome is Outcome.ACCEPTED and verdict.section == "政策法规科" and verdict.problems == ()


# ---------------------------------------------------------------- the judge's rules

KNOWN = SectionDecision("政策法规科", ())
UNCONFIRMED = SectionDecision("政策法规科", (), quarantine="cover names a section the sender is not registered to",
                              quarantine_zh="发件地址未登记")


def _item(status: str, *codes: str, task: int | None = 3) -> ItemResult:
    return ItemResult("台账.xlsx", FileKind.XLSX, "0" * 64, task, "2026-11", status,
                      tuple(Problem(c, c) for c in codes))


def test_no_attachment_is_rejected_with_the_template_for_a_known_section(rules):
    p = judge.no_attachment()
    assert p.code == "no-attachment" and p.is_error and "未找到附件" in p.message
    v = judge.without_files("2026年11月报送材料", KNOWN, rules, NOV.date())
    assert (v.outcome, v.problems, v.attach_template, v.reply) == (Outcome.REJECTED, (p,), True, True)
    v = judge.without_files("2026年11月报送材料", SectionDecision(None, ()), rules, NOV.date())
    assert v.outcome is Outcome.REJECTED and not v.attach_template
    assert judge.without_files("2026年11月报送材料", UNCONFIRMED, rules, NOV.date()).outcome is Outcome.QUARANTINED


def test_a_template_request_names_the_month_asked_for(rules):
    word = rules.template_requests[0]
    v = judge.without_files(f"{word}2026年12月", KNOWN, rules, NOV.date())
    assert (v.outcome, v.attach_template, v.template_period, v.reply) == (Outcome.IGNORED, True, "2026-12", True)
    assert judge.without_files(word, KNOWN, rules, NOV.date()).template_period == "2026-11"


def test_a_task_of_another_section_is_not_assigned(rules):
    task = rules.task(6)
    other = next(s.id for s in rules.sections if s.id not in task.sections)
    p = judge.not_assigned(6, other, rules)
    assert p.code == "task-not-assigned" and p.is_error and other in p.message and task.sections[0] in p.message
    assert judge.not_assigned(6, task.sections[0], rules) is None
    assert judge.not_assigned(6, None, rules) is None        # no section yet: nothing to compare


def test_the_same_file_for_another_period_is_flagged(rules):
    prev = SimpleNamespace(period="2026-10", receipt_no="R-0001")
    p = judge.same_file_other_period("照片.jpg", prev, "2026-11")
    assert p.code == "same-file-other-period" and p.severity is Severity.WARNING
    assert "R-0001" in p.message and "2026年10月" in p.message and "照片.jpg" in p.message
    assert judge.same_file_other_period("照片.jpg", prev, "2026-10") is None
    assert judge.same_file_other_period("照片.jpg", None, "2026-11") is None
    assert judge.same_file_other_period("照片.jpg", prev, None) is None


def test_the_real_kind_decides_not_the_name(rules):
    p = judge.kind_problem(FileKind.PDF, "PDF文档", "双公示台账.xlsx", 3, rules)
    assert p.code == "wrong-file-kind" and "双公示台账.xlsx" in p.message and "任务3" in p.message
    assert judge.kind_problem(FileKind.XLSX, "Excel工作簿", "双公示台账.xlsx", 3, rules) is None


def test_a_missing_sheet_names_what_the_workbook_has(rules):
    p = judge.missing_sheet("材料.xlsx", ["封面", "Sheet1"], 3, rules)
    assert p.code == "missing-sheet" and "'封面'、'Sheet1'" in p.message and p.code in judge.TEMPLATE_HELPS
    assert "现有工作表：无" in judge.missing_sheet("材料.xlsx", [], 3, rules).message


def test_item_status():
    warning = Problem("late-publication", "…", Severity.WARNING)
    assert judge.item_status([warning], 3) == "accepted"
    assert judge.item_status([warning, Problem("bad-date", "…")], 3) == "rejected"
    assert judge.item_status([], None) == "rejected"          # no task found: nothing to accept it for


@pytest.mark.parametrize("statuses, decision, want", [
    (["accepted", "accepted"], KNOWN, (Outcome.ACCEPTED, "2 item(s) accepted")),
    (["accepted", "rejected"], KNOWN, (Outcome.PARTIALLY_ACCEPTED, "1 of 2 item(s) accepted")),
    (["rejected", "rejected"], KNOWN, (Outcome.REJECTED, "all 2 item(s) rejected")),
    (["accepted", "skipped"], KNOWN, (Outcome.ACCEPTED, "1 item(s) accepted")),
    (["skipped"], KNOWN, (Outcome.REJECTED, "all 0 item(s) rejected")),
    (["accepted"], UNCONFIRMED, (Outcome.QUARANTINED, UNCONFIRMED.quarantine)),
])
def test_outcome_mixes_the_items(statuses, decision, want):
    assert judge.outcome([_item(s) for s in statuses], decision) == want


def test_the_template_goes_back_only_where_it_helps():
    assert judge.attach_template([_item("rejected", "missing-column")], KNOWN)
    assert not judge.attach_template([_item("rejected", "bad-date")], KNOWN)
    assert not judge.attach_template([_item("rejected", "missing-column")], SectionDecision(None, ()))
    assert judge.message_problems(UNCONFIRMED)[0].code == "section-unconfirmed"
    assert judge.message_problems(KNOWN) == ()


def test_the_template_sent_back_is_for_the_month_answered_not_the_month_it_is(intake):
    from mailbot.intake.parse import parse_message
    from mailbot.pipeline import _period_for_template, decide
    raw = ("From: fagui@cqscjg.example.cn\r\nTo: xyjgk@cqscjg.example.cn\r\nSubject: 2026年11月信用监测材料\r\n"
           "Message-ID: <nov@x>\r\nDate: Thu, 3 Dec 2026 09:00:00 +0800\r\n\r\n见附件。\r\n").encode("utf-8")
    incoming = parse_message(raw)
    received = dt.datetime(2026, 12, 3, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    verdict = decide(incoming, intake, received)
    assert verdict.outcome.value == "rejected" and verdict.attach_template
    assert _period_for_template(verdict, incoming.subject, received.date()) == "2026-11"
    assert _period_for_template(verdict, "材料", received.date()) == "2026-12"


def _decided(intake, name: str):
    case = DATA / "cases" / f"{name}.eml"
    verdict = decide(parse_message(case.read_bytes(), limits=intake.rules.limits), intake, case_expectation(case)["received"])
    [item] = [i for i in verdict.items if i.status != "skipped"]
    return verdict, item


def test_a_tie_is_broken_by_the_subject_then_the_body_and_otherwise_explained(intake):
    _, item = _decided(intake, "foxmail_tie_subject")
    assert [e.detail for e in item.evidence if e.decision == "task"] == [
        "文件名同时指向任务5、任务11，按邮件主题中的'信用动态'识别为任务5"]
    _, item = _decided(intake, "foxmail_tie_body")
    assert [e.source for e in item.evidence if e.decision == "task"] == ["body"]
    verdict, item = _decided(intake, "foxmail_tie_undecided")
    [p] = item.errors
    assert "'信用动态'指向任务5" in p.message and "'信用修复'指向任务11" in p.message
    assert f"'任务5 {item.filename}'或'任务11 {item.filename}'" in p.hint and verdict.attach_template


def test_headers_near_the_template_are_read_and_the_cell_named(intake):
    _, item = _decided(intake, "foxmail_header_synonym")
    [w] = item.warnings
    assert w.message == "工作表'分级分类监管台账'B2 列名'监管行业'按'监管领域'处理" and w.cell == "B2"
    assert "常见叫法" in w.hint and item.rows == 1
    _, item = _decided(intake, "foxmail_header_near")
    said = {w.cell: (w.message, w.hint) for w in item.warnings}
    assert [m for m, _ in said.values()] == [
        "工作表'双公示台账'C2 列名'行政相对人 名称'按'行政相对人名称'处理",
        "工作表'双公示台账'J2 列名'罚款金额（万元)'按'罚款金额（万元）'处理",
        "工作表'双公示台账'M2 列名'决定机关：'按'决定机关'处理"]
    assert all("全角半角、空格或标点" in h for _, h in said.values())


def test_a_header_far_from_the_template_names_the_cell_and_the_closest_column(intake):
    _, item = _decided(intake, "foxmail_header_far")
    [p] = item.errors
    assert p.code == "missing-column" and p.cell == "B2"
    assert p.message == "工作表'分级分类监管台账'缺少'监管领域'列：B2 列名'监管对象'不是模板中的列名，最接近的模板列名是'监管领域'"
    assert "请将列名改为'监管领域'" in p.hint
