//! The interface between the gateway and the services, in a crate of its own so that no
//! service depends on the HTTP server.
//!
//! What lives here: the traits the gateway calls ([`RpcService`], [`QueryService`],
//! [`HttpService`]), the request and response types they exchange, the one body type, the
//! request extensions the gateway attaches ([`PeerAddr`], [`VirtualHostBucket`]), and
//! [`BackgroundTasks`], the handle that owns a service's background work, [`links`], the
//! small traits through which one service reads another's data, and [`events`], through which
//! one publishes to another's resources.
//!
//! What does not: routing, authentication, error rendering (the gateway) and wire codecs
//! (`lakebox-protocol`).

pub mod body;
pub mod events;
pub mod lake;
pub mod links;
pub mod metrics;
#[cfg(feature = "outbound")]
pub mod outbound;
pub mod pool;
pub mod rest;
pub mod select;
pub mod service;
pub mod tasks;
pub mod validate;

pub use body::{Body, BoxError};
pub use service::{BoxFuture, HttpService, QueryService, RpcRequest, RpcResponse, RpcService};
pub use tasks::BackgroundTasks;

/// Request extension: the client's address (services refuse some things to remote peers, as
/// AWS refuses them without TLS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub std::net::SocketAddr);

/// Request extension: where a service whose operation the URL alone does not name (S3, REST
/// services) writes the AWS operation it found, so the gateway's request log names it.
#[derive(Debug, Clone, Default)]
pub struct OperationName(pub std::sync::Arc<std::sync::OnceLock<String>>);

impl OperationName {
    pub fn set(&self, name: impl Into<String>) {
        let _ = self.0.set(name.into());
    }

    pub fn get(&self) -> Option<&str> {
        self.0.get().map(String::as_str)
    }
}

/// Request extension: an unsigned request that a server checking signatures let through to a
/// service that decides anonymous callers itself (S3, by its buckets' policies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Anonymous;

/// Request extension for Lambda: the request came to a function URL
/// (`<url-id>.lambda-url.<region>.localhost`), whose id this is; the path is the function's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionUrlId(pub String);

/// Request extension for S3: the bucket named by a virtual-host style `Host`
/// (`<bucket>.localhost`), in which case the path is the key alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualHostBucket(pub String);
