"""Benchmark (issue 13): the web desk's month page — 11 sections × 11 tasks — with 300 messages of
that month in the store, answered by a real uvicorn server on 127.0.0.1, against a floor measured
in the same run (a trivial Starlette route served the same way). Target: median under 200 ms.

300 messages (common.make_corpus, 20-row ledgers by default, all for 2026-11, sent in the first
20 days of December) are ingested into a fresh SQLite store with `mailbot ingest`; the clock is
then 21 December 2026, and the page asked for is /month/2026-11 (the home page `/` is the same
view of the current month). Each measurement: N sequential GETs over one keep-alive connection
after a warm-up, logged in as the credit section (the whole matrix, the waiting list). Results:
benchmarks/out/web_home-<timestamp>.json.

    .venv/bin/python benchmarks/web_home.py [--messages 300] [--requests 200] [--rows 20]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

TARGET_MS = 200.0
CREDIT = "xinyong.staff@cqscjg.example.cn"
NOW = dt.datetime(2026, 12, 21, 10, 0, tzinfo=common.CST)


def stats(samples: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in samples)
    return {"n": len(ms), "median_ms": round(statistics.median(ms), 2),
            "p95_ms": round(statistics.quantiles(ms, n=20)[18], 2), "min_ms": round(ms[0], 2),
            "max_ms": round(ms[-1], 2)}


def serve(app, port: int):
    from mailbot.web.server import WebServer
    server = WebServer(app, "127.0.0.1", port)
    server.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    return server


def timed(client, url: str, requests: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        client.get(url).raise_for_status()
    out = []
    for _ in range(requests):
        t0 = time.perf_counter()
        r = client.get(url)
        out.append(time.perf_counter() - t0)
        r.raise_for_status()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=300)
    ap.add_argument("--rows", type=int, default=20, help="rows of each workbook's main ledger")
    ap.add_argument("--requests", type=int, default=200, help="timed requests per URL")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = ap.parse_args(argv)
    if not 1 <= args.messages <= 5000 or not 20 <= args.requests <= 5000:
        ap.error("--messages must be 1..5000 and --requests 20..5000 (the run is meant to be bounded)")

    import httpx
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from mailbot.app.config import WebSettings, load_config
    from mailbot.app.wiring import build
    from mailbot.dev.devservers import free_port
    from mailbot.web.app import create_app, issue_link

    scratch = Path(tempfile.mkdtemp(prefix="mailbot-bench-web-"))
    report: dict = {"benchmark": "web_home", "machine": common.machine(),
                    "parameters": {"messages": args.messages, "rows": args.rows, "requests": args.requests,
                                   "warmup": args.warmup, "period": "2026-11", "now": NOW.isoformat()}}
    servers = []
    try:
        print(f"generating {args.messages} message(s) in {scratch} ...", file=sys.stderr)
        corpus = common.make_corpus(args.messages, args.rows, periods=("2026-11",), progress=False)
        files = common.write_corpus(corpus, scratch / "mail")
        cfg = common.write_config(scratch / "config.yaml", scratch / "storage")
        t0 = time.monotonic()
        subprocess.run([common.MAILBOT, "--config", str(cfg), "ingest", *map(str, files)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=1800)
        report["ingest_s"] = round(time.monotonic() - t0, 1)
        print(f"  ingested in {report['ingest_s']} s", file=sys.stderr)

        deployment = build(load_config(cfg))
        store = deployment.open_store()
        report["store"] = {"messages": len(store.messages(limit=100_000)),
                           "submissions_2026_11": len(store.submissions(period="2026-11", current_only=False)),
                           "sections": len(deployment.rules.sections), "tasks": len(deployment.rules.tasks)}
        port, floor_port = free_port(), free_port()
        app = create_app(deployment, store, settings=WebSettings(port=port), clock=lambda: NOW, secret="b" * 64)
        floor = Starlette(routes=[Route("/", lambda request: PlainTextResponse("ok"))])
        servers = [serve(app, port), serve(floor, floor_port)]

        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=30) as client:
            link, _, _ = issue_link(store, WebSettings(base_url=base), CREDIT, NOW)
            path = link.split(base, 1)[1]
            csrf = re.search(r'name="csrf" value="([^"]+)"', client.get(path).text).group(1)
            assert client.post(path, data={"csrf": csrf}).status_code == 303
            page = client.get("/month/2026-11").text
            assert page.count('<tr><th scope="row">') == 11, "the matrix does not have 11 sections"
            report["page_bytes"] = len(page.encode("utf-8"))
            month = timed(client, "/month/2026-11", args.requests, args.warmup)
            home = timed(client, "/", args.requests, args.warmup)
        with httpx.Client(base_url=f"http://127.0.0.1:{floor_port}", timeout=30) as client:
            bare = timed(client, "/", args.requests, args.warmup)
        report["results"] = {"month_2026_11": stats(month), "home_current_month_empty": stats(home),
                             "floor_trivial_starlette_route": stats(bare)}
        m, f = report["results"]["month_2026_11"], report["results"]["floor_trivial_starlette_route"]
        report["verdict"] = {"target_ms": TARGET_MS, "median_ms": m["median_ms"], "p95_ms": m["p95_ms"],
                             "above_floor_median_ms": round(m["median_ms"] - f["median_ms"], 2),
                             "met": m["median_ms"] < TARGET_MS}
        out = common.out_dir() / f"web_home-{common.timestamp()}.json"
        out.write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
        print(json.dumps(report["results"], ensure_ascii=False, indent=1))
        print(f"month page with {report['store']['messages']} messages, {report['store']['sections']} sections: "
              f"median {m['median_ms']} ms, p95 {m['p95_ms']} ms (floor median {f['median_ms']} ms); "
              f"target < {TARGET_MS:.0f} ms: {'met' if report['verdict']['met'] else 'NOT met'}; wrote {out}")
        store.close()
        return 0 if report["verdict"]["met"] else 1
    finally:
        for s in servers:
            s.stop()
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
