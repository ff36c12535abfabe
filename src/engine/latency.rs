//! How long an agent whose call ended waits for their next ring while callers wait: the
//! figure routing is built to keep small, counted in fixed buckets the metrics export.
//!
//! Plain atomics, so the loop and its round-trip tasks count without a lock, and the
//! engine needs nothing of the metrics crate.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, seconds: from a round trip to Redis to a slow second.
pub const DISPATCH_BUCKETS: [f64; 10] =
    [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0];

/// Agent-free→originate latencies counted so far.
#[derive(Debug, Default)]
pub struct DispatchLatency {
    /// Per bucket of [`DISPATCH_BUCKETS`], then one for what is above them all.
    counts: [AtomicU64; DISPATCH_BUCKETS.len() + 1],
    sum_us: AtomicU64,
}

/// What [`DispatchLatency::snapshot`] read.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencySnapshot {
    /// Each bucket's upper bound (the last one infinite) and its own count, not
    /// cumulative.
    pub buckets: Vec<(f64, u64)>,
    pub count: u64,
    pub sum_seconds: f64,
}

impl DispatchLatency {
    pub fn observe(&self, latency: Duration) {
        let seconds = latency.as_secs_f64();
        let bucket = DISPATCH_BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(DISPATCH_BUCKETS.len());
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> LatencySnapshot {
        let bounds = DISPATCH_BUCKETS.iter().copied().chain([f64::INFINITY]);
        let buckets: Vec<(f64, u64)> = bounds
            .zip(&self.counts)
            .map(|(bound, n)| (bound, n.load(Ordering::Relaxed)))
            .collect();
        LatencySnapshot {
            count: buckets.iter().map(|(_, n)| n).sum(),
            buckets,
            sum_seconds: self.sum_us.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_latency_lands_in_the_first_bucket_that_holds_it() {
        let latency = DispatchLatency::default();
        latency.observe(Duration::from_micros(500));
        latency.observe(Duration::from_millis(1));
        latency.observe(Duration::from_millis(30));
        latency.observe(Duration::from_secs(3));
        let snap = latency.snapshot();
        assert_eq!(snap.count, 4);
        assert_eq!(snap.buckets[0], (0.001, 2));
        assert_eq!(snap.buckets[5], (0.05, 1));
        assert_eq!(snap.buckets[10], (f64::INFINITY, 1));
        assert!((snap.sum_seconds - 3.0315).abs() < 1e-9);
    }
}
