"""Large parts are read without copies of the whole message (issue 14), with the same results as before.

The parser splits the message into views of the raw bytes and decodes base64 window by window;
these tests pin that the windows change nothing: every boundary a window can fall on, every
oddity the whole-body decoder handled (stray characters, separately padded blocks, a body cut
mid-quantum, text that is not base64 at all).
"""
import base64
import binascii
import hashlib
import os
import random
import re

import pytest

from mailbot.intake import parse
from mailbot.intake.parse import parse_message


def whole_body_b64(body: bytes, notes: list[str]) -> bytes:
    """The decoder as it was before the windows (the reference the windowed one must equal)."""
    compact = b"".join(body.split())
    clean = re.sub(rb"[^A-Za-z0-9+/=]", b"", compact)
    if len(compact) - len(clean) > max(2, len(compact) // 50):
        notes.append(parse._B64_UNDECODED)
        return body
    out = []
    for chunk in re.findall(rb"[A-Za-z0-9+/]+=*", clean):
        core = chunk.rstrip(b"=")
        if len(core) % 4 == 1:
            core = core[:-1]
            notes.append("base64 body truncated mid-quantum")
        try:
            out.append(binascii.a2b_base64(core + b"=" * (-len(core) % 4)))
        except (binascii.Error, ValueError):
            notes.append(parse._B64_SKIPPED)
    return b"".join(out)


def lines(data: bytes, width: int = 76) -> bytes:
    s = base64.b64encode(data)
    return b"\r\n".join(s[i:i + width] for i in range(0, len(s), width))


BODIES = {
    "plain": lines(os.urandom(3000)),
    "unpadded-tail": lines(os.urandom(3001)).rstrip(b"="),
    "blocks": lines(b"first block") + b"\r\n" + lines(b"second block!") + b"\n" + lines(b"3rd"),
    "mid-quantum": lines(os.urandom(300)) + b"Q",
    "stray": lines(os.urandom(900)).replace(b"\r\n", b"*\r\n", 2),
    "not-base64": "这不是base64编码的内容，而是一段文字。".encode("utf-8") * 20,
    "padding-run": lines(b"ab") + b"=" * 40 + lines(b"cd"),
    "leading-padding": b"====" + lines(b"xyz"),
    "empty": b"",
    "spaces": b" \t\r\n\x0b\x0c" + lines(os.urandom(50)) + b" \t",
}


@pytest.mark.parametrize("window", [1, 2, 3, 4, 5, 7, 64, 1 << 20])
@pytest.mark.parametrize("name", sorted(BODIES))
def test_windowed_base64_equals_the_whole_body_decoder(monkeypatch, name, window):
    monkeypatch.setattr(parse, "_B64_WINDOW", window)
    body = BODIES[name]
    want_notes, got_notes = [], []
    want = whole_body_b64(body, want_notes)
    got = parse._b64(memoryview(body), got_notes)
    assert (got, got_notes) == (want, want_notes)
    assert type(got) is bytes


def test_windowed_base64_on_random_mixtures(monkeypatch):
    rng = random.Random(14)
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=== \r\n*-"
    for _ in range(300):
        monkeypatch.setattr(parse, "_B64_WINDOW", rng.randint(1, 40))
        body = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 200)))
        want_notes, got_notes = [], []
        assert parse._b64(body, got_notes) == whole_body_b64(body, want_notes)
        assert got_notes == want_notes


def _mail(data: bytes, name: str = "现场照片.pdf") -> bytes:
    from email.message import EmailMessage
    m = EmailMessage()
    m["From"] = "宣传科 <xuanchuan@cqscjg.example.cn>"
    m["To"] = "xyjgk@cqscjg.example.cn"
    m["Subject"] = "照片"
    m["Message-ID"] = "<big@example.cn>"
    m.set_content("见附件。\n")
    m.add_attachment(data, maintype="application", subtype="pdf", filename=name)
    return m.as_bytes()


def test_a_large_attachment_is_read_byte_identical(monkeypatch):
    monkeypatch.setattr(parse, "_B64_WINDOW", 4099)      # many windows, boundaries mid-line
    data = b"%PDF-1.4\n" + os.urandom(3 << 20)
    incoming = parse_message(_mail(data))
    [att] = incoming.attachments
    assert hashlib.sha256(att.content).hexdigest() == hashlib.sha256(data).hexdigest()
    assert att.content == data and att.notes == () and att.problems == ()
    assert incoming.text.strip() == "见附件。"


def test_a_forwarded_message_sent_as_it_is_keeps_its_files():
    inner = _mail(b"%PDF-1.4\n" + bytes(range(256)) * 40, "内层.pdf")
    raw = (b"From: xuanchuan@cqscjg.example.cn\r\nSubject: Fw\r\nMIME-Version: 1.0\r\n"
           b'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\n'
           b"fw\r\n--b1\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
           + inner + b"\r\n--b1--\r\n")
    [att] = parse_message(raw).attachments
    assert att.filename == "内层.pdf" and att.content == b"%PDF-1.4\n" + bytes(range(256)) * 40
    assert att.origin == ("转发邮件'照片'",)


# ---------------------------------------------------------------- a large workbook: read from a private file

from pathlib import Path  # noqa: E402

from mailbot.intake import workbook  # noqa: E402
from mailbot.intake.filetype import sniff  # noqa: E402
from mailbot.intake.workbook import WorkbookError, read_workbook  # noqa: E402

WB = Path(__file__).resolve().parent / "data" / "workbooks"


def _read(name: str):
    content = (WB / name).read_bytes()
    return read_workbook(content, sniff(content, name)[0], name=name)


def _verdict(name: str):
    try:
        return _read(name)
    except WorkbookError as e:
        return e.problem


# every workbook fixture, the bombs and oddities among them: each read the same from a file as from memory
WORKBOOKS = sorted(p.name for p in WB.iterdir() if p.suffix in (".xlsx", ".xls", ".ods", ".xlsm"))


@pytest.mark.parametrize("name", WORKBOOKS)
def test_a_workbook_read_from_its_private_file_reads_as_from_memory(name, monkeypatch, tmp_path):
    in_memory = _verdict(name)
    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setattr(workbook, "SPOOL_OVER", 0)
    monkeypatch.setattr(workbook.tempfile, "tempdir", str(spool))
    assert _verdict(name) == in_memory
    assert list(spool.iterdir()) == []           # the private copy is gone, whatever the verdict


def test_the_private_file_is_removed_when_a_sheet_breaks(monkeypatch, tmp_path):
    """0600 when calamine opens it, and its name gone as soon as calamine holds it open: no copy
    of a ledger outlives the process, even one ended by os._exit or SIGKILL while it reads."""
    import types
    seen, real = [], workbook.python_calamine

    def from_path(path):
        seen.append((Path(path).suffix, Path(path).stat().st_mode & 0o777))
        return real.CalamineWorkbook.from_path(path)

    def broken(book, name, limits):
        seen.append(sorted(tmp_path.iterdir()))
        raise workbook._broken("test", f"工作表'{name}'已损坏")
    calamine = types.SimpleNamespace(CalamineWorkbook=types.SimpleNamespace(
        from_path=from_path, from_filelike=real.CalamineWorkbook.from_filelike),
        PasswordError=real.PasswordError, SheetTypeEnum=real.SheetTypeEnum)
    monkeypatch.setattr(workbook, "python_calamine", calamine)
    monkeypatch.setattr(workbook, "SPOOL_OVER", 0)
    monkeypatch.setattr(workbook.tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(workbook, "_read_sheet", broken)
    with pytest.raises(WorkbookError):
        _read("sgs_valid.xlsx")
    assert seen[0] == (".xlsx", 0o600)
    assert seen[1] == [], "the file's name was still there while its sheets were read"
    assert list(tmp_path.iterdir()) == []


def test_a_small_workbook_is_read_from_memory(monkeypatch, tmp_path):
    monkeypatch.setattr(workbook.tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(workbook.tempfile, "mkstemp", lambda *a, **k: pytest.fail("no file for a small workbook"))
    assert _read("sgs_valid.xlsx").tables


# ---------------------------------------------------------------- end to end: stored as received

def test_a_large_attachment_is_stored_byte_identical(tmp_path, capsys, monkeypatch):
    import json
    from mailbot.app import cli
    from mailbot.app.config import load_config
    from mailbot.store import Store
    monkeypatch.setattr(parse, "_B64_WINDOW", 65537)
    data = b"%PDF-1.4\n" + os.urandom(2 << 20) + b"\n%%EOF\n"
    root = Path(__file__).resolve().parents[1]
    text = (root / "config.example.yaml").read_text(encoding="utf-8")
    text = text.replace("storage: storage", f"storage: {tmp_path / 'storage'}")
    config = tmp_path / "config.yaml"
    config.write_text(text.replace("# rules: rules", f"rules: {root / 'rules'}"), encoding="utf-8")
    mail = tmp_path / "big.eml"
    mail.write_bytes(_mail(data, "诚信宣传活动现场照片及说明.pdf"))
    capsys.readouterr()
    assert cli.main(["--config", str(config), "ingest", "--json", "--received", "2026-11-20T10:00:00+08:00",
                     str(mail)]) == 0
    [item] = json.loads(capsys.readouterr().out)["items"]
    sha = hashlib.sha256(data).hexdigest()
    c = load_config(config)
    with Store(c.database, c.storage) as st:
        assert st.read_file(sha) == data
        [sub] = [s for s in st.submissions(section="宣传科") if s.filename == item["filename"]]
        assert sub.sha256 == sha


def test_a_workbook_is_read_from_memory_where_its_private_file_cannot_be_written(monkeypatch, tmp_path):
    monkeypatch.setattr(workbook, "SPOOL_OVER", 0)
    monkeypatch.setattr(workbook.tempfile, "tempdir", str(tmp_path / "missing"))
    assert _read("sgs_valid.xlsx").tables == read_workbook((WB / "sgs_valid.xlsx").read_bytes(), sniff(
        (WB / "sgs_valid.xlsx").read_bytes(), "sgs_valid.xlsx")[0]).tables
