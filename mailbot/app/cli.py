"""Every mailbot command; the only place that reads the clock for the user and the only place that exits.

Output for people is a readable table; with --json, one JSON object per line, for scripts.
Exit codes: 0 done, 1 the command ran and found problems, 2 bad usage, config or rules.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailbot.redact import install_log_filter, redact

__all__ = ["main"]

log = logging.getLogger("mailbot")


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit 2."""


# ---------------------------------------------------------------- wiring

def _load_config(args) -> Any:
    from mailbot.app.config import ConfigError, load_config
    path = args.config or os.environ.get("MAILBOT_CONFIG") or "config.yaml"
    if not Path(path).exists():
        raise UsageError(f"config file {path} not found (use --config FILE; config.example.yaml shows every key)")
    try:
        config = load_config(path)
    except ConfigError as e:
        raise UsageError(f"invalid config:\n{e}") from None
    from mailbot.dates.zone import use_zone
    use_zone(config.timezone)
    return config


def _load_rules(rules_dir: Path):
    from mailbot.rules.load import RulesError, load_rules
    try:
        return load_rules(rules_dir)
    except RulesError as e:
        raise UsageError(f"invalid rules in {rules_dir}:\n{e}") from None


def _deployment(config):
    """The deployment the config builds (rules checked against it), or a usage error saying why."""
    from mailbot.app.wiring import WiringError, build
    try:
        return build(config)
    except WiringError as e:
        raise UsageError(str(e)) from None


def _open_store(config):
    from mailbot.app.wiring import open_store
    return open_store(config)


def _tz(config=None):
    from mailbot.dates.zone import bureau_zone
    return bureau_zone()


def _parse_when(text: str, tz: dt.tzinfo) -> dt.datetime:
    try:
        t = dt.datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"not an ISO 8601 date or datetime: {text!r}") from None
    return t if t.tzinfo else t.replace(tzinfo=tz)


# ---------------------------------------------------------------- commands

def cmd_rules_check(args) -> int:
    from mailbot.app.config import ConfigError, check_sections_against_rules, load_config
    from mailbot.rules.load import check_rules, load_rules
    config = None
    issues: list[str] = []
    path = args.config or os.environ.get("MAILBOT_CONFIG")
    if path:
        try:
            config = load_config(path)
        except ConfigError as e:
            issues += str(e).splitlines()
    rules_dir = Path(args.rules) if args.rules else (config.rules if config else Path(__file__).resolve().parents[2] / "rules")
    rule_issues = check_rules(rules_dir)
    issues += [f"{i.file}:{i.line}: {i.message}" if i.line else f"{i.file}: {i.message}" for i in rule_issues]
    if config and not rule_issues:
        rules = load_rules(rules_dir)
        issues += check_sections_against_rules(config, {s.id for s in rules.sections})
        if config.credit_section not in {s.id for s in rules.sections}:
            issues.append(f"{config.file}: credit_section: {config.credit_section!r} is not a section in rules/sections.yaml")
    for line in issues:
        print(line)
    if issues:
        print(f"{len(issues)} problem(s) found", file=sys.stderr)
        return 1
    print(f"rules OK: {rules_dir}" + (f"; config OK: {config.file}" if config else ""))
    return 0


def cmd_template(args) -> int:
    from mailbot.duties.templates import write_template
    config = _load_config(args) if (args.config or Path("config.yaml").exists()) else None
    rules_dir = Path(args.rules) if args.rules else (config.rules if config else Path(__file__).resolve().parents[2] / "rules")
    rules = _load_rules(rules_dir)
    if rules.section(args.section) is None:
        raise UsageError(f"unknown section {args.section!r}; known: {', '.join(s.id for s in rules.sections)}")
    try:
        write_template(rules, rules.section(args.section).id, _period(args.period), args.out)
    except (KeyError, ValueError) as e:
        raise UsageError(str(e)) from None
    print(f"wrote {args.out}")
    return 0


@dataclass(frozen=True)
class _File:
    """A message file for `ingest`, read and stamped received before its turn (app/ahead.py)."""
    name: str
    raw: bytes
    received_at: dt.datetime


def cmd_ingest(args) -> int:
    from mailbot.app.ahead import Ahead
    from mailbot.app.progress import Progress
    from mailbot.pipeline import process, to_json
    config = _load_config(args)
    deployment = _deployment(config)
    store = deployment.open_store()
    desk = deployment.desk(store)
    tz = _tz(config)
    received = _parse_when(args.received, tz) if args.received else None
    worst = 0
    rows = []

    def read() -> Iterator[_File]:
        nonlocal worst
        for name in args.files:
            try:
                raw = Path(name).read_bytes()
            except OSError as e:
                print(f"{name}: cannot read: {e.strerror}", file=sys.stderr)
                worst = 1
                progress.step(Path(name).name)
                continue
            yield _File(name, raw, received or dt.datetime.now(tz))

    with Progress(len(args.files), "ingest") as progress, \
            Ahead(deployment.intake, lambda f: f.received_at, workers=config.workers) as ahead:
        for f, prepared in ahead.pairs(read()):
            name, now = f.name, dt.datetime.now(tz)
            result = process(f.raw, intake=deployment.intake, store=store, source=f"file:{Path(name).resolve()}",
                             received_at=f.received_at, now=now, template_for=deployment.template_for, desk=desk,
                             prepared=prepared)
            progress.step(Path(name).name)
            if args.json:
                print(to_json(result, name), flush=True)
            else:
                rows.append((name, result))
    if not args.json:
        _print_ingest_table(rows)
    return worst


def _print_ingest_table(rows) -> None:
    for name, r in rows:
        print(f"{Path(name).name}: {r.outcome}" + (f" ({r.section})" if r.section else "") +
              (f" receipt {r.receipt_no}" if r.receipt_no else "") + f" - {r.reason}")
        for i in r.items:
            print(f"    {i['status']:<9} task {i['task'] or '?':<3} {i['period'] or '?':<8} {i['filename']}"
                  + (f"  [{len(i['errors'])} error(s), {len(i['warnings'])} warning(s)]" if i['errors'] or i['warnings'] else ""))
            for e in i["errors"][:5]:
                print(f"        - {e}")
            if len(i["errors"]) > 5:
                print(f"        ... {len(i['errors']) - 5} more")
        if r.reply:
            print(f"    reply to {', '.join(r.reply['to'])}: {r.reply['subject']}")
    counts: dict[str, int] = {}
    for _, r in rows:
        counts[r.outcome] = counts.get(r.outcome, 0) + 1
    print(f"{len(rows)} message(s): " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))


def cmd_check(args) -> int:
    from mailbot.intake import filetype
    from mailbot.intake import validate
    from mailbot.intake import workbook
    from mailbot.model import FileKind, Problem
    from mailbot.dates.workdays import WorkCalendar
    config = _load_config(args) if (args.config or Path("config.yaml").exists()) else None
    rules_dir = Path(args.rules) if args.rules else (config.rules if config else Path(__file__).resolve().parents[2] / "rules")
    rules = _load_rules(rules_dir)
    try:
        content = Path(args.workbook).read_bytes()
    except OSError as e:
        raise UsageError(f"{args.workbook}: cannot read: {e.strerror}") from None
    kind, desc = filetype.sniff(content, args.workbook)
    problems: list[Problem] = []
    rows = 0
    sheets: list[str] = []
    if kind in (FileKind.XLSM, FileKind.ENCRYPTED):
        try:
            workbook.read_workbook(content, kind)
        except workbook.WorkbookError as e:
            problems.append(e.problem)
    elif not kind.is_workbook:
        problems.append(Problem("not-a-workbook", f"文件'{Path(args.workbook).name}'实为{desc}，不是Excel/WPS/ODS工作簿"))
    else:
        try:
            wb = workbook.read_workbook(content, kind)
        except workbook.WorkbookError as e:
            problems.append(e.problem)
        else:
            specs = [s for s in rules.sheets if args.task is None or s.task == args.task]
            matches = validate.match_sheets(wb, specs)
            if not matches:
                want = "、".join(f"'{s.name}'" for s in specs)
                problems.append(Problem("missing-sheet", f"工作簿中未找到模板工作表（应为{want}之一）"))
            tables = {t.name: t for t in wb.tables}
            cal = WorkCalendar(rules.calendar, str(rules_dir))
            for m in matches:
                rep = validate.check_sheet(m, tables[m.table], cal)
                problems += rep.problems
                rows += rep.rows
                sheets.append(f"{m.table} (task {m.spec.task})")
    errors = [p for p in problems if p.is_error]
    if args.json:
        print(json.dumps({"file": args.workbook, "kind": kind.value, "sheets": sheets, "rows": rows,
                          "ok": not errors, "problems": [p.as_dict() for p in problems]}, ensure_ascii=False))
    else:
        print(f"{args.workbook}: {desc}; sheets: {', '.join(sheets) or 'none matched'}; {rows} data row(s)")
        for p in problems:
            print(f"  {p.severity.value:<7} {p.code:<24} {p.message}")
        print(f"{len(errors)} error(s), {len(problems) - len(errors)} warning(s)")
    return 1 if errors else 0


def _daemon(args):
    from mailbot.app.daemon import Daemon
    from mailbot.app.wiring import WiringError
    config = _load_config(args)
    if not config.maildir and not config.imap:
        raise UsageError(f"{config.file}: neither imap nor maildir is configured; nothing to watch")
    try:
        return Daemon(config)
    except WiringError as e:
        raise UsageError(str(e)) from None


def _setup_json_logs() -> None:
    class JsonFormatter(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            d = {"time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(), "level": record.levelname,
                 "logger": record.name, "message": record.getMessage()}
            extra = getattr(record, "mailbot", None)
            if extra:
                d.update(extra)
            if record.exc_info:
                d["exception"] = self.formatException(record.exc_info)
            return json.dumps(d, ensure_ascii=False, default=str)
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    install_log_filter(root)


def cmd_run(args) -> int:
    logging.getLogger().setLevel(logging.DEBUG if args.verbose else logging.INFO)
    if args.json_logs:
        _setup_json_logs()
    # Until the daemon installs its own handlers, a stop request just ends the start-up cleanly:
    # nothing is in flight yet, and a migration interrupted here rolls back.
    import signal
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: sys.exit(0))
    from mailbot.app.standby import Refused
    daemon = _daemon(args)
    try:
        daemon.run()
    except Refused as e:
        raise UsageError(str(e)) from None
    return 0


def cmd_poll(args) -> int:
    from mailbot.pipeline import to_json
    if not args.once:
        raise UsageError("poll needs --once (the daemon is `mailbot run`)")
    daemon = _daemon(args)

    def each(source: str, p) -> None:       # printed as each message is handled, not at the end
        if args.json:
            print(to_json(p, source), flush=True)
    try:
        summary = daemon.poll_once(each=each)
    except Exception as e:  # noqa: BLE001 - connection or login failures end this one pass
        print(f"mailbot: poll failed: {type(e).__name__}: {redact(e)}", file=sys.stderr)
        return 1
    counts = summary.counts()
    line = (f"{summary.messages} message(s)" +
            (": " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) if counts else "") +
            (f"; {summary.ahead} decided ahead by worker processes" if summary.ahead else "") +
            f"; outbox: {summary.sent} sent, {summary.temporary} deferred, {summary.permanent} failed")
    print(line, file=sys.stderr if args.json else sys.stdout)
    return 0


def cmd_backup(args) -> int:
    from mailbot.store.backup import BackupError, backup
    config = _load_config(args)
    try:
        r = backup(config.database, config.storage, Path(args.out))
    except BackupError as e:
        raise UsageError(f"backup failed: {e}") from None
    print(f"wrote {r.path}: {r.database_kind} database (revision {r.alembic_revision}), "
          f"{sum(r.tables.values())} rows in {len(r.tables)} tables, {r.files} files ({r.files_bytes} bytes), "
          f"archive {r.archive_bytes} bytes, {r.seconds:.2f} s")
    return 0


def cmd_restore(args) -> int:
    from mailbot.store.backup import RestoreError, restore
    config = _load_config(args)
    try:
        r = restore(Path(args.archive), config.database, config.storage)
    except RestoreError as e:
        raise UsageError(f"restore refused: {e}") from None
    print(f"restored {args.archive}: {r.database_kind} database (revision {r.alembic_revision}), "
          f"{sum(r.tables.values())} rows, {r.files} files ({r.files_bytes} bytes) checked against the manifest, "
          f"{r.seconds:.2f} s")
    return 0


_OUTBOX_STATES = {"queued": ("pending", "failed_temporary"), "sent": ("sent",), "failed": ("failed_permanent",)}


def _outbox_row(o) -> dict[str, Any]:
    import email
    import email.policy
    m = email.message_from_bytes(o.raw, policy=email.policy.default)
    body = m.get_body(("plain",))
    state = next(k for k, v in _OUTBOX_STATES.items() if o.status in v)
    return {"id": o.id, "kind": o.kind, "state": state, "status": o.status,
            "to": [a.addr_spec for a in m["To"].addresses] if m["To"] else list(o.recipients),
            "cc": [a.addr_spec for a in m["Cc"].addresses] if m["Cc"] else [],
            "subject": o.subject, "message_id": o.mail_message_id.strip("<>"),
            "in_reply_to": (m["In-Reply-To"] or "").strip().strip("<>") or None,
            "attachments": [a.get_filename() for a in m.iter_attachments()],
            "text": body.get_content() if body is not None else "",
            "created_at": _iso(o.created_at), "sent_at": _iso(o.sent_at), "last_error": o.last_error}


def _iso(t):
    from mailbot.dates.zone import iso
    return iso(t)


def cmd_outbox_list(args) -> int:
    """The operator's view of every letter: where it went, what it said, whether it left."""
    from mailbot.pipeline import WITHHELD_NOTE
    config = _load_config(args)
    store = _open_store(config)
    rows: list[dict[str, Any]] = []
    if args.state in (None, "queued", "sent", "failed"):
        states = _OUTBOX_STATES[args.state] if args.state else None
        mails = store.outbox(limit=args.limit) if states is None else [
            o for s in states for o in store.outbox(status=s, limit=args.limit)]
        rows += [_outbox_row(o) for o in sorted(mails, key=lambda o: -o.id)[:args.limit]]
    if args.state in (None, "withheld"):
        # answers the hourly cap held back: recorded on the message, never silently lost
        for m in store.messages(limit=10_000):
            if WITHHELD_NOTE in (m.reason or ""):
                rows.append({"kind": "withheld", "state": "withheld", "to": [m.from_addr], "cc": [],
                             "subject": m.subject, "message_id": None, "in_reply_to": m.message_id,
                             "attachments": [], "text": "", "receipt_no": m.receipt_no, "reason": m.reason,
                             "created_at": _iso(m.created_at)})
    for r in rows:
        if args.json:
            print(json.dumps(r, ensure_ascii=False))
        else:
            print(f"{r['state']:<9} {r['kind']:<18} {', '.join(r['to'])}  {r['subject']}")
    if not args.json:
        print(f"{len(rows)} letter(s)")
    return 0


def cmd_health(args) -> int:
    from mailbot.app.daemon import health_report
    config = _load_config(args)
    deployment = _deployment(config)
    store = deployment.open_store()
    report = health_report(config, store, dt.datetime.now(_tz(config)), deployment.calendar)
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        for k, v in report.items():
            print(f"{k:<26} {v}")
    return 0 if report["healthy"] else 1


def cmd_quarantine_list(args) -> int:
    from mailbot.dates.zone import bureau_time, iso
    config = _load_config(args)
    store = _open_store(config)
    held = store.messages(limit=10_000, outcome="quarantined")
    failures = store.failures()
    # people's replies passed to the credit section (answered by a person, by mail): listed, not waiting
    since = dt.datetime.now(_tz(config)) - dt.timedelta(days=30)
    replies = [m for m in store.messages(limit=200, outcome="forwarded") if m.received_at >= since]
    if args.json:
        for m in held + replies:
            print(json.dumps({"kind": m.outcome, "receipt_no": m.receipt_no, "from": m.from_addr,
                              "subject": m.subject, "section": m.section, "reason": m.reason,
                              "received_at": iso(m.received_at)}, ensure_ascii=False))
        for f in failures:
            print(json.dumps({"kind": "failure", "id": f.id, "raw_sha256": f.raw_sha256, "source": f.source,
                              "stage": f.stage, "error": f.error}, ensure_ascii=False))
        return 0
    for m in held:
        print(f"{m.receipt_no}  {bureau_time(m.received_at):%Y-%m-%d %H:%M} (Beijing)  {m.from_addr}  {m.subject}\n"
              f"    guess: {m.section or '-'}; {m.reason}")
    for f in failures:
        print(f"failure #{f.id}  stage {f.stage}  {f.source}\n    {f.error}")
    for m in replies:
        print(f"{m.receipt_no}  {bureau_time(m.received_at):%Y-%m-%d %H:%M} (Beijing)  {m.from_addr}  {m.subject}\n"
              f"    a person's reply, passed to the credit section by mail ({m.section or 'unregistered'})")
    print(f"{len(held)} message(s) waiting for a section to be confirmed, {len(failures)} crashed message(s)"
          + (f"; {len(replies)} reply(ies) passed to the credit section in the last 30 days" if replies else ""))
    return 0


def _at_desk(args, action: str, *params, **kwargs) -> int:
    """Run a desk action as the operator (audited like a mail command or a web button); print the
    answer (Chinese, as the credit section would read it) or, with --json, the action's data."""
    from mailbot.desk import ACTIONS, Actor
    config = _load_config(args)
    deployment = _deployment(config)
    desk = deployment.desk(deployment.open_store())
    answer = ACTIONS[action](desk, Actor.operator(config), *params, now=dt.datetime.now(_tz(config)), **kwargs)
    if getattr(args, "json", False):
        print(json.dumps({"action": answer.action, "ok": answer.ok, "summary": answer.summary, **answer.data},
                         ensure_ascii=False, default=str))
    else:
        from mailbot.writing.common import TABLE_MARK
        print("\n".join(line for line in answer.text.splitlines() if line.strip() != TABLE_MARK).rstrip())
    if not answer.ok:
        print(f"mailbot: {answer.summary}", file=sys.stderr)
    return 0 if answer.ok else 1



def cmd_quarantine_confirm(args) -> int:
    return _at_desk(args, "confirm", args.ref, args.section)


def cmd_quarantine_reject(args) -> int:
    return _at_desk(args, "reject", args.ref, args.reason)


def cmd_quarantine_ignore(args) -> int:
    return _at_desk(args, "ignore", args.ref, args.reason)


def cmd_reclassify(args) -> int:
    ref, _, item = args.ref.partition(":")
    if item and not item.isdigit():
        raise UsageError(f"{args.ref}: expected RECEIPT or RECEIPT:N (the file's number in the message)")
    period = _period(args.period) if args.period else None
    if args.task is None and period is None:
        raise UsageError("give --task and/or --period")
    return _at_desk(args, "reclassify", ref.upper(), int(item) if item else None, args.task, period)


def cmd_close(args) -> int:
    return _at_desk(args, "close", _period(args.period))


def cmd_audit(args) -> int:
    from mailbot.dates.zone import bureau_time
    config = _load_config(args)
    store = _open_store(config)
    entries = store.audit(limit=args.limit, action=args.action)
    for e in entries:
        if args.json:
            print(json.dumps(e.as_dict(), ensure_ascii=False, default=str))
        else:
            print(f"{bureau_time(e.at):%Y-%m-%d %H:%M:%S} (Beijing)  {e.channel:<4} {e.actor:<32} {e.action:<10} "
                  f"{'ok    ' if e.ok else 'NOT OK'}  {json.dumps(e.args, ensure_ascii=False, default=str)}\n"
                  f"    {e.result}")
    if not args.json:
        print(f"{len(entries)} action(s), newest first")
    return 0


def cmd_quarantine_retry(args) -> int:
    """Replay a crashed message from its archived raw bytes, once the cause is fixed."""
    from mailbot.pipeline import process, to_json
    config = _load_config(args)
    deployment = _deployment(config)
    store = deployment.open_store()
    failure = next((f for f in store.failures() if f.id == args.id), None)
    if failure is None:
        raise UsageError(f"no unresolved failure #{args.id}")
    now = dt.datetime.now(_tz(config))
    result = process(store.read_raw(failure.raw_sha256), intake=deployment.intake, store=store,
                     source=failure.source, received_at=failure.created_at.astimezone(_tz(config)), now=now,
                     template_for=deployment.template_for)
    if result.crashed_at is None:
        store.resolve_failure(failure.id, now=now)
    print(to_json(result, failure.source) if args.json else f"failure #{failure.id}: {result.outcome} - {result.reason}")
    return 0 if result.crashed_at is None else 1


# ---------------------------------------------------------------- deadlines, reminders, summaries

def _optional_config(args):
    """The config where one is given or ./config.yaml exists; else None (the project's rules/)."""
    if args.config or os.environ.get("MAILBOT_CONFIG") or Path("config.yaml").exists():
        return _load_config(args)
    return None


def _rules_and_calendar(args):
    """The rules and the calendar: with a config (and no --rules), the deployment's, the holiday
    schedules loaded into its store included; else the rules folder's alone."""
    from mailbot.dates.workdays import WorkCalendar
    config = _optional_config(args)
    if config is not None and not getattr(args, "rules", None):
        deployment = _deployment(config)
        deployment.open_store().close()
        return config, deployment.rules, deployment.calendar
    rules_dir = Path(args.rules) if getattr(args, "rules", None) else (
        config.rules if config else Path(__file__).resolve().parents[2] / "rules")
    rules = _load_rules(rules_dir)
    return config, rules, WorkCalendar(rules.calendar, str(rules_dir))


def _office(config):
    from mailbot.duties.office import Office
    deployment = _deployment(config)
    try:
        return Office(config, deployment.rules, deployment.open_store(), deployment.calendar)
    except ValueError as e:                       # a bad reminders setting in rules/
        raise UsageError(f"invalid rules in {config.rules}: {e}") from None


def _now(args, config) -> dt.datetime:
    """--now (ISO 8601; without an offset, in the config's time zone), else the clock."""
    tz = _tz(config)
    return _parse_when(args.now, tz) if getattr(args, "now", None) else dt.datetime.now(tz)


def _period(text: str) -> str:
    """--period in any form a clerk writes (2026-11, 2026年11月, 202611), as data writes it: '2026-11'."""
    from mailbot.dates.period import Period
    try:
        return str(Period.parse(text))
    except ValueError as e:
        raise UsageError(str(e)) from None


def _color() -> bool:
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def _cols(*cells: tuple[str, int]) -> str:
    """Cells padded to display widths (a CJK character is two columns)."""
    import unicodedata

    def width(t: str) -> int:
        return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in t)
    return "".join(t + " " * max(1, w - width(t)) for t, w in cells).rstrip()


def _deliver(config, store, now: dt.datetime) -> str:
    """Send what is due in the outbox where smtp is configured; a line saying what happened."""
    if config.smtp is None:
        return "outbox: no smtp configured, the mail waits for `mailbot run` or `poll --once`"
    from mailbot.transport.smtp import deliver_due_sync
    sent = temporary = permanent = 0
    for _ in range(10_000):                       # deliver_due takes a bounded batch: go on while it makes progress
        report = deliver_due_sync(store, config.smtp, now, envelope_from=config.smtp.sender or config.mailbox_address)
        sent, temporary, permanent = sent + len(report.sent), temporary + len(report.temporary), \
            permanent + len(report.permanent)
        if not report.sent:
            break
    return f"outbox: {sent} sent, {temporary} deferred, {permanent} failed"


def cmd_deadlines(args) -> int:
    from mailbot.dates.deadlines import deadlines_for_period
    from mailbot.dates.period import month_label
    from mailbot.dates.zone import iso, zh_date
    from mailbot.dates.workdays import CalendarGapError
    _config, rules, calendar = _rules_and_calendar(args)
    period = _period(args.period)
    try:
        dues = deadlines_for_period(rules, period, calendar)
    except CalendarGapError as e:
        raise UsageError(str(e)) from None
    except ValueError as e:
        raise UsageError(f"invalid rules: {e}") from None
    if args.json:
        for d in dues:
            print(json.dumps({"task": d.task, "section": d.section, "period": d.period, "due": iso(d.due)},
                             ensure_ascii=False))
        return 0
    year, month = (int(x) for x in period.split("-"))
    print(f"{month_label(year, month)}的报送期限（{len(dues)}项）")
    print(_cols(("任务", 6), ("科室", 18), ("截止", 28), ("规则", 0)))
    for d in dues:
        if d.kind == "monthly":
            rule = next((f"每月{x.day}日前" + ("（实施方案未写日期，按此执行）" if not x.stated else "")
                         for x in rules.task(d.task).deadlines if x.kind == "monthly"), "")
        else:
            rule = f"每{'月' if d.per == 'month' else '年'}至少{d.at_least}次（{'月底' if d.per == 'month' else '年底'}核对）"
        print(_cols((str(d.task), 6), (d.section, 18), (zh_date(d.due), 28), (rule, 0)))
    return 0


def _parse_event(text: str) -> dt.date | dt.datetime:
    from mailbot.dates.zone import bureau_time
    try:
        if "T" in text or " " in text.strip():
            return bureau_time(dt.datetime.fromisoformat(text.strip()))
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"--event must be a date YYYY-MM-DD or a time YYYY-MM-DDTHH:MM; found {text!r}") from None


def due_explanation(task, event: dt.date | dt.datetime, due: dt.date | dt.datetime, calendar) -> str:
    """The Chinese explanation `mailbot due` prints under the due date."""
    import math
    from mailbot.dates.zone import bureau_time, zh_date
    rule = next(d for d in task.deadlines if d.kind == "event")
    what = rule.event_column or "事件日期"
    head = f"任务{task.number}（{task.title}）：{rule.source or '按事件计算期限'}。"
    if rule.working_days is not None:
        start = event.date() if isinstance(event, dt.datetime) else event
        off = [start + dt.timedelta(days=k) for k in range(1, (due - start).days)
               if not calendar.is_workday(start + dt.timedelta(days=k))]
        skipped = f"（其间{len(off)}天休息日不计，调休上班日计为工作日）" if off else ""
        return (f"{head}\n{what}{zh_date(start)}，当日不计，往后数{rule.working_days}个工作日{skipped}，"
                f"期限为{zh_date(due)}当日结束前。")
    if isinstance(event, dt.datetime):
        return (f"{head}\n{what}{zh_date(bureau_time(event))}起{rule.hours}小时，期限为{zh_date(due)}"
                f"（按小时计，节假日不停止计时）。")
    days = math.ceil(rule.hours / 24)
    return (f"{head}\n{what}{zh_date(event)}，只有日期没有时间，按不超过{days}个自然日计，"
            f"期限为{zh_date(due)}当日结束前。")


def cmd_due(args) -> int:
    from mailbot.dates.deadlines import event_due
    from mailbot.dates.zone import iso
    from mailbot.dates.workdays import CalendarGapError
    _config, rules, calendar = _rules_and_calendar(args)
    task = rules.task(args.task)
    if task is None:
        raise UsageError(f"unknown task {args.task}; tasks are 1..{len(rules.tasks)}")
    event = _parse_event(args.event)
    try:
        due = event_due(task, event, calendar)
    except CalendarGapError as e:
        raise UsageError(str(e)) from None
    except ValueError as e:
        raise UsageError(str(e)) from None
    if due is None:
        raise UsageError(f"task {task.number} has no deadline that an event sets: the plan asks for it "
                         f"第一时间 (as soon as possible), with no time to compute")
    print(iso(due))
    print(due_explanation(task, event, due, calendar))
    start = event.date() if isinstance(event, dt.datetime) else event
    end = due.date() if isinstance(due, dt.datetime) else due
    if any(d.kind == "event" and d.working_days is not None for d in task.deadlines) and \
            (guess := calendar.provisional_years(start, end)):
        print(provisional_note(guess))
    return 0


_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_CALENDAR_SOURCES = {"rules": "rules file", "loaded": "State Council notice loaded by mail",
                     "package": "published schedule shipped with mailbot (chinesecalendar)",
                     "provisional": "预估: statutory holidays from the lunar calendar, no 调休"}


def cmd_calendar(args) -> int:
    """A year's days off and weekend days worked, and where they come from."""
    from mailbot.dates.workdays import CalendarGapError, day_names
    from mailbot.dates.zone import iso
    year = args.year
    if not 2000 <= year <= 2099:
        raise UsageError(f"--year must be a year such as 2027; found {year}")
    config, loaded = _optional_config(args), None
    if config is not None and not args.rules:
        deployment = _deployment(config)
        store = deployment.open_store()            # the notices loaded by mail, into the calendar
        loaded = store.loaded_calendars().get(year)
        store.close()
        calendar = deployment.calendar
    else:
        _config, _rules, calendar = _rules_and_calendar(args)
    source = calendar.source(year)
    try:
        days_off, workdays = calendar.schedule(year)
    except CalendarGapError as e:
        raise UsageError(str(e)) from None
    names = day_names(source, year, loaded.notice if loaded is not None else None)
    rules_file = f"{calendar.rules_dir.rstrip('/')}/calendar/{year}.yaml" if source == "rules" else None
    notice = None if loaded is None else {"loaded_by": loaded.loaded_by, "loaded_at": iso(loaded.loaded_at),
                                          "in_force": source == "loaded"}

    def day(d: dt.date) -> dict[str, str]:
        return {"date": d.isoformat(), "weekday": _WEEKDAYS[d.weekday()], "holiday": names.get(d, "")}

    if args.json:
        print(json.dumps({"year": year, "source": source, "provisional": source == "provisional",
                          "rules_file": rules_file, "notice": notice,
                          "days_off": [day(d) for d in sorted(days_off)],
                          "workdays": [day(d) for d in sorted(workdays)]}, ensure_ascii=False))
        return 0
    head = f"{year}: {source} - {_CALENDAR_SOURCES[source]}"
    if rules_file:
        head += f" {rules_file}"
    if notice and source == "loaded":
        head += f", by {notice['loaded_by']} at {notice['loaded_at']}"
    print(head)
    if notice and source == "rules":
        print(f"  (a notice loaded by {notice['loaded_by']} at {notice['loaded_at']} is kept but not used: "
              f"the rules file wins)")
    if source == "provisional":
        print(f"  load the State Council notice (mail 节假日 {year} to the mailbox) or add "
              f"{calendar.rules_dir.rstrip('/')}/calendar/{year}.yaml")
    for title, days in (("days off", days_off), ("weekend days worked (调休上班)", workdays)):
        print(f"{title} ({len(days)}):")
        for d in sorted(days):
            print(f"  {d.isoformat()}  {_WEEKDAYS[d.weekday()]}  {names.get(d, '')}".rstrip())
    return 0


def provisional_note(years) -> str:
    """What every deadline computed on a provisional year says (issue: the calendar never runs out)."""
    from mailbot.writing.vocabulary import provisional_words
    return (f"注意：本期限为预估。{provisional_words(years)}；正式安排录入后以正式安排为准。"
            f"provisional: no official holiday schedule for {', '.join(map(str, years))} yet")


def cmd_status(args) -> int:
    from mailbot.dates.zone import iso
    from mailbot.duties.status import render_table
    config = _load_config(args)
    period = _period(args.period)
    office = _office(config)
    now = _now(args, config)
    cells = office.status(period, now)
    if args.json:
        for c in cells:
            row = {"section": c.section, "task": c.task, "period": c.period, "state": c.state,
                   "submitted_at": iso(c.submitted_at)}
            if c.reused:                # files already accepted for another period: counted nowhere
                row["reused"] = [r.as_dict() for r in c.reused]
            print(json.dumps(row, ensure_ascii=False))
        return 0
    from mailbot.dates.zone import bureau_time
    print(render_table(cells, color=_color(), today=bureau_time(now).date()), end="")
    return 0


def cmd_remind(args) -> int:
    from mailbot.dates.zone import iso
    config = _load_config(args)
    office = _office(config)
    now = _now(args, config)
    if args.dry_run:
        gaps: list = []
        shown = office.plan(now, gaps)
        note = f"{len(shown)} letter(s) due at {iso(now)} (dry run: nothing queued)"
        unaddressed = [p for p in shown if not p.to]
    else:
        run = office.remind(now)
        gaps, shown, unaddressed = run.gaps, run.queued, run.unaddressed
        note = f"{len(run.queued)} letter(s) queued, {len(run.already)} queued before"
    if unaddressed:
        note += f"; no address for {', '.join(dict.fromkeys(p.section for p in unaddressed))} (see the digest)"
    for g in gaps:
        print(f"mailbot: {g}", file=sys.stderr)
    for p in shown:
        if not args.dry_run and not p.to:
            continue
        for row in p.rows():
            if args.json:
                print(json.dumps(row, ensure_ascii=False))
            else:
                to = ", ".join(row["to"]) or "（未登记邮箱）"
                print(_cols((row["kind"], 10), (row["section"], 18), (f"任务{row['task']}", 8), (row["period"], 9),
                            (f"截止 {row['due']}", 18), (f"→ {to}", 0)))
    if not args.dry_run and shown:
        try:
            note += "; " + _deliver(config, office.store, now)
        except Exception as e:  # noqa: BLE001 - queued mail stays for the daemon
            print(f"mailbot: delivery failed: {type(e).__name__}: {redact(e)}", file=sys.stderr)
            return 1
    print(note, file=sys.stderr if args.json else sys.stdout)
    guessed = sorted({r.due.year for p in shown for r in p.letter.items if office.calendar.is_provisional(r.due.year)})
    if guessed:      # when these letters go out was counted in guessed working days
        print(provisional_note(guessed), file=sys.stderr if args.json else sys.stdout)
    # a deadline that could not be computed is a failure of this command, not a footnote
    return 1 if gaps else 0


def cmd_summary(args) -> int:
    config = _load_config(args)
    period = _period(args.period)
    out = Path(args.out)
    if out.suffix.lower() != ".xlsx":
        raise UsageError(f"--out must name an .xlsx file; found {args.out!r}")
    office = _office(config)
    now = _now(args, config)
    xlsx, zipped = office.write(period, out, now)
    print(f"wrote {xlsx}")
    print(f"wrote {zipped}")
    if args.send:
        try:
            sent = office.send_package(period, xlsx, zipped, now)
        except LookupError as e:
            raise UsageError(str(e)) from None
        print(f"{'queued' if sent.created else 'already queued'} to {', '.join(sent.recipients)}: {sent.subject}")
        try:
            print(_deliver(config, office.store, now))
        except Exception as e:  # noqa: BLE001 - queued mail stays for the daemon
            print(f"mailbot: delivery failed: {type(e).__name__}: {redact(e)}", file=sys.stderr)
            return 1
    return 0


def cmd_score(args) -> int:
    config = _load_config(args)
    if not 2000 <= args.year <= 2099:
        raise UsageError(f"--year must be a year such as 2026; found {args.year}")
    out = Path(args.out)
    if out.suffix.lower() != ".xlsx":
        raise UsageError(f"--out must name an .xlsx file; found {args.out!r}")
    office = _office(config)
    now = _now(args, config)
    rows, data = office.score(args.year, now)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    if args.json:
        for r in rows:
            print(json.dumps(r.as_dict(), ensure_ascii=False))
    due = sum(r.due for r in rows)
    on_time = sum(r.on_time for r in rows)
    print(f"wrote {out}: {len(rows)} row(s); {due} due, {on_time} on time, {sum(r.late for r in rows)} late, "
          f"{sum(r.missing for r in rows)} missing", file=sys.stderr if args.json else sys.stdout)
    return 0


def _web_settings(config, args=None):
    import dataclasses
    from mailbot.app.config import WebSettings
    settings = config.web or WebSettings(secret_key_file=config.storage / "web-secret.key")
    if args is not None and (args.host or args.port):
        settings = dataclasses.replace(settings, host=args.host or settings.host, port=args.port or settings.port)
    return settings


def cmd_web(args) -> int:
    """The web desk in the foreground (the daemon serves it too where the config has `web:`)."""
    from mailbot.web.app import create_app
    from mailbot.web.server import WebServer
    logging.getLogger().setLevel(logging.DEBUG if args.verbose else logging.INFO)
    config = _load_config(args)
    deployment = _deployment(config)
    store = deployment.open_store()
    settings = _web_settings(config, args)
    on_queued = None
    if config.smtp is not None:
        import threading

        def on_queued() -> None:         # no daemon here to send it: deliver now, in the background
            threading.Thread(target=_deliver, args=(config, store, deployment.now()), daemon=True).start()
    app = create_app(deployment, store, settings=settings, on_queued=on_queued)
    print(f"mailbot web desk: http://{settings.host}:{settings.port} (links mailed as {settings.link_base}/...)",
          file=sys.stderr)
    import signal
    import threading
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: stop.set())
    server = WebServer(app, settings.host, settings.port)
    server.start()                       # a thread, as in the daemon: SIGTERM ends it cleanly, exit 0
    while not stop.wait(0.5):
        if server.thread is not None and not server.thread.is_alive():
            print(f"mailbot: the web desk stopped (is {settings.host}:{settings.port} free?)", file=sys.stderr)
            return 1
    server.stop()
    store.close()
    return 0


def cmd_login_link(args) -> int:
    """A one-time login link to the web desk for a registered address, printed for the operator."""
    from mailbot.desk import Actor
    from mailbot.web.app import issue_link
    config = _load_config(args)
    actor = Actor.of(config, args.address, "web")
    if actor is None:
        raise UsageError(f"{args.address} is not a registered address (sections in {config.file})")
    deployment = _deployment(config)
    store = deployment.open_store()
    now = dt.datetime.now(_tz(config))
    link, _digest, expires = issue_link(store, _web_settings(config), actor.address, now)
    store.record_audit(actor="operator", role="operator", section=config.credit_section, channel="cli",
                       action="login-link", args={"address": actor.address}, ok=True,
                       result=f"one-time login link for {actor.address} printed", now=now)
    print(link)
    print(f"valid once, until {expires.isoformat(timespec='minutes')}; {actor.address} ({actor.section}, "
          f"{'everything' if actor.is_credit else 'its own section, read-only'})", file=sys.stderr)
    return 0


def cmd_demo(args) -> int:
    from mailbot.dev.demo import run_demo
    return run_demo(imap=args.imap, workdir=args.dir)


# ---------------------------------------------------------------- argument parsing

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mailbot", description="Email intake bot of the credit section (信用监管科).")
    p.add_argument("--config", help="config file (YAML); default: $MAILBOT_CONFIG or ./config.yaml")
    p.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("rules", help="the rules in rules/")
    rsub = r.add_subparsers(dest="rules_command", required=True)
    rc = rsub.add_parser("check", help="validate the rules (and the config, if given); list every mistake")
    rc.add_argument("--rules", help="rules folder (default: the config's, else the project's rules/)")
    rc.set_defaults(func=cmd_rules_check)

    t = sub.add_parser("template", help="write the blank Annex 1 template for a section and month")
    t.add_argument("--section", required=True, help="section id or alias, e.g. 政策法规科")
    t.add_argument("--period", required=True, help="the month: 2026-11, 2026年11月 or 202611")
    t.add_argument("--out", required=True, help="output .xlsx file")
    t.add_argument("--rules", help="rules folder")
    t.set_defaults(func=cmd_template)

    i = sub.add_parser("ingest", help="run the whole intake on message files (.eml)")
    i.add_argument("files", nargs="+", metavar="FILE.eml")
    i.add_argument("--json", action="store_true", help="one JSON object per message")
    i.add_argument("--received", help="receipt time to use (ISO 8601; default: now)")
    i.set_defaults(func=cmd_ingest)

    c = sub.add_parser("check", help="validate one workbook offline and list every problem")
    c.add_argument("workbook")
    c.add_argument("--task", type=int, help="only the sheets of this task")
    c.add_argument("--json", action="store_true")
    c.add_argument("--rules", help="rules folder")
    c.set_defaults(func=cmd_check)

    rn = sub.add_parser("run", help="the daemon: watch the mailbox, send the outbox, run scheduled jobs")
    rn.add_argument("--json-logs", action="store_true", help="one JSON object per log line")
    rn.set_defaults(func=cmd_run)

    po = sub.add_parser("poll", help="one pass: take every new message through the pipeline, deliver the outbox")
    po.add_argument("--once", action="store_true", required=True)
    po.add_argument("--json", action="store_true", help="one JSON object per message")
    po.set_defaults(func=cmd_poll)

    h = sub.add_parser("health", help="last good poll, outbox backlog, mail waiting for a person; exit 1 if silent too long")
    h.add_argument("--json", action="store_true")
    h.set_defaults(func=cmd_health)

    d = sub.add_parser("demo", help="run the bot on the sample month of mail, with mail servers of its own")
    d.add_argument("--imap", action="store_true", help="over real IMAP (needs Dovecot)")
    d.add_argument("--dir", type=Path, help="work folder (default: storage/demo/ in the project)")
    d.set_defaults(func=cmd_demo)

    dl = sub.add_parser("deadlines", help="every deadline of a month (task, section, due date)")
    dl.add_argument("--period", required=True, help="the month: 2026-11, 2026年11月 or 202611")
    dl.add_argument("--json", action="store_true", help='one {"task", "section", "period", "due"} per line')
    dl.add_argument("--rules", help="rules folder (default: the config's, else the project's rules/)")
    dl.set_defaults(func=cmd_deadlines)

    du = sub.add_parser("due", help="the deadline an event sets (a 双公示 decision, a news event, an objection letter)")
    du.add_argument("--task", required=True, type=int, help="task number, 1..11")
    du.add_argument("--event", required=True, help="the event's date YYYY-MM-DD, or time YYYY-MM-DDTHH:MM (Beijing)")
    du.add_argument("--rules", help="rules folder (default: the config's, else the project's rules/)")
    du.set_defaults(func=cmd_due)

    stt = sub.add_parser("status", help="sections by tasks for a month: on_time, late, rejected, reused, missing, not_due, not_applicable")
    stt.add_argument("--period", required=True, help="the month: 2026-11, 2026年11月 or 202611")
    stt.add_argument("--json", action="store_true", help='one {"section", "task", "period", "state", "submitted_at"} per line')
    stt.add_argument("--now", help="as it stood at this time (ISO 8601; default: now)")
    stt.set_defaults(func=cmd_status)

    rm = sub.add_parser("remind", help="send (or list) the reminders and overdue notices due at a moment")
    rm.add_argument("--now", help="the moment (ISO 8601, Beijing time without an offset; default: now)")
    rm.add_argument("--dry-run", action="store_true", help="only list what is due; queue and send nothing")
    rm.add_argument("--json", action="store_true",
                    help='one {"kind", "to", "section", "task", "period", "due"} per missing item')
    rm.set_defaults(func=cmd_remind)

    sm = sub.add_parser("summary", help="the monthly package for 区发改局, with the evidence zip beside it")
    sm.add_argument("--period", required=True, help="the month: 2026-11, 2026年11月 or 202611")
    sm.add_argument("--out", required=True, help="the package workbook (.xlsx); the zip is written in its folder")
    sm.add_argument("--send", action="store_true", help="also mail both to the credit section")
    sm.add_argument("--now", help="as it stood at this time (ISO 8601; default: now)")
    sm.set_defaults(func=cmd_summary)

    ca = sub.add_parser("calendar", help="a year's days off and weekend days worked, and where they come from")
    ca.add_argument("--year", required=True, type=int)
    ca.add_argument("--json", action="store_true", help='one {"year", "source", "days_off", "workdays", ...} object')
    ca.add_argument("--rules", help="rules folder (default: the config's, else the project's rules/)")
    ca.set_defaults(func=cmd_calendar)

    sc = sub.add_parser("score", help="the year-end score per section and task")
    sc.add_argument("--year", required=True, type=int)
    sc.add_argument("--out", required=True, help="output .xlsx")
    sc.add_argument("--json", action="store_true", help="also print one JSON object per section and task")
    sc.add_argument("--now", help="as it stood at this time (ISO 8601; default: now)")
    sc.set_defaults(func=cmd_score)

    ob = sub.add_parser("outbox", help="the letters mailbot queued, sent, failed to send or withheld")
    obsub = ob.add_subparsers(dest="outbox_command", required=True)
    ol = obsub.add_parser("list", help="every letter: to, cc, subject, state, Message-ID, attachments, text")
    ol.add_argument("--state", choices=("queued", "sent", "failed", "withheld"))
    ol.add_argument("--limit", type=int, default=1000)
    ol.add_argument("--json", action="store_true")
    ol.set_defaults(func=cmd_outbox_list)
    bk = sub.add_parser("backup", help="a consistent snapshot of the database and every stored file, while the daemon runs")
    bk.add_argument("--out", required=True, help="the archive to write (.tar.gz)")
    bk.set_defaults(func=cmd_backup)
    rs = sub.add_parser("restore", help="a backup into an empty storage and database (stop the daemon first)")
    rs.add_argument("archive")
    rs.set_defaults(func=cmd_restore)

    wb = sub.add_parser("web", help="the web desk: the month, every message and file, the quarantine's buttons")
    wb.add_argument("--host", help="address to listen on (default: the config's web.host, else 127.0.0.1)")
    wb.add_argument("--port", type=int, help="port (default: the config's web.port, else 8080)")
    wb.set_defaults(func=cmd_web)
    ll = sub.add_parser("login-link", help="print a one-time login link to the web desk for a registered address")
    ll.add_argument("address")
    ll.set_defaults(func=cmd_login_link)

    q = sub.add_parser("quarantine", help="messages waiting for a person")
    qsub = q.add_subparsers(dest="quarantine_command", required=True)
    ql = qsub.add_parser("list", help="quarantined messages and crashed ones")
    ql.add_argument("--json", action="store_true")
    ql.set_defaults(func=cmd_quarantine_list)
    qc = qsub.add_parser("confirm", help="confirm a quarantined message's section: it is then checked, recorded and answered")
    qc.add_argument("ref", help="receipt number (or message row id)")
    qc.add_argument("--section", required=True, help="the section it belongs to (id or alias)")
    qc.add_argument("--json", action="store_true")
    qc.set_defaults(func=cmd_quarantine_confirm)
    for name, what in (("reject", "close a quarantined message with a letter to its sender saying why"),
                       ("ignore", "close a quarantined message without a letter")):
        qx = qsub.add_parser(name, help=what)
        qx.add_argument("ref", help="receipt number")
        qx.add_argument("--reason", required=True, help="why (the rejection letter says it)" if name == "reject"
                        else "why (kept in the audit log; no letter is sent)")
        qx.add_argument("--json", action="store_true")
        qx.set_defaults(func=cmd_quarantine_reject if name == "reject" else cmd_quarantine_ignore)
    qr = qsub.add_parser("retry", help="replay a crashed message from its archived raw bytes")
    qr.add_argument("id", type=int, help="failure id (see quarantine list)")
    qr.add_argument("--json", action="store_true")
    qr.set_defaults(func=cmd_quarantine_retry)
    rc = sub.add_parser("reclassify", help="re-file one file of a recorded message under another task and/or month")
    rc.add_argument("ref", help="RECEIPT or RECEIPT:N (N: the file's number in the message, from 1)")
    rc.add_argument("--task", type=int)
    rc.add_argument("--period", help="the month: 2026-11, 2026年11月 or 202611")
    rc.add_argument("--json", action="store_true")
    rc.set_defaults(func=cmd_reclassify)
    cl = sub.add_parser("close", help="close a month (结账): stop chasing what it still owes")
    cl.add_argument("--period", required=True)
    cl.add_argument("--json", action="store_true")
    cl.set_defaults(func=cmd_close)
    au = sub.add_parser("audit", help="every desk action (mail command, web, CLI): who, when, what, result")
    au.add_argument("--json", action="store_true")
    au.add_argument("--limit", type=int, default=1000)
    au.add_argument("--action", help="only this action (confirm, query, ...)")
    au.set_defaults(func=cmd_audit)
    _accept_global_options_anywhere(p)
    return p


def _accept_global_options_anywhere(parser: argparse.ArgumentParser) -> None:
    """`mailbot status --config F` as well as `mailbot --config F status`: every subcommand takes the
    global options too (SUPPRESS: one given before the subcommand is not reset by the subparser)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sp in action.choices.values():
                sp.add_argument("--config", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
                sp.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                                help=argparse.SUPPRESS)
                _accept_global_options_anywhere(sp)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_log_filter()
    # Least privilege on disk: every file and folder mailbot makes is its own (0600 / 0700).
    os.umask(0o077)
    try:
        return args.func(args)
    except UsageError as e:
        print(f"mailbot: {redact(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
