"""The binary itself: startup line, health, version, CLI flags and environment, data-dir rules."""

import json
import os
import signal
import subprocess
import time

import pytest

from lakebox_harness import Lakebox, binary, free_port


def test_startup_line_and_health(lakebox):
    assert lakebox.stdout_line.startswith("Lakebox ")
    assert f"http://127.0.0.1:{lakebox.port}" in lakebox.stdout_line
    assert str(lakebox.data_dir) in lakebox.stdout_line
    h = lakebox.health()
    assert h["status"] == "running"
    assert h["version"]
    assert h["dataDir"] == str(lakebox.data_dir.resolve())
    assert h["services"]["sts"] == "running"
    assert h["services"]["s3"] == "running"
    assert h["services"]["kinesis"] == "running"
    assert h["services"]["glue"] == "running"
    assert h["services"]["firehose"] == "running"
    assert h["services"]["athena"] == "running"
    assert h["services"]["logs"] == "running"
    assert h["services"]["dynamodb"] == "running"
    assert h["services"]["dynamodbstreams"] == "running"
    assert h["services"]["redshift"] == "not_implemented"
    assert {"s3", "kinesis", "firehose", "glue", "athena"} <= set(h["services"])


def test_version_and_help():
    out = subprocess.run([str(binary()), "--version"], capture_output=True, text=True, check=True).stdout
    assert out.startswith("lakebox ")
    help_text = subprocess.run([str(binary()), "serve", "--help"], capture_output=True, text=True, check=True).stdout
    for flag in ["--host", "--port", "--data-dir", "--ephemeral", "--region", "--log-level", "--credentials", "--allow-anonymous"]:
        assert flag in help_text
    for env in ["LAKEBOX_HOST", "LAKEBOX_PORT", "LAKEBOX_DATA_DIR", "LAKEBOX_REGION", "LAKEBOX_CREDENTIALS"]:
        assert env in help_text


def test_flags_from_environment(tmp_path):
    port = free_port()
    env = dict(os.environ, LAKEBOX_PORT=str(port), LAKEBOX_DATA_DIR=str(tmp_path), LAKEBOX_REGION="eu-central-1",
               LAKEBOX_LOG_LEVEL="warn")
    proc = subprocess.Popen([str(binary()), "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert f"127.0.0.1:{port}" in line and str(tmp_path) in line
        import urllib.request
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_lakebox/health") as r:
            assert json.loads(r.read())["region"] == "eu-central-1"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0


def test_unsigned_requests_use_the_default_region(tmp_path):
    with Lakebox(tmp_path, "--region", "ap-southeast-2") as lb:
        assert lb.health()["region"] == "ap-southeast-2"


def test_ephemeral_data_dir_is_removed_at_exit():
    port = free_port()
    proc = subprocess.Popen([str(binary()), "serve", "--ephemeral", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert "(ephemeral)" in line
    data_dir = line.split(" with data in ")[1].split(" (ephemeral)")[0]
    assert os.path.isdir(data_dir)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(10) == 0
    assert not os.path.exists(data_dir)


def test_second_server_on_same_data_dir_is_refused(lakebox):
    proc = subprocess.run([str(binary()), "serve", "--port", str(free_port()), "--data-dir", str(lakebox.data_dir)],
                          capture_output=True, text=True, timeout=10)
    assert proc.returncode != 0
    assert "already using the data directory" in proc.stderr


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10"])
def test_refuses_non_loopback_without_credentials(tmp_path, host):
    # The check happens before binding, so nothing ever listens beyond loopback here.
    proc = subprocess.run([str(binary()), "serve", "--host", host, "--port", str(free_port()), "--data-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=10)
    assert proc.returncode == 2
    assert "refusing to listen" in proc.stderr and "--credentials" in proc.stderr


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])
@pytest.mark.parametrize("how", [["--credentials", " "], ["--credentials", ","], ["--credentials", " : "],
                                 {"LAKEBOX_CREDENTIALS": ""}, {"LAKEBOX_CREDENTIALS": ","}, {"LAKEBOX_CREDENTIALS": " "}],
                         ids=["flag-blank", "flag-comma", "flag-colon", "env-empty", "env-comma", "env-blank"])
def test_blank_credentials_are_refused_never_read_as_accept_all(tmp_path, host, how):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEBOX_")}
    args = [str(binary()), "serve", "--host", host, "--port", str(free_port()), "--data-dir", str(tmp_path)]
    if isinstance(how, dict):
        env.update(how)
    else:
        args += how
    proc = subprocess.run(args, capture_output=True, text=True, timeout=10, env=env)
    assert proc.returncode == 2, proc.stderr
    assert "ACCESS_KEY:SECRET" in proc.stderr or "refusing to listen" in proc.stderr, proc.stderr


def test_bad_flags_exit_with_clear_errors(tmp_path):
    bad_level = subprocess.run([str(binary()), "serve", "--log-level", "loud", "--data-dir", str(tmp_path)],
                               capture_output=True, text=True, timeout=10)
    assert bad_level.returncode == 2 and "--log-level" in bad_level.stderr
    bad_creds = subprocess.run([str(binary()), "serve", "--credentials", "nosecret", "--data-dir", str(tmp_path)],
                               capture_output=True, text=True, timeout=10)
    assert bad_creds.returncode == 2 and "ACCESS_KEY:SECRET" in bad_creds.stderr


def test_sigterm_finishes_in_flight_requests_and_exits_zero(tmp_path):
    lb = Lakebox(tmp_path).start()
    import threading
    from signing import send
    results = []

    def writer():
        for i in range(200):
            try:
                status, _, body = send(lb.endpoint, "POST", "/_lakebox/test/log", f"r{i}".encode())
                results.append((status, json.loads(body)["offset"]))
            except OSError:
                return  # refused after shutdown started: never acknowledged

    t = threading.Thread(target=writer)
    t.start()
    time.sleep(0.2)
    assert lb.stop(signal.SIGTERM) == 0
    t.join()
    acked = [o for s, o in results if s == 200]
    assert acked, "some writes should have been acknowledged before the signal"
    with Lakebox(tmp_path) as again:
        status, _, body = send(again.endpoint, "GET", "/_lakebox/test/log?from=0&limit=100000")
        offsets = {r["offset"] for r in json.loads(body)["records"]}
        assert set(acked) <= offsets


def test_idle_http2_connections_are_closed_but_busy_ones_are_not(tmp_path):
    """An HTTP/2 connection that idles after its preface is let go after the idle timeout (it
    used to stay open for ever); one whose response is still streaming is not, however long
    the client stays silent."""
    import socket
    import threading
    with Lakebox(tmp_path, "--header-read-timeout-ms", "500") as lb:
        conns = []
        for _ in range(50):
            s = socket.create_connection(("127.0.0.1", lb.port), timeout=10)
            s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
            conns.append(s)
        started = time.monotonic()
        for s in conns:
            while s.recv(4096):
                pass  # the server's SETTINGS, then end of stream
            s.close()
        assert time.monotonic() - started < 5

        # A subscription streams for seconds while the client sends nothing: not idle.
        kinesis = lb.client("kinesis")
        kinesis.create_stream(StreamName="quiet", ShardCount=1)
        arn = kinesis.describe_stream_summary(StreamName="quiet")["StreamDescriptionSummary"]["StreamARN"]
        consumer = kinesis.register_stream_consumer(StreamARN=arn, ConsumerName="c")["Consumer"]["ConsumerARN"]
        sub = kinesis.subscribe_to_shard(ConsumerARN=consumer, ShardId="shardId-000000000000",
                                         StartingPosition={"Type": "LATEST"})

        def later():
            time.sleep(2.5)
            kinesis.put_record(StreamName="quiet", Data=b"late", PartitionKey="k")

        threading.Thread(target=later).start()
        got = []
        for event in sub["EventStream"]:
            got += [r["Data"] for r in event["SubscribeToShardEvent"]["Records"]]
            if got:
                break
        sub["EventStream"]._raw_stream.close()
        assert got == [b"late"]


def test_silent_slow_and_idle_connections_are_closed(tmp_path):
    """A client that connects and says nothing, sends half its headers, or idles between
    requests is let go after the header timeout, so slow clients cannot pile up."""
    import socket
    with Lakebox(tmp_path, "--header-read-timeout-ms", "500") as lb:
        def connect():
            s = socket.create_connection(("127.0.0.1", lb.port), timeout=10)
            return s

        def closed_within(s, seconds):
            started = time.monotonic()
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    return time.monotonic() - started <= seconds, data
                data += chunk

        silent = [connect() for _ in range(200)]
        half = connect()
        half.sendall(b"GET /_lakebox/health HTTP/1.1\r\nHost: x\r\n")
        idle = connect()
        idle.sendall(b"GET /_lakebox/health HTTP/1.1\r\nHost: x\r\n\r\n")
        first = idle.recv(65536)
        assert first.startswith(b"HTTP/1.1 200")
        for s in [half, idle]:
            ok, data = closed_within(s, 5)
            assert ok and b"200" not in data
        for s in silent:
            ok, _ = closed_within(s, 5)
            assert ok
            s.close()
        # A client that keeps talking is not cut off, and the server still serves.
        assert lb.health()["status"] == "running"


def test_significant_events_are_logged_one_line_each(tmp_path):
    """At the default level: Athena queries (id, state, time, bytes scanned), Firehose objects
    (stream, object, records, bytes), Kinesis reshards. At debug: every request, failed ones
    too, names its operation — S3's as well."""
    from lakebox_harness import run_query
    with Lakebox(tmp_path / "info") as lb:
        s3, athena = lb.client("s3"), lb.client("athena")
        s3.create_bucket(Bucket="logs")
        qid, e = run_query(athena, "SELECT 1", "s3://logs/q/")
        assert e["Status"]["State"] == "SUCCEEDED"
        failed, _ = run_query(athena, "SELECT * FROM missing_table", "s3://logs/q/")
        fh = lb.client("firehose")
        fh.create_delivery_stream(DeliveryStreamName="logged", ExtendedS3DestinationConfiguration={
            "BucketARN": "arn:aws:s3:::logs", "RoleARN": "arn:aws:iam::000000000000:role/r", "Prefix": "fh/",
            "BufferingHints": {"IntervalInSeconds": 0, "SizeInMBs": 1}})
        fh.put_record_batch(DeliveryStreamName="logged", Records=[{"Data": b"a\n"}, {"Data": b"b\n"}])
        kinesis = lb.client("kinesis")
        kinesis.create_stream(StreamName="logged", ShardCount=1)
        kinesis.split_shard(StreamName="logged", ShardToSplit="shardId-000000000000", NewStartingHashKey=str(2 ** 127))
        deadline = time.monotonic() + 10
        while not all(w in lb.log() for w in ("Firehose delivered", "Kinesis reshard")) and time.monotonic() < deadline:
            time.sleep(0.05)
        log = lb.log()
    lines = log.splitlines()
    [ok] = [l for l in lines if "Athena query finished" in l]
    assert qid in ok and "state=SUCCEEDED" in ok and "bytes_scanned=" in ok and "ms=" in ok
    [bad] = [l for l in lines if "Athena query did not succeed" in l]
    assert failed in bad and "state=FAILED" in bad and "TABLE_NOT_FOUND" in bad
    [delivered] = [l for l in lines if "Firehose delivered" in l]
    assert "stream=logged" in delivered and "object=s3://logs/fh/" in delivered and "records=2" in delivered
    assert "bytes=4" in delivered
    [reshard] = [l for l in lines if "Kinesis reshard took effect" in l]
    assert "stream=logged" in reshard and "shardId-000000000000" in reshard
    # Requests themselves are not logged at the default level.
    assert not any("request" in l and "operation=" in l for l in lines)
    with Lakebox(tmp_path / "debug", env={"LAKEBOX_LOG_LEVEL": "debug"}) as lb:
        s3 = lb.client("s3")
        s3.create_bucket(Bucket="dbg")
        with pytest.raises(Exception):
            s3.get_object(Bucket="dbg", Key="nothing")
        with pytest.raises(Exception):
            lb.client("kinesis").describe_stream(StreamName="nothing")
        time.sleep(0.2)
        log = lb.log()
    requests = [l for l in log.splitlines() if "status=404" in l or "status=400" in l]
    assert any("operation=GetObject" in l and "status=404" in l for l in requests), requests
    assert any("operation=DescribeStream" in l and "status=400" in l for l in requests), requests
    assert any("operation=CreateBucket" in l for l in log.splitlines()), log[-2000:]


def test_a_fresh_server_creates_its_stores_on_first_write(tmp_path):
    """A fresh data directory gets no metadata database until a service first writes (creating
    five at start cost most of start-up); reads before then answer as empty stores do, and what
    is written afterwards survives a SIGKILL."""
    data = tmp_path / "data"
    with Lakebox(data) as lb:
        assert sorted(p.name for p in data.rglob("*.redb")) == []
        assert lb.client("s3").list_buckets()["Buckets"] == []
        assert lb.client("kinesis").list_streams()["StreamNames"] == []
        assert lb.client("glue").get_databases()["DatabaseList"] == []
        assert lb.client("athena").list_named_queries()["NamedQueryIds"] == []
        assert lb.client("firehose").list_delivery_streams()["DeliveryStreamNames"] == []
        assert sorted(p.name for p in data.rglob("*.redb")) == []
        lb.client("s3").create_bucket(Bucket="first")
        lb.client("s3").put_object(Bucket="first", Key="k", Body=b"kept")
        assert [p.relative_to(data).as_posix() for p in data.rglob("*.redb")] == ["s3/meta.redb"]
        lb.kill()
    with Lakebox(data) as lb:
        assert lb.client("s3").get_object(Bucket="first", Key="k")["Body"].read() == b"kept"
