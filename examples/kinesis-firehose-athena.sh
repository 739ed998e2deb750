#!/usr/bin/env bash
# A data pipeline on one machine, with the AWS CLI only:
#
#   click events → Kinesis Data Streams → Data Firehose (JSON → Parquet, partitioned by day)
#   → S3 → a Glue crawler finds the table and its partitions → Athena queries it.
#
# Run it against a fresh Lakebox:   cargo run --release -p lakebox -- serve   (another terminal)
#                                    ./examples/kinesis-firehose-athena.sh
# Every call is a real AWS API call; point AWS_ENDPOINT_URL elsewhere to run it there.
set -euo pipefail

export AWS_ENDPOINT_URL="${AWS_ENDPOINT_URL:-http://localhost:4566}"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
ACCOUNT=000000000000
ROLE="arn:aws:iam::$ACCOUNT:role/pipeline"
# AWS CLI v2 reads blobs as base64 unless told otherwise; v1 sends them as given.
BLOB=()
if aws --version 2>&1 | grep -q '^aws-cli/2'; then BLOB=(--cli-binary-format raw-in-base64-out); fi

# Polls a command until its output matches a pattern (at most 60 s).
wait_for() {
  local what="$1" pattern="$2"; shift 2
  for _ in $(seq 1 300); do
    if "$@" 2>/dev/null | grep -q -- "$pattern"; then return 0; fi
    sleep 0.2
  done
  echo "timed out waiting for $what" >&2
  exit 1
}

echo "== buckets, stream and the schema Firehose converts to"
aws s3 mb s3://lake
aws s3 mb s3://athena-results
aws kinesis create-stream --stream-name clicks --shard-count 1
wait_for "the stream" ACTIVE aws kinesis describe-stream-summary --stream-name clicks \
  --query StreamDescriptionSummary.StreamStatus --output text
aws glue create-database --database-input Name=web
aws glue create-table --database-name web --table-input '{"Name": "click_schema", "StorageDescriptor": {"Columns": [
  {"Name": "page", "Type": "string"}, {"Name": "user", "Type": "string"}, {"Name": "ms", "Type": "int"}]}}'

echo "== Firehose: Kinesis → Parquet in s3://lake/clicks/dt=YYYY-MM-DD/"
aws firehose create-delivery-stream --delivery-stream-name clicks-to-lake \
  --delivery-stream-type KinesisStreamAsSource \
  --kinesis-stream-source-configuration "KinesisStreamARN=arn:aws:kinesis:$AWS_DEFAULT_REGION:$ACCOUNT:stream/clicks,RoleARN=$ROLE" \
  --extended-s3-destination-configuration '{
    "RoleARN": "'"$ROLE"'", "BucketARN": "arn:aws:s3:::lake",
    "Prefix": "clicks/dt=!{timestamp:yyyy-MM-dd}/", "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/",
    "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 0},
    "DataFormatConversionConfiguration": {"Enabled": true,
      "SchemaConfiguration": {"DatabaseName": "web", "TableName": "click_schema", "RoleARN": "'"$ROLE"'"},
      "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {}}},
      "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {"Compression": "SNAPPY"}}}}}'
wait_for "the delivery stream" ACTIVE aws firehose describe-delivery-stream --delivery-stream-name clicks-to-lake \
  --query DeliveryStreamDescription.DeliveryStreamStatus --output text

echo "== six clicks into Kinesis, in one PutRecords call"
aws kinesis put-records --stream-name clicks "${BLOB[@]}" --records '[
  {"PartitionKey": "ann", "Data": "{\"page\": \"/\", \"user\": \"ann\", \"ms\": 120}"},
  {"PartitionKey": "ann", "Data": "{\"page\": \"/cart\", \"user\": \"ann\", \"ms\": 340}"},
  {"PartitionKey": "bob", "Data": "{\"page\": \"/\", \"user\": \"bob\", \"ms\": 95}"},
  {"PartitionKey": "ann", "Data": "{\"page\": \"/buy\", \"user\": \"ann\", \"ms\": 610}"},
  {"PartitionKey": "bob", "Data": "{\"page\": \"/cart\", \"user\": \"bob\", \"ms\": 280}"},
  {"PartitionKey": "cid", "Data": "{\"page\": \"/\", \"user\": \"cid\", \"ms\": 70}"}]' \
  --query FailedRecordCount --output text
wait_for "Parquet in S3" .parquet aws s3 ls --recursive s3://lake/clicks/

echo "== a crawler finds the table and its day partition"
aws glue create-crawler --name clicks --role "$ROLE" --database-name web \
  --targets '{"S3Targets": [{"Path": "s3://lake/clicks/"}]}'
aws glue start-crawler --name clicks
wait_for "the crawl" SUCCEEDED aws glue get-crawler --name clicks --query Crawler.LastCrawl.Status --output text
aws glue get-table --database-name web --name clicks \
  --query 'Table.[StorageDescriptor.Columns[].Name, PartitionKeys[].Name]' --output text

echo "== Athena: page views and average time on page"
QID=$(aws athena start-query-execution --query-execution-context Database=web \
  --result-configuration OutputLocation=s3://athena-results/ \
  --query-string "SELECT page, count(*) AS views, avg(ms) AS avg_ms FROM clicks GROUP BY page ORDER BY views DESC, page" \
  --query QueryExecutionId --output text)
wait_for "the query" SUCCEEDED aws athena get-query-execution --query-execution-id "$QID" \
  --query QueryExecution.Status.State --output text
aws athena get-query-results --query-execution-id "$QID" --query 'ResultSet.Rows[*].Data[*].VarCharValue' --output text
