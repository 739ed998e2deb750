//! Amazon CloudWatch for Lakebox: custom metrics with CloudWatch's statistics and retention,
//! and dashboards, over all three of CloudWatch's protocols — smithy rpc-v2-cbor (today's
//! SDKs), awsJson 1.0 and awsQuery (older ones) — answered in the protocol of the request.
//!
//! - [`api`]: the generated shapes, validation and dispatchers.
//! - `put`: PutMetricData's checks; `metrics`: the durable metric store; `stats`: the
//!   statistics; `query`: GetMetricStatistics, GetMetricData and ListMetrics.
//! - `alarms`: metric alarms, their history and evaluation, and the actions of their
//!   transitions (SNS topics, through the event links the binary wires).
//! - `composite`: composite alarms and their rule language.
//! - `anomaly`: anomaly detectors and the band of expected values alarms compare with.
//! - `dashboards`: dashboards and tags.

mod alarms;
mod anomaly;
pub mod api;
mod composite;
mod dashboards;
mod errors;
mod math;
mod metrics;
mod put;
mod query;
mod search;
mod stats;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use lakebox_core::clock::Clock;
use lakebox_core::{RequestContext, ServiceError};
use lakebox_protocol::query::QueryRequest;
use lakebox_service::events::EventSink;
use lakebox_service::{BoxFuture, QueryService, RpcRequest, RpcResponse, RpcService};
use lakebox_store::{MetaStore, StoreError};

use crate::api::*;

/// How often old metric data is rolled up and expired.
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// How often alarms are evaluated: as often as CloudWatch evaluates its high-resolution ones.
pub const DEFAULT_ALARM_TICK: Duration = Duration::from_secs(10);

pub struct CloudWatch {
    clock: Arc<dyn Clock>,
    meta: MetaStore,
    metrics: metrics::Metrics,
    /// Where alarm actions go (SNS topics), once the binary plugs the links in.
    actions: std::sync::OnceLock<Arc<dyn EventSink>>,
}

impl CloudWatch {
    /// Opens the dashboards and the metric data in `dir`.
    pub fn open(dir: &Path, clock: Arc<dyn Clock>) -> Result<Arc<Self>, StoreError> {
        std::fs::create_dir_all(dir)?;
        Ok(Arc::new(CloudWatch {
            meta: MetaStore::open(&dir.join("meta.redb"))?,
            metrics: metrics::Metrics::open(&dir.join("metrics"), clock.clone())?,
            clock,
            actions: std::sync::OnceLock::new(),
        }))
    }

    /// Stores the metrics Lakebox's services gathered (their AWS namespaces), every `every`.
    pub fn start_service_metrics(
        self: &Arc<Self>,
        from: Arc<lakebox_service::metrics::Aggregator>,
        every: Duration,
    ) -> tokio::task::JoinHandle<()> {
        lakebox_service::tasks::every(self, every, move |cw| {
            let samples = from.drain();
            async move {
                if samples.is_empty() {
                    return;
                }
                let data = samples.into_iter().map(put::service_datum).collect();
                if let Err(e) = cw.metrics.put(data).await {
                    tracing::warn!("could not store service metrics: {e}");
                }
            }
        })
    }

    /// Evaluates the alarms every `tick` from now on, sending their actions to `actions`.
    pub fn start_alarm_evaluation(
        self: &Arc<Self>,
        actions: Arc<dyn EventSink>,
        tick: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let _ = self.actions.set(actions);
        lakebox_service::tasks::every(self, tick, |cw| async move {
            alarms::evaluate_all(&cw.meta, &cw.metrics, cw.actions.get()).await;
        })
    }

    /// Rolls metric data up and expires it as it ages (call once, inside the runtime).
    pub fn start_background_work(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        lakebox_service::tasks::every(self, SWEEP_INTERVAL, |cw| async move {
            let _ = tokio::task::spawn_blocking(move || cw.metrics.roll_up()).await;
        })
    }
}

impl CloudWatchApi for CloudWatch {
    async fn put_metric_data(
        &self,
        ctx: &RequestContext,
        input: PutMetricDataInput,
    ) -> Result<(), ServiceError> {
        let data = put::data(ctx, input, self.clock.now_millis())?;
        self.metrics.put(data).await
    }

    async fn get_metric_statistics(
        &self,
        ctx: &RequestContext,
        input: GetMetricStatisticsInput,
    ) -> Result<GetMetricStatisticsOutput, ServiceError> {
        query::get_metric_statistics(&self.metrics, ctx, input)
    }

    async fn get_metric_data(
        &self,
        ctx: &RequestContext,
        input: GetMetricDataInput,
    ) -> Result<GetMetricDataOutput, ServiceError> {
        query::get_metric_data(&self.metrics, ctx, input, &|k, stat| {
            anomaly::excluded(&self.meta, k, stat)
        })
    }

    async fn list_metrics(
        &self,
        ctx: &RequestContext,
        input: ListMetricsInput,
    ) -> Result<ListMetricsOutput, ServiceError> {
        query::list_metrics(&self.metrics, ctx, input)
    }

    async fn put_dashboard(
        &self,
        ctx: &RequestContext,
        input: PutDashboardInput,
    ) -> Result<PutDashboardOutput, ServiceError> {
        dashboards::put(&self.meta, ctx, input, self.clock.now_millis()).await
    }

    async fn get_dashboard(
        &self,
        ctx: &RequestContext,
        input: GetDashboardInput,
    ) -> Result<GetDashboardOutput, ServiceError> {
        dashboards::get(&self.meta, ctx, input)
    }

    async fn list_dashboards(
        &self,
        ctx: &RequestContext,
        input: ListDashboardsInput,
    ) -> Result<ListDashboardsOutput, ServiceError> {
        dashboards::list(&self.meta, ctx, input)
    }

    async fn delete_dashboards(
        &self,
        ctx: &RequestContext,
        input: DeleteDashboardsInput,
    ) -> Result<DeleteDashboardsOutput, ServiceError> {
        dashboards::delete(&self.meta, ctx, input).await?;
        Ok(DeleteDashboardsOutput {})
    }

    async fn tag_resource(
        &self,
        ctx: &RequestContext,
        input: TagResourceInput,
    ) -> Result<TagResourceOutput, ServiceError> {
        let new = input.tags.clone();
        let alarm = alarms::change_tags(&self.meta, ctx, &input.resource_arn, move |tags| {
            dashboards::merge_tags(tags, new)
        })
        .await?;
        if !alarm {
            dashboards::tag(&self.meta, ctx, input).await?;
        }
        Ok(TagResourceOutput {})
    }

    async fn untag_resource(
        &self,
        ctx: &RequestContext,
        input: UntagResourceInput,
    ) -> Result<UntagResourceOutput, ServiceError> {
        let keys = input.tag_keys.clone();
        let alarm = alarms::change_tags(&self.meta, ctx, &input.resource_arn, move |tags| {
            tags.retain(|(k, _)| !keys.contains(k))
        })
        .await?;
        if !alarm {
            dashboards::untag(&self.meta, ctx, input).await?;
        }
        Ok(UntagResourceOutput {})
    }

    async fn list_tags_for_resource(
        &self,
        ctx: &RequestContext,
        input: ListTagsForResourceInput,
    ) -> Result<ListTagsForResourceOutput, ServiceError> {
        match alarms::tags(&self.meta, ctx, &input.resource_arn)? {
            Some(tags) => Ok(ListTagsForResourceOutput {
                tags: Some(tags.into_iter().map(|(key, value)| Tag { key, value }).collect()),
            }),
            None => dashboards::list_tags(&self.meta, ctx, input),
        }
    }

    async fn put_anomaly_detector(
        &self,
        ctx: &RequestContext,
        input: PutAnomalyDetectorInput,
    ) -> Result<PutAnomalyDetectorOutput, ServiceError> {
        anomaly::put(&self.meta, ctx, input).await?;
        Ok(PutAnomalyDetectorOutput {})
    }

    async fn describe_anomaly_detectors(
        &self,
        ctx: &RequestContext,
        input: DescribeAnomalyDetectorsInput,
    ) -> Result<DescribeAnomalyDetectorsOutput, ServiceError> {
        anomaly::describe(&self.meta, &self.metrics, ctx, input, self.clock.now_millis())
    }

    async fn delete_anomaly_detector(
        &self,
        ctx: &RequestContext,
        input: DeleteAnomalyDetectorInput,
    ) -> Result<DeleteAnomalyDetectorOutput, ServiceError> {
        anomaly::delete(&self.meta, ctx, input).await?;
        Ok(DeleteAnomalyDetectorOutput {})
    }

    async fn put_metric_alarm(
        &self,
        ctx: &RequestContext,
        input: PutMetricAlarmInput,
    ) -> Result<(), ServiceError> {
        alarms::put(&self.meta, ctx, input, self.clock.now_millis()).await
    }

    async fn put_composite_alarm(
        &self,
        ctx: &RequestContext,
        input: PutCompositeAlarmInput,
    ) -> Result<(), ServiceError> {
        composite::put(&self.meta, ctx, input, self.clock.now_millis()).await
    }

    async fn describe_alarms(
        &self,
        ctx: &RequestContext,
        input: DescribeAlarmsInput,
    ) -> Result<DescribeAlarmsOutput, ServiceError> {
        alarms::describe(&self.meta, ctx, input)
    }

    async fn describe_alarms_for_metric(
        &self,
        ctx: &RequestContext,
        input: DescribeAlarmsForMetricInput,
    ) -> Result<DescribeAlarmsForMetricOutput, ServiceError> {
        alarms::describe_for_metric(&self.meta, ctx, input)
    }

    async fn delete_alarms(
        &self,
        ctx: &RequestContext,
        input: DeleteAlarmsInput,
    ) -> Result<(), ServiceError> {
        alarms::delete(&self.meta, ctx, input.alarm_names).await
    }

    async fn set_alarm_state(
        &self,
        ctx: &RequestContext,
        input: SetAlarmStateInput,
    ) -> Result<(), ServiceError> {
        alarms::set_state(
            &self.meta,
            self.actions.get(),
            ctx,
            input,
            self.clock.now_millis(),
        )
        .await
    }

    async fn enable_alarm_actions(
        &self,
        ctx: &RequestContext,
        input: EnableAlarmActionsInput,
    ) -> Result<(), ServiceError> {
        alarms::set_actions_enabled(&self.meta, ctx, input.alarm_names, true).await
    }

    async fn disable_alarm_actions(
        &self,
        ctx: &RequestContext,
        input: DisableAlarmActionsInput,
    ) -> Result<(), ServiceError> {
        alarms::set_actions_enabled(&self.meta, ctx, input.alarm_names, false).await
    }

    async fn describe_alarm_history(
        &self,
        ctx: &RequestContext,
        input: DescribeAlarmHistoryInput,
    ) -> Result<DescribeAlarmHistoryOutput, ServiceError> {
        alarms::history(&self.meta, ctx, input)
    }
}

impl RpcService for CloudWatch {
    fn call(
        self: Arc<Self>,
        ctx: RequestContext,
        req: RpcRequest,
    ) -> BoxFuture<Result<RpcResponse, ServiceError>> {
        api::dispatch(self, ctx, req)
    }
}

impl QueryService for CloudWatch {
    fn call(
        self: Arc<Self>,
        ctx: RequestContext,
        req: QueryRequest,
    ) -> BoxFuture<Result<String, ServiceError>> {
        api::dispatch_query(self, ctx, req)
    }
}
