"""A panicking handler costs one 500, logged with its request id; the server goes on."""

import json

from signing import send, signed_request


def test_panic_in_rpc_service_is_isolated(lakebox):
    for _ in range(3):
        status, headers, body = signed_request(lakebox.endpoint, body=b"{}", service="lakeboxtest", headers={
            "X-Amz-Target": "LakeboxTest_20260101.Panic", "Content-Type": "application/x-amz-json-1.1"})
        assert status == 500
        assert json.loads(body)["__type"] == "InternalFailure"
        assert headers["x-amzn-requestid"]
    assert lakebox.client("sts").get_caller_identity()["Account"] == "000000000000"


def test_panic_in_http_route_is_isolated(lakebox):
    status, headers, body = send(lakebox.endpoint, "POST", "/_lakebox/test/panic")
    assert status == 500 and json.loads(body)["__type"] == "InternalFailure"
    assert lakebox.health()["status"] == "running"


def test_panic_is_logged_with_request_id(tmp_path):
    from lakebox_harness import Lakebox
    lb = Lakebox(tmp_path).start()
    status, headers, _ = signed_request(lb.endpoint, body=b"{}", service="lakeboxtest", headers={
        "X-Amz-Target": "LakeboxTest_20260101.Panic", "Content-Type": "application/x-amz-json-1.1"})
    assert status == 500
    assert lb.stop() == 0
    log = lb.stderr()
    assert "panicked" in log and headers["x-amzn-requestid"] in log
