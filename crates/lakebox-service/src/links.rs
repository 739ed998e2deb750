//! How one service reaches another: small traits owned here, implemented by the service that
//! has the data, and handed to the one that needs it by the binary. A service never names
//! another service's crate to read its data.

use lakebox_core::ServiceError;

/// One shard of a [`ShardedLog`] stream, as a reader needs to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogShard {
    pub shard_id: String,
    pub parent_shard_id: Option<String>,
    pub adjacent_parent_shard_id: Option<String>,
    /// For a closed shard (split or merged away), the offset just past its last record.
    pub closed_at: Option<u64>,
}

impl LogShard {
    pub fn is_open(&self) -> bool {
        self.closed_at.is_none()
    }
}

/// One record of a shard, at its offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    pub offset: u64,
    pub arrival_millis: i64,
    pub partition_key: String,
    pub data: Vec<u8>,
}

/// Which stream: its name in an account and region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamKey<'a> {
    pub account: &'a str,
    pub region: &'a str,
    pub name: &'a str,
}

/// A stream of sharded, ordered records that other services read: a Kinesis data stream today,
/// DynamoDB Streams next; read by Firehose, Lambda event sources and streaming SQL.
///
/// Offsets are per shard, dense and increasing. Reads are blocking (they touch disk): call
/// them from `spawn_blocking`.
pub trait ShardedLog: Send + Sync + 'static {
    /// The stream's shards in creation order, or `None` when there is no such stream.
    fn shards(&self, stream: StreamKey<'_>) -> Result<Option<Vec<LogShard>>, ServiceError>;

    /// Up to `max_records` records (at most about `max_bytes`) from `from` on; fewer (or none)
    /// at the end of what is written.
    fn read(
        &self,
        stream: StreamKey<'_>,
        shard_id: &str,
        from: u64,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Vec<LogRecord>, ServiceError>;

    /// The offset the next record of the shard will get (where LATEST starts).
    fn next_offset(&self, stream: StreamKey<'_>, shard_id: &str) -> Result<u64, ServiceError>;
}
