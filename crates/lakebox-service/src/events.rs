//! Publishing events to another service's resources: S3's event notifications to SQS queues and
//! SNS topics, SNS's deliveries to SQS queues and Firehose, CloudWatch Logs' subscription
//! filters to Kinesis streams and Firehose; Lambda functions when they exist. The service
//! that owns the targets implements [`EventSink`]; the binary hands it to the services that
//! publish.
//!
//! Delivery is at least once: a publisher keeps an event (in its own durable outbox) until the
//! sink accepts it, so a sink must treat `Ok` as "durably accepted".

use std::sync::Arc;

use crate::BoxFuture;

/// Why an event was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryError {
    /// No such resource (deleted, or never created): retrying will not help.
    NoSuchTarget,
    /// The resource cannot take this event (a FIFO queue for S3, which AWS refuses too).
    Refused(String),
    /// A failure that may pass (the disk is full, the store is closing): try again later.
    Failed(String),
}

impl std::fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeliveryError::NoSuchTarget => f.write_str("the target does not exist"),
            DeliveryError::Refused(why) => write!(f, "the target refused the event: {why}"),
            DeliveryError::Failed(why) => write!(f, "delivery failed: {why}"),
        }
    }
}

impl DeliveryError {
    /// What a service's own refusal means for a publisher: no such resource is final, a
    /// server-side failure or throttling may pass, anything else the target will never take.
    pub fn from_service(e: &lakebox_core::ServiceError) -> Self {
        match e.code.as_ref() {
            "ResourceNotFoundException" | "AWS.SimpleQueueService.NonExistentQueue" | "NotFound" => {
                DeliveryError::NoSuchTarget
            }
            "ProvisionedThroughputExceededException"
            | "ServiceUnavailableException"
            | "ThrottlingException" => DeliveryError::Failed(e.message.clone()),
            _ if e.status >= 500 => DeliveryError::Failed(e.message.clone()),
            _ => DeliveryError::Refused(format!("{}: {}", e.code, e.message)),
        }
    }
}

/// The context a delivery into `target_arn` acts in: the ARN's account and region.
pub fn delivery_context(
    target_arn: &str,
    now_millis: i64,
) -> Result<lakebox_core::RequestContext, DeliveryError> {
    let arn = lakebox_core::Arn::parse(target_arn).ok_or(DeliveryError::NoSuchTarget)?;
    Ok(lakebox_core::RequestContext::internal(
        &arn.account_id,
        &arn.region,
        now_millis,
    ))
}

/// One event on its way to a target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    /// The body the target's consumers read.
    pub message: String,
    /// A subject line, for targets that carry one (SNS topics: S3 sends "Amazon S3
    /// Notification").
    pub subject: Option<String>,
    /// Typed attributes the target keeps beside the body (SNS's raw delivery to SQS).
    pub attributes: Vec<EventAttribute>,
    /// For ordered targets (FIFO queues): the message group and deduplication id. A FIFO target
    /// refuses an event without a group.
    pub group_id: Option<String>,
    pub dedup_id: Option<String>,
    /// The principal the target reports as the sender (SQS's SenderId): the publishing
    /// service's own.
    pub sender: &'static str,
    /// For record targets (Kinesis streams, Firehose delivery streams): the record's bytes,
    /// in place of `message` (CloudWatch Logs sends gzip-compressed batches).
    pub data: Option<Vec<u8>>,
    /// For Kinesis streams: the record's partition key (a random one when absent).
    pub partition_key: Option<String>,
    /// A check that the target exists and takes events (S3's `s3:TestEvent` when a
    /// notification configuration is stored): queues and topics receive it as AWS delivers it
    /// to them; a Lambda function is not invoked with it, as AWS does not.
    pub probe: bool,
}

impl Event {
    /// The record a record target stores: `data` when given, else the message's text.
    pub fn into_record(self) -> Vec<u8> {
        self.data.unwrap_or_else(|| self.message.into_bytes())
    }

    /// A plain event: a body from `sender`, nothing else.
    pub fn text(sender: &'static str, message: String) -> Self {
        Event {
            message,
            sender,
            ..Event::default()
        }
    }
}

/// A message attribute as SNS and SQS type them: `String`, `Number` (and their custom
/// `Number.x` forms) carry text, `Binary` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventAttribute {
    pub name: String,
    pub data_type: String,
    pub value: AttributeValue,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttributeValue {
    Text(String),
    Binary(Vec<u8>),
}

/// Where events go, by the target's ARN.
pub trait EventSink: Send + Sync + 'static {
    /// Delivers one event to `target_arn`; resolves once the target holds it durably.
    fn deliver(&self, target_arn: String, event: Event) -> BoxFuture<Result<(), DeliveryError>>;
}

/// The sinks of every service that takes events, chosen by the ARN's service.
#[derive(Clone, Default)]
pub struct EventRouter {
    sinks: Vec<(&'static str, Arc<dyn EventSink>)>,
}

impl EventRouter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Routes ARNs of `service` (`arn:aws:<service>:…`) to `sink`.
    pub fn with(mut self, service: &'static str, sink: Arc<dyn EventSink>) -> Self {
        self.sinks.push((service, sink));
        self
    }
}

impl EventSink for EventRouter {
    fn deliver(&self, target_arn: String, event: Event) -> BoxFuture<Result<(), DeliveryError>> {
        let service = target_arn.split(':').nth(2).unwrap_or_default().to_owned();
        match self.sinks.iter().find(|(s, _)| *s == service) {
            Some((_, sink)) => sink.deliver(target_arn, event),
            None => Box::pin(async move {
                Err(DeliveryError::Refused(format!(
                    "Lakebox does not deliver events to {service} yet"
                )))
            }),
        }
    }
}
