"""The web desk in a real browser: Debian's Chromium, headless, driven by Selenium against a real
uvicorn server on 127.0.0.1. Log in by the mailed link, read the matrix, open a message and
download a file, confirm a quarantined message, download the package; a section's clerk cannot
see another section. Screenshots of the main pages are kept as test artefacts (under pytest's
tmp dir, or $MAILBOT_SCREENSHOTS, e.g. storage/screenshots/ which git ignores) — never committed.

Without chromium and chromedriver the tests skip with the reason (fail where
MAILBOT_REQUIRE_SERVERS=1, as in .ci/run).
"""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from mailbot.app.config import WebSettings
from mailbot.dev.devservers import free_port

from conftest import need
from webdesk import CANYIN, CREDIT, FAGUI, Clock, copy_of, mailed_link, open_desk, quarantined, seed

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("MAILBOT_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("MAILBOT_CHROMEDRIVER", "/usr/bin/chromedriver")


def _tools() -> None:
    for what, path in (("chromium", CHROMIUM), ("chromedriver", CHROMEDRIVER)):
        if not (Path(path).is_file() and os.access(path, os.X_OK)) and not shutil.which(path):
            need(f"{what} not found at {path} (Debian: apt-get install chromium chromium-driver)")
    try:
        import selenium  # noqa: F401
    except ImportError:
        need("selenium is not installed (pip install -e '.[test]')")


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    where = os.environ.get("MAILBOT_SCREENSHOTS")
    d = Path(where) if where else tmp_path_factory.mktemp("screenshots")
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture
def site(tmp_path_factory, tmp_path):
    """The sample month served by uvicorn on a free loopback port: (base URL, store)."""
    _tools()
    from mailbot.web.server import WebServer
    cfg = copy_of(seed(tmp_path_factory.mktemp("seeded")), tmp_path)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    app, store = open_desk(cfg, Clock(), WebSettings(host="127.0.0.1", port=port, base_url=base))
    server = WebServer(app, "127.0.0.1", port)
    server.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield base, store
    server.stop()
    store.close()


@pytest.fixture
def make_browser(tmp_path):
    """Factory: a fresh headless Chromium (its own profile and download folder), 1366×768."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    made = []

    def make(name: str):
        downloads = tmp_path / f"downloads-{name}"
        downloads.mkdir()
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                    "--window-size=1366,768", "--lang=zh-CN", f"--user-data-dir={tmp_path / f'profile-{name}'}"):
            options.add_argument(arg)
        options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                                  "download.prompt_for_download": False,
                                                  "safebrowsing.enabled": False})
        try:
            driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        except Exception as e:  # noqa: BLE001 - a browser that cannot start is a missing server
            need(f"headless chromium did not start: {type(e).__name__}: {str(e).splitlines()[0]}")
        driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
        driver.implicitly_wait(5)
        driver.downloads = downloads
        made.append(driver)
        return driver

    yield make
    for d in made:
        d.quit()


def downloaded(folder: Path, timeout: float = 20) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [p for p in folder.iterdir() if not p.name.endswith((".crdownload", ".tmp"))]
        if done:
            return done[0]
        time.sleep(0.1)
    raise AssertionError(f"nothing downloaded into {folder}")


def log_in(browser, base: str, store, address: str) -> None:
    """As a person does: the login page, the address, the link from the mail, the button."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    browser.get(base + "/")
    assert browser.current_url == base + "/login"
    browser.find_element(By.ID, "address").send_keys(address)
    browser.find_element(By.ID, "send-link").click()
    assert "登录链接已发送" in browser.find_element(By.ID, "sent").text
    browser.get(mailed_link(store, address))
    browser.find_element(By.ID, "use-link").click()
    WebDriverWait(browser, 10).until(lambda b: b.current_url == base + "/")


def test_the_credit_section_at_its_desk(site, make_browser, shots):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select
    base, store = site
    browser = make_browser("credit")
    log_in(browser, base, store, CREDIT)

    # the matrix: every section, the state in words and in colour
    matrix = browser.find_element(By.ID, "matrix")
    rows = matrix.find_elements(By.CSS_SELECTOR, "tbody tr")
    assert len(rows) == 11
    on_time = matrix.find_elements(By.CSS_SELECTOR, "td.s-on_time")
    assert on_time and all(td.text.startswith("按时报送") for td in on_time)
    assert on_time[0].value_of_css_property("background-color") == "rgba(226, 240, 217, 1)"
    assert "未到期" in matrix.text and "不适用" in matrix.text
    assert quarantined(store) in browser.find_element(By.ID, "waiting").text
    browser.save_screenshot(str(shots / "home.png"))

    # a message and one of its files
    accepted = next(m for m in store.messages(limit=100) if m.outcome == "accepted" and m.section == "餐饮科")
    browser.find_element(By.LINK_TEXT, "报送邮件").click()
    browser.find_element(By.LINK_TEXT, accepted.receipt_no).click()
    assert accepted.from_addr in browser.find_element(By.TAG_NAME, "main").text
    browser.save_screenshot(str(shots / "message.png"))
    att = store.message_detail(accepted.receipt_no).attachments[0]
    browser.find_element(By.CSS_SELECTOR, "a.file").click()
    got = downloaded(browser.downloads)
    assert got.name == att.filename and got.read_bytes() == store.read_file(att.sha256)
    got.unlink()

    # the quarantine: confirm as a section
    receipt = quarantined(store)
    browser.find_element(By.PARTIAL_LINK_TEXT, "待人工处理").click()
    held = browser.find_element(By.ID, f"held-{receipt}")
    browser.save_screenshot(str(shots / "quarantine.png"))
    Select(held.find_element(By.NAME, "section")).select_by_visible_text("办公室")
    held.find_element(By.XPATH, ".//button[text()='确认']").click()
    assert f"已将回执编号{receipt}的邮件确认为办公室的报送" in browser.find_element(By.CSS_SELECTOR, ".flash.ok").text
    assert browser.find_element(By.ID, "none-held")
    assert not store.messages(limit=100, outcome="quarantined")
    assert [(e.actor, e.channel) for e in store.audit(action="confirm")] == [(CREDIT, "web")]

    # the package
    browser.find_element(By.LINK_TEXT, "汇总材料").click()
    browser.save_screenshot(str(shots / "package.png"))
    browser.find_element(By.ID, "package-xlsx").click()
    got = downloaded(browser.downloads)
    assert got.suffix == ".xlsx" and got.read_bytes()[:2] == b"PK"
    assert [e.actor for e in store.audit(action="package")] == [CREDIT]

    browser.find_element(By.LINK_TEXT, "操作记录").click()
    assert "confirm" in browser.find_element(By.ID, "audit").text
    browser.save_screenshot(str(shots / "audit.png"))


def test_a_sections_clerk_sees_its_own_section_only(site, make_browser, shots):
    from selenium.webdriver.common.by import By
    base, store = site
    browser = make_browser("fagui")
    log_in(browser, base, store, FAGUI)
    rows = browser.find_elements(By.CSS_SELECTOR, "#matrix tbody tr")
    assert [r.find_element(By.TAG_NAME, "th").text for r in rows] == ["政策法规科"]
    nav = browser.find_element(By.TAG_NAME, "nav").text
    assert "待人工处理" not in nav and "汇总材料" not in nav
    browser.save_screenshot(str(shots / "section-home.png"))
    other = next(m for m in store.messages(limit=100) if m.section == "餐饮科")
    browser.get(f"{base}/messages/{other.receipt_no}")
    assert "未找到" in browser.find_element(By.TAG_NAME, "h1").text
    assert other.from_addr not in browser.page_source and CANYIN not in browser.page_source
    browser.get(f"{base}/quarantine")
    assert "无权操作" in browser.find_element(By.TAG_NAME, "h1").text
