//! Delivery: a task reads the outbox from its checkpoint and hands each message to the
//! topic's confirmed subscriptions whose filter policy it matches — SQS queues and Firehose
//! delivery streams (and Lambda when it exists) through the events link, HTTP/S endpoints by POST
//! with the delivery policy's retries, email and SMS into the recorded mail outbox
//! (`GET /_lakebox/sns/outbox`). Messages that cannot be delivered go to the subscription's
//! dead-letter queue when it has one.
//!
//! The checkpoint moves past a message once every delivery of it has ended (delivered, or
//! given up), so after a crash the messages from the checkpoint on are delivered again: at
//! least once, as SNS promises. A FIFO topic's messages are delivered one after another, in
//! order; a standard topic's side by side.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use http_body_util::Full;
use lakebox_core::ServiceError;
use lakebox_protocol::Timestamp;
use lakebox_service::events::{AttributeValue, DeliveryError, Event, EventAttribute, EventSink};
use lakebox_service::outbound;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::Sns;
use crate::errors::invalid_because;
use crate::outbox::{Outgoing, Published};
use crate::signing::{SignatureVersion, canonical};
use crate::subscriptions::{Protocol, SubscriptionRecord};

/// SNS's principal, as queues report the sender of its messages.
pub const SNS_SENDER: &str = "AIDAIT2UOQQY3AUEKVGXU";
/// One HTTP attempt may take this long (SNS's own limit).
const HTTP_TIMEOUT: Duration = Duration::from_secs(15);
/// A queue that fails (not "no such queue": a full disk) is retried this many times.
const QUEUE_ATTEMPTS: u32 = 10;
const READ_BATCH: usize = 256;

pub fn iso(millis: i64) -> String {
    Timestamp::from_millis(millis).to_iso8601()
}

/// A message sent to an email address or phone number, as Lakebox records it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Mail {
    pub protocol: String,
    pub endpoint: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription_arn: Option<String>,
    pub message_id: String,
    pub timestamp: String,
}

// ---- the delivery policy ------------------------------------------------------------------

/// When an HTTP/S delivery is tried again (the "healthyRetryPolicy" of a delivery policy).
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    min_delay: u64,
    max_delay: u64,
    retries: u32,
    no_delay: u32,
    min_delay_retries: u32,
    max_delay_retries: u32,
    backoff: String,
    pub content_type: String,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            min_delay: 20,
            max_delay: 20,
            retries: 3,
            no_delay: 0,
            min_delay_retries: 0,
            max_delay_retries: 0,
            backoff: "linear".into(),
            content_type: "text/plain; charset=UTF-8".into(),
        }
    }
}

impl RetryPolicy {
    fn apply(&mut self, healthy: &Value) -> Result<(), String> {
        let num = |name: &str, v: &mut u64| -> Result<(), String> {
            if let Some(x) = healthy.get(name) {
                *v = x
                    .as_u64()
                    .ok_or_else(|| format!("{name} must be a whole number"))?;
            }
            Ok(())
        };
        let num32 = |name: &str, v: &mut u32| -> Result<(), String> {
            if let Some(x) = healthy.get(name) {
                *v = x
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| format!("{name} must be a whole number"))?;
            }
            Ok(())
        };
        num("minDelayTarget", &mut self.min_delay)?;
        num("maxDelayTarget", &mut self.max_delay)?;
        num32("numRetries", &mut self.retries)?;
        num32("numNoDelayRetries", &mut self.no_delay)?;
        num32("numMinDelayRetries", &mut self.min_delay_retries)?;
        num32("numMaxDelayRetries", &mut self.max_delay_retries)?;
        if let Some(b) = healthy.get("backoffFunction") {
            let b = b.as_str().unwrap_or_default();
            if !matches!(b, "linear" | "arithmetic" | "geometric" | "exponential") {
                return Err(format!(
                    "backoffFunction {b} is not one of linear, arithmetic, geometric, exponential"
                ));
            }
            self.backoff = b.to_owned();
        }
        if self.min_delay < 1 || self.max_delay > 3600 || self.min_delay > self.max_delay {
            return Err("delay targets must satisfy 1 <= minDelayTarget <= maxDelayTarget <= 3600".into());
        }
        if self.retries > 100
            || self.no_delay + self.min_delay_retries + self.max_delay_retries > self.retries
        {
            return Err("numRetries must be at most 100 and cover the other retry counts".into());
        }
        Ok(())
    }

    fn from_docs(topic: Option<&str>, subscription: Option<&str>) -> Result<RetryPolicy, String> {
        let mut p = RetryPolicy::default();
        let mut overrides = true;
        if let Some(t) = topic {
            let v: Value = serde_json::from_str(t).map_err(|_| "failed to parse JSON".to_string())?;
            let http = &v["http"];
            if let Some(h) = http.get("defaultHealthyRetryPolicy") {
                p.apply(h)?;
            }
            if let Some(ct) = http
                .pointer("/defaultRequestPolicy/headerContentType")
                .and_then(Value::as_str)
            {
                p.content_type = ct.to_owned();
            }
            overrides = !http["disableSubscriptionOverrides"].as_bool().unwrap_or(false);
        }
        if let (Some(s), true) = (subscription, overrides) {
            let v: Value = serde_json::from_str(s).map_err(|_| "failed to parse JSON".to_string())?;
            if let Some(h) = v.get("healthyRetryPolicy") {
                p.apply(h)?;
            }
            if let Some(ct) = v
                .pointer("/requestPolicy/headerContentType")
                .and_then(Value::as_str)
            {
                p.content_type = ct.to_owned();
            }
        }
        Ok(p)
    }

    pub fn check_topic_policy(doc: &str) -> Result<(), ServiceError> {
        Self::from_docs(Some(doc), None)
            .map(|_| ())
            .map_err(|why| invalid_because("DeliveryPolicy", why))
    }

    pub fn check_subscription_policy(doc: &str) -> Result<(), ServiceError> {
        Self::from_docs(None, Some(doc))
            .map(|_| ())
            .map_err(|why| invalid_because("DeliveryPolicy", why))
    }

    /// The policy that applies to a subscription, for SNS's EffectiveDeliveryPolicy.
    pub fn effective_json(topic: Option<&str>, subscription: Option<&str>) -> String {
        let p = Self::from_docs(topic, subscription).unwrap_or_default();
        json!({
            "healthyRetryPolicy": {
                "minDelayTarget": p.min_delay, "maxDelayTarget": p.max_delay,
                "numRetries": p.retries, "numMaxDelayRetries": p.max_delay_retries,
                "numNoDelayRetries": p.no_delay, "numMinDelayRetries": p.min_delay_retries,
                "backoffFunction": p.backoff,
            },
            "sicklyRetryPolicy": null,
            "throttlePolicy": null,
            "requestPolicy": {"headerContentType": p.content_type},
            "guaranteed": false,
        })
        .to_string()
    }

    fn of(sns: &Sns, sub: &SubscriptionRecord) -> RetryPolicy {
        let topic = sns
            .topic(&sub.topic_arn)
            .and_then(|t| t.attr("DeliveryPolicy").map(str::to_owned));
        Self::from_docs(topic.as_deref(), sub.attr("DeliveryPolicy")).unwrap_or_default()
    }

    /// The wait before each retry: immediate ones, then at the minimum, then backing off from
    /// minimum to maximum, then at the maximum.
    pub fn delays(&self) -> Vec<Duration> {
        let mut out = Vec::new();
        out.extend(std::iter::repeat_n(0, self.no_delay as usize));
        out.extend(std::iter::repeat_n(
            self.min_delay,
            self.min_delay_retries as usize,
        ));
        let backoff = self.retries - self.no_delay - self.min_delay_retries - self.max_delay_retries;
        let (lo, hi) = (self.min_delay as f64, self.max_delay as f64);
        for i in 1..=backoff {
            let f = i as f64 / backoff as f64;
            let d = match self.backoff.as_str() {
                "exponential" | "geometric" => lo * (hi / lo).powf(f),
                _ => lo + (hi - lo) * f,
            };
            out.push(d.round() as u64);
        }
        out.extend(std::iter::repeat_n(
            self.max_delay,
            self.max_delay_retries as usize,
        ));
        out.into_iter().map(Duration::from_secs).collect()
    }
}

// ---- envelopes ----------------------------------------------------------------------------

/// A JSON object with its members in the order given (SNS's own order).
fn ordered(fields: &[(&str, Value)]) -> String {
    let members: Vec<String> = fields
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| format!("{}:{v}", Value::from(*k)))
        .collect();
    format!("{{{}}}", members.join(","))
}

fn attributes_json(p: &Published) -> Value {
    let mut m = serde_json::Map::new();
    for a in &p.attributes {
        let value = match (&a.text, &a.binary) {
            (Some(t), _) => t.clone(),
            (None, Some(b)) => B64.encode(b),
            _ => String::new(),
        };
        m.insert(a.name.clone(), json!({"Type": a.data_type, "Value": value}));
    }
    Value::Object(m)
}

/// A query-string value: unreserved characters as they are, everything else escaped.
fn url_encode(s: &str) -> String {
    const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, QUERY_VALUE).to_string()
}

pub fn unsubscribe_url(base: &str, subscription_arn: &str) -> String {
    format!(
        "{base}/?Action=Unsubscribe&SubscriptionArn={}&Version=2010-03-31",
        url_encode(subscription_arn)
    )
}

pub fn subscribe_url(base: &str, topic_arn: &str, token: &str) -> String {
    format!(
        "{base}/?Action=ConfirmSubscription&TopicArn={}&Token={token}&Version=2010-03-31",
        url_encode(topic_arn)
    )
}

impl Sns {
    fn signature_version(&self, topic_arn: &str) -> SignatureVersion {
        let t = self.topic(topic_arn);
        SignatureVersion::of(t.as_ref().and_then(|t| t.attr("SignatureVersion")))
    }

    /// The JSON document SQS queues, HTTP/S endpoints and email-json addresses receive.
    async fn notification(
        &self,
        p: &Published,
        sub: &SubscriptionRecord,
        message: &str,
        signatures: &Signatures,
    ) -> Result<String, String> {
        let signer = self.signer().await?;
        let version = self.signature_version(&p.topic_arn);
        let timestamp = iso(p.timestamp_millis);
        // The signed fields leave out the subscription: every subscriber of one message (with
        // the same per-protocol text) gets the same signature, made once.
        let signature = match signatures.get(version, message) {
            Some(sig) => sig,
            None => {
                let text = canonical(&[
                    ("Message", Some(message)),
                    ("MessageId", Some(&p.message_id)),
                    ("Subject", p.subject.as_deref()),
                    ("Timestamp", Some(&timestamp)),
                    ("TopicArn", Some(&p.topic_arn)),
                    ("Type", Some("Notification")),
                ]);
                let sig = signer.sign_off_runtime(version, text).await?;
                signatures.put(version, message, sig.clone());
                sig
            }
        };
        let attrs = if p.attributes.is_empty() {
            Value::Null
        } else {
            attributes_json(p)
        };
        Ok(ordered(&[
            ("Type", json!("Notification")),
            ("MessageId", json!(p.message_id)),
            ("SequenceNumber", json!(p.sequence_number)),
            ("TopicArn", json!(p.topic_arn)),
            ("Subject", json!(p.subject)),
            ("Message", json!(message)),
            ("Timestamp", json!(timestamp)),
            ("SignatureVersion", json!(version.as_str())),
            ("Signature", json!(signature)),
            ("SigningCertURL", json!(self.cert_url(&p.base_url, &signer))),
            ("UnsubscribeURL", json!(unsubscribe_url(&p.base_url, &sub.arn))),
            ("MessageAttributes", attrs),
        ]))
    }

    /// The SubscriptionConfirmation document for a pending subscription.
    async fn confirmation(&self, sub: &SubscriptionRecord, message_id: &str) -> Result<String, String> {
        let signer = self.signer().await?;
        let version = self.signature_version(&sub.topic_arn);
        let token = sub.token.clone().unwrap_or_default();
        let timestamp = iso(self.now());
        let message = format!(
            "You have chosen to subscribe to the topic {}.\nTo confirm the subscription, visit the SubscribeURL included in this message.",
            sub.topic_arn
        );
        let url = subscribe_url(&sub.base_url, &sub.topic_arn, &token);
        let text = canonical(&[
            ("Message", Some(&message)),
            ("MessageId", Some(message_id)),
            ("SubscribeURL", Some(&url)),
            ("Timestamp", Some(&timestamp)),
            ("Token", Some(&token)),
            ("TopicArn", Some(&sub.topic_arn)),
            ("Type", Some("SubscriptionConfirmation")),
        ]);
        let signature = signer.sign_off_runtime(version, text).await?;
        Ok(ordered(&[
            ("Type", json!("SubscriptionConfirmation")),
            ("MessageId", json!(message_id)),
            ("Token", json!(token)),
            ("TopicArn", json!(sub.topic_arn)),
            ("Message", json!(message)),
            ("SubscribeURL", json!(url)),
            ("Timestamp", json!(timestamp)),
            ("SignatureVersion", json!(version.as_str())),
            ("Signature", json!(signature)),
            ("SigningCertURL", json!(self.cert_url(&sub.base_url, &signer))),
        ]))
    }
}

/// One message's signatures, by signature version and the text signed (MessageStructure=json
/// gives protocols different texts).
#[derive(Default)]
struct Signatures(Mutex<Vec<(SignatureVersion, String, String)>>);

impl Signatures {
    fn get(&self, version: SignatureVersion, message: &str) -> Option<String> {
        let made = self.0.lock().unwrap();
        made.iter()
            .find(|(v, m, _)| *v == version && m == message)
            .map(|(_, _, sig)| sig.clone())
    }

    fn put(&self, version: SignatureVersion, message: &str, sig: String) {
        self.0.lock().unwrap().push((version, message.to_owned(), sig));
    }
}

/// The attributes SQS keeps beside a raw message.
fn event_attributes(p: &Published) -> Vec<EventAttribute> {
    p.attributes
        .iter()
        .map(|a| EventAttribute {
            name: a.name.clone(),
            data_type: a.data_type.clone(),
            value: match (&a.text, &a.binary) {
                (None, Some(b)) => AttributeValue::Binary(b.clone()),
                (t, _) => AttributeValue::Text(t.clone().unwrap_or_default()),
            },
        })
        .collect()
}

/// What filter policies see of a message's attributes: name → (type, value).
fn filter_view(p: &Published) -> BTreeMap<String, (String, String)> {
    p.attributes
        .iter()
        .map(|a| {
            (
                a.name.clone(),
                (a.data_type.clone(), a.text.clone().unwrap_or_default()),
            )
        })
        .collect()
}

// ---- the delivery task --------------------------------------------------------------------

/// Deliveries still being retried, by outbox offset: the checkpoint stays below them.
#[derive(Default)]
struct InFlight(Mutex<BTreeMap<u64, usize>>);

impl InFlight {
    fn add(&self, offset: u64) {
        *self.0.lock().unwrap().entry(offset).or_default() += 1;
    }

    fn done(&self, offset: u64) {
        let mut m = self.0.lock().unwrap();
        if let Some(n) = m.get_mut(&offset) {
            *n -= 1;
            if *n == 0 {
                m.remove(&offset);
            }
        }
    }

    fn lowest(&self) -> Option<u64> {
        self.0.lock().unwrap().keys().next().copied()
    }
}

struct Deliverer {
    sns: Arc<Sns>,
    sink: Arc<dyn EventSink>,
    in_flight: InFlight,
}

/// Starts the delivery task; it runs until the server stops.
pub fn spawn(sns: Arc<Sns>, sink: Arc<dyn EventSink>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let d = Arc::new(Deliverer {
            sns,
            sink,
            in_flight: InFlight::default(),
        });
        d.run().await;
    })
}

impl Deliverer {
    async fn run(self: &Arc<Self>) {
        let log = self.sns.wait_for_outbox().await;
        let mut next = self.sns.checkpoint().max(log.first_offset());
        let mut saved = next;
        let mut tip = log.watch();
        loop {
            let end = *tip.borrow_and_update();
            if next >= end {
                // Idle: keep the checkpoint current (retries may have finished) and wait.
                self.save_checkpoint(next, &mut saved).await;
                tokio::select! {
                    changed = tip.changed() => if changed.is_err() { return },
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                continue;
            }
            let records = match log.read(next, READ_BATCH, 8 * 1024 * 1024) {
                Ok(r) if !r.is_empty() => r,
                Ok(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the SNS outbox; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            next = records.last().map_or(next, |r| r.offset + 1);
            // A FIFO topic's messages one after another; everything else side by side.
            let mut chains: HashMap<String, Vec<(u64, Outgoing)>> = HashMap::new();
            let mut set = tokio::task::JoinSet::new();
            for rec in records {
                let Some(out) = Outgoing::decode(&rec.payload) else {
                    tracing::warn!(
                        offset = rec.offset,
                        "skipping an SNS outbox record that does not decode"
                    );
                    continue;
                };
                match &out {
                    Outgoing::Publish(p) if p.sequence_number.is_some() => {
                        chains
                            .entry(p.topic_arn.clone())
                            .or_default()
                            .push((rec.offset, out));
                    }
                    _ => {
                        let d = self.clone();
                        set.spawn(async move { d.handle(rec.offset, out).await });
                    }
                }
            }
            for (_, chain) in chains {
                let d = self.clone();
                set.spawn(async move {
                    for (offset, out) in chain {
                        d.handle(offset, out).await;
                    }
                });
            }
            while set.join_next().await.is_some() {}
            self.save_checkpoint(next, &mut saved).await;
        }
    }

    async fn save_checkpoint(&self, next: u64, saved: &mut u64) {
        let at = self.in_flight.lowest().map_or(next, |l| l.min(next));
        if at != *saved && self.sns.save_checkpoint(at).await.is_ok() {
            *saved = at;
        }
    }

    async fn handle(self: &Arc<Self>, offset: u64, out: Outgoing) {
        match out {
            Outgoing::Confirm { subscription_arn } => {
                let Some(sub) = self.sns.subscription(&subscription_arn).filter(|s| s.pending) else {
                    return;
                };
                self.confirm(offset, sub).await;
            }
            Outgoing::Publish(p) => {
                let p = Arc::new(*p);
                let view = filter_view(&p);
                let signatures = Signatures::default();
                for sub in self.sns.subscriptions_of(&p.topic_arn) {
                    if sub.pending {
                        continue;
                    }
                    let message = p.message_for(sub.protocol.as_str());
                    if !sub.wants(&view, &message) {
                        continue;
                    }
                    self.deliver(offset, &p, &sub, message, &signatures).await;
                }
            }
        }
    }

    async fn confirm(self: &Arc<Self>, offset: u64, sub: Arc<SubscriptionRecord>) {
        let message_id = uuid::Uuid::new_v4().to_string();
        let doc = match self.sns.confirmation(&sub, &message_id).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "cannot sign an SNS subscription confirmation");
                return;
            }
        };
        match sub.protocol {
            Protocol::Http | Protocol::Https => {
                let headers = vec![
                    ("x-amz-sns-message-type", "SubscriptionConfirmation".to_owned()),
                    ("x-amz-sns-message-id", message_id),
                    ("x-amz-sns-topic-arn", sub.topic_arn.clone()),
                ];
                self.post_with_retries(offset, sub, doc, headers, None, None);
            }
            _ => {
                let token = sub.token.clone().unwrap_or_default();
                let url = subscribe_url(&sub.base_url, &sub.topic_arn, &token);
                let message = if sub.protocol == Protocol::EmailJson {
                    doc
                } else {
                    format!(
                        "You have chosen to subscribe to the topic:\n{}\n\nTo confirm this subscription, click or visit the link below (If this was in error no action is necessary):\n{url}",
                        sub.topic_arn
                    )
                };
                let mail = Mail {
                    protocol: sub.protocol.as_str().into(),
                    endpoint: sub.endpoint.clone(),
                    subject: Some("AWS Notification - Subscription Confirmation".into()),
                    message,
                    topic_arn: Some(sub.topic_arn.clone()),
                    subscription_arn: Some(sub.arn.clone()),
                    message_id,
                    timestamp: iso(self.sns.now()),
                };
                self.record_mail(mail).await;
            }
        }
    }

    async fn record_mail(&self, mail: Mail) {
        for attempt in 0..QUEUE_ATTEMPTS {
            match self.sns.record_mail(vec![mail.clone()]).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::debug!(error = %e.message, attempt, "cannot record an SNS email/SMS; retrying");
                    tokio::time::sleep(Duration::from_secs(1 << attempt.min(5))).await;
                }
            }
        }
        tracing::warn!(endpoint = %mail.endpoint, "dropping an SNS email/SMS that could not be recorded");
    }

    async fn deliver(
        self: &Arc<Self>,
        offset: u64,
        p: &Arc<Published>,
        sub: &Arc<SubscriptionRecord>,
        message: String,
        signatures: &Signatures,
    ) {
        let envelope = || self.sns.notification(p, sub, &message, signatures);
        match sub.protocol {
            Protocol::Sqs | Protocol::Firehose => {
                let event = if sub.raw() {
                    Event {
                        message: message.clone(),
                        attributes: event_attributes(p),
                        ..Event::text(SNS_SENDER, String::new())
                    }
                } else {
                    match envelope().await {
                        Ok(doc) => Event::text(SNS_SENDER, doc),
                        Err(e) => return tracing::warn!(error = %e, "cannot sign an SNS message"),
                    }
                };
                let event = Event {
                    group_id: p.group_id.clone(),
                    dedup_id: p.dedup_id.clone(),
                    ..event
                };
                let outcome = self.to_target(&sub.endpoint, event.clone()).await;
                self.counted(&p.topic_arn, outcome.is_ok());
                if let Err(e) = outcome {
                    self.dead_letter(sub, event, &e).await;
                }
            }
            Protocol::Lambda => {
                let doc = match envelope().await {
                    Ok(d) => d,
                    Err(e) => return tracing::warn!(error = %e, "cannot sign an SNS message"),
                };
                let mut sns_part: Value = serde_json::from_str(&doc).unwrap_or_default();
                sns_part["Subject"] = json!(p.subject);
                // Lambda's SNS events spell two of the envelope's members their own way and
                // always carry MessageAttributes.
                if let Value::Object(m) = &mut sns_part {
                    for (from, to) in [
                        ("SigningCertURL", "SigningCertUrl"),
                        ("UnsubscribeURL", "UnsubscribeUrl"),
                    ] {
                        if let Some(v) = m.remove(from) {
                            m.insert(to.into(), v);
                        }
                    }
                    m.entry("MessageAttributes").or_insert_with(|| json!({}));
                }
                let event = json!({"Records": [{
                    "EventSource": "aws:sns",
                    "EventVersion": "1.0",
                    "EventSubscriptionArn": sub.arn,
                    "Sns": sns_part,
                }]});
                let event = Event::text(SNS_SENDER, event.to_string());
                let outcome = self.to_target(&sub.endpoint, event.clone()).await;
                self.counted(&p.topic_arn, outcome.is_ok());
                if let Err(e) = outcome {
                    self.dead_letter(sub, event, &e).await;
                }
            }
            Protocol::Http | Protocol::Https => {
                let body = if sub.raw() {
                    message.clone()
                } else {
                    match envelope().await {
                        Ok(d) => d,
                        Err(e) => return tracing::warn!(error = %e, "cannot sign an SNS message"),
                    }
                };
                let headers = vec![
                    ("x-amz-sns-message-type", "Notification".to_owned()),
                    ("x-amz-sns-message-id", p.message_id.clone()),
                    ("x-amz-sns-topic-arn", p.topic_arn.clone()),
                    ("x-amz-sns-subscription-arn", sub.arn.clone()),
                    ("x-amz-sns-rawdelivery", sub.raw().to_string()),
                ];
                let dlq = Event {
                    attributes: event_attributes(p),
                    ..Event::text(SNS_SENDER, body.clone())
                };
                self.post_with_retries(offset, sub.clone(), body, headers, Some(dlq), Some(&p.topic_arn));
            }
            Protocol::Email | Protocol::EmailJson | Protocol::Sms => {
                let (subject, text) = match sub.protocol {
                    Protocol::EmailJson => match envelope().await {
                        Ok(d) => (None, d),
                        Err(e) => return tracing::warn!(error = %e, "cannot sign an SNS message"),
                    },
                    Protocol::Email => (
                        Some(
                            p.subject
                                .clone()
                                .unwrap_or_else(|| "AWS Notification Message".into()),
                        ),
                        message.clone(),
                    ),
                    _ => (None, message.clone()),
                };
                let mail = Mail {
                    protocol: sub.protocol.as_str().into(),
                    endpoint: sub.endpoint.clone(),
                    subject,
                    message: text,
                    topic_arn: Some(p.topic_arn.clone()),
                    subscription_arn: Some(sub.arn.clone()),
                    message_id: p.message_id.clone(),
                    timestamp: iso(p.timestamp_millis),
                };
                self.record_mail(mail).await;
                self.counted(&p.topic_arn, true);
            }
            Protocol::Application => {}
        }
    }

    /// A delivery's outcome in the topic's NumberOfNotificationsDelivered / …Failed.
    fn counted(&self, topic_arn: &str, delivered: bool) {
        let name = if delivered {
            "NumberOfNotificationsDelivered"
        } else {
            "NumberOfNotificationsFailed"
        };
        self.sns.record(topic_arn, &[(name, "Count", 1.0)]);
    }

    /// Hands an event to a queue (or another service's target), trying again while the
    /// failure may pass.
    async fn to_target(&self, arn: &str, event: Event) -> Result<(), DeliveryError> {
        let mut attempt = 0;
        loop {
            match self.sink.deliver(arn.to_owned(), event.clone()).await {
                Err(DeliveryError::Failed(e)) if attempt + 1 < QUEUE_ATTEMPTS => {
                    tracing::debug!(target_arn = %arn, error = %e, attempt, "SNS delivery failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 << attempt.min(8))).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// A message no attempt delivered: to the subscription's dead-letter queue, if it has
    /// one, with why in its attributes; dropped otherwise, as SNS drops it.
    async fn dead_letter(&self, sub: &SubscriptionRecord, mut event: Event, why: &DeliveryError) {
        let Some(dlq) = sub.dead_letter_queue() else {
            tracing::warn!(subscription = %sub.arn, error = %why, "dropping an SNS message that could not be delivered");
            return;
        };
        // A FIFO topic's message keeps its group into a FIFO dead-letter queue.
        event
            .attributes
            .retain(|a| a.name != "ErrorCode" && a.name != "ErrorMessage");
        let (code, text) = match why {
            DeliveryError::NoSuchTarget => ("EndpointNotFound", "The endpoint does not exist".to_owned()),
            DeliveryError::Refused(w) => ("EndpointRefused", w.clone()),
            DeliveryError::Failed(w) => ("DeliveryFailed", w.clone()),
        };
        event.attributes.push(EventAttribute {
            name: "ErrorCode".into(),
            data_type: "String".into(),
            value: AttributeValue::Text(code.into()),
        });
        event.attributes.push(EventAttribute {
            name: "ErrorMessage".into(),
            data_type: "String".into(),
            value: AttributeValue::Text(text),
        });
        if let Err(e) = self.to_target(&dlq, event).await {
            tracing::warn!(subscription = %sub.arn, dead_letter_queue = %dlq, error = %e, "dropping an SNS message: its dead-letter queue refused it");
        }
    }

    /// POSTs `body` with the subscription's retry policy, in a task of its own (a slow
    /// endpoint holds back nothing else); the checkpoint waits for it.
    fn post_with_retries(
        self: &Arc<Self>,
        offset: u64,
        sub: Arc<SubscriptionRecord>,
        body: String,
        headers: Vec<(&'static str, String)>,
        dead_letter: Option<Event>,
        // The topic whose notification this is (counted in its metrics); none for a
        // subscription confirmation.
        topic_arn: Option<&str>,
    ) {
        self.in_flight.add(offset);
        let d = self.clone();
        let topic_arn = topic_arn.map(str::to_owned);
        tokio::spawn(async move {
            let policy = RetryPolicy::of(&d.sns, &sub);
            let mut delays = policy.delays().into_iter();
            let outcome = loop {
                match post(&sub.endpoint, &policy.content_type, &headers, &body).await {
                    Ok(()) => break Ok(()),
                    Err(e) => match delays.next() {
                        Some(wait) => {
                            tracing::debug!(endpoint = %sub.endpoint, error = %e, "SNS HTTP delivery failed; retrying");
                            tokio::time::sleep(wait).await;
                        }
                        None => break Err(e),
                    },
                }
            };
            if let Some(topic_arn) = &topic_arn {
                d.counted(topic_arn, outcome.is_ok());
            }
            if let (Err(e), Some(event)) = (outcome, dead_letter) {
                d.dead_letter(&sub, event, &DeliveryError::Failed(e)).await;
            }
            d.in_flight.done(offset);
        });
    }
}

/// One POST; `Ok` when the endpoint answered 2xx.
async fn post(
    url: &str,
    content_type: &str,
    headers: &[(&'static str, String)],
    body: &str,
) -> Result<(), String> {
    let mut req = http::Request::post(url)
        .header("Content-Type", content_type)
        .header("User-Agent", "Amazon Simple Notification Service Agent");
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let req = req
        .body(Full::new(Bytes::from(body.to_owned())))
        .map_err(|e| e.to_string())?;
    let answer = outbound::send(req, HTTP_TIMEOUT).await?;
    if answer.status.is_success() {
        Ok(())
    } else {
        Err(format!("the endpoint answered {}", answer.status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_follow_the_policy() {
        assert_eq!(RetryPolicy::default().delays(), vec![Duration::from_secs(20); 3]);
        let mut p = RetryPolicy::default();
        p.apply(&json!({"minDelayTarget": 1, "maxDelayTarget": 8, "numRetries": 5, "numNoDelayRetries": 1, "numMaxDelayRetries": 1, "backoffFunction": "exponential"}))
            .unwrap();
        let secs: Vec<u64> = p.delays().iter().map(Duration::as_secs).collect();
        assert_eq!(secs, vec![0, 2, 4, 8, 8]);
        assert!(p.apply(&json!({"minDelayTarget": 0})).is_err());
    }

    #[test]
    fn envelope_members_keep_snss_order() {
        let doc = ordered(&[
            ("Type", json!("Notification")),
            ("Subject", Value::Null),
            ("Message", json!("a\"b")),
        ]);
        assert_eq!(doc, r#"{"Type":"Notification","Message":"a\"b"}"#);
    }
}
