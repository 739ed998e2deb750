//! Log groups, their streams and their events.
//!
//! Each log group's events go to a durable [`Log`] of its own (`groups/<uid>/`), one record per
//! PutLogEvents call, appended (and fsynced, group-committed) before the call answers. The
//! events are also kept in memory per stream, sorted by timestamp, which is what GetLogEvents,
//! FilterLogEvents and the filters read; at start each group's log is replayed. Groups and
//! streams themselves (names, settings, filters) live in the metadata store.
//!
//! A group's log goes with the group (deleting it removes the directory), so retention and
//! deletion never have to pick a group's events out of a shared file. A stream has a random
//! id, so a stream deleted and created again does not get its predecessor's events back.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use lakebox_core::ServiceError;
use lakebox_core::clock::Clock;
use lakebox_store::{Log, LogConfig, LogEntry, MetaStore, StoreError};
use serde::{Deserialize, Serialize};

use crate::pages::Pages;

pub const GROUPS: &str = "groups";
pub const STREAMS: &str = "streams";
pub const DAY: i64 = 86_400_000;
/// Segment size of a group's log: retention frees space a segment at a time.
const SEGMENT_BYTES: u64 = 32 * 1024 * 1024;
/// An event's id is its record's offset and its place in the record (at most 10,000 events).
const INDEX_BITS: u32 = 14;

/// (account, region, log group name).
pub type GroupKey = (String, String, String);

/// A log group's settings, as stored.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct GroupConfig {
    pub name: String,
    pub uid: String,
    pub created: i64,
    pub retention_days: Option<i32>,
    pub kms_key_id: Option<String>,
    pub class: String,
    #[serde(default)]
    pub deletion_protection: bool,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub metric_filters: Vec<crate::filters::MetricFilterConfig>,
    #[serde(default)]
    pub subscriptions: Vec<crate::filters::SubscriptionConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StreamConfig {
    uid: u64,
    created: i64,
}

/// One stored event. Its message lives in its batch's text, shared by every event of the
/// PutLogEvents that brought it: one allocation per batch rather than one per event.
#[derive(Debug, Clone)]
pub struct Event {
    pub timestamp: i64,
    pub ingestion: i64,
    /// Offset of its record and place in it: unique in the group, and increasing with arrival.
    pub id: u64,
    text: Arc<str>,
    start: u32,
    len: u32,
}

impl Event {
    pub fn message(&self) -> &str {
        // In bounds and on character boundaries: `insert` cut these ranges at the messages'
        // own ends in the text it built from them.
        &self.text[self.start as usize..(self.start + self.len) as usize]
    }

    /// Asks the CPU to start loading the message's text. Texts live in their batches'
    /// allocations and events in time order hop between batches, so a scan over millions of
    /// messages waits on memory rather than work unless the next few are already on their way.
    pub fn prefetch(&self) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            let text = Arc::as_ptr(&self.text) as *const u8;
            let (start, end) = (self.start as usize, (self.start + self.len) as usize);
            for at in (start..end).step_by(64) {
                // SAFETY: a prefetch is a hint: it reads nothing the program sees and cannot
                // fault; the address is inside the text anyway.
                #[allow(unused_unsafe)]
                unsafe {
                    _mm_prefetch::<_MM_HINT_T0>(text.wrapping_add(at) as *const i8);
                }
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn for_test(timestamp: i64, id: u64, text: Arc<str>) -> Event {
        let len = text.len() as u32;
        Event {
            timestamp,
            ingestion: 0,
            id,
            text,
            start: 0,
            len,
        }
    }

    /// Asks the CPU to start loading the event itself: a scan lists events by their places
    /// in their pages, and reading where a message lies would otherwise wait on that.
    pub fn prefetch_entry(&self) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            let at = self as *const Event as *const u8;
            // Its first and last byte: an event may straddle two cache lines.
            for off in [0, std::mem::size_of::<Event>() - 1] {
                // SAFETY: as in `prefetch`; the addresses are inside this event.
                #[allow(unused_unsafe)]
                unsafe {
                    _mm_prefetch::<_MM_HINT_T0>(at.wrapping_add(off) as *const i8);
                }
            }
        }
    }

    /// The message's length in bytes (without touching its text).
    pub fn message_len(&self) -> usize {
        self.len as usize
    }

    /// Events are ordered by timestamp, then arrival.
    pub fn key(&self) -> (i64, u64) {
        (self.timestamp, self.id)
    }

    /// The 56-digit id FilterLogEvents reports.
    pub fn event_id(&self) -> String {
        format!("{:056}", self.id)
    }

    /// What the event counts towards storedBytes (and the batch limit): its message and 26 bytes.
    pub fn size(&self) -> i64 {
        self.len as i64 + 26
    }
}

#[derive(Debug, Default)]
pub struct StreamEvents {
    /// By [`Event::key`], in pages: concurrent writers' batches interleave in time, and each
    /// event slots in among the others.
    events: Pages,
    pub stored_bytes: i64,
    pub last_ingestion: Option<i64>,
    /// Events that arrived stamped before the stream's newest event, since its messages were
    /// last put in time order ([`compact`]).
    scattered: usize,
}

/// A place in a stream: `(timestamp, id)`.
pub type Position = (i64, u64);

impl StreamEvents {
    /// The events between two places, in order (an empty or inverted range is none).
    pub fn range(&self, lo: Bound<Position>, hi: Bound<Position>) -> impl DoubleEndedIterator<Item = &Event> {
        self.events.range(lo, hi)
    }

    /// How many events the stream holds.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Copies the messages of up to `max` events after `from` into one allocation, in time
    /// order, and points the events at it; the last event moved, `None` when there was none.
    fn compact_run(&mut self, from: Bound<Position>, max: usize) -> Option<Position> {
        let run = || self.events.range(from, Bound::Unbounded).take(max);
        // One walk sizes the run and finds its end, one copies it.
        let (bytes, last) = run().fold((0, None), |(n, _), e| (n + e.message_len(), Some(e.key())));
        let mut text = String::with_capacity(bytes);
        let last = last?;
        let starts: Vec<u32> = run()
            .map(|e| {
                let start = text.len() as u32;
                text.push_str(e.message());
                start
            })
            .collect();
        let text: Arc<str> = text.into();
        for (e, start) in self.events.range_mut_from(from).zip(starts) {
            e.text = text.clone();
            e.start = start;
        }
        Some(last)
    }

    /// The events stamped at or after `from`, in order.
    pub fn since(&self, from: i64) -> impl DoubleEndedIterator<Item = &Event> {
        self.range(Bound::Included((from, 0)), Bound::Unbounded)
    }

    /// What the events stamped before `from` count towards storedBytes.
    pub fn bytes_before(&self, from: i64) -> i64 {
        self.range(Bound::Unbounded, Bound::Excluded((from, 0)))
            .map(Event::size)
            .sum()
    }
}

pub struct Stream {
    pub uid: u64,
    pub name: String,
    pub created: i64,
    pub data: RwLock<StreamEvents>,
}

pub struct Group {
    pub key: GroupKey,
    pub dir: PathBuf,
    pub config: Mutex<GroupConfig>,
    pub streams: RwLock<BTreeMap<String, Arc<Stream>>>,
    log: OnceLock<Arc<Log>>,
}

impl Group {
    pub fn arn(&self) -> String {
        let (account, region, name) = &self.key;
        format!("arn:aws:logs:{region}:{account}:log-group:{name}")
    }

    pub fn stream(&self, name: &str) -> Option<Arc<Stream>> {
        self.streams.read().unwrap().get(name).cloned()
    }

    /// The streams whose names start with `prefix` (all of them without one), by name.
    pub fn streams_with_prefix(&self, prefix: Option<&str>) -> Vec<Arc<Stream>> {
        self.streams
            .read()
            .unwrap()
            .values()
            .filter(|s| prefix.is_none_or(|p| s.name.starts_with(p)))
            .cloned()
            .collect()
    }

    /// The group's log, opened on first use.
    pub fn log(&self) -> Result<Arc<Log>, StoreError> {
        if let Some(l) = self.log.get() {
            return Ok(l.clone());
        }
        let config = LogConfig {
            segment_bytes: SEGMENT_BYTES,
            ..LogConfig::default()
        };
        let opened = Arc::new(Log::open(&self.dir, config)?);
        Ok(self.log.get_or_init(|| opened).clone())
    }

    /// The log if it was ever opened (a group that never had an event has none).
    pub fn opened_log(&self) -> Option<Arc<Log>> {
        self.log.get().cloned()
    }

    /// The oldest timestamp the group's retention still keeps at `now`.
    pub fn retained_from(&self, now: i64) -> i64 {
        match self.config.lock().unwrap().retention_days {
            Some(days) => now - days as i64 * DAY,
            None => i64::MIN,
        }
    }
}

pub struct Store {
    dir: PathBuf,
    pub meta: MetaStore,
    pub clock: Arc<dyn Clock>,
    groups: RwLock<BTreeMap<GroupKey, Arc<Group>>>,
}

pub fn internal(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::internal(format!("log store: {e}"))
}

fn store_error(e: StoreError) -> ServiceError {
    if e.is_full() {
        ServiceError::disk_full()
    } else {
        internal(e)
    }
}

pub fn group_meta_key(key: &GroupKey) -> Vec<u8> {
    format!("{}\0{}\0{}", key.0, key.1, key.2).into_bytes()
}

fn stream_meta_key(group_uid: &str, stream: &str) -> Vec<u8> {
    format!("{group_uid}\0{stream}").into_bytes()
}

/// A PutLogEvents record: the stream's id, then each event's timestamp and message.
pub fn encode(stream_uid: u64, events: &[(i64, &str)]) -> Vec<u8> {
    let size: usize = events.iter().map(|(_, m)| m.len() + 12).sum();
    let mut out = Vec::with_capacity(12 + size);
    out.extend_from_slice(&stream_uid.to_le_bytes());
    out.extend_from_slice(&(events.len() as u32).to_le_bytes());
    for (ts, msg) in events {
        out.extend_from_slice(&ts.to_le_bytes());
        out.extend_from_slice(&(msg.len() as u32).to_le_bytes());
        out.extend_from_slice(msg.as_bytes());
    }
    out
}

/// The stream id and events of a record; `None` when it is not one.
pub fn decode(payload: &[u8]) -> Option<(u64, Vec<(i64, &str)>)> {
    let uid = u64::from_le_bytes(payload.get(..8)?.try_into().ok()?);
    let n = u32::from_le_bytes(payload.get(8..12)?.try_into().ok()?) as usize;
    let mut pos = 12;
    let mut events = Vec::with_capacity(n);
    for _ in 0..n {
        let ts = i64::from_le_bytes(payload.get(pos..pos + 8)?.try_into().ok()?);
        let len = u32::from_le_bytes(payload.get(pos + 8..pos + 12)?.try_into().ok()?) as usize;
        let msg = std::str::from_utf8(payload.get(pos + 12..pos + 12 + len)?).ok()?;
        events.push((ts, msg));
        pos += 12 + len;
    }
    Some((uid, events))
}

pub fn event_id(offset: u64, index: usize) -> u64 {
    (offset << INDEX_BITS) | index as u64
}

impl Store {
    pub fn open(dir: &Path, clock: Arc<dyn Clock>) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir.join("groups"))?;
        let store = Store {
            dir: dir.to_owned(),
            meta: MetaStore::open(&dir.join("meta.redb"))?,
            clock,
            groups: RwLock::new(BTreeMap::new()),
        };
        // A group's account and region are in its record's key, its settings in the value.
        let mut groups = BTreeMap::new();
        for (k, v) in store.meta.scan_prefix(GROUPS, b"", None, usize::MAX)? {
            let Ok(config) = serde_json::from_slice::<GroupConfig>(&v) else {
                continue;
            };
            let text = String::from_utf8_lossy(&k).into_owned();
            let mut parts = text.splitn(3, '\0');
            let (Some(a), Some(r), Some(n)) = (parts.next(), parts.next(), parts.next()) else {
                continue;
            };
            let key = (a.to_owned(), r.to_owned(), n.to_owned());
            let group = store.new_group(key.clone(), config);
            for (sk, sv) in store.meta.scan_prefix(
                STREAMS,
                format!("{}\0", group.config.lock().unwrap().uid).as_bytes(),
                None,
                usize::MAX,
            )? {
                let Ok(sc) = serde_json::from_slice::<StreamConfig>(&sv) else {
                    continue;
                };
                let name =
                    String::from_utf8_lossy(&sk[sk.iter().position(|b| *b == 0).map_or(0, |p| p + 1)..])
                        .into_owned();
                group.streams.write().unwrap().insert(
                    name.clone(),
                    Arc::new(Stream {
                        uid: sc.uid,
                        name,
                        created: sc.created,
                        data: RwLock::default(),
                    }),
                );
            }
            if group.dir.exists() {
                replay(&group)?;
            }
            groups.insert(key, group);
        }
        // Directories of groups deleted while their removal was under way.
        if let Ok(entries) = std::fs::read_dir(dir.join("groups")) {
            let live: std::collections::HashSet<String> = groups
                .values()
                .map(|g| g.config.lock().unwrap().uid.clone())
                .collect();
            for e in entries.flatten() {
                if !live.contains(&e.file_name().to_string_lossy().into_owned()) {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        *store.groups.write().unwrap() = groups;
        Ok(store)
    }

    fn new_group(&self, key: GroupKey, config: GroupConfig) -> Arc<Group> {
        Arc::new(Group {
            dir: self.dir.join("groups").join(&config.uid),
            key,
            config: Mutex::new(config),
            streams: RwLock::default(),
            log: OnceLock::new(),
        })
    }

    pub fn now(&self) -> i64 {
        self.clock.now_millis()
    }

    pub fn group(&self, key: &GroupKey) -> Option<Arc<Group>> {
        self.groups.read().unwrap().get(key).cloned()
    }

    /// The groups of an account and region, by name.
    pub fn groups_of(&self, account: &str, region: &str) -> Vec<Arc<Group>> {
        let start = (account.to_owned(), region.to_owned(), String::new());
        self.groups
            .read()
            .unwrap()
            .range(start..)
            .take_while(|(k, _)| k.0 == account && k.1 == region)
            .map(|(_, g)| g.clone())
            .collect()
    }

    /// Every group (background work).
    pub fn all_groups(&self) -> Vec<Arc<Group>> {
        self.groups.read().unwrap().values().cloned().collect()
    }

    /// Creates a group; `false` when one of that name exists.
    pub async fn create_group(&self, key: GroupKey, mut config: GroupConfig) -> Result<bool, ServiceError> {
        config.uid = uuid::Uuid::new_v4().simple().to_string();
        let group = {
            let mut groups = self.groups.write().unwrap();
            if groups.contains_key(&key) {
                return Ok(false);
            }
            let group = self.new_group(key.clone(), config);
            groups.insert(key.clone(), group.clone());
            group
        };
        if let Err(e) = self.save_group(&group).await {
            self.groups.write().unwrap().remove(&key);
            return Err(e);
        }
        Ok(true)
    }

    /// Writes the group's settings durably.
    pub async fn save_group(&self, group: &Group) -> Result<(), ServiceError> {
        let value = serde_json::to_vec(&*group.config.lock().unwrap()).map_err(internal)?;
        let k = group_meta_key(&group.key);
        self.meta
            .write_async(move |b| b.put(GROUPS, &k, &value))
            .await
            .map_err(store_error)
    }

    /// Deletes a group, its streams and events.
    pub async fn delete_group(&self, group: &Arc<Group>) -> Result<(), ServiceError> {
        let k = group_meta_key(&group.key);
        let uid = group.config.lock().unwrap().uid.clone();
        let prefix = format!("{uid}\0").into_bytes();
        self.meta
            .write_async(move |b| {
                b.freeing();
                b.delete(GROUPS, &k)?;
                for (sk, _) in b.scan_prefix(STREAMS, &prefix)? {
                    b.delete(STREAMS, &sk)?;
                }
                Ok(())
            })
            .await
            .map_err(store_error)?;
        self.groups.write().unwrap().remove(&group.key);
        // The log's writer stops once the last handle (a reader's, perhaps) is gone; the
        // directory goes now, and any left by a crash goes at the next start.
        let _ = std::fs::remove_dir_all(&group.dir);
        Ok(())
    }

    /// Creates a stream; `false` when one of that name exists.
    pub async fn create_stream(&self, group: &Group, name: &str) -> Result<bool, ServiceError> {
        let stream = Arc::new(Stream {
            uid: uuid::Uuid::new_v4().as_u64_pair().0,
            name: name.to_owned(),
            created: self.now(),
            data: RwLock::default(),
        });
        {
            let mut streams = group.streams.write().unwrap();
            if streams.contains_key(name) {
                return Ok(false);
            }
            streams.insert(name.to_owned(), stream.clone());
        }
        let k = stream_meta_key(&group.config.lock().unwrap().uid, name);
        let v = serde_json::to_vec(&StreamConfig {
            uid: stream.uid,
            created: stream.created,
        })
        .map_err(internal)?;
        if let Err(e) = self
            .meta
            .write_async(move |b| b.put(STREAMS, &k, &v))
            .await
            .map_err(store_error)
        {
            group.streams.write().unwrap().remove(name);
            return Err(e);
        }
        Ok(true)
    }

    pub async fn delete_stream(&self, group: &Group, name: &str) -> Result<(), ServiceError> {
        let k = stream_meta_key(&group.config.lock().unwrap().uid, name);
        self.meta
            .write_async(move |b| {
                b.freeing();
                b.delete(STREAMS, &k)
            })
            .await
            .map_err(store_error)?;
        group.streams.write().unwrap().remove(name);
        Ok(())
    }

    /// Appends events (in timestamp order) to a stream durably, then makes them visible.
    /// Returns the offset of the record that holds them.
    pub async fn put_events(
        &self,
        group: &Group,
        stream: &Stream,
        events: &[(i64, &str)],
    ) -> Result<u64, ServiceError> {
        let payload = encode(stream.uid, events);
        let now = self.now();
        let log = group.log().map_err(store_error)?;
        let range = log
            .append(vec![LogEntry {
                timestamp_millis: now,
                payload,
            }])
            .await
            .map_err(store_error)?;
        insert(stream, range.start, now, events);
        Ok(range.start)
    }

    /// Drops events older than their group's retention, from memory and (a segment at a time,
    /// by arrival) from disk.
    /// [`compact`]s every stream that needs it.
    pub fn compact_streams(&self) {
        for group in self.all_groups() {
            let streams: Vec<Arc<Stream>> = group.streams.read().unwrap().values().cloned().collect();
            streams.iter().for_each(|s| compact(s));
        }
    }

    pub fn apply_retention(&self) {
        let now = self.now();
        for group in self.all_groups() {
            let Some(days) = group.config.lock().unwrap().retention_days else {
                continue;
            };
            let cutoff = now - days as i64 * DAY;
            for stream in group.streams.read().unwrap().values() {
                let mut data = stream.data.write().unwrap();
                data.stored_bytes -= data.events.drop_before((cutoff, 0));
            }
            // Events arrive at most 14 days after their timestamp (older ones are refused), so
            // a segment written before cutoff - 14 days holds only expired events... and ones
            // up to 2 hours ahead, which the cutoff check above already keeps in memory.
            if let Some(log) = group.opened_log()
                && let Err(e) = log.expire_older_than(cutoff - 2 * 3_600_000)
            {
                tracing::warn!(group = %group.key.2, "could not expire log segments: {e}");
            }
        }
    }
}

/// A stream with at least this many events out of time order gets its messages rewritten in
/// time order (the next sweep, or the end of a replay).
const COMPACT_AFTER: usize = 64 * 1024;

/// Events whose messages one step of [`compact`] rewrites (about 3 MiB of 200-byte events),
/// under the stream's write lock: writers and readers wait for one step at most.
const COMPACT_RUN: usize = 16 * 1024;

/// Puts a stream's messages in time order in memory when many of its events arrived out of
/// it. A search reads events in time order; each message lives in the allocation of the batch
/// that brought it, so when concurrent writers' batches interleave in time, every next event
/// is in another batch and the search waits on memory for each. Batches that arrive in time
/// order (one writer a stream, as agents write) are left as they are. While a pass runs, a
/// batch's text stays allocated until its last event is moved: a stream's messages may be held
/// twice until the pass ends.
pub(crate) fn compact(stream: &Stream) {
    {
        let mut data = stream.data.write().unwrap();
        if data.scattered < COMPACT_AFTER {
            return;
        }
        data.scattered = 0;
    }
    let mut from = Bound::Unbounded;
    while let Some(last) = stream.data.write().unwrap().compact_run(from, COMPACT_RUN) {
        from = Bound::Excluded(last);
    }
}

/// Inserts a record's events into a stream, keeping it sorted.
pub(crate) fn insert(stream: &Stream, offset: u64, ingestion: i64, events: &[(i64, &str)]) {
    // The batch's messages, end to end, built before the lock is taken.
    let mut text = String::with_capacity(events.iter().map(|(_, m)| m.len()).sum());
    let mut ranges = Vec::with_capacity(events.len());
    for (_, m) in events {
        ranges.push((text.len() as u32, m.len() as u32));
        text.push_str(m);
    }
    let text: Arc<str> = text.into();
    let mut data = stream.data.write().unwrap();
    let newest = data.events.newest();
    let mut added = 0;
    for (i, ((ts, _), (start, len))) in events.iter().zip(ranges).enumerate() {
        let ev = Event {
            timestamp: *ts,
            ingestion,
            id: event_id(offset, i),
            text: text.clone(),
            start,
            len,
        };
        added += ev.size();
        if newest.is_some_and(|n| ev.key() < n) {
            data.scattered += 1;
        }
        data.events.insert(ev);
    }
    data.stored_bytes += added;
    data.last_ingestion = Some(data.last_ingestion.map_or(ingestion, |l| l.max(ingestion)));
}

/// Reads a group's log back into its streams.
fn replay(group: &Group) -> Result<(), StoreError> {
    let log = group.log()?;
    let by_uid: BTreeMap<u64, Arc<Stream>> = group
        .streams
        .read()
        .unwrap()
        .values()
        .map(|s| (s.uid, s.clone()))
        .collect();
    let mut from = log.first_offset();
    loop {
        let records = log.read(from, 4096, 64 * 1024 * 1024)?;
        let Some(last) = records.last() else { break };
        from = last.offset + 1;
        for r in &records {
            let Some((uid, events)) = decode(&r.payload) else {
                tracing::warn!(offset = r.offset, "skipping an unreadable log record");
                continue;
            };
            if let Some(stream) = by_uid.get(&uid) {
                insert(stream, r.offset, r.timestamp_millis, &events);
            }
        }
    }
    by_uid.values().for_each(|s| compact(s));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream_of(batches: &[Vec<(i64, String)>]) -> Stream {
        let s = Stream {
            uid: 1,
            name: "s".into(),
            created: 0,
            data: Default::default(),
        };
        for (b, batch) in batches.iter().enumerate() {
            let events: Vec<(i64, &str)> = batch.iter().map(|(t, m)| (*t, m.as_str())).collect();
            insert(&s, b as u64, 0, &events);
        }
        s
    }

    fn contents(s: &Stream) -> Vec<(i64, String)> {
        let d = s.data.read().unwrap();
        d.range(Bound::Unbounded, Bound::Unbounded)
            .map(|e| (e.timestamp, e.message().to_owned()))
            .collect()
    }

    #[test]
    fn streams_written_out_of_time_order_get_their_messages_in_order() {
        // 100 writers' batches, each stamped 0..1,000: in time order every next event is
        // another batch's.
        let batches: Vec<Vec<(i64, String)>> = (0..100)
            .map(|b| {
                (0..1000)
                    .map(|i| (i, format!("{{\"b\":{b},\"i\":{i},\"é\":\"x\"}}")))
                    .collect()
            })
            .collect();
        let s = stream_of(&batches);
        assert_eq!(s.data.read().unwrap().scattered, 99 * 1000 - 99);
        let before = contents(&s);
        compact(&s);
        assert_eq!(contents(&s), before);
        let d = s.data.read().unwrap();
        assert_eq!(d.scattered, 0);
        // Runs of COMPACT_RUN events share one allocation, each message right after the last.
        let events: Vec<&Event> = d.range(Bound::Unbounded, Bound::Unbounded).collect();
        for (i, pair) in events.windows(2).enumerate() {
            let same = Arc::ptr_eq(&pair[0].text, &pair[1].text);
            assert_eq!(same, (i + 1) % COMPACT_RUN != 0, "{i}");
            if same {
                assert_eq!(pair[1].start, pair[0].start + pair[0].len);
            }
        }
        assert_eq!(
            d.stored_bytes,
            before.iter().map(|(_, m)| m.len() as i64 + 26).sum::<i64>()
        );
        drop(d);

        // Batches in time order are left in their batches' allocations.
        let in_order: Vec<Vec<(i64, String)>> = (0..100)
            .map(|b| (0..1000).map(|i| (b * 1000 + i, format!("m{b}-{i}"))).collect())
            .collect();
        let s = stream_of(&in_order);
        assert_eq!(s.data.read().unwrap().scattered, 0);
        compact(&s);
        let d = s.data.read().unwrap();
        let events: Vec<&Event> = d.range(Bound::Unbounded, Bound::Unbounded).collect();
        assert!(!Arc::ptr_eq(&events[999].text, &events[1000].text));
    }

    #[test]
    fn records_round_trip() {
        let p = encode(7, &[(1, "a"), (2, "héllo")]);
        let (uid, ev) = decode(&p).unwrap();
        assert_eq!(uid, 7);
        assert_eq!(ev, vec![(1, "a"), (2, "héllo")]);
        assert!(decode(&p[..p.len() - 1]).is_none());
    }
}
