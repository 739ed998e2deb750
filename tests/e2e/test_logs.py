"""CloudWatch Logs, judged by boto3 and the AWS CLI: log groups and streams, PutLogEvents with
AWS's batch rules, GetLogEvents' forward and backward tokens, FilterLogEvents with each form of
the filter-pattern language, retention really enforced, metric filters read back from
CloudWatch, subscription filters delivering gzip DATA_MESSAGEs into Kinesis and Firehose,
export to S3, and events surviving SIGKILL."""

import gzip
import json
import time

import botocore.exceptions
import pytest

from lakebox_harness import Lakebox, wait_for
from signing import send

DAY = 86_400_000


@pytest.fixture(scope="module")
def lakebox(tmp_path_factory):
    server = Lakebox(tmp_path_factory.mktemp("logs")).start()
    yield server
    server.stop()


@pytest.fixture
def logs(lakebox):
    return lakebox.client("logs")


def now_ms():
    return int(time.time() * 1000)


def code(e):
    return e.value.response["Error"]["Code"]


def make(logs, group, *streams, **kw):
    logs.create_log_group(logGroupName=group, **kw)
    for s in streams:
        logs.create_log_stream(logGroupName=group, logStreamName=s)


def test_groups_and_streams(logs):
    make(logs, "/app/orders", "web-1", "web-2", tags={"team": "shop"},
         kmsKeyId="arn:aws:kms:us-east-1:000000000000:key/1234abcd-12ab-34cd-56ef-1234567890ab")
    make(logs, "/app/payments")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.create_log_group(logGroupName="/app/orders")
    assert code(e) == "ResourceAlreadyExistsException"
    assert e.value.response["Error"]["Message"] == "The specified log group already exists"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.create_log_group(logGroupName="bad:name")
    assert code(e) == "InvalidParameterException"
    assert "Member must satisfy regular expression pattern" in e.value.response["Error"]["Message"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.create_log_group(logGroupName="aws/mine")
    assert code(e) == "InvalidParameterException"

    groups = logs.describe_log_groups(logGroupNamePrefix="/app/")["logGroups"]
    assert [g["logGroupName"] for g in groups] == ["/app/orders", "/app/payments"]
    orders = groups[0]
    assert orders["arn"] == "arn:aws:logs:us-east-1:000000000000:log-group:/app/orders:*"
    assert orders["logGroupArn"] == "arn:aws:logs:us-east-1:000000000000:log-group:/app/orders"
    assert orders["kmsKeyId"].startswith("arn:aws:kms:")
    assert orders["logGroupClass"] == "STANDARD"
    assert orders["storedBytes"] == 0 and "retentionInDays" not in orders
    assert logs.list_tags_for_resource(resourceArn=orders["logGroupArn"])["tags"] == {"team": "shop"}

    # Pagination walks every group once.
    for i in range(5):
        logs.create_log_group(logGroupName=f"/page/g{i}")
    seen = []
    for page in logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix="/page/",
                                                                  PaginationConfig={"PageSize": 2}):
        seen += [g["logGroupName"] for g in page["logGroups"]]
    assert seen == [f"/page/g{i}" for i in range(5)]

    streams = logs.describe_log_streams(logGroupName="/app/orders")["logStreams"]
    assert [s["logStreamName"] for s in streams] == ["web-1", "web-2"]
    assert streams[0]["arn"].endswith(":log-group:/app/orders:log-stream:web-1")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.create_log_stream(logGroupName="/app/orders", logStreamName="web-1")
    assert code(e) == "ResourceAlreadyExistsException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.create_log_stream(logGroupName="/nope", logStreamName="x")
    assert code(e) == "ResourceNotFoundException"
    assert e.value.response["Error"]["Message"] == "The specified log group does not exist."

    logs.put_retention_policy(logGroupName="/app/payments", retentionInDays=7)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.put_retention_policy(logGroupName="/app/payments", retentionInDays=2)
    assert code(e) == "InvalidParameterException"
    assert "Member must satisfy enum value set" in e.value.response["Error"]["Message"]
    logs.tag_resource(resourceArn=orders["logGroupArn"], tags={"env": "dev"})
    logs.untag_log_group(logGroupName="/app/orders", tags=["team"])
    assert logs.list_tags_log_group(logGroupName="/app/orders")["tags"] == {"env": "dev"}
    logs.disassociate_kms_key(logGroupName="/app/orders")
    pay = logs.describe_log_groups(logGroupNamePrefix="/app/pay")["logGroups"][0]
    assert pay["retentionInDays"] == 7

    logs.delete_log_stream(logGroupName="/app/orders", logStreamName="web-2")
    assert [s["logStreamName"] for s in logs.describe_log_streams(logGroupName="/app/orders")["logStreams"]] == ["web-1"]
    logs.delete_log_group(logGroupName="/app/payments")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.delete_log_group(logGroupName="/app/payments")
    assert code(e) == "ResourceNotFoundException"
    # A group made again is empty: nothing of its predecessor comes back.
    make(logs, "/app/payments", "s")
    assert logs.get_log_events(logGroupName="/app/payments", logStreamName="s")["events"] == []


def test_put_and_get_events_with_tokens(logs):
    make(logs, "/get/tokens", "s")
    base = now_ms() - 60_000
    logs.put_log_events(logGroupName="/get/tokens", logStreamName="s",
                        logEvents=[{"timestamp": base + i, "message": f"event {i}"} for i in range(25)])
    # Batches may arrive out of order across calls; reads are by timestamp.
    logs.put_log_events(logGroupName="/get/tokens", logStreamName="s",
                        logEvents=[{"timestamp": base - 10, "message": "early"}])

    head = logs.get_log_events(logGroupName="/get/tokens", logStreamName="s", startFromHead=True, limit=10)
    assert [e["message"] for e in head["events"]] == ["early"] + [f"event {i}" for i in range(9)]
    assert all(e["ingestionTime"] >= e["timestamp"] for e in head["events"])
    messages, token = [e["message"] for e in head["events"]], head["nextForwardToken"]
    while True:
        page = logs.get_log_events(logGroupName="/get/tokens", logStreamName="s", nextToken=token, limit=10)
        messages += [e["message"] for e in page["events"]]
        if page["nextForwardToken"] == token:
            break
        token = page["nextForwardToken"]
    assert messages == ["early"] + [f"event {i}" for i in range(25)]

    # Without startFromHead: the latest events, and a backward token walks back from them.
    tail = logs.get_log_events(logGroupName="/get/tokens", logStreamName="s", limit=5)
    assert [e["message"] for e in tail["events"]] == [f"event {i}" for i in range(20, 25)]
    back = logs.get_log_events(logGroupName="/get/tokens", logStreamName="s", limit=5,
                               nextToken=tail["nextBackwardToken"])
    assert [e["message"] for e in back["events"]] == [f"event {i}" for i in range(15, 20)]
    # A time range: [startTime, endTime).
    ranged = logs.get_log_events(logGroupName="/get/tokens", logStreamName="s", startFromHead=True,
                                 startTime=base + 3, endTime=base + 6)
    assert [e["message"] for e in ranged["events"]] == ["event 3", "event 4", "event 5"]

    stream = logs.describe_log_streams(logGroupName="/get/tokens")["logStreams"][0]
    assert stream["firstEventTimestamp"] == base - 10
    assert stream["lastEventTimestamp"] == base + 24
    expected = sum(len(f"event {i}") + 26 for i in range(25)) + len("early") + 26
    assert stream["storedBytes"] == expected
    group = logs.describe_log_groups(logGroupNamePrefix="/get/tokens")["logGroups"][0]
    assert group["storedBytes"] == expected


def test_put_log_events_batch_rules(logs):
    make(logs, "/put/rules", "s")
    now = now_ms()
    r = logs.put_log_events(logGroupName="/put/rules", logStreamName="s", logEvents=[
        {"timestamp": now - 15 * DAY, "message": "too old"},
        {"timestamp": now - 1000, "message": "kept 1"},
        {"timestamp": now, "message": "kept 2"},
        {"timestamp": now + 3 * 3_600_000, "message": "too new"},
    ])
    assert r["rejectedLogEventsInfo"] == {"tooOldLogEventEndIndex": 0, "tooNewLogEventStartIndex": 3}
    got = logs.get_log_events(logGroupName="/put/rules", logStreamName="s", startFromHead=True)["events"]
    assert [e["message"] for e in got] == ["kept 1", "kept 2"]

    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.put_log_events(logGroupName="/put/rules", logStreamName="s", logEvents=[
            {"timestamp": now, "message": "b"}, {"timestamp": now - 1, "message": "a"}])
    assert code(e) == "InvalidParameterException"
    assert "chronological order" in e.value.response["Error"]["Message"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.put_log_events(logGroupName="/put/rules", logStreamName="s", logEvents=[
            {"timestamp": now - 2 * DAY, "message": "a"}, {"timestamp": now, "message": "b"}])
    assert "24 hours" in e.value.response["Error"]["Message"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.put_log_events(logGroupName="/put/rules", logStreamName="s",
                            logEvents=[{"timestamp": now, "message": "x" * 1000}] * 1100)
    assert code(e) == "InvalidParameterException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.put_log_events(logGroupName="/put/rules", logStreamName="nope",
                            logEvents=[{"timestamp": now, "message": "x"}])
    assert code(e) == "ResourceNotFoundException"
    assert e.value.response["Error"]["Message"] == "The specified log stream does not exist."
    # Nothing of the refused batches was stored.
    got = logs.get_log_events(logGroupName="/put/rules", logStreamName="s", startFromHead=True)["events"]
    assert len(got) == 2


APACHE = [
    '127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /index.html HTTP/1.0" 200 1534',
    '10.0.0.2 - ann [10/Oct/2000:13:25:16 -0700] "GET /missing HTTP/1.0" 404 310',
    '10.0.0.3 - bob [10/Oct/2000:13:25:17 -0700] "POST /pay HTTP/1.0" 500 9000',
]
JSON_EVENTS = [
    {"level": "ERROR", "latency": 250, "user": {"id": 7}, "msg": "payment failed"},
    {"level": "INFO", "latency": 12, "user": {"id": 8}, "msg": "ok"},
    {"level": "WARN", "latency": 900, "user": {"id": 7}, "msg": "slow"},
]


def test_filter_log_events_pattern_language(logs):
    make(logs, "/filter/app", "access", "json", "text")
    t = now_ms() - 10_000
    logs.put_log_events(logGroupName="/filter/app", logStreamName="access",
                        logEvents=[{"timestamp": t + i, "message": m} for i, m in enumerate(APACHE)])
    logs.put_log_events(logGroupName="/filter/app", logStreamName="json",
                        logEvents=[{"timestamp": t + 10 + i, "message": json.dumps(m)} for i, m in enumerate(JSON_EVENTS)])
    logs.put_log_events(logGroupName="/filter/app", logStreamName="text", logEvents=[
        {"timestamp": t + 20, "message": "[ERROR] disk full on /dev/sda"},
        {"timestamp": t + 21, "message": "[WARN] disk at 85%"},
        {"timestamp": t + 22, "message": "[INFO] all good"},
    ])

    def messages(pattern, **kw):
        out = []
        for page in logs.get_paginator("filter_log_events").paginate(
                logGroupName="/filter/app", filterPattern=pattern, **kw):
            out += [e["message"] for e in page["events"]]
        return out

    assert len(messages("")) == 9
    # Terms, any-of, exclusion, phrases, regex.
    assert messages("ERROR") == [json.dumps(JSON_EVENTS[0]), "[ERROR] disk full on /dev/sda"]
    assert messages("?ERROR ?WARN", logStreamNames=["text"]) == ["[ERROR] disk full on /dev/sda", "[WARN] disk at 85%"]
    assert messages("disk -ERROR") == ["[WARN] disk at 85%"]
    assert messages('"all good"') == ["[INFO] all good"]
    assert messages("%disk at [0-9]+%") == ["[WARN] disk at 85%"]
    # JSON patterns.
    assert [json.loads(m)["msg"] for m in messages('{ $.level = "ERROR" }')] == ["payment failed"]
    assert [json.loads(m)["msg"] for m in messages("{ $.latency > 200 && $.user.id = 7 }")] == ["payment failed", "slow"]
    assert [json.loads(m)["msg"] for m in messages("{ ($.level = W*) || ($.latency < 20) }")] == ["ok", "slow"]
    assert messages("{ $.missing NOT EXISTS && $.level = \"INFO\" }") == [json.dumps(JSON_EVENTS[1])]
    # Space-delimited patterns.
    assert messages("[ip, id, user, timestamp, request, status_code = 404, bytes]") == [APACHE[1]]
    assert messages("[..., status_code = 5*, bytes > 1000]") == [APACHE[2]]
    assert messages("[ip = 10.0.*, ..., status = 404 || status = 500, bytes]") == APACHE[1:]
    # Streams by prefix, a time range (endTime inclusive), paging by limit.
    assert messages("", logStreamNamePrefix="tex") == ["[ERROR] disk full on /dev/sda", "[WARN] disk at 85%", "[INFO] all good"]
    assert messages("", startTime=t + 1, endTime=t + 2) == APACHE[1:]
    page = logs.filter_log_events(logGroupName="/filter/app", limit=4)
    assert len(page["events"]) == 4 and "nextToken" in page
    assert page["events"][0]["logStreamName"] == "access" and len(page["events"][0]["eventId"]) == 56
    assert messages("", PaginationConfig={"PageSize": 2}) == messages("")

    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.filter_log_events(logGroupName="/filter/app", filterPattern="{ $.level = ")
    assert code(e) == "InvalidParameterException"


def test_retention_is_enforced(tmp_path):
    with Lakebox(tmp_path) as lb:
        logs = lb.client("logs")
        make(logs, "/ret/short", "s")
        now = now_ms()
        logs.put_log_events(logGroupName="/ret/short", logStreamName="s", logEvents=[
            {"timestamp": now - 3 * DAY, "message": "three days old"},
            {"timestamp": now - 3 * DAY + 1, "message": "also old"}])
        logs.put_log_events(logGroupName="/ret/short", logStreamName="s",
                            logEvents=[{"timestamp": now, "message": "fresh"}])
        logs.put_retention_policy(logGroupName="/ret/short", retentionInDays=1)
        got = logs.get_log_events(logGroupName="/ret/short", logStreamName="s", startFromHead=True)["events"]
        assert [e["message"] for e in got] == ["fresh"]
        assert [e["message"] for e in logs.filter_log_events(logGroupName="/ret/short")["events"]] == ["fresh"]
        # Events older than the retention are refused as expired.
        r = logs.put_log_events(logGroupName="/ret/short", logStreamName="s",
                                logEvents=[{"timestamp": now - 2 * DAY, "message": "late"},
                                           {"timestamp": now, "message": "on time"}])
        assert r["rejectedLogEventsInfo"] == {"expiredLogEventEndIndex": 0}
        # Two days on, the fresh event has expired too.
        assert send(lb.endpoint, "POST", f"/_lakebox/test/clock?advance_ms={2 * DAY}")[0] == 200
        assert logs.get_log_events(logGroupName="/ret/short", logStreamName="s", startFromHead=True)["events"] == []
        assert logs.describe_log_groups(logGroupNamePrefix="/ret/")["logGroups"][0]["storedBytes"] == 0
        # Removing the policy keeps what is left for ever.
        logs.delete_retention_policy(logGroupName="/ret/short")
        assert "retentionInDays" not in logs.describe_log_groups(logGroupNamePrefix="/ret/")["logGroups"][0]


def test_events_survive_sigkill(tmp_path):
    lb = Lakebox(tmp_path).start()
    try:
        logs = lb.client("logs")
        make(logs, "/durable", "a", "b")
        base = now_ms() - 1000
        for i in range(20):
            logs.put_log_events(logGroupName="/durable", logStreamName="a" if i % 2 else "b",
                                logEvents=[{"timestamp": base + i, "message": f"m{i}"}])
        logs.put_retention_policy(logGroupName="/durable", retentionInDays=30)
        logs.delete_log_stream(logGroupName="/durable", logStreamName="b")
        logs.create_log_stream(logGroupName="/durable", logStreamName="b")
    finally:
        lb.kill()
    with Lakebox(tmp_path) as lb:
        logs = lb.client("logs")
        got = logs.get_log_events(logGroupName="/durable", logStreamName="a", startFromHead=True)["events"]
        assert [e["message"] for e in got] == [f"m{i}" for i in range(1, 20, 2)]
        # The stream deleted and made again does not get its predecessor's events back.
        assert logs.get_log_events(logGroupName="/durable", logStreamName="b", startFromHead=True)["events"] == []
        assert logs.describe_log_groups(logGroupNamePrefix="/durable")["logGroups"][0]["retentionInDays"] == 30


def test_a_stream_written_out_of_time_order_reads_back_whole_after_a_restart(tmp_path):
    """Writers whose batches interleave in time leave a stream's events spread over their
    batches; at start (and each minute) such a stream's messages are rewritten in time order.
    Every event must read back as written, in order, before and after."""
    base = now_ms() - 3_600_000
    batches = [[{"timestamp": base + i * 10, "message": json.dumps({"w": w, "i": i, "pad": "é" * (i % 5)})}
                for i in range(1000)] for w in range(70)]
    want = [(e["timestamp"], e["message"]) for i in range(1000) for e in (b[i] for b in batches)]

    def read_all(logs):
        got, token = [], None
        while True:
            kw = {"nextToken": token} if token else {}
            page = logs.filter_log_events(logGroupName="/scattered", **kw)
            got += [(e["timestamp"], e["message"]) for e in page["events"]]
            token = page.get("nextToken")
            if not token:
                return got

    lb = Lakebox(tmp_path).start()
    try:
        logs = lb.client("logs")
        make(logs, "/scattered", "s")
        for b in batches:
            logs.put_log_events(logGroupName="/scattered", logStreamName="s", logEvents=b)
        assert read_all(logs) == want
    finally:
        lb.stop()
    with Lakebox(tmp_path) as lb:
        logs = lb.client("logs")
        assert read_all(logs) == want
        rows, _, _ = insights(logs, "filter i >= 990 | stats count(*) as n, sum(w) as s", "/scattered",
                              base // 1000 - 60, base // 1000 + 3600)
        assert rows == [{"n": "700", "s": str(10 * sum(range(70)))}]
        got = logs.get_log_events(logGroupName="/scattered", logStreamName="s", startFromHead=True, limit=5)["events"]
        assert [e["message"] for e in got] == [m for _, m in want[:5]]


def test_metric_filters_publish_to_cloudwatch(tmp_path):
    with Lakebox(tmp_path, "--cloudwatch-service-metrics-ms", "200") as lb:
        logs, cw = lb.client("logs"), lb.client("cloudwatch")
        make(logs, "/mf/api", "s")
        logs.put_metric_filter(
            logGroupName="/mf/api", filterName="latency", filterPattern="{ $.latency > 0 }",
            metricTransformations=[{"metricName": "Latency", "metricNamespace": "Shop", "metricValue": "$.latency",
                                    "unit": "Milliseconds", "dimensions": {"Level": "$.level"}}])
        logs.put_metric_filter(
            logGroupName="/mf/api", filterName="errors", filterPattern="ERROR",
            metricTransformations=[{"metricName": "Errors", "metricNamespace": "Shop", "metricValue": "1",
                                    "defaultValue": 0.0}])
        with pytest.raises(botocore.exceptions.ClientError) as e:
            logs.put_metric_filter(logGroupName="/mf/api", filterName="bad", filterPattern="{ $.x = ",
                                   metricTransformations=[{"metricName": "X", "metricNamespace": "Shop", "metricValue": "1"}])
        assert code(e) == "InvalidParameterException"
        filters = logs.describe_metric_filters(logGroupName="/mf/api")["metricFilters"]
        assert [f["filterName"] for f in filters] == ["errors", "latency"]
        assert logs.describe_metric_filters(metricName="Latency", metricNamespace="Shop")["metricFilters"][0]["filterName"] == "latency"
        assert logs.describe_log_groups(logGroupNamePrefix="/mf/")["logGroups"][0]["metricFilterCount"] == 2

        now = now_ms()
        logs.put_log_events(logGroupName="/mf/api", logStreamName="s", logEvents=[
            {"timestamp": now, "message": json.dumps({"level": "ERROR", "latency": 120})},
            {"timestamp": now, "message": json.dumps({"level": "ERROR", "latency": 80})},
            {"timestamp": now, "message": json.dumps({"level": "INFO", "latency": 10})}])
        import datetime
        utc = datetime.timezone.utc
        span = dict(StartTime=datetime.datetime.now(utc) - datetime.timedelta(minutes=5),
                    EndTime=datetime.datetime.now(utc) + datetime.timedelta(minutes=2), Period=600)

        def stat(name, statistic, dims=()):
            points = cw.get_metric_statistics(Namespace="Shop", MetricName=name, Statistics=[statistic],
                                              Dimensions=list(dims), **span)["Datapoints"]
            return points[0] if points else None
        p = wait_for(lambda: stat("Latency", "Sum", [{"Name": "Level", "Value": "ERROR"}]))
        assert p["Sum"] == 200.0 and p["Unit"] == "Milliseconds"
        assert stat("Latency", "Maximum", [{"Name": "Level", "Value": "INFO"}])["Maximum"] == 10.0
        assert wait_for(lambda: (stat("Errors", "Sum") or {}).get("Sum") == 2.0)

        test = logs.test_metric_filter(filterPattern="[ip, user, status = 4*, bytes]",
                                       logEventMessages=["1.2.3.4 ann 404 10", "1.2.3.4 bob 200 5", "short"])
        assert test["matches"] == [{"eventNumber": 1, "eventMessage": "1.2.3.4 ann 404 10",
                                    "extractedValues": {"$ip": "1.2.3.4", "$user": "ann", "$status": "404", "$bytes": "10"}}]
        logs.delete_metric_filter(logGroupName="/mf/api", filterName="errors")
        assert [f["filterName"] for f in logs.describe_metric_filters(logGroupName="/mf/api")["metricFilters"]] == ["latency"]


def read_kinesis(kinesis, stream, want, timeout=10.0):
    shard = kinesis.list_shards(StreamName=stream)["Shards"][0]["ShardId"]
    it = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    records = []
    deadline = time.time() + timeout
    while len(records) < want and time.time() < deadline:
        r = kinesis.get_records(ShardIterator=it)
        records += r["Records"]
        it = r["NextShardIterator"]
        time.sleep(0.1)
    return [json.loads(gzip.decompress(r["Data"])) for r in records]


def test_subscription_filter_into_kinesis(tmp_path):
    with Lakebox(tmp_path) as lb:
        logs, kinesis = lb.client("logs"), lb.client("kinesis")
        kinesis.create_stream(StreamName="log-feed", ShardCount=1)
        kinesis.get_waiter("stream_exists").wait(StreamName="log-feed", WaiterConfig={"Delay": 0.2})
        arn = kinesis.describe_stream_summary(StreamName="log-feed")["StreamDescriptionSummary"]["StreamARN"]
        make(logs, "/sub/orders", "web-1")
        logs.put_log_events(logGroupName="/sub/orders", logStreamName="web-1",
                            logEvents=[{"timestamp": now_ms(), "message": "ERROR before the subscription"}])
        logs.put_subscription_filter(logGroupName="/sub/orders", filterName="errors", filterPattern="ERROR",
                                     destinationArn=arn, roleArn="arn:aws:iam::000000000000:role/cwl")
        with pytest.raises(botocore.exceptions.ClientError) as e:
            logs.put_subscription_filter(logGroupName="/sub/orders", filterName="gone", filterPattern="",
                                         destinationArn="arn:aws:kinesis:us-east-1:000000000000:stream/missing")
        assert code(e) == "InvalidParameterException"
        got = logs.describe_subscription_filters(logGroupName="/sub/orders")["subscriptionFilters"]
        assert [(f["filterName"], f["destinationArn"], f["distribution"]) for f in got] == [("errors", arn, "ByLogStream")]

        t = now_ms()
        logs.put_log_events(logGroupName="/sub/orders", logStreamName="web-1", logEvents=[
            {"timestamp": t, "message": "ERROR one"}, {"timestamp": t + 1, "message": "INFO skip"},
            {"timestamp": t + 2, "message": "ERROR two"}])
        docs = read_kinesis(kinesis, "log-feed", want=2)
        control = [d for d in docs if d["messageType"] == "CONTROL_MESSAGE"]
        data = [d for d in docs if d["messageType"] == "DATA_MESSAGE"]
        assert len(control) == 1 and control[0]["owner"] == "CloudWatchLogs"
        assert len(data) == 1
        d = data[0]
        assert d["owner"] == "000000000000" and d["logGroup"] == "/sub/orders" and d["logStream"] == "web-1"
        assert d["subscriptionFilters"] == ["errors"]
        assert [(e["timestamp"], e["message"]) for e in d["logEvents"]] == [(t, "ERROR one"), (t + 2, "ERROR two")]
        assert all(len(e["id"]) == 56 for e in d["logEvents"])

        logs.delete_subscription_filter(logGroupName="/sub/orders", filterName="errors")
        assert logs.describe_subscription_filters(logGroupName="/sub/orders")["subscriptionFilters"] == []


def test_subscription_filter_into_firehose_lands_in_s3(tmp_path):
    with Lakebox(tmp_path) as lb:
        logs, firehose, s3 = lb.client("logs"), lb.client("firehose"), lb.client("s3")
        s3.create_bucket(Bucket="log-archive")
        arn = firehose.create_delivery_stream(
            DeliveryStreamName="to-s3", DeliveryStreamType="DirectPut",
            ExtendedS3DestinationConfiguration={
                "BucketARN": "arn:aws:s3:::log-archive", "RoleARN": "arn:aws:iam::000000000000:role/f",
                "BufferingHints": {"IntervalInSeconds": 0, "SizeInMBs": 1}})["DeliveryStreamARN"]
        wait_for(lambda: firehose.describe_delivery_stream(DeliveryStreamName="to-s3")
                 ["DeliveryStreamDescription"]["DeliveryStreamStatus"] == "ACTIVE")
        make(logs, "/sub/fh", "s")
        logs.put_subscription_filter(logGroupName="/sub/fh", filterName="all", filterPattern="",
                                     destinationArn=arn, roleArn="arn:aws:iam::000000000000:role/cwl")
        logs.put_log_events(logGroupName="/sub/fh", logStreamName="s",
                            logEvents=[{"timestamp": now_ms(), "message": "to the lake"}])

        def landed():
            keys = [o["Key"] for o in s3.list_objects_v2(Bucket="log-archive").get("Contents", [])]
            docs = []
            for k in keys:
                body = s3.get_object(Bucket="log-archive", Key=k)["Body"].read()
                # Each record is one gzip member; Firehose concatenates them.
                docs += [json.loads(line) for line in gzip.decompress(body).decode().replace("}{", "}\n{").splitlines()]
            return [d for d in docs if d["messageType"] == "DATA_MESSAGE"]
        data = wait_for(landed, timeout=15)
        assert data and data[0]["logEvents"][0]["message"] == "to the lake"


def test_export_to_s3(logs, lakebox):
    s3 = lakebox.client("s3")
    s3.create_bucket(Bucket="exports")
    make(logs, "/export/app", "a", "b")
    t = now_ms() - 5000
    logs.put_log_events(logGroupName="/export/app", logStreamName="a",
                        logEvents=[{"timestamp": t + i, "message": f"a{i}"} for i in range(3)])
    logs.put_log_events(logGroupName="/export/app", logStreamName="b",
                        logEvents=[{"timestamp": t + 100, "message": "b0"}])
    task = logs.create_export_task(logGroupName="/export/app", fromTime=t, to=t + 1, destination="exports",
                                   destinationPrefix="logs")["taskId"]
    done = wait_for(lambda: [x for x in logs.describe_export_tasks(taskId=task)["exportTasks"]
                             if x["status"]["code"] == "COMPLETED"])
    assert done and done[0]["logGroupName"] == "/export/app" and done[0]["destinationPrefix"] == "logs"
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="exports")["Contents"]}
    assert keys == {"logs/aws-logs-write-test", f"logs/{task}/a/000000.gz"}
    lines = gzip.decompress(s3.get_object(Bucket="exports", Key=f"logs/{task}/a/000000.gz")["Body"].read()).decode().splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == ["a0", "a1"]
    assert lines[0].split(" ", 1)[0].endswith("Z")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.create_export_task(logGroupName="/export/app", fromTime=t, to=t + 1, destination="no-such-bucket")
    assert code(e) == "InvalidParameterException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.cancel_export_task(taskId=task)
    assert code(e) == "InvalidOperationException"


def test_aws_cli_tail_of_a_group(lakebox):
    r = lakebox.cli("logs", "create-log-group", "--log-group-name", "/cli/app")
    assert r.returncode == 0, r.stderr
    lakebox.cli("logs", "create-log-stream", "--log-group-name", "/cli/app", "--log-stream-name", "s")
    r = lakebox.cli("logs", "put-log-events", "--log-group-name", "/cli/app", "--log-stream-name", "s",
                    "--log-events", f"timestamp={now_ms()},message=hello-from-cli")
    assert r.returncode == 0, r.stderr
    r = lakebox.cli("logs", "filter-log-events", "--log-group-name", "/cli/app", "--filter-pattern", "hello")
    assert r.returncode == 0, r.stderr
    assert [e["message"] for e in json.loads(r.stdout)["events"]] == ["hello-from-cli"]


def insights(logs, query, group, start, end, **kw):
    qid = logs.start_query(logGroupName=group, startTime=start, endTime=end, queryString=query, **kw)["queryId"]
    r = wait_for(lambda: (lambda x: x if x["status"] in ("Complete", "Failed", "Cancelled") else None)(
        logs.get_query_results(queryId=qid)))
    assert r and r["status"] == "Complete", r
    return [{f["field"]: f["value"] for f in row} for row in r["results"]], r["statistics"], qid


def two_streams_of_many(logs, group, n):
    """A group whose streams `a` and `b` hold `n` JSON events between them (two in three in
    `a`), stamped from an hour ago: (the first timestamp, each stream's (timestamp, message)
    list in order). Pairs of events share a timestamp, so ties must break by arrival."""
    make(logs, group, "a", "b")
    base = now_ms() - 3_600_000
    events = {"a": [], "b": []}
    for i in range(n):
        stream = "a" if i % 3 else "b"
        t = base + (i // 2) * 10 + (0 if stream == "a" else 5)
        events[stream].append((t, {"seq": i, "k": f"k{i % 7}", "v": (i * 37) % 1000, "pad": "x" * 40}))
    for stream, evs in events.items():
        for at in range(0, len(evs), 1000):
            logs.put_log_events(logGroupName=group, logStreamName=stream,
                                logEvents=[{"timestamp": t, "message": json.dumps(m)} for t, m in evs[at:at + 1000]])
    return base, events


def test_logs_insights_over_many_chunks_agrees_with_a_plain_computation(logs):
    """40,000 events: Insights reads them in chunks on every core and puts the chunks'
    results together; every aggregate, the newest rows and the sorted rows must equal what a
    single pass computes (here in Python)."""
    base, events = two_streams_of_many(logs, "/insights/many", 40_000)
    # An escaped spelling of k3 (still k3 once parsed) and a message that is not JSON.
    logs.put_log_events(logGroupName="/insights/many", logStreamName="b", logEvents=[
        {"timestamp": base + 500_000, "message": '{"seq": 90000, "k": "k\\u0033", "v": 1}'},
        {"timestamp": base + 500_001, "message": '{"seq": 90001, "k": "k3", "v": 1'}])
    start, end = base // 1000 - 60, base // 1000 + 3600
    everything = [(t, m) for evs in events.values() for t, m in evs] + [(base + 500_000, {"seq": 90000, "k": "k3", "v": 1})]

    rows, stats, _ = insights(logs, "stats count(*) as n, sum(v) as total, min(v) as lo, max(v) as hi, "
                                    "count_distinct(v) as kinds, earliest(seq) as first, latest(seq) as last, "
                                    "pct(v, 50) as median by k | sort k", "/insights/many", start, end)
    assert stats["recordsScanned"] == 40_002.0 and stats["recordsMatched"] == 40_002.0
    # The message that is not JSON has no k: its group has no k either.
    assert [r["n"] for r in rows if "k" not in r] == ["1"]
    rows = [r for r in rows if "k" in r]
    assert [r["k"] for r in rows] == [f"k{i}" for i in range(7)]
    for r in rows:
        mine = [(t, m) for t, m in everything if m["k"] == r["k"]]
        values = sorted(m["v"] for _, m in mine)
        # Scan order: stream a's events, then b's, each by (timestamp, arrival).
        ordered = sorted(mine, key=lambda e: e[0])
        first_t, last_t = ordered[0][0], ordered[-1][0]
        assert r["n"] == str(len(mine)) and r["total"] == str(sum(values)), r
        assert r["lo"] == str(values[0]) and r["hi"] == str(values[-1]), r
        assert r["kinds"] == str(len(set(values))), r
        assert r["median"] == str(values[(len(values) + 1) // 2 - 1]), r
        assert int(r["first"]) in {m["seq"] for t, m in mine if t == first_t}, r
        assert int(r["last"]) in {m["seq"] for t, m in mine if t == last_t}, r
    # The raw-text shortcut of an equality filter keeps the escaped spelling.
    rows, _, _ = insights(logs, 'filter k = "k3" | stats count(*) as n', "/insights/many", start, end)
    assert rows == [{"n": str(sum(1 for _, m in everything if m["k"] == "k3"))}]
    rows, _, _ = insights(logs, "fields seq | sort seq desc | limit 5", "/insights/many", start, end)
    assert [r["seq"] for r in rows] == ["90000", "39999", "39998", "39997", "39996"]
    rows, _, _ = insights(logs, "fields seq, v | limit 3", "/insights/many", start, end)
    # The newest is the message that is not JSON: a row with no seq.
    newest = sorted(everything, key=lambda e: -e[0])[:2]
    assert [r.get("seq") for r in rows] == [None] + [str(m["seq"]) for _, m in newest]
    # Newest first with equal timestamps in the order of arrival, past a filter, and the
    # 10,000 rows of a query without a limit.
    order = sorted(((t, 0 if s == "a" else 1, i, m) for s, evs in events.items() for i, (t, m) in enumerate(evs)),
                   key=lambda e: (-e[0], e[1], e[2]))
    rows, stats, _ = insights(logs, "filter v > 990 | fields seq, @message | sort @timestamp desc | limit 4",
                              "/insights/many", start, end)
    wanted = [m for _, _, _, m in order if m["v"] > 990]
    assert [int(r["seq"]) for r in rows] == [m["seq"] for m in wanted[:4]]
    assert json.loads(rows[0]["@message"])["seq"] == wanted[0]["seq"]
    assert stats["recordsMatched"] == float(len(wanted))
    rows, stats, _ = insights(logs, "fields seq", "/insights/many", start, end)
    assert len(rows) == 10_000 and stats["recordsMatched"] == 40_002.0
    assert [r.get("seq") for r in rows[2:]] == [str(m["seq"]) for _, _, _, m in order[:9_998]]


def test_filter_log_events_over_many_chunks_pages_in_order(logs):
    """50,000 events in two streams: FilterLogEvents matches them in chunks on every core, a
    stream's chunks no longer read once it has a page's worth; every page, followed by its
    token, must be what one pass over the events in (timestamp, arrival) order gives."""
    _, events = two_streams_of_many(logs, "/filter/many", 50_000)
    timed = sorted((t, i, m["seq"], m) for evs in events.values() for i, (t, m) in enumerate(evs))
    order = [m for _, _, _, m in timed]

    def pages(pattern, size):
        got = []
        for page in logs.get_paginator("filter_log_events").paginate(
                logGroupName="/filter/many", filterPattern=pattern, PaginationConfig={"PageSize": size}):
            assert len(page["events"]) <= size
            got.append([json.loads(e["message"])["seq"] for e in page["events"]])
        return got

    wanted = [m["seq"] for m in order if m["v"] > 990]
    got = pages("{ $.v > 990 }", 100)
    assert [s for p in got for s in p] == wanted and len(got) == -(-len(wanted) // 100)
    # Every event, in pages full by count (10,000) or by size (1 MB counting 26 bytes an event),
    # the oldest of both streams first.
    got = pages("", 10_000)
    assert [s for p in got for s in p] == [m["seq"] for m in order]
    size = {m["seq"]: len(json.dumps(m)) + 26 for m in order}
    for p, after in zip(got, got[1:]):
        used = sum(size[s] for s in p)
        assert len(p) == 10_000 or (used <= 1_048_576 < used + size[after[0]]), (len(p), used)
    # The newest events only, by a time range inside the last chunk.
    since = timed[-1][0] - 20
    page = logs.filter_log_events(logGroupName="/filter/many", filterPattern='"seq"', startTime=since)
    newest = [m["seq"] for t, _, _, m in timed if t >= since]
    assert [json.loads(e["message"])["seq"] for e in page["events"]] == newest and 3 <= len(newest) < 10


def test_json_fields_of_messages_broken_after_them(logs):
    """A search reads a JSON message only until nothing after can hold the fields it compares;
    a message whose JSON breaks after them is still not JSON: it matches no JSON pattern, and
    to Insights it has no fields at all."""
    make(logs, "/json/broken", "s")
    t = now_ms() - 10_000
    messages = [
        '{"id": -1, "note": "fine"}',
        '{"id": -2, "note": [1, 2}',
        '{"id": 3, "note": [1, 2}',
        '{"id": 4, "note": "fine"}',
        '{"id": 5, "note": "x", "id": -5}',
        '{"id": -6, "note": "a \\"id\\": 6"}',
        '{"n": 1, "note": [1, 2}',
    ]
    logs.put_log_events(logGroupName="/json/broken", logStreamName="s",
                        logEvents=[{"timestamp": t + i, "message": m} for i, m in enumerate(messages)])

    def matched(pattern):
        return [e["message"] for e in logs.filter_log_events(logGroupName="/json/broken", filterPattern=pattern)["events"]]

    assert matched("{ $.id < 0 }") == [messages[0], messages[4], messages[5]]
    assert matched("{ $.id >= 0 }") == [messages[3]]
    assert matched("{ $.id = 3 || $.n = 1 }") == []

    def count(query):
        rows, _, _ = insights(logs, f"{query} | stats count(*) as n", "/json/broken", t // 1000 - 60, t // 1000 + 60)
        return int(rows[0]["n"])

    assert count("filter id < 0") == 3
    assert count("filter id >= 0") == 1
    # The broken messages have no `id`: a filter they pass without one keeps them.
    assert count("filter not ispresent(id)") == 3
    assert count("filter not (id < 0)") == 4
    rows, _, _ = insights(logs, "filter not ispresent(id) | fields @message", "/json/broken", t // 1000 - 60, t // 1000 + 60)
    assert sorted(r["@message"] for r in rows) == sorted([messages[1], messages[2], messages[6]])
    # Fields read after the first filter (`note`) are read from the kept messages in the same
    # pass that checks them as JSON: a broken one kept by its `id` alone is dropped.
    window = (t // 1000 - 60, t // 1000 + 60)
    rows, _, _ = insights(logs, "filter id < 0 | fields note", "/json/broken", *window)
    assert sorted(r["note"] for r in rows) == sorted(["fine", "x", 'a "id": 6'])
    rows, _, _ = insights(logs, "filter id >= 0 | stats count(*) as n by note", "/json/broken", *window)
    assert [(r["note"], r["n"]) for r in rows] == [("fine", "1")]


def test_logs_insights_queries(logs):
    make(logs, "/insights/api", "web-1", "web-2")
    base = (now_ms() // 300_000) * 300_000 - 600_000  # two five-minute bins ago
    events = [
        (base + 1_000, {"level": "ERROR", "latency": 120, "path": "/pay", "user": {"id": "u1"}}),
        (base + 2_000, {"level": "INFO", "latency": 20, "path": "/home", "user": {"id": "u2"}}),
        (base + 3_000, {"level": "ERROR", "latency": 300, "path": "/pay", "user": {"id": "u1"}}),
        (base + 301_000, {"level": "WARN", "latency": 80, "path": "/cart", "user": {"id": "u3"}}),
        (base + 302_000, {"level": "INFO", "latency": 10, "path": "/home", "user": {"id": "u2"}}),
    ]
    logs.put_log_events(logGroupName="/insights/api", logStreamName="web-1",
                        logEvents=[{"timestamp": t, "message": json.dumps(m)} for t, m in events[:3]])
    logs.put_log_events(logGroupName="/insights/api", logStreamName="web-2",
                        logEvents=[{"timestamp": t, "message": json.dumps(m)} for t, m in events[3:]] +
                                  [{"timestamp": base + 303_000, "message": "user=u9 action=login took=15ms"}])
    start, end = base // 1000 - 60, (base + 600_000) // 1000

    rows, stats, _ = insights(logs, "fields @timestamp, level, latency | filter level = 'ERROR' | sort latency desc",
                              "/insights/api", start, end)
    assert [(r["level"], r["latency"]) for r in rows] == [("ERROR", "300"), ("ERROR", "120")]
    assert rows[0]["@timestamp"].count(":") == 2 and "." in rows[0]["@timestamp"] and "T" not in rows[0]["@timestamp"]
    assert all("@ptr" in r for r in rows)
    assert stats["recordsScanned"] == 6.0 and stats["recordsMatched"] == 2.0

    rows, _, _ = insights(logs, "stats count(*) as n, avg(latency) as avg_latency, max(latency) by level | sort level",
                          "/insights/api", start, end)
    by_level = {r.get("level"): r for r in rows}
    assert by_level["ERROR"]["n"] == "2" and by_level["ERROR"]["avg_latency"] == "210"
    assert by_level["INFO"]["max(latency)"] == "20" and by_level["WARN"]["n"] == "1"

    rows, _, _ = insights(logs, "filter ispresent(latency) | stats count(*) by bin(5m)", "/insights/api", start, end)
    counts = sorted((r["bin(5m)"], r["count(*)"]) for r in rows)
    assert [c for _, c in counts] == ["3", "2"]
    assert counts[0][0].endswith(":00.000")

    rows, _, _ = insights(logs, "stats count_distinct(user.id) as users, pct(latency, 50) as p50, sum(latency) as total",
                          "/insights/api", start, end)
    assert rows == [{"users": "3", "p50": "80", "total": "530"}]

    rows, _, _ = insights(logs, 'parse @message "user=* action=* took=*ms" as who, action, ms | filter ispresent(who) '
                                '| display who, action, ms', "/insights/api", start, end)
    assert [(r["who"], r["action"], r["ms"]) for r in rows] == [("u9", "login", "15")]
    rows, _, _ = insights(logs, "parse @message /user=(?<who>\\S+)/ | filter who like /u9/ | fields who",
                          "/insights/api", start, end)
    assert [r["who"] for r in rows] == ["u9"]

    rows, _, _ = insights(logs, "filter level in ['INFO', 'WARN'] | fields path | dedup path | sort path",
                          "/insights/api", start, end)
    assert [r["path"] for r in rows] == ["/cart", "/home"]
    rows, _, _ = insights(logs, "fields @message | filter @logStream = 'web-2' | limit 2", "/insights/api", start, end)
    assert len(rows) == 2
    # A time range that holds nothing; a query that does not compile.
    rows, stats, _ = insights(logs, "fields @message", "/insights/api", start - 7200, start - 3600)
    assert rows == [] and stats["recordsScanned"] == 0.0
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.start_query(logGroupName="/insights/api", startTime=start, endTime=end, queryString="bogus | x")
    assert code(e) == "MalformedQueryException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.start_query(logGroupName="/insights/none", startTime=start, endTime=end, queryString="fields @message")
    assert code(e) == "ResourceNotFoundException"
    listed = logs.describe_queries(logGroupName="/insights/api")["queries"]
    assert len(listed) >= 8 and all(q["status"] == "Complete" for q in listed)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.stop_query(queryId=listed[0]["queryId"])
    assert code(e) == "InvalidParameterException"


def test_live_tail_streams_new_events(lakebox, logs):
    import threading
    make(logs, "/tail/app", "web-1", "worker-1")
    arn = logs.describe_log_groups(logGroupNamePrefix="/tail/app")["logGroups"][0]["logGroupArn"]
    # Live Tail's endpoint has a host prefix (`stream-`) that a local endpoint cannot carry.
    tailer = lakebox.client("logs", inject_host_prefix=False, read_timeout=30)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        tailer.start_live_tail(logGroupIdentifiers=[arn], logEventFilterPattern="{ $.x = ")
    assert code(e) == "InvalidParameterException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        tailer.start_live_tail(logGroupIdentifiers=[arn.replace("/tail/app", "/tail/none")])
    assert code(e) == "ResourceNotFoundException"

    stream = tailer.start_live_tail(logGroupIdentifiers=[arn], logStreamNamePrefixes=["web"],
                                    logEventFilterPattern="ERROR")["responseStream"]
    seen, starts = [], []

    def read():
        for event in stream:
            if "sessionStart" in event:
                starts.append(event["sessionStart"])
            for r in event.get("sessionUpdate", {}).get("sessionResults", []):
                seen.append(r)
            if len(seen) >= 2:
                return
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    time.sleep(0.5)
    t = now_ms()
    logs.put_log_events(logGroupName="/tail/app", logStreamName="web-1", logEvents=[
        {"timestamp": t, "message": "ERROR first"}, {"timestamp": t + 1, "message": "INFO skipped"}])
    logs.put_log_events(logGroupName="/tail/app", logStreamName="worker-1",
                        logEvents=[{"timestamp": t, "message": "ERROR other stream"}])
    logs.put_log_events(logGroupName="/tail/app", logStreamName="web-1",
                        logEvents=[{"timestamp": t + 2, "message": "ERROR second"}])
    reader.join(timeout=10)
    stream.close()
    assert starts and starts[0]["logGroupIdentifiers"] == [arn] and starts[0]["logStreamNamePrefixes"] == ["web"]
    assert [(r["logStreamName"], r["message"], r["timestamp"]) for r in seen] == [
        ("web-1", "ERROR first", t), ("web-1", "ERROR second", t + 2)]
    assert all(r["logGroupIdentifier"] == arn and r["ingestionTime"] >= t for r in seen)
