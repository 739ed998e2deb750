//! Amazon CloudWatch Logs for Lakebox (awsJson 1.1, `Logs_20140328`): log groups and streams
//! with durable events, the filter-pattern language, metric filters feeding CloudWatch,
//! subscription filters delivering to Kinesis and Firehose, and export to S3.
//!
//! - [`api`]: the generated shapes, validation and dispatcher.
//! - `store`: groups, streams and their events (a durable log per group, events in memory).
//! - `groups`: the group and stream operations, retention, KMS keys and tags.
//! - `events`: PutLogEvents, GetLogEvents, FilterLogEvents.
//! - `pattern`: the filter-pattern language.
//! - `filters`: metric filters and subscription filters (and their delivery).
//! - `export`: export tasks to S3.
//! - `insights`: Logs Insights queries.
//! - `livetail`: Live Tail sessions over an event stream.
//!
//! Not here yet: destinations for cross-account delivery,
//! Lambda subscription destinations.

pub mod api;
mod errors;
mod events;
mod export;
mod filters;
mod groups;
mod insights;
mod jsonscan;
mod livetail;
mod pages;
mod pattern;
mod scan;
mod store;

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use lakebox_core::clock::Clock;
use lakebox_core::{RequestContext, ServiceError};
use lakebox_service::events::EventSink;
use lakebox_service::lake::Lake;
use lakebox_service::metrics::Recorder;
use lakebox_service::{BoxFuture, RpcRequest, RpcResponse, RpcService};
use lakebox_store::StoreError;

use crate::api::*;
use crate::store::Store;

/// How often events past their group's retention are dropped.
const RETENTION_SWEEP: Duration = Duration::from_secs(60);

pub struct Logs {
    store: Arc<Store>,
    /// Where metric filters publish (CloudWatch, through the service-metrics link).
    metrics: OnceLock<Recorder>,
    /// Where subscription filters deliver (Kinesis streams, Firehose delivery streams).
    destinations: OnceLock<Arc<dyn EventSink>>,
    /// Where export tasks write.
    lake: OnceLock<Lake>,
    /// Wakes subscription delivery after each PutLogEvents.
    wake: Arc<tokio::sync::Notify>,
    /// Logs Insights queries, running and finished.
    queries: Arc<insights::Queries>,
    /// Live Tail sessions' feed of new events.
    tail: livetail::Tail,
}

impl Logs {
    pub fn open(dir: &Path, clock: Arc<dyn Clock>) -> Result<Arc<Self>, StoreError> {
        Ok(Arc::new(Logs {
            store: Arc::new(Store::open(dir, clock)?),
            metrics: OnceLock::new(),
            destinations: OnceLock::new(),
            lake: OnceLock::new(),
            wake: Arc::new(tokio::sync::Notify::new()),
            queries: Arc::default(),
            tail: livetail::Tail::default(),
        }))
    }

    /// Metric filters publish through `recorder`.
    pub fn set_metrics(&self, recorder: Recorder) {
        let _ = self.metrics.set(recorder);
    }

    /// Export tasks write into `lake`.
    pub fn set_lake(&self, lake: Lake) {
        let _ = self.lake.set(lake);
    }

    /// Delivers subscription filters' events to `destinations` from now on (call once, inside
    /// the runtime).
    pub fn start_subscription_delivery(
        self: &Arc<Self>,
        destinations: Arc<dyn EventSink>,
    ) -> tokio::task::JoinHandle<()> {
        let _ = self.destinations.set(destinations.clone());
        tokio::spawn(filters::run_delivery(
            self.store.clone(),
            destinations,
            self.wake.clone(),
        ))
    }

    /// Drops events past their group's retention and puts streams written out of time order
    /// in order in memory (call once, inside the runtime).
    pub fn start_background_work(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        lakebox_service::tasks::every(self, RETENTION_SWEEP, |logs| async move {
            let store = logs.store.clone();
            let _ = tokio::task::spawn_blocking(move || {
                store.apply_retention();
                store.compact_streams();
            })
            .await;
        })
    }
}

impl LogsApi for Logs {
    async fn create_log_group(
        &self,
        ctx: &RequestContext,
        input: CreateLogGroupRequest,
    ) -> Result<(), ServiceError> {
        groups::create_group(&self.store, ctx, input).await
    }

    async fn delete_log_group(
        &self,
        ctx: &RequestContext,
        input: DeleteLogGroupRequest,
    ) -> Result<(), ServiceError> {
        groups::delete_group(&self.store, ctx, &input.log_group_name).await
    }

    async fn describe_log_groups(
        &self,
        ctx: &RequestContext,
        input: DescribeLogGroupsRequest,
    ) -> Result<DescribeLogGroupsResponse, ServiceError> {
        groups::describe_groups(&self.store, ctx, input)
    }

    async fn list_log_groups(
        &self,
        ctx: &RequestContext,
        input: ListLogGroupsRequest,
    ) -> Result<ListLogGroupsResponse, ServiceError> {
        groups::list_groups(&self.store, ctx, input)
    }

    async fn create_log_stream(
        &self,
        ctx: &RequestContext,
        input: CreateLogStreamRequest,
    ) -> Result<(), ServiceError> {
        groups::create_stream(&self.store, ctx, input).await
    }

    async fn delete_log_stream(
        &self,
        ctx: &RequestContext,
        input: DeleteLogStreamRequest,
    ) -> Result<(), ServiceError> {
        groups::delete_stream(&self.store, ctx, input).await
    }

    async fn describe_log_streams(
        &self,
        ctx: &RequestContext,
        input: DescribeLogStreamsRequest,
    ) -> Result<DescribeLogStreamsResponse, ServiceError> {
        groups::describe_streams(&self.store, ctx, input)
    }

    async fn put_log_events(
        &self,
        ctx: &RequestContext,
        input: PutLogEventsRequest,
    ) -> Result<PutLogEventsResponse, ServiceError> {
        let (group, stream) =
            events::target(&self.store, ctx, &input.log_group_name, &input.log_stream_name)?;
        let accepted = events::admit(
            &input.log_events,
            self.store.now(),
            group.retained_from(self.store.now()),
        )?;
        let mut offset = 0;
        if !accepted.events.is_empty() {
            offset = self.store.put_events(&group, &stream, &accepted.events).await?;
            if let Some(m) = self.metrics.get() {
                filters::publish_metrics(m, &group, &accepted.events);
            }
            if !group.config.lock().unwrap().subscriptions.is_empty() {
                self.wake.notify_one();
            }
            if self.tail.listening() {
                self.tail.publish(livetail::Batch {
                    group: group.key.clone(),
                    group_arn: group.arn(),
                    stream: stream.name.clone(),
                    ingestion: self.store.now(),
                    events: accepted
                        .events
                        .iter()
                        .map(|(t, m)| (*t, (*m).to_owned()))
                        .collect(),
                });
            }
        }
        Ok(PutLogEventsResponse {
            next_sequence_token: Some(format!("{:056}", offset + 1)),
            rejected_log_events_info: accepted.rejected,
            rejected_entity_info: None,
        })
    }

    async fn get_log_events(
        &self,
        ctx: &RequestContext,
        input: GetLogEventsRequest,
    ) -> Result<GetLogEventsResponse, ServiceError> {
        events::get(&self.store, ctx, input)
    }

    async fn filter_log_events(
        &self,
        ctx: &RequestContext,
        input: FilterLogEventsRequest,
    ) -> Result<FilterLogEventsResponse, ServiceError> {
        let store = self.store.clone();
        let ctx = ctx.clone();
        // A search may scan millions of events: off the request threads.
        tokio::task::spawn_blocking(move || events::filter(&store, &ctx, input))
            .await
            .map_err(store::internal)?
    }

    async fn put_retention_policy(
        &self,
        ctx: &RequestContext,
        input: PutRetentionPolicyRequest,
    ) -> Result<(), ServiceError> {
        groups::put_retention(&self.store, ctx, input).await
    }

    async fn delete_retention_policy(
        &self,
        ctx: &RequestContext,
        input: DeleteRetentionPolicyRequest,
    ) -> Result<(), ServiceError> {
        groups::delete_retention(&self.store, ctx, &input.log_group_name).await
    }

    async fn associate_kms_key(
        &self,
        ctx: &RequestContext,
        input: AssociateKmsKeyRequest,
    ) -> Result<(), ServiceError> {
        groups::set_kms_key(
            &self.store,
            ctx,
            input.log_group_name,
            input.resource_identifier,
            Some(input.kms_key_id),
        )
        .await
    }

    async fn disassociate_kms_key(
        &self,
        ctx: &RequestContext,
        input: DisassociateKmsKeyRequest,
    ) -> Result<(), ServiceError> {
        groups::set_kms_key(
            &self.store,
            ctx,
            input.log_group_name,
            input.resource_identifier,
            None,
        )
        .await
    }

    async fn tag_log_group(
        &self,
        ctx: &RequestContext,
        input: TagLogGroupRequest,
    ) -> Result<(), ServiceError> {
        let group = groups::existing(&self.store, ctx, &input.log_group_name)?;
        groups::change_tags(&self.store, &group, input.tags, &[]).await
    }

    async fn untag_log_group(
        &self,
        ctx: &RequestContext,
        input: UntagLogGroupRequest,
    ) -> Result<(), ServiceError> {
        let group = groups::existing(&self.store, ctx, &input.log_group_name)?;
        groups::change_tags(&self.store, &group, Default::default(), &input.tags).await
    }

    async fn list_tags_log_group(
        &self,
        ctx: &RequestContext,
        input: ListTagsLogGroupRequest,
    ) -> Result<ListTagsLogGroupResponse, ServiceError> {
        let group = groups::existing(&self.store, ctx, &input.log_group_name)?;
        Ok(ListTagsLogGroupResponse {
            tags: Some(group.config.lock().unwrap().tags.clone()),
        })
    }

    async fn tag_resource(
        &self,
        ctx: &RequestContext,
        input: TagResourceRequest,
    ) -> Result<(), ServiceError> {
        let group = groups::tagged(&self.store, ctx, &input.resource_arn)?;
        groups::change_tags(&self.store, &group, input.tags, &[]).await
    }

    async fn untag_resource(
        &self,
        ctx: &RequestContext,
        input: UntagResourceRequest,
    ) -> Result<(), ServiceError> {
        let group = groups::tagged(&self.store, ctx, &input.resource_arn)?;
        groups::change_tags(&self.store, &group, Default::default(), &input.tag_keys).await
    }

    async fn list_tags_for_resource(
        &self,
        ctx: &RequestContext,
        input: ListTagsForResourceRequest,
    ) -> Result<ListTagsForResourceResponse, ServiceError> {
        let group = groups::tagged(&self.store, ctx, &input.resource_arn)?;
        Ok(ListTagsForResourceResponse {
            tags: Some(group.config.lock().unwrap().tags.clone()),
        })
    }

    async fn put_metric_filter(
        &self,
        ctx: &RequestContext,
        input: PutMetricFilterRequest,
    ) -> Result<(), ServiceError> {
        filters::put_metric_filter(&self.store, ctx, input).await
    }

    async fn describe_metric_filters(
        &self,
        ctx: &RequestContext,
        input: DescribeMetricFiltersRequest,
    ) -> Result<DescribeMetricFiltersResponse, ServiceError> {
        filters::describe_metric_filters(&self.store, ctx, input)
    }

    async fn delete_metric_filter(
        &self,
        ctx: &RequestContext,
        input: DeleteMetricFilterRequest,
    ) -> Result<(), ServiceError> {
        filters::delete_metric_filter(&self.store, ctx, input).await
    }

    async fn test_metric_filter(
        &self,
        _ctx: &RequestContext,
        input: TestMetricFilterRequest,
    ) -> Result<TestMetricFilterResponse, ServiceError> {
        filters::test_metric_filter(input)
    }

    async fn put_subscription_filter(
        &self,
        ctx: &RequestContext,
        input: PutSubscriptionFilterRequest,
    ) -> Result<(), ServiceError> {
        filters::put_subscription_filter(&self.store, ctx, input, self.destinations.get()).await
    }

    async fn describe_subscription_filters(
        &self,
        ctx: &RequestContext,
        input: DescribeSubscriptionFiltersRequest,
    ) -> Result<DescribeSubscriptionFiltersResponse, ServiceError> {
        filters::describe_subscription_filters(&self.store, ctx, input)
    }

    async fn delete_subscription_filter(
        &self,
        ctx: &RequestContext,
        input: DeleteSubscriptionFilterRequest,
    ) -> Result<(), ServiceError> {
        filters::delete_subscription_filter(&self.store, ctx, input).await
    }

    async fn create_export_task(
        &self,
        ctx: &RequestContext,
        input: CreateExportTaskRequest,
    ) -> Result<CreateExportTaskResponse, ServiceError> {
        export::create(&self.store, self.lake.get(), ctx, input).await
    }

    async fn describe_export_tasks(
        &self,
        ctx: &RequestContext,
        input: DescribeExportTasksRequest,
    ) -> Result<DescribeExportTasksResponse, ServiceError> {
        export::describe(&self.store, ctx, input)
    }

    async fn start_query(
        &self,
        ctx: &RequestContext,
        input: StartQueryRequest,
    ) -> Result<StartQueryResponse, ServiceError> {
        insights::start(&self.store, &self.queries, ctx, input)
    }

    async fn get_query_results(
        &self,
        ctx: &RequestContext,
        input: GetQueryResultsRequest,
    ) -> Result<GetQueryResultsResponse, ServiceError> {
        insights::results(&self.queries, ctx, input)
    }

    async fn stop_query(
        &self,
        ctx: &RequestContext,
        input: StopQueryRequest,
    ) -> Result<StopQueryResponse, ServiceError> {
        insights::stop(&self.queries, ctx, &input.query_id)
    }

    async fn describe_queries(
        &self,
        ctx: &RequestContext,
        input: DescribeQueriesRequest,
    ) -> Result<DescribeQueriesResponse, ServiceError> {
        insights::describe(&self.queries, ctx, input)
    }

    async fn start_live_tail(
        &self,
        ctx: &RequestContext,
        input: StartLiveTailRequest,
        encoding: lakebox_protocol::rpc::RpcEncoding,
    ) -> Result<RpcResponse, ServiceError> {
        livetail::start(&self.store, &self.tail, ctx, input, encoding)
    }

    async fn cancel_export_task(
        &self,
        ctx: &RequestContext,
        input: CancelExportTaskRequest,
    ) -> Result<(), ServiceError> {
        export::cancel(&self.store, ctx, &input.task_id).await
    }
}

impl RpcService for Logs {
    fn call(
        self: Arc<Self>,
        ctx: RequestContext,
        req: RpcRequest,
    ) -> BoxFuture<Result<RpcResponse, ServiceError>> {
        api::dispatch(self, ctx, req)
    }
}

/// Other services' own log output (Lambda's function logs), written as PutLogEvents would
/// write it, the group and stream made when missing.
struct Writer(Arc<Logs>);

impl Logs {
    pub fn log_writer(self: &Arc<Self>) -> Arc<dyn lakebox_service::links::LogWriter> {
        Arc::new(Writer(self.clone()))
    }
}

/// Whether an error only says the group or stream is there already.
fn exists_already(r: Result<(), ServiceError>) -> Result<(), ServiceError> {
    match r {
        Err(e) if e.code == "ResourceAlreadyExistsException" => Ok(()),
        other => other,
    }
}

impl lakebox_service::links::LogWriter for Writer {
    fn write(
        &self,
        account: &str,
        region: &str,
        group: &str,
        stream: &str,
        lines: Vec<lakebox_service::links::LogLine>,
    ) -> BoxFuture<Result<(), ServiceError>> {
        let logs = self.0.clone();
        let ctx = RequestContext::internal(account, region, logs.store.now());
        let (group, stream) = (group.to_owned(), stream.to_owned());
        Box::pin(async move {
            if events::target(&logs.store, &ctx, &group, &stream).is_err() {
                let g = CreateLogGroupRequest {
                    log_group_name: group.clone(),
                    ..Default::default()
                };
                exists_already(logs.create_log_group(&ctx, g).await)?;
                let s = CreateLogStreamRequest {
                    log_group_name: group.clone(),
                    log_stream_name: stream.clone(),
                };
                exists_already(logs.create_log_stream(&ctx, s).await)?;
            }
            // PutLogEvents' batch limits: 10,000 events, 1 MB counting 26 bytes an event.
            let mut batch: Vec<InputLogEvent> = Vec::new();
            let mut bytes = 0;
            let mut lines = lines.into_iter().peekable();
            while let Some(line) = lines.next() {
                bytes += line.message.len() + 26;
                batch.push(InputLogEvent {
                    timestamp: line.timestamp_millis,
                    message: line.message,
                });
                let full = batch.len() == 10_000
                    || lines
                        .peek()
                        .is_some_and(|n| bytes + n.message.len() + 26 > 1_000_000);
                if full || lines.peek().is_none() {
                    let req = PutLogEventsRequest {
                        log_group_name: group.clone(),
                        log_stream_name: stream.clone(),
                        log_events: std::mem::take(&mut batch),
                        ..Default::default()
                    };
                    logs.put_log_events(&ctx, req).await?;
                    bytes = 0;
                }
            }
            Ok(())
        })
    }
}
