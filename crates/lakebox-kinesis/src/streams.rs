//! The streams Lakebox holds: their metadata in the metadata store, their records in one
//! durable [`Log`] per shard under `<dir>/streams/<stream uid>/<shard id>/`.
//!
//! Each stream gets a unique id at creation, so a stream deleted and created again under the
//! same name never sees the old one's records or iterators.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use lakebox_core::{Arn, Clock, ServiceError, ids};
use lakebox_store::{Log, LogConfig, MetaStore, StoreError};
use serde::{Deserialize, Serialize};

use crate::errors::{self, internal};

const STREAMS: &str = "streams";

/// Timing and limits of the Kinesis service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KinesisSettings {
    /// How long a new stream stays CREATING.
    pub create_delay_millis: i64,
    /// Open shards allowed per account and region.
    pub shard_limit: u32,
    /// Apply AWS's per-shard throughput limits.
    pub throughput_limits: bool,
    /// The length of an "hour" of retention: 3,600,000 normally; tests shorten it.
    pub hour_millis: i64,
    /// Size at which a shard's log starts a new segment file (retention deletes whole segments).
    pub segment_bytes: u64,
}

impl Default for KinesisSettings {
    fn default() -> Self {
        KinesisSettings {
            create_delay_millis: 0,
            shard_limit: 500,
            throughput_limits: true,
            hour_millis: 3_600_000,
            segment_bytes: 64 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ShardRecord {
    pub id: String,
    pub index: u32,
    /// Hash-key range bounds, as decimal strings (JSON has no 128-bit integers).
    pub start_hash: String,
    pub end_hash: String,
    pub parent: Option<String>,
    #[serde(default)]
    pub adjacent_parent: Option<String>,
    /// For a closed shard: its log's end offset (exclusive) and when it closed.
    #[serde(default)]
    pub closed: Option<ClosedShard>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct ClosedShard {
    pub end_offset: u64,
    pub closed_millis: i64,
}

impl ShardRecord {
    pub fn start(&self) -> u128 {
        self.start_hash.parse().unwrap_or(0)
    }

    pub fn end(&self) -> u128 {
        self.end_hash.parse().unwrap_or(u128::MAX)
    }

    pub fn is_open(&self) -> bool {
        self.closed.is_none()
    }

    pub fn contains(&self, hash: u128) -> bool {
        self.start() <= hash && hash <= self.end()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StreamRecord {
    pub name: String,
    pub uid: String,
    pub account: String,
    pub region: String,
    pub created_millis: i64,
    /// CREATING until this time, ACTIVE after.
    pub ready_millis: i64,
    pub retention_hours: i64,
    /// PROVISIONED or ON_DEMAND.
    pub mode: String,
    pub shards: Vec<ShardRecord>,
    pub tags: BTreeMap<String, String>,
    /// UPDATING (after a reshard) until this time.
    #[serde(default)]
    pub updating_until_millis: i64,
    /// `(EncryptionType, KeyId)` once StartStreamEncryption was called.
    #[serde(default)]
    pub encryption: Option<(String, String)>,
    #[serde(default)]
    pub enhanced_metrics: Vec<String>,
    #[serde(default)]
    pub policy: Option<String>,
    #[serde(default)]
    pub consumers: Vec<ConsumerRecord>,
    /// DELETING until this time, then purged.
    #[serde(default)]
    pub deleting_until_millis: Option<i64>,
    /// A split, merge or UpdateShardCount waiting for the stream's UPDATING period to end: the
    /// shards stay as they are (records keep going to the parents) until then.
    #[serde(default)]
    pub pending_reshard: Option<PendingReshard>,
}

/// The shards a reshard closes and adds, once its stream's UPDATING period ends.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PendingReshard {
    pub parents: Vec<String>,
    pub children: Vec<ShardRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ConsumerRecord {
    pub name: String,
    pub arn: String,
    pub created_millis: i64,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub policy: Option<String>,
}

impl StreamRecord {
    pub fn arn(&self) -> String {
        Arn::new(
            "kinesis",
            &self.region,
            &self.account,
            format!("stream/{}", self.name),
        )
        .to_string()
    }

    pub fn status(&self, now_millis: i64) -> &'static str {
        if self.deleting_until_millis.is_some() {
            "DELETING"
        } else if now_millis < self.ready_millis {
            "CREATING"
        } else if now_millis < self.updating_until_millis || self.pending_reshard.is_some() {
            // ACTIVE again only once the reshard has taken effect.
            "UPDATING"
        } else {
            "ACTIVE"
        }
    }

    pub fn open_shards(&self) -> impl Iterator<Item = &ShardRecord> {
        self.shards.iter().filter(|s| s.is_open())
    }

    /// Shards created from `shard_id` by a split or merge.
    pub fn children_of<'a>(&'a self, shard_id: &'a str) -> impl Iterator<Item = &'a ShardRecord> {
        self.shards.iter().filter(move |s| {
            s.parent.as_deref() == Some(shard_id) || s.adjacent_parent.as_deref() == Some(shard_id)
        })
    }

    pub fn epoch_secs(&self) -> u64 {
        (self.created_millis / 1000).max(0) as u64
    }
}

pub struct Streams {
    dir: PathBuf,
    kv: MetaStore,
    logs: Mutex<HashMap<(String, u32), Arc<Log>>>,
    /// Per stream (by uid): puts hold it shared while they route and append, resharding holds
    /// it exclusively, so a shard never receives a record after it was closed.
    reshard_locks: Mutex<HashMap<String, Arc<tokio::sync::RwLock<()>>>>,
    clock: Arc<dyn Clock>,
    pub settings: KinesisSettings,
    pub throughput: crate::throughput::Throughput,
}

fn stream_key(account: &str, region: &str, name: &str) -> Vec<u8> {
    format!("{account}/{region}/{name}").into_bytes()
}

fn decode(v: &[u8]) -> Result<StreamRecord, ServiceError> {
    serde_json::from_slice(v).map_err(|e| internal(format!("corrupt stream record: {e}")))
}

impl Streams {
    pub fn open(dir: &Path, clock: Arc<dyn Clock>, settings: KinesisSettings) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir.join("streams"))?;
        Ok(Streams {
            dir: dir.to_owned(),
            kv: MetaStore::open(&dir.join("meta.redb"))?,
            logs: Mutex::new(HashMap::new()),
            reshard_locks: Mutex::new(HashMap::new()),
            clock,
            settings,
            throughput: Default::default(),
        })
    }

    pub fn now_millis(&self) -> i64 {
        self.clock.now_millis()
    }

    pub fn get(&self, account: &str, region: &str, name: &str) -> Result<Option<StreamRecord>, ServiceError> {
        match self
            .kv
            .get(STREAMS, &stream_key(account, region, name))
            .map_err(internal)?
        {
            Some(v) => Ok(Some(decode(&v)?)),
            None => Ok(None),
        }
    }

    /// The stream, or `ResourceNotFoundException`.
    pub fn require(&self, account: &str, region: &str, name: &str) -> Result<StreamRecord, ServiceError> {
        self.get(account, region, name)?
            .ok_or_else(|| errors::stream_not_found(name, account))
    }

    /// Every stream of every account and region (for background work such as retention).
    pub fn all(&self) -> Result<Vec<StreamRecord>, ServiceError> {
        let rows = self
            .kv
            .scan_prefix(STREAMS, b"", None, usize::MAX)
            .map_err(internal)?;
        rows.iter().map(|(_, v)| decode(v)).collect()
    }

    pub fn list(&self, account: &str, region: &str) -> Result<Vec<StreamRecord>, ServiceError> {
        let prefix = format!("{account}/{region}/").into_bytes();
        let rows = self
            .kv
            .scan_prefix(STREAMS, &prefix, None, usize::MAX)
            .map_err(internal)?;
        rows.iter().map(|(_, v)| decode(v)).collect()
    }

    /// Creates a stream, refusing an existing name and the account's shard limit, atomically.
    pub async fn create(&self, record: StreamRecord) -> Result<(), ServiceError> {
        let key = stream_key(&record.account, &record.region, &record.name);
        let prefix = format!("{}/{}/", record.account, record.region).into_bytes();
        let limit = self.settings.shard_limit as usize;
        self.kv
            .write_async(move |b| {
                if b.get(STREAMS, &key)?.is_some() {
                    return Ok(Err(errors::stream_in_use(&record.name, &record.account)));
                }
                let mut open = 0usize;
                for (_, v) in b.scan_prefix(STREAMS, &prefix)? {
                    if let Ok(s) = serde_json::from_slice::<StreamRecord>(&v) {
                        open += s.open_shards().count();
                    }
                }
                if open + record.shards.len() > limit {
                    return Ok(Err(errors::limit_exceeded(format!(
                        "This request would exceed the shard limit for the account {} in {}. Current shard count for the account: {open}. Limit: {limit}. Number of additional shards that would have resulted from this request: {}.",
                        record.account, record.region, record.shards.len()
                    ))));
                }
                b.put(STREAMS, &key, &serde_json::to_vec(&record).expect("records serialize"))?;
                Ok(Ok(()))
            })
            .await
            .map_err(internal)?
    }

    /// Changes a stream's metadata atomically.
    pub async fn update(
        &self,
        account: &str,
        region: &str,
        name: &str,
        change: impl FnOnce(&mut StreamRecord) -> Result<(), ServiceError> + Send + 'static,
    ) -> Result<StreamRecord, ServiceError> {
        let key = stream_key(account, region, name);
        let (name, account) = (name.to_owned(), account.to_owned());
        self.kv
            .write_async(move |b| {
                let Some(v) = b.get(STREAMS, &key)? else {
                    return Ok(Err(errors::stream_not_found(&name, &account)));
                };
                let mut rec: StreamRecord = match decode(&v) {
                    Ok(r) => r,
                    Err(e) => return Ok(Err(e)),
                };
                if let Err(e) = change(&mut rec) {
                    return Ok(Err(e));
                }
                b.put(
                    STREAMS,
                    &key,
                    &serde_json::to_vec(&rec).expect("records serialize"),
                )?;
                Ok(Ok(rec))
            })
            .await
            .map_err(internal)?
    }

    /// DeleteStream: the stream is DELETING for the configured delay (CREATING's), then its
    /// metadata and records are purged. With no delay it goes at once.
    pub async fn delete(
        self: &Arc<Self>,
        account: &str,
        region: &str,
        name: &str,
    ) -> Result<(), ServiceError> {
        let delay = self.settings.create_delay_millis;
        if delay <= 0 {
            let rec = self.require(account, region, name)?;
            return self.purge(account, region, name, &rec.uid).await;
        }
        let until = self.now_millis() + delay;
        let rec = self
            .update(account, region, name, move |st| {
                if st.deleting_until_millis.is_some() {
                    return Err(errors::stream_not_found(&st.name, &st.account));
                }
                st.deleting_until_millis = Some(until);
                Ok(())
            })
            .await?;
        let me = self.clone();
        let (account, region, name) = (account.to_owned(), region.to_owned(), name.to_owned());
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(delay as u64)).await;
            if let Err(e) = me.purge(&account, &region, &name, &rec.uid).await {
                tracing::warn!(stream = %name, error = %e, "could not purge a deleted stream; the sweeper will retry");
            }
        });
        Ok(())
    }

    /// Removes a stream's metadata (if it is still the stream with `uid`) and then its records.
    pub async fn purge(
        &self,
        account: &str,
        region: &str,
        name: &str,
        uid: &str,
    ) -> Result<(), ServiceError> {
        let key = stream_key(account, region, name);
        let (n, a, u) = (name.to_owned(), account.to_owned(), uid.to_owned());
        self.kv
            .write_async(move |b| {
                let Some(v) = b.get(STREAMS, &key)? else {
                    return Ok(Err(errors::stream_not_found(&n, &a)));
                };
                match decode(&v) {
                    Ok(rec) if rec.uid == u => {
                        b.delete(STREAMS, &key)?;
                        Ok(Ok(()))
                    }
                    Ok(_) => Ok(Ok(())), // a new stream took the name; the old one is gone
                    Err(e) => Ok(Err(e)),
                }
            })
            .await
            .map_err(internal)??;
        let dropped: Vec<Arc<Log>> = {
            let mut logs = self.logs.lock().unwrap();
            let keys: Vec<_> = logs.keys().filter(|(id, _)| id == uid).cloned().collect();
            keys.into_iter().filter_map(|k| logs.remove(&k)).collect()
        };
        let dir = self.dir.join("streams").join(uid);
        tokio::task::spawn_blocking(move || {
            // Wait for each log's writer to stop before removing its files.
            drop(dropped);
            if let Err(e) = std::fs::remove_dir_all(&dir)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(error = %e, dir = %dir.display(), "could not remove a deleted stream's records");
            }
        });
        Ok(())
    }

    /// The log of one shard, opened on first use.
    pub fn log(&self, stream: &StreamRecord, shard: &ShardRecord) -> Result<Arc<Log>, ServiceError> {
        let key = (stream.uid.clone(), shard.index);
        let mut logs = self.logs.lock().unwrap();
        if let Some(l) = logs.get(&key) {
            return Ok(l.clone());
        }
        let dir = self.dir.join("streams").join(&stream.uid).join(&shard.id);
        let config = LogConfig {
            segment_bytes: self.settings.segment_bytes,
            ..LogConfig::default()
        };
        let log = Arc::new(Log::open(&dir, config).map_err(internal)?);
        logs.insert(key, log.clone());
        Ok(log)
    }

    /// The lock that orders puts against resharding of one stream.
    pub fn reshard_lock(&self, uid: &str) -> Arc<tokio::sync::RwLock<()>> {
        self.reshard_locks
            .lock()
            .unwrap()
            .entry(uid.to_owned())
            .or_default()
            .clone()
    }

    pub fn new_uid() -> String {
        ids::random_hex(16)
    }
}
