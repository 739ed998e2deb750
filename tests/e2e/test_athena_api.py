"""Athena's API around the engine, with boto3: workgroups, named queries, prepared
statements, tags, and the data catalog read from Lakebox's Glue catalog."""

import botocore.exceptions
import pytest

from lakebox_harness import Lakebox, run_query


def code(e):
    return e.value.response["Error"]["Code"]


@pytest.fixture(scope="module")
def lakebox(tmp_path_factory):
    server = Lakebox(tmp_path_factory.mktemp("athena")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def athena(lakebox):
    return lakebox.client("athena")


def test_primary_workgroup_and_lifecycle(athena):
    wg = athena.get_work_group(WorkGroup="primary")["WorkGroup"]
    assert wg["Name"] == "primary" and wg["State"] == "ENABLED"
    assert wg["Configuration"]["EngineVersion"]["EffectiveEngineVersion"] == "Athena engine version 3"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        athena.delete_work_group(WorkGroup="primary")
    assert code(e) == "InvalidRequestException"

    athena.create_work_group(Name="analysts", Description="team", Tags=[{"Key": "team", "Value": "a"}], Configuration={
        "ResultConfiguration": {"OutputLocation": "s3://results/analysts/"},
        "EnforceWorkGroupConfiguration": True, "BytesScannedCutoffPerQuery": 10_000_000})
    wg = athena.get_work_group(WorkGroup="analysts")["WorkGroup"]
    assert wg["Description"] == "team" and wg["CreationTime"]
    assert wg["Configuration"]["ResultConfiguration"]["OutputLocation"] == "s3://results/analysts/"
    assert wg["Configuration"]["EnforceWorkGroupConfiguration"] is True
    assert wg["Configuration"]["BytesScannedCutoffPerQuery"] == 10_000_000
    with pytest.raises(botocore.exceptions.ClientError) as e:
        athena.create_work_group(Name="analysts")
    assert code(e) == "InvalidRequestException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        athena.create_work_group(Name="bad name")
    assert code(e) == "InvalidRequestException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        athena.create_work_group(Name="badloc", Configuration={"ResultConfiguration": {"OutputLocation": "/tmp/x"}})
    assert code(e) == "InvalidRequestException"

    athena.update_work_group(WorkGroup="analysts", State="DISABLED", ConfigurationUpdates={
        "ResultConfigurationUpdates": {"OutputLocation": "s3://results/v2/"}, "RemoveBytesScannedCutoffPerQuery": True})
    wg = athena.get_work_group(WorkGroup="analysts")["WorkGroup"]
    assert wg["State"] == "DISABLED" and wg["Configuration"]["ResultConfiguration"]["OutputLocation"] == "s3://results/v2/"
    assert "BytesScannedCutoffPerQuery" not in wg["Configuration"]
    athena.update_work_group(WorkGroup="analysts", ConfigurationUpdates={"ResultConfigurationUpdates": {"RemoveOutputLocation": True}})
    assert "OutputLocation" not in athena.get_work_group(WorkGroup="analysts")["WorkGroup"]["Configuration"].get("ResultConfiguration", {})

    names, kw = [], {"MaxResults": 1}
    while True:
        page = athena.list_work_groups(**kw)
        names += [w["Name"] for w in page["WorkGroups"]]
        if not page.get("NextToken"):
            break
        kw["NextToken"] = page["NextToken"]
    assert names == ["analysts", "primary"]

    arn = "arn:aws:athena:us-east-1:000000000000:workgroup/analysts"
    athena.tag_resource(ResourceARN=arn, Tags=[{"Key": "cost", "Value": "x"}])
    assert athena.list_tags_for_resource(ResourceARN=arn)["Tags"] == [{"Key": "cost", "Value": "x"}, {"Key": "team", "Value": "a"}]
    athena.untag_resource(ResourceARN=arn, TagKeys=["team"])
    assert athena.list_tags_for_resource(ResourceARN=arn)["Tags"] == [{"Key": "cost", "Value": "x"}]

    athena.delete_work_group(WorkGroup="analysts")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        athena.get_work_group(WorkGroup="analysts")
    assert code(e) == "InvalidRequestException"


def test_query_result_reuse(lakebox, athena):
    # ResultReuseByAgeConfiguration: the same read-only query, run again within the age, is
    # answered with the earlier run's results (ReusedPreviousResult, nothing scanned).
    s3 = lakebox.client("s3")
    s3.create_bucket(Bucket="reuse-results")
    out = "s3://reuse-results/"
    reuse = {"ResultReuseByAgeConfiguration": {"Enabled": True, "MaxAgeInMinutes": 30}}
    sql = "SELECT x, x * 2 FROM (VALUES 1, 2, 3) AS t(x) ORDER BY x"
    first, e1 = run_query(athena, sql, out, ResultReuseConfiguration=reuse)
    assert e1["Status"]["State"] == "SUCCEEDED"
    assert e1["Statistics"]["ResultReuseInformation"]["ReusedPreviousResult"] is False
    assert e1["ResultReuseConfiguration"]["ResultReuseByAgeConfiguration"] == {"Enabled": True, "MaxAgeInMinutes": 30}
    second, e2 = run_query(athena, sql, out, ResultReuseConfiguration=reuse)
    assert second != first and e2["Status"]["State"] == "SUCCEEDED"
    assert e2["Statistics"]["ResultReuseInformation"]["ReusedPreviousResult"] is True
    assert e2["Statistics"]["DataScannedInBytes"] == 0
    assert e2["ResultConfiguration"]["OutputLocation"] == e1["ResultConfiguration"]["OutputLocation"]
    got = athena.get_query_results(QueryExecutionId=second)["ResultSet"]
    assert [[c.get("VarCharValue") for c in r["Data"]] for r in got["Rows"]] == [["x", "_col1"], ["1", "2"], ["2", "4"], ["3", "6"]]
    # Not reused: without the configuration, for other text, or once the results are gone.
    _, e3 = run_query(athena, sql, out)
    assert e3["Statistics"]["ResultReuseInformation"]["ReusedPreviousResult"] is False
    _, e4 = run_query(athena, sql + " LIMIT 2", out, ResultReuseConfiguration=reuse)
    assert e4["Statistics"]["ResultReuseInformation"]["ReusedPreviousResult"] is False
    for e in (e1, e3, e4):
        key = e["ResultConfiguration"]["OutputLocation"].split("/", 3)[3]
        s3.delete_object(Bucket="reuse-results", Key=key)
    _, e5 = run_query(athena, sql, out, ResultReuseConfiguration=reuse)
    assert e5["Statistics"]["ResultReuseInformation"]["ReusedPreviousResult"] is False
    with pytest.raises(botocore.exceptions.ClientError) as e:
        athena.start_query_execution(QueryString=sql, ResultConfiguration={"OutputLocation": out},
                                     ResultReuseConfiguration={"ResultReuseByAgeConfiguration": {"Enabled": True, "MaxAgeInMinutes": 20000}})
    assert code(e) == "InvalidRequestException"


def test_result_configuration_is_reported_as_given(lakebox, athena):
    lakebox.client("s3").create_bucket(Bucket="enc-results")
    config = {"OutputLocation": "s3://enc-results/q/", "ExpectedBucketOwner": "000000000000",
              "EncryptionConfiguration": {"EncryptionOption": "SSE_S3"},
              "AclConfiguration": {"S3AclOption": "BUCKET_OWNER_FULL_CONTROL"}}
    qid = athena.start_query_execution(QueryString="SELECT 1", ResultConfiguration=config)["QueryExecutionId"]
    e = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]
    assert e["ResultConfiguration"] == {**config, "OutputLocation": f"s3://enc-results/q/{qid}.csv"}


def test_named_queries(athena):
    athena.create_work_group(Name="nq")
    a = athena.create_named_query(Name="top", Database="db", QueryString="SELECT 1", WorkGroup="nq",
                                  ClientRequestToken="token-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")["NamedQueryId"]
    again = athena.create_named_query(Name="top", Database="db", QueryString="SELECT 1", WorkGroup="nq",
                                      ClientRequestToken="token-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")["NamedQueryId"]
    assert again == a  # idempotent by ClientRequestToken
    b = athena.create_named_query(Name="other", Database="db", QueryString="SELECT 2", Description="d")["NamedQueryId"]
    q = athena.get_named_query(NamedQueryId=a)["NamedQuery"]
    assert q == {"Name": "top", "Database": "db", "QueryString": "SELECT 1", "NamedQueryId": a, "WorkGroup": "nq"}
    assert athena.list_named_queries(WorkGroup="nq")["NamedQueryIds"] == [a]
    assert b in athena.list_named_queries()["NamedQueryIds"]  # primary by default
    got = athena.batch_get_named_query(NamedQueryIds=[a, b, "00000000-0000-0000-0000-000000000000"])
    assert {x["NamedQueryId"] for x in got["NamedQueries"]} == {a, b}
    assert [x["NamedQueryId"] for x in got["UnprocessedNamedQueryIds"]] == ["00000000-0000-0000-0000-000000000000"]
    athena.update_named_query(NamedQueryId=a, Name="top2", QueryString="SELECT 3")
    assert athena.get_named_query(NamedQueryId=a)["NamedQuery"]["QueryString"] == "SELECT 3"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        athena.delete_work_group(WorkGroup="nq")
    assert code(e) == "InvalidRequestException"  # not empty
    athena.delete_work_group(WorkGroup="nq", RecursiveDeleteOption=True)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        athena.get_named_query(NamedQueryId=a)
    assert code(e) == "InvalidRequestException"
    athena.delete_named_query(NamedQueryId=b)


def test_prepared_statements(athena):
    athena.create_prepared_statement(StatementName="by_id", WorkGroup="primary", QueryStatement="SELECT * FROM t WHERE id = ?")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        athena.create_prepared_statement(StatementName="by_id", WorkGroup="primary", QueryStatement="SELECT 1")
    assert code(e) == "InvalidRequestException"
    p = athena.get_prepared_statement(StatementName="by_id", WorkGroup="primary")["PreparedStatement"]
    assert p["QueryStatement"] == "SELECT * FROM t WHERE id = ?" and p["WorkGroupName"] == "primary" and p["LastModifiedTime"]
    athena.update_prepared_statement(StatementName="by_id", WorkGroup="primary", QueryStatement="SELECT 2", Description="v2")
    assert athena.get_prepared_statement(StatementName="by_id", WorkGroup="primary")["PreparedStatement"]["Description"] == "v2"
    got = athena.batch_get_prepared_statement(PreparedStatementNames=["by_id", "nope"], WorkGroup="primary")
    assert [x["StatementName"] for x in got["PreparedStatements"]] == ["by_id"]
    assert [x["StatementName"] for x in got["UnprocessedPreparedStatementNames"]] == ["nope"]
    assert [x["StatementName"] for x in athena.list_prepared_statements(WorkGroup="primary")["PreparedStatements"]] == ["by_id"]
    athena.delete_prepared_statement(StatementName="by_id", WorkGroup="primary")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        athena.get_prepared_statement(StatementName="by_id", WorkGroup="primary")
    assert code(e) == "ResourceNotFoundException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        athena.update_prepared_statement(StatementName="ghost", WorkGroup="primary", QueryStatement="SELECT 1")
    assert code(e) == "ResourceNotFoundException"


def test_data_catalog_reads_glue(lakebox, athena):
    glue = lakebox.client("glue")
    glue.create_database(DatabaseInput={"Name": "sales", "Description": "d", "Parameters": {"k": "v"}})
    glue.create_table(DatabaseName="sales", TableInput={
        "Name": "orders", "TableType": "EXTERNAL_TABLE", "Parameters": {"classification": "parquet"},
        "PartitionKeys": [{"Name": "dt", "Type": "string"}],
        "StorageDescriptor": {"Columns": [{"Name": "id", "Type": "bigint", "Comment": "key"}, {"Name": "amount", "Type": "double"}],
                              "Location": "s3://lake/orders/",
                              "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                              "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
                              "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
                                            "Parameters": {"serialization.format": "1"}}}})
    glue.create_table(DatabaseName="sales", TableInput={"Name": "customers", "StorageDescriptor": {"Columns": [{"Name": "c", "Type": "string"}]}})
    cats = athena.list_data_catalogs()["DataCatalogsSummary"]
    assert cats == [{"CatalogName": "AwsDataCatalog", "Type": "GLUE", "Status": "CREATE_COMPLETE"}]
    assert athena.get_data_catalog(Name="AwsDataCatalog")["DataCatalog"]["Type"] == "GLUE"
    dbs = athena.list_databases(CatalogName="AwsDataCatalog")["DatabaseList"]
    assert {"Name": "sales", "Description": "d", "Parameters": {"k": "v"}} in dbs
    assert athena.get_database(CatalogName="AwsDataCatalog", DatabaseName="sales")["Database"]["Name"] == "sales"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        athena.get_database(CatalogName="AwsDataCatalog", DatabaseName="nope")
    assert code(e) == "MetadataException"
    t = athena.get_table_metadata(CatalogName="AwsDataCatalog", DatabaseName="sales", TableName="orders")["TableMetadata"]
    assert t["Name"] == "orders" and t["TableType"] == "EXTERNAL_TABLE"
    assert t["Columns"] == [{"Name": "id", "Type": "bigint", "Comment": "key"}, {"Name": "amount", "Type": "double"}]
    assert t["PartitionKeys"] == [{"Name": "dt", "Type": "string"}]
    p = t["Parameters"]
    assert p["location"] == "s3://lake/orders/" and p["classification"] == "parquet" and p["EXTERNAL"] == "TRUE"
    assert p["serde.serialization.lib"].endswith("ParquetHiveSerDe") and p["serde.param.serialization.format"] == "1"
    names = [x["Name"] for x in athena.list_table_metadata(CatalogName="AwsDataCatalog", DatabaseName="sales")["TableMetadataList"]]
    assert names == ["customers", "orders"]
    only = athena.list_table_metadata(CatalogName="AwsDataCatalog", DatabaseName="sales", Expression="ord.*")["TableMetadataList"]
    assert [x["Name"] for x in only] == ["orders"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        athena.get_table_metadata(CatalogName="AwsDataCatalog", DatabaseName="sales", TableName="missing")
    assert code(e) == "MetadataException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        athena.list_databases(CatalogName="other")
    assert code(e) == "MetadataException"


def test_state_survives_restart(tmp_path):
    with Lakebox(tmp_path) as lb:
        a = lb.client("athena")
        a.create_work_group(Name="keep")
        qid = a.create_named_query(Name="q", Database="d", QueryString="SELECT 1", WorkGroup="keep")["NamedQueryId"]
        lb.kill()
    with Lakebox(tmp_path) as lb:
        a = lb.client("athena")
        assert a.get_work_group(WorkGroup="keep")["WorkGroup"]["Name"] == "keep"
        assert a.get_named_query(NamedQueryId=qid)["NamedQuery"]["QueryString"] == "SELECT 1"


def test_cli_example_from_the_docs(lakebox):
    import json

    def cli(*args):
        r = lakebox.cli(*args)
        assert r.returncode == 0, r.stderr
        return r.stdout

    cli("athena", "create-work-group", "--name", "docs-analysts",
        "--configuration", "ResultConfiguration={OutputLocation=s3://results/analysts/}")
    qid = json.loads(cli("athena", "create-named-query", "--name", "daily", "--database", "shop",
                         "--query-string", "SELECT count(*) FROM sales", "--work-group", "docs-analysts"))["NamedQueryId"]
    assert json.loads(cli("athena", "get-named-query", "--named-query-id", qid))["NamedQuery"]["WorkGroup"] == "docs-analysts"
    assert "DatabaseList" in json.loads(cli("athena", "list-databases", "--catalog-name", "AwsDataCatalog"))
