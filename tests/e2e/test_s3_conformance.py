"""Smaller S3 behaviours a public S3 conformance suite checks, each as S3 answers it."""

import base64
import re

import botocore.exceptions
import pytest


@pytest.fixture
def s3(lakebox):
    client = lakebox.client("s3")
    client.create_bucket(Bucket="conf")
    for k in ("a b/1", "a b/2", "c"):
        client.put_object(Bucket="conf", Key=k, Body=b"x")
    return client


def test_max_keys_zero_lists_nothing_and_is_not_truncated(s3):
    v2 = s3.list_objects_v2(Bucket="conf", MaxKeys=0)
    assert (v2["KeyCount"], v2["IsTruncated"], v2.get("Contents")) == (0, False, None)
    assert "NextContinuationToken" not in v2
    v1 = s3.list_objects(Bucket="conf", MaxKeys=0)
    assert (v1["IsTruncated"], v1.get("Contents")) == (False, None)
    versions = s3.list_object_versions(Bucket="conf", MaxKeys=0)
    assert (versions["IsTruncated"], versions.get("Versions")) == (False, None)
    # And one key short of everything is truncated.
    assert s3.list_objects_v2(Bucket="conf", MaxKeys=2)["IsTruncated"] is True


def test_list_objects_v1_echoes_its_prefix_unencoded(s3):
    # boto3 asks for url encoding; S3 encodes keys, markers and delimiters in v1, not the prefix.
    v1 = s3.list_objects(Bucket="conf", Prefix="a b/")
    assert v1["Prefix"] == "a b/"
    assert [o["Key"] for o in v1["Contents"]] == ["a b/1", "a b/2"]
    v2 = s3.list_objects_v2(Bucket="conf", Prefix="a b/", Delimiter="/", StartAfter="a b/1")
    assert (v2["Prefix"], v2["StartAfter"]) == ("a b/", "a b/1")
    assert [o["Key"] for o in v2["Contents"]] == ["a b/2"]


def test_lifecycle_rules_get_ids_and_ids_are_unique(s3):
    rule = {"Status": "Enabled", "Filter": {"Prefix": "tmp/"}, "Expiration": {"Days": 1}}
    s3.put_bucket_lifecycle_configuration(
        Bucket="conf", LifecycleConfiguration={"Rules": [rule, {**rule, "ID": "mine", "Filter": {"Prefix": "x/"}}]})
    got = s3.get_bucket_lifecycle_configuration(Bucket="conf")["Rules"]
    assert got[1]["ID"] == "mine" and got[1]["Filter"] == {"Prefix": "x/"}
    generated = base64.b64decode(got[0]["ID"]).decode()
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", generated)
    assert got[0]["Filter"] == {"Prefix": "tmp/"} and got[0]["Expiration"] == {"Days": 1}
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.put_bucket_lifecycle_configuration(
            Bucket="conf", LifecycleConfiguration={"Rules": [{**rule, "ID": "same"}, {**rule, "ID": "same"}]})
    err = e.value.response["Error"]
    assert (err["Code"], err["Message"]) == ("InvalidArgument", "Rule ID must be unique. Found same ID for more than one rule")
    assert err["ArgumentName"] == "ID" and err["ArgumentValue"] == "same"


def test_multipart_uploads_in_progress_do_not_keep_a_bucket(s3):
    s3.create_bucket(Bucket="pending-uploads")
    upload = s3.create_multipart_upload(Bucket="pending-uploads", Key="big")["UploadId"]
    s3.upload_part(Bucket="pending-uploads", Key="big", UploadId=upload, PartNumber=1, Body=b"p" * 1024)
    s3.delete_bucket(Bucket="pending-uploads")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.head_bucket(Bucket="pending-uploads")
    assert e.value.response["Error"]["Code"] == "404"
    # A bucket of the same name starts without the old upload.
    s3.create_bucket(Bucket="pending-uploads")
    assert s3.list_multipart_uploads(Bucket="pending-uploads").get("Uploads") is None
    # Objects still keep a bucket.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.delete_bucket(Bucket="conf")
    assert e.value.response["Error"]["Code"] == "BucketNotEmpty"


def test_get_object_attributes(s3):
    import hashlib
    body = b"attributes " * 100
    put = s3.put_object(Bucket="conf", Key="attr", Body=body, ChecksumAlgorithm="SHA256", StorageClass="STANDARD_IA")
    got = s3.get_object_attributes(Bucket="conf", Key="attr",
                                   ObjectAttributes=["ETag", "Checksum", "ObjectSize", "StorageClass", "ObjectParts"])
    assert got["ETag"] == put["ETag"].strip('"') == hashlib.md5(body).hexdigest()
    assert got["ObjectSize"] == len(body) and got["StorageClass"] == "STANDARD_IA"
    assert got["Checksum"] == {"ChecksumSHA256": base64.b64encode(hashlib.sha256(body).digest()).decode(),
                               "ChecksumType": "FULL_OBJECT"}
    assert "ObjectParts" not in got and got["LastModified"] == s3.head_object(Bucket="conf", Key="attr")["LastModified"]
    # Only what was asked for.
    assert set(s3.get_object_attributes(Bucket="conf", Key="attr", ObjectAttributes=["ObjectSize"])) - {"ResponseMetadata", "LastModified"} == {"ObjectSize"}
    # A multipart object reports its parts count.
    up = s3.create_multipart_upload(Bucket="conf", Key="parts")["UploadId"]
    etags = [s3.upload_part(Bucket="conf", Key="parts", UploadId=up, PartNumber=n, Body=b"p" * (5 * 1024 * 1024 if n == 1 else 10))["ETag"]
             for n in (1, 2)]
    s3.complete_multipart_upload(Bucket="conf", Key="parts", UploadId=up,
                                 MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in zip((1, 2), etags)]})
    parts = s3.get_object_attributes(Bucket="conf", Key="parts", ObjectAttributes=["ObjectParts", "ObjectSize", "ETag"])
    assert parts["ObjectParts"]["TotalPartsCount"] == 2 and parts["ObjectSize"] == 5 * 1024 * 1024 + 10
    assert parts["ETag"].endswith("-2")
    # Versions and delete markers answer as GET does.
    s3.create_bucket(Bucket="conf-versions")
    s3.put_bucket_versioning(Bucket="conf-versions", VersioningConfiguration={"Status": "Enabled"})
    v1 = s3.put_object(Bucket="conf-versions", Key="k", Body=b"one")["VersionId"]
    s3.put_object(Bucket="conf-versions", Key="k", Body=b"three")
    old = s3.get_object_attributes(Bucket="conf-versions", Key="k", VersionId=v1, ObjectAttributes=["ObjectSize"])
    assert (old["ObjectSize"], old["VersionId"]) == (3, v1)
    marker = s3.delete_object(Bucket="conf-versions", Key="k")["VersionId"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_object_attributes(Bucket="conf-versions", Key="k", ObjectAttributes=["ObjectSize"])
    assert e.value.response["Error"]["Code"] == "NoSuchKey"
    assert e.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amz-delete-marker"] == "true"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_object_attributes(Bucket="conf-versions", Key="k", VersionId=marker, ObjectAttributes=["ObjectSize"])
    assert e.value.response["Error"]["Code"] == "MethodNotAllowed"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_object_attributes(Bucket="conf", Key="attr", ObjectAttributes=["Colour"])
    assert e.value.response["Error"]["Code"] == "InvalidArgument"
    assert e.value.response["Error"]["Message"] == "Invalid attribute name specified."
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_object_attributes(Bucket="conf", Key="missing", ObjectAttributes=["ETag"])
    assert e.value.response["Error"]["Code"] == "NoSuchKey"


def test_multipart_checksums_and_encryption_headers(s3):
    import zlib
    s3.put_bucket_encryption(Bucket="conf", ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    s3.put_object(Bucket="conf", Key="src", Body=b"s" * (5 * 1024 * 1024))
    up = s3.create_multipart_upload(Bucket="conf", Key="ck", ChecksumAlgorithm="CRC32")["UploadId"]
    bodies = [b"a" * (5 * 1024 * 1024), b"b" * 10]
    parts = [s3.upload_part(Bucket="conf", Key="ck", UploadId=up, PartNumber=n, Body=b, ChecksumAlgorithm="CRC32")
             for n, b in zip((1, 2), bodies)]
    # Part uploads, copied ones too, report the upload's encryption as S3 does.
    assert [p["ServerSideEncryption"] for p in parts] == ["AES256", "AES256"]
    copied = s3.upload_part_copy(Bucket="conf", Key="ck", UploadId=up, PartNumber=3, CopySource={"Bucket": "conf", "Key": "src"})
    assert copied["ServerSideEncryption"] == "AES256"
    crcs = [base64.b64encode(zlib.crc32(b).to_bytes(4, "big")).decode() for b in bodies]
    assert [p["ChecksumCRC32"] for p in parts] == crcs
    named = [{"PartNumber": n, "ETag": p["ETag"], "ChecksumCRC32": c} for n, p, c in zip((1, 2), parts, crcs)]
    # A part checksum that is not the uploaded part's is refused.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.complete_multipart_upload(Bucket="conf", Key="ck", UploadId=up, MultipartUpload={
            "Parts": [named[0], {**named[1], "ChecksumCRC32": "AAAAAA=="}]})
    assert e.value.response["Error"]["Code"] == "InvalidPart"
    done = s3.complete_multipart_upload(Bucket="conf", Key="ck", UploadId=up, MultipartUpload={"Parts": named})
    binary = b"".join(base64.b64decode(c) for c in crcs)
    composite = base64.b64encode(zlib.crc32(binary).to_bytes(4, "big")).decode() + "-2"
    assert (done["ChecksumCRC32"], done["ChecksumType"]) == (composite, "COMPOSITE")
    assert done["ServerSideEncryption"] == "AES256"
    head = s3.head_object(Bucket="conf", Key="ck", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == composite and head["ContentLength"] == sum(map(len, bodies))
    assert s3.get_object(Bucket="conf", Key="ck")["Body"].read() == b"".join(bodies)


def test_expiration_header_names_the_rule_and_date(s3):
    import datetime
    s3.put_bucket_lifecycle_configuration(Bucket="conf", LifecycleConfiguration={"Rules": [
        {"ID": "expire-logs", "Status": "Enabled", "Filter": {"Prefix": "logs/"}, "Expiration": {"Days": 3}},
        {"ID": "off", "Status": "Disabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 1}},
        {"ID": "dated", "Status": "Enabled", "Filter": {"Prefix": "tmp/"},
         "Expiration": {"Date": datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)}},
    ]})
    put = s3.put_object(Bucket="conf", Key="logs/a", Body=b"x")
    made = s3.head_object(Bucket="conf", Key="logs/a")["LastModified"]
    due = (made + datetime.timedelta(days=3)).replace(hour=0, minute=0, second=0) + datetime.timedelta(days=1)
    expected = f'expiry-date="{due.strftime("%a, %d %b %Y %H:%M:%S GMT")}", rule-id="expire-logs"'
    assert put["Expiration"] == expected
    assert s3.head_object(Bucket="conf", Key="logs/a")["Expiration"] == expected
    assert s3.get_object(Bucket="conf", Key="logs/a")["Expiration"] == expected
    copied = s3.copy_object(Bucket="conf", Key="tmp/b", CopySource={"Bucket": "conf", "Key": "logs/a"})
    assert copied["Expiration"] == 'expiry-date="Tue, 01 Jan 2030 00:00:00 GMT", rule-id="dated"'
    # No rule (the disabled one does not count), no header; and none once the rules are gone.
    assert "Expiration" not in s3.head_object(Bucket="conf", Key="c")
    s3.delete_bucket_lifecycle(Bucket="conf")
    assert "Expiration" not in s3.head_object(Bucket="conf", Key="logs/a")
