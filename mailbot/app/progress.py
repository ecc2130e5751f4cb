"""A one-line progress display on a terminal for long work (ingesting hundreds of files).

Only where the stream is a terminal: piped or redirected output, and JSON consumers, see
nothing extra. Drawn at most ten times a second, and cleared when the work is done, so the
results printed afterwards start on a clean line.
"""
from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    def __init__(self, total: int, what: str, *, stream: TextIO | None = None, clock=time.monotonic):
        self.total, self.what = total, what
        self.stream = stream if stream is not None else sys.stderr
        self.clock = clock
        self.shown = bool(getattr(self.stream, "isatty", lambda: False)()) and total > 1
        self.started = clock()
        self._drawn_at = float("-inf")
        self._width = 0
        self.done = 0

    def step(self, name: str = "") -> None:
        """One unit finished (`name`: what it was)."""
        self.done += 1
        now = self.clock()
        if not self.shown or (now - self._drawn_at < 0.1 and self.done < self.total):
            return
        self._drawn_at = now
        elapsed = now - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        left = f", about {int((self.total - self.done) / rate)} s left" if rate and self.done < self.total else ""
        line = f"{self.what}: {self.done}/{self.total} ({100 * self.done // self.total}%){left}  {name}"[:100]
        self.stream.write("\r" + line.ljust(self._width))
        self.stream.flush()
        self._width = len(line)

    def close(self) -> None:
        if self.shown and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
