"""Every message of the public robustness corpus (../shared/corpus) goes through parse_message.

Each file must give an Incoming without an exception; the files MANIFEST.tsv singles out
as interesting are checked for exact values. The three raw TNEF streams there are not
RFC 822 at all: they too must parse, and are also unpacked directly.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from mailbot.intake import unpack
from mailbot.model import Attachment, Incoming
from mailbot.intake.parse import parse_message

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"
_NOT_MAIL = ("LICENSE", "README", "NOTICE", "COPYING", "MANIFEST.tsv")


def _corpus_files() -> list[str]:
    if not CORPUS.is_dir():
        return ["<corpus missing>"]   # the shared_dir fixture then skips (or fails in CI)
    return sorted(str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*")
                  if p.is_file() and not p.name.startswith(_NOT_MAIL))


@pytest.fixture(scope="module")
def corpus(shared_dir) -> Path:
    return shared_dir / "corpus"


def parse(corpus: Path, rel: str) -> Incoming:
    return parse_message((corpus / rel).read_bytes())


def names(m: Incoming) -> list[str]:
    return [a.filename for a in m.attachments]


@pytest.mark.parametrize("rel", _corpus_files())
def test_every_corpus_file_parses(corpus, rel):
    m = parse(corpus, rel)
    assert isinstance(m, Incoming)
    assert not any(n.startswith("parser failed") for n in m.notes), m.notes
    assert all(isinstance(a.content, bytes) and a.filename for a in m.attachments)


def test_corpus_is_all_there(corpus):
    assert len(_corpus_files()) >= 170


# ---------------------------------------------------------------- the interesting ones

EXPECTED: dict[str, dict] = {
    # raw 8-bit UTF-8 Chinese name, unquoted, Foxmail-style boundary
    "jhillyerd-enmime/mime-bad-8bit-filename.raw": {"names": ["管理.doc"], "subject": "Malformed test"},
    # RFC 2047 word glued to plain text inside a quoted filename (Sparrow)
    "MailCore-mailcore2/4489-to-field-chinese.eml": {"names": ["测试费 1009.xls"], "subject": "测试费表格"},
    # QQMail: gb18030 words in From and Subject
    "MailCore-mailcore2/1021-chinese.eml": {"subject": "哈哈", "from": ("wujyou@qq.com", "向左"), "text": "哈哈"},
    # Outlook Express, labelled gb2312 with a GBK-only character, in two words
    "SpamScope-mail-parser/mail_test_9": {"subject_has": "\u5c44", "subject_starts": "我把镜头拉近些"},
    # labelled GB2312, actually UTF-8; the To holds a real UTF-8 ü
    "SpamScope-mail-parser/mail_test_12": {"subject": "代开各地增值税发票", "from": ("baoguan@hotmail.com", "张先生"),
                                           "to": ("danglüe@email.com",), "text_starts": "你好！我公司可代开"},
    # UTF-8 Thai split across B-words: bytes joined before decoding
    "MailCore-mailcore2/broken-utf8.eml": {
        "subject": "ระเบิดความมันส์เต็มพิกัด TRANSFORMERS 4 มันส์ครบทุกระบบ ที่เดียวในเมืองไทย"},
    # Big5 read as latin-1 and re-encoded as UTF-8 by a relay, undone via the body's charset
    "mikel-mail/content_transfer_encoding_empty.eml": {"subject_has": "大家說英語"},
    "mikel-mail/attachment_nonascii_filename.eml": {"names": ["ciële.txt"]},
    "mikel-mail/attachment_with_quoted_filename.eml": {"names": ["Eelanalüüsi päring.jpg"]},
    "mikel-mail/japanese_attachment_long_name.eml": {"names": ["かきくけこかきくけこかきくけこかきくけこかきくけこ.txt"]},
    "rspamd-rspamd/fname.eml": {"names": ["[삼성생명]2020.08.14 데일리 경제뉴스.pdf",
                                          "01029_402110_10620_RGT06902_PRT180ML_20200803_101820.pdf"]},
    "MailCore-mailcore2/1640-no-charset.eml": {"subject": "[멜론] 이용약관 및 서비스 상품약관 변경 안내"},
    "apache-spamassassin/nice/cjk/gb2312.2": {"subject": "RE: 装硬碟问题"},
    "ddeboer-imap/gbk_charset.eml": {"text": "Hi"},
    "demisto-parse-emails/chinese_gbk_encoding.eml": {"text": "你好，中国"},
    "demisto-parse-emails/chinese_gb2312_encoding.eml": {"text": "你好，我是程序员，很高兴认识你"},
    "jhillyerd-enmime/mime-unquoted-tspecials-param.raw": {"names": ["Invoice_(302232133150612).pdf"]},
    # paths in names are never kept
    "apache-james-mime4j/multi-badnames.msg": {"names": ["bar", "foo bar", "foobar"]},
    "php-mime-mail-parser/m0027": {"names": ["1234.txt"]},
    # the root part is the attachment; its name was already U+FFFD mojibake when sent
    "mailgun-flanker/outlook-express.eml": {"count": 1, "content_type": "application/octet-stream"},
    "php-mime-mail-parser/issue408.eml": {"count": 328},
    "nodemailer-mailparser/nodemailer.eml": {
        "inline": [("image.png", True), ("nyan cat ✔.gif", True), ("notes.txt", False)]},
    "apache-spamassassin/nice/mime9": {
        "origins": [("NeverlandUniversity.jpg", ("转发邮件'Fwd: Fw: New University....'", "转发邮件'Fw: New University....'"))]},
    "ddeboer-imap/embedded_email_without_content_disposition.eml": {
        "origins": [("file.jpg", ()), ("file1.xlsx", ("转发邮件'embedded_message_subject'",)),
                    ("file2.xlsx", ("转发邮件'embedded_message_subject'",)), ("file3.xlsx", ()), ("file4.zip", ())]},
    # Outlook's winmail.dat: its one file comes out, with winmail.dat as origin
    "MailCore-mailcore2/1808-winmail-dat.eml": {"origins": [("GIR - LINUX.doc", ("winmail.dat",))]},
    # a winmail.dat holding no file is dropped, with a note
    "jstedfast-MimeKit/ukr.eml": {"count": 0, "note": "winmail.dat: winmail.dat holds no files; dropped"},
    # labelled application/ms-tnef but holds a PNG: an ordinary file
    "zbateson-mail-mime-parser/m4006.txt": {"names": ["winmail.dat"]},
    # four nested forwards: the fourth stays whole
    "MailCore-mailcore2/jwz/30": {"codes": [("Test for Bug 4498.eml", ["forward-too-deep"])]},
    "python-cpython/msg_07.txt": {"names": ["dingusfish.gif"]},
    "mikel-mail/content_transfer_encoding_x_uuencode.eml": {"names": ["PGP_Cmts_on_12-14-01_Pkg.doc"]},
}


def _check(m: Incoming, want: dict) -> None:
    if "names" in want:
        assert names(m) == want["names"]
    if "count" in want:
        assert len(m.attachments) == want["count"]
    if "subject" in want:
        assert m.subject == want["subject"]
    if "subject_has" in want:
        assert want["subject_has"] in m.subject and "\ufffd" not in m.subject
    if "subject_starts" in want:
        assert m.subject.startswith(want["subject_starts"])
    if "from" in want:
        assert (m.from_addr, m.from_name) == want["from"]
    if "to" in want:
        assert m.to == want["to"]
    if "text" in want:
        assert m.text == want["text"]
    if "text_starts" in want:
        assert m.text.startswith(want["text_starts"]) and "\ufffd" not in m.text
    if "content_type" in want:
        assert m.content_type == want["content_type"]
    if "inline" in want:
        assert [(a.filename, a.inline) for a in m.attachments] == want["inline"]
    if "origins" in want:
        assert [(a.filename, a.origin) for a in m.attachments] == want["origins"]
    if "codes" in want:
        assert [(a.filename, [p.code for p in a.problems]) for a in m.attachments] == want["codes"]
    if "note" in want:
        assert want["note"] in m.notes


@pytest.mark.parametrize("rel", sorted(EXPECTED))
def test_interesting_corpus_files(corpus, rel):
    _check(parse(corpus, rel), EXPECTED[rel])


def test_winmail_dat_contents_are_intact(corpus):
    [doc] = parse(corpus, "MailCore-mailcore2/1808-winmail-dat.eml").attachments
    assert len(doc.content) == 202240 and doc.content.startswith(bytes.fromhex("d0cf11e0a1b11ae1"))
    assert doc.declared_type == "application/msword" and not doc.problems


# ---------------------------------------------------------------- raw TNEF streams

@pytest.mark.parametrize(("rel", "files"), [
    ("jstedfast-MimeKit/two-files.tnef", ["AUTHORS", "README"]),
    ("jstedfast-MimeKit/winmail.tnef", ["Untitled Attachment", "Untitled Attachment"]),
    ("jstedfast-MimeKit/unicode-mapi-attr.tnef", ["example.dat"]),
])
def test_raw_tnef_streams_unpack(corpus, rel, files):
    data = (corpus / rel).read_bytes()
    got, _ = unpack.tnef_files(data)
    assert [name for name, _, _ in got] == files
    expanded = unpack.expand(Attachment(filename="winmail.dat", content=data), unpack.Budget())
    assert [(a.filename, a.origin) for a in expanded.attachments] == [(f, ("winmail.dat",)) for f in files]


def test_two_files_tnef_contents(corpus):
    got, _ = unpack.tnef_files((corpus / "jstedfast-MimeKit/two-files.tnef").read_bytes())
    (authors, a_data, _), (readme, r_data, _) = got
    assert (authors, len(a_data), readme, len(r_data)) == ("AUTHORS", 244, "README", 893)
