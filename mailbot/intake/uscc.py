"""Checks a 统一社会信用代码 (GB 32100-2015) the way DOMAIN.md §1 states it, in Chinese for the sender.

python-stdnum is not used on purpose: it requires the first eight characters to be digits and
so rejects valid codes of 农业 (N…) and 其他 (Y…) registrations.
"""
from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

from mailbot.model import Severity

__all__ = ["CodeCheck", "check_credit_code", "normalize_credit_code", "check_character",
           "org_check_character", "PLACEHOLDER", "CHARSET"]

CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"   # value = index; no I, O, S, V, Z
_VALUE = {c: i for i, c in enumerate(CHARSET)}
_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))      # 3^(i-1) mod 31
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_ORG_VALUE = {c: i for i, c in enumerate("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")}   # A=10 … Z=35
_SHAPE = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}$")
# 个体工商户 without a code: seventeen zeros and X, then 工商注册号 carries the identity
PLACEHOLDER = "00000000000000000X"
_LOOKALIKES = {"O": "0", "I": "1", "S": "5", "Z": "2", "V": "U"}

Issue = tuple[str, str, Severity]


@dataclass(frozen=True)
class CodeCheck:
    """The verdict on one code: `ok` is False only for an error; warnings leave it True."""
    ok: bool
    placeholder: bool
    normalized: str
    problems: tuple[Issue, ...] = ()


def normalize_credit_code(code: str) -> str:
    """Full-width to half-width, no spaces of any kind (U+3000 too), upper case."""
    text = str(code)
    if not text.isascii():          # NFKC leaves ASCII as it is; most codes are typed in ASCII
        text = unicodedata.normalize("NFKC", text)
    return "".join(text.split()).replace("\u200b", "").replace("\ufeff", "").upper()


def check_character(first17: str) -> str:
    """The 18th character for the first 17 (which must all be in CHARSET)."""
    total = sum(_VALUE[c] * w for c, w in zip(first17, _WEIGHTS, strict=True))
    return CHARSET[(31 - total % 31) % 31]


def org_check_character(body8: str) -> str:
    """The GB 11714 check character of an organisation code's first eight characters."""
    total = sum(_ORG_VALUE[c] * w for c, w in zip(body8, _ORG_WEIGHTS, strict=True))
    check = 11 - total % 11
    return {10: "X", 11: "0"}.get(check, str(check))


# A code that passes length, character set and region digits, its 18th character in CHARSET too:
# the usual one, judged by the short way below
_WELL_FORMED = re.compile(r"[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}")
# the check sums as int() computes them in C. GB 32100: sum of value(c_i) * 3^i mod 31 (i from 0),
# and 34 ≡ 3 (mod 31), so it is the 17 values read as a base-34 number, last character first.
# GB 11714: the weights 3 7 9 10 5 8 4 2 are 2^8 … 2^1 mod 11, and 35 ≡ 2 (mod 11), so it is twice
# the body read as a base-35 number, whose digits 0-9 A-Y are the standard's values.
_BASE34 = str.maketrans({c: "0123456789abcdefghijklmnopqrstuvwx"[i] for i, c in enumerate(CHARSET)})


def _quick_check(norm: str) -> CodeCheck:
    """check_credit_code's verdict on a well-formed code (_WELL_FORMED, not the placeholder)."""
    expected = CHARSET[-int(norm[16::-1].translate(_BASE34), 34) % 31]
    if norm[17] != expected:
        return _checked(norm)               # the long way words the problem
    org = 11 - 2 * int(norm[8:16], 35) % 11
    if norm[16] == ("X" if org == 10 else "0" if org == 11 else str(org)):
        return CodeCheck(True, False, norm)
    return _checked(norm)


@functools.lru_cache(maxsize=4096)
def check_credit_code(code: str) -> CodeCheck:
    norm = normalize_credit_code(code)
    if norm != PLACEHOLDER and _WELL_FORMED.fullmatch(norm):
        return _quick_check(norm)
    return _checked(norm)


def _checked(norm: str) -> CodeCheck:
    if norm == PLACEHOLDER:
        return CodeCheck(True, True, norm, ((
            "placeholder-credit-code",
            f"统一社会信用代码填写的是占位码'{PLACEHOLDER}'（无统一社会信用代码的个体工商户），"
            "请确认已同时填写工商注册号",
            Severity.WARNING),))
    for check in (_length, _charset, _region_digits):
        issue = check(norm)
        if issue:
            return CodeCheck(False, False, norm, (issue,))
    expected = check_character(norm[:17])
    if norm[17] != expected:
        return CodeCheck(False, False, norm, ((
            "bad-credit-code",
            f"统一社会信用代码'{norm}'校验位错误：按GB 32100-2015计算第18位应为'{expected}'，实为'{norm[17]}'；"
            "请核对代码是否抄错",
            Severity.ERROR),))
    org = _org_code(norm)
    return CodeCheck(True, False, norm, (org,) if org else ())


def _length(norm: str) -> Issue | None:
    if len(norm) == 18:
        return None
    return ("bad-credit-code", f"统一社会信用代码'{norm}'应为18位，实为{len(norm)}位", Severity.ERROR)


def _charset(norm: str) -> Issue | None:
    # the 18th character is judged by the check computation, which names the right one
    bad = [c for c in norm[:17] if c not in _VALUE]
    if not bad:
        return None
    c = bad[0]
    hint = f"（'{c}'可能应为'{_LOOKALIKES[c]}'）" if c in _LOOKALIKES else ""
    return ("bad-credit-code",
            f"统一社会信用代码'{norm}'含有不允许的字符'{c}'{hint}；代码只由数字和除I、O、S、V、Z以外的大写字母组成",
            Severity.ERROR)


def _region_digits(norm: str) -> Issue | None:
    if _SHAPE.match(norm[:17] + "0"):
        return None
    return ("bad-credit-code",
            f"统一社会信用代码'{norm}'第3-8位（登记管理机关行政区划码）应为6位数字，实为'{norm[2:8]}'",
            Severity.ERROR)


def _org_code(norm: str) -> Issue | None:
    # some real codes (个体工商户, older entities) may not carry a valid GB 11714 code: warn only
    expected = org_check_character(norm[8:16])
    if norm[16] == expected:
        return None
    return ("credit-code-org-check",
            f"统一社会信用代码'{norm}'中的组织机构代码（第9-17位'{norm[8:17]}'）校验位应为'{expected}'，"
            f"实为'{norm[16]}'；代码整体校验正确，请再核对一次",
            Severity.WARNING)
