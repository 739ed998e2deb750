//! The lake's object API: how services other than S3 (Firehose writes, crawlers and Athena read
//! and write) reach the objects of Lakebox S3, without HTTP and without naming S3's crate.
//!
//! S3 implements [`ObjectLake`]; the binary hands a [`Lake`] built on it to the services that
//! need one. Errors are S3's own (`NoSuchBucket`, `NoSuchKey`, `AccessDenied`, …), so a service
//! can pass them on to its caller as AWS would; [`LakeError::of`] tells the kinds a service acts
//! on apart.

use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use lakebox_core::ServiceError;
use tokio::sync::mpsc;

use crate::Body;

/// S3's code for a missing key: part of this link's contract.
pub const NO_SUCH_KEY: &str = "NoSuchKey";
/// S3's code for a conditional write whose condition did not hold: part of this link's contract.
pub const PRECONDITION_FAILED: &str = "PreconditionFailed";

/// The kinds of lake failure other crates act on (the `object_store` adapter maps them onto
/// its own errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LakeError {
    /// No such key (or version).
    NotFound,
    /// A conditional write's condition did not hold.
    PreconditionFailed,
    /// Anything else.
    Other,
}

impl LakeError {
    /// What kind of failure `e`, an error from the lake, is.
    pub fn of(e: &ServiceError) -> LakeError {
        match e.code.as_ref() {
            NO_SUCH_KEY => LakeError::NotFound,
            PRECONDITION_FAILED => LakeError::PreconditionFailed,
            _ => LakeError::Other,
        }
    }
}

/// An object as listed or read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
    /// Without quotes, as stored.
    pub etag: String,
    pub last_modified_millis: i64,
    pub version_id: Option<String>,
    pub content_type: Option<String>,
}

/// Options of a write.
#[derive(Debug, Clone, Default)]
pub struct PutOptions {
    pub content_type: Option<String>,
    /// Refuse the write (`PreconditionFailed`) when the key exists.
    pub if_absent: bool,
    /// Refuse the write (`PreconditionFailed`) unless the current ETag is this one.
    pub if_match: Option<String>,
}

/// The bucket and key (or prefix) of an `s3://bucket/key` (or `s3a://`) URL, as the other
/// services name locations in Lakebox S3; `None` for anything else.
pub fn split_s3_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("s3://").or_else(|| url.strip_prefix("s3a://"))?;
    Some(rest.split_once('/').unwrap_or((rest, "")))
}

/// An object's bytes, streamed in chunks from disk.
pub type Chunks = mpsc::Receiver<std::io::Result<Bytes>>;

pub type LakeFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, ServiceError>> + Send + 'a>>;

/// What the object store implements. `acting_for` is the account a service reads or writes
/// for: another account's bucket is then `AccessDenied`, as S3 answers that caller; `None` is
/// Lakebox itself. Use it through [`Lake`].
pub trait ObjectLake: Send + Sync + 'static {
    /// Creates `bucket` for `account` in `region` if it does not exist; another account's
    /// bucket of that name is `BucketAlreadyExists`.
    fn ensure_bucket<'a>(&'a self, bucket: &'a str, region: &'a str, account: &'a str) -> LakeFuture<'a, ()>;

    /// Stores `body` under `key`, durably, as one PutObject would (with the bucket's default
    /// encryption); a body that fails stores nothing.
    fn put<'a>(
        &'a self,
        acting_for: Option<&'a str>,
        bucket: &'a str,
        key: &'a str,
        body: Body,
        opts: PutOptions,
    ) -> LakeFuture<'a, ObjectInfo>;

    /// The current version of `key`, if there is one.
    fn head(
        &self,
        acting_for: Option<&str>,
        bucket: &str,
        key: &str,
    ) -> Result<Option<ObjectInfo>, ServiceError>;

    /// `range` of `key` (all of it when `None`).
    fn get(
        &self,
        acting_for: Option<&str>,
        bucket: &str,
        key: &str,
        range: Option<Range<u64>>,
    ) -> Result<(ObjectInfo, Chunks), ServiceError>;

    /// Up to `limit` objects under `prefix`, after the key `after`, in S3's listing order.
    fn list(
        &self,
        acting_for: Option<&str>,
        bucket: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ObjectInfo>, ServiceError>;

    /// Copies `from` to `to` in `bucket`, as CopyObject with the bucket's default encryption.
    fn copy<'a>(
        &'a self,
        acting_for: Option<&'a str>,
        bucket: &'a str,
        from: &'a str,
        to: &'a str,
        if_absent: bool,
    ) -> LakeFuture<'a, ObjectInfo>;

    /// Deletes `key` as DeleteObject does; deleting a missing key succeeds.
    fn delete<'a>(&'a self, acting_for: Option<&'a str>, bucket: &'a str, key: &'a str)
    -> LakeFuture<'a, ()>;
}

/// Reads and writes objects of Lakebox S3. Cheap to clone.
///
/// A service reading or writing on a caller's behalf (Athena's tables and results, Firehose's
/// destinations, a crawler's targets) uses [`Lake::acting_for`] the caller's account: another
/// account's bucket is then `AccessDenied`, as S3 itself answers that caller.
#[derive(Clone)]
pub struct Lake {
    store: Arc<dyn ObjectLake>,
    acting_for: Option<Arc<str>>,
}

impl Lake {
    pub fn new(store: Arc<dyn ObjectLake>) -> Self {
        Lake {
            store,
            acting_for: None,
        }
    }

    /// This lake, limited to the buckets `account` owns.
    pub fn acting_for(&self, account: &str) -> Lake {
        Lake {
            store: self.store.clone(),
            acting_for: Some(account.into()),
        }
    }

    fn account(&self) -> Option<&str> {
        self.acting_for.as_deref()
    }

    /// See [`ObjectLake::ensure_bucket`].
    pub async fn ensure_bucket(&self, bucket: &str, region: &str, account: &str) -> Result<(), ServiceError> {
        self.store.ensure_bucket(bucket, region, account).await
    }

    /// Stores `data` under `key`, durably, as one PutObject would.
    pub async fn put(
        &self,
        bucket: &str,
        key: &str,
        data: Bytes,
        opts: PutOptions,
    ) -> Result<ObjectInfo, ServiceError> {
        self.store
            .put(self.account(), bucket, key, crate::body::full(data), opts)
            .await
    }

    /// Stores what arrives on `data` until the sender is dropped; an `Err` aborts the write and
    /// nothing is stored. Memory stays bounded by the channel, whatever the size.
    pub async fn put_stream(
        &self,
        bucket: &str,
        key: &str,
        data: Chunks,
        opts: PutOptions,
    ) -> Result<ObjectInfo, ServiceError> {
        self.store
            .put(
                self.account(),
                bucket,
                key,
                crate::body::channel_body(data, None),
                opts,
            )
            .await
    }

    /// See [`ObjectLake::head`].
    pub fn head(&self, bucket: &str, key: &str) -> Result<Option<ObjectInfo>, ServiceError> {
        self.store.head(self.account(), bucket, key)
    }

    /// See [`ObjectLake::get`].
    pub fn get(
        &self,
        bucket: &str,
        key: &str,
        range: Option<Range<u64>>,
    ) -> Result<(ObjectInfo, Chunks), ServiceError> {
        self.store.get(self.account(), bucket, key, range)
    }

    /// See [`ObjectLake::list`].
    pub fn list(
        &self,
        bucket: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ObjectInfo>, ServiceError> {
        self.store.list(self.account(), bucket, prefix, after, limit)
    }

    /// See [`ObjectLake::copy`].
    pub async fn copy(
        &self,
        bucket: &str,
        from: &str,
        to: &str,
        if_absent: bool,
    ) -> Result<ObjectInfo, ServiceError> {
        self.store.copy(self.account(), bucket, from, to, if_absent).await
    }

    /// See [`ObjectLake::delete`].
    pub async fn delete(&self, bucket: &str, key: &str) -> Result<(), ServiceError> {
        self.store.delete(self.account(), bucket, key).await
    }
}
