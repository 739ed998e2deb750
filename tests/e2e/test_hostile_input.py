"""Input built to crash the server gets an AWS error, and the server keeps serving."""

import time

import botocore.exceptions
import pytest


@pytest.fixture(scope="module")
def glue(lakebox):
    glue = lakebox.client("glue", parameter_validation=False)
    glue.create_database(DatabaseInput={"Name": "hostile"})
    glue.create_table(DatabaseName="hostile", TableInput={
        "Name": "t",
        "StorageDescriptor": {"Columns": [{"Name": "v", "Type": "string"}], "Location": "s3://b/t/"},
        "PartitionKeys": [{"Name": "year", "Type": "int"}, {"Name": "region", "Type": "string"}]})
    for year in (2023, 2024):
        glue.create_partition(DatabaseName="hostile", TableName="t", PartitionInput={
            "Values": [str(year), "eu"], "StorageDescriptor": {"Location": f"s3://b/t/year={year}/region=eu/"}})
    return glue


@pytest.mark.parametrize("expression,error", [
    # Within Glue's 2,048 characters, nesting deeper than 100 is refused by the parser.
    ("(" * 1_000 + "year = 2024" + ")" * 1_000, "InvalidInputException"),
    ("NOT " * 500 + "year = 2024", "InvalidInputException"),
    # Past them, the model's limit refuses the expression before it is parsed.
    ("(" * 10_000 + "year = 2024" + ")" * 10_000, "ValidationException"),
    ("region LIKE '" + "ab" * 200_000 + "'", "ValidationException"),
], ids=["1k-parentheses", "500-nots", "10k-parentheses", "400k-like-pattern"])
def test_glue_expressions_that_would_crash_are_refused(lakebox, glue, expression, error):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        glue.get_partitions(DatabaseName="hostile", TableName="t", Expression=expression)
    assert e.value.response["Error"]["Code"] == error
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    if error == "ValidationException":
        assert e.value.response["Error"]["Message"].endswith(
            "at 'expression' failed to satisfy constraint: Member must have length less than or equal to 2048")
    # Still serving (before the fix, the first of these aborted the process on a stack overflow).
    assert lakebox.proc.poll() is None
    assert [d["Name"] for d in glue.get_databases()["DatabaseList"]] == ["hostile"]


def test_glue_wide_or_is_answered(lakebox, glue):
    # As many terms as Glue's 2,048 characters hold (the parser takes 50,000 without recursion;
    # the unit tests in crates/lakebox-glue/src/expr.rs).
    expression = " OR ".join(["year = 1999"] * 135 + ["year = 2024"])
    assert len(expression) <= 2048
    got = glue.get_partitions(DatabaseName="hostile", TableName="t", Expression=expression)["Partitions"]
    assert [p["Values"] for p in got] == [["2024", "eu"]]
    # Nesting within the limit still filters as it should.
    nested = "(" * 50 + "year = 2023" + ")" * 50
    got = glue.get_partitions(DatabaseName="hostile", TableName="t", Expression=nested)["Partitions"]
    assert [p["Values"] for p in got] == [["2023", "eu"]]


def test_glue_column_types_nested_too_deep_are_refused(lakebox, glue):
    deep = "array<" * 10_000 + "int" + ">" * 10_000
    table = {"Name": "deep", "StorageDescriptor": {"Columns": [{"Name": "c", "Type": deep}], "Location": "s3://b/d/"}}
    with pytest.raises(botocore.exceptions.ClientError) as e:
        glue.create_table(DatabaseName="hostile", TableInput=table)
    assert e.value.response["Error"]["Code"] == "InvalidInputException"
    assert "nested more than 100 levels" in e.value.response["Error"]["Message"]
    # A type within the limit is stored and read back as given.
    ok = "array<" * 20 + "int" + ">" * 20
    table["StorageDescriptor"]["Columns"][0]["Type"] = ok
    glue.create_table(DatabaseName="hostile", TableInput=table)
    assert glue.get_table(DatabaseName="hostile", Name="deep")["Table"]["StorageDescriptor"]["Columns"][0]["Type"] == ok
    table["PartitionKeys"] = [{"Name": "p", "Type": deep}]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        glue.update_table(DatabaseName="hostile", TableInput=table)
    assert e.value.response["Error"]["Code"] == "InvalidInputException"
    assert lakebox.proc.poll() is None


def test_athena_ddl_with_a_type_nested_too_deep_fails_the_query(lakebox, glue):
    from lakebox_harness import run_query
    lakebox.client("s3").create_bucket(Bucket="hostile-results")
    athena = lakebox.client("athena")
    deep = "array<" * 10_000 + "int" + ">" * 10_000
    _, e = run_query(athena, f"CREATE EXTERNAL TABLE deep_ddl (c {deep}) LOCATION 's3://hostile-results/d/'",
                     "s3://hostile-results/out/", "hostile")
    assert e["Status"]["State"] == "FAILED"
    assert "nested more than 100 levels" in e["Status"]["StateChangeReason"]
    assert lakebox.proc.poll() is None
    _, e = run_query(athena, "SELECT 1", "s3://hostile-results/out/")
    assert e["Status"]["State"] == "SUCCEEDED"


TOO_LARGE = "line 1:1: statement is too large (stack overflow while parsing)"


@pytest.mark.parametrize("sql", [
    "SELECT " + "+".join(["1"] * 10_000),
    "SELECT " + "(" * 100_000 + "1" + ")" * 100_000,
    "SELECT 1 WHERE " + " OR ".join(["1 = 2"] * 10_000),
    " UNION ALL ".join(["SELECT 1"] * 5_000),
    "SELECT * FROM " + "(SELECT * FROM " * 2_000 + "(SELECT 1 x)" + " t)" * 2_000,
    "SELECT " + "CASE WHEN true THEN " * 3_000 + "1" + " END" * 3_000,
], ids=["10k-term-sum", "100k-parentheses", "10k-term-or", "5k-unions", "2k-subqueries", "3k-case"])
def test_athena_statements_too_deep_fail_the_query_not_the_server(lakebox, sql):
    from lakebox_harness import run_query
    lakebox.client("s3").create_bucket(Bucket="hostile-results")
    athena = lakebox.client("athena")
    # A statement that does not parse is refused by StartQueryExecution, as Athena refuses it.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        run_query(athena, sql, "s3://hostile-results/out/")
    err = e.value.response
    assert err["Error"]["Code"] == "InvalidRequestException" and err["AthenaErrorCode"] == "MALFORMED_QUERY"
    if "CASE" not in sql:  # the parser gives up on deep CASE with its own syntax error
        assert err["Error"]["Message"] == TOO_LARGE
    # Before the fix, the first of these aborted the whole process on a stack overflow.
    assert lakebox.proc.poll() is None


def test_athena_long_chains_within_the_limit_get_right_answers(lakebox):
    from lakebox_harness import run_query
    lakebox.client("s3").create_bucket(Bucket="hostile-results")
    athena = lakebox.client("athena")
    for sql, expected in [
        ("SELECT " + "+".join(["1"] * 900), "900"),
        ("SELECT count(*) FROM (SELECT 1) WHERE " + " OR ".join(["1 = 2"] * 900 + ["1 = 1"]), "1"),
        ("SELECT sum(x) FROM (" + " UNION ALL ".join(["SELECT 1 x"] * 500) + ")", "500"),
    ]:
        qid, e = run_query(athena, sql, "s3://hostile-results/out/")
        assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
        rows = athena.get_query_results(QueryExecutionId=qid)["ResultSet"]["Rows"]
        assert rows[1]["Data"][0]["VarCharValue"] == expected
    # A deep statement parsed at start and then not run (its earlier result reused) is dropped
    # off the request threads: the server answers the reuse and lives on.
    deep = "SELECT " + "+".join(["1"] * 990)
    reuse = {"ResultReuseByAgeConfiguration": {"Enabled": True, "MaxAgeInMinutes": 60}}
    _, e = run_query(athena, deep, "s3://hostile-results/r/", ResultReuseConfiguration=reuse)
    assert e["Status"]["State"] == "SUCCEEDED"
    again, _ = run_query(athena, deep, "s3://hostile-results/r/", ResultReuseConfiguration=reuse)
    e = athena.get_query_execution(QueryExecutionId=again)["QueryExecution"]
    assert e["Statistics"]["ResultReuseInformation"]["ReusedPreviousResult"] is True
    assert athena.get_query_results(QueryExecutionId=again)["ResultSet"]["Rows"][1]["Data"][0]["VarCharValue"] == "990"
    assert lakebox.proc.poll() is None


@pytest.mark.parametrize("sql", [
    "SELECT " + "CAST(" * 40 + "1 +" + " AS INT)" * 40,
    "SELECT " + "ARRAY[" * 45 + "1 1" + "]" * 45,
    "SELECT " + "CASE WHEN 1=1 THEN ARRAY[" * 20 + "1 +",
    "SELECT " + "position(" * 30 + "'a' IN 'a'" + ")" * 30,
], ids=["cast-typo", "array-typo", "unclosed-case-array", "positions"])
def test_athena_statements_that_would_parse_for_years_fail_at_once(lakebox, sql):
    # sqlparser retries a failed CAST(/ARRAY[/POSITION( form as a function call at every level:
    # 2^depth work. Before the fix, each of these held a query thread for days.
    from lakebox_harness import run_query
    lakebox.client("s3").create_bucket(Bucket="hostile-results")
    athena = lakebox.client("athena")
    started = time.monotonic()
    with pytest.raises(botocore.exceptions.ClientError) as e:
        run_query(athena, sql, "s3://hostile-results/out/")
    assert time.monotonic() - started < 10
    assert e.value.response["Error"]["Code"] == "InvalidRequestException"
    # The same nesting without the typo is a query like any other.
    fine = "SELECT cardinality(" + "ARRAY[" * 20 + "1" + "]" * 20 + ")"
    qid, e = run_query(athena, fine, "s3://hostile-results/out/")
    assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
    assert athena.get_query_results(QueryExecutionId=qid)["ResultSet"]["Rows"][1]["Data"][0]["VarCharValue"] == "1"


def test_s3_select_too_deep_is_an_s3_error(lakebox):
    s3 = lakebox.client("s3")
    s3.create_bucket(Bucket="hostile-select")
    s3.put_object(Bucket="hostile-select", Key="d.csv", Body=b"a\n1\n")
    args = dict(Bucket="hostile-select", Key="d.csv", ExpressionType="SQL",
                InputSerialization={"CSV": {"FileHeaderInfo": "USE"}}, OutputSerialization={"CSV": {}})
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.select_object_content(Expression="SELECT " + "+".join(["1"] * 10_000) + " FROM S3Object", **args)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert TOO_LARGE in e.value.response["Error"]["Message"]
    assert lakebox.proc.poll() is None
    resp = s3.select_object_content(Expression="SELECT " + "+".join(["1"] * 500) + " FROM S3Object", **args)
    records = b"".join(ev["Records"]["Payload"] for ev in resp["Payload"] if "Records" in ev)
    assert records == b"500\n"


def test_a_query_past_its_memory_limit_fails_alone(tmp_path):
    """Operators account their memory: past the per-query limit a hash join fails with Athena's
    resource error, and the server goes on answering queries that fit."""
    from lakebox_harness import Lakebox, run_query
    with Lakebox(tmp_path, env={"LAKEBOX_QUERY_MEMORY_MIB": "16"}) as lb:
        lb.client("s3").create_bucket(Bucket="mem")
        athena = lb.client("athena")
        rows = ("SELECT x * 1000 + y AS n FROM UNNEST(sequence(1, 3000)) a(x) "
                "CROSS JOIN UNNEST(sequence(0, 999)) b(y)")
        _, e = run_query(athena, f"SELECT count(*) FROM ({rows}) a JOIN ({rows}) b ON a.n = b.n", "s3://mem/out/")
        assert e["Status"]["State"] == "FAILED", e["Status"]
        assert e["Status"]["AthenaError"]["ErrorType"] == 0
        assert e["Status"]["StateChangeReason"].startswith("Query exhausted resources at this scale factor")
        qid, e = run_query(athena, f"SELECT count(*) FROM ({rows})", "s3://mem/out/")
        assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
        assert athena.get_query_results(QueryExecutionId=qid)["ResultSet"]["Rows"][1]["Data"][0]["VarCharValue"] == "3000000"
        assert lb.proc.poll() is None


def peak_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_huge_values_one_function_builds_fail_the_query_not_the_memory(tmp_path):
    """`repeat` is Trino's (an array, at most 10,000 copies and 1,000,000 bytes), and the strings
    `lpad`/`rpad` build count against the query's memory limit: neither takes gigabytes."""
    from lakebox_harness import Lakebox, run_query
    with Lakebox(tmp_path, env={"LAKEBOX_QUERY_MEMORY_MIB": "64"}) as lb:
        lb.client("s3").create_bucket(Bucket="mem")
        athena = lb.client("athena")

        def answer(sql):
            qid, e = run_query(athena, sql, "s3://mem/out/")
            assert e["Status"]["State"] == "SUCCEEDED", (sql, e["Status"])
            return athena.get_query_results(QueryExecutionId=qid)["ResultSet"]["Rows"][1]["Data"][0].get("VarCharValue")

        def failure(sql):
            _, e = run_query(athena, sql, "s3://mem/out/")
            assert e["Status"]["State"] == "FAILED", (sql, e["Status"])
            return e["Status"]

        assert answer("SELECT repeat('x', 3)") == "[x, x, x]"
        assert answer("SELECT cardinality(repeat(7, 10000))") == "10000"
        assert answer("SELECT repeat(NULL, 2)") == "[null, null]"
        assert answer("SELECT try(repeat('x', 10001)) IS NULL") == "true"
        assert answer("SELECT lpad('ab', 5, 'xy') || '|' || rpad('ab', 5, 'xy') || '|' || lpad('abc', 2, 'x')") == "xyxab|abxyx|ab"
        before = peak_rss_mib(lb.proc.pid)
        status = failure("SELECT repeat('x', 2000000000)")
        assert "count argument of repeat function must be less than or equal to 10000" in status["StateChangeReason"]
        status = failure("SELECT repeat(lpad('x', 1000, 'x'), 5000)")
        assert "result of repeat function must not take more than 1000000 bytes" in status["StateChangeReason"]
        status = failure("SELECT lpad('x', 2000000000, 'y')")
        assert status["AthenaError"]["ErrorCategory"] == 1 and status["AthenaError"]["ErrorType"] == 0
        assert status["StateChangeReason"].startswith("Query exhausted resources at this scale factor")
        status = failure("SELECT length(rpad(CAST(n AS varchar), 100000, 'y')) FROM UNNEST(sequence(1, 5000)) t(n)")
        assert status["StateChangeReason"].startswith("Query exhausted resources at this scale factor")
        # Before: 2 GB (repeat) and 2 GB (lpad) were built, and the process grew by as much.
        assert peak_rss_mib(lb.proc.pid) - before < 500
        assert answer("SELECT length(lpad('x', 1000000, 'y'))") == "1000000"
        # sequence: Trino's 10,000 entries at most, counted before anything is built.
        assert answer("SELECT cardinality(sequence(1, 10000))") == "10000"
        assert answer("SELECT cardinality(sequence(20000, 1, -2))") == "10000"
        assert answer("SELECT CAST(sequence(DATE '2024-02-28', DATE '2024-03-01') AS varchar)") is not None
        assert answer("SELECT cardinality(sequence(DATE '2024-02-28', DATE '2024-03-01'))") == "3"
        assert answer("SELECT cardinality(sequence(DATE '2000-01-01', DATE '2800-01-01', INTERVAL '1' MONTH))") == "9601"
        for sql in ["SELECT sequence(1, 10001)", "SELECT sequence(1, 2000000000)",
                    "SELECT sequence(DATE '2000-01-01', DATE '2050-01-01')",
                    "SELECT sequence(TIMESTAMP '2020-01-01 00:00:00', TIMESTAMP '2020-01-02 00:00:00', INTERVAL '1' SECOND)"]:
            status = failure(sql)
            assert "result of sequence function must not have more than 10000 entries" in status["StateChangeReason"], sql
        assert lb.proc.poll() is None


def test_a_busy_query_does_not_stall_the_server_and_stops_when_asked(tmp_path):
    """A CPU-bound query runs on the query pool: S3 and the health endpoint keep answering
    while it runs, and StopQueryExecution stops its work (the CPU falls) within a second."""
    import os
    import urllib.request
    from lakebox_harness import Lakebox
    with Lakebox(tmp_path) as lb:
        s3 = lb.client("s3")
        s3.create_bucket(Bucket="busy")
        s3.put_object(Bucket="busy", Key="k", Body=b"v")
        athena = lb.client("athena")
        busy = ("WITH s AS (SELECT x * 100 + y AS n FROM UNNEST(sequence(1, 3000)) a(x) "
                "CROSS JOIN UNNEST(sequence(0, 99)) b(y)) "
                "SELECT count(*) FROM s a CROSS JOIN s b WHERE (a.n * b.n) % 7 = 3")
        qid = athena.start_query_execution(QueryString=busy, ResultConfiguration={
            "OutputLocation": "s3://busy/out/"})["QueryExecutionId"]

        def cpu_seconds():
            fields = open(f"/proc/{lb.proc.pid}/stat").read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

        time.sleep(1.0)
        assert athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]["State"] == "RUNNING"
        slowest = 0.0
        for _ in range(20):
            started = time.monotonic()
            with urllib.request.urlopen(f"{lb.endpoint}/_lakebox/health", timeout=5) as r:
                assert r.status == 200
            assert s3.get_object(Bucket="busy", Key="k")["Body"].read() == b"v"
            slowest = max(slowest, time.monotonic() - started)
        assert slowest < 0.5, f"a health check and an S3 GET took {slowest:.3f} s while the query ran"
        before = cpu_seconds()
        time.sleep(0.5)
        assert cpu_seconds() - before > 0.3, "the query was busy"
        athena.stop_query_execution(QueryExecutionId=qid)
        assert athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]["State"] == "CANCELLED"
        time.sleep(1.0)
        before = cpu_seconds()
        time.sleep(1.0)
        assert cpu_seconds() - before < 0.2, "the cancelled query's work went on"


def test_a_cancelled_query_gives_its_memory_back(tmp_path):
    """A query holding 600 MiB or more (a DISTINCT over 10^8 rows) that is stopped frees it:
    the server's resident memory falls back within seconds."""
    from lakebox_harness import Lakebox

    def rss_mib(pid):
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        raise AssertionError("no VmRSS")

    with Lakebox(tmp_path, env={"LAKEBOX_QUERY_MEMORY_MIB": "1536"}) as lb:
        lb.client("s3").create_bucket(Bucket="mem")
        athena = lb.client("athena")
        idle = rss_mib(lb.proc.pid)
        qid = athena.start_query_execution(
            QueryString="SELECT count(DISTINCT x * 100000 + y) FROM UNNEST(sequence(1, 10000)) a(x) "
                        "CROSS JOIN UNNEST(sequence(1, 10000)) b(y)",
            ResultConfiguration={"OutputLocation": "s3://mem/out/"})["QueryExecutionId"]
        deadline = time.monotonic() + 20
        while rss_mib(lb.proc.pid) < idle + 600:
            assert time.monotonic() < deadline, "the query never held 600 MiB"
            time.sleep(0.1)
        athena.stop_query_execution(QueryExecutionId=qid)
        assert athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]["State"] == "CANCELLED"
        deadline = time.monotonic() + 10
        # glibc keeps some freed memory for reuse: most of it, not all, goes back.
        while rss_mib(lb.proc.pid) > idle + 200:
            assert time.monotonic() < deadline, f"memory stayed at {rss_mib(lb.proc.pid):.0f} MiB (idle: {idle:.0f})"
            time.sleep(0.2)


def test_an_s3_select_whose_client_went_away_stops_its_work(tmp_path):
    """A client that gives up on a CPU-bound S3 Select (a read timeout closes its connection)
    stops the query: the CPU falls within a second, as for StopQueryExecution."""
    import os
    from lakebox_harness import Lakebox
    with Lakebox(tmp_path) as lb:
        s3 = lb.client("s3")
        s3.create_bucket(Bucket="busy-select")
        s3.put_object(Bucket="busy-select", Key="n.csv",
                      Body="".join(f"{i}\n" for i in range(60_000)).encode())
        impatient = lb.client("s3", read_timeout=1)

        def cpu_seconds():
            fields = open(f"/proc/{lb.proc.pid}/stat").read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

        with pytest.raises(botocore.exceptions.ReadTimeoutError):
            impatient.select_object_content(
                Bucket="busy-select", Key="n.csv", ExpressionType="SQL",
                Expression="SELECT count(*) FROM S3Object a, S3Object b WHERE (CAST(a._1 AS INT) * CAST(b._1 AS INT)) % 7 = 3",
                InputSerialization={"CSV": {}}, OutputSerialization={"CSV": {}})
        time.sleep(1.0)
        before = cpu_seconds()
        time.sleep(1.0)
        assert cpu_seconds() - before < 0.2, "the abandoned query's work went on"
        assert lb.health()["status"] == "running"


def test_a_query_form_with_a_deeply_dotted_name_is_refused(lakebox):
    """Found by the fuzz suite: an awsQuery parameter named `a.a.a.…` (200,000 parts) overflowed
    the stack while its tree was dropped, killing the server with one request."""
    from signing import send
    body = ("Action=GetCallerIdentity&Version=2011-06-15&" + "a." * 200_000 + "b=1").encode()
    status, _, answer = send(lakebox.endpoint, "POST", "/", body, {
        "Content-Type": "application/x-www-form-urlencoded",
        "Authorization": "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/sts/aws4_request, "
                         "SignedHeaders=host, Signature=x"})
    assert status == 400 and b"<Code>MalformedInput</Code>" in answer, answer[:300]
    assert lakebox.proc.poll() is None
    assert lakebox.client("sts").get_caller_identity()["Account"] == "000000000000"
