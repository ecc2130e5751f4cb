#!/usr/bin/env python3
"""One message with a large attachment through `mailbot ingest` (issue 14): peak RSS above a
one-small-message run, against the target of 3 × the attachment's size.

    .venv/bin/python benchmarks/bigfile.py [--mib 25] [--json]

Two cases in one run, each against its own small baseline:

- pdf: a PDF of --mib MiB whose content is incompressible (random bytes in a stream), sent by a
  registered section as 现场照片及说明.pdf — the kind a section attaches beside its ledger; the
  baseline is the same message with a 10 KB PDF.
- xlsx: 政策法规科's Annex 1 workbook for 2026-11 (common.build_workbook: a 200-row 双公示台账,
  the other ledgers as a clerk fills them) with a photo of the 现场检查 pasted into the
  双公示台账 (an xl/drawings picture), the photo's size chosen so that the .xlsx file is --mib
  MiB. That is how a section's workbook gets that large: a photo does not compress, so the file
  is about as large inside the zip as outside, and the whole workbook is still read and every
  row checked. (A ledger that large would be ~200 MiB of sheet XML, over a million rows: the
  zip guard refuses it, with the reason told to the sender, before anything is read.) The
  baseline is the same workbook without the photo.

Each run uses a fresh SQLite store in a scratch folder; peak RSS from GNU time
(common.run_measured). The top-level keys of --json are the pdf case's (as before the xlsx case
was added); `cases` holds both.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
import tempfile
import zipfile
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


def workbook(size: int | None, seed: int = 1) -> bytes:
    """政策法规科's filled Annex 1 workbook; with `size`, a photo pasted into its 双公示台账 making
    the file `size` bytes (within a few KB)."""
    book = common.build_workbook("政策法规科", "2026-11", 200, seed)
    if size is None:
        return book.data
    photo = _jpeg(max(0, size - len(book.data)))
    return _with_picture(book.data, book.member, photo)


def _jpeg(size: int) -> bytes:
    # what calamine and the zip guard see of a photo: JPEG markers around incompressible bytes
    return b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + os.urandom(max(0, size - 22)) + b"\xff\xd9"


_DRAWING = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<xdr:wsDr xmlns:xdr="http://schemas.openxmlformats.org/drawingml/2006/spreadsheetDrawing" '
            'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" '
            'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
            '<xdr:oneCellAnchor><xdr:from><xdr:col>16</xdr:col><xdr:colOff>0</xdr:colOff><xdr:row>3</xdr:row>'
            '<xdr:rowOff>0</xdr:rowOff></xdr:from><xdr:ext cx="4572000" cy="3429000"/>'
            '<xdr:pic><xdr:nvPicPr><xdr:cNvPr id="2" name="现场检查照片"/><xdr:cNvPicPr/></xdr:nvPicPr>'
            '<xdr:blipFill><a:blip r:embed="rId1"/><a:stretch><a:fillRect/></a:stretch></xdr:blipFill>'
            '<xdr:spPr><a:prstGeom prst="rect"><a:avLst/></a:prstGeom></xdr:spPr></xdr:pic><xdr:clientData/>'
            '</xdr:oneCellAnchor></xdr:wsDr>').encode()
_DRAWING_RELS = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                 '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                 '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/image" '
                 'Target="../media/image1.jpeg"/></Relationships>').encode()


def _with_picture(data: bytes, sheet: str, photo: bytes) -> bytes:
    """The workbook with `photo` anchored in `sheet` as Excel and WPS save a pasted picture."""
    src = zipfile.ZipFile(io.BytesIO(data))
    rels = sheet.replace("worksheets/", "worksheets/_rels/") + ".rels"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            part = src.read(info)
            if info.filename == sheet:
                part = part.replace(b"<legacyDrawing", b'<drawing xmlns:r="http://schemas.openxmlformats.org/'
                                    b'officeDocument/2006/relationships" r:id="rIdPhoto1" /><legacyDrawing', 1)
            elif info.filename == rels:
                part = part.replace(b"</Relationships>", b'<Relationship Id="rIdPhoto1" Type="http://schemas.'
                                    b'openxmlformats.org/officeDocument/2006/relationships/drawing" '
                                    b'Target="/xl/drawings/drawing1.xml" /></Relationships>')
            elif info.filename == "[Content_Types].xml":
                part = part.replace(b"<Override ", b'<Default Extension="jpeg" ContentType="image/jpeg" />'
                                    b'<Override PartName="/xl/drawings/drawing1.xml" ContentType="application/'
                                    b'vnd.openxmlformats-officedocument.drawing+xml" /><Override ', 1)
            dst.writestr(info, part)
        dst.writestr("xl/drawings/drawing1.xml", _DRAWING)
        dst.writestr("xl/drawings/_rels/drawing1.xml.rels", _DRAWING_RELS)
        dst.writestr("xl/media/image1.jpeg", photo)
    return buf.getvalue()


def _mail(sender: str, subject: str, body: str, day: dt.date, data: bytes, mime: str, filename: str) -> bytes:
    m = EmailMessage()
    m["From"] = sender
    m["To"] = common.MAILBOX
    m["Subject"] = subject
    m["Date"] = format_datetime(dt.datetime(day.year, day.month, day.day, 10, 0,
                                            tzinfo=dt.timezone(dt.timedelta(hours=8))))
    m["Message-ID"] = make_msgid(domain=common.DOMAIN)
    m.set_content(f"信用监管科：\n\n    {body}\n", charset="utf-8")
    maintype, subtype = mime.split("/")
    m.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return m.as_bytes()


def message(data: bytes) -> bytes:
    return _mail("宣传科 <xuanchuan@cqscjg.example.cn>", "宣传科2026年11月诚信宣传活动照片及说明",
                 "我科11月诚信宣传活动的照片及说明见附件。", dt.date(2026, 11, 20), data, "application/pdf",
                 "现场照片及说明.pdf")


def ledger_message(data: bytes) -> bytes:
    return _mail("政策法规科 <fagui@cqscjg.example.cn>", "政策法规科2026年11月双公示台账",
                 "我科11月双公示台账见附件，现场检查照片已贴在台账中。", dt.date(2026, 12, 3), data, common.XLSX,
                 "政策法规科2026年11月双公示台账.xlsx")


def run(scratch: Path, name: str, raw: bytes, received: str) -> tuple[common.Measured, dict]:
    """`mailbot ingest --json` of one message on a fresh store: measured, and its JSON line."""
    folder = scratch / name
    folder.mkdir()
    eml = folder / "mail.eml"
    eml.write_bytes(raw)
    del raw
    cfg = common.write_config(folder / "config.yaml", folder / "storage")
    with open(folder / "out.jsonl", "wb") as out, open(folder / "err.txt", "wb") as err:
        measured = common.run_measured([common.MAILBOT, "--config", str(cfg), "ingest", "--json",
                                        "--received", received, str(eml)], stdout=out, stderr=err)
    lines = (folder / "out.jsonl").read_text(encoding="utf-8").splitlines()
    if measured.returncode != 0 or not lines:
        raise SystemExit(f"{name}: ingest failed ({measured.returncode}): "
                         + (folder / "err.txt").read_text(encoding="utf-8", errors="replace")[-2000:])
    return measured, json.loads(lines[0])


def case(scratch: Path, name: str, small: bytes, large: bytes, attachment: int, received: str) -> dict:
    """One case: the small message's run, then the large one's; peak RSS above the small one's."""
    base, _ = run(scratch, f"{name}-small", small, received)
    big, result = run(scratch, f"{name}-large", large, received)
    above = (big.maxrss_kb - base.maxrss_kb) / 1024
    return {"attachment_mib": round(attachment / 2**20, 1), "baseline_peak_rss_mib": round(base.maxrss_kb / 1024, 1),
            "peak_rss_mib": round(big.maxrss_kb / 1024, 1), "above_baseline_mib": round(above, 1),
            "times_attachment": round(above / (attachment / 2**20), 2), "target_times": 3.0,
            "outcome": result["outcome"], "statuses": [i["status"] for i in result.get("items", [])],
            "rows": sum(i.get("rows") or 0 for i in result.get("items", [])), "wall_s": round(big.wall, 2)}


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
        pdf_case = case(scratch, "pdf", message(pdf(10_000)), message(pdf(size)), size, "2026-11-20T10:00:00+08:00")
        book = workbook(size)
        xlsx_case = case(scratch, "xlsx", ledger_message(workbook(None)), ledger_message(book), len(book),
                         "2026-12-03T10:00:00+08:00")
        del book
        pdf_keys = ("attachment_mib", "baseline_peak_rss_mib", "peak_rss_mib", "above_baseline_mib",
                    "times_attachment", "target_times", "outcome", "wall_s")
        report = {**{k: pdf_case[k] for k in pdf_keys}, "cases": {"pdf": pdf_case, "xlsx": xlsx_case},
                  "machine": common.machine()}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    path = common.out_dir() / f"bigfile-{common.timestamp()}.json"
    path.write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    if args.json:
        print(json.dumps({k: v for k, v in report.items() if k != "machine"}))
    else:
        for name, c in report["cases"].items():
            print(f"{c['attachment_mib']} MiB {name}: peak RSS {c['peak_rss_mib']} MiB, "
                  f"{c['above_baseline_mib']} MiB above a small message's {c['baseline_peak_rss_mib']} MiB "
                  f"= {c['times_attachment']} x the attachment (target <= 3); outcome {c['outcome']} "
                  f"{c['statuses']}, {c['rows']} rows")
        print(f"results {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
