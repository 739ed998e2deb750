"""The generated operation layer, judged by the botocore models it was generated from.

For every service on the generated layer (scripts/codegen/services.toml), every operation of
the model either answers as an implemented operation (an answer botocore parses into the
operation's output, or a modelled error) or with AWS's UnknownOperationException. And values
just past the model's limits get AWS's ValidationException with AWS's exact message.
"""

import json
import os
import tomllib
import urllib.parse

import botocore.exceptions
import botocore.loaders
import botocore.model
import botocore.parsers
import botocore.serialize
import pytest
from botocore.config import Config

from signing import signed_request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
with open(os.path.join(ROOT, "scripts", "codegen", "services.toml"), "rb") as f:
    SERVICES = tomllib.load(f)["service"]

# Errors every awsJson service may answer though few models list them.
COMMON_ERRORS = {"ValidationException", "SerializationException", "InvalidArgumentException", "ValidationError",
                 "MalformedInput", "MissingParameter"}


def service_model(key):
    name, version = SERVICES[key]["model"].split("/")
    return botocore.model.ServiceModel(botocore.loaders.Loader().load_service_model(name, "service-2", version), name)


def protocol(model):
    """The protocol botocore speaks to the service (the first of the model's it supports)."""
    return getattr(model, "resolved_protocol", model.metadata["protocol"])


def call_raw(lakebox, model, operation, body):
    """`body` is the JSON body, or for awsQuery services the form's members; a restJson
    operation is sent where its URI template puts it, its path labels filled in."""
    meta = model.metadata
    service = meta.get("signingName", meta["endpointPrefix"])
    if protocol(model) == "rest-json":
        op = model.operation_model(operation)
        params = {}
        for name, m in (op.input_shape.members.items() if op.input_shape else []):
            if m.serialization.get("location") == "uri":
                params[name] = 1 if m.type_name in ("integer", "long") else "x"
        req = botocore.serialize.create_serializer("rest-json", include_validation=False).serialize_to_request(params, op)
        path = req["url_path"]
        if req["query_string"]:
            path += "?" + urllib.parse.urlencode(req["query_string"], doseq=True)
        return signed_request(lakebox.endpoint, method=req["method"], path=path, body=req["body"] or b"",
                              service=service, headers=req["headers"])
    if protocol(model) == "query":
        form = f"Action={operation}&Version={meta['apiVersion']}".encode() + (b"&" + body if body else b"")
        return signed_request(lakebox.endpoint, body=form, service=service, headers={
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    content_type = f"application/x-amz-json-{meta['jsonVersion']}"
    return signed_request(lakebox.endpoint, body=body, service=service, headers={
        "X-Amz-Target": f"{meta['targetPrefix']}.{operation}", "Content-Type": content_type})


# What AWS answers for an operation it does not know, by protocol.
UNKNOWN = {"json": "UnknownOperationException", "query": "InvalidAction", "rest-json": "UnknownOperationException"}


def parse(model, operation, status, headers, body):
    op = model.operation_model(operation)
    parser = botocore.parsers.create_parser(protocol(model))
    return parser.parse({"status_code": status, "headers": headers, "body": body}, op.output_shape)


@pytest.mark.parametrize("key", sorted(k for k, v in SERVICES.items()))
def test_every_model_operation_is_implemented_or_unknown(lakebox, key):
    model = service_model(key)
    allowed = set(SERVICES[key]["operations"])
    modelled_errors = {s for s in model.shape_names if model.shape_for(s).metadata.get("exception")}
    implemented, unknown = 0, 0
    for op in model.operation_names:
        if op == "SubscribeToShard":
            implemented += 1
            continue  # an event stream; covered by the Kinesis enhanced fan-out tests
        empty = b"" if protocol(model) == "query" else b"{}"
        status, headers, body = call_raw(lakebox, model, op, empty)
        parsed = parse(model, op, status, headers, body)
        code = parsed.get("Error", {}).get("Code")
        if op in allowed:
            implemented += 1
            assert code != UNKNOWN[protocol(model)], f"{key}.{op} is in the allow-list but unknown"
            if status >= 400:
                # A request with no members is refused with an error the model (or every
                # awsJson service) knows, never an internal one.
                assert status < 500 and code in modelled_errors | COMMON_ERRORS, (op, status, code)
            else:
                # Parsed into the output shape with every modelled member typed as botocore reads it.
                assert "Error" not in parsed, (op, parsed)
        else:
            unknown += 1
            assert status == 400 and code == UNKNOWN[protocol(model)], (op, status, body)
    assert implemented == len(allowed)
    assert implemented + unknown >= len(allowed)


@pytest.fixture(scope="module")
def kinesis(lakebox):
    # Client-side validation off: the server's answers are what is under test.
    return lakebox.client("kinesis", parameter_validation=False)


def message(e):
    return e.value.response["Error"]["Code"], e.value.response["Error"]["Message"]


def test_kinesis_limits_answer_aws_messages(kinesis):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kinesis.create_stream(StreamName="s" * 129, ShardCount=1)
    assert message(e) == ("ValidationException",
                          f"1 validation error detected: Value '{'s' * 129}' at 'streamName' failed to satisfy "
                          "constraint: Member must have length less than or equal to 128")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kinesis.create_stream(StreamName="bad name", ShardCount=0)
    assert message(e) == ("ValidationException",
                          "2 validation errors detected: Value 'bad name' at 'streamName' failed to satisfy "
                          "constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; "
                          "Value '0' at 'shardCount' failed to satisfy constraint: Member must have value "
                          "greater than or equal to 1")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kinesis.create_stream(StreamName="ok", StreamModeDetails={"StreamMode": "SOMETIMES"})
    assert message(e) == ("ValidationException",
                          "1 validation error detected: Value 'SOMETIMES' at 'streamModeDetails.streamMode' "
                          "failed to satisfy constraint: Member must satisfy enum value set: "
                          "[PROVISIONED, ON_DEMAND]")

    kinesis.create_stream(StreamName="limits", ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName="limits", WaiterConfig={"Delay": 0.1})
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kinesis.put_record(StreamName="limits", Data=b"x" * (1024 * 1024 + 1), PartitionKey="k")
    # The model allows 10 MiB (streams may raise MaxRecordSizeInKiB); a stream's default 1 MiB is
    # the handler's rule.
    code, msg = message(e)
    assert code == "ValidationException" and "at 'data' failed to satisfy constraint" in msg
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kinesis.put_records(StreamName="limits", Records=[{"Data": b"x", "PartitionKey": "k"}] * 501)
    code, msg = message(e)
    assert code == "ValidationException" and msg.startswith("1 validation error detected: Value ")
    assert msg.endswith("at 'records' failed to satisfy constraint: Member must have length less than or equal to 500")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kinesis.put_records(StreamName="limits", Records=[
            {"Data": b"x", "PartitionKey": "k"},
            {"Data": b"x", "PartitionKey": "", "ExplicitHashKey": "12x"}])
    # Failures are listed in the model's member order.
    assert message(e) == ("ValidationException",
                          "2 validation errors detected: Value '12x' at 'records.2.member.explicitHashKey' failed "
                          "to satisfy constraint: Member must satisfy regular expression pattern: "
                          "0|([1-9]\\d{0,38}); Value '' at 'records.2.member.partitionKey' failed to satisfy "
                          "constraint: Member must have length greater than or equal to 1")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kinesis.get_records(ShardIterator="x", Limit=10001)
    assert message(e) == ("ValidationException",
                          "1 validation error detected: Value '10001' at 'limit' failed to satisfy constraint: "
                          "Member must have value less than or equal to 10000")
    # Nothing refused was written.
    it = kinesis.get_shard_iterator(StreamName="limits", ShardId="shardId-000000000000",
                                    ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    assert kinesis.get_records(ShardIterator=it)["Records"] == []


def test_missing_members_and_undecodable_bodies(lakebox):
    model = service_model("kinesis")
    # A required member that is absent is a ValidationException (not a SerializationException),
    # listing every absent member.
    status, _, body = call_raw(lakebox, model, "PutRecord", json.dumps({"StreamName": "x", "Data": "eA=="}).encode())
    assert status == 400
    assert json.loads(body) == {
        "__type": "ValidationException",
        "message": "1 validation error detected: Value null at 'partitionKey' failed to satisfy constraint: "
                   "Member must not be null"}
    status, _, body = call_raw(lakebox, model, "GetShardIterator", b"{}")
    assert json.loads(body)["message"] == (
        "2 validation errors detected: Value null at 'shardId' failed to satisfy constraint: Member must not "
        "be null; Value null at 'shardIteratorType' failed to satisfy constraint: Member must not be null")
    # A body that is not JSON, or a member of the wrong type, is a SerializationException, in
    # the words AWS's JSON services use (none at all for text that is not JSON).
    for not_json in [b"{not json", b"null", b'"x"', b'{"Limit": 1,}']:
        status, _, body = call_raw(lakebox, model, "ListStreams", not_json)
        assert status == 400 and json.loads(body) == {"__type": "SerializationException"}, not_json
    for bad, message in [
        (b'{"Limit": "ten"}', "STRING_VALUE can not be converted to an Integer"),
        (b'{"Limit": true}', "TRUE_VALUE can not be converted to an Integer"),
        (b'{"Limit": [1]}', "Start of list found where not expected"),
        (b'{"Limit": {"a": 1}}', "Start of structure or map found where not expected."),
        (b'{"ExclusiveStartStreamName": 1}', "NUMBER_VALUE can not be converted to a String"),
        (b"[]", "Start of list found where not expected"),
    ]:
        status, _, body = call_raw(lakebox, model, "ListStreams", bad)
        assert status == 400 and json.loads(body) == {"__type": "SerializationException", "message": message}, bad
    status, _, body = call_raw(lakebox, model, "AddTagsToStream", b'{"StreamName": "x", "Tags": ["a"]}')
    assert json.loads(body)["message"] == "Start of list found where not expected"
    status, _, body = call_raw(lakebox, model, "RemoveTagsFromStream", b'{"StreamName": "x", "TagKeys": "a"}')
    assert json.loads(body)["message"] == "Expected list or null"


def test_query_service_answers_from_the_generated_shapes(lakebox):
    sts = lakebox.client("sts", access_key="123456789012")
    assert sts.get_caller_identity()["Arn"] == "arn:aws:iam::123456789012:root"
    out = lakebox.cli("sts", "get-caller-identity", access_key="123456789012")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"UserId": "123456789012", "Account": "123456789012",
                                      "Arn": "arn:aws:iam::123456789012:root"}


def test_operations_without_output_answer_an_empty_body(lakebox):
    kinesis = lakebox.client("kinesis")
    kinesis.create_stream(StreamName="empty-body", ShardCount=1)
    model = service_model("kinesis")
    status, _, body = call_raw(lakebox, model, "AddTagsToStream",
                               json.dumps({"StreamName": "empty-body", "Tags": {"k": "v"}}).encode())
    assert (status, body) == (200, b"")
    assert kinesis.list_tags_for_stream(StreamName="empty-body")["Tags"] == [{"Key": "k", "Value": "v"}]


def test_athena_limits_answer_athenas_own_error(lakebox):
    """Athena says InvalidRequestException with AthenaErrorCode INVALID_INPUT where most JSON
    services say ValidationException; the model's 262,144-byte QueryString limit is enforced."""
    lakebox.client("s3").create_bucket(Bucket="op-layer-athena")
    athena = lakebox.client("athena", parameter_validation=False)
    out = {"OutputLocation": "s3://op-layer-athena/r/"}
    with pytest.raises(botocore.exceptions.ClientError) as e:
        athena.start_query_execution(QueryString="SELECT 1 -- " + "x" * 262_133, ResultConfiguration=out)
    err = e.value.response["Error"]
    assert err["Code"] == "InvalidRequestException" and e.value.response["AthenaErrorCode"] == "INVALID_INPUT"
    assert err["Message"].startswith("1 validation error detected: Value 'SELECT 1 -- xxx")
    assert err["Message"].endswith("' at 'queryString' failed to satisfy constraint: "
                                   "Member must have length less than or equal to 262144")
    # At the limit the query runs.
    qid = athena.start_query_execution(QueryString="SELECT 1 -- " + "x" * 262_132, ResultConfiguration=out)[
        "QueryExecutionId"]
    assert athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Query"].startswith("SELECT 1")
    model = service_model("athena")
    status, _, body = call_raw(lakebox, model, "GetWorkGroup", b"{}")
    assert status == 400 and json.loads(body) == {
        "__type": "InvalidRequestException", "AthenaErrorCode": "INVALID_INPUT",
        "message": "1 validation error detected: Value null at 'workGroup' failed to satisfy constraint: "
                   "Member must not be null"}
    with pytest.raises(botocore.exceptions.ClientError) as e:
        athena.get_query_execution(QueryExecutionId="00000000-0000-4000-8000-000000000084")
    assert e.value.response["Error"]["Message"] == "QueryExecution 00000000-0000-4000-8000-000000000084 was not found"
    assert e.value.response["AthenaErrorCode"] == "QUERY_EXECUTION_NOT_FOUND"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        athena.create_work_group(Name="bad name")
    assert e.value.response["Error"]["Code"] == "InvalidRequestException"
    assert "at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern" in \
        e.value.response["Error"]["Message"]
