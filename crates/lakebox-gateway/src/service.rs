//! How services plug into the gateway: one trait per protocol family, and the [`Registry`]
//! that maps catalogue entries to implementations.
//!
//! Handlers take `self: Arc<Self>` and return `'static` futures so the gateway can run each
//! request in its own task, which is what keeps a panic in one request from reaching others.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use lakebox_core::{RequestContext, ServiceError};
use lakebox_protocol::query::QueryRequest;
use lakebox_protocol::rpc::RpcEncoding;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::catalog::{CATALOG, ServiceEntry};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;
/// The body type of streamed requests and responses.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

/// An awsJson / CBOR call: the operation from `X-Amz-Target` and the raw body.
#[derive(Debug, Clone)]
pub struct RpcRequest {
    pub operation: String,
    pub encoding: RpcEncoding,
    pub body: Bytes,
}

impl RpcRequest {
    /// Decodes the body into the operation's input structure.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, ServiceError> {
        self.encoding.decode(&self.body)
    }

    /// Encodes the operation's output in the encoding the request came in.
    pub fn reply<T: Serialize>(&self, output: &T) -> Result<RpcResponse, ServiceError> {
        Ok(RpcResponse {
            encoding: self.encoding,
            body: self.encoding.encode(output)?,
            stream: None,
        })
    }

    /// Encodes an output built as JSON, dropping top-level `null` members so that absent
    /// outputs (a last page's `NextToken`) are absent on the wire, as AWS sends them.
    pub fn reply_value(&self, mut output: serde_json::Value) -> Result<RpcResponse, ServiceError> {
        if let serde_json::Value::Object(m) = &mut output {
            m.retain(|_, v| !v.is_null());
        }
        self.reply(&output)
    }
}

pub struct RpcResponse {
    pub encoding: RpcEncoding,
    pub body: Bytes,
    /// A streamed body (an event stream) sent instead of `body`, with its content type.
    pub stream: Option<(&'static str, Body)>,
}

impl RpcResponse {
    /// A response whose body is a stream (`application/vnd.amazon.eventstream`, say).
    pub fn streaming(encoding: RpcEncoding, content_type: &'static str, body: Body) -> Self {
        RpcResponse {
            encoding,
            body: Bytes::new(),
            stream: Some((content_type, body)),
        }
    }
}

/// A service spoken to with awsJson 1.0/1.1 or CBOR.
pub trait RpcService: Send + Sync + 'static {
    fn call(
        self: Arc<Self>,
        ctx: RequestContext,
        req: RpcRequest,
    ) -> BoxFuture<Result<RpcResponse, ServiceError>>;
}

/// A service spoken to with awsQuery. Returns the whole XML document (see
/// [`lakebox_protocol::query::response_xml`]).
pub trait QueryService: Send + Sync + 'static {
    fn call(
        self: Arc<Self>,
        ctx: RequestContext,
        req: QueryRequest,
    ) -> BoxFuture<Result<String, ServiceError>>;
}

/// A REST service (S3, Lambda, …) that sees the whole HTTP request and streams bodies.
pub trait HttpService: Send + Sync + 'static {
    fn call(
        self: Arc<Self>,
        ctx: RequestContext,
        req: http::Request<Body>,
    ) -> BoxFuture<Result<http::Response<Body>, ServiceError>>;
}

/// The services this server runs, by catalogue name.
#[derive(Default)]
pub struct Registry {
    extra_entries: Vec<ServiceEntry>,
    rpc: HashMap<&'static str, Arc<dyn RpcService>>,
    query: HashMap<&'static str, Arc<dyn QueryService>>,
    http: HashMap<&'static str, Arc<dyn HttpService>>,
    /// Handler for `/_lakebox/test/…`, present only when test routes are switched on.
    pub(crate) test_routes: Option<Arc<dyn HttpService>>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a service that is not in the AWS catalogue (Lakebox's own test service).
    pub fn add_entry(&mut self, entry: ServiceEntry) -> &mut Self {
        self.extra_entries.push(entry);
        self
    }

    pub fn rpc(&mut self, name: &'static str, service: Arc<dyn RpcService>) -> &mut Self {
        self.rpc.insert(name, service);
        self
    }

    pub fn query(&mut self, name: &'static str, service: Arc<dyn QueryService>) -> &mut Self {
        self.query.insert(name, service);
        self
    }

    pub fn http(&mut self, name: &'static str, service: Arc<dyn HttpService>) -> &mut Self {
        self.http.insert(name, service);
        self
    }

    pub fn test_routes(&mut self, handler: Arc<dyn HttpService>) -> &mut Self {
        self.test_routes = Some(handler);
        self
    }

    /// Every recognised service: the AWS catalogue plus added entries.
    pub fn entries(&self) -> impl Iterator<Item = &ServiceEntry> {
        CATALOG.iter().chain(self.extra_entries.iter())
    }

    pub fn rpc_service(&self, name: &str) -> Option<Arc<dyn RpcService>> {
        self.rpc.get(name).cloned()
    }

    pub fn query_service(&self, name: &str) -> Option<Arc<dyn QueryService>> {
        self.query.get(name).cloned()
    }

    pub fn http_service(&self, name: &str) -> Option<Arc<dyn HttpService>> {
        self.http.get(name).cloned()
    }

    /// Whether any implementation is registered under `name`.
    pub fn is_running(&self, name: &str) -> bool {
        self.rpc.contains_key(name) || self.query.contains_key(name) || self.http.contains_key(name)
    }
}
