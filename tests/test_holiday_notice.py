"""Tests of the holiday notice reader: real notices against chinese_calendar, and refusal of doubtful text."""

import datetime as dt
import re
from pathlib import Path

import chinese_calendar
import pytest

from mailbot.dates.holiday_notice import NoticeError, parse_notice, render

D = dt.date
NOTICES = Path(__file__).parent / "data" / "notices"
YEARS = [2023, 2024, 2025, 2026]


def text(year: int) -> str:
    return (NOTICES / f"{year}.txt").read_text(encoding="utf-8")


def item_lines(year: int) -> list[str]:
    return [line for line in text(year).splitlines() if re.match(r"\s*[一二三四五六七]、", line)]


@pytest.mark.parametrize("year", YEARS)
def test_real_notice_agrees_with_chinese_calendar_day_by_day(year):
    s = parse_notice(text(year))
    assert s.year == year
    assert s.lines == tuple(item_lines(year))
    day = D(year, 1, 1)
    while day.year == year:
        works = (day.weekday() < 5 and day not in s.holidays) or day in s.workdays
        assert works == chinese_calendar.is_workday(day), day
        day += dt.timedelta(days=1)
    assert all(chinese_calendar.is_holiday(d) for d in s.holidays)


def test_new_years_day_may_start_in_december_of_the_year_before():
    s = parse_notice(text(2023))
    assert [d for d, n in s.holidays.items() if n == "元旦"] == [D(2022, 12, 31), D(2023, 1, 1), D(2023, 1, 2)]


def test_merged_festivals_and_advice_sentence():
    assert parse_notice(text(2025)).holidays[D(2025, 10, 6)] == "国庆节、中秋节"
    s = parse_notice(text(2024))
    assert D(2024, 2, 9) not in s.holidays  # 除夕 was only recommended as a rest day in 2024
    assert s.workdays[D(2024, 2, 4)] == "春节"


def test_given_year_must_match_title():
    assert parse_notice(text(2026), 2026).year == 2026
    with pytest.raises(NoticeError) as e:
        parse_notice(text(2026), 2027)
    assert e.value.line == "国务院办公厅关于2026年部分节假日安排的通知"


def test_year_can_be_given_when_the_title_is_missing_and_is_needed_otherwise():
    body = "\n".join(item_lines(2026))
    assert parse_notice(body, 2026).holidays == parse_notice(text(2026)).holidays
    with pytest.raises(NoticeError) as e:
        parse_notice(body)
    assert e.value.line == ""


def _garble_day(line):
    return re.sub(r"(\d)日", r"\1l日", line, count=1)


def _garble_weekday(line):
    return re.sub(r"(周|星期)([一二三四五六日])", lambda m: m[1] + "一二三四五六日"[("一二三四五六日".index(m[2]) + 1) % 7],
                  line, count=1)


def _drop_range_end(line):
    return re.sub(r"至(\d+月)?\d+日(（[^）]*）)?", "至", line, count=1)


@pytest.mark.parametrize("garble", [_garble_day, _garble_weekday, _drop_range_end])
@pytest.mark.parametrize("year", YEARS)
def test_one_garbled_line_is_refused_and_named(year, garble):
    original = text(year)
    tried = 0
    for line in item_lines(year):
        bad = garble(line)
        if bad == line:
            continue
        tried += 1
        with pytest.raises(NoticeError) as e:
            parse_notice(original.replace(line, bad))
        assert e.value.line == bad
        assert e.value.reason
    assert tried or garble is _garble_weekday  # the 2023 and 2024 texts name weekdays only in 上班 lists


def test_full_width_spaces_star_weekdays_and_half_width_brackets_parse():
    original = text(2026)
    odd = (original.replace("周", "星期").replace("一、元旦：", "　一、 元旦 ：")
           .replace("二、春节：2月15日（", "二、春节:2月15日 (").replace("腊月二十八、星期日）", "腊月廿八，星期日)")
           .replace("共7天", "共 7 天"))
    assert odd != original
    a, b = parse_notice(original), parse_notice(odd)
    assert (a.holidays, a.workdays) == (b.holidays, b.workdays)


def test_unnumbered_items_parse():
    plain = re.sub(r"(?m)^[一二三四五六七]、", "", text(2026))
    assert parse_notice(plain).holidays == parse_notice(text(2026)).holidays


SAMPLE_2027 = """\
一、元旦：1月1日（星期五）至3日（星期日）放假，共3天。
二、春节：2月5日（农历除夕、星期五）至12日（农历正月初七、星期五）放假调休，共8天。2月20日（星期六）调休上班。
三、清明节：4月5日放假，与周末连休。
四、劳动节：4月30日至5月4日放假调休，共5天。4月25日（星期日）上班。
五、端午节：6月9日（周三）放假，共1天。
六、中秋节：9月15日(周三)放假1天,不调休。
七、国庆节：9月30日至10月8日放假调休，共9天。9月26日（星期日）、10月9日（星期六）上班。
"""  # made up for the tests, with the true weekdays and lunar dates of 2027


def test_made_up_sample_and_render():
    s = parse_notice(SAMPLE_2027, 2027)
    lines = render(s)
    assert len(lines) == len(s.holidays) + len(s.workdays) == 3 + 8 + 1 + 5 + 1 + 1 + 9 + 4
    assert lines[:4] == [
        "2027年1月1日（星期五） 放假 元旦",
        "2027年1月2日（星期六） 放假 元旦",
        "2027年1月3日（星期日） 放假 元旦",
        "2027年2月5日（星期五） 放假 春节",
    ]
    assert "2027年2月20日（星期六） 调休上班 春节" in lines
    assert "2027年4月30日（星期五） 放假 劳动节" in lines
    assert lines[-2:] == ["2027年10月8日（星期五） 放假 国庆节", "2027年10月9日（星期六） 调休上班 国庆节"]
    assert s.holidays[D(2027, 9, 30)] == "国庆节" and D(2027, 4, 25) in s.workdays


def test_render_of_a_real_notice():
    lines = render(parse_notice(text(2026)))
    assert lines[0] == "2026年1月1日（星期四） 放假 元旦"
    assert "2026年2月14日（星期六） 调休上班 春节" in lines
    assert lines[-1] == "2026年10月10日（星期六） 调休上班 国庆节"


def _swap(old: str, new: str, year: int = 2027) -> NoticeError:
    base = SAMPLE_2027 if year == 2027 else text(year)
    assert old in base
    with pytest.raises(NoticeError) as e:
        parse_notice(base.replace(old, new), year)
    return e.value


@pytest.mark.parametrize("old, new", [
    ("共3天", "共4天"),                                   # count does not match the range
    ("4月25日（星期日）上班", "1月4日（周一）上班"),          # a make-up working day on a Monday
    ("2月20日（星期六）调休上班", "2月20日（星期六）上班。3月1日（星期一）上班"),
    ("农历正月初七", "农历正月初八"),                         # lunar note does not match
    ("农历除夕", "农历腊月三十"),                             # 2027's 腊月 has 29 days
    ("2月5日（农历除夕、星期五）至12日（农历正月初七、星期五）", "2月15日（星期一）至22日（星期一）"),  # 初一 left out
    ("4月5日放假，与周末连休", "4月7日放假，与周末连休"),       # 清明 missing, not next to a weekend
    ("放假1天,不调休", "放假1天,不调休。9月18日（星期六）上班"),  # 不调休 yet a working day
    ("9月26日（星期日）", "2026年9月27日（星期日）"),          # date outside the year
    ("至10月8日", "至10月38日"),                              # no such date
    ("放假调休，共9天", "放假调休，共9天，另有安排"),              # clause not understood
    ("（星期五）至3日", "（星期五、另行通知）至3日"),             # bracket note not understood
    ("六、中秋节", "七、中秋节"),                             # numbering out of order
    ("五、端午节：", "五、端午：")                            # unknown festival name on a numbered line
])
def test_doubtful_lines_are_refused(old, new):
    err = _swap(old, new)
    assert err.line in SAMPLE_2027.replace(old, new).splitlines()
    assert new.split("。")[0] in err.line or new in err.line


def test_new_years_day_only_may_reach_into_the_year_before():
    err = _swap("2月15日（农历腊月二十八、周日）", "2025年2月15日（农历腊月二十八、周日）", 2026)
    assert "不在2026年内" in err.reason
    err = _swap("一、元旦：1月1日（周四）至3日", "一、元旦：12月31日至2026年1月3日", 2026)
    assert err.line.startswith("一、元旦：12月31日")


def test_whole_notice_refusals():
    with pytest.raises(NoticeError, match="未找到任何节日条目"):
        parse_notice("国务院办公厅关于2026年部分节假日安排的通知\n国务院办公厅\n")
    lines = [line for line in text(2026).splitlines() if not line.startswith("五、")]
    lines = [re.sub("^[六七]、", lambda m: "五六"["六七".index(m[0][0])] + "、", line) for line in lines]
    with pytest.raises(NoticeError, match="缺少节日：端午节"):
        parse_notice("\n".join(lines))
    with pytest.raises(NoticeError) as e:
        parse_notice(text(2026) + "\n八、元旦：1月1日放假，共1天。")
    assert e.value.line == "八、元旦：1月1日放假，共1天。"


def test_in_lieu_day_is_a_day_off():
    # Layout of the 2017 notice as recalled (not a fixture: the text was not checked against a source);
    # the days it gives agree with chinese_calendar.
    recalled = """国务院办公厅关于2017年部分节假日安排的通知
一、元旦：1月1日放假，1月2日（星期一）补休。
二、春节：1月27日至2月2日放假调休，共7天。1月22日（星期日）、2月4日（星期六）上班。
三、清明节：4月2日至4日放假调休，共3天。4月1日（星期六）上班。
四、劳动节：5月1日放假，与周末连休。
五、端午节：5月28日至30日放假调休，共3天。5月27日（星期六）上班。
六、中秋节、国庆节：10月1日至8日放假调休，共8天。9月30日（星期六）上班。"""
    s = parse_notice(recalled)
    assert s.holidays[D(2017, 1, 2)] == "元旦"
    assert all(chinese_calendar.is_workday(d) is False for d in s.holidays)
    assert all(chinese_calendar.is_workday(d) for d in s.workdays)
    with pytest.raises(NoticeError, match="补休日1月7日是周末"):
        parse_notice(recalled.replace("1月2日（星期一）补休", "1月7日补休"))


def _wrapped(body: str, width: int) -> str:
    """The notice as text taken from a PDF comes: every line cut every `width` characters."""
    return "\n".join(line[i:i + width] for line in body.splitlines() for i in range(0, max(len(line), 1), width))


@pytest.mark.parametrize("width", [9, 13, 17, 24, 31])
@pytest.mark.parametrize("year", YEARS)
def test_items_wrapped_over_several_lines_read_as_one(year, width):
    a, b = parse_notice(text(year)), parse_notice(_wrapped(text(year), width))
    assert (a.holidays, a.workdays) == (b.holidays, b.workdays)


def test_a_line_after_a_finished_item_that_is_no_date_stands_alone():
    body = text(2026).replace("共7天。9月20日（周日）、10月10日（周六）上班。",
                              "共7天。9月20日（周日）、10月10日（周六）上班。\n节假日期间，各地区要妥善安排值班。")
    assert parse_notice(body).workdays == parse_notice(text(2026)).workdays
    # a 上班 sentence on the next line belongs to the item: leaving it out would lose two working days
    cut = text(2026).replace("共7天。9月20日", "共7天。\n9月20日")
    assert parse_notice(cut).workdays == parse_notice(text(2026)).workdays
    with pytest.raises(NoticeError) as e:
        parse_notice(text(2026).replace("共7天。9月20日", "共7天。\n9月2O日"))
    assert e.value.line.startswith("七、国庆节") and e.value.line.endswith("9月2O日（周日）、10月10日（周六）上班。")
