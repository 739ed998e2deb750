"""Data Firehose with boto3: delivery streams, durable buffering, object names, compression,
processing, dynamic partitioning, Parquet conversion and Kinesis sources, checked by reading
what lands in Lakebox S3."""

import base64
import gzip
import hashlib
import io
import json
import re
import struct
import time
import zipfile

import botocore.exceptions
import cramjam
import pyarrow.parquet as pq
import pytest

from lakebox_harness import Lakebox, zip_of
from signing import send

ROLE = "arn:aws:iam::000000000000:role/firehose"


def code(e):
    return e.value.response["Error"]["Code"]


@pytest.fixture(scope="module")
def lakebox(tmp_path_factory):
    server = Lakebox(tmp_path_factory.mktemp("firehose")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def fh(lakebox):
    return lakebox.client("firehose")


@pytest.fixture(scope="module")
def s3(lakebox):
    c = lakebox.client("s3")
    c.create_bucket(Bucket="fh-lake")
    return c


_n = [0]


def unique(p="ds"):
    _n[0] += 1
    return f"{p}-{_n[0]}"


def dest(prefix=None, **kw):
    d = {"RoleARN": ROLE, "BucketARN": "arn:aws:s3:::fh-lake", "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0}}
    if prefix is not None:
        d["Prefix"] = prefix
    d.update(kw)
    return d


def create(fh, name=None, **destination):
    name = name or unique()
    fh.create_delivery_stream(DeliveryStreamName=name, ExtendedS3DestinationConfiguration=dest(**destination))
    return name


def keys(s3, prefix):
    out = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="fh-lake", Prefix=prefix):
        out += [o["Key"] for o in page.get("Contents", [])]
    return out


def wait_keys(s3, prefix, n=1, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        k = keys(s3, prefix)
        if len(k) >= n:
            return sorted(k)
        time.sleep(0.05)
    raise AssertionError(f"expected {n} objects under {prefix}, found {keys(s3, prefix)}")


def body(s3, key):
    return s3.get_object(Bucket="fh-lake", Key=key)["Body"].read()


def records(n, start=0):
    return [json.dumps({"id": i, "name": f"n{i}"}).encode() + b"\n" for i in range(start, start + n)]


def test_create_describe_list_delete(fh):
    name = create(fh, prefix="api/")
    d = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    assert d["DeliveryStreamStatus"] == "ACTIVE" and d["DeliveryStreamType"] == "DirectPut" and d["VersionId"] == "1"
    assert d["DeliveryStreamARN"] == f"arn:aws:firehose:us-east-1:000000000000:deliverystream/{name}"
    assert d["DeliveryStreamEncryptionConfiguration"] == {"Status": "DISABLED"}
    dd = d["Destinations"][0]
    assert dd["DestinationId"] == "destinationId-000000000001" and d["HasMoreDestinations"] is False
    ext = dd["ExtendedS3DestinationDescription"]
    assert ext["BucketARN"] == "arn:aws:s3:::fh-lake" and ext["Prefix"] == "api/" and ext["CompressionFormat"] == "UNCOMPRESSED"
    assert ext["BufferingHints"] == {"SizeInMBs": 1, "IntervalInSeconds": 0}
    assert ext["EncryptionConfiguration"] == {"NoEncryptionConfig": "NoEncryption"} and ext["S3BackupMode"] == "Disabled"
    assert dd["S3DestinationDescription"]["BucketARN"] == "arn:aws:s3:::fh-lake"
    # Defaults when BufferingHints are left out: 5 MiB, 300 s.
    other = unique()
    fh.create_delivery_stream(DeliveryStreamName=other, S3DestinationConfiguration={"RoleARN": ROLE, "BucketARN": "arn:aws:s3:::fh-lake"})
    ext = fh.describe_delivery_stream(DeliveryStreamName=other)["DeliveryStreamDescription"]["Destinations"][0]["ExtendedS3DestinationDescription"]
    assert ext["BufferingHints"] == {"SizeInMBs": 5, "IntervalInSeconds": 300}

    with pytest.raises(botocore.exceptions.ClientError) as e:
        create(fh, name=name)
    assert code(e) == "ResourceInUseException"
    listed = fh.list_delivery_streams(Limit=10000)["DeliveryStreamNames"]
    assert name in listed and other in listed and listed == sorted(listed)
    page = fh.list_delivery_streams(Limit=1, ExclusiveStartDeliveryStreamName=name)
    assert page["HasMoreDeliveryStreams"] in (True, False) and all(n > name for n in page["DeliveryStreamNames"])
    assert fh.list_delivery_streams(DeliveryStreamType="KinesisStreamAsSource")["DeliveryStreamNames"] == [] or \
        name not in fh.list_delivery_streams(DeliveryStreamType="KinesisStreamAsSource")["DeliveryStreamNames"]

    fh.delete_delivery_stream(DeliveryStreamName=other)
    deadline = time.time() + 10
    while other in fh.list_delivery_streams(Limit=10000)["DeliveryStreamNames"]:
        assert time.time() < deadline
        time.sleep(0.05)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        fh.describe_delivery_stream(DeliveryStreamName=other)
    assert code(e) == "ResourceNotFoundException"


def test_refusals(fh):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        fh.create_delivery_stream(DeliveryStreamName=unique(), RedshiftDestinationConfiguration={
            "RoleARN": ROLE, "ClusterJDBCURL": "jdbc:redshift://x", "CopyCommand": {"DataTableName": "t"},
            "Username": "user", "Password": "password1", "S3Configuration": {"RoleARN": ROLE, "BucketARN": "arn:aws:s3:::fh-lake"}})
    assert code(e) == "InvalidArgumentException" and "not supported by Lakebox yet" in e.value.response["Error"]["Message"]
    for params in [[], [{"ParameterName": "LambdaArn", "ParameterValue": "arn:aws:lambda:us-east-1:000000000000:function:f"},
                        {"ParameterName": "NumberOfRetries", "ParameterValue": "500"}]]:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            create(fh, ProcessingConfiguration={"Enabled": True, "Processors": [{"Type": "Lambda", "Parameters": params}]})
        assert code(e) == "InvalidArgumentException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        create(fh, name="bad name!")
    assert code(e) == "ValidationException"
    for bad in [dict(prefix="x/!{timestamp:yyyy}/"),  # expressions need an ErrorOutputPrefix
                dict(prefix="x/!{firehose:error-output-type}/", ErrorOutputPrefix="e/!{firehose:error-output-type}/"),
                dict(prefix="x/", ErrorOutputPrefix="e/!{timestamp:yyyy}/"),  # error prefix lacks error-output-type
                dict(prefix="x/!{partitionKeyFromQuery:a}/", ErrorOutputPrefix="e/"),  # dynamic partitioning off
                dict(CustomTimeZone="Mars/Base"),
                dict(BufferingHints={"SizeInMBs": 32}, DynamicPartitioningConfiguration={"Enabled": True},
                     prefix="x/!{partitionKeyFromQuery:a}/", ErrorOutputPrefix="e/!{firehose:error-output-type}/")]:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            create(fh, **bad)
        assert code(e) == "InvalidArgumentException", bad
    # What the model itself constrains is refused before Firehose's own rules, in AWS's words.
    path = "extendedS3DestinationConfiguration"
    for bad, message in [
        (dict(FileExtension="gz"), f"Value 'gz' at '{path}.fileExtension' failed to satisfy constraint: "
                                   "Member must satisfy regular expression pattern: ^$|\\.[0-9a-z!\\-_.*'()]+"),
        (dict(CompressionFormat="LZMA"), f"Value 'LZMA' at '{path}.compressionFormat' failed to satisfy constraint: "
                                         "Member must satisfy enum value set: ["),
        (dict(BufferingHints={"SizeInMBs": 200, "IntervalInSeconds": 0}),
         f"Value '200' at '{path}.bufferingHints.sizeInMBs' failed to satisfy constraint: "
         "Member must have value less than or equal to 128"),
    ]:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            create(fh, **bad)
        assert code(e) == "ValidationException", bad
        assert message in e.value.response["Error"]["Message"], e.value.response["Error"]["Message"]
    # A name one past the model's 64 characters is a validation error, not an unknown stream.
    for call in (lambda n: create(fh, name=n), lambda n: fh.describe_delivery_stream(DeliveryStreamName=n),
                 lambda n: fh.put_record(DeliveryStreamName=n, Record={"Data": b"x"})):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call("n" * 65)
        assert code(e) == "ValidationException"
        assert e.value.response["Error"]["Message"] == (
            f"1 validation error detected: Value '{'n' * 65}' at 'deliveryStreamName' failed to satisfy "
            "constraint: Member must have length less than or equal to 64")


def test_records_land_in_order_with_default_names(fh, s3):
    name = create(fh)
    rs = records(20)
    r = fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": d} for d in rs])
    assert r["FailedPutCount"] == 0 and len(r["RequestResponses"]) == 20
    assert len({x["RecordId"] for x in r["RequestResponses"]}) == 20

    def mine():
        return [k for k in keys(s3, "20") if f"/{name}-1-" in k]

    deadline = time.time() + 10
    while not mine():
        assert time.time() < deadline
        time.sleep(0.05)
    [k] = mine()
    assert re.fullmatch(rf"\d{{4}}/\d\d/\d\d/\d\d/{name}-1-\d{{4}}-\d\d-\d\d-\d\d-\d\d-\d\d-[0-9a-f-]{{36}}", k), k
    assert body(s3, k) == b"".join(rs)  # one object, records in the order put
    one = fh.put_record(DeliveryStreamName=name, Record={"Data": b"last\n"})
    assert one["RecordId"] and one["Encrypted"] is False
    while len(mine()) < 2:
        assert time.time() < deadline
        time.sleep(0.05)
    [later] = [x for x in mine() if x != k]
    assert body(s3, later) == b"last\n"


def test_batch_limits(fh):
    name = create(fh)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": b"x"}] * 501)
    assert code(e) == "ValidationException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": b"x" * 1_000_000}] * 5)
    assert code(e) == "InvalidArgumentException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        fh.put_record(DeliveryStreamName=name, Record={"Data": b"x" * 1_024_001})
    assert code(e) == "ValidationException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        fh.put_record(DeliveryStreamName="nope", Record={"Data": b"x"})
    assert code(e) == "ResourceNotFoundException"


@pytest.mark.parametrize("fmt,ext", [("GZIP", ".gz"), ("ZIP", ".zip"), ("Snappy", ".snappy"), ("HADOOP_SNAPPY", ".hsnappy")])
def test_compression(fh, s3, fmt, ext):
    p = f"comp-{fmt.lower()}/"
    name = create(fh, prefix=p, CompressionFormat=fmt)
    rs = records(300)
    fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": d} for d in rs])
    [k] = wait_keys(s3, p)
    assert k.endswith(ext)
    raw = body(s3, k)
    if fmt == "GZIP":
        out = gzip.decompress(raw)
    elif fmt == "ZIP":
        with zipfile.ZipFile(io.BytesIO(raw)) as z:
            out = z.read(z.namelist()[0])
    elif fmt == "Snappy":
        out = bytes(cramjam.snappy.decompress(raw))
    else:
        out, pos = b"", 0
        while pos < len(raw):
            _, clen = struct.unpack(">II", raw[pos:pos + 8])
            out += bytes(cramjam.snappy.decompress_raw(raw[pos + 8:pos + 8 + clen]))
            pos += 8 + clen
    assert out == b"".join(rs)


def test_custom_prefix_time_zone_extension_and_delimiter(fh, s3):
    name = create(fh, prefix="custom/year=!{timestamp:yyyy}/hour=!{timestamp:HH}/!{firehose:random-string}/",
                  ErrorOutputPrefix="custom-err/!{firehose:error-output-type}/", CustomTimeZone="Asia/Tokyo",
                  FileExtension=".jsonl",
                  ProcessingConfiguration={"Enabled": True, "Processors": [{"Type": "AppendDelimiterToRecord",
                                           "Parameters": [{"ParameterName": "Delimiter", "ParameterValue": "\\n"}]}]})
    t0 = time.gmtime()
    fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": b'{"a":1}'}, {"Data": b'{"a":2}'}])
    [k] = wait_keys(s3, "custom/")
    tokyo_hour = (t0.tm_hour + 9) % 24
    m = re.fullmatch(rf"custom/year=(\d{{4}})/hour=(\d\d)/([a-z0-9]{{11}})/{name}-1-.*\.jsonl", k)
    assert m, k
    assert int(m.group(2)) in (tokyo_hour, (tokyo_hour + 1) % 24)
    assert body(s3, k) == b'{"a":1}\n{"a":2}\n'


def test_buffering_by_size_then_by_interval(lakebox, fh, s3):
    name = create(fh, prefix="buffered/", BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 900})
    rec = b"x" * 99_999 + b"\n"
    for _ in range(3):
        fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": rec}] * 5)  # 1.5 MB in all
    [first] = wait_keys(s3, "buffered/")
    assert len(body(s3, first)) >= 1024 * 1024 - len(rec)
    time.sleep(0.5)
    assert len(keys(s3, "buffered/")) == 1  # the rest waits for the interval
    status, _, _ = send(lakebox.endpoint, "POST", "/_lakebox/test/clock?advance_ms=901000")
    assert status == 200
    ks = wait_keys(s3, "buffered/", 2)
    assert sum(len(body(s3, k)) for k in ks) == 15 * len(rec)


def test_dynamic_partitioning_with_jq(fh, s3):
    query = "{customer: .customer, year: (.ts | tostring | .[0:4])}"
    cfg = dict(prefix="dyn/customer=!{partitionKeyFromQuery:customer}/year=!{partitionKeyFromQuery:year}/",
               ErrorOutputPrefix="dyn-err/!{firehose:error-output-type}/",
               BufferingHints={"SizeInMBs": 64, "IntervalInSeconds": 0},
               DynamicPartitioningConfiguration={"Enabled": True},
               ProcessingConfiguration={"Enabled": True, "Processors": [
                   {"Type": "MetadataExtraction", "Parameters": [
                       {"ParameterName": "MetadataExtractionQuery", "ParameterValue": query},
                       {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"}]},
                   {"Type": "AppendDelimiterToRecord", "Parameters": []}]})
    for bad in [dict(cfg, BufferingHints={"SizeInMBs": 5, "IntervalInSeconds": 0}),
                {k: v for k, v in cfg.items() if k != "ErrorOutputPrefix"}]:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            create(fh, **bad)
        assert code(e) == "InvalidArgumentException"
    name = create(fh, **cfg)
    rows = [{"customer": "acme", "ts": 20230101}, {"customer": "zen", "ts": 20240101}, {"customer": "acme", "ts": 20240505}]
    fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": json.dumps(r).encode()} for r in rows] + [{"Data": b"not json"}])
    ks = wait_keys(s3, "dyn/", 3)
    by_prefix = {k.rsplit("/", 1)[0]: body(s3, k) for k in ks}
    assert by_prefix == {
        "dyn/customer=acme/year=2023": json.dumps(rows[0]).encode() + b"\n",
        "dyn/customer=zen/year=2024": json.dumps(rows[1]).encode() + b"\n",
        "dyn/customer=acme/year=2024": json.dumps(rows[2]).encode() + b"\n",
    }
    [err] = wait_keys(s3, "dyn-err/processing-failed/")
    doc = json.loads(body(s3, err).splitlines()[0])
    assert base64.b64decode(doc["rawData"]) == b"not json" and doc["errorCode"] and doc["arrivalTimestamp"]
    # Dynamic partitioning cannot be turned on for an existing stream.
    plain = create(fh, prefix="dyn-plain/")
    v = fh.describe_delivery_stream(DeliveryStreamName=plain)["DeliveryStreamDescription"]["VersionId"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        fh.update_destination(DeliveryStreamName=plain, CurrentDeliveryStreamVersionId=v, DestinationId="destinationId-000000000001",
                              ExtendedS3DestinationUpdate={k: v for k, v in dest(**cfg).items() if k not in ("RoleARN", "BucketARN")})
    assert code(e) == "InvalidArgumentException"


def kpl_aggregate(user_records):
    def varint(n):
        out = b""
        while True:
            b = n & 0x7F
            n >>= 7
            if n:
                out += bytes([b | 0x80])
            else:
                return out + bytes([b])
    body = b"\x0a" + varint(1) + b"k"
    for d in user_records:
        rec = b"\x08\x00" + b"\x1a" + varint(len(d)) + d
        body += b"\x1a" + varint(len(rec)) + rec
    return b"\xf3\x89\x9a\xc2" + body + hashlib.md5(body).digest()


def test_record_deaggregation(fh, s3):
    name = create(fh, prefix="deagg-json/", ProcessingConfiguration={"Enabled": True, "Processors": [
        {"Type": "RecordDeAggregation", "Parameters": [{"ParameterName": "SubRecordType", "ParameterValue": "JSON"}]},
        {"Type": "AppendDelimiterToRecord", "Parameters": []}]})
    fh.put_record(DeliveryStreamName=name, Record={"Data": b'{"a":1}{"a":2} {"a":3}'})
    [k] = wait_keys(s3, "deagg-json/")
    assert body(s3, k) == b'{"a":1}\n{"a":2}\n{"a":3}\n'
    name = create(fh, prefix="deagg-kpl/", ProcessingConfiguration={"Enabled": True, "Processors": [
        {"Type": "RecordDeAggregation", "Parameters": [{"ParameterName": "SubRecordType", "ParameterValue": "KPL"}]},
        {"Type": "AppendDelimiterToRecord", "Parameters": []}]})
    fh.put_record(DeliveryStreamName=name, Record={"Data": kpl_aggregate([b"one", b"two", b"three"])})
    [k] = wait_keys(s3, "deagg-kpl/")
    assert body(s3, k) == b"one\ntwo\nthree\n"


def test_update_destination_versions(fh, s3):
    name = create(fh, prefix="upd-v1/")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        fh.update_destination(DeliveryStreamName=name, CurrentDeliveryStreamVersionId="7",
                              DestinationId="destinationId-000000000001", ExtendedS3DestinationUpdate={"Prefix": "upd-v2/"})
    assert code(e) == "ConcurrentModificationException"
    fh.update_destination(DeliveryStreamName=name, CurrentDeliveryStreamVersionId="1",
                          DestinationId="destinationId-000000000001",
                          ExtendedS3DestinationUpdate={"Prefix": "upd-v2/", "CompressionFormat": "GZIP"})
    d = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    assert d["VersionId"] == "2" and d["LastUpdateTimestamp"]
    ext = d["Destinations"][0]["ExtendedS3DestinationDescription"]
    assert ext["Prefix"] == "upd-v2/" and ext["CompressionFormat"] == "GZIP" and ext["BucketARN"] == "arn:aws:s3:::fh-lake"
    fh.put_record(DeliveryStreamName=name, Record={"Data": b"hello"})
    [k] = wait_keys(s3, "upd-v2/")
    assert f"/{name}-2-" in k and k.endswith(".gz") and gzip.decompress(body(s3, k)) == b"hello"


def test_tags_and_encryption(fh):
    name = unique()
    fh.create_delivery_stream(DeliveryStreamName=name, ExtendedS3DestinationConfiguration=dest(),
                              Tags=[{"Key": "team", "Value": "data"}])
    fh.tag_delivery_stream(DeliveryStreamName=name, Tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])
    t = fh.list_tags_for_delivery_stream(DeliveryStreamName=name)
    assert t["Tags"] == [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}, {"Key": "team", "Value": "data"}]
    assert t["HasMoreTags"] is False
    page = fh.list_tags_for_delivery_stream(DeliveryStreamName=name, Limit=1, ExclusiveStartTagKey="a")
    assert page["Tags"] == [{"Key": "b", "Value": "2"}] and page["HasMoreTags"] is True
    fh.untag_delivery_stream(DeliveryStreamName=name, TagKeys=["a", "team"])
    assert fh.list_tags_for_delivery_stream(DeliveryStreamName=name)["Tags"] == [{"Key": "b", "Value": "2"}]

    fh.start_delivery_stream_encryption(DeliveryStreamName=name, DeliveryStreamEncryptionConfigurationInput={"KeyType": "AWS_OWNED_CMK"})
    enc = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]["DeliveryStreamEncryptionConfiguration"]
    assert enc == {"KeyType": "AWS_OWNED_CMK", "Status": "ENABLED"}
    assert fh.put_record(DeliveryStreamName=name, Record={"Data": b"x"})["Encrypted"] is True
    fh.stop_delivery_stream_encryption(DeliveryStreamName=name)
    enc = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]["DeliveryStreamEncryptionConfiguration"]
    assert enc["Status"] == "DISABLED"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        fh.start_delivery_stream_encryption(DeliveryStreamName=name,
                                            DeliveryStreamEncryptionConfigurationInput={"KeyType": "CUSTOMER_MANAGED_CMK"})
    assert code(e) == "InvalidArgumentException"


def test_kinesis_source(lakebox, fh, s3):
    k = lakebox.client("kinesis")
    k.create_stream(StreamName="fh-src", ShardCount=2)
    k.put_record(StreamName="fh-src", Data=b"before\n", PartitionKey="p")  # before the delivery stream: not delivered
    arn = k.describe_stream_summary(StreamName="fh-src")["StreamDescriptionSummary"]["StreamARN"]
    name = unique("ks")
    fh.create_delivery_stream(DeliveryStreamName=name, DeliveryStreamType="KinesisStreamAsSource",
                              KinesisStreamSourceConfiguration={"KinesisStreamARN": arn, "RoleARN": ROLE},
                              ExtendedS3DestinationConfiguration=dest(prefix="ksrc/"))
    d = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    assert d["DeliveryStreamType"] == "KinesisStreamAsSource"
    assert d["Source"]["KinesisStreamSourceDescription"]["KinesisStreamARN"] == arn
    assert d["Source"]["KinesisStreamSourceDescription"]["DeliveryStartTimestamp"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        fh.put_record(DeliveryStreamName=name, Record={"Data": b"x"})
    assert code(e) == "InvalidArgumentException"
    sent = [f"r{i}\n".encode() for i in range(50)]
    k.put_records(StreamName="fh-src", Records=[{"Data": d, "PartitionKey": str(i)} for i, d in enumerate(sent)])
    k.put_record(StreamName="fh-src", Data=kpl_aggregate([b"agg1\n", b"agg2\n"]), PartitionKey="k")
    deadline = time.time() + 15
    got = b""
    while time.time() < deadline:
        got = b"".join(body(s3, x) for x in keys(s3, "ksrc/"))
        if len(got.splitlines()) >= 52:
            break
        time.sleep(0.1)
    lines = sorted(got.splitlines())
    assert lines == sorted([d.strip() for d in sent] + [b"agg1", b"agg2"])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        fh.create_delivery_stream(DeliveryStreamName=unique(), DeliveryStreamType="KinesisStreamAsSource",
                                  KinesisStreamSourceConfiguration={"KinesisStreamARN": arn.replace("fh-src", "nope"), "RoleARN": ROLE},
                                  ExtendedS3DestinationConfiguration=dest())
    assert code(e) == "InvalidArgumentException"
    # ListDeliveryStreams: the type filter, and pages that walk every name once.
    for _ in range(4):
        create(fh)
    kinesis_sourced = fh.list_delivery_streams(DeliveryStreamType="KinesisStreamAsSource", Limit=10000)["DeliveryStreamNames"]
    direct = fh.list_delivery_streams(DeliveryStreamType="DirectPut", Limit=10000)["DeliveryStreamNames"]
    assert name in kinesis_sourced and name not in direct and direct
    walked, start = [], None
    while True:
        kw = {"Limit": 3} | ({"ExclusiveStartDeliveryStreamName": start} if start else {})
        page = fh.list_delivery_streams(**kw)
        walked += page["DeliveryStreamNames"]
        if not page["HasMoreDeliveryStreams"]:
            break
        start = page["DeliveryStreamNames"][-1]
    assert walked == sorted(set(kinesis_sourced + direct))


def test_parquet_conversion_with_glue_schema(lakebox, fh, s3):
    glue = lakebox.client("glue")
    glue.create_database(DatabaseInput={"Name": "fhdb"})
    glue.create_table(DatabaseName="fhdb", TableInput={"Name": "events", "StorageDescriptor": {"Columns": [
        {"Name": "id", "Type": "bigint"}, {"Name": "user_name", "Type": "string"}, {"Name": "score", "Type": "double"},
        {"Name": "ok", "Type": "boolean"}, {"Name": "at", "Type": "timestamp"}, {"Name": "day", "Type": "date"},
        {"Name": "tags", "Type": "array<string>"}, {"Name": "geo", "Type": "struct<lat:double,lon:double>"},
        {"Name": "renamed", "Type": "int"}]}})
    conv = {"Enabled": True,
            "SchemaConfiguration": {"DatabaseName": "fhdb", "TableName": "events", "RoleARN": ROLE},
            "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {
                "CaseInsensitive": True, "ConvertDotsInJsonKeysToUnderscores": True,
                "ColumnToJsonKeyMappings": {"renamed": "orig"}}}},
            "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {"Compression": "SNAPPY"}}}}
    with pytest.raises(botocore.exceptions.ClientError) as e:  # conversion needs 64 MiB buffers
        create(fh, prefix="pq/", ErrorOutputPrefix="pq-err/!{firehose:error-output-type}/", DataFormatConversionConfiguration=conv)
    assert code(e) == "InvalidArgumentException"
    name = create(fh, prefix="pq/", ErrorOutputPrefix="pq-err/!{firehose:error-output-type}/",
                  BufferingHints={"SizeInMBs": 64, "IntervalInSeconds": 0}, DataFormatConversionConfiguration=conv)
    rows = [
        {"ID": 1, "User.Name": "ann", "score": 1.5, "ok": True, "at": "2024-01-02 03:04:05", "day": "2024-01-02",
         "tags": ["a", "b"], "geo": {"lat": 1.0, "lon": 2.0}, "orig": 7},
        {"id": 2, "user_name": "bob", "score": "2.5", "ok": "false", "at": "2024-01-02T03:04:06Z", "extra": "ignored"},
        {"id": "not a number", "user_name": "bad"},
    ]
    fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": json.dumps(r).encode()} for r in rows])
    [k] = wait_keys(s3, "pq/")
    assert k.endswith(".parquet")
    t = pq.read_table(io.BytesIO(body(s3, k)))
    assert t.column_names == ["id", "user_name", "score", "ok", "at", "day", "tags", "geo", "renamed"]
    got = t.to_pylist()
    assert [r["id"] for r in got] == [1, 2] and [r["user_name"] for r in got] == ["ann", "bob"]
    assert [r["score"] for r in got] == [1.5, 2.5] and [r["ok"] for r in got] == [True, False]
    assert got[0]["at"].isoformat() == "2024-01-02T03:04:05" and got[1]["at"].isoformat() == "2024-01-02T03:04:06"
    assert str(got[0]["day"]) == "2024-01-02" and got[1]["day"] is None
    assert got[0]["tags"] == ["a", "b"] and got[0]["geo"] == {"lat": 1.0, "lon": 2.0} and got[0]["renamed"] == 7
    [err] = wait_keys(s3, "pq-err/format-conversion-failed/")
    doc = json.loads(body(s3, err).splitlines()[0])
    assert json.loads(base64.b64decode(doc["rawData"]))["user_name"] == "bad"
    assert doc["lastErrorCode"].startswith("DataFormatConversion.")
    assert doc["dataCatalogTable"]["tableName"] == "events"


def test_creating_then_active(tmp_path):
    with Lakebox(tmp_path, "--firehose-create-delay-ms", "1500") as lb:
        fh = lb.client("firehose")
        lb.client("s3").create_bucket(Bucket="fh-lake")
        fh.create_delivery_stream(DeliveryStreamName="slow", ExtendedS3DestinationConfiguration=dest())
        assert fh.describe_delivery_stream(DeliveryStreamName="slow")["DeliveryStreamDescription"]["DeliveryStreamStatus"] == "CREATING"
        with pytest.raises(botocore.exceptions.ClientError) as e:
            fh.put_record(DeliveryStreamName="slow", Record={"Data": b"x"})
        assert code(e) == "ResourceNotFoundException"
        deadline = time.time() + 10
        while fh.describe_delivery_stream(DeliveryStreamName="slow")["DeliveryStreamDescription"]["DeliveryStreamStatus"] != "ACTIVE":
            assert time.time() < deadline
            time.sleep(0.1)


def test_sigkill_mid_buffer_delivers_after_restart(tmp_path):
    sent = records(200)
    with Lakebox(tmp_path) as lb:
        fh, s3 = lb.client("firehose"), lb.client("s3")
        s3.create_bucket(Bucket="fh-lake")
        fh.create_delivery_stream(DeliveryStreamName="durable", ExtendedS3DestinationConfiguration=dest(
            prefix="durable/", BufferingHints={"SizeInMBs": 128, "IntervalInSeconds": 900}))
        for i in range(0, 200, 50):
            fh.put_record_batch(DeliveryStreamName="durable", Records=[{"Data": d} for d in sent[i:i + 50]])
        time.sleep(0.3)
        assert keys(s3, "durable/") == []  # still buffered
        lb.kill()
    with Lakebox(tmp_path) as lb:
        s3 = lb.client("s3")
        send(lb.endpoint, "POST", "/_lakebox/test/clock?advance_ms=901000")
        ks = wait_keys(s3, "durable/")
        assert b"".join(body(s3, k) for k in ks) == b"".join(sent)


class Endpoint:
    """A local HTTP endpoint that answers as Firehose expects, after `fail_first` 500s."""

    def __init__(self, fail_first=0, always_fail=False):
        import http.server
        import threading
        self.requests, self.fail_first, self.always_fail = [], fail_first, always_fail
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    raw = gzip.decompress(raw)
                doc = json.loads(raw)
                outer.requests.append(({k.lower(): v for k, v in self.headers.items()}, doc))
                if outer.always_fail or len(outer.requests) <= outer.fail_first:
                    self.send_response(500)
                    self.end_headers()
                    return
                answer = json.dumps({"requestId": doc["requestId"], "timestamp": int(time.time() * 1000)}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/ingest"

    def records(self):
        return [base64.b64decode(r["data"]) for _, doc in self.requests for r in doc["records"]]

    def close(self):
        self.server.shutdown()


def http_dest(url, **kw):
    d = {"EndpointConfiguration": {"Url": url, "Name": "local", "AccessKey": "secret-key"},
         "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
         "RequestConfiguration": {"ContentEncoding": "GZIP", "CommonAttributes": [{"AttributeName": "env", "AttributeValue": "test"}]},
         "RetryOptions": {"DurationInSeconds": 60},
         "S3Configuration": {"RoleARN": ROLE, "BucketARN": "arn:aws:s3:::fh-lake", "Prefix": "http-backup/",
                             "ErrorOutputPrefix": "http-err/!{firehose:error-output-type}/",
                             "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0}}}
    d.update(kw)
    return d


def wait_for(pred, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_http_endpoint_delivery_with_retries(fh, s3):
    ep = Endpoint(fail_first=2)
    try:
        name = unique("http")
        fh.create_delivery_stream(DeliveryStreamName=name, HttpEndpointDestinationConfiguration=http_dest(ep.url))
        d = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]["Destinations"][0]
        hd = d["HttpEndpointDestinationDescription"]
        assert hd["EndpointConfiguration"] == {"Url": ep.url, "Name": "local"}  # the access key is never returned
        assert hd["S3BackupMode"] == "FailedDataOnly" and hd["S3DestinationDescription"]["BucketARN"] == "arn:aws:s3:::fh-lake"
        sent = [f"rec-{i}".encode() for i in range(10)]
        fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": x} for x in sent])
        wait_for(lambda: len(ep.records()) >= 30)  # two failed attempts, then the accepted one
        headers, doc = ep.requests[-1]
        assert [base64.b64decode(r["data"]) for r in doc["records"]] == sent
        assert headers["x-amz-firehose-access-key"] == "secret-key"
        assert headers["x-amz-firehose-protocol-version"] == "1.0"
        assert headers["x-amz-firehose-request-id"] == doc["requestId"]
        assert headers["x-amz-firehose-source-arn"].endswith(f":deliverystream/{name}")
        assert json.loads(headers["x-amz-firehose-common-attributes"]) == {"commonAttributes": {"env": "test"}}
        time.sleep(0.3)
        assert len(ep.requests) == 3 and keys(s3, "http-err/") == []
    finally:
        ep.close()


def test_http_endpoint_failures_go_to_s3(fh, s3):
    ep = Endpoint(always_fail=True)
    try:
        name = unique("http")
        fh.create_delivery_stream(DeliveryStreamName=name, HttpEndpointDestinationConfiguration=http_dest(
            ep.url, RetryOptions={"DurationInSeconds": 1}, S3BackupMode="AllData"))
        fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": b"a"}, {"Data": b"b"}])
        [k] = wait_keys(s3, "http-err/http-endpoint-failed/")
        docs = [json.loads(line) for line in body(s3, k).splitlines()]
        assert [base64.b64decode(d["rawData"]) for d in docs] == [b"a", b"b"]
        assert len(ep.requests) >= 2  # retried within the second
        [backup] = wait_keys(s3, "http-backup/")  # AllData: every record is also kept in S3
        assert body(s3, backup) == b"ab"
    finally:
        ep.close()
    # AWS requires https://; Lakebox also takes http:// to the local machine, and nothing else.
    for url in ["ftp://example.com/x", "http://example.com/x", "http://127.0.0.1.example.com/x"]:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            fh.create_delivery_stream(DeliveryStreamName=unique(), HttpEndpointDestinationConfiguration=http_dest(url))
        assert code(e) == "ValidationException", url
        assert e.value.response["Error"]["Message"] == (
            f"1 validation error detected: Value '{url}' at 'httpEndpointDestinationConfiguration.endpointConfiguration.url' "
            "failed to satisfy constraint: Member must satisfy regular expression pattern: https://.*")


def test_https_endpoint(tmp_path):
    """AWS requires https endpoints: Lakebox speaks TLS, trusting the roots in SSL_CERT_FILE."""
    import ssl
    import subprocess
    # A test CA, and a server certificate for 127.0.0.1 signed by it.
    ca, ca_key, cert, key, csr = (tmp_path / n for n in ["ca.pem", "ca-key.pem", "cert.pem", "key.pem", "req.csr"])
    ext = tmp_path / "ext.cnf"
    ext.write_text("basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\n")

    def openssl(*args):
        subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca, "-days", "1", "-subj", "/CN=Lakebox test CA")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1")
    openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert, "-days", "1", "-extfile", ext)
    ep = Endpoint()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ep.server.socket = ctx.wrap_socket(ep.server.socket, server_side=True)
    url = ep.url.replace("http://", "https://")
    try:
        with Lakebox(tmp_path / "data", env={"SSL_CERT_FILE": str(ca)}) as lb:
            lb.client("s3").create_bucket(Bucket="fh-lake")
            fh = lb.client("firehose")
            fh.create_delivery_stream(DeliveryStreamName="tls", HttpEndpointDestinationConfiguration=http_dest(url))
            fh.put_record_batch(DeliveryStreamName="tls", Records=[{"Data": b"over"}, {"Data": b"tls"}])
            wait_for(lambda: ep.records() == [b"over", b"tls"])
    finally:
        ep.close()


def test_parquet_with_hive_json_serde_timestamp_formats(lakebox, fh, s3):
    glue = lakebox.client("glue")
    glue.create_database(DatabaseInput={"Name": "fhhive"})
    glue.create_table(DatabaseName="fhhive", TableInput={"Name": "t", "StorageDescriptor": {"Columns": [
        {"Name": "id", "Type": "int"}, {"Name": "at", "Type": "timestamp"}, {"Name": "amount", "Type": "decimal(10,2)"},
        {"Name": "attrs", "Type": "map<string,bigint>"}]}})
    conv = {"SchemaConfiguration": {"DatabaseName": "fhhive", "TableName": "t", "RoleARN": ROLE},
            "InputFormatConfiguration": {"Deserializer": {"HiveJsonSerDe": {"TimestampFormats": ["yyyy/MM/dd HH:mm", "millis"]}}},
            "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {"Compression": "GZIP"}}}}
    name = create(fh, prefix="pqhive/", ErrorOutputPrefix="pqhive-err/!{firehose:error-output-type}/",
                  BufferingHints={"SizeInMBs": 64, "IntervalInSeconds": 0}, DataFormatConversionConfiguration=conv)
    rows = [{"id": 1, "at": "2024/03/04 05:06", "amount": "12.34", "attrs": {"a": 1}},
            {"id": 2, "at": "1700000000123", "amount": 5, "attrs": {}}]
    fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": json.dumps(r).encode()} for r in rows])
    [k] = wait_keys(s3, "pqhive/")
    f = pq.ParquetFile(io.BytesIO(body(s3, k)))
    assert f.metadata.row_group(0).column(0).compression == "GZIP"
    got = f.read().to_pylist()
    assert got[0]["at"].isoformat() == "2024-03-04T05:06:00" and got[1]["at"].isoformat() == "2023-11-14T22:13:20.123000"
    assert str(got[0]["amount"]) == "12.34" and str(got[1]["amount"]) == "5.00"
    assert got[0]["attrs"] == [("a", 1)] and got[1]["attrs"] == []


def test_orc_conversion(lakebox, fh, s3):
    import pyarrow.orc as orc
    glue = lakebox.client("glue")
    glue.create_database(DatabaseInput={"Name": "fhorc"})
    glue.create_table(DatabaseName="fhorc", TableInput={"Name": "t", "StorageDescriptor": {"Columns": [
        {"Name": "id", "Type": "bigint"}, {"Name": "name", "Type": "string"}, {"Name": "score", "Type": "double"},
        {"Name": "ok", "Type": "boolean"}, {"Name": "day", "Type": "date"}, {"Name": "at", "Type": "timestamp"}]}})
    glue.create_table(DatabaseName="fhorc", TableInput={"Name": "nested", "StorageDescriptor": {"Columns": [
        {"Name": "tags", "Type": "array<string>"}]}})

    def conv(table):
        return {"SchemaConfiguration": {"DatabaseName": "fhorc", "TableName": table, "RoleARN": ROLE},
                "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {}}},
                "OutputFormatConfiguration": {"Serializer": {"OrcSerDe": {"Compression": "ZLIB"}}}}

    name = create(fh, prefix="orc/", ErrorOutputPrefix="orc-err/!{firehose:error-output-type}/",
                  BufferingHints={"SizeInMBs": 64, "IntervalInSeconds": 0}, DataFormatConversionConfiguration=conv("t"))
    rows = [{"id": 1, "name": "a", "score": 0.5, "ok": True, "day": "2024-02-03", "at": "2024-02-03 04:05:06"},
            {"id": 2, "name": None, "score": 2, "ok": False}]
    fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": json.dumps(r).encode()} for r in rows])
    [k] = wait_keys(s3, "orc/")
    assert k.endswith(".orc")
    got = orc.ORCFile(io.BytesIO(body(s3, k))).read().to_pylist()
    assert [(r["id"], r["name"], r["score"], r["ok"]) for r in got] == [(1, "a", 0.5, True), (2, None, 2.0, False)]
    assert str(got[0]["day"]) == "2024-02-03" and got[0]["at"].strftime("%Y-%m-%d %H:%M:%S") == "2024-02-03 04:05:06"
    # Nested columns cannot be written to ORC yet: the records go to the error output, with why.
    name = create(fh, prefix="orcn/", ErrorOutputPrefix="orcn-err/!{firehose:error-output-type}/",
                  BufferingHints={"SizeInMBs": 64, "IntervalInSeconds": 0}, DataFormatConversionConfiguration=conv("nested"))
    fh.put_record(DeliveryStreamName=name, Record={"Data": b'{"tags": ["x"]}'})
    [err] = wait_keys(s3, "orcn-err/format-conversion-failed/")
    assert "ORC" in json.loads(body(s3, err).splitlines()[0])["lastErrorMessage"]


def test_kinesis_source_positions_survive_sigkill(tmp_path):
    with Lakebox(tmp_path, "--kinesis-throughput-limits", "off") as lb:
        k, fh, s3 = lb.client("kinesis"), lb.client("firehose"), lb.client("s3")
        s3.create_bucket(Bucket="fh-lake")
        k.create_stream(StreamName="src", ShardCount=1)
        arn = k.describe_stream_summary(StreamName="src")["StreamDescriptionSummary"]["StreamARN"]
        fh.create_delivery_stream(DeliveryStreamName="ks", DeliveryStreamType="KinesisStreamAsSource",
                                  KinesisStreamSourceConfiguration={"KinesisStreamARN": arn, "RoleARN": ROLE},
                                  ExtendedS3DestinationConfiguration=dest(prefix="kssrc/", BufferingHints={"SizeInMBs": 128, "IntervalInSeconds": 900}))
        k.put_records(StreamName="src", Records=[{"Data": f"a{i}\n".encode(), "PartitionKey": "p"} for i in range(20)])
        time.sleep(1.0)  # copied into the delivery stream's log, still buffered
        lb.kill()
    with Lakebox(tmp_path, "--kinesis-throughput-limits", "off") as lb:
        k, s3 = lb.client("kinesis"), lb.client("s3")
        k.put_records(StreamName="src", Records=[{"Data": f"b{i}\n".encode(), "PartitionKey": "p"} for i in range(5)])
        time.sleep(1.0)
        send(lb.endpoint, "POST", "/_lakebox/test/clock?advance_ms=901000")
        want = {f"a{i}".encode() for i in range(20)} | {f"b{i}".encode() for i in range(5)}
        wait_for(lambda: set(b"".join(body(s3, x) for x in keys(s3, "kssrc/")).splitlines()) >= want)


def test_hostile_jq_queries_and_records_cannot_crash_delivery(lakebox, fh, s3):
    def cfg(query, prefix):
        return dict(prefix=prefix + "k=!{partitionKeyFromQuery:k}/", ErrorOutputPrefix=prefix + "err/!{firehose:error-output-type}/",
                    BufferingHints={"SizeInMBs": 64, "IntervalInSeconds": 0},
                    DynamicPartitioningConfiguration={"Enabled": True},
                    ProcessingConfiguration={"Enabled": True, "Processors": [
                        {"Type": "MetadataExtraction", "Parameters": [
                            {"ParameterName": "MetadataExtractionQuery", "ParameterValue": query},
                            {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"}]}]})
    with pytest.raises(botocore.exceptions.ClientError) as e:
        create(fh, **cfg("(" * 2000 + ".k" + ")" * 2000, "deepq/"))
    assert code(e) == "InvalidArgumentException" and "more than 100 levels" in e.value.response["Error"]["Message"]
    name = create(fh, **cfg("{k: .k}", "deeprec/"))
    deep = b"[" * 200_000 + b"]" * 200_000
    fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": deep}, {"Data": b'{"k": "ok"}'}])
    [good] = wait_keys(s3, "deeprec/k=ok/")
    assert body(s3, good) == b'{"k": "ok"}'
    [err] = wait_keys(s3, "deeprec/err/processing-failed/")
    assert base64.b64decode(json.loads(body(s3, err).splitlines()[0])["rawData"]) == deep
    assert lakebox.proc.poll() is None


def test_prefix_without_expressions_gets_hour_folders_and_the_error_prefix_follows_it(lakebox, fh, s3):
    """Firehose's semantic rules for custom prefixes: a Prefix with no expression is followed by
    `yyyy/MM/dd/HH/`, and with no ErrorOutputPrefix failed records go under
    `<Prefix><error-output-type>/yyyy/MM/dd/HH/`."""
    glue = lakebox.client("glue")
    glue.create_database(DatabaseInput={"Name": "fhplain"})
    glue.create_table(DatabaseName="fhplain", TableInput={"Name": "t", "StorageDescriptor": {"Columns": [
        {"Name": "id", "Type": "bigint"}]}})
    conv = {"Enabled": True, "SchemaConfiguration": {"DatabaseName": "fhplain", "TableName": "t", "RoleARN": ROLE},
            "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {}}},
            "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {}}}}
    name = create(fh, prefix="plainpfx/", BufferingHints={"SizeInMBs": 64, "IntervalInSeconds": 0},
                  DataFormatConversionConfiguration=conv)
    ext = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]["Destinations"][0][
        "ExtendedS3DestinationDescription"]
    assert ext["Prefix"] == "plainpfx/" and "ErrorOutputPrefix" not in ext  # reported as given
    fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": b'{"id": 1}'}, {"Data": b'{"id": "x"}'}])
    hour = r"\d{4}/\d\d/\d\d/\d\d/"
    [k] = [k for k in wait_keys(s3, "plainpfx/2") if name in k]
    assert re.fullmatch(rf"plainpfx/{hour}{name}-1-.*\.parquet", k), k
    assert pq.read_table(io.BytesIO(body(s3, k))).column("id").to_pylist() == [1]
    [err] = wait_keys(s3, "plainpfx/format-conversion-failed/")
    assert re.fullmatch(rf"plainpfx/format-conversion-failed/{hour}{name}-1-.*", err), err
    assert json.loads(base64.b64decode(json.loads(body(s3, err).splitlines()[0])["rawData"])) == {"id": "x"}


TRANSFORM = '''
import base64, json

def handler(event, context):
    out = []
    for r in event["records"]:
        doc = json.loads(base64.b64decode(r["data"]))
        if doc.get("drop"):
            out.append({"recordId": r["recordId"], "result": "Dropped"})
        elif doc.get("bad"):
            out.append({"recordId": r["recordId"], "result": "ProcessingFailed", "data": r["data"]})
        else:
            doc["name"] = doc["name"].upper()
            doc["stream"] = event["deliveryStreamArn"].split("/")[-1]
            data = base64.b64encode((json.dumps(doc) + "\\n").encode()).decode()
            out.append({"recordId": r["recordId"], "result": "Ok", "data": data,
                        "metadata": {"partitionKeys": {"team": doc["team"]}}})
    return {"records": out}
'''


def test_lambda_transformation_with_partition_keys_from_lambda(lakebox, fh, s3):
    lam = lakebox.client("lambda")
    fn = lam.create_function(FunctionName="fh-transform", Runtime="python3.12", Role=ROLE, Handler="app.handler",
                             Code={"ZipFile": zip_of({"app.py": TRANSFORM})}, Timeout=30)["FunctionArn"]
    lam.create_function(FunctionName="fh-broken", Runtime="python3.12", Role=ROLE, Handler="app.handler",
                        Code={"ZipFile": zip_of({"app.py": "def handler(e, c):\n    return {'records': []}\n"})})
    processors = lambda arn: {"Enabled": True, "Processors": [{"Type": "Lambda", "Parameters": [
        {"ParameterName": "LambdaArn", "ParameterValue": arn},
        {"ParameterName": "NumberOfRetries", "ParameterValue": "1"},
        {"ParameterName": "BufferSizeInMBs", "ParameterValue": "1"}]}]}
    name = create(fh, prefix="lambda/team=!{partitionKeyFromLambda:team}/", ErrorOutputPrefix="lambda-err/!{firehose:error-output-type}/",
                  DynamicPartitioningConfiguration={"Enabled": True}, ProcessingConfiguration=processors(fn),
                  BufferingHints={"SizeInMBs": 64, "IntervalInSeconds": 0})
    docs = [{"id": 1, "name": "ann", "team": "red"}, {"id": 2, "name": "bob", "team": "blue", "drop": True},
            {"id": 3, "name": "cy", "team": "blue"}, {"id": 4, "name": "dee", "team": "red", "bad": True},
            {"id": 5, "name": "eve", "team": "red"}]
    fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": json.dumps(d).encode()} for d in docs])
    got = {}
    for k in wait_keys(s3, "lambda/", n=2):
        got[k.split("/")[1]] = [json.loads(line) for line in body(s3, k).splitlines()]
    assert sorted(got) == ["team=blue", "team=red"]
    assert [(d["id"], d["name"], d["stream"]) for d in got["team=red"]] == [(1, "ANN", name), (5, "EVE", name)]
    assert [d["id"] for d in got["team=blue"]] == [3]
    [failed_key] = wait_keys(s3, "lambda-err/processing-failed/")
    [failed] = [json.loads(line) for line in body(s3, failed_key).splitlines()]
    assert failed["errorCode"] == "Lambda.ProcessingFailedStatus" and failed["lambdaArn"] == fn
    assert json.loads(base64.b64decode(failed["rawData"]))["id"] == 4

    # A function that loses records: retried, then everything goes to the error prefix.
    broken = lam.get_function(FunctionName="fh-broken")["Configuration"]["FunctionArn"]
    name = create(fh, prefix="broken/", ErrorOutputPrefix="broken-err/!{firehose:error-output-type}/",
                  ProcessingConfiguration=processors(broken))
    fh.put_record(DeliveryStreamName=name, Record={"Data": b'{"id": 9}'})
    [k] = wait_keys(s3, "broken-err/processing-failed/", timeout=30)
    [doc] = [json.loads(line) for line in body(s3, k).splitlines()]
    assert doc["errorCode"] == "Lambda.MissingRecordId" and doc["attemptsMade"] == 2
    assert base64.b64decode(doc["rawData"]) == b'{"id": 9}'
    assert keys(s3, "broken/") == []


ECHO_ORIGIN = '''
import base64, json

def handler(event, context):
    out = []
    for r in event["records"]:
        doc = {"data": base64.b64decode(r["data"]).decode(), "meta": r.get("kinesisRecordMetadata"),
               "arrival": r["approximateArrivalTimestamp"], "source": event.get("sourceKinesisStreamArn"),
               "invocation": event["invocationId"]}
        out.append({"recordId": r["recordId"], "result": "Ok",
                    "data": base64.b64encode((json.dumps(doc) + "\\n").encode()).decode()})
    return {"records": out}
'''


def test_lambda_processor_sees_kinesis_record_metadata_and_keeps_its_buffer_interval(lakebox, fh, s3):
    lam = lakebox.client("lambda")
    fn = lam.create_function(FunctionName="fh-origin", Runtime="python3.12", Role=ROLE, Handler="app.handler",
                             Code={"ZipFile": zip_of({"app.py": ECHO_ORIGIN})}, Timeout=30)["FunctionArn"]
    processing = {"Enabled": True, "Processors": [{"Type": "Lambda", "Parameters": [
        {"ParameterName": "LambdaArn", "ParameterValue": fn},
        {"ParameterName": "BufferIntervalInSeconds", "ParameterValue": "60"}]}]}

    # A Kinesis source: each record comes with where it was in the stream.
    k = lakebox.client("kinesis")
    k.create_stream(StreamName="fh-origin-src", ShardCount=1)
    arn = k.describe_stream_summary(StreamName="fh-origin-src")["StreamDescriptionSummary"]["StreamARN"]
    name = unique("origin")
    fh.create_delivery_stream(DeliveryStreamName=name, DeliveryStreamType="KinesisStreamAsSource",
                              KinesisStreamSourceConfiguration={"KinesisStreamARN": arn, "RoleARN": ROLE},
                              ExtendedS3DestinationConfiguration=dest(prefix="origin/", ProcessingConfiguration=processing))
    plain = k.put_record(StreamName="fh-origin-src", Data=b"hello", PartitionKey="order-7")
    agg = k.put_record(StreamName="fh-origin-src", Data=kpl_aggregate([b"a1", b"a2"]), PartitionKey="agg")
    docs = []
    deadline = time.time() + 15
    while len(docs) < 3 and time.time() < deadline:
        docs = [json.loads(line) for key in keys(s3, "origin/") for line in body(s3, key).splitlines()]
        time.sleep(0.1)
    docs.sort(key=lambda d: (d["meta"]["sequenceNumber"], d["meta"]["subsequenceNumber"]))
    assert [d["data"] for d in docs] == ["hello", "a1", "a2"]
    assert all(d["source"] == arn and isinstance(d["arrival"], int) for d in docs)
    assert docs[0]["meta"] == {"shardId": plain["ShardId"], "partitionKey": "order-7",
                               "sequenceNumber": plain["SequenceNumber"], "subsequenceNumber": 0,
                               "approximateArrivalTimestamp": docs[0]["arrival"]}
    assert [(d["meta"]["sequenceNumber"], d["meta"]["subsequenceNumber"], d["meta"]["partitionKey"]) for d in docs[1:]] \
        == [(agg["SequenceNumber"], 0, "agg"), (agg["SequenceNumber"], 1, "agg")]

    # The processor's BufferIntervalInSeconds: records a minute apart go to the function in
    # separate invocations, though the destination's buffer holds them all.
    name = create(fh, prefix="interval/", BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 300},
                  ProcessingConfiguration=processing)
    fh.put_record(DeliveryStreamName=name, Record={"Data": b"first"})
    assert send(lakebox.endpoint, "POST", "/_lakebox/test/clock?advance_ms=61000")[0] == 200
    fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": b"second"}, {"Data": b"third"}])
    time.sleep(0.3)
    assert keys(s3, "interval/") == []  # the destination's buffer waits for its own interval
    assert send(lakebox.endpoint, "POST", "/_lakebox/test/clock?advance_ms=300000")[0] == 200
    [key] = wait_keys(s3, "interval/")
    docs = [json.loads(line) for line in body(s3, key).splitlines()]
    assert [d["data"] for d in docs] == ["first", "second", "third"]
    assert docs[0]["invocation"] != docs[1]["invocation"] == docs[2]["invocation"]
    assert docs[0]["meta"] is None and docs[0]["source"] is None


def test_kinesis_source_resharded_before_the_delivery_stream_starts_at_the_end(lakebox, fh, s3):
    # Records in a shard that was closed before the delivery stream existed are not delivered,
    # as those in open shards are not: a new delivery stream starts at the stream's end.
    k = lakebox.client("kinesis")
    k.create_stream(StreamName="fh-resharded", ShardCount=1)
    k.put_record(StreamName="fh-resharded", Data=b"old-in-parent\n", PartitionKey="p")
    parent = k.list_shards(StreamName="fh-resharded")["Shards"][0]
    mid = int(parent["HashKeyRange"]["EndingHashKey"]) // 2
    k.split_shard(StreamName="fh-resharded", ShardToSplit=parent["ShardId"], NewStartingHashKey=str(mid))
    k.put_record(StreamName="fh-resharded", Data=b"old-in-child\n", PartitionKey="p")
    arn = k.describe_stream_summary(StreamName="fh-resharded")["StreamDescriptionSummary"]["StreamARN"]
    name = unique("resharded")
    fh.create_delivery_stream(DeliveryStreamName=name, DeliveryStreamType="KinesisStreamAsSource",
                              KinesisStreamSourceConfiguration={"KinesisStreamARN": arn, "RoleARN": ROLE},
                              ExtendedS3DestinationConfiguration=dest(prefix="resharded/"))
    k.put_record(StreamName="fh-resharded", Data=b"new\n", PartitionKey="p")
    wait_keys(s3, "resharded/")
    time.sleep(1)
    got = b"".join(body(s3, x) for x in keys(s3, "resharded/"))
    assert got == b"new\n"
