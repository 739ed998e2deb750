//! Multipart uploads: create, upload part (and part copy), complete, abort, list parts and
//! uploads. Parts are blobs of their own; a completed object is the list of its parts' blobs,
//! so completing costs one metadata transaction, not a copy.

use std::sync::Arc;

use http::{Response, StatusCode};
use lakebox_core::{ServiceError, ids};
use lakebox_service::Body;

use lakebox_protocol::xml::XmlWriter;

use crate::api::{S3Request, empty_response, set_header, xml_response};
use crate::errors;
use crate::object::{
    ObjectAttributes, check_key, copy_data, copy_source, object_attributes, parse_range,
    set_checksum_headers, write_condition,
};
use crate::store::{ObjectStore, PartRecord, RequestedPart, UploadRecord};
use crate::upload;
use crate::xml::{doc, iso, owner, quoted};

fn upload_id(req: &S3Request) -> &str {
    req.query("uploadId").unwrap_or_default()
}

/// The upload, if it belongs to this bucket and key.
fn find_upload(store: &ObjectStore, req: &S3Request) -> Result<UploadRecord, ServiceError> {
    let bucket = req.bucket.as_deref().unwrap_or_default();
    store.existing_bucket(bucket)?;
    let up = store.upload(bucket, upload_id(req))?;
    if Some(up.key.as_str()) != req.key.as_deref() {
        return Err(errors::no_such_upload(upload_id(req)));
    }
    Ok(up)
}

pub async fn create(store: &Arc<ObjectStore>, req: S3Request) -> Result<Response<Body>, ServiceError> {
    let bucket = req.bucket.as_deref().unwrap_or_default();
    let key = req.key.clone().unwrap_or_default();
    check_key(&key)?;
    store.existing_bucket(bucket)?;
    let ObjectAttributes {
        content,
        user_metadata,
        storage_class,
    } = object_attributes(&req.headers)?;
    let checksum_algorithm = req
        .header("x-amz-checksum-algorithm")
        .map(str::to_ascii_uppercase);
    let checksum_type = checksum_type(checksum_algorithm.as_deref(), req.header("x-amz-checksum-type"))?;
    let record = UploadRecord {
        checksum_type,
        upload_id: ids::random_hex(64),
        key: key.clone(),
        initiated_millis: store.now_millis(),
        owner: req.ctx.account_id.clone(),
        content,
        user_metadata,
        storage_class,
        checksum_algorithm,
        tags: crate::config::tagging_header(&req)?,
        lock: crate::object_lock::for_new_version(store, &req, bucket)?,
        acl: crate::acl::for_new_object(store, &req, bucket)?,
        sse: crate::object::requested_sse(
            store,
            &req,
            bucket,
            crate::sse_c::from_request(&req, crate::sse_c::OBJECT)?.as_ref(),
        )?,
    };
    store.create_upload(bucket, record.clone()).await?;
    let mut w = doc("InitiateMultipartUploadResult");
    w.element("Bucket", bucket)
        .element("Key", &key)
        .element("UploadId", &record.upload_id);
    w.end("InitiateMultipartUploadResult");
    let mut resp = xml_response(StatusCode::OK, w.finish());
    crate::object::sse_headers(&mut resp, &record.sse);
    if let Some(a) = &record.checksum_algorithm {
        set_header(&mut resp, "x-amz-checksum-algorithm", a);
    }
    if let Some(t) = &record.checksum_type {
        set_header(&mut resp, "x-amz-checksum-type", t);
    }
    Ok(resp)
}

/// The object checksum an upload will get: `COMPOSITE` (a checksum of the part checksums) or
/// `FULL_OBJECT` (the CRC of the whole object, combined from the parts' CRCs). CRC64NVME is
/// always FULL_OBJECT; SHA1 and SHA256 are always COMPOSITE; CRC32 and CRC32C take either, and
/// are COMPOSITE unless asked.
fn checksum_type(algorithm: Option<&str>, asked: Option<&str>) -> Result<Option<String>, ServiceError> {
    let asked = asked.map(str::to_ascii_uppercase);
    let Some(algorithm) = algorithm else {
        return match asked {
            Some(_) => Err(errors::invalid_request(
                "The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header.",
            )),
            None => Ok(None),
        };
    };
    let kind = match (algorithm, asked.as_deref()) {
        (_, Some(t)) if t != "COMPOSITE" && t != "FULL_OBJECT" => {
            return Err(errors::invalid_argument(
                "Value for x-amz-checksum-type header is invalid.",
                "x-amz-checksum-type",
                t,
            ));
        }
        ("CRC64NVME", Some("COMPOSITE")) => {
            return Err(errors::invalid_request(
                "The COMPOSITE checksum type cannot be used with the crc64nvme checksum algorithm.",
            ));
        }
        ("SHA1" | "SHA256", Some("FULL_OBJECT")) => {
            return Err(errors::invalid_request(format!(
                "The FULL_OBJECT checksum type cannot be used with the {} checksum algorithm.",
                algorithm.to_ascii_lowercase()
            )));
        }
        ("CRC64NVME", _) => "FULL_OBJECT",
        (_, Some(t)) => t,
        _ => "COMPOSITE",
    };
    Ok(Some(kind.to_owned()))
}

/// `partNumber`: 1 to 10,000 (`InvalidArgument` otherwise).
pub fn part_number(req: &S3Request) -> Result<u32, ServiceError> {
    let raw = req.query("partNumber").unwrap_or_default();
    raw.parse::<u32>()
        .ok()
        .filter(|n| (1..=10_000).contains(n))
        .ok_or_else(|| {
            errors::invalid_argument(
                "Part number must be an integer between 1 and 10000, inclusive",
                "partNumber",
                raw,
            )
        })
}

pub async fn upload_part(store: &Arc<ObjectStore>, req: S3Request) -> Result<Response<Body>, ServiceError> {
    let number = part_number(&req)?;
    // Parts are sealed at rest when the upload asked for encryption; with SSE-C, every part
    // must carry the upload's customer key.
    let upload_sse = find_upload(store, &req)?.sse;
    let customer_key = crate::sse_c::from_request(&req, crate::sse_c::OBJECT)?;
    let keys = crate::sse_c::keys_for(upload_sse.as_ref(), customer_key.as_ref())?;
    let encrypt = upload_sse.is_some().then_some(keys);
    let bucket = req.bucket.clone().unwrap_or_default();
    let id = upload_id(&req).to_owned();
    if req.header("x-amz-copy-source").is_some() {
        let mut resp = upload_part_copy(store, req, &bucket, &id, number, encrypt).await?;
        crate::object::sse_headers(&mut resp, &upload_sse);
        return Ok(resp);
    }
    let received = upload::receive(
        store,
        &req.headers,
        req.body,
        false,
        encrypt,
        req.chunk_signer.clone(),
    )
    .await?;
    let part = PartRecord {
        part_number: number,
        etag: received.md5_hex,
        size: received.size,
        last_modified_millis: store.now_millis(),
        blob: received.blob,
        checksum: received.checksum,
        encrypted: received.encrypted,
    };
    store.put_part(&bucket, &id, part.clone()).await?;
    let mut resp = empty_response(StatusCode::OK);
    set_header(&mut resp, "etag", &quoted(&part.etag));
    if let Some(c) = &part.checksum {
        set_checksum_headers(&mut resp, c);
    }
    crate::object::sse_headers(&mut resp, &upload_sse);
    Ok(resp)
}

async fn upload_part_copy(
    store: &Arc<ObjectStore>,
    req: S3Request,
    bucket: &str,
    id: &str,
    number: u32,
    encrypt: Option<crate::sse::KeySource>,
) -> Result<Response<Body>, ServiceError> {
    let (src, src_keys) = copy_source(store, &req)?;
    let (start, len) = match req.header("x-amz-copy-source-range") {
        Some(r) => match parse_range(r, src.size) {
            Ok(Some((a, b))) if r.trim().starts_with("bytes=") && !r.contains("=-") => (a, b - a + 1),
            _ => {
                return Err(errors::invalid_argument(
                    "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy",
                    "x-amz-copy-source-range",
                    r,
                ));
            }
        },
        None => (0, src.size),
    };
    if len > upload::MAX_UPLOAD_BYTES {
        return Err(errors::entity_too_large(len, upload::MAX_UPLOAD_BYTES));
    }
    let (blob, md5) = copy_data(store, &src, start, len, src_keys, encrypt).await?;
    let part = PartRecord {
        part_number: number,
        etag: md5,
        size: len,
        last_modified_millis: store.now_millis(),
        blob,
        checksum: None,
        encrypted: encrypt.is_some(),
    };
    store.put_part(bucket, id, part.clone()).await?;
    let mut w = doc("CopyPartResult");
    w.element("LastModified", &iso(part.last_modified_millis))
        .element("ETag", &quoted(&part.etag));
    w.end("CopyPartResult");
    Ok(xml_response(StatusCode::OK, w.finish()))
}

pub async fn complete(store: &Arc<ObjectStore>, mut req: S3Request) -> Result<Response<Body>, ServiceError> {
    let upload = find_upload(store, &req)?;
    let bucket = req.bucket.clone().unwrap_or_default();
    let root = req.xml_document("CompleteMultipartUpload").await?;
    let malformed = errors::malformed_document;
    let mut requested = Vec::new();
    for p in root.children_named("Part") {
        let number = p
            .child_text("PartNumber")
            .and_then(|n| n.trim().parse::<u32>().ok())
            .ok_or_else(malformed)?;
        let etag = p
            .child_text("ETag")
            .ok_or_else(malformed)?
            .trim()
            .trim_matches('"')
            .to_owned();
        // A part's checksum, when the request names one, must be the one it was uploaded with.
        let checksum = p.children.iter().find_map(|c| {
            let algorithm = c
                .name
                .strip_prefix("Checksum")
                .filter(|a| !a.is_empty() && *a != "Type")?;
            Some((algorithm.to_owned(), c.text.trim().to_owned()))
        });
        requested.push(RequestedPart {
            number,
            etag,
            checksum,
        });
    }
    let condition = write_condition(&req.headers)?;
    // The whole object's checksum, when the request states it, must be the one the parts make.
    let claimed = crate::upload::CHECKSUM_ALGORITHMS.iter().find_map(|a| {
        req.header(&format!("x-amz-checksum-{a}"))
            .map(|v| (a.to_ascii_uppercase(), v.trim().to_owned()))
    });
    let claimed_type = req.header("x-amz-checksum-type").map(str::to_ascii_uppercase);
    let record = store
        .complete_upload(&bucket, &upload.upload_id, &requested, condition, |computed| {
            let Some((algorithm, value)) = &claimed else {
                return Ok(());
            };
            let bad = || {
                ServiceError::client(
                    "BadDigest",
                    format!(
                        "The {} you specified did not match the calculated checksum.",
                        algorithm.to_ascii_lowercase()
                    ),
                )
            };
            let c = computed.ok_or_else(bad)?;
            // A composite value may be given with or without its "-<parts>" suffix.
            let bare = c.value.split_once('-').map_or(c.value.as_str(), |(v, _)| v);
            let same = c.algorithm == *algorithm && (value == &c.value || value == bare);
            let type_ok = claimed_type.as_deref().is_none_or(|t| t == c.kind);
            if same && type_ok { Ok(()) } else { Err(bad()) }
        })
        .await?;
    crate::notify::object_event(
        store,
        &bucket,
        &record.key,
        crate::notify::Change::Created("ObjectCreated:CompleteMultipartUpload", &record),
        &crate::notify::Origin::of(&req.ctx, req.remote_ip),
    )
    .await?;
    let mut w = doc("CompleteMultipartUploadResult");
    w.element(
        "Location",
        &format!("http://{}/{bucket}/{}", req.host, upload.key),
    )
    .element("Bucket", &bucket)
    .element("Key", &upload.key)
    .element("ETag", &quoted(&record.etag));
    if let Some(c) = &record.checksum {
        w.element(&format!("Checksum{}", c.algorithm), &c.value)
            .element("ChecksumType", &c.kind);
    }
    w.end("CompleteMultipartUploadResult");
    let mut resp = xml_response(StatusCode::OK, w.finish());
    crate::object::sse_headers(&mut resp, &record.sse);
    let versioned = store.bucket(&bucket)?.is_some_and(|b| b.versioning.is_some());
    crate::object::version_header(&mut resp, &record, versioned);
    crate::object::expiration_header(&mut resp, store, &bucket, &record);
    Ok(resp)
}

pub async fn abort(store: &Arc<ObjectStore>, req: S3Request) -> Result<Response<Body>, ServiceError> {
    let up = find_upload(store, &req)?;
    store
        .abort_upload(req.bucket.as_deref().unwrap_or_default(), &up.upload_id)
        .await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

fn int_param(req: &S3Request, name: &str, default: usize) -> Result<usize, ServiceError> {
    whole_number(req.query(name), name, default)
}

/// The same read from a header (GetObjectAttributes' `x-amz-max-parts`).
pub fn int_param_header(req: &S3Request, name: &str, default: usize) -> Result<usize, ServiceError> {
    whole_number(req.header(name), name, default)
}

fn whole_number(value: Option<&str>, name: &str, default: usize) -> Result<usize, ServiceError> {
    match value {
        None => Ok(default),
        Some(v) => v.trim().parse::<usize>().map_err(|_| {
            errors::invalid_argument(
                format!("Provided {name} not an integer or within integer range"),
                name,
                v,
            )
        }),
    }
}

/// Where a page of parts starts and ends (ListParts, GetObjectAttributes' ObjectParts).
pub fn part_page(w: &mut XmlWriter, marker: u32, last: Option<u32>, max: usize, truncated: bool) {
    w.element("PartNumberMarker", &marker.to_string());
    if let Some(last) = last {
        w.element("NextPartNumberMarker", &last.to_string());
    }
    w.element("MaxParts", &max.to_string())
        .element("IsTruncated", if truncated { "true" } else { "false" });
}

pub fn list_parts(store: &Arc<ObjectStore>, req: &S3Request) -> Result<Response<Body>, ServiceError> {
    let up = find_upload(store, req)?;
    let bucket = req.bucket.as_deref().unwrap_or_default();
    let max = int_param(req, "max-parts", 1000)?.min(1000);
    let marker = int_param(req, "part-number-marker", 0)? as u32;
    let parts: Vec<PartRecord> = store
        .list_parts(&up.upload_id)?
        .into_iter()
        .filter(|p| p.part_number > marker)
        .collect();
    let truncated = parts.len() > max;
    let shown = &parts[..parts.len().min(max)];
    let mut w = doc("ListPartsResult");
    w.element("Bucket", bucket)
        .element("Key", &up.key)
        .element("UploadId", &up.upload_id);
    part_page(
        &mut w,
        marker,
        shown.last().map(|p| p.part_number),
        max,
        truncated,
    );
    for p in shown {
        w.start("Part")
            .element("PartNumber", &p.part_number.to_string())
            .element("LastModified", &iso(p.last_modified_millis))
            .element("ETag", &quoted(&p.etag))
            .element("Size", &p.size.to_string());
        if let Some(c) = &p.checksum {
            w.element(&format!("Checksum{}", c.algorithm), &c.value);
        }
        w.end("Part");
    }
    owner(&mut w, "Initiator", &up.owner);
    owner(&mut w, "Owner", &up.owner);
    w.element("StorageClass", &up.storage_class);
    if let Some(a) = &up.checksum_algorithm {
        w.element("ChecksumAlgorithm", a);
    }
    w.end("ListPartsResult");
    Ok(xml_response(StatusCode::OK, w.finish()))
}

pub fn list_uploads(store: &Arc<ObjectStore>, req: &S3Request) -> Result<Response<Body>, ServiceError> {
    let bucket = req.bucket.as_deref().unwrap_or_default();
    store.existing_bucket(bucket)?;
    let prefix = req.query("prefix").unwrap_or("");
    let max = int_param(req, "max-uploads", 1000)?.min(1000);
    let key_marker = req.query("key-marker").unwrap_or("");
    let id_marker = req.query("upload-id-marker").unwrap_or("");
    let mut uploads: Vec<UploadRecord> = store
        .list_uploads(bucket)?
        .into_iter()
        .filter(|u| u.key.starts_with(prefix))
        .filter(|u| {
            key_marker.is_empty()
                || u.key.as_str() > key_marker
                || (u.key == key_marker && !id_marker.is_empty() && u.upload_id.as_str() > id_marker)
        })
        .collect();
    // S3 orders uploads by key, then by initiation time.
    uploads.sort_by(|a, b| {
        a.key
            .cmp(&b.key)
            .then(a.initiated_millis.cmp(&b.initiated_millis))
    });
    let truncated = uploads.len() > max;
    uploads.truncate(max);
    let mut w = doc("ListMultipartUploadsResult");
    w.element("Bucket", bucket)
        .element("KeyMarker", key_marker)
        .element("UploadIdMarker", id_marker);
    if truncated && let Some(last) = uploads.last() {
        w.element("NextKeyMarker", &last.key)
            .element("NextUploadIdMarker", &last.upload_id);
    }
    w.element("Prefix", prefix)
        .element("MaxUploads", &max.to_string())
        .element("IsTruncated", if truncated { "true" } else { "false" });
    for u in &uploads {
        w.start("Upload")
            .element("Key", &u.key)
            .element("UploadId", &u.upload_id);
        owner(&mut w, "Initiator", &u.owner);
        owner(&mut w, "Owner", &u.owner);
        w.element("StorageClass", &u.storage_class)
            .element("Initiated", &iso(u.initiated_millis))
            .end("Upload");
    }
    w.end("ListMultipartUploadsResult");
    Ok(xml_response(StatusCode::OK, w.finish()))
}
