"""The bureau's things as plain, frozen values: what flows between the pipeline's stages.

Nothing here does I/O. Every stage takes and returns these, so a test can build any of
them by hand and a stage can be read without the others.
"""
from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Severity", "Problem", "Evidence",
    "Section", "Deadline", "Column", "RowCheck", "SheetSpec", "CoverSpec", "Task", "Rules",
    "Attachment", "Incoming", "Screening",
    "FileKind", "Table", "Workbook",
    "ItemClass", "Classification", "ItemResult", "Outcome", "Verdict", "Authentication",
    "OutgoingMail", "Replaced", "REUSED_FILE", "REUSED_FILE_POLICIES",
]

# The problem code of a file already submitted for another period (the plan's 严禁弄虚作假),
# and what a task's `reused_file` may say of it.
REUSED_FILE = "same-file-other-period"
REUSED_FILE_POLICIES = ("warn", "reject")


# ---------------------------------------------------------------- problems and evidence

class Severity(str, enum.Enum):
    ERROR = "error"      # the file is rejected; the sender must fix and resend
    WARNING = "warning"  # accepted, but the receipt and the summaries mention it


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a submission, located as precisely as the input allows.

    `code` names the check once (``bad-credit-code``, ``missing-column``...) and reads the
    same in logs, the database and tests; `message` is the Chinese sentence the sender reads,
    already carrying the location ("工作表'双公示台账'第5行'决定日期'(D5): ...").
    """
    code: str
    message: str
    severity: Severity = Severity.ERROR
    sheet: str | None = None
    row: int | None = None        # 1-based, as Excel shows it
    column: str | None = None     # the template's column name (header text)
    cell: str | None = None       # "D5"
    hint: str | None = None       # how to fix it, in Chinese

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def as_dict(self) -> dict[str, Any]:
        d = {"code": self.code, "severity": self.severity.value, "message": self.message}
        for k in ("sheet", "row", "column", "cell", "hint"):
            v = getattr(self, k)
            if v is not None:
                d[k] = v
        return d


@dataclass(frozen=True)
class Evidence:
    """Why the bot decided what it decided, so the receipt can say it and a person can correct it.

    decision: "section" | "task" | "period"; source: "sender" | "cover" | "sheet" | "header" |
    "filename" | "subject" | "body" | "received"; detail: the Chinese phrase for the receipt,
    e.g. "按工作表'双公示台账'识别为任务3".
    """
    decision: str
    value: str
    source: str
    detail: str


# ---------------------------------------------------------------- the rules (rules/ as data)

@dataclass(frozen=True)
class Section:
    id: str                      # its Chinese name, stable: "政策法规科"
    aliases: tuple[str, ...] = ()
    kind: str = "业务科室"        # "业务科室" | "综合科室": what 各业务科室 expands to


@dataclass(frozen=True)
class Deadline:
    """One deadline rule of a task, as the plan states it.

    kind "monthly": due before `day` of each month (a month without that day: its last day).
    kind "event":   due `working_days` working days or `hours` hours after the event whose
                    date is in column `event_column` of the task's sheet, reported in
                    column `report_column`.
    kind "count":   at least `at_least` submissions `per` "month" | "year".
    kind "asap":    no arithmetic (the plan says 第一时间); tracked, never computed.
    """
    kind: str
    day: int | None = None
    working_days: int | None = None
    hours: int | None = None
    at_least: int | None = None
    per: str | None = None
    event_column: str | None = None
    report_column: str | None = None
    stated: bool = True          # False where the plan gives no figure and rules/ assumes one
    source: str = ""             # the plan's words this rule comes from


@dataclass(frozen=True)
class Column:
    """A template column. `type`: text | integer | number | date | enum | credit_code | phone."""
    name: str
    type: str = "text"
    required: bool = False
    required_if: tuple[str, tuple[str, ...]] | None = None   # (other column, values that make it required)
    aliases: tuple[str, ...] = ()
    # other names people give the column: read as it, with a warning naming the cell
    synonyms: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()
    width: int = 16
    help: str = ""
    minimum: float | None = None
    maximum: float | None = None


@dataclass(frozen=True)
class RowCheck:
    """A rule the plan sets on a row's content, e.g. 双公示 uploaded within 7 working days.

    kind "within_working_days" | "within_hours" | "not_before": `later` must fall no later
    than `limit` after `earlier` (for not_before: `later` >= `earlier`). A failed check is a
    Problem of `severity` with code `code`; `counts_against` names the rate it lowers
    (e.g. "及时率").
    """
    kind: str
    earlier: str
    later: str
    limit: int = 0
    code: str = "late"
    severity: Severity = Severity.WARNING
    counts_against: str | None = None
    message: str = ""


@dataclass(frozen=True)
class SheetSpec:
    """One sheet of the Annex 1 template: the ledger of one task."""
    task: int
    name: str
    aliases: tuple[str, ...] = ()
    columns: tuple[Column, ...] = ()
    row_checks: tuple[RowCheck, ...] = ()
    allow_empty: bool = False    # a month with nothing to report is a legitimate answer
    title: str = ""              # the merged title row written above the header
    help: str = ""
    key: tuple[str, ...] = ()    # columns naming one item: a joint task's rows two sections both
                                 # report are merged on them in the package, not doubled

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)


@dataclass(frozen=True)
class CoverSpec:
    """The cover sheet: label/value pairs (报送科室, 报送月份, 联系人, 联系电话)."""
    name: str
    aliases: tuple[str, ...] = ()
    fields: tuple[Column, ...] = ()


@dataclass(frozen=True)
class Task:
    number: int
    title: str
    text: str                    # the plan's full wording
    group: str                   # "(一)完善社会信用体系制度,加强基础建设。"
    sections: tuple[str, ...]    # section ids, 各业务科室 already expanded
    deadlines: tuple[Deadline, ...]
    sheets: tuple[str, ...]      # names of the SheetSpecs that carry this task's ledger
    file_kinds: tuple[str, ...]  # FileKind values accepted as evidence for this task
    keywords: tuple[str, ...]    # how people name it in subjects and file names
    responsibility: str = ""     # the plan's own 责任单位 wording
    reused_file: str = "warn"    # a file already submitted for another period: "warn" (accepted,
                                 # never counted) | "reject" (refused) — the plan's 严禁弄虚作假

    @property
    def joint(self) -> bool:
        """Several sections answer for it (a 共同责任单位 task): their rows may repeat each other."""
        return len(self.sections) > 1


@dataclass(frozen=True)
class Rules:
    sections: tuple[Section, ...]
    tasks: tuple[Task, ...]
    sheets: tuple[SheetSpec, ...]
    cover: CoverSpec
    # years -> {"holidays": set[date], "workdays": set[date]}: overrides and years the
    # calendar package does not know (rules/calendar/<year>.yaml)
    calendar: dict[int, dict[str, frozenset[dt.date]]] = field(default_factory=dict)
    template_requests: tuple[str, ...] = ()   # subject words asking for a blank template
    reminders: dict[str, Any] = field(default_factory=dict)
    limits: dict[str, int] = field(default_factory=dict)     # zip/unpack bounds etc.
    source_dir: str = ""

    def section(self, id_or_alias: str) -> Section | None:
        key = id_or_alias.strip()
        for s in self.sections:
            if key == s.id or key in s.aliases:
                return s
        return None

    def task(self, number: int) -> Task | None:
        return next((t for t in self.tasks if t.number == number), None)

    def sheet(self, name: str) -> SheetSpec | None:
        return next((s for s in self.sheets if s.name == name), None)

    def tasks_of(self, section_id: str) -> tuple[Task, ...]:
        return tuple(t for t in self.tasks if section_id in t.sections)


# ---------------------------------------------------------------- a parsed message

@dataclass(frozen=True)
class Attachment:
    """A file found in a message, however deeply: inside a forwarded message, a zip, a winmail.dat.

    `origin` says where it came from, outermost first, for the receipt ("转发邮件 > 材料.zip").
    """
    filename: str
    content: bytes
    declared_type: str = "application/octet-stream"
    inline: bool = False
    origin: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()   # decoding notes: "filename recovered from raw GBK bytes"
    # what went wrong unpacking it (zip bomb, encrypted zip, broken TNEF): the file is then
    # kept whole, as received, and rejected with these problems
    problems: tuple["Problem", ...] = ()

    @property
    def size(self) -> int:
        return len(self.content)


@dataclass(frozen=True)
class Incoming:
    """A message as the pipeline sees it: decoded headers, body text and every file in it."""
    message_id: str               # without angle brackets; synthesised from the sha256 if absent
    subject: str
    from_addr: str                # lower-cased address
    from_name: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    reply_to: tuple[str, ...]
    date: dt.datetime | None      # the Date header, aware, if it parsed
    in_reply_to: str | None
    references: tuple[str, ...]
    headers: dict[str, tuple[str, ...]]   # lower-case name -> decoded values, every occurrence
    content_type: str             # the top-level type, e.g. "multipart/report"
    text: str                     # the readable body (plain, or HTML stripped), forwarded ones included
    attachments: tuple[Attachment, ...]
    problems: tuple[Problem, ...] = ()    # what parsing could not do (bad zip, bomb...), as Problems
    notes: tuple[str, ...] = ()           # parse defects worth logging (English)
    # what is wrong with the From header itself (a name showing another address, several
    # addresses or From headers, no address): such a message is never accepted
    sender_problems: tuple[Problem, ...] = ()
    from_claims: tuple[str, ...] = ()     # every address the From header(s) show, from_addr first
    followup_to: tuple[str, ...] = ()     # Mail-Followup-To

    def header(self, name: str) -> str | None:
        v = self.headers.get(name.lower())
        return v[0] if v else None


@dataclass(frozen=True)
class Screening:
    """Why a message gets no answer (RFC 3834): code such as auto-submitted, bounce, list, own-mail."""
    code: str
    reason: str


# ---------------------------------------------------------------- files and workbooks

class FileKind(str, enum.Enum):
    XLSX = "xlsx"
    XLSM = "xlsm"
    XLS = "xls"
    ET = "et"
    ODS = "ods"
    CSV = "csv"
    PDF = "pdf"
    DOCX = "docx"
    DOC = "doc"
    WPS = "wps"
    ODT = "odt"
    JPEG = "jpeg"
    PNG = "png"
    GIF = "gif"
    ZIP = "zip"
    RAR = "rar"
    SEVENZ = "7z"
    EML = "eml"
    TNEF = "tnef"
    TEXT = "text"
    ENCRYPTED = "encrypted"      # an OLE container holding an encrypted OOXML package
    EXECUTABLE = "executable"
    UNKNOWN = "unknown"

    @property
    def is_workbook(self) -> bool:
        return self in (FileKind.XLSX, FileKind.XLS, FileKind.ET, FileKind.ODS)


@dataclass(frozen=True)
class Table:
    """A sheet as read: its name and its cells, rows of values (str, int, float, date, datetime, bool, None)."""
    name: str
    rows: tuple[tuple[Any, ...], ...]
    merged: tuple[tuple[int, int, int, int], ...] = ()   # (first_row, first_col, last_row, last_col), 0-based


@dataclass(frozen=True)
class Workbook:
    kind: FileKind
    tables: tuple[Table, ...]
    date1904: bool = False


# ---------------------------------------------------------------- decisions

@dataclass(frozen=True)
class Classification:
    """Which task and month one file answers for, with the evidence for each."""
    task: int | None
    period: str | None            # "YYYY-MM"
    evidence: tuple[Evidence, ...] = ()
    problems: tuple[Problem, ...] = ()    # "cannot tell the task: say 任务N in the subject"


@dataclass(frozen=True)
class ItemClass:
    """Classification of one file in the message, before validation."""
    attachment: Attachment
    kind: FileKind
    classification: Classification


@dataclass(frozen=True)
class ItemResult:
    """One file's verdict: what it is, what it answers for, and what is wrong with it."""
    filename: str
    kind: FileKind
    sha256: str
    task: int | None
    period: str | None
    status: str                   # "accepted" | "rejected" | "skipped" (inline logo, signature...)
    problems: tuple[Problem, ...] = ()
    evidence: tuple[Evidence, ...] = ()
    rows: int = 0                 # data rows read from the task sheet(s)
    sheets: tuple[str, ...] = ()  # task sheets found in a workbook
    origin: tuple[str, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)   # per-sheet rows kept for the monthly package
    due: dt.date | None = None    # the monthly deadline this file answers for, if the task has one
    on_time: bool | None = None

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.is_error)

    @property
    def warnings(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if not p.is_error)

    @property
    def reused(self) -> bool:
        """The very file was already submitted for another period: it counts for nothing here."""
        return any(p.code == REUSED_FILE for p in self.problems)


class Outcome(str, enum.Enum):
    ACCEPTED = "accepted"
    PARTIALLY_ACCEPTED = "partially_accepted"
    REJECTED = "rejected"
    IGNORED = "ignored"
    QUARANTINED = "quarantined"
    COMMAND = "command"           # the credit section's (or a section's 查询) mail command, executed and answered
    FORWARDED = "forwarded"       # a person's reply to one of our letters, passed on to the credit section


@dataclass(frozen=True)
class Command:
    """A desk command read from a mail (desk/commands.py): the action's English id, the word as
    written, its arguments, and — for one that could not be read — why, in Chinese."""
    name: str                     # help, query, package, remind, bulletin, confirm, reject, ignore, reclassify, holidays, close
    word: str                     # 帮助, 查询, ...
    line: str                     # the line it was read from
    args: dict[str, Any] = field(default_factory=dict)
    error: str | None = None      # malformed: the reason (the answer adds the help text)


@dataclass(frozen=True)
class Verdict:
    """What the pipeline decided about one message; apply() stores it and drafts the reply."""
    outcome: Outcome
    reason: str                   # one line, English, for logs and the CLI
    section: str | None
    section_evidence: tuple[Evidence, ...] = ()
    items: tuple[ItemResult, ...] = ()
    problems: tuple[Problem, ...] = ()    # message-level problems (no attachment, unknown sender...)
    reply: bool = True            # False for ignored mail and where the reply cap says so
    attach_template: bool = False
    template_period: str | None = None   # set when the message only asks for the blank template
    recipients: tuple[str, ...] = ()      # where the reply goes (decided by pipeline.decide; else From)
    copy_to: tuple[str, ...] = ()         # Cc: a section whose address a suspicious message claimed
    command: Command | None = None        # outcome COMMAND: what to do (process() runs it at the desk)
    thread: str | None = None             # outcome FORWARDED: the Message-ID of our letter it answers


@dataclass(frozen=True)
class Authentication:
    """Which Authentication-Results (RFC 8601) mailbot believes: those its own server adds under
    `authserv_id`; a message claiming a registered address must show `require`=pass there."""
    authserv_id: str
    require: str = "dmarc"        # dmarc | dkim | spf


# ---------------------------------------------------------------- mail going out

@dataclass(frozen=True)
class OutgoingMail:
    """A mail to queue: built completely (bytes and Message-ID) before its row is written."""
    # receipt | rejection | quarantine_notice | reminder | overdue | digest | package | template
    kind: str
    recipients: tuple[str, ...]
    subject: str
    mail_message_id: str           # the stable Message-ID of the outgoing mail, with or without <>
    raw: bytes
    dedupe_key: str | None = None  # "reminder:政策法规科:3:2026-11:5wd": queued at most once


@dataclass(frozen=True)
class Replaced:
    """An earlier accepted submission a new one replaced (same section, task and month)."""
    task: int
    period: str
    receipt_no: str
    received_at: dt.datetime
    from_addr: str
