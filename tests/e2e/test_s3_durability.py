"""S3 under kill -9: every acknowledged object is there, whole; nothing torn is ever visible;
uploads in progress survive and can still be completed."""

import hashlib
import os
import random
import signal
import threading
import time

import boto3
import botocore.exceptions
from botocore.config import Config

from lakebox_harness import Lakebox


def client(endpoint):
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test",
                        aws_secret_access_key="test",
                        config=Config(retries={"total_max_attempts": 1}, connect_timeout=2, read_timeout=10))


def payload(tag: str) -> bytes:
    """Self-describing content: a header with the length and MD5 of a random body."""
    body = os.urandom(random.choice([0, 100, 5000, 70_000, 300_000]))
    return f"{tag}|{len(body)}|{hashlib.md5(body).hexdigest()}|".encode() + body


def well_formed(data: bytes) -> bool:
    try:
        tag, n, md5, body = data.split(b"|", 3)
    except ValueError:
        return False
    return int(n) == len(body) and hashlib.md5(body).hexdigest() == md5.decode()


class Writer(threading.Thread):
    def __init__(self, endpoint, tid, cycle):
        super().__init__(daemon=True)
        self.s3, self.tid, self.cycle = client(endpoint), tid, cycle
        self.acked = {}            # key -> bytes (unique keys)
        self.hot_attempts = []     # versions attempted on this writer's hot key, in order
        self.hot_acked = None

    def run(self):
        i = 0
        try:
            while True:
                key = f"c{self.cycle}/w{self.tid}/{i:05d}"
                data = payload(key)
                self.s3.put_object(Bucket="crash", Key=key, Body=data)
                self.acked[key] = data
                if i % 3 == 0:
                    hot = payload(f"hot{self.tid}-{self.cycle}-{i}")
                    self.hot_attempts.append(hot)
                    self.s3.put_object(Bucket="crash", Key=f"hot/{self.tid}", Body=hot)
                    self.hot_acked = hot
                i += 1
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError, OSError):
            return


def test_sigkill_during_uploads(tmp_path):
    writers_by_cycle = []
    with Lakebox(tmp_path) as lb:
        client(lb.endpoint).create_bucket(Bucket="crash")
    for cycle, seconds in enumerate((1.5, 0.8)):
        lb = Lakebox(tmp_path).start()
        s3 = client(lb.endpoint)
        # An upload in progress when the server dies.
        uid = s3.create_multipart_upload(Bucket="crash", Key=f"mp{cycle}")["UploadId"]
        part = os.urandom(5 * 1024 * 1024)
        etag = s3.upload_part(Bucket="crash", Key=f"mp{cycle}", UploadId=uid, PartNumber=1, Body=part)["ETag"]
        writers = [Writer(lb.endpoint, t, cycle) for t in range(6)]
        for w in writers:
            w.start()
        time.sleep(seconds)
        lb.proc.send_signal(signal.SIGKILL)
        lb.proc.wait()
        for w in writers:
            w.join(20)
        writers_by_cycle.append((writers, uid, etag, part))

        with Lakebox(tmp_path) as check:
            s3 = client(check.endpoint)
            listed = {}
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket="crash"):
                for o in page.get("Contents", []):
                    listed[o["Key"]] = o
            for key in (k for k in listed if not k.startswith("mp")):  # mp*: checked below
                data = s3.get_object(Bucket="crash", Key=key)["Body"].read()
                assert len(data) == listed[key]["Size"]
                assert well_formed(data), f"torn object {key}"
            total = 0
            for ws, _, _, _ in writers_by_cycle:
                for w in ws:
                    for key, data in w.acked.items():
                        assert key in listed, f"acknowledged object {key} lost"
                        assert s3.get_object(Bucket="crash", Key=key)["Body"].read() == data
                        total += 1
            for w in writers:
                if w.hot_acked is None:
                    continue
                current = s3.get_object(Bucket="crash", Key=f"hot/{w.tid}")["Body"].read()
                idx = w.hot_attempts.index(current)  # must be one of the versions written
                assert idx >= w.hot_attempts.index(w.hot_acked), "went back past an acknowledged version"
            # The interrupted multipart upload can still be completed.
            s3.complete_multipart_upload(Bucket="crash", Key=f"mp{cycle}", UploadId=uid,
                                         MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
            assert s3.get_object(Bucket="crash", Key=f"mp{cycle}")["Body"].read() == part
            print(f"cycle {cycle}: {total} acknowledged objects verified")
            assert total > 50, "the load was too light to prove anything"
