//! One clock for the whole server, so tests can move time instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Source of wall-clock time, in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + 'static {
    fn now_millis(&self) -> i64;

    fn now_secs(&self) -> i64 {
        self.now_millis().div_euclid(1000)
    }
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_millis(&self) -> i64 {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_millis() as i64,
            Err(e) => -(e.duration().as_millis() as i64),
        }
    }
}

/// The real clock plus an adjustable offset: the server runs on it when Lakebox's test routes
/// are on, so end-to-end tests can jump ahead (iterator expiry, retention) without waiting.
#[derive(Debug, Clone, Default)]
pub struct OffsetClock(Arc<AtomicI64>);

impl OffsetClock {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn advance_millis(&self, by: i64) {
        self.0.fetch_add(by, Ordering::SeqCst);
    }

    pub fn offset_millis(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl Clock for OffsetClock {
    fn now_millis(&self) -> i64 {
        SystemClock.now_millis() + self.0.load(Ordering::SeqCst)
    }
}

/// A clock that only moves when told to; cheap to clone, all clones share the time.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn new(start_millis: i64) -> Self {
        ManualClock(Arc::new(AtomicI64::new(start_millis)))
    }

    pub fn advance_millis(&self, by: i64) {
        self.0.fetch_add(by, Ordering::SeqCst);
    }

    pub fn set_millis(&self, to: i64) {
        self.0.store(to, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_millis(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(1_000);
        let c2 = c.clone();
        assert_eq!(c.now_secs(), 1);
        c2.advance_millis(2_500);
        assert_eq!(c.now_millis(), 3_500);
        c.set_millis(-1);
        assert_eq!(c.now_secs(), -1);
    }

    #[test]
    fn offset_clock_follows_the_system_clock_plus_its_offset() {
        let c = OffsetClock::new();
        let before = SystemClock.now_millis();
        c.clone().advance_millis(300_000);
        assert!(c.now_millis() >= before + 300_000);
        assert_eq!(c.offset_millis(), 300_000);
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.now_secs() > 1_577_836_800);
    }
}
