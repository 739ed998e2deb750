//! Amazon Data Firehose for Lakebox: records put to a delivery stream (or read from a Kinesis
//! stream) are durable in the stream's own log before they are acknowledged, buffered by size
//! and time, processed (de-aggregation, jq metadata extraction, delimiters), partitioned,
//! converted to Parquet with a Glue table's schema or compressed, and written to Lakebox S3.
//!
//! - [`streams`]: definitions, logs, checkpoints.
//! - [`deliver`]: the per-stream delivery worker; [`source`]: the Kinesis reader.
//! - [`destination`], [`prefix`], [`compress`], [`process`], [`convert`], [`columnar`].

pub mod api;
pub mod columnar;
pub mod compress;
pub mod convert;
pub mod deliver;
pub mod destination;
mod errors;
pub mod http;
mod ops;
pub mod prefix;
pub mod process;
pub mod source;
pub mod streams;
pub mod transform;

use std::path::Path;
use std::sync::Arc;

use crate::api::FirehoseApi;
use lakebox_core::{Clock, RequestContext, ServiceError};
use lakebox_glue::Catalog;
use lakebox_service::BoxFuture;
use lakebox_service::events::{DeliveryError, Event, EventSink, delivery_context};
use lakebox_service::lake::Lake;
use lakebox_service::links::ShardedLog;
use lakebox_service::{RpcRequest, RpcResponse, RpcService};
use lakebox_store::StoreError;

use deliver::Deliverer;
use streams::{DeliveryStream, Streams};

/// Knobs of the Firehose service.
#[derive(Clone, Default)]
pub struct FirehoseSettings {
    /// Milliseconds a new stream stays CREATING (and a deleted one DELETING).
    pub create_delay_millis: i64,
    /// Where the streams' AWS/Firehose metrics go.
    pub metrics: lakebox_service::metrics::Recorder,
    /// Lambda, for the data transformation processor.
    pub functions: Option<Arc<dyn lakebox_service::links::FunctionInvoker>>,
}

pub struct Firehose {
    metrics: lakebox_service::metrics::Recorder,
    streams: Arc<Streams>,
    kinesis: Arc<dyn ShardedLog>,
    deliverer: Arc<Deliverer>,
}

impl Firehose {
    /// IncomingRecords, IncomingBytes and IncomingPutRequests of a direct put, in AWS/Firehose.
    fn incoming(&self, ctx: &RequestContext, stream: &str, records: usize, bytes: usize) {
        self.metrics.record_many(
            &ctx.account_id,
            &ctx.region,
            "AWS/Firehose",
            &[("DeliveryStreamName", stream)],
            &[
                ("IncomingRecords", "Count", records as f64),
                ("IncomingBytes", "Bytes", bytes as f64),
                ("IncomingPutRequests", "Count", 1.0),
            ],
        );
    }

    pub fn open(
        dir: &Path,
        clock: Arc<dyn Clock>,
        lake: Lake,
        catalog: Arc<Catalog>,
        kinesis: Arc<dyn ShardedLog>,
        settings: FirehoseSettings,
    ) -> Result<Self, StoreError> {
        let streams = Arc::new(Streams::open(dir, clock, settings.create_delay_millis)?);
        let deliverer = Arc::new(Deliverer {
            streams: streams.clone(),
            lake,
            catalog,
            metrics: settings.metrics.clone(),
            functions: settings.functions.clone(),
        });
        Ok(Firehose {
            metrics: settings.metrics,
            streams,
            kinesis,
            deliverer,
        })
    }

    /// Starts the workers of every stored stream: what was acknowledged before a restart is
    /// delivered after it.
    pub fn start_background_work(&self) -> Result<(), StoreError> {
        for s in self.streams.all().map_err(|e| StoreError::Corrupt(e.message))? {
            self.start_workers(&s);
        }
        Ok(())
    }

    fn start_workers(&self, s: &DeliveryStream) {
        let d = self.deliverer.clone();
        tokio::spawn(d.run(s.account.clone(), s.region.clone(), s.name.clone(), s.uid.clone()));
        if s.kinesis_source.is_some() {
            tokio::spawn(source::run(
                self.streams.clone(),
                self.kinesis.clone(),
                s.account.clone(),
                s.region.clone(),
                s.name.clone(),
                s.uid.clone(),
            ));
        }
    }
}

impl Firehose {
    /// Records other services put into delivery streams by ARN (SNS subscriptions, CloudWatch
    /// Logs' subscription filters), through PutRecord, as any producer's.
    pub fn event_sink(self: &Arc<Self>) -> Arc<dyn EventSink> {
        Arc::new(DeliveryStreamEvents(self.clone()))
    }
}

struct DeliveryStreamEvents(Arc<Firehose>);

impl EventSink for DeliveryStreamEvents {
    fn deliver(&self, target_arn: String, event: Event) -> BoxFuture<Result<(), DeliveryError>> {
        let firehose = self.0.clone();
        Box::pin(async move {
            let ctx = delivery_context(&target_arn, firehose.streams.now())?;
            let name = target_arn
                .rsplit_once(":deliverystream/")
                .map(|(_, n)| n.to_owned())
                .ok_or(DeliveryError::NoSuchTarget)?;
            let input = api::PutRecordInput {
                delivery_stream_name: name,
                record: api::Record {
                    data: lakebox_protocol::Blob(event.into_record()),
                },
            };
            firehose
                .put_record(&ctx, input)
                .await
                .map(drop)
                .map_err(|e| DeliveryError::from_service(&e))
        })
    }
}

impl RpcService for Firehose {
    fn call(
        self: Arc<Self>,
        ctx: RequestContext,
        req: RpcRequest,
    ) -> BoxFuture<Result<RpcResponse, ServiceError>> {
        api::dispatch(self, ctx, req)
    }
}
