#!/usr/bin/env python3
"""Firehose ingest and delivery, measured against Lakebox's own Kinesis ceiling.

    python3 bench/firehose.py                  # 3 reps of 5 s per workload, dist build
    python3 bench/firehose.py --quick          # debug build, 1 rep of 1 s (CI smoke test)

Workloads (lakebox-bench load, 16 keep-alive connections, SigV4, 500 JSON records of 200 B per
request, durable Lakebox):
  kinesis-put-records-json  PutRecords into 4 shards: the same bytes through Kinesis
  firehose-batch-gzip       PutRecordBatch into a stream delivering GZIP JSON (64 MiB / 1 s buffers)
  firehose-batch-parquet    PutRecordBatch into a stream converting to Parquet with a Glue table
For the Firehose workloads the script then waits until every accepted record is in S3 (counted
by decompressing the GZIP objects, and from the Parquet footers) and reports the delivered
rate over load plus catch-up. Latency: PutRecord into a stream with IntervalInSeconds 0 until
the object is listed in S3, 20 samples. No other emulator buffers or converts like this, so
the comparison is with Kinesis PutRecords of the same bytes (aim: Firehose within 3x).
"""

import argparse
import gzip
import io
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import boto3
import pyarrow.parquet as pq
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import Target, build, free_port, load  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RECORD_BYTES = 200
WORKLOADS = ["kinesis-put-records-json", "firehose-batch-gzip", "firehose-batch-parquet"]


def clients(endpoint):
    kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test",
              config=Config(retries={"total_max_attempts": 3}))
    return boto3.client("s3", **kw), boto3.client("firehose", **kw)


def delivered_records(s3, prefix):
    n = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="lakebox-bench", Prefix=prefix):
        for o in page.get("Contents", []):
            raw = s3.get_object(Bucket="lakebox-bench", Key=o["Key"])["Body"].read()
            if prefix == "gzip/":
                n += gzip.decompress(raw).count(b"\n")
            else:
                n += pq.ParquetFile(io.BytesIO(raw)).metadata.num_rows
    return n


def start(lakebox_bin, data_root):
    port = free_port()
    data = tempfile.mkdtemp(dir=data_root)
    return Target("lakebox", [str(lakebox_bin), "serve", "--port", str(port), "--data-dir", data,
                              "--kinesis-throughput-limits", "off", "--log-level", "warn"], port).start()


def run_workload(lakebox_bin, bench_bin, data_root, workload, duration):
    t = start(lakebox_bin, data_root)
    try:
        t0 = time.perf_counter()
        r = load(bench_bin, t, workload, duration)
        if "error" in r:
            return {"error": r["error"]}
        out = {"rps": r["rps"], "records_per_s": r["units_per_s"], "mib_per_s": r["units_per_s"] * RECORD_BYTES / 2**20,
               "p99_us": r["p99_us"]}
        if workload.startswith("firehose"):
            s3, _ = clients(t.endpoint)
            want = r["requests"] * 500
            prefix = "gzip/" if workload.endswith("gzip") else "parquet/"
            deadline = time.time() + 300
            got = 0
            while time.time() < deadline:
                got = delivered_records(s3, prefix)
                if got >= want:
                    break
                time.sleep(0.5)
            elapsed = time.perf_counter() - t0
            out["delivered"] = got
            out["accepted"] = want
            out["delivered_mib_per_s"] = got * RECORD_BYTES / 2**20 / elapsed
        return out
    finally:
        t.stop()


def latency(lakebox_bin, data_root, samples):
    t = start(lakebox_bin, data_root)
    try:
        s3, fh = clients(t.endpoint)
        s3.create_bucket(Bucket="lakebox-bench")
        fh.create_delivery_stream(DeliveryStreamName="lat", ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::000000000000:role/bench", "BucketARN": "arn:aws:s3:::lakebox-bench",
            "Prefix": "lat/", "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0}})
        out = []
        for i in range(samples):
            before = {o["Key"] for o in s3.list_objects_v2(Bucket="lakebox-bench", Prefix="lat/").get("Contents", [])}
            t0 = time.perf_counter()
            fh.put_record(DeliveryStreamName="lat", Record={"Data": f"sample {i}\n".encode()})
            while True:
                now = {o["Key"] for o in s3.list_objects_v2(Bucket="lakebox-bench", Prefix="lat/").get("Contents", [])}
                if now - before:
                    break
            out.append((time.perf_counter() - t0) * 1000)
        return out
    finally:
        t.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "firehose.md"))
    args = ap.parse_args()
    if args.quick:
        args.reps, args.duration = 1, 1.0
    lakebox_bin, bench_bin = build(debug=args.quick)
    results = {w: [] for w in WORKLOADS}
    with tempfile.TemporaryDirectory() as data_root:
        for _ in range(args.reps):
            for w in WORKLOADS:
                results[w].append(run_workload(lakebox_bin, bench_bin, data_root, w, args.duration))
        lat = latency(lakebox_bin, data_root, 5 if args.quick else 20)

    def med(w, k):
        vals = [r[k] for r in results[w] if k in r]
        return statistics.median(vals) if vals else None

    base = med("kinesis-put-records-json", "mib_per_s")
    lines = [
        "# Firehose ingest and delivery",
        "",
        f"Command: `python3 bench/firehose.py{' --quick' if args.quick else f' --reps {args.reps} --duration {args.duration:g}'}`",
        f"Machine: {os.cpu_count()} cores, {platform.platform()}; {'debug' if args.quick else 'dist'} build; "
        "durable Lakebox; 16 connections; requests of 500 JSON records × 200 B; medians of "
        f"{args.reps} run(s) of {args.duration:g} s.",
        "",
        "| workload | requests/s | records/s | ingest MiB/s | p99 ms | delivered MiB/s (load + catch-up) | Kinesis ÷ this (ingest) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for w in WORKLOADS:
        errors = [r["error"] for r in results[w] if "error" in r]
        if errors:
            lines.append(f"| {w} | failed: {errors[0][:80]} | | | | | |")
            continue
        mib = med(w, "mib_per_s")
        dmib = med(w, "delivered_mib_per_s")
        ratio = f"{base / mib:.2f}×" if base and mib and w != "kinesis-put-records-json" else "—"
        lines.append(f"| {w} | {med(w, 'rps'):,.0f} | {med(w, 'records_per_s'):,.0f} | {mib:.1f} | "
                     f"{med(w, 'p99_us') / 1000:.1f} | {f'{dmib:.1f}' if dmib else '—'} | {ratio} |")
    for w in WORKLOADS[1:]:
        for r in results[w]:
            if "delivered" in r and r["delivered"] < r["accepted"]:
                lines.append(f"\n**{w}: only {r['delivered']} of {r['accepted']} accepted records reached S3 in time.**")
    lat.sort()
    lines += ["", f"End-to-end latency, PutRecord → object listed in S3 (IntervalInSeconds 0, {len(lat)} samples): "
              f"median {statistics.median(lat):.1f} ms, p95 {lat[int(len(lat) * 0.95) - 1]:.1f} ms, max {lat[-1]:.1f} ms."]
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
