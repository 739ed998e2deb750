//! The object store under the S3 API, and the Rust API other services (Firehose, Glue, Athena)
//! use directly.
//!
//! Metadata (buckets, objects, multipart uploads and parts) lives in the redb
//! [`MetaStore`]; object data lives in blob files written with [`BlobWriter`] (fsync, rename).
//! An object is durable once its blobs are committed *and* its metadata transaction has
//! committed; only then is it visible, so a crash at any point leaves the old object or the new
//! one, never a torn or half-visible one.
//!
//! Key layout (all tables map byte keys to JSON records):
//! - `buckets`: `<bucket>`
//! - `objects`: `<bucket>/<key>`: byte order is S3's listing order (UTF-8 byte order)
//! - `uploads`: `<bucket>/<upload id>`
//! - `parts`: `<upload id>/<part number, 5 digits>`
//! - `bucket_configs`: `<bucket>/<subresource>`: configuration documents as sent (XML or JSON)
//! - `inline_data`: `<blob id>`: the bytes of small objects (see [`INLINE_MAX`])

use std::path::{Path, PathBuf};
use std::sync::Arc;

use lakebox_core::{Clock, ServiceError, ids};
use lakebox_store::blob::BlobWriter;
use lakebox_store::{MetaStore, StoreError};
use serde::{Deserialize, Serialize};

use crate::errors;

const BUCKETS: &str = "buckets";
pub(crate) const OBJECTS: &str = "objects";
const UPLOADS: &str = "uploads";
const PARTS: &str = "parts";
const BUCKET_CONFIGS: &str = "bucket_configs";
pub(crate) const INLINE: &str = "inline_data";
/// Account-wide settings (S3 Control's public access block): `<account>/<setting>`.
const ACCOUNT_CONFIGS: &str = "account_configs";
/// Event notifications waiting for their target to accept them (`notify`).
const EVENT_OUTBOX: &str = "event_outbox";

/// Objects up to this size keep their data in the metadata store, committed in the same
/// transaction as their record: one fsync, shared with every concurrent writer.
pub const INLINE_MAX: u64 = 64 * 1024;

/// Stores `doc` under `key`, or removes the key for `None`.
fn put_or_delete(
    b: &mut lakebox_store::kv::WriteBatch<'_>,
    table: &str,
    key: &[u8],
    doc: Option<Vec<u8>>,
) -> Result<(), StoreError> {
    match doc {
        Some(d) => b.put(table, key, &d),
        None => b.delete(table, key).map(|_| ()),
    }
}

/// Every part but the last must be at least this big.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BucketRecord {
    pub name: String,
    pub region: String,
    /// The owning account.
    pub owner: String,
    pub created_millis: i64,
    /// `Enabled` or `Suspended` once versioning was ever configured.
    #[serde(default)]
    pub versioning: Option<String>,
}

/// Standard HTTP content headers stored with an object and returned on GET/HEAD.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ContentHeaders {
    pub content_type: Option<String>,
    pub cache_control: Option<String>,
    pub content_disposition: Option<String>,
    pub content_encoding: Option<String>,
    pub content_language: Option<String>,
    pub expires: Option<String>,
}

/// A flexible checksum (`x-amz-checksum-<algorithm>`), base64 as AWS sends it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoredChecksum {
    /// `CRC32`, `CRC32C`, `CRC64NVME`, `SHA1` or `SHA256`.
    pub algorithm: String,
    pub value: String,
    /// `FULL_OBJECT` or `COMPOSITE` (multipart objects checksummed per part).
    pub kind: String,
}

/// One stretch of an object's data: a whole blob file, or a row of inline data.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Segment {
    pub blob: String,
    pub len: u64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub inline: bool,
    /// Sealed with AES-256-GCM (see the sse module).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub encrypted: bool,
}

/// Server-side encryption an object (or upload) was written with.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SseInfo {
    /// `AES256`, `aws:kms` or `aws:kms:dsse`, as requested.
    pub algorithm: String,
    pub kms_key_id: Option<String>,
    /// SSE-C: base64 MD5 of the customer's key (the key itself is never stored).
    #[serde(default)]
    pub customer_key_md5: Option<String>,
}

/// Where a segment's bytes are, for reading.
#[derive(Debug, Clone)]
pub enum SegmentSource {
    File(PathBuf, u64),
    /// An encrypted file: path, plaintext length, the blob's key.
    Sealed(PathBuf, u64, [u8; 32]),
    Inline(bytes::Bytes),
}

impl SegmentSource {
    pub fn len(&self) -> u64 {
        match self {
            SegmentSource::File(_, n) | SegmentSource::Sealed(_, n, _) => *n,
            SegmentSource::Inline(b) => b.len() as u64,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ObjectRecord {
    pub key: String,
    pub size: u64,
    /// Without quotes: hex MD5, or `<hex>-<parts>` for multipart objects.
    pub etag: String,
    pub last_modified_millis: i64,
    pub content: ContentHeaders,
    /// `x-amz-meta-*` names (lower case, without the prefix) and values, in order.
    pub user_metadata: Vec<(String, String)>,
    pub storage_class: String,
    pub checksum: Option<StoredChecksum>,
    /// Multipart objects are stored as their parts' blobs, in order.
    pub segments: Vec<Segment>,
    pub parts_count: Option<u32>,
    /// A multipart object's parts as GetObjectAttributes lists them (number, size, checksum).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<PartSummary>,
    #[serde(default)]
    pub tags: Vec<(String, String)>,
    /// `None` is S3's `null` version.
    #[serde(default)]
    pub version_id: Option<String>,
    #[serde(default)]
    pub delete_marker: bool,
    /// Orders a key's versions (see the versioning module).
    #[serde(default)]
    pub version_seq: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sse: Option<SseInfo>,
    /// A restore of an archived object (GLACIER, DEEP_ARCHIVE), if one was requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<RestoreState>,
    /// Object Lock retention and legal hold of this version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<crate::object_lock::LockState>,
    /// The object's owner and ACL where ACLs are enabled and it is not the bucket owner's
    /// private object (`None`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acl: Option<crate::acl::Acl>,
}

/// When a requested restore completes and when the restored copy expires.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct RestoreState {
    pub ready_millis: i64,
    pub expiry_millis: i64,
}

impl ObjectRecord {
    /// Archived storage classes whose data must be restored before it can be read.
    pub fn is_archived(&self) -> bool {
        matches!(self.storage_class.as_str(), "GLACIER" | "DEEP_ARCHIVE")
    }

    /// Whether the data can be read now.
    pub fn is_readable(&self, now_millis: i64) -> bool {
        !self.is_archived()
            || self
                .restore
                .is_some_and(|r| r.ready_millis <= now_millis && now_millis < r.expiry_millis)
    }
}

/// What a DeleteObject did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeleteOutcome {
    /// The version deleted, or the delete marker created (as reported: `null` included), when
    /// the bucket is or was versioned.
    pub version_id: Option<String>,
    pub delete_marker: bool,
    /// A guarded delete found another current version and did nothing.
    pub skipped: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct UploadRecord {
    pub upload_id: String,
    pub key: String,
    pub initiated_millis: i64,
    pub owner: String,
    pub content: ContentHeaders,
    pub user_metadata: Vec<(String, String)>,
    pub storage_class: String,
    pub checksum_algorithm: Option<String>,
    /// `COMPOSITE` or `FULL_OBJECT`, with a checksum algorithm.
    #[serde(default)]
    pub checksum_type: Option<String>,
    #[serde(default)]
    pub tags: Vec<(String, String)>,
    #[serde(default)]
    pub sse: Option<SseInfo>,
    /// The Object Lock the completed object gets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<crate::object_lock::LockState>,
    /// The ACL the completed object gets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acl: Option<crate::acl::Acl>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PartRecord {
    pub part_number: u32,
    pub etag: String,
    pub size: u64,
    pub last_modified_millis: i64,
    pub blob: String,
    pub checksum: Option<StoredChecksum>,
    #[serde(default)]
    pub encrypted: bool,
}

/// A part of a completed multipart object.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PartSummary {
    pub number: u32,
    pub size: u64,
    pub checksum: Option<StoredChecksum>,
}

/// One part a CompleteMultipartUpload names: its number, ETag and, if given, its checksum
/// (algorithm as in `ChecksumCRC32` → `CRC32`, base64 value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestedPart {
    pub number: u32,
    pub etag: String,
    pub checksum: Option<(String, String)>,
}

/// The checksum of an object assembled from `parts` of an upload created with `algorithm`, as
/// S3 computes it: the algorithm over the parts' binary checksums, then `-<parts>`
/// (`COMPOSITE`). None when a part lacks that checksum, and for CRC64NVME, which S3 only keeps
/// as a full-object checksum.
fn composite_checksum(algorithm: Option<&str>, parts: &[PartRecord]) -> Option<StoredChecksum> {
    use base64::Engine;
    let algorithm = algorithm?.to_ascii_uppercase();
    let mut hasher =
        crate::upload::ChecksumHasher::new(&algorithm).filter(|h| h.algorithm() != "CRC64NVME")?;
    for p in parts {
        let c = p.checksum.as_ref().filter(|c| c.algorithm == algorithm)?;
        let raw = base64::engine::general_purpose::STANDARD.decode(&c.value).ok()?;
        hasher.update(&raw);
    }
    Some(StoredChecksum {
        algorithm,
        value: format!("{}-{}", hasher.finish(), parts.len()),
        kind: "COMPOSITE".into(),
    })
}

/// The CRC of the whole object, combined from the parts' CRCs and sizes (`FULL_OBJECT`).
/// None when a part lacks that checksum.
fn full_object_checksum(algorithm: Option<&str>, parts: &[PartRecord]) -> Option<StoredChecksum> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let algorithm = algorithm?.to_ascii_uppercase();
    let mut crc: Option<u64> = None;
    for p in parts {
        let c = p.checksum.as_ref().filter(|c| c.algorithm == algorithm)?;
        let raw = b64.decode(&c.value).ok()?;
        let part = raw.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        crc = Some(match crc {
            None => part,
            Some(so_far) => crate::crc_combine::combine(&algorithm, so_far, part, p.size)?,
        });
    }
    let width = if algorithm == "CRC64NVME" { 8 } else { 4 };
    let bytes = crc?.to_be_bytes();
    Some(StoredChecksum {
        value: b64.encode(&bytes[8 - width..]),
        algorithm,
        kind: "FULL_OBJECT".into(),
    })
}

/// A precondition on a write (`If-None-Match: *`, `If-Match: <etag>`), checked atomically with it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WriteCondition {
    pub if_none_match_any: bool,
    pub if_match: Option<String>,
}

/// A storage failure: S3's 500 `InternalError`, or 503 `ServiceUnavailable` while the disk is
/// full.
pub(crate) fn internal(e: impl std::fmt::Display + 'static) -> ServiceError {
    if lakebox_store::space::is_full_error(&e) {
        return ServiceError::disk_full();
    }
    tracing::error!(error = %e, "S3 storage failure");
    ServiceError::new("InternalError", 500, format!("storage failure: {e}"))
}

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("records always serialize")
}

fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, ServiceError> {
    serde_json::from_slice(bytes).map_err(|e| internal(format!("corrupt metadata record: {e}")))
}

fn object_key(bucket: &str, key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(bucket.len() + 1 + key.len());
    k.extend_from_slice(bucket.as_bytes());
    k.push(b'/');
    k.extend_from_slice(key.as_bytes());
    k
}

/// Compares an `If-Match`-style ETag list with an object's ETag (quotes optional, `*` matches all).
pub fn etag_matches(header: &str, etag: &str) -> bool {
    header
        .split(',')
        .map(|t| t.trim().trim_start_matches("W/").trim_matches('"'))
        .any(|t| t == "*" || t == etag)
}

type TxResult<T> = Result<Result<T, ServiceError>, StoreError>;

/// Reads a JSON record inside a transaction.
fn read_record<T: for<'de> Deserialize<'de>>(
    b: &lakebox_store::kv::WriteBatch<'_>,
    table: &str,
    key: &[u8],
) -> Result<Option<Result<T, ServiceError>>, StoreError> {
    Ok(b.get(table, key)?.map(|v| decode(&v)))
}

/// Timing knobs of the S3 service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct S3Settings {
    /// How long a RestoreObject of an archived object takes.
    pub restore_delay_millis: i64,
    /// The length of a "day" for lifecycle rules and restore expiry: 86,400,000 normally;
    /// tests shrink it to watch expirations happen.
    pub day_millis: i64,
    /// How often queued server access log records are delivered to their target buckets.
    pub access_log_delivery_millis: u64,
}

impl Default for S3Settings {
    fn default() -> Self {
        S3Settings {
            restore_delay_millis: 2_000,
            day_millis: 86_400_000,
            access_log_delivery_millis: 60_000,
        }
    }
}

pub struct ObjectStore {
    master_key: crate::sse::MasterKey,
    kv: MetaStore,
    blobs: PathBuf,
    clock: Arc<dyn Clock>,
    settings: S3Settings,
    /// What every request to a bucket consults, read and parsed once per bucket: its owner, its
    /// enabled lifecycle rules (PUT, GET and HEAD report the expiration they set), where its
    /// access log goes and its CORS rules. Replaced when those configurations change or the bucket goes.
    consulted: std::sync::Mutex<std::collections::HashMap<String, Arc<Consulted>>>,
    /// Access log records waiting for delivery (see `access_log`).
    pub(crate) access_log: std::sync::Mutex<Vec<(crate::access_log::Target, String)>>,
    /// Wakes the access log delivery early when many records wait.
    pub(crate) access_log_due: Arc<tokio::sync::Notify>,
    /// Where event notifications go, once the binary plugs a sink in (`notify`).
    pub(crate) events: std::sync::OnceLock<Arc<dyn lakebox_service::events::EventSink>>,
    /// Wakes event delivery when the outbox gains an event.
    pub(crate) events_due: Arc<tokio::sync::Notify>,
    /// Orders outbox entries written in the same millisecond.
    pub(crate) event_seq: std::sync::atomic::AtomicU64,
}

/// See `ObjectStore::consulted`.
#[derive(Debug, Default)]
pub struct Consulted {
    /// `None` when there is no such bucket.
    pub owner: Option<String>,
    pub lifecycle: Vec<crate::lifecycle::Rule>,
    pub logging: Option<crate::access_log::Target>,
    /// Cross-origin requests carry an `Origin` on every request, so the rules are kept parsed.
    pub cors: Option<Vec<crate::cors::Rule>>,
    /// Where the bucket's events go (`notify`); every write consults it.
    pub notify: Vec<crate::notify::Rule>,
    /// The request metrics configurations' filters (`request_metrics`).
    pub metrics: Vec<crate::request_metrics::Filter>,
    /// What every request is authorized against: the policy and the public access block.
    pub access: crate::access::BucketAccess,
    /// Object Lock, when the bucket has it (new versions get its default retention).
    pub lock: Option<crate::object_lock::BucketLock>,
    /// Object Ownership, and the bucket's ACL where ACLs are enabled (`None`: private).
    pub ownership: crate::acl::Ownership,
    pub acl: Option<crate::acl::Acl>,
}

impl ObjectStore {
    /// Opens the store under `dir` (created if missing).
    pub fn open(dir: &Path, clock: Arc<dyn Clock>, settings: S3Settings) -> Result<Self, StoreError> {
        let blobs = dir.join("blobs");
        std::fs::create_dir_all(&blobs)?;
        Ok(ObjectStore {
            master_key: crate::sse::MasterKey::load_or_create(dir)?,
            kv: MetaStore::open(&dir.join("meta.redb"))?,
            blobs,
            clock,
            settings,
            consulted: Default::default(),
            access_log: Default::default(),
            access_log_due: Default::default(),
            events: Default::default(),
            events_due: Default::default(),
            event_seq: Default::default(),
        })
    }

    /// The encryption key of one blob sealed with Lakebox's master key.
    pub fn blob_key(&self, blob_id: &str) -> [u8; 32] {
        self.master_key.blob_key(blob_id)
    }

    /// The encryption key of one blob, from `source`.
    pub fn key_for(&self, source: crate::sse::KeySource, blob_id: &str) -> [u8; 32] {
        match source {
            crate::sse::KeySource::Lakebox => self.blob_key(blob_id),
            crate::sse::KeySource::Customer(k) => crate::sse::customer_blob_key(&k, blob_id),
        }
    }

    pub fn settings(&self) -> S3Settings {
        self.settings
    }

    pub fn now_millis(&self) -> i64 {
        self.clock.now_millis()
    }

    fn blob_path(&self, id: &str) -> PathBuf {
        self.blobs.join(&id[..2]).join(id)
    }

    /// Where an object's data is, in order.
    pub fn segment_sources(
        &self,
        record: &ObjectRecord,
        keys: crate::sse::KeySource,
    ) -> Result<Vec<SegmentSource>, ServiceError> {
        self.kv
            .read(|view| Ok(self.sources_in(view, record, keys)))
            .map_err(internal)?
    }

    fn sources_in(
        &self,
        view: &lakebox_store::kv::ReadView,
        record: &ObjectRecord,
        keys: crate::sse::KeySource,
    ) -> Result<Vec<SegmentSource>, ServiceError> {
        record
            .segments
            .iter()
            .map(|s| {
                if s.inline {
                    let data = view
                        .get(INLINE, s.blob.as_bytes())
                        .map_err(internal)?
                        .ok_or_else(|| internal(format!("inline data {} is missing", s.blob)))?;
                    if s.encrypted {
                        let plain =
                            crate::sse::open_all(&self.key_for(keys, &s.blob), &data).map_err(internal)?;
                        return Ok(SegmentSource::Inline(plain.into()));
                    }
                    Ok(SegmentSource::Inline(data.into()))
                } else if s.encrypted {
                    Ok(SegmentSource::Sealed(
                        self.blob_path(&s.blob),
                        s.len,
                        self.key_for(keys, &s.blob),
                    ))
                } else {
                    Ok(SegmentSource::File(self.blob_path(&s.blob), s.len))
                }
            })
            .collect()
    }

    /// An object and where its data is, read from one snapshot (so an overwrite between the two
    /// reads cannot pair a record with data that is gone).
    pub fn object_with_sources(
        &self,
        bucket: &str,
        key: &str,
        keys: impl FnOnce(&ObjectRecord) -> Result<crate::sse::KeySource, ServiceError>,
    ) -> Result<Option<(ObjectRecord, Vec<SegmentSource>)>, ServiceError> {
        let k = object_key(bucket, key);
        self.kv
            .read(|view| {
                Ok(match view.get(OBJECTS, &k)? {
                    None => Ok(None),
                    Some(v) => decode::<ObjectRecord>(&v).and_then(|rec| {
                        let source = keys(&rec)?;
                        self.sources_in(view, &rec, source).map(|src| Some((rec, src)))
                    }),
                })
            })
            .map_err(internal)?
    }

    /// A fresh blob id.
    pub fn new_blob_id(&self) -> String {
        ids::random_hex(32)
    }

    /// Starts a new blob file; nothing is visible until it is committed and referenced by
    /// metadata.
    pub fn new_blob(&self) -> Result<(String, BlobWriter), ServiceError> {
        let id = self.new_blob_id();
        let writer = BlobWriter::create(&self.blob_path(&id)).map_err(internal)?;
        Ok((id, writer))
    }

    /// Drops an upload that will not be stored (its blob file, if it has one).
    pub fn discard(&self, received: crate::upload::ReceivedBlob) {
        if received.inline.is_none() {
            self.remove_blobs([received.blob.as_str()]);
        }
    }

    /// Removes blob files no longer referenced. Failures only leak space, so they are logged.
    fn remove_blobs<'a>(&self, ids: impl IntoIterator<Item = &'a str>) {
        for id in ids {
            if let Err(e) = std::fs::remove_file(self.blob_path(id)) {
                tracing::warn!(blob = id, error = %e, "could not remove an unreferenced blob");
            }
        }
    }

    /// A group-committed transaction; `f` decides any refusal before its first write.
    async fn tx<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut lakebox_store::kv::WriteBatch<'_>) -> TxResult<T> + Send + 'static,
    ) -> Result<T, ServiceError> {
        self.kv.write_async(f).await.map_err(internal)?
    }

    // ---- buckets ----

    pub fn bucket(&self, name: &str) -> Result<Option<BucketRecord>, ServiceError> {
        match self.kv.get(BUCKETS, name.as_bytes()).map_err(internal)? {
            Some(v) => Ok(Some(decode(&v)?)),
            None => Ok(None),
        }
    }

    /// The bucket, if it exists (whether the caller may use it was decided before: `access`).
    pub fn existing_bucket(&self, name: &str) -> Result<BucketRecord, ServiceError> {
        self.bucket(name)?.ok_or_else(|| errors::no_such_bucket(name))
    }

    /// Creates a bucket. Returns `false` when the caller already owned it (us-east-1's legacy
    /// "200 OK" case; the caller decides what that means).
    pub async fn create_bucket(&self, record: BucketRecord) -> Result<bool, ServiceError> {
        self.create_bucket_with(record, Vec::new()).await
    }

    /// [`create_bucket`](Self::create_bucket) with configuration documents (subresource,
    /// document) committed with it.
    pub async fn create_bucket_with(
        &self,
        record: BucketRecord,
        configs: Vec<(&'static str, Vec<u8>)>,
    ) -> Result<bool, ServiceError> {
        self.tx(move |b| {
            if let Some(existing) = read_record::<BucketRecord>(b, BUCKETS, record.name.as_bytes())? {
                return Ok(match existing {
                    Ok(e) if e.owner != record.owner => Err(errors::bucket_already_exists(&record.name)),
                    Ok(_) => Ok(false),
                    Err(e) => Err(e),
                });
            }
            b.put(BUCKETS, record.name.as_bytes(), &encode(&record))?;
            for (sub, doc) in &configs {
                b.put(BUCKET_CONFIGS, &object_key(&record.name, sub), doc)?;
            }
            Ok(Ok(true))
        })
        .await
    }

    /// Every bucket of every account (for background work such as lifecycle).
    pub fn all_buckets(&self) -> Result<Vec<BucketRecord>, ServiceError> {
        let rows = self
            .kv
            .scan_prefix(BUCKETS, b"", None, usize::MAX)
            .map_err(internal)?;
        rows.iter().map(|(_, v)| decode(v)).collect()
    }

    pub fn list_buckets(&self, account: &str) -> Result<Vec<BucketRecord>, ServiceError> {
        let rows = self
            .kv
            .scan_prefix(BUCKETS, b"", None, usize::MAX)
            .map_err(internal)?;
        let mut out = Vec::new();
        for (_, v) in rows {
            let b: BucketRecord = decode(&v)?;
            if b.owner == account {
                out.push(b);
            }
        }
        Ok(out)
    }

    pub async fn delete_bucket(&self, name: &str) -> Result<(), ServiceError> {
        self.existing_bucket(name)?;
        let prefix = object_key(name, "");
        let has_objects = !self
            .kv
            .scan_prefix(OBJECTS, &prefix, None, 1)
            .map_err(internal)?
            .is_empty();
        if has_objects {
            return Err(errors::bucket_not_empty(name));
        }
        // Multipart uploads in progress do not keep a bucket alive, in S3: they go with it.
        for upload in self.list_uploads(name)? {
            match self.abort_upload(name, &upload.upload_id).await {
                Ok(()) => {}
                Err(e) if e.code == "NoSuchUpload" => {}
                Err(e) => return Err(e),
            }
        }
        let configs = self
            .kv
            .scan_prefix(BUCKET_CONFIGS, &prefix, None, usize::MAX)
            .map_err(internal)?;
        let gone = name.to_owned();
        let name = name.to_owned();
        self.tx(move |b| {
            // A PUT may have landed since the check above; look again inside the transaction.
            if b.first_with_prefix(OBJECTS, &prefix)?.is_some() {
                return Ok(Err(errors::bucket_not_empty(&name)));
            }
            for (k, _) in &configs {
                b.delete(BUCKET_CONFIGS, k)?;
            }
            b.delete(BUCKETS, name.as_bytes())?;
            Ok(Ok(()))
        })
        .await?;
        self.forget_consulted(&gone);
        Ok(())
    }

    // ---- bucket configuration documents ----

    /// The documents of a bucket's subresources named `prefix…` (request metrics
    /// configurations, `metrics/<id>`), in name order.
    pub fn bucket_configs_with_prefix(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> Result<Vec<Vec<u8>>, ServiceError> {
        Ok(self
            .kv
            .scan_prefix(BUCKET_CONFIGS, &object_key(bucket, prefix), None, usize::MAX)
            .map_err(internal)?
            .into_iter()
            .map(|(_, v)| v)
            .collect())
    }

    pub fn bucket_config(&self, bucket: &str, sub: &str) -> Result<Option<Vec<u8>>, ServiceError> {
        self.kv
            .get(BUCKET_CONFIGS, &object_key(bucket, sub))
            .map_err(internal)
    }

    /// Stores (`Some`) or removes (`None`) a configuration document of an existing bucket.
    pub async fn set_bucket_config(
        &self,
        bucket: &str,
        sub: &str,
        doc: Option<Vec<u8>>,
    ) -> Result<(), ServiceError> {
        let key = object_key(bucket, sub);
        let name = bucket.to_owned();
        self.tx(move |b| {
            if b.get(BUCKETS, name.as_bytes())?.is_none() {
                return Ok(Err(errors::no_such_bucket(&name)));
            }
            put_or_delete(b, BUCKET_CONFIGS, &key, doc)?;
            Ok(Ok(()))
        })
        .await?;
        if matches!(
            sub,
            "lifecycle"
                | "logging"
                | "cors"
                | "notification"
                | "policy"
                | "publicAccessBlock"
                | "object-lock"
                | "ownershipControls"
                | "acl"
        ) || sub.starts_with(crate::request_metrics::SUB_PREFIX)
        {
            self.forget_consulted(bucket);
        }
        Ok(())
    }

    /// The bucket's owner, lifecycle rules and access log target, from the cache.
    pub fn consulted(&self, bucket: &str) -> Arc<Consulted> {
        let mut cache = self.consulted.lock().unwrap();
        if let Some(c) = cache.get(bucket) {
            return c.clone();
        }
        // Read while holding the lock: a configuration committed meanwhile forgets the entry
        // only after this one is in, so a stale read never outlives the change.
        let owner = match self.bucket(bucket) {
            Ok(b) => b.map(|b| b.owner),
            // Not cached: the next request reads again.
            Err(_) => return Arc::new(Consulted::default()),
        };
        let config = |sub| self.bucket_config(bucket, sub).ok().flatten();
        let consulted = Arc::new(Consulted {
            lifecycle: config("lifecycle")
                .and_then(|doc| crate::lifecycle::parse(&doc).ok())
                .map(|r| r.into_iter().filter(|r| r.enabled).collect())
                .unwrap_or_default(),
            logging: config("logging").and_then(|doc| crate::access_log::Target::of(&doc)),
            cors: config("cors").and_then(|doc| crate::cors::stored_rules(&doc)),
            notify: config("notification")
                .map(|doc| crate::notify::rules(&doc))
                .unwrap_or_default(),
            lock: config("object-lock").and_then(|doc| crate::object_lock::BucketLock::of(&doc)),
            ownership: crate::acl::Ownership::of(config("ownershipControls").as_deref()),
            acl: config("acl").and_then(|doc| serde_json::from_slice(&doc).ok()),
            metrics: crate::request_metrics::filters(self, bucket),
            access: crate::access::BucketAccess::of(
                config("policy").as_deref(),
                config("publicAccessBlock").as_deref(),
                // The account's block adds to the bucket's: the most restrictive wins.
                owner
                    .as_deref()
                    .and_then(|o| self.account_config(o, "publicAccessBlock").ok().flatten())
                    .as_deref(),
            ),
            owner,
        });
        if consulted.owner.is_some() {
            cache.insert(bucket.to_owned(), consulted.clone());
        }
        consulted
    }

    // ---- event outbox ----

    /// Writes events (target ARN, message) to the outbox, durably, and wakes their delivery.
    pub(crate) async fn queue_events(&self, events: Vec<(String, String)>) -> Result<(), ServiceError> {
        let now = self.now_millis() as u64;
        let rows: Vec<(Vec<u8>, Vec<u8>)> = events
            .into_iter()
            .map(|e| {
                let n = self.event_seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let mut key = now.to_be_bytes().to_vec();
                key.extend_from_slice(&n.to_be_bytes());
                (key, serde_json::to_vec(&e).unwrap_or_default())
            })
            .collect();
        self.kv
            .write_async(move |b| {
                for (k, v) in &rows {
                    b.put(EVENT_OUTBOX, k, v)?;
                }
                Ok(())
            })
            .await
            .map_err(internal)?;
        self.events_due.notify_one();
        Ok(())
    }

    /// Events waiting for delivery, oldest first.
    pub(crate) fn pending_events(
        &self,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, String, String)>, ServiceError> {
        let rows = self
            .kv
            .scan_prefix(EVENT_OUTBOX, b"", None, limit)
            .map_err(internal)?;
        Ok(rows
            .into_iter()
            .filter_map(|(k, v)| {
                let (target, message): (String, String) = serde_json::from_slice(&v).ok()?;
                Some((k, target, message))
            })
            .collect())
    }

    /// Removes a delivered (or undeliverable) event from the outbox.
    pub(crate) async fn drop_event(&self, key: Vec<u8>) -> Result<(), ServiceError> {
        self.kv
            .write_async(move |b| {
                b.freeing();
                b.delete(EVENT_OUTBOX, &key).map(|_| ())
            })
            .await
            .map_err(internal)
    }

    /// An account-wide setting's document (S3 Control), if set.
    pub fn account_config(&self, account: &str, setting: &str) -> Result<Option<Vec<u8>>, ServiceError> {
        self.kv
            .get(ACCOUNT_CONFIGS, format!("{account}/{setting}").as_bytes())
            .map_err(internal)
    }

    /// Stores (`Some`) or removes (`None`) an account-wide setting; every bucket's consulted
    /// settings are read again, as the account's block applies to all of them.
    pub async fn set_account_config(
        &self,
        account: &str,
        setting: &str,
        doc: Option<Vec<u8>>,
    ) -> Result<(), ServiceError> {
        let key = format!("{account}/{setting}").into_bytes();
        self.tx(move |b| {
            put_or_delete(b, ACCOUNT_CONFIGS, &key, doc)?;
            Ok(Ok(()))
        })
        .await?;
        self.consulted.lock().unwrap().clear();
        Ok(())
    }

    fn forget_consulted(&self, bucket: &str) {
        self.consulted.lock().unwrap().remove(bucket);
    }

    // ---- objects ----

    pub fn object(&self, bucket: &str, key: &str) -> Result<Option<ObjectRecord>, ServiceError> {
        match self.kv.get(OBJECTS, &object_key(bucket, key)).map_err(internal)? {
            Some(v) => Ok(Some(decode(&v)?)),
            None => Ok(None),
        }
    }

    /// Changes an object's metadata in place (tags), atomically. `NoSuchKey` if absent.
    pub async fn update_object(
        &self,
        bucket: &str,
        key: &str,
        change: impl FnOnce(&mut ObjectRecord) + Send + 'static,
    ) -> Result<ObjectRecord, ServiceError> {
        self.update_object_guarded(bucket, key, None, change).await
    }

    /// [`update_object`](Self::update_object) that only acts while the current version has
    /// sequence number `only_if_seq` (else `NoSuchKey`).
    pub async fn update_object_guarded(
        &self,
        bucket: &str,
        key: &str,
        only_if_seq: Option<u64>,
        change: impl FnOnce(&mut ObjectRecord) + Send + 'static,
    ) -> Result<ObjectRecord, ServiceError> {
        let k = object_key(bucket, key);
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        self.tx(move |b| {
            if b.get(BUCKETS, bucket.as_bytes())?.is_none() {
                return Ok(Err(errors::no_such_bucket(&bucket)));
            }
            let mut rec: ObjectRecord = match read_record::<ObjectRecord>(b, OBJECTS, &k)? {
                None => return Ok(Err(errors::no_such_key(&key))),
                Some(Err(e)) => return Ok(Err(e)),
                Some(Ok(r)) if r.delete_marker => return Ok(Err(errors::no_such_key(&key))),
                Some(Ok(r)) if only_if_seq.is_some_and(|s| s != r.version_seq) => {
                    return Ok(Err(errors::no_such_key(&key)));
                }
                Some(Ok(r)) => r,
            };
            change(&mut rec);
            b.put(OBJECTS, &k, &encode(&rec))?;
            Ok(Ok(rec))
        })
        .await
    }

    /// Makes `record` the current version at its key, atomically with `condition` and under the
    /// bucket's versioning state. Its file blobs must already be committed; `inline_data` (blob
    /// id, bytes) is written in the same transaction. Returns the record as stored (with its
    /// version id).
    pub async fn commit_object(
        &self,
        bucket: &str,
        record: ObjectRecord,
        inline_data: Option<(String, Vec<u8>)>,
        condition: WriteCondition,
    ) -> Result<ObjectRecord, ServiceError> {
        let key = object_key(bucket, &record.key);
        let bucket = bucket.to_owned();
        let now = self.now_millis();
        let new_files: Vec<String> = record
            .segments
            .iter()
            .filter(|s| !s.inline)
            .map(|s| s.blob.clone())
            .collect();
        let result = self
            .tx(move |b| {
                let bucket_rec: BucketRecord = match read_record(b, BUCKETS, bucket.as_bytes())? {
                    Some(Ok(r)) => r,
                    Some(Err(e)) => return Ok(Err(e)),
                    None => return Ok(Err(errors::no_such_bucket(&bucket))),
                };
                let old: Option<ObjectRecord> = match read_record(b, OBJECTS, &key)? {
                    Some(Ok(r)) => Some(r),
                    Some(Err(e)) => return Ok(Err(e)),
                    None => None,
                };
                let visible = old.as_ref().filter(|o| !o.delete_marker);
                if let Err(e) = check_write_condition(&condition, visible, &record.key) {
                    return Ok(Err(e));
                }
                if let Some((id, data)) = &inline_data {
                    b.put(INLINE, id.as_bytes(), data)?;
                }
                let installed = crate::versioning::install_current(
                    b,
                    bucket_rec.versioning.as_deref(),
                    &key,
                    record,
                    old,
                    now,
                )?;
                Ok(Ok(installed))
            })
            .await;
        match result {
            Ok((record, old_files)) => {
                self.remove_blobs(old_files.iter().map(String::as_str));
                Ok(record)
            }
            Err(e) => {
                // The new blobs are not referenced by anything: remove them.
                self.remove_blobs(new_files.iter().map(String::as_str));
                Err(e)
            }
        }
    }

    /// DeleteObject. Without a version id: removes the object (unversioned bucket) or makes a
    /// delete marker current (versioned). With one: permanently removes that version. Deleting
    /// something absent succeeds, as in S3.
    pub async fn delete_object(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<DeleteOutcome, ServiceError> {
        self.delete_object_guarded(bucket, key, version_id, None).await
    }

    /// [`delete_object`](Self::delete_object), but without a version id it only acts if the
    /// current version is still the one with sequence number `only_if_seq` (lifecycle uses this
    /// so a write racing with an expiration is never expired).
    pub async fn delete_object_guarded(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        only_if_seq: Option<u64>,
    ) -> Result<DeleteOutcome, ServiceError> {
        if let Some(v) = version_id {
            crate::versioning::validate_version_id(v)?;
        }
        let k = object_key(bucket, key);
        let (bucket, key, version_id) = (bucket.to_owned(), key.to_owned(), version_id.map(str::to_owned));
        let now = self.now_millis();
        let (outcome, files) = self
            .tx(move |b| {
                // A delete (or a delete marker) goes through on a full disk.
                b.freeing();
                let bucket_rec: BucketRecord = match read_record(b, BUCKETS, bucket.as_bytes())? {
                    Some(Ok(r)) => r,
                    Some(Err(e)) => return Ok(Err(e)),
                    None => return Ok(Err(errors::no_such_bucket(&bucket))),
                };
                if let Some(vid) = &version_id {
                    return Ok(Ok(match crate::versioning::remove_version(b, &k, vid)? {
                        Some((rec, files)) => (
                            DeleteOutcome {
                                version_id: Some(vid.clone()),
                                delete_marker: rec.delete_marker,
                                skipped: false,
                            },
                            files,
                        ),
                        None => (
                            DeleteOutcome {
                                version_id: Some(vid.clone()),
                                delete_marker: false,
                                skipped: false,
                            },
                            Vec::new(),
                        ),
                    }));
                }
                let old: Option<ObjectRecord> = match read_record(b, OBJECTS, &k)? {
                    Some(Ok(r)) => Some(r),
                    Some(Err(e)) => return Ok(Err(e)),
                    None => None,
                };
                if only_if_seq.is_some() && old.as_ref().map(|o| o.version_seq) != only_if_seq {
                    let skipped = DeleteOutcome {
                        skipped: true,
                        ..DeleteOutcome::default()
                    };
                    return Ok(Ok((skipped, Vec::new())));
                }
                match bucket_rec.versioning.as_deref() {
                    None => {
                        let files = match old {
                            Some(o) => {
                                b.delete(OBJECTS, &k)?;
                                crate::versioning::drop_data(b, &o.segments)?
                            }
                            None => Vec::new(),
                        };
                        Ok(Ok((DeleteOutcome::default(), files)))
                    }
                    Some(mode) => {
                        let marker = crate::versioning::delete_marker(&key, now);
                        let (marker, files) =
                            crate::versioning::install_current(b, Some(mode), &k, marker, old, now)?;
                        let id = crate::versioning::reported_id(&marker).to_owned();
                        Ok(Ok((
                            DeleteOutcome {
                                version_id: Some(id),
                                delete_marker: true,
                                skipped: false,
                            },
                            files,
                        )))
                    }
                }
            })
            .await?;
        self.remove_blobs(files.iter().map(String::as_str));
        Ok(outcome)
    }

    /// A specific version of an object (current or noncurrent) and where its data is.
    pub fn object_version_with_sources(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
        keys: impl FnOnce(&ObjectRecord) -> Result<crate::sse::KeySource, ServiceError>,
    ) -> Result<Option<(ObjectRecord, Vec<SegmentSource>)>, ServiceError> {
        crate::versioning::validate_version_id(version_id)?;
        let okey = object_key(bucket, key);
        self.kv
            .read(|view| {
                let mut found: Option<ObjectRecord> = None;
                if let Some(v) = view.get(OBJECTS, &okey)? {
                    let cur: ObjectRecord = match decode(&v) {
                        Ok(r) => r,
                        Err(e) => return Ok(Err(e)),
                    };
                    if crate::versioning::reported_id(&cur) == version_id {
                        found = Some(cur);
                    }
                }
                if found.is_none() {
                    for (_, v) in view.scan_prefix(
                        crate::versioning::VERSIONS,
                        &crate::versioning::versions_prefix(&okey),
                    )? {
                        let rec: ObjectRecord = match decode(&v) {
                            Ok(r) => r,
                            Err(e) => return Ok(Err(e)),
                        };
                        if crate::versioning::reported_id(&rec) == version_id {
                            found = Some(rec);
                            break;
                        }
                    }
                }
                Ok(match found {
                    None => Ok(None),
                    Some(rec) => keys(&rec)
                        .and_then(|source| self.sources_in(view, &rec, source))
                        .map(|src| Some((rec, src))),
                })
            })
            .map_err(internal)?
    }

    /// Changes one version of an object in place (the current one without a version id):
    /// Object Lock settings. `NoSuchKey` / `NoSuchVersion` when it is absent.
    pub async fn update_version(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        change: impl FnOnce(&mut ObjectRecord) + Send + 'static,
    ) -> Result<(), ServiceError> {
        let Some(vid) = version_id else {
            return self.update_object(bucket, key, change).await.map(|_| ());
        };
        let okey = object_key(bucket, key);
        let (key, vid) = (key.to_owned(), vid.to_owned());
        self.tx(move |b| {
            let Some((k, mut rec, current)) = crate::versioning::find_version(b, &okey, &vid)? else {
                return Ok(Err(errors::no_such_version(&key, &vid)));
            };
            change(&mut rec);
            let table = if current {
                OBJECTS
            } else {
                crate::versioning::VERSIONS
            };
            b.put(table, &k, &encode(&rec))?;
            Ok(Ok(()))
        })
        .await
    }

    /// Changes a noncurrent version in place (lifecycle transitions). A version that became
    /// current again, or is gone, is left alone.
    pub async fn update_noncurrent(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
        change: impl FnOnce(&mut ObjectRecord) + Send + 'static,
    ) -> Result<(), ServiceError> {
        let okey = object_key(bucket, key);
        let version_id = version_id.to_owned();
        self.tx(move |b| {
            if let Some((k, mut rec, false)) = crate::versioning::find_version(b, &okey, &version_id)? {
                change(&mut rec);
                b.put(crate::versioning::VERSIONS, &k, &encode(&rec))?;
            }
            Ok(Ok(()))
        })
        .await
    }

    /// Noncurrent versions of a key, newest first.
    pub fn noncurrent_versions(&self, bucket: &str, key: &str) -> Result<Vec<ObjectRecord>, ServiceError> {
        let prefix = crate::versioning::versions_prefix(&object_key(bucket, key));
        let rows = self
            .kv
            .scan_prefix(crate::versioning::VERSIONS, &prefix, None, usize::MAX)
            .map_err(internal)?;
        rows.iter().map(|(_, v)| decode(v)).collect()
    }

    /// PutBucketVersioning. Once configured, a bucket can be suspended but never unversioned.
    pub async fn set_versioning(&self, bucket: &str, status: &str) -> Result<(), ServiceError> {
        let bucket = bucket.to_owned();
        let status = status.to_owned();
        self.tx(move |b| {
            let mut rec: BucketRecord = match read_record(b, BUCKETS, bucket.as_bytes())? {
                Some(Ok(r)) => r,
                Some(Err(e)) => return Ok(Err(e)),
                None => return Ok(Err(errors::no_such_bucket(&bucket))),
            };
            rec.versioning = Some(status);
            b.put(BUCKETS, bucket.as_bytes(), &encode(&rec))?;
            Ok(Ok(()))
        })
        .await
    }

    /// Up to `limit` objects whose keys start with `prefix`, strictly after `after` (a key, or
    /// any byte string; `None` starts at the prefix), in S3's listing order.
    pub fn list_objects(
        &self,
        bucket: &str,
        prefix: &str,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<ObjectRecord>, ServiceError> {
        let full_prefix = object_key(bucket, prefix);
        let start = after.map(|a| {
            let mut k = object_key(bucket, "");
            k.extend_from_slice(a);
            k
        });
        let rows = self
            .kv
            .scan_prefix(OBJECTS, &full_prefix, start.as_deref(), limit)
            .map_err(internal)?;
        rows.iter().map(|(_, v)| decode(v)).collect()
    }

    // ---- multipart uploads ----

    pub async fn create_upload(&self, bucket: &str, record: UploadRecord) -> Result<(), ServiceError> {
        let bucket = bucket.to_owned();
        self.tx(move |b| {
            if b.get(BUCKETS, bucket.as_bytes())?.is_none() {
                return Ok(Err(errors::no_such_bucket(&bucket)));
            }
            b.put(UPLOADS, &object_key(&bucket, &record.upload_id), &encode(&record))?;
            Ok(Ok(()))
        })
        .await
    }

    pub fn upload(&self, bucket: &str, upload_id: &str) -> Result<UploadRecord, ServiceError> {
        match self
            .kv
            .get(UPLOADS, &object_key(bucket, upload_id))
            .map_err(internal)?
        {
            Some(v) => decode(&v),
            None => Err(errors::no_such_upload(upload_id)),
        }
    }

    pub fn list_uploads(&self, bucket: &str) -> Result<Vec<UploadRecord>, ServiceError> {
        let rows = self
            .kv
            .scan_prefix(UPLOADS, &object_key(bucket, ""), None, usize::MAX)
            .map_err(internal)?;
        rows.iter().map(|(_, v)| decode(v)).collect()
    }

    fn part_key(upload_id: &str, part_number: u32) -> Vec<u8> {
        format!("{upload_id}/{part_number:05}").into_bytes()
    }

    /// Records a committed part blob, replacing an earlier upload of the same part number.
    pub async fn put_part(
        &self,
        bucket: &str,
        upload_id: &str,
        part: PartRecord,
    ) -> Result<(), ServiceError> {
        let pk = Self::part_key(upload_id, part.part_number);
        let ukey = object_key(bucket, upload_id);
        let upload_id = upload_id.to_owned();
        let new_blob = part.blob.clone();
        let replaced = self
            .tx(move |b| {
                if b.get(UPLOADS, &ukey)?.is_none() {
                    return Ok(Err(errors::no_such_upload(&upload_id)));
                }
                let old: Option<Result<PartRecord, ServiceError>> = read_record(b, PARTS, &pk)?;
                b.put(PARTS, &pk, &encode(&part))?;
                Ok(Ok(old.and_then(Result::ok).map(|p| p.blob)))
            })
            .await;
        match replaced {
            Ok(old) => {
                self.remove_blobs(old.iter().map(String::as_str));
                Ok(())
            }
            Err(e) => {
                self.remove_blobs([new_blob.as_str()]);
                Err(e)
            }
        }
    }

    pub fn list_parts(&self, upload_id: &str) -> Result<Vec<PartRecord>, ServiceError> {
        let rows = self
            .kv
            .scan_prefix(PARTS, format!("{upload_id}/").as_bytes(), None, usize::MAX)
            .map_err(internal)?;
        rows.iter().map(|(_, v)| decode(v)).collect()
    }

    /// Completes an upload from the listed parts: validates them as S3 does, and in one
    /// transaction makes the object current and forgets the upload.
    pub async fn complete_upload(
        &self,
        bucket: &str,
        upload_id: &str,
        requested: &[RequestedPart],
        condition: WriteCondition,
        check_checksum: impl FnOnce(Option<&StoredChecksum>) -> Result<(), ServiceError>,
    ) -> Result<ObjectRecord, ServiceError> {
        let upload = self.upload(bucket, upload_id)?;
        if requested.is_empty() {
            return Err(errors::malformed_document());
        }
        if requested.windows(2).any(|w| w[0].number >= w[1].number) {
            return Err(errors::invalid_part_order());
        }
        let stored: std::collections::HashMap<u32, PartRecord> = self
            .list_parts(upload_id)?
            .into_iter()
            .map(|p| (p.part_number, p))
            .collect();
        let mut chosen = Vec::with_capacity(requested.len());
        for (i, want) in requested.iter().enumerate() {
            let part = stored
                .get(&want.number)
                .filter(|p| etag_matches(&want.etag, &p.etag))
                .filter(|p| {
                    want.checksum.as_ref().is_none_or(|(algorithm, value)| {
                        p.checksum
                            .as_ref()
                            .is_some_and(|c| c.algorithm.eq_ignore_ascii_case(algorithm) && &c.value == value)
                    })
                })
                .ok_or_else(errors::invalid_part)?;
            if i + 1 < requested.len() && part.size < MIN_PART_SIZE {
                return Err(errors::entity_too_small(part.size));
            }
            chosen.push(part.clone());
        }
        // ETag: MD5 of the concatenated binary part MD5s, then "-<count>".
        let mut md5s = Vec::with_capacity(chosen.len() * 16);
        for p in &chosen {
            md5s.extend(hex::decode(&p.etag).map_err(internal)?);
        }
        use md5::Digest;
        let etag = format!("{}-{}", hex::encode(md5::Md5::digest(&md5s)), chosen.len());
        let algorithm = upload.checksum_algorithm.as_deref();
        let checksum = match upload.checksum_type.as_deref() {
            Some("FULL_OBJECT") => full_object_checksum(algorithm, &chosen),
            _ => composite_checksum(algorithm, &chosen),
        };
        check_checksum(checksum.as_ref())?;
        let record = ObjectRecord {
            key: upload.key.clone(),
            size: chosen.iter().map(|p| p.size).sum(),
            etag,
            last_modified_millis: self.now_millis(),
            content: upload.content.clone(),
            user_metadata: upload.user_metadata.clone(),
            storage_class: upload.storage_class.clone(),
            checksum,
            segments: chosen
                .iter()
                .map(|p| Segment {
                    blob: p.blob.clone(),
                    len: p.size,
                    inline: false,
                    encrypted: p.encrypted,
                })
                .collect(),
            parts_count: Some(chosen.len() as u32),
            parts: chosen
                .iter()
                .map(|p| PartSummary {
                    number: p.part_number,
                    size: p.size,
                    checksum: p.checksum.clone(),
                })
                .collect(),
            tags: upload.tags.clone(),
            version_id: None,
            delete_marker: false,
            version_seq: 0,
            restore: None,
            sse: upload.sse.clone(),
            lock: upload.lock.clone(),
            acl: upload.acl.clone(),
        };
        let used: std::collections::HashSet<String> = chosen.iter().map(|p| p.blob.clone()).collect();
        let unused: Vec<String> = stored
            .values()
            .map(|p| p.blob.clone())
            .filter(|b| !used.contains(b))
            .collect();
        let part_keys: Vec<Vec<u8>> = stored.keys().map(|n| Self::part_key(upload_id, *n)).collect();
        let okey = object_key(bucket, &upload.key);
        let ukey = object_key(bucket, upload_id);
        let upload_id = upload_id.to_owned();
        let bucket = bucket.to_owned();
        let now = self.now_millis();
        let (record, old_files) = self
            .tx(move |b| {
                let bucket_rec: BucketRecord = match read_record(b, BUCKETS, bucket.as_bytes())? {
                    Some(Ok(r)) => r,
                    Some(Err(e)) => return Ok(Err(e)),
                    None => return Ok(Err(errors::no_such_bucket(&bucket))),
                };
                if b.get(UPLOADS, &ukey)?.is_none() {
                    return Ok(Err(errors::no_such_upload(&upload_id)));
                }
                let old: Option<ObjectRecord> = match read_record(b, OBJECTS, &okey)? {
                    Some(Ok(r)) => Some(r),
                    Some(Err(e)) => return Ok(Err(e)),
                    None => None,
                };
                let visible = old.as_ref().filter(|o| !o.delete_marker);
                if let Err(e) = check_write_condition(&condition, visible, &record.key) {
                    return Ok(Err(e));
                }
                for k in &part_keys {
                    b.delete(PARTS, k)?;
                }
                b.delete(UPLOADS, &ukey)?;
                let installed = crate::versioning::install_current(
                    b,
                    bucket_rec.versioning.as_deref(),
                    &okey,
                    record,
                    old,
                    now,
                )?;
                Ok(Ok(installed))
            })
            .await?;
        self.remove_blobs(unused.iter().map(String::as_str));
        self.remove_blobs(old_files.iter().map(String::as_str));
        Ok(record)
    }

    pub async fn abort_upload(&self, bucket: &str, upload_id: &str) -> Result<(), ServiceError> {
        let parts = self.list_parts(upload_id)?;
        let ukey = object_key(bucket, upload_id);
        let keys: Vec<Vec<u8>> = parts
            .iter()
            .map(|p| Self::part_key(upload_id, p.part_number))
            .collect();
        let upload_id = upload_id.to_owned();
        self.tx(move |b| {
            if b.get(UPLOADS, &ukey)?.is_none() {
                return Ok(Err(errors::no_such_upload(&upload_id)));
            }
            for k in &keys {
                b.delete(PARTS, k)?;
            }
            b.delete(UPLOADS, &ukey)?;
            Ok(Ok(()))
        })
        .await?;
        self.remove_blobs(parts.iter().map(|p| p.blob.as_str()));
        Ok(())
    }
}

fn check_write_condition(
    cond: &WriteCondition,
    old: Option<&ObjectRecord>,
    key: &str,
) -> Result<(), ServiceError> {
    if cond.if_none_match_any && old.is_some() {
        return Err(errors::precondition_failed("If-None-Match"));
    }
    if let Some(expected) = &cond.if_match {
        match old {
            None => return Err(errors::no_such_key(key)),
            Some(o) if !etag_matches(expected, &o.etag) => {
                return Err(errors::precondition_failed("If-Match"));
            }
            Some(_) => {}
        }
    }
    Ok(())
}
