//! POST Object: browser form uploads (`multipart/form-data` to the bucket's URL). The form's
//! fields come first — the key (`${filename}` replaced), the base64 policy document and its
//! signature (SigV4 or SigV2), content headers, `x-amz-meta-*`, tagging, encryption,
//! `success_action_status` / `success_action_redirect` — then the file, streamed into the object
//! as a PUT's body is. The policy's expiration and conditions (exact matches, `eq`,
//! `starts-with`, `content-length-range`) are checked as S3 checks them, and every field must be
//! covered by a condition.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::task::{Context, Poll};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode};
use http_body::Frame;
use http_body_util::BodyExt;
use lakebox_core::{Principal, RequestContext, ServiceError};
use lakebox_protocol::Timestamp;
use lakebox_protocol::form_auth::FormSigner;
use lakebox_service::body::{Body, BoxError, empty, full};
use serde_json::Value;

use crate::api::S3Request;
use crate::errors;

/// The form fields before the file may not be larger than this.
const MAX_FIELDS_BYTES: usize = 64 * 1024;

/// Fields no policy condition has to name.
fn exempt(name: &str) -> bool {
    matches!(
        name,
        "policy" | "x-amz-signature" | "signature" | "awsaccesskeyid" | "file"
    ) || name.starts_with("x-ignore-")
}

/// The form as read up to the file: fields by lower-case name, the file's name, and the body
/// from the file's first byte on.
struct Form {
    fields: BTreeMap<String, String>,
    filename: String,
    file: Body,
}

fn malformed(why: &str) -> ServiceError {
    ServiceError::client(
        "MalformedPOSTRequest",
        format!("The body of your POST request is not well-formed multipart/form-data. ({why})"),
    )
}

fn boundary(headers: &HeaderMap) -> Option<String> {
    let ct = headers.get(http::header::CONTENT_TYPE)?.to_str().ok()?;
    ct.split(';').skip(1).find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `name="x"` (and `filename="y"`) of a part's Content-Disposition.
fn disposition(headers: &str) -> (Option<String>, Option<String>) {
    let mut name = None;
    let mut filename = None;
    for line in headers.split("\r\n") {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        if !k.trim().eq_ignore_ascii_case("content-disposition") {
            continue;
        }
        for p in v.split(';').skip(1) {
            if let Some((pk, pv)) = p.trim().split_once('=') {
                let pv = pv.trim().trim_matches('"').to_owned();
                match pk.trim().to_ascii_lowercase().as_str() {
                    "name" => name = Some(pv),
                    "filename" => filename = Some(pv),
                    _ => {}
                }
            }
        }
    }
    (name, filename)
}

/// Reads the fields up to the file part.
async fn read_form(mut body: Body, boundary: &str) -> Result<Form, ServiceError> {
    let first = format!("--{boundary}");
    let delimiter = format!("\r\n--{boundary}");
    let mut buf = BytesMut::new();
    let mut fields = BTreeMap::new();
    let mut pos: Option<usize> = None;
    loop {
        // Parse as many whole parts as the buffer holds.
        loop {
            let start = match pos {
                None => {
                    if buf.len() < first.len() + 2 {
                        break;
                    }
                    let at = find(&buf, first.as_bytes()).ok_or_else(|| malformed("no opening boundary"))?;
                    at + first.len()
                }
                Some(p) => p,
            };
            // After a boundary: "--" ends the form, "\r\n" starts a part.
            if buf.len() < start + 2 {
                pos = Some(start);
                break;
            }
            if &buf[start..start + 2] == b"--" {
                return Err(ServiceError::client(
                    "InvalidArgument",
                    "POST requires exactly one file upload per request.",
                )
                .with_extra("ArgumentName", "file")
                .with_extra("ArgumentValue", "0"));
            }
            let head_start = start + 2;
            let Some(head_len) = find(&buf[head_start..], b"\r\n\r\n") else {
                pos = Some(start);
                break;
            };
            let head = String::from_utf8_lossy(&buf[head_start..head_start + head_len]).into_owned();
            let content_start = head_start + head_len + 4;
            let (name, filename) = disposition(&head);
            let name = name
                .ok_or_else(|| malformed("a part without a name"))?
                .to_ascii_lowercase();
            if name == "file" {
                let rest = buf.split_off(content_start).freeze();
                let file = FileBody {
                    inner: body,
                    buf: BytesMut::from(&rest[..]),
                    delimiter: delimiter.into_bytes(),
                    done: false,
                };
                return Ok(Form {
                    fields,
                    filename: filename.unwrap_or_default(),
                    file: file.boxed_unsync(),
                });
            }
            let Some(len) = find(&buf[content_start..], delimiter.as_bytes()) else {
                pos = Some(start);
                break;
            };
            let value = String::from_utf8_lossy(&buf[content_start..content_start + len]).into_owned();
            fields.insert(name, value);
            pos = Some(content_start + len + delimiter.len());
        }
        if buf.len() > MAX_FIELDS_BYTES {
            return Err(ServiceError::client(
                "MaxPostPreDataLengthExceeded",
                "Your POST request fields preceding the upload file were too large.",
            ));
        }
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    buf.extend_from_slice(&data);
                }
            }
            Some(Err(e)) => return Err(ServiceError::client("IncompleteBody", e.to_string())),
            None => {
                return Err(ServiceError::client(
                    "InvalidArgument",
                    "POST requires exactly one file upload per request.",
                )
                .with_extra("ArgumentName", "file")
                .with_extra("ArgumentValue", "0"));
            }
        }
    }
}

/// The file part's bytes: the rest of the body up to the closing delimiter, streamed.
struct FileBody {
    inner: Body,
    buf: BytesMut,
    delimiter: Vec<u8>,
    done: bool,
}

impl http_body::Body for FileBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            if let Some(at) = find(&this.buf, &this.delimiter) {
                this.done = true;
                let data = this.buf.split_to(at).freeze();
                return Poll::Ready(Some(Ok(Frame::data(data))));
            }
            // All but a delimiter's length may go: the delimiter may start in what is kept.
            let keep = this.delimiter.len();
            if this.buf.len() > keep * 2 + 64 * 1024 {
                let n = this.buf.len() - keep;
                let data = this.buf.split_to(n).freeze();
                return Poll::Ready(Some(Ok(Frame::data(data))));
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => {
                    // Hand over what is certainly file data before waiting for more.
                    if this.buf.len() > keep {
                        let n = this.buf.len() - keep;
                        let data = this.buf.split_to(n).freeze();
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                    return Poll::Pending;
                }
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        this.buf.extend_from_slice(&data);
                    }
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(
                        "the form ended inside the file (no closing boundary)".into()
                    )));
                }
            }
        }
    }
}

/// "Invalid according to Policy: …", S3's words for a form its policy does not allow.
fn policy_denied(why: impl std::fmt::Display) -> ServiceError {
    ServiceError::new("AccessDenied", 403, format!("Invalid according to Policy: {why}"))
}

/// The policy's conditions: every one must hold, and every field must be named by one. Returns
/// the allowed size range.
fn check_policy(
    policy: &Value,
    fields: &BTreeMap<String, String>,
    bucket: &str,
    now_millis: i64,
) -> Result<(u64, u64), ServiceError> {
    let expiration = policy["expiration"]
        .as_str()
        .and_then(Timestamp::parse_iso8601)
        .ok_or_else(|| policy_denied("Policy Condition failed: expiration"))?;
    if expiration.as_millis() < now_millis {
        return Err(policy_denied("Policy expired."));
    }
    let conditions = policy["conditions"]
        .as_array()
        .ok_or_else(|| ServiceError::client("InvalidPolicyDocument", "Invalid Policy: Invalid JSON."))?;
    let value_of = |name: &str| -> Option<String> {
        let name = name.trim_start_matches('$').to_ascii_lowercase();
        if name == "bucket" {
            return Some(bucket.to_owned());
        }
        fields.get(&name).cloned()
    };
    let mut covered: Vec<String> = vec!["bucket".into()];
    let mut range = (0u64, u64::MAX);
    for c in conditions {
        let failed = || policy_denied(format!("Policy Condition failed: {c}"));
        match c {
            Value::Object(o) => {
                for (k, v) in o {
                    let want = v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string());
                    if value_of(k).as_deref() != Some(want.as_str()) {
                        return Err(failed());
                    }
                    covered.push(k.to_ascii_lowercase());
                }
            }
            Value::Array(items) => {
                let op = items
                    .first()
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                match op.as_str() {
                    "content-length-range" => {
                        let n = |i: usize| {
                            items
                                .get(i)
                                .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
                        };
                        let (Some(lo), Some(hi)) = (n(1), n(2)) else {
                            return Err(ServiceError::client(
                                "InvalidPolicyDocument",
                                "Invalid Policy: Invalid content-length-range condition.",
                            ));
                        };
                        range = (lo, hi);
                    }
                    "eq" | "starts-with" => {
                        let (Some(name), Some(want)) = (
                            items.get(1).and_then(Value::as_str),
                            items.get(2).and_then(Value::as_str),
                        ) else {
                            return Err(ServiceError::client(
                                "InvalidPolicyDocument",
                                format!("Invalid Policy: Invalid Simple-Condition: {c}"),
                            ));
                        };
                        let got = value_of(name).unwrap_or_default();
                        let ok = if op == "eq" {
                            got == want
                        } else if name.eq_ignore_ascii_case("$content-type") {
                            // Content-Type may list several values, each must match.
                            got.split(',').all(|v| v.trim().starts_with(want))
                        } else {
                            got.starts_with(want)
                        };
                        if !ok {
                            return Err(failed());
                        }
                        covered.push(name.trim_start_matches('$').to_ascii_lowercase());
                    }
                    _ => {
                        return Err(ServiceError::client(
                            "InvalidPolicyDocument",
                            format!("Invalid Policy: Invalid Condition: {c}"),
                        ));
                    }
                }
            }
            _ => {
                return Err(ServiceError::client(
                    "InvalidPolicyDocument",
                    format!("Invalid Policy: Invalid Condition: {c}"),
                ));
            }
        }
    }
    let extra: Vec<&str> = fields
        .keys()
        .map(String::as_str)
        .filter(|f| !exempt(f) && !covered.iter().any(|c| c == f))
        .collect();
    if let Some(first) = extra.first() {
        return Err(policy_denied(format!("Extra input fields: {first}")));
    }
    Ok(range)
}

/// Who signed the form (`None`: no policy, an anonymous upload).
fn verify_signature(
    req: &S3Request,
    fields: &BTreeMap<String, String>,
) -> Result<Option<FormSigner>, ServiceError> {
    let Some(policy) = fields.get("policy") else {
        return Ok(None);
    };
    let auth = req.form_auth.clone().unwrap_or_default();
    let style = lakebox_protocol::sigv4::ErrorStyle::S3;
    let signer = if let Some(credential) = fields.get("x-amz-credential") {
        match fields.get("x-amz-algorithm").map(String::as_str) {
            Some("AWS4-HMAC-SHA256") => {}
            _ => {
                return Err(errors::invalid_argument(
                    "POST form with x-amz-credential must have x-amz-algorithm AWS4-HMAC-SHA256",
                    "x-amz-algorithm",
                    fields.get("x-amz-algorithm").map_or("", String::as_str),
                ));
            }
        }
        let sig = fields.get("x-amz-signature").ok_or_else(|| {
            errors::invalid_argument(
                "Bucket POST must contain a field named 'x-amz-signature'.",
                "x-amz-signature",
                "",
            )
        })?;
        auth.verify_v4(credential, policy, sig)
    } else if let Some(key) = fields.get("awsaccesskeyid") {
        let sig = fields.get("signature").ok_or_else(|| {
            errors::invalid_argument(
                "Bucket POST must contain a field named 'Signature'.",
                "Signature",
                "",
            )
        })?;
        auth.verify_v2(key, policy, sig)
    } else {
        return Err(errors::invalid_argument(
            "Bucket POST must contain a field named 'AWSAccessKeyId'.  If it is specified, please check the order of the fields.",
            "AWSAccessKeyId",
            "",
        ));
    };
    signer.map(Some).map_err(|e| e.to_service_error(style))
}

/// The form fields that become the object's headers, as a PUT would carry them.
fn headers_of(fields: &BTreeMap<String, String>) -> Result<HeaderMap, ServiceError> {
    let mut h = HeaderMap::new();
    for (name, value) in fields {
        let header = match name.as_str() {
            "content-type" | "cache-control" | "content-disposition" | "content-encoding" | "expires" => {
                name.clone()
            }
            "x-amz-storage-class"
            | "x-amz-server-side-encryption"
            | "x-amz-server-side-encryption-aws-kms-key-id" => name.clone(),
            "tagging" => {
                h.insert("x-amz-tagging", tagging_query(value)?);
                continue;
            }
            // The object's canned ACL, applied as PutObject's `x-amz-acl`.
            "acl" => "x-amz-acl".to_owned(),
            n if n.starts_with("x-amz-meta-") => name.clone(),
            _ => continue,
        };
        let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(header.as_bytes()),
            HeaderValue::from_str(value),
        ) else {
            return Err(errors::invalid_argument("Invalid form field value", name, value));
        };
        h.insert(k, v);
    }
    Ok(h)
}

/// A form's `tagging` (a `<Tagging>` document) as the `x-amz-tagging` header's query string.
fn tagging_query(doc: &str) -> Result<HeaderValue, ServiceError> {
    let root = lakebox_protocol::xml::parse(doc.as_bytes()).map_err(|_| errors::malformed_document())?;
    let enc =
        |s: &str| percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string();
    let pairs: Vec<String> = root
        .child("TagSet")
        .into_iter()
        .flat_map(|t| t.children_named("Tag"))
        .map(|t| {
            format!(
                "{}={}",
                enc(t.child_text("Key").unwrap_or_default()),
                enc(t.child_text("Value").unwrap_or_default())
            )
        })
        .collect();
    HeaderValue::from_str(&pairs.join("&")).map_err(|_| errors::malformed_document())
}

/// A query-string value (in the redirect): unreserved characters as they are.
fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, crate::list::URL_ENCODE)
        .to_string()
        .replace('/', "%2F")
}

pub async fn post_object(
    store: &std::sync::Arc<crate::store::ObjectStore>,
    mut req: S3Request,
) -> Result<Response<Body>, ServiceError> {
    let bucket = req.bucket.clone().unwrap_or_default();
    let boundary = boundary(&req.headers).ok_or_else(|| malformed("no boundary in Content-Type"))?;
    let body = std::mem::replace(&mut req.body, empty());
    let form = read_form(body, &boundary).await?;
    let fields = form.fields;
    let key_template = fields.get("key").ok_or_else(|| {
        errors::invalid_argument(
            "Bucket POST must contain a field named 'key'.  If it is specified, please check the order of the fields.",
            "key",
            "",
        )
    })?;
    let signer = verify_signature(&req, &fields)?;
    let range = match (&signer, fields.get("policy")) {
        (Some(_), Some(p)) => {
            let doc = B64
                .decode(p.trim())
                .ok()
                .and_then(|d| serde_json::from_slice::<Value>(&d).ok())
                .ok_or_else(|| {
                    ServiceError::client("InvalidPolicyDocument", "Invalid Policy: Invalid JSON.")
                })?;
            check_policy(&doc, &fields, &bucket, store.now_millis())?
        }
        // No policy: an anonymous upload, which only the bucket's policy can allow.
        _ => (0, u64::MAX),
    };
    let key = key_template.replace("${filename}", &form.filename);
    let who = match &signer {
        Some(s) => {
            lakebox_policy::Principal::root_of(RequestContext::account_for_access_key(&s.access_key_id))
        }
        None if req.form_auth.as_ref().is_some_and(|a| a.is_verifying()) => {
            lakebox_policy::Principal::Anonymous
        }
        None => crate::access::requester(&req),
    };
    crate::access::check(store, Some(&req), &who, "s3:PutObject", &bucket, Some(&key))?;
    // The signer acts in its account, as a signed PUT would.
    let mut ctx = req.ctx.clone();
    if let Some(s) = &signer {
        ctx.account_id = RequestContext::account_for_access_key(&s.access_key_id);
        ctx.principal = Some(Principal {
            access_key_id: s.access_key_id.clone(),
        });
        if let Some(r) = &s.region {
            ctx.region = r.clone();
        }
    }
    let put = S3Request {
        ctx,
        method: Method::PUT,
        bucket: Some(bucket.clone()),
        key: Some(key.clone()),
        query: Vec::new(),
        headers: headers_of(&fields)?,
        body: form.file,
        host: req.host.clone(),
        chunk_signer: None,
        operation: None,
        peer_is_loopback: req.peer_is_loopback,
        remote_ip: req.remote_ip,
        form_auth: None,
        anonymous: signer.is_none() && req.anonymous,
        control: None,
    };
    let stored = crate::object::store_object(store, put, "ObjectCreated:Post", Some(range)).await?;
    let record = &stored.record;
    let etag = format!("\"{}\"", record.etag);
    let path = |s: &str| percent_encoding::utf8_percent_encode(s, crate::list::URL_ENCODE).to_string();
    let location = format!("http://{}/{}/{}", req.host, path(&bucket), path(&key));
    if let Some(url) = fields
        .get("success_action_redirect")
        .or_else(|| fields.get("redirect"))
        .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
    {
        let sep = if url.contains('?') { '&' } else { '?' };
        let target = format!(
            "{url}{sep}bucket={}&key={}&etag={}",
            encode(&bucket),
            encode(&key),
            encode(&etag)
        );
        let mut resp = Response::new(empty());
        *resp.status_mut() = StatusCode::SEE_OTHER;
        crate::api::set_header(&mut resp, "location", &target);
        crate::api::set_header(&mut resp, "etag", &etag);
        return Ok(resp);
    }
    let status = fields.get("success_action_status").map(String::as_str);
    let mut resp = match status {
        Some("201") => {
            let xml = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<PostResponse><Location>{}</Location><Bucket>{}</Bucket><Key>{}</Key><ETag>{}</ETag></PostResponse>",
                lakebox_protocol::xml::escape(&location),
                lakebox_protocol::xml::escape(&bucket),
                lakebox_protocol::xml::escape(&key),
                lakebox_protocol::xml::escape(&etag)
            );
            let mut r = Response::new(full(xml));
            *r.status_mut() = StatusCode::CREATED;
            crate::api::set_header(&mut r, "content-type", "application/xml");
            r
        }
        Some("200") => {
            let mut r = Response::new(empty());
            *r.status_mut() = StatusCode::OK;
            r
        }
        _ => {
            let mut r = Response::new(empty());
            *r.status_mut() = StatusCode::NO_CONTENT;
            r
        }
    };
    crate::api::set_header(&mut resp, "etag", &etag);
    crate::api::set_header(&mut resp, "location", &location);
    crate::object::finish_put_headers(&mut resp, store, &bucket, &stored);
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn policy_conditions_are_checked_and_must_cover_every_field() {
        let policy = serde_json::json!({"expiration": "2030-01-01T00:00:00Z", "conditions": [
            {"bucket": "b"}, ["starts-with", "$key", "uploads/"], {"acl": "private"},
            ["content-length-range", 1, 100], ["eq", "$Content-Type", "text/plain"]]});
        let ok = fields(&[
            ("key", "uploads/a.txt"),
            ("acl", "private"),
            ("content-type", "text/plain"),
            ("policy", "x"),
            ("x-ignore-me", "1"),
        ]);
        assert_eq!(check_policy(&policy, &ok, "b", 0).unwrap(), (1, 100));
        let mut bad_key = ok.clone();
        bad_key.insert("key".into(), "elsewhere/a.txt".into());
        let e = check_policy(&policy, &bad_key, "b", 0).unwrap_err();
        assert_eq!(
            e.message,
            r#"Invalid according to Policy: Policy Condition failed: ["starts-with","$key","uploads/"]"#
        );
        let mut extra = ok.clone();
        extra.insert("x-amz-meta-color".into(), "red".into());
        assert_eq!(
            check_policy(&policy, &extra, "b", 0).unwrap_err().message,
            "Invalid according to Policy: Extra input fields: x-amz-meta-color"
        );
        assert!(check_policy(&policy, &ok, "other", 0).is_err());
        let expired = serde_json::json!({"expiration": "2020-01-01T00:00:00Z", "conditions": []});
        assert_eq!(
            check_policy(&expired, &BTreeMap::new(), "b", 1_700_000_000_000)
                .unwrap_err()
                .message,
            "Invalid according to Policy: Policy expired."
        );
    }
}
