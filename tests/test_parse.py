"""The parse stage: raw bytes in, an Incoming out, with the names Chinese mail clients really send.

The .eml fixtures in data/mail/ are hand-built (make_fixtures.py there), one per trap;
the other messages are built in the tests. No mocks: every test feeds bytes to
parse_message (or to the decoders it is made of) and checks exact values.
"""
from __future__ import annotations

import base64
import datetime as dt
import email
import email.policy
import hashlib
import io
import re
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from pathlib import Path
from urllib.parse import unquote_to_bytes

import pytest

from mailbot.intake import names as mimenames
from mailbot.intake import unpack
from mailbot.model import Attachment, Incoming
from mailbot.intake.parse import DEFAULT_LIMITS, parse_message

MAIL = Path(__file__).resolve().parent / "data" / "mail"
XLSX_NAME = "附件1信用状况监测分析报送材料模板（政策法规科）2026年11月.xlsx"
XLS_NAME = "双公示台账.xls"
GBK_ONLY_NAME = "双公示台账（经办人：朱镕）.xls"
HAN = re.compile("[\u4e00-\u9fff]")


def load(name: str, **kw) -> Incoming:
    return parse_message((MAIL / name).read_bytes(), **kw)


def names(m: Incoming) -> list[str]:
    return [a.filename for a in m.attachments]


def assert_courteous(att: Attachment, code: str) -> None:
    """The attachment carries exactly `code`, in Chinese, naming the file."""
    assert [p.code for p in att.problems] == [code]
    message = att.problems[0].message
    assert HAN.search(message) and att.filename in message and "请" in message, message


def b64(data: bytes) -> bytes:
    return base64.encodebytes(data).replace(b"\n", b"\r\n")


def part(head: str | bytes, content: bytes, *, encode: bool = True) -> bytes:
    head = head.encode() if isinstance(head, str) else head
    if encode:
        return head + b"\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64(content)
    return head + b"\r\n\r\n" + content


def message(*parts: bytes, subject: bytes = b"test", extra: bytes = b"") -> bytes:
    head = (b"From: Sender <Sender@Example.com>\r\nTo: x@example.com\r\nSubject: " + subject
            + b"\r\nMessage-ID: <m1@example.com>\r\n" + extra + b"MIME-Version: 1.0\r\n")
    body = b"".join(b"--BOUNDARY\r\n" + p + b"\r\n" for p in parts) + b"--BOUNDARY--\r\n"
    return head + b'Content-Type: multipart/mixed; boundary="BOUNDARY"\r\n\r\n' + body


def zip_bytes(members: dict[str, bytes], *, method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def zip_part(name: str, data: bytes) -> bytes:
    encoded = "=?utf-8?B?" + base64.b64encode(name.encode()).decode() + "?="
    return part(f'Content-Type: application/zip; name="{encoded}"\r\n'
                f'Content-Disposition: attachment; filename="{encoded}"', data)


def xlsx_bytes(rows: int = 2) -> bytes:
    from openpyxl import Workbook
    wb = Workbook()
    ws = wb.active
    ws.title = "双公示台账"
    ws.append(["行政相对人名称", "统一社会信用代码", "决定日期", "决定文书号"])
    for i in range(rows):
        ws.append([f"济南某某商贸有限公司{i}", f"91370100MA3C{i:06d}", "2026-11-03", f"济市监罚〔2026〕{i}号"])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


# ---------------------------------------------------------------- names as clients send them

@pytest.mark.parametrize(("fixture", "subject", "filename"), [
    ("mutt-2231-split.eml", "11月信用监测材料", XLSX_NAME),
    ("outlook-2047-quoted.eml", "双公示台账（11月）", GBK_ONLY_NAME),
    ("sendemail-raw-gbk.eml", "2026年11月双公示台账", XLS_NAME),
    ("mpack-raw-gbk.eml", "信用承诺书", "信用承诺书.pdf"),
    ("mailutils-raw-utf8.eml", "市场监管局报送材料", "附件1信用状况监测分析报送材料模板（市场监管局）.docx"),
    ("rfc2231-gbk.eml", "台账", XLS_NAME),
    ("big5-2047.eml", "雙公示台賬 2026年11月", "信用監管科報送資料.xls"),
])
def test_names_and_subjects_as_chinese_clients_send_them(fixture, subject, filename):
    m = load(fixture)
    assert m.subject == subject
    assert names(m) == [filename]
    assert m.attachments[0].origin == () and not m.attachments[0].problems


@pytest.mark.parametrize("fixture", ["mutt-2231-split.eml", "sendemail-raw-gbk.eml", "outlook-2047-quoted.eml"])
def test_fixtures_really_defeat_the_standard_library(fixture):
    # if the stdlib ever gets these right, the fixture no longer guards anything
    raw = (MAIL / fixture).read_bytes()
    std = email.message_from_bytes(raw, policy=email.policy.default)
    assert [p.get_filename() for p in std.iter_attachments()] != names(parse_message(raw))


def test_mutt_continuations_are_cut_inside_characters():
    raw = (MAIL / "mutt-2231-split.eml").read_bytes()
    pieces = [unquote_to_bytes(p) for p in re.findall(rb"filename\*\d\*=(?:gb18030'')?([^;\r\n]+)", raw)]
    assert b"".join(pieces) == XLSX_NAME.encode("gb18030") and len(pieces) == 5
    boundaries = {len(XLSX_NAME[:i].encode("gb18030")) for i in range(len(XLSX_NAME) + 1)}
    cuts = [len(b"".join(pieces[:i])) for i in range(1, 5)]
    assert not boundaries.intersection(cuts)


def test_mutt_name_notes_say_how_it_was_recovered():
    att = load("mutt-2231-split.eml").attachments[0]
    assert att.notes == ("file name: RFC 2231 value joined from 5 pieces, decoded as gb18030",)


def test_gb2312_label_with_gbk_only_character_split_between_words():
    m = load("gb2312-subject-gbk-char.eml")
    assert m.subject == "双公示台账报送（经办人：王镕）"
    assert m.headers["subject"] == ("双公示台账报送（经办人：王镕）",)


def test_raw_gbk_subject_is_noted_and_iso_8859_1_body_recovered():
    m = load("sendemail-raw-gbk.eml")
    assert "subject: raw 8-bit header bytes decoded as gb18030" in m.notes
    assert m.attachments[0].notes == ("file name: raw 8-bit bytes decoded as gb18030",)
    assert m.text == "请查收"


def test_inline_disposition_with_a_filename_is_still_an_attachment():
    att = load("mpack-raw-gbk.eml").attachments[0]
    assert att.inline is False and att.content == b"%PDF-1.4\n%fixture\n"


# ---------------------------------------------------------------- the Incoming fields

def test_incoming_fields():
    m = load("gb2312-subject-gbk-char.eml")
    assert m.message_id == "gb2312-subject-gbk-char@fixture.example"
    assert (m.from_addr, m.from_name) == ("zhengce@example.gov.cn", "政策法规科")
    assert m.to == ("xinyong@example.gov.cn",)
    assert m.cc == ("li@example.gov.cn", "wang@example.gov.cn")
    assert m.reply_to == ("reply@example.gov.cn",)
    assert m.date == dt.datetime(2026, 11, 30, 9, 15, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    assert m.in_reply_to == "prev-1@example.gov.cn"
    assert m.references == ("prev-0@example.gov.cn", "prev-1@example.gov.cn")
    assert m.content_type == "text/html"
    assert m.header("X-Fixture") == "gb2312-subject-gbk-char"
    assert m.headers["from"] == ("政策法规科 <ZhengCe@Example.GOV.cn>",)
    assert all(k == k.lower() and isinstance(v, tuple) for k, v in m.headers.items())
    # HTML only: tags, the <style> block and entities go; breaks become lines
    assert m.text == "本月双公示台账&说明\n\n无附件"
    assert m.attachments == () and m.problems == ()


def test_message_id_is_synthesised_stably_when_absent():
    raw = b"From: a@b.c\r\nSubject: x\r\n\r\nhello\r\n"
    first, second = parse_message(raw), parse_message(raw)
    assert first.message_id == second.message_id == f"{hashlib.sha256(raw).hexdigest()}@mailbot.invalid"
    assert "<" not in first.message_id


def test_unparsable_from_and_date_give_empty_values_and_notes():
    m = parse_message(b"From: \r\nDate: someday soon\r\nSubject: x\r\n\r\nhi")
    assert (m.from_addr, m.from_name, m.date) == ("", "", None)
    assert any(n.startswith("Date ") for n in m.notes)


def test_date_without_zone_is_read_as_utc():
    m = parse_message(b"Date: Mon, 30 Nov 2026 09:15:00 -0000\r\n\r\nx")
    assert m.date == dt.datetime(2026, 11, 30, 9, 15, tzinfo=dt.timezone.utc)


def test_plain_text_is_preferred_and_forwarded_text_included():
    m = load("forwarded-zip-xlsx.eml")
    assert m.text == "请信用监管科查收。\n\n转给您。\n\n科长：材料见附件。"
    assert load("inline-images.eml").text == "现场检查照片见附件"


@pytest.mark.parametrize(("charset", "cte", "body", "expected"), [
    (b"x-gbk", b"quoted-printable", "台账".encode("gbk").hex("=").upper().encode().join([b"=", b""]), "台账"),
    (b"gb2312", b"8bit", "镕".encode("gbk"), "镕"),
    (b"gb2312", b"8bit", "台账".encode("utf-8"), "台账"),            # mislabelled UTF-8
    (b"utf-8", b"8bit", "台账".encode("gbk"), "台账"),               # mislabelled GBK
    (b"x-no-such-charset", b"8bit", "台账".encode("utf-8"), "台账"),
    (b"unicode_escape", b"7bit", b"\\u53f0", "\\u53f0"),             # not a mail charset
    (b"utf-8", b"base64", b"5Y+w6LSm", "台账"),
    (b"utf-8", b"base64", b"5Y+w6LSm=\r\n!", "台账"),                 # junk after padding
    (b"utf-8", b"quoted-printable", b"=E5=8F=B0=E8=B4=A6=\r\n=ZZ", "台账=ZZ"),
])
def test_body_charsets_and_transfer_encodings(charset, cte, body, expected):
    raw = (b"Content-Type: text/plain; charset=" + charset + b"\r\nContent-Transfer-Encoding: " + cte
           + b"\r\n\r\n" + body)
    assert parse_message(raw).text == expected


def test_iso_8859_1_body_stays_latin():
    raw = "Content-Type: text/plain; charset=iso-8859-1\r\n\r\nZürich, café".encode("latin-1")
    assert parse_message(raw).text == "Zürich, café"


# ---------------------------------------------------------------- parts and attachments

def test_inline_images_and_unnamed_parts():
    m = load("inline-images.eml")
    assert [(a.filename, a.inline, a.declared_type) for a in m.attachments] == [
        ("logo.png", True, "image/png"),            # in multipart/related, referenced by cid
        ("未命名附件1.png", True, "image/png"),      # Content-Disposition: inline, no name
        ("现场照片1.jpg", False, "image/jpeg"),
        ("未命名附件2.pdf", False, "application/pdf"),
    ]


def test_unreferenced_image_in_related_is_an_attachment():
    related = (b'Content-Type: multipart/related; boundary="R"\r\n\r\n--R\r\n'
               b"Content-Type: text/html\r\n\r\n<p>no image here</p>\r\n--R\r\n"
               + part('Content-Type: image/png; name="evidence.png"\r\nContent-ID: <x1>', b"\x89PNG")
               + b"\r\n--R--")
    m = parse_message(message(related))
    assert [(a.filename, a.inline) for a in m.attachments] == [("evidence.png", False)]


def test_text_parts_with_a_filename_are_attachments_and_bodies_are_not():
    raw = message(
        b"Content-Type: text/plain; charset=utf-8\r\n\r\nbody text",
        b"Content-Type: text/html; charset=utf-8\r\n\r\n<b>more</b>",
        part('Content-Type: text/csv; name="list.csv"', "名称,代码\r\n".encode()),
        b"Content-Type: text/plain\r\nContent-Disposition: attachment\r\n\r\nnotes",
        part("Content-Type: application/vnd.ms-excel", b"\xd0\xcf\x11\xe0"),
        part("Content-Type: image/jpeg", b"\xff\xd8\xff"),
    )
    m = parse_message(raw)
    assert names(m) == ["list.csv", "未命名附件1.txt", "未命名附件2.xls", "未命名附件3.jpg"]
    assert m.text == "body text\n\nmore"
    assert m.attachments[0].content == "名称,代码\r\n".encode()


def test_bounce_keeps_its_parts():
    raw = (b"Content-Type: multipart/report; report-type=delivery-status; boundary=\"R\"\r\n\r\n"
           b"--R\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n"
           b"--R\r\nContent-Type: message/delivery-status\r\n\r\nStatus: 5.1.1\r\n"
           b"--R\r\nContent-Type: message/rfc822\r\n\r\nSubject: original\r\nContent-Type: multipart/mixed; boundary=O\r\n\r\n"
           b"--O\r\n" + part('Content-Type: application/pdf; name="a.pdf"', b"%PDF") + b"\r\n--O--\r\n"
           b"--R--\r\n")
    m = parse_message(raw)
    assert m.content_type == "multipart/report"
    assert [(a.filename, a.origin) for a in m.attachments] == [("a.pdf", ("转发邮件'original'",))]
    assert m.text.startswith("Delivery failed.")


def test_attachments_keep_message_order_and_paths_are_stripped():
    raw = message(
        part('Content-Type: application/pdf; name="../../etc/passwd"', b"1"),
        part('Content-Type: application/pdf; name="C:\\Documents\\b.pdf"', b"2"),
        part('Content-Type: application/pdf; name="c\x01.pdf"', b"3"),
    )
    m = parse_message(raw)
    assert names(m) == ["passwd", "b.pdf", "c.pdf"]
    assert [a.content for a in m.attachments] == [b"1", b"2", b"3"]


def test_a_named_part_without_content_type_is_an_octet_stream():
    [att] = parse_message(message(b'Content-Disposition: attachment; filename="a.pdf"\r\n\r\n%PDF')).attachments
    assert (att.filename, att.declared_type, att.content) == ("a.pdf", "application/octet-stream", b"%PDF")


def test_raw_gbk_display_name_and_encoded_word_in_quotes():
    raw = (b"From: " + "政策法规科 张三".encode("gbk") + b" <ZS@Example.gov.cn>\r\n"
           b'To: "=?utf-8?B?5L+h55So55uR566h56eR?=" <XinYong@example.gov.cn>, other@example.gov.cn\r\n\r\nx')
    m = parse_message(raw)
    assert (m.from_addr, m.from_name) == ("zs@example.gov.cn", "政策法规科 张三")
    assert m.to == ("xinyong@example.gov.cn", "other@example.gov.cn")
    assert m.headers["to"] == ('"信用监管科" <XinYong@example.gov.cn>, other@example.gov.cn',)


def test_notes_are_bounded():
    raw = message(*[b"Content-Type: application/pdf\r\n\r\nx"] * 800)
    m = parse_message(raw)
    assert len(m.attachments) == 500 and len(m.notes) == 201 and m.notes[-1] == "... and 100 more notes"


def test_message_rfc822_encoded_in_base64_is_opened():
    inner = b"Subject: inner\r\nContent-Type: application/pdf; name=\"x.pdf\"\r\n\r\n%PDF"
    raw = message(part("Content-Type: message/rfc822", inner))
    m = parse_message(raw)
    assert [(a.filename, a.origin, a.content) for a in m.attachments] == [("x.pdf", ("转发邮件'inner'",), b"%PDF")]


def test_message_without_boundary_lines_reads_as_text():
    m = parse_message(b'Content-Type: multipart/mixed; boundary="nope"\r\n\r\njust text\r\n')
    assert m.text == "just text" and m.attachments == ()
    assert any("without a usable boundary" in n for n in m.notes)


def test_missing_closing_boundary_keeps_the_last_part():
    raw = message(part('Content-Type: application/pdf; name="a.pdf"', b"%PDF")).replace(b"--BOUNDARY--\r\n", b"")
    m = parse_message(raw)
    assert names(m) == ["a.pdf"] and "multipart/mixed: closing boundary missing" in m.notes


# ---------------------------------------------------------------- forwarded messages

def test_xlsx_in_zip_in_forward_in_forward():
    m = load("forwarded-zip-xlsx.eml")
    assert len(m.attachments) == 1
    att = m.attachments[0]
    assert att.filename == XLSX_NAME
    assert att.origin == ("转发邮件'Fwd: 政策法规科11月信用监管材料'", "转发邮件'政策法规科11月信用监管材料'", "材料.zip")
    assert att.content.startswith(b"PK") and b"[Content_Types].xml" in att.content   # not expanded
    assert att.declared_type == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def test_forward_and_zip_depth_count_together():
    m = load("forwarded-zip-xlsx.eml", limits={"max_depth": 2})
    [att] = m.attachments
    assert att.filename == "材料.zip"
    assert att.origin == ("转发邮件'Fwd: 政策法规科11月信用监管材料'", "转发邮件'政策法规科11月信用监管材料'")
    assert_courteous(att, "zip-too-deep")


def test_forward_too_deep_is_kept_whole():
    m = load("forwarded-zip-xlsx.eml", limits={"max_depth": 1})
    [att] = m.attachments
    assert att.filename == "政策法规科11月信用监管材料.eml"
    assert att.origin == ("转发邮件'Fwd: 政策法规科11月信用监管材料'",)
    assert att.declared_type == "message/rfc822" and att.content.startswith(b"From: zhengce@")
    assert [p.code for p in att.problems] == ["forward-too-deep"]
    assert "政策法规科11月信用监管材料" in att.problems[0].message


# ---------------------------------------------------------------- zip archives

def _fixture_zip(fixture: str) -> bytes:
    std = email.message_from_bytes((MAIL / fixture).read_bytes(), policy=email.policy.default)
    return next(p.get_payload(decode=True) for p in std.walk() if p.get_content_maintype() == "application")


def test_windows_zip_fixture_has_gbk_names_without_the_utf8_flag():
    infos = zipfile.ZipFile(io.BytesIO(_fixture_zip("windows-gbk-zip.eml"))).infolist()
    assert all(not i.flag_bits & 0x800 for i in infos)
    assert infos[2].filename.encode("cp437") == ("政策法规科/" + XLS_NAME).encode("gbk")


def test_windows_zip_with_gbk_names_is_expanded():
    m = load("windows-gbk-zip.eml")
    assert [(a.filename, a.origin) for a in m.attachments] == [
        (XLSX_NAME, ("11月报送材料.zip",)),
        (XLS_NAME, ("11月报送材料.zip",)),
    ]   # the folder entry, Thumbs.db, __MACOSX/ and .DS_Store are skipped
    xlsx, xls = m.attachments
    assert xlsx.notes == ("zip member name decoded as gb18030 (no UTF-8 flag)",
                          f"path in archive: '政策法规科/{XLSX_NAME}'")
    assert xls.content.startswith(bytes.fromhex("d0cf11e0a1b11ae1"))
    assert xls.declared_type == "application/vnd.ms-excel"


def test_zip_nested_five_deep_stops_at_max_depth():
    m = load("nested-zip-5.eml")
    [att] = m.attachments
    assert att.filename == "第4层.zip"
    assert att.origin == ("第1层.zip", "第2层.zip", "第3层.zip")
    assert_courteous(att, "zip-too-deep")
    assert zipfile.ZipFile(io.BytesIO(att.content)).namelist() == ["第5层.zip".encode("gbk").decode("cp437")]


def test_zip_nested_five_deep_opens_with_a_higher_limit():
    m = load("nested-zip-5.eml", limits={"max_depth": 5})
    assert [(a.filename, a.origin) for a in m.attachments] == [
        (XLS_NAME, ("第1层.zip", "第2层.zip", "第3层.zip", "第4层.zip", "第5层.zip"))]


def test_encrypted_and_broken_zips_are_kept_whole():
    m = load("encrypted-zip.eml")
    sealed, broken = m.attachments
    assert sealed.filename == "sealed.zip" and broken.filename == "broken.zip"
    assert_courteous(sealed, "zip-encrypted")
    assert_courteous(broken, "zip-broken")
    assert sealed.content == _fixture_zip("encrypted-zip.eml")
    assert sealed.problems[0].message == "压缩包'sealed.zip'设有密码，无法打开；请去掉密码后重新发送，或直接发送其中的文件。"


@pytest.fixture(scope="session")
def bomb() -> bytes:
    """300 MB of zeros, deflated to about 300 KB: built here rather than committed."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("zeros.xls", "w") as f:
        chunk = bytes(1 << 20)
        for _ in range(300):
            f.write(chunk)
    return buf.getvalue()


def test_zip_bomb_is_refused_from_its_declared_size(bomb):
    start = time.perf_counter()
    m = parse_message(message(zip_part("材料.zip", bomb)))
    assert time.perf_counter() - start < 2   # refused before anything is inflated
    [att] = m.attachments
    assert att.filename == "材料.zip" and att.content == bomb
    assert [p.code for p in att.problems] == ["zip-bomb"]
    assert att.problems[0].message == "压缩包'材料.zip'解压后超过200MB，疑为压缩炸弹，未予处理；请直接发送其中的文件。"


def test_high_ratio_member_is_a_bomb_even_within_the_budget():
    name = "空白台账.xls".encode("gbk")
    data = zip_bytes({"P" * len(name): bytes(20 << 20)}).replace(b"P" * len(name), name)
    [att] = parse_message(message(zip_part("材料.zip", data))).attachments
    assert_courteous(att, "zip-bomb")
    assert att.problems[0].message == ("压缩包'材料.zip'中的'空白台账.xls'压缩比超过100倍，疑为压缩炸弹，"
                                       "未予处理；请直接发送其中的文件。")


def test_small_files_may_compress_well():
    data = zip_bytes({"blank.txt": b" " * 100_000})
    assert names(parse_message(message(zip_part("材料.zip", data)))) == ["blank.txt"]


def test_lying_sizes_are_caught_while_reading():
    # central directory and local header claim 1,000 bytes; the data inflates to 5 MB
    data = bytearray(zip_bytes({"big.xls": bytes(5 << 20)}))
    for sig, off in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.find(sig)
        struct.pack_into("<I", data, at + off, 1000)
    [att] = parse_message(message(zip_part("材料.zip", bytes(data)))).attachments
    assert_courteous(att, "zip-broken")


def test_budget_is_shared_by_all_zips_of_a_message():
    one = zip_bytes({"a.xls": b"x" * 600})
    raw = message(zip_part("一.zip", one), zip_part("二.zip", one))
    first, second = parse_message(raw, limits={"max_unpacked_bytes": 1000}).attachments
    assert first.filename == "a.xls" and first.origin == ("一.zip",)
    assert second.filename == "二.zip"
    assert second.problems[0].message == "压缩包'二.zip'解压后超过1000字节，疑为压缩炸弹，未予处理；请直接发送其中的文件。"


def test_too_many_files():
    data = zip_bytes({f"{i}.txt": b"x" for i in range(5)})
    raw = message(zip_part("多.zip", data))
    assert len(parse_message(raw, limits={"max_files": 5}).attachments) == 5
    [att] = parse_message(raw, limits={"max_files": 4}).attachments
    assert_courteous(att, "zip-too-many-files")


def test_too_many_mime_parts_is_a_message_problem():
    raw = message(*[part(f'Content-Type: application/pdf; name="{i}.pdf"', b"%PDF") for i in range(4)])
    m = parse_message(raw, limits={"max_files": 3})
    assert names(m) == ["0.pdf", "1.pdf", "2.pdf"]
    assert [p.code for p in m.problems] == ["too-many-files"] and HAN.search(m.problems[0].message)


def test_empty_and_unsupported_zips():
    empty = zip_bytes({})
    [att] = parse_message(message(zip_part("空.zip", empty))).attachments
    assert_courteous(att, "zip-empty")
    weird = bytearray(zip_bytes({"a.xls": b"data"}, method=zipfile.ZIP_STORED))
    for sig, off in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        struct.pack_into("<H", weird, weird.find(sig) + off, 9)   # Deflate64
    [att] = parse_message(message(zip_part("怪.zip", bytes(weird)))).attachments
    assert_courteous(att, "zip-unsupported")


def test_office_packages_are_never_expanded_whatever_their_name():
    package = xlsx_bytes()
    raw = message(zip_part("改了名的表格.zip", package),
                  part('Content-Type: application/octet-stream; name="表格"', package))
    m = parse_message(raw)
    assert names(m) == ["改了名的表格.zip", "表格"]
    assert all(a.content == package and not a.problems for a in m.attachments)


def test_zip_member_names_utf8_flag_and_unicode_path_field():
    [att] = parse_message(message(zip_part("a.zip", zip_bytes({"标记.xls": b"1"})))).attachments
    assert (att.filename, att.notes) == ("标记.xls", ())
    raw_name = "台账.xls".encode("gbk")
    info = zipfile.ZipInfo(raw_name.decode("cp437"))
    field = struct.pack("<BI", 1, zlib.crc32(raw_name)) + "台账（统一码）.xls".encode()
    info.extra = struct.pack("<HH", 0x7075, len(field)) + field
    assert mimenames.zip_member_name(info) == ("台账（统一码）.xls", "zip member name taken from its Unicode Path field")


def test_macos_utf8_zip_names_without_the_flag():
    name = "苹果电脑上的台账.xls".encode("utf-8")
    placeholder = b"P" * len(name)
    data = zip_bytes({placeholder.decode(): b"x"}).replace(placeholder, name)
    [att] = parse_message(message(zip_part("mac.zip", data))).attachments
    assert att.filename == "苹果电脑上的台账.xls"


# ---------------------------------------------------------------- winmail.dat

def test_part_labelled_tnef_that_is_not_tnef_is_an_ordinary_file():
    [att] = parse_message(message(part('Content-Type: application/ms-tnef; name="winmail.dat"', b"\x89PNG"))).attachments
    assert (att.filename, att.problems, att.content) == ("winmail.dat", (), b"\x89PNG")


def _tnef(*objects: tuple[int, int, bytes]) -> bytes:
    out = b"\x78\x9f\x3e\x22\x01\x00"
    for level, name, data in objects:
        out += struct.pack("<BHHI", level, name, 0, len(data)) + data + struct.pack("<H", sum(data) & 0xFFFF)
    return out


XLS_BYTES = bytes.fromhex("d0cf11e0a1b11ae1") + bytes(504)


def test_winmail_dat_from_chinese_outlook():
    # codepage 936; the attachment title is GBK, which tnefparse itself would read as UTF-8
    stream = _tnef((1, 0x9006, struct.pack("<I", 0x10000)), (1, 0x9007, struct.pack("<II", 936, 0)),
                   (2, 0x9002, b"\x01\x00" + bytes(12)), (2, 0x8010, XLS_NAME.encode("gbk") + b"\0"),
                   (2, 0x800F, XLS_BYTES),
                   (2, 0x9002, b"\x01\x00" + bytes(12)), (2, 0x8010, "材料.zip".encode("gbk") + b"\0"),
                   (2, 0x800F, zip_bytes({"照片.jpg": b"\xff\xd8\xff"})))
    m = parse_message(message(part('Content-Type: application/ms-tnef; name="winmail.dat"', stream)))
    assert [(a.filename, a.origin, a.declared_type) for a in m.attachments] == [
        (XLS_NAME, ("winmail.dat",), "application/vnd.ms-excel"),
        ("照片.jpg", ("winmail.dat", "材料.zip"), "image/jpeg"),
    ]
    assert m.attachments[0].content == XLS_BYTES
    assert m.attachments[0].notes == ("winmail.dat name decoded as gb18030",)


def test_empty_winmail_dat_is_dropped_with_a_note():
    stream = _tnef((1, 0x9006, struct.pack("<I", 0x10000)), (1, 0x9007, struct.pack("<II", 936, 0)))
    m = parse_message(message(b"Content-Type: text/plain\r\n\r\nhello",
                              part('Content-Type: application/ms-tnef; name="winmail.dat"', stream)))
    assert m.attachments == () and m.text == "hello"
    assert "winmail.dat: winmail.dat holds no files; dropped" in m.notes


@pytest.mark.parametrize("stream", [
    _tnef((1, 0x9003, struct.pack("<I", 0xFFFFFFFF) + b"\0" * 8)),            # 2**32 properties
    _tnef((1, 0x9003, struct.pack("<IHHI", 1, 0x1002, 0x0E20, 0xFFFFFFFF))),  # 2**32 16-bit values
    _tnef((1, 0x9004, struct.pack("<I", 0xFFFFFF) + b"\0" * 8)),              # 2**24 recipients
    b"\x78\x9f\x3e\x22" + b"\xff" * 40,
])
def test_hostile_winmail_dat_is_refused_quickly(stream):
    start = time.perf_counter()
    [att] = parse_message(message(part('Content-Type: application/ms-tnef; name="winmail.dat"', stream))).attachments
    assert time.perf_counter() - start < 2
    assert_courteous(att, "tnef-broken")
    assert att.content == stream


# ---------------------------------------------------------------- never raises

HOSTILE = {
    "empty": b"",
    "nul bytes": b"\0" * 10_000,
    "binary": bytes(range(256)) * 4000,
    "3-MB header line": b"Subject: " + b"=?gb2312?B?1tDOxA==?= " * 130_000 + b"\r\n\r\nbody",
    "3-MB To": b"To: " + b"a@b.c, " * 450_000 + b"\r\n\r\nbody",
    "3-MB quoted parameter": b'Content-Type: text/plain; name="' + b'\\"' * 1_500_000 + b"\r\n\r\nbody",
    "deep multipart": b"".join(b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i)
                               for i in range(2000)),
    "deep forwards": b"Content-Type: message/rfc822\r\n\r\n" * 2000 + b"Subject: x\r\n\r\nhi",
    "many parts": b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
                  + b"--b\r\nContent-Type: application/pdf\r\n\r\nx\r\n" * 6000,
    "hostile html": b"Content-Type: text/html\r\n\r\n" + b"<script<!--<a" * 100_000,
    "bad base64": b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nQUJD=RA=\r\n!@#$",
    "bad uuencode": b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 a\r\n\xff\xfe\r\nend",
    "bad charsets": b"Subject: =?zlib?B?eJw=?= =?idna?Q?x?= =?rot13?Q?a?=\r\nContent-Type: text/plain; charset=base64\r\n\r\nx",
    "bad date": b"Date: Tue, 1 Jan 99999 99:99:99 +9999\r\n\r\n",
    "continuation first": b" folded\r\nSubject: ok\r\n\r\nbody",
    "only colons": b":" * 100_000,
    "bad 2231": b"Content-Type: application/pdf; name*0*=x'y'%ZZ; name*99999999*=q; name*=''\r\n\r\nx",
    "unclosed quote": b'Content-Type: application/pdf; name="abc\r\n\r\nx',
}


@pytest.mark.parametrize("raw", list(HOSTILE.values()), ids=list(HOSTILE))
def test_never_raises_and_stays_fast(raw):
    start = time.perf_counter()
    m = parse_message(raw)
    assert isinstance(m, Incoming) and m.message_id
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize("raw", ["a str", None, bytearray(b"Subject: x\r\n\r\n"), memoryview(b"Subject: y\r\n\r\n")])
def test_odd_argument_types_still_give_an_incoming(raw):
    assert isinstance(parse_message(raw), Incoming)


def test_bad_limits_are_noted_and_defaults_used():
    m = parse_message(b"Subject: x\r\n\r\n", limits={"max_files": -1, "max_depth": "3", "colour": 1})
    assert m.notes == ("limit max_files=-1 unusable, default 500 used",
                       "limit max_depth='3' unusable, default 3 used",
                       "unknown limit 'colour' ignored")
    assert DEFAULT_LIMITS == {"max_unpacked_bytes": 200 * 2**20, "max_files": 500, "max_depth": 3, "max_ratio": 100}


def test_parse_stage_does_not_need_imap_tools():
    code = ("import sys\n"
            "class Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] in ('imap_tools', 'aiosmtplib', 'sqlalchemy', 'apscheduler'):\n"
            "            raise ImportError(name)\n"
            "sys.meta_path.insert(0, Block())\n"
            "from mailbot.intake.parse import parse_message\n"
            "assert parse_message(b'Subject: ok\\r\\n\\r\\n').subject == 'ok'\n")
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------- the decoders

@pytest.mark.parametrize(("raw", "expected"), [
    ("取.xls".encode("gbk"), "取.xls"),          # valid UTF-8 by accident (U+0221): still GBK
    ("台账".encode("gbk"), "台账"),
    ("ciële.txt".encode("utf-8"), "ciële.txt"),
    ("中文.doc".encode("utf-8"), "中文.doc"),
    ("ð̞oβ̞le".encode("utf-8"), "ð̞oβ̞le"),        # combining marks: UTF-8, not a rare GBK char
    (b"plain", "plain"),
])
def test_guess_decode(raw, expected):
    assert mimenames.guess_decode(raw)[0] == expected


def test_one_gbk_character_that_reads_as_latin_utf8():
    # 猫 in GBK is "è" in UTF-8: headers follow UTF-8 (real "danglüe@" addresses exist),
    # zip names from Windows follow GBK
    assert mimenames.guess_decode("猫.xls".encode("gbk"))[0] == "è.xls"
    assert mimenames.guess_decode("猫.xls".encode("gbk"), gb_first=True)[0] == "猫.xls"
    data = zip_bytes({"PLACE.xls": b"x"}).replace(b"PLACE", "猫".encode("gbk") + b"___")
    assert names(parse_message(message(zip_part("a.zip", data)))) == ["猫___.xls"]


def test_guess_decode_takes_the_message_charset_as_hint():
    assert mimenames.guess_decode("雙公示".encode("big5"), "big5")[0] == "雙公示"
    assert mimenames.guess_decode("雙公示".encode("big5"), "iso-8859-1")[0] != "雙公示"   # no hint


@pytest.mark.parametrize(("label", "codecs"), [
    ("GB2312", ("gb18030",)), ("x-gbk", ("gb18030",)), ("\"gbk\"", ("gb18030",)), ("cp936", ("gb18030",)),
    ("Big5", ("cp950", "big5hkscs")), ("us-ascii", ()), ("unknown-8bit", ()), ("zlib", ()),
    ("unicode_escape", ()), ("x-nonsense", ()), ("koi8-r", ("koi8-r",)),
])
def test_codecs_for(label, codecs):
    assert mimenames.codecs_for(label) == codecs


def test_encoded_words_split_inside_a_character_are_joined():
    raw = "测试".encode("utf-8")
    words = f"=?utf-8?B?{base64.b64encode(raw[:2]).decode()}?= =?UTF-8?B?{base64.b64encode(raw[2:]).decode()}?="
    assert mimenames.decode_words(words) == "测试"
    assert mimenames.decode_words("=?utf-8?Q?=E6=B5=8B=E8=AF=95=E8=B4=B9_?=1009.xls") == "测试费 1009.xls"
    assert mimenames.decode_words("a =?utf-8?Q?b?= c") == "a b c"


def test_parameter_parsing():
    hv = mimenames.parse_header_value(
        b'Attachment; FileName*0*=utf-8\'\'%E5%8F%B0; filename*1="%E8%B4%A6.xls"; size=12;'
        b' filename="fallback.xls"; boundary="=_a\\"b"')
    assert hv.value == "attachment"
    # a plain piece is raw text: "%E8%B4%A6" stays literal, as RFC 2231 says
    assert hv.params["filename"] == "台%E8%B4%A6.xls"
    assert hv.params["size"] == "12" and hv.raw["boundary"] == b'=_a"b'


def test_clean_filename():
    assert mimenames.clean_filename('  "C:\\材料\\台账.xls" ') == "台账.xls"
    assert mimenames.clean_filename("a\u202egnp.exe") == "agnp.exe"
    assert mimenames.clean_filename("..") == ""
    long = "长" * 300 + ".xlsx"
    assert len(mimenames.clean_filename(long)) == 200 and mimenames.clean_filename(long).endswith(".xlsx")


def test_expand_leaves_other_files_alone():
    att = Attachment(filename="a.pdf", content=b"%PDF")
    assert unpack.expand(att, unpack.Budget()).attachments == (att,)


# ---------------------------------------------------------------- speed

def test_a_message_with_a_200_row_workbook_parses_fast():
    raw = message(b"Content-Type: text/plain; charset=gb2312\r\n\r\n" + "请查收".encode("gbk"),
                  part(f'Content-Type: application/vnd.openxmlformats-officedocument.spreadsheetml.sheet;'
                       f' name="=?utf-8?B?{base64.b64encode(XLSX_NAME.encode()).decode()}?="', xlsx_bytes(200)))
    start = time.perf_counter()
    for _ in range(100):
        m = parse_message(raw)
    per_message = (time.perf_counter() - start) / 100
    assert names(m) == [XLSX_NAME]
    assert per_message < 0.05, per_message
