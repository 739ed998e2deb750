"""POST Object (browser form uploads), judged by boto3's generate_presigned_post and a raw
multipart/form-data POST built here as a browser builds it: the policy's conditions and
expiration, SigV4 and SigV2 form signatures (checked with --credentials), success_action_status
and success_action_redirect, metadata, tagging, and the errors for each violated condition."""

import base64
import datetime
import hashlib
import hmac
import json
import uuid
import xml.etree.ElementTree as ET

import pytest

from lakebox_harness import Lakebox
from signing import send

AKID, SECRET = "AKIDPOSTFORMS", "post-secret"


def form(fields, filename="photo.txt", data=b"hello form", content_type="text/plain"):
    """A multipart/form-data body as a browser sends it: the fields in order, the file last."""
    boundary = "----LakeboxForm" + uuid.uuid4().hex
    out = b""
    for k, v in fields.items():
        out += f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n".encode()
    if data is not None:
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
                f"Content-Type: {content_type}\r\n\r\n").encode() + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return out, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def post(lakebox, bucket, fields, **kw):
    body, headers = form(fields, **kw)
    return send(lakebox.endpoint, "POST", f"/{bucket}", body, headers)


def error_code(body):
    return ET.fromstring(body).findtext("Code"), ET.fromstring(body).findtext("Message")


@pytest.fixture(scope="module")
def s3(lakebox):
    client = lakebox.client("s3")
    client.create_bucket(Bucket="forms")
    return client


def test_presigned_post_uploads_with_metadata_and_201(lakebox, s3):
    p = s3.generate_presigned_post(
        "forms", "uploads/${filename}",
        Fields={"x-amz-meta-color": "red", "Content-Type": "text/plain", "success_action_status": "201"},
        Conditions=[{"x-amz-meta-color": "red"}, {"Content-Type": "text/plain"}, {"success_action_status": "201"},
                    ["starts-with", "$key", "uploads/"], ["content-length-range", 1, 1000]])
    status, headers, body = post(lakebox, "forms", p["fields"], filename="notes.txt", data=b"form bytes")
    assert status == 201, body
    doc = ET.fromstring(body)
    assert doc.tag == "PostResponse"
    assert (doc.findtext("Bucket"), doc.findtext("Key")) == ("forms", "uploads/notes.txt")
    assert doc.findtext("ETag") == '"%s"' % hashlib.md5(b"form bytes").hexdigest()
    assert doc.findtext("Location").endswith("/forms/uploads/notes.txt")
    obj = s3.get_object(Bucket="forms", Key="uploads/notes.txt")
    assert obj["Body"].read() == b"form bytes"
    assert obj["Metadata"] == {"color": "red"} and obj["ContentType"] == "text/plain"


def test_default_204_redirect_and_tagging(lakebox, s3):
    p = s3.generate_presigned_post("forms", "plain.bin")
    status, headers, _ = post(lakebox, "forms", p["fields"], data=b"\x00\x01\x02")
    assert status == 204
    assert headers["etag"] == '"%s"' % hashlib.md5(b"\x00\x01\x02").hexdigest()
    assert s3.get_object(Bucket="forms", Key="plain.bin")["Body"].read() == b"\x00\x01\x02"

    tagging = "<Tagging><TagSet><Tag><Key>team</Key><Value>web</Value></Tag></TagSet></Tagging>"
    p = s3.generate_presigned_post("forms", "redirected.txt",
                                   Fields={"success_action_redirect": "https://app.example.com/done", "tagging": tagging},
                                   Conditions=[{"success_action_redirect": "https://app.example.com/done"}, {"tagging": tagging}])
    status, headers, _ = post(lakebox, "forms", p["fields"])
    assert status == 303
    assert headers["location"].startswith("https://app.example.com/done?bucket=forms&key=redirected.txt&etag=")
    assert s3.get_object_tagging(Bucket="forms", Key="redirected.txt")["TagSet"] == [{"Key": "team", "Value": "web"}]


def test_each_violated_condition_is_refused(lakebox, s3):
    p = s3.generate_presigned_post("forms", "limited.txt", Conditions=[["content-length-range", 5, 10]])
    status, _, body = post(lakebox, "forms", p["fields"], data=b"x" * 11)
    assert status == 400 and error_code(body)[0] == "EntityTooLarge"
    status, _, body = post(lakebox, "forms", p["fields"], data=b"x")
    assert status == 400 and error_code(body)[0] == "EntityTooSmall"
    assert "Contents" not in s3.list_objects_v2(Bucket="forms", Prefix="limited")

    p = s3.generate_presigned_post("forms", "uploads/${filename}", Conditions=[["starts-with", "$key", "uploads/"]])
    fields = dict(p["fields"], key="elsewhere/x.txt")
    status, _, body = post(lakebox, "forms", fields)
    assert status == 403
    assert error_code(body) == ("AccessDenied", 'Invalid according to Policy: Policy Condition failed: ["starts-with","$key","uploads/"]')

    status, _, body = post(lakebox, "forms", dict(p["fields"], **{"x-amz-meta-sneaky": "1"}))
    assert status == 403 and error_code(body)[1] == "Invalid according to Policy: Extra input fields: x-amz-meta-sneaky"
    # x-ignore- fields need no condition.
    status, _, _ = post(lakebox, "forms", dict(p["fields"], **{"x-ignore-tracking": "1"}))
    assert status == 204

    expired = s3.generate_presigned_post("forms", "late.txt", ExpiresIn=-60)
    status, _, body = post(lakebox, "forms", expired["fields"])
    assert status == 403 and error_code(body)[1] == "Invalid according to Policy: Policy expired."

    status, _, body = post(lakebox, "forms", {k: v for k, v in p["fields"].items() if k != "key"})
    assert status == 400 and error_code(body)[0] == "InvalidArgument"
    status, _, body = post(lakebox, "forms", p["fields"], data=None)
    assert status == 400 and error_code(body) == ("InvalidArgument", "POST requires exactly one file upload per request.")


def sigv2_form(bucket, key):
    policy = base64.b64encode(json.dumps({
        "expiration": (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "conditions": [{"bucket": bucket}, {"key": key}]}).encode()).decode()
    signature = base64.b64encode(hmac.new(SECRET.encode(), policy.encode(), hashlib.sha1).digest()).decode()
    return {"key": key, "AWSAccessKeyId": AKID, "policy": policy, "signature": signature}


def test_form_signatures_are_verified_with_credentials(tmp_path):
    with Lakebox(tmp_path, "--credentials", f"{AKID}:{SECRET}") as lb:
        s3 = lb.client("s3", access_key=AKID, secret=SECRET)
        s3.create_bucket(Bucket="signed-forms")
        p = s3.generate_presigned_post("signed-forms", "v4.txt")
        status, _, body = post(lb, "signed-forms", p["fields"], data=b"v4 upload")
        assert status == 204, body
        assert s3.get_object(Bucket="signed-forms", Key="v4.txt")["Body"].read() == b"v4 upload"

        status, _, _ = post(lb, "signed-forms", sigv2_form("signed-forms", "v2.txt"), data=b"v2 upload")
        assert status == 204
        assert s3.get_object(Bucket="signed-forms", Key="v2.txt")["Body"].read() == b"v2 upload"

        wrong = lb.client("s3", access_key=AKID, secret="not-the-secret").generate_presigned_post("signed-forms", "bad.txt")
        status, _, body = post(lb, "signed-forms", wrong["fields"])
        assert status == 403 and error_code(body)[0] == "SignatureDoesNotMatch"
        unknown = lb.client("s3", access_key="AKIDUNKNOWN", secret="x").generate_presigned_post("signed-forms", "bad.txt")
        status, _, body = post(lb, "signed-forms", unknown["fields"])
        assert status == 403 and error_code(body)[0] == "InvalidAccessKeyId"
        # No policy at all: an anonymous upload, refused.
        status, _, body = post(lb, "signed-forms", {"key": "anon.txt"})
        assert status == 403 and error_code(body)[0] == "AccessDenied"
        # Only the bucket's own URL takes an unsigned form.
        body, headers = form(p["fields"])
        status, _, _ = send(lb.endpoint, "POST", "/signed-forms/v4.txt?uploads", body, headers)
        assert status == 403
        assert "Contents" not in s3.list_objects_v2(Bucket="signed-forms", Prefix="bad")


def test_form_uploads_are_notified_as_post(lakebox, s3):
    sqs = lakebox.client("sqs")
    url = sqs.create_queue(QueueName="form-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.create_bucket(Bucket="form-events")
    s3.put_bucket_notification_configuration(Bucket="form-events", NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]})
    p = s3.generate_presigned_post("form-events", "in/a.txt")
    assert post(lakebox, "form-events", p["fields"])[0] == 204
    names = []
    for _ in range(20):
        for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            names += [(r["eventName"], r["s3"]["object"]["key"]) for r in json.loads(m["Body"]).get("Records", [])]
        if names:
            break
    assert names == [("ObjectCreated:Post", "in/a.txt")]
