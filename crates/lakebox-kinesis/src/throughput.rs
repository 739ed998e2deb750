//! Per-shard throughput limits, as AWS applies them to provisioned shards: in, 1 MiB and 1,000
//! records per second; out, 2 MiB and 5 GetRecords calls per second. Counted in one-second
//! windows of the service clock. Switchable off (`--kinesis-throughput-limits off`).

use std::collections::HashMap;
use std::sync::Mutex;

pub const WRITE_BYTES_PER_SEC: u64 = 1024 * 1024;
pub const WRITE_RECORDS_PER_SEC: u64 = 1000;
pub const READ_BYTES_PER_SEC: u64 = 2 * 1024 * 1024;
pub const READ_CALLS_PER_SEC: u64 = 5;

#[derive(Debug, Default, Clone, Copy)]
struct Meter {
    second: i64,
    put_records: u64,
    put_bytes: u64,
    get_calls: u64,
    get_bytes: u64,
}

impl Meter {
    fn at(&mut self, second: i64) -> &mut Self {
        if self.second != second {
            *self = Meter {
                second,
                ..Meter::default()
            };
        }
        self
    }
}

/// Meters for every shard, keyed by stream uid and shard index.
#[derive(Default)]
pub struct Throughput {
    meters: Mutex<HashMap<(String, u32), Meter>>,
}

impl Throughput {
    /// Admits one record of `bytes` (data + partition key) into a shard, or refuses it.
    pub fn admit_put(&self, uid: &str, shard: u32, bytes: u64, now_millis: i64) -> bool {
        let mut meters = self.meters.lock().unwrap();
        let m = meters
            .entry((uid.to_owned(), shard))
            .or_default()
            .at(now_millis.div_euclid(1000));
        if m.put_records + 1 > WRITE_RECORDS_PER_SEC || m.put_bytes + bytes > WRITE_BYTES_PER_SEC {
            return false;
        }
        m.put_records += 1;
        m.put_bytes += bytes;
        true
    }

    /// Admits a GetRecords call on a shard, or refuses it (too many calls, or the second's
    /// read budget already spent).
    pub fn admit_get(&self, uid: &str, shard: u32, now_millis: i64) -> bool {
        let mut meters = self.meters.lock().unwrap();
        let m = meters
            .entry((uid.to_owned(), shard))
            .or_default()
            .at(now_millis.div_euclid(1000));
        if m.get_calls + 1 > READ_CALLS_PER_SEC || m.get_bytes >= READ_BYTES_PER_SEC {
            return false;
        }
        m.get_calls += 1;
        true
    }

    /// Records bytes a GetRecords call returned.
    pub fn record_read(&self, uid: &str, shard: u32, bytes: u64, now_millis: i64) {
        let mut meters = self.meters.lock().unwrap();
        let m = meters
            .entry((uid.to_owned(), shard))
            .or_default()
            .at(now_millis.div_euclid(1000));
        m.get_bytes += bytes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_limits_per_second() {
        let t = Throughput::default();
        for _ in 0..1000 {
            assert!(t.admit_put("u", 0, 10, 5_000));
        }
        assert!(!t.admit_put("u", 0, 10, 5_999));
        assert!(t.admit_put("u", 1, 10, 5_999)); // another shard has its own budget
        assert!(t.admit_put("u", 0, 10, 6_000)); // next second
        assert!(t.admit_put("u", 0, WRITE_BYTES_PER_SEC - 10, 6_000));
        assert!(!t.admit_put("u", 0, 1, 6_000));
    }

    #[test]
    fn read_limits_per_second() {
        let t = Throughput::default();
        for _ in 0..5 {
            assert!(t.admit_get("u", 0, 1_000));
        }
        assert!(!t.admit_get("u", 0, 1_500));
        assert!(t.admit_get("u", 0, 2_000));
        t.record_read("u", 0, READ_BYTES_PER_SEC, 2_000);
        assert!(!t.admit_get("u", 0, 2_100));
    }
}
