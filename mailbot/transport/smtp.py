"""Delivering the outbox over SMTP: lease the due mails, send each one's bytes as they are, record the server's answer.

The outbox rows are written in the same transaction as whatever caused them; this module only
moves them to the server. The crash guarantee rests on three habits:

* Mails are taken with a lease (`Store.due_outbox(..., lease=)`): another sender, or this one
  after a crash, sees them again only when the lease runs out, and no SMTP exchange of ours is
  allowed to outlive its lease (each mail is bounded by what is left of it).
* `mark_sent` is written straight after the server's 250 to the end of DATA. A crash between
  that 250 and the commit is the only window in which a mail can go out twice; when the lease
  runs out it is sent again, the very same bytes with the very same Message-ID, so the receiver
  can tell the copy apart.
* Nothing is ever dropped: a failure is recorded as temporary (retried on a fixed backoff) or
  permanent (left for a person in `failed_permanent`), and a mail that cannot be recorded
  stops the batch rather than being sent without a record.

Failures are judged by whose fault they are. The set-up (connecting, TLS, EHLO, AUTH, the
envelope sender) is the same for every mail, so a failure there is never blamed on a mail: it
is temporary for the whole batch, whatever the code, and sending stops until the next batch.
A failure answered for one mail (a recipient, its size, its content) follows the reply code:
4xx temporary, 5xx permanent. See `deliver_due` for a recipient refused while others accepted.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import logging
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiosmtplib

from mailbot.app.config import MailServer
from mailbot.failpoints import failpoint

__all__ = [
    "RetryPolicy", "DEFAULT_POLICY", "Attempt", "DeliveryReport", "deliver_due", "deliver_due_sync",
    "envelope_address",
]

log = logging.getLogger("mailbot.transport.smtp")

SENT, TEMPORARY, PERMANENT = "sent", "temporary", "permanent"


@dataclass(frozen=True)
class RetryPolicy:
    """When to try a temporarily failed mail again, and when to give up and leave it for a person.

    The schedule is fixed (no jitter) so that a test, or a person reading the outbox, can tell
    exactly when the next attempt is due: `first`, doubled after each failure, at most `cap`.
    With the defaults: 1, 2, 4, 8, 16, 32 minutes, then hourly. A mail is given up (made
    permanent) at its `max_attempts`-th failure or at the first failure `max_age` after it was
    queued, whichever comes first; with the defaults the three days come first (about 77
    attempts), which outlasts a server down from Friday evening to Monday morning.
    """
    first: dt.timedelta = dt.timedelta(minutes=1)
    factor: int = 2
    cap: dt.timedelta = dt.timedelta(hours=1)
    max_attempts: int = 80
    max_age: dt.timedelta = dt.timedelta(days=3)

    def delay(self, failures: int) -> dt.timedelta:
        """The wait after the `failures`-th failed attempt (1-based)."""
        if failures < 1:
            raise ValueError(f"failures counts from 1, got {failures}")
        delay = self.first
        for _ in range(failures - 1):
            delay *= self.factor
            if delay >= self.cap:
                return self.cap
        return min(delay, self.cap)

    def gives_up(self, failures: int, queued_at: dt.datetime, now: dt.datetime) -> bool:
        return failures >= self.max_attempts or now - queued_at >= self.max_age


DEFAULT_POLICY = RetryPolicy()


@dataclass(frozen=True)
class Attempt:
    """What happened to one mail in a batch."""
    outbox_id: int
    message_id: str
    outcome: str                                  # sent | temporary | permanent
    detail: str                                   # the server's reply, or the error with its stage
    next_attempt_at: dt.datetime | None = None    # temporary only
    refused: tuple[tuple[str, str], ...] = ()     # sent to some: (recipient, reply) of the others


@dataclass(frozen=True)
class DeliveryReport:
    leased: int                                   # mails taken from the outbox
    attempts: tuple[Attempt, ...] = ()
    # Leased but not tried (the lease was running out, or the store failed): they come back by
    # themselves when the lease ends; no attempt is counted against them.
    deferred: tuple[int, ...] = ()
    stopped: str | None = None                    # why the batch ended early, if it did

    def ids(self, outcome: str) -> list[int]:
        return [a.outbox_id for a in self.attempts if a.outcome == outcome]

    @property
    def sent(self) -> list[int]:
        return self.ids(SENT)

    @property
    def temporary(self) -> list[int]:
        return self.ids(TEMPORARY)

    @property
    def permanent(self) -> list[int]:
        return self.ids(PERMANENT)


# ---------------------------------------------------------------- failures

class _Failure(Exception):
    """A failed attempt, worded for a person: the SMTP stage and what the server said."""

    def __init__(self, text: str, *, permanent: bool, setup: bool = False):
        super().__init__(text)
        self.text = text
        self.permanent = permanent
        # True: not this mail's fault (connection, TLS, login, envelope sender); the rest of
        # the batch would fail alike, so it fails with it and the batch stops.
        self.setup = setup


def _describe(exc: BaseException) -> str:
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return f"{exc.code} {exc.message}".strip()
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _by_code(code: int) -> bool:
    """Is this reply code a permanent failure? 5xx yes; 4xx and anything unexpected, no."""
    return 500 <= code < 600


def envelope_address(value: str) -> str:
    """The bare address of 'Name <a@b>' or 'a@b', for the SMTP envelope; '' if there is none."""
    _name, addr = email.utils.parseaddr(value)
    return addr.strip()


def _recipients(values: Sequence[str]) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    for _name, addr in email.utils.getaddresses(list(values)):
        addr = addr.strip()
        if addr and "@" in addr and addr.lower() not in seen:
            seen.add(addr.lower())
            out.append(addr)
    return out


# ---------------------------------------------------------------- one connection

class _Connection:
    """One SMTP session, opened on demand and opened again after the server drops it."""

    def __init__(self, smtp: MailServer, *, timeout: float, tls_context: ssl.SSLContext | None,
                 validate_certs: bool, local_hostname: str | None):
        if smtp.security not in ("ssl", "starttls", "plain"):
            raise ValueError(f"smtp.security must be ssl, starttls or plain, got {smtp.security!r}")
        self.smtp = smtp
        self.timeout = timeout
        self.tls_context = tls_context
        self.validate_certs = validate_certs
        self.local_hostname = local_hostname
        self.client: aiosmtplib.SMTP | None = None

    @property
    def connected(self) -> bool:
        return self.client is not None and self.client.is_connected

    async def open(self) -> None:
        s = self.smtp
        client = aiosmtplib.SMTP(
            hostname=s.host, port=s.port, timeout=self.timeout, local_hostname=self.local_hostname,
            use_tls=s.security == "ssl",
            # True, not None: a server that does not offer STARTTLS is an error, never a silent
            # fall back to plain text with the password in it.
            start_tls=True if s.security == "starttls" else False,
            validate_certs=self.validate_certs, tls_context=self.tls_context,
        )
        where = f"{s.host}:{s.port} ({s.security})"
        stage = f"connect to {where}"
        try:
            await client.connect()
            if s.username:
                stage = f"login to {where} as {s.username}"
                await client.login(s.username, s.password or "")
            if client.is_ehlo_or_helo_needed:
                stage = f"EHLO at {where}"
                await client.ehlo()
        except (aiosmtplib.SMTPException, OSError, ssl.SSLError) as e:
            # SMTPTimeoutError and ssl.SSLCertVerificationError are among these.
            client.close()
            raise _Failure(f"{stage}: {_describe(e)}", permanent=False, setup=True) from e
        except BaseException:
            client.close()
            raise
        self.client = client
        log.debug("connected to %s", where)

    async def close(self) -> None:
        client, self.client = self.client, None
        if client is None or not client.is_connected:
            return
        try:
            await client.quit(timeout=min(self.timeout, 5))
        except Exception:  # noqa: BLE001 - leaving politely is best effort
            client.close()

    def drop(self) -> None:
        if self.client is not None:
            self.client.close()
        self.client = None

    async def _reset(self) -> None:
        """Clear a failed envelope so the next mail starts clean; a server that will not is dropped."""
        if not self.connected:
            self.drop()
            return
        try:
            await self.client.rset()
        except Exception:  # noqa: BLE001
            self.drop()

    async def send(self, envelope_from: str, recipients: list[str], raw: bytes
                   ) -> tuple[str, list[tuple[str, str]]]:
        """One mail transaction: (the reply to DATA, [(recipient, refusal)...]) or _Failure."""
        client = self.client
        assert client is not None
        options: list[str] = []
        encoding = "ascii"
        if not all(a.isascii() for a in [envelope_from, *recipients]):
            if not client.supports_extension("smtputf8"):
                raise _Failure("the server does not offer SMTPUTF8, needed for a non-ASCII address",
                               permanent=True)
            options.append("SMTPUTF8")
            encoding = "utf-8"
        # The email package writes UTF-8 text as 8bit. A server without 8BITMIME gets the bytes
        # as they are all the same: rewriting them would change what the Message-ID stands for.
        if not raw.isascii() and client.supports_extension("8bitmime"):
            options.append("BODY=8BITMIME")
        if client.supports_extension("size"):
            # RFC 1870 counts the octets as transmitted: CRLF line ends, before dot-stuffing.
            crlf = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
            size = len(crlf) if crlf.endswith(b"\r\n") else len(crlf) + 2
            options.insert(0, f"SIZE={size}")

        stage = f"MAIL FROM:<{envelope_from}>"
        try:
            await client.mail(envelope_from, options=options, encoding=encoding)
        except aiosmtplib.SMTPResponseException as e:
            await self._reset()
            if e.code == 552 or "5.3.4" in e.message:
                # 552 / 5.3.4: this mail is too big; the next one may well go.
                raise _Failure(f"{stage}: {_describe(e)}", permanent=True) from e
            # Anything else refused for the envelope sender concerns every mail (a sender the
            # account may not use, a rate limit): not this mail's fault.
            raise _Failure(f"{stage}: {_describe(e)}", permanent=False, setup=True) from e
        except ValueError as e:
            await self._reset()
            raise _Failure(f"{stage}: {e}", permanent=False, setup=True) from e

        refused: list[tuple[str, str, int]] = []
        accepted: list[str] = []
        for rcpt in recipients:
            try:
                await client.rcpt(rcpt, encoding=encoding)
                accepted.append(rcpt)
            except aiosmtplib.SMTPRecipientRefused as e:
                refused.append((rcpt, _describe(e), e.code))
            except ValueError as e:      # an address aiosmtplib will not put on a command line
                refused.append((rcpt, f"unusable address: {e}", 553))
        if not accepted:
            await self._reset()
            text = "; ".join(f"RCPT TO:<{r}>: {why}" for r, why, _ in refused)
            raise _Failure(text, permanent=all(_by_code(code) for _, _, code in refused))

        try:
            response = await client.data(raw)
        except aiosmtplib.SMTPResponseException as e:
            await self._reset()
            raise _Failure(f"DATA: {_describe(e)}", permanent=_by_code(e.code)) from e
        return f"{response.code} {response.message}".strip(), [(r, why) for r, why, _ in refused]


# ---------------------------------------------------------------- the batch

async def _store_call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    # The store is synchronous and SQLite may wait up to its busy timeout for a lock: run it
    # beside the event loop so an IMAP IDLE sharing the loop is not starved.
    return await asyncio.to_thread(fn, *args, **kwargs)


async def _record(store: Any, fn_name: str, *args: Any, retries: tuple[float, ...], **kwargs: Any) -> None:
    """Write an outcome, retrying a failing store a few times; raises the last error."""
    fn = getattr(store, fn_name)
    for wait in (*retries, None):
        try:
            await _store_call(fn, *args, **kwargs)
            return
        except Exception as e:  # noqa: BLE001 - any store error; BaseException (a crash) passes
            if wait is None:
                raise
            log.warning("store.%s(%s) failed, retrying in %.1fs: %s", fn_name, args[0], wait, e)
            await asyncio.sleep(wait)


async def deliver_due(
    store: Any,
    smtp: MailServer,
    now: dt.datetime,
    *,
    limit: int = 50,
    lease: dt.timedelta = dt.timedelta(minutes=5),
    policy: RetryPolicy = DEFAULT_POLICY,
    timeout: float = 60.0,
    tls_context: ssl.SSLContext | None = None,
    validate_certs: bool = True,
    envelope_from: str | None = None,
    local_hostname: str | None = None,
    store_retries: Sequence[float] = (0.5, 2.0),
) -> DeliveryReport:
    """Send the mails due at `now` over one SMTP connection (opened again if it drops).

    `now` is the time of the whole batch: it starts the lease and stamps sent_at and
    next_attempt_at. The envelope sender is `envelope_from` or else the address in
    `smtp.sender`; the recipients are the row's. `tls_context` (a context trusting a private
    CA, say) or `validate_certs=False` (tests only) change how the server's certificate is
    checked; by default it is verified against the system's CAs and the host name.

    A mail refused for some recipients and accepted for others has been delivered: it is
    marked sent (a second send would duplicate it for those who have it, and the row's one
    Message-ID cannot be split), the refusals are appended to the recorded server reply and
    logged as a warning for a person. Refused for every recipient, it fails as a whole:
    permanent if every refusal is 5xx, else temporary.
    """
    now = _aware(now)
    sender = envelope_address(envelope_from or smtp.sender or "")
    if not sender:
        raise ValueError("no envelope sender: set smtp.sender in the config or pass envelope_from")
    if lease <= dt.timedelta(0):
        raise ValueError("lease must be positive")

    leased_at = time.monotonic()
    mails = await _store_call(store.due_outbox, now, limit, lease=lease)
    if not mails:
        return DeliveryReport(leased=0)
    log.info("outbox: %d mail(s) due, sending via %s:%s", len(mails), smtp.host, smtp.port)

    # No exchange may outlive the lease: past it another sender may take the same mails. (The
    # lease is counted from `now` in the store, so `now` must be the current time.)
    lease_s = lease.total_seconds()
    deadline = leased_at + lease_s * 0.9
    min_start = min(timeout, lease_s * 0.25)
    retries = tuple(store_retries)

    attempts: list[Attempt] = []
    deferred: list[int] = []
    stopped: str | None = None
    conn = _Connection(smtp, timeout=timeout, tls_context=tls_context, validate_certs=validate_certs,
                       local_hostname=local_hostname)

    async def failed(mail: Any, f: _Failure) -> None:
        failures = mail.attempts + 1
        permanent = f.permanent
        text = f.text
        if not permanent and policy.gives_up(failures, mail.created_at, now):
            permanent = True
            text = f"gave up after {failures} attempt(s) since {mail.created_at.isoformat()}: {text}"
        next_at = None if permanent else now + policy.delay(failures)
        await _record(store, "mark_failed", mail.id, text, permanent, next_at, retries=retries)
        attempts.append(Attempt(mail.id, mail.mail_message_id, PERMANENT if permanent else TEMPORARY,
                                text, next_at))
        if permanent:
            log.error("outbox %d <%s> failed permanently, left for a person: %s",
                      mail.id, mail.mail_message_id, text)
        else:
            log.warning("outbox %d <%s> failed (attempt %d), next try at %s: %s",
                        mail.id, mail.mail_message_id, failures, next_at.isoformat(), text)

    def stop(i: int, why: str) -> None:
        nonlocal stopped, deferred
        stopped = why
        deferred = [m.id for m in mails[i:]]

    try:
        i = 0
        while i < len(mails):
            mail = mails[i]
            remaining = deadline - time.monotonic()
            if remaining < min_start:
                stop(i, f"the lease of {lease} is running out; the rest come back when it ends")
                log.warning("outbox: %s (%d mail(s))", stopped, len(deferred))
                break
            failpoint("before-smtp")
            rcpts = _recipients(mail.recipients)
            lease_timer = asyncio.timeout(remaining)
            try:
                if not rcpts:
                    raise _Failure(f"no usable recipient address in {list(mail.recipients)!r}", permanent=True)
                try:
                    async with lease_timer:
                        if not conn.connected:
                            await conn.open()
                        reply, refused = await conn.send(sender, rcpts, mail.raw)
                except _Failure:
                    raise
                except (aiosmtplib.SMTPException, OSError, ssl.SSLError) as e:
                    # Dropped or timed out in the middle of the transaction (TimeoutError is an
                    # OSError). Once DATA has gone out the server may have kept the mail; the
                    # resend carries the same Message-ID, so the copy is recognisable.
                    conn.drop()
                    why = ("the lease ran out during the SMTP exchange" if lease_timer.expired()
                           else f"connection lost: {_describe(e)}")
                    raise _Failure(why, permanent=False) from e
                except Exception as e:  # noqa: BLE001 - a bug must not strand the mail in its lease
                    conn.drop()
                    log.exception("outbox %d <%s>: unexpected error", mail.id, mail.mail_message_id)
                    raise _Failure(f"internal error: {_describe(e)}", permanent=False) from e
            except _Failure as f:
                try:
                    await failed(mail, f)
                    if f.setup:
                        # The server takes nothing now: the rest fail for the same reason, no mail
                        # is blamed (temporary, whatever the code) and the batch ends.
                        while (i := i + 1) < len(mails):
                            await failed(mails[i], _Failure(f.text, permanent=False, setup=True))
                        stopped = f"server unavailable: {f.text}"
                        conn.drop()
                        break
                except Exception as e:  # noqa: BLE001
                    stop(i, f"cannot record outbox {mails[i].id} in the store: {_describe(e)}")
                    log.critical("outbox: %s; stopping, %d mail(s) come back when the lease ends",
                                 stopped, len(deferred))
                    break
                i += 1
                continue

            failpoint("inside-smtp")
            # The server has the mail: record that before anything else can happen.
            detail = reply
            if refused:
                detail += "; refused: " + "; ".join(f"<{r}> {why}" for r, why in refused)
            try:
                await _record(store, "mark_sent", mail.id, detail, now, retries=retries)
            except Exception as e:  # noqa: BLE001
                # Sending more without recording would multiply the resends after the lease.
                stop(i, f"sent outbox {mail.id} but cannot record it: {_describe(e)}")
                log.critical("outbox %d <%s>: %s; it will be sent again when the lease ends; stopping",
                             mail.id, mail.mail_message_id, stopped)
                break
            failpoint("after-mark-sent")
            attempts.append(Attempt(mail.id, mail.mail_message_id, SENT, detail, refused=tuple(refused)))
            if refused:
                log.warning("outbox %d <%s> sent to %d of %d recipient(s); refusals for a person: %s",
                            mail.id, mail.mail_message_id, len(rcpts) - len(refused), len(rcpts), detail)
            else:
                log.info("outbox %d <%s> sent: %s", mail.id, mail.mail_message_id, reply)
            i += 1
    finally:
        await conn.close()

    report = DeliveryReport(leased=len(mails), attempts=tuple(attempts), deferred=tuple(deferred),
                            stopped=stopped)
    log.info("outbox: %d sent, %d temporary, %d permanent, %d deferred",
             len(report.sent), len(report.temporary), len(report.permanent), len(report.deferred))
    return report


def deliver_due_sync(store: Any, smtp: MailServer, now: dt.datetime, **kwargs: Any) -> DeliveryReport:
    """deliver_due for the CLI: runs its own event loop (not to be called inside one)."""
    return asyncio.run(deliver_due(store, smtp, now, **kwargs))


def _aware(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"now must be timezone-aware, got naive {value!r}")
    return value.astimezone(dt.UTC)
