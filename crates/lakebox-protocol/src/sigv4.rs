//! AWS Signature Version 4: reading who signed a request, and checking the signature.
//!
//! Reading (always on) gives the gateway the access key and the credential scope's region and
//! service, which decide the account, the region and, for awsQuery and REST, the service.
//! Verifying (on with `--credentials`) rebuilds the canonical request the client signed and
//! compares signatures in constant time.

use hmac::{Hmac, Mac};
use http::HeaderMap;
use lakebox_core::ServiceError;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha2::{Digest, Sha256};

use crate::Timestamp;

type HmacSha256 = Hmac<Sha256>;

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// How far a request's signing time may be from the server's clock.
pub const MAX_SKEW_MILLIS: i64 = 15 * 60 * 1000;
/// The longest validity a presigned URL may ask for (7 days).
pub const MAX_PRESIGN_EXPIRES_SECS: i64 = 604_800;
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// `<access key>/<yyyymmdd>/<region>/<service>/aws4_request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialScope {
    pub access_key_id: String,
    pub date: String,
    pub region: String,
    pub service: String,
}

impl CredentialScope {
    /// `AKID/date/region/service/aws4_request`.
    pub fn parse(s: &str) -> Result<Self, AuthError> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [key, date, region, service, "aws4_request"] if !key.is_empty() => Ok(CredentialScope {
                access_key_id: (*key).to_owned(),
                date: (*date).to_owned(),
                region: (*region).to_owned(),
                service: (*service).to_owned(),
            }),
            _ => Err(AuthError::Malformed(format!(
                "Credential should be scoped to a valid region, service and date, not '{s}'"
            ))),
        }
    }

    fn scope_string(&self) -> String {
        format!("{}/{}/{}/aws4_request", self.date, self.region, self.service)
    }
}

/// What a request says about its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequest {
    pub scope: CredentialScope,
    /// Lower-case header names, in the order given.
    pub signed_headers: Vec<String>,
    pub signature: String,
    /// The signing time, from `X-Amz-Date` (header or query) or the `Date` header.
    pub amz_date: Option<Timestamp>,
    /// The raw `X-Amz-Date` text (it is part of the string to sign as sent).
    pub amz_date_raw: String,
    /// `Some(seconds)` for a presigned URL.
    pub presigned_expires: Option<i64>,
}

/// Who a request claims to be, from whichever signature form it uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authorization {
    /// No signature at all.
    Anonymous,
    SigV4(SignedRequest),
    /// S3's legacy SigV2 (`AWS key:sig`, presigned `AWSAccessKeyId=`); see [`crate::sigv2`].
    Legacy(crate::sigv2::SignedV2),
}

/// Why authentication failed; rendered per protocol by [`AuthError::to_service_error`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    Missing,
    Malformed(String),
    UnknownAccessKey(String),
    SignatureMismatch {
        canonical_request: String,
        string_to_sign: String,
    },
    /// Request time more than 15 minutes before (`ahead = false`) or after the server clock.
    Skewed {
        request: Timestamp,
        server: Timestamp,
        ahead: bool,
    },
    Expired,
    Unsupported(String),
    /// `x-amz-*` headers the signature does not cover: a captured request must not be
    /// replayable with, say, `x-amz-copy-source` or `x-amz-meta-*` added.
    HeadersNotSigned(Vec<String>),
}

/// The protocol families whose auth errors differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorStyle {
    Json,
    Query,
    S3,
}

impl AuthError {
    /// The error AWS returns for this failure in this protocol family.
    pub fn to_service_error(&self, style: ErrorStyle) -> ServiceError {
        use ErrorStyle::*;
        let mismatch = "The request signature we calculated does not match the signature you \
                        provided. Check your AWS Secret Access Key and signing method. Consult \
                        the service documentation for details.";
        match (self, style) {
            (AuthError::Missing, Json) => ServiceError::new(
                "MissingAuthenticationTokenException",
                400,
                "Missing Authentication Token",
            ),
            (AuthError::Missing, Query) => ServiceError::new(
                "MissingAuthenticationToken",
                403,
                "Request is missing Authentication Token",
            ),
            (AuthError::Missing, S3) => ServiceError::new("AccessDenied", 403, "Access Denied"),
            (AuthError::Malformed(m), Json) => {
                ServiceError::new("IncompleteSignatureException", 400, m.clone())
            }
            (AuthError::Malformed(m), Query) => ServiceError::new("IncompleteSignature", 403, m.clone()),
            (AuthError::Malformed(m), S3) => {
                ServiceError::new("AuthorizationHeaderMalformed", 400, m.clone())
            }
            (AuthError::UnknownAccessKey(_), Json) => ServiceError::new(
                "UnrecognizedClientException",
                400,
                "The security token included in the request is invalid.",
            ),
            (AuthError::UnknownAccessKey(_), Query) => ServiceError::new(
                "InvalidClientTokenId",
                403,
                "The security token included in the request is invalid.",
            ),
            (AuthError::UnknownAccessKey(k), S3) => ServiceError::new(
                "InvalidAccessKeyId",
                403,
                "The AWS Access Key Id you provided does not exist in our records.",
            )
            .with_extra("AWSAccessKeyId", k.clone()),
            (AuthError::SignatureMismatch { .. }, Json) => {
                ServiceError::new("InvalidSignatureException", 400, mismatch)
            }
            (AuthError::SignatureMismatch { .. }, Query) => {
                ServiceError::new("SignatureDoesNotMatch", 403, mismatch)
            }
            (
                AuthError::SignatureMismatch {
                    canonical_request,
                    string_to_sign,
                },
                S3,
            ) => ServiceError::new(
                "SignatureDoesNotMatch",
                403,
                "The request signature we calculated does not match the signature you \
                     provided. Check your key and signing method.",
            )
            .with_extra("StringToSign", string_to_sign.clone())
            .with_extra("CanonicalRequest", canonical_request.clone()),
            (AuthError::Skewed { request, server, .. }, S3) => ServiceError::new(
                "RequestTimeTooSkewed",
                403,
                "The difference between the request time and the current time is too large.",
            )
            .with_extra("RequestTime", request.to_http_date())
            .with_extra("ServerTime", server.to_iso8601())
            .with_extra("MaxAllowedSkewMilliseconds", MAX_SKEW_MILLIS.to_string()),
            (
                AuthError::Skewed {
                    request,
                    server,
                    ahead,
                },
                style,
            ) => {
                let code = if style == Json {
                    "InvalidSignatureException"
                } else {
                    "SignatureDoesNotMatch"
                };
                let status = if style == Json { 400 } else { 403 };
                let message = if *ahead {
                    format!(
                        "Signature not yet current: {} is still later than {} ({} + 15 min.)",
                        request.to_amz_date(),
                        Timestamp::from_millis(server.as_millis() + MAX_SKEW_MILLIS).to_amz_date(),
                        server.to_amz_date()
                    )
                } else {
                    format!(
                        "Signature expired: {} is now earlier than {} ({} - 15 min.)",
                        request.to_amz_date(),
                        Timestamp::from_millis(server.as_millis() - MAX_SKEW_MILLIS).to_amz_date(),
                        server.to_amz_date()
                    )
                };
                ServiceError::new(code, status, message)
            }
            (AuthError::Expired, S3) => ServiceError::new("AccessDenied", 403, "Request has expired"),
            (AuthError::Expired, Json) => {
                ServiceError::new("InvalidSignatureException", 400, "Signature expired")
            }
            (AuthError::Expired, Query) => {
                ServiceError::new("SignatureDoesNotMatch", 403, "Signature expired")
            }
            (AuthError::Unsupported(m), S3) => ServiceError::new("InvalidRequest", 400, m.clone()),
            (AuthError::Unsupported(m), Json) => {
                ServiceError::new("IncompleteSignatureException", 400, m.clone())
            }
            (AuthError::Unsupported(m), Query) => ServiceError::new("IncompleteSignature", 403, m.clone()),
            (AuthError::HeadersNotSigned(names), style) => {
                let message = "There were headers present in the request which were not signed";
                match style {
                    S3 => ServiceError::new("AccessDenied", 403, message)
                        .with_extra("HeadersNotSigned", names.join(", ")),
                    Json => ServiceError::new("InvalidSignatureException", 400, message),
                    Query => ServiceError::new("SignatureDoesNotMatch", 403, message),
                }
            }
        }
    }
}

/// Refuses a request signed more than [`MAX_SKEW_MILLIS`] away from the server's clock.
pub fn check_skew(date: Timestamp, now: Timestamp) -> Result<(), AuthError> {
    let skew = date.as_millis() - now.as_millis();
    if skew.abs() > MAX_SKEW_MILLIS {
        return Err(AuthError::Skewed {
            request: date,
            server: now,
            ahead: skew > 0,
        });
    }
    Ok(())
}

/// Reads the request's signature from its `Authorization` header or presigned query string.
/// Only syntax is checked here.
pub fn read_authorization(
    headers: &HeaderMap,
    query: &[(String, String)],
) -> Result<Authorization, AuthError> {
    if let Some(value) = headers.get(http::header::AUTHORIZATION) {
        let value = value
            .to_str()
            .map_err(|_| AuthError::Malformed("Authorization header is not valid ASCII".into()))?;
        if let Some(rest) = value.strip_prefix(ALGORITHM) {
            return parse_authorization_header(rest, headers);
        }
        if let Some(rest) = value.strip_prefix("AWS ") {
            let (key, signature) = rest.rsplit_once(':').unwrap_or((rest, ""));
            return Ok(Authorization::Legacy(crate::sigv2::SignedV2 {
                access_key_id: key.trim().to_owned(),
                signature: signature.trim().to_owned(),
                expires: None,
            }));
        }
        return Err(AuthError::Unsupported(
            "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256."
                .into(),
        ));
    }
    let q = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let missing =
        |n: &str| AuthError::Malformed(format!("Query-string authentication requires the {n} parameter"));
    if let Some(alg) = q("X-Amz-Algorithm") {
        if alg != ALGORITHM {
            return Err(AuthError::Unsupported(format!(
                "X-Amz-Algorithm only supports \"{ALGORITHM}\""
            )));
        }
        let scope =
            CredentialScope::parse(q("X-Amz-Credential").ok_or_else(|| missing("X-Amz-Credential"))?)?;
        let amz_date_raw = q("X-Amz-Date").ok_or_else(|| missing("X-Amz-Date"))?.to_owned();
        let amz_date = Some(Timestamp::parse_iso8601(&amz_date_raw).ok_or_else(|| {
            AuthError::Malformed(
                "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"".into(),
            )
        })?);
        let expires: i64 = q("X-Amz-Expires")
            .ok_or_else(|| missing("X-Amz-Expires"))?
            .parse()
            .map_err(|_| AuthError::Malformed("X-Amz-Expires should be a number".into()))?;
        if !(0..=MAX_PRESIGN_EXPIRES_SECS).contains(&expires) {
            return Err(AuthError::Malformed(
                "X-Amz-Expires must be less than a week (in seconds) that is 604800".into(),
            ));
        }
        let signed_headers = q("X-Amz-SignedHeaders")
            .ok_or_else(|| missing("X-Amz-SignedHeaders"))?
            .split(';')
            .map(str::to_ascii_lowercase)
            .collect();
        let signature = q("X-Amz-Signature")
            .ok_or_else(|| missing("X-Amz-Signature"))?
            .to_owned();
        return Ok(Authorization::SigV4(SignedRequest {
            scope,
            signed_headers,
            signature,
            amz_date,
            amz_date_raw,
            presigned_expires: Some(expires),
        }));
    }
    if let Some(key) = q("AWSAccessKeyId") {
        let expires = q("Expires")
            .ok_or_else(|| missing("Expires"))?
            .trim()
            .parse::<i64>()
            .map_err(|_| {
                AuthError::Malformed("Expires must be a number of seconds since the epoch".into())
            })?;
        return Ok(Authorization::Legacy(crate::sigv2::SignedV2 {
            access_key_id: key.to_owned(),
            signature: q("Signature").ok_or_else(|| missing("Signature"))?.to_owned(),
            expires: Some(expires),
        }));
    }
    Ok(Authorization::Anonymous)
}

fn parse_authorization_header(rest: &str, headers: &HeaderMap) -> Result<Authorization, AuthError> {
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let missing = |what: &str| {
        AuthError::Malformed(format!(
            "Authorization header requires '{what}' parameter. Authorization={ALGORITHM}{rest}"
        ))
    };
    let scope = CredentialScope::parse(credential.ok_or_else(|| missing("Credential"))?)?;
    let signed_headers = signed
        .ok_or_else(|| missing("SignedHeaders"))?
        .split(';')
        .map(str::to_ascii_lowercase)
        .collect();
    let signature = signature.ok_or_else(|| missing("Signature"))?.to_owned();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (amz_date, amz_date_raw) = if let Some(d) = header("x-amz-date") {
        (Timestamp::parse_iso8601(d), d.to_owned())
    } else if let Some(d) = header("date") {
        let ts = Timestamp::parse_http_date(d);
        (ts, ts.map(|t| t.to_amz_date()).unwrap_or_default())
    } else {
        (None, String::new())
    };
    Ok(Authorization::SigV4(SignedRequest {
        scope,
        signed_headers,
        signature,
        amz_date,
        amz_date_raw,
        presigned_expires: None,
    }))
}

/// Everything needed to recompute a signature.
pub struct RequestParts<'a> {
    pub method: &'a str,
    /// The path exactly as it arrived on the wire (still percent-encoded).
    pub raw_path: &'a str,
    /// The raw query string, without `?`.
    pub raw_query: &'a str,
    pub headers: &'a HeaderMap,
    /// The `:authority` / URI host, used when there is no `Host` header (HTTP/2).
    pub authority: Option<&'a str>,
    /// Hex SHA-256 of the body, or a sentinel like `UNSIGNED-PAYLOAD`; see [`payload_hash`].
    pub payload_hash: &'a str,
}

/// The payload hash a signer used: `X-Amz-Content-Sha256` when sent (S3 always sends it),
/// `UNSIGNED-PAYLOAD` for presigned S3 URLs, otherwise the hash of the body.
pub fn payload_hash(headers: &HeaderMap, presigned: bool, body: Option<&[u8]>) -> String {
    if let Some(v) = headers.get("x-amz-content-sha256").and_then(|v| v.to_str().ok()) {
        return v.to_owned();
    }
    match body {
        Some(b) if !presigned => hex::encode(Sha256::digest(b)),
        _ => UNSIGNED_PAYLOAD.to_owned(),
    }
}

/// Checks a SigV4 signature and its time window against the secret for its access key.
pub fn verify(
    req: &SignedRequest,
    parts: &RequestParts<'_>,
    secret_access_key: &str,
    now: Timestamp,
) -> Result<(), AuthError> {
    let date = req.amz_date.ok_or_else(|| {
        AuthError::Malformed(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.".into(),
        )
    })?;
    match req.presigned_expires {
        Some(expires) => {
            if now.as_millis() > date.as_millis() + expires * 1000 {
                return Err(AuthError::Expired);
            }
            if date.as_millis() - now.as_millis() > MAX_SKEW_MILLIS {
                return Err(AuthError::Skewed {
                    request: date,
                    server: now,
                    ahead: true,
                });
            }
        }
        None => check_skew(date, now)?,
    }
    if !req.amz_date_raw.starts_with(&req.scope.date) {
        return Err(AuthError::Malformed(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}'",
            req.scope.date,
            req.amz_date_raw.get(..8).unwrap_or_default()
        )));
    }
    let unsigned: Vec<String> = parts
        .headers
        .keys()
        .map(|h| h.as_str())
        .filter(|h| h.starts_with("x-amz-") && !req.signed_headers.iter().any(|s| s == h))
        .map(str::to_owned)
        .collect();
    if !unsigned.is_empty() {
        return Err(AuthError::HeadersNotSigned(unsigned));
    }
    let canonical_request = canonical_request(req, parts);
    let string_to_sign = format!(
        "{ALGORITHM}\n{}\n{}\n{}",
        req.amz_date_raw,
        req.scope.scope_string(),
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let key = signing_key(secret_access_key, &req.scope);
    let expected = hex::encode(hmac(&key, string_to_sign.as_bytes()));
    if constant_time_eq(expected.as_bytes(), req.signature.to_ascii_lowercase().as_bytes()) {
        Ok(())
    } else {
        Err(AuthError::SignatureMismatch {
            canonical_request,
            string_to_sign,
        })
    }
}

/// Signs a request the way the AWS SDKs do (header signature over `signed_headers`, which must
/// be present in `parts.headers`, plus `x-amz-date`). Returns the `Authorization` header value.
/// Clients of Lakebox itself use this (the benchmark load generator); the server only verifies.
pub fn sign(
    parts: &RequestParts<'_>,
    access_key_id: &str,
    secret_access_key: &str,
    region: &str,
    service: &str,
    amz_date: &str,
    signed_headers: &[&str],
) -> String {
    let scope = CredentialScope {
        access_key_id: access_key_id.to_owned(),
        date: amz_date.get(..8).unwrap_or_default().to_owned(),
        region: region.to_owned(),
        service: service.to_owned(),
    };
    let mut names: Vec<String> = signed_headers.iter().map(|h| h.to_ascii_lowercase()).collect();
    names.sort();
    let req = SignedRequest {
        scope: scope.clone(),
        signed_headers: names.clone(),
        signature: String::new(),
        amz_date: None,
        amz_date_raw: amz_date.to_owned(),
        presigned_expires: None,
    };
    let canonical = canonical_request(&req, parts);
    let string_to_sign = format!(
        "{ALGORITHM}\n{amz_date}\n{}\n{}",
        scope.scope_string(),
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let signature = hex::encode(hmac(
        &signing_key(secret_access_key, &scope),
        string_to_sign.as_bytes(),
    ));
    format!(
        "{ALGORITHM} Credential={access_key_id}/{}, SignedHeaders={}, Signature={signature}",
        scope.scope_string(),
        names.join(";")
    )
}

/// The `x-amz-content-sha256` of bodies whose chunks carry their own signatures.
pub const STREAMING_PAYLOAD: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Computes the expected signatures of a `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` body, chunk by
/// chunk: each chunk's signature covers its data and the previous signature, starting from the
/// request's own (seed) signature.
#[derive(Clone)]
pub struct ChunkSigner {
    key: Vec<u8>,
    amz_date: String,
    scope: String,
    previous: String,
}

impl std::fmt::Debug for ChunkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkSigner")
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl ChunkSigner {
    /// For a request whose header signature was verified with `secret_access_key`.
    pub fn new(signed: &SignedRequest, secret_access_key: &str) -> Self {
        ChunkSigner {
            key: signing_key(secret_access_key, &signed.scope),
            amz_date: signed.amz_date_raw.clone(),
            scope: signed.scope.scope_string(),
            previous: signed.signature.to_ascii_lowercase(),
        }
    }

    /// The signature the next chunk must carry, given the hex SHA-256 of its data; advances
    /// the chain.
    pub fn next(&mut self, data_sha256_hex: &str) -> String {
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{}\n{EMPTY_SHA256}\n{data_sha256_hex}",
            self.amz_date, self.scope, self.previous
        );
        let sig = hex::encode(hmac(&self.key, string_to_sign.as_bytes()));
        self.previous = sig.clone();
        sig
    }

    /// The signature the trailer of a `STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER` body must
    /// carry (`x-amz-trailer-signature`), chained from the final chunk's, given the trailing
    /// headers as `name:value\n` lines.
    pub fn trailer(&mut self, canonical_trailers: &str) -> String {
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256-TRAILER\n{}\n{}\n{}\n{}",
            self.amz_date,
            self.scope,
            self.previous,
            hex::encode(Sha256::digest(canonical_trailers.as_bytes()))
        );
        let sig = hex::encode(hmac(&self.key, string_to_sign.as_bytes()));
        self.previous = sig.clone();
        sig
    }
}

/// Characters SigV4 leaves unencoded: RFC 3986 unreserved.
const SIGV4_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
/// The same, keeping `/` (for paths).
const SIGV4_PATH_ENCODE: &AsciiSet = &SIGV4_ENCODE.remove(b'/');

fn canonical_request(req: &SignedRequest, parts: &RequestParts<'_>) -> String {
    // S3 signs the path as sent; every other service signs it normalised and encoded once
    // more (so `%2F` on the wire is signed as `%252F`), which is what the SDKs do.
    let path = if parts.raw_path.is_empty() {
        "/"
    } else {
        parts.raw_path
    };
    let uri = if req.scope.service == "s3" {
        path.to_owned()
    } else {
        utf8_percent_encode(&normalize_path(path), SIGV4_PATH_ENCODE).to_string()
    };
    let mut pairs: Vec<(String, String)> = parts
        .raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (reencode(k), reencode(v))
        })
        .filter(|(k, _)| !(req.presigned_expires.is_some() && k == "X-Amz-Signature"))
        .collect();
    pairs.sort();
    let query: Vec<String> = pairs.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut headers = String::new();
    for name in &req.signed_headers {
        let values: Vec<String> = parts
            .headers
            .get_all(name.as_str())
            .iter()
            .map(|v| collapse_spaces(&String::from_utf8_lossy(v.as_bytes())))
            .collect();
        let value = if values.is_empty() && name == "host" {
            parts.authority.unwrap_or_default().to_owned()
        } else {
            values.join(",")
        };
        headers.push_str(name);
        headers.push(':');
        headers.push_str(&value);
        headers.push('\n');
    }
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        parts.method,
        uri,
        query.join("&"),
        headers,
        req.signed_headers.join(";"),
        parts.payload_hash
    )
}

/// Decodes `%XX` (not `+`) and re-encodes with SigV4's rules, so clients that encode more or
/// less eagerly than the spec still verify.
fn reencode(s: &str) -> String {
    let decoded = percent_decode_str(s).collect::<Vec<u8>>();
    percent_encoding::percent_encode(&decoded, SIGV4_ENCODE).to_string()
}

/// Removes `.` and `..` segments and empty segments, keeping a trailing slash (RFC 3986 §5.2.4,
/// as botocore applies it before signing).
fn normalize_path(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let mut s = String::from("/");
    s.push_str(&out.join("/"));
    if path.ends_with('/') && s.len() > 1 {
        s.push('/');
    }
    s
}

fn collapse_spaces(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// The SigV4 signing key: HMAC chain over date, region, service and `aws4_request`.
pub fn signing_key(secret: &str, scope: &CredentialScope) -> Vec<u8> {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), scope.date.as_bytes());
    let k_region = hmac(&k_date, scope.region.as_bytes());
    let k_service = hmac(&k_region, scope.service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    // The "get-vanilla" and "post-x-www-form-urlencoded" cases of AWS's SigV4 test suite,
    // with its documented example credentials.
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn signed(h: &HeaderMap) -> SignedRequest {
        match read_authorization(h, &[]).unwrap() {
            Authorization::SigV4(s) => s,
            other => panic!("{other:?}"),
        }
    }

    const SUITE_DATE: &str = "20150830T123600Z";

    /// Verifies a request from AWS's SigV4 test suite (host example.amazonaws.com, date
    /// 20150830T123600Z, scope us-east-1/service) signed with `signature`, at time `now`.
    fn suite_verify(
        method: &str,
        raw_query: &str,
        body: &[u8],
        extra: &[(&str, &str)],
        signature: &str,
        secret: &str,
        now: Timestamp,
    ) -> Result<(), AuthError> {
        let mut pairs = extra.to_vec();
        pairs.push(("host", "example.amazonaws.com"));
        pairs.push(("x-amz-date", SUITE_DATE));
        let mut signed_names: Vec<&str> = pairs.iter().map(|(k, _)| *k).collect();
        signed_names.sort_unstable();
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders={}, Signature={signature}",
            signed_names.join(";")
        );
        pairs.push(("authorization", &auth));
        let h = headers(&pairs);
        let req = signed(&h);
        assert_eq!(req.scope.access_key_id, "AKIDEXAMPLE");
        assert_eq!(req.scope.region, "us-east-1");
        let hash = payload_hash(&h, false, Some(body));
        let parts = RequestParts {
            method,
            raw_path: "/",
            raw_query,
            headers: &h,
            authority: None,
            payload_hash: &hash,
        };
        verify(&req, &parts, secret, now)
    }

    fn suite_now() -> Timestamp {
        Timestamp::parse_iso8601(SUITE_DATE).unwrap()
    }

    #[test]
    fn aws_test_suite_get_vanilla() {
        let sig = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
        suite_verify("GET", "", b"", &[], sig, SECRET, suite_now()).unwrap();
        let err = suite_verify("GET", "", b"", &[], sig, "wrong", suite_now()).unwrap_err();
        assert!(matches!(err, AuthError::SignatureMismatch { .. }));
    }

    #[test]
    fn aws_test_suite_post_form() {
        let sig = "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a";
        let ct = [("content-type", "application/x-www-form-urlencoded")];
        suite_verify("POST", "", b"Param1=value1", &ct, sig, SECRET, suite_now()).unwrap();
        // The body is covered by the signature.
        let err = suite_verify("POST", "", b"Param1=value2", &ct, sig, SECRET, suite_now()).unwrap_err();
        assert!(matches!(err, AuthError::SignatureMismatch { .. }));
    }

    #[test]
    fn aws_test_suite_query_order() {
        // get-vanilla-query-order-key-case: parameters are sorted before signing.
        let sig = "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500";
        suite_verify(
            "GET",
            "Param2=value2&Param1=value1",
            b"",
            &[],
            sig,
            SECRET,
            suite_now(),
        )
        .unwrap();
    }

    #[test]
    fn sign_then_verify_round_trips() {
        let body = b"{}";
        let hash = hex::encode(Sha256::digest(body));
        let mut h = headers(&[
            ("host", "localhost:4566"),
            ("x-amz-date", SUITE_DATE),
            ("x-amz-target", "Kinesis_20131202.ListStreams"),
        ]);
        let parts = RequestParts {
            method: "POST",
            raw_path: "/",
            raw_query: "",
            headers: &h,
            authority: None,
            payload_hash: &hash,
        };
        let auth = sign(
            &parts,
            "AKID",
            "secret",
            "eu-west-1",
            "kinesis",
            SUITE_DATE,
            &["host", "x-amz-date", "x-amz-target"],
        );
        h.insert(http::header::AUTHORIZATION, HeaderValue::from_str(&auth).unwrap());
        let req = signed(&h);
        assert_eq!(req.scope.region, "eu-west-1");
        let parts = RequestParts {
            method: "POST",
            raw_path: "/",
            raw_query: "",
            headers: &h,
            authority: None,
            payload_hash: &hash,
        };
        verify(&req, &parts, "secret", suite_now()).unwrap();
        assert!(verify(&req, &parts, "other", suite_now()).is_err());
    }

    #[test]
    fn skew_and_expiry() {
        let t = suite_now();
        let later = Timestamp::from_millis(t.as_millis() + MAX_SKEW_MILLIS + 1000);
        let err = suite_verify("GET", "", b"", &[], "00", SECRET, later).unwrap_err();
        assert!(matches!(err, AuthError::Skewed { ahead: false, .. }));
        let e = err.to_service_error(ErrorStyle::Json);
        assert_eq!(e.code, "InvalidSignatureException");
        assert!(
            e.message
                .starts_with("Signature expired: 20150830T123600Z is now earlier than"),
            "{}",
            e.message
        );
        assert_eq!(err.to_service_error(ErrorStyle::S3).code, "RequestTimeTooSkewed");
        let earlier = Timestamp::from_millis(t.as_millis() - MAX_SKEW_MILLIS - 1000);
        let err = suite_verify("GET", "", b"", &[], "00", SECRET, earlier).unwrap_err();
        assert!(matches!(err, AuthError::Skewed { ahead: true, .. }));
    }

    #[test]
    fn presigned_query() {
        let q: Vec<(String, String)> = [
            ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
            (
                "X-Amz-Credential",
                "AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request",
            ),
            ("X-Amz-Date", "20130524T000000Z"),
            ("X-Amz-Expires", "86400"),
            ("X-Amz-SignedHeaders", "host"),
            (
                "X-Amz-Signature",
                "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
            ),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let h = headers(&[("host", "examplebucket.s3.amazonaws.com")]);
        let Authorization::SigV4(req) = read_authorization(&h, &q).unwrap() else {
            panic!()
        };
        assert_eq!(req.presigned_expires, Some(86_400));
        assert_eq!(req.scope.service, "s3");
        // The documented S3 presigned-URL example.
        let raw_query = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";
        let parts = RequestParts {
            method: "GET",
            raw_path: "/test.txt",
            raw_query,
            headers: &h,
            authority: None,
            payload_hash: UNSIGNED_PAYLOAD,
        };
        // The S3 documentation's example secret differs from the test suite's by one character.
        let s3_secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        let t = Timestamp::parse_iso8601("20130524T000000Z").unwrap();
        verify(&req, &parts, s3_secret, t).unwrap();
        let after = Timestamp::from_millis(t.as_millis() + 86_401_000);
        assert_eq!(
            verify(&req, &parts, s3_secret, after).unwrap_err(),
            AuthError::Expired
        );
    }

    #[test]
    fn reading_without_verifying() {
        assert_eq!(
            read_authorization(&HeaderMap::new(), &[]).unwrap(),
            Authorization::Anonymous
        );
        let h = headers(&[("authorization", "AWS AKID:c2ln")]);
        assert_eq!(
            read_authorization(&h, &[]).unwrap(),
            Authorization::Legacy(crate::sigv2::SignedV2 {
                access_key_id: "AKID".into(),
                signature: "c2ln".into(),
                expires: None,
            })
        );
        let h = headers(&[("authorization", "AWS4-HMAC-SHA256 Credential=AKID/2015/us-east-1")]);
        assert!(matches!(
            read_authorization(&h, &[]),
            Err(AuthError::Malformed(_))
        ));
        let h = headers(&[("authorization", "Bearer x")]);
        assert!(matches!(
            read_authorization(&h, &[]),
            Err(AuthError::Unsupported(_))
        ));
    }

    #[test]
    fn path_normalisation() {
        assert_eq!(normalize_path("/a/./b/../c/"), "/a/c/");
        assert_eq!(normalize_path("//a//b"), "/a/b");
        assert_eq!(normalize_path(""), "/");
        assert_eq!(
            utf8_percent_encode("/a b/%2F", SIGV4_PATH_ENCODE).to_string(),
            "/a%20b/%252F"
        );
    }
}
