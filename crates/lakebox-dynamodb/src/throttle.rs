//! Provisioned throughput as AWS enforces it on PROVISIONED tables: reads and writes draw
//! capacity units from a bucket refilled at the table's RCU / WCU per second, holding up to
//! 300 seconds of unused capacity (AWS's burst capacity). A request meeting an empty bucket is
//! refused with `ProvisionedThroughputExceededException`; one admitted is charged what it
//! consumed (so a large read may leave the bucket in debt, paid back by the refill).
//! PAY_PER_REQUEST tables are not limited. `--dynamodb-throughput-limits off` turns this off.

use std::collections::HashMap;
use std::sync::Mutex;

use lakebox_core::ServiceError;

use crate::tables::TableRecord;

/// Seconds of unused capacity a table keeps for bursts.
const BURST_SECONDS: f64 = 300.0;

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Read,
    Write,
}

struct Bucket {
    tokens: f64,
    at_millis: i64,
    rate: f64,
}

pub struct Throttle {
    enabled: bool,
    buckets: Mutex<HashMap<(String, Kind), Bucket>>,
}

pub fn exceeded() -> ServiceError {
    ServiceError::client(
        "ProvisionedThroughputExceededException",
        "The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API.",
    )
}

impl Throttle {
    pub fn new(enabled: bool) -> Throttle {
        Throttle {
            enabled,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn rate(table: &TableRecord, kind: Kind) -> Option<f64> {
        if table.billing_mode != "PROVISIONED" {
            return None;
        }
        Some(match kind {
            Kind::Read => table.read_capacity,
            Kind::Write => table.write_capacity,
        } as f64)
    }

    /// Runs `f` on the table's bucket, brought up to `now` (a changed rate — UpdateTable —
    /// takes effect at once; a new bucket starts full).
    fn with_bucket<T>(
        &self,
        table: &TableRecord,
        kind: Kind,
        now: i64,
        f: impl FnOnce(&mut Bucket) -> T,
    ) -> Option<T> {
        if !self.enabled {
            return None;
        }
        let rate = Self::rate(table, kind)?;
        let mut buckets = self.buckets.lock().unwrap();
        let b = buckets.entry((table.uid.clone(), kind)).or_insert(Bucket {
            tokens: rate * BURST_SECONDS,
            at_millis: now,
            rate,
        });
        let elapsed = (now - b.at_millis).max(0) as f64 / 1000.0;
        b.rate = rate;
        b.tokens = (b.tokens + elapsed * rate).min(rate * BURST_SECONDS);
        b.at_millis = now;
        Some(f(b))
    }

    /// Whether the table has capacity left for a request of this kind.
    pub fn admit(&self, table: &TableRecord, kind: Kind, now: i64) -> Result<(), ServiceError> {
        match self.with_bucket(table, kind, now, |b| b.tokens > 0.0) {
            Some(false) => Err(exceeded()),
            _ => Ok(()),
        }
    }

    /// Draws what a request consumed.
    pub fn charge(&self, table: &TableRecord, kind: Kind, units: f64, now: i64) {
        self.with_bucket(table, kind, now, |b| b.tokens -= units);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(rcu: i64, wcu: i64) -> TableRecord {
        serde_json::from_value(serde_json::json!({
            "uid": "u", "account": "a", "region": "r", "name": "t", "created_millis": 0,
            "schema": {"hash": {"name": "pk", "ty": "S"}, "range": null}, "indexes": [],
            "key_schema": [], "attribute_definitions": [], "billing_mode": "PROVISIONED",
            "read_capacity": rcu, "write_capacity": wcu, "index_capacity": {}, "stream": null,
            "sse": null, "table_class": "STANDARD", "deletion_protection": false, "tags": [],
            "ttl_attribute": null, "pitr": false
        }))
        .unwrap()
    }

    #[test]
    fn burst_then_refill_at_the_provisioned_rate() {
        let t = table(1, 2);
        let th = Throttle::new(true);
        // 300 s of burst: 600 writes of one unit at once.
        for _ in 0..600 {
            th.admit(&t, Kind::Write, 0).unwrap();
            th.charge(&t, Kind::Write, 1.0, 0);
        }
        assert!(th.admit(&t, Kind::Write, 0).is_err());
        th.admit(&t, Kind::Read, 0).unwrap();
        // A second later two units are back.
        th.admit(&t, Kind::Write, 1000).unwrap();
        th.charge(&t, Kind::Write, 2.0, 1000);
        assert!(th.admit(&t, Kind::Write, 1000).is_err());
        assert!(Throttle::new(false).admit(&t, Kind::Write, 0).is_ok());
    }
}
