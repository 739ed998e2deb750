"""Glue Data Catalog with boto3 and the AWS CLI: databases, tables and versions, partitions
with Glue's predicate language, partition indexes, durability across restarts."""

import json

import botocore.exceptions
import pytest

from lakebox_harness import Lakebox


def code(e):
    return e.value.response["Error"]["Code"]


@pytest.fixture(scope="module")
def lakebox(tmp_path_factory):
    server = Lakebox(tmp_path_factory.mktemp("glue")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def glue(lakebox):
    return lakebox.client("glue")


def csv_table(name, location, partition_keys=(), **extra):
    t = {
        "Name": name,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"classification": "csv", "skip.header.line.count": "1"},
        "PartitionKeys": [{"Name": k, "Type": t} for k, t in partition_keys],
        "StorageDescriptor": {
            "Columns": [
                {"Name": "id", "Type": "bigint", "Comment": "the key"},
                {"Name": "name", "Type": "string"},
                {"Name": "tags", "Type": "array<string>"},
            ],
            "Location": location,
            "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
            "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
            "Compressed": False,
            "NumberOfBuckets": 4,
            "BucketColumns": ["id"],
            "SortColumns": [{"Column": "id", "SortOrder": 1}],
            "SerdeInfo": {
                "SerializationLibrary": "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe",
                "Parameters": {"field.delim": ","},
            },
            "Parameters": {"compressionType": "none"},
            "StoredAsSubDirectories": False,
        },
    }
    t.update(extra)
    return t


def test_databases_lifecycle_and_errors(glue):
    glue.create_database(DatabaseInput={"Name": "Sales", "Description": "d", "LocationUri": "s3://b/sales/",
                                        "Parameters": {"team": "x"}})
    db = glue.get_database(Name="sales")["Database"]
    assert db["Name"] == "sales"  # Glue lowercases names
    assert db["Description"] == "d" and db["LocationUri"] == "s3://b/sales/" and db["Parameters"] == {"team": "x"}
    assert db["CatalogId"] == "000000000000" and db["CreateTime"]
    assert glue.get_database(Name="SALES")["Database"]["Name"] == "sales"

    with pytest.raises(botocore.exceptions.ClientError) as e:
        glue.create_database(DatabaseInput={"Name": "sales"})
    assert code(e) == "AlreadyExistsException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        glue.get_database(Name="nope")
    assert code(e) == "EntityNotFoundException"
    # A name outside the model's constraints is refused as Glue refuses it: ValidationException
    # with the model's words, the member's path in camel case.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        glue.create_database(DatabaseInput={"Name": "bad\nname"})
    assert code(e) == "ValidationException"
    assert e.value.response["Error"]["Message"] == (
        "1 validation error detected: Value 'bad\nname' at 'databaseInput.name' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [\\u0020-\\uD7FF\\uE000-\\uFFFD\\uD800\\uDC00-\\uDBFF\\uDFFF\\t]*")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        glue.create_database(DatabaseInput={"Name": "x" * 256})
    assert code(e) == "ValidationException"
    assert e.value.response["Error"]["Message"].endswith(
        "at 'databaseInput.name' failed to satisfy constraint: Member must have length less than or equal to 255")

    glue.update_database(Name="sales", DatabaseInput={"Name": "sales", "Description": "new"})
    assert glue.get_database(Name="sales")["Database"]["Description"] == "new"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        glue.update_database(Name="ghost", DatabaseInput={"Name": "ghost"})
    assert code(e) == "EntityNotFoundException"

    for i in range(5):
        glue.create_database(DatabaseInput={"Name": f"pagedb{i}"})
    names = []
    for page in glue.get_paginator("get_databases").paginate(PaginationConfig={"PageSize": 2}):
        assert len(page["DatabaseList"]) <= 2
        names += [d["Name"] for d in page["DatabaseList"]]
    assert names == sorted(names) and {f"pagedb{i}" for i in range(5)} <= set(names) and "sales" in names


def test_tables_round_trip_every_field(glue):
    glue.create_database(DatabaseInput={"Name": "tdb"})
    t = csv_table("Orders", "s3://lake/orders/", [("year", "int"), ("region", "string")],
                  Description="orders", Owner="me", Retention=3)
    glue.create_table(DatabaseName="tdb", TableInput=t)
    got = glue.get_table(DatabaseName="tdb", Name="orders")["Table"]
    assert got["Name"] == "orders" and got["DatabaseName"] == "tdb" and got["VersionId"] == "0"
    assert got["StorageDescriptor"] == t["StorageDescriptor"]
    assert got["PartitionKeys"] == t["PartitionKeys"]
    assert got["Parameters"] == t["Parameters"] and got["TableType"] == "EXTERNAL_TABLE"
    assert got["Description"] == "orders" and got["Owner"] == "me" and got["Retention"] == 3
    assert got["CreateTime"] and got["UpdateTime"] and got["CatalogId"] == "000000000000"

    view = {"Name": "v_orders", "TableType": "VIRTUAL_VIEW", "ViewOriginalText": "/* Presto View: abc */",
            "ViewExpandedText": "/* Presto View */", "Parameters": {"presto_view": "true"},
            "StorageDescriptor": {"Columns": [{"Name": "id", "Type": "bigint"}], "SerdeInfo": {}}}
    glue.create_table(DatabaseName="tdb", TableInput=view)
    v = glue.get_table(DatabaseName="tdb", Name="v_orders")["Table"]
    assert v["TableType"] == "VIRTUAL_VIEW" and v["ViewOriginalText"] == "/* Presto View: abc */"
    assert v["ViewExpandedText"] == "/* Presto View */"

    with pytest.raises(botocore.exceptions.ClientError) as e:
        glue.create_table(DatabaseName="tdb", TableInput=t)
    assert code(e) == "AlreadyExistsException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        glue.create_table(DatabaseName="nodb", TableInput=t)
    assert code(e) == "EntityNotFoundException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        glue.get_table(DatabaseName="tdb", Name="missing")
    assert code(e) == "EntityNotFoundException"


def test_get_tables_expression_and_pagination(glue):
    glue.create_database(DatabaseInput={"Name": "listdb"})
    for n in ["sales_2023", "sales_2024", "orders", "customers", "sales_eu"]:
        glue.create_table(DatabaseName="listdb", TableInput=csv_table(n, f"s3://lake/{n}/"))
    got = [t["Name"] for t in glue.get_tables(DatabaseName="listdb", Expression="sales_.*")["TableList"]]
    assert got == ["sales_2023", "sales_2024", "sales_eu"]
    got = [t["Name"] for t in glue.get_tables(DatabaseName="listdb", Expression="sales_20[0-9]+|orders")["TableList"]]
    assert got == ["orders", "sales_2023", "sales_2024"]
    names = []
    for page in glue.get_paginator("get_tables").paginate(DatabaseName="listdb", PaginationConfig={"PageSize": 2}):
        names += [t["Name"] for t in page["TableList"]]
    assert names == sorted(["sales_2023", "sales_2024", "orders", "customers", "sales_eu"])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        glue.get_tables(DatabaseName="nodb")
    assert code(e) == "EntityNotFoundException"


def test_update_table_keeps_versions(glue):
    glue.create_database(DatabaseInput={"Name": "vdb"})
    t = csv_table("events", "s3://lake/events/")
    glue.create_table(DatabaseName="vdb", TableInput=t)
    for i in range(3):
        t2 = dict(t, Parameters={"classification": "csv", "rev": str(i)})
        glue.update_table(DatabaseName="vdb", TableInput=t2)
    cur = glue.get_table(DatabaseName="vdb", Name="events")["Table"]
    assert cur["VersionId"] == "3" and cur["Parameters"]["rev"] == "2"
    versions = glue.get_table_versions(DatabaseName="vdb", TableName="events")["TableVersions"]
    assert [v["VersionId"] for v in versions] == ["3", "2", "1", "0"]
    assert versions[3]["Table"]["Parameters"] == t["Parameters"]
    v1 = glue.get_table_version(DatabaseName="vdb", TableName="events", VersionId="1")["TableVersion"]
    assert v1["Table"]["Parameters"]["rev"] == "0"

    # Optimistic concurrency: a stale VersionId is refused.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        glue.update_table(DatabaseName="vdb", TableInput=t, VersionId="1")
    assert code(e) == "ConcurrentModificationException"
    glue.update_table(DatabaseName="vdb", TableInput=t, VersionId="3")

    glue.delete_table_version(DatabaseName="vdb", TableName="events", VersionId="0")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        glue.delete_table_version(DatabaseName="vdb", TableName="events", VersionId="4")
    assert code(e) == "InvalidInputException"  # the current version cannot be deleted
    r = glue.batch_delete_table_version(DatabaseName="vdb", TableName="events", VersionIds=["1", "2", "77"])
    assert [(x["VersionId"], x["ErrorDetail"]["ErrorCode"]) for x in r["Errors"]] == [("77", "EntityNotFoundException")]
    assert [v["VersionId"] for v in glue.get_table_versions(DatabaseName="vdb", TableName="events")["TableVersions"]] == ["4", "3"]

    # SkipArchive replaces the current version without keeping it.
    glue.update_table(DatabaseName="vdb", TableInput=t, SkipArchive=True)
    assert [v["VersionId"] for v in glue.get_table_versions(DatabaseName="vdb", TableName="events")["TableVersions"]] == ["5", "3"]


def test_delete_and_batch_delete_tables(glue):
    glue.create_database(DatabaseInput={"Name": "deldb"})
    for n in ["a", "b", "c"]:
        glue.create_table(DatabaseName="deldb", TableInput=csv_table(n, f"s3://lake/{n}/"))
    glue.delete_table(DatabaseName="deldb", Name="a")
    r = glue.batch_delete_table(DatabaseName="deldb", TablesToDelete=["b", "zzz"])
    assert [(x["TableName"], x["ErrorDetail"]["ErrorCode"]) for x in r["Errors"]] == [("zzz", "EntityNotFoundException")]
    assert [t["Name"] for t in glue.get_tables(DatabaseName="deldb")["TableList"]] == ["c"]


def test_search_tables(glue):
    glue.create_database(DatabaseInput={"Name": "searchdb"})
    glue.create_table(DatabaseName="searchdb", TableInput=csv_table("clicks", "s3://lake/clicks/",
                                                                    Description="web click stream"))
    glue.create_table(DatabaseName="searchdb", TableInput=csv_table("payments", "s3://lake/payments/",
                                                                    Parameters={"classification": "parquet"}))
    hits = glue.search_tables(SearchText="click stream")["TableList"]
    assert [(t["DatabaseName"], t["Name"]) for t in hits] == [("searchdb", "clicks")]
    hits = glue.search_tables(Filters=[{"Key": "DatabaseName", "Value": "searchdb"},
                                       {"Key": "classification", "Value": "parquet", "Comparator": "EQUALS"}])["TableList"]
    assert [t["Name"] for t in hits] == ["payments"]
    hits = glue.search_tables(Filters=[{"Key": "DatabaseName", "Value": "searchdb"}],
                              SortCriteria=[{"FieldName": "Name", "Sort": "DESC"}])["TableList"]
    assert [t["Name"] for t in hits] == ["payments", "clicks"]


@pytest.fixture(scope="module")
def partitioned(glue):
    glue.create_database(DatabaseInput={"Name": "pdb"})
    glue.create_table(DatabaseName="pdb", TableInput=csv_table("logs", "s3://lake/logs/",
                                                               [("year", "int"), ("region", "string")]))
    inputs = []
    for year in [2019, 2020, 2021, 2022, 2023, 2024]:
        for region in ["eu-west", "us-east", "ap-south"]:
            inputs.append({"Values": [str(year), region], "Parameters": {"n": "1"},
                           "StorageDescriptor": {"Location": f"s3://lake/logs/year={year}/region={region}/",
                                                 "Columns": [{"Name": "id", "Type": "bigint"}]}})
    r = glue.batch_create_partition(DatabaseName="pdb", TableName="logs", PartitionInputList=inputs)
    assert r.get("Errors", []) == []
    return inputs


def values(glue, expression=None, **kw):
    kwargs = {"DatabaseName": "pdb", "TableName": "logs", **kw}
    if expression is not None:
        kwargs["Expression"] = expression
    out = []
    for page in glue.get_paginator("get_partitions").paginate(**kwargs):
        out += [tuple(p["Values"]) for p in page["Partitions"]]
    return out


@pytest.mark.parametrize("expression,expected", [
    ("year = 2024", lambda y, r: y == 2024),
    ("year <> 2024", lambda y, r: y != 2024),
    ("year > 2022", lambda y, r: y > 2022),
    ("year >= 2022 AND region = 'eu-west'", lambda y, r: y >= 2022 and r == "eu-west"),
    ("year < 2020 OR region = 'ap-south'", lambda y, r: y < 2020 or r == "ap-south"),
    ("year <= 2020", lambda y, r: y <= 2020),
    ("year BETWEEN 2020 AND 2022", lambda y, r: 2020 <= y <= 2022),
    ("region IN ('eu-west', 'ap-south')", lambda y, r: r in ("eu-west", "ap-south")),
    ("region NOT IN ('eu-west')", lambda y, r: r != "eu-west"),
    ("region LIKE 'us%'", lambda y, r: r.startswith("us")),
    ("NOT (year = 2019 OR year = 2020) AND (region LIKE '%east' OR region = 'ap-south')",
     lambda y, r: y not in (2019, 2020) and (r.endswith("east") or r == "ap-south")),
    ("region > 'eu'", lambda y, r: r > "eu"),
])
def test_get_partitions_expression(glue, partitioned, expression, expected):
    all_values = [(str(y), r) for y in range(2019, 2025) for r in ["eu-west", "us-east", "ap-south"]]
    want = sorted(v for v in all_values if expected(int(v[0]), v[1]))
    assert sorted(values(glue, expression)) == want


def test_partitions_integer_keys_compare_as_numbers(glue):
    glue.create_database(DatabaseInput={"Name": "numdb"})
    glue.create_table(DatabaseName="numdb", TableInput=csv_table("t", "s3://lake/t/", [("day", "int")]))
    glue.batch_create_partition(DatabaseName="numdb", TableName="t",
                                PartitionInputList=[{"Values": [str(d)]} for d in [1, 2, 9, 10, 11]])
    got = glue.get_partitions(DatabaseName="numdb", TableName="t", Expression="day > 2")["Partitions"]
    assert sorted(int(p["Values"][0]) for p in got) == [9, 10, 11]


def test_partitions_crud_batch_and_segments(glue, partitioned):
    p = glue.get_partition(DatabaseName="pdb", TableName="logs", PartitionValues=["2024", "eu-west"])["Partition"]
    assert p["Values"] == ["2024", "eu-west"] and p["TableName"] == "logs" and p["DatabaseName"] == "pdb"
    assert p["StorageDescriptor"]["Location"] == "s3://lake/logs/year=2024/region=eu-west/"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        glue.get_partition(DatabaseName="pdb", TableName="logs", PartitionValues=["1999", "eu-west"])
    assert code(e) == "EntityNotFoundException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        glue.create_partition(DatabaseName="pdb", TableName="logs", PartitionInput={"Values": ["2024", "eu-west"]})
    assert code(e) == "AlreadyExistsException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        glue.create_partition(DatabaseName="pdb", TableName="logs", PartitionInput={"Values": ["2024"]})
    assert code(e) == "InvalidInputException"

    r = glue.batch_create_partition(DatabaseName="pdb", TableName="logs", PartitionInputList=[
        {"Values": ["2025", "eu-west"]}, {"Values": ["2024", "eu-west"]}])
    assert [(x["PartitionValues"], x["ErrorDetail"]["ErrorCode"]) for x in r["Errors"]] == [
        (["2024", "eu-west"], "AlreadyExistsException")]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        glue.batch_create_partition(DatabaseName="pdb", TableName="logs",
                                    PartitionInputList=[{"Values": [str(i), "x"]} for i in range(101)])
    assert code(e) == "ValidationException"
    assert e.value.response["Error"]["Message"].endswith(
        "at 'partitionInputList' failed to satisfy constraint: Member must have length less than or equal to 100")

    got = glue.batch_get_partition(DatabaseName="pdb", TableName="logs", PartitionsToGet=[
        {"Values": ["2025", "eu-west"]}, {"Values": ["1900", "none"]}])["Partitions"]
    assert [x["Values"] for x in got] == [["2025", "eu-west"]]

    glue.update_partition(DatabaseName="pdb", TableName="logs", PartitionValueList=["2025", "eu-west"],
                          PartitionInput={"Values": ["2025", "eu-west"], "Parameters": {"updated": "yes"},
                                          "StorageDescriptor": {"Location": "s3://lake/elsewhere/"}})
    p = glue.get_partition(DatabaseName="pdb", TableName="logs", PartitionValues=["2025", "eu-west"])["Partition"]
    assert p["Parameters"] == {"updated": "yes"} and p["StorageDescriptor"]["Location"] == "s3://lake/elsewhere/"
    r = glue.batch_update_partition(DatabaseName="pdb", TableName="logs", Entries=[
        {"PartitionValueList": ["2025", "eu-west"], "PartitionInput": {"Values": ["2026", "eu-west"]}},
        {"PartitionValueList": ["1800", "x"], "PartitionInput": {"Values": ["1800", "x"]}}])
    assert [x["ErrorDetail"]["ErrorCode"] for x in r["Errors"]] == ["EntityNotFoundException"]
    assert ("2026", "eu-west") in values(glue) and ("2025", "eu-west") not in values(glue)

    glue.delete_partition(DatabaseName="pdb", TableName="logs", PartitionValues=["2026", "eu-west"])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        glue.delete_partition(DatabaseName="pdb", TableName="logs", PartitionValues=["2026", "eu-west"])
    assert code(e) == "EntityNotFoundException"

    # Segments split the partitions into disjoint parts that together are all of them.
    all_values = values(glue)
    seen = []
    for n in range(4):
        seen += values(glue, Segment={"SegmentNumber": n, "TotalSegments": 4})
    assert sorted(seen) == sorted(all_values) and len(seen) == len(all_values)
    page = glue.get_partitions(DatabaseName="pdb", TableName="logs", MaxResults=5, ExcludeColumnSchema=True)
    assert len(page["Partitions"]) == 5 and page["NextToken"]
    assert "Columns" not in page["Partitions"][0]["StorageDescriptor"]

    glue.create_partition(DatabaseName="pdb", TableName="logs", PartitionInput={"Values": ["1990", "x"]})
    glue.create_partition(DatabaseName="pdb", TableName="logs", PartitionInput={"Values": ["1991", "x"]})
    r = glue.batch_delete_partition(DatabaseName="pdb", TableName="logs", PartitionsToDelete=[
        {"Values": ["1990", "x"]}, {"Values": ["1991", "x"]}, {"Values": ["1992", "x"]}])
    assert [x["PartitionValues"] for x in r["Errors"]] == [["1992", "x"]]


def test_partition_indexes(glue):
    glue.create_database(DatabaseInput={"Name": "idxdb"})
    glue.create_table(DatabaseName="idxdb", TableInput=csv_table("t", "s3://lake/t/", [("year", "int"), ("month", "int")]),
                      PartitionIndexes=[{"Keys": ["year"], "IndexName": "by_year"}])
    glue.create_partition_index(DatabaseName="idxdb", TableName="t",
                                PartitionIndex={"Keys": ["year", "month"], "IndexName": "by_ym"})
    got = glue.get_partition_indexes(DatabaseName="idxdb", TableName="t")["PartitionIndexDescriptorList"]
    assert [(d["IndexName"], [k["Name"] for k in d["Keys"]], d["IndexStatus"]) for d in got] == [
        ("by_year", ["year"], "ACTIVE"), ("by_ym", ["year", "month"], "ACTIVE")]
    assert got[0]["Keys"][0]["Type"] == "int"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        glue.create_partition_index(DatabaseName="idxdb", TableName="t",
                                    PartitionIndex={"Keys": ["nope"], "IndexName": "bad"})
    assert code(e) == "InvalidInputException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        glue.create_partition_index(DatabaseName="idxdb", TableName="t",
                                    PartitionIndex={"Keys": ["year"], "IndexName": "by_year"})
    assert code(e) == "AlreadyExistsException"
    glue.delete_partition_index(DatabaseName="idxdb", TableName="t", IndexName="by_year")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        glue.delete_partition_index(DatabaseName="idxdb", TableName="t", IndexName="by_year")
    assert code(e) == "EntityNotFoundException"
    assert [d["IndexName"] for d in glue.get_partition_indexes(DatabaseName="idxdb", TableName="t")[
        "PartitionIndexDescriptorList"]] == ["by_ym"]


def test_delete_database_removes_tables_and_partitions(glue):
    glue.create_database(DatabaseInput={"Name": "gone"})
    glue.create_table(DatabaseName="gone", TableInput=csv_table("t", "s3://lake/t/", [("k", "string")]))
    glue.create_partition(DatabaseName="gone", TableName="t", PartitionInput={"Values": ["a"]})
    glue.delete_database(Name="gone")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        glue.get_database(Name="gone")
    assert code(e) == "EntityNotFoundException"
    # A new database of the same name starts empty.
    glue.create_database(DatabaseInput={"Name": "gone"})
    assert glue.get_tables(DatabaseName="gone")["TableList"] == []
    glue.create_table(DatabaseName="gone", TableInput=csv_table("t", "s3://lake/t/", [("k", "string")]))
    assert glue.get_partitions(DatabaseName="gone", TableName="t")["Partitions"] == []
    with pytest.raises(botocore.exceptions.ClientError) as e:
        glue.delete_database(Name="never")
    assert code(e) == "EntityNotFoundException"


def test_catalog_survives_sigkill(tmp_path):
    with Lakebox(tmp_path) as lb:
        g = lb.client("glue")
        g.create_database(DatabaseInput={"Name": "durable"})
        g.create_table(DatabaseName="durable", TableInput=csv_table("t", "s3://lake/t/", [("k", "string")]))
        g.batch_create_partition(DatabaseName="durable", TableName="t",
                                 PartitionInputList=[{"Values": [str(i)]} for i in range(50)])
        lb.kill()
    with Lakebox(tmp_path) as lb:
        g = lb.client("glue")
        assert g.get_table(DatabaseName="durable", Name="t")["Table"]["Name"] == "t"
        assert len(g.get_partitions(DatabaseName="durable", TableName="t")["Partitions"]) == 50


def test_cli_round_trip(lakebox):
    r = lakebox.cli("glue", "create-database", "--database-input", json.dumps({"Name": "clidb"}))
    assert r.returncode == 0, r.stderr
    r = lakebox.cli("glue", "create-table", "--database-name", "clidb", "--table-input",
                    json.dumps(csv_table("t", "s3://lake/t/")))
    assert r.returncode == 0, r.stderr
    r = lakebox.cli("glue", "get-tables", "--database-name", "clidb")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert [t["Name"] for t in out["TableList"]] == ["t"]
