#!/usr/bin/env python3
"""Lambda: what an invocation costs, and how fast an event source mapping feeds a function.

    python3 bench/lambda.py --lakebox-bin /path/to/dist/lakebox
    python3 bench/lambda.py --quick          # debug build, fewer rounds and records

Measured against one Lakebox, one client connection (boto3, so client overhead is the same on
both sides of each comparison):
  no-op API      GetAccountSettings round trips: the floor an Invoke is compared against
  warm invoke    a Python function returning its event, its environment already running;
                 "added" is its p50 over the no-op's p50 (aim ≤ 1 ms)
  cold start     Invoke of a function whose environment must start (each round changes the
                 configuration, which retires the warm one), the package already uploaded;
                 "added" over a warm invoke (aim ≤ 150 ms)
  kinesis esm    records put into a stream first, then a mapping with BatchSize 1,000 and
                 TRIM_HORIZON; records/s from creating the mapping until the function has seen
                 them all (aim ≥ 50,000 records/s)

Other emulators are not run beside it: moto and LocalStack run functions in Docker, which this
machine (like the CI containers Lakebox is for) does not have.
"""

import argparse
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import boto3
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import free_port  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
ROLE = "arn:aws:iam::000000000000:role/bench"

COUNTER = '''
import base64, boto3
s3 = boto3.client("s3")

def handler(event, context):
    records = event["Records"]
    s3.put_object(Bucket="esm-bench", Key=records[0]["eventID"], Body=str(len(records)).encode())
'''


def zip_of(files):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in files.items():
            z.writestr(name, text)
    return buf.getvalue()


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p / 100))]


def timed(fn, rounds):
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lakebox-bin")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    binary = args.lakebox_bin or str(Path.home() / ".cache/lakebox/target/debug/lakebox")
    rounds = 200 if args.quick else 2000
    colds = 10 if args.quick else 30
    records = 20_000 if args.quick else 300_000
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as data:
        # The stream is filled faster than AWS's 1,000 records/s a shard, so its limits are off.
        server = subprocess.Popen([binary, "serve", "--port", str(port), "--data-dir", data,
                                   "--kinesis-throughput-limits", "off"],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            server.stdout.readline()
            kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test",
                      aws_secret_access_key="test", config=Config(retries={"total_max_attempts": 1}, read_timeout=300))
            lam, kinesis, s3 = boto3.client("lambda", **kw), boto3.client("kinesis", **kw), boto3.client("s3", **kw)
            lam.create_function(FunctionName="echo", Runtime="python3.12", Role=ROLE, Handler="app.handler",
                                Code={"ZipFile": zip_of({"app.py": "def handler(e, c):\n    return e\n"})})
            payload = json.dumps({"order": 42, "items": ["a", "b", "c"]}).encode()
            lam.invoke(FunctionName="echo", Payload=payload)  # warm it
            noop = timed(lambda: lam.get_account_settings(), rounds)
            warm = timed(lambda: lam.invoke(FunctionName="echo", Payload=payload)["Payload"].read(), rounds)
            cold = []
            for i in range(colds):
                lam.update_function_configuration(FunctionName="echo", Description=f"round {i}")
                cold += timed(lambda: lam.invoke(FunctionName="echo", Payload=payload)["Payload"].read(), 1)
            rows = [
                ("no-op API (GetAccountSettings)", noop, None),
                ("warm invoke", warm, statistics.median(warm) - statistics.median(noop)),
                ("cold start invoke", cold, statistics.median(cold) - statistics.median(warm)),
            ]
            print(f"| measure | p50 ms | p99 ms | added at p50 |")
            print("| --- | --- | --- | --- |")
            for name, values, added in rows:
                extra = f"{added:.2f} ms" if added is not None else "—"
                print(f"| {name} | {statistics.median(values):.2f} | {pct(values, 99):.2f} | {extra} |", flush=True)

            # Kinesis → Lambda: the stream filled first, then read through by the mapping.
            s3.create_bucket(Bucket="esm-bench")
            kinesis.create_stream(StreamName="bench", ShardCount=2)
            kinesis.get_waiter("stream_exists").wait(StreamName="bench", WaiterConfig={"Delay": 0.2})
            arn = kinesis.describe_stream_summary(StreamName="bench")["StreamDescriptionSummary"]["StreamARN"]
            body = b"x" * 100
            for start in range(0, records, 500):
                r = kinesis.put_records(StreamName="bench", Records=[
                    {"Data": body, "PartitionKey": str(start + i)} for i in range(min(500, records - start))])
                assert r["FailedRecordCount"] == 0, r
            lam.create_function(FunctionName="counter", Runtime="python3.12", Role=ROLE, Handler="app.handler",
                                Code={"ZipFile": zip_of({"app.py": COUNTER})}, Timeout=60)
            t0 = time.perf_counter()
            lam.create_event_source_mapping(FunctionName="counter", EventSourceArn=arn, BatchSize=1000,
                                            StartingPosition="TRIM_HORIZON")
            counts = {}
            while sum(counts.values()) < records:
                time.sleep(0.1)
                for page in s3.get_paginator("list_objects_v2").paginate(Bucket="esm-bench"):
                    for o in page.get("Contents", []):
                        if o["Key"] not in counts:
                            counts[o["Key"]] = int(s3.get_object(Bucket="esm-bench", Key=o["Key"])["Body"].read())
                seen = sum(counts.values())
                if time.perf_counter() - t0 > 600:
                    raise SystemExit(f"only {seen} of {records} records delivered in 10 minutes")
            elapsed = time.perf_counter() - t0
            print(f"\nkinesis event source: {records:,} records (2 shards, BatchSize 1,000) in {elapsed:.2f} s "
                  f"= {records / elapsed:,.0f} records/s")
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
