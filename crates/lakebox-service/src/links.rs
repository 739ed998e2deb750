//! How one service reaches another: small traits owned here, implemented by the service that
//! has the data, and handed to the one that needs it by the binary. A service never names
//! another service's crate to read its data.

use std::sync::Arc;

use lakebox_core::ServiceError;

/// One shard of a [`ShardedLog`] stream, as a reader needs to know it, with a handle to read it.
#[derive(Clone)]
pub struct LogShard {
    pub shard_id: String,
    pub parent_shard_id: Option<String>,
    pub adjacent_parent_shard_id: Option<String>,
    /// For a closed shard (split or merged away), the offset just past its last record.
    pub closed_at: Option<u64>,
    /// Reads this shard without looking the stream up again.
    pub reader: Arc<dyn ShardReader>,
}

impl LogShard {
    pub fn is_open(&self) -> bool {
        self.closed_at.is_none()
    }

    /// Whether a reader may start this shard: each of its parents (in `shards`, the stream's
    /// listing) is closed and read to its end, by `read_to` (where the reader stands in a
    /// shard; `None` for one it has not started). A parent no longer listed was trimmed away.
    /// Reading a child only after its parents keeps every partition key's records in order
    /// across a reshard.
    pub fn parents_read(&self, shards: &[LogShard], read_to: impl Fn(&str) -> Option<u64>) -> bool {
        [&self.parent_shard_id, &self.adjacent_parent_shard_id]
            .into_iter()
            .flatten()
            .all(|p| match shards.iter().find(|s| &s.shard_id == p) {
                None => true,
                Some(parent) => parent
                    .closed_at
                    .is_some_and(|end| read_to(p).is_some_and(|at| at >= end)),
            })
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

/// Reads one shard. Offsets are dense and increasing. Reads are blocking (they touch disk):
/// call them from `spawn_blocking`.
pub trait ShardReader: Send + Sync {
    /// Up to `max_records` records (at most about `max_bytes`) from `from` on; fewer (or none)
    /// at the end of what is written.
    fn read(&self, from: u64, max_records: usize, max_bytes: usize) -> Result<Vec<LogRecord>, ServiceError>;

    /// The offset the next record of the shard will get (where LATEST starts).
    fn next_offset(&self) -> Result<u64, ServiceError>;

    /// The record's sequence number as the stream's own API names it (what Lambda's Kinesis
    /// events carry); the offset itself unless the stream spells it otherwise.
    fn sequence_number(&self, offset: u64) -> String {
        offset.to_string()
    }
}

/// A stream of sharded, ordered records that other services read: a Kinesis data stream today,
/// DynamoDB Streams next; read by Firehose, Lambda event sources and streaming SQL.
pub trait ShardedLog: Send + Sync + 'static {
    /// The stream's shards in creation order, each with its reader (one lookup of the stream
    /// serves a whole pass over its shards), or `None` when there is no such stream.
    fn shards(&self, stream: StreamKey<'_>) -> Result<Option<Vec<LogShard>>, ServiceError>;
}

/// One line of a service's own log output, as CloudWatch Logs stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub timestamp_millis: i64,
    pub message: String,
}

/// Where a service writes log output of its own resources into CloudWatch Logs (Lambda's
/// function logs under `/aws/lambda/<name>`): the group and stream are made when missing, as
/// AWS's services make them.
pub trait LogWriter: Send + Sync + 'static {
    fn write(
        &self,
        account: &str,
        region: &str,
        group: &str,
        stream: &str,
        lines: Vec<LogLine>,
    ) -> crate::BoxFuture<Result<(), ServiceError>>;
}

/// One message received from a queue, with what a consumer of another service (a Lambda event
/// source) passes on.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueMessage {
    pub message_id: String,
    pub receipt_handle: String,
    pub body: String,
    pub md5_of_body: String,
    pub md5_of_message_attributes: Option<String>,
    /// System attributes by name (`ApproximateReceiveCount`, `SentTimestamp`, …).
    pub attributes: std::collections::BTreeMap<String, String>,
    /// Message attributes as Lambda's SQS events spell them (`stringValue`, `binaryValue`
    /// in base64, `stringListValues`, `binaryListValues`, `dataType`).
    pub message_attributes: serde_json::Map<String, serde_json::Value>,
}

/// Queues another service consumes (Lambda's SQS event sources), named by ARN.
pub trait QueueSource: Send + Sync + 'static {
    /// Up to `max` messages (at most 10), waiting up to `wait_secs` for one; `None` when there
    /// is no such queue. Received messages are invisible for the queue's visibility timeout.
    fn receive(
        &self,
        queue_arn: &str,
        max: usize,
        wait_secs: u32,
    ) -> crate::BoxFuture<Result<Option<Vec<QueueMessage>>, ServiceError>>;

    /// Deletes received messages (by receipt handle).
    fn delete(
        &self,
        queue_arn: &str,
        receipt_handles: Vec<String>,
    ) -> crate::BoxFuture<Result<(), ServiceError>>;

    /// The queue's visibility timeout in seconds; `None` when there is no such queue or the
    /// source cannot tell.
    fn visibility_timeout(&self, _queue_arn: &str) -> Option<i64> {
        None
    }
}

/// What a Lambda function answered, as another service sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionResult {
    pub payload: Vec<u8>,
    /// `Unhandled` when the function failed (its payload is then AWS's error document).
    pub function_error: Option<String>,
}

/// Runs Lambda functions for other services, synchronously, as AWS's services invoke them
/// (Firehose's data transformation). A function that does not exist, or is throttled, is an
/// error; a function that ran and failed is a result with `function_error`.
pub trait FunctionInvoker: Send + Sync + 'static {
    fn invoke(
        &self,
        function_arn: &str,
        payload: Vec<u8>,
    ) -> crate::BoxFuture<Result<FunctionResult, ServiceError>>;
}
