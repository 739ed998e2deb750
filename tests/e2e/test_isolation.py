"""One account cannot reach another's buckets through the services that read and write S3 on
its behalf: Athena (tables, results, CTAS locations, UNLOAD), Firehose destinations and Glue
crawler targets get S3's AccessDenied, as S3 itself answers that caller."""

import json
import time

import botocore.exceptions
import pytest

from lakebox_harness import run_query

OWNER, OTHER = "111111111111", "222222222222"


@pytest.fixture(scope="module")
def setup(lakebox):
    owner_s3 = lakebox.client("s3", access_key=OWNER)
    owner_s3.create_bucket(Bucket="owner-private")
    owner_s3.put_object(Bucket="owner-private", Key="t/part-0.json", Body=b'{"secret": "owner-only"}\n')
    other_s3 = lakebox.client("s3", access_key=OTHER)
    other_s3.create_bucket(Bucket="other-results")
    # S3 itself refuses the other account.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        other_s3.get_object(Bucket="owner-private", Key="t/part-0.json")
    assert e.value.response["Error"]["Code"] == "AccessDenied"
    glue = lakebox.client("glue", access_key=OTHER)
    glue.create_database(DatabaseInput={"Name": "thief"})
    glue.create_table(DatabaseName="thief", TableInput={
        "Name": "stolen", "TableType": "EXTERNAL_TABLE",
        "StorageDescriptor": {
            "Columns": [{"Name": "secret", "Type": "string"}], "Location": "s3://owner-private/t/",
            "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
            "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
            "SerdeInfo": {"SerializationLibrary": "org.openx.data.jsonserde.JsonSerDe"}}})
    return lakebox


def test_athena_cannot_read_or_write_another_accounts_bucket(setup):
    lakebox = setup
    athena = lakebox.client("athena", access_key=OTHER)
    _, e = run_query(athena, "SELECT secret FROM stolen", "s3://other-results/out/", "thief")
    assert e["Status"]["State"] == "FAILED", e["Status"]
    assert "Access Denied" in e["Status"]["StateChangeReason"] or "AccessDenied" in e["Status"]["StateChangeReason"]
    # Results into the owner's bucket, CTAS and UNLOAD into it: refused, nothing written.
    _, e = run_query(athena, "SELECT 1", "s3://owner-private/out/")
    assert e["Status"]["State"] == "FAILED", e["Status"]
    _, e = run_query(athena, "CREATE TABLE grabbed WITH (external_location = 's3://owner-private/grab/', "
                             "format = 'JSON') AS SELECT 1 AS x", "s3://other-results/out/", "thief")
    assert e["Status"]["State"] == "FAILED", e["Status"]
    _, e = run_query(athena, "UNLOAD (SELECT 1 AS x) TO 's3://owner-private/unload/' WITH (format = 'JSON')",
                     "s3://other-results/out/", "thief")
    assert e["Status"]["State"] == "FAILED", e["Status"]
    owner_s3 = lakebox.client("s3", access_key=OWNER)
    keys = [o["Key"] for o in owner_s3.list_objects_v2(Bucket="owner-private").get("Contents", [])]
    assert keys == ["t/part-0.json"]
    # The owner reads its own table through the same path.
    glue = lakebox.client("glue", access_key=OWNER)
    glue.create_database(DatabaseInput={"Name": "mine"})
    table = lakebox.client("glue", access_key=OTHER).get_table(DatabaseName="thief", Name="stolen")["Table"]
    glue.create_table(DatabaseName="mine", TableInput={
        "Name": "t", "TableType": "EXTERNAL_TABLE", "StorageDescriptor": table["StorageDescriptor"]})
    owner_s3.create_bucket(Bucket="owner-results")
    qid, e = run_query(lakebox.client("athena", access_key=OWNER), "SELECT secret FROM t",
                       "s3://owner-results/out/", "mine")
    assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
    rows = lakebox.client("athena", access_key=OWNER).get_query_results(QueryExecutionId=qid)["ResultSet"]["Rows"]
    assert rows[1]["Data"][0]["VarCharValue"] == "owner-only"


def test_a_crawler_cannot_read_another_accounts_bucket(setup):
    lakebox = setup
    glue = lakebox.client("glue", access_key=OTHER)
    glue.create_crawler(Name="peek", Role="arn:aws:iam::222222222222:role/r", DatabaseName="thief",
                        Targets={"S3Targets": [{"Path": "s3://owner-private/t/"}]})
    glue.start_crawler(Name="peek")
    deadline = time.time() + 30
    while glue.get_crawler(Name="peek")["Crawler"]["State"] != "READY" or \
            "LastCrawl" not in glue.get_crawler(Name="peek")["Crawler"]:
        assert time.time() < deadline
        time.sleep(0.2)
    last = glue.get_crawler(Name="peek")["Crawler"]["LastCrawl"]
    assert last["Status"] == "FAILED", last
    names = [t["Name"] for t in glue.get_tables(DatabaseName="thief")["TableList"]]
    assert names == ["stolen"]  # nothing learned from the owner's data


def test_firehose_cannot_deliver_into_another_accounts_bucket(setup):
    lakebox = setup
    fh = lakebox.client("firehose", access_key=OTHER)
    fh.create_delivery_stream(DeliveryStreamName="sneak", ExtendedS3DestinationConfiguration={
        "RoleARN": "arn:aws:iam::222222222222:role/r", "BucketARN": "arn:aws:s3:::owner-private",
        "Prefix": "sneak/", "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0}})
    fh.put_record(DeliveryStreamName="sneak", Record={"Data": json.dumps({"x": 1}).encode()})
    # The same account's stream into its own bucket delivers meanwhile (the wait is long enough).
    fh.create_delivery_stream(DeliveryStreamName="own", ExtendedS3DestinationConfiguration={
        "RoleARN": "arn:aws:iam::222222222222:role/r", "BucketARN": "arn:aws:s3:::other-results",
        "Prefix": "own/", "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0}})
    fh.put_record(DeliveryStreamName="own", Record={"Data": json.dumps({"x": 1}).encode()})
    other_s3 = lakebox.client("s3", access_key=OTHER)
    deadline = time.time() + 10
    while not other_s3.list_objects_v2(Bucket="other-results", Prefix="own/").get("Contents"):
        assert time.time() < deadline
        time.sleep(0.1)
    time.sleep(0.5)
    owner_s3 = lakebox.client("s3", access_key=OWNER)
    keys = [o["Key"] for o in owner_s3.list_objects_v2(Bucket="owner-private").get("Contents", [])]
    assert not any(k.startswith("sneak/") for k in keys), keys
    assert lakebox.proc.poll() is None
