"""A full disk: writes fail with the service's AWS error, what is stored stays readable and
deletable, writes resume once space is freed (no restart), a restart on a full disk works, and
deleting data gives its space back.

The data directory sits on a small tmpfs of its own, so the disk really fills (ENOSPC from the
kernel, not a simulation). Mounting needs root, which the CI machine has.
"""

import hashlib
import os
import subprocess
import time
import uuid

import botocore.exceptions
import pytest

from lakebox_harness import Lakebox

RESERVE = 4 * 1024 * 1024
MIB = 1024 * 1024


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", str(mount)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {r.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def server(disk) -> Lakebox:
    """A server on the small disk (not yet started: use it in `with`, or call start())."""
    return Lakebox(disk / "data", env={"LAKEBOX_DISK_RESERVE_BYTES": str(RESERVE)})


def body(i: int, size: int) -> bytes:
    seed = hashlib.sha256(str(i).encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


def error_of(call):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call()
    return e.value.response["ResponseMetadata"]["HTTPStatusCode"], e.value.response["Error"]


def fill(s3, bucket, size, limit=200):
    """PUTs objects of `size` bytes until one is refused; returns the stored keys and that error."""
    stored = []
    for i in range(limit):
        key = f"obj-{size}-{i}"
        try:
            s3.put_object(Bucket=bucket, Key=key, Body=body(i, size))
        except botocore.exceptions.ClientError as e:
            return stored, (e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"])
        stored.append((key, i))
    raise AssertionError(f"{limit} objects of {size} bytes fit on a 40 MiB disk")


def assert_full_error(status, error, code="ServiceUnavailable"):
    assert status == 503, (status, error)
    assert error["Code"] == code, error
    assert "disk holding its data directory is full" in error["Message"], error


def assert_all_readable(s3, bucket, stored, size):
    listed = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        listed |= {o["Key"] for o in page.get("Contents", [])}
    assert {k for k, _ in stored} <= listed
    for key, i in stored:
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body(i, size), key


def wait_writable(s3, bucket, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            s3.put_object(Bucket=bucket, Key="after-space-freed", Body=body(999, MIB))
            return
        except botocore.exceptions.ClientError as e:
            assert e.response["Error"]["Code"] == "ServiceUnavailable"
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_full_disk_refuses_writes_serves_reads_and_deletes_and_recovers_without_restart(small_disk):
    with server(small_disk) as lb:
        s3, kinesis, glue, firehose = (lb.client(s) for s in ("s3", "kinesis", "glue", "firehose"))
        s3.create_bucket(Bucket="lake")
        kinesis.create_stream(StreamName="orders", ShardCount=1)
        kinesis.put_record(StreamName="orders", Data=b"before", PartitionKey="p")
        glue.create_database(DatabaseInput={"Name": "shop"})
        firehose.create_delivery_stream(
            DeliveryStreamName="to-lake",
            ExtendedS3DestinationConfiguration={
                "BucketARN": "arn:aws:s3:::lake", "RoleARN": "arn:aws:iam::000000000000:role/firehose"})

        stored, (status, error) = fill(s3, "lake", MIB)
        assert len(stored) > 10
        assert_full_error(status, error)
        health = lb.health()
        assert health["status"] == "degraded" and "disk full" in health["degradedReason"]

        # Every service's writes get its AWS error; none is a 500.
        assert_full_error(*error_of(lambda: s3.put_object(Bucket="lake", Key="tiny", Body=b"x")))
        assert_full_error(*error_of(lambda: s3.create_multipart_upload(Bucket="lake", Key="mpu")))
        assert_full_error(*error_of(lambda: s3.copy_object(Bucket="lake", Key="copy", CopySource="lake/" + stored[0][0])))
        assert_full_error(*error_of(lambda: kinesis.put_record(StreamName="orders", Data=b"x", PartitionKey="p")))
        failed = kinesis.put_records(StreamName="orders", Records=[{"Data": b"x", "PartitionKey": "p"}])
        assert failed["FailedRecordCount"] == 1 and failed["Records"][0]["ErrorCode"] == "InternalFailure"
        assert_full_error(*error_of(lambda: kinesis.create_stream(StreamName="more", ShardCount=1)))
        assert_full_error(*error_of(lambda: glue.create_database(DatabaseInput={"Name": "more"})))
        assert_full_error(*error_of(
            lambda: firehose.put_record(DeliveryStreamName="to-lake", Record={"Data": b"x"})),
            code="ServiceUnavailableException")

        # What is stored stays readable.
        assert_all_readable(s3, "lake", stored, MIB)
        it = kinesis.get_shard_iterator(StreamName="orders", ShardId="shardId-000000000000",
                                        ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        assert [r["Data"] for r in kinesis.get_records(ShardIterator=it)["Records"]] == [b"before"]
        assert [d["Name"] for d in glue.get_databases()["DatabaseList"]] == ["shop"]

        # Deletes work while full, and free the space: writes resume without a restart.
        for key, _ in stored[:8]:
            s3.delete_object(Bucket="lake", Key=key)
        glue.delete_database(Name="shop")
        wait_writable(s3, "lake")
        assert lb.health()["status"] == "running"
        assert s3.get_object(Bucket="lake", Key="after-space-freed")["Body"].read() == body(999, MIB)
        kinesis.put_record(StreamName="orders", Data=b"after", PartitionKey="p")
        glue.create_database(DatabaseInput={"Name": "shop2"})
        assert_all_readable(s3, "lake", stored[8:], MIB)


def test_metadata_store_recovers_from_no_space_inside_its_commit(small_disk):
    # Objects up to 64 KiB live inside the metadata store, so here the disk fills inside a
    # metadata commit: redb refuses all later writes on that handle until it is reopened.
    with server(small_disk) as lb:
        s3 = lb.client("s3")
        s3.create_bucket(Bucket="small")
        stored, (status, error) = fill(s3, "small", 48 * 1024, limit=2000)
        assert_full_error(status, error)
        assert_all_readable(s3, "small", stored, 48 * 1024)
        for key, _ in stored[: len(stored) // 2]:
            s3.delete_object(Bucket="small", Key=key)
        wait_writable(s3, "small")
        s3.put_object(Bucket="small", Key="inline-again", Body=b"small and durable")
        assert_all_readable(s3, "small", stored[len(stored) // 2:], 48 * 1024)
    # And everything acknowledged is there after a restart.
    with server(small_disk) as lb:
        s3 = lb.client("s3")
        assert s3.get_object(Bucket="small", Key="inline-again")["Body"].read() == b"small and durable"
        assert_all_readable(s3, "small", stored[len(stored) // 2:], 48 * 1024)


def test_restart_on_a_full_disk_serves_reads_and_deletes(small_disk):
    lb = server(small_disk).start()
    s3 = lb.client("s3")
    s3.create_bucket(Bucket="lake")
    stored, (status, error) = fill(s3, "lake", MIB)
    assert_full_error(status, error)
    lb.kill()
    # Something else takes the space Lakebox had in reserve: the disk is full at start.
    hog = small_disk / "hog"
    with open(hog, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass

    with server(small_disk) as lb:
        s3 = lb.client("s3")
        assert lb.health()["status"] == "degraded"
        assert_all_readable(s3, "lake", stored, MIB)
        assert_full_error(*error_of(lambda: s3.put_object(Bucket="lake", Key="no", Body=body(0, MIB))))
        hog.unlink()
        for key, _ in stored[:8]:
            s3.delete_object(Bucket="lake", Key=key)
        wait_writable(s3, "lake")
        assert lb.health()["status"] == "running"


def test_deleting_data_gives_its_space_back(tmp_path):
    """Blob files go at once; pages freed inside the metadata file are reused (the file does
    not grow with churn) and handed back to the filesystem at the next start."""
    data = tmp_path / "data"
    meta = data / "s3" / "meta.redb"
    lb = Lakebox(data).start()
    s3 = lb.client("s3")
    s3.create_bucket(Bucket="churn")
    chunk = os.urandom(48 * 1024)  # stored inline in the metadata store
    sizes = []
    for cycle in range(3):
        keys = [f"{cycle}/{uuid.uuid4()}" for _ in range(450)]
        for k in keys:
            s3.put_object(Bucket="churn", Key=k, Body=chunk)
        sizes.append(meta.stat().st_size)
        for k in keys:
            s3.delete_object(Bucket="churn", Key=k)
    assert max(sizes) < 2.5 * sizes[0], sizes
    big = data / "s3"
    s3.put_object(Bucket="churn", Key="blob", Body=os.urandom(8 * MIB))
    used_with_blob = sum(p.stat().st_blocks for p in big.rglob("*") if p.is_file())
    s3.delete_object(Bucket="churn", Key="blob")
    used_after = sum(p.stat().st_blocks for p in big.rglob("*") if p.is_file())
    assert (used_with_blob - used_after) * 512 >= 8 * MIB
    lb.stop()
    before = meta.stat().st_size
    with Lakebox(data) as lb:
        after = meta.stat().st_size
        # redb's compaction moves pages down as far as its allocator lets it; how far varies with
        # the file's layout (15.5 → 0.6 MB here, 11.7 → 6.6 MB once in CI), so the test asks for
        # the freed megabytes back, not for a ratio.
        assert before - after >= 4 * MIB, (before, after)
        assert lb.client("s3").list_objects_v2(Bucket="churn")["KeyCount"] == 0
