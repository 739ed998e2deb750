//! How services plug into the gateway: one trait per protocol family.
//!
//! Handlers take `self: Arc<Self>` and return `'static` futures so the gateway can run each
//! request in its own task, which is what keeps a panic in one request from reaching others.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use lakebox_core::{RequestContext, ServiceError};
use lakebox_protocol::query::QueryRequest;
use lakebox_protocol::rpc::RpcEncoding;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::body::Body;

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

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

    /// The answer of an operation with no output: an empty body, as AWS sends it in JSON and
    /// as Smithy's CBOR protocol tests require (`no_output`); every SDK reads it as no output.
    pub fn reply_empty(&self) -> RpcResponse {
        RpcResponse {
            encoding: self.encoding,
            body: Bytes::new(),
            stream: None,
        }
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
