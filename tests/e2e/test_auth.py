"""SigV4: identity always read, signatures verified only with --credentials."""

import base64
import datetime
import zlib
import urllib.request
import urllib.error

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

from lakebox_harness import Lakebox
from signing import send, signed_request, signing_time

AKID, SECRET = "AKIDLAKEBOXTEST1", "lakebox-secret-1"
AKID2, SECRET2 = "123456789012", "second-secret"


@pytest.fixture(scope="module")
def verifying(tmp_path_factory):
    server = Lakebox(tmp_path_factory.mktemp("auth"), "--credentials", f"{AKID}:{SECRET}",
                     env={"LAKEBOX_CREDENTIALS": "ignored:because-flag-wins"}).start()
    yield server
    server.stop()


def code(e):
    return e.value.response["Error"]["Code"]


def signed_health(server, secret):
    import json
    status, _, body = signed_request(server.endpoint, method="GET", path="/_lakebox/health", service="lakebox",
                                     access_key=AKID, secret=secret)
    assert status == 200
    return json.loads(body)


def test_health_details_only_for_callers_signed_in(verifying):
    # Anyone may ask whether the server is up; only a caller whose signature verifies learns
    # where its data lives and how it authenticates.
    public = verifying.health()
    assert public["status"] == "running" and public["services"]["s3"] == "running"
    assert not {"dataDir", "authentication", "ephemeral", "version"} & public.keys(), public
    assert not {"dataDir", "authentication"} & signed_health(verifying, "wrong").keys()
    mine = signed_health(verifying, SECRET)
    assert mine["authentication"] == "sigv4" and mine["dataDir"] == str(verifying.data_dir)


def test_good_signatures_are_accepted(verifying):
    ident = verifying.client("sts", access_key=AKID, secret=SECRET).get_caller_identity()
    assert ident["Account"] == "000000000000"
    out = verifying.cli("sts", "get-caller-identity", access_key=AKID, secret=SECRET)
    assert out.returncode == 0, out.stderr
    # Verified JSON requests reach the service (which then answers for itself).
    status, _, body = signed_request(verifying.endpoint, body=b"{}", service="lakeboxtest", access_key=AKID,
                                     secret=SECRET, headers={"X-Amz-Target": "LakeboxTest_20260101.Echo",
                                                             "Content-Type": "application/x-amz-json-1.1"})
    assert status == 200, body


def test_credentials_from_environment_comma_separated(tmp_path):
    with Lakebox(tmp_path, env={"LAKEBOX_CREDENTIALS": f"{AKID}:{SECRET},{AKID2}:{SECRET2}"}) as lb:
        assert lb.client("sts", access_key=AKID, secret=SECRET).get_caller_identity()["Account"] == "000000000000"
        assert lb.client("sts", access_key=AKID2, secret=SECRET2).get_caller_identity()["Account"] == AKID2


def test_wrong_secret_is_refused(verifying):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        verifying.client("sts", access_key=AKID, secret="wrong").get_caller_identity()
    assert code(e) == "SignatureDoesNotMatch"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(botocore.exceptions.ClientError) as e:
        verifying.client("kinesis", access_key=AKID, secret="wrong").list_streams()
    assert code(e) == "InvalidSignatureException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        verifying.client("s3", access_key=AKID, secret="wrong").list_buckets()
    assert code(e) == "SignatureDoesNotMatch"


def test_unknown_access_key_is_refused(verifying):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        verifying.client("sts", access_key="AKIDUNKNOWN", secret=SECRET).get_caller_identity()
    assert code(e) == "InvalidClientTokenId"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        verifying.client("kinesis", access_key="AKIDUNKNOWN", secret=SECRET).list_streams()
    assert code(e) == "UnrecognizedClientException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        verifying.client("s3", access_key="AKIDUNKNOWN", secret=SECRET).list_buckets()
    assert code(e) == "InvalidAccessKeyId"
    out = verifying.cli("sts", "get-caller-identity", access_key="AKIDUNKNOWN", secret=SECRET)
    assert out.returncode != 0 and "InvalidClientTokenId" in out.stderr


def skewed():
    return datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=20)


def test_skewed_clock_is_refused(verifying):
    with signing_time(skewed()):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            verifying.client("sts", access_key=AKID, secret=SECRET).get_caller_identity()
        assert code(e) == "SignatureDoesNotMatch"
        assert "Signature expired" in e.value.response["Error"]["Message"]
        with pytest.raises(botocore.exceptions.ClientError) as e:
            verifying.client("kinesis", access_key=AKID, secret=SECRET).list_streams()
        assert code(e) == "InvalidSignatureException"
        assert "Signature expired" in e.value.response["Error"]["Message"]
        with pytest.raises(botocore.exceptions.ClientError) as e:
            verifying.client("s3", access_key=AKID, secret=SECRET).list_buckets()
        assert code(e) == "RequestTimeTooSkewed"
    ahead = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=20)
    status, _, body = signed_request(verifying.endpoint, body=b"{}", service="kinesis", access_key=AKID, secret=SECRET,
                                     at=ahead, headers={"X-Amz-Target": "Kinesis_20131202.ListStreams",
                                                        "Content-Type": "application/x-amz-json-1.1"})
    assert status == 400 and b"Signature not yet current" in body


def test_unsigned_requests_are_refused(verifying):
    status, _, body = send(verifying.endpoint, "POST", "/", b"{}", {
        "X-Amz-Target": "Kinesis_20131202.ListStreams", "Content-Type": "application/x-amz-json-1.1"})
    assert status == 400 and b"MissingAuthenticationTokenException" in body
    status, _, body = send(verifying.endpoint, "POST", "/", b"Action=GetCallerIdentity&Version=2011-06-15",
                           {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 403 and b"<Code>MissingAuthenticationToken</Code>" in body
    # S3 decides anonymous callers itself: a private bucket refuses them, a missing one is
    # NoSuchBucket, as in S3.
    s3 = presigner(verifying.endpoint, SECRET)
    s3.create_bucket(Bucket="private-to-anonymous")
    s3.put_object(Bucket="private-to-anonymous", Key="key", Body=b"secret")
    status, _, body = send(verifying.endpoint, "GET", "/private-to-anonymous/key")
    assert status == 403 and b"<Code>AccessDenied</Code>" in body and b"secret" not in body
    status, _, body = send(verifying.endpoint, "GET", "/")
    assert status == 403 and b"<Code>AccessDenied</Code>" in body
    status, _, body = send(verifying.endpoint, "PUT", "/anonymous-bucket")
    assert status == 403 and b"<Code>AccessDenied</Code>" in body
    status, _, body = send(verifying.endpoint, "GET", "/no-such-bucket-here/key")
    assert status == 404 and b"<Code>NoSuchBucket</Code>" in body
    # Lakebox's own health endpoint needs no signature.
    assert verifying.health()["status"] == "running"


def test_tampered_body_is_refused(verifying):
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    req = AWSRequest(method="POST", url=verifying.endpoint + "/", data=b'{"Name":"a"}',
                     headers={"X-Amz-Target": "LakeboxTest_20260101.Echo", "Content-Type": "application/x-amz-json-1.1"})
    SigV4Auth(Credentials(AKID, SECRET), "lakeboxtest", "us-east-1").add_auth(req)
    status, _, body = send(verifying.endpoint, "POST", "/", b'{"Name":"b"}', dict(req.headers.items()))
    assert status == 400 and b"InvalidSignatureException" in body


def test_unsigned_amz_headers_are_refused(verifying):
    """A captured request cannot be turned into a copy or a metadata write by adding headers."""
    import hashlib
    from botocore.auth import S3SigV4Auth, SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    s3 = verifying.client("s3", access_key=AKID, secret=SECRET)
    s3.create_bucket(Bucket="unsigned-headers")
    s3.put_object(Bucket="unsigned-headers", Key="secret", Body=b"private")
    body = b"public"
    req = AWSRequest(method="PUT", url=verifying.endpoint + "/unsigned-headers/k", data=body,
                     headers={"x-amz-content-sha256": hashlib.sha256(body).hexdigest()})
    S3SigV4Auth(Credentials(AKID, SECRET), "s3", "us-east-1").add_auth(req)
    signed = dict(req.headers.items())
    for extra in ({"x-amz-copy-source": "/unsigned-headers/secret"}, {"x-amz-meta-owner": "mallory"}):
        status, _, answer = send(verifying.endpoint, "PUT", "/unsigned-headers/k", body, {**signed, **extra})
        assert status == 403, answer
        assert b"<Code>AccessDenied</Code>" in answer
        assert b"There were headers present in the request which were not signed" in answer
        assert f"<HeadersNotSigned>{next(iter(extra))}</HeadersNotSigned>".encode() in answer
    with pytest.raises(botocore.exceptions.ClientError):
        s3.head_object(Bucket="unsigned-headers", Key="k")  # nothing was written
    status, _, answer = send(verifying.endpoint, "PUT", "/unsigned-headers/k", body, signed)
    assert status == 200, answer  # the request as signed still works
    assert s3.get_object(Bucket="unsigned-headers", Key="k")["Body"].read() == b"public"
    # JSON services: the same refusal in their error shape.
    req = AWSRequest(method="POST", url=verifying.endpoint + "/", data=b'{"Name":"a"}',
                     headers={"X-Amz-Target": "LakeboxTest_20260101.Echo", "Content-Type": "application/x-amz-json-1.1"})
    SigV4Auth(Credentials(AKID, SECRET), "lakeboxtest", "us-east-1").add_auth(req)
    status, _, answer = send(verifying.endpoint, "POST", "/", b'{"Name":"a"}',
                             {**dict(req.headers.items()), "X-Amz-Extra": "1"})
    assert status == 400 and b"InvalidSignatureException" in answer and b"not signed" in answer


def presigner(endpoint, secret):
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=AKID,
                        aws_secret_access_key=secret,
                        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))


def fetch(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_presigned_urls_are_verified(verifying):
    s3 = verifying.client("s3", access_key=AKID, secret=SECRET)
    s3.create_bucket(Bucket="presigned")
    s3.put_object(Bucket="presigned", Key="dir/k ey.txt", Body=b"secret data")
    good = presigner(verifying.endpoint, SECRET).generate_presigned_url(
        "get_object", Params={"Bucket": "presigned", "Key": "dir/k ey.txt"}, ExpiresIn=300)
    status, body = fetch(good)
    assert status == 200 and body == b"secret data", body
    put_url = presigner(verifying.endpoint, SECRET).generate_presigned_url(
        "put_object", Params={"Bucket": "presigned", "Key": "uploaded"}, ExpiresIn=300)
    req = urllib.request.Request(put_url, data=b"put via url", method="PUT")
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.status == 200
    assert s3.get_object(Bucket="presigned", Key="uploaded")["Body"].read() == b"put via url"
    bad = presigner(verifying.endpoint, "wrong").generate_presigned_url(
        "get_object", Params={"Bucket": "b", "Key": "k"}, ExpiresIn=300)
    status, body = fetch(bad)
    assert status == 403 and b"<Code>SignatureDoesNotMatch</Code>" in body
    with signing_time(datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=2)):
        expired = presigner(verifying.endpoint, SECRET).generate_presigned_url(
            "get_object", Params={"Bucket": "b", "Key": "k"}, ExpiresIn=60)
    status, body = fetch(expired)
    assert status == 403 and b"Request has expired" in body


def test_sigv2_presigned_urls_and_headers_are_verified(verifying):
    """`aws s3 presign` and boto3's default presigner still sign with SigV2 (AWSAccessKeyId,
    Signature, Expires); legacy `AWS key:signature` headers too."""
    s3 = verifying.client("s3", access_key=AKID, secret=SECRET)
    s3.create_bucket(Bucket="sigv2")
    s3.put_object(Bucket="sigv2", Key="dir/k ey+1.txt", Body=b"v2 data")
    out = verifying.cli("s3", "presign", "s3://sigv2/dir/k ey+1.txt", "--expires-in", "300", access_key=AKID, secret=SECRET)
    assert out.returncode == 0, out.stderr
    url = out.stdout.strip()
    assert "AWSAccessKeyId=" in url and "Signature=" in url, url
    assert fetch(url) == (200, b"v2 data")
    tampered = url.replace("k%20ey", "k%20ex")
    status, body = fetch(tampered)
    assert status == 403 and b"<Code>SignatureDoesNotMatch</Code>" in body, body
    v2 = boto3.client("s3", endpoint_url=verifying.endpoint, region_name="us-east-1", aws_access_key_id=AKID,
                      aws_secret_access_key=SECRET, config=Config(signature_version="s3", s3={"addressing_style": "path"}))
    # Sub-resources are signed: a presigned versionId / response-content-type read.
    url = v2.generate_presigned_url("get_object", ExpiresIn=60, Params={
        "Bucket": "sigv2", "Key": "dir/k ey+1.txt", "ResponseContentType": "text/x-test"})
    with urllib.request.urlopen(url, timeout=5) as r:
        assert r.read() == b"v2 data" and r.headers["Content-Type"] == "text/x-test"
    put_url = v2.generate_presigned_url("put_object", Params={"Bucket": "sigv2", "Key": "up"}, ExpiresIn=60)
    req = urllib.request.Request(put_url, data=b"put v2", method="PUT", headers={"Content-Type": ""})
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.status == 200
    # Header-signed SigV2 (boto3 with signature_version="s3"), including metadata headers.
    v2.put_object(Bucket="sigv2", Key="hdr", Body=b"signed v2", Metadata={"a": "b"})
    assert v2.get_object(Bucket="sigv2", Key="hdr")["Body"].read() == b"signed v2"
    bad = boto3.client("s3", endpoint_url=verifying.endpoint, region_name="us-east-1", aws_access_key_id=AKID,
                       aws_secret_access_key="wrong", config=Config(signature_version="s3", s3={"addressing_style": "path"}))
    with pytest.raises(botocore.exceptions.ClientError) as e:
        bad.get_object(Bucket="sigv2", Key="hdr")
    assert code(e) == "SignatureDoesNotMatch"
    expired = v2.generate_presigned_url("get_object", Params={"Bucket": "sigv2", "Key": "hdr"}, ExpiresIn=-10)
    status, body = fetch(expired)
    assert status == 403 and b"Request has expired" in body


def test_without_credentials_anything_goes_but_identity_is_honoured(lakebox):
    assert lakebox.health()["authentication"] == "accept-all"
    with signing_time(skewed()):
        ident = lakebox.client("sts", access_key="111122223333", secret="whatever").get_caller_identity()
    assert ident["Account"] == "111122223333"
    status, _, body = send(lakebox.endpoint, "POST", "/", b"Action=GetCallerIdentity&Version=2011-06-15",
                           {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200 and b"<Account>000000000000</Account>" in body


def streaming_put(endpoint, path, chunks, secret=SECRET, tamper_chunk=None, trailer=None, trailer_signature=True):
    """A PUT with a STREAMING-AWS4-HMAC-SHA256-PAYLOAD body: the request is signed with that
    payload marker, then each chunk carries a signature chained from the previous one. With
    `trailer` (name, value), the -TRAILER variant: the trailing header is signed last."""
    import hashlib
    import hmac as hm
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    marker = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" + ("-TRAILER" if trailer else "")
    extra = {"x-amz-trailer": trailer[0]} if trailer else {}
    req = AWSRequest(method="PUT", url=endpoint + path, headers={
        "X-Amz-Content-SHA256": marker, "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(sum(len(c) for c in chunks)), **extra})
    SigV4Auth(Credentials(AKID, secret), "s3", "us-east-1").add_auth(req)
    headers = dict(req.headers.items())
    amz_date = headers["X-Amz-Date"]
    scope = f"{amz_date[:8]}/us-east-1/s3/aws4_request"
    key = b"AWS4" + secret.encode()
    for part in (amz_date[:8], "us-east-1", "s3", "aws4_request"):
        key = hm.new(key, part.encode(), hashlib.sha256).digest()
    previous = headers["Authorization"].split("Signature=")[1]
    empty = hashlib.sha256(b"").hexdigest()
    body = b""
    for i, chunk in enumerate(list(chunks) + [b""]):
        sts = f"AWS4-HMAC-SHA256-PAYLOAD\n{amz_date}\n{scope}\n{previous}\n{empty}\n{hashlib.sha256(chunk).hexdigest()}"
        previous = hm.new(key, sts.encode(), hashlib.sha256).hexdigest()
        sent = chunk if i != tamper_chunk else bytes([chunk[0] ^ 1]) + chunk[1:]
        body += f"{len(chunk):x};chunk-signature={previous}\r\n".encode() + sent
        body += b"\r\n" if chunk or not trailer else b""
    if trailer:
        canonical = f"{trailer[0]}:{trailer[1]}\n"
        sts = f"AWS4-HMAC-SHA256-TRAILER\n{amz_date}\n{scope}\n{previous}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        signature = hm.new(key, sts.encode(), hashlib.sha256).hexdigest()
        body += f"{trailer[0]}:{trailer[1]}\r\n".encode()
        if trailer_signature:
            body += f"x-amz-trailer-signature:{signature if trailer_signature is True else trailer_signature}\r\n".encode()
        body += b"\r\n"
    headers["Content-Length"] = str(len(body))
    return send(endpoint, "PUT", path, body, headers)


def test_streaming_chunk_signatures_are_verified(verifying):
    s3 = verifying.client("s3", access_key=AKID, secret=SECRET)
    s3.create_bucket(Bucket="streamed")
    chunks = [b"a" * 70000, b"b" * 1000]
    status, _, body = streaming_put(verifying.endpoint, "/streamed/good", chunks)
    assert status == 200, body
    assert s3.get_object(Bucket="streamed", Key="good")["Body"].read() == b"".join(chunks)
    status, _, body = streaming_put(verifying.endpoint, "/streamed/bad", chunks, tamper_chunk=1)
    assert status == 403 and b"<Code>SignatureDoesNotMatch</Code>" in body
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.head_object(Bucket="streamed", Key="bad")
    assert e.value.response["Error"]["Code"] == "404"  # the altered upload stored nothing
    # The -TRAILER variant: the trailing checksum is signed too.
    crc = base64.b64encode(zlib.crc32(b"".join(chunks)).to_bytes(4, "big")).decode()
    status, _, body = streaming_put(verifying.endpoint, "/streamed/trailer", chunks, trailer=("x-amz-checksum-crc32", crc))
    assert status == 200, body
    got = s3.get_object(Bucket="streamed", Key="trailer", ChecksumMode="ENABLED")
    assert got["Body"].read() == b"".join(chunks) and got["ChecksumCRC32"] == crc
    for bad_sig in (False, "0" * 64):
        status, _, body = streaming_put(verifying.endpoint, "/streamed/trailer-bad", chunks,
                                        trailer=("x-amz-checksum-crc32", crc), trailer_signature=bad_sig)
        assert status == 403 and b"<Code>SignatureDoesNotMatch</Code>" in body, body


def test_bucket_addressed_sigv2_and_date_signed_sigv4_verify(verifying):
    """SigV2 requests to `/bucket/` (the trailing slash is part of the signed resource) and SigV4
    requests that carry `Date` instead of `X-Amz-Date` verify, as S3 accepts both."""
    import hashlib
    import hmac
    from email.utils import formatdate
    from botocore.auth import HmacV1Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    s3 = verifying.client("s3", access_key=AKID, secret=SECRET)
    s3.create_bucket(Bucket="addressed")
    s3.put_object(Bucket="addressed", Key="k", Body=b"x")
    req = AWSRequest(method="GET", url=verifying.endpoint + "/addressed/")
    HmacV1Auth(Credentials(AKID, SECRET)).add_auth(req)
    status, _, body = send(verifying.endpoint, "GET", "/addressed/", b"", dict(req.headers.items()))
    assert status == 200 and b"<Key>k</Key>" in body, body

    def sigv4_with_date(secret):
        now = datetime.datetime.now(datetime.timezone.utc)
        day, stamp = now.strftime("%Y%m%d"), now.strftime("%Y%m%dT%H%M%SZ")
        date = formatdate(now.timestamp(), usegmt=True)
        host = verifying.endpoint.split("://")[1]
        empty = hashlib.sha256(b"").hexdigest()
        canonical = "\n".join(["GET", "/addressed/k", "", f"date:{date}", f"host:{host}",
                               f"x-amz-content-sha256:{empty}", "", "date;host;x-amz-content-sha256", empty])
        scope = f"{day}/us-east-1/s3/aws4_request"
        to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
        key = ("AWS4" + secret).encode()
        for part in (day, "us-east-1", "s3", "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        return send(verifying.endpoint, "GET", "/addressed/k", b"", {
            "Date": date, "Host": host, "x-amz-content-sha256": empty,
            "Authorization": f"AWS4-HMAC-SHA256 Credential={AKID}/{scope}, "
                             f"SignedHeaders=date;host;x-amz-content-sha256, Signature={signature}"})

    status, _, body = sigv4_with_date(SECRET)
    assert (status, body) == (200, b"x")
    status, _, body = sigv4_with_date("wrong")
    assert status == 403 and b"SignatureDoesNotMatch" in body


def test_sns_links_work_unsigned_and_the_mail_outbox_does_not(verifying):
    sns = verifying.client("sns", access_key=AKID, secret=SECRET)
    arn = sns.create_topic(Name="signed-topic")["TopicArn"]
    sns.subscribe(TopicArn=arn, Protocol="email", Endpoint="me@example.com")
    # The outbox holds people's mail: only a signed request reads it.
    status, _, body = send(verifying.endpoint, "GET", "/_lakebox/sns/outbox")
    assert status == 403 and b"AccessDenied" in body
    import json
    import time
    deadline, mails = time.time() + 15, []
    while not mails and time.time() < deadline:
        status, _, body = signed_request(verifying.endpoint, method="GET", path="/_lakebox/sns/outbox",
                                         service="lakebox", access_key=AKID, secret=SECRET)
        assert status == 200
        mails = json.loads(body)["messages"]
        time.sleep(0.1)
    url = next(line for line in mails[0]["message"].splitlines() if line.startswith("http"))
    # The SubscribeURL is visited unsigned, as a person clicks it; other SNS actions are not.
    assert b"<ConfirmSubscriptionResult>" in urllib.request.urlopen(url).read()
    sub = sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"][0]["SubscriptionArn"]
    assert sub.startswith(arn + ":")
    status, _, body = send(verifying.endpoint, "GET", "/?Action=ListTopics&Version=2010-03-31")
    assert status == 403 and b"MissingAuthenticationToken" in body
