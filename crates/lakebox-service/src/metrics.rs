//! The link through which services publish their own AWS metrics (Kinesis's `IncomingRecords`,
//! Firehose's `DeliveryToS3.Records`, …) to CloudWatch, in their AWS namespaces with AWS's
//! names, units and dimensions, so alarms written for AWS work unchanged.
//!
//! Names are the caller's: a service's own are constants, a CloudWatch Logs metric filter's
//! are its user's.
//!
//! Recording costs a request one short lock and a map update: samples are summed per metric and
//! minute in memory ([`Aggregator`]), and the binary drains them into CloudWatch on a schedule.
//! A service holds a [`Recorder`]; without one wired (unit tests, a service used alone) recording
//! does nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use lakebox_core::Clock;

/// One metric's samples in one minute.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub account: String,
    pub region: String,
    pub namespace: String,
    pub name: String,
    pub dimensions: Vec<(String, String)>,
    /// A CloudWatch unit name (`Count`, `Bytes`, `Milliseconds`).
    pub unit: String,
    /// The minute's start, epoch milliseconds.
    pub minute_millis: i64,
    pub count: f64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

/// One metric's minute in a group: (name, unit, minute).
type Slot = (Box<str>, Box<str>, i64);

/// The metrics of one account, region, namespace and dimension set, with their minutes.
struct Group {
    account: String,
    region: String,
    namespace: String,
    dimensions: Vec<(String, String)>,
    /// (name, unit, minute) → count, sum, min, max. A handful per group: searched in order.
    values: Vec<(Slot, [f64; 4])>,
}

/// Samples gathered since the last drain.
pub struct Aggregator {
    clock: Arc<dyn Clock>,
    /// By a key spelling the group (built in a reused buffer, so a hit allocates nothing).
    groups: Mutex<HashMap<String, Group>>,
}

impl Aggregator {
    pub fn new(clock: Arc<dyn Clock>) -> Arc<Aggregator> {
        Arc::new(Aggregator {
            clock,
            groups: Mutex::new(HashMap::new()),
        })
    }

    /// Everything gathered so far; the aggregator starts over.
    pub fn drain(&self) -> Vec<Sample> {
        let groups = std::mem::take(&mut *self.groups.lock().unwrap());
        let mut out = Vec::new();
        for g in groups.into_values() {
            for ((name, unit, minute), [count, sum, min, max]) in g.values {
                out.push(Sample {
                    account: g.account.clone(),
                    region: g.region.clone(),
                    namespace: g.namespace.clone(),
                    name: name.into(),
                    dimensions: g.dimensions.clone(),
                    unit: unit.into(),
                    minute_millis: minute,
                    count,
                    sum,
                    min,
                    max,
                });
            }
        }
        out
    }
}

thread_local! {
    static KEY: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// What a service records its metrics with (cheap to clone).
#[derive(Clone, Default)]
pub struct Recorder(Option<Arc<Aggregator>>);

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Recorder(on)"
        } else {
            "Recorder(off)"
        })
    }
}

impl Recorder {
    pub fn new(to: Arc<Aggregator>) -> Recorder {
        Recorder(Some(to))
    }

    /// Adds one value of a metric of the caller's account and region.
    pub fn record(
        &self,
        ctx: &lakebox_core::RequestContext,
        namespace: &str,
        name: &str,
        dimensions: &[(&str, &str)],
        unit: &str,
        value: f64,
    ) {
        self.record_many(
            &ctx.account_id,
            &ctx.region,
            namespace,
            dimensions,
            &[(name, unit, value)],
        );
    }

    /// [`record`](Self::record) for an account and region given apart (background work).
    #[allow(clippy::too_many_arguments)]
    pub fn record_for(
        &self,
        account: &str,
        region: &str,
        namespace: &str,
        name: &str,
        dimensions: &[(&str, &str)],
        unit: &str,
        value: f64,
    ) {
        self.record_many(account, region, namespace, dimensions, &[(name, unit, value)]);
    }

    /// Adds one value to each of several metrics sharing an account, region, namespace and
    /// dimensions (what one call of an operation reports), under one lock.
    pub fn record_many(
        &self,
        account: &str,
        region: &str,
        namespace: &str,
        dimensions: &[(&str, &str)],
        values: &[(&str, &str, f64)],
    ) {
        let Some(agg) = &self.0 else { return };
        let minute = agg.clock.now_millis().div_euclid(60_000) * 60_000;
        KEY.with(|k| {
            let mut key = k.borrow_mut();
            key.clear();
            for part in [account, region, namespace] {
                key.push_str(part);
                key.push('\0');
            }
            for (n, v) in dimensions {
                key.push_str(n);
                key.push('\u{1}');
                key.push_str(v);
                key.push('\0');
            }
            let mut groups = agg.groups.lock().unwrap();
            if !groups.contains_key(key.as_str()) {
                groups.insert(
                    key.clone(),
                    Group {
                        account: account.to_owned(),
                        region: region.to_owned(),
                        namespace: namespace.to_owned(),
                        dimensions: dimensions
                            .iter()
                            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                            .collect(),
                        values: Vec::new(),
                    },
                );
            }
            let group = groups.get_mut(key.as_str()).expect("just inserted");
            for &(name, unit, value) in values {
                let slot = group
                    .values
                    .iter_mut()
                    .find(|((n, u, m), _)| **n == *name && **u == *unit && *m == minute);
                match slot {
                    Some((_, [count, sum, min, max])) => {
                        *count += 1.0;
                        *sum += value;
                        *min = min.min(value);
                        *max = max.max(value);
                    }
                    None => group
                        .values
                        .push(((name.into(), unit.into(), minute), [1.0, value, value, value])),
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_sum_per_metric_and_minute() {
        let clock = Arc::new(lakebox_core::clock::ManualClock::new(120_500));
        let agg = Aggregator::new(clock.clone());
        let r = Recorder::new(agg.clone());
        let ctx = lakebox_core::RequestContext::for_tests();
        r.record(
            &ctx,
            "AWS/Kinesis",
            "IncomingRecords",
            &[("StreamName", "s")],
            "Count",
            3.0,
        );
        r.record(
            &ctx,
            "AWS/Kinesis",
            "IncomingRecords",
            &[("StreamName", "s")],
            "Count",
            5.0,
        );
        clock.advance_millis(60_000);
        r.record(
            &ctx,
            "AWS/Kinesis",
            "IncomingRecords",
            &[("StreamName", "s")],
            "Count",
            1.0,
        );
        let mut drained = agg.drain();
        drained.sort_by_key(|s| s.minute_millis);
        assert_eq!(
            drained
                .iter()
                .map(|s| (s.minute_millis, s.count, s.sum, s.max))
                .collect::<Vec<_>>(),
            vec![(120_000, 2.0, 8.0, 5.0), (180_000, 1.0, 1.0, 1.0)]
        );
        assert!(agg.drain().is_empty());
        Recorder::default().record(&ctx, "AWS/Kinesis", "x", &[], "Count", 1.0);
    }
}
