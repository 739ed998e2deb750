//! A Kinesis data stream as the source of a delivery stream: every shard is read from where
//! the delivery stream started (LATEST at creation, as Firehose does; shards created later by
//! resharding from their start, after their parents), KPL aggregates are split into user
//! records, and records are appended to the delivery stream's own durable log with their
//! Kinesis arrival time and where each came from (shard, partition key, sequence and
//! subsequence numbers: the `kinesisRecordMetadata` a Lambda processor is given), framed
//! before the record's data. Shard positions are saved after each append (at-least-once).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use lakebox_core::{Arn, ServiceError};
use lakebox_service::links::{ShardedLog, StreamKey};
use lakebox_store::LogEntry;

use crate::errors::invalid_argument;
use crate::process::deaggregate_kpl;
use crate::streams::Streams;

/// Where a record of a Kinesis-source delivery stream came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KinesisOrigin {
    pub shard_id: String,
    pub partition_key: String,
    pub sequence_number: String,
    /// The user record's place in a KPL aggregate (0 for a record that is not one).
    pub subsequence_number: u64,
}

/// Marks a framed entry of a Kinesis-source delivery stream's log.
const FRAME: &[u8; 4] = b"LBK\x01";

/// A log entry: the record's origin, then its data.
fn frame(origin: &KinesisOrigin, data: &[u8]) -> Vec<u8> {
    let fields = [&origin.shard_id, &origin.partition_key, &origin.sequence_number];
    let mut out =
        Vec::with_capacity(FRAME.len() + 14 + fields.iter().map(|f| f.len()).sum::<usize>() + data.len());
    out.extend_from_slice(FRAME);
    for f in fields {
        // Shard ids, partition keys (≤ 256) and sequence numbers are short.
        out.extend_from_slice(&(f.len().min(u16::MAX as usize) as u16).to_be_bytes());
        out.extend_from_slice(&f.as_bytes()[..f.len().min(u16::MAX as usize)]);
    }
    out.extend_from_slice(&origin.subsequence_number.to_be_bytes());
    out.extend_from_slice(data);
    out
}

/// A log entry's origin and data; an entry without a frame (written before records carried
/// their origin) is all data.
pub fn unframe(entry: &[u8]) -> (Option<KinesisOrigin>, &[u8]) {
    fn field(rest: &mut &[u8]) -> Option<String> {
        let len = u16::from_be_bytes(rest.get(..2)?.try_into().ok()?) as usize;
        let text = std::str::from_utf8(rest.get(2..2 + len)?).ok()?.to_owned();
        *rest = &rest[2 + len..];
        Some(text)
    }
    let parse = || {
        let mut rest = entry.strip_prefix(FRAME.as_slice())?;
        let shard_id = field(&mut rest)?;
        let partition_key = field(&mut rest)?;
        let sequence_number = field(&mut rest)?;
        let subsequence_number = u64::from_be_bytes(rest.get(..8)?.try_into().ok()?);
        let origin = KinesisOrigin {
            shard_id,
            partition_key,
            sequence_number,
            subsequence_number,
        };
        Some((Some(origin), &rest[8..]))
    };
    parse().unwrap_or((None, entry))
}

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

/// Where reading starts for a new delivery stream: the end of every shard — open ones
/// (LATEST), and closed ones too, so a stream resharded before the delivery stream existed
/// does not have its old records delivered. `None` when the Kinesis stream does not exist.
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
    for shard in &shards {
        let end = match shard.closed_at {
            Some(end) => end,
            None => shard.reader.next_offset()?,
        };
        out.insert(shard.shard_id.clone(), end);
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
                let sequence_number = shard.reader.sequence_number(r.offset);
                for (i, user_record) in deaggregate_kpl(&r.data).into_iter().enumerate() {
                    let origin = KinesisOrigin {
                        shard_id: shard.shard_id.clone(),
                        partition_key: r.partition_key.clone(),
                        sequence_number: sequence_number.clone(),
                        subsequence_number: i as u64,
                    };
                    entries.push(LogEntry {
                        timestamp_millis: r.arrival_millis,
                        payload: frame(&origin, &user_record),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framed_entries_give_back_their_origin_and_data() {
        let origin = KinesisOrigin {
            shard_id: "shardId-000000000001".into(),
            partition_key: "käse".into(),
            sequence_number: "49546986683135544286507457936321625675700192471156785154".into(),
            subsequence_number: 3,
        };
        let entry = frame(&origin, b"{\"a\":1}");
        assert_eq!(unframe(&entry), (Some(origin), b"{\"a\":1}".as_slice()));
        // Data written before frames existed, and a truncated frame, are data.
        assert_eq!(unframe(b"plain"), (None, b"plain".as_slice()));
        assert_eq!(unframe(&entry[..10]), (None, &entry[..10]));
    }
}
