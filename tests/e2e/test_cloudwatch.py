"""CloudWatch metrics and dashboards, judged by boto3 and the AWS CLI over each of CloudWatch's
protocols: awsJson 1.0 (boto3's choice today), smithy rpc-v2-cbor (today's Java and JavaScript
SDKs; botocore speaks it when the model lists it first) and awsQuery (older SDKs). The data
that comes back is asserted: statistics, percentiles, units, resolutions, paging, restarts."""

import datetime
import gzip
import json
import os
import tempfile
import time
import urllib.parse

import boto3
import botocore
import botocore.exceptions
import botocore.session
import pytest

from lakebox_harness import Lakebox, wait_for
from signing import signed_request

UTC = datetime.timezone.utc


@pytest.fixture(scope="module")
def lakebox(tmp_path_factory):
    server = Lakebox(tmp_path_factory.mktemp("cloudwatch")).start()
    yield server
    server.stop()


def client_speaking(lakebox, protocol):
    """A botocore CloudWatch client whose model lists only `protocol`: botocore's own
    serializers and parsers for rpc-v2-cbor, awsJson and awsQuery."""
    src = os.path.join(os.path.dirname(botocore.__file__), "data", "cloudwatch", "2010-08-01", "service-2.json.gz")
    model = json.load(gzip.open(src))
    model["metadata"] = dict(model["metadata"], protocol=protocol, protocols=[protocol])
    # The model is read when the client is made, so its folder goes with the `with`.
    with tempfile.TemporaryDirectory() as root:
        os.makedirs(os.path.join(root, "cloudwatch", "2010-08-01"))
        with open(os.path.join(root, "cloudwatch", "2010-08-01", "service-2.json"), "w") as f:
            json.dump(model, f)
        session = botocore.session.Session()
        session.get_component("data_loader").search_paths.insert(0, root)
        return boto3.Session(botocore_session=session).client(
            "cloudwatch", endpoint_url=lakebox.endpoint, region_name="us-east-1",
            aws_access_key_id="test", aws_secret_access_key="test",
            config=botocore.config.Config(retries={"total_max_attempts": 1}))


@pytest.fixture(params=["json", "smithy-rpc-v2-cbor", "query"])
def cw(lakebox, request):
    c = client_speaking(lakebox, request.param)
    wire = []
    c.meta.events.register("before-send.*", lambda request, **kw: wire.append(request))
    c.wire = wire
    return c


def minute(offset=0):
    now = datetime.datetime.now(UTC).replace(second=0, microsecond=0)
    return now + datetime.timedelta(minutes=offset)


def code(e):
    return e.value.response["Error"]["Code"]


def stats(cw, ns, name, start, end, period=60, dims=(), **kw):
    r = cw.get_metric_statistics(Namespace=ns, MetricName=name, Dimensions=list(dims), StartTime=start,
                                 EndTime=end, Period=period, **kw)
    return sorted(r["Datapoints"], key=lambda p: p["Timestamp"])


def test_each_protocol_reaches_the_same_metrics(lakebox, cw):
    protocol = cw.meta.service_model.protocol
    ns = "Shop/" + protocol
    t = minute(-5)
    dims = [{"Name": "Region", "Value": "eu"}, {"Name": "Shop", "Value": "main"}]
    cw.put_metric_data(Namespace=ns, MetricData=[
        {"MetricName": "Orders", "Value": 3, "Timestamp": t, "Dimensions": dims, "Unit": "Count"},
        {"MetricName": "Orders", "Value": 5, "Timestamp": t + datetime.timedelta(seconds=20),
         "Dimensions": list(reversed(dims)), "Unit": "Count"},
        {"MetricName": "Orders", "Values": [1, 10], "Counts": [3, 1], "Timestamp": t + datetime.timedelta(minutes=1),
         "Dimensions": dims, "Unit": "Count"},
    ])
    # The request went out in the protocol under test.
    sent = cw.wire[-1]
    if protocol == "smithy-rpc-v2-cbor":
        assert sent.url.endswith("/service/GraniteServiceVersion20100801/operation/PutMetricData")
        assert sent.headers["smithy-protocol"] == b"rpc-v2-cbor"
    elif protocol == "json":
        assert sent.headers["X-Amz-Target"] == b"GraniteServiceVersion20100801.PutMetricData"
    else:
        assert b"Action=PutMetricData" in sent.body.encode() if isinstance(sent.body, str) else sent.body
    points = stats(cw, ns, "Orders", t - datetime.timedelta(minutes=1), t + datetime.timedelta(minutes=3),
                   dims=dims, Statistics=["Sum", "Average", "Minimum", "Maximum", "SampleCount"])
    assert [(p["Timestamp"], p["Sum"], p["SampleCount"], p["Minimum"], p["Maximum"], p["Unit"]) for p in points] == [
        (t, 8.0, 2.0, 3.0, 5.0, "Count"),
        (t + datetime.timedelta(minutes=1), 13.0, 4.0, 1.0, 10.0, "Count"),
    ]
    assert points[1]["Average"] == 3.25
    # A different dimension set is a different metric.
    assert stats(cw, ns, "Orders", t, t + datetime.timedelta(minutes=3), dims=dims[:1], Statistics=["Sum"]) == []
    listed = cw.list_metrics(Namespace=ns)["Metrics"]
    assert listed == [{"Namespace": ns, "MetricName": "Orders", "Dimensions": dims}]


def test_percentiles_and_statistic_sets(cw):
    ns = "Latency/" + cw.meta.service_model.protocol
    t = minute(-3)
    cw.put_metric_data(Namespace=ns, MetricData=[
        {"MetricName": "Latency", "Values": [float(v) for v in range(1, 101)], "Timestamp": t, "Unit": "Milliseconds"}])
    p = stats(cw, ns, "Latency", t, t + datetime.timedelta(minutes=1),
              ExtendedStatistics=["p50", "p90", "p99.5", "p100", "tm90", "IQM"])[0]
    assert p["ExtendedStatistics"] == {"p50": 50.0, "p90": 90.0, "p99.5": 100.0, "p100": 100.0, "tm90": 45.5, "IQM": 50.5}
    # A statistic set has no individual values: sums yes, percentiles no.
    cw.put_metric_data(Namespace=ns, MetricData=[{"MetricName": "Summarised", "Timestamp": t, "StatisticValues": {
        "SampleCount": 4, "Sum": 40, "Minimum": 1, "Maximum": 20}}])
    p = stats(cw, ns, "Summarised", t, t + datetime.timedelta(minutes=1), Statistics=["Average", "Maximum"])[0]
    assert (p["Average"], p["Maximum"]) == (10.0, 20.0)
    p = stats(cw, ns, "Summarised", t, t + datetime.timedelta(minutes=1), ExtendedStatistics=["p50"])[0]
    assert p.get("ExtendedStatistics", {}) == {}


def test_high_resolution_units_and_periods(cw):
    ns = "Hires/" + cw.meta.service_model.protocol
    t = minute(-2)
    cw.put_metric_data(Namespace=ns, MetricData=[
        {"MetricName": "Rps", "Value": float(i), "StorageResolution": 1, "Unit": "Count/Second",
         "Timestamp": t + datetime.timedelta(seconds=i)} for i in range(10)] + [
        {"MetricName": "Rps", "Value": 100.0, "StorageResolution": 1, "Unit": "Percent", "Timestamp": t}])
    per_second = stats(cw, ns, "Rps", t, t + datetime.timedelta(seconds=10), period=1, Statistics=["Sum"],
                       Unit="Count/Second")
    assert [p["Sum"] for p in per_second] == [float(i) for i in range(10)]
    five = stats(cw, ns, "Rps", t, t + datetime.timedelta(seconds=10), period=5, Statistics=["Sum"], Unit="Count/Second")
    assert [p["Sum"] for p in five] == [10.0, 35.0]
    # Without a unit, each unit's data comes back apart.
    both = stats(cw, ns, "Rps", t, t + datetime.timedelta(minutes=1), Statistics=["Sum"])
    assert sorted((p["Unit"], p["Sum"]) for p in both) == [("Count/Second", 45.0), ("Percent", 100.0)]


def test_get_metric_data_queries_order_labels_and_pages(cw):
    ns = "Data/" + cw.meta.service_model.protocol
    t = minute(-30)
    cw.put_metric_data(Namespace=ns, MetricData=[
        {"MetricName": "Orders", "Value": float(i), "Timestamp": t + datetime.timedelta(minutes=i)} for i in range(20)])
    metric = {"Namespace": ns, "MetricName": "Orders"}
    r = cw.get_metric_data(StartTime=t, EndTime=t + datetime.timedelta(minutes=20), MetricDataQueries=[
        {"Id": "orders", "MetricStat": {"Metric": metric, "Period": 300, "Stat": "Sum"}},
        {"Id": "peak", "Label": "Peak orders", "MetricStat": {"Metric": metric, "Period": 300, "Stat": "Maximum"}},
        {"Id": "hidden", "ReturnData": False, "MetricStat": {"Metric": metric, "Period": 60, "Stat": "Sum"}},
    ])
    results = {x["Id"]: x for x in r["MetricDataResults"]}
    assert set(results) == {"orders", "peak"}
    assert results["orders"]["Label"] == "Orders" and results["peak"]["Label"] == "Peak orders"
    # Newest first by default.
    assert results["orders"]["Values"] == [85.0, 60.0, 35.0, 10.0]
    assert results["orders"]["Timestamps"][0] == t + datetime.timedelta(minutes=15)
    assert results["peak"]["Values"] == [19.0, 14.0, 9.0, 4.0]
    assert all(x["StatusCode"] == "Complete" for x in results.values())
    # Oldest first, a page at a time.
    seen, token = [], None
    while True:
        kw = {"NextToken": token} if token else {}
        page = cw.get_metric_data(StartTime=t, EndTime=t + datetime.timedelta(minutes=20), ScanBy="TimestampAscending",
                                  MaxDatapoints=7, MetricDataQueries=[
                                      {"Id": "m", "MetricStat": {"Metric": metric, "Period": 60, "Stat": "Sum"}}], **kw)
        seen += page["MetricDataResults"][0]["Values"]
        token = page.get("NextToken")
        if not token:
            break
    assert seen == [float(i) for i in range(20)]


def test_list_metrics_filters_and_pages(cw):
    ns = "List/" + cw.meta.service_model.protocol
    cw.put_metric_data(Namespace=ns, MetricData=[
        {"MetricName": "Cpu", "Value": 1, "Dimensions": [{"Name": "Host", "Value": "a"}]},
        {"MetricName": "Cpu", "Value": 1, "Dimensions": [{"Name": "Host", "Value": "b"}]},
        {"MetricName": "Disk", "Value": 1, "Dimensions": [{"Name": "Host", "Value": "a"}, {"Name": "Mount", "Value": "/"}]},
    ])
    def names(**kw):
        return sorted((m["MetricName"], tuple(d["Value"] for d in m["Dimensions"]))
                      for m in cw.list_metrics(Namespace=ns, **kw)["Metrics"])
    assert names() == [("Cpu", ("a",)), ("Cpu", ("b",)), ("Disk", ("a", "/"))]
    assert names(MetricName="Cpu") == [("Cpu", ("a",)), ("Cpu", ("b",))]
    assert names(Dimensions=[{"Name": "Host", "Value": "a"}]) == [("Cpu", ("a",)), ("Disk", ("a", "/"))]
    assert names(Dimensions=[{"Name": "Mount"}]) == [("Disk", ("a", "/"))]
    assert names(RecentlyActive="PT3H") == names()


def test_list_metrics_pages_of_500(lakebox):
    cw = lakebox.client("cloudwatch")
    for batch in range(3):
        cw.put_metric_data(Namespace="Many", MetricData=[
            {"MetricName": f"m{batch * 1000 + i:05}", "Value": 1} for i in range(400)])
    pages = list(cw.get_paginator("list_metrics").paginate(Namespace="Many"))
    assert [len(p["Metrics"]) for p in pages] == [500, 500, 200]
    names = [m["MetricName"] for p in pages for m in p["Metrics"]]
    assert len(set(names)) == 1200


def test_errors_as_cloudwatch_words_them(lakebox, cw):
    t = minute()
    with pytest.raises(botocore.exceptions.ClientError) as e:
        cw.put_metric_data(Namespace="AWS/EC2", MetricData=[{"MetricName": "x", "Value": 1}])
    assert code(e) == "InvalidParameterValue"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        cw.put_metric_data(Namespace="Errs", MetricData=[{"MetricName": "x", "Value": 1,
                                                          "StatisticValues": {"SampleCount": 1, "Sum": 1, "Minimum": 1, "Maximum": 1}}])
    assert code(e) == "InvalidParameterCombination"
    assert e.value.response["Error"]["Message"] == (
        "The parameters MetricData.member.1.Value and MetricData.member.1.StatisticValues are mutually "
        "exclusive and you have specified both.")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        cw.put_metric_data(Namespace="Errs", MetricData=[{"MetricName": "x", "Value": 1,
                                                          "Timestamp": t - datetime.timedelta(days=15)}])
    assert code(e) == "InvalidParameterValue"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        cw.put_metric_data(Namespace="Errs", MetricData=[{"MetricName": "x", "Values": [1, 2], "Counts": [1]}])
    assert code(e) == "InvalidParameterValue"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        stats(cw, "Errs", "x", t, t + datetime.timedelta(minutes=5), period=61, Statistics=["Sum"])
    assert code(e) == "InvalidParameterValue"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        stats(cw, "Errs", "x", t - datetime.timedelta(days=2), t, period=60, Statistics=["Sum"])
    assert code(e) == "InvalidParameterCombination"
    assert "exceeds the limit of 1,440" in e.value.response["Error"]["Message"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        stats(cw, "Errs", "x", t, t + datetime.timedelta(minutes=5), Statistics=["Sum"], ExtendedStatistics=["p90"])
    assert code(e) == "InvalidParameterCombination"
    # A missing member, as an old SDK's form would leave it out: named by its query path.
    status, _, body = signed_request(lakebox.endpoint, method="POST", path="/", service="monitoring", body=urllib.parse.urlencode({
        "Action": "PutMetricData", "Version": "2010-08-01", "Namespace": "Errs",
        "MetricData.member.1.Value": "1", "MetricData.member.2.MetricName": "ok",
        "MetricData.member.2.Dimensions.member.1.Name": "Host"}).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 400
    assert b"<Code>MissingParameter</Code>" in body
    assert b"The parameter MetricData.member.1.MetricName is required." in body
    assert b"The parameter MetricData.member.2.Dimensions.member.1.Value is required." in body


def test_data_survive_a_restart(tmp_path):
    t = minute(-2)
    with Lakebox(tmp_path) as lb:
        cw = lb.client("cloudwatch")
        cw.put_metric_data(Namespace="Durable", MetricData=[{"MetricName": "Kept", "Value": 42, "Timestamp": t}])
    with Lakebox(tmp_path) as lb:
        cw = lb.client("cloudwatch")
        p = stats(cw, "Durable", "Kept", t, t + datetime.timedelta(minutes=1), Statistics=["Sum"])
        assert [x["Sum"] for x in p] == [42.0]
        assert cw.list_metrics(Namespace="Durable")["Metrics"][0]["MetricName"] == "Kept"


def test_dashboards(cw):
    name = "ops-" + cw.meta.service_model.protocol.replace("smithy-rpc-v2-cbor", "cbor")
    body = json.dumps({"widgets": [{"type": "metric", "properties": {"metrics": [["Shop", "Orders"]]}}]})
    assert cw.put_dashboard(DashboardName=name, DashboardBody=body)["DashboardValidationMessages"] == []
    got = cw.get_dashboard(DashboardName=name)
    assert got["DashboardBody"] == body and got["DashboardArn"] == f"arn:aws:cloudwatch::000000000000:dashboard/{name}"
    entries = cw.list_dashboards(DashboardNamePrefix=name)["DashboardEntries"]
    assert [(e["DashboardName"], e["Size"]) for e in entries] == [(name, len(body))]
    cw.tag_resource(ResourceARN=got["DashboardArn"], Tags=[{"Key": "team", "Value": "data"}])
    assert cw.list_tags_for_resource(ResourceARN=got["DashboardArn"])["Tags"] == [{"Key": "team", "Value": "data"}]
    cw.untag_resource(ResourceARN=got["DashboardArn"], TagKeys=["team"])
    assert cw.list_tags_for_resource(ResourceARN=got["DashboardArn"])["Tags"] == []
    with pytest.raises(botocore.exceptions.ClientError) as e:
        cw.put_dashboard(DashboardName=name, DashboardBody="[1, 2]")
    assert code(e) == "InvalidParameterInput"
    # Deleting is all or nothing.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        cw.delete_dashboards(DashboardNames=[name, "no-such-dashboard"])
    assert code(e) == "ResourceNotFound"
    assert cw.get_dashboard(DashboardName=name)["DashboardBody"] == body
    cw.delete_dashboards(DashboardNames=[name])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        cw.get_dashboard(DashboardName=name)
    assert code(e) == "ResourceNotFound"


def test_the_aws_cli(lakebox):
    out = lakebox.cli("cloudwatch", "put-metric-data", "--namespace", "Cli", "--metric-name", "Jobs",
                      "--value", "7", "--unit", "Count")
    assert out.returncode == 0, out.stderr
    now = datetime.datetime.now(UTC)
    out = lakebox.cli("cloudwatch", "get-metric-statistics", "--namespace", "Cli", "--metric-name", "Jobs",
                      "--start-time", (now - datetime.timedelta(minutes=5)).isoformat(),
                      "--end-time", (now + datetime.timedelta(minutes=1)).isoformat(),
                      "--period", "60", "--statistics", "Sum")
    assert out.returncode == 0, out.stderr
    assert [p["Sum"] for p in json.loads(out.stdout)["Datapoints"]] == [7.0]


# ---- alarms ----

@pytest.fixture(scope="module")
def alarming(tmp_path_factory):
    server = Lakebox(tmp_path_factory.mktemp("alarms"), "--cloudwatch-alarm-tick-ms", "200").start()
    yield server
    server.stop()


def away_from_a_minute_boundary():
    """Alarms evaluate whole minutes: start where the next few seconds stay in this one."""
    import time
    second = datetime.datetime.now(UTC).second
    if second >= 50:
        time.sleep(61 - second)


def state_of(cw, name):
    return cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["StateValue"]


@pytest.fixture
def inbox(alarming):
    """An SNS topic whose messages land in an SQS queue; `messages()` drains it."""
    import uuid
    sns, sqs = alarming.client("sns"), alarming.client("sqs")
    name = "alarms-" + uuid.uuid4().hex[:8]
    topic = sns.create_topic(Name=name)["TopicArn"]
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)

    def messages(wait=5):
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait).get("Messages", [])
        for m in got:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        return [json.loads(m["Body"]) for m in got]
    return topic, messages


def test_an_alarm_fires_notifies_sns_and_records_history(alarming, inbox):
    cw = alarming.client("cloudwatch")
    topic, messages = inbox
    away_from_a_minute_boundary()
    cw.put_metric_alarm(AlarmName="orders-high", AlarmDescription="Too many orders", Namespace="Shop",
                        MetricName="Orders", Dimensions=[{"Name": "Region", "Value": "eu"}], Statistic="Sum",
                        Period=60, EvaluationPeriods=3, DatapointsToAlarm=1, Threshold=10,
                        ComparisonOperator="GreaterThanThreshold", AlarmActions=[topic], OKActions=[topic],
                        Tags=[{"Key": "team", "Value": "shop"}])
    alarm = cw.describe_alarms(AlarmNames=["orders-high"])["MetricAlarms"][0]
    assert alarm["AlarmArn"] == "arn:aws:cloudwatch:us-east-1:000000000000:alarm:orders-high"
    assert (alarm["Threshold"], alarm["EvaluationPeriods"], alarm["ActionsEnabled"]) == (10.0, 3, True)
    # No data yet: insufficient.
    assert wait_for(lambda: state_of(cw, "orders-high") == "INSUFFICIENT_DATA")
    # 25 orders in the last complete minute: over the threshold.
    last_minute = minute(-1)
    cw.put_metric_data(Namespace="Shop", MetricData=[
        {"MetricName": "Orders", "Value": 25, "Timestamp": last_minute + datetime.timedelta(seconds=5),
         "Dimensions": [{"Name": "Region", "Value": "eu"}]}])
    assert wait_for(lambda: state_of(cw, "orders-high") == "ALARM"), cw.describe_alarms(AlarmNames=["orders-high"])
    alarm = cw.describe_alarms(AlarmNames=["orders-high"])["MetricAlarms"][0]
    assert alarm["StateReason"].startswith("Threshold Crossed: 1 out of the last 3 datapoints [25.0 (")
    assert json.loads(alarm["StateReasonData"])["recentDatapoints"] == [25.0]
    note = wait_for(lambda: messages(), timeout=10)
    assert len(note) == 1
    assert note[0]["Subject"] == 'ALARM: "orders-high" in US East (N. Virginia)'
    body = json.loads(note[0]["Message"])
    assert (body["AlarmName"], body["NewStateValue"], body["OldStateValue"]) == ("orders-high", "ALARM", "INSUFFICIENT_DATA")
    assert body["Trigger"]["MetricName"] == "Orders" and body["Trigger"]["Threshold"] == 10.0
    assert body["Trigger"]["Dimensions"] == [{"value": "eu", "name": "Region"}]
    # Found by the metric it watches, and by its state.
    found = cw.describe_alarms_for_metric(Namespace="Shop", MetricName="Orders",
                                          Dimensions=[{"Name": "Region", "Value": "eu"}])["MetricAlarms"]
    assert [a["AlarmName"] for a in found] == ["orders-high"]
    assert [a["AlarmName"] for a in cw.describe_alarms(StateValue="ALARM")["MetricAlarms"]] == ["orders-high"]
    # SetAlarmState moves it by hand, with its actions; the next evaluation finds the data still
    # over the threshold and moves it back, as CloudWatch does.
    cw.set_alarm_state(AlarmName="orders-high", StateValue="OK", StateReason="Testing the OK action")
    notes = []
    wait_for(lambda: notes.extend(messages(wait=1)) or len(notes) >= 2, timeout=15)
    assert [json.loads(n["Message"])["NewStateValue"] for n in notes] == ["OK", "ALARM"]
    assert state_of(cw, "orders-high") == "ALARM"
    # The history: created, state updates, actions — newest first.
    items = cw.describe_alarm_history(AlarmName="orders-high")["AlarmHistoryItems"]
    kinds = [i["HistoryItemType"] for i in items]
    assert kinds[-1] == "ConfigurationUpdate" and "StateUpdate" in kinds and "Action" in kinds
    updates = cw.describe_alarm_history(AlarmName="orders-high", HistoryItemType="StateUpdate")["AlarmHistoryItems"]
    assert [i["HistorySummary"] for i in updates] == ["Alarm updated from OK to ALARM",
                                                     "Alarm updated from ALARM to OK",
                                                     "Alarm updated from INSUFFICIENT_DATA to ALARM"]
    assert cw.list_tags_for_resource(ResourceARN=alarm["AlarmArn"])["Tags"] == [{"Key": "team", "Value": "shop"}]
    # With actions disabled, transitions notify no one.
    cw.disable_alarm_actions(AlarmNames=["orders-high"])
    cw.set_alarm_state(AlarmName="orders-high", StateValue="OK", StateReason="quiet")
    assert messages(wait=1) == []
    assert cw.describe_alarms(AlarmNames=["orders-high"])["MetricAlarms"][0]["ActionsEnabled"] is False
    cw.delete_alarms(AlarmNames=["orders-high"])
    assert cw.describe_alarms(AlarmNames=["orders-high"])["MetricAlarms"] == []
    with pytest.raises(botocore.exceptions.ClientError) as e:
        cw.delete_alarms(AlarmNames=["orders-high"])
    assert code(e) == "ResourceNotFound"


def test_m_out_of_n_and_missing_data(alarming):
    cw = alarming.client("cloudwatch")
    away_from_a_minute_boundary()
    base = minute(-4)
    cw.put_metric_data(Namespace="Jobs", MetricData=[
        {"MetricName": "Failures", "Value": v, "Timestamp": base + datetime.timedelta(minutes=i)}
        for i, v in enumerate([1, 9, 1, 9])])
    common = dict(Namespace="Jobs", MetricName="Failures", Statistic="Maximum", Period=60, Threshold=5,
                  ComparisonOperator="GreaterThanOrEqualToThreshold")
    # Of the last three complete minutes (9, 1, 9), two breach.
    cw.put_metric_alarm(AlarmName="two-of-three", EvaluationPeriods=3, DatapointsToAlarm=2, **common)
    cw.put_metric_alarm(AlarmName="three-of-three", EvaluationPeriods=3, **common)
    assert wait_for(lambda: state_of(cw, "two-of-three") == "ALARM")
    assert wait_for(lambda: state_of(cw, "three-of-three") == "OK")
    # A metric without data: missing data as the alarm says to treat it.
    quiet = dict(common, MetricName="NeverSent", EvaluationPeriods=2)
    cw.put_metric_alarm(AlarmName="missing-breaches", TreatMissingData="breaching", **quiet)
    cw.put_metric_alarm(AlarmName="missing-is-fine", TreatMissingData="notBreaching", **quiet)
    cw.put_metric_alarm(AlarmName="missing-is-unknown", **quiet)
    assert wait_for(lambda: state_of(cw, "missing-breaches") == "ALARM")
    assert wait_for(lambda: state_of(cw, "missing-is-fine") == "OK")
    assert state_of(cw, "missing-is-unknown") == "INSUFFICIENT_DATA"
    names = [a["AlarmName"] for a in cw.describe_alarms(AlarmNamePrefix="missing-")["MetricAlarms"]]
    assert names == ["missing-breaches", "missing-is-fine", "missing-is-unknown"]


def test_composite_alarms(alarming, inbox):
    cw = alarming.client("cloudwatch")
    topic, messages = inbox
    quiet = dict(Namespace="Composite", MetricName="NeverSent", Statistic="Maximum", Period=60, Threshold=5,
                 EvaluationPeriods=1, ComparisonOperator="GreaterThanOrEqualToThreshold")
    cw.put_metric_alarm(AlarmName="c-breach", TreatMissingData="breaching", **quiet)
    cw.put_metric_alarm(AlarmName="c-fine", TreatMissingData="notBreaching", **quiet)
    assert wait_for(lambda: state_of(cw, "c-breach") == "ALARM" and state_of(cw, "c-fine") == "OK")
    # Rules are checked: syntax, children that exist, no cycles.
    for rule, fragment in [("ALARM(c-breach) AND", "Error in alarm rule"),
                           ("ALARM(nope) OR OK(c-fine)", "alarms [nope] in the alarm rule do not exist")]:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            cw.put_composite_alarm(AlarmName="bad", AlarmRule=rule)
        assert code(e) == "ValidationError" and fragment in e.value.response["Error"]["Message"]
    cw.put_composite_alarm(AlarmName="service-down", AlarmDescription="breach without the fine one",
                           AlarmRule='ALARM("c-breach") AND NOT ALARM(c-fine)', AlarmActions=[topic],
                           Tags=[{"Key": "team", "Value": "ops"}])
    cw.put_composite_alarm(AlarmName="page-someone",
                           AlarmRule="ALARM(arn:aws:cloudwatch:us-east-1:000000000000:alarm:service-down)")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        cw.put_composite_alarm(AlarmName="service-down", AlarmRule="ALARM(page-someone)")
    assert code(e) == "ValidationError"

    def composite(name):
        return cw.describe_alarms(AlarmNames=[name], AlarmTypes=["CompositeAlarm"])["CompositeAlarms"][0]
    assert wait_for(lambda: composite("service-down")["StateValue"] == "ALARM")
    # A composite of a composite settles in the same round.
    assert wait_for(lambda: composite("page-someone")["StateValue"] == "ALARM")
    c = composite("service-down")
    assert c["AlarmArn"] == "arn:aws:cloudwatch:us-east-1:000000000000:alarm:service-down"
    assert c["StateReason"].startswith("arn:aws:cloudwatch:us-east-1:000000000000:alarm:c-breach transitioned to ALARM")
    assert json.loads(c["StateReasonData"])["triggeringAlarms"][0]["arn"].endswith(":alarm:c-breach")
    note = wait_for(lambda: messages(), timeout=10)
    assert note and note[0]["Subject"] == 'ALARM: "service-down" in US East (N. Virginia)'
    body = json.loads(note[0]["Message"])
    assert body["AlarmRule"] == 'ALARM("c-breach") AND NOT ALARM(c-fine)' and body["NewStateValue"] == "ALARM"
    # Only metric alarms without AlarmTypes; children and parents.
    assert cw.describe_alarms(AlarmNamePrefix="service-")["CompositeAlarms"] == []
    kids = cw.describe_alarms(ChildrenOfAlarmName="service-down", AlarmTypes=["MetricAlarm", "CompositeAlarm"])
    assert sorted(a["AlarmName"] for a in kids["MetricAlarms"]) == ["c-breach", "c-fine"]
    parents = cw.describe_alarms(ParentsOfAlarmName="service-down", AlarmTypes=["CompositeAlarm"])["CompositeAlarms"]
    assert [a["AlarmName"] for a in parents] == ["page-someone"]
    assert cw.list_tags_for_resource(ResourceARN=c["AlarmArn"])["Tags"] == [{"Key": "team", "Value": "ops"}]
    history = cw.describe_alarm_history(AlarmName="service-down", AlarmTypes=["CompositeAlarm"],
                                        HistoryItemType="StateUpdate")["AlarmHistoryItems"]
    assert history and history[0]["AlarmType"] == "CompositeAlarm"
    # A child back to OK turns the composite OK.
    cw.put_metric_alarm(AlarmName="c-breach", TreatMissingData="notBreaching", **quiet)
    assert wait_for(lambda: composite("service-down")["StateValue"] == "OK")
    assert wait_for(lambda: composite("page-someone")["StateValue"] == "OK")
    cw.delete_alarms(AlarmNames=["page-someone", "service-down"])
    assert cw.describe_alarms(AlarmTypes=["CompositeAlarm"], AlarmNamePrefix="service-")["CompositeAlarms"] == []


def test_alarm_errors(alarming):
    cw = alarming.client("cloudwatch")
    common = dict(Namespace="Jobs", MetricName="Failures", Statistic="Maximum", Threshold=5,
                  ComparisonOperator="GreaterThanOrEqualToThreshold")
    for bad in (dict(Period=45, EvaluationPeriods=1), dict(Period=60, EvaluationPeriods=2, DatapointsToAlarm=3),
                dict(Period=3600, EvaluationPeriods=25)):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            cw.put_metric_alarm(AlarmName="bad", **common, **bad)
        assert code(e) == "ValidationError", bad
    with pytest.raises(botocore.exceptions.ClientError) as e:
        cw.set_alarm_state(AlarmName="no-such-alarm", StateValue="OK", StateReason="x")
    assert code(e) == "ResourceNotFound"
    cw.put_metric_alarm(AlarmName="good", Period=60, EvaluationPeriods=1, **common)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        cw.set_alarm_state(AlarmName="good", StateValue="OK", StateReason="x", StateReasonData="{not json")
    assert code(e) == "InvalidFormat"


# ---- Lakebox's own services' metrics ----

def test_kinesis_publishes_its_aws_metrics(tmp_path):
    with Lakebox(tmp_path, "--cloudwatch-service-metrics-ms", "200", "--cloudwatch-alarm-tick-ms", "200") as lb:
        kinesis, cw = lb.client("kinesis"), lb.client("cloudwatch")
        kinesis.create_stream(StreamName="orders", ShardCount=1)
        kinesis.get_waiter("stream_exists").wait(StreamName="orders", WaiterConfig={"Delay": 0.1})
        # An alarm written for AWS: any incoming records at all.
        cw.put_metric_alarm(AlarmName="orders-arriving", Namespace="AWS/Kinesis", MetricName="IncomingRecords",
                            Dimensions=[{"Name": "StreamName", "Value": "orders"}], Statistic="Sum", Period=60,
                            EvaluationPeriods=1, Threshold=0, ComparisonOperator="GreaterThanThreshold")
        kinesis.put_record(StreamName="orders", Data=b"x" * 100, PartitionKey="k")
        kinesis.put_records(StreamName="orders", Records=[{"Data": b"y" * 10, "PartitionKey": "k"}] * 4)
        shard = kinesis.list_shards(StreamName="orders")["Shards"][0]["ShardId"]
        it = kinesis.get_shard_iterator(StreamName="orders", ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        assert len(kinesis.get_records(ShardIterator=it)["Records"]) == 5
        now = datetime.datetime.now(UTC)
        span = dict(StartTime=now - datetime.timedelta(minutes=5), EndTime=now + datetime.timedelta(minutes=1), Period=300)
        dims = [{"Name": "StreamName", "Value": "orders"}]

        def total(name, stat="Sum"):
            points = cw.get_metric_statistics(Namespace="AWS/Kinesis", MetricName=name, Dimensions=dims,
                                              Statistics=[stat], **span)["Datapoints"]
            return sum(p[stat] for p in points) if points else None
        assert wait_for(lambda: total("GetRecords.Records") == 5.0), total("GetRecords.Records")
        assert total("IncomingRecords") == 5.0
        assert total("IncomingBytes") == 101.0 + 4 * 11.0
        assert total("PutRecord.Success") == 1.0
        assert total("PutRecords.TotalRecords") == 4.0 and total("PutRecords.FailedRecords") == 0.0
        assert total("GetRecords.IteratorAgeMilliseconds", "Maximum") == 0.0
        names = {m["MetricName"] for m in cw.list_metrics(Namespace="AWS/Kinesis", Dimensions=dims)["Metrics"]}
        assert {"IncomingRecords", "IncomingBytes", "PutRecord.Latency", "GetRecords.Latency"} <= names
        units = cw.get_metric_statistics(Namespace="AWS/Kinesis", MetricName="IncomingBytes", Dimensions=dims,
                                         Statistics=["Sum"], **span)["Datapoints"]
        assert {p["Unit"] for p in units} == {"Bytes"}
        # The alarm sees the current minute once it is complete: move the server's clock on.
        from signing import send
        assert send(lb.endpoint, "POST", "/_lakebox/test/clock?advance_ms=60000")[0] == 200
        assert wait_for(lambda: state_of(cw, "orders-arriving") == "ALARM")


def test_firehose_publishes_its_aws_metrics(tmp_path):
    with Lakebox(tmp_path, "--cloudwatch-service-metrics-ms", "200") as lb:
        s3, fh, cw = lb.client("s3"), lb.client("firehose"), lb.client("cloudwatch")
        s3.create_bucket(Bucket="fh-metrics")
        fh.create_delivery_stream(DeliveryStreamName="clicks", ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::000000000000:role/firehose", "BucketARN": "arn:aws:s3:::fh-metrics",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0}})
        fh.put_record(DeliveryStreamName="clicks", Record={"Data": b"a" * 10})
        fh.put_record_batch(DeliveryStreamName="clicks", Records=[{"Data": b"b" * 5}] * 3)
        now = datetime.datetime.now(UTC)
        span = dict(StartTime=now - datetime.timedelta(minutes=5), EndTime=now + datetime.timedelta(minutes=1),
                    Period=300, Statistics=["Sum"])
        dims = [{"Name": "DeliveryStreamName", "Value": "clicks"}]

        def total(name):
            points = cw.get_metric_statistics(Namespace="AWS/Firehose", MetricName=name, Dimensions=dims, **span)["Datapoints"]
            return sum(p["Sum"] for p in points) if points else None
        assert wait_for(lambda: total("DeliveryToS3.Records") == 4.0), total("DeliveryToS3.Records")
        assert total("IncomingRecords") == 4.0 and total("IncomingBytes") == 25.0
        assert total("IncomingPutRequests") == 2.0
        assert total("DeliveryToS3.Bytes") == 25.0 and total("DeliveryToS3.Success") >= 1.0
        # What was counted is what was delivered.
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="fh-metrics")["Contents"]]
        body = b"".join(s3.get_object(Bucket="fh-metrics", Key=k)["Body"].read() for k in keys)
        assert sorted(body) == sorted(b"a" * 10 + b"b" * 15)


def test_search_expressions_in_get_metric_data(cw):
    ns = "Search/" + cw.meta.service_model.protocol
    t = minute(-10)
    data = []
    for host, values in (("web-1", [1, 2]), ("web-2", [10, 20]), ("db-1", [100, 200])):
        role = "db" if host.startswith("db") else "web"
        for i, v in enumerate(values):
            data.append({"MetricName": "CPU", "Value": v, "Timestamp": t + datetime.timedelta(minutes=i),
                         "Dimensions": [{"Name": "Host", "Value": host}, {"Name": "Role", "Value": role}]})
    data.append({"MetricName": "CPU", "Value": 5, "Timestamp": t, "Dimensions": [{"Name": "Host", "Value": "lonely"}]})
    cw.put_metric_data(Namespace=ns, MetricData=data)
    span = dict(StartTime=t, EndTime=t + datetime.timedelta(minutes=3), ScanBy="TimestampAscending")
    r = cw.get_metric_data(MetricDataQueries=[
        {"Id": "web", "Expression": f"SEARCH('{{{ns},Host,Role}} MetricName=\"CPU\" Role=web', 'Maximum', 60)"},
        {"Id": "all", "Expression": f"SUM(SEARCH('{{{ns},Host,Role}} CPU', 'Sum', 60))"},
        {"Id": "none", "Expression": f"SEARCH('{{{ns},Host,Role}} nothing', 'Sum', 60)"},
    ], **span)
    got = {}
    for x in r["MetricDataResults"]:
        got.setdefault(x["Id"], []).append((x["Label"], x["Values"]))
    assert sorted(got["web"]) == [("web-1 web", [1.0, 2.0]), ("web-2 web", [10.0, 20.0])]
    assert got["all"][0][1] == [111.0, 222.0]
    assert got.get("none") in (None, [])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        cw.get_metric_data(MetricDataQueries=[{"Id": "x", "Expression": "SEARCH('{', 'Sum', 60)"}], **span)
    assert code(e) == "InvalidParameterValue"


def test_metric_math_in_get_metric_data(cw):
    ns = "Math/" + cw.meta.service_model.protocol
    t = minute(-10)
    cw.put_metric_data(Namespace=ns, MetricData=[
        {"MetricName": name, "Value": v, "Timestamp": t + datetime.timedelta(minutes=i)}
        for name, values in (("Errors", [1, 2, 0, 4]), ("Requests", [10, 20, 10, 20]))
        for i, v in enumerate(values)])
    stat = lambda name: {"Metric": {"Namespace": ns, "MetricName": name}, "Period": 60, "Stat": "Sum"}
    r = cw.get_metric_data(StartTime=t, EndTime=t + datetime.timedelta(minutes=6), ScanBy="TimestampAscending",
                           MetricDataQueries=[
                               {"Id": "e", "MetricStat": stat("Errors"), "ReturnData": False},
                               {"Id": "r", "MetricStat": stat("Requests"), "ReturnData": False},
                               {"Id": "rate", "Expression": "100 * e / r", "Label": "Error rate"},
                               {"Id": "total", "Expression": "SUM(METRICS())"},
                               {"Id": "filled", "Expression": "FILL(e, 0)"},
                               {"Id": "busy", "Expression": "IF(r > 15, r, 0)"},
                               {"Id": "twice", "Expression": "rate * 2"},
                           ])
    got = {x["Id"]: (x["Label"], x["Values"]) for x in r["MetricDataResults"]}
    assert got["rate"] == ("Error rate", [10.0, 10.0, 0.0, 20.0])
    assert got["total"][1] == [11.0, 22.0, 10.0, 24.0]
    assert got["filled"][1] == [1.0, 2.0, 0.0, 4.0, 0.0, 0.0]
    assert got["busy"][1] == [0.0, 20.0, 0.0, 20.0]
    assert got["twice"][1] == [20.0, 20.0, 0.0, 40.0]
    assert set(got) == {"rate", "total", "filled", "busy", "twice"}
    with pytest.raises(botocore.exceptions.ClientError) as e:
        cw.get_metric_data(StartTime=t, EndTime=t + datetime.timedelta(minutes=6), MetricDataQueries=[
            {"Id": "bad", "Expression": "nope + 1"}])
    assert code(e) == "InvalidParameterValue"


def test_an_alarm_on_metric_math(alarming):
    cw = alarming.client("cloudwatch")
    away_from_a_minute_boundary()
    t = minute(-1)
    cw.put_metric_data(Namespace="Api", MetricData=[
        {"MetricName": "Errors", "Value": 3, "Timestamp": t}, {"MetricName": "Requests", "Value": 10, "Timestamp": t}])
    stat = lambda name: {"Metric": {"Namespace": "Api", "MetricName": name}, "Period": 60, "Stat": "Sum"}
    cw.put_metric_alarm(AlarmName="error-rate", EvaluationPeriods=1, Threshold=20,
                        ComparisonOperator="GreaterThanThreshold", Metrics=[
                            {"Id": "e", "MetricStat": stat("Errors"), "ReturnData": False},
                            {"Id": "r", "MetricStat": stat("Requests"), "ReturnData": False},
                            {"Id": "rate", "Expression": "100 * e / r", "ReturnData": True}])
    assert wait_for(lambda: state_of(cw, "error-rate") == "ALARM")
    alarm = cw.describe_alarms(AlarmNames=["error-rate"])["MetricAlarms"][0]
    assert "[30.0 (" in alarm["StateReason"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        cw.put_metric_alarm(AlarmName="bad-math", EvaluationPeriods=1, Threshold=1,
                            ComparisonOperator="GreaterThanThreshold", Metrics=[
                                {"Id": "x", "Expression": "missing * 2", "ReturnData": True}])
    assert code(e) == "ValidationError"


def test_sqs_publishes_its_aws_metrics(tmp_path):
    with Lakebox(tmp_path, "--cloudwatch-service-metrics-ms", "200") as lb:
        sqs, cw = lb.client("sqs"), lb.client("cloudwatch")
        url = sqs.create_queue(QueueName="jobs")["QueueUrl"]
        empty = sqs.create_queue(QueueName="idle")["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody="x" * 100)
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "a", "MessageBody": "y" * 10},
                                                      {"Id": "b", "MessageBody": "z" * 10}])
        now = datetime.datetime.now(UTC)
        span = dict(StartTime=now - datetime.timedelta(minutes=5), EndTime=now + datetime.timedelta(minutes=1), Period=300)

        def stat(queue, name, s="Sum"):
            points = cw.get_metric_statistics(Namespace="AWS/SQS", MetricName=name, Statistics=[s],
                                              Dimensions=[{"Name": "QueueName", "Value": queue}], **span)["Datapoints"]
            return points[0][s] if points else None
        # The depth is sampled while all three wait.
        assert wait_for(lambda: stat("jobs", "ApproximateNumberOfMessagesVisible", "Maximum") == 3.0)
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=2)["Messages"]
        sqs.delete_message(QueueUrl=url, ReceiptHandle=got[0]["ReceiptHandle"])
        assert sqs.receive_message(QueueUrl=empty).get("Messages") is None
        assert wait_for(lambda: stat("jobs", "NumberOfMessagesDeleted") == 1.0)
        assert stat("jobs", "NumberOfMessagesSent") == 3.0
        assert stat("jobs", "SentMessageSize") == 120.0
        assert stat("jobs", "NumberOfMessagesReceived") == 2.0
        assert wait_for(lambda: stat("idle", "NumberOfEmptyReceives") == 1.0)
        # One message stays in flight (received, not deleted).
        assert wait_for(lambda: (stat("jobs", "ApproximateNumberOfMessagesNotVisible", "Maximum") or 0) >= 1.0)
        assert stat("jobs", "ApproximateNumberOfMessagesNotVisible", "Minimum") == 0.0


def test_athena_publishes_its_aws_metrics(tmp_path):
    from lakebox_harness import run_query
    with Lakebox(tmp_path, "--cloudwatch-service-metrics-ms", "200") as lb:
        s3, athena, cw = lb.client("s3"), lb.client("athena"), lb.client("cloudwatch")
        s3.create_bucket(Bucket="athena-results")
        athena.create_work_group(Name="metered", Configuration={
            "PublishCloudWatchMetricsEnabled": True,
            "ResultConfiguration": {"OutputLocation": "s3://athena-results/metered/"}})
        _, e = run_query(athena, "SELECT 1 AS one", "s3://athena-results/metered/", WorkGroup="metered")
        assert e["Status"]["State"] == "SUCCEEDED"
        _, bad = run_query(athena, "SELECT * FROM no_such_table", "s3://athena-results/metered/", WorkGroup="metered")
        assert bad["Status"]["State"] == "FAILED"
        # The primary workgroup does not publish (PublishCloudWatchMetricsEnabled is false).
        run_query(athena, "SELECT 2", "s3://athena-results/primary/")
        now = datetime.datetime.now(UTC)
        span = dict(StartTime=now - datetime.timedelta(minutes=5), EndTime=now + datetime.timedelta(minutes=1), Period=300)

        def stat(state, name, statistic="SampleCount", group="metered", kind="DML"):
            points = cw.get_metric_statistics(Namespace="AWS/Athena", MetricName=name, Statistics=[statistic], Dimensions=[
                {"Name": "QueryState", "Value": state}, {"Name": "QueryType", "Value": kind},
                {"Name": "WorkGroup", "Value": group}], **span)["Datapoints"]
            return points[0] if points else None
        p = wait_for(lambda: stat("SUCCEEDED", "TotalExecutionTime"))
        assert p["SampleCount"] == 1.0 and p["Unit"] == "Milliseconds"
        assert stat("SUCCEEDED", "ProcessedBytes")["Unit"] == "Bytes"
        assert wait_for(lambda: stat("FAILED", "TotalExecutionTime"))["SampleCount"] == 1.0
        metrics = cw.list_metrics(Namespace="AWS/Athena")["Metrics"]
        assert {"EngineExecutionTime", "QueryQueueTime", "ServiceProcessingTime"} <= {m["MetricName"] for m in metrics}
        assert all({"Name": "WorkGroup", "Value": "metered"} in m["Dimensions"] for m in metrics)


def test_sns_publishes_its_aws_metrics(tmp_path):
    with Lakebox(tmp_path, "--cloudwatch-service-metrics-ms", "200") as lb:
        sns, sqs, cw = lb.client("sns"), lb.client("sqs"), lb.client("cloudwatch")
        topic = sns.create_topic(Name="orders")["TopicArn"]
        url = sqs.create_queue(QueueName="orders-copy")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
        # A subscription to a queue that does not exist fails each delivery.
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn.replace("orders-copy", "gone"))
        sns.publish(TopicArn=topic, Message="x" * 100)
        sns.publish_batch(TopicArn=topic, PublishBatchRequestEntries=[
            {"Id": "a", "Message": "y" * 10}, {"Id": "b", "Message": "z" * 20}])
        now = datetime.datetime.now(UTC)
        span = dict(StartTime=now - datetime.timedelta(minutes=5), EndTime=now + datetime.timedelta(minutes=1), Period=300)

        def total(name, stat="Sum"):
            points = cw.get_metric_statistics(Namespace="AWS/SNS", MetricName=name, Statistics=[stat],
                                              Dimensions=[{"Name": "TopicName", "Value": "orders"}], **span)["Datapoints"]
            return points[0][stat] if points else None
        assert wait_for(lambda: total("NumberOfNotificationsDelivered") == 3.0, timeout=15)
        assert total("NumberOfMessagesPublished") == 3.0
        assert total("PublishSize") == 130.0 and total("PublishSize", "Maximum") == 100.0
        assert wait_for(lambda: total("NumberOfNotificationsFailed") == 3.0, timeout=15)


def test_kinesis_shard_level_metrics(tmp_path):
    with Lakebox(tmp_path, "--cloudwatch-service-metrics-ms", "200") as lb:
        kinesis, cw = lb.client("kinesis"), lb.client("cloudwatch")
        kinesis.create_stream(StreamName="sharded", ShardCount=2)
        kinesis.get_waiter("stream_exists").wait(StreamName="sharded", WaiterConfig={"Delay": 0.1})
        kinesis.create_stream(StreamName="plain", ShardCount=1)
        kinesis.get_waiter("stream_exists").wait(StreamName="plain", WaiterConfig={"Delay": 0.1})
        kinesis.enable_enhanced_monitoring(StreamName="sharded", ShardLevelMetrics=["IncomingRecords", "OutgoingRecords",
                                                                                    "IteratorAgeMilliseconds"])
        shards = [s["ShardId"] for s in kinesis.list_shards(StreamName="sharded")["Shards"]]
        # Explicit hash keys put three records on the first shard and one on the second.
        low, high = "0", str(2 ** 127 + 1)
        for key in (low, low, low, high):
            kinesis.put_record(StreamName="sharded", Data=b"x", PartitionKey="k", ExplicitHashKey=key)
        kinesis.put_records(StreamName="plain", Records=[{"Data": b"y", "PartitionKey": "k"}])
        it = kinesis.get_shard_iterator(StreamName="sharded", ShardId=shards[0],
                                        ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        assert len(kinesis.get_records(ShardIterator=it)["Records"]) == 3
        now = datetime.datetime.now(UTC)
        span = dict(StartTime=now - datetime.timedelta(minutes=5), EndTime=now + datetime.timedelta(minutes=1), Period=300)

        def total(name, shard, stream="sharded"):
            points = cw.get_metric_statistics(Namespace="AWS/Kinesis", MetricName=name, Statistics=["Sum"], Dimensions=[
                {"Name": "StreamName", "Value": stream}, {"Name": "ShardId", "Value": shard}], **span)["Datapoints"]
            return points[0]["Sum"] if points else None
        assert wait_for(lambda: total("IncomingRecords", shards[0]) == 3.0)
        assert total("IncomingRecords", shards[1]) == 1.0
        assert wait_for(lambda: total("OutgoingRecords", shards[0]) == 3.0)
        # Only the metrics enabled, only on the stream that enabled them.
        assert total("IncomingBytes", shards[0]) is None
        assert total("IncomingRecords", "shardId-000000000000", "plain") is None
        kinesis.disable_enhanced_monitoring(StreamName="sharded", ShardLevelMetrics=["ALL"])
        assert kinesis.describe_stream_summary(StreamName="sharded")["StreamDescriptionSummary"]["EnhancedMonitoring"] == [{"ShardLevelMetrics": []}]


def test_s3_request_metrics_when_configured(tmp_path):
    with Lakebox(tmp_path, "--cloudwatch-service-metrics-ms", "200") as lb:
        s3, cw = lb.client("s3"), lb.client("cloudwatch")
        s3.create_bucket(Bucket="metered")
        s3.create_bucket(Bucket="quiet")
        s3.put_bucket_metrics_configuration(Bucket="metered", Id="EntireBucket",
                                            MetricsConfiguration={"Id": "EntireBucket"})
        s3.put_bucket_metrics_configuration(Bucket="metered", Id="logs", MetricsConfiguration={
            "Id": "logs", "Filter": {"Prefix": "logs/"}})
        got = s3.get_bucket_metrics_configuration(Bucket="metered", Id="logs")["MetricsConfiguration"]
        assert got == {"Id": "logs", "Filter": {"Prefix": "logs/"}}
        listed = s3.list_bucket_metrics_configurations(Bucket="metered")["MetricsConfigurationList"]
        assert sorted(c["Id"] for c in listed) == ["EntireBucket", "logs"]
        with pytest.raises(botocore.exceptions.ClientError) as e:
            s3.get_bucket_metrics_configuration(Bucket="metered", Id="nope")
        assert code(e) == "NoSuchConfiguration"
        s3.put_object(Bucket="metered", Key="logs/a.txt", Body=b"x" * 100)
        s3.put_object(Bucket="metered", Key="data/b.txt", Body=b"y" * 50)
        assert s3.get_object(Bucket="metered", Key="logs/a.txt")["Body"].read() == b"x" * 100
        with pytest.raises(botocore.exceptions.ClientError):
            s3.get_object(Bucket="metered", Key="logs/missing")
        s3.list_objects_v2(Bucket="metered")
        s3.put_object(Bucket="quiet", Key="k", Body=b"z")
        now = datetime.datetime.now(UTC)
        span = dict(StartTime=now - datetime.timedelta(minutes=5), EndTime=now + datetime.timedelta(minutes=1), Period=300)

        def total(name, filter_id, bucket="metered"):
            points = cw.get_metric_statistics(Namespace="AWS/S3", MetricName=name, Statistics=["Sum"], Dimensions=[
                {"Name": "BucketName", "Value": bucket}, {"Name": "FilterId", "Value": filter_id}], **span)["Datapoints"]
            return points[0]["Sum"] if points else None
        # Every request to the bucket since the first configuration: the four about configurations,
        # two PUTs, a GET, a miss and a listing.
        assert wait_for(lambda: total("AllRequests", "EntireBucket") == 9.0), total("AllRequests", "EntireBucket")
        assert total("PutRequests", "EntireBucket") == 2.0 and total("ListRequests", "EntireBucket") == 1.0
        assert total("GetRequests", "EntireBucket") == 2.0
        # Bytes of every request with a body: the objects' and the configurations'.
        assert total("BytesUploaded", "EntireBucket") > 150.0 and total("BytesDownloaded", "EntireBucket") > 100.0
        assert total("BytesUploaded", "logs") == 100.0 and total("BytesDownloaded", "logs") == 100.0
        # The missing configuration and the missing object.
        assert total("4xxErrors", "EntireBucket") == 2.0 and total("5xxErrors", "EntireBucket") == 0.0
        # The prefix filter counts only its keys: the PUT, the GET and the miss under logs/.
        assert total("AllRequests", "logs") == 3.0 and total("GetRequests", "logs") == 2.0
        assert total("AllRequests", "EntireBucket", "quiet") is None
        s3.delete_bucket_metrics_configuration(Bucket="metered", Id="logs")
        assert [c["Id"] for c in s3.list_bucket_metrics_configurations(Bucket="metered")["MetricsConfigurationList"]] == ["EntireBucket"]


def test_dynamodb_publishes_its_aws_metrics(tmp_path):
    with Lakebox(tmp_path, "--cloudwatch-service-metrics-ms", "200", "--dynamodb-ttl-sweep-ms", "100") as lb:
        ddb, streams, cw = lb.client("dynamodb"), lb.client("dynamodbstreams"), lb.client("cloudwatch")
        attrs = [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"},
                 {"AttributeName": "g", "AttributeType": "S"}]
        desc = ddb.create_table(
            TableName="orders", AttributeDefinitions=attrs,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            ProvisionedThroughput={"ReadCapacityUnits": 7, "WriteCapacityUnits": 5},
            GlobalSecondaryIndexes=[{"IndexName": "by_g", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                                     "Projection": {"ProjectionType": "KEYS_ONLY"},
                                     "ProvisionedThroughput": {"ReadCapacityUnits": 3, "WriteCapacityUnits": 2}}],
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
        )["TableDescription"]
        ddb.update_time_to_live(TableName="orders", TimeToLiveSpecification={"Enabled": True, "AttributeName": "exp"})
        item = lambda sk, **extra: {"pk": {"S": "c1"}, "sk": {"S": sk}, **extra}
        ddb.put_item(TableName="orders", Item=item("a", body={"S": "x" * 3000}))  # 3 write units
        ddb.put_item(TableName="orders", Item=item("b"))  # 1
        ddb.put_item(TableName="orders", Item=item("c", exp={"N": str(int(time.time()) - 60)}))  # 1, expired: the sweeper deletes it
        ddb.get_item(TableName="orders", Key={"pk": {"S": "c1"}, "sk": {"S": "b"}})  # 0.5 read units
        assert wait_for(lambda: "Item" not in ddb.get_item(TableName="orders", Key={"pk": {"S": "c1"}, "sk": {"S": "c"}}))
        got = ddb.query(TableName="orders", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "c1"}})
        assert got["Count"] == 2
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ddb.put_item(TableName="orders", Item=item("a"), ConditionExpression="attribute_not_exists(pk)")
        assert code(e) == "ConditionalCheckFailedException"
        for bad in range(2):  # neither counted under a table: UserErrors has no dimension
            with pytest.raises(botocore.exceptions.ClientError):
                ddb.get_item(TableName="no_such_table", Key={"pk": {"S": "x"}})
        # A table with one write unit a second throttles after its 300 s burst.
        ddb.create_table(TableName="hot", AttributeDefinitions=attrs[:1],
                         KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                         ProvisionedThroughput={"ReadCapacityUnits": 1, "WriteCapacityUnits": 1})
        throttled = 0
        for i in range(150):
            try:
                ddb.put_item(TableName="hot", Item={"pk": {"S": f"k{i}"}, "v": {"S": "x" * 3000}})
            except botocore.exceptions.ClientError as e:
                assert e.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
                throttled += 1
                break
        assert throttled == 1
        sd = streams.describe_stream(StreamArn=desc["LatestStreamArn"])["StreamDescription"]
        it = streams.get_shard_iterator(StreamArn=desc["LatestStreamArn"], ShardId=sd["Shards"][0]["ShardId"],
                                        ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        records = streams.get_records(ShardIterator=it)["Records"]
        assert [r["eventName"] for r in records] == ["INSERT", "INSERT", "INSERT", "REMOVE"]

        now = datetime.datetime.now(UTC)
        span = dict(StartTime=now - datetime.timedelta(minutes=5), EndTime=now + datetime.timedelta(minutes=1), Period=600)

        def stat(name, dims, s="Sum"):
            points = cw.get_metric_statistics(Namespace="AWS/DynamoDB", MetricName=name, Statistics=[s],
                                              Dimensions=[{"Name": k, "Value": v} for k, v in dims], **span)["Datapoints"]
            return points[0][s] if points else None
        table = [("TableName", "orders")]
        op = lambda o: table + [("Operation", o)]
        label = [("Operation", "GetRecords"), ("StreamLabel", desc["LatestStreamLabel"]), ("TableName", "orders")]
        # The last call's metrics are flushed with the others (every 200 ms here).
        assert wait_for(lambda: stat("ReturnedRecordsCount", label) == 4.0)
        assert wait_for(lambda: stat("ProvisionedWriteCapacityUnits", table, "Maximum") == 5.0)
        assert stat("ProvisionedReadCapacityUnits", table, "Maximum") == 7.0
        gsi = table + [("GlobalSecondaryIndexName", "by_g")]
        assert stat("ProvisionedReadCapacityUnits", gsi, "Maximum") == 3.0
        assert stat("ProvisionedWriteCapacityUnits", gsi, "Maximum") == 2.0
        assert wait_for(lambda: stat("ConditionalCheckFailedRequests", table) == 1.0)
        # Three puts (3 + 1 + 1 units) and the failed condition, checked against the 3 KB item
        # (3 units, as AWS charges it); the sweeper's deletes are free, as on AWS.
        assert stat("ConsumedWriteCapacityUnits", table) == 8.0
        assert stat("ConsumedReadCapacityUnits", table) >= 0.5
        assert stat("SuccessfulRequestLatency", op("PutItem"), "SampleCount") == 3.0
        assert stat("SuccessfulRequestLatency", op("PutItem"), "Maximum") > 0
        assert stat("SuccessfulRequestLatency", op("Query"), "SampleCount") == 1.0
        assert stat("ReturnedItemCount", op("Query")) == 2.0
        assert stat("TimeToLiveDeletedItemCount", table) == 1.0
        assert stat("UserErrors", []) == 2.0
        assert stat("ThrottledRequests", [("TableName", "hot"), ("Operation", "PutItem")]) == 1.0
        assert stat("WriteThrottleEvents", [("TableName", "hot")]) == 1.0
        assert stat("ReturnedBytes", label) > 3000
        names = {m["MetricName"] for m in cw.list_metrics(Namespace="AWS/DynamoDB")["Metrics"]}
        assert {"ConsumedWriteCapacityUnits", "SuccessfulRequestLatency", "ThrottledRequests"} <= names


def band_of(values, width=2.0):
    """Lakebox's documented band at a period: the mean of the values before it plus and minus
    `width` (population) standard deviations."""
    mean = sum(values) / len(values)
    deviation = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5
    return mean - width * deviation, mean + width * deviation


def test_anomaly_detectors_and_the_band_in_get_metric_data(cw):
    ns = f"Anomaly{cw.meta.config.signature_version}".replace("-", "")
    dims = [{"Name": "Shop", "Value": "eu"}]
    steady = [10, 12, 11, 9, 10, 12, 11, 10, 9, 11]
    base = minute(-12)
    cw.put_metric_data(Namespace=ns, MetricData=[
        {"MetricName": "Orders", "Dimensions": dims, "Value": v, "Timestamp": base + datetime.timedelta(minutes=i)}
        for i, v in enumerate(steady + [50])])
    detector = {"Namespace": ns, "MetricName": "Orders", "Dimensions": dims, "Stat": "Average"}
    cw.put_anomaly_detector(SingleMetricAnomalyDetector=detector, Configuration={"ExcludedTimeRanges": [
        {"StartTime": base - datetime.timedelta(days=3), "EndTime": base - datetime.timedelta(days=2)}]})
    listed = cw.describe_anomaly_detectors(Namespace=ns)["AnomalyDetectors"]
    assert len(listed) == 1 and listed[0]["StateValue"] == "TRAINED"
    assert listed[0]["SingleMetricAnomalyDetector"]["MetricName"] == "Orders"
    assert listed[0]["SingleMetricAnomalyDetector"]["Dimensions"] == dims
    assert listed[0]["Stat"] == "Average" and len(listed[0]["Configuration"]["ExcludedTimeRanges"]) == 1
    assert cw.describe_anomaly_detectors(Namespace=ns, AnomalyDetectorTypes=["METRIC_MATH"])["AnomalyDetectors"] == []

    out = cw.get_metric_data(StartTime=base, EndTime=minute(0), ScanBy="TimestampAscending", MetricDataQueries=[
        {"Id": "m1", "MetricStat": {"Metric": {"Namespace": ns, "MetricName": "Orders", "Dimensions": dims},
                                     "Period": 60, "Stat": "Average"}},
        {"Id": "e1", "Expression": "ANOMALY_DETECTION_BAND(m1, 2)", "Label": "Orders (expected)"}])
    results = {r["Label"]: r for r in out["MetricDataResults"]}
    upper, lower = results["Orders (expected) Upper"], results["Orders (expected) Lower"]
    assert upper["Id"] == "e1" and lower["Id"] == "e1"
    # No band before three values; the spike's minute has the band of the ten before it.
    spike_at = base + datetime.timedelta(minutes=10)
    assert upper["Timestamps"][0] == base + datetime.timedelta(minutes=3)
    at = upper["Timestamps"].index(spike_at)
    assert lower["Timestamps"][at] == spike_at
    lo, hi = band_of(steady)
    assert abs(upper["Values"][at] - hi) < 1e-9 and abs(lower["Values"][at] - lo) < 1e-9
    assert hi < 50 and lo < 9
    with pytest.raises(botocore.exceptions.ClientError) as e:
        cw.get_metric_data(StartTime=base, EndTime=minute(0), MetricDataQueries=[
            {"Id": "m1", "MetricStat": {"Metric": {"Namespace": ns, "MetricName": "Orders"}, "Period": 60, "Stat": "Sum"}},
            {"Id": "e2", "Expression": "m1 * 2", "ReturnData": False},
            {"Id": "e1", "Expression": "ANOMALY_DETECTION_BAND(e2)"}])
    assert code(e) == "InvalidParameterValue"

    with pytest.raises(botocore.exceptions.ClientError) as e:
        cw.put_anomaly_detector(SingleMetricAnomalyDetector=detector, Namespace=ns)
    assert code(e) == "InvalidParameterCombination"
    cw.delete_anomaly_detector(SingleMetricAnomalyDetector=detector)
    assert cw.describe_anomaly_detectors(Namespace=ns)["AnomalyDetectors"] == []
    with pytest.raises(botocore.exceptions.ClientError) as e:
        cw.delete_anomaly_detector(SingleMetricAnomalyDetector=detector)
    assert code(e) == "ResourceNotFoundException"


def test_an_alarm_on_an_anomaly_band(alarming, inbox):
    cw = alarming.client("cloudwatch")
    topic, messages = inbox
    away_from_a_minute_boundary()
    steady = [10, 12, 11, 9, 10, 12, 11, 10]
    base = minute(-len(steady))
    cw.put_metric_data(Namespace="Checkout", MetricData=[
        {"MetricName": "Latency", "Value": v, "Timestamp": base + datetime.timedelta(minutes=i)}
        for i, v in enumerate(steady)])
    metrics = [
        {"Id": "m1", "ReturnData": True, "MetricStat": {
            "Metric": {"Namespace": "Checkout", "MetricName": "Latency"}, "Period": 60, "Stat": "Maximum"}},
        {"Id": "ad1", "Expression": "ANOMALY_DETECTION_BAND(m1, 2)", "Label": "Latency (expected)", "ReturnData": True}]
    cw.put_metric_alarm(AlarmName="latency-anomaly", EvaluationPeriods=1, Metrics=metrics, ThresholdMetricId="ad1",
                        ComparisonOperator="GreaterThanUpperThreshold", AlarmActions=[topic])
    # The last complete minute (10) is inside the band of the seven before it.
    assert wait_for(lambda: state_of(cw, "latency-anomaly") == "OK")
    alarm = cw.describe_alarms(AlarmNames=["latency-anomaly"])["MetricAlarms"][0]
    assert alarm["ThresholdMetricId"] == "ad1" and "Threshold" not in alarm
    assert alarm["StateReason"].startswith("Thresholds Crossed: 1 out of the last 1 datapoints [10.0 (")
    assert " was not greater than the upper thresholds [" in alarm["StateReason"]
    # The alarm made the metric's anomaly detector, as CloudWatch does.
    made = cw.describe_anomaly_detectors(Namespace="Checkout")["AnomalyDetectors"]
    assert [d["SingleMetricAnomalyDetector"]["Stat"] for d in made] == ["Maximum"]

    cw.put_metric_data(Namespace="Checkout", MetricData=[
        {"MetricName": "Latency", "Value": 90, "Timestamp": minute(-1)}])
    assert wait_for(lambda: state_of(cw, "latency-anomaly") == "ALARM")
    alarm = cw.describe_alarms(AlarmNames=["latency-anomaly"])["MetricAlarms"][0]
    _, hi = band_of(steady[:-1])
    assert alarm["StateReason"].startswith("Thresholds Crossed: 1 out of the last 1 datapoints [90.0 (")
    shown = alarm["StateReason"].split("was greater than the upper thresholds [")[1].split("]")[0]
    assert abs(float(shown) - hi) < 1e-9
    data = json.loads(alarm["StateReasonData"])
    assert data["recentDatapoints"] == [90.0] and abs(data["recentUpperThresholds"][0] - hi) < 1e-9
    assert data["evaluatedDatapoints"][0]["value"] == 90.0
    notes = wait_for(lambda: [m for m in messages(1) if json.loads(m["Message"])["NewStateValue"] == "ALARM"], timeout=15)
    trigger = json.loads(notes[0]["Message"])["Trigger"]
    assert trigger["ThresholdMetricId"] == "ad1" and trigger["ComparisonOperator"] == "GreaterThanUpperThreshold"

    with pytest.raises(botocore.exceptions.ClientError) as e:
        cw.put_metric_alarm(AlarmName="no-band", EvaluationPeriods=1, Metrics=metrics[:1],
                            ComparisonOperator="LessThanLowerThreshold")
    assert code(e) == "ValidationError"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        cw.put_metric_alarm(AlarmName="both", EvaluationPeriods=1, Metrics=metrics, ThresholdMetricId="ad1",
                            Threshold=3, ComparisonOperator="LessThanLowerOrGreaterThanUpperThreshold")
    assert code(e) == "InvalidParameterCombination"
