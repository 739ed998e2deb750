"""Lambda's stream event sources past the happy path, judged by boto3: FilterCriteria on
Kinesis and SQS, BisectBatchOnFunctionError with MaximumRetryAttempts and the on-failure
destination's batch record, ReportBatchItemFailures on a stream, MaximumRecordAgeInSeconds
with the server clock moved, MaximumBatchingWindowInSeconds, and tumbling windows carrying
state to a final invocation."""

import io
import json
import time
import zipfile

import pytest

from lakebox_harness import Lakebox, wait_for, zip_of
from signing import send

ROLE = "arn:aws:iam::000000000000:role/lambda-role"

# Records every invocation (its records' decoded data and the event's other members) in S3;
# fails on records whose data says so: raising, or for "partial-*" functions reporting them
# in batchItemFailures; "once" fails only the first time it is seen. With a tumbling window
# it sums the records' `n` into the window's state.
RECORDER = '''
import base64, json, time, uuid, boto3

s3 = boto3.client("s3")

def handler(event, context):
    records = event.get("Records", [])
    datas = []
    for r in records:
        raw = base64.b64decode(r["kinesis"]["data"]) if "kinesis" in r else r["body"].encode()
        try:
            datas.append(json.loads(raw))
        except ValueError:
            datas.append(raw.decode())
    key = "%s/%020d-%s.json" % (context.function_name, time.time_ns(), uuid.uuid4())
    rest = {k: v for k, v in event.items() if k != "Records"}
    groups = [r.get("attributes", {}).get("MessageGroupId") for r in records]
    s3.put_object(Bucket="esm-features", Key=key, Body=json.dumps({"datas": datas, "event": rest, "groups": groups}))
    if context.function_name.startswith("slow"):
        time.sleep(0.3)
    failing = []
    for r, d in zip(records, datas):
        if not isinstance(d, dict):
            continue
        if d.get("fail") == "always":
            failing.append(r)
        elif d.get("fail") == "once":
            marker = "markers/%s" % d["id"]
            try:
                s3.head_object(Bucket="esm-features", Key=marker)
            except Exception:
                s3.put_object(Bucket="esm-features", Key=marker, Body=b"seen")
                failing.append(r)
    if failing:
        if context.function_name.startswith("partial"):
            return {"batchItemFailures": [{"itemIdentifier": r["kinesis"]["sequenceNumber"] if "kinesis" in r
                                           else r["messageId"]} for r in failing]}
        raise ValueError("bad record")
    if "window" in event:
        state = dict(event.get("state") or {})
        state["sum"] = state.get("sum", 0) + sum(d.get("n", 0) for d in datas if isinstance(d, dict))
        return {"state": state}
    return {}
'''


@pytest.fixture(scope="module")
def lakebox(tmp_path_factory):
    server = Lakebox(tmp_path_factory.mktemp("esm-features")).start()
    server.client("s3").create_bucket(Bucket="esm-features")
    yield server
    server.stop()


def invocations(lb, function):
    s3 = lb.client("s3")
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="esm-features", Prefix=function + "/").get("Contents", []))
    return [json.loads(s3.get_object(Bucket="esm-features", Key=k)["Body"].read()) for k in keys]


def stream(lb, name):
    kinesis = lb.client("kinesis")
    kinesis.create_stream(StreamName=name, ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName=name)
    return kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]


def put(lb, name, *datas):
    kinesis = lb.client("kinesis")
    kinesis.put_records(StreamName=name, Records=[
        {"Data": d if isinstance(d, bytes) else json.dumps(d).encode(), "PartitionKey": "k"} for d in datas])


def function(lb, name, timeout=30):
    lam = lb.client("lambda")
    return lam.create_function(FunctionName=name, Runtime="python3.12", Role=ROLE, Handler="app.handler",
                               Code={"ZipFile": zip_of({"app.py": RECORDER})}, Timeout=timeout)["FunctionArn"]


def queue(lb, name):
    sqs = lb.client("sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    return url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def test_filter_criteria_pick_the_records_a_function_sees(lakebox):
    lam = lakebox.client("lambda")
    arn = stream(lakebox, "filtered")
    function(lakebox, "filtered-fn")
    code = None
    try:
        lam.create_event_source_mapping(FunctionName="filtered-fn", EventSourceArn=arn, StartingPosition="TRIM_HORIZON",
                                        FilterCriteria={"Filters": [{"Pattern": "{\"data\": \"not a list\"}"}]})
    except lam.exceptions.InvalidParameterValueException as e:
        code = e.response["Error"]["Code"]
    assert code == "InvalidParameterValueException"
    put(lakebox, "filtered", {"kind": "order", "id": 1}, {"kind": "refund", "id": 2}, b"not json at all",
        {"kind": "order", "id": 3, "amount": 50}, {"kind": "order", "id": 4, "amount": 500})
    m = lam.create_event_source_mapping(
        FunctionName="filtered-fn", EventSourceArn=arn, StartingPosition="TRIM_HORIZON",
        FilterCriteria={"Filters": [
            {"Pattern": json.dumps({"data": {"kind": ["order"], "amount": [{"numeric": ["<", 100]}]}})},
            {"Pattern": json.dumps({"data": {"kind": ["order"], "amount": [{"exists": False}]}})},
        ]})
    assert json.loads(m["FilterCriteria"]["Filters"][0]["Pattern"])["data"]["kind"] == ["order"]
    assert wait_for(lambda: [d["id"] for i in invocations(lakebox, "filtered-fn") for d in i["datas"]] == [1, 3], timeout=20)
    time.sleep(1)
    assert [d["id"] for i in invocations(lakebox, "filtered-fn") for d in i["datas"]] == [1, 3]


def test_sqs_messages_no_filter_matches_are_deleted_unseen(lakebox):
    lam, sqs = lakebox.client("lambda"), lakebox.client("sqs")
    url, arn = queue(lakebox, "filtered-q")
    function(lakebox, "sqs-filtered-fn")
    lam.create_event_source_mapping(FunctionName="sqs-filtered-fn", EventSourceArn=arn, BatchSize=10,
                                    FilterCriteria={"Filters": [{"Pattern": json.dumps({"body": {"kind": ["order"]}})}]})
    for i, kind in enumerate(["order", "refund", "order"]):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"kind": kind, "id": i}))
    assert wait_for(lambda: sorted(d["id"] for i in invocations(lakebox, "sqs-filtered-fn") for d in i["datas"]) == [0, 2], timeout=20)
    # The refund was deleted, not left to come back.
    assert wait_for(lambda: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]["ApproximateNumberOfMessages"] == "0"
                    and sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "0", timeout=10)


def test_bisect_retries_then_the_on_failure_destination(lakebox):
    lam, sqs = lakebox.client("lambda"), lakebox.client("sqs")
    arn = stream(lakebox, "bisected")
    fn_arn = function(lakebox, "bisect-fn")
    url, qarn = queue(lakebox, "stream-failures")
    put(lakebox, "bisected", {"id": 1}, {"id": 2}, {"id": 3, "fail": "always"}, {"id": 4})
    m = lam.create_event_source_mapping(FunctionName="bisect-fn", EventSourceArn=arn, StartingPosition="TRIM_HORIZON",
                                        BatchSize=4, BisectBatchOnFunctionError=True, MaximumRetryAttempts=1,
                                        DestinationConfig={"OnFailure": {"Destination": qarn}})
    assert m["BisectBatchOnFunctionError"] is True and m["MaximumRetryAttempts"] == 1
    got = []
    assert wait_for(lambda: got.extend(sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", [])) or got, timeout=30)
    record = json.loads(got[0]["Body"])
    info = record["KinesisBatchInfo"]
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert record["requestContext"]["functionArn"] == fn_arn
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert info["shardId"] == "shardId-000000000000" and info["streamArn"] == arn and info["batchSize"] == 1
    assert info["startSequenceNumber"] == info["endSequenceNumber"]
    # Every good record got through, in order; the batches were halved around the bad one.
    assert wait_for(lambda: [d["id"] for i in invocations(lakebox, "bisect-fn") for d in i["datas"]][-1:] == [4], timeout=20)
    batches = [[d["id"] for d in i["datas"]] for i in invocations(lakebox, "bisect-fn")]
    assert batches == [[1, 2, 3, 4], [1, 2], [3, 4], [3], [3], [4]], batches


def test_report_batch_item_failures_retries_from_the_failed_record(lakebox):
    lam = lakebox.client("lambda")
    arn = stream(lakebox, "partial")
    function(lakebox, "partial-fn")
    put(lakebox, "partial", {"id": "a"}, {"id": "b", "fail": "once"}, {"id": "c"})
    lam.create_event_source_mapping(FunctionName="partial-fn", EventSourceArn=arn, StartingPosition="TRIM_HORIZON",
                                    BatchSize=10, FunctionResponseTypes=["ReportBatchItemFailures"])
    assert wait_for(lambda: len(invocations(lakebox, "partial-fn")) >= 2, timeout=20)
    time.sleep(1)
    batches = [[d["id"] for d in i["datas"]] for i in invocations(lakebox, "partial-fn")]
    assert batches == [["a", "b", "c"], ["b", "c"]]


def test_batching_window_waits_for_a_fuller_batch(lakebox):
    lam = lakebox.client("lambda")
    arn = stream(lakebox, "windowed-batches")
    function(lakebox, "batching-fn")
    lam.create_event_source_mapping(FunctionName="batching-fn", EventSourceArn=arn, StartingPosition="TRIM_HORIZON",
                                    BatchSize=100, MaximumBatchingWindowInSeconds=2)
    put(lakebox, "windowed-batches", {"id": 1})
    time.sleep(0.5)
    put(lakebox, "windowed-batches", {"id": 2})
    time.sleep(0.5)
    put(lakebox, "windowed-batches", {"id": 3})
    assert wait_for(lambda: invocations(lakebox, "batching-fn"), timeout=20)
    time.sleep(0.5)
    assert [[d["id"] for d in i["datas"]] for i in invocations(lakebox, "batching-fn")] == [[1, 2, 3]]


def test_tumbling_windows_carry_state_to_a_final_invocation(lakebox):
    lam = lakebox.client("lambda")
    arn = stream(lakebox, "tumbling")
    function(lakebox, "tumbling-fn")
    lam.create_event_source_mapping(FunctionName="tumbling-fn", EventSourceArn=arn, StartingPosition="TRIM_HORIZON",
                                    BatchSize=1, TumblingWindowInSeconds=3)
    # Three records early in one three-second window, one invocation each (BatchSize 1).
    while time.time() % 3 > 0.5:
        time.sleep(0.05)
    put(lakebox, "tumbling", {"n": 1})
    put(lakebox, "tumbling", {"n": 2})
    put(lakebox, "tumbling", {"n": 3})

    def final():
        return [i for i in invocations(lakebox, "tumbling-fn") if i["event"].get("isFinalInvokeForWindow")]

    assert wait_for(final, timeout=20)
    calls = invocations(lakebox, "tumbling-fn")
    assert [c["datas"] for c in calls] == [[{"n": 1}], [{"n": 2}], [{"n": 3}], []]
    assert [c["event"]["state"] for c in calls] == [{}, {"sum": 1}, {"sum": 3}, {"sum": 6}]
    w = calls[0]["event"]["window"]
    assert all(c["event"]["window"] == w for c in calls)
    assert w["start"].endswith("Z") and w["end"].endswith("Z")
    assert calls[0]["event"]["shardId"] == "shardId-000000000000" and calls[0]["event"]["eventSourceARN"] == arn
    assert [c["event"]["isFinalInvokeForWindow"] for c in calls] == [False, False, False, True]


SAVER = '''
import json, time, uuid, boto3

def handler(event, context):
    boto3.client("s3").put_object(Bucket="triggered", Key="%s/%020d-%s.json" % (context.function_name, time.time_ns(), uuid.uuid4()),
                                  Body=json.dumps(event))
    return "saved"
'''


def saved(s3, function):
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="triggered", Prefix=function + "/").get("Contents", []))
    return [json.loads(s3.get_object(Bucket="triggered", Key=k)["Body"].read()) for k in keys]


def test_alarm_actions_and_log_subscriptions_invoke_functions(tmp_path):
    import base64
    import gzip
    with Lakebox(tmp_path, "--cloudwatch-alarm-tick-ms", "200") as lb:
        lam, s3, cw, logs = lb.client("lambda"), lb.client("s3"), lb.client("cloudwatch"), lb.client("logs")
        s3.create_bucket(Bucket="triggered")
        fn = lam.create_function(FunctionName="on-alarm", Runtime="python3.12", Role=ROLE, Handler="app.handler",
                                 Code={"ZipFile": zip_of({"app.py": SAVER})}, Timeout=30)["FunctionArn"]
        # A metric alarm whose action is the function: CloudWatch's Lambda alarm event.
        cw.put_metric_alarm(AlarmName="orders-stalled", AlarmDescription="no orders", Namespace="Shop",
                            MetricName="Orders", Dimensions=[{"Name": "Site", "Value": "eu"}], Statistic="Sum",
                            Period=10, EvaluationPeriods=1, Threshold=1, ComparisonOperator="LessThanThreshold",
                            TreatMissingData="breaching", AlarmActions=[fn])
        assert wait_for(lambda: saved(s3, "on-alarm"), timeout=20)
        [event] = saved(s3, "on-alarm")
        assert event["source"] == "aws.cloudwatch" and event["region"] == "us-east-1"
        assert event["alarmArn"].endswith(":alarm:orders-stalled") and event["accountId"] == "000000000000"
        data = event["alarmData"]
        assert data["alarmName"] == "orders-stalled"
        assert data["state"]["value"] == "ALARM" and data["previousState"]["value"] == "INSUFFICIENT_DATA"
        assert data["state"]["reason"].startswith("Threshold Crossed")
        assert data["configuration"]["description"] == "no orders"
        [metric] = data["configuration"]["metrics"]
        assert metric["metricStat"]["metric"] == {"namespace": "Shop", "name": "Orders", "dimensions": {"Site": "eu"}}
        assert metric["metricStat"]["period"] == 10 and metric["metricStat"]["stat"] == "Sum"

        # A subscription filter whose destination is the function: the gzip DATA_MESSAGE under awslogs.
        lam.create_function(FunctionName="on-logs", Runtime="python3.12", Role=ROLE, Handler="app.handler",
                            Code={"ZipFile": zip_of({"app.py": SAVER})}, Timeout=30)
        logs_fn = lam.get_function(FunctionName="on-logs")["Configuration"]["FunctionArn"]
        logs.create_log_group(logGroupName="/app/orders")
        logs.create_log_stream(logGroupName="/app/orders", logStreamName="web-1")
        code = None
        try:
            logs.put_subscription_filter(logGroupName="/app/orders", filterName="errors", filterPattern="ERROR",
                                         destinationArn=fn.replace("on-alarm", "no-such-function"))
        except logs.exceptions.InvalidParameterException as e:
            code = e.response["Error"]["Code"]
        assert code == "InvalidParameterException"
        logs.put_subscription_filter(logGroupName="/app/orders", filterName="errors", filterPattern="ERROR",
                                     destinationArn=logs_fn)
        now = int(time.time() * 1000)
        logs.put_log_events(logGroupName="/app/orders", logStreamName="web-1", logEvents=[
            {"timestamp": now, "message": "INFO order 1 placed"},
            {"timestamp": now + 1, "message": "ERROR order 2 failed"}])
        assert wait_for(lambda: saved(s3, "on-logs"), timeout=20)
        [event] = saved(s3, "on-logs")
        msg = json.loads(gzip.decompress(base64.b64decode(event["awslogs"]["data"])))
        assert msg["messageType"] == "DATA_MESSAGE" and msg["logGroup"] == "/app/orders" and msg["logStream"] == "web-1"
        assert msg["subscriptionFilters"] == ["errors"]
        assert [e["message"] for e in msg["logEvents"]] == ["ERROR order 2 failed"]


TIMED = '''
import base64, json, time, uuid, boto3

s3 = boto3.client("s3")

def handler(event, context):
    started = time.time()
    items = []
    for r in event["Records"]:
        if "kinesis" in r:
            items.append(json.loads(base64.b64decode(r["kinesis"]["data"])))
        else:
            items.append(json.loads(r["body"]))
    time.sleep(0.4)
    s3.put_object(Bucket="esm-features", Key="%s/%020d-%s.json" % (context.function_name, time.time_ns(), uuid.uuid4()),
                  Body=json.dumps({"items": items, "start": started, "end": time.time()}))
    return {}
'''


def overlapping(calls):
    """The most invocations that ran at the same moment."""
    edges = sorted([(c["start"], 1) for c in calls] + [(c["end"], -1) for c in calls])
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


def test_parallelization_factor_runs_lanes_side_by_side_in_key_order(tmp_path):
    with Lakebox(tmp_path, "--cloudwatch-service-metrics-ms", "200") as lb:
        lam, s3, kinesis, cw = lb.client("lambda"), lb.client("s3"), lb.client("kinesis"), lb.client("cloudwatch")
        s3.create_bucket(Bucket="esm-features")
        arn = stream(lb, "laned")
        lam.create_function(FunctionName="laned-fn", Runtime="python3.12", Role=ROLE, Handler="app.handler",
                            Code={"ZipFile": zip_of({"app.py": TIMED})}, Timeout=30)
        kinesis.put_records(StreamName="laned", Records=[
            {"Data": json.dumps({"key": f"k{i % 8}", "n": i}).encode(), "PartitionKey": f"k{i % 8}"} for i in range(48)])
        m = lam.create_event_source_mapping(FunctionName="laned-fn", EventSourceArn=arn, StartingPosition="TRIM_HORIZON",
                                            BatchSize=4, ParallelizationFactor=4)
        assert m["ParallelizationFactor"] == 4

        def delivered():
            return [it for c in invocations(lb, "laned-fn") for it in c["items"]]

        assert wait_for(lambda: len(delivered()) >= 48, timeout=60)
        time.sleep(1)
        calls = invocations(lb, "laned-fn")
        got = delivered()
        assert sorted(it["n"] for it in got) == list(range(48))  # each record once
        for k in range(8):  # in order within a partition key
            ns = [it["n"] for c in sorted(calls, key=lambda c: c["start"]) for it in c["items"] if it["key"] == f"k{k}"]
            assert ns == sorted(ns), (k, ns)
        assert overlapping(calls) > 1, "lanes ran one after another"
        assert all(len(c["items"]) <= 4 for c in calls)

        # How far behind the function ran: AWS/Lambda IteratorAge by function.
        def age():
            points = cw.get_metric_statistics(Namespace="AWS/Lambda", MetricName="IteratorAge",
                                              Dimensions=[{"Name": "FunctionName", "Value": "laned-fn"}],
                                              StartTime=time.time() - 600, EndTime=time.time() + 60, Period=60,
                                              Statistics=["Maximum"])["Datapoints"]
            return points and points[0]["Maximum"]

        assert wait_for(age, timeout=10) and age() >= 0


def test_sqs_maximum_concurrency_runs_pollers_side_by_side(lakebox):
    lam, sqs = lakebox.client("lambda"), lakebox.client("sqs")
    url, arn = queue(lakebox, "busy-q")
    lam.create_function(FunctionName="busy-fn", Runtime="python3.12", Role=ROLE, Handler="app.handler",
                        Code={"ZipFile": zip_of({"app.py": TIMED})}, Timeout=30)
    for i in range(6):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"n": i}))
    m = lam.create_event_source_mapping(FunctionName="busy-fn", EventSourceArn=arn, BatchSize=1,
                                        ScalingConfig={"MaximumConcurrency": 3})
    assert m["ScalingConfig"] == {"MaximumConcurrency": 3}
    assert wait_for(lambda: len(invocations(lakebox, "busy-fn")) >= 6, timeout=30)
    calls = invocations(lakebox, "busy-fn")
    assert sorted(it["n"] for c in calls for it in c["items"]) == list(range(6))
    assert overlapping(calls) > 1


def test_records_older_than_the_maximum_age_are_given_up(lakebox):
    lam, sqs = lakebox.client("lambda"), lakebox.client("sqs")
    arn = stream(lakebox, "aged")
    function(lakebox, "aged-fn")
    url, qarn = queue(lakebox, "aged-failures")
    put(lakebox, "aged", {"id": "old-1"}, {"id": "old-2"})
    # Two minutes pass on the server's clock (last in this module: later tests would see it).
    assert send(lakebox.endpoint, "POST", "/_lakebox/test/clock?advance_ms=120000")[0] == 200
    put(lakebox, "aged", {"id": "new"})
    lam.create_event_source_mapping(FunctionName="aged-fn", EventSourceArn=arn, StartingPosition="TRIM_HORIZON",
                                    MaximumRecordAgeInSeconds=60, DestinationConfig={"OnFailure": {"Destination": qarn}})
    assert wait_for(lambda: invocations(lakebox, "aged-fn"), timeout=20)
    got = []
    assert wait_for(lambda: got.extend(sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", [])) or got, timeout=20)
    record = json.loads(got[0]["Body"])
    assert record["requestContext"]["condition"] == "RecordAgeExceeded"
    assert record["KinesisBatchInfo"]["batchSize"] == 2
    time.sleep(0.5)
    assert [d["id"] for i in invocations(lakebox, "aged-fn") for d in i["datas"]] == ["new"]


def test_sqs_sources_fifo_partial_failures_big_batches_and_a_restart(tmp_path):
    with Lakebox(tmp_path) as lb:
        lb.client("s3").create_bucket(Bucket="esm-features")
        lam, sqs = lb.client("lambda"), lb.client("sqs")

        # FIFO: a failed batch comes back whole, each group in its order.
        url = sqs.create_queue(QueueName="orders.fifo", Attributes={
            "FifoQueue": "true", "ContentBasedDeduplication": "true", "VisibilityTimeout": "1"})["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        function(lb, "fifo-fn", timeout=5)
        # As AWS: messages must not come back while the function may still run.
        with pytest.raises(lam.exceptions.InvalidParameterValueException) as e:
            lam.create_event_source_mapping(FunctionName="fifo-fn", EventSourceArn=arn, BatchSize=10)
        assert e.value.response["Error"]["Message"] == \
            "Queue visibility timeout: 1 seconds is less than Function timeout: 5 seconds"
        lam.update_function_configuration(FunctionName="fifo-fn", Timeout=1)
        lam.get_waiter("function_updated_v2").wait(FunctionName="fifo-fn")
        sent = [("g1", {"id": 1}), ("g1", {"id": 2, "fail": "once"}), ("g1", {"id": 3}), ("g2", {"id": 10}), ("g2", {"id": 11})]
        sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "MessageBody": json.dumps(body), "MessageGroupId": group} for i, (group, body) in enumerate(sent)])
        lam.create_event_source_mapping(FunctionName="fifo-fn", EventSourceArn=arn, BatchSize=10)
        assert wait_for(lambda: len(invocations(lb, "fifo-fn")) >= 2, timeout=20)
        for call in invocations(lb, "fifo-fn"):
            for group, ids in (("g1", [1, 2, 3]), ("g2", [10, 11])):
                seen = [d["id"] for d, g in zip(call["datas"], call["groups"]) if g == group]
                assert seen == ids, call
        assert wait_for(lambda: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
                        ["ApproximateNumberOfMessagesNotVisible"] == "0")

        # ReportBatchItemFailures: only the messages the function names come back.
        url, arn = queue(lb, "partial-jobs")
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "1"})
        function(lb, "partial-sqs-fn", timeout=1)
        sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": d["id"], "MessageBody": json.dumps(d)} for d in ({"id": "a"}, {"id": "b", "fail": "once"}, {"id": "c"})])
        lam.create_event_source_mapping(FunctionName="partial-sqs-fn", EventSourceArn=arn, BatchSize=10,
                                        MaximumBatchingWindowInSeconds=1,
                                        FunctionResponseTypes=["ReportBatchItemFailures"])
        assert wait_for(lambda: len(invocations(lb, "partial-sqs-fn")) >= 2, timeout=20)
        time.sleep(1.5)
        batches = [sorted(d["id"] for d in i["datas"]) for i in invocations(lb, "partial-sqs-fn")]
        assert batches == [["a", "b", "c"], ["b"]]

        # A BatchSize past 10 gathers receives until the batching window closes.
        url, arn = queue(lb, "bulk-jobs")
        function(lb, "bulk-fn")
        for start in range(0, 40, 10):
            sqs.send_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "MessageBody": json.dumps({"id": i})} for i in range(start, start + 10)])
        lam.create_event_source_mapping(FunctionName="bulk-fn", EventSourceArn=arn, BatchSize=1000,
                                        MaximumBatchingWindowInSeconds=2)
        assert wait_for(lambda: invocations(lb, "bulk-fn"), timeout=20)
        time.sleep(0.5)
        assert [sorted(d["id"] for d in i["datas"]) for i in invocations(lb, "bulk-fn")] == [list(range(40))]

        # A restart mid-queue: what was not deleted is delivered after it, nothing is lost.
        url, arn = queue(lb, "slow-jobs")
        function(lb, "slow-fn")
        for start in range(0, 30, 10):
            sqs.send_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "MessageBody": json.dumps({"id": i})} for i in range(start, start + 10)])
        lam.create_event_source_mapping(FunctionName="slow-fn", EventSourceArn=arn, BatchSize=5)
        assert wait_for(lambda: invocations(lb, "slow-fn"), timeout=20)
        before = {d["id"] for i in invocations(lb, "slow-fn") for d in i["datas"]}
        lb.kill()
        assert len(before) < 30  # killed mid-queue
    with Lakebox(tmp_path) as lb:
        def delivered():
            return {d["id"] for i in invocations(lb, "slow-fn") for d in i["datas"]}
        assert wait_for(lambda: delivered() == set(range(30)), timeout=40)
        sqs = lb.client("sqs")
        url = sqs.get_queue_url(QueueName="slow-jobs")["QueueUrl"]
        assert wait_for(lambda: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
                        ["ApproximateNumberOfMessages"] == "0", timeout=40)
