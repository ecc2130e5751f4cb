"""统一社会信用代码 checks against the worked examples of DOMAIN.md §1."""
from __future__ import annotations

import pytest

from mailbot.model import Severity
from mailbot.intake.uscc import (CHARSET, PLACEHOLDER, check_character, check_credit_code,
                          normalize_credit_code, org_check_character)


@pytest.mark.parametrize("code", [
    "91350100M000100Y43",      # the standard's own example
    "91512081MA62K0260E",
    "91110000600037341L",      # python-stdnum's doctest
])
def test_worked_examples_are_valid(code):
    result = check_credit_code(code)
    assert result.ok and not result.placeholder and result.problems == ()
    assert result.normalized == code


def test_check_character_sums_as_domain_md_shows():
    assert check_character("91350100M000100Y4") == "3"
    assert check_character("91512081MA62K0260") == "E"
    assert check_character("91110000600037341") == "L"


def test_embedded_organisation_code_check():
    assert org_check_character("M000100Y") == "4"
    assert org_check_character("MA62K026") == "0"     # 11 -> 0
    assert org_check_character("60003734") == "1"


def test_sample_with_wrong_check_character_names_the_right_one():
    result = check_credit_code("91350100M000100Y4Z")
    assert not result.ok
    assert result.problems == ((
        "bad-credit-code",
        "统一社会信用代码'91350100M000100Y4Z'校验位错误：按GB 32100-2015计算第18位应为'3'，实为'Z'；请核对代码是否抄错",
        Severity.ERROR),)


@pytest.mark.parametrize("body", ["N2370113MA62K026", "Y1370113MA62K026", "A1370113MA62K026", "92370113MA62K026"])
def test_codes_starting_with_letters_are_valid(body):
    # python-stdnum requires eight leading digits and wrongly rejects these
    code17 = body + org_check_character(body[8:16])
    code = code17 + check_character(code17)
    result = check_credit_code(code)
    assert result.ok and result.problems == ()


def test_known_real_codes_starting_n2_and_y1():
    for code in ("N2370113MA62K02606", "Y1370113MA62K02601"):
        assert check_credit_code(code).ok


def test_normalises_full_width_spaces_and_case():
    assert normalize_credit_code("９１３５ ０１００\u3000m000100y43") == "91350100M000100Y43"
    assert check_credit_code(" ９１３５０１００Ｍ０００１００Ｙ４３ ").ok


def test_placeholder_is_recognised_with_a_warning():
    result = check_credit_code("00000000000000000x")
    assert result.ok and result.placeholder and result.normalized == PLACEHOLDER
    assert result.problems == ((
        "placeholder-credit-code",
        "统一社会信用代码填写的是占位码'00000000000000000X'（无统一社会信用代码的个体工商户），请确认已同时填写工商注册号",
        Severity.WARNING),)


def test_wrong_length():
    assert check_credit_code("91350100M000100Y4").problems == (
        ("bad-credit-code", "统一社会信用代码'91350100M000100Y4'应为18位，实为17位", Severity.ERROR),)


def test_forbidden_letter_with_lookalike_hint():
    code, msg, sev = check_credit_code("9135010OM000100Y43").problems[0]
    assert code == "bad-credit-code" and sev is Severity.ERROR
    assert msg == ("统一社会信用代码'9135010OM000100Y43'含有不允许的字符'O'（'O'可能应为'0'）；"
                   "代码只由数字和除I、O、S、V、Z以外的大写字母组成")


def test_region_code_must_be_digits():
    code17 = "91A50100M000100Y4"
    result = check_credit_code(code17 + check_character(code17))
    assert not result.ok
    assert result.problems[0][1].startswith("统一社会信用代码'91A50100M000100Y4")
    assert "第3-8位（登记管理机关行政区划码）应为6位数字，实为'A50100'" in result.problems[0][1]


def test_organisation_code_mismatch_is_only_a_warning():
    code17 = "91350100M000100Y5"          # org check should be 4
    code = code17 + check_character(code17)
    result = check_credit_code(code)
    assert result.ok
    assert [(c, s) for c, _, s in result.problems] == [("credit-code-org-check", Severity.WARNING)]
    assert "校验位应为'4'，实为'5'" in result.problems[0][1]


def test_the_one_failing_code_of_the_02020_list_fails():
    assert not check_credit_code("91350203M0001QAY9B").ok


def test_charset_has_31_characters_without_ioszv():
    assert len(CHARSET) == 31 and not set("IOSVZ") & set(CHARSET)


def test_the_short_way_judges_every_code_as_the_long_way():
    """check_credit_code takes a well-formed code's check sums by int() in C; any code, valid or
    with any one character changed, cut short, lower-cased or spaced, is judged as _checked judges it."""
    import random

    from mailbot.intake.uscc import _checked
    rng = random.Random(11)
    codes = {PLACEHOLDER, "", "0" * 18, "X" * 18}
    for _ in range(3000):
        body = "".join(rng.choice(CHARSET) for _ in range(8))
        first = rng.choice(["91", "92", "93", "11", "12", "N1", "Y1", "51"]) + "370113" + body + org_check_character(body)
        code = first + check_character(first)
        k = rng.randrange(18)
        codes |= {code, code[:k] + rng.choice(CHARSET + "IOSVZ ") + code[k + 1:], code[:17] + rng.choice(CHARSET + "IO"),
                  code[:16] + rng.choice("0123456789X") + code[17], code.lower(), code[:-1], f" {code}\u3000"}
    for code in codes:
        assert check_credit_code.__wrapped__(code) == _checked(normalize_credit_code(code)), code
