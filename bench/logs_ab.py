#!/usr/bin/env python3
"""Two Lakebox builds searching the same log group of ~10M events, one after the other on one
data directory, so a change to the search is measured against the build before it on the same
data and the same day's machine.

    python3 bench/logs_ab.py --before /path/a/lakebox --after /path/b/lakebox [--events 10000000]

The group is filled once (by `before`, with the `lakebox-bench` beside it: logs-put-events,
1,000 × 200 B JSON events a request, 16 connections); then, for each round, each build is
started on that directory (its start replays the group's log) and runs every query once, timed
from the boto3 call to its answer (Insights: to `Complete`, polled every 10 ms).
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from compare import Target, free_port  # noqa: E402
from logs import client, fill  # noqa: E402

GROUP = "/lakebox/bench"
QUERIES = [
    ("filter", "{ $.id < 0 }"),
    ("filter", "{ $.score > 99 && $.ok IS TRUE }"),
    ("filter", '{ $.user = "user-0042" }'),
    ("insights", "filter id < 0 | stats count(*)"),
    ("insights", "filter score > 90 | stats avg(score), max(id) by user | sort user | limit 5"),
]


def run(logs, kind, q):
    t0 = time.perf_counter()
    if kind == "filter":
        n = len(logs.filter_log_events(logGroupName=GROUP, filterPattern=q)["events"])
    else:
        qid = logs.start_query(logGroupName=GROUP, startTime=0, endTime=2_000_000_000, queryString=q)["queryId"]
        while True:
            r = logs.get_query_results(queryId=qid)
            if r["status"] not in ("Scheduled", "Running"):
                break
            time.sleep(0.01)
        assert r["status"] == "Complete", r["status"]
        n = r["results"][0] if r["results"] else None
        n = {f["field"]: f["value"] for f in n} if n else 0
    return time.perf_counter() - t0, n


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", required=True)
    ap.add_argument("--after", required=True)
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    bins = {"before": args.before, "after": args.after}
    times = {(name, q): [] for name in bins for _, q in QUERIES}
    answers = {}
    with tempfile.TemporaryDirectory() as data:
        def start(name):
            port = free_port()
            return Target(name, [bins[name], "serve", "--port", str(port), "--data-dir", data,
                                 "--log-level", "warn"], port).start()

        t = start("before")
        try:
            held = fill(Path(args.before).with_name("lakebox-bench"), t, args.events)
        finally:
            t.stop()
        print(f"{held:,} events in {GROUP}", flush=True)
        for _ in range(args.rounds):
            for name in bins:
                t = start(name)
                try:
                    logs = client(t.endpoint)
                    for kind, q in QUERIES:
                        secs, n = run(logs, kind, q)
                        times[(name, q)].append(secs)
                        # Both builds must give the same answer.
                        assert answers.setdefault(q, n) == n, (q, answers[q], n)
                        print(f"{name:6} {secs:6.2f} s  {q}", flush=True)
                finally:
                    t.stop()
    print(f"\n{held:,} events of 200 B JSON in one stream\n")
    print("| query | before | after | answer |")
    print("| --- | --- | --- | --- |")
    for kind, q in QUERIES:
        cell = lambda name: ", ".join(f"{s:.2f} s" for s in times[(name, q)])  # noqa: E731
        print(f"| {'FilterLogEvents' if kind == 'filter' else 'Insights'} `{q}` | {cell('before')} | "
              f"{cell('after')} | {answers[q] if kind == 'insights' else f'{answers[q]} events'} |")


if __name__ == "__main__":
    main()
