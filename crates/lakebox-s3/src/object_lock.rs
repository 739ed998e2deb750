//! S3 Object Lock: write-once-read-many protection of object versions.
//!
//! A bucket created with `x-amz-bucket-object-lock-enabled` (or given a lock configuration
//! while versioned) keeps each version's retention (`GOVERNANCE` or `COMPLIANCE`, until a date)
//! and legal hold on its record. A version under retention or legal hold cannot be deleted —
//! a delete without a version id still adds a delete marker, as in S3 — and a `GOVERNANCE`
//! retention yields only to a caller allowed `s3:BypassGovernanceRetention` who sends
//! `x-amz-bypass-governance-retention: true`.

use std::sync::Arc;

use http::{Method, Response, StatusCode};
use lakebox_core::ServiceError;
use lakebox_policy::Principal;
use lakebox_protocol::types::Timestamp;
use lakebox_protocol::xml::{self, XmlElement};
use lakebox_service::Body;
use serde::{Deserialize, Serialize};

use crate::api::{S3Request, empty_response, xml_response};
use crate::errors;
use crate::store::{ObjectRecord, ObjectStore};
use crate::xml::doc;

/// What protects one object version.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct LockState {
    /// `GOVERNANCE` or `COMPLIANCE`, with `retain_until_millis`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retain_until_millis: Option<i64>,
    /// `None` until a legal hold was ever set (GetObjectLegalHold then has nothing to report).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal_hold: Option<bool>,
}

impl LockState {
    fn retained(&self, now_millis: i64) -> bool {
        self.mode.is_some() && self.retain_until_millis.is_some_and(|u| u > now_millis)
    }
}

/// Whether a version is under retention or legal hold now (nothing may remove it).
pub fn protects(rec: &ObjectRecord, now_millis: i64) -> bool {
    rec.lock
        .as_ref()
        .is_some_and(|l| l.legal_hold == Some(true) || l.retained(now_millis))
}

/// A bucket's lock configuration, as every write consults it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketLock {
    /// The default retention of new versions: mode and length in days.
    pub default: Option<(String, i64)>,
}

impl BucketLock {
    /// From the stored `ObjectLockConfiguration` document.
    pub fn of(doc: &[u8]) -> Option<BucketLock> {
        let d = xml::parse(doc).ok()?;
        (d.child_text("ObjectLockEnabled")?.trim() == "Enabled").then(|| BucketLock {
            default: default_retention(&d).ok().flatten(),
        })
    }
}

/// The configuration a bucket created with Object Lock starts with.
pub const ENABLED_DOCUMENT: &str = "<ObjectLockConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><ObjectLockEnabled>Enabled</ObjectLockEnabled></ObjectLockConfiguration>";

const MODES: [&str; 2] = ["GOVERNANCE", "COMPLIANCE"];

fn missing_configuration() -> ServiceError {
    ServiceError::client("InvalidRequest", "Bucket is missing Object Lock Configuration")
}

fn no_lock_configuration() -> ServiceError {
    ServiceError::new(
        "NoSuchObjectLockConfiguration",
        404,
        "The specified object does not have a ObjectLock configuration",
    )
}

fn in_the_past() -> ServiceError {
    ServiceError::client("InvalidArgument", "The retain until date must be in the future!")
}

/// The default retention of a configuration: (mode, days). `Years` count 365 days.
fn default_retention(d: &XmlElement) -> Result<Option<(String, i64)>, ServiceError> {
    let Some(rule) = d.child("Rule") else {
        return Ok(None);
    };
    let r = rule
        .child("DefaultRetention")
        .ok_or_else(errors::malformed_document)?;
    let mode = r
        .child_text("Mode")
        .map(str::trim)
        .filter(|m| MODES.contains(m))
        .ok_or_else(errors::malformed_document)?;
    let number = |name: &str| {
        r.child_text(name)
            .map(|v| v.trim().parse::<i64>().map_err(|_| errors::malformed_document()))
            .transpose()
    };
    let days = match (number("Days")?, number("Years")?) {
        (Some(d), None) => (d, 36_500),
        (None, Some(y)) => (y.saturating_mul(365), 36_500),
        _ => return Err(errors::malformed_document()),
    };
    if days.0 <= 0 {
        return Err(ServiceError::client(
            "InvalidArgument",
            "Default retention period must be a positive integer value",
        ));
    }
    if days.0 > days.1 {
        return Err(ServiceError::client(
            "InvalidArgument",
            "Default retention period is too large.",
        ));
    }
    Ok(Some((mode.to_owned(), days.0)))
}

/// PutObjectLockConfiguration's checks: a versioned bucket, `ObjectLockEnabled` and a valid
/// default retention.
pub fn check_configuration(doc: &XmlElement, versioning: Option<&str>) -> Result<(), ServiceError> {
    if doc.child_text("ObjectLockEnabled").map(str::trim) != Some("Enabled") {
        return Err(errors::malformed_document());
    }
    default_retention(doc)?;
    if versioning != Some("Enabled") {
        return Err(ServiceError::new(
            "InvalidBucketState",
            409,
            "Versioning must be 'Enabled' on the bucket to apply a Object Lock configuration",
        ));
    }
    Ok(())
}

fn parse_date(value: &str) -> Result<i64, ServiceError> {
    Timestamp::parse_iso8601(value.trim())
        .map(Timestamp::as_millis)
        .ok_or_else(|| {
            ServiceError::client(
                "InvalidArgument",
                "The retain until date must be provided in ISO 8601 format",
            )
        })
}

/// The lock a version written by another service (Firehose, Athena) gets: the bucket's
/// default retention, if any.
pub fn default_lock(store: &ObjectStore, bucket: &str) -> Option<LockState> {
    let (mode, days) = store.consulted(bucket).lock.clone()?.default?;
    Some(LockState {
        mode: Some(mode),
        retain_until_millis: Some(store.now_millis() + days * 86_400_000),
        legal_hold: None,
    })
}

/// The lock of a version written now (PutObject, CopyObject, CreateMultipartUpload): from the
/// `x-amz-object-lock-*` headers, else the bucket's default retention.
pub fn for_new_version(
    store: &ObjectStore,
    req: &S3Request,
    bucket: &str,
) -> Result<Option<LockState>, ServiceError> {
    let mode = req.header("x-amz-object-lock-mode");
    let until = req.header("x-amz-object-lock-retain-until-date");
    let hold = req.header("x-amz-object-lock-legal-hold");
    let lock = store.consulted(bucket).lock.clone();
    let asked = mode.is_some() || until.is_some() || hold.is_some();
    if lock.is_none() {
        return if asked {
            Err(missing_configuration())
        } else {
            Ok(None)
        };
    }
    let now = store.now_millis();
    let mut state = LockState::default();
    match (mode, until) {
        (Some(m), Some(u)) => {
            if !MODES.contains(&m) {
                return Err(ServiceError::client(
                    "InvalidArgument",
                    "Unknown wormMode directive.",
                ));
            }
            let until = parse_date(u)?;
            if until <= now {
                return Err(in_the_past());
            }
            state.mode = Some(m.to_owned());
            state.retain_until_millis = Some(until);
        }
        (None, None) => {
            if let Some(default) = default_lock(store, bucket) {
                state = default;
            }
        }
        _ => {
            return Err(ServiceError::client(
                "InvalidArgument",
                "x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must both be supplied",
            ));
        }
    }
    if let Some(h) = hold {
        state.legal_hold = Some(match h {
            "ON" => true,
            "OFF" => false,
            _ => {
                return Err(ServiceError::client(
                    "InvalidArgument",
                    "Legal Hold must be either of 'ON' or 'OFF'",
                ));
            }
        });
    }
    // S3 wants an integrity check of data written under a lock.
    if asked
        && req.method == Method::PUT
        && req.header("x-amz-copy-source").is_none()
        && req.header("content-md5").is_none()
        && !req
            .headers
            .keys()
            .any(|k| k.as_str().starts_with("x-amz-checksum-"))
        && req.header("x-amz-sdk-checksum-algorithm").is_none()
        && req.header("x-amz-trailer").is_none()
    {
        return Err(ServiceError::client(
            "InvalidRequest",
            "Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object requests with Object Lock parameters",
        ));
    }
    Ok((state != LockState::default()).then_some(state))
}

/// The `x-amz-object-lock-*` headers of a GET or HEAD.
pub fn headers(resp: &mut Response<Body>, rec: &ObjectRecord) {
    let Some(lock) = &rec.lock else { return };
    if let (Some(m), Some(u)) = (&lock.mode, lock.retain_until_millis) {
        crate::api::set_header(resp, "x-amz-object-lock-mode", m);
        crate::api::set_header(
            resp,
            "x-amz-object-lock-retain-until-date",
            &Timestamp::from_millis(u).to_iso8601(),
        );
    }
    if let Some(h) = lock.legal_hold {
        crate::api::set_header(resp, "x-amz-object-lock-legal-hold", if h { "ON" } else { "OFF" });
    }
}

/// Whether the caller asked to bypass governance retention and may.
fn bypasses_governance(
    store: &ObjectStore,
    req: &S3Request,
    who: &Principal,
    bucket: &str,
    key: &str,
) -> bool {
    req.header("x-amz-bypass-governance-retention")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        && crate::access::check(
            store,
            Some(req),
            who,
            "s3:BypassGovernanceRetention",
            bucket,
            Some(key),
        )
        .is_ok()
}

/// Refuses the permanent delete of a version under retention or legal hold (a delete without a
/// version id only adds a delete marker, which S3 allows).
pub fn check_delete(
    store: &ObjectStore,
    req: &S3Request,
    who: &Principal,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
) -> Result<(), ServiceError> {
    let Some(version_id) = version_id else {
        return Ok(());
    };
    if store.consulted(bucket).lock.is_none() {
        return Ok(());
    }
    let Some(rec) = version(store, bucket, key, Some(version_id))? else {
        return Ok(());
    };
    let Some(lock) = &rec.lock else {
        return Ok(());
    };
    let now = store.now_millis();
    let locked = lock.legal_hold == Some(true)
        || (lock.retained(now)
            && (lock.mode.as_deref() == Some("COMPLIANCE")
                || !bypasses_governance(store, req, who, bucket, key)));
    if locked {
        return Err(errors::access_denied());
    }
    Ok(())
}

/// One version's record (the current one without a version id); delete markers have no lock.
fn version(
    store: &ObjectStore,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
) -> Result<Option<ObjectRecord>, ServiceError> {
    Ok(match version_id {
        None => store.object(bucket, key)?,
        Some(v) => store
            .object_version_with_sources(bucket, key, v, |_| Ok(crate::sse::KeySource::Lakebox))?
            .map(|(rec, _)| rec),
    })
}

/// The version a retention or legal hold request addresses, in a bucket with Object Lock;
/// `NoSuchKey` / `NoSuchVersion` when absent, `MethodNotAllowed` for a delete marker.
fn addressed(store: &ObjectStore, req: &S3Request) -> Result<ObjectRecord, ServiceError> {
    let bucket = req.bucket.as_deref().unwrap_or_default();
    store.existing_bucket(bucket)?;
    if store.consulted(bucket).lock.is_none() {
        return Err(missing_configuration());
    }
    let key = req.key.as_deref().unwrap_or_default();
    let vid = req.query("versionId");
    let rec = version(store, bucket, key, vid)?.ok_or_else(|| match vid {
        Some(v) => errors::no_such_version(key, v),
        None => errors::no_such_key(key),
    })?;
    if rec.delete_marker {
        return Err(match vid {
            Some(_) => errors::method_not_allowed(),
            None => errors::no_such_key(key),
        });
    }
    Ok(rec)
}

/// Get/PutObjectRetention.
pub async fn retention(store: &Arc<ObjectStore>, mut req: S3Request) -> Result<Response<Body>, ServiceError> {
    let bucket = req.bucket.clone().unwrap_or_default();
    let key = req.key.clone().unwrap_or_default();
    let rec = addressed(store, &req)?;
    match req.method {
        Method::GET => {
            let lock = rec.lock.unwrap_or_default();
            let (Some(mode), Some(until)) = (lock.mode, lock.retain_until_millis) else {
                return Err(no_lock_configuration());
            };
            let mut w = doc("Retention");
            w.element("Mode", &mode)
                .element("RetainUntilDate", &Timestamp::from_millis(until).to_iso8601());
            w.end("Retention");
            Ok(xml_response(StatusCode::OK, w.finish()))
        }
        Method::PUT => {
            let body = req.xml_document("Retention").await?;
            let now = store.now_millis();
            let mode = body.child_text("Mode").map(|m| m.trim().to_owned());
            let until = body.child_text("RetainUntilDate").map(parse_date).transpose()?;
            match (&mode, until) {
                (Some(m), Some(u)) => {
                    if !MODES.contains(&m.as_str()) {
                        return Err(errors::malformed_document());
                    }
                    if u <= now {
                        return Err(in_the_past());
                    }
                }
                (None, None) => {}
                _ => return Err(errors::malformed_document()),
            }
            let old = rec.lock.clone().unwrap_or_default();
            // A retention in force may only be lengthened in its mode; a governance one also
            // yields to a caller who may bypass it.
            if old.retained(now) {
                let keeps = mode == old.mode && until >= old.retain_until_millis;
                let who = crate::access::requester(&req);
                let allowed = keeps
                    || (old.mode.as_deref() == Some("GOVERNANCE")
                        && bypasses_governance(store, &req, &who, &bucket, &key));
                if !allowed {
                    return Err(errors::access_denied());
                }
            }
            update(store, &req, move |lock| {
                lock.mode = mode;
                lock.retain_until_millis = until;
            })
            .await?;
            Ok(empty_response(StatusCode::OK))
        }
        _ => Err(errors::method_not_allowed()),
    }
}

/// Get/PutObjectLegalHold.
pub async fn legal_hold(
    store: &Arc<ObjectStore>,
    mut req: S3Request,
) -> Result<Response<Body>, ServiceError> {
    let rec = addressed(store, &req)?;
    match req.method {
        Method::GET => {
            let Some(on) = rec.lock.and_then(|l| l.legal_hold) else {
                return Err(no_lock_configuration());
            };
            let mut w = doc("LegalHold");
            w.element("Status", if on { "ON" } else { "OFF" });
            w.end("LegalHold");
            Ok(xml_response(StatusCode::OK, w.finish()))
        }
        Method::PUT => {
            let body = req.xml_document("LegalHold").await?;
            let on = match body.child_text("Status").map(str::trim) {
                Some("ON") => true,
                Some("OFF") => false,
                _ => return Err(errors::malformed_document()),
            };
            update(store, &req, move |lock| lock.legal_hold = Some(on)).await?;
            Ok(empty_response(StatusCode::OK))
        }
        _ => Err(errors::method_not_allowed()),
    }
}

/// Changes the addressed version's lock in place.
fn update<'a>(
    store: &'a ObjectStore,
    req: &S3Request,
    change: impl FnOnce(&mut LockState) + Send + 'static,
) -> impl std::future::Future<Output = Result<(), ServiceError>> + Send + 'a {
    let bucket = req.bucket.clone().unwrap_or_default();
    let key = req.key.clone().unwrap_or_default();
    let version = req.query("versionId").map(str::to_owned);
    async move {
        store
            .update_version(&bucket, &key, version.as_deref(), move |rec| {
                let mut lock = rec.lock.take().unwrap_or_default();
                change(&mut lock);
                rec.lock = (lock != LockState::default()).then_some(lock);
            })
            .await
    }
}
