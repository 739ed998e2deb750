#!/usr/bin/env python3
"""FilterLogEvents with JSON comparisons over ~6M events: the group filled by lakebox-bench's
logs-put-events workload, then each pattern over every event, 3 runs (median).

    python3 bench/logs_filter_json.py <release>/lakebox      # lakebox-bench beside it
"""
import sys, time, tempfile
from pathlib import Path
sys.path.insert(0, "bench")
from compare import Target, free_port, load
import boto3
from botocore.config import Config
binp = Path(sys.argv[1]); bench = binp.with_name("lakebox-bench")
port = free_port(); d = tempfile.mkdtemp()
t = Target("lakebox", [str(binp), "serve", "--port", str(port), "--data-dir", d, "--log-level", "warn"], port).start()
held = 0
while held < 5_000_000:
    r = load(bench, t, "logs-put-events", 5.0); held += r["requests"] * 1000
logs = boto3.client("logs", endpoint_url=t.endpoint, region_name="us-east-1", aws_access_key_id="t",
                    aws_secret_access_key="t", config=Config(read_timeout=600))
for p in ['{ $.id < 0 }', '{ $.score > 99 && $.ok IS TRUE }']:
    runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        out = logs.filter_log_events(logGroupName="/lakebox/bench", filterPattern=p)
        runs.append(time.perf_counter() - t0)
    print(f"{held:,} events | `{p}` | {sorted(runs)[1]:.2f} s | {len(out['events'])} events", flush=True)
t.stop()
