//! Message move tasks: StartMessageMoveTask, ListMessageMoveTasks, CancelMessageMoveTask. A
//! task drains a dead-letter queue back into the queues its messages came from (or into one
//! destination), at a set rate or as fast as the journal takes them, as SQS's redrive does.
//!
//! Tasks are kept in the metadata store (AWS lists them for 14 days); one that was running
//! when the server stopped resumes at the next start.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use lakebox_core::{RequestContext, ServiceError};
use serde::{Deserialize, Serialize};

use crate::api::*;
use crate::queues::Queue;
use crate::{Sqs, access, errors, ops};

const TABLE: &str = "move_tasks";
/// How long finished tasks stay listed.
const KEEP_MILLIS: i64 = 14 * 24 * 3600 * 1000;
/// Messages moved per journal append.
const CHUNK: usize = 10;

/// A task as ListMessageMoveTasks reports it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MoveTask {
    pub handle: String,
    pub source_arn: String,
    pub destination_arn: Option<String>,
    pub rate: Option<i32>,
    /// RUNNING, COMPLETED, CANCELLING, CANCELLED or FAILED.
    pub status: String,
    pub moved: i64,
    pub to_move: i64,
    pub started_millis: i64,
    pub failure: Option<String>,
}

impl MoveTask {
    fn key(&self) -> Vec<u8> {
        format!(
            "{}\0{:020}\0{}",
            self.source_arn, self.started_millis, self.handle
        )
        .into_bytes()
    }

    fn entry(&self) -> ListMessageMoveTasksResultEntry {
        ListMessageMoveTasksResultEntry {
            // AWS lists a task handle only while the task can still be cancelled.
            task_handle: (self.status == "RUNNING").then(|| self.handle.clone()),
            status: Some(self.status.clone()),
            source_arn: Some(self.source_arn.clone()),
            destination_arn: self.destination_arn.clone(),
            max_number_of_messages_per_second: self.rate,
            approximate_number_of_messages_moved: Some(self.moved),
            approximate_number_of_messages_to_move: Some(self.to_move),
            failure_reason: self.failure.clone(),
            started_timestamp: Some(self.started_millis),
        }
    }
}

/// The tasks, live and finished.
#[derive(Default)]
pub struct Moves {
    tasks: Mutex<Vec<Arc<Mutex<MoveTask>>>>,
}

impl Moves {
    pub fn load(meta: &lakebox_store::MetaStore) -> Result<Moves, lakebox_store::StoreError> {
        let rows = meta.read(|v| v.scan_prefix(TABLE, b""))?;
        let tasks = rows
            .into_iter()
            .filter_map(|(_, v)| serde_json::from_slice::<MoveTask>(&v).ok())
            .map(|t| Arc::new(Mutex::new(t)))
            .collect();
        Ok(Moves {
            tasks: Mutex::new(tasks),
        })
    }

    /// Tasks that were running when the server stopped.
    pub fn running(&self) -> Vec<Arc<Mutex<MoveTask>>> {
        let tasks = self.tasks.lock().unwrap();
        tasks
            .iter()
            .filter(|t| t.lock().unwrap().status == "RUNNING")
            .cloned()
            .collect()
    }

    fn find(&self, handle: &str) -> Option<Arc<Mutex<MoveTask>>> {
        let tasks = self.tasks.lock().unwrap();
        tasks.iter().find(|t| t.lock().unwrap().handle == handle).cloned()
    }
}

async fn save(sqs: &Sqs, task: &MoveTask) -> Result<(), ServiceError> {
    let (key, value) = (
        task.key(),
        serde_json::to_vec(task).map_err(|e| ServiceError::internal(e.to_string()))?,
    );
    sqs.meta
        .write_async(move |b| b.put(TABLE, &key, &value))
        .await
        .map_err(errors::store)
}

fn not_found(what: &str) -> ServiceError {
    ServiceError::client(
        "ResourceNotFoundException",
        format!("The resource that you specified for the {what} parameter doesn't exist."),
    )
}

/// What a task does to its source (the dead-letter queue): the permissions SQS requires of
/// the caller there to start or cancel one, beside the operation's own.
const DRAIN: [&str; 3] = [
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
];

fn authorize_all(ctx: &RequestContext, q: &Queue, own: &str) -> Result<(), ServiceError> {
    for action in std::iter::once(own).chain(DRAIN) {
        access::authorize(ctx, q, action)?;
    }
    Ok(())
}

pub async fn start_message_move_task(
    sqs: &Sqs,
    ctx: &RequestContext,
    input: StartMessageMoveTaskRequest,
) -> Result<StartMessageMoveTaskResult, ServiceError> {
    let source = sqs
        .queue_by_arn(&input.source_arn)
        .ok_or_else(|| not_found("SourceArn"))?;
    let destination = match &input.destination_arn {
        Some(dest) => Some(
            sqs.queue_by_arn(dest)
                .ok_or_else(|| not_found("DestinationArn"))?,
        ),
        None => None,
    };
    authorize_all(ctx, &source, "sqs:StartMessageMoveTask")?;
    if let Some(rate) = input.max_number_of_messages_per_second
        && !(1..=500).contains(&rate)
    {
        return Err(errors::invalid_value(
            "MaxNumberOfMessagesPerSecond",
            rate,
            "Must be between 1 and 500.",
        ));
    }
    // Only a dead-letter queue (one that some queue's redrive policy names) can be drained.
    let arn = source.key.arn();
    let origins = sqs.dead_letter_sources(&arn);
    if origins.is_empty() {
        return Err(errors::invalid_parameter(
            "Source queue must be configured as a Dead Letter Queue.",
        ));
    }
    // The messages are sent to the destination, or back to the queues they came from.
    match &destination {
        Some(d) => access::authorize(ctx, d, "sqs:SendMessage")?,
        None => {
            for origin in origins.iter().filter_map(|k| sqs.live(k)) {
                access::authorize(ctx, &origin, "sqs:SendMessage")?;
            }
        }
    }
    let now = sqs.now();
    let task = {
        let mut tasks = sqs.moves.tasks.lock().unwrap();
        if tasks.iter().any(|t| {
            let t = t.lock().unwrap();
            t.source_arn == arn && t.status == "RUNNING"
        }) {
            return Err(errors::invalid_parameter(
                "There is already a task running. Only one active task is allowed for a source queue arn at a given time.",
            ));
        }
        let id = uuid::Uuid::new_v4().to_string();
        let handle = STANDARD.encode(serde_json::json!({"taskId": id, "sourceArn": arn}).to_string());
        let counts = source
            .messages
            .lock()
            .unwrap()
            .counts(now, now - source.retention_millis());
        let task = Arc::new(Mutex::new(MoveTask {
            handle,
            source_arn: arn,
            destination_arn: input.destination_arn,
            rate: input.max_number_of_messages_per_second,
            status: "RUNNING".into(),
            moved: 0,
            to_move: counts.visible as i64,
            started_millis: now,
            failure: None,
        }));
        tasks.push(task.clone());
        // Finished tasks older than AWS keeps them go.
        tasks.retain(|t| {
            let t = t.lock().unwrap();
            t.status == "RUNNING" || now - t.started_millis < KEEP_MILLIS
        });
        task
    };
    let snapshot = task.lock().unwrap().clone();
    save(sqs, &snapshot).await?;
    spawn(sqs, task);
    Ok(StartMessageMoveTaskResult {
        task_handle: Some(snapshot.handle),
    })
}

pub fn list_message_move_tasks(
    sqs: &Sqs,
    ctx: &RequestContext,
    input: ListMessageMoveTasksRequest,
) -> Result<ListMessageMoveTasksResult, ServiceError> {
    let max = input.max_results.unwrap_or(1);
    if !(1..=10).contains(&max) {
        return Err(errors::invalid_value(
            "MaxResults",
            max,
            "Must be between 1 and 10.",
        ));
    }
    let source = sqs
        .queue_by_arn(&input.source_arn)
        .ok_or_else(|| not_found("SourceArn"))?;
    access::authorize(ctx, &source, "sqs:ListMessageMoveTasks")?;
    let mut found: Vec<MoveTask> = sqs
        .moves
        .tasks
        .lock()
        .unwrap()
        .iter()
        .map(|t| t.lock().unwrap().clone())
        .filter(|t| t.source_arn == input.source_arn)
        .collect();
    // The most recent first.
    found.sort_by_key(|t| std::cmp::Reverse(t.started_millis));
    Ok(ListMessageMoveTasksResult {
        results: Some(found.iter().take(max as usize).map(MoveTask::entry).collect()),
    })
}

pub async fn cancel_message_move_task(
    sqs: &Sqs,
    ctx: &RequestContext,
    input: CancelMessageMoveTaskRequest,
) -> Result<CancelMessageMoveTaskResult, ServiceError> {
    let task = sqs
        .moves
        .find(&input.task_handle)
        .ok_or_else(|| ServiceError::client("ResourceNotFoundException", "Task does not exist."))?;
    let source_arn = task.lock().unwrap().source_arn.clone();
    if let Some(source) = sqs.queue_by_arn(&source_arn) {
        authorize_all(ctx, &source, "sqs:CancelMessageMoveTask")?;
    }
    let snapshot = {
        let mut t = task.lock().unwrap();
        if t.status != "RUNNING" {
            return Err(errors::invalid_parameter("Only active tasks can be cancelled."));
        }
        // The mover stops before its next chunk.
        t.status = "CANCELLING".into();
        t.clone()
    };
    save(sqs, &snapshot).await?;
    Ok(CancelMessageMoveTaskResult {
        approximate_number_of_messages_moved: Some(snapshot.moved),
    })
}

/// Runs a task on the server's runtime until it completes, fails or is cancelled.
pub fn spawn(sqs: &Sqs, task: Arc<Mutex<MoveTask>>) {
    let Some(me) = sqs.me.upgrade() else { return };
    tokio::spawn(async move {
        let outcome = run(&me, &task).await;
        let snapshot = {
            let mut t = task.lock().unwrap();
            match outcome {
                Ok(()) if t.status == "CANCELLING" => t.status = "CANCELLED".into(),
                Ok(()) => t.status = "COMPLETED".into(),
                Err(reason) => {
                    t.status = "FAILED".into();
                    t.failure = Some(reason);
                }
            }
            t.clone()
        };
        if let Err(e) = save(&me, &snapshot).await {
            tracing::warn!(error = %e, "could not record the end of an SQS message move task");
        }
    });
}

async fn run(sqs: &Sqs, task: &Mutex<MoveTask>) -> Result<(), String> {
    let (source_arn, destination, rate) = {
        let t = task.lock().unwrap();
        (t.source_arn.clone(), t.destination_arn.clone(), t.rate)
    };
    let started = std::time::Instant::now();
    loop {
        if task.lock().unwrap().status != "RUNNING" {
            return Ok(());
        }
        let Some(source) = sqs.queue_by_arn(&source_arn) else {
            return Err("AWS.SimpleQueueService.NonExistentQueue: the source queue was deleted".into());
        };
        let now = sqs.now();
        let chunk = rate.map_or(CHUNK, |r| (r as usize).clamp(1, CHUNK));
        let taken = source
            .messages
            .lock()
            .unwrap()
            .take_visible(now, chunk, now - source.retention_millis());
        if taken.is_empty() {
            return Ok(());
        }
        let mut taken = taken;
        if let Err(e) = sqs
            .fill_bodies(&source, taken.iter_mut().map(|(s, m)| (*s, m)))
            .await
        {
            source.messages.lock().unwrap().restore(taken);
            return Err(e.message);
        }
        // Each message goes to the task's destination, or back to the queue it came from.
        let mut by_target: Vec<(Arc<Queue>, Vec<_>)> = Vec::new();
        let mut stranded = Vec::new();
        for (seq, m) in taken {
            let target = destination
                .clone()
                .or_else(|| m.sent.as_ref().and_then(|s| s.dead_letter_source.clone()))
                .and_then(|arn| sqs.queue_by_arn(&arn));
            match target {
                Some(q) => match by_target.iter_mut().find(|(t, _)| t.id == q.id) {
                    Some((_, v)) => v.push((seq, m)),
                    None => by_target.push((q, vec![(seq, m)])),
                },
                None => stranded.push((seq, m)),
            }
        }
        if !stranded.is_empty() {
            source.messages.lock().unwrap().restore(stranded);
            for (_, v) in by_target {
                source.messages.lock().unwrap().restore(v);
            }
            return Err(
                "AWS.SimpleQueueService.NonExistentQueue: a message's source queue does not exist".into(),
            );
        }
        for (target, v) in by_target {
            let n = ops::move_messages(sqs, &source, &target, v, false)
                .await
                .map_err(|e| format!("{}: {}", e.code, e.message))?;
            task.lock().unwrap().moved += n as i64;
        }
        match rate {
            // Keep to the rate: the next chunk waits until the moved count is due.
            Some(r) => {
                let moved = task.lock().unwrap().moved as f64;
                let due = Duration::from_secs_f64(moved / f64::from(r));
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    tokio::time::sleep(wait).await;
                }
            }
            None => tokio::task::yield_now().await,
        }
    }
}
