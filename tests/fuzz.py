"""Seeded mutation fuzzing of the intake: damaged mail through parse_message, decide() and the reply.

Seeds are examples/*.eml, tests/data/mail/*.eml and, where present, every message of ../shared/corpus.
Each mutant is one to three mutations of one seed (byte flips, truncation, header duplication,
charset label swaps, boundary damage, hostile encoded words); it is parsed, decided twice (as
received, and as if a registered section had sent it, so the reply is always drafted) and the
reply is drafted with a fake receipt number. Nothing may raise.

The test suite runs a few hundred (tests/test_robustness.py; MAILBOT_FUZZ_COUNT sets how many).
Locally, many more:

    .venv/bin/python -m tests.fuzz --count 10000 [--seed 1] [--save crashes/]
"""
from __future__ import annotations

import argparse
import datetime as dt
import random
import re
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED_CORPUS = ROOT.parent / "shared" / "corpus"
_NOT_MAIL = ("LICENSE", "README", "NOTICE", "COPYING", "MANIFEST.tsv")
RECEIVED = dt.datetime.fromisoformat("2026-11-20T10:00:00+08:00")
REGISTERED = b"fagui@cqscjg.example.cn"

_LABELS = [b"", b"x-unknown", b"utf-7", b"utf-16", b"utf-32", b"gb2312", b"gbk", b"gb18030", b"big5",
           b"iso-2022-jp", b"euc-kr", b"us-ascii", b"latin1", b"rot13", b"hex", b"base64", b"idna",
           b"utf-8*zh", b"unicode-escape", b"cp65001", b"\xff\xfe", b"utf_8_sig", b"undefined"]
_CHARSET = re.compile(rb"(?i)(charset\s*=\s*\"?)([^\s\";]*)|(=\?)([^?\s]*)(\?[QqBb]\?)")
_BOUNDARY = re.compile(rb"(?i)boundary\s*=\s*\"?([^\s\";]+)")
_HEADER_LINE = re.compile(rb"(?m)^[!-9;-~]+:[^\n]*\n(?:[ \t][^\n]*\n)*")


def seeds(include_shared: bool = True) -> list[tuple[str, bytes]]:
    """(name, raw bytes) of every seed message."""
    paths = sorted((ROOT / "examples").glob("*.eml")) + sorted((ROOT / "tests" / "data" / "mail").glob("*.eml"))
    out = [(str(p.relative_to(ROOT)), p.read_bytes()) for p in paths]
    if include_shared and SHARED_CORPUS.is_dir():
        out += [(f"shared/{p.relative_to(SHARED_CORPUS)}", p.read_bytes())
                for p in sorted(SHARED_CORPUS.rglob("*")) if p.is_file() and not p.name.startswith(_NOT_MAIL)]
    return out


# ---------------------------------------------------------------- mutations

def _head_end(raw: bytes) -> int:
    m = re.search(rb"\r?\n\r?\n", raw)
    return m.start() + 1 if m else len(raw)


def flip_bytes(rng: random.Random, raw: bytes) -> bytes:
    b = bytearray(raw)
    for _ in range(rng.randint(1, 16)):
        if not b:
            break
        b[rng.randrange(len(b))] = rng.choice((rng.randrange(256), 0, 0x0A, 0x0D, 0x3D, 0x3F, 0x80, 0xFF))
    return bytes(b)


def truncate(rng: random.Random, raw: bytes) -> bytes:
    return raw[:rng.randrange(len(raw) + 1)]


def duplicate_headers(rng: random.Random, raw: bytes) -> bytes:
    head = raw[:_head_end(raw)]
    lines = _HEADER_LINE.findall(head)
    if not lines:
        return raw
    picked = [rng.choice(lines) for _ in range(rng.randint(1, 4))]
    at = rng.choice([0, len(head)])
    return raw[:at] + b"".join(picked) + raw[at:]


def swap_charsets(rng: random.Random, raw: bytes) -> bytes:
    def swap(m: re.Match) -> bytes:
        if rng.random() < 0.5:
            return m[0]
        label = rng.choice(_LABELS)
        return (m[1] + label) if m[1] is not None else (m[3] + label + m[5])
    return _CHARSET.sub(swap, raw)


def damage_boundaries(rng: random.Random, raw: bytes) -> bytes:
    found = _BOUNDARY.findall(raw)
    if not found:
        return raw
    b = rng.choice(found)
    how = rng.randrange(5)
    if how == 0:                                   # the declared boundary no longer matches
        return raw.replace(b"boundary=" + b, b"boundary=" + b[::-1], 1)
    if how == 1:                                   # the closing delimiter is lost
        return raw.replace(b"--" + b + b"--", b"", 1)
    if how == 2:                                   # one delimiter line mangled
        starts = [m.start() for m in re.finditer(re.escape(b"--" + b), raw)]
        at = rng.choice(starts) if starts else 0
        return raw[:at] + b"-" + raw[at + 3:]
    if how == 3:                                   # boundary emptied
        return raw.replace(b"boundary=\"" + b + b"\"", b"boundary=\"\"", 1).replace(b"boundary=" + b, b"boundary=", 1)
    return raw.replace(b"--" + b, b"--" + b + b"\n--" + b, 1)   # an empty part


def hostile_words(rng: random.Random, raw: bytes) -> bytes:
    """Headers the reply repeats: encoded words with empty or strange charsets, raw controls."""
    words = [b"=??Q?RE=A0=3A_2026=E5=B9=B411=E6=9C=88?=", b"=?x?B?/////w==?=", b"=?utf-8?Q?=ED=A0=80?=",
             b"=?utf-8?B?" + b"\xff" + b"?=", b"\x00\x1b[31m", b"=?gbk?Q?=FF=FE=FD?=", b"=?*?Q?a?=", b"\xed\xa0\x80"]
    head_end = _head_end(raw)
    line = b"Subject: " + b" ".join(rng.choice(words) for _ in range(rng.randint(1, 3))) + b"\n"
    raw = re.sub(rb"(?im)^subject:[^\n]*\n", b"", raw[:head_end]) + raw[head_end:]
    return line + raw


MUTATIONS: Sequence[Callable[[random.Random, bytes], bytes]] = (
    flip_bytes, truncate, duplicate_headers, swap_charsets, damage_boundaries, hostile_words)


def mutant(rng: random.Random, raw: bytes) -> tuple[bytes, list[str]]:
    applied = []
    for _ in range(rng.randint(1, 3)):
        f = rng.choice(MUTATIONS)
        raw = f(rng, raw)
        applied.append(f.__name__)
    return raw, applied


# ---------------------------------------------------------------- running them

def load_intake():
    import yaml

    from mailbot.app.config import config_from_mapping
    from mailbot.app.wiring import build
    path = ROOT / "config.example.yaml"
    config = config_from_mapping(yaml.safe_load(path.read_text(encoding="utf-8")), str(path), ROOT)
    return build(config, ROOT / "rules").intake


def run_one(raw: bytes, intake) -> None:
    """parse → decide (as received, and as a registered section's) → the reply; raises what they raise."""
    from mailbot.intake.parse import parse_message
    from mailbot.pipeline import decide
    from mailbot.writing.receipt import draft_reply
    incoming = parse_message(raw, limits=intake.rules.limits)
    for override in (None, "政策法规科"):
        verdict = decide(incoming, intake, RECEIVED, section_override=override)
        letter = draft_reply(verdict=verdict, incoming=incoming, receipt_no="XY-202611-0001", rules=intake.rules,
                             mailbox_address=intake.mailbox_address, mailbox_name=intake.mailbox_name,
                             received_at=RECEIVED, now=RECEIVED, template=("模板.xlsx", b"PK\x05\x06" + b"\0" * 18))
        if letter is not None:
            letter.raw.split(b"\n\n", 1)[0].decode("ascii")   # every header encoded
            letter.subject.encode("utf-8")  # storable: no lone surrogates


def mutants(count: int, seed: int, pool: Sequence[tuple[str, bytes]]) -> Iterator[tuple[str, bytes]]:
    rng = random.Random(seed)
    for n in range(count):
        name, raw = pool[n % len(pool)] if n < len(pool) else rng.choice(pool)
        if rng.random() < 0.3:   # as if a registered section sent it: the reply path is the point
            raw = re.sub(rb"(?im)^from:[^\n]*\n", b"From: " + REGISTERED + b"\n", raw, count=1)
        out, applied = mutant(rng, raw)
        yield f"#{n} {name} [{'+'.join(applied)}]", out


def fuzz(count: int, seed: int = 0, pool: Sequence[tuple[str, bytes]] | None = None, intake=None,
         save: Path | None = None) -> list[tuple[str, str]]:
    """Run `count` mutants; the (label, traceback) of each that raised."""
    intake = intake or load_intake()
    pool = pool or seeds()
    crashes = []
    for label, raw in mutants(count, seed, pool):
        try:
            run_one(raw, intake)
        except Exception:  # noqa: BLE001 - counted and shown, the point of the exercise
            crashes.append((label, traceback.format_exc()))
            if save:
                save.mkdir(parents=True, exist_ok=True)
                (save / f"crash-{len(crashes):04d}.eml").write_bytes(raw)
    return crashes


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save", type=Path, help="write each crashing mutant here as crash-NNNN.eml")
    ap.add_argument("--no-shared", action="store_true", help="leave ../shared/corpus out of the seeds")
    args = ap.parse_args(argv)
    pool = seeds(include_shared=not args.no_shared)
    started = time.monotonic()
    crashes = fuzz(args.count, args.seed, pool, save=args.save)
    for label, tb in crashes[:20]:
        print(f"--- {label}\n{tb}", file=sys.stderr)
    print(f"{args.count} mutants of {len(pool)} seeds (seed {args.seed}): {len(crashes)} crashed "
          f"in {time.monotonic() - started:.0f} s")
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
