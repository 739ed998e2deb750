//! AWS wire protocols, with no knowledge of any one service.
//!
//! - [`rpc`]: awsJson 1.0 / 1.1 and its CBOR variant (Kinesis' Java SDK / KCL): typed request and
//!   response structs go through serde, so one struct serves both encodings.
//! - [`query`]: awsQuery form bodies in, XML out (SNS, IAM, STS, old SQS SDKs); [`query_serde`]
//!   reads forms into, and writes XML from, the same serde shapes the JSON services use.
//! - [`xml`]: a small XML writer and tree reader used by the query and restXml codecs.
//! - [`rest_json`]: restJson1's routing by URI template and its bound members (Lambda).
//! - [`rest_xml`]: S3's error shape.
//! - [`types`]: the two scalar types whose encoding differs per protocol: [`Timestamp`] and
//!   [`Blob`].
//! - [`eventstream`]: the binary framing of streaming responses.
//! - [`sigv4`]: parsing and verifying Signature Version 4, in headers and presigned URLs.
//!
//! This crate decides *how bytes look*; what an operation means is the service crates' business.

pub mod eventstream;
pub mod form_auth;
pub mod protobuf;
pub mod query;
pub mod query_serde;
pub mod rest_json;
pub mod rest_xml;
pub mod rpc;
pub mod sigv2;
pub mod sigv4;
pub mod types;
pub mod xml;

pub use types::{Blob, Timestamp};
