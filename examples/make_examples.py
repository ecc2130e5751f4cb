#!/usr/bin/env python3
"""Regenerate examples/*.eml: a month (November 2026) of mail to the credit section's mailbox.

    .venv/bin/python examples/make_examples.py

The mail tools, the capture and the workbook filling are those of tests/data/cases/make_cases.py
(imported from there; see its docstring for what each tool needs). The .eml files written here
stand alone: nothing in examples/ reads tests/ at run time. examples/README.md says what each
message is and what mailbot should answer.
"""
from __future__ import annotations

import importlib.util
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
_spec = importlib.util.spec_from_file_location("make_cases", ROOT / "tests" / "data" / "cases" / "make_cases.py")
mc = importlib.util.module_from_spec(_spec)
sys.modules["make_cases"] = mc
_spec.loader.exec_module(mc)

XLSX = mc.XLSX


# -------------------------------------------------------------- messages only the sample month has

def wb_liutong_wrong_column() -> bytes:
    """食品流通科's workbook: 分级分类监管台账 says 监管对象 where the template says 监管领域
    (aliases: 行业领域, 领域)."""
    return mc.fill_template(
        "食品流通科",
        {"理论学习台账": mc.rows_lilun(7), "分级分类监管台账": mc.rows_fenji("食品销售")},
        rename={"分级分类监管台账": {"监管领域": "监管对象"}})


def make_liutong_wrong_column(w: mc.Work):
    name = "食品流通科2026年11月信用监测材料.xlsx"
    f = w.put(name.encode("gbk"), wb_liutong_wrong_column())
    raw, how = mc.send_email(w, sender="shipin.lt@cqscjg.example.cn",
                             subject="食品流通科2026年11月信用监测报送材料".encode("gbk"),
                             body="信用监管科：我科11月份材料见附件。赵强 0531-87221341".encode("gbk"),
                             files=[f], charset="gbk")
    return mc.redate(raw, mc.when(19, 16, 8, 25)), mc.version("sendEmail"), how


def make_caiwu_autoreply(w: mc.Work):
    raw, how = mc.swaks(w, sender="caiwu@cqscjg.example.cn",
                        subject="自动回复：【提醒】2026年11月信用监测材料报送截止日期临近",
                        body="您好！本人11月16日至11月27日休假，邮件将于返岗后处理。急事请联系办公室0531-87221300。\n",
                        headers=["Auto-Submitted: auto-replied", "X-Autoreply: yes",
                                 "In-Reply-To: <reminder-2026-11-caiwu@cqscjg.example.cn>"],
                        from_header="caiwu@cqscjg.example.cn")
    return mc.redate(raw, mc.when(20, 9, 0, 6)), mc.version("swaks"), how


def make_unknown_xiaobao(w: mc.Work):
    name = "附件1信用状况监测分析报送材料-消费者权益保护科-2026年11月.xlsx"
    data = mc.fill_template("消费者权益保护科", {
        "理论学习台账": mc.rows_lilun(9),
        "诚信宣传台账": mc.rows_chengxin("长清区万达广场", mc.D(2026, 11, 15)),
    })
    f = w.put(name, data)
    raw, how = mc.mutt(w, sender="zhoumin_0531@126.com", realname="周敏",
                       subject="消保科11月份信用监测材料", body="信用科：单位邮箱满了，用个人邮箱发一下，请查收。周敏\n",
                       files=[f], send_charset="gb18030")
    return mc.redate(raw, mc.when(19, 20, 47, 13)), mc.version("mutt"), how


def make_bangongshi_no_attachment(w: mc.Work):
    raw, how = mc.mailutils(w, sender="bangongshi@cqscjg.example.cn", subject="办公室2026年11月联合奖惩应用情况",
                            body="信用监管科：\n本月联合奖惩应用情况台账见附件，请查收。\n办公室\n")
    return mc.redate(raw, mc.when(20, 8, 37, 41)), mc.version("mail"), how


# -------------------------------------------------------------- the month, in the order it arrives

EXAMPLES = [
    ("01-fagui-monthly-mutt.eml", mc.make_mutt),
    ("02-zhichan-ods-mail.eml", mc.make_mailutils_ods),
    ("03-xinyong-xls-mpack.eml", mc.make_mpack),
    ("04-canyin-foxmail.eml", mc.make_foxmail),
    ("05-xuanchuan-zip-outlook.eml", mc.make_zip),
    ("06-gesi-forwarded.eml", mc.make_forward),
    ("07-liutong-wrong-column.eml", make_liutong_wrong_column),
    ("08-fagui-pdf-named-xlsx.eml", mc.make_pdf_as_xlsx),
    ("09-caiwu-autoreply.eml", make_caiwu_autoreply),
    ("10-unknown-sender.eml", make_unknown_xiaobao),
    ("11-bangongshi-no-attachment.eml", make_bangongshi_no_attachment),
]


def main() -> int:
    root = Path(tempfile.mkdtemp(prefix="mailbot-examples-"))
    try:
        for old in HERE.glob("*.eml"):
            old.unlink()
        for name, make in EXAMPLES:
            raw, tool, _how = make(mc.Work(root))
            (HERE / name).write_bytes(raw)
            print(f"{name:40s} {len(raw):6d} bytes  {tool.split(';')[0]}")
    finally:
        if mc._SMTP is not None:
            mc._SMTP.__exit__(None, None, None)
        shutil.rmtree(root, ignore_errors=True)
        if mc._SOFFICE_PROFILE:
            shutil.rmtree(mc._SOFFICE_PROFILE, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
