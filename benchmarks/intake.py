#!/usr/bin/env python3
"""Intake benchmark (issue 2): N messages, each with an Annex 1 workbook whose main ledger has
R rows, through `mailbot ingest --json` in one process; messages per second and peak memory.

    .venv/bin/python benchmarks/intake.py                       # 1,000 messages, 200 rows, SQLite
    .venv/bin/python benchmarks/intake.py --database postgresql+psycopg://postgres@127.0.0.1:5432/postgres
    .venv/bin/python benchmarks/intake.py --messages 100 --rows 50 --no-profile

Steps: generate the messages (benchmarks/common.py) into a scratch folder; run
`mailbot --config CFG ingest --json FILE...` over all of them with a fresh SQLite store, measuring
the child's wall time, user/system CPU and peak RSS (os.wait4), and the arrival time of each
JSON line (so start-up and the steady-state rate can be told apart); with --database, the same
again on a fresh database created on that PostgreSQL server (and dropped afterwards); then one
cProfile run of the same command over the first --profile-messages messages (fresh store), whose
top functions by cumulative and by own time are printed and saved.

Everything stays on this machine (files, SQLite, a loopback PostgreSQL if given). Results:
benchmarks/out/intake-<time>.json (+ .prof and the ingest output); the scratch folder is removed
unless --keep.
"""
from __future__ import annotations

import argparse
import collections
import io
import json
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402


def ingest_run(label: str, files: list[Path], config: Path, out_prefix: Path, timeout: float) -> dict:
    """One measured `mailbot ingest --json` over `files`."""
    lines: list[tuple[float, bytes]] = []
    rss: list[int | None] = []
    stderr_path = out_prefix.with_suffix(".stderr.txt")
    argv = [common.MAILBOT, "--config", str(config), "ingest", "--json", *map(str, files)]
    print(f"[{label}] mailbot ingest --json over {len(files)} message(s) ...", file=sys.stderr, flush=True)
    t0 = time.monotonic()
    with open(stderr_path, "wb") as err:
        m = common.run_measured(argv, stderr=err, on_line=lambda line, t, r: (lines.append((t, line)), rss.append(r)), timeout=timeout)
    out_prefix.with_suffix(".jsonl").write_bytes(b"".join(line for _, line in lines))
    results = [json.loads(line) for _, line in lines if line.strip()]
    outcomes = collections.Counter(r["outcome"] for r in results)
    items = collections.Counter(i["status"] for r in results for i in r.get("items", []))
    replies = sum(1 for r in results if r.get("reply"))
    times = [t - t0 for t, _ in lines]
    first = times[0] if times else None
    steady = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else None
    # throughput and memory along the run, by tenths: a slowdown or a steady growth shows here
    tenths, rss_tenths = [], []
    k = len(times) // 10
    if k >= 1:
        for i in range(10):
            a, b = i * k, (i + 1) * k - 1 if i < 9 else len(times) - 1
            span = times[b] - (times[a - 1] if a else times[0])
            n = b - a + (1 if a else 0)
            tenths.append(round(n / span, 2) if span > 0 and n > 0 else None)
            rss_tenths.append(round((rss[b] or 0) / 1024, 1))
    res = {
        "label": label,
        "messages": len(files),
        "results": len(results),
        "returncode": m.returncode,
        "wall_s": round(m.wall, 2),
        "messages_per_s": round(len(results) / m.wall, 2) if m.wall else None,
        "seconds_per_message": round(m.wall / max(1, len(results)), 4),
        "first_result_s": round(first, 2) if first is not None else None,
        "steady_messages_per_s": round(steady, 2) if steady else None,
        "cpu_user_s": round(m.user, 2),
        "cpu_sys_s": round(m.sys, 2),
        "peak_rss_mib": round(m.maxrss_kb / 1024, 1),
        "messages_per_s_by_tenth": tenths,
        "rss_mib_at_each_tenth": rss_tenths,
        "outcomes": dict(outcomes),
        "items": dict(items),
        "replies_drafted": replies,
        "stderr": str(stderr_path),
    }
    print(f"[{label}] {res['messages_per_s']} msg/s over {res['wall_s']} s (steady {res['steady_messages_per_s']} msg/s, "
          f"first result after {res['first_result_s']} s); peak RSS {res['peak_rss_mib']} MiB; outcomes {dict(outcomes)}\n"
          f"    msg/s by tenth {tenths}\n    RSS MiB at each tenth {rss_tenths}",
          file=sys.stderr, flush=True)
    return res


def storage_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def profile_run(files: list[Path], config: Path, out_prefix: Path, top: int, prefill: list[Path] = ()) -> dict:
    prof = out_prefix.with_suffix(".prof")
    if prefill:
        print(f"[profile] first filling the store with {len(prefill)} message(s), not profiled ...", file=sys.stderr, flush=True)
        m = common.run_measured([common.MAILBOT, "--config", str(config), "ingest", "--json", *map(str, prefill)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if m.returncode != 0:
            raise RuntimeError(f"prefilling the profile's store failed ({m.returncode})")
    argv = [sys.executable, "-m", "cProfile", "-o", str(prof), "-m", "mailbot.app.cli",
            "--config", str(config), "ingest", "--json", *map(str, files)]
    print(f"[profile] cProfile over {len(files)} message(s) ...", file=sys.stderr, flush=True)
    with open(out_prefix.with_suffix(".profile-out.jsonl"), "wb") as out, \
            open(out_prefix.with_suffix(".profile-err.txt"), "wb") as err:
        m = common.run_measured(argv, stdout=out, stderr=err)
    report = {"messages": len(files), "store_prefilled_with": len(prefill),
              "wall_s_under_profiler": round(m.wall, 2), "file": str(prof)}
    report.update(common.profile_summary(prof, top))
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=1000, help="how many messages (default 1000)")
    ap.add_argument("--rows", type=int, default=200, help="rows of each workbook's main ledger (default 200)")
    ap.add_argument("--database", help="also run on PostgreSQL: a server URL such as "
                    "postgresql+psycopg://postgres@127.0.0.1:5432/postgres (its database is only used to "
                    "create a fresh mailbot_bench_* database, dropped afterwards)")
    ap.add_argument("--profile-messages", type=int, default=100, help="messages in the cProfile run (0: none)")
    ap.add_argument("--profile-offset", type=int, default=0, help="profile messages OFFSET+1.. on a store "
                    "first filled (unprofiled) with the first OFFSET messages: the hot spots late in a backlog")
    ap.add_argument("--no-profile", action="store_true", help="skip the cProfile run")
    ap.add_argument("--top", type=int, default=15, help="functions listed from the profile")
    ap.add_argument("--seed", type=int, default=20261126)
    ap.add_argument("--timeout", type=float, default=3600, help="give up on one ingest run after this many seconds")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder (messages, stores)")
    args = ap.parse_args(argv)
    if not 1 <= args.messages <= 20000 or not 1 <= args.rows <= 5000:
        ap.error("--messages must be 1..20000 and --rows 1..5000 (the run is meant to be bounded)")

    out = common.out_dir()
    stamp = common.timestamp()
    prefix = out / f"intake-{stamp}"
    scratch = Path(tempfile.mkdtemp(prefix="mailbot-bench-intake-"))
    report: dict = {"benchmark": "intake", "machine": common.machine(),
                    "parameters": {"messages": args.messages, "rows": args.rows, "seed": args.seed}}
    try:
        print(f"generating {args.messages} message(s) with {args.rows}-row ledgers in {scratch} ...", file=sys.stderr)
        corpus = common.make_corpus(args.messages, args.rows, seed=args.seed)
        files = common.write_corpus(corpus, scratch / "mail")
        expected = collections.Counter(m.expect for m in corpus.mails)
        report["corpus"] = {**corpus.info, "workbooks_built": corpus.workbooks,
                            "generation_s": round(corpus.seconds, 1),
                            "sections": dict(collections.Counter(m.section for m in corpus.mails)),
                            "periods": dict(sorted(collections.Counter(m.period for m in corpus.mails).items())),
                            "expected": dict(expected),
                            "resends": sum(1 for m in corpus.mails if m.resend_of)}
        print(f"  {corpus.workbooks} workbook(s) built, {len(files)} messages in {corpus.seconds:.1f} s, "
              f"mean {corpus.info['mean_bytes']} bytes", file=sys.stderr)

        runs = []
        storage = scratch / "store-sqlite"
        cfg = common.write_config(scratch / "sqlite.yaml", storage)
        r = ingest_run("sqlite", files, cfg, prefix.with_name(prefix.name + "-sqlite"), args.timeout)
        r["database"] = "sqlite (file in the scratch folder)"
        r["storage_bytes"] = storage_size(storage)
        runs.append(r)

        if args.database:
            url, drop = common.postgres_fresh(args.database)
            try:
                storage = scratch / "store-pg"
                cfg = common.write_config(scratch / "pg.yaml", storage, database=url)
                r = ingest_run("postgresql", files, cfg, prefix.with_name(prefix.name + "-pg"), args.timeout)
                r["database"] = url.split("@")[-1]
                runs.append(r)
            finally:
                drop()
        report["runs"] = runs

        if not args.no_profile and args.profile_messages > 0:
            off = max(0, min(args.profile_offset, len(files) - 1))
            n = min(args.profile_messages, len(files) - off)
            cfg = common.write_config(scratch / "profile.yaml", scratch / "store-profile")
            report["profile"] = profile_run(files[off:off + n], cfg, prefix, args.top, prefill=files[:off])
            print(report["profile"]["cumulative"])
            print(report["profile"]["cumulative_mailbot"])
            print(report["profile"]["tottime"])
    finally:
        if args.keep:
            print(f"kept {scratch}", file=sys.stderr)
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    report["loadavg_at_end"] = list(os.getloadavg())
    path = prefix.with_suffix(".json")
    path.write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"\nresults: {path}", file=sys.stderr)
    for r in report.get("runs", []):
        print(f"{r['label']:<10} {r['messages']} msgs  {r['wall_s']:>8} s  {r['messages_per_s']:>7} msg/s  "
              f"steady {r['steady_messages_per_s']} msg/s  peak RSS {r['peak_rss_mib']} MiB  {r['outcomes']}")
    ok = all(r["results"] == r["messages"] and r["returncode"] == 0 for r in report.get("runs", []))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
