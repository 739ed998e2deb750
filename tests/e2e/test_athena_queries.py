"""Athena queries run by DataFusion over Lakebox S3, on tables Glue crawlers wrote (read as
written, no edits), with expected results computed here from the generated data."""

import io
import json
import time

import botocore.exceptions
import fastavro
import pyarrow as pa
import pyarrow.orc as orc
import pyarrow.parquet as pq
import pytest

from lakebox_harness import Lakebox, run_query

ROLE = "arn:aws:iam::000000000000:role/glue"
RESULTS = "s3://athena-results/out/"


def code(e):
    return e.value.response["Error"]["Code"]


SALES = [(region, i, float(i) * 1.5, f"item{i % 7}") for region in ["eu", "us", "ap"] for i in range(1, 41)]
PEOPLE = [(i, f"name{i}", 20 + i % 30, i % 3 == 0) for i in range(1, 51)]


@pytest.fixture(scope="module")
def lakebox(tmp_path_factory):
    server = Lakebox(tmp_path_factory.mktemp("athenaq")).start()
    s3, glue = server.client("s3"), server.client("glue")
    s3.create_bucket(Bucket="lake")
    s3.create_bucket(Bucket="athena-results")
    for region in ["eu", "us", "ap"]:
        rows = [r for r in SALES if r[0] == region]
        t = pa.table({"id": [r[1] for r in rows], "amount": [r[2] for r in rows], "item": [r[3] for r in rows]})
        buf = io.BytesIO()
        pq.write_table(t, buf)
        s3.put_object(Bucket="lake", Key=f"sales/region={region}/part-0.parquet", Body=buf.getvalue())
    csv = "id,name,age,member\n" + "".join(f"{i},{n},{a},{str(m).lower()}\n" for i, n, a, m in PEOPLE)
    s3.put_object(Bucket="lake", Key="people/people.csv", Body=csv.encode())
    events = "".join(json.dumps({"user": f"u{i % 5}", "clicks": i, "tags": ["a", "b"][: i % 3]}) + "\n" for i in range(30))
    s3.put_object(Bucket="lake", Key="events/e.json", Body=events.encode())
    glue.create_database(DatabaseInput={"Name": "shop"})
    for name, path in [("c1", "s3://lake/sales/"), ("c2", "s3://lake/people/"), ("c3", "s3://lake/events/")]:
        glue.create_crawler(Name=name, Role=ROLE, DatabaseName="shop", Targets={"S3Targets": [{"Path": path}]})
        glue.start_crawler(Name=name)
    deadline = time.time() + 30
    for name in ["c1", "c2", "c3"]:
        while glue.get_crawler(Name=name)["Crawler"].get("LastCrawl", {}).get("Status") != "SUCCEEDED":
            assert time.time() < deadline
            time.sleep(0.05)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def athena(lakebox):
    return lakebox.client("athena")


def run(athena, sql, database="shop", **kw):
    return run_query(athena, sql, RESULTS, database, **kw)


def rows(athena, qid, **kw):
    out = athena.get_query_results(QueryExecutionId=qid, **kw)
    data = [[c.get("VarCharValue") for c in r["Data"]] for r in out["ResultSet"]["Rows"]]
    return data, out


def test_group_by_over_crawled_parquet_with_partitions(athena, lakebox):
    qid, e = run(athena, "SELECT region, count(*) AS n, sum(amount) AS total, max(item) AS top FROM sales GROUP BY region ORDER BY region")
    assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
    assert e["Statistics"]["EngineExecutionTimeInMillis"] >= 0 and e["Status"]["CompletionDateTime"]
    assert e["ResultConfiguration"]["OutputLocation"] == f"{RESULTS}{qid}.csv"
    data, out = rows(athena, qid)
    want = []
    for region in sorted({r[0] for r in SALES}):
        rs = [r for r in SALES if r[0] == region]
        want.append([region, str(len(rs)), str(sum(r[2] for r in rs)), max(r[3] for r in rs)])
    assert data[0] == ["region", "n", "total", "top"]
    assert data[1:] == want
    types = [c["Type"] for c in out["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]]
    assert types == ["varchar", "bigint", "double", "varchar"]
    body = lakebox.client("s3").get_object(Bucket="athena-results", Key=f"out/{qid}.csv")["Body"].read().decode()
    assert body.splitlines()[0] == '"region","n","total","top"'
    assert body.splitlines()[1].startswith('"ap","40",')


def test_csv_with_header_and_json_tables(athena):
    qid, e = run(athena, "SELECT count(*), sum(age), sum(CASE WHEN member THEN 1 ELSE 0 END) FROM people WHERE age > 30")
    assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
    want = [p for p in PEOPLE if p[2] > 30]
    assert rows(athena, qid)[0][1] == [str(len(want)), str(sum(p[2] for p in want)), str(sum(1 for p in want if p[3]))]
    qid, e = run(athena, "SELECT user, sum(clicks) AS c FROM events GROUP BY user ORDER BY c DESC LIMIT 2")
    assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
    sums = {}
    for i in range(30):
        sums[f"u{i % 5}"] = sums.get(f"u{i % 5}", 0) + i
    top = sorted(sums.items(), key=lambda kv: -kv[1])[:2]
    assert rows(athena, qid)[0][1:] == [[u, str(c)] for u, c in top]


def test_parquet_columns_match_regardless_of_case_and_counts_come_from_footers(athena, lakebox):
    # Spark and pandas keep names such as userId; Glue columns are lowercase and Athena matches
    # them regardless of case. Two files, so count(*) and min/max merge footer statistics.
    s3 = lakebox.client("s3")
    ids = [list(range(1, 101)), list(range(101, 161))]
    for n, part in enumerate(ids):
        t = pa.table({"userId": part, "EventName": [f"e{i % 4}" for i in part], "score": [i * 0.5 for i in part]})
        buf = io.BytesIO()
        pq.write_table(t, buf)
        s3.put_object(Bucket="lake", Key=f"mixedcase/part-{n}.parquet", Body=buf.getvalue())
    qid, e = run(athena, "CREATE EXTERNAL TABLE mixedcase (userid bigint, eventname string, score double, absent int) "
                         "STORED AS PARQUET LOCATION 's3://lake/mixedcase/'")
    assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
    every = ids[0] + ids[1]
    qid, e = run(athena, "SELECT count(*), count(userid), min(userid), max(userid), count(absent), "
                         "sum(CASE WHEN eventname = 'e1' THEN 1 ELSE 0 END) FROM mixedcase")
    assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
    want = [len(every), len(every), min(every), max(every), 0, sum(1 for i in every if i % 4 == 1)]
    assert rows(athena, qid)[0][1] == [str(v) for v in want]
    qid, e = run(athena, "SELECT userid, eventname FROM mixedcase WHERE userid BETWEEN 99 AND 102 ORDER BY userid")
    assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
    assert rows(athena, qid)[0][1:] == [[str(i), f"e{i % 4}"] for i in range(99, 103)]
    qid, e = run(athena, "SELECT count(*) FROM mixedcase WHERE userid > 150")
    assert rows(athena, qid)[0][1] == [str(sum(1 for i in every if i > 150))]


def test_parquet_columns_by_position_with_column_index_access(athena, lakebox):
    # parquet.column.index.access = true: the table's n-th column reads the file's n-th (a
    # renamed column keeps its data); a column past the file's is NULL. Without it, by name.
    s3 = lakebox.client("s3")
    buf = io.BytesIO()
    pq.write_table(pa.table({"old_id": [1, 2, 3], "old_name": ["a", "b", "c"]}), buf)
    s3.put_object(Bucket="lake", Key="renamed/part-0.parquet", Body=buf.getvalue())
    for name, props in [("by_position", "WITH SERDEPROPERTIES ('parquet.column.index.access' = 'true') "), ("by_name", "")]:
        qid, e = run(athena, f"CREATE EXTERNAL TABLE {name} (id bigint, name string, extra int) "
                             "ROW FORMAT SERDE 'org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe' "
                             f"{props}STORED AS INPUTFORMAT 'org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat' "
                             "OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat' "
                             "LOCATION 's3://lake/renamed/'")
        assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
    qid, e = run(athena, "SELECT id, name, extra FROM by_position WHERE id >= 2 ORDER BY id")
    assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
    assert rows(athena, qid)[0][1:] == [["2", "b", None], ["3", "c", None]]
    qid, e = run(athena, "SELECT count(*), count(id), max(id) FROM by_position")
    assert rows(athena, qid)[0][1] == ["3", "3", "3"]
    qid, e = run(athena, "SELECT count(*), count(id) FROM by_name")
    assert rows(athena, qid)[0][1] == ["3", "0"]


def test_parquet_struct_fields_match_regardless_of_case(athena, lakebox):
    # Spark keeps the data's spelling inside structs (Geo.CountryCode); Athena matches struct
    # fields regardless of case at any depth, in structs, arrays of structs and map values.
    s3 = lakebox.client("s3")
    geo = pa.struct([("CountryCode", pa.string()), ("City", pa.string())])
    items = pa.list_(pa.struct([("Sku", pa.string()), ("Qty", pa.int64())]))
    attrs = pa.map_(pa.string(), pa.struct([("Score", pa.int64())]))
    ids = list(range(12))
    t = pa.table({
        "Id": pa.array(ids, pa.int64()),
        "Geo": pa.array([{"CountryCode": "DE" if i % 3 == 0 else "FR", "City": f"c{i}"} for i in ids], geo),
        "Items": pa.array([[{"Sku": f"s{i}", "Qty": i}, {"Sku": "x", "Qty": 1}] for i in ids], items),
        "Attrs": pa.array([[("k", {"Score": i * 10})] for i in ids], attrs),
    })
    for n in range(2):
        buf = io.BytesIO()
        pq.write_table(t.slice(n * 6, 6), buf)
        s3.put_object(Bucket="lake", Key=f"sparkish/part-{n}.parquet", Body=buf.getvalue())
    crawl(lakebox, "sparkish", "s3://lake/sparkish/")
    qid, e = run(athena, "CREATE EXTERNAL TABLE sparkish_ddl (id bigint, Geo struct<COUNTRYCODE:string,city:string,zip:int>, "
                         "items array<struct<sku:string,QTY:bigint>>, attrs map<string,struct<score:bigint>>) "
                         "STORED AS PARQUET LOCATION 's3://lake/sparkish/'")
    assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
    de = [i for i in ids if i % 3 == 0]
    for table in ("sparkish", "sparkish_ddl"):
        qid, e = run(athena, f"SELECT id, geo.countrycode, geo.City, items[1].sku, items[1].qty, attrs['k'].score "
                             f"FROM {table} WHERE geo.countrycode = 'DE' ORDER BY id")
        assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
        assert rows(athena, qid)[0][1:] == [[str(i), "DE", f"c{i}", f"s{i}", str(i), str(i * 10)] for i in de], table
    qid, e = run(athena, "SELECT count(geo.zip), sum(cardinality(items)) FROM sparkish_ddl")
    assert rows(athena, qid)[0][1] == ["0", str(2 * len(ids))]
    # The file's rows unnest into one column per field, and map values keep their fields.
    qid, e = run(athena, "SELECT id, sku, qty, a.score FROM sparkish CROSS JOIN UNNEST(items) AS t(sku, qty) "
                         "CROSS JOIN UNNEST(attrs) AS u(k, a) WHERE sku <> 'x' AND qty > 8 ORDER BY id")
    assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
    assert rows(athena, qid)[0][1:] == [[str(i), f"s{i}", str(i), str(i * 10)] for i in ids if i > 8]


def test_json_keys_match_columns_as_the_openx_and_hive_serdes_do(athena, lakebox):
    # Firehose and application logs keep camelCase keys; Glue columns are lowercase. The OpenX
    # SerDe lowercases keys (case.insensitive defaults to true), dots.in.keys turns "a.b" into
    # a_b, mapping.<column> renames a key; the Hive JSON SerDe ignores case too.
    import gzip

    s3 = lakebox.client("s3")
    events = [{"userId": f"U{i}", "eventType": ["Click", "View"][i % 2], "Geo": {"CountryCode": "FR" if i % 3 else "DE"},
               "http.status": 200 + i % 2, "@Timestamp": f"2024-05-0{1 + i % 9}"} for i in range(24)]
    lines = [(json.dumps(e) + "\n").encode() for e in events]
    s3.put_object(Bucket="lake", Key="camel/part-0.json.gz", Body=gzip.compress(b"".join(lines[:12])))
    s3.put_object(Bucket="lake", Key="camel/part-1.json", Body=b"".join(lines[12:]))
    crawl(lakebox, "camel", "s3://lake/camel/")
    qid, e = run(athena, "SELECT userid, eventtype, geo.countrycode FROM camel ORDER BY userid LIMIT 3")
    assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
    first = sorted(events, key=lambda e: e["userId"])[:3]
    assert rows(athena, qid)[0][1:] == [[e["userId"], e["eventType"], e["Geo"]["CountryCode"]] for e in first]
    clicks = sum(1 for e in events if e["eventType"] == "Click" and e["Geo"]["CountryCode"] == "DE")
    qid, e = run(athena, "SELECT count(*) FROM camel WHERE eventtype = 'Click' AND geo.countrycode = 'DE'")
    assert rows(athena, qid)[0][1] == [str(clicks)]

    qid, e = run(athena, """CREATE EXTERNAL TABLE camel_mapped (userid string, http_status int, ts string)
        ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
        WITH SERDEPROPERTIES ('dots.in.keys' = 'true', 'mapping.ts' = '@Timestamp')
        LOCATION 's3://lake/camel/'""")
    assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
    qid, e = run(athena, "SELECT http_status, count(*), min(ts) FROM camel_mapped GROUP BY http_status ORDER BY http_status")
    assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
    want = [[str(s), str(sum(1 for e in events if e["http.status"] == s)),
             min(e["@Timestamp"] for e in events if e["http.status"] == s)] for s in (200, 201)]
    assert rows(athena, qid)[0][1:] == want

    # case.insensitive = false: only exact or mapped keys match.
    qid, e = run(athena, """CREATE EXTERNAL TABLE camel_exact (userid string, eventtype string)
        ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
        WITH SERDEPROPERTIES ('case.insensitive' = 'false', 'mapping.userid' = 'userId')
        LOCATION 's3://lake/camel/'""")
    qid, e = run(athena, "SELECT count(userid), count(eventtype) FROM camel_exact")
    assert rows(athena, qid)[0][1] == [str(len(events)), "0"]

    # ignore.malformed.json: a line that is not a JSON object reads as a row of NULLs;
    # without it the query fails.
    s3.put_object(Bucket="lake", Key="broken/part-0.json", Body=b'{"id": 1, "Name": "a"}\n{"id": 2, "Name": \nnot json\n{"id": 3}\n')
    for name, props in [("broken_ok", "WITH SERDEPROPERTIES ('ignore.malformed.json' = 'true')"), ("broken_strict", "")]:
        qid, e = run(athena, f"""CREATE EXTERNAL TABLE {name} (id int, name string)
            ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe' {props} LOCATION 's3://lake/broken/'""")
        assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
    qid, e = run(athena, "SELECT count(*), count(id), sum(id), max(name) FROM broken_ok")
    assert rows(athena, qid)[0][1] == ["4", "2", "4", "a"]
    qid, e = run(athena, "SELECT count(*) FROM broken_strict")
    assert e["Status"]["State"] == "FAILED"

    # Values as the SerDes read them: numbers, booleans and objects in string columns are their
    # text; with use.null.for.invalid.data a value that does not fit its column is NULL.
    s3.put_object(Bucket="lake", Key="loose/part-0.json",
                  Body=b'{"id": 1, "code": 123, "ok": true, "extra": {"a": [1]}}\n{"id": "two", "code": "x", "ok": false, "extra": "plain"}\n')
    for name, props in [("loose", ""), ("loose_nulls", "WITH SERDEPROPERTIES ('use.null.for.invalid.data' = 'true')")]:
        qid, e = run(athena, f"""CREATE EXTERNAL TABLE {name} (id int, code string, ok boolean, extra string)
            ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe' {props} LOCATION 's3://lake/loose/'""")
        assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
    qid, e = run(athena, "SELECT id, code, ok, extra FROM loose_nulls ORDER BY code")
    assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
    assert rows(athena, qid)[0][1:] == [["1", "123", "true", '{"a": [1]}'], [None, "x", "false", "plain"]]
    qid, e = run(athena, "SELECT sum(id) FROM loose")
    assert e["Status"]["State"] == "FAILED"  # "two" is no int, and nothing makes it NULL

    qid, e = run(athena, """CREATE EXTERNAL TABLE camel_hive (userid string, eventtype string)
        ROW FORMAT SERDE 'org.apache.hive.hcatalog.data.JsonSerDe' LOCATION 's3://lake/camel/'""")
    qid, e = run(athena, "SELECT count(DISTINCT userid), count(eventtype) FROM camel_hive")
    assert rows(athena, qid)[0][1] == [str(len(events)), str(len(events))]


def crawl(lakebox, name, path, database="shop"):
    glue = lakebox.client("glue")
    glue.create_crawler(Name=name, Role=ROLE, DatabaseName=database, Targets={"S3Targets": [{"Path": path}]})
    glue.start_crawler(Name=name)
    deadline = time.time() + 30
    while glue.get_crawler(Name=name)["Crawler"].get("LastCrawl", {}).get("Status") != "SUCCEEDED":
        assert time.time() < deadline
        time.sleep(0.05)


def test_orc_and_avro_tables_crawled_and_by_ddl(athena, lakebox):
    s3 = lakebox.client("s3")
    ids = list(range(1, 41))
    t = pa.table({"id": ids, "name": [f"n{i}" for i in ids], "score": [i * 0.25 for i in ids]})
    for n in range(3):
        buf = io.BytesIO()
        orc.write_table(t.slice(n * 10, 10 if n < 2 else 20), buf, compression="zlib")
        s3.put_object(Bucket="lake", Key=f"orcs/dt=2024-01-0{n + 1}/part-{n}.orc", Body=buf.getvalue())
    for n, codec in enumerate(["snappy", "zstd", "uncompressed"]):
        buf = io.BytesIO()
        orc.write_table(t.slice(n * 2, 2), buf, compression=codec)
        s3.put_object(Bucket="lake", Key=f"orc_codecs/part-{n}.orc", Body=buf.getvalue())
    schema = {"type": "record", "name": "r", "fields": [
        {"name": "id", "type": "long"}, {"name": "name", "type": ["null", "string"]},
        {"name": "tags", "type": {"type": "array", "items": "string"}}]}
    for n, codec in enumerate(["null", "deflate", "snappy"]):
        buf = io.BytesIO()
        part = ids[n * 10:(n + 1) * 10] if n < 2 else ids[20:]
        fastavro.writer(buf, schema, [{"id": i, "name": None if i % 5 == 0 else f"n{i}", "tags": ["t"] * (i % 3)}
                                      for i in part], codec=codec)
        s3.put_object(Bucket="lake", Key=f"avros/part-{n}.avro", Body=buf.getvalue())
    crawl(lakebox, "orc-crawler", "s3://lake/orcs/")
    crawl(lakebox, "avro-crawler", "s3://lake/avros/")
    qid, e = run(athena, "SELECT count(*), sum(id), max(name), sum(score), count(DISTINCT dt) FROM orcs WHERE id > 5")
    assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
    keep = [i for i in ids if i > 5]
    assert rows(athena, qid)[0][1] == [str(len(keep)), str(sum(keep)), "n9", str(sum(i * 0.25 for i in keep)), "3"]
    qid, e = run(athena, "SELECT id, name, cardinality(tags) FROM avros WHERE id IN (4, 5, 6, 35) ORDER BY id")
    assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
    assert rows(athena, qid)[0][1:] == [["4", "n4", "1"], ["5", None, "2"], ["6", "n6", "0"], ["35", None, "2"]]
    # By hand: ORC columns are matched by position unless orc.column.index.access is false.
    for name, by_name in [("orc_by_index", None), ("orc_by_name", "false")]:
        props = f" WITH SERDEPROPERTIES ('orc.column.index.access'='{by_name}')" if by_name else ""
        serde = "ROW FORMAT SERDE 'org.apache.hadoop.hive.ql.io.orc.OrcSerde'" + props if by_name else ""
        stored = ("STORED AS INPUTFORMAT 'org.apache.hadoop.hive.ql.io.orc.OrcInputFormat' "
                  "OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.orc.OrcOutputFormat'") if by_name else "STORED AS ORC"
        qid, e = run(athena, f"CREATE EXTERNAL TABLE {name} (score double, ID bigint) {serde} {stored} "
                             "LOCATION 's3://lake/orc_codecs/'")
        assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
    qid, e = run(athena, "SELECT score, id FROM orc_by_name ORDER BY id")
    assert rows(athena, qid)[0][1:] == [[str(i * 0.25), str(i)] for i in range(1, 7)]
    # By position the file's id lands in score and its name (not a number) reads as NULL.
    qid, e = run(athena, "SELECT score, id FROM orc_by_index ORDER BY score")
    assert rows(athena, qid)[0][1:] == [[f"{i}.0", None] for i in range(1, 7)]


def test_failures_nulls_parameters_and_paging(athena):
    # A query that does not parse is refused at StartQueryExecution, as Athena refuses it.
    with pytest.raises(botocore.exceptions.ClientError) as ex:
        run(athena, "SELEC 1")
    assert code(ex) == "InvalidRequestException" and ex.value.response["AthenaErrorCode"] == "MALFORMED_QUERY"
    qid, e = run(athena, "SELECT * FROM no_such_table")
    assert e["Status"]["State"] == "FAILED" and e["Status"]["AthenaError"]["ErrorCategory"] == 2
    with pytest.raises(botocore.exceptions.ClientError) as ex:
        athena.get_query_results(QueryExecutionId=qid)
    assert code(ex) == "InvalidRequestException"
    with pytest.raises(botocore.exceptions.ClientError) as ex:
        athena.start_query_execution(QueryString="SELECT 1")  # no output location anywhere
    assert code(ex) == "InvalidRequestException"

    qid, e = run(athena, "SELECT CAST(NULL AS VARCHAR) AS a, '' AS b, 'x' AS c")
    data, _ = rows(athena, qid)
    assert data[1] == [None, "", "x"]  # NULL has no VarCharValue; the empty string has one

    qid, e = run(athena, "SELECT id FROM sales WHERE region = ? AND id <= ? ORDER BY id", ExecutionParameters=["'eu'", "3"])
    assert e["ExecutionParameters"] == ["'eu'", "3"]
    assert rows(athena, qid)[0][1:] == [["1"], ["2"], ["3"]]

    qid, e = run(athena, "SELECT id FROM people ORDER BY id")
    first, out = rows(athena, qid, MaxResults=10)
    assert first[0] == ["id"] and len(first) == 10 and out["NextToken"]
    seen = first[1:]
    token = out["NextToken"]
    while token:
        page, out = rows(athena, qid, MaxResults=10, NextToken=token)
        seen += page
        token = out.get("NextToken")
    assert seen == [[str(p[0])] for p in PEOPLE]


def test_result_pages_across_quoted_newlines_and_a_replaced_result_file(athena, lakebox):
    # Values with commas, quotes and newlines straddle nothing: each page is whole rows.
    qid, e = run(athena, "SELECT n, 'a,\"b\"' || chr(10) || CAST(n AS VARCHAR) AS t "
                         "FROM UNNEST(sequence(1, 2500)) AS u(n) ORDER BY n")
    assert e["Status"]["State"] == "SUCCEEDED"
    seen, token, pages = [], None, 0
    while True:
        page, out = rows(athena, qid, MaxResults=1000, **({"NextToken": token} if token else {}))
        seen += page
        pages += 1
        token = out.get("NextToken")
        if not token:
            break
    assert pages == 3 and seen[0] == ["n", "t"]
    assert seen[1:] == [[str(n), f'a,"b"\n{n}'] for n in range(1, 2501)]
    # Paging reads an index of where rows start; a result file replaced in S3 is read afresh.
    s3 = lakebox.client("s3")
    bucket, _, key = e["ResultConfiguration"]["OutputLocation"][len("s3://"):].partition("/")
    s3.put_object(Bucket=bucket, Key=key, Body=b'"n","t"\n"7","seven"\n')
    page, out = rows(athena, qid)
    assert page == [["n", "t"], ["7", "seven"]] and "NextToken" not in out


def test_execution_listing_tokens_and_stop(athena):
    a = athena.start_query_execution(QueryString="SELECT 1", ResultConfiguration={"OutputLocation": RESULTS},
                                     ClientRequestToken="same-token-aaaaaaaaaaaaaaaaaaaaaaaaaaaa")["QueryExecutionId"]
    b = athena.start_query_execution(QueryString="SELECT 1", ResultConfiguration={"OutputLocation": RESULTS},
                                     ClientRequestToken="same-token-aaaaaaaaaaaaaaaaaaaaaaaaaaaa")["QueryExecutionId"]
    assert a == b
    ids = athena.list_query_executions()["QueryExecutionIds"]
    assert a in ids
    got = athena.batch_get_query_execution(QueryExecutionIds=[a, "00000000-0000-0000-0000-000000000000"])
    assert [x["QueryExecutionId"] for x in got["QueryExecutions"]] == [a]
    assert [x["QueryExecutionId"] for x in got["UnprocessedQueryExecutionIds"]] == ["00000000-0000-0000-0000-000000000000"]
    athena.stop_query_execution(QueryExecutionId=a)  # finished or not, stopping is accepted


def test_workgroup_output_location_is_used(athena):
    athena.create_work_group(Name="wq", Configuration={"ResultConfiguration": {"OutputLocation": "s3://athena-results/wq/"}})
    qid = athena.start_query_execution(QueryString="SELECT 42 AS answer", WorkGroup="wq")["QueryExecutionId"]
    deadline = time.time() + 10
    while athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]["State"] != "SUCCEEDED":
        assert time.time() < deadline
        time.sleep(0.02)
    e = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]
    assert e["ResultConfiguration"]["OutputLocation"] == f"s3://athena-results/wq/{qid}.csv" and e["WorkGroup"] == "wq"
    assert rows(athena, qid)[0] == [["answer"], ["42"]]
    assert qid in athena.list_query_executions(WorkGroup="wq")["QueryExecutionIds"]
