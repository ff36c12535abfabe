//! Time as the queue sees it: a clock passed in, never read from the system directly,
//! so positions, idle times and timers can be tested on a virtual clock.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch: what Redis stores as scores and hash fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(u64);

impl Timestamp {
    pub const fn from_millis(ms: u64) -> Self {
        Self(ms)
    }

    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// Time elapsed from `earlier` to `self`; zero when `earlier` is later (clocks of two
    /// daemons may disagree slightly).
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }

    pub fn plus(self, d: Duration) -> Self {
        Self(
            self.0
                .saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        )
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// Wall-clock time; every daemon sharing a Redis compares these, so hosts need NTP.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Timestamp(ms)
    }
}

/// A clock that moves only when told: for tests of waits, expiry and idle order.
/// Clones share one time, so a test can hold one and hand another to the code under test.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        Self(Arc::new(AtomicU64::new(start.0)))
    }

    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

/// Real time sped up `factor` times from a starting wall-clock time: pairs with the
/// simulator's scaled clock so a test of a 60-minute rule takes seconds.
#[derive(Debug, Clone)]
pub struct ScaledClock {
    start: Timestamp,
    origin: std::time::Instant,
    factor: f64,
}

impl ScaledClock {
    pub fn new(factor: f64) -> Self {
        Self {
            start: SystemClock.now(),
            origin: std::time::Instant::now(),
            factor,
        }
    }

    pub fn factor(&self) -> f64 {
        self.factor
    }
}

impl Clock for ScaledClock {
    fn now(&self) -> Timestamp {
        let elapsed = self.origin.elapsed().as_secs_f64() * self.factor * 1000.0;
        Timestamp(self.start.0 + elapsed as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_clones_share_time() {
        let clock = ManualClock::new(Timestamp::from_millis(1_000));
        let shared = clock.clone();
        clock.advance(Duration::from_secs(2));
        assert_eq!(shared.now(), Timestamp::from_millis(3_000));
        assert_eq!(
            shared.now().since(Timestamp::from_millis(500)),
            Duration::from_millis(2_500)
        );
        assert_eq!(
            Timestamp::from_millis(1).since(Timestamp::from_millis(9)),
            Duration::ZERO
        );
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.now() > Timestamp::from_millis(1_577_836_800_000));
    }
}
