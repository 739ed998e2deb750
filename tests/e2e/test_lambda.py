"""Lambda, judged by boto3 and the AWS CLI: functions created from a zip (inline and from
Lakebox S3), read back, listed, changed and deleted; Invoke running Python (and Node.js where
node is installed) handlers as child processes through the Runtime API, with the event, the
context and the environment AWS gives them; errors, timeouts and crashes answered as AWS
answers them; LogType=Tail; functions surviving SIGKILL."""

import base64
import datetime
import hashlib
import io
import json
import re
import os
import shutil
import tempfile
import threading
import time
import urllib.request
import zipfile

import botocore.exceptions
import pytest

from lakebox_harness import Lakebox, wait_for, zip_of

ROLE = "arn:aws:iam::000000000000:role/lambda-role"


@pytest.fixture(scope="module")
def lakebox(tmp_path_factory):
    server = Lakebox(tmp_path_factory.mktemp("lambda")).start()
    yield server
    server.stop()


@pytest.fixture
def lam(lakebox):
    return lakebox.client("lambda")


def code(e):
    return e.value.response["Error"]["Code"]


def message(e):
    return e.value.response["Error"]["Message"]


ECHO = '''
import os

def handler(event, context):
    print("got", event)
    return {
        "event": event,
        "name": context.function_name,
        "version": context.function_version,
        "arn": context.invoked_function_arn,
        "memory": context.memory_limit_in_mb,
        "request_id": context.aws_request_id,
        "remaining": context.get_remaining_time_in_millis(),
        "log_group": context.log_group_name,
        "env": {k: os.environ.get(k) for k in [
            "AWS_LAMBDA_FUNCTION_NAME", "_HANDLER", "AWS_REGION", "AWS_EXECUTION_ENV",
            "LAMBDA_TASK_ROOT", "GREETING", "AWS_ENDPOINT_URL", "AWS_LAMBDA_RUNTIME_API"]},
        "cwd_files": sorted(os.listdir(os.environ["LAMBDA_TASK_ROOT"])),
    }
'''


def create(lam, name, files, handler="app.handler", runtime="python3.12", **kw):
    return lam.create_function(FunctionName=name, Runtime=runtime, Role=ROLE, Handler=handler,
                               Code={"ZipFile": zip_of(files)}, **kw)


def invoke(lam, name, event=None, **kw):
    resp = lam.invoke(FunctionName=name, Payload=json.dumps(event if event is not None else {}), **kw)
    return resp, json.loads(resp["Payload"].read())


def test_create_get_list_delete(lam):
    created = create(lam, "crud-fn", {"app.py": ECHO}, Description="echo", Timeout=5, MemorySize=256,
                     Environment={"Variables": {"GREETING": "hi"}}, Tags={"team": "shop"})
    assert created["FunctionName"] == "crud-fn"
    assert created["FunctionArn"] == "arn:aws:lambda:us-east-1:000000000000:function:crud-fn"
    assert created["Runtime"] == "python3.12" and created["Handler"] == "app.handler"
    assert created["Timeout"] == 5 and created["MemorySize"] == 256 and created["Version"] == "$LATEST"
    assert created["State"] == "Pending" and created["StateReasonCode"] == "Creating"
    assert created["PackageType"] == "Zip" and created["Architectures"] == ["x86_64"]
    assert created["Environment"] == {"Variables": {"GREETING": "hi"}}
    assert created["CodeSize"] > 0
    # The waiter AWS's docs use after CreateFunction.
    lam.get_waiter("function_active_v2").wait(FunctionName="crud-fn", WaiterConfig={"Delay": 1})
    got = lam.get_function(FunctionName="crud-fn")
    assert got["Configuration"]["State"] == "Active"
    assert got["Configuration"]["LastUpdateStatus"] == "Successful"
    assert got["Tags"] == {"team": "shop"}
    assert got["Code"]["RepositoryType"] == "S3"
    # Code.Location downloads the package that was uploaded.
    downloaded = urllib.request.urlopen(got["Code"]["Location"]).read()
    with zipfile.ZipFile(io.BytesIO(downloaded)) as z:
        assert z.read("app.py").decode() == ECHO
    assert base64.b64encode(hashlib.sha256(downloaded).digest()).decode() == created["CodeSha256"]

    by_arn = lam.get_function_configuration(FunctionName=created["FunctionArn"])
    assert by_arn["FunctionName"] == "crud-fn"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        create(lam, "crud-fn", {"app.py": ECHO})
    assert code(e) == "ResourceConflictException"
    assert message(e) == "Function already exist: crud-fn"

    for i in range(3):
        create(lam, f"list-fn-{i}", {"app.py": ECHO})
    names = []
    for page in lam.get_paginator("list_functions").paginate(PaginationConfig={"PageSize": 2}):
        names += [f["FunctionName"] for f in page["Functions"]]
    assert names == sorted(names) and {"crud-fn", "list-fn-0", "list-fn-1", "list-fn-2"} <= set(names)

    lam.delete_function(FunctionName="crud-fn")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        lam.get_function(FunctionName="crud-fn")
    assert code(e) == "ResourceNotFoundException"
    assert message(e) == "Function not found: arn:aws:lambda:us-east-1:000000000000:function:crud-fn"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_bad_requests_get_aws_errors(lakebox):
    lam = lakebox.client("lambda", parameter_validation=False)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        create(lam, "bad name!", {"app.py": ECHO})
    assert code(e) == "ValidationException"
    assert message(e).startswith("1 validation error detected: Value 'bad name!' at 'functionName' failed to "
                                 "satisfy constraint: Member must satisfy regular expression pattern: ")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        lam.create_function(FunctionName="no-runtime", Role=ROLE, Code={"ZipFile": zip_of({"app.py": ECHO})})
    assert code(e) == "InvalidParameterValueException"
    assert message(e) == "Runtime and Handler are mandatory parameters for functions created with deployment packages."
    with pytest.raises(botocore.exceptions.ClientError) as e:
        lam.create_function(FunctionName="not-zip", Runtime="python3.12", Role=ROLE, Handler="a.b",
                            Code={"ZipFile": b"this is not a zip"})
    assert code(e) == "InvalidParameterValueException"
    assert message(e) == "Could not unzip uploaded file. Please check your file, then try to upload again."
    with pytest.raises(botocore.exceptions.ClientError) as e:
        create(lam, "too-long", {"app.py": ECHO}, Timeout=0)
    assert code(e) == "ValidationException" and "at 'timeout'" in message(e)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        lam.invoke(FunctionName="no-such-fn", Payload=b"{}")
    assert code(e) == "ResourceNotFoundException"
    create(lam, "json-only", {"app.py": ECHO})
    with pytest.raises(botocore.exceptions.ClientError) as e:
        lam.invoke(FunctionName="json-only", Payload=b"not json")
    assert code(e) == "InvalidRequestContentException"
    assert message(e).startswith("Could not parse request body into json")


def test_invoke_python_sees_event_context_and_environment(lakebox, lam):
    create(lam, "echo-fn", {"app.py": ECHO, "data/extra.txt": "x"}, Timeout=7, MemorySize=512,
           Environment={"Variables": {"GREETING": "hello"}})
    resp, out = invoke(lam, "echo-fn", {"order": 42, "items": ["a", "b"]}, LogType="Tail")
    assert resp["StatusCode"] == 200 and "FunctionError" not in resp
    assert resp["ExecutedVersion"] == "$LATEST"
    assert out["event"] == {"order": 42, "items": ["a", "b"]}
    assert out["name"] == "echo-fn" and out["version"] == "$LATEST"
    assert out["arn"] == "arn:aws:lambda:us-east-1:000000000000:function:echo-fn"
    assert out["memory"] == "512" and out["log_group"] == "/aws/lambda/echo-fn"
    assert out["request_id"] == resp["ResponseMetadata"]["RequestId"]
    assert 0 < out["remaining"] <= 7000
    env = out["env"]
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "echo-fn" and env["_HANDLER"] == "app.handler"
    assert env["AWS_REGION"] == "us-east-1" and env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.12"
    assert env["GREETING"] == "hello" and env["AWS_ENDPOINT_URL"] == lakebox.endpoint
    assert out["cwd_files"] == ["app.py", "data"]
    log = base64.b64decode(resp["LogResult"]).decode()
    rid = out["request_id"]
    assert log.startswith(f"START RequestId: {rid} Version: $LATEST\n")
    assert "got {'order': 42, 'items': ['a', 'b']}\n" in log
    assert f"END RequestId: {rid}\n" in log and f"REPORT RequestId: {rid}\tDuration: " in log
    assert "\tMemory Size: 512 MB\tMax Memory Used: " in log and "\tInit Duration: " in log
    assert "lakebox:end" not in log

    # A warm environment serves the next call; state kept in the module survives between calls.
    create(lam, "counter-fn", {"app.py": "n = 0\ndef handler(e, c):\n    global n\n    n += 1\n    return n\n"})
    assert [invoke(lam, "counter-fn")[1] for _ in range(3)] == [1, 2, 3]
    # Updating the code retires the warm environment.
    lam.update_function_code(FunctionName="counter-fn",
                             ZipFile=zip_of({"app.py": "def handler(e, c):\n    return 'new code'\n"}))
    lam.get_waiter("function_updated_v2").wait(FunctionName="counter-fn", WaiterConfig={"Delay": 1})
    assert invoke(lam, "counter-fn")[1] == "new code"
    lam.update_function_configuration(FunctionName="echo-fn", Environment={"Variables": {"GREETING": "changed"}})
    assert invoke(lam, "echo-fn")[1]["env"]["GREETING"] == "changed"


def test_function_calls_lakebox_with_the_sdk(lakebox, lam):
    # AWS_ENDPOINT_URL points SDK calls made inside the function at Lakebox.
    lakebox.client("s3").create_bucket(Bucket="fn-writes")
    src = '''
import boto3

def handler(event, context):
    s3 = boto3.client("s3")
    s3.put_object(Bucket="fn-writes", Key=event["key"], Body=event["body"].encode())
    return s3.get_object(Bucket="fn-writes", Key=event["key"])["Body"].read().decode()
'''
    create(lam, "sdk-fn", {"app.py": src}, Timeout=30)
    resp, out = invoke(lam, "sdk-fn", {"key": "from-lambda.txt", "body": "written inside"})
    assert "FunctionError" not in resp, out
    assert out == "written inside"
    body = lakebox.client("s3").get_object(Bucket="fn-writes", Key="from-lambda.txt")["Body"].read()
    assert body == b"written inside"


def test_errors_timeouts_and_crashes(lam):
    create(lam, "raises-fn", {"app.py": "def handler(e, c):\n    raise ValueError('bad order ' + str(e['id']))\n"})
    resp, out = invoke(lam, "raises-fn", {"id": 7})
    assert resp["StatusCode"] == 200 and resp["FunctionError"] == "Unhandled"
    assert out["errorMessage"] == "bad order 7" and out["errorType"] == "ValueError"
    assert any("raise ValueError" in line for line in out["stackTrace"])

    create(lam, "import-fn", {"app.py": "import no_such_module\ndef handler(e, c):\n    return 1\n"})
    resp, out = invoke(lam, "import-fn")
    assert resp["FunctionError"] == "Unhandled"
    assert out["errorType"] == "Runtime.ImportModuleError"
    assert out["errorMessage"] == "Unable to import module 'app': No module named 'no_such_module'"

    create(lam, "nohandler-fn", {"app.py": "x = 1\n"})
    resp, out = invoke(lam, "nohandler-fn")
    assert out["errorType"] == "Runtime.HandlerNotFound"
    assert out["errorMessage"] == "Handler 'handler' missing on module 'app'"

    create(lam, "slow-fn", {"app.py": "import time\ndef handler(e, c):\n    time.sleep(30)\n"}, Timeout=1)
    started = time.time()
    resp, out = invoke(lam, "slow-fn")
    assert time.time() - started < 10
    assert resp["FunctionError"] == "Unhandled" and out["errorType"] == "Sandbox.Timedout"
    assert out["errorMessage"].endswith("Task timed out after 1.00 seconds")

    create(lam, "exit-fn", {"app.py": "import os\ndef handler(e, c):\n    os._exit(3)\n"})
    resp, out = invoke(lam, "exit-fn")
    assert resp["FunctionError"] == "Unhandled" and out["errorType"] == "Runtime.ExitError"
    assert "exit status: 3" in out["errorMessage"]
    # The next call gets a fresh environment.
    create(lam, "unmarshal-fn", {"app.py": "def handler(e, c):\n    return {1, 2}\n"})
    resp, out = invoke(lam, "unmarshal-fn")
    assert out["errorType"] == "Runtime.MarshalError"


def test_memory_hogs_and_floods_of_output_are_contained(lakebox, lam):
    # Past its MemorySize a function is killed, as AWS kills it; the next call starts afresh.
    hog = ("def handler(e, c):\n"
           "    if e.get('hog'):\n"
           "        blocks = [bytearray(1024 * 1024) for _ in range(400)]\n"
           "        return len(blocks)\n"
           "    return 'fine'\n")
    create(lam, "hog-fn", {"app.py": hog}, MemorySize=128, Timeout=30)
    resp, out = invoke(lam, "hog-fn", {"hog": True})
    assert resp["FunctionError"] == "Unhandled" and out["errorType"] == "Runtime.OutOfMemory", out
    assert out["errorMessage"].endswith("Error: Runtime exited with error: signal: killed")
    assert invoke(lam, "hog-fn")[1] == "fine"
    # With room enough it runs.
    lam.update_function_configuration(FunctionName="hog-fn", MemorySize=1024)
    lam.get_waiter("function_updated_v2").wait(FunctionName="hog-fn")
    assert invoke(lam, "hog-fn", {"hog": True})[1] == 400

    # 200 MB on one line, and many lines: Lakebox reads it all, keeps a bounded log, stays up.
    flood = ("import sys\n"
             "def handler(e, c):\n"
             "    chunk = 'x' * (1024 * 1024)\n"
             "    for _ in range(200):\n"
             "        sys.stdout.write(chunk)\n"
             "    sys.stdout.write('\\n')\n"
             "    for i in range(20000):\n"
             "        print('line', i)\n"
             "    return 'flooded'\n")
    create(lam, "flood-fn", {"app.py": flood}, Timeout=60)
    resp, out = invoke(lam, "flood-fn", LogType="Tail")
    assert out == "flooded"
    tail = base64.b64decode(resp["LogResult"]).decode()
    assert "REPORT RequestId" in tail
    assert lakebox.health()["status"] == "running"


TMP_PROBE = """
import os

def handler(event, context):
    if event.get("fill"):
        # Writes until /tmp is full: EphemeralStorage megabytes, then ENOSPC as on AWS.
        written, failure = 0, None
        chunk = b"\\0" * (8 << 20)
        try:
            with open("/tmp/fill", "wb") as f:
                while written < (4 << 30):
                    f.write(chunk)
                    written += len(chunk)
        except OSError as e:
            failure = e.errno
        os.remove("/tmp/fill")
        return {"written_mb": written >> 20, "errno": failure}
    st = os.statvfs("/tmp")
    marker = "/tmp/marker-" + event["tag"]
    seen, listing = os.path.exists(marker), sorted(os.listdir("/tmp"))
    with open(marker, "w") as f:
        f.write("x")
    return {"size_mb": st.f_blocks * st.f_frsize >> 20, "seen_before": seen,
            "tmpdir": os.environ.get("TMPDIR"), "listing": listing}
"""


def check_tmp_of_its_own(lam, name, tag):
    """An environment's /tmp: EphemeralStorage in size, kept between warm invocations, never the
    machine's; a bigger EphemeralStorage takes effect in the next environment."""
    made = create(lam, name, {"app.py": TMP_PROBE}, EphemeralStorage={"Size": 512}, Timeout=60)
    assert made["EphemeralStorage"] == {"Size": 512}
    resp, first = invoke(lam, name, {"tag": tag})
    assert "FunctionError" not in resp, first
    assert first["size_mb"] == 512 and first["seen_before"] is False and first["tmpdir"] == "/tmp"
    assert not os.path.exists(f"/tmp/marker-{tag}")  # not written to the machine's /tmp
    assert invoke(lam, name, {"tag": tag})[1]["seen_before"] is True  # the warm environment's /tmp
    resp, filled = invoke(lam, name, {"fill": True})
    assert "FunctionError" not in resp, filled
    assert filled["errno"] == 28 and 496 <= filled["written_mb"] <= 512, filled
    lam.update_function_configuration(FunctionName=name, EphemeralStorage={"Size": 1024})
    lam.get_waiter("function_updated_v2").wait(FunctionName=name)
    resp, bigger = invoke(lam, name, {"tag": tag})
    assert bigger["size_mb"] == 1024 and bigger["seen_before"] is False, bigger
    return first


def test_each_environment_has_a_tmp_of_its_own_sized_by_ephemeral_storage(lam):
    # This server's data directory is under the machine's /tmp: the environment's /tmp shows
    # what is there (its code lives there) but its writes stay its own.
    check_tmp_of_its_own(lam, "tmp-fn", f"overlay-{os.getpid()}")


def test_a_tmp_of_its_own_starts_empty(tmp_path):
    # A data directory outside /tmp: the environment's /tmp starts empty, as on AWS.
    with tempfile.TemporaryDirectory(dir="/var/tmp") as data, Lakebox(data) as lb:
        first = check_tmp_of_its_own(lb.client("lambda"), "tmp-fn", f"empty-{os.getpid()}")
        assert first["listing"] == []


def test_invocation_types(lam):
    create(lam, "types-fn", {"app.py": ECHO})
    resp = lam.invoke(FunctionName="types-fn", InvocationType="DryRun")
    assert resp["StatusCode"] == 204
    resp = lam.invoke(FunctionName="types-fn", InvocationType="Event", Payload=b'{"async": true}')
    assert resp["StatusCode"] == 202
    with pytest.raises(botocore.exceptions.ClientError) as e:
        lam.invoke(FunctionName="types-fn", Payload=b"{}", Qualifier="7")
    assert code(e) == "ResourceNotFoundException"
    assert message(e) == "Function not found: arn:aws:lambda:us-east-1:000000000000:function:types-fn:7"


def test_code_from_s3_and_tags_and_settings(lakebox, lam):
    s3 = lakebox.client("s3")
    s3.create_bucket(Bucket="deploy")
    s3.put_object(Bucket="deploy", Key="pkg/fn.zip", Body=zip_of({"main.py": "def run(e, c):\n    return 'from s3'\n"}))
    f = lam.create_function(FunctionName="s3-fn", Runtime="python3.11", Role=ROLE, Handler="main.run",
                            Code={"S3Bucket": "deploy", "S3Key": "pkg/fn.zip"})
    assert invoke(lam, "s3-fn")[1] == "from s3"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        lam.create_function(FunctionName="s3-missing", Runtime="python3.11", Role=ROLE, Handler="main.run",
                            Code={"S3Bucket": "deploy", "S3Key": "nope.zip"})
    assert code(e) == "InvalidParameterValueException"
    lam.tag_resource(Resource=f["FunctionArn"], Tags={"a": "1", "b": "2"})
    lam.untag_resource(Resource=f["FunctionArn"], TagKeys=["a"])
    assert lam.list_tags(Resource=f["FunctionArn"])["Tags"] == {"b": "2"}
    settings = lam.get_account_settings()
    assert settings["AccountLimit"]["CodeSizeZipped"] == 52428800
    assert settings["AccountUsage"]["FunctionCount"] >= 1


def test_cli_create_and_invoke(lakebox, tmp_path):
    pkg = tmp_path / "fn.zip"
    pkg.write_bytes(zip_of({"app.py": "def handler(e, c):\n    return {'sum': e['a'] + e['b']}\n"}))
    r = lakebox.cli("lambda", "create-function", "--function-name", "cli-fn", "--runtime", "python3.12",
                    "--role", ROLE, "--handler", "app.handler", "--zip-file", f"fileb://{pkg}")
    assert r.returncode == 0, r.stderr
    out = tmp_path / "out.json"
    # fileb:// sends the file's bytes as they are in both CLI versions.
    (tmp_path / "event.json").write_text('{"a": 2, "b": 3}')
    r = lakebox.cli("lambda", "invoke", "--function-name", "cli-fn", "--payload", f"fileb://{tmp_path / 'event.json'}",
                    str(out))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["StatusCode"] == 200
    assert json.loads(out.read_text()) == {"sum": 5}


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_invoke_node(lam):
    create(lam, "node-fn", {"index.js": "exports.handler = async (event, context) => ({got: event, name: context.functionName});"},
           handler="index.handler", runtime="nodejs20.x")
    resp, out = invoke(lam, "node-fn", {"x": 1})
    assert "FunctionError" not in resp, out
    assert out == {"got": {"x": 1}, "name": "node-fn"}
    create(lam, "node-err", {"index.mjs": "export const handler = async () => { throw new TypeError('nope'); };"},
           handler="index.handler", runtime="nodejs22.x")
    resp, out = invoke(lam, "node-err")
    assert resp["FunctionError"] == "Unhandled" and out["errorType"] == "TypeError" and out["errorMessage"] == "nope"


def test_custom_runtime_bootstrap(lam):
    # provided.al2023: the zip's own `bootstrap` speaks the Runtime API (a shell script here).
    bootstrap = """#!/bin/sh
set -e
while true; do
  HEADERS=$(mktemp)
  EVENT=$(curl -sS -D "$HEADERS" "http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation/next")
  ID=$(grep -i Lambda-Runtime-Aws-Request-Id "$HEADERS" | tr -d '[:space:]' | cut -d: -f2)
  echo "custom runtime got $EVENT"
  curl -sS -X POST "http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation/$ID/response" -d "{\\"echo\\": $EVENT}" > /dev/null
done
"""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        info = zipfile.ZipInfo("bootstrap")
        info.external_attr = 0o755 << 16
        z.writestr(info, bootstrap)
    lam.create_function(FunctionName="custom-fn", Runtime="provided.al2023", Role=ROLE, Handler="unused",
                        Code={"ZipFile": buf.getvalue()})
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    resp, out = invoke(lam, "custom-fn", {"n": 1})
    assert "FunctionError" not in resp, out
    assert out == {"echo": {"n": 1}}


def running(cmdline_part):
    """The processes whose command line holds `cmdline_part` (read from /proc)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if cmdline_part.encode() in f.read():
                    found.append(pid)
        except OSError:
            pass
    return found


def test_functions_survive_sigkill(tmp_path):
    with Lakebox(tmp_path) as lb:
        lam = lb.client("lambda")
        create(lam, "durable-fn", {"app.py": "def handler(e, c):\n    return 'still here'\n"}, Tags={"k": "v"})
        assert invoke(lam, "durable-fn")[1] == "still here"
        bootstrap = str(tmp_path / "lambda" / "runtime" / "python_bootstrap.py")
        assert len(running(bootstrap)) == 1
        # A function busy in a loop, mid-invocation when the server dies.
        create(lam, "busy-fn", {"app.py": "def handler(e, c):\n    while True:\n        pass\n"}, Timeout=300)
        busy = lb.client("lambda", read_timeout=30)
        caller = threading.Thread(target=lambda: pytest.raises(Exception, busy.invoke, FunctionName="busy-fn"))
        caller.start()
        assert wait_for(lambda: len(running(bootstrap)) == 2, timeout=10)
        lb.kill()
        caller.join()
        # Neither the warm environment nor the busy one outlives the server killed with SIGKILL.
        assert wait_for(lambda: not running(bootstrap), timeout=10)
    with Lakebox(tmp_path) as lb:
        lam = lb.client("lambda")
        assert lam.get_function(FunctionName="durable-fn")["Tags"] == {"k": "v"}
        assert invoke(lam, "durable-fn")[1] == "still here"


def test_logs_metrics_and_s3_triggers(tmp_path):
    """Function output lands in CloudWatch Logs under /aws/lambda/<name>, AWS/Lambda's metrics in
    CloudWatch, and an S3 event notification invokes the function it names."""
    with Lakebox(tmp_path, "--cloudwatch-service-metrics-ms", "200") as lb:
        lam, logs, cw, s3 = lb.client("lambda"), lb.client("logs"), lb.client("cloudwatch"), lb.client("s3")
        src = ("def handler(e, c):\n    print('processing order', e['id'])\n"
               "    if e['id'] < 0:\n        raise ValueError('negative order')\n    return 1\n")
        create(lam, "logged-fn", {"app.py": src})
        invoke(lam, "logged-fn", {"id": 1})
        invoke(lam, "logged-fn", {"id": -1})

        def found():
            try:
                return [e["message"] for e in logs.filter_log_events(logGroupName="/aws/lambda/logged-fn")["events"]]
            except botocore.exceptions.ClientError:
                return None
        assert wait_for(lambda: len(found() or []) >= 8)
        messages = found()
        assert "processing order 1" in messages and "processing order -1" in messages
        assert sum(m.startswith("START RequestId: ") for m in messages) == 2
        assert sum(m.startswith("REPORT RequestId: ") for m in messages) == 2
        assert any("ValueError: negative order" in m for m in messages)
        stream = logs.describe_log_streams(logGroupName="/aws/lambda/logged-fn")["logStreams"][0]["logStreamName"]
        assert re.fullmatch(r"\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}", stream), stream

        now = datetime.datetime.now(datetime.UTC)
        span = dict(StartTime=now - datetime.timedelta(minutes=5), EndTime=now + datetime.timedelta(minutes=1), Period=300)

        def stat(name):
            points = cw.get_metric_statistics(Namespace="AWS/Lambda", MetricName=name, Statistics=["Sum", "SampleCount"],
                                              Dimensions=[{"Name": "FunctionName", "Value": "logged-fn"}], **span)["Datapoints"]
            return points[0]["Sum"] if points else None
        assert wait_for(lambda: stat("Invocations") == 2.0)
        assert stat("Errors") == 1.0
        assert stat("Duration") > 0

        # S3 → Lambda: the notification's event reaches the handler, which records it in S3.
        s3.create_bucket(Bucket="uploads")
        s3.create_bucket(Bucket="seen")
        trigger = '''
import boto3, json

def handler(event, context):
    rec = event["Records"][0]
    boto3.client("s3").put_object(Bucket="seen", Key=rec["s3"]["object"]["key"],
                                  Body=json.dumps({"source": rec["eventSource"], "name": rec["eventName"]}))
'''
        fn = create(lam, "on-upload", {"app.py": trigger}, Timeout=30)
        s3.put_bucket_notification_configuration(Bucket="uploads", NotificationConfiguration={
            "LambdaFunctionConfigurations": [{"LambdaFunctionArn": fn["FunctionArn"], "Events": ["s3:ObjectCreated:*"]}]})
        s3.put_object(Bucket="uploads", Key="orders/1.json", Body=b"{}")

        def seen():
            try:
                return json.loads(s3.get_object(Bucket="seen", Key="orders/1.json")["Body"].read())
            except botocore.exceptions.ClientError:
                return None
        assert wait_for(seen, timeout=20) == {"source": "aws:s3", "name": "ObjectCreated:Put"}


RECORDER = '''
import base64, json, boto3

def handler(event, context):
    s3 = boto3.client("s3")
    for r in event["Records"]:
        if r["eventSource"] == "aws:kinesis":
            body = base64.b64decode(r["kinesis"]["data"]).decode()
            key = "kinesis/" + r["kinesis"]["sequenceNumber"]
            meta = {"pk": r["kinesis"]["partitionKey"], "id": r["eventID"], "arn": r["eventSourceARN"]}
        else:
            body = r["body"]
            key = "sqs/" + r["messageId"]
            meta = {"count": r["attributes"]["ApproximateReceiveCount"], "arn": r["eventSourceARN"],
                    "attr": r["messageAttributes"].get("kind", {}).get("stringValue")}
        if body == "poison":
            raise ValueError("poison record")
        s3.put_object(Bucket="esm-out", Key=key, Body=json.dumps({"body": body, **meta}))
    return {"batch": len(event["Records"])}
'''


def bodies(s3, prefix):
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="esm-out", Prefix=prefix).get("Contents", [])]
    return [json.loads(s3.get_object(Bucket="esm-out", Key=k)["Body"].read()) for k in sorted(keys)]


def test_kinesis_event_source_in_order_and_after_a_restart(tmp_path):
    with Lakebox(tmp_path) as lb:
        lam, kinesis, s3 = lb.client("lambda"), lb.client("kinesis"), lb.client("s3")
        s3.create_bucket(Bucket="esm-out")
        kinesis.create_stream(StreamName="orders", ShardCount=1)
        stream_arn = kinesis.describe_stream_summary(StreamName="orders")["StreamDescriptionSummary"]["StreamARN"]
        fn = create(lam, "order-history", {"app.py": RECORDER}, Timeout=30)
        with pytest.raises(botocore.exceptions.ClientError) as e:
            lam.create_event_source_mapping(FunctionName="order-history", EventSourceArn=stream_arn)
        assert code(e) == "InvalidParameterValueException"
        m = lam.create_event_source_mapping(FunctionName="order-history", EventSourceArn=stream_arn,
                                            StartingPosition="TRIM_HORIZON", BatchSize=10)
        assert m["State"] == "Creating" and m["FunctionArn"] == fn["FunctionArn"] and m["BatchSize"] == 10
        assert lam.get_event_source_mapping(UUID=m["UUID"])["State"] == "Enabled"
        assert [x["UUID"] for x in lam.list_event_source_mappings(FunctionName="order-history")["EventSourceMappings"]] == [m["UUID"]]
        with pytest.raises(botocore.exceptions.ClientError) as e:
            lam.create_event_source_mapping(FunctionName="order-history", EventSourceArn=stream_arn,
                                            StartingPosition="LATEST")
        assert code(e) == "ResourceConflictException"
        for i in range(25):
            kinesis.put_record(StreamName="orders", Data=f"order-{i}".encode(), PartitionKey=f"customer-{i % 3}")
        assert wait_for(lambda: len(bodies(s3, "kinesis/")) == 25, timeout=30)
        got = bodies(s3, "kinesis/")
        # Keys are sequence numbers: in order, each record once, with its partition key and ARN.
        assert [g["body"] for g in got] == [f"order-{i}" for i in range(25)]
        assert got[0]["pk"] == "customer-0" and got[0]["arn"] == stream_arn
        assert got[0]["id"].startswith("shardId-000000000000:49")
        lb.kill()
    with Lakebox(tmp_path) as lb:
        kinesis, s3, lam = lb.client("kinesis"), lb.client("s3"), lb.client("lambda")
        # The cursor survived: the new record is delivered, the old ones not again.
        kinesis.put_record(StreamName="orders", Data=b"order-25", PartitionKey="customer-1")
        assert wait_for(lambda: len(bodies(s3, "kinesis/")) == 26, timeout=30)
        time.sleep(1)
        assert [g["body"] for g in bodies(s3, "kinesis/")] == [f"order-{i}" for i in range(26)]
        m = lam.list_event_source_mappings()["EventSourceMappings"][0]
        assert lam.update_event_source_mapping(UUID=m["UUID"], Enabled=False)["State"] == "Disabling"
        assert lam.get_event_source_mapping(UUID=m["UUID"])["State"] == "Disabled"
        assert lam.delete_event_source_mapping(UUID=m["UUID"])["State"] == "Deleting"
        with pytest.raises(botocore.exceptions.ClientError) as e:
            lam.get_event_source_mapping(UUID=m["UUID"])
        assert code(e) == "ResourceNotFoundException"


ORDER_WRITER = '''
import base64, json, boto3

def handler(event, context):
    table = boto3.resource("dynamodb").Table("order_history")
    for r in event["Records"]:
        order = json.loads(base64.b64decode(r["kinesis"]["data"]))
        table.update_item(
            Key={"customer": order["customer"], "order_id": order["id"]},
            UpdateExpression="SET amount = :a, seen = if_not_exists(seen, :zero) + :one",
            ExpressionAttributeValues={":a": order["amount"], ":zero": 0, ":one": 1},
        )
    return {"written": len(event["Records"])}
'''

CHANGE_RECORDER = '''
import json, boto3

def handler(event, context):
    s3 = boto3.client("s3")
    for r in event["Records"]:
        d = r["dynamodb"]
        key = "changes/" + d["SequenceNumber"]
        s3.put_object(Bucket="esm-out", Key=key, Body=json.dumps({
            "event": r["eventName"], "source": r["eventSource"], "arn": r["eventSourceARN"],
            "keys": d["Keys"], "new": d.get("NewImage"),
        }))
    return {"batch": len(event["Records"])}
'''


def test_kinesis_to_lambda_to_dynamodb_and_its_stream_to_lambda(tmp_path):
    """The case study's order history: orders on Kinesis, a function writing them to DynamoDB,
    and a second function reading the table's stream, across a SIGKILL."""
    with Lakebox(tmp_path) as lb:
        lam, kinesis, ddb, s3 = lb.client("lambda"), lb.client("kinesis"), lb.client("dynamodb"), lb.client("s3")
        s3.create_bucket(Bucket="esm-out")
        kinesis.create_stream(StreamName="orders", ShardCount=2)
        stream_arn = kinesis.describe_stream_summary(StreamName="orders")["StreamDescriptionSummary"]["StreamARN"]
        table = ddb.create_table(
            TableName="order_history",
            AttributeDefinitions=[{"AttributeName": "customer", "AttributeType": "S"},
                                  {"AttributeName": "order_id", "AttributeType": "N"}],
            KeySchema=[{"AttributeName": "customer", "KeyType": "HASH"}, {"AttributeName": "order_id", "KeyType": "RANGE"}],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
        )["TableDescription"]
        create(lam, "order-writer", {"app.py": ORDER_WRITER}, Timeout=30)
        create(lam, "change-recorder", {"app.py": CHANGE_RECORDER}, Timeout=30)
        lam.create_event_source_mapping(FunctionName="order-writer", EventSourceArn=stream_arn,
                                        StartingPosition="TRIM_HORIZON", BatchSize=5)
        with pytest.raises(botocore.exceptions.ClientError) as e:
            lam.create_event_source_mapping(FunctionName="change-recorder", EventSourceArn=table["LatestStreamArn"])
        assert code(e) == "InvalidParameterValueException"
        m = lam.create_event_source_mapping(FunctionName="change-recorder", EventSourceArn=table["LatestStreamArn"],
                                            StartingPosition="TRIM_HORIZON", BatchSize=10)
        assert m["EventSourceArn"] == table["LatestStreamArn"] and m["StartingPosition"] == "TRIM_HORIZON"
        for i in range(12):
            order = {"customer": f"c{i % 3}", "id": i, "amount": i * 10}
            kinesis.put_record(StreamName="orders", Data=json.dumps(order).encode(), PartitionKey=order["customer"])
        assert wait_for(lambda: ddb.scan(TableName="order_history", Select="COUNT")["Count"] == 12, timeout=30)
        item = ddb.get_item(TableName="order_history", Key={"customer": {"S": "c1"}, "order_id": {"N": "4"}})["Item"]
        assert item["amount"] == {"N": "40"} and item["seen"] == {"N": "1"}
        assert wait_for(lambda: len(bodies(s3, "changes/")) == 12, timeout=30)
        changes = bodies(s3, "changes/")
        assert {c["event"] for c in changes} == {"INSERT"}
        assert all(c["source"] == "aws:dynamodb" and c["arn"] == table["LatestStreamArn"] for c in changes)
        assert sorted(int(c["keys"]["order_id"]["N"]) for c in changes) == list(range(12))
        assert changes[0]["new"]["amount"]["N"] == str(int(changes[0]["keys"]["order_id"]["N"]) * 10)
        lb.kill()
    with Lakebox(tmp_path) as lb:
        ddb, s3 = lb.client("dynamodb"), lb.client("s3")
        # The stream's cursor survived: a new change is delivered once, the old ones not again.
        ddb.update_item(TableName="order_history", Key={"customer": {"S": "c0"}, "order_id": {"N": "0"}},
                        UpdateExpression="SET amount = :a", ExpressionAttributeValues={":a": {"N": "99"}})
        assert wait_for(lambda: len(bodies(s3, "changes/")) == 13, timeout=30)
        time.sleep(1)
        changes = bodies(s3, "changes/")
        assert len(changes) == 13 and changes[-1]["event"] == "MODIFY" and changes[-1]["new"]["amount"] == {"N": "99"}


def test_sqs_event_source_deletes_what_succeeded(lakebox, lam):
    sqs, s3 = lakebox.client("sqs"), lakebox.client("s3")
    s3.create_bucket(Bucket="esm-out")
    dlq = sqs.create_queue(QueueName="jobs-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(QueueName="jobs", Attributes={
        "VisibilityTimeout": "1",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"})})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    create(lam, "job-runner", {"app.py": RECORDER}, Timeout=1)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        lam.create_event_source_mapping(FunctionName="job-runner", EventSourceArn=arn, BatchSize=50)
    assert code(e) == "InvalidParameterValueException"
    lam.create_event_source_mapping(FunctionName="job-runner", EventSourceArn=arn, BatchSize=5)
    for i in range(7):
        sqs.send_message(QueueUrl=url, MessageBody=f"job-{i}",
                         MessageAttributes={"kind": {"DataType": "String", "StringValue": "nightly"}})
    assert wait_for(lambda: len(bodies(s3, "sqs/")) == 7, timeout=30)
    got = bodies(s3, "sqs/")
    assert sorted(g["body"] for g in got) == [f"job-{i}" for i in range(7)]
    assert got[0]["attr"] == "nightly" and got[0]["count"] == "1" and got[0]["arn"] == arn
    # Processed messages were deleted.
    assert wait_for(lambda: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
                    ["ApproximateNumberOfMessagesNotVisible"] == "0")
    # A message the function keeps failing on is received again and then dead-lettered.
    sqs.send_message(QueueUrl=url, MessageBody="poison")
    moved = wait_for(lambda: sqs.receive_message(QueueUrl=dlq).get("Messages"), timeout=30)
    assert moved[0]["Body"] == "poison"


def test_sns_subscription_invokes_the_function(lakebox, lam):
    sns, s3 = lakebox.client("sns"), lakebox.client("s3")
    s3.create_bucket(Bucket="sns-seen")
    src = '''
import boto3, json

def handler(event, context):
    rec = event["Records"][0]
    boto3.client("s3").put_object(Bucket="sns-seen", Key=rec["Sns"]["MessageId"], Body=json.dumps(rec))
'''
    fn = create(lam, "on-alert", {"app.py": src}, Timeout=30)
    topic = sns.create_topic(Name="alerts")["TopicArn"]
    sub = sns.subscribe(TopicArn=topic, Protocol="lambda", Endpoint=fn["FunctionArn"])["SubscriptionArn"]
    msg_id = sns.publish(TopicArn=topic, Subject="high rate", Message="transactions above 100/s",
                         MessageAttributes={"level": {"DataType": "String", "StringValue": "warn"}})["MessageId"]

    def seen():
        try:
            return json.loads(s3.get_object(Bucket="sns-seen", Key=msg_id)["Body"].read())
        except botocore.exceptions.ClientError:
            return None
    rec = wait_for(seen, timeout=20)
    assert rec["EventSource"] == "aws:sns" and rec["EventSubscriptionArn"] == sub
    assert rec["Sns"]["Message"] == "transactions above 100/s" and rec["Sns"]["Subject"] == "high rate"
    assert rec["Sns"]["TopicArn"] == topic and rec["Sns"]["Type"] == "Notification"
    assert rec["Sns"]["MessageAttributes"] == {"level": {"Type": "String", "Value": "warn"}}
    assert "SigningCertUrl" in rec["Sns"] and "UnsubscribeUrl" in rec["Sns"]


def test_permissions_make_a_resource_policy(lam, lakebox):
    fn = create(lam, "guarded", {"app.py": "def handler(event, context):\n    return 1\n"})
    with pytest.raises(botocore.exceptions.ClientError) as e:
        lam.get_policy(FunctionName="guarded")
    assert code(e) == "ResourceNotFoundException"
    out = lam.add_permission(FunctionName="guarded", StatementId="s3-invoke", Action="lambda:InvokeFunction",
                             Principal="s3.amazonaws.com", SourceArn="arn:aws:s3:::uploads", SourceAccount="000000000000")
    statement = json.loads(out["Statement"])
    assert statement == {
        "Sid": "s3-invoke", "Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"},
        "Action": "lambda:InvokeFunction", "Resource": fn["FunctionArn"],
        "Condition": {"ArnLike": {"AWS:SourceArn": "arn:aws:s3:::uploads"}, "StringEquals": {"AWS:SourceAccount": "000000000000"}},
    }
    with pytest.raises(botocore.exceptions.ClientError) as e:
        lam.add_permission(FunctionName="guarded", StatementId="s3-invoke", Action="lambda:InvokeFunction", Principal="s3.amazonaws.com")
    assert code(e) == "ResourceConflictException"
    lam.add_permission(FunctionName="guarded", StatementId="sns", Action="lambda:InvokeFunction", Principal="sns.amazonaws.com")
    policy = json.loads(lam.get_policy(FunctionName="guarded")["Policy"])
    assert [s["Sid"] for s in policy["Statement"]] == ["s3-invoke", "sns"] and policy["Version"] == "2012-10-17"
    lam.remove_permission(FunctionName="guarded", StatementId="s3-invoke")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        lam.remove_permission(FunctionName="guarded", StatementId="s3-invoke")
    assert code(e) == "ResourceNotFoundException"
    assert [s["Sid"] for s in json.loads(lam.get_policy(FunctionName="guarded")["Policy"])["Statement"]] == ["sns"]
    out = lakebox.cli("lambda", "add-permission", "--function-name", "guarded", "--statement-id", "cli",
                      "--action", "lambda:InvokeFunction", "--principal", "events.amazonaws.com")
    assert out.returncode == 0, out.stderr
