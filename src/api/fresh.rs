//! Reads shared by requests asked close together: dashboards and CRMs polling many times a
//! second share one read of Redis instead of a read each, so the API's load on Redis (and
//! on the routing that waits for Redis) stays flat however many poll.
//!
//! A read older than [`FRESH`] is read again. (The dashboard waits longer than this after
//! an event before it asks, so what it shows always includes the event.)

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How old a shared read may be.
pub const FRESH: Duration = Duration::from_millis(200);

/// Beyond this many keys, reads that are no longer fresh are dropped when one is kept.
const KEYS_KEPT: usize = 64;

/// The latest read per key, with when it was made.
pub struct FreshCache<K, V>(Mutex<HashMap<K, (Instant, Arc<V>)>>);

impl<K, V> Default for FreshCache<K, V> {
    fn default() -> Self {
        Self(Mutex::default())
    }
}

impl<K: Eq + Hash, V> FreshCache<K, V> {
    /// The read kept for `key`, if it is fresh.
    pub fn fresh(&self, key: &K) -> Option<Arc<V>> {
        let reads = self.0.lock().unwrap_or_else(|p| p.into_inner());
        reads
            .get(key)
            .filter(|(at, _)| at.elapsed() < FRESH)
            .map(|(_, read)| read.clone())
    }

    /// Keep `read`, just made, for `key`.
    pub fn keep(&self, key: K, read: Arc<V>) {
        let mut reads = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if reads.len() >= KEYS_KEPT {
            reads.retain(|_, (at, _)| at.elapsed() < FRESH);
        }
        reads.insert(key, (Instant::now(), read));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_is_shared_while_fresh_and_stale_keys_do_not_pile_up() {
        let cache: FreshCache<usize, &str> = FreshCache::default();
        cache.keep(1, Arc::new("one"));
        assert_eq!(cache.fresh(&1).as_deref(), Some(&"one"));
        assert!(cache.fresh(&2).is_none());
        std::thread::sleep(FRESH);
        assert!(cache.fresh(&1).is_none());
        for k in 0..KEYS_KEPT + 10 {
            cache.keep(k, Arc::new("many"));
        }
        assert!(cache.0.lock().unwrap().len() <= KEYS_KEPT + 10);
        std::thread::sleep(FRESH);
        cache.keep(0, Arc::new("again"));
        assert_eq!(cache.0.lock().unwrap().len(), 1);
    }
}
