"""Development mail servers on the loopback interface: what `mailbot demo` and the tests run against.

These are NOT servers for a deployment. Everything here listens on 127.0.0.1 only, takes any
recipient, and (Dovecot) lets every user log in with one fixed password. They exist so that
mailbot's whole mail path can run on a machine with nothing set up:

  MaildirSMTP  an aiosmtpd server on a free loopback port that delivers every accepted message
               into `<root>/<recipient address>/`, a Maildir per RCPT (the demo's default mode:
               no mail server needed; mailbot reads the credit section's Maildir directly)
  Dovecot      a Dovecot of its own (IMAP, STARTTLS, IMAPS, LMTP) with its config, ports and mail
               in a fresh folder under /tmp; started and stopped as our own child process
  Cyrus        a Cyrus IMAP 3.6 of its own (IMAP, LMTP), the second server of the tests: its
               folders live under the personal namespace "INBOX." (delimiter ".")
  LmtpRelay    an aiosmtpd server on a free loopback port that hands every accepted message to
               a Dovecot over LMTP (`mailbot demo --imap`; the tests' SMTP relay)
  make_cert    a self-signed certificate for 127.0.0.1 (openssl), for the TLS variants

Both SMTP servers can be told to refuse (`refuse(451)`, `refuse(550, times=2, at="RCPT")`) and
to demand AUTH, which the sender's retry tests use; `received` lists what they accepted.

Facts the Dovecot launcher relies on: Dovecot refuses mail access as uid 0, so as root the mail
belongs to nobody/nogroup in a folder of its own under /tmp (a 0700 root folder such as pytest's
tmp_path is unreachable for nobody); `dovecot -F` keeps the master in the foreground, so stopping
it is terminating our own child (and its process group); auth_failure_delay = 0 and a disabled
auth-penalty socket keep login failures fast.

Facts the Cyrus launcher relies on: Debian's cyrus-imapd (imapd itself) conflicts with
dovecot-imapd, so where Dovecot is installed .ci/run unpacks the package's binaries into
/opt/cyrus-imapd (`apt-get download cyrus-imapd; dpkg-deb -x`) beside cyrus-common (master,
lmtpd); Cyrus's master runs as root and drops to the `cyrus` user, so as root only; users log in
against a sasldb of our own (saslpasswd2, from sasl2-bin), added as a test first names them.
"""
from __future__ import annotations

import asyncio
import contextlib
import mailbox
import os
import pwd
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "HOST", "PASSWORD", "DOVECOT", "DOVECOT_INSTALL", "free_port", "dovecot_missing",
    "Certificate", "make_cert", "Dovecot", "Cyrus", "cyrus_missing", "CYRUS_INSTALL", "Received", "DevSMTP", "MaildirSMTP", "LmtpRelay",
]

HOST = "127.0.0.1"
PASSWORD = "test"              # Dovecot's static passdb: every user, this password
DOVECOT = shutil.which("dovecot", path=os.pathsep.join(["/usr/sbin", "/usr/local/sbin", "/sbin",
                                                        os.environ.get("PATH", "")]))
DOVECOT_INSTALL = "apt-get install dovecot-imapd dovecot-lmtpd"
_NOBODY = 65534
CYRUS_BIN = Path("/usr/lib/cyrus/bin")                       # cyrus-common: master, lmtpd, ctl_cyrusdb
# imapd: cyrus-imapd, installed, or unpacked beside Dovecot (the two packages conflict; see .ci/run)
CYRUS_IMAPD_DIRS = (CYRUS_BIN, Path("/opt/cyrus-imapd/usr/lib/cyrus/bin"))
CYRUS_INSTALL = ("apt-get install cyrus-common sasl2-bin libsasl2-modules-db; and imapd from cyrus-imapd "
                 "(it conflicts with dovecot-imapd: .ci/run unpacks it into /opt/cyrus-imapd)")


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def dovecot_missing() -> str | None:
    """Why Dovecot cannot be started here, or None."""
    if DOVECOT is None:
        return f"Dovecot is not installed ({DOVECOT_INSTALL})"
    lib = Path("/usr/lib/dovecot")
    if lib.is_dir() and not (lib / "lmtp").exists():
        return "Dovecot's LMTP server is not installed (apt-get install dovecot-lmtpd)"
    if lib.is_dir() and not (lib / "imap").exists():
        return "Dovecot's IMAP server is not installed (apt-get install dovecot-imapd)"
    return None


# ---------------------------------------------------------------- certificate

@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts this certificate (and checks the host name 127.0.0.1)."""
        return ssl.create_default_context(cafile=str(self.cert))

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(self.cert), str(self.key))
        return ctx


def make_cert(directory: Path) -> Certificate | None:
    """A self-signed EC certificate for 127.0.0.1 and localhost, made by openssl; None without openssl."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True, timeout=30)
    return Certificate(cert, key)


# ---------------------------------------------------------------- Dovecot

_CONF = """\
# written by mailbot/devservers.py: a development server, loopback only, one password for all
instance_name = {instance}
base_dir = {root}/run
state_dir = {root}/state
protocols = imap lmtp
listen = {host}
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
ssl = {ssl}
{ssl_files}
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
default_internal_user = {internal_user}
default_login_user = {login_user}
mail_location = maildir:~/Maildir
mail_uid = {uid}
mail_gid = {gid}
first_valid_uid = {uid}
first_valid_gid = {gid}
imap_id_log = *
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/mail/%u allow_all_users=yes
}}
namespace inbox {{
  inbox = yes
}}
service imap-login {{
  inet_listener imap {{
    address = {host}
    port = {imap_port}
  }}
{imaps}}}
service lmtp {{
  unix_listener lmtp {{
    mode = 0666
  }}
}}
# No auth penalty (up to 15 s per login after failures from one address): login-failure tests
# would crawl. Documented way: make the penalty socket unusable.
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""


class _DevImap:
    """What both development IMAP servers share: a process group of our own, LMTP delivery, reading mail back.

    A subclass sets root, imap_port, lmtp_socket, process, _stderr and provides _command(),
    _ready() and _diagnostics(); `namespace_prefix` is where a user's own folders live.
    """

    host = HOST
    password = PASSWORD
    namespace_prefix = ""
    name = "imap"
    root: Path
    imap_port: int
    lmtp_socket: Path
    process: subprocess.Popen[bytes] | None = None
    _stderr: Any = None
    start_seconds: float | None = None

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _ready(self) -> bool:
        return self.lmtp_socket.exists() and _answers(self.host, self.imap_port)

    def _diagnostics(self) -> str:
        return ""

    def _port(self, security: str) -> int:
        if security != "plain":
            raise ValueError(f"this {self.name} serves plain IMAP only, not {security}")
        return self.imap_port

    def _user(self, user: str) -> None:
        """Make `user` able to log in (nothing to do where every user exists)."""

    def folder(self, name: str) -> str:
        """The full name of one of a user's own folders: '已受理' -> 'INBOX.已受理' on Cyrus."""
        return name if name.upper() == "INBOX" else self.namespace_prefix + name

    # ------------------------------------------------------------ lifecycle

    def start(self, timeout: float = 10.0) -> float:
        """Start and wait until IMAP answers and LMTP listens; returns the seconds it took."""
        if self.process is not None and self.process.poll() is None:
            return 0.0
        t0 = time.monotonic()
        # The master stays our child, so stop() ends exactly the process we started. Its stderr
        # goes to a file: a server holding the caller's stderr keeps the caller's pipes open.
        self._stderr = open(self.root / f"{self.name}.stderr", "ab")
        self.process = subprocess.Popen(self._command(), stdin=subprocess.DEVNULL, cwd=self.root,
                                        stdout=self._stderr, stderr=self._stderr, start_new_session=True)
        deadline = t0 + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}: {self._diagnostics()}")
            if self._ready():
                break
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} did not start within {timeout} s: {self._diagnostics()}")
            time.sleep(0.005)
        self.start_seconds = time.monotonic() - t0
        return self.start_seconds

    def stop(self, timeout: float = 10.0, *, fast: bool = False) -> None:
        """Stop as an administrator would (SIGTERM: clients get "* BYE Server shutting down"), or kill (fast).

        The signal goes to the whole process group start() made: SIGTERM to the master alone
        takes a second and leaves the imap processes serving their connections, orphaned.
        """
        p, self.process = self.process, None
        if p is None:
            return
        pgid = p.pid                           # start_new_session: the master leads its own group
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL if fast else signal.SIGTERM)
            os.killpg(pgid, signal.SIGCONT)    # a frozen() server must see the SIGTERM
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            p.wait(timeout)
        deadline = time.monotonic() + timeout
        while _group_alive(pgid):              # children exit right after the master; wait, then insist
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)
                deadline = time.monotonic() + timeout
            time.sleep(0.005)
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def freeze(self) -> None:
        """SIGSTOP every Dovecot process: connections stay open but nothing answers (timeout tests)."""
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGCONT)

    def restart(self) -> float:
        self.stop()
        return self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ mail

    def deliver(self, rcpt: str, raw: bytes, sender: str = "sender@example.test") -> None:
        """Deliver `raw` to `rcpt`'s INBOX over LMTP (the server adds Return-Path and Delivered-To)."""
        self._user(rcpt)
        with smtplib.LMTP(str(self.lmtp_socket), timeout=30) as lmtp:
            refused = lmtp.sendmail(sender, [rcpt], raw)
        if refused:
            raise RuntimeError(f"LMTP refused {rcpt}: {refused}")

    def server(self, user: str, security: str = "plain", folder: str = "INBOX", password: str = PASSWORD):
        """A config.MailServer for this server."""
        from mailbot.app.config import MailServer
        self._user(user)
        port = self._port(security)
        return MailServer(host=self.host, port=port, security=security, username=user, password=password,
                          folder=folder)

    def mailbox(self, user: str, folder: str | None = "INBOX", password: str = PASSWORD):
        """An imap-tools MailBoxUnencrypted logged in as `user` (use it as a context manager)."""
        from imap_tools import MailBoxUnencrypted
        self._user(user)
        return MailBoxUnencrypted(self.host, self.imap_port, timeout=30).login(user, password, initial_folder=folder)

    def messages(self, user: str, folder: str = "INBOX") -> list[bytes]:
        """The raw messages of a folder in UID order, read over IMAP without setting \\Seen."""
        return [raw for _uid, raw, _flags in self._read(user, folder)]

    def flags(self, user: str, folder: str = "INBOX") -> dict[int, tuple[str, ...]]:
        return {uid: flags for uid, _raw, flags in self._read(user, folder, bodies=False)}

    def _read(self, user: str, folder: str, bodies: bool = True) -> list[tuple[int, bytes, tuple[str, ...]]]:
        from imap_tools.utils import encode_folder
        with self.mailbox(user, None) as mb:
            typ, _ = mb.client.select(encode_folder(folder), readonly=True)
            if typ != "OK":
                return []
            typ, data = mb.client.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[])" if bodies else "(UID FLAGS)")
            out = []
            for item in data or []:
                head = item[0] if isinstance(item, tuple) else item
                if not isinstance(head, bytes):
                    continue
                uid = re.search(rb"UID (\d+)", head)
                flags = re.search(rb"FLAGS \(([^)]*)\)", head)
                if uid is None:
                    continue
                out.append((int(uid.group(1)), item[1] if isinstance(item, tuple) else b"",
                            tuple(flags.group(1).decode().split()) if flags else ()))
            return sorted(out)

    def folders(self, user: str) -> list[str]:
        with self.mailbox(user, None) as mb:
            return sorted(f.name for f in mb.folder.list())


class Dovecot(_DevImap):
    """A Dovecot of its own: IMAP (+STARTTLS) and IMAPS on free loopback ports, LMTP on a unix socket.

    Every user exists (static userdb, allow_all_users) and logs in with PASSWORD; a user's mail
    is the Maildir `maildir(user)`. The ports and the mail survive stop()/start(), for
    server-restart tests; close() stops it and removes its folder.
    """

    name = "dovecot"

    def __init__(self, cert: Certificate | None = None):
        if DOVECOT is None:
            raise RuntimeError(dovecot_missing())
        self.cert = cert
        # Under /tmp: the mail user (nobody, when we are root) must reach the mail.
        self.root = Path(tempfile.mkdtemp(prefix="mailbot-dovecot-", dir="/tmp"))
        os.chmod(self.root, 0o755)
        self.imap_port = free_port()
        self.imaps_port = free_port()
        self.lmtp_socket = self.root / "run" / "lmtp"
        self.config_file = self.root / "dovecot.conf"
        self.log_file = self.root / "dovecot.log"
        self.start_seconds: float | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self._stderr = None
        root_run = os.geteuid() == 0
        uid, gid = (_NOBODY, _NOBODY) if root_run else (os.getuid(), os.getgid())
        me = pwd.getpwuid(os.getuid()).pw_name
        (self.root / "mail").mkdir()
        if root_run:
            os.chown(self.root / "mail", uid, gid)
        ssl_files = f"ssl_cert = <{cert.cert}\nssl_key = <{cert.key}" if cert else ""
        self.config_file.write_text(_CONF.format(
            instance=f"mailbot-dev-{self.imap_port}", root=self.root, host=HOST,
            ssl="yes" if cert else "no", ssl_files=ssl_files, uid=uid, gid=gid, password=PASSWORD,
            imap_port=self.imap_port,
            imaps=(f"  inet_listener imaps {{\n    address = {HOST}\n    port = {self.imaps_port}\n"
                   f"    ssl = yes\n  }}\n") if cert else "",
            internal_user="dovecot" if root_run and _user_exists("dovecot") else me,
            login_user="dovenull" if root_run and _user_exists("dovenull") else me,
        ))

    @property
    def has_tls(self) -> bool:
        return self.cert is not None

    def _command(self) -> list[str]:
        return [DOVECOT, "-F", "-c", str(self.config_file)]       # -F: the master stays in the foreground

    def _port(self, security: str) -> int:
        return {"plain": self.imap_port, "starttls": self.imap_port, "ssl": self.imaps_port}[security]

    def log_text(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def _diagnostics(self) -> str:
        err = (self.root / "dovecot.stderr").read_text(errors="replace") if (self.root / "dovecot.stderr").exists() else ""
        return (err + self.log_text())[-3000:]

    def maildir(self, user: str) -> Path:
        return self.root / "mail" / user / "Maildir"


# ---------------------------------------------------------------- Cyrus

def cyrus_imapd() -> Path | None:
    """Where Cyrus's imapd is: installed, or unpacked from the package beside Dovecot."""
    for d in CYRUS_IMAPD_DIRS:
        if (d / "imapd").is_file():
            return d / "imapd"
    return None


def cyrus_missing() -> str | None:
    """Why a Cyrus cannot be started here, or None."""
    if not (CYRUS_BIN / "master").is_file() or not (CYRUS_BIN / "lmtpd").is_file():
        return f"Cyrus is not installed ({CYRUS_INSTALL})"
    if cyrus_imapd() is None:
        return f"Cyrus's imapd is not installed ({CYRUS_INSTALL})"
    if shutil.which("saslpasswd2", path="/usr/sbin:/usr/bin:/sbin") is None:
        return "saslpasswd2 is not installed (apt-get install sasl2-bin)"
    if not _user_exists("cyrus"):
        return "the cyrus user does not exist (it comes with cyrus-common)"
    if os.geteuid() != 0:
        return "Cyrus's master runs as root and drops to the cyrus user: a test Cyrus needs root"
    return None


_CYRUS_CONF = """# written by mailbot/devservers.py: a development server, loopback only
configdirectory: {root}/conf
defaultpartition: default
partition-default: {root}/spool
proc_path: {root}/run/proc
mboxname_lockpath: {root}/run/lock
lmtpsocket: {root}/run/lmtp
idlesocket: {root}/run/idle
notifysocket: {root}/run/notify
syslog_prefix: mailbot-cyrus-{port}
# the defaults that matter here: folders under "INBOX.", delimiter "."
altnamespace: no
unixhierarchysep: no
virtdomains: userid
lmtp_downcase_rcpt: yes
# a user's INBOX is made at the first login or delivery
autocreate_quota: 0
autocreate_post: 1
allowplaintext: yes
sasl_pwcheck_method: auxprop
sasl_auxprop_plugin: sasldb
sasl_sasldb_path: {root}/sasldb2
sasl_mech_list: PLAIN LOGIN
imapidlepoll: 1
"""

_CYRUS_SERVICES = """START {{
  recover cmd="{bin}/ctl_cyrusdb -C {conf} -r"
}}
SERVICES {{
  imap cmd="{imapd} -C {conf}" listen="{host}:{port}" prefork=0
  lmtpunix cmd="{bin}/lmtpd -C {conf}" listen="{root}/run/lmtp" prefork=0
}}
EVENTS {{
}}
DAEMON {{
  idled cmd="{idled} -C {conf}"
}}
"""


class Cyrus(_DevImap):
    """A Cyrus IMAP 3.6 of its own: IMAP on a free loopback port, LMTP on a unix socket, plain only.

    Run with Cyrus's defaults where they matter: altnamespace off, so a user's folders are
    "INBOX.<name>" with "." between levels, and CREATE at the top level is refused. Users log
    in with PASSWORD from a sasldb of its own, each added the first time a test names it; the
    INBOX is made at the first login or delivery. Ports and mail survive stop()/start().
    """

    name = "cyrus"
    namespace_prefix = "INBOX."

    def __init__(self, cert: Certificate | None = None):
        missing = cyrus_missing()
        if missing:
            raise RuntimeError(missing)
        self.cert = cert                        # no TLS here: Dovecot's tests cover it
        self.root = Path(tempfile.mkdtemp(prefix="mailbot-cyrus-", dir="/tmp"))
        os.chmod(self.root, 0o755)
        self.imap_port = free_port()
        self.lmtp_socket = self.root / "run" / "lmtp"
        self.config_file = self.root / "imapd.conf"
        self.process = None
        self._users: set[str] = set()
        for d in ("conf", "spool", "run"):
            (self.root / d).mkdir()
        imapd = cyrus_imapd()
        self.config_file.write_text(_CYRUS_CONF.format(root=self.root, port=self.imap_port))
        (self.root / "cyrus.conf").write_text(_CYRUS_SERVICES.format(
            bin=CYRUS_BIN, imapd=imapd, idled=imapd.parent / "idled", conf=self.config_file, host=HOST,
            port=self.imap_port, root=self.root))
        # the services run as the cyrus user and read both files: readable whatever the umask of
        # the process that made them (mailbot's CLI sets 077, and tests call it in-process)
        for f in (self.config_file, self.root / "cyrus.conf"):
            os.chmod(f, 0o644)
        self._own()

    def _own(self) -> None:
        cyrus = pwd.getpwnam("cyrus")
        for p in [self.root / d for d in ("conf", "spool", "run")] + list(self.root.glob("sasldb2*")):
            os.chown(p, cyrus.pw_uid, cyrus.pw_gid)

    def _command(self) -> list[str]:
        # -D: the master stays in the foreground, our child
        return [str(CYRUS_BIN / "master"), "-D", "-C", str(self.config_file), "-M", str(self.root / "cyrus.conf"),
                "-p", str(self.root / "run" / "master.pid")]

    def _user(self, user: str) -> None:
        if user in self._users:
            return
        subprocess.run([shutil.which("saslpasswd2", path="/usr/sbin:/usr/bin:/sbin"), "-p", "-c",
                        "-f", str(self.root / "sasldb2"), user],
                       input=self.password.encode(), check=True, capture_output=True, timeout=30)
        self._own()
        self._users.add(user)

    def log_text(self) -> str:
        try:
            return (self.root / "cyrus.stderr").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def _diagnostics(self) -> str:
        # Cyrus's master logs to syslog, not stderr: say what is and is not up
        state = (f"IMAP port {self.imap_port} {'answers' if _answers(self.host, self.imap_port) else 'does not answer'}"
                 f" (taken by another process before the master bound it?), LMTP socket "
                 f"{'exists' if self.lmtp_socket.exists() else 'missing'}")
        return state + "; " + self.log_text()[-3000:]


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # Zombies count as members until reaped; a process whose parent died is reaped by init.
    try:
        out = subprocess.run(["ps", "-o", "stat=", "-g", str(pgid)], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return any(not st.startswith("Z") for st in out.split())


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5) as s:
            return s.recv(5) == b"* OK "
    except OSError:
        return False


# ---------------------------------------------------------------- SMTP servers

@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes
    auth_user: str | None


@dataclass
class _Refusal:
    code: int
    message: str
    at: str                       # MAIL | RCPT | DATA
    times: int | None             # None: until accept()


class DevSMTP:
    """An aiosmtpd server on a free loopback port; a subclass's deliver() says where accepted mail goes.

    refuse(451) / refuse(550, times=2) / refuse(421, at="RCPT") make it answer with that code
    (for the sender's retry tests); accept() ends that. `received` lists what it accepted.
    Plain, STARTTLS (security="starttls") or implicit TLS ("ssl", both need a Certificate);
    with `auth=(user, password)` it demands AUTH.
    """

    def __init__(self, *, auth: tuple[str, str] | None = None, security: str = "plain",
                 cert: Certificate | None = None, port: int | None = None,
                 server_hostname: str = "mail.dev.test"):
        from aiosmtpd.controller import Controller
        if security not in ("plain", "starttls", "ssl"):
            raise ValueError(f"security must be plain, starttls or ssl, not {security!r}")
        if security != "plain" and cert is None:
            raise ValueError(f"an SMTP server with {security} needs a certificate")
        self.host = HOST
        self.port = port or free_port()
        self.security = security
        self.auth = auth
        self.received: list[Received] = []
        self.refused: list[tuple[int, str]] = []       # (code, phase) of every refusal sent
        self._refusal: _Refusal | None = None
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        kwargs: dict[str, Any] = {}
        if security == "starttls":
            kwargs.update(tls_context=cert.server_context(), require_starttls=True)
        elif security == "ssl":
            kwargs.update(ssl_context=cert.server_context())
        if auth is not None:
            # Over plain SMTP this server takes AUTH anyway: a client may well log in to a
            # loopback server without TLS. (aiosmtpd knows of STARTTLS only, so with implicit
            # TLS it must not insist either.)
            kwargs.update(authenticator=self._authenticate, auth_required=True,
                          auth_require_tls=security == "starttls")
            # The warning comes from the server's thread when a client connects.
            warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS", category=UserWarning)
        self.controller = Controller(_Handler(self), hostname=self.host, port=self.port,
                                     server_hostname=server_hostname, **kwargs)

    # ------------------------------------------------------------ lifecycle

    def start(self):
        self.controller.start()
        return self

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.controller.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ what subclasses provide

    def deliver(self, mail_from: str, rcpts: list[str], raw: bytes) -> None:
        """Put an accepted message where it belongs; raise to answer 451. Here: nowhere (only recorded)."""

    def check_recipient(self, address: str) -> str | None:
        """An SMTP refusal ("550 ...") for a recipient this server cannot deliver to, or None."""
        return None

    # ------------------------------------------------------------ control

    def refuse(self, code: int = 451, message: str | None = None, *, times: int | None = None,
               at: str = "DATA") -> None:
        if at not in ("MAIL", "RCPT", "DATA"):
            raise ValueError("at must be MAIL, RCPT or DATA")
        message = message or ("4.3.0 Try again later" if 400 <= code < 500 else "5.7.1 Refused")
        with self._lock:
            self._refusal = _Refusal(code, message, at, times)

    def accept(self) -> None:
        with self._lock:
            self._refusal = None

    def wait_for(self, n: int, timeout: float = 10.0) -> list[Received]:
        """Wait until at least n messages were accepted."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.received) >= n, timeout):
                raise TimeoutError(f"the server accepted {len(self.received)} message(s), not {n}, in {timeout} s")
            return list(self.received)

    def client(self, timeout: float = 10.0) -> smtplib.SMTP:
        """An smtplib client connected (and logged in, if the server wants it) to this server."""
        if self.security == "ssl":
            c: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, timeout=timeout,
                                              context=ssl._create_unverified_context())  # noqa: SLF001
        else:
            c = smtplib.SMTP(self.host, self.port, timeout=timeout)
            if self.security == "starttls":
                c.starttls(context=ssl._create_unverified_context())  # noqa: SLF001
        if self.auth:
            c.login(*self.auth)
        return c

    # ------------------------------------------------------------ called from the server's thread

    def _refusal_for(self, phase: str) -> str | None:
        with self._lock:
            r = self._refusal
            if r is None or r.at != phase:
                return None
            if r.times is not None:
                r.times -= 1
                if r.times <= 0:
                    self._refusal = None
            self.refused.append((r.code, phase))
            return f"{r.code} {r.message}"

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult, LoginPassword
        ok = (isinstance(auth_data, LoginPassword) and self.auth is not None
              and (auth_data.login.decode(), auth_data.password.decode()) == self.auth)
        return AuthResult(success=ok, handled=False, auth_data=auth_data.login.decode() if ok else None)

    def _accept(self, mail_from: str, rcpts: list[str], raw: bytes, auth_user: str | None) -> str:
        try:
            self.deliver(mail_from, rcpts, raw)
        except Exception as e:  # noqa: BLE001 - an SMTP answer, not a crash
            return f"451 4.3.0 {e}"
        with self._arrived:
            self.received.append(Received(mail_from, tuple(rcpts), raw, auth_user))
            self._arrived.notify_all()
        return f"250 2.0.0 Ok: queued as {len(self.received)}"


class _Handler:
    def __init__(self, server: DevSMTP):
        self.server = server

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        refusal = self.server._refusal_for("MAIL")
        if refusal:
            return refusal
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        refusal = self.server._refusal_for("RCPT") or self.server.check_recipient(address)
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        refusal = self.server._refusal_for("DATA")
        if refusal:
            return refusal
        raw = envelope.original_content or envelope.content
        auth = session.auth_data if isinstance(getattr(session, "auth_data", None), str) else None
        # Delivery blocks (files, LMTP); keep the event loop free for other connections.
        return await asyncio.get_running_loop().run_in_executor(
            None, self.server._accept, envelope.mail_from, list(envelope.rcpt_tos), raw, auth)


_SAFE_ADDRESS = re.compile(r"^[A-Za-z0-9_.%+\-]+@[A-Za-z0-9.\-]+$")


class MaildirSMTP(DevSMTP):
    """Delivers every accepted message into `<root>/<recipient address>/`, one Maildir per RCPT.

    Like a real delivery agent it adds Return-Path and Delivered-To on top (what Dovecot's LMTP
    adds too), stores the message with LF line ends in new/, and creates a recipient's Maildir
    on the first delivery. A recipient that is not a plain address (no path can be made of it)
    is refused at RCPT with 550.
    """

    def __init__(self, root: str | Path, **kwargs: Any):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        super().__init__(**kwargs)

    def maildir(self, address: str) -> Path:
        """Where `address`'s mail is delivered."""
        return self.root / address.strip().lower()

    def check_recipient(self, address: str) -> str | None:
        a = address.strip()
        if not _SAFE_ADDRESS.match(a) or ".." in a or a.startswith("."):
            return f"550 5.1.3 <{a}>: not an address this development server delivers to"
        return None

    def deliver(self, mail_from: str, rcpts: list[str], raw: bytes) -> None:
        body = raw.replace(b"\r\n", b"\n")
        try:
            for rcpt in rcpts:
                self._deliver_one(mail_from, rcpt, body)
        except OSError as e:
            raise RuntimeError(f"Maildir delivery failed: {e}") from e

    def _deliver_one(self, mail_from: str, rcpt: str, body: bytes) -> None:
        head = f"Return-Path: <{mail_from or ''}>\nDelivered-To: {rcpt.strip().lower()}\n".encode()
        mailbox.Maildir(self.maildir(rcpt), create=True).add(head + body)

    def messages(self, address: str) -> list[bytes]:
        """Every message in `address`'s Maildir (new/ and cur/ of its inbox), oldest first."""
        d = self.maildir(address)
        files = [p for sub in ("new", "cur") if (d / sub).is_dir() for p in (d / sub).iterdir()
                 if p.is_file() and not p.name.startswith(".")]
        return [p.read_bytes() for p in sorted(files, key=lambda p: (p.stat().st_mtime, p.name))]


class LmtpRelay(DevSMTP):
    """Hands every accepted message to `dovecot` over LMTP, per recipient (None: only records it).

    A failed LMTP delivery answers 451 for the whole message (recipients before it got it).
    """

    def __init__(self, dovecot: _DevImap | None, **kwargs: Any):
        self.dovecot = dovecot
        kwargs.setdefault("server_hostname", "relay.test")
        super().__init__(**kwargs)

    def deliver(self, mail_from: str, rcpts: list[str], raw: bytes) -> None:
        if self.dovecot is None:
            return
        for rcpt in rcpts:
            try:
                self.dovecot.deliver(rcpt, raw, sender=mail_from or "<>")
            except Exception as e:  # noqa: BLE001 - becomes the 451's text
                raise RuntimeError(f"LMTP delivery to {rcpt} failed: {e}") from e
