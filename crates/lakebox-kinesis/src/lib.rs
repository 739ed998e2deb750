//! Amazon Kinesis Data Streams for Lakebox: a durable, sharded, ordered log with AWS semantics.
//!
//! - [`streams`]: stream metadata and one group-committed log per shard.
//! - [`hashing`], [`sequence`], [`iterator`]: partition keys to shards, sequence numbers,
//!   shard iterators.
//! - [`admin`] (streams, shards, tags, retention) and [`records`] (put and get): the operations.
//!
//! Requests arrive as awsJson 1.1 or CBOR; the shapes, their validation and the dispatch from
//! operation names are generated from the AWS model into [`api`] (see
//! `scripts/codegen/services.toml`), and [`KinesisApi`](api::KinesisApi) is implemented here.

mod admin;
pub mod api;
mod errors;
mod fanout;
mod features;
pub mod hashing;
pub mod iterator;
mod links;
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
use lakebox_service::BoxFuture;
use lakebox_service::{RpcRequest, RpcResponse, RpcService};

pub use records::decode_payload;
pub use streams::KinesisSettings;
use streams::Streams;

use crate::api::*;
use crate::model::{ConsumerRef, StreamRef};
use lakebox_protocol::rpc::RpcEncoding;
use lakebox_service::events::{DeliveryError, Event, EventSink, delivery_context};
use lakebox_service::links::ShardedLog;

pub struct Kinesis {
    streams: Arc<Streams>,
    /// Where the stream metrics AWS publishes (AWS/Kinesis) go.
    metrics: lakebox_service::metrics::Recorder,
    /// The shard-level metrics each stream has enabled (EnableEnhancedMonitoring), by
    /// (account, region, stream): looked up per call only while some stream has any.
    shard_level: Arc<std::sync::RwLock<ShardLevel>>,
}

/// Streams' enabled shard-level metrics, by (account, region, stream).
type ShardLevel = std::collections::HashMap<(String, String, String), Vec<String>>;

impl Kinesis {
    /// Starts the retention sweeper (call once, inside the runtime).
    pub fn start_background_work(&self) -> tokio::task::JoinHandle<()> {
        retention::spawn_sweeper(self.streams.clone())
    }

    /// The streams as a sharded log, for the services that read them (Firehose's Kinesis
    /// source).
    pub fn sharded_log(&self) -> Arc<dyn ShardedLog> {
        Arc::new(links::KinesisLog(self.streams.clone()))
    }

    pub fn open(
        dir: &Path,
        clock: Arc<dyn Clock>,
        settings: KinesisSettings,
    ) -> Result<Self, lakebox_store::StoreError> {
        let streams = Arc::new(Streams::open(dir, clock, settings)?);
        let shard_level = streams
            .all()
            .map_err(|e| lakebox_store::StoreError::Corrupt(e.message))?
            .into_iter()
            .filter(|s| !s.enhanced_metrics.is_empty())
            .map(|s| {
                (
                    (s.account.clone(), s.region.clone(), s.name.clone()),
                    s.enhanced_metrics.clone(),
                )
            })
            .collect();
        Ok(Kinesis {
            streams,
            metrics: Default::default(),
            shard_level: Arc::new(std::sync::RwLock::new(shard_level)),
        })
    }

    /// Publishes the streams' AWS/Kinesis metrics through `recorder` from now on.
    pub fn with_metrics(mut self, recorder: lakebox_service::metrics::Recorder) -> Self {
        self.metrics = recorder;
        self
    }

    /// Records what one call reports of a stream (dimension `StreamName`), in AWS/Kinesis.
    fn metrics(&self, ctx: &RequestContext, stream: &str, values: &[(&'static str, &'static str, f64)]) {
        self.metrics.record_many(
            &ctx.account_id,
            &ctx.region,
            "AWS/Kinesis",
            &[("StreamName", stream)],
            values,
        );
    }

    fn remember_monitoring(&self, ctx: &RequestContext, out: &EnhancedMonitoringOutput) {
        let names = out
            .desired_shard_level_metrics
            .iter()
            .flatten()
            .map(|m| m.as_str().to_owned())
            .collect();
        self.note_shard_level(ctx, out.stream_name.as_deref().unwrap_or_default(), names);
    }

    /// Records a shard's values (dimensions `StreamName` and `ShardId`) of the shard-level
    /// metrics the stream has enabled.
    fn shard_metrics(&self, ctx: &RequestContext, stream: &str, shard: &str, values: &[(&str, &str, f64)]) {
        let map = self.shard_level.read().unwrap();
        if map.is_empty() {
            return;
        }
        let Some(on) = map.get(&(ctx.account_id.clone(), ctx.region.clone(), stream.to_owned())) else {
            return;
        };
        let wanted: Vec<(&str, &str, f64)> = values
            .iter()
            .filter(|(name, _, _)| on.iter().any(|m| m == name))
            .copied()
            .collect();
        if !wanted.is_empty() {
            self.metrics.record_many(
                &ctx.account_id,
                &ctx.region,
                "AWS/Kinesis",
                &[("StreamName", stream), ("ShardId", shard)],
                &wanted,
            );
        }
    }

    /// Remembers a stream's shard-level metrics after they changed.
    fn note_shard_level(&self, ctx: &RequestContext, stream: &str, metrics: Vec<String>) {
        let key = (ctx.account_id.clone(), ctx.region.clone(), stream.to_owned());
        let mut map = self.shard_level.write().unwrap();
        if metrics.is_empty() {
            map.remove(&key);
        } else {
            map.insert(key, metrics);
        }
    }

    /// A throttled call's `*ProvisionedThroughputExceeded` value (1, else 0).
    fn throttled<T>(r: &Result<T, ServiceError>) -> f64 {
        match r {
            Err(e) if e.code == "ProvisionedThroughputExceededException" => 1.0,
            _ => 0.0,
        }
    }
}

/// The stream a request names, by `StreamName` or `StreamARN` (which must be in the caller's
/// account and region).
pub(crate) fn stream_name(ctx: &RequestContext, r: &StreamRef<'_>) -> Result<String, ServiceError> {
    match (r.stream_name, r.stream_arn) {
        (Some(n), _) => {
            validate_stream_name(n)?;
            Ok(n.to_owned())
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

impl Kinesis {
    /// Records other services put into streams by ARN (CloudWatch Logs' subscription filters),
    /// through PutRecord, so they count in the stream's metrics and limits as any producer's.
    pub fn event_sink(self: &Arc<Self>) -> Arc<dyn EventSink> {
        Arc::new(StreamEvents(self.clone()))
    }
}

struct StreamEvents(Arc<Kinesis>);

impl EventSink for StreamEvents {
    fn deliver(&self, target_arn: String, event: Event) -> BoxFuture<Result<(), DeliveryError>> {
        let kinesis = self.0.clone();
        Box::pin(async move {
            let ctx = delivery_context(&target_arn, kinesis.streams.now_millis())?;
            let input = PutRecordInput {
                partition_key: event
                    .partition_key
                    .clone()
                    .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
                data: lakebox_protocol::Blob(event.into_record()),
                stream_arn: Some(target_arn),
                ..PutRecordInput::default()
            };
            kinesis
                .put_record(&ctx, input)
                .await
                .map(drop)
                .map_err(|e| DeliveryError::from_service(&e))
        })
    }
}

impl RpcService for Kinesis {
    fn call(
        self: Arc<Self>,
        ctx: RequestContext,
        req: RpcRequest,
    ) -> BoxFuture<Result<RpcResponse, ServiceError>> {
        api::dispatch(self, ctx, req)
    }
}

/// Each operation as the model names it, handed to the module that implements it.
impl KinesisApi for Kinesis {
    async fn create_stream(
        &self,
        ctx: &RequestContext,
        input: CreateStreamInput,
    ) -> Result<(), ServiceError> {
        admin::create_stream(&self.streams, ctx, input).await
    }

    async fn delete_stream(
        &self,
        ctx: &RequestContext,
        input: DeleteStreamInput,
    ) -> Result<(), ServiceError> {
        let name = stream_name(ctx, &StreamRef::new(&input.stream_name, &input.stream_arn)).ok();
        admin::delete_stream(&self.streams, ctx, input).await?;
        if let Some(name) = name {
            self.note_shard_level(ctx, &name, Vec::new());
        }
        Ok(())
    }

    async fn describe_stream(
        &self,
        ctx: &RequestContext,
        input: DescribeStreamInput,
    ) -> Result<DescribeStreamOutput, ServiceError> {
        admin::describe_stream(&self.streams, ctx, input)
    }

    async fn describe_stream_summary(
        &self,
        ctx: &RequestContext,
        input: DescribeStreamSummaryInput,
    ) -> Result<DescribeStreamSummaryOutput, ServiceError> {
        admin::describe_stream_summary(&self.streams, ctx, input)
    }

    async fn list_streams(
        &self,
        ctx: &RequestContext,
        input: ListStreamsInput,
    ) -> Result<ListStreamsOutput, ServiceError> {
        admin::list_streams(&self.streams, ctx, input)
    }

    async fn list_shards(
        &self,
        ctx: &RequestContext,
        input: ListShardsInput,
    ) -> Result<ListShardsOutput, ServiceError> {
        admin::list_shards(&self.streams, ctx, input)
    }

    async fn add_tags_to_stream(
        &self,
        ctx: &RequestContext,
        input: AddTagsToStreamInput,
    ) -> Result<(), ServiceError> {
        admin::add_tags(&self.streams, ctx, input).await
    }

    async fn remove_tags_from_stream(
        &self,
        ctx: &RequestContext,
        input: RemoveTagsFromStreamInput,
    ) -> Result<(), ServiceError> {
        admin::remove_tags(&self.streams, ctx, input).await
    }

    async fn list_tags_for_stream(
        &self,
        ctx: &RequestContext,
        input: ListTagsForStreamInput,
    ) -> Result<ListTagsForStreamOutput, ServiceError> {
        admin::list_tags(&self.streams, ctx, input)
    }

    async fn increase_stream_retention_period(
        &self,
        ctx: &RequestContext,
        input: IncreaseStreamRetentionPeriodInput,
    ) -> Result<(), ServiceError> {
        let stream = StreamRef::new(&input.stream_name, &input.stream_arn);
        admin::change_retention(&self.streams, ctx, stream, input.retention_period_hours, true).await
    }

    async fn decrease_stream_retention_period(
        &self,
        ctx: &RequestContext,
        input: DecreaseStreamRetentionPeriodInput,
    ) -> Result<(), ServiceError> {
        let stream = StreamRef::new(&input.stream_name, &input.stream_arn);
        admin::change_retention(&self.streams, ctx, stream, input.retention_period_hours, false).await
    }

    async fn describe_limits(
        &self,
        ctx: &RequestContext,
        _input: DescribeLimitsInput,
    ) -> Result<DescribeLimitsOutput, ServiceError> {
        admin::describe_limits(&self.streams, ctx)
    }

    async fn update_stream_mode(
        &self,
        ctx: &RequestContext,
        input: UpdateStreamModeInput,
    ) -> Result<(), ServiceError> {
        features::update_stream_mode(&self.streams, ctx, input).await
    }

    async fn start_stream_encryption(
        &self,
        ctx: &RequestContext,
        input: StartStreamEncryptionInput,
    ) -> Result<(), ServiceError> {
        let stream = StreamRef::new(&input.stream_name, &input.stream_arn);
        let change = features::EncryptionChange {
            encryption_type: input.encryption_type.clone(),
            key_id: input.key_id.clone(),
        };
        features::set_encryption(&self.streams, ctx, stream, change, true).await
    }

    async fn stop_stream_encryption(
        &self,
        ctx: &RequestContext,
        input: StopStreamEncryptionInput,
    ) -> Result<(), ServiceError> {
        let stream = StreamRef::new(&input.stream_name, &input.stream_arn);
        let change = features::EncryptionChange {
            encryption_type: input.encryption_type.clone(),
            key_id: input.key_id.clone(),
        };
        features::set_encryption(&self.streams, ctx, stream, change, false).await
    }

    async fn enable_enhanced_monitoring(
        &self,
        ctx: &RequestContext,
        input: EnableEnhancedMonitoringInput,
    ) -> Result<EnhancedMonitoringOutput, ServiceError> {
        let stream = StreamRef::new(&input.stream_name, &input.stream_arn);
        let out =
            features::set_monitoring(&self.streams, ctx, stream, &input.shard_level_metrics, true).await?;
        self.remember_monitoring(ctx, &out);
        Ok(out)
    }

    async fn disable_enhanced_monitoring(
        &self,
        ctx: &RequestContext,
        input: DisableEnhancedMonitoringInput,
    ) -> Result<EnhancedMonitoringOutput, ServiceError> {
        let stream = StreamRef::new(&input.stream_name, &input.stream_arn);
        let out =
            features::set_monitoring(&self.streams, ctx, stream, &input.shard_level_metrics, false).await?;
        self.remember_monitoring(ctx, &out);
        Ok(out)
    }

    async fn tag_resource(&self, ctx: &RequestContext, input: TagResourceInput) -> Result<(), ServiceError> {
        features::tag_resource(&self.streams, ctx, &input.resource_arn, input.tags, Vec::new()).await
    }

    async fn untag_resource(
        &self,
        ctx: &RequestContext,
        input: UntagResourceInput,
    ) -> Result<(), ServiceError> {
        features::tag_resource(
            &self.streams,
            ctx,
            &input.resource_arn,
            Default::default(),
            input.tag_keys,
        )
        .await
    }

    async fn list_tags_for_resource(
        &self,
        ctx: &RequestContext,
        input: ListTagsForResourceInput,
    ) -> Result<ListTagsForResourceOutput, ServiceError> {
        features::list_tags_for_resource(&self.streams, ctx, &input.resource_arn)
    }

    async fn put_resource_policy(
        &self,
        ctx: &RequestContext,
        input: PutResourcePolicyInput,
    ) -> Result<(), ServiceError> {
        features::put_policy(&self.streams, ctx, &input.resource_arn, Some(input.policy)).await
    }

    async fn delete_resource_policy(
        &self,
        ctx: &RequestContext,
        input: DeleteResourcePolicyInput,
    ) -> Result<(), ServiceError> {
        features::put_policy(&self.streams, ctx, &input.resource_arn, None).await
    }

    async fn get_resource_policy(
        &self,
        ctx: &RequestContext,
        input: GetResourcePolicyInput,
    ) -> Result<GetResourcePolicyOutput, ServiceError> {
        features::get_policy(&self.streams, ctx, &input.resource_arn)
    }

    async fn register_stream_consumer(
        &self,
        ctx: &RequestContext,
        input: RegisterStreamConsumerInput,
    ) -> Result<RegisterStreamConsumerOutput, ServiceError> {
        features::register_consumer(&self.streams, ctx, input).await
    }

    async fn describe_stream_consumer(
        &self,
        ctx: &RequestContext,
        input: DescribeStreamConsumerInput,
    ) -> Result<DescribeStreamConsumerOutput, ServiceError> {
        let consumer = ConsumerRef {
            stream_arn: input.stream_arn.as_deref(),
            consumer_name: input.consumer_name.as_deref(),
            consumer_arn: input.consumer_arn.as_deref(),
        };
        features::describe_consumer(&self.streams, ctx, consumer)
    }

    async fn list_stream_consumers(
        &self,
        ctx: &RequestContext,
        input: ListStreamConsumersInput,
    ) -> Result<ListStreamConsumersOutput, ServiceError> {
        features::list_consumers(&self.streams, ctx, input)
    }

    async fn deregister_stream_consumer(
        &self,
        ctx: &RequestContext,
        input: DeregisterStreamConsumerInput,
    ) -> Result<(), ServiceError> {
        let consumer = ConsumerRef {
            stream_arn: input.stream_arn.as_deref(),
            consumer_name: input.consumer_name.as_deref(),
            consumer_arn: input.consumer_arn.as_deref(),
        };
        features::deregister_consumer(&self.streams, ctx, consumer).await
    }

    async fn split_shard(&self, ctx: &RequestContext, input: SplitShardInput) -> Result<(), ServiceError> {
        reshard::split_shard(&self.streams, ctx, input).await
    }

    async fn merge_shards(&self, ctx: &RequestContext, input: MergeShardsInput) -> Result<(), ServiceError> {
        reshard::merge_shards(&self.streams, ctx, input).await
    }

    async fn update_shard_count(
        &self,
        ctx: &RequestContext,
        input: UpdateShardCountInput,
    ) -> Result<UpdateShardCountOutput, ServiceError> {
        reshard::update_shard_count(&self.streams, ctx, input).await
    }

    async fn put_record(
        &self,
        ctx: &RequestContext,
        input: PutRecordInput,
    ) -> Result<PutRecordOutput, ServiceError> {
        let started = std::time::Instant::now();
        let stream = stream_name(ctx, &StreamRef::new(&input.stream_name, &input.stream_arn)).ok();
        let bytes = (input.data.0.len() + input.partition_key.len()) as f64;
        let result = records::put_record(&self.streams, ctx, input).await;
        if let Some(stream) = &stream {
            let throttled = Self::throttled(&result);
            if result.is_ok() {
                let latency = started.elapsed().as_secs_f64() * 1000.0;
                self.metrics(
                    ctx,
                    stream,
                    &[
                        ("PutRecord.Success", "Count", 1.0),
                        ("PutRecord.Bytes", "Bytes", bytes),
                        ("PutRecord.Latency", "Milliseconds", latency),
                        ("IncomingRecords", "Count", 1.0),
                        ("IncomingBytes", "Bytes", bytes),
                        ("WriteProvisionedThroughputExceeded", "Count", 0.0),
                    ],
                );
                if let Ok(out) = &result {
                    self.shard_metrics(
                        ctx,
                        stream,
                        &out.shard_id,
                        &[
                            ("IncomingRecords", "Count", 1.0),
                            ("IncomingBytes", "Bytes", bytes),
                            ("WriteProvisionedThroughputExceeded", "Count", 0.0),
                        ],
                    );
                }
            } else {
                self.metrics(
                    ctx,
                    stream,
                    &[
                        ("PutRecord.Success", "Count", 0.0),
                        ("WriteProvisionedThroughputExceeded", "Count", throttled),
                    ],
                );
            }
        }
        result
    }

    async fn put_records(
        &self,
        ctx: &RequestContext,
        input: PutRecordsInput,
    ) -> Result<PutRecordsOutput, ServiceError> {
        let started = std::time::Instant::now();
        let stream = stream_name(ctx, &StreamRef::new(&input.stream_name, &input.stream_arn)).ok();
        let sizes: Vec<f64> = input
            .records
            .iter()
            .map(|r| (r.data.0.len() + r.partition_key.len()) as f64)
            .collect();
        let result = records::put_records(&self.streams, ctx, input).await;
        if let Some(stream) = &stream {
            match &result {
                Ok(out) => {
                    let total = sizes.len() as f64;
                    let failed = out.failed_record_count.unwrap_or(0) as f64;
                    let bytes: f64 = out
                        .records
                        .iter()
                        .zip(&sizes)
                        .filter(|(r, _)| r.error_code.is_none())
                        .map(|(_, b)| b)
                        .sum();
                    let throttled = out
                        .records
                        .iter()
                        .filter(|r| r.error_code.as_deref() == Some("ProvisionedThroughputExceededException"))
                        .count() as f64;
                    let latency = started.elapsed().as_secs_f64() * 1000.0;
                    self.metrics(
                        ctx,
                        stream,
                        &[
                            ("PutRecords.TotalRecords", "Count", total),
                            ("PutRecords.SuccessfulRecords", "Count", total - failed),
                            ("PutRecords.FailedRecords", "Count", failed),
                            ("PutRecords.ThrottledRecords", "Count", throttled),
                            ("PutRecords.Bytes", "Bytes", bytes),
                            ("PutRecords.Latency", "Milliseconds", latency),
                            ("PutRecords.Success", "Count", 1.0),
                            ("IncomingRecords", "Count", total - failed),
                            ("IncomingBytes", "Bytes", bytes),
                        ],
                    );
                    if !self.shard_level.read().unwrap().is_empty() {
                        // Per shard: what it took, and what it refused for throughput.
                        let mut per_shard: std::collections::BTreeMap<&str, [f64; 3]> = Default::default();
                        for (r, size) in out.records.iter().zip(&sizes) {
                            let Some(shard) = r.shard_id.as_deref() else {
                                continue;
                            };
                            let e = per_shard.entry(shard).or_default();
                            match r.error_code.as_deref() {
                                None => {
                                    e[0] += 1.0;
                                    e[1] += size;
                                }
                                Some("ProvisionedThroughputExceededException") => e[2] += 1.0,
                                Some(_) => {}
                            }
                        }
                        for (shard, [n, b, throttled]) in per_shard {
                            self.shard_metrics(
                                ctx,
                                stream,
                                shard,
                                &[
                                    ("IncomingRecords", "Count", n),
                                    ("IncomingBytes", "Bytes", b),
                                    ("WriteProvisionedThroughputExceeded", "Count", throttled),
                                ],
                            );
                        }
                    }
                }
                Err(_) => self.metrics(
                    ctx,
                    stream,
                    &[
                        ("PutRecords.Success", "Count", 0.0),
                        (
                            "WriteProvisionedThroughputExceeded",
                            "Count",
                            Self::throttled(&result),
                        ),
                    ],
                ),
            }
        }
        result
    }

    async fn get_shard_iterator(
        &self,
        ctx: &RequestContext,
        input: GetShardIteratorInput,
    ) -> Result<GetShardIteratorOutput, ServiceError> {
        records::get_shard_iterator(&self.streams, ctx, input)
    }

    async fn subscribe_to_shard(
        &self,
        ctx: &RequestContext,
        input: SubscribeToShardInput,
        encoding: RpcEncoding,
    ) -> Result<RpcResponse, ServiceError> {
        fanout::subscribe_to_shard(&self.streams, ctx, encoding, input).await
    }

    async fn get_records(
        &self,
        ctx: &RequestContext,
        input: GetRecordsInput,
    ) -> Result<GetRecordsOutput, ServiceError> {
        let started = std::time::Instant::now();
        let position = iterator::ShardIterator::decode(&input.shard_iterator);
        let shard = position.as_ref().map(|it| it.shard_id.clone());
        let stream = position.map(|it| it.stream_name);
        let result = records::get_records(&self.streams, ctx, input).await;
        if let Some(stream) = &stream {
            match &result {
                Ok(out) => {
                    let n = out.records.len() as f64;
                    let bytes = out
                        .records
                        .iter()
                        .map(|r| r.data.0.len() + r.partition_key.len())
                        .sum::<usize>() as f64;
                    let age = out.millis_behind_latest.unwrap_or(0) as f64;
                    let latency = started.elapsed().as_secs_f64() * 1000.0;
                    self.metrics(
                        ctx,
                        stream,
                        &[
                            ("GetRecords.Success", "Count", 1.0),
                            ("GetRecords.Records", "Count", n),
                            ("GetRecords.Bytes", "Bytes", bytes),
                            ("GetRecords.IteratorAgeMilliseconds", "Milliseconds", age),
                            ("GetRecords.Latency", "Milliseconds", latency),
                            ("OutgoingRecords", "Count", n),
                            ("OutgoingBytes", "Bytes", bytes),
                            ("ReadProvisionedThroughputExceeded", "Count", 0.0),
                        ],
                    );
                    if let Some(shard) = &shard {
                        self.shard_metrics(
                            ctx,
                            stream,
                            shard,
                            &[
                                ("OutgoingRecords", "Count", n),
                                ("OutgoingBytes", "Bytes", bytes),
                                ("IteratorAgeMilliseconds", "Milliseconds", age),
                                ("ReadProvisionedThroughputExceeded", "Count", 0.0),
                            ],
                        );
                    }
                }
                Err(_) => self.metrics(
                    ctx,
                    stream,
                    &[
                        ("GetRecords.Success", "Count", 0.0),
                        (
                            "ReadProvisionedThroughputExceeded",
                            "Count",
                            Self::throttled(&result),
                        ),
                    ],
                ),
            }
        }
        result
    }
}
