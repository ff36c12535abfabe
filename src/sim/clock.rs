//! Simulated time: every timer in the switch runs on this clock, never on the OS clock.
//!
//! A scaled clock lets a 60-minute expiry test take seconds; a manual one lets a test step time.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How simulated time relates to real time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ClockMode {
    /// Simulated time passes `factor` times faster than real time (1.0 = the real clock).
    Scaled(f64),
    /// Simulated time moves only when [`super::Switch::advance`] is called.
    Manual,
}

impl Default for ClockMode {
    fn default() -> Self {
        Self::Scaled(1.0)
    }
}

/// Simulated microseconds since the switch started, plus the wall-clock epoch they map to
/// (for `Event-Date-*` headers).
#[derive(Debug)]
pub struct SimClock {
    mode: ClockMode,
    started: Instant,
    epoch_us: u64,
    /// Manual mode: the current simulated time. Scaled mode: unused.
    manual_us: u64,
}

impl SimClock {
    pub fn new(mode: ClockMode) -> Self {
        let epoch_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        Self {
            mode,
            started: Instant::now(),
            epoch_us,
            manual_us: 0,
        }
    }

    /// Simulated time since start, in microseconds.
    pub fn now_us(&self) -> u64 {
        match self.mode {
            ClockMode::Scaled(k) => (self.started.elapsed().as_secs_f64() * k * 1e6) as u64,
            ClockMode::Manual => self.manual_us,
        }
    }

    /// Microseconds since the Unix epoch at simulated time `t_us`.
    pub fn epoch_at(&self, t_us: u64) -> u64 {
        self.epoch_us + t_us
    }

    /// Move manual time forward (no effect on a scaled clock, whose time is real).
    pub fn advance(&mut self, by: Duration) {
        if self.mode == ClockMode::Manual {
            self.manual_us += by.as_micros() as u64;
        }
    }

    /// The real instant at which simulated time reaches `t_us`, or `None` when only
    /// [`SimClock::advance`] can get there.
    pub fn real_deadline(&self, t_us: u64) -> Option<Instant> {
        match self.mode {
            ClockMode::Scaled(k) => {
                Some(self.started + Duration::from_secs_f64(t_us as f64 / 1e6 / k.max(1e-9)))
            }
            ClockMode::Manual => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let mut c = SimClock::new(ClockMode::Manual);
        assert_eq!(c.now_us(), 0);
        c.advance(Duration::from_secs(3600));
        assert_eq!(c.now_us(), 3_600_000_000);
        assert!(c.real_deadline(1).is_none());
    }

    #[test]
    fn scaled_clock_maps_sim_time_to_earlier_real_time() {
        let c = SimClock::new(ClockMode::Scaled(1000.0));
        let d = c.real_deadline(60_000_000).unwrap();
        assert!(d <= c.started + Duration::from_millis(61));
    }
}
