//! Lifecycle rules, applied: a background sweeper owned by the S3 service expires objects
//! (days or date; prefix, tag and size filters), removes expired delete markers, transitions
//! storage classes, expires noncurrent versions and aborts incomplete multipart uploads.
//!
//! A "day" is [`S3Settings::day_millis`](crate::store::S3Settings) (a real day unless a test
//! shortens it). Every change the sweeper makes is guarded by the version it looked at, so an
//! object rewritten meanwhile is left alone.

use std::sync::Arc;
use std::time::Duration;

use lakebox_core::ServiceError;
use lakebox_protocol::Timestamp;
use lakebox_protocol::xml::{self, XmlElement};

use crate::errors;
use crate::errors::malformed_document as malformed;
use crate::store::{ObjectRecord, ObjectStore};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub prefix: String,
    pub tags: Vec<(String, String)>,
    pub size_greater_than: Option<u64>,
    pub size_less_than: Option<u64>,
}

impl Filter {
    fn matches(&self, rec: &ObjectRecord) -> bool {
        rec.key.starts_with(&self.prefix)
            && self.tags.iter().all(|t| rec.tags.contains(t))
            && self.size_greater_than.is_none_or(|n| rec.size > n)
            && self.size_less_than.is_none_or(|n| rec.size < n)
    }
}

/// When an action is due: a number of days after an event, or a date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    Days(i64),
    Date(i64),
}

impl Due {
    fn reached(self, since_millis: i64, now: i64, day_millis: i64) -> bool {
        match self {
            Due::Days(d) => now >= since_millis + d * day_millis,
            Due::Date(at) => now >= at,
        }
    }
}

/// S3's `x-amz-expiration` value for `rec` under `rules` (enabled ones), if one of them expires
/// it: `expiry-date="<HTTP date>", rule-id="<id>"`. A rule of Days counts from the object's
/// creation and rounds up to the next midnight UTC, as S3 documents it (Lakebox's sweeper may
/// run on a faster test day, `--s3-day-seconds`; the header keeps S3's dates).
pub fn expiration(rules: &[Rule], rec: &ObjectRecord) -> Option<String> {
    const DAY: i64 = 86_400_000;
    if rec.delete_marker {
        return None;
    }
    rules
        .iter()
        .filter(|r| r.enabled && r.filter.matches(rec))
        .find_map(|r| {
            let at = match r.expiration? {
                Due::Days(d) => (rec.last_modified_millis + d * DAY + DAY - 1).div_euclid(DAY) * DAY,
                Due::Date(at) => at,
            };
            Some(format!(
                "expiry-date=\"{}\", rule-id=\"{}\"",
                Timestamp::from_millis(at).to_http_date(),
                r.id
            ))
        })
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rule {
    pub id: String,
    pub enabled: bool,
    pub filter: Filter,
    pub expiration: Option<Due>,
    pub expired_object_delete_marker: bool,
    pub transitions: Vec<(Due, String)>,
    pub noncurrent_expiration_days: Option<i64>,
    pub newer_noncurrent_versions: usize,
    pub noncurrent_transitions: Vec<(i64, String)>,
    pub abort_incomplete_upload_days: Option<i64>,
}

fn positive_days(el: &XmlElement, name: &str) -> Result<Option<i64>, ServiceError> {
    match el.child_text(name) {
        None => Ok(None),
        Some(v) => match v.trim().parse::<i64>() {
            Ok(d) if d > 0 => Ok(Some(d)),
            _ => Err(errors::invalid_argument(
                format!("'{name}' for a lifecycle rule must be a positive integer"),
                name,
                v,
            )),
        },
    }
}

fn due(el: &XmlElement) -> Result<Option<Due>, ServiceError> {
    let days = positive_days(el, "Days")?;
    let date = match el.child_text("Date") {
        None => None,
        Some(v) => {
            let t = Timestamp::parse_iso8601(v.trim())
                .ok_or_else(|| errors::invalid_argument("Invalid date in lifecycle rule", "Date", v))?;
            if t.as_millis() % 86_400_000 != 0 {
                return Err(errors::invalid_argument(
                    "'Date' must be at midnight GMT",
                    "Date",
                    v,
                ));
            }
            Some(t.as_millis())
        }
    };
    match (days, date) {
        (Some(_), Some(_)) => Err(malformed()),
        (Some(d), None) => Ok(Some(Due::Days(d))),
        (None, Some(t)) => Ok(Some(Due::Date(t))),
        (None, None) => Ok(None),
    }
}

fn tag(el: &XmlElement) -> Result<(String, String), ServiceError> {
    Ok((
        el.child_text("Key").ok_or_else(malformed)?.to_owned(),
        el.child_text("Value").unwrap_or("").to_owned(),
    ))
}

fn size(el: &XmlElement, name: &str) -> Result<Option<u64>, ServiceError> {
    el.child_text(name)
        .map(|v| v.trim().parse::<u64>().map_err(|_| malformed()))
        .transpose()
}

fn filter(rule: &XmlElement) -> Result<Filter, ServiceError> {
    let mut f = Filter::default();
    // The legacy top-level <Prefix> and the <Filter> element.
    if let Some(p) = rule.child_text("Prefix") {
        f.prefix = p.to_owned();
    }
    if let Some(fe) = rule.child("Filter") {
        let scope = fe.child("And").unwrap_or(fe);
        if let Some(p) = scope.child_text("Prefix") {
            f.prefix = p.to_owned();
        }
        for t in scope.children_named("Tag") {
            f.tags.push(tag(t)?);
        }
        f.size_greater_than = size(scope, "ObjectSizeGreaterThan")?;
        f.size_less_than = size(scope, "ObjectSizeLessThan")?;
    }
    Ok(f)
}

/// The document to store for a valid LifecycleConfiguration: as sent, except that a rule
/// without an `ID` gets one, as S3 gives it (a random identifier, base64 of a UUID).
pub fn with_rule_ids(body: &[u8]) -> Result<Vec<u8>, ServiceError> {
    use base64::Engine;
    let mut doc = xml::parse(body).map_err(|_| malformed())?;
    let mut changed = false;
    for r in doc.children.iter_mut().filter(|c| c.name == "Rule") {
        if r.child_text("ID").is_none_or(str::is_empty) {
            r.children.retain(|c| c.name != "ID");
            let h = lakebox_core::ids::random_hex(32);
            let uuid = format!(
                "{}-{}-{}-{}-{}",
                &h[..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..]
            );
            let id = base64::engine::general_purpose::STANDARD.encode(uuid);
            r.children.insert(
                0,
                xml::XmlElement {
                    name: "ID".into(),
                    text: id,
                    ..Default::default()
                },
            );
            changed = true;
        }
    }
    if !changed {
        return Ok(body.to_vec());
    }
    let mut out = String::from(xml::XML_DECLARATION);
    doc.attributes = vec![("xmlns".into(), crate::xml::NS.into())];
    doc.write(&mut out);
    Ok(out.into_bytes())
}

/// Parses and validates a LifecycleConfiguration document.
pub fn parse(body: &[u8]) -> Result<Vec<Rule>, ServiceError> {
    let doc = xml::parse(body).map_err(|_| malformed())?;
    if doc.name != "LifecycleConfiguration" {
        return Err(malformed());
    }
    let mut rules: Vec<Rule> = Vec::new();
    for r in doc.children_named("Rule") {
        let id = r.child_text("ID").unwrap_or("").to_owned();
        if id.len() > 255 {
            return Err(errors::invalid_argument(
                "ID length should not exceed allowed limit of 255",
                "ID",
                &id,
            ));
        }
        if !id.is_empty() && rules.iter().any(|other| other.id == id) {
            return Err(errors::invalid_argument(
                "Rule ID must be unique. Found same ID for more than one rule",
                "ID",
                &id,
            ));
        }
        let enabled = match r.child_text("Status").map(str::trim) {
            Some("Enabled") => true,
            Some("Disabled") => false,
            _ => return Err(malformed()),
        };
        let mut rule = Rule {
            id,
            enabled,
            filter: filter(r)?,
            ..Default::default()
        };
        if let Some(e) = r.child("Expiration") {
            rule.expiration = due(e)?;
            rule.expired_object_delete_marker = e
                .child_text("ExpiredObjectDeleteMarker")
                .is_some_and(|v| v.trim() == "true");
        }
        for t in r.children_named("Transition") {
            let class = t.child_text("StorageClass").ok_or_else(malformed)?.to_owned();
            rule.transitions.push((due(t)?.ok_or_else(malformed)?, class));
        }
        if let Some(n) = r.child("NoncurrentVersionExpiration") {
            rule.noncurrent_expiration_days = positive_days(n, "NoncurrentDays")?;
            rule.newer_noncurrent_versions = size(n, "NewerNoncurrentVersions")?.unwrap_or(0) as usize;
        }
        for t in r.children_named("NoncurrentVersionTransition") {
            let days = positive_days(t, "NoncurrentDays")?.ok_or_else(malformed)?;
            rule.noncurrent_transitions.push((
                days,
                t.child_text("StorageClass").ok_or_else(malformed)?.to_owned(),
            ));
        }
        if let Some(a) = r.child("AbortIncompleteMultipartUpload") {
            rule.abort_incomplete_upload_days = positive_days(a, "DaysAfterInitiation")?;
        }
        let has_action = rule.expiration.is_some()
            || rule.expired_object_delete_marker
            || !rule.transitions.is_empty()
            || rule.noncurrent_expiration_days.is_some()
            || !rule.noncurrent_transitions.is_empty()
            || rule.abort_incomplete_upload_days.is_some();
        if !has_action {
            return Err(errors::invalid_request(
                "At least one action needs to be specified in a rule",
            ));
        }
        rules.push(rule);
    }
    if rules.is_empty() || rules.len() > 1000 {
        return Err(malformed());
    }
    Ok(rules)
}

/// How often the sweeper looks: an eighth of a day, between 100 ms and one minute.
pub fn sweep_interval(day_millis: i64) -> Duration {
    Duration::from_millis((day_millis / 8).clamp(100, 60_000) as u64)
}

/// Runs the sweeper until the store is dropped by everyone else.
pub fn spawn_sweeper(store: Arc<ObjectStore>) -> tokio::task::JoinHandle<()> {
    let weak = Arc::downgrade(&store);
    let interval = sweep_interval(store.settings().day_millis);
    drop(store);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(interval).await;
            let Some(store) = weak.upgrade() else { return };
            if let Err(e) = sweep(&store).await {
                tracing::warn!(error = %e, "lifecycle sweep failed; will retry");
            }
        }
    })
}

/// One pass over every bucket with lifecycle rules.
pub async fn sweep(store: &ObjectStore) -> Result<(), ServiceError> {
    for bucket in store.all_buckets()? {
        let Some(doc) = store.bucket_config(&bucket.name, "lifecycle")? else {
            continue;
        };
        let rules: Vec<Rule> = match parse(&doc) {
            Ok(r) => r.into_iter().filter(|r| r.enabled).collect(),
            Err(_) => continue,
        };
        if !rules.is_empty() {
            sweep_bucket(store, &bucket.name, &rules).await?;
        }
    }
    Ok(())
}

async fn sweep_bucket(store: &ObjectStore, bucket: &str, rules: &[Rule]) -> Result<(), ServiceError> {
    let day = store.settings().day_millis;
    let mut after: Option<Vec<u8>> = None;
    loop {
        let batch = store.list_objects(bucket, "", after.as_deref(), 500)?;
        let Some(last) = batch.last() else { break };
        after = Some(last.key.as_bytes().to_vec());
        for current in batch {
            let now = store.now_millis();
            let noncurrent = store.noncurrent_versions(bucket, &current.key)?;
            for rule in rules
                .iter()
                .filter(|r| r.filter.matches(&current) || current.delete_marker)
            {
                if current.delete_marker {
                    if rule.expired_object_delete_marker
                        && noncurrent.is_empty()
                        && current.key.starts_with(&rule.filter.prefix)
                    {
                        let vid = crate::versioning::reported_id(&current).to_owned();
                        store
                            .delete_object_guarded(bucket, &current.key, Some(&vid), None)
                            .await?;
                    }
                    continue;
                }
                if let Some(due) = rule.expiration
                    && due.reached(current.last_modified_millis, now, day)
                {
                    let outcome = store
                        .delete_object_guarded(bucket, &current.key, None, Some(current.version_seq))
                        .await?;
                    let name = if outcome.delete_marker {
                        "LifecycleExpiration:DeleteMarkerCreated"
                    } else {
                        "LifecycleExpiration:Delete"
                    };
                    // A write that raced the sweep keeps the object: nothing expired.
                    if !outcome.skipped {
                        expiration_event(store, bucket, &current.key, name, outcome.version_id.as_deref())
                            .await?;
                    }
                    break;
                }
                let due_class = rule
                    .transitions
                    .iter()
                    .filter(|(d, _)| d.reached(current.last_modified_millis, now, day))
                    .max_by_key(|(d, _)| match d {
                        Due::Days(n) => *n,
                        Due::Date(t) => *t / day.max(1),
                    })
                    .map(|(_, c)| c.clone());
                if let Some(class) = due_class
                    && class != current.storage_class
                {
                    let seq = current.version_seq;
                    let _ = store
                        .update_object_guarded(bucket, &current.key, Some(seq), move |r| {
                            r.storage_class = class
                        })
                        .await;
                }
            }
            // Noncurrent versions: each became noncurrent when the next newer one was written.
            let matching: Vec<&Rule> = rules
                .iter()
                .filter(|r| current.key.starts_with(&r.filter.prefix))
                .collect();
            let mut newer_modified = current.last_modified_millis;
            for (i, v) in noncurrent.iter().enumerate() {
                let since = newer_modified;
                newer_modified = v.last_modified_millis;
                let vid = crate::versioning::reported_id(v).to_owned();
                let mut expired = false;
                for rule in &matching {
                    // A version under Object Lock outlives any rule, as in S3.
                    if let Some(days) = rule.noncurrent_expiration_days
                        && i >= rule.newer_noncurrent_versions
                        && Due::Days(days).reached(since, now, day)
                        && !crate::object_lock::protects(v, now)
                    {
                        store
                            .delete_object_guarded(bucket, &v.key, Some(&vid), None)
                            .await?;
                        expiration_event(store, bucket, &v.key, "LifecycleExpiration:Delete", Some(&vid))
                            .await?;
                        expired = true;
                        break;
                    }
                }
                if expired || v.delete_marker {
                    continue;
                }
                // NoncurrentVersionTransition: the latest due transition of any matching rule.
                let class = matching
                    .iter()
                    .flat_map(|r| r.noncurrent_transitions.iter())
                    .filter(|(days, _)| Due::Days(*days).reached(since, now, day))
                    .max_by_key(|(days, _)| *days)
                    .map(|(_, c)| c.clone());
                if let Some(class) = class
                    && class != v.storage_class
                {
                    store
                        .update_noncurrent(bucket, &v.key, &vid, move |r| r.storage_class = class)
                        .await?;
                }
            }
        }
    }
    // Incomplete multipart uploads.
    for upload in store.list_uploads(bucket)? {
        let now = store.now_millis();
        let due = rules.iter().any(|r| {
            upload.key.starts_with(&r.filter.prefix)
                && r.abort_incomplete_upload_days
                    .is_some_and(|d| Due::Days(d).reached(upload.initiated_millis, now, day))
        });
        if due {
            match store.abort_upload(bucket, &upload.upload_id).await {
                Ok(()) => {}
                Err(e) if e.code == "NoSuchUpload" => {} // completed or aborted meanwhile
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// The event an expiration raises (`LifecycleExpiration:*`), for buckets that ask for it.
async fn expiration_event(
    store: &ObjectStore,
    bucket: &str,
    key: &str,
    name: &'static str,
    version_id: Option<&str>,
) -> Result<(), ServiceError> {
    let id = lakebox_core::ids::request_id();
    let origin = crate::notify::Origin::internal(&id, "s3.amazonaws.com");
    crate::notify::object_event(
        store,
        bucket,
        key,
        crate::notify::Change::Removed(name, version_id),
        &origin,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rules_with_every_filter_form() {
        let doc = br#"<LifecycleConfiguration>
            <Rule><ID>a</ID><Status>Enabled</Status><Filter><Prefix>tmp/</Prefix></Filter><Expiration><Days>7</Days></Expiration></Rule>
            <Rule><ID>b</ID><Status>Disabled</Status><Prefix>old/</Prefix><Transition><Days>30</Days><StorageClass>GLACIER</StorageClass></Transition></Rule>
            <Rule><ID>c</ID><Status>Enabled</Status><Filter><And><Prefix>x/</Prefix><Tag><Key>k</Key><Value>v</Value></Tag><ObjectSizeGreaterThan>10</ObjectSizeGreaterThan></And></Filter>
              <NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays><NewerNoncurrentVersions>2</NewerNoncurrentVersions></NoncurrentVersionExpiration>
              <AbortIncompleteMultipartUpload><DaysAfterInitiation>3</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>
            <Rule><ID>d</ID><Status>Enabled</Status><Filter/><Expiration><Date>2030-01-01T00:00:00.000Z</Date></Expiration></Rule>
        </LifecycleConfiguration>"#;
        let rules = parse(doc).unwrap();
        assert_eq!(rules.len(), 4);
        assert_eq!(rules[0].expiration, Some(Due::Days(7)));
        assert_eq!(rules[0].filter.prefix, "tmp/");
        assert!(!rules[1].enabled);
        assert_eq!(rules[1].filter.prefix, "old/");
        assert_eq!(rules[2].filter.tags, vec![("k".into(), "v".into())]);
        assert_eq!(rules[2].filter.size_greater_than, Some(10));
        assert_eq!(rules[2].newer_noncurrent_versions, 2);
        assert_eq!(rules[2].abort_incomplete_upload_days, Some(3));
        assert!(matches!(rules[3].expiration, Some(Due::Date(_))));
    }

    #[test]
    fn rejects_invalid_rules() {
        for bad in [
            &b"<LifecycleConfiguration></LifecycleConfiguration>"[..],
            b"<LifecycleConfiguration><Rule><Status>Enabled</Status></Rule></LifecycleConfiguration>",
            b"<LifecycleConfiguration><Rule><Status>On</Status><Expiration><Days>1</Days></Expiration></Rule></LifecycleConfiguration>",
            b"<LifecycleConfiguration><Rule><Status>Enabled</Status><Expiration><Days>0</Days></Expiration></Rule></LifecycleConfiguration>",
            b"<LifecycleConfiguration><Rule><Status>Enabled</Status><Expiration><Date>2030-01-01T12:00:00Z</Date></Expiration></Rule></LifecycleConfiguration>",
        ] {
            assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn due_times() {
        assert!(Due::Days(2).reached(0, 200, 100));
        assert!(!Due::Days(2).reached(0, 199, 100));
        assert!(Due::Date(50).reached(0, 50, 100));
        assert_eq!(sweep_interval(86_400_000), Duration::from_secs(60));
        assert_eq!(sweep_interval(400), Duration::from_millis(100));
    }
}
