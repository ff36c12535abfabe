//! Scripted parties: callers who dial in, and agents or customers behind dial strings.
//!
//! Built in Rust by tests, or read from a TOML file by `callbackd sim --scenario`
//! (format documented in `tests/scenarios/README.md`).

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;

/// Why a scenario file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid scenario {path}: {source}")]
    Parse {
        path: String,
        source: Box<toml::de::Error>,
    },
}

/// Everything scripted for one run.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    #[serde(default, rename = "caller")]
    pub callers: Vec<Caller>,
    /// Keyed by dial string: `user/1001`, `sofia/gateway/carrier/+4930123`.
    #[serde(default, rename = "party")]
    pub parties: HashMap<String, Party>,
}

impl Scenario {
    pub fn from_toml(text: &str, path: &str) -> Result<Self, ScenarioError> {
        toml::from_str(text).map_err(|e| ScenarioError::Parse {
            path: path.to_owned(),
            source: Box::new(e),
        })
    }

    pub fn load(path: &str) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text, path)
    }

    pub fn caller(mut self, caller: Caller) -> Self {
        self.callers.push(caller);
        self
    }

    pub fn party(mut self, dial: &str, party: Party) -> Self {
        self.parties.insert(dial.to_owned(), party);
        self
    }
}

/// Digits a party presses `after` a delay: counted from answering (a caller: from
/// arriving), or, with `when`, from the start of what they are waiting to hear.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Press {
    #[serde(with = "secs")]
    pub after: Duration,
    pub digits: String,
    /// React to a prompt instead of the clock: wait for a playback (`PLAYBACK_START`,
    /// each `play_and_get_digits` prompt included) whose file path contains this text.
    #[serde(default)]
    pub when: Option<String>,
    /// Which such playback counts: 1 for the first (a restarted or repeated one counts
    /// again). Only meaningful with `when`.
    #[serde(default = "first")]
    pub nth: u32,
}

fn first() -> u32 {
    1
}

impl Press {
    /// `digits`, `after` from answering (a caller: from arriving).
    pub fn at(after: Duration, digits: &str) -> Self {
        Self {
            after,
            digits: digits.to_owned(),
            when: None,
            nth: first(),
        }
    }

    /// `digits`, `after` the `nth` playback whose path contains `prompt` started.
    pub fn on_hearing(prompt: &str, nth: u32, after: Duration, digits: &str) -> Self {
        Self {
            when: Some(prompt.to_owned()),
            nth: nth.max(1),
            ..Self::at(after, digits)
        }
    }

    /// Whether a playback of `path` is what this press waits for.
    pub fn cued_by(&self, path: &str) -> bool {
        self.when.as_deref().is_some_and(|w| path.contains(w))
    }
}

/// A caller dialing one of the switch's extensions.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Caller {
    /// Arrival, from the start of the run.
    #[serde(with = "secs", default)]
    pub at: Duration,
    /// Caller-ID number; absent when the caller only has a SIP From user.
    #[serde(default)]
    pub number: Option<String>,
    #[serde(default)]
    pub from_user: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default = "default_extension")]
    pub extension: String,
    #[serde(default)]
    pub dtmf: Vec<Press>,
    /// Hang up this long after arrival (never, when absent).
    #[serde(with = "opt_secs", default)]
    pub hangup_after: Option<Duration>,
    /// How much the caller says when a `record` runs on them.
    #[serde(with = "opt_secs", default)]
    pub speech: Option<Duration>,
}

fn default_extension() -> String {
    "cbq".into()
}

impl Caller {
    /// A caller with this caller-ID number, arriving at once at the `cbq` extension.
    pub fn number(number: &str) -> Self {
        Self {
            at: Duration::ZERO,
            number: Some(number.to_owned()),
            from_user: None,
            name: None,
            extension: default_extension(),
            dtmf: Vec::new(),
            hangup_after: None,
            speech: None,
        }
    }

    /// A caller who only presents a SIP From user (no caller-ID number).
    pub fn sip_user(user: &str) -> Self {
        Self {
            number: None,
            from_user: Some(user.to_owned()),
            ..Self::number("")
        }
    }

    pub fn at(mut self, at: Duration) -> Self {
        self.at = at;
        self
    }

    pub fn to_extension(mut self, ext: &str) -> Self {
        self.extension = ext.to_owned();
        self
    }

    pub fn hang_up_after(mut self, after: Duration) -> Self {
        self.hangup_after = Some(after);
        self
    }

    pub fn speaking(mut self, speech: Duration) -> Self {
        self.speech = Some(speech);
        self
    }
}

/// How a dialed party responds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    #[default]
    Answer,
    NoAnswer,
    Busy,
    NotRegistered,
    InvalidNumber,
}

/// An agent or customer behind a dial string.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Party {
    #[serde(default)]
    pub outcome: Outcome,
    /// Ringing time before answering (or before busy).
    #[serde(with = "secs", default = "default_ring")]
    pub ring: Duration,
    /// Hang up this long after answering.
    #[serde(with = "opt_secs", default)]
    pub hangup_after: Option<Duration>,
    #[serde(default)]
    pub dtmf: Vec<Press>,
}

fn default_ring() -> Duration {
    Duration::from_secs(1)
}

impl Party {
    pub fn answers_after(ring: Duration) -> Self {
        Self {
            outcome: Outcome::Answer,
            ring,
            hangup_after: None,
            dtmf: Vec::new(),
        }
    }

    pub fn fails(outcome: Outcome) -> Self {
        Self {
            outcome,
            ..Self::answers_after(default_ring())
        }
    }

    pub fn hang_up_after(mut self, after: Duration) -> Self {
        self.hangup_after = Some(after);
        self
    }
}

/// The keys a scripted person presses, the same for callers and for dialed parties.
macro_rules! presses {
    ($who:ty, $from:literal) => {
        impl $who {
            #[doc = concat!("Press `digits` `after` ", $from, ".")]
            pub fn press(mut self, after: Duration, digits: &str) -> Self {
                self.dtmf.push(Press::at(after, digits));
                self
            }

            /// Press `digits` `after` the first playback whose path contains `prompt`
            /// started (`"offer.wav"`, `"enter-number"`): a person who answers what they
            /// hear, however slow the daemon is to ask.
            pub fn press_when(self, prompt: &str, after: Duration, digits: &str) -> Self {
                self.press_when_nth(prompt, 1, after, digits)
            }

            /// [`Self::press_when`] for the `nth` such playback (1 = the first).
            pub fn press_when_nth(
                mut self,
                prompt: &str,
                nth: u32,
                after: Duration,
                digits: &str,
            ) -> Self {
                self.dtmf
                    .push(Press::on_hearing(prompt, nth, after, digits));
                self
            }
        }
    };
}

presses!(Caller, "arriving");
presses!(Party, "answering");

mod secs {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = f64::deserialize(d)?;
        Duration::try_from_secs_f64(s).map_err(serde::de::Error::custom)
    }
}

mod opt_secs {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<f64>::deserialize(d)?
            .map(|s| Duration::try_from_secs_f64(s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_scenario_parses() {
        let text = include_str!("../../tests/scenarios/example.toml");
        let s = Scenario::from_toml(text, "example.toml").unwrap();
        assert_eq!(s.callers.len(), 2);
        let confirm = &s.callers[0].dtmf[2];
        assert_eq!(confirm.when.as_deref(), Some("confirm-options"));
        assert_eq!(
            (confirm.nth, confirm.after),
            (1, Duration::from_millis(500))
        );
        assert!(confirm.cued_by("file_string:///s/callback-to.wav!/s/confirm-options.wav"));
        assert_eq!(s.callers[1].number, None);
        assert_eq!(s.callers[1].from_user.as_deref(), Some("alice"));
        assert_eq!(s.parties["user/1002"].outcome, Outcome::NoAnswer);
        assert_eq!(s.parties["user/1001"].ring, Duration::from_secs(2));
    }

    #[test]
    fn a_press_waiting_for_a_prompt_parses_and_unknown_keys_do_not() {
        let text = r#"
[[caller]]
dtmf = [{ when = "callback-pending", nth = 2, after = 0.5, digits = "7" }]
"#;
        let s = Scenario::from_toml(text, "t.toml").unwrap();
        assert_eq!(
            s.callers[0].dtmf,
            [Press::on_hearing(
                "callback-pending",
                2,
                Duration::from_millis(500),
                "7"
            )]
        );
        let typo = text.replace("nth", "occurrence");
        assert!(Scenario::from_toml(&typo, "t.toml").is_err());
    }
}
