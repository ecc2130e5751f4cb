"""The real-server harness itself: Dovecot starts fast, takes mail over LMTP, shows it over IMAP,
wakes IDLE promptly, survives a restart; the SMTP relay delivers into it, refuses on request and
can demand AUTH."""
from __future__ import annotations

import email.policy
import smtplib
import ssl
import threading
import time
from email.message import EmailMessage

import pytest

# The harness (tests/mailservers.py); names from it are imported inside the tests, after pytest
# has loaded it as a plugin (importing it first would stop pytest rewriting its asserts).
pytest_plugins = ["mailservers"]


def _mail(subject: str, to: str = "xyjgk@example.test", sender: str = "fagui@example.test",
          mid: str | None = None) -> bytes:
    m = EmailMessage()
    m["From"] = sender
    m["To"] = to
    m["Subject"] = subject
    m["Message-ID"] = mid or f"<{abs(hash((subject, time.monotonic_ns())))}@example.test>"
    m.set_content(f"{subject}\n")
    return m.as_bytes(policy=email.policy.SMTP)


def test_dovecot_starts_well_under_a_second_and_delivers(dovecot):
    assert dovecot.start_seconds is not None and dovecot.start_seconds < 1.0, dovecot.start_seconds
    raw = _mail("报送材料 2026年11月")
    dovecot.deliver("xyjgk@example.test", raw)
    got = dovecot.messages("xyjgk@example.test")
    assert len(got) == 1 and got[0].endswith(raw)          # LMTP prepends Return-Path, Delivered-To
    assert "\\Seen" not in dovecot.flags("xyjgk@example.test")[1]
    assert dovecot.messages("someone-else@example.test") == []


def test_the_mail_folder_is_nobodys_under_tmp(dovecot):
    import os
    dovecot.deliver("u@example.test", _mail("x"))
    assert str(dovecot.root).startswith("/tmp/mailbot-dovecot-")
    if os.geteuid() == 0:
        assert dovecot.maildir("u@example.test").stat().st_uid == 65534


def test_idle_wakes_within_two_seconds_of_a_delivery(dovecot):
    with dovecot.mailbox("u@example.test") as mb:
        delivered = {}

        def later():
            time.sleep(0.3)
            delivered["at"] = time.monotonic()
            dovecot.deliver("u@example.test", _mail("wake up"))

        t = threading.Thread(target=later)
        t.start()
        mb.idle.start()
        lines = mb.idle.poll(timeout=5)
        woke = time.monotonic()
        mb.idle.stop()
        t.join()
    assert any(b"EXISTS" in line for line in lines), lines
    latency = woke - delivered["at"]
    print(f"IDLE woke {latency:.3f} s after the delivery")
    assert latency < 2.0


def test_move_is_announced_only_after_login_and_imap_tools_keeps_the_old_list(dovecot):
    """The trap mailbox.py works around: imap-tools would COPY + EXPUNGE instead of MOVE."""
    from imap_tools import MailBoxUnencrypted
    mb = MailBoxUnencrypted(dovecot.host, dovecot.imap_port)
    assert "MOVE" not in mb.client.capabilities
    mb.login("u@example.test", dovecot.password)
    try:
        assert "MOVE" not in mb.client.capabilities      # stale: what imap-tools' move() looks at
        mb.client._get_capabilities()
        assert "MOVE" in mb.client.capabilities
    finally:
        mb.logout()


def test_restart_keeps_ports_and_mail(dovecot):
    dovecot.deliver("u@example.test", _mail("before"))
    ports = (dovecot.imap_port, dovecot.imaps_port)
    t0 = time.monotonic()
    dovecot.stop()
    with pytest.raises(OSError):
        dovecot.mailbox("u@example.test")
    dovecot.start()
    print(f"graceful stop + start: {time.monotonic() - t0:.2f} s")
    assert (dovecot.imap_port, dovecot.imaps_port) == ports
    assert len(dovecot.messages("u@example.test")) == 1


def test_starttls_and_imaps_with_the_test_certificate(dovecot, test_cert):
    if test_cert is None:
        pytest.skip("openssl is not installed: Dovecot runs without TLS")
    from imap_tools import MailBox, MailBoxStartTls
    dovecot.deliver("u@example.test", _mail("tls"))
    with MailBoxStartTls(dovecot.host, dovecot.imap_port, ssl_context=test_cert.client_context()).login(
            "u@example.test", dovecot.password) as mb:
        assert isinstance(mb.client.sock, ssl.SSLSocket)
        assert len(mb.uids()) == 1
    with MailBox(dovecot.host, dovecot.imaps_port, ssl_context=test_cert.client_context()).login(
            "u@example.test", dovecot.password) as mb:
        assert len(mb.uids()) == 1
    with pytest.raises(ssl.SSLCertVerificationError):    # an untrusted certificate is refused
        MailBox(dovecot.host, dovecot.imaps_port, ssl_context=ssl.create_default_context())


def test_a_wrong_password_is_refused_at_once(dovecot):
    from imap_tools.errors import MailboxLoginError
    t0 = time.monotonic()
    with pytest.raises(MailboxLoginError):
        dovecot.mailbox("u@example.test", password="wrong")
    assert time.monotonic() - t0 < 1.0                   # auth_failure_delay = 0


def test_smtp_relay_delivers_into_dovecot(smtp_relay, dovecot):
    raw = _mail("经SMTP投递", to="fagui@example.test", sender="xyjgk@example.test")
    with smtp_relay.client() as c:
        c.sendmail("xyjgk@example.test", ["fagui@example.test", "zscq@example.test"], raw)
    smtp_relay.wait_for(1)
    for user in ("fagui@example.test", "zscq@example.test"):
        got = dovecot.messages(user)
        assert len(got) == 1 and got[0].endswith(raw)
    assert smtp_relay.received[0].rcpt_tos == ("fagui@example.test", "zscq@example.test")


def test_smtp_relay_refuses_on_request(smtp_relay, dovecot):
    raw = _mail("retry me")
    smtp_relay.refuse(451, times=2)
    for _ in range(2):
        with smtp_relay.client() as c, pytest.raises(smtplib.SMTPDataError) as e:
            c.sendmail("a@example.test", ["u@example.test"], raw)
        assert e.value.smtp_code == 451
    with smtp_relay.client() as c:                        # the third attempt goes through
        c.sendmail("a@example.test", ["u@example.test"], raw)
    assert len(dovecot.messages("u@example.test")) == 1

    smtp_relay.refuse(550, "5.1.1 No such user", at="RCPT")
    with smtp_relay.client() as c, pytest.raises(smtplib.SMTPRecipientsRefused) as e:
        c.sendmail("a@example.test", ["u@example.test"], raw)
    assert e.value.recipients["u@example.test"][0] == 550
    smtp_relay.accept()
    with smtp_relay.client() as c:
        c.sendmail("a@example.test", ["u@example.test"], raw)
    assert len(dovecot.messages("u@example.test")) == 2
    assert smtp_relay.refused == [(451, "DATA"), (451, "DATA"), (550, "RCPT")]


def test_smtp_relay_with_auth(make_smtp_relay, dovecot):
    relay = make_smtp_relay(auth=("xyjgk@example.test", "secret"))
    with smtplib.SMTP(relay.host, relay.port) as c, pytest.raises(smtplib.SMTPSenderRefused):
        c.sendmail("a@example.test", ["u@example.test"], _mail("no auth"))
    with smtplib.SMTP(relay.host, relay.port) as c, pytest.raises(smtplib.SMTPAuthenticationError):
        c.login("xyjgk@example.test", "wrong")
    with relay.client() as c:
        c.sendmail("xyjgk@example.test", ["u@example.test"], _mail("with auth"))
    assert relay.received[-1].auth_user == "xyjgk@example.test"
    assert len(dovecot.messages("u@example.test")) == 1


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_smtp_relay_with_tls(make_smtp_relay, dovecot, security):
    relay = make_smtp_relay(security=security, auth=("xyjgk@example.test", "secret"))
    with relay.client() as c:
        c.sendmail("xyjgk@example.test", ["u@example.test"], _mail(security))
    assert len(dovecot.messages("u@example.test")) == 1


def test_two_dovecots_side_by_side(test_cert):
    from mailservers import Dovecot, dovecot_missing
    if dovecot_missing():
        pytest.skip(dovecot_missing())
    with Dovecot(test_cert) as a, Dovecot(test_cert) as b:
        a.deliver("u@example.test", _mail("a"))
        assert len(a.messages("u@example.test")) == 1
        assert b.messages("u@example.test") == []
        root = a.root
    assert not root.exists()
