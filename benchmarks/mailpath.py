#!/usr/bin/env python3
"""Mail-path benchmark (issue 3): N messages waiting in Dovecot; `mailbot poll --once` against the
floor (a bare imap-tools loop that only fetches them), and the delay from delivery to receipt
under IDLE (`mailbot run`).

    .venv/bin/python benchmarks/mailpath.py                     # 1,000 messages, 200 rows, 20 IDLE probes
    .venv/bin/python benchmarks/mailpath.py --messages 200 --idle 10

Steps, all on loopback (Dovecot on 127.0.0.1 ports of its own + LMTP on a unix socket, an
aiosmtpd sink on 127.0.0.1):
1. start a private Dovecot (mailbot.dev.devservers, else tests/mailservers.py) and deliver the
   messages (benchmarks/common.py) over LMTP into the credit section's INBOX;
2. the floor: imap-tools MailBoxUnencrypted, fetch(mark_seen=False, bulk=--bulk) of every
   message, plus a bare python-calamine read of every cell of every workbook attachment: no
   mailbot code (best of --floor-runs; the fetch alone is reported beside it); plus the wire floor, plain imaplib
   UID FETCH BODY.PEEK[] in chunks of 10 with no parsing at all. Neither changes the mailbox
   (checked: no message gets \\Seen), so the poll finds the state the floor found;
3. `mailbot --config CFG poll --once --json` as a child process (IMAP plain to Dovecot, SMTP
   plain to the sink, fresh SQLite store): wall time, peak RSS, replies sent; ratio poll/floor;
4. IDLE: `mailbot run` on another (empty) mailbox with a fresh store; once it watches, --idle
   messages are delivered one at a time --spacing seconds apart; the delay of each is from the
   end of its LMTP delivery to the arrival at the sink of the receipt whose In-Reply-To names it.
   Peak RSS of the daemon (os.wait4 after SIGTERM).

Results: benchmarks/out/mailpath-<time>.json (and the children's output beside it).
"""
from __future__ import annotations

import argparse
import collections
import email.parser
import email.policy
import imaplib
import json
import os
import re
import shutil
import signal
import smtplib
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

USER = common.MAILBOX                               # the credit section's mailbox
IDLE_USER = "xyjgk-idle@cqscjg.example.cn"          # a second, empty mailbox for the IDLE run
SENDER = f"信用监管科 <{common.MAILBOX}>"


# ---------------------------------------------------------------- the SMTP sink

class Sink:
    """An aiosmtpd server on 127.0.0.1 that keeps (arrival time, In-Reply-To, recipients) of each mail."""

    def __init__(self):
        from aiosmtpd.controller import Controller
        self.received: list[tuple[float, str, tuple[str, ...], int]] = []
        self.lock = threading.Condition()
        parser = email.parser.BytesHeaderParser(policy=email.policy.compat32)
        outer = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                t = time.monotonic()
                raw = envelope.original_content or envelope.content
                head = parser.parsebytes(raw)
                irt = str(head.get("In-Reply-To", "") or "").strip()
                with outer.lock:
                    outer.received.append((t, irt, tuple(envelope.rcpt_tos), len(raw)))
                    outer.lock.notify_all()
                return "250 2.0.0 Ok: kept"

        self.port = common.mailservers().free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def start(self) -> "Sink":
        self.controller.start()
        return self

    def stop(self) -> None:
        try:
            self.controller.stop()
        except Exception:  # noqa: BLE001
            pass

    def count(self) -> int:
        with self.lock:
            return len(self.received)

    def arrival(self, message_id: str) -> float | None:
        with self.lock:
            for t, irt, _r, _n in self.received:
                if irt == message_id:
                    return t
        return None

    def wait_for(self, ids: set[str], timeout: float) -> dict[str, float]:
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                got = {irt: t for t, irt, _r, _n in self.received if irt in ids}
                if len(got) == len(ids) or time.monotonic() >= deadline:
                    return got
                self.lock.wait(min(0.2, max(0.01, deadline - time.monotonic())))


# ---------------------------------------------------------------- pieces

def deliver_all(dovecot, user: str, raws: list[bytes]) -> float:
    """Deliver over one LMTP connection (reopened every 200 messages); seconds taken."""
    t0 = time.monotonic()
    lmtp = None
    try:
        for i, raw in enumerate(raws):
            if lmtp is None or i % 200 == 0:
                if lmtp is not None:
                    lmtp.quit()
                lmtp = smtplib.LMTP(str(dovecot.lmtp_socket), timeout=60)
            refused = lmtp.sendmail("bench@cqscjg.example.cn", [user], raw)
            if refused:
                raise RuntimeError(f"LMTP refused {user}: {refused}")
    finally:
        if lmtp is not None:
            lmtp.quit()
    return time.monotonic() - t0


def floor_imap_tools(dovecot, user: str, bulk: int | bool, *, read_workbooks: bool = True) -> tuple[float, int, int]:
    """The issue's floor: imap-tools fetching every message of INBOX without \\Seen (BODY.PEEK,
    bulk), plus a bare python-calamine read of every cell of every workbook attachment; no
    mailbot code. (s, count, bytes)."""
    import io

    from imap_tools import MailBoxUnencrypted
    from python_calamine import CalamineWorkbook
    t0 = time.monotonic()
    n = size = 0
    with MailBoxUnencrypted(dovecot.host, dovecot.imap_port, timeout=60).login(user, dovecot.password, "INBOX") as mb:
        for msg in mb.fetch(mark_seen=False, bulk=bulk):
            n += 1
            size += msg.size_rfc822
            if not read_workbooks:
                continue
            for att in msg.attachments:
                if att.filename.lower().endswith((".xlsx", ".xls", ".ods", ".et")):
                    wb = CalamineWorkbook.from_filelike(io.BytesIO(att.payload))
                    for name in wb.sheet_names:
                        wb.get_sheet_by_name(name).to_python()
    return time.monotonic() - t0, n, size


def floor_wire(dovecot, user: str, chunk: int = 10) -> tuple[float, int, int]:
    """imaplib alone: UID SEARCH, then UID FETCH BODY.PEEK[] in chunks of `chunk` (as mailbot reads)."""
    t0 = time.monotonic()
    c = imaplib.IMAP4(dovecot.host, dovecot.imap_port, timeout=60)
    n = size = 0
    try:
        c.login(user, dovecot.password)
        c.select("INBOX", readonly=True)
        typ, data = c.uid("SEARCH", "ALL")
        uids = data[0].split()
        for i in range(0, len(uids), chunk):
            typ, data = c.uid("FETCH", b",".join(uids[i:i + chunk]).decode(), "(UID BODY.PEEK[])")
            for item in data:
                if isinstance(item, tuple):
                    n += 1
                    size += len(item[1])
        c.logout()
    finally:
        try:
            c.shutdown()
        except Exception:  # noqa: BLE001
            pass
    return time.monotonic() - t0, n, size


def idle_floor(dovecot, user: str, mails, spacing: float) -> list[float]:
    """The IDLE floor: a bare client in IDLE; for each delivery, the seconds from the end of the
    LMTP delivery to the server's '* n EXISTS' (what any IDLE client, mailbot included, waits for)."""
    import socket
    with dovecot.mailbox(user):                  # the mailbox exists before SELECT
        pass
    sock = socket.create_connection((dovecot.host, dovecot.imap_port), timeout=30)
    f = sock.makefile("rb")

    def command(tag: bytes, text: bytes, until: bytes = b"") -> None:
        sock.sendall(tag + b" " + text + b"\r\n")
        while True:
            line = f.readline()
            if not line:
                raise RuntimeError("connection closed")
            if line.startswith(until or tag + b" "):
                return

    delays = []
    try:
        f.readline()                                                  # greeting
        command(b"a", b'LOGIN "%s" "%s"' % (user.encode(), dovecot.password.encode()))
        command(b"b", b"SELECT INBOX")
        command(b"c", b"IDLE", until=b"+")
        for mail in mails:
            dovecot.deliver(user, mail.raw, sender=mail.sender)
            t = time.monotonic()
            while True:
                line = f.readline()
                if not line:
                    raise RuntimeError("connection closed during IDLE")
                if re.match(rb"\* \d+ EXISTS", line):
                    delays.append(time.monotonic() - t)
                    break
            time.sleep(spacing)
        sock.sendall(b"DONE\r\n")
        while not f.readline().startswith(b"c "):
            pass
        command(b"d", b"LOGOUT")
    finally:
        f.close()
        sock.close()
    return delays


def folder_counts(dovecot, user: str) -> dict[str, int]:
    return {f: len(dovecot.flags(user, f)) for f in dovecot.folders(user)}


def imap_config(dovecot, user: str) -> dict:
    return {"host": "127.0.0.1", "port": dovecot.imap_port, "security": "plain", "username": user,
            "password": dovecot.password}


def smtp_config(sink: Sink) -> dict:
    return {"host": "127.0.0.1", "port": sink.port, "security": "plain", "sender": SENDER}


_LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) INFO mailbot\.daemon: message (\S+) from imap:")


def _processed_times(log_path: Path, wall_offset: float) -> dict[str, float]:
    """Message-ID -> when the daemon logged it processed (on this process's monotonic clock)."""
    import datetime as dt
    out = {}
    for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines():
        m = _LOG_LINE.match(line)
        if m:
            t = dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S").timestamp() + int(m.group(2)) / 1000
            out[m.group(3).strip("<>")] = t - wall_offset
    return out


def vm_hwm_kib(pid: int) -> int | None:
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


# ---------------------------------------------------------------- the runs

def poll_run(args, scratch: Path, dovecot, sink: Sink, waiting: list, prefix: Path) -> dict:
    storage = scratch / "store-poll"
    cfg = common.write_config(scratch / "poll.yaml", storage, imap=imap_config(dovecot, USER), smtp=smtp_config(sink),
                              **({"workers": args.workers} if args.workers is not None else {}))
    before = sink.count()
    out_path, err_path = prefix.with_name(prefix.name + "-poll.jsonl"), prefix.with_name(prefix.name + "-poll.stderr.txt")
    print(f"[poll] mailbot poll --once over {len(waiting)} waiting message(s) ...", file=sys.stderr, flush=True)
    argv = [common.MAILBOT, "--config", str(cfg), "poll", "--once", "--json"]
    prof = prefix.with_name(prefix.name + "-poll.prof")
    if args.profile:        # the main process only: what its workers do is not in it
        argv = [sys.executable, "-m", "cProfile", "-o", str(prof), "-m", "mailbot.app.cli", *argv[1:]]
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        m = common.run_measured(argv, stdout=out, stderr=err, timeout=args.timeout, tree=True)
    results = [json.loads(x) for x in out_path.read_text(encoding="utf-8").splitlines() if x.strip()]
    summary = next((ln for ln in reversed(err_path.read_text(encoding="utf-8", errors="replace").splitlines())
                    if "outbox:" in ln), "")
    sent = re.search(r"outbox: (\d+) sent, (\d+) deferred, (\d+) failed", summary)
    return {
        "returncode": m.returncode,
        "wall_s": round(m.wall, 2),
        "messages": len(results),
        "messages_per_s": round(len(results) / m.wall, 2) if m.wall else None,
        "cpu_user_s": round(m.user, 2),
        "cpu_sys_s": round(m.sys, 2),
        "peak_rss_mib": round(m.maxrss_kb / 1024, 1),
        "peak_tree_pss_mib": round(m.tree_pss_kb / 1024, 1),
        "outcomes": dict(collections.Counter(r["outcome"] for r in results)),
        "replies_drafted": sum(1 for r in results if r.get("reply")),
        "summary_line": summary,
        "sent_reported": int(sent.group(1)) if sent else None,
        "sent_at_sink": sink.count() - before,
        "folders_after": folder_counts(dovecot, USER),
        **({"profile": common.profile_summary(prof, args.top)} if args.profile else {}),
    }


def idle_run(args, scratch: Path, dovecot, sink: Sink, mails, prefix: Path) -> dict:
    storage = scratch / "store-idle"
    cfg = common.write_config(scratch / "idle.yaml", storage, imap=imap_config(dovecot, IDLE_USER),
                              smtp=smtp_config(sink))
    log_path = prefix.with_name(prefix.name + "-run.log")
    # an empty INBOX must exist before mailbot selects it: deliver nothing, just log in once
    with dovecot.mailbox(IDLE_USER):
        pass
    print(f"[idle] mailbot run; {len(mails)} message(s) delivered {args.spacing} s apart ...", file=sys.stderr, flush=True)
    log = open(log_path, "wb")
    t_start = time.monotonic()
    # under GNU time (peak RSS from the daemon's own image: see common.run_measured); the daemon
    # itself is time's child and gets the SIGTERM
    gnu_time = shutil.which("time", path="/usr/bin:/bin")
    time_out = scratch / "run-time.txt"
    argv = [common.MAILBOT, "--config", str(cfg), "run"]
    if gnu_time:
        argv = [gnu_time, "-f", "%M %e %U %S", "-o", str(time_out), *argv]
    p = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    daemon_pid = p.pid
    health = storage / "health.json"
    res: dict = {}
    try:
        # watching: the watcher writes health.json (last_poll_ok) each time it goes back to waiting
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if p.poll() is not None:
                raise RuntimeError(f"mailbot run exited with {p.returncode}; see {log_path}")
            if gnu_time and daemon_pid == p.pid:
                try:
                    kids = Path(f"/proc/{p.pid}/task/{p.pid}/children").read_text().split()
                    daemon_pid = int(kids[0]) if kids else daemon_pid
                except OSError:
                    pass
            try:
                if json.loads(health.read_text(encoding="utf-8")).get("last_poll_ok"):
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        else:
            raise RuntimeError(f"mailbot run did not start watching within 60 s; see {log_path}")
        res["startup_to_watching_s"] = round(time.monotonic() - t_start, 2)
        time.sleep(1.0)                                  # let it enter IDLE
        delivered: dict[str, float] = {}
        wall_offset = time.time() - time.monotonic()     # to place the daemon's log lines
        next_at = time.monotonic()
        for mail in mails:
            time.sleep(max(0.0, next_at - time.monotonic()))
            dovecot.deliver(IDLE_USER, mail.raw, sender=mail.sender)
            delivered[mail.message_id] = time.monotonic()
            next_at += args.spacing
        got = sink.wait_for(set(delivered), timeout=args.idle_timeout)
        delays = [got[mid] - t for mid, t in delivered.items() if mid in got]
        res.update({
            "messages": len(mails),
            "receipts": len(got),
            "spacing_s": args.spacing,
            "delays_s": [round(got[mid] - t, 3) if mid in got else None for mid, t in delivered.items()],
            "delay_median_s": round(statistics.median(delays), 3) if delays else None,
            "delay_max_s": round(max(delays), 3) if delays else None,
            "delay_min_s": round(min(delays), 3) if delays else None,
            "delay_p90_s": round(sorted(delays)[max(0, int(len(delays) * 0.9) - 1)], 3) if delays else None,
        })
        res["vmhwm_before_stop_mib"] = round((vm_hwm_kib(daemon_pid) or 0) / 1024, 1)
        # split each delay at the daemon's "message <id> from imap:...: <outcome>" log line
        # (written once the message is processed and committed; the receipt is sent after it)
        log.flush()
        processed = _processed_times(log_path, wall_offset)
        split = [(processed[mid.strip("<>")] - t, got[mid] - processed[mid.strip("<>")])
                 for mid, t in delivered.items() if mid in got and mid.strip("<>") in processed]
        if split:
            res["delivery_to_processed_median_s"] = round(statistics.median(a for a, _ in split), 3)
            res["processed_to_receipt_at_sink_median_s"] = round(statistics.median(b for _, b in split), 3)
    finally:
        t_stop = time.monotonic()
        if p.poll() is None:
            os.kill(daemon_pid, signal.SIGTERM)
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.kill(daemon_pid, signal.SIGKILL)
            p.kill()
            p.wait()
        log.close()
        res["stop_s"] = round(time.monotonic() - t_stop, 2)
        res["returncode"] = p.returncode
        res["log"] = str(log_path)
        try:
            last = time_out.read_text().strip().splitlines()[-1].split()
            res["peak_rss_mib"] = round(int(last[0]) / 1024, 1)
            res["cpu_user_s"], res["cpu_sys_s"] = float(last[2]), float(last[3])
        except (OSError, IndexError, ValueError):
            res["peak_rss_mib"] = res.get("vmhwm_before_stop_mib")
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=1000, help="messages waiting in Dovecot (default 1000)")
    ap.add_argument("--rows", type=int, default=200, help="rows of each workbook's main ledger (default 200)")
    ap.add_argument("--bulk", type=int, default=100, help="imap-tools fetch(bulk=N) for the floor (default 100)")
    ap.add_argument("--floor-runs", type=int, default=3, help="floor runs; the fastest counts (default 3)")
    ap.add_argument("--idle", type=int, default=20, help="messages delivered one at a time under IDLE (default 20; 0: skip)")
    ap.add_argument("--spacing", type=float, default=1.0, help="seconds between IDLE deliveries (default 1)")
    ap.add_argument("--idle-timeout", type=float, default=120, help="wait this long for the last receipt")
    ap.add_argument("--seed", type=int, default=20261127)
    ap.add_argument("--timeout", type=float, default=3600, help="give up on the poll after this many seconds")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder")
    ap.add_argument("--workers", type=int, default=None, help="the config's `workers` for the poll (default: "
                    "mailbot's own, the cores but one)")
    ap.add_argument("--profile", action="store_true", help="run the poll under cProfile (its main process); "
                    "the poll's figures are then not the benchmark's")
    ap.add_argument("--top", type=int, default=30, help="functions listed from the profile")
    ap.add_argument("--json", action="store_true", help="print one JSON object: messages, poll_once_s, floor_s, "
                    "ratio, peak_rss_mib, replies_sent, idle_p50_s, idle_p95_s")
    args = ap.parse_args(argv)
    if not 1 <= args.messages <= 20000 or not 0 <= args.idle <= 200 or not 1 <= args.rows <= 5000:
        ap.error("--messages 1..20000, --idle 0..200, --rows 1..5000 (the run is meant to be bounded)")

    ms = common.mailservers()
    missing = ms.dovecot_missing()
    if missing:
        print(f"cannot run: {missing}", file=sys.stderr)
        return 2
    prefix = common.out_dir() / f"mailpath-{common.timestamp()}"
    scratch = Path(tempfile.mkdtemp(prefix="mailbot-bench-mailpath-"))
    report: dict = {"benchmark": "mailpath", "machine": common.machine(),
                    "parameters": {"messages": args.messages, "rows": args.rows, "bulk": args.bulk,
                                   "idle": args.idle, "spacing": args.spacing, "seed": args.seed}}
    dovecot = sink = None
    try:
        print(f"generating {args.messages} + {args.idle} message(s) ...", file=sys.stderr, flush=True)
        corpus = common.make_corpus(args.messages + args.idle, args.rows, seed=args.seed)
        waiting, probes = corpus.mails[:args.messages], corpus.mails[args.messages:]
        report["corpus"] = {**corpus.info, "workbooks_built": corpus.workbooks, "generation_s": round(corpus.seconds, 1),
                            "bytes_waiting": sum(len(m.raw) for m in waiting)}

        dovecot = ms.Dovecot(None)
        report["dovecot_start_s"] = round(dovecot.start(), 2)
        t = deliver_all(dovecot, USER, [m.raw for m in waiting])
        report["lmtp_delivery"] = {"messages": len(waiting), "seconds": round(t, 2),
                                   "messages_per_s": round(len(waiting) / t, 1)}
        print(f"  delivered {len(waiting)} over LMTP in {t:.1f} s", file=sys.stderr, flush=True)

        floors = []
        for _ in range(max(1, args.floor_runs)):
            floors.append(floor_imap_tools(dovecot, USER, args.bulk))
        fetch_only = min(floor_imap_tools(dovecot, USER, args.bulk, read_workbooks=False)[0]
                         for _ in range(max(1, args.floor_runs)))
        wires = [floor_wire(dovecot, USER) for _ in range(max(1, args.floor_runs))]
        seen = [uid for uid, flags in dovecot.flags(USER).items() if "\\Seen" in flags]
        if seen or any(f[1] != len(waiting) for f in floors + wires):
            raise RuntimeError(f"the floor changed or missed mail: {len(seen)} \\Seen, counts {[f[1] for f in floors + wires]}")
        best = min(f[0] for f in floors)
        wire = min(f[0] for f in wires)
        report["floor"] = {"imap_tools_s": round(best, 3), "imap_tools_runs_s": [round(f[0], 3) for f in floors],
                           "fetch_only_s": round(fetch_only, 3),
                           "imap_tools_messages_per_s": round(len(waiting) / best, 1),
                           "wire_s": round(wire, 3), "wire_runs_s": [round(f[0], 3) for f in wires],
                           "bytes": floors[0][2], "seen_after": 0}
        print(f"  floor: imap-tools {best:.2f} s, imaplib wire {wire:.2f} s", file=sys.stderr, flush=True)

        sink = Sink().start()
        poll = poll_run(args, scratch, dovecot, sink, waiting, prefix)
        poll["ratio_to_floor"] = round(poll["wall_s"] / best, 1)
        poll["ratio_to_wire_floor"] = round(poll["wall_s"] / wire, 1)
        report["poll"] = poll
        print(f"[poll] {poll['wall_s']} s = {poll['ratio_to_floor']} x the imap-tools floor; {poll['messages_per_s']} msg/s; "
              f"peak RSS {poll['peak_rss_mib']} MiB; {poll['summary_line']}", file=sys.stderr, flush=True)
        if args.profile:
            print(poll["profile"]["cumulative_mailbot"], file=sys.stderr, flush=True)

        if args.idle:
            floor_delays = idle_floor(dovecot, "xyjgk-idlefloor@cqscjg.example.cn", probes, min(args.spacing, 0.5))
            report["idle_floor"] = {"delays_s": [round(x, 3) for x in floor_delays],
                                    "median_s": round(statistics.median(floor_delays), 3),
                                    "max_s": round(max(floor_delays), 3)}
            print(f"  IDLE floor (delivery -> '* n EXISTS' to a bare client): median "
                  f"{report['idle_floor']['median_s']} s, max {report['idle_floor']['max_s']} s", file=sys.stderr, flush=True)
            idle = idle_run(args, scratch, dovecot, sink, probes, prefix)
            per_msg_poll = poll["wall_s"] / max(1, poll["messages"])
            if idle.get("delay_median_s") is not None:
                idle["ratio_median_delay_to_idle_floor"] = round(idle["delay_median_s"] / report["idle_floor"]["median_s"], 2)
                idle["ratio_median_delay_to_poll_seconds_per_message"] = round(idle["delay_median_s"] / per_msg_poll, 1)
                idle["ratio_median_delay_to_floor_seconds_per_message"] = round(idle["delay_median_s"] / (best / len(waiting)), 1)
            report["idle"] = idle
            print(f"[idle] delay median {idle.get('delay_median_s')} s, max {idle.get('delay_max_s')} s over "
                  f"{idle.get('receipts')}/{idle.get('messages')} receipts; peak RSS {idle['peak_rss_mib']} MiB",
                  file=sys.stderr, flush=True)
    finally:
        if sink is not None:
            sink.stop()
        if dovecot is not None:
            dovecot.close()
        if args.keep:
            print(f"kept {scratch}", file=sys.stderr)
        else:
            shutil.rmtree(scratch, ignore_errors=True)
        report["loadavg_at_end"] = list(os.getloadavg())
        path = prefix.with_suffix(".json")
        path.write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
        print(f"\nresults: {path}", file=sys.stderr)
    p, i = report.get("poll", {}), report.get("idle", {})
    if args.json:
        delays = sorted(d for d in (i.get("delays_s") or []) if d is not None)
        print(json.dumps({
            "messages": p.get("messages"), "poll_once_s": p.get("wall_s"), "floor_s": report["floor"]["imap_tools_s"],
            "ratio": p.get("ratio_to_floor"), "peak_rss_mib": p.get("peak_rss_mib"),
            "peak_tree_pss_mib": p.get("peak_tree_pss_mib"), "cpu_user_s": p.get("cpu_user_s"),
            "cpu_sys_s": p.get("cpu_sys_s"), "replies_sent": p.get("sent_at_sink"),
            "idle_p50_s": round(statistics.median(delays), 3) if delays else None,
            "idle_p95_s": delays[max(0, int(len(delays) * 0.95 + 0.5) - 1)] if delays else None,
            "fetch_only_floor_s": report["floor"]["fetch_only_s"], "loadavg_at_end": report["loadavg_at_end"]}))
        ok = p.get("returncode") == 0 and p.get("messages") == args.messages
        return 0 if ok else 1
    print(f"floor (imap-tools, bulk={args.bulk}) {report['floor']['imap_tools_s']} s; wire floor {report['floor']['wire_s']} s")
    print(f"poll --once {p.get('wall_s')} s for {p.get('messages')} msgs: {p.get('ratio_to_floor')} x floor; "
          f"peak RSS {p.get('peak_rss_mib')} MiB (all its processes: {p.get('peak_tree_pss_mib')} MiB PSS); sent {p.get('sent_at_sink')} of {p.get('replies_drafted')} drafted replies")
    if i:
        print(f"IDLE delivery->receipt: median {i.get('delay_median_s')} s, max {i.get('delay_max_s')} s "
              f"({i.get('receipts')}/{i.get('messages')}); daemon peak RSS {i.get('peak_rss_mib')} MiB")
    ok = p.get("returncode") == 0 and p.get("messages") == args.messages and (not i or i.get("receipts") == i.get("messages"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
