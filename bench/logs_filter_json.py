#!/usr/bin/env python3
"""FilterLogEvents with JSON comparisons over ~6M events: the group filled by lakebox-bench's
logs-put-events workload, then each pattern over every event, 3 runs (median).

    python3 bench/logs_filter_json.py <release>/lakebox      # lakebox-bench beside it
"""
import sys, time, statistics
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent))
from logs_group import filled

with filled(sys.argv[1], 5_000_000) as (logs, held):
    for p in ['{ $.id < 0 }', '{ $.score > 99 && $.ok IS TRUE }']:
        runs = []
        for _ in range(3):
            t0 = time.perf_counter()
            out = logs.filter_log_events(logGroupName="/lakebox/bench", filterPattern=p)
            runs.append(time.perf_counter() - t0)
        print(f"{held:,} events | `{p}` | {sorted(runs)[1]:.2f} s | {len(out['events'])} events", flush=True)
