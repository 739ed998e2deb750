#!/usr/bin/env python3
"""Side-by-side benchmarks: every workload against every target that supports it, in the same
run, alternating targets, several repetitions; a markdown table of medians and ratios.

    python3 bench/compare.py                 # full run (installs moto and kinesalite first)
    python3 bench/compare.py --quick         # seconds: Lakebox and the ceiling only (CI smoke test)
    python3 bench/compare.py --reps 5 --duration 10 --targets lakebox,moto --workloads s3-get-4k

Targets, each started here on 127.0.0.1 and stopped after:
  lakebox     the dist build (release with thin LTO; debug with --quick), fresh data dir, Kinesis throughput limits off
  moto        moto's server mode, from PyPI
  kinesalite  from npm (Kinesis only)
  dynalite    from npm (DynamoDB only)
  ceiling     lakebox-bench's fixed-200 server: what any server could reach with this client
The load generator is bench/src (lakebox-bench load): 16 keep-alive connections, SigV4-signed
requests, HDR latency histograms; a workload with any error response is reported as failed.
"""

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / "bench" / ".cache"
TARGET_DIR = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache" / "lakebox" / "target"))

KINESIS = ["kinesis-put-record", "kinesis-put-records", "kinesis-get-records"]
S3 = ["s3-put-4k", "s3-get-4k", "s3-get-64m", "s3-get-1g"]
SQS = ["sqs-send-1k", "sqs-receive-delete"]
SNS = ["sns-publish-fanout"]
CLOUDWATCH = ["logs-put-events", "cloudwatch-put-metric-data"]
DYNAMODB = ["dynamodb-put-1k", "dynamodb-get-1k", "dynamodb-query-100", "dynamodb-batch-write-25"]
SUPPORTS = {
    "lakebox": set(KINESIS + S3 + SQS + SNS + CLOUDWATCH + DYNAMODB),
    "moto": set(KINESIS + S3 + SQS + SNS + CLOUDWATCH + DYNAMODB),
    "kinesalite": set(KINESIS),
    "dynalite": set(DYNAMODB),
    # The ceiling answers every request with the same 200: nothing to drain.
    "ceiling": set(KINESIS + S3 + ["sqs-send-1k"] + DYNAMODB),
    # Another Lakebox binary (--baseline), to measure a change beside the build before it.
    "baseline": set(KINESIS + S3 + SQS + SNS + CLOUDWATCH + DYNAMODB),
}
# Large downloads use fewer connections: the figure of interest is bandwidth.
CONNECTIONS = {"s3-get-64m": 4, "s3-get-1g": 2}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_rss_kib(pid):
    """RSS of a process and its children (npx/python launchers start the real server as a child)."""
    total = 0
    try:
        children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    except FileNotFoundError:
        children = []
    for p in [str(pid)] + children:
        try:
            with open(f"/proc/{p}/status") as f:
                total += next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
        except (OSError, StopIteration):
            pass
    return total


def answers(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return s.recv(12).startswith(b"HTTP/1.")
    except OSError:
        return False


class Target:
    def __init__(self, name, argv, port, env=None, cwd=None):
        self.name, self.argv, self.port, self.env, self.cwd = name, argv, port, env, cwd

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     env=self.env, cwd=self.cwd)
        while not answers(self.port):
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start")
            if time.perf_counter() - t0 > 60:
                raise RuntimeError(f"{self.name} did not start")
            time.sleep(0.002)
        self.startup_ms = (time.perf_counter() - t0) * 1000
        time.sleep(0.5)
        self.rss_idle = tree_rss_kib(self.proc.pid)
        return self

    def stop(self):
        self.rss_after = tree_rss_kib(self.proc.pid)
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def build(debug):
    # Benchmarks measure the distribution build (the `dist` profile: thin LTO); --quick checks
    # the harness on a debug build.
    profile = [] if debug else ["--profile", "dist"]
    subprocess.run(["cargo", "build", "-q", *profile, "-p", "lakebox", "-p", "lakebox-bench"], cwd=REPO, check=True,
                   env=dict(os.environ, CARGO_TARGET_DIR=str(TARGET_DIR)))
    out = TARGET_DIR / ("debug" if debug else "dist")
    return out / "lakebox", out / "lakebox-bench"


def ensure_moto():
    try:
        subprocess.run(["moto_server", "--help"], capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "moto[server]"], check=True)


def ensure_node_emulator(package):
    """Installs kinesalite or dynalite from npm and writes a launcher binding 127.0.0.1 (their
    CLIs listen on every interface)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    if not (CACHE / "node_modules" / package).exists():
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(CACHE), f"{package}@3"], check=True,
                       stdout=subprocess.DEVNULL)
    launcher = CACHE / f"{package}-loopback.js"
    launcher.write_text("const port = +process.argv[2];\n"
                        f"require('{package}')({{}}).listen(port, '127.0.0.1');\n")
    return launcher


def versions(lakebox_bin, targets):
    v = {"lakebox": subprocess.run([str(lakebox_bin), "--version"], capture_output=True, text=True).stdout.strip()}
    if "moto" in targets:
        v["moto"] = subprocess.run([sys.executable, "-c", "import moto; print(moto.__version__)"],
                                   capture_output=True, text=True).stdout.strip()
    for package in ("kinesalite", "dynalite"):
        if package in targets:
            pkg = CACHE / "node_modules" / package / "package.json"
            v[package] = json.loads(pkg.read_text())["version"] if pkg.exists() else "?"
            v["node"] = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    return v


def make_targets(names, lakebox_bin, bench_bin, data_root, launchers, baseline_bin=None):
    out = []
    for n in names:
        port = free_port()
        if n in ("lakebox", "baseline"):
            data = tempfile.mkdtemp(dir=data_root)
            binary = lakebox_bin if n == "lakebox" else baseline_bin
            out.append(Target(n, [str(binary), "serve", "--port", str(port), "--data-dir", data,
                                  "--kinesis-throughput-limits", "off", "--log-level", "warn"], port))
        elif n == "moto":
            out.append(Target(n, ["moto_server", "-H", "127.0.0.1", "-p", str(port)], port))
        elif n in ("kinesalite", "dynalite"):
            out.append(Target(n, ["node", str(launchers[n]), str(port)], port, cwd=str(CACHE)))
        elif n == "ceiling":
            out.append(Target(n, [str(bench_bin), "ceiling", "--port", str(port)], port))
    return out


def load(bench_bin, target, workload, duration):
    argv = [str(bench_bin), "load", "--endpoint", target.endpoint, "--workload", workload,
            "--duration", str(duration), "--connections", str(CONNECTIONS.get(workload, 16))]
    if target.name == "ceiling":
        argv.append("--no-setup")
    if workload == "sqs-receive-delete" and target.name == "moto":
        # moto takes seconds per SendMessageBatch: a smaller queue to drain, the same rate.
        argv += ["--drain-messages", "500"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration * 4 + 600)
    try:
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {"error": f"no result (exit {out.returncode}): {out.stderr[-300:]}"}


def fmt(x, digits=0):
    if x is None:
        return "—"
    if x >= 1_000_000:
        return f"{x / 1_000_000:.2f}M"
    if x >= 10_000:
        return f"{x / 1000:.1f}k"
    return f"{x:.{digits}f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--targets", default="lakebox,moto,kinesalite,dynalite,ceiling")
    ap.add_argument("--workloads", default=",".join(KINESIS + S3 + SQS + SNS + CLOUDWATCH + DYNAMODB))
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "latest.md"))
    ap.add_argument("--baseline", help="another lakebox binary, run as target 'baseline' beside this build")
    ap.add_argument("--lakebox-bin", help="use this lakebox binary (and lakebox-bench beside it) instead of building")
    args = ap.parse_args()
    if args.quick:
        args.reps, args.duration = 1, 1.0
        args.targets, args.workloads = "lakebox,ceiling", "kinesis-put-record,kinesis-get-records,s3-put-4k,s3-get-4k"
    targets = args.targets.split(",")
    if args.baseline and "baseline" not in targets:
        targets.insert(1, "baseline")
    workloads = args.workloads.split(",")
    if args.lakebox_bin:
        lakebox_bin = Path(args.lakebox_bin)
        bench_bin = lakebox_bin.with_name("lakebox-bench")
    else:
        lakebox_bin, bench_bin = build(debug=args.quick)
    if "moto" in targets:
        ensure_moto()
    launchers = {p: ensure_node_emulator(p) for p in ("kinesalite", "dynalite") if p in targets}

    results = {}  # (workload, target) -> [runs]
    starts = {t: [] for t in targets}
    failures = []
    with tempfile.TemporaryDirectory() as data_root:
        for rep in range(args.reps):
            running = [t.start() for t in make_targets(targets, lakebox_bin, bench_bin, data_root, launchers, args.baseline)]
            for t in running:
                starts[t.name].append(t)
            for i, w in enumerate(workloads):
                order = running[i % len(running):] + running[:i % len(running)]  # alternate who goes first
                for t in order:
                    if w not in SUPPORTS[t.name]:
                        continue
                    r = load(bench_bin, t, w, args.duration)
                    if "error" in r:
                        failures.append(f"{w} on {t.name}: {r['error']} {r.get('samples', '')}")
                    else:
                        results.setdefault((w, t.name), []).append(r)
                    print(f"rep {rep + 1} {w:22} {t.name:11} "
                          + (f"{fmt(r['rps'])} req/s p99 {r['p99_us']} us" if "error" not in r else f"FAILED: {r['error']}"),
                          flush=True)
            for t in running:
                t.stop()

    def med(w, t, key):
        runs = results.get((w, t))
        return statistics.median(r[key] for r in runs) if runs else None

    cpu = os.cpu_count()
    mem = next((int(l.split()[1]) // 1024 for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
    lines = [
        f"Command: `python3 bench/compare.py {' '.join(sys.argv[1:])}`".rstrip(),
        f"Machine: {cpu} cores, {mem // 1024} GiB, {platform.platform()}; versions: "
        + ", ".join(f"{k} {v}" for k, v in versions(lakebox_bin, targets).items()),
        f"Medians of {args.reps} runs of {args.duration:g} s each; 16 connections (large GETs: 2–4); load generator on the same machine.",
        "",
        "Ratios compare records or MiB per second with peers, and requests per second with the ceiling",
        "(which answers every request with the same small 200).",
        "",
        "| workload | target | req/s | per second | p50 µs | p99 µs | Lakebox ÷ target |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for w in workloads:
        for t in targets:
            if (w, t) not in results:
                continue
            units = med(w, t, "units_per_s")
            unit = results[(w, t)][0]["unit"]
            key = "rps" if t == "ceiling" else "units_per_s"
            mine, theirs = med(w, "lakebox", key), med(w, t, key)
            ratio = "—" if t == "lakebox" or not mine or not theirs else f"{mine / theirs:.2f}×"
            # The ceiling answers a fixed small body: only its request rate means anything.
            per_second = f"{fmt(units)} {unit}" if t != "ceiling" or unit == "requests" else "—"
            lines.append(f"| {w} | {t} | {fmt(med(w, t, 'rps'))} | {per_second} | {fmt(med(w, t, 'p50_us'))} "
                         f"| {fmt(med(w, t, 'p99_us'))} | {ratio} |")
    lines += ["", "| target | start to first answer (ms) | RSS idle (MiB) | RSS after load (MiB) |", "| --- | --- | --- | --- |"]
    for t in targets:
        s = starts[t]
        lines.append(f"| {t} | {statistics.median(x.startup_ms for x in s):.1f} | {statistics.median(x.rss_idle for x in s) / 1024:.1f} "
                     f"| {statistics.median(x.rss_after for x in s) / 1024:.1f} |")
    if failures:
        lines += ["", "Failed runs (not counted):"] + [f"- {f}" for f in failures]
    report = "\n".join(lines) + "\n"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(report)
    print("\n" + report)
    # Lakebox and the ceiling must never fail; peers' failures are reported, not fatal.
    own = [f for f in failures if " on lakebox:" in f or " on ceiling:" in f]
    if own:
        print("lakebox or ceiling runs failed", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
