//! The metadata store: named tables of byte keys to byte values, on redb.
//!
//! Why redb: pure Rust, one file, ACID with copy-on-write pages, so a crash mid-commit leaves
//! the previous commit intact; every commit is fsynced before it returns. See
//! `docs/decisions/0002-metadata-store-redb.md`.
//!
//! Calls block the calling thread (a commit waits for fsync); async callers should use
//! `spawn_blocking` for writes on hot paths.

use std::path::Path;

use redb::{Database, ReadableTable, TableDefinition};

use crate::{Result, StoreError};

fn kv_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Kv(e.to_string())
}

/// A durable, transactional map of `table → key → value`.
pub struct MetaStore {
    db: Database,
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

    /// Reads inside the transaction (sees this batch's own writes).
    pub fn get(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let t = self.tx.open_table(def(table)).map_err(kv_err)?;
        let v = t.get(key).map_err(kv_err)?.map(|g| g.value().to_vec());
        Ok(v)
    }
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
        let db = Database::create(path).map_err(kv_err)?;
        Ok(MetaStore { db })
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

    /// Runs `f` as one atomic, durable transaction: all its writes land, or none do (also when
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
            b.put("b", b"2", b"y")
        })
        .unwrap();
        assert_eq!(kv.get("b", b"2").unwrap(), Some(b"y".to_vec()));
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
