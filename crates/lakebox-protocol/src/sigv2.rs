//! S3's legacy signature (SigV2): `Authorization: AWS <key>:<signature>` and presigned URLs with
//! `AWSAccessKeyId`/`Signature`/`Expires`, which the AWS CLI's `aws s3 presign` still makes.
//! Signature = base64(HMAC-SHA1(secret, string to sign)), where the string to sign is the
//! method, Content-MD5, Content-Type, the date (or `Expires`), the `x-amz-*` headers and the
//! resource: `/bucket/key` plus the sub-resources of the query.

use base64::Engine;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use sha1::Sha1;

use crate::sigv4::{AuthError, RequestParts};
use crate::types::Timestamp;

/// A SigV2 signature as read from a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedV2 {
    pub access_key_id: String,
    /// Base64, as sent.
    pub signature: String,
    /// Presigned URLs: the epoch second after which the URL is refused.
    pub expires: Option<i64>,
}

/// Query parameters that are part of the signed resource (the rest are not signed).
const SUB_RESOURCES: &[&str] = &[
    "accelerate",
    "acl",
    "analytics",
    "cors",
    "delete",
    "encryption",
    "inventory",
    "lifecycle",
    "location",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "ownershipControls",
    "partNumber",
    "policy",
    "publicAccessBlock",
    "replication",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "retention",
    "legal-hold",
    "select",
    "select-type",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
];

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim()
}

/// The string a SigV2 signer signs. `virtual_host_bucket` is the bucket named by the `Host`
/// (it is then not in the path, but is in the signed resource).
pub fn string_to_sign(sig: &SignedV2, parts: &RequestParts<'_>, virtual_host_bucket: Option<&str>) -> String {
    let h = parts.headers;
    let date = match sig.expires {
        Some(e) => e.to_string(),
        // With `x-amz-date` the Date line is empty: the header is signed among the amz ones.
        None if h.contains_key("x-amz-date") => String::new(),
        None => header(h, "date").to_owned(),
    };
    let mut amz: Vec<(String, String)> = Vec::new();
    for name in h.keys() {
        let n = name.as_str();
        if n.starts_with("x-amz-") {
            let values: Vec<&str> = h
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .map(str::trim)
                .collect();
            amz.push((n.to_owned(), values.join(",")));
        }
    }
    amz.sort();
    let mut out = format!(
        "{}\n{}\n{}\n{}\n",
        parts.method,
        header(h, "content-md5"),
        header(h, "content-type"),
        date
    );
    for (n, v) in amz {
        out.push_str(&format!("{n}:{v}\n"));
    }
    if let Some(b) = virtual_host_bucket {
        out.push('/');
        out.push_str(b);
    }
    out.push_str(parts.raw_path);
    let mut subs: Vec<(String, Option<String>)> = parts
        .raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| {
            let (k, v) = match p.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (p, None),
            };
            let k = percent_encoding::percent_decode_str(k)
                .decode_utf8_lossy()
                .into_owned();
            SUB_RESOURCES.contains(&k.as_str()).then(|| {
                let v = v.map(|v| {
                    percent_encoding::percent_decode_str(&v.replace('+', " "))
                        .decode_utf8_lossy()
                        .into_owned()
                });
                (k, v)
            })
        })
        .collect();
    subs.sort();
    for (i, (k, v)) in subs.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(k);
        if let Some(v) = v {
            out.push('=');
            out.push_str(v);
        }
    }
    out
}

/// An RFC 1123 date, with `GMT` or the `+0000` some signers write.
fn parse_date(raw: &str) -> Option<Timestamp> {
    match raw.strip_suffix("+0000") {
        Some(head) => Timestamp::parse_http_date(&format!("{head}GMT")),
        None => Timestamp::parse_http_date(raw),
    }
}

/// Checks a SigV2 signature and its time limits.
pub fn verify(
    sig: &SignedV2,
    parts: &RequestParts<'_>,
    virtual_host_bucket: Option<&str>,
    secret_access_key: &str,
    now: Timestamp,
) -> Result<(), AuthError> {
    match sig.expires {
        Some(expires) => {
            if now.as_millis() > expires * 1000 {
                return Err(AuthError::Expired);
            }
        }
        None => {
            let raw = match header(parts.headers, "x-amz-date") {
                "" => header(parts.headers, "date"),
                d => d,
            };
            let date = parse_date(raw).ok_or_else(|| {
                AuthError::Malformed("AWS authentication requires a valid Date or x-amz-date header".into())
            })?;
            crate::sigv4::check_skew(date, now)?;
        }
    }
    let string_to_sign = string_to_sign(sig, parts, virtual_host_bucket);
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(secret_access_key.as_bytes()).expect("any key length");
    mac.update(string_to_sign.as_bytes());
    let given = base64::engine::general_purpose::STANDARD
        .decode(sig.signature.trim())
        .unwrap_or_default();
    // Constant time, as the signature is a secret-derived value.
    mac.verify_slice(&given)
        .map_err(|_| AuthError::SignatureMismatch {
            canonical_request: String::new(),
            string_to_sign,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts<'a>(method: &'a str, path: &'a str, query: &'a str, headers: &'a HeaderMap) -> RequestParts<'a> {
        RequestParts {
            method,
            raw_path: path,
            raw_query: query,
            headers,
            authority: None,
            payload_hash: "",
        }
    }

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    #[test]
    fn aws_documentation_example_virtual_host_get() {
        // From the S3 SigV2 documentation: GET /photos/puppy.jpg on johnsmith.s3.amazonaws.com.
        let mut h = HeaderMap::new();
        h.insert("date", "Tue, 27 Mar 2007 19:36:42 +0000".parse().unwrap());
        let sig = SignedV2 {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            signature: "bWq2s1WEIj+Ydj0vQ697zp+IXMU=".into(),
            expires: None,
        };
        let p = parts("GET", "/photos/puppy.jpg", "", &h);
        assert_eq!(
            string_to_sign(&sig, &p, Some("johnsmith")),
            "GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n/johnsmith/photos/puppy.jpg"
        );
        let then = parse_date("Tue, 27 Mar 2007 19:36:42 +0000").unwrap();
        verify(&sig, &p, Some("johnsmith"), SECRET, then).unwrap();
        assert!(matches!(
            verify(&sig, &p, Some("johnsmith"), "wrong", then),
            Err(AuthError::SignatureMismatch { .. })
        ));
        let later = Timestamp::from_millis(then.as_millis() + 16 * 60 * 1000);
        assert!(matches!(
            verify(&sig, &p, Some("johnsmith"), SECRET, later),
            Err(AuthError::Skewed { .. })
        ));
    }

    #[test]
    fn resource_keeps_only_sub_resources_sorted_and_amz_headers() {
        let mut h = HeaderMap::new();
        h.insert("x-amz-meta-b", "2".parse().unwrap());
        h.insert("x-amz-date", "Tue, 27 Mar 2007 19:36:42 +0000".parse().unwrap());
        h.insert("content-type", "text/plain".parse().unwrap());
        let sig = SignedV2 {
            access_key_id: "k".into(),
            signature: String::new(),
            expires: None,
        };
        let p = parts("PUT", "/b/k%20ey", "versionId=v%201&prefix=x&acl", &h);
        assert_eq!(
            string_to_sign(&sig, &p, None),
            "PUT\n\ntext/plain\n\nx-amz-date:Tue, 27 Mar 2007 19:36:42 +0000\nx-amz-meta-b:2\n/b/k%20ey?acl&versionId=v 1"
        );
    }

    #[test]
    fn presigned_urls_expire() {
        let h = HeaderMap::new();
        let sig = SignedV2 {
            access_key_id: "k".into(),
            signature: "x".into(),
            expires: Some(1_000),
        };
        let p = parts("GET", "/b/k", "", &h);
        assert_eq!(string_to_sign(&sig, &p, None), "GET\n\n\n1000\n/b/k");
        assert_eq!(
            verify(&sig, &p, None, SECRET, Timestamp::from_millis(1_001_000)),
            Err(AuthError::Expired)
        );
    }
}
