#!/usr/bin/env python3
"""Athena queries on Lakebox against DuckDB on the same files, in the same run.

    python3 bench/athena.py                 # lineitem at scale 1 (6M rows), Parquet and CSV, 3 runs each
    python3 bench/athena.py --scale 0.1 --runs 5
    python3 bench/athena.py --quick         # debug build, scale 0.01, one run (CI smoke test)

A TPC-H-shaped `lineitem` table is generated with DuckDB (its own SQL, deterministic hashes:
the tpch extension needs a download) and written once as Parquet and once as CSV. The same
files go to a local directory for DuckDB and to Lakebox S3, where Athena DDL defines the tables.
Each query runs through the Athena API as a client sees it — StartQueryExecution, polling
GetQueryExecution every 2 ms, GetQueryResults — and, in the same process, with DuckDB reading
the local files. Times are medians; the ratio is Lakebox ÷ DuckDB, and results are compared
so that a fast wrong answer cannot pass. When datafusion-python is installed, the same SQL
also runs on Apache DataFusion alone (no API, no server, Lakebox's partition count): the
engine Lakebox is built on, so the column shows how much of the gap to DuckDB is the engine's.
A measurement, not a test.
"""

import argparse
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import boto3
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import Target, build, free_port  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

COLUMNS = """l_orderkey bigint, l_partkey bigint, l_suppkey bigint, l_linenumber int,
  l_quantity decimal(15,2), l_extendedprice decimal(15,2), l_discount decimal(15,2), l_tax decimal(15,2),
  l_returnflag string, l_linestatus string, l_shipdate date, l_commitdate date, l_receiptdate date,
  l_shipinstruct string, l_shipmode string, l_comment string"""

GENERATE = """
CREATE TABLE lineitem AS
SELECT i // 4 + 1 AS l_orderkey,
       (hash(i, 1) % 200000)::BIGINT + 1 AS l_partkey,
       (hash(i, 2) % 10000)::BIGINT + 1 AS l_suppkey,
       (i % 4 + 1)::INTEGER AS l_linenumber,
       ((hash(i, 3) % 50)::BIGINT + 1)::DECIMAL(15,2) AS l_quantity,
       (((hash(i, 4) % 9000000)::BIGINT + 90000) / 100.0)::DECIMAL(15,2) AS l_extendedprice,
       (((hash(i, 5) % 11)::BIGINT) / 100.0)::DECIMAL(15,2) AS l_discount,
       (((hash(i, 6) % 9)::BIGINT) / 100.0)::DECIMAL(15,2) AS l_tax,
       ['A', 'N', 'R'][(hash(i, 7) % 3)::BIGINT + 1] AS l_returnflag,
       ['O', 'F'][(hash(i, 8) % 2)::BIGINT + 1] AS l_linestatus,
       DATE '1992-01-02' + ((hash(i, 9) % 2526)::BIGINT)::INTEGER AS l_shipdate,
       DATE '1992-01-31' + ((hash(i, 10) % 2466)::BIGINT)::INTEGER AS l_commitdate,
       DATE '1992-01-03' + ((hash(i, 11) % 2555)::BIGINT)::INTEGER AS l_receiptdate,
       ['DELIVER IN PERSON', 'COLLECT COD', 'NONE', 'TAKE BACK RETURN'][(hash(i, 12) % 4)::BIGINT + 1] AS l_shipinstruct,
       ['REG AIR', 'AIR', 'RAIL', 'SHIP', 'TRUCK', 'MAIL', 'FOB'][(hash(i, 13) % 7)::BIGINT + 1] AS l_shipmode,
       'carefully ' || ['special', 'regular', 'final', 'express'][(hash(i, 14) % 4)::BIGINT + 1] || ' requests ' || ((hash(i, 15) % 1000)::BIGINT)::VARCHAR AS l_comment
FROM range({rows}) t(i)
"""

# (name, Athena SQL, DuckDB SQL): the same query, each engine's own spelling of the table.
QUERIES = [
    ("count", "SELECT count(*) FROM {t}"),
    ("q1 pricing summary", """SELECT l_returnflag, l_linestatus, sum(l_quantity) AS sum_qty,
        sum(l_extendedprice) AS sum_base_price, sum(l_extendedprice * (1 - l_discount)) AS sum_disc_price,
        avg(l_quantity) AS avg_qty, avg(l_discount) AS avg_disc, count(*) AS count_order
        FROM {t} WHERE l_shipdate <= DATE '1998-09-02'
        GROUP BY l_returnflag, l_linestatus ORDER BY l_returnflag, l_linestatus"""),
    ("q6 forecast revenue", """SELECT sum(l_extendedprice * l_discount) AS revenue FROM {t}
        WHERE l_shipdate >= DATE '1994-01-01' AND l_shipdate < DATE '1995-01-01'
          AND l_discount BETWEEN 0.05 AND 0.07 AND l_quantity < 24"""),
    ("top orders", """SELECT l_orderkey, sum(l_extendedprice) AS total FROM {t}
        GROUP BY l_orderkey ORDER BY total DESC, l_orderkey LIMIT 10"""),
    ("filter + like", """SELECT l_shipmode, count(*) AS n FROM {t}
        WHERE l_comment LIKE '%special%' AND l_receiptdate > l_commitdate GROUP BY l_shipmode ORDER BY l_shipmode"""),
    ("distinct parts", "SELECT count(DISTINCT l_partkey) FROM {t}"),
]


def athena_query(athena, sql):
    t0 = time.perf_counter()
    qid = athena.start_query_execution(QueryString=sql, QueryExecutionContext={"Database": "tpch"},
                                       ResultConfiguration={"OutputLocation": "s3://results/"})["QueryExecutionId"]
    while True:
        e = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]
        state = e["Status"]["State"]
        if state not in ("QUEUED", "RUNNING"):
            break
        time.sleep(0.002)
    if state != "SUCCEEDED":
        raise RuntimeError(f"{sql}: {e['Status']}")
    rows = []
    token = None
    while True:
        kw = {"NextToken": token} if token else {}
        out = athena.get_query_results(QueryExecutionId=qid, **kw)
        rows += [[c.get("VarCharValue") for c in r["Data"]] for r in out["ResultSet"]["Rows"]]
        token = out.get("NextToken")
        if not token:
            break
    return time.perf_counter() - t0, rows[1:], e["Statistics"]["DataScannedInBytes"]


def same(a, b):
    """Rows equal, numbers within a relative 1e-6 (the engines print decimals differently)."""
    if len(a) != len(b):
        return False
    for ra, rb in zip(a, b):
        for x, y in zip(ra, rb):
            try:
                fx, fy = float(x), float(y)
                if not math.isclose(fx, fy, rel_tol=1e-6, abs_tol=1e-6):
                    return False
            except (TypeError, ValueError):
                if str(x) != str(y):
                    return False
    return True


def datafusion_alone(paths, formats):
    """A DataFusion session over the same files, as Lakebox configures its own, or None."""
    try:
        import pyarrow as pa
        from datafusion import SessionConfig, SessionContext
    except ImportError:
        return None
    ctx = SessionContext(SessionConfig().with_target_partitions(max(4, 2 * (os.cpu_count() or 1))))
    types = {"bigint": pa.int64(), "int": pa.int32(), "decimal(15,2)": pa.decimal128(15, 2),
             "string": pa.string(), "date": pa.date32()}
    schema = pa.schema([(c.split()[0], types[c.split()[1]]) for c in COLUMNS.replace("\n", " ").split(", ")])
    for fmt in formats:
        if fmt == "parquet":
            ctx.register_parquet("lineitem_parquet", paths[fmt])
        else:
            ctx.register_csv("lineitem_csv", paths[fmt], schema=schema, has_header=False, delimiter="|")
    return ctx


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=1.0, help="TPC-H scale factor (1 = 6,000,000 rows)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--formats", default="parquet,csv")
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "athena.md"))
    ap.add_argument("--quick", action="store_true", help="debug build, scale 0.01, one run")
    ap.add_argument("--lakebox", help="an already built lakebox binary to measure (skips the build)")
    args = ap.parse_args()
    if args.quick:
        args.scale, args.runs = 0.01, 1
    import duckdb

    lakebox_bin = Path(args.lakebox) if args.lakebox else build(debug=args.quick)[0]
    rows = int(6_000_000 * args.scale)
    formats = args.formats.split(",")
    results = []
    with tempfile.TemporaryDirectory() as work:
        duck = duckdb.connect()
        t0 = time.perf_counter()
        duck.execute(GENERATE.format(rows=rows))
        paths = {}
        for fmt in formats:
            paths[fmt] = os.path.join(work, f"lineitem.{fmt}")
            if fmt == "parquet":
                duck.execute(f"COPY lineitem TO '{paths[fmt]}' (FORMAT parquet, COMPRESSION snappy, ROW_GROUP_SIZE 1000000)")
            else:
                duck.execute(f"COPY lineitem TO '{paths[fmt]}' (FORMAT csv, HEADER false, DELIMITER '|')")
        gen_s = time.perf_counter() - t0
        engine = datafusion_alone(paths, formats)
        port = free_port()
        target = Target("lakebox", [str(lakebox_bin), "serve", "--port", str(port), "--data-dir", os.path.join(work, "data")], port).start()
        try:
            cfg = Config(max_pool_connections=8, retries={"total_max_attempts": 3})
            kw = dict(endpoint_url=target.endpoint, region_name="us-east-1", aws_access_key_id="test",
                      aws_secret_access_key="test", config=cfg)
            s3, athena = boto3.client("s3", **kw), boto3.client("athena", **kw)
            s3.create_bucket(Bucket="tpch")
            s3.create_bucket(Bucket="results")
            athena_query(athena, "CREATE DATABASE tpch")
            sizes = {}
            for fmt in formats:
                sizes[fmt] = os.path.getsize(paths[fmt])
                s3.upload_file(paths[fmt], "tpch", f"{fmt}/lineitem/part-0.{fmt}")
                stored = "STORED AS PARQUET" if fmt == "parquet" else "ROW FORMAT DELIMITED FIELDS TERMINATED BY '|'"
                athena_query(athena, f"CREATE EXTERNAL TABLE tpch.lineitem_{fmt} ({COLUMNS}) {stored} "
                                     f"LOCATION 's3://tpch/{fmt}/lineitem/'")
                duck_source = (f"read_parquet('{paths[fmt]}')" if fmt == "parquet" else
                               f"read_csv('{paths[fmt]}', delim='|', header=false, columns="
                               "{'l_orderkey':'BIGINT','l_partkey':'BIGINT','l_suppkey':'BIGINT','l_linenumber':'INTEGER',"
                               "'l_quantity':'DECIMAL(15,2)','l_extendedprice':'DECIMAL(15,2)','l_discount':'DECIMAL(15,2)',"
                               "'l_tax':'DECIMAL(15,2)','l_returnflag':'VARCHAR','l_linestatus':'VARCHAR','l_shipdate':'DATE',"
                               "'l_commitdate':'DATE','l_receiptdate':'DATE','l_shipinstruct':'VARCHAR','l_shipmode':'VARCHAR',"
                               "'l_comment':'VARCHAR'})")
                for name, sql in QUERIES:
                    lake_times, duck_times, df_times = [], [], []
                    lake_rows = duck_rows = None
                    scanned = 0
                    for _ in range(args.runs):
                        s, lake_rows, scanned = athena_query(athena, sql.format(t=f"lineitem_{fmt}"))
                        lake_times.append(s)
                        t0 = time.perf_counter()
                        duck_rows = duck.execute(sql.format(t=duck_source)).fetchall()
                        duck_times.append(time.perf_counter() - t0)
                        if engine is not None:
                            t0 = time.perf_counter()
                            engine.sql(sql.format(t=f"lineitem_{fmt}")).collect()
                            df_times.append(time.perf_counter() - t0)
                    duck_rows = [[None if v is None else str(v) for v in r] for r in duck_rows]
                    results.append({"format": fmt, "query": name, "lakebox": statistics.median(lake_times),
                                    "duckdb": statistics.median(duck_times), "same": same(lake_rows, duck_rows),
                                    "datafusion": statistics.median(df_times) if df_times else None,
                                    "scanned": scanned})
            trivial = [athena_query(athena, "SELECT 1")[0] for _ in range(max(5, args.runs * 10))]
        finally:
            target.stop()
    lines = [
        "# Athena on Lakebox vs DuckDB, same files",
        "",
        f"Command: `python3 bench/athena.py --scale {args.scale} --runs {args.runs} --formats {args.formats}`"
        + (" (with a prebuilt `--lakebox` binary)" if args.lakebox else ""),
        f"Machine: {os.cpu_count()} cores, {platform.platform()}; {'debug' if args.quick else 'dist'} Lakebox; "
        f"DuckDB {duckdb.__version__} in the benchmark process on local files. lineitem: {rows:,} rows "
        + ", ".join(f"{f} {sizes[f] / 2**20:.1f} MiB" for f in formats) + f" (generated in {gen_s:.1f} s).",
        "Lakebox times are the full API round trip (StartQueryExecution → SUCCEEDED → GetQueryResults, all pages).",
        "",
        "DataFusion alone: the same SQL on datafusion-python (the engine Lakebox runs) in the benchmark process.",
        "",
        "| format | query | Lakebox (Athena API) | DuckDB | ratio | DataFusion alone | its ratio | DataScannedInBytes | same result |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]

    def ms(x):
        return "—" if x is None else f"{x * 1000:.0f} ms"

    for r in results:
        df_ratio = "—" if r["datafusion"] is None else f"{r['datafusion'] / r['duckdb']:.2f}×"
        lines.append(f"| {r['format']} | {r['query']} | {ms(r['lakebox'])} | {ms(r['duckdb'])} | "
                     f"{r['lakebox'] / r['duckdb']:.2f}× | {ms(r['datafusion'])} | {df_ratio} | "
                     f"{r['scanned'] / 2**20:.1f} MiB | {'yes' if r['same'] else 'NO'} |")

    def geomean(xs):
        return math.exp(sum(math.log(x) for x in xs) / len(xs))

    for fmt in formats:
        rows_ = [r for r in results if r["format"] == fmt]
        line = f"\nGeometric mean ratio to DuckDB, {fmt}: Lakebox **{geomean([r['lakebox'] / r['duckdb'] for r in rows_]):.2f}×**"
        if all(r["datafusion"] is not None for r in rows_):
            line += f", DataFusion alone {geomean([r['datafusion'] / r['duckdb'] for r in rows_]):.2f}×"
        lines.append(line + " (aim on Parquet: ≤ 1.25×).")
    lines.append(f"\nTrivial query (`SELECT 1`) round trip: median {statistics.median(trivial) * 1000:.1f} ms, "
                 f"p95 {sorted(trivial)[int(len(trivial) * 0.95) - 1] * 1000:.1f} ms over {len(trivial)} runs (aim < 50 ms).")
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text)
    print(text)
    if not all(r["same"] for r in results):
        sys.exit("results differ between Lakebox and DuckDB")


if __name__ == "__main__":
    main()
