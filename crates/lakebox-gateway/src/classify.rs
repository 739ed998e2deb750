//! Which protocol and service a request is for, from its headers and URL alone (DESIGN §3).
//!
//! Order matters: Lakebox's own `/_lakebox/` paths; then `X-Amz-Target` (awsJson/CBOR) and
//! smithy rpc-v2-cbor paths; then awsQuery forms; then restJson path prefixes; everything else
//! is S3.

use http::{HeaderMap, Method};
use lakebox_protocol::rpc::RpcEncoding;

use crate::catalog::{Protocol, ServiceEntry};
use crate::registry::Registry;

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route<'r> {
    Internal,
    Rpc {
        entry: Option<&'r ServiceEntry>,
        operation: String,
        encoding: RpcEncoding,
    },
    /// awsQuery; the service may only be known once the body's `Version` is read.
    Query {
        entry: Option<&'r ServiceEntry>,
    },
    RestJson {
        entry: &'r ServiceEntry,
    },
    /// A request to a Lambda function URL (`<url-id>.lambda-url.<region>.localhost`), for the
    /// Lambda service to run the function with: any method and path, signed or not.
    FunctionUrl {
        entry: &'r ServiceEntry,
        url_id: String,
    },
    S3 {
        virtual_host_bucket: Option<String>,
    },
    /// A REST request signed for a service the catalogue does not list (QuickSight, MSK, IoT,
    /// …): answered with that service's unknown-operation error, never as S3.
    Unrecognised {
        signing_name: String,
        /// restXml services (Route 53, CloudFront) answer in XML, the rest in JSON.
        xml: bool,
    },
}

/// The signing names of S3 and its variants: requests signed with them are S3's.
const S3_SIGNING_NAMES: &[&str] = &["s3", "s3express", "s3-object-lambda", "s3-outposts"];

/// The other restXml services: their errors are XML.
const REST_XML_SIGNING_NAMES: &[&str] = &["route53", "cloudfront"];

pub const INTERNAL_PREFIX: &str = "/_lakebox/";

pub fn classify<'r>(
    registry: &'r Registry,
    method: &Method,
    path: &str,
    query: &[(String, String)],
    headers: &HeaderMap,
    signing_name: Option<&str>,
) -> Route<'r> {
    if path.starts_with(INTERNAL_PREFIX) || path == "/_lakebox" {
        return Route::Internal;
    }
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    if let Some(url_id) = function_url_id(header("host"))
        && let Some(entry) = registry.entries().find(|e| e.name == "lambda")
    {
        return Route::FunctionUrl { entry, url_id };
    }
    if let Some(target) = header("x-amz-target") {
        let (prefix, operation) = target.rsplit_once('.').unwrap_or((target, ""));
        let entry = registry.entries().find(|e| e.target_prefix == Some(prefix));
        let encoding = header("content-type")
            .and_then(RpcEncoding::from_content_type)
            .unwrap_or(RpcEncoding::Json11);
        return Route::Rpc {
            entry,
            operation: operation.to_owned(),
            encoding,
        };
    }
    // Smithy rpc-v2-cbor names service and operation in the path, the service by the same
    // prefix awsJson's X-Amz-Target carries.
    if method == Method::POST
        && header("smithy-protocol") == Some("rpc-v2-cbor")
        && let Some((prefix, operation)) = rpc_v2_path(path)
    {
        return Route::Rpc {
            entry: registry.entries().find(|e| e.target_prefix == Some(prefix)),
            operation: operation.to_owned(),
            encoding: RpcEncoding::RpcV2Cbor,
        };
    }
    let by_signing = signing_name.and_then(|s| registry.entries().find(|e| e.signing_name == s));
    let is_s3 = signing_name.is_some_and(|s| S3_SIGNING_NAMES.contains(&s));
    let form = header("content-type").is_some_and(|c| {
        c.split(';')
            .next()
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
    });
    let action_in_url = query.iter().any(|(k, _)| k == "Action");
    if !is_s3 && ((method == Method::POST && form) || action_in_url) {
        let entry = by_signing
            .filter(|e| e.protocols.contains(&Protocol::AwsQuery))
            .or_else(|| {
                let version = query
                    .iter()
                    .find(|(k, _)| k == "Version")
                    .map(|(_, v)| v.as_str());
                version.and_then(|v| registry.entries().find(|e| e.query_version == Some(v)))
            });
        return Route::Query { entry };
    }
    if let Some(entry) = by_signing.filter(|e| e.protocols.contains(&Protocol::RestJson)) {
        return Route::RestJson { entry };
    }
    if !is_s3
        && let Some(entry) = registry
            .entries()
            .find(|e| e.path_prefix.is_some_and(|p| path.starts_with(p)))
    {
        return Route::RestJson { entry };
    }
    if let Some(name) = signing_name.filter(|_| !is_s3) {
        return Route::Unrecognised {
            signing_name: name.to_owned(),
            xml: REST_XML_SIGNING_NAMES.contains(&name),
        };
    }
    Route::S3 {
        virtual_host_bucket: virtual_host_bucket(header("host")),
    }
}

/// `/service/<prefix>/operation/<Operation>` (any path before it, as a custom endpoint's
/// path is kept).
fn rpc_v2_path(path: &str) -> Option<(&str, &str)> {
    let (_, rest) = path.rsplit_once("/service/")?;
    let (service, operation) = rest.split_once("/operation/")?;
    (!service.is_empty() && !operation.is_empty() && !operation.contains('/')).then_some((service, operation))
}

/// `<url-id>.lambda-url.<region>.<anything>[:port]` names a Lambda function URL.
fn function_url_id(host: Option<&str>) -> Option<String> {
    let (id, rest) = host?.split_once('.')?;
    let is_id = !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric());
    (is_id && rest.starts_with("lambda-url.")).then(|| id.to_ascii_lowercase())
}

/// `<bucket>.localhost[:port]` (also `<bucket>.s3.localhost`) names a bucket in the host.
fn virtual_host_bucket(host: Option<&str>) -> Option<String> {
    let host = host?;
    let host = match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    let bucket = host.strip_suffix(".localhost")?;
    let bucket = bucket.strip_suffix(".s3").unwrap_or(bucket);
    (!bucket.is_empty() && bucket != "s3").then(|| bucket.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn h(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.insert(*k, HeaderValue::from_static(v));
        }
        m
    }

    fn route<'r>(
        reg: &'r Registry,
        method: Method,
        path: &str,
        q: &[(&str, &str)],
        headers: &[(&'static str, &'static str)],
        signing: Option<&str>,
    ) -> Route<'r> {
        let q: Vec<(String, String)> = q.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        classify(reg, &method, path, &q, &h(headers), signing)
    }

    #[test]
    fn rest_requests_signed_for_other_services_are_not_s3() {
        let reg = Registry::new();
        let r = route(
            &reg,
            Method::GET,
            "/accounts/1/users",
            &[],
            &[],
            Some("quicksight"),
        );
        assert_eq!(
            r,
            Route::Unrecognised {
                signing_name: "quicksight".into(),
                xml: false
            }
        );
        let r = route(
            &reg,
            Method::GET,
            "/2013-04-01/hostedzone",
            &[],
            &[],
            Some("route53"),
        );
        assert!(matches!(r, Route::Unrecognised { xml: true, .. }));
        for s3 in [Some("s3"), Some("s3express"), None] {
            assert!(matches!(
                route(&reg, Method::GET, "/bucket/key", &[], &[], s3),
                Route::S3 { .. }
            ));
        }
    }

    #[test]
    fn rpc_v2_cbor_paths_name_service_and_operation() {
        let reg = Registry::new();
        let r = route(
            &reg,
            Method::POST,
            "/service/GraniteServiceVersion20100801/operation/PutMetricData",
            &[],
            &[
                ("smithy-protocol", "rpc-v2-cbor"),
                ("content-type", "application/cbor"),
            ],
            Some("monitoring"),
        );
        match r {
            Route::Rpc {
                entry,
                operation,
                encoding,
            } => {
                assert_eq!(entry.unwrap().name, "cloudwatch");
                assert_eq!(operation, "PutMetricData");
                assert_eq!(encoding, RpcEncoding::RpcV2Cbor);
            }
            other => panic!("{other:?}"),
        }
        // Without the protocol header the path is not rpc-v2's.
        let r = route(
            &reg,
            Method::POST,
            "/service/GraniteServiceVersion20100801/operation/PutMetricData",
            &[],
            &[],
            None,
        );
        assert!(matches!(r, Route::S3 { .. }));
        assert_eq!(rpc_v2_path("/service/x/operation/a/b"), None);
        assert_eq!(rpc_v2_path("/prefix/service/x/operation/Op"), Some(("x", "Op")));
    }

    #[test]
    fn targets_pick_rpc_services_and_encoding() {
        let reg = Registry::new();
        let r = route(
            &reg,
            Method::POST,
            "/",
            &[],
            &[
                ("x-amz-target", "Kinesis_20131202.PutRecord"),
                ("content-type", "application/x-amz-cbor-1.1"),
            ],
            Some("kinesis"),
        );
        match r {
            Route::Rpc {
                entry,
                operation,
                encoding,
            } => {
                assert_eq!(entry.unwrap().name, "kinesis");
                assert_eq!(operation, "PutRecord");
                assert_eq!(encoding, RpcEncoding::Cbor);
            }
            other => panic!("{other:?}"),
        }
        let r = route(
            &reg,
            Method::POST,
            "/",
            &[],
            &[("x-amz-target", "Nope_1.Op")],
            None,
        );
        assert!(matches!(r, Route::Rpc { entry: None, .. }));
    }

    #[test]
    fn query_forms_by_signing_name_or_version() {
        let reg = Registry::new();
        let form = [("content-type", "application/x-www-form-urlencoded; charset=utf-8")];
        let r = route(&reg, Method::POST, "/", &[], &form, Some("sts"));
        assert!(matches!(r, Route::Query { entry: Some(e) } if e.name == "sts"));
        let r = route(
            &reg,
            Method::GET,
            "/",
            &[("Action", "ListTopics"), ("Version", "2010-03-31")],
            &[],
            None,
        );
        assert!(matches!(r, Route::Query { entry: Some(e) } if e.name == "sns"));
        let r = route(&reg, Method::POST, "/", &[], &form, None);
        assert!(matches!(r, Route::Query { entry: None }));
        // A form POST signed for S3 is S3's (browser uploads and the like).
        let r = route(&reg, Method::POST, "/bucket", &[], &form, Some("s3"));
        assert!(matches!(r, Route::S3 { .. }));
    }

    #[test]
    fn function_url_hosts_go_to_lambda_whatever_the_path() {
        let reg = Registry::new();
        for (host, want) in [
            ("abc123.lambda-url.us-east-1.localhost:4566", Some("abc123")),
            ("ABC123.lambda-url.eu-west-1.localhost", Some("abc123")),
            ("abc123.localhost:4566", None),
            ("lambda-url.us-east-1.localhost", None),
        ] {
            let r = route(&reg, Method::GET, "/orders", &[], &[("host", host)], None);
            match want {
                Some(id) => assert!(
                    matches!(&r, Route::FunctionUrl { entry, url_id } if entry.name == "lambda" && url_id == id),
                    "{host}: {r:?}"
                ),
                None => assert!(!matches!(r, Route::FunctionUrl { .. }), "{host}"),
            }
        }
    }

    #[test]
    fn rest_json_and_s3_fallback() {
        let reg = Registry::new();
        let r = route(
            &reg,
            Method::GET,
            "/2015-03-31/functions/",
            &[],
            &[],
            Some("lambda"),
        );
        assert!(matches!(r, Route::RestJson { entry } if entry.name == "lambda"));
        let r = route(&reg, Method::GET, "/2015-03-31/functions/", &[], &[], None);
        assert!(matches!(r, Route::RestJson { entry } if entry.name == "lambda"));
        let r = route(
            &reg,
            Method::GET,
            "/bucket/key",
            &[],
            &[("host", "localhost:4566")],
            Some("s3"),
        );
        assert_eq!(
            r,
            Route::S3 {
                virtual_host_bucket: None
            }
        );
        let r = route(
            &reg,
            Method::GET,
            "/key",
            &[],
            &[("host", "my-bucket.localhost:4566")],
            Some("s3"),
        );
        assert_eq!(
            r,
            Route::S3 {
                virtual_host_bucket: Some("my-bucket".into())
            }
        );
        let r = route(
            &reg,
            Method::GET,
            "/key",
            &[],
            &[("host", "my.bucket.s3.localhost")],
            None,
        );
        assert_eq!(
            r,
            Route::S3 {
                virtual_host_bucket: Some("my.bucket".into())
            }
        );
        assert_eq!(
            route(&reg, Method::GET, "/_lakebox/health", &[], &[], None),
            Route::Internal
        );
    }
}
