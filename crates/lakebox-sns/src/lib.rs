//! Amazon SNS for Lakebox: topics (standard and FIFO) whose messages are durably queued in an
//! outbox and delivered to subscriptions — SQS queues, HTTP/S endpoints (confirmed, retried by
//! the delivery policy), email and SMS (recorded, readable at `/_lakebox/sns/outbox`) — with
//! SNS's signed envelopes, filter policies, raw delivery and subscription dead-letter queues.
//!
//! - [`api`]: the generated shapes, validation and awsQuery dispatch.
//! - `topics`, `subscriptions`: the records in the metadata store and their operations.
//! - `publish`: Publish / PublishBatch into the `outbox`; `delivery`: the task that delivers
//!   from it; `filter`: filter policies; `signing`: signatures and the certificate
//!   (`montgomery`: the exponentiation they spend their time in).
//!
//! Not here yet: mobile push (platform applications), message archiving and replay, access
//! control by topic policy (policies are stored and reported), delivery status logging.

pub mod api;
mod delivery;
mod errors;
mod filter;
mod montgomery;
mod outbox;
mod publish;
mod signing;
mod subscriptions;
mod topics;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use http::{Method, Response, StatusCode};
use lakebox_core::clock::Clock;
use lakebox_core::{Arn, RequestContext, ServiceError};
use lakebox_protocol::query::QueryRequest;
use lakebox_service::body::{Body, full, json_response};
use lakebox_service::events::{DeliveryError, Event, EventSink};
use lakebox_service::{BoxFuture, HttpService, QueryService};
use lakebox_store::{Log, LogConfig, LogEntry, MetaStore, StoreError};

use crate::api::*;
use crate::delivery::Mail;
use crate::outbox::{Attribute, Outgoing, Published};
use crate::signing::Signer;
use crate::subscriptions::{Protocol, SubscriptionRecord};
use crate::topics::TopicRecord;

pub use crate::delivery::SNS_SENDER;

const TOPICS: &str = "topics";
const SUBSCRIPTIONS: &str = "subscriptions";
const MAIL: &str = "mail";
const STATE: &str = "state";
const CHECKPOINT_KEY: &[u8] = b"outbox_checkpoint";
const SMS_ATTRIBUTES_KEY: &[u8] = b"sms_attributes";
const OUTBOX_SEGMENT_BYTES: u64 = 32 * 1024 * 1024;
/// Where Lakebox serves its own SNS routes (the signing certificate, the mail outbox).
pub const ROUTE_PREFIX: &str = "/_lakebox/sns/";

/// FIFO topics' deduplication ids of the last five minutes: what a repeat answers (MessageId,
/// SequenceNumber) by topic and id, and the ids in the order they were published.
#[derive(Default)]
struct Deduplication {
    ids: HashMap<String, (String, Option<String>)>,
    order: std::collections::VecDeque<(i64, String)>,
}

#[derive(Default)]
struct State {
    topics: BTreeMap<String, Arc<TopicRecord>>,
    subscriptions: BTreeMap<String, Arc<SubscriptionRecord>>,
    /// Subscriptions each topic ever lost (SubscriptionsDeleted), since the server started.
    deleted: HashMap<String, u64>,
}

pub struct Sns {
    dir: PathBuf,
    clock: Arc<dyn Clock>,
    meta: MetaStore,
    /// The URL links in messages use when no request tells how clients reach this server
    /// (messages S3 publishes): the address the server listens on.
    listen_url: std::sync::OnceLock<String>,
    state: RwLock<State>,
    /// Serialises changes to records (topic and subscription writes).
    admin: tokio::sync::Mutex<()>,
    /// Opened by the first message, or at start when one exists.
    outbox: Mutex<Option<Arc<Log>>>,
    outbox_opened: tokio::sync::Notify,
    signer: tokio::sync::OnceCell<Arc<Signer>>,
    /// FIFO topics' deduplication ids of the last five minutes.
    fifo_dedup: Mutex<Deduplication>,
    /// Where the AWS/SNS metrics go, once the binary wires them.
    metrics: std::sync::OnceLock<lakebox_service::metrics::Recorder>,
    sequence: AtomicU64,
    mail_seq: AtomicU64,
}

impl Sns {
    /// Publishes and deliveries are counted in AWS/SNS (by TopicName) through `recorder`.
    pub fn set_metrics(&self, recorder: lakebox_service::metrics::Recorder) {
        let _ = self.metrics.set(recorder);
    }

    /// Adds to a topic's AWS/SNS metrics.
    pub(crate) fn record(&self, topic_arn: &str, values: &[(&str, &str, f64)]) {
        let (Some(recorder), Some(arn)) = (self.metrics.get(), lakebox_core::Arn::parse(topic_arn)) else {
            return;
        };
        recorder.record_many(
            &arn.account_id,
            &arn.region,
            "AWS/SNS",
            &[("TopicName", arn.resource.as_str())],
            values,
        );
    }
}

impl Sns {
    pub fn open(dir: &Path, clock: Arc<dyn Clock>) -> Result<Arc<Self>, StoreError> {
        let meta = MetaStore::open(&dir.join("meta.redb"))?;
        let mut state = State::default();
        for (_, v) in meta.read(|v| v.scan_prefix(TOPICS, b""))? {
            if let Ok(t) = serde_json::from_slice::<TopicRecord>(&v) {
                state.topics.insert(t.arn.clone(), Arc::new(t));
            }
        }
        for (_, v) in meta.read(|v| v.scan_prefix(SUBSCRIPTIONS, b""))? {
            if let Ok(s) = serde_json::from_slice::<SubscriptionRecord>(&v) {
                state.subscriptions.insert(s.arn.clone(), Arc::new(s.compile()));
            }
        }
        let last_mail = meta
            .read(|v| v.scan_prefix(MAIL, b""))?
            .last()
            .and_then(|(k, _)| k.as_slice().try_into().ok().map(u64::from_be_bytes))
            .unwrap_or(0);
        let sns = Arc::new(Sns {
            dir: dir.to_owned(),
            sequence: AtomicU64::new(clock.now_millis().max(0) as u64 * 1_000_000),
            clock,
            meta,
            listen_url: std::sync::OnceLock::new(),
            state: RwLock::new(state),
            admin: tokio::sync::Mutex::new(()),
            outbox: Mutex::new(None),
            outbox_opened: tokio::sync::Notify::new(),
            signer: tokio::sync::OnceCell::new(),
            fifo_dedup: Mutex::new(Deduplication::default()),
            metrics: std::sync::OnceLock::new(),
            mail_seq: AtomicU64::new(last_mail + 1),
        });
        if sns.outbox_dir().exists() {
            sns.outbox()?;
        }
        Ok(sns)
    }

    pub(crate) fn now(&self) -> i64 {
        self.clock.now_millis()
    }

    /// Tells the service where the server listens (`http://127.0.0.1:4566`), for links in
    /// messages no request carries a host for.
    pub fn set_listen_url(&self, url: String) {
        let _ = self.listen_url.set(url);
    }

    fn default_base_url(&self) -> String {
        self.listen_url
            .get()
            .cloned()
            .unwrap_or_else(|| "http://localhost:4566".to_owned())
    }

    /// The sink through which other services (S3's notifications) publish to topics.
    pub fn event_sink(self: &Arc<Self>) -> Arc<dyn EventSink> {
        Arc::new(TopicEvents(self.clone()))
    }

    /// Starts delivering queued messages to subscribers; `targets` reaches the queues (and
    /// other services' resources) subscriptions name.
    pub fn start_delivery(self: &Arc<Self>, targets: Arc<dyn EventSink>) -> tokio::task::JoinHandle<()> {
        delivery::spawn(self.clone(), targets)
    }

    // ---- records ----------------------------------------------------------------------

    pub(crate) fn topic(&self, arn: &str) -> Option<Arc<TopicRecord>> {
        self.state.read().unwrap().topics.get(arn).cloned()
    }

    pub(crate) fn topics_of(&self, account: &str, region: &str) -> Vec<Arc<TopicRecord>> {
        self.state
            .read()
            .unwrap()
            .topics
            .values()
            .filter(|t| Arn::parse(&t.arn).is_some_and(|a| a.account_id == account && a.region == region))
            .cloned()
            .collect()
    }

    pub(crate) async fn save_topic(&self, t: TopicRecord) -> Result<(), ServiceError> {
        let value = serde_json::to_vec(&t).map_err(|e| ServiceError::internal(e.to_string()))?;
        let key = t.arn.clone().into_bytes();
        self.meta
            .write_async(move |w| w.put(TOPICS, &key, &value))
            .await
            .map_err(errors::store)?;
        self.state
            .write()
            .unwrap()
            .topics
            .insert(t.arn.clone(), Arc::new(t));
        Ok(())
    }

    /// Deletes a topic and its subscriptions.
    pub(crate) async fn remove_topic(&self, arn: &str) -> Result<(), ServiceError> {
        let subs: Vec<String> = self.subscriptions_of(arn).iter().map(|s| s.arn.clone()).collect();
        let (key, sub_keys) = (arn.as_bytes().to_vec(), subs.clone());
        self.meta
            .write_async(move |w| {
                w.delete(TOPICS, &key)?;
                for s in &sub_keys {
                    w.delete(SUBSCRIPTIONS, s.as_bytes())?;
                }
                Ok(())
            })
            .await
            .map_err(errors::store)?;
        let mut st = self.state.write().unwrap();
        st.topics.remove(arn);
        for s in subs {
            st.subscriptions.remove(&s);
        }
        st.deleted.remove(arn);
        Ok(())
    }

    pub(crate) fn subscription(&self, arn: &str) -> Option<Arc<SubscriptionRecord>> {
        self.state.read().unwrap().subscriptions.get(arn).cloned()
    }

    /// A topic's subscriptions, in ARN order.
    pub(crate) fn subscriptions_of(&self, topic_arn: &str) -> Vec<Arc<SubscriptionRecord>> {
        let prefix = format!("{topic_arn}:");
        self.state
            .read()
            .unwrap()
            .subscriptions
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(_, s)| s.clone())
            .collect()
    }

    pub(crate) fn subscriptions_in(&self, account: &str, region: &str) -> Vec<Arc<SubscriptionRecord>> {
        self.state
            .read()
            .unwrap()
            .subscriptions
            .values()
            .filter(|s| Arn::parse(&s.arn).is_some_and(|a| a.account_id == account && a.region == region))
            .cloned()
            .collect()
    }

    pub(crate) fn find_subscription(
        &self,
        topic_arn: &str,
        protocol: Protocol,
        endpoint: &str,
    ) -> Option<Arc<SubscriptionRecord>> {
        self.subscriptions_of(topic_arn)
            .into_iter()
            .find(|s| s.protocol == protocol && s.endpoint == endpoint)
    }

    /// (confirmed, pending, deleted) subscriptions of a topic.
    pub(crate) fn subscription_counts(&self, topic_arn: &str) -> (usize, usize, u64) {
        let subs = self.subscriptions_of(topic_arn);
        let pending = subs.iter().filter(|s| s.pending).count();
        let deleted = self
            .state
            .read()
            .unwrap()
            .deleted
            .get(topic_arn)
            .copied()
            .unwrap_or(0);
        (subs.len() - pending, pending, deleted)
    }

    pub(crate) async fn save_subscription(&self, s: SubscriptionRecord) -> Result<(), ServiceError> {
        let value = serde_json::to_vec(&s).map_err(|e| ServiceError::internal(e.to_string()))?;
        let key = s.arn.clone().into_bytes();
        self.meta
            .write_async(move |w| w.put(SUBSCRIPTIONS, &key, &value))
            .await
            .map_err(errors::store)?;
        self.state
            .write()
            .unwrap()
            .subscriptions
            .insert(s.arn.clone(), Arc::new(s));
        Ok(())
    }

    pub(crate) async fn remove_subscription(&self, s: &SubscriptionRecord) -> Result<(), ServiceError> {
        let key = s.arn.clone().into_bytes();
        self.meta
            .write_async(move |w| w.delete(SUBSCRIPTIONS, &key).map(|_| ()))
            .await
            .map_err(errors::store)?;
        let mut st = self.state.write().unwrap();
        st.subscriptions.remove(&s.arn);
        *st.deleted.entry(s.topic_arn.clone()).or_default() += 1;
        Ok(())
    }

    // ---- the outbox -------------------------------------------------------------------

    fn outbox_dir(&self) -> PathBuf {
        self.dir.join("outbox")
    }

    fn outbox(&self) -> Result<Arc<Log>, StoreError> {
        let mut o = self.outbox.lock().unwrap();
        if let Some(log) = &*o {
            return Ok(log.clone());
        }
        let config = LogConfig {
            segment_bytes: OUTBOX_SEGMENT_BYTES,
            ..LogConfig::default()
        };
        let log = Arc::new(Log::open(&self.outbox_dir(), config)?);
        *o = Some(log.clone());
        self.outbox_opened.notify_waiters();
        Ok(log)
    }

    async fn wait_for_outbox(&self) -> Arc<Log> {
        loop {
            let opened = self.outbox_opened.notified();
            if let Some(log) = self.outbox.lock().unwrap().clone() {
                return log;
            }
            opened.await;
        }
    }

    /// Writes messages to the outbox durably (one group commit).
    pub(crate) async fn enqueue(&self, out: Vec<Outgoing>) -> Result<(), ServiceError> {
        let log = self.outbox().map_err(errors::store)?;
        let now = self.now();
        let entries = out
            .iter()
            .map(|o| LogEntry {
                timestamp_millis: now,
                payload: o.encode(),
            })
            .collect();
        log.append(entries).await.map_err(errors::store)?;
        Ok(())
    }

    fn checkpoint(&self) -> u64 {
        self.meta
            .get(STATE, CHECKPOINT_KEY)
            .ok()
            .flatten()
            .and_then(|v| v.as_slice().try_into().ok().map(u64::from_be_bytes))
            .unwrap_or(0)
    }

    /// Records that every message below `offset` is delivered, and lets the outbox's
    /// segments below it go.
    async fn save_checkpoint(&self, offset: u64) -> Result<(), StoreError> {
        self.meta
            .write_async(move |w| w.put(STATE, CHECKPOINT_KEY, &offset.to_be_bytes()))
            .await?;
        let log = self.outbox.lock().unwrap().clone();
        if let Some(log) = log {
            log.truncate_before(offset)?;
        }
        Ok(())
    }

    pub(crate) fn next_sequence_number(&self) -> String {
        format!("{:020}", self.sequence.fetch_add(1, Ordering::Relaxed))
    }

    // ---- signing ----------------------------------------------------------------------

    async fn signer(&self) -> Result<Arc<Signer>, String> {
        let dir = self.dir.clone();
        self.signer
            .get_or_try_init(|| async move {
                tokio::task::spawn_blocking(move || Signer::load_or_create(&dir))
                    .await
                    .map_err(|e| e.to_string())?
                    .map(Arc::new)
            })
            .await
            .cloned()
    }

    fn cert_url(&self, base: &str, signer: &Signer) -> String {
        format!("{base}{ROUTE_PREFIX}{}", signer.cert_name)
    }

    // ---- email and SMS ----------------------------------------------------------------

    pub(crate) async fn record_mail(&self, mails: Vec<Mail>) -> Result<(), ServiceError> {
        let mut rows = Vec::new();
        for m in mails {
            let seq = self.mail_seq.fetch_add(1, Ordering::Relaxed);
            let value = serde_json::to_vec(&m).map_err(|e| ServiceError::internal(e.to_string()))?;
            rows.push((seq.to_be_bytes(), value));
        }
        self.meta
            .write_async(move |w| {
                for (k, v) in &rows {
                    w.put(MAIL, k, v)?;
                }
                Ok(())
            })
            .await
            .map_err(errors::store)
    }

    fn mail(&self) -> Result<Vec<Mail>, StoreError> {
        Ok(self
            .meta
            .read(|v| v.scan_prefix(MAIL, b""))?
            .into_iter()
            .filter_map(|(_, v)| serde_json::from_slice(&v).ok())
            .collect())
    }

    async fn clear_mail(&self) -> Result<(), StoreError> {
        let keys: Vec<Vec<u8>> = self
            .meta
            .read(|v| v.scan_prefix(MAIL, b""))?
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        self.meta
            .write_async(move |w| {
                for k in &keys {
                    w.delete(MAIL, k)?;
                }
                Ok(())
            })
            .await
    }
}

/// `http://<host>` of the request, or the configured URL.
pub(crate) fn base_url(sns: &Sns, ctx: &RequestContext) -> String {
    match &ctx.host {
        Some(h) => format!("http://{h}"),
        None => sns.default_base_url(),
    }
}

/// Events other services publish to topics (S3's notifications).
struct TopicEvents(Arc<Sns>);

impl EventSink for TopicEvents {
    fn deliver(&self, target_arn: String, event: Event) -> BoxFuture<Result<(), DeliveryError>> {
        let sns = self.0.clone();
        Box::pin(async move {
            let topic = sns.topic(&target_arn).ok_or(DeliveryError::NoSuchTarget)?;
            if topic.fifo {
                return Err(DeliveryError::Refused(
                    "event notifications cannot go to FIFO topics".into(),
                ));
            }
            let attributes = event
                .attributes
                .into_iter()
                .map(|a| {
                    let (text, binary) = match a.value {
                        lakebox_service::events::AttributeValue::Text(t) => (Some(t), None),
                        lakebox_service::events::AttributeValue::Binary(b) => (None, Some(b)),
                    };
                    Attribute {
                        name: a.name,
                        data_type: a.data_type,
                        text,
                        binary,
                    }
                })
                .collect();
            let p = Published {
                topic_arn: topic.arn.clone(),
                message_id: uuid::Uuid::new_v4().to_string(),
                message: event.message,
                subject: event.subject,
                per_protocol: false,
                attributes,
                group_id: None,
                dedup_id: None,
                sequence_number: None,
                timestamp_millis: sns.now(),
                base_url: sns.default_base_url(),
            };
            sns.enqueue(vec![Outgoing::Publish(Box::new(p))])
                .await
                .map_err(|e| DeliveryError::Failed(e.message))
        })
    }
}

impl QueryService for Sns {
    fn call(
        self: Arc<Self>,
        ctx: RequestContext,
        req: QueryRequest,
    ) -> BoxFuture<Result<String, ServiceError>> {
        api::dispatch(self, ctx, req)
    }
}

/// Lakebox's own SNS routes: the signing certificate (public, as AWS's is) and the recorded
/// email/SMS outbox (`GET` lists, optionally `?endpoint=`; `DELETE` empties it).
impl HttpService for Sns {
    fn call(
        self: Arc<Self>,
        _ctx: RequestContext,
        req: http::Request<Body>,
    ) -> BoxFuture<Result<Response<Body>, ServiceError>> {
        Box::pin(async move {
            let path = req
                .uri()
                .path()
                .strip_prefix(ROUTE_PREFIX)
                .unwrap_or_default()
                .to_owned();
            let query = req.uri().query().unwrap_or_default().to_owned();
            let not_found = || {
                ServiceError::new(
                    "NotFound",
                    404,
                    format!("No Lakebox endpoint at {ROUTE_PREFIX}{path}"),
                )
            };
            match (req.method(), path.as_str()) {
                (&Method::GET, name)
                    if name.starts_with("SimpleNotificationService") && name.ends_with(".pem") =>
                {
                    let signer = self.signer().await.map_err(ServiceError::internal)?;
                    if name != signer.cert_name {
                        return Err(not_found());
                    }
                    let mut resp = Response::new(full(signer.cert_pem.clone()));
                    resp.headers_mut().insert(
                        http::header::CONTENT_TYPE,
                        http::HeaderValue::from_static("application/x-pem-file"),
                    );
                    Ok(resp)
                }
                (&Method::GET, "outbox") => {
                    let endpoint = query
                        .split('&')
                        .find_map(|p| p.strip_prefix("endpoint="))
                        .map(|e| {
                            percent_encoding::percent_decode_str(&e.replace('+', " "))
                                .decode_utf8_lossy()
                                .into_owned()
                        });
                    let this = self.clone();
                    let mail = tokio::task::spawn_blocking(move || this.mail())
                        .await
                        .map_err(|e| ServiceError::internal(e.to_string()))?
                        .map_err(errors::store)?;
                    let messages: Vec<Mail> = mail
                        .into_iter()
                        .filter(|m| endpoint.as_ref().is_none_or(|e| &m.endpoint == e))
                        .collect();
                    Ok(json_response(
                        StatusCode::OK,
                        &serde_json::json!({ "messages": messages }),
                    ))
                }
                (&Method::DELETE, "outbox") => {
                    self.clear_mail().await.map_err(errors::store)?;
                    Ok(json_response(StatusCode::OK, &serde_json::json!({})))
                }
                _ => Err(not_found()),
            }
        })
    }
}

impl SnsApi for Sns {
    async fn create_topic(
        &self,
        ctx: &RequestContext,
        input: CreateTopicInput,
    ) -> Result<CreateTopicResponse, ServiceError> {
        topics::create_topic(self, ctx, input).await
    }

    async fn delete_topic(&self, _ctx: &RequestContext, input: DeleteTopicInput) -> Result<(), ServiceError> {
        topics::delete_topic(self, input).await
    }

    async fn get_topic_attributes(
        &self,
        _ctx: &RequestContext,
        input: GetTopicAttributesInput,
    ) -> Result<GetTopicAttributesResponse, ServiceError> {
        topics::get_topic_attributes(self, input)
    }

    async fn set_topic_attributes(
        &self,
        _ctx: &RequestContext,
        input: SetTopicAttributesInput,
    ) -> Result<(), ServiceError> {
        topics::set_topic_attributes(self, input).await
    }

    async fn list_topics(
        &self,
        ctx: &RequestContext,
        input: ListTopicsInput,
    ) -> Result<ListTopicsResponse, ServiceError> {
        topics::list_topics(self, ctx, input)
    }

    async fn subscribe(
        &self,
        ctx: &RequestContext,
        input: SubscribeInput,
    ) -> Result<SubscribeResponse, ServiceError> {
        subscriptions::subscribe(self, ctx, input).await
    }

    async fn confirm_subscription(
        &self,
        _ctx: &RequestContext,
        input: ConfirmSubscriptionInput,
    ) -> Result<ConfirmSubscriptionResponse, ServiceError> {
        subscriptions::confirm_subscription(self, input).await
    }

    async fn unsubscribe(&self, ctx: &RequestContext, input: UnsubscribeInput) -> Result<(), ServiceError> {
        subscriptions::unsubscribe(self, ctx, input).await
    }

    async fn get_subscription_attributes(
        &self,
        _ctx: &RequestContext,
        input: GetSubscriptionAttributesInput,
    ) -> Result<GetSubscriptionAttributesResponse, ServiceError> {
        subscriptions::get_subscription_attributes(self, input)
    }

    async fn set_subscription_attributes(
        &self,
        _ctx: &RequestContext,
        input: SetSubscriptionAttributesInput,
    ) -> Result<(), ServiceError> {
        subscriptions::set_subscription_attributes(self, input).await
    }

    async fn list_subscriptions(
        &self,
        ctx: &RequestContext,
        input: ListSubscriptionsInput,
    ) -> Result<ListSubscriptionsResponse, ServiceError> {
        subscriptions::list_subscriptions(self, ctx, input)
    }

    async fn list_subscriptions_by_topic(
        &self,
        _ctx: &RequestContext,
        input: ListSubscriptionsByTopicInput,
    ) -> Result<ListSubscriptionsByTopicResponse, ServiceError> {
        subscriptions::list_subscriptions_by_topic(self, input)
    }

    async fn publish(
        &self,
        ctx: &RequestContext,
        input: PublishInput,
    ) -> Result<PublishResponse, ServiceError> {
        publish::publish(self, ctx, input).await
    }

    async fn publish_batch(
        &self,
        ctx: &RequestContext,
        input: PublishBatchInput,
    ) -> Result<PublishBatchResponse, ServiceError> {
        publish::publish_batch(self, ctx, input).await
    }

    async fn tag_resource(
        &self,
        _ctx: &RequestContext,
        input: TagResourceRequest,
    ) -> Result<TagResourceResponse, ServiceError> {
        topics::tag_resource(self, input).await
    }

    async fn untag_resource(
        &self,
        _ctx: &RequestContext,
        input: UntagResourceRequest,
    ) -> Result<UntagResourceResponse, ServiceError> {
        topics::untag_resource(self, input).await
    }

    async fn list_tags_for_resource(
        &self,
        _ctx: &RequestContext,
        input: ListTagsForResourceRequest,
    ) -> Result<ListTagsForResourceResponse, ServiceError> {
        topics::list_tags_for_resource(self, input)
    }

    async fn add_permission(
        &self,
        _ctx: &RequestContext,
        input: AddPermissionInput,
    ) -> Result<(), ServiceError> {
        topics::add_permission(self, input).await
    }

    async fn remove_permission(
        &self,
        _ctx: &RequestContext,
        input: RemovePermissionInput,
    ) -> Result<(), ServiceError> {
        topics::remove_permission(self, input).await
    }

    async fn get_data_protection_policy(
        &self,
        _ctx: &RequestContext,
        input: GetDataProtectionPolicyInput,
    ) -> Result<GetDataProtectionPolicyResponse, ServiceError> {
        topics::get_data_protection_policy(self, input)
    }

    async fn put_data_protection_policy(
        &self,
        _ctx: &RequestContext,
        input: PutDataProtectionPolicyInput,
    ) -> Result<(), ServiceError> {
        topics::put_data_protection_policy(self, input).await
    }

    async fn set_sms_attributes(
        &self,
        _ctx: &RequestContext,
        input: SetSMSAttributesInput,
    ) -> Result<SetSMSAttributesResponse, ServiceError> {
        let _admin = self.admin.lock().await;
        let mut current = self.sms_attributes()?;
        current.extend(input.attributes);
        let value = serde_json::to_vec(&current).map_err(|e| ServiceError::internal(e.to_string()))?;
        self.meta
            .write_async(move |w| w.put(STATE, SMS_ATTRIBUTES_KEY, &value))
            .await
            .map_err(errors::store)?;
        Ok(SetSMSAttributesResponse {})
    }

    async fn get_sms_attributes(
        &self,
        _ctx: &RequestContext,
        input: GetSMSAttributesInput,
    ) -> Result<GetSMSAttributesResponse, ServiceError> {
        let mut all = self.sms_attributes()?;
        if let Some(names) = input.attributes.filter(|n| !n.is_empty()) {
            all.retain(|k, _| names.contains(k));
        }
        Ok(GetSMSAttributesResponse {
            attributes: Some(all),
        })
    }

    async fn check_if_phone_number_is_opted_out(
        &self,
        _ctx: &RequestContext,
        _input: CheckIfPhoneNumberIsOptedOutInput,
    ) -> Result<CheckIfPhoneNumberIsOptedOutResponse, ServiceError> {
        // No phone can reply STOP to a local server: nobody has opted out.
        Ok(CheckIfPhoneNumberIsOptedOutResponse {
            is_opted_out: Some(false),
        })
    }

    async fn list_phone_numbers_opted_out(
        &self,
        _ctx: &RequestContext,
        _input: ListPhoneNumbersOptedOutInput,
    ) -> Result<ListPhoneNumbersOptedOutResponse, ServiceError> {
        Ok(ListPhoneNumbersOptedOutResponse {
            phone_numbers: Some(Vec::new()),
            next_token: None,
        })
    }

    async fn opt_in_phone_number(
        &self,
        _ctx: &RequestContext,
        _input: OptInPhoneNumberInput,
    ) -> Result<OptInPhoneNumberResponse, ServiceError> {
        Ok(OptInPhoneNumberResponse {})
    }
}

impl Sns {
    fn sms_attributes(&self) -> Result<BTreeMap<String, String>, ServiceError> {
        let raw = self.meta.get(STATE, SMS_ATTRIBUTES_KEY).map_err(errors::store)?;
        Ok(raw
            .and_then(|v| serde_json::from_slice(&v).ok())
            .unwrap_or_default())
    }
}
