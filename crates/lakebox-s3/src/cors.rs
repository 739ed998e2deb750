//! Cross-origin resource sharing as S3 applies a bucket's CORS configuration: the preflight
//! (`OPTIONS`, unsigned, as browsers send it) answered from the rules, and the
//! `Access-Control-*` headers on the actual requests the rules allow. The configuration itself
//! is stored by `config.rs` (Put/Get/DeleteBucketCors) after [`parse`] accepts it.
//!
//! A rule matches when the request's `Origin` matches one of its AllowedOrigin patterns (case
//! sensitive, at most one `*` standing for any characters), its method is one of the rule's
//! AllowedMethods and, for a preflight, every header named in
//! `Access-Control-Request-Headers` matches one of its AllowedHeader patterns (case
//! insensitive). The first rule that matches answers, as S3 documents it.

use http::{HeaderMap, Method, Response, StatusCode};
use lakebox_core::ServiceError;
use lakebox_protocol::xml::{self, XmlElement};
use lakebox_service::Body;

use crate::api::{empty_response, set_header};
use crate::errors;
use crate::store::ObjectStore;

/// The methods a CORS rule may allow (S3 refuses any other).
const METHODS: &[&str] = &["GET", "PUT", "HEAD", "POST", "DELETE"];
/// S3's limit on rules in one configuration.
const MAX_RULES: usize = 100;
/// What the answer depends on besides the URL, so caches keep answers per origin.
const VARY: &str = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method";

const NOT_ALLOWED: &str = "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.";

/// One `<CORSRule>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    origins: Vec<String>,
    methods: Vec<String>,
    headers: Vec<String>,
    expose: Vec<String>,
    max_age: Option<String>,
}

/// Reads a `<CORSConfiguration>` and checks it as PutBucketCors does.
pub fn parse(doc: &XmlElement) -> Result<Vec<Rule>, ServiceError> {
    let texts = |rule: &XmlElement, name: &str| -> Vec<String> {
        rule.children_named(name)
            .map(|e| e.text.trim().to_owned())
            .collect()
    };
    let mut rules = Vec::new();
    for r in doc.children_named("CORSRule") {
        let rule = Rule {
            origins: texts(r, "AllowedOrigin"),
            methods: texts(r, "AllowedMethod"),
            headers: texts(r, "AllowedHeader"),
            expose: texts(r, "ExposeHeader"),
            max_age: r.child_text("MaxAgeSeconds").map(|s| s.trim().to_owned()),
        };
        if rule.origins.is_empty() || rule.methods.is_empty() {
            return Err(errors::malformed_document());
        }
        if let Some(m) = rule.methods.iter().find(|m| !METHODS.contains(&m.as_str())) {
            return Err(ServiceError::client(
                "InvalidRequest",
                format!("Found unsupported HTTP method in CORS config. Unsupported method is {m}"),
            ));
        }
        for (what, patterns) in [("AllowedOrigin", &rule.origins), ("AllowedHeader", &rule.headers)] {
            if let Some(p) = patterns.iter().find(|p| p.matches('*').count() > 1) {
                return Err(ServiceError::client(
                    "InvalidRequest",
                    format!("{what} \"{p}\" can not have more than one wildcard."),
                ));
            }
        }
        if rule.max_age.as_ref().is_some_and(|a| a.parse::<i64>().is_err()) {
            return Err(errors::malformed_document());
        }
        rules.push(rule);
    }
    if rules.is_empty() || rules.len() > MAX_RULES {
        return Err(errors::malformed_document());
    }
    Ok(rules)
}

/// Whether `value` matches `pattern`, in which one `*` stands for any characters.
fn matches(pattern: &str, value: &str, ignore_case: bool) -> bool {
    let eq = |a: &str, b: &str| {
        if ignore_case {
            a.eq_ignore_ascii_case(b)
        } else {
            a == b
        }
    };
    match pattern.split_once('*') {
        None => eq(pattern, value),
        Some((head, tail)) => {
            value.len() >= head.len() + tail.len()
                && value.is_char_boundary(head.len())
                && value.is_char_boundary(value.len() - tail.len())
                && eq(&value[..head.len()], head)
                && eq(&value[value.len() - tail.len()..], tail)
        }
    }
}

impl Rule {
    /// The pattern of this rule that `origin` matches, if any.
    fn origin(&self, origin: &str) -> Option<&str> {
        self.origins
            .iter()
            .find(|p| matches(p, origin, false))
            .map(String::as_str)
    }

    fn allows(&self, origin: &str, method: &str, headers: &[&str]) -> Option<&str> {
        let pattern = self.origin(origin)?;
        (self.methods.iter().any(|m| m == method)
            && headers
                .iter()
                .all(|h| self.headers.iter().any(|p| matches(p, h, true))))
        .then_some(pattern)
    }

    /// The headers every allowed cross-origin answer carries.
    fn answer_headers(&self, origin: &str, pattern: &str) -> Vec<(&'static str, String)> {
        let wildcard = pattern == "*";
        let mut out = vec![
            (
                "access-control-allow-origin",
                if wildcard {
                    "*".to_owned()
                } else {
                    origin.to_owned()
                },
            ),
            ("access-control-allow-methods", self.methods.join(", ")),
        ];
        if !wildcard {
            out.push(("access-control-allow-credentials", "true".to_owned()));
        }
        if !self.expose.is_empty() {
            out.push(("access-control-expose-headers", self.expose.join(", ")));
        }
        if let Some(age) = &self.max_age {
            out.push(("access-control-max-age", age.clone()));
        }
        out.push(("vary", VARY.to_owned()));
        out
    }
}

/// The rules of a stored CORS configuration (`None` if it no longer parses).
pub fn stored_rules(stored: &[u8]) -> Option<Vec<Rule>> {
    parse(&xml::parse(stored).ok()?).ok()
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Answers a preflight (`OPTIONS` on a bucket or object) as S3 does.
pub fn preflight(
    store: &ObjectStore,
    bucket: Option<&str>,
    has_key: bool,
    headers: &HeaderMap,
) -> Result<Response<Body>, ServiceError> {
    let bad = |m: &str| ServiceError::client("BadRequest", m);
    let Some(origin) = header(headers, "origin") else {
        return Err(bad("Insufficient information. Origin request header needed."));
    };
    let Some(method) = header(headers, "access-control-request-method") else {
        return Err(bad("Invalid Access-Control-Request-Method: null"));
    };
    let Some(bucket) = bucket else {
        return Err(bad("A CORS preflight request must address a bucket."));
    };
    let forbidden = |m: &str| {
        ServiceError::new("AccessForbidden", 403, m)
            .with_extra("Method", method)
            .with_extra("ResourceType", if has_key { "OBJECT" } else { "BUCKET" })
    };
    if store.bucket(bucket)?.is_none() {
        return Err(ServiceError::new(
            "AccessForbidden",
            403,
            "CORSResponse: Bucket not found",
        ));
    }
    let consulted = store.consulted(bucket);
    let Some(rules) = &consulted.cors else {
        return Err(forbidden("CORSResponse: CORS is not enabled for this bucket."));
    };
    let requested: Vec<&str> = header(headers, "access-control-request-headers")
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .collect();
    let (rule, pattern) = rules
        .iter()
        .find_map(|r| r.allows(origin, method, &requested).map(|p| (r, p)))
        .ok_or_else(|| forbidden(NOT_ALLOWED))?;
    let mut resp = empty_response(StatusCode::OK);
    for (name, value) in rule.answer_headers(origin, pattern) {
        set_header(&mut resp, name, &value);
    }
    if !requested.is_empty() {
        set_header(&mut resp, "access-control-allow-headers", &requested.join(", "));
    }
    Ok(resp)
}

/// The `Access-Control-*` headers for an actual request from `origin` to `bucket` (none when
/// no rule allows its origin and method). Computed only for requests that carry an `Origin`.
pub fn actual_request_headers(
    store: &ObjectStore,
    bucket: &str,
    method: &Method,
    origin: &str,
) -> Vec<(&'static str, String)> {
    let consulted = store.consulted(bucket);
    let Some(rules) = &consulted.cors else {
        return Vec::new();
    };
    rules
        .iter()
        .find_map(|r| {
            r.allows(origin, method.as_str(), &[])
                .map(|p| r.answer_headers(origin, p))
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(xml: &str) -> Result<Vec<Rule>, ServiceError> {
        parse(&xml::parse(xml.as_bytes()).unwrap())
    }

    #[test]
    fn wildcards_stand_for_any_characters_once() {
        assert!(matches("http://*.example.com", "http://www.example.com", false));
        assert!(!matches("http://*.example.com", "http://example.com", false));
        assert!(!matches("http://*.example.com", "HTTP://www.example.com", false));
        assert!(matches("*", "null", false));
        assert!(matches("x-amz-*", "X-Amz-Date", true));
        assert!(!matches("ab*ba", "aba", false));
    }

    #[test]
    fn put_refuses_what_s3_refuses() {
        let one = |body: &str| {
            rules(&format!(
                "<CORSConfiguration><CORSRule>{body}</CORSRule></CORSConfiguration>"
            ))
        };
        assert!(one("<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>").is_ok());
        let e = one("<AllowedOrigin>*</AllowedOrigin><AllowedMethod>PATCH</AllowedMethod>").unwrap_err();
        assert_eq!(
            (e.code.as_ref(), e.message.as_str()),
            (
                "InvalidRequest",
                "Found unsupported HTTP method in CORS config. Unsupported method is PATCH"
            )
        );
        let e = one("<AllowedOrigin>*.*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>").unwrap_err();
        assert_eq!(
            e.message,
            "AllowedOrigin \"*.*\" can not have more than one wildcard."
        );
        assert_eq!(
            one("<AllowedMethod>GET</AllowedMethod>").unwrap_err().code,
            "MalformedXML"
        );
        assert_eq!(rules("<CORSConfiguration/>").unwrap_err().code, "MalformedXML");
    }
}
