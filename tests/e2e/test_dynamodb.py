"""DynamoDB, judged by boto3 (its low-level client and its resource layer with boto3's
condition builders), the AWS CLI, and a SIGKILL: tables, every attribute type, the expression
language, Query / Scan paging, indexes, batches, transactions and AWS's errors."""

import datetime
import decimal
import json
import os
import signal
import subprocess
import sys
import threading
import time

import boto3
import botocore.exceptions
import pytest
from boto3.dynamodb.conditions import Attr, Key

from lakebox_harness import Lakebox


@pytest.fixture(scope="module")
def ddb(lakebox):
    return lakebox.client("dynamodb")


@pytest.fixture(scope="module")
def resource(lakebox):
    return boto3.resource(
        "dynamodb",
        endpoint_url=lakebox.endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def error(call):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call()
    return e.value.response["Error"]["Code"], e.value.response["Error"]["Message"], e.value.response


def orders_table(ddb, name):
    ddb.create_table(
        TableName=name,
        AttributeDefinitions=[
            {"AttributeName": "customer", "AttributeType": "S"},
            {"AttributeName": "order_id", "AttributeType": "N"},
            {"AttributeName": "status", "AttributeType": "S"},
            {"AttributeName": "placed", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "customer", "KeyType": "HASH"},
            {"AttributeName": "order_id", "KeyType": "RANGE"},
        ],
        LocalSecondaryIndexes=[
            {
                "IndexName": "by_placed",
                "KeySchema": [
                    {"AttributeName": "customer", "KeyType": "HASH"},
                    {"AttributeName": "placed", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by_status",
                "KeySchema": [
                    {"AttributeName": "status", "KeyType": "HASH"},
                    {"AttributeName": "order_id", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["price"]},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1})


def test_create_describe_list_delete_tables(ddb, lakebox):
    out = ddb.create_table(
        TableName="t_admin",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 7},
        Tags=[{"Key": "team", "Value": "data"}],
        DeletionProtectionEnabled=True,
    )["TableDescription"]
    assert out["TableStatus"] == "CREATING"
    assert out["TableArn"] == "arn:aws:dynamodb:us-east-1:000000000000:table/t_admin"
    ddb.get_waiter("table_exists").wait(TableName="t_admin", WaiterConfig={"Delay": 1, "MaxAttempts": 5})
    desc = ddb.describe_table(TableName="t_admin")["Table"]
    assert desc["TableStatus"] == "ACTIVE"
    assert desc["ProvisionedThroughput"]["ReadCapacityUnits"] == 5
    assert desc["ProvisionedThroughput"]["WriteCapacityUnits"] == 7
    assert desc["ItemCount"] == 0 and desc["DeletionProtectionEnabled"] is True
    code, msg, _ = error(lambda: ddb.create_table(
        TableName="t_admin",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    ))
    assert (code, msg) == ("ResourceInUseException", "Table already exists: t_admin")
    assert ddb.list_tags_of_resource(ResourceArn=desc["TableArn"])["Tags"] == [{"Key": "team", "Value": "data"}]
    ddb.tag_resource(ResourceArn=desc["TableArn"], Tags=[{"Key": "env", "Value": "test"}])
    ddb.untag_resource(ResourceArn=desc["TableArn"], TagKeys=["team"])
    assert ddb.list_tags_of_resource(ResourceArn=desc["TableArn"])["Tags"] == [{"Key": "env", "Value": "test"}]
    code, msg, _ = error(lambda: ddb.delete_table(TableName="t_admin"))
    assert code == "ValidationException" and "protected against deletion" in msg
    ddb.update_table(TableName="t_admin", DeletionProtectionEnabled=False, BillingMode="PAY_PER_REQUEST")
    assert ddb.describe_table(TableName="t_admin")["Table"]["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    for i in range(5):
        ddb.create_table(
            TableName=f"t_page_{i}",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
    names = []
    for page in ddb.get_paginator("list_tables").paginate(PaginationConfig={"PageSize": 2}):
        names += page["TableNames"]
    assert [n for n in names if n.startswith("t_page_")] == [f"t_page_{i}" for i in range(5)]
    assert ddb.delete_table(TableName="t_admin")["TableDescription"]["TableStatus"] == "DELETING"
    ddb.get_waiter("table_not_exists").wait(TableName="t_admin", WaiterConfig={"Delay": 1, "MaxAttempts": 5})
    code, msg, _ = error(lambda: ddb.describe_table(TableName="t_admin"))
    assert (code, msg) == ("ResourceNotFoundException", "Requested resource not found: Table: t_admin not found")
    limits = ddb.describe_limits()
    assert limits["TableMaxReadCapacityUnits"] == 40000
    assert ddb.describe_endpoints()["Endpoints"][0]["CachePeriodInMinutes"] == 1440


def test_create_table_is_checked_as_aws_checks_it(ddb):
    base = dict(
        TableName="t_bad",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
    )
    code, msg, _ = error(lambda: ddb.create_table(**base))
    assert code == "ValidationException"
    assert msg.endswith("ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED")
    code, msg, _ = error(lambda: ddb.create_table(**{**base, "KeySchema": [{"AttributeName": "nope", "KeyType": "HASH"}], "BillingMode": "PAY_PER_REQUEST"}))
    assert "Some index key attributes are not defined in AttributeDefinitions" in msg
    code, msg, _ = error(lambda: ddb.create_table(**{
        **base,
        "AttributeDefinitions": base["AttributeDefinitions"] + [{"AttributeName": "extra", "AttributeType": "N"}],
        "BillingMode": "PAY_PER_REQUEST",
    }))
    assert msg.endswith("Number of attributes in KeySchema does not exactly match number of attributes defined in AttributeDefinitions")
    code, msg, _ = error(lambda: ddb.create_table(**{**base, "TableName": "a b", "BillingMode": "PAY_PER_REQUEST"}))
    assert code == "ValidationException" and "at 'tableName' failed to satisfy constraint" in msg


def test_every_attribute_type_round_trips_with_numbers_normalised(ddb):
    ddb.create_table(
        TableName="t_types",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "B"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    item = {
        "pk": {"B": b"\x00\x01key"},
        "s": {"S": "héllo"},
        "empty": {"S": ""},
        "n": {"N": "000123.4500"},
        "big": {"N": "12345678901234567890123456789012345678"},
        "tiny": {"N": "1E-130"},
        "b": {"B": b"\xff\x00"},
        "ss": {"SS": ["a", "b"]},
        "ns": {"NS": ["1", "2.50"]},
        "bs": {"BS": [b"x", b"y"]},
        "m": {"M": {"inner": {"L": [{"NULL": True}, {"BOOL": False}, {"N": "-0"}]}}},
    }
    ddb.put_item(TableName="t_types", Item=item)
    got = ddb.get_item(TableName="t_types", Key={"pk": {"B": b"\x00\x01key"}}, ConsistentRead=True)["Item"]
    assert got["n"] == {"N": "123.45"}
    assert got["big"] == {"N": "12345678901234567890123456789012345678"}
    assert got["tiny"]["N"] == "0." + "0" * 129 + "1"
    assert got["m"] == {"M": {"inner": {"L": [{"NULL": True}, {"BOOL": False}, {"N": "0"}]}}}
    assert sorted(got["ns"]["NS"]) == ["1", "2.5"]
    assert got["b"] == {"B": b"\xff\x00"} and sorted(got["bs"]["BS"]) == [b"x", b"y"]
    assert got["s"] == {"S": "héllo"} and got["empty"] == {"S": ""}
    assert ddb.describe_table(TableName="t_types")["Table"]["ItemCount"] == 1
    cases = [
        ({"x": {"N": "123456789012345678901234567890123456789"}}, "Attempting to store more than 38 significant digits in a Number"),
        ({"x": {"N": "1e126"}}, "Number overflow. Attempting to store a number with magnitude larger than supported range"),
        ({"x": {"N": "abc"}}, "The parameter cannot be converted to a numeric value: abc"),
        ({"x": {"SS": []}}, "One or more parameter values were invalid: An string set  may not be empty"),
        ({"x": {"SS": ["a", "a"]}}, "One or more parameter values were invalid: Input collection [a, a] contains duplicates."),
        ({"x": {}}, "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes"),
        ({"x": {"S": "a", "N": "1"}}, "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes"),
    ]
    for extra, message in cases:
        code, msg, _ = error(lambda: ddb.put_item(TableName="t_types", Item={"pk": {"B": b"k"}, **extra}))
        assert (code, msg) == ("ValidationException", message)
    code, msg, _ = error(lambda: ddb.put_item(TableName="t_types", Item={"pk": {"S": "wrong"}}))
    assert msg == "One or more parameter values were invalid: Type mismatch for key pk expected: B actual: S"
    code, msg, _ = error(lambda: ddb.put_item(TableName="t_types", Item={"pk": {"B": b"k"}, "big": {"S": "x" * 400 * 1024}}))
    assert msg == "Item size has exceeded the maximum allowed size"
    code, msg, _ = error(lambda: ddb.get_item(TableName="t_types", Key={"nope": {"B": b"k"}}))
    assert msg == "The provided key element does not match the schema"
    code, msg, _ = error(lambda: ddb.get_item(TableName="no_such_table", Key={"pk": {"B": b"k"}}))
    assert (code, msg) == ("ResourceNotFoundException", "Requested resource not found")


def test_conditional_writes_and_return_values(ddb):
    orders_table(ddb, "t_cond")
    key = {"customer": {"S": "ann"}, "order_id": {"N": "1"}}
    ddb.put_item(
        TableName="t_cond",
        Item={**key, "price": {"N": "10"}, "placed": {"S": "2026-12-01"}},
        ConditionExpression="attribute_not_exists(customer)",
    )
    code, msg, resp = error(lambda: ddb.put_item(
        TableName="t_cond",
        Item={**key, "price": {"N": "99"}},
        ConditionExpression="attribute_not_exists(customer)",
        ReturnValuesOnConditionCheckFailure="ALL_OLD",
    ))
    assert (code, msg) == ("ConditionalCheckFailedException", "The conditional request failed")
    assert resp["Item"]["price"] == {"N": "10"}, "the item as it was, when asked for"
    old = ddb.put_item(
        TableName="t_cond",
        Item={**key, "price": {"N": "12"}, "placed": {"S": "2026-12-01"}},
        ConditionExpression="#t < :limit AND begins_with(placed, :month)",
        ExpressionAttributeNames={"#t": "price"},
        ExpressionAttributeValues={":limit": {"N": "11"}, ":month": {"S": "2026-12"}},
        ReturnValues="ALL_OLD",
    )["Attributes"]
    assert old["price"] == {"N": "10"}
    metrics = ddb.put_item(TableName="t_cond", Item={**key, "price": {"N": "12"}, "placed": {"S": "2026-12-01"}},
                           ReturnItemCollectionMetrics="SIZE")["ItemCollectionMetrics"]
    assert metrics == {"ItemCollectionKey": {"customer": {"S": "ann"}}, "SizeEstimateRangeGB": [0.0, 1.0]}
    deleted = ddb.delete_item(
        TableName="t_cond", Key=key, ConditionExpression="price = :t",
        ExpressionAttributeValues={":t": {"N": "12"}}, ReturnValues="ALL_OLD",
    )["Attributes"]
    assert deleted["price"] == {"N": "12"}
    assert "Item" not in ddb.get_item(TableName="t_cond", Key=key)
    # Expected, the legacy form older SDKs send.
    ddb.put_item(TableName="t_cond", Item={**key, "v": {"N": "1"}}, Expected={"customer": {"Exists": False}})
    code, _, _ = error(lambda: ddb.put_item(TableName="t_cond", Item=key, Expected={"v": {"Value": {"N": "2"}}}))
    assert code == "ConditionalCheckFailedException"
    ddb.put_item(TableName="t_cond", Item=key, Expected={"v": {"ComparisonOperator": "EQ", "AttributeValueList": [{"N": "1"}]}})


def test_update_expressions(ddb):
    ddb.create_table(
        TableName="t_upd",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    key = {"id": {"S": "a"}}
    out = ddb.update_item(
        TableName="t_upd",
        Key=key,
        UpdateExpression="SET cnt = if_not_exists(cnt, :zero) + :one, tags = :tags, doc = :doc ADD seen :s",
        ExpressionAttributeValues={
            ":zero": {"N": "0"}, ":one": {"N": "1"}, ":tags": {"L": [{"S": "x"}]},
            ":doc": {"M": {"a": {"M": {"b": {"N": "1"}}}, "lst": {"L": [{"N": "0"}, {"N": "1"}, {"N": "2"}]}}},
            ":s": {"SS": ["p"]},
        },
        ReturnValues="ALL_NEW",
    )["Attributes"]
    assert out["cnt"] == {"N": "1"} and out["id"] == key["id"]
    out = ddb.update_item(
        TableName="t_upd",
        Key=key,
        UpdateExpression="SET cnt = cnt + :one, tags = list_append(tags, :more), doc.a.b = doc.a.b - :half, doc.#nw = :v "
        "REMOVE doc.lst[0], doc.lst[2] ADD seen :s2 DELETE gone :g",
        ExpressionAttributeNames={"#nw": "new"},
        ExpressionAttributeValues={
            ":one": {"N": "1"}, ":more": {"L": [{"S": "y"}]}, ":half": {"N": "0.5"}, ":v": {"BOOL": True},
            ":s2": {"SS": ["q", "p"]}, ":g": {"SS": ["nothing"]},
        },
        ReturnValues="UPDATED_NEW",
    )["Attributes"]
    assert out["cnt"] == {"N": "2"}
    assert out["tags"] == {"L": [{"S": "x"}, {"S": "y"}]}
    item = ddb.get_item(TableName="t_upd", Key=key)["Item"]
    assert item["doc"]["M"]["a"] == {"M": {"b": {"N": "0.5"}}}
    assert item["doc"]["M"]["new"] == {"BOOL": True}
    assert item["doc"]["M"]["lst"] == {"L": [{"N": "1"}]}
    assert sorted(item["seen"]["SS"]) == ["p", "q"]
    ddb.update_item(TableName="t_upd", Key=key, UpdateExpression="DELETE seen :all", ExpressionAttributeValues={":all": {"SS": ["p", "q"]}})
    assert "seen" not in ddb.get_item(TableName="t_upd", Key=key)["Item"], "an emptied set is removed"
    # AttributeUpdates, the legacy form.
    ddb.update_item(TableName="t_upd", Key=key, AttributeUpdates={"cnt": {"Action": "ADD", "Value": {"N": "10"}}, "tags": {"Action": "DELETE"}})
    item = ddb.get_item(TableName="t_upd", Key=key)["Item"]
    assert item["cnt"] == {"N": "12"} and "tags" not in item
    errors = [
        (dict(UpdateExpression="SET id = :v", ExpressionAttributeValues={":v": {"S": "b"}}),
         "One or more parameter values were invalid: Cannot update attribute id. This attribute is part of the key"),
        (dict(UpdateExpression="SET cnt = cnt + :v", ExpressionAttributeValues={":v": {"S": "b"}}),
         "An operand in the update expression has an incorrect data type"),
        (dict(UpdateExpression="SET a = :v, a.b = :v", ExpressionAttributeValues={":v": {"S": "b"}}),
         "Invalid UpdateExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a, b]"),
        (dict(UpdateExpression="SET name = :v", ExpressionAttributeValues={":v": {"S": "b"}}),
         "Invalid UpdateExpression: Attribute name is a reserved keyword; reserved keyword: name"),
        (dict(UpdateExpression="SET a = :v", ExpressionAttributeValues={":v": {"S": "b"}, ":unused": {"S": "c"}}),
         "Value provided in ExpressionAttributeValues unused in expressions: keys: {:unused}"),
        (dict(UpdateExpression="SET a = :nope"),
         "Invalid UpdateExpression: An expression attribute value used in expression is not defined; attribute value: :nope"),
        (dict(UpdateExpression="SET nothere.deep = :v", ExpressionAttributeValues={":v": {"S": "b"}}),
         "The document path provided in the update expression is invalid for update"),
    ]
    for kwargs, message in errors:
        code, msg, _ = error(lambda: ddb.update_item(TableName="t_upd", Key=key, **kwargs))
        assert (code, msg) == ("ValidationException", message), kwargs


def test_query_and_scan_with_paging_filters_and_indexes(ddb, resource):
    orders_table(ddb, "t_orders")
    table = resource.Table("t_orders")
    with table.batch_writer() as batch:
        for c in ["ann", "bob"]:
            for i in range(1, 31):
                batch.put_item(Item={
                    "customer": c, "order_id": i, "price": decimal.Decimal(i) * 10,
                    "status": "OPEN" if i % 3 else "SHIPPED", "placed": f"2026-11-{i:02d}", "note": "x" * 10,
                })
    got = table.query(KeyConditionExpression=Key("customer").eq("ann") & Key("order_id").between(5, 9))["Items"]
    assert [int(i["order_id"]) for i in got] == [5, 6, 7, 8, 9]
    got = table.query(KeyConditionExpression=Key("customer").eq("ann") & Key("order_id").gt(25), ScanIndexForward=False)["Items"]
    assert [int(i["order_id"]) for i in got] == [30, 29, 28, 27, 26]
    # Limit counts items evaluated, the filter runs after: Count < ScannedCount.
    page = table.query(KeyConditionExpression=Key("customer").eq("bob"), FilterExpression=Attr("price").gte(150), Limit=20)
    assert page["ScannedCount"] == 20 and page["Count"] == 6
    assert page["LastEvaluatedKey"] == {"customer": "bob", "order_id": 20}
    rest = table.query(KeyConditionExpression=Key("customer").eq("bob"), FilterExpression=Attr("price").gte(150), ExclusiveStartKey=page["LastEvaluatedKey"])
    assert [int(i["order_id"]) for i in rest["Items"]] == list(range(21, 31))
    everything = []
    for p in ddb.get_paginator("query").paginate(
        TableName="t_orders", KeyConditionExpression="customer = :c", ExpressionAttributeValues={":c": {"S": "ann"}},
        PaginationConfig={"PageSize": 7},
    ):
        everything += [int(i["order_id"]["N"]) for i in p["Items"]]
    assert everything == list(range(1, 31))
    count = ddb.query(TableName="t_orders", KeyConditionExpression="customer = :c", ExpressionAttributeValues={":c": {"S": "ann"}}, Select="COUNT")
    assert count["Count"] == 30 and "Items" not in count
    proj = table.query(KeyConditionExpression=Key("customer").eq("ann") & Key("order_id").eq(3), ProjectionExpression="price, #s", ExpressionAttributeNames={"#s": "status"})["Items"]
    assert proj == [{"price": 30, "status": "SHIPPED"}]
    # GSI: sparse, INCLUDE projection, across partitions.
    shipped = table.query(IndexName="by_status", KeyConditionExpression=Key("status").eq("SHIPPED"))["Items"]
    assert len(shipped) == 20
    assert set(shipped[0]) == {"customer", "order_id", "status", "price"}, "keys and the included attribute only"
    # LSI with a begins_with sort condition, and ALL_ATTRIBUTES fetched from the table.
    lsi = table.query(IndexName="by_placed", KeyConditionExpression=Key("customer").eq("ann") & Key("placed").begins_with("2026-11-1"))["Items"]
    assert sorted(i["placed"] for i in lsi) == [f"2026-11-{d}" for d in range(10, 20)]
    assert set(lsi[0]) == {"customer", "order_id", "placed"}
    full = table.query(IndexName="by_placed", Select="ALL_ATTRIBUTES", KeyConditionExpression=Key("customer").eq("ann") & Key("placed").eq("2026-11-05"))["Items"]
    assert full[0]["note"] == "x" * 10
    code, msg, _ = error(lambda: ddb.query(TableName="t_orders", IndexName="by_status", ConsistentRead=True, KeyConditionExpression="#s = :s", ExpressionAttributeNames={"#s": "status"}, ExpressionAttributeValues={":s": {"S": "OPEN"}}))
    assert msg == "Consistent reads are not supported on global secondary indexes"
    code, msg, _ = error(lambda: ddb.query(TableName="t_orders", KeyConditionExpression="order_id = :o", ExpressionAttributeValues={":o": {"N": "1"}}))
    assert msg == "Query condition missed key schema element: customer"
    # Scan: filters, paging, and parallel segments that together cover the table once.
    scanned = table.scan(FilterExpression=Attr("status").eq("SHIPPED") & Attr("price").lt(100))["Items"]
    assert len(scanned) == 6
    seen = []
    for segment in range(4):
        kwargs = {"Segment": segment, "TotalSegments": 4, "Limit": 9}
        while True:
            page = table.scan(**kwargs)
            seen += [(i["customer"], int(i["order_id"])) for i in page["Items"]]
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    assert sorted(seen) == sorted((c, i) for c in ["ann", "bob"] for i in range(1, 31))
    legacy = ddb.query(TableName="t_orders", KeyConditions={
        "customer": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "bob"}]},
        "order_id": {"ComparisonOperator": "LE", "AttributeValueList": [{"N": "3"}]},
    }, QueryFilter={"status": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "SHIPPED"}]}})
    assert [i["order_id"]["N"] for i in legacy["Items"]] == ["3"]
    assert ddb.describe_table(TableName="t_orders")["Table"]["ItemCount"] == 60


def test_a_gsi_added_later_is_backfilled(ddb):
    ddb.create_table(
        TableName="t_gsi_later",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for i in range(10):
        ddb.put_item(TableName="t_gsi_later", Item={"pk": {"S": f"k{i}"}, "color": {"S": "red" if i % 2 else "blue"}})
    updated = ddb.update_table(
        TableName="t_gsi_later",
        AttributeDefinitions=[{"AttributeName": "color", "AttributeType": "S"}],
        GlobalSecondaryIndexUpdates=[{"Create": {
            "IndexName": "by_color",
            "KeySchema": [{"AttributeName": "color", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "ALL"},
        }}],
    )["TableDescription"]
    gsi = updated["GlobalSecondaryIndexes"][0]
    assert (gsi["IndexStatus"], gsi["Backfilling"]) == ("CREATING", True)
    described = ddb.describe_table(TableName="t_gsi_later")["Table"]["GlobalSecondaryIndexes"][0]
    assert described["IndexStatus"] == "ACTIVE" and described["ItemCount"] == 10
    red = ddb.query(TableName="t_gsi_later", IndexName="by_color", KeyConditionExpression="color = :c", ExpressionAttributeValues={":c": {"S": "red"}})
    assert sorted(i["pk"]["S"] for i in red["Items"]) == ["k1", "k3", "k5", "k7", "k9"]
    ddb.put_item(TableName="t_gsi_later", Item={"pk": {"S": "k1"}, "color": {"S": "blue"}})
    red = ddb.query(TableName="t_gsi_later", IndexName="by_color", KeyConditionExpression="color = :c", ExpressionAttributeValues={":c": {"S": "red"}})
    assert sorted(i["pk"]["S"] for i in red["Items"]) == ["k3", "k5", "k7", "k9"], "a changed item leaves its old index entry"
    code, msg, _ = error(lambda: ddb.put_item(TableName="t_gsi_later", Item={"pk": {"S": "x"}, "color": {"N": "1"}}))
    assert msg == "One or more parameter values were invalid: Type mismatch for Index Key color Expected: S Actual: N IndexName: by_color"


def test_batches(ddb):
    ddb.create_table(
        TableName="t_batch",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    out = ddb.batch_write_item(RequestItems={"t_batch": [{"PutRequest": {"Item": {"pk": {"S": f"k{i}"}, "v": {"N": str(i)}}}} for i in range(25)]})
    assert out["UnprocessedItems"] == {}
    got = ddb.batch_get_item(RequestItems={"t_batch": {"Keys": [{"pk": {"S": f"k{i}"}} for i in range(0, 25, 5)] + [{"pk": {"S": "absent"}}], "ProjectionExpression": "v"}})
    assert sorted(int(i["v"]["N"]) for i in got["Responses"]["t_batch"]) == [0, 5, 10, 15, 20]
    assert got["UnprocessedKeys"] == {}
    ddb.batch_write_item(RequestItems={"t_batch": [{"DeleteRequest": {"Key": {"pk": {"S": f"k{i}"}}}} for i in range(10)]})
    assert ddb.scan(TableName="t_batch", Select="COUNT")["Count"] == 15
    code, msg, _ = error(lambda: ddb.batch_write_item(RequestItems={"t_batch": [{"PutRequest": {"Item": {"pk": {"S": "same"}}}}] * 2}))
    assert msg == "Provided list of item keys contains duplicates"
    code, msg, _ = error(lambda: ddb.batch_get_item(RequestItems={"t_batch": {"Keys": [{"pk": {"S": "same"}}] * 2}}))
    assert msg == "Provided list of item keys contains duplicates"
    code, msg, _ = error(lambda: ddb.batch_write_item(RequestItems={"t_batch": [{"PutRequest": {"Item": {"pk": {"S": f"z{i}"}}}} for i in range(26)]}))
    assert code == "ValidationException"


def test_transactions_are_all_or_nothing(ddb):
    ddb.create_table(
        TableName="t_tx",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.put_item(TableName="t_tx", Item={"pk": {"S": "alice"}, "balance": {"N": "100"}})
    ddb.put_item(TableName="t_tx", Item={"pk": {"S": "bob"}, "balance": {"N": "0"}})

    def transfer(amount, token=None):
        kwargs = {"ClientRequestToken": token} if token else {}
        return ddb.transact_write_items(TransactItems=[
            {"Update": {"TableName": "t_tx", "Key": {"pk": {"S": "alice"}}, "UpdateExpression": "SET balance = balance - :a",
                        "ConditionExpression": "balance >= :a", "ExpressionAttributeValues": {":a": {"N": str(amount)}},
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}},
            {"Update": {"TableName": "t_tx", "Key": {"pk": {"S": "bob"}}, "UpdateExpression": "SET balance = balance + :a",
                        "ExpressionAttributeValues": {":a": {"N": str(amount)}}}},
            {"Put": {"TableName": "t_tx", "Item": {"pk": {"S": f"log-{amount}"}}, "ConditionExpression": "attribute_not_exists(pk)"}},
        ], **kwargs)

    transfer(60, token="tok-1")
    transfer(60, token="tok-1")  # the same request again: applied once
    balances = lambda: {i["pk"]["S"]: i["balance"]["N"] for i in ddb.scan(TableName="t_tx")["Items"] if "balance" in i}  # noqa: E731
    assert balances() == {"alice": "40", "bob": "60"}
    code, msg, resp = error(lambda: transfer(50))
    assert code == "TransactionCanceledException"
    assert msg == "Transaction cancelled, please refer cancellation reasons for specific reasons [ConditionalCheckFailed, None, None]"
    reasons = resp["CancellationReasons"]
    assert [r["Code"] for r in reasons] == ["ConditionalCheckFailed", "None", "None"]
    assert reasons[0]["Item"]["balance"] == {"N": "40"}
    assert balances() == {"alice": "40", "bob": "60"}, "nothing of a cancelled transaction is written"
    assert "Item" not in ddb.get_item(TableName="t_tx", Key={"pk": {"S": "log-50"}})
    code, msg, _ = error(lambda: ddb.transact_write_items(TransactItems=[
        {"ConditionCheck": {"TableName": "t_tx", "Key": {"pk": {"S": "bob"}}, "ConditionExpression": "attribute_exists(pk)"}},
        {"Delete": {"TableName": "t_tx", "Key": {"pk": {"S": "bob"}}}},
    ]))
    assert msg == "Transaction request cannot include multiple operations on one item"
    got = ddb.transact_get_items(TransactItems=[
        {"Get": {"TableName": "t_tx", "Key": {"pk": {"S": "alice"}}, "ProjectionExpression": "balance"}},
        {"Get": {"TableName": "t_tx", "Key": {"pk": {"S": "nobody"}}}},
    ])["Responses"]
    assert got[0]["Item"] == {"balance": {"N": "40"}} and got[1] == {}


def test_concurrent_conditional_increments_lose_nothing(ddb):
    ddb.create_table(
        TableName="t_counter",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.put_item(TableName="t_counter", Item={"pk": {"S": "c"}, "n": {"N": "0"}})

    def bump(client):
        for _ in range(25):
            client.update_item(TableName="t_counter", Key={"pk": {"S": "c"}}, UpdateExpression="ADD n :one", ExpressionAttributeValues={":one": {"N": "1"}})

    clients = [boto3.client("dynamodb", endpoint_url=ddb.meta.endpoint_url, region_name="us-east-1",
                            aws_access_key_id="test", aws_secret_access_key="test") for _ in range(8)]
    threads = [threading.Thread(target=bump, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ddb.get_item(TableName="t_counter", Key={"pk": {"S": "c"}})["Item"]["n"] == {"N": "200"}


def test_ttl_and_backup_settings(ddb):
    ddb.create_table(
        TableName="t_ttl",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    assert ddb.describe_time_to_live(TableName="t_ttl")["TimeToLiveDescription"]["TimeToLiveStatus"] == "DISABLED"
    ddb.update_time_to_live(TableName="t_ttl", TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires"})
    d = ddb.describe_time_to_live(TableName="t_ttl")["TimeToLiveDescription"]
    assert d == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires"}
    code, msg, _ = error(lambda: ddb.update_time_to_live(TableName="t_ttl", TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires"}))
    assert msg == "TimeToLive is already enabled"
    pitr = ddb.describe_continuous_backups(TableName="t_ttl")["ContinuousBackupsDescription"]
    assert pitr["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "DISABLED"
    ddb.update_continuous_backups(TableName="t_ttl", PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
    pitr = ddb.describe_continuous_backups(TableName="t_ttl")["ContinuousBackupsDescription"]
    assert pitr["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"


def test_the_aws_cli(lakebox):
    out = lakebox.cli("dynamodb", "create-table", "--table-name", "t_cli",
                      "--attribute-definitions", "AttributeName=id,AttributeType=S",
                      "--key-schema", "AttributeName=id,KeyType=HASH", "--billing-mode", "PAY_PER_REQUEST")
    assert out.returncode == 0, out.stderr
    out = lakebox.cli("dynamodb", "put-item", "--table-name", "t_cli", "--item", '{"id": {"S": "1"}, "msg": {"S": "hi"}}')
    assert out.returncode == 0, out.stderr
    out = lakebox.cli("dynamodb", "get-item", "--table-name", "t_cli", "--key", '{"id": {"S": "1"}}')
    assert json.loads(out.stdout)["Item"]["msg"] == {"S": "hi"}
    out = lakebox.cli("dynamodb", "scan", "--table-name", "t_cli")
    assert json.loads(out.stdout)["Count"] == 1


def test_sigkill_keeps_acknowledged_writes_and_transactions(tmp_path):
    script = r'''
import sys, boto3
ddb = boto3.client("dynamodb", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
ddb.create_table(TableName="dur", AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "g", "AttributeType": "S"}],
    KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}], BillingMode="PAY_PER_REQUEST",
    GlobalSecondaryIndexes=[{"IndexName": "by_g", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}], "Projection": {"ProjectionType": "ALL"}}])
i = 0
while True:
    ddb.transact_write_items(TransactItems=[
        {"Put": {"TableName": "dur", "Item": {"pk": {"S": f"a{i}"}, "g": {"S": "x"}, "n": {"N": str(i)}}}},
        {"Put": {"TableName": "dur", "Item": {"pk": {"S": f"b{i}"}, "g": {"S": "y"}, "n": {"N": str(i)}}}},
    ])
    print(i, flush=True)
    i += 1
'''
    lb = Lakebox(tmp_path).start()
    writer = subprocess.Popen([sys.executable, "-c", script, lb.endpoint], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    acknowledged = -1
    deadline = time.time() + 20
    while acknowledged < 150 and time.time() < deadline:
        line = writer.stdout.readline()
        if not line:
            break
        acknowledged = int(line)
    lb.proc.send_signal(signal.SIGKILL)
    lb.proc.wait()
    writer.kill()
    assert acknowledged >= 150, writer.stderr.read()
    with Lakebox(tmp_path) as lb:
        ddb = lb.client("dynamodb")
        items = []
        for page in ddb.get_paginator("scan").paginate(TableName="dur"):
            items += page["Items"]
        a = {int(i["n"]["N"]) for i in items if i["pk"]["S"].startswith("a")}
        b = {int(i["n"]["N"]) for i in items if i["pk"]["S"].startswith("b")}
        assert a == b, "a transaction is all or nothing across a crash"
        assert set(range(acknowledged + 1)) <= a, "every acknowledged transaction survives SIGKILL"
        by_g = ddb.query(TableName="dur", IndexName="by_g", KeyConditionExpression="g = :g", ExpressionAttributeValues={":g": {"S": "y"}})
        assert by_g["Count"] == len(b), "index entries were written with their items"
        assert ddb.describe_table(TableName="dur")["Table"]["ItemCount"] == len(items)


def advance(lb, ms):
    from signing import send
    assert send(lb.endpoint, "POST", f"/_lakebox/test/clock?advance_ms={ms}")[0] == 200


def read_shard(streams, arn, shard_id, kind="TRIM_HORIZON"):
    it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard_id, ShardIteratorType=kind)["ShardIterator"]
    out = streams.get_records(ShardIterator=it)
    return out["Records"], out.get("NextShardIterator")


def test_streams_record_each_change_once_in_commit_order(tmp_path):
    with Lakebox(tmp_path, "--dynamodb-ttl-sweep-ms", "100") as lb:
        ddb, streams = lb.client("dynamodb"), lb.client("dynamodbstreams")
        desc = ddb.create_table(
            TableName="t_stream",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )["TableDescription"]
        arn = desc["LatestStreamArn"]
        assert arn.startswith(desc["TableArn"] + "/stream/") and arn.endswith(desc["LatestStreamLabel"])
        key = {"pk": {"S": "k"}}
        ddb.put_item(TableName="t_stream", Item={**key, "v": {"N": "1"}})
        ddb.update_item(TableName="t_stream", Key=key, UpdateExpression="SET v = :two", ExpressionAttributeValues={":two": {"N": "2"}})
        ddb.put_item(TableName="t_stream", Item={**key, "v": {"N": "2"}})  # changes nothing: no record
        with pytest.raises(botocore.exceptions.ClientError):
            ddb.put_item(TableName="t_stream", Item={**key, "v": {"N": "3"}}, ConditionExpression="attribute_not_exists(pk)")
        ddb.transact_write_items(TransactItems=[{"Delete": {"TableName": "t_stream", "Key": key}}])
        ddb.delete_item(TableName="t_stream", Key=key)  # nothing to delete: no record
        listed = streams.list_streams(TableName="t_stream")["Streams"]
        assert listed == [{"StreamArn": arn, "TableName": "t_stream", "StreamLabel": desc["LatestStreamLabel"]}]
        sd = streams.describe_stream(StreamArn=arn)["StreamDescription"]
        assert sd["StreamStatus"] == "ENABLED" and sd["StreamViewType"] == "NEW_AND_OLD_IMAGES"
        assert sd["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
        shard = sd["Shards"][0]
        assert "EndingSequenceNumber" not in shard["SequenceNumberRange"], "the open shard"
        records, nxt = read_shard(streams, arn, shard["ShardId"])
        assert [r["eventName"] for r in records] == ["INSERT", "MODIFY", "REMOVE"]
        assert records[0]["dynamodb"]["NewImage"] == {**key, "v": {"N": "1"}} and "OldImage" not in records[0]["dynamodb"]
        assert records[1]["dynamodb"]["OldImage"]["v"] == {"N": "1"} and records[1]["dynamodb"]["NewImage"]["v"] == {"N": "2"}
        assert records[2]["dynamodb"]["OldImage"]["v"] == {"N": "2"} and "NewImage" not in records[2]["dynamodb"]
        assert all(r["dynamodb"]["Keys"] == key and r["eventSource"] == "aws:dynamodb" for r in records)
        seqs = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
        assert seqs == sorted(seqs) and len(set(seqs)) == 3
        assert nxt, "an open shard always has a next iterator"
        assert streams.get_records(ShardIterator=nxt)["Records"] == []
        ddb.put_item(TableName="t_stream", Item={**key, "v": {"N": "9"}})
        assert [r["eventName"] for r in streams.get_records(ShardIterator=nxt)["Records"]] == ["INSERT"]
        after = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                                           SequenceNumber=records[0]["dynamodb"]["SequenceNumber"])["ShardIterator"]
        assert [r["eventName"] for r in streams.get_records(ShardIterator=after, Limit=2)["Records"]] == ["MODIFY", "REMOVE"]
        latest, _ = read_shard(streams, arn, shard["ShardId"], "LATEST")
        assert latest == []
        # Four hours on, the shard rolls over: the old one closes, its child takes writes.
        advance(lb, 4 * 3600 * 1000 + 1000)
        ddb.put_item(TableName="t_stream", Item={**key, "v": {"N": "10"}})
        shards = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
        assert len(shards) == 2 and shards[1]["ParentShardId"] == shards[0]["ShardId"]
        assert "EndingSequenceNumber" in shards[0]["SequenceNumberRange"]
        old, nxt = read_shard(streams, arn, shards[0]["ShardId"])
        assert len(old) == 4 and nxt is None, "a closed shard read to its end has no next iterator"
        new, _ = read_shard(streams, arn, shards[1]["ShardId"])
        assert [r["dynamodb"]["NewImage"]["v"]["N"] for r in new] == ["10"]
        it = streams.get_shard_iterator(StreamArn=arn, ShardId=shards[1]["ShardId"], ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        advance(lb, 16 * 60 * 1000)
        code, _, _ = error(lambda: streams.get_records(ShardIterator=it))
        assert code == "ExpiredIteratorException"
        # Disabling closes the stream; records stay readable; a new stream gets a new ARN.
        ddb.update_table(TableName="t_stream", StreamSpecification={"StreamEnabled": False})
        sd = streams.describe_stream(StreamArn=arn)["StreamDescription"]
        assert sd["StreamStatus"] == "DISABLED" and "EndingSequenceNumber" in sd["Shards"][-1]["SequenceNumberRange"]
        ddb.put_item(TableName="t_stream", Item={**key, "v": {"N": "11"}})
        ddb.update_table(TableName="t_stream", StreamSpecification={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"})
        arn2 = ddb.describe_table(TableName="t_stream")["Table"]["LatestStreamArn"]
        assert arn2 != arn
        ddb.put_item(TableName="t_stream", Item={**key, "v": {"N": "12"}})
        shard2 = streams.describe_stream(StreamArn=arn2)["StreamDescription"]["Shards"][0]["ShardId"]
        recs, _ = read_shard(streams, arn2, shard2)
        assert [(r["eventName"], set(r["dynamodb"])) for r in recs] == [("MODIFY", {"ApproximateCreationDateTime", "Keys", "SequenceNumber", "SizeBytes", "StreamViewType"})]
        # A day later the closed stream and its records are gone; the open one keeps its
        # records of the last day only.
        advance(lb, 25 * 3600 * 1000)
        deadline = time.time() + 10
        while any(s["StreamArn"] == arn for s in streams.list_streams()["Streams"]) and time.time() < deadline:
            time.sleep(0.1)
        code, _, _ = error(lambda: streams.describe_stream(StreamArn=arn))
        assert code == "ResourceNotFoundException"
        assert len(streams.describe_stream(StreamArn=arn2)["StreamDescription"]["Shards"]) <= 7


def test_ttl_deletes_expired_items_with_ttl_stream_records(tmp_path):
    with Lakebox(tmp_path, "--dynamodb-ttl-sweep-ms", "100") as lb:
        ddb, streams = lb.client("dynamodb"), lb.client("dynamodbstreams")
        ddb.create_table(
            TableName="t_expiring",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "OLD_IMAGE"},
        )
        now = int(time.time())
        ddb.put_item(TableName="t_expiring", Item={"pk": {"S": "before"}, "exp": {"N": str(now - 60)}})
        ddb.update_time_to_live(TableName="t_expiring", TimeToLiveSpecification={"Enabled": True, "AttributeName": "exp"})
        ddb.put_item(TableName="t_expiring", Item={"pk": {"S": "past"}, "exp": {"N": str(now - 10)}})
        ddb.put_item(TableName="t_expiring", Item={"pk": {"S": "future"}, "exp": {"N": str(now + 3600)}})
        ddb.put_item(TableName="t_expiring", Item={"pk": {"S": "text"}, "exp": {"S": str(now - 10)}})
        ddb.put_item(TableName="t_expiring", Item={"pk": {"S": "ancient"}, "exp": {"N": str(now - 6 * 365 * 86400)}})

        def keys():
            return sorted(i["pk"]["S"] for i in ddb.scan(TableName="t_expiring")["Items"])

        deadline = time.time() + 10
        while keys() != ["ancient", "future", "text"] and time.time() < deadline:
            time.sleep(0.1)
        assert keys() == ["ancient", "future", "text"], "expired items (also those written before TTL was on) are deleted"
        # The clock moved past the future item's expiry.
        advance(lb, 3700 * 1000)
        deadline = time.time() + 10
        while "future" in keys() and time.time() < deadline:
            time.sleep(0.1)
        assert keys() == ["ancient", "text"]
        arn = ddb.describe_table(TableName="t_expiring")["Table"]["LatestStreamArn"]
        shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
        records, _ = read_shard(streams, arn, shard)
        removes = [r for r in records if r["eventName"] == "REMOVE"]
        assert sorted(r["dynamodb"]["Keys"]["pk"]["S"] for r in removes) == ["before", "future", "past"]
        assert all(r["userIdentity"] == {"PrincipalId": "dynamodb.amazonaws.com", "Type": "Service"} for r in removes)
        assert all("OldImage" in r["dynamodb"] for r in removes)
        inserts = [r for r in records if r["eventName"] == "INSERT"]
        assert all("userIdentity" not in r for r in inserts)


def test_provisioned_tables_throttle_past_their_capacity(tmp_path):
    for limits in ["on", "off"]:
        with Lakebox(tmp_path / limits, "--dynamodb-throughput-limits", limits) as lb:
            ddb = lb.client("dynamodb")  # the harness's clients do not retry
            ddb.create_table(
                TableName="t_prov",
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                ProvisionedThroughput={"ReadCapacityUnits": 1, "WriteCapacityUnits": 1},
            )
            big = "x" * 3000  # 3 write units a put: the 300 s burst is ~100 puts
            throttled = None
            for i in range(150):
                try:
                    ddb.put_item(TableName="t_prov", Item={"pk": {"S": f"k{i}"}, "v": {"S": big}})
                except botocore.exceptions.ClientError as e:
                    throttled = (i, e.response["Error"]["Code"], e.response["Error"]["Message"])
                    break
            if limits == "off":
                assert throttled is None
                continue
            assert throttled is not None and 95 <= throttled[0] <= 105, throttled
            assert throttled[1] == "ProvisionedThroughputExceededException"
            assert throttled[2].startswith("The level of configured provisioned throughput for the table was exceeded.")
            # Reads draw on their own capacity; on-demand billing lifts the limit.
            assert ddb.get_item(TableName="t_prov", Key={"pk": {"S": "k0"}})["Item"]["v"]["S"] == big
            ddb.update_table(TableName="t_prov", BillingMode="PAY_PER_REQUEST")
            ddb.put_item(TableName="t_prov", Item={"pk": {"S": "after"}, "v": {"S": big}})


def test_partiql_statements_batches_and_transactions(ddb, lakebox):
    orders_table(ddb, "t_partiql")
    for i in range(1, 6):
        ddb.execute_statement(
            Statement="INSERT INTO \"t_partiql\" VALUE {'customer': ?, 'order_id': ?, 'price': ?, 'tags': <<'a', 'b'>>}",
            Parameters=[{"S": "ann"}, {"N": str(i)}, {"N": str(i * 10)}],
        )
    code, msg, _ = error(lambda: ddb.execute_statement(Statement="INSERT INTO t_partiql VALUE {'customer': 'ann', 'order_id': 1}"))
    assert (code, msg) == ("DuplicateItemException", "Duplicate primary key exists in table")
    got = ddb.execute_statement(Statement="SELECT order_id, price FROM t_partiql WHERE customer = 'ann' AND order_id >= 2 AND price < 50 ORDER BY order_id DESC")
    assert [(i["order_id"]["N"], i["price"]["N"]) for i in got["Items"]] == [("4", "40"), ("3", "30"), ("2", "20")]
    # Paging with Limit and NextToken.
    seen, token = [], None
    while True:
        kw = {"NextToken": token} if token else {}
        page = ddb.execute_statement(Statement="SELECT * FROM t_partiql WHERE customer = ?", Parameters=[{"S": "ann"}], Limit=2, **kw)
        seen += [int(i["order_id"]["N"]) for i in page["Items"]]
        token = page.get("NextToken")
        if not token:
            break
    assert seen == [1, 2, 3, 4, 5]
    # A scan with a filter when the partition is not fixed.
    scanned = ddb.execute_statement(Statement="SELECT order_id FROM t_partiql WHERE price BETWEEN 20 AND 30 AND tags IS NOT MISSING")
    assert sorted(i["order_id"]["N"] for i in scanned["Items"]) == ["2", "3"]
    out = ddb.execute_statement(
        Statement="UPDATE t_partiql SET price = price + 1 SET note = 'rush' REMOVE tags WHERE customer = 'ann' AND order_id = 1 RETURNING ALL NEW *")
    assert out["Items"][0]["price"] == {"N": "11"} and out["Items"][0]["note"] == {"S": "rush"} and "tags" not in out["Items"][0]
    code, _, _ = error(lambda: ddb.execute_statement(Statement="UPDATE t_partiql SET price = 0 WHERE customer = 'nobody' AND order_id = 1"))
    assert code == "ConditionalCheckFailedException", "an UPDATE never creates an item"
    code, msg, _ = error(lambda: ddb.execute_statement(Statement="UPDATE t_partiql SET price = 0 WHERE customer = 'ann'"))
    assert msg == "Where clause does not contain a mandatory equality on all key attributes"
    code, msg, _ = error(lambda: ddb.execute_statement(Statement="SELEC * FROM t_partiql"))
    assert code == "ValidationException" and msg.startswith("Statement wasn't well formed")
    code, msg, _ = error(lambda: ddb.execute_statement(Statement="SELECT * FROM t_partiql WHERE customer = ?"))
    assert msg == "Number of parameters in request and statement don't match."
    deleted = ddb.execute_statement(Statement="DELETE FROM t_partiql WHERE customer = 'ann' AND order_id = 5 RETURNING ALL OLD *")
    assert deleted["Items"][0]["price"] == {"N": "50"}
    batch = ddb.batch_execute_statement(Statements=[
        {"Statement": "INSERT INTO t_partiql VALUE {'customer': 'bob', 'order_id': 1}"},
        {"Statement": "INSERT INTO t_partiql VALUE {'customer': 'ann', 'order_id': 2}"},
        {"Statement": "UPDATE t_partiql SET price = 7 WHERE customer = 'bob' AND order_id = 1"},
    ])["Responses"]
    assert "Error" not in batch[0] and batch[1]["Error"]["Code"] == "DuplicateItem" and "Error" not in batch[2]
    reads = ddb.batch_execute_statement(Statements=[
        {"Statement": "SELECT price FROM t_partiql WHERE customer = 'bob' AND order_id = 1"},
        {"Statement": "SELECT * FROM t_partiql WHERE customer = 'zed' AND order_id = 1"},
    ])["Responses"]
    assert reads[0]["Item"] == {"price": {"N": "7"}} and "Item" not in reads[1]
    code, msg, resp = error(lambda: ddb.execute_transaction(TransactStatements=[
        {"Statement": "UPDATE t_partiql SET price = 1 WHERE customer = 'bob' AND order_id = 1"},
        {"Statement": "UPDATE t_partiql SET price = 1 WHERE customer = 'ann' AND order_id = 2 AND price > 1000"},
    ]))
    assert code == "TransactionCanceledException"
    assert [r["Code"] for r in resp["CancellationReasons"]] == ["None", "ConditionalCheckFailed"]
    ddb.execute_transaction(TransactStatements=[
        {"Statement": "UPDATE t_partiql SET price = 1 WHERE customer = 'bob' AND order_id = 1"},
        {"Statement": "DELETE FROM t_partiql WHERE customer = 'ann' AND order_id = 2"},
    ])
    got = ddb.execute_transaction(TransactStatements=[
        {"Statement": "SELECT price FROM t_partiql WHERE customer = 'bob' AND order_id = 1"},
        {"Statement": "SELECT * FROM t_partiql WHERE customer = 'ann' AND order_id = 2"},
    ])["Responses"]
    assert got[0]["Item"] == {"price": {"N": "1"}} and "Item" not in got[1]
    for _ in range(2):  # a retry under the same token is applied once
        ddb.execute_transaction(ClientRequestToken="partiql-tok", TransactStatements=[
            {"Statement": "UPDATE t_partiql SET price = price + 1 WHERE customer = 'bob' AND order_id = 1"}])
    code, _, _ = error(lambda: ddb.execute_transaction(ClientRequestToken="partiql-tok", TransactStatements=[
        {"Statement": "UPDATE t_partiql SET price = price + 2 WHERE customer = 'bob' AND order_id = 1"}]))
    assert code == "IdempotentParameterMismatchException"
    ddb.execute_statement(Statement="UPDATE t_partiql SET price = price - 1 WHERE customer = 'bob' AND order_id = 1")
    out = lakebox.cli("dynamodb", "execute-statement", "--statement", "SELECT * FROM t_partiql WHERE customer = 'bob'")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["Items"][0]["price"] == {"N": "1"}


def test_export_to_s3_in_aws_layout_read_back_by_athena(ddb, lakebox):
    import gzip
    from lakebox_harness import run_query, wait_for

    s3, athena = lakebox.client("s3"), lakebox.client("athena")
    s3.create_bucket(Bucket="ddb-exports")
    table_arn = ddb.create_table(
        TableName="t_export",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )["TableDescription"]["TableArn"]
    for i in range(30):
        ddb.put_item(TableName="t_export", Item={"pk": {"S": f"k{i:02d}"}, "n": {"N": str(i)}, "tags": {"SS": ["x"]}})
    code, msg, _ = error(lambda: ddb.export_table_to_point_in_time(TableArn=table_arn, S3Bucket="ddb-exports"))
    assert (code, msg) == ("PointInTimeRecoveryUnavailableException", "Point in time recovery is not enabled for table 't_export'")
    ddb.update_continuous_backups(TableName="t_export", PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
    started = ddb.export_table_to_point_in_time(TableArn=table_arn, S3Bucket="ddb-exports", S3Prefix="exports/orders")["ExportDescription"]
    assert started["ExportStatus"] == "IN_PROGRESS" and started["ExportArn"].startswith(table_arn + "/export/")
    arn = started["ExportArn"]
    done = wait_for(lambda: (d := ddb.describe_export(ExportArn=arn)["ExportDescription"])["ExportStatus"] == "COMPLETED" and d)
    assert done["ItemCount"] == 30 and done["ExportFormat"] == "DYNAMODB_JSON"
    export_id = arn.rsplit("/", 1)[1]
    base = f"exports/orders/AWSDynamoDB/{export_id}"
    assert done["ExportManifest"] == f"{base}/manifest-summary.json"
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="ddb-exports", Prefix=base)["Contents"]}
    assert {f"{base}/_started", f"{base}/manifest-files.json", f"{base}/manifest-summary.json"} <= keys
    summary = json.loads(s3.get_object(Bucket="ddb-exports", Key=done["ExportManifest"])["Body"].read())
    assert summary["itemCount"] == 30 and summary["exportArn"] == arn and summary["outputFormat"] == "DYNAMODB_JSON"
    files = [json.loads(line) for line in s3.get_object(Bucket="ddb-exports", Key=summary["manifestFilesS3Key"])["Body"].read().splitlines()]
    lines = []
    for f in files:
        assert f["dataFileS3Key"].startswith(f"{base}/data/") and f["dataFileS3Key"].endswith(".json.gz")
        lines += gzip.decompress(s3.get_object(Bucket="ddb-exports", Key=f["dataFileS3Key"])["Body"].read()).splitlines()
    assert sum(f["itemCount"] for f in files) == 30
    assert sorted(json.loads(l)["Item"]["pk"]["S"] for l in lines) == [f"k{i:02d}" for i in range(30)]
    assert [e["ExportArn"] for e in ddb.list_exports(TableArn=table_arn)["ExportSummaries"]] == [arn]
    # Athena reads the export as AWS's guide shows: a JSON table over the data folder.
    out = "s3://ddb-exports/athena-results/"
    _, e = run_query(athena, "CREATE EXTERNAL TABLE ddb_export (Item struct<pk:struct<S:string>, n:struct<N:string>>) "
                             "ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe' "
                             f"LOCATION 's3://ddb-exports/{base}/data/'", out)
    assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
    qid, e = run_query(athena, "SELECT count(*), sum(CAST(item.n.N AS integer)) FROM ddb_export WHERE item.pk.S >= 'k10'", out)
    assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
    rows = athena.get_query_results(QueryExecutionId=qid)["ResultSet"]["Rows"]
    assert [c["VarCharValue"] for c in rows[1]["Data"]] == ["20", str(sum(range(10, 30)))]


def test_backup_and_restore(ddb):
    orders_table(ddb, "t_backup_src")
    for i in range(20):
        ddb.put_item(TableName="t_backup_src", Item={"customer": {"S": f"c{i % 4}"}, "order_id": {"N": str(i)},
                                                    "status": {"S": "OPEN" if i % 2 else "DONE"}, "price": {"N": str(i)}})
    details = ddb.create_backup(TableName="t_backup_src", BackupName="nightly")["BackupDetails"]
    assert details["BackupStatus"] == "AVAILABLE" and details["BackupType"] == "USER"
    arn = details["BackupArn"]
    ddb.put_item(TableName="t_backup_src", Item={"customer": {"S": "late"}, "order_id": {"N": "99"}})  # after the backup
    desc = ddb.describe_backup(BackupArn=arn)["BackupDescription"]
    assert desc["SourceTableDetails"]["ItemCount"] == 20 and desc["SourceTableDetails"]["TableName"] == "t_backup_src"
    assert [b["BackupArn"] for b in ddb.list_backups(TableName="t_backup_src")["BackupSummaries"]] == [arn]
    restored = ddb.restore_table_from_backup(TargetTableName="t_backup_copy", BackupArn=arn)["TableDescription"]
    assert restored["RestoreSummary"]["SourceBackupArn"] == arn and restored["RestoreSummary"]["RestoreInProgress"] is False
    ddb.get_waiter("table_exists").wait(TableName="t_backup_copy", WaiterConfig={"Delay": 1, "MaxAttempts": 5})
    assert ddb.scan(TableName="t_backup_copy", Select="COUNT")["Count"] == 20, "the table as it was at the backup"
    assert ddb.describe_table(TableName="t_backup_copy")["Table"]["ItemCount"] == 20
    open_orders = ddb.query(TableName="t_backup_copy", IndexName="by_status", KeyConditionExpression="#s = :s",
                            ExpressionAttributeNames={"#s": "status"}, ExpressionAttributeValues={":s": {"S": "OPEN"}})
    assert open_orders["Count"] == 10, "indexes are rebuilt"
    code, _, _ = error(lambda: ddb.restore_table_from_backup(TargetTableName="t_backup_copy", BackupArn=arn))
    assert code == "TableAlreadyExistsException"
    code, _, _ = error(lambda: ddb.restore_table_to_point_in_time(SourceTableName="t_backup_src", TargetTableName="t_pitr_copy",
                                                                  UseLatestRestorableTime=True))
    assert code == "PointInTimeRecoveryUnavailableException"
    ddb.update_continuous_backups(TableName="t_backup_src", PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
    pitr = ddb.restore_table_to_point_in_time(SourceTableName="t_backup_src", TargetTableName="t_pitr_copy",
                                              UseLatestRestorableTime=True)["TableDescription"]
    assert pitr["RestoreSummary"]["SourceTableArn"].endswith("table/t_backup_src")
    assert ddb.scan(TableName="t_pitr_copy", Select="COUNT")["Count"] == 21, "the table as it is now, the late item too"
    code, _, _ = error(lambda: ddb.restore_table_to_point_in_time(SourceTableName="t_backup_src", TargetTableName="t_pitr_old",
                                                                  RestoreDateTime=datetime.datetime(2020, 1, 1)))
    assert code == "InvalidRestoreTimeException"
    # A backup outlives its table.
    ddb.delete_table(TableName="t_backup_src")
    assert ddb.describe_backup(BackupArn=arn)["BackupDescription"]["SourceTableDetails"]["ItemCount"] == 20
    assert ddb.delete_backup(BackupArn=arn)["BackupDescription"]["BackupDetails"]["BackupStatus"] == "DELETED"
    code, _, _ = error(lambda: ddb.describe_backup(BackupArn=arn))
    assert code == "BackupNotFoundException"


def test_import_table_from_s3_json_and_csv(ddb, lakebox):
    import gzip
    from lakebox_harness import wait_for

    s3 = lakebox.client("s3")
    s3.create_bucket(Bucket="ddb-imports")
    lines = [json.dumps({"Item": {"pk": {"S": f"j{i}"}, "n": {"N": str(i)}, "m": {"M": {"x": {"BOOL": True}}}}}) for i in range(40)]
    lines.insert(7, "not json")
    s3.put_object(Bucket="ddb-imports", Key="json/part-0.json.gz", Body=gzip.compress("\n".join(lines[:20]).encode()))
    s3.put_object(Bucket="ddb-imports", Key="json/part-1.json.gz", Body=gzip.compress("\n".join(lines[20:]).encode()))
    params = {
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "BillingMode": "PAY_PER_REQUEST",
    }
    started = ddb.import_table(S3BucketSource={"S3Bucket": "ddb-imports", "S3KeyPrefix": "json/"}, InputFormat="DYNAMODB_JSON",
                               InputCompressionType="GZIP", TableCreationParameters={"TableName": "t_imported", **params})["ImportTableDescription"]
    assert started["ImportStatus"] == "IN_PROGRESS"
    done = wait_for(lambda: (d := ddb.describe_import(ImportArn=started["ImportArn"])["ImportTableDescription"])["ImportStatus"] == "COMPLETED" and d)
    assert (done["ImportedItemCount"], done["ErrorCount"], done["ProcessedItemCount"]) == (40, 1, 41)
    item = ddb.get_item(TableName="t_imported", Key={"pk": {"S": "j7"}})["Item"]
    assert item == {"pk": {"S": "j7"}, "n": {"N": "7"}, "m": {"M": {"x": {"BOOL": True}}}}
    assert ddb.describe_table(TableName="t_imported")["Table"]["ItemCount"] == 40
    csv_body = 'id,name,score\n1,"Smith, Ann",10\n2,Bob,20\n'
    s3.put_object(Bucket="ddb-imports", Key="csv/people.csv", Body=csv_body.encode())
    started = ddb.import_table(S3BucketSource={"S3Bucket": "ddb-imports", "S3KeyPrefix": "csv/"}, InputFormat="CSV",
                               TableCreationParameters={"TableName": "t_imported_csv",
                                                        "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "N"}],
                                                        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
                                                        "BillingMode": "PAY_PER_REQUEST"})["ImportTableDescription"]
    wait_for(lambda: ddb.describe_import(ImportArn=started["ImportArn"])["ImportTableDescription"]["ImportStatus"] == "COMPLETED")
    got = ddb.get_item(TableName="t_imported_csv", Key={"id": {"N": "1"}})["Item"]
    assert got == {"id": {"N": "1"}, "name": {"S": "Smith, Ann"}, "score": {"S": "10"}}, "non-key CSV values are strings, as on AWS"
    assert {i["ImportArn"] for i in ddb.list_imports()["ImportSummaryList"]} >= {started["ImportArn"], done["ImportArn"]}
    code, _, _ = error(lambda: ddb.import_table(S3BucketSource={"S3Bucket": "ddb-imports"}, InputFormat="CSV",
                                               TableCreationParameters={"TableName": "t_imported", **params}))
    assert code == "ResourceInUseException"


def test_kinesis_streaming_destination_receives_changes_in_aws_json(ddb, lakebox):
    from lakebox_harness import wait_for

    kinesis = lakebox.client("kinesis")
    kinesis.create_stream(StreamName="ddb-changes", ShardCount=1)
    stream_arn = kinesis.describe_stream_summary(StreamName="ddb-changes")["StreamDescriptionSummary"]["StreamARN"]
    ddb.create_table(
        TableName="t_kdest",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.put_item(TableName="t_kdest", Item={"pk": {"S": "before"}})  # before the destination: not sent
    code, msg, _ = error(lambda: ddb.enable_kinesis_streaming_destination(
        TableName="t_kdest", StreamArn=stream_arn.replace("ddb-changes", "nope")))
    assert code == "ValidationException"
    out = ddb.enable_kinesis_streaming_destination(TableName="t_kdest", StreamArn=stream_arn)
    assert out["DestinationStatus"] == "ENABLING"
    dests = ddb.describe_kinesis_streaming_destination(TableName="t_kdest")["KinesisDataStreamDestinations"]
    assert dests == [{"StreamArn": stream_arn, "DestinationStatus": "ACTIVE", "ApproximateCreationDateTimePrecision": "MILLISECOND"}]
    ddb.put_item(TableName="t_kdest", Item={"pk": {"S": "a"}, "v": {"N": "1"}})
    ddb.update_item(TableName="t_kdest", Key={"pk": {"S": "a"}}, UpdateExpression="SET v = :v", ExpressionAttributeValues={":v": {"N": "2"}})
    ddb.delete_item(TableName="t_kdest", Key={"pk": {"S": "a"}})
    it = kinesis.get_shard_iterator(StreamName="ddb-changes", ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    got = []

    def three():
        nonlocal it
        r = kinesis.get_records(ShardIterator=it)
        it = r["NextShardIterator"]
        got.extend(json.loads(x["Data"]) for x in r["Records"])
        return len(got) >= 3

    assert wait_for(three, timeout=10, interval=0.25)
    assert [g["eventName"] for g in got] == ["INSERT", "MODIFY", "REMOVE"]
    assert got[0]["tableName"] == "t_kdest" and got[0]["eventSource"] == "aws:dynamodb" and got[0]["recordFormat"] == "application/json"
    assert got[1]["dynamodb"]["OldImage"]["v"] == {"N": "1"} and got[1]["dynamodb"]["NewImage"]["v"] == {"N": "2"}
    assert got[2]["dynamodb"]["Keys"] == {"pk": {"S": "a"}} and "NewImage" not in got[2]["dynamodb"]
    out = ddb.update_kinesis_streaming_destination(TableName="t_kdest", StreamArn=stream_arn,
                                                   UpdateKinesisStreamingConfiguration={"ApproximateCreationDateTimePrecision": "MICROSECOND"})
    assert out["DestinationStatus"] == "UPDATING"
    ddb.put_item(TableName="t_kdest", Item={"pk": {"S": "micro"}})

    def micro():
        nonlocal it
        r = kinesis.get_records(ShardIterator=it)
        it = r["NextShardIterator"]
        got.extend(json.loads(x["Data"]) for x in r["Records"])
        return len(got) >= 4

    assert wait_for(micro, timeout=10, interval=0.25)
    assert got[3]["dynamodb"]["ApproximateCreationDateTimePrecision"] == "MICROSECOND"
    assert got[3]["dynamodb"]["ApproximateCreationDateTime"] > got[2]["dynamodb"]["ApproximateCreationDateTime"] * 100
    ddb.disable_kinesis_streaming_destination(TableName="t_kdest", StreamArn=stream_arn)
    assert ddb.describe_kinesis_streaming_destination(TableName="t_kdest")["KinesisDataStreamDestinations"][0]["DestinationStatus"] == "DISABLED"


def test_hostile_expressions_and_items_get_errors_not_crashes(ddb):
    ddb.create_table(
        TableName="t_hostile",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    deep = "(" * 1500 + "a = :v" + ")" * 1500
    code, msg, _ = error(lambda: ddb.scan(TableName="t_hostile", FilterExpression=deep, ExpressionAttributeValues={":v": {"N": "1"}}))
    assert code == "ValidationException" and "nested too deeply" in msg
    code, msg, _ = error(lambda: ddb.scan(TableName="t_hostile", FilterExpression="NOT " * 3000 + "a = :v", ExpressionAttributeValues={":v": {"N": "1"}}))
    assert code == "ValidationException" and "Expression size has exceeded the maximum allowed size" in msg
    nested = {"S": "x"}
    for _ in range(40):
        nested = {"L": [nested]}
    code, msg, _ = error(lambda: ddb.put_item(TableName="t_hostile", Item={"pk": {"S": "k"}, "deep": nested}))
    assert (code, msg) == ("ValidationException", "Nesting Levels have exceeded supported limits: Attributes in the item have nested levels beyond supported limit")
    code, _, _ = error(lambda: ddb.execute_statement(Statement="SELECT * FROM t_hostile WHERE " + "(" * 500 + "pk = 'a'" + ")" * 500))
    assert code == "ValidationException"
    ddb.put_item(TableName="t_hostile", Item={"pk": {"S": "still"}})
    assert ddb.get_item(TableName="t_hostile", Key={"pk": {"S": "still"}})["Item"] == {"pk": {"S": "still"}}


def test_transaction_tokens_survive_a_restart(tmp_path):
    def transfer(ddb, amount):
        return ddb.transact_write_items(ClientRequestToken="tok-restart", TransactItems=[
            {"Update": {"TableName": "t_tok", "Key": {"pk": {"S": "acct"}}, "UpdateExpression": "ADD balance :a",
                        "ExpressionAttributeValues": {":a": {"N": str(amount)}}}},
        ])

    with Lakebox(tmp_path) as lb:
        ddb = lb.client("dynamodb")
        ddb.create_table(TableName="t_tok", AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                         KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}], BillingMode="PAY_PER_REQUEST")
        transfer(ddb, 5)
        lb.kill()
    with Lakebox(tmp_path) as lb:
        ddb = lb.client("dynamodb")
        transfer(ddb, 5)  # the client's retry after the crash: applied once
        assert ddb.get_item(TableName="t_tok", Key={"pk": {"S": "acct"}})["Item"]["balance"] == {"N": "5"}
        code, _, _ = error(lambda: transfer(ddb, 6))
        assert code == "IdempotentParameterMismatchException"
