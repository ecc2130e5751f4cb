"""The RFC 5322 builder (writing/common.make_message), read back by the email package as a mail
client would: headers, threading, bodies and attachment names survive; nothing a value carries
(a line break in a configured name, a long Chinese file name) breaks a line or adds a header."""
from __future__ import annotations

import datetime as dt
import email
import email.policy

from mailbot.writing.common import make_message

NOW = dt.datetime(2026, 11, 20, 10, tzinfo=dt.timezone(dt.timedelta(hours=8)))


def build(**kw) -> bytes:
    args = dict(sender="xyjgk@cqscjg.example.cn", sender_name="信用监管科", to=["政策法规科 <fagui@cqscjg.example.cn>"],
                subject="【已受理】回执XY20261120-0001 Re: 政策法规科2026年10月报送材料", plain="政策法规科：\n\n    您好！\n",
                message_id="XY20261120-0001.abc@cqscjg.example.cn", now=NOW)
    args.update(kw)
    return make_message(**args)


def read(raw: bytes):
    return email.message_from_bytes(raw, policy=email.policy.default)


def test_headers_threading_and_bodies_read_back():
    raw = build(in_reply_to="orig@qq.com", references=["first@qq.com"], cc=["张伟 <zhang.wei@cqscjg.example.cn>"],
                reply_to="信用监管科 <xyjgk@cqscjg.example.cn>", table="<table><tr><td>表</td></tr></table>")
    m = read(raw)
    assert m["Subject"] == "【已受理】回执XY20261120-0001 Re: 政策法规科2026年10月报送材料"
    assert m["From"].addresses[0].display_name == "信用监管科"
    assert m["To"].addresses[0].addr_spec == "fagui@cqscjg.example.cn"
    assert m["Cc"].addresses[0].display_name == "张伟"
    assert m["Message-ID"] == "<XY20261120-0001.abc@cqscjg.example.cn>"
    assert m["In-Reply-To"] == "<orig@qq.com>" and m["References"].split() == ["<first@qq.com>", "<orig@qq.com>"]
    assert m["Auto-Submitted"] == "auto-replied"
    assert m.get_body(("plain",)).get_content() == "政策法规科：\n\n    您好！\n"
    assert "<table>" in m.get_body(("html",)).get_content()
    assert not m.defects
    assert all(len(line) <= 78 for line in raw.split(b"\n")[:raw.index(b"\n\n")])


def test_a_long_chinese_file_name_is_cut_into_rfc2231_pieces_and_reads_back_whole():
    name = "政策法规科2026年11月信用监测佐证材料（双公示台账、信用修复台账、信用承诺台账）模板.xlsx"
    raw = build(attachments=[(name, b"PK\x03\x04" + bytes(300), "application/zip")])
    [att] = list(read(raw).iter_attachments())
    assert att.get_filename() == name and att.get_content() == b"PK\x03\x04" + bytes(300)
    assert max(len(line) for line in raw.split(b"\n")) <= 78


def test_a_line_break_in_the_configured_name_adds_no_header():
    raw = build(sender_name="信用监管科\r\nBcc: victim@example.com")
    m = read(raw)
    assert m["Bcc"] is None and "victim@example.com" not in str(m["From"].addresses[0].addr_spec)
    assert m["From"].addresses[0].addr_spec == "xyjgk@cqscjg.example.cn"


def test_no_usable_address_writes_no_empty_header_and_long_lines_go_base64():
    raw = build(cc=[""], plain="长" * 400)
    m = read(raw)
    assert m["Cc"] is None
    assert m.get_body(("plain",))["Content-Transfer-Encoding"] == "base64"
    assert m.get_body(("plain",)).get_content().rstrip("\n") == "长" * 400
