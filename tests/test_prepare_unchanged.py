"""pipeline.prepare() gives, message for message, what it gave before the intake was made faster.

Every message's Prepared (the Incoming parse_message made and the Verdict decide() reached, with
every problem, its Chinese sentence and cell, and the ledger rows kept) is reduced to a digest of
its repr and compared with tests/data/prepare_expected.json, written by the code before the
speed work (`python tests/test_prepare_unchanged.py --write` writes it anew, for a change of
rules or wording meant to change results). The messages:

- the benchmarks' mail (benchmarks/common.py make_corpus: each section's Annex 1 workbook, a
  share with one wrong credit code or date), in both layouts;
- the same workbooks with cells replaced by what clerks really type: dates in every written
  form and some impossible ones, numbers with units or thousands separators, credit codes
  lower-case, spaced, full-width, cut short or with a wrong check character, 无 and / in typed
  cells, footers and 小计 lines, whitespace-only cells, booleans, times…;
- every case and fixture of tests/data, and every message of ../shared/corpus as it is and as
  if a registered section had sent it (so its files go through classify and validate too).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import random
import re
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

EXPECTED = Path(__file__).resolve().parent / "data" / "prepare_expected.json"
CORPUS = ROOT.parent / "shared" / "corpus"
NOV = dt.datetime.fromisoformat("2026-11-20T10:00:00+08:00")
_NOT_MAIL = ("LICENSE", "README", "NOTICE", "COPYING", "MANIFEST.tsv")
_DATE = re.compile(rb"^Date: (.*)$", re.M)


def _intake():
    import yaml

    from mailbot.app.config import config_from_mapping
    from mailbot.app.wiring import build
    path = ROOT / "config.example.yaml"
    config = config_from_mapping(yaml.safe_load(path.read_text(encoding="utf-8")), str(path), ROOT)
    return build(config, ROOT / "rules").intake


def digest(prepared) -> str:
    """The whole Prepared but its sha256 and calendar generation, as one digest of its repr."""
    h = hashlib.sha256()
    h.update(repr(prepared.incoming).encode("utf-8", "surrogatepass"))
    h.update(repr(prepared.verdict).encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def outline(prepared) -> str:
    """What a person compares first when a digest differs: outcome and the items' problem codes."""
    v = prepared.verdict
    items = "; ".join(f"{i.task}:{i.status}:{','.join(sorted({p.code for p in i.problems}))}" for i in v.items)
    return f"{v.outcome.value} [{items}]"


# ---------------------------------------------------------------- the messages

def _received(raw: bytes) -> dt.datetime:
    import email.utils
    m = _DATE.search(raw)
    return email.utils.parsedate_to_datetime(m.group(1).decode().strip()) if m else NOV


_STAMPS = re.compile(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*(</dcterms:)")


def deterministic(xlsx: bytes) -> bytes:
    """The workbook openpyxl wrote without the moment it wrote it (core.xml's dates, the zip's
    member times), so that the same seed gives the same bytes on every run."""
    src = zipfile.ZipFile(io.BytesIO(xlsx))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "docProps/core.xml":
                data = _STAMPS.sub(rb"\g<1>2026-01-01T00:00:00Z\g<2>", data)
            dst.writestr(zipfile.ZipInfo(info.filename, (2026, 1, 1, 0, 0, 0)), data, zipfile.ZIP_DEFLATED)
    return buf.getvalue()


_original_build = None


def _build_workbook(*args, **kwargs):
    from dataclasses import replace
    book = _original_build(*args, **kwargs)
    return replace(book, data=deterministic(book.data))


class _Seeded:
    """The random module seeded for a while (the email package draws MIME boundaries from it)."""

    def __init__(self, seed: int):
        self.seed = seed

    def __enter__(self):
        self.state = random.getstate()
        random.seed(self.seed)

    def __exit__(self, *exc):
        random.setstate(self.state)


def generated_messages() -> list[tuple[str, bytes, dt.datetime]]:
    import common
    global _original_build
    _original_build, common.build_workbook = common.build_workbook, _build_workbook
    try:
        with _Seeded(7):
            corpus = common.make_corpus(36, 24, seed=7, bad_share=0.3, resend_share=0.05, progress=False)
    finally:
        common.build_workbook = _original_build
    return [(f"generated/{m.number:03d}", m.raw, _received(m.raw)) for m in corpus.mails]


# what clerks type, by column type (and for any column)
_ANY = [None, "", "   ", "\u3000", "\xa0 \u200b", "无", "/", "－", "——", "不适用", "N/A", "null", "空", True, False,
        0, -1, 3.5, 1e16, "合计", "小计", "备注：见附件", "填表人：张伟", "  文字  ", "ＡＢＣ（１）"]
_BY_TYPE = {
    "date": ["2026-11-03", "2026/11/3", "2026.11.03", " 2026 - 11 - 03 ", "2026年11月3日", "2026年11月3号",
             "2026年 11月 3日 10:30", "20261103", 20261103, 46000, 46000.75, 60, 1.5, "2026-13-01", "2026-02-30",
             "1900-01-01", "2101-01-01", "２０２６－１１－０３", "2026-11-03T08:00:00", "2026-11-03 8:00",
             dt.datetime(2026, 11, 3, 10, 0), dt.datetime(2026, 10, 1), dt.date(2026, 10, 9), dt.time(10, 30),
             "2026/11", "昨天", "2026-1-5", "2026.1.32", 19991231, 21010101],
    "number": ["1,234.5", "12万", "2000元", "3.5万元", "１２", "-5", "+7", ".5", "5.", "1.0", "1e3", "abc", " 3 ",
               "1,23", 0.1, 12, -0.0, float("inf"), "1 000", "0.50"],
    "integer": ["12", "12.0", "12.5", "-3", "0", "１２", "1,200", 7.0, 7.25, "七", 0, 401],
    "credit_code": ["91370113MA3C4XYZ0", "９１３７０１１３ＭＡ３Ｃ４ＸＹＺ０", "91370113ma3c4xyz0", "9137 0113 MA3C 4XYZ 0",
                    "913701130000000000", 913701130000000000.0, 91370113000000000, "12345", "",
                    "91370113MA3C4XYO0", "9137011300000000I0", "-", "无"],
    "phone": ["0531-87221318", "13853117620", "0531 8722 1318转123", "+86 138 5311 7620", "12345",
              "0531-87221318/13853117620", "(0531)87221318", "8613853117620", "电话", 13853117620, "0531-8722131８"],
    "enum": [" 法人及非法人组织 ", "个体 工商户", "自然人（个人）", "ＸＸ", "行政处罚", "行政许可 ", "普通", "未知"],
    "text": ["  带空格的文字 ", "行\n换行", "\ufeff零宽"],
}


def _tricky(rng: random.Random, col) -> object:
    pool = _BY_TYPE.get(col.type, _BY_TYPE["text"])
    if col.type == "enum" and col.choices and rng.random() < 0.5:
        c = rng.choice(col.choices)
        return rng.choice([c, f" {c} ", c.replace("（", "(").replace("）", ")"), c + "　", c.upper()])
    return rng.choice(pool if rng.random() < 0.7 else _ANY)


def fuzzed_messages() -> list[tuple[str, bytes, dt.datetime]]:
    """The benchmark's workbooks with a share of their ledger cells replaced by what clerks type."""
    import common
    import openpyxl
    from mailbot.duties.templates import HEADER_ROW
    rules, _cal = common.rules_and_calendar()
    out = []
    sections = list(common.SECTIONS)
    for k in range(24):
        rng = random.Random(1000 + k)
        section = sections[k % len(sections)]
        period = common.PERIODS[k % len(common.PERIODS)]
        book = common.build_workbook(section, period, 12, seed=rng.randrange(2**32))      # dates: saved again below
        wb = openpyxl.load_workbook(io.BytesIO(book.data))
        share = (0.05, 0.2, 0.5)[k % 3]
        for ws in wb.worksheets:
            spec = rules.sheet(ws.title)
            if spec is None:
                continue
            headers = {ws.cell(HEADER_ROW, c).value: c for c in range(1, ws.max_column + 1)}
            for r in range(HEADER_ROW + 1, ws.max_row + 3):
                for col in spec.columns:
                    if col.name in headers and rng.random() < share:
                        ws.cell(r, headers[col.name]).value = _tricky(rng, col)
        buf = io.BytesIO()
        wb.save(buf)
        address = common.SECTIONS[section][2][0][0]
        when = dt.datetime(2026, 11, 5 + k % 10, 9, 30, tzinfo=common.CST)
        with _Seeded(k):
            raw = common.python_layout(sender=address, realname=section, subject=f"{section}信用监测报送材料",
                                       body="请查收。", filename=f"{section}{period}信用监测报送材料.xlsx",
                                       data=deterministic(buf.getvalue()), when=when, message_id=f"<fuzz{k}@example.cn>")
        out.append((f"fuzzed/{k:03d}", raw, when))
    return out


def fixture_messages() -> list[tuple[str, bytes, dt.datetime]]:
    data = Path(__file__).resolve().parent / "data"
    files = sorted((data / "cases").glob("*.eml")) + sorted((data / "mail").glob("*.eml")) \
        + sorted((ROOT / "examples").rglob("*.eml"))
    return [(str(p.relative_to(ROOT)), p.read_bytes(), NOV) for p in files]


def _as_registered(raw: bytes) -> bytes:
    """The message as if 政策法规科's registered address had sent it: its From header(s) replaced."""
    head, sep, body = raw.partition(b"\r\n\r\n") if b"\r\n\r\n" in raw else raw.partition(b"\n\n")
    eol = b"\r\n" if sep == b"\r\n\r\n" else b"\n"
    lines = head.split(eol)
    kept, skipping = [], False
    for line in lines:
        if line[:1] in (b" ", b"\t") and skipping:
            continue
        skipping = line.lower().startswith(b"from:")
        if not skipping:
            kept.append(line)
    return eol.join([b"From: fagui@cqscjg.example.cn", *kept]) + sep + body


def corpus_messages() -> list[tuple[str, bytes, dt.datetime]]:
    if not CORPUS.is_dir():
        return []
    out = []
    for p in sorted(p for p in CORPUS.rglob("*") if p.is_file() and not p.name.startswith(_NOT_MAIL)):
        raw = p.read_bytes()
        rel = str(p.relative_to(CORPUS))
        out.append((f"corpus/{rel}", raw, NOV))
        out.append((f"corpus-registered/{rel}", _as_registered(raw), NOV))
    return out


def prepared_outlines(messages, intake) -> dict[str, dict[str, str]]:
    from mailbot import pipeline
    return {name: {"digest": digest(p), "outline": outline(p)}
            for name, raw, when in messages
            for p in [pipeline.prepare(raw, intake, when)]}


# ---------------------------------------------------------------- the tests

@pytest.fixture(scope="module")
def intake():
    return _intake()


@pytest.fixture(scope="module")
def expected() -> dict[str, dict[str, str]]:
    return json.loads(EXPECTED.read_text(encoding="utf-8"))


def _compare(messages, intake, expected) -> None:
    got = prepared_outlines(messages, intake)
    missing = [n for n in got if n not in expected]
    assert not missing, f"no expectation recorded for {missing[:5]}"
    differ = {n: (expected[n]["outline"], g["outline"]) for n, g in got.items() if g["digest"] != expected[n]["digest"]}
    assert not differ, f"{len(differ)} message(s) prepared differently (expected, got): {dict(list(differ.items())[:5])}"


def test_benchmark_mail_is_prepared_as_before(intake, expected):
    _compare(generated_messages(), intake, expected)


def test_mistyped_ledgers_are_prepared_as_before(intake, expected):
    _compare(fuzzed_messages(), intake, expected)


def test_test_fixtures_are_prepared_as_before(intake, expected):
    _compare(fixture_messages(), intake, expected)


def test_corpus_is_prepared_as_before(shared_dir, intake, expected):
    messages = corpus_messages()
    assert len(messages) >= 2 * 190
    _compare(messages, intake, expected)


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/test_prepare_unchanged.py --write   (records the current results)")
    sys.path.insert(0, str(ROOT))
    everything = generated_messages() + fuzzed_messages() + fixture_messages() + corpus_messages()
    result = prepared_outlines(everything, _intake())
    EXPECTED.write_text(json.dumps(result, ensure_ascii=False, indent=0, sort_keys=True) + "\n", encoding="utf-8")
    print(f"{len(result)} messages recorded in {EXPECTED}")
