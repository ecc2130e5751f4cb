"""Checking workbooks against the template: finding the cover and task sheets, then every cell.

The 双公示 sheet spec is written here by hand (DOMAIN.md §2), so these tests do not depend on
rules/; fixtures are in tests/data/workbooks (see make_fixtures.py for the program behind each).
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from mailbot.intake.filetype import sniff
from mailbot.model import Column, CoverSpec, RowCheck, Severity, SheetSpec, Table, Workbook, FileKind
from mailbot.intake.validate import (check_cover, check_sheet, match_sheets, normalize_header, parse_date, parse_month,
                              parse_number, read_cover, unmatched_sheets, validate_workbook, CoverValue)
from mailbot.intake.workbook import read_workbook
from mailbot.dates.workdays import WorkCalendar

WB = Path(__file__).resolve().parent / "data" / "workbooks"
CAL = WorkCalendar()

KINDS = ("法人及非法人组织", "自然人", "个体工商户")
PENALTIES = ("警告", "罚款", "没收违法所得", "没收非法财物", "责令停产停业", "暂扣或者吊销许可证", "其他")
LATE = RowCheck("within_working_days", "决定日期", "上报日期", 7, code="late-upload", counts_against="及时率")
SGS = SheetSpec(task=3, name="双公示台账", aliases=("双公示", "行政处罚双公示"), columns=(
    Column("序号", "integer"),
    Column("行政相对人名称", "text", required=True),
    Column("行政相对人类别", "enum", required=True, choices=KINDS),
    Column("统一社会信用代码", "credit_code", required_if=("行政相对人类别", ("法人及非法人组织", "个体工商户")),
           aliases=("代码_1统一社会信用代码",)),
    Column("法定代表人", "text"),
    Column("决定书文号", "text", required=True),
    Column("处罚类别", "enum", required=True, choices=PENALTIES),
    Column("罚款金额（万元）", "number", required_if=("处罚类别", ("罚款",)), minimum=0),
    Column("决定日期", "date", required=True),
    Column("上报日期", "date", required=True),
    Column("备注", "text"),
), row_checks=(LATE,))
COVER = CoverSpec("封面", ("首页",), (
    Column("报送科室", required=True), Column("报送月份", "month", required=True),
    Column("联系人", required=True), Column("联系电话", "phone", required=True)))
HEADER = tuple(c.name for c in SGS.columns)


def load(name: str) -> Workbook:
    content = (WB / name).read_bytes()
    return read_workbook(content, sniff(content, name)[0], name=name)


def book(*tables: Table, date1904: bool = False) -> Workbook:
    return Workbook(FileKind.XLSX, tables, date1904)


def sheet(rows, name="双公示台账", spec=SGS, calendar=CAL, **kw):
    """Check a hand-made table whose header is the spec's (row 1) followed by `rows`."""
    table = Table(name, (HEADER, *[tuple(r) + (None,) * (len(HEADER) - len(r)) for r in rows]))
    [m] = match_sheets(book(table), [spec])
    return check_sheet(m, table, calendar, **kw)


def row(**values):
    base = dict(行政相对人名称="某公司", 行政相对人类别="法人及非法人组织", 统一社会信用代码="91350100M000100Y43",
                决定书文号="罚〔2026〕1号", 处罚类别="警告", 决定日期="2026-10-09", 上报日期="2026-10-12")
    base.update(values)
    return tuple(base.get(h) for h in HEADER)


def found(report):
    return [(p.code, p.cell, p.message) for p in report.problems]


# ---------------------------------------------------------------- headers

@pytest.mark.parametrize("raw, norm", [
    ("决定　日期", "决定日期"),
    ("＊行政相对人名称", "行政相对人名称"),
    ("*行政相对人名称（必填）", "行政相对人名称"),
    ("统一社会信用代码\n（必填）", "统一社会信用代码"),
    ("罚款金额（万元）", "罚款金额(万元)"),
    ("罚款金额【万元】", "罚款金额(万元)"),
    (" 行政相对人 类别 ", "行政相对人类别"),
    ("ＡＢＣ", "abc"),
    (None, ""),
    (12, "12"),
])
def test_normalize_header(raw, norm):
    assert normalize_header(raw) == norm


# ---------------------------------------------------------------- the cover

@pytest.mark.parametrize("name", ["sgs_valid.xlsx", "sgs_valid.xls", "sgs_valid.ods"])
def test_read_cover(name):
    assert read_cover(load(name), COVER) == {
        "报送科室": CoverValue("政策法规科", "A3", "A3"),          # label and value in one cell
        "报送月份": CoverValue("2026年10月", "B4", "A4"),          # '报送月份：' with a colon
        "联系人": CoverValue("张三", "B5", "A5"),
        "联系电话": CoverValue("0531-87654321", "D5", "C5"),
    }


def test_check_cover_normalises():
    values, problems = check_cover(load("sgs_valid.xlsx"), COVER)
    assert values == {"报送科室": "政策法规科", "报送月份": "2026-10", "联系人": "张三", "联系电话": "0531-87654321"}
    assert problems == ()


def test_cover_value_below_its_label_and_alias_sheet_name():
    cover = Table("首页", (("报送科室", "报送月份"), ("办公室", dt.date(2026, 10, 1)), ("联系人：", None),
                          (None, None), ("联系电话", "12345")))
    values, problems = check_cover(book(cover), COVER)
    assert values == {"报送科室": "办公室", "报送月份": "2026-10"}
    assert [(p.code, p.cell, p.message) for p in problems] == [
        ("missing-cover-value", "B3", "工作表'首页'第3行'联系人'(B3): 封面的'联系人'未填写"),
        ("bad-phone", "B5", "工作表'首页'第5行'联系电话'(B5): '12345'不是有效的电话号码；"
                             "请填写手机号或带区号的座机号（如0531-12345678）"),
    ]


def test_cover_found_on_an_unnamed_first_sheet_only():
    first = Table("Sheet1", (("报送科室：办公室",), ("报送月份", "2026年10月")))
    assert set(read_cover(book(first), COVER)) == {"报送科室", "报送月份"}
    ledger = Table("Sheet2", (("序号", "联系人", "联系电话"), (1, "张三", "13812345678")))
    assert read_cover(book(Table("说明", (("x",),)), ledger), COVER) == {}


def test_missing_cover_is_a_warning():
    values, problems = check_cover(load("sgs_broken.xlsx"), COVER)
    assert values == {}
    assert [(p.code, p.severity, p.message) for p in problems] == [
        ("missing-cover", Severity.WARNING, "未找到封面工作表（'封面、首页'），无法从封面读取报送科室和月份")]


# ---------------------------------------------------------------- matching sheets

def test_match_by_sheet_name_with_title_rows_above_the_header():
    wb = load("sgs_valid.xlsx")
    [m] = match_sheets(wb, [SGS])
    assert (m.table, m.how, m.header_row, m.missing, m.extra, m.numbering) == ("双公示台账", "sheet-name", 2, (), (), 0)
    assert m.columns == {name: i for i, name in enumerate(HEADER)}
    assert unmatched_sheets(wb, [m]) == ("封面",)


def test_sheet1_recognised_by_its_header():
    [m] = match_sheets(load("sgs_sheet1.xlsx"), [SGS])
    assert (m.table, m.how, m.header_row) == ("Sheet1", "header", 1)
    assert m.columns == {"决定日期": 0, "行政相对人名称": 1, "统一社会信用代码": 2, "行政相对人类别": 3, "决定书文号": 4,
                         "处罚类别": 5, "上报日期": 6, "罚款金额（万元）": 7, "备注": 8}
    assert m.missing == ("序号", "法定代表人")


def test_match_by_alias_and_column_alias():
    table = Table("行政处罚 双公示", (("序号", "代码_1 统一社会信用代码", "决定日期(YYYY/MM/DD)"),))
    [m] = match_sheets(book(table), [SGS])
    assert m.how == "sheet-alias"
    assert m.columns == {"序号": 0, "统一社会信用代码": 1, "决定日期": 2}


def test_unrelated_sheets_match_nothing():
    notes = Table("填表说明", (("一、本表按月填报",), ("二、日期格式为2026-10-01",)))
    cover = Table("Sheet2", (("报送科室", "办公室"),))
    assert match_sheets(book(notes, cover), [SGS]) == []


def test_two_header_rows():
    table = Table("Sheet1", (
        ("序号", "行政相对人名称", "行政相对人代码", None, "行政相对人类别", "决定书文号", "处罚类别", "决定日期", "上报日期"),
        (None, None, "统一社会信用代码", "工商注册号", None, None, None, None, None),
        (1, "某公司", "91350100M000100Y43", None, "法人及非法人组织", "罚〔2026〕1号", "警告", "2026-10-09", "2026-10-12"),
    ))
    [m] = match_sheets(book(table), [SGS])
    assert m.header_row == 1 and m.columns["统一社会信用代码"] == 2 and m.columns["决定日期"] == 7
    assert m.extra == ("工商注册号",)      # the merged group header sits over a known column
    report = check_sheet(m, table, CAL)
    assert report.rows == 1 and report.errors == ()


# ---------------------------------------------------------------- whole sheets from fixtures

@pytest.mark.parametrize("name", ["sgs_valid.xlsx", "sgs_valid.xls", "sgs_valid.ods"])
def test_valid_ledger(name):
    report = validate_workbook(load(name), [SGS], CAL)
    assert report.rows == 4 and report.unmatched == ("封面",)
    assert found(report.reports["双公示台账"]) == [(
        "placeholder-credit-code", "D5",
        "工作表'双公示台账'第5行'统一社会信用代码'(D5): 统一社会信用代码填写的是占位码'00000000000000000X'"
        "（无统一社会信用代码的个体工商户），请确认已同时填写工商注册号")]
    data = report.reports["双公示台账"].data
    assert [(d["决定日期"], d["上报日期"]) for d in data] == [
        (dt.date(2026, 9, 29), dt.date(2026, 10, 1)),      # Excel serials 46294, 46296
        (dt.date(2026, 10, 9), dt.date(2026, 10, 12)),     # date cells
        (dt.date(2026, 10, 9), dt.date(2026, 10, 13)),     # '2026/10/9', '2026年10月13日'
        (dt.date(2026, 10, 13), dt.date(2026, 10, 14)),    # '2026.10.13', '20261014'
    ]
    assert [d["罚款金额（万元）"] for d in data] == [0.2, None, 1234.5, 3]
    assert data[3]["统一社会信用代码"] == "91110000600037341L"      # full-width normalised
    assert data[1]["统一社会信用代码"] == "00000000000000000X"


def test_sheet1_ledger():
    report = validate_workbook(load("sgs_sheet1.xlsx"), [SGS], CAL)
    assert [(p.code, p.severity) for p in report.problems[:2]] == [("missing-column", Severity.WARNING)] * 2
    assert report.problems[0].message == "工作表'Sheet1'缺少'序号'列（非必填列，建议按模板补上）"
    # headers differing from the template's only by spaces or width are read, and the cell is named
    read = {p.cell: p.message for p in report.problems[2:]}
    assert all(p.code == "header-read-as" and not p.is_error for p in report.problems[2:])
    assert read == {"A2": "工作表'Sheet1'A2 列名'决定　日期'按'决定日期'处理",
                    "D2": "工作表'Sheet1'D2 列名'行政相对人 类别'按'行政相对人类别'处理",
                    "H2": "工作表'Sheet1'H2 列名'罚款金额(万元)'按'罚款金额（万元）'处理",
                    "I2": "工作表'Sheet1'I2 列名'备　注'按'备注'处理"}
    assert report.rows == 1 and report.reports["Sheet1"].data[0]["决定日期"] == dt.date(2026, 10, 20)


BROKEN = [
    ("missing-column", None, "工作表'双公示台账'缺少'备注'列（非必填列，建议按模板补上）"),
    ("bad-date", "I4", "工作表'双公示台账'第4行'决定日期'(I4): '2026.13.01'不是有效日期（没有13月）"),
    ("bad-credit-code", "D5", "工作表'双公示台账'第5行'统一社会信用代码'(D5): 统一社会信用代码'91350100M000100Y4Z'"
                              "校验位错误：按GB 32100-2015计算第18位应为'3'，实为'Z'；请核对代码是否抄错"),
    ("missing-value", "B6", "工作表'双公示台账'第6行'行政相对人名称'(B6): 必填项未填写"),
    ("missing-value", "F6", "工作表'双公示台账'第6行'决定书文号'(F6): 必填项未填写"),
    ("late-upload", "J7", "工作表'双公示台账'第7行'上报日期'(J7): 决定日期2026-09-28，上报日期2026-10-15，"
                          "超过7个工作日（应于2026-10-13前上报），计入及时率"),
    ("bad-choice", "C8", "工作表'双公示台账'第8行'行政相对人类别'(C8): '法人'不是允许的取值；"
                         "应为以下之一：法人及非法人组织、自然人、个体工商户"),
    ("bad-number", "H8", "工作表'双公示台账'第8行'罚款金额（万元）'(H8): '12万'不是数字；本列单位为万元，请只填写数字，12万应填12"),
]


@pytest.mark.parametrize("name", ["sgs_broken.xlsx", "sgs_broken.xls"])
def test_broken_ledger_reports_everything_at_once_in_order(name):
    report = validate_workbook(load(name), [SGS], CAL)
    assert found(report) == BROKEN
    late = report.problems[5]
    assert (late.severity, late.sheet, late.row, late.column, late.cell) == (
        Severity.WARNING, "双公示台账", 7, "上报日期", "J7")
    bad = report.problems[1]
    assert (bad.sheet, bad.row, bad.column, bad.cell) == ("双公示台账", 4, "决定日期", "I4")
    # five rows read ('合计' ends the ledger); only the late one (a warning) is accepted
    assert report.rows == 5
    assert [d["序号"] for d in report.reports["双公示台账"].data] == [4]


def test_csv_ledger():
    report = validate_workbook(load("sgs_gbk.csv"), [SGS], CAL)
    assert [m.how for m in report.matches] == ["header"]
    assert found(report) == [("missing-column", None, "工作表'sgs_gbk'缺少'备注'列（非必填列，建议按模板补上）")]
    assert report.reports["sgs_gbk"].data[0]["罚款金额（万元）"] == 0.2


def test_1904_serials():
    spec = SheetSpec(3, "双公示台账", columns=(Column("决定日期", "date"), Column("上报日期", "date")))
    report = validate_workbook(load("date1904.xlsx"), [spec], CAL)
    assert report.reports["双公示台账"].data == ({"决定日期": dt.date(2026, 10, 9), "上报日期": dt.date(2026, 9, 29)},)


# ---------------------------------------------------------------- cells

def test_missing_required_column_names_the_header_row():
    table = Table("双公示台账", (("台账",), tuple(h for h in HEADER if h != "决定日期"), row()))
    [m] = match_sheets(book(table), [SGS])
    report = check_sheet(m, table, CAL)
    assert [(p.code, p.severity, p.message) for p in report.problems] == [(
        "missing-column", Severity.ERROR, "工作表'双公示台账'缺少'决定日期'列；请按模板补上该列（表头应在第2行）")]


def test_no_header_at_all():
    table = Table("双公示台账", (("随便写的",), ("内容",)))
    [m] = match_sheets(book(table), [SGS])
    assert found(check_sheet(m, table, CAL)) == [(
        "missing-header", None,
        "工作表'双公示台账'的前10行中找不到表头（应有'序号'、'行政相对人名称'、'行政相对人类别'等列）；请使用模板的表头")]


def test_empty_sheet_and_allow_empty():
    assert found(sheet([[1], []])) == [
        ("empty-sheet", None, "工作表'双公示台账'第1行表头以下没有任何数据；请填写本月台账后重新发送")]
    relaxed = SheetSpec(3, "双公示台账", columns=SGS.columns, allow_empty=True)
    assert sheet([], spec=relaxed).problems == ()


def test_blank_serial_only_subtotal_and_footer_rows():
    report = sheet([row(), [7], [], ("小计",), row(决定书文号="罚〔2026〕2号"), ("合计",), row(行政相对人名称=None)])
    assert report.rows == 2 and report.problems == ()


def test_required_if():
    report = sheet([row(处罚类别="罚款"), row(行政相对人类别="自然人", 统一社会信用代码=None),
                    row(行政相对人类别="个体工商户", 统一社会信用代码="无")])
    assert found(report) == [
        ("missing-value", "H2", "工作表'双公示台账'第2行'罚款金额（万元）'(H2): '处罚类别'为'罚款'时必填，但未填写"),
        ("missing-value", "D4", "工作表'双公示台账'第4行'统一社会信用代码'(D4): "
                                "'行政相对人类别'为'个体工商户'时必填，但未填写，填写的'无'不算"),
    ]


@pytest.mark.parametrize("value, expected", [
    (46294, dt.date(2026, 9, 29)),
    (46294.75, dt.date(2026, 9, 29)),
    (dt.datetime(2026, 11, 3, 10, 30), dt.date(2026, 11, 3)),
    ("2026-11-03", dt.date(2026, 11, 3)),
    ("2026/11/3", dt.date(2026, 11, 3)),
    ("2026.11.03", dt.date(2026, 11, 3)),
    ("2026年11月3日", dt.date(2026, 11, 3)),
    ("2026 年 11 月 3 日", dt.date(2026, 11, 3)),
    ("２０２６－１１－０３", dt.date(2026, 11, 3)),
    ("20261103", dt.date(2026, 11, 3)),
    (20261103, dt.date(2026, 11, 3)),
    ("2026-11-03 09:30:00", dt.date(2026, 11, 3)),
    ("2099/12/31", dt.date(2099, 12, 31)),
])
def test_dates(value, expected):
    assert parse_date(value) == (expected, None)


@pytest.mark.parametrize("value, why", [
    ("2026.13.01", "'2026.13.01'不是有效日期（没有13月）"),
    ("2026-02-30", "'2026-02-30'不是有效日期（2026年2月没有30日）"),
    ("下月初", "'下月初'不是有效日期；请按'2026-11-03'或'2026/11/3'的格式填写"),
    ("11/3/2026", "'11/3/2026'不是有效日期；请按'2026-11-03'或'2026/11/3'的格式填写"),
    (60, "'60'不是有效日期"),
    (5, "'5'的年份1900不合理，请检查日期"),
    (dt.time(10, 30), "'10:30:00'是时间，不是日期"),
])
def test_bad_dates(value, why):
    assert parse_date(value) == (None, why)


def test_1904_serial_conversion():
    assert parse_date(44832, date1904=True) == (dt.date(2026, 9, 29), None)


@pytest.mark.parametrize("value, month", [
    ("2026年10月", "2026-10"), ("2026-10", "2026-10"), ("2026.10", "2026-10"), ("202610", "2026-10"),
    ("２０２６年１０月份", "2026-10"), (dt.date(2026, 10, 1), "2026-10"), ("2026年13月", None), ("十月", None),
])
def test_months(value, month):
    assert parse_month(value) == month


@pytest.mark.parametrize("value, unit, result", [
    ("1,234.5", None, (1234.5, None)),
    ("１２３", None, (123, None)),
    (" 0.2 ", "万元", (0.2, None)),
    (3, "万元", (3, None)),
    ("12万", "万元", (None, "'12万'不是数字；本列单位为万元，请只填写数字，12万应填12")),
    ("2000元", "万元", (None, "'2000元'不是数字；本列单位为万元，请只填写数字，2000元应填0.2")),
    ("1.5万元", "元", (None, "'1.5万元'不是数字；本列单位为元，请只填写数字，1.5万元应填15000")),
    ("12万", None, (None, "'12万'不是数字；请去掉单位'万'，只填写数字")),
    ("约5", None, (None, "'约5'不是数字；请只填写数字")),
    ("1,23", None, (None, "'1,23'不是数字；请只填写数字")),
])
def test_numbers(value, unit, result):
    assert parse_number(value, unit) == result


def test_cell_type_problems():
    report = sheet([
        row(处罚类别="罚款", **{"罚款金额（万元）": -1}),
        row(序号="一"),
        row(统一社会信用代码=913701131234567890.0),
        row(处罚类别=" 警 告 "),
    ])
    assert found(report) == [
        ("out-of-range", "H2", "工作表'双公示台账'第2行'罚款金额（万元）'(H2): '-1'小于最小值0"),
        ("bad-number", "A3", "工作表'双公示台账'第3行'序号'(A3): '一'不是数字；请只填写数字"),
        ("bad-credit-code", "D4", "工作表'双公示台账'第4行'统一社会信用代码'(D4): 统一社会信用代码以数字格式保存，"
                                  "Excel只保留15位有效数字，后几位已丢失（读到'913701131234567936'）；"
                                  "请将该列设为'文本'格式后重新填写"),
    ]
    assert report.data[-1]["处罚类别"] == "警告"


def test_phones():
    spec = SheetSpec(1, "联系人", columns=(Column("姓名", required=True), Column("电话", "phone")))
    table = Table("联系人", (("姓名", "电话"), ("甲", "13812345678"), ("乙", "0531-8765 4321转8001"),
                            ("丙", "(0531)87654321/13812345678"), ("丁", 13812345678), ("戊", "123"), ("己", "无")))
    [m] = match_sheets(book(table), [spec])
    report = check_sheet(m, table, CAL)
    assert [(p.code, p.cell) for p in report.problems] == [("bad-phone", "B6")]
    assert report.data[3]["电话"] == "13812345678"


# ---------------------------------------------------------------- row checks

def test_late_across_national_day_is_a_warning_naming_the_due_date():
    report = sheet([row(决定日期="2026-09-28", 上报日期="2026-10-13"), row(决定日期="2026-09-28", 上报日期="2026-10-14")])
    assert found(report) == [("late-upload", "J3", "工作表'双公示台账'第3行'上报日期'(J3): 决定日期2026-09-28，"
                                                 "上报日期2026-10-14，超过7个工作日（应于2026-10-13前上报），计入及时率")]
    assert len(report.data) == 2      # a warning does not drop the row


def test_other_row_checks_and_custom_message():
    spec = SheetSpec(3, "双公示台账", columns=SGS.columns, row_checks=(
        RowCheck("within_hours", "决定日期", "上报日期", 24, code="late-24h"),
        RowCheck("not_before", "决定日期", "上报日期", code="upload-before-decision", severity=Severity.ERROR),
        RowCheck("within_working_days", "决定日期", "上报日期", 1, code="late-1wd",
                 message="{later}{later_date}晚于{due}（{earlier}后{limit}个工作日）"),
    ))
    report = sheet([row(决定日期="2026-09-30", 上报日期="2026-10-08"),
                    row(决定日期="2026-09-30", 上报日期="2026-10-09"),
                    row(决定日期="2026-10-09", 上报日期="2026-10-01")], spec=spec)
    assert found(report) == [
        ("late-24h", "J2", "工作表'双公示台账'第2行'上报日期'(J2): 决定日期2026-09-30，上报日期2026-10-08，"
                           "超过24小时（按日期计应不晚于2026-10-01）"),
        ("late-24h", "J3", "工作表'双公示台账'第3行'上报日期'(J3): 决定日期2026-09-30，上报日期2026-10-09，"
                           "超过24小时（按日期计应不晚于2026-10-01）"),
        ("late-1wd", "J3", "工作表'双公示台账'第3行'上报日期'(J3): 上报日期2026-10-09晚于2026-10-08（决定日期后1个工作日）"),
        ("upload-before-decision", "J4", "工作表'双公示台账'第4行'上报日期'(J4): 决定日期2026-10-09，"
                                         "上报日期2026-10-01，上报日期早于决定日期"),
    ]
    assert [d["决定日期"] for d in report.data] == [dt.date(2026, 9, 30)] * 2   # the error row is dropped


def test_a_plain_rule_message_becomes_the_hint():
    spec = SheetSpec(3, "双公示台账", columns=SGS.columns, row_checks=(
        RowCheck("within_working_days", "决定日期", "上报日期", 7, code="late-publication", counts_against="及时率",
                 message='"双公示"信息应自作出行政决定之日起7个工作日内上传至市信用平台'),))
    [p] = sheet([row(决定日期="2026-09-28", 上报日期="2026-10-15")], spec=spec).problems
    assert p.message == ("工作表'双公示台账'第2行'上报日期'(J2): 决定日期2026-09-28，上报日期2026-10-15，"
                         "超过7个工作日（应于2026-10-13前上报），计入及时率")
    assert p.hint == '"双公示"信息应自作出行政决定之日起7个工作日内上传至市信用平台'


def test_a_provisional_year_is_checked_and_the_problem_says_so():
    report = sheet([row(决定日期="2027-01-04", 上报日期="2027-01-05"), row(决定日期="2027-01-04", 上报日期="2027-01-20")])
    [p] = report.problems
    assert (p.code, p.cell) == ("late-upload", "J3")
    assert "应于2027-01-13前上报；2027年节假日安排尚未公布，工作日按法定节假日预估" in p.message
    assert len(report.data) == 2


def test_calendar_override_year_is_used():
    cal = WorkCalendar({2027: {"holidays": frozenset(), "workdays": frozenset()}})
    assert sheet([row(决定日期="2027-01-04", 上报日期="2027-01-20")], calendar=cal).problems[0].code == "late-upload"


def test_problems_are_capped_per_sheet_with_a_summary():
    report = sheet([row(决定日期="不详") for _ in range(250)], max_problems=200)
    assert len(report.problems) == 201
    assert report.problems[199].cell == "I201"
    last = report.problems[-1]
    assert (last.code, last.severity, last.message) == (
        "too-many-problems", Severity.ERROR,
        "工作表'双公示台账'另有50个问题未逐一列出（其中错误50个）；请先按以上问题修改，再检查整张表后重新发送")
    assert report.rows == 250 and report.data == ()


# ---------------------------------------------------------------- the short ways give what the long way gives

_CELLS = [None, "", "  ", "无", "x", " 12 ", "12", "12.5", "1,234.5", "12万", "-3", 0, 7, -2, 12.5, 7.0, 1e16, True,
          float("nan"), float("inf"), dt.date(2026, 11, 3), dt.date(1900, 1, 1), dt.date(2101, 1, 1),
          dt.datetime(2026, 11, 3, 10, 30), dt.datetime(1800, 1, 1), dt.time(10, 30), dt.timedelta(days=1),
          "2026-11-03", "2026年11月3日", 20261103, 46000, "91370113MA3C4XYZ0", " 913701130000000000 ",
          "91370113MA3C4XYO0", 913701130000000000.0, "罚款", " 罚 款 ", "法人及非法人组织", "0531-87221318", "2026年10月"]


@pytest.mark.parametrize("column", [
    Column("序号", "integer"), Column("人数", "integer", minimum=1, maximum=100), Column("金额（万元）", "number", minimum=0),
    Column("金额", "number", maximum=10.5), Column("日期", "date"), Column("月份", "month"), Column("代码", "credit_code"),
    Column("类别", "enum", choices=PENALTIES), Column("电话", "phone"), Column("名称", "text")], ids=lambda c: c.type)
def test_each_column_checker_judges_as_check_value(column):
    from mailbot.intake.validate import _SOLID, _cell_text, _check_value, _checker
    check = _checker(column)
    for raw in _CELLS:
        if raw is None or not _cell_text(raw):
            continue            # an empty cell never reaches a checker
        for date1904 in (False, True):
            text = None if type(raw) in _SOLID else _cell_text(raw)
            value, issues = check(raw, text, date1904)
            expected_value, expected_issues = _check_value(raw, column, date1904)
            assert (repr(value), type(value), list(issues)) == (repr(expected_value), type(expected_value),
                                                                list(expected_issues)), raw
