"""The blank Annex 1 workbook: written from rules/, read back by openpyxl and by calamine
(the reader mailbot uses on what sections send)."""
from __future__ import annotations

import io

import openpyxl
import pytest
from python_calamine import CalamineWorkbook

from mailbot.model import Deadline
from mailbot.rules import load_rules
from mailbot.duties.templates import (FIRST_DATA_ROW, HEADER_ROW, TEMPLATE_ROWS, TITLE_ROW, describe_deadline, template_bytes, template_filename, write_template)
from mailbot.dates.period import parse_period, period_label

LAST = FIRST_DATA_ROW + TEMPLATE_ROWS - 1
FAGUI_SHEETS = ["填报说明", "封面", "制度文件台账", "理论学习台账", "双公示台账", "异议处理和信用修复台账"]


@pytest.fixture(scope="module")
def rules(rules_dir):
    return load_rules(rules_dir)


@pytest.fixture(scope="module")
def fagui(rules, tmp_path_factory):
    path = tmp_path_factory.mktemp("tpl") / "政策法规科-2026-11.xlsx"
    write_template(rules, "政策法规科", "2026-11", path)
    return path


def _validations(ws):
    return {str(dv.sqref): dv for dv in ws.data_validations.dataValidation}


def test_sheet_names_and_headers(rules, fagui):
    wb = openpyxl.load_workbook(fagui)
    assert wb.sheetnames == FAGUI_SHEETS
    for name in FAGUI_SHEETS[2:]:
        spec, ws = rules.sheet(name), wb[name]
        headers = [ws.cell(row=HEADER_ROW, column=i + 1).value for i in range(len(spec.columns))]
        assert headers == [c.name for c in spec.columns]
        assert ws.cell(row=HEADER_ROW, column=len(spec.columns) + 1).value is None
        assert ws.cell(row=TITLE_ROW, column=1).value == spec.title
        last = openpyxl.utils.get_column_letter(len(spec.columns))
        assert [str(r) for r in ws.merged_cells.ranges] == [f"A1:{last}1"]
        assert ws.freeze_panes == "A3"
        assert ws.cell(row=FIRST_DATA_ROW, column=1).value is None


def test_required_columns_are_marked(rules, fagui):
    ws = openpyxl.load_workbook(fagui)["双公示台账"]
    spec = rules.sheet("双公示台账")
    for i, col in enumerate(spec.columns, start=1):
        cell = ws.cell(row=HEADER_ROW, column=i)
        assert cell.font.b
        red = cell.font.color is not None and cell.font.color.rgb.endswith("C00000")
        assert red == col.required, col.name
        if col.required:
            assert cell.comment is not None and "必填" in cell.comment.text
    code = ws.cell(row=HEADER_ROW, column=5)
    assert code.value == "统一社会信用代码" and "法人及非法人组织或个体工商户时必填" in code.comment.text
    assert ws.column_dimensions["C"].width == spec.column("行政相对人名称").width


def test_validations_and_formats(fagui):
    ws = openpyxl.load_workbook(fagui)["双公示台账"]
    dvs = _validations(ws)
    kind = dvs[f"B{FIRST_DATA_ROW}:B{LAST}"]
    assert (kind.type, kind.formula1) == ("list", '"行政处罚,行政许可"')
    assert not kind.showDropDown            # i.e. the arrow is shown
    assert dvs[f"D{FIRST_DATA_ROW}:D{LAST}"].formula1 == '"法人及非法人组织,自然人,个体工商户"'
    for letter in "KL":                     # 决定日期, 上报日期
        dv = dvs[f"{letter}{FIRST_DATA_ROW}:{letter}{LAST}"]
        assert dv.type == "date" and dv.operator == "between"
        assert ws[f"{letter}{FIRST_DATA_ROW}"].number_format == "yyyy-mm-dd"
        assert ws[f"{letter}{LAST}"].number_format == "yyyy-mm-dd"
    fine = dvs[f"J{FIRST_DATA_ROW}:J{LAST}"]          # 罚款金额（万元）: minimum 0
    assert (fine.type, float(fine.formula1)) == ("decimal", 0.0)
    assert dvs[f"E{FIRST_DATA_ROW}:E{LAST}"].type == "textLength"
    assert ws[f"E{FIRST_DATA_ROW}"].number_format == "@"     # an all-digit code stays text


def test_cover(fagui):
    ws = openpyxl.load_workbook(fagui)["封面"]
    pairs = {ws.cell(row=r, column=1).value: ws.cell(row=r, column=2).value for r in range(2, ws.max_row + 1)}
    assert pairs == {"报送科室": "政策法规科", "报送月份": "2026年11月", "联系人": None, "联系电话": None}


def test_instructions(rules, fagui):
    ws = openpyxl.load_workbook(fagui)["填报说明"]
    text = "\n".join(str(c.value) for c in ws["A"] if c.value)
    assert "政策法规科" in text and "2026年11月" in text
    for n in (1, 2, 3, 11):
        assert f"任务{n}  {rules.task(n).title}" in text
    assert "任务5" not in text
    assert "7个工作日内" in text and "1个工作日内" in text
    assert "2026年11月25日前" in text and "实施方案未写明日期" in text
    assert "回复" in text and "每个月报送一个工作簿" in text and "不要修改工作表名称" in text


def test_calamine_reads_it(fagui):
    wb = CalamineWorkbook.from_path(str(fagui))
    assert wb.sheet_names == FAGUI_SHEETS
    rows = wb.get_sheet_by_name("双公示台账").to_python()
    assert rows[TITLE_ROW - 1][0].startswith("行政处罚和行政许可")
    assert rows[HEADER_ROW - 1][:3] == ["序号", "信息类别", "行政相对人名称"]
    assert rows[HEADER_ROW - 1][9:12] == ["罚款金额（万元）", "决定日期", "上报日期"]
    cover = wb.get_sheet_by_name("封面").to_python()
    pairs = {r[0]: r[1] for r in cover[1:]}
    assert pairs["报送科室"] == "政策法规科" and pairs["报送月份"] == "2026年11月"
    assert pairs["联系人"] == "" and pairs["联系电话"] == ""


def test_every_section_gets_its_sheets(rules):
    for section in rules.sections:
        data = template_bytes(rules, section.id, "2027-02")
        wb = CalamineWorkbook.from_filelike(io.BytesIO(data))
        expected = [s for t in rules.tasks_of(section.id) for s in t.sheets]
        assert wb.sheet_names == ["填报说明", rules.cover.name] + expected, section.id


def test_alias_file_object_and_name(rules):
    buf = io.BytesIO()
    write_template(rules, "法规科", "2026-11", buf)
    wb = openpyxl.load_workbook(io.BytesIO(buf.getvalue()))
    assert wb["封面"]["B2"].value == "政策法规科"
    assert template_filename(rules, "消保科", "2026-11") == "附件1信用状况监测分析报送材料-消费者权益保护科-2026年11月.xlsx"


def test_errors(rules, tmp_path):
    with pytest.raises(KeyError, match="登记注册科"):
        write_template(rules, "登记注册科", "2026-11", tmp_path / "x.xlsx")
    for bad in ("2026-13", "2026/11", "2026-1", "", "2026-00", "20261"):
        with pytest.raises(ValueError, match="YYYY-MM"):
            template_bytes(rules, "政策法规科", bad)
    assert not (tmp_path / "x.xlsx").exists()


def test_period_and_deadline_words():
    assert parse_period("2026-11") == parse_period("202611") == parse_period("2026年11月") == (2026, 11) and period_label("2027-02") == "2027年2月"
    feb = describe_deadline(Deadline(kind="monthly", day=30), 2027, 2)
    assert feb.startswith("每月30日前报送") and "2027年2月28日前" in feb
    assumed = describe_deadline(Deadline(kind="monthly", day=25, stated=False))
    assert "未写明日期" in assumed
    assert describe_deadline(Deadline(kind="event", hours=48, event_column="发生日期", report_column="上报日期")) \
        == "“上报日期”应在“发生日期”后48小时内(表中只填日期,按不超过2天计)"
    assert describe_deadline(Deadline(kind="count", at_least=2, per="year")) == "每年至少2次"
