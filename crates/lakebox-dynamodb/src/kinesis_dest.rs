//! Kinesis Data Streams as a table's change destination (Enable / Describe / Disable /
//! UpdateKinesisStreamingDestination): every change of an item becomes a record in the
//! Lakebox Kinesis stream, in AWS's JSON (`eventName`, `dynamodb.Keys` / `NewImage` /
//! `OldImage`, `recordFormat`, `tableName`, …).
//!
//! The record is written to an outbox (`kdest/<table uid>`, keyed by sequence number) by the
//! same store job as the change, and a delivery task puts it into the stream and then removes
//! it: at least once, in commit order, across a crash.

use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

use lakebox_core::{RequestContext, ServiceError};
use lakebox_service::events::{Event, EventSink};
use lakebox_store::KeyRange;
use lakebox_store::kv::WriteBatch;
use serde::{Deserialize, Serialize};

use crate::DynamoDb;
use crate::api::*;
use crate::errors::validation;
use crate::tables::TableRecord;
use crate::value::{Item, item_size};

/// One destination of a table, as stored in its record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destination {
    pub stream_arn: String,
    /// "ACTIVE" or "DISABLED".
    pub status: String,
    /// "MILLISECOND" or "MICROSECOND".
    pub precision: String,
}

fn outbox(uid: &str) -> String {
    format!("kdest/{uid}")
}

/// Queues a change for the table's active destinations (inside the change's store job).
pub fn record(
    batch: &mut WriteBatch<'_>,
    table: &TableRecord,
    seq: u64,
    now_millis: i64,
    key: &Item,
    old: Option<&Item>,
    new: Option<&Item>,
) -> lakebox_store::Result<()> {
    let active: Vec<&Destination> = table
        .kinesis_destinations
        .iter()
        .filter(|d| d.status == "ACTIVE")
        .collect();
    if active.is_empty() {
        return Ok(());
    }
    let event = match (old, new) {
        (None, Some(_)) => "INSERT",
        (Some(_), Some(_)) => "MODIFY",
        _ => "REMOVE",
    };
    for d in active {
        let micros = d.precision == "MICROSECOND";
        let mut dynamodb = serde_json::json!({
            "ApproximateCreationDateTime": if micros { now_millis * 1000 } else { now_millis },
            "ApproximateCreationDateTimePrecision": d.precision,
            "Keys": key,
            "SizeBytes": item_size(key) + new.map_or(0, item_size) + old.map_or(0, item_size),
        });
        if let Some(n) = new {
            dynamodb["NewImage"] = serde_json::to_value(n).unwrap_or_default();
        }
        if let Some(o) = old {
            dynamodb["OldImage"] = serde_json::to_value(o).unwrap_or_default();
        }
        let body = serde_json::json!({
            "awsRegion": table.region,
            "eventID": uuid::Uuid::new_v4().to_string(),
            "eventName": event,
            "userIdentity": null,
            "recordFormat": "application/json",
            "tableName": table.name,
            "dynamodb": dynamodb,
            "eventSource": "aws:dynamodb",
        });
        let entry =
            serde_json::json!({"stream": d.stream_arn, "record": body.to_string(), "pk": partition_key(key)});
        let mut k = seq.to_be_bytes().to_vec();
        k.extend_from_slice(d.stream_arn.as_bytes());
        batch.put(&outbox(&table.uid), &k, entry.to_string().as_bytes())?;
    }
    Ok(())
}

/// The Kinesis partition key: the item's key, so one item's changes stay in order in one shard.
fn partition_key(key: &Item) -> String {
    let text = serde_json::to_string(key).unwrap_or_default();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016X}")
}

impl DynamoDb {
    pub(crate) async fn change_destination(
        &self,
        ctx: &RequestContext,
        input: KinesisStreamingDestinationInput,
        enable: bool,
    ) -> Result<KinesisStreamingDestinationOutput, ServiceError> {
        let stream_arn = input.stream_arn.clone();
        let precision = input
            .enable_kinesis_streaming_configuration
            .as_ref()
            .and_then(|c| c.approximate_creation_date_time_precision.as_ref())
            .map_or("MILLISECOND".to_owned(), |p| p.as_str().to_owned());
        if enable && !self.kinesis_stream_exists(&stream_arn) {
            return Err(validation(format!("Kinesis stream does not exist: {stream_arn}")));
        }
        let table = self
            .modify_table(ctx, &input.table_name, |t| {
                let existing = t
                    .kinesis_destinations
                    .iter_mut()
                    .find(|d| d.stream_arn == stream_arn);
                match (existing, enable) {
                    (Some(d), true) if d.status == "ACTIVE" => Err(validation(format!(
                        "Table {} already has an enabled Kinesis streaming destination for {stream_arn}",
                        t.name
                    ))),
                    (Some(d), true) => {
                        d.status = "ACTIVE".into();
                        d.precision = precision.clone();
                        Ok(())
                    }
                    (None, true) => {
                        if t.kinesis_destinations
                            .iter()
                            .filter(|d| d.status == "ACTIVE")
                            .count()
                            >= 2
                        {
                            return Err(ServiceError::client(
                                "LimitExceededException",
                                "A table may stream to at most 2 Kinesis data streams",
                            ));
                        }
                        t.kinesis_destinations.push(Destination {
                            stream_arn: stream_arn.clone(),
                            status: "ACTIVE".into(),
                            precision: precision.clone(),
                        });
                        Ok(())
                    }
                    (Some(d), false) if d.status == "ACTIVE" => {
                        d.status = "DISABLED".into();
                        Ok(())
                    }
                    _ => Err(validation(format!(
                        "Table {} has no enabled Kinesis streaming destination for {stream_arn}",
                        t.name
                    ))),
                }
            })
            .await?;
        self.destinations_changed.notify_one();
        Ok(KinesisStreamingDestinationOutput {
            table_name: Some(table.name.clone()),
            stream_arn: Some(input.stream_arn),
            destination_status: Some(if enable {
                DestinationStatus::Enabling
            } else {
                DestinationStatus::Disabling
            }),
            enable_kinesis_streaming_configuration: input.enable_kinesis_streaming_configuration,
        })
    }

    pub(crate) fn describe_destinations(
        &self,
        ctx: &RequestContext,
        table: &str,
    ) -> Result<DescribeKinesisStreamingDestinationOutput, ServiceError> {
        let t = self.table_for_admin(ctx, table)?;
        Ok(DescribeKinesisStreamingDestinationOutput {
            table_name: Some(t.name.clone()),
            kinesis_data_stream_destinations: Some(
                t.kinesis_destinations
                    .iter()
                    .map(|d| KinesisDataStreamDestination {
                        stream_arn: Some(d.stream_arn.clone()),
                        destination_status: Some(DestinationStatus::from(d.status.as_str())),
                        destination_status_description: None,
                        approximate_creation_date_time_precision: Some(
                            ApproximateCreationDateTimePrecision::from(d.precision.as_str()),
                        ),
                    })
                    .collect(),
            ),
        })
    }

    pub(crate) async fn update_destination(
        &self,
        ctx: &RequestContext,
        input: UpdateKinesisStreamingDestinationInput,
    ) -> Result<UpdateKinesisStreamingDestinationOutput, ServiceError> {
        let precision = input
            .update_kinesis_streaming_configuration
            .as_ref()
            .and_then(|c| c.approximate_creation_date_time_precision.as_ref())
            .map(|p| p.as_str().to_owned());
        let stream_arn = input.stream_arn.clone();
        let table = self
            .modify_table(ctx, &input.table_name, |t| {
                let d = t
                    .kinesis_destinations
                    .iter_mut()
                    .find(|d| d.stream_arn == stream_arn && d.status == "ACTIVE")
                    .ok_or_else(|| {
                        validation(format!(
                            "Table {} has no enabled Kinesis streaming destination for {stream_arn}",
                            t.name
                        ))
                    })?;
                if let Some(p) = &precision {
                    d.precision = p.clone();
                }
                Ok(())
            })
            .await?;
        Ok(UpdateKinesisStreamingDestinationOutput {
            table_name: Some(table.name.clone()),
            stream_arn: Some(input.stream_arn),
            destination_status: Some(DestinationStatus::Updating),
            update_kinesis_streaming_configuration: input.update_kinesis_streaming_configuration,
        })
    }

    fn kinesis_stream_exists(&self, arn: &str) -> bool {
        let Some(log) = self.kinesis.get() else {
            return false;
        };
        let Some(parsed) = lakebox_core::Arn::parse(arn) else {
            return false;
        };
        let Some(name) = parsed.resource.strip_prefix("stream/") else {
            return false;
        };
        let key = lakebox_service::links::StreamKey {
            account: &parsed.account_id,
            region: &parsed.region,
            name,
        };
        matches!(log.shards(key), Ok(Some(_)))
    }

    /// Delivers queued change records to their streams, table by table in commit order,
    /// removing each once the stream holds it; a failed delivery is retried on the next pass.
    pub fn start_destination_delivery(
        self: &Arc<Self>,
        sink: Arc<dyn EventSink>,
    ) -> tokio::task::JoinHandle<()> {
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let Some(db) = me.upgrade() else { return };
                let delivered = db.deliver_outboxes(&*sink).await;
                // Idle: wait for a destination to change, or a while (new records are not
                // announced); the service is held at most that long.
                if !delivered {
                    let _ =
                        tokio::time::timeout(Duration::from_millis(200), db.destinations_changed.notified())
                            .await;
                }
            }
        })
    }

    /// One pass: whether anything was delivered.
    async fn deliver_outboxes(&self, sink: &dyn EventSink) -> bool {
        let uids: Vec<String> = self
            .tables
            .read()
            .unwrap()
            .values()
            .filter(|t| !t.kinesis_destinations.is_empty())
            .map(|t| t.uid.clone())
            .collect();
        let mut any = false;
        for uid in uids {
            let table = outbox(&uid);
            let mut entries = Vec::new();
            let read = self.meta.read(|view| {
                view.range(
                    &table,
                    KeyRange {
                        start: Bound::Unbounded,
                        end: Bound::Unbounded,
                        reverse: false,
                    },
                    |k, v| {
                        entries.push((k.to_vec(), v.to_vec()));
                        Ok(entries.len() < 500)
                    },
                )
            });
            if read.is_err() {
                continue;
            }
            // Delivered (or unreadable) entries go in one store write after the pass, not one
            // fsync each; a crash before it only delivers them again (at least once).
            let mut done = Vec::new();
            for (k, v) in entries {
                let Ok(entry) = serde_json::from_slice::<serde_json::Value>(&v) else {
                    done.push(k);
                    continue;
                };
                let stream = entry["stream"].as_str().unwrap_or_default().to_owned();
                let event = Event {
                    data: Some(entry["record"].as_str().unwrap_or_default().as_bytes().to_vec()),
                    partition_key: entry["pk"].as_str().map(str::to_owned),
                    sender: "dynamodb.amazonaws.com",
                    ..Event::default()
                };
                if let Err(e) = sink.deliver(stream, event).await {
                    // Later records of this table wait, so order is kept.
                    tracing::warn!(error = ?e, "DynamoDB could not deliver a change to its Kinesis destination");
                    break;
                }
                done.push(k);
            }
            if done.is_empty() {
                continue;
            }
            let t = table.clone();
            let deleted = self
                .meta
                .write_async(move |b| done.iter().try_for_each(|k| b.delete(&t, k).map(drop)))
                .await;
            any |= deleted.is_ok();
        }
        any
    }
}
