"""Athena's Hive DDL: databases, external tables, partitions and SHOW/DESCRIBE run through
StartQueryExecution, stored in Lakebox's Glue catalog, and the tables they define queried."""

import io
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakebox_harness import Lakebox, run_query, wait_for_query

RESULTS = "s3://athena-results/ddl/"


@pytest.fixture(scope="module")
def lakebox(tmp_path_factory):
    server = Lakebox(tmp_path_factory.mktemp("athenaddl")).start()
    s3 = server.client("s3")
    s3.create_bucket(Bucket="lake")
    s3.create_bucket(Bucket="athena-results")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def athena(lakebox):
    return lakebox.client("athena")


def run(athena, sql, database=None):
    return run_query(athena, sql, RESULTS, database)


def ok(athena, sql, database=None):
    qid, e = run(athena, sql, database)
    assert e["Status"]["State"] == "SUCCEEDED", (sql, e["Status"])
    out = athena.get_query_results(QueryExecutionId=qid)
    return [[c.get("VarCharValue") for c in r["Data"]] for r in out["ResultSet"]["Rows"]], out, e


def failed(athena, sql, database=None):
    _, e = run(athena, sql, database)
    assert e["Status"]["State"] == "FAILED", (sql, e["Status"])
    return e["Status"]


def parquet(rows, names):
    buf = io.BytesIO()
    pq.write_table(pa.table({n: [r[i] for r in rows] for i, n in enumerate(names)}), buf)
    return buf.getvalue()


def test_databases_and_tables_land_in_glue_and_show_as_athena_prints_them(athena, lakebox):
    glue, s3 = lakebox.client("glue"), lakebox.client("s3")
    rows, out, e = ok(athena, "CREATE DATABASE IF NOT EXISTS web COMMENT 'site data'")
    assert e["StatementType"] == "DDL" and rows == []
    assert e["ResultConfiguration"]["OutputLocation"].endswith(".txt")
    assert glue.get_database(Name="web")["Database"]["Description"] == "site data"
    ok(athena, """CREATE EXTERNAL TABLE web.visits (
                    visitor string COMMENT 'who',
                    pages int,
                    tags array<string>)
                  ROW FORMAT DELIMITED FIELDS TERMINATED BY '|' COLLECTION ITEMS TERMINATED BY ','
                  LOCATION 's3://lake/visits/'
                  TBLPROPERTIES ('skip.header.line.count'='1')""")
    t = glue.get_table(DatabaseName="web", Name="visits")["Table"]
    assert t["TableType"] == "EXTERNAL_TABLE" and t["Parameters"]["EXTERNAL"] == "TRUE"
    sd = t["StorageDescriptor"]
    assert sd["SerdeInfo"]["SerializationLibrary"] == "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe"
    assert sd["SerdeInfo"]["Parameters"]["field.delim"] == "|"
    assert [(c["Name"], c["Type"]) for c in sd["Columns"]] == [("visitor", "string"), ("pages", "int"), ("tags", "array<string>")]

    # SHOW and DESCRIBE are UTILITY statements: rows without a header row, from <id>.txt.
    rows, out, e = ok(athena, "SHOW TABLES IN web")
    assert e["StatementType"] == "UTILITY" and rows == [["visits"]]
    assert out["ResultSet"]["ResultSetMetadata"]["ColumnInfo"][0]["Name"] == "tab_name"
    rows, _, _ = ok(athena, "SHOW DATABASES LIKE 'we*'")
    assert rows == [["web"]]
    rows, _, _ = ok(athena, "SHOW COLUMNS IN visits", database="web")
    assert rows == [["visitor"], ["pages"], ["tags"]]
    rows, out, _ = ok(athena, "DESCRIBE web.visits")
    assert [c["Name"] for c in out["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]] == ["col_name", "data_type", "comment"]
    assert [r[0].split("\t")[0].strip() for r in rows] == ["visitor", "pages", "tags"]
    assert rows[0][0].split("\t")[2].strip() == "who"
    rows, _, e = ok(athena, "SHOW CREATE TABLE web.visits")
    ddl = "\n".join(r[0] for r in rows)
    assert ddl.startswith("CREATE EXTERNAL TABLE `web`.`visits`(") and "'s3://lake/visits/'" in ddl
    # The .txt result and its .metadata companion are where Athena writes them.
    key = e["ResultConfiguration"]["OutputLocation"].split("/", 3)[3]
    body = s3.get_object(Bucket="athena-results", Key=key)["Body"].read().decode()
    assert body == ddl
    meta = s3.get_object(Bucket="athena-results", Key=key + ".metadata")["Body"].read()
    assert e["QueryExecutionId"].encode() in meta and b"createtab_stmt" in meta

    # What SHOW CREATE TABLE prints recreates the table.
    ok(athena, "DROP TABLE web.visits")
    assert not glue.get_tables(DatabaseName="web")["TableList"]
    ok(athena, ddl)
    assert glue.get_table(DatabaseName="web", Name="visits")["Table"]["StorageDescriptor"]["Columns"] == sd["Columns"]


def test_delimited_text_table_created_by_ddl_is_queried(athena, lakebox):
    s3 = lakebox.client("s3")
    data = [(f"v{i % 4}", i, ["a", "b"][: i % 3]) for i in range(1, 31)]
    body = "visitor|pages|tags\n" + "".join(f"{v}|{p}|{','.join(t)}\n" for v, p, t in data)
    s3.put_object(Bucket="lake", Key="visits/2024.csv", Body=body.encode())
    s3.put_object(Bucket="lake", Key="visits/_SUCCESS", Body=b"")
    ok(athena, "CREATE DATABASE IF NOT EXISTS web")
    ok(athena, """CREATE EXTERNAL TABLE IF NOT EXISTS web.visits2 (visitor string, pages int, tags string)
                  ROW FORMAT DELIMITED FIELDS TERMINATED BY '|'
                  LOCATION 's3://lake/visits/'
                  TBLPROPERTIES ('skip.header.line.count'='1')""")
    rows, out, e = ok(athena, "SELECT visitor, sum(pages) AS total, count(*) AS n FROM visits2 GROUP BY visitor ORDER BY visitor", database="web")
    assert e["StatementType"] == "DML"
    expected = {}
    for v, p, _ in data:
        t, n = expected.get(v, (0, 0))
        expected[v] = (t + p, n + 1)
    assert rows[0] == ["visitor", "total", "n"]
    assert rows[1:] == [[v, str(t), str(n)] for v, (t, n) in sorted(expected.items())]
    key = e["ResultConfiguration"]["OutputLocation"].split("/", 3)[3]
    assert key.endswith(".csv")
    meta = s3.get_object(Bucket="athena-results", Key=key + ".metadata")["Body"].read()
    assert b"visitor" in meta and b"bigint" in meta


def test_partitions_are_read_only_once_registered(athena, lakebox):
    s3, glue = lakebox.client("s3"), lakebox.client("glue")
    days = {"2024-01-01": [("a", 1), ("b", 2)], "2024-01-02": [("c", 3)], "2024-01-03": [("d", 4), ("e", 5), ("f", 6)]}
    for day, rows in days.items():
        s3.put_object(Bucket="lake", Key=f"clicks/dt={day}/part-0.parquet", Body=parquet(rows, ["page", "n"]))
    # A partition kept outside the table's folder, with no key=value in its path.
    s3.put_object(Bucket="lake", Key="archive/old/part-0.parquet", Body=parquet([("z", 100)], ["page", "n"]))
    ok(athena, "CREATE DATABASE IF NOT EXISTS web")
    ok(athena, """CREATE EXTERNAL TABLE web.clicks (page string, n bigint)
                  PARTITIONED BY (dt string) STORED AS PARQUET LOCATION 's3://lake/clicks/'""")
    count = lambda where="": int(ok(athena, f"SELECT count(*) FROM web.clicks {where}")[0][1][0])
    # Athena reads only partitions the catalog knows.
    assert count() == 0
    rows, _, e = ok(athena, "MSCK REPAIR TABLE web.clicks")
    assert e["StatementType"] == "DDL"
    assert rows[0][0].startswith("Partitions not in metastore:")
    assert count() == 6
    rows, _, _ = ok(athena, "SHOW PARTITIONS web.clicks")
    assert rows == [["dt=2024-01-01"], ["dt=2024-01-02"], ["dt=2024-01-03"]]
    ok(athena, "ALTER TABLE web.clicks ADD PARTITION (dt='2023-12-31') LOCATION 's3://lake/archive/old/'")
    p = glue.get_partition(DatabaseName="web", TableName="clicks", PartitionValues=["2023-12-31"])["Partition"]
    assert p["StorageDescriptor"]["Location"] == "s3://lake/archive/old/"
    assert count() == 7
    rows, _, _ = ok(athena, "SELECT dt, sum(n) FROM web.clicks WHERE dt < '2024-01-02' GROUP BY dt ORDER BY dt")
    assert rows[1:] == [["2023-12-31", "100"], ["2024-01-01", "3"]]
    assert count("WHERE dt = '2024-01-03'") == 3
    # DataScannedInBytes is what was read: fewer partitions, fewer columns, fewer bytes.
    scanned = lambda sql: int(ok(athena, sql)[2]["Statistics"]["DataScannedInBytes"])
    everything = scanned("SELECT * FROM web.clicks")
    one_day = scanned("SELECT * FROM web.clicks WHERE dt = '2024-01-03'")
    one_column = scanned("SELECT page FROM web.clicks")
    assert 0 < one_day < everything and 0 < one_column < everything
    ok(athena, "ALTER TABLE web.clicks DROP PARTITION (dt='2024-01-03')")
    assert count() == 4
    status = failed(athena, "ALTER TABLE web.clicks DROP PARTITION (dt='2024-01-03')")
    assert "Partition not found" in status["StateChangeReason"]
    ok(athena, "ALTER TABLE web.clicks DROP IF EXISTS PARTITION (dt='2024-01-03')")
    ok(athena, "ALTER TABLE web.clicks ADD IF NOT EXISTS PARTITION (dt='2024-01-03') PARTITION (dt='2024-01-01')")
    assert count() == 7


def test_opencsv_and_json_serde_tables(athena, lakebox):
    s3 = lakebox.client("s3")
    s3.put_object(Bucket="lake", Key="quoted/q.csv", Body=b'"id","note"\n"1","a, b"\n"2","say ""hi"""\n')
    s3.put_object(Bucket="lake", Key="json/j.json", Body=b'{"id": 1, "name": "x"}\n{"id": 2, "name": "y"}\n')
    ok(athena, "CREATE DATABASE IF NOT EXISTS web")
    ok(athena, """CREATE EXTERNAL TABLE web.quoted (id string, note string)
                  ROW FORMAT SERDE 'org.apache.hadoop.hive.serde2.OpenCSVSerde'
                  WITH SERDEPROPERTIES ('separatorChar' = ',', 'quoteChar' = '"')
                  LOCATION 's3://lake/quoted/' TBLPROPERTIES ('skip.header.line.count'='1')""")
    rows, _, _ = ok(athena, "SELECT id, note FROM web.quoted ORDER BY id")
    assert rows[1:] == [["1", "a, b"], ["2", 'say "hi"']]
    ok(athena, """CREATE EXTERNAL TABLE web.people (id int, name string)
                  ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe' LOCATION 's3://lake/json/'""")
    rows, _, _ = ok(athena, "SELECT name FROM web.people WHERE id = 2")
    assert rows[1:] == [["y"]]


def test_ddl_errors_fail_the_query_with_a_reason(athena):
    status = failed(athena, "CREATE EXTERNAL TABLE nowhere.t (a int) LOCATION 's3://lake/t/'")
    assert "Database does not exist: nowhere" in status["StateChangeReason"]
    assert status["AthenaError"]["ErrorCategory"] == 2
    status = failed(athena, "CREATE EXTERNAL TABLE web.t (a strng) LOCATION 's3://lake/t/'")
    assert "Unknown type 'strng'" in status["StateChangeReason"]
    status = failed(athena, "DESCRIBE web.missing")
    assert "Table not found web.missing" in status["StateChangeReason"]
    ok(athena, "CREATE DATABASE IF NOT EXISTS scratch")
    ok(athena, "CREATE EXTERNAL TABLE scratch.t (a int) LOCATION 's3://lake/t/'")
    status = failed(athena, "DROP DATABASE scratch")
    assert "is not empty" in status["StateChangeReason"]
    ok(athena, "DROP DATABASE scratch CASCADE")
    status = failed(athena, "SHOW TABLES IN scratch")
    assert "Database does not exist: scratch" in status["StateChangeReason"]


def test_unqualified_ddl_goes_to_the_default_database(athena, lakebox):
    ok(athena, "CREATE EXTERNAL TABLE plain (a int) LOCATION 's3://lake/plain/'")
    assert lakebox.client("glue").get_table(DatabaseName="default", Name="plain")
    rows, _, _ = ok(athena, "SHOW TABLES")
    assert ["plain"] in rows


def test_bytes_scanned_cutoff_cancels_the_query(athena, lakebox):
    import os
    s3 = lakebox.client("s3")
    blobs = [os.urandom(4096).hex() for _ in range(1700)]  # ~13.9 MB of incompressible text
    buf = io.BytesIO()
    pq.write_table(pa.table({"id": list(range(len(blobs))), "blob": blobs}), buf, compression="none", use_dictionary=False)
    s3.put_object(Bucket="lake", Key="big/b.parquet", Body=buf.getvalue())
    ok(athena, "CREATE DATABASE IF NOT EXISTS web")
    ok(athena, "CREATE EXTERNAL TABLE web.big (id bigint, blob string) STORED AS PARQUET LOCATION 's3://lake/big/'")
    athena.create_work_group(Name="capped", Configuration={
        "BytesScannedCutoffPerQuery": 10_000_000,
        "ResultConfiguration": {"OutputLocation": RESULTS}})

    def in_capped(sql):
        qid = athena.start_query_execution(QueryString=sql, WorkGroup="capped")["QueryExecutionId"]
        return wait_for_query(athena, qid)

    e = in_capped("SELECT count(*), max(length(blob)) FROM web.big")
    assert e["Status"]["State"] == "CANCELLED"
    assert e["Status"]["StateChangeReason"] == "Bytes scanned limit was exceeded"
    # Reading only the small column stays under the limit.
    e = in_capped("SELECT sum(id) FROM web.big")
    assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
    assert 0 < e["Statistics"]["DataScannedInBytes"] < 10_000_000


def test_cli_ddl_example_from_the_docs(lakebox):
    import json
    s3 = lakebox.client("s3")
    s3.create_bucket(Bucket="results")
    s3.put_object(Bucket="lake", Key="docclicks/dt=2024-05-01/p.parquet", Body=parquet([("a", 1)], ["page", "n"]))
    lakebox.client("glue").create_database(DatabaseInput={"Name": "docshop"})

    def cli(*args):
        r = lakebox.cli(*args)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout) if r.stdout.strip() else {}

    def query(sql):
        qid = cli("athena", "start-query-execution", "--result-configuration", "OutputLocation=s3://results/ddl/",
                  "--query-string", sql)["QueryExecutionId"]
        deadline = time.time() + 30
        while True:
            state = cli("athena", "get-query-execution", "--query-execution-id", qid)["QueryExecution"]["Status"]["State"]
            if state not in ("QUEUED", "RUNNING"):
                assert state == "SUCCEEDED"
                return
            assert time.time() < deadline
            time.sleep(0.05)

    query("""CREATE EXTERNAL TABLE docshop.clicks (page string, n bigint) PARTITIONED BY (dt string)
             STORED AS PARQUET LOCATION 's3://lake/docclicks/'""")
    query("MSCK REPAIR TABLE docshop.clicks")
    parts = cli("glue", "get-partitions", "--database-name", "docshop", "--table-name", "clicks")["Partitions"]
    assert [p["Values"] for p in parts] == [["2024-05-01"]]


def test_compressed_text_tables_are_read_by_extension(athena, lakebox):
    import bz2
    import gzip
    import cramjam
    s3 = lakebox.client("s3")
    rows_by_file = {
        "logs/a.csv.gz": [(1, "x"), (2, "y")],
        "logs/b.csv.bz2": [(3, "z")],
        "logs/c.csv.zst": [(4, "w"), (5, "v")],
        "logs/d.csv": [(6, "u")],
        "logs/e.csv.snappy": [(7, "t"), (8, "s")],
        "logs/f.csv.lz4": [(9, "r")],
        "logs/g/framed.snappy": [(10, "q")],
        "logs/g/framed.lz4": [(11, "p")],
        "logs/h.csv.deflate": [(12, "o")],  # Hadoop's DefaultCodec: zlib
        "logs/i/raw.deflate": [(13, "n")],
    }

    def hadoop_blocks(body, compress, block=8):
        # Hadoop's BlockCompressorStream (what Hive and Spark write for .snappy / .lz4 text):
        # per block its uncompressed length, then a length-prefixed compressed chunk.
        out = b""
        for start in range(0, len(body), block):
            chunk = body[start:start + block]
            packed = bytes(compress(chunk))
            out += len(chunk).to_bytes(4, "big") + len(packed).to_bytes(4, "big") + packed
        return out

    for key, rows in rows_by_file.items():
        body = "".join(f"{i},{s}\n" for i, s in rows).encode()
        if key.endswith(".gz"):
            body = gzip.compress(body)
        elif key.endswith(".bz2"):
            body = bz2.compress(body)
        elif key.endswith(".zst"):
            body = bytes(cramjam.zstd.compress(body))
        elif key.endswith("framed.snappy"):
            body = bytes(cramjam.snappy.compress(body))
        elif key.endswith("framed.lz4"):
            body = bytes(cramjam.lz4.compress(body))
        elif key.endswith(".snappy"):
            body = hadoop_blocks(body, cramjam.snappy.compress_raw)
        elif key.endswith(".lz4"):
            body = hadoop_blocks(body, lambda b: cramjam.lz4.compress_block(b, store_size=False))
        elif key.endswith("raw.deflate"):
            import zlib
            c = zlib.compressobj(wbits=-15)
            body = c.compress(body) + c.flush()
        elif key.endswith(".deflate"):
            import zlib
            body = zlib.compress(body)
        s3.put_object(Bucket="lake", Key=key, Body=body)
    ok(athena, "CREATE DATABASE IF NOT EXISTS web")
    ok(athena, """CREATE EXTERNAL TABLE web.logs (id int, tag string)
                  ROW FORMAT DELIMITED FIELDS TERMINATED BY ',' LOCATION 's3://lake/logs/'""")
    got, _, _ = ok(athena, "SELECT id, tag FROM web.logs ORDER BY id")
    assert got[1:] == [[str(i), s] for rows in rows_by_file.values() for i, s in rows]
    s3.put_object(Bucket="lake", Key="jsonlogs/e.json.gz", Body=gzip.compress(b'{"id": 7, "tag": "t"}\n'))
    ok(athena, """CREATE EXTERNAL TABLE web.jsonlogs (id int, tag string)
                  ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe' LOCATION 's3://lake/jsonlogs/'""")
    got, _, _ = ok(athena, "SELECT id, tag FROM web.jsonlogs")
    assert got[1:] == [["7", "t"]]


def test_partition_projection_reads_computed_partitions(athena, lakebox, tmp_path):
    s3, glue = lakebox.client("s3"), lakebox.client("glue")
    data = {("eu", "2024/02/28"): [("a", 1)], ("eu", "2024/02/29"): [("b", 2)], ("us", "2024/03/01"): [("c", 3), ("d", 4)]}
    for (region, day), rows in data.items():
        s3.put_object(Bucket="lake", Key=f"proj/{region}/{day}/part.parquet", Body=parquet(rows, ["page", "n"]))
    ok(athena, "CREATE DATABASE IF NOT EXISTS web")
    ok(athena, """CREATE EXTERNAL TABLE web.projected (page string, n bigint)
                  PARTITIONED BY (region string, day string)
                  STORED AS PARQUET LOCATION 's3://lake/proj/'
                  TBLPROPERTIES ('projection.enabled' = 'true',
                    'projection.region.type' = 'enum', 'projection.region.values' = 'eu,us,ap',
                    'projection.day.type' = 'date', 'projection.day.format' = 'yyyy/MM/dd',
                    'projection.day.range' = '2024/02/01,2024/03/31',
                    'storage.location.template' = 's3://lake/proj/${region}/${day}/')""")
    # No partitions in Glue: they are projected.
    assert glue.get_partitions(DatabaseName="web", TableName="projected")["Partitions"] == []
    got, _, _ = ok(athena, "SELECT region, day, sum(n) FROM web.projected GROUP BY region, day ORDER BY region, day")
    assert got[1:] == [["eu", "2024/02/28", "1"], ["eu", "2024/02/29", "2"], ["us", "2024/03/01", "7"]]
    got, _, e = ok(athena, "SELECT count(*) FROM web.projected WHERE region = 'us' AND day >= '2024/03/01'")
    assert got[1:] == [["2"]]
    # Injected values come from the WHERE clause, and nothing else is read.
    s3.put_object(Bucket="lake", Key="inj/id=x1/p.parquet", Body=parquet([("z", 9)], ["page", "n"]))
    ok(athena, """CREATE EXTERNAL TABLE web.injected (page string, n bigint) PARTITIONED BY (id string)
                  STORED AS PARQUET LOCATION 's3://lake/inj/'
                  TBLPROPERTIES ('projection.enabled' = 'true', 'projection.id.type' = 'injected')""")
    got, _, _ = ok(athena, "SELECT page, n FROM web.injected WHERE id = 'x1'")
    assert got[1:] == [["z", "9"]]
    status = failed(athena, "SELECT count(*) FROM web.injected")
    assert "CONSTRAINT_VIOLATION" in status["StateChangeReason"]


ALB_DDL = r"""CREATE EXTERNAL TABLE IF NOT EXISTS web.alb_logs (
            type string,
            time string,
            elb string,
            client_ip string,
            client_port int,
            target_ip string,
            target_port int,
            request_processing_time double,
            target_processing_time double,
            response_processing_time double,
            elb_status_code int,
            target_status_code string,
            received_bytes bigint,
            sent_bytes bigint,
            request_verb string,
            request_url string,
            request_proto string,
            user_agent string,
            ssl_cipher string,
            ssl_protocol string,
            target_group_arn string,
            trace_id string,
            domain_name string,
            chosen_cert_arn string,
            matched_rule_priority string,
            request_creation_time string,
            actions_executed string,
            redirect_url string,
            lambda_error_reason string,
            target_port_list string,
            target_status_code_list string,
            classification string,
            classification_reason string
            )
            ROW FORMAT SERDE 'org.apache.hadoop.hive.serde2.RegexSerDe'
            WITH SERDEPROPERTIES (
            'serialization.format' = '1',
            'input.regex' =
        '([^ ]*) ([^ ]*) ([^ ]*) ([^ ]*):([0-9]*) ([^ ]*)[:-]([0-9]*) ([-.0-9]*) ([-.0-9]*) ([-.0-9]*) (|[-0-9]*) (-|[-0-9]*) ([-0-9]*) ([-0-9]*) \"([^ ]*) (.*) (- |[^ ]*)\" \"([^\"]*)\" ([A-Z0-9-_]+) ([A-Za-z0-9.-]*) ([^ ]*) \"([^\"]*)\" \"([^\"]*)\" \"([^\"]*)\" ([-.0-9]*) ([^ ]*) \"([^\"]*)\" \"([^\"]*)\" \"([^ ]*)\" \"([^\s]+?)\" \"([^\s]+)\" \"([^ ]*)\" \"([^ ]*)\" ?([^ ]*)?'
            )
            LOCATION 's3://lake/AWSLogs/123456789012/elasticloadbalancing/us-east-1/'"""


def alb_line(i, status, path):
    return (f'https 2024-05-0{i}T10:00:0{i}.123456Z app/my-lb/50dc6c495c0c9188 192.168.131.39:2817 10.0.0.1:80 '
            f'0.00{i} 0.001 0.000 {status} {status} 34 366 "GET https://www.example.com:443{path} HTTP/1.1" '
            f'"curl/7.46.0" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 '
            f'arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 '
            f'"Root=1-58337364-23a8c76965a2ef7629b185e3" "www.example.com" "arn:aws:acm:us-east-1:123456789012:certificate/12345678" '
            f'1 2024-05-0{i}T10:00:00.000000Z "forward" "-" "-" "10.0.0.1:80" "{status}" "-" "-"')


def test_alb_access_log_ddl_as_aws_documents_it(athena, lakebox):
    import gzip
    s3 = lakebox.client("s3")
    lines = [alb_line(1, 200, "/"), alb_line(2, 404, "/missing"), alb_line(3, 200, "/cart"), "garbage that matches nothing"]
    s3.put_object(Bucket="lake", Key="AWSLogs/123456789012/elasticloadbalancing/us-east-1/2024/05/01/log.log.gz",
                  Body=gzip.compress(("\n".join(lines) + "\n").encode()))
    ok(athena, "CREATE DATABASE IF NOT EXISTS web")
    ok(athena, ALB_DDL)
    got, _, _ = ok(athena, """SELECT elb_status_code, count(*) AS n, sum(sent_bytes) AS sent
                              FROM web.alb_logs WHERE elb_status_code IS NOT NULL
                              GROUP BY elb_status_code ORDER BY elb_status_code""")
    assert got[1:] == [["200", "2", "732"], ["404", "1", "366"]]
    got, _, _ = ok(athena, "SELECT client_ip, client_port, request_verb, request_url, user_agent, target_port_list FROM web.alb_logs WHERE time LIKE '2024-05-03%'")
    assert got[1:] == [["192.168.131.39", "2817", "GET", "https://www.example.com:443/cart", "curl/7.46.0", "10.0.0.1:80"]]
    # A line that does not match is all NULL, as Hive's RegexSerDe reads it.
    got, _, _ = ok(athena, "SELECT count(*) FROM web.alb_logs WHERE type IS NULL")
    assert got[1:] == [["1"]]


def test_regex_serde_with_lookahead_like_the_cloudfront_example(athena, lakebox):
    s3 = lakebox.client("s3")
    s3.put_object(Bucket="lake", Key="cf/log.txt", Body=b"#Version: 1.0\n2014-07-05 GET /a 200\n2014-07-05 GET /b 404\n")
    ok(athena, "CREATE DATABASE IF NOT EXISTS web")
    ok(athena, r"""CREATE EXTERNAL TABLE web.cf (day date, method string, uri string, status int)
                  ROW FORMAT SERDE 'org.apache.hadoop.hive.serde2.RegexSerDe'
                  WITH SERDEPROPERTIES ("input.regex" = "^(?!#)([^ ]+)\\s+([^ ]+)\\s+([^ ]+)\\s+([^ ]+)$")
                  LOCATION 's3://lake/cf/'""")
    got, _, _ = ok(athena, "SELECT day, uri, status FROM web.cf WHERE status IS NOT NULL ORDER BY uri")
    assert got[1:] == [["2014-07-05", "/a", "200"], ["2014-07-05", "/b", "404"]]
