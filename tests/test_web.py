"""The web desk over plain HTTP (Starlette's TestClient): the pages, and every refusal — no
session, a used or expired link, a missing or wrong CSRF token, another section's message or
file, an unregistered address (no link, and the same answer on the page)."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from starlette.testclient import TestClient

from mailbot.app.config import ConfigError, config_from_mapping
from mailbot.web import auth

from webdesk import CANYIN, CREDIT, FAGUI, Clock, copy_of, mailed_link, open_desk, quarantined, seed

pytestmark = pytest.mark.slow          # each test ingests or copies the sample month into SQLite


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    return seed(tmp_path_factory.mktemp("seeded"))


@pytest.fixture
def desk(seeded, tmp_path):
    clock = Clock()
    app, store = open_desk(copy_of(seeded, tmp_path), clock)
    yield app, store, clock
    store.close()


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def ask_link(client: TestClient, address: str):
    page = client.get("/login")
    return client.post("/login", data={"address": address, "csrf": csrf_of(page.text)})


def use_link(client: TestClient, link: str):
    path = link.split("://", 1)[1].split("/", 1)[1]
    page = client.get("/" + path)
    return client.post("/" + path, data={"csrf": csrf_of(page.text)}, follow_redirects=False)


def logged_in(app, store, address: str) -> TestClient:
    client = TestClient(app)
    ask_link(client, address)
    assert use_link(client, mailed_link(store, address)).status_code == 303
    return client


# ---------------------------------------------------------------- no session: the login page only

@pytest.mark.parametrize("path", ["/", "/month/2026-11", "/messages", "/messages/XY20261120-00001",
                                  "/messages/XY20261120-00001/raw", "/files/1", "/quarantine", "/package/2026-11",
                                  "/score/2026", "/score/2026/xlsx", "/calendar/2027", "/audit", "/nothing-here"])
def test_without_a_session_every_page_sends_to_the_login_page(desk, path):
    app, _store, _clock = desk
    r = TestClient(app).get(path, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"


def test_a_post_without_a_session_does_nothing(desk):
    app, store, _clock = desk
    receipt = quarantined(store)
    r = TestClient(app).post(f"/messages/{receipt}/ignore", data={"reason": "x", "csrf": "x"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert quarantined(store) == receipt and not store.audit(action="ignore")


# ---------------------------------------------------------------- the link

def test_the_mailed_link_logs_in_once(desk):
    app, store, _clock = desk
    client = TestClient(app)
    r = ask_link(client, CREDIT.upper())
    assert "登录链接已发送至该邮箱" in r.text
    link = mailed_link(store, CREDIT)
    assert link.startswith("http://127.0.0.1:8080/login/")
    token = link.rsplit("/", 1)[1]
    # only the hash is kept
    with store.engine.connect() as c:
        import sqlalchemy as sa
        kept = c.execute(sa.text("select token_hash, address from login_tokens")).all()
    assert kept == [(auth.token_hash(token), CREDIT)]
    # opening the link (a mail scanner would) does not spend it
    assert TestClient(app).get(link.split("8080", 1)[1]).status_code == 200
    r = use_link(client, link)
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" not in cookie
    home = client.get("/")
    assert home.status_code == 200 and "2026年11月报送情况" in home.text
    assert [e.action for e in store.audit(actor=CREDIT)] == ["login"]
    # a used link: refused, no session
    again = TestClient(app)
    r = use_link(again, link)
    assert r.status_code == 400 and "已使用过" in r.text
    assert again.get("/", follow_redirects=False).status_code == 303


def test_an_expired_link_is_refused(desk):
    app, store, clock = desk
    client = TestClient(app)
    ask_link(client, FAGUI)
    link = mailed_link(store, FAGUI)
    clock.advance(minutes=15, seconds=1)
    r = use_link(client, link)
    assert r.status_code == 400 and "15分钟" in r.text
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"


def test_a_made_up_link_is_refused(desk):
    app, _store, _clock = desk
    r = use_link(TestClient(app), "http://x/login/" + "A" * 43)
    assert r.status_code == 400


def test_an_unregistered_address_gets_no_link_and_the_same_answer(desk):
    app, store, _clock = desk
    before = len(store.outbox(limit=1000))
    stranger = ask_link(TestClient(app), "zhoumin_0531@126.com")
    registered = ask_link(TestClient(app), FAGUI)
    assert len(store.outbox(limit=1000)) == before + 1            # the registered one only
    strip = lambda html: re.sub(r'name="csrf" value="[^"]+"|页面生成于[^<]+', "", html)  # noqa: E731
    assert stranger.status_code == registered.status_code == 200
    assert strip(stranger.text) == strip(registered.text)


def test_login_links_per_address_are_capped(desk):
    app, store, _clock = desk
    client = TestClient(app)
    for _ in range(auth.LOGIN_LINKS_PER_HOUR + 3):
        assert "登录链接已发送" in ask_link(client, FAGUI).text
    assert store.login_tokens_since(FAGUI, _clock() - dt.timedelta(hours=1)) == auth.LOGIN_LINKS_PER_HOUR


def test_the_login_form_needs_its_csrf_token(desk):
    app, store, _clock = desk
    client = TestClient(app)
    client.get("/login")
    r = client.post("/login", data={"address": FAGUI})
    assert r.status_code == 403
    assert not [o for o in store.outbox(limit=1000) if FAGUI in o.recipients and "登录" in o.subject]


def test_a_session_ends_after_its_lifetime(desk):
    app, store, clock = desk
    client = logged_in(app, store, CREDIT)
    clock.advance(hours=12, seconds=1)
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"


# ---------------------------------------------------------------- CSRF on every POST

@pytest.mark.parametrize("token", [None, "", "wrong-token-" + "x" * 32])
def test_a_post_without_the_sessions_csrf_token_is_403(desk, token):
    app, store, _clock = desk
    client = logged_in(app, store, CREDIT)
    receipt = quarantined(store)
    data = {"reason": "测试"} | ({"csrf": token} if token is not None else {})
    for path in (f"/messages/{receipt}/ignore", "/package/2026-11/xlsx", "/logout"):
        r = client.post(path, data=data, follow_redirects=False)
        assert r.status_code == 403, path
    assert quarantined(store) == receipt and not store.audit(action="ignore") and not store.audit(action="package")


# ---------------------------------------------------------------- a section's clerk

def test_a_section_sees_its_own_row_messages_and_files_only(desk):
    app, store, _clock = desk
    client = logged_in(app, store, FAGUI)
    home = client.get("/").text
    assert "政策法规科" in home and "餐饮科" not in home and "（只读）" in home
    listed = client.get("/messages").text
    mine = set(re.findall(r"XY\d{8}-\d{5}", listed))
    everyone = {m.receipt_no: m for m in store.messages(limit=100)}
    assert mine and all(everyone[r].section == "政策法规科" for r in mine)
    other = next(m for m in everyone.values() if m.section == "餐饮科")
    assert client.get(f"/messages/{other.receipt_no}").status_code == 404
    assert client.get(f"/messages/{other.receipt_no}/raw").status_code == 404
    other_file = store.message_detail(other.receipt_no).attachments[0].id
    assert client.get(f"/files/{other_file}").status_code == 404
    # the same answer as for a message that does not exist
    assert client.get("/messages/XY20991231-99999").status_code == 404
    own = store.message_detail(sorted(mine)[0])
    got = client.get(f"/files/{own.attachments[0].id}")
    assert got.status_code == 200 and got.content == store.read_file(own.attachments[0].sha256)
    assert "attachment;" in got.headers["content-disposition"]
    # the credit section's pages and buttons are not a section's
    for path in ("/quarantine", "/audit", "/package/2026-11", "/score/2026/xlsx"):
        assert client.get(path).status_code == 403, path
    csrf = csrf_of(home)
    r = client.post(f"/messages/{quarantined(store)}/confirm", data={"section": "政策法规科", "csrf": csrf})
    assert r.status_code == 403 and store.messages(limit=100, outcome="quarantined")
    # its own messages filter cannot be widened
    assert "餐饮科" not in client.get("/messages?section=餐饮科").text.split("<main>")[1].split("</form>")[1]


# ---------------------------------------------------------------- the credit section

def test_the_credit_section_reads_the_month_messages_and_files(desk):
    app, store, _clock = desk
    client = logged_in(app, store, CREDIT)
    home = client.get("/").text
    for word in ("按时报送", "未到期", "不适用", "等待人工处理", "接下来的截止日期", "政策法规科", "财务科"):
        assert word in home, word
    assert quarantined(store) in home
    assert client.get("/month/2026-10").status_code == 200
    assert client.get("/month/2026-13").status_code == 404
    listed = client.get("/messages?month=2026-11&section=餐饮科").text
    assert set(re.findall(r"XY\d{8}-\d{5}", listed)) == {m.receipt_no for m in store.messages(limit=100)
                                                        if m.section == "餐饮科"}
    assert client.get("/messages?outcome=quarantined").text.count(f">{quarantined(store)}</a>") == 1
    assert client.get("/messages?month=garbage").status_code == 400
    m = next(m for m in store.messages(limit=100) if m.outcome == "accepted")
    page = client.get(f"/messages/{m.receipt_no}").text
    assert "回执" in page and m.from_addr in page
    raw = client.get(f"/messages/{m.receipt_no}/raw")
    assert raw.content == store.read_raw(m.raw_sha256)
    assert client.get("/files/999999").status_code == 404
    assert client.get("/calendar/2027").status_code == 200 and "预估" in client.get("/calendar/2027").text
    assert "正式" in client.get("/calendar/2026").text
    score = client.get("/score/2026")
    assert score.status_code == 200 and "政策法规科" in score.text
    assert client.get("/score/2026/xlsx").content[:2] == b"PK"


def test_confirm_reject_ignore_and_refile_are_desk_actions_audited_with_the_address(desk):
    app, store, _clock = desk
    client = logged_in(app, store, CREDIT)
    receipt = quarantined(store)
    page = client.get("/quarantine").text
    assert receipt in page
    csrf = csrf_of(page)
    r = client.post(f"/messages/{receipt}/reject", data={"reason": " ", "csrf": csrf})
    assert "请填写原因" in r.text and quarantined(store) == receipt
    r = client.post(f"/messages/{receipt}/confirm", data={"section": "办公室", "csrf": csrf})
    assert r.status_code == 200 and f"已将回执编号{receipt}的邮件确认为办公室的报送" in r.text
    assert not store.messages(limit=100, outcome="quarantined")
    [entry] = store.audit(action="confirm")
    assert (entry.actor, entry.channel, entry.role, entry.args) == (CREDIT, "web", "credit",
                                                                    {"receipt_no": receipt, "section": "办公室"})
    # a second confirm says it is settled
    r = client.post(f"/messages/{receipt}/confirm", data={"section": "办公室", "csrf": csrf})
    assert "已处理过" in r.text
    # re-file the one file of a recorded message under another month
    m = next(m for m in store.messages(limit=100) if m.section == "餐饮科")
    r = client.post(f"/messages/{m.receipt_no}/reclassify",
                    data={"item": "1", "task": "", "period": "2026-10", "csrf": csrf,
                          "next": f"/messages/{m.receipt_no}"})
    assert r.url.path == f"/messages/{m.receipt_no}" and "改按" in r.text
    [entry] = store.audit(action="reclassify")
    assert entry.actor == CREDIT and entry.args["period"] == "2026-10"
    # the same from the quarantine page, the receipt number typed in
    r = client.post("/quarantine/refile", data={"receipt": m.receipt_no.lower(), "item": "1", "period": "2026-11",
                                                "task": "", "csrf": csrf})
    assert r.url.path == "/quarantine" and "改按" in r.text and len(store.audit(action="reclassify")) == 2
    r = client.post("/quarantine/refile", data={"receipt": "../etc", "item": "1", "period": "2026-11", "csrf": csrf})
    assert "改判需写明" in r.text and len(store.audit(action="reclassify")) == 2
    # a redirect off the site is not followed
    r = client.post(f"/messages/{receipt}/ignore", data={"reason": "x", "csrf": csrf, "next": "//evil.test/"},
                    follow_redirects=False)
    assert r.headers["location"] == "/quarantine"
    audit = client.get("/audit").text
    assert "confirm" in audit and CREDIT in audit and "网页" in audit


def test_the_package_is_built_by_the_desk_and_downloaded(desk):
    app, store, _clock = desk
    client = logged_in(app, store, CREDIT)
    page = client.get("/package/2026-11")
    assert page.status_code == 200
    csrf = csrf_of(page.text)
    xlsx = client.post("/package/2026-11/xlsx", data={"csrf": csrf})
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
    assert "filename*=UTF-8''" in xlsx.headers["content-disposition"]
    zipped = client.post("/package/2026-11/zip", data={"csrf": csrf})
    assert zipped.headers["content-type"] == "application/zip"
    assert [e.actor for e in store.audit(action="package")] == [CREDIT, CREDIT]
    assert client.post("/package/2026-11/exe", data={"csrf": csrf}).status_code == 404


def test_pages_carry_no_script_and_a_strict_policy(desk):
    app, store, _clock = desk
    client = logged_in(app, store, CREDIT)
    for path in ("/", "/messages", "/quarantine", "/audit"):
        r = client.get(path)
        assert "<script" not in r.text
        assert "default-src 'self'" in r.headers["content-security-policy"]
        assert r.headers["referrer-policy"] == "no-referrer"


def test_text_from_mail_is_escaped(seeded, tmp_path):
    import contextlib
    import io
    from email.message import EmailMessage

    from mailbot.app import cli
    cfg = copy_of(seeded, tmp_path)
    m = EmailMessage()
    m["From"] = "<b>x</b> <stranger@evil.test>"
    m["To"] = "xyjgk@cqscjg.example.cn"
    m["Subject"] = "<script>alert(1)</script>报送材料"
    m["Message-ID"] = "<xss@evil.test>"
    m.set_content("请查收")
    eml = tmp_path / "xss.eml"
    eml.write_bytes(m.as_bytes())
    with contextlib.redirect_stdout(io.StringIO()):
        cli.main(["--config", str(cfg), "ingest", "--received", "2026-11-21T09:00:00+08:00", str(eml)])
    app, store = open_desk(cfg, Clock())
    client = logged_in(app, store, CREDIT)
    receipt = store.messages(limit=1)[0].receipt_no
    for path in ("/messages", f"/messages/{receipt}"):
        page = client.get(path).text
        assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page, path
    store.close()


# ---------------------------------------------------------------- the config

def _config(web):
    return config_from_mapping({"mailbox_address": "a@b.cn", "credit_section": "信用监管科",
                                "sections": {"信用监管科": ["c@b.cn"]}, "web": web})


def test_the_web_section_of_the_config():
    web = _config({"base_url": "https://xyjg.example.cn/", "port": 8081, "session_hours": 8}).web
    assert (web.host, web.port, web.session_hours, web.link_base, web.secure_cookies) == (
        "127.0.0.1", 8081, 8, "https://xyjg.example.cn", True)
    assert web.secret_key_file.name == "web-secret.key"
    assert _config(True).web.link_base == "http://127.0.0.1:8080" and not _config(True).web.secure_cookies
    with pytest.raises(ConfigError) as e:
        _config({"base_url": "xyjg", "hots": 1})
    assert "web.hots: unknown key" in str(e.value) and "web.base_url" in str(e.value)


def test_secure_cookies_behind_tls(seeded, tmp_path):
    from mailbot.app.config import WebSettings
    app, store = open_desk(copy_of(seeded, tmp_path), Clock(),
                           WebSettings(base_url="https://xyjg.example.cn", secure_cookies=True))
    client = TestClient(app, base_url="https://xyjg.example.cn")
    ask_link(client, CANYIN)
    r = use_link(client, mailed_link(store, CANYIN))
    assert "; secure" in r.headers["set-cookie"].lower()
    store.close()


# ---------------------------------------------------------------- the commands and the daemon

def test_login_link_prints_a_link_for_a_registered_address_only(seeded, tmp_path, capsys):
    from mailbot.app import cli
    cfg = copy_of(seeded, tmp_path)
    capsys.readouterr()
    assert cli.main(["--config", str(cfg), "login-link", "zhoumin_0531@126.com"]) == 2
    assert "not a registered address" in capsys.readouterr().err
    assert cli.main(["--config", str(cfg), "login-link", CANYIN]) == 0
    link = capsys.readouterr().out.strip()
    assert re.fullmatch(r"http://127\.0\.0\.1:8080/login/[\w-]{43}", link)
    app, store = open_desk(cfg, Clock(dt.datetime.now(dt.UTC)))          # the command used the wall clock
    assert use_link(TestClient(app), link).status_code == 303
    assert [e.action for e in store.audit()][:2] == ["login", "login-link"]
    store.close()


def test_the_daemon_serves_the_web_desk_and_stops_it(tmp_path):
    import threading
    import time

    import httpx

    from mailbot.app.config import load_config
    from mailbot.app.daemon import Daemon
    from mailbot.dev.devservers import free_port
    from webdesk import write_config
    for sub in ("cur", "new", "tmp"):
        (tmp_path / "Maildir" / sub).mkdir(parents=True)
    port = free_port()
    cfg = write_config(tmp_path, f"\nmaildir: {tmp_path / 'Maildir'}\nweb:\n  port: {port}\n")
    daemon = Daemon(load_config(cfg))
    runner = threading.Thread(target=daemon.run, kwargs={"install_signals": False})
    runner.start()
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/", follow_redirects=False, timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the web desk did not come up"
                time.sleep(0.1)
        assert r.status_code == 303 and r.headers["location"] == "/login"
        assert (tmp_path / "storage" / "web-secret.key").stat().st_mode & 0o077 == 0
    finally:
        daemon.stop.set()
        runner.join(60)
    assert not runner.is_alive()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/login", timeout=2)


def test_light_submissions_are_the_full_ones_without_rows_problems_and_evidence(desk):
    import dataclasses
    _app, store, _clock = desk
    full = store.submissions(period="2026-11", current_only=False)
    light = store.submissions(period="2026-11", current_only=False, light=True)
    assert full and [dataclasses.replace(s, data={}, errors=(), warnings=(), evidence=()) for s in full] == light


def test_logout_ends_the_session(desk):
    app, store, _clock = desk
    client = logged_in(app, store, CREDIT)
    r = client.post("/logout", data={"csrf": csrf_of(client.get("/").text)}, follow_redirects=False)
    assert r.headers["location"] == "/login"
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"


def test_mailbot_web_serves_until_sigterm(seeded, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    import httpx

    from mailbot.dev.devservers import free_port
    cfg = copy_of(seeded, tmp_path)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "mailbot.app.cli", "--config", str(cfg), "web", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/login", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read().decode()
                time.sleep(0.1)
        assert r.status_code == 200 and "发送登录链接" in r.text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
