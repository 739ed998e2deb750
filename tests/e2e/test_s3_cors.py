"""S3 CORS: the configuration stored and checked as PutBucketCors does, preflights (unsigned
OPTIONS, as browsers send them) answered from the rules with S3's headers and errors, and the
Access-Control headers on the actual requests the rules allow."""

import xml.etree.ElementTree as ET

import botocore.exceptions
import pytest

from lakebox_harness import Lakebox
from signing import send

APP = "http://app.example.com"
RULES = [
    {"AllowedOrigins": ["http://*.example.com"], "AllowedMethods": ["GET", "PUT"],
     "AllowedHeaders": ["content-type", "x-amz-*"], "ExposeHeaders": ["ETag", "x-amz-version-id"],
     "MaxAgeSeconds": 3000},
    {"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]},
]
NOT_ALLOWED = ("CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, "
               "request method / Access-Control-Request-Method or Access-Control-Request-Headers are not "
               "whitelisted by the resource's CORS spec.")


def preflight(endpoint, path, origin=APP, method="PUT", headers=None):
    h = {}
    if origin:
        h["Origin"] = origin
    if method:
        h["Access-Control-Request-Method"] = method
    if headers:
        h["Access-Control-Request-Headers"] = headers
    return send(endpoint, "OPTIONS", path, b"", h)


def with_origin(client, origin):
    def add(request, **_):
        request.headers["Origin"] = origin
    client.meta.events.register("before-sign.s3", add)
    return client


@pytest.fixture
def site(lakebox):
    s3 = lakebox.client("s3")
    s3.create_bucket(Bucket="site")
    s3.put_object(Bucket="site", Key="index.html", Body=b"<h1>hi</h1>")
    s3.put_bucket_cors(Bucket="site", CORSConfiguration={"CORSRules": RULES})
    return s3


def test_configuration_round_trips_and_is_checked(site):
    got = site.get_bucket_cors(Bucket="site")["CORSRules"]
    assert [r["AllowedOrigins"] for r in got] == [["http://*.example.com"], ["*"]]
    assert got[0]["AllowedMethods"] == ["GET", "PUT"] and got[0]["MaxAgeSeconds"] == 3000
    assert got[0]["ExposeHeaders"] == ["ETag", "x-amz-version-id"]
    bad = [
        ({"AllowedOrigins": ["*"], "AllowedMethods": ["PATCH"]},
         "Found unsupported HTTP method in CORS config. Unsupported method is PATCH"),
        ({"AllowedOrigins": ["http://*.*.com"], "AllowedMethods": ["GET"]},
         'AllowedOrigin "http://*.*.com" can not have more than one wildcard.'),
    ]
    for rule, message in bad:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            site.put_bucket_cors(Bucket="site", CORSConfiguration={"CORSRules": [rule]})
        assert e.value.response["Error"]["Code"] == "InvalidRequest"
        assert e.value.response["Error"]["Message"] == message
    # A refused configuration leaves the stored one as it was.
    assert len(site.get_bucket_cors(Bucket="site")["CORSRules"]) == 2


def test_preflight_allowed_by_a_rule(lakebox, site):
    status, h, body = preflight(lakebox.endpoint, "/site/index.html", headers="Content-Type, X-Amz-Date")
    assert status == 200 and body == b""
    assert h["access-control-allow-origin"] == APP
    assert h["access-control-allow-methods"] == "GET, PUT"
    assert h["access-control-allow-headers"] == "Content-Type, X-Amz-Date"
    assert h["access-control-expose-headers"] == "ETag, x-amz-version-id"
    assert h["access-control-max-age"] == "3000"
    assert h["access-control-allow-credentials"] == "true"
    assert "Origin" in h["vary"]
    # Any other origin may GET (the `*` rule): answered with `*` and without credentials.
    status, h, _ = preflight(lakebox.endpoint, "/site/index.html", origin="https://elsewhere.org", method="GET")
    assert status == 200 and h["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in h and "access-control-max-age" not in h


@pytest.mark.parametrize("origin,method,headers", [
    ("https://elsewhere.org", "PUT", None),       # the `*` rule allows GET only
    ("http://example.com", "PUT", None),           # `*.example.com` needs a subdomain
    ("HTTP://APP.EXAMPLE.COM", "PUT", None),       # origins are case sensitive
    (APP, "DELETE", None),                         # no rule allows DELETE
    (APP, "PUT", "content-type, authorization"),   # a header no rule allows
])
def test_preflight_no_rule_allows(lakebox, site, origin, method, headers):
    status, h, body = preflight(lakebox.endpoint, "/site/index.html", origin, method, headers)
    assert status == 403
    assert b"<Code>AccessForbidden</Code>" in body and ET.fromstring(body).findtext("Message") == NOT_ALLOWED
    assert f"<Method>{method}</Method>".encode() in body and b"<ResourceType>OBJECT</ResourceType>" in body
    assert "access-control-allow-origin" not in h


def test_preflight_errors(lakebox, site):
    status, _, body = preflight(lakebox.endpoint, "/site/index.html", origin=None)
    assert status == 400 and b"<Code>BadRequest</Code>" in body
    assert b"Insufficient information. Origin request header needed." in body
    status, _, body = preflight(lakebox.endpoint, "/site/index.html", method=None)
    assert status == 400 and b"Invalid Access-Control-Request-Method: null" in body
    status, _, body = preflight(lakebox.endpoint, "/nosuchbucket/x")
    assert status == 403 and b"CORSResponse: Bucket not found" in body
    site.create_bucket(Bucket="plain")
    status, _, body = preflight(lakebox.endpoint, "/plain")
    assert status == 403 and b"<Code>AccessForbidden</Code>" in body
    assert b"CORSResponse: CORS is not enabled for this bucket." in body
    assert b"<ResourceType>BUCKET</ResourceType>" in body
    site.delete_bucket_cors(Bucket="site")
    status, _, body = preflight(lakebox.endpoint, "/site/index.html")
    assert status == 403 and b"CORS is not enabled for this bucket." in body


def test_actual_requests_carry_the_allowed_headers(lakebox, site):
    app = with_origin(lakebox.client("s3"), APP)
    got = app.get_object(Bucket="site", Key="index.html")
    assert got["Body"].read() == b"<h1>hi</h1>"
    h = got["ResponseMetadata"]["HTTPHeaders"]
    assert h["access-control-allow-origin"] == APP
    assert h["access-control-expose-headers"] == "ETag, x-amz-version-id"
    # Errors carry them too, so the page can read the error.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        app.get_object(Bucket="site", Key="missing")
    assert e.value.response["Error"]["Code"] == "NoSuchKey"
    assert e.value.response["ResponseMetadata"]["HTTPHeaders"]["access-control-allow-origin"] == APP
    # A method no rule allows for the origin gets no CORS headers; the request itself still runs.
    deleted = app.delete_object(Bucket="site", Key="index.html")
    assert "access-control-allow-origin" not in deleted["ResponseMetadata"]["HTTPHeaders"]
    # Without an Origin, nothing is added.
    plain = site.list_objects_v2(Bucket="site")
    assert "access-control-allow-origin" not in plain["ResponseMetadata"]["HTTPHeaders"]
    assert plain["KeyCount"] == 0


def test_unsigned_preflight_is_answered_when_signatures_are_required(tmp_path):
    with Lakebox(tmp_path, "--credentials", "AKIDCORS:secretcors") as lb:
        s3 = lb.client("s3", access_key="AKIDCORS", secret="secretcors")
        s3.create_bucket(Bucket="site")
        s3.put_bucket_cors(Bucket="site", CORSConfiguration={"CORSRules": RULES})
        status, h, _ = preflight(lb.endpoint, "/site/index.html")
        assert status == 200 and h["access-control-allow-origin"] == APP
        # Anything else unsigned is still refused.
        status, _, body = send(lb.endpoint, "GET", "/site/index.html", b"", {"Origin": APP})
        assert status == 403 and b"AccessDenied" in body
