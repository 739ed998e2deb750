//! The benchmark workloads: how each sets up its target and what each request looks like.
//!
//! Every workload draws its requests from a fixed set of templates (distinct keys, partition
//! keys, …), so each template is signed once per second rather than once per request; the
//! signatures are real SigV4, valid for the target's clock.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;

/// One request to send.
#[derive(Clone)]
pub struct Template {
    pub method: &'static str,
    pub path: String,
    pub service: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Bytes,
    /// Hex SHA-256 of the body, or UNSIGNED-PAYLOAD.
    pub payload_hash: String,
    /// Every `__N__` in the body is replaced by a number no other request of the run uses,
    /// and the request signed anew each time (writes of new keys).
    pub unique: bool,
}

impl Template {
    pub fn kinesis(op: &str, body: serde_json::Value) -> Template {
        let body = Bytes::from(serde_json::to_vec(&body).expect("json"));
        Template {
            method: "POST",
            path: "/".into(),
            service: "kinesis",
            headers: vec![
                ("content-type", "application/x-amz-json-1.1".into()),
                ("x-amz-target", format!("Kinesis_20131202.{op}")),
            ],
            payload_hash: hash(&body),
            body,
            unique: false,
        }
    }

    /// An awsJson 1.1 call to another JSON service (Firehose, Glue).
    pub fn json(service: &'static str, target: &str, op: &str, body: serde_json::Value) -> Template {
        let body = Bytes::from(serde_json::to_vec(&body).expect("json"));
        Template {
            method: "POST",
            path: "/".into(),
            service,
            headers: vec![
                ("content-type", "application/x-amz-json-1.1".into()),
                ("x-amz-target", format!("{target}.{op}")),
            ],
            payload_hash: hash(&body),
            body,
            unique: false,
        }
    }

    /// An awsJson 1.0 call to DynamoDB.
    pub fn dynamodb(op: &str, body: serde_json::Value) -> Template {
        let mut t = Template::json("dynamodb", "DynamoDB_20120810", op, body);
        t.headers[0].1 = "application/x-amz-json-1.0".into();
        t
    }

    /// This template with `__N__` in its body made unique per request.
    pub fn unique(mut self) -> Template {
        self.unique = true;
        self
    }

    /// The template with `__N__` replaced by `n`, its payload hash recomputed.
    pub fn numbered(&self, n: &str) -> Template {
        let body = String::from_utf8_lossy(&self.body).replace("__N__", n);
        let body = Bytes::from(body);
        Template {
            payload_hash: hash(&body),
            body,
            unique: false,
            ..self.clone()
        }
    }

    /// An awsJson 1.0 call to SQS.
    pub fn sqs(op: &str, body: serde_json::Value) -> Template {
        let mut t = Template::json("sqs", "AmazonSQS", op, body);
        t.headers[0].1 = "application/x-amz-json-1.0".into();
        t
    }

    /// An awsQuery form (SNS): `params` URL-encoded with the action and version.
    pub fn query(service: &'static str, action: &str, version: &str, params: &[(&str, &str)]) -> Template {
        let mut form = format!("Action={action}&Version={version}");
        for (k, v) in params {
            form.push_str(&format!(
                "&{k}={}",
                percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
            ));
        }
        let body = Bytes::from(form);
        Template {
            method: "POST",
            path: "/".into(),
            service,
            headers: vec![("content-type", "application/x-www-form-urlencoded".into())],
            payload_hash: hash(&body),
            body,
            unique: false,
        }
    }

    pub fn s3(method: &'static str, path: String, body: Bytes) -> Template {
        Template {
            method,
            path,
            service: "s3",
            headers: vec![("x-amz-content-sha256", "UNSIGNED-PAYLOAD".into())],
            body,
            payload_hash: "UNSIGNED-PAYLOAD".into(),
            unique: false,
        }
    }
}

fn hash(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    KinesisPutRecord,
    KinesisPutRecords,
    KinesisGetRecords,
    S3Put4k,
    S3Get4k,
    S3Get64m,
    S3Get1g,
    /// PutRecords of 500 JSON records of 200 bytes: the Kinesis baseline for Firehose.
    KinesisPutRecordsJson,
    /// PutRecordBatch of the same 500 × 200 B into a GZIP JSON delivery stream.
    FirehoseBatchGzip,
    /// The same into a Parquet-converting delivery stream (schema from a Glue table).
    FirehoseBatchParquet,
    /// SendMessage of a 1 KiB body to a standard queue.
    SqsSend1k,
    /// ReceiveMessage(10) then DeleteMessageBatch of what came, draining a queue filled in
    /// setup with 1 KiB messages; measured until the queue is empty.
    SqsReceiveDelete,
    /// SNS Publish of a 1 KiB message to a topic with two SQS subscriptions (SNS's signed
    /// envelope); timed until both queues hold every message published.
    SnsPublishFanout,
    /// CloudWatch Logs PutLogEvents of 1,000 events of 200 bytes into one stream.
    LogsPutEvents,
    /// CloudWatch PutMetricData (awsQuery, as every SDK can send it) of one value with a
    /// dimension.
    CloudWatchPutMetricData,
    /// DynamoDB PutItem of a 1 KB item under a new key each time.
    DynamoDbPut1k,
    /// DynamoDB GetItem of one of 100 stored 1 KB items (eventually consistent, as by default).
    DynamoDbGet1k,
    /// DynamoDB Query returning one partition's 100 items of 1 KB.
    DynamoDbQuery100,
    /// DynamoDB BatchWriteItem of 25 new 1 KB items.
    DynamoDbBatchWrite25,
}

pub const ALL: &[(&str, Workload)] = &[
    ("kinesis-put-record", Workload::KinesisPutRecord),
    ("kinesis-put-records", Workload::KinesisPutRecords),
    ("kinesis-get-records", Workload::KinesisGetRecords),
    ("s3-put-4k", Workload::S3Put4k),
    ("s3-get-4k", Workload::S3Get4k),
    ("s3-get-64m", Workload::S3Get64m),
    ("s3-get-1g", Workload::S3Get1g),
    ("kinesis-put-records-json", Workload::KinesisPutRecordsJson),
    ("firehose-batch-gzip", Workload::FirehoseBatchGzip),
    ("firehose-batch-parquet", Workload::FirehoseBatchParquet),
    ("sqs-send-1k", Workload::SqsSend1k),
    ("sqs-receive-delete", Workload::SqsReceiveDelete),
    ("sns-publish-fanout", Workload::SnsPublishFanout),
    ("logs-put-events", Workload::LogsPutEvents),
    ("cloudwatch-put-metric-data", Workload::CloudWatchPutMetricData),
    ("dynamodb-put-1k", Workload::DynamoDbPut1k),
    ("dynamodb-get-1k", Workload::DynamoDbGet1k),
    ("dynamodb-query-100", Workload::DynamoDbQuery100),
    ("dynamodb-batch-write-25", Workload::DynamoDbBatchWrite25),
];

/// The DynamoDB workloads' table: partition key `pk` (S), sort key `sk` (N).
pub const TABLE: &str = "lakebox-bench";

/// A DynamoDB item of about 1 KB.
fn item_1k(pk: &str, sk: usize) -> serde_json::Value {
    serde_json::json!({"pk": {"S": pk}, "sk": {"N": sk.to_string()}, "data": {"S": "d".repeat(1000)}})
}

/// logs-put-events' log group and stream.
pub const LOG_GROUP: &str = "/lakebox/bench";
pub const LOG_STREAM: &str = "bench";

fn logs(op: &str, body: serde_json::Value) -> Template {
    Template::json("logs", "Logs_20140328", op, body)
}

/// sns-publish-fanout's topic and the queues subscribed to it.
pub const TOPIC: &str = "lakebox-bench";
pub const FANOUT_QUEUES: [&str; 2] = ["lakebox-bench-fanout-1", "lakebox-bench-fanout-2"];

/// How many messages sqs-receive-delete's setup queues by default (2,000 SendMessageBatch of
/// 10); `--drain-messages` sets fewer for slow targets.
pub const DRAIN_MESSAGES: usize = 20_000;
/// The queue sqs-receive-delete drains.
pub const DRAIN_QUEUE_URL: &str = "http://localhost/000000000000/lakebox-bench-drain";

pub const QUEUE: &str = "lakebox-bench";
/// Any host names the queue: emulators read the account and name from the URL's path.
const QUEUE_URL: &str = "http://localhost/000000000000/lakebox-bench";

pub const DELIVERY_STREAM: &str = "lakebox-bench";

/// A 200-byte JSON record (newline included), distinct per `i`.
pub fn json_record(i: usize) -> Vec<u8> {
    let head = format!(
        "{{\"id\":{i},\"user\":\"user-{:04}\",\"score\":{}.5,\"ok\":true,\"note\":\"",
        i % 1000,
        i % 97
    );
    let mut r = head.into_bytes();
    while r.len() < 197 {
        r.push(b'x');
    }
    r.extend_from_slice(b"\"}\n");
    r
}

fn firehose(op: &str, body: serde_json::Value) -> Template {
    Template::json("firehose", "Firehose_20150804", op, body)
}

fn glue(op: &str, body: serde_json::Value) -> Template {
    Template::json("glue", "AWSGlue", op, body)
}

pub const STREAM: &str = "lakebox-bench";
pub const BUCKET: &str = "lakebox-bench";
const RECORD: &[u8] = &[b'r'; 100];

impl Workload {
    pub fn parse(name: &str) -> Option<Workload> {
        ALL.iter().find(|(n, _)| *n == name).map(|(_, w)| *w)
    }

    /// What one successful request delivers, for the per-second figure beside requests/s.
    pub fn unit(&self) -> (&'static str, u64) {
        match self {
            Workload::KinesisPutRecords
            | Workload::KinesisPutRecordsJson
            | Workload::FirehoseBatchGzip
            | Workload::FirehoseBatchParquet => ("records", 500),
            Workload::KinesisGetRecords => ("records", 1000),
            Workload::S3Get64m => ("MiB", 64),
            Workload::S3Get1g => ("MiB", 1024),
            Workload::SqsReceiveDelete => ("messages", 10),
            Workload::SnsPublishFanout => ("deliveries", 2),
            Workload::LogsPutEvents => ("events", 1000),
            Workload::DynamoDbQuery100 => ("items", 100),
            Workload::DynamoDbBatchWrite25 => ("items", 25),
            _ => ("requests", 1),
        }
    }

    /// Requests sent once, in order, before measuring. `Wait` steps poll until the stream is
    /// ACTIVE (some emulators create streams asynchronously).
    pub fn setup(&self, drain_messages: usize) -> Vec<Setup> {
        let data = B64.encode(RECORD);
        match self {
            Workload::KinesisPutRecordsJson => vec![
                Setup::Send(
                    Template::kinesis(
                        "CreateStream",
                        serde_json::json!({"StreamName": STREAM, "ShardCount": 4}),
                    ),
                    true,
                ),
                Setup::WaitActive,
            ],
            Workload::FirehoseBatchGzip | Workload::FirehoseBatchParquet => {
                let parquet = *self == Workload::FirehoseBatchParquet;
                let mut destination = serde_json::json!({
                    "RoleARN": "arn:aws:iam::000000000000:role/bench",
                    "BucketARN": format!("arn:aws:s3:::{BUCKET}"),
                    "Prefix": if parquet { "parquet/" } else { "gzip/" },
                    "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 1},
                    "CompressionFormat": if parquet { "UNCOMPRESSED" } else { "GZIP" },
                });
                let mut steps = vec![Setup::Send(
                    Template::s3("PUT", format!("/{BUCKET}"), Bytes::new()),
                    true,
                )];
                if parquet {
                    steps.push(Setup::Send(
                        glue(
                            "CreateDatabase",
                            serde_json::json!({"DatabaseInput": {"Name": "bench"}}),
                        ),
                        true,
                    ));
                    steps.push(Setup::Send(
                        glue(
                            "CreateTable",
                            serde_json::json!({"DatabaseName": "bench", "TableInput": {"Name": "events", "StorageDescriptor": {"Columns": [
                                {"Name": "id", "Type": "bigint"}, {"Name": "user", "Type": "string"},
                                {"Name": "score", "Type": "double"}, {"Name": "ok", "Type": "boolean"},
                                {"Name": "note", "Type": "string"}]}}}),
                        ),
                        true,
                    ));
                    destination["DataFormatConversionConfiguration"] = serde_json::json!({
                        "SchemaConfiguration": {"DatabaseName": "bench", "TableName": "events", "RoleARN": "arn:aws:iam::000000000000:role/bench"},
                        "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {}}},
                        "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {"Compression": "SNAPPY"}}},
                    });
                }
                steps.push(Setup::Send(
                    firehose(
                        "CreateDeliveryStream",
                        serde_json::json!({"DeliveryStreamName": DELIVERY_STREAM, "ExtendedS3DestinationConfiguration": destination}),
                    ),
                    true,
                ));
                steps
            }
            Workload::KinesisPutRecord | Workload::KinesisPutRecords | Workload::KinesisGetRecords => {
                let shards = if *self == Workload::KinesisGetRecords {
                    1
                } else {
                    4
                };
                let mut steps = vec![
                    Setup::Send(
                        Template::kinesis(
                            "CreateStream",
                            serde_json::json!({"StreamName": STREAM, "ShardCount": shards}),
                        ),
                        true,
                    ),
                    Setup::WaitActive,
                ];
                if *self == Workload::KinesisGetRecords {
                    for _ in 0..2 {
                        let records: Vec<_> = (0..500)
                            .map(|i| serde_json::json!({"Data": data, "PartitionKey": format!("pk{i}")}))
                            .collect();
                        steps.push(Setup::Send(
                            Template::kinesis(
                                "PutRecords",
                                serde_json::json!({"StreamName": STREAM, "Records": records}),
                            ),
                            false,
                        ));
                    }
                    steps.push(Setup::Iterator);
                }
                steps
            }
            Workload::S3Put4k => vec![Setup::Send(
                Template::s3("PUT", format!("/{BUCKET}"), Bytes::new()),
                true,
            )],
            Workload::SqsSend1k => vec![Setup::Send(
                Template::sqs("CreateQueue", serde_json::json!({"QueueName": QUEUE})),
                true,
            )],
            Workload::SnsPublishFanout => vec![Setup::Fanout],
            Workload::LogsPutEvents => vec![
                Setup::Send(
                    logs("CreateLogGroup", serde_json::json!({"logGroupName": LOG_GROUP})),
                    true,
                ),
                Setup::Send(
                    logs(
                        "CreateLogStream",
                        serde_json::json!({"logGroupName": LOG_GROUP, "logStreamName": LOG_STREAM}),
                    ),
                    true,
                ),
            ],
            Workload::CloudWatchPutMetricData => Vec::new(),
            Workload::DynamoDbPut1k
            | Workload::DynamoDbGet1k
            | Workload::DynamoDbQuery100
            | Workload::DynamoDbBatchWrite25 => {
                let mut steps = vec![
                    Setup::Send(
                        Template::dynamodb(
                            "CreateTable",
                            serde_json::json!({
                                "TableName": TABLE,
                                "AttributeDefinitions": [
                                    {"AttributeName": "pk", "AttributeType": "S"},
                                    {"AttributeName": "sk", "AttributeType": "N"},
                                ],
                                "KeySchema": [
                                    {"AttributeName": "pk", "KeyType": "HASH"},
                                    {"AttributeName": "sk", "KeyType": "RANGE"},
                                ],
                                "BillingMode": "PAY_PER_REQUEST",
                            }),
                        ),
                        true,
                    ),
                    Setup::WaitTable,
                ];
                // GetItem reads 100 items of partitions hot-0..99; Query reads partitions
                // part-0..7 of 100 items each.
                let fill: Vec<serde_json::Value> = match self {
                    Workload::DynamoDbGet1k => (0..100).map(|i| item_1k(&format!("hot-{i}"), 0)).collect(),
                    Workload::DynamoDbQuery100 => (0..800)
                        .map(|i| item_1k(&format!("part-{}", i / 100), i % 100))
                        .collect(),
                    _ => Vec::new(),
                };
                for chunk in fill.chunks(25) {
                    let requests: Vec<_> = chunk
                        .iter()
                        .map(|item| serde_json::json!({"PutRequest": {"Item": item}}))
                        .collect();
                    steps.push(Setup::Send(
                        Template::dynamodb(
                            "BatchWriteItem",
                            serde_json::json!({"RequestItems": {TABLE: requests}}),
                        ),
                        false,
                    ));
                }
                steps
            }
            Workload::SqsReceiveDelete => {
                let fill = (0..drain_messages.div_ceil(10))
                    .map(|b| {
                        let entries: Vec<_> = (0..10)
                            .map(|i| serde_json::json!({"Id": format!("m{i}"), "MessageBody": format!("{b:06}{i}{}", "m".repeat(1017))}))
                            .collect();
                        Template::sqs(
                            "SendMessageBatch",
                            serde_json::json!({"QueueUrl": DRAIN_QUEUE_URL, "Entries": entries}),
                        )
                    })
                    .collect();
                vec![
                    Setup::Send(
                        Template::sqs(
                            "CreateQueue",
                            serde_json::json!({"QueueName": "lakebox-bench-drain"}),
                        ),
                        true,
                    ),
                    Setup::Fill(fill),
                ]
            }
            Workload::S3Get4k => {
                let mut steps = vec![Setup::Send(
                    Template::s3("PUT", format!("/{BUCKET}"), Bytes::new()),
                    true,
                )];
                let body = Bytes::from(vec![b'o'; 4096]);
                for i in 0..100 {
                    steps.push(Setup::Send(
                        Template::s3("PUT", format!("/{BUCKET}/hot-{i}"), body.clone()),
                        false,
                    ));
                }
                steps
            }
            Workload::S3Get64m | Workload::S3Get1g => {
                let mib = self.unit().1 as usize;
                vec![
                    Setup::Send(Template::s3("PUT", format!("/{BUCKET}"), Bytes::new()), true),
                    Setup::Send(
                        Template::s3(
                            "PUT",
                            format!("/{BUCKET}/big-{mib}"),
                            Bytes::from(vec![b'b'; mib << 20]),
                        ),
                        false,
                    ),
                ]
            }
        }
    }

    /// The request templates the run cycles through. `iterator` is the shard iterator from
    /// setup (GetRecords).
    pub fn templates(&self, iterator: Option<&str>) -> Vec<Template> {
        let data = B64.encode(RECORD);
        match self {
            Workload::KinesisPutRecord => (0..64)
                .map(|i| Template::kinesis("PutRecord", serde_json::json!({"StreamName": STREAM, "Data": data, "PartitionKey": format!("key-{i}")})))
                .collect(),
            Workload::KinesisPutRecords => (0..8)
                .map(|t| {
                    let records: Vec<_> =
                        (0..500).map(|i| serde_json::json!({"Data": data, "PartitionKey": format!("pk-{t}-{i}")})).collect();
                    Template::kinesis("PutRecords", serde_json::json!({"StreamName": STREAM, "Records": records}))
                })
                .collect(),
            Workload::KinesisPutRecordsJson => (0..8)
                .map(|t| {
                    let records: Vec<_> = (0..500)
                        .map(|i| serde_json::json!({"Data": B64.encode(json_record(t * 500 + i)), "PartitionKey": format!("pk-{t}-{i}")}))
                        .collect();
                    Template::kinesis("PutRecords", serde_json::json!({"StreamName": STREAM, "Records": records}))
                })
                .collect(),
            Workload::FirehoseBatchGzip | Workload::FirehoseBatchParquet => (0..8)
                .map(|t| {
                    let records: Vec<_> =
                        (0..500).map(|i| serde_json::json!({"Data": B64.encode(json_record(t * 500 + i))})).collect();
                    firehose("PutRecordBatch", serde_json::json!({"DeliveryStreamName": DELIVERY_STREAM, "Records": records}))
                })
                .collect(),
            Workload::KinesisGetRecords => vec![Template::kinesis(
                "GetRecords",
                serde_json::json!({"ShardIterator": iterator.unwrap_or_default(), "Limit": 1000}),
            )],
            Workload::S3Put4k => {
                let body = Bytes::from(vec![b'p'; 4096]);
                (0..1024).map(|i| Template::s3("PUT", format!("/{BUCKET}/put-{i}"), body.clone())).collect()
            }
            Workload::SqsSend1k => (0..64)
                .map(|i| {
                    let body = format!("{i:04}{}", "m".repeat(1020));
                    Template::sqs("SendMessage", serde_json::json!({"QueueUrl": QUEUE_URL, "MessageBody": body}))
                })
                .collect(),
            Workload::SnsPublishFanout => (0..64)
                .map(|i| {
                    let body = format!("{i:04}{}", "m".repeat(1020));
                    let topic = iterator.unwrap_or_default();
                    Template::query("sns", "Publish", "2010-03-31", &[("TopicArn", topic), ("Message", &body)])
                })
                .collect(),
            Workload::SqsReceiveDelete => vec![Template::sqs(
                "ReceiveMessage",
                serde_json::json!({"QueueUrl": DRAIN_QUEUE_URL, "MaxNumberOfMessages": 10, "VisibilityTimeout": 60}),
            )],
            Workload::LogsPutEvents => {
                // Stamped now: a run stays well inside the two hours ahead and 14 days back
                // that PutLogEvents accepts.
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as i64);
                (0..8)
                    .map(|t| {
                        let events: Vec<_> = (0..1000)
                            .map(|i| {
                                let record = json_record(t * 1000 + i);
                                let message = String::from_utf8_lossy(&record[..record.len() - 1]).into_owned();
                                serde_json::json!({"timestamp": now + i as i64, "message": message})
                            })
                            .collect();
                        logs(
                            "PutLogEvents",
                            serde_json::json!({"logGroupName": LOG_GROUP, "logStreamName": LOG_STREAM, "logEvents": events}),
                        )
                    })
                    .collect()
            }
            Workload::CloudWatchPutMetricData => (0..64)
                .map(|i| {
                    let value = format!("{}", i % 17);
                    let host = format!("host-{}", i % 8);
                    Template::query(
                        "monitoring",
                        "PutMetricData",
                        "2010-08-01",
                        &[
                            ("Namespace", "Bench"),
                            ("MetricData.member.1.MetricName", "Latency"),
                            ("MetricData.member.1.Value", &value),
                            ("MetricData.member.1.Unit", "Milliseconds"),
                            ("MetricData.member.1.Dimensions.member.1.Name", "Host"),
                            ("MetricData.member.1.Dimensions.member.1.Value", &host),
                        ],
                    )
                })
                .collect(),
            Workload::S3Get4k => (0..100).map(|i| Template::s3("GET", format!("/{BUCKET}/hot-{i}"), Bytes::new())).collect(),
            Workload::DynamoDbPut1k => vec![
                Template::dynamodb("PutItem", serde_json::json!({"TableName": TABLE, "Item": item_1k("new-__N__", 0)}))
                    .unique(),
            ],
            Workload::DynamoDbGet1k => (0..100)
                .map(|i| {
                    Template::dynamodb(
                        "GetItem",
                        serde_json::json!({"TableName": TABLE, "Key": {"pk": {"S": format!("hot-{i}")}, "sk": {"N": "0"}}}),
                    )
                })
                .collect(),
            Workload::DynamoDbQuery100 => (0..8)
                .map(|p| {
                    Template::dynamodb(
                        "Query",
                        serde_json::json!({
                            "TableName": TABLE,
                            "KeyConditionExpression": "pk = :p",
                            "ExpressionAttributeValues": {":p": {"S": format!("part-{p}")}},
                        }),
                    )
                })
                .collect(),
            Workload::DynamoDbBatchWrite25 => {
                let requests: Vec<_> =
                    (0..25).map(|i| serde_json::json!({"PutRequest": {"Item": item_1k("batch-__N__", i)}})).collect();
                vec![
                    Template::dynamodb("BatchWriteItem", serde_json::json!({"RequestItems": {TABLE: requests}})).unique(),
                ]
            }
            Workload::S3Get64m | Workload::S3Get1g => {
                vec![Template::s3("GET", format!("/{BUCKET}/big-{}", self.unit().1), Bytes::new())]
            }
        }
    }
}

pub enum Setup {
    /// Send; `true` means an error answer is acceptable (the resource may already exist).
    Send(Template, bool),
    /// Sends all of these, each of which must succeed, over several connections at once (a
    /// backlog of a million messages fills in seconds, not minutes).
    Fill(Vec<Template>),
    WaitActive,
    /// Polls DescribeTable until the DynamoDB table is ACTIVE.
    WaitTable,
    Iterator,
    /// Creates the topic and queues and subscribes the queues (their ARNs read back, as each
    /// emulator names its account its own way); yields the topic's ARN.
    Fanout,
}

#[cfg(test)]
mod tests {
    #[test]
    fn json_records_are_200_bytes_of_json() {
        for i in [0, 7, 3999] {
            let r = super::json_record(i);
            assert_eq!(r.len(), 200);
            assert!(serde_json::from_slice::<serde_json::Value>(&r).is_ok());
        }
    }
}
