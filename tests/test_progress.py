"""The progress line of long work: drawn on a terminal, nothing at all elsewhere."""
from __future__ import annotations

import io

from mailbot.app.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_sees_the_count_the_share_and_the_time_left_then_a_clean_line():
    out, t = Terminal(), iter(range(100))
    with Progress(4, "ingest", stream=out, clock=lambda: next(t)) as p:
        for name in ("a.eml", "b.eml", "c.eml", "d.eml"):
            p.step(name)
    text = out.getvalue()
    assert "ingest: 1/4 (25%), about 3 s left  a.eml" in text
    assert "ingest: 4/4 (100%)  d.eml" in text
    assert text.endswith("\r")                                  # cleared: what follows starts clean


def test_redirected_output_sees_nothing():
    out = io.StringIO()
    with Progress(500, "ingest", stream=out) as p:
        for i in range(500):
            p.step(f"{i}.eml")
    assert out.getvalue() == ""


def test_drawn_at_most_ten_times_a_second():
    out = Terminal()
    with Progress(1000, "ingest", stream=out, clock=lambda: 5.0) as p:
        for i in range(1000):
            p.step()
    assert out.getvalue().count("\r") == 4           # the first, the last, the clearing (two)
