"""Real mail servers for tests: Dovecot (IMAP, STARTTLS, IMAPS, LMTP) and an SMTP relay delivering into it.

The servers themselves live in mailbot/devservers.py (`mailbot demo --imap` runs the same
Dovecot launcher and relay); this module adds the pytest side: fixtures, and skip-or-fail
where a server is missing.

Load it with `pytest_plugins = ["mailservers"]` (tests/ is on sys.path because tests/conftest.py
lives there). Fixtures:

  test_cert          session: a self-signed certificate for 127.0.0.1 (openssl), or None
  dovecot            a running Dovecot of its own on free loopback ports, fresh mail, stopped after the test
  make_smtp_relay    factory: make_smtp_relay(auth=("user", "pw"), security="plain|starttls|ssl")
  smtp_relay         an aiosmtpd relay on a free loopback port that delivers into `dovecot` over LMTP
  cyrus              a running Cyrus IMAP 3.6 of its own (plain IMAP, LMTP), folders under "INBOX."
  imap_server        each of them in turn (parametrized "dovecot", "cyrus"): the mail-path tests
                     that must hold on any server (tests/test_mailbox.py, tests/test_imap_servers.py)
  imap_smtp_relay    a plain relay delivering into `imap_server`

Every user exists (static userdb, allow_all_users) and logs in with PASSWORD. Where Dovecot or
openssl is missing, the tests that need them are skipped with the reason, or fail where
MAILBOT_REQUIRE_SERVERS=1 (.ci/run). Why the Dovecot is set up as it is (nobody-owned mail under
/tmp, `dovecot -F`, no auth penalty): see mailbot/devservers.py.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from mailbot.dev import devservers
from mailbot.dev.devservers import (DOVECOT, HOST, PASSWORD, Certificate, Cyrus, Dovecot, Received, cyrus_missing,
                                    dovecot_missing, free_port)

__all__ = [
    "PASSWORD", "HOST", "DOVECOT", "TestCert", "Dovecot", "SmtpRelay", "Received", "free_port",
    "make_cert", "dovecot_missing", "test_cert", "dovecot", "make_smtp_relay", "smtp_relay",
    "Cyrus", "cyrus_missing", "cyrus", "imap_server", "imap_smtp_relay",
]


def _need(reason: str):
    try:
        from conftest import need
    except ImportError:                        # loaded from elsewhere: the same rule, inline
        if os.environ.get("MAILBOT_REQUIRE_SERVERS") == "1":
            pytest.fail(f"required server missing (MAILBOT_REQUIRE_SERVERS=1): {reason}")
        pytest.skip(reason)
    need(reason)


@dataclass(frozen=True)
class TestCert(Certificate):
    __test__ = False                           # not a test class, whatever pytest thinks of the name


def make_cert(directory: Path) -> TestCert | None:
    """A self-signed EC certificate for 127.0.0.1 and localhost, made by openssl; None without openssl."""
    c = devservers.make_cert(directory)
    return TestCert(c.cert, c.key) if c is not None else None


class SmtpRelay(devservers.LmtpRelay):
    """An SMTP server on a free loopback port that hands every accepted message to Dovecot over LMTP.

    SmtpRelay(dovecot, auth=None, security="plain", cert=None); refuse(451) / refuse(550, times=2) /
    refuse(421, at="RCPT") make it answer with that code (for the sender's retry tests);
    accept() ends that. `received` lists what it accepted.
    """

    def __init__(self, dovecot: Dovecot | Cyrus | None, *, auth: tuple[str, str] | None = None,
                 security: str = "plain", cert: Certificate | None = None):
        super().__init__(dovecot, auth=auth, security=security, cert=cert, server_hostname="relay.test")


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="session")
def test_cert():
    """A self-signed certificate for 127.0.0.1, or None where openssl is missing."""
    d = Path(tempfile.mkdtemp(prefix="mailbot-cert-", dir="/tmp"))
    os.chmod(d, 0o755)
    try:
        yield make_cert(d)
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def dovecot(test_cert):
    """A running Dovecot with empty mail; see mailbot.dev.devservers.Dovecot."""
    yield from _running(Dovecot, dovecot_missing, test_cert)


def _running(server_class, missing, test_cert):
    reason = missing()
    if reason:
        _need(reason)
    server = server_class(test_cert)
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def cyrus(test_cert):
    """A running Cyrus with empty mail; see mailbot.dev.devservers.Cyrus."""
    yield from _running(Cyrus, cyrus_missing, test_cert)


@pytest.fixture(params=["dovecot", "cyrus"])
def imap_server(request):
    """Dovecot, then Cyrus: the same test against each real server."""
    return request.getfixturevalue(request.param)


@pytest.fixture
def make_smtp_relay(dovecot, test_cert):
    relays: list[SmtpRelay] = []

    def make(*, auth: tuple[str, str] | None = None, security: str = "plain") -> SmtpRelay:
        if security != "plain" and test_cert is None:
            _need("openssl is not installed: no certificate for an SMTP relay with TLS")
        relay = SmtpRelay(dovecot, auth=auth, security=security, cert=test_cert).start()
        relays.append(relay)
        return relay

    yield make
    for r in relays:
        r.stop()


@pytest.fixture
def smtp_relay(make_smtp_relay) -> SmtpRelay:
    return make_smtp_relay()


@pytest.fixture
def imap_smtp_relay(imap_server):
    """A plain SMTP relay delivering into `imap_server` (Dovecot or Cyrus) over LMTP."""
    relay = SmtpRelay(imap_server).start()
    yield relay
    relay.stop()
