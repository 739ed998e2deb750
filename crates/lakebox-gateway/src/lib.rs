//! The front door: one HTTP endpoint (HTTP/1.1 and h2c) for every AWS service Lakebox serves.
//!
//! For each request the gateway works out which protocol and service it is for
//! ([`classify`]), reads the SigV4 identity and, when credentials are configured, verifies it
//! ([`auth`]), hands the request to the service registered for it ([`registry`]), and renders
//! any [`ServiceError`](lakebox_core::ServiceError) in that protocol's error shape
//! ([`respond`]). Every response carries the request-id headers the SDKs read; a panicking
//! handler costs one 500, never the server.
//!
//! It knows no service's operations: services plug in through the traits of `lakebox-service`,
//! registered in a [`Registry`].

pub mod auth;
pub mod catalog;
pub mod classify;
mod idle;
pub mod registry;
pub mod respond;
pub mod server;

pub use auth::Authenticator;
pub use catalog::{Protocol, ServiceEntry};
pub use registry::Registry;
pub use server::{Gateway, GatewayConfig};
