//! Amazon S3 for Lakebox: a durable, streaming object store behind the S3 REST (restXml) API.
//!
//! - [`store`]: buckets, objects and multipart uploads on disk (redb metadata + fsynced blob
//!   files); also the Rust API Firehose, Glue and Athena will call directly.
//! - [`upload`] / [`download`]: streaming object data in and out in bounded memory, with
//!   `aws-chunked` decoding and MD5, SHA-256 and flexible checksums verified on the way in.
//! - [`api`]: the HTTP surface: which operation a request is, and each operation's S3 semantics
//!   and XML.
//!
//! Not here: authentication (the gateway verifies SigV4 before a request arrives) and the
//! protocol-wide error rendering (the gateway renders [`lakebox_core::ServiceError`] as S3's
//! `<Error>` document).

mod access;
pub mod access_log;
mod acl;
pub mod api;
mod bucket;
mod config;
mod control;
mod cors;
mod crc_combine;
pub mod download;
mod errors;
pub mod lake;
pub mod lifecycle;
mod list;
mod multipart;
mod notify;
mod object;
mod object_lock;
mod post;
mod request_metrics;
pub mod select;
pub mod sse;
mod sse_c;
pub mod store;
pub mod upload;
mod versioning;
mod xml;

pub use api::S3;
pub use store::{ObjectStore, S3Settings};
