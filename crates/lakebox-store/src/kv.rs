//! The metadata store: named tables of byte keys to byte values, on redb.
//!
//! Why redb: pure Rust, one file, ACID with copy-on-write pages, so a crash mid-commit leaves
//! the previous commit intact; every commit is fsynced before it returns. See
//! `docs/decisions/0002-metadata-store-redb.md`.
//!
//! Writes come in two forms. [`MetaStore::write`] runs its own transaction on the calling thread
//! and blocks it until the commit is durable. [`MetaStore::write_async`] hands the transaction to
//! one writer thread that applies everything queued in *one* transaction and one fsync (group
//! commit), then answers each caller; async code never blocks a worker on fsync, and N concurrent
//! writers cost one fsync instead of N.
//!
//! The group-commit contract: a job that decides not to write (a failed precondition, say)
//! decides so before its first write, and returns that decision in its `Ok` value. A job that
//! returns `Err` (an I/O or corruption error) fails every job of its batch, since the batch's
//! transaction is then abandoned.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use redb::{Database, ReadableTable, TableDefinition};
use tokio::sync::oneshot;

use crate::{Result, StoreError, space};

/// redb's page cache. Bounded so that memory does not grow with the amount of data stored; the
/// OS page cache still serves hot data beyond it.
pub const CACHE_BYTES: usize = 64 * 1024 * 1024;

/// Bytes a transaction marked [`WriteBatch::freeing`] may add while the disk is full.
pub const FREEING_SLACK: i64 = 4096;

/// While the disk is full, an idle writer compacts its file once deletes have freed this much.
const COMPACT_AFTER_FREED: u64 = 1024 * 1024;

/// How long the writer waits for work before looking at idle-time chores.
const IDLE_CHECK: Duration = Duration::from_millis(500);

/// Most jobs applied in one group-commit transaction.
const MAX_BATCH: usize = 512;

/// How long a reopen after an I/O error waits for read transactions of the failed handle
/// (which keep its file lock) to finish.
const REOPEN_PATIENCE: Duration = Duration::from_secs(5);

/// Why a commit failed, as every job of its batch is told.
#[derive(Clone)]
enum Failure {
    Full,
    Other(String),
}

impl Failure {
    fn of(e: &StoreError) -> Failure {
        match e {
            StoreError::Full => Failure::Full,
            e => Failure::Other(e.to_string()),
        }
    }

    fn into_error(self) -> StoreError {
        match self {
            Failure::Full => StoreError::Full,
            Failure::Other(m) => StoreError::Kv(m),
        }
    }
}

type Completion = Box<dyn FnOnce(std::result::Result<(), Failure>) + Send>;

/// A write queued for the group-committing writer: applied into the batch's transaction, or
/// failed without running when no transaction could be had.
trait Job: Send {
    fn apply(self: Box<Self>, batch: &mut WriteBatch<'_>) -> Result<Completion>;
    fn fail(self: Box<Self>, why: Failure);
}

struct Queued<F, T> {
    f: F,
    reply: oneshot::Sender<Result<T>>,
}

impl<F, T> Job for Queued<F, T>
where
    F: FnOnce(&mut WriteBatch<'_>) -> Result<T> + Send,
    T: Send + 'static,
{
    fn apply(self: Box<Self>, batch: &mut WriteBatch<'_>) -> Result<Completion> {
        let Queued { f, reply } = *self;
        match f(batch) {
            Ok(value) => Ok(Box::new(move |commit: std::result::Result<(), Failure>| {
                let _ = reply.send(commit.map(|()| value).map_err(Failure::into_error));
            })),
            Err(e) => {
                let failure = Failure::of(&e);
                let _ = reply.send(Err(e));
                Err(failure.into_error())
            }
        }
    }

    fn fail(self: Box<Self>, why: Failure) {
        let _ = self.reply.send(Err(why.into_error()));
    }
}

/// redb's errors as the store's: an I/O error is `Io` (or `Full` when it means no space, which
/// also puts the process in the full state), so callers can tell it from corruption.
fn kv_err(e: impl Into<redb::Error>) -> StoreError {
    match e.into() {
        redb::Error::Io(e) => space::io_error(e),
        redb::Error::PreviousIo => StoreError::Io(std::io::Error::other(
            "the metadata store is reopening after an I/O error",
        )),
        e => StoreError::Kv(e.to_string()),
    }
}

/// Whether redb has given up on its handle: after any I/O error it refuses every later write
/// (and uncached read) until the database is opened again.
fn needs_reopen(e: &StoreError) -> bool {
    matches!(e, StoreError::Io(_) | StoreError::Full)
}

type Opener = Box<dyn Fn() -> std::result::Result<Database, redb::DatabaseError> + Send + Sync>;

/// The open database, replaced by a fresh handle after an I/O error (redb's recovery runs on
/// open), so one failed write never leaves the store failed for good.
struct Handle {
    open: Opener,
    db: RwLock<Option<Arc<Database>>>,
    /// Whether the file exists. A store nobody has written to yet is created by its first
    /// write, not when it is opened: creating a redb file costs three fsyncs, and a fresh server
    /// would otherwise pay them for every service before it answers. Until then every read
    /// answers as an empty store does.
    exists: AtomicBool,
    /// Bytes deleted since the file was last compacted.
    freed: AtomicU64,
}

impl Handle {
    fn note_growth(&self, growth: i64) {
        if growth < 0 {
            self.freed.fetch_add(growth.unsigned_abs(), Ordering::Relaxed);
        }
    }

    /// On a full disk, the pages deletes free inside the file help only this store; the
    /// filesystem (and every other store) gets them back when the file is compacted. Runs on
    /// the writer thread while it is idle, so no write is in flight; waits briefly for reads
    /// on the handle to finish, as compaction needs it alone.
    fn compact_if_full_and_freed(&self) {
        if self.freed.load(Ordering::Relaxed) < COMPACT_AFTER_FREED || !space::is_full() {
            return;
        }
        self.freed.store(0, Ordering::Relaxed);
        let Some(mut db) = self.db.write().unwrap().take() else {
            return;
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        let compacted = loop {
            if let Some(exclusive) = Arc::get_mut(&mut db) {
                break Some(exclusive.compact());
            }
            if std::time::Instant::now() > deadline {
                break None;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        match compacted {
            Some(Err(e)) => {
                // redb's handle is spent after a failed compaction; the next use reopens it.
                tracing::warn!(error = %e, "could not compact the metadata store on a full disk");
                return;
            }
            Some(Ok(_)) => tracing::info!("compacted the metadata store to give freed space back"),
            None => {}
        }
        *self.db.write().unwrap() = Some(db);
    }

    fn db(&self) -> Result<Arc<Database>> {
        if let Some(db) = self.db.read().unwrap().as_ref() {
            return Ok(db.clone());
        }
        let deadline = std::time::Instant::now() + REOPEN_PATIENCE;
        loop {
            {
                let mut slot = self.db.write().unwrap();
                if let Some(db) = slot.as_ref() {
                    return Ok(db.clone());
                }
                match (self.open)() {
                    Ok(db) => {
                        if self.exists.swap(true, Ordering::AcqRel) {
                            tracing::info!("metadata store reopened after an I/O error");
                        }
                        let db = Arc::new(db);
                        *slot = Some(db.clone());
                        return Ok(db);
                    }
                    // Read transactions begun on the failed handle still hold its file lock.
                    Err(redb::DatabaseError::DatabaseAlreadyOpen) if std::time::Instant::now() < deadline => {
                    }
                    Err(e) => return Err(kv_err(e)),
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Drops a handle redb has failed; the next [`Handle::db`] opens the file again.
    fn discard(&self, failed: &Arc<Database>) {
        let mut slot = self.db.write().unwrap();
        if slot.as_ref().is_some_and(|d| Arc::ptr_eq(d, failed)) {
            tracing::warn!("metadata store failed an I/O operation; reopening it");
            *slot = None;
        }
    }

    /// Runs a read (on `None` while the store has not been created: nothing is stored); an
    /// I/O error discards the handle, so the next operation reopens it.
    fn read<T>(&self, f: impl FnOnce(Option<&Database>) -> Result<T>) -> Result<T> {
        if !self.exists.load(Ordering::Acquire) {
            return f(None);
        }
        let db = self.db()?;
        let result = f(Some(&db));
        if let Err(e) = &result
            && needs_reopen(e)
        {
            self.discard(&db);
        }
        result
    }
}

/// redb reuses the pages deletes free, so the file does not grow with churn, but it never hands
/// them back to the filesystem. At open, when most of a large file is free pages, compact it so
/// deleting data gives its space back by the next start. Skipped on a full disk (compaction
/// writes). Answers `false` when compaction failed: redb's handle is then spent (the data is as
/// it was) and must be opened again.
fn compact_if_sparse(db: &mut Database, path: &Path) -> bool {
    const MIN_FREE_BYTES: u64 = 8 * 1024 * 1024;
    if space::is_full() {
        return true;
    }
    let file_len = std::fs::metadata(path).map_or(0, |m| m.len());
    if file_len < MIN_FREE_BYTES {
        // Too small to hold that much free space: no transaction at start-up for it.
        return true;
    }
    let Some(used) = (|| {
        let tx = db.begin_write().ok()?;
        let stats = tx.stats().ok()?;
        tx.abort().ok()?;
        Some(stats.allocated_pages() * stats.page_size() as u64)
    })() else {
        return true;
    };
    let free = file_len.saturating_sub(used);
    if free < MIN_FREE_BYTES || free < file_len / 2 {
        return true;
    }
    match db.compact() {
        Ok(_) => {
            tracing::info!(
                file = %path.display(),
                before = file_len,
                after = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
                "compacted the metadata store"
            );
            true
        }
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "could not compact the metadata store");
            false
        }
    }
}

/// A durable, transactional map of `table → key → value`.
pub struct MetaStore {
    handle: Arc<Handle>,
    jobs: Mutex<Option<mpsc::Sender<Box<dyn Job>>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

/// The writes of one atomic transaction.
pub struct WriteBatch<'a> {
    tx: &'a redb::WriteTransaction,
    /// Bytes of keys and values this transaction adds, less those it removes: while the disk
    /// is full, a transaction that grows the data is refused.
    growth: i64,
    /// Set by [`WriteBatch::freeing`].
    freeing: bool,
}

impl WriteBatch<'_> {
    pub fn put(&mut self, table: &str, key: &[u8], value: &[u8]) -> Result<()> {
        let mut t = self.tx.open_table(def(table)).map_err(kv_err)?;
        let old = t.insert(key, value).map_err(kv_err)?.map(|g| g.value().len());
        self.growth += (value.len() + key.len()) as i64;
        if let Some(old) = old {
            self.growth -= (old + key.len()) as i64;
        }
        Ok(())
    }

    /// Marks this transaction as part of deleting something (a "deleting" status, a delete
    /// marker): it is admitted while the disk is full, as deletes must be, if it adds at most
    /// [`FREEING_SLACK`] bytes.
    pub fn freeing(&mut self) {
        self.freeing = true;
    }

    /// Whether the full disk's rule turns this transaction away.
    fn refused_when_full(&self) -> bool {
        self.growth > if self.freeing { FREEING_SLACK } else { 0 }
    }

    /// Returns whether the key existed.
    pub fn delete(&mut self, table: &str, key: &[u8]) -> Result<bool> {
        let mut t = self.tx.open_table(def(table)).map_err(kv_err)?;
        let old = t.remove(key).map_err(kv_err)?.map(|g| g.value().len());
        if let Some(old) = old {
            self.growth -= (old + key.len()) as i64;
        }
        Ok(old.is_some())
    }
    /// Every entry whose key starts with `prefix`, in key order (sees this batch's own writes).
    pub fn scan_prefix(&self, table: &str, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let t = self.tx.open_table(def(table)).map_err(kv_err)?;
        entries_with_prefix(&t, prefix)
    }

    /// The first key with this prefix, inside the transaction (sees this batch's own writes).
    pub fn first_with_prefix(&self, table: &str, prefix: &[u8]) -> Result<Option<Vec<u8>>> {
        let t = self.tx.open_table(def(table)).map_err(kv_err)?;
        let mut range = t.range(prefix..).map_err(kv_err)?;
        match range.next() {
            Some(item) => {
                let (k, _) = item.map_err(kv_err)?;
                let k = k.value();
                Ok(k.starts_with(prefix).then(|| k.to_vec()))
            }
            None => Ok(None),
        }
    }

    /// Reads inside the transaction (sees this batch's own writes).
    pub fn get(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let t = self.tx.open_table(def(table)).map_err(kv_err)?;
        let v = t.get(key).map_err(kv_err)?.map(|g| g.value().to_vec());
        Ok(v)
    }

    /// Visits the entries of `range` in key order (or reverse) until `visit` answers `false`;
    /// sees this batch's own writes.
    pub fn range(
        &self,
        table: &str,
        range: KeyRange<'_>,
        visit: impl FnMut(&[u8], &[u8]) -> Result<bool>,
    ) -> Result<()> {
        let t = self.tx.open_table(def(table)).map_err(kv_err)?;
        visit_range(&t, range, visit)
    }

    /// Deletes a whole table and every entry in it (a no-op for a table that does not exist):
    /// its pages are freed in one step rather than key by key.
    pub fn delete_table(&mut self, table: &str) -> Result<()> {
        self.tx.delete_table(def(table)).map_err(kv_err)?;
        Ok(())
    }
}

/// A span of keys to visit: from `start` to `end` (each bound inclusive or exclusive, or open),
/// forwards or backwards.
#[derive(Debug, Clone, Copy)]
pub struct KeyRange<'a> {
    pub start: std::ops::Bound<&'a [u8]>,
    pub end: std::ops::Bound<&'a [u8]>,
    pub reverse: bool,
}

/// The least key greater than every key that starts with `prefix` (`None`: no such key, the
/// prefix being all 0xFF), the exclusive end of a prefix's span.
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

fn visit_range(
    t: &impl ReadableTable<&'static [u8], &'static [u8]>,
    range: KeyRange<'_>,
    mut visit: impl FnMut(&[u8], &[u8]) -> Result<bool>,
) -> Result<()> {
    use std::ops::Bound;
    // An empty span (start past end) is no span at all; redb would refuse it.
    let empty = match (range.start, range.end) {
        (Bound::Included(a), Bound::Included(b)) => a > b,
        (Bound::Included(a) | Bound::Excluded(a), Bound::Excluded(b))
        | (Bound::Excluded(a), Bound::Included(b)) => a >= b,
        _ => false,
    };
    if empty {
        return Ok(());
    }
    let iter = t.range::<&[u8]>((range.start, range.end)).map_err(kv_err)?;
    type Entry<'g> = (
        redb::AccessGuard<'g, &'static [u8]>,
        redb::AccessGuard<'g, &'static [u8]>,
    );
    let mut step = |item: std::result::Result<Entry<'_>, redb::StorageError>| -> Result<bool> {
        let (k, v) = item.map_err(kv_err)?;
        visit(k.value(), v.value())
    };
    if range.reverse {
        for item in iter.rev() {
            if !step(item)? {
                break;
            }
        }
    } else {
        for item in iter {
            if !step(item)? {
                break;
            }
        }
    }
    Ok(())
}

/// A consistent snapshot for several reads; see [`MetaStore::read`].
pub struct ReadView {
    /// `None` while the store has not been created (see `Handle::exists`).
    tx: Option<redb::ReadTransaction>,
}

impl ReadView {
    /// Every entry whose key starts with `prefix`, in key order.
    pub fn scan_prefix(&self, table: &str, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let Some(tx) = &self.tx else {
            return Ok(Vec::new());
        };
        let t = match tx.open_table(def(table)) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(kv_err(e)),
        };
        entries_with_prefix(&t, prefix)
    }

    pub fn get(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let Some(tx) = &self.tx else {
            return Ok(None);
        };
        let t = match tx.open_table(def(table)) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(kv_err(e)),
        };
        let v = t.get(key).map_err(kv_err)?.map(|g| g.value().to_vec());
        Ok(v)
    }

    /// Visits the entries of `range` in key order (or reverse) until `visit` answers `false`.
    pub fn range(
        &self,
        table: &str,
        range: KeyRange<'_>,
        visit: impl FnMut(&[u8], &[u8]) -> Result<bool>,
    ) -> Result<()> {
        let Some(tx) = &self.tx else {
            return Ok(());
        };
        let t = match tx.open_table(def(table)) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
            Err(e) => return Err(kv_err(e)),
        };
        visit_range(&t, range, visit)
    }
}

/// Every entry of `t` whose key starts with `prefix`, in key order.
fn entries_with_prefix(
    t: &impl ReadableTable<&'static [u8], &'static [u8]>,
    prefix: &[u8],
) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    for item in t.range(prefix..).map_err(kv_err)? {
        let (k, v) = item.map_err(kv_err)?;
        if !k.value().starts_with(prefix) {
            break;
        }
        out.push((k.value().to_vec(), v.value().to_vec()));
    }
    Ok(out)
}

fn def(name: &str) -> TableDefinition<'_, &'static [u8], &'static [u8]> {
    TableDefinition::new(name)
}

impl MetaStore {
    /// Opens the store file; recovery after a crash happens here. A file that does not exist
    /// yet is created by the first write (see `Handle::exists`).
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = path.to_owned();
        let open: Opener = Box::new(move || {
            let io = |e| redb::DatabaseError::Storage(redb::StorageError::Io(e));
            if !file.exists() {
                // A new file is made under a temporary name and renamed into place (the
                // rename and the directory fsynced before the first write is acknowledged),
                // so a crash while redb writes its first pages leaves no half-made store for
                // the next start to refuse.
                let tmp = file.with_extension("redb.creating");
                let _ = std::fs::remove_file(&tmp);
                drop(redb::Builder::new().set_cache_size(CACHE_BYTES).create(&tmp)?);
                std::fs::File::open(&tmp).and_then(|f| f.sync_all()).map_err(io)?;
                std::fs::rename(&tmp, &file).map_err(io)?;
                if let Some(dir) = file.parent() {
                    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
                }
            }
            redb::Builder::new().set_cache_size(CACHE_BYTES).create(&file)
        });
        // An empty file is one a crash interrupted while it was being made by an earlier
        // version (before the rename above): nothing in it was ever acknowledged.
        if std::fs::metadata(path).is_ok_and(|m| m.len() == 0) {
            std::fs::remove_file(path)?;
        }
        if !path.try_exists()? {
            return Self::with_db(open, None);
        }
        let mut db = open().map_err(kv_err)?;
        if !compact_if_sparse(&mut db, path) {
            drop(db);
            db = open().map_err(kv_err)?;
        }
        Self::with_db(open, Some(db))
    }

    /// Opens a store whose database `open` makes (on a custom redb backend: tests inject
    /// faults this way). `open` is called again to reopen after an I/O error.
    pub fn open_with(
        open: impl Fn() -> std::result::Result<Database, redb::DatabaseError> + Send + Sync + 'static,
    ) -> Result<Self> {
        let db = open().map_err(kv_err)?;
        Self::with_db(Box::new(open), Some(db))
    }

    /// `db` is `None` for a store not created yet.
    fn with_db(open: Opener, db: Option<Database>) -> Result<Self> {
        let handle = Arc::new(Handle {
            open,
            exists: AtomicBool::new(db.is_some()),
            db: RwLock::new(db.map(Arc::new)),
            freed: AtomicU64::new(0),
        });
        let (tx, rx) = mpsc::channel::<Box<dyn Job>>();
        let writer_handle = handle.clone();
        let writer = std::thread::Builder::new()
            .name("lakebox-kv-writer".into())
            .spawn(move || group_commit_loop(&writer_handle, &rx))?;
        Ok(MetaStore {
            handle,
            jobs: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
        })
    }

    /// Runs `f` in a group-committed transaction (see the module docs for the contract) and
    /// resolves once it is durable.
    pub async fn write_async<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut WriteBatch<'_>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.enqueue(f)?.await
    }

    /// Queues `f` for the group-committing writer now, and returns what resolves once it is
    /// durable. Writes queued one after another are applied in that order, so a caller may
    /// queue a write it need not wait for (a progress note) and later ones still win.
    pub fn enqueue<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut WriteBatch<'_>) -> Result<T> + Send + 'static,
    ) -> Result<Durable<T>> {
        let (reply, rx) = oneshot::channel::<Result<T>>();
        let job: Box<dyn Job> = Box::new(Queued { f, reply });
        {
            let jobs = self.jobs.lock().unwrap();
            let sender = jobs.as_ref().ok_or(StoreError::Closed)?;
            sender.send(job).map_err(|_| StoreError::Closed)?;
        }
        Ok(Durable(rx))
    }

    /// Runs several reads against one consistent snapshot (one read transaction).
    pub fn read<T>(&self, f: impl FnOnce(&ReadView) -> Result<T>) -> Result<T> {
        self.handle.read(|db| {
            let tx = db.map(|db| db.begin_read().map_err(kv_err)).transpose()?;
            f(&ReadView { tx })
        })
    }

    pub fn get(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.read(|view| view.get(table, key))
    }

    pub fn put(&self, table: &str, key: &[u8], value: &[u8]) -> Result<()> {
        self.write(|b| b.put(table, key, value))
    }

    pub fn delete(&self, table: &str, key: &[u8]) -> Result<bool> {
        self.write(|b| b.delete(table, key))
    }

    /// Runs `f` on this thread as one atomic, durable transaction: all its writes land, or none do (also when
    /// `f` returns an error).
    pub fn write<T>(&self, f: impl FnOnce(&mut WriteBatch<'_>) -> Result<T>) -> Result<T> {
        let db = self.handle.db()?;
        let full = space::is_full();
        let mut refused = false;
        let result = (|| {
            let tx = db.begin_write().map_err(kv_err)?;
            let mut batch = WriteBatch {
                tx: &tx,
                growth: 0,
                freeing: false,
            };
            let out = match f(&mut batch) {
                Ok(v) => v,
                Err(e) => {
                    tx.abort().map_err(kv_err)?;
                    return Err(e);
                }
            };
            if full && batch.refused_when_full() {
                refused = true;
                tx.abort().map_err(kv_err)?;
                return Err(StoreError::Full);
            }
            let growth = batch.growth;
            tx.commit().map_err(kv_err)?;
            self.handle.note_growth(growth);
            Ok(out)
        })();
        if let Err(e) = &result
            && !refused
            && needs_reopen(e)
        {
            self.handle.discard(&db);
        }
        result
    }

    /// Up to `limit` entries whose keys start with `prefix`, in key order, strictly after
    /// `start_after` when given (for pagination).
    pub fn scan_prefix(
        &self,
        table: &str,
        prefix: &[u8],
        start_after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.handle.read(|db| {
            let Some(db) = db else {
                return Ok(Vec::new());
            };
            let tx = db.begin_read().map_err(kv_err)?;
            let t = match tx.open_table(def(table)) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
                Err(e) => return Err(kv_err(e)),
            };
            let start: &[u8] = match start_after {
                Some(s) if s >= prefix => s,
                _ => prefix,
            };
            let mut out = Vec::new();
            for item in t.range(start..).map_err(kv_err)? {
                let (k, v) = item.map_err(kv_err)?;
                let k = k.value();
                if !k.starts_with(prefix) {
                    break;
                }
                if start_after == Some(k) {
                    continue;
                }
                out.push((k.to_vec(), v.value().to_vec()));
                if out.len() >= limit {
                    break;
                }
            }
            Ok(out)
        })
    }
}

impl Drop for MetaStore {
    fn drop(&mut self) {
        self.jobs.lock().unwrap().take();
        if let Some(w) = self.writer.lock().unwrap().take() {
            let _ = w.join();
        }
    }
}

/// The writer thread: one transaction and one commit for everything queued. While the disk is
/// full it takes one job per transaction, so a job that would grow the data is refused alone
/// and the deletes queued beside it still land.
fn group_commit_loop(handle: &Handle, rx: &mpsc::Receiver<Box<dyn Job>>) {
    loop {
        let first = match rx.recv_timeout(IDLE_CHECK) {
            Ok(job) => job,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                handle.compact_if_full_and_freed();
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        let full = space::is_full();
        let max = if full { 1 } else { MAX_BATCH };
        let mut jobs = vec![first];
        while jobs.len() < max {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let fail_all = |jobs: Vec<Box<dyn Job>>, e: StoreError| {
            tracing::error!(error = %e, "cannot start a metadata transaction");
            let why = Failure::of(&e);
            for job in jobs {
                job.fail(why.clone());
            }
        };
        let db = match handle.db() {
            Ok(db) => db,
            Err(e) => {
                fail_all(jobs, e);
                continue;
            }
        };
        let tx = match db.begin_write().map_err(kv_err) {
            Ok(tx) => tx,
            Err(e) => {
                if needs_reopen(&e) {
                    handle.discard(&db);
                }
                fail_all(jobs, e);
                continue;
            }
        };
        let mut completions = Vec::with_capacity(jobs.len());
        let mut failure = None;
        let (refused_when_full, growth) = {
            let mut batch = WriteBatch {
                tx: &tx,
                growth: 0,
                freeing: false,
            };
            for job in jobs {
                match job.apply(&mut batch) {
                    Ok(c) => completions.push(c),
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
            (batch.refused_when_full(), batch.growth)
        };
        // `refused`: the full disk's rule turned the batch away; redb itself is fine.
        let (outcome, refused) = match failure {
            Some(e) => {
                let _ = tx.abort();
                (Err(e), false)
            }
            None if full && refused_when_full => {
                let _ = tx.abort();
                (Err(StoreError::Full), true)
            }
            None => (
                tx.commit()
                    .map_err(kv_err)
                    .inspect(|()| handle.note_growth(growth)),
                false,
            ),
        };
        let outcome = outcome.map_err(|e| {
            if !refused {
                if needs_reopen(&e) {
                    handle.discard(&db);
                }
                tracing::error!(error = %e, "metadata batch failed; none of its writes were acknowledged");
            }
            Failure::of(&e)
        });
        drop(db);
        for c in completions {
            c(outcome.clone());
        }
    }
}

/// Resolves once a queued write is durable (or has failed), with the write's own result.
pub struct Durable<T>(oneshot::Receiver<Result<T>>);

impl<T> std::future::Future for Durable<T> {
    type Output = Result<T>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<T>> {
        std::pin::Pin::new(&mut self.0)
            .poll(cx)
            .map(|r| r.unwrap_or_else(|_| Err(StoreError::Kv("the transaction's batch failed".into()))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_delete_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.redb");
        {
            let kv = MetaStore::open(&path).unwrap();
            assert_eq!(kv.get("t", b"k").unwrap(), None);
            kv.put("t", b"k", b"v").unwrap();
            kv.put("t", b"gone", b"x").unwrap();
            assert!(kv.delete("t", b"gone").unwrap());
            assert!(!kv.delete("t", b"gone").unwrap());
        }
        let kv = MetaStore::open(&path).unwrap();
        assert_eq!(kv.get("t", b"k").unwrap(), Some(b"v".to_vec()));
        assert_eq!(kv.get("t", b"gone").unwrap(), None);
    }

    #[test]
    fn a_store_whose_making_a_crash_cut_short_opens_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.redb");
        // What a crash left: an empty file (an earlier version), a half-made temporary one.
        std::fs::write(&path, b"").unwrap();
        std::fs::write(path.with_extension("redb.creating"), b"torn").unwrap();
        let kv = MetaStore::open(&path).unwrap();
        assert_eq!(kv.get("t", b"k").unwrap(), None);
        kv.put("t", b"k", b"v").unwrap();
        drop(kv);
        assert!(!path.with_extension("redb.creating").exists());
        assert_eq!(
            MetaStore::open(&path).unwrap().get("t", b"k").unwrap(),
            Some(b"v".to_vec())
        );
    }

    #[tokio::test]
    async fn a_new_store_is_created_by_its_first_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.redb");
        let kv = MetaStore::open(&path).unwrap();
        // Reads of a store never written answer as an empty store, without creating the file.
        assert_eq!(kv.get("t", b"k").unwrap(), None);
        assert!(kv.scan_prefix("t", b"", None, 10).unwrap().is_empty());
        assert!(kv.read(|v| v.scan_prefix("t", b"")).unwrap().is_empty());
        assert!(!path.exists());
        // The group-committing writer creates it as well as a direct write does.
        kv.write_async(|b| b.put("t", b"k", b"v")).await.unwrap();
        assert!(path.exists());
        assert_eq!(kv.get("t", b"k").unwrap(), Some(b"v".to_vec()));
        drop(kv);
        let kv = MetaStore::open(&path).unwrap();
        assert_eq!(kv.scan_prefix("t", b"", None, 10).unwrap().len(), 1);
    }

    #[test]
    fn failed_transaction_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let kv = MetaStore::open(&dir.path().join("m")).unwrap();
        let r: Result<()> = kv.write(|b| {
            b.put("a", b"1", b"x")?;
            b.put("b", b"2", b"y")?;
            Err(StoreError::Corrupt("abort".into()))
        });
        assert!(r.is_err());
        assert_eq!(kv.get("a", b"1").unwrap(), None);
        kv.write(|b| {
            b.put("a", b"1", b"x")?;
            assert_eq!(b.get("a", b"1")?, Some(b"x".to_vec()));
            assert_eq!(b.first_with_prefix("a", b"")?, Some(b"1".to_vec()));
            assert_eq!(b.first_with_prefix("a", b"2")?, None);
            assert_eq!(b.scan_prefix("a", b"1")?, vec![(b"1".to_vec(), b"x".to_vec())]);
            b.put("b", b"2", b"y")
        })
        .unwrap();
        assert_eq!(kv.get("b", b"2").unwrap(), Some(b"y".to_vec()));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn group_commit_applies_concurrent_writers_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let kv = Arc::new(MetaStore::open(&dir.path().join("m")).unwrap());
        let mut tasks = Vec::new();
        for i in 0..200u32 {
            let kv = kv.clone();
            tasks.push(tokio::spawn(async move {
                kv.write_async(move |b| {
                    // A conditional write: refuse (without writing) if the key exists.
                    let key = format!("k{}", i % 100);
                    if b.get("t", key.as_bytes())?.is_some() {
                        return Ok(false);
                    }
                    b.put("t", key.as_bytes(), &i.to_le_bytes())?;
                    Ok(true)
                })
                .await
                .unwrap()
            }));
        }
        let mut created = 0;
        for t in tasks {
            created += t.await.unwrap() as usize;
        }
        // Exactly one writer per key won, even inside shared batches.
        assert_eq!(created, 100);
        assert_eq!(kv.scan_prefix("t", b"k", None, 1000).unwrap().len(), 100);
        // A failing job fails its caller and leaves the store usable.
        let err = kv
            .write_async(|_| -> Result<()> { Err(StoreError::Corrupt("boom".into())) })
            .await;
        assert!(err.is_err());
        kv.write_async(|b| b.put("t", b"after", b"1")).await.unwrap();
        drop(kv);
        let kv = MetaStore::open(&dir.path().join("m")).unwrap();
        assert_eq!(kv.get("t", b"after").unwrap(), Some(b"1".to_vec()));
    }

    #[tokio::test]
    async fn queued_writes_apply_in_order_even_when_nobody_waits() {
        let dir = tempfile::tempdir().unwrap();
        let kv = MetaStore::open(&dir.path().join("m")).unwrap();
        for round in 0..50u32 {
            // A progress note nobody waits for, then the final word, which must win.
            drop(
                kv.enqueue(move |b| b.put("t", b"state", format!("running {round}").as_bytes()))
                    .unwrap(),
            );
            kv.enqueue(move |b| b.put("t", b"state", format!("done {round}").as_bytes()))
                .unwrap()
                .await
                .unwrap();
            assert_eq!(
                kv.get("t", b"state").unwrap(),
                Some(format!("done {round}").into_bytes())
            );
        }
    }

    #[test]
    fn prefix_scan_paginates() {
        let dir = tempfile::tempdir().unwrap();
        let kv = MetaStore::open(&dir.path().join("m")).unwrap();
        for k in ["a/1", "a/2", "a/3", "b/1", "a0"] {
            kv.put("t", k.as_bytes(), b"").unwrap();
        }
        let keys = |v: Vec<(Vec<u8>, Vec<u8>)>| -> Vec<String> {
            v.into_iter()
                .map(|(k, _)| String::from_utf8(k).unwrap())
                .collect()
        };
        assert_eq!(
            keys(kv.scan_prefix("t", b"a/", None, 10).unwrap()),
            ["a/1", "a/2", "a/3"]
        );
        assert_eq!(keys(kv.scan_prefix("t", b"a/", None, 2).unwrap()), ["a/1", "a/2"]);
        assert_eq!(
            keys(kv.scan_prefix("t", b"a/", Some(b"a/2"), 10).unwrap()),
            ["a/3"]
        );
        assert!(kv.scan_prefix("nope", b"", None, 10).unwrap().is_empty());
    }
}
