"""Robustness: every limit that stops a file being read is told, every letter can be written, every
refusal names its real cause; and seeded mutations of real mail never crash the intake. Pure:
parse_message + decide() + the reply drafting, no database."""
from __future__ import annotations

import base64
import datetime as dt
import os
import re
from email import message_from_bytes, policy

import pytest

import fuzz
from conftest import ROOT, SHARED, need
from mailbot.intake import parse as parse_module
from mailbot.intake.parse import parse_message
from mailbot.model import Outcome
from mailbot.pipeline import decide
from mailbot.writing.common import make_message, safe_header
from mailbot.writing.receipt import draft_reply

NOV = dt.datetime.fromisoformat("2026-11-20T10:00:00+08:00")
SENDER = "fagui@cqscjg.example.cn"
FUZZ_COUNT = int(os.environ.get("MAILBOT_FUZZ_COUNT", "300"))


@pytest.fixture(scope="module")
def intake():
    return fuzz.load_intake()


def _mail(parts: list[tuple[str, bytes, str]], subject: str = "政策法规科2026年11月报送材料",
          sender: str = SENDER) -> bytes:
    """A message with (file name, body as written, Content-Transfer-Encoding) parts."""
    head = (f"From: {sender}\r\nTo: xyjgk@cqscjg.example.cn\r\n"
            f"Subject: =?utf-8?B?{base64.b64encode(subject.encode()).decode()}?=\r\n"
            "Message-ID: <robust@fagui>\r\nDate: Fri, 20 Nov 2026 09:00:00 +0800\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/mixed; boundary="BB"\r\n\r\n'
            "--BB\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n请查收。\r\n").encode()
    body = b"".join(
        b"--BB\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename*=utf-8''"
        + "".join(f"%{b:02X}" for b in name.encode()).encode() + b"\r\nContent-Transfer-Encoding: "
        + cte.encode() + b"\r\n\r\n" + data + b"\r\n" for name, data, cte in parts)
    return head + body + b"--BB--\r\n"


def _letter(verdict, incoming, intake):
    return draft_reply(verdict=verdict, incoming=incoming, receipt_no="XY-202611-0001", rules=intake.rules,
                       mailbox_address=intake.mailbox_address, mailbox_name=intake.mailbox_name,
                       received_at=NOV, now=NOV)


def _letter_text(letter) -> str:
    return message_from_bytes(letter.raw, policy=policy.default).get_body(("plain",)).get_content()


# ---------------------------------------------------------------- 5. no limit drops a file in silence

def test_files_over_the_attachment_limit_are_named_in_the_letter_and_the_record(intake):
    photo = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    raw = _mail([(f"任务7 宣传照片{n:03d}.png", photo, "base64") for n in range(600)])
    incoming = parse_message(raw, limits=intake.rules.limits)
    assert len(incoming.attachments) == 500
    verdict = decide(incoming, intake, NOV)
    [p] = [p for p in verdict.problems if p.code == "too-many-files"]
    assert "500个" in p.message and "以下100个文件未予处理" in p.message
    for n in range(500, 600):       # exactly the hundred not read, and none of the others
        assert f"'任务7 宣传照片{n:03d}.png'" in p.message
    assert "宣传照片499.png" not in p.message
    assert verdict.outcome is not Outcome.ACCEPTED
    text = _letter_text(_letter(verdict, incoming, intake))
    assert "以下100个文件未予处理" in text and "'任务7 宣传照片599.png'" in text


def test_a_mime_structure_over_its_bounds_is_told(intake, monkeypatch):
    monkeypatch.setattr(parse_module, "_MAX_ENTITIES", 3)
    inner = (b'Content-Type: multipart/mixed; boundary="CC"\r\n\r\n--CC\r\nContent-Type: application/pdf\r\n'
             b'Content-Disposition: attachment; filename="hidden.pdf"\r\n\r\n%PDF-1.4\r\n--CC--\r\n')
    raw = _mail([("任务7 照片.png", base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 64), "base64")])
    raw = raw.replace(b"--BB--\r\n", b"--BB\r\n" + inner + b"--BB--\r\n")
    incoming = parse_message(raw, limits=intake.rules.limits)
    verdict = decide(incoming, intake, NOV)
    [p] = [p for p in verdict.problems if p.code == "mime-too-complex"]
    assert "3个组成部分" in p.message and "未予处理" in p.message
    assert p.message in _letter_text(_letter(verdict, incoming, intake))


def test_a_message_that_cannot_be_parsed_is_not_answered_as_having_no_attachment(intake, monkeypatch):
    def broken(self):
        raise RecursionError("hostile")
    monkeypatch.setattr(parse_module._Parser, "run", broken)
    incoming = parse_message(b"From: x@y\r\n\r\nhi")
    assert [p.code for p in incoming.problems] == ["unreadable-message"]
    verdict = decide(incoming, intake, NOV, section_override="政策法规科")
    assert "unreadable-message" in [p.code for p in verdict.problems]


def test_unpack_limits_reach_the_letter_with_the_limit_and_the_file(intake):
    """A zip nested past max_depth: its problem names the bound and the zip, in the item and the letter."""
    import io
    import zipfile

    def zipped(name: str, data: bytes) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr(name, data)
        return buf.getvalue()
    inner = zipped("任务7 照片.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    for level in range(4):
        inner = zipped(f"第{level}层.zip", inner)
    raw = _mail([("任务7 材料.zip", base64.b64encode(inner), "base64")])
    incoming = parse_message(raw, limits=intake.rules.limits)
    verdict = decide(incoming, intake, NOV)
    text = _letter_text(_letter(verdict, incoming, intake))
    assert re.search(r"压缩包'第\d层\.zip'嵌套超过3层", text), text


# ---------------------------------------------------------------- 6. every letter can be written

EMPTY_CHARSET = "=??Q?RE=A0=3A_2026=E5=B9=B411=E6=9C=88?="


def test_a_subject_with_an_empty_charset_encoded_word_still_gets_its_letter(intake):
    raw = (ROOT / "examples" / "01-fagui-monthly-mutt.eml").read_bytes()
    raw = re.sub(rb"(?m)^Subject: .*\n( .*\n)*", f"Subject: {EMPTY_CHARSET}\n".encode(), raw, count=1)
    incoming = parse_message(raw, limits=intake.rules.limits)
    verdict = decide(incoming, intake, NOV)
    assert verdict.outcome is Outcome.ACCEPTED and verdict.section == "政策法规科"
    letter = _letter(verdict, incoming, intake)
    sent = message_from_bytes(letter.raw, policy=policy.default)
    assert "2026年11月" in sent["Subject"] and sent["Subject"] == letter.subject
    assert letter.subject.startswith("【回执】XY-202611-0001")


@pytest.mark.parametrize("subject", [EMPTY_CHARSET, "坏\udcff的主题", "控制\x00字符\x1b[31m", "a\r\nBcc: x@y",
                                     "=?x?B?/////w==?= 中文", "=?*?Q?a?= 中", "\u2028行\ufeff"])
def test_any_header_text_becomes_a_header_that_encodes(subject):
    safe = safe_header(subject)
    raw = make_message(sender="xyjgk@cqscjg.example.cn", sender_name="信用监管科", to=["a@b.cn"], subject=safe,
                       plain=f"主题：{subject}\n", message_id="x@y", now=NOV, in_reply_to="id\x00<bad>@x",
                       references=("r1@x",))
    raw.split(b"\n\n", 1)[0].decode("ascii")
    msg = message_from_bytes(raw, policy=policy.default)
    assert "\n" not in msg["Subject"] and not re.search("[\x00-\x1f\ud800-\udfff]", msg["Subject"])
    assert msg["Bcc"] is None and msg["In-Reply-To"] == "<idbad@x>"


# ---------------------------------------------------------------- 8. refusals name the real cause

PE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\0" * 44 + b"\x80\0\0\0" + b"\0" * 64 \
    + b"PE\0\0L\x01\x03\x00" + b"\0" * 200


@pytest.mark.parametrize("name, data, cte, code, words", [
    ("报送材料.xlsx", base64.b64encode(PE), "base64", "executable-file", ("可执行程序", "不予受理")),
    ("报送材料.xlsx", b"", "base64", "empty-file", ("空文件", "0字节")),
    ("报送材料.xlsx", b"UEsDBBQ!!!%%%$$$###@@@***&&&" * 20, "base64", "damaged-encoding",
     ("传输编码", "base64", "损坏", "无法解码")),
])
def test_a_file_refused_for_what_it_is_is_told_why(intake, name, data, cte, code, words):
    incoming = parse_message(_mail([(name, data, cte)]), limits=intake.rules.limits)
    verdict = decide(incoming, intake, NOV)
    [item] = verdict.items
    assert item.status == "rejected"
    codes = [p.code for p in item.errors]
    assert codes == [code], [p.message for p in item.errors]      # not "未能识别…属于哪一项重点任务"
    assert all(w in item.errors[0].message for w in words) and "报送材料.xlsx" in item.errors[0].message
    assert "属于哪一项重点任务" not in _letter_text(_letter(verdict, incoming, intake))


def test_a_program_is_refused_as_a_program_even_for_a_named_task(intake):
    incoming = parse_message(_mail([("报送材料.xlsx", base64.b64encode(PE), "base64")], subject="2026年11月任务3双公示"),
                             limits=intake.rules.limits)
    [item] = decide(incoming, intake, NOV).items
    assert item.task == 3 and [p.code for p in item.errors] == ["executable-file"]


# ---------------------------------------------------------------- fuzzing

def _fuzz(pool):
    crashes = fuzz.fuzz(FUZZ_COUNT, seed=int(os.environ.get("MAILBOT_FUZZ_SEED", "0")), pool=pool)
    assert not crashes, f"{len(crashes)} of {FUZZ_COUNT} mutants crashed; first:\n{crashes[0][0]}\n{crashes[0][1]}"


@pytest.mark.slow
def test_mutated_examples_never_crash_the_intake():
    """MAILBOT_FUZZ_COUNT mutants (default 300) of examples/ and tests/data/mail; `python -m tests.fuzz` for more."""
    _fuzz(fuzz.seeds(include_shared=False))


@pytest.mark.slow
def test_mutated_corpus_never_crashes_the_intake():
    if not SHARED.is_dir():
        need(f"../shared not found at {SHARED}")
    _fuzz([s for s in fuzz.seeds() if s[0].startswith("shared/")])
