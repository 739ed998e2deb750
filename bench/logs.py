#!/usr/bin/env python3
"""CloudWatch Logs search at scale: FilterLogEvents over a group holding millions of events,
beside moto on a smaller group (moto ingests far more slowly).

    python3 bench/logs.py --lakebox-bin /path/to/dist/lakebox          # 10M events
    python3 bench/logs.py --quick                                     # debug build, 200k events

Each target is loaded with lakebox-bench's logs-put-events workload (PutLogEvents of 1,000 JSON
events of 200 B, 16 connections) until it holds the wanted number of events; then each search
runs 3 times and the median is reported, with events scanned per second:
  term-miss      a term no event holds: every event is scanned, nothing returned
  term-hit       a term one event in 1,000 holds ("user-0042"), the first page (10,000 max)
  json-eq        { $.user = "user-0042" }: the same events through the JSON pattern
  json-range     { $.id < 0 }: a JSON pattern no event matches, every event parsed
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import boto3
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import Target, build, ensure_moto, free_port, load  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SEARCHES = [
    ("term-miss", "NO_SUCH_TERM"),
    ("term-hit", '"user-0042"'),
    ("json-eq", '{ $.user = "user-0042" }'),
    ("json-range", "{ $.id < 0 }"),
]


def client(endpoint):
    return boto3.client("logs", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test",
                        aws_secret_access_key="test",
                        config=Config(retries={"total_max_attempts": 1}, read_timeout=600))


def fill(bench_bin, target, events):
    held = 0
    while held < events:
        r = load(bench_bin, target, "logs-put-events", 5.0)
        if "error" in r:
            raise RuntimeError(f"{target.name}: {r['error']}")
        held += r["requests"] * 1000
        print(f"  {target.name}: {held:,} events ({r['units_per_s']:,.0f} events/s)", flush=True)
    return held


def search(logs, pattern):
    t0 = time.perf_counter()
    r = logs.filter_log_events(logGroupName="/lakebox/bench", filterPattern=pattern)
    return time.perf_counter() - t0, len(r["events"])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--moto-events", type=int, default=100_000)
    ap.add_argument("--targets", default="lakebox,moto")
    ap.add_argument("--lakebox-bin")
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "logs.md"))
    args = ap.parse_args()
    if args.quick:
        args.events, args.moto_events, args.targets = 200_000, 0, "lakebox"
    if args.lakebox_bin:
        lakebox_bin = Path(args.lakebox_bin)
        bench_bin = lakebox_bin.with_name("lakebox-bench")
    else:
        lakebox_bin, bench_bin = build(debug=args.quick)
    targets = args.targets.split(",")
    if "moto" in targets:
        ensure_moto()
    rows, memory = [], []
    with tempfile.TemporaryDirectory() as data_root:
        for name in targets:
            port = free_port()
            if name == "lakebox":
                data = tempfile.mkdtemp(dir=data_root)
                t = Target(name, [str(lakebox_bin), "serve", "--port", str(port), "--data-dir", data,
                                  "--log-level", "warn"], port)
                want = args.events
            else:
                t = Target(name, ["moto_server", "-H", "127.0.0.1", "-p", str(port)], port)
                want = args.moto_events
            t.start()
            try:
                held = fill(bench_bin, t, want)
                logs = client(t.endpoint)
                for label, pattern in SEARCHES:
                    runs = [search(logs, pattern) for _ in range(3)]
                    secs = statistics.median(r[0] for r in runs)
                    rows.append((name, held, label, pattern, secs, runs[0][1], held / secs))
                    print(f"{name:8} {label:10} {secs:8.3f} s  {runs[0][1]:6} events  {held / secs:,.0f} scanned/s",
                          flush=True)
            finally:
                t.stop()
            print(f"{name}: resident memory holding {held:,} events: {t.rss_after / 1024:,.0f} MiB", flush=True)
            memory.append(f"{name}: {t.rss_after / 1024:,.0f} MiB resident holding {held:,} events")
    lines = ["| target | events held | search | pattern | median seconds | events returned | events scanned/s |",
             "| --- | ---: | --- | --- | ---: | ---: | ---: |"]
    for name, held, label, pattern, secs, n, rate in rows:
        lines.append(f"| {name} | {held:,} | {label} | `{pattern}` | {secs:.3f} | {n} | {rate:,.0f} |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    lines += [""] + memory
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
