"""What people read about the plan's 严禁弄虚作假: a file already submitted for another month
(told in the receipt or the rejection), and a joint task's row two sections both reported
(marked in the package). The words themselves are the one vocabulary's (vocabulary.py)."""
from __future__ import annotations

from collections.abc import Sequence

from mailbot.dates.period import period_label
from mailbot.model import REUSED_FILE, Problem, Severity
from mailbot.writing.vocabulary import MERGED_WORD, REUSED_WORD

__all__ = ["reused_file_problem", "reused_origin", "reused_mark", "merged_mark", "reused_summary"]

_TRUTH = "各科室对所报数据、材料的真实性负责，严禁弄虚作假。"


def reused_file_problem(filename: str, earlier_period: str, earlier_receipt: str, period: str,
                        reject: bool) -> Problem:
    """The very file already accepted for `earlier_period` (receipt `earlier_receipt`) is sent for
    `period`: refused where the task's rule says reject, else accepted and never counted."""
    earlier, here = period_label(earlier_period), period_label(period)
    if reject:
        return Problem(REUSED_FILE,
                       f"文件'{filename}'与{earlier}已报送并受理的材料（回执编号{earlier_receipt}）完全相同；"
                       f"同一份材料不能重复用于不同月份的报送，本次不予受理",
                       hint=f"请报送{here}实际开展工作的材料；如确属误发，请发送正确的文件。{_TRUTH}")
    return Problem(REUSED_FILE,
                   f"文件'{filename}'与{earlier}已报送的材料（回执编号{earlier_receipt}）完全相同，"
                   f"{REUSED_WORD}：不计入{here}的报送情况和报送次数",
                   Severity.WARNING,
                   hint=f"请核实是否误发了往月材料；如{here}另有材料，请另行报送。{_TRUTH}")


def reused_summary(count: int) -> str:
    """The receipt's line under 受理结果 when accepted files were reused."""
    return (f"{REUSED_WORD}：{count}份材料与往月已报送的材料完全相同，已登记但不计入本月报送情况和报送次数"
            f"（详见下文）。")


def reused_origin(earlier_period: str, earlier_receipt: str) -> str:
    return f"与{period_label(earlier_period)}回执编号{earlier_receipt}的材料相同"


def reused_mark(earlier_period: str, earlier_receipt: str) -> str:
    """A package row, a table line from a reused file."""
    return f"{REUSED_WORD}（{reused_origin(earlier_period, earlier_receipt)}）"


def merged_mark(sections: Sequence[str], differing: Sequence[tuple[str, Sequence[tuple[str, str]]]] = ()) -> str:
    """A joint task's row reported by several sections, shown once; `differing`: (column, [(section,
    value)]) for every column in which their rows disagree."""
    text = f"{MERGED_WORD}（{'、'.join(sections)}）"
    for column, values in differing:
        text += f"；{column}不一致：" + "，".join(f"{s}填“{v}”" if v else f"{s}未填" for s, v in values)
    return text
