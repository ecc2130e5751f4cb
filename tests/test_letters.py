"""Letters: the receipt and the rejection say exactly what was understood and what to fix."""
import datetime as dt
import email
import email.policy

import pytest

from mailbot.writing.receipt import draft_reply
from mailbot.model import Evidence, FileKind, Incoming, ItemResult, Outcome, Problem, Severity, Verdict
from mailbot.rules import load_rules

TZ = dt.timezone(dt.timedelta(hours=8))
NOW = dt.datetime(2026, 11, 20, 10, 5, tzinfo=TZ)


@pytest.fixture(scope="module")
def rules(rules_dir):
    return load_rules(rules_dir)


def incoming(**kw):
    base = dict(message_id="abc@fagui.example.cn", subject="政策法规科2026年11月报送材料", from_addr="fagui@x.cn",
                from_name="张伟", to=("xyjgk@x.cn",), cc=(), reply_to=(), date=None, in_reply_to=None,
                references=("earlier@x.cn",), headers={}, content_type="multipart/mixed", text="", attachments=())
    base.update(kw)
    return Incoming(**base)


def item(status="accepted", problems=(), task=3):
    return ItemResult(filename="双公示台账.xlsx", kind=FileKind.XLSX, sha256="0" * 64, task=task, period="2026-11",
                      status=status, problems=tuple(problems), rows=12, sheets=("双公示台账",),
                      evidence=(Evidence("task", "3", "sheet", "按工作表'双公示台账'识别为任务3"),
                                Evidence("period", "2026-11", "cover", "按工作簿封面'报送月份'(B3)确定报送月份为2026年11月")))


SECTION_EV = (Evidence("section", "政策法规科", "sender", "按发件地址fagui@x.cn识别为政策法规科"),)


def parse(letter):
    return email.message_from_bytes(letter.raw, policy=email.policy.default)


def test_receipt_states_every_decision_threaded_and_auto_submitted(rules):
    late = Problem("late-publication", "工作表'双公示台账'第7行'上报日期'(L7): 超过7个工作日", Severity.WARNING,
                   sheet="双公示台账", row=7, column="上报日期", cell="L7")
    v = Verdict(Outcome.ACCEPTED, "1 item(s) accepted", "政策法规科", SECTION_EV, (item(problems=[late]),))
    letter = draft_reply(verdict=v, incoming=incoming(), receipt_no="XY20261120-00001", rules=rules,
                         mailbox_address="xyjgk@x.cn", mailbox_name="信用监管科", received_at=NOW, now=NOW)
    m = parse(letter)
    assert letter.kind == "receipt" and letter.recipients == ("fagui@x.cn",)
    assert m["Subject"] == "【回执】XY20261120-00001 政策法规科2026年11月报送材料"
    assert m["In-Reply-To"] == "<abc@fagui.example.cn>"
    assert m["References"] == "<earlier@x.cn> <abc@fagui.example.cn>"
    assert m["Auto-Submitted"] == "auto-replied"
    assert m["Message-ID"] == "<XY20261120-00001.receipt@x.cn>"
    assert str(m["From"]) == "信用监管科 <xyjgk@x.cn>"
    text = m.get_body(("plain",)).get_content()
    for phrase in ("回执编号：XY20261120-00001", "受理结果：已受理", "按发件地址fagui@x.cn识别为政策法规科",
                   "按工作表'双公示台账'识别为任务3", "报送月份2026年11月", "数据12行",
                   "提示（1条，不影响受理）", "(L7)"):
        assert phrase in text, phrase
    assert "<html" in m.get_body(("html",)).get_content()


def test_rejection_lists_every_problem_with_its_fix_and_attaches_the_template(rules):
    errs = [Problem("bad-date", "工作表'双公示台账'第5行'决定日期'(K5): '2026.13.01'不是有效日期", sheet="双公示台账",
                    row=5, column="决定日期", cell="K5", hint="请填写有效日期，如2026-11-03"),
            Problem("missing-value", "工作表'双公示台账'第6行'决定书文号'(G6): 必填项为空", cell="G6")]
    v = Verdict(Outcome.REJECTED, "all rejected", "政策法规科", SECTION_EV, (item("rejected", errs),),
                attach_template=True)
    letter = draft_reply(verdict=v, incoming=incoming(), receipt_no="XY20261120-00002", rules=rules,
                         mailbox_address="xyjgk@x.cn", mailbox_name="信用监管科", received_at=NOW, now=NOW,
                         template=("模板.xlsx", b"PK\x03\x04fake"))
    m = parse(letter)
    assert letter.kind == "rejection" and m["Subject"].startswith("【退回】")
    text = m.get_body(("plain",)).get_content()
    assert "问题（2处）" in text and "（1）工作表'双公示台账'第5行'决定日期'(K5)" in text and "（2）" in text
    assert "修改建议：请填写有效日期" in text and "直接回复本邮件重新报送" in text
    [att] = list(m.iter_attachments())
    assert att.get_filename() == "模板.xlsx" and att.get_content() == b"PK\x03\x04fake"


def test_ignored_mail_gets_no_letter(rules):
    v = Verdict(Outcome.IGNORED, "auto-submitted", None, reply=False)
    assert draft_reply(verdict=v, incoming=incoming(), receipt_no="X", rules=rules, mailbox_address="a@b.cn",
                       mailbox_name="信用监管科", received_at=NOW, now=NOW) is None


def test_the_letter_goes_where_the_verdict_says_never_to_a_bare_reply_to(rules):
    v = Verdict(Outcome.QUARANTINED, "unregistered", "政策法规科", SECTION_EV, (item(),),
                problems=(Problem("section-unconfirmed", "发件地址new@x.cn尚未登记"),))
    kw = dict(receipt_no="XY1", rules=rules, mailbox_address="a@b.cn", mailbox_name="信用监管科",
              received_at=NOW, now=NOW)
    # decide() alone may follow a Reply-To (when registered to the same section)
    letter = draft_reply(verdict=v, incoming=incoming(reply_to=("office@x.cn",)), **kw)
    assert letter.recipients == ("fagui@x.cn",)
    routed = Verdict(**{**v.__dict__, "recipients": ("office@x.cn",), "copy_to": ("boss@x.cn",)})
    letter = draft_reply(verdict=routed, incoming=incoming(reply_to=("office@x.cn",)), **kw)
    assert letter.recipients == ("office@x.cn", "boss@x.cn") and letter.kind == "quarantine_notice"
    assert parse(letter)["To"] == "office@x.cn" and parse(letter)["Cc"] == "boss@x.cn"
    assert "待信用监管科人工确认" in parse(letter).get_body(("plain",)).get_content()


def test_long_message_ids_are_not_folded_into_encoded_words(rules):
    long_id = "a" * 64 + "@mailbot.invalid"
    v = Verdict(Outcome.ACCEPTED, "ok", "政策法规科", SECTION_EV, (item(),))
    letter = draft_reply(verdict=v, incoming=incoming(message_id=long_id, references=()), receipt_no="XY1",
                         rules=rules, mailbox_address="a@b.cn", mailbox_name="信用监管科", received_at=NOW, now=NOW)
    assert f"In-Reply-To: <{long_id}>".encode() in letter.raw
    assert parse(letter)["References"] == f"<{long_id}>"


@pytest.mark.parametrize("received, due, on_time, says", [
    (dt.datetime(2026, 11, 20, 10, 0, tzinfo=NOW.tzinfo), dt.date(2026, 11, 25), True, "本次按时报送"),
    (dt.datetime(2026, 11, 28, 10, 0, tzinfo=NOW.tzinfo), dt.date(2026, 11, 25), False, "逾期3天，记为逾期报送"),
    (dt.datetime(2026, 10, 3, 9, 0, tzinfo=NOW.tzinfo), dt.datetime(2026, 10, 2, 15, 0, tzinfo=NOW.tzinfo), False,
     "逾期18小时"),
])
def test_a_receipt_says_whether_it_came_on_time_and_by_how_much_it_is_late(rules, received, due, on_time, says):
    from dataclasses import replace
    v = Verdict(Outcome.ACCEPTED, "1 item(s) accepted", "政策法规科", SECTION_EV,
                (replace(item(), due=due, on_time=on_time),))
    letter = draft_reply(verdict=v, incoming=incoming(), receipt_no="XY20261120-00001", rules=rules,
                         mailbox_address="xyjgk@x.cn", mailbox_name="信用监管科", received_at=received, now=received)
    text = parse(letter).get_body(("plain",)).get_content()
    assert says in text and "报送时限：" in text


def test_a_receipt_says_a_reused_file_is_not_counted(rules):
    from mailbot.writing.honesty import reused_file_problem
    reused = ItemResult(filename="现场照片.jpg", kind=FileKind.JPEG, sha256="1" * 64, task=7, period="2026-11",
                        status="accepted", due=dt.date(2026, 11, 25), on_time=True,
                        problems=(reused_file_problem("现场照片.jpg", "2026-10", "XY20261020-00007", "2026-11", False),))
    v = Verdict(Outcome.ACCEPTED, "2 item(s) accepted", "政策法规科", SECTION_EV, (item(), reused))
    letter = draft_reply(verdict=v, incoming=incoming(), receipt_no="XY20261120-00001", rules=rules,
                         mailbox_address="xyjgk@x.cn", mailbox_name="信用监管科", received_at=NOW, now=NOW)
    text = parse(letter).get_body(("plain",)).get_content()
    assert "重复材料不计数：1份材料与往月已报送的材料完全相同" in text
    assert "《现场照片.jpg》，任务7" in text and "报送月份2026年11月，重复材料不计数" in text
    assert "与2026年10月已报送的材料（回执编号XY20261020-00007）完全相同" in text
    assert "不计入2026年11月的报送情况和报送次数" in text
    assert "本次按时报送" not in text          # neither on time nor late: it counts for nothing


def test_a_rejection_of_a_reused_file_names_the_earlier_receipt(rules):
    from mailbot.writing.honesty import reused_file_problem
    p = reused_file_problem("现场照片.jpg", "2026-10", "XY20261020-00007", "2026-11", True)
    v = Verdict(Outcome.REJECTED, "all 1 item(s) rejected", "政策法规科", SECTION_EV,
                (item(status="rejected", problems=[p], task=7),))
    letter = draft_reply(verdict=v, incoming=incoming(), receipt_no="XY20261120-00001", rules=rules,
                         mailbox_address="xyjgk@x.cn", mailbox_name="信用监管科", received_at=NOW, now=NOW)
    text = parse(letter).get_body(("plain",)).get_content()
    assert "受理结果：未受理" in text and "需修改后重新报送的材料（1项）" in text
    assert "与2026年10月已报送并受理的材料（回执编号XY20261020-00007）完全相同" in text and "不予受理" in text
    assert "重复材料不计数：" not in text


# ---------------------------------------------------------------- the 调度通报 and the escalation notice

def test_the_bulletin_and_the_escalation_speak_the_one_vocabulary(rules):
    import re

    from mailbot.duties.status import Cell
    from mailbot.writing.bulletin import bulletin_text, escalation_text, on_time_rate
    from mailbot.writing.vocabulary import STATE_WORDS

    due = dt.date(2026, 11, 25)
    a, b = rules.sections[0].id, rules.sections[1].id
    cells = [Cell(a, 1, "2026-11", "on_time", NOW, "XY1", due), Cell(a, 2, "2026-11", "late", NOW, "XY2", due),
             Cell(b, 1, "2026-11", "rejected", None, "XY20261119-00003", due), Cell(b, 2, "2026-11", "missing", None, None, due),
             Cell(b, 3, "2026-11", "not_applicable")]
    rate = on_time_rate(cells)
    assert (rate.on_time, rate.due, rate.percent) == (1, 4, "25.0%") and on_time_rate([]).percent == "—"
    subject, text = bulletin_text(rules, "2026-11", cells, NOW, mailbox_address="xyjgk@x.cn", unaddressed=[b])
    assert subject == "【调度通报】2026年11月各科室信用监测材料报送情况"
    assert "2个科室2026年11月应报送4项材料，其中按时报送1项，逾期报送1项，已退回待重报1项，未报送1项。" in text
    assert "按时报送率为25.0%（按时报送1项／已到报送时限4项）。" in text
    assert f"  {a}：按时报送：任务1；逾期报送：任务2" in text
    assert (f"  {b}：任务1（{rules.task(1).title}），报送时限2026年11月25日（星期三），已退回待重报"
            "（回执XY20261119-00003未通过校验，尚未重新报送）") in text
    assert f"（{b}未登记邮箱，未能收到本通报，请信用监管科另行转达。）" in text
    # a state is only ever said in the one vocabulary's words, never by its id
    assert not re.search(r"on_time|late|rejected|missing|not_due|not_applicable", text)
    words = set(re.findall("|".join(STATE_WORDS.values()), text))
    assert words == {"按时报送", "逾期报送", "已退回待重报", "未报送"}

    subject, text = escalation_text(b, [(cells[3], 4)], rules, NOW, round_no=3, has_head=True)
    assert subject == f"【逾期督办】{b}2026年11月信用监测材料逾期未报（1项）（第3次）"
    assert text.startswith(f"{b}负责人、{b}：\n") and "这是第3次督办通知。" in text and "已逾期4个工作日；当前状态：未报送" in text
    with pytest.raises(ValueError):
        escalation_text(b, [], rules, NOW, round_no=1, has_head=False)
