//! How long a waiting caller can expect to wait: their place times the queue's recent pace
//! between connections. One rule for the callback offer's threshold, the periodic
//! announcements and the time a callback confirmation promises.

use std::time::Duration;

/// How many recent connections a queue's pace is taken from.
pub const PACE_SAMPLES: usize = 20;

/// The expected wait of the caller at `position` (1 = next) in a queue that connected a
/// call every `pace` lately.
pub fn estimated_wait(pace: Duration, position: u64) -> Duration {
    pace.saturating_mul(u32::try_from(position.max(1)).unwrap_or(u32::MAX))
}

/// `wait` as the whole minutes a caller hears: rounded up, and never "zero minutes".
pub fn spoken_minutes(wait: Duration) -> u64 {
    wait.as_secs().div_ceil(60).max(1)
}

/// Whether the callback offer is made to a caller whose wait is estimated at `estimate`
/// (`None` before the queue has a pace), on a line that offers it only above `threshold`.
/// Without an estimate it is offered: nobody can say the wait is short.
pub fn offer_callback(threshold: Option<Duration>, estimate: Option<Duration>) -> bool {
    match (threshold, estimate) {
        (Some(threshold), Some(estimate)) => estimate > threshold,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_is_the_pace_times_the_place() {
        let pace = Duration::from_secs(90);
        assert_eq!(estimated_wait(pace, 4), Duration::from_secs(360));
        // A caller already first still waits about one pace.
        assert_eq!(estimated_wait(pace, 0), pace);
    }

    #[test]
    fn minutes_round_up_and_start_at_one() {
        assert_eq!(spoken_minutes(Duration::from_secs(0)), 1);
        assert_eq!(spoken_minutes(Duration::from_secs(60)), 1);
        assert_eq!(spoken_minutes(Duration::from_secs(61)), 2);
        assert_eq!(spoken_minutes(Duration::from_secs(715)), 12);
    }

    #[test]
    fn the_offer_waits_for_a_long_enough_estimate() {
        let five = Some(Duration::from_secs(300));
        assert!(offer_callback(None, Some(Duration::from_secs(10))));
        assert!(offer_callback(five, None));
        assert!(!offer_callback(five, Some(Duration::from_secs(300))));
        assert!(offer_callback(five, Some(Duration::from_secs(301))));
    }
}
