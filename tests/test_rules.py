"""rules/ as data: the real rules load clean and say what the plan says; broken copies are
reported mistake by mistake, each at its file and line."""
from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

import pytest

from mailbot.model import FileKind, Rules, Severity
from mailbot.rules import RuleIssue, RulesError, check_rules, load_rules
from mailbot.dates.workdays import WorkCalendar

BUSINESS = {"政策法规科", "知识产权科", "信用监管科", "个私服务中心", "消费者权益保护科",
            "食品生产科", "食品流通科", "餐饮科"}
GENERAL = {"宣传科", "办公室", "财务科"}


@pytest.fixture(scope="module")
def rules(rules_dir) -> Rules:
    return load_rules(rules_dir)


# ---------------------------------------------------------------- the real rules

def test_real_rules_have_no_issues(rules_dir):
    assert check_rules(rules_dir) == []


def test_counts(rules):
    assert [t.number for t in rules.tasks] == list(range(1, 12))
    assert len(rules.sections) == 11
    assert {s.id for s in rules.sections if s.kind == "业务科室"} == BUSINESS
    assert {s.id for s in rules.sections if s.kind == "综合科室"} == GENERAL
    assert len(rules.sheets) == 11
    assert {s.task for s in rules.sheets} == set(range(1, 12))
    assert rules.source_dir.endswith("rules")


def test_section_aliases(rules):
    for alias, sid in [("法规科", "政策法规科"), ("消保科", "消费者权益保护科"), ("个私中心", "个私服务中心"),
                       ("信用科", "信用监管科"), ("知产科", "知识产权科"), ("政策法规科", "政策法规科")]:
        assert rules.section(alias).id == sid
    assert rules.section("登记注册科") is None
    names = [n for s in rules.sections for n in (s.id, *s.aliases)]
    assert len(names) == len(set(names))


def test_each_business_section_expansion(rules):
    for n in (1, 2):
        t = rules.task(n)
        assert t.responsibility == "各业务科室"
        assert set(t.sections) == BUSINESS
        assert "宣传科" not in t.sections
    assert {t.number for t in rules.tasks_of("政策法规科")} == {1, 2, 3, 11}
    assert {t.number for t in rules.tasks_of("宣传科")} == {5, 7, 10}
    assert {t.number for t in rules.tasks_of("信用监管科")} == {1, 2, 4, 8, 9, 11}
    assert {t.number for t in rules.tasks_of("办公室")} == {9}


def test_named_responsibilities(rules):
    expect = {
        3: {"政策法规科"}, 4: {"知识产权科", "信用监管科"}, 5: {"宣传科"}, 6: {"个私服务中心"},
        7: {"宣传科", "消费者权益保护科", "食品生产科", "食品流通科", "餐饮科"},
        8: {"信用监管科", "餐饮科", "食品生产科", "食品流通科"},
        9: {"办公室", "财务科", "知识产权科", "信用监管科"}, 10: {"宣传科"}, 11: {"政策法规科", "信用监管科"},
    }
    for n, ids in expect.items():
        t = rules.task(n)
        assert set(t.sections) == ids, n
        assert set(t.responsibility.split("、")) == ids, n


def test_texts_are_the_plans_words(rules, shared_dir):
    plan = (shared_dir / "seed" / "000_c29baaa46b8e0af7.txt").read_text(encoding="utf-8")
    squeeze = lambda s: re.sub(r"\s+", "", s)                     # noqa: E731 - page breaks, PDF wraps
    body = squeeze(plan)
    for t in rules.tasks:
        assert f"{t.number}、{squeeze(t.text)}" in body, t.number
        assert squeeze(t.text).startswith(squeeze(t.title)), t.number
        assert squeeze(t.group) in body
    assert [t.group[:3] for t in rules.tasks] == ["(一)"] * 5 + ["(二)"] * 2 + ["(三)"] * 3 + ["(四)"]


def _deadline(task, kind):
    found = [d for d in task.deadlines if d.kind == kind]
    assert len(found) == 1, (task.number, kind)
    return found[0]


def test_task3_seven_working_days(rules):
    d = _deadline(rules.task(3), "event")
    assert (d.working_days, d.hours, d.event_column, d.report_column) == (7, None, "决定日期", "上报日期")
    assert d.stated and "7个工作日内" in d.source


def test_deadlines(rules):
    stated = {4: 25, 6: 30, 8: 25, 9: 30}
    for t in rules.tasks:
        m = _deadline(t, "monthly")
        if t.number in stated:
            assert (m.day, m.stated) == (stated[t.number], True)
        else:     # the plan gives no day: the assumed 25th, said so
            assert (m.day, m.stated) == (25, False)
            assert "未写日期" in m.source
    c = _deadline(rules.task(5), "count")
    assert (c.at_least, c.per) == (1, "month")
    c = _deadline(rules.task(7), "count")
    assert (c.at_least, c.per) == (2, "year")
    c = _deadline(rules.task(2), "count")
    assert (c.at_least, c.per) == (1, "year")
    for n, (ev, rep) in {5: ("发生日期", "上报日期"), 7: ("活动结束日期", "上报日期")}.items():
        e = _deadline(rules.task(n), "event")
        assert (e.hours, e.working_days, e.event_column, e.report_column) == (48, None, ev, rep)
    e = _deadline(rules.task(11), "event")
    assert (e.working_days, e.event_column, e.report_column) == (1, "收到日期", "办结日期")
    assert _deadline(rules.task(10), "asap").source.startswith("发生严重失信事件第一时间")


def test_shuanggongshi_sheet(rules):
    s = rules.sheet("双公示台账")
    assert s.task == 3 and rules.task(3).sheets == ("双公示台账",)
    assert [c.name for c in s.columns] == [
        "序号", "信息类别", "行政相对人名称", "行政相对人类别", "统一社会信用代码", "法定代表人", "决定书文号",
        "处罚类别或许可类别", "决定内容", "罚款金额（万元）", "决定日期", "上报日期", "决定机关", "备注"]
    c = s.column
    assert c("序号").type == "integer"
    assert (c("信息类别").type, c("信息类别").choices, c("信息类别").required) == ("enum", ("行政处罚", "行政许可"), True)
    assert c("行政相对人名称").required
    assert c("行政相对人类别").choices == ("法人及非法人组织", "自然人", "个体工商户")
    assert c("统一社会信用代码").type == "credit_code" and not c("统一社会信用代码").required
    assert c("统一社会信用代码").required_if == ("行政相对人类别", ("法人及非法人组织", "个体工商户"))
    assert {"社会信用代码", "信用代码"} <= set(c("统一社会信用代码").aliases)
    assert {"处罚决定日期", "作出决定日期"} <= set(c("决定日期").aliases)
    assert (c("罚款金额（万元）").type, c("罚款金额（万元）").minimum) == ("number", 0)
    assert all(c(n).required for n in ("决定书文号", "决定日期", "上报日期", "决定机关"))
    assert c("决定日期").type == c("上报日期").type == "date"
    assert {"双公示", "行政处罚和行政许可信息"} <= set(s.aliases)
    assert s.title and s.help and not s.allow_empty
    checks = {rc.code: rc for rc in s.row_checks}
    rb = checks["report-before-decision"]
    assert (rb.kind, rb.earlier, rb.later, rb.severity) == ("not_before", "决定日期", "上报日期", Severity.ERROR)
    lp = checks["late-publication"]
    assert (lp.kind, lp.limit, lp.severity, lp.counts_against) == ("within_working_days", 7, Severity.WARNING, "及时率")


def test_other_sheets(rules):
    xyd = rules.sheet("信易贷台账")
    for name in ("企业名称", "统一社会信用代码", "平台注册日期", "融资需求金额（万元）", "授信金额（万元）", "授信机构", "授信日期"):
        assert xyd.column(name) is not None, name
    for sheet, event in (("信用动态台账", "发生日期"), ("诚信宣传台账", "活动结束日期")):
        hours = [rc for rc in rules.sheet(sheet).row_checks if rc.kind == "within_hours"]
        assert [(h.earlier, h.later, h.limit) for h in hours] == [(event, "上报日期", 48)]
    wd = [rc for rc in rules.sheet("异议处理和信用修复台账").row_checks if rc.kind == "within_working_days"]
    assert [(w.earlier, w.later, w.limit) for w in wd] == [("收到日期", "办结日期", 1)]
    assert rules.sheet("严重失信事件台账").allow_empty and rules.sheet("异议处理和信用修复台账").allow_empty
    for s in rules.sheets:
        assert s.title and s.columns[0].name == "序号", s.name
        for col in s.columns:
            assert col.type != "enum" or col.choices, (s.name, col.name)
    assert [f.name for f in rules.cover.fields] == ["报送科室", "报送月份", "联系人", "联系电话"]
    assert rules.cover.name == "封面" and rules.cover.fields[3].type == "phone"


def test_file_kinds(rules):
    values = {k.value for k in FileKind}
    for t in rules.tasks:
        assert t.file_kinds and set(t.file_kinds) <= values
        assert {"xlsx", "xls", "et", "ods"} <= set(t.file_kinds)
    assert set(rules.task(3).file_kinds) == {"xlsx", "xls", "et", "ods"}
    assert {"jpeg", "png", "pdf", "docx", "wps"} <= set(rules.task(7).file_kinds)


def test_keywords_name_one_task(rules):
    owner = {}
    for t in rules.tasks:
        assert t.keywords
        for k in t.keywords:
            assert k not in owner, k
            owner[k] = t.number
    expect = {"双公示": 3, "行政处罚": 3, "行政许可": 3, "信易贷": 6, "联合奖惩": 9, "信用核查": 9, "信用修复": 11,
              "异议": 11, "信用动态": 5, "诚信宣传": 7, "分级分类": 8, "理论学习": 2, "集体学习": 2, "制度文件": 1,
              "归集": 4, "信用承诺": 4, "知识产权": 4, "严重失信": 10, "失信事件": 10}
    for word, n in expect.items():
        assert owner.get(word) == n, word
    assert "台账" not in owner
    for a, na in owner.items():        # nested across tasks would match two tasks at once
        assert not any(a in b and na != nb for b, nb in owner.items() if b != a), a


def test_settings(rules):
    assert "模板" in rules.template_requests
    assert rules.limits["max_depth"] == 3 and rules.limits["max_unpacked_bytes"] == 200 * 1024 * 1024
    assert rules.reminders["send_at"] == "09:00"
    assert rules.reminders["before_workdays"] == (3, 1)


def test_no_invented_calendar(rules, rules_dir):
    assert rules.calendar == {}                  # 2026 comes from the package; 2027 is unpublished
    assert (rules_dir / "calendar" / "2027.yaml.example").is_file()
    assert not (rules_dir / "calendar" / "2027.yaml").exists()


# ---------------------------------------------------------------- broken copies

def _copy(rules_dir: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "rules"
    shutil.copytree(rules_dir, dst)
    return dst


def _edit(path: Path, old: str, new: str, nth: int = 1) -> int:
    """Replace the nth occurrence of `old` and return the (1-based) line where `new` starts."""
    text = path.read_text(encoding="utf-8")
    at = -1
    for _ in range(nth):
        at = text.index(old, at + 1)
    path.write_text(text[:at] + new + text[at + len(old):], encoding="utf-8")
    return text.count("\n", 0, at) + 1


def _line_of(path: Path, needle: str, nth: int = 1) -> int:
    lines = [i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if needle in line]
    return lines[nth - 1]


def _has(issues: list[RuleIssue], file: str, line: int | None, *words: str) -> bool:
    return any(i.file.endswith(file) and i.line == line and all(w in i.message for w in words) for i in issues)


def test_seeded_mistakes_reported_together(rules_dir, tmp_path):
    root = _copy(rules_dir, tmp_path)
    tasks, sections, annex = root / "tasks.yaml", root / "sections.yaml", root / "templates" / "annex1.yaml"

    dup = _edit(tasks, "  - number: 11\n", "  - number: 10\n")
    typo_sec = _edit(tasks, "sections: [知识产权科, 信用监管科]", "sections: [知识产权科, 信用监督科]")
    alias_sec = _edit(tasks, "sections: [宣传科]", "sections: [新闻宣传科]")
    typo_key = _edit(tasks, "    keywords: [分级分类", "    keyword: [分级分类")
    shared_kw = _edit(tasks, "keywords: [异议, 信用修复", "keywords: [双公示, 信用修复")
    bad_kind = _edit(tasks, "file_kinds: [表格]", "file_kinds: [表格, excel]")
    bad_day = _edit(tasks, "        day: 30                # 2月", "        day: 32                # 2月")
    typo_kind = _edit(sections, "kind: 业务科室\n    aliases: [餐饮服务科", "kind: 业务科\n    aliases: [餐饮服务科")
    _edit(annex, "      - name: 决定日期\n", "      - name: 决定时间\n")
    _edit(annex, "        choices: [行政处罚, 行政许可]\n", "")
    col_typo = _edit(annex, "      - {name: 上报日期, type: date, required: true, width: 12, aliases: [报送日期, 上报时间]}",
                     "      - {name: 上报日期, type: date, requred: true, width: 12, aliases: [报送日期, 上报时间]}")
    (root / "calendar" / "2031.yaml").write_text(
        "# fictitious test data, not a holiday schedule\n"
        "year: 2031\n"
        "holidays:\n"
        "  - 2031-10-01..2031-10-07\n"
        "  - 2030-12-31\n"
        "workdays:\n"
        "  - 2031-10-06\n"          # a Monday, and inside the holiday range
        "  - 2031-09-28\n", encoding="utf-8")

    issues = check_rules(root)
    text = "\n".join(map(str, issues))
    # the renamed column breaks what refers to it: task 3's event deadline, its sheet's row checks
    task3_event = _line_of(tasks, "event_column: 决定日期") - 2
    row_checks = [i for i, line in enumerate(annex.read_text(encoding="utf-8").splitlines(), 1)
                  if line.strip() == "earlier: 决定日期"]
    assert len(row_checks) == 2
    expected = [
        ("tasks.yaml", dup, ("task 10 is defined twice",)),
        ("tasks.yaml", _line_of(tasks, "tasks:"), ("task 11 is missing",)),
        ("tasks.yaml", typo_sec, ("信用监督科", "not in sections.yaml")),
        ("tasks.yaml", alias_sec, ("alias of section '宣传科'",)),
        ("tasks.yaml", typo_key, ("task 8: unknown key 'keyword'", "did you mean 'keywords'")),
        ("tasks.yaml", shared_kw, ("'双公示'", "also a keyword of task 3")),
        ("tasks.yaml", bad_kind, ("'excel'",)),
        ("tasks.yaml", bad_day, ("day must be 1..31", "32")),
        ("tasks.yaml", task3_event, ("event_column '决定日期' is not a column",)),
        ("sections.yaml", typo_kind, ("kind must be one of", "业务科")),
        ("annex1.yaml", _line_of(annex, "- name: 信息类别"), ("an enum column needs choices",)),
        ("annex1.yaml", col_typo, ("unknown key 'requred'", "did you mean 'required'")),
        ("annex1.yaml", row_checks[0], ("earlier names column '决定日期'",)),
        ("annex1.yaml", row_checks[1], ("earlier names column '决定日期'",)),
        ("calendar/2031.yaml", 5, ("2030-12-31", "not in 2031")),
        ("calendar/2031.yaml", 7, ("2031-10-06", "Monday")),
        ("calendar/2031.yaml", 7, ("both as a workday and as a holiday",)),
    ]
    for file, line, words in expected:
        assert _has(issues, file, line, *words), f"{file}:{line} {words} not in:\n{text}"
    assert len({i.file for i in issues}) == 4

    with pytest.raises(RulesError) as e:
        load_rules(root)
    assert e.value.issues == issues
    assert str(e.value).splitlines() == [f"{i.file}:{i.line}: {i.message}" for i in issues]


def test_yaml_syntax_error_has_its_line(rules_dir, tmp_path):
    root = _copy(rules_dir, tmp_path)
    line = _edit(root / "sections.yaml", "  - id: 宣传科\n", "  - id: [宣传科\n")
    issues = check_rules(root)
    syntax = [i for i in issues if "YAML syntax error" in i.message]
    assert len(syntax) == 1 and syntax[0].file.endswith("sections.yaml")
    assert line <= syntax[0].line <= line + 1
    # sections unreadable: tasks naming sections are not also reported as unknown sections
    assert not any("not in sections.yaml" in i.message for i in issues)


def test_missing_file_and_bad_shapes(rules_dir, tmp_path):
    root = _copy(rules_dir, tmp_path)
    (root / "settings.yaml").unlink()
    line = _edit(root / "templates" / "annex1.yaml", "        required_if: {column: 行政相对人类别, in: [法人及非法人组织, 个体工商户]}",
                 "        required_if: {column: 行政相对人名称, in: [法人]}")
    issues = check_rules(root)
    assert any(i.file.endswith("settings.yaml") and i.line is None and "missing" in i.message for i in issues)
    assert _has(issues, "annex1.yaml", line, "required_if needs an enum column")
    assert str(RuleIssue("x.yaml", None, "m")) == "x.yaml: m"


def test_row_check_on_a_text_column(rules_dir, tmp_path):
    root = _copy(rules_dir, tmp_path)
    annex = root / "templates" / "annex1.yaml"
    line = _edit(annex, "        later: 办结日期\n", "        later: 办理结果\n")
    issues = check_rules(root)
    assert _has(issues, "annex1.yaml", line, "must be of type date", "enum")


def test_deadline_and_row_check_must_agree(rules_dir, tmp_path):
    root = _copy(rules_dir, tmp_path)
    tasks = root / "tasks.yaml"
    _edit(tasks, "        working_days: 7\n", "        working_days: 5\n")
    issues = check_rules(root)
    line = _line_of(tasks, "working_days: 5") - 1
    assert _has(issues, "tasks.yaml", line, "says 5", "against 7")


def test_a_synonym_may_not_be_another_columns_name(rules_dir, tmp_path):
    root = _copy(rules_dir, tmp_path)
    annex = root / "templates" / "annex1.yaml"
    line = _edit(annex, "synonyms: [监管行业, 所属行业, 行业]", "synonyms: [监管行业, 工作内容, 开展日期]")
    issues = check_rules(root)
    assert _has(issues, "annex1.yaml", line, "synonym '工作内容'", "name or an alias of column '工作内容'")
    assert _has(issues, "annex1.yaml", line, "synonym '开展日期'", "alias of column '完成日期'")


def test_synonyms_are_read_and_not_for_the_cover(rules_dir, tmp_path):
    rules = load_rules(rules_dir)
    assert "监管行业" in next(s for s in rules.sheets if s.task == 8).column("监管领域").synonyms
    root = _copy(rules_dir, tmp_path)
    annex = root / "templates" / "annex1.yaml"
    line = _edit(annex, "      aliases: [填报人, 经办人]\n", "      aliases: [填报人, 经办人]\n      synonyms: [负责人]\n")
    issues = check_rules(root)
    assert _has(issues, "annex1.yaml", line - 2, "cover, field '联系人'", "synonyms apply to ledger columns only")


def test_nested_keyword_is_reported(rules_dir, tmp_path):
    root = _copy(rules_dir, tmp_path)
    line = _edit(root / "tasks.yaml", "keywords: [异议, 信用修复", "keywords: [双公示异议, 信用修复")
    issues = check_rules(root)
    assert _has(issues, "tasks.yaml", line, "'双公示异议' contains '双公示'")


# ---------------------------------------------------------------- calendar files

def test_calendar_year_loads(rules_dir, tmp_path):
    root = _copy(rules_dir, tmp_path)
    # fictitious dates for the loader only: the real 2027 schedule is not published
    (root / "calendar" / "2099.yaml").write_text(
        "year: 2099\nsource: test\nholidays:\n  - 2099-01-01\n  - 2099-10-01..2099-10-07\n"
        "workdays:\n  - 2099-10-10  # Saturday\n", encoding="utf-8")
    rules = load_rules(root)
    year = rules.calendar[2099]
    assert len(year["holidays"]) == 8 and dt.date(2099, 10, 4) in year["holidays"]
    assert year["workdays"] == frozenset({dt.date(2099, 10, 10)})
    cal = WorkCalendar(rules.calendar)
    assert not cal.is_workday(dt.date(2099, 10, 5)) and cal.is_workday(dt.date(2099, 10, 10))
    assert cal.add_workdays(dt.date(2099, 9, 30), 1) == dt.date(2099, 10, 8)


def test_example_calendar_is_not_a_year(rules_dir, tmp_path):
    root = _copy(rules_dir, tmp_path)
    shutil.copy(root / "calendar" / "2027.yaml.example", root / "calendar" / "2027.yaml")
    issues = check_rules(root)
    assert any(i.file.endswith("calendar/2027.yaml") and "holidays is empty" in i.message for i in issues)


def test_calendar_file_name_and_year(rules_dir, tmp_path):
    root = _copy(rules_dir, tmp_path)
    (root / "calendar" / "next.yaml").write_text("holidays: [2099-01-01]\n", encoding="utf-8")
    (root / "calendar" / "2098.yaml").write_text("year: 2099\nholidays: [2098-01-01]\n", encoding="utf-8")
    issues = check_rules(root)
    assert any(i.file.endswith("next.yaml") and "named after its year" in i.message for i in issues)
    assert _has(issues, "2098.yaml", 1, "does not match")


def test_limit_keys_are_unpacks(rules):
    unpack = pytest.importorskip("mailbot.intake.unpack")
    from mailbot.rules import LIMIT_KEYS
    assert set(LIMIT_KEYS) == set(unpack.DEFAULT_LIMITS)
    budget, notes = unpack.Budget.from_limits(rules.limits)
    assert notes == []


def test_bad_settings(rules_dir, tmp_path):
    root = _copy(rules_dir, tmp_path)
    settings = root / "settings.yaml"
    size = _edit(settings, "max_unpacked_bytes: 200 MB", "max_unpacked_bytes: 200 MiB")
    typo = _edit(settings, "  max_depth: 3", "  max_dept: 3")
    clock = _edit(settings, 'send_at: "09:00"', 'send_at: "9点"')
    issues = check_rules(root)
    assert _has(issues, "settings.yaml", size, "positive size")
    assert _has(issues, "settings.yaml", typo, "unknown key 'max_dept'", "max_depth")
    assert _has(issues, "settings.yaml", clock, "HH:MM")


# ---------------------------------------------------------------- honesty rules (严禁弄虚作假)

def test_reused_file_policy_and_joint_keys(rules):
    assert {t.reused_file for t in rules.tasks} <= {"warn", "reject"}
    assert all(t.reused_file == "warn" for t in rules.tasks)          # the default, and task 7 says so
    for t in rules.tasks:
        for name in t.sheets:
            spec = rules.sheet(name)
            assert all(spec.column(c) is not None for c in spec.key)
            assert bool(spec.key) or not t.joint, name      # a joint task's sheet names its items


def test_a_bad_reused_file_value_is_reported_at_its_line(rules_dir, tmp_path):
    root = _copy(rules_dir, tmp_path)
    line = _edit(root / "tasks.yaml", "    reused_file: warn", "    reused_file: refuse")
    issues = check_rules(root)
    assert _has(issues, "tasks.yaml", line, "task 7: reused_file must be one of warn, reject", "'refuse'")


def test_reject_policy_loads(rules_dir, tmp_path):
    root = _copy(rules_dir, tmp_path)
    _edit(root / "tasks.yaml", "    reused_file: warn", "    reused_file: reject")
    assert load_rules(root).task(7).reused_file == "reject"


def test_joint_sheet_keys_are_checked(rules_dir, tmp_path):
    root = _copy(rules_dir, tmp_path)
    annex = root / "templates" / "annex1.yaml"
    _edit(annex, "    key: [活动名称, 活动结束日期]\n", "")
    typo = _edit(annex, "    key: [业务类型, 申请主体名称, 涉及信息]", "    key: [业务类型, 申请人名称, 涉及信息]")
    issues = check_rules(root)
    assert _has(issues, "annex1.yaml", typo, "key names column '申请人名称'", "did you mean '申请主体名称'")
    sheet7 = _line_of(annex, "name: 诚信宣传台账") - 1
    assert _has(issues, "annex1.yaml", sheet7, "sheet '诚信宣传台账'", "several sections", "key")


def test_rules_check_command_reports_a_bad_reused_file_value(rules_dir, tmp_path, capsys):
    from mailbot.app import cli
    root = _copy(rules_dir, tmp_path)
    line = _edit(root / "tasks.yaml", "    reused_file: warn", "    reused_file: maybe")
    capsys.readouterr()
    assert cli.main(["rules", "check", "--rules", str(root)]) == 1
    out = capsys.readouterr().out
    assert f"tasks.yaml:{line}: task 7: reused_file must be one of warn, reject; found 'maybe'" in out
