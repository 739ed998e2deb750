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
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use redb::{Database, ReadableTable, TableDefinition};
use tokio::sync::oneshot;

use crate::{Result, StoreError};

/// redb's page cache. Bounded so that memory does not grow with the amount of data stored; the
/// OS page cache still serves hot data beyond it.
pub const CACHE_BYTES: usize = 64 * 1024 * 1024;

/// Most jobs applied in one group-commit transaction.
const MAX_BATCH: usize = 512;

type Completion = Box<dyn FnOnce(std::result::Result<(), String>) + Send>;
type Job = Box<dyn FnOnce(&mut WriteBatch<'_>) -> Result<Completion> + Send>;

fn kv_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Kv(e.to_string())
}

/// A durable, transactional map of `table → key → value`.
pub struct MetaStore {
    db: Arc<Database>,
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

/// The writes of one atomic transaction.
pub struct WriteBatch<'a> {
    tx: &'a redb::WriteTransaction,
}

impl WriteBatch<'_> {
    pub fn put(&mut self, table: &str, key: &[u8], value: &[u8]) -> Result<()> {
        let mut t = self.tx.open_table(def(table)).map_err(kv_err)?;
        t.insert(key, value).map_err(kv_err)?;
        Ok(())
    }

    /// Returns whether the key existed.
    pub fn delete(&mut self, table: &str, key: &[u8]) -> Result<bool> {
        let mut t = self.tx.open_table(def(table)).map_err(kv_err)?;
        let existed = t.remove(key).map_err(kv_err)?.is_some();
        Ok(existed)
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
}

/// A consistent snapshot for several reads; see [`MetaStore::read`].
pub struct ReadView {
    tx: redb::ReadTransaction,
}

impl ReadView {
    /// Every entry whose key starts with `prefix`, in key order.
    pub fn scan_prefix(&self, table: &str, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let t = match self.tx.open_table(def(table)) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(kv_err(e)),
        };
        entries_with_prefix(&t, prefix)
    }

    pub fn get(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let t = match self.tx.open_table(def(table)) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(kv_err(e)),
        };
        let v = t.get(key).map_err(kv_err)?.map(|g| g.value().to_vec());
        Ok(v)
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
    /// Opens (or creates) the store file. Recovery after a crash happens here.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let db = Arc::new(
            redb::Builder::new()
                .set_cache_size(CACHE_BYTES)
                .create(path)
                .map_err(kv_err)?,
        );
        let (tx, rx) = mpsc::channel::<Job>();
        let writer_db = db.clone();
        let writer = std::thread::Builder::new()
            .name("lakebox-kv-writer".into())
            .spawn(move || group_commit_loop(&writer_db, &rx))?;
        Ok(MetaStore {
            db,
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
        let (tx, rx) = oneshot::channel::<Result<T>>();
        let job: Job = Box::new(move |batch| match f(batch) {
            Ok(value) => Ok(Box::new(move |commit: std::result::Result<(), String>| {
                let _ = tx.send(commit.map(|()| value).map_err(StoreError::Kv));
            }) as Completion),
            Err(e) => {
                let msg = e.to_string();
                let _ = tx.send(Err(e));
                Err(StoreError::Kv(msg))
            }
        });
        {
            let jobs = self.jobs.lock().unwrap();
            let sender = jobs.as_ref().ok_or(StoreError::Closed)?;
            sender.send(job).map_err(|_| StoreError::Closed)?;
        }
        Ok(Durable(rx))
    }

    /// Runs several reads against one consistent snapshot (one read transaction).
    pub fn read<T>(&self, f: impl FnOnce(&ReadView) -> Result<T>) -> Result<T> {
        let tx = self.db.begin_read().map_err(kv_err)?;
        f(&ReadView { tx })
    }

    pub fn get(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let tx = self.db.begin_read().map_err(kv_err)?;
        let t = match tx.open_table(def(table)) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(kv_err(e)),
        };
        let v = t.get(key).map_err(kv_err)?.map(|g| g.value().to_vec());
        Ok(v)
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
        let tx = self.db.begin_write().map_err(kv_err)?;
        let out = {
            let mut batch = WriteBatch { tx: &tx };
            match f(&mut batch) {
                Ok(v) => v,
                Err(e) => {
                    tx.abort().map_err(kv_err)?;
                    return Err(e);
                }
            }
        };
        tx.commit().map_err(kv_err)?;
        Ok(out)
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
        let tx = self.db.begin_read().map_err(kv_err)?;
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

/// The writer thread: one transaction and one commit for everything queued.
fn group_commit_loop(db: &Database, rx: &mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let tx = match db.begin_write() {
            Ok(t) => t,
            Err(e) => {
                // Dropping the jobs drops their reply channels: each caller sees the failure.
                tracing::error!(error = %e, "cannot start a metadata transaction");
                continue;
            }
        };
        let mut completions = Vec::with_capacity(jobs.len());
        let mut failure = None;
        {
            let mut batch = WriteBatch { tx: &tx };
            for job in jobs {
                match job(&mut batch) {
                    Ok(c) => completions.push(c),
                    Err(e) => {
                        failure = Some(e.to_string());
                        break;
                    }
                }
            }
        }
        let outcome = match failure {
            Some(msg) => {
                let _ = tx.abort();
                Err(format!("transaction abandoned: {msg}"))
            }
            None => tx.commit().map_err(|e| e.to_string()),
        };
        if let Err(e) = &outcome {
            tracing::error!(error = %e, "metadata batch failed; none of its writes were acknowledged");
        }
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
