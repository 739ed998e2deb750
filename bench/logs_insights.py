#!/usr/bin/env python3
"""Logs Insights over ~10M events: the group filled by lakebox-bench's logs-put-events workload,
then four queries, each run 3 times (median, start to Complete).

    python3 bench/logs_insights.py <dist>/lakebox      # lakebox-bench beside it
"""
import sys, time, statistics
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent))
from logs_group import filled

QUERIES = ['filter user = "user-0042" | stats count(*)',
           'stats count(*) by bin(5m)',
           'filter score > 90 | stats avg(score), max(id) by user | sort user | limit 5',
           'fields @timestamp, @message | sort @timestamp desc | limit 20']


def time_query(logs, held, now, q):
    runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        qid = logs.start_query(logGroupName="/lakebox/bench", startTime=now - 3600, endTime=now + 3600, queryString=q)["queryId"]
        while True:
            r = logs.get_query_results(queryId=qid)
            if r["status"] in ("Complete", "Failed"):
                break
            time.sleep(0.05)
        runs.append(time.perf_counter() - t0)
    print(f"{held:,} events | `{q}` | {statistics.median(runs):.2f} s | {r['status']} | rows {len(r['results'])} | scanned {r['statistics']['recordsScanned']:,.0f}", flush=True)


with filled(sys.argv[1], 10_000_000) as (logs, held):
    now = int(time.time())
    for q in QUERIES:
        time_query(logs, held, now, q)
