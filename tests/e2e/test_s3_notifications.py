"""S3 event notifications delivered to SQS, judged by boto3: the s3:TestEvent on configuration,
AWS's event JSON for puts, copies, multipart uploads and deletes, prefix and suffix filters,
keys URL-encoded as S3 encodes them, and at-least-once delivery across SIGKILL (the outbox is
written before the write is answered)."""

import hashlib
import json
import time

from lakebox_harness import Lakebox, run_query


def queue(sqs, name):
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def drain(sqs, url, want, timeout=15):
    """Bodies (parsed) of messages on the queue until `want` arrived or time ran out."""
    got, deadline = [], time.time() + timeout
    while len(got) < want and time.time() < deadline:
        for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            got.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return got


def configure(s3, bucket, arn):
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"QueueConfigurations": [
        {"Id": "csv-in", "QueueArn": arn, "Events": ["s3:ObjectCreated:*"],
         "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "in/"}, {"Name": "suffix", "Value": ".csv"}]}}},
        {"Id": "removed", "QueueArn": arn, "Events": ["s3:ObjectRemoved:*"]},
    ]})


def test_object_events_arrive_on_the_queue_in_awss_shape(lakebox):
    s3, sqs = lakebox.client("s3"), lakebox.client("sqs")
    url, arn = queue(sqs, "s3-events")
    s3.create_bucket(Bucket="landing")
    configure(s3, "landing", arn)
    test = drain(sqs, url, 1)
    assert [(t["Service"], t["Event"], t["Bucket"]) for t in test] == [("Amazon S3", "s3:TestEvent", "landing")]

    key = "in/dt=2024-01-01/a b.csv"
    s3.put_object(Bucket="landing", Key=key, Body=b"x,y\n")
    s3.put_object(Bucket="landing", Key="in/skip.json", Body=b"{}")       # suffix does not match
    s3.put_object(Bucket="landing", Key="out/skip.csv", Body=b"x")        # prefix does not match
    s3.copy_object(Bucket="landing", Key="in/copy.csv", CopySource={"Bucket": "landing", "Key": key})
    mpu = s3.create_multipart_upload(Bucket="landing", Key="in/big.csv")
    part = s3.upload_part(Bucket="landing", Key="in/big.csv", UploadId=mpu["UploadId"], PartNumber=1, Body=b"1,2\n")
    s3.complete_multipart_upload(Bucket="landing", Key="in/big.csv", UploadId=mpu["UploadId"],
                                 MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]})
    s3.delete_object(Bucket="landing", Key="in/copy.csv")

    events = [r for body in drain(sqs, url, 4) for r in body["Records"]]
    names = sorted((r["eventName"], r["s3"]["object"]["key"]) for r in events)
    assert names == [
        ("ObjectCreated:CompleteMultipartUpload", "in/big.csv"),
        ("ObjectCreated:Copy", "in/copy.csv"),
        ("ObjectCreated:Put", "in/dt%3D2024-01-01/a+b.csv"),
        ("ObjectRemoved:Delete", "in/copy.csv"),
    ]
    put = next(r for r in events if r["eventName"] == "ObjectCreated:Put")
    assert (put["eventVersion"], put["eventSource"], put["awsRegion"]) == ("2.1", "aws:s3", "us-east-1")
    assert put["s3"]["configurationId"] == "csv-in"
    assert put["s3"]["bucket"]["name"] == "landing" and put["s3"]["bucket"]["arn"] == "arn:aws:s3:::landing"
    assert put["s3"]["object"]["size"] == 4
    assert put["s3"]["object"]["eTag"] == hashlib.md5(b"x,y\n").hexdigest()
    assert len(put["s3"]["object"]["sequencer"]) == 16
    assert put["requestParameters"]["sourceIPAddress"] == "127.0.0.1"
    assert put["eventTime"].endswith("Z")
    removed = next(r for r in events if r["eventName"] == "ObjectRemoved:Delete")
    assert removed["s3"]["configurationId"] == "removed" and "size" not in removed["s3"]["object"]
    assert drain(sqs, url, 1, timeout=2) == []


def test_versioned_deletes_report_the_delete_marker(lakebox):
    s3, sqs = lakebox.client("s3"), lakebox.client("sqs")
    url, arn = queue(sqs, "s3-versioned-events")
    s3.create_bucket(Bucket="versioned-events")
    s3.put_bucket_versioning(Bucket="versioned-events", VersioningConfiguration={"Status": "Enabled"})
    configure(s3, "versioned-events", arn)
    drain(sqs, url, 1)
    put = s3.put_object(Bucket="versioned-events", Key="in/a.csv", Body=b"1")
    marker = s3.delete_object(Bucket="versioned-events", Key="in/a.csv")
    events = [r for body in drain(sqs, url, 2) for r in body["Records"]]
    by_name = {r["eventName"]: r["s3"]["object"] for r in events}
    assert by_name["ObjectCreated:Put"]["versionId"] == put["VersionId"]
    assert by_name["ObjectRemoved:DeleteMarkerCreated"]["versionId"] == marker["VersionId"]


def test_writes_by_other_services_notify_too(lakebox):
    """Athena's results land in S3 through the lake's object API: they raise events as any
    write does (so do Firehose's deliveries, which use the same API)."""
    s3, sqs, athena = lakebox.client("s3"), lakebox.client("sqs"), lakebox.client("athena")
    url, arn = queue(sqs, "s3-results-events")
    s3.create_bucket(Bucket="query-results")
    s3.put_bucket_notification_configuration(Bucket="query-results", NotificationConfiguration={"QueueConfigurations": [
        {"QueueArn": arn, "Events": ["s3:ObjectCreated:*"],
         "Filter": {"Key": {"FilterRules": [{"Name": "suffix", "Value": ".csv"}]}}}]})
    drain(sqs, url, 1)
    qid, done = run_query(athena, "SELECT 1 AS one", "s3://query-results/athena/")
    assert done["Status"]["State"] == "SUCCEEDED"
    events = [r for body in drain(sqs, url, 1) for r in body["Records"]]
    assert [(r["eventName"], r["s3"]["object"]["key"]) for r in events] == [("ObjectCreated:Put", f"athena/{qid}.csv")]


def test_lifecycle_expirations_raise_their_events(tmp_path):
    with Lakebox(tmp_path, "--s3-day-seconds", "1") as lb:
        s3, sqs = lb.client("s3"), lb.client("sqs")
        url, arn = queue(sqs, "s3-expirations")
        s3.create_bucket(Bucket="expiring")
        s3.put_bucket_notification_configuration(Bucket="expiring", NotificationConfiguration={"QueueConfigurations": [
            {"QueueArn": arn, "Events": ["s3:LifecycleExpiration:*"]}]})
        drain(sqs, url, 1)
        s3.put_bucket_lifecycle_configuration(Bucket="expiring", LifecycleConfiguration={"Rules": [
            {"ID": "tmp", "Status": "Enabled", "Filter": {"Prefix": "tmp/"}, "Expiration": {"Days": 1}}]})
        s3.put_object(Bucket="expiring", Key="tmp/old.csv", Body=b"x")
        s3.put_object(Bucket="expiring", Key="keep.csv", Body=b"x")
        events = [r for body in drain(sqs, url, 1, timeout=30) for r in body["Records"]]
        assert [(r["eventName"], r["s3"]["object"]["key"], r["userIdentity"]["principalId"]) for r in events] == \
            [("LifecycleExpiration:Delete", "tmp/old.csv", "s3.amazonaws.com")]
        assert events[0]["awsRegion"] == "us-east-1"


def test_a_destination_that_does_not_exist_is_refused(lakebox):
    s3 = lakebox.client("s3")
    s3.create_bucket(Bucket="no-destination")
    try:
        configure(s3, "no-destination", "arn:aws:sqs:us-east-1:000000000000:missing")
        raise AssertionError("accepted a missing queue")
    except s3.exceptions.ClientError as e:
        assert e.response["Error"]["Code"] == "InvalidArgument"
    assert "QueueConfigurations" not in s3.get_bucket_notification_configuration(Bucket="no-destination")


def test_every_acknowledged_write_is_notified_across_sigkill(tmp_path):
    keys = [f"in/file-{i:03}.csv" for i in range(40)]
    with Lakebox(tmp_path) as lb:
        s3, sqs = lb.client("s3"), lb.client("sqs")
        url, arn = queue(sqs, "s3-crash-events")
        s3.create_bucket(Bucket="crashy")
        configure(s3, "crashy", arn)
        for k in keys:
            s3.put_object(Bucket="crashy", Key=k, Body=b"a,b\n")
        lb.kill()
    with Lakebox(tmp_path) as lb:
        sqs = lb.client("sqs")
        got = drain(sqs, url, len(keys) + 1, timeout=20)
        seen = {r["s3"]["object"]["key"] for body in got for r in body.get("Records", [])}
        assert seen == set(keys), sorted(set(keys) - seen)
