//! The keys callers pressed that no media took: FreeSWITCH fires a DTMF event when
//! something on the channel takes a digit, and `park` takes (and drops) every digit
//! pressed while nothing plays, so a 2 pressed between two playbacks is only an event.
//!
//! The ledger turns those events into the [`Pbx`](crate::switch::Pbx) promise that a
//! terminator pressed since the last media operation still ends the next playback.
//! Events and media completions reach the daemon by different paths, in either order,
//! so each digit keeps a balance: +1 per DTMF event, −1 per digit a media operation
//! reported taking. A positive balance is a key nothing took yet.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::switch::CallId;

/// How long a key nothing took is kept: long enough for the daemon to enqueue a caller
/// who pressed before their CHANNEL_PARK was handled, short enough that DTMF of calls
/// that are none of callbackd's (they pass the event filter by name) do not pile up.
const UNTAKEN_KEPT: Duration = Duration::from_secs(5);

const DIGITS: &str = "0123456789*#ABCD";

/// One call's keys.
#[derive(Debug, Default)]
struct Keys {
    /// Per digit of [`DIGITS`]: events seen minus digits media reported taking.
    balance: [i32; DIGITS.len()],
    /// The call's playback terminators, as last set.
    terminators: String,
    /// When the last untaken key was pressed.
    pressed: Option<Instant>,
}

impl Keys {
    fn is_idle(&self) -> bool {
        self.terminators.is_empty() && self.balance.iter().all(|&b| b == 0)
    }

    fn untaken_expired(&self, now: Instant) -> bool {
        self.pressed
            .is_some_and(|at| now.duration_since(at) >= UNTAKEN_KEPT)
    }

    /// Untaken keys are forgotten; digits taken whose events are still coming stay owed.
    fn drop_untaken(&mut self) {
        for b in &mut self.balance {
            *b = (*b).min(0);
        }
        self.pressed = None;
    }
}

/// Every call's keys, shared by the clones of one [`FreeSwitch`](super::FreeSwitch).
#[derive(Debug, Clone, Default)]
pub(super) struct KeyLedger {
    calls: Arc<Mutex<HashMap<CallId, Keys>>>,
}

impl KeyLedger {
    fn lock(&self) -> MutexGuard<'_, HashMap<CallId, Keys>> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A DTMF event: something on `call` took `digit`.
    pub fn pressed(&self, call: &CallId, digit: char) {
        self.pressed_at(call, digit, Instant::now());
    }

    fn pressed_at(&self, call: &CallId, digit: char, now: Instant) {
        let Some(i) = DIGITS.find(digit) else { return };
        let mut calls = self.lock();
        if !calls.contains_key(call) {
            // A new call is the moment to let stale keys go: the map holds only calls
            // with a terminator set or a key in flight, so this stays short.
            calls.retain(|_, k| {
                if k.untaken_expired(now) {
                    k.drop_untaken();
                }
                !k.is_idle()
            });
        }
        let keys = calls.entry(call.clone()).or_default();
        keys.balance[i] += 1;
        if keys.balance[i] > 0 {
            keys.pressed = Some(now);
        }
        if keys.is_idle() {
            calls.remove(call);
        }
    }

    /// A media operation on `call` reported taking `digits` (their events may be late).
    pub fn took(&self, call: &CallId, digits: &str) {
        let mut calls = self.lock();
        let keys = calls.entry(call.clone()).or_default();
        for i in digits.chars().filter_map(|d| DIGITS.find(d)) {
            keys.balance[i] -= 1;
        }
        if keys.is_idle() {
            calls.remove(call);
        }
    }

    /// The first of `call`'s playback terminators pressed and not yet taken, taken now.
    pub fn take_terminator(&self, call: &CallId) -> Option<char> {
        self.take_terminator_at(call, Instant::now())
    }

    fn take_terminator_at(&self, call: &CallId, now: Instant) -> Option<char> {
        let mut calls = self.lock();
        let keys = calls.get_mut(call)?;
        if keys.untaken_expired(now) {
            keys.drop_untaken();
        }
        let (digit, i) = keys
            .terminators
            .chars()
            .filter_map(|d| Some((d, DIGITS.find(d)?)))
            .find(|&(_, i)| keys.balance[i] > 0)?;
        keys.balance[i] -= 1;
        Some(digit)
    }

    pub fn set_terminators(&self, call: &CallId, digits: &str) {
        let mut calls = self.lock();
        let keys = calls.entry(call.clone()).or_default();
        keys.terminators = digits.to_owned();
        if keys.is_idle() {
            calls.remove(call);
        }
    }

    /// Forget `call`'s untaken keys.
    pub fn discard(&self, call: &CallId) {
        let mut calls = self.lock();
        if let Some(keys) = calls.get_mut(call) {
            keys.drop_untaken();
            if keys.is_idle() {
                calls.remove(call);
            }
        }
    }

    pub fn hung_up(&self, call: &CallId) {
        self.lock().remove(call);
    }

    /// The connection is gone: no event still in flight will come.
    pub fn clear(&self) {
        self.lock().clear();
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(n: u8) -> CallId {
        CallId::new(&format!("call-{n}")).unwrap()
    }

    fn ledger_with_terminator() -> KeyLedger {
        let ledger = KeyLedger::default();
        ledger.set_terminators(&call(1), "2");
        ledger
    }

    #[test]
    fn a_key_park_took_ends_the_next_playback_once() {
        let ledger = ledger_with_terminator();
        ledger.pressed(&call(1), '2');
        assert_eq!(ledger.take_terminator(&call(1)), Some('2'));
        assert_eq!(ledger.take_terminator(&call(1)), None);
    }

    #[test]
    fn a_key_that_ended_a_playback_counts_once_whichever_news_comes_first() {
        let ledger = ledger_with_terminator();
        // The completion first, then the event.
        ledger.took(&call(1), "2");
        ledger.pressed(&call(1), '2');
        assert_eq!(ledger.take_terminator(&call(1)), None);
        // The event first, then the completion.
        ledger.pressed(&call(1), '2');
        ledger.took(&call(1), "2");
        assert_eq!(ledger.take_terminator(&call(1)), None);
    }

    #[test]
    fn only_terminators_end_a_playback() {
        let ledger = ledger_with_terminator();
        ledger.pressed(&call(1), '5');
        assert_eq!(ledger.take_terminator(&call(1)), None);
    }

    #[test]
    fn keys_pressed_before_the_terminators_were_set_still_count() {
        let ledger = KeyLedger::default();
        ledger.pressed(&call(1), '2');
        ledger.set_terminators(&call(1), "2");
        assert_eq!(ledger.take_terminator(&call(1)), Some('2'));
    }

    #[test]
    fn discarding_forgets_untaken_keys_but_not_late_events() {
        let ledger = ledger_with_terminator();
        ledger.pressed(&call(1), '2');
        ledger.took(&call(1), "22");
        ledger.discard(&call(1));
        // One of the two taken digits' events is still to come; it must not count.
        ledger.pressed(&call(1), '2');
        assert_eq!(ledger.take_terminator(&call(1)), None);
        ledger.pressed(&call(1), '2');
        ledger.discard(&call(1));
        assert_eq!(ledger.take_terminator(&call(1)), None);
    }

    #[test]
    fn untaken_keys_expire_and_strangers_do_not_pile_up() {
        let ledger = ledger_with_terminator();
        let start = Instant::now();
        ledger.pressed_at(&call(1), '2', start);
        for n in 2..50 {
            ledger.pressed_at(&call(n), '7', start);
        }
        let later = start + UNTAKEN_KEPT;
        assert_eq!(ledger.take_terminator_at(&call(1), later), None);
        ledger.pressed_at(&call(99), '7', later);
        // The caller with terminators and the newest stranger remain.
        assert_eq!(ledger.len(), 2);
    }

    #[test]
    fn a_hangup_forgets_the_call() {
        let ledger = ledger_with_terminator();
        ledger.pressed(&call(1), '2');
        ledger.hung_up(&call(1));
        assert_eq!(ledger.len(), 0);
        ledger.pressed(&call(2), '2');
        ledger.clear();
        assert_eq!(ledger.len(), 0);
    }
}
