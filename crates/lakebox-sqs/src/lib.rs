//! Amazon SQS for Lakebox: durable standard and FIFO queues with AWS's semantics — visibility
//! timeouts, delays, long polling woken by the send, retention, dead-letter redrive, message
//! groups and deduplication — over both
//! of SQS's protocols (awsJson 1.0 for today's SDKs, awsQuery forms and XML for older ones).
//!
//! - [`api`]: the generated shapes, validation and the two dispatchers.
//! - `queues`: queue records (attributes, tags, policy) in the metadata store; the queue
//!   operations.
//! - `messages`: one queue's messages in memory and their transitions; `journal`: the durable
//!   record of those transitions, replayed at start; `ops`: the message operations.
//!
//! Access: queue policies decide other accounts' requests, and deny explicitly (`access`).

mod access;
pub mod api;
mod attributes;
pub mod bodies;
mod consumer;
mod errors;
mod journal;
mod messages;
mod moves;
mod ops;
mod queues;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use lakebox_core::clock::Clock;
use lakebox_core::{RequestContext, ServiceError};
use lakebox_protocol::query::QueryRequest;
use lakebox_service::events::{self, DeliveryError, EventSink};
use lakebox_service::{BoxFuture, QueryService, RpcRequest, RpcResponse, RpcService};
use lakebox_store::{Log, LogConfig, LogEntry, MetaStore, StoreError};

use crate::api::*;
use crate::journal::Event;
use crate::queues::{Queue, QueueKey};

/// How often retention is applied to idle queues and the journal's dead segments are deleted.
const SWEEP_INTERVAL: Duration = Duration::from_secs(30);
/// The journal's segment size: small enough that space is given back soon after messages are
/// consumed.
const JOURNAL_SEGMENT_BYTES: u64 = 32 * 1024 * 1024;

pub struct Sqs {
    dir: PathBuf,
    clock: Arc<dyn Clock>,
    meta: MetaStore,
    /// Opened by the first message write (a server that never queues a message creates no
    /// journal), or at start when one exists.
    journal: Mutex<Option<Arc<Log>>>,
    queues: RwLock<HashMap<QueueKey, Arc<Queue>>>,
    /// When each name was last deleted: AWS refuses to create it again for 60 seconds.
    deleted: Mutex<HashMap<QueueKey, i64>>,
    /// Serialises changes to queue records (create, delete, attributes, tags), so two of them
    /// racing cannot store one incarnation and keep another in memory, or lose an update.
    admin: tokio::sync::Mutex<()>,
    moves: moves::Moves,
    /// The journal's end at the previous sweep: every record below it is reflected in memory.
    swept_up_to: Mutex<Option<u64>>,
    segment_bytes: u64,
    /// The service itself, for the tasks it spawns (message moves).
    me: Weak<Sqs>,
    /// Where the queues' AWS/SQS metrics go, once the binary wires it.
    metrics: std::sync::OnceLock<lakebox_service::metrics::Recorder>,
    /// How much message content all queues hold in memory; the rest is read from the journal.
    holding: Arc<messages::Holding>,
}

impl Sqs {
    /// Opens the queues in `dir` and replays the journal into them. At most `memory_bytes` of
    /// message content is held in memory across all queues; the rest is read back from the
    /// journal when it is received.
    pub fn open(dir: &Path, clock: Arc<dyn Clock>, memory_bytes: usize) -> Result<Arc<Self>, StoreError> {
        Self::open_with(dir, clock, JOURNAL_SEGMENT_BYTES, memory_bytes)
    }

    /// [`open`](Self::open) with the journal's segment size (tests use small ones).
    fn open_with(
        dir: &Path,
        clock: Arc<dyn Clock>,
        segment_bytes: u64,
        memory_bytes: usize,
    ) -> Result<Arc<Self>, StoreError> {
        let meta = MetaStore::open(&dir.join("meta.redb"))?;
        let moves = moves::Moves::load(&meta)?;
        let sqs = Arc::new_cyclic(|me| Sqs {
            dir: dir.to_owned(),
            clock,
            meta,
            journal: Mutex::new(None),
            queues: RwLock::new(HashMap::new()),
            deleted: Mutex::new(HashMap::new()),
            admin: tokio::sync::Mutex::new(()),
            moves,
            swept_up_to: Mutex::new(None),
            segment_bytes,
            me: me.clone(),
            metrics: std::sync::OnceLock::new(),
            holding: messages::Holding::new(memory_bytes),
        });
        let records = queues::load(&sqs.meta)?;
        {
            let mut map = sqs.queues.write().unwrap();
            for r in records {
                map.insert(r.key(), Arc::new(Queue::new(r, sqs.holding.clone())));
            }
        }
        if sqs.journal_dir().exists() {
            let log = sqs.journal()?;
            sqs.replay(&log)?;
            // Messages whose retention ran out while the server was down go now.
            sqs.sweep();
        }
        Ok(sqs)
    }

    /// Publishes the queues' AWS/SQS metrics through `recorder`: the activity of every call,
    /// and every `every` the queues' depths and oldest message's age.
    pub fn start_metrics(
        self: &Arc<Self>,
        recorder: lakebox_service::metrics::Recorder,
        every: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let _ = self.metrics.set(recorder.clone());
        lakebox_service::tasks::every(self, every, move |sqs| {
            sqs.sample_depths(&recorder);
            async {}
        })
    }

    /// Each queue's depth and oldest message's age, as AWS/SQS samples them.
    fn sample_depths(&self, recorder: &lakebox_service::metrics::Recorder) {
        let now = self.now();
        let queues: Vec<(QueueKey, Arc<Queue>)> = self
            .queues
            .read()
            .unwrap()
            .iter()
            .map(|(k, q)| (k.clone(), q.clone()))
            .collect();
        for (key, q) in queues {
            let expire_before = now - q.retention_millis();
            let (counts, oldest) = {
                let m = q.messages.lock().unwrap();
                (m.counts(now, expire_before), m.oldest_sent_millis(expire_before))
            };
            let age = oldest.map_or(0.0, |t| ((now - t).max(0) / 1000) as f64);
            recorder.record_many(
                &key.account,
                &key.region,
                "AWS/SQS",
                &[("QueueName", key.name.as_str())],
                &[
                    (
                        "ApproximateNumberOfMessagesVisible",
                        "Count",
                        counts.visible as f64,
                    ),
                    (
                        "ApproximateNumberOfMessagesNotVisible",
                        "Count",
                        counts.in_flight as f64,
                    ),
                    (
                        "ApproximateNumberOfMessagesDelayed",
                        "Count",
                        counts.delayed as f64,
                    ),
                    ("ApproximateAgeOfOldestMessage", "Seconds", age),
                ],
            );
        }
    }

    /// Records an activity metric of the queue a URL names, in AWS/SQS.
    fn metric(
        &self,
        ctx: &RequestContext,
        queue_url: &str,
        name: &'static str,
        unit: &'static str,
        value: f64,
    ) {
        if let Some(r) = self.metrics.get() {
            let queue = queue_url
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or_default();
            r.record(ctx, "AWS/SQS", name, &[("QueueName", queue)], unit, value);
        }
    }

    /// The sink through which other services (S3's notifications) send messages to queues.
    pub fn event_sink(self: &Arc<Self>) -> Arc<dyn EventSink> {
        Arc::new(QueueEvents(self.clone()))
    }

    fn journal_dir(&self) -> PathBuf {
        self.dir.join("journal")
    }

    fn journal(&self) -> Result<Arc<Log>, StoreError> {
        let mut j = self.journal.lock().unwrap();
        if let Some(log) = &*j {
            return Ok(log.clone());
        }
        let config = LogConfig {
            segment_bytes: self.segment_bytes,
            ..LogConfig::default()
        };
        let log = Arc::new(Log::open(&self.journal_dir(), config)?);
        *j = Some(log.clone());
        Ok(log)
    }

    /// Rebuilds every queue's messages from the journal.
    fn replay(&self, log: &Log) -> Result<(), StoreError> {
        let by_id: HashMap<u64, Arc<Queue>> = self
            .queues
            .read()
            .unwrap()
            .values()
            .map(|q| (q.id, q.clone()))
            .collect();
        let mut from = log.first_offset();
        let end = log.next_offset();
        let mut replayed = 0u64;
        while from < end {
            let batch = log.read(from, 4096, 16 * 1024 * 1024)?;
            let Some(last) = batch.last() else { break };
            from = last.offset + 1;
            for rec in batch {
                let Some(event) = Event::decode(&rec.payload) else {
                    tracing::warn!(
                        offset = rec.offset,
                        "skipping an SQS journal record that does not decode"
                    );
                    continue;
                };
                replayed += 1;
                apply(&by_id, rec.offset, rec.timestamp_millis, event);
            }
        }
        tracing::debug!(records = replayed, "SQS journal replayed");
        Ok(())
    }

    /// Writes events durably (one group commit for all of them); returns the offset of the
    /// first.
    async fn record(&self, events: &[Event]) -> Result<u64, ServiceError> {
        let log = self.journal().map_err(errors::store)?;
        let now = self.clock.now_millis();
        let entries = events
            .iter()
            .map(|e| LogEntry {
                timestamp_millis: now,
                payload: e.encode(),
            })
            .collect();
        let range = log.append(entries).await.map_err(errors::store)?;
        Ok(range.start)
    }

    pub(crate) fn now(&self) -> i64 {
        self.clock.now_millis()
    }

    /// Applies retention to every queue and deletes journal segments that hold only messages
    /// already gone, and resumes message move tasks a stop interrupted. Runs until the server
    /// stops.
    pub fn start_background_work(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        for task in self.moves.running() {
            moves::spawn(self, task);
        }
        let sqs = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(SWEEP_INTERVAL).await;
                let Some(sqs) = sqs.upgrade() else { return };
                let work = sqs.clone();
                let _ = tokio::task::spawn_blocking(move || work.sweep()).await;
            }
        })
    }

    fn sweep(&self) {
        let now = self.now();
        let queues: Vec<Arc<Queue>> = self.queues.read().unwrap().values().cloned().collect();
        let mut min_seq: Option<u64> = None;
        for q in &queues {
            let retention = q.retention_millis();
            let mut m = q.messages.lock().unwrap();
            m.expire(now - retention, now);
            if let Some(s) = m.min_seq() {
                min_seq = Some(min_seq.map_or(s, |x| x.min(s)));
            }
        }
        let log = self.journal.lock().unwrap().clone();
        if let Some(log) = log {
            // A send is journaled before its message is in memory: a record appended just now
            // may belong to a message the scan above could not see yet. Only records older
            // than the previous sweep (30 s ago, long since in memory) may go.
            let settled = self.swept_up_to.lock().unwrap().replace(log.next_offset());
            let keep_from = min_seq.unwrap_or(u64::MAX).min(settled.unwrap_or(0));
            if let Err(e) = log.truncate_before(keep_from) {
                tracing::warn!(error = %e, "could not delete old SQS journal segments");
            }
        }
    }
}

/// Events published to queues by ARN.
struct QueueEvents(Arc<Sqs>);

impl EventSink for QueueEvents {
    fn deliver(&self, target_arn: String, event: events::Event) -> BoxFuture<Result<(), DeliveryError>> {
        let sqs = self.0.clone();
        Box::pin(async move { ops::deliver_event(&sqs, &target_arn, event).await })
    }
}

/// Applies one journal event, written at `written` (milliseconds), to the queues (replay).
fn apply(by_id: &HashMap<u64, Arc<Queue>>, offset: u64, written: i64, event: Event) {
    let queue_of = |id: u64| by_id.get(&id);
    match event {
        Event::Sent {
            queue,
            visible_at,
            sent,
        } => {
            if let Some(q) = queue_of(queue) {
                q.messages
                    .lock()
                    .unwrap()
                    .insert(offset, Arc::new(*sent), visible_at, written);
            }
        }
        Event::Received {
            queue,
            seq,
            visible_at,
            count,
            first,
            receipt,
            attempt,
        } => {
            if let Some(q) = queue_of(queue) {
                q.messages
                    .lock()
                    .unwrap()
                    .apply_receive(seq, visible_at, count, first, receipt);
                if let Some(a) = attempt {
                    q.remember_attempt(a.id, a.until, seq, receipt);
                }
            }
        }
        Event::Visibility {
            queue,
            seq,
            visible_at,
        } => {
            if let Some(q) = queue_of(queue) {
                q.messages.lock().unwrap().set_visible_at(seq, visible_at);
            }
        }
        Event::Deleted { queue, seqs } => {
            if let Some(q) = queue_of(queue) {
                let mut m = q.messages.lock().unwrap();
                for s in seqs {
                    m.delete(s);
                }
            }
        }
        Event::Purged { queue, below } => {
            if let Some(q) = queue_of(queue) {
                q.messages.lock().unwrap().purge(below);
            }
        }
    }
}

impl RpcService for Sqs {
    fn call(
        self: Arc<Self>,
        ctx: RequestContext,
        req: RpcRequest,
    ) -> BoxFuture<Result<RpcResponse, ServiceError>> {
        api::dispatch(self, ctx, req)
    }
}

impl QueryService for Sqs {
    fn call(
        self: Arc<Self>,
        ctx: RequestContext,
        mut req: QueryRequest,
    ) -> BoxFuture<Result<String, ServiceError>> {
        // Older SDKs post to the queue's own URL and leave QueueUrl out of the form.
        if let Some(url) = queues::url_from_path(&ctx, &req.path) {
            req.set_default("QueueUrl", url);
        }
        api::dispatch_query(self, ctx, req)
    }
}

impl SqsApi for Sqs {
    async fn create_queue(
        &self,
        ctx: &RequestContext,
        input: CreateQueueRequest,
    ) -> Result<CreateQueueResult, ServiceError> {
        queues::create_queue(self, ctx, input).await
    }

    async fn get_queue_url(
        &self,
        ctx: &RequestContext,
        input: GetQueueUrlRequest,
    ) -> Result<GetQueueUrlResult, ServiceError> {
        queues::get_queue_url(self, ctx, input)
    }

    async fn list_queues(
        &self,
        ctx: &RequestContext,
        input: ListQueuesRequest,
    ) -> Result<ListQueuesResult, ServiceError> {
        queues::list_queues(self, ctx, input)
    }

    async fn delete_queue(
        &self,
        ctx: &RequestContext,
        input: DeleteQueueRequest,
    ) -> Result<(), ServiceError> {
        queues::delete_queue(self, ctx, input).await
    }

    async fn get_queue_attributes(
        &self,
        ctx: &RequestContext,
        input: GetQueueAttributesRequest,
    ) -> Result<GetQueueAttributesResult, ServiceError> {
        queues::get_queue_attributes(self, ctx, input)
    }

    async fn set_queue_attributes(
        &self,
        ctx: &RequestContext,
        input: SetQueueAttributesRequest,
    ) -> Result<(), ServiceError> {
        queues::set_queue_attributes(self, ctx, input).await
    }

    async fn tag_queue(&self, ctx: &RequestContext, input: TagQueueRequest) -> Result<(), ServiceError> {
        queues::tag_queue(self, ctx, input).await
    }

    async fn untag_queue(&self, ctx: &RequestContext, input: UntagQueueRequest) -> Result<(), ServiceError> {
        queues::untag_queue(self, ctx, input).await
    }

    async fn list_queue_tags(
        &self,
        ctx: &RequestContext,
        input: ListQueueTagsRequest,
    ) -> Result<ListQueueTagsResult, ServiceError> {
        queues::list_queue_tags(self, ctx, input)
    }

    async fn purge_queue(&self, ctx: &RequestContext, input: PurgeQueueRequest) -> Result<(), ServiceError> {
        ops::purge_queue(self, ctx, input).await
    }

    async fn add_permission(
        &self,
        ctx: &RequestContext,
        input: AddPermissionRequest,
    ) -> Result<(), ServiceError> {
        queues::add_permission(self, ctx, input).await
    }

    async fn remove_permission(
        &self,
        ctx: &RequestContext,
        input: RemovePermissionRequest,
    ) -> Result<(), ServiceError> {
        queues::remove_permission(self, ctx, input).await
    }

    async fn send_message(
        &self,
        ctx: &RequestContext,
        input: SendMessageRequest,
    ) -> Result<SendMessageResult, ServiceError> {
        let (url, size) = (input.queue_url.clone(), input.message_body.len() as f64);
        let result = ops::send_message(self, ctx, input).await;
        if result.is_ok() {
            self.metric(ctx, &url, "NumberOfMessagesSent", "Count", 1.0);
            self.metric(ctx, &url, "SentMessageSize", "Bytes", size);
        }
        result
    }

    async fn send_message_batch(
        &self,
        ctx: &RequestContext,
        input: SendMessageBatchRequest,
    ) -> Result<SendMessageBatchResult, ServiceError> {
        let url = input.queue_url.clone();
        let sizes: HashMap<String, f64> = input
            .entries
            .iter()
            .map(|e| (e.id.clone(), e.message_body.len() as f64))
            .collect();
        let result = ops::send_message_batch(self, ctx, input).await;
        if let Ok(out) = &result {
            for ok in &out.successful {
                self.metric(ctx, &url, "NumberOfMessagesSent", "Count", 1.0);
                self.metric(
                    ctx,
                    &url,
                    "SentMessageSize",
                    "Bytes",
                    sizes.get(&ok.id).copied().unwrap_or(0.0),
                );
            }
        }
        result
    }

    async fn receive_message(
        &self,
        ctx: &RequestContext,
        input: ReceiveMessageRequest,
    ) -> Result<ReceiveMessageResult, ServiceError> {
        let url = input.queue_url.clone();
        let result = ops::receive_message(self, ctx, input).await;
        if let Ok(out) = &result {
            let n = out.messages.as_ref().map_or(0, Vec::len) as f64;
            self.metric(ctx, &url, "NumberOfMessagesReceived", "Count", n);
            self.metric(
                ctx,
                &url,
                "NumberOfEmptyReceives",
                "Count",
                if n == 0.0 { 1.0 } else { 0.0 },
            );
        }
        result
    }

    async fn delete_message(
        &self,
        ctx: &RequestContext,
        input: DeleteMessageRequest,
    ) -> Result<(), ServiceError> {
        let url = input.queue_url.clone();
        let result = ops::delete_message(self, ctx, input).await;
        if result.is_ok() {
            self.metric(ctx, &url, "NumberOfMessagesDeleted", "Count", 1.0);
        }
        result
    }

    async fn delete_message_batch(
        &self,
        ctx: &RequestContext,
        input: DeleteMessageBatchRequest,
    ) -> Result<DeleteMessageBatchResult, ServiceError> {
        let url = input.queue_url.clone();
        let result = ops::delete_message_batch(self, ctx, input).await;
        if let Ok(out) = &result {
            self.metric(
                ctx,
                &url,
                "NumberOfMessagesDeleted",
                "Count",
                out.successful.len() as f64,
            );
        }
        result
    }

    async fn change_message_visibility(
        &self,
        ctx: &RequestContext,
        input: ChangeMessageVisibilityRequest,
    ) -> Result<(), ServiceError> {
        ops::change_message_visibility(self, ctx, input).await
    }

    async fn change_message_visibility_batch(
        &self,
        ctx: &RequestContext,
        input: ChangeMessageVisibilityBatchRequest,
    ) -> Result<ChangeMessageVisibilityBatchResult, ServiceError> {
        ops::change_message_visibility_batch(self, ctx, input).await
    }

    async fn start_message_move_task(
        &self,
        ctx: &RequestContext,
        input: StartMessageMoveTaskRequest,
    ) -> Result<StartMessageMoveTaskResult, ServiceError> {
        moves::start_message_move_task(self, ctx, input).await
    }

    async fn list_message_move_tasks(
        &self,
        ctx: &RequestContext,
        input: ListMessageMoveTasksRequest,
    ) -> Result<ListMessageMoveTasksResult, ServiceError> {
        moves::list_message_move_tasks(self, ctx, input)
    }

    async fn cancel_message_move_task(
        &self,
        ctx: &RequestContext,
        input: CancelMessageMoveTaskRequest,
    ) -> Result<CancelMessageMoveTaskResult, ServiceError> {
        moves::cancel_message_move_task(self, ctx, input).await
    }

    async fn list_dead_letter_source_queues(
        &self,
        ctx: &RequestContext,
        input: ListDeadLetterSourceQueuesRequest,
    ) -> Result<ListDeadLetterSourceQueuesResult, ServiceError> {
        queues::list_dead_letter_source_queues(self, ctx, input)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lakebox_core::clock::SystemClock;

    fn segments(dir: &Path) -> usize {
        std::fs::read_dir(dir.join("journal")).unwrap().count()
    }

    /// Up to `max` messages of the queue at `url`.
    async fn receive(sqs: &Sqs, ctx: &RequestContext, url: &str, max: i32) -> Vec<Message> {
        let receive = ReceiveMessageRequest {
            queue_url: url.to_owned(),
            max_number_of_messages: Some(max),
            ..Default::default()
        };
        sqs.receive_message(ctx, receive).await.unwrap().messages.unwrap()
    }

    async fn delete(sqs: &Sqs, ctx: &RequestContext, url: &str, m: &Message) {
        let delete = DeleteMessageRequest {
            queue_url: url.to_owned(),
            receipt_handle: m.receipt_handle.clone().unwrap(),
        };
        sqs.delete_message(ctx, delete).await.unwrap();
    }

    #[tokio::test]
    async fn content_past_the_memory_limit_is_read_back_from_the_journal() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = RequestContext::for_tests();
        let url = |q: &str| format!("http://localhost:4566/000000000000/{q}");
        let body = |q: &str, i: usize| format!("{q}-{i:03}-{}", "x".repeat(400));
        // Room for about three messages' content: nearly everything comes from the journal.
        let open = || Sqs::open_with(dir.path(), Arc::new(SystemClock), 64 * 1024, 2_500).unwrap();
        let bodies = |got: &[Message]| got.iter().map(|m| m.body.clone().unwrap()).collect::<Vec<_>>();
        {
            let sqs = open();
            for q in ["a", "b"] {
                let create = CreateQueueRequest {
                    queue_name: q.into(),
                    ..Default::default()
                };
                sqs.create_queue(&ctx, create).await.unwrap();
            }
            // The queues' records interleave in the journal.
            for i in 0..60 {
                for q in ["a", "b"] {
                    let send = SendMessageRequest {
                        queue_url: url(q),
                        message_body: body(q, i),
                        ..Default::default()
                    };
                    sqs.send_message(&ctx, send).await.unwrap();
                }
            }
            let mut got = Vec::new();
            while got.len() < 60 {
                let batch = receive(&sqs, &ctx, &url("a"), 10).await;
                for m in &batch {
                    delete(&sqs, &ctx, &url("a"), m).await;
                }
                got.extend(bodies(&batch));
            }
            assert_eq!(got, (0..60).map(|i| body("a", i)).collect::<Vec<_>>());
            // Received, not deleted, visible again at once: the redelivery reads it back.
            let receive_b = |max| ReceiveMessageRequest {
                queue_url: url("b"),
                max_number_of_messages: Some(max),
                visibility_timeout: Some(0),
                ..Default::default()
            };
            let first = sqs.receive_message(&ctx, receive_b(3)).await.unwrap();
            let again = sqs.receive_message(&ctx, receive_b(3)).await.unwrap();
            assert_eq!(bodies(&first.messages.unwrap()), bodies(&again.messages.unwrap()));
        }
        // After a restart, the other queue's messages, every one of them, in order.
        let sqs = open();
        let mut got = Vec::new();
        while got.len() < 60 {
            let batch = receive(&sqs, &ctx, &url("b"), 10).await;
            assert!(!batch.is_empty());
            for m in &batch {
                delete(&sqs, &ctx, &url("b"), m).await;
            }
            got.extend(bodies(&batch));
        }
        assert_eq!(got, (0..60).map(|i| body("b", i)).collect::<Vec<_>>());
        assert_eq!(sqs.holding.held(), 0);
    }

    #[tokio::test]
    async fn consumed_journal_segments_are_deleted_and_live_messages_kept() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = RequestContext::for_tests();
        let url = "http://localhost:4566/000000000000/q".to_owned();
        {
            let sqs = Sqs::open_with(dir.path(), Arc::new(SystemClock), 4096, usize::MAX).unwrap();
            let create = CreateQueueRequest {
                queue_name: "q".into(),
                ..Default::default()
            };
            sqs.create_queue(&ctx, create).await.unwrap();
            for i in 0..60 {
                let send = SendMessageRequest {
                    queue_url: url.clone(),
                    message_body: format!("{i:03}{}", "x".repeat(300)),
                    ..Default::default()
                };
                sqs.send_message(&ctx, send).await.unwrap();
            }
            // Consume all but the last ten.
            let mut deleted = 0;
            while deleted < 50 {
                let got = receive(&sqs, &ctx, &url, 10).await;
                for m in got.iter().filter(|m| m.body.as_deref().unwrap() < "050") {
                    delete(&sqs, &ctx, &url, m).await;
                    deleted += 1;
                }
            }
            let before = segments(dir.path());
            assert!(before > 4, "{before} segments");
            // The first sweep only marks what has settled; the next may delete below it.
            sqs.sweep();
            assert_eq!(segments(dir.path()), before);
            sqs.sweep();
            assert!(
                segments(dir.path()) < before / 2,
                "{} of {before} left",
                segments(dir.path())
            );
        }
        // Reopened: the ten live messages (received once, so still in flight) are all there.
        let sqs = Sqs::open_with(dir.path(), Arc::new(SystemClock), 4096, usize::MAX).unwrap();
        let q = sqs.queue(&ctx, &url, "sqs:ReceiveMessage").unwrap();
        let c = q.messages.lock().unwrap().counts(i64::MAX / 2, i64::MIN);
        assert_eq!(c.visible + c.in_flight + c.delayed, 10);
    }

    #[tokio::test]
    async fn a_fifo_deduplication_id_outlives_its_deleted_message_across_compaction_and_restart() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = RequestContext::for_tests();
        let url = "http://localhost:4566/000000000000/jobs.fifo".to_owned();
        let send = |dedup: &str, body: String| SendMessageRequest {
            queue_url: url.clone(),
            message_body: body,
            message_group_id: Some("g".into()),
            message_deduplication_id: Some(dedup.into()),
            ..Default::default()
        };
        let first_id = {
            let sqs = Sqs::open_with(dir.path(), Arc::new(SystemClock), 4096, usize::MAX).unwrap();
            let create = CreateQueueRequest {
                queue_name: "jobs.fifo".into(),
                attributes: Some([("FifoQueue".to_owned(), "true".to_owned())].into()),
                ..Default::default()
            };
            sqs.create_queue(&ctx, create).await.unwrap();
            let first = sqs
                .send_message(&ctx, send("order-1", "first".into()))
                .await
                .unwrap();
            // Received and deleted: only the deduplication id remembers it.
            let got = receive(&sqs, &ctx, &url, 1).await;
            delete(&sqs, &ctx, &url, &got[0]).await;
            // Enough later traffic to fill segments, each message consumed, then compaction.
            for i in 0..40 {
                sqs.send_message(&ctx, send(&format!("other-{i}"), "y".repeat(300)))
                    .await
                    .unwrap();
                for m in receive(&sqs, &ctx, &url, 1).await {
                    delete(&sqs, &ctx, &url, &m).await;
                }
            }
            let before = segments(dir.path());
            sqs.sweep();
            sqs.sweep();
            assert!(before > 4, "{before} segments");
            first.message_id.unwrap()
        };
        // A retry of the first send after a restart, within five minutes: deduplicated.
        let sqs = Sqs::open_with(dir.path(), Arc::new(SystemClock), 4096, usize::MAX).unwrap();
        let again = sqs
            .send_message(&ctx, send("order-1", "first".into()))
            .await
            .unwrap();
        assert_eq!(again.message_id.unwrap(), first_id);
        let q = sqs.queue(&ctx, &url, "sqs:ReceiveMessage").unwrap();
        let c = q.messages.lock().unwrap().counts(i64::MAX / 2, i64::MIN);
        assert_eq!(c.visible + c.in_flight + c.delayed, 0);
    }
}
