//! Queues: their records in the metadata store (attributes as set, tags), their URLs and ARNs,
//! and the queue operations.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

use lakebox_core::{Arn, RequestContext, ServiceError, paging, tags};
use lakebox_store::{MetaStore, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::api::*;
use crate::messages::Messages;
use crate::{Sqs, attributes, errors};

const TABLE: &str = "queues";
/// AWS's limit of tags on one queue.
const MAX_TAGS: usize = 50;
/// How long a deleted queue's name stays unavailable.
const RECREATE_AFTER_MILLIS: i64 = 60_000;
/// The most queue URLs one ListQueues answers.
const MAX_LIST: usize = 1000;

/// A queue's name in its account and region.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueKey {
    pub account: String,
    pub region: String,
    pub name: String,
}

impl QueueKey {
    fn store_key(&self) -> Vec<u8> {
        format!("{}\0{}\0{}", self.account, self.region, self.name).into_bytes()
    }

    pub fn arn(&self) -> String {
        Arn::new("sqs", &self.region, &self.account, self.name.clone()).to_string()
    }
}

/// What the metadata store keeps of a queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueueRecord {
    /// This incarnation of the name: the journal's records name queues by it.
    pub id: u64,
    pub account: String,
    pub region: String,
    pub name: String,
    /// The attributes a caller set, as set (defaults fill the rest when read).
    pub attributes: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    pub created_secs: i64,
    pub modified_secs: i64,
}

impl QueueRecord {
    pub fn key(&self) -> QueueKey {
        QueueKey {
            account: self.account.clone(),
            region: self.region.clone(),
            name: self.name.clone(),
        }
    }
}

/// A FIFO receive remembered for retries: until when, and the (sequence, receipt) pairs it
/// handed out.
pub type Attempt = (i64, Vec<(u64, u64)>);

/// A live queue: its record and its messages.
pub struct Queue {
    pub id: u64,
    pub fifo: bool,
    /// FIFO sends take turns, so deduplication sees every earlier send of the queue.
    pub fifo_send: tokio::sync::Mutex<()>,
    pub key: QueueKey,
    pub record: RwLock<QueueRecord>,
    pub messages: Mutex<Messages>,
    /// Set while the journal is read ahead for this queue's next messages (`bodies`).
    pub reading_ahead: std::sync::atomic::AtomicBool,
    /// Woken by every send (and by deletion), so a long poll answers the moment a message
    /// arrives.
    pub arrived: Notify,
    pub last_purge: Mutex<Option<i64>>,
    /// FIFO: recent receives by ReceiveRequestAttemptId → (until, the messages and receipts
    /// handed out), so a retried receive gets the same messages back.
    pub attempts: Mutex<std::collections::HashMap<String, Attempt>>,
    pub deleted: std::sync::atomic::AtomicBool,
    /// The Policy attribute, parsed once for every request it decides.
    policy: crate::access::PolicyCache,
}

impl Queue {
    pub fn new(record: QueueRecord, holding: Arc<crate::messages::Holding>) -> Self {
        let fifo = record
            .attributes
            .get("FifoQueue")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        Queue {
            id: record.id,
            fifo,
            fifo_send: tokio::sync::Mutex::new(()),
            key: record.key(),
            record: RwLock::new(record),
            messages: Mutex::new(Messages::new(fifo, holding)),
            reading_ahead: std::sync::atomic::AtomicBool::new(false),
            arrived: Notify::new(),
            last_purge: Mutex::new(None),
            attempts: Mutex::new(std::collections::HashMap::new()),
            deleted: std::sync::atomic::AtomicBool::new(false),
            policy: Default::default(),
        }
    }

    /// The queue's policy, if it has one.
    pub fn policy(&self) -> Option<std::sync::Arc<lakebox_policy::Policy>> {
        let record = self.record.read().unwrap();
        self.policy
            .get(record.attributes.get("Policy").map(String::as_str))
    }

    pub fn arn(&self) -> String {
        self.key.arn()
    }

    /// Replay: one message a journaled FIFO receive handed out under its attempt id. The
    /// messages of one receive share its `until`; a later receive under the same id replaces
    /// an earlier one.
    pub fn remember_attempt(&self, id: String, until: i64, seq: u64, receipt: u64) {
        let mut attempts = self.attempts.lock().unwrap();
        let entry = attempts.entry(id).or_insert_with(|| (until, Vec::new()));
        if entry.0 != until {
            *entry = (until, Vec::new());
        }
        entry.1.push((seq, receipt));
    }

    /// A numeric attribute (its value or default).
    pub fn number(&self, name: &str) -> i64 {
        attributes::number(&self.record.read().unwrap().attributes, name)
    }

    pub fn retention_millis(&self) -> i64 {
        self.number("MessageRetentionPeriod") * 1000
    }

    pub fn is_deleted(&self) -> bool {
        self.deleted.load(std::sync::atomic::Ordering::Acquire)
    }
}

pub fn load(meta: &MetaStore) -> Result<Vec<QueueRecord>, StoreError> {
    let rows = meta.read(|v| v.scan_prefix(TABLE, b""))?;
    Ok(rows
        .into_iter()
        .filter_map(|(_, v)| serde_json::from_slice(&v).ok())
        .collect())
}

async fn save(sqs: &Sqs, record: &QueueRecord) -> Result<(), ServiceError> {
    let key = record.key().store_key();
    let value = serde_json::to_vec(record).map_err(|e| ServiceError::internal(e.to_string()))?;
    sqs.meta
        .write_async(move |b| b.put(TABLE, &key, &value))
        .await
        .map_err(errors::store)
}

// ---- URLs -------------------------------------------------------------------------------

/// A queue's URL as this client reached the server: `http://<host>/<account>/<name>`.
pub fn url(ctx: &RequestContext, key: &QueueKey) -> String {
    let host = ctx.host.as_deref().unwrap_or("localhost:4566");
    format!("http://{host}/{}/{}", key.account, key.name)
}

/// The queue a QueueUrl names. Any host is accepted (the URL of another Lakebox address, or
/// AWS's own form); the region is the one `sqs.<region>.…` names, or the request's.
pub fn key_from_url(ctx: &RequestContext, queue_url: &str) -> Result<QueueKey, ServiceError> {
    let (host, path) = match queue_url.split_once("://") {
        Some((_, rest)) => match rest.split_once('/') {
            Some((h, p)) => (h, p),
            None => (rest, ""),
        },
        None => ("", queue_url.trim_start_matches('/')),
    };
    let mut parts = path.trim_end_matches('/').split('/');
    let (Some(account), Some(name), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(errors::queue_does_not_exist());
    };
    if name.is_empty() || account.is_empty() {
        return Err(errors::queue_does_not_exist());
    }
    let region = host
        .split(':')
        .next()
        .and_then(|h| h.strip_prefix("sqs."))
        .and_then(|h| h.split('.').next())
        .filter(|r| r.contains('-'))
        .unwrap_or(&ctx.region);
    Ok(QueueKey {
        account: account.to_owned(),
        region: region.to_owned(),
        name: name.to_owned(),
    })
}

/// An awsQuery request posted to a queue's own path (`/<account>/<name>`), as old SDKs do.
pub fn url_from_path(ctx: &RequestContext, path: &str) -> Option<String> {
    let mut parts = path.trim_matches('/').split('/');
    let (Some(account), Some(name), None) = (parts.next(), parts.next(), parts.next()) else {
        return None;
    };
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) || name.is_empty() {
        return None;
    }
    let key = QueueKey {
        account: account.to_owned(),
        region: ctx.region.clone(),
        name: name.to_owned(),
    };
    Some(url(ctx, &key))
}

impl Sqs {
    /// The live queue a QueueUrl names, if the caller may do `action` to it (its queue
    /// policy decides; see [`crate::access`]).
    pub(crate) fn queue(
        &self,
        ctx: &RequestContext,
        queue_url: &str,
        action: &str,
    ) -> Result<Arc<Queue>, ServiceError> {
        self.queue_by_key(ctx, &key_from_url(ctx, queue_url)?, action)
    }

    /// The live queue `key` names, if the caller may do `action` to it.
    fn queue_by_key(
        &self,
        ctx: &RequestContext,
        key: &QueueKey,
        action: &str,
    ) -> Result<Arc<Queue>, ServiceError> {
        let q = self
            .queues
            .read()
            .unwrap()
            .get(key)
            .cloned()
            .ok_or_else(errors::queue_does_not_exist)?;
        crate::access::authorize(ctx, &q, action)?;
        Ok(q)
    }

    /// The queues whose redrive policy names `dlq_arn` as their dead-letter queue.
    pub(crate) fn dead_letter_sources(&self, dlq_arn: &str) -> Vec<QueueKey> {
        let queues = self.queues.read().unwrap();
        queues
            .values()
            .filter(|s| {
                attributes::redrive(&s.record.read().unwrap().attributes)
                    .is_some_and(|(target, _)| target == dlq_arn)
            })
            .map(|s| s.key.clone())
            .collect()
    }

    /// The live queue an ARN names.
    pub(crate) fn queue_by_arn(&self, arn: &str) -> Option<Arc<Queue>> {
        let a = Arn::parse(arn).filter(|a| a.service == "sqs")?;
        let key = QueueKey {
            account: a.account_id,
            region: a.region,
            name: a.resource,
        };
        self.live(&key)
    }

    /// The live queue `key` names (no access check).
    pub(crate) fn live(&self, key: &QueueKey) -> Option<Arc<Queue>> {
        self.queues.read().unwrap().get(key).cloned()
    }
}

// ---- operations -------------------------------------------------------------------------

fn check_name(name: &str, fifo: bool) -> Result<(), ServiceError> {
    let base = if fifo {
        name.strip_suffix(".fifo")
    } else {
        Some(name)
    };
    let ok = base.is_some_and(|b| {
        !b.is_empty()
            && name.len() <= 80
            && b.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
    });
    if ok {
        return Ok(());
    }
    Err(errors::invalid_parameter(if fifo || name.ends_with(".fifo") {
        "The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix and be 1 to 80 in length."
    } else {
        "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length"
    }))
}

fn check_tags(tags: &BTreeMap<String, String>) -> Result<(), ServiceError> {
    tags::check(tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))).map_err(|e| {
        errors::invalid_parameter(match e {
            tags::TagError::Reserved(k) => format!("Tag keys must not start with 'aws:' ({k})."),
            tags::TagError::KeyLength(k) => format!("Tag key '{k}' must be 1 to 128 characters long."),
            tags::TagError::ValueLength(k) => {
                format!("The value of tag '{k}' must be at most 256 characters long.")
            }
            tags::TagError::Duplicate(k) => format!("Tag key '{k}' is repeated."),
            tags::TagError::TooMany { max } => format!("Too many tags: at most {max} per queue."),
        })
    })
}

pub async fn create_queue(
    sqs: &Sqs,
    ctx: &RequestContext,
    input: CreateQueueRequest,
) -> Result<CreateQueueResult, ServiceError> {
    let attrs = input.attributes.unwrap_or_default();
    let fifo = attrs
        .get("FifoQueue")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    check_name(&input.queue_name, fifo)?;
    if input.queue_name.ends_with(".fifo") && !fifo {
        return Err(errors::invalid_parameter(
            "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length",
        ));
    }
    attributes::check(&attrs, fifo)?;
    let tags = input.tags.unwrap_or_default();
    check_tags(&tags)?;
    if tags.len() > MAX_TAGS {
        return Err(errors::invalid_parameter(format!(
            "Too many tags: at most {MAX_TAGS} per queue."
        )));
    }
    let key = QueueKey {
        account: ctx.account_id.clone(),
        region: ctx.region.clone(),
        name: input.queue_name.clone(),
    };
    let attrs: BTreeMap<String, String> = attrs
        .iter()
        .filter(|(k, v)| !attributes::removed_by_empty(k, v))
        .map(|(k, v)| (k.clone(), attributes::normalise(k, v)))
        .collect();
    let _admin = sqs.admin.lock().await;
    if let Some(existing) = sqs.queues.read().unwrap().get(&key) {
        let rec = existing.record.read().unwrap();
        for (k, v) in &attrs {
            if attributes::value(&rec.attributes, k) != Some(v.as_str()) {
                return Err(errors::queue_name_exists(k));
            }
        }
        return Ok(CreateQueueResult {
            queue_url: Some(url(ctx, &key)),
        });
    }
    let now = sqs.now();
    if sqs
        .deleted
        .lock()
        .unwrap()
        .get(&key)
        .is_some_and(|at| now - at < RECREATE_AFTER_MILLIS)
    {
        return Err(errors::queue_deleted_recently());
    }
    let record = QueueRecord {
        id: uuid::Uuid::new_v4().as_u64_pair().0,
        account: key.account.clone(),
        region: key.region.clone(),
        name: key.name.clone(),
        attributes: attrs,
        tags,
        created_secs: now / 1000,
        modified_secs: now / 1000,
    };
    save(sqs, &record).await?;
    sqs.queues
        .write()
        .unwrap()
        .insert(key.clone(), Arc::new(Queue::new(record, sqs.holding.clone())));
    Ok(CreateQueueResult {
        queue_url: Some(url(ctx, &key)),
    })
}

pub fn get_queue_url(
    sqs: &Sqs,
    ctx: &RequestContext,
    input: GetQueueUrlRequest,
) -> Result<GetQueueUrlResult, ServiceError> {
    let key = QueueKey {
        account: input
            .queue_owner_aws_account_id
            .unwrap_or_else(|| ctx.account_id.clone()),
        region: ctx.region.clone(),
        name: input.queue_name,
    };
    sqs.queue_by_key(ctx, &key, "sqs:GetQueueUrl")?;
    Ok(GetQueueUrlResult {
        queue_url: Some(url(ctx, &key)),
    })
}

/// One page of queue URLs, as ListQueues and ListDeadLetterSourceQueues page them: with
/// MaxResults (1–1,000) by NextToken, without it up to 1,000 URLs and no token.
fn page_urls(
    ctx: &RequestContext,
    mut keys: Vec<QueueKey>,
    max_results: Option<i32>,
    next_token: Option<&str>,
) -> Result<(Vec<String>, Option<String>), ServiceError> {
    if let Some(m) = max_results
        && !(1..=1000).contains(&m)
    {
        return Err(errors::invalid_value(
            "MaxResults",
            m,
            "MaxResults must be an integer between 1 and 1000.",
        ));
    }
    keys.sort();
    let (page, next) = match max_results {
        Some(max) => paging::page(keys, |k| k.name.clone(), next_token, max as usize)
            .map_err(|_| errors::invalid_parameter("Invalid NextToken value."))?,
        None => (keys.into_iter().take(MAX_LIST).collect(), None),
    };
    Ok((page.iter().map(|k| url(ctx, k)).collect(), next))
}

pub fn list_queues(
    sqs: &Sqs,
    ctx: &RequestContext,
    input: ListQueuesRequest,
) -> Result<ListQueuesResult, ServiceError> {
    let prefix = input.queue_name_prefix.unwrap_or_default();
    let keys: Vec<QueueKey> = sqs
        .queues
        .read()
        .unwrap()
        .keys()
        .filter(|k| k.account == ctx.account_id && k.region == ctx.region && k.name.starts_with(&prefix))
        .cloned()
        .collect();
    let (urls, next_token) = page_urls(ctx, keys, input.max_results, input.next_token.as_deref())?;
    Ok(ListQueuesResult {
        queue_urls: (!urls.is_empty()).then_some(urls),
        next_token,
    })
}

pub async fn delete_queue(
    sqs: &Sqs,
    ctx: &RequestContext,
    input: DeleteQueueRequest,
) -> Result<(), ServiceError> {
    let _admin = sqs.admin.lock().await;
    let q = sqs.queue(ctx, &input.queue_url, "sqs:DeleteQueue")?;
    let key = q.key.store_key();
    sqs.meta
        .write_async(move |b| b.delete(TABLE, &key).map(|_| ()))
        .await
        .map_err(errors::store)?;
    let removed = {
        let mut map = sqs.queues.write().unwrap();
        match map.get(&q.key) {
            Some(live) if live.id == q.id => map.remove(&q.key),
            _ => None,
        }
    };
    if let Some(q) = removed {
        q.deleted.store(true, std::sync::atomic::Ordering::Release);
        // Long polls on it end now.
        q.arrived.notify_waiters();
        sqs.deleted.lock().unwrap().insert(q.key.clone(), sqs.now());
    }
    Ok(())
}

pub fn get_queue_attributes(
    sqs: &Sqs,
    ctx: &RequestContext,
    input: GetQueueAttributesRequest,
) -> Result<GetQueueAttributesResult, ServiceError> {
    let q = sqs.queue(ctx, &input.queue_url, "sqs:GetQueueAttributes")?;
    let names: Vec<String> = input
        .attribute_names
        .unwrap_or_default()
        .iter()
        .map(|n| n.as_str().to_owned())
        .collect();
    if let Some(bad) = names.iter().find(|n| !attributes::is_known(n)) {
        return Err(errors::unknown_attribute(bad));
    }
    let all = names.iter().any(|n| n == "All");
    let wanted = |n: &str| all || names.iter().any(|x| x == n);
    let rec = q.record.read().unwrap().clone();
    let mut out = BTreeMap::new();
    let mut counts = None;
    for name in attributes::all_names() {
        if !wanted(name) || !attributes::applies(name, q.fifo) {
            continue;
        }
        let value = match name {
            "QueueArn" => Some(q.key.arn()),
            "CreatedTimestamp" => Some(rec.created_secs.to_string()),
            "LastModifiedTimestamp" => Some(rec.modified_secs.to_string()),
            "ApproximateNumberOfMessages"
            | "ApproximateNumberOfMessagesNotVisible"
            | "ApproximateNumberOfMessagesDelayed" => {
                // One pass over the messages answers all three.
                let c = *counts.get_or_insert_with(|| {
                    let now = sqs.now();
                    q.messages.lock().unwrap().counts(now, now - q.retention_millis())
                });
                Some(
                    match name {
                        "ApproximateNumberOfMessages" => c.visible,
                        "ApproximateNumberOfMessagesNotVisible" => c.in_flight,
                        _ => c.delayed,
                    }
                    .to_string(),
                )
            }
            _ => attributes::value(&rec.attributes, name).map(str::to_owned),
        };
        if let Some(v) = value {
            out.insert(name.to_owned(), v);
        }
    }
    Ok(GetQueueAttributesResult {
        attributes: (!out.is_empty()).then_some(out),
    })
}

async fn update(
    sqs: &Sqs,
    q: &Queue,
    change: impl FnOnce(&mut QueueRecord) -> Result<(), ServiceError>,
) -> Result<(), ServiceError> {
    let mut next = q.record.read().unwrap().clone();
    change(&mut next)?;
    save(sqs, &next).await?;
    *q.record.write().unwrap() = next;
    Ok(())
}

pub async fn set_queue_attributes(
    sqs: &Sqs,
    ctx: &RequestContext,
    input: SetQueueAttributesRequest,
) -> Result<(), ServiceError> {
    let q = sqs.queue(ctx, &input.queue_url, "sqs:SetQueueAttributes")?;
    let attrs = input.attributes;
    if attrs.contains_key("FifoQueue") {
        // A queue's type is fixed at creation.
        return Err(errors::invalid_attribute_value("FifoQueue"));
    }
    attributes::check(&attrs, q.fifo)?;
    let now = sqs.now();
    update(sqs, &q, |r| {
        for (k, v) in &attrs {
            if attributes::removed_by_empty(k, v) {
                r.attributes.remove(k);
            } else {
                r.attributes.insert(k.clone(), attributes::normalise(k, v));
            }
        }
        r.modified_secs = now / 1000;
        Ok(())
    })
    .await
}

pub async fn tag_queue(sqs: &Sqs, ctx: &RequestContext, input: TagQueueRequest) -> Result<(), ServiceError> {
    let q = sqs.queue(ctx, &input.queue_url, "sqs:TagQueue")?;
    check_tags(&input.tags)?;
    update(sqs, &q, |r| {
        tags::apply(&mut r.tags, input.tags, &[], MAX_TAGS)
            .map_err(|_| errors::invalid_parameter(format!("Too many tags added for queue {}.", r.name)))
    })
    .await
}

pub async fn untag_queue(
    sqs: &Sqs,
    ctx: &RequestContext,
    input: UntagQueueRequest,
) -> Result<(), ServiceError> {
    let q = sqs.queue(ctx, &input.queue_url, "sqs:UntagQueue")?;
    update(sqs, &q, |r| {
        // Keys the queue does not have are ignored, as AWS ignores them.
        for k in &input.tag_keys {
            r.tags.remove(k);
        }
        Ok(())
    })
    .await
}

pub fn list_queue_tags(
    sqs: &Sqs,
    ctx: &RequestContext,
    input: ListQueueTagsRequest,
) -> Result<ListQueueTagsResult, ServiceError> {
    let q = sqs.queue(ctx, &input.queue_url, "sqs:ListQueueTags")?;
    let tags = q.record.read().unwrap().tags.clone();
    Ok(ListQueueTagsResult {
        tags: (!tags.is_empty()).then_some(tags),
    })
}

/// The actions AddPermission may grant (`*` for all).
const PERMISSION_ACTIONS: &[&str] = &[
    "*",
    "SendMessage",
    "ReceiveMessage",
    "DeleteMessage",
    "ChangeMessageVisibility",
    "GetQueueAttributes",
    "GetQueueUrl",
    "ListDeadLetterSourceQueues",
    "PurgeQueue",
    "ListQueueTags",
];

pub async fn add_permission(
    sqs: &Sqs,
    ctx: &RequestContext,
    input: AddPermissionRequest,
) -> Result<(), ServiceError> {
    let q = sqs.queue(ctx, &input.queue_url, "sqs:AddPermission")?;
    if input.aws_account_ids.is_empty() {
        return Err(errors::missing_parameter("AWSAccountIds"));
    }
    if input.actions.is_empty() {
        return Err(errors::missing_parameter("Actions"));
    }
    if input.actions.len() > 7 {
        return Err(errors::invalid_parameter(
            "Value for parameter Actions is invalid. Reason: An Amazon SQS policy can have a maximum of 7 actions per statement.",
        ));
    }
    if let Some(a) = input
        .actions
        .iter()
        .find(|a| !PERMISSION_ACTIONS.contains(&a.as_str()))
    {
        return Err(errors::invalid_value(
            "ActionName.1",
            a,
            "Please refer to the appropriate WSDL for a list of valid actions.",
        ));
    }
    let arn = q.key.arn();
    update(sqs, &q, |r| {
        let mut policy: Value = r
            .attributes
            .get("Policy")
            .and_then(|p| serde_json::from_str(p).ok())
            .unwrap_or_else(|| json!({"Version": "2012-10-17", "Id": format!("{arn}/SQSDefaultPolicy"), "Statement": []}));
        let statements = policy["Statement"].as_array_mut().ok_or_else(|| errors::invalid_parameter("The queue's policy has no Statement list."))?;
        if statements.iter().any(|s| s["Sid"] == input.label.as_str()) {
            return Err(errors::invalid_value("Label", &input.label, "Already exists."));
        }
        let principals: Vec<String> = input.aws_account_ids.iter().map(|a| format!("arn:aws:iam::{a}:root")).collect();
        let actions: Vec<String> = input.actions.iter().map(|a| format!("SQS:{a}")).collect();
        statements.push(json!({
            "Sid": input.label,
            "Effect": "Allow",
            "Principal": {"AWS": if principals.len() == 1 { json!(principals[0]) } else { json!(principals) }},
            "Action": if actions.len() == 1 { json!(actions[0]) } else { json!(actions) },
            "Resource": arn,
        }));
        r.attributes.insert("Policy".into(), policy.to_string());
        Ok(())
    })
    .await
}

pub async fn remove_permission(
    sqs: &Sqs,
    ctx: &RequestContext,
    input: RemovePermissionRequest,
) -> Result<(), ServiceError> {
    let q = sqs.queue(ctx, &input.queue_url, "sqs:RemovePermission")?;
    update(sqs, &q, |r| {
        let not_found =
            || errors::invalid_value("Label", &input.label, "can't find label on existing policy.");
        let mut policy: Value = r
            .attributes
            .get("Policy")
            .and_then(|p| serde_json::from_str(p).ok())
            .ok_or_else(not_found)?;
        let statements = policy["Statement"].as_array_mut().ok_or_else(not_found)?;
        let before = statements.len();
        statements.retain(|s| s["Sid"] != input.label.as_str());
        if statements.len() == before {
            return Err(not_found());
        }
        if statements.is_empty() {
            r.attributes.remove("Policy");
        } else {
            r.attributes.insert("Policy".into(), policy.to_string());
        }
        Ok(())
    })
    .await
}

pub fn list_dead_letter_source_queues(
    sqs: &Sqs,
    ctx: &RequestContext,
    input: ListDeadLetterSourceQueuesRequest,
) -> Result<ListDeadLetterSourceQueuesResult, ServiceError> {
    let q = sqs.queue(ctx, &input.queue_url, "sqs:ListDeadLetterSourceQueues")?;
    let sources = sqs.dead_letter_sources(&q.key.arn());
    let (queue_urls, next_token) = page_urls(ctx, sources, input.max_results, input.next_token.as_deref())?;
    Ok(ListDeadLetterSourceQueuesResult {
        queue_urls,
        next_token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_urls_name_account_name_and_region() {
        let ctx = RequestContext::for_tests();
        let k = key_from_url(&ctx, "http://localhost:4566/000000000000/orders").unwrap();
        assert_eq!(
            (k.account.as_str(), k.name.as_str(), k.region.as_str()),
            ("000000000000", "orders", "us-east-1")
        );
        let k = key_from_url(&ctx, "https://sqs.eu-west-1.amazonaws.com/123456789012/q").unwrap();
        assert_eq!(
            (k.account.as_str(), k.region.as_str()),
            ("123456789012", "eu-west-1")
        );
        assert!(key_from_url(&ctx, "http://localhost:4566/orders").is_err());
        assert_eq!(
            url_from_path(&ctx, "/000000000000/orders").as_deref(),
            Some("http://localhost:4566/000000000000/orders")
        );
        assert_eq!(url_from_path(&ctx, "/"), None);
    }

    #[test]
    fn names_follow_awss_rules() {
        assert!(check_name("orders-1_a", false).is_ok());
        assert!(check_name(&"a".repeat(81), false).is_err());
        assert!(check_name("bad.name", false).is_err());
        assert!(check_name("ok.fifo", true).is_ok());
        assert!(check_name("ok", true).is_err());
    }
}
