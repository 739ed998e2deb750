//! Amazon CloudWatch for Lakebox: custom metrics with CloudWatch's statistics and retention,
//! and dashboards, over all three of CloudWatch's protocols — smithy rpc-v2-cbor (today's
//! SDKs), awsJson 1.0 and awsQuery (older ones) — answered in the protocol of the request.
//!
//! - [`api`]: the generated shapes, validation and dispatchers.
//! - `put`: PutMetricData's checks; `metrics`: the durable metric store; `stats`: the
//!   statistics; `query`: GetMetricStatistics, GetMetricData and ListMetrics.
//! - `dashboards`: dashboards and tags.
//!
//! Not here yet: alarms, metric math, and the metrics of Lakebox's own services.

pub mod api;
mod dashboards;
mod errors;
mod metrics;
mod put;
mod query;
mod stats;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use lakebox_core::clock::Clock;
use lakebox_core::{RequestContext, ServiceError};
use lakebox_protocol::query::QueryRequest;
use lakebox_service::{BoxFuture, QueryService, RpcRequest, RpcResponse, RpcService};
use lakebox_store::{MetaStore, StoreError};

use crate::api::*;

/// How often old metric data is rolled up and expired.
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

pub struct CloudWatch {
    clock: Arc<dyn Clock>,
    meta: MetaStore,
    metrics: metrics::Metrics,
}

impl CloudWatch {
    /// Opens the dashboards and the metric data in `dir`.
    pub fn open(dir: &Path, clock: Arc<dyn Clock>) -> Result<Arc<Self>, StoreError> {
        std::fs::create_dir_all(dir)?;
        Ok(Arc::new(CloudWatch {
            meta: MetaStore::open(&dir.join("meta.redb"))?,
            metrics: metrics::Metrics::open(&dir.join("metrics"), clock.clone())?,
            clock,
        }))
    }

    /// Rolls metric data up and expires it as it ages (call once, inside the runtime).
    pub fn start_background_work(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SWEEP_INTERVAL);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(cw) = me.upgrade() else { return };
                let _ = tokio::task::spawn_blocking(move || cw.metrics.roll_up()).await;
            }
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
        query::get_metric_data(&self.metrics, ctx, input)
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
        dashboards::tag(&self.meta, ctx, input).await?;
        Ok(TagResourceOutput {})
    }

    async fn untag_resource(
        &self,
        ctx: &RequestContext,
        input: UntagResourceInput,
    ) -> Result<UntagResourceOutput, ServiceError> {
        dashboards::untag(&self.meta, ctx, input).await?;
        Ok(UntagResourceOutput {})
    }

    async fn list_tags_for_resource(
        &self,
        ctx: &RequestContext,
        input: ListTagsForResourceInput,
    ) -> Result<ListTagsForResourceOutput, ServiceError> {
        dashboards::list_tags(&self.meta, ctx, input)
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
