//! Asynchronous invocation: Invoke with `Event`, and the triggers of other services (S3
//! notifications, SNS subscriptions), put the event in a durable queue and answer once it is
//! there; a worker runs queued events, retries function errors (twice by default, after one
//! and then two minutes, as AWS does), and when an event succeeds or is given up sends AWS's
//! invocation record to the destinations of the function's event invoke configuration, and a
//! given-up event to its dead-letter queue.
//!
//! The queue is a table of the metadata store: an event stays there until it is finished, so a
//! restart runs what a crash interrupted (at least once, as AWS promises).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lakebox_core::{RequestContext, ServiceError};
use lakebox_service::events::{AttributeValue, Event, EventAttribute, EventSink};
use serde::{Deserialize, Serialize};

use crate::Lambda;
use crate::api::*;
use crate::functions::{invalid, storage, user_error};
use crate::versions::Qualifier;

const QUEUE: &str = "async_invocations";
/// AWS's defaults: two retries, events kept six hours.
const DEFAULT_RETRIES: i32 = 2;
const DEFAULT_MAX_AGE_SECS: i32 = 21_600;
/// Events running at once; the rest wait for a place (their function's concurrency decides how
/// many of these actually run).
const MAX_IN_FLIGHT: usize = 256;
/// How soon a throttled event is tried again.
const THROTTLE_DELAY: Duration = Duration::from_secs(1);

/// One queued event.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Queued {
    account: String,
    region: String,
    function: String,
    qualifier: Option<String>,
    request_id: String,
    /// The event (JSON text, checked when it was queued).
    payload: String,
    enqueued_millis: i64,
    /// Not run before this time (a retry's delay).
    due_millis: i64,
    /// Runs that ended in a function error so far.
    attempts: u32,
}

/// When each queued event is due, ordered by time: a pass of the worker reads only what is
/// due, however many events wait (the table is scanned once, at the first pass).
#[derive(Default)]
struct DueIndex {
    by_time: BTreeSet<(i64, String)>,
    by_id: HashMap<String, i64>,
}

impl DueIndex {
    fn set(&mut self, id: &str, due: i64) {
        if let Some(old) = self.by_id.insert(id.to_owned(), due) {
            self.by_time.remove(&(old, id.to_owned()));
        }
        self.by_time.insert((due, id.to_owned()));
    }

    fn remove(&mut self, id: &str) {
        if let Some(old) = self.by_id.remove(id) {
            self.by_time.remove(&(old, id.to_owned()));
        }
    }

    /// Up to `max` ids due by `now` that `skip` does not hold, and when the first event not
    /// taken is due.
    fn due(&self, now: i64, max: usize, skip: &HashSet<String>) -> (Vec<String>, Option<i64>) {
        let mut ids = Vec::new();
        for (due, id) in &self.by_time {
            if *due > now || ids.len() >= max {
                return (ids, Some(*due));
            }
            if !skip.contains(id) {
                ids.push(id.clone());
            }
        }
        (ids, None)
    }
}

/// The queue worker's state kept in memory: events running now, when the others are due, and a
/// nudge for new ones.
#[derive(Default)]
pub(crate) struct AsyncQueue {
    running: Mutex<HashSet<String>>,
    /// `None` until the first pass reads the table.
    index: Mutex<Option<DueIndex>>,
    queued: tokio::sync::Notify,
    /// Where destinations and dead-letter queues are reached (SQS, SNS, Lambda).
    targets: std::sync::OnceLock<Arc<dyn EventSink>>,
    /// The delay before the first retry (the second waits twice as long): AWS's one minute,
    /// shortened by `--lambda-async-retry-delay-ms`.
    retry_delay: Mutex<Option<Duration>>,
}

impl Lambda {
    /// Queues one asynchronous invocation durably; its request id.
    pub(crate) fn enqueue_event(
        &self,
        ctx: &RequestContext,
        function: &str,
        qualifier: Option<&str>,
        request_id: &str,
        payload: String,
    ) -> Result<(), ServiceError> {
        let now = self.clock.now_millis();
        let q = Queued {
            account: ctx.account_id.clone(),
            region: ctx.region.clone(),
            function: function.to_owned(),
            qualifier: qualifier.map(str::to_owned),
            request_id: request_id.to_owned(),
            payload,
            enqueued_millis: now,
            due_millis: now,
            attempts: 0,
        };
        self.save_queued(&q)?;
        self.async_queue.queued.notify_one();
        Ok(())
    }

    fn save_queued(&self, q: &Queued) -> Result<(), ServiceError> {
        let bytes = serde_json::to_vec(q).map_err(|e| ServiceError::internal(e.to_string()))?;
        self.meta
            .put(QUEUE, q.request_id.as_bytes(), &bytes)
            .map_err(storage)?;
        if let Some(index) = self.async_queue.index.lock().unwrap().as_mut() {
            index.set(&q.request_id, q.due_millis);
        }
        Ok(())
    }

    fn finish_queued(&self, q: &Queued) {
        if let Err(e) = self.meta.delete(QUEUE, q.request_id.as_bytes()) {
            tracing::warn!(request = %q.request_id, "removing a finished asynchronous invocation: {e}");
        }
        if let Some(index) = self.async_queue.index.lock().unwrap().as_mut() {
            index.remove(&q.request_id);
        }
    }

    /// Where destinations go, and the first retry's delay.
    pub fn set_async_invocation(&self, targets: Arc<dyn EventSink>, retry_delay: Duration) {
        let _ = self.async_queue.targets.set(targets);
        *self.async_queue.retry_delay.lock().unwrap() = Some(retry_delay);
    }

    /// Runs queued asynchronous invocations as they fall due, until the server stops.
    pub fn start_async_invocations(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let lambda = self.clone();
        tokio::spawn(async move {
            loop {
                let notified = lambda.async_queue.queued.notified();
                let next = lambda.run_due_events();
                let now = lambda.clock.now_millis();
                let wait = next
                    .map(|at| Duration::from_millis((at - now).clamp(5, 1000) as u64))
                    .unwrap_or(Duration::from_secs(1));
                let _ = tokio::time::timeout(wait, notified).await;
            }
        })
    }

    /// Starts every due event not already running; the earliest time a waiting one is due.
    fn run_due_events(self: &Arc<Self>) -> Option<i64> {
        let now = self.clock.now_millis();
        let (ids, next) = {
            let mut index = self.async_queue.index.lock().unwrap();
            if index.is_none() {
                *index = Some(self.load_due_index()?);
            }
            let running = self.async_queue.running.lock().unwrap();
            let room = MAX_IN_FLIGHT.saturating_sub(running.len());
            index.as_ref()?.due(now, room, &running)
        };
        for id in ids {
            let q = match self.meta.get(QUEUE, id.as_bytes()) {
                Ok(Some(v)) => match serde_json::from_slice::<Queued>(&v) {
                    Ok(q) => q,
                    Err(_) => continue,
                },
                _ => continue,
            };
            if !self.async_queue.running.lock().unwrap().insert(id.clone()) {
                continue;
            }
            let lambda = self.clone();
            tokio::spawn(async move {
                lambda.run_queued(q).await;
                lambda.async_queue.running.lock().unwrap().remove(&id);
                lambda.async_queue.queued.notify_one();
            });
        }
        next
    }

    /// Every queued event's due time, read from the table (the first pass after a start).
    fn load_due_index(&self) -> Option<DueIndex> {
        let rows = match self.meta.scan_prefix(QUEUE, b"", None, usize::MAX) {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!("reading queued asynchronous invocations: {e}");
                return None;
            }
        };
        let mut index = DueIndex::default();
        for (_, v) in rows {
            if let Ok(q) = serde_json::from_slice::<Queued>(&v) {
                index.set(&q.request_id, q.due_millis);
            }
        }
        Some(index)
    }

    async fn run_queued(&self, mut q: Queued) {
        let ctx = RequestContext::internal(&q.account, &q.region, self.clock.now_millis());
        let ctx = RequestContext {
            request_id: q.request_id.clone(),
            ..ctx
        };
        let target = match self.target(&ctx, &q.function, q.qualifier.as_deref(), true) {
            Ok(t) => t,
            Err(e) if e.status == 404 => {
                // The function (or its alias) is gone: nothing can run the event.
                tracing::warn!(function = %q.function, "dropping an asynchronous invocation: {}", e.message);
                return self.finish_queued(&q);
            }
            Err(e) => {
                tracing::warn!(function = %q.function, "asynchronous invocation: {}", e.message);
                return self.retry_later(&mut q, THROTTLE_DELAY);
            }
        };
        let key = q.qualifier.clone().unwrap_or_else(|| "$LATEST".into());
        let settings = target
            .function
            .event_invoke
            .get(&key)
            .cloned()
            .unwrap_or_default();
        let max_age = settings
            .maximum_event_age_in_seconds
            .unwrap_or(DEFAULT_MAX_AGE_SECS) as i64
            * 1000;
        let max_retries = settings.maximum_retry_attempts.unwrap_or(DEFAULT_RETRIES).max(0) as u32;
        let record_arn = format!(
            "{}:{}",
            target.function.arn(),
            q.qualifier.as_deref().unwrap_or("$LATEST")
        );
        let payload: serde_json::Value = serde_json::from_str(&q.payload).unwrap_or_default();
        if self.clock.now_millis() - q.enqueued_millis > max_age {
            let record = invocation_record(
                &q,
                &record_arn,
                "EventAgeExceeded",
                &payload,
                None,
                self.clock.now_millis(),
            );
            self.give_up(&target.function, &settings, &q, record, None).await;
            return self.finish_queued(&q);
        }
        let result = self
            .run_target(&ctx, &target, q.payload.clone().into(), None)
            .await;
        let (outcome, executed) = match result {
            Ok(done) => done,
            Err(e) if crate::concurrency::is_throttle(&e) => return self.retry_later(&mut q, THROTTLE_DELAY),
            Err(e) => {
                tracing::warn!(function = %q.function, "asynchronous invocation: {}", e.message);
                return self.retry_later(&mut q, THROTTLE_DELAY);
            }
        };
        let response: serde_json::Value = serde_json::from_slice(&outcome.payload).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(&outcome.payload).into_owned())
        });
        let response_context = serde_json::json!({
            "statusCode": 200,
            "executedVersion": executed,
        });
        q.attempts += 1;
        if outcome.function_error.is_none() {
            if let Some(dest) = destination(&settings, true) {
                let response = Some((response_context, response));
                let record = invocation_record(
                    &q,
                    &record_arn,
                    "Success",
                    &payload,
                    response,
                    self.clock.now_millis(),
                );
                self.send_to(&dest, record.to_string(), Vec::new()).await;
            }
            return self.finish_queued(&q);
        }
        if q.attempts <= max_retries {
            let base = self
                .async_queue
                .retry_delay
                .lock()
                .unwrap()
                .unwrap_or(Duration::from_secs(60));
            let delay = base * q.attempts;
            return self.retry_later(&mut q, delay);
        }
        let mut rc = response_context;
        rc["functionError"] = serde_json::Value::String(outcome.function_error.clone().unwrap_or_default());
        let error_message = response
            .get("errorMessage")
            .and_then(|m| m.as_str())
            .unwrap_or_default()
            .to_owned();
        let record = invocation_record(
            &q,
            &record_arn,
            "RetriesExhausted",
            &payload,
            Some((rc, response)),
            self.clock.now_millis(),
        );
        self.give_up(&target.function, &settings, &q, record, Some(error_message))
            .await;
        self.finish_queued(&q);
    }

    fn retry_later(&self, q: &mut Queued, delay: Duration) {
        q.due_millis = self.clock.now_millis() + delay.as_millis() as i64;
        if let Err(e) = self.save_queued(q) {
            tracing::warn!(request = %q.request_id, "rescheduling an asynchronous invocation: {}", e.message);
        }
    }

    /// An event given up: the on-failure destination gets the invocation record, the
    /// function's dead-letter queue the event itself with AWS's error attributes.
    async fn give_up(
        &self,
        function: &crate::functions::Stored,
        settings: &FunctionEventInvokeConfig,
        q: &Queued,
        record: serde_json::Value,
        error_message: Option<String>,
    ) {
        if let Some(dest) = destination(settings, false) {
            self.send_to(&dest, record.to_string(), Vec::new()).await;
        }
        let dlq = function
            .config
            .dead_letter_config
            .as_ref()
            .and_then(|d| d.target_arn.clone())
            .filter(|a| !a.is_empty());
        if let Some(dlq) = dlq {
            let text = |name: &str, data_type: &str, v: String| EventAttribute {
                name: name.to_owned(),
                data_type: data_type.to_owned(),
                value: AttributeValue::Text(v),
            };
            let mut message = error_message.unwrap_or_default();
            message.truncate(1024);
            let attributes = vec![
                text("RequestID", "String", q.request_id.clone()),
                text("ErrorCode", "Number", "200".into()),
                text("ErrorMessage", "String", message),
            ];
            self.send_to(&dlq, q.payload.clone(), attributes).await;
        }
    }

    /// Sends `message` to a destination (SQS, SNS, Lambda) through the events link.
    pub(crate) async fn send_to(&self, arn: &str, message: String, attributes: Vec<EventAttribute>) {
        let Some(targets) = self.async_queue.targets.get() else {
            return;
        };
        let event = Event {
            message,
            attributes,
            sender: "lambda.amazonaws.com",
            ..Event::default()
        };
        if let Err(e) = targets.deliver(arn.to_owned(), event).await {
            tracing::warn!(target = arn, "delivering an invocation record: {e}");
        }
    }
}

fn destination(settings: &FunctionEventInvokeConfig, success: bool) -> Option<String> {
    let d = settings.destination_config.as_ref()?;
    if success {
        d.on_success.as_ref()?.destination.clone()
    } else {
        d.on_failure.as_ref()?.destination.clone()
    }
    .filter(|a| !a.is_empty())
}

/// The invocation record AWS sends to destinations.
fn invocation_record(
    q: &Queued,
    function_arn: &str,
    condition: &str,
    request: &serde_json::Value,
    response: Option<(serde_json::Value, serde_json::Value)>,
    now_millis: i64,
) -> serde_json::Value {
    let mut record = serde_json::json!({
        "version": "1.0",
        "timestamp": lakebox_protocol::Timestamp::from_millis(now_millis).to_iso8601(),
        "requestContext": {
            "requestId": q.request_id,
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": q.attempts,
        },
        "requestPayload": request,
    });
    if let Some((context, payload)) = response {
        record["responseContext"] = context;
        record["responsePayload"] = payload;
    }
    record
}

/// Event invoke configurations: kept with the function, by qualifier.
impl Lambda {
    fn invoke_config_key(
        &self,
        ctx: &RequestContext,
        given: &str,
        qualifier: Option<&str>,
    ) -> Result<(crate::functions::Stored, String, String), ServiceError> {
        let target = self.target(ctx, given, qualifier, false)?;
        let q = target.qualifier.clone().unwrap_or_else(|| "$LATEST".into());
        let arn = format!("{}:{q}", target.function.arn());
        Ok((target.function, q, arn))
    }

    fn check_destinations(
        &self,
        ctx: &RequestContext,
        d: &Option<DestinationConfig>,
    ) -> Result<(), ServiceError> {
        let Some(d) = d else { return Ok(()) };
        let arns = [
            d.on_success.as_ref().and_then(|s| s.destination.as_deref()),
            d.on_failure.as_ref().and_then(|s| s.destination.as_deref()),
        ];
        for arn in arns.into_iter().flatten() {
            let parsed = lakebox_core::Arn::parse(arn);
            let ok = parsed.as_ref().is_some_and(|a| {
                matches!(a.service.as_str(), "sqs" | "sns" | "lambda" | "events" | "s3")
                    && a.account_id == ctx.account_id
            });
            if !ok {
                return Err(invalid(format!("The destination ARN {arn} is invalid.")));
            }
        }
        Ok(())
    }

    pub(crate) fn put_event_invoke_config_impl(
        &self,
        ctx: &RequestContext,
        input: PutFunctionEventInvokeConfigRequest,
        merge: bool,
    ) -> Result<FunctionEventInvokeConfig, ServiceError> {
        let (mut stored, q, arn) =
            self.invoke_config_key(ctx, &input.function_name, input.qualifier.as_deref())?;
        self.check_destinations(ctx, &input.destination_config)?;
        let mut config = match stored.event_invoke.get(&q) {
            Some(existing) if merge => existing.clone(),
            None if merge => {
                return Err(no_invoke_config(&arn));
            }
            _ => FunctionEventInvokeConfig::default(),
        };
        if input.maximum_retry_attempts.is_some() || !merge {
            config.maximum_retry_attempts = input.maximum_retry_attempts;
        }
        if input.maximum_event_age_in_seconds.is_some() || !merge {
            config.maximum_event_age_in_seconds = input.maximum_event_age_in_seconds;
        }
        if input.destination_config.is_some() || !merge {
            config.destination_config = input.destination_config;
        }
        config.function_arn = Some(arn);
        config.last_modified = Some(lakebox_protocol::Timestamp::from_millis(self.clock.now_millis()));
        stored.event_invoke.insert(q, config.clone());
        self.store(ctx, &stored)?;
        Ok(with_empty_destinations(config))
    }

    pub(crate) fn get_event_invoke_config_impl(
        &self,
        ctx: &RequestContext,
        given: &str,
        qualifier: Option<&str>,
    ) -> Result<FunctionEventInvokeConfig, ServiceError> {
        let (stored, q, arn) = self.invoke_config_key(ctx, given, qualifier)?;
        stored
            .event_invoke
            .get(&q)
            .cloned()
            .map(with_empty_destinations)
            .ok_or_else(|| no_invoke_config(&arn))
    }

    pub(crate) fn delete_event_invoke_config_impl(
        &self,
        ctx: &RequestContext,
        given: &str,
        qualifier: Option<&str>,
    ) -> Result<(), ServiceError> {
        let (mut stored, q, arn) = self.invoke_config_key(ctx, given, qualifier)?;
        if stored.event_invoke.remove(&q).is_none() {
            return Err(no_invoke_config(&arn));
        }
        self.store(ctx, &stored)
    }

    pub(crate) fn list_event_invoke_configs_impl(
        &self,
        ctx: &RequestContext,
        input: ListFunctionEventInvokeConfigsRequest,
    ) -> Result<ListFunctionEventInvokeConfigsResponse, ServiceError> {
        let stored = self.existing(ctx, &input.function_name, None)?;
        // $LATEST first, then versions by number, then aliases by name.
        let mut all: Vec<(&String, &FunctionEventInvokeConfig)> = stored.event_invoke.iter().collect();
        all.sort_by_key(|(q, _)| match Qualifier::of(q) {
            Qualifier::Latest => (0, 0, String::new()),
            Qualifier::Version(n) => (1, n, String::new()),
            Qualifier::Alias(a) => (2, 0, a.to_owned()),
        });
        let all: Vec<FunctionEventInvokeConfig> = all
            .into_iter()
            .map(|(_, c)| with_empty_destinations(c.clone()))
            .collect();
        let (page, next) = crate::versions::page_of(all, input.marker.as_deref(), input.max_items)?;
        Ok(ListFunctionEventInvokeConfigsResponse {
            function_event_invoke_configs: Some(page),
            next_marker: next,
        })
    }
}

fn no_invoke_config(arn: &str) -> ServiceError {
    user_error(
        "ResourceNotFoundException",
        404,
        format!("The function {arn} doesn't have an EventInvokeConfig"),
    )
}

/// AWS answers a configuration's DestinationConfig with both members, empty when unset.
fn with_empty_destinations(mut c: FunctionEventInvokeConfig) -> FunctionEventInvokeConfig {
    let d = c.destination_config.get_or_insert_with(Default::default);
    d.on_success.get_or_insert_with(Default::default);
    d.on_failure.get_or_insert_with(Default::default);
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_carries_request_and_response() {
        let q = Queued {
            account: "000000000000".into(),
            region: "us-east-1".into(),
            function: "f".into(),
            qualifier: None,
            request_id: "r1".into(),
            payload: "{\"a\":1}".into(),
            enqueued_millis: 0,
            due_millis: 0,
            attempts: 3,
        };
        let rc = serde_json::json!({"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"});
        let r = invocation_record(
            &q,
            "arn:aws:lambda:us-east-1:000000000000:function:f:$LATEST",
            "RetriesExhausted",
            &serde_json::json!({"a": 1}),
            Some((rc, serde_json::json!({"errorMessage": "boom"}))),
            0,
        );
        assert_eq!(r["requestContext"]["approximateInvokeCount"], 3);
        assert_eq!(r["requestContext"]["condition"], "RetriesExhausted");
        assert_eq!(r["requestPayload"]["a"], 1);
        assert_eq!(r["responseContext"]["functionError"], "Unhandled");
        assert_eq!(r["responsePayload"]["errorMessage"], "boom");
        assert_eq!(r["timestamp"], "1970-01-01T00:00:00.000Z");
    }
}

#[cfg(test)]
mod due_index {
    use super::*;

    #[test]
    fn passes_take_what_is_due_in_time_order_up_to_the_room_left() {
        let mut index = DueIndex::default();
        index.set("c", 30);
        index.set("a", 10);
        index.set("b", 20);
        index.set("a", 25); // a retry moves it later
        let none = HashSet::new();
        assert_eq!(index.due(22, 10, &none), (vec!["b".to_owned()], Some(25)));
        assert_eq!(index.due(40, 10, &none).0, ["b", "a", "c"]);
        // Running events are skipped; the room left bounds a pass.
        let running: HashSet<String> = ["b".to_owned()].into();
        assert_eq!(index.due(40, 1, &running), (vec!["a".to_owned()], Some(30)));
        index.remove("a");
        assert_eq!(index.due(40, 10, &none).0, ["b", "c"]);
        assert_eq!(index.due(5, 10, &none), (vec![], Some(20)));
    }
}
