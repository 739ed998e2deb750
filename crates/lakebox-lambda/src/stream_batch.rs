//! One step of a stream event source (Kinesis, DynamoDB Streams) on one shard: read a batch
//! from the shard's cursor and get it through the function as AWS's pollers do —
//! `MaximumBatchingWindowInSeconds` (wait for a fuller batch), `FilterCriteria` (records that
//! match no filter are skipped), `MaximumRecordAgeInSeconds` (older records are given up),
//! retries with back-off up to `MaximumRetryAttempts`, `BisectBatchOnFunctionError` (a failed
//! batch is split in two and each half retried), `ReportBatchItemFailures` (retry from the
//! first failed record), the mapping's on-failure destination (AWS's batch-info record for
//! what was given up), and `TumblingWindowInSeconds` (state carried between the invocations of
//! a window, and a final invocation when it ends). The cursor moves past the batch only when
//! all of it is done, so every record is delivered at least once, in order.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use lakebox_core::RequestContext;
use lakebox_service::links::{LogRecord, LogShard};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::Lambda;
use crate::api::*;
use crate::esm::{BatchFailed, CURSORS, Mapping, Source};
use crate::filter::Filters;

/// One record of a batch: when it arrived, its sequence number, and its event as JSON text
/// (written once, copied into each invocation's payload as it is).
#[derive(Clone)]
struct Item {
    arrival_millis: i64,
    sequence: String,
    event: String,
}

/// A Kinesis record as Lambda's event has it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct KinesisEvent<'a> {
    kinesis: KinesisData<'a>,
    event_source: &'static str,
    event_version: &'static str,
    #[serde(rename = "eventID")]
    event_id: String,
    event_name: &'static str,
    invoke_identity_arn: &'a str,
    aws_region: &'a str,
    #[serde(rename = "eventSourceARN")]
    event_source_arn: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct KinesisData<'a> {
    kinesis_schema_version: &'static str,
    partition_key: &'a str,
    sequence_number: &'a str,
    data: String,
    approximate_arrival_timestamp: f64,
}

/// The payload of one invocation: the batch's events as `Records`, and the tumbling window's
/// members (an object) beside them.
fn records_event(batch: &[Item], window: Option<&Value>) -> Vec<u8> {
    let size: usize = batch.iter().map(|i| i.event.len() + 1).sum();
    let mut out = Vec::with_capacity(size + 64);
    out.extend_from_slice(b"{\"Records\":[");
    for (n, item) in batch.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        out.extend_from_slice(item.event.as_bytes());
    }
    out.push(b']');
    if let Some(members) = window.and_then(Value::as_object) {
        for (k, v) in members {
            out.push(b',');
            // Writing JSON into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut out, k);
            out.push(b':');
            let _ = serde_json::to_writer(&mut out, v);
        }
    }
    out.push(b'}');
    out
}

/// Which records of a shard a reader takes: all of them, or with a ParallelizationFactor of
/// `of` > 1 those whose partition key hashes to `index` — each lane read in order with a cursor
/// of its own, so records of one key stay in order while the lanes run side by side.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lane {
    pub index: u32,
    pub of: u32,
}

impl Lane {
    pub const WHOLE: Lane = Lane { index: 0, of: 1 };

    /// Where this lane's cursor is kept (the shard's own for a whole shard).
    pub fn cursor_id(&self, shard: &str) -> String {
        if self.of <= 1 {
            shard.to_owned()
        } else {
            format!("{shard}\0lane-{}-of-{}", self.index, self.of)
        }
    }

    fn holds(&self, partition_key: &str) -> bool {
        self.of <= 1 || fnv1a(partition_key.as_bytes()) % self.of == self.index
    }
}

/// FNV-1a: a hash that stays the same across builds, as lanes must across restarts.
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .fold(0x811c_9dc5u32, |h, b| (h ^ *b as u32).wrapping_mul(0x0100_0193))
}

/// A tumbling window's carried state, kept beside the shard's cursor.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct WindowState {
    start_millis: i64,
    state: Value,
}

fn window_key(uuid: &str, shard: &str) -> Vec<u8> {
    format!("{uuid}\0{shard}\0window").into_bytes()
}

/// `2020-07-30T17:00:00Z`, as window bounds are written.
fn window_time(millis: i64) -> String {
    let iso = lakebox_protocol::Timestamp::from_millis(millis).to_iso8601();
    format!("{}Z", iso.split('.').next().unwrap_or(&iso))
}

impl Lambda {
    /// Runs a shard's (or lane's) batches one after another from `cursor` while there are
    /// more, for up to a second (then the poller looks at the stream's shards again): a shard
    /// does not wait for the others between its batches. Whether any batch ran.
    pub(crate) async fn run_shard(
        self: Arc<Self>,
        m: Arc<Mapping>,
        shard: LogShard,
        lane: Lane,
        cursor: u64,
    ) -> bool {
        let until = std::time::Instant::now() + Duration::from_secs(1);
        let cursor_id = lane.cursor_id(&shard.shard_id);
        let mut at = cursor;
        let mut progressed = false;
        while self
            .clone()
            .stream_batch(m.clone(), shard.clone(), lane, at)
            .await
        {
            progressed = true;
            match self.cursor(m.uuid(), &cursor_id) {
                Some(c) if std::time::Instant::now() < until && shard.closed_at.is_none_or(|end| c < end) => {
                    at = c
                }
                _ => break,
            }
        }
        progressed
    }

    /// Reads one batch of `shard` (of its `lane`'s records) from `cursor` and gets it through
    /// the function (see the module's comment); whether there was anything to do.
    pub(crate) async fn stream_batch(
        self: Arc<Self>,
        m: Arc<Mapping>,
        shard: LogShard,
        lane: Lane,
        cursor: u64,
    ) -> bool {
        let c = &m.config;
        let batch = c.batch_size.unwrap_or(100).max(1) as usize;
        let reader = shard.reader.clone();
        // A lane's batch is its share of what is read: read as many as all lanes' batches.
        let want = batch * lane.of.max(1) as usize;
        let read = match tokio::task::spawn_blocking(move || reader.read(cursor, want, 6 * 1024 * 1024)).await
        {
            Ok(Ok(r)) => r,
            _ => return false,
        };
        let cursor_id = lane.cursor_id(&shard.shard_id);
        let tumbling = c.tumbling_window_in_seconds.unwrap_or(0).max(0) as i64 * 1000;
        let now = self.clock.now_millis();
        let Some(read_end) = read.last().map(|r| r.offset + 1) else {
            // Nothing new: a window whose time is over gets its final invocation.
            if tumbling > 0 {
                return self.finish_window(&m, &shard, &cursor_id, None, now).await;
            }
            return false;
        };
        let mut records: Vec<LogRecord> = read
            .into_iter()
            .filter(|r| lane.holds(&r.partition_key))
            .collect();
        let mut next = read_end;
        if records.len() > batch {
            records.truncate(batch);
            next = records.last().map_or(read_end, |r| r.offset + 1);
        }
        let Some(first) = records.first().cloned() else {
            // Only other lanes' records: this lane moves past them.
            return self.save_cursor(&m, &cursor_id, next, None).await;
        };
        // A batching window waits for a full batch until its oldest record is that old.
        let batching = c.maximum_batching_window_in_seconds.unwrap_or(0).max(0) as i64 * 1000;
        if batching > 0 && records.len() < batch && now - first.arrival_millis < batching {
            return false;
        }
        if tumbling > 0 {
            let start = first.arrival_millis - first.arrival_millis.rem_euclid(tumbling);
            // A batch holds one window's records; an earlier window is finished first.
            if self.finish_window(&m, &shard, &cursor_id, Some(start), now).await {
                return true;
            }
            let before = records.len();
            records.retain(|r| r.arrival_millis - r.arrival_millis.rem_euclid(tumbling) == start);
            if records.len() < before {
                next = records.last().map_or(next, |r| r.offset + 1);
            }
        }
        // How far behind the stream's tip the function is (AWS/Lambda IteratorAge).
        let ctx = RequestContext::internal(&m.account, &m.region, now);
        if let Some(f) = m.config.function_arn.as_deref().and_then(|f| f.split(':').nth(6)) {
            self.record_metric(
                &ctx,
                f,
                "IteratorAge",
                "Milliseconds",
                (now - first.arrival_millis).max(0) as f64,
            );
        }
        let items = self.items(&m, &shard, &records);
        let filters = Filters::parse(c.filter_criteria.as_ref()).unwrap_or_default();
        let mut items = items;
        if !filters.is_empty() {
            items.retain(|i| {
                let event = serde_json::from_str(&i.event).unwrap_or_default();
                filters.pass(&filter_view(m.kind(), &event))
            });
        }
        let max_age = c.maximum_record_age_in_seconds.unwrap_or(-1);
        if max_age > 0 {
            let (expired, fresh): (Vec<Item>, Vec<Item>) = items
                .into_iter()
                .partition(|i| now - i.arrival_millis > max_age as i64 * 1000);
            if !expired.is_empty() {
                self.batch_failed(&m, &shard, &expired, "RecordAgeExceeded", 0, None)
                    .await;
            }
            items = fresh;
        }
        let mut window_state = None;
        if !items.is_empty() {
            window_state = match self.run_items(&m, &shard, &cursor_id, items, tumbling).await {
                Some(state) => state,
                None => return false, // the mapping changed or went: leave the cursor
            };
        }
        self.save_cursor(&m, &cursor_id, next, window_state).await
    }

    /// Moves a shard's (or lane's) cursor, with the window state to keep, in one write.
    async fn save_cursor(
        &self,
        m: &Mapping,
        cursor_id: &str,
        next: u64,
        window: Option<WindowState>,
    ) -> bool {
        let state = window
            .and_then(|w| serde_json::to_vec(&w).ok())
            .map(|s| (window_key(m.uuid(), cursor_id), s));
        self.set_cursor_with(m.uuid(), cursor_id, next, state)
            .await
            .unwrap_or(false)
    }

    /// The events of `records` as Lambda passes them to the function.
    fn items(&self, m: &Mapping, shard: &LogShard, records: &[LogRecord]) -> Vec<Item> {
        // Kinesis events name the function's execution role as the invoking identity.
        let ctx = RequestContext::internal(&m.account, &m.region, 0);
        let role = m
            .config
            .function_arn
            .as_deref()
            .and_then(|f| self.existing(&ctx, f, None).ok())
            .and_then(|s| s.config.role)
            .unwrap_or_default();
        let b64 = base64::engine::general_purpose::STANDARD;
        records
            .iter()
            .map(|r| {
                let seq = shard.reader.sequence_number(r.offset);
                let (event, sequence) = if m.kind() == Source::DynamoDb {
                    // A DynamoDB stream record is its event as Lambda passes it, with the
                    // stream's ARN.
                    let mut record: Value = serde_json::from_slice(&r.data).unwrap_or_default();
                    record["eventSourceARN"] = Value::String(m.source().to_owned());
                    let sequence = record["dynamodb"]["SequenceNumber"]
                        .as_str()
                        .map(str::to_owned)
                        .unwrap_or(seq);
                    (record.to_string(), sequence)
                } else {
                    let event = KinesisEvent {
                        kinesis: KinesisData {
                            kinesis_schema_version: "1.0",
                            partition_key: &r.partition_key,
                            sequence_number: &seq,
                            data: b64.encode(&r.data),
                            approximate_arrival_timestamp: r.arrival_millis as f64 / 1000.0,
                        },
                        event_source: "aws:kinesis",
                        event_version: "1.0",
                        event_id: format!("{}:{seq}", shard.shard_id),
                        event_name: "aws:kinesis:record",
                        invoke_identity_arn: &role,
                        aws_region: &m.region,
                        event_source_arn: m.source(),
                    };
                    (serde_json::to_string(&event).unwrap_or_default(), seq)
                };
                Item {
                    arrival_millis: r.arrival_millis,
                    sequence,
                    event,
                }
            })
            .collect()
    }

    /// Gets `items` through the function: retries, bisection, partial failures, the
    /// on-failure destination. The tumbling window's state to keep (when windows are on), or
    /// `None` when the mapping was changed or deleted meanwhile.
    async fn run_items(
        &self,
        m: &Mapping,
        shard: &LogShard,
        cursor_id: &str,
        items: Vec<Item>,
        tumbling: i64,
    ) -> Option<Option<WindowState>> {
        let c = &m.config;
        let max_retries = c.maximum_retry_attempts.unwrap_or(-1);
        let bisect = c.bisect_batch_on_function_error.unwrap_or(false);
        let partial = c
            .function_response_types
            .as_ref()
            .is_some_and(|t| t.contains(&FunctionResponseType::ReportBatchItemFailures));
        let window_start =
            (tumbling > 0).then(|| items[0].arrival_millis - items[0].arrival_millis.rem_euclid(tumbling));
        let mut state = window_start.map(|start| self.window_state(m, cursor_id, start));
        let mut pending: VecDeque<Vec<Item>> = VecDeque::from([items]);
        while let Some(mut batch) = pending.pop_front() {
            let mut attempts = 0i32;
            let mut delay = Duration::from_millis(500);
            loop {
                let window = match (window_start, &state) {
                    (Some(start), Some(s)) => {
                        Some(window_members(m, shard, start, tumbling, &s.state, false))
                    }
                    _ => None,
                };
                let event = records_event(&batch, window.as_ref());
                let failed_from = match self.invoke_batch(m, event).await {
                    Ok(answer) => {
                        if let (Some(s), Some(new)) =
                            (state.as_mut(), answer.as_ref().and_then(|a| a.get("state")))
                        {
                            s.state = new.clone();
                        }
                        let first_failed = partial.then(|| first_failed(answer.as_ref(), &batch)).flatten();
                        match first_failed {
                            None => break,
                            Some(i) => Some(i),
                        }
                    }
                    Err(BatchFailed::Throttled) => {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                    Err(BatchFailed::Function) => None,
                };
                // Records before the first reported failure are done.
                if let Some(i) = failed_from {
                    batch.drain(..i);
                }
                attempts += 1;
                if bisect && batch.len() > 1 {
                    let second = batch.split_off(batch.len() / 2);
                    pending.push_front(second);
                    pending.push_front(batch);
                    break;
                }
                if max_retries >= 0 && attempts > max_retries {
                    tracing::warn!(mapping = %m.uuid(), shard = %shard.shard_id, "batch given up after {attempts} attempts");
                    self.batch_failed(
                        m,
                        shard,
                        &batch,
                        "RetryAttemptsExhausted",
                        attempts,
                        Some("Unhandled"),
                    )
                    .await;
                    break;
                }
                // A mapping deleted meanwhile stops retrying.
                self.mapping(m.uuid()).ok().flatten()?;
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
        Some(state)
    }

    /// The window state stored for the shard if it is for the window starting at `start`, else
    /// a fresh one.
    fn window_state(&self, m: &Mapping, cursor_id: &str, start: i64) -> WindowState {
        self.stored_window(m, cursor_id)
            .filter(|w| w.start_millis == start)
            .unwrap_or(WindowState {
                start_millis: start,
                state: json!({}),
            })
    }

    fn stored_window(&self, m: &Mapping, cursor_id: &str) -> Option<WindowState> {
        let raw = self.meta.get(CURSORS, &window_key(m.uuid(), cursor_id)).ok()??;
        serde_json::from_slice(&raw).ok()
    }

    /// Gives the stored window its final invocation (no records, its state,
    /// `isFinalInvokeForWindow`) when it is over: when records of a later window (`next`) are
    /// there, or its end has passed. Whether it ran one.
    async fn finish_window(
        &self,
        m: &Mapping,
        shard: &LogShard,
        cursor_id: &str,
        next: Option<i64>,
        now: i64,
    ) -> bool {
        let tumbling = m.config.tumbling_window_in_seconds.unwrap_or(0) as i64 * 1000;
        let Some(w) = self.stored_window(m, cursor_id) else {
            return false;
        };
        let over = match next {
            Some(start) => start != w.start_millis,
            None => now >= w.start_millis + tumbling,
        };
        if !over {
            return false;
        }
        let window = window_members(m, shard, w.start_millis, tumbling, &w.state, true);
        let event = records_event(&[], Some(&window));
        loop {
            match self.invoke_batch(m, event.clone()).await {
                Err(BatchFailed::Throttled) => tokio::time::sleep(Duration::from_millis(200)).await,
                Err(BatchFailed::Function) => {
                    tracing::warn!(mapping = %m.uuid(), "the final invocation of a window failed");
                    break;
                }
                Ok(_) => break,
            }
        }
        self.meta
            .delete(CURSORS, &window_key(m.uuid(), cursor_id))
            .is_ok()
    }

    /// Sends AWS's record of a batch given up to the mapping's on-failure destination.
    async fn batch_failed(
        &self,
        m: &Mapping,
        shard: &LogShard,
        items: &[Item],
        condition: &str,
        attempts: i32,
        function_error: Option<&str>,
    ) {
        let Some(dest) = m
            .config
            .destination_config
            .as_ref()
            .and_then(|d| d.on_failure.as_ref())
            .and_then(|f| f.destination.clone())
            .filter(|d| !d.is_empty())
        else {
            return;
        };
        let (Some(first), Some(last)) = (items.first(), items.last()) else {
            return;
        };
        let info = json!({
            "shardId": shard.shard_id,
            "startSequenceNumber": first.sequence,
            "endSequenceNumber": last.sequence,
            "approximateArrivalOfFirstRecord": lakebox_protocol::Timestamp::from_millis(first.arrival_millis).to_iso8601(),
            "approximateArrivalOfLastRecord": lakebox_protocol::Timestamp::from_millis(last.arrival_millis).to_iso8601(),
            "batchSize": items.len(),
            "streamArn": m.source(),
        });
        let mut record = json!({
            "requestContext": {
                "requestId": uuid::Uuid::new_v4().to_string(),
                "functionArn": m.config.function_arn,
                "condition": condition,
                "approximateInvokeCount": attempts,
            },
            "version": "1.0",
            "timestamp": lakebox_protocol::Timestamp::from_millis(self.clock.now_millis()).to_iso8601(),
        });
        if let Some(e) = function_error {
            record["responseContext"] = json!({
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": e,
            });
        }
        let info_key = match m.kind() {
            Source::DynamoDb => "DDBStreamBatchInfo",
            _ => "KinesisBatchInfo",
        };
        record[info_key] = info;
        self.send_to(&dest, record.to_string(), Vec::new()).await;
    }
}

/// The fields filters see: a Kinesis record's `kinesis` fields at the top with `data` decoded
/// (when it is JSON), beside the record's own; a DynamoDB record as it is.
fn filter_view(kind: Source, event: &Value) -> Value {
    if kind != Source::Kinesis {
        return event.clone();
    }
    let mut view = event.clone();
    if let Some(k) = event.get("kinesis").and_then(Value::as_object) {
        for (key, v) in k {
            view[key.as_str()] = v.clone();
        }
    }
    let decoded = event["kinesis"]["data"]
        .as_str()
        .and_then(|d| base64::engine::general_purpose::STANDARD.decode(d).ok())
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok());
    match decoded {
        Some(d) => view["data"] = d,
        None => {
            if let Some(o) = view.as_object_mut() {
                o.remove("data");
            }
        }
    }
    view
}

/// Where the first failed record is in `batch`, from a `batchItemFailures` answer; `None` when
/// nothing failed. An answer the function cannot have meant (an identifier not in the batch)
/// fails the whole batch, as AWS treats it.
fn first_failed(answer: Option<&Value>, batch: &[Item]) -> Option<usize> {
    let failures = answer?.get("batchItemFailures")?.as_array()?;
    let mut first: Option<usize> = None;
    for f in failures {
        let id = f.get("itemIdentifier").and_then(Value::as_str);
        let at = match id {
            Some(id) if !id.is_empty() => batch.iter().position(|i| i.sequence == id).unwrap_or(0),
            _ => 0,
        };
        first = Some(first.map_or(at, |x| x.min(at)));
    }
    first
}

/// The tumbling-window members of an event.
fn window_members(m: &Mapping, shard: &LogShard, start: i64, len: i64, state: &Value, last: bool) -> Value {
    json!({
        "window": { "start": window_time(start), "end": window_time(start + len) },
        "state": state,
        "shardId": shard.shard_id,
        "eventSourceARN": m.source(),
        "isFinalInvokeForWindow": last,
        "isWindowTerminatedEarly": false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_payload_holds_the_events_as_written_and_the_window_beside_them() {
        let batch = [
            Item {
                arrival_millis: 0,
                sequence: "1".into(),
                event: r#"{"n":1}"#.into(),
            },
            Item {
                arrival_millis: 0,
                sequence: "2".into(),
                event: r#"{"n":2}"#.into(),
            },
        ];
        let plain: Value = serde_json::from_slice(&records_event(&batch, None)).unwrap();
        assert_eq!(plain, json!({"Records": [{"n": 1}, {"n": 2}]}));
        let window = json!({"state": {"sum": 3}, "isFinalInvokeForWindow": true});
        let windowed: Value = serde_json::from_slice(&records_event(&[], Some(&window))).unwrap();
        assert_eq!(
            windowed,
            json!({"Records": [], "state": {"sum": 3}, "isFinalInvokeForWindow": true})
        );
    }

    fn item(seq: &str) -> Item {
        Item {
            arrival_millis: 0,
            sequence: seq.into(),
            event: "{}".into(),
        }
    }

    #[test]
    fn partial_failures_point_at_the_first_failed_record() {
        let batch = [item("1"), item("2"), item("3")];
        assert_eq!(
            first_failed(Some(&json!({"batchItemFailures": []})), &batch),
            None
        );
        assert_eq!(first_failed(Some(&json!({})), &batch), None);
        let a = json!({"batchItemFailures": [{"itemIdentifier": "3"}, {"itemIdentifier": "2"}]});
        assert_eq!(first_failed(Some(&a), &batch), Some(1));
        let unknown = json!({"batchItemFailures": [{"itemIdentifier": "zzz"}]});
        assert_eq!(first_failed(Some(&unknown), &batch), Some(0));
    }

    #[test]
    fn kinesis_filters_see_decoded_data() {
        let data = base64::engine::general_purpose::STANDARD.encode(br#"{"kind": "order"}"#);
        let e = json!({"kinesis": {"data": data, "partitionKey": "p1"}, "eventName": "aws:kinesis:record"});
        let v = filter_view(Source::Kinesis, &e);
        assert_eq!(v["data"]["kind"], "order");
        assert_eq!(v["partitionKey"], "p1");
        let raw = json!({"kinesis": {"data": base64::engine::general_purpose::STANDARD.encode(b"not json")}});
        assert!(filter_view(Source::Kinesis, &raw).get("data").is_none());
    }

    #[test]
    fn window_bounds_are_whole_seconds() {
        assert_eq!(window_time(1_596_128_400_000), "2020-07-30T17:00:00Z");
    }
}
