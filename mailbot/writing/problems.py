"""The sentences for what was wrong in how a file was named or a ledger headed: a file name naming
several tasks, a header read as a template column, a template column not found.

Pure: called by intake/classify.py and intake/validate.py, which find the facts; each sentence
names the file or the cell, and each hint says what to do, so a sender can fix it in one go.
"""
from __future__ import annotations

from collections.abc import Sequence

from mailbot.model import Problem, Rules, Severity
from mailbot.writing.common import task_label

__all__ = ["task_ambiguous", "header_read_as", "missing_column"]


def task_ambiguous(filename: str, stem: str, candidates: Sequence[tuple[int, str]], rules: Rules) -> Problem:
    """The file name names several tasks and neither the subject nor the body says which one is meant.
    `stem` is the file name without its extension; `candidates` (task, the words that named it)."""
    named = "，".join(f"'{word}'指向{task_label(rules, n)}" for n, word in candidates)
    ext = filename[len(stem):]
    examples = "或".join(f"'任务{n} {stem}{ext}'" for n, _ in candidates[:2])
    return Problem(
        "task-ambiguous",
        f"文件'{filename}'的文件名中，{named}；邮件主题和正文也未能确定是其中哪一项，因此无法确定所属任务",
        hint=f"请在文件名开头注明所属任务后重新发送，例如{examples}；"
             f"也可在邮件主题中写明任务编号（如'任务{candidates[0][0]}'）。")


def header_read_as(sheet: str, row: int, cell: str, header: str, name: str, *, synonym: bool) -> Problem:
    """A header that is the template's column in other words (a synonym the template lists) or in
    other characters (full/half width, spaces, punctuation): read as that column, and said so."""
    why = (f"'{header}'是模板列'{name}'的常见叫法" if synonym
           else f"'{header}'与模板列名'{name}'仅有全角半角、空格或标点的差别")
    return Problem("header-read-as", f"工作表'{sheet}'{cell} 列名'{header}'按'{name}'处理", Severity.WARNING,
                   sheet=sheet, row=row, column=name, cell=cell,
                   hint=f"{why}，本次已按'{name}'读取，无需重新报送；今后请使用模板列名'{name}'。")


def missing_column(sheet: str, name: str, header_row: int, required: bool,
                   closest: tuple[str, str] | None = None) -> Problem:
    """A template column the header row lacks. `header_row` is 1-based; `closest` is (cell, header) of
    the header cell the template's column is most like, when there is one: the sender is told that
    cell and the template's name for it."""
    severity = Severity.ERROR if required else Severity.WARNING
    if closest is not None:
        cell, header = closest
        text = (f"工作表'{sheet}'缺少'{name}'列：{cell} 列名'{header}'不是模板中的列名，"
                f"最接近的模板列名是'{name}'")
        hint = (f"如{cell}一列填写的就是'{name}'，请将列名改为'{name}'" if required else
                f"如{cell}一列填写的就是'{name}'，建议将列名改为'{name}'") + "；否则请按模板补上该列。"
        return Problem("missing-column", text, severity, sheet=sheet, row=header_row, column=name, cell=cell, hint=hint)
    if required:
        text = f"工作表'{sheet}'缺少'{name}'列；请按模板补上该列（表头应在第{header_row}行）"
    else:
        text = f"工作表'{sheet}'缺少'{name}'列（非必填列，建议按模板补上）"
    return Problem("missing-column", text, severity, sheet=sheet, row=header_row, column=name)
