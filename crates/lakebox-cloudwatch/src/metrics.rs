//! Metric data: every datum written durably to a log before PutMetricData answers, and kept in
//! memory by metric, unit and time for the queries.
//!
//! A datum lands in the bucket of its timestamp at its storage resolution (1 s for
//! high-resolution metrics, 60 s otherwise). A sweep rolls old buckets up as CloudWatch's
//! retention does — 1-second data to 1 minute after 3 hours, 1-minute data to 5 minutes after
//! 15 days, 5-minute data to 1 hour after 63 days — and drops data older than 455 days. The log
//! is replayed at start (a server that never received a datum has none).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use lakebox_core::ServiceError;
use lakebox_core::clock::Clock;
use lakebox_store::{Log, LogConfig, LogEntry, StoreError};
use serde::{Deserialize, Serialize};

use crate::stats::Agg;

pub const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
/// How long CloudWatch keeps metric data.
pub const RETENTION: i64 = 455 * DAY;
/// The log's segment size: old data goes a segment at a time.
const SEGMENT_BYTES: u64 = 16 * 1024 * 1024;

/// One metric: its account and region, namespace, name and dimensions (sorted by name, as a
/// metric is the same whatever order they were sent in).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MetricKey {
    pub account: String,
    pub region: String,
    pub namespace: String,
    pub name: String,
    pub dimensions: Vec<(String, String)>,
}

/// A datum as written: its metric, time, unit, resolution and samples.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Datum {
    pub metric: MetricKey,
    pub timestamp_millis: i64,
    pub unit: String,
    /// 1 (high resolution) or 60.
    pub resolution_secs: i64,
    pub samples: Agg,
}

/// A metric's buckets, per unit.
#[derive(Debug, Default)]
struct Series {
    by_unit: BTreeMap<String, BTreeMap<i64, Agg>>,
    /// When data was last put (ListMetrics' RecentlyActive).
    last_put_millis: i64,
}

pub struct Metrics {
    dir: PathBuf,
    clock: Arc<dyn Clock>,
    /// Opened by the first datum, or at start when data exists.
    log: Mutex<Option<Arc<Log>>>,
    series: RwLock<BTreeMap<MetricKey, Series>>,
}

impl Metrics {
    /// Opens the metric data in `dir`, replaying its log.
    pub fn open(dir: &Path, clock: Arc<dyn Clock>) -> Result<Metrics, StoreError> {
        let metrics = Metrics {
            dir: dir.to_owned(),
            clock,
            log: Mutex::new(None),
            series: RwLock::new(BTreeMap::new()),
        };
        if dir.exists() {
            let log = metrics.log()?;
            let mut from = log.first_offset();
            loop {
                let records = log.read(from, 4096, 64 * 1024 * 1024)?;
                let Some(last) = records.last() else { break };
                from = last.offset + 1;
                for r in &records {
                    match serde_json::from_slice::<Vec<Datum>>(&r.payload) {
                        Ok(data) => metrics.apply(data, r.timestamp_millis),
                        Err(e) => tracing::warn!("skipping an unreadable metric record at {}: {e}", r.offset),
                    }
                }
            }
            metrics.roll_up();
        }
        Ok(metrics)
    }

    fn log(&self) -> Result<Arc<Log>, StoreError> {
        let mut log = self.log.lock().unwrap();
        if let Some(l) = &*log {
            return Ok(l.clone());
        }
        let config = LogConfig {
            segment_bytes: SEGMENT_BYTES,
            ..LogConfig::default()
        };
        let opened = Arc::new(Log::open(&self.dir, config)?);
        *log = Some(opened.clone());
        Ok(opened)
    }

    pub fn now_millis(&self) -> i64 {
        self.clock.now_millis()
    }

    /// Writes the data durably, then makes it visible.
    pub async fn put(&self, data: Vec<Datum>) -> Result<(), ServiceError> {
        let now = self.now_millis();
        let payload = serde_json::to_vec(&data).map_err(|e| ServiceError::internal(e.to_string()))?;
        let log = self.log().map_err(store_error)?;
        log.append(vec![LogEntry {
            timestamp_millis: now,
            payload,
        }])
        .await
        .map_err(store_error)?;
        self.apply(data, now);
        Ok(())
    }

    fn apply(&self, data: Vec<Datum>, put_millis: i64) {
        let mut series = self.series.write().unwrap();
        for d in data {
            let res = d.resolution_secs.max(1) * 1000;
            let bucket = d.timestamp_millis.div_euclid(res) * res;
            let s = series.entry(d.metric).or_default();
            s.last_put_millis = s.last_put_millis.max(put_millis);
            let buckets = s.by_unit.entry(d.unit).or_default();
            match buckets.get_mut(&bucket) {
                Some(agg) => agg.merge(&d.samples),
                None => {
                    buckets.insert(bucket, d.samples);
                }
            }
        }
    }

    /// Rolls old buckets up to the resolution CloudWatch keeps at their age, drops data past
    /// retention, and lets the log's expired segments go.
    pub fn roll_up(&self) {
        let now = self.now_millis();
        let stages = [(3 * HOUR, MINUTE), (15 * DAY, 5 * MINUTE), (63 * DAY, HOUR)];
        let mut series = self.series.write().unwrap();
        for s in series.values_mut() {
            for buckets in s.by_unit.values_mut() {
                let expired: Vec<i64> = buckets.range(..now - RETENTION).map(|(k, _)| *k).collect();
                for k in expired {
                    buckets.remove(&k);
                }
                for (age, width) in stages {
                    let coarse: Vec<i64> = buckets
                        .range(..now - age)
                        .map(|(k, _)| *k)
                        .filter(|k| k.rem_euclid(width) != 0)
                        .collect();
                    for k in coarse {
                        if let Some(agg) = buckets.remove(&k) {
                            let to = k.div_euclid(width) * width;
                            match buckets.get_mut(&to) {
                                Some(target) => target.merge(&agg),
                                None => {
                                    buckets.insert(to, agg);
                                }
                            }
                        }
                    }
                }
            }
            s.by_unit.retain(|_, b| !b.is_empty());
        }
        series.retain(|_, s| !s.by_unit.is_empty());
        drop(series);
        if let Some(log) = self.log.lock().unwrap().clone() {
            // A datum may carry a timestamp two weeks older than its arrival.
            if let Err(e) = log.expire_older_than(now - RETENTION - 14 * DAY) {
                tracing::warn!("could not expire old metric data: {e}");
            }
        }
    }

    /// The buckets of one metric in `[from, to)`, per unit (only `unit`'s when given).
    pub fn buckets(
        &self,
        metric: &MetricKey,
        unit: Option<&str>,
        from: i64,
        to: i64,
    ) -> Vec<(String, Vec<(i64, Agg)>)> {
        let series = self.series.read().unwrap();
        let Some(s) = series.get(metric) else {
            return Vec::new();
        };
        s.by_unit
            .iter()
            .filter(|(u, _)| unit.is_none_or(|w| w == u.as_str()))
            .map(|(u, b)| {
                (
                    u.clone(),
                    b.range(from..to.max(from))
                        .map(|(k, a)| (*k, a.clone()))
                        .collect(),
                )
            })
            .filter(|(_, b): &(String, Vec<(i64, Agg)>)| !b.is_empty())
            .collect()
    }

    /// The metrics of an account and region that `keep` accepts, after `after`, up to `limit`.
    pub fn list(
        &self,
        account: &str,
        region: &str,
        after: Option<&MetricKey>,
        limit: usize,
        keep: impl Fn(&MetricKey, i64) -> bool,
    ) -> (Vec<MetricKey>, bool) {
        let series = self.series.read().unwrap();
        let start = MetricKey {
            account: account.to_owned(),
            region: region.to_owned(),
            namespace: String::new(),
            name: String::new(),
            dimensions: Vec::new(),
        };
        let range = match after {
            Some(a) => series.range((std::ops::Bound::Excluded(a.clone()), std::ops::Bound::Unbounded)),
            None => series.range(start..),
        };
        let mut out = Vec::new();
        for (k, s) in range {
            if k.account != account || k.region != region {
                break;
            }
            if keep(k, s.last_put_millis) {
                if out.len() == limit {
                    return (out, true);
                }
                out.push(k.clone());
            }
        }
        (out, false)
    }
}

fn store_error(e: StoreError) -> ServiceError {
    ServiceError::internal(format!("metric store: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> MetricKey {
        MetricKey {
            account: "000000000000".into(),
            region: "us-east-1".into(),
            namespace: "App".into(),
            name: "Latency".into(),
            dimensions: vec![],
        }
    }

    fn datum(t: i64, v: f64, res: i64) -> Datum {
        Datum {
            metric: key(),
            timestamp_millis: t,
            unit: "Milliseconds".into(),
            resolution_secs: res,
            samples: Agg::of_values(&[(v, 1.0)]),
        }
    }

    #[tokio::test]
    async fn data_survive_a_restart_and_roll_up_with_age() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(lakebox_core::clock::ManualClock::new(100 * DAY));
        let m = Metrics::open(&dir.path().join("m"), clock.clone()).unwrap();
        let t = 100 * DAY - 4 * HOUR;
        m.put(vec![
            datum(t + 1_000, 1.0, 1),
            datum(t + 2_000, 3.0, 1),
            datum(t + 61_000, 5.0, 1),
        ])
        .await
        .unwrap();
        drop(m);
        let m = Metrics::open(&dir.path().join("m"), clock.clone()).unwrap();
        let b = m.buckets(&key(), None, t, t + HOUR);
        assert_eq!(b.len(), 1);
        // Four hours old: 1-second data is now 1-minute data.
        let keys: Vec<i64> = b[0].1.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, vec![t, t + MINUTE]);
        assert_eq!(b[0].1[0].1.sum, 4.0);
        clock.advance_millis(RETENTION);
        m.roll_up();
        assert!(m.buckets(&key(), None, 0, i64::MAX).is_empty());
    }
}
