"""The in-process API other services use (and DataFusion through `object_store`) sees exactly
what S3 clients wrote, and S3 clients see what it writes: boto3 on one side, the
`lake_cli` example (lakebox-objectstore over a stopped server's data directory) on the other."""

import hashlib
import io
import os
import subprocess

from boto3.s3.transfer import TransferConfig

from lakebox_harness import REPO, Lakebox, target_dir


def lake_cli(data_dir, *args, text=True):
    exe = target_dir() / "debug" / "examples" / "lake_cli"
    if not os.environ.get("LAKEBOX_BIN"):
        subprocess.run(["cargo", "build", "-q", "-p", "lakebox-objectstore", "--example", "lake_cli"], cwd=REPO, check=True)
    out = subprocess.run([str(exe), str(data_dir), *args], check=True, capture_output=True)
    return out.stdout.decode() if text else out.stdout


def test_object_store_reads_and_writes_what_s3_clients_see(tmp_path):
    big = os.urandom(7 * 1024 * 1024)
    with Lakebox(tmp_path) as lb:
        s3 = lb.client("s3")
        s3.create_bucket(Bucket="lake")
        s3.put_object(Bucket="lake", Key="raw/2026/11/22/a.json", Body=b'{"a": 1}\n')
        s3.put_object(Bucket="lake", Key="raw/2026/11/22/sealed.json", Body=b'{"s": 1}\n', ServerSideEncryption="AES256")
        s3.put_object(Bucket="lake", Key="raw/folder/", Body=b"")  # a console-style folder marker
        s3.put_object(Bucket="lake", Key="other/b.json", Body=b"{}")
        s3.upload_fileobj(io.BytesIO(big), "lake", "raw/big.bin", Config=TransferConfig(multipart_threshold=5 * 1024 * 1024))
        s3.put_object(Bucket="lake", Key="raw/deleted", Body=b"gone")
        s3.delete_object(Bucket="lake", Key="raw/deleted")
        etag = s3.head_object(Bucket="lake", Key="raw/2026/11/22/a.json")["ETag"]
    listed = [line.split("\t") for line in lake_cli(tmp_path, "lake", "ls", "raw").splitlines()]
    assert [(k, int(n)) for k, n, _ in listed] == [
        ("raw/2026/11/22/a.json", 9), ("raw/2026/11/22/sealed.json", 9), ("raw/big.bin", len(big))]
    assert listed[0][2] == etag
    assert lake_cli(tmp_path, "lake", "cat", "raw/2026/11/22/sealed.json") == '{"s": 1}\n'
    assert hashlib.sha256(lake_cli(tmp_path, "lake", "cat", "raw/big.bin", text=False)).digest() == hashlib.sha256(big).digest()
    (tmp_path / "result.csv").write_bytes(b"a,b\n1,2\n")
    written_etag = lake_cli(tmp_path, "lake", "put", "results/q1.csv", str(tmp_path / "result.csv")).strip()
    with Lakebox(tmp_path) as lb:
        s3 = lb.client("s3")
        got = s3.get_object(Bucket="lake", Key="results/q1.csv")
        assert got["Body"].read() == b"a,b\n1,2\n" and got["ETag"] == written_etag
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="lake")["Contents"]]
        assert "results/q1.csv" in keys and "raw/big.bin" in keys
