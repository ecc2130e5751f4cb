"""The config schema: every mistake named by its key, secrets from the environment."""
from pathlib import Path

import pytest

from mailbot.app.config import ConfigError, config_from_mapping, load_config

ROOT = Path(__file__).resolve().parent.parent
GOOD = {"mailbox_address": "xyjgk@example.cn", "credit_section": "信用监管科",
        "sections": {"信用监管科": ["a@example.cn"], "政策法规科": ["B@Example.cn"]}}


def test_example_config_loads_with_defaults():
    c = load_config(ROOT / "config.example.yaml")
    assert c.mailbox_address == "xyjgk@cqscjg.example.cn"
    assert c.timezone == "Asia/Shanghai"
    assert c.rules == (ROOT / "rules").resolve()
    assert c.database.startswith("sqlite:///") and c.database.endswith("storage/mailbot.sqlite3")
    assert c.section_of_address("FAGUI@cqscjg.example.cn") == "政策法规科"


def test_addresses_are_lower_cased_and_defaults_apply(tmp_path):
    c = config_from_mapping(GOOD, base_dir=tmp_path)
    assert c.section_of_address("b@example.cn") == "政策法规科"
    assert c.storage == (tmp_path / "storage").resolve()
    assert c.replies_per_sender_per_hour == 10


def test_every_mistake_is_reported_by_key():
    bad = {"mailbox_address": "not-an-address", "sections": {"政策法规科": ["x@y.cn", "nope"]},
           "timezone": "Mars/Base", "colour": "blue", "smtp": {"port": "25", "security": "tls"}}
    with pytest.raises(ConfigError) as e:
        config_from_mapping(bad, "c.yaml")
    text = str(e.value)
    for key in ("mailbox_address:", "credit_section: required", "sections.政策法规科[1]:", "timezone:",
                "colour: unknown key", "smtp.port:", "smtp.security:", "smtp.host: required"):
        assert f"c.yaml: {key}" in text, key


def test_an_address_in_two_sections_is_an_error():
    d = dict(GOOD, sections={"信用监管科": ["a@example.cn"], "政策法规科": ["a@example.cn"]})
    with pytest.raises(ConfigError, match="already listed under 信用监管科"):
        config_from_mapping(d)


def test_secrets_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("MB_PASS", "s3cret")
    d = dict(GOOD, imap={"host": "imap.example.cn", "username": "u", "password": "${MB_PASS}"})
    c = config_from_mapping(d)
    assert c.imap.password == "s3cret" and c.imap.port == 993 and c.imap.security == "ssl"
    monkeypatch.delenv("MB_PASS")
    with pytest.raises(ConfigError, match=r"imap.password: environment variable MB_PASS is not set"):
        config_from_mapping(d)


def test_plain_connections_only_to_loopback():
    with pytest.raises(ConfigError, match="plain is only allowed to loopback"):
        config_from_mapping(dict(GOOD, smtp={"host": "smtp.example.cn", "security": "plain"}))
    c = config_from_mapping(dict(GOOD, smtp={"host": "127.0.0.1", "security": "plain", "sender": "信用监管科 <xyjgk@example.cn>"}))
    assert c.smtp.port == 25 and "xyjgk@example.cn" in c.own_addresses


def test_yaml_errors_name_the_line(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("mailbox_address: a@b.cn\nsections: [\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"line \d+: not valid YAML"):
        load_config(p)


def test_the_example_shows_every_key_of_the_schema():
    import re
    from mailbot.app.config import _SERVER_KEYS, _WEB_KEYS, SCHEMA
    text = (Path(__file__).resolve().parents[1] / "config.example.yaml").read_text(encoding="utf-8")
    missing = [k for k in SCHEMA if not re.search(rf"^#?\s*{k}:", text, re.M)]
    missing += [f"imap/smtp.{k}" for k in _SERVER_KEYS if not re.search(rf"^#?\s+{k}:", text, re.M)]
    missing += [f"web.{k}" for k in _WEB_KEYS if not re.search(rf"^#\s+{k}:", text, re.M)]
    assert missing == []


def test_section_heads_and_bulletin_are_checked():
    from mailbot.app.config import BulletinSettings, check_sections_against_rules
    c = config_from_mapping(GOOD)
    assert c.section_heads == {} and c.bulletin == BulletinSettings(True, 1)
    c = config_from_mapping(dict(GOOD, section_heads={"政策法规科": "Head@Example.cn", "无此科": "x@example.cn"},
                                 bulletin={"enabled": False, "workdays_after_last_deadline": 2}), "c.yaml")
    assert c.section_heads["政策法规科"] == "head@example.cn" and c.bulletin == BulletinSettings(False, 2)
    assert check_sections_against_rules(c, {"信用监管科", "政策法规科"}) == [
        "c.yaml: section_heads.无此科: no such section in rules/sections.yaml"]
    bad = dict(GOOD, section_heads={"政策法规科": "nope"}, bulletin={"enabled": "yes", "workdays_after_last_deadline": 0,
                                                                  "when": 1})
    with pytest.raises(ConfigError) as e:
        config_from_mapping(bad, "c.yaml")
    for key in ("section_heads.政策法规科:", "bulletin.enabled: expected true or false",
                "bulletin.workdays_after_last_deadline: must be greater than 0", "bulletin.when: unknown key"):
        assert f"c.yaml: {key}" in str(e.value), key
