//! A restJson1 request as the generated dispatchers read it, and the response they build:
//! the HTTP side of [`lakebox_protocol::rest_json`], which holds the codec.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use http_body_util::BodyExt;
use lakebox_core::ServiceError;
use lakebox_protocol::rest_json::{HeaderText, Labels, query_pairs};

use crate::OperationName;
use crate::body::{Body, full};

/// A restJson1 request, its body read whole (the gateway has bounded it already).
pub struct RestRequest {
    pub method: http::Method,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Where the operation's name goes for the gateway's request log.
    pub operation_name: Option<OperationName>,
}

impl RestRequest {
    pub async fn read(req: http::Request<Body>) -> Result<Self, ServiceError> {
        let (parts, body) = req.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| ServiceError::client("SerializationException", format!("reading the body: {e}")))?
            .to_bytes();
        Ok(RestRequest {
            query: query_pairs(parts.uri.query().unwrap_or("")),
            path: parts.uri.path().to_owned(),
            method: parts.method,
            operation_name: parts.extensions.get::<OperationName>().cloned(),
            headers: parts.headers,
            body,
        })
    }

    /// The first value of a query parameter.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a repeated query parameter.
    pub fn query_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.query
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// A header's comma-separated items (a list member bound to a header).
    pub fn header_items<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + 'a {
        self.header(name)
            .into_iter()
            .flat_map(|v| v.split(',').map(str::trim))
    }
}

/// A path label's value.
pub fn label<'a>(labels: &'a Labels, name: &str) -> Option<&'a str> {
    labels.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
}

/// An operation's answer: its status, bound headers and body.
pub struct RestResponse {
    pub status: u16,
    pub headers: Vec<(HeaderName, String)>,
    pub content_type: &'static str,
    pub body: Bytes,
}

impl RestResponse {
    /// The model's `responseCode` for the operation, an empty JSON body until one is set.
    pub fn new(status: u16) -> Self {
        RestResponse {
            status,
            headers: Vec::new(),
            content_type: "application/json",
            body: Bytes::new(),
        }
    }

    /// A member bound to a header (absent when the member is).
    pub fn header(&mut self, name: &'static str, value: Option<&impl HeaderText>) {
        if let Some(v) = value {
            self.headers
                .push((HeaderName::from_static(name), v.header_text()));
        }
    }

    /// A member bound to the status code.
    pub fn status_code(&mut self, code: Option<i32>) {
        if let Some(c) = code.and_then(|c| u16::try_from(c).ok()) {
            self.status = c;
        }
    }

    pub fn into_http(self) -> http::Response<Body> {
        let mut r = http::Response::new(full(self.body));
        *r.status_mut() = StatusCode::from_u16(self.status).unwrap_or(StatusCode::OK);
        let h = r.headers_mut();
        h.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                h.insert(name, v);
            }
        }
        r
    }
}
