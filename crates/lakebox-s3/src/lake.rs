//! The S3 store as other Lakebox services use it (Firehose writes, crawlers and Athena read):
//! the same buckets, durability and default encryption as the S3 API, without HTTP.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use http::HeaderMap;
use lakebox_core::ServiceError;
use lakebox_service::Body;
use tokio::sync::mpsc;

use crate::errors;
use crate::sse::KeySource;
use crate::store::{BucketRecord, ContentHeaders, ObjectRecord, ObjectStore, Segment, WriteCondition};

/// The kinds of lake failure other crates act on (the `object_store` adapter maps them onto
/// its own errors), without comparing S3 code strings.
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
            errors::NO_SUCH_KEY => LakeError::NotFound,
            errors::PRECONDITION_FAILED => LakeError::PreconditionFailed,
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

impl From<&ObjectRecord> for ObjectInfo {
    fn from(r: &ObjectRecord) -> Self {
        ObjectInfo {
            key: r.key.clone(),
            size: r.size,
            etag: r.etag.clone(),
            last_modified_millis: r.last_modified_millis,
            version_id: r.version_id.clone(),
            content_type: r.content.content_type.clone(),
        }
    }
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

/// Reads and writes objects of Lakebox S3. Cheap to clone.
///
/// A service reading or writing on a caller's behalf (Athena's tables and results, Firehose's
/// destinations, a crawler's targets) uses [`Lake::acting_for`] the caller's account: another
/// account's bucket is then `AccessDenied`, as S3 itself answers that caller.
#[derive(Clone)]
pub struct Lake {
    store: Arc<ObjectStore>,
    acting_for: Option<Arc<str>>,
}

impl Lake {
    pub fn new(store: Arc<ObjectStore>) -> Self {
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

    /// The bucket, if it exists and the account this lake acts for may use it.
    fn usable_bucket(&self, bucket: &str) -> Result<BucketRecord, ServiceError> {
        match &self.acting_for {
            Some(account) => self.store.owned_bucket(bucket, account),
            None => self
                .store
                .bucket(bucket)?
                .ok_or_else(|| errors::no_such_bucket(bucket)),
        }
    }

    /// Creates `bucket` for `account` in `region` if it does not exist (services that keep
    /// their output in S3 make their buckets this way); another account's bucket of that name
    /// is `BucketAlreadyExists`.
    pub async fn ensure_bucket(&self, bucket: &str, region: &str, account: &str) -> Result<(), ServiceError> {
        crate::bucket::validate_bucket_name(bucket)?;
        self.store
            .create_bucket(BucketRecord {
                name: bucket.to_owned(),
                region: region.to_owned(),
                owner: account.to_owned(),
                created_millis: self.store.now_millis(),
                versioning: None,
            })
            .await
            .map(|_| ())
    }

    /// Stores `data` under `key`, durably, as one PutObject would.
    pub async fn put(
        &self,
        bucket: &str,
        key: &str,
        data: Bytes,
        opts: PutOptions,
    ) -> Result<ObjectInfo, ServiceError> {
        self.put_body(bucket, key, lakebox_service::body::full(data), opts)
            .await
    }

    /// Stores what arrives on `data` until the sender is dropped; an `Err` aborts the write and
    /// nothing is stored. Memory stays bounded by the channel, whatever the size.
    pub async fn put_stream(
        &self,
        bucket: &str,
        key: &str,
        data: mpsc::Receiver<std::io::Result<Bytes>>,
        opts: PutOptions,
    ) -> Result<ObjectInfo, ServiceError> {
        self.put_body(bucket, key, lakebox_service::body::channel_body(data, None), opts)
            .await
    }

    async fn put_body(
        &self,
        bucket: &str,
        key: &str,
        body: Body,
        opts: PutOptions,
    ) -> Result<ObjectInfo, ServiceError> {
        crate::object::check_key(key)?;
        let owner = self.usable_bucket(bucket)?;
        let sse = crate::object::bucket_default_sse(&self.store, bucket, &owner.region, &owner.owner)?;
        let encrypt = sse.as_ref().map(|_| KeySource::Lakebox);
        let received =
            crate::upload::receive(&self.store, &HeaderMap::new(), body, true, encrypt, None).await?;
        let (base, inline) = received.into_object(key.to_owned(), self.store.now_millis());
        let record = ObjectRecord {
            content: ContentHeaders {
                content_type: opts.content_type,
                ..Default::default()
            },
            sse,
            ..base
        };
        let condition = WriteCondition {
            if_none_match_any: opts.if_absent,
            if_match: opts.if_match,
        };
        let record = self
            .store
            .commit_object(bucket, record, inline, condition)
            .await?;
        Ok(ObjectInfo::from(&record))
    }

    /// The current version of `key`, if there is one.
    pub fn head(&self, bucket: &str, key: &str) -> Result<Option<ObjectInfo>, ServiceError> {
        self.existing_bucket(bucket)?;
        Ok(self
            .store
            .object(bucket, key)?
            .filter(|r| !r.delete_marker)
            .map(|r| ObjectInfo::from(&r)))
    }

    /// `range` of `key` (all of it when `None`), streamed in chunks from disk. Objects sealed
    /// with a customer's key (SSE-C) cannot be read this way (`InvalidRequest`), as in S3.
    pub fn get(
        &self,
        bucket: &str,
        key: &str,
        range: Option<Range<u64>>,
    ) -> Result<(ObjectInfo, mpsc::Receiver<std::io::Result<Bytes>>), ServiceError> {
        self.existing_bucket(bucket)?;
        let (rec, sources) = self
            .store
            .object_with_sources(bucket, key, |rec| crate::sse_c::read_keys(rec, None))?
            .filter(|(r, _)| !r.delete_marker)
            .ok_or_else(|| errors::no_such_key(key))?;
        if !rec.is_readable(self.store.now_millis()) {
            return Err(errors::invalid_object_state(&rec.storage_class));
        }
        let range = range.unwrap_or(0..rec.size);
        if range.start > range.end || range.end > rec.size {
            return Err(ServiceError::new(
                "InvalidRange",
                416,
                "The requested range is not satisfiable",
            ));
        }
        let pieces = crate::download::plan(&sources, range.start, range.end - range.start);
        Ok((ObjectInfo::from(&rec), crate::download::chunks(pieces)))
    }

    /// Up to `limit` objects under `prefix`, after the key `after`, in S3's listing order.
    pub fn list(
        &self,
        bucket: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ObjectInfo>, ServiceError> {
        self.existing_bucket(bucket)?;
        let mut out = Vec::new();
        let mut cursor = after.map(|a| a.as_bytes().to_vec());
        // Delete markers are skipped, so a page may need more than one scan.
        while out.len() < limit {
            let batch = self
                .store
                .list_objects(bucket, prefix, cursor.as_deref(), limit - out.len())?;
            let Some(last) = batch.last() else { break };
            cursor = Some(last.key.as_bytes().to_vec());
            out.extend(batch.iter().filter(|r| !r.delete_marker).map(ObjectInfo::from));
        }
        Ok(out)
    }

    /// Copies `from` to `to` in `bucket`, as CopyObject with the bucket's default encryption.
    pub async fn copy(
        &self,
        bucket: &str,
        from: &str,
        to: &str,
        if_absent: bool,
    ) -> Result<ObjectInfo, ServiceError> {
        crate::object::check_key(to)?;
        let owner = self.usable_bucket(bucket)?;
        let src = self
            .store
            .object(bucket, from)?
            .filter(|r| !r.delete_marker)
            .ok_or_else(|| errors::no_such_key(from))?;
        if !src.is_readable(self.store.now_millis()) {
            return Err(errors::invalid_object_state(&src.storage_class));
        }
        let src_keys = crate::sse_c::read_keys(&src, None)?;
        let sse = crate::object::bucket_default_sse(&self.store, bucket, &owner.region, &owner.owner)?;
        let encrypt = sse.as_ref().map(|_| KeySource::Lakebox);
        let (blob, md5) = crate::object::copy_data(&self.store, &src, 0, src.size, src_keys, encrypt).await?;
        let record = ObjectRecord {
            key: to.to_owned(),
            etag: md5,
            last_modified_millis: self.store.now_millis(),
            segments: vec![Segment {
                blob,
                len: src.size,
                inline: false,
                encrypted: encrypt.is_some(),
            }],
            parts_count: None,
            version_id: None,
            delete_marker: false,
            version_seq: 0,
            restore: None,
            sse,
            checksum: src.checksum.clone().filter(|c| c.kind == "FULL_OBJECT"),
            ..src
        };
        let condition = WriteCondition {
            if_none_match_any: if_absent,
            if_match: None,
        };
        let record = self.store.commit_object(bucket, record, None, condition).await?;
        Ok(ObjectInfo::from(&record))
    }

    /// Deletes `key` as DeleteObject does (a delete marker in a versioned bucket); deleting a
    /// missing key succeeds.
    pub async fn delete(&self, bucket: &str, key: &str) -> Result<(), ServiceError> {
        self.existing_bucket(bucket)?;
        self.store.delete_object(bucket, key, None).await.map(|_| ())
    }

    fn existing_bucket(&self, bucket: &str) -> Result<(), ServiceError> {
        self.usable_bucket(bucket).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::S3Settings;

    pub(super) async fn lake(dir: &std::path::Path) -> Lake {
        let store = ObjectStore::open(
            dir,
            Arc::new(lakebox_core::clock::SystemClock),
            S3Settings::default(),
        )
        .unwrap();
        let lake = Lake::new(Arc::new(store));
        lake.ensure_bucket("lake", "us-east-1", "000000000000")
            .await
            .unwrap();
        lake.ensure_bucket("lake", "us-east-1", "000000000000")
            .await
            .unwrap();
        assert_eq!(
            lake.ensure_bucket("lake", "us-east-1", "111111111111")
                .await
                .unwrap_err()
                .code,
            "BucketAlreadyExists"
        );
        assert_eq!(
            lake.ensure_bucket("No_Such", "us-east-1", "000000000000")
                .await
                .unwrap_err()
                .code,
            "InvalidBucketName"
        );
        lake
    }

    async fn read_all(mut rx: mpsc::Receiver<std::io::Result<Bytes>>) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(chunk) = rx.recv().await {
            out.extend_from_slice(&chunk.unwrap());
        }
        out
    }

    #[tokio::test]
    async fn put_get_list_copy_delete() {
        let dir = tempfile::tempdir().unwrap();
        let lake = lake(dir.path()).await;
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let info = lake
            .put(
                "lake",
                "t/a.parquet",
                Bytes::from(big.clone()),
                PutOptions::default(),
            )
            .await
            .unwrap();
        assert_eq!(info.size, big.len() as u64);
        lake.put("lake", "t/b", Bytes::from_static(b"small"), PutOptions::default())
            .await
            .unwrap();
        let (_, rx) = lake.get("lake", "t/a.parquet", None).unwrap();
        assert_eq!(read_all(rx).await, big);
        let (_, rx) = lake
            .get("lake", "t/a.parquet", Some(1_000_000..1_000_010))
            .unwrap();
        assert_eq!(read_all(rx).await, &big[1_000_000..1_000_010]);
        assert_eq!(
            lake.get("lake", "t/b", Some(3..9)).err().unwrap().code,
            "InvalidRange"
        );

        let keys = |v: Vec<ObjectInfo>| v.into_iter().map(|o| o.key).collect::<Vec<_>>();
        assert_eq!(
            keys(lake.list("lake", "t/", None, 10).unwrap()),
            ["t/a.parquet", "t/b"]
        );
        assert_eq!(
            keys(lake.list("lake", "t/", Some("t/a.parquet"), 10).unwrap()),
            ["t/b"]
        );

        let copied = lake.copy("lake", "t/a.parquet", "u/a", false).await.unwrap();
        assert_eq!(copied.etag, info.etag);
        let refused = lake.copy("lake", "t/b", "u/a", true).await.err().unwrap();
        assert_eq!(refused.code, "PreconditionFailed");
        let refused = lake
            .put(
                "lake",
                "t/b",
                Bytes::new(),
                PutOptions {
                    if_absent: true,
                    ..Default::default()
                },
            )
            .await
            .err()
            .unwrap();
        assert_eq!(refused.code, "PreconditionFailed");

        lake.delete("lake", "t/a.parquet").await.unwrap();
        assert!(lake.head("lake", "t/a.parquet").unwrap().is_none());
        assert_eq!(
            lake.get("lake", "t/a.parquet", None).err().unwrap().code,
            "NoSuchKey"
        );
        assert_eq!(lake.head("nope", "k").err().unwrap().code, "NoSuchBucket");
    }

    #[tokio::test]
    async fn a_failed_stream_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let lake = lake(dir.path()).await;
        let (tx, rx) = mpsc::channel(2);
        tokio::spawn(async move {
            tx.send(Ok(Bytes::from(vec![1u8; 100_000]))).await.unwrap();
            tx.send(Err(std::io::Error::other("producer failed")))
                .await
                .unwrap();
        });
        assert!(
            lake.put_stream("lake", "k", rx, PutOptions::default())
                .await
                .is_err()
        );
        assert!(lake.head("lake", "k").unwrap().is_none());
    }
}

#[cfg(test)]
mod race_tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn conditional_updates_never_lose_one() {
        let dir = tempfile::tempdir().unwrap();
        let lake = super::tests::lake(dir.path()).await;
        lake.put("lake", "n", Bytes::from_static(b"0"), PutOptions::default())
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for _ in 0..5 {
            let lake = lake.clone();
            tasks.push(tokio::spawn(async move {
                let mut done = 0;
                while done < 10 {
                    let (info, mut rx) = lake.get("lake", "n", None).unwrap();
                    let mut v = Vec::new();
                    while let Some(c) = rx.recv().await {
                        v.extend_from_slice(&c.unwrap());
                    }
                    let n: u32 = std::str::from_utf8(&v).unwrap().parse().unwrap();
                    let opts = PutOptions {
                        if_match: Some(info.etag.clone()),
                        ..Default::default()
                    };
                    match lake
                        .put("lake", "n", Bytes::from((n + 1).to_string()), opts)
                        .await
                    {
                        Ok(_) => done += 1,
                        Err(e) => assert_eq!(e.code, "PreconditionFailed"),
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let (_, mut rx) = lake.get("lake", "n", None).unwrap();
        let mut v = Vec::new();
        while let Some(c) = rx.recv().await {
            v.extend_from_slice(&c.unwrap());
        }
        assert_eq!(v, b"50");
    }
}
