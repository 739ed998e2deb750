//! Kinesis streams as a [`ShardedLog`], the way other services (Firehose's Kinesis source
//! today; Lambda event sources and streaming SQL next) read them without reaching into this
//! crate's storage.

use std::sync::Arc;

use lakebox_core::ServiceError;
use lakebox_service::links::{LogRecord, LogShard, ShardReader, ShardedLog, StreamKey};

use crate::records::decode_payload;
use crate::streams::{StreamRecord, Streams};

/// The streams, as other services read them.
pub(crate) struct KinesisLog(pub Arc<Streams>);

/// One shard of one version of a stream (a re-created stream is another `uid`).
struct Shard {
    streams: Arc<Streams>,
    stream: Arc<StreamRecord>,
    index: usize,
}

impl Shard {
    fn log(&self) -> Result<Arc<lakebox_store::Log>, ServiceError> {
        self.streams.log(&self.stream, &self.stream.shards[self.index])
    }
}

impl ShardReader for Shard {
    fn read(&self, from: u64, max_records: usize, max_bytes: usize) -> Result<Vec<LogRecord>, ServiceError> {
        let shard_id = &self.stream.shards[self.index].id;
        let read = self
            .log()?
            .read(from, max_records, max_bytes)
            .map_err(|e| ServiceError::internal(format!("cannot read shard {shard_id}: {e}")))?;
        read.into_iter()
            .map(|r| {
                let (partition_key, data) = decode_payload(&r.payload)
                    .ok_or_else(|| ServiceError::internal(format!("corrupt record in shard {shard_id}")))?;
                Ok(LogRecord {
                    offset: r.offset,
                    arrival_millis: r.timestamp_millis,
                    partition_key,
                    data,
                })
            })
            .collect()
    }

    fn next_offset(&self) -> Result<u64, ServiceError> {
        Ok(self.log()?.next_offset())
    }

    fn sequence_number(&self, offset: u64) -> String {
        crate::sequence::SequenceNumber {
            stream_epoch: self.stream.epoch_secs(),
            shard_index: self.stream.shards[self.index].index,
            offset,
        }
        .format()
    }
}

impl ShardedLog for KinesisLog {
    fn shards(&self, key: StreamKey<'_>) -> Result<Option<Vec<LogShard>>, ServiceError> {
        let Some(stream) = self.0.get(key.account, key.region, key.name)? else {
            return Ok(None);
        };
        let stream = Arc::new(stream);
        Ok(Some(
            stream
                .shards
                .iter()
                .enumerate()
                .map(|(index, s)| LogShard {
                    shard_id: s.id.clone(),
                    parent_shard_id: s.parent.clone(),
                    adjacent_parent_shard_id: s.adjacent_parent.clone(),
                    closed_at: s.closed.map(|c| c.end_offset),
                    reader: Arc::new(Shard {
                        streams: self.0.clone(),
                        stream: stream.clone(),
                        index,
                    }),
                })
                .collect(),
        ))
    }
}
