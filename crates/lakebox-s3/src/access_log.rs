//! Server access logging: a bucket whose logging status names a target bucket and prefix gets
//! one record per request, in S3's documented format (space-separated fields, in S3's order),
//! delivered in batches as objects `<TargetPrefix>YYYY-mm-DD-HH-MM-SS-<UNIQUE>` in the target
//! bucket, so the Athena table AWS documents for access logs reads them.
//!
//! Delivery is best effort, as S3's is: records wait in memory for the next delivery (every
//! `S3Settings::access_log_delivery_millis`, or sooner once many wait), those of the last
//! interval before the process stops are not delivered, and past a bound (delivery not keeping
//! up) new records are dropped rather than memory grown.

use std::sync::Arc;
use std::time::Duration;

use lakebox_protocol::Timestamp;
use lakebox_protocol::xml;

use crate::store::ObjectStore;

/// Where a bucket's access log goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    pub bucket: String,
    pub prefix: String,
}

impl Target {
    /// The target of a stored `BucketLoggingStatus`, if logging is enabled.
    pub fn of(doc: &[u8]) -> Option<Target> {
        let doc = xml::parse(doc).ok()?;
        let enabled = doc.child("LoggingEnabled")?;
        Some(Target {
            bucket: enabled.child_text("TargetBucket")?.trim().to_owned(),
            prefix: enabled.child_text("TargetPrefix").unwrap_or("").trim().to_owned(),
        })
    }
}

/// One request, as its record needs it.
pub struct Request<'a> {
    pub owner: &'a str,
    pub bucket: &'a str,
    pub received_millis: i64,
    pub remote_ip: Option<std::net::IpAddr>,
    /// The requester's account, `None` for an anonymous request.
    pub requester: Option<&'a str>,
    pub request_id: &'a str,
    pub operation: &'a str,
    pub key: Option<&'a str>,
    /// `GET /bucket/key?x HTTP/1.1`.
    pub request_line: String,
    pub status: u16,
    pub error_code: Option<&'a str>,
    pub bytes_sent: Option<u64>,
    pub object_size: Option<u64>,
    pub total_millis: u64,
    pub referer: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub version_id: Option<&'a str>,
    pub signature_version: Option<&'static str>,
    pub auth_type: Option<&'static str>,
    pub host: Option<&'a str>,
    pub region: &'a str,
}

fn field(v: Option<&str>) -> &str {
    match v {
        Some(s) if !s.is_empty() => s,
        _ => "-",
    }
}

fn quoted(v: Option<&str>) -> String {
    match v {
        Some(s) if !s.is_empty() => format!("\"{}\"", s.replace('"', "\\\"")),
        _ => "\"-\"".to_owned(),
    }
}

/// `[06/Feb/2019:00:00:38 +0000]`'s inside.
fn log_time(millis: i64) -> String {
    // HTTP date: `Wed, 06 Feb 2019 00:00:38 GMT`.
    let http = Timestamp::from_millis(millis).to_http_date();
    let parts: Vec<&str> = http.split(' ').collect();
    match parts.as_slice() {
        [_, day, month, year, time, _] => format!("{day}/{month}/{year}:{time} +0000"),
        _ => http,
    }
}

/// The record of one request, in S3's field order.
pub fn record(r: &Request<'_>) -> String {
    let number = |n: Option<u64>| n.filter(|n| *n > 0).map_or("-".to_owned(), |n| n.to_string());
    let requester = r.requester.map(crate::xml::canonical_id);
    let host_id = format!("lakebox/{}", r.request_id);
    [
        crate::xml::canonical_id(r.owner),
        r.bucket.to_owned(),
        format!("[{}]", log_time(r.received_millis)),
        r.remote_ip.map_or("-".to_owned(), |ip| ip.to_string()),
        field(requester.as_deref()).to_owned(),
        r.request_id.to_owned(),
        r.operation.to_owned(),
        field(r.key).to_owned(),
        quoted(Some(&r.request_line)),
        r.status.to_string(),
        field(r.error_code).to_owned(),
        number(r.bytes_sent),
        number(r.object_size),
        r.total_millis.to_string(),
        r.total_millis.to_string(),
        quoted(r.referer),
        quoted(r.user_agent),
        field(r.version_id).to_owned(),
        host_id,
        field(r.signature_version).to_owned(),
        "-".to_owned(), // cipher suite: Lakebox serves plain HTTP
        field(r.auth_type).to_owned(),
        field(r.host).to_owned(),
        "-".to_owned(), // TLS version
        "-".to_owned(), // access point ARN
        "-".to_owned(), // aclRequired: no ACL decided this request
        r.region.to_owned(),
    ]
    .join(" ")
}

/// Records waiting past which delivery starts before its interval is up, so memory stays
/// bounded however fast requests come.
const DELIVER_EARLY_AT: usize = 10_000;
/// Records waiting past which new ones are dropped (delivery cannot keep up).
const MAX_WAITING: usize = 200_000;

/// Queues a record for `target`.
pub fn queue(store: &ObjectStore, target: Target, line: String) {
    let mut waiting = store.access_log.lock().unwrap();
    if waiting.len() >= MAX_WAITING {
        return;
    }
    waiting.push((target, line));
    if waiting.len() == DELIVER_EARLY_AT {
        store.access_log_due.notify_one();
    }
}

/// Delivers what is queued: one object per target.
pub async fn deliver(store: &Arc<ObjectStore>) {
    let queued = std::mem::take(&mut *store.access_log.lock().unwrap());
    if queued.is_empty() {
        return;
    }
    let mut by_target: Vec<(Target, String)> = Vec::new();
    for (target, line) in queued {
        match by_target.iter_mut().find(|(t, _)| *t == target) {
            Some((_, text)) => {
                text.push_str(&line);
                text.push('\n');
            }
            None => by_target.push((target, format!("{line}\n"))),
        }
    }
    let lake = crate::lake::lake(store.clone());
    for (target, text) in by_target {
        let key = format!(
            "{}{}-{}",
            target.prefix,
            object_time(store.now_millis()),
            lakebox_core::ids::random_hex(16).to_ascii_uppercase()
        );
        let opts = crate::lake::PutOptions {
            content_type: Some("text/plain".into()),
            ..Default::default()
        };
        match lake.put(&target.bucket, &key, text.into(), opts).await {
            Ok(_) => {
                tracing::debug!(bucket = %target.bucket, key = %key, "delivered S3 access log")
            }
            Err(e) => {
                tracing::warn!(bucket = %target.bucket, error = %e.message, "cannot deliver an S3 access log; its records are dropped")
            }
        }
    }
}

/// `2019-02-06-00-00-38`.
fn object_time(millis: i64) -> String {
    let iso = Timestamp::from_millis(millis).to_iso8601(); // 2019-02-06T00:00:38.000Z
    let (date, time) = iso.split_once('T').unwrap_or((&iso, ""));
    format!("{date}-{}", time.get(..8).unwrap_or("00:00:00").replace(':', "-"))
}

/// Delivers queued records every `interval` until the store goes.
pub fn spawn_delivery(store: Arc<ObjectStore>, interval: Duration) -> tokio::task::JoinHandle<()> {
    let weak = Arc::downgrade(&store);
    let due = store.access_log_due.clone();
    drop(store);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = due.notified() => {}
            }
            let Some(store) = weak.upgrade() else { return };
            deliver(&store).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_s3_writes_them() {
        // 2019-02-06T00:00:38Z
        assert_eq!(log_time(1_549_411_238_000), "06/Feb/2019:00:00:38 +0000");
        assert_eq!(object_time(1_549_411_238_000), "2019-02-06-00-00-38");
    }

    #[tokio::test]
    async fn waiting_records_are_bounded_and_wake_delivery_early() {
        let dir = tempfile::tempdir().unwrap();
        let store = ObjectStore::open(
            dir.path(),
            Arc::new(lakebox_core::clock::SystemClock),
            crate::store::S3Settings::default(),
        )
        .unwrap();
        let target = Target {
            bucket: "logs".into(),
            prefix: String::new(),
        };
        let woken = store.access_log_due.clone();
        for i in 0..MAX_WAITING + 5 {
            queue(&store, target.clone(), i.to_string());
        }
        assert_eq!(store.access_log.lock().unwrap().len(), MAX_WAITING);
        // The early wake-up was stored for the delivery task.
        tokio::time::timeout(Duration::from_secs(1), woken.notified())
            .await
            .unwrap();
    }

    #[test]
    fn the_target_is_read_from_the_logging_status() {
        let on = b"<BucketLoggingStatus><LoggingEnabled><TargetBucket>logs</TargetBucket><TargetPrefix>a/</TargetPrefix></LoggingEnabled></BucketLoggingStatus>";
        assert_eq!(
            Target::of(on),
            Some(Target {
                bucket: "logs".into(),
                prefix: "a/".into()
            })
        );
        assert_eq!(Target::of(b"<BucketLoggingStatus/>"), None);
    }
}
