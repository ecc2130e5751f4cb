"""Period and the bureau's zone: the one home of the month and of Beijing time."""
import datetime as dt
import re
from pathlib import Path

import pytest

from mailbot.dates import zone
from mailbot.dates.period import Period, add_months, parse_period, period_label, period_of

MAILBOT = Path(__file__).resolve().parents[1] / "mailbot"


@pytest.mark.parametrize("text", ["2026-11", "2026年11月", "202611", "2026 年 11 月", "２０２６年１１月", " 2026-11 "])
def test_every_form_a_clerk_writes_is_one_period(text):
    assert Period.parse(text) == Period(2026, 11)


@pytest.mark.parametrize("text", ["2026-13", "2026年0月", "26-11", "2026", "", "1999-12", "2026-11-05", "十一月", "2026-1", "2026/11"])
def test_anything_else_is_refused_with_the_forms_it_takes(text):
    with pytest.raises(ValueError):
        Period.parse(text)


def test_label_next_previous_and_the_months_of_a_year():
    p = Period(2026, 12)
    assert str(p) == "2026-12" and p.label == "2026年12月"
    assert p.next() == Period(2027, 1) and Period(2027, 1).previous() == p
    assert p.last_day == dt.date(2026, 12, 31) and Period(2028, 2).last_day == dt.date(2028, 2, 29)
    assert [str(m) for m in Period.months_of(2027)][::11] == ["2027-01", "2027-12"]
    assert add_months("2026-11", -11) == "2025-12" and parse_period("202611") == (2026, 11)
    assert period_label("2026-01") == "2026年1月"


def test_a_utc_instant_late_in_the_evening_is_the_next_beijing_day_and_month():
    t = dt.datetime(2026, 11, 30, 17, 0, tzinfo=dt.timezone.utc)
    assert zone.bureau_date(t) == dt.date(2026, 12, 1) and period_of(t) == "2026-12"
    assert zone.iso(t) == "2026-12-01T01:00:00+08:00"
    assert zone.zh_time(t) == "2026年12月1日 01:00" and zone.zh_date(t.date()) == "2026年11月30日（星期一）"


def test_the_config_zone_is_the_one_source():
    try:
        zone.use_zone("Asia/Tokyo")
        assert zone.iso(dt.datetime(2026, 11, 30, 17, 0, tzinfo=dt.timezone.utc)) == "2026-12-01T02:00:00+09:00"
    finally:
        zone.use_zone("Asia/Shanghai")
    assert zone.bureau_zone().utcoffset(None) == dt.timedelta(hours=8)


def test_no_module_outside_dates_writes_the_offset_or_a_month_label_by_hand():
    offenders = []
    for f in MAILBOT.rglob("*.py"):
        if f.parent.name == "dates":
            continue
        text = f.read_text(encoding="utf-8")
        if "hours=8" in text or re.search(r"年\{[^}]*\}月", text) or re.search(r"def parse_period\b", text):
            offenders.append(str(f.relative_to(MAILBOT)))
    assert offenders == []


def test_global_options_are_taken_before_or_after_the_subcommand():
    from mailbot.app.cli import build_parser
    p = build_parser()
    a = p.parse_args(["--config", "a.yaml", "quarantine", "list"])
    b = p.parse_args(["quarantine", "list", "--config", "b.yaml", "-v"])
    c = p.parse_args(["status", "--period", "2026年11月"])
    assert a.config == "a.yaml" and b.config == "b.yaml" and b.verbose and c.config is None
