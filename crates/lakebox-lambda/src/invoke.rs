//! Invoke: RequestResponse runs the function and answers its result; Event queues it durably
//! and answers 202 (see `asynchronous`); DryRun checks the call and answers 204.

use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use lakebox_core::clock::Clock;
use lakebox_core::{RequestContext, ServiceError};
use lakebox_service::links::{LogLine, LogWriter};
use lakebox_service::metrics::Recorder;

use crate::Lambda;
use crate::api::*;
use crate::functions::user_error;
use crate::runtime::Outcome;
use crate::versions::Target;

/// The largest payload of a synchronous invocation (6 MB), and of an asynchronous one (1 MB).
const MAX_SYNC_PAYLOAD: usize = 6 * 1024 * 1024;
const MAX_ASYNC_PAYLOAD: usize = 1024 * 1024;
/// LogType=Tail returns the last 4 KB of the invocation's log.
const TAIL_BYTES: usize = 4096;
/// The largest PayloadChunk of a streamed answer.
const STREAM_CHUNK: usize = 64 * 1024;

impl Lambda {
    pub(crate) async fn invoke_function(
        &self,
        ctx: &RequestContext,
        input: InvocationRequest,
    ) -> Result<InvocationResponse, ServiceError> {
        let target = self.target(ctx, &input.function_name, input.qualifier.as_deref(), true)?;
        let payload: Bytes = match input.payload {
            Some(p) if !p.0.is_empty() => p.0.into(),
            _ => Bytes::from_static(b"{}"),
        };
        let kind = input.invocation_type.unwrap_or(InvocationType::RequestResponse);
        let limit = if kind == InvocationType::Event {
            MAX_ASYNC_PAYLOAD
        } else {
            MAX_SYNC_PAYLOAD
        };
        if payload.len() > limit {
            return Err(user_error(
                "RequestTooLargeException",
                413,
                format!("Request must be smaller than {limit} bytes for the InvokeFunction operation"),
            ));
        }
        if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&payload) {
            return Err(user_error(
                "InvalidRequestContentException",
                400,
                format!("Could not parse request body into json: Could not parse payload into json: {e}"),
            ));
        }
        let client_context = match input.client_context {
            Some(cc) => Some(decode_client_context(&cc)?),
            None => None,
        };
        match kind {
            InvocationType::DryRun => Ok(InvocationResponse {
                status_code: Some(204),
                ..Default::default()
            }),
            InvocationType::Event => {
                // Queued durably before the answer; the queue's worker runs it, retries it
                // and sends its record to the configured destinations.
                let text = String::from_utf8_lossy(&payload).into_owned();
                self.enqueue_event(
                    ctx,
                    target.function.name(),
                    target.qualifier.as_deref(),
                    &ctx.request_id,
                    text,
                )?;
                Ok(InvocationResponse {
                    status_code: Some(202),
                    ..Default::default()
                })
            }
            _ => {
                let (outcome, executed, log) = self
                    .run_target_logged(ctx, &target, payload, client_context)
                    .await?;
                let tail = matches!(input.log_type, Some(LogType::Tail)).then(|| {
                    let start = log.len().saturating_sub(TAIL_BYTES);
                    // Start on a character boundary.
                    let start = (start..=log.len())
                        .find(|i| log.is_char_boundary(*i))
                        .unwrap_or(log.len());
                    base64::engine::general_purpose::STANDARD.encode(&log.as_bytes()[start..])
                });
                Ok(InvocationResponse {
                    status_code: Some(200),
                    function_error: outcome.function_error,
                    log_result: tail,
                    payload: Some(lakebox_protocol::Blob(outcome.payload.to_vec())),
                    executed_version: Some(executed),
                    ..Default::default()
                })
            }
        }
    }

    /// InvokeWithResponseStream: the function runs as for RequestResponse, and its answer goes
    /// back as an event stream — `PayloadChunk` events, then `InvokeComplete` (with the error
    /// and the log tail when asked). Lakebox's runtimes answer whole, so the chunks follow the
    /// function's return rather than leaving as it writes them.
    pub(crate) async fn invoke_streaming(
        &self,
        ctx: &RequestContext,
        input: InvokeWithResponseStreamRequest,
    ) -> Result<http::Response<lakebox_service::Body>, ServiceError> {
        let dry_run = matches!(
            input.invocation_type,
            Some(ResponseStreamingInvocationType::DryRun)
        );
        let sync = InvocationRequest {
            function_name: input.function_name,
            invocation_type: Some(if dry_run {
                InvocationType::DryRun
            } else {
                InvocationType::RequestResponse
            }),
            log_type: input.log_type,
            client_context: input.client_context,
            qualifier: input.qualifier,
            payload: input.payload,
            ..Default::default()
        };
        let out = self.invoke_function(ctx, sync).await?;
        use lakebox_protocol::eventstream;
        let mut body = Vec::new();
        let payload = out.payload.map(|p| p.0).unwrap_or_default();
        let mut complete = serde_json::Map::new();
        if out.function_error.is_some() {
            let doc: serde_json::Value = serde_json::from_slice(&payload).unwrap_or_default();
            let code = doc["errorType"].as_str().unwrap_or("Unhandled");
            complete.insert("ErrorCode".into(), code.into());
            complete.insert(
                "ErrorDetails".into(),
                String::from_utf8_lossy(&payload).into_owned().into(),
            );
        } else {
            for chunk in payload.chunks(STREAM_CHUNK) {
                body.extend(eventstream::event(
                    "PayloadChunk",
                    "application/octet-stream",
                    chunk,
                ));
            }
        }
        if let Some(tail) = out.log_result {
            complete.insert("LogResult".into(), tail.into());
        }
        if !dry_run {
            body.extend(eventstream::event(
                "InvokeComplete",
                "application/json",
                serde_json::Value::Object(complete).to_string().as_bytes(),
            ));
        }
        let mut resp = http::Response::new(lakebox_service::body::full(body));
        *resp.status_mut() = http::StatusCode::from_u16(if dry_run { 204 } else { 200 }).unwrap_or_default();
        let h = resp.headers_mut();
        h.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(eventstream::CONTENT_TYPE),
        );
        if let Some(v) = out
            .executed_version
            .and_then(|v| http::HeaderValue::from_str(&v).ok())
        {
            h.insert("x-amz-executed-version", v);
        }
        Ok(resp)
    }

    /// Runs one invocation of `target` now, within its function's concurrency: its outcome
    /// and the version that ran. Its log and metrics are reported.
    pub(crate) async fn run_target(
        &self,
        ctx: &RequestContext,
        target: &Target,
        payload: Bytes,
        client_context: Option<String>,
    ) -> Result<(Outcome, String), ServiceError> {
        let (outcome, executed, _) = self
            .run_target_logged(ctx, target, payload, client_context)
            .await?;
        Ok((outcome, executed))
    }

    async fn run_target_logged(
        &self,
        ctx: &RequestContext,
        target: &Target,
        payload: Bytes,
        client_context: Option<String>,
    ) -> Result<(Outcome, String, String), ServiceError> {
        let _slot = self.acquire_slot(ctx, &target.function)?;
        let executed = target.version().to_owned();
        let launch = self.launch_for(ctx, target, false)?;
        let outcome = self
            .runtimes
            .invoke(
                &launch,
                &target.invoked_arn,
                &ctx.request_id,
                payload,
                client_context,
            )
            .await?;
        let log = lambda_log(&ctx.request_id, &executed, launch.memory_mb, &outcome);
        self.reporting()
            .invocation(ctx, target.function.name(), &launch.log_group, &outcome, &log);
        Ok((outcome, executed, log))
    }

    /// What an environment of `target`'s version runs (`provisioned`: started ahead of its
    /// invocations).
    pub(crate) fn launch_for(
        &self,
        ctx: &RequestContext,
        target: &Target,
        provisioned: bool,
    ) -> Result<crate::runtime::Launch, ServiceError> {
        let code_dir = self.code.unpacked(&target.code)?;
        let mut launch = crate::functions::launch(&target.config, target.function.arn(), ctx, code_dir);
        if !target.layer_code.is_empty() {
            launch.opt_dir = Some(self.code.layered(&target.layer_code)?);
        }
        launch.provisioned = provisioned;
        Ok(launch)
    }

    /// Records one of AWS/Lambda's metrics, per function and across the account's functions.
    pub(crate) fn record_metric(
        &self,
        ctx: &RequestContext,
        function: &str,
        name: &str,
        unit: &str,
        value: f64,
    ) {
        let Some(metrics) = self.metrics.get() else { return };
        for dims in [&[("FunctionName", function)][..], &[]] {
            metrics.record_many(
                &ctx.account_id,
                &ctx.region,
                "AWS/Lambda",
                dims,
                &[(name, unit, value)],
            );
        }
    }

    fn reporting(&self) -> Reporting {
        Reporting {
            logs: self.logs.get().cloned(),
            metrics: self.metrics.get().cloned().unwrap_or_default(),
            now: self.clock.clone(),
        }
    }
}

/// Where an invocation is reported: its log into CloudWatch Logs, its metrics into CloudWatch.
struct Reporting {
    logs: Option<Arc<dyn LogWriter>>,
    metrics: Recorder,
    now: Arc<dyn Clock>,
}

impl Reporting {
    fn invocation(&self, ctx: &RequestContext, function: &str, group: &str, o: &Outcome, log: &str) {
        // AWS/Lambda's metrics, per function and across the account's functions.
        let failed = if o.function_error.is_some() { 1.0 } else { 0.0 };
        let values = [
            ("Invocations", "Count", 1.0),
            ("Errors", "Count", failed),
            ("Duration", "Milliseconds", o.duration.as_secs_f64() * 1000.0),
        ];
        for dims in [&[("FunctionName", function)][..], &[]] {
            self.metrics
                .record_many(&ctx.account_id, &ctx.region, "AWS/Lambda", dims, &values);
        }
        let Some(logs) = self.logs.clone() else { return };
        let at = self.now.now_millis();
        let lines = log
            .lines()
            .map(|l| LogLine {
                timestamp_millis: at,
                message: l.to_owned(),
            })
            .collect();
        let (account, region, group, stream) = (
            ctx.account_id.clone(),
            ctx.region.clone(),
            group.to_owned(),
            o.log_stream.clone(),
        );
        tokio::spawn(async move {
            if let Err(e) = logs.write(&account, &region, &group, &stream, lines).await {
                tracing::warn!(group, "writing a function's log: {e}");
            }
        });
    }
}

/// `X-Amz-Client-Context` is base64 JSON; the runtime receives the JSON.
fn decode_client_context(b64: &str) -> Result<String, ServiceError> {
    let bad = || {
        user_error(
            "InvalidRequestContentException",
            400,
            "Client context must be a valid Base64-encoded JSON object.",
        )
    };
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| bad())?;
    serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&raw).map_err(|_| bad())?;
    String::from_utf8(raw).map_err(|_| bad())
}

/// The invocation's log as Lambda writes it: START, what the function wrote, END, REPORT.
fn lambda_log(request_id: &str, version: &str, memory_mb: i32, o: &Outcome) -> String {
    let ms = o.duration.as_secs_f64() * 1000.0;
    let init = o
        .init_duration
        .map(|d| format!("\tInit Duration: {:.2} ms", d.as_secs_f64() * 1000.0))
        .unwrap_or_default();
    let used = o
        .max_memory_mb
        .map(|m| format!("\tMax Memory Used: {m} MB"))
        .unwrap_or_default();
    format!(
        "START RequestId: {request_id} Version: {version}\n{}END RequestId: {request_id}\nREPORT RequestId: {request_id}\tDuration: {ms:.2} ms\tBilled Duration: {} ms\tMemory Size: {memory_mb} MB{used}{init}\t\n",
        o.log,
        ms.ceil() as u64
    )
}
