"""Loading a year's holiday schedule at the desk: the notice from the body or a .txt/.docx/.pdf
attachment, refusals, the store (SQLite and PostgreSQL), the running calendar, restarts, the CLI."""
from __future__ import annotations

import datetime as dt
import io
import json
import shutil
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from mailbot.app import cli, wiring
from mailbot.app.config import load_config
from mailbot.dates.workdays import WorkCalendar
from mailbot.desk import Actor, Refused
from mailbot.desk import holidays as desk_holidays
from mailbot.desk.holidays import load_holidays, notice_text
from mailbot.writing.desk_holidays import schedule_lines

from conftest import ROOT
from test_holiday_notice import text as published
from test_pipeline import write_config

D = dt.date
CREDIT = "xinyong.staff@cqscjg.example.cn"
SECTION = "fagui@cqscjg.example.cn"

# Written for the tests in the published notices' layout, with 2027's true weekdays and lunar
# dates (春节: 2027-02-06 is 正月初一, 除夕 2-05); not the State Council's text.
NOTICE_2027 = """\
国务院办公厅关于2027年部分节假日安排的通知
国办发明电〔2026〕99号

各省、自治区、直辖市人民政府，国务院各部委、各直属机构：

　　经国务院批准，现将2027年元旦、春节、清明节、劳动节、端午节、中秋节和国庆节放假调休日期的具体安排通知如下。
　　一、元旦：1月1日（周五）至3日（周日）放假，共3天。
　　二、春节：2月5日（农历除夕、周五）至12日（农历正月初七、周五）放假调休，共8天。2月14日（周日）、2月20日（周六）上班。
　　三、清明节：4月3日（周六）至5日（周一）放假，共3天。
　　四、劳动节：5月1日（周六）至5日（周三）放假调休，共5天。4月25日（周日）、5月8日（周六）上班。
　　五、端午节：6月9日（周三）放假1天，不调休。
　　六、中秋节：9月15日（周三）放假1天，不调休。
　　七、国庆节：10月1日（周五）至7日（周四）放假调休，共7天。9月26日（周日）、10月9日（周六）上班。
　　节假日期间，各地区、各部门要妥善安排好值班和安全、保卫等工作，确保人民群众祥和平安度过节日假期。

国务院办公厅
2026年11月10日
"""
# a later notice for the same year: 国庆节 one day longer, one make-up day fewer
REVISED_2027 = NOTICE_2027.replace("10月1日（周五）至7日（周四）放假调休，共7天。9月26日（周日）、10月9日（周六）上班。",
                                   "10月1日（周五）至8日（周五）放假调休，共8天。9月26日（周日）上班。")
GARBLED_LINE = "　　四、劳动节：5月1日（周六）至5日（周三）放假调休，共5天。4月25日（周日）、5月8日（周一）上班。"


def test_the_written_notices_differ_only_where_meant():
    assert REVISED_2027 != NOTICE_2027
    assert GARBLED_LINE not in NOTICE_2027


# ---------------------------------------------------------------- attachments (no store)

def docx(text: str) -> bytes:
    """A minimal .docx: one paragraph a line, a run split in two as Word does."""
    paras = "".join(f'<w:p><w:r><w:t xml:space="preserve">{escape(line[:5])}</w:t></w:r>'
                    f'<w:r><w:rPr><w:b/></w:rPr><w:t xml:space="preserve">{escape(line[5:])}</w:t></w:r></w:p>'
                    for line in text.splitlines())
    xml = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
           '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
           f'<w:body>{paras}</w:body></w:document>')
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/'
                   'package/2006/content-types"><Override PartName="/word/document.xml" ContentType="application/'
                   'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>')
        z.writestr("word/document.xml", xml)
    return out.getvalue()


def pdf(lines: list[str]) -> bytes:
    """A one-page PDF whose text layer is `lines` (a CID font, each character's code its Unicode
    code point, a ToUnicode map saying so); no lines: a page without a text layer, as a scan."""
    ops = ["BT", "/F1 10 Tf", "12 TL", "36 800 Td"] + [
        "<" + "".join(f"{ord(ch):04X}" for ch in line) + "> Tj T*" for line in lines] + ["ET"]
    stream = ("\n".join(ops) if lines else "0 0 1 rg 36 36 200 200 re f").encode()
    cmap = (b"/CIDInit /ProcSet findresource begin 12 dict begin begincmap /CIDSystemInfo << /Registry (Adobe) "
            b"/Ordering (UCS) /Supplement 0 >> def /CMapName /Adobe-Identity-UCS def /CMapType 2 def "
            b"1 begincodespacerange <0000> <FFFF> endcodespacerange 1 beginbfrange <0000> <FFFF> <0000> endbfrange "
            b"endcmap CMapName currentdict /CMap defineresource pop end end")
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 5 0 R >> >> "
               b"/Contents 4 0 R >>",
               b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
               b"<< /Type /Font /Subtype /Type0 /BaseFont /STSong-Light /Encoding /Identity-H "
               b"/DescendantFonts [6 0 R] /ToUnicode 7 0 R >>",
               b"<< /Type /Font /Subtype /CIDFontType0 /BaseFont /STSong-Light /CIDSystemInfo << /Registry (Adobe) "
               b"/Ordering (Identity) /Supplement 0 >> /DW 1000 >>",
               b"<< /Length %d >>\nstream\n%s\nendstream" % (len(cmap), cmap)]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (i, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def wrapped(text: str, width: int = 24) -> list[str]:
    """The lines as a PDF's text layer has them: every long line cut at `width` characters."""
    return [line[i:i + width] for line in text.splitlines() for i in range(0, max(len(line), 1), width)]


def _days(text: str):
    from mailbot.dates.holiday_notice import parse_notice
    s = parse_notice(text, 2027)
    return s.holidays, s.workdays


@pytest.mark.parametrize("name, data", [
    ("通知.txt", NOTICE_2027.encode("utf-8")),
    ("通知.TXT", NOTICE_2027.encode("utf-8-sig")),
    ("通知.txt", NOTICE_2027.encode("gb18030")),
    ("通知.txt", NOTICE_2027.encode("utf-16")),
    ("通知.docx", docx(NOTICE_2027)),
])
def test_attachment_text_reads_as_the_notice(name, data):
    got, where = notice_text("请录入，谢谢。", [(name, data)])
    assert where == f"附件“{name}”"
    assert _days(got) == _days(NOTICE_2027)


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="pdftotext (poppler-utils) is not installed")
def test_pdf_attachment_with_lines_wrapped_as_a_pdf_has_them():
    got, _ = notice_text("", [("2027年节假日安排.pdf", pdf(wrapped(NOTICE_2027)))])
    assert _days(got) == _days(NOTICE_2027)


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="pdftotext (poppler-utils) is not installed")
def test_pdf_without_a_text_layer_is_refused_as_a_scan():
    with pytest.raises(Refused) as e:
        notice_text("", [("扫描件.pdf", pdf([]))])
    assert "扫描件.pdf" in e.value.text and "扫描件或图片" in e.value.text
    with pytest.raises(Refused) as e:
        notice_text("", [("坏.pdf", b"%PDF-1.4 not really")])
    assert "坏.pdf" in e.value.text and "pdftotext exit" in e.value.summary


def test_pdf_without_pdftotext_is_refused_naming_the_cause(monkeypatch):
    monkeypatch.setattr(desk_holidays.shutil, "which", lambda name: None)
    with pytest.raises(Refused) as e:
        notice_text("", [("通知.pdf", pdf(NOTICE_2027.splitlines()))])
    assert "pdftotext" in e.value.text and "poppler-utils" in e.value.text
    assert "not installed" in e.value.summary


def test_body_attachments_and_their_refusals():
    assert notice_text(NOTICE_2027, [])[1] == "邮件正文"
    assert notice_text(NOTICE_2027, [("签名.png", b"\x89PNG")])[1] == "邮件正文"
    with pytest.raises(Refused) as e:
        notice_text("见附件", [("通知.doc", b"\xd0\xcf\x11\xe0")])
    assert "通知.doc" in e.value.text and ".docx" in e.value.text
    with pytest.raises(Refused) as e:
        notice_text("", [("a.txt", b"x"), ("b.docx", b"y")])
    assert "a.txt" in e.value.text and "b.docx" in e.value.text
    with pytest.raises(Refused) as e:
        notice_text("节假日 2027", [])
    assert "未找到节假日安排通知" in e.value.text
    with pytest.raises(Refused) as e:
        notice_text("", [("通知.docx", b"PK\x03\x04 broken")])
    assert "不是有效的 .docx 文件" in e.value.text
    with pytest.raises(Refused) as e:
        notice_text("", [("通知.txt", "元旦".encode("utf-8") + b"\xff\xfe\xfa")])
    assert "编码" in e.value.text


def test_schedule_lines_day_by_day():
    from mailbot.dates.holiday_notice import parse_notice
    lines = schedule_lines(parse_notice(NOTICE_2027))
    assert lines[:4] == ["一、元旦：放假3天，无调休上班", "    2027年1月1日（星期五）  放假",
                         "    2027年1月2日（星期六）  放假", "    2027年1月3日（星期日）  放假"]
    i = lines.index("二、春节：放假8天，调休上班2天")
    assert lines[i + 1] == "    2027年2月5日（星期五）  放假" and lines[i + 9] == "    2027年2月14日（星期日）  调休上班"
    assert lines[-10:-8] == ["七、国庆节：放假7天，调休上班2天", "    2027年9月26日（星期日）  调休上班"]


# ---------------------------------------------------------------- the calendar (no store)

def test_a_loaded_year_takes_effect_at_once_and_a_rules_file_still_wins():
    cal = WorkCalendar()
    assert cal.source(2027) == "provisional" and cal.is_workday(D(2027, 2, 20)) is False   # a Saturday
    cal.load(2027, [D(2027, 2, 5), D(2027, 2, 8)], [D(2027, 2, 20)])
    assert cal.source(2027) == "loaded" and not cal.is_provisional(2027)
    assert cal.is_workday(D(2027, 2, 20)) and not cal.is_workday(D(2027, 2, 8)) and cal.is_workday(D(2027, 2, 9))
    assert cal.schedule(2027) == (frozenset({D(2027, 2, 5), D(2027, 2, 8)}), frozenset({D(2027, 2, 20)}))
    ruled = WorkCalendar({2027: {"holidays": frozenset({D(2027, 2, 9)}), "workdays": frozenset()}})
    ruled.load(2027, [D(2027, 2, 8)], [D(2027, 2, 20)])
    assert ruled.source(2027) == "rules" and ruled.is_workday(D(2027, 2, 8)) and not ruled.is_workday(D(2027, 2, 9))


def test_a_notice_whose_new_year_begins_on_31_december_makes_that_day_a_day_off():
    cal = WorkCalendar()
    assert cal.is_workday(D(2032, 12, 31))                                                # a Friday
    cal.load(2033, [D(2032, 12, 31), D(2033, 1, 1), D(2033, 1, 2)], [])
    assert not cal.is_workday(D(2032, 12, 31)) and cal.is_workday(D(2032, 12, 30))


# ---------------------------------------------------------------- at the desk, on SQLite and PostgreSQL

NOW = dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))


class Bureau:
    """One deployment over a config, as a program builds it: open() is a start or a restart."""

    def __init__(self, config_path: Path):
        self.path = config_path
        self.open()

    def open(self):
        self.config = load_config(self.path)
        self.deployment = wiring.build(self.config)
        self.store = self.deployment.open_store()
        self.desk = self.deployment.desk(self.store)
        return self

    def close(self):
        self.store.close()

    def actor(self, address=CREDIT):
        return Actor.of(self.config, address, "mail")

    def load(self, text, *, year=2027, address=CREDIT, attachments=(), now=NOW, ref=None):
        return load_holidays(self.desk, self.actor(address), year, text, attachments=attachments, now=now, ref=ref)


@pytest.fixture
def bureau(tmp_path, database_url):
    b = Bureau(write_config(tmp_path, database_url))
    yield b
    b.close()


def test_loading_a_notice_makes_it_the_years_calendar_and_replies_day_by_day(bureau):
    cal = bureau.deployment.calendar
    assert cal.source(2027) == "provisional"
    answer = bureau.load(NOTICE_2027, ref="mail-1")
    assert answer.ok and answer.action == "holidays", answer.text
    assert answer.text.startswith("    已按邮件正文中")          # the body: the answer letter adds greeting and closing
    assert "已按邮件正文中的国务院办公厅关于2027年部分节假日安排的通知，录入2027年节假日安排：共放假28天（含其间的周末），" \
           "调休上班6天。" in answer.text
    assert "    2027年2月20日（星期六）  调休上班" in answer.text and "    2027年10月7日（星期四）  放假" in answer.text
    assert "此前按法定节假日预估（未含调休）的报送期限" in answer.text and "已被本次通知替代" not in answer.text
    assert answer.data["changed"] and answer.data["replaced"] is None and answer.data["rules_file"] is None
    # the running calendar, at once: 调休上班 works, the 春节 block does not
    assert cal.source(2027) == "loaded" and not cal.is_provisional(2027)
    assert cal.is_workday(D(2027, 2, 20)) and cal.is_workday(D(2027, 2, 14)) and cal.is_workday(D(2027, 10, 9))
    assert not cal.is_workday(D(2027, 2, 11)) and not cal.is_workday(D(2027, 10, 7))
    assert cal.add_workdays(D(2027, 2, 4), 1) == D(2027, 2, 14)
    assert bureau.deployment.intake.calendar is cal and bureau.desk.office.calendar is cal
    stored = bureau.store.loaded_calendars()[2027]
    assert stored.loaded_by == CREDIT and D(2027, 2, 5) in stored.days_off and D(2027, 2, 20) in stored.workdays
    assert "国务院办公厅关于2027年部分节假日安排的通知" in stored.notice
    (entry,) = bureau.store.audit(action="holidays")
    assert entry.ok and entry.actor == CREDIT and entry.args["year"] == 2027 and "loaded" in entry.result


def test_a_later_notice_replaces_and_the_same_notice_again_changes_nothing(bureau):
    bureau.load(NOTICE_2027)
    later = NOW + dt.timedelta(days=3)
    answer = bureau.load(REVISED_2027, now=later)
    assert answer.ok and answer.data["replaced"] == {"loaded_at": "2026-11-20T10:00:00+08:00", "loaded_by": CREDIT}
    assert f"2026年11月20日 10:00 由 {CREDIT} 录入的2027年安排已被本次通知替代。" in answer.text
    cal = bureau.deployment.calendar
    assert not cal.is_workday(D(2027, 10, 8)) and not cal.is_workday(D(2027, 10, 9))   # 10-9 is a Saturday again
    again = bureau.load(REVISED_2027, now=later + dt.timedelta(hours=1))
    assert again.ok and not again.data["changed"] and "完全一致，安排未改变" in again.text
    assert bureau.store.loaded_calendars()[2027].loaded_at == later


def test_the_schedule_survives_a_restart_and_reaches_the_daemon(bureau):
    bureau.load(NOTICE_2027)
    bureau.close()
    bureau.open()
    assert bureau.deployment.calendar.source(2027) == "loaded"
    assert bureau.deployment.calendar.is_workday(D(2027, 2, 20))
    from mailbot.app.daemon import Daemon, health_report
    from mailbot.duties.office import Office
    daemon = Daemon(bureau.config)
    try:
        assert daemon.intake.calendar.source(2027) == "loaded" and Office.of(daemon).calendar.is_workday(D(2027, 2, 20))
        report = health_report(bureau.config, daemon.store, NOW, daemon.deployment.calendar)
        assert report["calendar"] == {"2026": "package", "2027": "loaded"} and report["calendar_provisional"] == []
        # loaded at the daemon's desk: its intake has it at once, without a restart
        load_holidays(daemon.deployment.desk(daemon.store), bureau.actor(), 2027, REVISED_2027, now=NOW)
        assert not daemon.intake.calendar.is_workday(D(2027, 10, 8))
    finally:
        daemon.store.close()


def test_refusals_store_nothing(bureau):
    no = bureau.load(NOTICE_2027, address=SECTION)
    assert not no.ok and "只能由信用监管科录入" in no.text and "not the credit section" in no.summary
    bad = bureau.load(NOTICE_2027.replace(GARBLED_LINE.replace("5月8日（周一）", "5月8日（周六）"), GARBLED_LINE))
    assert not bad.ok
    assert GARBLED_LINE.strip() in bad.text and "不是周一" in bad.text and "整份通知均未录入" in bad.text
    wrong_year = bureau.load(NOTICE_2027, year=2028)
    assert not wrong_year.ok and "通知年份2027与指定年份为2028不符" in wrong_year.text
    assert bureau.store.loaded_calendars() == {} and bureau.deployment.calendar.source(2027) == "provisional"
    assert [e.ok for e in bureau.store.audit(action="holidays")] == [False, False, False]


def test_a_published_year_agrees_with_the_package_or_is_refused(bureau):
    assert bureau.load(published(2026), year=2026).ok
    other = published(2026).replace("10月1日（周四）至7日（周三）放假调休，共7天。9月20日（周日）、10月10日（周六）上班。",
                                    "10月1日（周四）至8日（周四）放假调休，共8天。9月20日（周日）上班。")
    no = bureau.load(other, year=2026)
    assert not no.ok and "2026年10月8日（星期四）（通知为放假）" in no.text and "2026-10-10" in no.summary


def test_attachments_at_the_desk(bureau):
    answer = bureau.load("请录入附件中的通知。", attachments=[("国办通知.docx", docx(NOTICE_2027))])
    assert answer.ok and "已按附件“国办通知.docx”中的" in answer.text
    assert bureau.store.audit(action="holidays")[0].args["attachments"] == [["国办通知.docx", "<%d bytes>" % len(
        docx(NOTICE_2027))]]


def _with_rules_file(tmp_path: Path, config: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    (rules / "calendar" / "2027.yaml").write_text(
        "year: 2027\nsource: 本局更正\nholidays:\n  - 2027-01-01\n  - 2027-02-05..2027-02-12\n"
        "  - 2027-10-01..2027-10-08\nworkdays:\n  - 2027-02-20\n", encoding="utf-8")
    config.write_text(config.read_text(encoding="utf-8").replace(f"rules: {ROOT / 'rules'}", f"rules: {rules}"),
                      encoding="utf-8")


def test_a_rules_file_wins_and_the_reply_says_so(tmp_path, database_url):
    path = write_config(tmp_path, database_url)
    _with_rules_file(tmp_path, path)
    b = Bureau(path)
    try:
        answer = b.load(NOTICE_2027)
        assert answer.ok and answer.data["rules_file"].endswith("rules/calendar/2027.yaml")
        assert "也规定了2027年的安排，按规定以该文件为准" in answer.text and "自即日起" not in answer.text
        assert "rules/calendar/2027.yaml still wins" in answer.summary
        cal = b.deployment.calendar
        assert cal.source(2027) == "rules" and not cal.is_workday(D(2027, 10, 8)) and not cal.is_workday(D(2027, 2, 14))
        assert 2027 in b.store.loaded_calendars()
    finally:
        b.close()


def run(capsys, *argv):
    capsys.readouterr()
    code = cli.main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.slow
def test_calendar_command_shows_the_loaded_year_and_where_it_comes_from(tmp_path, capsys):
    path = write_config(tmp_path)
    code, out, _ = run(capsys, "--config", path, "calendar", "--year", "2027")
    assert code == 0 and out.startswith("2027: provisional") and "节假日 2027" in out
    b = Bureau(path)
    b.load(NOTICE_2027)
    b.close()
    code, out, _ = run(capsys, "--config", path, "calendar", "--year", "2027")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"2027: loaded - State Council notice loaded by mail, by {CREDIT} at 2026-11-20T10:00:00+08:00"
    assert "days off (28):" in lines and "weekend days worked (调休上班) (6):" in lines
    assert "  2027-02-05  Fri  春节" in lines and "  2027-10-09  Sat  国庆节" in lines
    code, out, _ = run(capsys, "--config", path, "calendar", "--year", "2027", "--json")
    got = json.loads(out)
    assert got["source"] == "loaded" and got["provisional"] is False
    assert got["notice"] == {"loaded_by": CREDIT, "loaded_at": "2026-11-20T10:00:00+08:00", "in_force": True}
    assert {"date": "2027-02-20", "weekday": "Sat", "holiday": "春节"} in got["workdays"]
    assert len(got["days_off"]) == 28
    code, out, _ = run(capsys, "--config", path, "calendar", "--year", "2026", "--json")
    assert json.loads(out)["source"] == "package" and {"date": "2026-02-14", "weekday": "Sat", "holiday": "春节"} \
        in json.loads(out)["workdays"]
    # every deadline from then on: `due` counts the 调休上班 Saturday as a working day
    code, out, _ = run(capsys, "--config", path, "due", "--task", "3", "--event", "2027-02-18")
    assert code == 0 and "预估" not in out
    _with_rules_file(tmp_path, path)
    code, out, _ = run(capsys, "--config", path, "calendar", "--year", "2027")
    assert out.startswith("2027: rules - rules file ") and "is kept but not used: the rules file wins" in out
    code, out, _ = run(capsys, "--config", path, "calendar", "--year", "1999")
    assert code == 2
