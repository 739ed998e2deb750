"""Lambda versions, aliases, reserved concurrency and asynchronous invocation, judged by boto3:
PublishVersion freezing code and configuration, qualified invokes and reads, aliases with
weighted routing, versions an alias holds refused deletion; reserved concurrency throttling
with AWS's TooManyRequestsException; Event invocations queued durably (across SIGKILL),
retried, and their records sent to on-success / on-failure destinations and the dead-letter
queue in AWS's shapes."""

import base64
import io
import json
import re
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
import zipfile

import botocore.exceptions
import pytest

from lakebox_harness import Lakebox, wait_for, zip_of

ROLE = "arn:aws:iam::000000000000:role/lambda-role"


@pytest.fixture(scope="module")
def lakebox(tmp_path_factory):
    # Retries of failed asynchronous invocations after 0.2 s and 0.4 s instead of 1 and 2 min.
    server = Lakebox(tmp_path_factory.mktemp("lambda-versions"), "--lambda-async-retry-delay-ms", "200").start()
    yield server
    server.stop()


@pytest.fixture
def lam(lakebox):
    return lakebox.client("lambda")


def says(word):
    return zip_of({"app.py": f'''
def handler(event, context):
    return {{"word": "{word}", "version": context.function_version, "arn": context.invoked_function_arn}}
'''})


def error_of(fn):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        fn()
    return e.value.response["Error"]["Code"], e.value.response["Error"]["Message"], e.value.response


def invoke(lam, name, event=None, **kw):
    resp = lam.invoke(FunctionName=name, Payload=json.dumps(event if event is not None else {}), **kw)
    return resp, json.loads(resp["Payload"].read())


def test_publish_versions_and_invoke_them_by_qualifier(lam):
    lam.create_function(FunctionName="ver", Runtime="python3.12", Role=ROLE, Handler="app.handler",
                        Code={"ZipFile": says("one")}, Description="first")
    v1 = lam.publish_version(FunctionName="ver")
    assert v1["Version"] == "1" and v1["FunctionArn"].endswith(":function:ver:1")
    assert v1["State"] == "Pending" and v1["Description"] == "first"
    lam.get_waiter("published_version_active").wait(FunctionName="ver", Qualifier="1")
    # Nothing changed since version 1: publishing again answers version 1.
    assert lam.publish_version(FunctionName="ver")["Version"] == "1"

    lam.update_function_code(FunctionName="ver", ZipFile=says("two"))
    lam.get_waiter("function_updated_v2").wait(FunctionName="ver")
    latest_sha = lam.get_function(FunctionName="ver")["Configuration"]["CodeSha256"]
    code, msg, _ = error_of(lambda: lam.publish_version(FunctionName="ver", CodeSha256="bm90IGl0"))
    assert code == "InvalidParameterValueException"
    assert msg == (f"CodeSHA256 (bm90IGl0) is different from current CodeSHA256 in $LATEST ({latest_sha}). "
                   "Please try again with the CodeSHA256 in $LATEST.")
    code, _, _ = error_of(lambda: lam.publish_version(FunctionName="ver", RevisionId="stale"))
    assert code == "PreconditionFailedException"
    v2 = lam.publish_version(FunctionName="ver", CodeSha256=latest_sha, Description="second")
    assert (v2["Version"], v2["Description"], v2["CodeSha256"]) == ("2", "second", latest_sha)

    versions = lam.list_versions_by_function(FunctionName="ver")["Versions"]
    assert [v["Version"] for v in versions] == ["$LATEST", "1", "2"]
    assert versions[0]["FunctionArn"].endswith(":function:ver:$LATEST")
    pages = lam.get_paginator("list_versions_by_function").paginate(FunctionName="ver", PaginationConfig={"PageSize": 2})
    assert [v["Version"] for p in pages for v in p["Versions"]] == ["$LATEST", "1", "2"]

    # Each version runs its own code and sees itself as that version.
    resp, out = invoke(lam, "ver", Qualifier="1")
    assert resp["ExecutedVersion"] == "1" and out["word"] == "one" and out["version"] == "1"
    assert out["arn"].endswith(":function:ver:1")
    resp, out = invoke(lam, "ver:2")
    assert resp["ExecutedVersion"] == "2" and out["word"] == "two"
    resp, out = invoke(lam, "ver")
    assert resp["ExecutedVersion"] == "$LATEST" and out["word"] == "two" and out["version"] == "$LATEST"
    assert not out["arn"].endswith(":$LATEST")

    c1 = lam.get_function_configuration(FunctionName="ver", Qualifier="1")
    assert (c1["Version"], c1["CodeSha256"]) == ("1", v1["CodeSha256"]) and c1["FunctionArn"].endswith(":ver:1")
    got = lam.get_function(FunctionName="ver", Qualifier="1")
    with urllib.request.urlopen(got["Code"]["Location"]) as r:
        with zipfile.ZipFile(io.BytesIO(r.read())) as z:
            assert '"one"' in z.read("app.py").decode()
    code, msg, _ = error_of(lambda: lam.get_function(FunctionName="ver", Qualifier="9"))
    assert code == "ResourceNotFoundException" and msg.endswith(":function:ver:9")
    code, _, _ = error_of(lambda: invoke(lam, "ver", Qualifier="9"))
    assert code == "ResourceNotFoundException"

    every = lam.list_functions(FunctionVersion="ALL")["Functions"]
    assert sorted(f["Version"] for f in every if f["FunctionName"] == "ver") == ["$LATEST", "1", "2"]
    assert [f["Version"] for f in lam.list_functions()["Functions"] if f["FunctionName"] == "ver"] == ["$LATEST"]

    # CreateFunction with Publish makes version 1 at once.
    made = lam.create_function(FunctionName="ver-pub", Runtime="python3.12", Role=ROLE, Handler="app.handler",
                               Code={"ZipFile": says("pub")}, Publish=True)
    assert made["Version"] == "1"
    assert invoke(lam, "ver-pub", Qualifier="1")[1]["word"] == "pub"
    # So does UpdateFunctionCode with Publish.
    out = lam.update_function_code(FunctionName="ver-pub", ZipFile=says("pub2"), Publish=True)
    assert out["Version"] == "2"
    assert invoke(lam, "ver-pub", Qualifier="2")[1]["word"] == "pub2"

    # Deleting a version removes it alone; $LATEST cannot be deleted by qualifier.
    lam.delete_function(FunctionName="ver-pub", Qualifier="1")
    assert [v["Version"] for v in lam.list_versions_by_function(FunctionName="ver-pub")["Versions"]] == ["$LATEST", "2"]
    code, msg, _ = error_of(lambda: lam.delete_function(FunctionName="ver-pub", Qualifier="$LATEST"))
    assert (code, msg) == ("InvalidParameterValueException", "$LATEST version cannot be deleted without deleting the function.")
    # Version numbers are never reused.
    lam.update_function_configuration(FunctionName="ver-pub", Description="changed")
    lam.get_waiter("function_updated_v2").wait(FunctionName="ver-pub")
    assert lam.publish_version(FunctionName="ver-pub")["Version"] == "3"


def test_aliases_route_by_weight_and_hold_their_versions(lam):
    lam.create_function(FunctionName="al", Runtime="python3.12", Role=ROLE, Handler="app.handler",
                        Code={"ZipFile": says("blue")}, Publish=True)
    lam.update_function_code(FunctionName="al", ZipFile=says("green"), Publish=True)
    live = lam.create_alias(FunctionName="al", Name="live", FunctionVersion="1", Description="prod")
    assert live["AliasArn"].endswith(":function:al:live") and live["FunctionVersion"] == "1"
    assert lam.get_alias(FunctionName="al", Name="live")["RevisionId"] == live["RevisionId"]

    resp, out = invoke(lam, "al", Qualifier="live")
    assert resp["ExecutedVersion"] == "1" and out["word"] == "blue"
    assert out["arn"].endswith(":function:al:live") and out["version"] == "1"
    conf = lam.get_function_configuration(FunctionName="al", Qualifier="live")
    assert conf["Version"] == "1" and conf["FunctionArn"].endswith(":al:live")

    code, msg, _ = error_of(lambda: lam.create_alias(FunctionName="al", Name="live", FunctionVersion="2"))
    assert code == "ResourceConflictException" and msg.startswith("Alias already exists: ") and msg.endswith(":function:al:live")
    code, _, _ = error_of(lambda: lam.create_alias(FunctionName="al", Name="42", FunctionVersion="1"))
    assert code == "ValidationException"
    code, _, _ = error_of(lambda: lam.create_alias(FunctionName="al", Name="later", FunctionVersion="7"))
    assert code == "ResourceNotFoundException"
    code, msg, _ = error_of(lambda: lam.get_alias(FunctionName="al", Name="nope"))
    assert code == "ResourceNotFoundException" and msg.startswith("Cannot find alias arn: ") and msg.endswith(":function:al:nope")
    code, _, _ = error_of(lambda: lam.update_alias(FunctionName="al", Name="live", RevisionId="stale"))
    assert code == "PreconditionFailedException"

    # Half of the alias's invocations go to version 2.
    updated = lam.update_alias(FunctionName="al", Name="live", RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}})
    assert updated["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.5}}
    assert updated["RevisionId"] != live["RevisionId"] and updated["Description"] == "prod"
    seen = {}
    for _ in range(40):
        resp, out = invoke(lam, "al", Qualifier="live")
        assert out["version"] == resp["ExecutedVersion"]
        assert out["word"] == {"1": "blue", "2": "green"}[resp["ExecutedVersion"]]
        seen[resp["ExecutedVersion"]] = seen.get(resp["ExecutedVersion"], 0) + 1
    assert set(seen) == {"1", "2"}, seen
    code, _, _ = error_of(lambda: lam.update_alias(FunctionName="al", Name="live",
                                                   RoutingConfig={"AdditionalVersionWeights": {"1": 0.5}}))
    assert code == "InvalidParameterValueException"

    lam.create_alias(FunctionName="al", Name="canary", FunctionVersion="2")
    assert sorted(a["Name"] for a in lam.list_aliases(FunctionName="al")["Aliases"]) == ["canary", "live"]
    assert sorted(a["Name"] for a in lam.list_aliases(FunctionName="al", FunctionVersion="2")["Aliases"]) == ["canary", "live"]
    assert [a["Name"] for a in lam.list_aliases(FunctionName="al", FunctionVersion="1")["Aliases"]] == ["live"]

    # A version an alias routes to cannot be deleted.
    code, msg, _ = error_of(lambda: lam.delete_function(FunctionName="al", Qualifier="2"))
    assert (code, msg) == ("ResourceConflictException",
                           "Unable to delete version because the following aliases reference it: [canary, live]")
    lam.delete_alias(FunctionName="al", Name="canary")
    lam.update_alias(FunctionName="al", Name="live", RoutingConfig={"AdditionalVersionWeights": {}})
    assert "RoutingConfig" not in lam.get_alias(FunctionName="al", Name="live")
    lam.delete_function(FunctionName="al", Qualifier="2")
    assert [v["Version"] for v in lam.list_versions_by_function(FunctionName="al")["Versions"]] == ["$LATEST", "1"]

    # Deleting the function deletes its versions and aliases: a new one of that name starts clean.
    lam.delete_function(FunctionName="al")
    lam.create_function(FunctionName="al", Runtime="python3.12", Role=ROLE, Handler="app.handler",
                        Code={"ZipFile": says("again")})
    assert [v["Version"] for v in lam.list_versions_by_function(FunctionName="al")["Versions"]] == ["$LATEST"]
    assert lam.list_aliases(FunctionName="al")["Aliases"] == []
    assert lam.publish_version(FunctionName="al")["Version"] == "1"


SLOW = zip_of({"app.py": '''
import time

def handler(event, context):
    time.sleep(event.get("sleep", 0))
    return {"slept": event.get("sleep", 0), "n": event.get("n")}
'''})


def test_reserved_concurrency_throttles_past_the_reservation(lakebox, lam):
    lam.create_function(FunctionName="conc", Runtime="python3.12", Role=ROLE, Handler="app.handler",
                        Code={"ZipFile": SLOW}, Timeout=30)
    assert lam.get_function_concurrency(FunctionName="conc").get("ReservedConcurrentExecutions") is None
    before = lam.get_account_settings()["AccountLimit"]
    assert lam.put_function_concurrency(FunctionName="conc", ReservedConcurrentExecutions=1)["ReservedConcurrentExecutions"] == 1
    assert lam.get_function_concurrency(FunctionName="conc")["ReservedConcurrentExecutions"] == 1
    assert lam.get_function(FunctionName="conc")["Concurrency"] == {"ReservedConcurrentExecutions": 1}
    after = lam.get_account_settings()["AccountLimit"]
    assert after["UnreservedConcurrentExecutions"] == before["UnreservedConcurrentExecutions"] - 1
    code, msg, _ = error_of(lambda: lam.put_function_concurrency(FunctionName="conc", ReservedConcurrentExecutions=950))
    assert (code, msg) == ("InvalidParameterValueException",
                           "Specified ReservedConcurrentExecutions for function decreases account's "
                           "UnreservedConcurrentExecution below its minimum value of [100].")

    # With one slot, a second invocation while the first runs is throttled.
    invoke(lam, "conc")  # warm
    results = {}
    other = lakebox.client("lambda")

    def slow():
        results["slow"] = invoke(other, "conc", {"sleep": 3})[1]

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(1.0)
    code, msg, resp = error_of(lambda: invoke(lam, "conc", {"n": 2}))
    assert (code, msg) == ("TooManyRequestsException", "Rate Exceeded.")
    assert resp["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 429
    t.join()
    assert results["slow"]["slept"] == 3
    assert invoke(lam, "conc", {"n": 3})[1]["n"] == 3

    # Zero stops the function; removing the reservation starts it again.
    lam.put_function_concurrency(FunctionName="conc", ReservedConcurrentExecutions=0)
    code, _, _ = error_of(lambda: invoke(lam, "conc"))
    assert code == "TooManyRequestsException"
    lam.delete_function_concurrency(FunctionName="conc")
    assert "Concurrency" not in lam.get_function(FunctionName="conc")
    assert invoke(lam, "conc", {"n": 4})[1]["n"] == 4


FLAKY = zip_of({"app.py": '''
def handler(event, context):
    if event.get("fail"):
        raise ValueError("failed on purpose: " + str(event["fail"]))
    return {"ok": event.get("n")}
'''})

RECORDER = zip_of({"app.py": '''
import json
import boto3

def handler(event, context):
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName="recorded")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(event))
    return "recorded"
'''})


def receive_all(sqs, url, want, timeout=20):
    got = []
    deadline = time.time() + timeout
    while len(got) < want and time.time() < deadline:
        r = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                MessageAttributeNames=["All"])
        for m in r.get("Messages", []):
            got.append(m)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return got


def test_async_invocations_retry_and_reach_destinations(lakebox, lam):
    sqs = lakebox.client("sqs")
    urls = {n: sqs.create_queue(QueueName=n)["QueueUrl"] for n in ["async-ok", "async-failed", "async-dlq", "recorded"]}
    arns = {n: sqs.get_queue_attributes(QueueUrl=u, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            for n, u in urls.items()}
    lam.create_function(FunctionName="flaky", Runtime="python3.12", Role=ROLE, Handler="app.handler",
                        Code={"ZipFile": FLAKY}, DeadLetterConfig={"TargetArn": arns["async-dlq"]})
    fn_arn = lam.get_function(FunctionName="flaky")["Configuration"]["FunctionArn"]

    code, msg, _ = error_of(lambda: lam.get_function_event_invoke_config(FunctionName="flaky"))
    assert (code, msg) == ("ResourceNotFoundException", f"The function {fn_arn}:$LATEST doesn't have an EventInvokeConfig")
    put = lam.put_function_event_invoke_config(
        FunctionName="flaky", MaximumRetryAttempts=2,
        DestinationConfig={"OnSuccess": {"Destination": arns["async-ok"]}, "OnFailure": {"Destination": arns["async-failed"]}})
    assert put["FunctionArn"] == f"{fn_arn}:$LATEST" and put["MaximumRetryAttempts"] == 2
    updated = lam.update_function_event_invoke_config(FunctionName="flaky", MaximumEventAgeInSeconds=600)
    assert updated["MaximumRetryAttempts"] == 2 and updated["MaximumEventAgeInSeconds"] == 600
    assert updated["DestinationConfig"]["OnFailure"]["Destination"] == arns["async-failed"]
    listed = lam.list_function_event_invoke_configs(FunctionName="flaky")["FunctionEventInvokeConfigs"]
    assert [c["FunctionArn"] for c in listed] == [f"{fn_arn}:$LATEST"]
    code, _, _ = error_of(lambda: lam.put_function_event_invoke_config(
        FunctionName="flaky", DestinationConfig={"OnSuccess": {"Destination": "arn:aws:iam::000000000000:role/x"}}))
    assert code == "InvalidParameterValueException"
    code, _, _ = error_of(lambda: lam.put_function_event_invoke_config(FunctionName="flaky", MaximumRetryAttempts=5))
    assert code in ("ValidationException", "InvalidParameterValueException")

    ok = lam.invoke(FunctionName="flaky", InvocationType="Event", Payload=json.dumps({"n": 1}))
    assert ok["StatusCode"] == 202
    bad = lam.invoke(FunctionName="flaky", InvocationType="Event", Payload=json.dumps({"fail": "x"}))
    assert bad["StatusCode"] == 202

    [success] = receive_all(sqs, urls["async-ok"], 1)
    rec = json.loads(success["Body"])
    assert rec["version"] == "1.0"
    assert rec["requestContext"]["condition"] == "Success"
    assert rec["requestContext"]["functionArn"] == f"{fn_arn}:$LATEST"
    assert rec["requestContext"]["approximateInvokeCount"] == 1
    assert rec["requestPayload"] == {"n": 1}
    assert rec["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    assert rec["responsePayload"] == {"ok": 1}

    # The failing event is tried three times (two retries), then recorded as given up.
    [failure] = receive_all(sqs, urls["async-failed"], 1)
    rec = json.loads(failure["Body"])
    assert rec["requestContext"]["condition"] == "RetriesExhausted"
    assert rec["requestContext"]["approximateInvokeCount"] == 3
    assert rec["requestPayload"] == {"fail": "x"}
    assert rec["responseContext"]["functionError"] == "Unhandled"
    assert rec["responsePayload"]["errorType"] == "ValueError"
    assert rec["responsePayload"]["errorMessage"] == "failed on purpose: x"
    assert rec["requestContext"]["requestId"] == bad["ResponseMetadata"]["RequestId"]
    [dead] = receive_all(sqs, urls["async-dlq"], 1)
    assert json.loads(dead["Body"]) == {"fail": "x"}
    attrs = dead["MessageAttributes"]
    assert attrs["RequestID"]["StringValue"] == bad["ResponseMetadata"]["RequestId"]
    assert attrs["ErrorCode"] == {"StringValue": "200", "DataType": "Number"}
    assert attrs["ErrorMessage"]["StringValue"] == "failed on purpose: x"

    # No retries, and another function as the on-failure destination: it runs with the record.
    lam.create_function(FunctionName="recorder", Runtime="python3.12", Role=ROLE, Handler="app.handler",
                        Code={"ZipFile": RECORDER}, Timeout=30)
    recorder_arn = lam.get_function(FunctionName="recorder")["Configuration"]["FunctionArn"]
    lam.put_function_event_invoke_config(FunctionName="flaky", MaximumRetryAttempts=0,
                                         DestinationConfig={"OnFailure": {"Destination": recorder_arn}})
    lam.invoke(FunctionName="flaky", InvocationType="Event", Payload=json.dumps({"fail": "once"}))
    [recorded] = receive_all(sqs, urls["recorded"], 1, timeout=30)
    rec = json.loads(recorded["Body"])
    assert rec["requestContext"]["condition"] == "RetriesExhausted"
    assert rec["requestContext"]["approximateInvokeCount"] == 1
    assert rec["requestPayload"] == {"fail": "once"}

    lam.delete_function_event_invoke_config(FunctionName="flaky")
    code, _, _ = error_of(lambda: lam.get_function_event_invoke_config(FunctionName="flaky"))
    assert code == "ResourceNotFoundException"


def test_queued_events_survive_sigkill_and_wait_out_throttling(tmp_path):
    with Lakebox(tmp_path) as lb:
        lam, sqs = lb.client("lambda"), lb.client("sqs")
        url = sqs.create_queue(QueueName="after-restart")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        lam.create_function(FunctionName="held", Runtime="python3.12", Role=ROLE, Handler="app.handler",
                            Code={"ZipFile": FLAKY})
        lam.put_function_event_invoke_config(FunctionName="held", DestinationConfig={"OnSuccess": {"Destination": arn}})
        # With no concurrency the events wait in the queue (throttled, not failed).
        lam.put_function_concurrency(FunctionName="held", ReservedConcurrentExecutions=0)
        for n in range(3):
            assert lam.invoke(FunctionName="held", InvocationType="Event", Payload=json.dumps({"n": n}))["StatusCode"] == 202
        time.sleep(0.5)
        assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages") is None
        lb.kill()
    with Lakebox(tmp_path) as lb:
        lam, sqs = lb.client("lambda"), lb.client("sqs")
        lam.delete_function_concurrency(FunctionName="held")
        got = receive_all(sqs, url, 3)
        assert sorted(json.loads(m["Body"])["responsePayload"]["ok"] for m in got) == [0, 1, 2]
        assert all(json.loads(m["Body"])["requestContext"]["approximateInvokeCount"] == 1 for m in got)


WEB = zip_of({"app.py": '''
import base64
import json

def handler(event, context):
    if event["rawPath"] == "/plain":
        return {"just": "json", "method": event["requestContext"]["http"]["method"]}
    body = event.get("body")
    if event.get("isBase64Encoded"):
        body = "b64:" + base64.b64decode(body).hex()
    return {
        "statusCode": 201,
        "headers": {"content-type": "application/json", "x-echo": event["headers"].get("x-custom", "")},
        "cookies": ["session=abc; Path=/", "theme=dark"],
        "body": json.dumps({"event": event, "body": body, "version": context.function_version}),
    }
'''})


def url_request(lakebox, function_url, path, method="GET", body=None, headers=None):
    """Sends a request to a function URL through 127.0.0.1, naming the URL's host (Python
    does not resolve *.localhost names; curl and browsers do)."""
    host = function_url.split("://", 1)[1].rstrip("/")
    req = urllib.request.Request(lakebox.endpoint + path, data=body, method=method,
                                 headers={"Host": host, **(headers or {})})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.headers.get_all("Set-Cookie") or [], r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, [], e.read()


def test_function_urls_run_the_function_with_http_events(lakebox, lam):
    lam.create_function(FunctionName="web", Runtime="python3.12", Role=ROLE, Handler="app.handler",
                        Code={"ZipFile": WEB}, Publish=True)
    fn_arn = lam.get_function(FunctionName="web")["Configuration"]["FunctionArn"]
    made = lam.create_function_url_config(FunctionName="web", AuthType="NONE",
                                          Cors={"AllowOrigins": ["https://shop.example"], "AllowMethods": ["POST"],
                                                "AllowHeaders": ["x-custom"], "MaxAge": 60})
    url = made["FunctionUrl"]
    assert re.fullmatch(r"http://[a-z0-9]{32}\.lambda-url\.us-east-1\.localhost:\d+/", url), url
    assert made["FunctionArn"] == fn_arn and made["AuthType"] == "NONE" and made["InvokeMode"] == "BUFFERED"
    got = lam.get_function_url_config(FunctionName="web")
    assert got["FunctionUrl"] == url and got["Cors"]["AllowOrigins"] == ["https://shop.example"]
    code, msg, _ = error_of(lambda: lam.create_function_url_config(FunctionName="web", AuthType="NONE"))
    assert code == "ResourceConflictException" and "FunctionUrlConfig exists for this Lambda function" in msg

    status, headers, cookies, body = url_request(
        lakebox, url, "/orders/7?status=open&tag=a&tag=b", method="POST", body=b'{"qty": 2}',
        headers={"Content-Type": "application/json", "X-Custom": "hello", "Cookie": "a=1; b=2"})
    assert status == 201, body
    assert headers["x-echo"] == "hello"
    assert cookies == ["session=abc; Path=/", "theme=dark"]
    out = json.loads(body)
    event = out["event"]
    assert event["version"] == "2.0" and event["routeKey"] == "$default"
    assert event["rawPath"] == "/orders/7" and event["rawQueryString"] == "status=open&tag=a&tag=b"
    assert event["queryStringParameters"] == {"status": "open", "tag": "a,b"}
    assert event["cookies"] == ["a=1", "b=2"]
    assert event["headers"]["x-custom"] == "hello" and "cookie" not in event["headers"]
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["requestContext"]["http"]["path"] == "/orders/7"
    assert event["requestContext"]["domainPrefix"] == url.split("//")[1].split(".")[0]
    assert event["isBase64Encoded"] is False and out["body"] == '{"qty": 2}'
    assert out["version"] == "$LATEST"

    # Binary bodies arrive base64-encoded.
    status, _, _, body = url_request(lakebox, url, "/upload", method="PUT", body=bytes([0, 255, 1]),
                                     headers={"Content-Type": "application/octet-stream"})
    assert status == 201 and json.loads(body)["body"] == "b64:00ff01"
    # A result without statusCode is a 200 JSON answer.
    status, headers, _, body = url_request(lakebox, url, "/plain")
    assert status == 200 and headers["content-type"] == "application/json"
    assert json.loads(body) == {"just": "json", "method": "GET"}

    # CORS: a preflight from an allowed origin is answered from the configuration.
    status, headers, _, _ = url_request(lakebox, url, "/orders", method="OPTIONS", headers={
        "Origin": "https://shop.example", "Access-Control-Request-Method": "POST"})
    assert status == 200
    assert headers["access-control-allow-origin"] == "https://shop.example"
    assert headers["access-control-allow-methods"] == "POST" and headers["access-control-max-age"] == "60"
    status, headers, _, _ = url_request(lakebox, url, "/orders", method="OPTIONS", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in headers

    # curl resolves *.localhost itself, so the URL works as given.
    if shutil.which("curl"):
        out = subprocess.run(["curl", "-s", url + "plain"], capture_output=True, text=True, timeout=30)
        assert json.loads(out.stdout) == {"just": "json", "method": "GET"}, out

    # AWS_IAM: unsigned requests are refused, SigV4-signed ones run.
    lam.update_function_url_config(FunctionName="web", AuthType="AWS_IAM")
    status, _, _, body = url_request(lakebox, url, "/plain")
    assert status == 403 and json.loads(body) == {"Message": "Forbidden"}
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    host = url.split("://", 1)[1].rstrip("/")
    signed = AWSRequest(method="GET", url=f"http://{host}/plain", headers={"Host": host})
    SigV4Auth(Credentials("test", "test"), "lambda", "us-east-1").add_auth(signed)
    status, _, _, body = url_request(lakebox, url, "/plain", headers=dict(signed.headers))
    assert status == 200 and json.loads(body)["just"] == "json"

    # An alias has its own URL, running the alias's version.
    lam.create_alias(FunctionName="web", Name="live", FunctionVersion="1")
    live = lam.create_function_url_config(FunctionName="web", Qualifier="live", AuthType="NONE")["FunctionUrl"]
    assert live != url
    status, _, _, body = url_request(lakebox, live, "/x", method="POST", body=b"{}")
    assert status == 201 and json.loads(body)["version"] == "1"
    configs = lam.list_function_url_configs(FunctionName="web")["FunctionUrlConfigs"]
    assert sorted(c["FunctionUrl"] for c in configs) == sorted([url, live])

    lam.delete_function_url_config(FunctionName="web")
    code, msg, _ = error_of(lambda: lam.get_function_url_config(FunctionName="web"))
    assert (code, msg) == ("ResourceNotFoundException", "The resource you requested does not exist.")
    status, _, _, _ = url_request(lakebox, url, "/plain")
    assert status == 404
    lam.delete_function(FunctionName="web")
    assert url_request(lakebox, live, "/x")[0] == 404


def test_layers_are_merged_into_what_functions_import(lakebox, lam):
    v1 = lam.publish_layer_version(
        LayerName="shared-libs", Description="helpers", CompatibleRuntimes=["python3.12"],
        Content={"ZipFile": zip_of({
            "python/helper.py": "def greet(n):\n    return 'hello ' + n\n",
            "python/lib/python3.12/site-packages/vendored.py": "VALUE = 'from site-packages'\n",
            "bin/layer-tool": "#!/bin/sh\necho tool-ran\n",
            "data/config.txt": "layer one\n",
        })})
    assert v1["Version"] == 1 and v1["LayerVersionArn"].endswith(":layer:shared-libs:1")
    assert v1["LayerArn"].endswith(":layer:shared-libs") and v1["Description"] == "helpers"
    assert v1["CompatibleRuntimes"] == ["python3.12"] and v1["Content"]["CodeSize"] > 0
    # A second layer whose files override the first's where they overlap.
    over = lam.publish_layer_version(LayerName="overrides", Content={"ZipFile": zip_of({
        "data/config.txt": "layer two\n"})})
    src = '''
import os
import subprocess

def handler(event, context):
    import helper, vendored
    opt = os.environ["LAKEBOX_OPT_DIR"]
    return {
        "greet": helper.greet("layers"),
        "vendored": vendored.VALUE,
        "tool": subprocess.run(["layer-tool"], capture_output=True, text=True).stdout.strip(),
        "config": open(os.path.join(opt, "data/config.txt")).read().strip(),
        # The layers are at /opt, as on AWS, and read-only.
        "opt": opt,
        "literal": open("/opt/data/config.txt").read().strip(),
        "writable": os.access("/opt/data/config.txt", os.W_OK),
    }
'''
    made = lam.create_function(FunctionName="layered", Runtime="python3.12", Role=ROLE, Handler="app.handler",
                               Code={"ZipFile": zip_of({"app.py": src})},
                               Layers=[v1["LayerVersionArn"], over["LayerVersionArn"]])
    assert [l["Arn"] for l in made["Layers"]] == [v1["LayerVersionArn"], over["LayerVersionArn"]]
    assert made["Layers"][0]["CodeSize"] == v1["Content"]["CodeSize"]
    resp, out = invoke(lam, "layered")
    assert "FunctionError" not in resp, out
    assert out == {"greet": "hello layers", "vendored": "from site-packages", "tool": "tool-ran", "config": "layer two",
                   "opt": "/opt", "literal": "layer two", "writable": False}

    # Version 2 of the layer; the function moves to it with UpdateFunctionConfiguration.
    v2 = lam.publish_layer_version(LayerName="shared-libs", Content={"ZipFile": zip_of({
        "python/helper.py": "def greet(n):\n    return 'hi ' + n\n",
        "python/lib/python3.12/site-packages/vendored.py": "VALUE = 'v2'\n",
        "bin/layer-tool": "#!/bin/sh\necho tool-2\n"})})
    assert v2["Version"] == 2
    lam.update_function_configuration(FunctionName="layered", Layers=[v2["LayerVersionArn"]])
    lam.get_waiter("function_updated_v2").wait(FunctionName="layered")
    resp, out = invoke(lam, "layered")
    assert "FunctionError" in resp  # data/config.txt came from the layer no longer used
    lam.update_function_configuration(FunctionName="layered", Layers=[v2["LayerVersionArn"], over["LayerVersionArn"]])
    lam.get_waiter("function_updated_v2").wait(FunctionName="layered")
    assert invoke(lam, "layered")[1]["greet"] == "hi layers"

    versions = lam.list_layer_versions(LayerName="shared-libs")["LayerVersions"]
    assert [v["Version"] for v in versions] == [2, 1]
    assert [v["Version"] for v in lam.list_layer_versions(LayerName="shared-libs", CompatibleRuntime="python3.12")["LayerVersions"]] == [1]
    layers = {l["LayerName"]: l for l in lam.list_layers()["Layers"]}
    assert layers["shared-libs"]["LatestMatchingVersion"]["Version"] == 2
    got = lam.get_layer_version(LayerName="shared-libs", VersionNumber=1)
    assert got["Content"]["CodeSha256"] == v1["Content"]["CodeSha256"]
    with urllib.request.urlopen(got["Content"]["Location"]) as r:
        with zipfile.ZipFile(io.BytesIO(r.read())) as z:
            assert "python/helper.py" in z.namelist()
    assert lam.get_layer_version_by_arn(Arn=v1["LayerVersionArn"])["Version"] == 1

    # Permissions on a layer version.
    perm = lam.add_layer_version_permission(LayerName="shared-libs", VersionNumber=1, StatementId="everyone",
                                            Action="lambda:GetLayerVersion", Principal="*")
    assert json.loads(perm["Statement"])["Principal"] == "*"
    policy = json.loads(lam.get_layer_version_policy(LayerName="shared-libs", VersionNumber=1)["Policy"])
    assert [s["Sid"] for s in policy["Statement"]] == ["everyone"]
    lam.remove_layer_version_permission(LayerName="shared-libs", VersionNumber=1, StatementId="everyone")
    code, _, _ = error_of(lambda: lam.get_layer_version_policy(LayerName="shared-libs", VersionNumber=1))
    assert code == "ResourceNotFoundException"

    # A missing layer version, and too many layers, are refused.
    missing = v1["LayerVersionArn"][:-1] + "9"
    code, msg, _ = error_of(lambda: lam.update_function_configuration(FunctionName="layered", Layers=[missing]))
    assert (code, msg) == ("InvalidParameterValueException", f"Layer version {missing} does not exist.")
    code, _, _ = error_of(lambda: lam.update_function_configuration(FunctionName="layered", Layers=[v1["LayerVersionArn"]] * 6))
    assert code == "InvalidParameterValueException"

    # Deleting a layer version does not break a function that uses it, as on AWS.
    lam.delete_layer_version(LayerName="shared-libs", VersionNumber=2)
    code, _, _ = error_of(lambda: lam.get_layer_version(LayerName="shared-libs", VersionNumber=2))
    assert code == "ResourceNotFoundException"
    assert invoke(lam, "layered")[1]["greet"] == "hi layers"
    # Numbers are not reused.
    assert lam.publish_layer_version(LayerName="shared-libs", Content={"ZipFile": zip_of({"x.txt": "x"})})["Version"] == 3


def test_a_custom_runtime_bootstrap_can_come_from_a_layer(lam):
    runtime = lam.publish_layer_version(LayerName="sh-runtime", Content={"ZipFile": zip_of({"bootstrap": '''#!/bin/sh
set -e
while true; do
  HEADERS=$(mktemp)
  EVENT=$(curl -sS -D "$HEADERS" "http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation/next")
  ID=$(grep -i Lambda-Runtime-Aws-Request-Id "$HEADERS" | tr -d '[:space:]' | cut -d: -f2)
  curl -sS -X POST "http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation/$ID/response" -d "{\\"from\\": \\"layer bootstrap\\", \\"got\\": $EVENT}" > /dev/null
done
'''})})
    if not shutil.which("curl"):
        pytest.skip("the shell runtime in this test uses curl")
    lam.create_function(FunctionName="sh-fn", Runtime="provided.al2023", Role=ROLE, Handler="unused",
                        Code={"ZipFile": zip_of({"README": "code without a bootstrap"})},
                        Layers=[runtime["LayerVersionArn"]])
    resp, out = invoke(lam, "sh-fn", {"n": 5})
    assert "FunctionError" not in resp, out
    assert out == {"from": "layer bootstrap", "got": {"n": 5}}


def test_invoke_with_response_stream_answers_in_chunks(lam):
    import base64
    lam.create_function(FunctionName="streamer", Runtime="python3.12", Role=ROLE, Handler="app.handler",
                        Code={"ZipFile": zip_of({"app.py": "def handler(e, c):\n    print('streaming')\n    return {'big': 'x' * 200000, 'n': e['n']}\n"})})
    resp = lam.invoke_with_response_stream(FunctionName="streamer", Payload=json.dumps({"n": 3}), LogType="Tail")
    assert resp["StatusCode"] == 200 and resp["ExecutedVersion"] == "$LATEST"
    chunks, complete = [], None
    for event in resp["EventStream"]:
        if "PayloadChunk" in event:
            chunks.append(event["PayloadChunk"]["Payload"])
        if "InvokeComplete" in event:
            complete = event["InvokeComplete"]
    assert len(chunks) > 1
    out = json.loads(b"".join(chunks))
    assert out["n"] == 3 and len(out["big"]) == 200000
    assert "ErrorCode" not in complete
    log = base64.b64decode(complete["LogResult"]).decode()
    assert "streaming" in log and "REPORT RequestId" in log

    lam.create_function(FunctionName="stream-fails", Runtime="python3.12", Role=ROLE, Handler="app.handler",
                        Code={"ZipFile": zip_of({"app.py": "def handler(e, c):\n    raise ValueError('nope')\n"})})
    events = list(lam.invoke_with_response_stream(FunctionName="stream-fails", Payload=b"{}")["EventStream"])
    assert len(events) == 1 and events[0]["InvokeComplete"]["ErrorCode"] == "ValueError"
    assert json.loads(events[0]["InvokeComplete"]["ErrorDetails"])["errorMessage"] == "nope"
    code, _, _ = error_of(lambda: lam.invoke_with_response_stream(FunctionName="no-such-fn", Payload=b"{}"))
    assert code == "ResourceNotFoundException"


STREAMING_NODE = '''
exports.handler = awslambda.streamifyResponse(async (event, responseStream, context) => {
  if (event.requestContext && event.requestContext.http) {
    // A function URL with InvokeMode RESPONSE_STREAM: the HTTP prelude, then the body.
    responseStream = awslambda.HttpResponseStream.from(responseStream, {
      statusCode: 201, headers: {"content-type": "text/plain", "x-streamed": "yes"}, cookies: ["s=1"]});
  } else {
    responseStream.setContentType("text/plain");
  }
  for (let i = 0; i < 3; i++) {
    responseStream.write(`part ${i} for ${context.functionName};`);
    await new Promise((r) => setTimeout(r, 20));
  }
  if (event.fail) throw new Error("broke mid-stream");
  responseStream.end();
});
'''


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_node_functions_stream_their_responses(lakebox, lam):
    lam.create_function(FunctionName="node-streamer", Runtime="nodejs20.x", Role=ROLE, Handler="index.handler",
                        Code={"ZipFile": zip_of({"index.js": STREAMING_NODE})})
    expected = b"".join(f"part {i} for node-streamer;".encode() for i in range(3))
    resp = lam.invoke_with_response_stream(FunctionName="node-streamer", Payload=b"{}")
    events = list(resp["EventStream"])
    assert b"".join(e["PayloadChunk"]["Payload"] for e in events if "PayloadChunk" in e) == expected
    assert "ErrorCode" not in events[-1]["InvokeComplete"]
    # Invoke buffers a streaming function's answer, as AWS does.
    out = lam.invoke(FunctionName="node-streamer", Payload=b"{}")
    assert "FunctionError" not in out and out["Payload"].read() == expected
    # An error after the stream began ends it with the function's error.
    events = list(lam.invoke_with_response_stream(FunctionName="node-streamer", Payload=b'{"fail": true}')["EventStream"])
    complete = events[-1]["InvokeComplete"]
    assert complete["ErrorCode"] == "Error"
    assert json.loads(complete["ErrorDetails"])["errorMessage"] == "broke mid-stream"

    # A RESPONSE_STREAM function URL answers with the prelude's status, headers and cookies.
    url = lam.create_function_url_config(FunctionName="node-streamer", AuthType="NONE",
                                         InvokeMode="RESPONSE_STREAM")["FunctionUrl"]
    status, headers, cookies, body = url_request(lakebox, url, "/live")
    assert (status, headers["x-streamed"], headers["content-type"], cookies) == (201, "yes", "text/plain", ["s=1"])
    assert body == expected


def test_code_signing_recursion_and_runtime_management_settings(lam):
    """The settings deployment tools read and write with every function (Terraform reads
    GetFunctionCodeSigningConfig whenever it refreshes a function)."""
    lam.create_function(FunctionName="settings-fn", Runtime="python3.12", Role=ROLE, Handler="app.handler",
                        Code={"ZipFile": says("settings")})
    fn_arn = lam.get_function(FunctionName="settings-fn")["Configuration"]["FunctionArn"]
    got = lam.get_function_code_signing_config(FunctionName="settings-fn")
    assert (got["CodeSigningConfigArn"], got["FunctionName"]) == ("", "settings-fn")

    profile = "arn:aws:signer:us-east-1:000000000000:/signing-profiles/lakebox/abcdef1234"
    made = lam.create_code_signing_config(Description="ours", AllowedPublishers={"SigningProfileVersionArns": [profile]},
                                          CodeSigningPolicies={"UntrustedArtifactOnDeployment": "Enforce"})["CodeSigningConfig"]
    arn = made["CodeSigningConfigArn"]
    assert re.fullmatch(r"arn:aws:lambda:us-east-1:\d{12}:code-signing-config:csc-[0-9a-f]{17}", arn)
    assert arn.endswith(made["CodeSigningConfigId"]) and made["Description"] == "ours"
    assert made["CodeSigningPolicies"] == {"UntrustedArtifactOnDeployment": "Enforce"}
    assert lam.get_code_signing_config(CodeSigningConfigArn=arn)["CodeSigningConfig"] == made
    updated = lam.update_code_signing_config(CodeSigningConfigArn=arn, Description="changed",
                                             CodeSigningPolicies={"UntrustedArtifactOnDeployment": "Warn"})["CodeSigningConfig"]
    assert updated["Description"] == "changed" and updated["CodeSigningPolicies"]["UntrustedArtifactOnDeployment"] == "Warn"
    assert [c["CodeSigningConfigArn"] for c in lam.list_code_signing_configs()["CodeSigningConfigs"]] == [arn]

    put = lam.put_function_code_signing_config(FunctionName="settings-fn", CodeSigningConfigArn=arn)
    assert (put["CodeSigningConfigArn"], put["FunctionName"]) == (arn, "settings-fn")
    assert lam.get_function_code_signing_config(FunctionName=fn_arn)["CodeSigningConfigArn"] == arn
    assert lam.list_functions_by_code_signing_config(CodeSigningConfigArn=arn)["FunctionArns"] == [fn_arn]
    # A configuration in use cannot be deleted; CreateFunction can name one.
    code, _, _ = error_of(lambda: lam.delete_code_signing_config(CodeSigningConfigArn=arn))
    assert code == "ResourceConflictException"
    lam.create_function(FunctionName="signed-fn", Runtime="python3.12", Role=ROLE, Handler="app.handler",
                        Code={"ZipFile": says("signed")}, CodeSigningConfigArn=arn)
    assert lam.get_function_code_signing_config(FunctionName="signed-fn")["CodeSigningConfigArn"] == arn
    lam.delete_function_code_signing_config(FunctionName="settings-fn")
    lam.delete_function_code_signing_config(FunctionName="signed-fn")
    assert lam.get_function_code_signing_config(FunctionName="settings-fn")["CodeSigningConfigArn"] == ""
    lam.delete_code_signing_config(CodeSigningConfigArn=arn)
    code, _, _ = error_of(lambda: lam.get_code_signing_config(CodeSigningConfigArn=arn))
    assert code == "ResourceNotFoundException"
    code, _, _ = error_of(lambda: lam.get_function_code_signing_config(FunctionName="no-such-fn"))
    assert code == "ResourceNotFoundException"

    assert lam.get_function_recursion_config(FunctionName="settings-fn")["RecursiveLoop"] == "Terminate"
    assert lam.put_function_recursion_config(FunctionName="settings-fn", RecursiveLoop="Allow")["RecursiveLoop"] == "Allow"
    assert lam.get_function_recursion_config(FunctionName="settings-fn")["RecursiveLoop"] == "Allow"

    rt = lam.get_runtime_management_config(FunctionName="settings-fn")
    assert rt["UpdateRuntimeOn"] == "Auto" and rt["FunctionArn"] == fn_arn + ":$LATEST"
    version = "arn:aws:lambda:us-east-1::runtime:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    put = lam.put_runtime_management_config(FunctionName="settings-fn", UpdateRuntimeOn="Manual", RuntimeVersionArn=version)
    assert (put["UpdateRuntimeOn"], put["RuntimeVersionArn"]) == ("Manual", version)
    rt = lam.get_runtime_management_config(FunctionName="settings-fn")
    assert (rt["UpdateRuntimeOn"], rt["RuntimeVersionArn"]) == ("Manual", version)
    code, _, _ = error_of(lambda: lam.put_runtime_management_config(FunctionName="settings-fn", UpdateRuntimeOn="Manual"))
    assert code == "InvalidParameterValueException"
    # The function still runs as before.
    assert invoke(lam, "settings-fn")[1]["word"] == "settings"


def test_provisioned_concurrency_keeps_environments_initialized(lam):
    src = '''
import os

INIT = os.environ["AWS_LAMBDA_INITIALIZATION_TYPE"]

def handler(event, context):
    return {"init": INIT, "version": context.function_version}
'''
    lam.create_function(FunctionName="warm-fn", Runtime="python3.12", Role=ROLE, Handler="app.handler",
                        Code={"ZipFile": zip_of({"app.py": src})}, Publish=True)
    lam.create_alias(FunctionName="warm-fn", Name="live", FunctionVersion="1")
    code, msg, _ = error_of(lambda: lam.put_provisioned_concurrency_config(
        FunctionName="warm-fn", Qualifier="$LATEST", ProvisionedConcurrentExecutions=1))
    assert (code, msg) == ("InvalidParameterValueException",
                           "Provisioned Concurrency Configs cannot be applied to unpublished function versions.")
    put = lam.put_provisioned_concurrency_config(FunctionName="warm-fn", Qualifier="live", ProvisionedConcurrentExecutions=2)
    assert put["RequestedProvisionedConcurrentExecutions"] == 2 and put["Status"] == "IN_PROGRESS"
    assert wait_for(lambda: lam.get_provisioned_concurrency_config(FunctionName="warm-fn", Qualifier="live")["Status"] == "READY",
                    timeout=20)
    got = lam.get_provisioned_concurrency_config(FunctionName="warm-fn", Qualifier="live")
    assert got["AllocatedProvisionedConcurrentExecutions"] == got["AvailableProvisionedConcurrentExecutions"] == 2
    [listed] = lam.list_provisioned_concurrency_configs(FunctionName="warm-fn")["ProvisionedConcurrencyConfigs"]
    assert listed["FunctionArn"].endswith(":function:warm-fn:live") and listed["Status"] == "READY"

    # Invocations land in the environments started ahead of them: no init in their REPORT.
    resp, out = invoke(lam, "warm-fn:live", LogType="Tail")
    assert out == {"init": "provisioned-concurrency", "version": "1"}
    assert "Init Duration" not in base64.b64decode(resp["LogResult"]).decode()
    # $LATEST is not provisioned: its environments start on demand.
    assert invoke(lam, "warm-fn")[1]["init"] == "on-demand"

    code, _, _ = error_of(lambda: lam.get_provisioned_concurrency_config(FunctionName="warm-fn", Qualifier="1"))
    assert code == "ProvisionedConcurrencyConfigNotFoundException"
    lam.delete_provisioned_concurrency_config(FunctionName="warm-fn", Qualifier="live")
    assert lam.list_provisioned_concurrency_configs(FunctionName="warm-fn")["ProvisionedConcurrencyConfigs"] == []
