"""Write the synthetic mail fixtures of this directory, byte by byte, one per trap real clients set.

Run once by hand (``.venv/bin/python tests/data/mail/make_fixtures.py``); the .eml files
are committed, so the tests never depend on this script. Re-running it reproduces every
file byte for byte except encrypted-zip.eml (zip -P draws a random encryption header). Each message says what it
imitates in an X-Fixture header. The public corpus (../shared/corpus) has no GB RFC 2231
names, no mid-character continuation split and no Windows GBK zip: these fill that gap.
"""
from __future__ import annotations

import base64
import datetime
import io
import shutil
import subprocess
import tempfile
import textwrap
import zipfile
from pathlib import Path
from urllib.parse import quote_from_bytes

HERE = Path(__file__).resolve().parent
XLSX_NAME = "附件1信用状况监测分析报送材料模板（政策法规科）2026年11月.xlsx"
XLS_NAME = "双公示台账.xls"
GBK_ONLY_NAME = "双公示台账（经办人：朱镕）.xls"   # 镕 is in GBK, not in GB2312
CRLF = b"\r\n"
STAMP = (2026, 11, 30, 9, 15, 0)   # fixed times, so that re-running the script changes nothing

# A minimal OLE2 header: enough for the name and the type, never opened by these tests.
XLS_BYTES = bytes.fromhex("d0cf11e0a1b11ae1") + bytes(504)


def xlsx_bytes() -> bytes:
    from openpyxl import Workbook
    wb = Workbook()
    ws = wb.active
    wb.properties.created = wb.properties.modified = datetime.datetime(*STAMP[:6])
    ws.title = "双公示台账"
    ws.append(["行政相对人名称", "统一社会信用代码", "决定日期"])
    ws.append(["济南某某商贸有限公司", "91370100MA3C000000", "2026-11-03"])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def b64(data: bytes) -> bytes:
    return "\r\n".join(textwrap.wrap(base64.b64encode(data).decode(), 76)).encode()


def headers(subject: bytes, fixture: str, *, ctype: bytes, extra: bytes = b"") -> bytes:
    return (
        b"From: =?GB2312?B?1f6y37eouea/xg==?= <ZhengCe@Example.GOV.cn>\r\n"
        b"To: xinyong@example.gov.cn\r\n"
        b"Subject: " + subject + b"\r\n"
        b"Date: Mon, 30 Nov 2026 09:15:00 +0800\r\n"
        b"Message-ID: <" + fixture.encode() + b"@fixture.example>\r\n"
        b"MIME-Version: 1.0\r\n"
        b"X-Fixture: " + fixture.encode() + b"\r\n" + extra +
        b"Content-Type: " + ctype + b"\r\n\r\n")


def text_part(text: str, charset: str = "gb18030") -> bytes:
    return (b"Content-Type: text/plain; charset=" + charset.encode() + b"\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" + b64(text.encode(charset)) + CRLF)


def file_part(head: bytes, content: bytes) -> bytes:
    return head + b"Content-Transfer-Encoding: base64\r\n\r\n" + b64(content) + CRLF


def multipart(boundary: bytes, parts: list[bytes]) -> bytes:
    out = b"This is a multi-part message in MIME format.\r\n"
    for p in parts:
        out += b"\r\n--" + boundary + CRLF + p
    return out + b"\r\n--" + boundary + b"--\r\n"


def mixed(name: str, subject: bytes, parts: list[bytes], *, extra: bytes = b"") -> None:
    boundary = b"----=_NextPart_000_0012_01DB0000." + name.encode()
    raw = headers(subject, name, ctype=b'multipart/mixed;\r\n\tboundary="' + boundary + b'"', extra=extra)
    (HERE / f"{name}.eml").write_bytes(raw + multipart(boundary, parts))


def word_b(text: str, charset: str) -> bytes:
    return b"=?" + charset.encode() + b"?B?" + base64.b64encode(text.encode(_codec(charset))) + b"?="


def _codec(charset: str) -> str:
    return {"GB2312": "gbk", "gb2312": "gbk"}.get(charset, charset)


# ---------------------------------------------------------------- zips

def zip_of(members: list[tuple[bytes, bytes]], *, utf8_flag: bool = False) -> bytes:
    """A zip whose member names are the given raw bytes, as Windows' zip writes GBK names.

    zipfile sets the UTF-8 flag (bit 11) for any non-ASCII name, so each name is written as
    an ASCII placeholder of the same length and the bytes swapped in afterwards: offsets
    and CRCs do not cover names, and the flag stays clear.
    """
    buf = io.BytesIO()
    placeholders = []
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for i, (raw_name, content) in enumerate(members):
            stem = f"N{i:03d}".encode()
            placeholder = (stem + b"x" * len(raw_name))[:len(raw_name)] if len(raw_name) >= 4 else raw_name
            placeholders.append((placeholder, raw_name))
            name = placeholder.decode("ascii") if not utf8_flag else raw_name.decode("utf-8")
            zf.writestr(zipfile.ZipInfo(name, date_time=STAMP[:6]), content, zipfile.ZIP_DEFLATED)
    data = buf.getvalue()
    if not utf8_flag:
        for placeholder, raw_name in placeholders:
            assert data.count(placeholder) == 2, placeholder
            data = data.replace(placeholder, raw_name)
        for info in zipfile.ZipFile(io.BytesIO(data)).infolist():
            assert not info.flag_bits & 0x800, "UTF-8 flag must stay clear"
    return data


def encrypted_zip() -> bytes:
    if shutil.which("zip") is None:
        raise SystemExit("the `zip` command is needed for the encrypted fixture")
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "sgs.xls").write_bytes(XLS_BYTES)
        subprocess.run(["zip", "-q", "-P", "secret", "sealed.zip", "sgs.xls"], cwd=tmp, check=True)
        data = (Path(tmp) / "sealed.zip").read_bytes()
    assert zipfile.ZipFile(io.BytesIO(data)).infolist()[0].flag_bits & 0x1
    return data


# ---------------------------------------------------------------- the fixtures

def mutt_split() -> None:
    # mutt/neomutt: RFC 2231 continuations cut at a byte count, in the middle of a GB18030
    # character; each piece alone is undecodable
    raw = XLSX_NAME.encode("gb18030")
    starts, pos = set(), 0
    for ch in XLSX_NAME:
        starts.add(pos)
        pos += len(ch.encode("gb18030"))
    cuts = [0, 6, 16, 32, 46, len(raw)]
    assert all(c not in starts for c in cuts[1:-1]), "every cut must fall inside a character"
    pieces = [raw[a:b] for a, b in zip(cuts, cuts[1:])]
    params = b"".join(
        b";\r\n\tfilename*" + str(i).encode() + b"*=" + (b"gb18030''" if i == 0 else b"")
        + quote_from_bytes(p, safe="").encode()
        for i, p in enumerate(pieces))
    name_params = b"".join(
        b";\r\n\tname*" + str(i).encode() + b"*=" + (b"gb18030''" if i == 0 else b"")
        + quote_from_bytes(p, safe="").encode()
        for i, p in enumerate(pieces))
    head = (b"Content-Type: application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            + name_params + b"\r\nContent-Disposition: attachment" + params + CRLF)
    mixed("mutt-2231-split", b"=?gb18030?B?" + base64.b64encode("11月信用监测材料".encode("gb18030")) + b"?=",
          [text_part("请查收。"), file_part(head, xlsx_bytes())],
          extra=b"User-Agent: NeoMutt/20231103\r\n")


def outlook_2047_in_param() -> None:
    # Outlook / Foxmail: RFC 2047 words inside the quoted filename, labelled GB2312 while
    # holding a GBK-only character, split over two words at a character boundary
    first, second = GBK_ONLY_NAME[:6], GBK_ONLY_NAME[6:]
    value = word_b(first, "GB2312") + b"\r\n\t" + word_b(second, "GB2312")
    head = (b'Content-Type: application/vnd.ms-excel;\r\n\tname="' + value + b'"\r\n'
            b'Content-Disposition: attachment;\r\n\tfilename="' + value + b'"\r\n')
    mixed("outlook-2047-quoted", word_b("双公示台账（11月）", "gb2312"),
          [text_part("附件为本月双公示台账。", "gb2312"), file_part(head, XLS_BYTES)],
          extra=b"X-Mailer: Microsoft Outlook 16.0\r\n")


def sendemail_raw_gbk() -> None:
    # sendEmail / swaks: raw GBK bytes in Subject, name= and filename=; the body declares
    # iso-8859-1 (sendEmail's default), which must not be taken as the names' charset
    name = XLS_NAME.encode("gbk")
    head = (b'Content-Type: application/vnd.ms-excel; name="' + name + b'"\r\n'
            b'Content-Disposition: attachment; filename="' + name + b'"\r\n')
    body = (b"Content-Type: text/plain; charset=iso-8859-1\r\n"
            b"Content-Transfer-Encoding: 8bit\r\n\r\n" + "请查收".encode("gbk") + CRLF)
    mixed("sendemail-raw-gbk", "2026年11月双公示台账".encode("gbk"), [body, file_part(head, XLS_BYTES)],
          extra=b"X-Mailer: sendEmail-1.56\r\n")


def mpack_raw_gbk() -> None:
    # mpack: unquoted raw GBK name, and Content-Disposition "inline" with a filename,
    # which is still an attachment
    name = "信用承诺书.pdf".encode("gbk")
    head = (b"Content-Type: application/pdf; name=" + name + b"\r\n"
            b"Content-Disposition: inline; filename=" + name + b"\r\n")
    mixed("mpack-raw-gbk", b"=?gbk?B?" + base64.b64encode("信用承诺书".encode("gbk")) + b"?=",
          [file_part(head, b"%PDF-1.4\n%fixture\n")], extra=b"X-Mailer: mpack 1.6\r\n")


def mailutils_raw_utf8() -> None:
    # GNU mailutils: raw UTF-8 bytes in the parameters, no encoding at all
    name = "附件1信用状况监测分析报送材料模板（市场监管局）.docx".encode("utf-8")
    head = (b'Content-Type: application/octet-stream; name="' + name + b'"\r\n'
            b'Content-Disposition: attachment; filename="' + name + b'"\r\n')
    mixed("mailutils-raw-utf8", "市场监管局报送材料".encode("utf-8"),
          [text_part("见附件。", "utf-8"), file_part(head, b"PK\x03\x04 not really a docx")],
          extra=b"X-Mailer: mail (GNU Mailutils 3.17)\r\n")


def rfc2231_gbk() -> None:
    # RFC 2231 in one piece, charset GBK (Thunderbird set to GBK, Coremail web)
    value = b"GBK''" + quote_from_bytes(XLS_NAME.encode("gbk"), safe="").encode()
    head = (b"Content-Type: application/vnd.ms-excel; name*=" + value + b"\r\n"
            b"Content-Disposition: attachment; filename*=" + value + b"\r\n")
    mixed("rfc2231-gbk", b"=?GBK?Q?" + b"".join(b"=%02X" % c for c in "台账".encode("gbk")) + b"?=",
          [file_part(head, XLS_BYTES)])


def big5_2047() -> None:
    # Traditional-Chinese clients: Big5 RFC 2047 words in the subject and the filename
    name = "信用監管科報送資料.xls"
    head = (b'Content-Type: application/vnd.ms-excel; name="' + word_b(name, "big5") + b'"\r\n'
            b'Content-Disposition: attachment; filename="' + word_b(name, "big5") + b'"\r\n')
    mixed("big5-2047", word_b("雙公示台賬 2026年11月", "big5"),
          [text_part("請查收。", "big5"), file_part(head, XLS_BYTES)])


def gb2312_subject_gbk_char() -> None:
    # a subject labelled gb2312 with a GBK-only character (镕), in two words split inside
    # the character's bytes (the join must happen before decoding)
    raw = "双公示台账报送（经办人：王镕）".encode("gbk")
    cut = raw.index("镕".encode("gbk")) + 1
    subject = (b"=?gb2312?B?" + base64.b64encode(raw[:cut]) + b"?=\r\n\t=?gb2312?B?"
               + base64.b64encode(raw[cut:]) + b"?=")
    raw_msg = headers(subject, "gb2312-subject-gbk-char", ctype=b"text/html; charset=gb2312",
                      extra=b"Content-Transfer-Encoding: base64\r\n"
                            b"Cc: \"Li\" <LI@Example.gov.cn>, wang@example.gov.cn\r\n"
                            b"Reply-To: <Reply@Example.gov.cn>\r\n"
                            b"In-Reply-To: <prev-1@example.gov.cn>\r\n"
                            b"References: <prev-0@example.gov.cn>\r\n <prev-1@example.gov.cn>\r\n")
    html = "<html><head><style>p{color:red}</style></head><body><p>本月<b>双公示</b>台账&amp;说明</p><br>无附件</body></html>"
    (HERE / "gb2312-subject-gbk-char.eml").write_bytes(raw_msg + b64(html.encode("gbk")) + CRLF)


def windows_gbk_zip() -> None:
    # Windows Explorer / 好压 / 2345压缩: GBK names without the UTF-8 flag, a folder, and
    # the junk macOS and Explorer leave behind
    members = [
        ("政策法规科/".encode("gbk"), b""),
        (("政策法规科/" + XLSX_NAME).encode("gbk"), xlsx_bytes()),
        (("政策法规科/" + XLS_NAME).encode("gbk"), XLS_BYTES),
        ("政策法规科/Thumbs.db".encode("gbk"), b"junk"),
        (b"__MACOSX/._x.xls", b"junk"),
        (b".DS_Store", b"junk"),
    ]
    zip_name = "11月报送材料.zip"
    head = (b'Content-Type: application/x-zip-compressed; name="' + word_b(zip_name, "gb18030") + b'"\r\n'
            b'Content-Disposition: attachment; filename="' + word_b(zip_name, "gb18030") + b'"\r\n')
    mixed("windows-gbk-zip", word_b("11月报送材料（压缩包）", "gb18030"),
          [text_part("压缩包内为本月材料。"), file_part(head, zip_of(members))])


def nested_zip() -> None:
    # a zip in a zip in a zip... five deep; only three levels may be opened
    inner = zip_of([(XLS_NAME.encode("gbk"), XLS_BYTES)])
    for level in range(5, 1, -1):
        inner = zip_of([(f"第{level}层.zip".encode("gbk"), inner)])
    head = (b'Content-Type: application/zip; name="=?utf-8?B?' + base64.b64encode("第1层.zip".encode()) + b'?="\r\n'
            b"Content-Disposition: attachment\r\n")
    mixed("nested-zip-5", b"nested", [file_part(head, inner)])


def encrypted() -> None:
    head = (b'Content-Type: application/zip; name="sealed.zip"\r\n'
            b'Content-Disposition: attachment; filename="sealed.zip"\r\n')
    broken = zip_of([(XLS_NAME.encode("gbk"), XLS_BYTES * 4)])
    broken = broken[:40] + broken[-60:]   # local data cut out: central directory left dangling
    head_broken = (b'Content-Type: application/zip; name="broken.zip"\r\n'
                   b'Content-Disposition: attachment; filename="broken.zip"\r\n')
    mixed("encrypted-zip", word_b("加密的压缩包", "utf-8"),
          [text_part("密码另行通知。"), file_part(head, encrypted_zip()), file_part(head_broken, broken)])


def forwarded_zip() -> None:
    # 转发 of a 转发: the xlsx sits in a zip inside the innermost forwarded message
    zipped = zip_of([(XLSX_NAME.encode("gbk"), xlsx_bytes())])
    zip_head = (b'Content-Type: application/zip; name="' + word_b("材料.zip", "gbk") + b'"\r\n'
                b'Content-Disposition: attachment; filename="' + word_b("材料.zip", "gbk") + b'"\r\n')
    b1 = b"----=_inner_1"
    inner = (b"From: zhengce@example.gov.cn\r\nTo: keyuan@example.gov.cn\r\n"
             b"Subject: " + word_b("政策法规科11月信用监管材料", "gbk") + b"\r\n"
             b"Date: Fri, 27 Nov 2026 17:00:00 +0800\r\nMIME-Version: 1.0\r\n"
             b'Content-Type: multipart/mixed; boundary="' + b1 + b'"\r\n\r\n'
             + multipart(b1, [text_part("科长：材料见附件。"), file_part(zip_head, zipped)]))
    b2 = b"----=_middle_2"
    middle = (b"From: keyuan@example.gov.cn\r\nTo: kezhang@example.gov.cn\r\n"
              b"Subject: " + word_b("Fwd: 政策法规科11月信用监管材料", "utf-8") + b"\r\n"
              b"MIME-Version: 1.0\r\n"
              b'Content-Type: multipart/mixed; boundary="' + b2 + b'"\r\n\r\n'
              + multipart(b2, [text_part("转给您。", "utf-8"),
                               b"Content-Type: message/rfc822\r\n\r\n" + inner]))
    mixed("forwarded-zip-xlsx", word_b("转发：政策法规科材料", "utf-8"),
          [text_part("请信用监管科查收。", "utf-8"),
           b'Content-Type: message/rfc822\r\nContent-Disposition: attachment; filename="fwd.eml"\r\n\r\n' + middle])


def inline_images() -> None:
    # Foxmail-style HTML mail: a logo referenced by cid (inline), a pasted image shown
    # inline without a name (inline), a photo attached (not inline), an unnamed PDF
    png = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                        "1f15c4890000000d49444154789c6360000002000100ffff03000006000557bfabd40000000049454e44ae426082")
    rel, alt = b"----=_rel", b"----=_alt"
    html = '<html><body><p>现场检查照片见附件</p><img src="cid:logo@fixture"></body></html>'
    alternative = (b'Content-Type: multipart/alternative; boundary="' + alt + b'"\r\n\r\n'
                   + multipart(alt, [text_part("现场检查照片见附件", "utf-8"),
                                     b"Content-Type: text/html; charset=utf-8\r\n\r\n" + html.encode() + CRLF]))
    related = (b'Content-Type: multipart/related; boundary="' + rel + b'"\r\n\r\n'
               + multipart(rel, [alternative,
                                 file_part(b'Content-Type: image/png; name="logo.png"\r\nContent-ID: <logo@fixture>\r\n', png)]))
    parts = [
        related,
        file_part(b"Content-Type: image/png\r\nContent-Disposition: inline\r\n", png),
        file_part(b'Content-Type: image/jpeg; name="' + word_b("现场照片1.jpg", "utf-8") + b'"\r\n'
                  b"Content-Disposition: attachment\r\n", b"\xff\xd8\xff\xe0fixture"),
        file_part(b"Content-Type: application/pdf\r\n", b"%PDF-1.4\n%unnamed\n"),
    ]
    mixed("inline-images", word_b("检查照片", "utf-8"), parts)


def main() -> None:
    for make in (mutt_split, outlook_2047_in_param, sendemail_raw_gbk, mpack_raw_gbk,
                 mailutils_raw_utf8, rfc2231_gbk, big5_2047, gb2312_subject_gbk_char,
                 windows_gbk_zip, nested_zip, encrypted, forwarded_zip, inline_images):
        make()
    for p in sorted(HERE.glob("*.eml")):
        print(f"{p.stat().st_size:8d}  {p.name}")


if __name__ == "__main__":
    main()
