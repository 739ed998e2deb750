"""PyAthena, the DB-API driver for Athena, against Lakebox: its plain cursor (types converted from
Athena's ColumnInfo), its pandas cursor (which reads the result CSV, or with `unload=True` the
Parquet files an UNLOAD writes, listed by Athena's data manifest), and parameters. Each test
asserts the rows that come back. (PyAthena's ArrowCursor builds pyarrow's S3 client with no
endpoint, so it reaches only AWS itself; see docs/athena.md.)"""

import datetime
import decimal

import pytest

pyathena = pytest.importorskip("pyathena")


@pytest.fixture(scope="module")
def connect(lakebox):
    s3, glue = lakebox.client("s3"), lakebox.client("glue")
    s3.create_bucket(Bucket="pya-lake")
    s3.create_bucket(Bucket="pya-results")
    glue.create_database(DatabaseInput={"Name": "shop"})
    lines = ["1,apple,1.50,2024-01-02", "2,pear,2.25,2024-01-03", "3,fig,3.00,2024-02-01", "4,kiwi,,2024-02-05"]
    s3.put_object(Bucket="pya-lake", Key="items/items.csv", Body="\n".join(lines).encode() + b"\n")

    def open_connection(**kw):
        return pyathena.connect(s3_staging_dir="s3://pya-results/staging/", region_name="us-east-1",
                                schema_name="shop", endpoint_url=lakebox.endpoint,
                                aws_access_key_id="test", aws_secret_access_key="test", **kw)

    with open_connection() as conn:
        conn.cursor().execute(
            "CREATE EXTERNAL TABLE items (id int, name string, price decimal(10,2), day date) "
            "ROW FORMAT DELIMITED FIELDS TERMINATED BY ',' LOCATION 's3://pya-lake/items/'")
    return open_connection


EXPECTED = [
    (1, "apple", decimal.Decimal("1.50"), datetime.date(2024, 1, 2)),
    (2, "pear", decimal.Decimal("2.25"), datetime.date(2024, 1, 3)),
    (3, "fig", decimal.Decimal("3.00"), datetime.date(2024, 2, 1)),
    (4, "kiwi", None, datetime.date(2024, 2, 5)),
]


def test_cursor_converts_athena_types(connect):
    with connect() as conn:
        cur = conn.cursor()
        cur.execute("SELECT id, name, price, day FROM items ORDER BY id")
        assert [d[0] for d in cur.description] == ["id", "name", "price", "day"]
        assert [d[1] for d in cur.description] == ["integer", "varchar", "decimal", "date"]
        assert cur.fetchall() == EXPECTED
        assert cur.state == "SUCCEEDED" and cur.data_scanned_in_bytes > 0
        # pyformat parameters, as PyAthena binds them.
        cur.execute("SELECT name FROM items WHERE id > %(low)d AND name <> %(skip)s ORDER BY id",
                    {"low": 1, "skip": "fig"})
        assert cur.fetchall() == [("pear",), ("kiwi",)]
        cur.execute("SELECT count(*), sum(price), max(day), array[1, 2] FROM items")
        assert cur.fetchone() == (4, decimal.Decimal("6.75"), datetime.date(2024, 2, 5), [1, 2])


def test_cursor_failure_raises_with_athena_reason(connect):
    with connect() as conn:
        with pytest.raises(pyathena.error.OperationalError) as e:
            conn.cursor().execute("SELECT * FROM no_such_table")
        assert "no_such_table" in str(e.value)


@pytest.mark.parametrize("unload", [False, True])
def test_pandas_cursor(connect, unload):
    from pyathena.pandas.cursor import PandasCursor
    with connect(cursor_class=PandasCursor) as conn:
        df = conn.cursor(unload=unload).execute("SELECT id, name, price, day FROM items ORDER BY id").as_pandas()
    assert list(df.columns) == ["id", "name", "price", "day"]
    got = [(int(r.id), r.name, None if r.price is None or r.price != r.price else decimal.Decimal(str(r.price)).quantize(decimal.Decimal("0.01")),
            r.day if isinstance(r.day, datetime.date) and not isinstance(r.day, datetime.datetime) else r.day.date())
           for r in df.sort_values("id").itertuples(index=False)]
    assert got == EXPECTED
