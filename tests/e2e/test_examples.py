"""The runnable examples in examples/, run as a user would: the AWS CLI against a fresh server."""

import os
import subprocess
from pathlib import Path

from lakebox_harness import Lakebox

REPO = Path(__file__).resolve().parents[2]


def test_kinesis_firehose_crawler_athena_pipeline(tmp_path):
    with Lakebox(tmp_path) as lb:
        env = dict(os.environ, AWS_ENDPOINT_URL=lb.endpoint)
        env.pop("AWS_PROFILE", None)
        r = subprocess.run(["bash", str(REPO / "examples" / "kinesis-firehose-athena.sh")],
                           capture_output=True, text=True, env=env, timeout=240)
        assert r.returncode == 0, r.stdout + r.stderr
        out = r.stdout.splitlines()
        # The crawler found the converted columns and the day partition.
        assert "page\tuser\tms" in out and "dt" in out
        # Six clicks: "/" by ann (120), bob (95), cid (70); "/cart" 340 and 280; "/buy" 610.
        result = out[out.index("page\tviews\tavg_ms"):]
        assert result == ["page\tviews\tavg_ms", "/\t3\t95.0", "/cart\t2\t310.0", "/buy\t1\t610.0"]


def doc_example(page: str) -> str:
    """The first ```sh block after `## Example` in docs/<page>."""
    text = (REPO / "docs" / page).read_text()
    after = text[text.index("## Example"):]
    return after.split("```sh\n", 1)[1].split("```", 1)[0]


def test_firehose_docs_example_delivers_the_record_it_shows(tmp_path):
    import gzip
    with Lakebox(tmp_path) as lb:
        script = doc_example("firehose.md").replace("http://localhost:4566", lb.endpoint)
        r = subprocess.run(["bash", "-e", "-c", script], capture_output=True, text=True, timeout=120,
                           env={k: v for k, v in os.environ.items() if k != "AWS_PROFILE"})
        assert r.returncode == 0, r.stdout + r.stderr
        s3 = lb.client("s3")
        import time
        deadline = time.monotonic() + 10
        while not (keys := s3.list_objects_v2(Bucket="lake", Prefix="clicks/").get("Contents")):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        body = s3.get_object(Bucket="lake", Key=keys[0]["Key"])["Body"].read()
        assert gzip.decompress(body) == b'{"page":"/"}\n'


def test_logs_docs_example_finds_the_event_it_shows(tmp_path):
    import json
    with Lakebox(tmp_path) as lb:
        script = doc_example("logs.md").replace("http://localhost:4566", lb.endpoint)
        r = subprocess.run(["bash", "-e", "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                           env={k: v for k, v in os.environ.items() if k != "AWS_PROFILE"})
        assert r.returncode == 0, r.stdout + r.stderr
        # filter-log-events printed the JSON event its pattern found.
        assert '\\"latency\\":250' in r.stdout, r.stdout
        logs = lb.client("logs")
        found = logs.filter_log_events(logGroupName="/shop/orders", filterPattern="{ $.latency > 200 }")["events"]
        assert [json.loads(e["message"]) for e in found] == [{"level": "ERROR", "latency": 250}]
        filters = logs.describe_metric_filters(logGroupName="/shop/orders")["metricFilters"]
        assert [f["filterName"] for f in filters] == ["errors"]


def test_lambda_docs_example_invokes_the_function_it_shows(tmp_path):
    import json
    with Lakebox(tmp_path) as lb:
        script = doc_example("lambda.md").replace("http://localhost:4566", lb.endpoint)
        r = subprocess.run(["bash", "-e", "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                           env={k: v for k, v in os.environ.items() if k != "AWS_PROFILE"})
        assert r.returncode == 0, r.stdout + r.stderr
        out = json.loads((tmp_path / "out.json").read_text())
        assert out["sum"] == 5 and len(out["request"]) == 36


def test_dynamodb_docs_example_updates_the_item_it_shows(tmp_path):
    import json
    with Lakebox(tmp_path) as lb:
        script = doc_example("dynamodb.md").replace("http://localhost:4566", lb.endpoint)
        r = subprocess.run(["bash", "-e", "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                           env={k: v for k, v in os.environ.items() if k != "AWS_PROFILE"})
        assert r.returncode == 0, r.stdout + r.stderr
        items = json.loads(r.stdout[r.stdout.rindex('{\n    "Items"'):])["Items"]
        assert items == [{"customer": {"S": "ann"}, "order_id": {"N": "1"}, "price": {"N": "15"}}]
