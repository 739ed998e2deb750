#!/usr/bin/env python3
"""Logs Insights over ~10M events: the group filled by lakebox-bench's logs-put-events workload,
then three queries, each run 3 times (median, start to Complete).

    python3 bench/logs_insights.py <dist>/lakebox      # lakebox-bench beside it
"""
import sys, time, statistics, tempfile
from pathlib import Path
sys.path.insert(0, "bench")
from compare import Target, free_port, load
import boto3
from botocore.config import Config
binp = Path(sys.argv[1]); bench = binp.with_name("lakebox-bench")
port = free_port(); d = tempfile.mkdtemp()
t = Target("lakebox", [str(binp), "serve", "--port", str(port), "--data-dir", d, "--log-level", "warn"], port).start()
held = 0
while held < 10_000_000:
    r = load(bench, t, "logs-put-events", 5.0); held += r["requests"] * 1000
logs = boto3.client("logs", endpoint_url=t.endpoint, region_name="us-east-1", aws_access_key_id="t",
                    aws_secret_access_key="t", config=Config(read_timeout=600))
now = int(time.time())
for q in ['filter user = "user-0042" | stats count(*)',
          'stats count(*) by bin(5m)',
          'filter score > 90 | stats avg(score), max(id) by user | sort user | limit 5',
          'fields @timestamp, @message | sort @timestamp desc | limit 20']:
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
t.stop()
