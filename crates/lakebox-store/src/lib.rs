//! Durable storage primitives that every Lakebox service builds on.
//!
//! - [`kv::MetaStore`]: an ACID key-value store (redb) for resource metadata. Each write
//!   transaction is atomic and fsynced before it returns.
//! - [`blob`]: whole-file writes that are atomic on disk (write to a temporary file, fsync,
//!   rename, fsync the directory), in one call or streamed in chunks.
//! - [`log::Log`]: an append-only, segmented record log with group commit: many writers,
//!   one fsync per batch, each writer answered only after its records are on disk.
//! - [`codec`]: a compact binary encoding for the records services write to their logs.
//!
//! The rule they share: an acknowledged write survives `kill -9`, and a crash at any point
//! leaves the old state or the new one, never a torn one.
//!
//! What this crate is not: it knows no AWS service and no wire format.

pub mod blob;
pub mod codec;
pub mod kv;
pub mod log;
pub mod space;

pub use kv::{KeyRange, MetaStore, prefix_end};
pub use log::{Log, LogConfig, LogEntry, LogRecord};

/// Errors from the storage layer. They are I/O or corruption, never user mistakes, so services
/// turn them into 500s.
#[derive(Debug)]
pub enum StoreError {
    Io(std::io::Error),
    Kv(String),
    Corrupt(String),
    Closed,
    /// The disk is full: the write was refused (or failed) and nothing of it was kept. Reads and
    /// deletes still work; see [`space`].
    Full,
}

impl StoreError {
    /// Whether this is the full disk, which services answer as unavailable (and retryable)
    /// rather than as an internal failure.
    pub fn is_full(&self) -> bool {
        matches!(self, StoreError::Full)
    }
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Io(e) => write!(f, "storage I/O error: {e}"),
            StoreError::Kv(e) => write!(f, "metadata store error: {e}"),
            StoreError::Corrupt(e) => write!(f, "corrupt data: {e}"),
            StoreError::Closed => f.write_str("store is shut down"),
            StoreError::Full => f.write_str(
                "the disk holding Lakebox's data directory is full; delete data or free space and writes resume",
            ),
        }
    }
}

impl std::error::Error for StoreError {}

/// For code that speaks `io::Result`: the full disk stays recognisable (`StorageFull`).
impl From<StoreError> for std::io::Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Io(e) => e,
            StoreError::Full => std::io::Error::new(std::io::ErrorKind::StorageFull, StoreError::Full),
            e => std::io::Error::other(e),
        }
    }
}

/// Every I/O error a store meets passes here, so "no space" anywhere puts the process in the
/// full state.
impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        space::io_error(e)
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;
