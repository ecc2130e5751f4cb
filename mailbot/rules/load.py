"""Loads rules/ (the plan's tasks, the sections, the Annex 1 template, holidays, settings) into
model.Rules, and reports every mistake in it at once, each with its file and line.

The YAML is read with PyYAML's node API (compose, never construct): nodes keep their line
numbers, and no value is silently turned into a bool, a float or a sexagesimal number
(``send_at: 09:00``, a keyword ``3.15``, a section ``NO``); every value is read as the text the
editor wrote and converted here, where a wrong one becomes a RuleIssue.
"""
from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from mailbot.model import (
    REUSED_FILE_POLICIES, Column, CoverSpec, Deadline, FileKind, RowCheck, Rules, Section, Severity, SheetSpec, Task,
)

__all__ = [
    "RuleIssue", "RulesError", "load_rules", "check_rules",
    "COLUMN_TYPES", "SECTION_KINDS", "SECTION_GROUPS", "DEADLINE_KINDS", "ROW_CHECK_KINDS",
    "LIMIT_KEYS", "REMINDER_KEYS", "INSTRUCTIONS_SHEET", "TASK_COUNT",
]

TASK_COUNT = 11                                  # the plan's 重点任务 1..11
COLUMN_TYPES = ("text", "integer", "number", "date", "enum", "credit_code", "phone")
SECTION_KINDS = ("业务科室", "综合科室")
# the plan's collective names for sections; None = every section
SECTION_GROUPS: dict[str, str | None] = {"各业务科室": "业务科室", "各综合科室": "综合科室", "各科室": None}
# per deadline kind: the keys that kind takes besides kind / stated / source
DEADLINE_KINDS: dict[str, tuple[str, ...]] = {
    "monthly": ("day",),
    "event": ("working_days", "hours", "event_column", "report_column"),
    "count": ("at_least", "per"),
    "asap": (),
}
ROW_CHECK_KINDS = ("not_before", "within_working_days", "within_hours")
# the keys unpack.Budget takes (it notes any other as unknown); *_bytes may be written "200 MB"
LIMIT_KEYS = ("max_unpacked_bytes", "max_files", "max_depth", "max_ratio")
REMINDER_KEYS = ("before_workdays", "overdue_workdays", "count_check_months", "send_at", "on_due_day",
                 "overdue_grace_workdays", "escalate_after_workdays", "monthly_due_shift")
# reminders: monthly_due_shift (deadlines.SHIFTS): what a monthly due date on a day off becomes
DUE_SHIFTS = ("none", "previous_workday", "next_workday")
INSTRUCTIONS_SHEET = "填报说明"                   # written by templates.py, never a task sheet
COVER_PREFILLED = ("报送科室", "报送月份")          # the template writer fills these in

SECTIONS_FILE = "sections.yaml"
TASKS_FILE = "tasks.yaml"
SETTINGS_FILE = "settings.yaml"
TEMPLATES_DIR = "templates"
CALENDAR_DIR = "calendar"

_EXCEL_SHEET_FORBIDDEN = set('[]:*?/\\')
_CODE_RE = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_INT_RE = re.compile(r"^[-+]?\d+$")
_NULLS = ("", "~", "null", "Null", "NULL")
_LIST_VALIDATION_MAX = 255                       # Excel's limit on a list validation's text


# ---------------------------------------------------------------- issues

@dataclass(frozen=True)
class RuleIssue:
    """One mistake in rules/: where it is and what is wrong (English, for the editor and the CLI)."""
    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}" if self.line else f"{self.file}: {self.message}"


class RulesError(Exception):
    """rules/ cannot be used; `issues` lists every mistake found, not just the first."""

    def __init__(self, issues: Iterable[RuleIssue]):
        self.issues = list(issues)
        super().__init__("\n".join(str(i) for i in self.issues))


# ---------------------------------------------------------------- public API

def load_rules(path: str | Path) -> Rules:
    """Read and cross-check the rules directory; raise RulesError listing every mistake."""
    rules, issues = _read(Path(path))
    if issues or rules is None:
        raise RulesError(issues or [RuleIssue(str(path), None, "rules could not be read")])
    return rules


def check_rules(path: str | Path) -> list[RuleIssue]:
    """Every mistake in the rules directory, each with its file and line; [] when all is well."""
    return _read(Path(path))[1]


# ---------------------------------------------------------------- one YAML file, read as nodes

def _line(node: Node) -> int:
    return node.start_mark.line + 1


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.style is None and node.value in _NULLS


def _what(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    return f"'{node.value}'"


@dataclass
class _Map:
    """A mapping's non-empty values and key nodes, so a message can point at either."""
    node: MappingNode
    values: dict[str, Node] = field(default_factory=dict)
    keys: dict[str, Node] = field(default_factory=dict)

    def get(self, key: str) -> Node | None:
        return self.values.get(key)

    def line(self, key: str | None = None) -> int:
        if key is not None and key in self.keys:
            return _line(self.keys[key])
        return _line(self.node)


class _Doc:
    """One YAML file of rules/: its root node and the issues found in it."""

    def __init__(self, root: Path, rel: str, issues: list[RuleIssue]):
        self.path = root / rel
        self.rel = rel                  # for cross-references inside a message
        self.name = str(self.path)
        self._issues = issues

    def add(self, where: Node | int | None, message: str) -> None:
        line = where if isinstance(where, int) or where is None else _line(where)
        self._issues.append(RuleIssue(self.name, line, message))

    def load(self) -> Node | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            self.add(None, "file is missing")
            return None
        except (OSError, UnicodeDecodeError) as e:
            self.add(None, f"cannot read the file (it must be UTF-8 text): {e}")
            return None
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            problem = " ".join(x for x in (e.context, e.problem) if x)
            self.add(mark.line + 1 if mark else None, f"YAML syntax error: {problem}")
            return None
        except yaml.YAMLError as e:
            self.add(None, f"YAML syntax error: {e}")
            return None
        if node is None:
            self.add(None, "file is empty")
        return node

    # ---- shapes

    def mapping(self, node: Node, what: str, keys: Iterable[str], required: Iterable[str] = ()) -> _Map | None:
        """A mapping with only `keys`; unknown and duplicate keys and missing `required` ones are issues."""
        if not isinstance(node, MappingNode):
            self.add(node, f"{what} must be a mapping of 'key: value' lines, found {_what(node)}")
            return None
        keys = tuple(keys)
        m, seen = _Map(node), set()
        for k, v in node.value:
            if not isinstance(k, ScalarNode):
                self.add(k, f"{what}: a key must be a plain word")
                continue
            key = k.value
            if key in seen:
                self.add(k, f"{what}: key '{key}' appears twice")
                continue
            seen.add(key)
            if key not in keys:
                near = difflib.get_close_matches(key, keys, n=1, cutoff=0.6)
                hint = f" (did you mean '{near[0]}'?)" if near else f" (known keys: {', '.join(keys)})"
                self.add(k, f"{what}: unknown key '{key}'{hint}")
                continue
            m.keys[key] = k
            if not _is_null(v):
                m.values[key] = v
        for key in required:
            if key not in m.values:
                where = m.keys.get(key, node)
                self.add(where, f"{what}: '{key}' is {'empty' if key in m.keys else 'missing'}")
        return m

    def seq(self, node: Node, what: str) -> list[Node]:
        if isinstance(node, SequenceNode):
            return list(node.value)
        self.add(node, f"{what} must be a list ('- item' lines or [a, b]), found {_what(node)}")
        return []

    def text(self, node: Node, what: str) -> str | None:
        if not isinstance(node, ScalarNode):
            self.add(node, f"{what} must be text, found {_what(node)}")
            return None
        value = node.value.strip()
        if not value:
            self.add(node, f"{what} is empty")
            return None
        return value

    def texts(self, node: Node | None, what: str) -> list[tuple[str, Node]]:
        """A list of texts (a single text is taken as a list of one), with each item's node."""
        if node is None:
            return []
        items = [node] if isinstance(node, ScalarNode) else self.seq(node, what)
        out = []
        for item in items:
            if _is_null(item):
                self.add(item, f"{what}: an item is empty")
                continue
            t = self.text(item, f"{what}: item")
            if t is not None:
                out.append((t, item))
        return out

    def integer(self, node: Node, what: str, lo: int | None = None, hi: int | None = None) -> int | None:
        if not isinstance(node, ScalarNode) or not _INT_RE.match(node.value.strip()):
            self.add(node, f"{what} must be a whole number, found {_what(node)}")
            return None
        n = int(node.value)
        if (lo is not None and n < lo) or (hi is not None and n > hi):
            rng = f"{lo}..{hi}" if hi is not None else f">= {lo}"
            self.add(node, f"{what} must be {rng}, found {n}")
            return None
        return n

    def number(self, node: Node, what: str) -> float | None:
        try:
            if not isinstance(node, ScalarNode):
                raise ValueError
            x = float(node.value)
            if x != x or x in (float("inf"), float("-inf")):
                raise ValueError
            return x
        except ValueError:
            self.add(node, f"{what} must be a number, found {_what(node)}")
            return None

    def boolean(self, node: Node | None, what: str, default: bool) -> bool:
        if node is None:
            return default
        value = node.value.strip().lower() if isinstance(node, ScalarNode) else None
        if value in ("true", "yes"):
            return True
        if value in ("false", "no"):
            return False
        self.add(node, f"{what} must be true or false, found {_what(node)}")
        return default

    def choice(self, node: Node, what: str, choices: Iterable[str]) -> str | None:
        value = self.text(node, what)
        choices = tuple(choices)
        if value is not None and value not in choices:
            self.add(node, f"{what} must be one of {', '.join(choices)}; found '{value}'")
            return None
        return value

    def date(self, text: str, node: Node, what: str) -> dt.date | None:
        try:
            if not _DATE_RE.match(text):
                raise ValueError
            return dt.date.fromisoformat(text)
        except ValueError:
            self.add(node, f"{what}: '{text}' is not a date written YYYY-MM-DD")
            return None


# ---------------------------------------------------------------- drafts: values plus their lines

@dataclass
class _TaskDraft:
    doc: _Doc
    line: int
    number: int | None
    title: str
    text: str
    group: str
    responsibility: str
    sections: list[tuple[str, Node]]
    deadlines: list[tuple[Deadline, int]]
    sheets: list[tuple[str, Node]]
    file_kinds: tuple[str, ...]
    keywords: list[tuple[str, Node]]
    reused_file: str = REUSED_FILE_POLICIES[0]


@dataclass
class _SheetDraft:
    doc: _Doc
    line: int
    spec: SheetSpec
    name_node: Node
    alias_nodes: list[tuple[str, Node]]
    task_node: Node | None
    key_node: Node | None = None


# ---------------------------------------------------------------- the reader

def _read(root: Path) -> tuple[Rules | None, list[RuleIssue]]:
    issues: list[RuleIssue] = []
    if not root.is_dir():
        return None, [RuleIssue(str(root), None, "rules directory not found")]

    sections, sections_ok = _read_sections(_Doc(root, SECTIONS_FILE, issues))
    tasks_doc = _Doc(root, TASKS_FILE, issues)
    drafts, tasks_anchor = _read_tasks(tasks_doc)
    cover, sheet_drafts, templates_ok = _read_templates(root, issues)
    settings = _read_settings(_Doc(root, SETTINGS_FILE, issues))
    calendar = _read_calendar(root, issues)

    tasks = _cross_check(tasks_doc, tasks_anchor, drafts, sections, sections_ok,
                         sheet_drafts, templates_ok, cover)

    issues = _ordered(issues)
    if issues:
        return None, issues
    order = {t.number: i for i, t in enumerate(tasks)}
    sheets = tuple(d.spec for d in sorted(sheet_drafts, key=lambda d: order.get(d.spec.task, 99)))
    rules = Rules(
        sections=tuple(sections), tasks=tuple(tasks), sheets=sheets, cover=cover,
        calendar=calendar, template_requests=settings[0], reminders=settings[1],
        limits=settings[2], source_dir=str(root),
    )
    return rules, []


def _ordered(issues: list[RuleIssue]) -> list[RuleIssue]:
    seen, out = set(), []
    for i in sorted(issues, key=lambda i: (i.file, i.line or 0)):
        if i not in seen:
            seen.add(i)
            out.append(i)
    return out


# ---- sections.yaml

def _read_sections(doc: _Doc) -> tuple[list[Section], bool]:
    root = doc.load()
    if root is None:
        return [], False
    top = doc.mapping(root, "sections.yaml", ("sections",), required=("sections",))
    if top is None or top.get("sections") is None:
        return [], False
    sections: list[Section] = []
    owner: dict[str, tuple[str, int]] = {}      # id or alias -> (section id, line)
    for item in doc.seq(top.get("sections"), "sections"):
        m = doc.mapping(item, "section", ("id", "kind", "aliases"), required=("id", "kind"))
        if m is None:
            continue
        sid = doc.text(m.get("id"), "section id") if m.get("id") else None
        if sid is None:
            continue
        what = f"section '{sid}'"
        kind = doc.choice(m.get("kind"), f"{what}: kind", SECTION_KINDS) if m.get("kind") else None
        if sid in SECTION_GROUPS:
            doc.add(m.get("id"), f"{what}: '{sid}' is reserved for a group of sections in tasks.yaml")
        aliases = []
        for name, node in [(sid, m.get("id"))] + doc.texts(m.get("aliases"), f"{what}: aliases"):
            if name in owner:
                other, line = owner[name]
                doc.add(node, f"{what}: name '{name}' is already used by section '{other}' (line {line})")
                continue
            owner[name] = (sid, _line(node))
            if name != sid:
                aliases.append(name)
        sections.append(Section(id=sid, aliases=tuple(aliases), kind=kind or SECTION_KINDS[0]))
    if not sections:
        doc.add(top.line("sections"), "no sections defined")
    return sections, True


# ---- tasks.yaml

_TASK_KEYS = ("number", "title", "group", "text", "responsibility", "sections", "deadlines",
              "sheets", "file_kinds", "keywords")
_TASK_OPTIONAL = ("reused_file",)         # default warn


def _read_tasks(doc: _Doc) -> tuple[list[_TaskDraft], int | None]:
    root = doc.load()
    if root is None:
        return [], None
    top = doc.mapping(root, "tasks.yaml", ("groups", "file_groups", "tasks"), required=("groups", "tasks"))
    if top is None:
        return [], None

    groups: dict[str, str] = {}
    gnode = top.get("groups")
    if gnode is not None and not isinstance(gnode, MappingNode):
        doc.add(gnode, f"groups must be a mapping of key to heading, found {_what(gnode)}")
    elif gnode is not None:
        for k, v in gnode.value:
            key = k.value if isinstance(k, ScalarNode) else ""
            if key in groups:
                doc.add(k, f"group '{key}' appears twice")
            heading = doc.text(v, f"group '{key}'")
            if heading:
                groups.setdefault(key, heading)

    file_groups = _read_file_groups(doc, top.get("file_groups"))

    drafts: list[_TaskDraft] = []
    for item in doc.seq(top.get("tasks"), "tasks") if top.get("tasks") is not None else ():
        d = _read_task(doc, item, groups, file_groups)
        if d is not None:
            drafts.append(d)
    return drafts, top.line("tasks")


def _read_file_groups(doc: _Doc, node: Node | None) -> dict[str, tuple[str, ...]]:
    if node is None:
        return {}
    kinds = {k.value for k in FileKind}
    if not isinstance(node, MappingNode):
        doc.add(node, f"file_groups must be a mapping of group name to file kinds, found {_what(node)}")
        return {}
    out: dict[str, tuple[str, ...]] = {}
    for k, v in node.value:
        name = k.value if isinstance(k, ScalarNode) else ""
        if name in kinds:
            doc.add(k, f"file group '{name}' has the name of a file kind; choose another name")
            continue
        if name in out:
            doc.add(k, f"file group '{name}' appears twice")
            continue
        members = []
        for value, vnode in doc.texts(v, f"file group '{name}'"):
            if value not in kinds:
                doc.add(vnode, f"file group '{name}': '{value}' is not a file kind ({', '.join(sorted(kinds))})")
            else:
                members.append(value)
        out[name] = tuple(members)
    return out


def _read_task(doc: _Doc, node: Node, groups: dict[str, str],
               file_groups: dict[str, tuple[str, ...]]) -> _TaskDraft | None:
    # name the task in every message, even those about its keys
    peek = next((v.value for k, v in getattr(node, "value", ())
                 if isinstance(k, ScalarNode) and k.value == "number" and isinstance(v, ScalarNode)), "?")
    m = doc.mapping(node, f"task {peek}", _TASK_KEYS + _TASK_OPTIONAL, required=_TASK_KEYS)
    if m is None:
        return None
    number = doc.integer(m.get("number"), "task number", 1, TASK_COUNT) if m.get("number") else None
    what = f"task {number if number is not None else peek}"

    def txt(key: str) -> str:
        return (doc.text(m.get(key), f"{what}: {key}") or "") if m.get(key) else ""

    group = txt("group")
    if group and group not in groups:
        doc.add(m.get("group"), f"{what}: group '{group}' is not one of the groups ({', '.join(groups)})")

    deadlines = []
    dnodes = doc.seq(m.get("deadlines"), f"{what}: deadlines") if m.get("deadlines") else []
    for dnode in dnodes:
        dl = _read_deadline(doc, dnode, what)
        if dl is not None:
            deadlines.append((dl, _line(dnode)))
    if m.get("deadlines") is not None and not dnodes and isinstance(m.get("deadlines"), SequenceNode):
        doc.add(m.get("deadlines"), f"{what}: needs at least one deadline")
    monthly = [line for dl, line in deadlines if dl.kind == "monthly"]
    for line in monthly[1:]:
        doc.add(line, f"{what}: a second monthly deadline (line {monthly[0]} has one already)")

    kinds: list[str] = []
    valid = {k.value for k in FileKind}
    for value, vnode in doc.texts(m.get("file_kinds"), f"{what}: file_kinds"):
        if value in file_groups:
            kinds.extend(file_groups[value])
        elif value in valid:
            kinds.append(value)
        else:
            known = ", ".join(list(file_groups) + sorted(valid))
            doc.add(vnode, f"{what}: file kind '{value}' is neither a file group nor a file kind ({known})")
    if m.get("file_kinds") is not None and not kinds:
        doc.add(m.line("file_kinds"), f"{what}: file_kinds lists no usable file kind")

    keywords = doc.texts(m.get("keywords"), f"{what}: keywords")
    if m.get("keywords") is not None and not keywords:
        doc.add(m.line("keywords"), f"{what}: needs at least one keyword")
    seen: dict[str, int] = {}
    for word, knode in keywords:
        if word in seen:
            doc.add(knode, f"{what}: keyword '{word}' is listed twice")
        seen.setdefault(word, _line(knode))

    reused = (doc.choice(m.get("reused_file"), f"{what}: reused_file", REUSED_FILE_POLICIES)
              if m.get("reused_file") else None)

    return _TaskDraft(
        doc=doc, line=_line(node), number=number, title=txt("title"), text=txt("text"),
        group=groups.get(group, group), responsibility=txt("responsibility"),
        sections=doc.texts(m.get("sections"), f"{what}: sections"),
        deadlines=deadlines, sheets=doc.texts(m.get("sheets"), f"{what}: sheets"),
        file_kinds=tuple(dict.fromkeys(kinds)), keywords=keywords,
        reused_file=reused or REUSED_FILE_POLICIES[0],
    )


def _read_deadline(doc: _Doc, node: Node, task: str) -> Deadline | None:
    every = ("kind", "stated", "source") + tuple(k for ks in DEADLINE_KINDS.values() for k in ks)
    m = doc.mapping(node, f"{task}: deadline", every, required=("kind",))
    if m is None or m.get("kind") is None:
        return None
    kind = doc.choice(m.get("kind"), f"{task}: deadline kind", DEADLINE_KINDS)
    if kind is None:
        return None
    what = f"{task}: {kind} deadline"
    for key in m.values:
        if key not in ("kind", "stated", "source") and key not in DEADLINE_KINDS[kind]:
            doc.add(m.keys[key], f"{what}: '{key}' does not apply to a {kind} deadline "
                                 f"(it takes {', '.join(DEADLINE_KINDS[kind]) or 'no figures'})")
    ok = True

    def need_int(key: str, lo: int, hi: int | None = None) -> int | None:
        nonlocal ok
        if m.get(key) is None:
            doc.add(m.node, f"{what}: '{key}' is missing")
            ok = False
            return None
        n = doc.integer(m.get(key), f"{what}: {key}", lo, hi)
        ok = ok and n is not None
        return n

    fields: dict = {}
    if kind == "monthly":
        fields["day"] = need_int("day", 1, 31)
    elif kind == "event":
        has_wd, has_h = m.get("working_days") is not None, m.get("hours") is not None
        if has_wd == has_h:
            doc.add(m.node, f"{what}: give exactly one of working_days and hours")
            ok = False
        elif has_wd:
            fields["working_days"] = need_int("working_days", 1)
        else:
            fields["hours"] = need_int("hours", 1)
        for key in ("event_column", "report_column"):
            if m.get(key) is None:
                doc.add(m.node, f"{what}: '{key}' is missing (the sheet column holding that date)")
                ok = False
            else:
                fields[key] = doc.text(m.get(key), f"{what}: {key}")
                ok = ok and fields[key] is not None
    elif kind == "count":
        fields["at_least"] = need_int("at_least", 1)
        if m.get("per") is None:
            doc.add(m.node, f"{what}: 'per' is missing (month or year)")
            ok = False
        else:
            fields["per"] = doc.choice(m.get("per"), f"{what}: per", ("month", "year"))
            ok = ok and fields["per"] is not None
    stated = doc.boolean(m.get("stated"), f"{what}: stated", True)
    source = (doc.text(m.get("source"), f"{what}: source") or "") if m.get("source") else ""
    if not ok:
        return None
    return Deadline(kind=kind, stated=stated, source=source, **fields)


# ---- templates/*.yaml

_SHEET_KEYS = ("task", "name", "aliases", "title", "help", "allow_empty", "key", "columns", "row_checks")
_COLUMN_KEYS = ("name", "type", "required", "required_if", "choices", "minimum", "maximum",
                "aliases", "synonyms", "width", "help")
_CHECK_KEYS = ("kind", "earlier", "later", "limit", "code", "severity", "counts_against", "message")


def _read_templates(root: Path, issues: list[RuleIssue]) -> tuple[CoverSpec, list[_SheetDraft], bool]:
    folder = root / TEMPLATES_DIR
    files = sorted(folder.glob("*.yaml")) if folder.is_dir() else []
    if not files:
        issues.append(RuleIssue(str(folder), None, "no template file (templates/*.yaml) found"))
        return CoverSpec(name=""), [], False
    covers: list[tuple[CoverSpec, _Doc, int]] = []
    drafts: list[_SheetDraft] = []
    ok = True
    for path in files:
        doc = _Doc(root, f"{TEMPLATES_DIR}/{path.name}", issues)
        node = doc.load()
        if node is None:
            ok = False
            continue
        top = doc.mapping(node, path.name, ("cover", "sheets"))
        if top is None:
            ok = False
            continue
        if top.get("cover") is not None:
            cover = _read_cover(doc, top.get("cover"))
            if cover is not None:
                covers.append((cover, doc, top.line("cover")))
        for item in doc.seq(top.get("sheets"), "sheets") if top.get("sheets") is not None else ():
            d = _read_sheet(doc, item)
            if d is not None:
                drafts.append(d)
    if not covers:
        if ok:
            issues.append(RuleIssue(str(folder), None, "no template file defines the cover sheet ('cover:')"))
        return CoverSpec(name=""), drafts, False
    for _, doc, line in covers[1:]:
        doc.add(line, f"a second cover sheet (the first is in {covers[0][1].rel}, line {covers[0][2]})")
    return covers[0][0], drafts, ok


def _sheet_name_problem(name: str) -> str | None:
    if len(name) > 31:
        return f"'{name}' is longer than the 31 characters Excel allows in a sheet name"
    bad = sorted(set(name) & _EXCEL_SHEET_FORBIDDEN)
    if bad:
        return f"'{name}' holds {' '.join(bad)}, which Excel forbids in a sheet name"
    if name.startswith("'") or name.endswith("'"):
        return f"'{name}' may not begin or end with an apostrophe in Excel"
    if name == INSTRUCTIONS_SHEET:
        return f"'{name}' is the name of the instructions sheet mailbot writes itself"
    return None


def _read_cover(doc: _Doc, node: Node) -> CoverSpec | None:
    m = doc.mapping(node, "cover", ("name", "aliases", "fields"), required=("name", "fields"))
    if m is None or m.get("name") is None:
        return None
    name = doc.text(m.get("name"), "cover name")
    if name is None:
        return None
    problem = _sheet_name_problem(name)
    if problem:
        doc.add(m.get("name"), f"cover: {problem}")
    fields = _read_columns(doc, m.get("fields"), "cover") if m.get("fields") is not None else ([], {})
    for f in fields[0]:
        if f.synonyms:
            doc.add(fields[1][f.name], f"cover, field '{f.name}': synonyms apply to ledger columns only; "
                                       "use aliases for another label of a cover field")
    names = {c.name for c in fields[0]}
    for need in COVER_PREFILLED:
        if m.get("fields") is not None and need not in names:
            doc.add(m.get("fields"), f"cover: field '{need}' is missing (the template writer fills it in)")
    aliases = tuple(a for a, _ in doc.texts(m.get("aliases"), "cover: aliases"))
    return CoverSpec(name=name, aliases=aliases, fields=tuple(fields[0]))


def _read_sheet(doc: _Doc, node: Node) -> _SheetDraft | None:
    m = doc.mapping(node, "sheet", _SHEET_KEYS, required=("task", "name", "title", "columns"))
    if m is None or m.get("name") is None:
        return None
    name = doc.text(m.get("name"), "sheet name")
    if name is None:
        return None
    what = f"sheet '{name}'"
    problem = _sheet_name_problem(name)
    if problem:
        doc.add(m.get("name"), f"{what}: {problem}")
    task = doc.integer(m.get("task"), f"{what}: task", 1, TASK_COUNT) if m.get("task") else None
    aliases = doc.texts(m.get("aliases"), f"{what}: aliases")
    title = (doc.text(m.get("title"), f"{what}: title") or "") if m.get("title") else ""
    help_ = (doc.text(m.get("help"), f"{what}: help") or "") if m.get("help") else ""
    allow_empty = doc.boolean(m.get("allow_empty"), f"{what}: allow_empty", False)
    columns, col_nodes = _read_columns(doc, m.get("columns"), what) if m.get("columns") else ([], {})
    by_name = {c.name: c for c in columns}
    checks = []
    for cnode in doc.seq(m.get("row_checks"), f"{what}: row_checks") if m.get("row_checks") else ():
        rc = _read_row_check(doc, cnode, what, by_name)
        if rc is not None:
            checks.append(rc)
    key: list[str] = []
    for col, knode in doc.texts(m.get("key"), f"{what}: key"):
        if col in key:
            doc.add(knode, f"{what}: key names column '{col}' twice")
        elif col not in by_name:
            near = difflib.get_close_matches(col, list(by_name), n=1, cutoff=0.5)
            doc.add(knode, f"{what}: key names column '{col}', which this sheet does not have"
                           + (f" (did you mean '{near[0]}'?)" if near else ""))
        else:
            key.append(col)
    if m.get("key") is not None and not key and isinstance(m.get("key"), SequenceNode):
        doc.add(m.get("key"), f"{what}: key lists no column")
    spec = SheetSpec(task=task or 0, name=name, aliases=tuple(a for a, _ in aliases),
                     columns=tuple(columns), row_checks=tuple(checks), allow_empty=allow_empty,
                     title=title, help=help_, key=tuple(key))
    return _SheetDraft(doc=doc, line=_line(node), spec=spec, name_node=m.get("name"),
                       alias_nodes=aliases, task_node=m.get("task"), key_node=m.get("key"))


def _read_columns(doc: _Doc, node: Node, owner: str) -> tuple[list[Column], dict[str, Node]]:
    """The columns of a sheet (or the cover's fields), with per-sheet checks that need them all."""
    raw: list[tuple[dict, _Map]] = []
    header_of: dict[str, tuple[str, int]] = {}     # name or alias -> (column, line)
    synonym_nodes: list[tuple[str, str, str, Node]] = []   # (what, column, synonym, node)
    for item in doc.seq(node, f"{owner}: columns"):
        m = doc.mapping(item, f"{owner}: column", _COLUMN_KEYS, required=("name",))
        if m is None or m.get("name") is None:
            continue
        name = doc.text(m.get("name"), f"{owner}: column name")
        if name is None:
            continue
        what = f"{owner}, column '{name}'"
        col: dict = {"name": name}
        aliases = doc.texts(m.get("aliases"), f"{what}: aliases")
        for header, hnode in [(name, m.get("name"))] + aliases:
            if header in header_of:
                other, line = header_of[header]
                doc.add(hnode, f"{what}: header '{header}' is already used by column '{other}' (line {line})")
            else:
                header_of[header] = (name, _line(hnode))
        col["aliases"] = tuple(dict.fromkeys(a for a, _ in aliases if a != name))
        synonyms = doc.texts(m.get("synonyms"), f"{what}: synonyms")
        synonym_nodes += [(what, name, header, hnode) for header, hnode in synonyms]
        col["synonyms"] = tuple(dict.fromkeys(a for a, _ in synonyms))
        col["type"] = (doc.choice(m.get("type"), f"{what}: type", COLUMN_TYPES) if m.get("type") else "text") or "text"
        col["required"] = doc.boolean(m.get("required"), f"{what}: required", False)
        if m.get("width") is not None:
            width = doc.integer(m.get("width"), f"{what}: width", 1, 255)
            if width is not None:
                col["width"] = width
        if m.get("help") is not None:
            col["help"] = doc.text(m.get("help"), f"{what}: help") or ""
        choices = doc.texts(m.get("choices"), f"{what}: choices")
        if col["type"] == "enum":
            if not choices:
                doc.add(m.line("choices") if "choices" in m.keys else m.node,
                        f"{what}: an enum column needs choices")
            seen = set()
            for c, cnode in choices:
                if c in seen:
                    doc.add(cnode, f"{what}: choice '{c}' is listed twice")
                if "," in c or "，" in c:
                    doc.add(cnode, f"{what}: choice '{c}' holds a comma, which would split the drop-down list")
                seen.add(c)
            if len(",".join(c for c, _ in choices)) > _LIST_VALIDATION_MAX - 2:
                doc.add(m.get("choices"), f"{what}: the choices are longer than the "
                                          f"{_LIST_VALIDATION_MAX} characters an Excel drop-down holds")
            col["choices"] = tuple(dict.fromkeys(c for c, _ in choices))
        elif choices:
            doc.add(m.keys["choices"], f"{what}: choices apply only to type enum (this column is {col['type']})")
        for key in ("minimum", "maximum"):
            if m.get(key) is None:
                continue
            if col["type"] not in ("integer", "number"):
                doc.add(m.keys[key], f"{what}: {key} applies only to integer and number columns")
                continue
            value = doc.number(m.get(key), f"{what}: {key}")
            if value is not None:
                col[key] = value
        if col.get("minimum") is not None and col.get("maximum") is not None and col["minimum"] > col["maximum"]:
            doc.add(m.keys["maximum"], f"{what}: maximum is below minimum")
        raw.append((col, m))

    # a synonym is checked against every column's name and aliases, wherever that column is
    for what, name, header, hnode in synonym_nodes:
        if header in header_of:
            other, line = header_of[header]
            doc.add(hnode, f"{what}: synonym '{header}' is already the name or an alias of column '{other}' (line {line})")
        else:
            header_of[header] = (name, _line(hnode))
    types = {c["name"]: c for c, _ in raw}
    columns, nodes = [], {}
    for col, m in raw:
        what = f"{owner}, column '{col['name']}'"
        if m.get("required_if") is not None:
            col["required_if"] = _read_required_if(doc, m.get("required_if"), what, col["name"], types)
            if col["required"] and col.get("required_if"):
                doc.add(m.keys["required_if"], f"{what}: required_if on a column that is always required")
        if col.get("required_if") is None:
            col.pop("required_if", None)
        columns.append(Column(**col))
        nodes[col["name"]] = m.node
    return columns, nodes


def _read_required_if(doc: _Doc, node: Node, what: str, own: str, columns: dict[str, dict]):
    m = doc.mapping(node, f"{what}: required_if", ("column", "in"), required=("column", "in"))
    if m is None or m.get("column") is None or m.get("in") is None:
        return None
    other = doc.text(m.get("column"), f"{what}: required_if column")
    values = doc.texts(m.get("in"), f"{what}: required_if in")
    if other is None:
        return None
    if other == own:
        doc.add(m.get("column"), f"{what}: required_if cannot depend on the column itself")
        return None
    if other not in columns:
        doc.add(m.get("column"), f"{what}: required_if names column '{other}', which this sheet does not have")
        return None
    target = columns[other]
    if target["type"] != "enum":
        doc.add(m.get("column"), f"{what}: required_if needs an enum column; '{other}' is {target['type']}")
        return None
    for value, vnode in values:
        if value not in target.get("choices", ()):
            doc.add(vnode, f"{what}: required_if value '{value}' is not a choice of '{other}' "
                           f"({', '.join(target.get('choices', ()))})")
    if not values:
        doc.add(m.node, f"{what}: required_if lists no values")
        return None
    return (other, tuple(v for v, _ in values))


def _read_row_check(doc: _Doc, node: Node, sheet: str, columns: dict[str, Column]) -> RowCheck | None:
    m = doc.mapping(node, f"{sheet}: row check", _CHECK_KEYS, required=("kind", "earlier", "later", "code"))
    if m is None or m.get("kind") is None:
        return None
    kind = doc.choice(m.get("kind"), f"{sheet}: row check kind", ROW_CHECK_KINDS)
    what = f"{sheet}: {kind or 'row'} check"
    ok = kind is not None
    cols = {}
    for key in ("earlier", "later"):
        if m.get(key) is None:
            ok = False
            continue
        name = doc.text(m.get(key), f"{what}: {key}")
        col = columns.get(name) if name else None
        if name and col is None:
            doc.add(m.get(key), f"{what}: {key} names column '{name}', which this sheet does not have")
        elif col is not None and col.type != "date":
            doc.add(m.get(key), f"{what}: {key} column '{name}' must be of type date (it is {col.type})")
        ok = ok and col is not None and col.type == "date"
        cols[key] = name
    if ok and cols["earlier"] == cols["later"]:
        doc.add(m.node, f"{what}: earlier and later are the same column")
        ok = False
    limit = 0
    if kind in ("within_working_days", "within_hours"):
        if m.get("limit") is None:
            doc.add(m.node, f"{what}: 'limit' is missing ({'working days' if kind == 'within_working_days' else 'hours'})")
            ok = False
        else:
            limit = doc.integer(m.get("limit"), f"{what}: limit", 1)
            ok = ok and limit is not None
    elif kind == "not_before" and m.get("limit") is not None:
        doc.add(m.keys["limit"], f"{what}: limit does not apply to a not_before check")
    code = doc.text(m.get("code"), f"{what}: code") if m.get("code") else None
    if code and not _CODE_RE.match(code):
        doc.add(m.get("code"), f"{what}: code '{code}' must be lower-case words joined by '-', e.g. late-publication")
        ok = False
    severity = Severity.WARNING
    if m.get("severity") is not None:
        value = doc.choice(m.get("severity"), f"{what}: severity", [s.value for s in Severity])
        severity = Severity(value) if value else severity
    counts = doc.text(m.get("counts_against"), f"{what}: counts_against") if m.get("counts_against") else None
    message = (doc.text(m.get("message"), f"{what}: message") or "") if m.get("message") else ""
    if not ok or code is None:
        return None
    return RowCheck(kind=kind, earlier=cols["earlier"], later=cols["later"], limit=limit or 0,
                    code=code, severity=severity, counts_against=counts, message=message)


# ---- settings.yaml

def _read_settings(doc: _Doc) -> tuple[tuple[str, ...], dict, dict[str, int]]:
    root = doc.load()
    if root is None:
        return (), {}, {}
    top = doc.mapping(root, "settings.yaml", ("template_requests", "limits", "reminders"),
                      required=("template_requests",))
    if top is None:
        return (), {}, {}
    words = tuple(w for w, _ in doc.texts(top.get("template_requests"), "template_requests"))
    if top.get("template_requests") is not None and not words:
        doc.add(top.line("template_requests"), "template_requests: needs at least one word")
    limits: dict[str, int] = {}
    if top.get("limits") is not None:
        lm = doc.mapping(top.get("limits"), "limits", LIMIT_KEYS)
        for key, node in (lm.values.items() if lm else ()):
            n = _size(doc, node, f"limits: {key}") if key.endswith("_bytes") else doc.integer(node, f"limits: {key}", 1)
            if n is not None:
                limits[key] = n
    reminders: dict = {}
    if top.get("reminders") is not None:
        rm = doc.mapping(top.get("reminders"), "reminders", REMINDER_KEYS)
        for key, node in (rm.values.items() if rm else ()):
            if key == "send_at":
                value = doc.text(node, "reminders: send_at")
                if value and not re.match(r"^([01]\d|2[0-3]):[0-5]\d$", value):
                    doc.add(node, f"reminders: send_at must be a time HH:MM, found '{value}'")
                elif value:
                    reminders[key] = value
                continue
            if key == "on_due_day":
                reminders[key] = doc.boolean(node, "reminders: on_due_day", True)
                continue
            if key in ("overdue_grace_workdays", "escalate_after_workdays"):
                n = doc.integer(node, f"reminders: {key}", 0, 60)
                if n is not None:
                    reminders[key] = n
                continue
            if key == "monthly_due_shift":
                value = doc.choice(node, "reminders: monthly_due_shift", DUE_SHIFTS)
                if value is not None:
                    reminders[key] = value
                continue
            lo, hi = (1, 12) if key == "count_check_months" else (0, 60)
            values = [doc.integer(n, f"reminders: {key}", lo, hi) for n in doc.seq(node, f"reminders: {key}")]
            reminders[key] = tuple(v for v in values if v is not None)
    return words, reminders, limits


_SIZE_RE = re.compile(r"^(\d+)\s*(B|KB|MB|GB)?$", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30}


def _size(doc: _Doc, node: Node, what: str) -> int | None:
    """A byte count, plain or with a unit: 209715200, "200 MB" (1 MB = 1024 KB, as unpack counts)."""
    m = _SIZE_RE.match(node.value.strip()) if isinstance(node, ScalarNode) else None
    if not m or int(m.group(1)) < 1:
        doc.add(node, f"{what} must be a positive size such as 200 MB, found {_what(node)}")
        return None
    return int(m.group(1)) * _SIZE_UNITS[(m.group(2) or "b").lower()]


# ---- calendar/<year>.yaml

def _read_calendar(root: Path, issues: list[RuleIssue]) -> dict[int, dict[str, frozenset[dt.date]]]:
    folder = root / CALENDAR_DIR
    out: dict[int, dict[str, frozenset[dt.date]]] = {}
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else ():
        doc = _Doc(root, f"{CALENDAR_DIR}/{path.name}", issues)
        if not re.fullmatch(r"\d{4}", path.stem):
            doc.add(None, "a calendar file is named after its year, e.g. 2027.yaml")
            continue
        year = int(path.stem)
        node = doc.load()
        if node is None:
            continue
        m = doc.mapping(node, path.name, ("year", "source", "holidays", "workdays"), required=("holidays",))
        if m is None:
            continue
        if m.get("year") is not None:
            y = doc.integer(m.get("year"), "year")
            if y is not None and y != year:
                doc.add(m.get("year"), f"year {y} does not match the file name {path.name}")
        days: dict[str, dict[dt.date, int]] = {"holidays": {}, "workdays": {}}
        for key in ("holidays", "workdays"):
            for text, item in doc.texts(m.get(key), key):
                for day in _calendar_days(doc, text, item, key, year, ranges=key == "holidays"):
                    days[key].setdefault(day, _line(item))
        if "holidays" in m.keys and not days["holidays"]:
            doc.add(m.line("holidays"), "holidays is empty: every year has statutory holidays, and "
                                        "an empty list would make every weekday a working day")
        for day, line in sorted(days["workdays"].items()):
            if day.weekday() < 5:
                doc.add(line, f"workday {day} is a {day.strftime('%A')}: list only weekend days worked in lieu (调休)")
            if day in days["holidays"]:
                doc.add(line, f"{day} is listed both as a workday and as a holiday (line {days['holidays'][day]})")
        out[year] = {k: frozenset(v) for k, v in days.items()}
    return out


def _calendar_days(doc: _Doc, text: str, node: Node, key: str, year: int, ranges: bool) -> list[dt.date]:
    first_text, sep, last_text = text.partition("..")
    if sep and not ranges:
        doc.add(node, f"{key}: list single days, not ranges ('{text}')")
        return []
    first = doc.date(first_text.strip(), node, key)
    last = doc.date(last_text.strip(), node, key) if sep else first
    if first is None or last is None:
        return []
    if last < first:
        doc.add(node, f"{key}: range '{text}' ends before it starts")
        return []
    if first.year != year or last.year != year:
        doc.add(node, f"{key}: '{text}' is not in {year}")
        return []
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


# ---------------------------------------------------------------- cross-checks between files

def _cross_check(doc: _Doc, anchor: int | None, drafts: list[_TaskDraft], sections: list[Section],
                 sections_ok: bool, sheet_drafts: list[_SheetDraft], templates_ok: bool,
                 cover: CoverSpec) -> list[Task]:
    # task numbers 1..11, each once
    first: dict[int, int] = {}
    for d in drafts:
        if d.number is None:
            continue
        if d.number in first:
            doc.add(d.line, f"task {d.number} is defined twice (first at line {first[d.number]})")
        else:
            first[d.number] = d.line
    if anchor is not None:
        missing = [n for n in range(1, TASK_COUNT + 1) if n not in first]
        if missing:
            listed = ", ".join(map(str, missing))
            verb = f"task {listed} is" if len(missing) == 1 else f"tasks {listed} are"
            doc.add(anchor, f"{verb} missing: the plan has tasks 1..{TASK_COUNT}")

    sheets = {s.spec.name: s for s in sheet_drafts}
    _check_sheet_names(sheet_drafts, cover)
    _check_keywords(drafts)

    by_id = {s.id: s for s in sections}
    tasks = []
    for d in sorted(drafts, key=lambda d: d.number or 0):
        what = f"task {d.number}"
        ids: list[str] = []
        for name, node in d.sections:
            if name in SECTION_GROUPS:
                kind = SECTION_GROUPS[name]
                members = [s.id for s in sections if kind is None or s.kind == kind]
                if sections_ok and not members:
                    doc.add(node, f"{what}: '{name}' names no section (no section has kind {kind})")
                ids.extend(members)
            elif name in by_id:
                ids.append(name)
            elif sections_ok:
                owner = next((s.id for s in sections if name in s.aliases), None)
                if owner:
                    doc.add(node, f"{what}: '{name}' is an alias of section '{owner}'; write the id '{owner}'")
                else:
                    doc.add(node, f"{what}: section '{name}' is not in sections.yaml")

        task_sheets = []
        for name, node in d.sheets:
            s = sheets.get(name)
            if s is None:
                if templates_ok:
                    doc.add(node, f"{what}: sheet '{name}' is not in templates/")
                continue
            if s.spec.task != d.number and d.number is not None and s.spec.task:
                doc.add(node, f"{what}: sheet '{name}' belongs to task {s.spec.task} "
                              f"({s.doc.rel}, line {s.line})")
            task_sheets.append(s.spec)
            joint = list(dict.fromkeys(ids))
            if len(joint) > 1 and not s.spec.key and s.key_node is None:
                s.doc.add(s.line, f"sheet '{name}': task {d.number} is reported by several sections "
                                  f"({', '.join(joint)}); declare its key columns (key: [...], the columns "
                                  "naming one item) so that the package merges a row two sections both report")

        for dl, line in d.deadlines:
            # with templates/ unreadable, a missing column proves nothing
            if dl.kind == "event" and (templates_ok or task_sheets):
                _check_event_columns(doc, line, what, dl, task_sheets)

        tasks.append(Task(
            number=d.number or 0, title=d.title, text=d.text, group=d.group,
            sections=tuple(dict.fromkeys(ids)), deadlines=tuple(dl for dl, _ in d.deadlines),
            sheets=tuple(n for n, _ in d.sheets), file_kinds=d.file_kinds,
            keywords=tuple(k for k, _ in d.keywords), responsibility=d.responsibility,
            reused_file=d.reused_file,
        ))

    # every sheet's task exists and lists it
    listed = {(d.number, name) for d in drafts for name, _ in d.sheets}
    numbers = {d.number for d in drafts}
    for s in sheet_drafts:
        if not s.spec.task:
            continue
        if s.spec.task not in numbers:
            if anchor is not None:
                s.doc.add(s.task_node, f"sheet '{s.spec.name}': task {s.spec.task} is not in tasks.yaml")
        elif (s.spec.task, s.spec.name) not in listed:
            s.doc.add(s.task_node, f"sheet '{s.spec.name}': task {s.spec.task} does not list it under sheets "
                                   f"in tasks.yaml")
    return tasks


def _check_event_columns(doc: _Doc, line: int, what: str, dl: Deadline, sheets: list[SheetSpec]) -> None:
    for key in ("event_column", "report_column"):
        name = getattr(dl, key)
        found = [s.column(name) for s in sheets if s.column(name) is not None]
        if not found:
            doc.add(line, f"{what}: {key} '{name}' is not a column of the task's sheet "
                          f"({', '.join(s.name for s in sheets)})")
        elif any(c.type != "date" for c in found):
            doc.add(line, f"{what}: {key} '{name}' must be a date column")
    # the same limit written twice (deadline and row check) must agree
    kind, limit = ("within_working_days", dl.working_days) if dl.working_days else ("within_hours", dl.hours)
    for s in sheets:
        for rc in s.row_checks:
            if rc.kind == kind and rc.earlier == dl.event_column and rc.later == dl.report_column \
                    and rc.limit != limit:
                doc.add(line, f"{what}: the deadline says {limit} but sheet '{s.name}' checks rows "
                              f"against {rc.limit}; make them agree")


def _check_sheet_names(drafts: list[_SheetDraft], cover: CoverSpec) -> None:
    owner: dict[str, str] = {}
    if cover.name:
        for n in (cover.name,) + cover.aliases:
            owner[n] = f"the cover sheet '{cover.name}'"
    for d in drafts:
        for name, node in [(d.spec.name, d.name_node)] + d.alias_nodes:
            if name in owner and owner[name] != f"sheet '{d.spec.name}'":
                d.doc.add(node, f"sheet '{d.spec.name}': name '{name}' is already used by {owner[name]}")
            else:
                owner[name] = f"sheet '{d.spec.name}'"


def _check_keywords(drafts: list[_TaskDraft]) -> None:
    """A strong keyword names one task: shared or nested across tasks, a subject matches two."""
    words: list[tuple[str, int, _TaskDraft, Node]] = [
        (w, d.number, d, n) for d in drafts if d.number is not None for w, n in d.keywords]
    seen: dict[str, tuple[int, int]] = {}
    for word, number, d, node in words:
        if word in seen and seen[word][0] != number:
            other, line = seen[word]
            d.doc.add(node, f"task {number}: keyword '{word}' is also a keyword of task {other} (line {line}); "
                            f"a keyword must name one task only")
        seen.setdefault(word, (number, _line(node)))
    for word, number, d, node in words:
        for inner, other, od, onode in words:
            if other != number and inner != word and inner in word:
                d.doc.add(node, f"task {number}: keyword '{word}' contains '{inner}', a keyword of task "
                                f"{other} (line {_line(onode)}): a subject with '{word}' would match both")
