#!/usr/bin/env python3
"""One message with a large attachment through `mailbot ingest` (issue 14): peak RSS above a
one-small-message run, against the target of 3 × the attachment's size.

    .venv/bin/python benchmarks/bigfile.py [--mib 25] [--json]

The attachment is a PDF of --mib MiB whose content is incompressible (random bytes in a stream),
sent by a registered section as 现场照片及说明.pdf — the kind a section attaches beside its
ledger. The baseline is the same command on a message with a 10 KB PDF. Each run uses a fresh
SQLite store in a scratch folder; peak RSS from GNU time (common.run_measured).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

import datetime as dt  # noqa: E402


def pdf(size: int, seed: int = 1) -> bytes:
    """A well-formed PDF of about `size` bytes whose one stream is random bytes."""
    body = os.urandom(max(0, size - 400)) if seed else b""
    head = b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
    stream = b"3 0 obj<</Length %d>>stream\n" % len(body) + body + b"\nendstream endobj\n"
    return head + stream + b"trailer<</Root 1 0 R>>\n%%EOF\n"


def message(data: bytes) -> bytes:
    m = EmailMessage()
    m["From"] = "宣传科 <xuanchuan@cqscjg.example.cn>"
    m["To"] = common.MAILBOX
    m["Subject"] = "宣传科2026年11月诚信宣传活动照片及说明"
    m["Date"] = format_datetime(dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))))
    m["Message-ID"] = make_msgid(domain=common.DOMAIN)
    m.set_content("信用监管科：\n\n    我科11月诚信宣传活动的照片及说明见附件。\n", charset="utf-8")
    m.add_attachment(data, maintype="application", subtype="pdf", filename="现场照片及说明.pdf")
    return m.as_bytes()


def run(scratch: Path, name: str, raw: bytes) -> common.Measured:
    folder = scratch / name
    folder.mkdir()
    eml = folder / "mail.eml"
    eml.write_bytes(raw)
    cfg = common.write_config(folder / "config.yaml", folder / "storage")
    with open(folder / "out.jsonl", "wb") as out, open(folder / "err.txt", "wb") as err:
        return common.run_measured([common.MAILBOT, "--config", str(cfg), "ingest", "--json",
                                    "--received", "2026-11-20T10:00:00+08:00", str(eml)], stdout=out, stderr=err)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mib", type=float, default=25.0, help="the large attachment's size in MiB (default 25)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    if not 0.1 <= args.mib <= 200:
        ap.error("--mib 0.1..200")
    scratch = Path(tempfile.mkdtemp(prefix="mailbot-bench-bigfile-"))
    try:
        size = int(args.mib * 1024 * 1024)
        small = run(scratch, "small", message(pdf(10_000)))
        large = run(scratch, "large", message(pdf(size)))
        outcome = json.loads((scratch / "large" / "out.jsonl").read_text(encoding="utf-8").splitlines()[0])["outcome"]
        above = (large.maxrss_kb - small.maxrss_kb) / 1024
        report = {"attachment_mib": round(size / 2**20, 1), "baseline_peak_rss_mib": round(small.maxrss_kb / 1024, 1),
                  "peak_rss_mib": round(large.maxrss_kb / 1024, 1), "above_baseline_mib": round(above, 1),
                  "times_attachment": round(above / (size / 2**20), 2), "target_times": 3.0,
                  "outcome": outcome, "wall_s": round(large.wall, 2), "machine": common.machine()}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    path = common.out_dir() / f"bigfile-{common.timestamp()}.json"
    path.write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    if args.json:
        print(json.dumps({k: v for k, v in report.items() if k != "machine"}))
    else:
        print(f"{report['attachment_mib']} MiB PDF: peak RSS {report['peak_rss_mib']} MiB, "
              f"{report['above_baseline_mib']} MiB above a small message's {report['baseline_peak_rss_mib']} MiB "
              f"= {report['times_attachment']} x the attachment (target <= 3); outcome {outcome}; results {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
