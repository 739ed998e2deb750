//! The message operations: send, receive (with long polling and dead-letter redrive),
//! delete, visibility changes and purge. Each changes a queue's messages in memory and
//! writes the change to the journal before it answers.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lakebox_core::{RequestContext, ServiceError};
use lakebox_service::events::{self, DeliveryError};
use md5::{Digest, Md5};

use crate::api::*;
use crate::attributes::{self, MAX_MESSAGE_BYTES};
use crate::journal::{Event, ReceiveAttempt};
use crate::messages::{DEDUP_WINDOW_MILLIS, Message, Received, Sent, attribute_bytes};
use crate::queues::Queue;
use crate::{Sqs, errors};

/// The most entries one batch request may carry.
const MAX_BATCH: usize = 10;
/// The most message attributes one message may carry.
const MAX_MESSAGE_ATTRIBUTES: usize = 10;
/// The longest a message may stay invisible (12 hours).
const MAX_VISIBILITY_SECS: i32 = 43_200;

// ---- receipt handles --------------------------------------------------------------------

/// A receipt handle names the queue incarnation, the message and the receive that handed it
/// out; only the latest receive's handle acts on the message.
fn receipt_handle(queue: u64, seq: u64, receipt: u64) -> String {
    let mut b = [0u8; 24];
    b[..8].copy_from_slice(&queue.to_be_bytes());
    b[8..16].copy_from_slice(&seq.to_be_bytes());
    b[16..].copy_from_slice(&receipt.to_be_bytes());
    URL_SAFE_NO_PAD.encode(b)
}

fn parse_receipt(q: &Queue, handle: &str) -> Result<(u64, u64), ServiceError> {
    let b = URL_SAFE_NO_PAD
        .decode(handle)
        .ok()
        .filter(|b| b.len() == 24)
        .ok_or_else(|| errors::receipt_handle_invalid(handle))?;
    let word = |i: usize| u64::from_be_bytes(b[i..i + 8].try_into().unwrap());
    if word(0) != q.id {
        return Err(errors::receipt_handle_invalid(handle));
    }
    Ok((word(8), word(16)))
}

fn new_receipt() -> u64 {
    lakebox_core::ids::unguessable_u64() | 1
}

// ---- checksums ----------------------------------------------------------------------------

fn md5_hex(bytes: &[u8]) -> String {
    let d = Md5::digest(bytes);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// MD5OfMessageAttributes as SQS computes it: attributes by name, each as length-prefixed
/// name, length-prefixed type, a transport byte (1 string, 2 binary, 3 string list, 4 binary
/// list) and the length-prefixed value(s).
fn md5_of_attributes<'a>(
    attrs: impl Iterator<Item = (&'a str, &'a str, Option<&'a str>, Option<&'a [u8]>)>,
) -> Option<String> {
    let mut sorted: Vec<_> = attrs.collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut buf = Vec::new();
    let put = |buf: &mut Vec<u8>, b: &[u8]| {
        buf.extend_from_slice(&(b.len() as u32).to_be_bytes());
        buf.extend_from_slice(b);
    };
    for (name, data_type, string, binary) in sorted {
        put(&mut buf, name.as_bytes());
        put(&mut buf, data_type.as_bytes());
        match (string, binary) {
            (Some(s), _) => {
                buf.push(1);
                put(&mut buf, s.as_bytes());
            }
            (None, Some(b)) => {
                buf.push(2);
                put(&mut buf, b);
            }
            (None, None) => {}
        }
    }
    Some(md5_hex(&buf))
}

fn md5_of_message_attributes(attrs: &[(String, MessageAttributeValue)]) -> Option<String> {
    md5_of_attributes(attrs.iter().map(|(n, v)| {
        (
            n.as_str(),
            v.data_type.as_str(),
            v.string_value.as_deref(),
            v.binary_value.as_ref().map(|b| b.0.as_slice()),
        )
    }))
}

// ---- checks -------------------------------------------------------------------------------

/// The characters a message body may hold (XML's, as SQS documents).
fn valid_body_char(c: char) -> bool {
    matches!(c, '\u{9}' | '\u{a}' | '\u{d}' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..='\u{10ffff}')
}

fn check_body(body: &str) -> Result<(), ServiceError> {
    if body.is_empty() {
        return Err(errors::missing_parameter("MessageBody"));
    }
    if let Some(c) = body.chars().find(|c| !valid_body_char(*c)) {
        return Err(ServiceError::client(
            "InvalidMessageContents",
            format!(
                "Invalid binary character '#x{:X}' was found in the message body, the set of allowed characters is #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF",
                c as u32
            ),
        ));
    }
    Ok(())
}

fn check_attribute_name(name: &str) -> Result<(), ServiceError> {
    let lower = name.to_ascii_lowercase();
    let ok = !name.is_empty()
        && name.len() <= 256
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && !name.starts_with('.')
        && !name.ends_with('.')
        && !name.contains("..")
        && !lower.starts_with("aws.")
        && !lower.starts_with("amazon.");
    if ok {
        Ok(())
    } else {
        Err(errors::invalid_parameter(format!(
            "Message (user) attribute name '{name}' is invalid. Names can contain alphanumeric characters, hyphens, underscores and periods, must not start or end with a period or hold two in a row, must not start with AWS. or Amazon., and may be 256 characters long."
        )))
    }
}

/// Checks a message's attributes: names, types and values as SQS checks them.
fn check_attributes(attrs: &BTreeMap<String, MessageAttributeValue>) -> Result<(), ServiceError> {
    if attrs.len() > MAX_MESSAGE_ATTRIBUTES {
        return Err(errors::invalid_parameter(format!(
            "Number of message attributes [{}] exceeds the allowed maximum [{MAX_MESSAGE_ATTRIBUTES}].",
            attrs.len()
        )));
    }
    for (name, v) in attrs {
        check_attribute_name(name)?;
        let kind = v.data_type.split('.').next().unwrap_or("");
        if !matches!(kind, "String" | "Number" | "Binary") || v.data_type.len() > 256 {
            return Err(errors::invalid_parameter(format!(
                "The type of message (user) attribute '{name}' is invalid. You must use only the following supported type prefixes: Binary, Number, String."
            )));
        }
        let empty = || {
            errors::invalid_parameter(format!(
                "The message attribute '{name}' must contain non-empty message attribute value for message attribute type '{kind}'."
            ))
        };
        match kind {
            "Binary" => {
                v.binary_value
                    .as_ref()
                    .filter(|b| !b.0.is_empty())
                    .ok_or_else(empty)?;
                if v.string_value.is_some() {
                    return Err(errors::invalid_parameter(format!(
                        "The message attribute '{name}' with type 'Binary' must use field 'Binary'."
                    )));
                }
            }
            _ => {
                let s = v
                    .string_value
                    .as_deref()
                    .filter(|s| !s.is_empty())
                    .ok_or_else(empty)?;
                if v.binary_value.is_some() {
                    return Err(errors::invalid_parameter(format!(
                        "The message attribute '{name}' with type '{kind}' must use field 'String'."
                    )));
                }
                if kind == "Number" && !is_sqs_number(s) {
                    return Err(errors::invalid_parameter(format!(
                        "Can't cast the value of message (user) attribute '{name}' to a number."
                    )));
                }
                if let Some(c) = s.chars().find(|c| !valid_body_char(*c)) {
                    return Err(errors::invalid_parameter(format!(
                        "Message (user) attribute '{name}' value contains invalid character #x{:X}.",
                        c as u32
                    )));
                }
            }
        }
    }
    Ok(())
}

/// SQS's Number: a decimal with at most 38 significant digits, between -10^128 and 10^126.
fn is_sqs_number(s: &str) -> bool {
    let t = s.trim();
    let Ok(n) = t.parse::<f64>() else { return false };
    let digits = t
        .split(['e', 'E'])
        .next()
        .unwrap_or("")
        .bytes()
        .filter(u8::is_ascii_digit)
        .count();
    n.is_finite()
        && digits <= 38
        && t.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
}

fn check_delay(delay: Option<i32>) -> Result<(), ServiceError> {
    match delay {
        Some(d) if !(0..=900).contains(&d) => Err(errors::invalid_value(
            "DelaySeconds",
            d,
            "DelaySeconds must be >= 0 and <= 900.",
        )),
        _ => Ok(()),
    }
}

// ---- send ---------------------------------------------------------------------------------

/// A message as a SendMessage or a batch entry describes it.
struct Draft {
    body: String,
    delay: Option<i32>,
    attrs: Option<BTreeMap<String, MessageAttributeValue>>,
    system: Option<BTreeMap<String, MessageSystemAttributeValue>>,
    group_id: Option<String>,
    dedup_id: Option<String>,
}

/// A message ready for the journal.
struct Outgoing {
    sent: Sent,
    visible_at: i64,
}

/// The sequence number a FIFO message is given: 20 digits, rising with every send.
fn fifo_sequence(seq: u64) -> String {
    format!("{}", 18_000_000_000_000_000_000u128 + u128::from(seq))
}

/// MessageGroupId and MessageDeduplicationId: 1–128 printable ASCII characters.
fn check_fifo_id(parameter: &str, v: &str) -> Result<(), ServiceError> {
    if !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| (33..=126).contains(&b)) {
        return Ok(());
    }
    Err(errors::invalid_value(
        parameter,
        v,
        &format!("{parameter} can only include alphanumeric and punctuation characters. 1 to 128 in length."),
    ))
}

fn not_for_this_queue_type(parameter: &str, value: impl std::fmt::Display) -> ServiceError {
    errors::invalid_value(
        parameter,
        value,
        "The request include parameter that is not valid for this queue type.",
    )
}

/// Checks one message and builds what the journal records of it.
fn prepare(sqs: &Sqs, sender_id: &str, q: &Queue, d: Draft) -> Result<Outgoing, ServiceError> {
    check_body(&d.body)?;
    check_delay(d.delay)?;
    if let Some(g) = &d.group_id {
        check_fifo_id("MessageGroupId", g)?;
    }
    // FIFO: the deduplication id (sent, or the body's SHA-256 with content-based
    // deduplication) and the key deduplication compares.
    let mut dedup: Option<(String, String)> = None;
    if q.fifo {
        let Some(group) = &d.group_id else {
            return Err(errors::missing_parameter("MessageGroupId"));
        };
        if let Some(delay) = d.delay.filter(|d| *d != 0) {
            return Err(not_for_this_queue_type("DelaySeconds", delay));
        }
        let rec = q.record.read().unwrap();
        let id = match &d.dedup_id {
            Some(id) => {
                check_fifo_id("MessageDeduplicationId", id)?;
                id.clone()
            }
            None if attributes::value(&rec.attributes, "ContentBasedDeduplication") == Some("true") => {
                let digest = sha2::Sha256::digest(d.body.as_bytes());
                digest.iter().map(|b| format!("{b:02x}")).collect()
            }
            None => {
                return Err(errors::invalid_parameter(
                    "The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly",
                ));
            }
        };
        let key = match attributes::value(&rec.attributes, "DeduplicationScope") {
            Some("messageGroup") => format!("{group}\u{0}{id}"),
            _ => id.clone(),
        };
        dedup = Some((id, key));
    } else if let Some(id) = &d.dedup_id {
        return Err(not_for_this_queue_type("MessageDeduplicationId", id));
    }
    let attrs = d.attrs.unwrap_or_default();
    check_attributes(&attrs)?;
    let attrs_size = attribute_bytes(attrs.iter());
    let max = q.number("MaximumMessageSize").min(MAX_MESSAGE_BYTES) as usize;
    if d.body.len() + attrs_size > max {
        return Err(errors::invalid_parameter(format!(
            "One or more parameters are invalid. Reason: Message must be shorter than {max} bytes."
        )));
    }
    let mut trace_header = None;
    let mut md5_of_system_attributes = None;
    if let Some(system) = d.system.filter(|s| !s.is_empty()) {
        if let Some(bad) = system.keys().find(|k| *k != "AWSTraceHeader") {
            return Err(errors::invalid_parameter(format!(
                "Message system attribute name '{bad}' is invalid."
            )));
        }
        let v = &system["AWSTraceHeader"];
        if v.data_type != "String" || v.string_value.as_deref().is_none_or(str::is_empty) {
            return Err(errors::invalid_parameter(
                "The message system attribute 'AWSTraceHeader' must be of type 'String' with a non-empty value.",
            ));
        }
        md5_of_system_attributes = md5_of_attributes(
            system
                .iter()
                .map(|(n, v)| (n.as_str(), v.data_type.as_str(), v.string_value.as_deref(), None)),
        );
        trace_header = v.string_value.clone();
    }
    let now = sqs.now();
    let delay = d.delay.map_or_else(|| q.number("DelaySeconds"), i64::from);
    let attributes: Vec<(String, MessageAttributeValue)> = attrs.into_iter().collect();
    let sent = Sent {
        message_id: lakebox_core::ids::unique_uuid().to_string(),
        md5_of_body: md5_hex(d.body.as_bytes()),
        body: d.body,
        md5_of_attributes: md5_of_message_attributes(&attributes),
        attributes,
        trace_header,
        md5_of_system_attributes,
        sender_id: sender_id.to_owned(),
        sent_millis: now,
        dead_letter_source: None,
        group_id: d.group_id,
        dedup_id: dedup.as_ref().map(|(id, _)| id.clone()),
        dedup_key: dedup.map(|(_, key)| key),
    };
    Ok(Outgoing {
        sent,
        visible_at: now + delay * 1000,
    })
}

/// SenderId: the caller's access key, or the account for anonymous requests.
fn sender(ctx: &RequestContext) -> String {
    ctx.principal
        .as_ref()
        .map_or_else(|| ctx.account_id.clone(), |p| p.access_key_id.clone())
}

/// Delivers an event another service publishes (S3's notifications) as a message on a
/// standard queue, durably.
pub(crate) async fn deliver_event(
    sqs: &Sqs,
    target_arn: &str,
    event: events::Event,
) -> Result<(), DeliveryError> {
    let q = sqs.queue_by_arn(target_arn).ok_or(DeliveryError::NoSuchTarget)?;
    if q.fifo && event.group_id.is_none() {
        return Err(DeliveryError::Refused(
            "event notifications cannot go to FIFO queues".into(),
        ));
    }
    // SQS carries String, Number and Binary (and their custom forms); an SNS String.Array
    // arrives as its JSON text.
    let attrs: BTreeMap<String, MessageAttributeValue> = event
        .attributes
        .into_iter()
        .map(|a| {
            let data_type = match a.data_type.as_str() {
                "String.Array" => "String".to_owned(),
                _ => a.data_type,
            };
            let (string_value, binary_value) = match a.value {
                events::AttributeValue::Text(t) => (Some(t), None),
                events::AttributeValue::Binary(b) => (None, Some(lakebox_protocol::Blob(b))),
            };
            let value = MessageAttributeValue {
                string_value,
                binary_value,
                data_type,
                ..Default::default()
            };
            (a.name, value)
        })
        .collect();
    let draft = Draft {
        body: event.message,
        delay: None,
        attrs: Some(attrs),
        system: None,
        // A FIFO topic's order and deduplication carry into FIFO queues; standard queues
        // take its messages without them.
        group_id: event.group_id.filter(|_| q.fifo),
        dedup_id: event.dedup_id.filter(|_| q.fifo),
    };
    let out = prepare(sqs, event.sender, &q, draft).map_err(|e| DeliveryError::Refused(e.message))?;
    enqueue(sqs, &q, vec![out]).await.map_err(|e| {
        if e.status >= 500 {
            DeliveryError::Failed(e.message)
        } else {
            DeliveryError::Refused(e.message)
        }
    })?;
    Ok(())
}

/// Journals the messages, then makes them receivable and wakes long polls. On a FIFO queue a
/// message whose deduplication key was seen in the last five minutes (also earlier in the
/// same batch) is not sent again: it answers as the first did.
async fn enqueue(sqs: &Sqs, q: &Queue, out: Vec<Outgoing>) -> Result<Vec<(Arc<Sent>, u64)>, ServiceError> {
    let _turn = if q.fifo {
        Some(q.fifo_send.lock().await)
    } else {
        None
    };
    let now = sqs.now();
    let n = out.len();
    let mut results: Vec<Option<(Arc<Sent>, u64)>> = vec![None; n];
    let mut fresh: Vec<(usize, Outgoing)> = Vec::new();
    let mut twins: Vec<(usize, usize, Outgoing)> = Vec::new();
    {
        let m = q.messages.lock().unwrap();
        let mut in_batch: HashMap<String, usize> = HashMap::new();
        for (i, o) in out.into_iter().enumerate() {
            if let Some(key) = o.sent.dedup_key.clone() {
                if let Some((id, seq)) = m.duplicate_of(&key, now) {
                    let mut sent = o.sent;
                    sent.message_id = id;
                    results[i] = Some((Arc::new(sent), seq));
                    continue;
                }
                if let Some(&first) = in_batch.get(&key) {
                    twins.push((i, first, o));
                    continue;
                }
                in_batch.insert(key, i);
            }
            fresh.push((i, o));
        }
    }
    if !fresh.is_empty() {
        let events: Vec<Event> = fresh
            .iter()
            .map(|(_, o)| Event::Sent {
                queue: q.id,
                visible_at: o.visible_at,
                sent: Box::new(o.sent.clone()),
            })
            .collect();
        let first = sqs.record(&events).await?;
        let mut m = q.messages.lock().unwrap();
        for (k, (i, o)) in fresh.into_iter().enumerate() {
            let seq = first + k as u64;
            let s = Arc::new(o.sent);
            m.insert(seq, s.clone(), o.visible_at, now);
            results[i] = Some((s, seq));
        }
    }
    for (i, first, o) in twins {
        let (original, seq) = results[first].clone().expect("the first of its key was sent");
        let mut sent = o.sent;
        sent.message_id = original.message_id.clone();
        results[i] = Some((Arc::new(sent), seq));
    }
    q.arrived.notify_waiters();
    Ok(results
        .into_iter()
        .map(|r| r.expect("every message answered"))
        .collect())
}

pub async fn send_message(
    sqs: &Sqs,
    ctx: &RequestContext,
    input: SendMessageRequest,
) -> Result<SendMessageResult, ServiceError> {
    let q = sqs.queue(ctx, &input.queue_url, "sqs:SendMessage")?;
    let draft = Draft {
        body: input.message_body,
        delay: input.delay_seconds,
        attrs: input.message_attributes,
        system: input.message_system_attributes,
        group_id: input.message_group_id,
        dedup_id: input.message_deduplication_id,
    };
    let out = prepare(sqs, &sender(ctx), &q, draft)?;
    let (s, seq) = enqueue(sqs, &q, vec![out]).await?.remove(0);
    Ok(SendMessageResult {
        md5_of_message_body: Some(s.md5_of_body.clone()),
        md5_of_message_attributes: s.md5_of_attributes.clone(),
        md5_of_message_system_attributes: s.md5_of_system_attributes.clone(),
        message_id: Some(s.message_id.clone()),
        sequence_number: q.fifo.then(|| fifo_sequence(seq)),
    })
}

/// The checks every batch request shares: 1–10 entries, ids well formed and distinct.
fn check_batch<'a>(ids: impl ExactSizeIterator<Item = &'a str>, entry: &str) -> Result<(), ServiceError> {
    let n = ids.len();
    if n == 0 {
        return Err(errors::empty_batch(entry));
    }
    if n > MAX_BATCH {
        return Err(errors::too_many_entries(n));
    }
    let mut seen = HashSet::new();
    for id in ids {
        if id.is_empty()
            || id.len() > 80
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(errors::invalid_batch_id());
        }
        if !seen.insert(id) {
            return Err(errors::ids_not_distinct(id));
        }
    }
    Ok(())
}

fn failure(id: String, e: ServiceError) -> BatchResultErrorEntry {
    BatchResultErrorEntry {
        id,
        sender_fault: e.sender_fault,
        code: e.code.into_owned(),
        message: Some(e.message),
    }
}

pub async fn send_message_batch(
    sqs: &Sqs,
    ctx: &RequestContext,
    input: SendMessageBatchRequest,
) -> Result<SendMessageBatchResult, ServiceError> {
    let q = sqs.queue(ctx, &input.queue_url, "sqs:SendMessage")?;
    check_batch(
        input.entries.iter().map(|e| e.id.as_str()),
        "SendMessageBatchRequestEntry",
    )?;
    let total: usize = input
        .entries
        .iter()
        .map(|e| {
            e.message_body.len()
                + e.message_attributes
                    .as_ref()
                    .map_or(0, |a| attribute_bytes(a.iter()))
        })
        .sum();
    if total > MAX_MESSAGE_BYTES as usize {
        return Err(errors::batch_too_long(MAX_MESSAGE_BYTES as usize, total));
    }
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    for e in input.entries {
        let draft = Draft {
            body: e.message_body,
            delay: e.delay_seconds,
            attrs: e.message_attributes,
            system: e.message_system_attributes,
            group_id: e.message_group_id,
            dedup_id: e.message_deduplication_id,
        };
        match prepare(sqs, &sender(ctx), &q, draft) {
            Ok(o) => ok.push((e.id, o)),
            Err(err) => failed.push(failure(e.id, err)),
        }
    }
    let (ids, out): (Vec<String>, Vec<Outgoing>) = ok.into_iter().unzip();
    let sent = if out.is_empty() {
        Vec::new()
    } else {
        enqueue(sqs, &q, out).await?
    };
    let successful = ids
        .into_iter()
        .zip(sent)
        .map(|(id, (s, seq))| SendMessageBatchResultEntry {
            id,
            message_id: s.message_id.clone(),
            md5_of_message_body: s.md5_of_body.clone(),
            md5_of_message_attributes: s.md5_of_attributes.clone(),
            md5_of_message_system_attributes: s.md5_of_system_attributes.clone(),
            sequence_number: q.fifo.then(|| fifo_sequence(seq)),
        })
        .collect();
    Ok(SendMessageBatchResult { successful, failed })
}

// ---- receive ------------------------------------------------------------------------------

fn check_range(name: &str, v: Option<i32>, lo: i32, hi: i32, reason: &str) -> Result<(), ServiceError> {
    match v {
        Some(x) if !(lo..=hi).contains(&x) => Err(errors::invalid_value(name, x, reason)),
        _ => Ok(()),
    }
}

/// Moves messages taken out of `from` into `to`: one journal append records them sent to
/// `to` (keeping their ids, bodies and sent times) and deleted from `from`. `dead_letter`
/// marks them with `from`'s ARN (a redrive); a move back clears that mark. If the journal
/// refuses, they go back where they were.
pub(crate) async fn move_messages(
    sqs: &Sqs,
    from: &Queue,
    to: &Queue,
    taken: Vec<(u64, Message)>,
    dead_letter: bool,
) -> Result<usize, ServiceError> {
    let mut taken = taken;
    if taken.is_empty() {
        return Ok(0);
    }
    let now = sqs.now();
    let source = from.key.arn();
    let filled = sqs
        .fill_bodies(from, taken.iter_mut().map(|(s, m)| (*s, m)))
        .await;
    let events: Result<Vec<Event>, ServiceError> = filled.and_then(|()| {
        taken
            .iter()
            .map(|(_, m)| {
                let mut sent = Sent::clone(content(m)?);
                sent.dead_letter_source = dead_letter.then(|| source.clone());
                Ok(Event::Sent {
                    queue: to.id,
                    visible_at: now,
                    sent: Box::new(sent),
                })
            })
            .collect()
    });
    let mut events = match events {
        Ok(events) => events,
        Err(e) => {
            from.messages.lock().unwrap().restore(taken);
            return Err(e);
        }
    };
    events.push(Event::Deleted {
        queue: from.id,
        seqs: taken.iter().map(|(s, _)| *s).collect(),
    });
    let first = match sqs.record(&events).await {
        Ok(first) => first,
        Err(e) => {
            from.messages.lock().unwrap().restore(taken);
            return Err(e);
        }
    };
    let n = taken.len();
    {
        let mut m = to.messages.lock().unwrap();
        for (i, e) in events.into_iter().enumerate() {
            if let Event::Sent { sent, visible_at, .. } = e {
                m.insert(first + i as u64, Arc::new(*sent), visible_at, now);
            }
        }
    }
    to.arrived.notify_waiters();
    Ok(n)
}

pub async fn receive_message(
    sqs: &Sqs,
    ctx: &RequestContext,
    input: ReceiveMessageRequest,
) -> Result<ReceiveMessageResult, ServiceError> {
    let q = sqs.queue(ctx, &input.queue_url, "sqs:ReceiveMessage")?;
    check_range(
        "MaxNumberOfMessages",
        input.max_number_of_messages,
        1,
        10,
        "Must be between 1 and 10, if provided.",
    )?;
    check_range(
        "VisibilityTimeout",
        input.visibility_timeout,
        0,
        MAX_VISIBILITY_SECS,
        "Must be between 0 and 43200, if provided.",
    )?;
    check_range(
        "WaitTimeSeconds",
        input.wait_time_seconds,
        0,
        20,
        "Must be >= 0 and <= 20, if provided.",
    )?;
    let max = input.max_number_of_messages.unwrap_or(1) as usize;
    let visibility = input
        .visibility_timeout
        .map_or_else(|| q.number("VisibilityTimeout"), i64::from)
        * 1000;
    let wait = input
        .wait_time_seconds
        .map_or_else(|| q.number("ReceiveMessageWaitTimeSeconds"), i64::from)
        * 1000;
    // With a redrive policy whose dead-letter queue exists, a message received
    // maxReceiveCount times moves there on the receive that would hand it out once more.
    let redrive = attributes::redrive(&q.record.read().unwrap().attributes)
        .and_then(|(arn, limit)| Some((sqs.queue_by_arn(&arn).filter(|d| d.id != q.id)?, limit)));
    // FIFO: a retried receive (same ReceiveRequestAttemptId within five minutes) gets the
    // same messages and receipt handles while they are still in flight, with their visibility
    // timeout reset, as SQS answers it.
    let attempt = input.receive_request_attempt_id.clone().filter(|_| q.fifo);
    if let Some(id) = &attempt {
        check_fifo_id("ReceiveRequestAttemptId", id)?;
        if let Some(got) = retried_receive(sqs, &q, id, visibility).await? {
            return answer(sqs, &q, got, &input).await;
        }
    }
    let deadline = sqs.now() + wait;
    let got = loop {
        let notified = q.arrived.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let now = sqs.now();
        let retention = q.retention_millis();
        let (taken, next_due, unheld) = {
            let mut m = q.messages.lock().unwrap();
            let limit = redrive.as_ref().map(|(_, limit)| *limit);
            let taken = m.receive(now, max, visibility, now - retention, limit, new_receipt);
            (taken, m.next_visible_at(), m.unheld_ahead())
        };
        if let Some(from) = unheld {
            sqs.read_ahead(&q, from);
        }
        if let Some((dlq, _)) = &redrive {
            move_messages(sqs, &q, dlq, taken.exhausted, true).await?;
        }
        let got = taken.got;
        if !got.is_empty() || now >= deadline || q.is_deleted() {
            break got;
        }
        // Sleep until a send wakes us, the next delayed or in-flight message becomes visible,
        // or the wait ends.
        let until = next_due.map_or(deadline, |d| d.min(deadline));
        let pause = Duration::from_millis((until - now).max(1) as u64);
        tokio::select! {
            _ = &mut notified => {}
            _ = tokio::time::sleep(pause) => {}
        }
    };
    if got.is_empty() {
        return Ok(ReceiveMessageResult { messages: None });
    }
    // The attempt goes into the journal with the receive, so a retry after a restart is
    // answered as one before it.
    let attempt = attempt.map(|id| ReceiveAttempt {
        id,
        until: sqs.now() + DEDUP_WINDOW_MILLIS,
    });
    let events: Vec<Event> = got
        .iter()
        .map(|r| Event::Received {
            queue: q.id,
            seq: r.seq,
            visible_at: r.message.visible_at,
            count: r.message.receive_count,
            first: r.message.first_receive_millis.unwrap_or(r.message.visible_at),
            receipt: r.message.receipt,
            attempt: attempt.clone(),
        })
        .collect();
    sqs.record(&events).await?;
    if let Some(a) = attempt {
        let now = sqs.now();
        let mut attempts = q.attempts.lock().unwrap();
        attempts.retain(|_, (until, _)| *until > now);
        attempts.insert(
            a.id,
            (a.until, got.iter().map(|r| (r.seq, r.message.receipt)).collect()),
        );
    }
    answer(sqs, &q, got, &input).await
}

/// The same messages again for a retried FIFO receive, if every one is still in flight with
/// the receipt that receive handed out.
async fn retried_receive(
    sqs: &Sqs,
    q: &Queue,
    id: &str,
    visibility: i64,
) -> Result<Option<Vec<Received>>, ServiceError> {
    let now = sqs.now();
    let Some(handed) = q
        .attempts
        .lock()
        .unwrap()
        .get(id)
        .filter(|(until, _)| *until > now)
        .map(|(_, h)| h.clone())
    else {
        return Ok(None);
    };
    let (events, got) = {
        let mut m = q.messages.lock().unwrap();
        let current = handed
            .iter()
            .all(|(seq, receipt)| m.holds(*seq, *receipt) && m.get(*seq).is_some_and(|x| x.visible_at > now));
        if !current {
            return Ok(None);
        }
        let mut events = Vec::new();
        let mut got = Vec::new();
        for (seq, _) in &handed {
            m.set_visible_at(*seq, now + visibility);
            events.push(Event::Visibility {
                queue: q.id,
                seq: *seq,
                visible_at: now + visibility,
            });
            if let Some(message) = m.get(*seq) {
                got.push(Received {
                    seq: *seq,
                    message: message.clone(),
                });
            }
        }
        (events, got)
    };
    if !events.is_empty() {
        sqs.record(&events).await?;
    }
    Ok(Some(got))
}

/// What a message carries: its content, which [`Sqs::fill_bodies`] has read back if memory
/// did not hold it.
fn content(m: &Message) -> Result<&Arc<Sent>, ServiceError> {
    m.sent
        .as_ref()
        .ok_or_else(|| ServiceError::internal("a message's content was not read back from the journal"))
}

/// ReceiveMessage's answer for the messages taken, their content read back from the journal
/// where memory did not hold it.
async fn answer(
    sqs: &Sqs,
    q: &Queue,
    mut got: Vec<Received>,
    input: &ReceiveMessageRequest,
) -> Result<ReceiveMessageResult, ServiceError> {
    sqs.fill_bodies(q, got.iter_mut().map(|r| (r.seq, &mut r.message)))
        .await?;
    let system: Vec<String> = input
        .attribute_names
        .iter()
        .flatten()
        .map(|n| n.as_str().to_owned())
        .chain(
            input
                .message_system_attribute_names
                .iter()
                .flatten()
                .map(|n| n.as_str().to_owned()),
        )
        .collect();
    let wanted_names = input.message_attribute_names.clone().unwrap_or_default();
    let messages = got
        .into_iter()
        .map(|r| render(q, r.seq, &r.message, &system, &wanted_names))
        .collect::<Result<_, _>>()?;
    Ok(ReceiveMessageResult {
        messages: Some(messages),
    })
}

/// A received message as ReceiveMessage answers it, with the system attributes and message
/// attributes the request asked for.
fn render(
    q: &Queue,
    seq: u64,
    m: &Message,
    system: &[String],
    wanted: &[String],
) -> Result<crate::api::Message, ServiceError> {
    let all = system.iter().any(|n| n == "All");
    let want = |n: &str| all || system.iter().any(|x| x == n);
    let s = content(m)?;
    let mut attrs = BTreeMap::new();
    if want("SenderId") {
        attrs.insert("SenderId".to_owned(), s.sender_id.clone());
    }
    if want("SentTimestamp") {
        attrs.insert("SentTimestamp".to_owned(), s.sent_millis.to_string());
    }
    if want("ApproximateReceiveCount") {
        attrs.insert("ApproximateReceiveCount".to_owned(), m.receive_count.to_string());
    }
    if want("ApproximateFirstReceiveTimestamp") {
        let first = m.first_receive_millis.unwrap_or_default();
        attrs.insert("ApproximateFirstReceiveTimestamp".to_owned(), first.to_string());
    }
    if want("AWSTraceHeader")
        && let Some(t) = &s.trace_header
    {
        attrs.insert("AWSTraceHeader".to_owned(), t.clone());
    }
    if want("DeadLetterQueueSourceArn")
        && let Some(src) = &s.dead_letter_source
    {
        attrs.insert("DeadLetterQueueSourceArn".to_owned(), src.clone());
    }
    if want("MessageGroupId")
        && let Some(g) = &s.group_id
    {
        attrs.insert("MessageGroupId".to_owned(), g.clone());
    }
    if q.fifo {
        if want("MessageDeduplicationId")
            && let Some(d) = &s.dedup_id
        {
            attrs.insert("MessageDeduplicationId".to_owned(), d.clone());
        }
        if want("SequenceNumber") {
            attrs.insert("SequenceNumber".to_owned(), fifo_sequence(seq));
        }
    }
    let chosen: Vec<(String, MessageAttributeValue)> = s
        .attributes
        .iter()
        .filter(|(name, _)| {
            wanted.iter().any(|w| {
                w == "All"
                    || w == ".*"
                    || w == name
                    || w.strip_suffix(".*")
                        .is_some_and(|p| name.starts_with(p) && name[p.len()..].starts_with('.'))
            })
        })
        .cloned()
        .collect();
    Ok(crate::api::Message {
        message_id: Some(s.message_id.clone()),
        receipt_handle: Some(receipt_handle(q.id, seq, m.receipt)),
        md5_of_body: Some(s.md5_of_body.clone()),
        body: Some(s.body.clone()),
        attributes: (!attrs.is_empty()).then_some(attrs),
        md5_of_message_attributes: md5_of_message_attributes(&chosen),
        message_attributes: (!chosen.is_empty()).then(|| chosen.into_iter().collect()),
    })
}

// ---- delete, visibility, purge ------------------------------------------------------------

/// Deletes the messages whose handles are current; stale handles (an older receive's) succeed
/// without deleting, as AWS documents.
async fn delete_handles(sqs: &Sqs, q: &Queue, handles: &[(u64, u64)]) -> Result<(), ServiceError> {
    let seqs: Vec<u64> = {
        let mut m = q.messages.lock().unwrap();
        let mut deleted = Vec::new();
        for &(seq, receipt) in handles {
            if m.holds(seq, receipt) && m.delete(seq) {
                deleted.push(seq);
            }
        }
        deleted
    };
    if !seqs.is_empty() {
        sqs.record(&[Event::Deleted { queue: q.id, seqs }]).await?;
    }
    Ok(())
}

pub async fn delete_message(
    sqs: &Sqs,
    ctx: &RequestContext,
    input: DeleteMessageRequest,
) -> Result<(), ServiceError> {
    let q = sqs.queue(ctx, &input.queue_url, "sqs:DeleteMessage")?;
    let handle = parse_receipt(&q, &input.receipt_handle)?;
    delete_handles(sqs, &q, &[handle]).await
}

pub async fn delete_message_batch(
    sqs: &Sqs,
    ctx: &RequestContext,
    input: DeleteMessageBatchRequest,
) -> Result<DeleteMessageBatchResult, ServiceError> {
    let q = sqs.queue(ctx, &input.queue_url, "sqs:DeleteMessage")?;
    check_batch(
        input.entries.iter().map(|e| e.id.as_str()),
        "DeleteMessageBatchRequestEntry",
    )?;
    let mut handles = Vec::new();
    let mut successful = Vec::new();
    let mut failed = Vec::new();
    for e in input.entries {
        match parse_receipt(&q, &e.receipt_handle) {
            Ok(h) => {
                handles.push(h);
                successful.push(DeleteMessageBatchResultEntry { id: e.id });
            }
            Err(err) => failed.push(failure(e.id, err)),
        }
    }
    delete_handles(sqs, &q, &handles).await?;
    Ok(DeleteMessageBatchResult { successful, failed })
}

/// Changes one message's visibility; the journal record is the caller's to write.
fn change_visibility(sqs: &Sqs, q: &Queue, handle: &str, timeout: i32) -> Result<Event, ServiceError> {
    if !(0..=MAX_VISIBILITY_SECS).contains(&timeout) {
        return Err(errors::invalid_value(
            "VisibilityTimeout",
            timeout,
            "Must be between 0 and 43200, if provided.",
        ));
    }
    let (seq, receipt) = parse_receipt(q, handle)?;
    let now = sqs.now();
    let visible_at = now + i64::from(timeout) * 1000;
    if !q
        .messages
        .lock()
        .unwrap()
        .change_visibility(seq, receipt, now, visible_at)
    {
        return Err(errors::message_not_inflight());
    }
    Ok(Event::Visibility {
        queue: q.id,
        seq,
        visible_at,
    })
}

pub async fn change_message_visibility(
    sqs: &Sqs,
    ctx: &RequestContext,
    input: ChangeMessageVisibilityRequest,
) -> Result<(), ServiceError> {
    let q = sqs.queue(ctx, &input.queue_url, "sqs:ChangeMessageVisibility")?;
    let event = change_visibility(sqs, &q, &input.receipt_handle, input.visibility_timeout)?;
    sqs.record(&[event]).await?;
    // A message made visible now may be what a long poll waits for.
    q.arrived.notify_waiters();
    Ok(())
}

pub async fn change_message_visibility_batch(
    sqs: &Sqs,
    ctx: &RequestContext,
    input: ChangeMessageVisibilityBatchRequest,
) -> Result<ChangeMessageVisibilityBatchResult, ServiceError> {
    let q = sqs.queue(ctx, &input.queue_url, "sqs:ChangeMessageVisibility")?;
    check_batch(
        input.entries.iter().map(|e| e.id.as_str()),
        "ChangeMessageVisibilityBatchRequestEntry",
    )?;
    let mut events = Vec::new();
    let mut successful = Vec::new();
    let mut failed = Vec::new();
    for e in input.entries {
        let timeout = e.visibility_timeout.unwrap_or(0);
        match change_visibility(sqs, &q, &e.receipt_handle, timeout) {
            Ok(ev) => {
                events.push(ev);
                successful.push(ChangeMessageVisibilityBatchResultEntry { id: e.id });
            }
            Err(err) => failed.push(failure(e.id, err)),
        }
    }
    if !events.is_empty() {
        sqs.record(&events).await?;
        q.arrived.notify_waiters();
    }
    Ok(ChangeMessageVisibilityBatchResult { successful, failed })
}

/// How often a queue may be purged.
const PURGE_INTERVAL_MILLIS: i64 = 60_000;

pub async fn purge_queue(
    sqs: &Sqs,
    ctx: &RequestContext,
    input: PurgeQueueRequest,
) -> Result<(), ServiceError> {
    let q = sqs.queue(ctx, &input.queue_url, "sqs:PurgeQueue")?;
    let now = sqs.now();
    {
        let mut last = q.last_purge.lock().unwrap();
        if last.is_some_and(|at| now - at < PURGE_INTERVAL_MILLIS) {
            return Err(errors::purge_in_progress(&q.key.name));
        }
        *last = Some(now);
    }
    let log = sqs.journal().map_err(errors::store)?;
    let below = log.next_offset();
    sqs.record(&[Event::Purged { queue: q.id, below }]).await?;
    q.messages.lock().unwrap().purge(below);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use lakebox_protocol::Blob;

    #[test]
    fn attribute_md5_matches_awss_algorithm() {
        // The value the AWS SDKs compute for {"a": String "b"} (length-prefixed name, type,
        // transport 1, value).
        let mut buf = Vec::new();
        for part in [&b"a"[..], b"String"] {
            buf.extend_from_slice(&(part.len() as u32).to_be_bytes());
            buf.extend_from_slice(part);
        }
        buf.push(1);
        buf.extend_from_slice(&1u32.to_be_bytes());
        buf.extend_from_slice(b"b");
        let attrs = vec![(
            "a".to_owned(),
            MessageAttributeValue {
                data_type: "String".into(),
                string_value: Some("b".into()),
                ..Default::default()
            },
        )];
        assert_eq!(md5_of_message_attributes(&attrs), Some(md5_hex(&buf)));
        let bin = vec![(
            "x".to_owned(),
            MessageAttributeValue {
                data_type: "Binary".into(),
                binary_value: Some(Blob(vec![1, 2])),
                ..Default::default()
            },
        )];
        assert!(md5_of_message_attributes(&bin).is_some());
        assert_eq!(md5_of_message_attributes(&[]), None);
    }

    #[test]
    fn bodies_numbers_and_batch_ids() {
        assert!(check_body("ok\n\t").is_ok());
        assert_eq!(check_body("\u{1}").unwrap_err().code, "InvalidMessageContents");
        assert_eq!(check_body("").unwrap_err().code, "MissingParameter");
        assert!(is_sqs_number("-12.5e3") && !is_sqs_number("abc") && !is_sqs_number(&"9".repeat(39)));
        assert!(check_batch(["a", "b"].into_iter(), "E").is_ok());
        assert_eq!(
            check_batch(["a", "a"].into_iter(), "E").unwrap_err().code,
            "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"
        );
        assert_eq!(
            check_batch(["a b"].into_iter(), "E").unwrap_err().code,
            "AWS.SimpleQueueService.InvalidBatchEntryId"
        );
        assert_eq!(
            check_batch([].into_iter(), "E").unwrap_err().code,
            "AWS.SimpleQueueService.EmptyBatchRequest"
        );
    }
}
