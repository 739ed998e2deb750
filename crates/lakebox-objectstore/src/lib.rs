//! An [`object_store::ObjectStore`] over one bucket of Lakebox S3, so DataFusion (Athena, and
//! anything else speaking `object_store`) reads and writes the lake in-process: no HTTP, the
//! same durability, encryption and listing order as the S3 API.
//!
//! Kept out of `lakebox-s3` so only the services that run DataFusion compile `object_store`.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::stream::{self, BoxStream, StreamExt};
use lakebox_core::ServiceError;
use lakebox_service::lake::{Lake, LakeError, ObjectInfo, PutOptions as LakePut};
use object_store::path::Path;
use object_store::{
    Attributes, CopyMode, CopyOptions, Error, GetOptions, GetResult, GetResultPayload, ListResult,
    MultipartUpload, ObjectMeta, ObjectStore, PutMode, PutMultipartOptions, PutOptions, PutPayload,
    PutResult, Result, UploadPart,
};
use tokio::sync::{mpsc, oneshot};

const STORE: &str = "LakeboxS3";
/// Objects fetched per listing page.
const LIST_PAGE: usize = 1000;

/// One bucket of Lakebox S3 as an `ObjectStore`.
#[derive(Clone)]
pub struct LakeObjectStore {
    lake: Lake,
    bucket: String,
    /// Adds up the bytes of object data read, when set (Athena's DataScannedInBytes).
    read_bytes: Option<Arc<AtomicU64>>,
}

impl LakeObjectStore {
    pub fn new(lake: Lake, bucket: impl Into<String>) -> Self {
        LakeObjectStore {
            lake,
            bucket: bucket.into(),
            read_bytes: None,
        }
    }

    /// Counts every byte of object data this store reads into `counter`.
    pub fn counting_reads(mut self, counter: Arc<AtomicU64>) -> Self {
        self.read_bytes = Some(counter);
        self
    }
}

impl fmt::Display for LakeObjectStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LakeboxS3(s3://{})", self.bucket)
    }
}

impl fmt::Debug for LakeObjectStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

fn error(path: &str, e: ServiceError) -> Error {
    let source = format!("{}: {}", e.code, e.message).into();
    match LakeError::of(&e) {
        LakeError::NotFound => Error::NotFound {
            path: path.to_owned(),
            source,
        },
        LakeError::PreconditionFailed => Error::Precondition {
            path: path.to_owned(),
            source,
        },
        LakeError::Other => Error::Generic { store: STORE, source },
    }
}

fn quoted(etag: &str) -> String {
    format!("\"{etag}\"")
}

fn meta(info: &ObjectInfo) -> Result<ObjectMeta> {
    Ok(ObjectMeta {
        location: Path::parse(&info.key).map_err(|e| Error::Generic {
            store: STORE,
            source: Box::new(e),
        })?,
        last_modified: DateTime::<Utc>::from_timestamp_millis(info.last_modified_millis).unwrap_or_default(),
        size: info.size,
        e_tag: Some(quoted(&info.etag)),
        version: info.version_id.clone(),
    })
}

fn put_result(info: &ObjectInfo) -> PutResult {
    PutResult {
        e_tag: Some(quoted(&info.etag)),
        version: info.version_id.clone(),
    }
}

/// The key prefix of everything "under" `prefix` (object_store prefixes end at a `/`).
fn dir_prefix(prefix: Option<&Path>) -> String {
    match prefix.map(Path::as_ref) {
        None | Some("") => String::new(),
        Some(p) => format!("{p}/"),
    }
}

/// Zero-byte keys ending in `/` are folder markers (the S3 console makes them), not objects.
fn is_folder_marker(info: &ObjectInfo) -> bool {
    info.key.ends_with('/') && info.size == 0
}

impl LakeObjectStore {
    /// One listing page under `prefix`, after `after`.
    async fn page(&self, prefix: String, after: Option<String>) -> Result<Vec<ObjectInfo>> {
        let lake = self.lake.clone();
        let bucket = self.bucket.clone();
        // The index read is synchronous; keep it off the async workers.
        tokio::task::spawn_blocking(move || lake.list(&bucket, &prefix, after.as_deref(), LIST_PAGE))
            .await
            .map_err(|e| Error::Generic {
                store: STORE,
                source: Box::new(e),
            })?
            .map_err(|e| error("", e))
    }

    fn list_from(
        &self,
        prefix: Option<&Path>,
        offset: Option<&Path>,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        let this = self.clone();
        let prefix = dir_prefix(prefix);
        let start = offset.map(|o| o.as_ref().to_owned());
        stream::try_unfold(Some(start), move |cursor| {
            let this = this.clone();
            let prefix = prefix.clone();
            async move {
                let Some(after) = cursor else { return Ok(None) };
                let page = this.page(prefix, after).await?;
                let next = (page.len() == LIST_PAGE).then(|| page.last().map(|o| o.key.clone()));
                let metas = page
                    .iter()
                    .filter(|o| !is_folder_marker(o))
                    .map(meta)
                    .collect::<Vec<_>>();
                Ok(Some((stream::iter(metas), next)))
            }
        })
        .map(|page: Result<_>| match page {
            Ok(s) => s.boxed(),
            Err(e) => stream::once(async { Err(e) }).boxed(),
        })
        .flatten()
        .boxed()
    }
}

#[async_trait]
impl ObjectStore for LakeObjectStore {
    async fn put_opts(&self, location: &Path, payload: PutPayload, opts: PutOptions) -> Result<PutResult> {
        let (tx, rx) = mpsc::channel(4);
        let put = LakePut {
            content_type: None,
            if_absent: matches!(opts.mode, PutMode::Create),
            if_match: match &opts.mode {
                PutMode::Update(v) => Some(v.e_tag.clone().ok_or_else(|| Error::Generic {
                    store: STORE,
                    source: "an update needs the ETag of the version it replaces".into(),
                })?),
                _ => None,
            },
        };
        tokio::spawn(async move {
            for chunk in payload.iter() {
                if tx.send(Ok(chunk.clone())).await.is_err() {
                    break;
                }
            }
        });
        let key = location.as_ref();
        match self.lake.put_stream(&self.bucket, key, rx, put).await {
            Ok(info) => Ok(put_result(&info)),
            Err(e)
                if LakeError::of(&e) == LakeError::PreconditionFailed
                    && matches!(opts.mode, PutMode::Create) =>
            {
                Err(Error::AlreadyExists {
                    path: key.to_owned(),
                    source: "the object exists".into(),
                })
            }
            // S3 answers an If-Match on a missing key with 404; object_store calls it a failed
            // precondition.
            Err(e) if LakeError::of(&e) == LakeError::NotFound && matches!(opts.mode, PutMode::Update(_)) => {
                Err(Error::Precondition {
                    path: key.to_owned(),
                    source: "the object does not exist".into(),
                })
            }
            Err(e) => Err(error(key, e)),
        }
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        _opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        Ok(Box::new(StreamingUpload::start(self, location)))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let key = location.as_ref();
        if options.version.is_some() {
            return Err(Error::NotImplemented {
                operation: "get_opts with a version".into(),
                implementer: STORE.into(),
            });
        }
        // The range and preconditions are judged on the version the head saw; if another write
        // replaced it before the read, judge again on the new one (bounded: writers may win a
        // few times, never forever in practice).
        let mut attempts = 0;
        let (object_meta, range, rx) = loop {
            let info = self
                .lake
                .head(&self.bucket, key)
                .map_err(|e| error(key, e))?
                .ok_or_else(|| Error::NotFound {
                    path: key.to_owned(),
                    source: "no such key".into(),
                })?;
            let object_meta = meta(&info)?;
            options.check_preconditions(&object_meta)?;
            let range: Range<u64> = match &options.range {
                Some(r) => r.as_range(info.size).map_err(|e| Error::Generic {
                    store: STORE,
                    source: e.to_string().into(),
                })?,
                None => 0..info.size,
            };
            if options.head {
                return Ok(GetResult {
                    payload: GetResultPayload::Stream(stream::empty().boxed()),
                    meta: object_meta,
                    range,
                    attributes: Attributes::new(),
                });
            }
            let (now, rx) = self
                .lake
                .get(&self.bucket, key, Some(range.clone()))
                .map_err(|e| error(key, e))?;
            if now == info {
                if let Some(c) = &self.read_bytes {
                    c.fetch_add(range.end - range.start, Ordering::Relaxed);
                }
                break (object_meta, range, rx);
            }
            attempts += 1;
            if attempts == 10 {
                return Err(Error::Generic {
                    store: STORE,
                    source: format!("{key} kept changing while being read").into(),
                });
            }
        };
        let path = key.to_owned();
        let mut rx = rx;
        let body = stream::poll_fn(move |cx| rx.poll_recv(cx))
            .map(move |chunk| {
                chunk.map_err(|e| Error::Generic {
                    store: STORE,
                    source: format!("reading {path}: {e}").into(),
                })
            })
            .boxed();
        Ok(GetResult {
            payload: GetResultPayload::Stream(body),
            meta: object_meta,
            range,
            attributes: Attributes::new(),
        })
    }

    fn delete_stream(&self, locations: BoxStream<'static, Result<Path>>) -> BoxStream<'static, Result<Path>> {
        // One delete at a time, in order: each is a durable S3 delete.
        let (lake, bucket) = (self.lake.clone(), self.bucket.clone());
        locations
            .then(move |location| {
                let (lake, bucket) = (lake.clone(), bucket.clone());
                async move {
                    let location = location?;
                    let key = location.as_ref();
                    lake.delete(&bucket, key).await.map_err(|e| error(key, e))?;
                    Ok(location)
                }
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.list_from(prefix, None)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.list_from(prefix, Some(offset))
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let dir = dir_prefix(prefix);
        let mut result = ListResult {
            common_prefixes: Vec::new(),
            objects: Vec::new(),
        };
        let mut after: Option<String> = None;
        loop {
            let page = self.page(dir.clone(), after.clone()).await?;
            let full = page.len() == LIST_PAGE;
            let mut next = page.last().map(|o| o.key.clone());
            for o in &page {
                let rest = &o.key[dir.len()..];
                match rest.find('/') {
                    Some(i) => {
                        let sub = &o.key[..dir.len() + i];
                        if result.common_prefixes.last().map(Path::as_ref) != Some(sub) {
                            result
                                .common_prefixes
                                .push(Path::parse(sub).map_err(|e| Error::Generic {
                                    store: STORE,
                                    source: Box::new(e),
                                })?);
                        }
                        // Skip the rest of this "directory": no key continues past U+10FFFF.
                        next = Some(format!("{sub}/\u{10FFFF}"));
                        break;
                    }
                    None if !is_folder_marker(o) => result.objects.push(meta(o)?),
                    None => {}
                }
            }
            let skipped = next.as_ref().is_some_and(|n| n.ends_with('\u{10FFFF}'));
            if !(full || skipped) {
                break;
            }
            after = next;
        }
        Ok(result)
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        let if_absent = matches!(options.mode, CopyMode::Create);
        match self
            .lake
            .copy(&self.bucket, from.as_ref(), to.as_ref(), if_absent)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if if_absent && LakeError::of(&e) == LakeError::PreconditionFailed => {
                Err(Error::AlreadyExists {
                    path: to.as_ref().to_owned(),
                    source: "the object exists".into(),
                })
            }
            Err(e) => Err(error(from.as_ref(), e)),
        }
    }
}

/// A multipart write streamed into one object: parts flow, in the order `put_part` is called,
/// into a single durable write that commits on `complete` (a failed or aborted upload stores
/// nothing). Each part's future resolves once its bytes are written, so callers that bound
/// their in-flight parts (as `WriteMultipart` does) bound memory too.
struct StreamingUpload {
    parts: Option<mpsc::UnboundedSender<Message>>,
    done: Option<tokio::task::JoinHandle<Result<PutResult>>>,
}

enum Message {
    /// A part, and who to tell once its bytes are written.
    Part(PutPayload, oneshot::Sender<()>),
    Abort,
}

impl StreamingUpload {
    fn start(store: &LakeObjectStore, location: &Path) -> Self {
        let (parts_tx, mut parts_rx) = mpsc::unbounded_channel::<Message>();
        let (data_tx, data_rx) = mpsc::channel(4);
        tokio::spawn(async move {
            // The write commits when this loop ends by the sender going away (complete); an
            // abort fails it, so nothing is stored.
            while let Some(message) = parts_rx.recv().await {
                match message {
                    Message::Part(payload, written) => {
                        for chunk in payload.iter() {
                            if data_tx.send(Ok(chunk.clone())).await.is_err() {
                                return;
                            }
                        }
                        let _ = written.send(());
                    }
                    Message::Abort => {
                        let _ = data_tx.send(Err(std::io::Error::other("upload aborted"))).await;
                        return;
                    }
                }
            }
        });
        let (lake, bucket, key) = (
            store.lake.clone(),
            store.bucket.clone(),
            location.as_ref().to_owned(),
        );
        let done = tokio::spawn(async move {
            lake.put_stream(&bucket, &key, data_rx, LakePut::default())
                .await
                .map(|info| put_result(&info))
                .map_err(|e| error(&key, e))
        });
        StreamingUpload {
            parts: Some(parts_tx),
            done: Some(done),
        }
    }
}

impl fmt::Debug for StreamingUpload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StreamingUpload")
    }
}

fn finished() -> Error {
    Error::Generic {
        store: STORE,
        source: "the upload was already completed or aborted".into(),
    }
}

#[async_trait]
impl MultipartUpload for StreamingUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        let (written_tx, written_rx) = oneshot::channel();
        let sent = self
            .parts
            .as_ref()
            .is_some_and(|p| p.send(Message::Part(data, written_tx)).is_ok());
        Box::pin(async move {
            if sent && written_rx.await.is_ok() {
                Ok(())
            } else {
                Err(Error::Generic {
                    store: STORE,
                    source: "the upload failed or was closed".into(),
                })
            }
        })
    }

    async fn complete(&mut self) -> Result<PutResult> {
        self.parts.take().ok_or_else(finished)?;
        let done = self.done.take().ok_or_else(finished)?;
        done.await.map_err(|e| Error::Generic {
            store: STORE,
            source: Box::new(e),
        })?
    }

    async fn abort(&mut self) -> Result<()> {
        if let Some(parts) = self.parts.take() {
            let _ = parts.send(Message::Abort);
        }
        if let Some(done) = self.done.take() {
            // The write fails on the injected error; that failure is the point.
            let _ = done.await;
        }
        Ok(())
    }
}
