"""S3 Select (SelectObjectContent) through boto3's event-stream reader, answered by Lakebox's
SQL engine over CSV, JSON and Parquet objects; expected rows computed here."""

import bz2
import gzip
import io
import json

import botocore.exceptions
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakebox_harness import Lakebox

PEOPLE = [(i, f"name{i}", 20 + i % 30, ["DE", "FR", "US"][i % 3]) for i in range(1, 41)]


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    with Lakebox(tmp_path_factory.mktemp("select")) as lb:
        c = lb.client("s3")
        c.create_bucket(Bucket="data")
        csv = "id,name,age,country\n" + "".join(f"{i},{n},{a},{c_}\n" for i, n, a, c_ in PEOPLE)
        c.put_object(Bucket="data", Key="people.csv", Body=csv.encode())
        c.put_object(Bucket="data", Key="people.csv.gz", Body=gzip.compress(csv.encode()))
        c.put_object(Bucket="data", Key="noheader.tsv", Body="".join(f"{i}\t{n}\n" for i, n, _, _ in PEOPLE).encode())
        lines = "".join(json.dumps({"id": i, "name": n, "age": a, "tags": {"country": c_}}) + "\n" for i, n, a, c_ in PEOPLE)
        c.put_object(Bucket="data", Key="people.json", Body=lines.encode())
        c.put_object(Bucket="data", Key="people.json.bz2", Body=bz2.compress(lines.encode()))
        buf = io.BytesIO()
        pq.write_table(pa.table({"id": [p[0] for p in PEOPLE], "name": [p[1] for p in PEOPLE], "age": [p[2] for p in PEOPLE]}), buf)
        c.put_object(Bucket="data", Key="people.parquet", Body=buf.getvalue())
        yield c


def select(s3, key, sql, input_ser, output_ser=None):
    resp = s3.select_object_content(Bucket="data", Key=key, Expression=sql, ExpressionType="SQL",
                                    InputSerialization=input_ser,
                                    OutputSerialization=output_ser or {"CSV": {}})
    records, stats, ended = b"", None, False
    for event in resp["Payload"]:
        if "Records" in event:
            records += event["Records"]["Payload"]
        elif "Stats" in event:
            stats = event["Stats"]["Details"]
        elif "End" in event:
            ended = True
    assert ended
    return records.decode(), stats


def test_csv_with_header_filter_and_cast(s3):
    out, stats = select(s3, "people.csv", "SELECT s.name, s.age FROM S3Object s WHERE CAST(s.age AS INT) > 45",
                        {"CSV": {"FileHeaderInfo": "USE"}})
    assert out == "".join(f"{n},{a}\n" for _, n, a, _ in PEOPLE if a > 45)
    size = len(s3.get_object(Bucket="data", Key="people.csv")["Body"].read())
    assert stats["BytesScanned"] == size and stats["BytesReturned"] == len(out)


def test_csv_positional_columns_gzip_and_json_output(s3):
    out, _ = select(s3, "people.csv.gz", "SELECT _2 AS name FROM S3Object WHERE _4 = 'FR' LIMIT 3",
                    {"CSV": {"FileHeaderInfo": "IGNORE"}, "CompressionType": "GZIP"}, {"JSON": {}})
    assert [json.loads(l) for l in out.splitlines()] == [{"name": n} for _, n, _, c in PEOPLE if c == "FR"][:3]
    out, _ = select(s3, "noheader.tsv", "SELECT count(*) FROM S3Object", {"CSV": {"FieldDelimiter": "\t"}})
    assert out == f"{len(PEOPLE)}\n"


def test_json_lines_and_parquet(s3):
    out, _ = select(s3, "people.json", "SELECT s.id, s.tags['country'] AS country FROM S3Object s WHERE s.age < 23",
                    {"JSON": {"Type": "LINES"}}, {"JSON": {}})
    assert [json.loads(l) for l in out.splitlines()] == [{"id": i, "country": c} for i, _, a, c in PEOPLE if a < 23]
    out, _ = select(s3, "people.json.bz2", "SELECT sum(s.age) FROM S3Object s", {"JSON": {"Type": "DOCUMENT"}, "CompressionType": "BZIP2"})
    assert out == f"{sum(p[2] for p in PEOPLE)}\n"
    out, _ = select(s3, "people.parquet", "SELECT name FROM S3Object WHERE id IN (1, 2)", {"Parquet": {}},
                    {"CSV": {"QuoteFields": "ALWAYS"}})
    assert out == '"name1"\n"name2"\n'


def test_select_errors(s3):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        select(s3, "people.csv", "SELEC nothing", {"CSV": {"FileHeaderInfo": "USE"}})
    assert e.value.response["Error"]["Code"] == "ParseUnexpectedToken"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        select(s3, "missing.csv", "SELECT * FROM S3Object", {"CSV": {}})
    assert e.value.response["Error"]["Code"] == "NoSuchKey"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        select(s3, "people.json", "SELECT * FROM S3Object", {"JSON": {"Type": "LINES"}, "CompressionType": "GZIP"})
    assert e.value.response["Error"]["Code"] == "InvalidCompressionFormat"


def select_range(s3, key, sql, input_ser, start=None, end=None, output_ser=None):
    scan = {k: v for k, v in (("Start", start), ("End", end)) if v is not None}
    resp = s3.select_object_content(Bucket="data", Key=key, Expression=sql, ExpressionType="SQL",
                                    InputSerialization=input_ser, ScanRange=scan,
                                    OutputSerialization=output_ser or {"CSV": {}})
    return b"".join(e["Records"]["Payload"] for e in resp["Payload"] if "Records" in e).decode()


def test_scan_range_reads_the_records_that_start_inside_it(s3):
    # S3's user guide: Start 1, End 4 of "A,B\nC,D\n…" returns the record starting at byte 4.
    s3.put_object(Bucket="data", Key="letters.csv", Body=b"A,B\nC,D\nD,E\nE,F\nG,H\nI,J\n")
    csv = {"CSV": {"FileHeaderInfo": "NONE"}}
    assert select_range(s3, "letters.csv", "SELECT * FROM S3Object", csv, 1, 4) == "C,D\n"
    # Start alone reads to the end; End alone reads the last End bytes.
    assert select_range(s3, "letters.csv", "SELECT _1 FROM S3Object", csv, start=15) == "G\nI\n"
    assert select_range(s3, "letters.csv", "SELECT _1 FROM S3Object", csv, end=5) == "I\n"
    # A range inside one record holds no record start: no rows, but the query still runs.
    assert select_range(s3, "letters.csv", "SELECT count(*) FROM S3Object", csv, 5, 6) == "0\n"


@pytest.mark.parametrize("chunk", [7, 64, 333])
def test_scan_ranges_split_like_awswrangler_see_every_record_once(s3, chunk):
    """Ranges (i, i + chunk), as awswrangler sends them, cover each record exactly once; the CSV
    header names the columns in every range and is never a record."""
    size = s3.head_object(Bucket="data", Key="people.csv")["ContentLength"]
    csv_rows, json_rows = [], []
    for i in range(0, size, chunk):
        out = select_range(s3, "people.csv", "SELECT s.id, s.name FROM S3Object s", {"CSV": {"FileHeaderInfo": "USE"}},
                           i, i + min(chunk, size - i))
        csv_rows += [tuple(line.split(",")) for line in out.splitlines()]
    assert csv_rows == [(str(i), n) for i, n, _, _ in PEOPLE]
    size = s3.head_object(Bucket="data", Key="people.json")["ContentLength"]
    for i in range(0, size, chunk):
        out = select_range(s3, "people.json", "SELECT s.id, s.age FROM S3Object s", {"JSON": {"Type": "LINES"}},
                           i, i + min(chunk, size - i), {"JSON": {}})
        json_rows += [json.loads(line) for line in out.splitlines()]
    assert json_rows == [{"id": i, "age": a} for i, _, a, _ in PEOPLE]


def test_parquet_scan_range_reads_the_row_groups_starting_inside_it(s3):
    buf = io.BytesIO()
    pq.write_table(pa.table({"id": list(range(100))}), buf, row_group_size=25)
    s3.put_object(Bucket="data", Key="groups.parquet", Body=buf.getvalue())
    meta = pq.ParquetFile(io.BytesIO(buf.getvalue())).metadata
    starts = [meta.row_group(g).column(0).dictionary_page_offset or meta.row_group(g).column(0).data_page_offset
              for g in range(meta.num_row_groups)]
    assert len(starts) == 4
    ids = lambda start, end: [int(v) for v in select_range(s3, "groups.parquet", "SELECT id FROM S3Object", {"Parquet": {}},
                                                           start, end).split()]
    assert ids(starts[1], starts[2]) == list(range(25, 75))
    assert ids(starts[1] + 1, starts[3] - 1) == list(range(50, 75))
    assert ids(0, starts[1] - 1) == list(range(25))
    assert ids(starts[3] + 1, len(buf.getvalue())) == []


def test_scan_range_errors(s3):
    def code(key, input_ser, scan):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            s3.select_object_content(Bucket="data", Key=key, Expression="SELECT * FROM S3Object", ExpressionType="SQL",
                                     InputSerialization=input_ser, OutputSerialization={"CSV": {}}, ScanRange=scan)
        return e.value.response["Error"]["Code"], e.value.response["Error"]["Message"]
    unsupported = ("UnsupportedScanRangeInput", "Scan range queries are not supported on this type of object.")
    assert code("people.csv.gz", {"CSV": {}, "CompressionType": "GZIP"}, {"Start": 0, "End": 10}) == unsupported
    assert code("people.json", {"JSON": {"Type": "DOCUMENT"}}, {"Start": 0, "End": 10}) == unsupported
    assert code("people.csv", {"CSV": {"AllowQuotedRecordDelimiter": True}}, {"Start": 0}) == unsupported
    invalid = ("InvalidScanRange", "The provided scan range is not valid.")
    assert code("people.csv", {"CSV": {}}, {"Start": 10, "End": 5}) == invalid
    assert code("people.csv", {"CSV": {}}, {}) == invalid
