#!/usr/bin/env python3
"""CPU cost of the pure per-message work: `mailbot.pipeline.prepare(raw, intake, received_at)`
(parse → examine → classify → validate → judge), the part app/ahead.py runs in worker processes.

    .venv/bin/python benchmarks/prepare_cpu.py                  # 200 messages, 200-row ledgers
    .venv/bin/python benchmarks/prepare_cpu.py --messages 100 --profile

The messages are the throughput benchmarks' (benchmarks/common.py make_corpus: a section's Annex 1
workbook, 5 % with one wrong credit code, half in Foxmail's layout). Each is prepared once to
warm up, then every message is timed with time.process_time (CPU of this process only, so other
work on the machine does not count), best of --passes passes; printed: ms of CPU per message
(mean over the messages of the best pass) and the outcomes. With --profile, one more pass under
cProfile, its top functions by own time (and by cumulative time) printed.
"""
from __future__ import annotations

import argparse
import collections
import cProfile
import email.utils
import io
import pstats
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

from mailbot import pipeline  # noqa: E402
from mailbot.app.config import load_config  # noqa: E402
from mailbot.app.wiring import build  # noqa: E402

_DATE = re.compile(rb"^Date: (.*)$", re.M)


def received_at(raw: bytes):
    """The message's own Date (the generator sends it a few days into the next month)."""
    return email.utils.parsedate_to_datetime(_DATE.search(raw).group(1).decode().strip())


def intake_for_benchmark() -> pipeline.Intake:
    """The Intake a poll builds from the benchmarks' config (config.example.yaml's sections)."""
    with tempfile.TemporaryDirectory(prefix="mailbot-bench-prepare-") as d:
        cfg = common.write_config(Path(d) / "config.yaml", Path(d) / "storage")
        return build(load_config(cfg), common.ROOT / "rules").intake


def timed_pass(raws, intake) -> tuple[list[float], collections.Counter]:
    times, outcomes = [], collections.Counter()
    for raw, when in raws:
        t0 = time.process_time()
        p = pipeline.prepare(raw, intake, when)
        times.append(time.process_time() - t0)
        outcomes[p.verdict.outcome.value] += 1
    return times, outcomes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=200, help="how many messages (default 200)")
    ap.add_argument("--rows", type=int, default=200, help="rows of each workbook's main ledger (default 200)")
    ap.add_argument("--passes", type=int, default=3, help="timed passes; the best is reported (default 3)")
    ap.add_argument("--seed", type=int, default=20261126)
    ap.add_argument("--profile", action="store_true", help="one more pass under cProfile, its summary printed")
    ap.add_argument("--top", type=int, default=30, help="functions listed from the profile")
    args = ap.parse_args(argv)
    if not 1 <= args.messages <= 5000 or not 1 <= args.rows <= 5000:
        ap.error("--messages must be 1..5000 and --rows 1..5000")

    t0 = time.monotonic()
    corpus = common.make_corpus(args.messages, args.rows, seed=args.seed, progress=False)
    raws = [(m.raw, received_at(m.raw)) for m in corpus.mails]
    intake = intake_for_benchmark()
    print(f"{len(raws)} messages ({corpus.workbooks} workbooks, {args.rows} rows, "
          f"mean {corpus.info['mean_bytes']} bytes) built in {time.monotonic() - t0:.1f} s", file=sys.stderr)

    timed_pass(raws[:20], intake)                     # warm-up: imports, compiled plans, caches
    best, outcomes = None, None
    for i in range(args.passes):
        times, outcomes = timed_pass(raws, intake)
        total = sum(times)
        print(f"pass {i + 1}: {1000 * total / len(times):.2f} ms CPU/message", file=sys.stderr)
        if best is None or total < sum(best):
            best = times
    assert best is not None
    ordered = sorted(best)
    print(f"prepare: {1000 * sum(best) / len(best):.2f} ms CPU/message (best of {args.passes}; "
          f"median {1000 * ordered[len(ordered) // 2]:.2f}, max {1000 * ordered[-1]:.2f}) "
          f"over {len(best)} messages; outcomes {dict(outcomes)}")

    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        timed_pass(raws, intake)
        prof.disable()
        for key in ("tottime", "cumulative"):
            buf = io.StringIO()
            pstats.Stats(prof, stream=buf).strip_dirs().sort_stats(key).print_stats(args.top)
            print(buf.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
