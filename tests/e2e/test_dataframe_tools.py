"""The tools data engineers point at S3 first, run against Lakebox as a new user runs them:
pyarrow's own S3FileSystem (its C++ S3 client, not boto3) and pandas through s3fs (aiobotocore).
Each writes data, reads it back and compares it with what was written."""

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from pyarrow import fs


@pytest.fixture(scope="module")
def bucket(lakebox):
    lakebox.client("s3").create_bucket(Bucket="frames")
    return "frames"


@pytest.fixture(scope="module")
def arrow_fs(lakebox):
    host = lakebox.endpoint.split("://", 1)[1]
    return fs.S3FileSystem(endpoint_override=host, scheme="http", region="us-east-1",
                           access_key="test", secret_key="test", allow_bucket_creation=True)


def test_pyarrow_s3filesystem_writes_and_reads_a_partitioned_dataset(arrow_fs, bucket, lakebox):
    table = pa.table({"id": list(range(1000)), "day": [f"2024-01-0{1 + i % 3}" for i in range(1000)],
                      "value": [i * 0.5 for i in range(1000)]})
    ds.write_dataset(table, f"{bucket}/arrow/events", filesystem=arrow_fs, format="parquet",
                     partitioning=["day"], partitioning_flavor="hive")
    infos = arrow_fs.get_file_info(fs.FileSelector(f"{bucket}/arrow/events", recursive=True))
    files = sorted(i.path for i in infos if i.type == fs.FileType.File)
    assert [f.split("/")[3] for f in files] == ["day=2024-01-01", "day=2024-01-02", "day=2024-01-03"]
    assert all(i.size > 0 for i in infos if i.type == fs.FileType.File)
    back = ds.dataset(f"{bucket}/arrow/events", filesystem=arrow_fs, format="parquet", partitioning="hive")
    got = back.to_table().sort_by("id")
    assert got.column("id").to_pylist() == list(range(1000))
    assert got.column("value").to_pylist() == [i * 0.5 for i in range(1000)]
    assert back.to_table(filter=ds.field("day") == "2024-01-02").num_rows == 333
    # Ranged reads: pyarrow reads a Parquet footer first, then the column chunks it needs.
    with arrow_fs.open_input_file(files[0]) as f:
        f.seek(f.size() - 8)
        assert f.read(8)[4:] == b"PAR1"
    # A plain object stream round trip, and the object is visible to boto3 too.
    with arrow_fs.open_output_stream(f"{bucket}/arrow/blob.bin") as out:
        out.write(b"x" * 100_000)
    assert lakebox.client("s3").head_object(Bucket=bucket, Key="arrow/blob.bin")["ContentLength"] == 100_000
    arrow_fs.delete_file(f"{bucket}/arrow/blob.bin")
    assert arrow_fs.get_file_info(f"{bucket}/arrow/blob.bin").type == fs.FileType.NotFound


def test_pandas_with_s3fs_round_trips_csv_parquet_and_json(bucket, lakebox):
    options = {"key": "test", "secret": "test", "client_kwargs": {"endpoint_url": lakebox.endpoint,
                                                                  "region_name": "us-east-1"}}
    df = pd.DataFrame({"id": range(50), "name": [f"n{i}" for i in range(50)], "score": [i / 4 for i in range(50)]})
    df.to_csv(f"s3://{bucket}/pandas/data.csv", index=False, storage_options=options)
    pd.testing.assert_frame_equal(pd.read_csv(f"s3://{bucket}/pandas/data.csv", storage_options=options), df)
    df.to_parquet(f"s3://{bucket}/pandas/data.parquet", index=False, storage_options=options)
    pd.testing.assert_frame_equal(pd.read_parquet(f"s3://{bucket}/pandas/data.parquet", storage_options=options), df)
    df.to_json(f"s3://{bucket}/pandas/data.json", orient="records", lines=True, storage_options=options)
    pd.testing.assert_frame_equal(
        pd.read_json(f"s3://{bucket}/pandas/data.json", orient="records", lines=True, storage_options=options), df)
    import s3fs
    s3 = s3fs.S3FileSystem(**options)
    assert sorted(s3.ls(f"{bucket}/pandas")) == [f"{bucket}/pandas/data.{x}" for x in ("csv", "json", "parquet")]
    assert s3.cat_file(f"{bucket}/pandas/data.csv", start=0, end=14) == b"id,name,score\n"
