"""Who sent it and where the answer goes: Reply-To forgery, strict From parsing, Authentication-Results.

Pure tests call parse_message + decide() on a real case (swaks_utf8_raw.eml, accepted for 政策法规科)
with its From header rewritten; the end-to-end ones go through `mailbot ingest --json`.
"""
from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
import yaml

from mailbot.app.config import ConfigError, config_from_mapping
from mailbot.app.wiring import build
from mailbot.intake.parse import parse_message
from mailbot.model import Authentication, Outcome
from mailbot.pipeline import decide
from mailbot.writing.receipt import draft_reply

from conftest import DATA, ROOT
from test_decide import intake  # noqa: F401 - the fixture: the intake built from config.example.yaml
from test_pipeline import ingest, write_config

NOV = dt.datetime.fromisoformat("2026-11-20T10:00:00+08:00")
BASE = (DATA / "cases" / "swaks_utf8_raw.eml").read_bytes()
FAGUI = "fagui@cqscjg.example.cn"
FAGUI_ALL = ("fagui@cqscjg.example.cn", "zhang.wei@cqscjg.example.cn")     # 政策法规科 in config.example.yaml
GOOD_AR = ("Authentication-Results: mail.example.cn; spf=pass smtp.mailfrom=fagui@cqscjg.example.cn;"
           " dkim=pass header.d=cqscjg.example.cn; dmarc=pass header.from=cqscjg.example.cn")


def message(*headers: str, tag: str = "1") -> bytes:
    """The case with its From line replaced by `headers` (raw lines, in order) and its own Message-Id."""
    raw = BASE.replace(b"From: zhang.wei@cqscjg.example.cn\r\n", "".join(h + "\r\n" for h in headers).encode("utf-8"))
    assert raw != BASE
    return raw.replace(b"<20261126130259.011582@vm>", f"<trust-{tag}@test>".encode())


@pytest.fixture(scope="module")
def checked(intake):
    return dataclasses.replace(intake, authentication=Authentication("mail.example.cn", "dmarc"))


def run(raw: bytes, intake):
    incoming = parse_message(raw, limits=intake.rules.limits)
    return incoming, decide(incoming, intake, NOV)


def letter_text(verdict, incoming, intake):
    letter = draft_reply(verdict=verdict, incoming=incoming, receipt_no="XY-1", rules=intake.rules,
                         mailbox_address=intake.mailbox_address, mailbox_name=intake.mailbox_name,
                         received_at=NOV, now=NOV)
    import email
    import email.policy
    body = email.message_from_bytes(letter.raw, policy=email.policy.default).get_body(("plain",)).get_content()
    return letter, body


def codes(verdict):
    return [p.code for p in verdict.problems]


# ---------------------------------------------------------------- 1. Reply-To forgery

@pytest.mark.parametrize("header", ["Reply-To", "Mail-Followup-To"])
def test_reply_to_outside_the_section_is_ignored_and_the_letter_says_so(intake, header):
    incoming, v = run(message(f"From: {FAGUI}", f"{header}: attacker@evil.test"), intake)
    assert v.outcome is Outcome.ACCEPTED and v.section == "政策法规科"
    assert v.recipients == (FAGUI,) and v.copy_to == ()
    assert "reply-address-ignored" in codes(v)
    letter, body = letter_text(v, incoming, intake)
    assert letter.recipients == (FAGUI,)
    assert f"来信指定的回复地址attacker@evil.test不是贵科室登记的地址，本回执仍发往登记地址{FAGUI}。" in body


def test_reply_to_of_another_section_is_ignored_too(intake):
    _, v = run(message(f"From: {FAGUI}", "Reply-To: zhichan@cqscjg.example.cn"), intake)
    assert v.recipients == (FAGUI,) and "reply-address-ignored" in codes(v)


def test_reply_to_registered_to_the_same_section_is_followed(intake):
    _, v = run(message(f"From: {FAGUI}", "Reply-To: 张伟 <Zhang.Wei@cqscjg.example.cn>"), intake)
    assert v.outcome is Outcome.ACCEPTED
    assert v.recipients == ("zhang.wei@cqscjg.example.cn",) and "reply-address-ignored" not in codes(v)


def test_reply_to_cannot_hide_behind_a_display_name(intake):
    _, v = run(message(f"From: {FAGUI}", "Reply-To: zhang.wei@cqscjg.example.cn <attacker@evil.test>"), intake)
    assert v.recipients == (FAGUI,) and "reply-address-ignored" in codes(v)


def test_reply_to_forgery_end_to_end_the_receipt_goes_to_the_registered_address(tmp_path, capsys):
    eml = tmp_path / "forged.eml"
    eml.write_bytes(message(f"From: {FAGUI}", "Reply-To: attacker@evil.test", tag="e2e-1"))
    [got] = ingest(capsys, write_config(tmp_path), eml)
    assert got["outcome"] == "accepted" and got["section"] == "政策法规科"
    assert got["reply"]["to"] == [FAGUI] and got["reply"]["cc"] == []


# ---------------------------------------------------------------- 2. strict sender parsing

def test_an_address_in_the_display_name_is_not_the_sender(intake):
    incoming, v = run(message(f"From: {FAGUI} <attacker@evil.test>"), intake)
    assert incoming.from_addr == "attacker@evil.test"
    assert [p.code for p in incoming.sender_problems] == ["from-name-mismatch"]
    assert v.outcome is Outcome.QUARANTINED and v.section is None
    assert "from-name-mismatch" in codes(v) and "suspicious sender" in v.reason
    assert not any(i.status == "accepted" and v.outcome is not Outcome.QUARANTINED for i in v.items)
    # the section whose address was shown is told
    assert v.recipients == ("attacker@evil.test",) and set(v.copy_to) == set(FAGUI_ALL)
    letter, body = letter_text(v, incoming, intake)
    assert set(letter.recipients) == {"attacker@evil.test", *FAGUI_ALL}
    assert f"发件人显示名称中的地址{FAGUI}与实际发件地址attacker@evil.test不一致" in body


def test_encoded_words_after_an_address_leave_the_real_address(intake):
    incoming = parse_message(message("From: a@b =?utf-8?b?5byg5Lyf?= <attacker@evil.test>"))
    assert incoming.from_addr == "attacker@evil.test"
    assert incoming.from_name == "a@b 张伟"


@pytest.mark.parametrize("lines, code", [
    ([f"From: {FAGUI}, attacker@evil.test"], "from-several-addresses"),
    ([f"From: attacker@evil.test, {FAGUI}"], "from-several-addresses"),
    ([f"From: 张伟 <{FAGUI}> <attacker@evil.test>"], "from-several-addresses"),
    ([f"From: {FAGUI}", "From: attacker@evil.test"], "from-several-headers"),
])
def test_several_senders_are_quarantined_never_accepted(intake, lines, code):
    incoming, v = run(message(*lines), intake)
    assert code in [p.code for p in incoming.sender_problems]
    assert v.outcome is Outcome.QUARANTINED and v.section is None and code in codes(v)
    assert set(FAGUI_ALL) <= set(v.copy_to) | set(v.recipients)


def test_a_from_without_a_valid_address_has_no_sender(intake):
    # no address to answer: screened like any mail without a sender, and never accepted
    incoming, v = run(message(f"From: {FAGUI} attacker@evil.test"), intake)
    assert incoming.from_addr == "" and [p.code for p in incoming.sender_problems] == ["from-invalid"]
    assert FAGUI in incoming.from_claims
    assert v.outcome is Outcome.IGNORED and v.section is None and not v.reply


def test_an_ordinary_display_name_is_no_problem(intake):
    incoming, v = run(message(f'From: "张伟 ({FAGUI})" <{FAGUI.upper()}>'), intake)
    assert incoming.sender_problems == () and v.outcome is Outcome.ACCEPTED and v.section == "政策法规科"


def test_display_name_forgery_end_to_end_the_section_is_copied(tmp_path, capsys):
    eml = tmp_path / "forged.eml"
    eml.write_bytes(message(f"From: {FAGUI} <attacker@evil.test>", tag="e2e-2"))
    [got] = ingest(capsys, write_config(tmp_path), eml)
    assert got["outcome"] == "quarantined" and got["section"] is None
    assert got["reply"]["to"] == ["attacker@evil.test"] and set(got["reply"]["cc"]) == set(FAGUI_ALL)


# ---------------------------------------------------------------- 3. Authentication-Results

def test_authenticated_mail_from_a_registered_address_is_accepted(checked):
    _, v = run(message(GOOD_AR, f"From: {FAGUI}"), checked)
    assert v.outcome is Outcome.ACCEPTED and v.section == "政策法规科"


@pytest.mark.parametrize("lines", [
    [],                                                                    # no result at all
    ["Authentication-Results: mail.example.cn; dmarc=fail header.from=cqscjg.example.cn"],
    ["Authentication-Results: evil.test; dmarc=pass header.from=cqscjg.example.cn"],   # someone else's word
    # our server's (topmost) says fail; a copy the sender added below says pass
    ["Authentication-Results: mail.example.cn; dmarc=fail header.from=cqscjg.example.cn",
     "Authentication-Results: mail.example.cn; dmarc=pass header.from=cqscjg.example.cn"],
    ["Authentication-Results: MAIL.example.cn; dmarc=pass header.from=evil.test"],
], ids=["none", "fail", "other-server", "added-below", "other-domain"])
def test_unauthenticated_mail_claiming_a_registered_address_is_quarantined(checked, lines):
    incoming, v = run(message(*lines, f"From: {FAGUI}"), checked)
    assert v.outcome is Outcome.QUARANTINED and v.section is None
    assert "sender-not-authenticated" in codes(v)
    assert v.recipients == (FAGUI,) and v.copy_to == ("zhang.wei@cqscjg.example.cn",)


@pytest.mark.parametrize("require, result, ok", [
    ("dkim", "dkim=pass header.d=cqscjg.example.cn", True),
    ("dkim", "dkim=pass (signed by the attacker) header.d=evil.test", False),
    ("spf", "spf=pass smtp.mailfrom=bounce@cqscjg.example.cn", True),
    ("spf", "spf=pass smtp.mailfrom=attacker@evil.test", False),
    ("dmarc", "dkim=pass header.d=cqscjg.example.cn", False),
])
def test_the_required_method_must_pass_aligned_with_from(intake, require, result, ok):
    policy = dataclasses.replace(intake, authentication=Authentication("mail.example.cn", require))
    _, v = run(message(f"Authentication-Results: mail.example.cn 1; {result}", f"From: {FAGUI}"), policy)
    assert (v.outcome is Outcome.ACCEPTED) is ok


def test_unregistered_senders_are_not_asked_for_authentication(checked, intake):
    raw = message("From: someone@other.example.cn")
    assert run(raw, checked)[1] == run(raw, intake)[1]


def test_authentication_config_is_checked(tmp_path):
    data = yaml.safe_load((ROOT / "config.example.yaml").read_text(encoding="utf-8"))
    ok = config_from_mapping({**data, "authentication": {"authserv_id": "Mail.Example.cn", "require": "dkim"}},
                             "c.yaml", tmp_path)
    assert ok.authentication == Authentication("mail.example.cn", "dkim")
    assert build(ok, ROOT / "rules").intake.authentication == ok.authentication
    assert config_from_mapping(data, "c.yaml", tmp_path).authentication is None
    with pytest.raises(ConfigError) as e:
        config_from_mapping({**data, "authentication": {"authserv_id": "x", "require": "arc", "extra": 1}},
                            "c.yaml", tmp_path)
    assert "authentication.require" in str(e.value) and "authentication.extra" in str(e.value)


def test_authentication_end_to_end(tmp_path, capsys):
    config = write_config(tmp_path)
    config.write_text(config.read_text(encoding="utf-8")
                      + "\nauthentication: {authserv_id: mail.example.cn, require: dmarc}\n", encoding="utf-8")
    good, bad = tmp_path / "good.eml", tmp_path / "bad.eml"
    good.write_bytes(message(GOOD_AR, f"From: {FAGUI}", tag="e2e-3"))
    bad.write_bytes(message(f"From: {FAGUI}", tag="e2e-4"))
    got = ingest(capsys, config, good, bad)
    assert [g["outcome"] for g in got] == ["accepted", "quarantined"]
    assert got[1]["reply"]["to"] == [FAGUI] and got[1]["reply"]["cc"] == ["zhang.wei@cqscjg.example.cn"]
