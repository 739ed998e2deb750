//! DynamoDB Streams (awsJson 1.0, `DynamoDBStreams_20120810`): a table's change records,
//! written by the same store transaction as the change itself, so a record exists exactly
//! when its write committed, in commit order.
//!
//! Layout: a stream's records are the redb table `stream/<uid>`, keyed by
//! `shard ‖ sequence number` (two big-endian integers). Shards roll over every four hours as on
//! AWS: shard `n` holds the records written in the `n`th four-hour window since the stream was
//! enabled, and its parent is shard `n - 1`. Records are kept 24 hours: whole shards are
//! dropped once every record in them is older.

use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use lakebox_core::clock::Clock;
use lakebox_core::{RequestContext, ServiceError};
use lakebox_protocol::Timestamp;
use lakebox_service::{BoxFuture, RpcRequest, RpcResponse, RpcService};
use lakebox_store::kv::WriteBatch;
use lakebox_store::{KeyRange, MetaStore};
use serde::{Deserialize, Serialize};

use crate::DynamoDb;
use crate::errors;
use crate::streams_api::*;
use crate::tables::TableRecord;
use crate::value::{Item, item_size};

/// How long a shard takes writes before the next one starts.
pub const ROLL_MILLIS: i64 = 4 * 60 * 60 * 1000;
/// How long records are kept.
pub const RETENTION_MILLIS: i64 = 24 * 60 * 60 * 1000;
/// How long a shard iterator stays valid.
const ITERATOR_MILLIS: i64 = 15 * 60 * 1000;
/// Redb table of every stream's description, keyed by ARN.
pub const STREAMS: &str = "streams";

/// A stream as stored: enabled on a table at `created_millis`, disabled at `disabled_millis`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamMeta {
    pub uid: String,
    pub arn: String,
    pub label: String,
    pub table_name: String,
    pub account: String,
    pub region: String,
    pub view_type: String,
    pub key_schema: Vec<crate::api::KeySchemaElement>,
    pub created_millis: i64,
    pub disabled_millis: Option<i64>,
}

impl StreamMeta {
    pub fn new(table: &TableRecord, view_type: &str, now: i64) -> StreamMeta {
        let label = Timestamp::from_millis(now)
            .to_iso8601()
            .trim_end_matches('Z')
            .to_owned();
        StreamMeta {
            uid: uuid::Uuid::new_v4().simple().to_string(),
            arn: format!("{}/stream/{label}", table.arn()),
            label,
            table_name: table.name.clone(),
            account: table.account.clone(),
            region: table.region.clone(),
            view_type: view_type.to_owned(),
            key_schema: table.key_schema.clone(),
            created_millis: now,
            disabled_millis: None,
        }
    }

    fn records_table(&self) -> String {
        format!("stream/{}", self.uid)
    }

    /// The shard a record written at `millis` goes to.
    fn shard_at(&self, millis: i64) -> u32 {
        ((millis - self.created_millis).max(0) / ROLL_MILLIS) as u32
    }

    /// The shard taking writes now (the last one, once disabled).
    fn current_shard(&self, now: i64) -> u32 {
        self.shard_at(self.disabled_millis.unwrap_or(now))
    }

    fn shard_id(&self, n: u32) -> String {
        let start = self.created_millis + n as i64 * ROLL_MILLIS;
        let tag = self.uid.get(..8).unwrap_or("00000000");
        format!("shardId-{start:020}-{tag}{n:04x}")
    }

    fn shard_of(&self, shard_id: &str) -> Option<u32> {
        let n = u32::from_str_radix(shard_id.get(shard_id.len().checked_sub(4)?..)?, 16).ok()?;
        (self.shard_id(n) == shard_id).then_some(n)
    }

    /// Shards still holding records within retention, oldest first.
    fn live_shards(&self, now: i64) -> std::ops::RangeInclusive<u32> {
        let current = self.current_shard(now);
        let oldest = self.shard_at(now - RETENTION_MILLIS).min(current);
        oldest..=current
    }
}

fn record_key(shard: u32, seq: u64) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..4].copy_from_slice(&shard.to_be_bytes());
    k[4..].copy_from_slice(&seq.to_be_bytes());
    k
}

fn seq_text(seq: u64) -> String {
    format!("{seq:021}")
}

/// What a write job needs: the tables as they are when it runs, the next sequence number and
/// the time.
#[derive(Clone)]
pub struct ChangeLog {
    pub tables: crate::Tables,
    pub next_seq: Arc<AtomicU64>,
    pub clock: Arc<dyn Clock>,
}

impl ChangeLog {
    /// The table a write was prepared for, as it is now — with the indexes, TTL and stream
    /// changed since — or `None` if it has been deleted (or deleted and made again). Table
    /// changes update the map from inside their own write job, so a write job always sees the
    /// table as of its place in the commit order.
    pub fn current(&self, prepared: &TableRecord) -> Option<Arc<TableRecord>> {
        let t = self.tables.read().unwrap().get(&prepared.key()).cloned()?;
        (t.uid == prepared.uid).then_some(t)
    }

    /// Records one change of an item in the table's stream, if it has one and the item
    /// changed. `by_ttl`: the TTL service deleted it (AWS marks such records).
    pub fn record(
        &self,
        batch: &mut WriteBatch<'_>,
        table: &TableRecord,
        key: &Item,
        old: Option<&Item>,
        new: Option<&Item>,
        by_ttl: bool,
    ) -> lakebox_store::Result<()> {
        let stream = table.stream.as_ref().and(table.latest_stream.as_ref());
        if stream.is_none() && table.kinesis_destinations.is_empty() {
            return Ok(());
        }
        let event = match (old, new) {
            (None, None) => return Ok(()),
            (Some(o), Some(n)) if o == n => return Ok(()),
            (None, Some(_)) => OperationType::Insert,
            (Some(_), Some(_)) => OperationType::Modify,
            (Some(_), None) => OperationType::Remove,
        };
        let now = self.clock.now_millis();
        let seq = self.next_seq.fetch_add(1, Ordering::SeqCst);
        crate::kinesis_dest::record(batch, table, seq, now, key, old, new)?;
        let Some(stream) = stream else {
            return Ok(());
        };
        let (with_new, with_old) = match stream.view_type.as_str() {
            "NEW_IMAGE" => (true, false),
            "OLD_IMAGE" => (false, true),
            "NEW_AND_OLD_IMAGES" => (true, true),
            _ => (false, false),
        };
        let new_image = new.filter(|_| with_new).cloned();
        let old_image = old.filter(|_| with_old).cloned();
        let size = item_size(key)
            + new_image.as_ref().map_or(0, item_size)
            + old_image.as_ref().map_or(0, item_size);
        let record = Record {
            event_id: Some(uuid::Uuid::new_v4().simple().to_string()),
            event_name: Some(event),
            event_version: Some("1.1".into()),
            event_source: Some("aws:dynamodb".into()),
            aws_region: Some(table.region.clone()),
            dynamodb: Some(StreamRecord {
                approximate_creation_date_time: Some(Timestamp::from_millis(now / 1000 * 1000)),
                keys: Some(key.clone()),
                new_image,
                old_image,
                sequence_number: Some(seq_text(seq)),
                size_bytes: Some(size as i64),
                stream_view_type: Some(StreamViewType::from(stream.view_type.as_str())),
            }),
            user_identity: by_ttl.then(|| Identity {
                principal_id: Some("dynamodb.amazonaws.com".into()),
                r#type: Some("Service".into()),
            }),
        };
        let value = serde_json::to_vec(&record).expect("records serialize");
        batch.put(
            &stream.records_table(),
            &record_key(stream.shard_at(now), seq),
            &value,
        )
    }
}

/// The next sequence number after every stored record (records of every stream share one
/// sequence, as they share one commit order).
pub fn next_sequence(meta: &MetaStore) -> lakebox_store::Result<u64> {
    let streams = all_streams(meta)?;
    let mut next = 1;
    meta.read(|view| {
        for s in &streams {
            view.range(
                &s.records_table(),
                KeyRange {
                    start: Bound::Unbounded,
                    end: Bound::Unbounded,
                    reverse: true,
                },
                |k, _| {
                    if k.len() == 12 {
                        next = next.max(u64::from_be_bytes(k[4..].try_into().unwrap()) + 1);
                    }
                    Ok(false)
                },
            )?;
        }
        Ok(())
    })?;
    Ok(next)
}

pub fn all_streams(meta: &MetaStore) -> lakebox_store::Result<Vec<StreamMeta>> {
    let rows = meta.read(|view| view.scan_prefix(STREAMS, b""))?;
    Ok(rows
        .iter()
        .filter_map(|(_, v)| serde_json::from_slice(v).ok())
        .collect())
}

pub fn save_stream(batch: &mut WriteBatch<'_>, s: &StreamMeta) -> lakebox_store::Result<()> {
    batch.put(
        STREAMS,
        s.arn.as_bytes(),
        &serde_json::to_vec(s).expect("serializes"),
    )
}

/// Drops what retention no longer keeps: shards whose records are all older than 24 hours,
/// and disabled streams a day after they closed.
pub fn trim(meta: &MetaStore, now: i64) -> lakebox_store::Result<()> {
    for s in all_streams(meta)? {
        let gone = s.disabled_millis.is_some_and(|d| now - d > RETENTION_MILLIS);
        let first_live = *s.live_shards(now).start();
        if !gone && first_live == 0 {
            continue;
        }
        let table = s.records_table();
        meta.write(|b| {
            b.freeing();
            if gone {
                b.delete_table(&table)?;
                b.delete(STREAMS, s.arn.as_bytes())?;
                return Ok(());
            }
            let mut old = Vec::new();
            b.range(
                &table,
                KeyRange {
                    start: Bound::Unbounded,
                    end: Bound::Excluded(&record_key(first_live, 0)),
                    reverse: false,
                },
                |k, _| {
                    old.push(k.to_vec());
                    Ok(true)
                },
            )?;
            for k in old {
                b.delete(&table, &k)?;
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// A position in a shard: the next record returned has a sequence number above `after`.
#[derive(Serialize, Deserialize)]
struct Iterator {
    #[serde(rename = "a")]
    arn: String,
    #[serde(rename = "n")]
    shard: u32,
    #[serde(rename = "s")]
    after: u64,
    #[serde(rename = "t")]
    issued: i64,
}

impl Iterator {
    fn encode(&self) -> String {
        BASE64.encode(serde_json::to_vec(self).expect("serializes"))
    }

    fn decode(text: &str) -> Option<Iterator> {
        serde_json::from_slice(&BASE64.decode(text).ok()?).ok()
    }
}

/// The DynamoDB Streams service: a second door into DynamoDB's store.
pub struct DynamoDbStreams {
    db: Arc<DynamoDb>,
}

impl DynamoDbStreams {
    pub fn new(db: Arc<DynamoDb>) -> Arc<Self> {
        Arc::new(DynamoDbStreams { db })
    }

    fn stream(&self, arn: &str) -> Result<StreamMeta, ServiceError> {
        self.db.stream_meta(arn)
    }

    fn bounds(&self, s: &StreamMeta, n: u32) -> Result<(Option<u64>, Option<u64>), ServiceError> {
        self.db.shard_bounds(s, n)
    }
}

impl DynamoDb {
    /// A stream's description, by ARN.
    fn stream_meta(&self, arn: &str) -> Result<StreamMeta, ServiceError> {
        self.meta
            .get(STREAMS, arn.as_bytes())
            .map_err(errors::store)?
            .and_then(|v| serde_json::from_slice(&v).ok())
            .ok_or_else(|| {
                ServiceError::client(
                    "ResourceNotFoundException",
                    format!("Requested resource not found: Stream: {arn} not found"),
                )
            })
    }

    /// First and last sequence numbers stored in a shard.
    fn shard_bounds(&self, s: &StreamMeta, n: u32) -> Result<(Option<u64>, Option<u64>), ServiceError> {
        let table = s.records_table();
        let (start, end) = (record_key(n, 0), record_key(n + 1, 0));
        let mut first = None;
        let mut last = None;
        self.meta
            .read(|view| {
                for (reverse, slot) in [(false, &mut first), (true, &mut last)] {
                    view.range(
                        &table,
                        KeyRange {
                            start: Bound::Included(&start),
                            end: Bound::Excluded(&end),
                            reverse,
                        },
                        |k, _| {
                            *slot = Some(u64::from_be_bytes(k[4..].try_into().unwrap()));
                            Ok(false)
                        },
                    )?;
                }
                Ok(())
            })
            .map_err(errors::store)?;
        Ok((first, last))
    }
}

impl RpcService for DynamoDbStreams {
    fn call(
        self: Arc<Self>,
        ctx: RequestContext,
        req: RpcRequest,
    ) -> BoxFuture<Result<RpcResponse, ServiceError>> {
        dispatch(self, ctx, req)
    }
}

impl DynamoDbStreamsApi for DynamoDbStreams {
    async fn list_streams(
        &self,
        ctx: &RequestContext,
        input: ListStreamsInput,
    ) -> Result<ListStreamsOutput, ServiceError> {
        let limit = input.limit.unwrap_or(100).clamp(1, 100) as usize;
        let mut streams: Vec<StreamMeta> = all_streams(&self.db.meta)
            .map_err(errors::store)?
            .into_iter()
            .filter(|s| s.account == ctx.account_id && s.region == ctx.region)
            .filter(|s| input.table_name.as_ref().is_none_or(|t| *t == s.table_name))
            .collect();
        streams.sort_by(|a, b| a.arn.cmp(&b.arn));
        if let Some(start) = &input.exclusive_start_stream_arn {
            streams.retain(|s| s.arn > *start);
        }
        let more = streams.len() > limit;
        streams.truncate(limit);
        Ok(ListStreamsOutput {
            last_evaluated_stream_arn: if more {
                streams.last().map(|s| s.arn.clone())
            } else {
                None
            },
            streams: Some(
                streams
                    .into_iter()
                    .map(|s| Stream {
                        stream_arn: Some(s.arn),
                        table_name: Some(s.table_name),
                        stream_label: Some(s.label),
                    })
                    .collect(),
            ),
        })
    }

    async fn describe_stream(
        &self,
        _ctx: &RequestContext,
        input: DescribeStreamInput,
    ) -> Result<DescribeStreamOutput, ServiceError> {
        let s = self.stream(&input.stream_arn)?;
        let now = self.db.now();
        let current = s.current_shard(now);
        let next = self.db.next_seq.load(Ordering::SeqCst);
        let mut shards = Vec::new();
        for n in s.live_shards(now) {
            let (first, last) = self.bounds(&s, n)?;
            let closed = n < current || s.disabled_millis.is_some();
            let start = first.unwrap_or(if closed { last.unwrap_or(next) } else { next });
            shards.push(Shard {
                shard_id: Some(s.shard_id(n)),
                sequence_number_range: Some(SequenceNumberRange {
                    starting_sequence_number: Some(seq_text(start)),
                    ending_sequence_number: closed.then(|| seq_text(last.unwrap_or(start))),
                }),
                parent_shard_id: (n > 0).then(|| s.shard_id(n - 1)),
            });
        }
        if let Some(after) = &input.exclusive_start_shard_id
            && let Some(pos) = shards
                .iter()
                .position(|sh| sh.shard_id.as_deref() == Some(after.as_str()))
        {
            shards.drain(..=pos);
        }
        let limit = input.limit.unwrap_or(100).clamp(1, 100) as usize;
        let more = shards.len() > limit;
        shards.truncate(limit);
        Ok(DescribeStreamOutput {
            stream_description: Some(StreamDescription {
                stream_arn: Some(s.arn.clone()),
                stream_label: Some(s.label.clone()),
                stream_status: Some(if s.disabled_millis.is_some() {
                    StreamStatus::Disabled
                } else {
                    StreamStatus::Enabled
                }),
                stream_view_type: Some(StreamViewType::from(s.view_type.as_str())),
                creation_request_date_time: Some(Timestamp::from_millis(s.created_millis)),
                table_name: Some(s.table_name.clone()),
                key_schema: Some(
                    s.key_schema
                        .iter()
                        .map(|k| KeySchemaElement {
                            attribute_name: k.attribute_name.clone(),
                            key_type: KeyType::from(k.key_type.as_str()),
                        })
                        .collect(),
                ),
                last_evaluated_shard_id: if more {
                    shards.last().and_then(|sh| sh.shard_id.clone())
                } else {
                    None
                },
                shards: Some(shards),
            }),
        })
    }

    async fn get_shard_iterator(
        &self,
        _ctx: &RequestContext,
        input: GetShardIteratorInput,
    ) -> Result<GetShardIteratorOutput, ServiceError> {
        let s = self.stream(&input.stream_arn)?;
        let now = self.db.now();
        let shard = s
            .shard_of(&input.shard_id)
            .filter(|n| s.live_shards(now).contains(n))
            .ok_or_else(|| {
                ServiceError::client(
                    "ResourceNotFoundException",
                    format!(
                        "Requested resource not found: Shard does not exist: {}",
                        input.shard_id
                    ),
                )
            })?;
        let seq = || -> Result<u64, ServiceError> {
            input
                .sequence_number
                .as_deref()
                .and_then(|t| t.parse::<u64>().ok())
                .ok_or_else(|| {
                    errors::validation(
                        "Sequence number must be specified for AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER",
                    )
                })
        };
        let after = match input.shard_iterator_type {
            ShardIteratorType::TrimHorizon => 0,
            ShardIteratorType::Latest => {
                let (_, last) = self.bounds(&s, shard)?;
                last.unwrap_or(self.db.next_seq.load(Ordering::SeqCst) - 1)
            }
            ShardIteratorType::AtSequenceNumber => seq()?.saturating_sub(1),
            ShardIteratorType::AfterSequenceNumber => seq()?,
            ShardIteratorType::Unknown(t) => {
                return Err(errors::validation(format!("Invalid ShardIteratorType: {t}")));
            }
        };
        Ok(GetShardIteratorOutput {
            shard_iterator: Some(
                Iterator {
                    arn: s.arn,
                    shard,
                    after,
                    issued: now,
                }
                .encode(),
            ),
        })
    }

    async fn get_records(
        &self,
        _ctx: &RequestContext,
        input: GetRecordsInput,
    ) -> Result<GetRecordsOutput, ServiceError> {
        let started = std::time::Instant::now();
        let it = Iterator::decode(&input.shard_iterator)
            .ok_or_else(|| errors::validation("Invalid ShardIterator"))?;
        let now = self.db.now();
        if now - it.issued > ITERATOR_MILLIS {
            return Err(ServiceError::client(
                "ExpiredIteratorException",
                "Iterator expired",
            ));
        }
        let s = self.stream(&it.arn)?;
        if !s.live_shards(now).contains(&it.shard) {
            return Err(ServiceError::client(
                "TrimmedDataAccessException",
                "The operation attempted to read past the oldest stream record in a shard.",
            ));
        }
        let limit = input.limit.unwrap_or(1000).clamp(1, 1000) as usize;
        let table = s.records_table();
        let (start, end) = (
            record_key(it.shard, it.after.saturating_add(1)),
            record_key(it.shard + 1, 0),
        );
        let mut records = Vec::new();
        let mut bytes = 0;
        let mut last = it.after;
        let mut more = false;
        self.db
            .meta
            .read(|view| {
                view.range(
                    &table,
                    KeyRange {
                        start: Bound::Included(&start),
                        end: Bound::Excluded(&end),
                        reverse: false,
                    },
                    |k, v| {
                        if records.len() >= limit || bytes >= 1024 * 1024 {
                            more = true;
                            return Ok(false);
                        }
                        let r: Record = serde_json::from_slice(v)
                            .map_err(|e| lakebox_store::StoreError::Corrupt(format!("stream record: {e}")))?;
                        bytes += v.len();
                        last = u64::from_be_bytes(k[4..].try_into().unwrap());
                        records.push(r);
                        Ok(true)
                    },
                )
            })
            .map_err(errors::store)?;
        let closed = it.shard < s.current_shard(now) || s.disabled_millis.is_some();
        let next = (!closed || more).then(|| {
            Iterator {
                arn: it.arn,
                shard: it.shard,
                after: last,
                issued: now,
            }
            .encode()
        });
        self.db
            .report_stream_read(&s, records.len(), bytes, started.elapsed());
        Ok(GetRecordsOutput {
            records: Some(records),
            next_shard_iterator: next,
        })
    }
}

/// DynamoDB Streams as a sharded log other services read (Lambda's event sources). A stream
/// is named by its ARN's resource (`table/<table>/stream/<label>`); a record's offset is its
/// sequence number (increasing, not dense) and its data the stream record's JSON.
pub struct StreamLog {
    db: Arc<DynamoDb>,
}

impl StreamLog {
    pub fn new(db: Arc<DynamoDb>) -> Arc<Self> {
        Arc::new(StreamLog { db })
    }
}

impl lakebox_service::links::ShardedLog for StreamLog {
    fn shards(
        &self,
        key: lakebox_service::links::StreamKey<'_>,
    ) -> Result<Option<Vec<lakebox_service::links::LogShard>>, ServiceError> {
        let arn = format!("arn:aws:dynamodb:{}:{}:{}", key.region, key.account, key.name);
        let s = match self.db.stream_meta(&arn) {
            Ok(s) => s,
            Err(e) if e.code == "ResourceNotFoundException" => return Ok(None),
            Err(e) => return Err(e),
        };
        let now = self.db.now();
        let current = s.current_shard(now);
        let live = s.live_shards(now);
        let first_live = *live.start();
        let mut out = Vec::new();
        for n in live {
            let closed = n < current || s.disabled_millis.is_some();
            let closed_at = if closed {
                let (_, last) = self.db.shard_bounds(&s, n)?;
                Some(last.map_or(0, |l| l + 1))
            } else {
                None
            };
            out.push(lakebox_service::links::LogShard {
                shard_id: s.shard_id(n),
                parent_shard_id: (n > first_live).then(|| s.shard_id(n - 1)),
                adjacent_parent_shard_id: None,
                closed_at,
                reader: Arc::new(ShardRead {
                    db: self.db.clone(),
                    stream: s.clone(),
                    shard: n,
                }),
            });
        }
        Ok(Some(out))
    }
}

struct ShardRead {
    db: Arc<DynamoDb>,
    stream: StreamMeta,
    shard: u32,
}

impl lakebox_service::links::ShardReader for ShardRead {
    fn read(
        &self,
        from: u64,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Vec<lakebox_service::links::LogRecord>, ServiceError> {
        let (start, end) = (record_key(self.shard, from), record_key(self.shard + 1, 0));
        let mut out = Vec::new();
        let mut bytes = 0;
        self.db
            .meta
            .read(|view| {
                view.range(
                    &self.stream.records_table(),
                    KeyRange {
                        start: Bound::Included(&start),
                        end: Bound::Excluded(&end),
                        reverse: false,
                    },
                    |k, v| {
                        if out.len() >= max_records || (bytes + v.len() > max_bytes && !out.is_empty()) {
                            return Ok(false);
                        }
                        bytes += v.len();
                        let arrival = serde_json::from_slice::<Record>(v)
                            .ok()
                            .and_then(|r| r.dynamodb?.approximate_creation_date_time)
                            .map_or(0, |t| t.as_millis());
                        out.push(lakebox_service::links::LogRecord {
                            offset: u64::from_be_bytes(k[4..].try_into().unwrap()),
                            arrival_millis: arrival,
                            partition_key: String::new(),
                            data: v.to_vec(),
                        });
                        Ok(true)
                    },
                )
            })
            .map_err(errors::store)?;
        Ok(out)
    }

    fn next_offset(&self) -> Result<u64, ServiceError> {
        Ok(self.db.next_seq.load(Ordering::SeqCst))
    }

    fn sequence_number(&self, offset: u64) -> String {
        seq_text(offset)
    }
}
