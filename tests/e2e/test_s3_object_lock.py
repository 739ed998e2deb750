"""S3 Object Lock, judged with boto3: buckets created with it (versioned from the start), the
lock configuration and its default retention, GOVERNANCE and COMPLIANCE retention and legal
holds refusing the delete of a version until they end (the server's clock moved past them), the
governance bypass, and S3's errors."""

import datetime
import uuid

import botocore.exceptions
import pytest

from lakebox_harness import Lakebox
from signing import send

DAY_MS = 86_400_000


@pytest.fixture(scope="module")
def lakebox(tmp_path_factory):
    server = Lakebox(tmp_path_factory.mktemp("objectlock")).start()
    yield server
    server.stop()


@pytest.fixture
def s3(lakebox):
    return lakebox.client("s3", s3={"addressing_style": "path"})


@pytest.fixture
def locked(s3):
    name = "lock-" + uuid.uuid4().hex[:12]
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    return name


def code(e):
    return e.value.response["Error"]["Code"]


def advance(lakebox, ms):
    status, _, _ = send(lakebox.endpoint, "POST", f"/_lakebox/test/clock?advance_ms={ms}")
    assert status == 200


def server_now(s3, bucket):
    """The server's clock, read from a fresh object's Last-Modified."""
    s3.put_object(Bucket=bucket, Key="clock-probe", Body=b"")
    return s3.head_object(Bucket=bucket, Key="clock-probe")["LastModified"]


def test_a_bucket_created_with_object_lock_is_versioned_and_configured(s3, locked):
    assert s3.get_bucket_versioning(Bucket=locked)["Status"] == "Enabled"
    conf = s3.get_object_lock_configuration(Bucket=locked)["ObjectLockConfiguration"]
    assert conf == {"ObjectLockEnabled": "Enabled"}
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.put_bucket_versioning(Bucket=locked, VersioningConfiguration={"Status": "Suspended"})
    assert code(e) == "InvalidBucketState"


def test_compliance_retention_refuses_deletes_until_it_ends(lakebox, s3, locked):
    until = server_now(s3, locked) + datetime.timedelta(days=2)
    v = s3.put_object(Bucket=locked, Key="ledger.csv", Body=b"a,b\n", ObjectLockMode="COMPLIANCE",
                      ObjectLockRetainUntilDate=until)["VersionId"]
    head = s3.head_object(Bucket=locked, Key="ledger.csv")
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert abs((head["ObjectLockRetainUntilDate"] - until).total_seconds()) < 1
    ret = s3.get_object_retention(Bucket=locked, Key="ledger.csv", VersionId=v)["Retention"]
    assert ret["Mode"] == "COMPLIANCE" and abs((ret["RetainUntilDate"] - until).total_seconds()) < 1
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.delete_object(Bucket=locked, Key="ledger.csv", VersionId=v)
    assert code(e) == "AccessDenied"
    # Bypassing governance does nothing for compliance; nor can it be shortened or weakened.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.delete_object(Bucket=locked, Key="ledger.csv", VersionId=v, BypassGovernanceRetention=True)
    assert code(e) == "AccessDenied"
    for mode, when in (("COMPLIANCE", until - datetime.timedelta(days=1)), ("GOVERNANCE", until)):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            s3.put_object_retention(Bucket=locked, Key="ledger.csv", VersionId=v,
                                    Retention={"Mode": mode, "RetainUntilDate": when},
                                    BypassGovernanceRetention=True)
        assert code(e) == "AccessDenied"
    # It can be lengthened.
    longer = until + datetime.timedelta(days=1)
    s3.put_object_retention(Bucket=locked, Key="ledger.csv", VersionId=v,
                            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": longer})
    # A delete without a version id only adds a delete marker: the version stays readable.
    marker = s3.delete_object(Bucket=locked, Key="ledger.csv")
    assert marker["DeleteMarker"] is True
    assert s3.get_object(Bucket=locked, Key="ledger.csv", VersionId=v)["Body"].read() == b"a,b\n"
    # DeleteObjects refuses the locked version, and removes the marker.
    out = s3.delete_objects(Bucket=locked, Delete={"Objects": [
        {"Key": "ledger.csv", "VersionId": v}, {"Key": "ledger.csv", "VersionId": marker["VersionId"]}]})
    assert [(x["VersionId"], x["Code"]) for x in out["Errors"]] == [(v, "AccessDenied")]
    assert [x["VersionId"] for x in out["Deleted"]] == [marker["VersionId"]]
    # Once the retention ends, the version can go.
    advance(lakebox, 3 * DAY_MS + 60_000)
    s3.delete_object(Bucket=locked, Key="ledger.csv", VersionId=v)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_object(Bucket=locked, Key="ledger.csv", VersionId=v)
    assert code(e) == "NoSuchVersion"


def test_governance_retention_yields_only_to_a_bypass(s3, locked):
    until = server_now(s3, locked) + datetime.timedelta(days=1)
    v = s3.put_object(Bucket=locked, Key="g.txt", Body=b"governed", ObjectLockMode="GOVERNANCE",
                      ObjectLockRetainUntilDate=until)["VersionId"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.delete_object(Bucket=locked, Key="g.txt", VersionId=v)
    assert code(e) == "AccessDenied"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.put_object_retention(Bucket=locked, Key="g.txt", VersionId=v,
                                Retention={"Mode": "GOVERNANCE", "RetainUntilDate": until - datetime.timedelta(hours=1)})
    assert code(e) == "AccessDenied"
    shorter = until - datetime.timedelta(hours=1)
    s3.put_object_retention(Bucket=locked, Key="g.txt", VersionId=v, BypassGovernanceRetention=True,
                            Retention={"Mode": "GOVERNANCE", "RetainUntilDate": shorter})
    ret = s3.get_object_retention(Bucket=locked, Key="g.txt", VersionId=v)["Retention"]
    assert abs((ret["RetainUntilDate"] - shorter).total_seconds()) < 1
    assert s3.get_object(Bucket=locked, Key="g.txt", VersionId=v)["Body"].read() == b"governed"
    s3.delete_object(Bucket=locked, Key="g.txt", VersionId=v, BypassGovernanceRetention=True)
    assert "Versions" not in s3.list_object_versions(Bucket=locked, Prefix="g.txt")


def test_a_legal_hold_refuses_deletes_until_it_is_lifted(s3, locked):
    v = s3.put_object(Bucket=locked, Key="held.txt", Body=b"evidence", ObjectLockLegalHoldStatus="ON")["VersionId"]
    assert s3.head_object(Bucket=locked, Key="held.txt")["ObjectLockLegalHoldStatus"] == "ON"
    assert s3.get_object_legal_hold(Bucket=locked, Key="held.txt")["LegalHold"] == {"Status": "ON"}
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.delete_object(Bucket=locked, Key="held.txt", VersionId=v, BypassGovernanceRetention=True)
    assert code(e) == "AccessDenied"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_object_retention(Bucket=locked, Key="held.txt")
    assert code(e) == "NoSuchObjectLockConfiguration"
    s3.put_object_legal_hold(Bucket=locked, Key="held.txt", VersionId=v, LegalHold={"Status": "OFF"})
    assert s3.get_object_legal_hold(Bucket=locked, Key="held.txt", VersionId=v)["LegalHold"] == {"Status": "OFF"}
    s3.delete_object(Bucket=locked, Key="held.txt", VersionId=v)
    assert "Versions" not in s3.list_object_versions(Bucket=locked, Prefix="held.txt")


def test_default_retention_applies_to_new_versions(lakebox, s3, locked):
    s3.put_object_lock_configuration(Bucket=locked, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}})
    conf = s3.get_object_lock_configuration(Bucket=locked)["ObjectLockConfiguration"]
    assert conf["Rule"]["DefaultRetention"] == {"Mode": "GOVERNANCE", "Days": 1}
    now = server_now(s3, locked)
    v = s3.put_object(Bucket=locked, Key="daily.log", Body=b"log line")["VersionId"]
    head = s3.head_object(Bucket=locked, Key="daily.log")
    assert head["ObjectLockMode"] == "GOVERNANCE"
    assert abs((head["ObjectLockRetainUntilDate"] - (now + datetime.timedelta(days=1))).total_seconds()) < 5
    # Multipart uploads and copies get it too.
    up = s3.create_multipart_upload(Bucket=locked, Key="big.bin")
    part = s3.upload_part(Bucket=locked, Key="big.bin", UploadId=up["UploadId"], PartNumber=1, Body=b"p" * 10)
    s3.complete_multipart_upload(Bucket=locked, Key="big.bin", UploadId=up["UploadId"],
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    assert s3.head_object(Bucket=locked, Key="big.bin")["ObjectLockMode"] == "GOVERNANCE"
    s3.copy_object(Bucket=locked, Key="copy.log", CopySource={"Bucket": locked, "Key": "daily.log"})
    assert s3.head_object(Bucket=locked, Key="copy.log")["ObjectLockMode"] == "GOVERNANCE"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.delete_object(Bucket=locked, Key="daily.log", VersionId=v)
    assert code(e) == "AccessDenied"
    advance(lakebox, DAY_MS + 60_000)
    s3.delete_object(Bucket=locked, Key="daily.log", VersionId=v)


def test_object_lock_errors(s3, locked):
    plain = "plain-" + uuid.uuid4().hex[:12]
    s3.create_bucket(Bucket=plain)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_object_lock_configuration(Bucket=plain)
    assert code(e) == "ObjectLockConfigurationNotFoundError"
    future = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=30)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.put_object(Bucket=plain, Key="k", Body=b"x", ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=future)
    assert code(e) == "InvalidRequest"
    assert "Object Lock" in e.value.response["Error"]["Message"]
    s3.put_object(Bucket=plain, Key="k", Body=b"x")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_object_retention(Bucket=plain, Key="k")
    assert code(e) == "InvalidRequest"
    # A configuration needs versioning.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.put_object_lock_configuration(Bucket=plain, ObjectLockConfiguration={"ObjectLockEnabled": "Enabled"})
    assert code(e) == "InvalidBucketState"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.put_object_lock_configuration(Bucket=locked, ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 0}}})
    assert code(e) == "InvalidArgument"
    past = datetime.datetime(2001, 1, 1, tzinfo=datetime.timezone.utc)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.put_object(Bucket=locked, Key="k", Body=b"x", ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=past)
    assert code(e) == "InvalidArgument"
    s3.put_object(Bucket=locked, Key="free.txt", Body=b"x")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_object_retention(Bucket=locked, Key="free.txt")
    assert code(e) == "NoSuchObjectLockConfiguration"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_object_legal_hold(Bucket=locked, Key="free.txt")
    assert code(e) == "NoSuchObjectLockConfiguration"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_object_retention(Bucket=locked, Key="missing.txt")
    assert code(e) == "NoSuchKey"


def test_locks_survive_a_restart(tmp_path):
    with Lakebox(tmp_path) as lb:
        s3 = lb.client("s3", s3={"addressing_style": "path"})
        s3.create_bucket(Bucket="durable-lock", ObjectLockEnabledForBucket=True)
        v = s3.put_object(Bucket="durable-lock", Key="k", Body=b"kept", ObjectLockLegalHoldStatus="ON")["VersionId"]
    with Lakebox(tmp_path) as lb:
        s3 = lb.client("s3", s3={"addressing_style": "path"})
        with pytest.raises(botocore.exceptions.ClientError) as e:
            s3.delete_object(Bucket="durable-lock", Key="k", VersionId=v)
        assert code(e) == "AccessDenied"
        assert s3.get_object(Bucket="durable-lock", Key="k", VersionId=v)["Body"].read() == b"kept"


def test_lifecycle_leaves_locked_versions_alone(tmp_path):
    import time
    with Lakebox(tmp_path, "--s3-day-seconds", "1") as lb:
        s3 = lb.client("s3", s3={"addressing_style": "path"})
        s3.create_bucket(Bucket="lock-lc", ObjectLockEnabledForBucket=True)
        s3.put_bucket_lifecycle_configuration(Bucket="lock-lc", LifecycleConfiguration={"Rules": [
            {"ID": "nc", "Status": "Enabled", "Filter": {"Prefix": ""},
             "NoncurrentVersionExpiration": {"NoncurrentDays": 1}}]})
        held = s3.put_object(Bucket="lock-lc", Key="doc", Body=b"held", ObjectLockLegalHoldStatus="ON")["VersionId"]
        free = s3.put_object(Bucket="lock-lc", Key="doc", Body=b"free")["VersionId"]
        current = s3.put_object(Bucket="lock-lc", Key="doc", Body=b"current")["VersionId"]

        def ids():
            return {v["VersionId"] for v in s3.list_object_versions(Bucket="lock-lc").get("Versions", [])}
        deadline = time.time() + 20
        while free in ids() and time.time() < deadline:
            time.sleep(0.2)
        # The unprotected noncurrent version expired; the one under legal hold did not.
        assert ids() == {held, current}
        assert s3.get_object(Bucket="lock-lc", Key="doc", VersionId=held)["Body"].read() == b"held"
