// Drives Lakebox with the AWS SDK for JavaScript v3 as a Node user would, and prints what came
// back as one JSON document for tests/e2e/test_javascript_sdk.py to check.
//
//   LAKEBOX_JS_MODULES=<folder with node_modules> node clients.mjs http://127.0.0.1:4566
import { createRequire } from "node:module";
import { join } from "node:path";

const require = createRequire(join(process.env.LAKEBOX_JS_MODULES, "resolve-from-here.js"));
const s3sdk = require("@aws-sdk/client-s3");
const kinesisSdk = require("@aws-sdk/client-kinesis");
const glueSdk = require("@aws-sdk/client-glue");
const athenaSdk = require("@aws-sdk/client-athena");
const firehoseSdk = require("@aws-sdk/client-firehose");
const sqsSdk = require("@aws-sdk/client-sqs");
const ddbSdk = require("@aws-sdk/client-dynamodb");
const ddbLib = require("@aws-sdk/lib-dynamodb");
const ddbStreamsSdk = require("@aws-sdk/client-dynamodb-streams");

const endpoint = process.argv[2];
const config = {
  endpoint,
  region: "us-east-1",
  credentials: { accessKeyId: "test", secretAccessKey: "test" },
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const out = {};

// S3, path style; the SDK's default flexible checksums (CRC32 on uploads) included.
const s3 = new s3sdk.S3Client({ ...config, forcePathStyle: true });
await s3.send(new s3sdk.CreateBucketCommand({ Bucket: "js-bucket" }));
await s3.send(new s3sdk.PutObjectCommand({ Bucket: "js-bucket", Key: "docs/hello.txt", Body: "hello from js" }));
await s3.send(new s3sdk.PutObjectCommand({
  Bucket: "js-bucket", Key: "docs/sha.txt", Body: "checked", ChecksumAlgorithm: "SHA256",
}));
const got = await s3.send(new s3sdk.GetObjectCommand({ Bucket: "js-bucket", Key: "docs/hello.txt" }));
out.s3_body = await got.Body.transformToString();
const listed = await s3.send(new s3sdk.ListObjectsV2Command({ Bucket: "js-bucket", Prefix: "docs/" }));
out.s3_keys = listed.Contents.map((o) => o.Key);
const head = await s3.send(new s3sdk.HeadObjectCommand({ Bucket: "js-bucket", Key: "docs/sha.txt", ChecksumMode: "ENABLED" }));
out.s3_sha256 = head.ChecksumSHA256;
await s3.send(new s3sdk.DeleteObjectsCommand({
  Bucket: "js-bucket", Delete: { Objects: [{ Key: "docs/sha.txt" }] },
}));
out.s3_after_delete = ((await s3.send(new s3sdk.ListObjectsV2Command({ Bucket: "js-bucket" }))).Contents || []).map((o) => o.Key);

// Kinesis: a stream, a record in, the record out.
const kinesis = new kinesisSdk.KinesisClient(config);
await kinesis.send(new kinesisSdk.CreateStreamCommand({ StreamName: "js-stream", ShardCount: 1 }));
for (let i = 0; i < 100; i++) {
  const d = await kinesis.send(new kinesisSdk.DescribeStreamSummaryCommand({ StreamName: "js-stream" }));
  if (d.StreamDescriptionSummary.StreamStatus === "ACTIVE") break;
  await sleep(100);
}
const put = await kinesis.send(new kinesisSdk.PutRecordCommand({
  StreamName: "js-stream", PartitionKey: "k", Data: new TextEncoder().encode("order-1"),
}));
const shards = await kinesis.send(new kinesisSdk.ListShardsCommand({ StreamName: "js-stream" }));
const iterator = await kinesis.send(new kinesisSdk.GetShardIteratorCommand({
  StreamName: "js-stream", ShardId: shards.Shards[0].ShardId, ShardIteratorType: "TRIM_HORIZON",
}));
const records = await kinesis.send(new kinesisSdk.GetRecordsCommand({ ShardIterator: iterator.ShardIterator }));
out.kinesis = records.Records.map((r) => ({
  data: new TextDecoder().decode(r.Data), sequence: r.SequenceNumber, key: r.PartitionKey,
}));
out.kinesis_put_sequence = put.SequenceNumber;

// Glue: a database and a table, read back.
const glue = new glueSdk.GlueClient(config);
await glue.send(new glueSdk.CreateDatabaseCommand({ DatabaseInput: { Name: "jsdb" } }));
await glue.send(new glueSdk.CreateTableCommand({
  DatabaseName: "jsdb",
  TableInput: {
    Name: "orders",
    TableType: "EXTERNAL_TABLE",
    Parameters: { classification: "csv" },
    StorageDescriptor: {
      Columns: [{ Name: "id", Type: "int" }, { Name: "item", Type: "string" }],
      Location: "s3://js-bucket/orders/",
      InputFormat: "org.apache.hadoop.mapred.TextInputFormat",
      OutputFormat: "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
      SerdeInfo: {
        SerializationLibrary: "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe",
        Parameters: { "field.delim": "," },
      },
    },
  },
}));
const table = await glue.send(new glueSdk.GetTableCommand({ DatabaseName: "jsdb", Name: "orders" }));
out.glue_columns = table.Table.StorageDescriptor.Columns.map((c) => [c.Name, c.Type]);

// Athena over that table.
await s3.send(new s3sdk.PutObjectCommand({ Bucket: "js-bucket", Key: "orders/a.csv", Body: "1,apple\n2,pear\n3,fig\n" }));
const athena = new athenaSdk.AthenaClient(config);
const started = await athena.send(new athenaSdk.StartQueryExecutionCommand({
  QueryString: "SELECT id, item FROM orders WHERE id >= 2 ORDER BY id",
  QueryExecutionContext: { Database: "jsdb" },
  ResultConfiguration: { OutputLocation: "s3://js-bucket/results/" },
}));
let state;
for (let i = 0; i < 300; i++) {
  const e = await athena.send(new athenaSdk.GetQueryExecutionCommand({ QueryExecutionId: started.QueryExecutionId }));
  state = e.QueryExecution.Status.State;
  if (!["QUEUED", "RUNNING"].includes(state)) break;
  await sleep(100);
}
out.athena_state = state;
const results = await athena.send(new athenaSdk.GetQueryResultsCommand({ QueryExecutionId: started.QueryExecutionId }));
out.athena_rows = results.ResultSet.Rows.map((r) => r.Data.map((d) => d.VarCharValue));

// Firehose: records in, delivered to S3.
const firehose = new firehoseSdk.FirehoseClient(config);
await firehose.send(new firehoseSdk.CreateDeliveryStreamCommand({
  DeliveryStreamName: "js-firehose",
  ExtendedS3DestinationConfiguration: {
    BucketARN: "arn:aws:s3:::js-bucket",
    RoleARN: "arn:aws:iam::000000000000:role/firehose",
    Prefix: "fh/",
    BufferingHints: { IntervalInSeconds: 0, SizeInMBs: 1 },
  },
}));
for (let i = 0; i < 100; i++) {
  const d = await firehose.send(new firehoseSdk.DescribeDeliveryStreamCommand({ DeliveryStreamName: "js-firehose" }));
  if (d.DeliveryStreamDescription.DeliveryStreamStatus === "ACTIVE") break;
  await sleep(100);
}
const batch = await firehose.send(new firehoseSdk.PutRecordBatchCommand({
  DeliveryStreamName: "js-firehose",
  Records: ["a\n", "b\n"].map((t) => ({ Data: new TextEncoder().encode(t) })),
}));
out.firehose_failed = batch.FailedPutCount;
let delivered = "";
for (let i = 0; i < 100 && !delivered; i++) {
  const l = await s3.send(new s3sdk.ListObjectsV2Command({ Bucket: "js-bucket", Prefix: "fh/" }));
  for (const o of l.Contents || []) {
    const body = await s3.send(new s3sdk.GetObjectCommand({ Bucket: "js-bucket", Key: o.Key }));
    delivered += await body.Body.transformToString();
  }
  if (!delivered) await sleep(100);
}
out.firehose_delivered = delivered;

// SQS over awsJson 1.0; the SDK checks MD5OfMessageBody and MD5OfMessageAttributes itself and
// throws on a mismatch.
const sqs = new sqsSdk.SQSClient(config);
const { QueueUrl } = await sqs.send(new sqsSdk.CreateQueueCommand({ QueueName: "js-queue" }));
await sqs.send(new sqsSdk.SendMessageCommand({
  QueueUrl, MessageBody: "from js",
  MessageAttributes: { kind: { DataType: "String", StringValue: "order" }, n: { DataType: "Number", StringValue: "7" } },
}));
await sqs.send(new sqsSdk.SendMessageBatchCommand({
  QueueUrl, Entries: [{ Id: "a", MessageBody: "batch a" }, { Id: "b", MessageBody: "batch b" }],
}));
const bodies = [];
for (let i = 0; i < 10 && bodies.length < 3; i++) {
  const r = await sqs.send(new sqsSdk.ReceiveMessageCommand({
    QueueUrl, MaxNumberOfMessages: 10, MessageAttributeNames: ["All"], WaitTimeSeconds: 1,
  }));
  for (const m of r.Messages || []) {
    bodies.push(m.Body + (m.MessageAttributes?.kind ? `|${m.MessageAttributes.kind.StringValue}` : ""));
    await sqs.send(new sqsSdk.DeleteMessageCommand({ QueueUrl, ReceiptHandle: m.ReceiptHandle }));
  }
}
out.sqs_bodies = bodies.sort();
try {
  await sqs.send(new sqsSdk.GetQueueUrlCommand({ QueueName: "js-missing" }));
  out.sqs_missing = "no error";
} catch (e) {
  out.sqs_missing = e.name;
}

// DynamoDB through the document client (native JS values marshalled by the SDK), a
// conditional update, a query with a filter, a transaction, and the table's stream.
const ddb = new ddbSdk.DynamoDBClient(config);
await ddb.send(new ddbSdk.CreateTableCommand({
  TableName: "js-orders",
  AttributeDefinitions: [{ AttributeName: "customer", AttributeType: "S" }, { AttributeName: "id", AttributeType: "N" }],
  KeySchema: [{ AttributeName: "customer", KeyType: "HASH" }, { AttributeName: "id", KeyType: "RANGE" }],
  BillingMode: "PAY_PER_REQUEST",
  StreamSpecification: { StreamEnabled: true, StreamViewType: "NEW_IMAGE" },
}));
const doc = ddbLib.DynamoDBDocumentClient.from(ddb);
for (let i = 1; i <= 5; i++) {
  await doc.send(new ddbLib.PutCommand({
    TableName: "js-orders", Item: { customer: "ann", id: i, price: i * 1.5, tags: new Set(["a", `t${i}`]) },
  }));
}
const updated = await doc.send(new ddbLib.UpdateCommand({
  TableName: "js-orders", Key: { customer: "ann", id: 2 },
  UpdateExpression: "SET price = price + :d", ConditionExpression: "price < :max",
  ExpressionAttributeValues: { ":d": 10, ":max": 5 }, ReturnValues: "ALL_NEW",
}));
out.ddb_updated_price = updated.Attributes.price;
const q = await doc.send(new ddbLib.QueryCommand({
  TableName: "js-orders", KeyConditionExpression: "customer = :c AND id >= :from",
  FilterExpression: "price > :p", ExpressionAttributeValues: { ":c": "ann", ":from": 2, ":p": 5 },
}));
out.ddb_query = { ids: q.Items.map((i) => i.id), count: q.Count, scanned: q.ScannedCount, tags: [...q.Items[0].tags].sort() };
try {
  await doc.send(new ddbLib.TransactWriteCommand({ TransactItems: [
    { Put: { TableName: "js-orders", Item: { customer: "bob", id: 1 } } },
    { ConditionCheck: { TableName: "js-orders", Key: { customer: "ann", id: 9 }, ConditionExpression: "attribute_exists(id)" } },
  ] }));
  out.ddb_tx = "no error";
} catch (e) {
  out.ddb_tx = [e.name, (e.CancellationReasons || []).map((r) => r.Code)];
}
const bob = await doc.send(new ddbLib.GetCommand({ TableName: "js-orders", Key: { customer: "bob", id: 1 } }));
out.ddb_bob = bob.Item === undefined ? "absent" : "present";
const streams = new ddbStreamsSdk.DynamoDBStreamsClient(config);
const desc = await ddb.send(new ddbSdk.DescribeTableCommand({ TableName: "js-orders" }));
const sd = await streams.send(new ddbStreamsSdk.DescribeStreamCommand({ StreamArn: desc.Table.LatestStreamArn }));
const { ShardIterator } = await streams.send(new ddbStreamsSdk.GetShardIteratorCommand({
  StreamArn: desc.Table.LatestStreamArn, ShardId: sd.StreamDescription.Shards[0].ShardId, ShardIteratorType: "TRIM_HORIZON",
}));
const recs = await streams.send(new ddbStreamsSdk.GetRecordsCommand({ ShardIterator }));
out.ddb_stream_events = recs.Records.map((r) => r.eventName);

console.log(JSON.stringify(out));
