"""The deployment's configuration: one schema with types, defaults and help, checked with errors that name the key.

Which address belongs to which section is deployment data and lives here, not in rules/.
Any string value may be "${NAME}" (or contain it) to take a secret from the environment.
"""
from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from mailbot.model import Authentication

__all__ = ["ConfigError", "Config", "MailServer", "BulletinSettings", "WebSettings", "load_config",
           "config_from_mapping", "SCHEMA", "PROJECT_ROOT"]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


class ConfigError(ValueError):
    """Every mistake in the config at once, each naming its key."""

    def __init__(self, file: str, issues: list[str]):
        self.file = file
        self.issues = issues
        super().__init__("\n".join(f"{file}: {i}" for i in issues))


@dataclass(frozen=True)
class MailServer:
    host: str
    port: int
    security: str              # ssl | starttls | plain
    username: str | None = None
    password: str | None = None
    folder: str = "INBOX"      # imap only
    sender: str | None = None  # smtp only: the From of every mail mailbot sends


@dataclass(frozen=True)
class BulletinSettings:
    """The monthly 调度通报 to every section: sent at all, and how many working days after the
    month's last deadline (1: the working day after it, the package's day)."""
    enabled: bool = True
    workdays_after_last_deadline: int = 1


@dataclass(frozen=True)
class WebSettings:
    """The web desk (mailbot web, and a thread of mailbot run where the config has `web:`)."""
    host: str = "127.0.0.1"
    port: int = 8080
    session_hours: int = 12            # a login lasts this long
    secret_key_file: Path | None = None  # signs the session cookie; made (0600) on first use
    base_url: str = ""                 # how people reach it (the links mailed say it): https://… behind a proxy
    secure_cookies: bool = False       # cookies only over HTTPS (true where base_url is https)

    @property
    def link_base(self) -> str:
        return (self.base_url or f"http://{self.host}:{self.port}").rstrip("/")


@dataclass(frozen=True)
class Config:
    file: str
    mailbox_address: str
    mailbox_name: str
    credit_section: str
    sections: dict[str, tuple[str, ...]]
    rules: Path
    storage: Path
    database: str
    timezone: str
    replies_per_sender_per_hour: int = 10
    imap: MailServer | None = None
    smtp: MailServer | None = None
    maildir: Path | None = None
    folders: dict[str, str] | None = None
    move_messages: bool = True
    first_run: str = "all"
    poll_interval: int = 60
    outbox_interval: int = 30
    max_silence: int = 900
    standby_retry: int = 5
    workers: int | None = None        # processes deciding ahead on a backlog; None: the cores but one
    tracking_since: str | None = None
    authentication: Authentication | None = None
    section_heads: dict[str, str] = field(default_factory=dict)
    bulletin: BulletinSettings = BulletinSettings()
    web: WebSettings | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def section_of_address(self, address: str) -> str | None:
        address = address.strip().lower()
        for section, addresses in self.sections.items():
            if address in addresses:
                return section
        return None

    @property
    def own_addresses(self) -> frozenset[str]:
        own = {self.mailbox_address}
        if self.smtp and self.smtp.sender:
            own.add(_bare_address(self.smtp.sender))
        return frozenset(own)


def _bare_address(value: str) -> str:
    m = re.search(r"<([^>]+)>", value)
    return (m.group(1) if m else value).strip().lower()


# ---------------------------------------------------------------- the schema: key -> (check, default, help)

def _str(v, key, issues):
    if not isinstance(v, str) or not v.strip():
        issues.append(f"{key}: expected a non-empty string, got {v!r}")
        return None
    return v.strip()


def _address(v, key, issues):
    s = _str(v, key, issues)
    if s is not None and not _ADDRESS.match(_bare_address(s)):
        issues.append(f"{key}: {s!r} is not an email address")
        return None
    return s


def _int(v, key, issues):
    if isinstance(v, bool) or not isinstance(v, int):
        issues.append(f"{key}: expected an integer, got {v!r}")
        return None
    return v


def _bool(v, key, issues):
    if not isinstance(v, bool):
        issues.append(f"{key}: expected true or false, got {v!r}")
        return None
    return v


def _period(v: Any, key: str, issues: list[str]) -> str | None:
    from mailbot.dates.period import Period
    try:
        return str(Period.parse(str(v)))
    except ValueError as e:
        issues.append(f"{key}: {e}")
        return None


def _positive(v, key, issues):
    n = _int(v, key, issues)
    if n is not None and n <= 0:
        issues.append(f"{key}: must be greater than 0, got {n}")
        return None
    return n


def _workers(v, key, issues):
    n = _int(v, key, issues)
    if n is not None and not 0 <= n <= 64:
        issues.append(f"{key}: must be 0..64, got {n}")
        return None
    return n


_OUTCOMES = ("accepted", "partially_accepted", "rejected", "quarantined", "ignored")


def _folders(v, key, issues):
    if not isinstance(v, dict):
        issues.append(f"{key}: expected a mapping from outcome to folder name")
        return None
    out = {}
    for k, name in v.items():
        if k not in _OUTCOMES:
            issues.append(f"{key}.{k}: unknown outcome (known: {', '.join(_OUTCOMES)})")
        elif _str(name, f"{key}.{k}", issues) is not None:
            out[k] = name.strip()
    return out


def _first_run(v, key, issues):
    if v not in ("all", "new"):
        issues.append(f"{key}: expected all or new, got {v!r}")
        return None
    return v


def _sections(v, key, issues):
    if not isinstance(v, dict) or not v:
        issues.append(f"{key}: expected a mapping from section id to a list of addresses")
        return {}
    out: dict[str, tuple[str, ...]] = {}
    seen: dict[str, str] = {}
    for sid, addrs in v.items():
        if isinstance(addrs, str):
            addrs = [addrs]
        if not isinstance(addrs, list):
            issues.append(f"{key}.{sid}: expected a list of addresses, got {addrs!r}")
            continue
        clean = []
        for i, a in enumerate(addrs):
            a2 = _address(a, f"{key}.{sid}[{i}]", issues)
            if a2 is None:
                continue
            a2 = _bare_address(a2)
            if a2 in seen and seen[a2] != sid:
                issues.append(f"{key}.{sid}[{i}]: {a2} is already listed under {seen[a2]}")
            seen[a2] = str(sid)
            clean.append(a2)
        out[str(sid)] = tuple(clean)
    return out


def _section_heads(v, key, issues):
    if not isinstance(v, dict):
        issues.append(f"{key}: expected a mapping from section id to the head's address")
        return {}
    out: dict[str, str] = {}
    for sid, addr in v.items():
        a = _address(addr, f"{key}.{sid}", issues)
        if a is not None:
            out[str(sid)] = _bare_address(a)
    return out


_BULLETIN_KEYS = {"enabled": _bool, "workdays_after_last_deadline": _positive}


def _bulletin(v, key, issues):
    if not isinstance(v, dict):
        issues.append(f"{key}: expected a mapping with enabled and workdays_after_last_deadline")
        return BulletinSettings()
    vals = {}
    for k, x in v.items():
        if k not in _BULLETIN_KEYS:
            issues.append(f"{key}.{k}: unknown key (known: {', '.join(_BULLETIN_KEYS)})")
        elif x is not None and (checked := _BULLETIN_KEYS[k](x, f"{key}.{k}", issues)) is not None:
            vals[k] = checked
    return BulletinSettings(**vals)


def _authentication(v, key, issues):
    if not isinstance(v, dict):
        issues.append(f"{key}: expected a mapping with authserv_id and require")
        return None
    for k in v:
        if k not in ("authserv_id", "require"):
            issues.append(f"{key}.{k}: unknown key (known: authserv_id, require)")
    server = _str(v.get("authserv_id"), f"{key}.authserv_id", issues)
    require = v.get("require", "dmarc")
    if require not in ("dmarc", "dkim", "spf"):
        issues.append(f"{key}.require: expected one of dmarc, dkim, spf, got {require!r}")
        return None
    return Authentication(server.lower(), require) if server else None


def _security(v, key, issues):
    if v not in ("ssl", "starttls", "plain"):
        issues.append(f"{key}: expected one of ssl, starttls, plain, got {v!r}")
        return None
    return v


_SERVER_KEYS: dict[str, tuple[Callable, Any, str]] = {
    "host": (_str, None, "server name or address"),
    "port": (_int, None, "port; default by security: imap 993/143, smtp 465/587/25"),
    "security": (_security, "ssl", "ssl (implicit TLS) | starttls | plain (loopback only unless allow_plain)"),
    "username": (_str, None, "login name"),
    "password": (_str, None, "password or client authorisation code; use ${ENV_VAR}"),
    "folder": (_str, "INBOX", "imap: the folder watched"),
    "sender": (_address, None, "smtp: From of every mail mailbot sends, e.g. 信用监管科 <x@y>"),
}

_WEB_KEYS: dict[str, tuple[Callable, Any, str]] = {
    "host": (_str, "127.0.0.1", "address to listen on (behind a reverse proxy: keep 127.0.0.1)"),
    "port": (_positive, 8080, "port to listen on"),
    "session_hours": (_positive, 12, "hours a login lasts"),
    "secret_key_file": (_str, None, "file holding the key that signs session cookies; default storage/web-secret.key, "
                        "made on first start"),
    "base_url": (_str, None, "the address people open, e.g. https://xyjg.example.cn (the mailed links use it); "
                 "default http://host:port"),
    "secure_cookies": (_bool, None, "send cookies over HTTPS only; default true where base_url is https"),
}


def _web(v: Any, key: str, issues: list[str], base: Path) -> WebSettings | None:
    if v is None:
        return None
    if v is True or v == {}:
        v = {}
    if not isinstance(v, dict):
        issues.append(f"{key}: expected a mapping ({', '.join(_WEB_KEYS)}) or true")
        return None
    for k in v:
        if k not in _WEB_KEYS:
            issues.append(f"{key}.{k}: unknown key (known: {', '.join(_WEB_KEYS)})")
    vals = {k: check(v[k], f"{key}.{k}", issues) if v.get(k) is not None else default
            for k, (check, default, _help) in _WEB_KEYS.items()}
    base_url = (vals["base_url"] or "").rstrip("/")
    if base_url and not re.match(r"^https?://[^/\s]+(/\S*)?$", base_url):
        issues.append(f"{key}.base_url: expected http(s)://host[/path], got {base_url!r}")
    secure = vals["secure_cookies"] if vals["secure_cookies"] is not None else base_url.startswith("https://")
    return WebSettings(host=vals["host"] or "127.0.0.1", port=vals["port"] or 8080,
                       session_hours=vals["session_hours"] or 12,
                       secret_key_file=(base / vals["secret_key_file"]).resolve() if vals["secret_key_file"] else None,
                       base_url=base_url, secure_cookies=bool(secure))


SCHEMA: dict[str, tuple[Callable, Any, str]] = {
    "mailbox_address": (_address, None, "the credit section's official address, read and answered from"),
    "mailbox_name": (_str, "信用监管科", "display name on every mail mailbot sends"),
    "credit_section": (_str, None, "id of the section that receives summaries (as in rules/sections.yaml)"),
    "sections": (_sections, None, "section id -> list of its staff's addresses"),
    "rules": (_str, None, "rules folder; default: the project's rules/"),
    "storage": (_str, None, "data folder; default: storage/ beside the config"),
    "database": (_str, None, "SQLAlchemy URL; default: SQLite inside storage"),
    "timezone": (_str, "Asia/Shanghai", "the bureau's time zone"),
    "replies_per_sender_per_hour": (_int, 10, "cap on automatic replies to one address per hour"),
    "imap": (None, None, "IMAP server: host, port, security, username, password, folder"),
    "smtp": (None, None, "SMTP server: host, port, security, username, password, sender"),
    "maildir": (_str, None, "read this local Maildir instead of IMAP"),
    "folders": (_folders, None, "outcome -> folder a message is moved to after it is stored "
                "(default 已受理, 已退回, 待人工, 已忽略)"),
    "move_messages": (_bool, True, "false: never move, only flag (servers where moving is not allowed)"),
    "first_run": (_first_run, "all", "with no saved progress: all = process what the folder holds, new = only later mail"),
    "poll_interval": (_positive, 60, "seconds between polls; a poll runs even under IDLE"),
    "outbox_interval": (_positive, 30, "seconds between outbox deliveries"),
    "max_silence": (_positive, 900, "seconds without a successful poll before `mailbot health` fails"),
    "standby_retry": (_positive, 5, "PostgreSQL: seconds between a standby daemon's tries to become the active one"),
    "workers": (_workers, None, "processes that parse and decide a backlog ahead of the one recording it "
                "(app/ahead.py); default: the cores but one; 0: decide every message in the recording process"),
    "tracking_since": (_period, None, "YYYY-MM: the first month mailbot collects; earlier months are 不适用 in status and score"),
    "authentication": (_authentication, None,
                       "believe the Authentication-Results your own mail server adds: authserv_id (the name it "
                       "writes first in that header, e.g. mail.example.cn) and require (dmarc | dkim | spf, "
                       "default dmarc); mail claiming a registered address without require=pass is quarantined"),
    "section_heads": (_section_heads, None, "section id -> its head's address: escalation notices go to the head "
                      "(optional; without one they go to the section's addresses and say so)"),
    "bulletin": (_bulletin, None, "the monthly 调度通报 to every section: enabled (default true), "
                 "workdays_after_last_deadline (default 1: the working day after the month's last deadline)"),
    "web": (None, None, "the web desk: host, port, session_hours, secret_key_file, base_url, secure_cookies "
            "(see README); present: `mailbot run` serves it too"),
}
_REQUIRED = ("mailbox_address", "credit_section", "sections")


def _expand_env(value: Any, key: str, issues: list[str]) -> Any:
    if isinstance(value, str):
        def sub(m: re.Match) -> str:
            name = m.group(1)
            if name not in os.environ:
                issues.append(f"{key}: environment variable {name} is not set")
                return ""
            return os.environ[name]
        return _ENV.sub(sub, value)
    if isinstance(value, dict):
        return {k: _expand_env(v, f"{key}.{k}" if key else str(k), issues) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, f"{key}[{i}]", issues) for i, v in enumerate(value)]
    return value


def _server(v: Any, key: str, issues: list[str], kind: str) -> MailServer | None:
    if v is None:
        return None
    if not isinstance(v, dict):
        issues.append(f"{key}: expected a mapping")
        return None
    vals: dict[str, Any] = {}
    for k in v:
        if k not in _SERVER_KEYS or (kind == "imap" and k == "sender") or (kind == "smtp" and k == "folder"):
            issues.append(f"{key}.{k}: unknown key")
    for k, (check, default, _help) in _SERVER_KEYS.items():
        if k in v and v[k] is not None:
            vals[k] = check(v[k], f"{key}.{k}", issues)
        else:
            vals[k] = default
    if not vals.get("host"):
        issues.append(f"{key}.host: required")
        return None
    sec = vals.get("security") or "ssl"
    if vals.get("port") is None:
        vals["port"] = {"imap": {"ssl": 993, "starttls": 143, "plain": 143},
                        "smtp": {"ssl": 465, "starttls": 587, "plain": 25}}[kind][sec]
    if sec == "plain" and not v.get("allow_plain") and vals["host"] not in ("127.0.0.1", "localhost", "::1"):
        issues.append(f"{key}.security: plain is only allowed to loopback (set {key}.allow_plain: true to insist)")
    return MailServer(host=vals["host"], port=vals["port"], security=sec, username=vals["username"],
                      password=vals["password"], folder=vals["folder"] or "INBOX", sender=vals["sender"])


def _register_secrets(data: Any, *servers: MailServer | None) -> None:
    """Every password, and every value under a secret-like key, is masked wherever mailbot writes text."""
    from mailbot.redact import SECRET_KEY, register

    def walk(v: Any, key: str) -> None:
        if isinstance(v, dict):
            for k, x in v.items():
                walk(x, str(k))
        elif isinstance(v, list):
            for x in v:
                walk(x, key)
        elif isinstance(v, str) and SECRET_KEY.search(key):
            register(v)
    walk(data, "")
    for s in servers:
        if s is not None:
            register(s.password, username=s.username)


def config_from_mapping(data: Any, file: str = "<config>", base_dir: Path | None = None) -> Config:
    """Check a parsed config mapping against SCHEMA; raise ConfigError listing every mistake."""
    issues: list[str] = []
    if not isinstance(data, dict):
        raise ConfigError(file, ["the config must be a YAML mapping of keys"])
    for k in data:
        if k not in SCHEMA:
            issues.append(f"{k}: unknown key (known: {', '.join(SCHEMA)})")
    data = _expand_env(data, "", issues)
    vals: dict[str, Any] = {}
    for k, (check, default, _help) in SCHEMA.items():
        if k in ("imap", "smtp", "web"):
            continue
        if data.get(k) is None:
            if k in _REQUIRED:
                issues.append(f"{k}: required ({_help})")
            vals[k] = default
        else:
            vals[k] = check(data[k], k, issues)
    imap = _server(data.get("imap"), "imap", issues, "imap")
    smtp = _server(data.get("smtp"), "smtp", issues, "smtp")
    try:
        import zoneinfo
        zoneinfo.ZoneInfo(vals["timezone"] or "Asia/Shanghai")
    except Exception:
        issues.append(f"timezone: unknown time zone {vals['timezone']!r}")
    sections = vals.get("sections") or {}
    if vals.get("credit_section") and sections and vals["credit_section"] not in sections:
        issues.append(f"credit_section: {vals['credit_section']!r} is not one of the keys of sections")
    if issues:
        raise ConfigError(file, issues)
    base = base_dir or Path.cwd()
    storage = (base / vals["storage"]) if vals.get("storage") else base / "storage"
    rules = (base / vals["rules"]) if vals.get("rules") else PROJECT_ROOT / "rules"
    database = vals.get("database") or f"sqlite:///{(storage / 'mailbot.sqlite3').resolve()}"
    web = _web(data.get("web"), "web", issues, base)
    if issues:
        raise ConfigError(file, issues)
    if web is not None and web.secret_key_file is None:
        web = dataclasses.replace(web, secret_key_file=(storage / "web-secret.key").resolve())
    _register_secrets(data, imap, smtp)
    return Config(
        file=file,
        mailbox_address=_bare_address(vals["mailbox_address"]),
        mailbox_name=vals["mailbox_name"],
        credit_section=vals["credit_section"],
        sections=sections,
        rules=rules.resolve(),
        storage=storage.resolve(),
        database=database,
        timezone=vals["timezone"],
        replies_per_sender_per_hour=vals["replies_per_sender_per_hour"],
        imap=imap,
        smtp=smtp,
        maildir=(base / vals["maildir"]).resolve() if vals.get("maildir") else None,
        folders=vals.get("folders"),
        move_messages=vals["move_messages"],
        first_run=vals["first_run"],
        poll_interval=vals["poll_interval"],
        outbox_interval=vals["outbox_interval"],
        max_silence=vals["max_silence"],
        standby_retry=vals["standby_retry"],
        workers=vals["workers"],
        tracking_since=vals["tracking_since"],
        authentication=vals["authentication"],
        section_heads=vals["section_heads"] or {},
        bulletin=vals["bulletin"] or BulletinSettings(),
        web=web,
    )


def load_config(path: str | Path) -> Config:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(str(path), [f"cannot read: {e.strerror}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        raise ConfigError(str(path), [f"{where}not valid YAML: {getattr(e, 'problem', e)}"]) from None
    return config_from_mapping(data, str(path), path.resolve().parent)


def check_sections_against_rules(config: Config, section_ids: set[str]) -> list[str]:
    """Config keys that name no section in rules/ (a typo would silently orphan an address)."""
    return [f"{config.file}: {key}.{sid}: no such section in rules/sections.yaml"
            for key, ids in (("sections", config.sections), ("section_heads", config.section_heads))
            for sid in ids if sid not in section_ids]
