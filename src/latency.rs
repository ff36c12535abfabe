//! Latencies counted in fixed buckets, for the metrics to export as histograms: how long a
//! freed agent waits for their next ring, how long a webhook delivery takes.
//!
//! Plain atomics, so tasks count without a lock, and the parts that count need nothing of
//! the metrics crate.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the agent-free→originate buckets, seconds: from a round trip to Redis to
/// a slow second.
pub const DISPATCH_BUCKETS: &[f64] = &[0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0];
/// Upper bounds of the webhook delivery buckets, seconds: up to the longest timeout.
pub const DELIVERY_BUCKETS: &[f64] =
    &[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Latencies counted so far.
#[derive(Debug)]
pub struct LatencyHistogram {
    bounds: &'static [f64],
    /// Per bucket of `bounds`, then one for what is above them all.
    counts: Vec<AtomicU64>,
    sum_us: AtomicU64,
}

/// What [`LatencyHistogram::snapshot`] read.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencySnapshot {
    /// Each bucket's upper bound (the last one infinite) and its own count, not
    /// cumulative.
    pub buckets: Vec<(f64, u64)>,
    pub count: u64,
    pub sum_seconds: f64,
}

impl LatencyHistogram {
    /// Counting in buckets up to each of `bounds` (seconds, ascending), and one above.
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_us: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, latency: Duration) {
        let seconds = latency.as_secs_f64();
        let bucket = (self.bounds.iter())
            .position(|bound| seconds <= *bound)
            .unwrap_or(self.bounds.len());
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> LatencySnapshot {
        let bounds = self.bounds.iter().copied().chain([f64::INFINITY]);
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
        let latency = LatencyHistogram::new(DISPATCH_BUCKETS);
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
