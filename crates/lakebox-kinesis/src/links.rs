//! Kinesis streams as a [`ShardedLog`], the way other services (Firehose's Kinesis source
//! today; Lambda event sources and streaming SQL next) read them without reaching into this
//! crate's storage.

use lakebox_core::ServiceError;
use lakebox_service::links::{LogRecord, LogShard, ShardedLog, StreamKey};

use crate::errors;
use crate::records::decode_payload;
use crate::streams::{StreamRecord, Streams};

impl Streams {
    fn shard_log(
        &self,
        key: StreamKey<'_>,
        shard_id: &str,
    ) -> Result<std::sync::Arc<lakebox_store::Log>, ServiceError> {
        let (account, stream) = (key.account, key.name);
        let st: StreamRecord = self.require(account, key.region, stream)?;
        let shard = st
            .shards
            .iter()
            .find(|s| s.id == shard_id)
            .ok_or_else(|| errors::shard_not_found(shard_id, stream, account))?;
        self.log(&st, shard)
    }
}

impl ShardedLog for Streams {
    fn shards(&self, key: StreamKey<'_>) -> Result<Option<Vec<LogShard>>, ServiceError> {
        Ok(self.get(key.account, key.region, key.name)?.map(|st| {
            st.shards
                .iter()
                .map(|s| LogShard {
                    shard_id: s.id.clone(),
                    parent_shard_id: s.parent.clone(),
                    adjacent_parent_shard_id: s.adjacent_parent.clone(),
                    closed_at: s.closed.map(|c| c.end_offset),
                })
                .collect()
        }))
    }

    fn read(
        &self,
        key: StreamKey<'_>,
        shard_id: &str,
        from: u64,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Vec<LogRecord>, ServiceError> {
        let log = self.shard_log(key, shard_id)?;
        let read = log
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

    fn next_offset(&self, key: StreamKey<'_>, shard_id: &str) -> Result<u64, ServiceError> {
        Ok(self.shard_log(key, shard_id)?.next_offset())
    }
}
