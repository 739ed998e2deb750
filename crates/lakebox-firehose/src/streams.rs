//! Delivery streams: their definitions (durable, in one metadata store), one durable record
//! log each (the buffer: records are on disk before PutRecord answers), and the checkpoint of
//! what has been delivered.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use lakebox_core::{Clock, ServiceError};
use lakebox_store::{Log, LogConfig, MetaStore, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Notify;

use crate::errors::{internal, not_found};

const STREAMS: &str = "delivery_streams";
const CHECKPOINTS: &str = "checkpoints";
const SOURCE_POSITIONS: &str = "source_positions";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KinesisSource {
    pub stream_arn: String,
    pub role_arn: String,
    pub start_millis: i64,
}

/// A delivery stream as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DeliveryStream {
    pub name: String,
    /// Names the stream's log directory; a re-created stream gets a new one.
    pub uid: String,
    pub account: String,
    pub region: String,
    /// `DirectPut` or `KinesisStreamAsSource`.
    pub stream_type: String,
    pub version: u64,
    pub created_millis: i64,
    pub updated_millis: Option<i64>,
    /// CREATING until this time.
    pub ready_millis: i64,
    /// DELETING until this time, then removed.
    pub deleting_until_millis: Option<i64>,
    pub direct_put: Option<Value>,
    pub kinesis_source: Option<KinesisSource>,
    /// `ExtendedS3` (the older S3 configuration is stored in this form too).
    pub destination_kind: String,
    pub destination: Value,
    /// DeliveryStreamEncryptionConfiguration as described (Status, KeyType, KeyARN).
    pub encryption: Option<Value>,
    pub tags: Vec<(String, String)>,
}

impl DeliveryStream {
    pub fn arn(&self) -> String {
        lakebox_core::Arn::new(
            "firehose",
            &self.region,
            &self.account,
            format!("deliverystream/{}", self.name),
        )
        .to_string()
    }

    pub fn status(&self, now: i64) -> &'static str {
        match self.deleting_until_millis {
            Some(_) => "DELETING",
            None if now < self.ready_millis => "CREATING",
            None => "ACTIVE",
        }
    }

    pub fn encrypted(&self) -> bool {
        self.encryption
            .as_ref()
            .and_then(|e| e.get("Status"))
            .and_then(Value::as_str)
            == Some("ENABLED")
    }
}

fn key(account: &str, region: &str, name: &str) -> Vec<u8> {
    format!("{account}\0{region}\0{name}").into_bytes()
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn decode<T: serde::de::DeserializeOwned>(v: &[u8]) -> Result<T, ServiceError> {
    serde_json::from_slice(v).map_err(|e| internal(format!("corrupt delivery stream record: {e}")))
}

pub struct Streams {
    store: MetaStore,
    dir: PathBuf,
    pub clock: Arc<dyn Clock>,
    pub create_delay_millis: i64,
    logs: Mutex<HashMap<String, Arc<Log>>>,
    /// Wakes a stream's workers when its definition changes (update, delete).
    wakers: Mutex<HashMap<String, Arc<Notify>>>,
}

impl Streams {
    pub fn open(dir: &Path, clock: Arc<dyn Clock>, create_delay_millis: i64) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir.join("logs"))?;
        Ok(Streams {
            store: MetaStore::open(&dir.join("firehose.redb"))?,
            dir: dir.to_owned(),
            clock,
            create_delay_millis,
            logs: Mutex::new(HashMap::new()),
            wakers: Mutex::new(HashMap::new()),
        })
    }

    pub fn now(&self) -> i64 {
        self.clock.now_millis()
    }

    pub fn get(
        &self,
        account: &str,
        region: &str,
        name: &str,
    ) -> Result<Option<DeliveryStream>, ServiceError> {
        match self
            .store
            .get(STREAMS, &key(account, region, name))
            .map_err(internal)?
        {
            Some(v) => Ok(Some(decode(&v)?)),
            None => Ok(None),
        }
    }

    pub fn require(&self, account: &str, region: &str, name: &str) -> Result<DeliveryStream, ServiceError> {
        self.get(account, region, name)?
            .ok_or_else(|| not_found(name, account))
    }

    /// Every stream of every account (for starting workers).
    pub fn all(&self) -> Result<Vec<DeliveryStream>, ServiceError> {
        let rows = self
            .store
            .read(|r| r.scan_prefix(STREAMS, b""))
            .map_err(internal)?;
        rows.iter().map(|(_, v)| decode(v)).collect()
    }

    pub fn list(&self, account: &str, region: &str) -> Result<Vec<DeliveryStream>, ServiceError> {
        let prefix = format!("{account}\0{region}\0").into_bytes();
        let rows = self
            .store
            .read(|r| r.scan_prefix(STREAMS, &prefix))
            .map_err(internal)?;
        rows.iter().map(|(_, v)| decode(v)).collect()
    }

    /// Stores a new stream; `false` if the name is taken.
    pub async fn create(
        &self,
        s: DeliveryStream,
        positions: BTreeMap<String, u64>,
    ) -> Result<bool, ServiceError> {
        let k = key(&s.account, &s.region, &s.name);
        let v = encode(&s).map_err(internal)?;
        let pos = encode(&positions).map_err(internal)?;
        let uid = s.uid.clone();
        self.store
            .write_async(move |b| {
                if b.get(STREAMS, &k)?.is_some() {
                    return Ok(false);
                }
                b.put(STREAMS, &k, &v)?;
                b.put(SOURCE_POSITIONS, uid.as_bytes(), &pos)?;
                Ok(true)
            })
            .await
            .map_err(internal)
    }

    /// Applies `f` to the stored stream atomically; `f` may refuse with an error.
    pub async fn update<T: Send + 'static>(
        &self,
        account: &str,
        region: &str,
        name: &str,
        f: impl FnOnce(&mut DeliveryStream) -> Result<T, ServiceError> + Send + 'static,
    ) -> Result<T, ServiceError> {
        let k = key(account, region, name);
        let (acct, nm) = (account.to_owned(), name.to_owned());
        let out = self
            .store
            .write_async(move |b| {
                let Some(v) = b.get(STREAMS, &k)? else {
                    return Ok(Err(not_found(&nm, &acct)));
                };
                let mut s: DeliveryStream =
                    serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                match f(&mut s) {
                    Ok(t) => {
                        if s.deleting_until_millis.is_some() {
                            b.freeing();
                        }
                        b.put(STREAMS, &k, &encode(&s)?)?;
                        Ok(Ok((t, s.uid.clone())))
                    }
                    Err(e) => Ok(Err(e)),
                }
            })
            .await
            .map_err(internal)??;
        self.wake(&out.1);
        Ok(out.0)
    }

    /// Removes a stream for good: its definition, checkpoint and log.
    pub async fn remove(&self, s: &DeliveryStream) -> Result<(), ServiceError> {
        let k = key(&s.account, &s.region, &s.name);
        let uid = s.uid.clone();
        let expected = s.uid.clone();
        self.store
            .write_async(move |b| {
                // A stream re-created under the same name in the meantime stays.
                if let Some(v) = b.get(STREAMS, &k)?
                    && serde_json::from_slice::<DeliveryStream>(&v).is_ok_and(|cur| cur.uid == expected)
                {
                    b.delete(STREAMS, &k)?;
                }
                b.delete(CHECKPOINTS, uid.as_bytes())?;
                b.delete(SOURCE_POSITIONS, uid.as_bytes())?;
                Ok(())
            })
            .await
            .map_err(internal)?;
        if let Some(log) = self.logs.lock().unwrap().remove(&s.uid) {
            drop(log);
        }
        self.wakers.lock().unwrap().remove(&s.uid);
        let _ = std::fs::remove_dir_all(self.dir.join("logs").join(&s.uid));
        Ok(())
    }

    /// The stream's record log, opened on first use.
    pub fn log(&self, uid: &str) -> Result<Arc<Log>, ServiceError> {
        let mut logs = self.logs.lock().unwrap();
        if let Some(l) = logs.get(uid) {
            return Ok(l.clone());
        }
        let config = LogConfig {
            segment_bytes: 32 * 1024 * 1024,
            ..Default::default()
        };
        let log = Arc::new(Log::open(&self.dir.join("logs").join(uid), config).map_err(internal)?);
        logs.insert(uid.to_owned(), log.clone());
        Ok(log)
    }

    pub fn waker(&self, uid: &str) -> Arc<Notify> {
        self.wakers
            .lock()
            .unwrap()
            .entry(uid.to_owned())
            .or_default()
            .clone()
    }

    pub fn wake(&self, uid: &str) {
        self.waker(uid).notify_waiters();
    }

    /// The next offset to deliver (everything before it is in S3).
    pub fn checkpoint(&self, uid: &str) -> Result<u64, ServiceError> {
        Ok(self
            .store
            .get(CHECKPOINTS, uid.as_bytes())
            .map_err(internal)?
            .and_then(|v| v.try_into().ok().map(u64::from_le_bytes))
            .unwrap_or(0))
    }

    pub async fn set_checkpoint(&self, uid: &str, next: u64) -> Result<(), ServiceError> {
        let k = uid.as_bytes().to_vec();
        self.store
            .write_async(move |b| b.put(CHECKPOINTS, &k, &next.to_le_bytes()))
            .await
            .map_err(internal)
    }

    /// Kinesis source positions: next offset per shard.
    pub fn positions(&self, uid: &str) -> Result<BTreeMap<String, u64>, ServiceError> {
        match self
            .store
            .get(SOURCE_POSITIONS, uid.as_bytes())
            .map_err(internal)?
        {
            Some(v) => decode(&v),
            None => Ok(BTreeMap::new()),
        }
    }

    pub async fn set_positions(&self, uid: &str, p: &BTreeMap<String, u64>) -> Result<(), ServiceError> {
        let k = uid.as_bytes().to_vec();
        let v = encode(p).map_err(internal)?;
        self.store
            .write_async(move |b| b.put(SOURCE_POSITIONS, &k, &v))
            .await
            .map_err(internal)
    }
}
