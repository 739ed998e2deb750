//! ListObjectsV2 and ListObjects (v1): prefix, delimiter and common prefixes, pagination by
//! continuation token / marker, `encoding-type=url`. Order is UTF-8 byte order, straight from
//! the metadata store's key order; each page is one consistent read, and paging resumes after
//! the last key returned, so concurrent writes never make a listing repeat or skip a key that
//! existed throughout.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as TOKEN;
use http::{Response, StatusCode};
use lakebox_core::ServiceError;
use lakebox_protocol::xml::XmlWriter;
use lakebox_service::Body;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::api::{S3Request, xml_response};
use crate::errors;
use crate::store::{ObjectRecord, ObjectStore};
use crate::xml::{doc, iso, owner, quoted};

const BATCH: usize = 1000;
/// `encoding-type=url` leaves these as they are (so do the URLs S3 hands back).
pub(crate) const URL_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

struct Page {
    contents: Vec<ObjectRecord>,
    common_prefixes: Vec<String>,
    truncated: bool,
    /// Where the next page starts (exclusive): the last key, or a common prefix + 0xFF.
    resume_after: Option<Vec<u8>>,
    /// The last key or common prefix returned (v1's NextMarker).
    last_item: Option<String>,
}

/// Skipping past every key under a common prefix: no UTF-8 key contains byte 0xFF.
fn past_prefix(cp: &str) -> Vec<u8> {
    let mut v = cp.as_bytes().to_vec();
    v.push(0xFF);
    v
}

fn list_page(
    store: &ObjectStore,
    bucket: &str,
    prefix: &str,
    delimiter: Option<&str>,
    mut after: Option<Vec<u8>>,
    max_keys: usize,
) -> Result<Page, ServiceError> {
    let mut page = Page {
        contents: Vec::new(),
        common_prefixes: Vec::new(),
        truncated: false,
        resume_after: None,
        last_item: None,
    };
    // `max-keys=0` asks for nothing, and S3 answers that the listing is not truncated.
    if max_keys == 0 {
        return Ok(page);
    }
    let mut count = 0usize;
    'scan: loop {
        let batch = store.list_objects(bucket, prefix, after.as_deref(), BATCH)?;
        if batch.is_empty() {
            break;
        }
        let full = batch.len() == BATCH;
        for rec in batch {
            if count == max_keys {
                page.truncated = true;
                break 'scan;
            }
            if rec.delete_marker {
                // Hidden from listings; it does not count towards max-keys either.
                after = Some(rec.key.as_bytes().to_vec());
                continue;
            }
            let rest = &rec.key[prefix.len()..];
            if let Some(d) = delimiter.filter(|d| !d.is_empty())
                && let Some(i) = rest.find(d)
            {
                let cp = format!("{prefix}{}", &rest[..i + d.len()]);
                after = Some(past_prefix(&cp));
                page.resume_after = after.clone();
                page.last_item = Some(cp.clone());
                page.common_prefixes.push(cp);
                count += 1;
                continue 'scan;
            }
            after = Some(rec.key.as_bytes().to_vec());
            page.resume_after = after.clone();
            page.last_item = Some(rec.key.clone());
            page.contents.push(rec);
            count += 1;
        }
        if !full {
            break;
        }
    }
    Ok(page)
}

fn max_keys(req: &S3Request) -> Result<usize, ServiceError> {
    match req.query("max-keys") {
        None => Ok(1000),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .map(|n| n.min(1000) as usize)
            .ok_or_else(|| {
                errors::invalid_argument(
                    "Provided max-keys not an integer or within integer range",
                    "max-keys",
                    v,
                )
            }),
    }
}

pub fn list_objects(store: &Arc<ObjectStore>, req: &S3Request) -> Result<Response<Body>, ServiceError> {
    let bucket = req.bucket.as_deref().unwrap_or_default();
    let owner = store.existing_bucket(bucket)?.owner;
    let v2 = req.query("list-type") == Some("2");
    let prefix = req.query("prefix").unwrap_or("");
    let delimiter = req.query("delimiter").filter(|d| !d.is_empty());
    let max = max_keys(req)?;
    let url = match req.query("encoding-type") {
        None => false,
        Some("url") => true,
        Some(other) => {
            return Err(errors::invalid_argument(
                "Invalid Encoding Method specified in Request",
                "encoding-type",
                other,
            ));
        }
    };
    let enc = |s: &str| {
        if url {
            utf8_percent_encode(s, URL_ENCODE).to_string()
        } else {
            s.to_owned()
        }
    };

    let start: Option<Vec<u8>> = if v2 {
        match req.query("continuation-token") {
            Some(t) => Some(TOKEN.decode(t).map_err(|_| {
                errors::invalid_argument(
                    "The continuation token provided is incorrect",
                    "continuation-token",
                    t,
                )
            })?),
            None => req
                .query("start-after")
                .filter(|s| !s.is_empty())
                .map(|s| s.as_bytes().to_vec()),
        }
    } else {
        req.query("marker").filter(|m| !m.is_empty()).map(|m| {
            // A marker that is a common prefix (v1's NextMarker) resumes after everything under it.
            match delimiter.and_then(|d| m.strip_prefix(prefix).and_then(|r| r.find(d).map(|i| (r, i, d)))) {
                Some((r, i, d)) if i + d.len() == r.len() => past_prefix(m),
                _ => m.as_bytes().to_vec(),
            }
        })
    };
    let page = list_page(store, bucket, prefix, delimiter, start, max)?;

    let mut w = doc("ListBucketResult");
    // ListObjectsV2 encodes the prefix it echoes; ListObjects (v1) does not, and the SDKs
    // decode it only for v2.
    w.element("Name", bucket)
        .element("Prefix", &if v2 { enc(prefix) } else { prefix.to_owned() });
    if v2 {
        if let Some(t) = req.query("continuation-token") {
            w.element("ContinuationToken", t);
        }
        if page.truncated
            && let Some(after) = &page.resume_after
        {
            w.element("NextContinuationToken", &TOKEN.encode(after));
        }
        if let Some(s) = req.query("start-after") {
            w.element("StartAfter", &enc(s));
        }
        w.element(
            "KeyCount",
            &(page.contents.len() + page.common_prefixes.len()).to_string(),
        );
    } else {
        w.element("Marker", &enc(req.query("marker").unwrap_or("")));
        if page.truncated
            && delimiter.is_some()
            && let Some(last) = &page.last_item
        {
            w.element("NextMarker", &enc(last));
        }
    }
    w.element("MaxKeys", &max.to_string());
    if let Some(d) = delimiter {
        w.element("Delimiter", &enc(d));
    }
    if url {
        w.element("EncodingType", "url");
    }
    w.element("IsTruncated", if page.truncated { "true" } else { "false" });
    let with_owner = !v2 || req.query("fetch-owner") == Some("true");
    for rec in &page.contents {
        contents_entry(&mut w, rec, &enc(&rec.key), with_owner.then_some(owner.as_str()));
    }
    for cp in &page.common_prefixes {
        w.start("CommonPrefixes")
            .element("Prefix", &enc(cp))
            .end("CommonPrefixes");
    }
    w.end("ListBucketResult");
    Ok(xml_response(StatusCode::OK, w.finish()))
}

fn contents_entry(w: &mut XmlWriter, rec: &ObjectRecord, key: &str, owner_account: Option<&str>) {
    w.start("Contents")
        .element("Key", key)
        .element("LastModified", &iso(rec.last_modified_millis))
        .element("ETag", &quoted(&rec.etag));
    if let Some(c) = &rec.checksum {
        w.element("ChecksumAlgorithm", &c.algorithm)
            .element("ChecksumType", &c.kind);
    }
    w.element("Size", &rec.size.to_string());
    if let Some(account) = owner_account {
        owner(w, "Owner", account);
    }
    w.element("StorageClass", &rec.storage_class).end("Contents");
}

/// ListObjectVersions: every version and delete marker, by key, newest first within a key,
/// with `key-marker` / `version-id-marker` pagination, prefix, delimiter and encoding-type.
pub fn list_object_versions(
    store: &Arc<ObjectStore>,
    req: &S3Request,
) -> Result<Response<Body>, ServiceError> {
    let bucket = req.bucket.as_deref().unwrap_or_default();
    let b = store.existing_bucket(bucket)?;
    let prefix = req.query("prefix").unwrap_or("");
    let delimiter = req.query("delimiter").filter(|d| !d.is_empty());
    let max = max_keys(req)?;
    let url = req.query("encoding-type") == Some("url");
    let enc = |s: &str| {
        if url {
            utf8_percent_encode(s, URL_ENCODE).to_string()
        } else {
            s.to_owned()
        }
    };
    let key_marker = req.query("key-marker").unwrap_or("");
    let version_marker = req.query("version-id-marker").filter(|v| !v.is_empty());

    enum Entry {
        Version(Box<ObjectRecord>, bool),
        CommonPrefix(String),
    }
    let mut entries: Vec<Entry> = Vec::new();
    let mut truncated = false;
    let mut after: Option<Vec<u8>> = None;
    let mut resume_key_versions = None;
    if !key_marker.is_empty() {
        after = Some(key_marker.as_bytes().to_vec());
        if let Some(vm) = version_marker {
            // Continue with the marker key's versions older than the marker version.
            resume_key_versions = Some((key_marker.to_owned(), vm.to_owned()));
        }
    }
    let mut pending: Vec<ObjectRecord> = Vec::new();
    if let Some((k, vm)) = resume_key_versions {
        let mut all: Vec<ObjectRecord> = store.object(bucket, &k)?.into_iter().collect();
        all.extend(store.noncurrent_versions(bucket, &k)?);
        if let Some(pos) = all.iter().position(|v| crate::versioning::reported_id(v) == vm) {
            pending = all.split_off(pos + 1);
        }
    }
    'scan: loop {
        // `max-keys=0` asks for nothing: not truncated, as in ListObjects.
        if max == 0 {
            break;
        }
        // Versions of the current key come first, then the next keys.
        for v in &pending {
            if entries.len() == max {
                truncated = true;
                break 'scan;
            }
            entries.push(Entry::Version(Box::new(v.clone()), false));
        }
        pending.clear();
        let batch = store.list_objects(bucket, prefix, after.as_deref(), 1)?;
        let Some(current) = batch.into_iter().next() else {
            break;
        };
        if entries.len() == max {
            truncated = true;
            break;
        }
        let rest = &current.key[prefix.len()..];
        if let Some(d) = delimiter
            && let Some(i) = rest.find(d)
        {
            let cp = format!("{prefix}{}", &rest[..i + d.len()]);
            after = Some(past_prefix(&cp));
            entries.push(Entry::CommonPrefix(cp));
            continue;
        }
        after = Some(current.key.as_bytes().to_vec());
        pending = store.noncurrent_versions(bucket, &current.key)?;
        entries.push(Entry::Version(Box::new(current), true));
    }

    let mut w = doc("ListVersionsResult");
    w.element("Name", bucket)
        .element("Prefix", &enc(prefix))
        .element("KeyMarker", &enc(key_marker))
        .element("VersionIdMarker", version_marker.unwrap_or(""));
    if truncated {
        match entries.last() {
            Some(Entry::Version(v, _)) => {
                w.element("NextKeyMarker", &enc(&v.key))
                    .element("NextVersionIdMarker", crate::versioning::reported_id(v));
            }
            Some(Entry::CommonPrefix(cp)) => {
                w.element("NextKeyMarker", &enc(cp));
            }
            None => {}
        }
    }
    w.element("MaxKeys", &max.to_string());
    if let Some(d) = delimiter {
        w.element("Delimiter", &enc(d));
    }
    if url {
        w.element("EncodingType", "url");
    }
    w.element("IsTruncated", if truncated { "true" } else { "false" });
    for e in &entries {
        match e {
            Entry::Version(v, latest) => {
                let tag = if v.delete_marker {
                    "DeleteMarker"
                } else {
                    "Version"
                };
                w.start(tag)
                    .element("Key", &enc(&v.key))
                    .element("VersionId", crate::versioning::reported_id(v))
                    .element("IsLatest", if *latest { "true" } else { "false" })
                    .element("LastModified", &iso(v.last_modified_millis));
                if !v.delete_marker {
                    w.element("ETag", &quoted(&v.etag))
                        .element("Size", &v.size.to_string());
                }
                owner(&mut w, "Owner", &b.owner);
                if !v.delete_marker {
                    w.element("StorageClass", &v.storage_class);
                }
                w.end(tag);
            }
            Entry::CommonPrefix(cp) => {
                w.start("CommonPrefixes")
                    .element("Prefix", &enc(cp))
                    .end("CommonPrefixes");
            }
        }
    }
    w.end("ListVersionsResult");
    Ok(xml_response(StatusCode::OK, w.finish()))
}
