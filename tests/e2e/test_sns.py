"""SNS, judged by boto3 and the AWS CLI: topics and their attributes, subscriptions to SQS
queues, HTTP endpoints (confirmed, retried, signed — the signatures are verified here with the
certificate Lakebox serves, as subscribers verify AWS's), email and SMS (read back from Lakebox's
outbox), filter policies, raw delivery, FIFO topics into FIFO queues, PublishBatch, dead-letter
queues, S3 → SNS → SQS, and delivery across SIGKILL."""

import base64
import json
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import botocore.exceptions
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from lakebox_harness import Lakebox

ACCOUNT = "000000000000"


def code(e):
    return e.value.response["Error"]["Code"]


def message(e):
    return e.value.response["Error"]["Message"]


@pytest.fixture(scope="module")
def sns(lakebox):
    return lakebox.client("sns")


@pytest.fixture(scope="module")
def sqs(lakebox):
    return lakebox.client("sqs")


def queue(sqs, name, **attrs):
    url = sqs.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def drain(sqs, url, want, timeout=15, **kw):
    """Messages on the queue until `want` arrived or time ran out (deleted as read)."""
    got, deadline = [], time.time() + timeout
    while len(got) < want and time.time() < deadline:
        resp = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, **kw)
        for m in resp.get("Messages", []):
            got.append(m)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return got


def bodies(sqs, url, want, timeout=15):
    return [json.loads(m["Body"]) for m in drain(sqs, url, want, timeout)]


SIGNED_FIELDS = {
    "Notification": ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"],
    "SubscriptionConfirmation": ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"],
}


def verify_signature(doc):
    """Verifies an SNS message as AWS documents it: the canonical string of its fields, signed
    with the key of the certificate at SigningCertURL (SHA1withRSA or SHA256withRSA)."""
    pem = urllib.request.urlopen(doc["SigningCertURL"]).read()
    cert = x509.load_pem_x509_certificate(pem)
    text = "".join(f"{k}\n{doc[k]}\n" for k in SIGNED_FIELDS[doc["Type"]] if k in doc)
    digest = hashes.SHA1() if doc["SignatureVersion"] == "1" else hashes.SHA256()
    cert.public_key().verify(base64.b64decode(doc["Signature"]), text.encode(), padding.PKCS1v15(), digest)


def outbox(lakebox, endpoint=None):
    url = f"{lakebox.endpoint}/_lakebox/sns/outbox"
    if endpoint:
        url += "?endpoint=" + urllib.parse.quote(endpoint)
    return json.loads(urllib.request.urlopen(url).read())["messages"]


def wait_for(check, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.1)
    return check()


# ---- topics ---------------------------------------------------------------------------------

def test_topics_create_idempotently_and_report_attributes(sns):
    arn = sns.create_topic(Name="orders", Attributes={"DisplayName": "Orders"}, Tags=[{"Key": "team", "Value": "shop"}])["TopicArn"]
    assert arn == f"arn:aws:sns:us-east-1:{ACCOUNT}:orders"
    assert sns.create_topic(Name="orders", Attributes={"DisplayName": "Orders"})["TopicArn"] == arn
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sns.create_topic(Name="orders", Attributes={"DisplayName": "Other"})
    assert code(e) == "InvalidParameter"
    assert message(e) == "Invalid parameter: Attributes Reason: Topic already exists with different attributes"

    attrs = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    assert attrs["TopicArn"] == arn and attrs["Owner"] == ACCOUNT and attrs["DisplayName"] == "Orders"
    assert (attrs["SubscriptionsConfirmed"], attrs["SubscriptionsPending"], attrs["SubscriptionsDeleted"]) == ("0", "0", "0")
    policy = json.loads(attrs["Policy"])
    assert policy["Statement"][0]["Resource"] == arn
    assert json.loads(attrs["EffectiveDeliveryPolicy"])["http"]["defaultHealthyRetryPolicy"]["numRetries"] == 3
    assert "FifoTopic" not in attrs

    sns.set_topic_attributes(TopicArn=arn, AttributeName="SignatureVersion", AttributeValue="2")
    assert sns.get_topic_attributes(TopicArn=arn)["Attributes"]["SignatureVersion"] == "2"
    for name, value in (("SignatureVersion", "3"), ("NoSuchAttribute", "x"), ("ContentBasedDeduplication", "true"), ("Policy", "{not json")):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            sns.set_topic_attributes(TopicArn=arn, AttributeName=name, AttributeValue=value)
        assert code(e) == "InvalidParameter", name

    sns.tag_resource(ResourceArn=arn, Tags=[{"Key": "env", "Value": "dev"}])
    sns.untag_resource(ResourceArn=arn, TagKeys=["team"])
    assert sns.list_tags_for_resource(ResourceArn=arn)["Tags"] == [{"Key": "env", "Value": "dev"}]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sns.list_tags_for_resource(ResourceArn=f"arn:aws:sns:us-east-1:{ACCOUNT}:nope")
    assert code(e) == "ResourceNotFound"

    sns.add_permission(TopicArn=arn, Label="cross", AWSAccountId=["111122223333"], ActionName=["Publish"])
    statements = json.loads(sns.get_topic_attributes(TopicArn=arn)["Attributes"]["Policy"])["Statement"]
    assert statements[-1]["Sid"] == "cross" and statements[-1]["Principal"] == {"AWS": "arn:aws:iam::111122223333:root"}
    sns.remove_permission(TopicArn=arn, Label="cross")
    assert [s["Sid"] for s in json.loads(sns.get_topic_attributes(TopicArn=arn)["Attributes"]["Policy"])["Statement"]] == ["__default_statement_ID"]

    dpp = json.dumps({"Name": "p", "Description": "", "Version": "2021-06-01", "Statement": []})
    sns.put_data_protection_policy(ResourceArn=arn, DataProtectionPolicy=dpp)
    assert sns.get_data_protection_policy(ResourceArn=arn)["DataProtectionPolicy"] == dpp


def test_topic_errors_and_deletion(sns):
    for name in ("has space", "x" * 257, "plain.fifo"):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            sns.create_topic(Name=name)
        assert code(e) == "InvalidParameter", name
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sns.get_topic_attributes(TopicArn=f"arn:aws:sns:us-east-1:{ACCOUNT}:missing")
    assert (code(e), message(e)) == ("NotFound", "Topic does not exist")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sns.get_topic_attributes(TopicArn="not-an-arn")
    assert code(e) == "InvalidParameter"
    arn = sns.create_topic(Name="short-lived")["TopicArn"]
    sns.delete_topic(TopicArn=arn)
    sns.delete_topic(TopicArn=arn)  # deleting a topic that is gone is not an error
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sns.publish(TopicArn=arn, Message="x")
    assert code(e) == "NotFound"


def test_list_topics_pages_through_every_topic(sns):
    made = {sns.create_topic(Name=f"page-{i:03}")["TopicArn"] for i in range(105)}
    pages = list(sns.get_paginator("list_topics").paginate())
    assert len(pages) >= 2 and len(pages[0]["Topics"]) == 100
    listed = [t["TopicArn"] for p in pages for t in p["Topics"]]
    assert made <= set(listed) and len(listed) == len(set(listed))


def test_cli_creates_publishes_and_lists(lakebox, sqs):
    out = lakebox.cli("sns", "create-topic", "--name", "cli-topic")
    assert out.returncode == 0, out.stderr
    arn = json.loads(out.stdout)["TopicArn"]
    url, qarn = queue(sqs, "cli-topic-q")
    assert lakebox.cli("sns", "subscribe", "--topic-arn", arn, "--protocol", "sqs", "--notification-endpoint", qarn).returncode == 0
    out = lakebox.cli("sns", "publish", "--topic-arn", arn, "--message", "from the cli", "--subject", "hello")
    assert out.returncode == 0, out.stderr
    [doc] = bodies(sqs, url, 1)
    assert (doc["Message"], doc["Subject"], doc["MessageId"]) == ("from the cli", "hello", json.loads(out.stdout)["MessageId"])
    out = lakebox.cli("sns", "list-subscriptions-by-topic", "--topic-arn", arn)
    assert json.loads(out.stdout)["Subscriptions"][0]["Endpoint"] == qarn


# ---- SQS subscriptions ------------------------------------------------------------------------

def test_sqs_subscription_gets_the_signed_envelope(lakebox, sns, sqs):
    arn = sns.create_topic(Name="envelope")["TopicArn"]
    url, qarn = queue(sqs, "envelope-q")
    sub = sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=qarn)["SubscriptionArn"]
    assert sub.startswith(arn + ":")
    attrs = {"store": {"DataType": "String", "StringValue": "berlin"},
             "total": {"DataType": "Number", "StringValue": "42.5"},
             "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"}}
    published = sns.publish(TopicArn=arn, Message="order 1", Subject="New order", MessageAttributes=attrs)
    [m] = drain(sqs, url, 1, AttributeNames=["SenderId"])
    doc = json.loads(m["Body"])
    assert doc["Type"] == "Notification" and doc["MessageId"] == published["MessageId"]
    assert (doc["TopicArn"], doc["Subject"], doc["Message"]) == (arn, "New order", "order 1")
    assert doc["SignatureVersion"] == "1" and doc["Timestamp"].endswith("Z")
    assert doc["UnsubscribeURL"].startswith(f"{lakebox.endpoint}/?Action=Unsubscribe&SubscriptionArn=")
    assert doc["SigningCertURL"].startswith(f"{lakebox.endpoint}/_lakebox/sns/SimpleNotificationService-")
    assert doc["MessageAttributes"] == {"store": {"Type": "String", "Value": "berlin"},
                                        "total": {"Type": "Number", "Value": "42.5"},
                                        "blob": {"Type": "Binary", "Value": base64.b64encode(b"\x00\x01").decode()}}
    verify_signature(doc)
    # SignatureVersion 2 signs with SHA-256.
    sns.set_topic_attributes(TopicArn=arn, AttributeName="SignatureVersion", AttributeValue="2")
    sns.publish(TopicArn=arn, Message="order 2")
    [doc] = bodies(sqs, url, 1)
    assert doc["SignatureVersion"] == "2" and "Subject" not in doc
    verify_signature(doc)
    # A tampered message does not verify.
    doc["Message"] = "order 3"
    with pytest.raises(Exception):
        verify_signature(doc)

    sub_attrs = sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]
    assert (sub_attrs["Protocol"], sub_attrs["Endpoint"], sub_attrs["PendingConfirmation"], sub_attrs["RawMessageDelivery"]) == ("sqs", qarn, "false", "false")
    assert sns.get_topic_attributes(TopicArn=arn)["Attributes"]["SubscriptionsConfirmed"] == "1"
    # Subscribing again answers the same subscription.
    assert sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=qarn)["SubscriptionArn"] == sub
    sns.unsubscribe(SubscriptionArn=sub)
    assert sns.get_topic_attributes(TopicArn=arn)["Attributes"]["SubscriptionsDeleted"] == "1"
    sns.publish(TopicArn=arn, Message="nobody listens")
    assert drain(sqs, url, 1, timeout=2) == []
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sns.unsubscribe(SubscriptionArn=sub)
    assert code(e) == "NotFound"


def test_raw_delivery_and_per_protocol_messages(sns, sqs):
    arn = sns.create_topic(Name="raw")["TopicArn"]
    raw_url, raw_arn = queue(sqs, "raw-q")
    env_url, env_arn = queue(sqs, "env-q")
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=raw_arn, Attributes={"RawMessageDelivery": "true"})
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=env_arn)
    attrs = {"kind": {"DataType": "String", "StringValue": "order"}, "n": {"DataType": "Number", "StringValue": "7"}}
    sns.publish(TopicArn=arn, Message="plain body", MessageAttributes=attrs)
    [m] = drain(sqs, raw_url, 1, MessageAttributeNames=["All"])
    assert m["Body"] == "plain body"
    assert m["MessageAttributes"] == {"kind": {"StringValue": "order", "DataType": "String"},
                                      "n": {"StringValue": "7", "DataType": "Number"}}
    assert json.loads(drain(sqs, env_url, 1)[0]["Body"])["Message"] == "plain body"

    structured = json.dumps({"default": "for everyone", "sqs": "for queues", "email": "for people"})
    sns.publish(TopicArn=arn, Message=structured, MessageStructure="json")
    assert drain(sqs, raw_url, 1)[0]["Body"] == "for queues"
    assert json.loads(drain(sqs, env_url, 1)[0]["Body"])["Message"] == "for queues"
    for bad in ("not json", json.dumps({"sqs": "no default"})):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            sns.publish(TopicArn=arn, Message=bad, MessageStructure="json")
        assert code(e) == "InvalidParameter"


def test_publish_is_checked_as_sns_checks_it(sns):
    arn = sns.create_topic(Name="checked")["TopicArn"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sns.publish(TopicArn=arn, Message="x" * (256 * 1024 + 1))
    assert (code(e), message(e)) == ("InvalidParameter", "Invalid parameter: Message too long")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sns.publish(TopicArn=arn, Message="")
    assert message(e) == "Invalid parameter: Empty message"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sns.publish(TopicArn=arn, Message="x", Subject="line\nbreak")
    assert message(e) == "Invalid parameter: Subject"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sns.publish(TopicArn=arn, Message="x", MessageAttributes={"n": {"DataType": "Number", "StringValue": "abc"}})
    assert code(e) == "ParameterValueInvalid"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sns.publish(TopicArn=arn, Message="x", MessageAttributes={"n": {"DataType": "Date", "StringValue": "1"}})
    assert code(e) == "ParameterValueInvalid"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sns.publish(Message="x")
    assert code(e) == "InvalidParameter"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sns.subscribe(TopicArn=arn, Protocol="carrier-pigeon", Endpoint="x")
    assert message(e) == "Invalid parameter: Amazon SNS does not support this protocol string: carrier-pigeon"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint="arn:aws:sqs:us-east-1:000000000000:x.fifo")
    assert code(e) == "InvalidParameter"


# ---- filter policies ---------------------------------------------------------------------------

def test_filter_policies_on_attributes_and_body(sns, sqs):
    arn = sns.create_topic(Name="filtered")["TopicArn"]
    big_url, big_arn = queue(sqs, "big-orders")
    body_url, body_arn = queue(sqs, "paid-orders")
    policy = {"store": ["berlin", {"prefix": "ham"}], "total": [{"numeric": [">=", 100]}], "vip": [{"exists": False}]}
    big = sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=big_arn,
                        Attributes={"FilterPolicy": json.dumps(policy)})["SubscriptionArn"]
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=body_arn, Attributes={
        "FilterPolicy": json.dumps({"order": {"status": ["paid"], "lines": {"sku": [{"anything-but": ["free"]}]}}}),
        "FilterPolicyScope": "MessageBody"})

    def publish(body, **attrs):
        ma = {k: {"DataType": "Number" if isinstance(v, (int, float)) else "String", "StringValue": str(v)} for k, v in attrs.items()}
        sns.publish(TopicArn=arn, Message=json.dumps(body), MessageAttributes=ma)

    publish({"id": 1}, store="berlin", total=150)
    publish({"id": 2}, store="hamburg", total=100)
    publish({"id": 3}, store="munich", total=500)           # store does not match
    publish({"id": 4}, store="berlin", total=99.5)          # too small
    publish({"id": 5}, store="berlin", total=200, vip="y")  # vip must be absent
    publish({"id": 6, "order": {"status": "paid", "lines": [{"sku": "a"}, {"sku": "free"}]}})
    publish({"id": 7, "order": {"status": "open", "lines": [{"sku": "a"}]}})
    publish({"id": 8, "order": {"status": "paid", "lines": {"sku": "free"}}})
    got = sorted(json.loads(d["Message"])["id"] for d in bodies(sqs, big_url, 2))
    assert got == [1, 2]
    assert sorted(json.loads(d["Message"])["id"] for d in bodies(sqs, body_url, 1)) == [6]
    assert drain(sqs, big_url, 1, timeout=1) == [] and drain(sqs, body_url, 1, timeout=1) == []

    attrs = sns.get_subscription_attributes(SubscriptionArn=big)["Attributes"]
    assert json.loads(attrs["FilterPolicy"]) == policy and attrs["FilterPolicyScope"] == "MessageAttributes"
    sns.set_subscription_attributes(SubscriptionArn=big, AttributeName="FilterPolicy",
                                    AttributeValue=json.dumps({"$or": [{"store": ["munich"]}, {"total": [{"numeric": ["<", 1]}]}]}))
    publish({"id": 9}, store="munich", total=5)
    publish({"id": 10}, store="berlin", total=0.5)
    publish({"id": 11}, store="berlin", total=5)
    assert sorted(json.loads(d["Message"])["id"] for d in bodies(sqs, big_url, 2)) == [9, 10]
    for bad in ('{"a": []}', '{"a": [{"numeric": ["<"]}]}', '["x"]', '{"a": [{"teleport": 1}]}', "{nope"):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            sns.set_subscription_attributes(SubscriptionArn=big, AttributeName="FilterPolicy", AttributeValue=bad)
        assert code(e) == "InvalidParameter" and message(e).startswith("Invalid parameter: FilterPolicy"), bad


# ---- HTTP subscribers ---------------------------------------------------------------------------

class Endpoint:
    """A local HTTP subscriber: records every POST; answers the first `fail` notifications
    with 500."""

    def __init__(self, fail=0):
        self.requests, self.fail = [], fail
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append(({k.lower(): v for k, v in self.headers.items()}, body.decode()))
                failing = outer.fail > 0 and self.headers.get("x-amz-sns-message-type") == "Notification"
                outer.fail -= failing
                status = 500 if failing else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/sns"

    def of_type(self, kind):
        return [(h, json.loads(b)) for h, b in self.requests if h.get("x-amz-sns-message-type") == kind]

    def close(self):
        self.server.shutdown()


def test_http_subscription_confirms_and_receives_signed_notifications(sns):
    ep = Endpoint()
    try:
        arn = sns.create_topic(Name="webhooks")["TopicArn"]
        assert sns.subscribe(TopicArn=arn, Protocol="http", Endpoint=ep.url)["SubscriptionArn"] == "pending confirmation"
        [(headers, conf)] = wait_for(lambda: ep.of_type("SubscriptionConfirmation"))
        assert headers["x-amz-sns-topic-arn"] == arn and headers["user-agent"] == "Amazon Simple Notification Service Agent"
        assert conf["TopicArn"] == arn and conf["Token"] and conf["SubscribeURL"].startswith("http://127.0.0.1:")
        verify_signature(conf)
        listed = sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
        assert [s["SubscriptionArn"] for s in listed] == ["PendingConfirmation"]
        assert sns.get_topic_attributes(TopicArn=arn)["Attributes"]["SubscriptionsPending"] == "1"
        # Nothing is delivered before confirmation.
        sns.publish(TopicArn=arn, Message="too early")
        time.sleep(0.5)
        assert ep.of_type("Notification") == []

        # Visiting the SubscribeURL (unsigned, as a subscriber does) confirms it.
        answer = urllib.request.urlopen(conf["SubscribeURL"]).read().decode()
        assert "<ConfirmSubscriptionResult>" in answer
        [sub] = sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
        assert sub["SubscriptionArn"].startswith(arn + ":") and sub["Endpoint"] == ep.url
        published = sns.publish(TopicArn=arn, Message="hello web", Subject="hi",
                                MessageAttributes={"a": {"DataType": "String", "StringValue": "b"}})
        [(headers, note)] = wait_for(lambda: ep.of_type("Notification"))
        assert headers["x-amz-sns-message-id"] == published["MessageId"]
        assert headers["x-amz-sns-subscription-arn"] == sub["SubscriptionArn"]
        assert headers["content-type"].startswith("text/plain")
        assert (note["Message"], note["Subject"], note["MessageAttributes"]) == ("hello web", "hi", {"a": {"Type": "String", "Value": "b"}})
        verify_signature(note)

        # The UnsubscribeURL ends the subscription.
        urllib.request.urlopen(note["UnsubscribeURL"]).read()
        assert sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"] == []
    finally:
        ep.close()


def test_http_deliveries_are_retried_by_the_delivery_policy_then_dead_lettered(sns, sqs):
    flaky, dead = Endpoint(fail=2), Endpoint(fail=1000)
    try:
        arn = sns.create_topic(Name="retried")["TopicArn"]
        policy = {"healthyRetryPolicy": {"minDelayTarget": 1, "maxDelayTarget": 1, "numRetries": 3}}
        dlq_url, dlq_arn = queue(sqs, "webhook-dlq")
        for ep in (flaky, dead):
            sub = sns.subscribe(TopicArn=arn, Protocol="http", Endpoint=ep.url, ReturnSubscriptionArn=True,
                                Attributes={"DeliveryPolicy": json.dumps(policy),
                                            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn}),
                                            "RawMessageDelivery": "true"})["SubscriptionArn"]
            assert sub.startswith(arn + ":")
            conf = wait_for(lambda: [r for r in ep.requests if "SubscriptionConfirmation" in r[1]], timeout=20)
            token = json.loads(conf[0][1])["Token"]
            assert sns.confirm_subscription(TopicArn=arn, Token=token)["SubscriptionArn"] == sub
            effective = json.loads(sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]["EffectiveDeliveryPolicy"])
            assert effective["healthyRetryPolicy"]["numRetries"] == 3
        flaky.requests.clear()
        dead.requests.clear()
        sns.publish(TopicArn=arn, Message="keep trying")
        # Raw delivery: the body is the message itself. Two failures, then success.
        got = wait_for(lambda: [b for h, b in flaky.requests if b == "keep trying"][2:], timeout=20)
        assert got == ["keep trying"], [b for _, b in flaky.requests]
        assert all(h["x-amz-sns-rawdelivery"] == "true" for h, _ in flaky.requests)
        # The endpoint that always fails had 1 + 3 attempts, then the message went to the DLQ.
        [m] = drain(sqs, dlq_url, 1, timeout=20, MessageAttributeNames=["All"])
        assert m["Body"] == "keep trying" and m["MessageAttributes"]["ErrorCode"]["StringValue"] == "DeliveryFailed"
        assert len([b for _, b in dead.requests if b == "keep trying"]) == 4
        assert len([b for _, b in flaky.requests if b == "keep trying"]) == 3
    finally:
        flaky.close()
        dead.close()


# ---- email and SMS ------------------------------------------------------------------------------

def test_email_and_sms_land_in_the_outbox(lakebox, sns):
    arn = sns.create_topic(Name="alerts", Attributes={"DisplayName": "Alerts"})["TopicArn"]
    assert sns.subscribe(TopicArn=arn, Protocol="email", Endpoint="ops@example.com")["SubscriptionArn"] == "pending confirmation"
    [conf] = wait_for(lambda: outbox(lakebox, "ops@example.com"))
    assert conf["subject"] == "AWS Notification - Subscription Confirmation"
    url = next(line for line in conf["message"].splitlines() if line.startswith("http"))
    token = urllib.parse.parse_qs(urllib.parse.urlparse(url).query)["Token"][0]
    sub = sns.confirm_subscription(TopicArn=arn, Token=token)["SubscriptionArn"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sns.confirm_subscription(TopicArn=arn, Token="not-a-token")
    assert message(e) == "Invalid parameter: Invalid token"
    sms_sub = sns.subscribe(TopicArn=arn, Protocol="sms", Endpoint="+15555550100")["SubscriptionArn"]
    assert sms_sub.startswith(arn + ":")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sns.subscribe(TopicArn=arn, Protocol="email", Endpoint="not-an-address")
    assert message(e) == "Invalid parameter: Email address"

    published = sns.publish(TopicArn=arn, Message="disk almost full", Subject="Disk alarm")
    mails = wait_for(lambda: [m for m in outbox(lakebox, "ops@example.com") if m["messageId"] == published["MessageId"]])
    assert (mails[0]["subject"], mails[0]["message"], mails[0]["subscriptionArn"]) == ("Disk alarm", "disk almost full", sub)
    texts = wait_for(lambda: [m for m in outbox(lakebox, "+15555550100") if m["messageId"] == published["MessageId"]])
    assert texts[0]["protocol"] == "sms" and texts[0]["message"] == "disk almost full"

    direct = sns.publish(PhoneNumber="+15555550199", Message="your code is 1234")
    [text] = outbox(lakebox, "+15555550199")
    assert (text["message"], text["messageId"]) == ("your code is 1234", direct["MessageId"])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sns.publish(PhoneNumber="12", Message="x")
    assert code(e) == "InvalidParameter"
    sns.set_sms_attributes(attributes={"DefaultSMSType": "Transactional"})
    assert sns.get_sms_attributes()["attributes"] == {"DefaultSMSType": "Transactional"}
    assert sns.check_if_phone_number_is_opted_out(phoneNumber="+15555550100")["isOptedOut"] is False


# ---- FIFO and batches ---------------------------------------------------------------------------

def test_fifo_topic_keeps_order_and_deduplicates_into_a_fifo_queue(sns, sqs):
    arn = sns.create_topic(Name="ledger.fifo", Attributes={"FifoTopic": "true", "ContentBasedDeduplication": "true"})["TopicArn"]
    assert sns.get_topic_attributes(TopicArn=arn)["Attributes"]["FifoTopic"] == "true"
    url, qarn = queue(sqs, "ledger.fifo", FifoQueue="true")
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=qarn, Attributes={"RawMessageDelivery": "true"})
    seqs = []
    for i in range(12):
        r = sns.publish(TopicArn=arn, Message=f"{'ab'[i % 2]}-{i}", MessageGroupId="ab"[i % 2])
        seqs.append(int(r["SequenceNumber"]))
    assert seqs == sorted(seqs) and len(set(seqs)) == 12
    # The same content within five minutes is a duplicate: the same MessageId, delivered once.
    first = sns.publish(TopicArn=arn, Message="once", MessageGroupId="a")
    again = sns.publish(TopicArn=arn, Message="once", MessageGroupId="a")
    assert again["MessageId"] == first["MessageId"]
    got = []
    deadline = time.time() + 15
    while len(got) < 13 and time.time() < deadline:
        for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                     AttributeNames=["MessageGroupId"]).get("Messages", []):
            got.append((m["Attributes"]["MessageGroupId"], m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    for group in "ab":
        mine = [b for g, b in got if g == group]
        expected = [f"{group}-{i}" for i in range(12) if "ab"[i % 2] == group] + (["once"] if group == "a" else [])
        assert mine == expected
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sns.publish(TopicArn=arn, Message="no group")
    assert message(e) == "Invalid parameter: The MessageGroupId parameter is required for FIFO topics"
    plain = sns.create_topic(Name="plain-for-fifo")["TopicArn"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sns.publish(TopicArn=plain, Message="x", MessageDeduplicationId="d")
    assert code(e) == "InvalidParameter"


def test_publish_batch_reports_each_entry(sns, sqs):
    arn = sns.create_topic(Name="batched")["TopicArn"]
    url, qarn = queue(sqs, "batched-q")
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=qarn, Attributes={"RawMessageDelivery": "true"})
    resp = sns.publish_batch(TopicArn=arn, PublishBatchRequestEntries=[
        {"Id": "one", "Message": "m1"},
        {"Id": "two", "Message": "m2", "MessageAttributes": {"k": {"DataType": "String", "StringValue": "v"}}},
        {"Id": "bad", "Message": ""},
    ])
    assert sorted(e["Id"] for e in resp["Successful"]) == ["one", "two"]
    assert [(f["Id"], f["Code"], f["SenderFault"]) for f in resp["Failed"]] == [("bad", "InvalidParameter", True)]
    assert sorted(m["Body"] for m in drain(sqs, url, 2)) == ["m1", "m2"]
    for entries, err in (([], "EmptyBatchRequest"),
                         ([{"Id": str(i), "Message": "x"} for i in range(11)], "TooManyEntriesInBatchRequest"),
                         ([{"Id": "a", "Message": "x"}, {"Id": "a", "Message": "y"}], "BatchEntryIdsNotDistinct"),
                         ([{"Id": "no spaces", "Message": "x"}], "InvalidBatchEntryId"),
                         ([{"Id": str(i), "Message": "x" * 30000} for i in range(10)], "BatchRequestTooLong")):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            sns.publish_batch(TopicArn=arn, PublishBatchRequestEntries=entries)
        assert code(e) == err


# ---- S3 → SNS → SQS, and durability ----------------------------------------------------------

def test_s3_notifications_reach_queues_through_a_topic(lakebox, sns, sqs):
    s3 = lakebox.client("s3")
    arn = sns.create_topic(Name="s3-events")["TopicArn"]
    url, qarn = queue(sqs, "s3-fanout")
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=qarn)
    s3.create_bucket(Bucket="sns-landing")
    s3.put_bucket_notification_configuration(Bucket="sns-landing", NotificationConfiguration={"TopicConfigurations": [
        {"Id": "to-topic", "TopicArn": arn, "Events": ["s3:ObjectCreated:*"]}]})
    assert s3.get_bucket_notification_configuration(Bucket="sns-landing")["TopicConfigurations"][0]["TopicArn"] == arn
    [test] = bodies(sqs, url, 1)
    assert test["Subject"] == "Amazon S3 Notification" and json.loads(test["Message"])["Event"] == "s3:TestEvent"
    s3.put_object(Bucket="sns-landing", Key="in/a.csv", Body=b"1,2\n")
    [doc] = bodies(sqs, url, 1)
    verify_signature(doc)
    [record] = json.loads(doc["Message"])["Records"]
    assert (record["eventName"], record["s3"]["bucket"]["name"], record["s3"]["object"]["key"]) == ("ObjectCreated:Put", "sns-landing", "in/a.csv")


def test_published_messages_survive_sigkill(tmp_path):
    with Lakebox(tmp_path) as lb:
        sns, sqs = lb.client("sns"), lb.client("sqs")
        arn = sns.create_topic(Name="durable")["TopicArn"]
        url, qarn = queue(sqs, "durable-q")
        sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=qarn, Attributes={"RawMessageDelivery": "true"})
        sent = set()
        for i in range(100):
            sns.publish(TopicArn=arn, Message=f"m{i}")
            sent.add(f"m{i}")
        lb.kill()
    with Lakebox(tmp_path) as lb:
        sqs = lb.client("sqs")
        got, deadline = set(), time.time() + 20
        while got != sent and time.time() < deadline:
            got |= {m["Body"] for m in drain(sqs, url, 10, timeout=2)}
        # At least once: every acknowledged message arrives (a few may arrive twice).
        assert got == sent
        assert lb.client("sns").list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"][0]["Endpoint"] == qarn


def test_subscription_listings_page(sns):
    arn = sns.create_topic(Name="many-subscribers")["TopicArn"]
    made = {sns.subscribe(TopicArn=arn, Protocol="sms", Endpoint=f"+1555000{i:04}")["SubscriptionArn"] for i in range(105)}
    pages = list(sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=arn))
    assert [len(p["Subscriptions"]) for p in pages] == [100, 5]
    assert {s["SubscriptionArn"] for p in pages for s in p["Subscriptions"]} == made
    everywhere = {s["SubscriptionArn"] for p in sns.get_paginator("list_subscriptions").paginate() for s in p["Subscriptions"]}
    assert made <= everywhere
    assert sns.get_topic_attributes(TopicArn=arn)["Attributes"]["SubscriptionsConfirmed"] == "105"


def test_firehose_subscription_lands_in_s3(lakebox, sns):
    firehose, s3 = lakebox.client("firehose"), lakebox.client("s3")
    s3.create_bucket(Bucket="sns-archive")
    arn = firehose.create_delivery_stream(
        DeliveryStreamName="sns-to-s3", DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "BucketARN": "arn:aws:s3:::sns-archive", "RoleARN": "arn:aws:iam::000000000000:role/f",
            "BufferingHints": {"IntervalInSeconds": 0, "SizeInMBs": 1}})["DeliveryStreamARN"]
    deadline = time.time() + 10
    while firehose.describe_delivery_stream(DeliveryStreamName="sns-to-s3")[
            "DeliveryStreamDescription"]["DeliveryStreamStatus"] != "ACTIVE" and time.time() < deadline:
        time.sleep(0.1)
    topic = sns.create_topic(Name="orders-to-lake")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="firehose", Endpoint=arn, ReturnSubscriptionArn=True,
                  Attributes={"SubscriptionRoleArn": "arn:aws:iam::000000000000:role/sns", "RawMessageDelivery": "true"})
    sns.publish(TopicArn=topic, Message='{"order": 42}')

    def landed():
        return [s3.get_object(Bucket="sns-archive", Key=o["Key"])["Body"].read()
                for o in s3.list_objects_v2(Bucket="sns-archive").get("Contents", [])]
    deadline = time.time() + 15
    while not landed() and time.time() < deadline:
        time.sleep(0.2)
    assert landed() == [b'{"order": 42}']
