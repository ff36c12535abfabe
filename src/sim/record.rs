//! What happened to each call, kept for tests to assert on and for the demo to print.
//!
//! Filled from the same events the switch emits, so the record and the wire cannot disagree.

use std::collections::HashMap;

use super::event::SimEvent;

/// One channel's history.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallRecord {
    pub uuid: String,
    pub channel_name: String,
    pub caller_number: String,
    pub destination: String,
    /// Event names in order (`CUSTOM` events as `CUSTOM <subclass>`).
    pub events: Vec<String>,
    /// When each of `events` came (µs since the epoch, on the simulator's clock).
    pub event_us: Vec<u64>,
    /// Every `Playback-File-Path` started, and every `Record-File-Path` recorded.
    pub media: Vec<String>,
    /// Digits that arrived on this channel, in order.
    pub digits: String,
    /// Unique-IDs of the legs this one was bridged to.
    pub bridges: Vec<String>,
    /// `(application, Application-Response)` of each completed execute.
    pub completions: Vec<(String, String)>,
    pub hangup_cause: Option<String>,
    /// When the channel was first seen, answered and hung up (µs since the epoch, on the
    /// simulator's clock): what tells whether two calls overlapped.
    pub created_us: u64,
    pub answered_us: Option<u64>,
    pub ended_us: Option<u64>,
    /// The longest the channel sat parked with nothing played or recorded to it (µs): how
    /// long a waiting caller heard silence.
    pub longest_silence_us: u64,
}

impl CallRecord {
    /// Its events with when they came, in seconds since the channel was created: what a
    /// failing test prints to show where time went.
    pub fn timeline(&self) -> String {
        self.events
            .iter()
            .zip(&self.event_us)
            .map(|(e, at)| {
                let secs = at.saturating_sub(self.created_us) as f64 / 1e6;
                format!("{secs:.1} {e}")
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn saw(&self, event: &str) -> bool {
        self.events.iter().any(|e| e == event)
    }

    pub fn played(&self, path: &str) -> bool {
        self.media.iter().any(|m| m == path)
    }

    pub fn response_of(&self, app: &str) -> Option<&str> {
        self.completions
            .iter()
            .rev()
            .find(|(a, _)| a == app)
            .map(|(_, r)| r.as_str())
    }
}

#[derive(Debug, Default)]
pub struct Records {
    calls: Vec<CallRecord>,
    /// Beside `calls`, by the same index.
    silences: Vec<Silence>,
    index: HashMap<String, usize>,
}

/// Whether a channel is silent now, and since when.
#[derive(Debug, Default)]
struct Silence {
    parked: bool,
    media: bool,
    since: Option<u64>,
}

impl Silence {
    /// Apply one event at `at`; the length of a silence it ended, if any.
    fn on_event(&mut self, name: &str, at: u64) -> Option<u64> {
        match name {
            "CHANNEL_PARK" => self.parked = true,
            "PLAYBACK_START" | "RECORD_START" => self.media = true,
            "PLAYBACK_STOP" | "RECORD_STOP" => self.media = false,
            "CHANNEL_UNPARK" | "CHANNEL_BRIDGE" | "CHANNEL_HANGUP" => self.parked = false,
            _ => return None,
        }
        match (self.since, self.parked && !self.media) {
            (Some(since), false) => {
                self.since = None;
                Some(at.saturating_sub(since))
            }
            (None, true) => {
                self.since = Some(at);
                None
            }
            _ => None,
        }
    }
}

impl Records {
    /// Record `ev`, emitted at `at` (µs since the epoch).
    pub fn on_event(&mut self, uuid: &str, ev: &SimEvent, at: u64) {
        let i = match self.index.get(uuid) {
            Some(&i) => i,
            None => {
                self.calls.push(CallRecord {
                    uuid: uuid.to_owned(),
                    channel_name: ev.get("Channel-Name").unwrap_or_default().to_owned(),
                    caller_number: ev
                        .get("Caller-Caller-ID-Number")
                        .unwrap_or_default()
                        .to_owned(),
                    destination: ev
                        .get("Caller-Destination-Number")
                        .unwrap_or_default()
                        .to_owned(),
                    created_us: at,
                    ..CallRecord::default()
                });
                self.silences.push(Silence::default());
                self.index.insert(uuid.to_owned(), self.calls.len() - 1);
                self.calls.len() - 1
            }
        };
        let call = &mut self.calls[i];
        if let Some(silence) = self.silences[i].on_event(ev.name, at) {
            call.longest_silence_us = call.longest_silence_us.max(silence);
        }
        match &ev.subclass {
            Some(sub) => call.events.push(format!("CUSTOM {sub}")),
            None => call.events.push(ev.name.to_owned()),
        }
        call.event_us.push(at);
        match ev.name {
            "PLAYBACK_START" => call
                .media
                .extend(ev.get("Playback-File-Path").map(str::to_owned)),
            "RECORD_START" => call
                .media
                .extend(ev.get("Record-File-Path").map(str::to_owned)),
            "DTMF" => call
                .digits
                .push_str(ev.get("DTMF-Digit").unwrap_or_default()),
            "CHANNEL_BRIDGE" => call
                .bridges
                .extend(ev.get("Bridge-B-Unique-ID").map(str::to_owned)),
            "CHANNEL_EXECUTE_COMPLETE" => call.completions.push((
                ev.get("Application").unwrap_or_default().to_owned(),
                ev.get("Application-Response")
                    .unwrap_or_default()
                    .to_owned(),
            )),
            "CHANNEL_ANSWER" => call.answered_us = Some(at),
            "CHANNEL_HANGUP" => {
                call.hangup_cause = ev.get("Hangup-Cause").map(str::to_owned);
                call.ended_us = Some(at);
            }
            _ => {}
        }
    }

    /// Every call as it stands at `now` (µs since the epoch): a silence still going on
    /// counts up to now.
    pub fn snapshot(&self, now: u64) -> Vec<CallRecord> {
        let mut calls = self.calls.clone();
        for (call, silence) in calls.iter_mut().zip(&self.silences) {
            if let Some(since) = silence.since {
                let so_far = now.saturating_sub(since);
                call.longest_silence_us = call.longest_silence_us.max(so_far);
            }
        }
        calls
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_is_parked_time_with_nothing_played() {
        let mut s = Silence::default();
        let mut longest = 0;
        for (name, at) in [
            ("CHANNEL_ANSWER", 0),
            ("CHANNEL_PARK", 100),
            ("PLAYBACK_START", 400),
            ("PLAYBACK_STOP", 1_000),
            ("PLAYBACK_START", 1_050),
            ("PLAYBACK_STOP", 2_000),
            ("CHANNEL_BRIDGE", 2_700),
            ("CHANNEL_HANGUP", 9_000),
        ] {
            longest = longest.max(s.on_event(name, at).unwrap_or(0));
        }
        assert_eq!(longest, 700);
        assert_eq!(s.since, None);
    }
}
