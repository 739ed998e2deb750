//! S3 request metrics: a bucket's metrics configurations (`?metrics&id=…`: Put, Get, Delete,
//! List) and, for each request they match, the metrics S3 publishes in AWS/S3 by `BucketName`
//! and `FilterId` — AllRequests, GetRequests, PutRequests, DeleteRequests, HeadRequests,
//! PostRequests, ListRequests, SelectRequests, BytesDownloaded, BytesUploaded, 4xxErrors,
//! 5xxErrors, FirstByteLatency, TotalRequestLatency. Bytes count every request with a body
//! (configurations too), as S3's definitions of BytesUploaded and BytesDownloaded say.
//!
//! A configuration is stored as the bucket subresource `metrics/<id>`; the parsed filters sit
//! in the bucket's consulted cache, so a bucket without any costs a request nothing more.
//! A filter matches by key prefix; filters on object tags or access points are stored and
//! listed but match no request (Lakebox serves no access points, and reading an object's tags
//! for every request is not worth the cost).

use std::sync::Arc;

use http::{Method, Response, StatusCode};
use lakebox_core::ServiceError;
use lakebox_protocol::xml::{self, XmlElement};
use lakebox_service::Body;
use lakebox_service::metrics::Recorder;

use crate::api::{S3Request, empty_response, xml_response};
use crate::errors::malformed_document as malformed;
use crate::store::ObjectStore;

/// Configurations one bucket may have, as S3 allows.
const MAX_CONFIGURATIONS: usize = 1000;
pub const SUB_PREFIX: &str = "metrics/";

/// One configuration's filter, as requests are matched against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub id: String,
    pub prefix: Option<String>,
    /// Tag or access-point conditions: stored, never matched (see the module docs).
    pub unmatchable: bool,
}

impl Filter {
    fn of(doc: &XmlElement) -> Option<Filter> {
        let id = doc.child_text("Id")?.to_owned();
        let (mut prefix, mut unmatchable) = (None, false);
        if let Some(f) = doc.child("Filter") {
            let scope = f.child("And").unwrap_or(f);
            prefix = scope.child_text("Prefix").map(str::to_owned);
            unmatchable = scope.child("Tag").is_some() || scope.child("AccessPointArn").is_some();
        }
        Some(Filter {
            id,
            prefix,
            unmatchable,
        })
    }

    fn matches(&self, key: Option<&str>) -> bool {
        !self.unmatchable
            && match &self.prefix {
                None => true,
                Some(p) => key.is_some_and(|k| k.starts_with(p.as_str())),
            }
    }
}

/// The filters of a bucket's stored configurations.
pub fn filters(store: &ObjectStore, bucket: &str) -> Vec<Filter> {
    store
        .bucket_configs_with_prefix(bucket, SUB_PREFIX)
        .unwrap_or_default()
        .iter()
        .filter_map(|doc| xml::parse(doc).ok().and_then(|d| Filter::of(&d)))
        .collect()
}

fn no_such_configuration() -> ServiceError {
    ServiceError::new(
        "NoSuchConfiguration",
        404,
        "The specified configuration does not exist.",
    )
}

/// Put / Get / Delete (`?metrics&id=`) and List (`GET ?metrics`) of metrics configurations.
pub async fn configuration(
    store: &Arc<ObjectStore>,
    mut req: S3Request,
) -> Result<Response<Body>, ServiceError> {
    let bucket = req.bucket.clone().unwrap_or_default();
    store.existing_bucket(&bucket)?;
    let id = req.query("id").map(str::to_owned);
    match (&req.method, id) {
        (&Method::GET, None) => {
            let docs = store.bucket_configs_with_prefix(&bucket, SUB_PREFIX)?;
            let mut out = format!(
                "{}<ListMetricsConfigurationsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><IsTruncated>false</IsTruncated>",
                xml::XML_DECLARATION
            );
            for doc in docs {
                // Each stored document is a whole MetricsConfiguration element.
                let text = String::from_utf8_lossy(&doc);
                let text = text.trim_start();
                let body = match text.strip_prefix("<?xml") {
                    Some(rest) => rest.split_once("?>").map_or("", |(_, b)| b).trim_start(),
                    None => text,
                };
                out.push_str(body);
            }
            out.push_str("</ListMetricsConfigurationsResult>");
            Ok(xml_response(StatusCode::OK, out))
        }
        (_, None) => Err(ServiceError::client(
            "InvalidArgument",
            "Missing required parameter: id",
        )),
        (&Method::PUT, Some(id)) => {
            let body = req.xml_body().await?;
            let doc = xml::parse(&body).map_err(|_| malformed())?;
            if doc.name != "MetricsConfiguration" {
                return Err(malformed());
            }
            let filter = Filter::of(&doc).ok_or_else(malformed)?;
            if filter.id != id {
                return Err(ServiceError::client(
                    "InvalidArgument",
                    "The Id of the configuration does not match the id parameter.",
                ));
            }
            let sub = format!("{SUB_PREFIX}{id}");
            let exists = store.bucket_config(&bucket, &sub)?.is_some();
            if !exists && store.bucket_configs_with_prefix(&bucket, SUB_PREFIX)?.len() >= MAX_CONFIGURATIONS {
                return Err(ServiceError::client(
                    "TooManyConfigurations",
                    "You are attempting to create a new configuration but have already reached the 1,000-configuration limit.",
                ));
            }
            store
                .set_bucket_config(&bucket, &sub, Some(body.to_vec()))
                .await?;
            Ok(empty_response(StatusCode::NO_CONTENT))
        }
        (&Method::GET, Some(id)) => match store.bucket_config(&bucket, &format!("{SUB_PREFIX}{id}"))? {
            Some(doc) => {
                let mut resp = Response::new(lakebox_service::body::full(doc));
                crate::api::set_header(&mut resp, "content-type", "application/xml");
                Ok(resp)
            }
            None => Err(no_such_configuration()),
        },
        (&Method::DELETE, Some(id)) => {
            let sub = format!("{SUB_PREFIX}{id}");
            if store.bucket_config(&bucket, &sub)?.is_none() {
                return Err(no_such_configuration());
            }
            store.set_bucket_config(&bucket, &sub, None).await?;
            Ok(empty_response(StatusCode::NO_CONTENT))
        }
        _ => Err(crate::errors::method_not_allowed()),
    }
}

/// What a metered request's metrics need from before it runs.
pub struct Metered {
    bucket: String,
    filters: Vec<String>,
    kind: Option<&'static str>,
    /// A HEAD's answer has a length but no body: nothing downloaded.
    head: bool,
    uploaded: Option<f64>,
    started: std::time::Instant,
}

/// The request's metered filters, if its bucket has configurations that match it.
pub fn start(filters: &[Filter], req: &S3Request, kind: Option<&'static str>) -> Option<Metered> {
    let ids: Vec<String> = filters
        .iter()
        .filter(|f| f.matches(req.key.as_deref()))
        .map(|f| f.id.clone())
        .collect();
    if ids.is_empty() {
        return None;
    }
    Some(Metered {
        bucket: req.bucket.clone().unwrap_or_default(),
        filters: ids,
        kind,
        head: req.method == Method::HEAD,
        uploaded: (req.method == Method::PUT || req.method == Method::POST)
            .then(|| req.header("content-length").and_then(|v| v.parse::<f64>().ok()))
            .flatten(),
        started: std::time::Instant::now(),
    })
}

/// The kind of object request S3's request metrics count besides AllRequests, by method.
pub fn object_kind(req: &S3Request) -> &'static str {
    match req.method {
        Method::GET => "GetRequests",
        Method::HEAD => "HeadRequests",
        Method::PUT => "PutRequests",
        Method::DELETE => "DeleteRequests",
        Method::POST if req.has("select") => "SelectRequests",
        _ => "PostRequests",
    }
}

/// Records a finished request in each matching filter's metrics.
pub fn finish(
    recorder: &Recorder,
    account: &str,
    region: &str,
    m: Metered,
    result: &Result<Response<Body>, ServiceError>,
) {
    let status = match result {
        Ok(r) => r.status().as_u16(),
        Err(e) => e.status,
    };
    let downloaded = match result {
        Ok(r) if !m.head => r
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<f64>().ok())
            // A whole body in hand (an XML answer) knows its length before it is sent.
            .or_else(|| http_body::Body::size_hint(r.body()).exact().map(|n| n as f64))
            .filter(|n| *n > 0.0),
        _ => None,
    };
    let millis = m.started.elapsed().as_secs_f64() * 1000.0;
    let mut values = vec![
        ("AllRequests", "Count", 1.0),
        (
            "4xxErrors",
            "Count",
            if (400..500).contains(&status) { 1.0 } else { 0.0 },
        ),
        ("5xxErrors", "Count", if status >= 500 { 1.0 } else { 0.0 }),
        // The answer's head is ready when the handler returns: first byte and total alike
        // for what Lakebox measures here.
        ("FirstByteLatency", "Milliseconds", millis),
        ("TotalRequestLatency", "Milliseconds", millis),
    ];
    if let Some(kind) = m.kind {
        values.push((kind, "Count", 1.0));
    }
    if let Some(b) = downloaded {
        values.push(("BytesDownloaded", "Bytes", b));
    }
    if let Some(b) = m.uploaded.filter(|_| status < 300) {
        values.push(("BytesUploaded", "Bytes", b));
    }
    for id in &m.filters {
        recorder.record_many(
            account,
            region,
            "AWS/S3",
            &[("BucketName", m.bucket.as_str()), ("FilterId", id.as_str())],
            &values,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_by_prefix_only() {
        let doc = |x: &str| Filter::of(&xml::parse(x.as_bytes()).unwrap()).unwrap();
        let all = doc("<MetricsConfiguration><Id>all</Id></MetricsConfiguration>");
        let logs = doc(
            "<MetricsConfiguration><Id>logs</Id><Filter><Prefix>logs/</Prefix></Filter></MetricsConfiguration>",
        );
        let tagged = doc(
            "<MetricsConfiguration><Id>t</Id><Filter><And><Prefix>a</Prefix><Tag><Key>k</Key><Value>v</Value></Tag></And></Filter></MetricsConfiguration>",
        );
        assert!(all.matches(Some("x")) && all.matches(None));
        assert!(logs.matches(Some("logs/1")) && !logs.matches(Some("data/1")) && !logs.matches(None));
        assert!(!tagged.matches(Some("abc")));
        assert_eq!(logs.prefix.as_deref(), Some("logs/"));
    }
}
