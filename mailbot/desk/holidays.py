"""Load a year's holiday schedule from the State Council's notice (国务院办公厅关于YYYY年部分节假日安排的通知).

The notice comes pasted in the body or attached as .txt (UTF-8, GB18030 or UTF-16), .docx (its
document.xml read with the standard library) or .pdf (its text layer, by poppler's `pdftotext`).
It is read by dates/holiday_notice.py, which refuses anything it is unsure of; what it reads is
kept in the store (the newest notice of a year is in force, across restarts and upgrades) and put
into the running calendar at once. A rules/calendar/YYYY.yaml of the same year still wins.
"""
from __future__ import annotations

import datetime as dt
import io
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path

from defusedxml import ElementTree as SafeET

from mailbot.dates.holiday_notice import NoticeError, Schedule, parse_notice, render
from mailbot.dates.workdays import WorkCalendar, package_schedule
from mailbot.dates.zone import iso
from mailbot.desk.core import Actor, Answer, Desk, Refused, audited
from mailbot.writing import desk_holidays as words

__all__ = ["load_holidays", "notice_text", "READABLE"]

READABLE = (".txt", ".docx", ".pdf")
_MAX_XML = 20 * 1024 * 1024          # a notice's document.xml is some tens of kilobytes
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


@audited("holidays")
def load_holidays(desk: Desk, actor: Actor, year: int, text: str, *, now: dt.datetime,
                  attachments: Iterable[tuple[str, bytes]] = ()) -> Answer:
    """Make the notice (in `text`, or in the one .txt/.docx/.pdf among `attachments`) `year`'s
    official holiday schedule; the answer lists it day by day for the clerk to check."""
    if not actor.is_credit:
        raise Refused(words.NOT_CREDIT, f"{actor.address} may not load holiday schedules: not the credit section")
    if not 2000 <= int(year) <= 2099:
        raise Refused(words.wrong_year_text(year), f"year {year} out of range")
    year = int(year)
    notice, where = notice_text(text, attachments)
    try:
        schedule = parse_notice(notice, year)
    except NoticeError as e:
        raise Refused(words.notice_unread_text(year, e.reason, e.line),
                      f"notice for {year} not read: {e.reason}" + (f" in line {e.line.strip()!r}" if e.line else "")) \
            from None
    if differs := _against_package(schedule):
        raise Refused(words.package_differs_text(year, differs),
                      f"notice for {year} differs from the published schedule on {len(differs)} day(s): "
                      + ", ".join(d.isoformat() for d, _ in differs[:6]))

    days_off, workdays = frozenset(schedule.holidays), frozenset(schedule.workdays)
    before = desk.store.loaded_calendars().get(year)
    same = before is not None and (before.days_off, before.workdays) == (days_off, workdays)
    was_provisional = desk.calendar.is_provisional(year)
    if not same:
        desk.store.load_calendar(year, days_off, workdays, notice=notice, loaded_by=actor.address, now=now)
    desk.calendar.load(year, days_off, workdays)
    rules_file = (f"{desk.calendar.rules_dir.rstrip('/')}/calendar/{year}.yaml"
                  if desk.calendar.source(year) == "rules" else None)

    previous = words.Previous(before.loaded_at, before.loaded_by, same) if before is not None else None
    text_zh = words.holidays_loaded_text(schedule, source=where, previous=previous, was_provisional=was_provisional,
                                         rules_file=rules_file)
    summary = (f"{year} holiday schedule {'unchanged' if same else 'loaded'}: {len(days_off)} day(s) off, "
               f"{len(workdays)} weekend day(s) worked"
               + (f"; replaces the one loaded by {before.loaded_by} at {iso(before.loaded_at)}" if before and not same
                  else "")
               + (f"; {rules_file} still wins" if rules_file else ""))
    data = {"year": year, "days_off": sorted(d.isoformat() for d in days_off),
            "workdays": sorted(d.isoformat() for d in workdays), "schedule": render(schedule),
            "changed": not same, "source": desk.calendar.source(year), "rules_file": rules_file,
            "replaced": None if before is None or same else
            {"loaded_at": iso(before.loaded_at), "loaded_by": before.loaded_by}}
    return Answer("holidays", True, summary, text_zh, data=data)


def _against_package(schedule: Schedule) -> list[tuple[dt.date, bool]]:
    """The days a notice for a year the package knows reads otherwise than the package: (day,
    whether the notice makes it a working day). Empty for a year the package does not know."""
    if package_schedule(schedule.year) is None:
        return []
    published = WorkCalendar()
    days = {dt.date(schedule.year, 1, 1) + dt.timedelta(days=i) for i in range(366)}
    days = {d for d in days if d.year == schedule.year} | set(schedule.holidays) | set(schedule.workdays)
    differs = []
    for day in sorted(days):
        works = day in schedule.workdays or (day.weekday() < 5 and day not in schedule.holidays)
        if works != published.is_workday(day):
            differs.append((day, works))
    return differs


# ---------------------------------------------------------------- the notice's text

def notice_text(body: str, attachments: Iterable[tuple[str, bytes]]) -> tuple[str, str]:
    """(the notice's text, where it was read, in Chinese): the one readable attachment, else the
    body. Refused when there are several, when the one cannot be read, or when there is nothing."""
    files = list(attachments)
    readable = [(n, b) for n, b in files if Path(n).suffix.lower() in READABLE]
    if len(readable) > 1:
        names = "、".join(n for n, _ in readable)
        raise Refused(words.TOO_MANY.format(names=names), f"{len(readable)} notice files attached: {names}")
    if readable:
        name, data = readable[0]
        return _read_file(name, data), f"附件“{name}”"
    if body and "元旦" in body:                  # every notice has its 元旦 item
        return body, "邮件正文"
    if files:
        name = files[0][0]
        raise Refused(words.unreadable_attachment_text(name, "只能读取 .txt、.docx、.pdf 格式"),
                      f"attachment {name!r}: not .txt, .docx or .pdf")
    raise Refused(words.NO_NOTICE, "no notice in the body or attachments")


def _read_file(name: str, data: bytes) -> str:
    suffix = Path(name).suffix.lower()
    reader = {".txt": _read_txt, ".docx": _read_docx, ".pdf": _read_pdf}[suffix]
    try:
        text = reader(data)
    except _Unreadable as e:
        raise Refused(words.unreadable_attachment_text(name, e.zh), f"attachment {name!r}: {e.en}") from None
    if not text.strip():
        why = ("其中没有文字（可能是扫描件或图片），无法识别" if suffix == ".pdf" else "其中没有文字")
        raise Refused(words.unreadable_attachment_text(name, why), f"attachment {name!r}: no text")
    return text


class _Unreadable(Exception):
    def __init__(self, zh: str, en: str):
        super().__init__(en)
        self.zh, self.en = zh, en


def _read_txt(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise _Unreadable("文字编码无法识别", "undecodable UTF-16") from None
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise _Unreadable("文字编码无法识别（应为 UTF-8 或 GB18030）", "neither UTF-8 nor GB18030")


def _read_docx(data: bytes) -> str:
    """The paragraphs of word/document.xml, one a line (a tab or line break inside one kept)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            info = z.getinfo("word/document.xml")
            if info.file_size > _MAX_XML:
                raise _Unreadable("文件过大", f"document.xml of {info.file_size} bytes")
            xml = z.read(info)
    except (zipfile.BadZipFile, KeyError, OSError, RuntimeError, NotImplementedError) as e:
        raise _Unreadable("不是有效的 .docx 文件", f"not a .docx: {type(e).__name__}: {e}") from None
    try:
        root = SafeET.fromstring(xml, forbid_dtd=True)
    except Exception as e:  # noqa: BLE001 - defusedxml and expat raise several kinds
        raise _Unreadable("不是有效的 .docx 文件", f"document.xml unreadable: {type(e).__name__}") from None
    lines = []
    for p in root.iter(f"{_W}p"):
        parts = []
        for node in p.iter():
            if node.tag == f"{_W}t":
                parts.append(node.text or "")
            elif node.tag == f"{_W}tab":
                parts.append("\t")
            elif node.tag in (f"{_W}br", f"{_W}cr"):
                parts.append("\n")
        lines.append("".join(parts))
    return "\n".join(lines)


def _read_pdf(data: bytes) -> str:
    """The PDF's text layer, by poppler's pdftotext (in reading order; wrapped items are joined by
    the notice reader)."""
    exe = shutil.which("pdftotext")
    if exe is None:
        raise _Unreadable("服务器未安装 PDF 读取工具（poppler-utils 的 pdftotext），暂不能读取 PDF",
                          "pdftotext (poppler-utils) is not installed")
    with tempfile.TemporaryDirectory(prefix="mailbot-notice-") as tmp:
        path = Path(tmp) / "notice.pdf"
        path.write_bytes(data)
        try:
            done = subprocess.run([exe, "-enc", "UTF-8", "-q", str(path), "-"], capture_output=True, timeout=60)
        except subprocess.TimeoutExpired:
            raise _Unreadable("读取超时", "pdftotext timed out") from None
    if done.returncode != 0:
        raise _Unreadable("不是有效的 PDF 文件，或文件已加密、损坏",
                          f"pdftotext exit {done.returncode}: {done.stderr.decode('utf-8', 'replace').strip()[:200]}")
    return done.stdout.decode("utf-8", "replace")
