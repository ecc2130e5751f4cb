"""The web desk as a Starlette app over one deployment and its store.

Every page but the login page needs a session (else: redirect to /login). Who the visitor is comes
from the config on each request (`Actor.of(config, address, "web")`): the credit section sees and
does everything; a section's staff see their own section's row, messages and files, read-only (a
message or file of another section is 404, a credit-only page 403). Every POST carries the
session's CSRF token (403 without it). Every state change is a desk action (mailbot/desk/), so
audited with the address, exactly as the same command by mail. Downloads are addressed by ids
(attachment id, receipt number, period, year), never by a path.

Views are plain functions run in the thread pool (the store is synchronous); `clock` is the
deployment's clock unless a test gives one.
"""
from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import logging
import re
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from mailbot.app.config import WebSettings
from mailbot.dates.period import Period, add_months, period_of
from mailbot.dates.workdays import SOURCES_ZH, CalendarGapError, day_names
from mailbot.dates.zone import bureau_time, zh_date, zh_time
from mailbot.desk import ACTIONS, Actor
from mailbot.duties.package import evidence_zip_filename, package_filename, score_filename
from mailbot.model import OutgoingMail
from mailbot.web import auth
from mailbot.writing.common import XLSX_MIME, ZIP_MIME, task_label
from mailbot.writing.vocabulary import ITEM_WORDS, OUTCOME_WORDS, STATE_MEANINGS, STATE_WORDS
from mailbot.writing.web import login_letter

__all__ = ["create_app", "issue_link"]

log = logging.getLogger("mailbot.web")

HERE = Path(__file__).resolve().parent
_OPEN_STATES = ("missing", "rejected", "reused", "not_due")
_RECEIPT = re.compile(r"XY\d{8}-\d{5,}")
_LOCAL = re.compile(r"^/(?!/)[\w/\-?=&%.:]*$")
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",          # a login link in the address bar goes nowhere
    "Cache-Control": "no-store",
}


class _Missing(Exception):
    """Answered 404: no such thing, or not this visitor's to see (the same answer)."""


def issue_link(store: Any, settings: WebSettings, address: str, now: dt.datetime) -> tuple[str, str, dt.datetime]:
    """A one-time login link for `address` (registered: the caller checked): (link, token hash,
    expiry). Only the hash is stored."""
    token = auth.new_token()
    digest = auth.token_hash(token)
    expires = auth.expires(now)
    store.add_login_token(digest, address, now=now, expires_at=expires)
    return f"{settings.link_base}/login/{token}", digest, expires


def _download(data: bytes, filename: str, mime: str = "application/octet-stream") -> Response:
    """Always an attachment (never shown inline: a stored file is the sender's, not ours)."""
    ascii_name = re.sub(r"[^A-Za-z0-9._-]", "_", filename) or "file"
    disposition = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{urllib.parse.quote(filename, safe='')}"
    return Response(data, media_type=mime, headers={"Content-Disposition": disposition, **_SECURITY_HEADERS})


def _letter_text(raw: bytes) -> tuple[str, list[str]]:
    """A letter as its reader saw it: the plain text, and the names of its attachments."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    body = msg.get_body(("plain",))
    text = body.get_content() if body is not None else ""
    return text, [a.get_filename() or "" for a in msg.iter_attachments()]


def _due_day(due: dt.date | dt.datetime | None) -> dt.date | None:
    if isinstance(due, dt.datetime):
        return bureau_time(due).date()
    return due


class WebDesk:
    """One deployment's web desk: the desk, the settings, the clock and the templates."""

    def __init__(self, deployment: Any, store: Any, settings: WebSettings, clock: Callable[[], dt.datetime],
                 on_queued: Callable[[], None] | None):
        self.deployment = deployment
        self.config = deployment.config
        self.rules = deployment.rules
        self.store = store
        self.desk = deployment.desk(store)
        self.office = self.desk.office
        self.settings = settings
        self.clock = clock
        self.on_queued = on_queued or (lambda: None)
        self.templates = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                                            undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        self.templates.filters.update(
            when=lambda t: zh_time(t) if t else "—",
            day=lambda d: zh_date(d) if d else "—",
            state=lambda s: STATE_WORDS.get(s, s),
            outcome=lambda o: OUTCOME_WORDS.get(o, o),
            item=lambda s: ITEM_WORDS.get(s, s),
            task=lambda n: task_label(self.rules, n),
            month=lambda p: Period.parse(p).label,
            json=lambda v: json.dumps(v, ensure_ascii=False, default=str),
        )
        self.templates.globals.update(STATE_WORDS=STATE_WORDS, STATE_MEANINGS=STATE_MEANINGS,
                                      OUTCOME_WORDS=OUTCOME_WORDS, mailbox_name=self.config.mailbox_name)

    # ------------------------------------------------------------ sessions

    def user(self, request: Request) -> Actor | None:
        s = request.session
        address, at = s.get("address"), s.get("login_at")
        if not isinstance(address, str) or not isinstance(at, (int, float)):
            return None
        if self.clock().timestamp() - at > self.settings.session_hours * 3600:
            s.clear()
            return None
        return Actor.of(self.config, address, "web")

    def render(self, request: Request, user: Actor | None, name: str, status: int = 200, **context: Any) -> Response:
        now = self.clock()
        here = bureau_time(now)
        flash = request.session.pop("flash", None) if user is not None else None
        page = self.templates.get_template(name).render(
            user=user, csrf=auth.csrf_token(request.session), flash=flash, now=now, this_month=period_of(here),
            this_year=here.year, path=request.url.path,
            waiting=len(self.store.messages(limit=1000, outcome="quarantined")) if user and user.is_credit else 0,
            **context)
        return HTMLResponse(page, status_code=status, headers=_SECURITY_HEADERS)

    def refuse(self, request: Request, user: Actor | None, status: int, reason: str) -> Response:
        return self.render(request, user, "refused.html", status=status, status_code=status, reason=reason)

    def guarded(self, view: Callable[..., Response], *, credit: bool = False) -> Callable[[Request], Any]:
        """A page or action: a session (else the login page), the CSRF token on a POST (else 403),
        the credit section for a credit-only one (else 403); 404 for what is not the visitor's."""
        async def endpoint(request: Request) -> Response:
            user = self.user(request)
            if user is None:
                return RedirectResponse("/login", status_code=303, headers=_SECURITY_HEADERS)
            form = None
            if request.method == "POST":
                form = await request.form()
                if not auth.csrf_ok(request.session, form.get("csrf")):
                    return await run_in_threadpool(self.refuse, request, user, 403, "csrf")
            if credit and not user.is_credit:
                return await run_in_threadpool(self.refuse, request, user, 403, "credit_only")

            def run() -> Response:
                try:
                    return view(request, user, form, **request.path_params)
                except _Missing:
                    return self.refuse(request, user, 404, "missing")
            return await run_in_threadpool(run)
        return endpoint

    # ------------------------------------------------------------ logging in

    async def login_page(self, request: Request) -> Response:
        if request.method == "GET":
            if self.user(request) is not None:
                return RedirectResponse("/", status_code=303)
            return await run_in_threadpool(self.render, request, None, "login.html")
        form = await request.form()
        if not auth.csrf_ok(request.session, form.get("csrf")):
            return await run_in_threadpool(self.refuse, request, None, 403, "csrf")
        address = str(form.get("address") or "").strip().lower()[:320]
        await run_in_threadpool(self.mail_link, address)
        # the same answer whether the address is registered or not: nobody can probe the list
        return await run_in_threadpool(self.render, request, None, "login.html", sent=True)

    def mail_link(self, address: str) -> None:
        actor = Actor.of(self.config, address, "web") if address else None
        if actor is None:
            log.warning("login link asked for an unregistered address %r: none sent", address)
            return
        now = self.clock()
        if self.store.login_tokens_since(actor.address, now - dt.timedelta(hours=1)) >= auth.LOGIN_LINKS_PER_HOUR:
            log.warning("login link for %s not sent: %d already in the last hour", actor.address,
                        auth.LOGIN_LINKS_PER_HOUR)
            return
        link, digest, expires = issue_link(self.store, self.settings, actor.address, now)
        letter = login_letter(to=actor.address, section=actor.section, link=link, expires_at=expires, key=digest,
                              mailbox_address=self.config.mailbox_address, mailbox_name=self.config.mailbox_name,
                              now=bureau_time(now))
        self.store.queue([OutgoingMail(letter.kind, letter.recipients, letter.subject, letter.message_id, letter.raw,
                                       dedupe_key=f"login:{digest}")], now=now)
        self.on_queued()

    async def login_link(self, request: Request) -> Response:
        """GET: a button (a mail scanner fetching the link must not spend it); POST: log in."""
        if request.method == "GET":
            return await run_in_threadpool(self.render, request, None, "login.html", confirm=True)
        form = await request.form()
        if not auth.csrf_ok(request.session, form.get("csrf")):
            return await run_in_threadpool(self.refuse, request, None, 403, "csrf")
        return await run_in_threadpool(self.use_link, request, request.path_params["token"])

    def use_link(self, request: Request, token: str) -> Response:
        now = self.clock()
        address = self.store.use_login_token(auth.token_hash(token), now=now)
        actor = Actor.of(self.config, address, "web") if address else None
        if actor is None:
            return self.render(request, None, "login.html", status=400, bad_link=True)
        request.session.clear()
        request.session.update(address=actor.address, login_at=now.timestamp())
        auth.csrf_token(request.session)
        self.store.record_audit(actor=actor.address, role=actor.role, section=actor.section, channel="web",
                                action="login", args={}, ok=True, result="logged in by a one-time link", now=now)
        return RedirectResponse("/", status_code=303)

    def logout(self, request: Request, user: Actor, form: Any) -> Response:
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    # ------------------------------------------------------------ the month

    def home(self, request: Request, user: Actor, form: Any) -> Response:
        return self.month(request, user, form, period_of(bureau_time(self.clock())))

    def month(self, request: Request, user: Actor, form: Any, period: str) -> Response:
        try:
            period = str(Period.parse(period))
        except ValueError:
            raise _Missing from None
        now = self.clock()
        today = bureau_time(now).date()
        try:
            cells = self.office.status(period, now)
            dues = self.office.deadlines(period)
        except CalendarGapError:
            raise _Missing from None
        if not user.is_credit:
            cells = [c for c in cells if c.section == user.section]
            dues = [d for d in dues if d.section == user.section]
        sections = list(dict.fromkeys(c.section for c in cells))
        tasks = sorted({c.task for c in cells})
        at = {(c.section, c.task): c for c in cells}
        counts = {k: sum(1 for c in cells if c.state == k) for k in STATE_WORDS if k != "not_applicable"}
        upcoming: dict[tuple[dt.date, int], list[str]] = {}
        for d in dues:
            day = _due_day(d.due)
            if day is not None and day >= today:
                upcoming.setdefault((day, d.task), []).append(d.section)
        owed = [c for c in cells if c.state in ("missing", "rejected", "reused")]
        held = self.store.messages(limit=100, outcome="quarantined") if user.is_credit else []
        failures = self.store.failures() if user.is_credit else []
        return self.render(request, user, "month.html", period=period, cells=at, sections=sections, tasks=tasks,
                           counts=counts, upcoming=sorted(upcoming.items())[:10], owed=owed, held=held,
                           failures=failures, previous=add_months(period, -1), following=add_months(period, 1),
                           closed=self.store.closed_periods().get(period))

    # ------------------------------------------------------------ messages

    def messages(self, request: Request, user: Actor, form: Any) -> Response:
        q = request.query_params
        month, section, task, outcome = (q.get(k) or None for k in ("month", "section", "task", "outcome"))
        try:
            month = str(Period.parse(month)) if month else None
            task = int(task) if task else None
        except ValueError:
            return self.refuse(request, user, 400, "bad_filter")
        if section is not None and self.rules.section(section) is None:
            return self.refuse(request, user, 400, "bad_filter")
        if outcome is not None and outcome not in OUTCOME_WORDS:
            return self.refuse(request, user, 400, "bad_filter")
        if not user.is_credit:
            section = user.section
        found = self.store.browse(period=month, section=section, task=task, outcome=outcome, limit=500)
        return self.render(request, user, "messages.html", found=found,
                           chosen={"month": month or "", "section": section or "", "task": task or "",
                                   "outcome": outcome or ""},
                           section_ids=[s.id for s in self.rules.sections],
                           task_numbers=sorted(t.number for t in self.rules.tasks))

    def _detail(self, user: Actor, receipt: str) -> Any:
        if not _RECEIPT.fullmatch(receipt.upper()):
            raise _Missing
        detail = self.store.message_detail(receipt.upper())
        if detail is None or not (user.is_credit or (detail.message.section and detail.message.section == user.section)):
            raise _Missing
        return detail

    def message(self, request: Request, user: Actor, form: Any, receipt: str) -> Response:
        detail = self._detail(user, receipt)
        items = []
        for n, a in enumerate(detail.attachments, 1):
            subs = [s for s in detail.submissions if s.attachment_ref == a.id]
            items.append({"n": n, "file": a, "subs": subs})
        letters = []
        for o in detail.outbox:
            text, names = _letter_text(o.raw)
            letters.append({"mail": o, "text": text, "attachments": names})
        return self.render(request, user, "message.html", m=detail.message, items=items, letters=letters,
                           section_ids=[s.id for s in self.rules.sections],
                           task_numbers=sorted(t.number for t in self.rules.tasks))

    def raw(self, request: Request, user: Actor, form: Any, receipt: str) -> Response:
        m = self._detail(user, receipt).message
        return _download(self.store.read_raw(m.raw_sha256), f"{m.receipt_no}.eml", "message/rfc822")

    def file(self, request: Request, user: Actor, form: Any, file_id: int) -> Response:
        found = self.store.attachment(file_id)
        if found is None:
            raise _Missing
        att, m = found
        if not (user.is_credit or (m.section and m.section == user.section)):
            raise _Missing
        return _download(self.store.read_file(att.sha256), att.filename)

    # ------------------------------------------------------------ the quarantine and its buttons

    def quarantine(self, request: Request, user: Actor, form: Any) -> Response:
        held = []
        for m in self.store.messages(limit=500, outcome="quarantined"):
            detail = self.store.message_detail(m.id)
            held.append({"m": m, "files": detail.attachments if detail else ()})
        return self.render(request, user, "quarantine.html", held=held, failures=self.store.failures(),
                           section_ids=[s.id for s in self.rules.sections],
                           task_numbers=sorted(t.number for t in self.rules.tasks))

    def act(self, request: Request, user: Actor, form: Any, receipt: str, action: str) -> Response:
        """One desk action from a button: confirm / reject / ignore / reclassify, audited by the desk."""
        back = str(form.get("next") or "/quarantine")
        back = back if _LOCAL.match(back) else "/quarantine"
        receipt = receipt.upper()
        now = self.clock()
        if action == "confirm":
            answer = ACTIONS["confirm"](self.desk, user, receipt, str(form.get("section") or ""), now=now)
        elif action in ("reject", "ignore"):
            reason = str(form.get("reason") or "").strip()
            if not reason:
                request.session["flash"] = {"ok": False, "key": "reason_missing"}
                return RedirectResponse(back, status_code=303)
            answer = ACTIONS[action](self.desk, user, receipt, reason[:500], now=now)
        elif action == "reclassify":
            try:
                item = int(form.get("item") or 0) or None
                task = int(form.get("task") or 0) or None
                period = str(Period.parse(str(form.get("period")))) if form.get("period") else None
            except ValueError:
                request.session["flash"] = {"ok": False, "key": "bad_refile"}
                return RedirectResponse(back, status_code=303)
            if task is None and period is None:
                request.session["flash"] = {"ok": False, "key": "bad_refile"}
                return RedirectResponse(back, status_code=303)
            answer = ACTIONS["reclassify"](self.desk, user, receipt, item, task, period, now=now)
        else:
            raise _Missing
        request.session["flash"] = {"ok": answer.ok, "text": answer.text.strip()[:1500]}
        if answer.ok:
            self.on_queued()
        return RedirectResponse(back, status_code=303)

    def refile(self, request: Request, user: Actor, form: Any) -> Response:
        """The quarantine page's re-file form: the receipt number typed in."""
        receipt = str(form.get("receipt") or "").strip().upper()
        if not _RECEIPT.fullmatch(receipt):
            request.session["flash"] = {"ok": False, "key": "bad_refile"}
            return RedirectResponse("/quarantine", status_code=303)
        return self.act(request, user, form, receipt, "reclassify")

    # ------------------------------------------------------------ the package, the score, the calendar, the audit

    def package(self, request: Request, user: Actor, form: Any, period: str) -> Response:
        try:
            period = str(Period.parse(period))
        except ValueError:
            raise _Missing from None
        subs = self.office.submissions(period, self.clock(), light=True)
        folder = self.office.package_dir(period)
        stored = [(p.name, dt.datetime.fromtimestamp(p.stat().st_mtime, dt.UTC)) for p in
                  (folder / package_filename(period), folder / evidence_zip_filename(period)) if p.exists()]
        return self.render(request, user, "package.html", period=period, files=sum(1 for s in subs if s.current),
                           stored=stored, previous=add_months(period, -1), following=add_months(period, 1),
                           xlsx_name=package_filename(period), zip_name=evidence_zip_filename(period))

    def build_package(self, request: Request, user: Actor, form: Any, period: str, kind: str) -> Response:
        """Build the month's package now (the desk's 汇总, audited) and hand over the file asked for."""
        try:
            period = str(Period.parse(period))
        except ValueError:
            raise _Missing from None
        if kind not in ("xlsx", "zip"):
            raise _Missing
        answer = ACTIONS["package"](self.desk, user, period, now=self.clock())
        if not answer.ok:
            request.session["flash"] = {"ok": False, "text": answer.text.strip()[:1500]}
            return RedirectResponse(f"/package/{period}", status_code=303)
        name = package_filename(period) if kind == "xlsx" else evidence_zip_filename(period)
        for filename, data, mime in answer.attachments:
            if filename == name:
                return _download(data, filename, mime)
        # a zip too big to mail was written under storage/packages/ by the action: that one
        path = self.office.package_dir(period) / name
        if not path.exists():
            raise _Missing
        return _download(path.read_bytes(), name, ZIP_MIME if kind == "zip" else XLSX_MIME)

    def _year(self, year: int) -> int:
        if not 2000 <= year <= 2099:
            raise _Missing
        return year

    def score(self, request: Request, user: Actor, form: Any, year: int) -> Response:
        rows, _ = self.office.score(self._year(year), self.clock())
        if not user.is_credit:
            rows = [r for r in rows if r.section == user.section]
        return self.render(request, user, "score.html", year=year, rows=rows)

    def score_file(self, request: Request, user: Actor, form: Any, year: int) -> Response:
        _, data = self.office.score(self._year(year), self.clock())
        return _download(data, score_filename(year), XLSX_MIME)

    def calendar(self, request: Request, user: Actor, form: Any, year: int) -> Response:
        calendar = self.deployment.calendar
        year = self._year(year)
        try:
            days_off, workdays = calendar.schedule(year)
        except CalendarGapError:
            raise _Missing from None
        source = calendar.source(year)
        loaded = self.store.loaded_calendars().get(year)
        names = day_names(source, year, loaded.notice if loaded is not None else None)
        return self.render(request, user, "calendar.html", year=year, source=source, source_words=SOURCES_ZH[source],
                           loaded=loaded, days_off=sorted(days_off), workdays=sorted(workdays), names=names)

    def audit(self, request: Request, user: Actor, form: Any) -> Response:
        action = request.query_params.get("action") or None
        entries = self.store.audit(limit=500, action=action)
        return self.render(request, user, "audit.html", entries=entries, action=action or "")


def create_app(deployment: Any, store: Any, *, settings: WebSettings | None = None,
               clock: Callable[[], dt.datetime] | None = None, on_queued: Callable[[], None] | None = None,
               secret: str | None = None) -> Starlette:
    """The web desk of `deployment` over `store`. `secret` signs the session cookie (default: the
    key in settings.secret_key_file, made there on first use); `on_queued` is called after a mail
    was queued (the daemon wakes its sender)."""
    settings = settings or deployment.config.web or WebSettings()
    if secret is None:
        secret = auth.secret_key(settings.secret_key_file or Path(deployment.config.storage) / "web-secret.key")
    web = WebDesk(deployment, store, settings, clock or deployment.now, on_queued)
    g = web.guarded
    routes = [
        Route("/login", web.login_page, methods=["GET", "POST"]),
        Route("/login/{token}", web.login_link, methods=["GET", "POST"]),
        Route("/logout", g(web.logout), methods=["POST"]),
        Route("/", g(web.home)),
        Route("/month/{period}", g(web.month)),
        Route("/messages", g(web.messages)),
        Route("/messages/{receipt}", g(web.message)),
        Route("/messages/{receipt}/raw", g(web.raw)),
        Route("/messages/{receipt}/{action}", g(web.act, credit=True), methods=["POST"]),
        Route("/files/{file_id:int}", g(web.file)),
        Route("/quarantine", g(web.quarantine, credit=True)),
        Route("/quarantine/refile", g(web.refile, credit=True), methods=["POST"]),
        Route("/package/{period}", g(web.package, credit=True)),
        Route("/package/{period}/{kind}", g(web.build_package, credit=True), methods=["POST"]),
        Route("/score/{year:int}", g(web.score)),
        Route("/score/{year:int}/xlsx", g(web.score_file, credit=True)),
        Route("/calendar/{year:int}", g(web.calendar)),
        Route("/audit", g(web.audit, credit=True)),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        user = web.user(request)
        if user is None:
            return RedirectResponse("/login", status_code=303)
        return await run_in_threadpool(web.refuse, request, user, 404, "missing")

    app = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found}, middleware=[
        Middleware(SessionMiddleware, secret_key=secret, session_cookie="mailbot_desk",
                   max_age=settings.session_hours * 3600, same_site="strict", https_only=settings.secure_cookies)])
    app.state.web = web
    return app
