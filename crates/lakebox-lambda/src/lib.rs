//! AWS Lambda for Lakebox (restJson1, `/2015-03-31/functions/…`): functions kept durably,
//! their zip packages stored by hash, and each invocation run in a child process driven
//! through the Lambda Runtime API — no Docker. See docs/lambda.md and decision 0015.
//!
//! - [`api`]: the generated operation layer (shapes, validation, routing by URI template).
//! - `functions`: the function records and the operations on them.
//! - `versions`: published versions and aliases.
//! - `invoke`: the Invoke operation.
//! - `asynchronous`: the durable queue of asynchronous invocations, their retries and
//!   destinations, and event invoke configurations.
//! - `concurrency`: reserved concurrency and throttling.
//! - `urls`: function URLs and the HTTP requests they take.
//! - `layers`: layer versions, and the merged tree a function's environments see.
//! - `esm`: event source mappings (Kinesis, DynamoDB Streams, SQS) and their pollers;
//!   `stream_batch` one batch of a stream source, `filter` their FilterCriteria.
//! - `runtime`: execution environments and the Runtime API they speak.
//! - `code`: function packages.

pub mod api;
mod asynchronous;
mod code;
mod concurrency;
mod esm;
mod filter;
mod functions;
mod invoke;
mod layers;
mod permissions;
mod provisioned;
mod runtime;
mod settings;
mod stream_batch;
mod urls;
mod versions;

use std::path::Path;
use std::sync::{Arc, OnceLock};

use lakebox_core::clock::Clock;
use lakebox_core::{RequestContext, ServiceError};
use lakebox_service::events::{DeliveryError, Event, EventSink, delivery_context};
use lakebox_service::lake::Lake;
use lakebox_service::links::LogWriter;
use lakebox_service::metrics::Recorder;
use lakebox_service::{Body, BoxFuture, HttpService};
use lakebox_store::MetaStore;

pub struct Lambda {
    meta: MetaStore,
    code: code::CodeStore,
    runtimes: Arc<runtime::Runtimes>,
    clock: Arc<dyn Clock>,
    /// Lakebox S3, where CreateFunction's `S3Bucket`/`S3Key` packages are read from.
    lake: OnceLock<Lake>,
    /// The URL clients reach this server at, for GetFunction's `Code.Location`.
    listen_url: OnceLock<String>,
    /// CloudWatch Logs, where function output goes (`/aws/lambda/<name>`).
    logs: OnceLock<Arc<dyn LogWriter>>,
    /// CloudWatch, where AWS/Lambda's metrics go.
    metrics: OnceLock<Recorder>,
    /// Event sources: Kinesis streams and SQS queues, and a nudge for the supervisor of their
    /// pollers when a mapping changes.
    kinesis: OnceLock<Arc<dyn lakebox_service::links::ShardedLog>>,
    dynamodb_streams: OnceLock<Arc<dyn lakebox_service::links::ShardedLog>>,
    queues: OnceLock<Arc<dyn lakebox_service::links::QueueSource>>,
    mappings_changed: tokio::sync::Notify,
    limiter: Arc<concurrency::Limiter>,
    async_queue: asynchronous::AsyncQueue,
    /// Nudges the keeper of provisioned environments when a configuration changes.
    provisioning: tokio::sync::Notify,
}

impl Lambda {
    pub fn open(dir: &Path, clock: Arc<dyn Clock>) -> Result<Arc<Self>, lakebox_store::StoreError> {
        std::fs::create_dir_all(dir)?;
        let meta = MetaStore::open(&dir.join("meta.redb"))?;
        Ok(Arc::new(Lambda {
            meta,
            code: code::CodeStore::open(dir.join("code"))?,
            runtimes: Arc::new(runtime::Runtimes::new(dir.join("runtime"))?),
            clock,
            lake: OnceLock::new(),
            listen_url: OnceLock::new(),
            logs: OnceLock::new(),
            metrics: OnceLock::new(),
            kinesis: OnceLock::new(),
            dynamodb_streams: OnceLock::new(),
            queues: OnceLock::new(),
            mappings_changed: tokio::sync::Notify::new(),
            limiter: Arc::default(),
            async_queue: Default::default(),
            provisioning: tokio::sync::Notify::new(),
        }))
    }

    pub fn set_lake(&self, lake: Lake) {
        let _ = self.lake.set(lake);
    }

    /// Function output is written into CloudWatch Logs through `logs`.
    pub fn set_log_writer(&self, logs: Arc<dyn LogWriter>) {
        let _ = self.logs.set(logs);
    }

    pub fn set_metrics(&self, metrics: Recorder) {
        let _ = self.metrics.set(metrics);
    }

    /// Where functions and clients reach this server (`AWS_ENDPOINT_URL` inside functions,
    /// GetFunction's download URL).
    pub fn set_listen_url(&self, url: String) {
        self.runtimes.set_endpoint(url.clone());
        let _ = self.listen_url.set(url);
    }

    /// Stops every execution environment (server shutdown).
    pub fn shutdown(&self) {
        self.runtimes.retire_all();
    }

    /// Serves `/_lakebox/lambda/code/<sha256>.zip`: GetFunction's `Code.Location`, which AWS
    /// makes a presigned URL anyone holding it may fetch.
    pub fn code_routes(self: &Arc<Self>) -> Arc<dyn HttpService> {
        Arc::new(CodeRoutes(self.clone()))
    }
}

impl HttpService for Lambda {
    fn call(
        self: Arc<Self>,
        ctx: RequestContext,
        req: http::Request<Body>,
    ) -> BoxFuture<Result<http::Response<Body>, ServiceError>> {
        if let Some(id) = req.extensions().get::<lakebox_service::FunctionUrlId>().cloned() {
            return Box::pin(async move { self.serve_url(&id.0, req, &ctx.request_id).await });
        }
        api::dispatch(self, ctx, req)
    }
}

struct CodeRoutes(Arc<Lambda>);

impl HttpService for CodeRoutes {
    fn call(
        self: Arc<Self>,
        _ctx: RequestContext,
        req: http::Request<Body>,
    ) -> BoxFuture<Result<http::Response<Body>, ServiceError>> {
        Box::pin(async move {
            let hex = req
                .uri()
                .path()
                .rsplit('/')
                .next()
                .and_then(|f| f.strip_suffix(".zip"))
                .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
                .map(str::to_owned);
            let zip = hex.and_then(|h| self.0.code.read_zip(&h).ok());
            let Some(zip) = zip else {
                return Err(ServiceError::new(
                    "NoSuchKey",
                    404,
                    "The specified key does not exist.",
                ));
            };
            let mut r = http::Response::new(lakebox_service::body::full(zip));
            r.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/zip"),
            );
            Ok(r)
        })
    }
}

/// Events from other services (S3's event notifications, SNS's deliveries, asynchronous
/// invocations' destinations) invoke the function their target ARN names asynchronously, as
/// AWS does: `deliver` answers once the event is in the durable queue of asynchronous
/// invocations, which runs it, retries it and sends it on to the function's destinations.
struct Trigger(Arc<Lambda>);

impl Lambda {
    pub fn event_sink(self: &Arc<Self>) -> Arc<dyn EventSink> {
        Arc::new(Trigger(self.clone()))
    }

    /// Runs functions for other services (Firehose's data transformation).
    pub fn invoker(self: &Arc<Self>) -> Arc<dyn lakebox_service::links::FunctionInvoker> {
        Arc::new(Invoker(self.clone()))
    }
}

struct Invoker(Arc<Lambda>);

impl lakebox_service::links::FunctionInvoker for Invoker {
    fn invoke(
        &self,
        function_arn: &str,
        payload: Vec<u8>,
    ) -> BoxFuture<Result<lakebox_service::links::FunctionResult, ServiceError>> {
        let lambda = self.0.clone();
        let arn = function_arn.to_owned();
        Box::pin(async move {
            let ctx = delivery_context(&arn, lambda.clock.now_millis()).map_err(|_| {
                ServiceError::new(
                    "ResourceNotFoundException",
                    404,
                    format!("Function not found: {arn}"),
                )
            })?;
            let input = api::InvocationRequest {
                function_name: arn,
                payload: Some(lakebox_protocol::Blob(payload)),
                ..Default::default()
            };
            let out = lambda.invoke_function(&ctx, input).await?;
            Ok(lakebox_service::links::FunctionResult {
                payload: out.payload.map(|p| p.0).unwrap_or_default(),
                function_error: out.function_error,
            })
        })
    }
}

impl EventSink for Trigger {
    fn deliver(&self, target_arn: String, event: Event) -> BoxFuture<Result<(), DeliveryError>> {
        let lambda = self.0.clone();
        Box::pin(async move {
            let ctx = delivery_context(&target_arn, lambda.clock.now_millis())?;
            if event.probe {
                return match lambda.existing(&ctx, &target_arn, None) {
                    Ok(_) => Ok(()),
                    Err(e) => Err(DeliveryError::from_service(&e)),
                };
            }
            let target = lambda
                .target(&ctx, &target_arn, None, false)
                .map_err(|e| DeliveryError::from_service(&e))?;
            let record = event.into_record();
            let payload = String::from_utf8(record)
                .ok()
                .filter(|p| serde_json::from_str::<serde::de::IgnoredAny>(p).is_ok())
                .ok_or_else(|| DeliveryError::Refused("the event is not JSON".into()))?;
            let request_id = uuid::Uuid::new_v4().to_string();
            lambda
                .enqueue_event(
                    &ctx,
                    target.function.name(),
                    target.qualifier.as_deref(),
                    &request_id,
                    payload,
                )
                .map_err(|e| DeliveryError::from_service(&e))
        })
    }
}
