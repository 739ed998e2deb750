//! The S3 store as other Lakebox services use it (Firehose writes, crawlers and Athena read):
//! [`lakebox_service::lake::ObjectLake`] over the same buckets, durability and default
//! encryption as the S3 API, without HTTP.

use std::ops::Range;
use std::sync::Arc;

use http::HeaderMap;
use lakebox_core::ServiceError;
use lakebox_service::Body;
pub use lakebox_service::lake::{
    Chunks, Lake, LakeError, LakeFuture, ObjectInfo, ObjectLake, PutOptions, split_s3_url,
};

use crate::errors;
use crate::notify::{Change, Origin};
use crate::sse::KeySource;
use crate::store::{BucketRecord, ContentHeaders, ObjectRecord, ObjectStore, Segment, WriteCondition};

fn info(r: &ObjectRecord) -> ObjectInfo {
    ObjectInfo {
        key: r.key.clone(),
        size: r.size,
        etag: r.etag.clone(),
        last_modified_millis: r.last_modified_millis,
        version_id: r.version_id.clone(),
        content_type: r.content.content_type.clone(),
    }
}

/// The lake over Lakebox S3's store.
pub fn lake(store: Arc<ObjectStore>) -> Lake {
    Lake::new(Arc::new(S3Lake(store)))
}

struct S3Lake(Arc<ObjectStore>);

impl S3Lake {
    /// The bucket, if it exists and `acting_for` (when given) may do `action` to it (or to its
    /// object `key`): the bucket's policy and ACLs decide, as for the caller's own S3 requests.
    fn usable_bucket(
        &self,
        acting_for: Option<&str>,
        bucket: &str,
        action: &str,
        key: Option<&str>,
    ) -> Result<BucketRecord, ServiceError> {
        let record = self
            .0
            .bucket(bucket)?
            .ok_or_else(|| errors::no_such_bucket(bucket))?;
        if let Some(account) = acting_for {
            let who = lakebox_policy::Principal::root_of(account.to_owned());
            crate::access::check(&self.0, None, &who, action, bucket, key)?;
        }
        Ok(record)
    }

    async fn put_body(
        &self,
        acting_for: Option<&str>,
        bucket: &str,
        key: &str,
        body: Body,
        opts: PutOptions,
    ) -> Result<ObjectInfo, ServiceError> {
        let store = &self.0;
        crate::object::check_key(key)?;
        let owner = self.usable_bucket(acting_for, bucket, "s3:PutObject", Some(key))?;
        let sse = crate::object::bucket_default_sse(store, bucket, &owner.region, &owner.owner)?;
        let encrypt = sse.as_ref().map(|_| KeySource::Lakebox);
        let received = crate::upload::receive(store, &HeaderMap::new(), body, true, encrypt, None).await?;
        let (base, inline) = received.into_object(key.to_owned(), store.now_millis());
        let record = ObjectRecord {
            content: ContentHeaders {
                content_type: opts.content_type,
                ..Default::default()
            },
            sse,
            lock: crate::object_lock::default_lock(store, bucket),
            ..base
        };
        let condition = WriteCondition {
            if_none_match_any: opts.if_absent,
            if_match: opts.if_match,
        };
        let record = store.commit_object(bucket, record, inline, condition).await?;
        lake_event(
            store,
            bucket,
            &record.key,
            Change::Created("ObjectCreated:Put", &record),
        )
        .await?;
        Ok(info(&record))
    }

    async fn copy_object(
        &self,
        acting_for: Option<&str>,
        bucket: &str,
        from: &str,
        to: &str,
        if_absent: bool,
    ) -> Result<ObjectInfo, ServiceError> {
        let store = &self.0;
        crate::object::check_key(to)?;
        self.usable_bucket(acting_for, bucket, "s3:GetObject", Some(from))?;
        let owner = self.usable_bucket(acting_for, bucket, "s3:PutObject", Some(to))?;
        let src = store
            .object(bucket, from)?
            .filter(|r| !r.delete_marker)
            .ok_or_else(|| errors::no_such_key(from))?;
        if !src.is_readable(store.now_millis()) {
            return Err(errors::invalid_object_state(&src.storage_class));
        }
        let src_keys = crate::sse_c::read_keys(&src, None)?;
        let sse = crate::object::bucket_default_sse(store, bucket, &owner.region, &owner.owner)?;
        let encrypt = sse.as_ref().map(|_| KeySource::Lakebox);
        let (blob, md5) = crate::object::copy_data(store, &src, 0, src.size, src_keys, encrypt).await?;
        let record = ObjectRecord {
            key: to.to_owned(),
            etag: md5,
            last_modified_millis: store.now_millis(),
            segments: vec![Segment {
                blob,
                len: src.size,
                inline: false,
                encrypted: encrypt.is_some(),
            }],
            parts_count: None,
            parts: Vec::new(),
            version_id: None,
            delete_marker: false,
            version_seq: 0,
            restore: None,
            sse,
            checksum: src.checksum.clone().filter(|c| c.kind == "FULL_OBJECT"),
            lock: crate::object_lock::default_lock(store, bucket),
            acl: None,
            ..src
        };
        let condition = WriteCondition {
            if_none_match_any: if_absent,
            if_match: None,
        };
        let record = store.commit_object(bucket, record, None, condition).await?;
        lake_event(
            store,
            bucket,
            &record.key,
            Change::Created("ObjectCreated:Copy", &record),
        )
        .await?;
        Ok(info(&record))
    }
}

/// Writes by other services (Firehose deliveries, Athena results) raise the bucket's
/// notifications as any write does.
async fn lake_event(
    store: &ObjectStore,
    bucket: &str,
    key: &str,
    change: Change<'_>,
) -> Result<(), ServiceError> {
    let id = lakebox_core::ids::request_id();
    crate::notify::object_event(store, bucket, key, change, &Origin::internal(&id, "AWS:lakebox")).await
}

impl ObjectLake for S3Lake {
    fn ensure_bucket<'a>(&'a self, bucket: &'a str, region: &'a str, account: &'a str) -> LakeFuture<'a, ()> {
        Box::pin(async move {
            crate::bucket::validate_bucket_name(bucket)?;
            self.0
                .create_bucket(BucketRecord {
                    name: bucket.to_owned(),
                    region: region.to_owned(),
                    owner: account.to_owned(),
                    created_millis: self.0.now_millis(),
                    versioning: None,
                })
                .await
                .map(|_| ())
        })
    }

    fn put<'a>(
        &'a self,
        acting_for: Option<&'a str>,
        bucket: &'a str,
        key: &'a str,
        body: Body,
        opts: PutOptions,
    ) -> LakeFuture<'a, ObjectInfo> {
        Box::pin(self.put_body(acting_for, bucket, key, body, opts))
    }

    fn head(
        &self,
        acting_for: Option<&str>,
        bucket: &str,
        key: &str,
    ) -> Result<Option<ObjectInfo>, ServiceError> {
        self.usable_bucket(acting_for, bucket, "s3:GetObject", Some(key))?;
        Ok(self
            .0
            .object(bucket, key)?
            .filter(|r| !r.delete_marker)
            .map(|r| info(&r)))
    }

    /// Objects sealed with a customer's key (SSE-C) cannot be read this way (`InvalidRequest`),
    /// as in S3.
    fn get(
        &self,
        acting_for: Option<&str>,
        bucket: &str,
        key: &str,
        range: Option<Range<u64>>,
    ) -> Result<(ObjectInfo, Chunks), ServiceError> {
        self.usable_bucket(acting_for, bucket, "s3:GetObject", Some(key))?;
        let (rec, sources) = self
            .0
            .object_with_sources(bucket, key, |rec| crate::sse_c::read_keys(rec, None))?
            .filter(|(r, _)| !r.delete_marker)
            .ok_or_else(|| errors::no_such_key(key))?;
        if !rec.is_readable(self.0.now_millis()) {
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
        Ok((info(&rec), crate::download::chunks(pieces)))
    }

    fn list(
        &self,
        acting_for: Option<&str>,
        bucket: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ObjectInfo>, ServiceError> {
        self.usable_bucket(acting_for, bucket, "s3:ListBucket", None)?;
        let mut out = Vec::new();
        let mut cursor = after.map(|a| a.as_bytes().to_vec());
        // Delete markers are skipped, so a page may need more than one scan.
        while out.len() < limit {
            let batch = self
                .0
                .list_objects(bucket, prefix, cursor.as_deref(), limit - out.len())?;
            let Some(last) = batch.last() else { break };
            cursor = Some(last.key.as_bytes().to_vec());
            out.extend(batch.iter().filter(|r| !r.delete_marker).map(info));
        }
        Ok(out)
    }

    fn copy<'a>(
        &'a self,
        acting_for: Option<&'a str>,
        bucket: &'a str,
        from: &'a str,
        to: &'a str,
        if_absent: bool,
    ) -> LakeFuture<'a, ObjectInfo> {
        Box::pin(self.copy_object(acting_for, bucket, from, to, if_absent))
    }

    fn delete<'a>(
        &'a self,
        acting_for: Option<&'a str>,
        bucket: &'a str,
        key: &'a str,
    ) -> LakeFuture<'a, ()> {
        Box::pin(async move {
            self.usable_bucket(acting_for, bucket, "s3:DeleteObject", Some(key))?;
            let outcome = self.0.delete_object(bucket, key, None).await?;
            lake_event(&self.0, bucket, key, crate::object::removal(&outcome, false)).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::S3Settings;
    use bytes::Bytes;
    use tokio::sync::mpsc;

    pub(super) async fn lake(dir: &std::path::Path) -> Lake {
        let store = ObjectStore::open(
            dir,
            Arc::new(lakebox_core::clock::SystemClock),
            S3Settings::default(),
        )
        .unwrap();
        let lake = super::lake(Arc::new(store));
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
    use bytes::Bytes;

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
