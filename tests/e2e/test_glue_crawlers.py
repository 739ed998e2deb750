"""Glue crawlers and classifiers with boto3: data written to Lakebox S3 (CSV, JSON lines,
compressed text, Parquet, ORC, Avro), crawled into tables and partitions as Glue writes them."""

import bz2
import gzip
import io
import json
import time

import botocore.exceptions
import cramjam
import fastavro
import pyarrow as pa
import pyarrow.orc as orc
import pyarrow.parquet as pq
import pytest

from lakebox_harness import Lakebox
from signing import send

ROLE = "arn:aws:iam::000000000000:role/glue"


def code(e):
    return e.value.response["Error"]["Code"]


@pytest.fixture(scope="module")
def lakebox(tmp_path_factory):
    server = Lakebox(tmp_path_factory.mktemp("crawl")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def glue(lakebox):
    return lakebox.client("glue")


@pytest.fixture(scope="module")
def s3(lakebox):
    c = lakebox.client("s3")
    c.create_bucket(Bucket="lake")
    return c


_counter = [0]


def unique(prefix):
    _counter[0] += 1
    return f"{prefix}{_counter[0]}"


def wait_ready(glue, name, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        c = glue.get_crawler(Name=name)["Crawler"]
        if c["State"] == "READY" and c.get("LastCrawl"):
            return c
        time.sleep(0.05)
    raise AssertionError(f"crawler {name} did not finish")


def crawl(glue, path, db=None, exclusions=None, sample_size=None, **kw):
    """Creates a database and a crawler over `path`, runs it, returns (db, crawler)."""
    db = db or unique("db")
    try:
        glue.create_database(DatabaseInput={"Name": db})
    except glue.exceptions.AlreadyExistsException:
        pass
    name = kw.pop("Name", None) or unique("crawler")
    target = {"Path": path}
    if exclusions:
        target["Exclusions"] = exclusions
    if sample_size:
        target["SampleSize"] = sample_size
    glue.create_crawler(Name=name, Role=ROLE, DatabaseName=db, Targets={"S3Targets": [target]}, **kw)
    glue.start_crawler(Name=name)
    c = wait_ready(glue, name)
    assert c["LastCrawl"]["Status"] == "SUCCEEDED", c["LastCrawl"]
    return db, name


def recrawl(glue, name):
    before = glue.get_crawler(Name=name)["Crawler"]["LastCrawl"]["MessagePrefix"]
    glue.start_crawler(Name=name)
    deadline = time.time() + 30
    while time.time() < deadline:
        c = glue.get_crawler(Name=name)["Crawler"]
        if c["State"] == "READY" and c["LastCrawl"]["MessagePrefix"] != before:
            assert c["LastCrawl"]["Status"] == "SUCCEEDED", c["LastCrawl"]
            return c
        time.sleep(0.05)
    raise AssertionError("recrawl did not finish")


def tables(glue, db):
    return {t["Name"]: t for t in glue.get_tables(DatabaseName=db)["TableList"]}


def columns(t):
    return [(c["Name"], c["Type"]) for c in t["StorageDescriptor"]["Columns"]]


def partitions(glue, db, table):
    out = []
    for page in glue.get_paginator("get_partitions").paginate(DatabaseName=db, TableName=table):
        out += page["Partitions"]
    return sorted(out, key=lambda p: p["Values"])


CSV = "id,name,price,active,day,seen_at\n1,apple,1.5,true,2024-01-01,2024-01-01 10:00:00\n2,pear,2.25,false,2024-01-02,2024-01-02 11:30:00\n3,fig,3,true,2024-01-03,2024-01-03 12:00:00\n"


def test_csv_with_header(glue, s3):
    s3.put_object(Bucket="lake", Key="csvh/sales/part-0.csv", Body=CSV.encode())
    s3.put_object(Bucket="lake", Key="csvh/sales/part-1.csv", Body=CSV.encode())
    db, name = crawl(glue, "s3://lake/csvh/sales/")
    t = tables(glue, db)["sales"]
    assert columns(t) == [("id", "bigint"), ("name", "string"), ("price", "double"), ("active", "boolean"),
                          ("day", "date"), ("seen_at", "timestamp")]
    sd = t["StorageDescriptor"]
    assert sd["Location"] == "s3://lake/csvh/sales/"
    assert sd["InputFormat"] == "org.apache.hadoop.mapred.TextInputFormat"
    assert sd["OutputFormat"] == "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"
    assert sd["SerdeInfo"]["SerializationLibrary"] == "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe"
    assert sd["SerdeInfo"]["Parameters"] == {"field.delim": ","}
    assert sd["Compressed"] is False and sd["NumberOfBuckets"] == -1
    p = t["Parameters"]
    assert p["classification"] == "csv" and p["delimiter"] == "," and p["skip.header.line.count"] == "1"
    assert p["compressionType"] == "none" and p["typeOfData"] == "file" and p["columnsOrdered"] == "true"
    assert p["areColumnsQuoted"] == "false" and p["UPDATED_BY_CRAWLER"] == name
    assert p["objectCount"] == "2" and p["recordCount"] == "6" and p["sizeKey"] == str(2 * len(CSV))
    assert p["CrawlerSchemaSerializerVersion"] == "1.0" and p["CrawlerSchemaDeserializerVersion"] == "1.0"
    assert t["TableType"] == "EXTERNAL_TABLE" and t["PartitionKeys"] == []
    assert sd["Parameters"] == p  # Glue repeats the table parameters in the storage descriptor


def test_csv_without_header_and_other_delimiters(glue, s3):
    s3.put_object(Bucket="lake", Key="nohdr/data/a.csv", Body=b"1,apple,1.5\n2,pear,2.5\n")
    for d, folder in [("\t", "tsv"), ("|", "pipe"), (";", "semi"), ("\x01", "ctrla")]:
        body = d.join(["id", "city", "pop"]) + "\n" + d.join(["1", "oslo", "700000"]) + "\n" + d.join(["2", "rome", "2800000"]) + "\n"
        s3.put_object(Bucket="lake", Key=f"delims/{folder}/data.txt", Body=body.encode())
    db, _ = crawl(glue, "s3://lake/nohdr/data/")
    t = tables(glue, db)["data"]
    assert columns(t) == [("col0", "bigint"), ("col1", "string"), ("col2", "double")]
    assert "skip.header.line.count" not in t["Parameters"]
    db, _ = crawl(glue, "s3://lake/delims/")
    got = tables(glue, db)
    for d, folder in [("\t", "tsv"), ("|", "pipe"), (";", "semi"), ("\x01", "ctrla")]:
        t = got[folder]
        assert t["Parameters"]["delimiter"] == d
        assert t["StorageDescriptor"]["SerdeInfo"]["Parameters"]["field.delim"] == d
        assert columns(t) == [("id", "bigint"), ("city", "string"), ("pop", "bigint")]


def test_quoted_csv_uses_open_csv_serde(glue, s3):
    s3.put_object(Bucket="lake", Key="quoted/people/p.csv",
                  Body=b'name,age\n"Smith, John",42\n"O""Neil",37\n')
    db, _ = crawl(glue, "s3://lake/quoted/people/")
    t = tables(glue, db)["people"]
    assert t["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"] == "org.apache.hadoop.hive.serde2.OpenCSVSerde"
    assert t["StorageDescriptor"]["SerdeInfo"]["Parameters"]["quoteChar"] == '"'
    assert t["Parameters"]["areColumnsQuoted"] == "true"
    assert columns(t) == [("name", "string"), ("age", "bigint")]


def test_compressed_text(glue, s3):
    s3.put_object(Bucket="lake", Key="comp/gz/a.csv.gz", Body=gzip.compress(CSV.encode()))
    lines = "".join(json.dumps({"id": i, "v": f"x{i}"}) + "\n" for i in range(50)).encode()
    s3.put_object(Bucket="lake", Key="comp/bz/a.json.bz2", Body=bz2.compress(lines))
    s3.put_object(Bucket="lake", Key="comp/zs/a.json.zst", Body=bytes(cramjam.zstd.compress(lines)))
    s3.put_object(Bucket="lake", Key="comp/sn/a.json.snappy", Body=bytes(cramjam.snappy.compress(lines)))
    db, _ = crawl(glue, "s3://lake/comp/")
    got = tables(glue, db)
    assert got["gz"]["Parameters"]["compressionType"] == "gzip"
    assert got["gz"]["Parameters"]["classification"] == "csv"
    assert got["gz"]["StorageDescriptor"]["Compressed"] is True
    assert columns(got["gz"])[0] == ("id", "bigint")
    for folder, codec in [("bz", "bzip2"), ("zs", "zstd"), ("sn", "snappy")]:
        t = got[folder]
        assert t["Parameters"]["classification"] == "json", folder
        assert t["Parameters"]["compressionType"] == codec
        assert columns(t) == [("id", "int"), ("v", "string")]


def test_json_lines_nested(glue, s3):
    rows = [
        {"id": 1, "user": {"name": "a", "age": 30}, "tags": ["x", "y"], "score": 1.5, "ok": True},
        {"id": 9999999999, "user": {"name": "b", "email": "b@x"}, "tags": [], "events": [{"t": 1}]},
    ]
    s3.put_object(Bucket="lake", Key="jsonl/events/e.json", Body="\n".join(json.dumps(r) for r in rows).encode())
    db, _ = crawl(glue, "s3://lake/jsonl/events/")
    t = tables(glue, db)["events"]
    assert columns(t) == [("id", "bigint"), ("user", "struct<name:string,age:int,email:string>"),
                          ("tags", "array<string>"), ("score", "double"), ("ok", "boolean"),
                          ("events", "array<struct<t:int>>")]
    assert t["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"] == "org.openx.data.jsonserde.JsonSerDe"
    assert t["StorageDescriptor"]["SerdeInfo"]["Parameters"]["paths"] == "id,user,tags,score,ok,events"
    assert t["Parameters"]["classification"] == "json"


def arrow_table():
    return pa.table({
        "id": pa.array([1, 2, 3], pa.int64()),
        "Name": pa.array(["a", "b", None], pa.string()),
        "price": pa.array([1.5, 2.5, 3.5], pa.float64()),
        "qty": pa.array([1, 2, 3], pa.int32()),
        "small": pa.array([1, 2, 3], pa.int16()),
        "flag": pa.array([True, False, True]),
        "day": pa.array([19000, 19001, 19002], pa.date32()),
        "ts": pa.array([1, 2, 3], pa.timestamp("ms")),
        "amount": pa.array([1, 2, 3], pa.decimal128(10, 2)),
        "tags": pa.array([["a"], [], ["b", "c"]], pa.list_(pa.string())),
        "attrs": pa.array([[("k", 1)], [], []], pa.map_(pa.string(), pa.int64())),
        "addr": pa.array([{"city": "x", "zip": 1}] * 3, pa.struct([("city", pa.string()), ("zip", pa.int32())])),
    })


EXPECTED_COLUMNAR = [("id", "bigint"), ("name", "string"), ("price", "double"), ("qty", "int"),
                     ("small", "smallint"), ("flag", "boolean"), ("day", "date"), ("ts", "timestamp"),
                     ("amount", "decimal(10,2)"), ("tags", "array<string>"), ("attrs", "map<string,bigint>"),
                     ("addr", "struct<city:string,zip:int>")]


def test_parquet_orc_avro_from_file_metadata(glue, s3):
    buf = io.BytesIO()
    pq.write_table(arrow_table(), buf, compression="snappy")
    s3.put_object(Bucket="lake", Key="cols/pq/a.parquet", Body=buf.getvalue())
    buf = io.BytesIO()
    orc.write_table(arrow_table(), buf, compression="zlib")
    s3.put_object(Bucket="lake", Key="cols/orcdata/a.orc", Body=buf.getvalue())
    schema = {"type": "record", "name": "r", "fields": [
        {"name": "id", "type": "long"}, {"name": "name", "type": ["null", "string"]},
        {"name": "score", "type": "double"}, {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {"name": "props", "type": {"type": "map", "values": "int"}},
        {"name": "kind", "type": {"type": "enum", "name": "K", "symbols": ["A", "B"]}}]}
    buf = io.BytesIO()
    fastavro.writer(buf, schema, [{"id": 1, "name": "a", "score": 1.0, "day": 1, "tags": [], "props": {}, "kind": "A"}],
                    codec="deflate")
    s3.put_object(Bucket="lake", Key="cols/av/a.avro", Body=buf.getvalue())
    db, _ = crawl(glue, "s3://lake/cols/")
    got = tables(glue, db)
    pqt = got["pq"]
    assert columns(pqt) == EXPECTED_COLUMNAR
    assert pqt["Parameters"]["classification"] == "parquet" and pqt["Parameters"]["recordCount"] == "3"
    assert pqt["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"] == "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    assert pqt["StorageDescriptor"]["InputFormat"] == "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    orct = got["orcdata"]
    assert columns(orct) == EXPECTED_COLUMNAR
    assert orct["Parameters"]["classification"] == "orc"
    assert orct["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"] == "org.apache.hadoop.hive.ql.io.orc.OrcSerde"
    avt = got["av"]
    assert columns(avt) == [("id", "bigint"), ("name", "string"), ("score", "double"), ("day", "date"),
                            ("tags", "array<string>"), ("props", "map<string,int>"), ("kind", "string")]
    assert avt["Parameters"]["classification"] == "avro"
    assert json.loads(avt["Parameters"]["avro.schema.literal"])["name"] == "r"
    assert avt["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"] == "org.apache.hadoop.hive.serde2.avro.AvroSerDe"


def test_hive_partitions_and_recrawl_adds_partition_and_column(glue, s3):
    for y, m in [("2023", "12"), ("2024", "01"), ("2024", "02")]:
        s3.put_object(Bucket="lake", Key=f"hive/orders/year={y}/month={m}/part.csv",
                      Body=b"order_id,amount\n1,10.5\n2,20.25\n")
    db, name = crawl(glue, "s3://lake/hive/orders/")
    t = tables(glue, db)["orders"]
    assert [(k["Name"], k["Type"]) for k in t["PartitionKeys"]] == [("year", "string"), ("month", "string")]
    assert columns(t) == [("order_id", "bigint"), ("amount", "double")]
    parts = partitions(glue, db, "orders")
    assert [p["Values"] for p in parts] == [["2023", "12"], ["2024", "01"], ["2024", "02"]]
    assert parts[0]["StorageDescriptor"]["Location"] == "s3://lake/hive/orders/year=2023/month=12/"
    assert parts[0]["Parameters"]["classification"] == "csv"
    assert parts[0]["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"].endswith("LazySimpleSerDe")
    assert glue.get_partitions(DatabaseName=db, TableName="orders", Expression="year = '2024'")["Partitions"]

    # New data: a new partition, with a new column.
    s3.put_object(Bucket="lake", Key="hive/orders/year=2024/month=03/part.csv",
                  Body=b"order_id,amount,coupon\n3,30.0,SAVE\n4,1.0,NONE\n")
    c = recrawl(glue, name)
    assert [p["Values"] for p in partitions(glue, db, "orders")][-1] == ["2024", "03"]
    t = tables(glue, db)["orders"]
    assert columns(t) == [("order_id", "bigint"), ("amount", "double"), ("coupon", "string")]
    assert int(t["VersionId"]) >= 1
    m = glue.get_crawler_metrics(CrawlerNameList=[name])["CrawlerMetricsList"][0]
    assert m["TablesCreated"] == 0 and m["TablesUpdated"] == 1
    assert c["LastCrawl"]["Status"] == "SUCCEEDED"


def test_unnamed_partitions(glue, s3):
    for d in ["2024/01/01", "2024/01/02", "2024/02/01"]:
        s3.put_object(Bucket="lake", Key=f"logs/web/{d}/events.json",
                      Body=b'{"path": "/a", "status": 200}\n{"path": "/b", "status": 404}\n')
    db, _ = crawl(glue, "s3://lake/logs/web/")
    t = tables(glue, db)["web"]
    assert [k["Name"] for k in t["PartitionKeys"]] == ["partition_0", "partition_1", "partition_2"]
    assert [p["Values"] for p in partitions(glue, db, "web")] == [["2024", "01", "01"], ["2024", "01", "02"], ["2024", "02", "01"]]


def test_folders_with_different_schemas_are_separate_tables(glue, s3):
    s3.put_object(Bucket="lake", Key="mixed/customers/c.csv", Body=b"cid,cname,country\n1,a,no\n2,b,se\n")
    s3.put_object(Bucket="lake", Key="mixed/payments/p.csv", Body=b"pid,amount,currency,paid\n1,2.5,EUR,true\n2,3.5,USD,false\n")
    db, _ = crawl(glue, "s3://lake/mixed/", TablePrefix="raw_")
    assert sorted(tables(glue, db)) == ["raw_customers", "raw_payments"]
    # CombineCompatibleSchemas puts same-format folders into one table, the folders becoming partitions.
    cfg = json.dumps({"Version": 1.0, "Grouping": {"TableGroupingPolicy": "CombineCompatibleSchemas"}})
    db2, _ = crawl(glue, "s3://lake/mixed/", Configuration=cfg)
    got = tables(glue, db2)
    assert list(got) == ["mixed"]
    assert [k["Name"] for k in got["mixed"]["PartitionKeys"]] == ["partition_0"]
    assert {c for c, _ in columns(got["mixed"])} == {"cid", "cname", "country", "pid", "amount", "currency", "paid"}


def test_exclusions_and_sample_size(glue, s3):
    s3.put_object(Bucket="lake", Key="excl/t/a.csv", Body=b"a,b\n1,2\n3,4\n")
    s3.put_object(Bucket="lake", Key="excl/t/b.csv", Body=b"a,b,c\n1,2,3\n3,4,5\n")
    s3.put_object(Bucket="lake", Key="excl/t/skip/x.json", Body=b'{"z": 1}\n')
    s3.put_object(Bucket="lake", Key="excl/t/_SUCCESS", Body=b"x")
    db, _ = crawl(glue, "s3://lake/excl/t/", exclusions=["skip/**", "*.tmp"])
    t = tables(glue, db)["t"]
    assert columns(t) == [("a", "bigint"), ("b", "bigint"), ("c", "bigint")]
    assert t["PartitionKeys"] == []
    db, _ = crawl(glue, "s3://lake/excl/t/", exclusions=["skip/**"], sample_size=1)
    assert columns(tables(glue, db)["t"]) == [("a", "bigint"), ("b", "bigint")]


def test_schema_change_and_delete_policies(glue, s3):
    s3.put_object(Bucket="lake", Key="policy/keep/a.csv", Body=b"a,b\n1,2\n3,4\n")
    s3.put_object(Bucket="lake", Key="policy/gone/a.csv", Body=b"x,y\nq,1\nr,2\n")
    s3.put_object(Bucket="lake", Key="policy/other/a.json", Body=b'{"p": 1, "q": "z", "r": true}\n')
    db, name = crawl(glue, "s3://lake/policy/",
                     SchemaChangePolicy={"UpdateBehavior": "LOG", "DeleteBehavior": "DELETE_FROM_DATABASE"})
    assert sorted(tables(glue, db)) == ["gone", "keep", "other"]
    s3.put_object(Bucket="lake", Key="policy/keep/b.csv", Body=b"a,b,extra\n1,2,x\n3,4,y\n")
    s3.delete_object(Bucket="lake", Key="policy/gone/a.csv")
    recrawl(glue, name)
    got = tables(glue, db)
    assert sorted(got) == ["keep", "other"]
    assert columns(got["keep"]) == [("a", "bigint"), ("b", "bigint")]  # LOG: the table is not changed
    m = glue.get_crawler_metrics(CrawlerNameList=[name])["CrawlerMetricsList"][0]
    assert m["TablesDeleted"] == 1

    s3.put_object(Bucket="lake", Key="policy2/old/a.csv", Body=b"a,b\n1,2\n3,4\n")
    s3.put_object(Bucket="lake", Key="policy2/new/a.json", Body=b'{"p": 1}\n')
    db, name = crawl(glue, "s3://lake/policy2/")  # default: UPDATE_IN_DATABASE, DEPRECATE_IN_DATABASE
    s3.delete_object(Bucket="lake", Key="policy2/old/a.csv")
    recrawl(glue, name)
    assert "DEPRECATED_BY_CRAWLER" in tables(glue, db)["old"]["Parameters"]


def test_recrawl_new_folders_only(glue, s3):
    s3.put_object(Bucket="lake", Key="incr/t/dt=1/a.csv", Body=b"a,b\n1,2\n3,4\n")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        glue.create_crawler(Name=unique("bad"), Role=ROLE, DatabaseName="x", Targets={"S3Targets": [{"Path": "s3://lake/incr/t/"}]},
                            RecrawlPolicy={"RecrawlBehavior": "CRAWL_NEW_FOLDERS_ONLY"})
    assert code(e) == "InvalidInputException"
    db, name = crawl(glue, "s3://lake/incr/t/", RecrawlPolicy={"RecrawlBehavior": "CRAWL_NEW_FOLDERS_ONLY"},
                     SchemaChangePolicy={"UpdateBehavior": "LOG", "DeleteBehavior": "LOG"})
    s3.put_object(Bucket="lake", Key="incr/t/dt=2/a.csv", Body=b"a,b\n5,6\n7,8\n")
    recrawl(glue, name)
    assert [p["Values"] for p in partitions(glue, db, "t")] == [["1"], ["2"]]


def test_partitions_inherit_from_table(glue, s3):
    s3.put_object(Bucket="lake", Key="inherit/t/k=1/a.csv", Body=b"a,b\n1,2\n3,4\n")
    s3.put_object(Bucket="lake", Key="inherit/t/k=2/a.csv", Body=b"a,b,c\n1,2,3\n3,4,5\n")
    cfg = json.dumps({"Version": 1.0, "CrawlerOutput": {"Partitions": {"AddOrUpdateBehavior": "InheritFromTable"}}})
    db, _ = crawl(glue, "s3://lake/inherit/t/", Configuration=cfg)
    t = tables(glue, db)["t"]
    for p in partitions(glue, db, "t"):
        assert p["StorageDescriptor"]["Columns"] == t["StorageDescriptor"]["Columns"]
    db, _ = crawl(glue, "s3://lake/inherit/t/")
    assert [len(p["StorageDescriptor"]["Columns"]) for p in partitions(glue, db, "t")] == [2, 3]


def test_custom_classifiers(glue, s3):
    glue.create_classifier(CsvClassifier={"Name": unique("csvc"), "Delimiter": "#", "ContainsHeader": "ABSENT",
                                          "Header": ["Key", "Val"], "QuoteSymbol": "'"})
    csv_name = glue.get_classifiers()["Classifiers"][-1]["CsvClassifier"]["Name"]
    s3.put_object(Bucket="lake", Key="custom/hash/a.txt", Body=b"k1#1\nk2#2\n")
    db, _ = crawl(glue, "s3://lake/custom/hash/", Classifiers=[csv_name])
    t = tables(glue, db)["hash"]
    assert columns(t) == [("key", "string"), ("val", "bigint")] and t["Parameters"]["delimiter"] == "#"

    jname = unique("jsonc")
    glue.create_classifier(JsonClassifier={"Name": jname, "JsonPath": "$.records[*]"})
    s3.put_object(Bucket="lake", Key="custom/wrapped/a.json",
                  Body=json.dumps({"records": [{"a": 1, "b": "x"}, {"a": 2, "c": True}]}).encode())
    db, _ = crawl(glue, "s3://lake/custom/wrapped/", Classifiers=[jname])
    t = tables(glue, db)["wrapped"]
    assert columns(t) == [("a", "int"), ("b", "string"), ("c", "boolean")]
    assert t["Parameters"]["jsonPath"] == "$.records[*]"

    gname = unique("grokc")
    glue.create_classifier(GrokClassifier={"Name": gname, "Classification": "applog",
                                           "GrokPattern": "%{TIMESTAMP_ISO8601:ts} %{LOGLEVEL:level} %{MYID:id:int} %{GREEDYDATA:msg}",
                                           "CustomPatterns": "MYID [0-9]+"})
    s3.put_object(Bucket="lake", Key="custom/applog/a.log",
                  Body=b"2024-01-01T10:00:00Z INFO 12 started\n2024-01-01T10:00:01Z WARN 13 slow disk\n")
    db, _ = crawl(glue, "s3://lake/custom/applog/", Classifiers=[gname])
    t = tables(glue, db)["applog"]
    assert t["Parameters"]["classification"] == "applog"
    assert columns(t) == [("ts", "string"), ("level", "string"), ("id", "int"), ("msg", "string")]
    sd = t["StorageDescriptor"]["SerdeInfo"]
    assert sd["SerializationLibrary"] == "com.amazonaws.glue.serde.GrokSerDe"
    assert sd["Parameters"]["input.grokCustomPatterns"] == "MYID [0-9]+"


def test_classifier_crud_and_errors(glue):
    name = unique("cls")
    glue.create_classifier(GrokClassifier={"Name": name, "Classification": "c", "GrokPattern": "%{WORD:w}"})
    c = glue.get_classifier(Name=name)["Classifier"]["GrokClassifier"]
    assert c["Version"] == 1 and c["GrokPattern"] == "%{WORD:w}" and c["CreationTime"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        glue.create_classifier(GrokClassifier={"Name": name, "Classification": "c", "GrokPattern": "%{WORD:w}"})
    assert code(e) == "AlreadyExistsException"
    glue.update_classifier(GrokClassifier={"Name": name, "GrokPattern": "%{INT:n:int}"})
    c = glue.get_classifier(Name=name)["Classifier"]["GrokClassifier"]
    assert c["Version"] == 2 and c["GrokPattern"] == "%{INT:n:int}" and c["Classification"] == "c"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        glue.create_classifier(GrokClassifier={"Name": unique("x"), "Classification": "c", "GrokPattern": "%{NOPE:x}"})
    assert code(e) == "InvalidInputException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        glue.create_classifier(CsvClassifier={"Name": unique("x"), "Delimiter": ",", "QuoteSymbol": ","})
    assert code(e) == "InvalidInputException"
    glue.create_classifier(XMLClassifier={"Name": unique("xml"), "Classification": "xml", "RowTag": "row"})
    names = []
    for page in glue.get_paginator("get_classifiers").paginate(PaginationConfig={"PageSize": 2}):
        names += [list(c.values())[0]["Name"] for c in page["Classifiers"]]
    assert name in names
    glue.delete_classifier(Name=name)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        glue.get_classifier(Name=name)
    assert code(e) == "EntityNotFoundException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        glue.delete_classifier(Name=name)
    assert code(e) == "EntityNotFoundException"


def test_crawler_api(glue):
    name = unique("api")
    glue.create_crawler(Name=name, Role=ROLE, DatabaseName="somedb", Description="d",
                        Targets={"S3Targets": [{"Path": "s3://lake/x/", "Exclusions": ["*.tmp"]}]},
                        Schedule="cron(15 12 * * ? *)", TablePrefix="p_", Tags={"team": "data"})
    c = glue.get_crawler(Name=name)["Crawler"]
    assert c["State"] == "READY" and c["Role"] == ROLE and c["DatabaseName"] == "somedb"
    assert c["Targets"]["S3Targets"][0]["Exclusions"] == ["*.tmp"]
    assert c["Schedule"] == {"ScheduleExpression": "cron(15 12 * * ? *)", "State": "SCHEDULED"}
    assert c["SchemaChangePolicy"] == {"UpdateBehavior": "UPDATE_IN_DATABASE", "DeleteBehavior": "DEPRECATE_IN_DATABASE"}
    assert c["RecrawlPolicy"] == {"RecrawlBehavior": "CRAWL_EVERYTHING"}
    assert c["TablePrefix"] == "p_" and c["Version"] == 1 and "LastCrawl" not in c
    with pytest.raises(botocore.exceptions.ClientError) as e:
        glue.create_crawler(Name=name, Role=ROLE, Targets={"S3Targets": [{"Path": "s3://lake/x/"}]})
    assert code(e) == "AlreadyExistsException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        glue.create_crawler(Name=unique("c"), Role=ROLE, Targets={"S3Targets": [{"Path": "s3://lake/x/"}]},
                            Schedule="cron(* * * * * *)")
    assert code(e) == "InvalidInputException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        glue.create_crawler(Name=unique("c"), Role=ROLE, Targets={"JdbcTargets": [{"ConnectionName": "c", "Path": "db/%"}]})
    assert code(e) == "InvalidInputException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        glue.get_crawler(Name="nope")
    assert code(e) == "EntityNotFoundException"

    glue.update_crawler(Name=name, Description="new", SchemaChangePolicy={"DeleteBehavior": "LOG"})
    c = glue.get_crawler(Name=name)["Crawler"]
    assert c["Description"] == "new" and c["Version"] == 2
    assert c["SchemaChangePolicy"] == {"UpdateBehavior": "UPDATE_IN_DATABASE", "DeleteBehavior": "LOG"}

    assert name in glue.list_crawlers()["CrawlerNames"]
    assert glue.list_crawlers(Tags={"team": "data"})["CrawlerNames"] == [name]
    assert name in [x["Name"] for x in glue.get_crawlers()["Crawlers"]]

    glue.stop_crawler_schedule(CrawlerName=name)
    assert glue.get_crawler(Name=name)["Crawler"]["Schedule"]["State"] == "NOT_SCHEDULED"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        glue.stop_crawler_schedule(CrawlerName=name)
    assert code(e) == "SchedulerNotRunningException"
    glue.start_crawler_schedule(CrawlerName=name)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        glue.start_crawler_schedule(CrawlerName=name)
    assert code(e) == "SchedulerRunningException"
    other = unique("nosched")
    glue.create_crawler(Name=other, Role=ROLE, Targets={"S3Targets": [{"Path": "s3://lake/x/"}]})
    with pytest.raises(botocore.exceptions.ClientError) as e:
        glue.start_crawler_schedule(CrawlerName=other)
    assert code(e) == "NoScheduleException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        glue.stop_crawler(Name=other)
    assert code(e) == "CrawlerNotRunningException"

    glue.delete_crawler(Name=name)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        glue.delete_crawler(Name=name)
    assert code(e) == "EntityNotFoundException"


def test_crawl_into_missing_database_fails(glue, s3):
    s3.put_object(Bucket="lake", Key="nodb/t/a.csv", Body=b"a,b\n1,2\n3,4\n")
    name = unique("nodb")
    glue.create_crawler(Name=name, Role=ROLE, DatabaseName="does_not_exist", Targets={"S3Targets": [{"Path": "s3://lake/nodb/"}]})
    glue.start_crawler(Name=name)
    c = wait_ready(glue, name)
    assert c["LastCrawl"]["Status"] == "FAILED" and "does_not_exist" in c["LastCrawl"]["ErrorMessage"]


def test_states_running_stop_and_schedule_firing(tmp_path):
    with Lakebox(tmp_path, "--glue-crawl-min-ms", "3000") as lb:
        glue, s3 = lb.client("glue"), lb.client("s3")
        s3.create_bucket(Bucket="lake")
        s3.put_object(Bucket="lake", Key="st/t/a.csv", Body=b"a,b\n1,2\n3,4\n")
        glue.create_database(DatabaseInput={"Name": "st"})
        glue.create_crawler(Name="c1", Role=ROLE, DatabaseName="st", Targets={"S3Targets": [{"Path": "s3://lake/st/t/"}]})
        glue.start_crawler(Name="c1")
        c = glue.get_crawler(Name="c1")["Crawler"]
        assert c["State"] == "RUNNING"
        with pytest.raises(botocore.exceptions.ClientError) as e:
            glue.start_crawler(Name="c1")
        assert code(e) == "CrawlerRunningException"
        with pytest.raises(botocore.exceptions.ClientError) as e:
            glue.update_crawler(Name="c1", Description="x")
        assert code(e) == "CrawlerRunningException"
        with pytest.raises(botocore.exceptions.ClientError) as e:
            glue.delete_crawler(Name="c1")
        assert code(e) == "CrawlerRunningException"
        glue.stop_crawler(Name="c1")
        assert glue.get_crawler(Name="c1")["Crawler"]["State"] in ("STOPPING", "READY")
        c = wait_ready(glue, "c1")
        assert c["LastCrawl"]["Status"] == "CANCELLED"

        glue.start_crawler(Name="c1")
        c = wait_ready(glue, "c1")
        assert c["LastCrawl"]["Status"] == "SUCCEEDED"
        m = glue.get_crawler_metrics(CrawlerNameList=["c1"])["CrawlerMetricsList"][0]
        assert m["TablesCreated"] == 1 and m["LastRuntimeSeconds"] >= 3.0 and m["MedianRuntimeSeconds"] > 0
        assert "t" in tables(glue, "st")

        # A schedule every 5 minutes: moving the server's clock 5 minutes fires it.
        s3.put_object(Bucket="lake", Key="st/u/a.csv", Body=b"x,y\n1,q\n2,r\n")
        glue.create_crawler(Name="sched", Role=ROLE, DatabaseName="st", Targets={"S3Targets": [{"Path": "s3://lake/st/u/"}]},
                            Schedule="cron(0/5 * * * ? *)")
        assert "LastCrawl" not in glue.get_crawler(Name="sched")["Crawler"]
        status, _, _ = send(lb.endpoint, "POST", "/_lakebox/test/clock?advance_ms=300000")
        assert status == 200
        c = wait_ready(glue, "sched", timeout=20)
        assert c["LastCrawl"]["Status"] == "SUCCEEDED"
        assert "u" in tables(glue, "st")


def test_crawlers_survive_restart(tmp_path):
    with Lakebox(tmp_path) as lb:
        g = lb.client("glue")
        g.create_crawler(Name="keep", Role=ROLE, Targets={"S3Targets": [{"Path": "s3://lake/x/"}]}, Schedule="cron(0 1 * * ? *)")
        g.create_classifier(JsonClassifier={"Name": "jc", "JsonPath": "$[*]"})
        lb.kill()
    with Lakebox(tmp_path) as lb:
        g = lb.client("glue")
        assert g.get_crawler(Name="keep")["Crawler"]["Schedule"]["State"] == "SCHEDULED"
        assert g.get_classifier(Name="jc")["Classifier"]["JsonClassifier"]["JsonPath"] == "$[*]"


def test_cli_example_from_the_docs(lakebox, tmp_path):
    """docs/glue.md's example, command for command."""
    part = tmp_path / "part.csv"
    part.write_text("id,name,price\n1,apple,1.5\n2,pear,2.25\n")

    def cli(*args):
        r = lakebox.cli(*args)
        assert r.returncode == 0, r.stderr
        return r.stdout

    cli("s3", "mb", "s3://docs-lake")
    cli("s3", "cp", str(part), "s3://docs-lake/sales/year=2024/month=01/part.csv")
    cli("glue", "create-database", "--database-input", "Name=shop")
    cli("glue", "create-crawler", "--name", "shop-crawler", "--role", ROLE, "--database-name", "shop",
        "--targets", '{"S3Targets":[{"Path":"s3://docs-lake/sales/"}]}')
    cli("glue", "start-crawler", "--name", "shop-crawler")
    deadline = time.time() + 30
    while json.loads(cli("glue", "get-crawler", "--name", "shop-crawler", "--query", "Crawler.[State,LastCrawl.Status]")) != ["READY", "SUCCEEDED"]:
        assert time.time() < deadline
        time.sleep(0.1)
    table = json.loads(cli("glue", "get-table", "--database-name", "shop", "--name", "sales"))["Table"]
    assert [c["Name"] for c in table["StorageDescriptor"]["Columns"]] == ["id", "name", "price"]
    parts = json.loads(cli("glue", "get-partitions", "--database-name", "shop", "--table-name", "sales",
                           "--expression", "year = '2024'"))["Partitions"]
    assert [p["Values"] for p in parts] == [["2024", "01"]]


def test_grouping_follows_glues_documented_examples(glue, s3):
    # Glue's example: dissimilar schemas under year= folders become two tables, year_2017 and
    # year_2018; with CombineCompatibleSchemas, one table with partition key year.
    s3.put_object(Bucket="lake", Key="docex/table1/year=2017/data1.json", Body=b'{"A": 1, "B": 2}\n')
    s3.put_object(Bucket="lake", Key="docex/table1/year=2018/data2.json", Body=b'{"C": 3, "D": 4}\n')
    db, _ = crawl(glue, "s3://lake/docex/table1/")
    assert sorted(tables(glue, db)) == ["year_2017", "year_2018"]
    cfg = json.dumps({"Version": 1.0, "Grouping": {"TableGroupingPolicy": "CombineCompatibleSchemas"}})
    db, _ = crawl(glue, "s3://lake/docex/table1/", Configuration=cfg)
    t = tables(glue, db)["table1"]
    assert columns(t) == [("a", "int"), ("b", "int"), ("c", "int"), ("d", "int")]
    assert [(k["Name"], k["Type"]) for k in t["PartitionKeys"]] == [("year", "string")]

    # More than 70% of the folders share a schema: one table, the odd folder a partition too.
    for i in range(4):
        s3.put_object(Bucket="lake", Key=f"docex/majority/p={i}/a.csv", Body=b"x,y\n1,2\n3,4\n")
    s3.put_object(Bucket="lake", Key="docex/majority/p=9/a.csv", Body=b"q,r\n1,2\n3,4\n")
    db, _ = crawl(glue, "s3://lake/docex/majority/")
    got = tables(glue, db)
    assert list(got) == ["majority"]
    assert len(partitions(glue, db, "majority")) == 5


def thread_cpu_ticks(pid):
    """CPU time (clock ticks) of the server's threads, summed by thread name."""
    import os
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            name = open(f"/proc/{pid}/task/{tid}/comm").read().strip()
            fields = open(f"/proc/{pid}/task/{tid}/stat").read().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        out[name] = out.get(name, 0) + int(fields[11]) + int(fields[12])
    return out


def test_crawls_run_on_the_query_threads_not_the_request_threads(lakebox, glue, s3):
    """Reading and classifying files is heavy work: a crawl runs on the query pool, like Athena's
    queries, so a big crawl cannot stall S3 or the health endpoint."""
    from concurrent.futures import ThreadPoolExecutor
    prefix = unique("busy")
    body = "\n".join(json.dumps({"id": i, "name": f"n{i}", "tags": ["a", "b"], "nested": {"x": i, "y": [i]}})
                     for i in range(300)).encode()
    with ThreadPoolExecutor(8) as ex:
        list(ex.map(lambda i: s3.put_object(Bucket="lake", Key=f"{prefix}/dt={i % 40}/part-{i}.json", Body=body),
                    range(1200)))
    before = thread_cpu_ticks(lakebox.proc.pid)
    db, _ = crawl(glue, f"s3://lake/{prefix}/")
    after = thread_cpu_ticks(lakebox.proc.pid)
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    # tokio-rt-worker: the threads that answer requests (here only the GetCrawler polls).
    assert delta.get("lakebox-query", 0) >= 10, delta
    assert delta.get("lakebox-query", 0) > 3 * delta.get("tokio-rt-worker", 0), delta
    assert len(partitions(glue, db, prefix)) == 40
