#!/usr/bin/env python3
"""SQS with a deep backlog: the server's memory with a million 1 KiB messages queued, across a
restart, and while the backlog drains.

    python3 bench/sqs_backlog.py --bin <lakebox> [--messages 1000000]

Fills one queue with lakebox-bench's sqs-receive-delete setup (SendMessageBatch of 10 × 1 KiB on
16 connections), stops the server, starts it again on the same data directory (the journal is
replayed), then drains the queue with ReceiveMessage(10) + DeleteMessageBatch on 16 connections.
Prints RSS at each stage and the rates; the data directory is removed at the end.
"""
import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from compare import Target, free_port, tree_rss_kib  # noqa: E402


def bench(bench_bin, target, *extra):
    argv = [str(bench_bin), "load", "--endpoint", target.endpoint, "--workload", "sqs-receive-delete",
            *extra]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=3600)
    try:
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise SystemExit(f"lakebox-bench failed (exit {out.returncode}): {out.stderr[-500:]}")


def mib(kib):
    return f"{kib / 1024:.1f} MiB"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="the lakebox binary (lakebox-bench beside it)")
    ap.add_argument("--messages", type=int, default=1_000_000)
    args = ap.parse_args()
    binp = Path(args.bin)
    bench_bin = binp.with_name("lakebox-bench")
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        argv = [str(binp), "serve", "--port", str(port), "--data-dir", data, "--log-level", "warn"]
        t = Target("lakebox", argv, port).start()
        print(f"idle: {mib(t.rss_idle)}", flush=True)
        t0 = time.perf_counter()
        bench(bench_bin, t, "--drain-messages", str(args.messages), "--setup-only")
        fill_s = time.perf_counter() - t0
        time.sleep(1)
        print(f"filled {args.messages:,} messages in {fill_s:.1f} s ({args.messages / fill_s:,.0f} messages/s); "
              f"RSS {mib(tree_rss_kib(t.proc.pid))}", flush=True)
        t.stop()
        du = subprocess.run(["du", "-sk", data], capture_output=True, text=True).stdout.split()[0]
        t = Target("lakebox", argv, port).start()
        print(f"restarted in {t.startup_ms:.0f} ms (journal {mib(int(du))}); RSS {mib(t.rss_idle)}", flush=True)
        r = bench(bench_bin, t, "--no-setup", "--duration", "3600")
        time.sleep(1)
        print(f"drained: {json.dumps(r)}", flush=True)
        print(f"after the drain: RSS {mib(tree_rss_kib(t.proc.pid))}", flush=True)
        t.stop()


if __name__ == "__main__":
    main()
