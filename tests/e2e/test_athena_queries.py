"""Athena queries run by DataFusion over Lakebox S3, on tables Glue crawlers wrote (read as
written, no edits), with expected results computed here from the generated data."""

import io
import json
import time

import botocore.exceptions
import pyarrow as pa
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


def test_failures_nulls_parameters_and_paging(athena):
    qid, e = run(athena, "SELEC 1")
    assert e["Status"]["State"] == "FAILED"
    assert e["Status"]["AthenaError"]["ErrorCategory"] == 2 and "SYNTAX_ERROR" in e["Status"]["StateChangeReason"]
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
