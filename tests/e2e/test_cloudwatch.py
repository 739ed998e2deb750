"""CloudWatch metrics and dashboards, judged by boto3 and the AWS CLI over each of CloudWatch's
protocols: awsJson 1.0 (boto3's choice today), smithy rpc-v2-cbor (today's Java and JavaScript
SDKs; botocore speaks it when the model lists it first) and awsQuery (older SDKs). The data
that comes back is asserted: statistics, percentiles, units, resolutions, paging, restarts."""

import datetime
import gzip
import json
import os
import tempfile
import urllib.parse

import boto3
import botocore
import botocore.exceptions
import botocore.session
import pytest

from lakebox_harness import Lakebox
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
    root = tempfile.mkdtemp()
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
