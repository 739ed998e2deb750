//! Object operations: put, get/head (ranges, conditions), delete, batch delete, copy.

use std::io::Write;
use std::sync::Arc;

use http::{HeaderMap, Method, Response, StatusCode};
use lakebox_core::ServiceError;
use lakebox_protocol::Timestamp;
use lakebox_service::Body;
use md5::Digest;

use crate::api::{S3Request, empty_response, set_header, xml_response};
use crate::download::object_body;
use crate::errors;
use crate::notify::{self, Change, Origin};
use crate::sse_c::{self, CustomerKey};
use crate::store::{
    ContentHeaders, ObjectRecord, ObjectStore, Segment, SseInfo, WriteCondition, etag_matches,
};
use crate::upload::{self, stored_content_encoding};
use crate::xml::{doc, iso, quoted};

pub const MAX_KEY_BYTES: usize = 1024;
/// User-defined metadata is limited to 2 KB (names and values, UTF-8).
const MAX_USER_METADATA: usize = 2048;
const STORAGE_CLASSES: &[&str] = &[
    "STANDARD",
    "REDUCED_REDUNDANCY",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER",
    "DEEP_ARCHIVE",
    "OUTPOSTS",
    "GLACIER_IR",
    "SNOW",
    "EXPRESS_ONEZONE",
    "FSX_OPENZFS",
];

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

pub fn check_key(key: &str) -> Result<(), ServiceError> {
    if key.len() > MAX_KEY_BYTES {
        return Err(errors::key_too_long(key.len()));
    }
    Ok(())
}

/// What a PUT / CreateMultipartUpload says about the object beyond its data.
pub struct ObjectAttributes {
    pub content: ContentHeaders,
    pub user_metadata: Vec<(String, String)>,
    pub storage_class: String,
}

/// Content headers, user metadata and storage class from a PUT / CreateMultipartUpload.
pub fn object_attributes(h: &HeaderMap) -> Result<ObjectAttributes, ServiceError> {
    let get = |n: &str| header(h, n).map(str::to_owned);
    let content = ContentHeaders {
        content_type: Some(get("content-type").unwrap_or_else(|| "binary/octet-stream".into())),
        cache_control: get("cache-control"),
        content_disposition: get("content-disposition"),
        content_encoding: stored_content_encoding(h),
        content_language: get("content-language"),
        expires: get("expires"),
    };
    let mut meta: Vec<(String, String)> = h
        .iter()
        .filter_map(|(k, v)| {
            let name = k.as_str().strip_prefix("x-amz-meta-")?;
            Some((
                name.to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            ))
        })
        .collect();
    meta.sort();
    let meta_size: usize = meta.iter().map(|(k, v)| k.len() + v.len()).sum();
    if meta_size > MAX_USER_METADATA {
        return Err(ServiceError::client(
            "MetadataTooLarge",
            "Your metadata headers exceed the maximum allowed metadata size.",
        )
        .with_extra("Size", meta_size.to_string())
        .with_extra("MaxSizeAllowed", MAX_USER_METADATA.to_string()));
    }
    let class = get("x-amz-storage-class").unwrap_or_else(|| "STANDARD".into());
    if !STORAGE_CLASSES.contains(&class.as_str()) {
        return Err(ServiceError::client(
            "InvalidStorageClass",
            "The storage class you specified is not valid",
        )
        .with_extra("StorageClassRequested", class));
    }
    Ok(ObjectAttributes {
        content,
        user_metadata: meta,
        storage_class: class,
    })
}

/// `If-None-Match: *` and `If-Match` on writes.
pub fn write_condition(h: &HeaderMap) -> Result<WriteCondition, ServiceError> {
    let if_none_match_any = match header(h, "if-none-match") {
        Some(v) if v.trim() == "*" => true,
        Some(_) => {
            return Err(ServiceError::new(
                "NotImplemented",
                501,
                "A header you provided implies functionality that is not implemented",
            )
            .with_extra("Header", "If-None-Match"));
        }
        None => false,
    };
    Ok(WriteCondition {
        if_none_match_any,
        if_match: header(h, "if-match").map(str::to_owned),
    })
}

/// The encryption a write asks for: its `x-amz-server-side-encryption` header, else the
/// bucket's default encryption configuration. Data is sealed at rest either way; `aws:kms`
/// is recorded and reported with its key id until Lakebox has KMS.
pub fn requested_sse(
    store: &ObjectStore,
    req: &S3Request,
    bucket: &str,
    customer_key: Option<&CustomerKey>,
) -> Result<Option<SseInfo>, ServiceError> {
    if let Some(k) = customer_key {
        if let Some(alg) = req.header("x-amz-server-side-encryption") {
            return Err(errors::invalid_argument(
                "Server Side Encryption with Customer provided key is incompatible with the encryption method specified",
                "x-amz-server-side-encryption",
                alg,
            ));
        }
        return Ok(Some(k.sse_info()));
    }
    if let Some(alg) = req.header("x-amz-server-side-encryption") {
        return sse_info(
            alg.trim(),
            req.header("x-amz-server-side-encryption-aws-kms-key-id")
                .map(str::to_owned),
            &req.ctx.region,
            &req.ctx.account_id,
        );
    }
    bucket_default_sse(store, bucket, &req.ctx.region, &req.ctx.account_id)
}

/// The bucket's default encryption, for writes that do not ask for one.
pub fn bucket_default_sse(
    store: &ObjectStore,
    bucket: &str,
    region: &str,
    account: &str,
) -> Result<Option<SseInfo>, ServiceError> {
    let Some(doc) = store.bucket_config(bucket, "encryption")? else {
        return Ok(None);
    };
    let Ok(root) = lakebox_protocol::xml::parse(&doc) else {
        return Ok(None);
    };
    let Some(default) = root
        .child("Rule")
        .and_then(|r| r.child("ApplyServerSideEncryptionByDefault"))
    else {
        return Ok(None);
    };
    match default.child_text("SSEAlgorithm") {
        Some(alg) => sse_info(
            alg.trim(),
            default.child_text("KMSMasterKeyID").map(str::to_owned),
            region,
            account,
        ),
        None => Ok(None),
    }
}

/// Lakebox-keyed encryption by its algorithm name (`aws:kms` without a key id means the
/// account's `aws/s3` key).
fn sse_info(
    alg: &str,
    kms_key: Option<String>,
    region: &str,
    account: &str,
) -> Result<Option<SseInfo>, ServiceError> {
    match alg {
        "AES256" => Ok(Some(SseInfo {
            algorithm: alg.into(),
            kms_key_id: None,
            customer_key_md5: None,
        })),
        "aws:kms" | "aws:kms:dsse" => Ok(Some(SseInfo {
            algorithm: alg.into(),
            kms_key_id: Some(kms_key.unwrap_or_else(|| {
                lakebox_core::Arn::new("kms", region, account, "alias/aws/s3").to_string()
            })),
            customer_key_md5: None,
        })),
        other => Err(errors::invalid_argument(
            "The encryption method specified is not supported",
            "x-amz-server-side-encryption",
            other,
        )),
    }
}

/// `x-amz-server-side-encryption` (and the KMS key id), or for SSE-C the customer algorithm
/// and key MD5, on responses.
pub fn sse_headers(resp: &mut Response<Body>, sse: &Option<SseInfo>) {
    if let Some(s) = sse {
        if let Some(md5) = &s.customer_key_md5 {
            set_header(
                resp,
                "x-amz-server-side-encryption-customer-algorithm",
                &s.algorithm,
            );
            set_header(resp, "x-amz-server-side-encryption-customer-key-md5", md5);
            return;
        }
        set_header(resp, "x-amz-server-side-encryption", &s.algorithm);
        if let Some(k) = &s.kms_key_id {
            set_header(resp, "x-amz-server-side-encryption-aws-kms-key-id", k);
        }
    }
}

/// An object a PUT (or a form upload) stored.
pub struct Stored {
    pub record: ObjectRecord,
    versioned: bool,
}

/// Stores the request's body as `key` (PutObject, and POST Object after reading its form),
/// announcing it as `event` (`ObjectCreated:Put`, `ObjectCreated:Post`). With `size_range`, an
/// object outside it is refused (a form policy's content-length-range) and nothing is stored.
pub async fn store_object(
    store: &Arc<ObjectStore>,
    req: S3Request,
    event: &'static str,
    size_range: Option<(u64, u64)>,
) -> Result<Stored, ServiceError> {
    let bucket = req.bucket.clone().unwrap_or_default();
    let key = req.key.clone().unwrap_or_default();
    check_key(&key)?;
    let versioned = store.existing_bucket(&bucket)?.versioning.is_some();
    let ObjectAttributes {
        content,
        user_metadata,
        storage_class,
    } = object_attributes(&req.headers)?;
    let condition = write_condition(&req.headers)?;
    let tags = crate::config::tagging_header(&req)?;
    let customer_key = sse_c::from_request(&req, sse_c::OBJECT)?;
    let sse = requested_sse(store, &req, &bucket, customer_key.as_ref())?;
    let lock = crate::object_lock::for_new_version(store, &req, &bucket)?;
    let acl = crate::acl::for_new_object(store, &req, &bucket)?;
    let received = upload::receive(
        store,
        &req.headers,
        req.body,
        true,
        sse.as_ref().map(|_| sse_c::write_keys(customer_key.as_ref())),
        req.chunk_signer.clone(),
    )
    .await?;
    if let Some((lo, hi)) = size_range
        && !(lo..=hi).contains(&received.size)
    {
        let size = received.size;
        store.discard(received);
        return Err(if size > hi {
            errors::entity_too_large(size, hi)
        } else {
            ServiceError::client(
                "EntityTooSmall",
                "Your proposed upload is smaller than the minimum allowed size",
            )
            .with_extra("ProposedSize", size.to_string())
            .with_extra("MinSizeAllowed", lo.to_string())
        });
    }
    let (base, inline) = received.into_object(key, store.now_millis());
    let record = ObjectRecord {
        content,
        user_metadata,
        storage_class,
        tags,
        sse,
        lock,
        acl,
        ..base
    };
    let record = store.commit_object(&bucket, record, inline, condition).await?;
    notify::object_event(
        store,
        &bucket,
        &record.key,
        Change::Created(event, &record),
        &Origin::of(&req.ctx, req.remote_ip),
    )
    .await?;
    Ok(Stored { record, versioned })
}

/// The headers a stored object's answer carries: version, expiration, encryption, checksum.
pub fn finish_put_headers(resp: &mut Response<Body>, store: &ObjectStore, bucket: &str, stored: &Stored) {
    let record = &stored.record;
    version_header(resp, record, stored.versioned);
    expiration_header(resp, store, bucket, record);
    sse_headers(resp, &record.sse);
    if let Some(c) = &record.checksum {
        set_checksum_headers(resp, c);
    }
}

pub async fn put_object(store: &Arc<ObjectStore>, req: S3Request) -> Result<Response<Body>, ServiceError> {
    let bucket = req.bucket.clone().unwrap_or_default();
    let stored = store_object(store, req, "ObjectCreated:Put", None).await?;
    let mut resp = empty_response(StatusCode::OK);
    set_header(&mut resp, "etag", &quoted(&stored.record.etag));
    finish_put_headers(&mut resp, store, &bucket, &stored);
    Ok(resp)
}

pub fn set_checksum_headers(resp: &mut Response<Body>, c: &crate::store::StoredChecksum) {
    let name = format!("x-amz-checksum-{}", c.algorithm.to_ascii_lowercase());
    if let (Ok(n), Ok(v)) = (
        http::HeaderName::from_bytes(name.as_bytes()),
        http::HeaderValue::from_str(&c.value),
    ) {
        resp.headers_mut().insert(n, v);
    }
    set_header(resp, "x-amz-checksum-type", &c.kind);
}

/// A `Range: bytes=…` header against an object of `size` bytes: `Ok(None)` for the whole object
/// (also for forms S3 ignores, like multiple ranges), `Err` for an unsatisfiable range.
pub fn parse_range(value: &str, size: u64) -> Result<Option<(u64, u64)>, ServiceError> {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (a, b) = (a.trim(), b.trim());
    let range = if a.is_empty() {
        let Ok(n) = b.parse::<u64>() else { return Ok(None) };
        if n == 0 {
            return Err(errors::invalid_range(size));
        }
        let n = n.min(size);
        (size - n, size.saturating_sub(1))
    } else {
        let Ok(start) = a.parse::<u64>() else {
            return Ok(None);
        };
        let end = if b.is_empty() {
            size.saturating_sub(1)
        } else {
            match b.parse::<u64>() {
                Ok(e) if e >= start => e.min(size.saturating_sub(1)),
                _ => return Ok(None),
            }
        };
        if start >= size {
            return Err(errors::invalid_range(size));
        }
        (start, end)
    };
    if size == 0 {
        return Err(errors::invalid_range(size));
    }
    Ok(Some(range))
}

enum Conditional {
    Proceed,
    NotModified,
}

/// GET/HEAD conditions, with S3's precedence: a passing If-Match overrides a failing
/// If-Unmodified-Since; a failing If-None-Match overrides a passing If-Modified-Since.
fn evaluate_conditions(
    h: &HeaderMap,
    etag: &str,
    last_modified_millis: i64,
) -> Result<Conditional, ServiceError> {
    let modified_secs = last_modified_millis.div_euclid(1000);
    let date = |n: &str| {
        header(h, n)
            .and_then(Timestamp::parse_http_date)
            .map(|t| t.as_secs())
    };
    let if_match = header(h, "if-match");
    if let Some(v) = if_match
        && !etag_matches(v, etag)
    {
        return Err(errors::precondition_failed("If-Match"));
    }
    if if_match.is_none()
        && let Some(since) = date("if-unmodified-since")
        && modified_secs > since
    {
        return Err(errors::precondition_failed("If-Unmodified-Since"));
    }
    let if_none_match = header(h, "if-none-match");
    if let Some(v) = if_none_match
        && etag_matches(v, etag)
    {
        return Ok(Conditional::NotModified);
    }
    if if_none_match.is_none()
        && let Some(since) = date("if-modified-since")
        && modified_secs <= since
    {
        return Ok(Conditional::NotModified);
    }
    Ok(Conditional::Proceed)
}

/// Headers describing an object on GET/HEAD.
fn object_headers(resp: &mut Response<Body>, rec: &ObjectRecord, req: &S3Request, now: i64) {
    set_header(resp, "etag", &quoted(&rec.etag));
    set_header(
        resp,
        "last-modified",
        &Timestamp::from_millis(rec.last_modified_millis).to_http_date(),
    );
    set_header(resp, "accept-ranges", "bytes");
    let c = &rec.content;
    let pick =
        |over: &str, stored: &Option<String>| req.query(over).map(str::to_owned).or_else(|| stored.clone());
    for (name, over, stored) in [
        ("content-type", "response-content-type", &c.content_type),
        ("cache-control", "response-cache-control", &c.cache_control),
        (
            "content-disposition",
            "response-content-disposition",
            &c.content_disposition,
        ),
        (
            "content-encoding",
            "response-content-encoding",
            &c.content_encoding,
        ),
        (
            "content-language",
            "response-content-language",
            &c.content_language,
        ),
        ("expires", "response-expires", &c.expires),
    ] {
        if let Some(v) = pick(over, stored) {
            set_header(resp, name, &v);
        }
    }
    for (k, v) in &rec.user_metadata {
        if let (Ok(n), Ok(v)) = (
            http::HeaderName::from_bytes(format!("x-amz-meta-{k}").as_bytes()),
            http::HeaderValue::from_str(v),
        ) {
            resp.headers_mut().insert(n, v);
        }
    }
    if rec.storage_class != "STANDARD" {
        set_header(resp, "x-amz-storage-class", &rec.storage_class);
    }
    sse_headers(resp, &rec.sse);
    crate::object_lock::headers(resp, rec);
    if let Some(r) = &rec.restore {
        if now < r.ready_millis {
            set_header(resp, "x-amz-restore", "ongoing-request=\"true\"");
        } else if now < r.expiry_millis {
            let expiry = Timestamp::from_millis(r.expiry_millis).to_http_date();
            set_header(
                resp,
                "x-amz-restore",
                &format!("ongoing-request=\"false\", expiry-date=\"{expiry}\""),
            );
        }
    }
}

/// RestoreObject: makes an archived object readable after the configured delay, for `Days`.
pub async fn restore_object(
    store: &Arc<ObjectStore>,
    mut req: S3Request,
) -> Result<Response<Body>, ServiceError> {
    let bucket = req.bucket.clone().unwrap_or_default();
    let key = req.key.clone().unwrap_or_default();
    store.existing_bucket(&bucket)?;
    let doc = req.xml_document("RestoreRequest").await?;
    let malformed = errors::malformed_document;
    let days: i64 = match doc.child_text("Days") {
        Some(d) => d.trim().parse().ok().filter(|d| *d >= 1).ok_or_else(malformed)?,
        None => return Err(malformed()),
    };
    if doc.child_text("Type").is_some() {
        return Err(errors::not_implemented("S3 Select restores"));
    }
    let rec = store
        .object(&bucket, &key)?
        .filter(|r| !r.delete_marker)
        .ok_or_else(|| errors::no_such_key(&key))?;
    if !rec.is_archived() {
        return Err(ServiceError::new(
            "InvalidObjectState",
            403,
            "Restore is not allowed for the object's current storage class",
        )
        .with_extra("StorageClass", rec.storage_class.clone()));
    }
    let now = store.now_millis();
    let settings = store.settings();
    let status = match rec.restore {
        Some(r) if now < r.ready_millis => {
            return Err(ServiceError::new(
                "RestoreAlreadyInProgress",
                409,
                "Object restore is already in progress",
            ));
        }
        Some(r) if now < r.expiry_millis => StatusCode::OK,
        _ => StatusCode::ACCEPTED,
    };
    store
        .update_object(&bucket, &key, move |r| {
            let ready = match r.restore {
                // Already restored: only the expiry moves.
                Some(prev) if prev.ready_millis <= now && now < prev.expiry_millis => prev.ready_millis,
                _ => now + settings.restore_delay_millis,
            };
            r.restore = Some(crate::store::RestoreState {
                ready_millis: ready,
                expiry_millis: ready.max(now) + days * settings.day_millis,
            });
        })
        .await?;
    Ok(empty_response(status))
}

/// `x-amz-version-id`, reported once a bucket has versioning configured (`null` included) or
/// when the version has an id.
pub fn version_header(resp: &mut Response<Body>, rec: &ObjectRecord, versioned: bool) {
    if versioned || rec.version_id.is_some() {
        set_header(resp, "x-amz-version-id", crate::versioning::reported_id(rec));
    }
}

/// `x-amz-expiration`, when a lifecycle rule of the bucket expires the (current) object.
pub fn expiration_header(resp: &mut Response<Body>, store: &ObjectStore, bucket: &str, rec: &ObjectRecord) {
    if let Some(v) = crate::lifecycle::expiration(&store.consulted(bucket).lifecycle, rec) {
        set_header(resp, "x-amz-expiration", &v);
    }
}

/// The version a read asks for (`versionId`, else the current one) with where its data lies,
/// decrypted with the request's SSE-C key if it needs one; a missing key or version and a delete
/// marker answer as S3's GET does.
fn version_to_read(
    store: &ObjectStore,
    req: &S3Request,
    bucket: &str,
    key: &str,
) -> Result<(ObjectRecord, Vec<crate::store::SegmentSource>), ServiceError> {
    let requested_version = req.query("versionId");
    let customer_key = sse_c::from_request(req, sse_c::OBJECT)?;
    let keys = |rec: &ObjectRecord| match rec.delete_marker {
        true => Ok(crate::sse::KeySource::Lakebox),
        false => sse_c::read_keys(rec, customer_key.as_ref()),
    };
    let (rec, sources) = match requested_version {
        Some(v) => store
            .object_version_with_sources(bucket, key, v, keys)?
            .ok_or_else(|| errors::no_such_version(key, v))?,
        None => store
            .object_with_sources(bucket, key, keys)?
            .ok_or_else(|| errors::no_such_key(key))?,
    };
    if rec.delete_marker {
        let vid = crate::versioning::reported_id(&rec).to_owned();
        let err = match requested_version {
            // A delete marker asked for by id: the method is not allowed on it.
            Some(_) => errors::method_not_allowed().with_header("allow", "DELETE"),
            None => errors::no_such_key(key),
        };
        return Err(err
            .with_header("x-amz-delete-marker", "true")
            .with_header("x-amz-version-id", vid));
    }
    Ok((rec, sources))
}

pub fn get_object(store: &Arc<ObjectStore>, req: &S3Request) -> Result<Response<Body>, ServiceError> {
    let bucket = req.bucket.as_deref().unwrap_or_default();
    let key = req.key.as_deref().unwrap_or_default();
    let versioned = store.existing_bucket(bucket)?.versioning.is_some();
    let requested_version = req.query("versionId");
    let (rec, sources) = version_to_read(store, req, bucket, key)?;
    let head = req.method == Method::HEAD;
    if !head && !rec.is_readable(store.now_millis()) {
        return Err(errors::invalid_object_state(&rec.storage_class));
    }
    if let Conditional::NotModified = evaluate_conditions(&req.headers, &rec.etag, rec.last_modified_millis)?
    {
        let mut resp = empty_response(StatusCode::NOT_MODIFIED);
        set_header(&mut resp, "etag", &quoted(&rec.etag));
        set_header(
            &mut resp,
            "last-modified",
            &Timestamp::from_millis(rec.last_modified_millis).to_http_date(),
        );
        return Ok(resp);
    }
    let mut range = match req.header("range") {
        Some(r) => parse_range(r, rec.size)?,
        None => None,
    };
    let mut parts_count = None;
    if req.has("partNumber") {
        let n = crate::multipart::part_number(req)? as usize;
        let count = rec.parts_count.unwrap_or(1) as usize;
        if n > count {
            return Err(errors::invalid_part_number(n, count));
        }
        let start: u64 = rec.segments[..n - 1].iter().map(|s| s.len).sum();
        let len = rec.segments.get(n - 1).map_or(rec.size, |s| s.len);
        if rec.parts_count.is_some() || len > 0 {
            range = Some((start, start + len.saturating_sub(1)));
        }
        parts_count = Some(count);
    }
    let (status, start, len) = match range {
        Some((a, b)) => (StatusCode::PARTIAL_CONTENT, a, b - a + 1),
        None => (StatusCode::OK, 0, rec.size),
    };
    let body = if head || len == 0 {
        lakebox_service::body::empty()
    } else {
        object_body(&sources, start, len)?
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    object_headers(&mut resp, &rec, req, store.now_millis());
    version_header(&mut resp, &rec, versioned);
    if requested_version.is_none() {
        expiration_header(&mut resp, store, bucket, &rec);
    }
    set_header(&mut resp, "content-length", &len.to_string());
    if status == StatusCode::PARTIAL_CONTENT {
        set_header(
            &mut resp,
            "content-range",
            &format!("bytes {start}-{}/{}", start + len - 1, rec.size),
        );
    }
    if let Some(count) = parts_count {
        set_header(&mut resp, "x-amz-mp-parts-count", &count.to_string());
    }
    if !rec.tags.is_empty() {
        set_header(&mut resp, "x-amz-tagging-count", &rec.tags.len().to_string());
    }
    if req
        .header("x-amz-checksum-mode")
        .is_some_and(|m| m.eq_ignore_ascii_case("ENABLED"))
        && status == StatusCode::OK
        && let Some(c) = &rec.checksum
    {
        set_checksum_headers(&mut resp, c);
    }
    Ok(resp)
}

/// The event a delete raises: a delete marker made (a delete without a version id in a
/// versioned bucket), or an object or version removed.
pub fn removal(outcome: &crate::store::DeleteOutcome, by_version: bool) -> Change<'_> {
    if outcome.delete_marker && !by_version {
        Change::Removed("ObjectRemoved:DeleteMarkerCreated", outcome.version_id.as_deref())
    } else {
        Change::Removed("ObjectRemoved:Delete", outcome.version_id.as_deref())
    }
}

pub async fn delete_object(store: &Arc<ObjectStore>, req: S3Request) -> Result<Response<Body>, ServiceError> {
    let bucket = req.bucket.as_deref().unwrap_or_default();
    store.existing_bucket(bucket)?;
    let key = req.key.as_deref().unwrap_or_default();
    let who = crate::access::requester(&req);
    crate::object_lock::check_delete(store, &req, &who, bucket, key, req.query("versionId"))?;
    let outcome = store.delete_object(bucket, key, req.query("versionId")).await?;
    let by_version = req.query("versionId").is_some();
    notify::object_event(
        store,
        bucket,
        key,
        removal(&outcome, by_version),
        &Origin::of(&req.ctx, req.remote_ip),
    )
    .await?;
    let mut resp = empty_response(StatusCode::NO_CONTENT);
    if let Some(v) = &outcome.version_id {
        set_header(&mut resp, "x-amz-version-id", v);
    }
    if outcome.delete_marker {
        set_header(&mut resp, "x-amz-delete-marker", "true");
    }
    Ok(resp)
}

pub async fn delete_objects(
    store: &Arc<ObjectStore>,
    mut req: S3Request,
) -> Result<Response<Body>, ServiceError> {
    let bucket = req.bucket.clone().unwrap_or_default();
    store.existing_bucket(&bucket)?;
    let root = req.xml_document("Delete").await?;
    let malformed = errors::malformed_document;
    let quiet = root.child_text("Quiet").is_some_and(|q| q.trim() == "true");
    let keys: Vec<(String, Option<String>)> = root
        .children_named("Object")
        .map(|o| {
            let key = o.child_text("Key").map(str::to_owned).ok_or_else(malformed)?;
            Ok((key, o.child_text("VersionId").map(str::to_owned)))
        })
        .collect::<Result<_, ServiceError>>()?;
    if keys.is_empty() || keys.len() > 1000 {
        return Err(malformed());
    }
    let mut w = doc("DeleteResult");
    let who = crate::access::requester(&req);
    for (key, version) in &keys {
        // Each key is authorized, and checked against its lock, on its own, as S3 does.
        let action = match version {
            Some(_) => "s3:DeleteObjectVersion",
            None => "s3:DeleteObject",
        };
        let allowed =
            crate::access::check(store, Some(&req), &who, action, &bucket, Some(key)).and_then(|()| {
                crate::object_lock::check_delete(store, &req, &who, &bucket, key, version.as_deref())
            });
        let deleted = match allowed {
            Err(e) => Err(e),
            Ok(()) => store.delete_object(&bucket, key, version.as_deref()).await,
        };
        let deleted = match deleted {
            Ok(outcome) => notify::object_event(
                store,
                &bucket,
                key,
                removal(&outcome, version.is_some()),
                &Origin::of(&req.ctx, req.remote_ip),
            )
            .await
            .map(|()| outcome),
            Err(e) => Err(e),
        };
        match deleted {
            Ok(outcome) => {
                if !quiet {
                    w.start("Deleted").element("Key", key);
                    if let Some(v) = version {
                        w.element("VersionId", v);
                    }
                    if outcome.delete_marker {
                        w.element("DeleteMarker", "true");
                        if let Some(v) = &outcome.version_id {
                            w.element("DeleteMarkerVersionId", v);
                        }
                    }
                    w.end("Deleted");
                }
            }
            Err(e) => {
                w.start("Error").element("Key", key);
                if let Some(v) = version {
                    w.element("VersionId", v);
                }
                w.element("Code", &e.code)
                    .element("Message", &e.message)
                    .end("Error");
            }
        }
    }
    w.end("DeleteResult");
    Ok(xml_response(StatusCode::OK, w.finish()))
}

/// The version named in `x-amz-copy-source` (`?versionId=…`), if any.
pub fn copy_source_version(value: &str) -> Option<String> {
    let (_, query) = value.split_once('?')?;
    query
        .split('&')
        .find_map(|p| p.strip_prefix("versionId="))
        .map(|v| {
            percent_encoding::percent_decode_str(v)
                .decode_utf8_lossy()
                .into_owned()
        })
}

/// `x-amz-copy-source`: `[/]bucket/key[?versionId=…]`, URL-encoded.
pub fn parse_copy_source(value: &str) -> Result<(String, String), ServiceError> {
    let v = value.split('?').next().unwrap_or("");
    let decoded = percent_encoding::percent_decode_str(v)
        .decode_utf8()
        .map_err(|_| errors::invalid_argument("Invalid copy source encoding", "x-amz-copy-source", value))?;
    let trimmed = decoded.strip_prefix('/').unwrap_or(&decoded);
    match trimmed.split_once('/') {
        Some((b, k)) if !b.is_empty() && !k.is_empty() => Ok((b.to_owned(), k.to_owned())),
        _ => Err(errors::invalid_argument(
            "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
            "x-amz-copy-source",
            value,
        )),
    }
}

/// The copy-source preconditions (`x-amz-copy-source-if-*`), each failing with 412.
pub fn check_copy_source_conditions(h: &HeaderMap, src: &ObjectRecord) -> Result<(), ServiceError> {
    let modified = src.last_modified_millis.div_euclid(1000);
    let date = |n: &str| {
        header(h, n)
            .and_then(Timestamp::parse_http_date)
            .map(|t| t.as_secs())
    };
    let if_match = header(h, "x-amz-copy-source-if-match");
    if let Some(v) = if_match
        && !etag_matches(v, &src.etag)
    {
        return Err(errors::precondition_failed("x-amz-copy-source-If-Match"));
    }
    if if_match.is_none() && date("x-amz-copy-source-if-unmodified-since").is_some_and(|s| modified > s) {
        return Err(errors::precondition_failed(
            "x-amz-copy-source-If-Unmodified-Since",
        ));
    }
    let if_none_match = header(h, "x-amz-copy-source-if-none-match");
    if let Some(v) = if_none_match
        && etag_matches(v, &src.etag)
    {
        return Err(errors::precondition_failed("x-amz-copy-source-If-None-Match"));
    }
    if if_none_match.is_none() && date("x-amz-copy-source-if-modified-since").is_some_and(|s| modified <= s) {
        return Err(errors::precondition_failed("x-amz-copy-source-If-Modified-Since"));
    }
    Ok(())
}

/// Reads the copy source named by the request, checking ownership, conditions and the source's
/// customer key; returns it with the keys to read it with.
pub fn copy_source(
    store: &Arc<ObjectStore>,
    req: &S3Request,
) -> Result<(ObjectRecord, crate::sse::KeySource), ServiceError> {
    let header = req.header("x-amz-copy-source").unwrap_or_default();
    let (src_bucket, src_key) = parse_copy_source(header)?;
    store.existing_bucket(&src_bucket)?;
    let read = match copy_source_version(header) {
        Some(_) => "s3:GetObjectVersion",
        None => "s3:GetObject",
    };
    crate::access::check(
        store,
        Some(req),
        &crate::access::requester(req),
        read,
        &src_bucket,
        Some(&src_key),
    )?;
    let customer_key = sse_c::from_request(req, sse_c::COPY_SOURCE)?;
    let src = match copy_source_version(header) {
        Some(v) => {
            let (rec, _) = store
                .object_version_with_sources(&src_bucket, &src_key, &v, |_| {
                    Ok(crate::sse::KeySource::Lakebox)
                })?
                .ok_or_else(|| errors::no_such_version(&src_key, &v))?;
            if rec.delete_marker {
                return Err(errors::invalid_request(
                    "The source of a copy request may not specifically refer to a delete marker by version id.",
                ));
            }
            rec
        }
        None => store
            .object(&src_bucket, &src_key)?
            .filter(|r| !r.delete_marker)
            .ok_or_else(|| errors::no_such_key(&src_key))?,
    };
    if !src.is_readable(store.now_millis()) {
        return Err(errors::invalid_object_state(&src.storage_class));
    }
    check_copy_source_conditions(&req.headers, &src)?;
    let keys = sse_c::read_keys(&src, customer_key.as_ref())?;
    Ok((src, keys))
}

/// Copies `len` bytes from `start` of `src` into a new committed blob; returns (blob, md5 hex).
pub async fn copy_data(
    store: &Arc<ObjectStore>,
    src: &ObjectRecord,
    start: u64,
    len: u64,
    src_keys: crate::sse::KeySource,
    encrypt: Option<crate::sse::KeySource>,
) -> Result<(String, String), ServiceError> {
    let (blob, mut writer) = store.new_blob()?;
    let mut encryptor = encrypt.map(|k| crate::sse::Encryptor::new(store.key_for(k, &blob)));
    let pieces = crate::download::plan(&store.segment_sources(src, src_keys)?, start, len);
    tokio::task::spawn_blocking(move || -> Result<String, std::io::Error> {
        let mut md5 = md5::Md5::new();
        crate::download::for_each_chunk(pieces, |chunk| {
            md5.update(&chunk);
            match encryptor.as_mut() {
                Some(e) => e.push(&chunk, &mut |sealed| writer.write_all(sealed))?,
                None => writer.write_all(&chunk)?,
            }
            Ok(true)
        })?;
        if let Some(e) = encryptor {
            e.finish(&mut |sealed| writer.write_all(sealed))?;
        }
        writer.commit().map_err(std::io::Error::from)?;
        Ok(hex::encode(md5.finalize()))
    })
    .await
    .map_err(crate::store::internal)?
    .map(|md5| (blob, md5))
    .map_err(crate::store::internal)
}

pub async fn copy_object(store: &Arc<ObjectStore>, req: S3Request) -> Result<Response<Body>, ServiceError> {
    let bucket = req.bucket.clone().unwrap_or_default();
    let key = req.key.clone().unwrap_or_default();
    check_key(&key)?;
    let versioned = store.existing_bucket(&bucket)?.versioning.is_some();
    let (src_bucket, src_key) = parse_copy_source(req.header("x-amz-copy-source").unwrap_or_default())?;
    let (src, src_keys) = copy_source(store, &req)?;
    let src_versioned = store.bucket(&src_bucket)?.is_some_and(|b| b.versioning.is_some());
    let replace = match req.header("x-amz-metadata-directive").unwrap_or("COPY") {
        "COPY" => false,
        "REPLACE" => true,
        other => {
            return Err(errors::invalid_argument(
                "Unknown metadata directive.",
                "x-amz-metadata-directive",
                other,
            ));
        }
    };
    let new_class = req.header("x-amz-storage-class");
    let same_version = copy_source_version(req.header("x-amz-copy-source").unwrap_or_default()).is_none();
    if src_bucket == bucket && src_key == key && same_version && !replace && new_class.is_none() {
        return Err(errors::invalid_request(
            "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
        ));
    }
    let ObjectAttributes {
        content,
        user_metadata,
        storage_class,
    } = if replace {
        object_attributes(&req.headers)?
    } else {
        ObjectAttributes {
            content: src.content.clone(),
            user_metadata: src.user_metadata.clone(),
            storage_class: new_class
                .map(str::to_owned)
                .unwrap_or_else(|| src.storage_class.clone()),
        }
    };
    let tags = match req.header("x-amz-tagging-directive").unwrap_or("COPY") {
        "COPY" => src.tags.clone(),
        "REPLACE" => crate::config::tagging_header(&req)?,
        other => {
            return Err(errors::invalid_argument(
                "Unknown tagging directive.",
                "x-amz-tagging-directive",
                other,
            ));
        }
    };
    let customer_key = sse_c::from_request(&req, sse_c::OBJECT)?;
    let sse = requested_sse(store, &req, &bucket, customer_key.as_ref())?;
    let encrypt = sse.as_ref().map(|_| sse_c::write_keys(customer_key.as_ref()));
    let (blob, md5) = copy_data(store, &src, 0, src.size, src_keys, encrypt).await?;
    let record = ObjectRecord {
        key,
        size: src.size,
        etag: md5,
        last_modified_millis: store.now_millis(),
        content,
        user_metadata,
        storage_class,
        checksum: src.checksum.clone().filter(|c| c.kind == "FULL_OBJECT"),
        segments: vec![Segment {
            blob,
            len: src.size,
            inline: false,
            encrypted: sse.is_some(),
        }],
        parts_count: None,
        parts: Vec::new(),
        tags,
        version_id: None,
        delete_marker: false,
        version_seq: 0,
        restore: None,
        sse,
        lock: crate::object_lock::for_new_version(store, &req, &bucket)?,
        acl: crate::acl::for_new_object(store, &req, &bucket)?,
    };
    let record = store
        .commit_object(&bucket, record, None, write_condition(&req.headers)?)
        .await?;
    notify::object_event(
        store,
        &bucket,
        &record.key,
        Change::Created("ObjectCreated:Copy", &record),
        &Origin::of(&req.ctx, req.remote_ip),
    )
    .await?;
    let mut w = doc("CopyObjectResult");
    w.element("LastModified", &iso(record.last_modified_millis))
        .element("ETag", &quoted(&record.etag));
    w.end("CopyObjectResult");
    let mut resp = xml_response(StatusCode::OK, w.finish());
    version_header(&mut resp, &record, versioned);
    expiration_header(&mut resp, store, &bucket, &record);
    sse_headers(&mut resp, &record.sse);
    if src_versioned || src.version_id.is_some() {
        set_header(
            &mut resp,
            "x-amz-copy-source-version-id",
            crate::versioning::reported_id(&src),
        );
    }
    Ok(resp)
}

/// The attributes GetObjectAttributes may be asked for (`x-amz-object-attributes`).
const OBJECT_ATTRIBUTES: &[&str] = &["ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"];

/// The parts of a multipart object, paged by `x-amz-max-parts` and `x-amz-part-number-marker`.
/// S3 lists them only for objects whose parts were uploaded with checksums.
fn object_parts(
    w: &mut lakebox_protocol::xml::XmlWriter,
    req: &S3Request,
    parts: &[crate::store::PartSummary],
) -> Result<(), ServiceError> {
    if parts.is_empty() || parts.iter().any(|p| p.checksum.is_none()) {
        return Ok(());
    }
    let max = crate::multipart::int_param_header(req, "x-amz-max-parts", 1000)?.min(1000);
    let marker = crate::multipart::int_param_header(req, "x-amz-part-number-marker", 0)? as u32;
    let after: Vec<_> = parts.iter().filter(|p| p.number > marker).collect();
    let shown = &after[..after.len().min(max)];
    let truncated = after.len() > shown.len();
    crate::multipart::part_page(w, marker, shown.last().map(|p| p.number), max, truncated);
    for p in shown {
        w.start("Part")
            .element("PartNumber", &p.number.to_string())
            .element("Size", &p.size.to_string());
        if let Some(c) = &p.checksum {
            w.element(&format!("Checksum{}", c.algorithm), &c.value);
        }
        w.end("Part");
    }
    Ok(())
}

/// GetObjectAttributes: what HEAD tells and more, without the data, for the current version or
/// `versionId`. Delete markers answer as GET does. `ObjectParts` reports the parts count of a
/// multipart object (`PartsCount`) and, for one uploaded with part checksums, the parts.
pub fn get_object_attributes(
    store: &Arc<ObjectStore>,
    req: &S3Request,
) -> Result<Response<Body>, ServiceError> {
    let bucket = req.bucket.as_deref().unwrap_or_default();
    let key = req.key.as_deref().unwrap_or_default();
    let versioned = store.existing_bucket(bucket)?.versioning.is_some();
    let wanted: Vec<&str> = req
        .header("x-amz-object-attributes")
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .collect();
    if wanted.is_empty() || wanted.iter().any(|a| !OBJECT_ATTRIBUTES.contains(a)) {
        return Err(errors::invalid_argument(
            "Invalid attribute name specified.",
            "x-amz-object-attributes",
            req.header("x-amz-object-attributes").unwrap_or(""),
        ));
    }
    let (rec, _) = version_to_read(store, req, bucket, key)?;
    let vid = crate::versioning::reported_id(&rec).to_owned();
    let mut w = doc("GetObjectAttributesResponse");
    for attribute in OBJECT_ATTRIBUTES.iter().filter(|a| wanted.contains(a)) {
        match *attribute {
            // Unquoted here, unlike every other place S3 reports an ETag.
            "ETag" => {
                w.element("ETag", &rec.etag);
            }
            "Checksum" => {
                if let Some(c) = &rec.checksum {
                    // Without a composite checksum's "-<parts>" suffix, as S3 reports it here.
                    let value = c.value.split_once('-').map_or(c.value.as_str(), |(v, _)| v);
                    w.start("Checksum")
                        .element(&format!("Checksum{}", c.algorithm), value)
                        .element("ChecksumType", &c.kind)
                        .end("Checksum");
                }
            }
            "ObjectParts" => {
                if let Some(n) = rec.parts_count {
                    w.start("ObjectParts").element("PartsCount", &n.to_string());
                    object_parts(&mut w, req, &rec.parts)?;
                    w.end("ObjectParts");
                }
            }
            "StorageClass" => {
                w.element("StorageClass", &rec.storage_class);
            }
            _ => {
                w.element("ObjectSize", &rec.size.to_string());
            }
        }
    }
    w.end("GetObjectAttributesResponse");
    let mut resp = xml_response(StatusCode::OK, w.finish());
    set_header(
        &mut resp,
        "last-modified",
        &Timestamp::from_millis(rec.last_modified_millis).to_http_date(),
    );
    if versioned {
        set_header(&mut resp, "x-amz-version-id", &vid);
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100).unwrap(), Some((0, 9)));
        assert_eq!(parse_range("bytes=90-200", 100).unwrap(), Some((90, 99)));
        assert_eq!(parse_range("bytes=95-", 100).unwrap(), Some((95, 99)));
        assert_eq!(parse_range("bytes=-10", 100).unwrap(), Some((90, 99)));
        assert_eq!(parse_range("bytes=-500", 100).unwrap(), Some((0, 99)));
        assert_eq!(parse_range("bytes=0-1,5-6", 100).unwrap(), None);
        assert_eq!(parse_range("items=0-1", 100).unwrap(), None);
        assert_eq!(parse_range("bytes=5-2", 100).unwrap(), None);
        assert_eq!(parse_range("bytes=100-", 100).unwrap_err().code, "InvalidRange");
        assert_eq!(parse_range("bytes=0-", 0).unwrap_err().code, "InvalidRange");
        assert_eq!(parse_range("bytes=-0", 100).unwrap_err().code, "InvalidRange");
    }

    #[test]
    fn copy_sources() {
        assert_eq!(
            parse_copy_source("/b/dir/k%20ey").unwrap(),
            ("b".into(), "dir/k ey".into())
        );
        assert_eq!(
            parse_copy_source("b/k?versionId=x").unwrap(),
            ("b".into(), "k".into())
        );
        assert!(parse_copy_source("b").is_err());
    }

    #[test]
    fn conditions_precedence() {
        let mut h = HeaderMap::new();
        let t = 1_700_000_000_000;
        h.insert("if-match", "\"abc\"".parse().unwrap());
        h.insert(
            "if-unmodified-since",
            Timestamp::from_millis(t - 10_000).to_http_date().parse().unwrap(),
        );
        assert!(matches!(
            evaluate_conditions(&h, "abc", t),
            Ok(Conditional::Proceed)
        ));
        let mut h = HeaderMap::new();
        h.insert("if-none-match", "\"abc\"".parse().unwrap());
        assert!(matches!(
            evaluate_conditions(&h, "abc", t),
            Ok(Conditional::NotModified)
        ));
        let mut h = HeaderMap::new();
        h.insert(
            "if-modified-since",
            Timestamp::from_millis(t + 10_000).to_http_date().parse().unwrap(),
        );
        assert!(matches!(
            evaluate_conditions(&h, "abc", t),
            Ok(Conditional::NotModified)
        ));
        let mut h = HeaderMap::new();
        h.insert("if-match", "\"zzz\"".parse().unwrap());
        assert_eq!(evaluate_conditions(&h, "abc", t).err().unwrap().status, 412);
    }
}
