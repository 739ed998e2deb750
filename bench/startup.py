#!/usr/bin/env python3
"""Measures Lakebox's time to first answer and idle RSS on an empty data directory.

    python3 bench/startup.py [--bin target/dist/lakebox] [--runs 5]

Time to ready: from spawning the process until GET /_lakebox/health answers 200 (polled every
0.5 ms over fresh connections). Idle RSS: VmRSS one second after ready. Reports the median of
the runs. A measurement, not a test.
"""

import argparse
import os
import socket
import statistics
import subprocess
import tempfile
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def health_ok(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"GET /_lakebox/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return s.recv(16).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def one_run(binary):
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        t0 = time.perf_counter()
        proc = subprocess.Popen([binary, "serve", "--port", str(port), "--data-dir", data],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while not health_ok(port):
                if proc.poll() is not None:
                    raise RuntimeError("lakebox exited")
                time.sleep(0.0005)
            ready_ms = (time.perf_counter() - t0) * 1000
            time.sleep(1.0)
            rss = rss_kib(proc.pid)
        finally:
            proc.terminate()
            proc.wait()
    return ready_ms, rss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(os.path.dirname(__file__), "..", "target", "dist", "lakebox"))
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    runs = [one_run(args.bin) for _ in range(args.runs)]
    ready = statistics.median(r[0] for r in runs)
    rss = statistics.median(r[1] for r in runs)
    print(f"runs: {args.runs}")
    print(f"ready (median): {ready:.1f} ms   all: {', '.join(f'{r[0]:.1f}' for r in runs)}")
    print(f"idle RSS (median): {rss / 1024:.1f} MiB   all: {', '.join(f'{r[1] / 1024:.1f}' for r in runs)}")


if __name__ == "__main__":
    main()
