"""Routing by protocol, AWS-shaped errors for what Lakebox lacks, codecs through the wire."""

import base64
import json
import socket
import subprocess
import shutil

import botocore.exceptions
import pytest

from signing import send, signed_request

JSON11 = "application/x-amz-json-1.1"
CBOR = "application/x-amz-cbor-1.1"


def error_code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def test_unimplemented_json_service_with_boto3(lakebox):
    # An operation of a served service that Lakebox does not implement yet, and a service it
    # does not serve yet, answer alike.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        lakebox.client("logs").describe_query_definitions()
    assert error_code(e) == "UnknownOperationException"
    assert e.value.response["ResponseMetadata"]["RequestId"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        lakebox.client("kms").list_keys()
    assert error_code(e) == "UnknownOperationException"


def test_unknown_target_prefix_and_operation(lakebox):
    status, headers, body = signed_request(lakebox.endpoint, body=b"{}", headers={
        "X-Amz-Target": "NoSuchService_20200101.DoThing", "Content-Type": JSON11})
    assert status == 400
    assert json.loads(body)["__type"] == "UnknownOperationException"
    assert headers["x-amzn-requestid"]
    status, _, body = signed_request(lakebox.endpoint, body=b"{}", service="lakeboxtest", headers={
        "X-Amz-Target": "LakeboxTest_20260101.NoSuchOperation", "Content-Type": JSON11})
    assert status == 400 and json.loads(body)["__type"] == "UnknownOperationException"


def test_unknown_query_action_with_boto3_and_cli(lakebox):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        lakebox.client("sns").list_platform_applications()
    assert error_code(e) == "InvalidAction"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        lakebox.client("sts").assume_role(RoleArn="arn:aws:iam::000000000000:role/r", RoleSessionName="session")
    assert error_code(e) == "InvalidAction"
    out = lakebox.cli("iam", "list-users")
    assert out.returncode != 0 and "InvalidAction" in out.stderr


def test_s3_fallback_path_and_virtual_host(lakebox):
    resp = lakebox.client("s3").list_buckets()
    assert resp["ResponseMetadata"]["HTTPHeaders"]["x-amz-request-id"]
    assert resp["ResponseMetadata"]["HTTPHeaders"]["x-amz-id-2"]
    lakebox.client("s3").create_bucket(Bucket="vhost-bucket")
    lakebox.client("s3").put_object(Bucket="vhost-bucket", Key="a/b.txt", Body=b"via path")
    status, headers, body = send(lakebox.endpoint, "GET", "/a/b.txt", headers={"Host": f"vhost-bucket.localhost:{lakebox.port}"})
    assert status == 200 and body == b"via path"
    status, _, body = send(lakebox.endpoint, "GET", "/key", headers={"Host": f"no-such-bucket.localhost:{lakebox.port}"})
    assert status == 404 and b"<Code>NoSuchBucket</Code>" in body
    # HEAD errors have no body, as S3 sends them.
    status, headers, body = send(lakebox.endpoint, "HEAD", "/no-such-bucket/key")
    assert status == 404 and body == b""


def test_rest_json_service_is_recognised(lakebox):
    # Lambda is served now (restJson1); an operation it does not implement yet stands in for
    # the unknown one, and a path no operation has is refused as AWS's front end refuses it.
    assert lakebox.client("lambda").list_functions()["Functions"] == []
    with pytest.raises(botocore.exceptions.ClientError) as e:
        lakebox.client("lambda").list_capacity_providers()
    assert error_code(e) == "UnknownOperationException"
    status, headers, _ = signed_request(lakebox.endpoint, "GET", "/2015-03-31/nothing-here", service="lambda")
    assert status == 404 and headers["x-amzn-errortype"] == "UnknownOperationException"


@pytest.mark.parametrize("service, call", [
    ("quicksight", lambda c: c.list_users(AwsAccountId="000000000000", Namespace="default")),
    ("kafka", lambda c: c.list_clusters()),
    ("iot", lambda c: c.list_things()),
    ("emr", lambda c: c.list_clusters()),
    ("sagemaker", lambda c: c.list_models()),
    ("events", lambda c: c.list_rules()),
    ("kinesisanalytics", lambda c: c.list_applications()),
    ("route53", lambda c: c.list_hosted_zones()),
    ("cloudfront", lambda c: c.list_distributions()),
])
def test_services_lakebox_does_not_know_get_their_own_unknown_operation_error(lakebox, service, call):
    """REST services missing from the catalogue are recognised by the signing name in the request's
    credential scope and refused in their own protocol (JSON, or XML for Route 53 and CloudFront),
    never answered as S3 (`NoSuchBucket`)."""
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call(lakebox.client(service))
    assert error_code(e) == "UnknownOperationException", e.value.response
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] in (400, 404)
    assert "NoSuchBucket" not in str(e.value)
    if service != "quicksight":
        return
    out = lakebox.cli("quicksight", "list-users", "--aws-account-id", "000000000000", "--namespace", "default")
    assert out.returncode != 0 and "UnknownOperationException" in out.stderr and "NoSuchBucket" not in out.stderr


def test_query_success_with_boto3_and_cli(lakebox):
    ident = lakebox.client("sts").get_caller_identity()
    assert ident["Account"] == "000000000000"
    assert ident["Arn"] == "arn:aws:iam::000000000000:root"
    assert ident["ResponseMetadata"]["RequestId"]
    # A 12-digit access key names the account.
    ident = lakebox.client("sts", access_key="123456789012").get_caller_identity()
    assert ident["Account"] == "123456789012"
    out = lakebox.cli("sts", "get-caller-identity", access_key="210987654321")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["Account"] == "210987654321"


def test_malformed_json_is_a_serialization_error(lakebox):
    for body in [b"{not json", b'{"Data": 5}', b'{"Data": "not base64!"}', b"[1,2]"]:
        status, _, resp = signed_request(lakebox.endpoint, body=body, service="lakeboxtest", headers={
            "X-Amz-Target": "LakeboxTest_20260101.Echo", "Content-Type": JSON11})
        assert status == 400, body
        assert json.loads(resp)["__type"] == "SerializationException", body


def test_malformed_query_requests(lakebox):
    status, _, body = send(lakebox.endpoint, "POST", "/", b"Version=2011-06-15&Foo=bar",
                           {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 400 and b"<Code>MissingAction</Code>" in body
    status, _, body = send(lakebox.endpoint, "POST", "/", b"Action=GetCallerIdentity&Version=2011-06-15&X=%FF",
                           {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 400 and b"<Code>MalformedQueryString</Code>" in body


def test_json_codec_round_trip(lakebox):
    payload = {"Data": base64.b64encode(b"\x00\xffbin").decode(), "At": 1700000000.125, "Name": "", "Items": []}
    status, headers, resp = signed_request(lakebox.endpoint, body=json.dumps(payload).encode(), service="lakeboxtest",
                                           headers={"X-Amz-Target": "LakeboxTest_20260101.Echo", "Content-Type": JSON11})
    assert status == 200
    assert headers["content-type"] == JSON11
    assert json.loads(resp) == payload  # empty string and empty list survive; absent stays absent
    status, _, resp = signed_request(lakebox.endpoint, body=b"", service="lakeboxtest",
                                     headers={"X-Amz-Target": "LakeboxTest_20260101.Echo", "Content-Type": JSON11})
    assert status == 200 and json.loads(resp) == {}


def cbor_encode(obj):
    """A minimal CBOR encoder for the shapes the test needs (maps, text, bytes, ints, tag 1)."""
    def head(major, n):
        if n < 24:
            return bytes([major << 5 | n])
        for size, code in ((1, 24), (2, 25), (4, 26), (8, 27)):
            if n < 1 << (8 * size):
                return bytes([major << 5 | code]) + n.to_bytes(size, "big")
    if isinstance(obj, tuple) and obj[0] == "tag":
        return head(6, obj[1]) + cbor_encode(obj[2])
    if isinstance(obj, dict):
        return head(5, len(obj)) + b"".join(cbor_encode(k) + cbor_encode(v) for k, v in obj.items())
    if isinstance(obj, str):
        raw = obj.encode()
        return head(3, len(raw)) + raw
    if isinstance(obj, bytes):
        return head(2, len(obj)) + obj
    if isinstance(obj, int):
        return head(0, obj)
    raise TypeError(obj)


def test_cbor_codec_round_trip_and_errors(lakebox):
    body = cbor_encode({"Data": b"\x00\x01\xfe", "At": ("tag", 1, 1700000000125), "Name": "x"})
    status, headers, resp = signed_request(lakebox.endpoint, body=body, service="lakeboxtest",
                                           headers={"X-Amz-Target": "LakeboxTest_20260101.Echo", "Content-Type": CBOR})
    assert status == 200 and headers["content-type"] == CBOR
    # The same bytes come back: byte string, tag 1 + epoch milliseconds, text.
    assert b"\x43\x00\x01\xfe" in resp
    assert b"\xc1\x1b" + (1700000000125).to_bytes(8, "big") in resp
    status, headers, resp = signed_request(lakebox.endpoint, body=b"\xff\xff", service="lakeboxtest",
                                           headers={"X-Amz-Target": "LakeboxTest_20260101.Echo", "Content-Type": CBOR})
    assert status == 400 and headers["content-type"] == CBOR
    assert b"SerializationException" in resp
    status, headers, resp = signed_request(lakebox.endpoint, body=b"", service="kinesis",
                                           headers={"X-Amz-Target": "Kinesis_20131202.NoSuchOperation", "Content-Type": CBOR})
    assert status == 400 and b"UnknownOperationException" in resp


def test_oversized_body_is_refused_before_it_is_sent(lakebox):
    # Declare 64 MiB to Kinesis (largest legal request is ~7 MiB) and send none of it:
    # the answer must come at once, without the server waiting for the body.
    with socket.create_connection(("127.0.0.1", lakebox.port), timeout=5) as s:
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: Kinesis_20131202.PutRecords\r\n"
                  b"Content-Type: application/x-amz-json-1.1\r\nContent-Length: 67108864\r\n\r\n")
        reply = s.recv(65536)
    assert reply.startswith(b"HTTP/1.1 413"), reply[:100]
    assert b"RequestEntityTooLargeException" in reply


def test_oversized_chunked_body_is_cut_off(lakebox):
    with socket.create_connection(("127.0.0.1", lakebox.port), timeout=10) as s:
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: AmazonAthena.ListWorkGroups\r\n"
                  b"Content-Type: application/x-amz-json-1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"x" * 65536
        reply = b""
        try:
            for _ in range(64):  # 4 MiB, over Athena's 2 MiB limit
                s.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        s.settimeout(5)
        try:
            reply = s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            pass
    assert reply.startswith(b"HTTP/1.1 413"), reply[:100]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is installed by scripts/test")
def test_h2c_prior_knowledge(lakebox):
    out = subprocess.run(["curl", "-s", "--http2-prior-knowledge", "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
                          lakebox.endpoint + "/_lakebox/health"], capture_output=True, text=True, timeout=10)
    assert out.stdout == "2 200"
    out = subprocess.run(["curl", "-s", "--http2-prior-knowledge", "-D", "-", "-X", "POST",
                          "-H", "X-Amz-Target: Kinesis_20131202.ListStreams", "-H", f"Content-Type: {JSON11}",
                          "-d", "{}", lakebox.endpoint + "/"], capture_output=True, text=True, timeout=10)
    assert out.stdout.startswith("HTTP/2 200"), out.stdout
    assert "x-amzn-requestid" in out.stdout.lower() and "StreamNames" in out.stdout


def test_lakebox_paths_are_not_aws(lakebox):
    status, _, body = send(lakebox.endpoint, "GET", "/_lakebox/no-such-thing")
    assert status == 404
    assert json.loads(body)["__type"] == "NotFound"
