"""The one vocabulary for where a section stands, in every letter, table and workbook a person reads.

JSON and the database keep the English ids; a person reads only these words, the same ones in
the terminal, the letters, the package for 区发改局 and the year's score.
"""
from __future__ import annotations

__all__ = ["STATE_WORDS", "STATE_MEANINGS", "state_word", "REUSED_WORD", "MERGED_WORD", "provisional_words",
           "OUTCOME_WORDS", "ITEM_WORDS"]

# the plan's 严禁弄虚作假: a file already submitted for another month never counts again; a joint
# task's row two sections both report is shown once
REUSED_WORD = "重复材料不计数"
MERGED_WORD = "多科室报送已合并"

STATE_WORDS = {
    "on_time": "按时报送",
    "late": "逾期报送",
    "rejected": "已退回待重报",
    "reused": REUSED_WORD,
    "missing": "未报送",
    "not_due": "未到期",
    "not_applicable": "不适用",
}
STATE_MEANINGS = {
    "on_time": "第一次通过校验的材料在报送期限前（含当日）收到",
    "late": "第一次通过校验的材料在报送期限之后才收到",
    "rejected": "已报送但未通过校验被退回，尚未重新报送通过",
    "reused": "所报材料与以往月份已报送的材料完全相同，不计入报送情况和报送次数（报送期限过后计为未报送）",
    "missing": "报送期限已过，仍未收到任何材料（或每月条数未达要求）",
    "not_due": "报送期限未到，尚未报送",
    "not_applicable": "实施方案未将该任务分配给该科室，或在系统启用之前",
}


# what became of a message, and of one file in it
OUTCOME_WORDS = {"accepted": "已受理", "partially_accepted": "部分受理", "rejected": "已退回", "ignored": "已忽略",
                 "quarantined": "待人工确认", "command": "指令", "forwarded": "已转人工", "failed": "处理失败"}
ITEM_WORDS = {"accepted": "通过校验", "rejected": "未通过校验", "skipped": "不作为材料（如签名图片）"}


def state_word(state: str) -> str:
    return STATE_WORDS[state]


def provisional_words(years) -> str:
    """The clause every date computed on a year without the State Council's schedule carries (预估)."""
    return f"{'、'.join(map(str, years))}年节假日安排尚未公布，工作日按法定节假日预估（未含调休）"
