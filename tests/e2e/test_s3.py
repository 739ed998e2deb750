"""S3 with boto3 and the AWS CLI: buckets, objects, listing, copy, multipart, checksums."""

import base64
import datetime
import hashlib
import io
import json
import os
import zlib

import botocore.exceptions
import pytest
from botocore.config import Config

from lakebox_harness import Lakebox
from signing import send


def status(e):
    return e.value.response["ResponseMetadata"]["HTTPStatusCode"]


def code(e):
    return e.value.response["Error"]["Code"]


@pytest.fixture(scope="module")
def s3(lakebox):
    return lakebox.client("s3")


@pytest.fixture
def bucket(s3, request):
    name = "t-" + request.node.name.lower().replace("_", "-")[:50]
    s3.create_bucket(Bucket=name)
    return name


# ---- buckets ----

def test_bucket_lifecycle(s3):
    s3.create_bucket(Bucket="life-cycle")
    s3.head_bucket(Bucket="life-cycle")
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert "life-cycle" in names
    assert s3.get_bucket_location(Bucket="life-cycle")["LocationConstraint"] is None
    # Re-creating a bucket you own is a no-op in us-east-1, as in AWS.
    s3.create_bucket(Bucket="life-cycle")
    s3.put_object(Bucket="life-cycle", Key="k", Body=b"x")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.delete_bucket(Bucket="life-cycle")
    assert code(e) == "BucketNotEmpty"
    s3.delete_object(Bucket="life-cycle", Key="k")
    s3.delete_bucket(Bucket="life-cycle")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.head_bucket(Bucket="life-cycle")
    assert e.value.response["Error"]["Code"] == "404"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.list_objects_v2(Bucket="life-cycle")
    assert code(e) == "NoSuchBucket"


@pytest.mark.parametrize("name", ["ab", "UpperCase", "-leading", "trailing-", "a..b", "192.168.0.1", "xn--punycode", "under_score"])
def test_invalid_bucket_names(s3, name):
    # botocore validates some names client-side; send those raw.
    try:
        s3.create_bucket(Bucket=name)
    except botocore.exceptions.ClientError as e:
        assert e.response["Error"]["Code"] == "InvalidBucketName"
        return
    except botocore.exceptions.ParamValidationError:
        pass
    raise AssertionError(f"{name} was accepted")


def test_invalid_bucket_name_raw(lakebox):
    status, _, body = send(lakebox.endpoint, "PUT", "/Bad_Name")
    assert status == 400 and b"<Code>InvalidBucketName</Code>" in body


def test_regions_and_location_constraints(lakebox):
    eu = lakebox.client("s3", region="eu-west-1")
    eu.create_bucket(Bucket="eu-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert eu.get_bucket_location(Bucket="eu-bucket")["LocationConstraint"] == "eu-west-1"
    assert eu.head_bucket(Bucket="eu-bucket")["ResponseMetadata"]["HTTPHeaders"]["x-amz-bucket-region"] == "eu-west-1"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        eu.create_bucket(Bucket="eu-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert code(e) == "BucketAlreadyOwnedByYou"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        eu.create_bucket(Bucket="eu-bucket-2")
    assert code(e) == "IllegalLocationConstraintException"


def test_buckets_belong_to_accounts(lakebox):
    a = lakebox.client("s3", access_key="111111111111")
    b = lakebox.client("s3", access_key="222222222222")
    a.create_bucket(Bucket="owned-by-a")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        b.create_bucket(Bucket="owned-by-a")
    assert code(e) == "BucketAlreadyExists"
    assert "owned-by-a" not in [x["Name"] for x in b.list_buckets()["Buckets"]]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        b.put_object(Bucket="owned-by-a", Key="k", Body=b"x")
    assert code(e) == "AccessDenied"


# ---- objects ----

def test_put_get_head_with_metadata(s3, bucket):
    body = b"hello lakebox"
    put = s3.put_object(Bucket=bucket, Key="dir/file.txt", Body=body, ContentType="text/plain",
                        Metadata={"Team": "Data", "run-id": "42"}, CacheControl="max-age=60",
                        ContentDisposition="attachment", ContentLanguage="en", StorageClass="STANDARD_IA")
    assert put["ETag"] == '"%s"' % hashlib.md5(body).hexdigest()
    got = s3.get_object(Bucket=bucket, Key="dir/file.txt")
    assert got["Body"].read() == body
    assert got["ContentType"] == "text/plain"
    assert got["Metadata"] == {"team": "Data", "run-id": "42"}
    assert got["CacheControl"] == "max-age=60"
    assert got["ContentDisposition"] == "attachment"
    assert got["ContentLanguage"] == "en"
    assert got["StorageClass"] == "STANDARD_IA"
    assert got["ETag"] == put["ETag"]
    head = s3.head_object(Bucket=bucket, Key="dir/file.txt")
    assert head["ContentLength"] == len(body) and head["ETag"] == put["ETag"]
    assert isinstance(head["LastModified"], datetime.datetime)
    over = s3.get_object(Bucket=bucket, Key="dir/file.txt", ResponseContentType="application/x-test")
    assert over["ContentType"] == "application/x-test"


def test_missing_objects(s3, bucket):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_object(Bucket=bucket, Key="nope")
    assert code(e) == "NoSuchKey"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.head_object(Bucket=bucket, Key="nope")
    assert e.value.response["Error"]["Code"] == "404"
    s3.delete_object(Bucket=bucket, Key="nope")  # deleting a missing key succeeds


def test_zero_byte_and_odd_keys(s3, bucket):
    keys = ["empty", "spaces in key", "ünïcødé/日本語/ключ", "plus+and%percent", "a//double/slash", "emoji 😀",
            "trailing/", "?query&like=chars#hash", "x" * 1024]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=b"" if k == "empty" else k.encode())
    for k in keys:
        data = s3.get_object(Bucket=bucket, Key=k)["Body"].read()
        assert data == (b"" if k == "empty" else k.encode()), k
    listed = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        listed += [o["Key"] for o in page.get("Contents", [])]
    assert listed == sorted(keys, key=lambda k: k.encode())
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.put_object(Bucket=bucket, Key="y" * 1025, Body=b"")
    assert code(e) == "KeyTooLongError"


def test_keep_alive_after_early_answers_to_expect_continue(lakebox, bucket):
    # botocore sends `Expect: 100-continue` on every PutObject. An answer that comes before the
    # body (empty body, or an error) must not leave the pooled connection unusable.
    quick = lakebox.client("s3", read_timeout=3, max_pool_connections=1)
    quick.put_object(Bucket=bucket, Key="empty-1", Body=b"")
    quick.put_object(Bucket=bucket, Key="after-empty", Body=b"data")
    with pytest.raises(botocore.exceptions.ClientError):
        quick.put_object(Bucket="no-such-bucket-here", Key="k", Body=b"data")
    quick.put_object(Bucket=bucket, Key="after-error", Body=b"data")
    assert quick.get_object(Bucket=bucket, Key="after-error")["Body"].read() == b"data"


def test_content_md5_and_checksums(s3, bucket):
    body = b"checked content"
    good = base64.b64encode(hashlib.md5(body).digest()).decode()
    s3.put_object(Bucket=bucket, Key="md5", Body=body, ContentMD5=good)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.put_object(Bucket=bucket, Key="md5", Body=body, ContentMD5=base64.b64encode(b"0" * 16).decode())
    assert code(e) == "BadDigest"
    for alg in ["CRC32", "CRC32C", "SHA1", "SHA256", "CRC64NVME"]:
        try:
            resp = s3.put_object(Bucket=bucket, Key=f"ck-{alg}", Body=body, ChecksumAlgorithm=alg)
        except botocore.exceptions.MissingDependencyException:
            continue  # CRC32C / CRC64NVME need awscrt on the client side
        assert resp.get(f"Checksum{alg}"), alg
        got = s3.get_object(Bucket=bucket, Key=f"ck-{alg}", ChecksumMode="ENABLED")
        assert got[f"Checksum{alg}"] == resp[f"Checksum{alg}"]
        assert got["Body"].read() == body
    crc = base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()
    assert s3.head_object(Bucket=bucket, Key="ck-CRC32", ChecksumMode="ENABLED")["ChecksumCRC32"] == crc
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.put_object(Bucket=bucket, Key="bad-crc", Body=body, ChecksumCRC32="AAAAAA==")
    assert code(e) == "BadDigest"


def test_aws_chunked_upload_with_trailer(lakebox, bucket):
    # The framing the Java/JS/Go SDKs use for streaming uploads.
    data = b"chunked " * 1000
    crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    chunks = [data[:5000], data[5000:]]
    body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\nx-amz-checksum-crc32:" + crc.encode() + b"\r\n\r\n"
    headers = {"Content-Encoding": "aws-chunked", "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
               "x-amz-decoded-content-length": str(len(data)), "x-amz-trailer": "x-amz-checksum-crc32"}
    status, _, resp = send(lakebox.endpoint, "PUT", f"/{bucket}/chunked", body, headers)
    assert status == 200, resp
    s3 = lakebox.client("s3")
    got = s3.get_object(Bucket=bucket, Key="chunked", ChecksumMode="ENABLED")
    assert got["Body"].read() == data and got["ChecksumCRC32"] == crc
    bad = body.replace(crc.encode(), b"AAAAAA==")
    status, _, resp = send(lakebox.endpoint, "PUT", f"/{bucket}/chunked-bad", bad, headers)
    assert status == 400 and b"BadDigest" in resp
    status, _, resp = send(lakebox.endpoint, "PUT", f"/{bucket}/chunked-bad", body[:100], headers)
    assert status == 400


def test_ranges(s3, bucket):
    body = bytes(range(256)) * 4
    s3.put_object(Bucket=bucket, Key="r", Body=body)
    r = s3.get_object(Bucket=bucket, Key="r", Range="bytes=10-19")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert r["Body"].read() == body[10:20] and r["ContentRange"] == f"bytes 10-19/{len(body)}"
    assert s3.get_object(Bucket=bucket, Key="r", Range="bytes=-5")["Body"].read() == body[-5:]
    assert s3.get_object(Bucket=bucket, Key="r", Range="bytes=1000-")["Body"].read() == body[1000:]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_object(Bucket=bucket, Key="r", Range=f"bytes={len(body)}-")
    assert code(e) == "InvalidRange"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 416


def test_conditional_reads(s3, bucket):
    etag = s3.put_object(Bucket=bucket, Key="c", Body=b"v1")["ETag"]
    assert s3.get_object(Bucket=bucket, Key="c", IfMatch=etag)["Body"].read() == b"v1"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_object(Bucket=bucket, Key="c", IfMatch='"0000"')
    assert code(e) == "PreconditionFailed"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_object(Bucket=bucket, Key="c", IfNoneMatch=etag)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    future = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=1)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_object(Bucket=bucket, Key="c", IfModifiedSince=future)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    assert s3.get_object(Bucket=bucket, Key="c", IfModifiedSince=past)["Body"].read() == b"v1"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.head_object(Bucket=bucket, Key="c", IfUnmodifiedSince=past)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412


def test_conditional_writes(s3, bucket):
    etag = s3.put_object(Bucket=bucket, Key="w", Body=b"first", IfNoneMatch="*")["ETag"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.put_object(Bucket=bucket, Key="w", Body=b"second", IfNoneMatch="*")
    assert code(e) == "PreconditionFailed"
    s3.put_object(Bucket=bucket, Key="w", Body=b"third", IfMatch=etag)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.put_object(Bucket=bucket, Key="w", Body=b"fourth", IfMatch=etag)
    assert code(e) == "PreconditionFailed"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.put_object(Bucket=bucket, Key="never-existed", Body=b"x", IfMatch=etag)
    assert code(e) == "NoSuchKey"
    assert s3.get_object(Bucket=bucket, Key="w")["Body"].read() == b"third"


def test_copy_object(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"copy me", ContentType="text/x", Metadata={"a": "1"})
    s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    got = s3.get_object(Bucket=bucket, Key="dst")
    assert got["Body"].read() == b"copy me" and got["Metadata"] == {"a": "1"} and got["ContentType"] == "text/x"
    s3.copy_object(Bucket=bucket, Key="dst2", CopySource=f"{bucket}/src", MetadataDirective="REPLACE",
                   Metadata={"b": "2"}, ContentType="text/y")
    got = s3.head_object(Bucket=bucket, Key="dst2")
    assert got["Metadata"] == {"b": "2"} and got["ContentType"] == "text/y"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="src", CopySource={"Bucket": bucket, "Key": "src"})
    assert code(e) == "InvalidRequest"
    s3.copy_object(Bucket=bucket, Key="src", CopySource={"Bucket": bucket, "Key": "src"}, MetadataDirective="REPLACE",
                   Metadata={"c": "3"})
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="x", CopySource={"Bucket": bucket, "Key": "src"}, CopySourceIfMatch='"nope"')
    assert code(e) == "PreconditionFailed"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="x", CopySource={"Bucket": bucket, "Key": "missing"})
    assert code(e) == "NoSuchKey"


def test_batch_delete(s3, bucket):
    for i in range(5):
        s3.put_object(Bucket=bucket, Key=f"d/{i}", Body=b"x")
    resp = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": f"d/{i}"} for i in range(3)] + [{"Key": "absent"}]})
    assert sorted(d["Key"] for d in resp["Deleted"]) == ["absent", "d/0", "d/1", "d/2"]
    quiet = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "d/3"}], "Quiet": True})
    assert "Deleted" not in quiet
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["d/4"]


# ---- listing ----

@pytest.fixture(scope="module")
def listing(s3):
    s3.create_bucket(Bucket="listing")
    keys = ["a.txt", "b/1.txt", "b/2.txt", "b/c/3.txt", "c/4.txt", "d", "e/5 five.txt", "e/6+six.txt"]
    for k in keys:
        s3.put_object(Bucket="listing", Key=k, Body=k.encode())
    return keys


def test_list_v2_prefix_delimiter(s3, listing):
    r = s3.list_objects_v2(Bucket="listing", Delimiter="/")
    assert [o["Key"] for o in r["Contents"]] == ["a.txt", "d"]
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["b/", "c/", "e/"]
    assert r["KeyCount"] == 5 and r["IsTruncated"] is False
    r = s3.list_objects_v2(Bucket="listing", Prefix="b/", Delimiter="/")
    assert [o["Key"] for o in r["Contents"]] == ["b/1.txt", "b/2.txt"]
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["b/c/"]
    r = s3.list_objects_v2(Bucket="listing", StartAfter="b/2.txt")
    assert [o["Key"] for o in r["Contents"]] == listing[3:]
    o = s3.list_objects_v2(Bucket="listing", Prefix="a", FetchOwner=True)["Contents"][0]
    assert o["Owner"]["ID"] and o["Size"] == 5 and o["StorageClass"] == "STANDARD"
    assert "Owner" not in s3.list_objects_v2(Bucket="listing", Prefix="a")["Contents"][0]


def test_list_v2_pagination(s3, listing):
    seen, token, pages = [], None, 0
    while True:
        kw = {"ContinuationToken": token} if token else {}
        r = s3.list_objects_v2(Bucket="listing", MaxKeys=3, Delimiter="/", **kw)
        pages += 1
        seen += [o["Key"] for o in r.get("Contents", [])] + [p["Prefix"] for p in r.get("CommonPrefixes", [])]
        if not r["IsTruncated"]:
            break
        token = r["NextContinuationToken"]
    assert pages == 2
    assert sorted(seen) == ["a.txt", "b/", "c/", "d", "e/"]
    paginated = [o["Key"] for p in s3.get_paginator("list_objects_v2").paginate(Bucket="listing", PaginationConfig={"PageSize": 2}) for o in p["Contents"]]
    assert paginated == listing


def test_list_v1_markers(s3, listing):
    r = s3.list_objects(Bucket="listing", MaxKeys=2)
    assert [o["Key"] for o in r["Contents"]] == ["a.txt", "b/1.txt"] and r["IsTruncated"]
    assert "Owner" in r["Contents"][0]
    r = s3.list_objects(Bucket="listing", Marker="b/1.txt", MaxKeys=2)
    assert [o["Key"] for o in r["Contents"]] == ["b/2.txt", "b/c/3.txt"]
    r = s3.list_objects(Bucket="listing", Delimiter="/", MaxKeys=2)
    assert r["IsTruncated"] and r["NextMarker"] == "b/"
    r = s3.list_objects(Bucket="listing", Delimiter="/", Marker=r["NextMarker"])
    assert [o["Key"] for o in r.get("Contents", [])] == ["d"]
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["c/", "e/"]
    all_v1 = [o["Key"] for p in s3.get_paginator("list_objects").paginate(Bucket="listing", PaginationConfig={"PageSize": 3}) for o in p["Contents"]]
    assert all_v1 == listing


def test_list_url_encoding(s3, listing):
    # Asked for explicitly, keys come back URL-encoded for the caller to decode.
    r = s3.list_objects_v2(Bucket="listing", Prefix="e/", EncodingType="url")
    assert [o["Key"] for o in r["Contents"]] == ["e/5%20five.txt", "e/6%2Bsix.txt"]
    assert r["EncodingType"] == "url"
    # By default botocore asks for url encoding itself and decodes: keys must come back exact.
    raw = s3.list_objects_v2(Bucket="listing", Prefix="e/")
    assert [o["Key"] for o in raw["Contents"]] == ["e/5 five.txt", "e/6+six.txt"]


# ---- multipart ----

MiB = 1024 * 1024


def test_multipart_upload(s3, bucket):
    parts_data = [os.urandom(5 * MiB), os.urandom(5 * MiB), b"tail"]
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp", ContentType="application/x-mp", Metadata={"m": "1"})
    uid = up["UploadId"]
    assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket)["Uploads"]] == [uid]
    etags = []
    for i, data in enumerate(parts_data, 1):
        etags.append(s3.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=i, Body=data)["ETag"])
    listed = s3.list_parts(Bucket=bucket, Key="mp", UploadId=uid)["Parts"]
    assert [(p["PartNumber"], p["Size"]) for p in listed] == [(1, 5 * MiB), (2, 5 * MiB), (3, 4)]
    done = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid, MultipartUpload={
        "Parts": [{"PartNumber": i, "ETag": e} for i, e in enumerate(etags, 1)]})
    md5s = b"".join(hashlib.md5(d).digest() for d in parts_data)
    assert done["ETag"] == '"%s-3"' % hashlib.md5(md5s).hexdigest()
    got = s3.get_object(Bucket=bucket, Key="mp")
    assert got["Body"].read() == b"".join(parts_data)
    assert got["ContentType"] == "application/x-mp" and got["Metadata"] == {"m": "1"}
    # A range across the part boundary, and a part by number.
    r = s3.get_object(Bucket=bucket, Key="mp", Range=f"bytes={5 * MiB - 3}-{5 * MiB + 2}")["Body"].read()
    assert r == parts_data[0][-3:] + parts_data[1][:3]
    p2 = s3.get_object(Bucket=bucket, Key="mp", PartNumber=2)
    assert p2["PartsCount"] == 3 and p2["Body"].read() == parts_data[1]
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.list_parts(Bucket=bucket, Key="mp", UploadId=uid)
    assert code(e) == "NoSuchUpload"


def test_multipart_full_object_and_composite_checksums(s3, bucket):
    def crc32(data):
        return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()

    parts_data = [os.urandom(5 * MiB), b"the last part"]
    up = s3.create_multipart_upload(Bucket=bucket, Key="full", ChecksumAlgorithm="CRC32", ChecksumType="FULL_OBJECT")
    assert up["ChecksumType"] == "FULL_OBJECT"
    uid = up["UploadId"]
    parts = []
    for i, data in enumerate(parts_data, 1):
        r = s3.upload_part(Bucket=bucket, Key="full", UploadId=uid, PartNumber=i, Body=data, ChecksumCRC32=crc32(data))
        parts.append({"PartNumber": i, "ETag": r["ETag"], "ChecksumCRC32": crc32(data)})
    whole = b"".join(parts_data)
    # The object's CRC as the client computed it must be the one the parts combine to.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="full", UploadId=uid, MultipartUpload={"Parts": parts},
                                     ChecksumCRC32=crc32(b"something else"), ChecksumType="FULL_OBJECT")
    assert (code(e), e.value.response["Error"]["Message"]) == ("BadDigest", "The crc32 you specified did not match the calculated checksum.")
    done = s3.complete_multipart_upload(Bucket=bucket, Key="full", UploadId=uid, MultipartUpload={"Parts": parts},
                                        ChecksumCRC32=crc32(whole), ChecksumType="FULL_OBJECT")
    assert (done["ChecksumCRC32"], done["ChecksumType"]) == (crc32(whole), "FULL_OBJECT")
    head = s3.head_object(Bucket=bucket, Key="full", ChecksumMode="ENABLED")
    assert (head["ChecksumCRC32"], head["ChecksumType"]) == (crc32(whole), "FULL_OBJECT")
    attrs = s3.get_object_attributes(Bucket=bucket, Key="full", ObjectAttributes=["ObjectParts", "Checksum"])
    assert attrs["Checksum"] == {"ChecksumCRC32": crc32(whole), "ChecksumType": "FULL_OBJECT"}
    op = attrs["ObjectParts"]
    assert op["TotalPartsCount"] == 2 and op["IsTruncated"] is False
    assert [(p["PartNumber"], p["Size"], p["ChecksumCRC32"]) for p in op["Parts"]] == [
        (1, 5 * MiB, crc32(parts_data[0])), (2, len(parts_data[1]), crc32(parts_data[1]))]
    page = s3.get_object_attributes(Bucket=bucket, Key="full", ObjectAttributes=["ObjectParts"], MaxParts=1)["ObjectParts"]
    assert [p["PartNumber"] for p in page["Parts"]] == [1] and page["IsTruncated"] is True and page["NextPartNumberMarker"] == 1
    rest = s3.get_object_attributes(Bucket=bucket, Key="full", ObjectAttributes=["ObjectParts"], PartNumberMarker=1)["ObjectParts"]
    assert [p["PartNumber"] for p in rest["Parts"]] == [2]

    # SHA256 is composite: a checksum of the part checksums, "-<parts>" (reported bare by
    # GetObjectAttributes).
    up = s3.create_multipart_upload(Bucket=bucket, Key="composite", ChecksumAlgorithm="SHA256")
    assert up["ChecksumType"] == "COMPOSITE"
    sha = [hashlib.sha256(d).digest() for d in parts_data]
    parts = []
    for i, data in enumerate(parts_data, 1):
        r = s3.upload_part(Bucket=bucket, Key="composite", UploadId=up["UploadId"], PartNumber=i, Body=data,
                           ChecksumSHA256=base64.b64encode(sha[i - 1]).decode())
        parts.append({"PartNumber": i, "ETag": r["ETag"], "ChecksumSHA256": base64.b64encode(sha[i - 1]).decode()})
    done = s3.complete_multipart_upload(Bucket=bucket, Key="composite", UploadId=up["UploadId"], MultipartUpload={"Parts": parts})
    composite = base64.b64encode(hashlib.sha256(b"".join(sha)).digest()).decode()
    assert (done["ChecksumSHA256"], done["ChecksumType"]) == (f"{composite}-2", "COMPOSITE")
    attrs = s3.get_object_attributes(Bucket=bucket, Key="composite", ObjectAttributes=["Checksum"])
    assert attrs["Checksum"] == {"ChecksumSHA256": composite, "ChecksumType": "COMPOSITE"}

    # CRC64NVME is always a full-object checksum; SHA checksums never are.
    assert s3.create_multipart_upload(Bucket=bucket, Key="nvme", ChecksumAlgorithm="CRC64NVME")["ChecksumType"] == "FULL_OBJECT"
    for algorithm, kind in (("CRC64NVME", "COMPOSITE"), ("SHA256", "FULL_OBJECT")):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            s3.create_multipart_upload(Bucket=bucket, Key="bad", ChecksumAlgorithm=algorithm, ChecksumType=kind)
        assert code(e) == "InvalidRequest", (algorithm, kind)


def test_multipart_errors(s3, bucket):
    uid = s3.create_multipart_upload(Bucket=bucket, Key="bad")["UploadId"]
    e1 = s3.upload_part(Bucket=bucket, Key="bad", UploadId=uid, PartNumber=1, Body=b"small")["ETag"]
    e2 = s3.upload_part(Bucket=bucket, Key="bad", UploadId=uid, PartNumber=2, Body=b"small")["ETag"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="bad", UploadId=uid, MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    assert code(e) == "EntityTooSmall"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="bad", UploadId=uid, MultipartUpload={
            "Parts": [{"PartNumber": 2, "ETag": e2}, {"PartNumber": 1, "ETag": e1}]})
    assert code(e) == "InvalidPartOrder"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="bad", UploadId=uid, MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": '"00000000000000000000000000000000"'}]})
    assert code(e) == "InvalidPart"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.upload_part(Bucket=bucket, Key="bad", UploadId=uid, PartNumber=10001, Body=b"x")
    assert code(e) == "InvalidArgument"
    # A single small part is a valid object.
    s3.complete_multipart_upload(Bucket=bucket, Key="bad", UploadId=uid, MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}]})
    assert s3.get_object(Bucket=bucket, Key="bad")["Body"].read() == b"small"
    uid = s3.create_multipart_upload(Bucket=bucket, Key="aborted")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="aborted", UploadId=uid, PartNumber=1, Body=b"x")
    s3.abort_multipart_upload(Bucket=bucket, Key="aborted", UploadId=uid)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.upload_part(Bucket=bucket, Key="aborted", UploadId=uid, PartNumber=2, Body=b"x")
    assert code(e) == "NoSuchUpload"


def test_upload_part_copy(s3, bucket):
    src = os.urandom(6 * MiB)
    s3.put_object(Bucket=bucket, Key="big-src", Body=src)
    uid = s3.create_multipart_upload(Bucket=bucket, Key="assembled")["UploadId"]
    p1 = s3.upload_part_copy(Bucket=bucket, Key="assembled", UploadId=uid, PartNumber=1,
                             CopySource={"Bucket": bucket, "Key": "big-src"}, CopySourceRange=f"bytes=0-{5 * MiB - 1}")
    p2 = s3.upload_part_copy(Bucket=bucket, Key="assembled", UploadId=uid, PartNumber=2,
                             CopySource={"Bucket": bucket, "Key": "big-src"}, CopySourceRange=f"bytes={5 * MiB}-{6 * MiB - 1}")
    s3.complete_multipart_upload(Bucket=bucket, Key="assembled", UploadId=uid, MultipartUpload={"Parts": [
        {"PartNumber": 1, "ETag": p1["CopyPartResult"]["ETag"]}, {"PartNumber": 2, "ETag": p2["CopyPartResult"]["ETag"]}]})
    assert s3.get_object(Bucket=bucket, Key="assembled")["Body"].read() == src


# ---- the AWS CLI ----

def test_cli_cp_sync_ls(lakebox, tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "one.txt").write_bytes(b"one")
    (src / "sub" / "two.bin").write_bytes(os.urandom(9 * MiB))  # multipart via the CLI
    assert lakebox.cli("s3", "mb", "s3://cli-bucket").returncode == 0
    out = lakebox.cli("s3", "sync", str(src), "s3://cli-bucket/data", "--only-show-errors")
    assert out.returncode == 0, out.stderr
    ls = lakebox.cli("s3", "ls", "s3://cli-bucket/data/", "--recursive")
    assert "data/one.txt" in ls.stdout and "data/sub/two.bin" in ls.stdout
    dst = tmp_path / "dst"
    out = lakebox.cli("s3", "cp", "s3://cli-bucket/data", str(dst), "--recursive", "--only-show-errors")
    assert out.returncode == 0, out.stderr
    assert (dst / "sub" / "two.bin").read_bytes() == (src / "sub" / "two.bin").read_bytes()
    head = json.loads(lakebox.cli("s3api", "head-object", "--bucket", "cli-bucket", "--key", "data/sub/two.bin").stdout)
    assert head["ContentLength"] == 9 * MiB and head["ETag"].endswith('-2"')
    assert lakebox.cli("s3", "rb", "s3://cli-bucket", "--force").returncode == 0


# ---- durability ----

def test_objects_survive_restart(tmp_path):
    with Lakebox(tmp_path) as lb:
        s3 = lb.client("s3")
        s3.create_bucket(Bucket="keep")
        s3.put_object(Bucket="keep", Key="k", Body=b"kept", Metadata={"x": "y"})
        uid = s3.create_multipart_upload(Bucket="keep", Key="pending")["UploadId"]
        etag = s3.upload_part(Bucket="keep", Key="pending", UploadId=uid, PartNumber=1, Body=b"part one")["ETag"]
    with Lakebox(tmp_path) as lb:
        s3 = lb.client("s3")
        got = s3.get_object(Bucket="keep", Key="k")
        assert got["Body"].read() == b"kept" and got["Metadata"] == {"x": "y"}
        # An upload in progress across a restart can still be completed.
        s3.complete_multipart_upload(Bucket="keep", Key="pending", UploadId=uid,
                                     MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
        assert s3.get_object(Bucket="keep", Key="pending")["Body"].read() == b"part one"


# ---- bucket configuration, tagging, ACLs ----

def test_bucket_configurations_round_trip(s3, bucket, lakebox):
    policy = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}]})
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_bucket_policy(Bucket=bucket)
    assert code(e) == "NoSuchBucketPolicy"
    # A new bucket blocks public access: a policy open to everyone is refused until the block
    # is lifted (here: deleted), as on AWS.
    assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]["BlockPublicPolicy"] is True
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.put_bucket_policy(Bucket=bucket, Policy=policy)
    assert code(e) == "AccessDenied" and "BlockPublicPolicy" in e.value.response["Error"]["Message"]
    s3.delete_public_access_block(Bucket=bucket)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_public_access_block(Bucket=bucket)
    assert code(e) == "NoSuchPublicAccessBlockConfiguration"
    s3.put_bucket_policy(Bucket=bucket, Policy=policy)
    assert json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]) == json.loads(policy)
    assert s3.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]["IsPublic"] is True
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.put_bucket_policy(Bucket=bucket, Policy="not json")
    assert code(e) == "MalformedPolicy"
    statement = {"Effect": "Allow", "Principal": {"AWS": "111122223333"}, "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}
    for change, message in (({"Principal": None}, "Missing required field Principal"),
                            ({"Action": "sqs:SendMessage"}, "Policy has invalid action"),
                            ({"Resource": "arn:aws:s3:::someone-elses-bucket/*"}, "Action does not apply to any resource(s) in statement"),
                            ({"Effect": "Perhaps"}, "Invalid effect"),
                            ({"Condition": {"IpAddress": {"aws:SourceIp": "not-an-ip"}}}, "Invalid IP address or CIDR: not-an-ip")):
        bad = {k: v for k, v in {**statement, **change}.items() if v is not None}
        with pytest.raises(botocore.exceptions.ClientError) as e:
            s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [bad]}))
        assert (code(e), e.value.response["Error"]["Message"]) == ("MalformedPolicy", message), change
    # Granted to one account, or to everyone but only from one network: not public.
    for st in (statement, {**statement, "Principal": "*", "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}):
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [st]}))
        assert s3.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]["IsPublic"] is False
    s3.delete_bucket_policy(Bucket=bucket)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_bucket_policy_status(Bucket=bucket)
    assert code(e) == "NoSuchBucketPolicy"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_bucket_policy(Bucket=bucket)
    assert code(e) == "NoSuchBucketPolicy"

    cors = {"CORSRules": [{"AllowedMethods": ["GET", "PUT"], "AllowedOrigins": ["*"], "MaxAgeSeconds": 300}]}
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_bucket_cors(Bucket=bucket)
    assert code(e) == "NoSuchCORSConfiguration"
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=cors)
    assert s3.get_bucket_cors(Bucket=bucket)["CORSRules"] == cors["CORSRules"]
    s3.delete_bucket_cors(Bucket=bucket)

    rules = [{"ID": "expire-tmp", "Status": "Enabled", "Filter": {"Prefix": "tmp/"}, "Expiration": {"Days": 7}}]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_bucket_lifecycle_configuration(Bucket=bucket)
    assert code(e) == "NoSuchLifecycleConfiguration"
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})
    got = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert got[0]["ID"] == "expire-tmp" and got[0]["Expiration"] == {"Days": 7}

    enc = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "alias/k"}}]}
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_bucket_encryption(Bucket=bucket)
    assert code(e) == "ServerSideEncryptionConfigurationNotFoundError"
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration=enc)
    assert s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"

    assert "QueueConfigurations" not in s3.get_bucket_notification_configuration(Bucket=bucket)
    # A destination must exist (S3 sends it a test event): the queue is created first.
    lakebox.client("sqs").create_queue(QueueName="q")
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": "arn:aws:sqs:us-east-1:000000000000:q", "Events": ["s3:ObjectCreated:*"]}]})
    assert s3.get_bucket_notification_configuration(Bucket=bucket)["QueueConfigurations"][0]["Events"] == ["s3:ObjectCreated:*"]
    for bad in ({"QueueArn": "not-an-arn", "Events": ["s3:ObjectCreated:*"]},
                {"QueueArn": "arn:aws:sns:us-east-1:000000000000:t", "Events": ["s3:ObjectCreated:*"]},
                {"QueueArn": "arn:aws:sqs:us-east-1:000000000000:q", "Events": ["s3:ObjectCreated:Teleport"]},
                {"QueueArn": "arn:aws:sqs:us-east-1:000000000000:q", "Events": ["s3:ObjectCreated:*"],
                 "Filter": {"Key": {"FilterRules": [{"Name": "middle", "Value": "x"}]}}}):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"QueueConfigurations": [bad]})
        assert code(e) == "InvalidArgument", bad
    # A topic that does not exist is refused, as S3 refuses one.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
            "TopicConfigurations": [{"TopicArn": "arn:aws:sns:us-east-1:000000000000:t", "Events": ["s3:ObjectRemoved:Delete"],
                                     "Filter": {"Key": {"FilterRules": [{"Name": "Prefix", "Value": "logs/"}]}}}]})
    assert code(e) == "InvalidArgument"
    assert e.value.response["Error"]["Message"] == "Unable to validate the following destination configurations"
    assert s3.get_bucket_notification_configuration(Bucket=bucket)["QueueConfigurations"][0]["Events"] == ["s3:ObjectCreated:*"]

    assert s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": "ObjectWriter"}]})
    assert s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "ObjectWriter"}]
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]["BlockPublicAcls"] is True
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
        "BlockPublicAcls": False, "IgnorePublicAcls": False, "BlockPublicPolicy": False, "RestrictPublicBuckets": False})
    assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]["BlockPublicPolicy"] is False

    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.put_bucket_cors(Bucket="no-such-bucket-x", CORSConfiguration=cors)
    assert code(e) == "NoSuchBucket"


def test_bucket_tagging(s3, bucket):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_bucket_tagging(Bucket=bucket)
    assert code(e) == "NoSuchTagSet"
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "team", "Value": "data"}, {"Key": "env", "Value": ""}]})
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "team", "Value": "data"}, {"Key": "env", "Value": ""}]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "a", "Value": "1"}, {"Key": "a", "Value": "2"}]})
    assert code(e) == "InvalidTag"
    s3.delete_bucket_tagging(Bucket=bucket)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_bucket_tagging(Bucket=bucket)
    assert code(e) == "NoSuchTagSet"


def test_object_tagging(s3, bucket):
    s3.put_object(Bucket=bucket, Key="t", Body=b"x", Tagging="project=lake&stage=raw%20data")
    assert s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"] == [
        {"Key": "project", "Value": "lake"}, {"Key": "stage", "Value": "raw data"}]
    assert s3.get_object(Bucket=bucket, Key="t")["TagCount"] == 2
    s3.put_object_tagging(Bucket=bucket, Key="t", Tagging={"TagSet": [{"Key": "only", "Value": "one"}]})
    assert s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"] == [{"Key": "only", "Value": "one"}]
    s3.copy_object(Bucket=bucket, Key="t2", CopySource={"Bucket": bucket, "Key": "t"})
    assert s3.get_object_tagging(Bucket=bucket, Key="t2")["TagSet"] == [{"Key": "only", "Value": "one"}]
    s3.copy_object(Bucket=bucket, Key="t3", CopySource={"Bucket": bucket, "Key": "t"}, TaggingDirective="REPLACE", Tagging="a=b")
    assert s3.get_object_tagging(Bucket=bucket, Key="t3")["TagSet"] == [{"Key": "a", "Value": "b"}]
    s3.delete_object_tagging(Bucket=bucket, Key="t")
    assert s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"] == []
    too_many = {"TagSet": [{"Key": f"k{i}", "Value": "v"} for i in range(11)]}
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.put_object_tagging(Bucket=bucket, Key="t", Tagging=too_many)
    assert code(e) == "BadRequest"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_object_tagging(Bucket=bucket, Key="missing")
    assert code(e) == "NoSuchKey"
    uid = s3.create_multipart_upload(Bucket=bucket, Key="mp-tags", Tagging="from=upload")["UploadId"]
    etag = s3.upload_part(Bucket=bucket, Key="mp-tags", UploadId=uid, PartNumber=1, Body=b"p")["ETag"]
    s3.complete_multipart_upload(Bucket=bucket, Key="mp-tags", UploadId=uid, MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    assert s3.get_object_tagging(Bucket=bucket, Key="mp-tags")["TagSet"] == [{"Key": "from", "Value": "upload"}]


def test_acls_are_owner_enforced(s3, bucket):
    s3.put_object(Bucket=bucket, Key="o", Body=b"x")
    for acl in (s3.get_bucket_acl(Bucket=bucket), s3.get_object_acl(Bucket=bucket, Key="o")):
        assert acl["Grants"][0]["Permission"] == "FULL_CONTROL"
        assert acl["Grants"][0]["Grantee"]["ID"] == acl["Owner"]["ID"]
    s3.put_bucket_acl(Bucket=bucket, ACL="private")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.put_bucket_acl(Bucket=bucket, ACL="public-read")
    assert code(e) == "AccessControlListNotSupported"


def test_unimplemented_subresources_are_not_mistaken_for_objects(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_bucket_replication(Bucket=bucket)
    assert code(e) == "NotImplemented"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_bucket_inventory_configuration(Bucket=bucket, Id="x")
    assert code(e) == "NotImplemented"
    # The object is untouched by either.
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"


# ---- versioning ----

def versions_of(s3, bucket, key=None):
    out = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for v in page.get("Versions", []):
            out.append(("V", v["Key"], v["VersionId"], v["IsLatest"]))
        for m in page.get("DeleteMarkers", []):
            out.append(("D", m["Key"], m["VersionId"], m["IsLatest"]))
    return [o for o in out if key is None or o[1] == key]


def test_versioning_lifecycle(s3, bucket):
    assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)
    pre = s3.put_object(Bucket=bucket, Key="doc", Body=b"v0")  # before versioning: the null version
    assert "VersionId" not in pre
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    v1 = s3.put_object(Bucket=bucket, Key="doc", Body=b"v1")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="doc", Body=b"v2")["VersionId"]
    assert v1 != v2 and "null" not in (v1, v2)
    got = s3.get_object(Bucket=bucket, Key="doc")
    assert got["Body"].read() == b"v2" and got["VersionId"] == v2
    assert s3.get_object(Bucket=bucket, Key="doc", VersionId=v1)["Body"].read() == b"v1"
    assert s3.get_object(Bucket=bucket, Key="doc", VersionId="null")["Body"].read() == b"v0"
    assert s3.head_object(Bucket=bucket, Key="doc", VersionId=v1)["ContentLength"] == 2

    # A delete without a version id makes a delete marker current.
    d = s3.delete_object(Bucket=bucket, Key="doc")
    assert d["DeleteMarker"] is True and d["VersionId"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_object(Bucket=bucket, Key="doc")
    assert code(e) == "NoSuchKey"
    assert e.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amz-delete-marker"] == "true"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_object(Bucket=bucket, Key="doc", VersionId=d["VersionId"])
    assert code(e) == "MethodNotAllowed"
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)
    assert versions_of(s3, bucket, "doc") == [
        ("V", "doc", v2, False), ("V", "doc", v1, False), ("V", "doc", "null", False), ("D", "doc", d["VersionId"], True)]

    # Removing the delete marker brings the object back.
    s3.delete_object(Bucket=bucket, Key="doc", VersionId=d["VersionId"])
    assert s3.get_object(Bucket=bucket, Key="doc")["Body"].read() == b"v2"
    # Permanently deleting the current version promotes the previous one.
    s3.delete_object(Bucket=bucket, Key="doc", VersionId=v2)
    assert s3.get_object(Bucket=bucket, Key="doc")["Body"].read() == b"v1"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_object(Bucket=bucket, Key="doc", VersionId=v2)
    assert code(e) == "NoSuchVersion"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_object(Bucket=bucket, Key="doc", VersionId="not-a-version")
    assert code(e) == "InvalidArgument"


def test_versioning_suspended_null_versions(s3, bucket):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"one")["VersionId"]
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Suspended"
    assert s3.put_object(Bucket=bucket, Key="k", Body=b"two")["VersionId"] == "null"
    assert s3.put_object(Bucket=bucket, Key="k", Body=b"three")["VersionId"] == "null"  # replaces the null version
    assert [v[2] for v in versions_of(s3, bucket, "k")] == ["null", v1]
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"three"
    d = s3.delete_object(Bucket=bucket, Key="k")
    assert d["DeleteMarker"] is True and d["VersionId"] == "null"
    # (the helper lists versions before delete markers, as botocore splits them)
    assert versions_of(s3, bucket, "k") == [("V", "k", v1, False), ("D", "k", "null", True)]


def test_versioned_copy_batch_delete_and_pagination(s3, bucket):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    old = s3.put_object(Bucket=bucket, Key="src", Body=b"old")["VersionId"]
    s3.put_object(Bucket=bucket, Key="src", Body=b"new")
    c = s3.copy_object(Bucket=bucket, Key="restored", CopySource={"Bucket": bucket, "Key": "src", "VersionId": old})
    assert c["CopySourceVersionId"] == old and c["VersionId"]
    assert s3.get_object(Bucket=bucket, Key="restored")["Body"].read() == b"old"
    # Restoring an old version onto the same key is a legal copy.
    s3.copy_object(Bucket=bucket, Key="src", CopySource={"Bucket": bucket, "Key": "src", "VersionId": old})
    assert s3.get_object(Bucket=bucket, Key="src")["Body"].read() == b"old"

    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "restored"}, {"Key": "src", "VersionId": old}]})
    by_key = {d["Key"]: d for d in r["Deleted"]}
    assert by_key["restored"]["DeleteMarker"] is True and by_key["restored"]["DeleteMarkerVersionId"]
    assert by_key["src"]["VersionId"] == old

    for i in range(5):
        s3.put_object(Bucket=bucket, Key="many", Body=str(i).encode())
    pages = list(s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix="many", PaginationConfig={"PageSize": 2}))
    assert len(pages) == 3
    ids = [v["VersionId"] for p in pages for v in p.get("Versions", [])]
    assert len(ids) == len(set(ids)) == 5
    latest = [v for p in pages for v in p.get("Versions", []) if v["IsLatest"]]
    assert len(latest) == 1 and s3.get_object(Bucket=bucket, Key="many")["VersionId"] == latest[0]["VersionId"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.delete_bucket(Bucket=bucket)
    assert code(e) == "BucketNotEmpty"


def test_versions_survive_restart(tmp_path):
    with Lakebox(tmp_path) as lb:
        s3 = lb.client("s3")
        s3.create_bucket(Bucket="ver")
        s3.put_bucket_versioning(Bucket="ver", VersioningConfiguration={"Status": "Enabled"})
        v1 = s3.put_object(Bucket="ver", Key="k", Body=b"one")["VersionId"]
        v2 = s3.put_object(Bucket="ver", Key="k", Body=b"two")["VersionId"]
    with Lakebox(tmp_path) as lb:
        s3 = lb.client("s3")
        assert s3.get_object(Bucket="ver", Key="k", VersionId=v1)["Body"].read() == b"one"
        assert s3.get_object(Bucket="ver", Key="k")["VersionId"] == v2
        # New versions after a restart still sort newest first.
        v3 = s3.put_object(Bucket="ver", Key="k", Body=b"three")["VersionId"]
        assert [v[2] for v in versions_of(s3, "ver", "k")] == [v3, v2, v1]


# ---- storage classes and restore ----

def test_glacier_objects_need_a_restore(tmp_path):
    import time
    with Lakebox(tmp_path, "--s3-restore-seconds", "0.5", "--s3-day-seconds", "2") as lb:
        s3 = lb.client("s3")
        s3.create_bucket(Bucket="cold")
        s3.put_object(Bucket="cold", Key="archive.bin", Body=b"frozen", StorageClass="GLACIER")
        s3.put_object(Bucket="cold", Key="ir.bin", Body=b"instant", StorageClass="GLACIER_IR")
        assert s3.get_object(Bucket="cold", Key="ir.bin")["Body"].read() == b"instant"
        head = s3.head_object(Bucket="cold", Key="archive.bin")
        assert head["StorageClass"] == "GLACIER" and "Restore" not in head
        with pytest.raises(botocore.exceptions.ClientError) as e:
            s3.get_object(Bucket="cold", Key="archive.bin")
        assert code(e) == "InvalidObjectState"
        with pytest.raises(botocore.exceptions.ClientError) as e:
            s3.copy_object(Bucket="cold", Key="copy", CopySource={"Bucket": "cold", "Key": "archive.bin"})
        assert code(e) == "InvalidObjectState"
        with pytest.raises(botocore.exceptions.ClientError) as e:
            s3.restore_object(Bucket="cold", Key="ir.bin", RestoreRequest={"Days": 1})
        assert code(e) == "InvalidObjectState"

        r = s3.restore_object(Bucket="cold", Key="archive.bin", RestoreRequest={"Days": 1, "GlacierJobParameters": {"Tier": "Standard"}})
        assert r["ResponseMetadata"]["HTTPStatusCode"] == 202
        assert s3.head_object(Bucket="cold", Key="archive.bin")["Restore"] == 'ongoing-request="true"'
        with pytest.raises(botocore.exceptions.ClientError) as e:
            s3.restore_object(Bucket="cold", Key="archive.bin", RestoreRequest={"Days": 1})
        assert code(e) == "RestoreAlreadyInProgress"
        with pytest.raises(botocore.exceptions.ClientError) as e:
            s3.get_object(Bucket="cold", Key="archive.bin")
        assert code(e) == "InvalidObjectState"

        time.sleep(0.7)
        head = s3.head_object(Bucket="cold", Key="archive.bin")
        assert head["Restore"].startswith('ongoing-request="false", expiry-date=')
        assert s3.get_object(Bucket="cold", Key="archive.bin")["Body"].read() == b"frozen"
        # Restoring again while restored extends the copy (200, not 202).
        assert s3.restore_object(Bucket="cold", Key="archive.bin", RestoreRequest={"Days": 1})["ResponseMetadata"]["HTTPStatusCode"] == 200

        time.sleep(2.3)  # one "day" (2 s here) after the last restore: the restored copy expired
        assert "Restore" not in s3.head_object(Bucket="cold", Key="archive.bin")
        with pytest.raises(botocore.exceptions.ClientError) as e:
            s3.get_object(Bucket="cold", Key="archive.bin")
        assert code(e) == "InvalidObjectState"


# ---- lifecycle rules, applied ----

def wait_for(check, timeout=8.0):
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def keys(s3, bucket):
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def test_lifecycle_rules_are_applied(tmp_path):
    with Lakebox(tmp_path, "--s3-day-seconds", "1") as lb:
        s3 = lb.client("s3")
        s3.create_bucket(Bucket="lcy")
        with pytest.raises(botocore.exceptions.ClientError) as e:
            s3.put_bucket_lifecycle_configuration(Bucket="lcy", LifecycleConfiguration={"Rules": [
                {"ID": "bad", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 0}}]})
        assert code(e) == "InvalidArgument"
        s3.put_bucket_lifecycle_configuration(Bucket="lcy", LifecycleConfiguration={"Rules": [
            {"ID": "tmp", "Status": "Enabled", "Filter": {"Prefix": "tmp/"}, "Expiration": {"Days": 2}},
            {"ID": "tagged", "Status": "Enabled", "Filter": {"Tag": {"Key": "expire", "Value": "yes"}}, "Expiration": {"Days": 1}},
            {"ID": "cold", "Status": "Enabled", "Filter": {"Prefix": "cold/"}, "Transitions": [{"Days": 1, "StorageClass": "GLACIER"}]},
            {"ID": "off", "Status": "Disabled", "Filter": {"Prefix": "keep/"}, "Expiration": {"Days": 1}},
            {"ID": "mpu", "Status": "Enabled", "Filter": {"Prefix": "up/"}, "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}},
        ]})
        for k in ["tmp/a", "tmp/b", "keep/a", "cold/a", "plain"]:
            s3.put_object(Bucket="lcy", Key=k, Body=b"x")
        s3.put_object(Bucket="lcy", Key="tagged-obj", Body=b"x", Tagging="expire=yes")
        uid = s3.create_multipart_upload(Bucket="lcy", Key="up/big")["UploadId"]
        assert wait_for(lambda: keys(s3, "lcy") == ["cold/a", "keep/a", "plain"]), keys(s3, "lcy")
        assert wait_for(lambda: s3.head_object(Bucket="lcy", Key="cold/a").get("StorageClass") == "GLACIER")
        with pytest.raises(botocore.exceptions.ClientError) as e:
            s3.get_object(Bucket="lcy", Key="cold/a")
        assert code(e) == "InvalidObjectState"
        assert wait_for(lambda: "Uploads" not in s3.list_multipart_uploads(Bucket="lcy"))
        with pytest.raises(botocore.exceptions.ClientError) as e:
            s3.upload_part(Bucket="lcy", Key="up/big", UploadId=uid, PartNumber=1, Body=b"x")
        assert code(e) == "NoSuchUpload"


def test_lifecycle_noncurrent_versions_and_delete_markers(tmp_path):
    with Lakebox(tmp_path, "--s3-day-seconds", "1") as lb:
        s3 = lb.client("s3")
        s3.create_bucket(Bucket="lcv")
        s3.put_bucket_versioning(Bucket="lcv", VersioningConfiguration={"Status": "Enabled"})
        s3.put_bucket_lifecycle_configuration(Bucket="lcv", LifecycleConfiguration={"Rules": [
            {"ID": "nc", "Status": "Enabled", "Filter": {"Prefix": ""},
             "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
             "Expiration": {"ExpiredObjectDeleteMarker": True}}]})
        s3.put_object(Bucket="lcv", Key="doc", Body=b"1")
        s3.put_object(Bucket="lcv", Key="doc", Body=b"2")
        current = s3.put_object(Bucket="lcv", Key="doc", Body=b"3")["VersionId"]
        s3.put_object(Bucket="lcv", Key="gone", Body=b"x")
        s3.delete_object(Bucket="lcv", Key="gone")
        # Noncurrent versions expire; then the lone delete marker of "gone" is removed too.
        assert wait_for(lambda: versions_of(s3, "lcv") == [("V", "doc", current, True)]), versions_of(s3, "lcv")
        assert s3.get_object(Bucket="lcv", Key="doc")["Body"].read() == b"3"


# ---- server-side encryption ----

def files_containing(root, needle):
    hits = []
    for dirpath, _, names in os.walk(root):
        for n in names:
            p = os.path.join(dirpath, n)
            with open(p, "rb") as f:
                if needle in f.read():
                    hits.append(p)
    return hits


def test_sse_s3_encrypts_at_rest(tmp_path):
    marker = b"PLAINTEXT-MARKER-7f3a"
    small = marker + b" small object"
    large = (marker + b"-" + os.urandom(200)) * 2000  # ~440 KiB, several 64 KiB chunks
    with Lakebox(tmp_path) as lb:
        s3 = lb.client("s3")
        s3.create_bucket(Bucket="sealed")
        r = s3.put_object(Bucket="sealed", Key="small", Body=small, ServerSideEncryption="AES256")
        assert r["ServerSideEncryption"] == "AES256"
        s3.put_object(Bucket="sealed", Key="large", Body=large, ServerSideEncryption="AES256")
        s3.put_object(Bucket="sealed", Key="plain", Body=b"not secret")
        got = s3.get_object(Bucket="sealed", Key="small")
        assert got["Body"].read() == small and got["ServerSideEncryption"] == "AES256"
        assert s3.get_object(Bucket="sealed", Key="large")["Body"].read() == large
        assert "ServerSideEncryption" not in s3.head_object(Bucket="sealed", Key="plain")
        chunk = 64 * 1024
        for a, b in [(chunk - 10, chunk + 10), (0, 0), (3 * chunk, 3 * chunk + 5), (len(large) - 7, len(large) - 1)]:
            part = s3.get_object(Bucket="sealed", Key="large", Range=f"bytes={a}-{b}")["Body"].read()
            assert part == large[a:b + 1], (a, b)
        # Multipart, copies both ways, KMS reported with its key.
        up = s3.create_multipart_upload(Bucket="sealed", Key="mp", ServerSideEncryption="aws:kms", SSEKMSKeyId="alias/my-key")
        assert up["ServerSideEncryption"] == "aws:kms"
        p1 = s3.upload_part(Bucket="sealed", Key="mp", UploadId=up["UploadId"], PartNumber=1, Body=large[:5 * 1024 * 1024] if len(large) > 5 * 1024 * 1024 else large * 12)["ETag"]
        p2 = s3.upload_part(Bucket="sealed", Key="mp", UploadId=up["UploadId"], PartNumber=2, Body=small)["ETag"]
        done = s3.complete_multipart_upload(Bucket="sealed", Key="mp", UploadId=up["UploadId"],
                                            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": p1}, {"PartNumber": 2, "ETag": p2}]})
        assert done["ServerSideEncryption"] == "aws:kms" and done["SSEKMSKeyId"] == "alias/my-key"
        assert s3.get_object(Bucket="sealed", Key="mp")["Body"].read() == large * 12 + small
        # A copy takes the destination's encryption: here none, so it is stored as is.
        s3.put_object(Bucket="sealed", Key="sealed-src", Body=b"copied out in plain", ServerSideEncryption="AES256")
        s3.copy_object(Bucket="sealed", Key="plain-copy", CopySource={"Bucket": "sealed", "Key": "sealed-src"})
        got = s3.get_object(Bucket="sealed", Key="plain-copy")
        assert got["Body"].read() == b"copied out in plain" and "ServerSideEncryption" not in got
        c = s3.copy_object(Bucket="sealed", Key="sealed-copy", CopySource={"Bucket": "sealed", "Key": "plain"}, ServerSideEncryption="AES256")
        assert c["ServerSideEncryption"] == "AES256"
        # A bucket's default encryption applies to writes that do not ask.
        s3.put_bucket_encryption(Bucket="sealed", ServerSideEncryptionConfiguration={"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
        assert s3.put_object(Bucket="sealed", Key="by-default", Body=marker + b" default")["ServerSideEncryption"] == "AES256"
        with pytest.raises(botocore.exceptions.ClientError) as e:
            s3.put_object(Bucket="sealed", Key="x", Body=b"x", ServerSideEncryption="rot13")
        assert code(e) == "InvalidArgument"
    # Nothing on disk shows the plaintext: not the blob files, not the metadata holding small objects.
    assert files_containing(tmp_path / "s3", marker) == []
    assert files_containing(tmp_path / "s3", b"not secret")  # the unencrypted object is stored as is
    with Lakebox(tmp_path) as lb:
        s3 = lb.client("s3")
        assert s3.get_object(Bucket="sealed", Key="large")["Body"].read() == large  # the key persists
        assert s3.get_object(Bucket="sealed", Key="by-default")["Body"].read() == marker + b" default"


def test_sse_c_needs_the_customer_key_for_every_read(tmp_path):
    marker = b"SSE-C-PLAINTEXT-4c1d"
    key, other = "k" * 32, "o" * 32
    sse_c = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": key}
    small = marker + b" small"
    large = (marker + os.urandom(100)) * 3000  # ~360 KiB: a blob file, several chunks
    with Lakebox(tmp_path) as lb:
        s3 = lb.client("s3")
        s3.create_bucket(Bucket="ssec")
        r = s3.put_object(Bucket="ssec", Key="small", Body=small, **sse_c)
        assert r["SSECustomerAlgorithm"] == "AES256" and r["SSECustomerKeyMD5"]
        assert "ServerSideEncryption" not in r
        s3.put_object(Bucket="ssec", Key="large", Body=large, **sse_c)
        got = s3.get_object(Bucket="ssec", Key="small", **sse_c)
        assert got["Body"].read() == small and got["SSECustomerKeyMD5"] == r["SSECustomerKeyMD5"]
        assert s3.get_object(Bucket="ssec", Key="large", Range="bytes=70000-70099", **sse_c)["Body"].read() == large[70000:70100]
        assert s3.head_object(Bucket="ssec", Key="large", **sse_c)["ContentLength"] == len(large)
        # Without the key, or with another one, nothing is readable.
        for k in ("small", "large"):
            with pytest.raises(botocore.exceptions.ClientError) as e:
                s3.get_object(Bucket="ssec", Key=k)
            assert code(e) == "InvalidRequest" and status(e) == 400
            with pytest.raises(botocore.exceptions.ClientError) as e:
                s3.get_object(Bucket="ssec", Key=k, SSECustomerAlgorithm="AES256", SSECustomerKey=other)
            assert status(e) == 403
            with pytest.raises(botocore.exceptions.ClientError) as e:
                s3.head_object(Bucket="ssec", Key=k)
            assert status(e) == 400
        # Key headers on an object that is not SSE-C, and malformed keys.
        s3.put_object(Bucket="ssec", Key="plain", Body=b"plain")
        with pytest.raises(botocore.exceptions.ClientError) as e:
            s3.get_object(Bucket="ssec", Key="plain", **sse_c)
        assert code(e) == "InvalidRequest"
        with pytest.raises(botocore.exceptions.ClientError) as e:
            s3.put_object(Bucket="ssec", Key="x", Body=b"x", SSECustomerAlgorithm="AES256", SSECustomerKey="short")
        assert code(e) == "InvalidArgument"
        with pytest.raises(botocore.exceptions.ClientError) as e:
            s3.put_object(Bucket="ssec", Key="x", Body=b"x", SSECustomerAlgorithm="DES", SSECustomerKey=key)
        assert code(e) == "InvalidEncryptionAlgorithmError"
        with pytest.raises(botocore.exceptions.ClientError) as e:
            s3.put_object(Bucket="ssec", Key="x", Body=b"x", SSECustomerAlgorithm="AES256", SSECustomerKey=key,
                          SSECustomerKeyMD5="AAAAAAAAAAAAAAAAAAAAAA==")
        assert code(e) == "InvalidArgument"
        # Copies: the source's key to read it, the destination's to write it.
        s3.copy_object(Bucket="ssec", Key="rekeyed", CopySource={"Bucket": "ssec", "Key": "large"},
                       CopySourceSSECustomerAlgorithm="AES256", CopySourceSSECustomerKey=key,
                       SSECustomerAlgorithm="AES256", SSECustomerKey=other)
        assert s3.get_object(Bucket="ssec", Key="rekeyed", SSECustomerAlgorithm="AES256", SSECustomerKey=other)["Body"].read() == large
        with pytest.raises(botocore.exceptions.ClientError) as e:
            s3.copy_object(Bucket="ssec", Key="y", CopySource={"Bucket": "ssec", "Key": "large"})
        assert code(e) == "InvalidRequest"
        s3.copy_object(Bucket="ssec", Key="decrypted", CopySource={"Bucket": "ssec", "Key": "small"},
                       CopySourceSSECustomerAlgorithm="AES256", CopySourceSSECustomerKey=key,
                       ServerSideEncryption="AES256")
        assert s3.get_object(Bucket="ssec", Key="decrypted")["Body"].read() == small
        # Multipart: every part carries the upload's key.
        up = s3.create_multipart_upload(Bucket="ssec", Key="mp", **sse_c)
        assert up["SSECustomerAlgorithm"] == "AES256"
        with pytest.raises(botocore.exceptions.ClientError) as e:
            s3.upload_part(Bucket="ssec", Key="mp", UploadId=up["UploadId"], PartNumber=1, Body=b"no key")
        assert code(e) == "InvalidRequest"
        part1 = large * 15  # over 5 MiB
        p1 = s3.upload_part(Bucket="ssec", Key="mp", UploadId=up["UploadId"], PartNumber=1, Body=part1, **sse_c)["ETag"]
        p2 = s3.upload_part(Bucket="ssec", Key="mp", UploadId=up["UploadId"], PartNumber=2, Body=small, **sse_c)["ETag"]
        s3.complete_multipart_upload(Bucket="ssec", Key="mp", UploadId=up["UploadId"],
                                     MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": p1}, {"PartNumber": 2, "ETag": p2}]})
        assert s3.get_object(Bucket="ssec", Key="mp", **sse_c)["Body"].read() == part1 + small
        with pytest.raises(botocore.exceptions.ClientError) as e:
            s3.get_object(Bucket="ssec", Key="mp")
        assert code(e) == "InvalidRequest"
        # The AWS CLI: `aws s3 cp --sse-c` up (multipart at this size) and down.
        src, dst = tmp_path / "cli-src.bin", tmp_path / "cli-dst.bin"
        src.write_bytes(part1 + small)
        out = lb.cli("s3", "cp", str(src), "s3://ssec/cli.bin", "--sse-c", "AES256", "--sse-c-key", key, "--only-show-errors")
        assert out.returncode == 0, out.stderr
        out = lb.cli("s3", "cp", "s3://ssec/cli.bin", str(dst), "--sse-c", "AES256", "--sse-c-key", key, "--only-show-errors")
        assert out.returncode == 0, out.stderr
        assert dst.read_bytes() == part1 + small
        assert lb.cli("s3", "cp", "s3://ssec/cli.bin", str(dst) + ".nokey", "--only-show-errors").returncode != 0
        src.unlink()
        dst.unlink()
    # Neither the plaintext nor the key is on disk; after a restart the key still reads the data.
    assert files_containing(tmp_path / "s3", marker) == []
    assert files_containing(tmp_path / "s3", key.encode()) == []
    with Lakebox(tmp_path) as lb:
        s3 = lb.client("s3")
        assert s3.get_object(Bucket="ssec", Key="large", **sse_c)["Body"].read() == large


def test_lifecycle_noncurrent_version_transition(tmp_path):
    with Lakebox(tmp_path, "--s3-day-seconds", "1") as lb:
        s3 = lb.client("s3")
        s3.create_bucket(Bucket="nvt")
        s3.put_bucket_versioning(Bucket="nvt", VersioningConfiguration={"Status": "Enabled"})
        s3.put_bucket_lifecycle_configuration(Bucket="nvt", LifecycleConfiguration={"Rules": [
            {"ID": "cold-old", "Status": "Enabled", "Filter": {"Prefix": ""},
             "NoncurrentVersionTransitions": [{"NoncurrentDays": 1, "StorageClass": "GLACIER"}]}]})
        old = s3.put_object(Bucket="nvt", Key="doc", Body=b"old")["VersionId"]
        s3.put_object(Bucket="nvt", Key="doc", Body=b"new")

        def classes():
            return {v["VersionId"]: (v["StorageClass"], v["IsLatest"]) for v in s3.list_object_versions(Bucket="nvt")["Versions"]}

        assert wait_for(lambda: classes()[old] == ("GLACIER", False)), classes()
        assert [c for c, latest in classes().values() if latest] == ["STANDARD"]
        with pytest.raises(botocore.exceptions.ClientError) as e:
            s3.get_object(Bucket="nvt", Key="doc", VersionId=old)
        assert code(e) == "InvalidObjectState"
