"""No secret in any output, and nothing readable by other users on disk.

A small IMAP server here refuses every LOGIN and, like some real ones, quotes the command it
refused (password included). mailbot's stderr, its --json-logs lines, `health --json`, the health
file and the database must show the password nowhere.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mailbot.redact import redact, register

ROOT = Path(__file__).resolve().parents[1]
MAILBOT = [sys.executable, "-c", "import sys; from mailbot.app.cli import main; sys.exit(main())"]
PASSWORD = "S3cret-pa55 w0rd\"x"


class EchoingImap:
    """Accepts connections; answers CAPABILITY; refuses LOGIN quoting the whole command back."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.logins: list[str] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn):
        f = conn.makefile("rwb")
        try:
            f.write(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] echo server ready\r\n")
            f.flush()
            for line in f:
                text = line.decode("utf-8", "replace").rstrip("\r\n")
                tag, _, rest = text.partition(" ")
                cmd = rest.split(" ", 1)[0].upper()
                if cmd == "CAPABILITY":
                    f.write(f"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n{tag} OK done\r\n".encode())
                elif cmd == "LOGIN":
                    self.logins.append(rest)
                    f.write(f"{tag} NO [AUTHENTICATIONFAILED] Authentication failed: {rest}\r\n".encode())
                elif cmd == "LOGOUT":
                    f.write(f"* BYE\r\n{tag} OK bye\r\n".encode())
                    f.flush()
                    return
                else:
                    f.write(f"{tag} BAD unknown\r\n".encode())
                f.flush()
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self.sock.close()


@pytest.fixture
def imap():
    server = EchoingImap()
    yield server
    server.close()


def _config(tmp_path: Path, port: int) -> Path:
    text = (ROOT / "config.example.yaml").read_text(encoding="utf-8")
    text = text.replace("storage: storage", f"storage: {tmp_path / 'storage'}")
    text += (f"\nrules: {ROOT / 'rules'}\nimap:\n  host: 127.0.0.1\n  port: {port}\n  security: plain\n"
             f"  username: xyjgk@cqscjg.example.cn\n  password: ${{MAILBOT_TEST_IMAP_PASSWORD}}\n")
    cfg = tmp_path / "config.yaml"
    cfg.write_text(text, encoding="utf-8")
    return cfg


def _env():
    return {**os.environ, "MAILBOT_TEST_IMAP_PASSWORD": PASSWORD, "PYTHONPATH": str(ROOT)}


def _everything_written(storage: Path) -> bytes:
    return b"".join(p.read_bytes() for p in storage.rglob("*") if p.is_file())


def test_the_password_the_server_echoes_is_in_no_output(tmp_path, imap):
    cfg = _config(tmp_path, imap.port)
    poll = subprocess.run([*MAILBOT, "--config", str(cfg), "poll", "--once"], capture_output=True, text=True,
                          env=_env(), timeout=60)
    assert poll.returncode == 1 and "AUTHENTICATIONFAILED" in poll.stderr, poll.stderr
    assert imap.logins and "S3cret" in imap.logins[0]             # the server really did receive (and echo) it
    health = subprocess.run([*MAILBOT, "--config", str(cfg), "health", "--json"], capture_output=True, text=True,
                            env=_env(), timeout=60)
    h = json.loads(health.stdout)
    assert "AUTHENTICATIONFAILED" in h["last_error"] and "***" in h["last_error"]
    run = subprocess.Popen([*MAILBOT, "--config", str(cfg), "run", "--json-logs"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, env=_env())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(imap.logins) < 3:
        time.sleep(0.1)
    run.send_signal(signal.SIGTERM)
    out, err = run.communicate(timeout=60)
    lines = [json.loads(x) for x in err.splitlines() if x.startswith("{")]
    assert any(x["level"] == "ERROR" or "AUTHENTICATIONFAILED" in json.dumps(x) for x in lines), err
    for text in (poll.stdout, poll.stderr, health.stdout, health.stderr, out, err):
        assert "S3cret" not in text and "pa55" not in text, text
    stored = _everything_written(tmp_path / "storage")
    assert b"S3cret" not in stored and b"pa55" not in stored


def test_redact_masks_registered_secrets_their_encodings_and_login_echoes():
    register("hunter2-long", username="u@x")
    import base64
    plain = base64.b64encode(b"\0u@x\0hunter2-long").decode()
    text = redact(f"err hunter2-long / {plain} / a1 LOGIN \"someone\" \"other-pass\" / AUTH PLAIN {plain}")
    assert "hunter2" not in text and plain not in text and "other-pass" not in text and text.count("***") >= 3


def test_storage_database_and_health_are_for_the_owner_only(tmp_path, imap):
    cfg = _config(tmp_path, imap.port)
    subprocess.run([*MAILBOT, "--config", str(cfg), "ingest", str(ROOT / "examples" / "01-fagui-monthly-mutt.eml")],
                   capture_output=True, env=_env(), timeout=120, check=True)
    subprocess.run([*MAILBOT, "--config", str(cfg), "poll", "--once"], capture_output=True, env=_env(), timeout=60)
    storage = tmp_path / "storage"
    assert stat.S_IMODE(storage.stat().st_mode) == 0o700
    modes = {p.relative_to(storage).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in storage.rglob("*")}
    assert modes["mailbot.sqlite3"] == 0o600 and modes["health.json"] == 0o600
    assert {m for p, m in modes.items() if (storage / p).is_file()} == {0o600}
    assert {m for p, m in modes.items() if (storage / p).is_dir()} == {0o700}
