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
}

pub const ALL: &[(&str, Workload)] = &[
    ("kinesis-put-record", Workload::KinesisPutRecord),
    ("kinesis-put-records", Workload::KinesisPutRecords),
    ("kinesis-get-records", Workload::KinesisGetRecords),
    ("s3-put-4k", Workload::S3Put4k),
    ("s3-get-4k", Workload::S3Get4k),
    ("s3-get-64m", Workload::S3Get64m),
    ("s3-get-1g", Workload::S3Get1g),
];

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
            Workload::KinesisPutRecords => ("records", 500),
            Workload::KinesisGetRecords => ("records", 1000),
            Workload::S3Get64m => ("MiB", 64),
            Workload::S3Get1g => ("MiB", 1024),
            _ => ("requests", 1),
        }
    }

    /// Requests sent once, in order, before measuring. `Wait` steps poll until the stream is
    /// ACTIVE (some emulators create streams asynchronously).
    pub fn setup(&self) -> Vec<Setup> {
        let data = B64.encode(RECORD);
        match self {
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
            Workload::KinesisGetRecords => vec![Template::kinesis(
                "GetRecords",
                serde_json::json!({"ShardIterator": iterator.unwrap_or_default(), "Limit": 1000}),
            )],
            Workload::S3Put4k => {
                let body = Bytes::from(vec![b'p'; 4096]);
                (0..1024).map(|i| Template::s3("PUT", format!("/{BUCKET}/put-{i}"), body.clone())).collect()
            }
            Workload::S3Get4k => (0..100).map(|i| Template::s3("GET", format!("/{BUCKET}/hot-{i}"), Bytes::new())).collect(),
            Workload::S3Get64m | Workload::S3Get1g => {
                vec![Template::s3("GET", format!("/{BUCKET}/big-{}", self.unit().1), Bytes::new())]
            }
        }
    }
}

pub enum Setup {
    /// Send; `true` means an error answer is acceptable (the resource may already exist).
    Send(Template, bool),
    WaitActive,
    Iterator,
}
