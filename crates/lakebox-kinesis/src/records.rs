//! PutRecord, PutRecords, GetShardIterator and GetRecords.

use lakebox_core::{RequestContext, ServiceError};
use lakebox_protocol::{Blob, Timestamp};
use lakebox_store::LogEntry;

use crate::errors::{self, internal};
use crate::hashing::{parse_hash_key, partition_hash};
use crate::iterator::{ITERATOR_TTL_MILLIS, ShardIterator};
use crate::model::*;
use crate::sequence::SequenceNumber;
use crate::stream_name;
use crate::streams::{ShardRecord, StreamRecord, Streams};

/// A record's data plus partition key may not exceed 1 MiB.
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;
pub const MAX_PUT_RECORDS_BYTES: usize = 5 * 1024 * 1024;
pub const MAX_GET_RECORDS_BYTES: usize = 10 * 1024 * 1024;

/// The top bit of a stored record's key length: the record was written while the stream was
/// encrypted (a partition key is at most 1,024 bytes, so the bit is otherwise always clear and
/// records stored before it existed read as unencrypted).
const ENCRYPTED: u16 = 0x8000;

/// The stored form of a record: partition key length (and the [`ENCRYPTED`] flag), partition
/// key, data.
fn encode_payload(partition_key: &str, data: &[u8], encrypted: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + partition_key.len() + data.len());
    let flag = if encrypted { ENCRYPTED } else { 0 };
    out.extend_from_slice(&(partition_key.len() as u16 | flag).to_le_bytes());
    out.extend_from_slice(partition_key.as_bytes());
    out.extend_from_slice(data);
    out
}

/// A stored record: its partition key and data.
pub fn decode_payload(payload: &[u8]) -> Option<(String, Vec<u8>)> {
    let n = (u16::from_le_bytes(payload.get(..2)?.try_into().ok()?) & !ENCRYPTED) as usize;
    let pk = std::str::from_utf8(payload.get(2..2 + n)?).ok()?.to_owned();
    Some((pk, payload[2 + n..].to_vec()))
}

/// The EncryptionType a stored record reads back with: KMS if it was written while the stream
/// was encrypted, as Kinesis reports it per record.
pub(crate) fn payload_encryption(payload: &[u8]) -> Option<EncryptionType> {
    let flags = u16::from_le_bytes(payload.get(..2)?.try_into().ok()?);
    (flags & ENCRYPTED != 0).then_some(EncryptionType::Kms)
}

/// Whether records written to `stream` now are encrypted.
fn encrypting(stream: &StreamRecord) -> bool {
    crate::admin::encryption_type(stream) == EncryptionType::Kms
}

/// Whether `ordering` is a SequenceNumberForOrdering Kinesis accepts: one of Lakebox's own, or
/// a number in one of the layouts of Kinesis's sequence numbers (the small numbers of the
/// first version, or versions 1 and 2 whose last hex digit names them; a version-2 number may
/// not carry a time in the future).
fn ordering_accepted(ordering: &str, now_millis: i64) -> bool {
    if SequenceNumber::parse(ordering).is_some() {
        return true;
    }
    let Some(hex) = decimal_to_hex(ordering) else {
        return false;
    };
    // Below 2^129 (33 hex digits): the first layout, any value.
    if hex.len() < 33 || (hex.len() == 33 && hex.as_bytes()[0] == b'1') {
        return true;
    }
    // Between 2^185 and 1.5 · 2^185 (47 hex digits starting 2): versions 1 and 2.
    if hex.len() != 47 || hex.as_bytes()[0] != b'2' || hex[1..].bytes().all(|b| b == b'0') {
        return false;
    }
    match hex.as_bytes()[46] {
        b'1' => true,
        b'2' => {
            let high = |at: usize| u8::from_str_radix(&hex[at..at + 1], 16).is_ok_and(|d| d > 7);
            let time = i64::from_str_radix(&hex[29..38], 16).unwrap_or(i64::MAX);
            !high(11) && !high(38) && time.saturating_mul(1000) <= now_millis
        }
        _ => false,
    }
}

/// A decimal number's hexadecimal digits (lowercase, no leading zeros), or `None` if `text` is
/// not a number.
fn decimal_to_hex(text: &str) -> Option<String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut digits: Vec<u32> = text.bytes().map(|b| u32::from(b - b'0')).collect();
    let mut hex = Vec::new();
    while digits.iter().any(|d| *d != 0) {
        let mut rest = 0;
        for d in digits.iter_mut() {
            let v = rest * 10 + *d;
            *d = v / 16;
            rest = v % 16;
        }
        hex.push(char::from_digit(rest, 16)?);
    }
    if hex.is_empty() {
        hex.push('0');
    }
    Some(hex.iter().rev().collect())
}

/// A stream records can be written to and read from: ACTIVE or UPDATING, not CREATING.
fn active_stream(s: &Streams, ctx: &RequestContext, name: &str) -> Result<StreamRecord, ServiceError> {
    let stream = s.require(&ctx.account_id, &ctx.region, name)?;
    if matches!(stream.status(s.now_millis()), "CREATING" | "DELETING") {
        return Err(errors::stream_not_found(name, &ctx.account_id));
    }
    Ok(stream)
}

/// Validates one record and picks its shard.
fn route<'a>(
    stream: &'a StreamRecord,
    partition_key: &str,
    data: &Blob,
    explicit: Option<&str>,
) -> Result<&'a ShardRecord, ServiceError> {
    let chars = partition_key.chars().count();
    if chars == 0 || chars > 256 {
        return Err(errors::validation(
            "partitionKey",
            "Member must have length between 1 and 256",
            partition_key,
        ));
    }
    if data.0.len() + partition_key.len() > MAX_RECORD_BYTES {
        return Err(errors::validation(
            "data",
            "Member must have length less than or equal to 1048576",
            format!("{} bytes", data.0.len()),
        ));
    }
    let hash = match explicit {
        Some(h) => parse_hash_key(h).ok_or_else(|| {
            errors::invalid_argument(format!(
                "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was {h}"
            ))
        })?,
        None => partition_hash(partition_key),
    };
    stream
        .open_shards()
        .find(|sh| sh.contains(hash))
        .ok_or_else(|| ServiceError::internal("no shard covers the hash key"))
}

pub(crate) fn seq(stream: &StreamRecord, shard: &ShardRecord, offset: u64) -> String {
    SequenceNumber {
        stream_epoch: stream.epoch_secs(),
        shard_index: shard.index,
        offset,
    }
    .format()
}

pub async fn put_record(
    s: &Streams,
    ctx: &RequestContext,
    input: PutRecordInput,
) -> Result<PutRecordOutput, ServiceError> {
    let name = stream_name(ctx, &StreamRef::new(&input.stream_name, &input.stream_arn))?;
    let lock = s.reshard_lock(&active_stream(s, ctx, &name)?.uid);
    let _guard = lock.read().await;
    // Read the shard map under the lock: a reshard cannot close a shard until we appended.
    let stream = active_stream(s, ctx, &name)?;
    let shard = route(
        &stream,
        &input.partition_key,
        &input.data,
        input.explicit_hash_key.as_deref(),
    )?;
    if let Some(o) = &input.sequence_number_for_ordering
        && !ordering_accepted(o, s.now_millis())
    {
        return Err(errors::invalid_argument(format!(
            "ExclusiveMinimumSequenceNumber {o} used in PutRecord on stream {name} under account {} is invalid.",
            ctx.account_id
        )));
    }
    if s.settings.throughput_limits
        && !s.throughput.admit_put(
            &stream.uid,
            shard.index,
            (input.data.0.len() + input.partition_key.len()) as u64,
            s.now_millis(),
        )
    {
        return Err(errors::throughput_exceeded(&shard.id, &name, &ctx.account_id));
    }
    // Offsets only grow, so every new record already orders after SequenceNumberForOrdering.
    let log = s.log(&stream, shard)?;
    let entry = LogEntry {
        timestamp_millis: s.now_millis(),
        payload: encode_payload(&input.partition_key, &input.data.0, encrypting(&stream)),
    };
    let range = log.append(vec![entry]).await.map_err(internal)?;
    Ok(PutRecordOutput {
        shard_id: shard.id.clone(),
        sequence_number: seq(&stream, shard, range.start),
        encryption_type: Some(crate::admin::encryption_type(&stream)),
    })
}

pub async fn put_records(
    s: &Streams,
    ctx: &RequestContext,
    input: PutRecordsInput,
) -> Result<PutRecordsOutput, ServiceError> {
    let name = stream_name(ctx, &StreamRef::new(&input.stream_name, &input.stream_arn))?;
    // The model bounds the count to 1..=500.
    let n = input.records.len();
    let total: usize = input
        .records
        .iter()
        .map(|r| r.data.0.len() + r.partition_key.len())
        .sum();
    if total > MAX_PUT_RECORDS_BYTES {
        return Err(errors::invalid_argument(format!(
            "Records size exceeds 5 MB limit: {total} bytes."
        )));
    }
    let lock = s.reshard_lock(&active_stream(s, ctx, &name)?.uid);
    let _guard = lock.read().await;
    let stream = active_stream(s, ctx, &name)?;
    let now = s.now_millis();
    let encrypted = encrypting(&stream);
    // Group by shard, keeping each record's position, then append each group as one batch.
    let mut groups: Vec<(usize, Vec<usize>, Vec<LogEntry>)> = Vec::new();
    // Validation failures refuse the whole request; throttling fails single records.
    let routed: Vec<&ShardRecord> = input
        .records
        .iter()
        .map(|r| route(&stream, &r.partition_key, &r.data, r.explicit_hash_key.as_deref()))
        .collect::<Result<_, _>>()?;
    let mut throttled = Vec::new();
    for (i, r) in input.records.iter().enumerate() {
        let shard = routed[i];
        if s.settings.throughput_limits
            && !s.throughput.admit_put(
                &stream.uid,
                shard.index,
                (r.data.0.len() + r.partition_key.len()) as u64,
                now,
            )
        {
            throttled.push((i, shard.id.clone()));
            continue;
        }
        let pos = match groups.iter().position(|(idx, _, _)| *idx == shard.index as usize) {
            Some(p) => p,
            None => {
                groups.push((shard.index as usize, Vec::new(), Vec::new()));
                groups.len() - 1
            }
        };
        groups[pos].1.push(i);
        groups[pos].2.push(LogEntry {
            timestamp_millis: now,
            payload: encode_payload(&r.partition_key, &r.data.0, encrypted),
        });
    }
    let mut tasks = Vec::with_capacity(groups.len());
    for (shard_index, positions, entries) in groups {
        let shard = stream
            .shards
            .iter()
            .find(|sh| sh.index as usize == shard_index)
            .expect("routed shard exists");
        let log = s.log(&stream, shard)?;
        // Shards append concurrently: each batch waits for its own group commit.
        tasks.push((
            shard.clone(),
            positions,
            tokio::spawn(async move { log.append(entries).await }),
        ));
    }
    let mut results: Vec<PutRecordsResultEntry> = (0..n).map(|_| PutRecordsResultEntry::default()).collect();
    let mut failed = 0;
    for (pos, shard) in throttled {
        failed += 1;
        results[pos].error_code = Some("ProvisionedThroughputExceededException".into());
        results[pos].error_message = Some(format!(
            "Rate exceeded for shard {shard} in stream {name} under account {}.",
            ctx.account_id
        ));
    }
    for (shard, positions, task) in tasks {
        match task.await {
            Ok(Ok(range)) => {
                for (k, pos) in positions.into_iter().enumerate() {
                    results[pos].shard_id = Some(shard.id.clone());
                    results[pos].sequence_number = Some(seq(&stream, &shard, range.start + k as u64));
                }
            }
            other => {
                tracing::error!(shard = %shard.id, result = ?other.map(|r| r.map(|_| ())), "PutRecords batch failed");
                for pos in positions {
                    failed += 1;
                    results[pos].error_code = Some("InternalFailure".into());
                    results[pos].error_message = Some("Internal service failure.".into());
                }
            }
        }
    }
    Ok(PutRecordsOutput {
        failed_record_count: Some(failed),
        records: results,
        encryption_type: Some(crate::admin::encryption_type(&stream)),
    })
}

pub(crate) fn find_shard<'a>(
    stream: &'a StreamRecord,
    shard_id: &str,
    account: &str,
) -> Result<&'a ShardRecord, ServiceError> {
    let canonical = crate::admin::canonical_shard_id(shard_id).ok_or_else(|| {
        ServiceError::client(
            "ResourceNotFoundException",
            format!(
                "Could not find shard {shard_id} in stream {} under account {account}.",
                stream.name
            ),
        )
    })?;
    stream
        .shards
        .iter()
        .find(|sh| sh.id == canonical)
        .ok_or_else(|| errors::shard_not_found(&canonical, &stream.name, account))
}

pub fn get_shard_iterator(
    s: &Streams,
    ctx: &RequestContext,
    input: GetShardIteratorInput,
) -> Result<GetShardIteratorOutput, ServiceError> {
    let name = stream_name(ctx, &StreamRef::new(&input.stream_name, &input.stream_arn))?;
    let stream = active_stream(s, ctx, &name)?;
    let shard = find_shard(&stream, &input.shard_id, &ctx.account_id)?;
    let log = s.log(&stream, shard)?;
    let offset = position_offset(
        &log,
        &stream,
        shard,
        &ctx.account_id,
        Position {
            kind: &input.shard_iterator_type,
            starting_sequence_number: input.starting_sequence_number.as_deref(),
            timestamp: input.timestamp,
        },
        s.now_millis(),
    )?;
    let it = ShardIterator {
        stream_name: stream.name.clone(),
        stream_uid: stream.uid.clone(),
        shard_id: shard.id.clone(),
        offset,
        issued_millis: s.now_millis(),
    };
    Ok(GetShardIteratorOutput {
        shard_iterator: Some(it.encode()),
    })
}

/// The shards a closed shard's readers continue with.
pub(crate) fn child_shards(stream: &StreamRecord, shard_id: &str) -> Vec<ChildShard> {
    stream
        .children_of(shard_id)
        .map(|c| ChildShard {
            shard_id: c.id.clone(),
            parent_shards: c.parent.iter().chain(c.adjacent_parent.iter()).cloned().collect(),
            hash_key_range: HashKeyRange {
                starting_hash_key: c.start_hash.clone(),
                ending_hash_key: c.end_hash.clone(),
            },
        })
        .collect()
}

/// A starting position as GetShardIterator and SubscribeToShard name it.
pub(crate) struct Position<'a> {
    pub kind: &'a ShardIteratorType,
    pub starting_sequence_number: Option<&'a str>,
    pub timestamp: Option<Timestamp>,
}

/// Where a shard iterator or subscription starts, as a log offset.
pub(crate) fn position_offset(
    log: &lakebox_store::Log,
    stream: &StreamRecord,
    shard: &ShardRecord,
    account: &str,
    position: Position<'_>,
    now_millis: i64,
) -> Result<u64, ServiceError> {
    let Position {
        kind,
        starting_sequence_number,
        timestamp,
    } = position;
    let name = &stream.name;
    // Kinesis's words for a type and a sequence number that do not go together.
    let mismatch = |also: &str| {
        errors::invalid_argument(format!(
            "Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and StartingSequenceNumber or (2) TRIM_HORIZON or LATEST and no StartingSequenceNumber. Request specified {} and {also} StartingSequenceNumber.",
            kind.as_str()
        ))
    };
    if starting_sequence_number.is_some()
        && matches!(kind, ShardIteratorType::TrimHorizon | ShardIteratorType::Latest)
    {
        return Err(mismatch("also a"));
    }
    let seq_offset = |after: bool| -> Result<u64, ServiceError> {
        let raw = starting_sequence_number.ok_or_else(|| mismatch("no"))?;
        let invalid = || {
            errors::invalid_argument(format!(
                "StartingSequenceNumber {raw} used in GetShardIterator on shard {} in stream {name} under account {account} is invalid.",
                shard.id
            ))
        };
        let parsed = SequenceNumber::parse(raw).ok_or_else(invalid)?;
        if parsed.shard_index != shard.index || parsed.stream_epoch != stream.epoch_secs() % 10_000_000_000 {
            return Err(errors::invalid_argument(format!(
                "Invalid StartingSequenceNumber. It encodes shardId-{:012}, while it was used in a call to a shard with {}",
                parsed.shard_index, shard.id
            )));
        }
        Ok(parsed.offset + u64::from(after))
    };
    Ok(match kind {
        ShardIteratorType::TrimHorizon => log.first_offset(),
        ShardIteratorType::Latest => log.next_offset(),
        ShardIteratorType::AtSequenceNumber => seq_offset(false)?,
        ShardIteratorType::AfterSequenceNumber => seq_offset(true)?,
        ShardIteratorType::AtTimestamp => {
            let at = timestamp.ok_or_else(|| {
                errors::invalid_argument(
                    "Must specify timestampInMillis parameter for iterator of type AT_TIMESTAMP. Current request has no timestamp parameter.",
                )
            })?;
            if at.as_millis() > now_millis {
                return Err(errors::invalid_argument(format!(
                    "The timestampInMillis parameter cannot be greater than the currentTimestampInMillis. timestampInMillis: {}, currentTimestampInMillis: {now_millis}",
                    at.as_millis()
                )));
            }
            first_offset_at(log, at.as_millis())?
        }
        // The model's enum constraint refuses other types before an operation runs.
        ShardIteratorType::Unknown(other) => {
            return Err(errors::invalid_argument(format!(
                "Invalid ShardIteratorType {other}."
            )));
        }
    })
}

/// The first record at or after `at_millis` (the end of the shard if none).
fn first_offset_at(log: &lakebox_store::Log, at_millis: i64) -> Result<u64, ServiceError> {
    let mut from = log.first_offset();
    loop {
        let batch = log.read(from, 1000, 64 * 1024 * 1024).map_err(internal)?;
        let Some(last) = batch.last() else {
            return Ok(log.next_offset());
        };
        if let Some(r) = batch.iter().find(|r| r.timestamp_millis >= at_millis) {
            return Ok(r.offset);
        }
        from = last.offset + 1;
    }
}

pub async fn get_records(
    s: &Streams,
    ctx: &RequestContext,
    input: GetRecordsInput,
) -> Result<GetRecordsOutput, ServiceError> {
    let it = ShardIterator::decode(&input.shard_iterator)
        .ok_or_else(|| errors::invalid_argument("Invalid ShardIterator."))?;
    let now = s.now_millis();
    if now - it.issued_millis > ITERATOR_TTL_MILLIS {
        return Err(ServiceError::client(
            "ExpiredIteratorException",
            format!(
                "Iterator expired. The iterator was created at time {} while right now it is {} which is further in the future than the tolerated delay of {ITERATOR_TTL_MILLIS} milliseconds.",
                Timestamp::from_millis(it.issued_millis).to_http_date(),
                Timestamp::from_millis(now).to_http_date()
            ),
        ));
    }
    // The model bounds Limit to 1..=10000.
    let limit = input.limit.map_or(10_000, |n| n as usize);
    let stream = s
        .get(&ctx.account_id, &ctx.region, &it.stream_name)?
        .filter(|st| st.uid == it.stream_uid)
        .ok_or_else(|| errors::stream_not_found(&it.stream_name, &ctx.account_id))?;
    let shard = find_shard(&stream, &it.shard_id, &ctx.account_id)?.clone();
    if s.settings.throughput_limits && !s.throughput.admit_get(&stream.uid, shard.index, now) {
        return Err(errors::throughput_exceeded(
            &shard.id,
            &stream.name,
            &ctx.account_id,
        ));
    }
    let log = s.log(&stream, &shard)?;
    let offset = it.offset;
    let reader = log.clone();
    let read = tokio::task::spawn_blocking(move || reader.read(offset, limit, MAX_GET_RECORDS_BYTES))
        .await
        .map_err(internal)?
        .map_err(internal)?;
    if s.settings.throughput_limits {
        let bytes: usize = read.iter().map(|r| r.payload.len()).sum();
        s.throughput
            .record_read(&stream.uid, shard.index, bytes as u64, now);
    }
    // Records past the retention period are no longer readable.
    let oldest = now - stream.retention_hours * s.settings.hour_millis;
    let mut next = offset;
    let mut last_ts = None;
    let mut records = Vec::with_capacity(read.len());
    for r in read {
        next = r.offset + 1;
        if r.timestamp_millis < oldest {
            continue;
        }
        let (partition_key, data) =
            decode_payload(&r.payload).ok_or_else(|| internal("corrupt record payload"))?;
        last_ts = Some(r.timestamp_millis);
        records.push(Record {
            sequence_number: seq(&stream, &shard, r.offset),
            approximate_arrival_timestamp: Some(Timestamp::from_millis(r.timestamp_millis)),
            data: Blob(data),
            partition_key,
            encryption_type: payload_encryption(&r.payload),
        });
    }
    let next = next.max(log.first_offset());
    let tip = log.next_offset();
    let millis_behind_latest = match last_ts {
        Some(ts) if next < tip => (now - ts).max(0),
        _ => 0,
    };
    // At the end of a closed shard there is no next iterator; the children say where to go.
    if let Some(closed) = shard.closed
        && next >= closed.end_offset
    {
        let children = child_shards(&stream, &shard.id);
        return Ok(GetRecordsOutput {
            records,
            next_shard_iterator: None,
            millis_behind_latest: Some(0),
            child_shards: Some(children),
        });
    }
    let next_it = ShardIterator {
        offset: next,
        issued_millis: now,
        ..it
    };
    Ok(GetRecordsOutput {
        records,
        next_shard_iterator: Some(next_it.encode()),
        millis_behind_latest: Some(millis_behind_latest),
        child_shards: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordering_numbers_in_kinesis_layouts_are_accepted() {
        let now = 1_800_000_000_000;
        assert!(ordering_accepted("0", now) && ordering_accepted("1", now));
        // A sequence number Kinesis itself issued (version 2, its time in the past).
        assert!(ordering_accepted(
            "49590338271490256608559692538361571095921575989136588898",
            now
        ));
        assert!(!ordering_accepted(&"9".repeat(60), now));
        assert!(!ordering_accepted(
            "12345678901234567890123456789012345678901234567890",
            now
        ));
        assert!(!ordering_accepted("x1", now));
        assert_eq!(decimal_to_hex("255").as_deref(), Some("ff"));
        assert_eq!(decimal_to_hex("0").as_deref(), Some("0"));
    }

    #[test]
    fn encryption_flag_leaves_the_key_alone() {
        let p = encode_payload("pk", b"data", true);
        assert_eq!(decode_payload(&p), Some(("pk".into(), b"data".to_vec())));
        assert_eq!(payload_encryption(&p), Some(EncryptionType::Kms));
        assert_eq!(payload_encryption(&encode_payload("pk", b"", false)), None);
    }

    #[test]
    fn payload_round_trip() {
        let p = encode_payload("pk-ü", b"\x00data", false);
        assert_eq!(
            decode_payload(&p),
            Some(("pk-ü".to_owned(), b"\x00data".to_vec()))
        );
        assert_eq!(decode_payload(&[5, 0, b'a']), None);
    }
}
