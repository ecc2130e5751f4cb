"""RFC 3834 screening: what must never be answered, and what must."""
import pytest

from mailbot.model import Incoming
from mailbot.intake.screen import screen

OWN = {"xyjgk@cqscjg.example.cn"}


def msg(subject="2026年11月双公示台账", from_addr="fagui@cqscjg.example.cn", content_type="multipart/mixed", **headers):
    hs = {k.replace("_", "-").lower(): (v,) for k, v in headers.items()}
    return Incoming(message_id="a@b", subject=subject, from_addr=from_addr, from_name="", to=(), cc=(), reply_to=(),
                    date=None, in_reply_to=None, references=(), headers=hs, content_type=content_type, text="",
                    attachments=())


def test_a_sections_ordinary_mail_passes():
    assert screen(msg(), OWN) is None
    assert screen(msg(auto_submitted="no"), OWN) is None


@pytest.mark.parametrize("m, code", [
    (msg(auto_submitted="auto-replied"), "auto-submitted"),
    (msg(auto_submitted="auto-generated"), "auto-submitted"),
    (msg(precedence="bulk"), "precedence"),
    (msg(precedence="auto_reply"), "precedence"),
    (msg(list_id="<chinese.lists.debian.org>"), "list"),
    (msg(list_unsubscribe="<mailto:x@y>"), "list"),
    (msg(content_type="multipart/report"), "bounce"),
    (msg(from_addr="MAILER-DAEMON@mx.example.cn".lower()), "bounce"),
    (msg(from_addr="postmaster@example.cn"), "bounce"),
    (msg(from_addr=""), "bounce"),
    (msg(return_path="<>"), "bounce"),
    (msg(from_addr="xyjgk@cqscjg.example.cn"), "own-mail"),
    (msg(x_mailbot="1"), "own-mail"),
    (msg(subject="自动回复: 2026年11月双公示台账"), "auto-reply"),
    (msg(subject="Out of Office: 材料"), "auto-reply"),
    (msg(x_autoreply="yes"), "auto-reply"),
])
def test_machine_mail_is_ignored_with_its_reason(m, code):
    s = screen(m, OWN)
    assert s is not None and s.code == code and s.reason


def test_own_mail_wins_over_other_reasons():
    # our own receipt carries Auto-Submitted too; the more precise reason is reported
    assert screen(msg(from_addr="xyjgk@cqscjg.example.cn", auto_submitted="auto-replied"), OWN).code == "own-mail"
