"""Raw, SigV4-signed HTTP requests for cases boto3 cannot express (unknown targets, CBOR,
malformed bodies, skewed clocks)."""

from __future__ import annotations

import datetime
import http.client
from unittest import mock
from urllib.parse import urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def signing_time(at: datetime.datetime):
    """Makes botocore sign as if the clock read `at` (naive UTC)."""
    return mock.patch("botocore.auth.get_current_datetime", return_value=at.replace(tzinfo=None))


def signed_request(endpoint, method="POST", path="/", body=b"", headers=None, service="kinesis",
                   region="us-east-1", access_key="test", secret="test", at: datetime.datetime | None = None):
    req = AWSRequest(method=method, url=endpoint + path, data=body, headers=dict(headers or {}))
    signer = SigV4Auth(Credentials(access_key, secret), service, region)
    if at is None:
        signer.add_auth(req)
    else:
        with signing_time(at):
            signer.add_auth(req)
    return send(endpoint, method, path, body, dict(req.headers.items()))


def send(endpoint, method, path, body=b"", headers=None):
    u = urlsplit(endpoint)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()
