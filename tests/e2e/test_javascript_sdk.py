"""The AWS SDK for JavaScript v3 against Lakebox: S3 (with the SDK's default flexible checksums),
Kinesis, Glue, Athena, Firehose, SQS (whose client verifies message checksums) and DynamoDB
(the document client, and DynamoDB Streams), driven by tests/e2e/js/clients.mjs under Node. Skipped, with
the reason, when node or the SDK is not on the machine (./scripts/test installs the SDK when node
is there)."""

import base64
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

MODULES = os.environ.get("LAKEBOX_JS_MODULES", "")


@pytest.fixture(scope="module")
def js_results(lakebox):
    if shutil.which("node") is None:
        pytest.skip("node is not on this machine: the JavaScript SDK v3 tests need it")
    if not (Path(MODULES) / "@aws-sdk" / "client-s3").is_dir():
        pytest.skip("the JavaScript SDK v3 is not installed (./scripts/test installs it into "
                    "$LAKEBOX_JS_MODULES when node is present)")
    script = Path(__file__).parent / "js" / "clients.mjs"
    done = subprocess.run(["node", str(script), lakebox.endpoint], capture_output=True, text=True,
                          timeout=180, env={**os.environ, "LAKEBOX_JS_MODULES": MODULES})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_s3_objects_with_default_checksums(js_results):
    assert js_results["s3_body"] == "hello from js"
    assert js_results["s3_keys"] == ["docs/hello.txt", "docs/sha.txt"]
    assert js_results["s3_sha256"] == base64.b64encode(hashlib.sha256(b"checked").digest()).decode()
    assert js_results["s3_after_delete"] == ["docs/hello.txt"]


def test_kinesis_record_round_trip(js_results):
    assert js_results["kinesis"] == [{"data": "order-1", "key": "k", "sequence": js_results["kinesis_put_sequence"]}]


def test_glue_and_athena(js_results):
    assert js_results["glue_columns"] == [["id", "int"], ["item", "string"]]
    assert js_results["athena_state"] == "SUCCEEDED"
    assert js_results["athena_rows"] == [["id", "item"], ["2", "pear"], ["3", "fig"]]


def test_firehose_delivers_to_s3(js_results):
    assert js_results["firehose_failed"] == 0
    assert js_results["firehose_delivered"] == "a\nb\n"


def test_sqs_messages_with_verified_checksums(js_results):
    assert js_results["sqs_bodies"] == ["batch a", "batch b", "from js|order"]
    assert js_results["sqs_missing"] == "QueueDoesNotExist"


def test_dynamodb_document_client_and_streams(js_results):
    assert js_results["ddb_updated_price"] == 13
    assert js_results["ddb_query"] == {"ids": [2, 4, 5], "count": 3, "scanned": 4, "tags": ["a", "t2"]}
    assert js_results["ddb_tx"] == ["TransactionCanceledException", ["None", "ConditionalCheckFailed"]]
    assert js_results["ddb_bob"] == "absent"
    assert js_results["ddb_stream_events"] == ["INSERT"] * 5 + ["MODIFY"]
