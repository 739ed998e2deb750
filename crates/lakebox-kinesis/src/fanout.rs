//! SubscribeToShard: enhanced fan-out delivery. For up to five minutes, records are pushed to
//! the consumer as `SubscribeToShardEvent` messages of an event stream as soon as they are
//! durable (the shard's log notifies on each commit), with an empty event as a heartbeat when
//! the shard is idle, and a final event listing ChildShards when a closed shard is exhausted.

use std::time::Duration;

use bytes::Bytes;
use lakebox_core::{RequestContext, ServiceError};
use lakebox_protocol::rpc::RpcEncoding;
use lakebox_protocol::{Blob, Timestamp, eventstream};
use lakebox_service::RpcResponse;
use tokio::sync::mpsc;

use crate::model::*;
use crate::records::{Position, child_shards, decode_payload, find_shard, position_offset, seq};
use crate::streams::Streams;
use crate::{errors, stream_name};

/// How long one subscription lasts, as in AWS.
const SUBSCRIPTION_MILLIS: u64 = 5 * 60 * 1000;
/// An idle shard still gets an (empty) event this often.
const HEARTBEAT: Duration = Duration::from_secs(5);
const MAX_EVENT_RECORDS: usize = 10_000;
const MAX_EVENT_BYTES: usize = 1024 * 1024;

pub async fn subscribe_to_shard(
    s: &std::sync::Arc<Streams>,
    ctx: &RequestContext,
    encoding: RpcEncoding,
    input: SubscribeToShardInput,
) -> Result<RpcResponse, ServiceError> {
    let arn = &input.consumer_arn;
    let (stream_arn, consumer) = arn
        .split_once("/consumer/")
        .ok_or_else(|| errors::invalid_argument(format!("Invalid ConsumerARN: {arn}")))?;
    let name = stream_name(ctx, &StreamRef::by_arn(stream_arn))?;
    let stream = s.require(&ctx.account_id, &ctx.region, &name)?;
    if !stream.consumers.iter().any(|c| c.arn == *arn) {
        return Err(ServiceError::client(
            "ResourceNotFoundException",
            format!(
                "Consumer {} under stream {name} not found.",
                consumer.split(':').next().unwrap_or(consumer)
            ),
        ));
    }
    let shard = find_shard(&stream, &input.shard_id, &ctx.account_id)?.clone();
    let log = s.log(&stream, &shard)?;
    let pos = &input.starting_position;
    let mut offset = position_offset(
        &log,
        &stream,
        &shard,
        &ctx.account_id,
        Position {
            kind: &pos.r#type,
            starting_sequence_number: pos.sequence_number.as_deref(),
            timestamp: pos.timestamp,
        },
        s.now_millis(),
    )?;

    let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(4);
    let streams = s.clone();
    let content_type = encoding.content_type();
    tokio::spawn(async move {
        let send = |msg: Vec<u8>| {
            let tx = tx.clone();
            async move { tx.send(Ok(Bytes::from(msg))).await.is_ok() }
        };
        let Ok(initial) = encoding.encode(&SubscribeToShardOutput {}) else {
            return;
        };
        if !send(eventstream::event("initial-response", content_type, &initial)).await {
            return;
        }
        let deadline = tokio::time::Instant::now() + Duration::from_millis(SUBSCRIPTION_MILLIS);
        let mut tip = log.watch();
        loop {
            let reader = log.clone();
            let from = offset;
            let read = match tokio::task::spawn_blocking(move || {
                reader.read(from, MAX_EVENT_RECORDS, MAX_EVENT_BYTES)
            })
            .await
            {
                Ok(Ok(r)) => r,
                _ => {
                    let _ = tx
                        .send(Err(std::io::Error::other("could not read the shard")))
                        .await;
                    return;
                }
            };
            // The shard map may have changed (a reshard closed this shard).
            let current = streams
                .get(&stream.account, &stream.region, &stream.name)
                .ok()
                .flatten();
            let Some(current) = current.filter(|st| st.uid == stream.uid) else {
                return;
            };
            let Some(shard_now) = current.shards.iter().find(|sh| sh.id == shard.id).cloned() else {
                return;
            };
            let now = streams.now_millis();
            let oldest = now - current.retention_hours * streams.settings.hour_millis;
            let mut records = Vec::with_capacity(read.len());
            for r in &read {
                offset = r.offset + 1;
                if r.timestamp_millis < oldest {
                    continue;
                }
                if let Some((partition_key, data)) = decode_payload(&r.payload) {
                    records.push(Record {
                        sequence_number: seq(&current, &shard_now, r.offset),
                        approximate_arrival_timestamp: Some(Timestamp::from_millis(r.timestamp_millis)),
                        data: Blob(data),
                        partition_key,
                        encryption_type: crate::records::payload_encryption(&r.payload),
                    });
                }
            }
            let at_end_of_closed = shard_now.closed.is_some_and(|c| offset >= c.end_offset);
            let behind = match read.last() {
                Some(last) if offset < log.next_offset() => (now - last.timestamp_millis).max(0),
                _ => 0,
            };
            let event = SubscribeToShardEvent {
                continuation_sequence_number: seq(&current, &shard_now, offset.saturating_sub(1)),
                millis_behind_latest: behind,
                child_shards: at_end_of_closed.then(|| child_shards(&current, &shard_now.id)),
                records,
            };
            let delivered_something = !event.records.is_empty() || at_end_of_closed;
            if delivered_something {
                let Ok(payload) = encoding.encode(&event) else {
                    return;
                };
                if !send(eventstream::event(
                    "SubscribeToShardEvent",
                    content_type,
                    &payload,
                ))
                .await
                {
                    return; // the consumer went away
                }
            }
            if at_end_of_closed {
                return;
            }
            if read.len() == MAX_EVENT_RECORDS {
                continue; // more is waiting
            }
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return,
                changed = tokio::time::timeout(HEARTBEAT, tip.changed()) => match changed {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return, // the log was closed (stream deleted)
                    Err(_) => {
                        // Idle for a heartbeat period: an empty event, as AWS sends.
                        let Ok(payload) = encoding.encode(&SubscribeToShardEvent {
                            records: Vec::new(),
                            continuation_sequence_number: seq(&current, &shard_now, offset.saturating_sub(1)),
                            millis_behind_latest: 0,
                            child_shards: None,
                        }) else { return };
                        if !send(eventstream::event("SubscribeToShardEvent", content_type, &payload)).await {
                            return;
                        }
                    }
                }
            }
        }
    });
    Ok(RpcResponse::streaming(
        encoding,
        eventstream::CONTENT_TYPE,
        lakebox_service::body::channel_body(rx, None),
    ))
}
