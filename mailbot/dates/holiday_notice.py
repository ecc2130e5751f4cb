"""Read the State Council's yearly holiday notice, as pasted text, into checked days off and make-up working days."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass

from lunar_python import Solar

from mailbot.dates.provisional import anchor_dates

FESTIVALS = ("元旦", "春节", "清明节", "劳动节", "端午节", "中秋节", "国庆节")
NUMERALS = "一二三四五六七八九十"
WEEKDAYS = "一二三四五六日"

# Patterns work on NFKC-normalised text with all whitespace removed, so that
# full-width and half-width brackets, colons, commas and spaces read the same.
DATE = r"(?:\d{4}年)?(?:\d{1,2}月)?\d{1,2}日(?:\([^()]*\))?"
DATE_PARTS = re.compile(r"(?:(\d{4})年)?(?:(\d{1,2})月)?(\d{1,2})日(?:\(([^()]*)\))?")
ITEM = re.compile(rf"(?:([{NUMERALS}]+)、)?((?:{'|'.join(FESTIVALS)})(?:、(?:{'|'.join(FESTIVALS)}))*):(.*)")
NUMBERED = re.compile(rf"[{NUMERALS}]+、")
NEXT_ITEM = re.compile(rf"[{NUMERALS}]+、(?:{'|'.join(FESTIVALS)})")
RANGE = re.compile(rf"({DATE})(?:(?:至|-|—|~)({DATE}))?放假(调休)?(?:(\d+)天)?")
LIST = re.compile(rf"((?:{DATE})(?:、{DATE})*)(调休上班|上班|补休)")
CLAUSE = re.compile(r"[,;](?![^()]*\))")  # a comma inside brackets does not end a clause
TITLE_YEAR = re.compile(r"关于(\d{4})年部分节假日安排的通知|现将(\d{4})年")


class NoticeError(ValueError):
    """The notice text could not be read with certainty; `line` is the offending line ('' when none)."""

    def __init__(self, line: str, reason: str):
        super().__init__(f"{reason}：{line}" if line else reason)
        self.line = line
        self.reason = reason


@dataclass(frozen=True)
class Schedule:
    """Days off and make-up working days of one year, each mapped to the festival item it came from."""

    year: int
    holidays: dict[dt.date, str]
    workdays: dict[dt.date, str]
    lines: tuple[str, ...]


def _norm(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split())


def _lunar_names(day: dt.date) -> set[str]:
    # Spellings the notice may use for the lunar date of `day`, e.g. 农历腊月二十八.
    lunar = Solar.fromYmd(day.year, day.month, day.day).getLunar()
    m, d = abs(lunar.getMonth()), lunar.getDay()
    months = {1: ["正", "一"], 11: ["冬", "十一"], 12: ["腊", "十二"]}.get(m) or [NUMERALS[m - 1]]
    leap = "闰" if lunar.getMonth() < 0 else ""
    tens, unit = divmod(d, 10)
    day_name = ("初" + NUMERALS[d - 1] if d <= 10 else
                ("" if tens == 1 else NUMERALS[tens - 1]) + "十" + (NUMERALS[unit - 1] if unit else ""))
    names = {f"{leap}{m_name}月{day_name}" for m_name in months}
    after = day + dt.timedelta(days=1)
    if m == 12 and Solar.fromYmd(after.year, after.month, after.day).getLunar().getDay() == 1:
        names.add("除夕")
    return names


class _Item:
    """One festival line being read; every check failure names that line."""

    def __init__(self, raw: str, year: int, name: str):
        self.raw, self.year, self.name = raw, year, name
        self.holidays: list[dt.date] = []
        self.workdays: list[dt.date] = []

    def fail(self, reason: str) -> NoticeError:
        return NoticeError(self.raw, reason)

    def date(self, text: str, prev: dt.date | None = None) -> dt.date:
        """Read one date: a bare "3日" takes month and year from `prev`; a month without a year is in the notice year."""
        y, m, d, note = DATE_PARTS.fullmatch(text).groups()
        if m is None and prev is None:
            raise self.fail(f"“{text}”缺少月份")
        year = int(y) if y else self.year if m else prev.year
        try:
            day = dt.date(year, int(m) if m else prev.month, int(d))
        except ValueError:
            raise self.fail(f"日期“{text}”不存在") from None
        # Only 元旦 may start in late December of the year before (as in the
        # 2023 notice, "2022年12月31日至2023年1月2日"), and the notice then writes
        # the year out; any other date outside the year is a misreading.
        if day.year != self.year and not ("元旦" in self.name and day.year == self.year - 1 and day.month == 12):
            raise self.fail(f"日期“{text}”不在{self.year}年内")
        for part in re.split(r"[、,]", note or ""):
            if re.fullmatch(r"(?:周|星期)[一二三四五六日天]", part):
                if WEEKDAYS[day.weekday()] != part[-1].replace("天", "日"):
                    raise self.fail(f"{day.month}月{day.day}日是星期{WEEKDAYS[day.weekday()]}，不是{part}")
            elif part.startswith("农历") or part == "除夕":
                lunar = part.removeprefix("农历").replace("廿", "二十").replace("卅", "三十")
                if lunar not in _lunar_names(day):
                    raise self.fail(f"{day.month}月{day.day}日不是农历{lunar}")
            elif part:
                raise self.fail(f"无法理解括号内的说明“{part}”")
        return day

    def read(self, body: str) -> None:
        sentences = [s for s in body.split("。") if s]
        if not sentences:
            raise self.fail("没有放假日期")
        first, *rest = CLAUSE.split(sentences[0])
        m = RANGE.fullmatch(first)
        if not m:
            raise self.fail("无法识别放假日期")
        start = self.date(m[1])
        end = self.date(m[2], start) if m[2] else start
        if end < start:
            raise self.fail("放假结束日期早于开始日期")
        self.holidays = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
        counts = [int(m[4])] if m[4] else []
        no_swap = False
        for sentence in sentences[1:]:
            if sentence.startswith("鼓励"):
                continue  # advice such as resting on 除夕 in 2024; it moves no day
            rest.extend(CLAUSE.split(sentence))
        for clause in rest:
            if n := re.fullmatch(r"共(\d+)天", clause):
                counts.append(int(n[1]))
            elif clause == "不调休":
                no_swap = True
            elif re.fullmatch(r"与周[末六日]连休", clause):
                if not {(start - dt.timedelta(1)).weekday(), (end + dt.timedelta(1)).weekday()} & {5, 6}:
                    raise self.fail("所称“与周末连休”但放假日不与周末相邻")
            elif lst := LIST.fullmatch(clause):
                self.read_list(lst[1], lst[2])
            else:
                raise self.fail(f"无法理解“{clause}”")
        for n in counts:
            if n != len(self.holidays):
                raise self.fail(f"写明共{n}天，但放假日期共{len(self.holidays)}天")
        if no_swap and self.workdays:
            raise self.fail("写明“不调休”却列有上班日")

    def read_list(self, text: str, kind: str) -> None:
        parts = re.findall(DATE, text)
        if "、".join(parts) != text:
            raise self.fail(f"无法识别日期列表“{text}”")
        day = None
        for part in parts:
            day = self.date(part, day)
            if day in self.holidays or day in self.workdays:
                raise self.fail(f"{day.month}月{day.day}日在本条中重复出现")
            if kind == "补休":
                # A day given in lieu of a festival that fell on a weekend is a weekday.
                if day.weekday() >= 5:
                    raise self.fail(f"补休日{day.month}月{day.day}日是周末")
                self.holidays.append(day)
            else:
                # Make-up working days are always moved weekend days.
                if day.weekday() < 5:
                    raise self.fail(f"上班日{day.month}月{day.day}日不是周六或周日")
                self.workdays.append(day)


def _year(lines: list[str], year: int | None) -> int:
    # the title may be wrapped over two lines: look in the whole text, name the line where one holds it
    found = [(int(m[1] or m[2]), next((raw for raw in lines if m[0] in _norm(raw)), m[0]))
             for m in TITLE_YEAR.finditer(_norm("\n".join(lines)))]
    for y, raw in found:
        if y != (year or found[0][0]):
            why = f"指定年份为{year}" if year else f"前文年份为{found[0][0]}"
            raise NoticeError(raw, f"通知年份{y}与{why}不符")
    if year is None and not found:
        raise NoticeError("", "未找到通知标题中的年份，请指定年份")
    return year or found[0][0]


def logical_lines(text: str) -> list[str]:
    """The notice's lines with an item wrapped over several lines made one again, as text taken
    from a PDF or a narrow mail comes: a line goes on the item above it while that item has not
    ended its sentence (unless it is the next numbered festival), or when it starts with a date
    (the item's 上班 sentence). A blank line ends an item; any other line stands alone."""
    out: list[str] = []
    in_item = False
    for raw in text.replace("\f", "\n").splitlines():
        line = _norm(raw)
        if in_item and line and not NEXT_ITEM.match(line) and (
                not _norm(out[-1]).endswith("。") or line[0].isdigit()):
            out[-1] = out[-1].rstrip() + raw.strip()
            continue
        out.append(raw)
        in_item = bool(NUMBERED.match(line) or ITEM.fullmatch(line))
    return out


def parse_notice(text: str, year: int | None = None) -> Schedule:
    """Read the notice; raise NoticeError on anything not read with certainty."""
    lines = logical_lines(text)
    year = _year(lines, year)
    anchors = anchor_dates(year)
    holidays: dict[dt.date, str] = {}
    workdays: dict[dt.date, str] = {}
    read: list[str] = []
    seen: list[str] = []
    for raw in lines:
        line = _norm(raw)
        m = ITEM.fullmatch(line)
        if not m:
            # Any other numbered line would be an item we do not understand.
            if NUMBERED.match(line):
                raise NoticeError(raw, "无法识别的编号条目")
            continue
        number, name, body = m.groups()
        if number and number != NUMERALS[len(read)]:
            raise NoticeError(raw, f"条目编号“{number}”不连续")
        item = _Item(raw, year, name)
        item.read(body)
        for festival in name.split("、"):
            if festival in seen:
                raise NoticeError(raw, f"{festival}重复出现")
            seen.append(festival)
            # The festival's own day must lie in its days off; a slip in a date
            # would otherwise shift the holiday without anybody noticing.
            if anchors[festival] not in item.holidays:
                a = anchors[festival]
                raise NoticeError(raw, f"放假日期不含{festival}当日（{a.month}月{a.day}日）")
        for day in item.holidays:
            if day in holidays or day in workdays:
                raise NoticeError(raw, f"{day.month}月{day.day}日与其他条目重复")
            holidays[day] = name
        for day in item.workdays:
            if day in holidays or day in workdays:
                raise NoticeError(raw, f"上班日{day.month}月{day.day}日与放假日或其他上班日重复")
            workdays[day] = name
        read.append(raw)
    if not read:
        raise NoticeError("", "未找到任何节日条目")
    if missing := [f for f in FESTIVALS if f not in seen]:
        raise NoticeError("", f"缺少节日：{'、'.join(missing)}")
    return Schedule(year, dict(sorted(holidays.items())), dict(sorted(workdays.items())), tuple(read))


def render(schedule: Schedule) -> list[str]:
    """List every day off and make-up working day in date order, in Chinese, for a person to check."""
    days = [(d, "放假", n) for d, n in schedule.holidays.items()]
    days += [(d, "调休上班", n) for d, n in schedule.workdays.items()]
    return [f"{d.year}年{d.month}月{d.day}日（星期{WEEKDAYS[d.weekday()]}） {kind} {name}"
            for d, kind, name in sorted(days)]
