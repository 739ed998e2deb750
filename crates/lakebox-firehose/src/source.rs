//! A Kinesis data stream as the source of a delivery stream: every shard is read from where
//! the delivery stream started (LATEST at creation, as Firehose does; shards created later by
//! resharding from their start, after their parents), KPL aggregates are split into user
//! records, and records are appended to the delivery stream's own durable log with their
//! Kinesis arrival time. Shard positions are saved after each append (at-least-once).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use lakebox_core::{Arn, ServiceError};
use lakebox_service::links::{ShardedLog, StreamKey};
use lakebox_store::LogEntry;

use crate::errors::invalid_argument;
use crate::process::deaggregate_kpl;
use crate::streams::Streams;

/// Records copied per shard per step.
const BATCH: usize = 1000;
const POLL: Duration = Duration::from_millis(50);

/// The stream a `KinesisStreamARN` names, in the delivery stream's account and region.
pub fn stream_name(arn: &str, account: &str, region: &str) -> Result<String, ServiceError> {
    let bad = || {
        invalid_argument(format!(
            "KinesisStreamARN {arn} is not a valid Kinesis stream ARN."
        ))
    };
    let parsed = Arn::parse(arn)
        .filter(|a| a.service == "kinesis")
        .ok_or_else(bad)?;
    let name = parsed.resource.strip_prefix("stream/").ok_or_else(bad)?;
    if parsed.account_id != account || parsed.region != region {
        return Err(invalid_argument(format!(
            "Kinesis stream {arn} is not in this account and region; Lakebox reads streams of the delivery stream's own account and region."
        )));
    }
    Ok(name.to_owned())
}

/// Where reading starts for a new delivery stream: the end of every open shard. `None` when
/// the Kinesis stream does not exist.
pub fn latest_positions(
    k: &dyn ShardedLog,
    account: &str,
    region: &str,
    stream: &str,
) -> Result<Option<BTreeMap<String, u64>>, ServiceError> {
    let key = StreamKey {
        account,
        region,
        name: stream,
    };
    let Some(shards) = k.shards(key)? else {
        return Ok(None);
    };
    let mut out = BTreeMap::new();
    for shard in shards.iter().filter(|s| s.is_open()) {
        out.insert(shard.shard_id.clone(), shard.reader.next_offset()?);
    }
    Ok(Some(out))
}

pub async fn run(
    streams: Arc<Streams>,
    kinesis: Arc<dyn ShardedLog>,
    account: String,
    region: String,
    name: String,
    uid: String,
) {
    let Ok(log) = streams.log(&uid) else { return };
    let mut positions = streams.positions(&uid).unwrap_or_default();
    loop {
        let ds = match streams.get(&account, &region, &name) {
            Ok(Some(s)) if s.uid == uid && s.deleting_until_millis.is_none() => s,
            Ok(_) => return,
            Err(_) => {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let Some(src) = &ds.kinesis_source else { return };
        let Ok(source_name) = stream_name(&src.stream_arn, &account, &region) else {
            return;
        };
        let key = StreamKey {
            account: &account,
            region: &region,
            name: &source_name,
        };
        let shards = match kinesis.shards(key) {
            Ok(Some(s)) => s,
            _ => {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let mut moved = false;
        for shard in &shards {
            let pos = match positions.get(&shard.shard_id) {
                Some(p) => *p,
                None => {
                    // A shard born after the delivery stream started: read it from its start
                    // once its parents are read to their ends.
                    if !shard.parents_read(&shards, |p| positions.get(p).copied()) {
                        continue;
                    }
                    0
                }
            };
            let reader = shard.reader.clone();
            let read_shard = move || reader.read(pos, BATCH, 4 * 1024 * 1024);
            let Ok(Ok(read)) = tokio::task::spawn_blocking(read_shard).await else {
                continue;
            };
            let Some(last) = read.last().map(|r| r.offset) else {
                positions.entry(shard.shard_id.clone()).or_insert(pos);
                continue;
            };
            let mut entries = Vec::new();
            for r in &read {
                for user_record in deaggregate_kpl(&r.data) {
                    entries.push(LogEntry {
                        timestamp_millis: r.arrival_millis,
                        payload: user_record,
                    });
                }
            }
            if !entries.is_empty() && log.append(entries).await.is_err() {
                tracing::error!(stream = %name, "cannot append Kinesis records to the delivery stream's log");
                break;
            }
            positions.insert(shard.shard_id.clone(), last + 1);
            moved = true;
        }
        if moved {
            if let Err(e) = streams.set_positions(&uid, &positions).await {
                tracing::error!(stream = %name, error = %e.message, "cannot save Kinesis source positions");
            }
        } else {
            tokio::time::sleep(POLL).await;
        }
    }
}
