#!/usr/bin/env python3
"""How long a Glue crawl takes over a large, partitioned dataset in Lakebox S3.

    python3 bench/glue_crawl.py                      # 10,000 objects in 1,000 partitions, CSV and Parquet
    python3 bench/glue_crawl.py --objects 2000 --partitions 200 --formats csv
    python3 bench/glue_crawl.py --quick              # debug build, 500 objects (CI smoke test)

For each format: a fresh dist-profile Lakebox, the objects uploaded with boto3 (Hive-style
`dt=NNNN/` partitions, equal files per partition), one crawler over the dataset; the time is
from StartCrawler until the crawler is READY again with LastCrawl SUCCEEDED, measured by the
client polling every 10 ms (plus Glue's own LastRuntimeSeconds). The crawl reads every file as
schema inference needs it: the first megabyte of text files, footers of Parquet files.
No other local emulator crawls (moto's StartCrawler only changes the crawler's state), so there
is nothing to run side by side. A measurement, not a test.
"""

import argparse
import io
import os
import platform
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import Target, build, free_port  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def payload(fmt, i):
    if fmt == "csv":
        rows = "".join(f"{i * 10 + r},item{r},{r * 1.5},{'true' if r % 2 else 'false'}\n" for r in range(10))
        return ("id,name,price,active\n" + rows).encode()
    table = pa.table({"id": list(range(i * 10, i * 10 + 10)), "name": [f"item{r}" for r in range(10)],
                      "price": [r * 1.5 for r in range(10)]})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def run(lakebox_bin, fmt, objects, partitions):
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        target = Target("lakebox", [str(lakebox_bin), "serve", "--port", str(port), "--data-dir", data], port).start()
        try:
            cfg = Config(max_pool_connections=32, retries={"total_max_attempts": 3})
            kw = dict(endpoint_url=target.endpoint, region_name="us-east-1", aws_access_key_id="test",
                      aws_secret_access_key="test", config=cfg)
            s3, glue = boto3.client("s3", **kw), boto3.client("glue", **kw)
            s3.create_bucket(Bucket="bench")
            per = objects // partitions
            body = {i: payload(fmt, i) for i in range(per)}
            t0 = time.perf_counter()

            def put(n):
                s3.put_object(Bucket="bench", Key=f"data/events/dt={n // per:04d}/part-{n % per:05d}.{fmt}",
                              Body=body[n % per])

            with ThreadPoolExecutor(16) as pool:
                list(pool.map(put, range(per * partitions)))
            upload_s = time.perf_counter() - t0
            glue.create_database(DatabaseInput={"Name": "bench"})
            glue.create_crawler(Name="c", Role="arn:aws:iam::000000000000:role/glue", DatabaseName="bench",
                                Targets={"S3Targets": [{"Path": "s3://bench/data/events/"}]})
            t0 = time.perf_counter()
            glue.start_crawler(Name="c")
            while True:
                c = glue.get_crawler(Name="c")["Crawler"]
                if c["State"] == "READY" and c.get("LastCrawl"):
                    break
                time.sleep(0.01)
            crawl_s = time.perf_counter() - t0
            assert c["LastCrawl"]["Status"] == "SUCCEEDED", c["LastCrawl"]
            metrics = glue.get_crawler_metrics(CrawlerNameList=["c"])["CrawlerMetricsList"][0]
            parts = sum(len(p["Partitions"]) for p in glue.get_paginator("get_partitions").paginate(
                DatabaseName="bench", TableName="events", ExcludeColumnSchema=True))
            table = glue.get_table(DatabaseName="bench", Name="events")["Table"]
            assert parts == partitions, parts
            return {
                "format": fmt, "objects": per * partitions, "partitions": parts, "upload_s": upload_s,
                "crawl_s": crawl_s, "server_s": metrics["LastRuntimeSeconds"],
                "files_per_s": per * partitions / crawl_s,
                "columns": ", ".join(f"{c['Name']} {c['Type']}" for c in table["StorageDescriptor"]["Columns"]),
                "rss_mib": (target.rss_idle or 0) / 1024,
            }
        finally:
            target.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--objects", type=int, default=10_000)
    ap.add_argument("--partitions", type=int, default=1_000)
    ap.add_argument("--formats", default="csv,parquet")
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "glue-crawl.md"))
    ap.add_argument("--quick", action="store_true", help="debug build, 500 objects in 50 partitions")
    args = ap.parse_args()
    if args.quick:
        args.objects, args.partitions = 500, 50
    lakebox_bin, _ = build(debug=args.quick)
    results = [run(lakebox_bin, f, args.objects, args.partitions) for f in args.formats.split(",")]
    lines = [
        "# Glue crawl over a partitioned dataset",
        "",
        f"Command: `python3 bench/glue_crawl.py --objects {args.objects} --partitions {args.partitions} --formats {args.formats}`",
        f"Machine: {os.cpu_count()} cores, {platform.platform()}; {'debug' if args.quick else 'dist'} build; "
        "fresh data directory per format.",
        "",
        "| format | objects | partitions | crawl (client) | crawl (LastRuntimeSeconds) | files/s | upload (boto3, 16 threads) | columns found |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        lines.append(f"| {r['format']} | {r['objects']:,} | {r['partitions']:,} | {r['crawl_s']:.2f} s | "
                     f"{r['server_s']:.2f} s | {r['files_per_s']:,.0f} | {r['upload_s']:.1f} s | {r['columns']} |")
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
