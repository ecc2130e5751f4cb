"""Shared by the web desk's tests: a deployment holding the sample month (examples/, received on
20 November 2026, one of them quarantined), a clock the tests move, and the login link read from
the outbox as the person would read it from the mail."""
from __future__ import annotations

import contextlib
import datetime as dt
import email
import email.policy
import io
import re
import shutil
from pathlib import Path

from mailbot.app import cli
from mailbot.app.config import WebSettings, load_config
from mailbot.app.wiring import build
from mailbot.dates.zone import bureau_zone
from mailbot.writing.web import LOGIN_SUBJECT

from conftest import ROOT

CREDIT = "xinyong.staff@cqscjg.example.cn"
FAGUI = "fagui@cqscjg.example.cn"          # 政策法规科
CANYIN = "canyin@cqscjg.example.cn"        # 餐饮科
NOW = dt.datetime(2026, 11, 25, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
SECRET = "test-secret-" + "0" * 40


class Clock:
    """The desk's clock, moved by the test."""

    def __init__(self, now: dt.datetime = NOW):
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


def write_config(tmp_path: Path, web: str = "") -> Path:
    text = (ROOT / "config.example.yaml").read_text(encoding="utf-8")
    text = text.replace("storage: storage", f"storage: {tmp_path / 'storage'}")
    text = text.replace("# rules: rules", f"rules: {ROOT / 'rules'}")
    p = tmp_path / "config.yaml"
    p.write_text(text + web, encoding="utf-8")
    return p


def seed(directory: Path) -> Path:
    """The sample month ingested into a fresh deployment under `directory`; its config."""
    cfg = write_config(directory)
    files = sorted(str(p) for p in (ROOT / "examples").glob("*.eml"))
    with contextlib.redirect_stdout(io.StringIO()):
        assert cli.main(["--config", str(cfg), "ingest", "--json", "--received", "2026-11-20T10:00:00+08:00",
                         *files]) == 0
    return cfg


def copy_of(seeded: Path, tmp_path: Path) -> Path:
    """A private copy of a seeded deployment (the test may change it)."""
    shutil.copytree(seeded.parent / "storage", tmp_path / "storage")
    return write_config(tmp_path)


def open_desk(cfg: Path, clock: Clock, settings: WebSettings | None = None):
    """(app, store) of the deployment `cfg`, on `clock`."""
    from mailbot.web.app import create_app
    config = load_config(cfg)
    deployment = build(config)
    store = deployment.open_store()
    app = create_app(deployment, store, settings=settings or WebSettings(), clock=clock, secret=SECRET)
    return app, store


def mailed_link(store, address: str) -> str:
    """The link in the newest login mail to `address`."""
    for o in store.outbox(limit=1000):                    # newest first
        if o.subject == LOGIN_SUBJECT and address in o.recipients:
            text = email.message_from_bytes(o.raw, policy=email.policy.default).get_body(("plain",)).get_content()
            return re.search(r"https?://\S+/login/\S+", text).group(0)
    raise AssertionError(f"no login mail to {address}")


def quarantined(store) -> str:
    [m] = store.messages(limit=100, outcome="quarantined")
    return m.receipt_no


def now_beijing() -> dt.datetime:
    return dt.datetime.now(bureau_zone())
