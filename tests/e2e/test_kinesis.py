"""Kinesis Data Streams with boto3, the AWS CLI and CBOR."""

import base64
import datetime
import hashlib
import json
import math
import time

import botocore.exceptions
import pytest

from lakebox_harness import Lakebox
from signing import signed_request
from test_protocols import cbor_encode


def code(e):
    return e.value.response["Error"]["Code"]


@pytest.fixture(scope="module")
def lakebox(tmp_path_factory):
    """These tests read and write faster than AWS's per-shard limits allow, so they run with
    the limits off; test_throughput_limits checks the limits on a default server."""
    server = Lakebox(tmp_path_factory.mktemp("kinesis"), "--kinesis-throughput-limits", "off").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def kinesis(lakebox):
    return lakebox.client("kinesis")


def read_all(kinesis, stream, shard_id, iterator_type="TRIM_HORIZON", **kw):
    it = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard_id, ShardIteratorType=iterator_type, **kw)["ShardIterator"]
    out = []
    while True:
        r = kinesis.get_records(ShardIterator=it, Limit=1000)
        out += r["Records"]
        if not r["Records"]:
            return out, r
        it = r["NextShardIterator"]


def test_stream_lifecycle(kinesis):
    kinesis.create_stream(StreamName="life", ShardCount=3)
    kinesis.get_waiter("stream_exists").wait(StreamName="life", WaiterConfig={"Delay": 1, "MaxAttempts": 5})
    d = kinesis.describe_stream(StreamName="life")["StreamDescription"]
    assert d["StreamStatus"] == "ACTIVE" and d["RetentionPeriodHours"] == 24
    assert d["StreamARN"] == "arn:aws:kinesis:us-east-1:000000000000:stream/life"
    assert [s["ShardId"] for s in d["Shards"]] == ["shardId-000000000000", "shardId-000000000001", "shardId-000000000002"]
    assert d["Shards"][0]["HashKeyRange"]["StartingHashKey"] == "0"
    assert d["Shards"][2]["HashKeyRange"]["EndingHashKey"] == str(2**128 - 1)
    assert isinstance(d["StreamCreationTimestamp"], datetime.datetime)
    summary = kinesis.describe_stream_summary(StreamARN=d["StreamARN"])["StreamDescriptionSummary"]
    assert summary["OpenShardCount"] == 3 and summary["StreamName"] == "life"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kinesis.create_stream(StreamName="life", ShardCount=1)
    assert code(e) == "ResourceInUseException"
    kinesis.delete_stream(StreamName="life")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kinesis.describe_stream(StreamName="life")
    assert code(e) == "ResourceNotFoundException"


def test_on_demand_and_validation(kinesis):
    kinesis.create_stream(StreamName="od", StreamModeDetails={"StreamMode": "ON_DEMAND"})
    s = kinesis.describe_stream_summary(StreamName="od")["StreamDescriptionSummary"]
    assert s["StreamModeDetails"]["StreamMode"] == "ON_DEMAND" and s["OpenShardCount"] == 4
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kinesis.create_stream(StreamName="bad name!", ShardCount=1)
    assert code(e) == "ValidationException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kinesis.create_stream(StreamName="noshards")
    assert code(e) == "InvalidArgumentException"
    limits = kinesis.describe_limits()
    assert limits["ShardLimit"] == 500 and limits["OpenShardCount"] >= 4


def test_list_streams_and_shards_paginate(kinesis):
    for n in ["page-a", "page-b", "page-c"]:
        kinesis.create_stream(StreamName=n, ShardCount=5)
    r = kinesis.list_streams(Limit=2, ExclusiveStartStreamName="page-")
    assert r["StreamNames"] == ["page-a", "page-b"] and r["HasMoreStreams"]
    assert r["StreamSummaries"][0]["StreamStatus"] == "ACTIVE"
    r2 = kinesis.list_streams(NextToken=r["NextToken"], Limit=1)
    assert r2["StreamNames"] == ["page-c"]
    names = [n for p in kinesis.get_paginator("list_streams").paginate(PaginationConfig={"PageSize": 2}) for n in p["StreamNames"]]
    assert {"page-a", "page-b", "page-c"} <= set(names) and names == sorted(names)
    r = kinesis.list_shards(StreamName="page-a", MaxResults=2)
    assert len(r["Shards"]) == 2 and r["NextToken"]
    r = kinesis.list_shards(NextToken=r["NextToken"], MaxResults=10)
    assert [s["ShardId"] for s in r["Shards"]] == [f"shardId-00000000000{i}" for i in (2, 3, 4)] and "NextToken" not in r
    r = kinesis.list_shards(StreamName="page-a", ShardFilter={"Type": "AFTER_SHARD_ID", "ShardId": "shardId-000000000003"})
    assert [s["ShardId"] for s in r["Shards"]] == ["shardId-000000000004"]
    d = kinesis.describe_stream(StreamName="page-a", Limit=3)["StreamDescription"]
    assert len(d["Shards"]) == 3 and d["HasMoreShards"]


def shard_for(key, shards):
    h = int(hashlib.md5(key.encode()).hexdigest(), 16)
    return next(s["ShardId"] for s in shards if int(s["HashKeyRange"]["StartingHashKey"]) <= h <= int(s["HashKeyRange"]["EndingHashKey"]))


def test_put_and_get_records_in_order(kinesis):
    kinesis.create_stream(StreamName="rec", ShardCount=4)
    shards = kinesis.list_shards(StreamName="rec")["Shards"]
    before = datetime.datetime.now(datetime.timezone.utc)
    puts = []
    for i in range(40):
        key = f"user-{i % 7}"
        r = kinesis.put_record(StreamName="rec", Data=f"event-{i}".encode(), PartitionKey=key)
        assert r["ShardId"] == shard_for(key, shards)  # MD5 routing, as AWS
        assert len(r["SequenceNumber"]) == 56
        puts.append((r["ShardId"], r["SequenceNumber"], f"event-{i}".encode(), key))
    for shard in shards:
        mine = [p for p in puts if p[0] == shard["ShardId"]]
        got, last = read_all(kinesis, "rec", shard["ShardId"])
        assert [(r["SequenceNumber"], r["Data"], r["PartitionKey"]) for r in got] == [(p[1], p[2], p[3]) for p in mine]
        seqs = [int(r["SequenceNumber"]) for r in got]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        assert all(r["ApproximateArrivalTimestamp"] >= before - datetime.timedelta(seconds=2) for r in got)
        assert last["MillisBehindLatest"] == 0
    # Positions: AT/AFTER sequence number, LATEST, AT_TIMESTAMP.
    shard0 = [p for p in puts if p[0] == shards[0]["ShardId"]]
    got, _ = read_all(kinesis, "rec", shards[0]["ShardId"], "AT_SEQUENCE_NUMBER", StartingSequenceNumber=shard0[1][1])
    assert [r["SequenceNumber"] for r in got] == [p[1] for p in shard0[1:]]
    got, _ = read_all(kinesis, "rec", shards[0]["ShardId"], "AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=shard0[1][1])
    assert [r["SequenceNumber"] for r in got] == [p[1] for p in shard0[2:]]
    latest = kinesis.get_shard_iterator(StreamName="rec", ShardId=shards[0]["ShardId"], ShardIteratorType="LATEST")["ShardIterator"]
    assert kinesis.get_records(ShardIterator=latest)["Records"] == []
    r = kinesis.put_record(StreamName="rec", Data=b"after-latest", PartitionKey="x", ExplicitHashKey="0")
    assert r["ShardId"] == "shardId-000000000000"
    assert [x["Data"] for x in kinesis.get_records(ShardIterator=latest)["Records"]] == [b"after-latest"]
    # A time in the future is refused, as Kinesis refuses it.
    future = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kinesis.get_shard_iterator(StreamName="rec", ShardId=shards[0]["ShardId"], ShardIteratorType="AT_TIMESTAMP",
                                   Timestamp=future)
    assert e.value.response["Error"]["Code"] == "InvalidArgumentException"
    assert e.value.response["Error"]["Message"].startswith(
        "The timestampInMillis parameter cannot be greater than the currentTimestampInMillis. timestampInMillis: ")
    got, _ = read_all(kinesis, "rec", shards[0]["ShardId"], "AT_TIMESTAMP", Timestamp=before - datetime.timedelta(seconds=5))
    assert len(got) == len(shard0) + 1


def test_get_records_limit_and_iterator_errors(kinesis):
    kinesis.create_stream(StreamName="lim", ShardCount=1)
    kinesis.put_records(StreamName="lim", Records=[{"Data": str(i).encode(), "PartitionKey": "k"} for i in range(25)])
    it = kinesis.get_shard_iterator(StreamName="lim", ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    r = kinesis.get_records(ShardIterator=it, Limit=10)
    assert [x["Data"] for x in r["Records"]] == [str(i).encode() for i in range(10)]
    assert r["MillisBehindLatest"] >= 0
    r = kinesis.get_records(ShardIterator=r["NextShardIterator"], Limit=100)
    assert len(r["Records"]) == 15
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kinesis.get_records(ShardIterator="not-an-iterator-at-all")
    assert code(e) == "InvalidArgumentException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kinesis.get_shard_iterator(StreamName="lim", ShardId="shardId-000000000009", ShardIteratorType="LATEST")
    assert code(e) == "ResourceNotFoundException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kinesis.get_shard_iterator(StreamName="lim", ShardId="shardId-000000000000", ShardIteratorType="AT_SEQUENCE_NUMBER",
                                   StartingSequenceNumber="123")
    assert code(e) == "InvalidArgumentException"
    # An iterator of a deleted stream does not read a new stream of the same name.
    kinesis.delete_stream(StreamName="lim")
    kinesis.create_stream(StreamName="lim", ShardCount=1)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kinesis.get_records(ShardIterator=it)
    assert code(e) == "ResourceNotFoundException"


def test_put_records_batch(kinesis):
    kinesis.create_stream(StreamName="batch", ShardCount=3)
    records = [{"Data": f"r{i}".encode(), "PartitionKey": f"pk{i}"} for i in range(500)]
    r = kinesis.put_records(StreamName="batch", Records=records)
    assert r["FailedRecordCount"] == 0 and len(r["Records"]) == 500
    shards = kinesis.list_shards(StreamName="batch")["Shards"]
    for rec, res in zip(records, r["Records"]):
        assert res["ShardId"] == shard_for(rec["PartitionKey"], shards)
    total = 0
    for s in shards:
        got, _ = read_all(kinesis, "batch", s["ShardId"])
        mine = [(res["SequenceNumber"], rec["Data"]) for rec, res in zip(records, r["Records"]) if res["ShardId"] == s["ShardId"]]
        assert [(g["SequenceNumber"], g["Data"]) for g in got] == mine  # request order kept within a shard
        total += len(got)
    assert total == 500
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kinesis.put_records(StreamName="batch", Records=[{"Data": b"x", "PartitionKey": "k"}] * 501)
    assert code(e) == "ValidationException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kinesis.put_record(StreamName="batch", Data=b"x" * (1024 * 1024), PartitionKey="k")
    assert code(e) == "ValidationException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kinesis.put_record(StreamName="batch", Data=b"x", PartitionKey="k", ExplicitHashKey=str(2**128))
    assert code(e) == "InvalidArgumentException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kinesis.put_record(StreamName="missing", Data=b"x", PartitionKey="k")
    assert code(e) == "ResourceNotFoundException"


def test_tags_and_retention(kinesis):
    kinesis.create_stream(StreamName="tagged", ShardCount=1)
    kinesis.add_tags_to_stream(StreamName="tagged", Tags={"team": "data", "env": "dev"})
    assert kinesis.list_tags_for_stream(StreamName="tagged")["Tags"] == [{"Key": "env", "Value": "dev"}, {"Key": "team", "Value": "data"}]
    kinesis.remove_tags_from_stream(StreamName="tagged", TagKeys=["env"])
    assert kinesis.list_tags_for_stream(StreamName="tagged")["Tags"] == [{"Key": "team", "Value": "data"}]
    kinesis.increase_stream_retention_period(StreamName="tagged", RetentionPeriodHours=48)
    assert kinesis.describe_stream_summary(StreamName="tagged")["StreamDescriptionSummary"]["RetentionPeriodHours"] == 48
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kinesis.increase_stream_retention_period(StreamName="tagged", RetentionPeriodHours=24)
    assert code(e) == "InvalidArgumentException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kinesis.decrease_stream_retention_period(StreamName="tagged", RetentionPeriodHours=10)
    assert code(e) == "InvalidArgumentException"
    kinesis.decrease_stream_retention_period(StreamName="tagged", RetentionPeriodHours=24)


def test_streams_are_per_region_and_account(lakebox):
    east = lakebox.client("kinesis", region="us-east-1")
    west = lakebox.client("kinesis", region="us-west-2")
    other = lakebox.client("kinesis", access_key="123456789012")
    east.create_stream(StreamName="regional", ShardCount=1)
    assert "regional" not in west.list_streams()["StreamNames"]
    assert "regional" not in other.list_streams()["StreamNames"]
    west.create_stream(StreamName="regional", ShardCount=2)
    assert west.describe_stream_summary(StreamName="regional")["StreamDescriptionSummary"]["StreamARN"].startswith("arn:aws:kinesis:us-west-2:")


def test_cli(lakebox):
    assert lakebox.cli("kinesis", "create-stream", "--stream-name", "cli-stream", "--shard-count", "1").returncode == 0
    # AWS CLI v1 (the one on PyPI) sends blob arguments as raw text.
    out = lakebox.cli("kinesis", "put-record", "--stream-name", "cli-stream", "--partition-key", "k", "--data", "hello")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["ShardId"] == "shardId-000000000000"
    it = json.loads(lakebox.cli("kinesis", "get-shard-iterator", "--stream-name", "cli-stream", "--shard-id",
                                "shardId-000000000000", "--shard-iterator-type", "TRIM_HORIZON").stdout)["ShardIterator"]
    recs = json.loads(lakebox.cli("kinesis", "get-records", "--shard-iterator", it).stdout)["Records"]
    assert base64.b64decode(recs[0]["Data"]) == b"hello"


def cbor_decode(buf):
    """A minimal CBOR decoder for the shapes Kinesis returns."""
    def item(i):
        b = buf[i]; major, info = b >> 5, b & 31; i += 1
        if info < 24: n = info
        else:
            size = {24: 1, 25: 2, 26: 4, 27: 8}[info]; n = int.from_bytes(buf[i:i + size], "big"); i += size
        if major == 0: return n, i
        if major == 2: return bytes(buf[i:i + n]), i + n
        if major == 3: return buf[i:i + n].decode(), i + n
        if major == 4:
            out = []
            for _ in range(n): v, i = item(i); out.append(v)
            return out, i
        if major == 5:
            out = {}
            for _ in range(n):
                k, i = item(i); v, i = item(i); out[k] = v
            return out, i
        if major == 6:
            v, i = item(i); return ("tag", n, v), i
        if major == 7 and info in (20, 21): return info == 21, i
        raise ValueError(b)
    return item(0)[0]


def test_cbor_put_and_get(lakebox, kinesis):
    kinesis.create_stream(StreamName="cbor", ShardCount=1)
    ct = {"Content-Type": "application/x-amz-cbor-1.1"}
    status, headers, body = signed_request(lakebox.endpoint, body=cbor_encode({"StreamName": "cbor", "Data": b"\x00\xffraw", "PartitionKey": "pk"}),
                                           headers={"X-Amz-Target": "Kinesis_20131202.PutRecord", **ct})
    assert status == 200 and headers["content-type"] == "application/x-amz-cbor-1.1"
    put = cbor_decode(body)
    assert put["ShardId"] == "shardId-000000000000"
    status, _, body = signed_request(lakebox.endpoint, body=cbor_encode({"StreamName": "cbor", "ShardId": "shardId-000000000000", "ShardIteratorType": "TRIM_HORIZON"}),
                                     headers={"X-Amz-Target": "Kinesis_20131202.GetShardIterator", **ct})
    it = cbor_decode(body)["ShardIterator"]
    status, _, body = signed_request(lakebox.endpoint, body=cbor_encode({"ShardIterator": it}),
                                     headers={"X-Amz-Target": "Kinesis_20131202.GetRecords", **ct})
    rec = cbor_decode(body)["Records"][0]
    assert rec["Data"] == b"\x00\xffraw"  # a CBOR byte string, not base64
    tag, number, millis = rec["ApproximateArrivalTimestamp"]
    assert number == 1 and abs(millis / 1000 - time.time()) < 60  # tag 1, epoch milliseconds
    assert rec["SequenceNumber"] == put["SequenceNumber"]
    # An operation without output answers an empty body in CBOR too (Smithy's `no_output`).
    status, _, body = signed_request(lakebox.endpoint, body=cbor_encode({"StreamName": "cbor", "Tags": {"team": "x"}}),
                                     headers={"X-Amz-Target": "Kinesis_20131202.AddTagsToStream", **ct})
    assert (status, body) == (200, b"")
    assert kinesis.list_tags_for_stream(StreamName="cbor")["Tags"] == [{"Key": "team", "Value": "x"}]


def test_records_survive_restart(tmp_path):
    with Lakebox(tmp_path) as lb:
        k = lb.client("kinesis")
        k.create_stream(StreamName="durable", ShardCount=2)
        acked = k.put_records(StreamName="durable", Records=[{"Data": f"d{i}".encode(), "PartitionKey": f"p{i}"} for i in range(100)])["Records"]
    with Lakebox(tmp_path) as lb:
        k = lb.client("kinesis")
        got = {}
        for s in k.list_shards(StreamName="durable")["Shards"]:
            for r in read_all(k, "durable", s["ShardId"])[0]:
                got[r["SequenceNumber"]] = r["Data"]
        assert got == {a["SequenceNumber"]: f"d{i}".encode() for i, a in enumerate(acked)}
        # Sequence numbers keep increasing after a restart.
        r = k.put_record(StreamName="durable", Data=b"later", PartitionKey="p0")
        assert int(r["SequenceNumber"]) > max(int(a["SequenceNumber"]) for a in acked if a["ShardId"] == r["ShardId"])


# ---- resharding ----

def drain(kinesis, stream, shard_id):
    """Reads a shard from the horizon to its end; returns records and the final response."""
    it = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    out = []
    while True:
        r = kinesis.get_records(ShardIterator=it)
        out += r["Records"]
        if "NextShardIterator" not in r or not r["Records"]:
            return out, r
        it = r["NextShardIterator"]


def test_split_and_merge_with_lineage(kinesis):
    kinesis.create_stream(StreamName="reshard", ShardCount=2)
    before = kinesis.put_record(StreamName="reshard", Data=b"before", PartitionKey="x", ExplicitHashKey="0")
    s0 = kinesis.list_shards(StreamName="reshard")["Shards"][0]
    end0 = int(s0["HashKeyRange"]["EndingHashKey"])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kinesis.split_shard(StreamName="reshard", ShardToSplit=s0["ShardId"], NewStartingHashKey="1")
    assert code(e) == "InvalidArgumentException"
    mid = end0 // 2
    kinesis.split_shard(StreamName="reshard", ShardToSplit=s0["ShardId"], NewStartingHashKey=str(mid))
    shards = {s["ShardId"]: s for s in kinesis.list_shards(StreamName="reshard")["Shards"]}
    assert len(shards) == 4
    parent = shards["shardId-000000000000"]
    assert "EndingSequenceNumber" in parent["SequenceNumberRange"]
    a, b = shards["shardId-000000000002"], shards["shardId-000000000003"]
    assert a["ParentShardId"] == b["ParentShardId"] == "shardId-000000000000"
    assert a["HashKeyRange"] == {"StartingHashKey": "0", "EndingHashKey": str(mid - 1)}
    assert b["HashKeyRange"] == {"StartingHashKey": str(mid), "EndingHashKey": str(end0)}
    assert kinesis.describe_stream_summary(StreamName="reshard")["StreamDescriptionSummary"]["OpenShardCount"] == 3
    open_now = [s["ShardId"] for s in kinesis.list_shards(StreamName="reshard", ShardFilter={"Type": "AT_LATEST"})["Shards"]]
    assert open_now == ["shardId-000000000001", "shardId-000000000002", "shardId-000000000003"]
    # New records go to the children; the closed parent ends with ChildShards.
    after = kinesis.put_record(StreamName="reshard", Data=b"after", PartitionKey="x", ExplicitHashKey="0")
    assert after["ShardId"] == "shardId-000000000002"
    recs, last = drain(kinesis, "reshard", "shardId-000000000000")
    assert [r["SequenceNumber"] for r in recs] == [before["SequenceNumber"]]
    assert "NextShardIterator" not in last
    assert sorted(c["ShardId"] for c in last["ChildShards"]) == ["shardId-000000000002", "shardId-000000000003"]
    assert all(c["ParentShards"] == ["shardId-000000000000"] for c in last["ChildShards"])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kinesis.split_shard(StreamName="reshard", ShardToSplit="shardId-000000000000", NewStartingHashKey=str(mid))
    assert code(e) == "ResourceInUseException"
    # Merge the two children back.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kinesis.merge_shards(StreamName="reshard", ShardToMerge="shardId-000000000001", AdjacentShardToMerge="shardId-000000000002")
    assert code(e) == "InvalidArgumentException"  # not adjacent
    kinesis.merge_shards(StreamName="reshard", ShardToMerge="shardId-000000000002", AdjacentShardToMerge="shardId-000000000003")
    merged = {s["ShardId"]: s for s in kinesis.list_shards(StreamName="reshard")["Shards"]}["shardId-000000000004"]
    assert merged["ParentShardId"] == "shardId-000000000002" and merged["AdjacentParentShardId"] == "shardId-000000000003"
    assert merged["HashKeyRange"] == {"StartingHashKey": "0", "EndingHashKey": str(end0)}
    recs, last = drain(kinesis, "reshard", "shardId-000000000002")
    assert [r["Data"] for r in recs] == [b"after"]
    assert [c["ShardId"] for c in last["ChildShards"]] == ["shardId-000000000004"]
    assert last["ChildShards"][0]["ParentShards"] == ["shardId-000000000002", "shardId-000000000003"]


def test_update_shard_count(kinesis):
    kinesis.create_stream(StreamName="scale", ShardCount=2)
    r = kinesis.update_shard_count(StreamName="scale", TargetShardCount=4, ScalingType="UNIFORM_SCALING")
    assert r["CurrentShardCount"] == 2 and r["TargetShardCount"] == 4
    open_shards = kinesis.list_shards(StreamName="scale", ShardFilter={"Type": "AT_LATEST"})["Shards"]
    assert len(open_shards) == 4
    assert [s["ParentShardId"] for s in open_shards] == ["shardId-000000000000"] * 2 + ["shardId-000000000001"] * 2
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kinesis.update_shard_count(StreamName="scale", TargetShardCount=9, ScalingType="UNIFORM_SCALING")
    assert code(e) == "LimitExceededException"
    # Uneven ratios go through intermediate splits and merges, as in AWS.
    kinesis.update_shard_count(StreamName="scale", TargetShardCount=5, ScalingType="UNIFORM_SCALING")
    kinesis.update_shard_count(StreamName="scale", TargetShardCount=3, ScalingType="UNIFORM_SCALING")
    shards = kinesis.list_shards(StreamName="scale")["Shards"]
    open_shards = [s for s in shards if "EndingSequenceNumber" not in s["SequenceNumberRange"]]
    assert len(open_shards) == 3
    step = 2**128 // 3
    assert [int(s["HashKeyRange"]["StartingHashKey"]) for s in open_shards] == [0, step, 2 * step]
    by_id = {s["ShardId"]: s for s in shards}
    for s in shards:  # every lineage link points at a real shard, at most two parents each
        for link in ("ParentShardId", "AdjacentParentShardId"):
            assert link not in s or s[link] in by_id
    kinesis.update_shard_count(StreamName="scale", TargetShardCount=4, ScalingType="UNIFORM_SCALING")
    kinesis.update_shard_count(StreamName="scale", TargetShardCount=2, ScalingType="UNIFORM_SCALING")
    assert len(kinesis.list_shards(StreamName="scale", ShardFilter={"Type": "AT_LATEST"})["Shards"]) == 2
    # Records put before the rescaling are all still readable from the closed shards.
    # Records still route to open shards only.
    r = kinesis.put_records(StreamName="scale", Records=[{"Data": b"x", "PartitionKey": f"k{i}"} for i in range(50)])
    open_ids = {s["ShardId"] for s in kinesis.list_shards(StreamName="scale", ShardFilter={"Type": "AT_LATEST"})["Shards"]}
    assert r["FailedRecordCount"] == 0 and {x["ShardId"] for x in r["Records"]} <= open_ids


def test_updating_status_refuses_a_second_reshard(tmp_path):
    with Lakebox(tmp_path, "--kinesis-create-delay-ms", "400") as lb:
        k = lb.client("kinesis")
        k.create_stream(StreamName="slow", ShardCount=1)
        assert k.describe_stream_summary(StreamName="slow")["StreamDescriptionSummary"]["StreamStatus"] == "CREATING"
        with pytest.raises(botocore.exceptions.ClientError) as e:
            k.put_record(StreamName="slow", Data=b"x", PartitionKey="k")
        assert code(e) == "ResourceNotFoundException"
        time.sleep(0.5)
        k.update_shard_count(StreamName="slow", TargetShardCount=2, ScalingType="UNIFORM_SCALING")
        assert k.describe_stream_summary(StreamName="slow")["StreamDescriptionSummary"]["StreamStatus"] == "UPDATING"
        k.put_record(StreamName="slow", Data=b"x", PartitionKey="k")  # writes continue while UPDATING
        with pytest.raises(botocore.exceptions.ClientError) as e:
            k.update_shard_count(StreamName="slow", TargetShardCount=4, ScalingType="UNIFORM_SCALING")
        assert code(e) == "ResourceInUseException"
        time.sleep(0.5)
        assert k.describe_stream_summary(StreamName="slow")["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE"
        k.delete_stream(StreamName="slow")
        assert k.describe_stream_summary(StreamName="slow")["StreamDescriptionSummary"]["StreamStatus"] == "DELETING"
        with pytest.raises(botocore.exceptions.ClientError) as e:
            k.put_record(StreamName="slow", Data=b"x", PartitionKey="k")
        assert code(e) == "ResourceNotFoundException"
        with pytest.raises(botocore.exceptions.ClientError) as e:
            k.create_stream(StreamName="slow", ShardCount=1)
        assert code(e) == "ResourceInUseException"
        time.sleep(0.6)
        with pytest.raises(botocore.exceptions.ClientError) as e:
            k.describe_stream_summary(StreamName="slow")
        assert code(e) == "ResourceNotFoundException"
        k.create_stream(StreamName="slow", ShardCount=1)


def test_reshard_takes_effect_when_updating_ends_and_creating_streams_show_no_shards(tmp_path):
    with Lakebox(tmp_path, "--kinesis-create-delay-ms", "600") as lb:
        k = lb.client("kinesis")
        k.create_stream(StreamName="later", ShardCount=1)
        d = k.describe_stream(StreamName="later")["StreamDescription"]
        assert d["StreamStatus"] == "CREATING" and d["Shards"] == [] and d["HasMoreShards"] is False
        assert wait_until(lambda: k.describe_stream_summary(StreamName="later")["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE")
        assert [s["ShardId"] for s in k.describe_stream(StreamName="later")["StreamDescription"]["Shards"]] == ["shardId-000000000000"]
        k.split_shard(StreamName="later", ShardToSplit="shardId-000000000000", NewStartingHashKey=str(2 ** 127))
        # While UPDATING the old shard map stands: the parent is open and takes the records.
        assert k.describe_stream_summary(StreamName="later")["StreamDescriptionSummary"]["StreamStatus"] == "UPDATING"
        shards = k.list_shards(StreamName="later")["Shards"]
        assert [s["ShardId"] for s in shards] == ["shardId-000000000000"]
        assert "EndingSequenceNumber" not in shards[0]["SequenceNumberRange"]
        during = k.put_record(StreamName="later", Data=b"during", PartitionKey="k")
        assert during["ShardId"] == "shardId-000000000000"
        assert wait_until(lambda: k.describe_stream_summary(StreamName="later")["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE")
        shards = {s["ShardId"]: s for s in k.list_shards(StreamName="later")["Shards"]}
        assert sorted(shards) == ["shardId-000000000000", "shardId-000000000001", "shardId-000000000002"]
        assert "EndingSequenceNumber" in shards["shardId-000000000000"]["SequenceNumberRange"]
        after = k.put_record(StreamName="later", Data=b"after", PartitionKey="k")
        assert after["ShardId"] in ("shardId-000000000001", "shardId-000000000002")
        it = k.get_shard_iterator(StreamName="later", ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON")
        r = k.get_records(ShardIterator=it["ShardIterator"])
        assert [x["Data"] for x in r["Records"]] == [b"during"]
        assert "NextShardIterator" not in r and len(r["ChildShards"]) == 2  # the closed parent's end


def test_kinesis_reads_shard_ids_and_checks_requests_as_aws_does(kinesis):
    kinesis.create_stream(StreamName="forms", ShardCount=2)
    kinesis.put_record(StreamName="forms", Data=b"one", PartitionKey="k", ExplicitHashKey="0")
    # Short shard ids name the same shard, as Kinesis reads them.
    for form in ["shardId-000000000000", "shardId-0", "shard-0", "anything-0", "0"]:
        it = kinesis.get_shard_iterator(StreamName="forms", ShardId=form, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        assert [r["Data"] for r in kinesis.get_records(ShardIterator=it)["Records"]] == [b"one"], form
    for bad in ["shardId-x", "a-b-0", "shardId-"]:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            kinesis.get_shard_iterator(StreamName="forms", ShardId=bad, ShardIteratorType="TRIM_HORIZON")
        assert code(e) == "ResourceNotFoundException"
        assert e.value.response["Error"]["Message"] == f"Could not find shard {bad} in stream forms under account 000000000000."
    # A sequence number only goes with AT_/AFTER_SEQUENCE_NUMBER.
    seq = kinesis.put_record(StreamName="forms", Data=b"two", PartitionKey="k", ExplicitHashKey="0")["SequenceNumber"]
    for kind in ["TRIM_HORIZON", "LATEST"]:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            kinesis.get_shard_iterator(StreamName="forms", ShardId="shardId-0", ShardIteratorType=kind,
                                       StartingSequenceNumber=seq)
        assert code(e) == "InvalidArgumentException"
        assert e.value.response["Error"]["Message"].endswith(f"Request specified {kind} and also a StartingSequenceNumber.")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kinesis.get_shard_iterator(StreamName="forms", ShardId="shardId-0", ShardIteratorType="AT_SEQUENCE_NUMBER")
    assert e.value.response["Error"]["Message"].endswith("Request specified AT_SEQUENCE_NUMBER and no StartingSequenceNumber.")
    # SequenceNumberForOrdering: any number in Kinesis's layouts, not only this stream's.
    for ordering in [seq, "0", "1", "49590338271490256608559692538361571095921575989136588898"]:
        kinesis.put_record(StreamName="forms", Data=b"o", PartitionKey="k", SequenceNumberForOrdering=ordering)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kinesis.put_record(StreamName="forms", Data=b"o", PartitionKey="k", SequenceNumberForOrdering="9" * 60)
    assert code(e) == "InvalidArgumentException"
    # Merging: ShardToMerge must be the lower shard of the adjacent pair.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kinesis.merge_shards(StreamName="forms", ShardToMerge="shardId-000000000001", AdjacentShardToMerge="shardId-000000000000")
    assert code(e) == "InvalidArgumentException" and "not an adjacent pair" in e.value.response["Error"]["Message"]
    kinesis.merge_shards(StreamName="forms", ShardToMerge="shard-0", AdjacentShardToMerge="shard-1")
    assert [s["ShardId"] for s in kinesis.list_shards(StreamName="forms", ShardFilter={"Type": "AT_LATEST"})["Shards"]] == [
        "shardId-000000000002"]


def test_tag_characters_and_records_written_while_encrypted(kinesis):
    kinesis.create_stream(StreamName="tagchars", ShardCount=1)
    kinesis.add_tags_to_stream(StreamName="tagchars", Tags={"team name_./=+-@:é": "Data Lake 2024"})
    for bad, word in [({"a#b": "v"}, "Some tags contain invalid characters"), ({"k": "100%"}, "illegal characters")]:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            kinesis.add_tags_to_stream(StreamName="tagchars", Tags=bad)
        assert code(e) == "InvalidArgumentException" and word in e.value.response["Error"]["Message"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kinesis.create_stream(StreamName="tagchars2", ShardCount=1, Tags={"x": "<y>"})
    assert code(e) == "InvalidArgumentException"
    tags = kinesis.list_tags_for_stream(StreamName="tagchars")["Tags"]
    assert tags == [{"Key": "team name_./=+-@:é", "Value": "Data Lake 2024"}]
    kinesis.put_record(StreamName="tagchars", Data=b"plain", PartitionKey="k")
    kinesis.start_stream_encryption(StreamName="tagchars", EncryptionType="KMS", KeyId="alias/aws/kinesis")
    assert wait_until(lambda: kinesis.describe_stream_summary(StreamName="tagchars")["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE")
    assert kinesis.put_record(StreamName="tagchars", Data=b"sealed", PartitionKey="k")["EncryptionType"] == "KMS"
    got, _ = read_all(kinesis, "tagchars", "shardId-000000000000")
    assert [(r["Data"], r.get("EncryptionType")) for r in got] == [(b"plain", None), (b"sealed", "KMS")]


def test_no_record_is_lost_across_a_concurrent_split(lakebox, kinesis):
    import threading
    kinesis.create_stream(StreamName="race", ShardCount=1)
    acked, stop = [], threading.Event()

    def producer(n):
        k = lakebox.client("kinesis")
        i = 0
        while not stop.is_set():
            r = k.put_records(StreamName="race", Records=[{"Data": f"{n}-{i}-{j}".encode(), "PartitionKey": f"{n}{i}{j}"} for j in range(20)])
            acked.extend(x["SequenceNumber"] for x in r["Records"])
            i += 1

    threads = [threading.Thread(target=producer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    kinesis.split_shard(StreamName="race", ShardToSplit="shardId-000000000000", NewStartingHashKey=str(2**127))
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join()
    seen = set()
    for s in kinesis.list_shards(StreamName="race")["Shards"]:
        recs, _ = drain(kinesis, "race", s["ShardId"])
        seen |= {r["SequenceNumber"] for r in recs}
    assert len(acked) > 100 and set(acked) == seen


def test_throughput_limits_are_on_by_default(tmp_path):
    with Lakebox(tmp_path) as lb:
        k = lb.client("kinesis")
        k.create_stream(StreamName="limited", ShardCount=1)
        # 1,000 records per second per shard: batches of 500 sent back to back are refused in
        # part once a second's allowance is used, however slow the machine is.
        results = []
        t0 = time.monotonic()
        for _ in range(10):
            results += k.put_records(StreamName="limited", Records=[{"Data": b"x", "PartitionKey": f"k{i}"} for i in range(500)])["Records"]
            if any("ErrorCode" in r for r in results):
                break
        elapsed = time.monotonic() - t0
        failed = [r for r in results if "ErrorCode" in r]
        ok = [r for r in results if "SequenceNumber" in r]
        assert failed and all(r["ErrorCode"] == "ProvisionedThroughputExceededException" for r in failed)
        assert 0 < len(ok) <= 1000 * (math.ceil(elapsed) + 1)  # one allowance per second involved
        # 1 MiB per second per shard: a few 600 KB records in a row exceed it however slowly
        # the client sends (2,000 one-byte records did not when the client managed < 1,000/s).
        with pytest.raises(botocore.exceptions.ClientError) as e:
            for _ in range(20):
                k.put_record(StreamName="limited", Data=b"x" * 600_000, PartitionKey="k")
        assert code(e) == "ProvisionedThroughputExceededException"
        # 5 GetRecords calls per second per shard.
        it = k.get_shard_iterator(StreamName="limited", ShardId="shardId-000000000000", ShardIteratorType="LATEST")["ShardIterator"]
        with pytest.raises(botocore.exceptions.ClientError) as e:
            for _ in range(12):
                it = k.get_records(ShardIterator=it, Limit=1)["NextShardIterator"]
        assert code(e) == "ProvisionedThroughputExceededException"
        time.sleep(1.1)
        k.get_records(ShardIterator=it, Limit=1)  # the next second has a fresh budget


# ---- stream settings, resource tags and policies, consumers ----

def test_stream_mode_encryption_and_monitoring(kinesis):
    kinesis.create_stream(StreamName="settings", ShardCount=1)
    arn = kinesis.describe_stream_summary(StreamName="settings")["StreamDescriptionSummary"]["StreamARN"]
    kinesis.update_stream_mode(StreamARN=arn, StreamModeDetails={"StreamMode": "ON_DEMAND"})
    assert kinesis.describe_stream_summary(StreamName="settings")["StreamDescriptionSummary"]["StreamModeDetails"]["StreamMode"] == "ON_DEMAND"
    kinesis.start_stream_encryption(StreamName="settings", EncryptionType="KMS", KeyId="alias/aws/kinesis")
    d = kinesis.describe_stream(StreamName="settings")["StreamDescription"]
    assert d["EncryptionType"] == "KMS" and d["KeyId"] == "alias/aws/kinesis"
    assert kinesis.put_record(StreamName="settings", Data=b"x", PartitionKey="k")["EncryptionType"] == "KMS"
    kinesis.stop_stream_encryption(StreamName="settings", EncryptionType="KMS", KeyId="alias/aws/kinesis")
    assert kinesis.describe_stream(StreamName="settings")["StreamDescription"]["EncryptionType"] == "NONE"
    r = kinesis.enable_enhanced_monitoring(StreamName="settings", ShardLevelMetrics=["IncomingBytes", "OutgoingRecords"])
    assert r["CurrentShardLevelMetrics"] == [] and r["DesiredShardLevelMetrics"] == ["IncomingBytes", "OutgoingRecords"]
    r = kinesis.disable_enhanced_monitoring(StreamName="settings", ShardLevelMetrics=["IncomingBytes"])
    assert r["DesiredShardLevelMetrics"] == ["OutgoingRecords"]
    em = kinesis.describe_stream_summary(StreamName="settings")["StreamDescriptionSummary"]["EnhancedMonitoring"]
    assert em == [{"ShardLevelMetrics": ["OutgoingRecords"]}]


def test_resource_tags_policies_and_consumers(kinesis):
    kinesis.create_stream(StreamName="fanout", ShardCount=1)
    arn = kinesis.describe_stream_summary(StreamName="fanout")["StreamDescriptionSummary"]["StreamARN"]
    kinesis.tag_resource(ResourceARN=arn, Tags={"a": "1", "b": "2"})
    kinesis.untag_resource(ResourceARN=arn, TagKeys=["a"])
    assert kinesis.list_tags_for_resource(ResourceARN=arn)["Tags"] == [{"Key": "b", "Value": "2"}]
    assert kinesis.list_tags_for_stream(StreamName="fanout")["Tags"] == [{"Key": "b", "Value": "2"}]
    policy = json.dumps({"Version": "2012-10-17", "Statement": []})
    kinesis.put_resource_policy(ResourceARN=arn, Policy=policy)
    assert json.loads(kinesis.get_resource_policy(ResourceARN=arn)["Policy"]) == json.loads(policy)
    kinesis.delete_resource_policy(ResourceARN=arn)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kinesis.put_resource_policy(ResourceARN=arn, Policy="nope")
    assert code(e) == "InvalidArgumentException"

    c = kinesis.register_stream_consumer(StreamARN=arn, ConsumerName="app-1")["Consumer"]
    assert c["ConsumerARN"].startswith(arn + "/consumer/app-1:") and c["ConsumerStatus"] == "ACTIVE"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kinesis.register_stream_consumer(StreamARN=arn, ConsumerName="app-1")
    assert code(e) == "ResourceInUseException"
    kinesis.register_stream_consumer(StreamARN=arn, ConsumerName="app-2")
    d = kinesis.describe_stream_consumer(ConsumerARN=c["ConsumerARN"])["ConsumerDescription"]
    assert d["ConsumerName"] == "app-1" and d["StreamARN"] == arn
    assert kinesis.describe_stream_consumer(StreamARN=arn, ConsumerName="app-2")["ConsumerDescription"]["ConsumerName"] == "app-2"
    page = kinesis.list_stream_consumers(StreamARN=arn, MaxResults=1)
    assert [x["ConsumerName"] for x in page["Consumers"]] == ["app-1"] and page["NextToken"]
    assert [x["ConsumerName"] for x in kinesis.list_stream_consumers(StreamARN=arn, NextToken=page["NextToken"])["Consumers"]] == ["app-2"]
    kinesis.tag_resource(ResourceARN=c["ConsumerARN"], Tags={"owner": "me"})
    assert kinesis.list_tags_for_resource(ResourceARN=c["ConsumerARN"])["Tags"] == [{"Key": "owner", "Value": "me"}]
    assert kinesis.describe_stream_summary(StreamName="fanout")["StreamDescriptionSummary"]["ConsumerCount"] == 2
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kinesis.delete_stream(StreamName="fanout")
    assert code(e) == "ResourceInUseException"
    kinesis.deregister_stream_consumer(StreamARN=arn, ConsumerName="app-2")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kinesis.describe_stream_consumer(StreamARN=arn, ConsumerName="app-2")
    assert code(e) == "ResourceNotFoundException"
    kinesis.delete_stream(StreamName="fanout", EnforceConsumerDeletion=True)


def test_subscribe_to_shard_pushes_records(kinesis):
    import threading
    kinesis.create_stream(StreamName="push", ShardCount=1)
    arn = kinesis.describe_stream_summary(StreamName="push")["StreamDescriptionSummary"]["StreamARN"]
    consumer = kinesis.register_stream_consumer(StreamARN=arn, ConsumerName="pusher")["Consumer"]["ConsumerARN"]
    first = kinesis.put_record(StreamName="push", Data=b"before", PartitionKey="k")
    sub = kinesis.subscribe_to_shard(ConsumerARN=consumer, ShardId="shardId-000000000000",
                                     StartingPosition={"Type": "TRIM_HORIZON"})
    got, seen_times = [], []

    def later():
        time.sleep(0.3)
        for i in range(3):
            kinesis.put_record(StreamName="push", Data=f"live-{i}".encode(), PartitionKey="k")

    threading.Thread(target=later).start()
    started = time.monotonic()
    for event in sub["EventStream"]:
        e = event["SubscribeToShardEvent"]
        got += [r["Data"] for r in e["Records"]]
        seen_times.append(time.monotonic() - started)
        assert "ContinuationSequenceNumber" in e and e["MillisBehindLatest"] >= 0
        if len(got) >= 4:
            break
    sub["EventStream"]._raw_stream.close()
    assert got == [b"before", b"live-0", b"live-1", b"live-2"]
    assert seen_times[-1] < 4  # pushed as they arrive, not at the heartbeat
    # AT_SEQUENCE_NUMBER, and errors.
    sub = kinesis.subscribe_to_shard(ConsumerARN=consumer, ShardId="shardId-000000000000",
                                     StartingPosition={"Type": "AT_SEQUENCE_NUMBER", "SequenceNumber": first["SequenceNumber"]})
    e = next(iter(sub["EventStream"]))["SubscribeToShardEvent"]
    assert e["Records"][0]["SequenceNumber"] == first["SequenceNumber"]
    sub["EventStream"]._raw_stream.close()
    with pytest.raises(botocore.exceptions.ClientError) as err:
        kinesis.subscribe_to_shard(ConsumerARN=arn + "/consumer/nobody:1", ShardId="shardId-000000000000",
                                   StartingPosition={"Type": "LATEST"})
    assert code(err) == "ResourceNotFoundException"


def test_subscription_ends_with_child_shards(kinesis):
    kinesis.create_stream(StreamName="push-split", ShardCount=1)
    arn = kinesis.describe_stream_summary(StreamName="push-split")["StreamDescriptionSummary"]["StreamARN"]
    consumer = kinesis.register_stream_consumer(StreamARN=arn, ConsumerName="c")["Consumer"]["ConsumerARN"]
    kinesis.put_record(StreamName="push-split", Data=b"old", PartitionKey="k")
    kinesis.split_shard(StreamName="push-split", ShardToSplit="shardId-000000000000", NewStartingHashKey=str(2**127))
    sub = kinesis.subscribe_to_shard(ConsumerARN=consumer, ShardId="shardId-000000000000", StartingPosition={"Type": "TRIM_HORIZON"})
    events = [e["SubscribeToShardEvent"] for e in sub["EventStream"]]  # the stream ends by itself
    assert [r["Data"] for e in events for r in e["Records"]] == [b"old"]
    assert sorted(c["ShardId"] for c in events[-1]["ChildShards"]) == ["shardId-000000000001", "shardId-000000000002"]


# ---- retention, KPL aggregation, crash durability ----

def segment_files(data_dir):
    import glob
    return glob.glob(str(data_dir / "kinesis" / "streams" / "*" / "shardId-000000000000" / "*.log"))


def test_expired_records_are_deleted_from_disk(tmp_path):
    # 24 "hours" of retention last 1.2 s here, and segments roll every 4 KiB.
    with Lakebox(tmp_path, "--kinesis-retention-hour-seconds", "0.05", "--kinesis-segment-bytes", "4096",
                 "--kinesis-throughput-limits", "off") as lb:
        k = lb.client("kinesis")
        k.create_stream(StreamName="short", ShardCount=1)
        for _ in range(4):
            k.put_records(StreamName="short", Records=[{"Data": b"x" * 100, "PartitionKey": "k"} for _ in range(50)])
        assert len(segment_files(tmp_path)) >= 4
        got, _ = read_all(k, "short", "shardId-000000000000")
        assert len(got) == 200
        time.sleep(1.6)
        k.put_record(StreamName="short", Data=b"fresh", PartitionKey="k")
        assert wait_until(lambda: len(segment_files(tmp_path)) <= 2), segment_files(tmp_path)
        got, _ = read_all(k, "short", "shardId-000000000000")
        assert [r["Data"] for r in got] == [b"fresh"]


def wait_until(check, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def test_kpl_aggregated_records_pass_through_byte_for_byte(kinesis):
    # A KPL aggregated record: magic, protobuf body, MD5 of the body. Lakebox must not touch it.
    body = bytes([0x0A, 0x02]) + b"pk" + bytes([0x1A, 0x06, 0x08, 0x00, 0x1A, 0x02]) + b"hi"
    aggregated = bytes([0xF3, 0x89, 0x9A, 0xC2]) + body + hashlib.md5(body).digest()
    kinesis.create_stream(StreamName="kpl", ShardCount=1)
    kinesis.put_record(StreamName="kpl", Data=aggregated, PartitionKey="agg")
    got, _ = read_all(kinesis, "kpl", "shardId-000000000000")
    assert got[0]["Data"] == aggregated


def test_sigkill_keeps_acknowledged_records_with_their_sequence_numbers_and_times(tmp_path):
    import signal
    import threading
    lb = Lakebox(tmp_path, "--kinesis-throughput-limits", "off").start()
    k = lb.client("kinesis")
    k.create_stream(StreamName="crash", ShardCount=2)
    acked, stop = {}, threading.Event()

    def producer(n):
        c = lb.client("kinesis", connect_timeout=2, read_timeout=5)
        i = 0
        try:
            while not stop.is_set():
                recs = [{"Data": f"{n}-{i}-{j}".encode(), "PartitionKey": f"{n}{i}{j}"} for j in range(25)]
                r = c.put_records(StreamName="crash", Records=recs)
                for rec, res in zip(recs, r["Records"]):
                    acked[res["SequenceNumber"]] = (res["ShardId"], rec["Data"])
                i += 1
        except Exception:
            return  # the server was killed: in-flight batches were never acknowledged

    threads = [threading.Thread(target=producer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    times_before = {}
    for shard in ("shardId-000000000000", "shardId-000000000001"):
        for r in read_all(k, "crash", shard)[0]:
            times_before[r["SequenceNumber"]] = r["ApproximateArrivalTimestamp"]
    lb.proc.send_signal(signal.SIGKILL)
    lb.proc.wait()
    stop.set()
    for t in threads:
        t.join(10)
    with Lakebox(tmp_path, "--kinesis-throughput-limits", "off") as again:
        k = again.client("kinesis")
        found = {}
        for shard in ("shardId-000000000000", "shardId-000000000001"):
            for r in read_all(k, "crash", shard)[0]:
                found[r["SequenceNumber"]] = (shard, r["Data"], r["ApproximateArrivalTimestamp"])
        assert len(acked) > 500
        for seq, (shard, data) in acked.items():
            assert found[seq][:2] == (shard, data), f"acknowledged record {seq} lost or changed"
        for seq, ts in times_before.items():
            assert found[seq][2] == ts  # identical arrival timestamps after the crash


def test_iterators_expire_after_five_minutes(tmp_path):
    from signing import send
    with Lakebox(tmp_path) as lb:
        k = lb.client("kinesis")
        k.create_stream(StreamName="expiring", ShardCount=1)
        first = k.put_record(StreamName="expiring", Data=b"a", PartitionKey="k")["SequenceNumber"]
        # SequenceNumberForOrdering: the next record orders after the one named.
        second = k.put_record(StreamName="expiring", Data=b"b", PartitionKey="k", SequenceNumberForOrdering=first)["SequenceNumber"]
        assert int(second) > int(first)
        it = k.get_shard_iterator(StreamName="expiring", ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        assert len(k.get_records(ShardIterator=it)["Records"]) == 2
        status, _, _ = send(lb.endpoint, "POST", "/_lakebox/test/clock?advance_ms=299000")
        assert status == 200
        k.get_records(ShardIterator=it)  # 4 min 59 s: still valid
        send(lb.endpoint, "POST", "/_lakebox/test/clock?advance_ms=2000")
        with pytest.raises(botocore.exceptions.ClientError) as e:
            k.get_records(ShardIterator=it)
        assert code(e) == "ExpiredIteratorException"
        fresh = k.get_shard_iterator(StreamName="expiring", ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        assert len(k.get_records(ShardIterator=fresh)["Records"]) == 2
