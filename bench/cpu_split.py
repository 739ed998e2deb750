#!/usr/bin/env python3
"""Where a workload's CPU goes on this machine's two cores: the server's and the load
generator's CPU time a request, with the rate, so a throughput figure can be read as "CPU
bound" or "waiting" (for a sync, say).

    python3 bench/cpu_split.py --lakebox-bin BIN --workload cloudwatch-put-metric-data [--reps 2]
    python3 bench/cpu_split.py --ceiling --workload sqs-send-1k --bench-bin BENCH

Each repetition starts the server on a fresh data directory, runs the workload's setup
(`sqs-receive-delete`: fills `--drain-messages` messages), then times `--duration` seconds of
load on 16 connections. Server CPU comes from `/proc/<pid>/stat`, the load generator's from its
rusage, voluntary and involuntary context switches from `/proc/<pid>/task/*/status`. `--wrap`
runs the server under a command (`eatmydata`, to see what a free fsync would give: a
measurement only, never a way to run Lakebox); `--perf FILE` records the first repetition with
`perf record -g`.
"""
import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from compare import Target, free_port  # noqa: E402


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def context_switches(pid):
    voluntary = involuntary = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        for line in Path(f"/proc/{pid}/task/{task}/status").read_text().splitlines():
            if line.startswith("voluntary_ctxt_switches"):
                voluntary += int(line.split()[1])
            elif line.startswith("nonvoluntary_ctxt_switches"):
                involuntary += int(line.split()[1])
    return voluntary, involuntary


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lakebox-bin")
    ap.add_argument("--ceiling", action="store_true", help="measure the fixed-200 server instead")
    ap.add_argument("--bench-bin", help="lakebox-bench (default: beside --lakebox-bin)")
    ap.add_argument("--workload", required=True)
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--drain-messages", type=int, default=40000)
    ap.add_argument("--wrap", default="")
    ap.add_argument("--perf", default="")
    ap.add_argument("--ab-env", default="", metavar="NAME=VALUE",
                    help="each repetition runs the server twice, without and then with this variable "
                         "set (an experiment switched in one binary, measured alternating)")
    args = ap.parse_args()
    if not args.ceiling and not args.lakebox_bin:
        ap.error("--lakebox-bin or --ceiling")
    bench = args.bench_bin or str(Path(args.lakebox_bin).with_name("lakebox-bench"))
    load = [bench, "load", "--workload", args.workload, "--connections", "16"]
    variants = [None]
    if args.ab_env:
        name, _, value = args.ab_env.partition("=")
        variants = [None, {**os.environ, name: value}]
    for _, env in ((r, v) for r in range(args.reps) for v in variants):
        port = free_port()
        data = tempfile.mkdtemp()
        if args.ceiling:
            argv = [bench, "ceiling", "--port", str(port)]
        else:
            argv = ([args.wrap] if args.wrap else []) + [
                args.lakebox_bin, "serve", "--port", str(port), "--data-dir", data,
                "--kinesis-throughput-limits", "off", "--log-level", "warn"]
        target = Target("server", argv, port, env=env).start()
        endpoint = ["--endpoint", target.endpoint]
        try:
            if args.workload == "sqs-receive-delete":
                setup = ["--setup-only", "--drain-messages", str(args.drain_messages)]
            else:
                # A short warm-up that also creates what the workload writes to.
                setup = ["--duration", "0.5"] + (["--no-setup"] if args.ceiling else [])
            subprocess.run(load + endpoint + setup, capture_output=True, check=True)
            cpu0, cs0 = cpu_seconds(target.proc.pid), context_switches(target.proc.pid)
            ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            perf = None
            if args.perf:
                perf = subprocess.Popen(["perf", "record", "-F", "999", "-g", "-o", args.perf, "-p",
                                         str(target.proc.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            out = subprocess.run(load + endpoint + ["--duration", str(args.duration), "--no-setup"],
                                 capture_output=True, text=True)
            if perf:
                perf.send_signal(2)
                perf.wait()
                args.perf = ""
            ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu1, cs1 = cpu_seconds(target.proc.pid), context_switches(target.proc.pid)
        finally:
            target.stop()
            shutil.rmtree(data, ignore_errors=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        if "error" in result:
            print(f"{args.workload}: {result['error']}")
            continue
        n = result["requests"]
        client = ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime
        label = f"{args.workload} [{args.ab_env}]" if env else args.workload
        print(f"{label}: {result['rps']:,.0f} req/s ({result['units_per_s']:,.0f} {result['unit']}/s), "
              f"server {1e6 * (cpu1 - cpu0) / n:.1f} µs CPU a request, load generator {1e6 * client / n:.1f} µs, "
              f"context switches a request {(cs1[0] - cs0[0]) / n:.2f} voluntary {(cs1[1] - cs0[1]) / n:.2f} "
              f"involuntary, p50 {result['p50_us']} µs, p99 {result['p99_us']} µs", flush=True)


if __name__ == "__main__":
    main()
