"""S3 server access logging: PutBucketLogging checked as S3 checks it, one record per request in
S3's documented format delivered to the target bucket and prefix, and read back through the
Athena table AWS documents for access logs."""

import re
import time

import botocore.exceptions
import pytest

from lakebox_harness import Lakebox, run_query

# The table the Amazon S3 user guide gives for querying access logs with Athena.
ACCESS_LOG_DDL = r"""CREATE EXTERNAL TABLE logs.site_access (
  bucketowner string, bucket_name string, requestdatetime string, remoteip string, requester string,
  requestid string, operation string, key string, request_uri string, httpstatus string,
  errorcode string, bytessent bigint, objectsize bigint, totaltime string, turnaroundtime string,
  referrer string, useragent string, versionid string, hostid string, sigv string,
  ciphersuite string, authtype string, endpoint string, tlsversion string)
ROW FORMAT SERDE 'org.apache.hadoop.hive.serde2.RegexSerDe'
WITH SERDEPROPERTIES (
  'input.regex'='([^ ]*) ([^ ]*) \\[(.*?)\\] ([^ ]*) ([^ ]*) ([^ ]*) ([^ ]*) ([^ ]*) (\"[^\"]*\"|-) (-|[0-9]*) ([^ ]*) ([^ ]*) ([^ ]*) ([^ ]*) ([^ ]*) ([^ ]*) (\"[^\"]*\"|-) ([^ ]*)(?: ([^ ]*) ([^ ]*) ([^ ]*) ([^ ]*) ([^ ]*) ([^ ]*))?.*$')
STORED AS INPUTFORMAT 'org.apache.hadoop.mapred.TextInputFormat'
OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'
LOCATION 's3://site-logs/access/'"""

# The same pattern, as Python reads it, to check each record's fields.
RECORD = re.compile(r'([^ ]*) ([^ ]*) \[(.*?)\] ([^ ]*) ([^ ]*) ([^ ]*) ([^ ]*) ([^ ]*) ("[^"]*"|-) (-|[0-9]*) ([^ ]*) '
                    r'([^ ]*) ([^ ]*) ([^ ]*) ([^ ]*) ("[^"]*"|-) ("[^"]*"|-) ([^ ]*) ([^ ]*) ([^ ]*) ([^ ]*) ([^ ]*) '
                    r'([^ ]*) ([^ ]*) ([^ ]*) ([^ ]*) ([^ ]*)$')


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    with Lakebox(tmp_path_factory.mktemp("access-logs"), "--s3-log-delivery-seconds", "0.3") as lb:
        yield lb


def delivered(s3, at_least, timeout=15):
    deadline = time.monotonic() + timeout
    while True:
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="site-logs", Prefix="access/").get("Contents", [])]
        lines = [l for k in keys for l in s3.get_object(Bucket="site-logs", Key=k)["Body"].read().decode().splitlines()]
        if len(lines) >= at_least or time.monotonic() > deadline:
            return keys, lines
        time.sleep(0.2)


def test_requests_are_logged_in_s3s_format_and_athena_reads_them(logged):
    s3 = logged.client("s3")
    s3.create_bucket(Bucket="site")
    s3.create_bucket(Bucket="site-logs")
    s3.put_bucket_logging(Bucket="site", BucketLoggingStatus={
        "LoggingEnabled": {"TargetBucket": "site-logs", "TargetPrefix": "access/"}})
    assert s3.get_bucket_logging(Bucket="site")["LoggingEnabled"] == {"TargetBucket": "site-logs", "TargetPrefix": "access/"}
    s3.put_object(Bucket="site", Key="index.html", Body=b"<h1>hello</h1>")
    assert s3.get_object(Bucket="site", Key="index.html")["Body"].read() == b"<h1>hello</h1>"
    with pytest.raises(botocore.exceptions.ClientError):
        s3.get_object(Bucket="site", Key="missing.html")
    s3.head_object(Bucket="site", Key="index.html")
    s3.list_objects_v2(Bucket="site")
    # The target bucket's own requests are not logged (it does not log), nor is the delivery.
    keys, lines = delivered(s3, 5)
    assert all(re.fullmatch(r"access/\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d-[0-9A-F]{16}", k) for k in keys), keys
    records = [RECORD.match(l) for l in lines]
    assert all(records), lines
    by_op = {}
    for r in records:
        by_op.setdefault((r[7], r[8]), []).append(r)
    put = by_op[("REST.PUT.OBJECT", "index.html")][0]
    get = by_op[("REST.GET.OBJECT", "index.html")][0]
    missing = by_op[("REST.GET.OBJECT", "missing.html")][0]
    assert ("REST.HEAD.OBJECT", "index.html") in by_op and ("REST.GET.BUCKET", "-") in by_op
    assert put[2] == "site" and put[4] == "127.0.0.1" and put[10] == "200" and put[13] == "14"
    assert re.fullmatch(r"\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000", put[3])
    assert put[9].startswith('"PUT /site/index.html') and put[9].endswith(' HTTP/1.1"')
    assert (get[10], get[11], get[12], get[13]) == ("200", "-", "14", "14")
    assert (missing[10], missing[11]) == ("404", "NoSuchKey")
    assert put[1] == put[5] and re.fullmatch(r"[0-9a-f]{64}", put[1])  # owner and requester: the same account
    assert (put[20], put[22]) == ("SigV4", "AuthHeader") and "Botocore" in put[17]

    ok = lambda sql: run_query(logged.client("athena"), sql, "s3://site-logs/athena/")[1]["Status"]["State"]
    assert ok("CREATE DATABASE logs") == "SUCCEEDED"
    assert ok(ACCESS_LOG_DDL) == "SUCCEEDED"
    athena = logged.client("athena")
    qid, e = run_query(athena, """SELECT operation, key, httpstatus, errorcode, bytessent FROM logs.site_access
                                  WHERE bucket_name = 'site' AND operation LIKE 'REST.%.OBJECT'
                                  ORDER BY operation, key""", "s3://site-logs/athena/")
    assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
    rows = [[c.get("VarCharValue") for c in r["Data"]] for r in athena.get_query_results(QueryExecutionId=qid)["ResultSet"]["Rows"][1:]]
    assert rows == [
        ["REST.GET.OBJECT", "index.html", "200", "-", "14"],
        ["REST.GET.OBJECT", "missing.html", "404", "NoSuchKey", None],
        ["REST.HEAD.OBJECT", "index.html", "200", "-", None],
        ["REST.PUT.OBJECT", "index.html", "200", "-", None],
    ]


def test_logging_target_must_be_an_existing_bucket_of_the_owner(logged):
    s3 = logged.client("s3")
    s3.create_bucket(Bucket="source-bucket")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.put_bucket_logging(Bucket="source-bucket", BucketLoggingStatus={
            "LoggingEnabled": {"TargetBucket": "no-such-target", "TargetPrefix": "x/"}})
    err = e.value.response["Error"]
    assert (err["Code"], err["Message"]) == ("InvalidTargetBucketForLogging", "The target bucket for logging does not exist")
    other = logged.client("s3", access_key="222222222222")
    other.create_bucket(Bucket="someone-elses")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.put_bucket_logging(Bucket="source-bucket", BucketLoggingStatus={
            "LoggingEnabled": {"TargetBucket": "someone-elses", "TargetPrefix": "x/"}})
    assert e.value.response["Error"]["Code"] == "InvalidTargetBucketForLogging"
    # Turning logging off is always accepted.
    s3.put_bucket_logging(Bucket="source-bucket", BucketLoggingStatus={})
    assert "LoggingEnabled" not in s3.get_bucket_logging(Bucket="source-bucket")
