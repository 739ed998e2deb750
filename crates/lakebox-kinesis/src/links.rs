//! Kinesis streams as a [`ShardedLog`], the way other services (Firehose's Kinesis source
//! today; Lambda event sources and streaming SQL next) read them without reaching into this
//! crate's storage.

use lakebox_core::ServiceError;
use lakebox_service::links::{LogRecord, LogShard, ShardedLog};

use crate::errors;
use crate::records::decode_payload;
use crate::streams::{StreamRecord, Streams};

impl Streams {
    fn shard_log(
        &self,
        account: &str,
        region: &str,
        stream: &str,
        shard_id: &str,
    ) -> Result<std::sync::Arc<lakebox_store::Log>, ServiceError> {
        let st: StreamRecord = self.require(account, region, stream)?;
        let shard = st
            .shards
            .iter()
            .find(|s| s.id == shard_id)
            .ok_or_else(|| errors::shard_not_found(shard_id, stream, account))?;
        self.log(&st, shard)
    }
}

impl ShardedLog for Streams {
    fn shards(
        &self,
        account: &str,
        region: &str,
        stream: &str,
    ) -> Result<Option<Vec<LogShard>>, ServiceError> {
        Ok(self.get(account, region, stream)?.map(|st| {
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
        account: &str,
        region: &str,
        stream: &str,
        shard_id: &str,
        from: u64,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Vec<LogRecord>, ServiceError> {
        let log = self.shard_log(account, region, stream, shard_id)?;
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

    fn next_offset(
        &self,
        account: &str,
        region: &str,
        stream: &str,
        shard_id: &str,
    ) -> Result<u64, ServiceError> {
        Ok(self.shard_log(account, region, stream, shard_id)?.next_offset())
    }
}
