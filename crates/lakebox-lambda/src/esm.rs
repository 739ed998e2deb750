//! Event source mappings: Lambda reading a Kinesis stream or an SQS queue and invoking the
//! function with batches of records, as AWS's pollers do.
//!
//! Mappings are durable records; a supervisor task keeps one poller running per enabled
//! mapping. A Kinesis poller walks each shard in order (parents before their children) from a
//! durable per-shard cursor that advances only after the function succeeded with the batch,
//! so a batch is delivered at least once and in order, across restarts. An SQS poller receives
//! up to BatchSize messages and deletes them once the function succeeded (with
//! `ReportBatchItemFailures`, all but the failed ones); failed messages come back after the
//! queue's visibility timeout, and the queue's redrive policy moves them on.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use lakebox_core::arn::Arn;
use lakebox_core::{RequestContext, ServiceError, paging};
use lakebox_service::links::{LogShard, QueueSource, ShardedLog, StreamKey};
use serde::{Deserialize, Serialize};

use crate::Lambda;
use crate::api::*;
use crate::functions::{invalid, parse_name, user_error};
use crate::stream_batch::Lane;

const TABLE: &str = "event_source_mappings";
/// Per mapping and shard: the offset reading goes on from (and a tumbling window's state).
pub(crate) const CURSORS: &str = "event_source_cursors";
/// How often an idle poller looks again.
const IDLE_POLL: Duration = Duration::from_millis(250);

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Mapping {
    pub config: EventSourceMappingConfiguration,
    pub account: String,
    pub region: String,
    pub tags: std::collections::BTreeMap<String, String>,
}

impl Mapping {
    pub(crate) fn uuid(&self) -> &str {
        self.config.uuid.as_deref().unwrap_or_default()
    }

    fn enabled(&self) -> bool {
        matches!(
            self.config.state.as_deref(),
            Some("Enabled" | "Enabling" | "Creating" | "Updating")
        )
    }

    pub(crate) fn source(&self) -> &str {
        self.config.event_source_arn.as_deref().unwrap_or_default()
    }

    pub(crate) fn kind(&self) -> Source {
        Source::of(self.source())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    Kinesis,
    DynamoDb,
    Sqs,
    Other,
}

impl Source {
    fn of(arn: &str) -> Source {
        match arn.split(':').nth(2) {
            Some("kinesis") => Source::Kinesis,
            Some("dynamodb") if arn.contains("/stream/") => Source::DynamoDb,
            Some("sqs") => Source::Sqs,
            _ => Source::Other,
        }
    }

    /// Kinesis and DynamoDB Streams: sharded, read in order per shard.
    fn is_stream(self) -> bool {
        matches!(self, Source::Kinesis | Source::DynamoDb)
    }

    fn label(self) -> &'static str {
        match self {
            Source::DynamoDb => "DynamoDB",
            Source::Sqs => "SQS",
            _ => "Kinesis",
        }
    }
}

fn storage(e: lakebox_store::StoreError) -> ServiceError {
    ServiceError::internal(e.to_string())
}

fn not_found(uuid: &str) -> ServiceError {
    user_error(
        "ResourceNotFoundException",
        404,
        format!(
            "The resource you requested does not exist. (Service: Lambda, Status Code: 404, Request ID: {uuid})"
        ),
    )
}

/// A stream's name from its ARN: a Kinesis stream's `stream/<name>`, a DynamoDB stream's
/// whole resource (`table/<table>/stream/<label>`).
fn stream_key(arn: &Arn) -> Option<StreamKey<'_>> {
    let name = match arn.service.as_str() {
        "dynamodb" => arn.resource.as_str(),
        _ => arn.resource.strip_prefix("stream/")?,
    };
    Some(StreamKey {
        account: &arn.account_id,
        region: &arn.region,
        name,
    })
}

impl Lambda {
    pub(crate) fn mapping(&self, uuid: &str) -> Result<Option<Mapping>, ServiceError> {
        let raw = self.meta.get(TABLE, uuid.as_bytes()).map_err(storage)?;
        raw.map(|b| serde_json::from_slice(&b).map_err(|e| ServiceError::internal(e.to_string())))
            .transpose()
    }

    fn mapping_of(&self, ctx: &RequestContext, uuid: &str) -> Result<Mapping, ServiceError> {
        match self.mapping(uuid)? {
            Some(m) if m.account == ctx.account_id && m.region == ctx.region => Ok(m),
            _ => Err(not_found(uuid)),
        }
    }

    fn save_mapping(&self, m: &Mapping) -> Result<(), ServiceError> {
        let bytes = serde_json::to_vec(m).map_err(|e| ServiceError::internal(e.to_string()))?;
        self.meta.put(TABLE, m.uuid().as_bytes(), &bytes).map_err(storage)
    }

    pub(crate) fn mappings(&self) -> Result<Vec<Mapping>, ServiceError> {
        let rows = self
            .meta
            .scan_prefix(TABLE, b"", None, usize::MAX)
            .map_err(storage)?;
        rows.into_iter()
            .map(|(_, v)| serde_json::from_slice(&v).map_err(|e| ServiceError::internal(e.to_string())))
            .collect()
    }

    pub(crate) async fn create_mapping(
        &self,
        ctx: &RequestContext,
        input: CreateEventSourceMappingRequest,
    ) -> Result<EventSourceMappingConfiguration, ServiceError> {
        let source = input
            .event_source_arn
            .clone()
            .ok_or_else(|| invalid("Unrecognized event source, must be kinesis, dynamodb stream or sqs."))?;
        let kind = Source::of(&source);
        let arn =
            Arn::parse(&source).ok_or_else(|| invalid(format!("Invalid event source ARN: {source}")))?;
        if kind == Source::Other {
            return Err(invalid(
                "Lakebox's Lambda reads Kinesis streams, DynamoDB streams and SQS queues as event sources; other sources are not supported yet.",
            ));
        }
        // A qualified name (an alias or version) is kept qualified: the mapping invokes that.
        let function = self.target(ctx, &input.function_name, None, false)?;
        crate::filter::Filters::parse(input.filter_criteria.as_ref())?;
        let batch_size = input.batch_size.unwrap_or(match kind {
            Source::Sqs => 10,
            _ => 100,
        });
        let window = input.maximum_batching_window_in_seconds.unwrap_or(0);
        match kind {
            Source::Kinesis | Source::DynamoDb => {
                let label = kind.label();
                if input.starting_position.is_none() {
                    return Err(invalid(format!(
                        "StartingPosition is required for {label} event sources."
                    )));
                }
                if kind == Source::DynamoDb
                    && matches!(input.starting_position, Some(EventSourcePosition::AtTimestamp))
                {
                    return Err(invalid(
                        "AT_TIMESTAMP is not a valid StartingPosition for DynamoDB event sources.",
                    ));
                }
                if !(1..=10_000).contains(&batch_size) {
                    return Err(invalid(format!(
                        "BatchSize must be between 1 and 10000 for {label} event sources."
                    )));
                }
                let exists = match (self.stream_log(kind), stream_key(&arn)) {
                    (Some(k), Some(key)) => k.shards(key)?.is_some(),
                    _ => false,
                };
                if !exists {
                    return Err(invalid(format!("Stream not found: {source}")));
                }
            }
            Source::Sqs => {
                if input.starting_position.is_some() {
                    return Err(invalid("StartingPosition is not valid for SQS event sources."));
                }
                if batch_size > 10 && window == 0 {
                    return Err(invalid(
                        "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10",
                    ));
                }
                if !(1..=10_000).contains(&batch_size) {
                    return Err(invalid(
                        "BatchSize must be between 1 and 10000 for SQS event sources.",
                    ));
                }
                // AWS refuses a queue whose messages would come back while the function runs.
                let function_timeout = function.config.timeout.unwrap_or(3);
                if let Some(visibility) = self.queues.get().and_then(|q| q.visibility_timeout(&source))
                    && visibility < i64::from(function_timeout)
                {
                    return Err(invalid(format!(
                        "Queue visibility timeout: {visibility} seconds is less than Function timeout: {function_timeout} seconds"
                    )));
                }
            }
            Source::Other => {}
        }
        let existing = self.mappings()?;
        if let Some(dup) = existing.iter().find(|m| {
            m.source() == source && m.config.function_arn.as_deref() == Some(function.invoked_arn.as_str())
        }) {
            return Err(user_error(
                "ResourceConflictException",
                409,
                format!(
                    "An event source mapping with event source (\"{source}\"), function (\"{}\") already exists. Please update or delete the existing mapping with UUID {}",
                    function.invoked_arn,
                    dup.uuid()
                ),
            ));
        }
        let uuid = uuid::Uuid::new_v4().to_string();
        let enabled = input.enabled.unwrap_or(true);
        let config = EventSourceMappingConfiguration {
            uuid: Some(uuid.clone()),
            starting_position: input.starting_position,
            starting_position_timestamp: input.starting_position_timestamp,
            batch_size: Some(batch_size),
            maximum_batching_window_in_seconds: Some(window),
            parallelization_factor: kind
                .is_stream()
                .then(|| input.parallelization_factor.unwrap_or(1)),
            event_source_arn: Some(source),
            filter_criteria: input.filter_criteria,
            function_arn: Some(function.invoked_arn.clone()),
            last_modified: Some(lakebox_protocol::Timestamp::from_millis(self.clock.now_millis())),
            last_processing_result: kind.is_stream().then(|| "No records processed".to_owned()),
            state: Some(if enabled { "Creating" } else { "Disabled" }.into()),
            state_transition_reason: Some("USER_INITIATED".into()),
            destination_config: input.destination_config,
            maximum_record_age_in_seconds: kind
                .is_stream()
                .then(|| input.maximum_record_age_in_seconds.unwrap_or(-1)),
            bisect_batch_on_function_error: kind
                .is_stream()
                .then(|| input.bisect_batch_on_function_error.unwrap_or(false)),
            maximum_retry_attempts: kind
                .is_stream()
                .then(|| input.maximum_retry_attempts.unwrap_or(-1)),
            tumbling_window_in_seconds: kind
                .is_stream()
                .then(|| input.tumbling_window_in_seconds.unwrap_or(0)),
            function_response_types: Some(input.function_response_types.unwrap_or_default()),
            scaling_config: input.scaling_config,
            event_source_mapping_arn: Some(
                Arn::new(
                    "lambda",
                    &ctx.region,
                    &ctx.account_id,
                    format!("event-source-mapping:{uuid}"),
                )
                .to_string(),
            ),
            ..Default::default()
        };
        let mapping = Mapping {
            config,
            account: ctx.account_id.clone(),
            region: ctx.region.clone(),
            tags: input.tags.unwrap_or_default(),
        };
        // Stored as enabled (the poller starts at once); answered Creating, as AWS answers.
        let mut stored = mapping.clone();
        if enabled {
            stored.config.state = Some("Enabled".into());
        }
        self.save_mapping(&stored)?;
        self.mappings_changed.notify_one();
        Ok(mapping.config)
    }

    pub(crate) fn get_mapping(
        &self,
        ctx: &RequestContext,
        uuid: &str,
    ) -> Result<EventSourceMappingConfiguration, ServiceError> {
        Ok(self.mapping_of(ctx, uuid)?.config)
    }

    pub(crate) fn list_mappings(
        &self,
        ctx: &RequestContext,
        input: ListEventSourceMappingsRequest,
    ) -> Result<ListEventSourceMappingsResponse, ServiceError> {
        let function = match &input.function_name {
            Some(f) => Some(parse_name(ctx, f)?.0.to_owned()),
            None => None,
        };
        let after = match &input.marker {
            Some(m) => Some(paging::decode(m).map_err(|_| invalid("Invalid marker"))?),
            None => None,
        };
        let limit = input.max_items.unwrap_or(100).clamp(1, 10_000) as usize;
        let mut all: Vec<Mapping> = self
            .mappings()?
            .into_iter()
            .filter(|m| m.account == ctx.account_id && m.region == ctx.region)
            .filter(|m| input.event_source_arn.as_deref().is_none_or(|s| m.source() == s))
            .filter(|m| {
                function.as_deref().is_none_or(|f| {
                    m.config
                        .function_arn
                        .as_deref()
                        .is_some_and(|a| a.rsplit(':').next() == Some(f))
                })
            })
            .filter(|m| after.as_deref().is_none_or(|a| m.uuid() > a))
            .collect();
        all.sort_by(|a, b| a.uuid().cmp(b.uuid()));
        let next = (all.len() > limit).then(|| paging::encode(all[limit - 1].uuid()));
        Ok(ListEventSourceMappingsResponse {
            event_source_mappings: Some(all.into_iter().take(limit).map(|m| m.config).collect()),
            next_marker: next,
        })
    }

    pub(crate) fn update_mapping(
        &self,
        ctx: &RequestContext,
        input: UpdateEventSourceMappingRequest,
    ) -> Result<EventSourceMappingConfiguration, ServiceError> {
        let mut m = self.mapping_of(ctx, &input.uuid)?;
        let m_kind = m.kind();
        if let Some(f) = &input.function_name {
            m.config.function_arn = Some(self.target(ctx, f, None, false)?.invoked_arn);
        }
        let c = &mut m.config;
        if let Some(v) = input.batch_size {
            c.batch_size = Some(v);
        }
        if let Some(v) = input.maximum_batching_window_in_seconds {
            c.maximum_batching_window_in_seconds = Some(v);
        }
        if let Some(v) = input.maximum_retry_attempts {
            c.maximum_retry_attempts = Some(v);
        }
        if let Some(v) = input.function_response_types {
            c.function_response_types = Some(v);
        }
        if let Some(v) = input.filter_criteria {
            crate::filter::Filters::parse(Some(&v))?;
            c.filter_criteria = Some(v);
        }
        let stream = m_kind.is_stream();
        if let Some(v) = input.bisect_batch_on_function_error.filter(|_| stream) {
            c.bisect_batch_on_function_error = Some(v);
        }
        if let Some(v) = input.maximum_record_age_in_seconds.filter(|_| stream) {
            c.maximum_record_age_in_seconds = Some(v);
        }
        if let Some(v) = input.tumbling_window_in_seconds.filter(|_| stream) {
            c.tumbling_window_in_seconds = Some(v);
        }
        if let Some(v) = input.parallelization_factor.filter(|_| stream) {
            c.parallelization_factor = Some(v);
        }
        if let Some(v) = input.scaling_config {
            c.scaling_config = Some(v);
        }
        if let Some(v) = input.destination_config {
            c.destination_config = Some(v);
        }
        let answer_state = match input.enabled {
            Some(true) => {
                c.state = Some("Enabled".into());
                "Enabling"
            }
            Some(false) => {
                c.state = Some("Disabled".into());
                "Disabling"
            }
            None => "Updating",
        };
        c.last_modified = Some(lakebox_protocol::Timestamp::from_millis(self.clock.now_millis()));
        self.save_mapping(&m)?;
        self.mappings_changed.notify_one();
        let mut answer = m.config;
        answer.state = Some(answer_state.into());
        Ok(answer)
    }

    pub(crate) fn delete_mapping(
        &self,
        ctx: &RequestContext,
        uuid: &str,
    ) -> Result<EventSourceMappingConfiguration, ServiceError> {
        let m = self.mapping_of(ctx, uuid)?;
        self.meta
            .write(|b| {
                b.delete(TABLE, uuid.as_bytes())?;
                for (k, _) in b.scan_prefix(CURSORS, format!("{uuid}\0").as_bytes())? {
                    b.delete(CURSORS, &k)?;
                }
                Ok(())
            })
            .map_err(storage)?;
        self.mappings_changed.notify_one();
        let mut answer = m.config;
        answer.state = Some("Deleting".into());
        Ok(answer)
    }

    /// Keeps one poller per enabled mapping running, starting and stopping them as mappings
    /// change; runs until the returned task is aborted.
    pub fn start_event_sources(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let lambda = self.clone();
        tokio::spawn(async move {
            let mut running: HashMap<String, (String, tokio::task::JoinHandle<()>)> = HashMap::new();
            loop {
                let mappings = lambda.mappings().unwrap_or_default();
                let wanted: HashMap<String, Mapping> = mappings
                    .into_iter()
                    .filter(Mapping::enabled)
                    .map(|m| (m.uuid().to_owned(), m))
                    .collect();
                running.retain(|uuid, (version, task)| {
                    let keep =
                        wanted.get(uuid).is_some_and(|m| &revision(m) == version) && !task.is_finished();
                    if !keep {
                        task.abort();
                    }
                    keep
                });
                for (uuid, m) in wanted {
                    if running.contains_key(&uuid) {
                        continue;
                    }
                    let version = revision(&m);
                    let poller = lambda.clone();
                    let task = tokio::spawn(async move {
                        match m.kind() {
                            Source::Kinesis | Source::DynamoDb => poller.poll_stream(m).await,
                            Source::Sqs => {
                                // ScalingConfig.MaximumConcurrency pollers (at most 16 here).
                                let n = m
                                    .config
                                    .scaling_config
                                    .as_ref()
                                    .and_then(|s| s.maximum_concurrency)
                                    .unwrap_or(1)
                                    .clamp(1, 16);
                                let mut pollers = tokio::task::JoinSet::new();
                                for _ in 0..n {
                                    pollers.spawn(poller.clone().poll_sqs(m.clone()));
                                }
                                while pollers.join_next().await.is_some() {}
                            }
                            Source::Other => {}
                        }
                    });
                    running.insert(uuid, (version, task));
                }
                let _ =
                    tokio::time::timeout(Duration::from_secs(5), lambda.mappings_changed.notified()).await;
            }
        })
    }

    /// Runs the function with one batch: its answer, or why it did not succeed.
    pub(crate) async fn invoke_batch(
        &self,
        m: &Mapping,
        payload: Vec<u8>,
    ) -> Result<Option<serde_json::Value>, BatchFailed> {
        let ctx = RequestContext::internal(&m.account, &m.region, self.clock.now_millis());
        let input = InvocationRequest {
            function_name: m.config.function_arn.clone().unwrap_or_default(),
            payload: Some(lakebox_protocol::Blob(payload)),
            ..Default::default()
        };
        match self.invoke_function(&ctx, input).await {
            Ok(out) if out.function_error.is_none() => {
                Ok(out.payload.and_then(|p| serde_json::from_slice(&p.0).ok()))
            }
            Err(e) if crate::concurrency::is_throttle(&e) => Err(BatchFailed::Throttled),
            _ => Err(BatchFailed::Function),
        }
    }

    pub(crate) fn cursor(&self, uuid: &str, shard: &str) -> Option<u64> {
        let raw = self
            .meta
            .get(CURSORS, format!("{uuid}\0{shard}").as_bytes())
            .ok()??;
        std::str::from_utf8(&raw).ok()?.parse().ok()
    }

    async fn set_cursor(&self, uuid: &str, shard: &str, offset: u64) -> Result<(), ServiceError> {
        self.set_cursor_with(uuid, shard, offset, None).await.map(drop)
    }

    /// Moves the cursor of a shard (or lane) to `offset`, with another cursor-table entry
    /// beside it in the same write (a tumbling window's state). A mapping deleted meanwhile
    /// keeps no cursor: then nothing is written and the answer is `false`. Group-committed off
    /// the async threads (a poller waits for its cursor's fsync, the server does not).
    pub(crate) async fn set_cursor_with(
        &self,
        uuid: &str,
        cursor_id: &str,
        offset: u64,
        extra: Option<(Vec<u8>, Vec<u8>)>,
    ) -> Result<bool, ServiceError> {
        if self.mapping(uuid)?.is_none() {
            return Ok(false);
        }
        let key = format!("{uuid}\0{cursor_id}");
        self.meta
            .write_async(move |b| {
                b.put(CURSORS, key.as_bytes(), offset.to_string().as_bytes())?;
                if let Some((k, v)) = &extra {
                    b.put(CURSORS, k, v)?;
                }
                Ok(true)
            })
            .await
            .map_err(storage)
    }

    /// The sharded log a stream source reads: Kinesis's or DynamoDB's.
    fn stream_log(&self, kind: Source) -> Option<Arc<dyn ShardedLog>> {
        match kind {
            Source::DynamoDb => self.dynamodb_streams.get().cloned(),
            _ => self.kinesis.get().cloned(),
        }
    }

    async fn poll_stream(self: Arc<Self>, m: Mapping) {
        let Some(log) = self.stream_log(m.kind()) else {
            return;
        };
        let Some(arn) = Arn::parse(m.source()) else { return };
        let m = Arc::new(m);
        loop {
            let Some(key) = stream_key(&arn) else { return };
            let shards = match log.shards(key) {
                Ok(Some(s)) => s,
                _ => {
                    tokio::time::sleep(IDLE_POLL * 4).await;
                    continue;
                }
            };
            // Shards are independent: one batch of each ready shard at a time, side by side
            // (each in an execution environment of its own), in order within a shard. With a
            // ParallelizationFactor above 1, each shard's lanes run side by side too.
            let factor = m.config.parallelization_factor.unwrap_or(1).clamp(1, 10) as u32;
            let mut steps = tokio::task::JoinSet::new();
            let mut laned = Vec::new();
            for shard in &shards {
                let Some(cursor) = self.shard_cursor(&m, shard, &shards).await else {
                    continue;
                };
                if factor == 1 {
                    steps.spawn(
                        self.clone()
                            .run_shard(m.clone(), shard.clone(), Lane::WHOLE, cursor),
                    );
                    continue;
                }
                for index in 0..factor {
                    let lane = Lane { index, of: factor };
                    // A lane starts where the whole shard stands (also after the factor changed).
                    let at = self
                        .cursor(m.uuid(), &lane.cursor_id(&shard.shard_id))
                        .map_or(cursor, |c| c.max(cursor));
                    if shard.closed_at.is_some_and(|end| at >= end) {
                        continue;
                    }
                    steps.spawn(self.clone().run_shard(m.clone(), shard.clone(), lane, at));
                }
                laned.push(shard.shard_id.clone());
            }
            let mut progressed = false;
            while let Some(done) = steps.join_next().await {
                progressed |= done.unwrap_or(false);
            }
            // A laned shard stands where its slowest lane does.
            for shard in laned {
                let Some(base) = self.cursor(m.uuid(), &shard) else {
                    continue;
                };
                let min = (0..factor)
                    .map(|index| {
                        let lane = Lane { index, of: factor };
                        self.cursor(m.uuid(), &lane.cursor_id(&shard)).unwrap_or(base)
                    })
                    .min()
                    .unwrap_or(base);
                if min > base {
                    let _ = self.set_cursor(m.uuid(), &shard, min).await;
                }
            }
            if !progressed {
                tokio::time::sleep(IDLE_POLL).await;
            }
        }
    }

    /// Where a shard's reading stands, or `None` when it is not to be read now (its parents
    /// are not read to their end, or it is closed and read through). A shard met for the
    /// first time starts where the mapping's StartingPosition says (a child at its start).
    async fn shard_cursor(&self, m: &Mapping, shard: &LogShard, shards: &[LogShard]) -> Option<u64> {
        let uuid = m.uuid();
        let cursor = match self.cursor(uuid, &shard.shard_id) {
            Some(c) => c,
            None => {
                if !shard.parents_read(shards, |p| self.cursor(uuid, p)) {
                    return None;
                }
                let start = if shard.parent_shard_id.is_some() {
                    0
                } else {
                    match m.config.starting_position {
                        Some(EventSourcePosition::Latest) => shard.reader.next_offset().unwrap_or(0),
                        Some(EventSourcePosition::AtTimestamp) => {
                            let at = m
                                .config
                                .starting_position_timestamp
                                .map(|t| t.as_millis())
                                .unwrap_or(0);
                            first_at(&*shard.reader, at)
                        }
                        _ => 0,
                    }
                };
                self.set_cursor(uuid, &shard.shard_id, start).await.ok()?;
                start
            }
        };
        shard.closed_at.is_none_or(|end| cursor < end).then_some(cursor)
    }

    async fn poll_sqs(self: Arc<Self>, m: Mapping) {
        let Some(queues) = self.queues.get().cloned() else {
            return;
        };
        let batch = m.config.batch_size.unwrap_or(10).max(1) as usize;
        let window =
            Duration::from_secs(m.config.maximum_batching_window_in_seconds.unwrap_or(0).max(0) as u64);
        let partial = m.config.function_response_types.as_ref().is_some_and(|t| {
            t.iter()
                .any(|r| matches!(r, FunctionResponseType::ReportBatchItemFailures))
        });
        loop {
            // Gather up to BatchSize messages, waiting at most the batching window for more.
            let started = tokio::time::Instant::now();
            let mut got: Vec<lakebox_service::links::QueueMessage> = Vec::new();
            let mut place: HashMap<String, usize> = HashMap::new();
            loop {
                let want = (batch - got.len()).min(10);
                match queues.receive(m.source(), want, 1).await {
                    Ok(Some(msgs)) => {
                        // A message received again within the window (its visibility timeout
                        // ran out meanwhile) is in the batch once, with its newest receipt.
                        for msg in msgs {
                            match place.get(&msg.message_id) {
                                Some(&i) => got[i] = msg,
                                None => {
                                    place.insert(msg.message_id.clone(), got.len());
                                    got.push(msg);
                                }
                            }
                        }
                    }
                    Ok(None) => {
                        tokio::time::sleep(IDLE_POLL * 4).await;
                        break;
                    }
                    Err(_) => break,
                }
                if got.len() >= batch || started.elapsed() >= window {
                    break;
                }
            }
            // Messages no filter matches are deleted unseen, as AWS deletes them.
            let filters =
                crate::filter::Filters::parse(m.config.filter_criteria.as_ref()).unwrap_or_default();
            let (got, skipped): (Vec<_>, Vec<_>) = got.into_iter().partition(|msg| {
                if filters.is_empty() {
                    return true;
                }
                let body = serde_json::from_str::<serde_json::Value>(&msg.body)
                    .unwrap_or_else(|_| serde_json::Value::String(msg.body.clone()));
                filters.pass(&serde_json::json!({
                    "body": body,
                    "attributes": msg.attributes,
                    "messageAttributes": msg.message_attributes,
                    "messageId": msg.message_id,
                }))
            });
            if !skipped.is_empty()
                && let Err(e) = queues
                    .delete(
                        m.source(),
                        skipped.into_iter().map(|s| s.receipt_handle).collect(),
                    )
                    .await
            {
                tracing::warn!(mapping = %m.uuid(), "deleting filtered-out messages: {e}");
            }
            if got.is_empty() {
                continue;
            }
            let arn = Arn::parse(m.source());
            let event = serde_json::json!({
                "Records": got.iter().map(|msg| serde_json::json!({
                    "messageId": msg.message_id,
                    "receiptHandle": msg.receipt_handle,
                    "body": msg.body,
                    "attributes": msg.attributes,
                    "messageAttributes": msg.message_attributes,
                    "md5OfBody": msg.md5_of_body,
                    "md5OfMessageAttributes": msg.md5_of_message_attributes,
                    "eventSource": "aws:sqs",
                    "eventSourceARN": m.source(),
                    "awsRegion": arn.as_ref().map(|a| a.region.as_str()).unwrap_or(&m.region),
                })).collect::<Vec<_>>(),
            });
            // Success deletes the batch; a failure leaves it to come back after the visibility
            // timeout. With ReportBatchItemFailures only the items the function names stay.
            let done: Vec<String> = match self.invoke_batch(&m, event.to_string().into_bytes()).await {
                Ok(answer) if partial => {
                    let failed: Vec<String> = answer
                        .as_ref()
                        .and_then(|a| a.get("batchItemFailures"))
                        .and_then(|f| f.as_array())
                        .map(|items| {
                            items
                                .iter()
                                .filter_map(|i| {
                                    i.get("itemIdentifier")
                                        .and_then(|v| v.as_str())
                                        .map(str::to_owned)
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    got.iter()
                        .filter(|g| !failed.contains(&g.message_id))
                        .map(|g| g.receipt_handle.clone())
                        .collect()
                }
                Ok(_) => got.iter().map(|g| g.receipt_handle.clone()).collect(),
                Err(_) => Vec::new(),
            };
            if !done.is_empty()
                && let Err(e) = queues.delete(m.source(), done).await
            {
                tracing::warn!(mapping = %m.uuid(), "deleting processed messages: {e}");
            }
        }
    }
}

/// Why a batch did not succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BatchFailed {
    /// The function's concurrency was used up: the batch did not run.
    Throttled,
    /// The function ran and failed (or could not start).
    Function,
}

/// What makes a running poller stale: the mapping's configuration as stored.
fn revision(m: &Mapping) -> String {
    serde_json::to_string(&m.config).unwrap_or_default()
}

/// The first offset of a shard whose record arrived at or after `at_millis` (AT_TIMESTAMP).
fn first_at(reader: &dyn lakebox_service::links::ShardReader, at_millis: i64) -> u64 {
    let mut from = 0;
    loop {
        match reader.read(from, 1000, 4 * 1024 * 1024) {
            Ok(records) if !records.is_empty() => {
                if let Some(r) = records.iter().find(|r| r.arrival_millis >= at_millis) {
                    return r.offset;
                }
                from = records.last().map(|r| r.offset + 1).unwrap_or(from);
            }
            _ => return reader.next_offset().unwrap_or(from),
        }
    }
}

/// What the binary links in: Kinesis streams, DynamoDB streams and SQS queues to read.
impl Lambda {
    pub fn set_event_sources(
        &self,
        kinesis: Arc<dyn ShardedLog>,
        dynamodb_streams: Arc<dyn ShardedLog>,
        queues: Arc<dyn QueueSource>,
    ) {
        let _ = self.kinesis.set(kinesis);
        let _ = self.dynamodb_streams.set(dynamodb_streams);
        let _ = self.queues.set(queues);
    }
}
