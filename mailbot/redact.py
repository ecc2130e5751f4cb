"""Keeps secrets out of every text mailbot writes: logs, stderr, JSON, the health file, the database.

An IMAP or SMTP server may quote the failed command in its refusal (`NO [AUTHENTICATIONFAILED]
… LOGIN "user" "password"`), and a driver may put it in an exception: the password then
travels in an ordinary error text. Every such text passes `redact()` at the edge where it
leaves the process; the secrets are the config's (server passwords, `${ENV}` values under a
secret-like key), registered once at start by the wiring, and their usual encodings
(base64 of SASL PLAIN/LOGIN, IMAP quoting).
"""
from __future__ import annotations

import base64
import logging
import re

__all__ = ["MASK", "register", "redact", "RedactingFilter", "install_log_filter", "SECRET_KEY"]

MASK = "***"
SECRET_KEY = re.compile(r"pass|secret|token|credential|auth_?code|api_?key", re.I)
# LOGIN "user" "pass" / LOGIN user pass, as servers echo it, whatever the password is
_LOGIN = re.compile(r'(\bLOGIN\s+(?:"(?:[^"\\]|\\.)*"|\S+)\s+)("(?:[^"\\]|\\.)*"|\S+)', re.I)
_AUTH = re.compile(r"(\bAUTH(?:ENTICATE)?\s+(?:PLAIN|LOGIN)\s+)(\S+)", re.I)
_secrets: set[str] = set()


def register(*values: str | None, username: str | None = None) -> None:
    """Add secret values (and, with `username`, their SASL encodings) to what is redacted."""
    for v in values:
        if not v or len(v) < 3:       # a one-letter 'password' would blank out every text
            continue
        _secrets.add(v)
        _secrets.add(v.replace("\\", "\\\\").replace('"', '\\"'))      # as IMAP quotes it
        _secrets.add(base64.b64encode(v.encode()).decode())
        if username:
            _secrets.add(base64.b64encode(f"\0{username}\0{v}".encode()).decode())
            _secrets.add(base64.b64encode(f"{username}\0{username}\0{v}".encode()).decode())


def redact(text: object) -> str:
    """`text` with every registered secret, and anything in a LOGIN/AUTH echo's password place, masked."""
    s = str(text)
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in s:
            s = s.replace(secret, MASK)
    s = _LOGIN.sub(lambda m: m.group(1) + MASK, s)
    return _AUTH.sub(lambda m: m.group(1) + MASK, s)


class RedactingFilter(logging.Filter):
    """Rewrites a record's message, arguments and traceback text before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string is still logged, redacted
            message = str(record.msg)
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
            record.exc_info = None
        extra = getattr(record, "mailbot", None)
        if isinstance(extra, dict):
            record.mailbot = {k: redact(v) if isinstance(v, str) else v for k, v in extra.items()}
        return True


def install_log_filter(logger: logging.Logger | None = None) -> None:
    """Put the filter on every handler of `logger` (the root by default), once."""
    for h in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, RedactingFilter) for f in h.filters):
            h.addFilter(RedactingFilter())
