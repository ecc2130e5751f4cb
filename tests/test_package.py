"""The monthly package, the evidence zip and the year-end score: built from plain values for a
constructed month, read back with openpyxl and with calamine."""
from __future__ import annotations

import dataclasses
import datetime as dt
import io
import zipfile
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import openpyxl
import pytest
from python_calamine import CalamineWorkbook

from mailbot.duties.package import (
    INDEX_SHEET, RATES_SHEET, SCORE_NOTES_SHEET, SCORE_SHEET, SCORE_SUMMARY_SHEET, STATUS_SHEET,
    build_evidence_zip, build_package, build_score, dual_publicity_rates, evidence_zip_filename,
    package_filename, score_filename,
)
from mailbot.rules import load_rules

BJ = dt.timezone(dt.timedelta(hours=8))
PERIOD = "2026-11"
GENERATED = dt.datetime(2026, 12, 1, 9, 30, tzinfo=BJ)
INJECTIONS = ['=HYPERLINK("http://x","y")', "-1+1", "@SUM(A1)", "+86 531 1234"]


@pytest.fixture(scope="module")
def rules(rules_dir):
    return load_rules(rules_dir)


@dataclass
class Sub:
    section: str | None
    task: int
    period: str
    status: str
    rows: int
    data: dict[str, Any]
    receipt_no: str
    received_at: dt.datetime
    warnings: tuple[dict[str, Any], ...] = ()
    errors: tuple[dict[str, Any], ...] = ()
    filename: str = "台账.xlsx"
    superseded_by: int | None = None
    on_time: bool | None = True
    sha256: str = "0" * 64
    reused_from: Any = None


@dataclass
class Cell:
    section: str
    task: int
    period: str
    state: str
    submitted_at: dt.datetime | None = None
    receipt_no: str | None = None


@dataclass
class Score:
    section: str
    task: int
    due: int
    on_time: int
    late: int
    missing: int
    rejected_first_time: int
    not_due: int = 0
    count: int | None = None
    required: int | None = None


def _sgs_row(n: int, content: str, code: str = "91370113MA3C0AAA0A") -> dict[str, Any]:
    return {"序号": n, "信息类别": "行政处罚", "行政相对人名称": f"济南某某商贸有限公司{n}",
            "行政相对人类别": "法人及非法人组织", "统一社会信用代码": code, "法定代表人": "张三",
            "决定书文号": f"长市监罚〔2026〕{n}号", "处罚类别或许可类别": "罚款", "决定内容": content,
            "罚款金额（万元）": 0.2, "决定日期": "2026-11-02", "上报日期": "2026-11-05",
            "决定机关": "济南市长清区市场监督管理局", "备注": None}


def _warning(code: str, row: int, message: str = "提示") -> dict[str, Any]:
    return {"code": code, "severity": "warning", "message": message, "sheet": "双公示台账", "row": row}


def _month() -> list[Sub]:
    """政策法规科: one current 双公示 ledger (4 rows: 2 late, 1 placeholder code), one rejected
    (3 rows), one superseded (2 rows) and last month's; 信用监管科 and 食品生产科: task 8."""
    sgs = [_sgs_row(i + 1, text) for i, text in enumerate(INJECTIONS)]
    sgs[2]["统一社会信用代码"] = "00000000000000000X"
    return [
        Sub("政策法规科", 3, PERIOD, "accepted", 4, {"双公示台账": sgs}, "XY20261120-00007",
            dt.datetime(2026, 11, 20, 2, 15, tzinfo=dt.timezone.utc),
            warnings=(_warning("placeholder-credit-code", 5, "统一社会信用代码填写的是占位码"),
                      _warning("late-publication", 4, "超过7个工作日"),
                      _warning("late-publication", 6, "超过7个工作日")),
            filename="双公示11月.xlsx"),
        Sub("政策法规科", 3, PERIOD, "rejected", 3, {}, "XY20261110-00003",
            dt.datetime(2026, 11, 10, 8, 0, tzinfo=BJ),
            errors=({"code": "missing-value", "severity": "error", "message": "第4行'决定日期'未填写"},
                    {"code": "bad-date", "severity": "error", "message": "第5行日期有误"}),
            filename="双公示.xlsx"),
        Sub("政策法规科", 3, PERIOD, "accepted", 2, {"双公示台账": [_sgs_row(9, "旧版本")]},
            "XY20261115-00005", dt.datetime(2026, 11, 15, 8, 0, tzinfo=BJ), superseded_by=7),
        Sub("政策法规科", 3, "2026-10", "accepted", 1, {"双公示台账": [_sgs_row(8, "上个月")]},
            "XY20261020-00001", dt.datetime(2026, 10, 20, 8, 0, tzinfo=BJ)),
        Sub("信用监管科", 8, PERIOD, "accepted", 2, {"分级分类": [  # an alias sheet name as read
            {"序号": 1, "监管领域": "食品销售", "工作类别": "开展分级分类监管", "工作内容": "开展A级评定",
             "覆盖主体数": 120, "完成日期": "2026-11-12"},
            {"序号": 2, "监管领域": "餐饮服务", "工作类别": "典型案例", "工作内容": "某案例",
             "覆盖主体数": 3, "完成日期": "2026-11-18"}]},
            "XY20261121-00009", dt.datetime(2026, 11, 21, 9, 0, tzinfo=BJ)),
        Sub("食品生产科", 8, PERIOD, "accepted", 1, {"分级分类监管台账": [
            {"序号": 1, "监管领域": "食品生产", "工作类别": "制定工作方案", "工作内容": "制定方案",
             "完成日期": "2026-11-03"}]},
            "XY20261104-00002", dt.datetime(2026, 11, 4, 16, 45, tzinfo=BJ)),
        Sub("宣传科", 5, PERIOD, "accepted", 0, {"信用动态台账": []}, "XY20261122-00010",
            dt.datetime(2026, 11, 22, 10, 0, tzinfo=BJ)),
    ]


def _cells(rules) -> list[Cell]:
    cells = []
    for s in rules.sections:
        for t in rules.tasks:
            if s.id not in t.sections:
                cells.append(Cell(s.id, t.number, PERIOD, "not_applicable"))
            else:
                cells.append(Cell(s.id, t.number, PERIOD, "missing"))
    special = {("政策法规科", 3): Cell("政策法规科", 3, PERIOD, "on_time", dt.datetime(2026, 11, 20, 10, 15, tzinfo=BJ),
                                       "XY20261120-00007"),
               ("信用监管科", 8): Cell("信用监管科", 8, PERIOD, "on_time", dt.datetime(2026, 11, 21, 9, 0, tzinfo=BJ),
                                       "XY20261121-00009"),
               ("食品生产科", 8): Cell("食品生产科", 8, PERIOD, "late", dt.datetime(2026, 11, 26, 9, 0, tzinfo=BJ),
                                       "XY20261126-00011"),
               ("宣传科", 5): Cell("宣传科", 5, PERIOD, "not_due")}
    return [special.get((c.section, c.task), c) for c in cells]


@pytest.fixture(scope="module")
def package(rules) -> bytes:
    return build_package(rules, PERIOD, _month(), _cells(rules), generated_at=GENERATED)


def _calamine(data: bytes) -> CalamineWorkbook:
    return CalamineWorkbook.from_filelike(io.BytesIO(data))


# ---------------------------------------------------------------- rates

def test_rates_of_the_constructed_month(rules):
    r = dual_publicity_rates(rules, PERIOD, _month())
    assert r.task == 3
    assert r.responsible_sections == ("政策法规科",) and r.reported_sections == ("政策法规科",)
    assert r.report_rate == 1.0
    # 4 accepted rows + 3 rows of the rejected file; the superseded and October ones count nowhere
    assert (r.rows_compliant, r.rows_submitted) == (4, 7)
    assert r.compliance_rate == pytest.approx(4 / 7)
    # rows 4 and 6 carry late-publication; the placeholder code lowers no rate
    assert (r.rows_timely, r.rows_accepted) == (2, 4)
    assert r.timeliness_rate == 0.5
    assert not r.incomplete
    codes = [(p.code, p.counts_against) for p in r.problems]
    assert codes == [("placeholder-credit-code", ""), ("late-publication", "及时率"),
                     ("late-publication", "及时率"), ("rejected", "合规率")]
    assert "3行计为不合规" in r.problems[-1].message and "另有1个错误" in r.problems[-1].message


def test_report_rate_counts_responsible_sections(rules):
    # two sections responsible, one of them reported: 50%
    t3 = rules.task(3)
    two = dataclasses.replace(rules, tasks=tuple(
        dataclasses.replace(t, sections=("政策法规科", "信用监管科")) if t is t3 else t for t in rules.tasks))
    r = dual_publicity_rates(two, PERIOD, _month())
    assert r.reported_sections == ("政策法规科",) and r.report_rate == 0.5
    # nothing at all: 上报率 0, the other two have nothing to measure
    empty = dual_publicity_rates(two, PERIOD, [])
    assert empty.report_rate == 0.0 and empty.compliance_rate is None and empty.timeliness_rate is None


def test_same_row_warned_twice_counts_once_and_capped_warnings_are_flagged(rules):
    s = _month()[0]
    s = dataclasses.replace(s, warnings=s.warnings + (
        _warning("late-publication", 4),
        {"code": "too-many-problems", "severity": "warning", "message": "另有300个问题", "sheet": "双公示台账"}))
    r = dual_publicity_rates(rules, PERIOD, [s])
    assert (r.rows_timely, r.rows_accepted) == (2, 4)
    assert r.incomplete


# ---------------------------------------------------------------- the package workbook

def test_package_sheets_and_index(rules, package):
    wb = openpyxl.load_workbook(io.BytesIO(package))
    ledgers = [s.name for s in rules.sheets]
    assert wb.sheetnames == [INDEX_SHEET, STATUS_SHEET, RATES_SHEET] + ledgers
    assert _calamine(package).sheet_names == wb.sheetnames

    ws = wb[INDEX_SHEET]
    assert ws["A1"].value == "2026年11月信用状况监测分析报送材料汇总"
    texts = {ws.cell(r, 1).value: ws.cell(r, 2).value for r in range(2, 6)}
    assert texts["统计月份"] == "2026年11月"
    assert texts["生成时间"] == "2026-12-01 09:30(北京时间)"
    assert texts["已报送科室"] == "4个:政策法规科、信用监管科、宣传科、食品生产科"
    # the table of contents: every other sheet, with a link and its row count
    head = next(r for r in range(1, 20) if ws.cell(r, 1).value == "序号")
    assert [ws.cell(head, c).value for c in range(1, 5)] == ["序号", "工作表", "内容", "行数"]
    listed = {}
    for r in range(head + 1, head + 1 + len(wb.sheetnames) - 1):
        name = ws.cell(r, 2).value
        assert ws.cell(r, 2).hyperlink.location == f"'{name}'!A1"
        listed[name] = ws.cell(r, 4).value
    assert list(listed) == wb.sheetnames[1:]
    assert listed["双公示台账"] == 4 and listed["分级分类监管台账"] == 3 and listed["信用动态台账"] == 0
    assert listed[STATUS_SHEET] == len(rules.sections)


def test_ledger_sheets_merge_sections_with_the_template_columns(rules, package):
    wb = openpyxl.load_workbook(io.BytesIO(package))
    cal = _calamine(package)
    for spec in rules.sheets:
        ws = wb[spec.name]
        header = [c.value for c in ws[2]]
        assert header == ["报送科室", *(c.name for c in spec.columns), "回执编号", "报送时间"]
        assert ws["A1"].value == f"{spec.title}(2026年11月)"
        assert cal.get_sheet_by_name(spec.name).to_python()[1] == header

    rows = cal.get_sheet_by_name("分级分类监管台账").to_python()[2:]
    # section order of rules/sections.yaml; the alias sheet name "分级分类" landed here
    assert [(r[0], r[1], r[3]) for r in rows] == [
        ("信用监管科", 1, "开展分级分类监管"), ("信用监管科", 2, "典型案例"), ("食品生产科", 1, "制定工作方案")]
    header = cal.get_sheet_by_name("分级分类监管台账").to_python()[1]
    done = header.index("完成日期")
    assert rows[0][done] == dt.date(2026, 11, 12)                 # a real date again, not text
    assert rows[2][header.index("覆盖主体数")] == ""               # blank stays blank
    assert rows[2][-2] == "XY20261104-00002"
    assert rows[2][-1] == dt.datetime(2026, 11, 4, 16, 45)        # Beijing wall time

    ws = wb["双公示台账"]
    data = [[c.value for c in row] for row in ws.iter_rows(min_row=3)]
    assert len(data) == 4                                          # not the superseded nor October's
    assert {r[0] for r in data} == {"政策法规科"}
    assert data[0][-1] == dt.datetime(2026, 11, 20, 10, 15)       # 02:15 UTC
    assert ws.cell(3, 1 + 1 + [c.name for c in rules.sheet("双公示台账").columns].index("罚款金额（万元）")).value == 0.2
    assert wb["信用动态台账"].max_row == 2                         # header only


def test_formula_like_text_stays_text(rules, package):
    wb = openpyxl.load_workbook(io.BytesIO(package))
    ws = wb["双公示台账"]
    col = 2 + [c.name for c in rules.sheet("双公示台账").columns].index("决定内容")
    cells = [ws.cell(r, col) for r in range(3, 3 + len(INJECTIONS))]
    assert [c.value for c in cells] == INJECTIONS
    assert all(c.data_type == "s" for c in cells)
    assert all(c.quotePrefix for c in cells)
    cal = [r[col - 1] for r in _calamine(package).get_sheet_by_name("双公示台账").to_python()[2:]]
    assert cal == INJECTIONS
    # and no formula anywhere in the sheet's XML
    with zipfile.ZipFile(io.BytesIO(package)) as z:
        sheet_xml = [n for n in z.namelist() if n.startswith("xl/worksheets/sheet")]
        assert not any(b"<f>" in z.read(n) or b"<f " in z.read(n) for n in sheet_xml)


def test_formula_like_text_in_section_and_status_columns(rules):
    sub = dataclasses.replace(_month()[5], section="=cmd|' /C calc'!A0", receipt_no="@x")
    cell = Cell("=cmd|' /C calc'!A0", 8, PERIOD, "late", None, "+1")
    data = build_package(rules, PERIOD, [sub], [cell], generated_at=GENERATED)
    wb = openpyxl.load_workbook(io.BytesIO(data))
    ws = wb["分级分类监管台账"]
    assert ws["A3"].value == "=cmd|' /C calc'!A0" and ws["A3"].data_type == "s"
    status = wb[STATUS_SHEET]
    found = [c for row in status.iter_rows() for c in row if c.value in ("=cmd|' /C calc'!A0", "+1")]
    assert found and all(c.data_type == "s" for c in found)


def test_status_sheet_labels_and_colours(rules, package):
    wb = openpyxl.load_workbook(io.BytesIO(package))
    ws = wb[STATUS_SHEET]
    header = [c.value for c in ws[2]]
    assert header[0] == "科室" and header[3] == "任务3\n双公示" and len(header) == 1 + len(rules.tasks)
    names = [ws.cell(r, 1).value for r in range(3, 3 + len(rules.sections))]
    assert names == [s.id for s in rules.sections]
    at = {(ws.cell(r, 1).value, c - 1): ws.cell(r, c) for r in range(3, 3 + len(rules.sections))
          for c in range(2, 2 + len(rules.tasks))}
    assert at[("政策法规科", 3)].value == "按时报送"
    assert at[("食品生产科", 8)].value == "逾期报送"
    assert at[("宣传科", 5)].value == "未到期"
    assert at[("办公室", 9)].value == "未报送"
    assert at[("办公室", 3)].value == "不适用"
    fills = {at[k].fill.fgColor.rgb[-6:] for k in [("政策法规科", 3), ("食品生产科", 8), ("办公室", 9),
                                                    ("宣传科", 5), ("办公室", 3)]}
    assert len(fills) == 5                                   # five states, five colours
    assert at[("政策法规科", 3)].fill.fgColor.rgb[-6:] == "C6EFCE"
    assert at[("办公室", 9)].fill.fgColor.rgb[-6:] == "FFC7CE"
    # the detail list carries submission time and receipt
    rows = _calamine(package).get_sheet_by_name(STATUS_SHEET).to_python()
    detail = [r for r in rows if r[0] == "食品生产科" and r[1] == "任务8"]
    assert detail == [["食品生产科", "任务8", "逾期报送", dt.datetime(2026, 11, 26, 9, 0), "XY20261126-00011"]
                      + [""] * (len(rows[0]) - 5)]
    # no line for a task the section does not answer for
    assert not [r for r in rows if r[0] == "办公室" and r[1] == "任务3"]


def test_status_cell_absent_from_input(rules):
    data = build_package(rules, PERIOD, [], [], generated_at=GENERATED)
    ws = openpyxl.load_workbook(io.BytesIO(data))[STATUS_SHEET]
    row = next(r for r in range(3, 20) if ws.cell(r, 1).value == "办公室")
    assert ws.cell(row, 1 + 3).value == "不适用"      # task 3 not assigned to 办公室
    assert ws.cell(row, 1 + 9).value == "—"          # assigned, but no cell given


def test_rates_sheet_figures_and_definitions(rules, package):
    wb = openpyxl.load_workbook(io.BytesIO(package))
    ws = wb[RATES_SHEET]
    assert [c.value for c in ws[2]][:5] == ["指标", "数值", "分子", "分母", "计算口径"]
    got = {ws.cell(r, 1).value: (ws.cell(r, 2).value, ws.cell(r, 3).value, ws.cell(r, 4).value, ws.cell(r, 5).value)
           for r in range(3, 6)}
    assert got["上报率"][:3] == (1.0, 1, 1)
    assert got["合规率"][:3] == (pytest.approx(4 / 7), 4, 7)
    assert got["及时率"][:3] == (0.5, 2, 4)
    assert ws.cell(3, 2).number_format == "0.00%"
    assert "÷ 责任科室数" in got["上报率"][3]
    assert "被退回的台账" in got["合规率"][3]
    assert "7个工作日" in got["及时率"][3]
    cal = _calamine(package).get_sheet_by_name(RATES_SHEET).to_python()
    assert cal[3][1] == pytest.approx(4 / 7) and cal[4][1] == 0.5
    # problem detail: the placeholder code is noted but lowers no rate
    detail = [r for r in cal if r[0] == "政策法规科"]
    assert [(r[3], r[5], r[6]) for r in detail] == [
        ("双公示台账 第5行", "统一社会信用代码为占位码", "不影响"),
        ("双公示台账 第4行", "超过7个工作日上传", "及时率"),
        ("双公示台账 第6行", "超过7个工作日上传", "及时率"),
        ("整个文件", "整份退回", "合规率")]


def test_rates_without_data_say_so(rules):
    data = build_package(rules, PERIOD, [], [], generated_at=GENERATED)
    ws = openpyxl.load_workbook(io.BytesIO(data))[RATES_SHEET]
    assert ws["B3"].value == 0 and ws["B4"].value == "—(无数据)" and ws["B5"].value == "—(无数据)"


def test_illegal_characters_and_long_text_do_not_break_the_workbook(rules):
    sub = dataclasses.replace(_month()[5], data={"分级分类监管台账": [
        {"序号": 1, "监管领域": "食品\x07生产", "工作类别": "制定工作方案", "工作内容": "很长" * 20000,
         "完成日期": "不是日期"}]})
    data = build_package(rules, PERIOD, [sub], [], generated_at=GENERATED)
    ws = openpyxl.load_workbook(io.BytesIO(data))["分级分类监管台账"]
    header = [c.value for c in ws[2]]
    assert ws.cell(3, header.index("监管领域") + 1).value == "食品生产"
    assert len(ws.cell(3, header.index("工作内容") + 1).value) == 32767
    assert ws.cell(3, header.index("完成日期") + 1).value == "不是日期"


def test_filenames():
    assert package_filename(PERIOD) == "信用状况监测分析报送材料汇总-2026年11月.xlsx"
    assert evidence_zip_filename(PERIOD) == "信用状况监测分析佐证材料-2026年11月.zip"
    assert score_filename(2026) == "信用监测报送年度考核-2026年.xlsx"
    with pytest.raises(ValueError):
        package_filename("2026-13")


# ---------------------------------------------------------------- the evidence zip

FILES = [
    ("政策法规科", 3, "双公示11月.xlsx", b"ledger"),
    ("宣传科", 7, "现场照片.jpg", b"photo-1"),
    ("宣传科", 7, "现场照片.jpg", b"photo-2"),        # same name, other content
    ("宣传科", 7, "现场照片.JPG", b"photo-3"),        # differs only in case: Windows sees one name
    ("宣传科", 7, "现场照片.jpg", b"photo-1"),        # the very same file again
    ("宣传科", 5, "材料/动态:稿件?.docx", b"doc"),     # a path and characters Windows refuses
    (None, None, "CON.txt", b"reserved"),
    ("信用监管科", 8, "report.pdf", b"pdf"),
]


def test_evidence_zip_names_and_contents(rules):
    data = build_evidence_zip(rules, PERIOD, FILES)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        infos = z.infolist()
        names = [i.filename for i in infos]
        assert names == [
            "政策法规科/任务3_双公示台账/双公示11月.xlsx",
            "信用监管科/任务8_分级分类监管台账/report.pdf",
            "宣传科/任务5_信用动态台账/动态_稿件_.docx",
            "宣传科/任务7_诚信宣传台账/现场照片.JPG",
            "宣传科/任务7_诚信宣传台账/现场照片(2).jpg",
            "宣传科/任务7_诚信宣传台账/现场照片(3).jpg",
            "未识别科室/未识别任务/_CON.txt",
        ]
        assert all(i.flag_bits & 0x800 for i in infos)          # UTF-8 names flagged
        assert all(i.date_time == (2026, 11, 1, 0, 0, 0) for i in infos)
        assert z.read("政策法规科/任务3_双公示台账/双公示11月.xlsx") == b"ledger"
        photos = [z.read(n) for n in names if "现场照片" in n]
        assert photos[0] == b"photo-3" and sorted(photos[1:]) == [b"photo-1", b"photo-2"]
        assert z.testzip() is None
    # raw central directory: the names are stored as UTF-8 bytes
    assert "政策法规科/任务3_双公示台账".encode("utf-8") in data


def test_evidence_zip_is_deterministic(rules):
    a = build_evidence_zip(rules, PERIOD, FILES)
    b = build_evidence_zip(rules, PERIOD, list(reversed(FILES)))
    assert a == b
    with zipfile.ZipFile(io.BytesIO(build_evidence_zip(rules, PERIOD, []))) as z:
        assert z.namelist() == []


# ---------------------------------------------------------------- the year-end score

SCORES = [
    Score("宣传科", 5, 12, 9, 2, 1, 1),
    Score("政策法规科", 3, 12, 12, 0, 0, 2),
    Score("政策法规科", 1, 12, 10, 1, 1, 0),
    Score("宣传科", 7, 0, 0, 0, 0, 0, 12, count=1, required=2),
]


def test_score_workbook(rules):
    data = build_score(rules, 2026, SCORES, generated_at=GENERATED)
    wb = openpyxl.load_workbook(io.BytesIO(data))
    assert wb.sheetnames == [SCORE_SHEET, SCORE_SUMMARY_SHEET, SCORE_NOTES_SHEET]
    cal = _calamine(data)
    rows = cal.get_sheet_by_name(SCORE_SHEET).to_python()
    assert rows[0][0].startswith("2026年度信用监测材料报送考核情况")
    assert rows[1] == ["科室", "任务", "任务名称", "应报次数", "按时报送", "逾期报送", "未报送", "首次报送被退回", "按时率",
                       "未到期", "年度次数要求", "重复材料不计数"]
    body = rows[2:]
    assert [(r[0], r[1]) for r in body] == [("政策法规科", "任务1"), ("政策法规科", "任务3"),
                                          ("宣传科", "任务5"), ("宣传科", "任务7")]
    assert body[1][2] == rules.task(3).title
    assert body[0][3:8] == [12, 10, 1, 1, 0]
    assert body[0][8] == pytest.approx(10 / 12)
    assert body[1][8] == 1.0 and body[2][8] == 0.75
    assert body[3][8] == "—"                                  # nothing due: no rate
    assert body[3][9:] == [12, "已报1次/至少2次,未达标", ""]
    assert body[0][9:] == [0, "", ""]                          # no yearly count rule given, nothing reused
    assert wb[SCORE_SHEET]["I3"].number_format == "0.00%"

    summary = cal.get_sheet_by_name(SCORE_SUMMARY_SHEET).to_python()
    assert summary[1] == ["科室", "承担任务数", "应报次数", "按时报送", "逾期报送", "未报送", "首次报送被退回", "按时率", "报送率"]
    by = {r[0]: r for r in summary[2:]}
    assert by["政策法规科"][1:7] == [2, 24, 22, 1, 1, 2]
    assert by["政策法规科"][7] == pytest.approx(22 / 24) and by["政策法规科"][8] == pytest.approx(23 / 24)
    assert by["宣传科"][1:7] == [2, 12, 9, 2, 1, 1]
    assert by["合计"][1:7] == [4, 36, 31, 3, 2, 3]
    assert by["合计"][7] == pytest.approx(31 / 36)
    assert [r[0] for r in summary[2:]] == ["政策法规科", "宣传科", "合计"]

    notes = [r[0] for r in cal.get_sheet_by_name(SCORE_NOTES_SHEET).to_python()]
    text = "\n".join(notes)
    for word in ("应报次数", "按时报送", "逾期报送", "未报送", "首次报送被退回", "按时率 = 按时报送 ÷ 应报次数"):
        assert word in text


def test_score_without_rows(rules):
    data = build_score(rules, 2026, [], generated_at=GENERATED)
    rows = _calamine(data).get_sheet_by_name(SCORE_SUMMARY_SHEET).to_python()
    assert rows[2][:7] == ["合计", 0, 0, 0, 0, 0, 0] and rows[2][7] == "—"


# ---------------------------------------------------------------- honesty: reused files, joint rows

def _repair(n: int, result: str, **kw) -> dict[str, Any]:
    row = {"序号": n, "业务类型": "信用修复", "申请主体名称": "济南某某餐饮有限公司",
           "统一社会信用代码": "91370113MA3C0AAA0A", "涉及信息": "长市监罚〔2026〕12号",
           "收到日期": "2026-11-09", "办结日期": "2026-11-10", "办理结果": result}
    return row | kw


def _honesty_month() -> list[Any]:
    """Task 11 (政策法规科 and 信用监管科): the same 信用修复 reported by both, with different
    results and row numbers, plus one row each of their own; task 7: a reused photo ledger."""
    reused = SimpleNamespace(period="2026-03", receipt_no="XY20260320-00004")
    return [
        Sub("政策法规科", 11, PERIOD, "accepted", 2, {"异议处理和信用修复台账": [
            _repair(1, "准予修复"), _repair(2, "准予修复", 申请主体名称="另一家公司")]},
            "XY20261112-00003", dt.datetime(2026, 11, 12, 9, 0, tzinfo=BJ)),
        Sub("信用监管科", 11, PERIOD, "accepted", 2, {"异议处理和信用修复台账": [
            _repair(1, "第三家", 申请主体名称="第三家公司"),
            _repair(2, "不予修复", 申请主体名称=" 济南某某餐饮有限公司")]},       # spaces do not make it another
            "XY20261113-00004", dt.datetime(2026, 11, 13, 9, 0, tzinfo=BJ)),
        dataclasses.replace(
            Sub("消费者权益保护科", 7, PERIOD, "accepted", 1, {"诚信宣传台账": [
                {"序号": 1, "活动名称": "3·15诚信宣传进社区", "活动形式": "进社区", "活动结束日期": "2026-03-15",
                 "上报日期": "2026-03-16", "活动内容": "发放资料"}]},
                "XY20261118-00006", dt.datetime(2026, 11, 18, 9, 0, tzinfo=BJ)), filename="诚信宣传.xlsx"),
    ], reused


def test_a_joint_tasks_row_two_sections_report_is_merged_once_and_marked(rules):
    subs, reused = _honesty_month()
    data = build_package(rules, PERIOD, subs, _cells(rules), generated_at=GENERATED)
    rows = _calamine(data).get_sheet_by_name("异议处理和信用修复台账").to_python()
    header, body = rows[1], rows[2:]
    assert header[-1] == "核对说明" and header[-4:-1] == ["备注", "回执编号", "报送时间"]
    names = [r[header.index("申请主体名称")] for r in body]
    assert names == ["济南某某餐饮有限公司", "另一家公司", "第三家公司"]          # 3 rows, not 4
    merged = body[0]
    assert merged[0] == "政策法规科、信用监管科"
    assert merged[header.index("回执编号")] == "XY20261112-00003、XY20261113-00004"
    mark = merged[-1]
    assert mark.startswith("多科室报送已合并（政策法规科、信用监管科）")
    assert "办理结果不一致：政策法规科填“准予修复”，信用监管科填“不予修复”" in mark and "序号" not in mark
    assert [r[-1] for r in body[1:]] == ["", ""]
    index = openpyxl.load_workbook(io.BytesIO(data))[INDEX_SHEET]
    counts = {index.cell(r, 2).value: index.cell(r, 4).value for r in range(1, 30)}
    assert counts["异议处理和信用修复台账"] == 3


def test_a_reused_files_rows_are_marked_and_never_merged(rules):
    subs, reused = _honesty_month()
    subs[-1] = dataclasses.replace(subs[-1], reused_from=reused)
    # another section's reused copy of the same activity is marked, not merged into a real one
    subs.append(dataclasses.replace(subs[-1], section="宣传科", reused_from=None, receipt_no="XY20261119-00008"))
    data = build_package(rules, PERIOD, subs, _cells(rules), generated_at=GENERATED)
    rows = _calamine(data).get_sheet_by_name("诚信宣传台账").to_python()
    header, body = rows[1], rows[2:]
    assert header[-1] == "核对说明" and [r[0] for r in body] == ["宣传科", "消费者权益保护科"]
    assert body[1][-1] == "重复材料不计数（与2026年3月回执编号XY20260320-00004的材料相同）"
    assert body[0][-1] == ""
    # a sheet with nothing to mark keeps the template's layout
    assert _calamine(data).get_sheet_by_name("分级分类监管台账").to_python()[1][-1] == "报送时间"


def test_a_reused_dual_publicity_ledger_reports_nothing(rules):
    subs = [dataclasses.replace(s, reused_from=SimpleNamespace(period="2026-10", receipt_no="R"))
            if s.receipt_no == "XY20261120-00007" else s for s in _month()]
    rates = dual_publicity_rates(rules, PERIOD, subs)
    assert rates.reported_sections == () and rates.rows_accepted == 0


def test_the_score_marks_reused_files(rules):
    marked = SimpleNamespace(**vars(SCORES[3]) | {"reused": 2})
    data = build_score(rules, 2026, [marked, SCORES[0]], generated_at=GENERATED)
    body = _calamine(data).get_sheet_by_name(SCORE_SHEET).to_python()[2:]
    assert body[1][11] == "2份" and body[0][11] == ""
    notes = "\n".join(r[0] for r in _calamine(data).get_sheet_by_name(SCORE_NOTES_SHEET).to_python())
    assert "重复材料不计数" in notes and "严禁弄虚作假" in notes
