"""The command-line contract that scripts drive: rules check, template, check, quarantine."""
from __future__ import annotations

import json
import shutil

import openpyxl
import pytest

from mailbot.app import cli

from conftest import DATA, ROOT
from test_pipeline import RECEIVED, ingest, write_config

WB = DATA / "workbooks"


def run(capsys, *argv):
    capsys.readouterr()
    code = cli.main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_rules_check_passes_on_the_shipped_rules_and_example_config(capsys):
    code, out, _ = run(capsys, "--config", ROOT / "config.example.yaml", "rules", "check")
    assert code == 0 and "rules OK" in out and "config OK" in out


def test_rules_check_lists_every_mistake_with_file_and_line(capsys, tmp_path):
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    tasks = rules / "tasks.yaml"
    text = tasks.read_text(encoding="utf-8").replace("sections: [政策法规科]", "sections: [政策法规课]", 1)
    tasks.write_text(text.replace("day: 30", "day: 32", 1), encoding="utf-8")
    code, out, err = run(capsys, "rules", "check", "--rules", rules)
    assert code == 1 and "problem(s) found" in err
    lines = out.splitlines()
    assert any("tasks.yaml:" in l and "政策法规课" in l for l in lines), out
    assert any("tasks.yaml:" in l and "32" in l for l in lines), out
    assert all(l.split(":")[1].isdigit() for l in lines if "tasks.yaml:" in l)


def test_config_naming_an_unknown_section_is_reported(capsys, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text((ROOT / "config.example.yaml").read_text(encoding="utf-8").replace("  餐饮科:", "  餐饮课:"),
                   encoding="utf-8")
    code, out, _ = run(capsys, "--config", cfg, "rules", "check")
    assert code == 1 and "sections.餐饮课: no such section" in out


def test_template_command_writes_the_sections_workbook(capsys, tmp_path):
    out_file = tmp_path / "t.xlsx"
    code, out, _ = run(capsys, "template", "--section", "法规科", "--period", "2026-11", "--out", out_file)
    assert code == 0
    wb = openpyxl.load_workbook(out_file)
    assert "双公示台账" in wb.sheetnames and "封面" in wb.sheetnames
    code, _, err = run(capsys, "template", "--section", "不存在科", "--period", "2026-11", "--out", out_file)
    assert code == 2 and "unknown section" in err
    code, _, err = run(capsys, "template", "--section", "政策法规科", "--period", "2026-13", "--out", out_file)
    assert code == 2


def _workbook_from_case(case: str, tmp_path):
    from mailbot.intake.parse import parse_message
    m = parse_message((DATA / "cases" / case).read_bytes())
    att = next(a for a in m.attachments if a.filename.endswith((".xls", ".xlsx")))
    p = tmp_path / ("wb" + att.filename[att.filename.rfind("."):])
    p.write_bytes(att.content)
    return p


def test_check_a_good_and_a_broken_workbook(capsys, tmp_path):
    code, out, _ = run(capsys, "check", _workbook_from_case("sendemail_gbk_raw.eml", tmp_path), "--json")
    good = json.loads(out)
    assert code == 0 and good["ok"] and good["rows"] > 0 and good["kind"] == "xls"
    code, out, _ = run(capsys, "check", WB / "sgs_broken.xlsx", "--json")
    bad = json.loads(out)
    assert code == 1 and not bad["ok"]
    assert all(p.get("cell") for p in bad["problems"] if p["code"] in ("bad-date", "bad-credit-code", "missing-value"))
    code, out, _ = run(capsys, "check", WB / "pdf_as.xlsx")
    assert code == 1 and "PDF" in out


def test_quarantine_confirm_records_and_answers(capsys, tmp_path):
    cfg = write_config(tmp_path)
    [r] = ingest(capsys, cfg, DATA / "cases" / "swaks_unknown_sender.eml")
    assert r["outcome"] == "quarantined"
    code, out, _ = run(capsys, "--config", cfg, "quarantine", "list", "--json")
    [held] = [json.loads(l) for l in out.splitlines()]
    assert held["receipt_no"] == r["receipt_no"] and held["section"] == "政策法规科"
    code, out, _ = run(capsys, "--config", cfg, "quarantine", "confirm", r["receipt_no"], "--section", "法规科", "--json")
    done = json.loads(out)
    assert code == 0 and done["outcome"] in ("accepted", "partially_accepted") and done["section"] == "政策法规科"
    assert done["receipt_no"] == r["receipt_no"] and done["reply"]["subject"].startswith(("【回执】", "【部分受理】"))
    code, out, _ = run(capsys, "--config", cfg, "quarantine", "list")
    assert "0 message(s) waiting" in out
    # a second confirmation changes nothing and says so
    code, out, _ = run(capsys, "--config", cfg, "quarantine", "confirm", r["receipt_no"], "--section", "政策法规科")
    assert code == 0 and "已处理过" in out
    code, out, _ = run(capsys, "--config", cfg, "audit", "--json")
    confirmed = [json.loads(line) for line in out.splitlines()]
    assert [(a["action"], a["actor"], a["channel"], a["ok"]) for a in confirmed] == [
        ("confirm", "operator", "cli", True), ("confirm", "operator", "cli", True)]
    assert "already settled" in confirmed[0]["result"] and confirmed[1]["args"]["section"] == "法规科"


def test_ingest_without_a_config_says_how(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MAILBOT_CONFIG", raising=False)
    code, _, err = run(capsys, "ingest", DATA / "cases" / "swaks_autoreply.eml")
    assert code == 2 and "config.example.yaml" in err
