//! The link through which services publish their own AWS metrics (Kinesis's `IncomingRecords`,
//! Firehose's `DeliveryToS3.Records`, …) to CloudWatch, in their AWS namespaces with AWS's
//! names, units and dimensions, so alarms written for AWS work unchanged.
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
    pub namespace: &'static str,
    pub name: &'static str,
    pub dimensions: Vec<(&'static str, String)>,
    /// A CloudWatch unit name (`Count`, `Bytes`, `Milliseconds`).
    pub unit: &'static str,
    /// The minute's start, epoch milliseconds.
    pub minute_millis: i64,
    pub count: f64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

type Key = (
    String,
    String,
    &'static str,
    &'static str,
    Vec<(&'static str, String)>,
    &'static str,
    i64,
);

/// Samples gathered since the last drain.
pub struct Aggregator {
    clock: Arc<dyn Clock>,
    samples: Mutex<HashMap<Key, Sample>>,
}

impl Aggregator {
    pub fn new(clock: Arc<dyn Clock>) -> Arc<Aggregator> {
        Arc::new(Aggregator {
            clock,
            samples: Mutex::new(HashMap::new()),
        })
    }

    /// Everything gathered so far; the aggregator starts over.
    pub fn drain(&self) -> Vec<Sample> {
        std::mem::take(&mut *self.samples.lock().unwrap())
            .into_values()
            .collect()
    }
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
        namespace: &'static str,
        name: &'static str,
        dimensions: &[(&'static str, &str)],
        unit: &'static str,
        value: f64,
    ) {
        self.record_for(
            &ctx.account_id,
            &ctx.region,
            namespace,
            name,
            dimensions,
            unit,
            value,
        );
    }

    /// [`record`](Self::record) for an account and region given apart (background work).
    #[allow(clippy::too_many_arguments)]
    pub fn record_for(
        &self,
        account: &str,
        region: &str,
        namespace: &'static str,
        name: &'static str,
        dimensions: &[(&'static str, &str)],
        unit: &'static str,
        value: f64,
    ) {
        let Some(agg) = &self.0 else { return };
        let minute = agg.clock.now_millis().div_euclid(60_000) * 60_000;
        let dims: Vec<(&'static str, String)> =
            dimensions.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        let key = (
            account.to_owned(),
            region.to_owned(),
            namespace,
            name,
            dims.clone(),
            unit,
            minute,
        );
        let mut samples = agg.samples.lock().unwrap();
        let s = samples.entry(key).or_insert_with(|| Sample {
            account: account.to_owned(),
            region: region.to_owned(),
            namespace,
            name,
            dimensions: dims,
            unit,
            minute_millis: minute,
            count: 0.0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        });
        s.count += 1.0;
        s.sum += value;
        s.min = s.min.min(value);
        s.max = s.max.max(value);
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
