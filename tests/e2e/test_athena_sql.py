"""Trino SQL as Athena users write it, run on Lakebox's engine over a Parquet table made with
DDL: joins, CTEs, window functions, UNNEST, arrays, and the Trino functions (date_parse,
from_iso8601_timestamp, json_extract_scalar, regexp_extract, try, …). Expected values are
computed here from the generated rows."""

import datetime as dt
import io
import json
import re

import pyarrow as pa
import pyarrow.parquet as pq
import botocore.exceptions
import pytest

from lakebox_harness import Lakebox, run_query, wait_for_query

RESULTS = "s3://athena-results/sql/"
BASE = dt.datetime(2024, 1, 30, 8, 0, 0)
ORDERS = [
    {
        "id": i,
        "customer": f"c{i % 4}",
        "amount": round(10 + i * 2.5, 2),
        "ts": BASE + dt.timedelta(hours=7 * i),
        "iso": (BASE + dt.timedelta(hours=7 * i)).strftime("%Y-%m-%dT%H:%M:%S") + "Z",
        "raw": (BASE + dt.timedelta(hours=7 * i)).strftime("%d/%m/%Y %H:%M"),
        "payload": json.dumps({"device": {"os": ["ios", "android", "web"][i % 3]}, "items": list(range(i % 4))}),
        "path": f"/shop/item/{100 + i}?ref=ad{i % 2}",
        "tags": [f"t{j}" for j in range(i % 3)],
        "qty": str(i) if i % 5 else "n/a",
    }
    for i in range(1, 25)
]
CUSTOMERS = [{"customer": f"c{i}", "country": ["DE", "FR"][i % 2]} for i in range(4)]


@pytest.fixture(scope="module")
def athena(tmp_path_factory):
    server = Lakebox(tmp_path_factory.mktemp("athenasql")).start()
    s3 = server.client("s3")
    s3.create_bucket(Bucket="lake")
    s3.create_bucket(Bucket="athena-results")
    orders = pa.table({
        "id": pa.array([o["id"] for o in ORDERS], pa.int64()),
        "customer": [o["customer"] for o in ORDERS],
        "amount": [o["amount"] for o in ORDERS],
        "ts": pa.array([o["ts"] for o in ORDERS], pa.timestamp("ms")),
        "iso": [o["iso"] for o in ORDERS],
        "raw": [o["raw"] for o in ORDERS],
        "payload": [o["payload"] for o in ORDERS],
        "path": [o["path"] for o in ORDERS],
        "tags": pa.array([o["tags"] for o in ORDERS], pa.list_(pa.string())),
        "qty": [o["qty"] for o in ORDERS],
    })
    buf = io.BytesIO()
    pq.write_table(orders, buf)
    s3.put_object(Bucket="lake", Key="orders/o.parquet", Body=buf.getvalue())
    body = "".join(f"{c['customer']},{c['country']}\n" for c in CUSTOMERS)
    s3.put_object(Bucket="lake", Key="customers/c.csv", Body=body.encode())
    athena = server.client("athena")
    for sql in [
        "CREATE DATABASE shop",
        """CREATE EXTERNAL TABLE shop.orders (id bigint, customer string, amount double, ts timestamp,
             iso string, raw string, payload string, path string, tags array<string>, qty string)
           STORED AS PARQUET LOCATION 's3://lake/orders/'""",
        """CREATE EXTERNAL TABLE shop.customers (customer string, country string)
           ROW FORMAT DELIMITED FIELDS TERMINATED BY ',' LOCATION 's3://lake/customers/'""",
    ]:
        rows(athena, sql)
    yield athena
    server.stop()


def run(athena, sql):
    return run_query(athena, sql, RESULTS, "shop")


def rows(athena, sql, with_types=False):
    qid, e = run(athena, sql)
    assert e["Status"]["State"] == "SUCCEEDED", (sql, e["Status"])
    out = athena.get_query_results(QueryExecutionId=qid)
    data = [[c.get("VarCharValue") for c in r["Data"]] for r in out["ResultSet"]["Rows"]]
    if e["StatementType"] == "DML":
        data = data[1:]
    if with_types:
        return data, [c["Type"] for c in out["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]]
    return data


def test_join_cte_and_window(athena):
    got = rows(athena, """
        WITH spend AS (SELECT customer, sum(amount) AS total FROM orders GROUP BY customer)
        SELECT c.country, s.customer, s.total,
               rank() OVER (PARTITION BY c.country ORDER BY s.total DESC) AS r
        FROM spend s JOIN customers c ON s.customer = c.customer
        ORDER BY c.country, r""")
    totals = {}
    for o in ORDERS:
        totals[o["customer"]] = totals.get(o["customer"], 0) + o["amount"]
    country = {c["customer"]: c["country"] for c in CUSTOMERS}
    expected = []
    for ctry in sorted(set(country.values())):
        ranked = sorted((t, c) for c, t in totals.items() if country[c] == ctry)[::-1]
        expected += [[ctry, c, t, str(i + 1)] for i, (t, c) in enumerate(ranked)]
    assert [[r[0], r[1], float(r[2]), r[3]] for r in got] == [[e[0], e[1], pytest.approx(e[2]), e[3]] for e in expected]


def test_result_columns_are_named_as_athena_names_them(athena):
    # Expressions are _col<position>, references keep their column's name, aliases win.
    qid, e = run(athena, "SELECT o.customer, count(*), sum(amount) AS total, NULL, NULL, upper(o.customer) "
                         "FROM orders o GROUP BY o.customer ORDER BY count(*) DESC, o.customer LIMIT 1")
    assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
    out = athena.get_query_results(QueryExecutionId=qid)
    names = [c["Name"] for c in out["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]]
    assert names == ["customer", "_col1", "total", "_col3", "_col4", "_col5"]
    header = [c.get("VarCharValue") for c in out["ResultSet"]["Rows"][0]["Data"]]
    assert header == names
    counts = {}
    for o in ORDERS:
        counts[o["customer"]] = counts.get(o["customer"], 0) + 1
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0]
    data = [c.get("VarCharValue") for c in out["ResultSet"]["Rows"][1]["Data"]]
    assert data[:2] == [top[0], str(top[1])] and data[3:] == [None, None, top[0].upper()]
    # Identifiers fold to lowercase, quoted ones too, as in Trino.
    qid, e = run(athena, 'WITH "Spend" AS (SELECT "Customer", sum("AMOUNT") AS "Total" FROM "ORDERS" GROUP BY "Customer") '
                         'SELECT "CUSTOMER", total, "Total" AS "Again" FROM "Spend" ORDER BY "customer" LIMIT 1')
    assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
    out = athena.get_query_results(QueryExecutionId=qid)
    assert [c["Name"] for c in out["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]] == ["customer", "total", "again"]
    c0 = sum(o["amount"] for o in ORDERS if o["customer"] == "c0")
    data = [c.get("VarCharValue") for c in out["ResultSet"]["Rows"][1]["Data"]]
    assert data[0] == "c0" and float(data[1]) == pytest.approx(c0) and data[1] == data[2]
    # A union is named by its first select; INSERT takes columns by position, so two NULLs are fine.
    assert rows(athena, "SELECT 1 UNION ALL SELECT 2 ORDER BY 1") == [["1"], ["2"]]
    _, e = run(athena, "CREATE TABLE shop.named WITH (format = 'PARQUET', external_location = 's3://lake/named/') "
                       "AS SELECT id, customer AS who, iso FROM orders WHERE id = 1")
    assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
    _, e = run(athena, "INSERT INTO shop.named SELECT 99, NULL, NULL")
    assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
    assert rows(athena, "SELECT id, who, iso FROM shop.named ORDER BY id") == [["1", "c1", ORDERS[0]["iso"]], ["99", None, None]]


def test_unnest_and_arrays(athena):
    got = rows(athena, "SELECT id, tag FROM orders CROSS JOIN UNNEST(tags) AS t(tag) ORDER BY id, tag")
    assert got == [[str(o["id"]), t] for o in ORDERS for t in sorted(o["tags"])]
    got = rows(athena, "SELECT id, cardinality(tags), element_at(tags, 1) FROM orders WHERE id IN (1, 2) ORDER BY id")
    assert got == [["1", "1", "t0"], ["2", "2", "t0"]]
    first = [o for o in ORDERS if o["id"] <= 6]
    got = rows(athena, "SELECT id, tag, n FROM orders CROSS JOIN UNNEST(tags) WITH ORDINALITY AS t(tag, n) "
                       "WHERE id <= 6 ORDER BY id, n")
    assert got == [[str(o["id"]), t, str(k + 1)] for o in first for k, t in enumerate(o["tags"])]
    # LEFT JOIN UNNEST keeps the orders without tags, with a NULL tag.
    got = rows(athena, "SELECT o.id, t.tag FROM orders o LEFT JOIN UNNEST(o.tags) AS t(tag) ON true "
                       "WHERE o.id <= 6 ORDER BY o.id, t.tag")
    assert got == [[str(o["id"]), t] for o in first for t in (sorted(o["tags"]) or [None])]
    assert any(not o["tags"] for o in first)
    got = rows(athena, "SELECT x, y, n FROM (SELECT 1 AS k) AS v CROSS JOIN UNNEST(ARRAY['a', 'b', 'c'], ARRAY[10]) "
                       "WITH ORDINALITY AS u(x, y, n) ORDER BY n")
    assert got == [["a", "10", "1"], ["b", None, "2"], ["c", None, "3"]]


def test_unnest_maps_and_rows_and_nested_values_as_trino_prints_them(athena):
    # A map unnests into key and value columns; an array of rows into one column per field
    # (named by the alias, by position) or, under `AS t`, into the row `t` with its fields.
    data = ("WITH d AS (SELECT 1 AS id, MAP(ARRAY['a', 'b'], ARRAY[10, 20]) AS m, "
            "ARRAY[named_struct('sku', 'x1', 'qty', 2), named_struct('sku', 'x2', 'qty', 5)] AS items) ")
    assert rows(athena, data + "SELECT id, k, v FROM d CROSS JOIN UNNEST(m) AS t(k, v) ORDER BY k") == [
        ["1", "a", "10"], ["1", "b", "20"]]
    assert rows(athena, data + "SELECT t.s, q, n FROM d CROSS JOIN UNNEST(items) WITH ORDINALITY AS t(s, q, n) "
                               "ORDER BY n") == [["x1", "2", "1"], ["x2", "5", "2"]]
    assert rows(athena, data + "SELECT i.sku, i.qty * 10 FROM d CROSS JOIN UNNEST(items) AS i ORDER BY i.sku") == [
        ["x1", "20"], ["x2", "50"]]
    assert rows(athena, data + "SELECT count(*), sum(v) FROM d, UNNEST(m) AS t(k, v)") == [["2", "30"]]
    # An empty map under LEFT JOIN keeps its row, with NULL key and value.
    got = rows(athena, "SELECT id, k, v FROM (SELECT 1 AS id, MAP(ARRAY['a'], ARRAY[1]) AS m UNION ALL "
                       "SELECT 2, MAP(CAST(ARRAY[] AS ARRAY<VARCHAR>), CAST(ARRAY[] AS ARRAY<INT>))) "
                       "LEFT JOIN UNNEST(m) AS t(k, v) ON true ORDER BY id")
    assert got == [["1", "a", "1"], ["2", None, None]]
    # A row of two fields is two columns: one name is an error, as in Trino.
    qid, e = run(athena, data + "SELECT x FROM d CROSS JOIN UNNEST(m) AS t(x)")
    assert e["Status"]["State"] == "FAILED"
    qid, e = run(athena, "SELECT x FROM (SELECT ARRAY[1, 2] AS a) CROSS JOIN UNNEST(a) AS t(x, y)")
    assert e["Status"]["State"] == "FAILED"
    assert "Column alias list has 2 entries but 't' has 1 columns available" in e["Status"]["StateChangeReason"]
    # Nested values print as Athena prints them.
    got = rows(athena, data + "SELECT m, items, ARRAY[1, NULL], items[1], ROW('Bob', 38) FROM d")
    assert got == [["{a=10, b=20}", "[{sku=x1, qty=2}, {sku=x2, qty=5}]", "[1, null]", "{sku=x1, qty=2}",
                    "{field0=Bob, field1=38}"]]


def test_casts_to_trino_nested_types_from_json_and_values(athena):
    # CAST(json AS ARRAY(…)/MAP(…)/ROW(…)) is how Athena users take JSON apart; payload holds
    # {"device": {"os": …}, "items": [0, 1, …]}.
    got = rows(athena, "SELECT id, cardinality(CAST(json_extract(payload, '$.items') AS ARRAY(INTEGER))), "
                       "CAST(json_extract(payload, '$.device') AS MAP(VARCHAR, VARCHAR))['os'], "
                       "CAST(json_parse(payload) AS ROW(device ROW(os VARCHAR), items ARRAY(BIGINT))).device.os "
                       "FROM orders WHERE id <= 4 ORDER BY id")
    want = [[str(o["id"]), str(len(json.loads(o["payload"])["items"])), json.loads(o["payload"])["device"]["os"],
             json.loads(o["payload"])["device"]["os"]] for o in ORDERS if o["id"] <= 4]
    assert got == want
    got, types = rows(athena, "SELECT CAST(ARRAY[1, 2] AS ARRAY(VARCHAR)), CAST(MAP(ARRAY['a'], ARRAY[1]) AS MAP(VARCHAR, DOUBLE)), "
                              "CAST(ROW('Bob', 38) AS ROW(name VARCHAR, age INTEGER)).name, "
                              "CAST(json_parse('{\"a\": {\"x\": [1, null]}}') AS MAP(VARCHAR, MAP(VARCHAR, ARRAY(INTEGER))))",
                      with_types=True)
    assert got == [["[1, 2]", "{a=1.0}", "Bob", "{a={x=[1, null]}}"]]
    assert types == ["array", "map", "varchar", "map"]
    # CAST(… AS JSON) serializes the value as Trino does.
    got = rows(athena, "SELECT CAST(MAP(ARRAY['a', 'b'], ARRAY[1, 2]) AS JSON), CAST(ARRAY[1, NULL] AS JSON), "
                       "CAST('x\"y' AS JSON), json_format(CAST(ARRAY['p', 'q'] AS JSON)), CAST(NULL AS JSON)")
    assert got == [['{"a":1,"b":2}', "[1,null]", '"x\\"y"', '["p","q"]', None]]
    assert rows(athena, "SELECT CAST(ARRAY[1] AS JSON)", with_types=True)[1] == ["json"]
    # JSON inside a nested type stays JSON: the usual way to walk a JSON array of objects.
    got = rows(athena, "SELECT id, json_extract_scalar(item, '$.sku') FROM "
                       "(SELECT 1 AS id, CAST(json_parse('[{\"sku\": \"a\"}, {\"sku\": \"b\"}]') AS ARRAY(JSON)) AS items) "
                       "CROSS JOIN UNNEST(items) AS t(item) ORDER BY 2")
    assert got == [["1", "a"], ["1", "b"]]
    got = rows(athena, "SELECT CAST(json_parse('{\"a\": {\"x\": [1]}, \"b\": \"s\"}') AS MAP(VARCHAR, JSON))")
    assert got == [['{a={"x":[1]}, b="s"}']]
    # A value that does not fit fails the query; TRY_CAST makes it NULL.
    qid, e = run(athena, "SELECT CAST('{\"a\": \"z\"}' AS MAP(VARCHAR, INTEGER))")
    assert e["Status"]["State"] == "FAILED"
    assert "INVALID_CAST_ARGUMENT" in e["Status"]["StateChangeReason"]
    got = rows(athena, "SELECT TRY_CAST(x AS ARRAY(INTEGER)) FROM (SELECT '[1, 2]' AS x UNION ALL SELECT 'nope' "
                       "UNION ALL SELECT '[\"z\"]') ORDER BY 1 NULLS LAST")
    assert got == [["[1, 2]"], [None], [None]]


def test_values_as_trino_writes_them(athena):
    # Columns are named as Athena names them, _col0, _col1, …
    qid, e = run(athena, "VALUES (1, 'a'), (2, 'b')")
    out = athena.get_query_results(QueryExecutionId=qid)["ResultSet"]
    assert [c["Name"] for c in out["ResultSetMetadata"]["ColumnInfo"]] == ["_col0", "_col1"]
    assert [[c.get("VarCharValue") for c in r["Data"]] for r in out["Rows"]][1:] == [["1", "a"], ["2", "b"]]
    assert rows(athena, "VALUES 1, 2, 3") == [["1"], ["2"], ["3"]]
    assert rows(athena, "SELECT a * 10 AS x FROM (VALUES 1, 2) AS t(a) ORDER BY a DESC") == [["20"], ["10"]]
    assert rows(athena, "SELECT * FROM (VALUES 'it''s') t(s)") == [["it's"]]


def test_date_and_time_functions(athena):
    got, types = rows(athena, """
        SELECT id,
               date_format(date_parse(raw, '%d/%m/%Y %H:%i'), '%Y-%m-%d %H:%i'),
               from_iso8601_timestamp(iso),
               date_trunc('day', ts),
               date_add('day', 3, ts),
               date_diff('hour', from_iso8601_timestamp('2024-01-30T00:00:00Z'), from_iso8601_timestamp(iso)),
               year(ts), month(ts), day_of_week(ts),
               to_unixtime(from_iso8601_timestamp(iso)),
               from_unixtime(0)
        FROM orders ORDER BY id LIMIT 5""", with_types=True)
    assert types == ["bigint", "varchar", "timestamp with time zone", "timestamp", "timestamp", "bigint",
                     "bigint", "bigint", "bigint", "double", "timestamp with time zone"]
    for r, o in zip(got, ORDERS):
        ts = o["ts"]
        assert r[1] == ts.strftime("%Y-%m-%d %H:%M")
        assert r[2] == ts.strftime("%Y-%m-%d %H:%M:%S.000 UTC")
        assert r[3] == ts.strftime("%Y-%m-%d 00:00:00.000")
        assert r[4] == (ts + dt.timedelta(days=3)).strftime("%Y-%m-%d %H:%M:%S.000")
        assert r[5] == str(int((ts - dt.datetime(2024, 1, 30)).total_seconds() // 3600))
        assert r[6:9] == [str(ts.year), str(ts.month), str(ts.isoweekday())]
        assert float(r[9]) == ts.replace(tzinfo=dt.timezone.utc).timestamp()
        assert r[10] == "1970-01-01 00:00:00.000 UTC"


def test_json_regex_and_string_functions(athena):
    got = rows(athena, """
        SELECT id, json_extract_scalar(payload, '$.device.os'), json_array_length(json_extract(payload, '$.items')),
               regexp_extract(path, 'item/(\\d+)', 1), regexp_like(path, 'ref=ad1'), split_part(path, '?', 2),
               cardinality(split(path, '/')), concat(customer, '-', qty), concat(customer, NULL)
        FROM orders ORDER BY id""")
    for r, o in zip(got, ORDERS):
        p = json.loads(o["payload"])
        assert r[1:] == [p["device"]["os"], str(len(p["items"])), re.search(r"item/(\d+)", o["path"]).group(1),
                         str(o["path"].endswith("ref=ad1")).lower(), o["path"].split("?")[1], str(len(o["path"].split("/"))),
                         f"{o['customer']}-{o['qty']}", None]


def test_try_and_try_cast_turn_errors_into_null(athena):
    got = rows(athena, "SELECT id, try_cast(qty AS integer), try(CAST(qty AS integer) * 2), try(date_parse(qty, '%Y')) FROM orders ORDER BY id")
    for r, o in zip(got, ORDERS):
        n = None if o["qty"] == "n/a" else int(o["qty"])
        assert r[1:3] == [None if n is None else str(n), None if n is None else str(n * 2)]
        assert (r[3] is None) == (n is None or n < 1000) or r[3] is not None
    qid, e = run(athena, "SELECT CAST(qty AS integer) FROM orders")
    assert e["Status"]["State"] == "FAILED"
    assert e["Status"]["AthenaError"]["ErrorCategory"] == 2


def test_aggregates(athena):
    got = rows(athena, """SELECT count_if(amount > 40), approx_distinct(customer), arbitrary(customer) IS NOT NULL,
                                 approx_percentile(amount, 0.5), count(*) FROM orders""")
    amounts = sorted(o["amount"] for o in ORDERS)
    assert got[0][0] == str(sum(a > 40 for a in amounts))
    assert got[0][1] == "4" and got[0][2] == "true" and got[0][4] == str(len(ORDERS))
    assert amounts[0] <= float(got[0][3]) <= amounts[-1]
    assert abs(float(got[0][3]) - amounts[len(amounts) // 2]) <= 5
    # min_by / max_by per group; a NULL ordering value is left out.
    got = rows(athena, """SELECT customer, min_by(id, amount), max_by(id, amount),
                                 max_by(id, CASE WHEN id > 20 THEN NULL ELSE amount END)
                          FROM orders GROUP BY customer ORDER BY customer""")
    for c, lo, hi, hi20 in got:
        mine = [o for o in ORDERS if o["customer"] == c]
        assert lo == str(min(mine, key=lambda o: o["amount"])["id"])
        assert hi == str(max(mine, key=lambda o: o["amount"])["id"])
        assert hi20 == str(max((o for o in mine if o["id"] <= 20), key=lambda o: o["amount"])["id"])
    # With a count: the n values at the greatest (least) ordering values, as an array.
    got = rows(athena, "SELECT customer, max_by(id, amount, 2), min_by(id, amount, 10) FROM orders "
                       "GROUP BY customer ORDER BY customer")
    for c, top2, bottom in got:
        mine = [o for o in ORDERS if o["customer"] == c]
        by_amount = sorted(mine, key=lambda o: o["amount"])
        assert top2 == "[" + ", ".join(str(o["id"]) for o in by_amount[::-1][:2]) + "]"
        assert bottom == "[" + ", ".join(str(o["id"]) for o in by_amount[:10]) + "]"


def test_more_trino_functions(athena):
    import base64
    import hashlib
    got = rows(athena, "SELECT to_hex(md5(to_utf8('lakebox'))), to_hex(sha256(to_utf8('lakebox'))), "
                       "to_base64(to_utf8('hi!')), from_utf8(from_base64('aGkh')), to_hex(from_hex('0aff'))")
    assert got == [[hashlib.md5(b"lakebox").hexdigest().upper(), hashlib.sha256(b"lakebox").hexdigest().upper(),
                    base64.b64encode(b"hi!").decode(), "hi!", "0AFF"]]
    got = rows(athena, "SELECT url_extract_host(u), url_extract_path(u), url_extract_parameter(u, 'q'), "
                       "url_extract_protocol(u), url_extract_port(u) FROM (SELECT 'https://a.example.com:8443/p/x?q=1&r=2' AS u)")
    assert got == [["a.example.com", "/p/x", "1", "https", "8443"]]
    got = rows(athena, "SELECT if(1 > 0, 'y', 'n'), if(false, 1), contains(ARRAY[1, 2], 2), sequence(1, 7, 3), "
                       "slice(ARRAY[1, 2, 3, 4], 2, 2), levenshtein_distance('kitten', 'sitting'), truncate(2.7), codepoint('A')")
    assert got == [["y", None, "true", "[1, 4, 7]", "[2, 3]", "3", "2.0", "65"]]
    got = rows(athena, "SELECT map_agg(k, v), every(v > 0), variance(v) FROM (VALUES ('a', 1), ('b', 3)) AS t(k, v)")
    assert got == [["{a=1, b=3}", "true", "2.0"]]
    got = rows(athena, "SELECT json_array_contains('[1, 2, \"x\"]', 2), json_array_contains('[1, \"x\"]', 'x'), "
                       "json_array_get('[1, {\"a\": 2}]', -1), to_iso8601(TIMESTAMP '2024-01-31 08:00:00'), "
                       "to_iso8601(DATE '2024-01-31'), last_day_of_month(DATE '2024-02-10'), typeof('x')")
    assert got == [["true", "true", '{"a":2}', "2024-01-31T08:00:00.000", "2024-01-31", "2024-02-29", "varchar"]]
    got = rows(athena, "SELECT format('%s-%d', 'a', 5), format('%05.2f|%-4s|%x|%%', 3.14159, 'ab', 255), format('%,d', -1234567)")
    assert got == [["a-5", "03.14|ab  |ff|%", "-1,234,567"]]


def test_errors_are_actionable(athena):
    """Failures in Athena's words, with the place in the statement, never the engine's."""
    def refused(sql):
        with pytest.raises(botocore.exceptions.ClientError) as ex:
            athena.start_query_execution(QueryString=sql, QueryExecutionContext={"Database": "shop"},
                                         ResultConfiguration={"OutputLocation": RESULTS})
        err = ex.value.response
        assert err["Error"]["Code"] == "InvalidRequestException" and err["AthenaErrorCode"] == "MALFORMED_QUERY"
        return err["Error"]["Message"]

    m = refused("SELEC 1")
    assert m.startswith("line 1:1: mismatched input 'SELEC'. Expecting: 'ALTER', ") and m.endswith("<query>"), m
    assert refused("SELECT 1 +") == "line 1:11: mismatched input '<EOF>'. Expecting: <expression>"
    assert refused("SELECT id FROM orders\nWHERE (id = 1") == "line 2:14: mismatched input '<EOF>'. Expecting: ')'"

    def failed(sql):
        _, e = run(athena, sql)
        assert e["Status"]["State"] == "FAILED", e["Status"]
        reason = e["Status"]["StateChangeReason"]
        assert reason == e["Status"]["AthenaError"]["ErrorMessage"]
        for internal in ("Error during planning", "Did you mean", "ParserError", "Schema error", "Arrow error"):
            assert internal not in reason, reason
        return reason, e["Status"]["AthenaError"]

    reason, err = failed("SELECT * FROM nothing_here")
    assert reason == "TABLE_NOT_FOUND: line 1:15: Table 'awsdatacatalog.shop.nothing_here' does not exist"
    assert (err["ErrorCategory"], err["ErrorType"]) == (2, 1301)
    reason, _ = failed("SELECT nosuchfn(id) FROM orders")
    assert reason == "FUNCTION_NOT_FOUND: line 1:8: Function 'nosuchfn' not registered"
    reason, _ = failed("SELECT id,\n  nope FROM orders")
    assert reason.startswith("COLUMN_NOT_FOUND: line 2:3: Column 'nope' cannot be resolved"), reason
    reason, _ = failed("SELECT CAST('a' AS integer)")
    assert reason == "INVALID_CAST_ARGUMENT: Cannot cast 'a' to INT"
    # Hive DDL that does not parse fails the query with Hive's ParseException.
    reason, _ = failed("CREATE EXTERNAL TABLE (x int) LOCATION 's3://lake/x/'")
    assert reason.startswith("FAILED: ParseException line 1:23 mismatched input '(' expecting"), reason
    _, e = run(athena, "SELECT date_parse('x', '%Y') FROM orders")
    assert e["Status"]["State"] == "FAILED" and "INVALID_FUNCTION_ARGUMENT" in e["Status"]["StateChangeReason"]


def test_prepare_execute_and_deallocate_statements(athena):
    qid, e = run(athena, "PREPARE by_customer FROM SELECT count(*) FROM orders WHERE customer = ? AND amount > ?")
    assert e["Status"]["State"] == "SUCCEEDED" and e["StatementType"] == "UTILITY"
    # The statement is in the workgroup's store, as CreatePreparedStatement would put it.
    p = athena.get_prepared_statement(StatementName="by_customer", WorkGroup="primary")["PreparedStatement"]
    assert p["QueryStatement"].endswith("amount > ?")
    expected = sum(1 for o in ORDERS if o["customer"] == "c1" and o["amount"] > 20)
    assert rows(athena, "EXECUTE by_customer USING 'c1', 20") == [[str(expected)]]
    qid = athena.start_query_execution(QueryString="EXECUTE by_customer", ExecutionParameters=["'c1'", "20"],
                                       QueryExecutionContext={"Database": "shop"},
                                       ResultConfiguration={"OutputLocation": RESULTS})["QueryExecutionId"]
    wait_for_query(athena, qid)
    out = athena.get_query_results(QueryExecutionId=qid)["ResultSet"]["Rows"]
    assert out[1]["Data"][0]["VarCharValue"] == str(expected)
    # PREPARE again replaces it; DEALLOCATE removes it, after which EXECUTE fails.
    rows(athena, "PREPARE by_customer FROM SELECT count(*) FROM orders WHERE customer = ?")
    assert rows(athena, "EXECUTE by_customer USING 'c2'") == [[str(sum(1 for o in ORDERS if o["customer"] == "c2"))]]
    rows(athena, "DEALLOCATE PREPARE by_customer")
    _, e = run(athena, "EXECUTE by_customer USING 'c2'")
    assert e["Status"]["State"] == "FAILED" and "by_customer" in e["Status"]["StateChangeReason"]


def test_views_are_stored_as_athena_stores_them_and_queried(athena):
    import base64
    qid, e = run(athena, """CREATE VIEW big_spenders AS
        SELECT customer, sum(amount) AS total FROM orders GROUP BY customer HAVING sum(amount) > 100""")
    assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
    assert e["StatementType"] == "DDL" and e["ResultConfiguration"]["OutputLocation"].endswith(".txt")
    totals = {}
    for o in ORDERS:
        totals[o["customer"]] = totals.get(o["customer"], 0) + o["amount"]
    expected = sorted((c, t) for c, t in totals.items() if t > 100)
    got = rows(athena, "SELECT customer, total FROM big_spenders ORDER BY customer")
    assert [(c, float(t)) for c, t in got] == [(c, pytest.approx(t)) for c, t in expected]
    # A view over the view, and a join with a table.
    got = rows(athena, """CREATE OR REPLACE VIEW top_country AS
        SELECT c.country, count(*) AS n FROM big_spenders b JOIN customers c ON b.customer = c.customer GROUP BY c.country""")
    assert rows(athena, "SELECT sum(n) FROM top_country") == [[str(len(expected))]]
    # Stored in Glue as Athena stores it: a VIRTUAL_VIEW with a Presto view definition.
    import boto3
    glue = boto3.client("glue", endpoint_url=athena._endpoint.host, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")
    t = glue.get_table(DatabaseName="shop", Name="big_spenders")["Table"]
    assert t["TableType"] == "VIRTUAL_VIEW" and t["Parameters"]["presto_view"] == "true"
    text = t["ViewOriginalText"]
    assert text.startswith("/* Presto View: ") and text.endswith(" */")
    view = json.loads(base64.b64decode(text[len("/* Presto View: "):-3]))
    assert view["catalog"] == "awsdatacatalog" and view["schema"] == "shop"
    assert [(c["name"], c["type"]) for c in view["columns"]] == [("customer", "varchar"), ("total", "double")]
    assert [(c["Name"], c["Type"]) for c in t["StorageDescriptor"]["Columns"]] == [("customer", "string"), ("total", "double")]
    shown = rows(athena, "SHOW CREATE VIEW big_spenders")
    assert shown[0][0].startswith('CREATE VIEW "shop"."big_spenders" AS')
    assert ["big_spenders"] in rows(athena, "SHOW VIEWS IN shop")
    _, e = run(athena, "CREATE VIEW big_spenders AS SELECT 1 AS x")
    assert e["Status"]["State"] == "FAILED" and "already exists" in e["Status"]["StateChangeReason"]
    _, e = run(athena, "CREATE VIEW broken AS SELECT nope FROM orders")
    assert e["Status"]["State"] == "FAILED"
    _, e = run(athena, "DROP VIEW orders")
    assert e["Status"]["State"] == "FAILED" and "not a view" in e["Status"]["StateChangeReason"]
    rows(athena, "DROP VIEW top_country")
    _, e = run(athena, "SELECT * FROM top_country")
    assert e["Status"]["State"] == "FAILED"


def s3_client(athena):
    import boto3
    return boto3.client("s3", endpoint_url=athena._endpoint.host, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")


def test_create_table_as_select_writes_files_and_registers_the_table(athena):
    import boto3
    s3 = s3_client(athena)
    glue = boto3.client("glue", endpoint_url=athena._endpoint.host, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")
    qid, e = run(athena, """CREATE TABLE by_customer
        WITH (format = 'PARQUET', parquet_compression = 'SNAPPY', partitioned_by = ARRAY['customer'])
        AS SELECT id, amount, customer FROM orders""")
    assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
    assert e["StatementType"] == "DML"
    assert e["ResultConfiguration"]["OutputLocation"] == RESULTS + "tables/" + qid
    out = athena.get_query_results(QueryExecutionId=qid)
    assert out["UpdateCount"] == len(ORDERS) and out["ResultSet"]["Rows"] == []
    t = glue.get_table(DatabaseName="shop", Name="by_customer")["Table"]
    assert t["StorageDescriptor"]["Location"] == RESULTS + "tables/" + qid + "/"
    assert [(c["Name"], c["Type"]) for c in t["StorageDescriptor"]["Columns"]] == [("id", "bigint"), ("amount", "double")]
    assert [k["Name"] for k in t["PartitionKeys"]] == ["customer"]
    parts = glue.get_partitions(DatabaseName="shop", TableName="by_customer")["Partitions"]
    assert sorted(p["Values"][0] for p in parts) == ["c0", "c1", "c2", "c3"]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="athena-results", Prefix=f"sql/tables/{qid}/")["Contents"]]
    assert keys and all("/customer=c" in k for k in keys)
    expected = {}
    for o in ORDERS:
        expected[o["customer"]] = expected.get(o["customer"], 0) + o["amount"]
    got = rows(athena, "SELECT customer, sum(amount) FROM by_customer GROUP BY customer ORDER BY customer")
    assert [(c, float(v)) for c, v in got] == [(c, pytest.approx(v)) for c, v in sorted(expected.items())]

    # INSERT INTO adds rows (and a new partition) to it.
    qid, e = run(athena, "INSERT INTO by_customer SELECT id + 1000, amount, 'c9' FROM orders WHERE id <= 3")
    assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
    assert athena.get_query_results(QueryExecutionId=qid)["UpdateCount"] == 3
    assert rows(athena, "SELECT count(*) FROM by_customer WHERE customer = 'c9'") == [["3"]]
    assert rows(athena, "SELECT count(*) FROM by_customer") == [[str(len(ORDERS) + 3)]]

    _, e = run(athena, "CREATE TABLE by_customer AS SELECT 1 AS x")
    assert e["Status"]["State"] == "FAILED" and "already exists" in e["Status"]["StateChangeReason"]


def test_ctas_text_and_json_formats_and_with_no_data(athena):
    s3 = s3_client(athena)
    _, e = run(athena, """CREATE TABLE shop.amounts_txt
        WITH (format = 'TEXTFILE', field_delimiter = '|', external_location = 's3://lake/amounts_txt/')
        AS SELECT id, amount FROM orders WHERE id <= 5 ORDER BY id""")
    assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
    lines = []
    for o in s3.list_objects_v2(Bucket="lake", Prefix="amounts_txt/")["Contents"]:
        lines += s3.get_object(Bucket="lake", Key=o["Key"])["Body"].read().decode().splitlines()
    assert sorted(lines, key=lambda l: int(l.split("|")[0])) == [f"{o['id']}|{o['amount']}" for o in ORDERS[:5]]
    assert rows(athena, "SELECT sum(id) FROM amounts_txt") == [["15"]]
    _, e = run(athena, "CREATE TABLE shop.amounts_json WITH (format = 'JSON', write_compression = 'GZIP') AS SELECT id, customer FROM orders")
    assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
    assert rows(athena, "SELECT count(DISTINCT customer) FROM amounts_json") == [["4"]]
    _, e = run(athena, "CREATE TABLE shop.empty_copy AS SELECT * FROM orders WITH NO DATA")
    assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
    assert rows(athena, "SELECT count(*) FROM empty_copy") == [["0"]]
    _, e = run(athena, "CREATE TABLE shop.again WITH (external_location = 's3://lake/amounts_txt/') AS SELECT 1 AS x")
    assert e["Status"]["State"] == "FAILED" and "HIVE_PATH_ALREADY_EXISTS" in e["Status"]["StateChangeReason"]


def hive_bucket(value, count):
    """Hive's bucket (bucketing v1) of a bigint or a string column's value, computed here from
    Hive's definition: a long hashes to its halves xor-ed, a string to 31·h + byte from 0."""
    if isinstance(value, int):
        h = ((value >> 32) ^ value) & 0xFFFFFFFF
    else:
        h = 0
        for b in value.encode():
            h = (h * 31 + (b - 256 if b > 127 else b)) & 0xFFFFFFFF
    return (h & 0x7FFFFFFF) % count


def test_ctas_bucketed_tables_are_hive_bucketed_and_read_by_bucket(athena):
    import re
    import boto3

    s3 = boto3.client("s3", endpoint_url=athena.meta.endpoint_url, region_name="us-east-1",
                      aws_access_key_id="test", aws_secret_access_key="test")
    glue = boto3.client("glue", endpoint_url=athena.meta.endpoint_url, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")
    _, e = run(athena, "CREATE TABLE shop.by_id WITH (format = 'PARQUET', bucketed_by = ARRAY['id'], bucket_count = 4, "
                       "external_location = 's3://lake/by_id/') AS SELECT id, customer, amount FROM orders")
    assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
    sd = glue.get_table(DatabaseName="shop", Name="by_id")["Table"]["StorageDescriptor"]
    assert sd["BucketColumns"] == ["id"] and sd["NumberOfBuckets"] == 4
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="lake", Prefix="by_id/")["Contents"]]
    assert len(keys) == 4
    for key in keys:
        bucket = int(re.search(r"_bucket-(\d{5})\.parquet$", key).group(1))
        ids = pq.read_table(io.BytesIO(s3.get_object(Bucket="lake", Key=key)["Body"].read())).column("id").to_pylist()
        assert ids and all(hive_bucket(i, 4) == bucket for i in ids), (key, ids)
    assert rows(athena, "SELECT count(*), sum(id) FROM by_id") == [[str(len(ORDERS)), str(sum(o["id"] for o in ORDERS))]]
    # `id = 5` reads only bucket hive_bucket(5)'s file; IN reads the buckets of its values.
    qid, everything = run(athena, "SELECT max(amount) FROM by_id WHERE id > 0")
    qid, one = run(athena, "SELECT customer, amount FROM by_id WHERE id = 5")
    assert athena.get_query_results(QueryExecutionId=qid)["ResultSet"]["Rows"][1]["Data"][0]["VarCharValue"] == ORDERS[4]["customer"]
    assert 0 < one["Statistics"]["DataScannedInBytes"] < everything["Statistics"]["DataScannedInBytes"] / 2
    assert rows(athena, "SELECT id FROM by_id WHERE id IN (3, 7, 11) ORDER BY id") == [["3"], ["7"], ["11"]]
    # Athena refuses INSERT INTO a bucketed table, and so does Lakebox.
    _, e = run(athena, "INSERT INTO shop.by_id SELECT 99, 'c9', 1.0")
    assert e["Status"]["State"] == "FAILED" and "bucketed" in e["Status"]["StateChangeReason"]

    # Partitioned and bucketed by a string, as gzip text: one file per bucket per partition.
    _, e = run(athena, "CREATE TABLE shop.by_iso WITH (format = 'TEXTFILE', write_compression = 'GZIP', "
                       "partitioned_by = ARRAY['customer'], bucketed_by = ARRAY['iso'], bucket_count = 3, "
                       "external_location = 's3://lake/by_iso/') AS SELECT id, iso, customer FROM orders")
    assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
    import gzip
    seen = 0
    for key in [o["Key"] for o in s3.list_objects_v2(Bucket="lake", Prefix="by_iso/")["Contents"]]:
        m = re.match(r"by_iso/customer=(c\d)/[0-9a-f]+_bucket-(\d{5})\.txt\.gz$", key)
        assert m, key
        lines = gzip.decompress(s3.get_object(Bucket="lake", Key=key)["Body"].read()).decode().splitlines()
        for line in lines:
            i, iso = line.split("\x01")
            assert hive_bucket(iso, 3) == int(m.group(2)) and ORDERS[int(i) - 1]["customer"] == m.group(1)
        seen += len(lines)
    assert seen == len(ORDERS)
    iso = ORDERS[6]["iso"]
    assert rows(athena, f"SELECT id, customer FROM by_iso WHERE iso = '{iso}'") == [["7", ORDERS[6]["customer"]]]
    # A table bucketed by Hive (files 00000N_0), declared by DDL, is read by bucket too.
    for b in range(4):
        part = [i for i in range(1, 41) if hive_bucket(i, 4) == b]
        buf = io.BytesIO()
        pq.write_table(pa.table({"id": pa.array(part, pa.int64()), "v": [f"v{i}" for i in part]}), buf)
        s3.put_object(Bucket="lake", Key=f"hive_bucketed/{b:06d}_0", Body=buf.getvalue())
    _, e = run(athena, "CREATE EXTERNAL TABLE shop.hive_bucketed (id bigint, v string) CLUSTERED BY (id) INTO 4 BUCKETS "
                       "STORED AS PARQUET LOCATION 's3://lake/hive_bucketed/'")
    assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
    qid, all_ = run(athena, "SELECT count(*) FROM hive_bucketed WHERE v <> ''")
    qid, one = run(athena, "SELECT v FROM hive_bucketed WHERE id = 13")
    assert athena.get_query_results(QueryExecutionId=qid)["ResultSet"]["Rows"][1]["Data"][0]["VarCharValue"] == "v13"
    assert 0 < one["Statistics"]["DataScannedInBytes"] < all_["Statistics"]["DataScannedInBytes"] / 2
    _, e = run(athena, "CREATE TABLE shop.half WITH (bucketed_by = ARRAY['id']) AS SELECT id FROM orders")
    assert e["Status"]["State"] == "FAILED" and "bucket_count" in e["Status"]["StateChangeReason"]


def test_ctas_orc_and_avro_partitioned_read_back_by_other_readers(athena):
    import io
    import fastavro
    import pyarrow.orc as orc
    s3 = s3_client(athena)
    _, e = run(athena, """CREATE TABLE shop.orders_orc
        WITH (format = 'ORC', write_compression = 'SNAPPY', partitioned_by = ARRAY['customer'])
        AS SELECT id, amount, path, customer FROM orders""")
    assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
    _, e = run(athena, "CREATE TABLE shop.orders_avro WITH (format = 'AVRO', external_location = 's3://lake/orders_avro/') "
                       "AS SELECT id, customer FROM orders WHERE id <= 10")
    assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
    # The files are real ORC and Avro: pyarrow and fastavro read them.
    orc_keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="athena-results", Prefix="sql/tables/"):
        orc_keys += [o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(".orc")]
    assert sorted({k.split("/")[-2] for k in orc_keys}) == ["customer=c0", "customer=c1", "customer=c2", "customer=c3"]
    ids = []
    for k in orc_keys:
        t = orc.read_table(io.BytesIO(s3.get_object(Bucket="athena-results", Key=k)["Body"].read()))
        assert t.column_names == ["id", "amount", "path"]
        ids += t.column("id").to_pylist()
        # Parquet strings (read as string views) are written as ORC strings.
        assert t.column("path").to_pylist() == [f"/shop/item/{100 + i}?ref=ad{i % 2}" for i in t.column("id").to_pylist()]
    assert sorted(ids) == sorted(o["id"] for o in ORDERS)
    avro_keys = [o["Key"] for o in s3.list_objects_v2(Bucket="lake", Prefix="orders_avro/")["Contents"]]
    records = []
    for k in avro_keys:
        records += list(fastavro.reader(io.BytesIO(s3.get_object(Bucket="lake", Key=k)["Body"].read())))
    assert sorted(r["id"] for r in records) == list(range(1, 11))
    # And Athena reads its own tables, INSERT INTO included.
    total = {}
    for o in ORDERS:
        total[o["customer"]] = total.get(o["customer"], 0) + o["amount"]
    got = rows(athena, "SELECT customer, sum(amount) FROM orders_orc GROUP BY customer ORDER BY customer")
    assert [(c, float(v)) for c, v in got] == [(c, pytest.approx(v)) for c, v in sorted(total.items())]
    _, e = run(athena, "INSERT INTO orders_avro SELECT id, customer FROM orders WHERE id BETWEEN 11 AND 12")
    assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
    assert rows(athena, "SELECT count(*), max(id) FROM orders_avro") == [["12", "12"]]
    _, e = run(athena, "UNLOAD (SELECT id FROM orders WHERE id <= 3) TO 's3://lake/unloaded_orc/' WITH (format = 'ORC')")
    assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
    key = s3.list_objects_v2(Bucket="lake", Prefix="unloaded_orc/")["Contents"][0]["Key"]
    assert orc.read_table(io.BytesIO(s3.get_object(Bucket="lake", Key=key)["Body"].read())).column("id").to_pylist() == [1, 2, 3]
    _, e = run(athena, "CREATE TABLE shop.bad_codec WITH (format = 'ORC', write_compression = 'BROTLI') AS SELECT 1 AS x")
    assert e["Status"]["State"] == "FAILED" and "Unsupported ORC compression BROTLI" in e["Status"]["StateChangeReason"]


def test_unload_writes_files_only(athena):
    import gzip
    s3 = s3_client(athena)
    qid, e = run(athena, "UNLOAD (SELECT id, customer FROM orders WHERE id <= 4) TO 's3://lake/unloaded/' WITH (format = 'JSON', compression = 'GZIP')")
    assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
    assert athena.get_query_results(QueryExecutionId=qid)["UpdateCount"] == 4
    got = []
    for o in s3.list_objects_v2(Bucket="lake", Prefix="unloaded/")["Contents"]:
        assert o["Key"].endswith(".gz")
        got += [json.loads(l) for l in gzip.decompress(s3.get_object(Bucket="lake", Key=o["Key"])["Body"].read()).decode().splitlines()]
    assert sorted(g["id"] for g in got) == [1, 2, 3, 4]
    _, e = run(athena, "UNLOAD (SELECT 1) TO 's3://lake/unloaded/'")
    assert e["Status"]["State"] == "FAILED" and "HIVE_PATH_ALREADY_EXISTS" in e["Status"]["StateChangeReason"]


def test_query_runtime_statistics(athena):
    qid, e = run(athena, "SELECT customer, count(*) FROM orders WHERE id <= 10 GROUP BY customer")
    stats = athena.get_query_runtime_statistics(QueryExecutionId=qid)["QueryRuntimeStatistics"]
    assert stats["Rows"]["InputRows"] == len(ORDERS)  # one Parquet row group: every row is read
    assert stats["Rows"]["OutputRows"] == 4
    assert stats["Rows"]["InputBytes"] == e["Statistics"]["DataScannedInBytes"] > 0
    assert stats["Rows"]["OutputBytes"] > 0
    assert stats["Timeline"]["TotalExecutionTimeInMillis"] >= stats["Timeline"]["EngineExecutionTimeInMillis"]
    # OutputStage: the executed plan's stages; the output stage returns the 4 rows, every
    # stage below feeds an exchange above it, and the table scan reads the 24 rows.
    out = stats["OutputStage"]
    assert out["StageId"] == 0 and out["State"] == "FINISHED" and out["OutputRows"] == 4

    def stages(s):
        yield s
        for sub in s["SubStages"]:
            yield from stages(sub)

    def nodes(n):
        yield n
        for c in n["Children"]:
            yield from nodes(c)

    every = list(stages(out))
    assert len(every) > 1
    sources = sorted(r for s in every for n in nodes(s["QueryStagePlan"]) for r in n["RemoteSources"])
    assert sources == sorted(str(s["StageId"]) for s in every[1:])
    scans = [s for s in every if any("DataSource" in n["Name"] for n in nodes(s["QueryStagePlan"]))]
    assert sum(s["InputRows"] for s in scans) == len(ORDERS)
    qid, _ = run(athena, "SHOW TABLES")
    assert "Rows" not in athena.get_query_runtime_statistics(QueryExecutionId=qid)["QueryRuntimeStatistics"]


def test_write_runtime_statistics_count_the_rows_read_and_the_bytes_written(athena):
    """A CTAS, INSERT INTO or UNLOAD reads its source through the same scans as a query: InputRows
    is what they read, OutputRows the rows written, OutputBytes the bytes of the files written."""
    s3 = s3_client(athena)

    def written_bytes(e):
        bucket, key = e["Statistics"]["DataManifestLocation"][len("s3://"):].split("/", 1)
        files = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode().split()
        return sum(s3.head_object(Bucket=f[5:].split("/", 1)[0], Key=f[5:].split("/", 1)[1])["ContentLength"] for f in files)

    for sql, written in [
        ("CREATE TABLE ctas_stats WITH (format = 'PARQUET', external_location = 's3://lake/ctas_stats/') "
         "AS SELECT id, customer FROM orders WHERE id <= 5", 5),
        ("INSERT INTO ctas_stats SELECT id, customer FROM orders WHERE id > 20", len(ORDERS) - 20),
        ("UNLOAD (SELECT id FROM orders WHERE id <= 3) TO 's3://lake/unload_stats/' WITH (format = 'JSON')", 3),
    ]:
        qid, e = run(athena, sql)
        assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
        stats = athena.get_query_runtime_statistics(QueryExecutionId=qid)["QueryRuntimeStatistics"]["Rows"]
        assert stats["InputRows"] == len(ORDERS), sql  # one Parquet row group: every row is read
        assert stats["OutputRows"] == written, sql
        assert stats["OutputBytes"] == written_bytes(e) > 0, sql


def test_joda_pattern_functions(athena):
    got = rows(athena, "SELECT id, format_datetime(ts, 'yyyy-MM-dd HH:mm'), parse_datetime(raw, 'dd/MM/yyyy HH:mm') FROM orders ORDER BY id LIMIT 3")
    for r, o in zip(got, ORDERS):
        assert r[1] == o["ts"].strftime("%Y-%m-%d %H:%M")
        assert r[2] == o["ts"].strftime("%Y-%m-%d %H:%M:00.000 UTC")
