"""awswrangler, the most used Python library for Athena, gets the rows a query has.

Its default `read_sql_query` (a CTAS into a temporary table) and its `unload_approach` read the
result through Athena's data manifest (Statistics.DataManifestLocation, `<query id>-manifest.csv`
listing the files the statement wrote); without one they return an empty DataFrame and no error.
"""

import boto3
import pytest

from lakebox_harness import run_query

wr = pytest.importorskip("awswrangler")


@pytest.fixture(scope="module")
def session(lakebox):
    for name in ("s3", "athena", "glue", "sts"):
        setattr(wr.config, f"{name}_endpoint_url", lakebox.endpoint)
    s3 = lakebox.client("s3")
    s3.create_bucket(Bucket="wr-lake")
    s3.create_bucket(Bucket="wr-results")
    lakebox.client("glue").create_database(DatabaseInput={"Name": "wr"})
    return boto3.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")


@pytest.fixture(scope="module")
def orders(session):
    import pandas as pd
    df = pd.DataFrame({"id": [1, 2, 3, 4], "item": ["apple", "pear", "fig", "kiwi"],
                       "price": [1.5, 2.25, 3.0, 0.75], "country": ["de", "de", "fr", "fr"]})
    wr.s3.to_parquet(df, path="s3://wr-lake/orders/", dataset=True, database="wr", table="orders",
                     partition_cols=["country"], boto3_session=session)
    return df


def rows(df):
    return sorted(tuple(r) for r in df[["id", "item", "price"]].itertuples(index=False))


EXPECTED = [(1, "apple", 1.5), (2, "pear", 2.25), (3, "fig", 3.0), (4, "kiwi", 0.75)]


def test_ctas_insert_and_unload_report_their_data_manifest(lakebox, orders):
    athena, s3 = lakebox.client("athena"), lakebox.client("s3")
    out = "s3://wr-results/manifests/"

    def manifest(e):
        location = e["Statistics"]["DataManifestLocation"]
        assert location.endswith(f"{e['QueryExecutionId']}-manifest.csv")
        bucket, key = location[len("s3://"):].split("/", 1)
        files = [line for line in s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode().split("\n") if line]
        # Every listed file exists and holds data.
        for f in files:
            b, k = f[len("s3://"):].split("/", 1)
            assert s3.head_object(Bucket=b, Key=k)["ContentLength"] > 0
        return files

    _, e = run_query(athena, "CREATE TABLE wr.cheap WITH (format = 'PARQUET', "
                     "external_location = 's3://wr-lake/cheap/') AS SELECT id, item FROM wr.orders WHERE price < 2",
                     out)
    assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
    created = manifest(e)
    assert created and all(f.startswith("s3://wr-lake/cheap/") for f in created)
    # The CTAS's .metadata sits beside its manifest, as Athena writes them.
    meta = e["Statistics"]["DataManifestLocation"].replace("-manifest.csv", ".metadata")
    bucket, key = meta[len("s3://"):].split("/", 1)
    s3.head_object(Bucket=bucket, Key=key)

    _, e = run_query(athena, "INSERT INTO wr.cheap SELECT id, item FROM wr.orders WHERE price >= 2", out)
    assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
    inserted = manifest(e)
    # Only the files this INSERT wrote, none of the CTAS's.
    assert inserted and not set(inserted) & set(created)

    _, e = run_query(athena, "UNLOAD (SELECT * FROM wr.orders) TO 's3://wr-lake/unloaded/' WITH (format = 'PARQUET')",
                     out)
    assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
    assert all(f.startswith("s3://wr-lake/unloaded/") for f in manifest(e))

    # A query that only reads has no data manifest.
    _, e = run_query(athena, "SELECT count(*) FROM wr.orders", out)
    assert "DataManifestLocation" not in e["Statistics"]


@pytest.mark.parametrize("approach", ["ctas", "unload", "csv"])
def test_read_sql_query_returns_the_rows(session, orders, approach):
    kwargs = {
        "ctas": {"ctas_approach": True},
        "unload": {"ctas_approach": False, "unload_approach": True,
                   "s3_output": f"s3://wr-results/unload-{approach}/"},
        "csv": {"ctas_approach": False},
    }[approach]
    if approach != "unload":
        kwargs["s3_output"] = "s3://wr-results/wr/"
    df = wr.athena.read_sql_query("SELECT id, item, price FROM orders", database="wr",
                                  boto3_session=session, **kwargs)
    assert rows(df) == EXPECTED


def test_read_sql_query_with_no_rows_is_typed_and_empty(session, orders):
    df = wr.athena.read_sql_query("SELECT id, item, price FROM orders WHERE price > 100", database="wr",
                                  s3_output="s3://wr-results/wr/", boto3_session=session)
    assert len(df) == 0 and list(df.columns) == ["id", "item", "price"]


def test_catalog_helpers_that_quote_the_database(session, orders):
    # awswrangler sends QueryExecutionContext.Database as `wr` (backticks) for these.
    described = wr.athena.describe_table(table="orders", database="wr", s3_output="s3://wr-results/wr/",
                                         boto3_session=session)
    assert list(described["Column Name"]) == ["id", "item", "price", "country"]
    assert list(described["Partition"]) == [False, False, False, True]
    ddl = wr.athena.show_create_table(table="orders", database="wr", s3_output="s3://wr-results/wr/",
                                      boto3_session=session)
    assert "CREATE EXTERNAL TABLE" in ddl and "`item` string" in ddl and "PARTITIONED BY" in ddl
    wr.s3.to_parquet(orders.head(1).assign(country="it"), path="s3://wr-lake/orders/country=it/x.parquet",
                     boto3_session=session)
    assert wr.athena.repair_table(table="orders", database="wr", s3_output="s3://wr-results/wr/",
                                  boto3_session=session) == "SUCCEEDED"
    partitions = wr.catalog.get_partitions(database="wr", table="orders", boto3_session=session)
    assert sorted(v[0] for v in partitions.values()) == ["de", "fr", "it"]


def test_select_query_reads_every_record_across_its_scan_ranges(lakebox, session):
    """`wr.s3.select_query` always splits an object into ScanRanges (1 MiB by default); with small
    chunks every record must come back once, for CSV, JSON lines and Parquet."""
    import pandas as pd
    n = 500
    df = pd.DataFrame({"id": range(n), "name": [f"name-{i}" * (1 + i % 3) for i in range(n)]})
    wr.s3.to_csv(df, "s3://wr-lake/select/people.csv", index=False, boto3_session=session)
    wr.s3.to_json(df, "s3://wr-lake/select/people.json", orient="records", lines=True, boto3_session=session)
    import io
    import pyarrow as pa
    import pyarrow.parquet as pq
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), buf, row_group_size=100)
    lakebox.client("s3").put_object(Bucket="wr-lake", Key="select/people.parquet", Body=buf.getvalue())
    for path, serialization, params in [
        ("people.csv", "CSV", {"FileHeaderInfo": "Use"}),
        ("people.json", "JSON", {"Type": "Lines"}),
        ("people.parquet", "Parquet", {}),
    ]:
        got = wr.s3.select_query(sql="SELECT * FROM s3object s WHERE CAST(s.id AS INT) % 2 = 0",
                                 path=f"s3://wr-lake/select/{path}", input_serialization=serialization,
                                 input_serialization_params=params, scan_range_chunk_size=1000,
                                 boto3_session=session)
        got = sorted((int(r.id), r.name) for r in got.itertuples(index=False))
        assert got == [(i, f"name-{i}" * (1 + i % 3)) for i in range(0, n, 2)], path
