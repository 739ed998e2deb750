//! Event notifications: the bucket's notification configuration applied. A write or delete
//! that matches a rule (event name, key prefix and suffix) puts AWS's event JSON for that rule's
//! target into an outbox in the metadata store before the request is answered; a background
//! task hands outbox events to the target's service (`lakebox_service::events`) and removes each
//! once accepted. So every acknowledged write is notified at least once, also across a crash.

use std::sync::Arc;
use std::time::Duration;

use lakebox_core::ServiceError;
use lakebox_protocol::xml;
use lakebox_service::events::{DeliveryError, Event, EventSink};
use serde_json::json;

use crate::store::{ObjectRecord, ObjectStore};
use crate::xml::iso;

/// One destination of a notification configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub id: String,
    /// The queue, topic or function ARN.
    pub target: String,
    /// As configured: `s3:ObjectCreated:*`, `s3:ObjectRemoved:Delete`, …
    pub events: Vec<String>,
    pub prefix: String,
    pub suffix: String,
}

impl Rule {
    /// Whether an event `name` (`ObjectCreated:Put`) on `key` is this rule's.
    fn matches(&self, name: &str, key: &str) -> bool {
        key.starts_with(&self.prefix)
            && key.ends_with(&self.suffix)
            && self.events.iter().any(|e| {
                let e = e.strip_prefix("s3:").unwrap_or(e);
                e == name || e.strip_suffix('*').is_some_and(|family| name.starts_with(family))
            })
    }
}

/// The rules of a stored NotificationConfiguration document (already validated when stored).
pub fn rules(doc: &[u8]) -> Vec<Rule> {
    let Ok(root) = xml::parse(doc) else {
        return Vec::new();
    };
    let kinds = [
        ("QueueConfiguration", "Queue"),
        ("TopicConfiguration", "Topic"),
        ("CloudFunctionConfiguration", "CloudFunction"),
    ];
    let mut out = Vec::new();
    for (element, target) in kinds {
        for c in root.children_named(element) {
            let Some(arn) = c.child_text(target) else { continue };
            let mut rule = Rule {
                id: c.child_text("Id").unwrap_or_default().to_owned(),
                target: arn.trim().to_owned(),
                events: c
                    .children_named("Event")
                    .map(|e| e.text.trim().to_owned())
                    .collect(),
                prefix: String::new(),
                suffix: String::new(),
            };
            let filters = c.child("Filter").and_then(|f| f.child("S3Key"));
            for f in filters.into_iter().flat_map(|k| k.children_named("FilterRule")) {
                let value = f.child_text("Value").unwrap_or_default().to_owned();
                match f.child_text("Name").map(str::to_ascii_lowercase).as_deref() {
                    Some("prefix") => rule.prefix = value,
                    Some("suffix") => rule.suffix = value,
                    _ => {}
                }
            }
            if rule.id.is_empty() {
                rule.id = format!("{element}-{}", out.len() + 1);
            }
            out.push(rule);
        }
    }
    out
}

/// A key as S3's events spell it: URL-encoded, a space as `+`, `/` kept.
pub fn event_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' | b'/' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Who made the change, as the event reports it.
pub struct Origin<'a> {
    pub request_id: &'a str,
    pub principal: &'a str,
    pub source_ip: String,
    /// The request's region; `None` for Lakebox's own changes, which report the bucket's.
    pub region: Option<&'a str>,
}

impl<'a> Origin<'a> {
    /// The request's caller and address (`Origin::of(&req.ctx, req.remote_ip)`).
    pub fn of(ctx: &'a lakebox_core::RequestContext, remote_ip: Option<std::net::IpAddr>) -> Self {
        Origin {
            request_id: &ctx.request_id,
            principal: ctx
                .principal
                .as_ref()
                .map_or(ctx.account_id.as_str(), |p| p.access_key_id.as_str()),
            source_ip: remote_ip.map_or_else(|| "127.0.0.1".to_owned(), |ip| ip.to_string()),
            region: Some(&ctx.region),
        }
    }

    /// A change Lakebox makes itself: another service's write (`AWS:lakebox`), a lifecycle
    /// expiration (`s3.amazonaws.com`, as S3 reports its own).
    pub fn internal(request_id: &'a str, principal: &'a str) -> Self {
        Origin {
            request_id,
            principal,
            source_ip: "127.0.0.1".to_owned(),
            region: None,
        }
    }
}

/// What happened to the object.
pub enum Change<'a> {
    /// `ObjectCreated:Put`, `:Copy`, `:CompleteMultipartUpload`, …
    Created(&'static str, &'a ObjectRecord),
    /// `ObjectRemoved:Delete` or `:DeleteMarkerCreated` (also `LifecycleExpiration:…`), with
    /// the version the delete made or removed.
    Removed(&'static str, Option<&'a str>),
}

/// Queues the events `change` of `key` raises in `bucket`, durably, before the change is
/// answered. Nothing happens when no sink is plugged in or no rule matches.
pub async fn object_event(
    store: &ObjectStore,
    bucket: &str,
    key: &str,
    change: Change<'_>,
    origin: &Origin<'_>,
) -> Result<(), ServiceError> {
    if store.events.get().is_none() {
        return Ok(());
    }
    let consulted = store.consulted(bucket);
    let name = match &change {
        Change::Created(n, _) | Change::Removed(n, _) => *n,
    };
    let matching: Vec<&Rule> = consulted.notify.iter().filter(|r| r.matches(name, key)).collect();
    if matching.is_empty() {
        return Ok(());
    }
    let now = store.now_millis();
    let sequencer = format!(
        "{:016X}",
        ((now as u64) << 16) | (store.event_seq.load(std::sync::atomic::Ordering::Relaxed) & 0xffff)
    );
    let mut object = json!({"key": event_key(key), "sequencer": sequencer});
    match &change {
        Change::Created(_, rec) => {
            object["size"] = json!(rec.size);
            object["eTag"] = json!(rec.etag);
            if let Some(v) = &rec.version_id {
                object["versionId"] = json!(v);
            }
        }
        Change::Removed(_, Some(v)) => object["versionId"] = json!(v),
        Change::Removed(_, None) => {}
    }
    let owner = consulted.owner.clone().unwrap_or_default();
    let region = match origin.region {
        Some(r) => r.to_owned(),
        None => store
            .bucket(bucket)
            .ok()
            .flatten()
            .map_or_else(|| lakebox_core::context::DEFAULT_REGION.to_owned(), |b| b.region),
    };
    let events = matching
        .into_iter()
        .map(|rule| {
            let record = json!({
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": region,
                "eventTime": iso(now),
                "eventName": name,
                "userIdentity": {"principalId": origin.principal},
                "requestParameters": {"sourceIPAddress": origin.source_ip},
                "responseElements": {
                    "x-amz-request-id": lakebox_core::ids::s3_request_id(origin.request_id),
                    "x-amz-id-2": origin.request_id,
                },
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": rule.id,
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": owner},
                        "arn": format!("arn:aws:s3:::{bucket}"),
                    },
                    "object": object,
                },
            });
            (rule.target.clone(), json!({"Records": [record]}).to_string())
        })
        .collect();
    store.queue_events(events).await
}

/// The `s3:TestEvent` S3 sends to each destination (once, however many rules name it) when a
/// configuration is stored; `Err`
/// names a destination that does not exist or refuses it (S3 then refuses the configuration).
pub async fn test_destinations(
    store: &ObjectStore,
    bucket: &str,
    doc: &[u8],
    request_id: &str,
) -> Result<(), String> {
    let Some(sink) = store.events.get().cloned() else {
        return Ok(());
    };
    let mut targets: Vec<String> = rules(doc).into_iter().map(|r| r.target).collect();
    targets.sort();
    targets.dedup();
    for target in targets {
        let message = json!({
            "Service": "Amazon S3",
            "Event": "s3:TestEvent",
            "Time": iso(store.now_millis()),
            "Bucket": bucket,
            "RequestId": lakebox_core::ids::s3_request_id(request_id),
            "HostId": request_id,
        })
        .to_string();
        let probe = Event {
            probe: true,
            ..s3_event(message)
        };
        if let Err(e) = sink.deliver(target.clone(), probe).await {
            tracing::debug!(target_arn = %target, error = %e, "notification destination refused the test event");
            return Err(target);
        }
    }
    Ok(())
}

/// S3's principal, as queues report the sender of its notifications.
const S3_SENDER: &str = "AIDAJDPLRKLG7UEXAMPLE";

/// A notification as its target receives it; on SNS topics with S3's subject line.
fn s3_event(message: String) -> Event {
    Event {
        subject: Some("Amazon S3 Notification".into()),
        ..Event::text(S3_SENDER, message)
    }
}

/// Hands outbox events to their targets until the server stops.
pub fn spawn_delivery(store: Arc<ObjectStore>, sink: Arc<dyn EventSink>) -> tokio::task::JoinHandle<()> {
    let _ = store.events.set(sink.clone());
    tokio::spawn(async move {
        loop {
            let wake = store.events_due.clone();
            let notified = wake.notified();
            let retry = match deliver_pending(&store, &sink).await {
                Ok(true) => continue,
                Ok(false) => Duration::from_secs(60),
                Err(()) => Duration::from_secs(1),
            };
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep(retry) => {}
            }
        }
    })
}

/// Delivers a page of the outbox; `Ok(true)` when there may be more, `Err` when a target
/// failed in a way that may pass (retried after a pause).
async fn deliver_pending(store: &ObjectStore, sink: &Arc<dyn EventSink>) -> Result<bool, ()> {
    let Ok(page) = store.pending_events(256) else {
        return Err(());
    };
    let full = page.len() == 256;
    let mut failed = false;
    for (key, target, message) in page {
        match sink.deliver(target.clone(), s3_event(message)).await {
            Ok(()) => {}
            Err(DeliveryError::Failed(e)) => {
                tracing::debug!(target_arn = %target, error = %e, "event delivery failed; will retry");
                failed = true;
                continue;
            }
            // A target that is gone or refuses it never will take it: AWS drops such events.
            Err(e) => tracing::warn!(target_arn = %target, error = %e, "dropping an S3 event notification"),
        }
        if store.drop_event(key).await.is_err() {
            return Err(());
        }
    }
    if failed { Err(()) } else { Ok(full) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_read_targets_events_and_filters() {
        let doc = br#"<NotificationConfiguration><QueueConfiguration><Id>csv</Id><Queue>arn:aws:sqs:us-east-1:000000000000:q</Queue><Event>s3:ObjectCreated:*</Event><Filter><S3Key><FilterRule><Name>Prefix</Name><Value>in/</Value></FilterRule><FilterRule><Name>suffix</Name><Value>.csv</Value></FilterRule></S3Key></Filter></QueueConfiguration></NotificationConfiguration>"#;
        let r = rules(doc);
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].prefix.as_str(), r[0].suffix.as_str()), ("in/", ".csv"));
        assert!(r[0].matches("ObjectCreated:Put", "in/a.csv"));
        assert!(r[0].matches("ObjectCreated:CompleteMultipartUpload", "in/b.csv"));
        assert!(!r[0].matches("ObjectCreated:Put", "in/a.json"));
        assert!(!r[0].matches("ObjectRemoved:Delete", "in/a.csv"));
        assert_eq!(
            event_key("dt=2024-01-01/my file+x.csv"),
            "dt%3D2024-01-01/my+file%2Bx.csv"
        );
    }
}
