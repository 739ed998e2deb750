//! Publish and PublishBatch: messages checked as SNS checks them, then written to the outbox
//! (durably) before the answer.

use std::collections::{BTreeMap, HashSet};

use lakebox_core::{Arn, RequestContext, ServiceError};
use sha2::Digest;

use crate::api::*;
use crate::errors::{invalid_because, invalid_parameter};
use crate::outbox::{Attribute, Outgoing, Published};
use crate::topics::{self, TopicRecord};
use crate::{Sns, delivery};

/// The most a message (with its attributes) may weigh, and a whole batch.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;
const MAX_BATCH_ENTRIES: usize = 10;
/// A FIFO topic drops a repeated deduplication id for five minutes.
const DEDUP_WINDOW_MILLIS: i64 = 5 * 60 * 1000;

/// One message as a publisher sent it.
struct Draft {
    message: String,
    subject: Option<String>,
    structure: Option<String>,
    attributes: Option<BTreeMap<String, MessageAttributeValue>>,
    group_id: Option<String>,
    dedup_id: Option<String>,
}

fn value_invalid(message: impl Into<String>) -> ServiceError {
    ServiceError::client("ParameterValueInvalid", message)
}

fn check_attributes(attrs: &BTreeMap<String, MessageAttributeValue>) -> Result<Vec<Attribute>, ServiceError> {
    let mut out = Vec::new();
    for (name, v) in attrs {
        let name_ok = !name.is_empty()
            && name.len() <= 256
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && !name.starts_with('.')
            && !name.ends_with('.')
            && !name.contains("..");
        if !name_ok {
            return Err(value_invalid(format!(
                "The message attribute name '{name}' is invalid. Can only include alphanumeric characters, hyphens, underscores, or dots."
            )));
        }
        let lower = name.to_ascii_lowercase();
        if lower.starts_with("aws.") || lower.starts_with("amazon.") {
            return Err(value_invalid(format!(
                "The message attribute name '{name}' is reserved for use by Amazon."
            )));
        }
        let base = v.data_type.split('.').next().unwrap_or_default();
        let array = v.data_type == "String.Array";
        if !matches!(base, "String" | "Number" | "Binary") {
            return Err(value_invalid(format!(
                "The message attribute '{name}' has an invalid message attribute type, the set of supported type prefixes is Binary, Number, and String."
            )));
        }
        let empty = || {
            value_invalid(format!(
                "The message attribute '{name}' must contain non-empty message attribute value for message attribute type '{base}'."
            ))
        };
        let attr = if base == "Binary" {
            let b = v.binary_value.as_ref().ok_or_else(empty)?;
            Attribute {
                name: name.clone(),
                data_type: v.data_type.clone(),
                text: None,
                binary: Some(b.0.clone()),
            }
        } else {
            let s = v
                .string_value
                .as_ref()
                .filter(|s| !s.is_empty())
                .ok_or_else(empty)?;
            if base == "Number" && s.trim().parse::<f64>().is_err() {
                return Err(value_invalid(format!(
                    "Could not cast message attribute '{name}' value to number."
                )));
            }
            if array
                && !matches!(
                    serde_json::from_str::<serde_json::Value>(s),
                    Ok(serde_json::Value::Array(_))
                )
            {
                return Err(value_invalid(format!(
                    "The message attribute '{name}' with type 'String.Array' must be a JSON array."
                )));
            }
            Attribute {
                name: name.clone(),
                data_type: v.data_type.clone(),
                text: Some(s.clone()),
                binary: None,
            }
        };
        out.push(attr);
    }
    Ok(out)
}

fn attributes_size(attrs: &[Attribute]) -> usize {
    attrs
        .iter()
        .map(|a| {
            a.name.len()
                + a.data_type.len()
                + a.text.as_ref().map_or(0, String::len)
                + a.binary.as_ref().map_or(0, Vec::len)
        })
        .sum()
}

fn check_subject(subject: &str) -> Result<(), ServiceError> {
    let ok = !subject.is_empty()
        && subject.chars().count() <= 100
        && subject.bytes().all(|b| (0x20..0x7f).contains(&b));
    if ok {
        Ok(())
    } else {
        Err(invalid_parameter("Subject"))
    }
}

fn check_structure(message: &str) -> Result<(), ServiceError> {
    let parsed: serde_json::Value = serde_json::from_str(message)
        .map_err(|_| invalid_parameter("Message Structure - JSON message body failed to parse"))?;
    match parsed.get("default") {
        Some(serde_json::Value::String(_)) => Ok(()),
        _ => Err(invalid_parameter(
            "Message Structure - No default entry in JSON message body",
        )),
    }
}

fn check_fifo_id(name: &str, id: &str) -> Result<(), ServiceError> {
    let ok = !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| (0x21..=0x7e).contains(&b));
    if ok {
        Ok(())
    } else {
        Err(invalid_because(
            name,
            format!("{name} can only contain alphanumeric characters and punctuation, up to 128 characters"),
        ))
    }
}

/// Checks a message for `topic` and makes its outbox record (ids assigned).
fn prepare(
    sns: &Sns,
    ctx: &RequestContext,
    topic: &TopicRecord,
    d: Draft,
) -> Result<Published, ServiceError> {
    if d.message.is_empty() {
        return Err(invalid_parameter("Empty message"));
    }
    if let Some(s) = &d.subject {
        check_subject(s)?;
    }
    let per_protocol = match d.structure.as_deref() {
        None | Some("") => false,
        Some("json") => {
            check_structure(&d.message)?;
            true
        }
        Some(_) => return Err(invalid_parameter("MessageStructure")),
    };
    let attributes = check_attributes(&d.attributes.unwrap_or_default())?;
    if d.message.len() + attributes_size(&attributes) > MAX_MESSAGE_BYTES {
        return Err(invalid_parameter("Message too long"));
    }
    let (mut group_id, mut dedup_id) = (d.group_id, d.dedup_id);
    if topic.fifo {
        let Some(g) = &group_id else {
            return Err(invalid_parameter(
                "The MessageGroupId parameter is required for FIFO topics",
            ));
        };
        check_fifo_id("MessageGroupId", g)?;
        match &dedup_id {
            Some(id) => check_fifo_id("MessageDeduplicationId", id)?,
            None if topic.content_based_dedup() => {
                let digest = sha2::Sha256::digest(d.message.as_bytes());
                dedup_id = Some(digest.iter().map(|b| format!("{b:02x}")).collect());
            }
            None => {
                return Err(invalid_parameter(
                    "The topic should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly",
                ));
            }
        }
    } else {
        if dedup_id.is_some() {
            return Err(invalid_because(
                "MessageDeduplicationId",
                "The request includes MessageDeduplicationId parameter that is not valid for this topic type",
            ));
        }
        // Standard topics accept a group id (for fair queues) but do not pass it on.
        if let Some(g) = &group_id {
            check_fifo_id("MessageGroupId", g)?;
        }
        group_id = None;
        dedup_id = None;
    }
    Ok(Published {
        topic_arn: topic.arn.clone(),
        message_id: lakebox_core::ids::unique_uuid().to_string(),
        message: d.message,
        subject: d.subject,
        per_protocol,
        attributes,
        sequence_number: topic.fifo.then(|| sns.next_sequence_number()),
        group_id,
        dedup_id,
        timestamp_millis: sns.now(),
        base_url: crate::base_url(sns, ctx),
    })
}

/// The topic a Publish names (TopicArn, or TargetArn naming a topic).
fn target_topic(
    sns: &Sns,
    topic_arn: Option<&str>,
    target_arn: Option<&str>,
) -> Result<std::sync::Arc<TopicRecord>, ServiceError> {
    let arn = match (topic_arn, target_arn) {
        (Some(t), None) | (None, Some(t)) => t,
        (Some(_), Some(_)) => {
            return Err(invalid_because(
                "TopicArn or TargetArn",
                "Only one of TopicArn or TargetArn may be specified",
            ));
        }
        (None, None) => {
            return Err(invalid_because(
                "TopicArn or TargetArn",
                "no value for required parameter",
            ));
        }
    };
    if target_arn.is_some() && Arn::parse(arn).is_some_and(|a| a.resource.starts_with("endpoint/")) {
        return Err(ServiceError::new("NotFound", 404, "Endpoint does not exist"));
    }
    topics::topic(sns, arn)
}

/// A FIFO topic's earlier message with this deduplication id (within five minutes), which a
/// repeat answers as.
fn duplicate(sns: &Sns, topic: &TopicRecord, p: &Published) -> Option<(String, Option<String>)> {
    let id = p.dedup_id.as_ref()?;
    let key = format!("{}\u{0}{id}", topic.arn);
    let now = sns.now();
    let mut seen = sns.fifo_dedup.lock().unwrap();
    // Ids leave the window in the order they entered it: drop the expired ones from the front
    // instead of scanning every remembered id on each publish.
    while let Some((at, _)) = seen.order.front()
        && now - *at >= DEDUP_WINDOW_MILLIS
    {
        if let Some((_, old)) = seen.order.pop_front() {
            seen.ids.remove(&old);
        }
    }
    if let Some((mid, seq)) = seen.ids.get(&key) {
        return Some((mid.clone(), seq.clone()));
    }
    seen.ids
        .insert(key.clone(), (p.message_id.clone(), p.sequence_number.clone()));
    seen.order.push_back((now, key));
    None
}

pub async fn publish(
    sns: &Sns,
    ctx: &RequestContext,
    input: PublishInput,
) -> Result<PublishResponse, ServiceError> {
    if let Some(phone) = &input.phone_number {
        if input.topic_arn.is_some() || input.target_arn.is_some() {
            return Err(invalid_because(
                "PhoneNumber",
                "Only one of TopicArn, TargetArn or PhoneNumber may be specified",
            ));
        }
        return publish_sms(sns, phone, input.message).await;
    }
    let topic = target_topic(sns, input.topic_arn.as_deref(), input.target_arn.as_deref())?;
    let draft = Draft {
        message: input.message,
        subject: input.subject,
        structure: input.message_structure,
        attributes: input.message_attributes,
        group_id: input.message_group_id,
        dedup_id: input.message_deduplication_id,
    };
    let p = prepare(sns, ctx, &topic, draft)?;
    if let Some((message_id, sequence_number)) = duplicate(sns, &topic, &p) {
        return Ok(PublishResponse {
            message_id: Some(message_id),
            sequence_number,
        });
    }
    let answer = PublishResponse {
        message_id: Some(p.message_id.clone()),
        sequence_number: p.sequence_number.clone(),
    };
    let (topic_arn, size) = (p.topic_arn.clone(), p.message.len() as f64);
    sns.enqueue(vec![Outgoing::Publish(Box::new(p))]).await?;
    sns.record(&topic_arn, &published(size));
    Ok(answer)
}

/// What one accepted message adds to its topic's metrics.
fn published(size: f64) -> [(&'static str, &'static str, f64); 2] {
    [
        ("NumberOfMessagesPublished", "Count", 1.0),
        ("PublishSize", "Bytes", size),
    ]
}

/// A text straight to a phone number: recorded in the SMS outbox.
async fn publish_sms(sns: &Sns, phone: &str, message: String) -> Result<PublishResponse, ServiceError> {
    let digits = phone.strip_prefix('+').unwrap_or_default();
    if digits.len() < 8 || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid_because(
            "PhoneNumber",
            format!("{phone} is not valid to publish to"),
        ));
    }
    if message.is_empty() {
        return Err(invalid_parameter("Empty message"));
    }
    if message.len() > 1600 {
        return Err(invalid_parameter("Message too long"));
    }
    let message_id = lakebox_core::ids::unique_uuid().to_string();
    let mail = delivery::Mail {
        protocol: "sms".into(),
        endpoint: phone.to_owned(),
        subject: None,
        message,
        topic_arn: None,
        subscription_arn: None,
        message_id: message_id.clone(),
        timestamp: delivery::iso(sns.now()),
    };
    sns.record_mail(vec![mail]).await?;
    Ok(PublishResponse {
        message_id: Some(message_id),
        sequence_number: None,
    })
}

fn valid_batch_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 80
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub async fn publish_batch(
    sns: &Sns,
    ctx: &RequestContext,
    input: PublishBatchInput,
) -> Result<PublishBatchResponse, ServiceError> {
    let topic = topics::topic(sns, &input.topic_arn)?;
    let entries = input.publish_batch_request_entries;
    if entries.is_empty() {
        return Err(ServiceError::client(
            "EmptyBatchRequest",
            "The batch request doesn't contain any entries",
        ));
    }
    if entries.len() > MAX_BATCH_ENTRIES {
        return Err(ServiceError::client(
            "TooManyEntriesInBatchRequest",
            "The batch request contains more entries than permissible.",
        ));
    }
    let mut ids = HashSet::new();
    for e in &entries {
        if !ids.insert(e.id.as_str()) {
            return Err(ServiceError::client(
                "BatchEntryIdsNotDistinct",
                "Two or more batch entries in the request have the same Id.",
            ));
        }
        if !valid_batch_id(&e.id) {
            return Err(ServiceError::client(
                "InvalidBatchEntryId",
                "The Id of a batch entry in a batch request doesn't abide by the specification.",
            ));
        }
    }
    let total: usize = entries.iter().map(|e| e.message.len()).sum();
    if total > MAX_MESSAGE_BYTES {
        return Err(ServiceError::client(
            "BatchRequestTooLong",
            "The length of all the batch messages put together is more than the limit.",
        ));
    }
    let mut successful = Vec::new();
    let mut failed = Vec::new();
    let mut out = Vec::new();
    for e in entries {
        let draft = Draft {
            message: e.message,
            subject: e.subject,
            structure: e.message_structure,
            attributes: e.message_attributes,
            group_id: e.message_group_id,
            dedup_id: e.message_deduplication_id,
        };
        match prepare(sns, ctx, &topic, draft) {
            Ok(p) => {
                let (message_id, sequence_number) = match duplicate(sns, &topic, &p) {
                    Some(earlier) => earlier,
                    None => {
                        let ids = (p.message_id.clone(), p.sequence_number.clone());
                        out.push(Outgoing::Publish(Box::new(p)));
                        ids
                    }
                };
                successful.push(PublishBatchResultEntry {
                    id: Some(e.id),
                    message_id: Some(message_id),
                    sequence_number,
                });
            }
            Err(err) => failed.push(BatchResultErrorEntry {
                id: e.id,
                code: err.code.to_string(),
                message: Some(err.message),
                sender_fault: err.sender_fault,
            }),
        }
    }
    if !out.is_empty() {
        let sizes: Vec<(String, f64)> = out
            .iter()
            .filter_map(|o| match o {
                Outgoing::Publish(p) => Some((p.topic_arn.clone(), p.message.len() as f64)),
                _ => None,
            })
            .collect();
        sns.enqueue(out).await?;
        for (topic_arn, size) in sizes {
            sns.record(&topic_arn, &published(size));
        }
    }
    Ok(PublishBatchResponse {
        successful: Some(successful),
        failed: Some(failed),
    })
}
