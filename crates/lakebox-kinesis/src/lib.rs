//! Amazon Kinesis Data Streams for Lakebox: a durable, sharded, ordered log with AWS semantics.
//!
//! - [`streams`]: stream metadata and one group-committed log per shard.
//! - [`hashing`], [`sequence`], [`iterator`]: partition keys to shards, sequence numbers,
//!   shard iterators.
//! - [`admin`] (streams, shards, tags, retention) and [`records`] (put and get): the operations.
//!
//! Requests arrive as awsJson 1.1 or CBOR; the same serde shapes serve both.

mod admin;
mod errors;
mod fanout;
mod features;
pub mod hashing;
pub mod iterator;
pub mod model;
mod records;
mod reshard;
pub mod retention;
pub mod sequence;
pub mod streams;
pub mod throughput;

use std::path::Path;
use std::sync::Arc;

use lakebox_core::{Arn, Clock, RequestContext, ServiceError};
use lakebox_gateway::service::BoxFuture;
use lakebox_gateway::{RpcRequest, RpcResponse, RpcService};

pub use records::decode_payload;
pub use streams::KinesisSettings;
use streams::Streams;

use crate::model::StreamRef;

pub struct Kinesis {
    streams: Arc<Streams>,
}

impl Kinesis {
    /// Starts the retention sweeper (call once, inside the runtime).
    pub fn start_background_work(&self) -> tokio::task::JoinHandle<()> {
        retention::spawn_sweeper(self.streams.clone())
    }

    /// The streams, for in-process readers (Firehose's Kinesis source): shard logs via
    /// [`Streams::log`], stored records via [`decode_payload`].
    pub fn streams(&self) -> Arc<Streams> {
        self.streams.clone()
    }

    pub fn open(
        dir: &Path,
        clock: Arc<dyn Clock>,
        settings: KinesisSettings,
    ) -> Result<Self, lakebox_store::StoreError> {
        Ok(Kinesis {
            streams: Arc::new(Streams::open(dir, clock, settings)?),
        })
    }
}

/// The stream a request names, by `StreamName` or `StreamARN` (which must be in the caller's
/// account and region).
pub(crate) fn stream_name(ctx: &RequestContext, r: &StreamRef) -> Result<String, ServiceError> {
    match (&r.stream_name, &r.stream_arn) {
        (Some(n), _) => {
            validate_stream_name(n)?;
            Ok(n.clone())
        }
        (None, Some(arn)) => {
            let parsed = Arn::parse(arn)
                .filter(|a| a.service == "kinesis")
                .ok_or_else(|| errors::invalid_argument(format!("Invalid StreamARN: {arn}")))?;
            let name = parsed
                .resource
                .strip_prefix("stream/")
                .filter(|n| !n.contains('/'))
                .ok_or_else(|| errors::invalid_argument(format!("Invalid StreamARN: {arn}")))?;
            if parsed.account_id != ctx.account_id || parsed.region != ctx.region {
                return Err(errors::stream_not_found(name, &parsed.account_id));
            }
            Ok(name.to_owned())
        }
        (None, None) => Err(errors::invalid_argument(
            "Either StreamName or StreamARN should be provided.",
        )),
    }
}

pub(crate) fn validate_stream_name(n: &str) -> Result<(), ServiceError> {
    if n.is_empty() || n.len() > 128 {
        return Err(errors::validation(
            "streamName",
            "Member must have length between 1 and 128",
            n,
        ));
    }
    if !n
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
    {
        return Err(errors::validation(
            "streamName",
            "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
            n,
        ));
    }
    Ok(())
}

impl RpcService for Kinesis {
    fn call(
        self: Arc<Self>,
        ctx: RequestContext,
        req: RpcRequest,
    ) -> BoxFuture<Result<RpcResponse, ServiceError>> {
        Box::pin(async move {
            let s = &self.streams;
            match req.operation.as_str() {
                "CreateStream" => req.reply(&admin::create_stream(s, &ctx, req.decode()?).await?),
                "DeleteStream" => req.reply(&admin::delete_stream(s, &ctx, req.decode()?).await?),
                "DescribeStream" => req.reply(&admin::describe_stream(s, &ctx, req.decode()?)?),
                "DescribeStreamSummary" => {
                    req.reply(&admin::describe_stream_summary(s, &ctx, req.decode()?)?)
                }
                "ListStreams" => req.reply(&admin::list_streams(s, &ctx, req.decode()?)?),
                "ListShards" => req.reply(&admin::list_shards(s, &ctx, req.decode()?)?),
                "AddTagsToStream" => req.reply(&admin::add_tags(s, &ctx, req.decode()?).await?),
                "RemoveTagsFromStream" => req.reply(&admin::remove_tags(s, &ctx, req.decode()?).await?),
                "ListTagsForStream" => req.reply(&admin::list_tags(s, &ctx, req.decode()?)?),
                "IncreaseStreamRetentionPeriod" => {
                    req.reply(&admin::change_retention(s, &ctx, req.decode()?, true).await?)
                }
                "DecreaseStreamRetentionPeriod" => {
                    req.reply(&admin::change_retention(s, &ctx, req.decode()?, false).await?)
                }
                "DescribeLimits" => req.reply(&admin::describe_limits(s, &ctx)?),
                "UpdateStreamMode" => req.reply(&features::update_stream_mode(s, &ctx, req.decode()?).await?),
                "StartStreamEncryption" => {
                    req.reply(&features::set_encryption(s, &ctx, req.decode()?, true).await?)
                }
                "StopStreamEncryption" => {
                    req.reply(&features::set_encryption(s, &ctx, req.decode()?, false).await?)
                }
                "EnableEnhancedMonitoring" => {
                    req.reply(&features::set_monitoring(s, &ctx, req.decode()?, true).await?)
                }
                "DisableEnhancedMonitoring" => {
                    req.reply(&features::set_monitoring(s, &ctx, req.decode()?, false).await?)
                }
                "TagResource" => req.reply(&features::tag_resource(s, &ctx, req.decode()?, true).await?),
                "UntagResource" => req.reply(&features::tag_resource(s, &ctx, req.decode()?, false).await?),
                "ListTagsForResource" => {
                    req.reply(&features::list_tags_for_resource(s, &ctx, req.decode()?)?)
                }
                "PutResourcePolicy" => req.reply(&features::put_policy(s, &ctx, req.decode()?, true).await?),
                "DeleteResourcePolicy" => {
                    req.reply(&features::put_policy(s, &ctx, req.decode()?, false).await?)
                }
                "GetResourcePolicy" => req.reply(&features::get_policy(s, &ctx, req.decode()?)?),
                "RegisterStreamConsumer" => {
                    req.reply(&features::register_consumer(s, &ctx, req.decode()?).await?)
                }
                "DescribeStreamConsumer" => req.reply(&features::describe_consumer(s, &ctx, req.decode()?)?),
                "ListStreamConsumers" => req.reply(&features::list_consumers(s, &ctx, req.decode()?)?),
                "DeregisterStreamConsumer" => {
                    req.reply(&features::deregister_consumer(s, &ctx, req.decode()?).await?)
                }
                "SplitShard" => req.reply(&reshard::split_shard(s, &ctx, req.decode()?).await?),
                "MergeShards" => req.reply(&reshard::merge_shards(s, &ctx, req.decode()?).await?),
                "UpdateShardCount" => req.reply(&reshard::update_shard_count(s, &ctx, req.decode()?).await?),
                "PutRecord" => req.reply(&records::put_record(s, &ctx, req.decode()?).await?),
                "PutRecords" => req.reply(&records::put_records(s, &ctx, req.decode()?).await?),
                "GetShardIterator" => req.reply(&records::get_shard_iterator(s, &ctx, req.decode()?)?),
                "SubscribeToShard" => {
                    let input = req.decode()?;
                    fanout::subscribe_to_shard(s, &ctx, req.encoding, input).await
                }
                "GetRecords" => req.reply(&records::get_records(s, &ctx, req.decode()?).await?),
                other => Err(ServiceError::client(
                    "UnknownOperationException",
                    format!("Operation {other} is not supported by Lakebox's Kinesis yet."),
                )),
            }
        })
    }
}
