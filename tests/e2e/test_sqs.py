"""SQS, judged by boto3 (awsJson 1.0), the AWS CLI and raw awsQuery forms as older SDKs send
them: queues, messages with AWS's checksums, visibility, delays, long polling woken by the
send, batches, purge, dead-letter redrive, retention, and durability across SIGKILL."""

import hashlib
import json
import struct
import threading
import time
import xml.etree.ElementTree as ET
from urllib.parse import urlencode

import botocore.exceptions
import pytest

from lakebox_harness import Lakebox
from signing import send, signed_request

NS = "{http://queue.amazonaws.com/doc/2012-11-05/}"


@pytest.fixture(scope="module")
def sqs(lakebox):
    return lakebox.client("sqs")


def advance(lakebox, ms):
    assert send(lakebox.endpoint, "POST", f"/_lakebox/test/clock?advance_ms={ms}")[0] == 200


def new_queue(sqs, name, **attrs):
    return sqs.create_queue(QueueName=name, Attributes={k: str(v) for k, v in attrs.items()})["QueueUrl"]


def md5_of_attributes(attrs):
    """AWS's MD5OfMessageAttributes, computed independently of the server."""
    buf = b""
    for name in sorted(attrs):
        v = attrs[name]
        enc = lambda b: struct.pack(">I", len(b)) + b  # noqa: E731
        buf += enc(name.encode()) + enc(v["DataType"].encode())
        if "StringValue" in v:
            buf += b"\x01" + enc(v["StringValue"].encode())
        else:
            buf += b"\x02" + enc(v["BinaryValue"])
    return hashlib.md5(buf).hexdigest()


def error_code(exc):
    return exc.value.response["Error"]["Code"]


# ---- queues -------------------------------------------------------------------------------

def test_queue_lifecycle_urls_attributes_and_tags(sqs, lakebox):
    url = sqs.create_queue(QueueName="orders", Attributes={"VisibilityTimeout": "45"},
                           tags={"team": "data"})["QueueUrl"]
    assert url == f"{lakebox.endpoint}/000000000000/orders"
    # Same name, same attributes: the same queue. A different value: QueueAlreadyExists.
    assert sqs.create_queue(QueueName="orders", Attributes={"VisibilityTimeout": "45"})["QueueUrl"] == url
    assert sqs.create_queue(QueueName="orders")["QueueUrl"] == url
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sqs.create_queue(QueueName="orders", Attributes={"VisibilityTimeout": "46"})
    assert error_code(e) == "QueueAlreadyExists"
    assert sqs.get_queue_url(QueueName="orders")["QueueUrl"] == url

    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["VisibilityTimeout"] == "45"
    assert attrs["DelaySeconds"] == "0"
    assert attrs["MaximumMessageSize"] == "1048576"
    assert attrs["MessageRetentionPeriod"] == "345600"
    assert attrs["ReceiveMessageWaitTimeSeconds"] == "0"
    assert attrs["QueueArn"] == "arn:aws:sqs:us-east-1:000000000000:orders"
    assert attrs["ApproximateNumberOfMessages"] == "0"
    assert attrs["SqsManagedSseEnabled"] == "true"
    assert int(attrs["CreatedTimestamp"]) > 1_600_000_000

    sqs.set_queue_attributes(QueueUrl=url, Attributes={"DelaySeconds": "2", "MessageRetentionPeriod": "600"})
    got = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["DelaySeconds", "MessageRetentionPeriod"])
    assert got["Attributes"] == {"DelaySeconds": "2", "MessageRetentionPeriod": "600"}

    sqs.tag_queue(QueueUrl=url, Tags={"env": "test"})
    sqs.untag_queue(QueueUrl=url, TagKeys=["team"])
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"env": "test"}

    new_queue(sqs, "orders-archive")
    new_queue(sqs, "payments")
    listed = sqs.list_queues(QueueNamePrefix="orders")["QueueUrls"]
    assert listed == [url, f"{lakebox.endpoint}/000000000000/orders-archive"]
    page = sqs.list_queues(MaxResults=1)
    assert len(page["QueueUrls"]) == 1 and "NextToken" in page
    rest = sqs.list_queues(MaxResults=10, NextToken=page["NextToken"])["QueueUrls"]
    assert page["QueueUrls"][0] not in rest and len(rest) >= 2

    sqs.delete_queue(QueueUrl=url)
    with pytest.raises(sqs.exceptions.QueueDoesNotExist) as e:
        sqs.get_queue_url(QueueName="orders")
    assert error_code(e) == "AWS.SimpleQueueService.NonExistentQueue"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sqs.create_queue(QueueName="orders")
    assert error_code(e) == "AWS.SimpleQueueService.QueueDeletedRecently"
    advance(lakebox, 61_000)
    assert sqs.create_queue(QueueName="orders")["QueueUrl"] == url


def test_queue_names_and_attributes_are_checked_as_aws_checks_them(sqs):
    for name, code in [("bad name", "InvalidParameterValue"), ("x" * 81, "InvalidParameterValue")]:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            sqs.create_queue(QueueName=name)
        assert error_code(e) == code
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sqs.create_queue(QueueName="q-attr", Attributes={"VisibilityTimeout": "43201"})
    assert error_code(e) == "InvalidAttributeValue"
    assert e.value.response["Error"]["Message"] == "Invalid value for the parameter VisibilityTimeout."
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sqs.create_queue(QueueName="q-attr", Attributes={"QueueArn": "x"})
    assert error_code(e) == "InvalidAttributeName"
    url = new_queue(sqs, "q-attr")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Bogus"])
    assert error_code(e) == "InvalidAttributeName"
    assert e.value.response["Error"]["Message"] == "Unknown Attribute Bogus."
    # FIFO names and the FifoQueue attribute go together.
    for name, attrs in [("q.fifo", {}), ("q", {"FifoQueue": "true"})]:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            sqs.create_queue(QueueName=name, Attributes=attrs)
        assert error_code(e) == "InvalidParameterValue"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sqs.create_queue(QueueName="q-std", Attributes={"ContentBasedDeduplication": "true"})
    assert error_code(e) == "InvalidAttributeName"


def test_json_errors_carry_the_query_code_header(lakebox):
    body = json.dumps({"QueueUrl": f"{lakebox.endpoint}/000000000000/nope"}).encode()
    status, headers, raw = signed_request(lakebox.endpoint, body=body, service="sqs", headers={
        "X-Amz-Target": "AmazonSQS.GetQueueAttributes", "Content-Type": "application/x-amz-json-1.0"})
    assert status == 400
    assert headers["x-amzn-query-error"] == "AWS.SimpleQueueService.NonExistentQueue;Sender"
    assert json.loads(raw)["__type"] == "com.amazonaws.sqs#QueueDoesNotExist"
    status, headers, raw = signed_request(lakebox.endpoint, body=b"{}", service="sqs", headers={
        "X-Amz-Target": "AmazonSQS.SendMessage", "Content-Type": "application/x-amz-json-1.0"})
    assert status == 400
    assert headers["x-amzn-query-error"] == "MissingParameter;Sender"
    assert json.loads(raw)["message"] == "The request must contain the parameter QueueUrl."


# ---- messages -----------------------------------------------------------------------------

def test_send_receive_delete_with_attributes_and_checksums(sqs):
    url = new_queue(sqs, "msgs")
    attrs = {"kind": {"DataType": "String", "StringValue": "order"},
             "amount": {"DataType": "Number", "StringValue": "12.50"},
             "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01\xff"}}
    sent = sqs.send_message(QueueUrl=url, MessageBody="héllo {\"id\": 1}", MessageAttributes=attrs,
                            MessageSystemAttributes={"AWSTraceHeader": {"DataType": "String", "StringValue": "Root=1-a"}})
    assert sent["MD5OfMessageBody"] == hashlib.md5("héllo {\"id\": 1}".encode()).hexdigest()
    assert sent["MD5OfMessageAttributes"] == md5_of_attributes(attrs)
    assert "MD5OfMessageSystemAttributes" in sent
    got = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"], AttributeNames=["All"])["Messages"]
    assert len(got) == 1
    m = got[0]
    assert m["MessageId"] == sent["MessageId"]
    assert m["Body"] == "héllo {\"id\": 1}"
    assert m["MD5OfBody"] == sent["MD5OfMessageBody"]
    assert m["MessageAttributes"]["amount"] == {"DataType": "Number", "StringValue": "12.50"}
    assert m["MessageAttributes"]["blob"]["BinaryValue"] == b"\x00\x01\xff"
    assert m["MD5OfMessageAttributes"] == md5_of_attributes(attrs)
    assert m["Attributes"]["ApproximateReceiveCount"] == "1"
    assert m["Attributes"]["AWSTraceHeader"] == "Root=1-a"
    assert abs(int(m["Attributes"]["SentTimestamp"]) - time.time() * 1000) < 600_000
    # In flight: nothing else to receive.
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (counts["ApproximateNumberOfMessages"], counts["ApproximateNumberOfMessagesNotVisible"]) == ("0", "1")
    sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert counts["ApproximateNumberOfMessagesNotVisible"] == "0"
    # Only named attributes come back.
    sqs.send_message(QueueUrl=url, MessageBody="b", MessageAttributes=attrs)
    m = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["kind"])["Messages"][0]
    assert list(m["MessageAttributes"]) == ["kind"]
    assert m["MD5OfMessageAttributes"] == md5_of_attributes({"kind": attrs["kind"]})


def test_message_checks(sqs):
    url = new_queue(sqs, "checks", MaximumMessageSize=1024)
    cases = [
        (dict(MessageBody="x" * 1025), "InvalidParameterValue",
         "One or more parameters are invalid. Reason: Message must be shorter than 1024 bytes."),
        (dict(MessageBody="a\x01b"), "InvalidMessageContents", None),
        (dict(MessageBody="ok", DelaySeconds=901), "InvalidParameterValue",
         "Value 901 for parameter DelaySeconds is invalid. Reason: DelaySeconds must be >= 0 and <= 900."),
        (dict(MessageBody="ok", MessageAttributes={"n": {"DataType": "Number", "StringValue": "abc"}}),
         "InvalidParameterValue", None),
        (dict(MessageBody="ok", MessageAttributes={"AWS.x": {"DataType": "String", "StringValue": "v"}}),
         "InvalidParameterValue", None),
    ]
    for kwargs, code, message in cases:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            sqs.send_message(QueueUrl=url, **kwargs)
        assert error_code(e) == code, kwargs
        if message:
            assert e.value.response["Error"]["Message"] == message
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=11)
    assert e.value.response["Error"]["Message"] == \
        "Value 11 for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided."
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sqs.delete_message(QueueUrl=url, ReceiptHandle="garbage")
    assert error_code(e) == "ReceiptHandleIsInvalid"


def test_visibility_timeout_reappears_and_only_the_latest_receipt_acts(sqs, lakebox):
    url = new_queue(sqs, "vis", VisibilityTimeout=30)
    sqs.send_message(QueueUrl=url, MessageBody="m")
    first = sqs.receive_message(QueueUrl=url)["Messages"][0]
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    advance(lakebox, 31_000)
    second = sqs.receive_message(QueueUrl=url, AttributeNames=["ApproximateReceiveCount"])["Messages"][0]
    assert second["MessageId"] == first["MessageId"]
    assert second["Attributes"]["ApproximateReceiveCount"] == "2"
    assert second["ReceiptHandle"] != first["ReceiptHandle"]
    # The stale handle succeeds without deleting (AWS documents this).
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"], VisibilityTimeout=5)
    assert error_code(e) == "AWS.SimpleQueueService.MessageNotInflight"
    # Made visible at once by ChangeMessageVisibility(0).
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=second["ReceiptHandle"], VisibilityTimeout=0)
    third = sqs.receive_message(QueueUrl=url, VisibilityTimeout=100)["Messages"][0]
    assert third["MessageId"] == first["MessageId"]
    advance(lakebox, 31_000)
    assert "Messages" not in sqs.receive_message(QueueUrl=url), "the receive's own VisibilityTimeout holds"
    sqs.delete_message(QueueUrl=url, ReceiptHandle=third["ReceiptHandle"])
    advance(lakebox, 100_000)
    assert "Messages" not in sqs.receive_message(QueueUrl=url)


def test_delays_per_queue_and_per_message(sqs, lakebox):
    url = new_queue(sqs, "delayed", DelaySeconds=10)
    sqs.send_message(QueueUrl=url, MessageBody="queue-delay")
    sqs.send_message(QueueUrl=url, MessageBody="no-delay", DelaySeconds=0)
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in got] == ["no-delay"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesDelayed"])
    assert attrs["Attributes"]["ApproximateNumberOfMessagesDelayed"] == "1"
    advance(lakebox, 10_000)
    assert [m["Body"] for m in sqs.receive_message(QueueUrl=url)["Messages"]] == ["queue-delay"]


def test_long_poll_answers_the_moment_a_message_arrives(sqs, lakebox):
    url = new_queue(sqs, "longpoll")
    other = lakebox.client("sqs")
    result = {}

    def poll():
        t0 = time.monotonic()
        result["resp"] = other.receive_message(QueueUrl=url, WaitTimeSeconds=10)
        result["took"] = time.monotonic() - t0

    t = threading.Thread(target=poll)
    t.start()
    time.sleep(0.5)
    sqs.send_message(QueueUrl=url, MessageBody="wake")
    t.join(15)
    assert result["resp"]["Messages"][0]["Body"] == "wake"
    assert 0.4 < result["took"] < 2.0, result["took"]
    # With nothing to receive, it waits the full time.
    t0 = time.monotonic()
    assert "Messages" not in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2)
    assert 1.9 < time.monotonic() - t0 < 4.0
    # The queue's ReceiveMessageWaitTimeSeconds is the default wait.
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"ReceiveMessageWaitTimeSeconds": "1"})
    t0 = time.monotonic()
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    assert 0.9 < time.monotonic() - t0 < 3.0


def test_batches_and_their_errors(sqs):
    url = new_queue(sqs, "batches")
    entries = [{"Id": f"m{i}", "MessageBody": f"body-{i}"} for i in range(10)]
    entries[3]["DelaySeconds"] = 1000  # fails alone
    resp = sqs.send_message_batch(QueueUrl=url, Entries=entries)
    assert sorted(s["Id"] for s in resp["Successful"]) == sorted(f"m{i}" for i in range(10) if i != 3)
    assert [(f["Id"], f["Code"], f["SenderFault"]) for f in resp["Failed"]] == [("m3", "InvalidParameterValue", True)]
    for s in resp["Successful"]:
        assert s["MD5OfMessageBody"] == hashlib.md5(f"body-{s['Id'][1:]}".encode()).hexdigest()
    bodies = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            break
        bodies += [m["Body"] for m in got]
        d = sqs.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": f"d{i}", "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)] +
            [{"Id": "bad", "ReceiptHandle": "not-a-handle"}])
        assert len(d["Successful"]) == len(got)
        assert d["Failed"][0]["Code"] == "ReceiptHandleIsInvalid"
    assert sorted(bodies) == sorted(f"body-{i}" for i in range(10) if i != 3)
    for bad, code in [
        ([], "AWS.SimpleQueueService.EmptyBatchRequest"),
        ([{"Id": f"x{i}", "MessageBody": "b"} for i in range(11)], "AWS.SimpleQueueService.TooManyEntriesInBatchRequest"),
        ([{"Id": "a", "MessageBody": "b"}, {"Id": "a", "MessageBody": "c"}], "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"),
        ([{"Id": "a.b", "MessageBody": "b"}], "AWS.SimpleQueueService.InvalidBatchEntryId"),
        ([{"Id": f"big{i}", "MessageBody": "x" * 200_000} for i in range(6)], "AWS.SimpleQueueService.BatchRequestTooLong"),
    ]:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            sqs.send_message_batch(QueueUrl=url, Entries=bad)
        assert error_code(e) == code
    sqs.send_message(QueueUrl=url, MessageBody="v")
    m = sqs.receive_message(QueueUrl=url)["Messages"][0]
    r = sqs.change_message_visibility_batch(QueueUrl=url, Entries=[
        {"Id": "ok", "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}])
    assert [s["Id"] for s in r["Successful"]] == ["ok"]
    assert sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"] == "v"


def test_purge_and_its_sixty_seconds(sqs, lakebox):
    url = new_queue(sqs, "purged")
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": "x"} for i in range(5)])
    sqs.purge_queue(QueueUrl=url)
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    with pytest.raises(sqs.exceptions.PurgeQueueInProgress):
        sqs.purge_queue(QueueUrl=url)
    sqs.send_message(QueueUrl=url, MessageBody="after")
    assert sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"] == "after"
    advance(lakebox, 61_000)
    sqs.purge_queue(QueueUrl=url)


def test_dead_letter_redrive_after_max_receives(sqs):
    dlq = new_queue(sqs, "orders-dlq")
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    src = new_queue(sqs, "orders-src", RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"}))
    policy = json.loads(sqs.get_queue_attributes(QueueUrl=src, AttributeNames=["RedrivePolicy"])["Attributes"]["RedrivePolicy"])
    assert policy == {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2}
    sent = sqs.send_message(QueueUrl=src, MessageBody="poison")
    for _ in range(2):
        assert sqs.receive_message(QueueUrl=src, VisibilityTimeout=0)["Messages"][0]["Body"] == "poison"
    # The third receive finds it moved.
    assert "Messages" not in sqs.receive_message(QueueUrl=src)
    m = sqs.receive_message(QueueUrl=dlq, AttributeNames=["All"])["Messages"][0]
    assert m["MessageId"] == sent["MessageId"] and m["Body"] == "poison"
    assert m["Attributes"]["DeadLetterQueueSourceArn"].endswith(":orders-src")
    assert sqs.list_dead_letter_source_queues(QueueUrl=dlq)["queueUrls"] == [src]


def wait_task(sqs, source_arn, status, timeout=15):
    deadline = time.time() + timeout
    while True:
        task = sqs.list_message_move_tasks(SourceArn=source_arn)["Results"][0]
        if task["Status"] == status or time.time() > deadline:
            return task
        time.sleep(0.1)


def test_message_move_tasks_redrive_a_dead_letter_queue_back(sqs):
    dlq = new_queue(sqs, "mv-dlq")
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    src = new_queue(sqs, "mv-src", RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1}))
    src_arn = sqs.get_queue_attributes(QueueUrl=src, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.send_message_batch(QueueUrl=src, Entries=[{"Id": str(i), "MessageBody": f"m{i}"} for i in range(5)])
    got = []
    while len(got) < 5:
        got += sqs.receive_message(QueueUrl=src, MaxNumberOfMessages=10, VisibilityTimeout=0)["Messages"]
    assert "Messages" not in sqs.receive_message(QueueUrl=src, MaxNumberOfMessages=10)
    assert sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])[
        "Attributes"]["ApproximateNumberOfMessages"] == "5"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sqs.start_message_move_task(SourceArn=src_arn)
    assert e.value.response["Error"]["Message"] == "Source queue must be configured as a Dead Letter Queue."
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sqs.start_message_move_task(SourceArn="arn:aws:sqs:us-east-1:000000000000:nope")
    assert error_code(e) == "ResourceNotFoundException"

    # Back to where they came from, as fast as it goes.
    handle = sqs.start_message_move_task(SourceArn=dlq_arn)["TaskHandle"]
    task = wait_task(sqs, dlq_arn, "COMPLETED")
    assert (task["Status"], task["ApproximateNumberOfMessagesMoved"], task["ApproximateNumberOfMessagesToMove"]) == \
        ("COMPLETED", 5, 5)
    assert task["SourceArn"] == dlq_arn and "TaskHandle" not in task
    back = sqs.receive_message(QueueUrl=src, MaxNumberOfMessages=10, AttributeNames=["All"])["Messages"]
    assert sorted(m["Body"] for m in back) == [f"m{i}" for i in range(5)]
    assert all("DeadLetterQueueSourceArn" not in m["Attributes"] for m in back)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sqs.cancel_message_move_task(TaskHandle=handle)
    assert error_code(e) == "InvalidParameterValue"

    # At one message a second into another queue, cancelled part way.
    other = new_queue(sqs, "mv-other")
    other_arn = sqs.get_queue_attributes(QueueUrl=other, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for m in back:
        sqs.change_message_visibility(QueueUrl=src, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
    # Received once each already: the next receive moves them all to the dead-letter queue.
    assert "Messages" not in sqs.receive_message(QueueUrl=src, MaxNumberOfMessages=10)
    handle = sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=other_arn, MaxNumberOfMessagesPerSecond=1)["TaskHandle"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sqs.start_message_move_task(SourceArn=dlq_arn)
    assert error_code(e) == "InvalidParameterValue"
    time.sleep(1.5)
    moved = sqs.cancel_message_move_task(TaskHandle=handle)["ApproximateNumberOfMessagesMoved"]
    assert 1 <= moved < 5
    task = wait_task(sqs, dlq_arn, "CANCELLED")
    assert task["Status"] == "CANCELLED" and task["DestinationArn"] == other_arn
    assert len(sqs.list_message_move_tasks(SourceArn=dlq_arn, MaxResults=10)["Results"]) == 2
    in_other = sqs.get_queue_attributes(QueueUrl=other, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    assert int(in_other["ApproximateNumberOfMessages"]) == task["ApproximateNumberOfMessagesMoved"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sqs.cancel_message_move_task(TaskHandle="bm9uZQ==")
    assert error_code(e) == "ResourceNotFoundException"


def test_a_running_move_task_resumes_after_a_restart(tmp_path):
    with Lakebox(tmp_path) as lb:
        sqs = lb.client("sqs")
        dlq = new_queue(sqs, "resume-dlq")
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        target = new_queue(sqs, "resume-target")
        target_arn = sqs.get_queue_attributes(QueueUrl=target, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        new_queue(sqs, "resume-src", RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3}))
        sqs.send_message_batch(QueueUrl=dlq, Entries=[{"Id": str(i), "MessageBody": f"r{i}"} for i in range(6)])
        sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=target_arn, MaxNumberOfMessagesPerSecond=2)
        time.sleep(0.6)
        lb.kill()
    with Lakebox(tmp_path) as lb:
        sqs = lb.client("sqs")
        task = wait_task(sqs, dlq_arn, "COMPLETED", timeout=20)
        assert task["Status"] == "COMPLETED"
        bodies = set()
        while len(bodies) < 6:
            got = sqs.receive_message(QueueUrl=target, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
            assert got, bodies
            bodies |= {m["Body"] for m in got}
        assert bodies == {f"r{i}" for i in range(6)}
        assert sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])[
            "Attributes"]["ApproximateNumberOfMessages"] == "0"


def test_message_attribute_names_by_prefix(sqs):
    url = new_queue(sqs, "attr-prefix")
    attrs = {"order.id": {"DataType": "String", "StringValue": "1"},
             "order.total": {"DataType": "Number", "StringValue": "9.5"},
             "trace": {"DataType": "String", "StringValue": "t"}}
    sqs.send_message(QueueUrl=url, MessageBody="b", MessageAttributes=attrs)
    m = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["order.*"], VisibilityTimeout=0)["Messages"][0]
    assert sorted(m["MessageAttributes"]) == ["order.id", "order.total"]
    assert m["MD5OfMessageAttributes"] == md5_of_attributes({k: attrs[k] for k in ("order.id", "order.total")})
    m = sqs.receive_message(QueueUrl=url, MessageAttributeNames=[".*"])["Messages"][0]
    assert sorted(m["MessageAttributes"]) == ["order.id", "order.total", "trace"]


def test_retention_expires_messages(sqs, lakebox):
    url = new_queue(sqs, "short-lived", MessageRetentionPeriod=60)
    sqs.send_message(QueueUrl=url, MessageBody="old")
    advance(lakebox, 61_000)
    sqs.send_message(QueueUrl=url, MessageBody="new")
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in got] == ["new"]


def test_permissions_write_the_queue_policy(sqs):
    url = new_queue(sqs, "shared")
    sqs.add_permission(QueueUrl=url, Label="p1", AWSAccountIds=["111122223333"], Actions=["SendMessage"])
    policy = json.loads(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"]["Policy"])
    st = policy["Statement"][0]
    assert (st["Sid"], st["Principal"]["AWS"], st["Action"]) == ("p1", "arn:aws:iam::111122223333:root", "SQS:SendMessage")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sqs.add_permission(QueueUrl=url, Label="p1", AWSAccountIds=["111122223333"], Actions=["SendMessage"])
    assert error_code(e) == "InvalidParameterValue"
    sqs.remove_permission(QueueUrl=url, Label="p1")
    assert "Attributes" not in sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])


# ---- FIFO ---------------------------------------------------------------------------------

def test_fifo_order_groups_and_deduplication(sqs, lakebox):
    url = sqs.create_queue(QueueName="orders.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (attrs["FifoQueue"], attrs["ContentBasedDeduplication"], attrs["DeduplicationScope"],
            attrs["FifoThroughputLimit"]) == ("true", "false", "queue", "perQueue")
    seqs = []
    for i in range(3):
        r = sqs.send_message(QueueUrl=url, MessageBody=f"a{i}", MessageGroupId="A", MessageDeduplicationId=f"a{i}")
        seqs.append(int(r["SequenceNumber"]))
    assert seqs == sorted(seqs) and len(set(seqs)) == 3
    sqs.send_message(QueueUrl=url, MessageBody="b0", MessageGroupId="B", MessageDeduplicationId="b0")
    # A duplicate within five minutes is accepted and not delivered again.
    dup = sqs.send_message(QueueUrl=url, MessageBody="a0 again", MessageGroupId="A", MessageDeduplicationId="a0")
    assert int(dup["SequenceNumber"]) == seqs[0]
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=2, AttributeNames=["All"])["Messages"]
    assert [m["Body"] for m in got] == ["a0", "a1"]
    assert got[0]["Attributes"]["MessageGroupId"] == "A"
    assert got[0]["Attributes"]["MessageDeduplicationId"] == "a0"
    assert int(got[0]["Attributes"]["SequenceNumber"]) == seqs[0]
    # Group A is held while its messages are in flight; B is not.
    nxt = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in nxt] == ["b0"]
    for m in got:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    assert [m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]] == ["a2"]
    # Sends need a group, and a deduplication id unless content-based.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sqs.send_message(QueueUrl=url, MessageBody="x", MessageDeduplicationId="x")
    assert error_code(e) == "MissingParameter"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sqs.send_message(QueueUrl=url, MessageBody="x", MessageGroupId="A")
    assert error_code(e) == "InvalidParameterValue"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sqs.send_message(QueueUrl=url, MessageBody="x", MessageGroupId="A", MessageDeduplicationId="x", DelaySeconds=5)
    assert error_code(e) == "InvalidParameterValue"
    # Content-based deduplication: the body's SHA-256 is the id; duplicates in one batch too.
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"ContentBasedDeduplication": "true"})
    batch = sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": "1", "MessageBody": "same", "MessageGroupId": "C"},
        {"Id": "2", "MessageBody": "same", "MessageGroupId": "C"},
        {"Id": "3", "MessageBody": "other", "MessageGroupId": "C"}])
    ok = {e["Id"]: e for e in batch["Successful"]}
    assert ok["1"]["MessageId"] == ok["2"]["MessageId"] != ok["3"]["MessageId"]
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["MessageDeduplicationId"])["Messages"]
    bodies = [m["Body"] for m in got if m["Body"] in ("same", "other")]
    assert bodies == ["same", "other"]
    assert got[-2]["Attributes"]["MessageDeduplicationId"] == hashlib.sha256(b"same").hexdigest()
    # After five minutes the id may be used again.
    advance(lakebox, 301_000)
    again = sqs.send_message(QueueUrl=url, MessageBody="a0", MessageGroupId="A", MessageDeduplicationId="a0")
    assert int(again["SequenceNumber"]) > seqs[-1]


def test_fifo_retried_receive_gets_the_same_messages(sqs):
    url = sqs.create_queue(QueueName="retry.fifo", Attributes={"FifoQueue": "true",
                                                               "ContentBasedDeduplication": "true"})["QueueUrl"]
    for i in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{i}", MessageGroupId="g")
    first = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=2, ReceiveRequestAttemptId="try-1")["Messages"]
    again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=2, ReceiveRequestAttemptId="try-1")["Messages"]
    assert [(m["MessageId"], m["ReceiptHandle"]) for m in again] == [(m["MessageId"], m["ReceiptHandle"]) for m in first]
    assert [m["Body"] for m in again] == ["m0", "m1"]
    # Another attempt finds the group held.
    assert "Messages" not in sqs.receive_message(QueueUrl=url, ReceiveRequestAttemptId="try-2")
    for m in first:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    # Once they are deleted the old attempt id is a new receive.
    assert [m["Body"] for m in sqs.receive_message(QueueUrl=url, ReceiveRequestAttemptId="try-1")["Messages"]] == ["m2"]


def test_fifo_survives_sigkill_with_order_and_dedup(tmp_path):
    with Lakebox(tmp_path) as lb:
        sqs = lb.client("sqs")
        url = sqs.create_queue(QueueName="jobs.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
        for i in range(5):
            sqs.send_message(QueueUrl=url, MessageBody=f"j{i}", MessageGroupId="g", MessageDeduplicationId=f"d{i}")
        held = sqs.receive_message(QueueUrl=url, VisibilityTimeout=600)["Messages"][0]
        assert held["Body"] == "j0"
        lb.kill()
    with Lakebox(tmp_path) as lb:
        sqs = lb.client("sqs")
        # j0 is still in flight: the group stays held across the restart.
        assert "Messages" not in sqs.receive_message(QueueUrl=url)
        dup = sqs.send_message(QueueUrl=url, MessageBody="j1", MessageGroupId="g", MessageDeduplicationId="d1")
        sqs.delete_message(QueueUrl=url, ReceiptHandle=held["ReceiptHandle"])
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
        assert [m["Body"] for m in got] == ["j1", "j2", "j3", "j4"]
        assert dup["MessageId"] == got[0]["MessageId"]



def test_fifo_retried_receive_gets_the_same_messages_after_sigkill(tmp_path):
    """The attempt id is journaled with the receive: a client retrying a receive whose answer
    it lost to the crash gets the messages and receipts it was handed, not an empty group."""
    with Lakebox(tmp_path) as lb:
        sqs = lb.client("sqs")
        url = sqs.create_queue(QueueName="retry-kill.fifo", Attributes={
            "FifoQueue": "true", "ContentBasedDeduplication": "true"})["QueueUrl"]
        for i in range(3):
            sqs.send_message(QueueUrl=url, MessageBody=f"m{i}", MessageGroupId="g")
        first = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=2, VisibilityTimeout=600,
                                    ReceiveRequestAttemptId="try-1")["Messages"]
        assert [m["Body"] for m in first] == ["m0", "m1"]
        lb.kill()
    with Lakebox(tmp_path) as lb:
        sqs = lb.client("sqs")
        again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=2, VisibilityTimeout=600,
                                    ReceiveRequestAttemptId="try-1")["Messages"]
        assert [(m["MessageId"], m["ReceiptHandle"], m["Body"]) for m in again] == \
            [(m["MessageId"], m["ReceiptHandle"], m["Body"]) for m in first]
        # Another attempt finds the group held, and the receipts still delete.
        assert "Messages" not in sqs.receive_message(QueueUrl=url, ReceiveRequestAttemptId="try-2")
        for m in again:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        assert [m["Body"] for m in sqs.receive_message(QueueUrl=url, ReceiveRequestAttemptId="try-3")["Messages"]] == ["m2"]


def test_queue_policy_decides_cross_account_access(lakebox):
    """Another account reaches a queue only through its policy; an explicit deny stops the
    owner too; AWS's AccessDenied otherwise."""
    owner = lakebox.client("sqs", access_key="111111111111")
    other = lakebox.client("sqs", access_key="222222222222")
    url = owner.create_queue(QueueName="shared")["QueueUrl"]
    arn = owner.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    assert "/111111111111/shared" in url

    def denied(call):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call()
        err = e.value.response["Error"]
        assert err["Code"] == "AccessDenied", err
        assert err["Message"] == "Access to the resource https://sqs.us-east-1.amazonaws.com/ is denied."
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403

    # No policy: the other account can do nothing, and finds nothing by name either.
    denied(lambda: other.send_message(QueueUrl=url, MessageBody="x"))
    denied(lambda: other.receive_message(QueueUrl=url))
    denied(lambda: other.get_queue_url(QueueName="shared", QueueOwnerAWSAccountId="111111111111"))
    # A policy letting it send (only).
    owner.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::222222222222:root"},
                       "Action": ["sqs:SendMessage", "sqs:GetQueueUrl"], "Resource": arn}]})})
    assert other.get_queue_url(QueueName="shared", QueueOwnerAWSAccountId="111111111111")["QueueUrl"] == url
    other.send_message(QueueUrl=url, MessageBody="from 222")
    other.send_message_batch(QueueUrl=url, Entries=[{"Id": "1", "MessageBody": "batch from 222"}])
    denied(lambda: other.receive_message(QueueUrl=url))
    denied(lambda: other.purge_queue(QueueUrl=url))
    got = owner.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
    assert sorted(m["Body"] for m in got) == ["batch from 222", "from 222"]
    # An explicit deny applies to the owner's own account as well.
    owner.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "sqs:SendMessage", "Resource": arn}]})})
    denied(lambda: owner.send_message(QueueUrl=url, MessageBody="no"))
    denied(lambda: other.send_message(QueueUrl=url, MessageBody="no"))
    owner.set_queue_attributes(QueueUrl=url, Attributes={"Policy": ""})
    owner.send_message(QueueUrl=url, MessageBody="yes")

def test_move_tasks_need_the_queue_policys_permissions(lakebox):
    """Another account starts, lists or cancels a dead-letter queue's move task only with the
    permissions SQS asks for on the dead-letter queue (the operation's own, ReceiveMessage,
    DeleteMessage, GetQueueAttributes) and SendMessage where the messages go."""
    owner = lakebox.client("sqs", access_key="111111111111")
    other = lakebox.client("sqs", access_key="222222222222")
    attr = lambda url: owner.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    dlq = owner.create_queue(QueueName="perm-dlq")["QueueUrl"]
    dlq_arn = attr(dlq)
    src = owner.create_queue(QueueName="perm-src", Attributes={
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1})})["QueueUrl"]
    src_arn = attr(src)
    for batch in ("p", "q"):
        owner.send_message_batch(QueueUrl=src, Entries=[{"Id": str(i), "MessageBody": f"{batch}{i}"} for i in range(10)])
    # Received once each: the next receive moves them all to the dead-letter queue.
    got = []
    while len(got) < 20:
        got += owner.receive_message(QueueUrl=src, MaxNumberOfMessages=10, VisibilityTimeout=0)["Messages"]
    assert "Messages" not in owner.receive_message(QueueUrl=src, MaxNumberOfMessages=10)

    def denied(call):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call()
        assert e.value.response["Error"]["Code"] == "AccessDenied", e.value.response["Error"]

    def allow(url, arn, actions):
        owner.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"AWS": "222222222222"},
                           "Action": actions, "Resource": arn}]})})

    denied(lambda: other.start_message_move_task(SourceArn=dlq_arn))
    denied(lambda: other.list_message_move_tasks(SourceArn=dlq_arn))
    # The operation alone is not enough: the task receives and deletes on the caller's behalf.
    allow(dlq, dlq_arn, ["sqs:StartMessageMoveTask", "sqs:ListMessageMoveTasks"])
    denied(lambda: other.start_message_move_task(SourceArn=dlq_arn))
    assert other.list_message_move_tasks(SourceArn=dlq_arn)["Results"] == []
    allow(dlq, dlq_arn, ["sqs:StartMessageMoveTask", "sqs:ReceiveMessage", "sqs:DeleteMessage",
                         "sqs:GetQueueAttributes", "sqs:ListMessageMoveTasks"])
    # Nor the dead-letter queue's: the messages go back to perm-src, which lets nobody send.
    denied(lambda: other.start_message_move_task(SourceArn=dlq_arn))
    assert sqs_count(owner, dlq) == 20
    allow(src, src_arn, ["sqs:SendMessage"])
    handle = other.start_message_move_task(SourceArn=dlq_arn, MaxNumberOfMessagesPerSecond=1)["TaskHandle"]
    # Cancelling takes its own permission on the dead-letter queue.
    denied(lambda: other.cancel_message_move_task(TaskHandle=handle))
    moved = owner.cancel_message_move_task(TaskHandle=handle)["ApproximateNumberOfMessagesMoved"]
    assert moved < 20
    task = wait_task(owner, dlq_arn, "CANCELLED")
    assert task["Status"] == "CANCELLED"
    assert sqs_count(owner, dlq) + sqs_count(owner, src) == 20


def sqs_count(client, url):
    return int(client.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])[
        "Attributes"]["ApproximateNumberOfMessages"])


# ---- awsQuery, as older SDKs speak it ------------------------------------------------------

def query(lakebox, params, path="/"):
    body = urlencode({"Version": "2012-11-05", **params}).encode()
    status, headers, raw = signed_request(lakebox.endpoint, path=path, body=body, service="sqs", headers={
        "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    return status, ET.fromstring(raw)


def test_query_protocol_forms_in_xml_out(sqs, lakebox):
    status, doc = query(lakebox, {"Action": "CreateQueue", "QueueName": "legacy",
                                  "Attribute.1.Name": "VisibilityTimeout", "Attribute.1.Value": "40",
                                  "Tag.1.Key": "team", "Tag.1.Value": "data"})
    assert status == 200
    url = doc.find(f"{NS}CreateQueueResult/{NS}QueueUrl").text
    assert url.endswith("/000000000000/legacy")
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"team": "data"}
    status, doc = query(lakebox, {"Action": "SendMessageBatch", "QueueUrl": url,
                                  "SendMessageBatchRequestEntry.1.Id": "a",
                                  "SendMessageBatchRequestEntry.1.MessageBody": "first",
                                  "SendMessageBatchRequestEntry.1.MessageAttribute.1.Name": "k",
                                  "SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.DataType": "String",
                                  "SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.StringValue": "v",
                                  "SendMessageBatchRequestEntry.2.Id": "b",
                                  "SendMessageBatchRequestEntry.2.MessageBody": "second"})
    assert status == 200
    entries = doc.findall(f"{NS}SendMessageBatchResult/{NS}SendMessageBatchResultEntry")
    assert sorted(e.find(f"{NS}Id").text for e in entries) == ["a", "b"]
    # Posted to the queue's own URL without QueueUrl, as boto2-era SDKs did.
    status, doc = query(lakebox, {"Action": "ReceiveMessage", "MaxNumberOfMessages": "10",
                                  "AttributeName.1": "All", "MessageAttributeName.1": "All"},
                        path="/000000000000/legacy")
    assert status == 200
    msgs = doc.findall(f"{NS}ReceiveMessageResult/{NS}Message")
    assert sorted(m.find(f"{NS}Body").text for m in msgs) == ["first", "second"]
    first = next(m for m in msgs if m.find(f"{NS}Body").text == "first")
    attrs = {a.find(f"{NS}Name").text: a.find(f"{NS}Value").text for a in first.findall(f"{NS}Attribute")}
    assert attrs["ApproximateReceiveCount"] == "1"
    ma = first.find(f"{NS}MessageAttribute")
    assert ma.find(f"{NS}Name").text == "k"
    assert ma.find(f"{NS}Value/{NS}StringValue").text == "v"
    status, doc = query(lakebox, {"Action": "DeleteMessage", "QueueUrl": url,
                                  "ReceiptHandle": first.find(f"{NS}ReceiptHandle").text})
    assert status == 200 and doc.tag == f"{NS}DeleteMessageResponse"
    status, doc = query(lakebox, {"Action": "GetQueueAttributes", "QueueUrl": url, "AttributeName.1": "All"})
    got = {a.find(f"{NS}Name").text: a.find(f"{NS}Value").text
           for a in doc.findall(f"{NS}GetQueueAttributesResult/{NS}Attribute")}
    assert got["VisibilityTimeout"] == "40" and got["ApproximateNumberOfMessagesNotVisible"] == "1"
    status, doc = query(lakebox, {"Action": "ListQueues", "QueueNamePrefix": "legacy"})
    assert [u.text for u in doc.findall(f"{NS}ListQueuesResult/{NS}QueueUrl")] == [url]
    status, doc = query(lakebox, {"Action": "GetQueueUrl", "QueueName": "missing"})
    assert status == 400
    # In SQS's namespace, as AWS writes its error documents.
    assert doc.tag == f"{NS}ErrorResponse"
    assert doc.find(f"{NS}Error/{NS}Code").text == "AWS.SimpleQueueService.NonExistentQueue"
    assert doc.find(f"{NS}Error/{NS}Type").text == "Sender"


def test_queue_urls_follow_the_host_and_name_their_region(lakebox):
    """Clients that address `sqs.<region>.localhost` get URLs on that host, and a URL of that
    form names its region."""
    body = json.dumps({"QueueName": "regional"}).encode()
    port = lakebox.endpoint.rsplit(":", 1)[1]
    status, _, raw = signed_request(lakebox.endpoint, body=body, service="sqs", region="eu-west-1", headers={
        "X-Amz-Target": "AmazonSQS.CreateQueue", "Content-Type": "application/x-amz-json-1.0",
        "Host": f"sqs.eu-west-1.localhost:{port}"})
    assert status == 200, raw
    url = json.loads(raw)["QueueUrl"]
    assert url == f"http://sqs.eu-west-1.localhost:{port}/000000000000/regional"
    # The queue is in eu-west-1: a us-east-1 client finds it through that URL's region.
    sqs = lakebox.client("sqs", region="us-east-1")
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    assert arn == "arn:aws:sqs:eu-west-1:000000000000:regional"
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.get_queue_url(QueueName="regional")


def test_aws_cli(lakebox):
    out = lakebox.cli("sqs", "create-queue", "--queue-name", "cli-queue")
    assert out.returncode == 0, out.stderr
    url = json.loads(out.stdout)["QueueUrl"]
    out = lakebox.cli("sqs", "send-message", "--queue-url", url, "--message-body", "from the cli")
    assert out.returncode == 0, out.stderr
    out = lakebox.cli("sqs", "receive-message", "--queue-url", url)
    assert json.loads(out.stdout)["Messages"][0]["Body"] == "from the cli"


# ---- durability ---------------------------------------------------------------------------

def test_sigkill_keeps_acknowledged_messages_and_deletes(tmp_path):
    with Lakebox(tmp_path) as lb:
        sqs = lb.client("sqs")
        url = new_queue(sqs, "durable", VisibilityTimeout=3)
        ids = [sqs.send_message(QueueUrl=url, MessageBody=f"m{i}")["MessageId"] for i in range(20)]
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"b{i}"} for i in range(10)])
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
        deleted = {m["Body"] for m in got[:5]}
        for m in got[:5]:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        in_flight = {m["Body"] for m in got[5:]}
        lb.kill()
    with Lakebox(tmp_path) as lb:
        sqs = lb.client("sqs")
        assert sqs.get_queue_url(QueueName="durable")["QueueUrl"].endswith("/durable")
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert attrs["ApproximateNumberOfMessagesNotVisible"] == str(len(in_flight))
        assert int(attrs["ApproximateNumberOfMessages"]) == 30 - 5 - len(in_flight)
        seen = set()
        deadline = time.time() + 15
        while len(seen) < 25 and time.time() < deadline:
            for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
                seen.add(m["Body"])
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        expected = {f"m{i}" for i in range(20)} | {f"b{i}" for i in range(10)}
        assert seen == expected - deleted, "in-flight messages reappear at their timeout; deleted ones never"
        assert len(ids) == 20


def test_a_backlog_past_the_memory_limit_comes_back_whole_from_disk(tmp_path):
    """With room in memory for a few messages' content only, the rest is read back from the
    journal: bodies, attributes and their checksums, FIFO order, redelivery, a dead-letter move,
    and all of it again after SIGKILL."""
    limit = ["--sqs-memory-bytes", "8000"]
    attrs = {"kind": {"DataType": "String", "StringValue": "order"},
             "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01\x02"}}

    def body(q, i):
        return f"{q}-{i:04d}-" + "x" * 1000

    def drain(sqs, url, n, **kw):
        got = []
        deadline = time.time() + 30
        while len(got) < n and time.time() < deadline:
            batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"],
                                        AttributeNames=["All"], **kw).get("Messages", [])
            for m in batch:
                assert m["MD5OfBody"] == hashlib.md5(m["Body"].encode()).hexdigest()
                assert m["MessageAttributes"]["kind"]["StringValue"] == "order"
                assert m["MessageAttributes"]["blob"]["BinaryValue"] == b"\x00\x01\x02"
                assert m["MD5OfMessageAttributes"] == md5_of_attributes(attrs)
            if batch:
                sqs.delete_message_batch(QueueUrl=url, Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)])
            got += batch
        return got

    with Lakebox(tmp_path, *limit) as lb:
        sqs = lb.client("sqs")
        plain = new_queue(sqs, "backlog")
        fifo = new_queue(sqs, "backlog.fifo", FifoQueue="true", ContentBasedDeduplication="true")
        dlq = new_queue(sqs, "backlog-dlq")
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        redriven = new_queue(sqs, "backlog-redriven",
                             RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1}))
        # The queues' messages interleave in the journal.
        for b in range(30):
            for url, group in ((plain, None), (fifo, "g"), (redriven, None)):
                name = url.rsplit("/", 1)[1]
                entries = [{"Id": str(i), "MessageBody": body(name, b * 10 + i), "MessageAttributes": attrs,
                            **({"MessageGroupId": group} if group else {})} for i in range(10)]
                assert len(sqs.send_message_batch(QueueUrl=url, Entries=entries)["Successful"]) == 10
        # FIFO: in order, all 300.
        got = drain(sqs, fifo, 300)
        assert [m["Body"] for m in got] == [body("backlog.fifo", i) for i in range(300)]
        # A redelivery reads the content back again: the same message, received twice.
        first = sqs.receive_message(QueueUrl=plain, MaxNumberOfMessages=5, VisibilityTimeout=0,
                                    MessageAttributeNames=["All"])["Messages"]
        again = sqs.receive_message(QueueUrl=plain, MaxNumberOfMessages=5, MessageAttributeNames=["All"],
                                    AttributeNames=["ApproximateReceiveCount"], VisibilityTimeout=0)["Messages"]
        assert [(m["MessageId"], m["Body"]) for m in again] == [(m["MessageId"], m["Body"]) for m in first]
        assert {m["Attributes"]["ApproximateReceiveCount"] for m in again} == {"2"}
        # Each of these is received once (in flight for no time), then moved to the
        # dead-letter queue by the next receive: the moves carry the content read back.
        for _ in range(100):
            if "Messages" not in sqs.receive_message(QueueUrl=redriven, MaxNumberOfMessages=10,
                                                     VisibilityTimeout=0):
                break
        a = sqs.get_queue_attributes(QueueUrl=redriven, AttributeNames=["All"])["Attributes"]
        assert (a["ApproximateNumberOfMessages"], a["ApproximateNumberOfMessagesNotVisible"]) == ("0", "0")
        lb.kill()
    with Lakebox(tmp_path, *limit) as lb:
        sqs = lb.client("sqs")
        got = drain(sqs, plain, 300)
        assert sorted(m["Body"] for m in got) == [body("backlog", i) for i in range(300)]
        moved = drain(sqs, dlq, 300)
        assert sorted(m["Body"] for m in moved) == [body("backlog-redriven", i) for i in range(300)]
        for q in (plain, fifo, dlq, redriven):
            a = sqs.get_queue_attributes(QueueUrl=q, AttributeNames=["All"])["Attributes"]
            assert (a["ApproximateNumberOfMessages"], a["ApproximateNumberOfMessagesNotVisible"]) == ("0", "0")
