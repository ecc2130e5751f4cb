"""Logging in without a password, and the session's guards.

A registered address asks for a link; mailbot mails a one-time token (32 random bytes) to it and
keeps only its sha256 (store.login_tokens), good once for LINK_MINUTES. Using it starts a session:
a cookie signed with the deployment's secret key (Starlette's SessionMiddleware, itsdangerous:
HttpOnly, SameSite=Strict, Secure behind TLS) holding the address, when it logged in and the
session's CSRF token. Who the address is (credit section, a section's staff) is read from the
config on every request, so an address taken out of the config is out at once.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from pathlib import Path
from typing import Any

from mailbot.store.files import write_atomically

__all__ = ["LINK_MINUTES", "new_token", "token_hash", "csrf_token", "csrf_ok", "secret_key", "LOGIN_LINKS_PER_HOUR"]

LINK_MINUTES = 15
LOGIN_LINKS_PER_HOUR = 5          # per address: a stranger typing it cannot flood its mailbox


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def csrf_token(session: dict[str, Any]) -> str:
    """The session's CSRF token, made on first use."""
    token = session.get("csrf")
    if not isinstance(token, str) or len(token) < 32:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def csrf_ok(session: dict[str, Any], sent: Any) -> bool:
    expected = session.get("csrf")
    if not isinstance(expected, str) or not isinstance(sent, str) or not sent:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), sent.encode("utf-8"))


def secret_key(path: Path) -> str:
    """The key that signs session cookies: read from `path`, made there (0600) the first time."""
    path = Path(path)
    if not path.exists():
        write_atomically(path, secrets.token_hex(32).encode("ascii"), replace=False, mode=0o600)
    key = path.read_text(encoding="ascii").strip()
    if len(key) < 32:
        raise ValueError(f"{path}: the web desk's secret key is shorter than 32 characters")
    return key


def expires(now: dt.datetime) -> dt.datetime:
    return now + dt.timedelta(minutes=LINK_MINUTES)
