//! The twelve Firehose operations.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use lakebox_core::{RequestContext, ServiceError};
use lakebox_protocol::{Blob, Timestamp};
use lakebox_store::LogEntry;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Firehose;
use crate::destination::{KIND_HTTP, KIND_S3, Target, describe_extended, describe_plain, merge_update};
use crate::errors::{in_use, internal, invalid_argument, not_found, validation};
use crate::source;
use crate::streams::{DeliveryStream, KinesisSource};

const DESTINATION_ID: &str = "destinationId-000000000001";
const MAX_BATCH_RECORDS: usize = 500;
const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
const MAX_RECORD_BYTES: usize = 1_024_000;
const MAX_TAGS: usize = 50;

/// Destinations Lakebox does not deliver to yet: refused by name, never silently accepted.
const UNSUPPORTED: [&str; 8] = [
    "RedshiftDestinationConfiguration",
    "ElasticsearchDestinationConfiguration",
    "AmazonopensearchserviceDestinationConfiguration",
    "SplunkDestinationConfiguration",
    "AmazonOpenSearchServerlessDestinationConfiguration",
    "SnowflakeDestinationConfiguration",
    "IcebergDestinationConfiguration",
    "MSKSourceConfiguration",
];

fn check_name(name: &str) -> Result<(), ServiceError> {
    if name.is_empty() || name.len() > 64 {
        return Err(validation(
            "deliveryStreamName",
            "Member must have length between 1 and 64",
            name,
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
    {
        return Err(validation(
            "deliveryStreamName",
            "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
            name,
        ));
    }
    Ok(())
}

fn check_tags(tags: &[(String, String)]) -> Result<(), ServiceError> {
    if tags.len() > MAX_TAGS {
        return Err(invalid_argument(format!(
            "A delivery stream can have at most {MAX_TAGS} tags."
        )));
    }
    for (k, v) in tags {
        if k.is_empty() || k.len() > 128 || v.len() > 256 || k.starts_with("aws:") {
            return Err(invalid_argument(format!("Invalid tag {k}={v}.")));
        }
    }
    Ok(())
}

fn tag_list(v: Option<&Value>) -> Vec<(String, String)> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| {
            Some((
                t.get("Key")?.as_str()?.to_owned(),
                t.get("Value").and_then(Value::as_str).unwrap_or("").to_owned(),
            ))
        })
        .collect()
}

fn encryption_from_input(input: &Value) -> Result<Value, ServiceError> {
    let key_type = input
        .get("KeyType")
        .and_then(Value::as_str)
        .unwrap_or("AWS_OWNED_CMK");
    match key_type {
        "AWS_OWNED_CMK" => Ok(json!({"KeyType": key_type, "Status": "ENABLED"})),
        "CUSTOMER_MANAGED_CMK" => {
            let arn = input.get("KeyARN").and_then(Value::as_str).ok_or_else(|| {
                invalid_argument("KeyARN is required when KeyType is CUSTOMER_MANAGED_CMK.")
            })?;
            Ok(json!({"KeyARN": arn, "KeyType": key_type, "Status": "ENABLED"}))
        }
        other => Err(invalid_argument(format!("Invalid KeyType {other}."))),
    }
}

fn field<'a>(v: &'a Value, k: &str) -> Option<&'a Value> {
    v.get(k).filter(|x| !x.is_null())
}

pub async fn create(f: &Firehose, ctx: &RequestContext, req: Value) -> Result<Value, ServiceError> {
    let name = req
        .get("DeliveryStreamName")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    check_name(&name)?;
    for k in UNSUPPORTED {
        if field(&req, k).is_some() {
            return Err(invalid_argument(format!(
                "{k} is not supported by Lakebox yet; use ExtendedS3DestinationConfiguration or S3DestinationConfiguration."
            )));
        }
    }
    let stream_type = req
        .get("DeliveryStreamType")
        .and_then(Value::as_str)
        .unwrap_or("DirectPut")
        .to_owned();
    if !["DirectPut", "KinesisStreamAsSource"].contains(&stream_type.as_str()) {
        return Err(invalid_argument(format!(
            "DeliveryStreamType {stream_type} is not supported by Lakebox yet; use DirectPut or KinesisStreamAsSource."
        )));
    }
    let given: Vec<(&str, &Value)> = [
        (KIND_S3, field(&req, "ExtendedS3DestinationConfiguration")),
        (KIND_S3, field(&req, "S3DestinationConfiguration")),
        (KIND_HTTP, field(&req, "HttpEndpointDestinationConfiguration")),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k, v)))
    .collect();
    let (kind, destination) = match given.as_slice() {
        [(k, d)] => (k.to_string(), (*d).clone()),
        [] => return Err(invalid_argument("A destination configuration is required.")),
        _ => {
            return Err(invalid_argument(
                "Only one destination configuration can be given.",
            ));
        }
    };
    Target::parse(&kind, &destination)?;
    let now = f.streams.now();
    let (kinesis_source, positions) = if stream_type == "KinesisStreamAsSource" {
        let src = field(&req, "KinesisStreamSourceConfiguration").ok_or_else(|| {
            invalid_argument("KinesisStreamSourceConfiguration is required for KinesisStreamAsSource.")
        })?;
        let arn = src
            .get("KinesisStreamARN")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let role = src
            .get("RoleARN")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let sname = source::stream_name(&arn, &ctx.account_id, &ctx.region)?;
        let positions = source::latest_positions(&*f.kinesis, &ctx.account_id, &ctx.region, &sname)?
            .ok_or_else(|| invalid_argument(format!("Kinesis stream {arn} does not exist.")))?;
        if field(&req, "DeliveryStreamEncryptionConfigurationInput").is_some() {
            return Err(invalid_argument(
                "Server-side encryption cannot be set on a delivery stream whose source is a Kinesis stream.",
            ));
        }
        (
            Some(KinesisSource {
                stream_arn: arn,
                role_arn: role,
                start_millis: now,
            }),
            positions,
        )
    } else {
        if field(&req, "KinesisStreamSourceConfiguration").is_some() {
            return Err(invalid_argument(
                "KinesisStreamSourceConfiguration needs DeliveryStreamType KinesisStreamAsSource.",
            ));
        }
        (None, BTreeMap::new())
    };
    let encryption = field(&req, "DeliveryStreamEncryptionConfigurationInput")
        .map(encryption_from_input)
        .transpose()?;
    let tags = tag_list(req.get("Tags"));
    check_tags(&tags)?;
    let s = DeliveryStream {
        name: name.clone(),
        uid: uuid::Uuid::new_v4().simple().to_string(),
        account: ctx.account_id.clone(),
        region: ctx.region.clone(),
        stream_type,
        version: 1,
        created_millis: now,
        updated_millis: None,
        ready_millis: now + f.streams.create_delay_millis,
        deleting_until_millis: None,
        direct_put: field(&req, "DirectPutSourceConfiguration").cloned(),
        kinesis_source,
        destination_kind: kind,
        destination,
        encryption,
        tags,
    };
    if !f.streams.create(s.clone(), positions).await? {
        return Err(in_use(format!(
            "Firehose {name} under accountId {} already exists",
            ctx.account_id
        )));
    }
    let arn = s.arn();
    f.start_workers(&s);
    Ok(json!({ "DeliveryStreamARN": arn }))
}

fn description(f: &Firehose, s: &DeliveryStream) -> Value {
    let now = f.streams.now();
    let source = match (&s.kinesis_source, &s.direct_put) {
        (Some(k), _) => json!({"KinesisStreamSourceDescription": {
            "KinesisStreamARN": k.stream_arn, "RoleARN": k.role_arn,
            "DeliveryStartTimestamp": Timestamp::from_millis(k.start_millis)}}),
        (None, Some(d)) => json!({"DirectPutSourceDescription": d}),
        (None, None) => Value::Null,
    };
    let mut d = json!({
        "DeliveryStreamName": s.name,
        "DeliveryStreamARN": s.arn(),
        "DeliveryStreamStatus": s.status(now),
        "DeliveryStreamEncryptionConfiguration": s.encryption.clone().unwrap_or_else(|| json!({"Status": "DISABLED"})),
        "DeliveryStreamType": s.stream_type,
        "VersionId": s.version.to_string(),
        "CreateTimestamp": Timestamp::from_millis(s.created_millis),
        "Destinations": [if s.destination_kind == KIND_HTTP {
            json!({
                "DestinationId": DESTINATION_ID,
                "HttpEndpointDestinationDescription": crate::http::describe(&s.destination),
            })
        } else {
            json!({
                "DestinationId": DESTINATION_ID,
                "S3DestinationDescription": describe_plain(&s.destination),
                "ExtendedS3DestinationDescription": describe_extended(&s.destination),
            })
        }],
        "HasMoreDestinations": false,
    });
    if !source.is_null() {
        d["Source"] = source;
    }
    if let Some(u) = s.updated_millis {
        d["LastUpdateTimestamp"] = json!(Timestamp::from_millis(u));
    }
    d
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NameInput {
    pub delivery_stream_name: String,
}

pub fn describe(f: &Firehose, ctx: &RequestContext, r: NameInput) -> Result<Value, ServiceError> {
    let s = f
        .streams
        .require(&ctx.account_id, &ctx.region, &r.delivery_stream_name)?;
    Ok(json!({ "DeliveryStreamDescription": description(f, &s) }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListInput {
    pub limit: Option<i64>,
    pub delivery_stream_type: Option<String>,
    pub exclusive_start_delivery_stream_name: Option<String>,
}

pub fn list(f: &Firehose, ctx: &RequestContext, r: ListInput) -> Result<Value, ServiceError> {
    let limit = match r.limit {
        None => 10,
        Some(n) if (1..=10_000).contains(&n) => n as usize,
        Some(n) => {
            return Err(validation(
                "limit",
                "Member must have value between 1 and 10000",
                n,
            ));
        }
    };
    let mut names: Vec<String> = f
        .streams
        .list(&ctx.account_id, &ctx.region)?
        .into_iter()
        .filter(|s| {
            r.delivery_stream_type
                .as_ref()
                .is_none_or(|t| &s.stream_type == t)
        })
        .map(|s| s.name)
        .filter(|n| {
            r.exclusive_start_delivery_stream_name
                .as_ref()
                .is_none_or(|start| n > start)
        })
        .collect();
    names.sort();
    let more = names.len() > limit;
    names.truncate(limit);
    Ok(json!({ "DeliveryStreamNames": names, "HasMoreDeliveryStreams": more }))
}

pub async fn delete(f: &Firehose, ctx: &RequestContext, r: NameInput) -> Result<Value, ServiceError> {
    let now = f.streams.now();
    let delay = f.streams.create_delay_millis;
    let s = f
        .streams
        .update(&ctx.account_id, &ctx.region, &r.delivery_stream_name, move |s| {
            if s.deleting_until_millis.is_none() {
                s.deleting_until_millis = Some(now + delay);
            }
            Ok(s.clone())
        })
        .await?;
    f.streams.wake(&s.uid);
    Ok(json!({}))
}

/// The stream's log, if records may be put to it now.
fn writable(f: &Firehose, ctx: &RequestContext, name: &str) -> Result<DeliveryStream, ServiceError> {
    let s = f.streams.require(&ctx.account_id, &ctx.region, name)?;
    if s.stream_type != "DirectPut" {
        return Err(invalid_argument(format!(
            "This operation is not permitted on KinesisStreamAsSource delivery stream type. Firehose {name} under account {} is sourced from a Kinesis stream.",
            ctx.account_id
        )));
    }
    match s.status(f.streams.now()) {
        "ACTIVE" => Ok(s),
        other => Err(not_found(name, &ctx.account_id).with_extra("Status", other)),
    }
}

/// A record id unique to this record: the stream, its log offset and random bits.
fn record_id(uid: &str, offset: u64) -> String {
    let mut raw = Vec::with_capacity(48);
    raw.extend_from_slice(uid.as_bytes());
    raw.extend_from_slice(&offset.to_be_bytes());
    raw.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    B64.encode(raw)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RecordInput {
    pub data: Blob,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordInput {
    pub delivery_stream_name: String,
    pub record: RecordInput,
}

pub async fn put_record(
    f: &Firehose,
    ctx: &RequestContext,
    r: PutRecordInput,
) -> Result<Value, ServiceError> {
    let s = writable(f, ctx, &r.delivery_stream_name)?;
    if r.record.data.0.len() > MAX_RECORD_BYTES {
        return Err(validation(
            "record.data",
            "Member must have length less than or equal to 1024000",
            "<data>",
        ));
    }
    let log = f.streams.log(&s.uid)?;
    let offsets = log
        .append(vec![LogEntry {
            timestamp_millis: ctx.received_at_millis,
            payload: r.record.data.0,
        }])
        .await
        .map_err(internal)?;
    Ok(json!({ "RecordId": record_id(&s.uid, offsets.start), "Encrypted": s.encrypted() }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordBatchInput {
    pub delivery_stream_name: String,
    pub records: Vec<RecordInput>,
}

pub async fn put_record_batch(
    f: &Firehose,
    ctx: &RequestContext,
    r: PutRecordBatchInput,
) -> Result<Value, ServiceError> {
    let s = writable(f, ctx, &r.delivery_stream_name)?;
    if r.records.is_empty() || r.records.len() > MAX_BATCH_RECORDS {
        return Err(validation(
            "records",
            "Member must have length less than or equal to 500",
            format!("{} records", r.records.len()),
        ));
    }
    if r.records.iter().any(|x| x.data.0.len() > MAX_RECORD_BYTES) {
        return Err(validation(
            "records.member.data",
            "Member must have length less than or equal to 1024000",
            "<data>",
        ));
    }
    let total: usize = r.records.iter().map(|x| x.data.0.len()).sum();
    if total > MAX_BATCH_BYTES {
        return Err(invalid_argument(format!(
            "Records size exceeds 4 MB limit: the batch holds {total} bytes."
        )));
    }
    let n = r.records.len();
    let entries = r
        .records
        .into_iter()
        .map(|x| LogEntry {
            timestamp_millis: ctx.received_at_millis,
            payload: x.data.0,
        })
        .collect();
    // All records of a batch are appended and made durable together.
    let offsets = f.streams.log(&s.uid)?.append(entries).await.map_err(internal)?;
    let responses: Vec<Value> = offsets
        .clone()
        .map(|o| json!({ "RecordId": record_id(&s.uid, o) }))
        .collect();
    debug_assert_eq!(responses.len(), n);
    Ok(json!({ "FailedPutCount": 0, "Encrypted": s.encrypted(), "RequestResponses": responses }))
}

pub async fn update_destination(
    f: &Firehose,
    ctx: &RequestContext,
    req: Value,
) -> Result<Value, ServiceError> {
    let name = req
        .get("DeliveryStreamName")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let current_version = req
        .get("CurrentDeliveryStreamVersionId")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let destination_id = req
        .get("DestinationId")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let updates: Vec<(&str, &Value)> = [
        (KIND_S3, field(&req, "ExtendedS3DestinationUpdate")),
        (KIND_S3, field(&req, "S3DestinationUpdate")),
        (KIND_HTTP, field(&req, "HttpEndpointDestinationUpdate")),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k, v)))
    .collect();
    let (kind, update) = match updates.as_slice() {
        [(k, u)] => (k.to_string(), (*u).clone()),
        [_, _, ..] => return Err(invalid_argument("Only one destination update can be given.")),
        [] => {
            let other = req
                .as_object()
                .and_then(|o| o.keys().find(|k| k.ends_with("DestinationUpdate")).cloned())
                .unwrap_or_else(|| "a destination update".into());
            return Err(invalid_argument(format!(
                "{other} is not supported by Lakebox yet; use ExtendedS3DestinationUpdate, S3DestinationUpdate or HttpEndpointDestinationUpdate."
            )));
        }
    };
    let now = f.streams.now();
    let account = ctx.account_id.clone();
    f.streams
        .update(&ctx.account_id, &ctx.region, &name, move |s| {
            if s.status(now) != "ACTIVE" {
                return Err(in_use(format!("Firehose {} under account {account} is not ACTIVE.", s.name)));
            }
            if s.version.to_string() != current_version {
                return Err(ServiceError::client(
                    "ConcurrentModificationException",
                    format!(
                        "Cannot update firehose: {} since the current version id: {} and specified version id: {} do not match",
                        s.name, s.version, current_version
                    ),
                ));
            }
            if destination_id != DESTINATION_ID {
                return Err(invalid_argument(format!("Destination {destination_id} not found.")));
            }
            // An update of the same kind changes fields; of another kind, replaces the
            // destination (Firehose lets a stream switch destinations).
            let merged = if kind == s.destination_kind {
                merge_update(&s.destination, &update)
            } else {
                merge_update(&json!({}), &update)
            };
            let was = Target::parse(&s.destination_kind, &s.destination)?.dynamic_partitioning();
            let now_dp = Target::parse(&kind, &merged)?.dynamic_partitioning();
            if now_dp && !was {
                return Err(invalid_argument(
                    "Dynamic partitioning cannot be enabled on an existing delivery stream; create a new one.",
                ));
            }
            if was && !now_dp {
                return Err(invalid_argument("Dynamic partitioning cannot be disabled once it is enabled."));
            }
            s.destination = merged;
            s.destination_kind = kind;
            s.version += 1;
            s.updated_millis = Some(now);
            Ok(())
        })
        .await?;
    Ok(json!({}))
}

pub async fn tag(f: &Firehose, ctx: &RequestContext, req: Value) -> Result<Value, ServiceError> {
    let name = req
        .get("DeliveryStreamName")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let new = tag_list(req.get("Tags"));
    if new.is_empty() {
        return Err(validation(
            "tags",
            "Member must have length greater than or equal to 1",
            "[]",
        ));
    }
    f.streams
        .update(&ctx.account_id, &ctx.region, &name, move |s| {
            let mut tags: BTreeMap<String, String> = s.tags.iter().cloned().collect();
            tags.extend(new);
            let tags: Vec<(String, String)> = tags.into_iter().collect();
            check_tags(&tags)?;
            s.tags = tags;
            Ok(())
        })
        .await?;
    Ok(json!({}))
}

pub async fn untag(f: &Firehose, ctx: &RequestContext, req: Value) -> Result<Value, ServiceError> {
    let name = req
        .get("DeliveryStreamName")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let keys: Vec<String> = req
        .get("TagKeys")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default();
    f.streams
        .update(&ctx.account_id, &ctx.region, &name, move |s| {
            s.tags.retain(|(k, _)| !keys.contains(k));
            Ok(())
        })
        .await?;
    Ok(json!({}))
}

pub fn list_tags(f: &Firehose, ctx: &RequestContext, req: Value) -> Result<Value, ServiceError> {
    let name = req
        .get("DeliveryStreamName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let s = f.streams.require(&ctx.account_id, &ctx.region, name)?;
    let limit = req
        .get("Limit")
        .and_then(Value::as_u64)
        .unwrap_or(50)
        .clamp(1, 50) as usize;
    let start = req.get("ExclusiveStartTagKey").and_then(Value::as_str);
    let mut tags: Vec<(String, String)> = s
        .tags
        .into_iter()
        .filter(|(k, _)| start.is_none_or(|st| k.as_str() > st))
        .collect();
    tags.sort();
    let more = tags.len() > limit;
    tags.truncate(limit);
    let list: Vec<Value> = tags
        .into_iter()
        .map(|(k, v)| json!({"Key": k, "Value": v}))
        .collect();
    Ok(json!({ "Tags": list, "HasMoreTags": more }))
}

pub async fn set_encryption(
    f: &Firehose,
    ctx: &RequestContext,
    req: Value,
    on: bool,
) -> Result<Value, ServiceError> {
    let name = req
        .get("DeliveryStreamName")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let input = req
        .get("DeliveryStreamEncryptionConfigurationInput")
        .cloned()
        .unwrap_or(json!({}));
    let config = if on {
        Some(encryption_from_input(&input)?)
    } else {
        None
    };
    let account = ctx.account_id.clone();
    f.streams
        .update(&ctx.account_id, &ctx.region, &name, move |s| {
            if s.stream_type != "DirectPut" {
                return Err(invalid_argument(format!(
                    "Server-side encryption is not supported on Firehose {} under account {account}: its source is a Kinesis stream.",
                    s.name
                )));
            }
            s.encryption = match config {
                Some(c) => Some(c),
                None => s.encryption.as_ref().map(|e| {
                    let mut e = e.clone();
                    e["Status"] = json!("DISABLED");
                    e
                }),
            };
            Ok(())
        })
        .await?;
    Ok(json!({}))
}
